/* Tests of the Slack sender (lib/notify.c) against the real HTTP sink of
 * tests/env (SINK_URL, SINK_CTL_URL, SINK_LOG from `make test` or from
 * tests/env/up.sh's env.sh; missing ones fail, never skip): retries and
 * Retry-After in order, the 1 message/s limit, exactly once across a stop
 * and a new start, at least once across a SIGKILL, permanent 4xx, the
 * plain-text fallback, timeouts, giving up, and a slow Slack never
 * stalling the producer. Timing checks leave room for a loaded 2-core box
 * and valgrind. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>
#include <sqlite3.h>

#include "catalog.h"
#include "err.h"
#include "log.h"
#include "notify.h"
#include "slack.h"

static char tmp_root[1024];
static int test_no;

struct sink_post {
	double ts;
	int status;
	int64_t event_id;   /* -1: no block_id (plain text) */
	bool has_blocks;
	char *body;
};

/* ---- environment ---- */

static const char *need_env(const char *name)
{
	const char *v = getenv(name);

	if (!v || !*v)
		fail_msg("%s is not set: run under `make test`, or start the test "
			 "environment with tests/env/up.sh DIR and `source "
			 "DIR/env.sh` first", name);
	return v;
}

/* valgrind makes everything ~20x slower: widen the latency bounds. */
static double slow_factor(void)
{
	const char *p = getenv("LD_PRELOAD");

	return p && strstr(p, "vgpreload") ? 10.0 : 1.0;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) != 0)
		;
}

static size_t discard(char *p, size_t s, size_t n, void *u)
{
	(void)p;
	(void)u;
	return s * n;
}

/* POST /_ctl: "reset", "500,429:2,200", "delay:1500". */
static void sink_ctl(const char *cmd)
{
	CURL *c = curl_easy_init();
	long status = 0;
	CURLcode cc;

	assert_non_null(c);
	curl_easy_setopt(c, CURLOPT_URL, need_env("SINK_CTL_URL"));
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, cmd);
	curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
	cc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(c);
	if (cc != CURLE_OK || status != 200)
		fail_msg("sink control '%s' failed: %s, HTTP %ld", cmd,
			 curl_easy_strerror(cc), status);
}

static void sink_free(struct sink_post *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(p[i].body);
	free(p);
}

/* The event id a message carries (context block's block_id). */
static int64_t body_event_id(json_t *msg, bool *has_blocks)
{
	json_t *blocks = json_object_get(msg, "blocks"), *b;
	size_t i;

	*has_blocks = json_is_array(blocks);
	json_array_foreach(blocks, i, b) {
		const char *id = json_string_value(json_object_get(b, "block_id"));
		size_t pl = strlen(SLACK_BLOCK_ID_PREFIX);
		if (id && strncmp(id, SLACK_BLOCK_ID_PREFIX, pl) == 0)
			return strtoll(id + pl, NULL, 10);
	}
	return -1;
}

/* Every POST the sink logged since its last reset. */
static struct sink_post *sink_read(size_t *n)
{
	FILE *f = fopen(need_env("SINK_LOG"), "r");
	struct sink_post *arr = NULL;
	char *line = NULL;
	size_t cap = 0, len = 0;

	*n = 0;
	if (!f)
		return NULL;  /* nothing logged yet */
	while (getline(&line, &cap, f) > 0) {
		json_error_t je;
		json_t *l = json_loads(line, 0, &je), *msg;
		struct sink_post *p;

		if (!l)
			fail_msg("bad sink log line (%s): %s", je.text, line);
		arr = realloc(arr, (len + 1) * sizeof(*arr));
		assert_non_null(arr);
		p = &arr[len++];
		p->ts = json_number_value(json_object_get(l, "ts"));
		p->status = (int)json_integer_value(json_object_get(l, "status"));
		p->body = strdup(json_string_value(json_object_get(l, "body")));
		msg = json_loads(p->body, 0, &je);
		if (!msg)
			fail_msg("the sender posted invalid JSON (%s): %s", je.text, p->body);
		if (!json_is_string(json_object_get(msg, "text")))
			fail_msg("no text fallback in: %s", p->body);
		p->event_id = body_event_id(msg, &p->has_blocks);
		json_decref(msg);
		json_decref(l);
	}
	free(line);
	fclose(f);
	*n = len;
	return arr;
}

