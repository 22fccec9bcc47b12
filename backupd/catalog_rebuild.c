/* Catalog rebuild: scan <repository>/<cluster>/<id>/manifest.json and make
 * the catalog's snapshot rows say what the repository holds. The scan
 * happens before the transaction; manifests are read inside it, one at a
 * time, so memory stays bounded by the largest manifest. Each snapshot is
 * applied under a savepoint so one the catalog cannot take is skipped, not
 * fatal.
 *
 * Threading: runs in the catalog's owner thread. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "catalog_rebuild.h"
#include "checksum.h"
#include "log.h"
#include "manifest.h"
#include "mem.h"
#include "storage.h"
#include "verify.h"

#define MOD "catalog"
/* Manifest times carry milliseconds, the engine's catalog rows more. */
#define REBUILD_TIME_SLACK_S 0.002

const char *catalog_rebuild_action_name(enum catalog_rebuild_action a)
{
	switch (a) {
	case CATALOG_REBUILD_CREATED: return "created";
	case CATALOG_REBUILD_UPDATED: return "updated";
	case CATALOG_REBUILD_DELETED: return "deleted";
	case CATALOG_REBUILD_INCOMPLETE: return "incomplete";
	case CATALOG_REBUILD_CORRUPT: return "corrupt";
	case CATALOG_REBUILD_SKIPPED: return "skipped";
	}
	return "?";
}

void catalog_rebuild_report_init(struct catalog_rebuild_report *r)
{
	memset(r, 0, sizeof(*r));
}

void catalog_rebuild_report_release(struct catalog_rebuild_report *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n_items; i++) {
		free(r->items[i].cluster);
		free(r->items[i].id);
		free(r->items[i].detail);
	}
	free(r->items);
	catalog_rebuild_report_init(r);
}

