/* Unit tests for the Slack message formatter (lib/slack.c): every event
 * kind gives a valid Block Kit message with a text fallback, the key
 * figures and what to do; outside text is escaped and cut to Slack's
 * limits; unknown kinds and broken payloads still give a message. Pure:
 * no network. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "buf.h"
#include "catalog.h"
#include "err.h"
#include "slack.h"

/* 2026-11-25T13:18:13Z */
#define T0 1795612693.07

static struct catalog_event mk(const char *cluster, const char *server,
			       const char *kind, const char *severity,
			       const char *payload)
{
	struct catalog_event ev = {
		.id = 42, .created_at = T0, .cluster = (char *)cluster,
		.server = (char *)server, .kind = (char *)kind,
		.severity = (char *)severity, .payload = (char *)payload,
	};
	return ev;
}

static size_t utf8_chars(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			n++;
	return n;
}

/* Every '<' is our own date token, every '&' an entity. */
static void assert_escaped(const char *s)
{
	for (const char *p = s; *p; p++) {
		if (*p == '<') {
			if (strncmp(p, "<!date^", 7) != 0)
				fail_msg("unescaped '<' in: %s", s);
			p = strchr(p, '>');
			assert_non_null(p);
		} else if (*p == '>') {
			fail_msg("unescaped '>' in: %s", s);
		} else if (*p == '&') {
			if (strncmp(p, "&amp;", 5) && strncmp(p, "&lt;", 4) &&
			    strncmp(p, "&gt;", 4))
				fail_msg("unescaped '&' in: %s", s);
		}
	}
}

static void check_text_obj(json_t *t, size_t max)
{
	const char *s;

	assert_true(json_is_object(t));
	s = json_string_value(json_object_get(t, "text"));
	assert_non_null(s);
	assert_true(*s);
	assert_true(utf8_chars(s) <= max);
	assert_escaped(s);
}

/* Checks the shape Slack requires and returns the parsed message; caller
 * json_decrefs. *all gets every text of the message joined (caller frees). */
static json_t *format_ok(const struct catalog_event *ev, char **all)
{
	struct err e;
	char *js = NULL;
	json_t *m, *blocks, *b;
	json_error_t je;
	size_t i;
	struct buf cat;
	char want_id[64];
	bool have_ctx = false;

	err_init(&e);
	assert_int_equal(slack_format_event(ev, SLACK_BLOCKS, &js, &e), 0);
	assert_non_null(js);
	m = json_loads(js, 0, &je);
	if (!m)
		fail_msg("invalid JSON (%s): %s", je.text, js);
	free(js);
	buf_init(&cat, 1 << 20);

	assert_true(json_is_string(json_object_get(m, "text")));
	assert_true(utf8_chars(json_string_value(json_object_get(m, "text"))) <=
		    SLACK_FALLBACK_MAX);
	assert_escaped(json_string_value(json_object_get(m, "text")));
	buf_printf(&cat, NULL, "%s\n", json_string_value(json_object_get(m, "text")));

	blocks = json_object_get(m, "blocks");
	assert_true(json_is_array(blocks));
	assert_true(json_array_size(blocks) >= 3);
	b = json_array_get(blocks, 0);
	assert_string_equal(json_string_value(json_object_get(b, "type")), "header");
	assert_string_equal(json_string_value(json_object_get(
		json_object_get(b, "text"), "type")), "plain_text");
	check_text_obj(json_object_get(b, "text"), SLACK_HEADER_MAX);
	snprintf(want_id, sizeof(want_id), SLACK_BLOCK_ID_PREFIX "%lld",
		 (long long)ev->id);

	json_array_foreach(blocks, i, b) {
		const char *type = json_string_value(json_object_get(b, "type"));
		json_t *f, *x;
		size_t k;

		assert_non_null(type);
		buf_printf(&cat, NULL, "%s\n", json_string_value(json_object_get(
			json_object_get(b, "text"), "text")) ?: "");
		if (strcmp(type, "section") == 0) {
			check_text_obj(json_object_get(b, "text"), SLACK_TEXT_MAX);
			f = json_object_get(b, "fields");
			if (f) {
				assert_true(json_array_size(f) >= 1);
				assert_true(json_array_size(f) <= SLACK_FIELDS_MAX);
			}
			json_array_foreach(f, k, x) {
				check_text_obj(x, SLACK_FIELD_MAX);
				buf_printf(&cat, NULL, "%s\n",
					   json_string_value(json_object_get(x, "text")));
			}
		} else if (strcmp(type, "context") == 0) {
			assert_string_equal(json_string_value(json_object_get(b, "block_id")),
					    want_id);
			json_array_foreach(json_object_get(b, "elements"), k, x) {
				check_text_obj(x, SLACK_TEXT_MAX);
				buf_printf(&cat, NULL, "%s\n",
					   json_string_value(json_object_get(x, "text")));
			}
			have_ctx = true;
		} else if (strcmp(type, "header") != 0) {
			fail_msg("unexpected block type '%s'", type);
		}
	}
	assert_true(have_ctx);
	*all = buf_detach(&cat);
	buf_release(&cat);
	return m;
}

