/* SQL dialects of MariaDB and MySQL: fixed statements, version parsing,
 * SHOW SLAVE/REPLICA STATUS parsing and statement builders.
 *
 * Pure code with no connection and no shared state: safe from any thread.
 * Versions where syntax changed: MySQL 8.0.22 (REPLICA keywords), 8.0.23
 * (CHANGE REPLICATION SOURCE), 8.2.0 (BINARY LOG STATUS; the old forms
 * are gone in 8.4). MariaDB 10.6+ accepts the SLAVE forms used here. */
#include "dialect.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mem.h"

#define MYSQL_REPLICA_KEYWORDS 80022ul /* START REPLICA, SHOW REPLICA STATUS */
#define MYSQL_CHANGE_SOURCE    80023ul /* CHANGE REPLICATION SOURCE TO */
#define MYSQL_BINARY_LOG_STMTS 80200ul /* SHOW BINARY LOG STATUS */
#define MYSQL_GET_PUBLIC_KEY   80004ul /* GET_MASTER_PUBLIC_KEY */

struct stmt_text {
	const char *mariadb;
	const char *mysql;        /* newest MySQL */
	const char *mysql_old;    /* MySQL before `since`, NULL if unchanged */
	unsigned long since;
};

/* MariaDB: SHOW ALL SLAVES STATUS rather than SHOW SLAVE STATUS because
 * only the former has Gtid_Slave_Pos (checked on 10.11.19), so the applied
 * position comes from the same instant as the thread states. It returns
 * one row per named connection; db.c picks the default one. */
static const struct stmt_text stmt_table[DIALECT_STMT_COUNT] = {
	[DIALECT_VERSION] = { "SELECT VERSION()", "SELECT VERSION()", NULL, 0 },
	[DIALECT_SERVER_ID] = { "SELECT @@GLOBAL.server_id",
				"SELECT @@GLOBAL.server_id", NULL, 0 },
	[DIALECT_READ_ONLY] = { "SELECT @@GLOBAL.read_only",
				"SELECT @@GLOBAL.read_only", NULL, 0 },
	/* MariaDB has no super_read_only; users with READ_ONLY ADMIN (SUPER
	 * in 10.11) can still write. */
	[DIALECT_SET_READ_ONLY] = { "SET GLOBAL read_only = 1",
				    "SET GLOBAL super_read_only = 1", NULL, 0 },
	/* On MySQL clearing read_only also clears super_read_only. */
	[DIALECT_CLEAR_READ_ONLY] = { "SET GLOBAL read_only = 0",
				      "SET GLOBAL read_only = 0", NULL, 0 },
	[DIALECT_SHOW_REPLICA_STATUS] = { "SHOW ALL SLAVES STATUS",
					  "SHOW REPLICA STATUS",
					  "SHOW SLAVE STATUS",
					  MYSQL_REPLICA_KEYWORDS },
	[DIALECT_STOP_SQL_THREAD] = { "STOP SLAVE SQL_THREAD",
				      "STOP REPLICA SQL_THREAD",
				      "STOP SLAVE SQL_THREAD",
				      MYSQL_REPLICA_KEYWORDS },
	[DIALECT_START_SQL_THREAD] = { "START SLAVE SQL_THREAD",
				       "START REPLICA SQL_THREAD",
				       "START SLAVE SQL_THREAD",
				       MYSQL_REPLICA_KEYWORDS },
	[DIALECT_STOP_REPLICA] = { "STOP SLAVE", "STOP REPLICA", "STOP SLAVE",
				   MYSQL_REPLICA_KEYWORDS },
	[DIALECT_START_REPLICA] = { "START SLAVE", "START REPLICA",
				    "START SLAVE", MYSQL_REPLICA_KEYWORDS },
	[DIALECT_RESET_REPLICA_ALL] = { "RESET SLAVE ALL", "RESET REPLICA ALL",
					"RESET SLAVE ALL",
					MYSQL_REPLICA_KEYWORDS },
	/* gtid_current_pos: per domain the later of what was binlogged and
	 * what was applied as a replica; see db_gtid_position in db.h. */
	[DIALECT_GTID_POSITION] = { "SELECT @@GLOBAL.gtid_current_pos",
				    "SELECT @@GLOBAL.gtid_executed", NULL, 0 },
	[DIALECT_GTID_BINLOG_POS] = { "SELECT @@GLOBAL.gtid_binlog_pos",
				      "SELECT @@GLOBAL.gtid_executed", NULL, 0 },
	[DIALECT_GTID_SLAVE_POS] = { "SELECT @@GLOBAL.gtid_slave_pos", NULL,
				     NULL, 0 },
	[DIALECT_SHOW_BINLOG_STATUS] = { "SHOW MASTER STATUS",
					 "SHOW BINARY LOG STATUS",
					 "SHOW MASTER STATUS",
					 MYSQL_BINARY_LOG_STMTS },
	[DIALECT_RESET_BINLOGS] = { "RESET MASTER",
				    "RESET BINARY LOGS AND GTIDS",
				    "RESET MASTER", MYSQL_BINARY_LOG_STMTS },
};

