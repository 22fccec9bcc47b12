/* Tests of lib/db.c against a real server (MariaDB 10.11 in tests/env/).
 *
 * Needs PRIMARY_PORT and TESTADMIN_PASSWORD_FILE (user testadmin with ALL
 * PRIVILEGES on 127.0.0.1); REPLICA_PORT adds the tests on a GTID replica
 * of that primary. Without them the run fails: a database test that
 * passes without a database proves nothing. Everything it creates lives
 * in the schema bkd_test_db_<pid>, dropped at the end. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "db.h"
#include "dialect.h"
#include "err.h"

static unsigned primary_port, replica_port;
static char password[256];
static char schema[64];
/* Server state a failed test must not leave behind (see group_teardown). */
static bool source_set_on_primary, replica_sql_stopped;

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static unsigned env_port(const char *name)
{
	const char *v = getenv(name);
	long port;

	if (!v || !*v)
		return 0;
	if (str_to_long(v, 1, 65535, &port) != 0) {
		fprintf(stderr, "test_db: %s='%s' is not a port\n", name, v);
		return 0;
	}
	return (unsigned)port;
}

static int read_password(const char *path)
{
	FILE *f = fopen(path, "r");
	size_t n;

	if (!f) {
		fprintf(stderr, "test_db: unable to open TESTADMIN_PASSWORD_FILE "
			"'%s'\n", path);
		return -1;
	}
	n = fread(password, 1, sizeof(password) - 1, f);
	fclose(f);
	password[n] = '\0';
	while (n > 0 && (password[n - 1] == '\n' || password[n - 1] == '\r'))
		password[--n] = '\0';
	return 0;
}

static struct db_opts opts_for(unsigned port)
{
	struct db_opts o = {
		.host = "127.0.0.1", .port = port, .user = "testadmin",
		.password = password, .connect_timeout_s = 5,
		.read_timeout_s = 30, .write_timeout_s = 30,
	};
	return o;
}

static struct db *connect_ok(unsigned port)
{
	struct db_opts o = opts_for(port);
	struct db *d = NULL;
	struct err e;

	err_init(&e);
	if (db_connect(&o, &d, &e) != 0)
		fail_msg("connect to port %u: %s", port, e.msg);
	assert_non_null(d);
	return d;
}

static void exec_ok(struct db *d, const char *sql)
{
	struct err e;

	err_init(&e);
	if (db_exec(d, sql, &e) != 0)
		fail_msg("'%s': %s", sql, e.msg);
}

static char *value_ok(struct db *d, const char *sql)
{
	struct err e;
	char *v = NULL;
	bool found;

	err_init(&e);
	if (db_query_value(d, sql, &v, &found, &e) != 0)
		fail_msg("'%s': %s", sql, e.msg);
	assert_true(found);
	assert_non_null(v);
	return v;
}

static int group_setup(void **state)
{
	const char *pwfile = getenv("TESTADMIN_PASSWORD_FILE");
	struct db *d;
	struct db_opts o;
	struct err e;
	char sql[128];

	primary_port = env_port("PRIMARY_PORT");
	replica_port = env_port("REPLICA_PORT");
	if (!primary_port || !pwfile || !*pwfile) {
		fprintf(stderr,
			"test_db: FAILED: no database to test against. Set "
			"PRIMARY_PORT (and REPLICA_PORT) to servers on 127.0.0.1 "
			"and TESTADMIN_PASSWORD_FILE to the password of user "
			"'testadmin' (tests/env/ starts them).\n");
		return -1;
	}
	if (read_password(pwfile) != 0)
		return -1;
	snprintf(schema, sizeof(schema), "bkd_test_db_%ld", (long)getpid());

	o = opts_for(primary_port);
	err_init(&e);
	if (db_connect(&o, &d, &e) != 0) {
		fprintf(stderr, "test_db: FAILED: %s\n", e.msg);
		return -1;
	}
	snprintf(sql, sizeof(sql), "CREATE DATABASE `%s`", schema);
	if (db_exec(d, sql, &e) != 0) {
		fprintf(stderr, "test_db: FAILED: %s\n", e.msg);
		db_close(d);
		return -1;
	}
	db_close(d);
	return 0;
}

