/* The snapshot engine: freeze the source just long enough to open N
 * consistent-snapshot transactions and read the position, dump every table
 * in parallel (one connection and one storage handle per worker thread),
 * stream rows through the TSV encoder and zstd into the repository, then
 * commit by writing manifest.json last.
 *
 * Threading: the control thread owns the catalog, the control connection
 * and the manifest; workers own their connection and storage handle and
 * touch only their own jobs' result fields, plus the queue under ctx->lock. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "manifest.h"
#include "mem.h"
#include "probe.h"
#include "snapshot_int.h"
#include "storage.h"
#include "zst.h"

#define MOD "snapshot"
/* Encoded rows are handed to zstd in pieces of about this size. */
#define SNAP_STAGE_BYTES (1024u * 1024u)
/* A single encoded row may not exceed this (LOAD DATA reads rows whole). */
#define SNAP_ROW_MAX (512u * 1024u * 1024u)

struct snap_worker {
	struct snap_ctx *x;
	unsigned no;
	pthread_t thread;
	bool started;
	struct db *db;
	struct storage *st;
};

static double snap_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static double snap_mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static bool snap_aborted(const struct snap_ctx *x)
{
	return atomic_load(&x->failed) ||
	       (x->o->abort_flag && *x->o->abort_flag);
}

/* Records the first failure of any thread and stops the others. */
static void snap_fail(struct snap_ctx *x, const struct err *we)
{
	pthread_mutex_lock(&x->lock);
	if (!err_is_set(&x->first_err))
		x->first_err = *we;
	atomic_store(&x->failed, true);
	pthread_mutex_unlock(&x->lock);
}

/* ---- one job: SELECT ... → TSV → zstd → storage ---------------------- */

struct snap_sink {
	struct storage_file *f;
	struct checksum cks;
	uint64_t bytes;
	struct snap_ctx *x;
};

static int snap_sink_write(void *ctx, const void *data, size_t n, struct err *e)
{
	struct snap_sink *s = ctx;
	int rc = storage_write(s->f, data, n, e);
	if (rc == 0) {
		checksum_update(&s->cks, data, n);
		s->bytes += n;
		atomic_fetch_add(&s->x->bytes_stored_done, n);
	}
	return rc;
}

static int snap_run_job(struct snap_worker *w, struct snap_job *j, struct err *e)
{
	struct snap_ctx *x = w->x;
	struct snap_table *t = &x->tables[j->table];
	struct buf q, stage;
	struct checksum raw;
	struct snap_sink sink = { .x = x };
	struct zst_writer *zw = NULL;
	MYSQL_RES *res = NULL;
	MYSQL_ROW row;
	unsigned long *len;
	char path[1024];
	int rc;

	if (snprintf(path, sizeof(path), "%s/%s", x->dir, j->path) >= (int)sizeof(path))
		return err_set(e, ERR_INTERNAL, "path too long for '%s'", j->path);
	buf_init(&q, 0);
	buf_init(&stage, SNAP_ROW_MAX);
	checksum_init(&raw);
	checksum_init(&sink.cks);

	rc = buf_append_str(&q, "SELECT ", e);
	if (rc == 0)
		rc = tsv_select_list(&q, t->cols, t->n_cols, e);
	if (rc == 0)
		rc = buf_append_str(&q, " FROM ", e);
	if (rc == 0)
		rc = db_quote_table(&q, t->schema, t->name, e);
	if (rc == 0 && j->where)
		rc = buf_printf(&q, e, " WHERE %s", j->where);
	if (rc == 0)
		rc = storage_create(w->st, path, true, &sink.f, e);
	if (rc == 0)
		rc = zst_writer_new(x->o->cfg->compress_level, snap_sink_write, &sink,
				    &zw, e);
	if (rc == 0)
		rc = db_query_result(w->db, q.data, true, &res, e);
	unsigned nf = res ? mysql_num_fields(res) : 0;
	while (rc == 0 && (rc = db_fetch_row(w->db, res, &row, &len, e)) == 0 && row) {
		rc = tsv_append_row(&stage, row, len, nf, e);
		if (rc == ERR_INTERNAL)
			err_prefix(e, "row of `%s`.`%s` too large: ", t->schema, t->name);
		j->rows++;
		if (rc == 0 && stage.len >= SNAP_STAGE_BYTES) {
			checksum_update(&raw, stage.data, stage.len);
			j->bytes_raw += stage.len;
			atomic_fetch_add(&x->bytes_raw_done, stage.len);
			rc = zst_writer_write(zw, stage.data, stage.len, e);
			buf_reset(&stage);
		}
		if ((j->rows & 4095) == 0) {
			atomic_fetch_add(&x->rows_done, 4096);
			if (rc == 0 && snap_aborted(x))
				rc = err_set(e, ERR_ABORTED, "snapshot aborted");
		}
	}
	atomic_fetch_add(&x->rows_done, j->rows & 4095);
	if (res) {
		/* After an abort the rest of a streamed result must still be
		 * drained or closed; freeing it does that. */
		mysql_free_result(res);
		db_finish(w->db, NULL);
	}
	if (rc == 0 && stage.len) {
		checksum_update(&raw, stage.data, stage.len);
		j->bytes_raw += stage.len;
		atomic_fetch_add(&x->bytes_raw_done, stage.len);
		rc = zst_writer_write(zw, stage.data, stage.len, e);
	}
	if (rc == 0)
		rc = zst_writer_finish(zw, e);
	if (rc == 0)
		rc = storage_fsync(sink.f, e);
	if (sink.f) {
		int crc = storage_file_close(sink.f, rc ? NULL : e);
		if (rc == 0)
			rc = crc;
	}
	if (rc == 0) {
		checksum_final(&raw, j->cks_raw);
		checksum_final(&sink.cks, j->cks_stored);
		j->bytes_stored = sink.bytes;
		j->done = true;
	} else {
		err_prefix(e, "dumping `%s`.`%s`: ", t->schema, t->name);
	}
	zst_writer_free(zw);
	checksum_release(&raw);
	checksum_release(&sink.cks);
	buf_release(&q);
	buf_release(&stage);
	return rc;
}