const char *dialect_sql_version(enum db_flavor f, unsigned long version,
				enum dialect_stmt s)
{
	const struct stmt_text *t;

	if ((unsigned)s >= DIALECT_STMT_COUNT)
		return NULL;
	t = &stmt_table[s];
	switch (f) {
	case DB_FLAVOR_MARIADB:
		return t->mariadb;
	case DB_FLAVOR_MYSQL:
		if (t->mysql_old && version != 0 && version < t->since)
			return t->mysql_old;
		return t->mysql;
	default:
		return NULL;
	}
}

const char *dialect_sql(enum db_flavor f, enum dialect_stmt s)
{
	return dialect_sql_version(f, 0, s);
}

const char *dialect_flavor_name(enum db_flavor f)
{
	switch (f) {
	case DB_FLAVOR_MARIADB:
		return "MariaDB";
	case DB_FLAVOR_MYSQL:
		return "MySQL";
	default:
		return "unknown";
	}
}

/* Reads "x.y.z" at *p; advances *p past it. */
static bool parse_xyz(const char **p, unsigned long *v)
{
	unsigned long part[3];
	const char *s = *p;

	for (int i = 0; i < 3; i++) {
		char *end;
		if (*s < '0' || *s > '9')
			return false;
		errno = 0;
		part[i] = strtoul(s, &end, 10);
		if (errno || end == s || (i > 0 && part[i] > 99))
			return false;
		s = end;
		if (i < 2) {
			if (*s != '.')
				return false;
			s++;
		}
	}
	if (part[0] > 999)
		return false;
	*v = part[0] * 10000 + part[1] * 100 + part[2];
	*p = s;
	return true;
}

int dialect_parse_version(const char *s, enum db_flavor *flavor,
			  unsigned long *version, struct err *e)
{
	const char *p = s ? s : "";
	unsigned long v;

	*flavor = DB_FLAVOR_UNKNOWN;
	*version = 0;
	/* MariaDB 10.x used to announce itself as "5.5.5-10.x.y-MariaDB" so
	 * that old MySQL replicas would accept it as a source. */
	if (strncmp(p, "5.5.5-", 6) == 0 && strstr(p, "MariaDB"))
		p += 6;
	if (!parse_xyz(&p, &v))
		return err_set(e, ERR_DB_CONNECT,
			       "unable to read server version '%s'", s ? s : "");
	*version = v;
	*flavor = strstr(s, "MariaDB") ? DB_FLAVOR_MARIADB : DB_FLAVOR_MYSQL;
	return 0;
}

