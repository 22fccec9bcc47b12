/* Unit tests for the lag monitor's pure parts (verdicts for unbounded lag,
 * the state machine's transitions and hysteresis, per-second aggregation,
 * the written-heartbeat run), its catalog history (downsampling, per-minute
 * view, persisted state on ":memory:") and the Prometheus helpers and HTTP
 * server of metrics.c. No database server needed. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <curl/curl.h>

#include "catalog.h"
#include "lag.h"
#include "log.h"
#include "metrics.h"

/* ---- helpers ---------------------------------------------------------------- */

static struct lag_observation obs_running(double age_s)
{
	struct lag_observation o;

	memset(&o, 0, sizeof(o));
	o.reachable = true;
	o.status_read = true;
	o.configured = true;
	o.io_running = o.sql_running = true;
	o.seconds_behind = 0;
	o.have_age = true;
	o.age_s = age_s;
	o.heartbeat_fresh = true;
	o.writer_ok = true;
	o.stopped_for_s = -1;
	return o;
}

static struct lag_verdict verdict_lag(double lag_s)
{
	struct lag_verdict v;

	memset(&v, 0, sizeof(v));
	v.kind = LAG_V_LAG;
	v.have_lag = true;
	v.lag_s = lag_s;
	v.lag_known = true;
	return v;
}

static struct lag_verdict verdict_kind(enum lag_verdict_kind k)
{
	struct lag_verdict v;

	memset(&v, 0, sizeof(v));
	v.kind = k;
	v.lag_s = NAN;
	return v;
}

/* Feeds one lag value; returns 1 when the state changed. */
static int feed(struct lag_sm *sm, const struct lag_policy *p, double lag_s,
		double *t, enum lag_state *from)
{
	struct lag_verdict v = verdict_lag(lag_s);

	*t += 0.25;
	return lag_sm_step(sm, p, &v, *t, from) ? 1 : 0;
}

static int feed_kind(struct lag_sm *sm, const struct lag_policy *p,
		     enum lag_verdict_kind k, double *t, enum lag_state *from)
{
	struct lag_verdict v = verdict_kind(k);

	*t += 0.25;
	return lag_sm_step(sm, p, &v, *t, from) ? 1 : 0;
}

/* ---- names ------------------------------------------------------------------ */

static void test_state_names(void **state)
{
	enum lag_state s;

	(void)state;
	for (unsigned i = 0; i <= LAG_UNKNOWN; i++) {
		assert_true(lag_state_parse(lag_state_name((enum lag_state)i), &s));
		assert_int_equal(s, i);
	}
	assert_false(lag_state_parse("bogus", &s));
	assert_false(lag_state_parse(NULL, &s));
	assert_string_equal(lag_state_name(LAG_CRIT), "crit");
	/* The catalog has no "down": stored as unknown. */
	assert_string_equal(lag_state_db_name(LAG_DOWN), "unknown");
	assert_string_equal(lag_state_db_name(LAG_UNKNOWN), "unknown");
	assert_string_equal(lag_state_db_name(LAG_BROKEN), "broken");
}

/* ---- verdicts: unbounded cases -------------------------------------------- */

static void test_evaluate_running(void **state)
{
	struct lag_observation o = obs_running(0.2);
	struct lag_verdict v;

	(void)state;
	lag_evaluate(&o, &v);
	assert_int_equal(v.kind, LAG_V_LAG);
	assert_true(v.have_lag);
	assert_true(v.lag_known);
	assert_float_equal(v.lag_s, 0.2, 1e-9);
	assert_string_equal(v.reason, "");

	/* A negative age (clock noise) is 0, not negative. */
	o.age_s = -0.01;
	lag_evaluate(&o, &v);
	assert_float_equal(v.lag_s, 0, 1e-12);
}

static void test_evaluate_sql_stopped(void **state)
{
	struct lag_observation o = obs_running(3.5);
	struct lag_verdict v;

	(void)state;
	/* STOP SLAVE SQL_THREAD: the growing age, never 0 and never blank,
	 * judged by the thresholds rather than "broken". */
	o.sql_running = false;
	o.seconds_behind = -1;   /* NULL exactly while lag builds */
	lag_evaluate(&o, &v);
	assert_int_equal(v.kind, LAG_V_LAG);
	assert_true(v.have_lag);
	assert_false(v.lag_known);
	assert_float_equal(v.lag_s, 3.5, 1e-9);
	assert_string_equal(v.reason, "sql thread stopped");

	/* No heartbeat at all: the time since the stop was seen is the lower
	 * bound. */
	o.have_age = false;
	o.heartbeat_fresh = false;
	o.stopped_for_s = 1.25;
	lag_evaluate(&o, &v);
	assert_int_equal(v.kind, LAG_V_LAG);
	assert_false(v.lag_known);
	assert_float_equal(v.lag_s, 1.25, 1e-9);

	/* Nothing at all to go by: no verdict rather than a made-up 0. */
	o.stopped_for_s = -1;
	lag_evaluate(&o, &v);
	assert_int_equal(v.kind, LAG_V_NONE);
	assert_false(v.have_lag);
}

