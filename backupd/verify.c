/* Snapshot verification: stream every file of a manifest from the
 * repository (1 MiB reads), check its stored size and checksum, decompress
 * it and check the raw size, checksum and rows, then recompute every
 * table's checksum and row sum exactly as the snapshot engine built them.
 * A bad file does not stop the run, so one verify reports all of them.
 *
 * Threading: one call runs in the calling thread with its own storage
 * handle; the catalog, when given, belongs to that thread. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "checksum.h"
#include "log.h"
#include "manifest.h"
#include "mem.h"
#include "storage.h"
#include "tsv.h"
#include "verify.h"
#include "zst.h"

#define MOD "verify"
#define VERIFY_IO (1024u * 1024u)

void verify_report_init(struct verify_report *r)
{
	memset(r, 0, sizeof(*r));
}

void verify_report_release(struct verify_report *r)
{
	if (!r)
		return;
	free(r->id);
	free(r->cluster);
	for (size_t i = 0; i < r->n_problems; i++) {
		free(r->problems[i].path);
		free(r->problems[i].table);
		free(r->problems[i].what);
	}
	free(r->problems);
	verify_report_init(r);
}

struct vfy {
	const struct verify_opts *o;
	struct storage *st;
	struct verify_report *rep;
	char dir[STORAGE_PATH_MAX + 1];      /* "<cluster>/<id>" */
	char first[sizeof(((struct err *)0)->msg)];   /* first problem, for e->msg */
	uint64_t n_problems_total;           /* listed or not */
	unsigned char *buf;                  /* VERIFY_IO raw bytes */
};

static double vfy_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static bool vfy_aborted(const struct vfy *v)
{
	return v->o->abort_flag && *v->o->abort_flag;
}

