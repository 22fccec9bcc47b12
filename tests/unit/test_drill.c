/* Unit tests for the DR drill module's catalog side, without servers: the
 * history (drill_list), the overdue alert (drill_check_overdue: once per
 * period), the Prometheus lines (drill_metrics), and drill_run's records
 * for drills that fail before touching a server (no snapshot, a target that
 * is another cluster's primary) or are never started (no drill_target, a
 * drill already running, a malformed id). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "catalog.h"
#include "config.h"
#include "drill.h"
#include "err.h"
#include "log.h"
#include "verify.h"

#define NOW 1795608000.0
#define H 3600.0

static char tmpdir[128];

static int rm_entry(const char *p, const struct stat *st, int flag,
		    struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(p);
}

static int group_setup(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_drill.XXXXXX");
	if (!mkdtemp(tmpdir))
		return -1;
	log_setup(LOGL_ERROR, LOG_FORMAT_TEXT);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	return nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* shop drills into other's primary on purpose (the config allows it: only
 * the drill refuses it); quiet has no drill_target. */
static struct config *load_config(const char *shop_target)
{
	char path[256], body[2048];
	struct config *c = NULL;
	struct err e;
	int fd, n;

	snprintf(path, sizeof(path), "%s/backupd.conf", tmpdir);
	n = snprintf(body, sizeof(body),
		     "[backupd]\n"
		     "catalog = %s/catalog.db\n"
		     "repository = %s/repo\n"
		     "[cluster shop]\n"
		     "primary = 127.0.0.1:1\n"
		     "user = backupd\n"
		     "password = x\n"
		     "drill_target = %s\n"
		     "drill_max_age_h = 48\n"
		     "[cluster other]\n"
		     "primary = 127.0.0.1:2\n"
		     "user = backupd\n"
		     "password = x\n"
		     "drill_target = 127.0.0.1:4\n"
		     "[cluster quiet]\n"
		     "primary = 127.0.0.1:5\n"
		     "user = backupd\n"
		     "password = x\n",
		     tmpdir, tmpdir, shop_target);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, body, (size_t)n), n);
	close(fd);
	err_init(&e);
	if (config_load(path, &c, &e) != 0)
		print_message("config: %s\n", e.msg);
	assert_non_null(c);
	return c;
}

static struct catalog *open_cat(void)
{
	struct catalog *cat = NULL;
	struct err e;

	err_init(&e);
	assert_int_equal(catalog_open(":memory:", &cat, &e), 0);
	return cat;
}