static size_t sink_lines(void)
{
	size_t n;
	struct sink_post *p = sink_read(&n);

	sink_free(p, n);
	return n;
}

/* ---- catalog side (the "daemon") ---- */

struct fx {
	char dir[1100];
	char path[PATH_MAX];
	struct catalog *cat;   /* the producer's connection */
};

static int rm_entry(const char *path, const struct stat *sb, int flag,
		    struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

static int setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));
	struct err e;

	err_init(&e);
	snprintf(fx->dir, sizeof(fx->dir), "%s/t%d", tmp_root, ++test_no);
	mkdir(fx->dir, 0700);
	snprintf(fx->path, sizeof(fx->path), "%s/catalog.db", fx->dir);
	if (catalog_open(fx->path, &fx->cat, &e) != 0) {
		fprintf(stderr, "%s\n", e.msg);
		return -1;
	}
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fx *fx = *state;

	catalog_close(fx->cat);
	free(fx);
	return 0;
}

static int64_t add_event(struct fx *fx, const char *kind, const char *sev,
			 const char *payload)
{
	struct err e;
	int64_t id = 0;

	err_init(&e);
	if (catalog_event_add(fx->cat, "shop", "127.0.0.1:3307", kind, sev,
			      payload, &id, &e) != 0)
		fail_msg("%s", e.msg);
	return id;
}

static void add_events(struct fx *fx, int64_t *ids, int n)
{
	for (int i = 0; i < n; i++) {
		char pl[128];
		snprintf(pl, sizeof(pl), "{\"id\":\"snap-%d\",\"bytes_stored\":%d,"
			 "\"seconds\":%d}", i, (i + 1) * 1000000, i + 1);
		ids[i] = add_event(fx, "snapshot.done", "info", pl);
	}
}

