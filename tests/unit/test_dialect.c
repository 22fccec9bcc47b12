/* Unit tests of lib/dialect.c and the pure parts of lib/db.c (identifier
 * quoting): no server needed. Replica status column lists are copied from
 * real servers (MariaDB 10.11.19 here; MySQL 8.0 and 5.7 from their
 * reference manuals) so that a renamed column shows up as a failure. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "buf.h"
#include "db.h"
#include "dialect.h"
#include "err.h"

/* MariaDB 10.11.19: SHOW SLAVE STATUS. */
static const char *const mariadb_slave_cols[] = {
	"Slave_IO_State", "Master_Host", "Master_User", "Master_Port",
	"Connect_Retry", "Master_Log_File", "Read_Master_Log_Pos",
	"Relay_Log_File", "Relay_Log_Pos", "Relay_Master_Log_File",
	"Slave_IO_Running", "Slave_SQL_Running", "Replicate_Do_DB",
	"Replicate_Ignore_DB", "Replicate_Do_Table", "Replicate_Ignore_Table",
	"Replicate_Wild_Do_Table", "Replicate_Wild_Ignore_Table", "Last_Errno",
	"Last_Error", "Skip_Counter", "Exec_Master_Log_Pos", "Relay_Log_Space",
	"Until_Condition", "Until_Log_File", "Until_Log_Pos",
	"Master_SSL_Allowed", "Master_SSL_CA_File", "Master_SSL_CA_Path",
	"Master_SSL_Cert", "Master_SSL_Cipher", "Master_SSL_Key",
	"Seconds_Behind_Master", "Master_SSL_Verify_Server_Cert",
	"Last_IO_Errno", "Last_IO_Error", "Last_SQL_Errno", "Last_SQL_Error",
	"Replicate_Ignore_Server_Ids", "Master_Server_Id", "Master_SSL_Crl",
	"Master_SSL_Crlpath", "Using_Gtid", "Gtid_IO_Pos",
	"Replicate_Do_Domain_Ids", "Replicate_Ignore_Domain_Ids",
	"Parallel_Mode", "SQL_Delay", "SQL_Remaining_Delay",
	"Slave_SQL_Running_State", "Slave_DDL_Groups",
	"Slave_Non_Transactional_Groups", "Slave_Transactional_Groups",
	"Replicate_Rewrite_DB",
};

/* MariaDB 10.11.19: SHOW ALL SLAVES STATUS (what the dialect runs). */
static const char *const mariadb_all_slaves_cols[] = {
	"Connection_name", "Slave_SQL_State", "Slave_IO_State", "Master_Host",
	"Master_User", "Master_Port", "Connect_Retry", "Master_Log_File",
	"Read_Master_Log_Pos", "Relay_Log_File", "Relay_Log_Pos",
	"Relay_Master_Log_File", "Slave_IO_Running", "Slave_SQL_Running",
	"Replicate_Do_DB", "Replicate_Ignore_DB", "Replicate_Do_Table",
	"Replicate_Ignore_Table", "Replicate_Wild_Do_Table",
	"Replicate_Wild_Ignore_Table", "Last_Errno", "Last_Error",
	"Skip_Counter", "Exec_Master_Log_Pos", "Relay_Log_Space",
	"Until_Condition", "Until_Log_File", "Until_Log_Pos",
	"Master_SSL_Allowed", "Master_SSL_CA_File", "Master_SSL_CA_Path",
	"Master_SSL_Cert", "Master_SSL_Cipher", "Master_SSL_Key",
	"Seconds_Behind_Master", "Master_SSL_Verify_Server_Cert",
	"Last_IO_Errno", "Last_IO_Error", "Last_SQL_Errno", "Last_SQL_Error",
	"Replicate_Ignore_Server_Ids", "Master_Server_Id", "Master_SSL_Crl",
	"Master_SSL_Crlpath", "Using_Gtid", "Gtid_IO_Pos",
	"Replicate_Do_Domain_Ids", "Replicate_Ignore_Domain_Ids",
	"Parallel_Mode", "SQL_Delay", "SQL_Remaining_Delay",
	"Slave_SQL_Running_State", "Slave_DDL_Groups",
	"Slave_Non_Transactional_Groups", "Slave_Transactional_Groups",
	"Replicate_Rewrite_DB", "Retried_transactions", "Max_relay_log_size",
	"Executed_log_entries", "Slave_received_heartbeats",
	"Slave_heartbeat_period", "Gtid_Slave_Pos",
};

