/* Database connections over MariaDB Connector/C (the libmysqlclient API).
 *
 * One struct db per thread: a connection is never shared between threads.
 * mysql_library_init() is called once in main() before threads start, not
 * here. Failures fill struct err with the client/server errno and SQLSTATE
 * (e->db_errno, e->sqlstate): ERR_DB_CONNECT for connecting, ERR_DB_QUERY
 * for statements. Error messages never contain a password or SQL text
 * (statements may carry secrets); callers add context with err_prefix.
 *
 * enum db_flavor, struct db_replica_status and the fixed statements are in
 * dialect.h, where every MariaDB/MySQL difference lives. */
#ifndef BACKUPD_DB_H
#define BACKUPD_DB_H

#include <stdbool.h>
#include <stddef.h>

#include <mysql.h>

#include "buf.h"
#include "dialect.h"
#include "err.h"

#define DB_CONNECT_TIMEOUT_DEFAULT_S 10u
/* MariaDB and MySQL limit identifiers to 64 characters. */
#define DB_IDENT_MAX_CHARS 64

struct db_opts {
	const char *host;            /* name or address; "localhost" still means TCP */
	unsigned port;               /* 0: 3306 */
	const char *socket_path;     /* set: connect over this Unix socket instead */
	const char *user;
	const char *password;        /* NULL: none */
	/* connect 0: DB_CONNECT_TIMEOUT_DEFAULT_S, since Connector/C would
	 * otherwise wait forever for a server that accepts but never greets;
	 * read/write 0: no limit (long statements such as a GTID wait need
	 * a read timeout above their own). */
	unsigned connect_timeout_s, read_timeout_s, write_timeout_s;
	/* disabled: no TLS; preferred (NULL): TLS when the server offers it,
	 * unverified; required: fail unless encrypted, unverified; verify_ca,
	 * verify_identity: verify the certificate chain. Connector/C 3.3 has
	 * one switch for chain and host name, so verify_ca checks the host
	 * name as well. */
	const char *ssl_mode;
	const char *ssl_ca, *ssl_cert, *ssl_key; /* ignored when disabled */
	bool local_infile;           /* allow LOAD DATA LOCAL INFILE */
	const char *init_command;    /* run after every connect, e.g. SET SESSION ... */
};

struct db;

/* Connects; caller frees *out with db_close. Character set utf8mb4,
 * auto-reconnect off (session state such as a consistent snapshot must
 * never silently vanish). Message on failure: "unable to connect to
 * 'host:port' as 'user': <server message> (errno N)". ERR_CONFIG for an
 * unknown ssl_mode. */
int db_connect(const struct db_opts *o, struct db **out, struct err *e);
void db_close(struct db *d); /* NULL ok */

MYSQL *db_handle(struct db *d);                 /* borrowed until db_close */
enum db_flavor db_flavor(const struct db *d);
unsigned long db_version(const struct db *d);   /* 101119 for 10.11.19, 80036 for 8.0.36 */
const char *db_version_string(const struct db *d); /* as the server reports it */
const char *db_addr(const struct db *d);        /* "host:port" or the socket path */
const char *db_tls_cipher(struct db *d);        /* NULL when not encrypted */
/* The fixed statement for this server's flavor and version (dialect.h);
 * NULL when the server has no such statement. */
const char *db_sql(const struct db *d, enum dialect_stmt s);
/* Whether the session has sql_mode NO_BACKSLASH_ESCAPES right now (for
 * the dialect builders). */
bool db_no_backslash_escapes(struct db *d);

int db_ping(struct db *d, struct err *e);
/* Runs a statement and discards any result sets it returns. */
int db_exec(struct db *d, const char *sql, struct err *e);
/* As db_exec with b->len bytes (a quoted string may hold NUL bytes). */
int db_exec_buf(struct db *d, const struct buf *sql, struct err *e);
/* For statements holding a secret (CHANGE MASTER ... PASSWORD): on failure
 * the server's message keeps its shape but loses what it quotes ("String
 * '***' is too long"), a syntax error (which quotes the statement from the
 * error on) becomes just "syntax error", and secret itself is masked too.
 * errno and SQLSTATE are kept. */
int db_exec_secret(struct db *d, const struct buf *sql, const char *secret,
		   struct err *e);

/* First column of the first row. *out is NULL for SQL NULL (*found true)
 * or no row (*found false); found may be NULL. Caller frees *out. A
 * statement without a result set is ERR_DB_QUERY. */