static int group_teardown(void **state)
{
	struct db_opts o = opts_for(primary_port);
	struct db *d;
	struct err e;
	char sql[128];

	err_init(&e);
	if (db_connect(&o, &d, &e) != 0)
		return 0;
	snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS `%s`", schema);
	db_exec(d, sql, &e);
	if (source_set_on_primary)
		db_exec(d, db_sql(d, DIALECT_RESET_REPLICA_ALL), &e);
	db_close(d);
	if (replica_sql_stopped) {
		o = opts_for(replica_port);
		if (db_connect(&o, &d, &e) == 0) {
			db_exec(d, db_sql(d, DIALECT_START_SQL_THREAD), &e);
			db_close(d);
		}
	}
	return 0;
}

static void test_connect_and_detect(void **state)
{
	struct db *d = connect_ok(primary_port);
	char want_addr[64];
	char *v;
	enum db_flavor f;
	unsigned long ver;
	struct err e;

	snprintf(want_addr, sizeof(want_addr), "127.0.0.1:%u", primary_port);
	assert_string_equal(db_addr(d), want_addr);
	assert_non_null(db_handle(d));

	v = value_ok(d, "SELECT VERSION()");
	assert_string_equal(db_version_string(d), v);
	err_init(&e);
	assert_int_equal(dialect_parse_version(v, &f, &ver, &e), 0);
	assert_int_equal(db_flavor(d), strstr(v, "MariaDB") ? DB_FLAVOR_MARIADB
							    : DB_FLAVOR_MYSQL);
	assert_int_equal(db_version(d), ver);
	assert_true(db_version(d) >= 50700);
	free(v);

	v = value_ok(d, "SELECT @@character_set_connection");
	assert_string_equal(v, "utf8mb4");
	free(v);
	v = value_ok(d, "SELECT @@character_set_results");
	assert_string_equal(v, "utf8mb4");
	free(v);

	assert_string_equal(db_sql(d, DIALECT_VERSION), "SELECT VERSION()");
	assert_false(db_no_backslash_escapes(d));
	err_init(&e);
	assert_int_equal(db_ping(d, &e), 0);
	db_close(d);
	db_close(NULL);

	/* "localhost" is TCP to the given port, not the default socket. */
	struct db_opts o = opts_for(primary_port);
	o.host = "localhost";
	d = NULL;
	err_init(&e);
	if (db_connect(&o, &d, &e) != 0)
		fail_msg("connect to localhost: %s", e.msg);
	snprintf(want_addr, sizeof(want_addr), "localhost:%u", primary_port);
	assert_string_equal(db_addr(d), want_addr);
	v = value_ok(d, "SELECT @@port");
	assert_int_equal(strtoul(v, NULL, 10), primary_port);
	free(v);
	db_close(d);
}

static void test_exec_and_values(void **state)
{
	struct db *d = connect_ok(primary_port);
	struct err e;
	char *v;
	bool found;
	unsigned long long u;
	struct buf b;

	v = value_ok(d, "SELECT 40 + 2, 'ignored'");
	assert_string_equal(v, "42");
	free(v);

	err_init(&e);
	assert_int_equal(db_query_value(d, "SELECT NULL", &v, &found, &e), 0);
	assert_true(found);
	assert_null(v);
	assert_int_equal(db_query_value(d, "SELECT 1 FROM DUAL WHERE 1 = 0",
					&v, &found, &e), 0);
	assert_false(found);
	assert_null(v);

	assert_int_equal(db_query_ulong(d, "SELECT 18446744073709551615", &u,
					&e), 0);
	assert_true(u == 18446744073709551615ull);
	assert_int_equal(db_query_ulong(d, "SELECT 'abc'", &u, &e), ERR_DB_QUERY);
	err_init(&e);
	assert_int_equal(db_query_ulong(d, "SELECT -1", &u, &e), ERR_DB_QUERY);
	err_init(&e);
	assert_int_equal(db_query_ulong(d, "SELECT NULL", &u, &e), ERR_DB_QUERY);
	err_init(&e);
	assert_int_equal(db_query_ulong(d, "SELECT 1 FROM DUAL WHERE 1 = 0",
					&u, &e), ERR_DB_QUERY);
	err_init(&e);
	assert_int_equal(db_query_value(d, "DO 1", &v, &found, &e), ERR_DB_QUERY);
	assert_null(v);

	/* Result sets of db_exec are drained: the next statement works. */
	exec_ok(d, "SELECT 1 UNION SELECT 2");
	buf_init(&b, 4096);
	err_init(&e);
	assert_int_equal(buf_printf(&b, &e, "CREATE PROCEDURE `%s`.two_results() "
				    "BEGIN SELECT 1; SELECT 2; END", schema), 0);
	assert_int_equal(db_exec_buf(d, &b, &e), 0);
	buf_reset(&b);
	assert_int_equal(buf_printf(&b, &e, "CALL `%s`.two_results()", schema), 0);
	assert_int_equal(db_exec_buf(d, &b, &e), 0);
	v = value_ok(d, "SELECT 7");
	assert_string_equal(v, "7");
	free(v);
	/* ... and after db_query_value of a multi-result CALL too. */
	v = value_ok(d, b.data);
	assert_string_equal(v, "1");
	free(v);
	v = value_ok(d, "SELECT 8");
	assert_string_equal(v, "8");
	free(v);
	buf_release(&b);

	/* Streamed rows. */
	MYSQL_RES *res;
	MYSQL_ROW row;
	unsigned long *lens;
	int rows = 0;
	err_init(&e);
	assert_int_equal(db_query_result(d, "WITH RECURSIVE s (n) AS (SELECT 1 "
					 "UNION ALL SELECT n + 1 FROM s WHERE n < 1000) "
					 "SELECT n FROM s", true, &res, &e), 0);
	for (;;) {
		assert_int_equal(db_fetch_row(d, res, &row, &lens, &e), 0);
		if (!row)
			break;
		rows++;
		assert_true(lens[0] > 0);
	}
	mysql_free_result(res);
	assert_int_equal(db_finish(d, &e), 0);
	assert_int_equal(rows, 1000);
	db_close(d);
}