static const char *header_of(json_t *m)
{
	return json_string_value(json_object_get(json_object_get(
		json_array_get(json_object_get(m, "blocks"), 0), "text"), "text"));
}

static const char *fallback_of(json_t *m)
{
	return json_string_value(json_object_get(m, "text"));
}

#define HAS(all, s) do { \
	if (!strstr((all), (s))) \
		fail_msg("'%s' missing from:\n%s", (s), (all)); \
} while (0)
#define HASNT(all, s) do { \
	if (strstr((all), (s))) \
		fail_msg("'%s' unexpected in:\n%s", (s), (all)); \
} while (0)

static void test_snapshot_done(void **state)
{
	struct catalog_event ev = mk("shop", "10.0.0.12:3306", "snapshot.done", "info",
		"{\"id\":\"20261125T0300Z-abc\",\"source\":\"10.0.0.12:3306\","
		"\"bytes_raw\":13207024435,\"bytes_stored\":3328599654,"
		"\"seconds\":252.4,\"tables\":123,\"rows\":4512300,\"freeze_ms\":230.5}");
	char *all;
	json_t *m = format_ok(&ev, &all);

	(void)state;
	HAS(header_of(m), ":white_check_mark:");
	HAS(header_of(m), "Snapshot complete");
	HAS(header_of(m), "shop");
	HAS(all, "`20261125T0300Z-abc`");
	HAS(all, "*3.1 GiB* stored");
	HAS(all, "12.3 GiB raw");
	HAS(all, "ratio 3.97");
	HAS(all, "*4m 12s*");
	HAS(all, "4,512,300");
	HAS(all, "230 ms");
	HAS(all, "<!date^1795612693^");
	HAS(all, "2026-11-25 13:18:13 UTC");
	HAS(fallback_of(m), "3.1 GiB in 4m 12s");
	HAS(fallback_of(m), "10.0.0.12:3306");
	HASNT(all, "What to do");
	/* Every payload key was used: no generic duplicates. */
	HASNT(all, "Bytes raw");
	HASNT(all, "Seconds");
	free(all);
	json_decref(m);
}

