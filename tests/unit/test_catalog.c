/* Unit tests for the SQLite catalog: migrations, pragmas, refusal of newer
 * or broken catalogs, and the job, outbox, topology and snapshot helpers,
 * on temp files and on ":memory:". */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "catalog.h"
#include "err.h"
#include "log.h"

static char tmp_root[PATH_MAX];

static int rm_entry(const char *path, const struct stat *sb, int flag,
		    struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

static int group_setup(void **state)
{
	const char *base = getenv("TMPDIR");

	(void)state;
	snprintf(tmp_root, sizeof(tmp_root), "%s/test_catalog.XXXXXX",
		 base && *base ? base : "/tmp");
	if (!mkdtemp(tmp_root))
		return -1;
	log_setup(LOGL_WARN, LOG_FORMAT_TEXT);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	chmod(tmp_root, 0700);
	nftw(tmp_root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}

static void fmt_to(char *out, size_t size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* snprintf that fails the test instead of truncating. */
static void fmt_to(char *out, size_t size, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(out, size, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= size)
		fail_msg("string too long for %zu bytes", size);
}

/* A fresh path under the temp root for each caller. */
static void temp_path(char *out, size_t size, const char *name)
{
	static int seq;

	fmt_to(out, size, "%s/%d-%s", tmp_root, ++seq, name);
}

static struct catalog *open_ok(const char *path)
{
	struct catalog *c = NULL;
	struct err e;

	err_init(&e);
	if (catalog_open(path, &c, &e) != 0)
		fail_msg("catalog_open('%s'): %s", path, e.msg);
	assert_non_null(c);
	return c;
}

static char *query_text(struct catalog *c, const char *sql)
{
	sqlite3_stmt *st;
	char *out = NULL;

	assert_int_equal(sqlite3_prepare_v2(catalog_sqlite(c), sql, -1, &st,
					    NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
		out = strdup((const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	return out;
}

static int64_t query_int(struct catalog *c, const char *sql)
{
	sqlite3_stmt *st;
	int64_t v = -999;

	assert_int_equal(sqlite3_prepare_v2(catalog_sqlite(c), sql, -1, &st,
					    NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

static void assert_text(struct catalog *c, const char *sql, const char *want)
{
	char *got = query_text(c, sql);

	if (!want) {
		assert_null(got);
		return;
	}
	assert_non_null(got);
	assert_string_equal(got, want);
	free(got);
}

/* Writes a raw SQLite file with the given statements, bypassing catalog. */
static void raw_db(const char *path, const char *sql)
{
	sqlite3 *db;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
}

static void test_fresh_file_migrates(void **state)
{
	char path[PATH_MAX], dir[PATH_MAX];
	struct catalog *c;
	struct stat sb;

	(void)state;
	temp_path(dir, sizeof(dir), "new/sub");
	fmt_to(path, sizeof(path), "%s/catalog.db", dir);
	c = open_ok(path);
	assert_true(catalog_latest_version() >= 1);
	assert_int_equal(catalog_schema_version(c), catalog_latest_version());
	assert_string_equal(catalog_path(c), path);
	/* Missing directories are made private; so is the file. */
	assert_int_equal(stat(dir, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0700);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	/* Every table the later issues rely on exists. */
	assert_int_equal(query_int(c, "SELECT count(*) FROM sqlite_schema "
				   "WHERE type = 'table' AND name IN ("
				   "'clusters', 'servers', 'topology', 'jobs', "
				   "'snapshots', 'snapshot_files', 'snapshot_tables', "
				   "'events', 'lag_samples', 'lag_state', 'restores', "
				   "'rebuilds', 'drills', 'cutovers', 'cutover_steps', "
				   "'schedule_state', 'schedule_runs', 'catalog_meta')"),
			 18);
	catalog_close(c);
}

static void test_reopen_is_noop(void **state)
{
	char path[PATH_MAX];
	struct catalog *c;
	struct err e;
	int64_t id;

	(void)state;
	temp_path(path, sizeof(path), "reopen.db");
	c = open_ok(path);
	err_init(&e);
	assert_int_equal(catalog_job_start(c, "prune", "shop", "manual", &id,
					   &e), 0);
	catalog_close(c);

	c = open_ok(path);
	assert_int_equal(catalog_schema_version(c), catalog_latest_version());
	assert_int_equal(query_int(c, "SELECT count(*) FROM jobs"), 1);
	catalog_close(c);
}

static void test_newer_catalog_refused(void **state)
{
	char path[PATH_MAX], sql[64];
	struct catalog *c = (struct catalog *)1;
	struct err e;

	(void)state;
	temp_path(path, sizeof(path), "newer.db");
	snprintf(sql, sizeof(sql), "PRAGMA user_version = %d",
		 catalog_latest_version() + 1);
	raw_db(path, sql);
	err_init(&e);
	assert_int_equal(catalog_open(path, &c, &e), ERR_CATALOG);
	assert_null(c);
	assert_non_null(strstr(e.msg, path));
	assert_non_null(strstr(e.msg, "schema version"));
	assert_non_null(strstr(e.msg, "upgrade backupd"));
}

static void test_pragmas(void **state)
{
	char path[PATH_MAX];
	struct catalog *c;

	(void)state;
	temp_path(path, sizeof(path), "wal.db");
	c = open_ok(path);
	assert_text(c, "PRAGMA journal_mode", "wal");
	assert_int_equal(query_int(c, "PRAGMA foreign_keys"), 1);
	assert_int_equal(query_int(c, "PRAGMA synchronous"), 1); /* NORMAL */
	assert_int_equal(query_int(c, "PRAGMA busy_timeout"), 5000);
	catalog_close(c);
}

static void test_foreign_keys(void **state)
{
	struct catalog_snapshot s;
	struct catalog_snapshot_file f = {
		.path = "db1/t1.00000.tsv.zst", .kind = "data",
		.schema_name = "db1", .table_name = "t1",
		.bytes_raw = 100, .bytes_stored = 40,
		.checksum_algo = "xxh64", .checksum = "abcd",
	};
	struct catalog *c;
	struct err e;

	(void)state;
	c = open_ok(":memory:");
	err_init(&e);
	assert_int_equal(catalog_snapshot_add_file(c, "nope", &f, &e),
			 ERR_CATALOG);
	assert_non_null(strstr(e.msg, "FOREIGN KEY"));
	assert_non_null(strstr(e.msg, "nope"));

	/* Deleting a snapshot takes its files along. */
	catalog_snapshot_init(&s);
	s.id = "s1";
	s.cluster = "shop";
	err_init(&e);
	assert_int_equal(catalog_snapshot_insert(c, &s, &e), 0);
	assert_int_equal(catalog_snapshot_add_file(c, "s1", &f, &e), 0);
	assert_int_equal(query_int(c, "SELECT count(*) FROM snapshot_files"), 1);
	assert_int_equal(catalog_snapshot_delete(c, "s1", &e), 0);
	assert_int_equal(query_int(c, "SELECT count(*) FROM snapshot_files"), 0);
	assert_int_equal(catalog_snapshot_delete(c, "s1", &e), ERR_NOT_FOUND);
	catalog_close(c);
}

static void test_jobs(void **state)
{
	struct catalog *c;
	struct err e, job_err;
	int64_t id1, id2, id3;

	(void)state;
	c = open_ok(":memory:");
	err_init(&e);
	assert_int_equal(catalog_job_start_ex(c, "snapshot", "shop", "schedule",
					      "nightly", NULL, &id1, &e), 0);
	assert_true(id1 > 0);
	assert_text(c, "SELECT status FROM jobs", "running");
	assert_text(c, "SELECT schedule FROM jobs", "nightly");
	assert_int_equal(query_int(c, "SELECT pid FROM jobs"), getpid());

	/* One snapshot per cluster at a time, across processes. */
	assert_int_equal(catalog_job_start(c, "snapshot", "shop", "manual",
					   &id2, &e), ERR_BUSY);
	assert_non_null(strstr(e.msg, "already runs"));
	assert_non_null(strstr(e.msg, "'shop'"));
	err_init(&e);
	assert_int_equal(catalog_job_start(c, "snapshot", "other", "manual",
					   &id2, &e), 0);
	assert_int_equal(catalog_job_start(c, "verify", "shop", "daemon",
					   &id3, &e), 0);
	assert_int_equal(catalog_job_start(c, "nap", "shop", "daemon",
					   &id3, &e), ERR_INTERNAL);
	err_init(&e);
	assert_int_equal(catalog_job_start(c, "verify", "shop", "cron",
					   &id3, &e), ERR_INTERNAL);

	err_init(&job_err);
	err_set(&job_err, ERR_STORAGE, "unable to write '%s'", "x.zst");
	err_init(&e);
	assert_int_equal(catalog_job_finish(c, id1, "failed", &job_err, &e), 0);
	assert_text(c, "SELECT status FROM jobs WHERE id = 1", "failed");
	assert_int_equal(query_int(c, "SELECT error_code FROM jobs WHERE id = 1"),
			 ERR_STORAGE);
	assert_text(c, "SELECT error_message FROM jobs WHERE id = 1",
		    "unable to write 'x.zst'");
	assert_int_equal(query_int(c, "SELECT finished_at >= started_at FROM jobs "
				   "WHERE id = 1"), 1);
	assert_int_equal(catalog_job_finish(c, id1, "ok", NULL, &e),
			 ERR_NOT_FOUND);
	err_init(&e);
	assert_int_equal(catalog_job_finish(c, id2, "ok", NULL, &e), 0);
	assert_text(c, "SELECT error_code FROM jobs WHERE id = 2", NULL);
	assert_int_equal(catalog_job_finish(c, id2, "done", NULL, &e),
			 ERR_INTERNAL);

	/* The slot is free again once the job ended. */
	err_init(&e);
	assert_int_equal(catalog_job_start(c, "snapshot", "shop", "manual",
					   &id2, &e), 0);

	/* Restores are keyed by target, not cluster. */
	assert_int_equal(catalog_job_start_ex(c, "restore", "shop", "manual",
					      NULL, "127.0.0.1:3307", &id3, &e), 0);
	assert_int_equal(catalog_job_start_ex(c, "restore", "shop", "manual",
					      NULL, "127.0.0.1:3308", &id3, &e), 0);
	assert_int_equal(catalog_job_start_ex(c, "restore", "shop", "manual",
					      NULL, "127.0.0.1:3307", &id3, &e),
			 ERR_BUSY);
	assert_non_null(strstr(e.msg, "target '127.0.0.1:3307'"));
	catalog_close(c);
}

static void test_job_reap(void **state)
{
	char sql[512];
	struct catalog *c;
	struct err e;
	int64_t id;
	pid_t pid;
	int n = -1;
	char host[256];

	(void)state;
	/* A job left by a process that is gone now (forked before the catalog
	 * is open so the child holds nothing). */
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(0);
	assert_int_equal(waitpid(pid, NULL, 0), pid);
	c = open_ok(":memory:");
	err_init(&e);
	assert_int_equal(catalog_job_start(c, "drill", "shop", "daemon", &id,
					   &e), 0);
	assert_int_equal(gethostname(host, sizeof(host)), 0);
	fmt_to(sql, sizeof(sql), "INSERT INTO jobs(kind, cluster, triggered_by, "
		 "started_at, pid, host) VALUES ('snapshot', 'shop', 'daemon', 1, "
		 "%d, '%s')", (int)pid, host);
	assert_int_equal(catalog_exec(c, sql, &e), 0);
	assert_int_equal(catalog_job_reap(c, &n, &e), 0);
	assert_int_equal(n, 1);
	assert_text(c, "SELECT status FROM jobs WHERE kind = 'snapshot'",
		    "aborted");
	assert_int_equal(query_int(c, "SELECT error_code FROM jobs "
				   "WHERE kind = 'snapshot'"), ERR_ABORTED);
	/* Ours is alive and stays running. */
	assert_text(c, "SELECT status FROM jobs WHERE kind = 'drill'", "running");
	catalog_close(c);
}

static void test_events(void **state)
{
	struct catalog_event *ev;
	struct catalog *c;
	struct err e;
	int64_t id1, id2, id3;
	double now;
	size_t n;

	(void)state;
	c = open_ok(":memory:");
	err_init(&e);
	assert_int_equal(catalog_event_add(c, "shop", NULL, "snapshot.done",
					   "info", "{\"id\":\"x\"}", &id1, &e), 0);
	assert_int_equal(catalog_event_add(c, "shop", "127.0.0.1:3307",
					   "lag.crit", "crit", NULL, &id2, &e), 0);
	assert_int_equal(catalog_event_add(c, NULL, NULL, "daemon.start",
					   "info", "[]", &id3, &e), 0);
	assert_true(id1 > 0 && id2 > id1 && id3 > id2);
	assert_text(c, "SELECT payload FROM events WHERE kind = 'lag.crit'", "{}");
	assert_text(c, "SELECT delivery FROM events WHERE kind = 'lag.crit'",
		    "pending");
	assert_int_equal(catalog_event_add(c, "shop", NULL, "x", "loud", NULL,
					   NULL, &e), ERR_INTERNAL);
	err_init(&e);
	assert_int_equal(catalog_event_add(c, "shop", NULL, "x", "info",
					   "{not json", NULL, &e), ERR_CATALOG);
	assert_non_null(strstr(e.msg, "json_valid"));

	now = catalog_now();
	err_init(&e);
	assert_int_equal(catalog_event_due(c, now + 1, 10, &ev, &n, &e), 0);
	assert_int_equal(n, 3);
	assert_int_equal(ev[0].id, id1);
	assert_string_equal(ev[0].kind, "snapshot.done");
	assert_string_equal(ev[0].payload, "{\"id\":\"x\"}");
	assert_null(ev[0].server);
	assert_string_equal(ev[1].server, "127.0.0.1:3307");
	assert_int_equal(ev[1].attempts, 0);
	catalog_event_free_list(ev, n);

	assert_int_equal(catalog_event_mark_sent(c, id1, &e), 0);
	assert_int_equal(catalog_event_mark_sent(c, id1, &e), ERR_NOT_FOUND);
	err_init(&e);
	assert_int_equal(catalog_event_mark_retry(c, id2, now + 60,
						  "http 429", &e), 0);
	assert_int_equal(catalog_event_mark_failed(c, id3, "http 404", &e), 0);
	assert_int_equal(catalog_event_due(c, now + 1, 10, &ev, &n, &e), 0);
	assert_int_equal(n, 0);
	assert_null(ev);
	assert_int_equal(catalog_event_due(c, now + 61, 10, &ev, &n, &e), 0);
	assert_int_equal(n, 1);
	assert_int_equal(ev[0].id, id2);
	assert_int_equal(ev[0].attempts, 1);
	catalog_event_free_list(ev, n);
	assert_text(c, "SELECT delivery || ' ' || attempts || ' ' || last_error "
		    "FROM events WHERE kind = 'daemon.start'", "failed 1 http 404");
	assert_int_equal(query_int(c, "SELECT sent_at > 0 FROM events "
				   "WHERE kind = 'snapshot.done'"), 1);
	catalog_close(c);
}

/* An event is written in the same transaction as the state it reports:
 * rolling back drops both. */
static void test_transactions(void **state)
{
	struct catalog *c;
	struct err e;
	char *addr;
	int64_t id;

	(void)state;
	c = open_ok(":memory:");
	err_init(&e);
	assert_false(catalog_in_transaction(c));
	assert_int_equal(catalog_begin(c, &e), 0);
	assert_true(catalog_in_transaction(c));
	assert_int_equal(catalog_begin(c, &e), ERR_INTERNAL);
	err_init(&e);
	assert_int_equal(catalog_set_primary(c, "shop", "10.0.0.11:3306", &e), 0);
	assert_int_equal(catalog_event_add(c, "shop", NULL, "cutover.done",
					   "info", NULL, &id, &e), 0);
	assert_true(catalog_in_transaction(c));
	assert_int_equal(catalog_rollback(c, &e), 0);
	assert_int_equal(query_int(c, "SELECT count(*) FROM events"), 0);
	assert_int_equal(catalog_get_primary(c, "shop", &addr, &e), 0);
	assert_null(addr);
	assert_int_equal(catalog_rollback(c, &e), 0);

	/* A helper that fails inside the caller's transaction undoes only its
	 * own part. */
	assert_int_equal(catalog_begin(c, &e), 0);
	assert_int_equal(catalog_event_add(c, "shop", NULL, "a", "info", NULL,
					   NULL, &e), 0);
	assert_int_equal(catalog_set_primary(c, "", "x:1", &e), ERR_INTERNAL);
	err_init(&e);
	assert_true(catalog_in_transaction(c));
	assert_int_equal(catalog_commit(c, &e), 0);
	assert_int_equal(query_int(c, "SELECT count(*) FROM events"), 1);

	assert_int_equal(catalog_exec(c, "SELECT nonsense FROM nowhere", &e),
			 ERR_CATALOG);
	assert_non_null(strstr(e.msg, "no such table"));
	catalog_close(c);
}

static void test_topology(void **state)
{
	struct catalog *c;
	struct err e;
	char *addr;

	(void)state;
	c = open_ok(":memory:");
	err_init(&e);
	assert_int_equal(catalog_get_primary(c, "shop", &addr, &e), 0);
	assert_null(addr);
	assert_int_equal(catalog_set_primary(c, "shop", "10.0.0.11:3306", &e), 0);
	assert_int_equal(catalog_get_primary(c, "shop", &addr, &e), 0);
	assert_string_equal(addr, "10.0.0.11:3306");
	free(addr);
	assert_int_equal(catalog_set_primary(c, "shop", "10.0.0.11:3306", &e), 0);
	assert_text(c, "SELECT previous_primary FROM topology", NULL);
	assert_int_equal(catalog_set_primary(c, "shop", "10.0.0.12:3306", &e), 0);
	assert_int_equal(catalog_get_primary(c, "shop", &addr, &e), 0);
	assert_string_equal(addr, "10.0.0.12:3306");
	free(addr);
	assert_text(c, "SELECT previous_primary FROM topology", "10.0.0.11:3306");
	assert_int_equal(query_int(c, "SELECT count(*) FROM clusters"), 1);

	assert_int_equal(catalog_server_upsert(c, "shop", "10.0.0.12:3306",
					       "primary", "mariadb", "10.11.6",
					       12, &e), 0);
	assert_int_equal(catalog_server_upsert(c, "shop", "10.0.0.12:3306",
					       "primary", NULL, NULL, -1, &e), 0);
	assert_text(c, "SELECT flavor || ' ' || version || ' ' || server_id "
		    "FROM servers", "mariadb 10.11.6 12");
	assert_int_equal(catalog_server_upsert(c, "shop", "10.0.0.13:3306",
					       "witness", NULL, NULL, -1, &e),
			 ERR_INTERNAL);
	catalog_close(c);
}

static void test_snapshots(void **state)
{
	struct catalog_snapshot s, got, *arr;
	struct catalog_snapshot_table t = {
		.schema_name = "shop", .table_name = "orders", .engine = "InnoDB",
		.n_rows = 1000, .checksum_algo = "crc32", .checksum = "12ab",
	};
	struct catalog *c;
	struct err e;
	size_t n;

	(void)state;
	c = open_ok(":memory:");
	err_init(&e);
	catalog_snapshot_init(&s);
	s.id = "20261125T131500Z-shop-a1b2";
	s.cluster = "shop";
	s.source_server = "10.0.0.12:3306";
	s.compress_level = 3;
	s.threads = 4;
	s.repository = "nfs://nfs-host/export/mysql";
	s.started_at = 1000;
	assert_int_equal(catalog_snapshot_insert(c, &s, &e), 0);
	assert_int_equal(catalog_snapshot_insert(c, &s, &e), ERR_CATALOG);
	assert_non_null(strstr(e.msg, "UNIQUE"));
	assert_non_null(strstr(e.msg, s.id));

	s.id = "20261125T141500Z-shop-c3d4";
	s.started_at = 2000;
	err_init(&e);
	assert_int_equal(catalog_snapshot_insert(c, &s, &e), 0);
	s.id = "20261125T151500Z-web-e5f6";
	s.cluster = "web";
	s.started_at = 3000;
	assert_int_equal(catalog_snapshot_insert(c, &s, &e), 0);

	/* Complete the first one. */
	catalog_snapshot_init(&s);
	s.id = "20261125T131500Z-shop-a1b2";
	s.gtid = "0-1-42";
	s.binlog_file = "mysql-bin.000003";
	s.binlog_pos = 1234;
	s.server_flavor = "mariadb";
	s.server_version = "10.11.6";
	s.server_id = 2;
	s.bytes_raw = 1 << 20;
	s.bytes_stored = 1 << 18;
	s.n_files = 5;
	s.n_tables = 1;
	s.finished_at = 1500;
	s.manifest_path = "shop/20261125T131500Z-shop-a1b2/manifest.json";
	assert_int_equal(catalog_snapshot_complete(c, &s, &e), 0);
	assert_int_equal(catalog_snapshot_complete(c, &s, &e), ERR_REFUSED);
	assert_non_null(strstr(e.msg, "is complete"));
	err_init(&e);
	assert_int_equal(catalog_snapshot_add_table(c, s.id, &t, &e), 0);
	assert_int_equal(catalog_snapshot_fail(c, "20261125T141500Z-shop-c3d4",
					       "failed", "lost connection", &e), 0);
	assert_int_equal(catalog_snapshot_fail(c, "nope", "failed", "x", &e),
			 ERR_NOT_FOUND);
	err_init(&e);
	assert_int_equal(catalog_snapshot_fail(c, s.id, "complete", "x", &e),
			 ERR_INTERNAL);
	err_init(&e);
	assert_int_equal(catalog_snapshot_set_verified(c, s.id, true, &e), 0);

	assert_int_equal(catalog_snapshot_list(c, NULL, &arr, &n, &e), 0);
	assert_int_equal(n, 3);
	assert_string_equal(arr[0].id, "20261125T131500Z-shop-a1b2");
	assert_string_equal(arr[0].status, "complete");
	assert_string_equal(arr[0].gtid, "0-1-42");
	assert_string_equal(arr[0].binlog_file, "mysql-bin.000003");
	assert_int_equal(arr[0].binlog_pos, 1234);
	assert_int_equal(arr[0].server_id, 2);
	assert_string_equal(arr[0].server_version, "10.11.6");
	assert_string_equal(arr[0].source_server, "10.0.0.12:3306");
	assert_int_equal(arr[0].bytes_raw, 1 << 20);
	assert_int_equal(arr[0].bytes_stored, 1 << 18);
	assert_int_equal(arr[0].n_files, 5);
	assert_int_equal(arr[0].compress_level, 3);
	assert_int_equal(arr[0].threads, 4);
	assert_true(arr[0].started_at == 1000 && arr[0].finished_at == 1500);
	assert_string_equal(arr[0].verify_status, "ok");
	assert_true(arr[0].verified_at > 0);
	assert_null(arr[0].reason);
	assert_int_equal(arr[0].job_id, -1);
	assert_string_equal(arr[1].status, "failed");
	assert_string_equal(arr[1].reason, "lost connection");
	assert_true(arr[1].finished_at > 0);
	assert_null(arr[1].gtid);
	assert_int_equal(arr[1].binlog_pos, -1);
	assert_string_equal(arr[2].status, "running");
	assert_true(arr[2].finished_at == 0);
	catalog_snapshot_free_list(arr, n);

	assert_int_equal(catalog_snapshot_list(c, "web", &arr, &n, &e), 0);
	assert_int_equal(n, 1);
	assert_string_equal(arr[0].cluster, "web");
	catalog_snapshot_free_list(arr, n);
	assert_int_equal(catalog_snapshot_list(c, "none", &arr, &n, &e), 0);
	assert_int_equal(n, 0);
	catalog_snapshot_free_list(arr, n);

	assert_int_equal(catalog_snapshot_latest(c, "shop", "complete", &got,
						 &e), 0);
	assert_string_equal(got.id, "20261125T131500Z-shop-a1b2");
	catalog_snapshot_release(&got);
	assert_int_equal(catalog_snapshot_latest(c, "shop", NULL, &got, &e), 0);
	assert_string_equal(got.id, "20261125T141500Z-shop-c3d4");
	catalog_snapshot_release(&got);
	assert_int_equal(catalog_snapshot_latest(c, "web", "complete", &got, &e),
			 ERR_NOT_FOUND);
	assert_non_null(strstr(e.msg, "no complete snapshot of cluster 'web'"));
	err_init(&e);
	assert_int_equal(catalog_snapshot_get(c, "nope", &got, &e),
			 ERR_NOT_FOUND);
	assert_null(got.id);
	err_init(&e);
	assert_int_equal(catalog_snapshot_get(c, "20261125T151500Z-web-e5f6",
					      &got, &e), 0);
	assert_string_equal(got.repository, "nfs://nfs-host/export/mysql");
	catalog_snapshot_release(&got);

	/* Prune keeps the row as history; a running snapshot is not pruned. */
	assert_int_equal(catalog_snapshot_mark_deleted(c,
			 "20261125T141500Z-shop-c3d4", "keep_last=1", &e), 0);
	assert_int_equal(catalog_snapshot_mark_deleted(c,
			 "20261125T141500Z-shop-c3d4", NULL, &e), 0);
	assert_int_equal(catalog_snapshot_get(c, "20261125T141500Z-shop-c3d4",
					      &got, &e), 0);
	assert_string_equal(got.status, "deleted");
	assert_string_equal(got.reason, "keep_last=1");
	assert_true(got.deleted_at > 0);
	catalog_snapshot_release(&got);
	assert_int_equal(catalog_snapshot_mark_deleted(c,
			 "20261125T151500Z-web-e5f6", NULL, &e), ERR_REFUSED);
	err_init(&e);
	assert_int_equal(catalog_snapshot_set_verified(c,
			 "20261125T151500Z-web-e5f6", false, &e), ERR_REFUSED);
	catalog_close(c);
}

static void test_snapshot_files_tables(void **state)
{
	struct catalog_snapshot s;
	struct catalog_snapshot_file f = {
		.kind = "data", .schema_name = "shop", .table_name = "orders",
		.bytes_raw = 10, .bytes_stored = 4, .checksum_algo = "xxh64",
		.checksum = "00ff",
	};
	struct catalog_snapshot_table t = {
		.schema_name = "shop", .table_name = "orders", .n_rows = -1,
	};
	struct catalog_snapshot_file *files;
	struct catalog_snapshot_table *tables;
	struct catalog *c;
	struct err e;
	size_t n;

	(void)state;
	c = open_ok(":memory:");
	err_init(&e);
	catalog_snapshot_init(&s);
	s.id = "s1";
	s.cluster = "shop";
	assert_int_equal(catalog_snapshot_insert(c, &s, &e), 0);
	f.path = "shop/orders.00001.tsv.zst";
	assert_int_equal(catalog_snapshot_add_file(c, "s1", &f, &e), 0);
	f.path = "shop/orders.00000.tsv.zst";
	assert_int_equal(catalog_snapshot_add_file(c, "s1", &f, &e), 0);
	f.path = "schema.sql.zst";
	f.kind = "schema";
	f.schema_name = NULL;
	f.table_name = NULL;
	assert_int_equal(catalog_snapshot_add_file(c, "s1", &f, &e), 0);
	assert_int_equal(catalog_snapshot_add_table(c, "s1", &t, &e), 0);
	assert_int_equal(catalog_snapshot_add_table(c, "s1", &t, &e),
			 ERR_CATALOG);
	assert_non_null(strstr(e.msg, "shop.orders"));

	err_init(&e);
	assert_int_equal(catalog_snapshot_files(c, "s1", &files, &n, &e), 0);
	assert_int_equal(n, 3);
	assert_string_equal(files[0].path, "schema.sql.zst");
	assert_null(files[0].table_name);
	assert_string_equal(files[1].path, "shop/orders.00000.tsv.zst");
	assert_string_equal(files[1].checksum, "00ff");
	assert_int_equal(files[1].bytes_stored, 4);
	catalog_snapshot_file_free_list(files, n);

	assert_int_equal(catalog_snapshot_tables(c, "s1", &tables, &n, &e), 0);
	assert_int_equal(n, 1);
	assert_string_equal(tables[0].table_name, "orders");
	assert_int_equal(tables[0].n_rows, -1);
	assert_null(tables[0].engine);
	catalog_snapshot_table_free_list(tables, n);
	catalog_close(c);
}

static void test_failed_migration(void **state)
{
	char path[PATH_MAX];
	struct catalog *c = NULL;
	struct err e;
	sqlite3 *db;
	sqlite3_stmt *st;

	(void)state;
	temp_path(path, sizeof(path), "clash.db");
	/* A table 001 creates, already there with another shape. */
	raw_db(path, "CREATE TABLE snapshots (x INTEGER)");
	err_init(&e);
	assert_int_equal(catalog_open(path, &c, &e), ERR_CATALOG);
	assert_null(c);
	assert_non_null(strstr(e.msg, "unable to apply catalog migration "
			       "'001_initial'"));
	assert_non_null(strstr(e.msg, path));
	assert_non_null(strstr(e.msg, "already exists"));

	/* Nothing of the failed migration stays behind. */
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT (SELECT user_version "
					    "FROM pragma_user_version), (SELECT "
					    "count(*) FROM sqlite_schema)", -1,
					    &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(st, 0), 0);
	assert_int_equal(sqlite3_column_int(st, 1), 1);
	sqlite3_finalize(st);
	sqlite3_close(db);
}

static void test_corrupt_file(void **state)
{
	char path[PATH_MAX];
	struct catalog *c = NULL;
	struct err e;
	FILE *f;

	(void)state;
	temp_path(path, sizeof(path), "corrupt.db");
	f = fopen(path, "w");
	assert_non_null(f);
	for (int i = 0; i < 512; i++)
		fputs("this is not an sqlite file ", f);
	fclose(f);
	err_init(&e);
	assert_int_equal(catalog_open(path, &c, &e), ERR_CATALOG);
	assert_null(c);
	assert_non_null(strstr(e.msg, path));
	assert_non_null(strstr(e.msg, "not a database"));

	err_init(&e);
	assert_int_equal(catalog_open(tmp_root, &c, &e), ERR_CATALOG);
	assert_non_null(strstr(e.msg, "is a directory"));
	err_init(&e);
	assert_int_equal(catalog_open("", &c, &e), ERR_CATALOG);
}

/* Runs in a child that may drop root, which ignores directory modes. */
static int unwritable_child(const char *dir)
{
	char path[PATH_MAX], sub[PATH_MAX];
	struct catalog *c = NULL;
	struct err e;
	int rc = 0;

	if (geteuid() == 0 &&
	    (setresgid(65534, 65534, 65534) != 0 ||
	     setresuid(65534, 65534, 65534) != 0))
		return 10;
	fmt_to(path, sizeof(path), "%s/catalog.db", dir);
	err_init(&e);
	if (catalog_open(path, &c, &e) != ERR_CATALOG || c)
		rc = 11;
	else if (!strstr(e.msg, "not writable") || !strstr(e.msg, dir) ||
		 !strstr(e.msg, "Permission denied"))
		rc = 12;
	fmt_to(sub, sizeof(sub), "%s/deeper/catalog.db", dir);
	err_init(&e);
	if (rc == 0 && (catalog_open(sub, &c, &e) != ERR_CATALOG || c))
		rc = 13;
	else if (rc == 0 && (!strstr(e.msg, "unable to create catalog directory") ||
			     !strstr(e.msg, "Permission denied")))
		rc = 14;
	if (rc)
		fprintf(stderr, "unwritable_child: %s\n", e.msg);
	return rc;
}

static void test_unwritable_dir(void **state)
{
	char dir[PATH_MAX];
	int status;
	pid_t pid;

	(void)state;
	temp_path(dir, sizeof(dir), "ro");
	assert_int_equal(mkdir(dir, 0700), 0);
	/* The child may run as nobody: let it reach, but not write, dir. */
	assert_int_equal(chmod(tmp_root, 0711), 0);
	assert_int_equal(chmod(dir, 0555), 0);
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(unwritable_child(dir));
	assert_int_equal(waitpid(pid, &status, 0), pid);
	chmod(tmp_root, 0700);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

/* Processes racing to create and migrate the same fresh catalog all succeed:
 * the version is re-read under the write lock. */
static void test_concurrent_open(void **state)
{
	enum { N_PROCS = 4 };
	char path[PATH_MAX];
	pid_t pids[N_PROCS];
	struct catalog *c;

	(void)state;
	temp_path(path, sizeof(path), "race/catalog.db");
	fflush(NULL);
	for (int i = 0; i < N_PROCS; i++) {
		pids[i] = fork();
		assert_true(pids[i] >= 0);
		if (pids[i] == 0) {
			struct err e;
			int64_t id;
			int rc;

			err_init(&e);
			c = NULL;
			rc = catalog_open(path, &c, &e);
			if (rc == 0)
				rc = catalog_event_add(c, "shop", NULL, "race",
						       "info", NULL, &id, &e);
			if (rc)
				fprintf(stderr, "child %d: %s\n", i, e.msg);
			catalog_close(c);
			_exit(rc ? 1 : 0);
		}
	}
	for (int i = 0; i < N_PROCS; i++) {
		int status;

		assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 0);
	}
	c = open_ok(path);
	assert_int_equal(catalog_schema_version(c), catalog_latest_version());
	assert_int_equal(query_int(c, "SELECT count(*) FROM events"), N_PROCS);
	catalog_close(c);
}

static void test_memory(void **state)
{
	struct catalog *c;
	struct err e;
	int64_t id;

	(void)state;
	c = open_ok(":memory:");
	assert_int_equal(catalog_schema_version(c), catalog_latest_version());
	assert_text(c, "PRAGMA journal_mode", "memory");
	assert_int_equal(query_int(c, "PRAGMA foreign_keys"), 1);
	err_init(&e);
	assert_int_equal(catalog_job_start(c, "cutover", "shop", "manual", &id,
					   &e), 0);
	assert_int_equal(catalog_job_finish(c, id, "ok", NULL, &e), 0);
	catalog_close(c);
	catalog_close(NULL);
}

/* Migrations run in order, each in its own transaction: a failing second
 * one leaves the first applied, and a later binary applies only what is
 * new. */
static void test_migration_steps(void **state)
{
	static const struct catalog_migration good[] = {
		{ 1, "001_a", "CREATE TABLE a (x INTEGER);" },
		{ 2, "002_b", "CREATE TABLE b (y INTEGER);" },
	};
	static const struct catalog_migration broken[] = {
		{ 1, "001_a", "CREATE TABLE a (x INTEGER);" },
		{ 2, "002_b", "CREATE TABLE b (y INTEGER); INSERT INTO nowhere VALUES (1);" },
	};
	static const struct catalog_migration gap[] = {
		{ 1, "001_a", "CREATE TABLE a (x INTEGER);" },
		{ 3, "003_c", "CREATE TABLE c (z INTEGER);" },
	};
	static const struct catalog_migration fk[] = {
		{ 1, "001_a", "CREATE TABLE p (id INTEGER PRIMARY KEY);"
			      "CREATE TABLE k (p INTEGER REFERENCES p(id));"
			      "PRAGMA defer_foreign_keys = ON;"
			      "INSERT INTO k VALUES (7);" },
	};
	char path[PATH_MAX], path2[PATH_MAX];
	struct catalog *c = NULL;
	struct err e;

	(void)state;
	temp_path(path, sizeof(path), "steps.db");
	err_init(&e);
	assert_int_equal(catalog_open_migrations(path, broken, 2, &c, &e),
			 ERR_CATALOG);
	assert_non_null(strstr(e.msg, "'002_b'"));
	assert_non_null(strstr(e.msg, "no such table: nowhere"));
	err_init(&e);
	assert_int_equal(catalog_open_migrations(path, good, 1, &c, &e), 0);
	assert_int_equal(catalog_schema_version(c), 1);
	assert_int_equal(query_int(c, "SELECT count(*) FROM sqlite_schema "
				   "WHERE name = 'b'"), 0);
	catalog_close(c);
	assert_int_equal(catalog_open_migrations(path, good, 2, &c, &e), 0);
	assert_int_equal(catalog_schema_version(c), 2);
	catalog_close(c);
	/* An older binary refuses the newer file. */
	assert_int_equal(catalog_open_migrations(path, good, 1, &c, &e),
			 ERR_CATALOG);
	assert_non_null(strstr(e.msg, "schema version 2"));

	err_init(&e);
	assert_int_equal(catalog_open_migrations(":memory:", gap, 2, &c, &e),
			 ERR_INTERNAL);
	assert_non_null(strstr(e.msg, "003_c"));

	temp_path(path2, sizeof(path2), "fk.db");
	err_init(&e);
	assert_int_equal(catalog_open_migrations(path2, fk, 1, &c, &e),
			 ERR_CATALOG);
	assert_non_null(strstr(e.msg, "foreign key"));
}

static void test_time_iso(void **state)
{
	char out[32];

	(void)state;
	assert_int_equal(catalog_time_iso(1795612500.25, false, out,
					  sizeof(out)), 0);
	assert_string_equal(out, "2026-11-25T13:15:00Z");
	assert_int_equal(catalog_time_iso(1795612500.25, true, out,
					  sizeof(out)), 0);
	assert_string_equal(out, "2026-11-25T13:15:00.250Z");
	assert_int_equal(catalog_time_iso(0, true, out, sizeof(out)), 0);
	assert_string_equal(out, "");
	assert_int_equal(catalog_time_iso(1795612500, false, out, 20),
			 ERR_INTERNAL);
	assert_true(catalog_now() > 1.7e9);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fresh_file_migrates),
		cmocka_unit_test(test_reopen_is_noop),
		cmocka_unit_test(test_newer_catalog_refused),
		cmocka_unit_test(test_pragmas),
		cmocka_unit_test(test_foreign_keys),
		cmocka_unit_test(test_jobs),
		cmocka_unit_test(test_job_reap),
		cmocka_unit_test(test_events),
		cmocka_unit_test(test_transactions),
		cmocka_unit_test(test_topology),
		cmocka_unit_test(test_snapshots),
		cmocka_unit_test(test_snapshot_files_tables),
		cmocka_unit_test(test_failed_migration),
		cmocka_unit_test(test_corrupt_file),
		cmocka_unit_test(test_unwritable_dir),
		cmocka_unit_test(test_concurrent_open),
		cmocka_unit_test(test_memory),
		cmocka_unit_test(test_migration_steps),
		cmocka_unit_test(test_time_iso),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