/* Column names per field: MariaDB and old MySQL first, then MySQL 8.0.22+. */
enum rs_col {
	RS_IO_RUNNING,
	RS_SQL_RUNNING,
	RS_SQL_STATE,
	RS_LAST_IO_ERRNO,
	RS_LAST_IO_ERROR,
	RS_LAST_SQL_ERRNO,
	RS_LAST_SQL_ERROR,
	RS_SECONDS_BEHIND,
	RS_SOURCE_HOST,
	RS_SOURCE_PORT,
	RS_RELAY_SOURCE_LOG_FILE,
	RS_EXEC_SOURCE_LOG_POS,
	RS_USING_GTID,    /* MariaDB */
	RS_GTID_IO_POS,   /* MariaDB */
	RS_GTID_SLAVE_POS,/* MariaDB, SHOW ALL SLAVES STATUS only */
	RS_AUTO_POSITION, /* MySQL */
	RS_RETRIEVED_SET, /* MySQL */
	RS_EXECUTED_SET,  /* MySQL */
	RS_COUNT
};

static const struct {
	const char *old_name;
	const char *new_name;
	bool required;
} rs_cols[RS_COUNT] = {
	[RS_IO_RUNNING] = { "Slave_IO_Running", "Replica_IO_Running", true },
	[RS_SQL_RUNNING] = { "Slave_SQL_Running", "Replica_SQL_Running", true },
	[RS_SQL_STATE] = { "Slave_SQL_Running_State",
			   "Replica_SQL_Running_State", false },
	[RS_LAST_IO_ERRNO] = { "Last_IO_Errno", NULL, true },
	[RS_LAST_IO_ERROR] = { "Last_IO_Error", NULL, true },
	[RS_LAST_SQL_ERRNO] = { "Last_SQL_Errno", NULL, true },
	[RS_LAST_SQL_ERROR] = { "Last_SQL_Error", NULL, true },
	[RS_SECONDS_BEHIND] = { "Seconds_Behind_Master", "Seconds_Behind_Source",
				true },
	[RS_SOURCE_HOST] = { "Master_Host", "Source_Host", true },
	[RS_SOURCE_PORT] = { "Master_Port", "Source_Port", true },
	[RS_RELAY_SOURCE_LOG_FILE] = { "Relay_Master_Log_File",
				       "Relay_Source_Log_File", false },
	[RS_EXEC_SOURCE_LOG_POS] = { "Exec_Master_Log_Pos",
				     "Exec_Source_Log_Pos", false },
	[RS_USING_GTID] = { "Using_Gtid", NULL, false },
	[RS_GTID_IO_POS] = { "Gtid_IO_Pos", NULL, false },
	[RS_GTID_SLAVE_POS] = { "Gtid_Slave_Pos", NULL, false },
	[RS_AUTO_POSITION] = { "Auto_Position", NULL, false },
	[RS_RETRIEVED_SET] = { "Retrieved_Gtid_Set", NULL, false },
	[RS_EXECUTED_SET] = { "Executed_Gtid_Set", NULL, false },
};

static int find_col(const char *const *names, size_t n, const char *name)
{
	if (!name)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (names[i] && strcasecmp(names[i], name) == 0)
			return (int)i;
	return -1;
}

int dialect_replica_channel_column(const char *const *names, size_t n)
{
	int i = find_col(names, n, "Connection_name");
	return i >= 0 ? i : find_col(names, n, "Channel_Name");
}

static int parse_ull(const char *col, const char *v, unsigned long long max,
		     unsigned long long *out, struct err *e)
{
	char *end;
	unsigned long long x;

	if (!v || !*v) {
		*out = 0;
		return 0;
	}
	errno = 0;
	x = strtoull(v, &end, 10);
	if (errno || *end || v[0] == '-' || x > max)
		return err_set(e, ERR_DB_QUERY,
			       "unexpected replica status: '%s' is '%.40s'", col, v);
	*out = x;
	return 0;
}

