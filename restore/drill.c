/* DR drills (see drill.h): pick a snapshot, guard the scratch server,
 * verify the files, wipe what earlier drills left, restore, CHECK TABLE,
 * run the probes, clean up, and record it all with RTO/RPO in the catalog;
 * plus the drill history, the overdue alert and the Prometheus figures.
 *
 * Threading: drill_run runs in the calling thread, which owns the catalog
 * connection it is given; its target connections are its own. */
#include "drill.h"

#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>
#include <sqlite3.h>

#include "db.h"
#include "log.h"
#include "manifest.h"
#include "mem.h"
#include "probe.h"
#include "restore.h"
#include "storage.h"
#include "verify.h"

#define MOD "drill"
/* The target-wide lock two drills (of different clusters sharing one
 * scratch server, or two catalogs) take before touching it. */
#define DRILL_LOCK_NAME "backupd_drill"
#define DRILL_SQL_MAX (1024u * 1024u)
#define DRILL_PROBE_SHOW 120      /* characters of a probe quoted in messages */

void drill_report_init(struct drill_report *r)
{
	memset(r, 0, sizeof(*r));
	r->job_id = -1;
	r->rto_s = -1;
	r->rpo_s = -1;
}

/* snprintf into a fixed message field, cut short when it does not fit
 * (messages are one line and their start says what failed). */
static void msg_printf(char *out, size_t n, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void msg_printf(char *out, size_t n, const char *fmt, ...)
{
	struct buf b;
	va_list ap;

	buf_init(&b, 64 * 1024);
	va_start(ap, fmt);
	buf_vprintf(&b, NULL, fmt, ap);
	va_end(ap);
	str_copy(out, n, b.data);
	buf_release(&b);
}

static double mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- one drill's state --------------------------------------------------- */

struct drill {
	const struct config *cfg;
	const struct cfg_cluster *cl;
	struct catalog *cat;
	const struct drill_opts *o;
	struct drill_report *rep;
	struct manifest *m;
	struct db *ctl;              /* control connection: lock, marker, checks */
	char **dbs;                  /* the snapshot's databases */
	size_t n_dbs;
	bool created;                /* marker rows written: cleanup has work */
	double t0;                   /* monotonic time of the drill's start */
	double phase_t0;
	struct restore_phase steps[RESTORE_PHASES_MAX];
	size_t n_steps;
};

static void phase_begin(struct drill *d, const char *name)
{
	struct drill_report *r = d->rep;

	d->phase_t0 = mono_now();
	if (r->n_phases < DRILL_PHASES_MAX) {
		str_copy(r->phases[r->n_phases].name,
			 sizeof(r->phases[r->n_phases].name), name);
		r->phases[r->n_phases].seconds = 0;
		r->phases[r->n_phases].ok = false;
		r->n_phases++;
	}
	if (d->o->progress)
		fprintf(stderr, "drill: %s ...\n", name);
	log_info(MOD, "drill of '%s': phase %s", d->cl->name, name);
}

/* Ends the phase begun last; on failure remembers it as the failed one. */
static int phase_end(struct drill *d, int rc)
{
	struct drill_report *r = d->rep;
	struct drill_phase *p;

	if (r->n_phases == 0)
		return rc;
	p = &r->phases[r->n_phases - 1];
	p->seconds = mono_now() - d->phase_t0;
	p->ok = rc == 0;
	if (rc && !r->failed_phase[0])
		str_copy(r->failed_phase, sizeof(r->failed_phase), p->name);
	if (d->o->progress)
		fprintf(stderr, "drill: %s %s in %.2f s\n", p->name,
			rc ? "FAILED" : "done", p->seconds);
	return rc;
}

static int check_abort(struct drill *d, struct err *e)
{
	if (d->o->abort_flag && *d->o->abort_flag)
		return err_set(e, ERR_ABORTED, "drill of '%s' aborted",
			       d->cl->name);
	return 0;
}

/* ---- catalog rows -------------------------------------------------------- */

char *drill_phases_json(const struct drill_report *r)
{
	json_t *a = json_array();
	char *s;

	for (size_t i = 0; i < r->n_phases; i++) {
		const struct drill_phase *p = &r->phases[i];
		json_t *o = json_pack("{s:s, s:f, s:b}", "name", p->name,
				      "seconds", round(p->seconds * 1000) / 1000,
				      "ok", p->ok);
		json_array_append_new(a, o);
	}
	s = json_dumps(a, JSON_COMPACT | JSON_REAL_PRECISION(10));
	json_decref(a);
	return s ? s : xstrdup("[]");
}

/* The phases with the restore's own steps under "restore". */
static char *phases_json_full(const struct drill *d)
{
	const struct drill_report *r = d->rep;
	json_t *a = json_array();
	char *s;

	for (size_t i = 0; i < r->n_phases; i++) {
		const struct drill_phase *p = &r->phases[i];
		json_t *o = json_pack("{s:s, s:f, s:b}", "name", p->name,
				      "seconds", round(p->seconds * 1000) / 1000,
				      "ok", p->ok);

		if (strcmp(p->name, "restore") == 0 && d->n_steps) {
			json_t *steps = json_array();

			for (size_t k = 0; k < d->n_steps; k++)
				json_array_append_new(steps, json_pack(
					"{s:s, s:f}", "name", d->steps[k].name,
					"seconds", round(d->steps[k].seconds * 1000) / 1000));
			json_object_set_new(o, "steps", steps);
		}
		json_array_append_new(a, o);
	}
	s = json_dumps(a, JSON_COMPACT | JSON_REAL_PRECISION(10));
	json_decref(a);
	return s ? s : xstrdup("[]");
}

static int drill_row_insert(struct drill *d, struct err *e)
{
	struct drill_report *r = d->rep;
	sqlite3_stmt *st = NULL;
	int rc;

	if ((rc = catalog_cluster_ensure(d->cat, r->cluster, e)))
		return rc;
	if (sqlite3_prepare_v2(catalog_sqlite(d->cat),
			       "INSERT INTO drills (job_id, cluster, snapshot_id, target, "
			       "started_at) VALUES (?1, ?2, ?3, ?4, ?5)",
			       -1, &st, NULL) != SQLITE_OK)
		return catalog_error(d->cat, "unable to record the drill", e);
	if (r->job_id >= 0)
		sqlite3_bind_int64(st, 1, r->job_id);
	sqlite3_bind_text(st, 2, r->cluster, -1, SQLITE_TRANSIENT);
	if (r->snapshot_id[0])
		sqlite3_bind_text(st, 3, r->snapshot_id, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 4, r->target, -1, SQLITE_TRANSIENT);
	sqlite3_bind_double(st, 5, r->started_at);
	if (sqlite3_step(st) != SQLITE_DONE) {
		sqlite3_finalize(st);
		return catalog_error(d->cat, "unable to record the drill", e);
	}
	sqlite3_finalize(st);
	r->drill_id = sqlite3_last_insert_rowid(catalog_sqlite(d->cat));
	return 0;
}

/* The drill's end and its event, in one transaction. */
static int drill_row_finish(struct drill *d, const char *result,
			    const struct err *why, const char *cleanup_error,
			    struct err *e)
{
	struct drill_report *r = d->rep;
	sqlite3_stmt *st = NULL;
	char *phases = phases_json_full(d), *payload = NULL;
	json_t *p;
	int rc;

	p = json_pack("{s:I, s:s, s:s, s:s, s:b}", "drill_id", (json_int_t)r->drill_id,
		      "id", r->snapshot_id, "target", r->target, "result", result,
		      "kept", r->kept);
	if (r->rto_s >= 0)
		json_object_set_new(p, "rto_s", json_real(round(r->rto_s * 1000) / 1000));
	if (r->rpo_s >= 0)
		json_object_set_new(p, "rpo_s", json_real(round(r->rpo_s * 1000) / 1000));
	if (r->bytes)
		json_object_set_new(p, "bytes", json_integer((json_int_t)r->bytes));
	if (r->n_tables)
		json_object_set_new(p, "tables", json_integer(r->n_tables));
	if (r->n_probes || d->cl->n_drill_probes)
		json_object_set_new(p, "probes", json_integer(r->n_probes));
	if (why) {
		json_object_set_new(p, "phase", json_string(r->failed_phase));
		json_object_set_new(p, "error", json_string(why->msg));
		json_object_set_new(p, "error_code", json_string(err_code_name(why->code)));
		if (r->file[0])
			json_object_set_new(p, "file", json_string(r->file));
	}
	if (cleanup_error)
		json_object_set_new(p, "cleanup_error", json_string(cleanup_error));
	payload = json_dumps(p, JSON_COMPACT | JSON_REAL_PRECISION(10));
	json_decref(p);
	if (!payload) {
		free(phases);
		return err_set(e, ERR_INTERNAL, "unable to build the drill event");
	}

	if ((rc = catalog_begin(d->cat, e)))
		goto out;
	if (sqlite3_prepare_v2(catalog_sqlite(d->cat),
			       "UPDATE drills SET snapshot_id = ?2, finished_at = ?3, "
			       "rto_s = ?4, rpo_s = ?5, bytes = ?6, phases = ?7, "
			       "result = ?8, reason = ?9 WHERE id = ?1",
			       -1, &st, NULL) != SQLITE_OK) {
		rc = catalog_error(d->cat, "unable to record the drill's end", e);
		goto rollback;
	}
	sqlite3_bind_int64(st, 1, r->drill_id);
	if (r->snapshot_id[0])
		sqlite3_bind_text(st, 2, r->snapshot_id, -1, SQLITE_TRANSIENT);
	sqlite3_bind_double(st, 3, r->finished_at);
	if (r->rto_s >= 0)
		sqlite3_bind_double(st, 4, r->rto_s);
	if (r->rpo_s >= 0)
		sqlite3_bind_double(st, 5, r->rpo_s);
	if (r->bytes)
		sqlite3_bind_int64(st, 6, (sqlite3_int64)r->bytes);
	sqlite3_bind_text(st, 7, phases, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 8, result, -1, SQLITE_STATIC);
	if (r->reason[0])
		sqlite3_bind_text(st, 9, r->reason, -1, SQLITE_TRANSIENT);
	if (sqlite3_step(st) != SQLITE_DONE) {
		rc = catalog_error(d->cat, "unable to record the drill's end", e);
		goto rollback;
	}
	rc = catalog_event_add(d->cat, r->cluster, r->target,
			       strcmp(result, "ok") == 0 ? "drill.passed" : "drill.failed",
			       strcmp(result, "ok") == 0 ? "info" : "error",
			       payload, NULL, e);
	if (rc)
		goto rollback;
	rc = catalog_commit(d->cat, e);
	goto out;
rollback:
	catalog_rollback(d->cat, NULL);
out:
	sqlite3_finalize(st);
	free(phases);
	free(payload);
	return rc;
}

/* ---- picking the snapshot ------------------------------------------------ */

static int pick_snapshot(struct drill *d, struct err *e)
{
	struct drill_report *r = d->rep;
	struct catalog_snapshot s;
	int rc;

	catalog_snapshot_init(&s);
	if (d->o->snapshot_id) {
		rc = catalog_snapshot_get(d->cat, d->o->snapshot_id, &s, e);
		if (rc == ERR_NOT_FOUND) {
			/* The catalog may be younger than the repository:
			 * the manifest decides when the catalog does not
			 * know the id. */
			err_init(e);
			str_copy(r->snapshot_id, sizeof(r->snapshot_id),
				 d->o->snapshot_id);
			return 0;
		}
		if (rc)
			goto out;
		if (strcmp(s.cluster, d->cl->name) != 0) {
			rc = err_set(e, ERR_NOT_FOUND,
				     "snapshot '%s' is of cluster '%s', not '%s'",
				     s.id, s.cluster, d->cl->name);
			goto out;
		}
		if (strcmp(s.status, "complete") != 0) {
			rc = err_set(e, ERR_REFUSED,
				     "snapshot '%s' is %s, not complete", s.id,
				     s.status);
			goto out;
		}
	} else {
		char repo[4096];
		storage_redact_url(d->cfg->repository, repo, sizeof(repo));
		rc = catalog_snapshot_latest_in(d->cat, d->cl->name, repo, &s, e);
		if (rc == ERR_NOT_FOUND) {
			err_init(e);
			rc = err_set(e, ERR_NOT_FOUND,
				     "cluster '%s' has no complete snapshot to drill",
				     d->cl->name);
		}
		if (rc)
			goto out;
	}
	str_copy(r->snapshot_id, sizeof(r->snapshot_id), s.id);
out:
	catalog_snapshot_release(&s);
	return rc;
}

static bool dbs_has(char **v, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i], s) == 0)
			return true;
	return false;
}

