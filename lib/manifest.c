/* manifest.json: building it while a snapshot runs, writing it as JSON, and
 * reading it back with full validation (see manifest.h, docs/manifest.md).
 * Pure: no I/O, no globals. A struct manifest belongs to one thread while it
 * is being filled. Writing runs the reader's validation over the JSON it is
 * about to return, so a manifest this module writes is always one it reads. */
#include "manifest.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "buf.h"
#include "mem.h"
#include "storage.h"

#define MANIFEST_THREADS_MAX 65535
/* zstd's own level range (ZSTD_minCLevel .. ZSTD_maxCLevel); the level is
 * informational, so any level zstd knows is accepted. */
#define MANIFEST_LEVEL_MIN (-131072)
#define MANIFEST_LEVEL_MAX 22
#define MANIFEST_SERVER_ID_MAX 4294967295LL
/* Longest piece of an untrusted value quoted in an error message. */
#define QUOTE_MAX 64
#define QBUF (QUOTE_MAX + 8)

/* ------------------------------------------------------------------ */
/* small helpers                                                        */

static void *grow(void *p, size_t *cap, size_t n, size_t size)
{
	size_t c;

	if (n < *cap)
		return p;
	c = *cap ? *cap * 2 : 8;
	p = xrealloc(p, c * size);
	*cap = c;
	return p;
}

void manifest_set_str(char **field, const char *value)
{
	char *old = *field;

	*field = xstrdup(value);
	free(old);
}

/* Untrusted text made safe for a one-line message: control bytes become
 * '?', long values are cut at a UTF-8 boundary and marked with "...". */
static const char *qv(const char *s, char out[QBUF])
{
	size_t n = 0;
	size_t len;

	if (!s)
		return "(null)";
	len = strlen(s);
	if (len > QUOTE_MAX) {
		len = QUOTE_MAX;
		while (len > 0 && ((unsigned char)s[len] & 0xc0) == 0x80)
			len--;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		out[n++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
	}
	if (len < strlen(s)) {
		memcpy(out + n, "...", 3);
		n += 3;
	}
	out[n] = '\0';
	return out;
}

/* The repository's path rules: storage_path_check_len decides, so a path
 * the manifest accepts is one storage will open. This adds a refusal of
 * backslashes (no path backupd writes has one) and says why a path failed:
 * *why for the message, *escapes when it would leave the folder it is
 * relative to (absolute, or a ".." component). */
static bool manifest_path_ok(const char *p, size_t len, const char **why,
			     bool *escapes)
{
	size_t start = 0;
	struct err tmp;

	*escapes = false;
	if (len == 0) {
		*why = "empty path";
		return false;
	}
	if (p[0] == '/') {
		*escapes = true;
		*why = "absolute path";
		return false;
	}
	if (len > STORAGE_PATH_MAX) {
		*why = "path too long";
		return false;
	}
	for (size_t i = 0; i <= len; i++) {
		unsigned char c = i < len ? (unsigned char)p[i] : '/';

		if (c == '/') {
			size_t clen = i - start;

			if (clen == 0) {
				*why = "empty path component";
				return false;
			}
			if (clen == 2 && p[start] == '.' && p[start + 1] == '.') {
				*escapes = true;
				*why = "'..' component";
				return false;
			}
			if (clen == 1 && p[start] == '.') {
				*why = "'.' component";
				return false;
			}
			if (clen > STORAGE_NAME_MAX) {
				*why = "path component longer than 255 bytes";
				return false;
			}
			start = i + 1;
		} else if (c < 0x20 || c == 0x7f) {
			*why = "control character in path";
			return false;
		} else if (c == '\\') {
			*why = "backslash in path";
			return false;
		}
	}
	err_init(&tmp);
	if (storage_path_check_len(p, len, &tmp) != 0) {
		*why = "refused by the repository's path rules";
		return false;
	}
	return true;
}

/* "data/..." or "schema/...": the only two folders a manifest may name. */
static bool path_in_kind_folder(const char *p, enum manifest_file_kind kind)
{
	const char *pre = kind == MANIFEST_FILE_DATA ? "data/" : "schema/";

	return strncmp(p, pre, strlen(pre)) == 0;
}

static const char *file_kind_name(enum manifest_file_kind k)
{
	return k == MANIFEST_FILE_SCHEMA ? "schema" : "data";
}

static bool checksum_ok(const char *s)
{
	struct err tmp;

	err_init(&tmp);
	return s && checksum_parse(s, &tmp) == 0;
}

static bool is_routine_type(const char *s)
{
	return strcmp(s, "PROCEDURE") == 0 || strcmp(s, "FUNCTION") == 0 ||
	       strcmp(s, "PACKAGE") == 0 || strcmp(s, "PACKAGE BODY") == 0;
}

/* GTID sets (MariaDB "0-1-5,1-2-9", MySQL "uuid:1-5,\nuuid:tag:7") end
 * up in SQL a restore runs: only the characters they are made of. */
static bool gtid_chars_ok(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		unsigned char c = *p;
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
		      (c >= 'A' && c <= 'Z') || c == '-' || c == ':' ||
		      c == ',' || c == '_' || c == ' ' || c == '\n' ||
		      c == '\r' || c == '\t'))
			return false;
	}
	return true;
}

/* Binary log names go into CHANGE MASTER statements: printable, no quotes
 * or backslashes (the server never makes such names). */
static bool binlog_name_ok(const char *s)
{
	if (!*s)
		return false;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p < 0x20 || *p == 0x7f || *p == '\'' || *p == '"' ||
		    *p == '`' || *p == '\\')
			return false;
	return true;
}

/* ------------------------------------------------------------------ */
/* lifecycle and adders                                                 */

struct manifest *manifest_new(void)
{
	struct manifest *m = xcalloc(1, sizeof(*m));

	m->version = MANIFEST_VERSION;
	m->settings.threads = 1;
	m->settings.compress_level = 3;
	m->settings.compression = xstrdup(MANIFEST_COMPRESSION);
	m->settings.checksum = xstrdup(CHECKSUM_ALGO);
	m->settings.encoding = xstrdup(MANIFEST_ENCODING);
	return m;
}

static void env_release(struct manifest_sql_env *v)
{
	free(v->sql_mode);
	free(v->character_set_client);
	free(v->collation_connection);
	free(v->db_collation);
}

static void env_copy(struct manifest_sql_env *dst,
		     const struct manifest_sql_env *src)
{
	memset(dst, 0, sizeof(*dst));
	if (!src)
		return;
	dst->sql_mode = xstrdup(src->sql_mode);
	dst->character_set_client = xstrdup(src->character_set_client);
	dst->collation_connection = xstrdup(src->collation_connection);
	dst->db_collation = xstrdup(src->db_collation);
}

void manifest_free(struct manifest *m)
{
	if (!m)
		return;
	free(m->id);
	free(m->cluster);
	free(m->source.address);
	free(m->source.role);
	free(m->source.flavor);
	free(m->source.version);
	free(m->position.gtid);
	free(m->position.binlog_file);
	free(m->position.source_binlog_file);
	free(m->started_at);
	free(m->finished_at);
	free(m->settings.compression);
	free(m->settings.checksum);
	free(m->settings.encoding);
	for (size_t i = 0; i < m->n_databases; i++) {
		free(m->databases[i].name);
		free(m->databases[i].create_sql);
	}
	free(m->databases);
	for (size_t i = 0; i < m->n_tables; i++) {
		struct manifest_table *t = &m->tables[i];
		free(t->schema);
		free(t->name);
		free(t->engine);
		free(t->create_sql);
		free(t->checksum);
		for (size_t j = 0; j < t->n_columns; j++)
			free(t->columns[j].name);
		free(t->columns);
		free(t->files);
	}
	free(m->tables);
	for (size_t i = 0; i < m->n_views; i++) {
		free(m->views[i].schema);
		free(m->views[i].name);
		free(m->views[i].create_sql);
	}
	free(m->views);
	for (size_t i = 0; i < m->n_triggers; i++) {
		free(m->triggers[i].schema);
		free(m->triggers[i].name);
		free(m->triggers[i].table);
		free(m->triggers[i].create_sql);
		env_release(&m->triggers[i].env);
	}
	free(m->triggers);
	for (size_t i = 0; i < m->n_routines; i++) {
		free(m->routines[i].schema);
		free(m->routines[i].name);
		free(m->routines[i].type);
		free(m->routines[i].create_sql);
		env_release(&m->routines[i].env);
	}
	free(m->routines);
	for (size_t i = 0; i < m->n_events; i++) {
		free(m->events[i].schema);
		free(m->events[i].name);
		free(m->events[i].create_sql);
		free(m->events[i].time_zone);
		env_release(&m->events[i].env);
	}
	free(m->events);
	for (size_t i = 0; i < m->n_users; i++) {
		free(m->users[i].user);
		free(m->users[i].host);
		free(m->users[i].create_sql);
		for (size_t j = 0; j < m->users[i].n_grants; j++)
			free(m->users[i].grants[j]);
		free(m->users[i].grants);
	}
	free(m->users);
	for (size_t i = 0; i < m->n_warnings; i++)
		free(m->warnings[i]);
	free(m->warnings);
	for (size_t i = 0; i < m->n_files; i++)
		free(m->files[i].path);
	free(m->files);
	free(m);
}