static void test_wrong_password(void **state)
{
	struct db_opts o = opts_for(primary_port);
	struct db *d = (struct db *)&o; /* must be reset to NULL */
	struct err e;
	char want[128];

	o.password = "wrong-Passw0rd-xyz";
	err_init(&e);
	assert_int_equal(db_connect(&o, &d, &e), ERR_DB_CONNECT);
	assert_null(d);
	assert_int_equal(e.code, ERR_DB_CONNECT);
	assert_int_equal(e.db_errno, 1045);
	assert_string_equal(e.sqlstate, "28000");
	snprintf(want, sizeof(want), "unable to connect to '127.0.0.1:%u' as "
		 "'testadmin': Access denied for user 'testadmin'", primary_port);
	if (strncmp(e.msg, want, strlen(want)) != 0)
		fail_msg("message '%s'", e.msg);
	assert_non_null(strstr(e.msg, "(errno 1045)"));
	assert_null(strstr(e.msg, "wrong-Passw0rd-xyz"));
	assert_null(strstr(e.msg, password));
	assert_false(err_retryable(&e));
}

static unsigned free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	close(fd);
	return ntohs(a.sin_port);
}

static void test_unreachable_port(void **state)
{
	struct db_opts o = opts_for(free_port());
	struct db *d;
	struct err e;
	double t0 = now_s();

	o.connect_timeout_s = 2;
	err_init(&e);
	assert_int_equal(db_connect(&o, &d, &e), ERR_DB_CONNECT);
	assert_null(d);
	assert_true(now_s() - t0 < 2.5);
	assert_true(e.db_errno == 2002 || e.db_errno == 2003);
	assert_non_null(strstr(e.msg, "unable to connect to '127.0.0.1:"));
	assert_null(strstr(e.msg, password));
	assert_true(err_retryable(&e));
}

/* A server that accepts TCP connections but never greets: only the
 * connect timeout ends the wait. */
static void test_connect_timeout(void **state)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct db_opts o;
	struct db *d;
	struct err e;
	double t0, took;

	assert_true(fd >= 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(fd, 4), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);

	o = opts_for(ntohs(a.sin_port));
	o.connect_timeout_s = 1;
	o.read_timeout_s = 30;
	err_init(&e);
	t0 = now_s();
	assert_int_equal(db_connect(&o, &d, &e), ERR_DB_CONNECT);
	took = now_s() - t0;
	close(fd);
	assert_null(d);
	if (took > 4.0)
		fail_msg("connect timeout of 1 s took %.1f s", took);
	assert_true(e.db_errno != 0);
}

