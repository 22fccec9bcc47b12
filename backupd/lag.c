/* The lag monitor (see lag.h for the lag rules, states and hysteresis):
 * heartbeat writer per cluster, reader per replica, event thread owning the
 * catalog; plus the pure state machine, per-second aggregation and the
 * catalog history, and a one-shot measurement for backupctl.
 * Threading: every mutable field shared between threads is guarded by
 * lag_monitor.mu; each thread owns its own server connection; only the event
 * thread touches the catalog and calls the sink. */
#include "lag.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cutover.h"
#include "db.h"
#include "log.h"
#include "mem.h"
#include "metrics.h"
#include "probe.h"

#define MOD "lag"
#define LAG_CONNECT_TIMEOUT_MAX_S 5
#define LAG_IO_TIMEOUT_MAX_S 10
#define LAG_BACKOFF_MIN_S 0.5
#define LAG_BACKOFF_MAX_S 5.0
#define LAG_ROLLUP_EVERY_S 60.0
#define LAG_SEEN_EVERY_S 60.0         /* catalog servers refresh */
#define LAG_TRANSITIONS_MAX 1024
#define LAG_SAMPLES_MAX 8192
#define LAG_MEASURE_WAIT_S 1.0        /* lag_measure_once: wait for the heartbeat */
#define LAG_LIVE_WRITER_S 2.0         /* a heartbeat this fresh has a writer */
#define LAG_TZ_INIT "SET SESSION time_zone = '+00:00'"

/* ---- names ---------------------------------------------------------------- */

static const char *const state_names[] = {
	[LAG_OK] = "ok", [LAG_WARN] = "warn", [LAG_CRIT] = "crit",
	[LAG_BROKEN] = "broken", [LAG_DOWN] = "down", [LAG_UNKNOWN] = "unknown",
};

const char *lag_state_name(enum lag_state s)
{
	return (unsigned)s <= LAG_UNKNOWN ? state_names[s] : "unknown";
}

bool lag_state_parse(const char *s, enum lag_state *out)
{
	for (unsigned i = 0; s && i <= LAG_UNKNOWN; i++)
		if (strcmp(s, state_names[i]) == 0) {
			*out = (enum lag_state)i;
			return true;
		}
	return false;
}

/* -1 for "no verdict yet", then from healthy to worst. */
static int state_rank(enum lag_state s)
{
	return s == LAG_UNKNOWN ? -1 : (int)s;
}

static bool is_lag_level(enum lag_state s)
{
	return s == LAG_OK || s == LAG_WARN || s == LAG_CRIT;
}

static double now_real(void)
{
	return catalog_now();
}

static double now_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- policy, verdict, state machine ------------------------------------- */

void lag_policy_init(struct lag_policy *p, double warn_s, double crit_s)
{
	p->warn_s = warn_s;
	p->crit_s = crit_s;
	p->recover_ratio = 0.8;
	p->recover_readings = 2;
	p->down_readings = 2;
}

void lag_evaluate(const struct lag_observation *o, struct lag_verdict *v)
{
	bool run;

	memset(v, 0, sizeof(*v));
	v->lag_s = NAN;
	if (o->have_age) {
		v->have_lag = true;
		v->lag_s = o->age_s > 0 ? o->age_s : 0;
	}
	if (!o->reachable) {
		v->kind = LAG_V_DOWN;
		snprintf(v->reason, sizeof(v->reason), "unreachable: %s",
			 o->conn_error ? o->conn_error : "no connection");
		return;
	}
	if (!o->status_read) {
		v->kind = v->have_lag ? LAG_V_LAG : LAG_V_NONE;
		snprintf(v->reason, sizeof(v->reason),
			 "replica status unreadable: %s",
			 o->status_error ? o->status_error : "unknown error");
		return;
	}
	if (!o->configured) {
		v->kind = LAG_V_BROKEN;
		snprintf(v->reason, sizeof(v->reason),
			 "replication is not configured");
		return;
	}
	if (!o->sql_running && o->last_sql_errno) {
		v->kind = LAG_V_BROKEN;
		v->last_errno = o->last_sql_errno;
		snprintf(v->reason, sizeof(v->reason),
			 "sql thread stopped by error %u: %s", o->last_sql_errno,
			 o->last_sql_error ? o->last_sql_error : "");
		return;
	}
	if (!o->io_running && !o->io_connecting && o->last_io_errno) {
		v->kind = LAG_V_BROKEN;
		v->last_errno = o->last_io_errno;
		snprintf(v->reason, sizeof(v->reason),
			 "io thread stopped by error %u: %s", o->last_io_errno,
			 o->last_io_error ? o->last_io_error : "");
		return;
	}

	run = o->io_running && o->sql_running;
	v->last_errno = o->last_sql_errno ? o->last_sql_errno : o->last_io_errno;
	if (!v->have_lag) {
		if (run && o->seconds_behind >= 0) {
			v->have_lag = true;
			v->lag_s = (double)o->seconds_behind;
		} else if (!run && o->stopped_for_s >= 0) {
			v->have_lag = true;
			v->lag_s = o->stopped_for_s;
		}
	}
	v->kind = v->have_lag ? LAG_V_LAG : LAG_V_NONE;
	/* A real lag needs running threads and a heartbeat that is both read
	 * now and still being written (or, without one, the server's own
	 * Seconds_Behind_Master); anything else is a growing lower bound. */
	v->lag_known = run && v->have_lag &&
		       (o->have_age ? o->heartbeat_fresh && o->writer_ok
				    : o->seconds_behind >= 0);

	if (!o->sql_running)
		snprintf(v->reason, sizeof(v->reason), "sql thread stopped");
	else if (o->io_connecting && o->last_io_errno)
		snprintf(v->reason, sizeof(v->reason),
			 "io thread reconnecting after error %u: %s",
			 o->last_io_errno, o->last_io_error ? o->last_io_error : "");
	else if (o->io_connecting)
		snprintf(v->reason, sizeof(v->reason), "io thread connecting");
	else if (!o->io_running)
		snprintf(v->reason, sizeof(v->reason), "io thread stopped");
	else if (o->have_age && !o->writer_ok)
		snprintf(v->reason, sizeof(v->reason),
			 "heartbeat not advancing: %s",
			 o->writer_error ? o->writer_error : "writer failing");
	else if (o->have_age && !o->heartbeat_fresh)
		snprintf(v->reason, sizeof(v->reason),
			 "heartbeat not current: %s",
			 o->heartbeat_error ? o->heartbeat_error : "unknown error");
	else if (!o->have_age && v->have_lag)
		snprintf(v->reason, sizeof(v->reason),
			 "no heartbeat (%s): using Seconds_Behind_Master",
			 o->heartbeat_error ? o->heartbeat_error : "none yet");
	else if (!v->have_lag)
		snprintf(v->reason, sizeof(v->reason),
			 "no heartbeat (%s) and no Seconds_Behind_Master",
			 o->heartbeat_error ? o->heartbeat_error : "none yet");
}

static enum lag_state lag_level(double lag_s, double warn_s, double crit_s)
{
	if (lag_s >= crit_s)
		return LAG_CRIT;
	if (lag_s >= warn_s)
		return LAG_WARN;
	return LAG_OK;
}

void lag_sm_init(struct lag_sm *sm, enum lag_state state, double since)
{
	sm->state = state;
	sm->since = since;
	sm->pending = LAG_UNKNOWN;
	sm->pending_n = 0;
	sm->pending_since = 0;
}

enum lag_state lag_sm_target(const struct lag_sm *sm,
			     const struct lag_policy *p,
			     const struct lag_verdict *v)
{
	enum lag_state entry, exit_level;

	switch (v->kind) {
	case LAG_V_DOWN:
		return LAG_DOWN;
	case LAG_V_BROKEN:
		return LAG_BROKEN;
	case LAG_V_NONE:
		return sm->state;
	case LAG_V_LAG:
		break;
	}
	entry = lag_level(v->lag_s, p->warn_s, p->crit_s);
	if (!is_lag_level(sm->state) || entry > sm->state)
		return entry;
	exit_level = lag_level(v->lag_s, p->warn_s * p->recover_ratio,
			       p->crit_s * p->recover_ratio);
	return exit_level < sm->state ? exit_level : sm->state;
}

static void sm_clear_pending(struct lag_sm *sm)
{
	sm->pending = LAG_UNKNOWN;
	sm->pending_n = 0;
	sm->pending_since = 0;
}

bool lag_sm_step(struct lag_sm *sm, const struct lag_policy *p,
		 const struct lag_verdict *v, double now,
		 enum lag_state *from)
{
	enum lag_state target = lag_sm_target(sm, p, v);
	int cur = state_rank(sm->state);

	if (target == sm->state) {
		sm_clear_pending(sm);
		return false;
	}
	if (state_rank(target) > cur) {
		/* Worse: at once, except down, which one lost connection or
		 * timeout must not announce. */
		if (target == LAG_DOWN && p->down_readings > 1) {
			if (sm->pending == LAG_DOWN) {
				sm->pending_n++;
			} else {
				sm->pending = LAG_DOWN;
				sm->pending_n = 1;
				sm->pending_since = now;
			}
			if (sm->pending_n < p->down_readings)
				return false;
		}
	} else {
		/* Better: only after recover_readings better readings in a
		 * row, and then to where the last of them points (a lag
		 * falling through warn on its way to 0 is one recovery, not
		 * two messages). */
		if (sm->pending != LAG_UNKNOWN && state_rank(sm->pending) < cur) {
			sm->pending_n++;
			sm->pending = target;
		} else {
			sm->pending = target;
			sm->pending_n = 1;
			sm->pending_since = now;
		}
		if (sm->pending_n < p->recover_readings)
			return false;
		target = sm->pending;
	}
	*from = sm->state;
	sm->state = target;
	sm->since = now;
	sm_clear_pending(sm);
	return true;
}

