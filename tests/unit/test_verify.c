/* Unit tests for backupd/verify and backupd/catalog_rebuild: snapshots built
 * by hand (zst_writer, checksums, the manifest adders) in a temp local
 * repository, then damaged in every way verify must notice (a flipped
 * byte, a truncated, removed or swapped file, a table checksum that does
 * not add up, a path escaping the folder), and catalog rebuilds from that
 * repository into a temp catalog: found, idempotent, deletions, leftovers.
 * No server needed. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "catalog.h"
#include "catalog_rebuild.h"
#include "checksum.h"
#include "config.h"
#include "log.h"
#include "manifest.h"
#include "mem.h"
#include "storage.h"
#include "verify.h"
#include "zst.h"

#define OK(expr) do { \
	err_init(&e); \
	int rc_ = (expr); \
	if (rc_ != 0) \
		fail_msg("%s failed (%d): %s", #expr, rc_, e.msg); \
} while (0)

#define ID1 "20261125T131500Z-0001"
#define ID2 "20261125T141500Z-0002"

struct fx {
	char tmp[64];
	char repo[128];
	char catpath[128];
	struct cfg_cluster clusters[2];
	struct config cfg;
};

/* ---- building snapshots ------------------------------------------------- */

static uint64_t rng_next(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

struct sink {
	struct storage_file *f;
	struct checksum cks;
	uint64_t bytes;
};

static int sink_write(void *ctx, const void *data, size_t n, struct err *e)
{
	struct sink *s = ctx;
	int rc = storage_write(s->f, data, n, e);

	if (rc == 0) {
		checksum_update(&s->cks, data, n);
		s->bytes += n;
	}
	return rc;
}

/* Writes rows of hex noise (hard to compress, so big chunks span several
 * 1 MiB reads) and adds the file to table ti of m. */
static void write_chunk(struct storage *st, struct manifest *m, const char *dir,
			size_t ti, int chunk, uint64_t rows, uint64_t seed,
			struct checksum *table_cks)
{
	struct err e;
	struct sink s = { 0 };
	struct zst_writer *zw = NULL;
	struct checksum raw;
	char rel[256], path[512], line[128];
	uint64_t raw_bytes = 0;
	struct manifest_file f;
	int fi;

	snprintf(rel, sizeof(rel), "data/%05zu.%s.%s.%04d.tsv.zst", ti + 1,
		 m->tables[ti].schema, m->tables[ti].name, chunk);
	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	checksum_init(&s.cks);
	checksum_init(&raw);
	OK(storage_create(st, path, true, &s.f, &e));
	OK(zst_writer_new(1, sink_write, &s, &zw, &e));
	for (uint64_t r = 0; r < rows; r++) {
		int n = snprintf(line, sizeof(line), "%llu\t%016llx%016llx\n",
				 (unsigned long long)r,
				 (unsigned long long)rng_next(&seed),
				 (unsigned long long)rng_next(&seed));
		checksum_update(&raw, line, (size_t)n);
		raw_bytes += (uint64_t)n;
		OK(zst_writer_write(zw, line, (size_t)n, &e));
	}
	OK(zst_writer_finish(zw, &e));
	zst_writer_free(zw);
	OK(storage_fsync(s.f, &e));
	OK(storage_file_close(s.f, &e));

	memset(&f, 0, sizeof(f));
	f.path = rel;
	f.kind = MANIFEST_FILE_DATA;
	f.table = (int64_t)ti;
	f.chunk = chunk;
	f.rows = rows;
	f.bytes_raw = raw_bytes;
	f.bytes_stored = s.bytes;
	checksum_final(&raw, f.checksum_raw);
	checksum_final(&s.cks, f.checksum_stored);
	checksum_update(table_cks, f.checksum_raw, strlen(f.checksum_raw));
	err_init(&e);
	fi = manifest_add_file(m, &f, &e);
	if (fi < 0)
		fail_msg("manifest_add_file: %s", e.msg);
	checksum_release(&raw);
	checksum_release(&s.cks);
}

static void add_table(struct manifest *m, struct storage *st, const char *dir,
		      const char *name, int chunks, uint64_t rows, uint64_t seed)
{
	struct err e;
	struct checksum tc;
	char sum[CHECKSUM_HEX_MAX];
	size_t ti = manifest_add_table(m, "shop", name, "InnoDB",
				       "CREATE TABLE `x` (`id` int, `v` text)");

	OK(manifest_table_add_column(m, ti, "id", TSV_COL_RAW, &e));
	OK(manifest_table_add_column(m, ti, "v", TSV_COL_RAW, &e));
	checksum_init(&tc);
	for (int c = 0; c < chunks; c++)
		write_chunk(st, m, dir, ti, c, rows, seed + (uint64_t)c, &tc);
	checksum_final(&tc, sum);
	checksum_release(&tc);
	if (chunks)
		OK(manifest_table_set_checksum(m, ti, sum, &e));
}

/* Writes manifest m of snapshot dir; replace, when set, swaps the first
 * occurrence of one string of the JSON for another first (to forge what
 * the adders refuse). */
static void write_manifest(struct storage *st, const char *dir,
			   const struct manifest *m, const char *from,
			   const char *to)
{
	struct err e;
	char *json = NULL, path[512];
	size_t n = 0;

	OK(manifest_to_json(m, &json, &n, &e));
	if (from) {
		char *hit = strstr(json, from);
		struct buf b;

		assert_non_null(hit);
		buf_init(&b, 0);
		OK(buf_append(&b, json, (size_t)(hit - json), &e));
		OK(buf_append_str(&b, to, &e));
		OK(buf_append_str(&b, hit + strlen(from), &e));
		free(json);
		n = b.len;
		json = buf_detach(&b);
		buf_release(&b);
	}
	snprintf(path, sizeof(path), "%s/%s", dir, MANIFEST_NAME);
	OK(storage_write_atomic(st, path, json, n, &e));
	free(json);
}

/* A snapshot: t_big (2 chunks, ~1.4 MiB stored each),
 * t_small (1 chunk), t_empty (no files). *m_out, when not NULL, gets the
 * manifest before it is written (caller frees); otherwise it is written. */
static void make_snapshot_ex(struct fx *f, const char *cluster, const char *id,
			     const char *gtid, struct manifest **m_out)
{
	struct err e;
	struct storage *st = NULL;
	struct manifest *m = manifest_new();
	char dir[256], data[300], ts[MANIFEST_TIME_MAX];

	snprintf(dir, sizeof(dir), "%s/%s", cluster, id);
	snprintf(data, sizeof(data), "%s/data", dir);
	OK(storage_open(f->repo, NULL, &st, &e));
	OK(storage_mkdir_p(st, data, &e));
	manifest_set_str(&m->id, id);
	manifest_set_str(&m->cluster, cluster);
	manifest_set_str(&m->source.address, "127.0.0.1:3307");
	manifest_set_str(&m->source.role, "replica");
	m->source.server_id = 2;
	manifest_set_str(&m->source.flavor, "mariadb");
	manifest_set_str(&m->source.version, "10.11.6-MariaDB");
	manifest_set_str(&m->position.gtid, gtid);
	manifest_set_str(&m->position.binlog_file, "mysql-bin.000003");
	m->position.binlog_pos = 1234;
	OK(manifest_time_format(1795000000.25, ts, &e));
	manifest_set_str(&m->started_at, ts);
	OK(manifest_time_format(1795000042.5, ts, &e));
	manifest_set_str(&m->finished_at, ts);
	manifest_add_database(m, "shop", "CREATE DATABASE `shop`");
	add_table(m, st, dir, "t_big", 2, 70000, 1);
	add_table(m, st, dir, "t_small", 1, 10, 99);
	add_table(m, st, dir, "t_empty", 0, 0, 0);
	if (m_out) {
		*m_out = m;
	} else {
		write_manifest(st, dir, m, NULL, NULL);
		manifest_free(m);
	}
	storage_close(st);
}

static void make_snapshot(struct fx *f, const char *id, const char *gtid)
{
	make_snapshot_ex(f, "shop", id, gtid, NULL);
}

static void fpath(const struct fx *f, char *out, size_t n, const char *id,
		  const char *rel)
{
	snprintf(out, n, "%s/shop/%s/%s", f->repo, id, rel);
}

/* ---- fixture ------------------------------------------------------------- */

static int setup(void **state)
{
	struct fx *f = xcalloc(1, sizeof(*f));

	snprintf(f->tmp, sizeof(f->tmp), "/tmp/test_verify.XXXXXX");
	if (!mkdtemp(f->tmp))
		return -1;
	snprintf(f->repo, sizeof(f->repo), "%s/repo", f->tmp);
	snprintf(f->catpath, sizeof(f->catpath), "%s/catalog.db", f->tmp);
	if (mkdir(f->repo, 0750) != 0)
		return -1;
	f->clusters[0].name = "shop";
	f->clusters[1].name = "blog";
	f->cfg.repository = f->repo;
	f->cfg.catalog = f->catpath;
	f->cfg.clusters = f->clusters;
	f->cfg.n_clusters = 2;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	char cmd[200];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->tmp);
	if (system(cmd) != 0)
		return -1;
	free(f);
	return 0;
}

