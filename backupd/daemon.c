/* The daemon's main loop. The main thread owns the catalog connection, the
 * scheduler state and the config reference; jobs, the lag monitor, the
 * Slack sender, the metrics server and control-socket connections run on
 * their own threads with their own connections, and reach shared state only
 * under d->lock. Signal handlers only set flags. */
#include "daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "buf.h"
#include "catalog.h"
#include "config.h"
#include "control.h"
#include "cutover.h"
#include "drill.h"
#include "jobs.h"
#include "lag.h"
#include "log.h"
#include "mem.h"
#include "metrics.h"
#include "notify.h"
#include "scheduler.h"

#define MOD "daemon"
#define DAEMON_TICK_MS 200

static volatile sig_atomic_t daemon_stop_flag, daemon_reload_flag;

static void daemon_on_stop(int sig) { (void)sig; daemon_stop_flag = 1; }
static void daemon_on_hup(int sig) { (void)sig; daemon_reload_flag = 1; }

struct daemon {
	const char *cfg_path;
	pthread_mutex_t lock;        /* cfg, sched, lag, notify pointers */
	struct cfg_ref *cfg;
	struct catalog *cat;         /* main thread only */
	struct sched sched;
	struct jobs *jobs;
	struct notify *notify;
	struct lag_monitor *lag;
	/* The monitor as its own event thread sees it (set before start,
	 * cleared after stop, so no lock: the sink must not wait on d->lock
	 * while the main thread stops the monitor). */
	struct lag_monitor *volatile sink_lag;
	struct metrics *metrics;
	struct control_server *ctl;
	double started_at;
	int last_digest_yday;
	/* Set while a cutover runs and a little after: replication is being
	 * re-pointed on purpose, so "broken" readings must not trigger a
	 * rebuild. Unix time until which auto-rebuild waits. */
	volatile double quiet_until;
	/* Metrics' own catalog connection, used under metrics_lock. */
	pthread_mutex_t metrics_lock;
	struct catalog *metrics_cat;
};

static double daemon_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* An event into the outbox from the main thread, then wake the sender. */
static void daemon_event(struct daemon *d, const char *cluster, const char *server,
			 const char *kind, const char *severity, json_t *payload)
{
	struct err e;
	char *p = json_dumps(payload, JSON_COMPACT);
	err_init(&e);
	if (catalog_event_add(d->cat, cluster, server, kind, severity, p, NULL, &e) != 0)
		log_error(MOD, "unable to record event %s: %s", kind, e.msg);
	free(p);
	json_decref(payload);
	notify_wake(d->notify);
}

/* ---- lag transitions: written in the monitor's transaction ----------- */

static void daemon_on_lag(void *ctx, const char *cluster, const char *server,
			  enum lag_state from, enum lag_state to, double lag_s,
			  const char *reason)
{
	struct daemon *d = ctx;
	struct catalog *cat;
	const char *kind, *sev;
	struct err e;
	json_t *p;
	char *ps;

	/* The first verdict after start is not news when it is ok. */
	if (from == LAG_UNKNOWN && to == LAG_OK)
		return;
	switch (to) {
	case LAG_OK: kind = "lag.recovered"; sev = "info"; break;
	case LAG_WARN: kind = "lag.warn"; sev = "warn"; break;
	case LAG_CRIT: kind = "lag.crit"; sev = "crit"; break;
	case LAG_BROKEN: kind = "replica.broken"; sev = "crit"; break;
	case LAG_DOWN: kind = "replica.down"; sev = "crit"; break;
	default: return;
	}
	pthread_mutex_lock(&d->lock);
	const struct cfg_cluster *cl = config_find_cluster(cfg_ref_config(d->cfg), cluster);
	double thr = !cl ? 0 : to == LAG_WARN ? cl->lag_warn_s : cl->lag_crit_s;
	pthread_mutex_unlock(&d->lock);
	cat = d->sink_lag ? lag_monitor_catalog(d->sink_lag) : NULL;
	p = json_pack("{s:s, s:s, s:s, s:s, s:o, s:f, s:s}", "cluster", cluster,
		      "server", server, "from", lag_state_name(from),
		      "state", lag_state_name(to),
		      "lag_s", isfinite(lag_s) ? json_real(lag_s) : json_null(),
		      "threshold_s", thr, "reason", reason ? reason : "");
	ps = json_dumps(p, JSON_COMPACT);
	err_init(&e);
	log_warn(MOD, "replica '%s' of '%s': %s -> %s (%s)", server, cluster,
		 lag_state_name(from), lag_state_name(to), reason ? reason : "");
	if (cat && catalog_event_add(cat, cluster, server, kind, sev, ps, NULL, &e) != 0)
		log_error(MOD, "unable to record event %s: %s", kind, e.msg);
	free(ps);
	json_decref(p);
	/* The monitor commits right after this returns; the sender also
	 * polls, so a wake before the commit only costs one poll interval. */
	pthread_mutex_lock(&d->lock);
	notify_wake(d->notify);
	pthread_mutex_unlock(&d->lock);
}