/* ---- per-second aggregation ----------------------------------------------- */

void lag_agg_init(struct lag_agg *a)
{
	memset(a, 0, sizeof(*a));
	a->worst = LAG_UNKNOWN;
}

static void agg_close(struct lag_agg *a, struct lag_sample *done)
{
	done->ts = a->second;
	done->resolution_s = 1;
	done->have_lag = a->n_lag > 0;
	done->lag_s = a->n_lag ? a->sum / a->n_lag : NAN;
	done->lag_max_s = a->n_lag ? a->max : NAN;
	done->state = a->worst;
	lag_agg_init(a);
}

bool lag_agg_add(struct lag_agg *a, double now, bool have_lag, double lag_s,
		 enum lag_state st, struct lag_sample *done)
{
	double sec = floor(now);
	bool closed = false;

	if (a->n && sec > a->second) {
		agg_close(a, done);
		closed = true;
	}
	/* A clock stepping back lands in the open second. */
	if (!a->n)
		a->second = sec;
	a->n++;
	if (have_lag && isfinite(lag_s)) {
		a->max = a->n_lag ? fmax(a->max, lag_s) : lag_s;
		a->sum += lag_s;
		a->n_lag++;
	}
	if (state_rank(st) > state_rank(a->worst))
		a->worst = st;
	return closed;
}

bool lag_agg_flush(struct lag_agg *a, double now, struct lag_sample *done)
{
	if (!a->n || floor(now) <= a->second)
		return false;
	agg_close(a, done);
	return true;
}

/* ---- catalog -------------------------------------------------------------- */

const char *lag_state_db_name(enum lag_state s)
{
	switch (s) {
	case LAG_OK: return "ok";
	case LAG_WARN: return "warn";
	case LAG_CRIT: return "crit";
	case LAG_BROKEN: return "broken";
	default: return "unknown";
	}
}

static enum lag_state state_from_db(const unsigned char *s)
{
	enum lag_state st;

	if (!s || !lag_state_parse((const char *)s, &st) || st == LAG_UNKNOWN)
		return LAG_DOWN;
	return st;
}

static int prepare(struct catalog *c, const char *sql, sqlite3_stmt **st,
		   const char *op, struct err *e)
{
	if (sqlite3_prepare_v2(catalog_sqlite(c), sql, -1, st, NULL) != SQLITE_OK)
		return catalog_error(c, op, e);
	return 0;
}

static void bind_lag(sqlite3_stmt *st, int idx, bool have, double v)
{
	if (have && isfinite(v))
		sqlite3_bind_double(st, idx, v);
	else
		sqlite3_bind_null(st, idx);
}

int lag_history_insert(struct catalog *c, const struct lag_sample *s,
		       size_t n, struct err *e)
{
	static const char sql[] =
		"INSERT INTO lag_samples (cluster, server, ts, resolution_s, "
		"lag_s, lag_max_s, state) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
	sqlite3_stmt *st = NULL;
	bool own = !catalog_in_transaction(c);
	int rc;

	if (n == 0)
		return 0;
	if (own && (rc = catalog_begin(c, e)))
		return rc;
	if ((rc = prepare(c, sql, &st, "unable to insert lag sample", e)))
		goto out;
	for (size_t i = 0; i < n; i++) {
		const char *dbst = lag_state_db_name(s[i].state);
		bool have = s[i].have_lag && isfinite(s[i].lag_s);

		/* The schema allows a missing figure only for broken and
		 * unknown: a second without any figure has nothing to say. */
		if (!have && strcmp(dbst, "broken") != 0 &&
		    strcmp(dbst, "unknown") != 0)
			continue;
		sqlite3_reset(st);
		sqlite3_bind_text(st, 1, s[i].cluster, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, s[i].server, -1, SQLITE_STATIC);
		sqlite3_bind_double(st, 3, s[i].ts);
		sqlite3_bind_int(st, 4, s[i].resolution_s == 60 ? 60 : 1);
		bind_lag(st, 5, have, s[i].lag_s);
		bind_lag(st, 6, have, s[i].lag_max_s);
		sqlite3_bind_text(st, 7, dbst, -1, SQLITE_STATIC);
		if (sqlite3_step(st) != SQLITE_DONE) {
			rc = catalog_error(c, "unable to insert lag sample", e);
			goto out;
		}
	}
out:
	sqlite3_finalize(st);
	if (own) {
		if (rc)
			catalog_rollback(c, NULL);
		else
			rc = catalog_commit(c, e);
	}
	return rc;
}

#define RANK_SQL \
	"CASE state WHEN 'ok' THEN 0 WHEN 'warn' THEN 1 WHEN 'crit' THEN 2 " \
	"WHEN 'broken' THEN 3 ELSE 4 END"

int lag_history_rollup(struct catalog *c, double now, struct err *e)
{
	static const char *const sql[] = {
		"INSERT INTO lag_samples (cluster, server, ts, resolution_s, "
		"lag_s, lag_max_s, state) "
		"SELECT cluster, server, CAST(ts / 60 AS INTEGER) * 60.0, 60, "
		"AVG(lag_s), MAX(COALESCE(lag_max_s, lag_s)), "
		"CASE MAX(" RANK_SQL ") WHEN 0 THEN 'ok' WHEN 1 THEN 'warn' "
		"WHEN 2 THEN 'crit' WHEN 3 THEN 'broken' ELSE 'unknown' END "
		"FROM lag_samples WHERE resolution_s = 1 AND ts < ?1 "
		"GROUP BY cluster, server, CAST(ts / 60 AS INTEGER)",
		"DELETE FROM lag_samples WHERE resolution_s = 1 AND ts < ?1",
		"DELETE FROM lag_samples WHERE resolution_s = 60 AND ts < ?2",
	};
	/* Whole minutes only, so a minute is never rolled up in two parts. */
	double fine_cut = floor((now - LAG_HISTORY_FINE_S) / 60.0) * 60.0;
	double keep_cut = now - LAG_HISTORY_KEEP_S;
	bool own = !catalog_in_transaction(c);
	int rc = 0;

	if (own && (rc = catalog_begin(c, e)))
		return rc;
	for (size_t i = 0; i < sizeof(sql) / sizeof(sql[0]) && rc == 0; i++) {
		sqlite3_stmt *st = NULL;

		if ((rc = prepare(c, sql[i], &st, "unable to downsample lag history", e)))
			break;
		if (sqlite3_bind_parameter_count(st) >= 1)
			sqlite3_bind_double(st, 1, fine_cut);
		if (sqlite3_bind_parameter_count(st) >= 2)
			sqlite3_bind_double(st, 2, keep_cut);
		if (sqlite3_step(st) != SQLITE_DONE)
			rc = catalog_error(c, "unable to downsample lag history", e);
		sqlite3_finalize(st);
	}
	if (own) {
		if (rc)
			catalog_rollback(c, NULL);
		else
			rc = catalog_commit(c, e);
	}
	return rc;
}

int lag_history_query(struct catalog *c, const char *cluster,
		      const char *server, double since, size_t max_rows,
		      struct lag_sample **rows, size_t *n, struct err *e)
{
	static const char sql[] =
		"SELECT CAST(ts / 60 AS INTEGER) * 60.0 AS minute, "
		"SUM(lag_s * resolution_s) / "
		"SUM(CASE WHEN lag_s IS NULL THEN 0 ELSE resolution_s END), "
		"MAX(COALESCE(lag_max_s, lag_s)), MAX(" RANK_SQL ") "
		"FROM lag_samples WHERE cluster = ?1 AND server = ?2 AND ts >= ?3 "
		"GROUP BY minute ORDER BY minute DESC LIMIT ?4";
	sqlite3_stmt *st = NULL;
	struct lag_sample *arr = NULL;
	size_t cnt = 0;
	int rc, step;

	*rows = NULL;
	*n = 0;
	if (max_rows == 0)
		return 0;
	if ((rc = prepare(c, sql, &st, "unable to read lag history", e)))
		return rc;
	sqlite3_bind_text(st, 1, cluster, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, server, -1, SQLITE_STATIC);
	sqlite3_bind_double(st, 3, since);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)max_rows);
	arr = xcalloc(max_rows, sizeof(*arr));
	while ((step = sqlite3_step(st)) == SQLITE_ROW && cnt < max_rows) {
		struct lag_sample *s = &arr[cnt++];
		int rank = sqlite3_column_int(st, 3);

		str_copy(s->cluster, sizeof(s->cluster), cluster);
		str_copy(s->server, sizeof(s->server), server);
		s->ts = sqlite3_column_double(st, 0);
		s->resolution_s = 60;
		s->have_lag = sqlite3_column_type(st, 1) != SQLITE_NULL;
		s->lag_s = s->have_lag ? sqlite3_column_double(st, 1) : NAN;
		s->lag_max_s = sqlite3_column_type(st, 2) != SQLITE_NULL
				       ? sqlite3_column_double(st, 2) : NAN;
		s->state = rank >= 0 && rank <= 3 ? (enum lag_state)rank : LAG_DOWN;
	}
	if (step != SQLITE_ROW && step != SQLITE_DONE) {
		rc = catalog_error(c, "unable to read lag history", e);
		free(arr);
		sqlite3_finalize(st);
		return rc;
	}
	sqlite3_finalize(st);
	/* Newest first from the query (LIMIT keeps the recent ones). */
	for (size_t i = 0; i < cnt / 2; i++) {
		struct lag_sample t = arr[i];
		arr[i] = arr[cnt - 1 - i];
		arr[cnt - 1 - i] = t;
	}
	*rows = arr;
	*n = cnt;
	return 0;
}