size_t manifest_add_database(struct manifest *m, const char *name,
			     const char *create_sql)
{
	struct manifest_database *d;

	m->databases = grow(m->databases, &m->cap_databases, m->n_databases,
			    sizeof(*m->databases));
	d = &m->databases[m->n_databases];
	d->name = xstrdup(name);
	d->create_sql = xstrdup(create_sql);
	return m->n_databases++;
}

size_t manifest_add_table(struct manifest *m, const char *schema,
			  const char *name, const char *engine,
			  const char *create_sql)
{
	struct manifest_table *t;

	m->tables = grow(m->tables, &m->cap_tables, m->n_tables,
			 sizeof(*m->tables));
	t = &m->tables[m->n_tables];
	memset(t, 0, sizeof(*t));
	t->schema = xstrdup(schema);
	t->name = xstrdup(name);
	t->engine = xstrdup(engine);
	t->create_sql = xstrdup(create_sql);
	m->totals.tables = m->n_tables + 1;
	return m->n_tables++;
}

int manifest_table_add_column(struct manifest *m, size_t table,
			      const char *name, enum tsv_col_kind kind,
			      struct err *e)
{
	struct manifest_table *t;

	if (table >= m->n_tables)
		return err_set(e, ERR_INTERNAL,
			       "manifest: no table %zu for a column", table);
	if ((unsigned)kind > TSV_COL_GENERATED || !name)
		return err_set(e, ERR_INTERNAL,
			       "manifest: invalid column for table %zu", table);
	t = &m->tables[table];
	t->columns = grow(t->columns, &t->cap_columns, t->n_columns,
			  sizeof(*t->columns));
	t->columns[t->n_columns].name = xstrdup(name);
	t->columns[t->n_columns].kind = kind;
	t->n_columns++;
	return 0;
}

int manifest_table_set_checksum(struct manifest *m, size_t table,
				const char *checksum, struct err *e)
{
	char qb[QBUF];

	if (table >= m->n_tables)
		return err_set(e, ERR_INTERNAL,
			       "manifest: no table %zu for a checksum", table);
	if (checksum && !checksum_ok(checksum))
		return err_set(e, ERR_INTERNAL,
			       "manifest: invalid checksum '%s' for table %zu",
			       qv(checksum, qb), table);
	manifest_set_str(&m->tables[table].checksum, checksum);
	return 0;
}

size_t manifest_add_view(struct manifest *m, const char *schema,
			 const char *name, const char *create_sql)
{
	struct manifest_view *v;

	m->views = grow(m->views, &m->cap_views, m->n_views, sizeof(*m->views));
	v = &m->views[m->n_views];
	v->schema = xstrdup(schema);
	v->name = xstrdup(name);
	v->create_sql = xstrdup(create_sql);
	return m->n_views++;
}

size_t manifest_add_trigger(struct manifest *m, const char *schema,
			    const char *name, const char *table,
			    const char *create_sql,
			    const struct manifest_sql_env *env)
{
	struct manifest_trigger *t;

	m->triggers = grow(m->triggers, &m->cap_triggers, m->n_triggers,
			   sizeof(*m->triggers));
	t = &m->triggers[m->n_triggers];
	t->schema = xstrdup(schema);
	t->name = xstrdup(name);
	t->table = xstrdup(table);
	t->create_sql = xstrdup(create_sql);
	env_copy(&t->env, env);
	return m->n_triggers++;
}

size_t manifest_add_routine(struct manifest *m, const char *schema,
			    const char *name, const char *type,
			    const char *create_sql,
			    const struct manifest_sql_env *env)
{
	struct manifest_routine *r;

	m->routines = grow(m->routines, &m->cap_routines, m->n_routines,
			   sizeof(*m->routines));
	r = &m->routines[m->n_routines];
	r->schema = xstrdup(schema);
	r->name = xstrdup(name);
	r->type = xstrdup(type);
	r->create_sql = xstrdup(create_sql);
	env_copy(&r->env, env);
	return m->n_routines++;
}

size_t manifest_add_event(struct manifest *m, const char *schema,
			  const char *name, const char *create_sql,
			  const char *time_zone,
			  const struct manifest_sql_env *env)
{
	struct manifest_event *v;

	m->events = grow(m->events, &m->cap_events, m->n_events,
			 sizeof(*m->events));
	v = &m->events[m->n_events];
	v->schema = xstrdup(schema);
	v->name = xstrdup(name);
	v->create_sql = xstrdup(create_sql);
	v->time_zone = xstrdup(time_zone);
	env_copy(&v->env, env);
	return m->n_events++;
}

size_t manifest_add_user(struct manifest *m, const char *user,
			 const char *host, const char *create_sql,
			 char *const *grants, size_t n_grants)
{
	struct manifest_user *u;

	m->users = grow(m->users, &m->cap_users, m->n_users, sizeof(*m->users));
	u = &m->users[m->n_users];
	u->user = xstrdup(user);
	u->host = xstrdup(host);
	u->create_sql = xstrdup(create_sql);
	u->n_grants = n_grants;
	u->grants = xcalloc(n_grants ? n_grants : 1, sizeof(char *));
	for (size_t i = 0; i < n_grants; i++)
		u->grants[i] = xstrdup(grants[i]);
	return m->n_users++;
}

/* Length of the valid UTF-8 sequence at p (at most n bytes), 0 if invalid:
 * no overlong forms, no surrogates, nothing above U+10FFFF. */
static size_t utf8_seq_len(const unsigned char *p, size_t n)
{
	uint32_t cp;
	size_t len;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		len = 2, cp = p[0] & 0x1f;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		len = 3, cp = p[0] & 0x0f;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		len = 4, cp = p[0] & 0x07;
	else
		return 0;
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0;
	return len;
}

/* Warnings are for humans and may quote names read with another character
 * set, or be cut mid-character: a bad byte becomes '?' rather than making
 * the whole manifest unwritable. */
static void utf8_sanitize(char *s)
{
	size_t n = strlen(s);

	for (size_t i = 0; i < n;) {
		size_t k = utf8_seq_len((unsigned char *)s + i, n - i);
		if (k == 0) {
			s[i++] = '?';
			continue;
		}
		i += k;
	}
}

size_t manifest_add_warning(struct manifest *m, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	utf8_sanitize(line);
	m->warnings = grow(m->warnings, &m->cap_warnings, m->n_warnings,
			   sizeof(*m->warnings));
	m->warnings[m->n_warnings] = xstrdup(line);
	return m->n_warnings++;
}

int manifest_add_file(struct manifest *m, const struct manifest_file *f,
		      struct err *e)
{
	struct manifest_file *d;
	const char *why;
	bool escapes;
	char qb[QBUF];

	if (m->n_files >= MANIFEST_MAX_FILES)
		return err_set(e, ERR_INTERNAL,
			       "manifest: more than %u files", MANIFEST_MAX_FILES);
	if (!f->path)
		return err_set(e, ERR_INTERNAL, "manifest: file without a path");
	if (!manifest_path_ok(f->path, strlen(f->path), &why, &escapes))
		return err_set(e, ERR_INTERNAL, "manifest: invalid path '%s': %s",
			       qv(f->path, qb), why);
	if ((unsigned)f->kind > MANIFEST_FILE_SCHEMA ||
	    !path_in_kind_folder(f->path, f->kind))
		return err_set(e, ERR_INTERNAL,
			       "manifest: path '%s' does not fit its kind",
			       qv(f->path, qb));
	if (f->kind == MANIFEST_FILE_DATA &&
	    (f->table < 0 || (uint64_t)f->table >= m->n_tables || f->chunk < 0))
		return err_set(e, ERR_INTERNAL,
			       "manifest: data file '%s' needs a table (of %zu) and a chunk",
			       qv(f->path, qb), m->n_tables);
	if (f->kind == MANIFEST_FILE_SCHEMA &&
	    (f->chunk != MANIFEST_NO_INDEX ||
	     (f->table != MANIFEST_NO_INDEX &&
	      (f->table < 0 || (uint64_t)f->table >= m->n_tables))))
		return err_set(e, ERR_INTERNAL,
			       "manifest: schema file '%s' has a chunk or a bad table",
			       qv(f->path, qb));
	if (!checksum_ok(f->checksum_raw) || !checksum_ok(f->checksum_stored))
		return err_set(e, ERR_INTERNAL,
			       "manifest: invalid checksum for '%s'", qv(f->path, qb));

	m->files = grow(m->files, &m->cap_files, m->n_files, sizeof(*m->files));
	d = &m->files[m->n_files];
	*d = *f;
	d->path = xstrdup(f->path);
	if (f->kind == MANIFEST_FILE_DATA) {
		struct manifest_table *t = &m->tables[f->table];
		t->files = grow(t->files, &t->cap_files, t->n_files,
				sizeof(*t->files));
		t->files[t->n_files++] = m->n_files;
		t->rows += f->rows;
	}
	m->totals.rows += f->rows;
	m->totals.bytes_raw += f->bytes_raw;
	m->totals.bytes_stored += f->bytes_stored;
	m->totals.files = m->n_files + 1;
	return (int)m->n_files++;
}

