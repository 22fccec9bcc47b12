/* SQL dialects: every difference between MariaDB and MySQL lives here.
 *
 * Pure functions only (no connection, no MYSQL*): fixed statements per
 * server flavor and version, version-string parsing, parsing of
 * SHOW SLAVE/REPLICA STATUS rows, and builders for the statements that
 * carry values (CHANGE MASTER / CHANGE REPLICATION SOURCE, GTID waits).
 * db.h wraps these for a live connection; this header is also where
 * enum db_flavor and struct db_replica_status are defined, so that the
 * parser can be unit-tested without a server.
 *
 * Versions are numbers major*10000 + minor*100 + patch (101119 for
 * 10.11.19, 80036 for 8.0.36); 0 means "the newest server of the flavor". */
#ifndef BACKUPD_DIALECT_H
#define BACKUPD_DIALECT_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "err.h"

enum db_flavor {
	DB_FLAVOR_UNKNOWN = 0,
	DB_FLAVOR_MARIADB,
	DB_FLAVOR_MYSQL,
};

/* One replication connection of a replica, as SHOW SLAVE/REPLICA STATUS
 * reports it, with the column names of both flavors mapped to one shape. */
struct db_replica_status {
	bool configured;              /* false: not a replica */
	bool io_running, sql_running; /* only "Yes" counts: IO "Connecting" is not running */
	char io_state_raw[32];        /* Slave_IO_Running as reported: Yes/No/Connecting */
	char sql_state[256];          /* Slave_SQL_Running_State */
	unsigned last_io_errno, last_sql_errno;
	char last_io_error[512], last_sql_error[512];
	long long seconds_behind;     /* -1 when the server says NULL */
	char source_host[256];
	unsigned source_port;
	bool using_gtid;              /* MariaDB Using_Gtid != No; MySQL Auto_Position=1 */
	/* Heap strings (NULL when the server does not report them), freed by
	 * db_replica_status_release. MySQL GTID sets come without the
	 * newlines the server puts after each comma.
	 * gtid_io_pos: received from the source (MariaDB Gtid_IO_Pos, MySQL
	 * Retrieved_Gtid_Set); gtid_executed: applied by this replica
	 * (MariaDB Gtid_Slave_Pos, MySQL Executed_Gtid_Set). */
	char *gtid_io_pos, *gtid_executed;
	char relay_source_log_file[256];   /* Relay_Master_Log_File */
	unsigned long long exec_source_log_pos; /* Exec_Master_Log_Pos */
};

void db_replica_status_release(struct db_replica_status *s);

enum dialect_stmt {
	DIALECT_VERSION,             /* SELECT VERSION() */
	DIALECT_SERVER_ID,           /* SELECT @@GLOBAL.server_id */
	DIALECT_READ_ONLY,           /* SELECT @@GLOBAL.read_only -> 0/1 */
	DIALECT_SET_READ_ONLY,       /* MySQL: super_read_only, which implies read_only */
	DIALECT_CLEAR_READ_ONLY,     /* clears super_read_only too on MySQL */
	DIALECT_SHOW_REPLICA_STATUS, /* MariaDB: SHOW ALL SLAVES STATUS, see dialect.c */
	DIALECT_STOP_SQL_THREAD,
	DIALECT_START_SQL_THREAD,
	DIALECT_STOP_REPLICA,
	DIALECT_START_REPLICA,
	DIALECT_RESET_REPLICA_ALL,   /* forget the source (promotion) */
	DIALECT_GTID_POSITION,       /* what this server has executed; see db_gtid_position */
	DIALECT_GTID_BINLOG_POS,     /* what this server has written to its binlog */
	DIALECT_GTID_SLAVE_POS,      /* MariaDB only: applied as a replica; NULL on MySQL */
	DIALECT_SHOW_BINLOG_STATUS,  /* SHOW MASTER STATUS / SHOW BINARY LOG STATUS */
	DIALECT_RESET_BINLOGS,       /* RESET MASTER / RESET BINARY LOGS AND GTIDS */
	DIALECT_STMT_COUNT
};

/* The fixed statement for the newest server of the flavor; NULL for an
 * unknown flavor or a statement the flavor has no equivalent of. Static
 * storage. Code holding a connection should use db_sql() instead, which
 * also knows the server version. */
const char *dialect_sql(enum db_flavor f, enum dialect_stmt s);
/* As dialect_sql for a given server version (0 = newest): MySQL before
 * 8.0.22 says SLAVE, before 8.2.0 SHOW MASTER STATUS, and so on. */