/* Fault injection for tests (as SQLite and curl have): a pause before each
 * chunk, so a test can kill the process or stop the NFS server while a
 * snapshot is surely in flight. Unset in production. */
static long snap_fault_delay_ms(void)
{
	const char *v = getenv("BACKUPD_FAULT_CHUNK_DELAY_MS");
	long ms = 0;
	if (v && str_to_long(v, 0, 600000, &ms) != 0)
		ms = 0;
	return ms;
}

static void *snap_worker_main(void *arg)
{
	struct snap_worker *w = arg;
	struct snap_ctx *x = w->x;
	long delay_ms = snap_fault_delay_ms();
	char job[96];

	snprintf(job, sizeof(job), "%s/w%u", x->id, w->no);
	log_set_job(job);
	for (;;) {
		struct snap_job *j = NULL;
		struct err e;

		pthread_mutex_lock(&x->lock);
		if (x->next_job < x->job_limit && !snap_aborted(x))
			j = &x->jobs[x->next_job++];
		pthread_mutex_unlock(&x->lock);
		if (!j)
			break;
		for (long waited = 0; waited < delay_ms && !snap_aborted(x); waited += 50) {
			struct timespec ts = { 0, 50 * 1000 * 1000 };
			nanosleep(&ts, NULL);
		}
		err_init(&e);
		if (snap_run_job(w, j, &e) != 0) {
			snap_fail(x, &e);
			break;
		}
	}
	/* The last worker out wakes the control thread at once (it would
	 * otherwise notice only at its next progress tick). */
	pthread_mutex_lock(&x->lock);
	if (atomic_fetch_sub(&x->running, 1) == 1)
		pthread_cond_signal(&x->idle);
	pthread_mutex_unlock(&x->lock);
	log_set_job(NULL);
	return NULL;
}

static void snap_progress(struct snap_ctx *x, double t0, bool final)
{
	double el = snap_mono() - t0;
	uint64_t rows = atomic_load(&x->rows_done);
	uint64_t raw = atomic_load(&x->bytes_raw_done);
	size_t done_jobs = 0;

	if (!x->o->progress)
		return;
	for (size_t i = 0; i < x->n_jobs; i++)
		done_jobs += x->jobs[i].done;
	double rate = el > 0 ? raw / el / 1e6 : 0;
	char eta[32] = "-";
	if (x->est_rows_total && rows && rows < x->est_rows_total)
		snprintf(eta, sizeof(eta), "%.0fs",
			 el * (double)(x->est_rows_total - rows) / (double)rows);
	fprintf(stderr, "\r%s: chunks %zu/%zu  rows %" PRIu64 "  %.1f MB  %.1f MB/s  ETA %s   %s",
		x->id, done_jobs, x->n_jobs, rows, raw / 1e6, rate, eta,
		final ? "\n" : "");
	fflush(stderr);
}

