/* Rebuilding a configured replica that is down, broken or emptied: judge
 * its state, pick the latest good snapshot of its cluster, restore it with
 * restore_run as a replica of the cluster's current primary (which also
 * proves it equal to the primary), and record the rebuild with its phases.
 * `backupctl rebuild` runs it by hand; the daemon runs it by policy.
 *
 * Threading: runs in the calling thread, which owns the catalog. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "log.h"
#include "mem.h"
#include "probe.h"
#include "manifest.h"
#include "restore_int.h"
#include "storage.h"
#include "verify.h"

#define MOD "rebuild"

static double rb_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int rb_find_replica(const struct config *cfg, const char *cluster,
			   const struct cfg_addr *a, const struct cfg_cluster **out,
			   struct err *e)
{
	*out = NULL;
	for (size_t i = 0; i < cfg->n_clusters; i++) {
		const struct cfg_cluster *c = &cfg->clusters[i];

		if (cluster && strcmp(c->name, cluster) != 0)
			continue;
		for (size_t r = 0; r < c->n_replicas; r++)
			if (cfg_addr_equal(&c->replicas[r], a)) {
				*out = c;
				return 0;
			}
	}
	if (cluster && !config_find_cluster(cfg, cluster))
		return err_set(e, ERR_NOT_FOUND, "no cluster '%s' in config '%s'", cluster, cfg->path);
	return err_set(e, ERR_NOT_FOUND, "'%s:%u' is not a configured replica of %s%s%s in config '%s'",
		       a->host, a->port, cluster ? "cluster '" : "any cluster",
		       cluster ? cluster : "", cluster ? "'" : "", cfg->path);
}

/* What is wrong with the replica, in words; *healthy when nothing is. */
static int rb_diagnose(struct db *d, char *reason, size_t n, bool *healthy,
		       struct err *e)
{
	struct db_replica_status rs;
	unsigned long long dbs = 0;
	int rc;

	*healthy = false;
	rc = db_query_ulong(d, "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME NOT IN "
			    "('mysql', 'information_schema', 'performance_schema', 'sys')", &dbs, e);
	if (rc)
		return rc;
	rc = db_replica_status(d, &rs, e);
	if (rc == 0) {
		if (dbs == 0)
			snprintf(reason, n, "emptied: no databases%s",
				 rs.configured ? "" : ", no replication configured");
		else if (!rs.configured)
			snprintf(reason, n, "not replicating: no replication configured");
		else if (rs.last_sql_errno)
			snprintf(reason, n, "broken: SQL error %u: %.300s", rs.last_sql_errno,
				 rs.last_sql_error);
		else if (rs.last_io_errno && !rs.io_running)
			snprintf(reason, n, "broken: IO error %u: %.300s", rs.last_io_errno,
				 rs.last_io_error);
		else if (!rs.sql_running || !rs.io_running)
			snprintf(reason, n, "replication stopped (IO %s, SQL %s)", rs.io_state_raw,
				 rs.sql_running ? "Yes" : "No");
		else {
			snprintf(reason, n, "healthy: replicating with no error");
			*healthy = true;
		}
	}
	db_replica_status_release(&rs);
	return rc;
}

/* The snapshot to rebuild from: the newest complete one of the cluster
 * whose manifest is in the configured repository and that is not known
 * bad. Verified ok: taken as it is; never verified: verified now (a bad one
 * is passed over, so the replica is never wiped for a snapshot that cannot
 * be restored). Newest first because every snapshot older than needed is
 * more binary log the replica has to replay, if the primary still has it. */
static int rb_pick_snapshot(const struct config *cfg, struct catalog *cat,
			    const char *cluster, char *id, size_t n, struct err *e)
{
	struct catalog_snapshot *arr = NULL;
	struct storage *st = NULL;
	struct storage_opts so;
	size_t cnt = 0;
	char last_err[sizeof(e->msg)] = "";
	int rc;

	storage_opts_init(&so);
	so.create_root = false;
	rc = storage_open(cfg->repository, &so, &st, e);
	if (rc == 0)
		rc = catalog_snapshot_list(cat, cluster, &arr, &cnt, e);
	for (size_t i = cnt; rc == 0 && i-- > 0;) {
		const struct catalog_snapshot *s = &arr[i];
		struct storage_stat sst;
		struct verify_report rep;
		char path[2 * STORAGE_PATH_MAX];
		struct err ve;

		if (strcmp(s->status, "complete") != 0 ||
		    (s->verify_status && strcmp(s->verify_status, "ok") != 0))
			continue;
		snprintf(path, sizeof(path), "%s/%s/%s", cluster, s->id, MANIFEST_NAME);
		if ((rc = storage_stat(st, path, &sst, e)))
			break;
		if (!sst.exists)
			continue;    /* pruned, or in another repository */
		if (s->verify_status) {
			str_copy(id, n, s->id);
			break;
		}
		log_info(MOD, "snapshot '%s' was never verified: verifying it first", s->id);
		err_init(&ve);
		rc = snapshot_verify(cfg, cat, cluster, s->id, &rep, &ve);
		verify_report_release(&rep);
		if (rc == 0) {
			str_copy(id, n, s->id);
			break;
		}
		if (rc != ERR_VERIFY && rc != ERR_CORRUPT) {
			*e = ve;
			break;
		}
		log_warn(MOD, "snapshot '%s' is not usable: %s", s->id, ve.msg);
		str_copy(last_err, sizeof(last_err), ve.msg);
		rc = 0;
	}
	if (rc == 0 && !id[0])
		rc = err_set(e, ERR_NOT_FOUND,
			     "cluster '%s' has no complete snapshot in '%s' that verifies%s%s (take one: backupctl snapshot)",
			     cluster, st ? storage_url_redacted(st) : cfg->repository,
			     last_err[0] ? "; the last one tried: " : "", last_err);
	catalog_snapshot_free_list(arr, cnt);
	storage_close(st);
	return rc;
}

