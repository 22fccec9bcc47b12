/* Snapshot discovery: which databases, tables, columns and keys to dump, and
 * the DDL of every object (databases, tables, views, triggers, routines,
 * events, optionally users), captured on the control connection while the
 * source is frozen so the DDL matches the recorded position. Also splits big
 * tables into primary-key ranges. Runs on the snapshot's control thread. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "mem.h"
#include "snapshot_int.h"

#define MOD "snapshot"

void snap_warn(struct snap_ctx *x, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_warn(MOD, "%s", msg);
	x->warnings = xrealloc(x->warnings, (x->n_warnings + 1) * sizeof(char *));
	x->warnings[x->n_warnings++] = xstrdup(msg);
}

void snap_objs_free(struct snap_objs *o)
{
	for (size_t i = 0; i < o->n; i++) {
		struct snap_obj *s = &o->items[i];
		free(s->schema); free(s->name); free(s->extra); free(s->create_sql);
		free(s->sql_mode); free(s->time_zone); free(s->cs_client);
		free(s->coll_conn); free(s->db_coll);
	}
	free(o->items);
	memset(o, 0, sizeof(*o));
}

static struct snap_obj *snap_objs_add(struct snap_objs *o)
{
	if (o->n == o->cap) {
		o->cap = o->cap ? o->cap * 2 : 16;
		o->items = xrealloc(o->items, o->cap * sizeof(*o->items));
	}
	memset(&o->items[o->n], 0, sizeof(o->items[0]));
	return &o->items[o->n++];
}

/* Index of a result column by name (case-insensitive), -1 when absent. */
static int res_col(MYSQL_RES *res, const char *name)
{
	unsigned n = mysql_num_fields(res);
	MYSQL_FIELD *f = mysql_fetch_fields(res);
	for (unsigned i = 0; i < n; i++)
		if (strcasecmp(f[i].name, name) == 0)
			return (int)i;
	return -1;
}

/* Frees a result of the control connection and drains what is pending. */
static void snap_res_free(struct snap_ctx *x, MYSQL_RES **res)
{
	if (*res) {
		mysql_free_result(*res);
		db_finish(x->ctl, NULL);
		*res = NULL;
	}
}

static char *row_dup(MYSQL_ROW row, int i)
{
	return i >= 0 && row[i] ? xstrdup(row[i]) : NULL;
}

/* Runs "SHOW CREATE <kind> <quoted name>" and fills o from its columns.
 * create_col is the column holding the DDL ("Create Table", ...). */
static int snap_show_create(struct snap_ctx *x, const char *kind,
			    const char *schema, const char *name,
			    const char *create_col, struct snap_obj *o,
			    struct err *e)
{
	struct buf q;
	MYSQL_RES *res = NULL;
	MYSQL_ROW row;
	int rc;

	buf_init(&q, 0);
	rc = buf_printf(&q, e, "SHOW CREATE %s ", kind);
	if (rc == 0 && schema)
		rc = db_quote_table(&q, schema, name, e);
	else if (rc == 0)
		rc = db_quote_ident(&q, name, e);
	if (rc == 0)
		rc = db_query_result(x->ctl, q.data, false, &res, e);
	if (rc == 0)
		rc = db_fetch_row(x->ctl, res, &row, NULL, e);
	if (rc == 0 && !row)
		rc = err_set(e, ERR_DB_QUERY, "'%s' returned no row", q.data);
	if (rc == 0) {
		int ci = res_col(res, create_col);
		if (ci < 0 || !row[ci])
			rc = err_set(e, ERR_DB_QUERY,
				     "'%s' gave no DDL (does the backup user have the privileges in sql/mysql/grants.sql?)",
				     q.data);
		else {
			o->create_sql = xstrdup(row[ci]);
			o->sql_mode = row_dup(row, res_col(res, "sql_mode"));
			o->time_zone = row_dup(row, res_col(res, "time_zone"));
			o->cs_client = row_dup(row, res_col(res, "character_set_client"));
			o->coll_conn = row_dup(row, res_col(res, "collation_connection"));
			o->db_coll = row_dup(row, res_col(res, "Database Collation"));
		}
	}
	snap_res_free(x, &res);
	buf_release(&q);
	return rc;
}