static void test_bad_query(void **state)
{
	struct db *d = connect_ok(primary_port);
	struct err e;
	char want[64];
	char *v;

	err_init(&e);
	assert_int_equal(db_exec(d, "SELEC 1", &e), ERR_DB_QUERY);
	assert_int_equal(e.db_errno, 1064);
	assert_string_equal(e.sqlstate, "42000");
	snprintf(want, sizeof(want), "statement failed on '127.0.0.1:%u': ",
		 primary_port);
	assert_true(strncmp(e.msg, want, strlen(want)) == 0);
	assert_non_null(strstr(e.msg, "(errno 1064)"));

	err_init(&e);
	assert_int_equal(db_query_value(d, "SELECT * FROM bkd_no_such_db.t", &v,
					NULL, &e), ERR_DB_QUERY);
	assert_int_equal(e.db_errno, 1146);
	assert_string_equal(e.sqlstate, "42S02");
	assert_null(v);
	assert_false(err_retryable(&e));

	/* The connection is still usable. */
	v = value_ok(d, "SELECT 'still here'");
	assert_string_equal(v, "still here");
	free(v);
	db_close(d);
}

static void insert_and_read_back(struct db *d, const char *table, int id,
				 const char *data, size_t n)
{
	struct buf b;
	struct err e;
	char *v;
	size_t len;
	bool found;

	err_init(&e);
	buf_init(&b, 64 * 1024);
	assert_int_equal(buf_printf(&b, &e, "INSERT INTO %s VALUES (%d, ", table,
				    id), 0);
	assert_int_equal(db_quote_string(d, &b, data, n, &e), 0);
	assert_int_equal(buf_append_str(&b, ")", &e), 0);
	if (db_exec_buf(d, &b, &e) != 0)
		fail_msg("insert %d: %s", id, e.msg);
	buf_reset(&b);
	assert_int_equal(buf_printf(&b, &e, "SELECT `va``l` FROM %s WHERE id = %d",
				    table, id), 0);
	assert_int_equal(db_query_value_len(d, b.data, b.len, &v, &len, &found,
					    &e), 0);
	assert_true(found);
	assert_int_equal(len, n);
	assert_memory_equal(v, data, n);
	free(v);
	buf_release(&b);
}

static void test_quoting_round_trip(void **state)
{
	static const char name[] = "we`ird 'tbl\" \\ ü€表";
	static const char data[] = "a\0b'c\"d\\e\nf\rg\032h ü\xff\x00z`";
	struct db *d = connect_ok(primary_port);
	struct buf table, b;
	struct err e;
	char *v;

	err_init(&e);
	buf_init(&table, 1024);
	buf_init(&b, 4096);
	assert_int_equal(db_quote_table(&table, schema, name, &e), 0);
	assert_int_equal(buf_printf(&b, &e, "CREATE TABLE %s (id INT PRIMARY KEY, "
				    "`va``l` VARBINARY(255))", table.data), 0);
	if (db_exec_buf(d, &b, &e) != 0)
		fail_msg("create: %s", e.msg);

	/* The server stored the name as given. */
	buf_reset(&b);
	assert_int_equal(buf_append_str(&b, "SELECT table_name FROM "
				"information_schema.tables WHERE table_schema = ",
				&e), 0);
	assert_int_equal(db_quote_string(d, &b, schema, strlen(schema), &e), 0);
	v = value_ok(d, b.data);
	assert_string_equal(v, name);
	free(v);

	insert_and_read_back(d, table.data, 1, data, sizeof(data) - 1);

	/* With NO_BACKSLASH_ESCAPES quotes are doubled and NUL goes raw. */
	exec_ok(d, "SET SESSION sql_mode = CONCAT(@@sql_mode, ',NO_BACKSLASH_ESCAPES')");
	assert_true(db_no_backslash_escapes(d));
	insert_and_read_back(d, table.data, 2, data, sizeof(data) - 1);
	/* The pure quoting of dialect.c agrees with the server. */
	buf_reset(&b);
	assert_int_equal(buf_printf(&b, &e, "INSERT INTO %s VALUES (3, ",
				    table.data), 0);
	assert_int_equal(dialect_quote_string(&b, "it's a \\ test", 13, true, &e), 0);
	assert_int_equal(buf_append_str(&b, ")", &e), 0);
	assert_int_equal(db_exec_buf(d, &b, &e), 0);
	buf_reset(&b);
	assert_int_equal(buf_printf(&b, &e, "SELECT `va``l` = 'it''s a \\ test' "
				    "FROM %s WHERE id = 3", table.data), 0);
	v = value_ok(d, b.data);
	assert_string_equal(v, "1");
	free(v);
	exec_ok(d, "SET SESSION sql_mode = DEFAULT");
	assert_false(db_no_backslash_escapes(d));

	buf_reset(&b);
	assert_int_equal(buf_printf(&b, &e, "INSERT INTO %s VALUES (4, ",
				    table.data), 0);
	assert_int_equal(dialect_quote_string(&b, data, sizeof(data) - 1, false,
					      &e), 0);
	assert_int_equal(buf_append_str(&b, ")", &e), 0);
	assert_int_equal(db_exec_buf(d, &b, &e), 0);
	buf_reset(&b);
	assert_int_equal(buf_printf(&b, &e, "SELECT COUNT(DISTINCT `va``l`) FROM "
				    "%s WHERE id IN (1, 2, 4)", table.data), 0);
	v = value_ok(d, b.data);
	assert_string_equal(v, "1");
	free(v);

	buf_release(&b);
	buf_release(&table);
	db_close(d);
}