static int rb_bind_text(sqlite3_stmt *st, int i, const char *s)
{
	return s && *s ? sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT) : sqlite3_bind_null(st, i);
}

static int rb_cat_start(struct catalog *cat, int64_t job_id,
			struct restore_rebuild_result *res, struct err *e)
{
	sqlite3 *db = catalog_sqlite(cat);
	sqlite3_stmt *st = NULL;
	int rc;

	if (sqlite3_prepare_v2(db, "INSERT INTO rebuilds (job_id, cluster, server, started_at) VALUES (?, ?, ?, ?)",
			       -1, &st, NULL) != SQLITE_OK)
		return catalog_error(cat, "unable to record the rebuild", e);
	sqlite3_bind_int64(st, 1, job_id);
	rb_bind_text(st, 2, res->cluster);
	rb_bind_text(st, 3, res->server);
	sqlite3_bind_double(st, 4, catalog_now());
	rc = sqlite3_step(st) == SQLITE_DONE ? 0 : catalog_error(cat, "unable to record the rebuild", e);
	sqlite3_finalize(st);
	if (rc == 0)
		res->rebuild_id = sqlite3_last_insert_rowid(db);
	return rc;
}

static void rb_cat_finish(struct catalog *cat, int64_t job_id, int result_rc,
			  const struct err *re, const struct restore_rebuild_result *res)
{
	sqlite3 *db = catalog_sqlite(cat);
	sqlite3_stmt *st = NULL;
	const char *result = result_rc == 0 ? "ok" : result_rc == ERR_ABORTED ? "aborted" : "failed";
	const struct restore_result *r = &res->restore;
	json_t *p = json_object(), *ph = json_object();
	char *payload;
	struct err ce;

	err_init(&ce);
	json_object_set_new(p, "server", json_string(res->server));
	json_object_set_new(p, "reason", json_string(res->reason));
	json_object_set_new(p, "snapshot", res->snapshot_id[0] ? json_string(res->snapshot_id) : json_null());
	json_object_set_new(p, "seconds", json_real(res->seconds));
	for (size_t i = 0; i < r->n_phases; i++)
		json_object_set_new(ph, r->phases[i].name, json_real(r->phases[i].seconds));
	json_object_set_new(p, "phases", ph);
	if (r->replica) {
		json_object_set_new(p, "primary", json_string(r->primary));
		json_object_set_new(p, "catchup_s", json_real(r->catchup_s));
		json_object_set_new(p, "verified", json_boolean(r->verified));
	}
	if (result_rc) {
		json_object_set_new(p, "error", json_string(re->msg));
		json_object_set_new(p, "error_code", json_string(err_code_name(re->code)));
	}
	payload = json_dumps(p, JSON_COMPACT);
	json_decref(p);

	if (res->rebuild_id > 0) {
		if (sqlite3_prepare_v2(db,
				       "UPDATE rebuilds SET reason = ?, snapshot_id = ?, restore_id = ?, finished_at = ?, "
				       "result = ?, error_code = ?, error_message = ? WHERE id = ?",
				       -1, &st, NULL) != SQLITE_OK) {
			catalog_error(cat, "unable to record the end of the rebuild", &ce);
		} else {
			rb_bind_text(st, 1, res->reason);
			rb_bind_text(st, 2, res->snapshot_id);
			if (r->restore_id > 0)
				sqlite3_bind_int64(st, 3, r->restore_id);
			else
				sqlite3_bind_null(st, 3);
			sqlite3_bind_double(st, 4, catalog_now());
			rb_bind_text(st, 5, result);
			if (result_rc) {
				sqlite3_bind_int(st, 6, re->code);
				rb_bind_text(st, 7, re->msg);
			} else {
				sqlite3_bind_null(st, 6);
				sqlite3_bind_null(st, 7);
			}
			sqlite3_bind_int64(st, 8, res->rebuild_id);
			if (sqlite3_step(st) != SQLITE_DONE)
				catalog_error(cat, "unable to record the end of the rebuild", &ce);
			sqlite3_finalize(st);
		}
	}
	if (!err_is_set(&ce) && payload)
		catalog_event_add(cat, res->cluster, res->server,
				  result_rc == 0 ? "replica.rebuilt" : "replica.rebuild_failed",
				  result_rc == 0 ? "info" : "error", payload, NULL, &ce);
	if (job_id > 0 && !err_is_set(&ce))
		catalog_job_finish(cat, job_id, result, result_rc ? re : NULL, &ce);
	if (err_is_set(&ce))
		log_error(MOD, "unable to record the rebuild in the catalog: %s", ce.msg);
	free(payload);
}

