/* Database connections: connect with timeouts and TLS, run statements,
 * read single values, quote identifiers and strings, and read replication
 * state, all over MariaDB Connector/C.
 *
 * Threading: a struct db belongs to one thread at a time; nothing here is
 * shared between connections. mysql_library_init() is main()'s job. */
#include "db.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "mem.h"

#define ER_PARSE_ERROR_NO 1064

struct db {
	MYSQL *m;
	enum db_flavor flavor;
	unsigned long version;
	char version_string[128];
	char addr[300];
	unsigned read_timeout_s;
	unsigned long server_id;
	bool server_id_known;
};

enum ssl_mode {
	SSL_MODE_DISABLED,
	SSL_MODE_PREFERRED,
	SSL_MODE_REQUIRED,
	SSL_MODE_VERIFY_CA,
	SSL_MODE_VERIFY_IDENTITY,
};

static int parse_ssl_mode(const char *s, enum ssl_mode *out, struct err *e)
{
	static const struct {
		const char *name;
		enum ssl_mode mode;
	} modes[] = {
		{ "disabled", SSL_MODE_DISABLED },
		{ "preferred", SSL_MODE_PREFERRED },
		{ "required", SSL_MODE_REQUIRED },
		{ "verify_ca", SSL_MODE_VERIFY_CA },
		{ "verify_identity", SSL_MODE_VERIFY_IDENTITY },
	};

	if (!s || !*s) {
		*out = SSL_MODE_PREFERRED;
		return 0;
	}
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		if (strcasecmp(s, modes[i].name) == 0) {
			*out = modes[i].mode;
			return 0;
		}
	}
	return err_set(e, ERR_CONFIG,
		       "unknown ssl_mode '%s' (disabled, preferred, required, "
		       "verify_ca or verify_identity)", s);
}

/* Replaces every occurrence of secret in msg by "***". */
static void mask_secret(char *msg, size_t cap, const char *secret)
{
	char out[1024];
	size_t slen, w = 0;
	const char *r = msg;

	if (!secret || !*secret || cap > sizeof(out))
		return;
	slen = strlen(secret);
	while (*r && w + 1 < cap) {
		if (strncmp(r, secret, slen) == 0) {
			for (const char *m = "***"; *m && w + 1 < cap; m++)
				out[w++] = *m;
			r += slen;
		} else {
			out[w++] = *r++;
		}
	}
	out[w] = '\0';
	memcpy(msg, out, w + 1);
	explicit_bzero(out, sizeof(out));
}

/* Replaces everything between the first opening and the last closing
 * single quote of msg by "***": the server quotes values (and, for syntax
 * errors, the rest of the statement) there, even when truncated or
 * escaped. A quote inside a word ("doesn't") opens or closes nothing. */
static void mask_quoted(char *msg, size_t cap)
{
	char *first = NULL, *last = NULL;
	char tail[512];

	for (char *p = msg; *p; p++) {
		if (*p != '\'')
			continue;
		if (!first && (p == msg || !isalnum((unsigned char)p[-1])))
			first = p;
		else if (first && !isalnum((unsigned char)p[1]))
			last = p;
	}
	if (!first || !last)
		return;
	str_copy(tail, sizeof(tail), last);
	snprintf(first + 1, cap - (size_t)(first + 1 - msg), "***%s", tail);
}

int db_set_error(struct err *e, int code, MYSQL *m, const char *fmt, ...)
{
	char ctx[384];
	va_list ap;
	unsigned no;

	if (!e)
		return code;
	if (e->code != 0)
		return e->code;
	va_start(ap, fmt);
	vsnprintf(ctx, sizeof(ctx), fmt, ap);
	va_end(ap);
	no = m ? mysql_errno(m) : 0;
	if (no == 0)
		return err_set(e, code, "%s", ctx);
	err_set(e, code, "%s: %s (errno %u)", ctx, mysql_error(m), no);
	e->db_errno = no;
	str_copy(e->sqlstate, sizeof(e->sqlstate), mysql_sqlstate(m));
	return code;
}