static void test_evaluate_broken(void **state)
{
	struct lag_observation o = obs_running(9);
	struct lag_verdict v;

	(void)state;
	o.sql_running = false;
	o.last_sql_errno = 1062;
	o.last_sql_error = "Duplicate entry '1' for key 'PRIMARY'";
	lag_evaluate(&o, &v);
	assert_int_equal(v.kind, LAG_V_BROKEN);
	assert_int_equal(v.last_errno, 1062);
	assert_non_null(strstr(v.reason, "sql thread stopped by error 1062"));
	assert_non_null(strstr(v.reason, "Duplicate entry"));
	/* The growing figure is still there to show. */
	assert_true(v.have_lag);
	assert_float_equal(v.lag_s, 9, 1e-9);

	o = obs_running(1);
	o.io_running = false;
	o.last_io_errno = 1236;
	o.last_io_error = "could not find next log";
	lag_evaluate(&o, &v);
	assert_int_equal(v.kind, LAG_V_BROKEN);
	assert_non_null(strstr(v.reason, "io thread stopped by error 1236"));

	/* An IO thread retrying (primary down) is not broken: its lag grows. */
	o.io_connecting = true;
	o.last_io_errno = 2003;
	o.last_io_error = "Can't connect";
	lag_evaluate(&o, &v);
	assert_int_equal(v.kind, LAG_V_LAG);
	assert_false(v.lag_known);
	assert_non_null(strstr(v.reason, "reconnecting after error 2003"));

	o = obs_running(0);
	o.configured = false;
	lag_evaluate(&o, &v);
	assert_int_equal(v.kind, LAG_V_BROKEN);
	assert_string_equal(v.reason, "replication is not configured");
}

static void test_evaluate_down_and_writer(void **state)
{
	struct lag_observation o = obs_running(0);
	struct lag_verdict v;

	(void)state;
	o.reachable = false;
	o.conn_error = "unable to connect to '127.0.0.1:1'";
	o.have_age = true;          /* carried from the last heartbeat seen */
	o.age_s = 12;
	o.heartbeat_fresh = false;
	lag_evaluate(&o, &v);
	assert_int_equal(v.kind, LAG_V_DOWN);
	assert_true(v.have_lag);
	assert_false(v.lag_known);
	assert_float_equal(v.lag_s, 12, 1e-9);
	assert_non_null(strstr(v.reason, "unreachable: unable to connect"));

	/* Down since start: no figure, the state still says down. */
	o.have_age = false;
	lag_evaluate(&o, &v);
	assert_int_equal(v.kind, LAG_V_DOWN);
	assert_false(v.have_lag);

	/* A heartbeat that stops advancing: growing, not known, and why. */
	o = obs_running(7);
	o.writer_ok = false;
	o.writer_error = "primary '127.0.0.1:3306': unable to connect";
	lag_evaluate(&o, &v);
	assert_int_equal(v.kind, LAG_V_LAG);
	assert_false(v.lag_known);
	assert_float_equal(v.lag_s, 7, 1e-9);
	assert_non_null(strstr(v.reason, "heartbeat not advancing"));

	/* No heartbeat table yet: Seconds_Behind_Master stands in. */
	o = obs_running(0);
	o.have_age = false;
	o.heartbeat_fresh = false;
	o.heartbeat_error = "table 'backupd.heartbeat' doesn't exist";
	o.seconds_behind = 4;
	lag_evaluate(&o, &v);
	assert_int_equal(v.kind, LAG_V_LAG);
	assert_true(v.lag_known);
	assert_float_equal(v.lag_s, 4, 1e-9);
	assert_non_null(strstr(v.reason, "Seconds_Behind_Master"));
	o.seconds_behind = -1;
	lag_evaluate(&o, &v);
	assert_int_equal(v.kind, LAG_V_NONE);

	/* Status unreadable (missing grant) but a heartbeat: judged by it. */
	o = obs_running(2);
	o.status_read = false;
	o.status_error = "access denied";
	lag_evaluate(&o, &v);
	assert_int_equal(v.kind, LAG_V_LAG);
	assert_false(v.lag_known);
	assert_non_null(strstr(v.reason, "replica status unreadable"));
}

/* ---- state machine --------------------------------------------------------- */