/* MySQL 8.0.22+: SHOW REPLICA STATUS. */
static const char *const mysql80_replica_cols[] = {
	"Replica_IO_State", "Source_Host", "Source_User", "Source_Port",
	"Connect_Retry", "Source_Log_File", "Read_Source_Log_Pos",
	"Relay_Log_File", "Relay_Log_Pos", "Relay_Source_Log_File",
	"Replica_IO_Running", "Replica_SQL_Running", "Replicate_Do_DB",
	"Replicate_Ignore_DB", "Replicate_Do_Table", "Replicate_Ignore_Table",
	"Replicate_Wild_Do_Table", "Replicate_Wild_Ignore_Table", "Last_Errno",
	"Last_Error", "Skip_Counter", "Exec_Source_Log_Pos", "Relay_Log_Space",
	"Until_Condition", "Until_Log_File", "Until_Log_Pos",
	"Source_SSL_Allowed", "Source_SSL_CA_File", "Source_SSL_CA_Path",
	"Source_SSL_Cert", "Source_SSL_Cipher", "Source_SSL_Key",
	"Seconds_Behind_Source", "Source_SSL_Verify_Server_Cert",
	"Last_IO_Errno", "Last_IO_Error", "Last_SQL_Errno", "Last_SQL_Error",
	"Replicate_Ignore_Server_Ids", "Source_Server_Id", "Source_UUID",
	"Source_Info_File", "SQL_Delay", "SQL_Remaining_Delay",
	"Replica_SQL_Running_State", "Source_Retry_Count", "Source_Bind",
	"Last_IO_Error_Timestamp", "Last_SQL_Error_Timestamp", "Source_SSL_Crl",
	"Source_SSL_Crlpath", "Retrieved_Gtid_Set", "Executed_Gtid_Set",
	"Auto_Position", "Replicate_Rewrite_DB", "Channel_Name",
	"Source_TLS_Version", "Source_public_key_path",
	"Get_Source_public_key", "Network_Namespace",
};

/* MySQL 5.7: SHOW SLAVE STATUS. */
static const char *const mysql57_slave_cols[] = {
	"Slave_IO_State", "Master_Host", "Master_User", "Master_Port",
	"Connect_Retry", "Master_Log_File", "Read_Master_Log_Pos",
	"Relay_Log_File", "Relay_Log_Pos", "Relay_Master_Log_File",
	"Slave_IO_Running", "Slave_SQL_Running", "Replicate_Do_DB",
	"Replicate_Ignore_DB", "Replicate_Do_Table", "Replicate_Ignore_Table",
	"Replicate_Wild_Do_Table", "Replicate_Wild_Ignore_Table", "Last_Errno",
	"Last_Error", "Skip_Counter", "Exec_Master_Log_Pos", "Relay_Log_Space",
	"Until_Condition", "Until_Log_File", "Until_Log_Pos",
	"Master_SSL_Allowed", "Master_SSL_CA_File", "Master_SSL_CA_Path",
	"Master_SSL_Cert", "Master_SSL_Cipher", "Master_SSL_Key",
	"Seconds_Behind_Master", "Master_SSL_Verify_Server_Cert",
	"Last_IO_Errno", "Last_IO_Error", "Last_SQL_Errno", "Last_SQL_Error",
	"Replicate_Ignore_Server_Ids", "Master_Server_Id", "Master_UUID",
	"Master_Info_File", "SQL_Delay", "SQL_Remaining_Delay",
	"Slave_SQL_Running_State", "Master_Retry_Count", "Master_Bind",
	"Last_IO_Error_Timestamp", "Last_SQL_Error_Timestamp", "Master_SSL_Crl",
	"Master_SSL_Crlpath", "Retrieved_Gtid_Set", "Executed_Gtid_Set",
	"Auto_Position", "Replicate_Rewrite_DB", "Channel_Name",
	"Master_TLS_Version",
};

#define NCOLS(a) (sizeof(a) / sizeof((a)[0]))
#define ROW_MAX 80

struct row {
	const char *const *names;
	size_t n;
	const char *values[ROW_MAX];
};

/* Every column "" (as the servers print unset text columns). */
static void row_init(struct row *r, const char *const *names, size_t n)
{
	assert_true(n <= ROW_MAX);
	r->names = names;
	r->n = n;
	for (size_t i = 0; i < n; i++)
		r->values[i] = "";
}

static void row_set(struct row *r, const char *name, const char *value)
{
	for (size_t i = 0; i < r->n; i++) {
		if (strcmp(r->names[i], name) == 0) {
			r->values[i] = value;
			return;
		}
	}
	fail_msg("no column '%s' in this column list", name);
}

static int parse(enum db_flavor f, struct row *r, struct db_replica_status *s,
		 struct err *e)
{
	err_init(e);
	return dialect_parse_replica_status(f, r->names, r->values, r->n, s, e);
}