static void crb_item(struct catalog_rebuild_report *r,
		     enum catalog_rebuild_action a, const char *cluster,
		     const char *id, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
static void crb_item(struct catalog_rebuild_report *r,
		     enum catalog_rebuild_action a, const char *cluster,
		     const char *id, const char *fmt, ...)
{
	char detail[600];
	va_list ap;

	switch (a) {
	case CATALOG_REBUILD_CREATED: r->created++; break;
	case CATALOG_REBUILD_UPDATED: r->updated++; break;
	case CATALOG_REBUILD_DELETED: r->deleted++; break;
	case CATALOG_REBUILD_INCOMPLETE: r->incomplete++; break;
	case CATALOG_REBUILD_CORRUPT: r->corrupt++; break;
	case CATALOG_REBUILD_SKIPPED: r->skipped++; break;
	}
	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	if (a == CATALOG_REBUILD_CORRUPT)
		log_warn(MOD, "rebuild: skipping '%s/%s': %s", cluster, id, detail);
	else
		log_info(MOD, "rebuild: %s '%s/%s': %s",
			 catalog_rebuild_action_name(a), cluster, id, detail);
	if (r->n_items >= CATALOG_REBUILD_ITEMS_MAX)
		return;
	if (r->n_items == r->cap_items) {
		r->cap_items = r->cap_items ? r->cap_items * 2 : 16;
		r->items = xrealloc(r->items, r->cap_items * sizeof(*r->items));
	}
	r->items[r->n_items].action = a;
	r->items[r->n_items].cluster = xstrdup(cluster);
	r->items[r->n_items].id = xstrdup(id);
	r->items[r->n_items].detail = xstrdup(detail);
	r->n_items++;
}

/* ---- the scan ------------------------------------------------------------ */

enum crb_state {
	CRB_HAS_MANIFEST,     /* found by the scan */
	CRB_NO_MANIFEST,      /* found by the scan: incomplete */
	CRB_PRESENT,          /* applied, unchanged, skipped or corrupt: keep its row */
	CRB_ABSENT,           /* vanished while we looked */
};

struct crb_entry {
	char *cluster;
	char *id;
	enum crb_state state;
};

struct crb_scan {
	struct crb_entry *v;
	size_t n, cap;
};

static void crb_scan_free(struct crb_scan *s)
{
	for (size_t i = 0; i < s->n; i++) {
		free(s->v[i].cluster);
		free(s->v[i].id);
	}
	free(s->v);
}

static int crb_entry_cmp(const void *a, const void *b)
{
	const struct crb_entry *x = a, *y = b;
	int c = strcmp(x->cluster, y->cluster);

	return c ? c : strcmp(x->id, y->id);
}

/* Dot folders are never ours (".snapshot" of NFS filers, editors' and
 * rsync's temporaries). */
static bool crb_skip_name(const char *name)
{
	return name[0] == '.';
}

static int crb_is_dir(struct storage *st, const char *rel, bool *is_dir,
		      struct err *e)
{
	struct storage_stat sst;
	int rc = storage_stat(st, rel, &sst, e);

	*is_dir = rc == 0 && sst.exists && sst.is_dir;
	return rc;
}

static int crb_scan_cluster(struct storage *st, const char *cluster,
			    struct crb_scan *s, struct catalog_rebuild_report *rep,
			    struct err *e)
{
	char **names = NULL;
	size_t n = 0;
	int rc;

	rc = storage_list(st, cluster, &names, &n, e);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		char dir[2 * STORAGE_PATH_MAX], man[3 * STORAGE_PATH_MAX];
		struct storage_stat sst;
		bool is_dir;

		if (crb_skip_name(names[i]))
			continue;
		snprintf(dir, sizeof(dir), "%s/%s", cluster, names[i]);
		if ((rc = crb_is_dir(st, dir, &is_dir, e)) || !is_dir)
			continue;
		snprintf(man, sizeof(man), "%s/%s", dir, MANIFEST_NAME);
		if ((rc = storage_stat(st, man, &sst, e)))
			break;
		rep->folders++;
		if (s->n == s->cap) {
			s->cap = s->cap ? s->cap * 2 : 64;
			s->v = xrealloc(s->v, s->cap * sizeof(*s->v));
		}
		s->v[s->n].cluster = xstrdup(cluster);
		s->v[s->n].id = xstrdup(names[i]);
		s->v[s->n].state = sst.exists ? CRB_HAS_MANIFEST : CRB_NO_MANIFEST;
		s->n++;
	}
	storage_list_free(names, n);
	return rc;
}

static int crb_scan(struct storage *st, struct crb_scan *s,
		    struct catalog_rebuild_report *rep, struct err *e)
{
	char **names = NULL;
	size_t n = 0;
	int rc;

	rc = storage_list(st, "", &names, &n, e);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		bool is_dir;

		if (crb_skip_name(names[i]))
			continue;
		if ((rc = crb_is_dir(st, names[i], &is_dir, e)) || !is_dir)
			continue;
		rep->clusters++;
		rc = crb_scan_cluster(st, names[i], s, rep, e);
	}
	storage_list_free(names, n);
	if (rc == 0 && s->n > 1)
		qsort(s->v, s->n, sizeof(*s->v), crb_entry_cmp);
	return rc;
}

/* ---- comparing a row with its manifest ------------------------------------ */

static bool crb_str_eq(const char *a, const char *b)
{
	/* The engine writes "no GTID" as NULL in the catalog and "" in the
	 * manifest. */
	return strcmp(a ? a : "", b ? b : "") == 0;
}

static const char *crb_hex(const char *checksum)
{
	return checksum ? checksum_hex_part(checksum) : NULL;
}

static int crb_path_cmp(const void *a, const void *b)
{
	const struct manifest_file *x = *(const struct manifest_file *const *)a;
	const struct manifest_file *y = *(const struct manifest_file *const *)b;

	return strcmp(x->path, y->path);
}

