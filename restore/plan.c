/* What a restore works on and the statements it sends: parsing of the
 * --databases / --tables lists, the selection of a manifest's objects,
 * splitting secondary keys off CREATE TABLE for a load without them, the
 * LOAD DATA statement, the session of a stored program, and the password
 * file rule. Pure functions (no server, no threads), unit-tested in
 * tests/unit/test_restore.c. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "dialect.h"
#include "mem.h"
#include "restore_int.h"
#include "tsv.h"

/* ---- name lists ----------------------------------------------------------- */

/* Reads one name from *p up to an unquoted stop character (or the end):
 * `quoted` (backticks doubled inside) or plain (ASCII spaces around it
 * dropped). */
static int parse_one(const char **p, const char *stops, char **out,
		     const char *whole, struct err *e)
{
	const char *s = *p;
	struct buf b;
	int rc = 0;

	buf_init(&b, 64 * 1024);
	while (*s == ' ')
		s++;
	if (*s == '`') {
		s++;
		for (;;) {
			if (!*s) {
				rc = err_set(e, ERR_USAGE, "unterminated backtick in '%s'", whole);
				break;
			}
			if (*s == '`' && s[1] == '`') {
				rc = buf_append_char(&b, '`', e);
				s += 2;
				continue;
			}
			if (*s == '`') {
				s++;
				break;
			}
			rc = buf_append_char(&b, *s++, e);
			if (rc)
				break;
		}
		while (rc == 0 && *s == ' ')
			s++;
		if (rc == 0 && *s && !strchr(stops, *s))
			rc = err_set(e, ERR_USAGE, "unexpected '%c' after a quoted name in '%s'",
				     *s, whole);
	} else {
		const char *start = s, *end;

		while (*s && !strchr(stops, *s))
			s++;
		end = s;
		while (end > start && end[-1] == ' ')
			end--;
		rc = buf_append(&b, start, (size_t)(end - start), e);
	}
	if (rc == 0 && b.len == 0)
		rc = err_set(e, ERR_USAGE, "empty name in '%s'", whole);
	if (rc) {
		buf_release(&b);
		return rc;
	}
	*out = buf_detach(&b);
	buf_release(&b);
	*p = s;
	return 0;
}

void restore_names_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

int restore_parse_names(const char *s, char ***out, size_t *n, struct err *e)
{
	const char *p = s;
	char **v = NULL;
	size_t k = 0;
	int rc = 0;

	*out = NULL;
	*n = 0;
	if (!s || !*s)
		return err_set(e, ERR_USAGE, "empty list of names");
	for (;;) {
		char *name = NULL;

		rc = parse_one(&p, ",", &name, s, e);
		if (rc)
			break;
		v = xrealloc(v, (k + 1) * sizeof(*v));
		v[k++] = name;
		if (!*p)
			break;
		p++; /* ',' */
	}
	if (rc) {
		restore_names_free(v, k);
		return rc;
	}
	*out = v;
	*n = k;
	return 0;
}

void restore_tables_free(struct restore_table_name *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].schema);
		free(v[i].name);
	}
	free(v);
}

int restore_parse_tables(const char *s, struct restore_table_name **out,
			 size_t *n, struct err *e)
{
	const char *p = s;
	struct restore_table_name *v = NULL;
	size_t k = 0;
	int rc = 0;

	*out = NULL;
	*n = 0;
	if (!s || !*s)
		return err_set(e, ERR_USAGE, "empty list of tables");
	for (;;) {
		char *schema = NULL, *name = NULL;

		rc = parse_one(&p, ".,", &schema, s, e);
		if (rc == 0 && *p != '.')
			rc = err_set(e, ERR_USAGE,
				     "table '%s' in '%s' needs its database: db.table (backticks around names with '.' or ',')",
				     schema, s);
		if (rc == 0) {
			p++;
			rc = parse_one(&p, ",", &name, s, e);
		}
		if (rc) {
			free(schema);
			free(name);
			break;
		}
		v = xrealloc(v, (k + 1) * sizeof(*v));
		v[k].schema = schema;
		v[k].name = name;
		k++;
		if (!*p)
			break;
		p++;
	}
	if (rc) {
		restore_tables_free(v, k);
		return rc;
	}
	*out = v;
	*n = k;
	return 0;
}