/* Runs a query with one string parameter substituted (quoted) for each
 * '?' in fmt; hands the stored result to the caller. */
static int snap_query(struct snap_ctx *x, const char *fmt, const char *p1,
		      const char *p2, MYSQL_RES **res, struct err *e)
{
	struct buf q;
	int rc = 0, nparam = 0;

	buf_init(&q, 0);
	for (const char *c = fmt; *c && rc == 0; c++) {
		if (*c != '?') {
			rc = buf_append_char(&q, *c, e);
			continue;
		}
		const char *p = nparam++ == 0 ? p1 : p2;
		rc = db_quote_string(x->ctl, &q, p, strlen(p), e);
	}
	if (rc == 0)
		rc = db_query_result(x->ctl, q.data, false, res, e);
	buf_release(&q);
	return rc;
}

static bool snap_engine_transactional(const char *engine)
{
	static const char *const tx[] = { "InnoDB", "RocksDB", "TokuDB", "XtraDB" };
	if (!engine)
		return false;
	for (size_t i = 0; i < sizeof(tx) / sizeof(tx[0]); i++)
		if (strcasecmp(engine, tx[i]) == 0)
			return true;
	return false;
}

static bool snap_system_schema(const char *s)
{
	return strcasecmp(s, "mysql") == 0 ||
	       strcasecmp(s, "information_schema") == 0 ||
	       strcasecmp(s, "performance_schema") == 0 ||
	       strcasecmp(s, "sys") == 0;
}

static int snap_list_databases(struct snap_ctx *x, char ***names, size_t *n,
			       struct err *e)
{
	MYSQL_RES *res = NULL;
	MYSQL_ROW row;
	int rc;

	*names = NULL;
	*n = 0;
	rc = db_query_result(x->ctl,
			     "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA ORDER BY SCHEMA_NAME",
			     false, &res, e);
	while (rc == 0 && (rc = db_fetch_row(x->ctl, res, &row, NULL, e)) == 0 && row) {
		bool want;
		if (x->cl->n_databases == 0) {
			want = !snap_system_schema(row[0]);
		} else {
			want = false;
			for (size_t i = 0; i < x->cl->n_databases; i++)
				if (strcmp(x->cl->databases[i], row[0]) == 0)
					want = true;
		}
		if (want) {
			*names = xrealloc(*names, (*n + 1) * sizeof(char *));
			(*names)[(*n)++] = xstrdup(row[0]);
		}
	}
	snap_res_free(x, &res);
	for (size_t i = 0; rc == 0 && i < x->cl->n_databases; i++) {
		bool found = false;
		for (size_t j = 0; j < *n; j++)
			if (strcmp((*names)[j], x->cl->databases[i]) == 0)
				found = true;
		if (!found)
			rc = err_set(e, ERR_NOT_FOUND,
				     "database '%s' named in 'databases' of cluster '%s' does not exist on '%s'",
				     x->cl->databases[i], x->cl->name, x->source);
	}
	return rc;
}

static bool snap_int_type(const char *t)
{
	return strcasecmp(t, "tinyint") == 0 || strcasecmp(t, "smallint") == 0 ||
	       strcasecmp(t, "mediumint") == 0 || strcasecmp(t, "int") == 0 ||
	       strcasecmp(t, "bigint") == 0;
}

static struct snap_table *snap_find_table(struct snap_ctx *x, size_t from,
					  const char *name)
{
	for (size_t i = from; i < x->n_tables; i++)
		if (strcmp(x->tables[i].name, name) == 0)
			return &x->tables[i];
	return NULL;
}

static int snap_discover_schema(struct snap_ctx *x, const char *schema,
				struct err *e)
{
	MYSQL_RES *res = NULL;
	MYSQL_ROW row;
	size_t first = x->n_tables;
	int rc;
	struct snap_obj *db = snap_objs_add(&x->databases);

	db->name = xstrdup(schema);
	rc = snap_show_create(x, "DATABASE", NULL, schema, "Create Database", db, e);