static void test_mariadb_slave_status_running(void **state)
{
	struct row r;
	struct db_replica_status s;
	struct err e;

	row_init(&r, mariadb_slave_cols, NCOLS(mariadb_slave_cols));
	row_set(&r, "Slave_IO_State", "Waiting for master to send event");
	row_set(&r, "Master_Host", "127.0.0.1");
	row_set(&r, "Master_User", "repl");
	row_set(&r, "Master_Port", "33999");
	row_set(&r, "Relay_Master_Log_File", "bin.000001");
	row_set(&r, "Slave_IO_Running", "Yes");
	row_set(&r, "Slave_SQL_Running", "Yes");
	row_set(&r, "Exec_Master_Log_Pos", "1010");
	row_set(&r, "Seconds_Behind_Master", "0");
	row_set(&r, "Last_IO_Errno", "0");
	row_set(&r, "Last_SQL_Errno", "0");
	row_set(&r, "Using_Gtid", "Slave_Pos");
	row_set(&r, "Gtid_IO_Pos", "0-9-4");
	row_set(&r, "SQL_Remaining_Delay", NULL);
	row_set(&r, "Slave_SQL_Running_State",
		"Slave has read all relay log; waiting for more updates");

	assert_int_equal(parse(DB_FLAVOR_MARIADB, &r, &s, &e), 0);
	assert_true(s.configured);
	assert_true(s.io_running);
	assert_true(s.sql_running);
	assert_string_equal(s.io_state_raw, "Yes");
	assert_string_equal(s.sql_state,
			    "Slave has read all relay log; waiting for more updates");
	assert_int_equal(s.seconds_behind, 0);
	assert_string_equal(s.source_host, "127.0.0.1");
	assert_int_equal(s.source_port, 33999);
	assert_true(s.using_gtid);
	assert_string_equal(s.gtid_io_pos, "0-9-4");
	/* Only SHOW ALL SLAVES STATUS has Gtid_Slave_Pos: db.c asks for
	 * @@gtid_slave_pos then. */
	assert_null(s.gtid_executed);
	assert_string_equal(s.relay_source_log_file, "bin.000001");
	assert_int_equal(s.exec_source_log_pos, 1010);
	assert_int_equal(s.last_io_errno, 0);
	assert_string_equal(s.last_io_error, "");
	db_replica_status_release(&s);
	assert_null(s.gtid_io_pos);
}

static void test_mariadb_all_slaves_connecting(void **state)
{
	static const char io_error[] =
		"error connecting to master 'repl@127.0.0.1:33999' - retry-time: 1  "
		"maximum-retries: 100000  message: Access denied for user "
		"'repl'@'127.0.0.1' (using password: YES)";
	struct row r;
	struct db_replica_status s;
	struct err e;

	row_init(&r, mariadb_all_slaves_cols, NCOLS(mariadb_all_slaves_cols));
	row_set(&r, "Slave_IO_State", "Connecting to master");
	row_set(&r, "Master_Host", "127.0.0.1");
	row_set(&r, "Master_Port", "33999");
	row_set(&r, "Slave_IO_Running", "Connecting");
	row_set(&r, "Slave_SQL_Running", "Yes");
	row_set(&r, "Seconds_Behind_Master", NULL);
	row_set(&r, "Last_IO_Errno", "1045");
	row_set(&r, "Last_IO_Error", io_error);
	row_set(&r, "Last_SQL_Errno", "0");
	row_set(&r, "Using_Gtid", "Current_Pos");
	row_set(&r, "Gtid_IO_Pos", "0-9-4");
	row_set(&r, "Gtid_Slave_Pos", "0-9-4,1-10-7");
	row_set(&r, "SQL_Remaining_Delay", NULL);

	assert_int_equal(dialect_replica_channel_column(r.names, r.n), 0);
	assert_int_equal(parse(DB_FLAVOR_MARIADB, &r, &s, &e), 0);
	assert_true(s.configured);
	assert_false(s.io_running);
	assert_string_equal(s.io_state_raw, "Connecting");
	assert_true(s.sql_running);
	assert_int_equal(s.seconds_behind, -1);
	assert_int_equal(s.last_io_errno, 1045);
	assert_string_equal(s.last_io_error, io_error);
	assert_true(s.using_gtid);
	assert_string_equal(s.gtid_executed, "0-9-4,1-10-7");
	db_replica_status_release(&s);
}

static void test_mariadb_sql_thread_stopped_no_gtid(void **state)
{
	struct row r;
	struct db_replica_status s;
	struct err e;

	row_init(&r, mariadb_all_slaves_cols, NCOLS(mariadb_all_slaves_cols));
	row_set(&r, "Master_Port", "3306");
	row_set(&r, "Slave_IO_Running", "Yes");
	row_set(&r, "Slave_SQL_Running", "No");
	row_set(&r, "Seconds_Behind_Master", NULL);
	row_set(&r, "Last_SQL_Errno", "1146");
	row_set(&r, "Last_SQL_Error",
		"Error executing row event: 'Table 'shop.t' doesn't exist'");
	row_set(&r, "Using_Gtid", "No");
	row_set(&r, "Gtid_IO_Pos", "");
	row_set(&r, "Gtid_Slave_Pos", "");

	assert_int_equal(parse(DB_FLAVOR_MARIADB, &r, &s, &e), 0);
	assert_true(s.io_running);
	assert_false(s.sql_running);
	assert_int_equal(s.seconds_behind, -1);
	assert_int_equal(s.last_sql_errno, 1146);
	assert_non_null(strstr(s.last_sql_error, "doesn't exist"));
	assert_false(s.using_gtid);
	assert_string_equal(s.gtid_executed, "");
	db_replica_status_release(&s);
}