static void format_addr(char *out, size_t n, const struct db_opts *o)
{
	const char *host = o->host && *o->host ? o->host : "localhost";
	unsigned port = o->port ? o->port : 3306;

	if (o->socket_path && *o->socket_path)
		snprintf(out, n, "%s", o->socket_path);
	else if (strchr(host, ':'))
		snprintf(out, n, "[%s]:%u", host, port);
	else
		snprintf(out, n, "%s:%u", host, port);
}

static int set_opt(MYSQL *m, enum mysql_option opt, const void *arg,
		   const char *what, struct err *e)
{
	if (mysql_options(m, opt, arg) != 0)
		return db_set_error(e, ERR_INTERNAL, m,
				    "unable to set connection option %s", what);
	return 0;
}

static int set_options(MYSQL *m, const struct db_opts *o, enum ssl_mode mode,
		       struct err *e)
{
	unsigned int ct = o->connect_timeout_s ? o->connect_timeout_s
					       : DB_CONNECT_TIMEOUT_DEFAULT_S;
	unsigned int rt = o->read_timeout_s,
		     wt = o->write_timeout_s;
	unsigned int local_infile = o->local_infile ? 1 : 0;
	unsigned int protocol = o->socket_path && *o->socket_path
					? MYSQL_PROTOCOL_SOCKET
					: MYSQL_PROTOCOL_TCP;
	my_bool off = 0, on = 1;
	my_bool use_tls = mode != SSL_MODE_DISABLED;
	my_bool verify = mode == SSL_MODE_VERIFY_CA ||
			 mode == SSL_MODE_VERIFY_IDENTITY;
	int rc = 0;

	rc = set_opt(m, MYSQL_OPT_CONNECT_TIMEOUT, &ct, "connect_timeout", e);
	if (!rc && rt)
		rc = set_opt(m, MYSQL_OPT_READ_TIMEOUT, &rt, "read_timeout", e);
	if (!rc && wt)
		rc = set_opt(m, MYSQL_OPT_WRITE_TIMEOUT, &wt, "write_timeout", e);
	if (!rc)
		rc = set_opt(m, MYSQL_SET_CHARSET_NAME, "utf8mb4", "charset", e);
	/* Reconnecting would silently drop session state (a consistent
	 * snapshot, sql_log_bin=0) that the caller relies on. */
	if (!rc)
		rc = set_opt(m, MYSQL_OPT_RECONNECT, &off, "reconnect", e);
	/* Explicit either way: a server may otherwise ask for any local
	 * file on a connection that never meant to send one. */
	if (!rc)
		rc = set_opt(m, MYSQL_OPT_LOCAL_INFILE, &local_infile,
			     "local_infile", e);
	/* "localhost" would otherwise mean the default Unix socket and
	 * silently ignore the configured port. */
	if (!rc)
		rc = set_opt(m, MYSQL_OPT_PROTOCOL, &protocol, "protocol", e);
	if (!rc && o->init_command && *o->init_command)
		rc = set_opt(m, MYSQL_INIT_COMMAND, o->init_command,
			     "init_command", e);
	if (!rc && mysql_optionsv(m, MYSQL_OPT_CONNECT_ATTR_ADD, "program_name",
				  "backupd") != 0)
		rc = db_set_error(e, ERR_INTERNAL, m,
				  "unable to set connection attribute");
	if (rc)
		return rc;

	/* TLS. Set both switches either way: newer Connector/C versions
	 * turn TLS and verification on by default. */
	if ((rc = set_opt(m, MYSQL_OPT_SSL_ENFORCE, use_tls ? &on : &off,
			  "ssl_enforce", e)) ||
	    (rc = set_opt(m, MYSQL_OPT_SSL_VERIFY_SERVER_CERT,
			  verify ? &on : &off, "ssl_verify_server_cert", e)))
		return rc;
	if (mode == SSL_MODE_DISABLED)
		return 0;
	if (o->ssl_ca && *o->ssl_ca &&
	    (rc = set_opt(m, MYSQL_OPT_SSL_CA, o->ssl_ca, "ssl_ca", e)))
		return rc;
	if (o->ssl_cert && *o->ssl_cert &&
	    (rc = set_opt(m, MYSQL_OPT_SSL_CERT, o->ssl_cert, "ssl_cert", e)))
		return rc;
	if (o->ssl_key && *o->ssl_key &&
	    (rc = set_opt(m, MYSQL_OPT_SSL_KEY, o->ssl_key, "ssl_key", e)))
		return rc;
	return 0;
}