int lag_state_store(struct catalog *c, const char *cluster,
		    const char *server, const struct lag_sm *sm,
		    bool have_lag, double lag_s, double now, struct err *e)
{
	static const char sql[] =
		"INSERT INTO lag_state (cluster, server, state, since, "
		"pending_state, pending_since, lag_s, updated_at) "
		"VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) "
		"ON CONFLICT (cluster, server) DO UPDATE SET "
		"state = excluded.state, since = excluded.since, "
		"pending_state = excluded.pending_state, "
		"pending_since = excluded.pending_since, "
		"lag_s = excluded.lag_s, updated_at = excluded.updated_at";
	sqlite3_stmt *st = NULL;
	int rc;

	/* Storing "no verdict" would read back as down after a restart. */
	if (sm->state == LAG_UNKNOWN)
		return 0;
	if ((rc = prepare(c, sql, &st, "unable to store lag state", e)))
		return rc;
	sqlite3_bind_text(st, 1, cluster, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, server, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, lag_state_db_name(sm->state), -1, SQLITE_STATIC);
	sqlite3_bind_double(st, 4, sm->since > 0 ? sm->since : now);
	if (sm->pending != LAG_UNKNOWN) {
		sqlite3_bind_text(st, 5, lag_state_db_name(sm->pending), -1,
				  SQLITE_STATIC);
		sqlite3_bind_double(st, 6, sm->pending_since > 0 ? sm->pending_since : now);
	} else {
		sqlite3_bind_null(st, 5);
		sqlite3_bind_null(st, 6);
	}
	bind_lag(st, 7, have_lag, lag_s);
	sqlite3_bind_double(st, 8, now);
	if (sqlite3_step(st) != SQLITE_DONE)
		rc = catalog_error(c, "unable to store lag state", e);
	sqlite3_finalize(st);
	return rc;
}

int lag_state_load(struct catalog *c, const char *cluster, const char *server,
		   struct lag_sm *sm, bool *found, struct err *e)
{
	static const char sql[] =
		"SELECT state, since FROM lag_state WHERE cluster = ?1 AND server = ?2";
	sqlite3_stmt *st = NULL;
	int rc = 0, step;

	*found = false;
	if ((rc = prepare(c, sql, &st, "unable to read lag state", e)))
		return rc;
	sqlite3_bind_text(st, 1, cluster, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, server, -1, SQLITE_STATIC);
	step = sqlite3_step(st);
	if (step == SQLITE_ROW) {
		/* The hysteresis candidate is not restored: its count of
		 * readings is gone, so it starts over. */
		lag_sm_init(sm, state_from_db(sqlite3_column_text(st, 0)),
			    sqlite3_column_double(st, 1));
		*found = true;
	} else if (step != SQLITE_DONE) {
		rc = catalog_error(c, "unable to read lag state", e);
	}
	sqlite3_finalize(st);
	return rc;
}

/* ---- heartbeat SQL -------------------------------------------------------- */

/* sql/mysql/heartbeat.sql, embedded so the monitor can create it. */
static const char hb_ddl_db[] = "CREATE DATABASE IF NOT EXISTS `backupd`";
static const char hb_ddl_table[] =
	"CREATE TABLE IF NOT EXISTS `backupd`.`heartbeat` ("
	" `server_id` INT UNSIGNED NOT NULL,"
	" `ts` DATETIME(6) NOT NULL,"
	" `gtid` VARCHAR(4096) NULL DEFAULT NULL,"
	" PRIMARY KEY (`server_id`)"
	") ENGINE=InnoDB DEFAULT CHARSET=ascii";
#define HB_GTID_MAX 4096

static void lag_db_opts(const struct cfg_cluster *c, const struct cfg_addr *a,
			struct db_opts *o)
{
	probe_db_opts(c, a, o);
	o->init_command = LAG_TZ_INIT;
	/* A hung server must not hold a monitor thread (and shutdown) for
	 * the job-sized timeouts of the config. */
	if (!o->connect_timeout_s || o->connect_timeout_s > LAG_CONNECT_TIMEOUT_MAX_S)
		o->connect_timeout_s = LAG_CONNECT_TIMEOUT_MAX_S;
	if (!o->read_timeout_s || o->read_timeout_s > LAG_IO_TIMEOUT_MAX_S)
		o->read_timeout_s = LAG_IO_TIMEOUT_MAX_S;
	if (!o->write_timeout_s || o->write_timeout_s > LAG_IO_TIMEOUT_MAX_S)
		o->write_timeout_s = LAG_IO_TIMEOUT_MAX_S;
}

/* The connection is gone (client-side errors CR_*: 2000-2999), as opposed
 * to a statement the server refused. */
static bool conn_lost(const struct err *e)
{
	return e->code == ERR_DB_CONNECT ||
	       (e->db_errno >= 2000 && e->db_errno < 3000);
}

static bool parse_double(const char *s, double *out)
{
	char *end;

	if (!s || !*s)
		return false;
	errno = 0;
	*out = strtod(s, &end);
	return errno == 0 && *end == '\0';
}

struct hb_primary {
	unsigned long server_id;
	double now_ts;         /* the primary's NOW(6), unix seconds */
	double offset_s;       /* primary clock - local clock */
	double rtt_s;
	bool read_only;
	char *gtid;            /* heap, may be NULL */
};

/* One round trip: the primary's clock (for the offset), read_only and its
 * binlog position for the heartbeat's gtid column. */
static int hb_primary_probe(struct db *d, struct hb_primary *p, struct err *e)
{
	const char *sql = db_flavor(d) == DB_FLAVOR_MYSQL
		? "SELECT UNIX_TIMESTAMP(NOW(6)), @@GLOBAL.read_only, @@GLOBAL.gtid_executed"
		: "SELECT UNIX_TIMESTAMP(NOW(6)), @@GLOBAL.read_only, @@GLOBAL.gtid_binlog_pos";
	MYSQL_RES *res = NULL;
	MYSQL_ROW row = NULL;
	double t0, t1, srv;
	int rc;

	memset(p, 0, sizeof(*p));
	p->server_id = db_server_id(d);
	t0 = now_real();
	if ((rc = db_query_result(d, sql, false, &res, e)))
		return rc;
	t1 = now_real();
	rc = db_fetch_row(d, res, &row, NULL, e);
	if (rc == 0 && (!row || !parse_double(row[0], &srv)))
		rc = err_set(e, ERR_DB_QUERY, "unexpected clock reading from '%s'",
			     db_addr(d));
	if (rc == 0) {
		p->now_ts = srv;
		p->offset_s = srv - (t0 + t1) / 2;
		p->rtt_s = t1 - t0;
		p->read_only = row[1] && strcmp(row[1], "0") != 0;
		if (row[2] && strlen(row[2]) <= HB_GTID_MAX)
			p->gtid = xstrdup(row[2]);
	}
	mysql_free_result(res);
	db_finish(d, NULL);
	return rc;
}

static int hb_ensure_table(struct db *d, struct err *e)
{
	unsigned long long n = 0;
	int rc;

	/* Looking first keeps the DDL (and its binlog event) out of every
	 * reconnect. */
	if ((rc = db_query_ulong(d,
			"SELECT COUNT(*) FROM information_schema.TABLES "
			"WHERE TABLE_SCHEMA = 'backupd' AND TABLE_NAME = 'heartbeat'",
			&n, e)))
		return rc;
	if (n)
		return 0;
	log_info(MOD, "creating table backupd.heartbeat on '%s'", db_addr(d));
	if ((rc = db_exec(d, hb_ddl_db, e)) || (rc = db_exec(d, hb_ddl_table, e)))
		err_prefix(e, "unable to create backupd.heartbeat: ");
	return rc;
}

/* Writes ts, the primary's NOW(6) as hb_primary_probe read it a moment
 * before, so the writer knows exactly what each replica will compare.
 * Literals rather than @@server_id / @@gtid_binlog_pos: under statement-based
 * replication those would be evaluated on the replica. */
static int hb_write(struct db *d, unsigned long server_id, double ts,
		    const char *gtid, struct err *e)
{
	struct buf sql;
	int rc;

	buf_init(&sql, 16384);
	rc = buf_printf(&sql, e, "REPLACE INTO `backupd`.`heartbeat` "
			"(server_id, ts, gtid) VALUES (%lu, FROM_UNIXTIME(%.6f), ",
			server_id, ts);
	if (rc == 0)
		rc = gtid ? db_quote_string(d, &sql, gtid, strlen(gtid), e)
			  : buf_append_str(&sql, "NULL", e);
	if (rc == 0)
		rc = buf_append_char(&sql, ')', e);
	if (rc == 0)
		rc = db_exec_buf(d, &sql, e);
	buf_release(&sql);
	return rc;
}

struct hb_row {
	bool found;
	double ts;             /* heartbeat ts, primary clock */
	double server_now;     /* NOW(6) of the server read */
	double local_mid;      /* local time in the middle of the query */
};

/* The heartbeat of server_id (0: the newest row) as the server at d has it. */
static int hb_read(struct db *d, unsigned long server_id, struct hb_row *out,
		   struct err *e)
{
	char sql[256];
	MYSQL_RES *res = NULL;
	MYSQL_ROW row = NULL;
	double t0, t1;
	int rc;

	memset(out, 0, sizeof(*out));
	if (server_id)
		snprintf(sql, sizeof(sql),
			 "SELECT UNIX_TIMESTAMP(ts), UNIX_TIMESTAMP(NOW(6)) "
			 "FROM `backupd`.`heartbeat` WHERE server_id = %lu",
			 server_id);
	else
		snprintf(sql, sizeof(sql),
			 "SELECT UNIX_TIMESTAMP(ts), UNIX_TIMESTAMP(NOW(6)) "
			 "FROM `backupd`.`heartbeat` ORDER BY ts DESC LIMIT 1");
	t0 = now_real();
	if ((rc = db_query_result(d, sql, false, &res, e)))
		return rc;
	t1 = now_real();
	rc = db_fetch_row(d, res, &row, NULL, e);
	if (rc == 0 && row) {
		if (parse_double(row[0], &out->ts) &&
		    parse_double(row[1], &out->server_now)) {
			out->found = true;
			out->local_mid = (t0 + t1) / 2;
		} else {
			rc = err_set(e, ERR_DB_QUERY,
				     "unexpected heartbeat row on '%s'", db_addr(d));
		}
	}
	mysql_free_result(res);
	db_finish(d, NULL);
	return rc;
}