/* ---- verify -------------------------------------------------------------- */

static void test_verify_ok(void **state)
{
	struct fx *f = *state;
	struct verify_report rep;
	struct err e;

	make_snapshot(f, ID1, "0-1-42");
	OK(snapshot_verify(&f->cfg, NULL, "shop", ID1, &rep, &e));
	assert_true(rep.ok);
	assert_int_equal(rep.files_total, 3);
	assert_int_equal(rep.files_checked, 3);
	assert_int_equal(rep.files_bad, 0);
	assert_int_equal(rep.tables_total, 3);
	assert_int_equal(rep.rows, 140010);
	assert_int_equal(rep.n_problems, 0);
	/* Hex noise: the big chunks need more than one 1 MiB read each. */
	assert_true(rep.bytes_read > 2u * 1024 * 1024);
	assert_string_equal(rep.cluster, "shop");
	verify_report_release(&rep);

	/* The cluster found in the repository when not given. */
	OK(snapshot_verify(&f->cfg, NULL, NULL, ID1, &rep, &e));
	assert_string_equal(rep.cluster, "shop");
	verify_report_release(&rep);
}

static void flip_byte(const char *path, off_t at)
{
	int fd = open(path, O_RDWR);
	unsigned char c;

	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &c, 1, at), 1);
	c ^= 0x20;
	assert_int_equal(pwrite(fd, &c, 1, at), 1);
	close(fd);
}