static int crb_table_cmp(const void *a, const void *b)
{
	const struct manifest_table *x = *(const struct manifest_table *const *)a;
	const struct manifest_table *y = *(const struct manifest_table *const *)b;
	int c = strcmp(x->schema, y->schema);

	return c ? c : strcmp(x->name, y->name);
}

static bool crb_time_eq(double a, double b)
{
	return fabs(a - b) < REBUILD_TIME_SLACK_S;
}

/* Whether the catalog's files and tables of id match m; *why names the
 * first difference. */
static int crb_same_contents(struct catalog *cat, const char *id,
			     const struct manifest *m, char *why, size_t why_n,
			     bool *same, struct err *e)
{
	struct catalog_snapshot_file *cf = NULL;
	struct catalog_snapshot_table *ct = NULL;
	const struct manifest_file **mf = NULL;
	const struct manifest_table **mt = NULL;
	size_t ncf = 0, nct = 0;
	int rc;

	*same = false;
	/* The catalog lists at most CATALOG_LIST_MAX: beyond, the counts
	 * compared by the caller have to do. */
	if (m->n_files > CATALOG_LIST_MAX || m->n_tables > CATALOG_LIST_MAX) {
		*same = true;
		return 0;
	}
	rc = catalog_snapshot_files(cat, id, &cf, &ncf, e);
	if (rc == 0)
		rc = catalog_snapshot_tables(cat, id, &ct, &nct, e);
	if (rc)
		goto out;
	if (ncf != m->n_files) {
		snprintf(why, why_n, "%zu files in the catalog, %zu in the manifest",
			 ncf, m->n_files);
		goto out;
	}
	if (nct != m->n_tables) {
		snprintf(why, why_n, "%zu tables in the catalog, %zu in the manifest",
			 nct, m->n_tables);
		goto out;
	}
	mf = xcalloc(m->n_files ? m->n_files : 1, sizeof(*mf));
	for (size_t i = 0; i < m->n_files; i++)
		mf[i] = &m->files[i];
	qsort(mf, m->n_files, sizeof(*mf), crb_path_cmp);
	for (size_t i = 0; i < ncf; i++) {
		const struct manifest_file *f = mf[i];
		const char *kind = f->kind == MANIFEST_FILE_DATA ? "data" : "schema";

		if (strcmp(cf[i].path, f->path) != 0 || !crb_str_eq(cf[i].kind, kind) ||
		    cf[i].bytes_raw != (int64_t)f->bytes_raw ||
		    cf[i].bytes_stored != (int64_t)f->bytes_stored ||
		    !crb_str_eq(cf[i].checksum, crb_hex(f->checksum_stored))) {
			snprintf(why, why_n, "file '%s' differs from the manifest",
				 f->path);
			goto out;
		}
	}
	mt = xcalloc(m->n_tables ? m->n_tables : 1, sizeof(*mt));
	for (size_t i = 0; i < m->n_tables; i++)
		mt[i] = &m->tables[i];
	qsort(mt, m->n_tables, sizeof(*mt), crb_table_cmp);
	for (size_t i = 0; i < nct; i++) {
		const struct manifest_table *t = mt[i];

		if (!crb_str_eq(ct[i].schema_name, t->schema) ||
		    !crb_str_eq(ct[i].table_name, t->name) ||
		    !crb_str_eq(ct[i].engine, t->engine) ||
		    ct[i].n_rows != (int64_t)t->rows ||
		    !crb_str_eq(ct[i].checksum, crb_hex(t->checksum))) {
			snprintf(why, why_n, "table '%s.%s' differs from the manifest",
				 t->schema, t->name);
			goto out;
		}
	}
	*same = true;
out:
	free(mf);
	free(mt);
	catalog_snapshot_file_free_list(cf, ncf);
	catalog_snapshot_table_free_list(ct, nct);
	return rc;
}

struct crb_times {
	double started, finished;
};