/* ------------------------------------------------------------------ */
/* time stamps                                                          */

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant). */
static int64_t days_from_civil(int64_t y, int mon, int d)
{
	int64_t era, yoe, doy, doe;

	y -= mon <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (mon + (mon > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

int manifest_time_format(double t, char out[MANIFEST_TIME_MAX], struct err *e)
{
	struct tm tm;
	time_t secs;
	long ms;
	char tmp[128];

	if (!(t >= 0) || t > 253402300799.0)   /* 9999-12-31T23:59:59Z */
		return err_set(e, ERR_INTERNAL, "manifest: time %f out of range", t);
	/* t >= 0, so truncation is floor; no libm needed. */
	secs = (time_t)t;
	ms = (long)((t - (double)secs) * 1000.0 + 0.5);
	if (ms >= 1000) {
		secs += 1;
		ms -= 1000;
	}
	if (!gmtime_r(&secs, &tm))
		return err_set(e, ERR_INTERNAL, "manifest: time %f out of range", t);
	/* A roomy buffer keeps the compiler's truncation analysis quiet; the
	 * text is 24 bytes for every year the range check lets through. */
	snprintf(tmp, sizeof(tmp), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ",
		 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		 tm.tm_min, tm.tm_sec, ms);
	str_copy(out, MANIFEST_TIME_MAX, tmp);
	return 0;
}

static bool digits(const char *s, int n, int *out)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return true;
}

int manifest_time_parse(const char *s, double *t, struct err *e)
{
	static const int mdays[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	int y, mo, d, h, mi, sec, dim;
	double frac = 0;
	const char *p;
	char qb[QBUF];

	if (!s || strlen(s) < 20 ||
	    !digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &mo) ||
	    s[7] != '-' || !digits(s + 8, 2, &d) || s[10] != 'T' ||
	    !digits(s + 11, 2, &h) || s[13] != ':' || !digits(s + 14, 2, &mi) ||
	    s[16] != ':' || !digits(s + 17, 2, &sec))
		goto bad;
	p = s + 19;
	if (*p == '.') {
		double scale = 0.1;
		int nd = 0;

		for (p++; *p >= '0' && *p <= '9'; p++, nd++) {
			if (nd >= 9)
				goto bad;
			frac += (*p - '0') * scale;
			scale /= 10;
		}
		if (nd == 0)
			goto bad;
	}
	if (p[0] != 'Z' || p[1] != '\0')
		goto bad;
	if (mo < 1 || mo > 12 || h > 23 || mi > 59 || sec > 59)
		goto bad;
	dim = mdays[mo - 1];
	if (mo == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		dim = 29;
	if (d < 1 || d > dim)
		goto bad;
	*t = (double)(days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 +
		      sec) + frac;
	return 0;
bad:
	return err_set(e, ERR_CORRUPT,
		       "invalid time '%s': expected YYYY-MM-DDTHH:MM:SS[.fff]Z",
		       qv(s, qb));
}

/* ------------------------------------------------------------------ */
/* writing: struct -> JSON tree                                         */

struct bld {
	char where[64];          /* "tables[3]." for messages */
	char bad[128];           /* first field that was not valid UTF-8 */
};

static json_t *jcheck(json_t *v)
{
	/* Same policy as xmalloc: jansson only fails here when out of memory. */
	if (!v)
		abort();
	return v;
}

static json_t *b_obj(void)
{
	return jcheck(json_object());
}

static json_t *b_arr(void)
{
	return jcheck(json_array());
}

static json_t *b_strval(struct bld *b, const char *s, const char *key)
{
	json_t *v;

	if (!s)
		return jcheck(json_null());
	v = json_string(s);
	if (!v) {
		/* json_string refuses bytes that are not UTF-8. */
		if (!b->bad[0])
			snprintf(b->bad, sizeof(b->bad), "%s%s", b->where, key);
		v = jcheck(json_null());
	}
	return v;
}

static void b_set(json_t *o, const char *key, json_t *v)
{
	if (json_object_set_new(o, key, v) != 0)
		abort();
}

static void b_str(struct bld *b, json_t *o, const char *key, const char *s)
{
	b_set(o, key, b_strval(b, s, key));
}

/* Values above INT64_MAX cannot be written; null makes the validation
 * that follows name the field. */
static void b_uint(json_t *o, const char *key, uint64_t v)
{
	b_set(o, key, v > INT64_MAX ? jcheck(json_null())
				    : jcheck(json_integer((json_int_t)v)));
}

static void b_int(json_t *o, const char *key, int64_t v)
{
	b_set(o, key, jcheck(json_integer((json_int_t)v)));
}

static void b_push(json_t *a, json_t *v)
{
	if (json_array_append_new(a, v) != 0)
		abort();
}

static void b_env(struct bld *b, json_t *o, const struct manifest_sql_env *v)
{
	b_str(b, o, "sql_mode", v->sql_mode);
	b_str(b, o, "character_set_client", v->character_set_client);
	b_str(b, o, "collation_connection", v->collation_connection);
	b_str(b, o, "db_collation", v->db_collation);
}

static json_t *b_manifest(const struct manifest *m, struct bld *b)
{
	json_t *root = b_obj(), *o, *a;

	b->where[0] = '\0';
	b_str(b, root, "format", MANIFEST_FORMAT);
	b_int(root, "version", MANIFEST_VERSION);
	b_str(b, root, "id", m->id);
	b_str(b, root, "cluster", m->cluster);

	o = b_obj();
	snprintf(b->where, sizeof(b->where), "source.");
	b_str(b, o, "address", m->source.address);
	b_str(b, o, "role", m->source.role);
	b_int(o, "server_id", m->source.server_id);
	b_str(b, o, "flavor", m->source.flavor);
	b_str(b, o, "version", m->source.version);
	b_set(root, "source", o);

	o = b_obj();
	snprintf(b->where, sizeof(b->where), "position.");
	b_str(b, o, "gtid", m->position.gtid);
	b_str(b, o, "binlog_file", m->position.binlog_file);
	if (m->position.binlog_file)
		b_uint(o, "binlog_pos", m->position.binlog_pos);
	else
		b_set(o, "binlog_pos", jcheck(json_null()));
	b_str(b, o, "source_binlog_file", m->position.source_binlog_file);
	if (m->position.source_binlog_file)
		b_uint(o, "source_binlog_pos", m->position.source_binlog_pos);
	else
		b_set(o, "source_binlog_pos", jcheck(json_null()));
	b_set(root, "position", o);

	b->where[0] = '\0';
	b_str(b, root, "started_at", m->started_at);
	b_str(b, root, "finished_at", m->finished_at);

	o = b_obj();
	snprintf(b->where, sizeof(b->where), "settings.");
	b_int(o, "threads", m->settings.threads);
	b_str(b, o, "compression", m->settings.compression);
	b_int(o, "compress_level", m->settings.compress_level);
	b_str(b, o, "checksum", m->settings.checksum);
	b_str(b, o, "encoding", m->settings.encoding);
	b_uint(o, "chunk_rows", m->settings.chunk_rows);
	b_set(o, "include_users", jcheck(json_boolean(m->settings.include_users)));
	b_set(root, "settings", o);

	a = b_arr();
	for (size_t i = 0; i < m->n_databases; i++) {
		snprintf(b->where, sizeof(b->where), "databases[%zu].", i);
		o = b_obj();
		b_str(b, o, "name", m->databases[i].name);
		b_str(b, o, "create_sql", m->databases[i].create_sql);
		b_push(a, o);
	}
	b_set(root, "databases", a);

	a = b_arr();
	for (size_t i = 0; i < m->n_tables; i++) {
		const struct manifest_table *t = &m->tables[i];
		json_t *cols = b_arr(), *files = b_arr();

		snprintf(b->where, sizeof(b->where), "tables[%zu].", i);
		o = b_obj();
		b_str(b, o, "schema", t->schema);
		b_str(b, o, "name", t->name);
		b_str(b, o, "engine", t->engine);
		b_str(b, o, "create_sql", t->create_sql);
		b_uint(o, "rows", t->rows);
		b_str(b, o, "checksum", t->checksum);
		for (size_t j = 0; j < t->n_columns; j++) {
			json_t *c = b_obj();
			b_str(b, c, "name", t->columns[j].name);
			b_str(b, c, "kind", tsv_col_kind_name(t->columns[j].kind));
			b_push(cols, c);
		}
		b_set(o, "columns", cols);
		for (size_t j = 0; j < t->n_files; j++)
			b_push(files, t->files[j] < m->n_files
					      ? b_strval(b, m->files[t->files[j]].path, "files")
					      : jcheck(json_null()));
		b_set(o, "files", files);
		b_push(a, o);
	}
	b_set(root, "tables", a);

	a = b_arr();
	for (size_t i = 0; i < m->n_views; i++) {
		snprintf(b->where, sizeof(b->where), "views[%zu].", i);
		o = b_obj();
		b_str(b, o, "schema", m->views[i].schema);
		b_str(b, o, "name", m->views[i].name);
		b_str(b, o, "create_sql", m->views[i].create_sql);
		b_push(a, o);
	}
	b_set(root, "views", a);

	a = b_arr();
	for (size_t i = 0; i < m->n_triggers; i++) {
		const struct manifest_trigger *t = &m->triggers[i];
		snprintf(b->where, sizeof(b->where), "triggers[%zu].", i);
		o = b_obj();
		b_str(b, o, "schema", t->schema);
		b_str(b, o, "name", t->name);
		b_str(b, o, "table", t->table);
		b_str(b, o, "create_sql", t->create_sql);
		b_env(b, o, &t->env);
		b_push(a, o);
	}
	b_set(root, "triggers", a);

	a = b_arr();
	for (size_t i = 0; i < m->n_routines; i++) {
		const struct manifest_routine *r = &m->routines[i];
		snprintf(b->where, sizeof(b->where), "routines[%zu].", i);
		o = b_obj();
		b_str(b, o, "schema", r->schema);
		b_str(b, o, "name", r->name);
		b_str(b, o, "type", r->type);
		b_str(b, o, "create_sql", r->create_sql);
		b_env(b, o, &r->env);
		b_push(a, o);
	}
	b_set(root, "routines", a);

	a = b_arr();
	for (size_t i = 0; i < m->n_events; i++) {
		const struct manifest_event *v = &m->events[i];
		snprintf(b->where, sizeof(b->where), "events[%zu].", i);
		o = b_obj();
		b_str(b, o, "schema", v->schema);
		b_str(b, o, "name", v->name);
		b_str(b, o, "create_sql", v->create_sql);
		b_str(b, o, "sql_mode", v->env.sql_mode);
		b_str(b, o, "time_zone", v->time_zone);
		b_str(b, o, "character_set_client", v->env.character_set_client);
		b_str(b, o, "collation_connection", v->env.collation_connection);
		b_str(b, o, "db_collation", v->env.db_collation);
		b_push(a, o);
	}
	b_set(root, "events", a);

	a = b_arr();
	for (size_t i = 0; i < m->n_users; i++) {
		const struct manifest_user *u = &m->users[i];
		json_t *g = b_arr();
		snprintf(b->where, sizeof(b->where), "users[%zu].", i);
		o = b_obj();
		b_str(b, o, "user", u->user);
		b_str(b, o, "host", u->host);
		b_str(b, o, "create_sql", u->create_sql);
		for (size_t j = 0; j < u->n_grants; j++)
			b_push(g, b_strval(b, u->grants[j], "grants"));
		b_set(o, "grants", g);
		b_push(a, o);
	}
	b_set(root, "users", a);

	a = b_arr();
	b->where[0] = '\0';
	for (size_t i = 0; i < m->n_warnings; i++)
		b_push(a, b_strval(b, m->warnings[i], "warnings"));
	b_set(root, "warnings", a);

	a = b_arr();
	for (size_t i = 0; i < m->n_files; i++) {
		const struct manifest_file *f = &m->files[i];
		snprintf(b->where, sizeof(b->where), "files[%zu].", i);
		o = b_obj();
		b_str(b, o, "path", f->path);
		b_str(b, o, "kind", file_kind_name(f->kind));
		b_set(o, "table", f->table >= 0 ? jcheck(json_integer(f->table))
						: jcheck(json_null()));
		b_set(o, "chunk", f->chunk >= 0 ? jcheck(json_integer(f->chunk))
						: jcheck(json_null()));
		b_uint(o, "rows", f->rows);
		b_uint(o, "bytes_raw", f->bytes_raw);
		b_uint(o, "bytes_stored", f->bytes_stored);
		b_str(b, o, "checksum_raw", f->checksum_raw);
		b_str(b, o, "checksum_stored", f->checksum_stored);
		b_push(a, o);
	}
	b_set(root, "files", a);

	o = b_obj();
	b_uint(o, "bytes_raw", m->totals.bytes_raw);
	b_uint(o, "bytes_stored", m->totals.bytes_stored);
	b_uint(o, "files", m->totals.files);
	b_uint(o, "tables", m->totals.tables);
	b_uint(o, "rows", m->totals.rows);
	b_set(root, "totals", o);
	return root;
}

/* ------------------------------------------------------------------ */
/* reading: JSON tree -> struct, validating everything                 */

struct path_ent {
	const char *path;
	size_t idx;
};

struct chunk_ent {
	int64_t table;
	int64_t chunk;
	size_t idx;
};

struct rd {
	struct err *e;
	char field[256];         /* "tables[3].files[0]" */
	size_t len;
	struct path_ent *paths;  /* files sorted by path */
	bool *listed;            /* files[i] appears in a table's list */
};

static size_t rd_key(struct rd *r, const char *key)
{
	size_t old = r->len;
	size_t kl = strlen(key);

	if (old + kl + 2 < sizeof(r->field)) {
		if (old)
			r->field[r->len++] = '.';
		memcpy(r->field + r->len, key, kl);
		r->len += kl;
		r->field[r->len] = '\0';
	}
	return old;
}

static size_t rd_idx(struct rd *r, size_t i)
{
	size_t old = r->len;
	int n = snprintf(r->field + old, sizeof(r->field) - old, "[%zu]", i);

	if (n > 0 && (size_t)n < sizeof(r->field) - old)
		r->len += (size_t)n;
	else
		r->field[old] = '\0';
	return old;
}

static void rd_pop(struct rd *r, size_t mark)
{
	r->len = mark;
	r->field[mark] = '\0';
}

static int rd_fail(struct rd *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int rd_fail(struct rd *r, const char *fmt, ...)
{
	char msg[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (r->len == 0)
		return err_set(r->e, ERR_CORRUPT, "manifest: %s", msg);
	return err_set(r->e, ERR_CORRUPT, "manifest '%s': %s", r->field, msg);
}

static const char *jtype_name(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT: return "an object";
	case JSON_ARRAY: return "an array";
	case JSON_STRING: return "a string";
	case JSON_INTEGER: return "an integer";
	case JSON_REAL: return "a number with a fraction";
	case JSON_TRUE:
	case JSON_FALSE: return "a boolean";
	case JSON_NULL: return "null";
	}
	return "something else";
}

/* Flags for the value readers. */
#define RD_NULL_OK   1u   /* null is accepted (reported as absent) */
#define RD_NONEMPTY  2u   /* "" is refused */

/* Checks that v (the value of the current field, NULL when missing) has the
 * wanted JSON type. *out is NULL for an accepted null. */
static int rd_type(struct rd *r, json_t *v, json_type want, const char *want_name,
		   unsigned flags, json_t **out)
{
	*out = NULL;
	if (!v)
		return rd_fail(r, "missing");
	if (json_is_null(v) && (flags & RD_NULL_OK))
		return 0;
	if (json_typeof(v) != want &&
	    !(want == JSON_TRUE && json_is_boolean(v)))
		return rd_fail(r, "expected %s, got %s", want_name, jtype_name(v));
	*out = v;
	return 0;
}

static int cur_str(struct rd *r, json_t *v, unsigned flags, const char **s)
{
	json_t *x;
	int rc = rd_type(r, v, JSON_STRING, "a string", flags, &x);

	*s = NULL;
	if (rc || !x)
		return rc;
	/* Jansson refuses \u0000 by default; a C string must not hide one. */
	if (strlen(json_string_value(x)) != json_string_length(x))
		return rd_fail(r, "contains a NUL byte");
	if ((flags & RD_NONEMPTY) && json_string_length(x) == 0)
		return rd_fail(r, "must not be empty");
	*s = json_string_value(x);
	return 0;
}

static int cur_int(struct rd *r, json_t *v, unsigned flags, int64_t min,
		   int64_t max, int64_t *out, bool *is_null)
{
	json_t *x;
	int rc = rd_type(r, v, JSON_INTEGER, "an integer", flags, &x);
	json_int_t n;

	if (is_null)
		*is_null = !x;
	*out = 0;
	if (rc || !x)
		return rc;
	n = json_integer_value(x);
	if (n < min || n > max)
		return rd_fail(r, "%lld is out of range (%" PRId64 "..%" PRId64 ")",
			       (long long)n, min, max);
	*out = n;
	return 0;
}

/* The getters below read obj[key] naming the field in any message. */

static int get_str(struct rd *r, json_t *obj, const char *key, unsigned flags,
		   char **dst)
{
	size_t mark = rd_key(r, key);
	const char *s;
	int rc = cur_str(r, json_object_get(obj, key), flags, &s);

	if (rc)
		return rc;
	manifest_set_str(dst, s);
	rd_pop(r, mark);
	return 0;
}

static int get_uint(struct rd *r, json_t *obj, const char *key, uint64_t *dst)
{
	size_t mark = rd_key(r, key);
	int64_t v;
	int rc = cur_int(r, json_object_get(obj, key), 0, 0, INT64_MAX, &v, NULL);

	if (rc)
		return rc;
	*dst = (uint64_t)v;
	rd_pop(r, mark);
	return 0;
}

static int get_bool(struct rd *r, json_t *obj, const char *key, bool *dst)
{
	size_t mark = rd_key(r, key);
	json_t *x;
	int rc = rd_type(r, json_object_get(obj, key), JSON_TRUE, "a boolean", 0, &x);

	if (rc)
		return rc;
	*dst = json_is_true(x);
	rd_pop(r, mark);
	return 0;
}

static int get_obj(struct rd *r, json_t *obj, const char *key, json_t **dst)
{
	size_t mark = rd_key(r, key);
	int rc = rd_type(r, json_object_get(obj, key), JSON_OBJECT, "an object",
			 0, dst);

	if (rc)
		return rc;
	rd_pop(r, mark);
	return 0;
}

static int get_arr(struct rd *r, json_t *obj, const char *key, json_t **dst)
{
	size_t mark = rd_key(r, key);
	int rc = rd_type(r, json_object_get(obj, key), JSON_ARRAY, "an array",
			 0, dst);

	if (rc)
		return rc;
	rd_pop(r, mark);
	return 0;
}

/* An element of an array that must be an object; leaves "[i]" pushed. */
static int enter_elem(struct rd *r, json_t *arr, size_t i, json_t **o,
		      size_t *mark)
{
	*mark = rd_idx(r, i);
	return rd_type(r, json_array_get(arr, i), JSON_OBJECT, "an object", 0, o);
}

static int get_checksum(struct rd *r, json_t *obj, const char *key,
			unsigned flags, const char **out)
{
	size_t mark = rd_key(r, key);
	char qb[QBUF];
	int rc = cur_str(r, json_object_get(obj, key), flags, out);

	if (rc)
		return rc;
	if (*out && !checksum_ok(*out))
		return rd_fail(r, "invalid checksum '%s': expected '%s:' and 32 lowercase hex digits",
			       qv(*out, qb), CHECKSUM_ALGO);
	rd_pop(r, mark);
	return 0;
}

/* A folder name taken from the manifest (id, cluster): one safe component. */
static int get_name(struct rd *r, json_t *obj, const char *key, char **dst)
{
	size_t mark = rd_key(r, key);
	const char *s, *why;
	bool escapes;
	char qb[QBUF];
	int rc = cur_str(r, json_object_get(obj, key), RD_NONEMPTY, &s);

	if (rc)
		return rc;
	if (!manifest_path_ok(s, strlen(s), &why, &escapes) || strchr(s, '/'))
		return rd_fail(r, "'%s' is not a valid folder name", qv(s, qb));
	manifest_set_str(dst, s);
	rd_pop(r, mark);
	return 0;
}

static int get_time(struct rd *r, json_t *obj, const char *key, char **dst)
{
	size_t mark = rd_key(r, key);
	const char *s;
	double t;
	struct err tmp;
	char qb[QBUF];
	int rc = cur_str(r, json_object_get(obj, key), 0, &s);

	if (rc)
		return rc;
	err_init(&tmp);
	if (manifest_time_parse(s, &t, &tmp) != 0)
		return rd_fail(r, "invalid time '%s': expected YYYY-MM-DDTHH:MM:SS[.fff]Z",
			       qv(s, qb));
	manifest_set_str(dst, s);
	rd_pop(r, mark);
	return 0;
}

/* Checks a path read from the current field. */
static int rd_path(struct rd *r, const char *s, size_t len)
{
	const char *why;
	bool escapes;
	char qb[QBUF];

	if (strlen(s) != len)
		return rd_fail(r, "path contains a NUL byte");
	if (!manifest_path_ok(s, len, &why, &escapes)) {
		if (escapes)
			return rd_fail(r, "path '%s' escapes the snapshot folder",
				       qv(s, qb));
		return rd_fail(r, "invalid path '%s': %s", qv(s, qb), why);
	}
	if (!path_in_kind_folder(s, MANIFEST_FILE_DATA) &&
	    !path_in_kind_folder(s, MANIFEST_FILE_SCHEMA))
		return rd_fail(r, "path '%s' is not under 'data/' or 'schema/'",
			       qv(s, qb));
	return 0;
}

static int get_env(struct rd *r, json_t *o, struct manifest_sql_env *v)
{
	int rc = get_str(r, o, "sql_mode", 0, &v->sql_mode);

	if (rc == 0)
		rc = get_str(r, o, "character_set_client", RD_NONEMPTY,
			     &v->character_set_client);
	if (rc == 0)
		rc = get_str(r, o, "collation_connection", RD_NONEMPTY,
			     &v->collation_connection);
	if (rc == 0)
		rc = get_str(r, o, "db_collation", RD_NONEMPTY, &v->db_collation);
	return rc;
}

static int rd_header(struct rd *r, json_t *root, struct manifest *m)
{
	size_t mark;
	const char *s;
	int64_t ver;
	char qb[QBUF];
	int rc;

	mark = rd_key(r, "format");
	rc = cur_str(r, json_object_get(root, "format"), 0, &s);
	if (rc)
		return rc;
	if (strcmp(s, MANIFEST_FORMAT) != 0)
		return rd_fail(r, "expected '%s', got '%s'", MANIFEST_FORMAT,
			       qv(s, qb));
	rd_pop(r, mark);

	mark = rd_key(r, "version");
	rc = cur_int(r, json_object_get(root, "version"), 0, INT64_MIN,
		     INT64_MAX, &ver, NULL);
	if (rc)
		return rc;
	if (ver > MANIFEST_VERSION)
		return err_set(r->e, ERR_CORRUPT,
			       "manifest version %" PRId64 " is newer than this backupd understands",
			       ver);
	if (ver < 1)
		return rd_fail(r, "unsupported version %" PRId64, ver);
	m->version = (int)ver;
	rd_pop(r, mark);

	rc = get_name(r, root, "id", &m->id);
	if (rc == 0)
		rc = get_name(r, root, "cluster", &m->cluster);
	return rc;
}

static int rd_source(struct rd *r, json_t *root, struct manifest *m)
{
	json_t *o;
	size_t mark, m2;
	const char *s;
	char qb[QBUF];
	int rc = get_obj(r, root, "source", &o);

	if (rc)
		return rc;
	mark = rd_key(r, "source");
	rc = get_str(r, o, "address", RD_NONEMPTY, &m->source.address);
	if (rc)
		return rc;
	m2 = rd_key(r, "role");
	rc = cur_str(r, json_object_get(o, "role"), 0, &s);
	if (rc)
		return rc;
	if (strcmp(s, "primary") != 0 && strcmp(s, "replica") != 0)
		return rd_fail(r, "unknown role '%s' (primary|replica)", qv(s, qb));
	manifest_set_str(&m->source.role, s);
	rd_pop(r, m2);
	m2 = rd_key(r, "server_id");
	rc = cur_int(r, json_object_get(o, "server_id"), 0, 0,
		     MANIFEST_SERVER_ID_MAX, &m->source.server_id, NULL);
	if (rc)
		return rc;
	rd_pop(r, m2);
	rc = get_str(r, o, "flavor", RD_NONEMPTY, &m->source.flavor);
	if (rc == 0)
		rc = get_str(r, o, "version", RD_NONEMPTY, &m->source.version);
	if (rc == 0)
		rd_pop(r, mark);
	return rc;
}

/* A binary log coordinate: file and position both set or both null. */
static int rd_binlog(struct rd *r, json_t *o, const char *fkey,
		     const char *pkey, char **file, uint64_t *pos)
{
	size_t mark = rd_key(r, fkey);
	const char *s;
	int64_t p;
	bool pos_null;
	char qb[QBUF];
	int rc = cur_str(r, json_object_get(o, fkey), RD_NULL_OK, &s);

	if (rc)
		return rc;
	if (s && !binlog_name_ok(s))
		return rd_fail(r, "invalid binary log name '%s'", qv(s, qb));
	manifest_set_str(file, s);
	rd_pop(r, mark);
	mark = rd_key(r, pkey);
	rc = cur_int(r, json_object_get(o, pkey), RD_NULL_OK, 0, INT64_MAX, &p,
		     &pos_null);
	if (rc)
		return rc;
	if (pos_null != !s)
		return rd_fail(r, s ? "null while '%s' is set"
				    : "set while '%s' is null", fkey);
	*pos = (uint64_t)p;
	rd_pop(r, mark);
	return 0;
}

static int rd_position(struct rd *r, json_t *root, struct manifest *m)
{
	json_t *o;
	size_t mark, m2;
	const char *s;
	char qb[QBUF];
	int rc = get_obj(r, root, "position", &o);

	if (rc)
		return rc;
	mark = rd_key(r, "position");
	m2 = rd_key(r, "gtid");
	rc = cur_str(r, json_object_get(o, "gtid"), RD_NULL_OK, &s);
	if (rc)
		return rc;
	if (s && !gtid_chars_ok(s))
		return rd_fail(r, "invalid GTID position '%s'", qv(s, qb));
	manifest_set_str(&m->position.gtid, s);
	rd_pop(r, m2);
	rc = rd_binlog(r, o, "binlog_file", "binlog_pos",
		       &m->position.binlog_file, &m->position.binlog_pos);
	if (rc == 0)
		rc = rd_binlog(r, o, "source_binlog_file", "source_binlog_pos",
			       &m->position.source_binlog_file,
			       &m->position.source_binlog_pos);
	if (rc == 0)
		rd_pop(r, mark);
	return rc;
}

/* A string setting that must hold the one value this version knows. */
static int rd_setting_is(struct rd *r, json_t *o, const char *key,
			 const char *want, char **dst)
{
	size_t mark = rd_key(r, key);
	const char *s;
	char qb[QBUF];
	int rc = cur_str(r, json_object_get(o, key), 0, &s);

	if (rc)
		return rc;
	if (strcmp(s, want) != 0)
		return rd_fail(r, "unsupported value '%s' (this backupd knows '%s')",
			       qv(s, qb), want);
	manifest_set_str(dst, s);
	rd_pop(r, mark);
	return 0;
}

static int rd_settings(struct rd *r, json_t *root, struct manifest *m)
{
	struct manifest_settings *st = &m->settings;
	json_t *o;
	size_t mark, m2;
	int64_t v;
	int rc = get_obj(r, root, "settings", &o);

	if (rc)
		return rc;
	mark = rd_key(r, "settings");
	m2 = rd_key(r, "threads");
	rc = cur_int(r, json_object_get(o, "threads"), 0, 1,
		     MANIFEST_THREADS_MAX, &v, NULL);
	if (rc)
		return rc;
	st->threads = (int)v;
	rd_pop(r, m2);
	rc = rd_setting_is(r, o, "compression", MANIFEST_COMPRESSION,
			   &st->compression);
	if (rc)
		return rc;
	m2 = rd_key(r, "compress_level");
	rc = cur_int(r, json_object_get(o, "compress_level"), 0,
		     MANIFEST_LEVEL_MIN, MANIFEST_LEVEL_MAX, &v, NULL);
	if (rc)
		return rc;
	st->compress_level = (int)v;
	rd_pop(r, m2);
	rc = rd_setting_is(r, o, "checksum", CHECKSUM_ALGO, &st->checksum);
	if (rc == 0)
		rc = rd_setting_is(r, o, "encoding", MANIFEST_ENCODING,
				   &st->encoding);
	if (rc == 0)
		rc = get_uint(r, o, "chunk_rows", &st->chunk_rows);
	if (rc == 0)
		rc = get_bool(r, o, "include_users", &st->include_users);
	if (rc == 0)
		rd_pop(r, mark);
	return rc;
}

static int rd_databases(struct rd *r, json_t *root, struct manifest *m)
{
	json_t *a, *o;
	size_t mark, m2;
	int rc = get_arr(r, root, "databases", &a);

	if (rc)
		return rc;
	mark = rd_key(r, "databases");
	m->n_databases = m->cap_databases = json_array_size(a);
	m->databases = xcalloc(m->n_databases ? m->n_databases : 1,
			       sizeof(*m->databases));
	for (size_t i = 0; i < m->n_databases; i++) {
		struct manifest_database *d = &m->databases[i];
		rc = enter_elem(r, a, i, &o, &m2);
		if (rc == 0)
			rc = get_str(r, o, "name", RD_NONEMPTY, &d->name);
		if (rc == 0)
			rc = get_str(r, o, "create_sql", RD_NONEMPTY, &d->create_sql);
		if (rc)
			return rc;
		rd_pop(r, m2);
	}
	rd_pop(r, mark);
	return 0;
}

static int path_ent_cmp(const void *a, const void *b)
{
	return strcmp(((const struct path_ent *)a)->path,
		      ((const struct path_ent *)b)->path);
}

static int chunk_ent_cmp(const void *a, const void *b)
{
	const struct chunk_ent *x = a, *y = b;

	if (x->table != y->table)
		return x->table < y->table ? -1 : 1;
	if (x->chunk != y->chunk)
		return x->chunk < y->chunk ? -1 : 1;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static int add_u64(struct rd *r, uint64_t *sum, uint64_t v)
{
	if (*sum > UINT64_MAX - v)
		return rd_fail(r, "sum over all files overflows");
	*sum += v;
	return 0;
}

/* One entry of "files"; the current field is "files[i]". */
static int rd_file(struct rd *r, json_t *o, size_t n_tables,
		   struct manifest_file *f)
{
	size_t mark;
	const char *s;
	int64_t v;
	bool is_null;
	char qb[QBUF];
	int rc;

	mark = rd_key(r, "path");
	rc = cur_str(r, json_object_get(o, "path"), 0, &s);
	if (rc == 0)
		rc = rd_path(r, s, json_string_length(json_object_get(o, "path")));
	if (rc)
		return rc;
	f->path = xstrdup(s);
	rd_pop(r, mark);

	mark = rd_key(r, "kind");
	rc = cur_str(r, json_object_get(o, "kind"), 0, &s);
	if (rc)
		return rc;
	if (strcmp(s, "data") == 0)
		f->kind = MANIFEST_FILE_DATA;
	else if (strcmp(s, "schema") == 0)
		f->kind = MANIFEST_FILE_SCHEMA;
	else
		return rd_fail(r, "unknown file kind '%s' (data|schema)", qv(s, qb));
	if (!path_in_kind_folder(f->path, f->kind))
		return rd_fail(r, "a %s file must be under '%s/', not '%s'",
			       s, s, qv(f->path, qb));
	rd_pop(r, mark);

	mark = rd_key(r, "table");
	rc = cur_int(r, json_object_get(o, "table"), RD_NULL_OK, INT64_MIN,
		     INT64_MAX, &v, &is_null);
	if (rc)
		return rc;
	if (is_null && f->kind == MANIFEST_FILE_DATA)
		return rd_fail(r, "a data file needs a table index");
	if (!is_null && (v < 0 || (uint64_t)v >= n_tables))
		return rd_fail(r, "table index %" PRId64 " is out of range (%zu tables)",
			       v, n_tables);
	f->table = is_null ? MANIFEST_NO_INDEX : v;
	rd_pop(r, mark);

	mark = rd_key(r, "chunk");
	rc = cur_int(r, json_object_get(o, "chunk"), RD_NULL_OK, 0, INT64_MAX,
		     &v, &is_null);
	if (rc)
		return rc;
	if (is_null && f->kind == MANIFEST_FILE_DATA)
		return rd_fail(r, "a data file needs a chunk number");
	if (!is_null && f->kind == MANIFEST_FILE_SCHEMA)
		return rd_fail(r, "a schema file has no chunk number");
	f->chunk = is_null ? MANIFEST_NO_INDEX : v;
	rd_pop(r, mark);

	rc = get_uint(r, o, "rows", &f->rows);
	if (rc == 0)
		rc = get_uint(r, o, "bytes_raw", &f->bytes_raw);
	if (rc == 0)
		rc = get_uint(r, o, "bytes_stored", &f->bytes_stored);
	if (rc == 0)
		rc = get_checksum(r, o, "checksum_raw", 0, &s);
	if (rc)
		return rc;
	str_copy(f->checksum_raw, sizeof(f->checksum_raw), s);
	rc = get_checksum(r, o, "checksum_stored", 0, &s);
	if (rc)
		return rc;
	str_copy(f->checksum_stored, sizeof(f->checksum_stored), s);
	return 0;
}

static int rd_files(struct rd *r, json_t *root, struct manifest *m,
		    struct manifest_totals *sum)
{
	json_t *a, *o;
	struct chunk_ent *chunks = NULL;
	size_t n, n_chunks = 0, mark, m2;
	int rc = get_arr(r, root, "files", &a);

	if (rc)
		return rc;
	mark = rd_key(r, "files");
	n = json_array_size(a);
	if (n > MANIFEST_MAX_FILES)
		return rd_fail(r, "%zu entries exceed the limit of %u", n,
			       MANIFEST_MAX_FILES);
	m->n_files = m->cap_files = n;
	m->files = xcalloc(n ? n : 1, sizeof(*m->files));
	for (size_t i = 0; i < n; i++) {
		struct manifest_file *f = &m->files[i];
		rc = enter_elem(r, a, i, &o, &m2);
		if (rc == 0)
			rc = rd_file(r, o, m->n_tables, f);
		if (rc == 0) {
			size_t m3 = rd_key(r, "rows");
			rc = add_u64(r, &sum->rows, f->rows);
			rd_pop(r, m3);
			m3 = rd_key(r, "bytes_raw");
			if (rc == 0)
				rc = add_u64(r, &sum->bytes_raw, f->bytes_raw);
			rd_pop(r, m3);
			m3 = rd_key(r, "bytes_stored");
			if (rc == 0)
				rc = add_u64(r, &sum->bytes_stored, f->bytes_stored);
		}
		if (rc)
			return rc;
		rd_pop(r, m2);
	}
	sum->files = n;
	rd_pop(r, mark);

	/* No two entries for one path: the restore would load it twice. */
	r->paths = xcalloc(n ? n : 1, sizeof(*r->paths));
	for (size_t i = 0; i < n; i++) {
		r->paths[i].path = m->files[i].path;
		r->paths[i].idx = i;
	}
	qsort(r->paths, n, sizeof(*r->paths), path_ent_cmp);
	for (size_t i = 1; i < n; i++) {
		if (strcmp(r->paths[i - 1].path, r->paths[i].path) == 0) {
			size_t a_idx = r->paths[i - 1].idx, b_idx = r->paths[i].idx;
			char qb[QBUF];

			if (a_idx > b_idx) {
				size_t t = a_idx;
				a_idx = b_idx;
				b_idx = t;
			}
			rd_key(r, "files");
			rd_idx(r, b_idx);
			rd_key(r, "path");
			return rd_fail(r, "duplicate path '%s' (also in 'files[%zu]')",
				       qv(m->files[b_idx].path, qb), a_idx);
		}
	}

	/* Nor two files for one chunk of a table. */
	chunks = xcalloc(n ? n : 1, sizeof(*chunks));
	for (size_t i = 0; i < n; i++) {
		if (m->files[i].kind != MANIFEST_FILE_DATA)
			continue;
		chunks[n_chunks].table = m->files[i].table;
		chunks[n_chunks].chunk = m->files[i].chunk;
		chunks[n_chunks].idx = i;
		n_chunks++;
	}
	qsort(chunks, n_chunks, sizeof(*chunks), chunk_ent_cmp);
	for (size_t i = 1; i < n_chunks; i++) {
		if (chunks[i - 1].table == chunks[i].table &&
		    chunks[i - 1].chunk == chunks[i].chunk) {
			rd_key(r, "files");
			rd_idx(r, chunks[i].idx);
			rd_key(r, "chunk");
			rc = rd_fail(r, "chunk %" PRId64 " of table %" PRId64
				     " is also in 'files[%zu]'",
				     chunks[i].chunk, chunks[i].table,
				     chunks[i - 1].idx);
			break;
		}
	}
	free(chunks);
	return rc;
}

static int rd_columns(struct rd *r, json_t *o, struct manifest_table *t)
{
	json_t *a, *c;
	size_t mark, m2, m3;
	const char *s;
	char qb[QBUF];
	int rc = get_arr(r, o, "columns", &a);

	if (rc)
		return rc;
	mark = rd_key(r, "columns");
	t->n_columns = t->cap_columns = json_array_size(a);
	t->columns = xcalloc(t->n_columns ? t->n_columns : 1, sizeof(*t->columns));
	for (size_t j = 0; j < t->n_columns; j++) {
		rc = enter_elem(r, a, j, &c, &m2);
		if (rc == 0)
			rc = get_str(r, c, "name", RD_NONEMPTY, &t->columns[j].name);
		if (rc)
			return rc;
		m3 = rd_key(r, "kind");
		rc = cur_str(r, json_object_get(c, "kind"), 0, &s);
		if (rc)
			return rc;
		if (tsv_col_kind_parse(s, &t->columns[j].kind) != 0)
			return rd_fail(r, "unknown column kind '%s' (raw|bit|ascii|generated)",
				       qv(s, qb));
		rd_pop(r, m3);
		rd_pop(r, m2);
	}
	rd_pop(r, mark);
	return 0;
}

/* tables[ti].files: paths of the table's data files, each one an entry of
 * "files" that names this table, each listed once. */
static int rd_table_files(struct rd *r, json_t *o, struct manifest *m,
			  size_t ti)
{
	struct manifest_table *t = &m->tables[ti];
	json_t *a;
	size_t mark, m2;
	uint64_t rows = 0;
	char qb[QBUF];
	int rc = get_arr(r, o, "files", &a);

	if (rc)
		return rc;
	mark = rd_key(r, "files");
	t->n_files = t->cap_files = json_array_size(a);
	t->files = xcalloc(t->n_files ? t->n_files : 1, sizeof(*t->files));
	for (size_t j = 0; j < t->n_files; j++) {
		struct path_ent key, *hit;
		const char *s;
		json_t *v = json_array_get(a, j);

		m2 = rd_idx(r, j);
		rc = cur_str(r, v, 0, &s);
		if (rc == 0)
			rc = rd_path(r, s, json_string_length(v));
		if (rc)
			return rc;
		key.path = s;
		hit = bsearch(&key, r->paths, m->n_files, sizeof(*r->paths),
			      path_ent_cmp);
		if (!hit)
			return rd_fail(r, "path '%s' is not in 'files'", qv(s, qb));
		if (m->files[hit->idx].kind != MANIFEST_FILE_DATA)
			return rd_fail(r, "'%s' is not a data file (see 'files[%zu]')",
				       qv(s, qb), hit->idx);
		if (m->files[hit->idx].table != (int64_t)ti)
			return rd_fail(r, "'%s' belongs to table %" PRId64 " (see 'files[%zu]')",
				       qv(s, qb), m->files[hit->idx].table, hit->idx);
		if (r->listed[hit->idx])
			return rd_fail(r, "'%s' is listed twice", qv(s, qb));
		r->listed[hit->idx] = true;
		t->files[j] = hit->idx;
		/* Cannot overflow: bounded by the checked sum over all files. */
		rows += m->files[hit->idx].rows;
		rd_pop(r, m2);
	}
	rd_pop(r, mark);
	if (t->n_files > 0 && t->n_columns == 0)
		return rd_fail(r, "a table with data files needs its columns");
	if (rows != t->rows) {
		rd_key(r, "rows");
		return rd_fail(r, "%" PRIu64 " does not match the sum of its files' rows (%" PRIu64 ")",
			       t->rows, rows);
	}
	return 0;
}

static int rd_tables(struct rd *r, json_t *a, struct manifest *m)
{
	json_t *o;
	size_t mark = rd_key(r, "tables"), m2;
	const char *s;
	int rc;

	for (size_t i = 0; i < m->n_tables; i++) {
		struct manifest_table *t = &m->tables[i];
		rc = enter_elem(r, a, i, &o, &m2);
		if (rc == 0)
			rc = get_str(r, o, "schema", RD_NONEMPTY, &t->schema);
		if (rc == 0)
			rc = get_str(r, o, "name", RD_NONEMPTY, &t->name);
		if (rc == 0)
			rc = get_str(r, o, "engine", RD_NONEMPTY, &t->engine);
		if (rc == 0)
			rc = get_str(r, o, "create_sql", RD_NONEMPTY, &t->create_sql);
		if (rc == 0)
			rc = get_uint(r, o, "rows", &t->rows);
		if (rc == 0)
			rc = get_checksum(r, o, "checksum", RD_NULL_OK, &s);
		if (rc)
			return rc;
		manifest_set_str(&t->checksum, s);
		rc = rd_columns(r, o, t);
		if (rc == 0)
			rc = rd_table_files(r, o, m, i);
		if (rc)
			return rc;
		rd_pop(r, m2);
	}
	rd_pop(r, mark);

	/* Every data file belongs to the list of its table, or a restore
	 * that walks the tables would silently skip it. */
	for (size_t i = 0; i < m->n_files; i++) {
		if (m->files[i].kind == MANIFEST_FILE_DATA && !r->listed[i]) {
			char qb[QBUF];
			rd_key(r, "files");
			rd_idx(r, i);
			return rd_fail(r, "data file '%s' is missing from 'tables[%" PRId64 "].files'",
				       qv(m->files[i].path, qb), m->files[i].table);
		}
	}
	return 0;
}

static int rd_views(struct rd *r, json_t *root, struct manifest *m)
{
	json_t *a, *o;
	size_t mark, m2;
	int rc = get_arr(r, root, "views", &a);

	if (rc)
		return rc;
	mark = rd_key(r, "views");
	m->n_views = m->cap_views = json_array_size(a);
	m->views = xcalloc(m->n_views ? m->n_views : 1, sizeof(*m->views));
	for (size_t i = 0; i < m->n_views; i++) {
		struct manifest_view *v = &m->views[i];
		rc = enter_elem(r, a, i, &o, &m2);
		if (rc == 0)
			rc = get_str(r, o, "schema", RD_NONEMPTY, &v->schema);
		if (rc == 0)
			rc = get_str(r, o, "name", RD_NONEMPTY, &v->name);
		if (rc == 0)
			rc = get_str(r, o, "create_sql", RD_NONEMPTY, &v->create_sql);
		if (rc)
			return rc;
		rd_pop(r, m2);
	}
	rd_pop(r, mark);
	return 0;
}

static int rd_triggers(struct rd *r, json_t *root, struct manifest *m)
{
	json_t *a, *o;
	size_t mark, m2;
	int rc = get_arr(r, root, "triggers", &a);

	if (rc)
		return rc;
	mark = rd_key(r, "triggers");
	m->n_triggers = m->cap_triggers = json_array_size(a);
	m->triggers = xcalloc(m->n_triggers ? m->n_triggers : 1,
			      sizeof(*m->triggers));
	for (size_t i = 0; i < m->n_triggers; i++) {
		struct manifest_trigger *t = &m->triggers[i];
		rc = enter_elem(r, a, i, &o, &m2);
		if (rc == 0)
			rc = get_str(r, o, "schema", RD_NONEMPTY, &t->schema);
		if (rc == 0)
			rc = get_str(r, o, "name", RD_NONEMPTY, &t->name);
		if (rc == 0)
			rc = get_str(r, o, "table", RD_NONEMPTY, &t->table);
		if (rc == 0)
			rc = get_str(r, o, "create_sql", RD_NONEMPTY, &t->create_sql);
		if (rc == 0)
			rc = get_env(r, o, &t->env);
		if (rc)
			return rc;
		rd_pop(r, m2);
	}
	rd_pop(r, mark);
	return 0;
}

static int rd_routines(struct rd *r, json_t *root, struct manifest *m)
{
	json_t *a, *o;
	size_t mark, m2, m3;
	const char *s;
	char qb[QBUF];
	int rc = get_arr(r, root, "routines", &a);

	if (rc)
		return rc;
	mark = rd_key(r, "routines");
	m->n_routines = m->cap_routines = json_array_size(a);
	m->routines = xcalloc(m->n_routines ? m->n_routines : 1,
			      sizeof(*m->routines));
	for (size_t i = 0; i < m->n_routines; i++) {
		struct manifest_routine *t = &m->routines[i];
		rc = enter_elem(r, a, i, &o, &m2);
		if (rc == 0)
			rc = get_str(r, o, "schema", RD_NONEMPTY, &t->schema);
		if (rc == 0)
			rc = get_str(r, o, "name", RD_NONEMPTY, &t->name);
		if (rc)
			return rc;
		m3 = rd_key(r, "type");
		rc = cur_str(r, json_object_get(o, "type"), 0, &s);
		if (rc)
			return rc;
		if (!is_routine_type(s))
			return rd_fail(r, "unknown routine type '%s'", qv(s, qb));
		manifest_set_str(&t->type, s);
		rd_pop(r, m3);
		rc = get_str(r, o, "create_sql", RD_NONEMPTY, &t->create_sql);
		if (rc == 0)
			rc = get_env(r, o, &t->env);
		if (rc)
			return rc;
		rd_pop(r, m2);
	}
	rd_pop(r, mark);
	return 0;
}

static int rd_events(struct rd *r, json_t *root, struct manifest *m)
{
	json_t *a, *o;
	size_t mark, m2;
	int rc = get_arr(r, root, "events", &a);

	if (rc)
		return rc;
	mark = rd_key(r, "events");
	m->n_events = m->cap_events = json_array_size(a);
	m->events = xcalloc(m->n_events ? m->n_events : 1, sizeof(*m->events));
	for (size_t i = 0; i < m->n_events; i++) {
		struct manifest_event *v = &m->events[i];
		rc = enter_elem(r, a, i, &o, &m2);
		if (rc == 0)
			rc = get_str(r, o, "schema", RD_NONEMPTY, &v->schema);
		if (rc == 0)
			rc = get_str(r, o, "name", RD_NONEMPTY, &v->name);
		if (rc == 0)
			rc = get_str(r, o, "create_sql", RD_NONEMPTY, &v->create_sql);
		if (rc == 0)
			rc = get_env(r, o, &v->env);
		if (rc == 0)
			rc = get_str(r, o, "time_zone", RD_NONEMPTY, &v->time_zone);
		if (rc)
			return rc;
		rd_pop(r, m2);
	}
	rd_pop(r, mark);
	return 0;
}

/* An array of strings into *v (n entries). */
static int rd_str_list(struct rd *r, json_t *obj, const char *key,
		       unsigned flags, char ***v, size_t *n, size_t *cap)
{
	json_t *a;
	size_t mark, m2;
	const char *s;
	int rc = get_arr(r, obj, key, &a);

	if (rc)
		return rc;
	mark = rd_key(r, key);
	*n = json_array_size(a);
	if (cap)
		*cap = *n;
	*v = xcalloc(*n ? *n : 1, sizeof(char *));
	for (size_t j = 0; j < *n; j++) {
		m2 = rd_idx(r, j);
		rc = cur_str(r, json_array_get(a, j), flags, &s);
		if (rc)
			return rc;
		(*v)[j] = xstrdup(s);
		rd_pop(r, m2);
	}
	rd_pop(r, mark);
	return 0;
}

static int rd_users(struct rd *r, json_t *root, struct manifest *m)
{
	json_t *a, *o;
	size_t mark, m2;
	int rc = get_arr(r, root, "users", &a);

	if (rc)
		return rc;
	mark = rd_key(r, "users");
	m->n_users = m->cap_users = json_array_size(a);
	m->users = xcalloc(m->n_users ? m->n_users : 1, sizeof(*m->users));
	for (size_t i = 0; i < m->n_users; i++) {
		struct manifest_user *u = &m->users[i];
		rc = enter_elem(r, a, i, &o, &m2);
		/* MySQL accounts may have an empty user or host part. */
		if (rc == 0)
			rc = get_str(r, o, "user", 0, &u->user);
		if (rc == 0)
			rc = get_str(r, o, "host", 0, &u->host);
		if (rc == 0)
			rc = get_str(r, o, "create_sql", RD_NONEMPTY, &u->create_sql);
		if (rc == 0)
			rc = rd_str_list(r, o, "grants", RD_NONEMPTY, &u->grants,
					 &u->n_grants, NULL);
		if (rc)
			return rc;
		rd_pop(r, m2);
	}
	rd_pop(r, mark);
	return 0;
}

static int rd_totals(struct rd *r, json_t *root, struct manifest *m,
		     const struct manifest_totals *sum)
{
	static const char *const keys[] = { "bytes_raw", "bytes_stored", "files",
					    "tables", "rows" };
	uint64_t *got[] = { &m->totals.bytes_raw, &m->totals.bytes_stored,
			    &m->totals.files, &m->totals.tables, &m->totals.rows };
	const uint64_t want[] = { sum->bytes_raw, sum->bytes_stored, sum->files,
				  (uint64_t)m->n_tables, sum->rows };
	json_t *o;
	size_t mark;
	int rc = get_obj(r, root, "totals", &o);

	if (rc)
		return rc;
	mark = rd_key(r, "totals");
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		rc = get_uint(r, o, keys[i], got[i]);
		if (rc)
			return rc;
		if (*got[i] != want[i]) {
			rd_key(r, keys[i]);
			return rd_fail(r, "%" PRIu64 " does not match %s (%" PRIu64 ")",
				       *got[i],
				       strcmp(keys[i], "tables") == 0 ? "the number of tables"
				       : strcmp(keys[i], "files") == 0 ? "the number of files"
				       : "the sum over 'files'",
				       want[i]);
		}
	}
	rd_pop(r, mark);
	return 0;
}

/* The whole reader; *out is set only on success. */
static int manifest_from_json(json_t *root, struct manifest **out,
			      struct err *e)
{
	struct manifest *m = manifest_new();
	struct manifest_totals sum;
	struct rd r;
	json_t *tables;
	int rc;

	memset(&r, 0, sizeof(r));
	memset(&sum, 0, sizeof(sum));
	r.e = e;
	if (!json_is_object(root)) {
		rc = rd_fail(&r, "expected a JSON object, got %s", jtype_name(root));
		goto out;
	}
	rc = rd_header(&r, root, m);
	if (rc == 0)
		rc = rd_source(&r, root, m);
	if (rc == 0)
		rc = rd_position(&r, root, m);
	if (rc == 0)
		rc = get_time(&r, root, "started_at", &m->started_at);
	if (rc == 0)
		rc = get_time(&r, root, "finished_at", &m->finished_at);
	if (rc == 0)
		rc = rd_settings(&r, root, m);
	if (rc == 0)
		rc = rd_databases(&r, root, m);
	/* Files are read before the tables that list them, which needs the
	 * number of tables first. */
	if (rc == 0)
		rc = get_arr(&r, root, "tables", &tables);
	if (rc)
		goto out;
	m->n_tables = m->cap_tables = json_array_size(tables);
	m->tables = xcalloc(m->n_tables ? m->n_tables : 1, sizeof(*m->tables));
	rc = rd_files(&r, root, m, &sum);
	if (rc == 0) {
		r.listed = xcalloc(m->n_files ? m->n_files : 1, sizeof(bool));
		rc = rd_tables(&r, tables, m);
	}
	if (rc == 0)
		rc = rd_views(&r, root, m);
	if (rc == 0)
		rc = rd_triggers(&r, root, m);
	if (rc == 0)
		rc = rd_routines(&r, root, m);
	if (rc == 0)
		rc = rd_events(&r, root, m);
	if (rc == 0)
		rc = rd_users(&r, root, m);
	if (rc == 0)
		rc = rd_str_list(&r, root, "warnings", 0, &m->warnings,
				 &m->n_warnings, &m->cap_warnings);
	if (rc == 0)
		rc = rd_totals(&r, root, m, &sum);
out:
	free(r.paths);
	free(r.listed);
	if (rc) {
		manifest_free(m);
		return rc;
	}
	*out = m;
	return 0;
}

/* ------------------------------------------------------------------ */
/* public entry points                                                  */

int manifest_parse(const char *json, size_t n, struct manifest **out,
		   struct err *e)
{
	json_error_t jerr;
	json_t *root;
	char qb[sizeof(jerr.text) + 8];
	int rc;

	*out = NULL;
	if (n > MANIFEST_MAX_BYTES)
		return err_set(e, ERR_CORRUPT,
			       "manifest: %zu bytes exceed the limit of %u", n,
			       MANIFEST_MAX_BYTES);
	root = json_loadb(json, n, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		/* Jansson's text may quote input: keep it to one clean line. */
		size_t k = 0;
		for (const char *p = jerr.text; *p && k + 1 < sizeof(qb); p++)
			qb[k++] = ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
					  ? '?' : *p;
		qb[k] = '\0';
		return err_set(e, ERR_CORRUPT,
			       "manifest: invalid JSON at line %d, column %d: %s",
			       jerr.line, jerr.column, qb);
	}
	rc = manifest_from_json(root, out, e);
	json_decref(root);
	return rc;
}

int manifest_to_json(const struct manifest *m, char **out, size_t *n,
		     struct err *e)
{
	struct bld b;
	struct manifest *check = NULL;
	struct err verr;
	json_t *root;
	size_t len;
	char *text;
	int rc;

	*out = NULL;
	*n = 0;
	memset(&b, 0, sizeof(b));
	root = b_manifest(m, &b);
	if (b.bad[0]) {
		json_decref(root);
		return err_set(e, ERR_INTERNAL,
			       "refusing to write an invalid manifest: '%s' is not valid UTF-8",
			       b.bad);
	}
	/* The reader is the one definition of a valid manifest. */
	err_init(&verr);
	rc = manifest_from_json(root, &check, &verr);
	manifest_free(check);
	if (rc) {
		json_decref(root);
		return err_set(e, ERR_INTERNAL,
			       "refusing to write an invalid manifest: %s", verr.msg);
	}
	len = json_dumpb(root, NULL, 0, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	if (len == 0 || len + 1 > MANIFEST_MAX_BYTES) {
		json_decref(root);
		return err_set(e, ERR_INTERNAL,
			       "manifest of %zu bytes exceeds the limit of %u",
			       len, MANIFEST_MAX_BYTES);
	}
	text = xmalloc(len + 2);
	if (json_dumpb(root, text, len, JSON_INDENT(2) | JSON_PRESERVE_ORDER) != len) {
		free(text);
		json_decref(root);
		return err_set(e, ERR_INTERNAL, "unable to format the manifest");
	}
	json_decref(root);
	text[len] = '\n';
	text[len + 1] = '\0';
	*out = text;
	*n = len + 1;
	return 0;
}