static void test_verify_flipped_byte(void **state)
{
	struct fx *f = *state;
	struct verify_report rep;
	struct err e;
	char p[512];
	int rc;

	make_snapshot(f, ID1, "0-1-42");
	fpath(f, p, sizeof(p), ID1, "data/00001.shop.t_big.0001.tsv.zst");
	flip_byte(p, 700000);
	err_init(&e);
	rc = snapshot_verify(&f->cfg, NULL, "shop", ID1, &rep, &e);
	assert_int_equal(rc, ERR_VERIFY);
	assert_int_equal(e.code, ERR_VERIFY);
	assert_false(rep.ok);
	assert_non_null(strstr(e.msg, "verify of 'shop/" ID1 "'"));
	assert_non_null(strstr(e.msg, "file 'data/00001.shop.t_big.0001.tsv.zst'"));
	assert_non_null(strstr(e.msg, "stored checksum xxh128:"));
	assert_null(strchr(e.msg, '\n'));
	/* Kept going: every file read, one bad, its table not re-reported. */
	assert_int_equal(rep.files_checked, 3);
	assert_int_equal(rep.files_bad, 1);
	assert_int_equal(rep.tables_bad, 1);
	assert_int_equal(rep.n_problems, 1);
	assert_string_equal(rep.problems[0].path, "data/00001.shop.t_big.0001.tsv.zst");
	verify_report_release(&rep);
}

static void test_verify_truncated_and_removed(void **state)
{
	struct fx *f = *state;
	struct verify_report rep;
	struct err e;
	char p[512];
	int rc;

	make_snapshot(f, ID1, "0-1-42");
	fpath(f, p, sizeof(p), ID1, "data/00001.shop.t_big.0000.tsv.zst");
	assert_int_equal(truncate(p, 1000), 0);
	err_init(&e);
	rc = snapshot_verify(&f->cfg, NULL, "shop", ID1, &rep, &e);
	assert_int_equal(rc, ERR_VERIFY);
	assert_non_null(strstr(e.msg, "file 'data/00001.shop.t_big.0000.tsv.zst': stored size 1000 bytes != manifest"));
	verify_report_release(&rep);

	/* Two bad files: the first in the message, both in the report. */
	fpath(f, p, sizeof(p), ID1, "data/00002.shop.t_small.0000.tsv.zst");
	assert_int_equal(unlink(p), 0);
	err_init(&e);
	rc = snapshot_verify(&f->cfg, NULL, "shop", ID1, &rep, &e);
	assert_int_equal(rc, ERR_VERIFY);
	assert_non_null(strstr(e.msg, "t_big.0000.tsv.zst': stored size"));
	assert_non_null(strstr(e.msg, "(and 1 more problem)"));
	assert_int_equal(rep.files_bad, 2);
	assert_int_equal(rep.n_problems, 2);
	assert_string_equal(rep.problems[1].path, "data/00002.shop.t_small.0000.tsv.zst");
	assert_non_null(strstr(rep.problems[1].what, "missing"));
	verify_report_release(&rep);
}