static void dbs_add(char ***v, size_t *n, const char *s)
{
	if (dbs_has(*v, *n, s))
		return;
	*v = xrealloc(*v, (*n + 1) * sizeof(**v));
	(*v)[(*n)++] = xstrdup(s);
}

static void dbs_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* Reads the manifest: the databases the restore creates, the tables to
 * check, and the data's time (RPO). */
static int load_manifest(struct drill *d, struct err *e)
{
	struct drill_report *r = d->rep;
	struct storage_opts so;
	struct storage *st = NULL;
	double t = 0;
	struct err te;
	int rc;

	storage_opts_init(&so);
	so.create_root = false;
	rc = storage_open(d->cfg->repository, &so, &st, e);
	if (rc == 0)
		rc = snapshot_manifest_load(st, d->cl->name, r->snapshot_id, &d->m,
					    NULL, NULL, e);
	storage_close(st);
	if (rc)
		return rc;
	for (size_t i = 0; i < d->m->n_databases; i++)
		dbs_add(&d->dbs, &d->n_dbs, d->m->databases[i].name);
	for (size_t i = 0; i < d->m->n_tables; i++)
		dbs_add(&d->dbs, &d->n_dbs, d->m->tables[i].schema);
	if (dbs_has(d->dbs, d->n_dbs, DRILL_MARKER_SCHEMA))
		return err_set(e, ERR_REFUSED,
			       "snapshot '%s' holds a database '%s', the name drills use for their own records",
			       r->snapshot_id, DRILL_MARKER_SCHEMA);
	r->n_databases = (unsigned)d->n_dbs;
	r->n_tables = (unsigned)d->m->n_tables;
	err_init(&te);
	if (d->m->started_at && manifest_time_parse(d->m->started_at, &t, &te) == 0 &&
	    t > 0)
		r->rpo_s = r->started_at - t > 0 ? r->started_at - t : 0;
	return 0;
}