static int crb_same(struct catalog *cat, const struct catalog_snapshot *row,
		    const struct manifest *m, const struct crb_times *tm,
		    char *why, size_t why_n, bool *same, struct err *e)
{
	const struct manifest_position *p = &m->position;

	*same = false;
	if (!crb_str_eq(row->gtid, p->gtid))
		snprintf(why, why_n, "gtid '%s' in the catalog, '%s' in the manifest",
			 row->gtid ? row->gtid : "", p->gtid ? p->gtid : "");
	else if (!crb_str_eq(row->binlog_file, p->binlog_file) ||
		 (p->binlog_file && row->binlog_pos != (int64_t)p->binlog_pos))
		snprintf(why, why_n, "binlog position differs from the manifest");
	else if (!crb_time_eq(row->started_at, tm->started) ||
		 !crb_time_eq(row->finished_at, tm->finished))
		snprintf(why, why_n, "start or end time differs from the manifest");
	else if (!crb_str_eq(row->source_server, m->source.address))
		snprintf(why, why_n, "source '%s' in the catalog, '%s' in the manifest",
			 row->source_server ? row->source_server : "",
			 m->source.address ? m->source.address : "");
	else if (row->bytes_raw != (int64_t)m->totals.bytes_raw ||
		 row->bytes_stored != (int64_t)m->totals.bytes_stored ||
		 row->n_files != (int64_t)m->n_files ||
		 row->n_tables != (int64_t)m->n_tables)
		snprintf(why, why_n, "totals differ from the manifest");
	else
		return crb_same_contents(cat, row->id, m, why, why_n, same, e);
	return 0;
}

/* ---- writing a row from a manifest ---------------------------------------- */

static int crb_write(struct catalog *cat, struct storage *st, const char *cluster,
		     const char *id, const struct manifest *m,
		     const struct crb_times *tm, int64_t job_id, struct err *e)
{
	struct catalog_snapshot s;
	char path[2 * STORAGE_PATH_MAX];
	int rc;

	snprintf(path, sizeof(path), "%s/%s/%s", cluster, id, MANIFEST_NAME);
	catalog_snapshot_init(&s);
	s.id = (char *)id;
	s.cluster = (char *)cluster;
	s.job_id = job_id;
	s.source_server = m->source.address;
	s.server_flavor = m->source.flavor;
	s.server_version = m->source.version;
	s.server_id = m->source.server_id;
	s.compress_level = m->settings.compress_level;
	s.threads = m->settings.threads;
	s.repository = (char *)storage_url_redacted(st);
	s.manifest_path = path;
	s.started_at = tm->started;
	rc = catalog_snapshot_insert(cat, &s, e);
	if (rc)
		return rc;
	s.finished_at = tm->finished;
	s.gtid = m->position.gtid;
	s.binlog_file = m->position.binlog_file;
	s.binlog_pos = m->position.binlog_file ? (int64_t)m->position.binlog_pos : -1;
	s.bytes_raw = (int64_t)m->totals.bytes_raw;
	s.bytes_stored = (int64_t)m->totals.bytes_stored;
	s.n_files = (int64_t)m->n_files;
	s.n_tables = (int64_t)m->n_tables;
	rc = catalog_snapshot_complete(cat, &s, e);
	for (size_t i = 0; rc == 0 && i < m->n_files; i++) {
		const struct manifest_file *f = &m->files[i];
		const struct manifest_table *t = f->table >= 0 ? &m->tables[f->table] : NULL;
		struct catalog_snapshot_file cf = {
			.path = f->path,
			.kind = f->kind == MANIFEST_FILE_DATA ? "data" : "schema",
			.schema_name = t ? t->schema : NULL,
			.table_name = t ? t->name : NULL,
			.bytes_raw = (int64_t)f->bytes_raw,
			.bytes_stored = (int64_t)f->bytes_stored,
			.checksum_algo = CHECKSUM_ALGO,
			.checksum = (char *)checksum_hex_part(f->checksum_stored),
		};
		rc = catalog_snapshot_add_file(cat, id, &cf, e);
	}
	for (size_t i = 0; rc == 0 && i < m->n_tables; i++) {
		const struct manifest_table *t = &m->tables[i];
		struct catalog_snapshot_table ct = {
			.schema_name = t->schema, .table_name = t->name,
			.engine = t->engine, .n_rows = (int64_t)t->rows,
			.checksum_algo = CHECKSUM_ALGO,
			.checksum = (char *)crb_hex(t->checksum),
		};
		rc = catalog_snapshot_add_table(cat, id, &ct, e);
	}
	return rc;
}