static void test_verify_removed(void **state)
{
	struct fx *f = *state;
	struct verify_report rep;
	struct err e;
	char p[512];

	make_snapshot(f, ID1, "0-1-42");
	fpath(f, p, sizeof(p), ID1, "data/00002.shop.t_small.0000.tsv.zst");
	assert_int_equal(unlink(p), 0);
	err_init(&e);
	assert_int_equal(snapshot_verify(&f->cfg, NULL, "shop", ID1, &rep, &e), ERR_VERIFY);
	assert_non_null(strstr(e.msg, "file 'data/00002.shop.t_small.0000.tsv.zst': missing"));
	assert_int_equal(rep.files_checked, 2);
	verify_report_release(&rep);
}

/* A chunk replaced by another valid chunk of the same table decompresses
 * fine: the stored size or checksum has to catch it. */
static void test_verify_swapped_file(void **state)
{
	struct fx *f = *state;
	struct verify_report rep;
	struct err e;
	char a[512], b[512], cmd[1100];

	make_snapshot(f, ID1, "0-1-42");
	fpath(f, a, sizeof(a), ID1, "data/00001.shop.t_big.0000.tsv.zst");
	fpath(f, b, sizeof(b), ID1, "data/00001.shop.t_big.0001.tsv.zst");
	snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", a, b);
	assert_int_equal(system(cmd), 0);
	err_init(&e);
	assert_int_equal(snapshot_verify(&f->cfg, NULL, "shop", ID1, &rep, &e), ERR_VERIFY);
	assert_non_null(strstr(e.msg, "t_big.0001.tsv.zst'"));
	verify_report_release(&rep);
}

/* Stored bytes that match the manifest but do not decompress (the manifest
 * was written after the damage), and raw data that differs from what the
 * manifest says: the checks after the stored ones. */
static void test_verify_decode_and_raw(void **state)
{
	struct fx *f = *state;
	struct verify_report rep;
	struct manifest *m = NULL;
	struct storage *st = NULL;
	struct err e;
	char p[512], *data = NULL, cks[CHECKSUM_HEX_MAX];
	size_t n = 0;

	make_snapshot_ex(f, "shop", ID1, "0-1-42", &m);
	fpath(f, p, sizeof(p), ID1, "data/00002.shop.t_small.0000.tsv.zst");
	flip_byte(p, 30);
	OK(storage_open(f->repo, NULL, &st, &e));
	OK(storage_read_all(st, "shop/" ID1 "/data/00002.shop.t_small.0000.tsv.zst",
			    1 << 20, &data, &n, &e));
	checksum_of(data, n, cks);
	free(data);
	write_manifest(st, "shop/" ID1, m, m->files[2].checksum_stored, cks);
	err_init(&e);
	assert_int_equal(snapshot_verify(&f->cfg, NULL, "shop", ID1, &rep, &e), ERR_VERIFY);
	assert_non_null(strstr(e.msg, "t_small.0000.tsv.zst': cannot be decompressed: "));
	assert_int_equal(rep.files_checked, 3);
	verify_report_release(&rep);

	/* Intact files, a manifest claiming other raw data. */
	manifest_free(m);
	make_snapshot_ex(f, "shop", "20261125T151500Z-0003", "0-1-42", &m);
	checksum_of("other", 5, cks);
	write_manifest(st, "shop/20261125T151500Z-0003", m, m->files[0].checksum_raw, cks);
	err_init(&e);
	assert_int_equal(snapshot_verify(&f->cfg, NULL, "shop", "20261125T151500Z-0003",
					 &rep, &e), ERR_VERIFY);
	assert_non_null(strstr(e.msg, "t_big.0000.tsv.zst': raw checksum xxh128:"));
	verify_report_release(&rep);
	manifest_free(m);
	storage_close(st);
}