static void exec(struct catalog *cat, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void exec(struct catalog *cat, const char *fmt, ...)
{
	struct buf b;
	struct err e;
	va_list ap;

	buf_init(&b, 1 << 16);
	va_start(ap, fmt);
	assert_int_equal(buf_vprintf(&b, NULL, fmt, ap), 0);
	va_end(ap);
	err_init(&e);
	if (catalog_exec(cat, b.data, &e) != 0)
		print_message("sql: %s\n", e.msg);
	assert_int_equal(e.code, 0);
	buf_release(&b);
}

static long long count(struct catalog *cat, const char *sql)
{
	sqlite3_stmt *st = NULL;
	long long n;

	assert_int_equal(sqlite3_prepare_v2(catalog_sqlite(cat), sql, -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return n;
}

static void text(struct catalog *cat, const char *sql, char *out, size_t n)
{
	sqlite3_stmt *st = NULL;
	const unsigned char *s;

	assert_int_equal(sqlite3_prepare_v2(catalog_sqlite(cat), sql, -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	s = sqlite3_column_text(st, 0);
	str_copy(out, n, s ? (const char *)s : "(null)");
	sqlite3_finalize(st);
}

static void test_list(void **state)
{
	struct catalog *cat = open_cat();
	struct drill_row *rows = NULL;
	size_t n = 0;
	struct err e;

	(void)state;
	err_init(&e);
	exec(cat, "INSERT INTO clusters VALUES ('shop', 1), ('other', 1)");
	exec(cat, "INSERT INTO drills (cluster, snapshot_id, target, started_at, finished_at, "
		  "rto_s, rpo_s, bytes, phases, result, reason) VALUES "
		  "('shop', 'a', 't:1', 30, 31, 1.5, 60, 100, '[{\"name\":\"pick\"}]', 'ok', NULL),"
		  "('shop', 'b', 't:1', 10, 12, NULL, NULL, NULL, '[]', 'failed', 'verify: bad'),"
		  "('other', 'c', 't:2', 20, NULL, NULL, NULL, NULL, '[]', 'running', NULL)");
	assert_int_equal(drill_list(cat, NULL, 0, &rows, &n, &e), 0);
	assert_int_equal(n, 3);
	assert_string_equal(rows[0].snapshot_id, "b");     /* oldest first */
	assert_string_equal(rows[2].snapshot_id, "a");
	assert_true(fabs(rows[2].rto_s - 1.5) < 1e-9);
	assert_int_equal(rows[2].bytes, 100);
	assert_int_equal(rows[2].job_id, -1);
	assert_true(rows[0].rto_s < 0);
	assert_int_equal(rows[0].bytes, -1);
	assert_string_equal(rows[0].reason, "verify: bad");
	assert_null(rows[2].reason);
	assert_true(rows[1].finished_at == 0);
	drill_row_free_list(rows, n);

	assert_int_equal(drill_list(cat, "shop", 1, &rows, &n, &e), 0);
	assert_int_equal(n, 1);                             /* the newest one */
	assert_string_equal(rows[0].snapshot_id, "a");
	drill_row_free_list(rows, n);
	catalog_close(cat);
}

static void test_overdue(void **state)
{
	struct config *cfg = load_config("127.0.0.1:3");
	struct catalog *cat = open_cat();
	struct err e;
	int n = -1;

	(void)state;
	err_init(&e);
	/* Clusters new to the catalog: nothing is overdue yet. */
	assert_int_equal(drill_check_overdue(cfg, cat, NOW, &n, &e), 0);
	assert_int_equal(n, 0);
	/* shop seen 50 h ago and never drilled: overdue (quiet has no
	 * target and never alerts). */
	exec(cat, "UPDATE clusters SET created_at = %f", NOW - 50 * H);
	assert_int_equal(drill_check_overdue(cfg, cat, NOW + 1, &n, &e), 0);
	assert_int_equal(n, 2);
	assert_int_equal(count(cat, "SELECT COUNT(*) FROM events WHERE kind = 'drill.overdue' "
				    "AND cluster = 'shop' AND severity = 'warn'"), 1);
	assert_int_equal(count(cat, "SELECT COUNT(*) FROM events WHERE cluster = 'quiet'"), 0);
	/* Once per period. */
	assert_int_equal(drill_check_overdue(cfg, cat, NOW + 2 * H, &n, &e), 0);
	assert_int_equal(n, 0);
	assert_int_equal(drill_check_overdue(cfg, cat, NOW + 49 * H, &n, &e), 0);
	assert_int_equal(n, 2);
	/* A passing drill: shop is fine until it is 48 h old; other stays overdue
	 * but was just alerted. */
	exec(cat, "INSERT INTO drills (cluster, target, started_at, finished_at, rto_s, result) "
		  "VALUES ('shop', '127.0.0.1:3', %f, %f, 3, 'ok')", NOW + 49 * H, NOW + 50 * H);
	assert_int_equal(drill_check_overdue(cfg, cat, NOW + 60 * H, &n, &e), 0);
	assert_int_equal(n, 0);
	/* A failed drill does not reset the clock. */
	exec(cat, "INSERT INTO drills (cluster, target, started_at, finished_at, result, reason) "
		  "VALUES ('shop', '127.0.0.1:3', %f, %f, 'failed', 'x')", NOW + 90 * H, NOW + 90 * H);
	assert_int_equal(drill_check_overdue(cfg, cat, NOW + 99 * H, &n, &e), 0);
	assert_int_equal(n, 2);
	{
		char p[512];

		text(cat, "SELECT payload FROM events WHERE kind = 'drill.overdue' AND cluster = 'shop' "
			  "ORDER BY id DESC LIMIT 1", p, sizeof(p));
		assert_non_null(strstr(p, "\"last_result\":\"failed\""));
		assert_non_null(strstr(p, "\"max_age_h\":48"));
		assert_non_null(strstr(p, "\"age_h\":49"));
	}
	/* NULL counter is fine. */
	assert_int_equal(drill_check_overdue(cfg, cat, NOW + 99 * H, NULL, &e), 0);
	catalog_close(cat);
	config_free(cfg);
}

static void test_metrics(void **state)
{
	struct config *cfg = load_config("127.0.0.1:3");
	struct catalog *cat = open_cat();
	struct buf b;
	struct err e;
	double now = catalog_now();

	(void)state;
	err_init(&e);
	exec(cat, "INSERT INTO clusters VALUES ('shop', %f), ('other', %f), ('quiet', %f)", now,
	     now, now);
	exec(cat, "INSERT INTO drills (cluster, target, started_at, finished_at, rto_s, rpo_s, result) "
		  "VALUES ('shop', 't', %f, %f, 12.5, 300, 'ok')", now - 100, now - 90);
	exec(cat, "INSERT INTO drills (cluster, target, started_at, finished_at, result, reason) "
		  "VALUES ('shop', 't', %f, %f, 'failed', 'x')", now - 50, now - 40);
	buf_init(&b, 1 << 20);
	assert_int_equal(drill_metrics(cat, cfg, &b, &e), 0);
	/* One HELP/TYPE per family, before its samples. */
	assert_non_null(strstr(b.data, "# HELP backupd_drill_last_success "));
	assert_non_null(strstr(b.data, "# TYPE backupd_drill_last_success gauge\n"
				       "backupd_drill_last_success{cluster=\"shop\"} 0\n"));
	assert_non_null(strstr(b.data, "backupd_drill_last_rto_seconds{cluster=\"shop\"} 12.5\n"));
	assert_non_null(strstr(b.data, "backupd_drill_last_rpo_seconds{cluster=\"shop\"} 300\n"));
	assert_non_null(strstr(b.data, "backupd_drill_overdue{cluster=\"shop\"} 0\n"));
	assert_non_null(strstr(b.data, "backupd_drill_overdue{cluster=\"other\"} 0\n"));
	assert_non_null(strstr(b.data, "backupd_drill_max_age_seconds{cluster=\"shop\"} 172800\n"));
	assert_non_null(strstr(b.data, "backupd_drill_last_age_seconds{cluster=\"shop\"} "));
	/* No drills: no last_* series; no target: no overdue series. */
	assert_null(strstr(b.data, "backupd_drill_last_age_seconds{cluster=\"other\"}"));
	assert_null(strstr(b.data, "cluster=\"quiet\""));
	{
		const char *p = strstr(b.data, "# TYPE backupd_drill_last_success");

		assert_non_null(p);
		assert_null(strstr(p + 1, "# TYPE backupd_drill_last_success"));
	}
	buf_release(&b);
	catalog_close(cat);
	config_free(cfg);
}

static void test_run_not_started(void **state)
{
	struct config *cfg = load_config("127.0.0.1:3");
	struct catalog *cat = open_cat();
	struct drill_report rep;
	struct drill_opts o = { .trigger = "manual" };
	int64_t job;
	struct err e;

	(void)state;
	/* No drill_target. */
	err_init(&e);
	assert_int_equal(drill_run(cfg, config_find_cluster(cfg, "quiet"), cat, NULL, &rep, &e),
			 ERR_CONFIG);
	assert_non_null(strstr(e.msg, "has no drill_target"));
	/* Malformed id: the same check verify makes. */
	err_init(&e);
	o.snapshot_id = "../x";
	assert_int_equal(drill_run(cfg, config_find_cluster(cfg, "shop"), cat, &o, &rep, &e),
			 ERR_USAGE);
	err_init(&e);
	assert_int_equal(snapshot_id_check("../x", &e), ERR_USAGE);
	/* A drill of the cluster already runs. */
	err_init(&e);
	o.snapshot_id = NULL;
	assert_int_equal(catalog_job_start(cat, "drill", "shop", "manual", &job, &e), 0);
	assert_int_equal(drill_run(cfg, config_find_cluster(cfg, "shop"), cat, &o, &rep, &e),
			 ERR_BUSY);
	assert_int_equal(count(cat, "SELECT COUNT(*) FROM drills"), 0);
	assert_int_equal(count(cat, "SELECT COUNT(*) FROM events"), 0);
	catalog_close(cat);
	config_free(cfg);
}

static void test_run_recorded_failures(void **state)
{
	struct config *cfg = load_config("127.0.0.1:2");   /* other's primary */
	struct catalog *cat = open_cat();
	struct drill_report rep;
	struct drill_opts o = { .trigger = "schedule", .schedule = "nightly-drill" };
	char s[1024];
	char *ph;
	struct err e;

	(void)state;
	/* No snapshot at all: failed in phase pick. */
	err_init(&e);
	assert_int_equal(drill_run(cfg, config_find_cluster(cfg, "shop"), cat, &o, &rep, &e),
			 ERR_NOT_FOUND);
	assert_non_null(strstr(e.msg, "drill of 'shop' failed in phase pick: "));
	assert_non_null(strstr(e.msg, "no complete snapshot"));
	assert_false(rep.passed);
	assert_true(rep.drill_id > 0);
	assert_string_equal(rep.failed_phase, "pick");
	text(cat, "SELECT result || '|' || reason || '|' || (rto_s IS NULL) FROM drills", s, sizeof(s));
	assert_string_equal(s, "failed|pick: cluster 'shop' has no complete snapshot to drill|1");
	text(cat, "SELECT status || '|' || triggered_by || '|' || schedule FROM jobs", s, sizeof(s));
	assert_string_equal(s, "failed|schedule|nightly-drill");
	text(cat, "SELECT kind || '|' || severity || '|' || json_extract(payload, '$.phase') "
		  "FROM events", s, sizeof(s));
	assert_string_equal(s, "drill.failed|error|pick");

	/* A named snapshot, but the target is another cluster's primary:
	 * refused before any connection. */
	err_init(&e);
	o.snapshot_id = "20261125T120000Z-abcd";
	assert_int_equal(drill_run(cfg, config_find_cluster(cfg, "shop"), cat, &o, &rep, &e),
			 ERR_REFUSED);
	assert_non_null(strstr(e.msg, "failed in phase target: drill target '127.0.0.1:2' "
				      "is the primary of cluster 'other'"));
	assert_string_equal(rep.snapshot_id, "20261125T120000Z-abcd");
	ph = drill_phases_json(&rep);
	assert_non_null(strstr(ph, "{\"name\":\"target\""));
	assert_non_null(strstr(ph, "\"ok\":false"));
	free(ph);
	text(cat, "SELECT snapshot_id || '|' || json_extract(phases, '$[1].name') || '|' || "
		  "json_extract(phases, '$[1].ok') FROM drills ORDER BY id DESC LIMIT 1", s, sizeof(s));
	assert_string_equal(s, "20261125T120000Z-abcd|target|0");
	text(cat, "SELECT target FROM jobs ORDER BY id DESC LIMIT 1", s, sizeof(s));
	assert_string_equal(s, "20261125T120000Z-abcd");
	assert_int_equal(count(cat, "SELECT COUNT(*) FROM events WHERE kind = 'drill.failed'"), 2);
	assert_int_equal(count(cat, "SELECT COUNT(*) FROM jobs WHERE status = 'running'"), 0);

	/* The catalog's topology counts too. */
	config_free(cfg);
	cfg = load_config("127.0.0.1:9");
	err_init(&e);
	assert_int_equal(catalog_set_primary(cat, "other", "127.0.0.1:9", &e), 0);
	assert_int_equal(drill_run(cfg, config_find_cluster(cfg, "shop"), cat, &o, &rep, &e),
			 ERR_REFUSED);
	assert_non_null(strstr(e.msg, "is the current primary of cluster 'other' (catalog topology)"));
	catalog_close(cat);
	config_free(cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_list),
		cmocka_unit_test(test_overdue),
		cmocka_unit_test(test_metrics),
		cmocka_unit_test(test_run_not_started),
		cmocka_unit_test(test_run_recorded_failures),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