/* ---- the target ---------------------------------------------------------- */

/* The target must not be a server the clusters live on. Names are compared
 * as written (cfg_addr_equal); the replication check after connecting
 * catches a server reached under another name that replicates. */
static int target_refuse_known(struct drill *d, struct err *e)
{
	const struct config *cfg = d->cfg;
	const struct cfg_addr *t = &d->cl->drill_target;
	char a[300];
	int rc;

	cfg_addr_format(t, a, sizeof(a));
	for (size_t i = 0; i < cfg->n_clusters; i++) {
		const struct cfg_cluster *c = &cfg->clusters[i];
		char *cur = NULL;
		struct cfg_addr ca;
		struct err pe;

		if (cfg_addr_equal(t, &c->primary))
			return err_set(e, ERR_REFUSED,
				       "drill target '%s' is the primary of cluster '%s': a drill overwrites its target, give a scratch server",
				       a, c->name);
		for (size_t k = 0; k < c->n_replicas; k++)
			if (cfg_addr_equal(t, &c->replicas[k]))
				return err_set(e, ERR_REFUSED,
					       "drill target '%s' is a replica of cluster '%s': a drill overwrites its target, give a scratch server",
					       a, c->name);
		if ((rc = catalog_get_primary(d->cat, c->name, &cur, e)))
			return rc;
		err_init(&pe);
		if (cur && cfg_addr_parse(cur, &ca, &pe) == 0 && cfg_addr_equal(t, &ca)) {
			free(cur);
			return err_set(e, ERR_REFUSED,
				       "drill target '%s' is the current primary of cluster '%s' (catalog topology): a drill overwrites its target, give a scratch server",
				       a, c->name);
		}
		free(cur);
	}
	return 0;
}

static int target_connect(struct drill *d, struct db **out, struct err *e)
{
	struct db_opts o;

	probe_db_opts(d->cl, &d->cl->drill_target, &o);
	return db_connect(&o, out, e);
}

static int ctl_exec(struct drill *d, const struct buf *sql, struct err *e)
{
	return db_exec_buf(d->ctl, sql, e);
}

/* Connects, refuses a replicating server, takes the drill lock and turns
 * binary logging off for this session. */
static int target_open(struct drill *d, struct err *e)
{
	struct db_replica_status rs;
	char *got = NULL;
	bool found = false;
	int rc;

	if ((rc = target_connect(d, &d->ctl, e))) {
		err_prefix(e, "drill target '%s': ", d->rep->target);
		return rc;
	}
	memset(&rs, 0, sizeof(rs));
	rc = db_replica_status(d->ctl, &rs, e);
	if (rc == 0 && rs.configured)
		rc = err_set(e, ERR_REFUSED,
			     "drill target '%s' replicates from '%s:%u': a drill overwrites its target, give a scratch server",
			     d->rep->target, rs.source_host, rs.source_port);
	db_replica_status_release(&rs);
	if (rc)
		return rc;
	rc = db_query_value(d->ctl, "SELECT GET_LOCK('" DRILL_LOCK_NAME "', 0)",
			    &got, &found, e);
	if (rc == 0 && (!got || strcmp(got, "1") != 0))
		rc = err_set(e, ERR_BUSY,
			     "drill target '%s' is in use by another drill (lock '%s')",
			     d->rep->target, DRILL_LOCK_NAME);
	free(got);
	if (rc == 0)
		rc = db_exec(d->ctl, "SET SESSION sql_log_bin = 0", e);
	/* This session idles while the restore runs, which may take longer
	 * than the server's wait_timeout; it must survive to check and clean
	 * up, and its lock must hold until then. */
	if (rc == 0)
		rc = db_exec(d->ctl, "SET SESSION wait_timeout = 31536000", e);
	if (rc)
		err_prefix(e, "drill target '%s': ", d->rep->target);
	return rc;
}

/* Names of one column of a query, as a list. */
static int query_names(struct db *db, const char *sql, char ***out, size_t *n,
		       struct err *e)
{
	MYSQL_RES *res = NULL;
	MYSQL_ROW row;
	int rc;

	*out = NULL;
	*n = 0;
	if ((rc = db_query_result(db, sql, false, &res, e)))
		return rc;
	while ((rc = db_fetch_row(db, res, &row, NULL, e)) == 0 && row)
		if (row[0])
			dbs_add(out, n, row[0]);
	mysql_free_result(res);
	db_finish(db, NULL);
	return rc;
}

static int marker_exists(struct drill *d, bool *exists, struct err *e)
{
	unsigned long long n = 0;
	int rc = db_query_ulong(d->ctl,
				"SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = '"
				DRILL_MARKER_SCHEMA "' AND TABLE_NAME = '" DRILL_MARKER_TABLE "'",
				&n, e);

	*exists = n > 0;
	return rc;
}

static int drop_database(struct drill *d, const char *name, struct err *e)
{
	struct buf sql;
	int rc;

	buf_init(&sql, DRILL_SQL_MAX);
	rc = buf_append_str(&sql, "DROP DATABASE IF EXISTS ", e);
	if (rc == 0)
		rc = db_quote_ident(&sql, name, e);
	if (rc == 0)
		rc = ctl_exec(d, &sql, e);
	buf_reset(&sql);
	if (rc == 0)
		rc = buf_append_str(&sql, "DELETE FROM `" DRILL_MARKER_SCHEMA "`.`"
				    DRILL_MARKER_TABLE "` WHERE db_name = ", e);
	if (rc == 0)
		rc = db_quote_string(d->ctl, &sql, name, strlen(name), e);
	if (rc == 0)
		rc = ctl_exec(d, &sql, e);
	buf_release(&sql);
	if (rc)
		err_prefix(e, "unable to drop database '%s' on '%s': ", name,
			   d->rep->target);
	return rc;
}

/* Drops the marker schema once no drill has anything on the target. */
static int marker_drop_if_empty(struct drill *d, struct err *e)
{
	unsigned long long n = 0;
	bool exists;
	int rc = marker_exists(d, &exists, e);

	if (rc || !exists)
		return rc;
	rc = db_query_ulong(d->ctl, "SELECT COUNT(*) FROM `" DRILL_MARKER_SCHEMA
			    "`.`" DRILL_MARKER_TABLE "`", &n, e);
	if (rc == 0 && n == 0)
		rc = db_exec(d->ctl, "DROP DATABASE IF EXISTS `" DRILL_MARKER_SCHEMA "`", e);
	return rc;
}

/* Refuses databases of the snapshot no drill created, then drops every
 * database earlier drills recorded. Nothing is dropped when it refuses. */