/* GTID sets from MySQL carry "\n" after each comma; keep only the set. */
static char *gtid_dup(const char *v)
{
	char *s, *w;

	if (!v)
		return NULL;
	s = xstrdup(v);
	w = s;
	for (const char *r = s; *r; r++)
		if (*r != '\n' && *r != '\r')
			*w++ = *r;
	*w = '\0';
	return s;
}

int dialect_parse_replica_status(enum db_flavor f, const char *const *names,
				 const char *const *values, size_t n,
				 struct db_replica_status *out, struct err *e)
{
	int idx[RS_COUNT];
	const char *v[RS_COUNT];
	unsigned long long x;
	int rc;

	memset(out, 0, sizeof(*out));
	out->seconds_behind = -1;
	if (!values || n == 0)
		return 0;
	if (f != DB_FLAVOR_MARIADB && f != DB_FLAVOR_MYSQL)
		return err_set(e, ERR_INTERNAL,
			       "replica status of an unknown server flavor");
	for (int c = 0; c < RS_COUNT; c++) {
		idx[c] = find_col(names, n, rs_cols[c].old_name);
		if (idx[c] < 0)
			idx[c] = find_col(names, n, rs_cols[c].new_name);
		if (idx[c] < 0 && rs_cols[c].required)
			return err_set(e, ERR_DB_QUERY,
				       "unexpected replica status: no column '%s'",
				       rs_cols[c].old_name);
		v[c] = idx[c] >= 0 ? values[idx[c]] : NULL;
	}

	out->configured = true;
	str_copy(out->io_state_raw, sizeof(out->io_state_raw),
		 v[RS_IO_RUNNING] ? v[RS_IO_RUNNING] : "");
	out->io_running = v[RS_IO_RUNNING] &&
			  strcasecmp(v[RS_IO_RUNNING], "Yes") == 0;
	out->sql_running = v[RS_SQL_RUNNING] &&
			   strcasecmp(v[RS_SQL_RUNNING], "Yes") == 0;
	str_copy(out->sql_state, sizeof(out->sql_state),
		 v[RS_SQL_STATE] ? v[RS_SQL_STATE] : "");
	str_copy(out->last_io_error, sizeof(out->last_io_error),
		 v[RS_LAST_IO_ERROR] ? v[RS_LAST_IO_ERROR] : "");
	str_copy(out->last_sql_error, sizeof(out->last_sql_error),
		 v[RS_LAST_SQL_ERROR] ? v[RS_LAST_SQL_ERROR] : "");
	str_copy(out->source_host, sizeof(out->source_host),
		 v[RS_SOURCE_HOST] ? v[RS_SOURCE_HOST] : "");
	str_copy(out->relay_source_log_file, sizeof(out->relay_source_log_file),
		 v[RS_RELAY_SOURCE_LOG_FILE] ? v[RS_RELAY_SOURCE_LOG_FILE] : "");

	if ((rc = parse_ull("Last_IO_Errno", v[RS_LAST_IO_ERRNO], UINT32_MAX,
			    &x, e)))
		return rc;
	out->last_io_errno = (unsigned)x;
	if ((rc = parse_ull("Last_SQL_Errno", v[RS_LAST_SQL_ERRNO], UINT32_MAX,
			    &x, e)))
		return rc;
	out->last_sql_errno = (unsigned)x;
	if ((rc = parse_ull("Master_Port", v[RS_SOURCE_PORT], 65535, &x, e)))
		return rc;
	out->source_port = (unsigned)x;
	if ((rc = parse_ull("Exec_Master_Log_Pos", v[RS_EXEC_SOURCE_LOG_POS],
			    UINT64_MAX, &x, e)))
		return rc;
	out->exec_source_log_pos = x;
	if (v[RS_SECONDS_BEHIND] && *v[RS_SECONDS_BEHIND]) {
		if ((rc = parse_ull("Seconds_Behind_Master",
				    v[RS_SECONDS_BEHIND], INT64_MAX, &x, e)))
			return rc;
		out->seconds_behind = (long long)x;
	}