/* Status of job id: *running true while it runs. A missing job is not. */
static int crb_job_running(struct catalog *cat, int64_t job_id, bool *running,
			   struct err *e)
{
	sqlite3 *db = catalog_sqlite(cat);
	sqlite3_stmt *st = NULL;
	int rc;

	*running = false;
	if (job_id < 0)
		return 0;
	if (sqlite3_prepare_v2(db, "SELECT status FROM jobs WHERE id = ?", -1,
			       &st, NULL) != SQLITE_OK)
		return catalog_error(cat, "unable to read job status", e);
	sqlite3_bind_int64(st, 1, job_id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		const unsigned char *s = sqlite3_column_text(st, 0);
		*running = s && strcmp((const char *)s, "running") == 0;
	} else if (rc != SQLITE_DONE) {
		catalog_error(cat, "unable to read job status", e);
		sqlite3_finalize(st);
		return ERR_CATALOG;
	}
	sqlite3_finalize(st);
	return 0;
}

/* One folder with a manifest.json. Returns an error only for what makes
 * the whole rebuild pointless (catalog or repository failures). */
static int crb_apply(struct catalog *cat, struct storage *st,
		     struct crb_entry *en, struct catalog_rebuild_report *rep,
		     struct err *e)
{
	struct manifest *m = NULL;
	struct catalog_snapshot row;
	struct crb_times tm;
	struct err me;
	char why[400] = "";
	bool have_row = false, same = false;
	int rc;

	err_init(&me);
	catalog_snapshot_init(&row);
	rc = snapshot_manifest_load(st, en->cluster, en->id, &m, NULL, NULL, &me);
	if (rc == 0 && (!m->started_at || !m->finished_at)) {
		err_set(&me, ERR_CORRUPT, "manifest has no start or end time");
		rc = ERR_CORRUPT;
	}
	if (rc == 0 && (manifest_time_parse(m->started_at, &tm.started, &me) != 0 ||
			manifest_time_parse(m->finished_at, &tm.finished, &me) != 0)) {
		err_prefix(&me, "manifest times: ");
		rc = ERR_CORRUPT;
	}
	if (rc == ERR_NOT_FOUND) {
		/* Removed between the scan and now (a prune): gone. */
		en->state = CRB_ABSENT;
		return 0;
	}
	if (rc == ERR_CORRUPT) {
		en->state = CRB_PRESENT;
		crb_item(rep, CATALOG_REBUILD_CORRUPT, en->cluster, en->id, "%s", me.msg);
		return 0;
	}
	if (rc) {
		*e = me;
		return rc;
	}
	en->state = CRB_PRESENT;
	rep->snapshots++;