/* Runs jobs [next_job, limit) on the workers and waits for them. */
static int snap_run_phase(struct snap_ctx *x, struct snap_worker *ws,
			  unsigned nw, size_t limit, double t0, struct err *e)
{
	x->job_limit = limit;
	atomic_store(&x->running, (int)nw);
	for (unsigned i = 0; i < nw; i++) {
		if (pthread_create(&ws[i].thread, NULL, snap_worker_main, &ws[i]) != 0) {
			/* Cannot start: count it finished and fail. */
			atomic_fetch_sub(&x->running, 1);
			struct err te;
			err_init(&te);
			err_set(&te, ERR_INTERNAL, "unable to start worker thread %u", i);
			snap_fail(x, &te);
			continue;
		}
		ws[i].started = true;
	}
	for (;;) {
		struct timespec ts;
		bool idle;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_nsec += 200 * 1000 * 1000;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_mutex_lock(&x->lock);
		if (atomic_load(&x->running) > 0)
			pthread_cond_timedwait(&x->idle, &x->lock, &ts);
		idle = atomic_load(&x->running) == 0;
		pthread_mutex_unlock(&x->lock);
		/* Checked before leaving too: workers that saw the flag just
		 * stop taking jobs, so only this records the abort. */
		if (x->o->abort_flag && *x->o->abort_flag && !atomic_load(&x->failed)) {
			struct err ae;
			err_init(&ae);
			err_set(&ae, ERR_ABORTED, "snapshot aborted by a signal");
			snap_fail(x, &ae);
		}
		if (idle)
			break;
		snap_progress(x, t0, false);
	}
	for (unsigned i = 0; i < nw; i++)
		if (ws[i].started) {
			pthread_join(ws[i].thread, NULL);
			ws[i].started = false;
		}
	/* Workers stop taking chunks once aborted; a signal that came after
	 * the last poll above must still fail the phase, never leave chunks
	 * silently undone. */
	if (x->o->abort_flag && *x->o->abort_flag && !atomic_load(&x->failed)) {
		struct err ae;
		err_init(&ae);
		err_set(&ae, ERR_ABORTED, "snapshot aborted by a signal");
		snap_fail(x, &ae);
	}
	for (size_t k = 0; k < limit && !atomic_load(&x->failed); k++)
		if (!x->jobs[k].done) {
			struct err ie;
			err_init(&ie);
			err_set(&ie, ERR_INTERNAL, "chunk '%s' was not dumped", x->jobs[k].path);
			snap_fail(x, &ie);
		}
	if (atomic_load(&x->failed)) {
		pthread_mutex_lock(&x->lock);
		if (!err_is_set(e))
			*e = x->first_err;
		pthread_mutex_unlock(&x->lock);
		if (!err_is_set(e))
			err_set(e, ERR_INTERNAL, "a snapshot worker failed");
		return e->code;
	}
	return 0;
}

/* ---- source choice, freeze and position ------------------------------ */

static int snap_choose_source(struct snap_ctx *x, struct cfg_addr *addr,
			      struct err *e)
{
	const struct cfg_cluster *c = x->cl;
	struct cfg_addr want;
	int rc;

	if (x->o->from) {
		rc = cfg_addr_parse(x->o->from, &want, e);
		if (rc)
			return rc;
		if (cfg_addr_equal(&want, &c->primary)) {
			*addr = c->primary;
			x->source_role = "primary";
			return 0;
		}
		for (size_t i = 0; i < c->n_replicas; i++)
			if (cfg_addr_equal(&want, &c->replicas[i])) {
				*addr = c->replicas[i];
				x->source_role = "replica";
				return 0;
			}
		return err_set(e, ERR_NOT_FOUND,
			       "server '%s' is not the primary or a replica of cluster '%s'",
			       x->o->from, c->name);
	}
	if (c->snapshot_from == CFG_FROM_PRIMARY || c->n_replicas == 0) {
		if (c->n_replicas == 0 && c->snapshot_from != CFG_FROM_PRIMARY)
			log_info(MOD, "cluster '%s' has no replicas: snapshot from the primary",
				 c->name);
		*addr = c->primary;
		x->source_role = "primary";
		return 0;
	}
	/* The healthiest replica: replicating, least lag. */
	int best = -1;
	double best_lag = 0;
	char why[1024] = "";
	for (size_t i = 0; i < c->n_replicas; i++) {
		struct probe p;
		rc = probe_server(c, &c->replicas[i], PROBE_REPLICA, &p, e);
		if (rc)
			return rc;
		if (p.lag_known && (best < 0 || p.lag_s < best_lag)) {
			best = (int)i;
			best_lag = p.lag_s;
		} else if (!p.lag_known && !why[0]) {
			struct buf wb;
			buf_init(&wb, sizeof(why) - 1);
			buf_printf(&wb, NULL, "%s: %s%s%s", p.addr, p.lag_reason,
				   p.reachable ? "" : " - ", p.reachable ? "" : p.conn_err.msg);
			str_copy(why, sizeof(why), wb.data);
			buf_release(&wb);
		}
		probe_release(&p);
	}
	if (best < 0)
		return err_set(e, ERR_REPLICATION,
			       "no healthy replica to snapshot from in cluster '%s' (%s); use --from SERVER or snapshot_from = primary",
			       c->name, why);
	*addr = c->replicas[best];
	x->source_role = "replica";
	return 0;
}

enum snap_freeze { FREEZE_NONE, FREEZE_SQL_THREAD, FREEZE_READ_LOCK };

static int snap_freeze(struct snap_ctx *x, enum snap_freeze *how, struct err *e)
{
	struct db_replica_status rs;
	int rc;

	*how = FREEZE_NONE;
	memset(&rs, 0, sizeof(rs));
	rc = db_replica_status(x->ctl, &rs, e);
	if (rc == 0 && rs.configured) {
		/* A replica: stopping its SQL thread freezes the data at
		 * gtid_slave_pos. A thread already stopped (by someone else)
		 * stays stopped and is never started by us. */
		if (rs.sql_running) {
			rc = db_exec(x->ctl, db_sql(x->ctl, DIALECT_STOP_SQL_THREAD), e);
			if (rc == 0)
				*how = FREEZE_SQL_THREAD;
		} else {
			snap_warn(x, "replica '%s' had its SQL thread stopped already; it stays stopped",
				  x->source);
		}
	} else if (rc == 0) {
		/* A primary: the shortest global read lock. A long query
		 * would make FTWRL wait while blocking every writer, so give
		 * up after lock_wait_timeout instead. */
		rc = db_exec(x->ctl, "SET SESSION lock_wait_timeout = 30", e);
		if (rc == 0)
			rc = db_exec(x->ctl, "FLUSH TABLES WITH READ LOCK", e);
		if (rc == 0)
			*how = FREEZE_READ_LOCK;
	}
	db_replica_status_release(&rs);
	return rc;
}