static void test_verify_table_checksum(void **state)
{
	struct fx *f = *state;
	struct verify_report rep;
	struct manifest *m = NULL;
	struct storage *st = NULL;
	struct err e;
	char other[CHECKSUM_HEX_MAX];

	make_snapshot_ex(f, "shop", ID1, "0-1-42", &m);
	checksum_of("something else", 14, other);
	OK(manifest_table_set_checksum(m, 1, other, &e));
	OK(storage_open(f->repo, NULL, &st, &e));
	write_manifest(st, "shop/" ID1, m, NULL, NULL);
	storage_close(st);
	manifest_free(m);
	err_init(&e);
	assert_int_equal(snapshot_verify(&f->cfg, NULL, "shop", ID1, &rep, &e), ERR_VERIFY);
	assert_non_null(strstr(e.msg, "table 'shop.t_small': checksum xxh128:"));
	assert_int_equal(rep.files_bad, 0);
	assert_int_equal(rep.tables_bad, 1);
	assert_null(rep.problems[0].path);
	verify_report_release(&rep);
}

static void test_verify_bad_manifest(void **state)
{
	struct fx *f = *state;
	struct verify_report rep;
	struct manifest *m = NULL;
	struct storage *st = NULL;
	struct err e;

	make_snapshot_ex(f, "shop", ID1, "0-1-42", &m);
	OK(storage_open(f->repo, NULL, &st, &e));
	write_manifest(st, "shop/" ID1, m, "\"data/00002.shop.t_small.0000.tsv.zst\"",
		       "\"../x\"");
	storage_close(st);
	manifest_free(m);
	err_init(&e);
	assert_int_equal(snapshot_verify(&f->cfg, NULL, "shop", ID1, &rep, &e), ERR_CORRUPT);
	assert_non_null(strstr(e.msg, "../x"));
	verify_report_release(&rep);

	/* No manifest at all: not found. */
	err_init(&e);
	assert_int_equal(snapshot_verify(&f->cfg, NULL, "shop", ID2, &rep, &e), ERR_NOT_FOUND);
	verify_report_release(&rep);
	err_init(&e);
	assert_int_equal(snapshot_verify(&f->cfg, NULL, NULL, ID2, &rep, &e), ERR_NOT_FOUND);
	verify_report_release(&rep);
	/* An id that is a path. */
	err_init(&e);
	assert_int_equal(snapshot_verify(&f->cfg, NULL, NULL, "../shop", &rep, &e), ERR_USAGE);
	verify_report_release(&rep);
}

/* With a catalog: the verify status, an event and a job are recorded. */
static void test_verify_records(void **state)
{
	struct fx *f = *state;
	struct verify_report rep;
	struct catalog_rebuild_report rr;
	struct catalog *cat = NULL;
	struct catalog_snapshot row;
	struct catalog_event *ev = NULL;
	size_t nev = 0;
	struct err e;
	char p[512];

	make_snapshot(f, ID1, "0-1-42");
	OK(catalog_open(f->catpath, &cat, &e));
	OK(catalog_rebuild(&f->cfg, cat, &rr, &e));
	catalog_rebuild_report_release(&rr);

	OK(snapshot_verify(&f->cfg, cat, NULL, ID1, &rep, &e));
	verify_report_release(&rep);
	OK(catalog_snapshot_get(cat, ID1, &row, &e));
	assert_string_equal(row.verify_status, "ok");
	assert_true(row.verified_at > 0);
	catalog_snapshot_release(&row);

	fpath(f, p, sizeof(p), ID1, "data/00002.shop.t_small.0000.tsv.zst");
	flip_byte(p, 20);
	err_init(&e);
	assert_int_equal(snapshot_verify(&f->cfg, cat, NULL, ID1, &rep, &e), ERR_VERIFY);
	verify_report_release(&rep);
	OK(catalog_snapshot_get(cat, ID1, &row, &e));
	assert_string_equal(row.verify_status, "failed");
	catalog_snapshot_release(&row);

	OK(catalog_event_due(cat, catalog_now() + 1, 10, &ev, &nev, &e));
	assert_int_equal(nev, 2);
	assert_string_equal(ev[0].kind, "verify.ok");
	assert_string_equal(ev[0].severity, "info");
	assert_string_equal(ev[1].kind, "verify.failed");
	assert_string_equal(ev[1].severity, "error");
	assert_non_null(strstr(ev[1].payload, "t_small"));
	catalog_event_free_list(ev, nev);

	/* A complete snapshot whose manifest vanished is a failed verify too. */
	fpath(f, p, sizeof(p), ID1, MANIFEST_NAME);
	assert_int_equal(unlink(p), 0);
	OK(snapshot_verify(&f->cfg, cat, NULL, ID1, &rep, &e) == ERR_NOT_FOUND ? 0 : -1);
	verify_report_release(&rep);
	OK(catalog_event_due(cat, catalog_now() + 1, 10, &ev, &nev, &e));
	assert_int_equal(nev, 3);
	assert_string_equal(ev[2].kind, "verify.failed");
	assert_non_null(strstr(ev[2].payload, "not-found"));
	catalog_event_free_list(ev, nev);

	/* Both jobs ended; a new verify may start. */
	{
		int64_t job;
		OK(catalog_job_start(cat, "verify", "shop", "manual", &job, &e));
		OK(catalog_job_finish(cat, job, "ok", NULL, &e));
	}
	catalog_close(cat);
}