static void test_mysql80_replica_status(void **state)
{
	struct row r;
	struct db_replica_status s;
	struct err e;

	row_init(&r, mysql80_replica_cols, NCOLS(mysql80_replica_cols));
	row_set(&r, "Replica_IO_State", "Waiting for source to send event");
	row_set(&r, "Source_Host", "db-primary.example");
	row_set(&r, "Source_Port", "3306");
	row_set(&r, "Relay_Source_Log_File", "binlog.000042");
	row_set(&r, "Replica_IO_Running", "Yes");
	row_set(&r, "Replica_SQL_Running", "Yes");
	row_set(&r, "Exec_Source_Log_Pos", "18446744073709551615");
	row_set(&r, "Seconds_Behind_Source", "12");
	row_set(&r, "Last_IO_Errno", "0");
	row_set(&r, "Last_SQL_Errno", "0");
	row_set(&r, "SQL_Remaining_Delay", NULL);
	row_set(&r, "Replica_SQL_Running_State",
		"Replica has read all relay log; waiting for more updates");
	row_set(&r, "Retrieved_Gtid_Set",
		"3E11FA47-71CA-11E1-9E33-C80AA9429562:1-5");
	row_set(&r, "Executed_Gtid_Set",
		"3E11FA47-71CA-11E1-9E33-C80AA9429562:1-5,\n"
		"4D22FB58-82DB-22F2-AF44-D91BB9539673:1-3");
	row_set(&r, "Auto_Position", "1");

	assert_int_equal(dialect_replica_channel_column(r.names, r.n),
			 (int)NCOLS(mysql80_replica_cols) - 5);
	assert_int_equal(parse(DB_FLAVOR_MYSQL, &r, &s, &e), 0);
	assert_true(s.configured);
	assert_true(s.io_running);
	assert_true(s.sql_running);
	assert_int_equal(s.seconds_behind, 12);
	assert_string_equal(s.source_host, "db-primary.example");
	assert_int_equal(s.source_port, 3306);
	assert_string_equal(s.relay_source_log_file, "binlog.000042");
	assert_true(s.exec_source_log_pos == 18446744073709551615ull);
	assert_string_equal(s.sql_state,
			    "Replica has read all relay log; waiting for more updates");
	assert_true(s.using_gtid);
	assert_string_equal(s.gtid_io_pos,
			    "3E11FA47-71CA-11E1-9E33-C80AA9429562:1-5");
	assert_string_equal(s.gtid_executed,
			    "3E11FA47-71CA-11E1-9E33-C80AA9429562:1-5,"
			    "4D22FB58-82DB-22F2-AF44-D91BB9539673:1-3");
	db_replica_status_release(&s);
}

static void test_mysql57_slave_status_sql_error(void **state)
{
	struct row r;
	struct db_replica_status s;
	struct err e;

	row_init(&r, mysql57_slave_cols, NCOLS(mysql57_slave_cols));
	row_set(&r, "Master_Host", "10.0.0.11");
	row_set(&r, "Master_Port", "3306");
	row_set(&r, "Slave_IO_Running", "Yes");
	row_set(&r, "Slave_SQL_Running", "No");
	row_set(&r, "Seconds_Behind_Master", NULL);
	row_set(&r, "Last_IO_Errno", "0");
	row_set(&r, "Last_SQL_Errno", "1062");
	row_set(&r, "Last_SQL_Error",
		"Could not execute Write_rows event on table shop.orders; "
		"Duplicate entry '7' for key 'PRIMARY'");
	row_set(&r, "Auto_Position", "0");
	row_set(&r, "Retrieved_Gtid_Set", "");
	row_set(&r, "Executed_Gtid_Set", "");

	assert_int_equal(parse(DB_FLAVOR_MYSQL, &r, &s, &e), 0);
	assert_true(s.configured);
	assert_true(s.io_running);
	assert_false(s.sql_running);
	assert_int_equal(s.seconds_behind, -1);
	assert_int_equal(s.last_sql_errno, 1062);
	assert_non_null(strstr(s.last_sql_error, "Duplicate entry"));
	assert_false(s.using_gtid);
	assert_string_equal(s.source_host, "10.0.0.11");
	db_replica_status_release(&s);
}

static void test_not_a_replica(void **state)
{
	struct db_replica_status s;
	struct err e;

	err_init(&e);
	assert_int_equal(dialect_parse_replica_status(DB_FLAVOR_MARIADB,
			 mariadb_all_slaves_cols, NULL,
			 NCOLS(mariadb_all_slaves_cols), &s, &e), 0);
	assert_false(s.configured);
	assert_false(s.io_running);
	assert_int_equal(s.seconds_behind, -1);
	assert_null(s.gtid_executed);
	db_replica_status_release(&s);

	assert_int_equal(dialect_parse_replica_status(DB_FLAVOR_MYSQL, NULL,
			 NULL, 0, &s, &e), 0);
	assert_false(s.configured);
	db_replica_status_release(&s);
	assert_false(err_is_set(&e));
}