	rc = catalog_snapshot_get(cat, en->id, &row, &me);
	if (rc == 0)
		have_row = true;
	else if (rc != ERR_NOT_FOUND)
		goto fail;
	rc = 0;
	if (have_row && strcmp(row.status, "running") == 0) {
		bool running;

		if ((rc = crb_job_running(cat, row.job_id, &running, &me)))
			goto fail;
		if (running) {
			crb_item(rep, CATALOG_REBUILD_SKIPPED, en->cluster, en->id,
				 "being written by job %" PRId64, row.job_id);
			goto done;
		}
		snprintf(why, sizeof(why), "left running by a job that ended; "
			 "its manifest is complete");
	} else if (have_row && strcmp(row.cluster, en->cluster) != 0) {
		snprintf(why, sizeof(why), "was indexed under cluster '%s'", row.cluster);
	} else if (have_row && strcmp(row.status, "complete") != 0) {
		snprintf(why, sizeof(why), "was %s; its manifest is valid", row.status);
	} else if (have_row) {
		if ((rc = crb_same(cat, &row, m, &tm, why, sizeof(why), &same, &me)))
			goto fail;
		if (same) {
			rep->unchanged++;
			goto done;
		}
	}

	/* A savepoint per snapshot: a manifest the catalog refuses (a
	 * constraint) is skipped without losing the others. */
	if ((rc = catalog_exec(cat, "SAVEPOINT rebuild_one", &me)))
		goto fail;
	if (have_row)
		rc = catalog_snapshot_delete(cat, en->id, &me);
	if (rc == 0)
		rc = crb_write(cat, st, en->cluster, en->id, m, &tm,
			       have_row ? row.job_id : -1, &me);
	if (rc == ERR_CATALOG && me.db_errno != 0 &&
	    (me.db_errno & 0xff) == SQLITE_CONSTRAINT) {
		struct err re;

		err_init(&re);
		if (catalog_exec(cat, "ROLLBACK TO rebuild_one; RELEASE rebuild_one", &re)) {
			*e = re;
			rc = re.code;
			goto out;
		}
		crb_item(rep, CATALOG_REBUILD_CORRUPT, en->cluster, en->id,
			 "the catalog refuses its manifest: %s", me.msg);
		rc = 0;
		goto done;
	}
	if (rc == 0)
		rc = catalog_exec(cat, "RELEASE rebuild_one", &me);
	if (rc)
		goto fail;
	if (have_row)
		crb_item(rep, CATALOG_REBUILD_UPDATED, en->cluster, en->id, "%s", why);
	else
		crb_item(rep, CATALOG_REBUILD_CREATED, en->cluster, en->id,
			 "complete, %zu files, %zu tables", m->n_files, m->n_tables);
done:
	rc = 0;
	goto out;
fail:
	*e = me;
	err_prefix(e, "snapshot '%s/%s': ", en->cluster, en->id);
out:
	catalog_snapshot_release(&row);
	manifest_free(m);
	return rc;
}

/* Complete rows whose manifest is not in the repository are marked
 * deleted. Failed and aborted rows never had a snapshot there. */
static int crb_mark_gone(struct catalog *cat, struct crb_scan *s,
			 struct catalog_rebuild_report *rep, struct err *e)
{
	struct catalog_snapshot *rows = NULL;
	size_t n = 0;
	int rc;

	rc = catalog_snapshot_list(cat, NULL, &rows, &n, e);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		struct crb_entry key = { .cluster = rows[i].cluster, .id = rows[i].id };
		struct crb_entry *en;

		if (strcmp(rows[i].status, "complete") != 0)
			continue;
		en = s->n ? bsearch(&key, s->v, s->n, sizeof(*s->v), crb_entry_cmp) : NULL;
		if (en && en->state == CRB_PRESENT)
			continue;
		rc = catalog_snapshot_mark_deleted(cat, rows[i].id,
						   "gone from the repository (catalog rebuild)", e);
		if (rc == 0)
			crb_item(rep, CATALOG_REBUILD_DELETED, rows[i].cluster, rows[i].id,
				 en ? "its folder has no manifest" : "its folder is gone");
	}
	catalog_snapshot_free_list(rows, n);
	return rc;
}

static int crb_id_cmp(const void *a, const void *b)
{
	const struct crb_entry *x = *(const struct crb_entry *const *)a;
	const struct crb_entry *y = *(const struct crb_entry *const *)b;
	int c = strcmp(x->id, y->id);

	return c ? c : strcmp(x->cluster, y->cluster);
}