static int target_wipe(struct drill *d, struct err *e)
{
	char **have = NULL, **marked = NULL;
	size_t n_have = 0, n_marked = 0;
	bool exists = false;
	int rc;

	rc = query_names(d->ctl, "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA",
			 &have, &n_have, e);
	if (rc == 0)
		rc = marker_exists(d, &exists, e);
	if (rc == 0 && exists)
		rc = query_names(d->ctl, "SELECT db_name FROM `" DRILL_MARKER_SCHEMA
				 "`.`" DRILL_MARKER_TABLE "`", &marked, &n_marked, e);
	if (rc)
		goto out;
	for (size_t i = 0; i < d->n_dbs; i++)
		if (dbs_has(have, n_have, d->dbs[i]) &&
		    !dbs_has(marked, n_marked, d->dbs[i])) {
			rc = err_set(e, ERR_REFUSED,
				     "drill target '%s' holds database '%s', which no drill created: drop it there or give another drill_target",
				     d->rep->target, d->dbs[i]);
			goto out;
		}
	for (size_t i = 0; i < n_marked && rc == 0; i++) {
		if (d->o->progress)
			fprintf(stderr, "drill: dropping '%s' left by an earlier drill\n",
				marked[i]);
		log_info(MOD, "dropping database '%s' an earlier drill left on '%s'",
			 marked[i], d->rep->target);
		rc = drop_database(d, marked[i], e);
		if (rc == 0 && dbs_has(have, n_have, marked[i]))
			d->rep->n_wiped++;
	}
out:
	dbs_free(have, n_have);
	dbs_free(marked, n_marked);
	return rc;
}

/* Writes the marker rows for the snapshot's databases before the restore
 * creates them: a crash from here on still leaves a record. */
static int target_record(struct drill *d, struct err *e)
{
	struct buf sql;
	char cat_path[1024];
	int rc;

	rc = db_exec(d->ctl, "CREATE DATABASE IF NOT EXISTS `" DRILL_MARKER_SCHEMA
		     "` CHARACTER SET utf8mb4", e);
	if (rc == 0)
		rc = db_exec(d->ctl,
			     "CREATE TABLE IF NOT EXISTS `" DRILL_MARKER_SCHEMA "`.`"
			     DRILL_MARKER_TABLE "` ("
			     "db_name VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL PRIMARY KEY, "
			     "cluster VARCHAR(255) NOT NULL, "
			     "snapshot_id VARCHAR(255) NOT NULL, "
			     "drill_id BIGINT NOT NULL, "
			     "catalog VARCHAR(1024) NULL, "
			     "created_at DATETIME(6) NOT NULL"
			     ") ENGINE=InnoDB COMMENT='databases DR drills of backupd created here; the next drill drops them'",
			     e);
	if (rc)
		return rc;
	str_copy(cat_path, sizeof(cat_path), catalog_path(d->cat));
	buf_init(&sql, DRILL_SQL_MAX);
	for (size_t i = 0; i < d->n_dbs && rc == 0; i++) {
		buf_reset(&sql);
		rc = buf_append_str(&sql, "REPLACE INTO `" DRILL_MARKER_SCHEMA "`.`"
				    DRILL_MARKER_TABLE "` VALUES (", e);
		if (rc == 0)
			rc = db_quote_string(d->ctl, &sql, d->dbs[i], strlen(d->dbs[i]), e);
		if (rc == 0)
			rc = buf_append_str(&sql, ", ", e);
		if (rc == 0)
			rc = db_quote_string(d->ctl, &sql, d->cl->name, strlen(d->cl->name), e);
		if (rc == 0)
			rc = buf_append_str(&sql, ", ", e);
		if (rc == 0)
			rc = db_quote_string(d->ctl, &sql, d->rep->snapshot_id,
					     strlen(d->rep->snapshot_id), e);
		if (rc == 0)
			rc = buf_printf(&sql, e, ", %" PRId64 ", ", d->rep->drill_id);
		if (rc == 0)
			rc = db_quote_string(d->ctl, &sql, cat_path, strlen(cat_path), e);
		if (rc == 0)
			rc = buf_append_str(&sql, ", UTC_TIMESTAMP(6))", e);
		if (rc == 0)
			rc = ctl_exec(d, &sql, e);
		if (rc == 0)
			d->created = true;
	}
	buf_release(&sql);
	return rc;
}

static int target_cleanup(struct drill *d, struct err *e)
{
	int rc = 0;

	for (size_t i = 0; i < d->n_dbs && rc == 0; i++)
		rc = drop_database(d, d->dbs[i], e);
	if (rc == 0)
		rc = marker_drop_if_empty(d, e);
	if (rc == 0)
		d->created = false;
	return rc;
}

/* ---- restore and checks -------------------------------------------------- */

static int do_restore(struct drill *d, struct err *e)
{
	struct restore_opts o;
	struct restore_result *res = xcalloc(1, sizeof(*res));
	int rc;

	memset(&o, 0, sizeof(o));
	o.cfg = d->cfg;
	o.cluster = d->cl;
	o.snapshot_id = d->rep->snapshot_id;
	o.target = d->rep->target;
	o.threads = d->o->threads;
	o.no_binlog = true;
	o.trigger = d->o->trigger ? d->o->trigger : "manual";
	o.progress = d->o->progress;
	o.abort_flag = d->o->abort_flag;
	/* No catalog: the drill is the record, and one Slack message per
	 * drill is enough. */
	rc = restore_run(NULL, &o, res, e);
	d->rep->bytes = res->bytes_raw;
	d->rep->bytes_stored = res->bytes_stored;
	d->rep->rows = res->rows;
	d->n_steps = res->n_phases < RESTORE_PHASES_MAX ? res->n_phases
							: RESTORE_PHASES_MAX;
	memcpy(d->steps, res->phases, d->n_steps * sizeof(d->steps[0]));
	free(res);
	return rc;
}

/* The problem CHECK TABLE reports for one table, "" when it is fine:
 * an error row, or a final status other than OK. */
static int check_one(struct drill *d, const char *schema, const char *table,
		     struct err *e)
{
	struct buf sql;
	MYSQL_RES *res = NULL;
	MYSQL_ROW row;
	char problem[300] = "", status[300] = "";
	int rc;

	buf_init(&sql, DRILL_SQL_MAX);
	rc = buf_append_str(&sql, "CHECK TABLE ", e);
	if (rc == 0)
		rc = db_quote_table(&sql, schema, table, e);
	if (rc == 0)
		rc = db_query_result(d->ctl, sql.data, false, &res, e);
	buf_release(&sql);
	if (rc)
		return rc;
	/* Columns: Table, Op, Msg_type, Msg_text. */
	while ((rc = db_fetch_row(d->ctl, res, &row, NULL, e)) == 0 && row) {
		const char *type = row[2] ? row[2] : "", *text = row[3] ? row[3] : "";

		if (strcasecmp(type, "error") == 0 && !problem[0])
			snprintf(problem, sizeof(problem), "%s", text);
		else if (strcasecmp(type, "status") == 0)
			snprintf(status, sizeof(status), "%s", text);
		else if (strcasecmp(type, "warning") == 0)
			log_warn(MOD, "CHECK TABLE %s.%s on '%s': warning: %s",
				 schema, table, d->rep->target, text);
	}
	mysql_free_result(res);
	db_finish(d->ctl, NULL);
	if (rc)
		return rc;
	if (!problem[0] && status[0] && strcasecmp(status, "OK") != 0 &&
	    strcasecmp(status, "Table is already up to date") != 0)
		snprintf(problem, sizeof(problem), "status '%s'", status);
	if (problem[0])
		return err_set(e, ERR_VERIFY, "CHECK TABLE of '%s.%s' on '%s' failed: %s",
			       schema, table, d->rep->target, problem);
	return 0;
}