/* ---- the monitor ---------------------------------------------------------- */

void lag_written_reset(struct lag_written *w)
{
	w->run_start = 0;
	w->n = 0;
}

void lag_written_add(struct lag_written *w, double ts)
{
	if (w->n == LAG_WRITTEN_MAX) {
		memmove(w->ts, w->ts + 1, (LAG_WRITTEN_MAX - 1) * sizeof(w->ts[0]));
		w->n--;
	}
	if (w->run_start == 0)
		w->run_start = ts;
	w->ts[w->n++] = ts;
}

double lag_written_first_unapplied(const struct lag_written *w, double hb_ts,
				   double interval_s)
{
	if (w->n == 0)
		return -1;
	if (hb_ts < w->run_start - LAG_TS_EPS)
		return w->run_start;
	if (hb_ts < w->ts[0] - LAG_TS_EPS)
		/* Older than what is kept: the next write came one
		 * interval later. */
		return fmin(hb_ts + interval_s, w->ts[0]);
	for (size_t i = 0; i < w->n; i++)
		if (w->ts[i] > hb_ts + LAG_TS_EPS)
			return w->ts[i];
	return 0;
}

struct lag_cluster {
	struct lag_monitor *m;
	const struct cfg_cluster *c;
	/* The writer: the catalog's topology after a cutover, else the
	 * config's primary; every other configured server is read as a
	 * replica (others, owned here). */
	struct cfg_addr writer;
	struct cfg_addr *others;
	size_t n_others;
	char primary[300];
	pthread_t th;
	bool started;
	/* Guarded by m->mu. */
	unsigned long server_id;      /* 0: not known yet */
	bool offset_known;
	double offset_s;
	double last_write_ok;         /* unix time, 0: never */
	struct lag_written written;   /* this run of writes */
	char writer_error[256];
	bool paused;
	bool seen_dirty;
	char flavor[16], version[128];
};

struct lag_replica {
	struct lag_monitor *m;
	struct lag_cluster *cl;
	const struct cfg_addr *addr;
	char name[300];
	struct lag_policy policy;
	pthread_t th;
	bool started;
	/* Guarded by m->mu. */
	struct lag_sm sm;
	struct lag_reading reading;
	bool have_lag;
	bool seen_dirty;
	char flavor[16], version[128];
	unsigned long server_id;
	/* Owned by the reader thread. */
	struct lag_agg agg;
	/* Primary-clock time from which the lag grows when nothing newer is
	 * seen (the first unapplied heartbeat); 0: none. */
	double last_hb_ts;
	double stopped_since;         /* threads seen stopped since, 0: running */
};

struct lag_transition {
	char cluster[64];
	char server[300];
	enum lag_state from, to;
	double lag_s;
	char reason[256];
};

struct lag_monitor {
	const struct config *cfg;
	struct lag_event_sink sink;
	bool have_sink;
	double interval_s;
	double started_at;
	struct lag_cluster *clusters;
	size_t n_clusters;
	struct lag_replica *replicas;
	size_t n_replicas;
	struct catalog *cat;          /* owned by the event thread once started */
	bool cat_tx;                  /* event thread only: inside a transaction */
	pthread_t ev_th;
	bool ev_started;

	pthread_mutex_t mu;
	pthread_cond_t stop_cv;       /* writers and readers sleep on it */
	pthread_cond_t ev_cv;         /* the event thread sleeps on it */
	bool stopping;                /* writers and readers */
	bool ev_stopping;             /* event thread, after a final drain */
	struct lag_transition *tq;    /* transitions waiting for the event thread */
	size_t tq_n;
	struct lag_sample *sq;        /* samples waiting for the event thread */
	size_t sq_n;
	bool sq_overflow_logged;
};

static void cond_init_mono(pthread_cond_t *cv)
{
	pthread_condattr_t a;

	pthread_condattr_init(&a);
	pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	pthread_cond_init(cv, &a);
	pthread_condattr_destroy(&a);
}

static struct timespec mono_deadline(double at)
{
	struct timespec ts;

	ts.tv_sec = (time_t)at;
	ts.tv_nsec = (long)((at - (double)ts.tv_sec) * 1e9);
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return ts;
}

/* Sleeps until the monotonic time `until` or until stop; false when
 * stopping. */
static bool mon_sleep(struct lag_monitor *m, double until)
{
	struct timespec ts = mono_deadline(until);
	bool run;

	pthread_mutex_lock(&m->mu);
	while (!m->stopping && now_mono() < until)
		if (pthread_cond_timedwait(&m->stop_cv, &m->mu, &ts) == ETIMEDOUT)
			break;
	run = !m->stopping;
	pthread_mutex_unlock(&m->mu);
	return run;
}

static bool mon_running(struct lag_monitor *m)
{
	bool run;

	pthread_mutex_lock(&m->mu);
	run = !m->stopping;
	pthread_mutex_unlock(&m->mu);
	return run;
}

static double next_backoff(double cur)
{
	if (cur <= 0)
		return LAG_BACKOFF_MIN_S;
	return cur * 2 > LAG_BACKOFF_MAX_S ? LAG_BACKOFF_MAX_S : cur * 2;
}

static const char *flavor_str(enum db_flavor f)
{
	return f == DB_FLAVOR_MYSQL ? "mysql" : f == DB_FLAVOR_MARIADB ? "mariadb" : NULL;
}

/* Queues (m->mu held). */
static void push_sample(struct lag_monitor *m, const struct lag_replica *r,
			struct lag_sample *s)
{
	if (m->sq_n >= LAG_SAMPLES_MAX) {
		if (!m->sq_overflow_logged)
			log_warn(MOD, "lag history queue full: dropping samples");
		m->sq_overflow_logged = true;
		return;
	}
	str_copy(s->cluster, sizeof(s->cluster), r->cl->c->name);
	str_copy(s->server, sizeof(s->server), r->name);
	m->sq[m->sq_n++] = *s;
	pthread_cond_signal(&m->ev_cv);
}

static void push_transition(struct lag_monitor *m, const struct lag_replica *r,
			    enum lag_state from, enum lag_state to,
			    const struct lag_verdict *v)
{
	struct lag_transition *t;

	if (m->tq_n >= LAG_TRANSITIONS_MAX) {
		log_error(MOD, "lag event queue full: transition of '%s' %s -> %s lost",
			  r->name, lag_state_name(from), lag_state_name(to));
		return;
	}
	t = &m->tq[m->tq_n++];
	memset(t, 0, sizeof(*t));
	str_copy(t->cluster, sizeof(t->cluster), r->cl->c->name);
	str_copy(t->server, sizeof(t->server), r->name);
	t->from = from;
	t->to = to;
	t->lag_s = v->have_lag ? v->lag_s : NAN;
	str_copy(t->reason, sizeof(t->reason), v->reason);
	pthread_cond_signal(&m->ev_cv);
}

/* ---- writer thread -------------------------------------------------------- */

static void writer_status(struct lag_cluster *cl, const char *msg,
			  char *logged, size_t logged_size)
{
	struct lag_monitor *m = cl->m;

	pthread_mutex_lock(&m->mu);
	str_copy(cl->writer_error, sizeof(cl->writer_error), msg ? msg : "");
	pthread_mutex_unlock(&m->mu);
	/* Log changes only: a down primary would otherwise log every tick. */
	if (strcmp(logged, msg ? msg : "") == 0)
		return;
	if (msg)
		log_warn(MOD, "heartbeat on '%s' of cluster '%s': %s",
			 cl->primary, cl->c->name, msg);
	else
		log_info(MOD, "heartbeat on '%s' of cluster '%s' written again",
			 cl->primary, cl->c->name);
	str_copy(logged, logged_size, msg ? msg : "");
}