/* An id may appear in one cluster folder only: the catalog keys snapshots
 * by id. The first cluster (bytewise) keeps it. */
static void crb_mark_duplicates(struct crb_scan *s,
				struct catalog_rebuild_report *rep)
{
	struct crb_entry **byid;

	if (s->n < 2)
		return;
	byid = xcalloc(s->n, sizeof(*byid));
	for (size_t i = 0; i < s->n; i++)
		byid[i] = &s->v[i];
	qsort(byid, s->n, sizeof(*byid), crb_id_cmp);
	for (size_t i = 0; i < s->n; i++) {
		size_t k;

		if (byid[i]->state != CRB_HAS_MANIFEST)
			continue;
		for (k = i + 1; k < s->n && strcmp(byid[k]->id, byid[i]->id) == 0; k++) {
			if (byid[k]->state != CRB_HAS_MANIFEST)
				continue;
			byid[k]->state = CRB_PRESENT;
			crb_item(rep, CATALOG_REBUILD_SKIPPED, byid[k]->cluster, byid[k]->id,
				 "the same id is in cluster '%s'", byid[i]->cluster);
		}
	}
	free(byid);
}

int catalog_rebuild(const struct config *cfg, struct catalog *cat,
		    struct catalog_rebuild_report *rep, struct err *e)
{
	struct storage *st = NULL;
	struct storage_opts so;
	struct crb_scan scan = { 0 };
	struct timespec t0, t1;
	int rc;

	catalog_rebuild_report_init(rep);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	storage_opts_init(&so);
	/* A mistyped repository must not look like an empty one. */
	so.create_root = false;
	rc = storage_open(cfg->repository, &so, &st, e);
	/* Jobs of dead processes would keep their snapshots "being written". */
	if (rc == 0)
		rc = catalog_job_reap(cat, NULL, e);
	if (rc == 0)
		rc = crb_scan(st, &scan, rep, e);
	if (rc)
		goto out;
	crb_mark_duplicates(&scan, rep);

	if ((rc = catalog_begin(cat, e)))
		goto out;
	for (size_t i = 0; rc == 0 && i < scan.n; i++) {
		struct crb_entry *en = &scan.v[i];

		if (en->state == CRB_HAS_MANIFEST) {
			rc = crb_apply(cat, st, en, rep, e);
		} else if (en->state == CRB_NO_MANIFEST) {
			struct catalog_snapshot row;
			struct err ge;
			bool writing = false;

			err_init(&ge);
			if (catalog_snapshot_get(cat, en->id, &row, &ge) == 0) {
				writing = strcmp(row.status, "running") == 0;
				catalog_snapshot_release(&row);
			}
			crb_item(rep, CATALOG_REBUILD_INCOMPLETE, en->cluster, en->id,
				 writing ? "no manifest yet: being written"
					 : "no manifest: incomplete, not a snapshot");
		}
	}
	if (rc == 0)
		rc = crb_mark_gone(cat, &scan, rep, e);
	if (rc == 0)
		rc = catalog_commit(cat, e);
	else
		catalog_rollback(cat, NULL);
	if (rc)
		err_prefix(e, "catalog rebuild: ");
out:
	clock_gettime(CLOCK_MONOTONIC, &t1);
	rep->seconds = (double)(t1.tv_sec - t0.tv_sec) +
		       (t1.tv_nsec - t0.tv_nsec) / 1e9;
	if (rc == 0)
		log_info(MOD, "rebuild of '%s': %zu snapshots, %zu created, %zu updated, "
			 "%zu unchanged, %zu marked deleted, %zu incomplete, %zu corrupt",
			 storage_url_redacted(st), rep->snapshots, rep->created,
			 rep->updated, rep->unchanged, rep->deleted, rep->incomplete,
			 rep->corrupt);
	crb_scan_free(&scan);
	storage_close(st);
	return rc;
}