static int check_tables(struct drill *d, struct err *e)
{
	int rc = 0;

	for (size_t i = 0; i < d->m->n_tables && rc == 0; i++) {
		rc = check_abort(d, e);
		if (rc == 0)
			rc = check_one(d, d->m->tables[i].schema, d->m->tables[i].name, e);
		if (rc == 0)
			d->rep->n_checked++;
	}
	return rc;
}

/* A probe's text shortened for messages (probes may be long). */
static void probe_show(const char *sql, char *out, size_t n)
{
	size_t len = strlen(sql);

	if (len < DRILL_PROBE_SHOW && len < n) {
		str_copy(out, n, sql);
		return;
	}
	snprintf(out, n, "%.*s...", DRILL_PROBE_SHOW, sql);
}

/* Splits an optional leading "USE db;" off a probe. *db is a heap string or
 * NULL; *stmt points into sql. ERR_CONFIG for a malformed USE. */
static int probe_split(const char *sql, char **db, const char **stmt,
		       struct err *e)
{
	const char *p = sql;
	struct buf name;
	int rc = 0;

	*db = NULL;
	*stmt = sql;
	while (isspace((unsigned char)*p))
		p++;
	if (strncasecmp(p, "use", 3) != 0 || !isspace((unsigned char)p[3]))
		return 0;
	p += 3;
	while (isspace((unsigned char)*p))
		p++;
	buf_init(&name, 1024);
	if (*p == '`') {
		for (p++;; p++) {
			if (!*p) {
				rc = ERR_CONFIG;
				break;
			}
			if (*p == '`') {
				if (p[1] != '`') {
					p++;
					break;
				}
				p++;
			}
			if ((rc = buf_append_char(&name, *p, e)))
				break;
		}
	} else {
		while (*p && *p != ';' && !isspace((unsigned char)*p))
			if ((rc = buf_append_char(&name, *p++, e)))
				break;
	}
	while (rc == 0 && isspace((unsigned char)*p))
		p++;
	if (rc == 0 && (*p != ';' || name.len == 0))
		rc = ERR_CONFIG;
	if (rc == 0) {
		p++;
		while (isspace((unsigned char)*p))
			p++;
		if (!*p)
			rc = ERR_CONFIG;
	}
	if (rc) {
		buf_release(&name);
		if (!err_is_set(e))
			err_set(e, ERR_CONFIG,
				"drill_probe '%s': expected 'USE db; statement'", sql);
		return rc;
	}
	*db = buf_detach(&name);
	buf_release(&name);   /* detach left a fresh empty buffer */
	*stmt = p;
	return 0;
}

/* The database a probe without USE runs in: the snapshot's only database
 * besides backupd's own, else none. */
static const char *probe_default_db(const struct drill *d)
{
	const char *only = NULL;

	for (size_t i = 0; i < d->n_dbs; i++) {
		if (strcmp(d->dbs[i], "backupd") == 0)
			continue;
		if (only)
			return NULL;
		only = d->dbs[i];
	}
	return only;
}

static int run_probe(struct drill *d, struct db *pdb, size_t idx,
		     const char *probe, struct err *e)
{
	const char *stmt, *db;
	char *use = NULL, shown[DRILL_PROBE_SHOW + 8];
	MYSQL_RES *res = NULL;
	my_ulonglong rows = 0;
	int rc;

	probe_show(probe, shown, sizeof(shown));
	if ((rc = probe_split(probe, &use, &stmt, e)))
		return rc;
	db = use ? use : probe_default_db(d);
	if (db && mysql_select_db(db_handle(pdb), db) != 0) {
		rc = db_set_error(e, ERR_VERIFY, db_handle(pdb),
				  "drill probe %zu ('%s'): unable to use database '%s'",
				  idx + 1, shown, db);
		goto out;
	}
	if ((rc = db_exec(pdb, "START TRANSACTION READ ONLY", e)))
		goto out;
	rc = db_query_result(pdb, stmt, false, &res, e);
	if (rc == 0) {
		rows = mysql_num_rows(res);
		mysql_free_result(res);
		db_finish(pdb, NULL);
	}
	db_exec(pdb, "ROLLBACK", NULL);
	if (rc) {
		/* A probe that errs fails the drill as a probe, not as the
		 * server: the message keeps the server's words. */
		char inner[sizeof(e->msg)];

		str_copy(inner, sizeof(inner), e->msg);
		e->code = ERR_VERIFY;
		msg_printf(e->msg, sizeof(e->msg), "drill probe %zu ('%s') failed: %s",
			   idx + 1, shown, inner);
		goto out;
	}
	if (rows == 0) {
		rc = err_set(e, ERR_VERIFY,
			     "drill probe %zu ('%s') returned no rows%s%s%s", idx + 1,
			     shown, db ? " in database '" : "", db ? db : "",
			     db ? "'" : "");
		goto out;
	}
	log_info(MOD, "drill probe %zu returned %llu row%s", idx + 1,
		 (unsigned long long)rows, rows == 1 ? "" : "s");
out:
	free(use);
	return rc;
}

static int run_probes(struct drill *d, struct err *e)
{
	struct db *pdb = NULL;
	int rc = 0;

	if (d->cl->n_drill_probes == 0)
		return 0;
	if ((rc = target_connect(d, &pdb, e)))
		return rc;
	for (size_t i = 0; i < d->cl->n_drill_probes && rc == 0; i++) {
		rc = check_abort(d, e);
		if (rc == 0)
			rc = run_probe(d, pdb, i, d->cl->drill_probes[i], e);
		if (rc == 0)
			d->rep->n_probes++;
	}
	db_close(pdb);
	return rc;
}

/* ---- the drill ----------------------------------------------------------- */

/* The first bad file a verify found, for the report and the event. */
static void note_bad_file(struct drill *d, const struct verify_report *vr)
{
	for (size_t i = 0; i < vr->n_problems; i++)
		if (vr->problems[i].path) {
			str_copy(d->rep->file, sizeof(d->rep->file),
				 vr->problems[i].path);
			return;
		}
}

static int do_verify(struct drill *d, struct err *e)
{
	struct verify_report vr;
	struct verify_opts vo;
	struct catalog_snapshot s;
	struct err ce;
	int rc;

	memset(&vo, 0, sizeof(vo));
	vo.trigger = d->o->trigger ? d->o->trigger : "manual";
	vo.schedule = d->o->schedule;
	vo.abort_flag = d->o->abort_flag;
	verify_report_init(&vr);
	/* Without the catalog: a verify job and a verify.failed event next
	 * to the drill's would tell Slack the same thing twice. The verdict
	 * still goes on the snapshot's row below. */
	rc = snapshot_verify_ex(d->cfg, NULL, d->cl->name, d->rep->snapshot_id,
				&vo, &vr, e);
	if (rc == ERR_VERIFY)
		note_bad_file(d, &vr);
	verify_report_release(&vr);
	if (rc == 0 || rc == ERR_VERIFY || rc == ERR_CORRUPT) {
		catalog_snapshot_init(&s);
		err_init(&ce);
		if (catalog_snapshot_get(d->cat, d->rep->snapshot_id, &s, &ce) == 0 &&
		    strcmp(s.status, "complete") == 0 &&
		    catalog_snapshot_set_verified(d->cat, s.id, rc == 0, &ce) != 0)
			log_warn(MOD, "unable to record the verify of '%s': %s",
				 s.id, ce.msg);
		catalog_snapshot_release(&s);
	}
	return rc;
}