/* Undoes snap_freeze; safe to call twice. Reconnects when the control
 * connection was lost, because a replica left with its SQL thread stopped
 * by us is the worst outcome of a failed snapshot. */
static int snap_unfreeze(struct snap_ctx *x, enum snap_freeze *how,
			 const struct cfg_addr *addr, struct err *e)
{
	int rc = 0;

	if (*how == FREEZE_SQL_THREAD) {
		rc = db_exec(x->ctl, db_sql(x->ctl, DIALECT_START_SQL_THREAD), e);
		if (rc != 0) {
			struct db_opts dop;
			struct db *d2 = NULL;
			struct err e2;
			err_init(&e2);
			probe_db_opts(x->cl, addr, &dop);
			if (db_connect(&dop, &d2, &e2) == 0 &&
			    db_exec(d2, db_sql(d2, DIALECT_START_SQL_THREAD), &e2) == 0)
				rc = 0;
			db_close(d2);
			if (rc)
				log_error(MOD, "the SQL thread of '%s' could not be restarted: start it by hand (%s)",
					  x->source, e2.msg);
		}
	} else if (*how == FREEZE_READ_LOCK) {
		/* Closing the connection releases the lock as well. */
		rc = db_exec(x->ctl, "UNLOCK TABLES", e);
	}
	*how = FREEZE_NONE;
	return rc;
}

static int snap_read_position(struct snap_ctx *x, struct err *e)
{
	MYSQL_RES *res = NULL;
	MYSQL_ROW row;
	struct db_replica_status rs;
	int rc;

	rc = db_gtid_position(x->ctl, &x->gtid, e);
	if (rc == 0)
		rc = db_query_result(x->ctl, db_sql(x->ctl, DIALECT_SHOW_BINLOG_STATUS),
				     false, &res, e);
	if (rc == 0 && db_fetch_row(x->ctl, res, &row, NULL, e) == 0 && row && row[0]) {
		x->binlog_file = xstrdup(row[0]);
		x->binlog_pos = row[1] ? strtoull(row[1], NULL, 10) : 0;
	}
	if (res) {
		mysql_free_result(res);
		db_finish(x->ctl, NULL);
	}
	memset(&rs, 0, sizeof(rs));
	if (rc == 0 && db_replica_status(x->ctl, &rs, e) == 0 && rs.configured &&
	    rs.relay_source_log_file[0]) {
		x->source_binlog_file = xstrdup(rs.relay_source_log_file);
		x->source_binlog_pos = rs.exec_source_log_pos;
	}
	db_replica_status_release(&rs);
	return rc;
}

static int snap_worker_connect(struct snap_ctx *x, struct snap_worker *w,
			       const struct cfg_addr *addr, struct err *e)
{
	struct db_opts dop;
	struct storage_opts so;
	int rc;

	probe_db_opts(x->cl, addr, &dop);
	rc = db_connect(&dop, &w->db, e);
	/* binary: bytes exactly as stored; UTC: TIMESTAMPs independent of
	 * any zone; long timeouts: a slow repository must not get a
	 * streaming connection killed by the server. */
	if (rc == 0)
		rc = db_exec(w->db, "SET NAMES binary", e);
	if (rc == 0)
		rc = db_exec(w->db, "SET SESSION time_zone = '+00:00', SESSION wait_timeout = 86400, "
			     "SESSION net_write_timeout = 3600, SESSION net_read_timeout = 3600", e);
	if (rc == 0 && db_flavor(w->db) == DB_FLAVOR_MARIADB)
		rc = db_exec(w->db, "SET SESSION max_statement_time = 0", e);
	if (rc == 0)
		rc = db_exec(w->db, "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ", e);
	storage_opts_init(&so);
	if (rc == 0)
		rc = storage_open(x->o->cfg->repository, &so, &w->st, e);
	return rc;
}

/* ---- commit: manifest, catalog ---------------------------------------- */

static void snap_env(const struct snap_obj *o, struct manifest_sql_env *env)
{
	env->sql_mode = o->sql_mode;
	env->character_set_client = o->cs_client;
	env->collation_connection = o->coll_conn;
	env->db_collation = o->db_coll;
}

static int snap_build_manifest(struct snap_ctx *x, struct db *src,
			       double started, double finished,
			       struct manifest **out, struct err *e)
{
	struct manifest *m = manifest_new();
	char ts[MANIFEST_TIME_MAX];
	int rc = 0;