/* ---- catalog rebuild --------------------------------------------------- */

static int count_items(const struct catalog_rebuild_report *r,
		       enum catalog_rebuild_action a)
{
	int n = 0;

	for (size_t i = 0; i < r->n_items; i++)
		n += r->items[i].action == a;
	return n;
}

static void test_rebuild(void **state)
{
	struct fx *f = *state;
	struct catalog_rebuild_report rr;
	struct catalog *cat = NULL;
	struct catalog_snapshot row;
	struct catalog_snapshot_file *files = NULL;
	struct catalog_snapshot_table *tables = NULL;
	struct manifest *m = NULL;
	struct storage *st = NULL;
	size_t nf = 0, nt = 0;
	struct err e;
	char p[512], cmd[1200];

	make_snapshot(f, ID1, "0-1-42");
	make_snapshot(f, ID2, "0-1-99");
	/* Leftovers: a folder without manifest, a corrupt manifest, a file
	 * and a dot folder where clusters live. */
	snprintf(p, sizeof(p), "%s/shop/20261125T150000Z-dead/data", f->repo);
	snprintf(cmd, sizeof(cmd), "mkdir -p '%s' '%s/.snapshot/x' && echo hi > '%s/README'",
		 p, f->repo, f->repo);
	assert_int_equal(system(cmd), 0);
	make_snapshot_ex(f, "blog", "20261125T160000Z-bad0", "0-2-1", &m);
	OK(storage_open(f->repo, NULL, &st, &e));
	write_manifest(st, "blog/20261125T160000Z-bad0", m, "\"format\"", "\"formaat\"");
	storage_close(st);
	manifest_free(m);

	OK(catalog_open(f->catpath, &cat, &e));
	OK(catalog_rebuild(&f->cfg, cat, &rr, &e));
	assert_int_equal(rr.clusters, 2);
	assert_int_equal(rr.folders, 4);
	assert_int_equal(rr.snapshots, 2);
	assert_int_equal(rr.created, 2);
	assert_int_equal(rr.updated, 0);
	assert_int_equal(rr.incomplete, 1);
	assert_int_equal(rr.corrupt, 1);
	assert_int_equal(rr.deleted, 0);
	assert_int_equal(count_items(&rr, CATALOG_REBUILD_CREATED), 2);
	assert_int_equal(count_items(&rr, CATALOG_REBUILD_CORRUPT), 1);
	catalog_rebuild_report_release(&rr);

	OK(catalog_snapshot_get(cat, ID2, &row, &e));
	assert_string_equal(row.status, "complete");
	assert_string_equal(row.cluster, "shop");
	assert_string_equal(row.gtid, "0-1-99");
	assert_string_equal(row.binlog_file, "mysql-bin.000003");
	assert_int_equal(row.binlog_pos, 1234);
	assert_string_equal(row.source_server, "127.0.0.1:3307");
	assert_string_equal(row.server_version, "10.11.6-MariaDB");
	assert_int_equal(row.server_id, 2);
	assert_int_equal(row.n_files, 3);
	assert_int_equal(row.n_tables, 3);
	assert_true(row.bytes_raw > 2 * 1024 * 1024);
	assert_true(row.bytes_stored > 0 && row.bytes_stored < row.bytes_raw);
	assert_true(row.started_at > 1795000000.2 && row.started_at < 1795000000.3);
	assert_true(row.finished_at > 1795000042.4 && row.finished_at < 1795000042.6);
	assert_string_equal(row.manifest_path, "shop/" ID2 "/manifest.json");
	catalog_snapshot_release(&row);
	OK(catalog_snapshot_files(cat, ID2, &files, &nf, &e));
	assert_int_equal(nf, 3);
	assert_string_equal(files[0].path, "data/00001.shop.t_big.0000.tsv.zst");
	assert_string_equal(files[0].table_name, "t_big");
	assert_int_equal(strlen(files[0].checksum), 32);
	catalog_snapshot_file_free_list(files, nf);
	OK(catalog_snapshot_tables(cat, ID2, &tables, &nt, &e));
	assert_int_equal(nt, 3);
	assert_string_equal(tables[0].table_name, "t_big");
	assert_int_equal(tables[0].n_rows, 140000);
	assert_non_null(tables[0].checksum);
	assert_string_equal(tables[1].table_name, "t_empty");
	assert_null(tables[1].checksum);
	catalog_snapshot_table_free_list(tables, nt);

	/* A verify status survives a rebuild that finds nothing new. */
	OK(catalog_snapshot_set_verified(cat, ID1, true, &e));

	/* Twice: nothing changes. */
	OK(catalog_rebuild(&f->cfg, cat, &rr, &e));
	assert_int_equal(rr.snapshots, 2);
	assert_int_equal(rr.created, 0);
	assert_int_equal(rr.updated, 0);
	assert_int_equal(rr.unchanged, 2);
	assert_int_equal(rr.deleted, 0);
	catalog_rebuild_report_release(&rr);
	OK(catalog_snapshot_get(cat, ID1, &row, &e));
	assert_string_equal(row.verify_status, "ok");
	catalog_snapshot_release(&row);

	/* A row that disagrees with its manifest is re-created. */
	OK(catalog_exec(cat, "UPDATE snapshots SET gtid = '0-1-7' WHERE id = '" ID1 "'", &e));
	OK(catalog_rebuild(&f->cfg, cat, &rr, &e));
	assert_int_equal(rr.updated, 1);
	assert_int_equal(rr.unchanged, 1);
	for (size_t i = 0; i < rr.n_items; i++)
		if (rr.items[i].action == CATALOG_REBUILD_UPDATED) {
			assert_string_equal(rr.items[i].id, ID1);
			assert_non_null(strstr(rr.items[i].detail, "gtid"));
		}
	catalog_rebuild_report_release(&rr);
	OK(catalog_snapshot_get(cat, ID1, &row, &e));
	assert_string_equal(row.gtid, "0-1-42");
	catalog_snapshot_release(&row);

	/* A folder that is gone: its row is marked deleted, once. */
	snprintf(cmd, sizeof(cmd), "rm -rf '%s/shop/%s'", f->repo, ID2);
	assert_int_equal(system(cmd), 0);
	OK(catalog_rebuild(&f->cfg, cat, &rr, &e));
	assert_int_equal(rr.deleted, 1);
	assert_int_equal(rr.unchanged, 1);
	assert_int_equal(count_items(&rr, CATALOG_REBUILD_DELETED), 1);
	catalog_rebuild_report_release(&rr);
	OK(catalog_snapshot_get(cat, ID2, &row, &e));
	assert_string_equal(row.status, "deleted");
	assert_true(row.deleted_at > 0);
	catalog_snapshot_release(&row);
	OK(catalog_rebuild(&f->cfg, cat, &rr, &e));
	assert_int_equal(rr.deleted, 0);
	assert_int_equal(rr.created + rr.updated, 0);
	catalog_rebuild_report_release(&rr);

	/* The folder is back (restored from elsewhere): the row too. */
	make_snapshot(f, ID2, "0-1-99");
	OK(catalog_rebuild(&f->cfg, cat, &rr, &e));
	assert_int_equal(rr.updated, 1);
	catalog_rebuild_report_release(&rr);
	OK(catalog_snapshot_get(cat, ID2, &row, &e));
	assert_string_equal(row.status, "complete");
	catalog_snapshot_release(&row);
	catalog_close(cat);
}