/* Runs the phases after the drill row exists. */
static int drill_phases(struct drill *d, struct err *e)
{
	struct drill_report *r = d->rep;
	int rc;

	phase_begin(d, "target");
	rc = target_refuse_known(d, e);
	if (rc == 0)
		rc = load_manifest(d, e);
	if (rc == 0)
		rc = target_open(d, e);
	if ((rc = phase_end(d, rc)))
		return rc;

	if ((rc = check_abort(d, e)))
		return rc;
	phase_begin(d, "verify");
	if ((rc = phase_end(d, do_verify(d, e))))
		return rc;

	if ((rc = check_abort(d, e)))
		return rc;
	phase_begin(d, "wipe");
	rc = target_wipe(d, e);
	if (rc == 0)
		rc = target_record(d, e);
	if ((rc = phase_end(d, rc)))
		return rc;

	phase_begin(d, "restore");
	if ((rc = phase_end(d, do_restore(d, e))))
		return rc;

	phase_begin(d, "check");
	if ((rc = phase_end(d, check_tables(d, e))))
		return rc;

	phase_begin(d, "probes");
	if ((rc = phase_end(d, run_probes(d, e))))
		return rc;

	r->rto_s = mono_now() - d->t0;
	return 0;
}

int drill_run(const struct config *cfg, const struct cfg_cluster *cl,
	      struct catalog *cat, const struct drill_opts *o,
	      struct drill_report *rep, struct err *e)
{
	static const struct drill_opts defaults = { .trigger = "manual" };
	struct drill d;
	struct err pe, ce, fe;
	const char *result;
	char cleanup_error[sizeof(e->msg)] = "";
	int rc, prc;

	drill_report_init(rep);
	memset(&d, 0, sizeof(d));
	d.cfg = cfg;
	d.cl = cl;
	d.cat = cat;
	d.o = o ? o : &defaults;
	d.rep = rep;
	str_copy(rep->cluster, sizeof(rep->cluster), cl->name);
	if (!cfg_addr_is_set(&cl->drill_target))
		return err_set(e, ERR_CONFIG,
			       "cluster '%s' has no drill_target in config '%s': set a scratch server to drill into",
			       cl->name, cfg->path);
	cfg_addr_format(&cl->drill_target, rep->target, sizeof(rep->target));
	if (d.o->snapshot_id && (rc = snapshot_id_check(d.o->snapshot_id, e)))
		return rc;

	rep->started_at = catalog_now();
	d.t0 = mono_now();
	/* The snapshot first, so the job names it and prune leaves it be. */
	phase_begin(&d, "pick");
	err_init(&pe);
	prc = phase_end(&d, pick_snapshot(&d, &pe));
	/* A drill killed earlier on this host must not block this one. */
	rc = catalog_job_reap(cat, NULL, e);
	if (rc == 0)
		rc = catalog_job_start_ex(cat, "drill", cl->name,
					  d.o->trigger ? d.o->trigger : "manual",
					  d.o->schedule,
					  rep->snapshot_id[0] ? rep->snapshot_id : NULL,
					  &rep->job_id, e);
	if (rc)
		return rc;
	rc = drill_row_insert(&d, e);
	if (rc) {
		err_init(&ce);
		catalog_job_finish(cat, rep->job_id, "failed", e, &ce);
		return rc;
	}
	log_info(MOD, "drill %" PRId64 " of '%s' into '%s' started", rep->drill_id,
		 cl->name, rep->target);

	if (prc) {
		*e = pe;
		rc = prc;
	} else {
		rc = drill_phases(&d, e);
	}

	/* Cleanup runs after a failure too: what the drill created goes. */
	if (d.created) {
		if (d.o->keep || cl->drill_keep) {
			rep->kept = true;
			log_info(MOD, "drill %" PRId64 ": restored data kept on '%s'",
				 rep->drill_id, rep->target);
		} else if (d.ctl) {
			phase_begin(&d, "cleanup");
			err_init(&fe);
			if (phase_end(&d, target_cleanup(&d, &fe)) != 0) {
				str_copy(cleanup_error, sizeof(cleanup_error), fe.msg);
				log_error(MOD, "drill %" PRId64 ": cleanup of '%s' failed: %s",
					  rep->drill_id, rep->target, fe.msg);
				/* The data was proven; the failed phase
				 * is the one that failed the drill. */
				if (rc == 0)
					rep->failed_phase[0] = '\0';
			}
		}
	}
	if (d.ctl) {
		db_exec(d.ctl, "DO RELEASE_LOCK('" DRILL_LOCK_NAME "')", NULL);
		db_close(d.ctl);
	}

	rep->finished_at = catalog_now();
	rep->passed = rc == 0;
	if (rc) {
		rep->rto_s = -1;
		if (!rep->failed_phase[0])
			str_copy(rep->failed_phase, sizeof(rep->failed_phase), "drill");
		/* "verify: verify of ..." says the phase twice. */
		if (strncmp(e->msg, rep->failed_phase, strlen(rep->failed_phase)) == 0)
			str_copy(rep->reason, sizeof(rep->reason), e->msg);
		else
			msg_printf(rep->reason, sizeof(rep->reason), "%s: %s",
				   rep->failed_phase, e->msg);
		result = rc == ERR_ABORTED ? "aborted" : "failed";
	} else {
		result = "ok";
		if (cleanup_error[0])
			msg_printf(rep->reason, sizeof(rep->reason),
				   "passed; cleanup failed: %s", cleanup_error);
	}
	err_init(&ce);
	if (drill_row_finish(&d, result, rc ? e : NULL,
			     cleanup_error[0] ? cleanup_error : NULL, &ce) != 0) {
		log_error(MOD, "unable to record the end of drill %" PRId64 ": %s",
			  rep->drill_id, ce.msg);
		if (rc == 0) {
			*e = ce;
			rc = ce.code;
		}
	}
	err_init(&ce);
	if (catalog_job_finish(cat, rep->job_id,
			       rc == 0 ? "ok" : rc == ERR_ABORTED ? "aborted" : "failed",
			       rc ? e : NULL, &ce) != 0)
		log_error(MOD, "unable to record the end of drill job %" PRId64 ": %s",
			  rep->job_id, ce.msg);
	if (rc)
		err_prefix(e, "drill of '%s' failed in phase %s: ", cl->name,
			   rep->failed_phase);
	else
		log_info(MOD, "drill %" PRId64 " of '%s' passed: RTO %.2f s, RPO %.0f s",
			 rep->drill_id, cl->name, rep->rto_s, rep->rpo_s);
	manifest_free(d.m);
	dbs_free(d.dbs, d.n_dbs);
	return rc;
}

/* ---- history --------------------------------------------------------------- */

static char *col_str(sqlite3_stmt *st, int i)
{
	const unsigned char *s = sqlite3_column_text(st, i);

	return s ? xstrdup((const char *)s) : NULL;
}

static double col_num(sqlite3_stmt *st, int i, double unknown)
{
	return sqlite3_column_type(st, i) == SQLITE_NULL ? unknown
							 : sqlite3_column_double(st, i);
}