static int64_t q_int(struct fx *fx, const char *sql, int64_t arg)
{
	sqlite3_stmt *st;
	int64_t v = -1;

	assert_int_equal(sqlite3_prepare_v2(catalog_sqlite(fx->cat), sql, -1, &st,
					    NULL), SQLITE_OK);
	if (sqlite3_bind_parameter_count(st) > 0)
		sqlite3_bind_int64(st, 1, arg);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

static int64_t pending(struct fx *fx)
{
	return q_int(fx, "SELECT count(*) FROM events WHERE delivery = 'pending'", 0);
}

static int64_t sent_count(struct fx *fx)
{
	return q_int(fx, "SELECT count(*) FROM events WHERE delivery = 'sent'", 0);
}

static int64_t attempts(struct fx *fx, int64_t id)
{
	return q_int(fx, "SELECT attempts FROM events WHERE id = ?", id);
}

/* delivery of an event as text; caller frees. */
static char *ev_text(struct fx *fx, int64_t id, const char *col)
{
	char sql[128];
	sqlite3_stmt *st;
	char *v = NULL;

	snprintf(sql, sizeof(sql), "SELECT %s FROM events WHERE id = ?", col);
	assert_int_equal(sqlite3_prepare_v2(catalog_sqlite(fx->cat), sql, -1, &st,
					    NULL), SQLITE_OK);
	sqlite3_bind_int64(st, 1, id);
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
		v = strdup((const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	return v;
}

/* Polls until pending(fx) <= want or timeout_s passes. */
static void wait_pending(struct fx *fx, int64_t want, double timeout_s)
{
	double end = now_s() + timeout_s * slow_factor();

	while (pending(fx) > want) {
		if (now_s() > end)
			fail_msg("%" PRId64 " events still pending after %.0f s "
				 "(wanted %" PRId64 ")", pending(fx),
				 timeout_s * slow_factor(), want);
		sleep_ms(50);
	}
}

static struct notify *start(struct fx *fx, const struct notify_opts *o)
{
	struct notify *n = NULL;
	struct err e;

	err_init(&e);
	if (notify_start(fx->path, need_env("SINK_URL"), o, &n, &e) != 0)
		fail_msg("notify_start: %s", e.msg);
	return n;
}

static void sink_fresh(const char *script)
{
	sink_ctl("reset");
	if (script)
		sink_ctl(script);
}

/* Each event id has exactly `want` 200-answered posts; ids come in
 * order (a later event never goes before an earlier one is delivered). */
static void check_once_in_order(const struct sink_post *p, size_t n,
				const int64_t *ids, int n_ids)
{
	int64_t prev = 0;

	for (size_t i = 0; i < n; i++) {
		if (p[i].event_id < prev)
			fail_msg("post %zu carries event %" PRId64 " after event "
				 "%" PRId64 ": out of order", i, p[i].event_id, prev);
		prev = p[i].event_id;
	}
	for (int k = 0; k < n_ids; k++) {
		int ok = 0;
		for (size_t i = 0; i < n; i++)
			if (p[i].event_id == ids[k] && p[i].status == 200)
				ok++;
		if (ok != 1)
			fail_msg("event %" PRId64 " was delivered %d times", ids[k], ok);
	}
}

/* ---- tests ---- */

/* The scenario: 500 three times, 429 with Retry-After 2, then 200:
 * every message once, in order, the 429 wait honoured, <= 1 msg/s. */
static void test_retry_429_order(void **state)
{
	struct fx *fx = *state;
	struct notify_opts o = { .backoff_initial_ms = 100, .backoff_max_ms = 400 };
	struct notify_stats st;
	struct sink_post *p;
	struct notify *n;
	int64_t ids[3];
	size_t np;

	sink_fresh("500,500,500,429:2,200");
	add_events(fx, ids, 2);
	n = start(fx, &o);
	sleep_ms(1500);    /* the third event arrives while the first retries */
	ids[2] = add_event(fx, "lag.crit", "crit",
			   "{\"server\":\"127.0.0.1:3307\",\"lag_s\":42,\"threshold_s\":30}");
	notify_wake(n);
	wait_pending(fx, 0, 60);
	notify_get_stats(n, &st);
	assert_int_equal(notify_stop(n, 0), 0);

	p = sink_read(&np);
	assert_int_equal(np, 7);
	for (int i = 0; i < 5; i++)
		assert_int_equal(p[i].event_id, ids[0]);
	assert_int_equal(p[0].status, 500);
	assert_int_equal(p[2].status, 500);
	assert_int_equal(p[3].status, 429);
	assert_int_equal(p[4].status, 200);
	assert_int_equal(p[5].event_id, ids[1]);
	assert_int_equal(p[6].event_id, ids[2]);
	check_once_in_order(p, np, ids, 3);
	/* Retry-After: 2 (the log keeps ms, truncated). */
	if (p[4].ts - p[3].ts < 1.998)
		fail_msg("retry %.3f s after the 429, Retry-After was 2 s",
			 p[4].ts - p[3].ts);
	for (size_t i = 1; i < np; i++)
		if (p[i].ts - p[i - 1].ts < 0.998)
			fail_msg("posts %zu and %zu only %.3f s apart", i - 1, i,
				 p[i].ts - p[i - 1].ts);

	assert_int_equal(attempts(fx, ids[0]), 5);
	assert_int_equal(attempts(fx, ids[1]), 1);
	assert_int_equal(st.sent, 3);
	assert_int_equal(st.failed_attempts, 4);
	assert_int_equal(st.rate_limited, 1);
	assert_int_equal(st.given_up, 0);
	assert_int_equal(st.last_http_status, 200);
	assert_true(st.last_sent_at > 0);
	sink_free(p, np);
}

/* Slack allows 1 message/s per webhook: a burst is spread out. */
static void test_rate_limit(void **state)
{
	struct fx *fx = *state;
	struct sink_post *p;
	struct notify *n;
	int64_t ids[5];
	size_t np;

	sink_fresh(NULL);
	n = start(fx, NULL);
	add_events(fx, ids, 5);
	notify_wake(n);
	wait_pending(fx, 0, 30);
	assert_int_equal(notify_stop(n, 0), 0);
	p = sink_read(&np);
	assert_int_equal(np, 5);
	check_once_in_order(p, np, ids, 5);
	for (size_t i = 1; i < np; i++)
		if (p[i].ts - p[i - 1].ts < 0.998)
			fail_msg("posts %zu and %zu only %.3f s apart", i - 1, i,
				 p[i].ts - p[i - 1].ts);
	sink_free(p, np);
}

/* A stop while messages are pending (one in flight) and a new sender:
 * still every message exactly once, in order. */
static void test_restart_exactly_once(void **state)
{
	struct fx *fx = *state;
	struct notify_opts o = { .min_interval_ms = 100 };
	struct sink_post *p;
	struct notify *n;
	int64_t ids[6];
	size_t np;
	int left;

	sink_fresh("delay:600");
	add_events(fx, ids, 6);
	n = start(fx, &o);
	wait_pending(fx, 4, 30);
	/* Stop mid-POST most likely: the in-flight one is finished. */
	left = notify_stop(n, 0);
	assert_true(left >= 1);
	assert_int_equal(left, pending(fx));
	p = sink_read(&np);
	assert_int_equal((int64_t)np, sent_count(fx));   /* nothing posted unmarked */
	sink_free(p, np);

	n = start(fx, &o);
	wait_pending(fx, 0, 30);
	assert_int_equal(notify_stop(n, 1000), 0);
	p = sink_read(&np);
	assert_int_equal(np, 6);
	check_once_in_order(p, np, ids, 6);
	sink_free(p, np);
}

/* SIGKILL while a POST is in flight: the documented at-least-once window.
 * The in-flight event comes again after the restart (Slack had it), every
 * other one exactly once, order kept. */
static void test_crash_mid_delivery(void **state)
{
	struct fx *fx = *state;
	struct notify_opts o = { .min_interval_ms = 100 };
	struct sink_post *p;
	struct notify *n;
	int64_t ids[3];
	size_t np;
	pid_t pid;
	int status, twice = 0;
	double end;
	struct err e;

	sink_fresh("delay:2000");
	add_events(fx, ids, 3);
	/* No SQLite connection may cross a fork. */
	catalog_close(fx->cat);
	fx->cat = NULL;
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct notify *cn = NULL;
		struct err ce;

		err_init(&ce);
		if (notify_start(fx->path, getenv("SINK_URL"), &o, &cn, &ce) != 0)
			_exit(3);
		for (;;)
			pause();
	}
	end = now_s() + 20 * slow_factor();
	while (sink_lines() < 1) {
		if (now_s() > end) {
			kill(pid, SIGKILL);
			fail_msg("the child sender posted nothing");
		}
		sleep_ms(20);
	}
	kill(pid, SIGKILL);   /* the sink holds the answer for 2 s */
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));

	err_init(&e);
	assert_int_equal(catalog_open(fx->path, &fx->cat, &e), 0);
	assert_int_equal(pending(fx), 3);
	sink_ctl("delay:0");
	n = start(fx, &o);
	wait_pending(fx, 0, 30);
	assert_int_equal(notify_stop(n, 0), 0);

	p = sink_read(&np);
	assert_int_equal(np, 4);
	for (size_t i = 0; i < np; i++) {
		assert_int_equal(p[i].status, 200);
		if (p[i].event_id == ids[0])
			twice++;
	}
	assert_int_equal(twice, 2);
	assert_int_equal(p[0].event_id, ids[0]);
	assert_int_equal(p[1].event_id, ids[0]);
	assert_int_equal(p[2].event_id, ids[1]);
	assert_int_equal(p[3].event_id, ids[2]);
	sink_free(p, np);
}