static void test_sm_escalate_and_recover(void **state)
{
	struct lag_policy p;
	struct lag_sm sm;
	enum lag_state from = LAG_UNKNOWN;
	double t = 1000;

	(void)state;
	lag_policy_init(&p, 5, 30);
	lag_sm_init(&sm, LAG_UNKNOWN, t);
	/* The first verdict is a transition from unknown. */
	assert_int_equal(feed(&sm, &p, 0.1, &t, &from), 1);
	assert_int_equal(from, LAG_UNKNOWN);
	assert_int_equal(sm.state, LAG_OK);
	assert_int_equal(feed(&sm, &p, 0.2, &t, &from), 0);
	/* Worse at once. */
	assert_int_equal(feed(&sm, &p, 5.0, &t, &from), 1);
	assert_int_equal(from, LAG_OK);
	assert_int_equal(sm.state, LAG_WARN);
	assert_float_equal(sm.since, t, 1e-9);
	assert_int_equal(feed(&sm, &p, 30.0, &t, &from), 1);
	assert_int_equal(from, LAG_WARN);
	assert_int_equal(sm.state, LAG_CRIT);
	assert_int_equal(feed(&sm, &p, 45.0, &t, &from), 0);
	/* Better only after two better readings, then straight to ok. */
	assert_int_equal(feed(&sm, &p, 0.0, &t, &from), 0);
	assert_int_equal(sm.state, LAG_CRIT);
	assert_int_equal(sm.pending, LAG_OK);
	assert_int_equal(feed(&sm, &p, 0.0, &t, &from), 1);
	assert_int_equal(from, LAG_CRIT);
	assert_int_equal(sm.state, LAG_OK);
	assert_int_equal(sm.pending, LAG_UNKNOWN);

	/* Unknown to crit directly (restart into a lagging replica). */
	lag_sm_init(&sm, LAG_UNKNOWN, t);
	assert_int_equal(feed(&sm, &p, 31, &t, &from), 1);
	assert_int_equal(sm.state, LAG_CRIT);
}

static void test_sm_hysteresis(void **state)
{
	struct lag_policy p;
	struct lag_sm sm;
	enum lag_state from;
	double t = 0;
	int changes = 0;

	(void)state;
	lag_policy_init(&p, 5, 30);
	lag_sm_init(&sm, LAG_OK, t);
	/* Hovering at the warn threshold: one transition, no flapping. */
	for (int i = 0; i < 40; i++)
		changes += feed(&sm, &p, i % 2 ? 5.1 : 4.9, &t, &from);
	assert_int_equal(changes, 1);
	assert_int_equal(sm.state, LAG_WARN);
	/* Hovering around 0.8 x warn (4.0) does not leave warn either: a
	 * reading at or above it breaks the run of better ones. */
	changes = 0;
	for (int i = 0; i < 40; i++)
		changes += feed(&sm, &p, i % 2 ? 4.1 : 3.9, &t, &from);
	assert_int_equal(changes, 0);
	assert_int_equal(sm.state, LAG_WARN);
	/* Two in a row below it do. */
	assert_int_equal(feed(&sm, &p, 3.9, &t, &from), 0);
	assert_int_equal(feed(&sm, &p, 3.8, &t, &from), 1);
	assert_int_equal(sm.state, LAG_OK);

	/* Same at the crit threshold. */
	lag_sm_init(&sm, LAG_WARN, t);
	changes = 0;
	for (int i = 0; i < 40; i++)
		changes += feed(&sm, &p, i % 2 ? 29.9 : 30.1, &t, &from);
	assert_int_equal(changes, 1);
	assert_int_equal(sm.state, LAG_CRIT);
	/* Below 24 (0.8 x crit) but above warn: crit -> warn. */
	assert_int_equal(feed(&sm, &p, 20, &t, &from), 0);
	assert_int_equal(feed(&sm, &p, 20, &t, &from), 1);
	assert_int_equal(from, LAG_CRIT);
	assert_int_equal(sm.state, LAG_WARN);
}

static void test_sm_recover_run(void **state)
{
	struct lag_policy p;
	struct lag_sm sm;
	enum lag_state from;
	double t = 0;

	(void)state;
	lag_policy_init(&p, 5, 30);
	lag_sm_init(&sm, LAG_CRIT, t);
	/* A lag falling through the warn band: one event, crit -> ok. */
	assert_int_equal(feed(&sm, &p, 10, &t, &from), 0);
	assert_int_equal(feed(&sm, &p, 0, &t, &from), 1);
	assert_int_equal(from, LAG_CRIT);
	assert_int_equal(sm.state, LAG_OK);
	/* Better readings ending in the warn band: crit -> warn. */
	lag_sm_init(&sm, LAG_CRIT, t);
	assert_int_equal(feed(&sm, &p, 0, &t, &from), 0);
	assert_int_equal(feed(&sm, &p, 10, &t, &from), 1);
	assert_int_equal(sm.state, LAG_WARN);
	/* The pending run is cleared by a reading at the current level. */
	lag_sm_init(&sm, LAG_CRIT, t);
	assert_int_equal(feed(&sm, &p, 0, &t, &from), 0);
	assert_int_equal(feed(&sm, &p, 29, &t, &from), 0);
	assert_int_equal(sm.pending, LAG_UNKNOWN);
	assert_int_equal(feed(&sm, &p, 0, &t, &from), 0);
	assert_int_equal(sm.state, LAG_CRIT);
}