/* ---- secondary keys ------------------------------------------------------- */

/* Skips a quoted run starting at s (s[0] is the quote); returns the
 * position after it, or NULL when it does not end. Backticks double to
 * escape; quotes also take backslash escapes. */
static const char *skip_quoted(const char *s)
{
	char q = *s++;

	while (*s) {
		if (q != '`' && *s == '\\' && s[1]) {
			s += 2;
			continue;
		}
		if (*s == q) {
			if (s[1] == q) {
				s += 2;
				continue;
			}
			return s + 1;
		}
		s++;
	}
	return NULL;
}

static bool starts_word(const char *s, const char *w)
{
	size_t n = strlen(w);

	return strncmp(s, w, n) == 0 && (s[n] == ' ' || s[n] == '`' || s[n] == '(');
}

struct def {
	const char *s;
	size_t n;
};

int restore_split_keys(const char *sql, char **create_out, char **add_out,
		       struct err *e)
{
	const char *p = sql, *open = NULL, *close = NULL;
	struct def *defs = NULL;
	size_t n_defs = 0;
	int depth = 0;
	bool has_pk = false, has_fk = false, any = false;
	struct buf c, a;
	int rc = 0;

	*create_out = NULL;
	*add_out = NULL;
	/* The first '(' outside quotes opens the definitions. */
	while (*p) {
		if (*p == '`' || *p == '\'' || *p == '"') {
			p = skip_quoted(p);
			if (!p)
				return err_set(e, ERR_INTERNAL, "unterminated quote in CREATE TABLE");
			continue;
		}
		if (*p == '(') {
			open = p;
			break;
		}
		p++;
	}
	if (!open)
		return 0;
	const char *start = open + 1;
	for (p = open; *p; ) {
		if (*p == '`' || *p == '\'' || *p == '"') {
			p = skip_quoted(p);
			if (!p) {
				free(defs);
				return err_set(e, ERR_INTERNAL, "unterminated quote in CREATE TABLE");
			}
			continue;
		}
		if (*p == '(') {
			depth++;
		} else if (*p == ')' || (*p == ',' && depth == 1)) {
			if (*p == ')')
				depth--;
			if (*p == ',' || depth == 0) {
				defs = xrealloc(defs, (n_defs + 1) * sizeof(*defs));
				defs[n_defs].s = start;
				defs[n_defs].n = (size_t)(p - start);
				n_defs++;
				start = p + 1;
			}
			if (depth == 0) {
				close = p;
				break;
			}
		}
		p++;
	}
	if (!close) {
		free(defs);
		return err_set(e, ERR_INTERNAL, "unbalanced parentheses in CREATE TABLE");
	}
	for (size_t i = 0; i < n_defs; i++) {
		while (defs[i].n && (*defs[i].s == ' ' || *defs[i].s == '\n' ||
				     *defs[i].s == '\t' || *defs[i].s == '\r')) {
			defs[i].s++;
			defs[i].n--;
		}
		while (defs[i].n && (defs[i].s[defs[i].n - 1] == ' ' ||
				     defs[i].s[defs[i].n - 1] == '\n'))
			defs[i].n--;
		if (starts_word(defs[i].s, "PRIMARY"))
			has_pk = true;
		if (starts_word(defs[i].s, "FOREIGN") ||
		    (starts_word(defs[i].s, "CONSTRAINT") &&
		     memmem(defs[i].s, defs[i].n, " FOREIGN KEY ", 13)))
			has_fk = true;
	}
	/* Without a primary key InnoDB clusters on the first unique key,
	 * and foreign keys need their index at creation: keep those whole. */
	if (!has_pk || has_fk) {
		free(defs);
		return 0;
	}
	buf_init(&c, 0);
	buf_init(&a, 0);
	rc = buf_append(&c, sql, (size_t)(open + 1 - sql), e);
	bool first_c = true;
	for (size_t i = 0; rc == 0 && i < n_defs; i++) {
		const struct def *d = &defs[i];
		bool key = starts_word(d->s, "KEY") || starts_word(d->s, "INDEX") ||
			   starts_word(d->s, "UNIQUE");
		if (key) {
			any = true;
			rc = buf_append_str(&a, a.len ? ", ADD " : "ADD ", e);
			if (rc == 0)
				rc = buf_append(&a, d->s, d->n, e);
		} else {
			rc = buf_append_str(&c, first_c ? "\n  " : ",\n  ", e);
			if (rc == 0)
				rc = buf_append(&c, d->s, d->n, e);
			first_c = false;
		}
	}
	if (rc == 0)
		rc = buf_append_str(&c, "\n", e);
	if (rc == 0)
		rc = buf_append_str(&c, close, e);
	free(defs);
	if (rc == 0 && any) {
		*create_out = buf_detach(&c);
		*add_out = buf_detach(&a);
	}
	buf_release(&c);
	buf_release(&a);
	return rc;
}