/* 404 will never succeed: failed after one attempt, the next event goes
 * on; neither the log nor the stored error shows the webhook's path. */
static void test_permanent_404(void **state)
{
	struct fx *fx = *state;
	struct notify_opts o = { .min_interval_ms = 100 };
	struct notify_stats st;
	struct sink_post *p;
	struct notify *n;
	int64_t ids[2];
	size_t np;
	char logpath[PATH_MAX], logtext[8192];
	char *delivery, *last_error;
	int fd;
	ssize_t got;

	snprintf(logpath, sizeof(logpath), "%s/log.txt", fx->dir);
	fd = open(logpath, O_CREAT | O_RDWR | O_TRUNC, 0600);
	assert_true(fd >= 0);
	log_set_fd(fd);
	sink_fresh("404,200");
	add_events(fx, ids, 2);
	n = start(fx, &o);
	wait_pending(fx, 0, 30);
	sleep_ms(800);   /* time for a wrong retry to show up */
	notify_get_stats(n, &st);
	assert_int_equal(notify_stop(n, 0), 0);
	log_set_fd(2);

	p = sink_read(&np);
	assert_int_equal(np, 2);
	assert_int_equal(p[0].status, 404);
	assert_int_equal(p[0].event_id, ids[0]);
	assert_int_equal(p[1].status, 200);
	assert_int_equal(p[1].event_id, ids[1]);
	sink_free(p, np);

	delivery = ev_text(fx, ids[0], "delivery");
	last_error = ev_text(fx, ids[0], "last_error");
	assert_string_equal(delivery, "failed");
	assert_int_equal(attempts(fx, ids[0]), 1);
	assert_non_null(strstr(last_error, "HTTP 404"));
	assert_non_null(strstr(last_error, "'127.0.0.1'"));
	assert_null(strstr(last_error, "/services/"));
	assert_int_equal(st.given_up, 1);
	assert_int_equal(st.sent, 1);
	assert_int_equal(st.last_http_status, 200);
	assert_non_null(strstr(st.last_error, "HTTP 404"));
	free(delivery);
	free(last_error);

	got = pread(fd, logtext, sizeof(logtext) - 1, 0);
	close(fd);
	assert_true(got > 0);
	logtext[got] = '\0';
	assert_non_null(strstr(logtext, "HTTP 404"));
	assert_non_null(strstr(logtext, "the Slack webhook on '127.0.0.1'"));
	assert_null(strstr(logtext, "/services/"));
	assert_null(strstr(logtext, "T000/B000"));
}