	if (f == DB_FLAVOR_MARIADB) {
		out->using_gtid = v[RS_USING_GTID] && *v[RS_USING_GTID] &&
				  strcasecmp(v[RS_USING_GTID], "No") != 0;
		out->gtid_io_pos = gtid_dup(v[RS_GTID_IO_POS]);
		out->gtid_executed = gtid_dup(v[RS_GTID_SLAVE_POS]);
	} else {
		out->using_gtid = v[RS_AUTO_POSITION] &&
				  strcmp(v[RS_AUTO_POSITION], "1") == 0;
		out->gtid_io_pos = gtid_dup(v[RS_RETRIEVED_SET]);
		out->gtid_executed = gtid_dup(v[RS_EXECUTED_SET]);
	}
	return 0;
}

void db_replica_status_release(struct db_replica_status *s)
{
	if (!s)
		return;
	free(s->gtid_io_pos);
	free(s->gtid_executed);
	s->gtid_io_pos = NULL;
	s->gtid_executed = NULL;
}

int dialect_quote_string(struct buf *b, const char *s, size_t n,
			 bool no_backslash_escapes, struct err *e)
{
	int rc;

	/* Worst case every byte doubles, plus the quotes. */
	if (n > (b->max - 2) / 2)
		return err_set(e, ERR_INTERNAL,
			       "string of %zu bytes too long to quote", n);
	if ((rc = buf_reserve(b, 2 * n + 2, e)))
		return rc;
	char *w = b->data + b->len;
	*w++ = '\'';
	for (size_t i = 0; i < n; i++) {
		char c = s[i], esc = 0;
		if (no_backslash_escapes) {
			if (c == '\'')
				esc = '\'';
		} else {
			switch (c) {
			case '\0': esc = '\\'; c = '0'; break;
			case '\n': esc = '\\'; c = 'n'; break;
			case '\r': esc = '\\'; c = 'r'; break;
			case '\\': esc = '\\'; break;
			case '\'': esc = '\\'; break;
			case '"': esc = '\\'; break;
			case '\032': esc = '\\'; c = 'Z'; break;
			default: break;
			}
		}
		if (esc)
			*w++ = esc;
		*w++ = c;
	}
	*w++ = '\'';
	b->len = (size_t)(w - b->data);
	b->data[b->len] = '\0';
	return 0;
}

static int check_text(const char *what, const char *s, struct err *e)
{
	if (!s || !*s)
		return err_set(e, ERR_USAGE, "replication source needs a %s", what);
	return 0;
}

int dialect_build_change_source(enum db_flavor f, unsigned long version,
				const struct dialect_source *src,
				bool no_backslash_escapes, struct buf *b,
				struct err *e)
{
	const char *kw; /* MASTER or SOURCE */
	bool mysql_new, nbe = no_backslash_escapes;
	int rc;

	if (f != DB_FLAVOR_MARIADB && f != DB_FLAVOR_MYSQL)
		return err_set(e, ERR_INTERNAL,
			       "change of source for an unknown server flavor");
	if ((rc = check_text("host", src->host, e)) ||
	    (rc = check_text("user", src->user, e)))
		return rc;
	if (src->port == 0 || src->port > 65535)
		return err_set(e, ERR_USAGE,
			       "replication source port %u out of range",
			       src->port);
	mysql_new = f == DB_FLAVOR_MYSQL &&
		    (version == 0 || version >= MYSQL_CHANGE_SOURCE);
	kw = mysql_new ? "SOURCE" : "MASTER";