	/* Tables, views and sequences. */
	if (rc == 0)
		rc = snap_query(x,
				"SELECT TABLE_NAME, TABLE_TYPE, ENGINE, TABLE_ROWS FROM information_schema.TABLES "
				"WHERE TABLE_SCHEMA = ? ORDER BY TABLE_NAME",
				schema, NULL, &res, e);
	while (rc == 0 && (rc = db_fetch_row(x->ctl, res, &row, NULL, e)) == 0 && row) {
		if (strcmp(row[1], "VIEW") == 0) {
			struct snap_obj *v = snap_objs_add(&x->views);
			v->schema = xstrdup(schema);
			v->name = xstrdup(row[0]);
			continue;
		}
		x->tables = xrealloc(x->tables, (x->n_tables + 1) * sizeof(*x->tables));
		struct snap_table *t = &x->tables[x->n_tables++];
		memset(t, 0, sizeof(*t));
		t->schema = xstrdup(schema);
		t->name = xstrdup(row[0]);
		t->engine = xstrdup(row[2] ? row[2] : "unknown");
		t->transactional = snap_engine_transactional(row[2]);
		t->is_sequence = strcmp(row[1], "SEQUENCE") == 0;
		t->est_rows = row[3] ? strtoull(row[3], NULL, 10) : 0;
		if (strcmp(row[1], "SYSTEM VERSIONED") == 0)
			snap_warn(x, "table `%s`.`%s` is system-versioned: only its current rows are saved",
				  schema, row[0]);
	}
	snap_res_free(x, &res);

	/* Columns of every table of the schema, in order. */
	if (rc == 0)
		rc = snap_query(x,
				"SELECT TABLE_NAME, COLUMN_NAME, DATA_TYPE, EXTRA FROM information_schema.COLUMNS "
				"WHERE TABLE_SCHEMA = ? ORDER BY TABLE_NAME, ORDINAL_POSITION",
				schema, NULL, &res, e);
	while (rc == 0 && (rc = db_fetch_row(x->ctl, res, &row, NULL, e)) == 0 && row) {
		struct snap_table *t = snap_find_table(x, first, row[0]);
		if (!t)
			continue; /* a view's columns */
		t->cols = xrealloc(t->cols, (t->n_cols + 1) * sizeof(*t->cols));
		t->cols[t->n_cols].name = xstrdup(row[1]);
		t->cols[t->n_cols].kind = tsv_col_kind_of(row[2], row[3]);
		t->n_cols++;
	}
	snap_res_free(x, &res);

	/* Primary keys: a single integer column lets us split into ranges. */
	if (rc == 0)
		rc = snap_query(x,
				"SELECT k.TABLE_NAME, MIN(k.COLUMN_NAME), MIN(c.DATA_TYPE), COUNT(*) "
				"FROM information_schema.KEY_COLUMN_USAGE k JOIN information_schema.COLUMNS c "
				"ON c.TABLE_SCHEMA = k.TABLE_SCHEMA AND c.TABLE_NAME = k.TABLE_NAME AND c.COLUMN_NAME = k.COLUMN_NAME "
				"WHERE k.TABLE_SCHEMA = ? AND k.CONSTRAINT_NAME = 'PRIMARY' GROUP BY k.TABLE_NAME",
				schema, NULL, &res, e);
	while (rc == 0 && (rc = db_fetch_row(x->ctl, res, &row, NULL, e)) == 0 && row) {
		struct snap_table *t = snap_find_table(x, first, row[0]);
		if (t && strcmp(row[3], "1") == 0 && snap_int_type(row[2]))
			t->pk_col = xstrdup(row[1]);
	}
	snap_res_free(x, &res);

	for (size_t i = first; rc == 0 && i < x->n_tables; i++) {
		struct snap_table *t = &x->tables[i];
		struct snap_obj tmp = { 0 };
		rc = snap_show_create(x, t->is_sequence ? "SEQUENCE" : "TABLE",
				      schema, t->name,
				      "Create Table",
				      &tmp, e);
		t->create_sql = tmp.create_sql;
		tmp.create_sql = NULL;
		free(tmp.sql_mode); free(tmp.cs_client); free(tmp.coll_conn);
		free(tmp.db_coll); free(tmp.time_zone);
		if (rc == 0 && t->is_sequence)
			snap_warn(x, "sequence `%s`.`%s`: its definition is saved, its current value is not",
				  schema, t->name);
		if (rc == 0 && !t->transactional && !t->is_sequence)
			snap_warn(x, "table `%s`.`%s` uses %s (not transactional): dumped while the source was frozen",
				  schema, t->name, t->engine);
	}