	manifest_set_str(&m->id, x->id);
	manifest_set_str(&m->cluster, x->cl->name);
	manifest_set_str(&m->source.address, x->source);
	manifest_set_str(&m->source.role, x->source_role);
	m->source.server_id = (int64_t)db_server_id(src);
	manifest_set_str(&m->source.flavor,
			 db_flavor(src) == DB_FLAVOR_MYSQL ? "mysql" : "mariadb");
	manifest_set_str(&m->source.version, db_version_string(src));
	manifest_set_str(&m->position.gtid, x->gtid ? x->gtid : "");
	manifest_set_str(&m->position.binlog_file, x->binlog_file);
	m->position.binlog_pos = x->binlog_pos;
	manifest_set_str(&m->position.source_binlog_file, x->source_binlog_file);
	m->position.source_binlog_pos = x->source_binlog_pos;
	if (manifest_time_format(started, ts, e) == 0)
		manifest_set_str(&m->started_at, ts);
	if (manifest_time_format(finished, ts, e) == 0)
		manifest_set_str(&m->finished_at, ts);
	m->settings.threads = x->o->cfg->threads;
	m->settings.compress_level = x->o->cfg->compress_level;
	m->settings.chunk_rows = x->o->chunk_rows ? x->o->chunk_rows : SNAPSHOT_CHUNK_ROWS_DEFAULT;
	m->settings.include_users = x->cl->include_users;

	for (size_t i = 0; i < x->databases.n; i++)
		manifest_add_database(m, x->databases.items[i].name,
				      x->databases.items[i].create_sql);
	for (size_t ti = 0; rc == 0 && ti < x->n_tables; ti++) {
		struct snap_table *t = &x->tables[ti];
		size_t mi = manifest_add_table(m, t->schema, t->name, t->engine,
					       t->create_sql);
		for (size_t c = 0; rc == 0 && c < t->n_cols; c++)
			rc = manifest_table_add_column(m, mi, t->cols[c].name,
						       t->cols[c].kind, e);
		/* The table's content checksum: over its chunks' raw
		 * checksums in chunk order, so it does not depend on how
		 * many workers ran or in which order they finished. */
		struct checksum tc;
		checksum_init(&tc);
		for (size_t k = 0; rc == 0 && k < t->n_jobs; k++) {
			struct snap_job *j = &x->jobs[t->first_job + k];
			struct manifest_file f = {
				.path = j->path, .kind = MANIFEST_FILE_DATA,
				.table = (int64_t)mi, .chunk = j->chunk,
				.rows = j->rows, .bytes_raw = j->bytes_raw,
				.bytes_stored = j->bytes_stored,
			};
			str_copy(f.checksum_raw, sizeof(f.checksum_raw), j->cks_raw);
			str_copy(f.checksum_stored, sizeof(f.checksum_stored), j->cks_stored);
			checksum_update(&tc, j->cks_raw, strlen(j->cks_raw));
			t->rows += j->rows;
			int fi = manifest_add_file(m, &f, e);
			if (fi < 0)
				rc = fi;
		}
		checksum_final(&tc, t->checksum);
		checksum_release(&tc);
		if (rc == 0 && t->n_jobs)
			rc = manifest_table_set_checksum(m, mi, t->checksum, e);
	}
	for (size_t i = 0; i < x->views.n; i++)
		manifest_add_view(m, x->views.items[i].schema, x->views.items[i].name,
				  x->views.items[i].create_sql);
	for (size_t i = 0; i < x->triggers.n; i++) {
		struct manifest_sql_env env;
		struct snap_obj *o = &x->triggers.items[i];
		snap_env(o, &env);
		manifest_add_trigger(m, o->schema, o->name, o->extra, o->create_sql, &env);
	}
	for (size_t i = 0; i < x->routines.n; i++) {
		struct manifest_sql_env env;
		struct snap_obj *o = &x->routines.items[i];
		snap_env(o, &env);
		manifest_add_routine(m, o->schema, o->name, o->extra, o->create_sql, &env);
	}
	for (size_t i = 0; i < x->events.n; i++) {
		struct manifest_sql_env env;
		struct snap_obj *o = &x->events.items[i];
		snap_env(o, &env);
		manifest_add_event(m, o->schema, o->name, o->create_sql, o->time_zone, &env);
	}
	for (size_t i = 0; i < x->n_users; i++)
		manifest_add_user(m, x->users[i].user, x->users[i].host,
				  x->users[i].create_sql, x->users[i].grants,
				  x->users[i].n_grants);
	for (size_t i = 0; i < x->n_warnings; i++)
		manifest_add_warning(m, "%s", x->warnings[i]);
	if (rc) {
		manifest_free(m);
		return rc;
	}
	*out = m;
	return 0;
}

static int snap_catalog_commit(struct catalog *cat, struct snap_ctx *x,
			       const struct manifest *m, struct db *src,
			       double finished, const struct snapshot_result *res,
			       struct err *e)
{
	struct catalog_snapshot s;
	char payload[1024];
	char path[512];
	int rc;

	catalog_snapshot_init(&s);
	snprintf(path, sizeof(path), "%s/manifest.json", x->dir);
	s.id = x->id;
	s.gtid = x->gtid;
	s.binlog_file = x->binlog_file;
	s.binlog_pos = (int64_t)x->binlog_pos;
	s.server_flavor = (char *)(db_flavor(src) == DB_FLAVOR_MYSQL ? "mysql" : "mariadb");
	s.server_version = (char *)db_version_string(src);
	s.server_id = (int64_t)db_server_id(src);
	s.bytes_raw = (int64_t)m->totals.bytes_raw;
	s.bytes_stored = (int64_t)m->totals.bytes_stored;
	s.n_files = (int64_t)m->n_files;
	s.n_tables = (int64_t)m->n_tables;
	s.manifest_path = path;
	s.finished_at = finished;