int restore_rebuild(struct catalog *cat, const struct restore_rebuild_opts *o,
		    struct restore_rebuild_result *res, struct err *e)
{
	const struct cfg_cluster *cl = NULL;
	struct cfg_addr addr;
	struct db_opts dop;
	struct db *d = NULL;
	struct restore_opts ro;
	int64_t job_id = 0;
	bool healthy = false;
	double t0 = rb_mono();
	int rc;

	memset(res, 0, sizeof(*res));
	if (!cat)
		return err_set(e, ERR_INTERNAL, "rebuild needs the catalog");
	rc = cfg_addr_parse(o->server ? o->server : "", &addr, e);
	if (rc == 0)
		rc = rb_find_replica(o->cfg, o->cluster, &addr, &cl, e);
	if (rc)
		return rc;
	cfg_addr_format(&addr, res->server, sizeof(res->server));
	str_copy(res->cluster, sizeof(res->cluster), cl->name);

	rc = catalog_job_reap(cat, NULL, e);
	if (rc == 0)
		rc = catalog_job_start_ex(cat, "rebuild", cl->name, o->trigger ? o->trigger : "manual",
					  NULL, res->server, &job_id, e);
	if (rc)
		return rc;
	log_set_job(res->server);
	rc = rb_cat_start(cat, job_id, res, e);

	/* A server that does not answer cannot be restored into: it has to
	 * run (an empty datadir is fine) before anything can be loaded. */
	if (rc == 0) {
		probe_db_opts(cl, &addr, &dop);
		rc = db_connect(&dop, &d, e);
		if (rc) {
			str_copy(res->reason, sizeof(res->reason), "down: unreachable");
			struct err ce = *e;

			err_init(e);
			rc = err_set(e, ERR_DB_CONNECT,
				     "replica '%s' is unreachable: start it first (an empty datadir is fine) and run the rebuild again: %s",
				     res->server, ce.msg);
		}
	}
	if (rc == 0)
		rc = rb_diagnose(d, res->reason, sizeof(res->reason), &healthy, e);
	db_close(d);
	if (rc == 0) {
		log_info(MOD, "rebuilding replica '%s' of cluster '%s': %s", res->server, cl->name,
			 res->reason);
		if (healthy && !o->force)
			rc = err_set(e, ERR_REFUSED,
				     "replica '%s' is healthy (replicating with no error): nothing to rebuild (--force rebuilds it anyway)",
				     res->server);
	}
	if (rc == 0)
		rc = rb_pick_snapshot(o->cfg, cat, cl->name, res->snapshot_id,
				      sizeof(res->snapshot_id), e);
	if (rc == 0) {
		memset(&ro, 0, sizeof(ro));
		ro.cfg = o->cfg;
		ro.cluster = cl;
		ro.snapshot_id = res->snapshot_id;
		ro.target = res->server;
		ro.threads = o->threads;
		ro.force = o->force || cl->rebuild == CFG_REBUILD_AUTO;
		ro.as_replica_of = cl->name;
		ro.verify_replica = true;
		ro.catchup_timeout_s = o->catchup_timeout_s;
		ro.trigger = o->trigger;
		ro.job_id = job_id;
		ro.progress = o->progress;
		ro.abort_flag = o->abort_flag;
		log_info(MOD, "restoring snapshot '%s' into '%s'", res->snapshot_id, res->server);
		rc = restore_run(cat, &ro, &res->restore, e);
		if (rc == ERR_REFUSED && !ro.force)
			err_prefix(e, "cluster '%s' has rebuild = manual: ", cl->name);
	}
	res->seconds = rb_mono() - t0;
	if (rc == 0)
		log_info(MOD, "replica '%s' rebuilt from snapshot '%s' in %.2f s (caught up in %.2f s, %s)",
			 res->server, res->snapshot_id, res->seconds, res->restore.catchup_s,
			 res->restore.verified ? "verified equal to the primary" : "not verified");
	rb_cat_finish(cat, job_id, rc, e, res);
	log_set_job(NULL);
	return rc;
}