	/* Views (DDL only; created after every table on restore). */
	for (size_t i = 0; rc == 0 && i < x->views.n; i++) {
		struct snap_obj *v = &x->views.items[i];
		if (strcmp(v->schema, schema) == 0 && !v->create_sql)
			rc = snap_show_create(x, "VIEW", schema, v->name, "Create View", v, e);
	}

	/* Triggers. */
	if (rc == 0)
		rc = snap_query(x,
				"SELECT TRIGGER_NAME, EVENT_OBJECT_TABLE FROM information_schema.TRIGGERS "
				"WHERE TRIGGER_SCHEMA = ? ORDER BY EVENT_OBJECT_TABLE, ACTION_ORDER",
				schema, NULL, &res, e);
	size_t tfirst = x->triggers.n;
	while (rc == 0 && (rc = db_fetch_row(x->ctl, res, &row, NULL, e)) == 0 && row) {
		struct snap_obj *t = snap_objs_add(&x->triggers);
		t->schema = xstrdup(schema);
		t->name = xstrdup(row[0]);
		t->extra = xstrdup(row[1]);
	}
	snap_res_free(x, &res);
	for (size_t i = tfirst; rc == 0 && i < x->triggers.n; i++)
		rc = snap_show_create(x, "TRIGGER", schema, x->triggers.items[i].name,
				      "SQL Original Statement", &x->triggers.items[i], e);

	/* Routines. */
	if (rc == 0)
		rc = snap_query(x,
				"SELECT ROUTINE_NAME, ROUTINE_TYPE FROM information_schema.ROUTINES "
				"WHERE ROUTINE_SCHEMA = ? AND ROUTINE_TYPE IN ('PROCEDURE','FUNCTION') ORDER BY ROUTINE_TYPE, ROUTINE_NAME",
				schema, NULL, &res, e);
	size_t rfirst = x->routines.n;
	while (rc == 0 && (rc = db_fetch_row(x->ctl, res, &row, NULL, e)) == 0 && row) {
		struct snap_obj *r = snap_objs_add(&x->routines);
		r->schema = xstrdup(schema);
		r->name = xstrdup(row[0]);
		r->extra = xstrdup(row[1]);
	}
	snap_res_free(x, &res);
	for (size_t i = rfirst; rc == 0 && i < x->routines.n; i++) {
		struct snap_obj *r = &x->routines.items[i];
		bool proc = strcmp(r->extra, "PROCEDURE") == 0;
		rc = snap_show_create(x, proc ? "PROCEDURE" : "FUNCTION", schema, r->name,
				      proc ? "Create Procedure" : "Create Function", r, e);
	}

	/* Events. */
	if (rc == 0)
		rc = snap_query(x,
				"SELECT EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ? ORDER BY EVENT_NAME",
				schema, NULL, &res, e);
	size_t efirst = x->events.n;
	while (rc == 0 && (rc = db_fetch_row(x->ctl, res, &row, NULL, e)) == 0 && row) {
		struct snap_obj *ev = snap_objs_add(&x->events);
		ev->schema = xstrdup(schema);
		ev->name = xstrdup(row[0]);
	}
	snap_res_free(x, &res);
	for (size_t i = efirst; rc == 0 && i < x->events.n; i++)
		rc = snap_show_create(x, "EVENT", schema, x->events.items[i].name,
				      "Create Event", &x->events.items[i], e);
	if (rc)
		err_prefix(e, "reading the schema of '%s': ", schema);
	return rc;
}