static void test_failures_say_what_to_do(void **state)
{
	static const struct { const char *kind, *sev, *payload, *want[3]; } cases[] = {
		{ "snapshot.failed", "error", "{\"id\":\"s1\",\"error\":\"unable to connect to '10.0.0.12:3306'\"}",
		  { "backupctl snapshot --cluster shop", "unable to connect", ":x:" } },
		{ "verify.failed", "error", "{\"id\":\"s1\",\"files\":12,\"files_bad\":2,\"tables_bad\":1,\"error\":\"checksum mismatch\"}",
		  { "backupctl verify s1", "2 of 12 files bad", "1 table" } },
		{ "lag.crit", "crit", "{\"server\":\"10.0.0.12:3306\",\"lag_s\":42.3,\"threshold_s\":30,\"state\":\"crit\"}",
		  { "Check `backupctl lag`", "SQL thread may be stopped", "*42 s* behind" } },
		{ "lag.warn", "warn", "{\"server\":\"10.0.0.12:3306\",\"lag_s\":6.2,\"threshold_s\":5,\"state\":\"warn\"}",
		  { "`backupctl lag`", "warning at 5.0 s", ":warning:" } },
		{ "replica.down", "crit", "{\"error\":\"Can't connect\"}",
		  { "backupctl rebuild 10.0.0.13:3306", "is *down*", ":rotating_light:" } },
		{ "replica.broken", "error", "{\"sql_error\":\"Duplicate entry '1' for key 'PRIMARY'\"}",
		  { "SHOW SLAVE STATUS", "Duplicate entry", "backupctl rebuild" } },
		{ "replica.rebuild_failed", "error", "{\"error\":\"no good snapshot\"}",
		  { "backupctl rebuild 10.0.0.13:3306", "no good snapshot", "failed" } },
		{ "config.reload_failed", "error", "{\"error\":\"config line 3: unknown key 'foo'\"}",
		  { "SIGHUP", "previous one", "unknown key" } },
		{ "drill.failed", "error", "{\"snapshot_id\":\"s9\",\"error\":\"row count 5 != 6\"}",
		  { "backupctl drill", "row count 5 != 6", "`s9`" } },
		{ "cutover.rolled_back", "error", "{\"from\":\"a:1\",\"to\":\"b:2\",\"error\":\"green lag too high\"}",
		  { "`a:1`", "rolled back", "backupctl status" } },
		{ "something.new", "crit", "{\"error\":\"boom\"}",
		  { "backupd log", "boom", ":rotating_light:" } },
		{ "restore.failed", "error", "{\"snapshot\":\"s1\",\"target\":\"h:3308\",\"error\":\"target holds data\"}",
		  { "backupctl restore s1 --target h:3308", "partial load", "could *not* be restored" } },
		{ "prune.failed", "error", "{\"deleted\":1,\"kept\":4,\"failed\":true}",
		  { "backupctl prune --cluster shop --dry-run", "*stopped*", "deleting 1 snapshot, 4 kept" } },
		{ "drill.overdue", "warn", "{\"age_h\":50.5,\"max_age_h\":48,\"last_passed_at\":null}",
		  { "backupctl drill --cluster shop", "for *2d 2h* (at most 2d allowed)", "*Last passed*\nnever" } },
		{ "job.skipped", "warn", "{\"schedule\":\"every5\",\"job\":\"snapshot\",\"reason\":\"overlap\",\"message\":\"still running\"}",
		  { "schedule `every5`", "*skipped*: still running", "previous run was still going" } },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct catalog_event ev = mk("shop", strncmp(cases[i].kind, "replica.", 8) == 0
					     ? "10.0.0.13:3306" : NULL,
					     cases[i].kind, cases[i].sev, cases[i].payload);
		char *all;
		json_t *m = format_ok(&ev, &all);

		HAS(all, ":point_right: *What to do:*");
		for (size_t k = 0; k < 3; k++)
			HAS(all, cases[i].want[k]);
		free(all);
		json_decref(m);
	}
}