static void test_primary_state(void **state)
{
	struct db *d = connect_ok(primary_port);
	struct db_replica_status s;
	struct err e;
	char *gtid, *v;
	bool ro = true;

	err_init(&e);
	assert_int_equal(db_replica_status(d, &s, &e), 0);
	assert_false(s.configured);
	assert_false(s.io_running);
	db_replica_status_release(&s);

	assert_int_equal(db_gtid_position(d, &gtid, &e), 0);
	assert_true(gtid[0] != '\0'); /* setup created a schema */
	assert_null(strchr(gtid, '\n'));
	free(gtid);

	assert_int_equal(db_read_only(d, &ro, &e), 0);
	assert_false(ro);

	v = value_ok(d, "SELECT @@server_id");
	assert_true(db_server_id(d) > 0);
	assert_int_equal(db_server_id(d), strtoul(v, NULL, 10));
	free(v);
	db_close(d);
}

static void test_session_options(void **state)
{
	struct db_opts o = opts_for(primary_port);
	struct db *d;
	struct err e;
	char path[] = "/tmp/test_db_infile_XXXXXX";
	char sql[512];
	char *v;
	int fd;

	o.init_command = "SET SESSION wait_timeout = 123";
	err_init(&e);
	assert_int_equal(db_connect(&o, &d, &e), 0);
	v = value_ok(d, "SELECT @@SESSION.wait_timeout");
	assert_string_equal(v, "123");
	free(v);

	/* LOAD DATA LOCAL only when asked for. */
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "1\n2\n3\n", 6), 6);
	close(fd);
	snprintf(sql, sizeof(sql), "CREATE TABLE `%s`.infile (n INT)", schema);
	exec_ok(d, sql);
	snprintf(sql, sizeof(sql), "LOAD DATA LOCAL INFILE '%s' INTO TABLE "
		 "`%s`.infile", path, schema);
	err_init(&e);
	assert_int_equal(db_exec(d, sql, &e), ERR_DB_QUERY);
	assert_true(e.db_errno != 0);
	db_close(d);

	o.init_command = NULL;
	o.local_infile = true;
	err_init(&e);
	assert_int_equal(db_connect(&o, &d, &e), 0);
	exec_ok(d, sql);
	snprintf(sql, sizeof(sql), "SELECT SUM(n) FROM `%s`.infile", schema);
	v = value_ok(d, sql);
	assert_string_equal(v, "6");
	free(v);
	db_close(d);
	unlink(path);
}