int db_connect(const struct db_opts *o, struct db **out, struct err *e)
{
	enum ssl_mode mode = SSL_MODE_PREFERRED;
	struct db *d;
	const char *user = o->user ? o->user : "";
	const char *info;
	int rc;

	*out = NULL;
	if ((rc = parse_ssl_mode(o->ssl_mode, &mode, e)))
		return rc;
	d = xcalloc(1, sizeof(*d));
	format_addr(d->addr, sizeof(d->addr), o);
	d->read_timeout_s = o->read_timeout_s;
	d->m = mysql_init(NULL);
	if (!d->m) {
		rc = err_set(e, ERR_INTERNAL,
			     "unable to initialise a connection to '%s'",
			     d->addr);
		free(d);
		return rc;
	}
	if ((rc = set_options(d->m, o, mode, e)))
		goto fail;

	if (!mysql_real_connect(d->m,
				o->socket_path && *o->socket_path ? NULL
				: (o->host && *o->host ? o->host : "localhost"),
				user, o->password, NULL,
				o->port ? o->port : 3306,
				o->socket_path && *o->socket_path ? o->socket_path
								  : NULL,
				0)) {
		rc = db_set_error(e, ERR_DB_CONNECT, d->m,
				  "unable to connect to '%s' as '%s'", d->addr,
				  user);
		/* The server never echoes the password, but a message is
		 * the wrong place to learn otherwise. */
		if (e)
			mask_secret(e->msg, sizeof(e->msg), o->password);
		goto fail;
	}

	if ((mode == SSL_MODE_REQUIRED || mode == SSL_MODE_VERIFY_CA ||
	     mode == SSL_MODE_VERIFY_IDENTITY) && !mysql_get_ssl_cipher(d->m)) {
		rc = err_set(e, ERR_DB_CONNECT,
			     "unable to connect to '%s' as '%s': ssl_mode %s "
			     "but the connection is not encrypted", d->addr,
			     user, o->ssl_mode);
		goto fail;
	}

	info = mysql_get_server_info(d->m);
	str_copy(d->version_string, sizeof(d->version_string), info ? info : "");
	if ((rc = dialect_parse_version(d->version_string, &d->flavor,
					&d->version, e))) {
		err_prefix(e, "connection to '%s': ", d->addr);
		goto fail;
	}
	log_debug("db", "connected to '%s' as '%s': %s %s%s%s", d->addr, user,
		  dialect_flavor_name(d->flavor), d->version_string,
		  mysql_get_ssl_cipher(d->m) ? ", TLS " : "",
		  mysql_get_ssl_cipher(d->m) ? mysql_get_ssl_cipher(d->m) : "");
	*out = d;
	return 0;

fail:
	mysql_close(d->m);
	free(d);
	return rc;
}

void db_close(struct db *d)
{
	if (!d)
		return;
	mysql_close(d->m);
	free(d);
}

MYSQL *db_handle(struct db *d)
{
	return d->m;
}

enum db_flavor db_flavor(const struct db *d)
{
	return d->flavor;
}

unsigned long db_version(const struct db *d)
{
	return d->version;
}

const char *db_version_string(const struct db *d)
{
	return d->version_string;
}

const char *db_addr(const struct db *d)
{
	return d->addr;
}

const char *db_tls_cipher(struct db *d)
{
	return mysql_get_ssl_cipher(d->m);
}

const char *db_sql(const struct db *d, enum dialect_stmt s)
{
	return dialect_sql_version(d->flavor, d->version, s);
}

bool db_no_backslash_escapes(struct db *d)
{
	unsigned int status = 0;

	if (mariadb_get_infov(d->m, MARIADB_CONNECTION_SERVER_STATUS, &status))
		return false;
	return (status & SERVER_STATUS_NO_BACKSLASH_ESCAPES) != 0;
}