/* ---- the plan -------------------------------------------------------------- */

static bool name_in(char *const *v, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i], s) == 0)
			return true;
	return false;
}

static bool table_in(const struct restore_table_name *v, size_t n,
		     const char *schema, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i].schema, schema) == 0 && strcmp(v[i].name, name) == 0)
			return true;
	return false;
}

static void push(size_t **v, size_t *n, size_t x)
{
	*v = xrealloc(*v, (*n + 1) * sizeof(**v));
	(*v)[(*n)++] = x;
}

static int file_chunk_cmp(const void *a, const void *b, void *u)
{
	const struct manifest *m = u;
	int64_t x = m->files[*(const size_t *)a].chunk;
	int64_t y = m->files[*(const size_t *)b].chunk;

	return (x > y) - (x < y);
}

static int table_size_cmp(const void *a, const void *b)
{
	const struct restore_plan_table *x = a, *y = b;

	if (x->bytes_raw != y->bytes_raw)
		return x->bytes_raw < y->bytes_raw ? 1 : -1;
	return (x->mi > y->mi) - (x->mi < y->mi);
}

void restore_plan_release(struct restore_plan *p)
{
	if (!p)
		return;
	free(p->dbs);
	for (size_t i = 0; i < p->n_tables; i++) {
		free(p->tables[i].files);
		free(p->tables[i].create_sql);
		free(p->tables[i].add_keys);
	}
	free(p->tables);
	free(p->views);
	free(p->triggers);
	free(p->routines);
	free(p->events);
	memset(p, 0, sizeof(*p));
}

int restore_plan_build(const struct manifest *m, char *const *dbs,
		       size_t n_dbs, const struct restore_table_name *tables,
		       size_t n_tables, bool defer_indexes,
		       struct restore_plan *p, struct err *e)
{
	bool filtered = n_dbs > 0 || n_tables > 0;
	int rc = 0;

	memset(p, 0, sizeof(*p));
	p->m = m;
	p->filtered = filtered;
	for (size_t i = 0; i < n_dbs; i++) {
		bool found = false;

		for (size_t d = 0; d < m->n_databases && !found; d++)
			found = strcmp(m->databases[d].name, dbs[i]) == 0;
		if (!found)
			return err_set(e, ERR_NOT_FOUND,
				       "database '%s' is not in snapshot '%s'", dbs[i],
				       m->id);
	}
	for (size_t i = 0; i < n_tables; i++) {
		bool found = false;

		for (size_t t = 0; t < m->n_tables && !found; t++)
			found = strcmp(m->tables[t].schema, tables[i].schema) == 0 &&
				strcmp(m->tables[t].name, tables[i].name) == 0;
		if (!found)
			return err_set(e, ERR_NOT_FOUND,
				       "table '%s.%s' is not in snapshot '%s'",
				       tables[i].schema, tables[i].name, m->id);
	}