/* ---- metrics ---------------------------------------------------------- */

static int daemon_metrics_catalog(struct daemon *d, struct buf *out, struct err *e)
{
	sqlite3 *db = catalog_sqlite(d->metrics_cat);
	sqlite3_stmt *st = NULL;
	int rc = 0;

	/* Last snapshot per cluster (any status) and the last complete one. */
	if (sqlite3_prepare_v2(db,
			       "SELECT s.cluster, s.status, s.started_at, s.finished_at, s.bytes_raw, s.bytes_stored "
			       "FROM snapshots s WHERE s.started_at = (SELECT MAX(started_at) FROM snapshots t "
			       "WHERE t.cluster = s.cluster AND t.status IN ('complete','failed','aborted'))",
			       -1, &st, NULL) != SQLITE_OK)
		return catalog_error(d->metrics_cat, "unable to read snapshots for metrics", e);
	while (rc == 0 && sqlite3_step(st) == SQLITE_ROW) {
		const char *cl = (const char *)sqlite3_column_text(st, 0);
		const char *status = (const char *)sqlite3_column_text(st, 1);
		double started = sqlite3_column_double(st, 2);
		double finished = sqlite3_column_double(st, 3);
		const char *lb[] = { "cluster", cl, NULL };
		rc = metrics_gauge(out, "backupd_last_snapshot_age_seconds",
				   "Seconds since the last snapshot attempt started", lb,
				   daemon_now() - started, e);
		if (rc == 0)
			rc = metrics_gauge(out, "backupd_last_snapshot_success",
					   "1 if the last snapshot attempt completed", lb,
					   strcmp(status, "complete") == 0, e);
		if (rc == 0 && finished > 0)
			rc = metrics_gauge(out, "backupd_last_snapshot_duration_seconds",
					   "Duration of the last snapshot attempt", lb,
					   finished - started, e);
		if (rc == 0)
			rc = metrics_gauge(out, "backupd_last_snapshot_bytes_stored",
					   "Stored (compressed) bytes of the last snapshot", lb,
					   sqlite3_column_double(st, 5), e);
		if (rc == 0)
			rc = metrics_gauge(out, "backupd_last_snapshot_bytes_raw",
					   "Raw bytes of the last snapshot", lb,
					   sqlite3_column_double(st, 4), e);
	}
	sqlite3_finalize(st);
	if (rc)
		return rc;
	if (sqlite3_prepare_v2(db,
			       "SELECT kind, status, COUNT(*) FROM jobs WHERE status <> 'running' GROUP BY kind, status",
			       -1, &st, NULL) != SQLITE_OK)
		return catalog_error(d->metrics_cat, "unable to read jobs for metrics", e);
	while (rc == 0 && sqlite3_step(st) == SQLITE_ROW) {
		const char *lb[] = { "kind", (const char *)sqlite3_column_text(st, 0),
				     "result", (const char *)sqlite3_column_text(st, 1), NULL };
		rc = metrics_counter(out, "backupd_job_runs_total",
				     "Finished job runs by kind and result", lb,
				     sqlite3_column_double(st, 2), e);
	}
	sqlite3_finalize(st);
	return rc;
}

static int daemon_collect(void *ctx, struct buf *out, struct err *e)
{
	struct daemon *d = ctx;
	struct notify_stats ns;
	int rc = 0;

	pthread_mutex_lock(&d->lock);
	if (d->lag)
		rc = lag_monitor_metrics(d->lag, out, e);
	notify_get_stats(d->notify, &ns);
	json_t *running = jobs_list(d->jobs);
	pthread_mutex_unlock(&d->lock);
	if (rc == 0)
		rc = metrics_gauge(out, "backupd_outbox_pending", "Events waiting for Slack",
				   NULL, (double)ns.pending, e);
	if (rc == 0)
		rc = metrics_counter(out, "backupd_slack_delivery_failures_total",
				     "Slack POSTs that got no 2xx answer", NULL,
				     (double)ns.failed_attempts, e);
	if (rc == 0)
		rc = metrics_counter(out, "backupd_slack_messages_sent_total",
				     "Events delivered to Slack", NULL, (double)ns.sent, e);
	if (rc == 0)
		rc = metrics_gauge(out, "backupd_jobs_running", "Jobs running now", NULL,
				   (double)json_array_size(running), e);
	if (rc == 0)
		rc = metrics_gauge(out, "backupd_up_seconds", "Seconds since the daemon started",
				   NULL, daemon_now() - d->started_at, e);
	json_decref(running);
	pthread_mutex_lock(&d->metrics_lock);
	if (rc == 0 && d->metrics_cat)
		rc = daemon_metrics_catalog(d, out, e);
	if (rc == 0 && d->metrics_cat) {
		pthread_mutex_lock(&d->lock);
		struct cfg_ref *cfg = cfg_ref_get(d->cfg);
		pthread_mutex_unlock(&d->lock);
		rc = drill_metrics(d->metrics_cat, cfg_ref_config(cfg), out, e);
		cfg_ref_put(cfg);
	}
	pthread_mutex_unlock(&d->metrics_lock);
	return rc;
}