void drill_row_free_list(struct drill_row *rows, size_t n)
{
	for (size_t i = 0; rows && i < n; i++) {
		free(rows[i].cluster);
		free(rows[i].snapshot_id);
		free(rows[i].target);
		free(rows[i].phases);
		free(rows[i].result);
		free(rows[i].reason);
	}
	free(rows);
}

int drill_list(struct catalog *cat, const char *cluster, size_t limit,
	       struct drill_row **rows, size_t *n, struct err *e)
{
	sqlite3_stmt *st = NULL;
	struct drill_row *v = NULL;
	size_t cap = 0, k = 0;
	int rc;

	*rows = NULL;
	*n = 0;
	if (limit == 0 || limit > DRILL_LIST_MAX)
		limit = DRILL_LIST_MAX;
	if (sqlite3_prepare_v2(catalog_sqlite(cat),
			       "SELECT * FROM (SELECT id, job_id, cluster, snapshot_id, target, "
			       "started_at, finished_at, rto_s, rpo_s, bytes, phases, result, "
			       "reason FROM drills WHERE ?1 IS NULL OR cluster = ?1 "
			       "ORDER BY started_at DESC, id DESC LIMIT ?2) "
			       "ORDER BY started_at, id",
			       -1, &st, NULL) != SQLITE_OK)
		return catalog_error(cat, "unable to list drills", e);
	if (cluster)
		sqlite3_bind_text(st, 1, cluster, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)limit);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct drill_row *r;

		if (k == cap) {
			cap = cap ? cap * 2 : 16;
			v = xrealloc(v, cap * sizeof(*v));
		}
		r = &v[k++];
		memset(r, 0, sizeof(*r));
		r->id = sqlite3_column_int64(st, 0);
		r->job_id = sqlite3_column_type(st, 1) == SQLITE_NULL
				    ? -1 : sqlite3_column_int64(st, 1);
		r->cluster = col_str(st, 2);
		r->snapshot_id = col_str(st, 3);
		r->target = col_str(st, 4);
		r->started_at = col_num(st, 5, 0);
		r->finished_at = col_num(st, 6, 0);
		r->rto_s = col_num(st, 7, -1);
		r->rpo_s = col_num(st, 8, -1);
		r->bytes = sqlite3_column_type(st, 9) == SQLITE_NULL
				   ? -1 : sqlite3_column_int64(st, 9);
		r->phases = col_str(st, 10);
		r->result = col_str(st, 11);
		r->reason = col_str(st, 12);
	}
	if (rc != SQLITE_DONE) {
		sqlite3_finalize(st);
		drill_row_free_list(v, k);
		return catalog_error(cat, "unable to list drills", e);
	}
	sqlite3_finalize(st);
	*rows = v;
	*n = k;
	return 0;
}

/* ---- overdue and metrics ------------------------------------------------- */

/* What the catalog says about a cluster's drills. */
struct drill_facts {
	bool have_last;             /* a finished drill */
	int64_t last_id;
	char last_result[16];
	double last_finished_at;
	bool have_pass;
	double pass_finished_at;
	double pass_rto_s, pass_rpo_s;   /* -1 unknown */
	double cluster_created_at;       /* 0 unknown */
};

static int drill_facts_get(struct catalog *cat, const char *cluster,
			   struct drill_facts *f, struct err *e)
{
	sqlite3_stmt *st = NULL;
	int rc;

	memset(f, 0, sizeof(*f));
	f->pass_rto_s = f->pass_rpo_s = -1;
	if (sqlite3_prepare_v2(catalog_sqlite(cat),
			       "SELECT id, result, COALESCE(finished_at, started_at) FROM drills "
			       "WHERE cluster = ?1 AND result <> 'running' "
			       "ORDER BY started_at DESC, id DESC LIMIT 1",
			       -1, &st, NULL) != SQLITE_OK)
		return catalog_error(cat, "unable to read the last drill", e);
	sqlite3_bind_text(st, 1, cluster, -1, SQLITE_TRANSIENT);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		const unsigned char *res = sqlite3_column_text(st, 1);

		f->have_last = true;
		f->last_id = sqlite3_column_int64(st, 0);
		str_copy(f->last_result, sizeof(f->last_result),
			 res ? (const char *)res : "");
		f->last_finished_at = sqlite3_column_double(st, 2);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return catalog_error(cat, "unable to read the last drill", e);

	if (sqlite3_prepare_v2(catalog_sqlite(cat),
			       "SELECT finished_at, rto_s, rpo_s FROM drills "
			       "WHERE cluster = ?1 AND result = 'ok' "
			       "ORDER BY finished_at DESC, id DESC LIMIT 1",
			       -1, &st, NULL) != SQLITE_OK)
		return catalog_error(cat, "unable to read the last passing drill", e);
	sqlite3_bind_text(st, 1, cluster, -1, SQLITE_TRANSIENT);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		f->have_pass = true;
		f->pass_finished_at = col_num(st, 0, 0);
		f->pass_rto_s = col_num(st, 1, -1);
		f->pass_rpo_s = col_num(st, 2, -1);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return catalog_error(cat, "unable to read the last passing drill", e);

	if (sqlite3_prepare_v2(catalog_sqlite(cat),
			       "SELECT created_at FROM clusters WHERE name = ?1",
			       -1, &st, NULL) != SQLITE_OK)
		return catalog_error(cat, "unable to read the cluster", e);
	sqlite3_bind_text(st, 1, cluster, -1, SQLITE_TRANSIENT);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		f->cluster_created_at = col_num(st, 0, 0);
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return catalog_error(cat, "unable to read the cluster", e);
	return 0;
}

/* Since when the cluster's drills count as overdue-able: the last pass,
 * else the cluster's first appearance; 0 when neither is known. */
static double overdue_since(const struct drill_facts *f)
{
	return f->have_pass ? f->pass_finished_at : f->cluster_created_at;
}

static int meta_get_double(struct catalog *cat, const char *key, double *v,
			   bool *found, struct err *e)
{
	sqlite3_stmt *st = NULL;
	int rc;

	*found = false;
	if (sqlite3_prepare_v2(catalog_sqlite(cat),
			       "SELECT value FROM catalog_meta WHERE key = ?1",
			       -1, &st, NULL) != SQLITE_OK)
		return catalog_error(cat, "unable to read catalog_meta", e);
	sqlite3_bind_text(st, 1, key, -1, SQLITE_TRANSIENT);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		const unsigned char *s = sqlite3_column_text(st, 0);
		char *end = NULL;

		if (s) {
			*v = strtod((const char *)s, &end);
			*found = end && end != (const char *)s;
		}
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return catalog_error(cat, "unable to read catalog_meta", e);
	return 0;
}

static int meta_set_double(struct catalog *cat, const char *key, double v,
			   struct err *e)
{
	sqlite3_stmt *st = NULL;
	char val[64];

	snprintf(val, sizeof(val), "%.3f", v);
	if (sqlite3_prepare_v2(catalog_sqlite(cat),
			       "INSERT INTO catalog_meta (key, value, updated_at) "
			       "VALUES (?1, ?2, ?3) ON CONFLICT(key) DO UPDATE SET "
			       "value = excluded.value, updated_at = excluded.updated_at",
			       -1, &st, NULL) != SQLITE_OK)
		return catalog_error(cat, "unable to write catalog_meta", e);
	sqlite3_bind_text(st, 1, key, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 2, val, -1, SQLITE_TRANSIENT);
	sqlite3_bind_double(st, 3, catalog_now());
	if (sqlite3_step(st) != SQLITE_DONE) {
		sqlite3_finalize(st);
		return catalog_error(cat, "unable to write catalog_meta", e);
	}
	sqlite3_finalize(st);
	return 0;
}