static void *writer_main(void *arg)
{
	struct lag_cluster *cl = arg;
	struct lag_monitor *m = cl->m;
	struct db_opts o;
	struct db *d = NULL;
	double backoff = 0, next_attempt = 0;
	bool table_ok = false;
	char logged[256] = "";

	lag_db_opts(cl->c, &cl->writer, &o);
	while (mon_running(m)) {
		double tick = now_mono();
		struct hb_primary hp;
		struct err e;
		bool paused;

		err_init(&e);
		pthread_mutex_lock(&m->mu);
		paused = cl->paused;
		pthread_mutex_unlock(&m->mu);
		if (paused) {
			writer_status(cl, "paused", logged, sizeof(logged));
			goto idle;
		}
		if (!d) {
			if (tick < next_attempt)
				goto sleep;
			if (db_connect(&o, &d, &e) != 0) {
				backoff = next_backoff(backoff);
				next_attempt = tick + backoff;
				writer_status(cl, e.msg, logged, sizeof(logged));
				goto idle;
			}
			backoff = 0;
			table_ok = false;
			pthread_mutex_lock(&m->mu);
			str_copy(cl->flavor, sizeof(cl->flavor),
				 flavor_str(db_flavor(d)) ? flavor_str(db_flavor(d)) : "");
			str_copy(cl->version, sizeof(cl->version), db_version_string(d));
			cl->seen_dirty = true;
			pthread_mutex_unlock(&m->mu);
		}
		if (hb_primary_probe(d, &hp, &e) != 0)
			goto fail;
		pthread_mutex_lock(&m->mu);
		if (hp.server_id)
			cl->server_id = hp.server_id;
		cl->offset_known = true;
		cl->offset_s = hp.offset_s;
		pthread_mutex_unlock(&m->mu);
		if (hp.read_only) {
			/* With READ_ONLY ADMIN the write would succeed and put
			 * a transaction on a server that must not take any
			 * (a cutover's frozen blue, a replica named primary). */
			writer_status(cl, "primary is read-only: heartbeat not written",
				      logged, sizeof(logged));
			free(hp.gtid);
			goto idle;
		}
		if (!table_ok && hb_ensure_table(d, &e) != 0) {
			free(hp.gtid);
			goto fail;
		}
		table_ok = true;
		if (hb_write(d, hp.server_id, hp.now_ts, hp.gtid, &e) != 0) {
			free(hp.gtid);
			goto fail;
		}
		free(hp.gtid);
		pthread_mutex_lock(&m->mu);
		cl->last_write_ok = now_real();
		lag_written_add(&cl->written, floor(hp.now_ts * 1e6 + 0.5) / 1e6);
		pthread_mutex_unlock(&m->mu);
		writer_status(cl, NULL, logged, sizeof(logged));
		goto sleep;
fail:
		writer_status(cl, e.msg, logged, sizeof(logged));
		table_ok = false;   /* dropped meanwhile? look again next time */
		if (conn_lost(&e)) {
			db_close(d);
			d = NULL;
			backoff = next_backoff(backoff);
			next_attempt = tick + backoff;
		}
idle:
		pthread_mutex_lock(&m->mu);
		lag_written_reset(&cl->written);
		pthread_mutex_unlock(&m->mu);
sleep:
		if (!mon_sleep(m, tick + m->interval_s))
			break;
	}
	db_close(d);
	return NULL;
}

/* ---- reader thread -------------------------------------------------------- */

/* The heartbeat age now, on the primary's clock, from the newest heartbeat
 * seen (m->mu held for the offset). */
static double carried_age(const struct lag_replica *r, double now)
{
	double primary_now = now + (r->cl->offset_known ? r->cl->offset_s : 0);

	return primary_now - r->last_hb_ts;
}

/* How long the heartbeat may go unwritten before it counts as stopped. */
static double writer_grace_s(const struct lag_monitor *m)
{
	return fmax(2.0, 4 * m->interval_s);
}

static bool writer_ok_locked(const struct lag_replica *r, double now,
			     char *why, size_t why_size)
{
	const struct lag_cluster *cl = r->cl;
	const struct lag_monitor *m = r->m;
	double base = cl->last_write_ok > 0 ? cl->last_write_ok : m->started_at;

	if (now - base <= writer_grace_s(m))
		return true;
	if (cl->writer_error[0])
		snprintf(why, why_size, "primary '%s': %s", cl->primary,
			 cl->writer_error);
	else
		snprintf(why, why_size, "no heartbeat written on '%s' for %.1f s",
			 cl->primary, now - base);
	return false;
}

/* Folds a verdict into the replica's state and reading (m->mu held). */
static void apply_verdict(struct lag_replica *r, const struct lag_verdict *v,
			  const struct lag_observation *o,
			  const struct db_replica_status *rs, double hb_age,
			  double now)
{
	struct lag_monitor *m = r->m;
	struct lag_reading *rd = &r->reading;
	struct lag_sample done;
	enum lag_state from;

	if (lag_sm_step(&r->sm, &r->policy, v, now, &from)) {
		log_info(MOD, "replica '%s' of cluster '%s': %s -> %s%s%s",
			 r->name, r->cl->c->name, lag_state_name(from),
			 lag_state_name(r->sm.state), v->reason[0] ? ": " : "",
			 v->reason);
		push_transition(m, r, from, r->sm.state, v);
	}
	rd->state = r->sm.state;
	rd->state_since = r->sm.since;
	rd->lag_known = v->lag_known;
	if (v->have_lag)
		rd->lag_s = v->lag_s;
	else if (!isfinite(rd->lag_s) || v->kind != LAG_V_NONE)
		rd->lag_s = INFINITY;
	r->have_lag = v->have_lag;
	rd->heartbeat_age_s = hb_age;
	rd->seconds_behind = o->status_read ? o->seconds_behind : -1;
	rd->io_running = rs && o->io_running;
	rd->sql_running = rs && o->sql_running;
	rd->last_errno = v->last_errno;
	str_copy(rd->reason, sizeof(rd->reason), v->reason);
	rd->updated_at = now;
	if (lag_agg_add(&r->agg, now, v->have_lag, v->lag_s, r->sm.state, &done))
		push_sample(m, r, &done);
}

static void *reader_main(void *arg)
{
	struct lag_replica *r = arg;
	struct lag_monitor *m = r->m;
	struct db_opts o;
	struct db *d = NULL;
	double backoff = 0, next_attempt = 0;

	lag_db_opts(r->cl->c, r->addr, &o);
	while (mon_running(m)) {
		double tick = now_mono(), now;
		struct lag_observation ob;
		struct lag_verdict v;
		struct db_replica_status rs;
		struct hb_row hb;
		struct err ce, se, he;
		char writer_why[600] = "";
		unsigned long sid;
		double hb_age = -1;
		bool have_rs = false;

		memset(&ob, 0, sizeof(ob));
		memset(&rs, 0, sizeof(rs));
		memset(&hb, 0, sizeof(hb));
		err_init(&ce);
		err_init(&se);
		err_init(&he);
		ob.seconds_behind = -1;
		ob.stopped_for_s = -1;

		if (!d && tick < next_attempt) {
			/* Backing off: keep the figure growing and the history
			 * going without another connection attempt. */
			struct lag_sample done;

			now = now_real();
			pthread_mutex_lock(&m->mu);
			if (r->last_hb_ts > 0) {
				r->reading.lag_s = carried_age(r, now);
				r->have_lag = true;
			}
			if (lag_agg_add(&r->agg, now, r->have_lag, r->reading.lag_s,
					r->sm.state, &done))
				push_sample(m, r, &done);
			pthread_mutex_unlock(&m->mu);
			goto sleep;
		}
		if (!d) {
			if (db_connect(&o, &d, &ce) != 0) {
				backoff = next_backoff(backoff);
				next_attempt = tick + backoff;
			} else {
				unsigned long id = db_server_id(d);   /* a query: not under mu */
				const char *fl = flavor_str(db_flavor(d));

				backoff = 0;
				pthread_mutex_lock(&m->mu);
				str_copy(r->flavor, sizeof(r->flavor), fl ? fl : "");
				str_copy(r->version, sizeof(r->version), db_version_string(d));
				r->server_id = id;
				r->seen_dirty = true;
				pthread_mutex_unlock(&m->mu);
			}
		}
		if (d && db_replica_status(d, &rs, &se) != 0) {
			if (conn_lost(&se)) {
				ce = se;
				db_close(d);
				d = NULL;
				next_attempt = tick + (backoff = next_backoff(backoff));
			}
		} else if (d) {
			have_rs = true;
		}
		pthread_mutex_lock(&m->mu);
		sid = r->cl->server_id;
		pthread_mutex_unlock(&m->mu);
		if (d && hb_read(d, sid, &hb, &he) != 0 && conn_lost(&he)) {
			ce = he;
			db_close(d);
			d = NULL;
			have_rs = false;
			next_attempt = tick + (backoff = next_backoff(backoff));
		}

		now = now_real();
		ob.reachable = d != NULL;
		ob.conn_error = ce.msg;
		ob.status_read = have_rs;
		ob.status_error = se.msg;
		if (have_rs) {
			ob.configured = rs.configured;
			ob.io_running = rs.io_running;
			ob.sql_running = rs.sql_running;
			ob.io_connecting = strcmp(rs.io_state_raw, "Connecting") == 0;
			ob.last_io_errno = rs.last_io_errno;
			ob.last_sql_errno = rs.last_sql_errno;
			ob.last_io_error = rs.last_io_error;
			ob.last_sql_error = rs.last_sql_error;
			ob.seconds_behind = rs.seconds_behind;
			if (rs.io_running && rs.sql_running)
				r->stopped_since = 0;
			else if (r->stopped_since == 0)
				r->stopped_since = now;
			if (r->stopped_since > 0)
				ob.stopped_for_s = now - r->stopped_since;
		}
		if (err_is_set(&he))
			ob.heartbeat_error = he.msg;
		else if (d && !hb.found)
			ob.heartbeat_error = "no heartbeat row from the primary yet";

		pthread_mutex_lock(&m->mu);
		ob.writer_ok = writer_ok_locked(r, now, writer_why, sizeof(writer_why));
		ob.writer_error = writer_why;
		if (hb.found && r->cl->last_write_ok == 0 &&
		    now - m->started_at <= writer_grace_s(m)) {
			/* Until our first write the row's age would count the
			 * time no monitor ran. */
			ob.heartbeat_error = "waiting for the first heartbeat write";
		} else if (hb.found) {
			/* The primary's clock through the writer's measured
			 * offset; the replica's own clock only until then. */
			double primary_now = r->cl->offset_known
				? hb.local_mid + r->cl->offset_s : hb.server_now;
			/* A writer stuck on a hung primary has not emptied its
			 * run: once it counts as stopped, the row just ages. */
			double fu = ob.writer_ok
				? lag_written_first_unapplied(&r->cl->written, hb.ts,
							      m->interval_s)
				: -1;

			hb_age = fmax(0, primary_now - hb.ts);
			if (fu > 0) {
				ob.age_s = primary_now - fu;
				r->last_hb_ts = fu;
			} else if (fu == 0) {
				ob.age_s = 0;
				r->last_hb_ts = primary_now;
			} else {
				/* Not writing now: the row just ages. */
				ob.age_s = hb_age;
				r->last_hb_ts = hb.ts;
			}
			if (ob.age_s < 0)
				ob.age_s = 0;
			ob.have_age = true;
			ob.heartbeat_fresh = true;
		} else if (r->last_hb_ts > 0) {
			ob.have_age = true;
			ob.age_s = carried_age(r, now);
		}
		lag_evaluate(&ob, &v);
		apply_verdict(r, &v, &ob, have_rs ? &rs : NULL, hb_age, now);
		pthread_mutex_unlock(&m->mu);
		db_replica_status_release(&rs);
sleep:
		if (!mon_sleep(m, tick + m->interval_s))
			break;
	}
	db_close(d);
	return NULL;
}