static void test_replica_status_malformed(void **state)
{
	static const char *const few[] = { "Slave_IO_Running",
					   "Slave_SQL_Running" };
	const char *const vals[] = { "Yes", "Yes" };
	struct row r;
	struct db_replica_status s;
	struct err e;

	err_init(&e);
	assert_int_equal(dialect_parse_replica_status(DB_FLAVOR_MARIADB, few,
			 vals, 2, &s, &e), ERR_DB_QUERY);
	assert_non_null(strstr(e.msg, "Last_IO_Errno"));
	db_replica_status_release(&s);

	row_init(&r, mariadb_slave_cols, NCOLS(mariadb_slave_cols));
	row_set(&r, "Slave_IO_Running", "Yes");
	row_set(&r, "Slave_SQL_Running", "Yes");
	row_set(&r, "Seconds_Behind_Master", "-3");
	assert_int_equal(parse(DB_FLAVOR_MARIADB, &r, &s, &e), ERR_DB_QUERY);
	db_replica_status_release(&s);

	row_set(&r, "Seconds_Behind_Master", "5");
	row_set(&r, "Master_Port", "70000");
	assert_int_equal(parse(DB_FLAVOR_MARIADB, &r, &s, &e), ERR_DB_QUERY);
	db_replica_status_release(&s);

	row_set(&r, "Master_Port", "3306");
	assert_int_equal(parse(DB_FLAVOR_UNKNOWN, &r, &s, &e), ERR_INTERNAL);
	db_replica_status_release(&s);
}

static void test_statements_per_flavor(void **state)
{
	static const struct {
		enum db_flavor f;
		unsigned long v;
		enum dialect_stmt s;
		const char *sql;
	} cases[] = {
		{ DB_FLAVOR_MARIADB, 101119, DIALECT_SHOW_REPLICA_STATUS, "SHOW ALL SLAVES STATUS" },
		{ DB_FLAVOR_MARIADB, 100600, DIALECT_STOP_SQL_THREAD, "STOP SLAVE SQL_THREAD" },
		{ DB_FLAVOR_MARIADB, 0, DIALECT_START_SQL_THREAD, "START SLAVE SQL_THREAD" },
		{ DB_FLAVOR_MARIADB, 0, DIALECT_START_REPLICA, "START SLAVE" },
		{ DB_FLAVOR_MARIADB, 0, DIALECT_RESET_REPLICA_ALL, "RESET SLAVE ALL" },
		{ DB_FLAVOR_MARIADB, 0, DIALECT_GTID_POSITION, "SELECT @@GLOBAL.gtid_current_pos" },
		{ DB_FLAVOR_MARIADB, 0, DIALECT_GTID_BINLOG_POS, "SELECT @@GLOBAL.gtid_binlog_pos" },
		{ DB_FLAVOR_MARIADB, 0, DIALECT_GTID_SLAVE_POS, "SELECT @@GLOBAL.gtid_slave_pos" },
		{ DB_FLAVOR_MARIADB, 0, DIALECT_SET_READ_ONLY, "SET GLOBAL read_only = 1" },
		{ DB_FLAVOR_MARIADB, 0, DIALECT_SHOW_BINLOG_STATUS, "SHOW MASTER STATUS" },
		{ DB_FLAVOR_MARIADB, 0, DIALECT_RESET_BINLOGS, "RESET MASTER" },
		{ DB_FLAVOR_MYSQL, 80036, DIALECT_SHOW_REPLICA_STATUS, "SHOW REPLICA STATUS" },
		{ DB_FLAVOR_MYSQL, 80022, DIALECT_STOP_SQL_THREAD, "STOP REPLICA SQL_THREAD" },
		{ DB_FLAVOR_MYSQL, 80021, DIALECT_STOP_SQL_THREAD, "STOP SLAVE SQL_THREAD" },
		{ DB_FLAVOR_MYSQL, 80021, DIALECT_SHOW_REPLICA_STATUS, "SHOW SLAVE STATUS" },
		{ DB_FLAVOR_MYSQL, 50744, DIALECT_START_SQL_THREAD, "START SLAVE SQL_THREAD" },
		{ DB_FLAVOR_MYSQL, 0, DIALECT_START_SQL_THREAD, "START REPLICA SQL_THREAD" },
		{ DB_FLAVOR_MYSQL, 80036, DIALECT_RESET_REPLICA_ALL, "RESET REPLICA ALL" },
		{ DB_FLAVOR_MYSQL, 80036, DIALECT_GTID_POSITION, "SELECT @@GLOBAL.gtid_executed" },
		{ DB_FLAVOR_MYSQL, 80036, DIALECT_SET_READ_ONLY, "SET GLOBAL super_read_only = 1" },
		{ DB_FLAVOR_MYSQL, 80036, DIALECT_SHOW_BINLOG_STATUS, "SHOW MASTER STATUS" },
		{ DB_FLAVOR_MYSQL, 80400, DIALECT_SHOW_BINLOG_STATUS, "SHOW BINARY LOG STATUS" },
		{ DB_FLAVOR_MYSQL, 80400, DIALECT_RESET_BINLOGS, "RESET BINARY LOGS AND GTIDS" },
		{ DB_FLAVOR_MYSQL, 80036, DIALECT_RESET_BINLOGS, "RESET MASTER" },
		{ DB_FLAVOR_MYSQL, 80036, DIALECT_VERSION, "SELECT VERSION()" },
		{ DB_FLAVOR_MYSQL, 80036, DIALECT_SERVER_ID, "SELECT @@GLOBAL.server_id" },
	};

	for (size_t i = 0; i < NCOLS(cases); i++) {
		const char *got = dialect_sql_version(cases[i].f, cases[i].v,
						      cases[i].s);
		if (!got || strcmp(got, cases[i].sql) != 0)
			fail_msg("case %zu: got '%s', want '%s'", i,
				 got ? got : "(null)", cases[i].sql);
	}
	assert_string_equal(dialect_sql(DB_FLAVOR_MYSQL, DIALECT_SHOW_REPLICA_STATUS),
			    "SHOW REPLICA STATUS");
	assert_null(dialect_sql(DB_FLAVOR_MYSQL, DIALECT_GTID_SLAVE_POS));
	assert_null(dialect_sql(DB_FLAVOR_UNKNOWN, DIALECT_VERSION));
	assert_null(dialect_sql(DB_FLAVOR_MARIADB, DIALECT_STMT_COUNT));
	/* Every statement exists for both flavors except GTID_SLAVE_POS. */
	for (int s = 0; s < DIALECT_STMT_COUNT; s++) {
		assert_non_null(dialect_sql(DB_FLAVOR_MARIADB, (enum dialect_stmt)s));
		if (s != DIALECT_GTID_SLAVE_POS)
			assert_non_null(dialect_sql(DB_FLAVOR_MYSQL,
						    (enum dialect_stmt)s));
	}
}