static void test_successes(void **state)
{
	static const struct { const char *kind, *payload, *want[3]; } cases[] = {
		{ "verify.ok", "{\"id\":\"s1\",\"files\":12,\"files_bad\":0,\"bytes_read\":1234567,\"seconds\":3.2}",
		  { "every checksum matches", "12 files", "1.2 MiB read" } },
		{ "lag.recovered", "{\"server\":\"10.0.0.12:3306\",\"lag_s\":0.4,\"threshold_s\":5,\"state\":\"ok\"}",
		  { ":large_green_circle:", "caught up", "400 ms" } },
		{ "replica.rebuilt", "{\"server\":\"10.0.0.13:3306\",\"snapshot\":\"s-1\",\"seconds\":725}",
		  { "`s-1`", "12m 05s", "replicates again" } },
		{ "prune.done", "{\"deleted\":[\"s1\",\"s2\",\"s3\"],\"kept\":7}",
		  { "*3* snapshots deleted", "7 kept", "s1, s2, s3" } },
		{ "drill.passed", "{\"snapshot_id\":\"s9\",\"target\":\"10.0.0.20:3306\",\"rto_s\":250,\"rpo_s\":3600}",
		  { "RTO *4m 10s*", "1h 00m", "`10.0.0.20:3306`" } },
		{ "cutover.done", "{\"from\":\"a:1\",\"to\":\"b:2\",\"write_pause_ms\":850}",
		  { "is now `b:2`", "850 ms", "backupctl cutover --to a:1" } },
		{ "digest.daily", "{\"snapshots\":3,\"bytes_stored\":3328599654,\"worst_lag_s\":12.5,\"failures\":0}",
		  { "Daily report", "worst replication lag *12 s*", "3.1 GiB stored" } },
		{ "restore.done", "{\"snapshot\":\"s1\",\"target\":\"h:3308\",\"seconds\":95,\"bytes\":2048,\"as_replica_of\":\"h:3306\"}",
		  { "`s1` of *shop* restored into `h:3308` in *1m 35s*", "replicating from `h:3306`", "*Size*\n2.0 KiB" } },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct catalog_event ev = mk("shop", NULL, cases[i].kind, "info",
					     cases[i].payload);
		char *all;
		json_t *m = format_ok(&ev, &all);

		for (size_t k = 0; k < 3; k++)
			HAS(all, cases[i].want[k]);
		if (strcmp(cases[i].kind, "cutover.done") != 0)
			HASNT(all, "What to do");
		free(all);
		json_decref(m);
	}
}

/* Payloads as backupd/daemon.c writes them: keys repeating the event's
 * cluster and server, the monitor's reason, the previous state. */
static void test_daemon_payloads(void **state)
{
	struct catalog_event lag = mk("shop", "h:3307", "lag.crit", "crit",
		"{\"cluster\":\"shop\",\"server\":\"h:3307\",\"from\":\"warn\","
		"\"state\":\"crit\",\"lag_s\":31.5,\"threshold_s\":30,"
		"\"reason\":\"heartbeat 31.5 s old\"}");
	struct catalog_event broken = mk("shop", "h:3307", "replica.broken", "crit",
		"{\"cluster\":\"shop\",\"server\":\"h:3307\",\"from\":\"ok\","
		"\"state\":\"broken\",\"lag_s\":null,\"threshold_s\":30,"
		"\"reason\":\"SQL thread stopped: Error 1062\"}");
	struct catalog_event reload = mk(NULL, NULL, "config.reload_failed", "error",
		"{\"config\":\"/etc/backupd/backupd.conf\",\"error\":\"line 3: unknown key\"}");
	struct catalog_event digest = mk("shop", NULL, "digest.daily", "info",
		"{\"snapshots\":3,\"snapshots_failed\":1,\"bytes_stored\":3328599654,"
		"\"worst_lag_s\":12.5,\"jobs_failed\":0,\"next_runs\":["
		"{\"schedule\":\"nightly\",\"job\":\"snapshot\",\"at\":1795654800}]}");
	struct catalog_event rebuilt = mk("shop", "h:3307", "replica.rebuilt", "info",
		"{\"server\":\"h:3307\",\"reason\":\"broken\",\"snapshot\":\"s1\","
		"\"seconds\":95.2,\"phases\":{\"load\":80.1,\"attach\":2.3},"
		"\"primary\":\"h:3306\",\"verified\":true}");
	char *all;
	json_t *m;

	(void)state;
	m = format_ok(&lag, &all);
	HAS(all, "*32 s* behind the primary (critical at 30 s)");
	HAS(all, "_heartbeat 31.5 s old_");
	HASNT(all, "*Cluster*");
	HASNT(all, "*Server*");
	HASNT(all, "*From*");
	HASNT(all, "State:");
	free(all);
	json_decref(m);

	m = format_ok(&broken, &all);
	HAS(all, "```SQL thread stopped: Error 1062```");
	HAS(fallback_of(m), "SQL thread stopped");
	HASNT(all, "*Lag*");
	HASNT(all, "*Threshold*");
	free(all);
	json_decref(m);

	m = format_ok(&reload, &all);
	HAS(all, "*File*\n`/etc/backupd/backupd.conf`");
	HAS(all, "`backupctl -c /etc/backupd/backupd.conf config check`");
	free(all);
	json_decref(m);

	m = format_ok(&digest, &all);
	HAS(all, "*3* snapshots (*1 failed*), 3.1 GiB stored; worst replication "
	    "lag *12 s*; no failed jobs.");
	HAS(all, "\xe2\x80\xa2 <!date^1795654800^");
	HAS(all, "`nightly` (snapshot)");
	HAS(fallback_of(m), "3 snapshots (1 failed), worst lag 12 s");
	HASNT(all, "schedule: nightly");   /* a list, not a generic field */
	free(all);
	json_decref(m);

	m = format_ok(&rebuilt, &all);
	HAS(all, "replicates again from `h:3306`");
	HAS(all, "*Why*\nbroken");
	HAS(all, "load: 1m 20s, attach: 2.3 s");
	free(all);
	json_decref(m);
}