/* ---- event thread --------------------------------------------------------- */

struct state_snap {
	char cluster[64];
	char server[300];
	struct lag_sm sm;
	bool have_lag;
	double lag_s;
};

struct seen_snap {
	char cluster[64];
	char server[300];
	const char *role;
	char flavor[16], version[128];
	long long server_id;
};

static void ev_seen(struct catalog *cat, const struct seen_snap *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct err e;

		err_init(&e);
		if (catalog_server_upsert(cat, s[i].cluster, s[i].server, s[i].role,
					  s[i].flavor[0] ? s[i].flavor : NULL,
					  s[i].version[0] ? s[i].version : NULL,
					  s[i].server_id, &e) != 0)
			log_warn(MOD, "%s", e.msg);
	}
}

static void ev_batch(struct lag_monitor *m, struct lag_transition *tq,
		     size_t tq_n, struct lag_sample *sq, size_t sq_n,
		     struct state_snap *ss, size_t ss_n,
		     struct seen_snap *seen, size_t seen_n)
{
	struct err e;
	double now = now_real();

	err_init(&e);
	if (m->cat) {
		if (catalog_begin(m->cat, &e) == 0) {
			m->cat_tx = true;
		} else {
			log_warn(MOD, "lag events delivered outside a catalog transaction: %s",
				 e.msg);
			err_init(&e);
		}
	}
	for (size_t i = 0; i < tq_n; i++)
		if (m->have_sink && m->sink.on_transition)
			m->sink.on_transition(m->sink.ctx, tq[i].cluster,
					      tq[i].server, tq[i].from, tq[i].to,
					      tq[i].lag_s, tq[i].reason);
	if (!m->cat_tx)
		return;
	/* The states last, so they are the ones stored whatever the sink
	 * did; all in the transaction the sink's events joined. */
	if (lag_history_insert(m->cat, sq, sq_n, &e) != 0) {
		log_warn(MOD, "%s", e.msg);
		err_init(&e);
	}
	for (size_t i = 0; i < ss_n; i++)
		if (lag_state_store(m->cat, ss[i].cluster, ss[i].server, &ss[i].sm,
				    ss[i].have_lag, ss[i].lag_s, now, &e) != 0) {
			log_warn(MOD, "%s", e.msg);
			err_init(&e);
		}
	ev_seen(m->cat, seen, seen_n);
	if (catalog_commit(m->cat, &e) != 0)
		log_error(MOD, "lag state and events not stored: %s", e.msg);
	m->cat_tx = false;
}

static void *event_main(void *arg)
{
	struct lag_monitor *m = arg;
	struct lag_transition *tq = xcalloc(LAG_TRANSITIONS_MAX, sizeof(*tq));
	struct lag_sample *sq = xcalloc(LAG_SAMPLES_MAX, sizeof(*sq));
	struct state_snap *ss = xcalloc(m->n_replicas ? m->n_replicas : 1, sizeof(*ss));
	size_t n_seen_max = m->n_replicas + m->n_clusters;
	struct seen_snap *seen = xcalloc(n_seen_max ? n_seen_max : 1, sizeof(*seen));
	double next_tick = now_mono() + 1.0;
	double next_rollup = 0, next_seen = 0;

	for (;;) {
		size_t tq_n, sq_n, seen_n = 0;
		bool last;

		pthread_mutex_lock(&m->mu);
		while (!m->ev_stopping && m->tq_n == 0 && now_mono() < next_tick) {
			struct timespec ts = mono_deadline(next_tick);
			if (pthread_cond_timedwait(&m->ev_cv, &m->mu, &ts) == ETIMEDOUT)
				break;
		}
		last = m->ev_stopping;
		tq_n = m->tq_n;
		sq_n = m->sq_n;
		memcpy(tq, m->tq, tq_n * sizeof(*tq));
		memcpy(sq, m->sq, sq_n * sizeof(*sq));
		m->tq_n = m->sq_n = 0;
		for (size_t i = 0; i < m->n_replicas; i++) {
			struct lag_replica *r = &m->replicas[i];
			str_copy(ss[i].cluster, sizeof(ss[i].cluster), r->cl->c->name);
			str_copy(ss[i].server, sizeof(ss[i].server), r->name);
			ss[i].sm = r->sm;
			ss[i].have_lag = r->have_lag;
			ss[i].lag_s = r->reading.lag_s;
		}
		/* Servers seen since the last refresh, at most once a minute. */
		if (m->cat && (now_mono() >= next_seen || last)) {
			for (size_t i = 0; i < m->n_clusters; i++) {
				struct lag_cluster *cl = &m->clusters[i];
				if (!cl->seen_dirty)
					continue;
				cl->seen_dirty = false;
				str_copy(seen[seen_n].cluster, sizeof(seen[0].cluster), cl->c->name);
				str_copy(seen[seen_n].server, sizeof(seen[0].server), cl->primary);
				seen[seen_n].role = "primary";
				str_copy(seen[seen_n].flavor, sizeof(seen[0].flavor), cl->flavor);
				str_copy(seen[seen_n].version, sizeof(seen[0].version), cl->version);
				seen[seen_n++].server_id = cl->server_id ? (long long)cl->server_id : -1;
			}
			for (size_t i = 0; i < m->n_replicas; i++) {
				struct lag_replica *r = &m->replicas[i];
				if (!r->seen_dirty)
					continue;
				r->seen_dirty = false;
				str_copy(seen[seen_n].cluster, sizeof(seen[0].cluster), r->cl->c->name);
				str_copy(seen[seen_n].server, sizeof(seen[0].server), r->name);
				seen[seen_n].role = "replica";
				str_copy(seen[seen_n].flavor, sizeof(seen[0].flavor), r->flavor);
				str_copy(seen[seen_n].version, sizeof(seen[0].version), r->version);
				seen[seen_n++].server_id = r->server_id ? (long long)r->server_id : -1;
			}
			next_seen = now_mono() + LAG_SEEN_EVERY_S;
		}
		pthread_mutex_unlock(&m->mu);

		if (now_mono() >= next_tick)
			next_tick = now_mono() + 1.0;
		if (tq_n || sq_n || seen_n || (m->cat && last))
			ev_batch(m, tq, tq_n, sq, sq_n, ss, m->n_replicas, seen, seen_n);
		if (m->cat && now_mono() >= next_rollup) {
			struct err e;

			err_init(&e);
			if (lag_history_rollup(m->cat, now_real(), &e) != 0)
				log_warn(MOD, "%s", e.msg);
			next_rollup = now_mono() + LAG_ROLLUP_EVERY_S;
		}
		if (last)
			break;
	}
	free(tq);
	free(sq);
	free(ss);
	free(seen);
	return NULL;
}

/* ---- start / stop ----------------------------------------------------------- */

static void monitor_free(struct lag_monitor *m)
{
	catalog_close(m->cat);
	pthread_mutex_destroy(&m->mu);
	pthread_cond_destroy(&m->stop_cv);
	pthread_cond_destroy(&m->ev_cv);
	for (size_t i = 0; i < m->n_clusters; i++)
		free(m->clusters[i].others);
	free(m->clusters);
	free(m->replicas);
	free(m->tq);
	free(m->sq);
	free(m);
}

void lag_monitor_stop(struct lag_monitor *m)
{
	double now;

	if (!m)
		return;
	pthread_mutex_lock(&m->mu);
	m->stopping = true;
	pthread_cond_broadcast(&m->stop_cv);
	pthread_mutex_unlock(&m->mu);
	for (size_t i = 0; i < m->n_clusters; i++)
		if (m->clusters[i].started)
			pthread_join(m->clusters[i].th, NULL);
	for (size_t i = 0; i < m->n_replicas; i++)
		if (m->replicas[i].started)
			pthread_join(m->replicas[i].th, NULL);

	/* The open second of each replica goes into the history too. */
	now = now_real() + 1.0;
	pthread_mutex_lock(&m->mu);
	for (size_t i = 0; i < m->n_replicas; i++) {
		struct lag_sample done;
		if (lag_agg_flush(&m->replicas[i].agg, now, &done))
			push_sample(m, &m->replicas[i], &done);
	}
	m->ev_stopping = true;
	pthread_cond_broadcast(&m->ev_cv);
	pthread_mutex_unlock(&m->mu);
	if (m->ev_started)
		pthread_join(m->ev_th, NULL);
	monitor_free(m);
}

int lag_monitor_start(const struct config *cfg, const char *catalog_path,
		      const struct lag_event_sink *sink, unsigned interval_ms,
		      struct lag_monitor **out, struct err *e)
{
	struct lag_monitor *m;
	size_t nr = 0, ri = 0;
	double now = now_real();
	int rc = 0;