/* Records one mismatch; the first one becomes the error message. */
static void vfy_problem(struct vfy *v, const char *path, const char *table,
			const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void vfy_problem(struct vfy *v, const char *path, const char *table,
			const char *fmt, ...)
{
	struct verify_report *r = v->rep;
	char what[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (v->n_problems_total++ == 0) {
		if (path)
			snprintf(v->first, sizeof(v->first), "file '%s': %s", path, what);
		else
			snprintf(v->first, sizeof(v->first), "table '%s': %s",
				 table ? table : "?", what);
	}
	log_info(MOD, "%s: %s%s%s: %s", v->dir, path ? "file '" : "table '",
		 path ? path : (table ? table : "?"), "'", what);
	if (r->n_problems >= VERIFY_PROBLEMS_MAX)
		return;
	if (r->n_problems == r->cap_problems) {
		r->cap_problems = r->cap_problems ? r->cap_problems * 2 : 8;
		r->problems = xrealloc(r->problems,
				       r->cap_problems * sizeof(*r->problems));
	}
	r->problems[r->n_problems].path = xstrdup(path);
	r->problems[r->n_problems].table = xstrdup(table);
	r->problems[r->n_problems].what = xstrdup(what);
	r->n_problems++;
}

/* ---- one file ---------------------------------------------------------- */

struct vfy_src {
	struct vfy *v;
	struct storage_file *f;
	struct checksum cks;
	uint64_t bytes;
};

/* zst_reader's source: every stored byte passes through here, so the stored
 * checksum covers exactly what was decompressed. */
static int vfy_source(void *ctx, void *buf, size_t cap, size_t *got,
		      struct err *e)
{
	struct vfy_src *s = ctx;
	int rc;

	if (vfy_aborted(s->v))
		return err_set(e, ERR_ABORTED, "verify aborted");
	if (cap > VERIFY_IO)
		cap = VERIFY_IO;
	rc = storage_read(s->f, buf, cap, got, e);
	if (rc == 0 && *got) {
		checksum_update(&s->cks, buf, *got);
		s->bytes += *got;
		s->v->rep->bytes_read += *got;
	}
	return rc;
}

/* Whether a reader error says something about the data (a verdict) rather
 * than about reaching it. */
static bool vfy_data_error(int code)
{
	return code == ERR_CORRUPT || code == ERR_VERIFY;
}

/* Checks files[fi]. Returns 0 when the file was judged (*ok says how) or a
 * negative code when the repository could not be read or the run was
 * aborted: then nothing is concluded. */
static int vfy_file(struct vfy *v, const struct manifest *m, size_t fi,
		    bool *ok, struct err *e)
{
	const struct manifest_file *mf = &m->files[fi];
	struct vfy_src src = { .v = v };
	struct zst_reader *zr = NULL;
	struct checksum raw;
	char path[2 * STORAGE_PATH_MAX + 2];
	char cks_stored[CHECKSUM_HEX_MAX], cks_raw[CHECKSUM_HEX_MAX];
	char decode_err[sizeof(e->msg)] = "";
	uint64_t raw_bytes = 0, rows = 0;
	struct err fe;
	int rc;

	*ok = false;
	snprintf(path, sizeof(path), "%s/%s", v->dir, mf->path);
	err_init(&fe);
	rc = storage_open_read(v->st, path, &src.f, &fe);
	if (rc) {
		if (fe.sys_errno == ENOENT) {
			vfy_problem(v, mf->path, NULL, "missing from the repository");
			return 0;
		}
		*e = fe;
		return rc;
	}
	checksum_init(&src.cks);
	checksum_init(&raw);
	rc = zst_reader_new(vfy_source, &src, &zr, &fe);
	while (rc == 0) {
		size_t got = 0;

		rc = zst_reader_read(zr, v->buf, VERIFY_IO, &got, &fe);
		if (rc || got == 0)
			break;
		checksum_update(&raw, v->buf, got);
		raw_bytes += got;
		rows += tsv_count_rows(v->buf, got);
	}
	if (rc && vfy_data_error(fe.code)) {
		/* Bad data: read the rest as stored, so the verdict can name
		 * the root cause (a stored size or checksum that differs). */
		str_copy(decode_err, sizeof(decode_err), fe.msg);
		err_init(&fe);
		rc = 0;
		for (;;) {
			size_t got = 0;

			rc = vfy_source(&src, v->buf, VERIFY_IO, &got, &fe);
			if (rc || got == 0)
				break;
		}
	}
	zst_reader_free(zr);
	if (rc == 0)
		rc = storage_file_close(src.f, &fe);
	else
		storage_file_close(src.f, NULL);
	if (rc) {
		*e = fe;
		checksum_release(&src.cks);
		checksum_release(&raw);
		return rc;
	}
	checksum_final(&src.cks, cks_stored);
	checksum_final(&raw, cks_raw);
	checksum_release(&src.cks);
	checksum_release(&raw);
	v->rep->files_checked++;
	v->rep->bytes_raw += raw_bytes;
	v->rep->rows += rows;

	/* Most telling difference first: a damaged stored file explains any
	 * decompression error or raw mismatch that follows from it. */
	if (src.bytes != mf->bytes_stored)
		vfy_problem(v, mf->path, NULL, "stored size %" PRIu64
			    " bytes != manifest %" PRIu64, src.bytes,
			    mf->bytes_stored);
	else if (strcmp(cks_stored, mf->checksum_stored) != 0)
		vfy_problem(v, mf->path, NULL, "stored checksum %s != manifest %s",
			    cks_stored, mf->checksum_stored);
	else if (decode_err[0])
		vfy_problem(v, mf->path, NULL, "cannot be decompressed: %s",
			    decode_err);
	else if (raw_bytes != mf->bytes_raw)
		vfy_problem(v, mf->path, NULL, "raw size %" PRIu64
			    " bytes != manifest %" PRIu64, raw_bytes,
			    mf->bytes_raw);
	else if (strcmp(cks_raw, mf->checksum_raw) != 0)
		vfy_problem(v, mf->path, NULL, "raw checksum %s != manifest %s",
			    cks_raw, mf->checksum_raw);
	else if (mf->kind == MANIFEST_FILE_DATA && rows != mf->rows)
		vfy_problem(v, mf->path, NULL, "%" PRIu64 " rows != manifest %"
			    PRIu64, rows, mf->rows);
	else
		*ok = true;
	return 0;
}

/* ---- tables ------------------------------------------------------------ */

struct vfy_chunk {
	int64_t chunk;
	size_t file;
};

static int vfy_chunk_cmp(const void *a, const void *b)
{
	const struct vfy_chunk *x = a, *y = b;

	return (x->chunk > y->chunk) - (x->chunk < y->chunk);
}

/* A table is checked only when all its files are good: otherwise the bad
 * file is the finding and the table mismatch would just repeat it. Good
 * files have exactly the manifest's raw checksums and rows, so the sums
 * are built from those, in chunk order as the engine does. */
static void vfy_tables(struct vfy *v, const struct manifest *m,
		       const bool *file_ok)
{
	for (size_t ti = 0; ti < m->n_tables; ti++) {
		const struct manifest_table *t = &m->tables[ti];
		struct vfy_chunk *ch;
		struct checksum tc;
		char sum[CHECKSUM_HEX_MAX], name[600];
		uint64_t rows = 0;
		bool all_ok = true;

		snprintf(name, sizeof(name), "%s.%s", t->schema, t->name);
		ch = xcalloc(t->n_files ? t->n_files : 1, sizeof(*ch));
		for (size_t k = 0; k < t->n_files; k++) {
			ch[k].file = t->files[k];
			ch[k].chunk = m->files[t->files[k]].chunk;
			if (!file_ok[t->files[k]])
				all_ok = false;
		}
		if (!all_ok) {
			v->rep->tables_bad++;
			free(ch);
			continue;
		}
		qsort(ch, t->n_files, sizeof(*ch), vfy_chunk_cmp);
		checksum_init(&tc);
		for (size_t k = 0; k < t->n_files; k++) {
			const struct manifest_file *f = &m->files[ch[k].file];

			checksum_update(&tc, f->checksum_raw, strlen(f->checksum_raw));
			rows += f->rows;
		}
		checksum_final(&tc, sum);
		checksum_release(&tc);
		free(ch);
		/* The engine leaves a table without data files unsummed. */
		if (t->checksum && strcmp(sum, t->checksum) != 0) {
			v->rep->tables_bad++;
			vfy_problem(v, NULL, name, "checksum %s != manifest %s",
				    sum, t->checksum);
		} else if (rows != t->rows) {
			v->rep->tables_bad++;
			vfy_problem(v, NULL, name, "%" PRIu64 " rows != manifest %"
				    PRIu64, rows, t->rows);
		}
	}
}

/* ---- finding the snapshot ---------------------------------------------- */

int snapshot_id_check(const char *id, struct err *e)
{
	struct err pe;

	err_init(&pe);
	if (!id || !*id || strchr(id, '/') || storage_path_check(id, &pe) != 0)
		return err_set(e, ERR_USAGE, "invalid snapshot id '%.200s'",
			       id ? id : "");
	return 0;
}

int snapshot_find_cluster(const struct config *cfg, struct catalog *cat,
			  struct storage *st, const char *id, char **cluster,
			  struct err *e)
{
	struct catalog_snapshot row;
	struct err ce;
	int rc;

	*cluster = NULL;
	if ((rc = snapshot_id_check(id, e)))
		return rc;
	if (cat) {
		err_init(&ce);
		rc = catalog_snapshot_get(cat, id, &row, &ce);
		if (rc == 0) {
			*cluster = xstrdup(row.cluster);
			catalog_snapshot_release(&row);
			return 0;
		}
		if (rc != ERR_NOT_FOUND) {
			*e = ce;
			return rc;
		}
	}
	for (size_t i = 0; i < cfg->n_clusters; i++) {
		struct storage_stat sst;
		char path[2 * STORAGE_PATH_MAX];

		snprintf(path, sizeof(path), "%s/%s/%s", cfg->clusters[i].name, id,
			 MANIFEST_NAME);
		if ((rc = storage_stat(st, path, &sst, e)))
			return rc;
		if (sst.exists) {
			*cluster = xstrdup(cfg->clusters[i].name);
			return 0;
		}
	}
	return err_set(e, ERR_NOT_FOUND,
		       "no snapshot '%s' in the catalog or the repository", id);
}

int snapshot_manifest_load(struct storage *st, const char *cluster,
			   const char *id, struct manifest **out, char **json,
			   size_t *json_len, struct err *e)
{
	char path[2 * STORAGE_PATH_MAX];
	char *data = NULL;
	size_t n = 0;
	struct err re;
	int rc;

	*out = NULL;
	if (json)
		*json = NULL;
	if (json_len)
		*json_len = 0;
	snprintf(path, sizeof(path), "%s/%s/%s", cluster, id, MANIFEST_NAME);
	err_init(&re);
	rc = storage_read_all(st, path, VERIFY_MANIFEST_MAX, &data, &n, &re);
	if (rc) {
		if (re.sys_errno == ENOENT)
			return err_set(e, ERR_NOT_FOUND,
				       "no manifest '%s' in repository '%s': the snapshot does not exist",
				       path, storage_url_redacted(st));
		if (re.sys_errno == EFBIG)
			return err_set(e, ERR_CORRUPT, "%s", re.msg);
		*e = re;
		return rc;
	}
	rc = manifest_parse(data, n, out, e);
	if (rc == 0 && (!(*out)->id || strcmp((*out)->id, id) != 0 ||
			!(*out)->cluster || strcmp((*out)->cluster, cluster) != 0)) {
		rc = err_set(e, ERR_CORRUPT,
			     "manifest '%s' describes snapshot '%s/%s', not the folder it is in",
			     path, (*out)->cluster ? (*out)->cluster : "",
			     (*out)->id ? (*out)->id : "");
		manifest_free(*out);
		*out = NULL;
	} else if (rc) {
		err_prefix(e, "'%s': ", path);
	}
	if (rc == 0 && json) {
		*json = data;
		if (json_len)
			*json_len = n;
	} else {
		free(data);
	}
	return rc;
}

/* ---- the run ------------------------------------------------------------ */

static json_t *vfy_jstr(const char *s)
{
	json_t *j = s ? json_string(s) : NULL;

	return j ? j : json_null();
}

/* verify.ok / verify.failed with the verify status, in one transaction. */
static int vfy_record(struct catalog *cat, const char *cluster, const char *id,
		      bool set_status, const struct verify_report *rep,
		      const struct err *verr, struct err *e)
{
	bool ok = !err_is_set(verr);
	json_t *p = json_object();
	char *payload;
	int rc;

	json_object_set_new(p, "id", vfy_jstr(id));
	json_object_set_new(p, "files", json_integer((json_int_t)rep->files_total));
	json_object_set_new(p, "files_bad", json_integer((json_int_t)rep->files_bad));
	json_object_set_new(p, "tables_bad", json_integer((json_int_t)rep->tables_bad));
	json_object_set_new(p, "bytes_read", json_integer((json_int_t)rep->bytes_read));
	json_object_set_new(p, "seconds", json_real(rep->seconds));
	if (!ok) {
		json_object_set_new(p, "error", vfy_jstr(verr->msg));
		json_object_set_new(p, "error_code", vfy_jstr(err_code_name(verr->code)));
	}
	payload = json_dumps(p, JSON_COMPACT);
	json_decref(p);
	if (!payload)
		return err_set(e, ERR_INTERNAL, "unable to encode the verify event");

	rc = catalog_begin(cat, e);
	if (rc == 0 && set_status)
		rc = catalog_snapshot_set_verified(cat, id, ok, e);
	if (rc == 0)
		rc = catalog_event_add(cat, cluster, NULL,
				       ok ? "verify.ok" : "verify.failed",
				       ok ? "info" : "error", payload, NULL, e);
	if (rc == 0)
		rc = catalog_commit(cat, e);
	else
		catalog_rollback(cat, NULL);
	free(payload);
	return rc;
}

static int vfy_run(struct vfy *v, const char *cluster, const char *id,
		   struct err *e)
{
	struct manifest *m = NULL;
	bool *file_ok = NULL;
	int rc;

	rc = snapshot_manifest_load(v->st, cluster, id, &m, NULL, NULL, e);
	if (rc)
		return rc;
	v->rep->files_total = m->n_files;
	v->rep->tables_total = m->n_tables;
	file_ok = xcalloc(m->n_files ? m->n_files : 1, sizeof(*file_ok));
	v->buf = xmalloc(VERIFY_IO);
	for (size_t i = 0; rc == 0 && i < m->n_files; i++) {
		if (vfy_aborted(v)) {
			rc = err_set(e, ERR_ABORTED, "verify aborted");
			break;
		}
		rc = vfy_file(v, m, i, &file_ok[i], e);
		if (rc == 0 && !file_ok[i])
			v->rep->files_bad++;
		if (v->o->progress && rc == 0)
			fprintf(stderr, "verify %s: [%zu/%zu] %s %s\n", v->dir, i + 1,
				m->n_files, m->files[i].path,
				file_ok[i] ? "ok" : "BAD");
	}
	if (rc == 0)
		vfy_tables(v, m, file_ok);
	if (rc && !err_is_set(e))
		err_set(e, rc, "verify stopped");
	free(v->buf);
	v->buf = NULL;
	free(file_ok);
	manifest_free(m);
	return rc;
}

int snapshot_verify_ex(const struct config *cfg, struct catalog *cat,
		       const char *cluster, const char *id,
		       const struct verify_opts *o, struct verify_report *rep,
		       struct err *e)
{
	static const struct verify_opts defaults = { .trigger = "manual" };
	struct vfy v;
	struct storage_opts so;
	struct catalog_snapshot row;
	bool complete = false;
	char *found = NULL;
	int64_t job_id = -1;
	double t0 = vfy_mono();
	struct err ce;
	int rc;

	memset(&v, 0, sizeof(v));
	v.o = o ? o : &defaults;
	v.rep = rep;
	verify_report_init(rep);
	catalog_snapshot_init(&row);

	if ((rc = snapshot_id_check(id, e)))
		return rc;
	storage_opts_init(&so);
	so.create_root = false;
	rc = storage_open(cfg->repository, &so, &v.st, e);
	if (rc == 0 && !cluster)
		rc = snapshot_find_cluster(cfg, cat, v.st, id, &found, e);
	if (rc)
		goto out;
	if (!cluster)
		cluster = found;
	rep->id = xstrdup(id);
	rep->cluster = xstrdup(cluster);
	if (snprintf(v.dir, sizeof(v.dir), "%s/%s", cluster, id) >= (int)sizeof(v.dir)) {
		rc = err_set(e, ERR_USAGE, "snapshot path '%s/%s' is too long", cluster, id);
		goto out;
	}
	if (cat) {
		err_init(&ce);
		rc = catalog_snapshot_get(cat, id, &row, &ce);
		if (rc == 0) {
			complete = strcmp(row.status, "complete") == 0;
		} else if (rc != ERR_NOT_FOUND) {
			*e = ce;
			goto out;
		}
		rc = catalog_job_start_ex(cat, "verify", cluster,
					  v.o->trigger ? v.o->trigger : "manual",
					  v.o->schedule, id, &job_id, e);
		if (rc)
			goto out;
	}

	log_info(MOD, "verifying snapshot '%s' in '%s'", v.dir,
		 storage_url_redacted(v.st));
	rc = vfy_run(&v, cluster, id, e);
	rep->seconds = vfy_mono() - t0;
	if (rc == 0 && v.n_problems_total > 0) {
		char more[96] = "";

		if (v.n_problems_total > 1)
			snprintf(more, sizeof(more), " (and %" PRIu64 " more problem%s)",
				 v.n_problems_total - 1,
				 v.n_problems_total > 2 ? "s" : "");
		rc = err_set(e, ERR_VERIFY, "verify of '%s': %s%s", v.dir, v.first, more);
	} else if (rc && rc != ERR_VERIFY) {
		err_prefix(e, "verify of '%s': ", v.dir);
	}
	rep->ok = rc == 0;
	if (rc == 0)
		log_info(MOD, "snapshot '%s' verified: %" PRIu64 " files, %" PRIu64
			 " bytes read in %.2f s", v.dir, rep->files_checked,
			 rep->bytes_read, rep->seconds);

	/* A verdict on the data goes on record; a repository that could not
	 * be read says nothing about it, and a snapshot still being written
	 * or already pruned has no manifest for good reasons. */
	if (cat && (rc == 0 || rc == ERR_VERIFY || rc == ERR_CORRUPT ||
		    (rc == ERR_NOT_FOUND && complete))) {
		err_init(&ce);
		if (vfy_record(cat, cluster, id, complete, rep, rc ? e : NULL, &ce) != 0) {
			log_error(MOD, "unable to record the verify of '%s': %s",
				  v.dir, ce.msg);
			if (rc == 0) {
				*e = ce;
				rc = ce.code;
			}
		}
	}
	if (job_id >= 0) {
		err_init(&ce);
		if (catalog_job_finish(cat, job_id,
				       rc == 0 ? "ok" : rc == ERR_ABORTED ? "aborted" : "failed",
				       rc ? e : NULL, &ce) != 0)
			log_error(MOD, "unable to record the end of verify job %" PRId64 ": %s",
				  job_id, ce.msg);
	}
out:
	if (rep->seconds == 0)
		rep->seconds = vfy_mono() - t0;
	catalog_snapshot_release(&row);
	free(found);
	storage_close(v.st);
	return rc;
}

int snapshot_verify(const struct config *cfg, struct catalog *cat,
		    const char *cluster, const char *id,
		    struct verify_report *rep, struct err *e)
{
	return snapshot_verify_ex(cfg, cat, cluster, id, NULL, rep, e);
}