	rc = catalog_begin(cat, e);
	if (rc)
		return rc;
	rc = catalog_snapshot_complete(cat, &s, e);
	for (size_t i = 0; rc == 0 && i < m->n_files; i++) {
		const struct manifest_file *f = &m->files[i];
		const struct manifest_table *t = f->table >= 0 ? &m->tables[f->table] : NULL;
		struct catalog_snapshot_file cf = {
			.path = f->path, .kind = f->kind == MANIFEST_FILE_DATA ? "data" : "schema",
			.schema_name = t ? t->schema : NULL, .table_name = t ? t->name : NULL,
			.bytes_raw = (int64_t)f->bytes_raw, .bytes_stored = (int64_t)f->bytes_stored,
			.checksum_algo = CHECKSUM_ALGO, .checksum = (char *)checksum_hex_part(f->checksum_stored),
		};
		rc = catalog_snapshot_add_file(cat, x->id, &cf, e);
	}
	for (size_t i = 0; rc == 0 && i < m->n_tables; i++) {
		const struct manifest_table *t = &m->tables[i];
		struct catalog_snapshot_table ct = {
			.schema_name = t->schema, .table_name = t->name, .engine = t->engine,
			.n_rows = (int64_t)t->rows, .checksum_algo = CHECKSUM_ALGO,
			.checksum = t->checksum ? (char *)checksum_hex_part(t->checksum) : NULL,
		};
		rc = catalog_snapshot_add_table(cat, x->id, &ct, e);
	}
	snprintf(payload, sizeof(payload),
		 "{\"id\":\"%s\",\"source\":\"%s\",\"bytes_raw\":%" PRIu64 ",\"bytes_stored\":%" PRIu64
		 ",\"seconds\":%.3f,\"tables\":%u,\"rows\":%" PRIu64 ",\"freeze_ms\":%.1f}",
		 x->id, x->source, res->bytes_raw, res->bytes_stored, res->seconds,
		 res->n_tables, res->rows, res->freeze_ms);
	if (rc == 0)
		rc = catalog_event_add(cat, x->cl->name, x->source, "snapshot.done", "info",
				       payload, NULL, e);
	if (rc == 0)
		rc = catalog_commit(cat, e);
	else
		catalog_rollback(cat, NULL);
	return rc;
}

/* ---- leftovers ---------------------------------------------------------- */

int snapshot_cleanup_leftovers(struct catalog *cat, struct storage *st,
			       const char *cluster, struct err *e)
{
	char **names = NULL;
	size_t n = 0;
	struct storage_stat sst;
	int rc;

	rc = storage_stat(st, cluster, &sst, e);
	if (rc || !sst.exists)
		return rc;
	rc = storage_list(st, cluster, &names, &n, e);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		char dir[1100], man[1200];
		struct catalog_snapshot s;
		struct err ce;

		if (snprintf(dir, sizeof(dir), "%s/%s", cluster, names[i]) >= (int)sizeof(dir))
			continue;
		snprintf(man, sizeof(man), "%s/manifest.json", dir);
		if (storage_stat(st, dir, &sst, e) != 0 || !sst.is_dir)
			continue;
		if (storage_stat(st, man, &sst, e) != 0 || sst.exists)
			continue;
		/* The caller holds this cluster's snapshot job lock, so no
		 * other snapshot of it is being written: a folder without a
		 * manifest is what a crash or a kill left behind. */
		err_init(&ce);
		catalog_snapshot_init(&s);
		if (catalog_snapshot_get(cat, names[i], &s, &ce) == 0 &&
		    strcmp(s.status, "running") == 0)
			catalog_snapshot_fail(cat, names[i], "aborted",
					      "interrupted: the process ended before the manifest was written",
					      NULL);
		catalog_snapshot_release(&s);
		log_info(MOD, "removing leftover '%s' (no manifest)", dir);
		struct err re;
		err_init(&re);
		if (storage_remove_tree(st, dir, &re) != 0)
			log_warn(MOD, "unable to remove leftover '%s': %s", dir, re.msg);
	}
	storage_list_free(names, n);
	return rc;
}

/* ---- the run ------------------------------------------------------------ */

static void snap_make_id(char *out, size_t n)
{
	struct timespec ts;
	struct tm tm;
	unsigned r = 0;
	FILE *f;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	f = fopen("/dev/urandom", "rb");
	if (!f || fread(&r, sizeof(r), 1, f) != 1)
		r = (unsigned)ts.tv_nsec ^ (unsigned)getpid();
	if (f)
		fclose(f);
	snprintf(out, n, "%04d%02d%02dT%02d%02d%02dZ-%04x", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		 r & 0xffff);
}