static int snap_discover_users(struct snap_ctx *x, struct err *e)
{
	MYSQL_RES *res = NULL;
	MYSQL_ROW row;
	int rc;

	rc = db_query_result(x->ctl,
			     "SELECT User, Host FROM mysql.user WHERE User NOT IN ('', 'root', 'mariadb.sys', 'mysql', 'PUBLIC') "
			     "AND is_role = 'N' ORDER BY User, Host",
			     false, &res, e);
	while (rc == 0 && (rc = db_fetch_row(x->ctl, res, &row, NULL, e)) == 0 && row) {
		x->users = xrealloc(x->users, (x->n_users + 1) * sizeof(*x->users));
		struct snap_user *u = &x->users[x->n_users++];
		memset(u, 0, sizeof(*u));
		u->user = xstrdup(row[0]);
		u->host = xstrdup(row[1]);
	}
	snap_res_free(x, &res);
	for (size_t i = 0; rc == 0 && i < x->n_users; i++) {
		struct snap_user *u = &x->users[i];
		struct buf acct, q;
		buf_init(&acct, 0);
		buf_init(&q, 0);
		rc = db_quote_string(x->ctl, &acct, u->user, strlen(u->user), e);
		if (rc == 0)
			rc = buf_append_char(&acct, '@', e);
		if (rc == 0)
			rc = db_quote_string(x->ctl, &acct, u->host, strlen(u->host), e);
		if (rc == 0)
			rc = buf_printf(&q, e, "SHOW CREATE USER %s", acct.data);
		if (rc == 0) {
			bool found;
			rc = db_query_value(x->ctl, q.data, &u->create_sql, &found, e);
		}
		buf_reset(&q);
		if (rc == 0)
			rc = buf_printf(&q, e, "SHOW GRANTS FOR %s", acct.data);
		if (rc == 0)
			rc = db_query_result(x->ctl, q.data, false, &res, e);
		while (rc == 0 && (rc = db_fetch_row(x->ctl, res, &row, NULL, e)) == 0 && row) {
			u->grants = xrealloc(u->grants, (u->n_grants + 1) * sizeof(char *));
			u->grants[u->n_grants++] = xstrdup(row[0]);
		}
		if (rc == 0 || res) {
			if (res)
				mysql_free_result(res);
			res = NULL;
			db_finish(x->ctl, NULL);
		}
		buf_release(&acct);
		buf_release(&q);
	}
	return rc;
}

int snap_discover(struct snap_ctx *x, struct err *e)
{
	char **names = NULL;
	size_t n = 0;
	int rc;

	/* DDL text must not depend on the session: no ANSI_QUOTES etc. */
	rc = db_exec(x->ctl, "SET SESSION sql_mode = '', SESSION sql_quote_show_create = 1", e);
	if (rc == 0)
		rc = snap_list_databases(x, &names, &n, e);
	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = snap_discover_schema(x, names[i], e);
	if (rc == 0 && x->cl->include_users)
		rc = snap_discover_users(x, e);
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return rc;
}

/* File names are for humans browsing the repository; the manifest is what
 * maps them to tables, so odd identifiers are reduced to a safe subset. */
static void snap_safe_name(const char *in, char *out, size_t cap)
{
	size_t j = 0;
	for (const unsigned char *p = (const unsigned char *)in; *p && j + 1 < cap && j < 40; p++)
		out[j++] = ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			    (*p >= '0' && *p <= '9') || *p == '_' || *p == '-')
				   ? (char)*p : '_';
	out[j] = '\0';
}

static int snap_table_order(const void *a, const void *b, void *u)
{
	const struct snap_ctx *x = u;
	const struct snap_table *ta = &x->tables[*(const size_t *)a];
	const struct snap_table *tb = &x->tables[*(const size_t *)b];
	/* Frozen-phase tables first, then the biggest first so the last
	 * worker does not finish alone on a huge table. */
	if (ta->transactional != tb->transactional)
		return ta->transactional ? 1 : -1;
	if (ta->est_rows != tb->est_rows)
		return ta->est_rows < tb->est_rows ? 1 : -1;
	return 0;
}

static int snap_add_job(struct snap_ctx *x, size_t ti, unsigned chunk,
			char *where, struct err *e)
{
	struct snap_table *t = &x->tables[ti];
	char s1[48], s2[48];
	struct snap_job *j;

	x->jobs = xrealloc(x->jobs, (x->n_jobs + 1) * sizeof(*x->jobs));
	j = &x->jobs[x->n_jobs++];
	memset(j, 0, sizeof(*j));
	j->table = ti;
	j->chunk = chunk;
	j->where = where;
	snap_safe_name(t->schema, s1, sizeof(s1));
	snap_safe_name(t->name, s2, sizeof(s2));
	snprintf(j->path, sizeof(j->path), "data/%05zu.%s.%s.%04u.tsv.zst",
		 ti, s1, s2, chunk);
	return storage_path_check(j->path, e);
}