static void test_sm_down_and_broken(void **state)
{
	struct lag_policy p;
	struct lag_sm sm;
	enum lag_state from;
	double t = 0;

	(void)state;
	lag_policy_init(&p, 5, 30);
	lag_sm_init(&sm, LAG_OK, t);
	/* One failed reading is not down. */
	assert_int_equal(feed_kind(&sm, &p, LAG_V_DOWN, &t, &from), 0);
	assert_int_equal(sm.state, LAG_OK);
	assert_int_equal(sm.pending, LAG_DOWN);
	assert_int_equal(feed(&sm, &p, 0.1, &t, &from), 0);
	assert_int_equal(sm.pending, LAG_UNKNOWN);
	assert_int_equal(feed_kind(&sm, &p, LAG_V_DOWN, &t, &from), 0);
	/* Two in a row are. */
	assert_int_equal(feed_kind(&sm, &p, LAG_V_DOWN, &t, &from), 1);
	assert_int_equal(from, LAG_OK);
	assert_int_equal(sm.state, LAG_DOWN);
	/* Back with a large lag: down -> crit after two readings. */
	assert_int_equal(feed(&sm, &p, 40, &t, &from), 0);
	assert_int_equal(feed(&sm, &p, 41, &t, &from), 1);
	assert_int_equal(from, LAG_DOWN);
	assert_int_equal(sm.state, LAG_CRIT);

	/* Broken at once, and "no verdict" keeps whatever the state is. */
	assert_int_equal(feed_kind(&sm, &p, LAG_V_BROKEN, &t, &from), 1);
	assert_int_equal(sm.state, LAG_BROKEN);
	assert_int_equal(feed_kind(&sm, &p, LAG_V_NONE, &t, &from), 0);
	assert_int_equal(sm.state, LAG_BROKEN);
	/* Down while broken needs two readings too. */
	assert_int_equal(feed_kind(&sm, &p, LAG_V_DOWN, &t, &from), 0);
	assert_int_equal(feed_kind(&sm, &p, LAG_V_DOWN, &t, &from), 1);
	assert_int_equal(sm.state, LAG_DOWN);
	/* Recovery to ok, with the event. */
	assert_int_equal(feed(&sm, &p, 0, &t, &from), 0);
	assert_int_equal(feed(&sm, &p, 0, &t, &from), 1);
	assert_int_equal(from, LAG_DOWN);
	assert_int_equal(sm.state, LAG_OK);

	/* One-shot policy: down at once. */
	p.down_readings = 1;
	lag_sm_init(&sm, LAG_UNKNOWN, t);
	assert_int_equal(feed_kind(&sm, &p, LAG_V_DOWN, &t, &from), 1);
	assert_int_equal(sm.state, LAG_DOWN);
	/* Unknown and no verdict: nothing happens. */
	lag_sm_init(&sm, LAG_UNKNOWN, t);
	assert_int_equal(feed_kind(&sm, &p, LAG_V_NONE, &t, &from), 0);
	assert_int_equal(sm.state, LAG_UNKNOWN);
}

/* A replica whose SQL thread is stopped as in the integration test: the
 * growing figure walks ok -> warn -> crit, then START SLAVE brings it back,
 * with exactly four events and no flapping. */
static void test_sm_stop_start_scenario(void **state)
{
	struct lag_policy p;
	struct lag_sm sm;
	enum lag_state from, seen[8];
	double t = 0;
	int n = 0;

	(void)state;
	lag_policy_init(&p, 1, 2);
	lag_sm_init(&sm, LAG_UNKNOWN, t);
	for (int i = 0; i < 8; i++)
		if (feed(&sm, &p, 0, &t, &from))
			seen[n++] = sm.state;
	for (double lag = 0; lag < 5; lag += 0.25)
		if (feed(&sm, &p, lag, &t, &from))
			seen[n++] = sm.state;
	for (int i = 0; i < 8; i++)
		if (feed(&sm, &p, i == 0 ? 3 : 0, &t, &from))
			seen[n++] = sm.state;
	assert_int_equal(n, 4);
	assert_int_equal(seen[0], LAG_OK);
	assert_int_equal(seen[1], LAG_WARN);
	assert_int_equal(seen[2], LAG_CRIT);
	assert_int_equal(seen[3], LAG_OK);
}

/* ---- aggregation and the written run ------------------------------------- */