static void test_lag_unbounded(void **state)
{
	struct catalog_event ev = mk("shop", NULL, "lag.crit", "crit",
		"{\"server\":\"10.0.0.12:3306\",\"lag_s\":null,\"threshold_s\":30,\"state\":\"broken\"}");
	char *all;
	json_t *m = format_ok(&ev, &all);

	(void)state;
	HAS(all, "*unbounded*");
	HAS(fallback_of(m), "unbounded");
	HAS(fallback_of(m), "10.0.0.12:3306");
	HASNT(all, " 0 ms");
	free(all);
	json_decref(m);
}

static void test_escaping(void **state)
{
	struct catalog_event ev = mk("a&b<c>", "<@U123>", "snapshot.failed", "error",
		"{\"id\":\"<!channel>\",\"error\":\"<!here> & <http://evil|click> `x` ``` done\"}");
	char *all;
	json_t *m = format_ok(&ev, &all);

	(void)state;
	HAS(all, "a&amp;b&lt;c&gt;");
	HAS(all, "&lt;!channel&gt;");
	HAS(all, "&lt;!here&gt; &amp; &lt;http://evil|click&gt;");
	HASNT(all, "<!channel>");
	HASNT(all, "<!here>");
	HASNT(all, "<@U123>");
	/* Inside the error's code block no backtick of the error survives. */
	HAS(all, "```&lt;!here&gt; &amp; &lt;http://evil|click&gt; 'x' ''' done```");
	free(all);
	json_decref(m);
}

static void test_unknown_kind(void **state)
{
	struct catalog_event ev = mk(NULL, NULL, "daemon.start", "info",
		"{\"version\":\"0.1\",\"pid\":123,\"started_at\":1795612693,"
		"\"list\":[1,2,3,4,5,6,7],\"obj\":{\"a\":1,\"b_bytes\":2048},"
		"\"ok\":true,\"nothing\":null}");
	char *all;
	json_t *m = format_ok(&ev, &all);

	(void)state;
	HAS(header_of(m), ":information_source: Daemon start");
	HAS(all, "`daemon.start`");
	HAS(all, "*Version*\n0.1");
	HAS(all, "*Pid*\n123");
	HAS(all, "*Started at*\n<!date^1795612693^");
	HAS(all, "1, 2, 3, 4, 5 +2 more");
	HAS(all, "b_bytes: 2.0 KiB");
	HAS(all, "*Ok*\nyes");
	HASNT(all, "What to do");
	free(all);
	json_decref(m);
}