static int snap_chunk_table(struct snap_ctx *x, size_t ti, uint64_t chunk_rows,
			    struct err *e)
{
	struct snap_table *t = &x->tables[ti];
	struct buf q, col;
	MYSQL_RES *res = NULL;
	MYSQL_ROW row;
	long long lo = 0, hi = 0;
	bool have = false;
	int rc;

	t->first_job = x->n_jobs;
	if (!t->pk_col || t->est_rows <= chunk_rows || !t->transactional) {
		t->n_jobs = 1;
		return snap_add_job(x, ti, 0, NULL, e);
	}
	buf_init(&q, 0);
	buf_init(&col, 0);
	rc = db_quote_ident(&col, t->pk_col, e);
	if (rc == 0)
		rc = buf_printf(&q, e, "SELECT MIN(%s), MAX(%s) FROM ", col.data, col.data);
	if (rc == 0)
		rc = db_quote_table(&q, t->schema, t->name, e);
	if (rc == 0)
		rc = db_query_result(x->ctl, q.data, false, &res, e);
	if (rc == 0)
		rc = db_fetch_row(x->ctl, res, &row, NULL, e);
	if (rc == 0 && row && row[0] && row[1]) {
		char *end1, *end2;
		lo = strtoll(row[0], &end1, 10);
		hi = strtoll(row[1], &end2, 10);
		have = !*end1 && !*end2 && hi > lo;
	}
	snap_res_free(x, &res);
	unsigned n = 1;
	if (rc == 0 && have) {
		uint64_t want = (t->est_rows + chunk_rows - 1) / chunk_rows;
		n = want > 1024 ? 1024 : (unsigned)want;
		if ((unsigned long long)(hi - lo) < n)
			n = 1;
	}
	t->n_jobs = n;
	/* Open-ended first and last ranges: rows outside the MIN/MAX seen
	 * here (none in a consistent snapshot, but cheap insurance) are still
	 * dumped exactly once. */
	long double step = ((long double)hi - (long double)lo) / n;
	for (unsigned i = 0; rc == 0 && i < n; i++) {
		struct buf w;
		buf_init(&w, 0);
		long long b0 = lo + (long long)(step * i);
		long long b1 = lo + (long long)(step * (i + 1));
		if (n == 1)
			; /* whole table */
		else if (i == 0)
			rc = buf_printf(&w, e, "%s < %lld", col.data, b1);
		else if (i == n - 1)
			rc = buf_printf(&w, e, "%s >= %lld", col.data, b0);
		else
			rc = buf_printf(&w, e, "%s >= %lld AND %s < %lld", col.data, b0,
					col.data, b1);
		if (rc == 0)
			rc = snap_add_job(x, ti, i, n == 1 ? NULL : buf_detach(&w), e);
		buf_release(&w);
	}
	buf_release(&q);
	buf_release(&col);
	return rc;
}

int snap_plan_jobs(struct snap_ctx *x, struct err *e)
{
	uint64_t chunk_rows = x->o->chunk_rows ? x->o->chunk_rows
					       : SNAPSHOT_CHUNK_ROWS_DEFAULT;
	size_t *order = xcalloc(x->n_tables ? x->n_tables : 1, sizeof(size_t));
	int rc = 0;

	for (size_t i = 0; i < x->n_tables; i++)
		order[i] = i;
	qsort_r(order, x->n_tables, sizeof(size_t), snap_table_order, x);
	x->job_limit = 0;
	for (size_t k = 0; rc == 0 && k < x->n_tables; k++) {
		size_t ti = order[k];
		if (x->tables[ti].is_sequence) {
			x->tables[ti].first_job = x->n_jobs;
			x->tables[ti].n_jobs = 0;
			continue;
		}
		rc = snap_chunk_table(x, ti, chunk_rows, e);
		if (!x->tables[ti].transactional)
			x->job_limit = x->n_jobs;
		x->est_rows_total += x->tables[ti].est_rows;
	}
	free(order);
	return rc;
}