/* A 400 (Slack refused our blocks) is retried once as plain text. */
static void test_400_plain_text(void **state)
{
	struct fx *fx = *state;
	struct notify_opts o = { .min_interval_ms = 100 };
	struct sink_post *p;
	struct notify *n;
	int64_t id;
	size_t np;
	char *delivery;

	sink_fresh("400,200");
	id = add_event(fx, "lag.crit", "crit",
		       "{\"server\":\"127.0.0.1:3307\",\"lag_s\":42,\"threshold_s\":30}");
	n = start(fx, &o);
	wait_pending(fx, 0, 30);
	assert_int_equal(notify_stop(n, 0), 0);
	p = sink_read(&np);
	assert_int_equal(np, 2);
	assert_true(p[0].has_blocks);
	assert_int_equal(p[0].event_id, id);
	assert_false(p[1].has_blocks);
	assert_int_equal(p[1].status, 200);
	assert_non_null(strstr(p[1].body, "Replication lag critical"));
	assert_non_null(strstr(p[1].body, "backupctl lag"));
	delivery = ev_text(fx, id, "delivery");
	assert_string_equal(delivery, "sent");
	free(delivery);
	sink_free(p, np);
}

/* A slow Slack (3 s per answer) never stalls the producer: adding an
 * event and waking the sender return at once while a POST hangs. */