static void test_agg(void **state)
{
	struct lag_agg a;
	struct lag_sample s;

	(void)state;
	lag_agg_init(&a);
	assert_false(lag_agg_flush(&a, 500, &s));
	assert_false(lag_agg_add(&a, 100.1, true, 1.0, LAG_OK, &s));
	assert_false(lag_agg_add(&a, 100.4, true, 3.0, LAG_WARN, &s));
	assert_false(lag_agg_add(&a, 100.7, false, NAN, LAG_OK, &s));
	assert_false(lag_agg_flush(&a, 100.9, &s));
	/* The next second closes the previous one. */
	assert_true(lag_agg_add(&a, 101.0, true, 0.5, LAG_OK, &s));
	assert_float_equal(s.ts, 100, 1e-9);
	assert_int_equal(s.resolution_s, 1);
	assert_true(s.have_lag);
	assert_float_equal(s.lag_s, 2.0, 1e-9);
	assert_float_equal(s.lag_max_s, 3.0, 1e-9);
	assert_int_equal(s.state, LAG_WARN);
	/* A second without any figure. */
	assert_false(lag_agg_add(&a, 101.5, true, 0.5, LAG_OK, &s));
	assert_true(lag_agg_add(&a, 103.2, false, NAN, LAG_BROKEN, &s));
	assert_float_equal(s.ts, 101, 1e-9);
	assert_float_equal(s.lag_s, 0.5, 1e-9);
	assert_true(lag_agg_flush(&a, 104.0, &s));
	assert_float_equal(s.ts, 103, 1e-9);
	assert_false(s.have_lag);
	assert_int_equal(s.state, LAG_BROKEN);
	assert_false(lag_agg_flush(&a, 105.0, &s));
}

static void test_written(void **state)
{
	struct lag_written w;

	(void)state;
	lag_written_reset(&w);
	assert_float_equal(lag_written_first_unapplied(&w, 5, 0.25), -1, 0);
	lag_written_add(&w, 100.0);
	lag_written_add(&w, 100.25);
	lag_written_add(&w, 100.5);
	assert_float_equal(w.run_start, 100.0, 0);
	/* Has them all: lag 0. */
	assert_float_equal(lag_written_first_unapplied(&w, 100.5, 0.25), 0, 0);
	/* Microsecond rounding of DATETIME(6) does not count. */
	assert_float_equal(lag_written_first_unapplied(&w, 100.499999, 0.25), 0, 0);
	assert_float_equal(lag_written_first_unapplied(&w, 100.25, 0.25), 100.5, 1e-9);
	/* A row from before this run: this run's first one is missing. */
	assert_float_equal(lag_written_first_unapplied(&w, 50, 0.25), 100.0, 1e-9);
	/* Beyond what is kept: one interval after the row. */
	for (int i = 3; i < 200; i++)
		lag_written_add(&w, 100.0 + i * 0.25);
	assert_int_equal(w.n, LAG_WRITTEN_MAX);
	assert_float_equal(w.run_start, 100.0, 0);
	assert_float_equal(lag_written_first_unapplied(&w, 110.0, 0.25), 110.25, 1e-9);
	lag_written_reset(&w);
	assert_float_equal(lag_written_first_unapplied(&w, 110.0, 0.25), -1, 0);
}

static void test_pick_healthiest(void **state)
{
	struct lag_reading r[4];

	(void)state;
	memset(r, 0, sizeof(r));
	for (int i = 0; i < 4; i++)
		snprintf(r[i].cluster, sizeof(r[i].cluster), "%s", i < 3 ? "shop" : "other");
	r[0].state = LAG_BROKEN;
	r[1].state = LAG_WARN;
	r[1].lag_s = 6;
	r[2].state = LAG_WARN;
	r[2].lag_s = 5.5;
	r[3].state = LAG_OK;
	assert_int_equal(lag_pick_healthiest(r, 4, "shop"), 2);
	assert_int_equal(lag_pick_healthiest(r, 4, NULL), 3);
	r[1].state = r[2].state = LAG_DOWN;
	assert_int_equal(lag_pick_healthiest(r, 4, "shop"), -1);
	assert_int_equal(lag_pick_healthiest(r, 0, NULL), -1);
}

/* ---- catalog history ------------------------------------------------------- */

static struct catalog *mem_catalog(void)
{
	struct catalog *c = NULL;
	struct err e;

	err_init(&e);
	if (catalog_open(":memory:", &c, &e) != 0)
		fail_msg("catalog_open: %s", e.msg);
	return c;
}

static struct lag_sample sample(const char *server, double ts, int res,
				bool have, double lag, double max,
				enum lag_state st)
{
	struct lag_sample s;

	memset(&s, 0, sizeof(s));
	snprintf(s.cluster, sizeof(s.cluster), "shop");
	snprintf(s.server, sizeof(s.server), "%s", server);
	s.ts = ts;
	s.resolution_s = res;
	s.have_lag = have;
	s.lag_s = lag;
	s.lag_max_s = max;
	s.state = st;
	return s;
}