static void test_odd_input(void **state)
{
	static const char *const payloads[] = {
		NULL, "{}", "not json", "[1,2]", "\"str\"", "{\"id\":5,\"error\":7}",
		"{\"bytes_stored\":\"big\",\"seconds\":-3,\"lag_s\":1e308}",
		"{\"deleted\":{\"x\":1},\"kept\":[]}",
		"{\"next_runs\":[1,{\"at\":\"x\"},null],\"phases\":{\"a\":{\"b\":[1]}},"
		"\"reason\":5,\"config\":[],\"age_h\":\"x\",\"message\":\"\"}",
	};
	static const char *const kinds[] = {
		"snapshot.done", "snapshot.failed", "verify.ok", "verify.failed",
		"lag.warn", "lag.crit", "lag.recovered", "replica.down",
		"replica.broken", "replica.rebuilt", "replica.rebuild_failed",
		"prune.done", "config.reload_failed", "drill.passed",
		"drill.failed", "cutover.started", "cutover.", "digest.daily",
		"restore.done", "restore.failed", "prune.failed", "drill.overdue",
		"job.skipped", "x", "",
	};

	(void)state;
	for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++)
		for (size_t p = 0; p < sizeof(payloads) / sizeof(payloads[0]); p++) {
			struct catalog_event ev = mk(p % 2 ? "shop" : NULL,
						     p % 3 ? "h:1" : NULL,
						     kinds[k], p % 2 ? "warn" : "bogus",
						     payloads[p]);
			char *all;
			json_t *m = format_ok(&ev, &all);
			free(all);
			json_decref(m);
		}
	{
		struct catalog_event ev = mk("shop", NULL, "snapshot.done", "info", "not json");
		char *all;
		json_t *m = format_ok(&ev, &all);
		HAS(all, "*Payload*\nnot json");
		free(all);
		json_decref(m);
	}
}

static void test_limits(void **state)
{
	struct buf pl, cl;
	char *all;
	json_t *m, *sec;
	const char *t;
	size_t ticks = 0;
	struct catalog_event ev;

	(void)state;
	buf_init(&pl, 1 << 20);
	buf_init(&cl, 1 << 20);
	for (int i = 0; i < 400; i++)
		buf_append_str(&cl, "cluster&", NULL);
	buf_append_str(&pl, "{\"error\":\"", NULL);
	for (int i = 0; i < 2000; i++)
		buf_append_str(&pl, "\\u00e9rr<>& ", NULL);
	buf_append_str(&pl, "\"", NULL);
	for (int i = 0; i < 40; i++)
		buf_printf(&pl, NULL, ",\"key_%d\":%d", i, i);
	buf_append_str(&pl, "}", NULL);
	ev = mk(cl.data, cl.data, "snapshot.failed", "error", pl.data);
	m = format_ok(&ev, &all);   /* checks every limit */
	sec = json_array_get(json_object_get(m, "blocks"), 1);
	t = json_string_value(json_object_get(json_object_get(sec, "text"), "text"));
	for (const char *p = t; (p = strstr(p, "```")) != NULL; p += 3)
		ticks++;
	assert_int_equal(ticks % 2, 0);   /* the cut error's code block is closed */
	HAS(t, "\xe2\x80\xa6```");
	assert_int_equal(json_array_size(json_object_get(sec, "fields")), SLACK_FIELDS_MAX);
	HAS(all, "*Key 29:* 29");        /* past the field limit: a section */
	HASNT(all, "Key 30");            /* ... of bounded length */
	free(all);
	json_decref(m);
	buf_release(&pl);
	buf_release(&cl);
}