static int query_error(struct db *d, struct err *e)
{
	return db_set_error(e, ERR_DB_QUERY, d->m, "statement failed on '%s'",
			    d->addr);
}

/* As query_error for a statement holding secret: the server's message
 * may quote the statement or a value from it, so quoted parts are masked,
 * and syntax errors (which quote the statement from the error on) lose
 * their text altogether. */
static int query_error_secret(struct db *d, const char *secret,
			      struct err *e)
{
	char srv[512];
	unsigned no = mysql_errno(d->m);

	if (!secret)
		return query_error(d, e);
	if (!e)
		return ERR_DB_QUERY;
	if (e->code != 0)
		return e->code;
	if (no == ER_PARSE_ERROR_NO) {
		str_copy(srv, sizeof(srv), "syntax error");
	} else {
		str_copy(srv, sizeof(srv), mysql_error(d->m));
		mask_quoted(srv, sizeof(srv));
	}
	mask_secret(srv, sizeof(srv), secret);
	err_set(e, ERR_DB_QUERY, "statement failed on '%s': %s (errno %u)",
		d->addr, srv, no);
	e->db_errno = no;
	str_copy(e->sqlstate, sizeof(e->sqlstate), mysql_sqlstate(d->m));
	explicit_bzero(srv, sizeof(srv));
	return ERR_DB_QUERY;
}

/* The dialect has no such statement for this server. */
static int no_stmt(struct db *d, const char *what, struct err *e)
{
	return err_set(e, ERR_INTERNAL, "%s %s on '%s' has no %s",
		       dialect_flavor_name(d->flavor), d->version_string,
		       d->addr, what);
}

int db_ping(struct db *d, struct err *e)
{
	if (mysql_ping(d->m) != 0)
		return db_set_error(e, ERR_DB_QUERY, d->m,
				    "lost connection to '%s'", d->addr);
	return 0;
}

static int finish(struct db *d, const char *secret, struct err *e)
{
	int st;

	while ((st = mysql_next_result(d->m)) == 0) {
		MYSQL_RES *r = mysql_store_result(d->m);
		if (r)
			mysql_free_result(r);
		else if (mysql_field_count(d->m) != 0)
			return query_error_secret(d, secret, e);
	}
	return st > 0 ? query_error_secret(d, secret, e) : 0;
}

int db_finish(struct db *d, struct err *e)
{
	return finish(d, NULL, e);
}

static int exec_len(struct db *d, const char *sql, size_t len,
		    const char *secret, struct err *e)
{
	MYSQL_RES *r;

	if (mysql_real_query(d->m, sql, (unsigned long)len) != 0)
		return query_error_secret(d, secret, e);
	r = mysql_store_result(d->m);
	if (r)
		mysql_free_result(r);
	else if (mysql_field_count(d->m) != 0)
		return query_error_secret(d, secret, e);
	return finish(d, secret, e);
}

int db_exec(struct db *d, const char *sql, struct err *e)
{
	return exec_len(d, sql, strlen(sql), NULL, e);
}

int db_exec_buf(struct db *d, const struct buf *sql, struct err *e)
{
	return exec_len(d, sql->data, sql->len, NULL, e);
}

int db_exec_secret(struct db *d, const struct buf *sql, const char *secret,
		   struct err *e)
{
	/* An empty secret still means "this statement is sensitive". */
	return exec_len(d, sql->data, sql->len, secret ? secret : "", e);
}

int db_query_result(struct db *d, const char *sql, bool stream,
		    MYSQL_RES **out, struct err *e)
{
	MYSQL_RES *r;

	*out = NULL;
	if (mysql_real_query(d->m, sql, (unsigned long)strlen(sql)) != 0)
		return query_error(d, e);
	r = stream ? mysql_use_result(d->m) : mysql_store_result(d->m);
	if (!r) {
		if (mysql_field_count(d->m) != 0)
			return query_error(d, e);
		db_finish(d, NULL);
		return err_set(e, ERR_DB_QUERY,
			       "statement on '%s' returned no result set",
			       d->addr);
	}
	*out = r;
	return 0;
}