static long long count_rows(struct catalog *c, const char *where)
{
	char sql[256];
	sqlite3_stmt *st;
	long long n = -1;

	snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM lag_samples WHERE %s", where);
	assert_int_equal(sqlite3_prepare_v2(catalog_sqlite(c), sql, -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return n;
}

static void test_history_rollup(void **state)
{
	struct catalog *c = mem_catalog();
	struct err e;
	double now = 1800000000.0;   /* a minute boundary */
	double old = now - 2 * 3600; /* rolled up */
	struct lag_sample s[] = {
		/* minute A: ok 1 s, warn 3 s, broken without a figure */
		sample("r1", old + 0, 1, true, 1, 1, LAG_OK),
		sample("r1", old + 1, 1, true, 3, 4, LAG_WARN),
		sample("r1", old + 2, 1, false, NAN, NAN, LAG_BROKEN),
		/* minute B: down only */
		sample("r1", old + 60, 1, false, NAN, NAN, LAG_DOWN),
		/* another server in minute A */
		sample("r2", old + 5, 1, true, 0.5, 0.5, LAG_OK),
		/* recent: stays at 1 s */
		sample("r1", now - 10, 1, true, 0.1, 0.2, LAG_OK),
		/* a second with a state but no figure: nothing to store */
		sample("r1", now - 9, 1, false, NAN, NAN, LAG_OK),
		/* a minute row past 30 days: expires */
		sample("r1", now - 31 * 86400.0, 60, true, 2, 2, LAG_OK),
	};
	struct lag_sample *rows = NULL;
	size_t n = 0;

	(void)state;
	err_init(&e);
	assert_int_equal(lag_history_insert(c, s, sizeof(s) / sizeof(s[0]), &e), 0);
	assert_int_equal(count_rows(c, "1"), 7);
	assert_int_equal(lag_history_rollup(c, now, &e), 0);
	assert_int_equal(count_rows(c, "resolution_s = 1"), 1);
	assert_int_equal(count_rows(c, "resolution_s = 60"), 3);
	assert_int_equal(count_rows(c, "ts < 1700000000"), 0);

	/* The per-minute view merges both resolutions, oldest first. */
	assert_int_equal(lag_history_query(c, "shop", "r1", old - 1, 100, &rows, &n, &e), 0);
	assert_int_equal(n, 3);
	assert_float_equal(rows[0].ts, old, 1e-6);
	assert_true(rows[0].have_lag);
	assert_float_equal(rows[0].lag_s, 2.0, 1e-9);      /* mean of 1 and 3 */
	assert_float_equal(rows[0].lag_max_s, 4.0, 1e-9);
	assert_int_equal(rows[0].state, LAG_BROKEN);         /* worst */
	assert_float_equal(rows[1].ts, old + 60, 1e-6);
	assert_false(rows[1].have_lag);
	assert_int_equal(rows[1].state, LAG_DOWN);           /* stored as unknown */
	assert_float_equal(rows[2].ts, floor((now - 10) / 60) * 60, 1e-6);
	assert_float_equal(rows[2].lag_max_s, 0.2, 1e-9);
	assert_int_equal(rows[2].state, LAG_OK);
	free(rows);

	/* A limit keeps the newest minutes. */
	assert_int_equal(lag_history_query(c, "shop", "r1", old - 1, 1, &rows, &n, &e), 0);
	assert_int_equal(n, 1);
	assert_float_equal(rows[0].ts, floor((now - 10) / 60) * 60, 1e-6);
	free(rows);

	/* Rolling up again changes nothing. */
	assert_int_equal(lag_history_rollup(c, now, &e), 0);
	assert_int_equal(count_rows(c, "1"), 4);
	/* Inside a caller's transaction it joins it. */
	assert_int_equal(catalog_begin(c, &e), 0);
	assert_int_equal(lag_history_insert(c, s, 1, &e), 0);
	assert_int_equal(catalog_rollback(c, &e), 0);
	assert_int_equal(count_rows(c, "1"), 4);
	catalog_close(c);
}

static void test_state_store_load(void **state)
{
	struct catalog *c = mem_catalog();
	struct lag_sm sm, got;
	struct err e;
	bool found = true;

	(void)state;
	err_init(&e);
	assert_int_equal(lag_state_load(c, "shop", "r1", &got, &found, &e), 0);
	assert_false(found);

	lag_sm_init(&sm, LAG_UNKNOWN, 10);
	assert_int_equal(lag_state_store(c, "shop", "r1", &sm, false, NAN, 11, &e), 0);
	assert_int_equal(lag_state_load(c, "shop", "r1", &got, &found, &e), 0);
	assert_false(found);   /* "no verdict" is never stored */

	lag_sm_init(&sm, LAG_CRIT, 100);
	sm.pending = LAG_OK;
	sm.pending_n = 1;
	sm.pending_since = 101;
	assert_int_equal(lag_state_store(c, "shop", "r1", &sm, true, 42.5, 102, &e), 0);
	assert_int_equal(lag_state_load(c, "shop", "r1", &got, &found, &e), 0);
	assert_true(found);
	assert_int_equal(got.state, LAG_CRIT);
	assert_float_equal(got.since, 100, 1e-9);
	assert_int_equal(got.pending, LAG_UNKNOWN);

	lag_sm_init(&sm, LAG_DOWN, 200);
	assert_int_equal(lag_state_store(c, "shop", "r1", &sm, false, INFINITY, 201, &e), 0);
	assert_int_equal(lag_state_load(c, "shop", "r1", &got, &found, &e), 0);
	assert_int_equal(got.state, LAG_DOWN);
	assert_float_equal(got.since, 200, 1e-9);
	catalog_close(c);
}

/* ---- metrics ----------------------------------------------------------------- */

static void test_metrics_format(void **state)
{
	struct buf b;
	struct err e;

	(void)state;
	buf_init(&b, 1 << 20);
	err_init(&e);
	assert_int_equal(metrics_gauge(&b, "backupd_x", "a \\ help\nline",
				       (const char *[]){ "cluster", "a\"b\\c\nd", "server", NULL, NULL },
				       0.1, &e), 0);
	assert_int_equal(metrics_gauge(&b, "backupd_x", "ignored",
				       (const char *[]){ "cluster", "z", NULL }, 3, &e), 0);
	assert_int_equal(metrics_counter(&b, "backupd_runs_total", "runs", NULL, 12345678901.0, &e), 0);
	assert_string_equal(b.data,
		"# HELP backupd_x a \\\\ help\\nline\n"
		"# TYPE backupd_x gauge\n"
		"backupd_x{cluster=\"a\\\"b\\\\c\\nd\",server=\"\"} 0.1\n"
		"backupd_x{cluster=\"z\"} 3\n"
		"# HELP backupd_runs_total runs\n"
		"# TYPE backupd_runs_total counter\n"
		"backupd_runs_total 12345678901\n");

	/* One name, two types; invalid names. */
	assert_int_equal(metrics_counter(&b, "backupd_x", "h", NULL, 1, &e), ERR_INTERNAL);
	err_init(&e);
	assert_int_equal(metrics_gauge(&b, "9bad", "h", NULL, 1, &e), ERR_INTERNAL);
	err_init(&e);
	assert_int_equal(metrics_gauge(&b, "ok_name", "h",
				       (const char *[]){ "bad-label", "v", NULL }, 1, &e),
			 ERR_INTERNAL);
	err_init(&e);
	assert_int_equal(metrics_gauge(&b, "ok_name", "h",
				       (const char *[]){ "__reserved", "v", NULL }, 1, &e),
			 ERR_INTERNAL);

	buf_reset(&b);
	err_init(&e);
	assert_int_equal(metrics_format_value(&b, NAN, &e), 0);
	assert_int_equal(buf_append_char(&b, ' ', &e), 0);
	assert_int_equal(metrics_format_value(&b, INFINITY, &e), 0);
	assert_int_equal(buf_append_char(&b, ' ', &e), 0);
	assert_int_equal(metrics_format_value(&b, -INFINITY, &e), 0);
	assert_int_equal(buf_append_char(&b, ' ', &e), 0);
	assert_int_equal(metrics_format_value(&b, 1.0 / 3.0, &e), 0);
	assert_string_equal(b.data, "NaN +Inf -Inf 0.3333333333333333");
	assert_float_equal(strtod(b.data + 14, NULL), 1.0 / 3.0, 0);
	buf_release(&b);
}

static int interleaved(void *ctx, struct buf *out, struct err *e)
{
	int *calls = ctx;

	(*calls)++;
	/* a, b, a, b: families must come out grouped. */
	for (int i = 0; i < 2; i++) {
		const char *lb[] = { "i", i ? "1" : "0", NULL };
		if (metrics_gauge(out, "fam_a", "A", lb, i, e) ||
		    metrics_gauge(out, "fam_b", "B", lb, i + 10, e))
			return e->code;
	}
	return 0;
}

static int failing(void *ctx, struct buf *out, struct err *e)
{
	(void)ctx;
	(void)out;
	return err_set(e, ERR_INTERNAL, "collector broke");
}

static void test_metrics_render(void **state)
{
	struct buf b;
	struct err e;
	int calls = 0;

	(void)state;
	buf_init(&b, 1 << 20);
	err_init(&e);
	assert_int_equal(metrics_render(interleaved, &calls, &b, &e), 0);
	assert_int_equal(calls, 1);
	assert_string_equal(b.data,
		"# HELP fam_a A\n# TYPE fam_a gauge\n"
		"fam_a{i=\"0\"} 0\nfam_a{i=\"1\"} 1\n"
		"# HELP fam_b B\n# TYPE fam_b gauge\n"
		"fam_b{i=\"0\"} 10\nfam_b{i=\"1\"} 11\n");
	buf_reset(&b);
	assert_int_equal(metrics_render(failing, NULL, &b, &e), ERR_INTERNAL);
	assert_string_equal(e.msg, "collector broke");
	buf_release(&b);
}

static size_t curl_sink(char *p, size_t size, size_t n, void *u)
{
	struct buf *b = u;

	if (buf_append(b, p, size * n, NULL) != 0)
		return 0;
	return size * n;
}

static long http(const char *method, const char *url, struct buf *body,
		 char *ctype, size_t ctype_size)
{
	CURL *c = curl_easy_init();
	long code = 0;
	char *ct = NULL;

	buf_reset(body);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, curl_sink);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, body);
	if (curl_easy_perform(c) == CURLE_OK) {
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
		curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct);
		snprintf(ctype, ctype_size, "%s", ct ? ct : "");
	}
	curl_easy_cleanup(c);
	return code;
}