static void test_tls_modes(void **state)
{
	struct db_opts o = opts_for(primary_port);
	struct db *d;
	struct err e;
	MYSQL_RES *res;
	MYSQL_ROW row;
	bool server_tls = false, known = false;

	o.ssl_mode = "sometimes";
	err_init(&e);
	assert_int_equal(db_connect(&o, &d, &e), ERR_CONFIG);
	assert_non_null(strstr(e.msg, "'sometimes'"));

	o.ssl_mode = "disabled";
	err_init(&e);
	assert_int_equal(db_connect(&o, &d, &e), 0);
	assert_null(db_tls_cipher(d));
	assert_int_equal(db_query_result(d, "SHOW GLOBAL VARIABLES LIKE "
					 "'have_ssl'", false, &res, &e), 0);
	assert_int_equal(db_fetch_row(d, res, &row, NULL, &e), 0);
	if (row && row[1]) {
		known = true;
		server_tls = strcmp(row[1], "YES") == 0;
	}
	mysql_free_result(res);
	assert_int_equal(db_finish(d, &e), 0);
	db_close(d);
	if (!known) /* MySQL 8.4 dropped have_ssl; it always offers TLS */
		server_tls = true;

	o.ssl_mode = "preferred";
	err_init(&e);
	assert_int_equal(db_connect(&o, &d, &e), 0);
	assert_int_equal(db_tls_cipher(d) != NULL, server_tls);
	db_close(d);

	o.ssl_mode = "required";
	err_init(&e);
	if (server_tls) {
		assert_int_equal(db_connect(&o, &d, &e), 0);
		assert_non_null(db_tls_cipher(d));
		db_close(d);
	} else {
		assert_int_equal(db_connect(&o, &d, &e), ERR_DB_CONNECT);
		assert_null(d);
		assert_null(strstr(e.msg, password));
	}

	if (!server_tls) {
		o.ssl_mode = "verify_identity";
		err_init(&e);
		assert_int_equal(db_connect(&o, &d, &e), ERR_DB_CONNECT);
		assert_null(d);
	}
}

static void test_secrets_stay_out_of_errors(void **state)
{
	struct db *d = connect_ok(primary_port);
	struct buf b;
	struct err e;
	char want[128];

	buf_init(&b, 4096);
	err_init(&e);
	assert_int_equal(buf_append_str(&b, "SELEC 'topsecret-pw' FROM x", &e), 0);
	assert_int_equal(db_exec_secret(d, &b, "topsecret-pw", &e), ERR_DB_QUERY);
	assert_int_equal(e.db_errno, 1064);
	assert_null(strstr(e.msg, "topsecret"));
	assert_non_null(strstr(e.msg, "syntax error"));

	buf_reset(&b);
	err_init(&e);
	assert_int_equal(buf_append_str(&b, "SELECT * FROM `topsecret-pw`.`t`",
					&e), 0);
	assert_int_equal(db_exec_secret(d, &b, "topsecret-pw", &e), ERR_DB_QUERY);
	assert_int_equal(e.db_errno, 1146);
	assert_string_equal(e.sqlstate, "42S02");
	snprintf(want, sizeof(want), "statement failed on '127.0.0.1:%u': "
		 "Table '***' doesn't exist (errno 1146)", primary_port);
	assert_string_equal(e.msg, want);
	buf_release(&b);

	/* A replication source set up (not started) on the primary, read
	 * back through the replica status, then removed again. */
	struct dialect_source src = {
		.host = "127.0.0.1", .port = 1, .user = "bkd_nobody",
		.password = "s3cr'et\\pw\"", .connect_retry_s = 1,
	};
	struct db_replica_status s;
	err_init(&e);
	source_set_on_primary = true;
	if (db_change_source(d, &src, &e) != 0)
		fail_msg("change source: %s", e.msg);
	assert_int_equal(db_replica_status(d, &s, &e), 0);
	assert_true(s.configured);
	assert_false(s.io_running);
	assert_false(s.sql_running);
	assert_string_equal(s.io_state_raw, "No");
	assert_string_equal(s.source_host, "127.0.0.1");
	assert_int_equal(s.source_port, 1);
	assert_true(s.using_gtid);
	db_replica_status_release(&s);
	exec_ok(d, db_sql(d, DIALECT_RESET_REPLICA_ALL));
	source_set_on_primary = false;
	assert_int_equal(db_replica_status(d, &s, &e), 0);
	assert_false(s.configured);
	db_replica_status_release(&s);

	/* A refused change keeps the password out of the message. */
	src.port = 70000;
	assert_int_equal(db_change_source(d, &src, &e), ERR_USAGE);
	assert_null(strstr(e.msg, "s3cr"));
	db_close(d);
}

static void wait_sql_running(struct db *d, bool want)
{
	struct db_replica_status s;
	struct err e;
	double t0 = now_s();

	for (;;) {
		err_init(&e);
		if (db_replica_status(d, &s, &e) != 0)
			fail_msg("replica status: %s", e.msg);
		bool running = s.sql_running;
		db_replica_status_release(&s);
		if (running == want)
			return;
		if (now_s() - t0 > 10)
			fail_msg("SQL thread still %s after 10 s",
				 running ? "running" : "stopped");
		usleep(100 * 1000);
	}
}