/* ---- control socket --------------------------------------------------- */

static json_t *daemon_readings_json(struct daemon *d)
{
	struct lag_reading r[256];
	size_t n = 0;
	json_t *a = json_array();

	pthread_mutex_lock(&d->lock);
	if (d->lag)
		n = lag_monitor_readings(d->lag, r, 256);
	pthread_mutex_unlock(&d->lock);
	for (size_t i = 0; i < n && i < 256; i++)
		json_array_append_new(a, json_pack("{s:s, s:s, s:s, s:b, s:o, s:o, s:b, s:b, s:i, s:s, s:f}",
			"cluster", r[i].cluster, "server", r[i].server,
			"state", lag_state_name(r[i].state), "known", r[i].lag_known,
			"lag_s", isfinite(r[i].lag_s) ? json_real(r[i].lag_s) : json_null(),
			"heartbeat_age_s", r[i].heartbeat_age_s >= 0 ? json_real(r[i].heartbeat_age_s) : json_null(),
			"io_running", r[i].io_running, "sql_running", r[i].sql_running, "last_errno",
			(int)r[i].last_errno, "reason", r[i].reason, "updated_at", r[i].updated_at));
	return a;
}

static json_t *daemon_schedules_json(struct daemon *d)
{
	json_t *a = json_array();
	pthread_mutex_lock(&d->lock);
	for (size_t i = 0; i < sched_count(&d->sched); i++) {
		const struct sched_entry *en = sched_entry_at(&d->sched, i);
		json_array_append_new(a, json_pack("{s:s, s:s, s:s, s:o, s:o}",
			"name", en->name, "cluster", en->cluster, "job", cfg_job_name(en->job),
			"last_fire", en->last_fire == SCHED_NEVER ? json_null() : json_integer(en->last_fire),
			"next_fire", en->next_fire == SCHED_NEVER ? json_null() : json_integer(en->next_fire)));
	}
	pthread_mutex_unlock(&d->lock);
	return a;
}

/* A cutover handed over by backupctl: the daemon owns its job lock, runs it
 * on this connection's thread, and restarts the lag monitor afterwards so
 * the heartbeat follows the new writer. */
static json_t *daemon_cutover(struct daemon *d, json_t *req)
{
	struct cutover_opts o;
	struct cutover_report *rep = xcalloc(1, sizeof(*rep));
	struct catalog *cat = NULL;
	struct err e;
	int64_t job = -1;
	json_t *reply;
	const char *cluster = json_string_value(json_object_get(req, "cluster"));

	err_init(&e);
	memset(&o, 0, sizeof(o));
	o.to = json_string_value(json_object_get(req, "to"));
	o.dry_run = json_is_true(json_object_get(req, "dry_run"));
	o.resume = json_is_true(json_object_get(req, "resume"));
	o.timeout_s = json_number_value(json_object_get(req, "timeout_s"));
	o.max_lag_s = json_number_value(json_object_get(req, "max_lag_s"));
	o.max_trx_s = json_number_value(json_object_get(req, "max_trx_s"));
	o.trx_wait_s = json_number_value(json_object_get(req, "trx_wait_s"));
	o.max_snapshot_age_h = json_number_value(json_object_get(req, "max_snapshot_age_h"));
	o.trigger = "manual";

	pthread_mutex_lock(&d->lock);
	struct cfg_ref *cfg = cfg_ref_get(d->cfg);
	pthread_mutex_unlock(&d->lock);
	const struct cfg_cluster *cl = cluster ? config_find_cluster(cfg_ref_config(cfg), cluster) : NULL;
	if (!o.dry_run)
		d->quiet_until = daemon_now() + 3600.0;   /* until it ends, below */
	if (!cl || !o.to)
		err_set(&e, ERR_USAGE, "cutover needs a configured cluster and --to");
	else if (catalog_open(cfg_ref_config(cfg)->catalog, &cat, &e) == 0 &&
		 (o.dry_run || catalog_job_start(cat, "cutover", cl->name, "manual", &job, &e) == 0)) {
		o.job_id = job;
		cutover_run(cfg_ref_config(cfg), cl, cat, &o, rep, &e);
		if (job >= 0) {
			struct err je;
			err_init(&je);
			catalog_job_finish(cat, job, err_is_set(&e) ? "failed" : "ok",
					   err_is_set(&e) ? &e : NULL, &je);
		}
	}
	reply = err_is_set(&e) ? control_reply_err(&e) : control_reply_ok();
	if (rep->result)
		json_object_set_new(reply, "report", cutover_report_json(rep));
	catalog_close(cat);
	cfg_ref_put(cfg);
	free(rep);
	pthread_mutex_lock(&d->lock);
	notify_wake(d->notify);
	pthread_mutex_unlock(&d->lock);
	if (!o.dry_run)
		daemon_reload_flag = 1;   /* the main thread restarts the monitor */
	/* Give the restarted monitor time to see the new topology. */
	if (!o.dry_run)
		d->quiet_until = daemon_now() + 15.0;
	return reply;
}