static void test_invalid_utf8(void **state)
{
	struct catalog_event ev = mk("sh\xffop", "h\xc3:1", "x.y", "info", "{}");
	char *all;
	json_t *m = format_ok(&ev, &all);

	(void)state;
	HAS(header_of(m), "sh\xef\xbf\xbdop");
	free(all);
	json_decref(m);
}

static void test_text_only(void **state)
{
	struct catalog_event ev = mk("shop", NULL, "lag.crit", "crit",
		"{\"server\":\"10.0.0.12:3306\",\"lag_s\":42,\"threshold_s\":30}");
	struct err e;
	char *js;
	json_t *m;

	(void)state;
	err_init(&e);
	assert_int_equal(slack_format_event(&ev, SLACK_TEXT_ONLY, &js, &e), 0);
	m = json_loads(js, 0, NULL);
	assert_non_null(m);
	assert_null(json_object_get(m, "blocks"));
	HAS(fallback_of(m), ":rotating_light: *Replication lag critical*");
	HAS(fallback_of(m), "lag 42 s");
	HAS(fallback_of(m), "backupctl lag");
	free(js);
	json_decref(m);
}

static void test_escape_fn(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b, 1024);
	assert_int_equal(slack_escape(&b, "a&b<c>d\x01" "e\n\tf", 0, NULL), 0);
	assert_string_equal(b.data, "a&amp;b&lt;c&gt;d e\n\tf");
	buf_reset(&b);
	assert_int_equal(slack_escape(&b, "\xc3\xa9\xc3\xa9\xc3\xa9xyz", 3, NULL), 0);
	assert_string_equal(b.data, "\xc3\xa9\xc3\xa9\xc3\xa9\xe2\x80\xa6");
	buf_reset(&b);
	assert_int_equal(slack_escape(&b, "\xed\xa0\x80|\xc0\xaf", 0, NULL), 0);
	assert_string_equal(b.data, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd|"
				    "\xef\xbf\xbd\xef\xbf\xbd");
	buf_reset(&b);
	assert_int_equal(slack_escape(&b, NULL, 0, NULL), 0);
	assert_string_equal(b.data, "");
	buf_release(&b);
}

static void test_human(void **state)
{
	static const struct { double v; const char *bytes, *dur; } cases[] = {
		{ 0, "0 B", "0 ms" },
		{ 0.85, "1 B", "850 ms" },
		{ 1023, "1023 B", "17m 03s" },
		{ 1536, "1.5 KiB", "25m 36s" },
		{ 9.94, "10 B", "9.9 s" },
		{ 42, "42 B", "42 s" },
		{ 252.4, "252 B", "4m 12s" },
		{ 3600, "3.5 KiB", "1h 00m" },
		{ 172800, "169 KiB", "2d" },
		{ 7500, "7.3 KiB", "2h 05m" },
		{ 3328599654.0, "3.1 GiB", "38525d 11h" },
		{ 1099511627776.0 * 150, "150 TiB", "1908874353d 18h" },
		{ -1, "?", "?" },
	};
	char out[32];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		slack_human_bytes(cases[i].v, out, sizeof(out));
		assert_string_equal(out, cases[i].bytes);
		slack_human_duration(cases[i].v, out, sizeof(out));
		assert_string_equal(out, cases[i].dur);
	}
	slack_human_bytes(1e30, out, 8);  /* truncates, terminates */
	assert_true(strlen(out) < 8);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_snapshot_done),
		cmocka_unit_test(test_failures_say_what_to_do),
		cmocka_unit_test(test_successes),
		cmocka_unit_test(test_daemon_payloads),
		cmocka_unit_test(test_lag_unbounded),
		cmocka_unit_test(test_escaping),
		cmocka_unit_test(test_unknown_kind),
		cmocka_unit_test(test_odd_input),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_invalid_utf8),
		cmocka_unit_test(test_text_only),
		cmocka_unit_test(test_escape_fn),
		cmocka_unit_test(test_human),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