int db_fetch_row(struct db *d, MYSQL_RES *res, MYSQL_ROW *row,
		 unsigned long **lengths, struct err *e)
{
	*row = mysql_fetch_row(res);
	if (lengths)
		*lengths = *row ? mysql_fetch_lengths(res) : NULL;
	if (!*row && mysql_errno(d->m) != 0)
		return db_set_error(e, ERR_DB_QUERY, d->m,
				    "unable to read rows from '%s'", d->addr);
	return 0;
}

int db_query_value_len(struct db *d, const char *sql, size_t sql_len,
		       char **out, size_t *len, bool *found, struct err *e)
{
	MYSQL_RES *r;
	MYSQL_ROW row;
	int rc;

	*out = NULL;
	if (len)
		*len = 0;
	if (found)
		*found = false;
	if (mysql_real_query(d->m, sql, (unsigned long)sql_len) != 0)
		return query_error(d, e);
	r = mysql_store_result(d->m);
	if (!r) {
		if (mysql_field_count(d->m) != 0)
			return query_error(d, e);
		db_finish(d, NULL);
		return err_set(e, ERR_DB_QUERY,
			       "statement on '%s' returned no result set",
			       d->addr);
	}
	row = mysql_fetch_row(r);
	if (row) {
		unsigned long *lens = mysql_fetch_lengths(r);
		if (found)
			*found = true;
		if (row[0]) {
			*out = xmalloc(lens[0] + 1);
			memcpy(*out, row[0], lens[0]);
			(*out)[lens[0]] = '\0';
			if (len)
				*len = lens[0];
		}
	}
	mysql_free_result(r);
	if ((rc = db_finish(d, e))) {
		free(*out);
		*out = NULL;
		return rc;
	}
	return 0;
}

int db_query_value(struct db *d, const char *sql, char **out, bool *found,
		   struct err *e)
{
	return db_query_value_len(d, sql, strlen(sql), out, NULL, found, e);
}

static int parse_ulong_value(struct db *d, const char *v, bool found,
			     unsigned long long *out, struct err *e)
{
	char *end;

	if (!found)
		return err_set(e, ERR_DB_QUERY,
			       "statement on '%s' returned no row", d->addr);
	if (!v)
		return err_set(e, ERR_DB_QUERY,
			       "statement on '%s' returned NULL", d->addr);
	errno = 0;
	*out = strtoull(v, &end, 10);
	if (errno || end == v || *end || v[0] < '0' || v[0] > '9')
		return err_set(e, ERR_DB_QUERY,
			       "statement on '%s' returned '%.64s', not a number",
			       d->addr, v);
	return 0;
}

int db_query_ulong(struct db *d, const char *sql, unsigned long long *out,
		   struct err *e)
{
	char *v;
	bool found;
	int rc;

	*out = 0;
	if ((rc = db_query_value(d, sql, &v, &found, e)))
		return rc;
	rc = parse_ulong_value(d, v, found, out, e);
	free(v);
	return rc;
}

/* Decodes one UTF-8 sequence of at most n bytes at s; returns its length
 * and the code point, or 0 when it is not valid (overlong forms and
 * surrogates included). */
static size_t utf8_next(const unsigned char *s, size_t n, uint32_t *cp)
{
	size_t len;
	uint32_t c, min;

	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	} else if ((s[0] & 0xe0) == 0xc0) {
		len = 2, c = s[0] & 0x1f, min = 0x80;
	} else if ((s[0] & 0xf0) == 0xe0) {
		len = 3, c = s[0] & 0x0f, min = 0x800;
	} else if ((s[0] & 0xf8) == 0xf0) {
		len = 4, c = s[0] & 0x07, min = 0x10000;
	} else {
		return 0;
	}
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = (c << 6) | (s[i] & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return len;
}

int db_quote_ident_n(struct buf *b, const char *ident, size_t n,
		     struct err *e)
{
	const unsigned char *s = (const unsigned char *)ident;
	size_t chars = 0;
	int rc;