static json_t *daemon_handle(void *ctx, json_t *req)
{
	struct daemon *d = ctx;
	const char *verb = json_string_value(json_object_get(req, "verb"));
	struct err e;

	err_init(&e);
	if (!verb) {
		err_set(&e, ERR_USAGE, "control request without a verb");
		return control_reply_err(&e);
	}
	if (strcmp(verb, "ping") == 0)
		return control_reply_ok();
	if (strcmp(verb, "status") == 0 || strcmp(verb, "lag") == 0) {
		json_t *r = control_reply_ok();
		json_object_set_new(r, "pid", json_integer(getpid()));
		json_object_set_new(r, "started_at", json_real(d->started_at));
		json_object_set_new(r, "config", json_string(d->cfg_path));
		json_object_set_new(r, "lag", daemon_readings_json(d));
		json_object_set_new(r, "jobs", jobs_list(d->jobs));
		json_object_set_new(r, "schedules", daemon_schedules_json(d));
		return r;
	}
	if (strcmp(verb, "cutover") == 0)
		return daemon_cutover(d, req);
	struct job_req jr;
	memset(&jr, 0, sizeof(jr));
	jr.trigger = "manual";
	if (strcmp(verb, "snapshot") == 0)
		jr.kind = CFG_JOB_SNAPSHOT;
	else if (strcmp(verb, "verify") == 0)
		jr.kind = CFG_JOB_VERIFY;
	else if (strcmp(verb, "prune") == 0)
		jr.kind = CFG_JOB_PRUNE;
	else if (strcmp(verb, "drill") == 0)
		jr.kind = CFG_JOB_DRILL;
	else {
		err_set(&e, ERR_USAGE, "unknown control verb '%s'", verb);
		return control_reply_err(&e);
	}
	const char *s;
	if ((s = json_string_value(json_object_get(req, "cluster"))))
		str_copy(jr.cluster, sizeof(jr.cluster), s);
	if ((s = json_string_value(json_object_get(req, "from"))))
		str_copy(jr.from, sizeof(jr.from), s);
	if ((s = json_string_value(json_object_get(req, "id"))))
		str_copy(jr.snapshot_id, sizeof(jr.snapshot_id), s);
	jr.dry_run = json_is_true(json_object_get(req, "dry_run"));

	pthread_mutex_lock(&d->lock);
	struct cfg_ref *cfg = cfg_ref_get(d->cfg);
	pthread_mutex_unlock(&d->lock);
	uint64_t id;
	json_t *result = NULL, *reply;
	if (!config_find_cluster(cfg_ref_config(cfg), jr.cluster)) {
		err_set(&e, ERR_NOT_FOUND, "no cluster '%s' in the daemon's config", jr.cluster);
	} else {
		/* A job by hand takes the same (cluster, job) slot a schedule
		 * would, so the one-job-per-kind rule lives in the scheduler. */
		/* Lock order everywhere: d->lock, then the runner's lock. */
		pthread_mutex_lock(&d->lock);
		int brc = jr.dry_run ? 0 : sched_job_begin(&d->sched, jr.cluster, jr.kind, time(NULL), &e);
		if (brc == 0)
			brc = jobs_start(d->jobs, cfg, &jr, &id, &e);
		if (brc != 0 && e.code != ERR_BUSY)
			sched_job_end(&d->sched, jr.cluster, jr.kind);
		pthread_mutex_unlock(&d->lock);
		if (brc == 0) {
			jobs_wait(d->jobs, id, &result, &e);
			if (!jr.dry_run) {
				pthread_mutex_lock(&d->lock);
				sched_job_end(&d->sched, jr.cluster, jr.kind);
				pthread_mutex_unlock(&d->lock);
			}
		}
	}
	cfg_ref_put(cfg);
	if (err_is_set(&e)) {
		reply = control_reply_err(&e);
		if (result)
			json_object_set(reply, "result", result);
	} else {
		reply = control_reply_ok();
		json_object_set_new(reply, "result", result ? json_incref(result) : json_null());
	}
	json_decref(result);
	return reply;
}

/* ---- schedules --------------------------------------------------------- */

static time_t daemon_last_fire(struct catalog *cat, const char *name)
{
	sqlite3_stmt *st = NULL;
	time_t t = SCHED_NEVER;
	if (sqlite3_prepare_v2(catalog_sqlite(cat),
			       "SELECT last_fire_at FROM schedule_state WHERE name = ?", -1, &st,
			       NULL) != SQLITE_OK)
		return t;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
		t = (time_t)sqlite3_column_double(st, 0);
	sqlite3_finalize(st);
	return t;
}