	/* Whole databases: views, routines and events come only with them. */
#define WHOLE(schema) (!filtered || name_in(dbs, n_dbs, (schema)))
	for (size_t t = 0; t < m->n_tables; t++) {
		const struct manifest_table *mt = &m->tables[t];

		if (!WHOLE(mt->schema) &&
		    !table_in(tables, n_tables, mt->schema, mt->name))
			continue;
		p->tables = xrealloc(p->tables, (p->n_tables + 1) * sizeof(*p->tables));
		struct restore_plan_table *pt = &p->tables[p->n_tables++];
		memset(pt, 0, sizeof(*pt));
		pt->mi = t;
		pt->n_files = mt->n_files;
		pt->files = xcalloc(mt->n_files ? mt->n_files : 1, sizeof(size_t));
		for (size_t k = 0; k < mt->n_files; k++) {
			const struct manifest_file *f = &m->files[mt->files[k]];

			pt->files[k] = mt->files[k];
			pt->bytes_raw += f->bytes_raw;
			pt->bytes_stored += f->bytes_stored;
		}
		qsort_r(pt->files, pt->n_files, sizeof(size_t), file_chunk_cmp,
			(void *)m);
		p->bytes_raw += pt->bytes_raw;
		p->bytes_stored += pt->bytes_stored;
		p->rows += mt->rows;
		p->n_files += mt->n_files;
		if (defer_indexes && mt->n_files > 0 && rc == 0)
			rc = restore_split_keys(mt->create_sql, &pt->create_sql,
						&pt->add_keys, e);
	}
	if (rc) {
		restore_plan_release(p);
		return rc;
	}
	qsort(p->tables, p->n_tables, sizeof(*p->tables), table_size_cmp);
	for (size_t d = 0; d < m->n_databases; d++) {
		bool want = WHOLE(m->databases[d].name);

		for (size_t i = 0; !want && i < p->n_tables; i++)
			want = strcmp(m->tables[p->tables[i].mi].schema,
				      m->databases[d].name) == 0;
		if (want)
			push(&p->dbs, &p->n_dbs, d);
	}
	for (size_t i = 0; i < m->n_views; i++)
		if (WHOLE(m->views[i].schema))
			push(&p->views, &p->n_views, i);
	for (size_t i = 0; i < m->n_routines; i++)
		if (WHOLE(m->routines[i].schema))
			push(&p->routines, &p->n_routines, i);
	for (size_t i = 0; i < m->n_events; i++)
		if (WHOLE(m->events[i].schema))
			push(&p->events, &p->n_events, i);
	for (size_t i = 0; i < m->n_triggers; i++) {
		const struct manifest_trigger *tr = &m->triggers[i];
		bool want = WHOLE(tr->schema);

		for (size_t k = 0; !want && k < p->n_tables; k++)
			want = strcmp(m->tables[p->tables[k].mi].schema, tr->schema) == 0 &&
			       strcmp(m->tables[p->tables[k].mi].name, tr->table) == 0;
		if (want)
			push(&p->triggers, &p->n_triggers, i);
	}
#undef WHOLE
	return 0;
}

/* ---- statements -------------------------------------------------------- */

int restore_sql_load(struct buf *b, const char *infile_name,
		     const struct manifest_table *t, struct err *e)
{
	int rc = buf_append_str(b, "LOAD DATA LOCAL INFILE ", e);

	if (rc == 0)
		rc = dialect_quote_string(b, infile_name, strlen(infile_name), false, e);
	if (rc == 0)
		rc = buf_append_str(b, " INTO TABLE ", e);
	if (rc == 0)
		rc = db_quote_table(b, t->schema, t->name, e);
	/* binary: the bytes go into each column exactly as dumped. */
	if (rc == 0)
		rc = buf_append_str(b, " CHARACTER SET binary ", e);
	if (rc == 0)
		rc = tsv_load_columns(b, t->columns, t->n_columns, e);
	return rc;
}