const char *dialect_sql_version(enum db_flavor f, unsigned long version,
				enum dialect_stmt s);

const char *dialect_flavor_name(enum db_flavor f); /* "MariaDB", "MySQL", "unknown" */

/* Parses what VERSION() / mysql_get_server_info says: "10.11.19-MariaDB-
 * 0+deb12u1-log", "5.5.5-10.11.6-MariaDB" (the old replication prefix),
 * "8.0.36", "8.0.36-28" (Percona). Anything not naming MariaDB is MySQL.
 * Returns ERR_DB_CONNECT when no x.y.z version can be read. */
int dialect_parse_version(const char *s, enum db_flavor *flavor,
			  unsigned long *version, struct err *e);

/* Fills *out from one row of SHOW SLAVE/REPLICA STATUS (either naming;
 * SHOW ALL SLAVES STATUS too). names/values have n entries; a NULL value
 * is SQL NULL. values == NULL or n == 0 means the statement returned no
 * row: configured = false. *out is initialised here; release it with
 * db_replica_status_release even on error. ERR_DB_QUERY when a column
 * that every version reports is missing or a number is malformed. */
int dialect_parse_replica_status(enum db_flavor f, const char *const *names,
				 const char *const *values, size_t n,
				 struct db_replica_status *out, struct err *e);
/* Index of the column naming the replication connection (MariaDB
 * Connection_name, MySQL Channel_Name), or -1 when there is none. The
 * default connection is the row whose value there is "". */
int dialect_replica_channel_column(const char *const *names, size_t n);

/* Appends s (n bytes) as a quoted SQL string literal, escaped the way
 * mysql_real_escape_string does for utf8mb4. no_backslash_escapes: the
 * session has sql_mode NO_BACKSLASH_ESCAPES, where only quotes are
 * doubled. For statements built without a connection; db_quote_string
 * is the usual way. */
int dialect_quote_string(struct buf *b, const char *s, size_t n,
			 bool no_backslash_escapes, struct err *e);

/* Where a replica replicates from, always with GTID auto-positioning. */
struct dialect_source {
	const char *host;
	unsigned port;
	const char *user;
	const char *password;        /* goes into the statement only */
	unsigned connect_retry_s;    /* 0: server default */
	bool ssl;                    /* MASTER_SSL=1 / SOURCE_SSL=1 */
};

/* Appends CHANGE MASTER TO ... MASTER_USE_GTID=slave_pos (MariaDB; the
 * replica resumes from @@gtid_slave_pos) or CHANGE REPLICATION SOURCE TO
 * ... SOURCE_AUTO_POSITION=1 (MySQL 8.0.23+; CHANGE MASTER ...
 * MASTER_AUTO_POSITION=1 before). On MySQL 8 without ssl it asks for the
 * source's public key, which caching_sha2_password needs on a plain
 * connection. The buffer then holds the password: wipe it with
 * dialect_wipe() and never log it. ERR_USAGE for a missing host or user
 * or a port outside 1..65535; a NULL password is the empty one. */
int dialect_build_change_source(enum db_flavor f, unsigned long version,
				const struct dialect_source *src,
				bool no_backslash_escapes, struct buf *b,
				struct err *e);

/* SELECT MASTER_GTID_WAIT('gtid', timeout) / SELECT
 * WAIT_FOR_EXECUTED_GTID_SET('gtid', timeout). */
int dialect_build_gtid_wait(enum db_flavor f, const char *gtid,
			    unsigned timeout_s, bool no_backslash_escapes,
			    struct buf *b, struct err *e);
/* Reads the wait's result: *reached true when the position was reached,
 * false on timeout; ERR_DB_QUERY for NULL or anything else. */
int dialect_gtid_wait_result(enum db_flavor f, const char *value,
			     bool *reached, struct err *e);

/* The statement that makes a freshly restored server start replicating
 * after gtid: MariaDB SET GLOBAL gtid_slave_pos = '...'; MySQL SET GLOBAL
 * gtid_purged = '...' (which needs an empty gtid_executed: run
 * DIALECT_RESET_BINLOGS first). */
int dialect_build_set_gtid_position(enum db_flavor f, const char *gtid,
				    bool no_backslash_escapes, struct buf *b,
				    struct err *e);

/* Zeroes the whole allocation of b (a statement that held a password)
 * and resets it. */
void dialect_wipe(struct buf *b);

#endif