	if ((rc = buf_append_str(b, mysql_new ? "CHANGE REPLICATION SOURCE TO "
					      : "CHANGE MASTER TO ", e)) ||
	    (rc = buf_printf(b, e, "%s_HOST=", kw)) ||
	    (rc = dialect_quote_string(b, src->host, strlen(src->host), nbe, e)) ||
	    (rc = buf_printf(b, e, ", %s_PORT=%u, %s_USER=", kw, src->port, kw)) ||
	    (rc = dialect_quote_string(b, src->user, strlen(src->user), nbe, e)) ||
	    (rc = buf_printf(b, e, ", %s_PASSWORD=", kw)))
		return rc;
	const char *pw = src->password ? src->password : "";
	if ((rc = dialect_quote_string(b, pw, strlen(pw), nbe, e)))
		return rc;
	if (src->connect_retry_s &&
	    (rc = buf_printf(b, e, ", %s_CONNECT_RETRY=%u", kw,
			     src->connect_retry_s)))
		return rc;
	if ((rc = buf_printf(b, e, ", %s_SSL=%d", kw, src->ssl ? 1 : 0)))
		return rc;
	if (f == DB_FLAVOR_MARIADB)
		/* slave_pos: resume after what this server applied as a
		 * replica, which is what a restore sets. */
		return buf_append_str(b, ", MASTER_USE_GTID=slave_pos", e);
	if ((rc = buf_printf(b, e, ", %s_AUTO_POSITION=1", kw)))
		return rc;
	if (!src->ssl && (version == 0 || version >= MYSQL_GET_PUBLIC_KEY))
		return buf_printf(b, e, ", GET_%s_PUBLIC_KEY=1", kw);
	return 0;
}

int dialect_build_gtid_wait(enum db_flavor f, const char *gtid,
			    unsigned timeout_s, bool no_backslash_escapes,
			    struct buf *b, struct err *e)
{
	int rc;

	if (!gtid)
		return err_set(e, ERR_USAGE, "no GTID position to wait for");
	if (f == DB_FLAVOR_MARIADB)
		rc = buf_append_str(b, "SELECT MASTER_GTID_WAIT(", e);
	else if (f == DB_FLAVOR_MYSQL)
		rc = buf_append_str(b, "SELECT WAIT_FOR_EXECUTED_GTID_SET(", e);
	else
		return err_set(e, ERR_INTERNAL,
			       "GTID wait on an unknown server flavor");
	if (rc || (rc = dialect_quote_string(b, gtid, strlen(gtid),
					     no_backslash_escapes, e)))
		return rc;
	return buf_printf(b, e, ", %u)", timeout_s);
}

int dialect_gtid_wait_result(enum db_flavor f, const char *value,
			     bool *reached, struct err *e)
{
	*reached = false;
	if (value && strcmp(value, "0") == 0) {
		*reached = true;
		return 0;
	}
	/* MASTER_GTID_WAIT says -1 on timeout, WAIT_FOR_EXECUTED_GTID_SET 1. */
	if (value && f == DB_FLAVOR_MARIADB && strcmp(value, "-1") == 0)
		return 0;
	if (value && f == DB_FLAVOR_MYSQL && strcmp(value, "1") == 0)
		return 0;
	return err_set(e, ERR_DB_QUERY, "GTID wait returned '%s'",
		       value ? value : "NULL");
}

int dialect_build_set_gtid_position(enum db_flavor f, const char *gtid,
				    bool no_backslash_escapes, struct buf *b,
				    struct err *e)
{
	int rc;

	if (!gtid)
		return err_set(e, ERR_USAGE, "no GTID position to set");
	if (f == DB_FLAVOR_MARIADB)
		rc = buf_append_str(b, "SET GLOBAL gtid_slave_pos = ", e);
	else if (f == DB_FLAVOR_MYSQL)
		rc = buf_append_str(b, "SET GLOBAL gtid_purged = ", e);
	else
		return err_set(e, ERR_INTERNAL,
			       "GTID position on an unknown server flavor");
	if (rc)
		return rc;
	return dialect_quote_string(b, gtid, strlen(gtid), no_backslash_escapes,
				    e);
}

void dialect_wipe(struct buf *b)
{
	if (!b || !b->data)
		return;
	explicit_bzero(b->data, b->cap);
	buf_reset(b);
}