static void snap_ctx_release(struct snap_ctx *x)
{
	for (size_t i = 0; i < x->n_tables; i++) {
		struct snap_table *t = &x->tables[i];
		free(t->schema); free(t->name); free(t->engine); free(t->create_sql);
		free(t->pk_col);
		for (size_t c = 0; c < t->n_cols; c++)
			free(t->cols[c].name);
		free(t->cols);
	}
	free(x->tables);
	for (size_t i = 0; i < x->n_jobs; i++)
		free(x->jobs[i].where);
	free(x->jobs);
	snap_objs_free(&x->databases);
	snap_objs_free(&x->views);
	snap_objs_free(&x->triggers);
	snap_objs_free(&x->routines);
	snap_objs_free(&x->events);
	for (size_t i = 0; i < x->n_users; i++) {
		free(x->users[i].user); free(x->users[i].host); free(x->users[i].create_sql);
		for (size_t g = 0; g < x->users[i].n_grants; g++)
			free(x->users[i].grants[g]);
		free(x->users[i].grants);
	}
	free(x->users);
	for (size_t i = 0; i < x->n_warnings; i++)
		free(x->warnings[i]);
	free(x->warnings);
	free(x->gtid);
	free(x->binlog_file);
	free(x->source_binlog_file);
	pthread_mutex_destroy(&x->lock);
	pthread_cond_destroy(&x->idle);
}

int snapshot_run(struct catalog *cat, const struct snapshot_opts *o,
		 struct snapshot_result *res, struct err *e)
{
	struct snap_ctx x;
	struct cfg_addr addr;
	struct storage *st = NULL;
	struct storage_opts so;
	struct snap_worker *ws = NULL;
	struct manifest *m = NULL;
	enum snap_freeze frozen = FREEZE_NONE;
	unsigned nw = (unsigned)(o->cfg->threads > 0 ? o->cfg->threads : 1);
	int64_t job_id = -1;
	bool inserted = false;
	double started = snap_now(), t0 = snap_mono(), tf = 0;
	struct db_opts dop;
	int rc;