/* A port that was free a moment ago. */
static unsigned free_port(void)
{
	struct sockaddr_in a;
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	unsigned port;

	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	port = ntohs(a.sin_port);
	close(fd);
	return port;
}

static void test_metrics_http(void **state)
{
	struct metrics *m = NULL, *m2 = NULL;
	struct buf body;
	struct err e;
	char listen[64], url[128], ctype[128];
	int calls = 0;

	(void)state;
	buf_init(&body, 1 << 20);
	err_init(&e);
	snprintf(listen, sizeof(listen), "127.0.0.1:%u", free_port());
	assert_int_equal(metrics_start(listen, interleaved, &calls, &m, &e), 0);
	assert_non_null(m);

	snprintf(url, sizeof(url), "http://%s/metrics", listen);
	assert_int_equal(http("GET", url, &body, ctype, sizeof(ctype)), 200);
	assert_non_null(strstr(ctype, "text/plain; version=0.0.4"));
	assert_non_null(strstr(body.data, "fam_b{i=\"1\"} 11\n"));
	assert_int_equal(calls, 1);
	assert_int_equal(http("POST", url, &body, ctype, sizeof(ctype)), 405);
	snprintf(url, sizeof(url), "http://%s/", listen);
	assert_int_equal(http("GET", url, &body, ctype, sizeof(ctype)), 404);
	snprintf(url, sizeof(url), "http://%s/metricsx", listen);
	assert_int_equal(http("GET", url, &body, ctype, sizeof(ctype)), 404);
	assert_int_equal(calls, 1);

	/* The same port twice: a clear error. */
	assert_int_equal(metrics_start(listen, interleaved, &calls, &m2, &e), ERR_IO);
	assert_null(m2);
	assert_non_null(strstr(e.msg, listen));
	metrics_stop(m);

	/* A failing collector is a 500, not a dead server. */
	err_init(&e);
	snprintf(listen, sizeof(listen), "127.0.0.1:%u", free_port());
	assert_int_equal(metrics_start(listen, failing, NULL, &m, &e), 0);
	snprintf(url, sizeof(url), "http://%s/metrics", listen);
	assert_int_equal(http("GET", url, &body, ctype, sizeof(ctype)), 500);
	metrics_stop(m);

	err_init(&e);
	assert_int_equal(metrics_start("no-port", failing, NULL, &m, &e), ERR_CONFIG);
	metrics_stop(NULL);
	buf_release(&body);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_state_names),
		cmocka_unit_test(test_evaluate_running),
		cmocka_unit_test(test_evaluate_sql_stopped),
		cmocka_unit_test(test_evaluate_broken),
		cmocka_unit_test(test_evaluate_down_and_writer),
		cmocka_unit_test(test_sm_escalate_and_recover),
		cmocka_unit_test(test_sm_hysteresis),
		cmocka_unit_test(test_sm_recover_run),
		cmocka_unit_test(test_sm_down_and_broken),
		cmocka_unit_test(test_sm_stop_start_scenario),
		cmocka_unit_test(test_agg),
		cmocka_unit_test(test_written),
		cmocka_unit_test(test_pick_healthiest),
		cmocka_unit_test(test_history_rollup),
		cmocka_unit_test(test_state_store_load),
		cmocka_unit_test(test_metrics_format),
		cmocka_unit_test(test_metrics_render),
		cmocka_unit_test(test_metrics_http),
	};
	int rc;

	log_setup(LOGL_ERROR, LOG_FORMAT_TEXT);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	curl_global_cleanup();
	return rc;
}