/* Running and failed rows are history the repository cannot tell about:
 * a rebuild leaves them alone. */
static void test_rebuild_keeps_running_and_failed(void **state)
{
	struct fx *f = *state;
	struct catalog_rebuild_report rr;
	struct catalog *cat = NULL;
	struct catalog_snapshot s, row;
	int64_t job;
	struct err e;

	OK(catalog_open(f->catpath, &cat, &e));
	OK(catalog_job_start(cat, "snapshot", "shop", "manual", &job, &e));
	catalog_snapshot_init(&s);
	s.id = "20261125T170000Z-run0";
	s.cluster = "shop";
	s.job_id = job;
	OK(catalog_snapshot_insert(cat, &s, &e));
	s.id = "20261125T170000Z-fail";
	s.job_id = -1;
	OK(catalog_snapshot_insert(cat, &s, &e));
	OK(catalog_snapshot_fail(cat, "20261125T170000Z-fail", "failed", "boom", &e));

	OK(catalog_rebuild(&f->cfg, cat, &rr, &e));
	assert_int_equal(rr.deleted, 0);
	assert_int_equal(rr.n_items, 0);
	catalog_rebuild_report_release(&rr);
	OK(catalog_snapshot_get(cat, "20261125T170000Z-run0", &row, &e));
	assert_string_equal(row.status, "running");
	catalog_snapshot_release(&row);
	OK(catalog_snapshot_get(cat, "20261125T170000Z-fail", &row, &e));
	assert_string_equal(row.status, "failed");
	catalog_snapshot_release(&row);

	/* The running snapshot's manifest lands while its job still runs:
	 * not touched, the engine completes it. */
	make_snapshot(f, "20261125T170000Z-run0", "0-1-5");
	OK(catalog_rebuild(&f->cfg, cat, &rr, &e));
	assert_int_equal(rr.skipped, 1);
	catalog_rebuild_report_release(&rr);
	/* Its job ended without completing it (a crash after the manifest):
	 * the manifest is the truth. */
	OK(catalog_job_finish(cat, job, "aborted", NULL, &e));
	OK(catalog_rebuild(&f->cfg, cat, &rr, &e));
	assert_int_equal(rr.updated, 1);
	catalog_rebuild_report_release(&rr);
	OK(catalog_snapshot_get(cat, "20261125T170000Z-run0", &row, &e));
	assert_string_equal(row.status, "complete");
	assert_string_equal(row.gtid, "0-1-5");
	catalog_snapshot_release(&row);
	catalog_close(cat);
}