static void test_parse_version(void **state)
{
	static const struct {
		const char *s;
		enum db_flavor f;
		unsigned long v;
	} ok[] = {
		{ "10.11.19-MariaDB-0+deb12u1-log", DB_FLAVOR_MARIADB, 101119 },
		{ "5.5.5-10.11.6-MariaDB-log", DB_FLAVOR_MARIADB, 101106 },
		{ "11.4.2-MariaDB", DB_FLAVOR_MARIADB, 110402 },
		{ "8.0.36", DB_FLAVOR_MYSQL, 80036 },
		{ "8.0.36-28", DB_FLAVOR_MYSQL, 80036 },
		{ "8.4.0-log", DB_FLAVOR_MYSQL, 80400 },
		{ "5.7.44-log", DB_FLAVOR_MYSQL, 50744 },
		{ "5.5.5", DB_FLAVOR_MYSQL, 50505 },
	};
	static const char *const bad[] = { "", "MariaDB", "8.0", "8.x.1",
					   "10.111.1-MariaDB", "-8.0.1" };
	enum db_flavor f;
	unsigned long v;
	struct err e;

	for (size_t i = 0; i < NCOLS(ok); i++) {
		err_init(&e);
		assert_int_equal(dialect_parse_version(ok[i].s, &f, &v, &e), 0);
		assert_int_equal(f, ok[i].f);
		assert_int_equal(v, ok[i].v);
	}
	for (size_t i = 0; i < NCOLS(bad); i++) {
		err_init(&e);
		assert_int_equal(dialect_parse_version(bad[i], &f, &v, &e),
				 ERR_DB_CONNECT);
		assert_int_equal(f, DB_FLAVOR_UNKNOWN);
	}
	assert_string_equal(dialect_flavor_name(DB_FLAVOR_MARIADB), "MariaDB");
	assert_string_equal(dialect_flavor_name(DB_FLAVOR_MYSQL), "MySQL");
}

static void build_source(enum db_flavor f, unsigned long v,
			 const struct dialect_source *src, bool nbe,
			 const char *want)
{
	struct buf b;
	struct err e;

	err_init(&e);
	buf_init(&b, 4096);
	assert_int_equal(dialect_build_change_source(f, v, src, nbe, &b, &e), 0);
	assert_string_equal(b.data, want);
	dialect_wipe(&b);
	assert_int_equal(b.len, 0);
	buf_release(&b);
}