	*out = NULL;
	if (interval_ms < LAG_INTERVAL_MIN_MS || interval_ms > LAG_INTERVAL_MAX_MS)
		return err_set(e, ERR_USAGE,
			       "lag interval %u ms is outside %u-%u ms", interval_ms,
			       LAG_INTERVAL_MIN_MS, LAG_INTERVAL_MAX_MS);
	m = xcalloc(1, sizeof(*m));
	m->cfg = cfg;
	if (sink) {
		m->sink = *sink;
		m->have_sink = true;
	}
	m->interval_s = interval_ms / 1000.0;
	m->started_at = now;
	pthread_mutex_init(&m->mu, NULL);
	cond_init_mono(&m->stop_cv);
	cond_init_mono(&m->ev_cv);
	m->tq = xcalloc(LAG_TRANSITIONS_MAX, sizeof(*m->tq));
	m->sq = xcalloc(LAG_SAMPLES_MAX, sizeof(*m->sq));

	for (size_t i = 0; i < cfg->n_clusters; i++)
		nr += cfg->clusters[i].n_replicas;
	m->n_clusters = cfg->n_clusters;
	m->clusters = xcalloc(m->n_clusters ? m->n_clusters : 1, sizeof(*m->clusters));
	m->n_replicas = nr;
	m->replicas = xcalloc(nr ? nr : 1, sizeof(*m->replicas));
	struct catalog *topo = NULL;
	if (catalog_path) {
		struct err te;
		err_init(&te);
		if (catalog_open(catalog_path, &topo, &te) != 0)
			log_warn(MOD, "topology from the catalog unavailable (%s): using the config's primaries", te.msg);
	}
	for (size_t i = 0; i < cfg->n_clusters; i++) {
		struct lag_cluster *cl = &m->clusters[i];
		struct err te;

		cl->m = m;
		cl->c = &cfg->clusters[i];
		err_init(&te);
		if (cutover_effective_primary(cl->c, topo, &cl->writer, NULL, &te) != 0)
			cl->writer = cl->c->primary;
		cl->others = xcalloc(cl->c->n_replicas ? cl->c->n_replicas : 1, sizeof(*cl->others));
		for (size_t j = 0; j <= cl->c->n_replicas; j++) {
			const struct cfg_addr *a = j == 0 ? &cl->c->primary : &cl->c->replicas[j - 1];
			if (!cfg_addr_equal(a, &cl->writer) && cl->n_others < cl->c->n_replicas)
				cl->others[cl->n_others++] = *a;
		}
		cfg_addr_format(&cl->writer, cl->primary, sizeof(cl->primary));
		for (size_t j = 0; j < cl->n_others; j++) {
			struct lag_replica *r = &m->replicas[ri++];

			r->m = m;
			r->cl = cl;
			r->addr = &cl->others[j];
			cfg_addr_format(r->addr, r->name, sizeof(r->name));
			lag_policy_init(&r->policy, cl->c->lag_warn_s, cl->c->lag_crit_s);
			lag_sm_init(&r->sm, LAG_UNKNOWN, now);
			lag_agg_init(&r->agg);
			str_copy(r->reading.cluster, sizeof(r->reading.cluster), cl->c->name);
			str_copy(r->reading.server, sizeof(r->reading.server), r->name);
			r->reading.state = LAG_UNKNOWN;
			r->reading.state_since = now;
			r->reading.lag_s = INFINITY;
			r->reading.heartbeat_age_s = -1;
			r->reading.seconds_behind = -1;
			str_copy(r->reading.reason, sizeof(r->reading.reason),
				 "not read yet");
		}
	}

	catalog_close(topo);
	if (catalog_path) {
		if ((rc = catalog_open(catalog_path, &m->cat, e)))
			goto fail;
		for (size_t i = 0; i < nr; i++) {
			struct lag_replica *r = &m->replicas[i];
			bool found = false;

			if ((rc = lag_state_load(m->cat, r->cl->c->name, r->name,
						 &r->sm, &found, e)))
				goto fail;
			if (found) {
				r->reading.state = r->sm.state;
				r->reading.state_since = r->sm.since;
				log_debug(MOD, "replica '%s': state %s since %.0f from the catalog",
					  r->name, lag_state_name(r->sm.state), r->sm.since);
			}
		}
	}

	/* From here the catalog belongs to the event thread. */
	if ((rc = pthread_create(&m->ev_th, NULL, event_main, m)) != 0) {
		rc = err_set_errno(e, ERR_INTERNAL, rc, "unable to start the lag event thread");
		goto fail;
	}
	m->ev_started = true;
	for (size_t i = 0; i < m->n_clusters; i++) {
		struct lag_cluster *cl = &m->clusters[i];

		if (cl->c->n_replicas == 0)
			continue;
		if ((rc = pthread_create(&cl->th, NULL, writer_main, cl)) != 0) {
			rc = err_set_errno(e, ERR_INTERNAL, rc,
					   "unable to start the heartbeat writer");
			goto stop;
		}
		cl->started = true;
	}
	for (size_t i = 0; i < nr; i++) {
		struct lag_replica *r = &m->replicas[i];

		if ((rc = pthread_create(&r->th, NULL, reader_main, r)) != 0) {
			rc = err_set_errno(e, ERR_INTERNAL, rc,
					   "unable to start a lag reader");
			goto stop;
		}
		r->started = true;
	}
	log_info(MOD, "lag monitor started: %zu replica(s), every %u ms", nr,
		 interval_ms);
	*out = m;
	return 0;

stop:
	lag_monitor_stop(m);
	return rc;
fail:
	monitor_free(m);
	return rc;
}

size_t lag_monitor_readings(struct lag_monitor *m, struct lag_reading *out,
			    size_t max)
{
	pthread_mutex_lock(&m->mu);
	for (size_t i = 0; i < m->n_replicas && i < max; i++)
		out[i] = m->replicas[i].reading;
	pthread_mutex_unlock(&m->mu);
	return m->n_replicas;
}

struct catalog *lag_monitor_catalog(struct lag_monitor *m)
{
	return m && m->cat_tx ? m->cat : NULL;
}

void lag_monitor_pause_writer(struct lag_monitor *m, const char *cluster,
			      bool paused)
{
	pthread_mutex_lock(&m->mu);
	for (size_t i = 0; i < m->n_clusters; i++)
		if (strcmp(m->clusters[i].c->name, cluster) == 0)
			m->clusters[i].paused = paused;
	pthread_mutex_unlock(&m->mu);
	log_info(MOD, "heartbeat writer of cluster '%s' %s", cluster,
		 paused ? "paused" : "resumed");
}

/* ---- metrics -------------------------------------------------------------- */

struct writer_snap {
	char cluster[64];
	char primary[300];
	double write_age_s;
	double offset_s;
	bool has_replicas;
};

int lag_monitor_metrics(struct lag_monitor *m, struct buf *out, struct err *e)
{
	struct lag_reading *rd = xcalloc(m->n_replicas ? m->n_replicas : 1, sizeof(*rd));
	struct writer_snap *ws = xcalloc(m->n_clusters ? m->n_clusters : 1, sizeof(*ws));
	double now = now_real();
	size_t n;
	int rc = 0;

	n = lag_monitor_readings(m, rd, m->n_replicas);
	pthread_mutex_lock(&m->mu);
	for (size_t i = 0; i < m->n_clusters; i++) {
		const struct lag_cluster *cl = &m->clusters[i];
		str_copy(ws[i].cluster, sizeof(ws[i].cluster), cl->c->name);
		str_copy(ws[i].primary, sizeof(ws[i].primary), cl->primary);
		ws[i].write_age_s = cl->last_write_ok > 0 ? now - cl->last_write_ok
							  : INFINITY;
		ws[i].offset_s = cl->offset_known ? cl->offset_s : NAN;
		ws[i].has_replicas = cl->c->n_replicas > 0;
	}
	pthread_mutex_unlock(&m->mu);

	for (size_t i = 0; i < n && rc == 0; i++) {
		const struct lag_reading *r = &rd[i];
		const char *lb[] = { "cluster", r->cluster, "server", r->server, NULL };

		rc = metrics_gauge(out, "backupd_replica_lag_seconds",
				   "Replication lag: heartbeat age on the replica, growing while replication is stopped or the replica unreachable (+Inf: never measured)",
				   lb, r->lag_s, e);
		if (rc == 0)
			rc = metrics_gauge(out, "backupd_replica_lag_known",
					   "1 when the lag figure is a real lag (threads running, heartbeat written), 0 when it is a lower bound",
					   lb, r->lag_known ? 1 : 0, e);
		for (unsigned s = 0; s <= LAG_UNKNOWN && rc == 0; s++) {
			const char *ls[] = { "cluster", r->cluster, "server", r->server,
					     "state", lag_state_name((enum lag_state)s), NULL };
			rc = metrics_gauge(out, "backupd_replica_state",
					   "Alert state of the replica: 1 for the current state",
					   ls, r->state == (enum lag_state)s ? 1 : 0, e);
		}
		if (rc == 0)
			rc = metrics_gauge(out, "backupd_replica_io_running",
					   "1 when the replica's IO thread runs", lb,
					   r->io_running ? 1 : 0, e);
		if (rc == 0)
			rc = metrics_gauge(out, "backupd_replica_sql_running",
					   "1 when the replica's SQL thread runs", lb,
					   r->sql_running ? 1 : 0, e);
		if (rc == 0)
			rc = metrics_gauge(out, "backupd_replica_seconds_behind_master",
					   "Seconds_Behind_Master as the replica reports it (NaN when NULL)",
					   lb, r->seconds_behind >= 0 ? (double)r->seconds_behind : NAN, e);
	}
	for (size_t i = 0; i < m->n_clusters && rc == 0; i++) {
		const char *lb[] = { "cluster", ws[i].cluster, "server", ws[i].primary, NULL };

		if (!ws[i].has_replicas)
			continue;
		rc = metrics_gauge(out, "backupd_heartbeat_age_seconds",
				   "Seconds since the heartbeat was last written on the primary (+Inf: never)",
				   lb, ws[i].write_age_s, e);
		if (rc == 0)
			rc = metrics_gauge(out, "backupd_primary_clock_offset_seconds",
					   "Primary clock minus this host's clock, measured by the heartbeat writer",
					   lb, ws[i].offset_s, e);
	}
	free(rd);
	free(ws);
	return rc;
}