static void test_rebuild_missing_repository(void **state)
{
	struct fx *f = *state;
	struct catalog_rebuild_report rr;
	struct catalog *cat = NULL;
	struct config cfg = f->cfg;
	char bad[200];
	struct err e;

	snprintf(bad, sizeof(bad), "%s/no-such-repo", f->tmp);
	cfg.repository = bad;
	OK(catalog_open(f->catpath, &cat, &e));
	err_init(&e);
	assert_true(catalog_rebuild(&cfg, cat, &rr, &e) != 0);
	assert_int_equal(e.code, ERR_STORAGE);
	catalog_rebuild_report_release(&rr);
	catalog_close(cat);
}

int main(void)
{
	/* The warnings are the point of most tests: VERBOSE=1 shows them. */
	if (!getenv("VERBOSE"))
		log_setup(LOGL_ERROR, LOG_FORMAT_TEXT);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_verify_ok, setup, teardown),
		cmocka_unit_test_setup_teardown(test_verify_flipped_byte, setup, teardown),
		cmocka_unit_test_setup_teardown(test_verify_truncated_and_removed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_verify_removed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_verify_swapped_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_verify_decode_and_raw, setup, teardown),
		cmocka_unit_test_setup_teardown(test_verify_table_checksum, setup, teardown),
		cmocka_unit_test_setup_teardown(test_verify_bad_manifest, setup, teardown),
		cmocka_unit_test_setup_teardown(test_verify_records, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rebuild, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rebuild_keeps_running_and_failed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rebuild_missing_repository, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