static void test_change_source(void **state)
{
	struct dialect_source src = {
		.host = "127.0.0.1", .port = 3307, .user = "repl",
		.password = "p'w\\d\"x", .connect_retry_s = 1,
	};
	struct buf b;
	struct err e;

	build_source(DB_FLAVOR_MARIADB, 101119, &src, false,
		     "CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=3307, "
		     "MASTER_USER='repl', MASTER_PASSWORD='p\\'w\\\\d\\\"x', "
		     "MASTER_CONNECT_RETRY=1, MASTER_SSL=0, MASTER_USE_GTID=slave_pos");
	build_source(DB_FLAVOR_MARIADB, 101119, &src, true,
		     "CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=3307, "
		     "MASTER_USER='repl', MASTER_PASSWORD='p''w\\d\"x', "
		     "MASTER_CONNECT_RETRY=1, MASTER_SSL=0, MASTER_USE_GTID=slave_pos");
	build_source(DB_FLAVOR_MYSQL, 80036, &src, false,
		     "CHANGE REPLICATION SOURCE TO SOURCE_HOST='127.0.0.1', "
		     "SOURCE_PORT=3307, SOURCE_USER='repl', "
		     "SOURCE_PASSWORD='p\\'w\\\\d\\\"x', SOURCE_CONNECT_RETRY=1, "
		     "SOURCE_SSL=0, SOURCE_AUTO_POSITION=1, GET_SOURCE_PUBLIC_KEY=1");
	build_source(DB_FLAVOR_MYSQL, 80022, &src, false,
		     "CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=3307, "
		     "MASTER_USER='repl', MASTER_PASSWORD='p\\'w\\\\d\\\"x', "
		     "MASTER_CONNECT_RETRY=1, MASTER_SSL=0, MASTER_AUTO_POSITION=1, "
		     "GET_MASTER_PUBLIC_KEY=1");
	src.connect_retry_s = 0;
	src.password = NULL;
	build_source(DB_FLAVOR_MYSQL, 50744, &src, false,
		     "CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=3307, "
		     "MASTER_USER='repl', MASTER_PASSWORD='', MASTER_SSL=0, "
		     "MASTER_AUTO_POSITION=1");
	src.ssl = true;
	build_source(DB_FLAVOR_MYSQL, 0, &src, false,
		     "CHANGE REPLICATION SOURCE TO SOURCE_HOST='127.0.0.1', "
		     "SOURCE_PORT=3307, SOURCE_USER='repl', SOURCE_PASSWORD='', "
		     "SOURCE_SSL=1, SOURCE_AUTO_POSITION=1");

	buf_init(&b, 4096);
	err_init(&e);
	src.host = "";
	assert_int_equal(dialect_build_change_source(DB_FLAVOR_MARIADB, 0, &src,
			 false, &b, &e), ERR_USAGE);
	err_init(&e);
	src.host = "h";
	src.port = 0;
	assert_int_equal(dialect_build_change_source(DB_FLAVOR_MARIADB, 0, &src,
			 false, &b, &e), ERR_USAGE);
	err_init(&e);
	src.port = 3306;
	src.user = NULL;
	assert_int_equal(dialect_build_change_source(DB_FLAVOR_MARIADB, 0, &src,
			 false, &b, &e), ERR_USAGE);
	err_init(&e);
	src.user = "u";
	assert_int_equal(dialect_build_change_source(DB_FLAVOR_UNKNOWN, 0, &src,
			 false, &b, &e), ERR_INTERNAL);
	buf_release(&b);
}

static void test_gtid_statements(void **state)
{
	struct buf b;
	struct err e;
	bool reached;

	buf_init(&b, 4096);
	err_init(&e);
	assert_int_equal(dialect_build_gtid_wait(DB_FLAVOR_MARIADB, "0-1-5,1-2-9",
						 30, false, &b, &e), 0);
	assert_string_equal(b.data, "SELECT MASTER_GTID_WAIT('0-1-5,1-2-9', 30)");
	buf_reset(&b);
	assert_int_equal(dialect_build_gtid_wait(DB_FLAVOR_MYSQL, "uuid:1-5", 7,
						 false, &b, &e), 0);
	assert_string_equal(b.data,
			    "SELECT WAIT_FOR_EXECUTED_GTID_SET('uuid:1-5', 7)");
	buf_reset(&b);
	assert_int_equal(dialect_build_set_gtid_position(DB_FLAVOR_MARIADB,
			 "0-1-5", false, &b, &e), 0);
	assert_string_equal(b.data, "SET GLOBAL gtid_slave_pos = '0-1-5'");
	buf_reset(&b);
	assert_int_equal(dialect_build_set_gtid_position(DB_FLAVOR_MYSQL,
			 "uuid:1-5", false, &b, &e), 0);
	assert_string_equal(b.data, "SET GLOBAL gtid_purged = 'uuid:1-5'");
	buf_release(&b);

	assert_int_equal(dialect_gtid_wait_result(DB_FLAVOR_MARIADB, "0",
						  &reached, &e), 0);
	assert_true(reached);
	assert_int_equal(dialect_gtid_wait_result(DB_FLAVOR_MARIADB, "-1",
						  &reached, &e), 0);
	assert_false(reached);
	assert_int_equal(dialect_gtid_wait_result(DB_FLAVOR_MYSQL, "1",
						  &reached, &e), 0);
	assert_false(reached);
	assert_int_equal(dialect_gtid_wait_result(DB_FLAVOR_MYSQL, "0",
						  &reached, &e), 0);
	assert_true(reached);
	assert_false(err_is_set(&e));
	assert_int_equal(dialect_gtid_wait_result(DB_FLAVOR_MYSQL, NULL,
						  &reached, &e), ERR_DB_QUERY);
	err_init(&e);
	assert_int_equal(dialect_gtid_wait_result(DB_FLAVOR_MARIADB, "1",
						  &reached, &e), ERR_DB_QUERY);
}