static void test_slow_sink_never_stalls(void **state)
{
	struct fx *fx = *state;
	struct notify_opts o = { .min_interval_ms = 100 };
	struct notify_stats st;
	struct notify *n;
	struct sink_post *p;
	int64_t ids[6];
	double end, t0, worst = 0, limit = 0.050 * slow_factor();
	size_t np;
	int left;

	sink_fresh("delay:3000");
	n = start(fx, &o);
	ids[0] = add_event(fx, "snapshot.done", "info", "{\"id\":\"s0\"}");
	notify_wake(n);
	end = now_s() + 10 * slow_factor();
	while (sink_lines() < 1) {   /* a POST is now in flight */
		assert_true(now_s() < end);
		sleep_ms(20);
	}
	for (int i = 1; i < 6; i++) {
		double d;
		t0 = now_s();
		ids[i] = add_event(fx, "lag.warn", "warn",
				   "{\"server\":\"127.0.0.1:3307\",\"lag_s\":6,\"threshold_s\":5}");
		notify_wake(n);
		notify_get_stats(n, &st);
		d = now_s() - t0;
		if (d > worst)
			worst = d;
		sleep_ms(100);
	}
	if (worst > limit)
		fail_msg("catalog_event_add + notify_wake took %.0f ms (limit %.0f ms)",
			 worst * 1000, limit * 1000);
	/* The stop waits for the hanging POST instead of cutting it (a cut
	 * POST Slack may have accepted would be sent again). */
	t0 = now_s();
	left = notify_stop(n, 0);
	assert_true(now_s() - t0 < 5 * slow_factor());
	assert_int_equal(sent_count(fx), 1);
	assert_int_equal(left, 5);

	sink_ctl("delay:0");
	n = start(fx, &o);
	wait_pending(fx, 0, 30);
	assert_int_equal(notify_stop(n, 0), 0);
	p = sink_read(&np);
	assert_int_equal(np, 6);
	check_once_in_order(p, np, ids, 6);
	sink_free(p, np);
}

/* A POST that times out is retried (it may have reached Slack: such a
 * duplicate is the documented at-least-once case). */
static void test_timeout_retries(void **state)
{
	struct fx *fx = *state;
	struct notify_opts o = { .min_interval_ms = 100, .timeout_ms = 400,
				 .backoff_initial_ms = 100, .backoff_max_ms = 200 };
	struct notify_stats st;
	struct notify *n;
	int64_t id;
	double end;

	sink_fresh("delay:2000");
	id = add_event(fx, "snapshot.failed", "error", "{\"error\":\"x\"}");
	n = start(fx, &o);
	end = now_s() + 20 * slow_factor();
	while (sink_lines() < 2) {
		assert_true(now_s() < end);
		sleep_ms(50);
	}
	assert_int_equal(pending(fx), 1);
	sink_ctl("delay:0");
	wait_pending(fx, 0, 30);
	notify_get_stats(n, &st);
	assert_int_equal(notify_stop(n, 0), 0);
	assert_true(st.failed_attempts >= 2);
	assert_int_equal(st.last_http_status, 200);
	assert_true(attempts(fx, id) >= 3);
	assert_int_equal(sent_count(fx), 1);
}

/* An event still failing after give_up_after_s is marked failed and the
 * sender goes quiet. */
static void test_give_up_after_age(void **state)
{
	struct fx *fx = *state;
	struct notify_opts o = { .min_interval_ms = 100, .give_up_after_s = 1,
				 .backoff_initial_ms = 100, .backoff_max_ms = 200 };
	struct notify_stats st;
	struct notify *n;
	int64_t id;
	size_t posts;
	char *delivery, *last_error;

	sink_fresh("503");
	id = add_event(fx, "replica.down", "crit", "{\"error\":\"x\"}");
	n = start(fx, &o);
	wait_pending(fx, 0, 30);
	posts = sink_lines();
	sleep_ms(600);
	assert_int_equal(sink_lines(), posts);
	notify_get_stats(n, &st);
	assert_int_equal(notify_stop(n, 0), 0);
	delivery = ev_text(fx, id, "delivery");
	last_error = ev_text(fx, id, "last_error");
	assert_string_equal(delivery, "failed");
	assert_non_null(strstr(last_error, "HTTP 503"));
	assert_int_equal(st.given_up, 1);
	assert_int_equal(st.pending, 0);
	assert_true(posts >= 2);
	free(delivery);
	free(last_error);
}