	memset(&x, 0, sizeof(x));
	memset(res, 0, sizeof(*res));
	pthread_mutex_init(&x.lock, NULL);
	{
		pthread_condattr_t ca;
		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&x.idle, &ca);
		pthread_condattr_destroy(&ca);
	}
	err_init(&x.first_err);
	x.o = o;
	x.cl = o->cluster;

	/* A snapshot process killed with -9 leaves its job "running"; free
	 * the slot when that process is gone. */
	rc = catalog_job_reap(cat, NULL, e);
	if (rc == 0)
		rc = catalog_job_start_ex(cat, "snapshot", x.cl->name,
				  o->trigger ? o->trigger : "manual", o->schedule,
				  NULL, &job_id, e);
	if (rc)
		goto out_free;
	rc = snap_choose_source(&x, &addr, e);
	if (rc == 0) {
		cfg_addr_format(&addr, x.source, sizeof(x.source));
		snap_make_id(x.id, sizeof(x.id));
		snprintf(x.dir, sizeof(x.dir), "%s/%s", x.cl->name, x.id);
		log_set_job(x.id);
		log_info(MOD, "snapshot %s of cluster '%s' from %s '%s'", x.id,
			 x.cl->name, x.source_role, x.source);
		storage_opts_init(&so);
		so.create_root = true;
		rc = storage_open(o->cfg->repository, &so, &st, e);
	}
	if (rc == 0)
		rc = snapshot_cleanup_leftovers(cat, st, x.cl->name, e);
	if (rc == 0) {
		struct catalog_snapshot s;
		catalog_snapshot_init(&s);
		s.id = x.id;
		s.cluster = (char *)x.cl->name;
		s.job_id = job_id;
		s.source_server = x.source;
		s.compress_level = o->cfg->compress_level;
		s.threads = (int)nw;
		s.repository = (char *)storage_url_redacted(st);
		s.started_at = started;
		rc = catalog_snapshot_insert(cat, &s, e);
		inserted = rc == 0;
	}
	/* Connections before the freeze: the freeze lasts only as long as
	 * starting transactions, reading DDL and the non-transactional
	 * tables take. */
	if (rc == 0) {
		probe_db_opts(x.cl, &addr, &dop);
		rc = db_connect(&dop, &x.ctl, e);
	}
	if (rc == 0) {
		ws = xcalloc(nw, sizeof(*ws));
		for (unsigned i = 0; rc == 0 && i < nw; i++) {
			ws[i].x = &x;
			ws[i].no = i;
			rc = snap_worker_connect(&x, &ws[i], &addr, e);
		}
	}
	if (rc == 0)
		rc = storage_mkdir_p(st, x.dir, e);
	if (rc == 0) {
		char data[450];
		if (snprintf(data, sizeof(data), "%s/data", x.dir) >= (int)sizeof(data))
			rc = err_set(e, ERR_INTERNAL, "path too long");
		else
			rc = storage_mkdir_p(st, data, e);
	}

	if (rc == 0) {
		tf = snap_mono();
		rc = snap_freeze(&x, &frozen, e);
	}
	for (unsigned i = 0; rc == 0 && i < nw; i++)
		rc = db_exec(ws[i].db, "START TRANSACTION WITH CONSISTENT SNAPSHOT", e);
	if (rc == 0)
		rc = snap_read_position(&x, e);
	if (rc == 0)
		rc = snap_discover(&x, e);
	if (rc == 0)
		rc = snap_plan_jobs(&x, e);
	/* Non-transactional tables are read while the source stays frozen:
	 * that is the only way they match the position. */
	if (rc == 0 && x.job_limit > 0) {
		log_info(MOD, "dumping %zu chunk(s) of non-transactional tables while frozen",
			 x.job_limit);
		rc = snap_run_phase(&x, ws, nw, x.job_limit, t0, e);
	}
	if (frozen != FREEZE_NONE) {
		int urc = snap_unfreeze(&x, &frozen, &addr, rc ? NULL : e);
		res->freeze_ms = (snap_mono() - tf) * 1000.0;
		log_info(MOD, "source frozen for %.1f ms at gtid '%s'", res->freeze_ms,
			 x.gtid ? x.gtid : "");
		if (rc == 0)
			rc = urc;
	}
	if (rc == 0)
		rc = snap_run_phase(&x, ws, nw, x.n_jobs, t0, e);
	for (unsigned i = 0; rc == 0 && i < nw; i++)
		rc = db_exec(ws[i].db, "COMMIT", e);
	snap_progress(&x, t0, true);

	if (rc == 0) {
		double finished = snap_now();
		char *json = NULL;
		size_t jn = 0;
		char path[450];

		rc = snap_build_manifest(&x, x.ctl, started, finished, &m, e);
		if (rc == 0)
			rc = manifest_to_json(m, &json, &jn, e);
		if (snprintf(path, sizeof(path), "%s/manifest.json", x.dir) >= (int)sizeof(path))
			rc = err_set(e, ERR_INTERNAL, "path too long");
		res->seconds = snap_mono() - t0;
		res->bytes_raw = m ? m->totals.bytes_raw : 0;
		res->bytes_stored = m ? m->totals.bytes_stored : 0;
		res->rows = m ? m->totals.rows : 0;
		res->n_tables = m ? (unsigned)m->n_tables : 0;
		res->n_files = m ? (unsigned)m->n_files : 0;
		/* The commit point: until this rename the snapshot does not
		 * exist for list or restore. */
		if (rc == 0)
			rc = storage_write_atomic(st, path, json, jn, e);
		free(json);
		if (rc == 0)
			rc = snap_catalog_commit(cat, &x, m, x.ctl, finished, res, e);
	}
	if (rc == 0) {
		str_copy(res->id, sizeof(res->id), x.id);
		str_copy(res->gtid, sizeof(res->gtid), x.gtid ? x.gtid : "");
		str_copy(res->source, sizeof(res->source), x.source);
		log_info(MOD, "snapshot %s complete: %u tables, %" PRIu64 " rows, %.1f MB raw, %.1f MB stored, %.2f s",
			 x.id, res->n_tables, res->rows, res->bytes_raw / 1e6,
			 res->bytes_stored / 1e6, res->seconds);
	}

	/* Failure: stop workers, restore the source, remove what was
	 * written, and say why in the catalog. */
	if (frozen != FREEZE_NONE)
		snap_unfreeze(&x, &frozen, &addr, NULL);
	if (rc != 0) {
		if (ws)
			for (unsigned i = 0; i < nw; i++)
				if (ws[i].db)
					db_exec(ws[i].db, "ROLLBACK", NULL);
		if (st && x.dir[0]) {
			struct err re;
			err_init(&re);
			if (storage_remove_tree(st, x.dir, &re) != 0)
				log_warn(MOD, "unable to remove '%s' (%s); it has no manifest, so it is invisible and the next snapshot removes it",
					 x.dir, re.msg);
		}
		if (inserted) {
			struct err ce;
			char payload[1200];
			struct buf pj;
			err_init(&ce);
			buf_init(&pj, 0);
			buf_append_str(&pj, "{\"id\":", &ce);
			json_quote(&pj, x.id, &ce);
			buf_append_str(&pj, ",\"error\":", &ce);
			json_quote(&pj, e->msg, &ce);
			buf_append_char(&pj, '}', &ce);
			str_copy(payload, sizeof(payload), pj.data);
			buf_release(&pj);
			if (catalog_begin(cat, &ce) == 0) {
				if (catalog_snapshot_fail(cat, x.id,
							  e->code == ERR_ABORTED ? "aborted" : "failed",
							  e->msg, &ce) == 0 &&
				    catalog_event_add(cat, x.cl->name, x.source, "snapshot.failed",
						      "error", payload, NULL, &ce) == 0)
					catalog_commit(cat, &ce);
				else
					catalog_rollback(cat, NULL);
			}
			if (err_is_set(&ce))
				log_error(MOD, "unable to record the failure in the catalog: %s", ce.msg);
		}
	}
	if (job_id >= 0) {
		struct err je;
		err_init(&je);
		catalog_job_finish(cat, job_id,
				   rc == 0 ? "ok" : (e->code == ERR_ABORTED ? "aborted" : "failed"),
				   rc ? e : NULL, &je);
	}
	if (ws) {
		for (unsigned i = 0; i < nw; i++) {
			db_close(ws[i].db);
			storage_close(ws[i].st);
		}
		free(ws);
	}
	manifest_free(m);
	db_close(x.ctl);
	storage_close(st);
	log_set_job(NULL);
out_free:
	snap_ctx_release(&x);
	return rc;
}