long lag_pick_healthiest(const struct lag_reading *r, size_t n,
			 const char *cluster)
{
	long best = -1;

	for (size_t i = 0; i < n; i++) {
		if (cluster && strcmp(r[i].cluster, cluster) != 0)
			continue;
		if (!is_lag_level(r[i].state))
			continue;
		if (best < 0 || r[i].state < r[best].state ||
		    (r[i].state == r[best].state && r[i].lag_s < r[best].lag_s))
			best = (long)i;
	}
	return best;
}

/* ---- one-shot measurement ------------------------------------------------ */

struct once_primary {
	bool reachable;
	char error[512];
	unsigned long server_id;
	bool offset_known;
	double offset_s;
	bool live_writer;      /* someone else writes heartbeats */
	bool wrote;
	double written_ts;     /* ts of our heartbeat */
};

static void once_primary(const struct cfg_cluster *c, struct once_primary *p)
{
	struct db_opts o;
	struct db *d = NULL;
	struct hb_primary hp;
	struct hb_row before;
	struct err e;

	memset(p, 0, sizeof(*p));
	err_init(&e);
	lag_db_opts(c, &c->primary, &o);
	if (db_connect(&o, &d, &e) != 0) {
		str_copy(p->error, sizeof(p->error), e.msg);
		return;
	}
	p->reachable = true;
	if (hb_primary_probe(d, &hp, &e) != 0) {
		str_copy(p->error, sizeof(p->error), e.msg);
		db_close(d);
		return;
	}
	p->server_id = hp.server_id;
	p->offset_known = true;
	p->offset_s = hp.offset_s;
	memset(&before, 0, sizeof(before));
	if (hb_read(d, hp.server_id, &before, &e) == 0 && before.found)
		p->live_writer = before.server_now - before.ts < LAG_LIVE_WRITER_S;
	err_init(&e);
	if (hp.read_only) {
		str_copy(p->error, sizeof(p->error),
			 "primary is read-only: heartbeat not written");
		goto out;
	}
	if (hb_ensure_table(d, &e) != 0)
		goto fail;
	/* A fresh clock reading right before the write, so the written ts
	 * is when it was written. */
	free(hp.gtid);
	if (hb_primary_probe(d, &hp, &e) != 0)
		goto fail;
	p->offset_s = hp.offset_s;
	if (hb_write(d, hp.server_id, hp.now_ts, hp.gtid, &e) != 0)
		goto fail;
	p->wrote = true;
	p->written_ts = floor(hp.now_ts * 1e6 + 0.5) / 1e6;
	goto out;
fail:
	str_copy(p->error, sizeof(p->error), e.msg);
out:
	free(hp.gtid);
	db_close(d);
}

/* d: the replica's connection made before the heartbeat was written (NULL
 * when it failed with ce), so connecting does not count as lag. */
static void once_replica(const struct cfg_cluster *c, const struct cfg_addr *a,
			 struct db *d, const struct err *conn_err,
			 const struct once_primary *p, struct lag_reading *rd)
{
	struct lag_policy pol;
	struct lag_observation ob;
	struct lag_verdict v;
	struct lag_sm sm;
	struct db_replica_status rs;
	struct hb_row hb;
	struct err se, he;
	enum lag_state from;
	char writer_why[600] = "";
	double t0 = now_mono(), waited = 0, now, hb_age = -1;
	bool have_rs = false;

	memset(&ob, 0, sizeof(ob));
	memset(&rs, 0, sizeof(rs));
	memset(&hb, 0, sizeof(hb));
	err_init(&se);
	err_init(&he);
	ob.seconds_behind = -1;
	ob.stopped_for_s = -1;
	if (d) {
		bool read = hb_read(d, p->server_id, &hb, &he) == 0;

		if (db_replica_status(d, &rs, &se) == 0)
			have_rs = true;
		while (read) {
			/* Wait for our heartbeat only where it can arrive. */
			if (!p->wrote || !have_rs || !rs.io_running || !rs.sql_running ||
			    (hb.found && hb.ts >= p->written_ts - LAG_TS_EPS))
				break;
			waited = now_mono() - t0;
			if (waited >= LAG_MEASURE_WAIT_S)
				break;
			struct timespec ts = { 0, 50 * 1000 * 1000 };
			nanosleep(&ts, NULL);
			err_init(&he);
			read = hb_read(d, p->server_id, &hb, &he) == 0;
		}
	}
	now = now_real();
	ob.reachable = d != NULL;
	ob.conn_error = conn_err->msg;
	ob.status_read = have_rs;
	ob.status_error = se.msg;
	if (have_rs) {
		ob.configured = rs.configured;
		ob.io_running = rs.io_running;
		ob.sql_running = rs.sql_running;
		ob.io_connecting = strcmp(rs.io_state_raw, "Connecting") == 0;
		ob.last_io_errno = rs.last_io_errno;
		ob.last_sql_errno = rs.last_sql_errno;
		ob.last_io_error = rs.last_io_error;
		ob.last_sql_error = rs.last_sql_error;
		ob.seconds_behind = rs.seconds_behind;
	}
	if (err_is_set(&he))
		ob.heartbeat_error = he.msg;
	else if (d && !hb.found)
		ob.heartbeat_error = "no heartbeat row from the primary";
	ob.writer_ok = p->wrote || p->live_writer;
	if (!p->reachable)
		snprintf(writer_why, sizeof(writer_why), "primary unreachable: %s",
			 p->error);
	else if (!ob.writer_ok)
		snprintf(writer_why, sizeof(writer_why), "%s", p->error);
	ob.writer_error = writer_why;
	if (hb.found) {
		bool arrived = p->wrote && hb.ts >= p->written_ts - LAG_TS_EPS;
		double primary_now = p->offset_known ? hb.local_mid + p->offset_s
						     : hb.server_now;

		hb_age = fmax(0, primary_now - hb.ts);
		ob.have_age = true;
		/* Arrived: it took at most this long. */
		ob.age_s = arrived ? fmax(0, primary_now - p->written_ts) : hb_age;
		ob.heartbeat_fresh = true;
		if (!arrived && !p->live_writer && p->wrote) {
			/* Nobody else writes heartbeats, so the replica's newest
			 * one may be days old: with running threads our own
			 * heartbeat's delay (at least the wait) and
			 * Seconds_Behind_Master bound the lag from below; with a
			 * stopped thread the old heartbeat's age is all there
			 * is, an upper bound. */
			if (ob.io_running && ob.sql_running) {
				ob.age_s = fmax(waited, (double)rs.seconds_behind);
				snprintf(writer_why, sizeof(writer_why),
					 "the heartbeat written now did not arrive within %.1f s",
					 waited);
			} else {
				snprintf(writer_why, sizeof(writer_why),
					 "no monitor writing heartbeats: the figure is the age of the replica's newest heartbeat");
			}
			ob.writer_ok = false;
		}
	}
	lag_evaluate(&ob, &v);
	lag_policy_init(&pol, c->lag_warn_s, c->lag_crit_s);
	pol.down_readings = 1;
	lag_sm_init(&sm, LAG_UNKNOWN, now);
	lag_sm_step(&sm, &pol, &v, now, &from);

	memset(rd, 0, sizeof(*rd));
	str_copy(rd->cluster, sizeof(rd->cluster), c->name);
	cfg_addr_format(a, rd->server, sizeof(rd->server));
	rd->state = sm.state;
	rd->state_since = now;
	rd->lag_known = v.lag_known;
	rd->lag_s = v.have_lag ? v.lag_s : INFINITY;
	rd->heartbeat_age_s = hb_age;
	rd->seconds_behind = have_rs ? rs.seconds_behind : -1;
	rd->io_running = have_rs && rs.io_running;
	rd->sql_running = have_rs && rs.sql_running;
	rd->last_errno = v.last_errno;
	str_copy(rd->reason, sizeof(rd->reason), v.reason);
	rd->updated_at = now;
	db_replica_status_release(&rs);
}

int lag_measure_once(const struct config *cfg, const char *cluster,
		     struct lag_reading *out, size_t max, size_t *n,
		     struct err *e)
{
	size_t k = 0;

	*n = 0;
	if (cluster && !config_find_cluster(cfg, cluster))
		return err_set(e, ERR_NOT_FOUND, "no cluster '%s' in config '%s'",
			       cluster, cfg->path ? cfg->path : "");
	for (size_t i = 0; i < cfg->n_clusters; i++) {
		const struct cfg_cluster *c = &cfg->clusters[i];
		struct once_primary p;
		struct db **dbs;
		struct err *errs;

		if (cluster && strcmp(cluster, c->name) != 0)
			continue;
		if (c->n_replicas == 0)
			continue;
		if (k >= max)
			break;
		dbs = xcalloc(c->n_replicas, sizeof(*dbs));
		errs = xcalloc(c->n_replicas, sizeof(*errs));
		for (size_t j = 0; j < c->n_replicas; j++) {
			struct db_opts o;

			err_init(&errs[j]);
			lag_db_opts(c, &c->replicas[j], &o);
			db_connect(&o, &dbs[j], &errs[j]);
		}
		once_primary(c, &p);
		if (p.error[0])
			log_debug(MOD, "primary of cluster '%s': %s", c->name, p.error);
		for (size_t j = 0; j < c->n_replicas; j++) {
			if (k < max)
				once_replica(c, &c->replicas[j], dbs[j], &errs[j], &p,
					     &out[k++]);
			db_close(dbs[j]);
		}
		free(dbs);
		free(errs);
	}
	*n = k;
	return 0;
}