static bool all_ascii(const char *s)
{
	for (; s && *s; s++)
		if ((unsigned char)*s >= 0x80)
			return false;
	return true;
}

static bool is_utf8_charset(const char *cs)
{
	return cs && strncmp(cs, "utf8", 4) == 0;
}

int restore_sql_object_env(struct buf *b, const struct manifest_sql_env *env,
			   const char *time_zone, const char *create_sql,
			   bool nbe, bool *warn, struct err *e)
{
	const char *cs = env->character_set_client;
	const char *coll = env->collation_connection;
	int rc;

	*warn = false;
	/* The text came back from the server as UTF-8: declaring it to be in
	 * another character set would garble anything but ASCII. */
	if (!is_utf8_charset(cs) && !all_ascii(create_sql)) {
		*warn = true;
		cs = "utf8mb4";
		coll = "utf8mb4_general_ci";
	}
	rc = buf_append_str(b, "SET SESSION sql_mode = ", e);
	if (rc == 0)
		rc = dialect_quote_string(b, env->sql_mode ? env->sql_mode : "",
					  env->sql_mode ? strlen(env->sql_mode) : 0, nbe, e);
	if (rc == 0 && cs && *cs) {
		rc = buf_append_str(b, ", SESSION character_set_client = ", e);
		if (rc == 0)
			rc = dialect_quote_string(b, cs, strlen(cs), nbe, e);
	}
	if (rc == 0 && coll && *coll) {
		rc = buf_append_str(b, ", SESSION collation_connection = ", e);
		if (rc == 0)
			rc = dialect_quote_string(b, coll, strlen(coll), nbe, e);
	}
	if (rc == 0 && time_zone && *time_zone) {
		rc = buf_append_str(b, ", SESSION time_zone = ", e);
		if (rc == 0)
			rc = dialect_quote_string(b, time_zone, strlen(time_zone), nbe, e);
	}
	return rc;
}

/* ---- password files ---------------------------------------------------- */

int restore_read_password_file(const char *path, char **out, struct err *e)
{
	char data[CFG_MAX_SECRET + 2];
	size_t len = 0;
	struct stat st;
	int fd, rc = 0;

	*out = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		int en = errno;

		return err_set_errno(e, en == EACCES || en == EPERM ? ERR_PERMISSION
								  : ERR_USAGE,
				     en, "unable to open password file '%s'", path);
	}
	if (fstat(fd, &st) != 0)
		rc = err_set_errno(e, ERR_IO, errno, "unable to stat password file '%s'", path);
	else if (!S_ISREG(st.st_mode))
		rc = err_set(e, ERR_USAGE, "password file '%s' is not a regular file", path);
	else if (st.st_mode & 077)
		rc = err_set(e, ERR_PERMISSION,
			     "password file '%s' is accessible by group or others (mode %04o); chmod 600 it",
			     path, (unsigned)(st.st_mode & 07777));
	while (rc == 0 && len < sizeof(data)) {
		ssize_t k = read(fd, data + len, sizeof(data) - len);

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			rc = err_set_errno(e, ERR_IO, errno, "unable to read password file '%s'", path);
		if (k <= 0)
			break;
		len += (size_t)k;
	}
	close(fd);
	while (len && (data[len - 1] == '\n' || data[len - 1] == '\r'))
		len--;
	if (rc == 0 && len > CFG_MAX_SECRET)
		rc = err_set(e, ERR_USAGE, "password file '%s' is larger than %d bytes",
			     path, CFG_MAX_SECRET);
	else if (rc == 0 && len == 0)
		rc = err_set(e, ERR_USAGE, "password file '%s' is empty", path);
	else if (rc == 0 && (memchr(data, '\n', len) || memchr(data, '\r', len) ||
			     memchr(data, '\0', len)))
		rc = err_set(e, ERR_USAGE, "password file '%s' holds more than one line", path);
	if (rc == 0)
		*out = xstrndup(data, len);
	explicit_bzero(data, sizeof(data));
	return rc;
}