static void test_replica(void **state)
{
	struct db *p, *r;
	struct db_replica_status s;
	struct err e;
	char *pos, *rpos, sql[256];
	bool ro;

	if (!replica_port) {
		fprintf(stderr, "test_db: REPLICA_PORT not set: replica tests "
			"skipped\n");
		skip();
	}
	p = connect_ok(primary_port);
	r = connect_ok(replica_port);

	err_init(&e);
	if (db_replica_status(r, &s, &e) != 0)
		fail_msg("replica status: %s", e.msg);
	assert_true(s.configured);
	if (!s.io_running || !s.sql_running)
		fail_msg("replica not running: IO %s (%u %s), SQL %d (%u %s)",
			 s.io_state_raw, s.last_io_errno, s.last_io_error,
			 s.sql_running, s.last_sql_errno, s.last_sql_error);
	assert_string_equal(s.io_state_raw, "Yes");
	assert_int_equal(s.source_port, primary_port);
	assert_true(s.seconds_behind >= 0);
	assert_true(s.using_gtid);
	assert_non_null(s.gtid_io_pos);
	assert_true(s.gtid_io_pos[0] != '\0');
	assert_non_null(s.gtid_executed);
	assert_true(s.gtid_executed[0] != '\0');
	assert_int_equal(s.last_io_errno, 0);
	assert_int_equal(s.last_sql_errno, 0);
	db_replica_status_release(&s);
	assert_int_equal(db_read_only(r, &ro, &e), 0);
	assert_true(db_server_id(r) != db_server_id(p));

	/* A write on the primary reaches the replica: wait for its GTID. */
	snprintf(sql, sizeof(sql), "CREATE TABLE `%s`.repl_probe (n INT)", schema);
	exec_ok(p, sql);
	assert_int_equal(db_gtid_position(p, &pos, &e), 0);
	if (db_gtid_wait(r, pos, 10, &e) != 0)
		fail_msg("wait for '%s': %s", pos, e.msg);
	assert_int_equal(db_gtid_position(r, &rpos, &e), 0);
	if (db_flavor(r) == DB_FLAVOR_MARIADB)
		assert_string_equal(rpos, pos);
	free(rpos);
	free(pos);

	/* A position the primary has not reached times out. */
	err_init(&e);
	snprintf(sql, sizeof(sql), "0-%lu-999999999", db_server_id(p));
	if (db_flavor(r) == DB_FLAVOR_MARIADB) {
		double t0 = now_s();
		assert_int_equal(db_gtid_wait(r, sql, 1, &e), ERR_TIMEOUT);
		assert_true(now_s() - t0 < 5);
	}
	err_init(&e);
	assert_int_equal(db_gtid_wait(r, sql, 30, &e), ERR_USAGE);

	/* Stopping the SQL thread shows as not running, lag unknown. */
	replica_sql_stopped = true;
	exec_ok(r, db_sql(r, DIALECT_STOP_SQL_THREAD));
	err_init(&e);
	assert_int_equal(db_replica_status(r, &s, &e), 0);
	bool sql_running = s.sql_running;
	long long behind = s.seconds_behind;
	db_replica_status_release(&s);
	exec_ok(r, db_sql(r, DIALECT_START_SQL_THREAD));
	replica_sql_stopped = false;
	assert_false(sql_running);
	assert_int_equal(behind, -1);
	wait_sql_running(r, true);

	db_close(r);
	db_close(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_connect_and_detect),
		cmocka_unit_test(test_exec_and_values),
		cmocka_unit_test(test_wrong_password),
		cmocka_unit_test(test_unreachable_port),
		cmocka_unit_test(test_connect_timeout),
		cmocka_unit_test(test_bad_query),
		cmocka_unit_test(test_quoting_round_trip),
		cmocka_unit_test(test_primary_state),
		cmocka_unit_test(test_session_options),
		cmocka_unit_test(test_tls_modes),
		cmocka_unit_test(test_secrets_stay_out_of_errors),
		cmocka_unit_test(test_replica),
	};
	int rc;

	if (mysql_library_init(0, NULL, NULL) != 0) {
		fprintf(stderr, "test_db: mysql_library_init failed\n");
		return 1;
	}
	rc = cmocka_run_group_tests(tests, group_setup, group_teardown);
	mysql_library_end();
	return rc;
}
