/* Unit tests for the HTML report: lag bucketing, loading a catalog
 * (":memory:") with snapshots, drills, lag samples, failures and topology,
 * and the rendered page: self-contained, escaped, and holding every figure
 * as data-* attributes and text. */
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
#include "err.h"
#include "log.h"
#include "report_html.h"

/* 2026-11-25 12:00:00 UTC */
#define NOW 1795608000.0
#define H 3600.0
#define D 86400.0

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
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_report.XXXXXX");
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

static struct config *load_config(void)
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
		     "primary = 10.0.0.11:3306\n"
		     "replicas = 10.0.0.12:3306, 10.0.0.13:3306\n"
		     "user = backupd\n"
		     "password = x\n"
		     "lag_warn_s = 5\n"
		     "lag_crit_s = 30\n"
		     "drill_target = 10.0.0.20:3306\n"
		     "[cluster other]\n"
		     "primary = 10.0.1.11:3306\n"
		     "user = backupd\n"
		     "password = x\n",
		     tmpdir, tmpdir);
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

static void exec(struct catalog *cat, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void exec(struct catalog *cat, const char *fmt, ...)
{
	struct buf b;
	struct err e;
	va_list ap;

	buf_init(&b, 1 << 20);
	va_start(ap, fmt);
	assert_int_equal(buf_vprintf(&b, NULL, fmt, ap), 0);
	va_end(ap);
	err_init(&e);
	if (catalog_exec(cat, b.data, &e) != 0)
		print_message("sql: %s\n", e.msg);
	assert_int_equal(e.code, 0);
	buf_release(&b);
}

/* A catalog with what an on-call engineer would look at. */
static struct catalog *fill_catalog(void)
{
	struct catalog *cat = NULL;
	struct err e;

	err_init(&e);
	assert_int_equal(catalog_open(":memory:", &cat, &e), 0);
	exec(cat, "INSERT INTO clusters VALUES ('shop', %f), ('other', %f)", NOW - 40 * D,
	     NOW - 40 * D);
	/* Two complete snapshots yesterday, one today, a failed one today and
	 * one older than the window. */
	exec(cat, "INSERT INTO snapshots (id, cluster, status, started_at, finished_at, "
		  "bytes_raw, bytes_stored, verify_status) VALUES "
		  "('s1', 'shop', 'complete', %f, %f, 1000000, 250000, 'ok'),"
		  "('s2', 'shop', 'complete', %f, %f, 3000000, 750000, NULL),"
		  "('s3', 'shop', 'complete', %f, %f, 5000000, 1250000, 'ok'),"
		  "('s0', 'shop', 'complete', %f, %f, 9, 9, NULL)",
	     NOW - D - 2 * H, NOW - D - 2 * H + 40, NOW - D - H, NOW - D - H + 65.5,
	     NOW - 3 * H, NOW - 3 * H + 12.25, NOW - 90 * D, NOW - 90 * D + 1);
	exec(cat, "INSERT INTO jobs (id, kind, cluster, triggered_by, status, started_at, "
		  "finished_at, error_code, error_message) VALUES "
		  "(7, 'snapshot', 'shop', 'schedule', 'failed', %f, %f, -7, "
		  "'unable to write <script>alert(1)</script> on nfs')",
	     NOW - 2 * H, NOW - 2 * H + 5);
	exec(cat, "INSERT INTO snapshots (id, cluster, status, reason, job_id, started_at, "
		  "finished_at) VALUES ('s4', 'shop', 'failed', 'nfs went away', 7, %f, %f)",
	     NOW - 2 * H, NOW - 2 * H + 5);
	/* Drills: two passes, one failure (with its job), one of another
	 * cluster. */
	exec(cat, "INSERT INTO jobs (id, kind, cluster, triggered_by, target, status, "
		  "started_at, finished_at, error_code, error_message) VALUES "
		  "(8, 'drill', 'shop', 'schedule', 's3', 'failed', %f, %f, -10, "
		  "'drill of ''shop'' failed in phase verify: ...')",
	     NOW - H, NOW - H + 2);
	exec(cat, "INSERT INTO drills (id, job_id, cluster, snapshot_id, target, started_at, "
		  "finished_at, rto_s, rpo_s, bytes, result, reason) VALUES "
		  "(1, NULL, 'shop', 's1', '10.0.0.20:3306', %f, %f, 41.5, 600, 1000000, 'ok', NULL),"
		  "(2, NULL, 'shop', 's2', '10.0.0.20:3306', %f, %f, 63.25, 1200, 3000000, 'ok', NULL),"
		  "(3, 8, 'shop', 's3', '10.0.0.20:3306', %f, %f, NULL, 7200, NULL, 'failed', "
		  "'verify of ''shop/s3'': file ''data/00001.shop.orders.0000.tsv.zst'': stored checksum differs'),"
		  "(4, NULL, 'other', 'x1', '10.0.1.20:3306', %f, %f, 5, 5, 5, 'ok', NULL)",
	     NOW - D - 2 * H + 100, NOW - D - 2 * H + 150, NOW - D + 100, NOW - D + 170,
	     NOW - H, NOW - H + 2, NOW - 5 * H, NOW - 5 * H + 6);
	/* Lag: 10.0.0.12 in the window (one broken minute), 10.0.0.13 once,
	 * a sample too old for the window. */
	exec(cat, "INSERT INTO lag_samples (cluster, server, ts, resolution_s, lag_s, "
		  "lag_max_s, state) VALUES "
		  "('shop', '10.0.0.12:3306', %f, 60, 0.25, 0.5, 'ok'),"
		  "('shop', '10.0.0.12:3306', %f, 60, 2.5, 3.75, 'ok'),"
		  "('shop', '10.0.0.12:3306', %f, 60, 7.5, 9, 'warn'),"
		  "('shop', '10.0.0.12:3306', %f, 60, NULL, NULL, 'broken'),"
		  "('shop', '10.0.0.13:3306', %f, 60, 1.125, 1.125, 'ok'),"
		  "('shop', '10.0.0.13:3306', %f, 60, 99, 99, 'crit')",
	     NOW - 20 * H, NOW - 10 * H, NOW - 5 * H, NOW - 2 * H, NOW - H, NOW - 30 * H);
	exec(cat, "INSERT INTO lag_state VALUES ('shop', '10.0.0.12:3306', 'warn', %f, NULL, "
		  "NULL, 7.5, %f)", NOW - 5 * H, NOW - 60);
	exec(cat, "INSERT INTO servers (cluster, address, role, version, created_at, updated_at) "
		  "VALUES ('shop', '10.0.0.12:3306', 'replica', '10.11.14-MariaDB', 1, 1)");
	/* A cutover made the first replica the writer. */
	assert_int_equal(catalog_set_primary(cat, "shop", "10.0.0.12:3306", &e), 0);
	return cat;
}

static void test_lag_bucket(void **state)
{
	const struct report_lag_sample s[] = {
		{ 100, 1, 2, "ok" },
		{ 101, 3, -1, "warn" },     /* same bucket: mean 2, max 3, warn */
		{ 150, -1, -1, "broken" },  /* no figure */
		{ 90, 5, 5, "crit" },       /* before the window */
		{ 7300, 5, 5, "crit" },     /* at its end: outside */
	};
	struct report_lag_point *p = NULL;
	size_t n = 0;

	(void)state;
	/* 720 buckets of 10 s. */
	report_lag_bucket(s, sizeof(s) / sizeof(s[0]), 100, 100 + 7200, &p, &n);
	assert_int_equal(n, 2);
	assert_true(p[0].have_lag);
	assert_true(fabs(p[0].lag_s - 2) < 1e-9);
	assert_true(fabs(p[0].lag_max_s - 3) < 1e-9);
	assert_string_equal(p[0].state, "warn");
	assert_int_equal(p[0].samples, 2);
	assert_false(p[1].have_lag);
	assert_string_equal(p[1].state, "broken");
	free(p);

	report_lag_bucket(NULL, 0, 0, 0, &p, &n);
	assert_int_equal(n, 0);
	free(p);
}

static void test_load(void **state)
{
	struct config *cfg = load_config();
	struct catalog *cat = fill_catalog();
	struct report_opts o = { .now = NOW };
	struct report_data d;
	struct err e;

	(void)state;
	err_init(&e);
	assert_int_equal(report_load(cat, cfg, &o, &d, &e), 0);
	assert_int_equal(d.n_clusters, 2);
	assert_int_equal(d.days, REPORT_DAYS_DEFAULT);
	/* Topology: the catalog's primary first, the config's one kept as a
	 * replica, the drill target last. */
	assert_string_equal(d.clusters[0].name, "shop");
	assert_string_equal(d.clusters[0].primary, "10.0.0.12:3306");
	assert_string_equal(d.clusters[0].config_primary, "10.0.0.11:3306");
	assert_int_equal(d.clusters[0].n_servers, 4);
	assert_string_equal(d.clusters[0].servers[0].role, "primary");
	assert_string_equal(d.clusters[0].servers[0].version, "10.11.14-MariaDB");
	assert_string_equal(d.clusters[0].servers[0].lag_state, "warn");
	assert_string_equal(d.clusters[0].servers[3].role, "drill target");
	/* Snapshots in the window; days: yesterday (2) and today (1 + 1 failed). */
	assert_int_equal(d.n_snapshots, 4);
	assert_int_equal(d.n_days, 2);
	assert_int_equal(d.days_list[0].snapshots, 2);
	assert_int_equal(d.days_list[0].bytes_stored, 1000000);
	assert_int_equal(d.days_list[0].bytes_raw, 4000000);
	assert_true(fabs(d.days_list[0].seconds_max - 65.5) < 1e-9);
	assert_int_equal(d.days_list[1].snapshots, 1);
	assert_int_equal(d.days_list[1].failed, 1);
	/* Drills, oldest first. */
	assert_int_equal(d.n_drills, 4);
	assert_true(fabs(d.drills[1].rto_s - 63.25) < 1e-9);
	assert_int_equal(d.drills[3].id, 3);
	assert_true(d.drills[3].rto_s < 0);
	assert_int_equal(d.drills[3].bytes, -1);
	/* Lag: two series of shop; the 30 h old sample is outside 24 h. */
	assert_int_equal(d.n_series, 2);
	assert_string_equal(d.series[0].server, "10.0.0.12:3306");
	assert_int_equal(d.series[0].n_points, 4);
	assert_int_equal(d.series[1].n_points, 1);
	/* Failures, newest first: the drill (its job's row with the drill's
	 * reason) and the snapshot job; the failed snapshot itself is not
	 * listed twice. */
	assert_int_equal(d.n_failures, 2);
	assert_string_equal(d.failures[0].kind, "drill");
	assert_non_null(strstr(d.failures[0].message, "data/00001.shop.orders.0000.tsv.zst"));
	assert_string_equal(d.failures[1].kind, "snapshot");
	report_data_release(&d);

	/* One cluster only. */
	o.cluster = "other";
	assert_int_equal(report_load(cat, cfg, &o, &d, &e), 0);
	assert_int_equal(d.n_clusters, 1);
	assert_int_equal(d.n_drills, 1);
	assert_int_equal(d.n_snapshots, 0);
	report_data_release(&d);

	o.cluster = "nope";
	assert_int_equal(report_load(cat, cfg, &o, &d, &e), ERR_NOT_FOUND);
	assert_non_null(strstr(e.msg, "'nope'"));
	report_data_release(&d);
	catalog_close(cat);
	config_free(cfg);
}

static size_t count(const char *hay, const char *needle)
{
	size_t n = 0;

	for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
		n++;
	return n;
}

static void test_render(void **state)
{
	struct config *cfg = load_config();
	struct catalog *cat = fill_catalog();
	struct report_opts o = { .now = NOW };
	struct report_data d;
	struct buf b;
	struct err e;
	const char *h;

	(void)state;
	err_init(&e);
	assert_int_equal(report_load(cat, cfg, &o, &d, &e), 0);
	buf_init(&b, REPORT_HTML_MAX);
	assert_int_equal(report_render_html(&d, &b, &e), 0);
	h = b.data;
	assert_true(strncmp(h, "<!DOCTYPE html>\n", 16) == 0);
	assert_true(b.len > 20 && strcmp(h + b.len - 8, "</html>\n") == 0);
	/* Self-contained: no URL, no external script, style or image. */
	assert_null(strstr(h, "http:"));
	assert_null(strstr(h, "https:"));
	assert_null(strstr(h, "src="));
	assert_null(strstr(h, "<link"));
	assert_null(strstr(h, "@import"));
	/* Outside text is escaped. */
	assert_null(strstr(h, "<script>alert"));
	assert_non_null(strstr(h, "&lt;script&gt;alert(1)&lt;/script&gt;"));
	assert_int_equal(count(h, "<script>"), 1);
	/* Charts: lag and drills for both clusters, size + duration for shop. */
	assert_int_equal(count(h, "<svg "), count(h, "</svg>"));
	assert_int_equal(count(h, "data-chart=\"lag\""), 1);
	assert_int_equal(count(h, "data-chart=\"snapshot-size\""), 1);
	assert_int_equal(count(h, "data-chart=\"snapshot-duration\""), 1);
	assert_int_equal(count(h, "data-chart=\"drill-rto\""), 2);
	/* The catalog's figures. */
	assert_non_null(strstr(h, "data-lag=\"2.500\" data-lag-max=\"3.750\" data-state=\"ok\""));
	assert_non_null(strstr(h, "data-lag=\"7.500\" data-lag-max=\"9.000\" data-state=\"warn\""));
	assert_non_null(strstr(h, "data-lag=\"1.125\""));
	assert_non_null(strstr(h, "data-lag=\"\" data-state=\"broken\""));
	assert_null(strstr(h, "data-lag=\"99.000\""));
	assert_non_null(strstr(h, "data-day=\"2026-11-24\" data-snapshots=\"2\" data-failed=\"0\" "
				  "data-bytes-stored=\"1000000\" data-bytes-raw=\"4000000\" "
				  "data-seconds-max=\"65.500\""));
	assert_non_null(strstr(h, "data-day=\"2026-11-25\" data-snapshots=\"1\" data-failed=\"1\" "
				  "data-bytes-stored=\"1250000\""));
	assert_non_null(strstr(h, "data-drill-id=\"1\" data-result=\"ok\""));
	assert_non_null(strstr(h, "data-rto=\"41.500\""));
	assert_non_null(strstr(h, "data-rto=\"63.250\""));
	assert_non_null(strstr(h, "class=\"drill fail\" data-drill-id=\"3\" data-result=\"failed\""));
	assert_int_equal(count(h, "class=\"drill pass\""), 3);
	/* Tables and topology. */
	assert_non_null(strstr(h, "data-server=\"10.0.0.20:3306\" data-role=\"drill target\""));
	assert_non_null(strstr(h, "The writer is 10.0.0.12:3306 since a cutover"));
	assert_non_null(strstr(h, "<tr data-snapshot=\"s3\" data-bytes-stored=\"1250000\">"));
	assert_non_null(strstr(h, "1.2 MiB"));
	assert_non_null(strstr(h, "data-report-ready"));
	buf_release(&b);

	/* A page that does not fit its buffer fails instead of growing. */
	buf_init(&b, 4096);
	err_init(&e);
	assert_int_equal(report_render_html(&d, &b, &e), ERR_INTERNAL);
	buf_release(&b);
	report_data_release(&d);
	catalog_close(cat);
	config_free(cfg);
}

static void test_render_empty(void **state)
{
	struct config *cfg = load_config();
	struct catalog *cat = NULL;
	struct report_opts o = { .now = NOW, .days = 7, .lag_hours = 6 };
	struct report_data d;
	struct buf b;
	struct err e;

	(void)state;
	err_init(&e);
	assert_int_equal(catalog_open(":memory:", &cat, &e), 0);
	assert_int_equal(report_load(cat, cfg, &o, &d, &e), 0);
	buf_init(&b, REPORT_HTML_MAX);
	assert_int_equal(report_render_html(&d, &b, &e), 0);
	assert_non_null(strstr(b.data, "No lag samples in the last 6 h"));
	assert_non_null(strstr(b.data, "No snapshots in the last 7 days."));
	assert_non_null(strstr(b.data, "No DR drills in the last 7 days"));
	assert_non_null(strstr(b.data, "No failed job, snapshot or drill in the last 7 days."));
	assert_null(strstr(b.data, "<svg "));
	buf_release(&b);
	report_data_release(&d);
	catalog_close(cat);
	config_free(cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lag_bucket),
		cmocka_unit_test(test_load),
		cmocka_unit_test(test_render),
		cmocka_unit_test(test_render_empty),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