static void daemon_record_fire(struct daemon *d, const struct sched_decision *dc,
			       const char *outcome, const char *note)
{
	sqlite3_stmt *st = NULL;
	sqlite3 *db = catalog_sqlite(d->cat);
	double now = daemon_now();

	if (sqlite3_prepare_v2(db,
			       "INSERT INTO schedule_state (name, cluster, job_kind, last_fire_at, next_fire_at, updated_at) "
			       "VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(name) DO UPDATE SET "
			       "cluster = ?2, job_kind = ?3, last_fire_at = ?4, next_fire_at = ?5, updated_at = ?6",
			       -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_text(st, 1, dc->schedule, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(st, 2, dc->cluster, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(st, 3, cfg_job_name(dc->job), -1, SQLITE_STATIC);
		sqlite3_bind_double(st, 4, (double)dc->scheduled);
		if (dc->next == SCHED_NEVER)
			sqlite3_bind_null(st, 5);
		else
			sqlite3_bind_double(st, 5, (double)dc->next);
		sqlite3_bind_double(st, 6, now);
		if (sqlite3_step(st) != SQLITE_DONE)
			log_warn(MOD, "unable to store schedule state: %s", sqlite3_errmsg(db));
	}
	sqlite3_finalize(st);
	if (sqlite3_prepare_v2(db,
			       "INSERT OR IGNORE INTO schedule_runs (schedule, scheduled_for, decided_at, outcome, note) "
			       "VALUES (?, ?, ?, ?, ?)", -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_text(st, 1, dc->schedule, -1, SQLITE_TRANSIENT);
		sqlite3_bind_double(st, 2, (double)dc->scheduled);
		sqlite3_bind_double(st, 3, now);
		sqlite3_bind_text(st, 4, outcome, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 5, note, -1, SQLITE_TRANSIENT);
		sqlite3_step(st);
	}
	sqlite3_finalize(st);
}

static int daemon_load_schedules(struct daemon *d, const struct config *cfg,
				 bool reload, struct err *e)
{
	time_t now = time(NULL);
	if (reload)
		return sched_reload(&d->sched, cfg->schedules, cfg->n_schedules, now, e);
	for (size_t i = 0; i < cfg->n_schedules; i++) {
		int rc = sched_add(&d->sched, &cfg->schedules[i],
				   daemon_last_fire(d->cat, cfg->schedules[i].name), now, e);
		if (rc)
			return rc;
	}
	return 0;
}

static void daemon_tick_schedules(struct daemon *d)
{
	struct sched_decision dec[64];
	time_t now = time(NULL);
	size_t n;

	/* Slots of jobs that ended are freed first, so a finished run never
	 * makes the next one look like an overlap. */
	pthread_mutex_lock(&d->lock);
	for (size_t i = 0; i < d->sched.n_slots;) {
		struct sched_slot *sl = &d->sched.slots[i];
		if (!jobs_is_running(d->jobs, sl->job, sl->cluster)) {
			sched_job_end(&d->sched, sl->cluster, sl->job);
			continue;
		}
		i++;
	}
	n = sched_due(&d->sched, now, dec, 64);
	pthread_mutex_unlock(&d->lock);

	for (size_t i = 0; i < n; i++) {
		struct sched_decision *dc = &dec[i];
		struct err e;
		err_init(&e);
		if (dc->action == SCHED_SKIP) {
			log_warn(MOD, "schedule '%s': %s", dc->schedule, dc->msg);
			daemon_record_fire(d, dc, dc->reason == SCHED_OVERLAP ? "skipped" : "missed", dc->msg);
			daemon_event(d, dc->cluster, NULL, "job.skipped", "warn",
				     json_pack("{s:s, s:s, s:s, s:s}", "schedule", dc->schedule,
					       "job", cfg_job_name(dc->job), "reason",
					       sched_reason_name(dc->reason), "message", dc->msg));
			continue;
		}
		struct job_req jr;
		uint64_t id;
		memset(&jr, 0, sizeof(jr));
		jr.kind = dc->job;
		jr.trigger = "schedule";
		str_copy(jr.cluster, sizeof(jr.cluster), dc->cluster);
		str_copy(jr.schedule, sizeof(jr.schedule), dc->schedule);
		/* sched_due marked the (cluster, job) slot busy already. */
		pthread_mutex_lock(&d->lock);
		struct cfg_ref *cfg = cfg_ref_get(d->cfg);
		pthread_mutex_unlock(&d->lock);
		int rc = jobs_start(d->jobs, cfg, &jr, &id, &e);
		cfg_ref_put(cfg);
		daemon_record_fire(d, dc, dc->reason == SCHED_MISSED_RUN ? "catchup" : "fired",
				   rc ? e.msg : dc->msg);
		if (rc) {
			log_error(MOD, "schedule '%s': unable to start: %s", dc->schedule, e.msg);
			pthread_mutex_lock(&d->lock);
			sched_job_end(&d->sched, dc->cluster, dc->job);
			pthread_mutex_unlock(&d->lock);
		}
	}
}

/* ---- auto-rebuild ------------------------------------------------------ */

/* Level-triggered: every few seconds, each replica the lag monitor sees as
 * broken (also one that came back empty: it has no replication) in a
 * `rebuild = auto` cluster is rebuilt, at most once per rebuild_interval_s
 * counting the rebuilds table (so a restart does not reset the budget),
 * never the current writer, and not while a cutover re-points replication. */
static void daemon_tick_rebuilds(struct daemon *d)
{
	struct lag_reading r[64];
	size_t n = 0;

	if (daemon_now() < d->quiet_until)
		return;
	pthread_mutex_lock(&d->lock);
	if (d->lag)
		n = lag_monitor_readings(d->lag, r, 64);
	struct cfg_ref *cfg = cfg_ref_get(d->cfg);
	pthread_mutex_unlock(&d->lock);
	for (size_t i = 0; i < n && i < 64; i++) {
		const struct cfg_cluster *cl = config_find_cluster(cfg_ref_config(cfg), r[i].cluster);
		struct cfg_addr cur, me;
		struct err e;
		double last = 0;
		sqlite3_stmt *st = NULL;

		if (!cl || cl->rebuild != CFG_REBUILD_AUTO || r[i].state != LAG_BROKEN ||
		    jobs_is_running(d->jobs, JOB_REBUILD, cl->name))
			continue;
		err_init(&e);
		if (cutover_effective_primary(cl, d->cat, &cur, NULL, &e) == 0 &&
		    cfg_addr_parse(r[i].server, &me, &e) == 0 && cfg_addr_equal(&cur, &me))
			continue;
		if (sqlite3_prepare_v2(catalog_sqlite(d->cat),
				       "SELECT COALESCE(MAX(started_at), 0) FROM rebuilds WHERE cluster = ? AND server = ?",
				       -1, &st, NULL) == SQLITE_OK) {
			sqlite3_bind_text(st, 1, cl->name, -1, SQLITE_TRANSIENT);
			sqlite3_bind_text(st, 2, r[i].server, -1, SQLITE_TRANSIENT);
			if (sqlite3_step(st) == SQLITE_ROW)
				last = sqlite3_column_double(st, 0);
		}
		sqlite3_finalize(st);
		if (last > 0 && daemon_now() - last < (double)cl->rebuild_interval_s)
			continue;   /* reported once when the budget ran out, below */

		struct job_req jr;
		uint64_t id;
		memset(&jr, 0, sizeof(jr));
		jr.kind = JOB_REBUILD;
		jr.trigger = "daemon";
		str_copy(jr.cluster, sizeof(jr.cluster), cl->name);
		str_copy(jr.server, sizeof(jr.server), r[i].server);
		log_warn(MOD, "replica '%s' of '%s' is broken (%s) and rebuild = auto: rebuilding it",
			 r[i].server, cl->name, r[i].reason);
		if (jobs_start(d->jobs, cfg, &jr, &id, &e) != 0)
			log_error(MOD, "unable to start the rebuild of '%s': %s", r[i].server, e.msg);
	}
	cfg_ref_put(cfg);
}

/* ---- daily digest ------------------------------------------------------ */

static void daemon_digest(struct daemon *d, const struct config *cfg)
{
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	int minute = tm.tm_hour * 60 + tm.tm_min;
	if (minute < cfg->digest_time_min || tm.tm_yday == d->last_digest_yday)
		return;
	if (d->last_digest_yday < 0) {
		/* Started after today's digest time: the first is tomorrow. */
		d->last_digest_yday = tm.tm_yday;
		return;
	}
	d->last_digest_yday = tm.tm_yday;
	sqlite3 *db = catalog_sqlite(d->cat);
	double since = daemon_now() - 86400.0;
	for (size_t c = 0; c < cfg->n_clusters; c++) {
		const char *cl = cfg->clusters[c].name;
		sqlite3_stmt *st = NULL;
		json_int_t snaps = 0, failed = 0;
		double bytes = 0, worst_lag = 0;
		if (sqlite3_prepare_v2(db,
				       "SELECT SUM(status = 'complete'), SUM(status IN ('failed','aborted')), "
				       "COALESCE(SUM(CASE WHEN status = 'complete' THEN bytes_stored END), 0) "
				       "FROM snapshots WHERE cluster = ? AND started_at >= ?", -1, &st, NULL) == SQLITE_OK) {
			sqlite3_bind_text(st, 1, cl, -1, SQLITE_TRANSIENT);
			sqlite3_bind_double(st, 2, since);
			if (sqlite3_step(st) == SQLITE_ROW) {
				snaps = sqlite3_column_int64(st, 0);
				failed = sqlite3_column_int64(st, 1);
				bytes = sqlite3_column_double(st, 2);
			}
		}
		sqlite3_finalize(st);
		if (sqlite3_prepare_v2(db, "SELECT COALESCE(MAX(lag_s), 0) FROM lag_samples WHERE cluster = ? AND ts >= ?",
				       -1, &st, NULL) == SQLITE_OK) {
			sqlite3_bind_text(st, 1, cl, -1, SQLITE_TRANSIENT);
			sqlite3_bind_double(st, 2, since);
			if (sqlite3_step(st) == SQLITE_ROW)
				worst_lag = sqlite3_column_double(st, 0);
		}
		sqlite3_finalize(st);
		json_int_t job_fail = 0;
		if (sqlite3_prepare_v2(db, "SELECT COUNT(*) FROM jobs WHERE cluster = ? AND status = 'failed' AND started_at >= ?",
				       -1, &st, NULL) == SQLITE_OK) {
			sqlite3_bind_text(st, 1, cl, -1, SQLITE_TRANSIENT);
			sqlite3_bind_double(st, 2, since);
			if (sqlite3_step(st) == SQLITE_ROW)
				job_fail = sqlite3_column_int64(st, 0);
		}
		sqlite3_finalize(st);
		json_t *next = json_array();
		pthread_mutex_lock(&d->lock);
		for (size_t i = 0; i < sched_count(&d->sched); i++) {
			const struct sched_entry *en = sched_entry_at(&d->sched, i);
			if (strcmp(en->cluster, cl) == 0 && en->next_fire != SCHED_NEVER)
				json_array_append_new(next, json_pack("{s:s, s:s, s:I}", "schedule", en->name,
								      "job", cfg_job_name(en->job),
								      "at", (json_int_t)en->next_fire));
		}
		pthread_mutex_unlock(&d->lock);
		daemon_event(d, cl, NULL, "digest.daily", "info",
			     json_pack("{s:I, s:I, s:f, s:f, s:I, s:o}", "snapshots", snaps,
				       "snapshots_failed", failed, "bytes_stored", bytes,
				       "worst_lag_s", worst_lag, "jobs_failed", job_fail,
				       "next_runs", next));
	}
}

/* ---- start, reload, stop ---------------------------------------------- */

static int daemon_start_lag(struct daemon *d, const struct config *cfg, struct err *e)
{
	struct lag_event_sink sink = { .on_transition = daemon_on_lag, .ctx = d };
	struct lag_monitor *m = NULL;
	int rc = lag_monitor_start(cfg, cfg->catalog, &sink, LAG_INTERVAL_DEFAULT_MS, &m, e);
	if (rc == 0) {
		d->sink_lag = m;
		pthread_mutex_lock(&d->lock);
		d->lag = m;
		pthread_mutex_unlock(&d->lock);
	}
	return rc;
}

/* Hides the monitor from scrapes and status first, then stops it; its event
 * thread keeps reaching the outbox through d->sink_lag while it drains. */
static void daemon_stop_lag(struct daemon *d)
{
	pthread_mutex_lock(&d->lock);
	struct lag_monitor *m = d->lag;
	d->lag = NULL;
	pthread_mutex_unlock(&d->lock);
	lag_monitor_stop(m);
	d->sink_lag = NULL;
}

static void daemon_reload(struct daemon *d)
{
	struct config *ncfg = NULL;
	struct err e;

	err_init(&e);
	log_info(MOD, "SIGHUP: reloading '%s'", d->cfg_path);
	if (config_load(d->cfg_path, &ncfg, &e) != 0) {
		log_error(MOD, "config reload rejected, the running config stays: %s", e.msg);
		daemon_event(d, NULL, NULL, "config.reload_failed", "error",
			     json_pack("{s:s, s:s}", "config", d->cfg_path, "error", e.msg));
		return;
	}
	if (strcmp(ncfg->catalog, cfg_ref_config(d->cfg)->catalog) != 0) {
		log_error(MOD, "config reload rejected: 'catalog' cannot change without a restart");
		daemon_event(d, NULL, NULL, "config.reload_failed", "error",
			     json_pack("{s:s, s:s}", "config", d->cfg_path, "error",
				       "'catalog' cannot change without a restart"));
		config_free(ncfg);
		return;
	}
	struct cfg_ref *nref = cfg_ref_new(ncfg);
	daemon_stop_lag(d);
	pthread_mutex_lock(&d->lock);
	struct cfg_ref *old = d->cfg;
	d->cfg = nref;
	int rc = daemon_load_schedules(d, ncfg, true, &e);
	pthread_mutex_unlock(&d->lock);
	if (rc)
		log_error(MOD, "schedules after reload: %s", e.msg);
	err_init(&e);
	if (daemon_start_lag(d, ncfg, &e) != 0)
		log_error(MOD, "lag monitor after reload: %s", e.msg);
	cfg_ref_put(old);
	log_info(MOD, "config reloaded: %zu clusters, %zu schedules", ncfg->n_clusters,
		 ncfg->n_schedules);
}

static int daemon_write_pid(const char *path, struct err *e)
{
	char tmp[4200], line[32];
	int fd, n;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return err_set(e, ERR_CONFIG, "pid file path '%s' is too long", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return err_set_errno(e, ERR_IO, errno, "unable to write pid file '%s'", path);
	n = snprintf(line, sizeof(line), "%ld\n", (long)getpid());
	if (write(fd, line, (size_t)n) != n || close(fd) != 0 || rename(tmp, path) != 0) {
		unlink(tmp);
		return err_set_errno(e, ERR_IO, errno, "unable to write pid file '%s'", path);
	}
	return 0;
}

int daemon_run(const char *config_path, const char *pid_file, struct err *e)
{
	struct daemon d;
	struct config *cfg = NULL;
	struct sigaction sa;
	int rc;

	memset(&d, 0, sizeof(d));
	pthread_mutex_init(&d.lock, NULL);
	pthread_mutex_init(&d.metrics_lock, NULL);
	d.cfg_path = config_path;
	d.started_at = daemon_now();
	d.last_digest_yday = -1;
	sched_init(&d.sched);

	rc = config_load(config_path, &cfg, e);
	if (rc)
		goto out;
	log_setup(cfg->log_level, cfg->log_format);
	d.cfg = cfg_ref_new(cfg);
	if (!pid_file)
		pid_file = cfg->pid_file;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = daemon_on_stop;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = daemon_on_hup;
	sigaction(SIGHUP, &sa, NULL);

	rc = catalog_open(cfg->catalog, &d.cat, e);
	if (rc == 0)
		rc = catalog_job_reap(d.cat, NULL, e);
	if (rc == 0)
		rc = catalog_open(cfg->catalog, &d.metrics_cat, e);
	if (rc == 0 && pid_file)
		rc = daemon_write_pid(pid_file, e);
	if (rc == 0)
		rc = daemon_load_schedules(&d, cfg, false, e);
	d.jobs = jobs_new();
	if (rc == 0 && cfg->slack_webhook) {
		/* Job threads and backupctl add events without a wake: a 1 s
		 * outbox poll bounds their delay. */
		struct notify_opts no = { .poll_ms = 1000 };
		rc = notify_start(cfg->catalog, cfg->slack_webhook, &no, &d.notify, e);
	}
	if (rc == 0)
		rc = daemon_start_lag(&d, cfg, e);
	if (rc == 0 && cfg->metrics_listen)
		rc = metrics_start(cfg->metrics_listen, daemon_collect, &d, &d.metrics, e);
	if (rc == 0)
		rc = control_server_start(cfg->control_socket, daemon_handle, &d, &d.ctl, e);
	if (rc)
		goto stop;
	log_info(MOD, "backupd %ld running: %zu clusters, %zu schedules, control socket '%s'%s%s",
		 (long)getpid(), cfg->n_clusters, cfg->n_schedules, cfg->control_socket,
		 cfg->metrics_listen ? ", metrics on " : "", cfg->metrics_listen ? cfg->metrics_listen : "");

	double last_overdue_check = 0, last_rebuild_check = 0;
	while (!daemon_stop_flag) {
		struct timespec ts = { 0, DAEMON_TICK_MS * 1000000L };
		if (daemon_reload_flag) {
			daemon_reload_flag = 0;
			daemon_reload(&d);
		}
		daemon_tick_schedules(&d);
		if (daemon_now() - last_rebuild_check >= 2.0) {
			last_rebuild_check = daemon_now();
			daemon_tick_rebuilds(&d);
		}
		jobs_reap(d.jobs);
		daemon_digest(&d, cfg_ref_config(d.cfg));
		if (daemon_now() - last_overdue_check >= 60.0) {
			struct err oe;
			int alerts = 0;
			err_init(&oe);
			last_overdue_check = daemon_now();
			if (drill_check_overdue(cfg_ref_config(d.cfg), d.cat, 0, &alerts, &oe) != 0)
				log_warn(MOD, "drill overdue check: %s", oe.msg);
			else if (alerts)
				notify_wake(d.notify);
		}
		nanosleep(&ts, NULL);
	}
	log_info(MOD, "stopping: aborting running jobs");

stop:
	if (d.jobs)
		jobs_abort_all(d.jobs);
	control_server_stop(d.ctl);
	jobs_free(d.jobs);
	metrics_stop(d.metrics);
	daemon_stop_lag(&d);
	if (d.notify)
		notify_stop(d.notify, 2000);
	if (pid_file && rc == 0)
		unlink(pid_file);
out:
	sched_release(&d.sched);
	catalog_close(d.metrics_cat);
	catalog_close(d.cat);
	cfg_ref_put(d.cfg);
	pthread_mutex_destroy(&d.lock);
	pthread_mutex_destroy(&d.metrics_lock);
	return rc;
}