	if (!ident || n == 0)
		return err_set(e, ERR_USAGE, "empty SQL identifier");
	for (size_t i = 0; i < n;) {
		uint32_t cp;
		size_t l = utf8_next(s + i, n - i, &cp);
		if (l == 0)
			return err_set(e, ERR_USAGE,
				       "SQL identifier '%.*s' is not valid UTF-8",
				       (int)(n < 64 ? n : 64), ident);
		if (cp == 0)
			return err_set(e, ERR_USAGE,
				       "SQL identifier holds a NUL byte");
		if (cp > 0xffff)
			return err_set(e, ERR_USAGE,
				       "SQL identifier '%.*s' holds a character "
				       "outside the Basic Multilingual Plane",
				       (int)(n < 64 ? n : 64), ident);
		i += l;
		chars++;
	}
	if (chars > DB_IDENT_MAX_CHARS)
		return err_set(e, ERR_USAGE,
			       "SQL identifier '%.64s...' is longer than %d "
			       "characters", ident, DB_IDENT_MAX_CHARS);
	if ((rc = buf_reserve(b, 2 * n + 2, e)))
		return rc;
	char *w = b->data + b->len;
	*w++ = '`';
	for (size_t i = 0; i < n; i++) {
		if (ident[i] == '`')
			*w++ = '`';
		*w++ = ident[i];
	}
	*w++ = '`';
	b->len = (size_t)(w - b->data);
	b->data[b->len] = '\0';
	return 0;
}

int db_quote_ident(struct buf *b, const char *ident, struct err *e)
{
	return db_quote_ident_n(b, ident, ident ? strlen(ident) : 0, e);
}

int db_quote_table(struct buf *b, const char *schema, const char *table,
		   struct err *e)
{
	int rc;

	if ((rc = db_quote_ident(b, schema, e)) ||
	    (rc = buf_append_char(b, '.', e)))
		return rc;
	return db_quote_ident(b, table, e);
}

int db_quote_string(struct db *d, struct buf *b, const char *s, size_t n,
		    struct err *e)
{
	unsigned long w;
	int rc;

	if (n > (b->max - 3) / 2)
		return err_set(e, ERR_INTERNAL,
			       "string of %zu bytes too long to quote", n);
	/* mysql_real_escape_string needs 2n+1 bytes; plus two quotes. */
	if ((rc = buf_reserve(b, 2 * n + 3, e)))
		return rc;
	b->data[b->len++] = '\'';
	w = mysql_real_escape_string(d->m, b->data + b->len, s,
				     (unsigned long)n);
	if (w == (unsigned long)-1) {
		b->data[--b->len] = '\0';
		return err_set(e, ERR_USAGE,
			       "string is not valid in the connection's "
			       "character set");
	}
	b->len += w;
	b->data[b->len++] = '\'';
	b->data[b->len] = '\0';
	return 0;
}

int db_replica_status(struct db *d, struct db_replica_status *out,
		      struct err *e)
{
	const char *sql = db_sql(d, DIALECT_SHOW_REPLICA_STATUS);
	MYSQL_RES *r;
	MYSQL_FIELD *fields;
	MYSQL_ROW row, pick = NULL;
	const char **names;
	unsigned nf;
	int chan, rc;

	memset(out, 0, sizeof(*out));
	out->seconds_behind = -1;
	if (!sql)
		return no_stmt(d, "replica status", e);
	if ((rc = db_query_result(d, sql, false, &r, e)))
		return rc;
	nf = mysql_num_fields(r);
	fields = mysql_fetch_fields(r);
	names = xcalloc(nf ? nf : 1, sizeof(*names));
	for (unsigned i = 0; i < nf; i++)
		names[i] = fields[i].name;
	chan = dialect_replica_channel_column(names, nf);
	while ((row = mysql_fetch_row(r))) {
		if (!pick)
			pick = row;
		if (chan >= 0 && row[chan] && row[chan][0] == '\0') {
			pick = row;
			break;
		}
	}
	rc = dialect_parse_replica_status(d->flavor, names,
					  (const char *const *)pick,
					  pick ? nf : 0, out, e);
	free(names);
	mysql_free_result(r);
	if (rc) {
		db_finish(d, NULL);
		err_prefix(e, "replica status of '%s': ", d->addr);
		return rc;
	}
	if ((rc = db_finish(d, e)))
		return rc;
	/* SHOW SLAVE STATUS (as opposed to ALL SLAVES) has no Gtid_Slave_Pos. */
	if (out->configured && d->flavor == DB_FLAVOR_MARIADB &&
	    !out->gtid_executed) {
		const char *q = db_sql(d, DIALECT_GTID_SLAVE_POS);
		if (q && (rc = db_query_value(d, q, &out->gtid_executed, NULL, e)))
			return rc;
	}
	return 0;
}