int db_query_value(struct db *d, const char *sql, char **out, bool *found,
		   struct err *e);
/* As db_query_value, also giving the value's length (binary values). */
int db_query_value_len(struct db *d, const char *sql, size_t sql_len,
		       char **out, size_t *len, bool *found, struct err *e);
/* A non-NULL unsigned integer; ERR_DB_QUERY for no row, NULL or text. */
int db_query_ulong(struct db *d, const char *sql, unsigned long long *out,
		   struct err *e);
/* Runs sql and hands over its result set: stream=false stores it all
 * (mysql_store_result), stream=true reads rows as they come
 * (mysql_use_result: fetch them all before the next statement). Caller
 * frees *out with mysql_free_result, then db_finish. */
int db_query_result(struct db *d, const char *sql, bool stream,
		    MYSQL_RES **out, struct err *e);
/* Next row of a result from db_query_result: *row NULL at the end;
 * lengths may be NULL. A streamed read that fails is ERR_DB_QUERY. */
int db_fetch_row(struct db *d, MYSQL_RES *res, MYSQL_ROW *row,
		 unsigned long **lengths, struct err *e);
/* Discards result sets still pending after a db_query_result (stored
 * procedures return more than one). */
int db_finish(struct db *d, struct err *e);

/* Appends `ident` with backticks doubled. Refuses the empty name, invalid
 * UTF-8, characters outside the Basic Multilingual Plane (the servers keep
 * identifiers in utf8mb3) and more than DB_IDENT_MAX_CHARS characters. */
int db_quote_ident(struct buf *b, const char *ident, struct err *e);
/* As db_quote_ident for n bytes; a NUL byte is refused. */
int db_quote_ident_n(struct buf *b, const char *ident, size_t n, struct err *e);
/* Appends `schema`.`table`. */
int db_quote_table(struct buf *b, const char *schema, const char *table,
		   struct err *e);
/* Appends 'escaped' through mysql_real_escape_string, which follows the
 * connection's character set and NO_BACKSLASH_ESCAPES. */
int db_quote_string(struct db *d, struct buf *b, const char *s, size_t n,
		    struct err *e);

/* Records mysql_errno and mysql_sqlstate of m (m may be NULL) and sets the
 * message "<context>: <server message> (errno N)"; returns code. */
int db_set_error(struct err *e, int code, MYSQL *m, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Replication state of the default connection (MariaDB: the row whose
 * Connection_name is empty, MySQL: Channel_Name empty; else the first
 * row). Not a replica: configured = false. Release *out with
 * db_replica_status_release even on error. On MariaDB gtid_executed is
 * @@gtid_slave_pos. */
int db_replica_status(struct db *d, struct db_replica_status *out,
		      struct err *e);

/* What this server has executed, as the position a new replica of the
 * same data must start after. Caller frees *out.
 * MariaDB: @@gtid_current_pos. Per replication domain it is the later of
 * @@gtid_binlog_pos (written here, as a primary or with
 * log_slave_updates) and @@gtid_slave_pos (applied as a replica, also
 * without log_slave_updates or binlog). So it is right for a primary, for
 * a replica whose SQL thread is stopped for a snapshot, and for a replica
 * that does not binlog what it applies; binlog_pos alone misses the
 * latter, slave_pos alone misses everything written on a primary.
 * (Transactions written locally on a replica show up here too: that is
 * errant data the snapshot holds, not a reason to hide it.)
 * MySQL: @@gtid_executed, which covers both paths. */
int db_gtid_position(struct db *d, char **out, struct err *e);
/* Waits until this server has executed gtid (MASTER_GTID_WAIT /
 * WAIT_FOR_EXECUTED_GTID_SET). 0 when reached, ERR_TIMEOUT after
 * timeout_s. timeout_s must be below the connection's read timeout, or
 * the client would give up first: ERR_USAGE. */
int db_gtid_wait(struct db *d, const char *gtid, unsigned timeout_s,
		 struct err *e);
/* Points this server at a replication source with GTID positioning
 * (dialect_build_change_source). The statement with the password is
 * wiped from memory afterwards and never appears in errors or logs. */
int db_change_source(struct db *d, const struct dialect_source *src,
		     struct err *e);

int db_read_only(struct db *d, bool *ro, struct err *e);
/* @@server_id, read once and cached; 0 when it cannot be read. */
unsigned long db_server_id(struct db *d);

#endif