static int overdue_one(const struct cfg_cluster *cl, struct catalog *cat,
		       double now, bool *alerted, struct err *e)
{
	struct drill_facts f;
	double since, max_s = cl->drill_max_age_h * 3600.0, last_alert = 0;
	bool found = false;
	char key[300], when[40] = "";
	json_t *p;
	char *payload;
	int rc;

	*alerted = false;
	if ((rc = catalog_cluster_ensure(cat, cl->name, e)) ||
	    (rc = drill_facts_get(cat, cl->name, &f, e)))
		return rc;
	since = overdue_since(&f);
	if (since <= 0 || now - since <= max_s)
		return 0;
	snprintf(key, sizeof(key), "drill.overdue_alerted.%s", cl->name);
	if ((rc = meta_get_double(cat, key, &last_alert, &found, e)))
		return rc;
	/* Alerted since the cluster became overdue, and not a whole period
	 * ago: quiet. */
	if (found && last_alert >= since + max_s && now - last_alert < max_s)
		return 0;
	if (f.have_pass)
		catalog_time_iso(f.pass_finished_at, false, when, sizeof(when));
	p = json_pack("{s:f, s:i}", "age_h", round((now - since) / 360.0) / 10.0,
		      "max_age_h", cl->drill_max_age_h);
	json_object_set_new(p, "last_passed_at", when[0] ? json_string(when) : json_null());
	if (f.have_last) {
		json_object_set_new(p, "last_drill_id", json_integer((json_int_t)f.last_id));
		json_object_set_new(p, "last_result", json_string(f.last_result));
	}
	payload = json_dumps(p, JSON_COMPACT | JSON_REAL_PRECISION(10));
	json_decref(p);
	if (!payload)
		return err_set(e, ERR_INTERNAL, "unable to build the drill.overdue event");
	if ((rc = catalog_begin(cat, e)) == 0) {
		char target[300];

		cfg_addr_format(&cl->drill_target, target, sizeof(target));
		rc = catalog_event_add(cat, cl->name, target, "drill.overdue", "warn",
				       payload, NULL, e);
		if (rc == 0)
			rc = meta_set_double(cat, key, now, e);
		if (rc == 0)
			rc = catalog_commit(cat, e);
		else
			catalog_rollback(cat, NULL);
	}
	free(payload);
	if (rc == 0) {
		*alerted = true;
		log_warn(MOD, "cluster '%s': last passing drill older than %d h",
			 cl->name, cl->drill_max_age_h);
	}
	return rc;
}

int drill_check_overdue(const struct config *cfg, struct catalog *cat,
			double now, int *n_alerts, struct err *e)
{
	int n = 0, rc = 0;

	if (now <= 0)
		now = catalog_now();
	for (size_t i = 0; i < cfg->n_clusters && rc == 0; i++) {
		bool alerted = false;

		if (!cfg_addr_is_set(&cfg->clusters[i].drill_target))
			continue;
		rc = overdue_one(&cfg->clusters[i], cat, now, &alerted, e);
		n += alerted;
	}
	if (n_alerts)
		*n_alerts = n;
	return rc;
}

static int metric_head(struct buf *b, const char *name, const char *help,
		       struct err *e)
{
	return buf_printf(b, e, "# HELP %s %s\n# TYPE %s gauge\n", name, help, name);
}

static int metric_line(struct buf *b, const char *name, const char *cluster,
		       double v, struct err *e)
{
	char num[64];
	int rc = buf_printf(b, e, "%s{cluster=\"", name);

	for (const char *s = cluster; rc == 0 && *s; s++) {
		if (*s == '\\' || *s == '"')
			rc = buf_printf(b, e, "\\%c", *s);
		else if (*s == '\n')
			rc = buf_append_str(b, "\\n", e);
		else
			rc = buf_append_char(b, *s, e);
	}
	if (isnan(v))
		str_copy(num, sizeof(num), "NaN");
	else if (isinf(v))
		str_copy(num, sizeof(num), v > 0 ? "+Inf" : "-Inf");
	else
		for (int prec = 15; prec <= 17; prec++) {
			snprintf(num, sizeof(num), "%.*g", prec, v);
			if (strtod(num, NULL) == v)
				break;
		}
	if (rc == 0)
		rc = buf_printf(b, e, "\"} %s\n", num);
	return rc;
}

int drill_metrics(struct catalog *cat, const struct config *cfg,
		  struct buf *out, struct err *e)
{
	static const struct {
		const char *name, *help;
	} fam[] = {
		{ "backupd_drill_last_age_seconds", "Seconds since the last DR drill ended (any result)." },
		{ "backupd_drill_last_success", "1 when the last DR drill passed, 0 when it failed." },
		{ "backupd_drill_last_rto_seconds", "RTO of the last passing DR drill: start to data restored and verified." },
		{ "backupd_drill_last_rpo_seconds", "RPO of the last passing DR drill: age of the snapshot's data at drill time." },
		{ "backupd_drill_last_pass_age_seconds", "Seconds since the last passing DR drill ended." },
		{ "backupd_drill_overdue", "1 when the last passing DR drill is older than drill_max_age_h." },
		{ "backupd_drill_max_age_seconds", "drill_max_age_h of the cluster, in seconds." },
	};
	struct drill_facts *f;
	double now = catalog_now();
	int rc = 0;

	f = xcalloc(cfg->n_clusters ? cfg->n_clusters : 1, sizeof(*f));
	for (size_t i = 0; i < cfg->n_clusters && rc == 0; i++)
		rc = drill_facts_get(cat, cfg->clusters[i].name, &f[i], e);
	for (size_t k = 0; k < sizeof(fam) / sizeof(fam[0]) && rc == 0; k++) {
		bool head = false;

		for (size_t i = 0; i < cfg->n_clusters && rc == 0; i++) {
			const struct cfg_cluster *cl = &cfg->clusters[i];
			bool drills = cfg_addr_is_set(&cl->drill_target);
			double since = overdue_since(&f[i]), v;

			switch (k) {
			case 0: if (!f[i].have_last) continue;
				v = now - f[i].last_finished_at; break;
			case 1: if (!f[i].have_last) continue;
				v = strcmp(f[i].last_result, "ok") == 0; break;
			case 2: if (!f[i].have_pass || f[i].pass_rto_s < 0) continue;
				v = f[i].pass_rto_s; break;
			case 3: if (!f[i].have_pass || f[i].pass_rpo_s < 0) continue;
				v = f[i].pass_rpo_s; break;
			case 4: if (!f[i].have_pass) continue;
				v = now - f[i].pass_finished_at; break;
			case 5: if (!drills) continue;
				v = since > 0 && now - since > cl->drill_max_age_h * 3600.0;
				break;
			default: if (!drills) continue;
				v = cl->drill_max_age_h * 3600.0; break;
			}
			if (!head && (rc = metric_head(out, fam[k].name, fam[k].help, e)))
				break;
			head = true;
			rc = metric_line(out, fam[k].name, cl->name, v, e);
		}
	}
	free(f);
	return rc;
}