/* MySQL prints GTID sets with a newline after each comma. */
static void strip_newlines(char *s)
{
	char *w = s;

	for (const char *r = s; *r; r++)
		if (*r != '\n' && *r != '\r')
			*w++ = *r;
	*w = '\0';
}

int db_gtid_position(struct db *d, char **out, struct err *e)
{
	const char *sql = db_sql(d, DIALECT_GTID_POSITION);
	bool found;
	int rc;

	*out = NULL;
	if (!sql)
		return no_stmt(d, "GTID position", e);
	if ((rc = db_query_value(d, sql, out, &found, e)))
		return rc;
	if (!*out)
		return err_set(e, ERR_REPLICATION,
			       "'%s' reports no GTID position", d->addr);
	strip_newlines(*out);
	return 0;
}

int db_gtid_wait(struct db *d, const char *gtid, unsigned timeout_s,
		 struct err *e)
{
	struct buf b;
	char *v = NULL;
	bool reached = false;
	int rc;

	if (d->read_timeout_s && timeout_s >= d->read_timeout_s)
		return err_set(e, ERR_USAGE,
			       "GTID wait of %u s on '%s' needs a read timeout "
			       "above it (now %u s)", timeout_s, d->addr,
			       d->read_timeout_s);
	buf_init(&b, 1024 * 1024);
	rc = dialect_build_gtid_wait(d->flavor, gtid, timeout_s,
				     db_no_backslash_escapes(d), &b, e);
	if (!rc)
		rc = db_query_value_len(d, b.data, b.len, &v, NULL, NULL, e);
	if (!rc)
		rc = dialect_gtid_wait_result(d->flavor, v, &reached, e);
	if (!rc && !reached)
		rc = err_set(e, ERR_TIMEOUT,
			     "'%s' did not reach GTID position '%.200s' within %u s",
			     d->addr, gtid, timeout_s);
	free(v);
	buf_release(&b);
	return rc;
}

int db_change_source(struct db *d, const struct dialect_source *src,
		     struct err *e)
{
	struct buf b;
	int rc;

	buf_init(&b, 64 * 1024);
	rc = dialect_build_change_source(d->flavor, d->version, src,
					 db_no_backslash_escapes(d), &b, e);
	if (!rc)
		rc = db_exec_secret(d, &b, src->password, e);
	if (rc)
		err_prefix(e, "unable to set the replication source of '%s' to "
			   "'%s:%u': ", d->addr, src->host ? src->host : "",
			   src->port);
	else
		log_info("db", "'%s' now replicates from '%s:%u' as '%s'",
			 d->addr, src->host, src->port, src->user);
	dialect_wipe(&b);
	buf_release(&b);
	return rc;
}

int db_read_only(struct db *d, bool *ro, struct err *e)
{
	unsigned long long v;
	int rc;

	*ro = false;
	if ((rc = db_query_ulong(d, db_sql(d, DIALECT_READ_ONLY), &v, e)))
		return rc;
	*ro = v != 0;
	return 0;
}

unsigned long db_server_id(struct db *d)
{
	unsigned long long v;
	struct err e;

	if (d->server_id_known)
		return d->server_id;
	err_init(&e);
	if (db_query_ulong(d, db_sql(d, DIALECT_SERVER_ID), &v, &e)) {
		log_warn("db", "%s", e.msg);
		return 0;
	}
	d->server_id = (unsigned long)v;
	d->server_id_known = true;
	return d->server_id;
}