/* No webhook listening: retried with backoff, errors name only the host. */
static void test_connection_refused(void **state)
{
	struct fx *fx = *state;
	struct notify_opts o = { .min_interval_ms = 100, .backoff_initial_ms = 100,
				 .backoff_max_ms = 200 };
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sa);
	struct notify_stats st;
	struct notify *n = NULL;
	char url[128];
	struct err e;
	double end;
	int s;

	/* A port nobody listens on: bind, read it back, close. */
	s = socket(AF_INET, SOCK_STREAM, 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(s, (struct sockaddr *)&sa, &sl), 0);
	close(s);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/services/TSECRET/BSECRET/KSECRET",
		 ntohs(sa.sin_port));

	add_event(fx, "snapshot.done", "info", "{}");
	err_init(&e);
	assert_int_equal(notify_start(fx->path, url, &o, &n, &e), 0);
	end = now_s() + 10 * slow_factor();
	do {
		sleep_ms(50);
		notify_get_stats(n, &st);
		assert_true(now_s() < end);
	} while (st.failed_attempts < 3);
	assert_int_equal(notify_stop(n, 0), 1);
	assert_int_equal(st.sent, 0);
	assert_int_equal(st.pending, 1);
	assert_true(st.oldest_pending_at > 0);
	assert_int_equal(st.last_http_status, 0);
	assert_non_null(strstr(st.last_error, "unable to reach the Slack webhook on '127.0.0.1'"));
	assert_null(strstr(st.last_error, "SECRET"));
	assert_int_equal(pending(fx), 1);
}

/* An idle sender (long poll) delivers promptly when woken. */
static void test_wake(void **state)
{
	struct fx *fx = *state;
	struct notify_opts o = { .min_interval_ms = 100, .poll_ms = 60000 };
	struct notify *n;
	double t0;

	sink_fresh(NULL);
	n = start(fx, &o);
	sleep_ms(300);   /* the sender found nothing and sleeps for a minute */
	t0 = now_s();
	add_event(fx, "prune.done", "info", "{\"deleted\":2,\"kept\":7}");
	notify_wake(n);
	wait_pending(fx, 0, 10);
	assert_true(now_s() - t0 < 2 * slow_factor());
	assert_int_equal(notify_stop(n, 0), 0);
	assert_int_equal(sink_lines(), 1);
}

static void test_start_errors(void **state)
{
	struct fx *fx = *state;
	struct notify *n = (struct notify *)1;
	struct notify_stats st;
	struct err e;

	err_init(&e);
	assert_int_equal(notify_start(fx->path, "ftp://h.example/T/B/SECRETX", NULL,
				      &n, &e), ERR_CONFIG);
	assert_null(n);
	assert_null(strstr(e.msg, "SECRETX"));
	assert_null(strstr(e.msg, "h.example"));
	err_init(&e);
	assert_int_equal(notify_start(fx->path, "", NULL, &n, &e), ERR_CONFIG);
	err_init(&e);
	assert_int_equal(notify_start(":memory:", need_env("SINK_URL"), NULL, &n, &e),
			 ERR_INTERNAL);
	err_init(&e);
	assert_int_equal(notify_start("/proc/nonexistent/catalog.db",
				      need_env("SINK_URL"), NULL, &n, &e), ERR_CATALOG);
	assert_null(n);
	/* NULL is a no-op everywhere. */
	notify_wake(NULL);
	notify_get_stats(NULL, &st);
	assert_int_equal(st.sent, 0);
	assert_int_equal(notify_stop(NULL, 0), 0);
}

static int group_setup(void **state)
{
	const char *base = getenv("TMPDIR");

	(void)state;
	snprintf(tmp_root, sizeof(tmp_root), "%s/test_notify.XXXXXX",
		 base && *base ? base : "/tmp");
	if (!mkdtemp(tmp_root))
		return -1;
	log_setup(LOGL_INFO, LOG_FORMAT_TEXT);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	nftw(tmp_root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	log_forget_secrets();
	curl_global_cleanup();
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_start_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_retry_429_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rate_limit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_restart_exactly_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_crash_mid_delivery, setup, teardown),
		cmocka_unit_test_setup_teardown(test_permanent_404, setup, teardown),
		cmocka_unit_test_setup_teardown(test_400_plain_text, setup, teardown),
		cmocka_unit_test_setup_teardown(test_slow_sink_never_stalls, setup, teardown),
		cmocka_unit_test_setup_teardown(test_timeout_retries, setup, teardown),
		cmocka_unit_test_setup_teardown(test_give_up_after_age, setup, teardown),
		cmocka_unit_test_setup_teardown(test_connection_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wake, setup, teardown),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