static void test_quote_string_pure(void **state)
{
	static const char in[] = "a\0b'c\"d\\e\nf\rg\032h";
	struct buf b;
	struct err e;

	err_init(&e);
	buf_init(&b, 4096);
	assert_int_equal(dialect_quote_string(&b, in, sizeof(in) - 1, false, &e), 0);
	assert_string_equal(b.data, "'a\\0b\\'c\\\"d\\\\e\\nf\\rg\\Zh'");
	buf_reset(&b);
	assert_int_equal(dialect_quote_string(&b, "it's", 4, true, &e), 0);
	assert_string_equal(b.data, "'it''s'");
	buf_reset(&b);
	assert_int_equal(dialect_quote_string(&b, "", 0, false, &e), 0);
	assert_string_equal(b.data, "''");
	buf_release(&b);

	buf_init(&b, 16);
	assert_int_equal(dialect_quote_string(&b, "0123456789", 10, false, &e),
			 ERR_INTERNAL);
	buf_release(&b);
}

static int quote_ident(const char *s, size_t n, char *out, size_t outsz)
{
	struct buf b;
	struct err e;
	int rc;

	err_init(&e);
	buf_init(&b, 4096);
	rc = db_quote_ident_n(&b, s, n, &e);
	if (rc == 0)
		str_copy(out, outsz, b.data);
	else
		assert_true(e.msg[0] != '\0');
	buf_release(&b);
	return rc;
}

static void test_quote_ident(void **state)
{
	char out[512];
	char name[300];

	assert_int_equal(quote_ident("orders", 6, out, sizeof(out)), 0);
	assert_string_equal(out, "`orders`");
	assert_int_equal(quote_ident("a`b``c", 6, out, sizeof(out)), 0);
	assert_string_equal(out, "`a``b````c`");
	assert_int_equal(quote_ident("we'ird \"name\"; DROP", strlen("we'ird \"name\"; DROP"),
				     out,
				     sizeof(out)), 0);
	assert_string_equal(out, "`we'ird \"name\"; DROP`");
	assert_int_equal(quote_ident("Bestellungen_über_€_表", strlen("Bestellungen_über_€_表"), out,
				     sizeof(out)), 0);
	assert_string_equal(out, "`Bestellungen_über_€_表`");

	/* empty, NUL, broken UTF-8, outside the BMP */
	assert_int_equal(quote_ident("", 0, out, sizeof(out)), ERR_USAGE);
	assert_int_equal(quote_ident("a\0b", 3, out, sizeof(out)), ERR_USAGE);
	assert_int_equal(quote_ident("a\xff", 2, out, sizeof(out)), ERR_USAGE);
	assert_int_equal(quote_ident("\xc3", 1, out, sizeof(out)), ERR_USAGE);
	assert_int_equal(quote_ident("\xc0\xaf", 2, out, sizeof(out)), ERR_USAGE);
	assert_int_equal(quote_ident("\xed\xa0\x80", 3, out, sizeof(out)),
			 ERR_USAGE);
	assert_int_equal(quote_ident("emoji_\xf0\x9f\x98\x80", 10, out,
				     sizeof(out)), ERR_USAGE);

	/* 64 characters is the limit, counted in characters, not bytes */
	memset(name, 'x', 65);
	assert_int_equal(quote_ident(name, 64, out, sizeof(out)), 0);
	assert_int_equal(quote_ident(name, 65, out, sizeof(out)), ERR_USAGE);
	for (int i = 0; i < 64; i++)
		memcpy(name + 2 * i, "\xc3\xbc", 2); /* ü */
	assert_int_equal(quote_ident(name, 128, out, sizeof(out)), 0);
	memcpy(name + 128, "\xc3\xbc", 2);
	assert_int_equal(quote_ident(name, 130, out, sizeof(out)), ERR_USAGE);

	struct buf b;
	struct err e;
	err_init(&e);
	buf_init(&b, 4096);
	assert_int_equal(db_quote_ident(&b, NULL, &e), ERR_USAGE);
	err_init(&e);
	assert_int_equal(db_quote_table(&b, "shop", "or`ders", &e), 0);
	assert_string_equal(b.data, "`shop`.`or``ders`");
	buf_release(&b);

	/* the buffer limit holds */
	buf_init(&b, 8);
	err_init(&e);
	assert_int_equal(db_quote_ident(&b, "abcdefghij", &e), ERR_INTERNAL);
	buf_release(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mariadb_slave_status_running),
		cmocka_unit_test(test_mariadb_all_slaves_connecting),
		cmocka_unit_test(test_mariadb_sql_thread_stopped_no_gtid),
		cmocka_unit_test(test_mysql80_replica_status),
		cmocka_unit_test(test_mysql57_slave_status_sql_error),
		cmocka_unit_test(test_not_a_replica),
		cmocka_unit_test(test_replica_status_malformed),
		cmocka_unit_test(test_statements_per_flavor),
		cmocka_unit_test(test_parse_version),
		cmocka_unit_test(test_change_source),
		cmocka_unit_test(test_gtid_statements),
		cmocka_unit_test(test_quote_string_pure),
		cmocka_unit_test(test_quote_ident),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
