/* The self-contained HTML report (see report_html.h): the catalog loader and
 * the renderer, which draws its charts as inline SVG with every plotted
 * figure also written as data-* attributes and in a table. No external
 * asset and no URL in the page: it must open on an air-gapped laptop.
 * Threading: none; callers own their report_data. */
#include "report_html.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "mem.h"

/* Chart geometry (SVG user units; the SVG scales to the page width). */
#define CH_W 960
#define CH_H 270
#define CH_L 74
#define CH_R 16
#define CH_T 18
#define CH_B 40
#define PLOT_W (CH_W - CH_L - CH_R)
#define PLOT_H (CH_H - CH_T - CH_B)
#define TABLE_ROWS 15

static const char *const palette[] = {
	"#2563eb", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#65a30d",
	"#dc2626", "#0f766e",
};
#define N_PALETTE (sizeof(palette) / sizeof(palette[0]))

/* ---- data lifecycle ------------------------------------------------------ */

void report_data_init(struct report_data *d)
{
	memset(d, 0, sizeof(*d));
}

void report_data_release(struct report_data *d)
{
	if (!d)
		return;
	free(d->catalog);
	for (size_t i = 0; i < d->n_clusters; i++) {
		struct report_cluster *c = &d->clusters[i];

		free(c->name);
		free(c->primary);
		free(c->config_primary);
		for (size_t k = 0; k < c->n_servers; k++) {
			free(c->servers[k].addr);
			free(c->servers[k].role);
			free(c->servers[k].version);
			free(c->servers[k].lag_state);
		}
		free(c->servers);
	}
	free(d->clusters);
	for (size_t i = 0; i < d->n_series; i++) {
		free(d->series[i].cluster);
		free(d->series[i].server);
		free(d->series[i].points);
	}
	free(d->series);
	for (size_t i = 0; i < d->n_days; i++)
		free(d->days_list[i].cluster);
	free(d->days_list);
	for (size_t i = 0; i < d->n_snapshots; i++) {
		free(d->snapshots[i].id);
		free(d->snapshots[i].cluster);
		free(d->snapshots[i].status);
		free(d->snapshots[i].verify_status);
		free(d->snapshots[i].reason);
	}
	free(d->snapshots);
	for (size_t i = 0; i < d->n_drills; i++) {
		free(d->drills[i].cluster);
		free(d->drills[i].snapshot_id);
		free(d->drills[i].target);
		free(d->drills[i].result);
		free(d->drills[i].reason);
	}
	free(d->drills);
	for (size_t i = 0; i < d->n_failures; i++) {
		free(d->failures[i].source);
		free(d->failures[i].kind);
		free(d->failures[i].cluster);
		free(d->failures[i].subject);
		free(d->failures[i].message);
	}
	free(d->failures);
	report_data_init(d);
}

/* Grows *v (elements of size sz) so that index n fits. */
static void *grow(void *v, size_t *cap, size_t n, size_t sz)
{
	if (n < *cap)
		return v;
	*cap = *cap ? *cap * 2 : 16;
	v = xrealloc(v, *cap * sz);
	memset((char *)v + n * sz, 0, (*cap - n) * sz);
	return v;
}

/* ---- lag buckets --------------------------------------------------------- */

static int state_rank(const char *s)
{
	static const char *const order[] = { "ok", "warn", "crit", "broken", "unknown" };

	for (int i = 0; i < 5; i++)
		if (s && strcmp(s, order[i]) == 0)
			return i;
	return 4;
}

static const char *state_of_rank(int r)
{
	static const char *const order[] = { "ok", "warn", "crit", "broken", "unknown" };

	return order[r < 0 ? 0 : r > 4 ? 4 : r];
}

void report_lag_bucket(const struct report_lag_sample *s, size_t n,
		       double since, double until,
		       struct report_lag_point **points, size_t *n_points)
{
	struct acc {
		unsigned n, n_lag;
		double sum, max;
		int worst;
	} *acc;
	double w = (until - since) / REPORT_LAG_BUCKETS;
	size_t k = 0;

	if (w <= 0)
		w = 1;
	acc = xcalloc(REPORT_LAG_BUCKETS, sizeof(*acc));
	for (size_t i = 0; i < n; i++) {
		size_t b;
		struct acc *a;

		if (s[i].ts < since || s[i].ts >= until)
			continue;
		b = (size_t)((s[i].ts - since) / w);
		if (b >= REPORT_LAG_BUCKETS)
			b = REPORT_LAG_BUCKETS - 1;
		a = &acc[b];
		if (a->n == 0)
			a->worst = 0;
		a->n++;
		if (s[i].lag_s >= 0) {
			double mx = s[i].lag_max_s >= 0 ? s[i].lag_max_s : s[i].lag_s;

			a->sum += s[i].lag_s;
			if (a->n_lag == 0 || mx > a->max)
				a->max = mx;
			a->n_lag++;
		}
		if (state_rank(s[i].state) > a->worst)
			a->worst = state_rank(s[i].state);
	}
	*points = xcalloc(REPORT_LAG_BUCKETS, sizeof(**points));
	for (size_t b = 0; b < REPORT_LAG_BUCKETS; b++) {
		struct report_lag_point *p;

		if (acc[b].n == 0)
			continue;
		p = &(*points)[k++];
		p->ts = since + (double)b * w;
		p->have_lag = acc[b].n_lag > 0;
		p->lag_s = p->have_lag ? acc[b].sum / acc[b].n_lag : 0;
		p->lag_max_s = p->have_lag ? acc[b].max : 0;
		str_copy(p->state, sizeof(p->state), state_of_rank(acc[b].worst));
		p->samples = acc[b].n;
	}
	free(acc);
	*n_points = k;
}

/* ---- loading ------------------------------------------------------------- */

static char *col_str(sqlite3_stmt *st, int i)
{
	const unsigned char *s = sqlite3_column_text(st, i);

	return s ? xstrdup((const char *)s) : NULL;
}

static double col_num(sqlite3_stmt *st, int i, double unknown)
{
	return sqlite3_column_type(st, i) == SQLITE_NULL ? unknown
							 : sqlite3_column_double(st, i);
}

static int prepare(struct catalog *cat, const char *sql, sqlite3_stmt **st,
		   struct err *e)
{
	if (sqlite3_prepare_v2(catalog_sqlite(cat), sql, -1, st, NULL) != SQLITE_OK)
		return catalog_error(cat, "unable to read the report's data", e);
	return 0;
}

static void bind_opt_text(sqlite3_stmt *st, int i, const char *s)
{
	if (s)
		sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(st, i);
}

static bool in_scope(const struct report_opts *o, const char *cluster)
{
	return !o->cluster || (cluster && strcmp(o->cluster, cluster) == 0);
}

static void add_server(struct report_cluster *c, size_t *cap, const char *addr,
		       const char *role)
{
	for (size_t i = 0; i < c->n_servers; i++)
		if (strcmp(c->servers[i].addr, addr) == 0)
			return;
	c->servers = grow(c->servers, cap, c->n_servers, sizeof(*c->servers));
	c->servers[c->n_servers].addr = xstrdup(addr);
	c->servers[c->n_servers].role = xstrdup(role);
	c->servers[c->n_servers].lag_s = -1;
	c->n_servers++;
}

static int load_topology(struct catalog *cat, const struct config *cfg,
			 const struct report_opts *o, struct report_data *d,
			 struct err *e)
{
	size_t cap = 0;
	int rc = 0;

	for (size_t i = 0; i < cfg->n_clusters && rc == 0; i++) {
		const struct cfg_cluster *cc = &cfg->clusters[i];
		struct report_cluster *c;
		sqlite3_stmt *st = NULL;
		size_t scap = 0;
		char a[300], *cur = NULL;

		if (!in_scope(o, cc->name))
			continue;
		d->clusters = grow(d->clusters, &cap, d->n_clusters, sizeof(*d->clusters));
		c = &d->clusters[d->n_clusters++];
		c->name = xstrdup(cc->name);
		c->lag_warn_s = cc->lag_warn_s;
		c->lag_crit_s = cc->lag_crit_s;
		c->drill_max_age_h = cc->drill_max_age_h;
		cfg_addr_format(&cc->primary, a, sizeof(a));
		c->config_primary = xstrdup(a);
		if ((rc = catalog_get_primary(cat, cc->name, &cur, e)))
			break;
		c->primary = cur ? cur : xstrdup(a);
		add_server(c, &scap, c->primary, "primary");
		add_server(c, &scap, a, "replica");
		for (size_t k = 0; k < cc->n_replicas; k++) {
			cfg_addr_format(&cc->replicas[k], a, sizeof(a));
			add_server(c, &scap, a, "replica");
		}
		if (cfg_addr_is_set(&cc->drill_target)) {
			cfg_addr_format(&cc->drill_target, a, sizeof(a));
			add_server(c, &scap, a, "drill target");
		}
		if ((rc = prepare(cat, "SELECT address, version FROM servers WHERE cluster = ?1",
				  &st, e)))
			break;
		sqlite3_bind_text(st, 1, cc->name, -1, SQLITE_TRANSIENT);
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			const char *addr = (const char *)sqlite3_column_text(st, 0);

			for (size_t k = 0; addr && k < c->n_servers; k++)
				if (strcmp(c->servers[k].addr, addr) == 0 && !c->servers[k].version)
					c->servers[k].version = col_str(st, 1);
		}
		sqlite3_finalize(st);
		if (rc != SQLITE_DONE) {
			rc = catalog_error(cat, "unable to read servers", e);
			break;
		}
		if ((rc = prepare(cat, "SELECT server, state, lag_s, updated_at FROM lag_state "
				  "WHERE cluster = ?1", &st, e)))
			break;
		sqlite3_bind_text(st, 1, cc->name, -1, SQLITE_TRANSIENT);
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			const char *addr = (const char *)sqlite3_column_text(st, 0);

			for (size_t k = 0; addr && k < c->n_servers; k++)
				if (strcmp(c->servers[k].addr, addr) == 0) {
					free(c->servers[k].lag_state);
					c->servers[k].lag_state = col_str(st, 1);
					c->servers[k].lag_s = col_num(st, 2, -1);
					c->servers[k].lag_updated_at = col_num(st, 3, 0);
				}
		}
		sqlite3_finalize(st);
		rc = rc == SQLITE_DONE ? 0 : catalog_error(cat, "unable to read lag_state", e);
	}
	return rc;
}

static int load_lag(struct catalog *cat, const struct report_opts *o,
		    struct report_data *d, struct err *e)
{
	sqlite3_stmt *st = NULL;
	struct report_lag_sample *s = NULL;
	size_t n = 0, cap = 0, scap = 0;
	char *cl = NULL, *srv = NULL;
	int rc;

	if ((rc = prepare(cat, "SELECT cluster, server, ts, lag_s, lag_max_s, state "
			  "FROM lag_samples WHERE ts >= ?1 AND ts < ?2 "
			  "AND (?3 IS NULL OR cluster = ?3) "
			  "ORDER BY cluster, server, ts", &st, e)))
		return rc;
	sqlite3_bind_double(st, 1, d->lag_since);
	sqlite3_bind_double(st, 2, d->generated_at + 1);
	bind_opt_text(st, 3, o->cluster);
	for (;;) {
		const char *rcl, *rsrv;
		bool row, flush;

		rc = sqlite3_step(st);
		row = rc == SQLITE_ROW;
		rcl = row ? (const char *)sqlite3_column_text(st, 0) : NULL;
		rsrv = row ? (const char *)sqlite3_column_text(st, 1) : NULL;
		flush = cl && (!row || !rcl || !rsrv || strcmp(rcl, cl) != 0 ||
			       strcmp(rsrv, srv) != 0);
		if (flush) {
			struct report_lag_series *ser;

			d->series = grow(d->series, &scap, d->n_series, sizeof(*d->series));
			ser = &d->series[d->n_series++];
			ser->cluster = cl;
			ser->server = srv;
			report_lag_bucket(s, n, d->lag_since, d->generated_at + 1,
					  &ser->points, &ser->n_points);
			for (size_t i = 0; i < n; i++)
				free((char *)s[i].state);
			n = 0;
			cl = srv = NULL;
		}
		if (!row || !rcl || !rsrv)
			break;
		if (!cl) {
			cl = xstrdup(rcl);
			srv = xstrdup(rsrv);
		}
		if (n >= 10u * 1000u * 1000u)
			continue;   /* a month of 1 s rows is far below this */
		s = grow(s, &cap, n, sizeof(*s));
		s[n].ts = sqlite3_column_double(st, 2);
		s[n].lag_s = col_num(st, 3, -1);
		s[n].lag_max_s = col_num(st, 4, -1);
		s[n].state = col_str(st, 5);
		n++;
	}
	for (size_t i = 0; i < n; i++)
		free((char *)s[i].state);
	free(s);
	free(cl);
	free(srv);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		return catalog_error(cat, "unable to read lag_samples", e);
	return 0;
}

static void day_of(double t, char *out, size_t n, double *start)
{
	time_t secs = (time_t)t;
	struct tm tm;

	if (!gmtime_r(&secs, &tm)) {
		str_copy(out, n, "?");
		*start = 0;
		return;
	}
	strftime(out, n, "%Y-%m-%d", &tm);
	*start = floor(t / 86400.0) * 86400.0;
}

static int load_snapshots(struct catalog *cat, const struct report_opts *o,
			  struct report_data *d, struct err *e)
{
	sqlite3_stmt *st = NULL;
	size_t cap = 0, dcap = 0;
	int rc;

	if ((rc = prepare(cat, "SELECT id, cluster, status, verify_status, reason, "
			  "started_at, finished_at, bytes_raw, bytes_stored FROM snapshots "
			  "WHERE started_at >= ?1 AND (?2 IS NULL OR cluster = ?2) "
			  "ORDER BY started_at, id LIMIT ?3", &st, e)))
		return rc;
	sqlite3_bind_double(st, 1, d->since);
	bind_opt_text(st, 2, o->cluster);
	sqlite3_bind_int(st, 3, REPORT_ROWS_MAX);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct report_snapshot *s;
		struct report_day *day = NULL;
		char dname[16];
		double dstart;
		bool done, bad;

		d->snapshots = grow(d->snapshots, &cap, d->n_snapshots, sizeof(*d->snapshots));
		s = &d->snapshots[d->n_snapshots++];
		s->id = col_str(st, 0);
		s->cluster = col_str(st, 1);
		s->status = col_str(st, 2);
		s->verify_status = col_str(st, 3);
		s->reason = col_str(st, 4);
		s->started_at = col_num(st, 5, 0);
		s->finished_at = col_num(st, 6, 0);
		s->bytes_raw = (uint64_t)sqlite3_column_int64(st, 7);
		s->bytes_stored = (uint64_t)sqlite3_column_int64(st, 8);
		if (!s->cluster || !s->status)
			continue;
		done = strcmp(s->status, "complete") == 0 || strcmp(s->status, "deleted") == 0;
		bad = strcmp(s->status, "failed") == 0 || strcmp(s->status, "aborted") == 0;
		if (!done && !bad)
			continue;
		day_of(s->started_at, dname, sizeof(dname), &dstart);
		for (size_t i = d->n_days; i-- > 0;)
			if (strcmp(d->days_list[i].cluster, s->cluster) == 0 &&
			    strcmp(d->days_list[i].day, dname) == 0) {
				day = &d->days_list[i];
				break;
			}
		if (!day) {
			d->days_list = grow(d->days_list, &dcap, d->n_days, sizeof(*d->days_list));
			day = &d->days_list[d->n_days++];
			day->cluster = xstrdup(s->cluster);
			str_copy(day->day, sizeof(day->day), dname);
			day->day_start = dstart;
		}
		if (bad) {
			day->failed++;
			continue;
		}
		day->snapshots++;
		day->bytes_raw += s->bytes_raw;
		day->bytes_stored += s->bytes_stored;
		if (s->finished_at > s->started_at) {
			double secs = s->finished_at - s->started_at;

			day->seconds_sum += secs;
			if (secs > day->seconds_max)
				day->seconds_max = secs;
		}
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : catalog_error(cat, "unable to read snapshots", e);
}

static int load_drills(struct catalog *cat, const struct report_opts *o,
		       struct report_data *d, struct err *e)
{
	sqlite3_stmt *st = NULL;
	size_t cap = 0;
	int rc;

	if ((rc = prepare(cat, "SELECT id, cluster, snapshot_id, target, result, reason, "
			  "started_at, finished_at, rto_s, rpo_s, bytes FROM drills "
			  "WHERE started_at >= ?1 AND (?2 IS NULL OR cluster = ?2) "
			  "ORDER BY started_at, id LIMIT ?3", &st, e)))
		return rc;
	sqlite3_bind_double(st, 1, d->since);
	bind_opt_text(st, 2, o->cluster);
	sqlite3_bind_int(st, 3, REPORT_ROWS_MAX);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct report_drill *r;

		d->drills = grow(d->drills, &cap, d->n_drills, sizeof(*d->drills));
		r = &d->drills[d->n_drills++];
		r->id = sqlite3_column_int64(st, 0);
		r->cluster = col_str(st, 1);
		r->snapshot_id = col_str(st, 2);
		r->target = col_str(st, 3);
		r->result = col_str(st, 4);
		r->reason = col_str(st, 5);
		r->started_at = col_num(st, 6, 0);
		r->finished_at = col_num(st, 7, 0);
		r->rto_s = col_num(st, 8, -1);
		r->rpo_s = col_num(st, 9, -1);
		r->bytes = sqlite3_column_type(st, 10) == SQLITE_NULL ? -1
								      : sqlite3_column_int64(st, 10);
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : catalog_error(cat, "unable to read drills", e);
}

/* Failed and aborted jobs, plus failed snapshots and drills that have no
 * failed job of their own (a catalog rebuilt from the repository, a crash).
 * A drill's own reason beats its job's message (it names the phase). */
static int load_failures(struct catalog *cat, const struct report_opts *o,
			 struct report_data *d, struct err *e)
{
	static const char sql[] =
		"WITH bad_jobs AS (SELECT id FROM jobs WHERE status IN ('failed', 'aborted')) "
		"SELECT at, source, kind, cluster, subject, message FROM ("
		" SELECT COALESCE(j.finished_at, j.started_at) AS at, 'job' AS source, j.kind AS kind,"
		"  j.cluster AS cluster, COALESCE(j.target, '') AS subject,"
		"  COALESCE(dr.reason, j.error_message, j.status) AS message"
		"  FROM jobs j LEFT JOIN drills dr ON dr.job_id = j.id AND j.kind = 'drill'"
		"  WHERE j.status IN ('failed', 'aborted') AND j.started_at >= ?1"
		" UNION ALL"
		" SELECT COALESCE(finished_at, started_at), 'snapshot', 'snapshot', cluster, id,"
		"  COALESCE(reason, status) FROM snapshots"
		"  WHERE status IN ('failed', 'aborted') AND started_at >= ?1"
		"  AND (job_id IS NULL OR job_id NOT IN (SELECT id FROM bad_jobs))"
		" UNION ALL"
		" SELECT COALESCE(finished_at, started_at), 'drill', 'drill', cluster,"
		"  COALESCE(snapshot_id, ''), COALESCE(reason, result) FROM drills"
		"  WHERE result IN ('failed', 'aborted') AND started_at >= ?1"
		"  AND (job_id IS NULL OR job_id NOT IN (SELECT id FROM bad_jobs))"
		") WHERE ?2 IS NULL OR cluster = ?2 ORDER BY at DESC LIMIT ?3";
	sqlite3_stmt *st = NULL;
	size_t cap = 0;
	int rc;

	if ((rc = prepare(cat, sql, &st, e)))
		return rc;
	sqlite3_bind_double(st, 1, d->since);
	bind_opt_text(st, 2, o->cluster);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)(o->failures_max ? o->failures_max
								  : REPORT_FAILURES_DEFAULT));
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct report_failure *f;

		d->failures = grow(d->failures, &cap, d->n_failures, sizeof(*d->failures));
		f = &d->failures[d->n_failures++];
		f->at = col_num(st, 0, 0);
		f->source = col_str(st, 1);
		f->kind = col_str(st, 2);
		f->cluster = col_str(st, 3);
		f->subject = col_str(st, 4);
		f->message = col_str(st, 5);
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : catalog_error(cat, "unable to read failures", e);
}

int report_load(struct catalog *cat, const struct config *cfg,
		const struct report_opts *o, struct report_data *d,
		struct err *e)
{
	static const struct report_opts defaults = { 0 };
	int rc;

	o = o ? o : &defaults;
	report_data_init(d);
	if (o->cluster && !config_find_cluster(cfg, o->cluster))
		return err_set(e, ERR_NOT_FOUND, "no cluster '%s' in config '%s'",
			       o->cluster, cfg->path);
	d->generated_at = o->now > 0 ? o->now : catalog_now();
	d->days = o->days > 0 ? o->days : REPORT_DAYS_DEFAULT;
	d->lag_hours = o->lag_hours > 0 ? o->lag_hours : REPORT_LAG_HOURS_DEFAULT;
	d->since = d->generated_at - d->days * 86400.0;
	d->lag_since = d->generated_at - d->lag_hours * 3600.0;
	d->catalog = xstrdup(catalog_path(cat));
	if ((rc = load_topology(cat, cfg, o, d, e)) ||
	    (rc = load_lag(cat, o, d, e)) ||
	    (rc = load_snapshots(cat, o, d, e)) ||
	    (rc = load_drills(cat, o, d, e)) ||
	    (rc = load_failures(cat, o, d, e)))
		return rc;
	return 0;
}

/* ---- rendering helpers --------------------------------------------------- */

struct page {
	struct buf *b;
	struct err *e;
	int rc;
	const struct report_data *d;
};

static void put(struct page *p, const char *s)
{
	if (p->rc == 0)
		p->rc = buf_append_str(p->b, s, p->e);
}

static void putf(struct page *p, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void putf(struct page *p, const char *fmt, ...)
{
	va_list ap;

	if (p->rc)
		return;
	va_start(ap, fmt);
	p->rc = buf_vprintf(p->b, p->e, fmt, ap);
	va_end(ap);
}

/* Text or attribute value, HTML-escaped. Control characters other than
 * tab and newline are dropped (they are not allowed in HTML). */
static void esc(struct page *p, const char *s)
{
	for (; s && *s && p->rc == 0; s++) {
		switch (*s) {
		case '&': put(p, "&amp;"); break;
		case '<': put(p, "&lt;"); break;
		case '>': put(p, "&gt;"); break;
		case '"': put(p, "&quot;"); break;
		case '\'': put(p, "&#39;"); break;
		default:
			if ((unsigned char)*s < 0x20 && *s != '\t' && *s != '\n')
				break;
			p->rc = buf_append_char(p->b, *s, p->e);
		}
	}
}

static void fmt_time(double t, char *out, size_t n)
{
	time_t secs = (time_t)t;
	struct tm tm;

	if (t <= 0 || !gmtime_r(&secs, &tm)) {
		str_copy(out, n, "-");
		return;
	}
	strftime(out, n, "%Y-%m-%d %H:%M:%S", &tm);
}

static void fmt_iso(double t, char *out, size_t n)
{
	if (t <= 0 || catalog_time_iso(t, false, out, n) != 0)
		str_copy(out, n, "");
}

static void fmt_bytes(double b, char *out, size_t n)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB" };
	unsigned u = 0;

	while (b >= 1024 && u + 1 < sizeof(units) / sizeof(units[0])) {
		b /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(out, n, "%.0f B", b);
	else
		snprintf(out, n, "%.1f %s", b, units[u]);
}

static void fmt_dur(double s, char *out, size_t n)
{
	if (s < 0 || isnan(s))
		str_copy(out, n, "-");
	else if (s < 10)
		snprintf(out, n, "%.2f s", s);
	else if (s < 120)
		snprintf(out, n, "%.1f s", s);
	else if (s < 7200)
		snprintf(out, n, "%dm%02ds", (int)s / 60, (int)s % 60);
	else if (s < 172800)
		snprintf(out, n, "%dh%02dm", (int)s / 3600, (int)s % 3600 / 60);
	else
		snprintf(out, n, "%.1f d", s / 86400);
}

static void fmt_ago(double now, double t, char *out, size_t n)
{
	char d[32];

	if (t <= 0) {
		str_copy(out, n, "never");
		return;
	}
	fmt_dur(now - t > 0 ? now - t : 0, d, sizeof(d));
	snprintf(out, n, "%s ago", d);
}

/* A "nice" axis: step of 1, 2 or 5 x 10^k giving about 4 intervals up to
 * at least max. */
static void nice_axis(double max, double *top, double *step)
{
	double raw, mag, norm, s;

	if (!(max > 0))
		max = 1;
	raw = max / 4;
	mag = pow(10, floor(log10(raw)));
	norm = raw / mag;
	s = (norm <= 1 ? 1 : norm <= 2 ? 2 : norm <= 5 ? 5 : 10) * mag;
	*step = s;
	*top = ceil(max / s - 1e-9) * s;
	if (*top <= 0)
		*top = s;
}

static double x_of(double t, double t0, double t1)
{
	return CH_L + (t1 > t0 ? (t - t0) / (t1 - t0) : 0) * PLOT_W;
}

static double y_of(double v, double top)
{
	double f = top > 0 ? v / top : 0;

	if (f > 1)
		f = 1;
	if (f < 0)
		f = 0;
	return CH_T + PLOT_H - f * PLOT_H;
}

static void svg_open(struct page *p, const char *chart, const char *cluster,
		     const char *label)
{
	putf(p, "<svg class=\"chart\" viewBox=\"0 0 %d %d\" role=\"img\" "
	     "preserveAspectRatio=\"xMidYMid meet\" data-chart=\"%s\" data-cluster=\"",
	     CH_W, CH_H, chart);
	esc(p, cluster);
	put(p, "\" aria-label=\"");
	esc(p, label);
	put(p, "\">\n");
	putf(p, "<rect class=\"plot\" x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\"/>\n",
	     CH_L, CH_T, PLOT_W, PLOT_H);
}

typedef void (*label_fn)(double v, char *out, size_t n);

static void label_seconds(double v, char *out, size_t n)
{
	if (v == 0)
		str_copy(out, n, "0");
	else if (v < 1)
		snprintf(out, n, "%g ms", round(v * 1000));
	else if (v < 120)
		snprintf(out, n, "%g s", v);
	else if (v < 7200)
		snprintf(out, n, "%g min", round(v / 6) / 10);
	else
		snprintf(out, n, "%g h", round(v / 360) / 10);
}

/* Axis labels: whole numbers of a unit print without decimals. */
static void label_bytes(double v, char *out, size_t n)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB" };
	unsigned u = 0;

	if (v == 0) {
		str_copy(out, n, "0");
		return;
	}
	while (v >= 1024 && u + 1 < sizeof(units) / sizeof(units[0])) {
		v /= 1024;
		u++;
	}
	snprintf(out, n, "%g %s", round(v * 10) / 10, units[u]);
}

/* Horizontal grid lines and labels of the y axis. */
static void y_axis(struct page *p, double top, double step, label_fn fn,
		   const char *title)
{
	for (double v = 0; v <= top + step / 2; v += step) {
		char l[32];
		double y = y_of(v, top);

		fn(v, l, sizeof(l));
		putf(p, "<line class=\"grid\" x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\"/>"
		     "<text class=\"ytick\" x=\"%d\" y=\"%.1f\">%s</text>\n",
		     CH_L, y, CH_L + PLOT_W, y, CH_L - 6, y + 4, l);
	}
	putf(p, "<text class=\"ytitle\" x=\"12\" y=\"%d\" transform=\"rotate(-90 12 %d)\">",
	     CH_T + PLOT_H / 2, CH_T + PLOT_H / 2);
	esc(p, title);
	put(p, "</text>\n");
}

/* Time ticks on UTC boundaries, about 4-8 of them. */
static void x_time_axis(struct page *p, double t0, double t1)
{
	static const double steps[] = {
		60, 300, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400,
		172800, 345600, 604800, 1209600, 2592000,
	};
	double step = steps[sizeof(steps) / sizeof(steps[0]) - 1];

	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++)
		if ((t1 - t0) / steps[i] <= 8) {
			step = steps[i];
			break;
		}
	for (double t = ceil(t0 / step) * step; t <= t1; t += step) {
		time_t secs = (time_t)t;
		struct tm tm;
		char l[32];
		double x = x_of(t, t0, t1);

		if (!gmtime_r(&secs, &tm))
			continue;
		if (step < 86400 && (tm.tm_hour || tm.tm_min))
			strftime(l, sizeof(l), "%H:%M", &tm);
		else
			strftime(l, sizeof(l), "%m-%d", &tm);
		putf(p, "<line class=\"vgrid\" x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\"/>"
		     "<text class=\"xtick\" x=\"%.1f\" y=\"%d\">%s</text>\n",
		     x, CH_T, x, CH_T + PLOT_H, x, CH_T + PLOT_H + 16, l);
	}
	putf(p, "<text class=\"xtitle\" x=\"%d\" y=\"%d\">time (UTC)</text>\n",
	     CH_L + PLOT_W, CH_H - 4);
}

static void empty_note(struct page *p, const char *what)
{
	put(p, "<p class=\"empty\">");
	esc(p, what);
	put(p, "</p>\n");
}

static void cluster_heading(struct page *p, const char *cluster)
{
	if (p->d->n_clusters <= 1)
		return;
	put(p, "<h3>cluster ");
	esc(p, cluster);
	put(p, "</h3>\n");
}

/* ---- sections ------------------------------------------------------------ */

static const struct report_drill *last_drill(const struct report_data *d,
					     const char *cluster, bool passed)
{
	for (size_t i = d->n_drills; i-- > 0;)
		if (d->drills[i].cluster && strcmp(d->drills[i].cluster, cluster) == 0 &&
		    d->drills[i].result && strcmp(d->drills[i].result, "running") != 0 &&
		    (!passed || strcmp(d->drills[i].result, "ok") == 0))
			return &d->drills[i];
	return NULL;
}

static const struct report_snapshot *last_snapshot(const struct report_data *d,
						   const char *cluster)
{
	for (size_t i = d->n_snapshots; i-- > 0;)
		if (d->snapshots[i].cluster && strcmp(d->snapshots[i].cluster, cluster) == 0 &&
		    d->snapshots[i].status && strcmp(d->snapshots[i].status, "complete") == 0)
			return &d->snapshots[i];
	return NULL;
}

static void tile(struct page *p, const char *cls, const char *label,
		 const char *value, const char *detail)
{
	putf(p, "<div class=\"tile %s\"><div class=\"tl\">", cls);
	esc(p, label);
	put(p, "</div><div class=\"tv\">");
	esc(p, value);
	put(p, "</div><div class=\"td\">");
	esc(p, detail);
	put(p, "</div></div>\n");
}

static void section_summary(struct page *p)
{
	const struct report_data *d = p->d;

	put(p, "<section id=\"summary\"><h2>Summary</h2>\n");
	for (size_t i = 0; i < d->n_clusters; i++) {
		const struct report_cluster *c = &d->clusters[i];
		const struct report_snapshot *s = last_snapshot(d, c->name);
		const struct report_drill *dr = last_drill(d, c->name, false);
		const struct report_drill *ok = last_drill(d, c->name, true);
		char v[96], det[320], a[48], b[48];
		size_t nfail = 0, worst_k = SIZE_MAX;
		int worst = -1;

		for (size_t k = 0; k < d->n_failures; k++)
			if (d->failures[k].cluster && strcmp(d->failures[k].cluster, c->name) == 0)
				nfail++;
		for (size_t k = 0; k < c->n_servers; k++)
			if (c->servers[k].lag_state &&
			    state_rank(c->servers[k].lag_state) > worst) {
				worst = state_rank(c->servers[k].lag_state);
				worst_k = k;
			}
		putf(p, "<div class=\"tiles\" data-cluster=\"");
		esc(p, c->name);
		put(p, "\">\n");
		if (d->n_clusters > 1) {
			put(p, "<div class=\"tile name\"><div class=\"tl\">cluster</div><div class=\"tv\">");
			esc(p, c->name);
			put(p, "</div></div>\n");
		}
		if (s) {
			fmt_ago(d->generated_at, s->finished_at ? s->finished_at : s->started_at,
				v, sizeof(v));
			fmt_bytes((double)s->bytes_stored, a, sizeof(a));
			snprintf(det, sizeof(det), "%.60s, %s stored%s", s->id, a,
				 s->verify_status && strcmp(s->verify_status, "ok") == 0
					 ? ", verified" : "");
			tile(p, "ok", "last snapshot", v, det);
		} else {
			tile(p, "bad", "last snapshot", "none",
			     "no complete snapshot in the report's window");
		}
		if (dr) {
			bool passed = strcmp(dr->result, "ok") == 0;

			fmt_ago(d->generated_at, dr->finished_at ? dr->finished_at : dr->started_at,
				a, sizeof(a));
			snprintf(v, sizeof(v), "%s", passed ? "passed" : "FAILED");
			if (passed) {
				fmt_dur(dr->rto_s, b, sizeof(b));
				snprintf(det, sizeof(det), "%s, RTO %s", a, b);
			} else if (ok) {
				fmt_ago(d->generated_at, ok->finished_at, b, sizeof(b));
				snprintf(det, sizeof(det), "%s; last pass %s", a, b);
			} else {
				snprintf(det, sizeof(det), "%s; no passing drill", a);
			}
			tile(p, passed ? "ok" : "bad", "last DR drill", v, det);
		} else {
			tile(p, "warn", "last DR drill", "none", "no drill in the report's window");
		}
		if (worst_k != SIZE_MAX) {
			const struct report_server *sv = &c->servers[worst_k];

			if (sv->lag_s >= 0)
				fmt_dur(sv->lag_s, a, sizeof(a));
			else
				str_copy(a, sizeof(a), "unknown");
			snprintf(det, sizeof(det), "%.200s: lag %s", sv->addr, a);
			tile(p, worst == 0 ? "ok" : worst == 1 ? "warn" : "bad",
			     "worst replica", state_of_rank(worst), det);
		}
		snprintf(v, sizeof(v), "%zu", nfail);
		snprintf(det, sizeof(det), "in the last %d days", d->days);
		tile(p, nfail ? "bad" : "ok", "failures", v, det);
		put(p, "</div>\n");
	}
	put(p, "</section>\n");
}

static void section_topology(struct page *p)
{
	const struct report_data *d = p->d;

	put(p, "<section id=\"topology\"><h2>Topology</h2>\n");
	for (size_t i = 0; i < d->n_clusters; i++) {
		const struct report_cluster *c = &d->clusters[i];

		put(p, "<div class=\"topo\" data-cluster=\"");
		esc(p, c->name);
		put(p, "\"><h3>cluster ");
		esc(p, c->name);
		put(p, "</h3>\n");
		if (strcmp(c->primary, c->config_primary) != 0) {
			put(p, "<p class=\"note\">The writer is ");
			esc(p, c->primary);
			put(p, " since a cutover (the config names ");
			esc(p, c->config_primary);
			put(p, ").</p>\n");
		}
		put(p, "<table><thead><tr><th>server</th><th>role</th><th>version</th>"
		       "<th>lag state</th><th>lag</th><th>as of</th></tr></thead><tbody>\n");
		for (size_t k = 0; k < c->n_servers; k++) {
			const struct report_server *s = &c->servers[k];
			char lag[32], when[40];

			if (s->lag_s >= 0)
				fmt_dur(s->lag_s, lag, sizeof(lag));
			else
				str_copy(lag, sizeof(lag), "-");
			fmt_time(s->lag_updated_at, when, sizeof(when));
			put(p, "<tr class=\"server\" data-server=\"");
			esc(p, s->addr);
			put(p, "\" data-role=\"");
			esc(p, s->role);
			put(p, "\"><td><code>");
			esc(p, s->addr);
			put(p, "</code></td><td>");
			esc(p, s->role);
			put(p, "</td><td>");
			esc(p, s->version ? s->version : "-");
			putf(p, "</td><td><span class=\"state %s\">",
			     s->lag_state ? state_of_rank(state_rank(s->lag_state)) : "none");
			esc(p, s->lag_state ? s->lag_state : "-");
			put(p, "</span></td><td>");
			esc(p, lag);
			put(p, "</td><td>");
			esc(p, s->lag_state ? when : "-");
			put(p, "</td></tr>\n");
		}
		put(p, "</tbody></table></div>\n");
	}
	put(p, "</section>\n");
}

static void lag_chart(struct page *p, const struct report_cluster *c)
{
	const struct report_data *d = p->d;
	double t0 = d->lag_since, t1 = d->generated_at, top, step, max = 0;
	size_t n = 0, ci = 0;
	char label[300];

	for (size_t i = 0; i < d->n_series; i++) {
		if (strcmp(d->series[i].cluster, c->name) != 0)
			continue;
		n++;
		for (size_t k = 0; k < d->series[i].n_points; k++)
			if (d->series[i].points[k].have_lag &&
			    d->series[i].points[k].lag_max_s > max)
				max = d->series[i].points[k].lag_max_s;
	}
	cluster_heading(p, c->name);
	if (n == 0) {
		snprintf(label, sizeof(label),
			 "No lag samples in the last %d h (the daemon's lag monitor records them).",
			 d->lag_hours);
		empty_note(p, label);
		return;
	}
	nice_axis(max * 1.1 > 0.5 ? max * 1.1 : 0.5, &top, &step);
	snprintf(label, sizeof(label), "replication lag per replica of %.200s, last %d hours",
		 c->name, d->lag_hours);
	svg_open(p, "lag", c->name, label);
	y_axis(p, top, step, label_seconds, "lag");
	x_time_axis(p, t0, t1);
	if (c->lag_warn_s > 0 && c->lag_warn_s <= top)
		putf(p, "<line class=\"thr warn\" x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" "
		     "data-threshold=\"warn\" data-lag=\"%g\"/>"
		     "<text class=\"thrl\" x=\"%d\" y=\"%.1f\">warn %g s</text>\n",
		     CH_L, y_of(c->lag_warn_s, top), CH_L + PLOT_W, y_of(c->lag_warn_s, top),
		     c->lag_warn_s, CH_L + PLOT_W - 4, y_of(c->lag_warn_s, top) - 3, c->lag_warn_s);
	if (c->lag_crit_s > 0 && c->lag_crit_s <= top)
		putf(p, "<line class=\"thr crit\" x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" "
		     "data-threshold=\"crit\" data-lag=\"%g\"/>"
		     "<text class=\"thrl\" x=\"%d\" y=\"%.1f\">crit %g s</text>\n",
		     CH_L, y_of(c->lag_crit_s, top), CH_L + PLOT_W, y_of(c->lag_crit_s, top),
		     c->lag_crit_s, CH_L + PLOT_W - 4, y_of(c->lag_crit_s, top) - 3, c->lag_crit_s);
	for (size_t i = 0; i < d->n_series; i++) {
		const struct report_lag_series *s = &d->series[i];
		const char *color;
		double gap = 3 * (t1 - t0) / REPORT_LAG_BUCKETS, last_t = -1;
		bool open = false;

		if (strcmp(s->cluster, c->name) != 0)
			continue;
		color = palette[ci++ % N_PALETTE];
		put(p, "<g class=\"series\" data-server=\"");
		esc(p, s->server);
		putf(p, "\" data-points=\"%zu\">\n<path class=\"line\" stroke=\"%s\" d=\"",
		     s->n_points, color);
		for (size_t k = 0; k < s->n_points; k++) {
			const struct report_lag_point *pt = &s->points[k];

			if (!pt->have_lag) {
				open = false;
				continue;
			}
			putf(p, "%s%.1f %.1f ", open && pt->ts - last_t <= gap ? "L" : "M",
			     x_of(pt->ts, t0, t1), y_of(pt->lag_s, top));
			open = true;
			last_t = pt->ts;
		}
		put(p, "\"/>\n");
		for (size_t k = 0; k < s->n_points; k++) {
			const struct report_lag_point *pt = &s->points[k];
			char iso[40], when[40], tip[400];

			fmt_iso(pt->ts, iso, sizeof(iso));
			fmt_time(pt->ts, when, sizeof(when));
			if (pt->have_lag) {
				snprintf(tip, sizeof(tip), "%.200s %s UTC: lag %.3f s (max %.3f s), %s",
					 s->server, when, pt->lag_s, pt->lag_max_s, pt->state);
				putf(p, "<circle class=\"pt %s\" cx=\"%.1f\" cy=\"%.1f\" r=\"2.6\" fill=\"%s\" "
				     "data-ts=\"%.0f\" data-time=\"%s\" data-lag=\"%.3f\" "
				     "data-lag-max=\"%.3f\" data-state=\"%s\" data-tip=\"",
				     pt->state, x_of(pt->ts, t0, t1), y_of(pt->lag_s, top), color,
				     pt->ts, iso, pt->lag_s, pt->lag_max_s, pt->state);
			} else {
				snprintf(tip, sizeof(tip), "%.200s %s UTC: no lag figure (%s)",
					 s->server, when, pt->state);
				putf(p, "<rect class=\"pt nolag %s\" x=\"%.1f\" y=\"%d\" width=\"3\" height=\"8\" "
				     "data-ts=\"%.0f\" data-time=\"%s\" data-lag=\"\" data-state=\"%s\" data-tip=\"",
				     pt->state, x_of(pt->ts, t0, t1) - 1.5, CH_T + 1, pt->ts, iso,
				     pt->state);
			}
			esc(p, tip);
			put(p, "\"/>\n");
		}
		put(p, "</g>\n");
	}
	put(p, "</svg>\n<div class=\"legend\">");
	ci = 0;
	for (size_t i = 0; i < d->n_series; i++) {
		if (strcmp(d->series[i].cluster, c->name) != 0)
			continue;
		putf(p, "<span class=\"key\"><i style=\"background:%s\"></i>",
		     palette[ci++ % N_PALETTE]);
		esc(p, d->series[i].server);
		put(p, "</span>");
	}
	put(p, "<span class=\"key\"><i class=\"nolagkey\"></i>no figure (broken / down)</span>"
	       "</div>\n");
}

static void section_lag(struct page *p)
{
	put(p, "<section id=\"lag\"><h2>Replication lag</h2>\n");
	for (size_t i = 0; i < p->d->n_clusters; i++)
		lag_chart(p, &p->d->clusters[i]);
	put(p, "</section>\n");
}

/* Day slots from the window's first day to today (UTC). */
static void day_charts(struct page *p, const struct report_cluster *c)
{
	const struct report_data *d = p->d;
	double first = floor(d->since / 86400.0) * 86400.0;
	double last = floor(d->generated_at / 86400.0) * 86400.0;
	size_t slots = (size_t)((last - first) / 86400.0) + 1, n = 0;
	double max_b = 0, max_s = 0, top, step, slot_w;
	char label[300];

	for (size_t i = 0; i < d->n_days; i++) {
		const struct report_day *dy = &d->days_list[i];

		if (strcmp(dy->cluster, c->name) != 0)
			continue;
		n++;
		if ((double)dy->bytes_raw > max_b)
			max_b = (double)dy->bytes_raw;
		if ((double)dy->bytes_stored > max_b)
			max_b = (double)dy->bytes_stored;
		if (dy->seconds_max > max_s)
			max_s = dy->seconds_max;
	}
	cluster_heading(p, c->name);
	if (n == 0) {
		snprintf(label, sizeof(label), "No snapshots in the last %d days.", d->days);
		empty_note(p, label);
		return;
	}
	slot_w = (double)PLOT_W / (double)slots;
	for (int chart = 0; chart < 2; chart++) {
		bool size = chart == 0;

		nice_axis(size ? max_b : max_s, &top, &step);
		if (size && top >= 1024) {
			/* Steps of whole binary units read better on a byte axis. */
			double unit = pow(1024, floor(log(top) / log(1024)));

			nice_axis(max_b / unit, &top, &step);
			top *= unit;
			step *= unit;
		}
		snprintf(label, sizeof(label), "%s per day of %.200s, last %d days",
			 size ? "snapshot size" : "snapshot duration", c->name, d->days);
		put(p, "<h4>");
		put(p, size ? "Size per day (stored, raw behind)" : "Duration per day (longest snapshot)");
		put(p, "</h4>\n");
		svg_open(p, size ? "snapshot-size" : "snapshot-duration", c->name, label);
		y_axis(p, top, step, size ? label_bytes : label_seconds,
		       size ? "bytes" : "duration");
		for (size_t s = 0; s < slots; s += (slots + 7) / 8) {
			double t = first + (double)s * 86400.0, x = CH_L + ((double)s + 0.5) * slot_w;
			char dn[16];
			double ds;

			day_of(t, dn, sizeof(dn), &ds);
			putf(p, "<text class=\"xtick\" x=\"%.1f\" y=\"%d\">%s</text>\n", x,
			     CH_T + PLOT_H + 16, dn + 5);
		}
		putf(p, "<text class=\"xtitle\" x=\"%d\" y=\"%d\">day (UTC)</text>\n",
		     CH_L + PLOT_W, CH_H - 4);
		for (size_t i = 0; i < d->n_days; i++) {
			const struct report_day *dy = &d->days_list[i];
			double slot = floor((dy->day_start - first) / 86400.0 + 0.5);
			double x = CH_L + slot * slot_w, w = slot_w * 0.7, y;
			char tip[400], a[32], b[32], m[32];

			if (strcmp(dy->cluster, c->name) != 0 || slot < 0 || slot >= (double)slots)
				continue;
			fmt_bytes((double)dy->bytes_stored, a, sizeof(a));
			fmt_bytes((double)dy->bytes_raw, b, sizeof(b));
			fmt_dur(dy->seconds_max, m, sizeof(m));
			snprintf(tip, sizeof(tip), "%s: %u snapshot%s%s, %s stored (%s raw), longest %s%s",
				 dy->day, dy->snapshots, dy->snapshots == 1 ? "" : "s",
				 "", a, b, m, dy->failed ? ", with failures" : "");
			putf(p, "<g class=\"day\" data-day=\"%s\" data-snapshots=\"%u\" "
			     "data-failed=\"%u\" data-bytes-stored=\"%" PRIu64 "\" "
			     "data-bytes-raw=\"%" PRIu64 "\" data-seconds-max=\"%.3f\" "
			     "data-seconds-sum=\"%.3f\" data-tip=\"",
			     dy->day, dy->snapshots, dy->failed, dy->bytes_stored,
			     dy->bytes_raw, dy->seconds_max, dy->seconds_sum);
			esc(p, tip);
			put(p, "\">");
			if (size) {
				y = y_of((double)dy->bytes_raw, top);
				putf(p, "<rect class=\"bar raw\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\"/>",
				     x + slot_w * 0.15, y, w, CH_T + PLOT_H - y);
				y = y_of((double)dy->bytes_stored, top);
				putf(p, "<rect class=\"bar stored\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\"/>",
				     x + slot_w * 0.15, y, w, CH_T + PLOT_H - y);
			} else {
				y = y_of(dy->seconds_max, top);
				putf(p, "<rect class=\"bar dur\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\"/>",
				     x + slot_w * 0.15, y, w, CH_T + PLOT_H - y);
				if (dy->snapshots > 1 && slot_w >= 14)
					putf(p, "<text class=\"count\" x=\"%.1f\" y=\"%.1f\">%u</text>",
					     x + slot_w * 0.5, y - 3, dy->snapshots);
			}
			if (dy->failed)
				putf(p, "<text class=\"failmark\" x=\"%.1f\" y=\"%d\">&#x2716;</text>",
				     x + slot_w * 0.5, CH_T + PLOT_H - 2);
			put(p, "</g>\n");
		}
		put(p, "</svg>\n");
	}
}

static void snapshot_table(struct page *p)
{
	const struct report_data *d = p->d;
	size_t shown = 0;

	if (d->n_snapshots == 0)
		return;
	put(p, "<h3>Recent snapshots</h3>\n<table class=\"snapshots\"><thead><tr>"
	       "<th>id</th><th>cluster</th><th>started (UTC)</th><th>duration</th>"
	       "<th>raw</th><th>stored</th><th>status</th><th>verified</th></tr></thead><tbody>\n");
	for (size_t i = d->n_snapshots; i-- > 0 && shown < TABLE_ROWS; shown++) {
		const struct report_snapshot *s = &d->snapshots[i];
		char when[40], dur[32], raw[32], st[32];
		bool sized = s->status && (strcmp(s->status, "complete") == 0 ||
					   strcmp(s->status, "deleted") == 0);

		fmt_time(s->started_at, when, sizeof(when));
		fmt_dur(s->finished_at > s->started_at ? s->finished_at - s->started_at : -1,
			dur, sizeof(dur));
		fmt_bytes((double)s->bytes_raw, raw, sizeof(raw));
		fmt_bytes((double)s->bytes_stored, st, sizeof(st));
		put(p, "<tr data-snapshot=\"");
		esc(p, s->id);
		putf(p, "\" data-bytes-stored=\"%" PRIu64 "\"><td><code>", s->bytes_stored);
		esc(p, s->id);
		put(p, "</code></td><td>");
		esc(p, s->cluster);
		putf(p, "</td><td class=\"n\">%s</td><td class=\"n\">%s</td><td class=\"n\">%s</td>"
		     "<td class=\"n\">%s</td><td>", when, dur, sized ? raw : "-", sized ? st : "-");
		putf(p, "<span class=\"status %s\">", s->status && strcmp(s->status, "complete") == 0
			     ? "ok" : s->status && (strcmp(s->status, "failed") == 0 ||
						    strcmp(s->status, "aborted") == 0) ? "bad" : "other");
		esc(p, s->status);
		put(p, "</span>");
		if (s->reason && s->status && strcmp(s->status, "complete") != 0) {
			put(p, " <span class=\"reason\">");
			esc(p, s->reason);
			put(p, "</span>");
		}
		put(p, "</td><td>");
		esc(p, s->verify_status ? s->verify_status : "-");
		put(p, "</td></tr>\n");
	}
	put(p, "</tbody></table>\n");
}

static void section_snapshots(struct page *p)
{
	put(p, "<section id=\"snapshots\"><h2>Snapshots</h2>\n");
	for (size_t i = 0; i < p->d->n_clusters; i++)
		day_charts(p, &p->d->clusters[i]);
	snapshot_table(p);
	put(p, "</section>\n");
}

static void drill_chart(struct page *p, const struct report_cluster *c)
{
	const struct report_data *d = p->d;
	double t0 = d->since, t1 = d->generated_at, max = 0, top, step;
	double last_x = -1, last_y = -1;
	size_t n = 0;
	char label[300];

	for (size_t i = 0; i < d->n_drills; i++)
		if (strcmp(d->drills[i].cluster, c->name) == 0) {
			n++;
			if (d->drills[i].rto_s > max)
				max = d->drills[i].rto_s;
		}
	cluster_heading(p, c->name);
	if (n == 0) {
		snprintf(label, sizeof(label),
			 "No DR drills in the last %d days: `backupctl drill` runs one.", d->days);
		empty_note(p, label);
		return;
	}
	/* Show the recent drills when they all happened in a short span. */
	for (size_t i = 0; i < d->n_drills; i++)
		if (strcmp(d->drills[i].cluster, c->name) == 0) {
			double span = t1 - d->drills[i].started_at;

			if (span < (t1 - t0) / 8) {
				double pad = span > 600 ? span * 0.1 : 60;

				t0 = d->drills[i].started_at - pad;
			}
			break;
		}
	nice_axis(max * 1.15 > 0 ? max * 1.15 : 1, &top, &step);
	snprintf(label, sizeof(label), "DR drill RTO over time of %.200s, pass and fail marks",
		 c->name);
	svg_open(p, "drill-rto", c->name, label);
	y_axis(p, top, step, label_seconds, "RTO");
	x_time_axis(p, t0, t1);
	put(p, "<path class=\"rtoline\" d=\"");
	for (size_t i = 0; i < d->n_drills; i++) {
		const struct report_drill *r = &d->drills[i];

		if (strcmp(r->cluster, c->name) != 0 || !r->result ||
		    strcmp(r->result, "ok") != 0 || r->rto_s < 0)
			continue;
		putf(p, "%s%.1f %.1f ", last_x < 0 ? "M" : "L",
		     x_of(r->started_at, t0, t1), y_of(r->rto_s, top));
		last_x = x_of(r->started_at, t0, t1);
		last_y = y_of(r->rto_s, top);
	}
	(void)last_y;
	put(p, "\"/>\n");
	for (size_t i = 0; i < d->n_drills; i++) {
		const struct report_drill *r = &d->drills[i];
		bool ok = r->result && strcmp(r->result, "ok") == 0;
		bool running = r->result && strcmp(r->result, "running") == 0;
		char when[40], iso[40], rto[32], rpo[32], tip[900];
		double x, y;

		if (strcmp(r->cluster, c->name) != 0)
			continue;
		fmt_time(r->started_at, when, sizeof(when));
		fmt_iso(r->started_at, iso, sizeof(iso));
		fmt_dur(r->rto_s, rto, sizeof(rto));
		fmt_dur(r->rpo_s, rpo, sizeof(rpo));
		x = x_of(r->started_at, t0, t1);
		y = ok && r->rto_s >= 0 ? y_of(r->rto_s, top) : CH_T + PLOT_H - 8;
		if (ok)
			snprintf(tip, sizeof(tip), "drill %" PRId64 " %s UTC: passed, RTO %s, RPO %s, snapshot %.100s",
				 r->id, when, rto, rpo, r->snapshot_id ? r->snapshot_id : "-");
		else
			snprintf(tip, sizeof(tip), "drill %" PRId64 " %s UTC: %s: %.600s", r->id, when,
				 r->result ? r->result : "?", r->reason ? r->reason : "");
		putf(p, "<g class=\"drill %s\" data-drill-id=\"%" PRId64 "\" data-result=\"",
		     ok ? "pass" : running ? "running" : "fail", r->id);
		esc(p, r->result);
		putf(p, "\" data-ts=\"%.0f\" data-time=\"%s\" data-rto=\"", r->started_at, iso);
		if (r->rto_s >= 0)
			putf(p, "%.3f", r->rto_s);
		put(p, "\" data-rpo=\"");
		if (r->rpo_s >= 0)
			putf(p, "%.3f", r->rpo_s);
		put(p, "\" data-snapshot=\"");
		esc(p, r->snapshot_id);
		put(p, "\" data-tip=\"");
		esc(p, tip);
		put(p, "\">");
		if (ok)
			putf(p, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"5\"/>", x, y);
		else if (running)
			putf(p, "<circle class=\"hollow\" cx=\"%.1f\" cy=\"%.1f\" r=\"5\"/>", x, y);
		else
			putf(p, "<path d=\"M%.1f %.1f l10 10 m0 -10 l-10 10\"/>", x - 5, y - 5);
		put(p, "</g>\n");
	}
	put(p, "</svg>\n<div class=\"legend\"><span class=\"key\"><i class=\"passkey\"></i>passed (RTO)</span>"
	       "<span class=\"key\"><i class=\"failkey\"></i>failed (no RTO: drawn at the bottom)</span></div>\n");
}

static void drill_table(struct page *p)
{
	const struct report_data *d = p->d;
	size_t shown = 0;

	if (d->n_drills == 0)
		return;
	put(p, "<h3>Recent drills</h3>\n<table class=\"drills\"><thead><tr><th>id</th>"
	       "<th>cluster</th><th>started (UTC)</th><th>snapshot</th><th>result</th>"
	       "<th>RTO</th><th>RPO</th><th>restored</th><th>reason</th></tr></thead><tbody>\n");
	for (size_t i = d->n_drills; i-- > 0 && shown < TABLE_ROWS; shown++) {
		const struct report_drill *r = &d->drills[i];
		bool ok = r->result && strcmp(r->result, "ok") == 0;
		char when[40], rto[32], rpo[32], by[32];

		fmt_time(r->started_at, when, sizeof(when));
		fmt_dur(r->rto_s, rto, sizeof(rto));
		fmt_dur(r->rpo_s, rpo, sizeof(rpo));
		if (r->bytes >= 0)
			fmt_bytes((double)r->bytes, by, sizeof(by));
		else
			str_copy(by, sizeof(by), "-");
		putf(p, "<tr data-drill-id=\"%" PRId64 "\"><td>%" PRId64 "</td><td>", r->id, r->id);
		esc(p, r->cluster);
		putf(p, "</td><td class=\"n\">%s</td><td><code>", when);
		esc(p, r->snapshot_id ? r->snapshot_id : "-");
		putf(p, "</code></td><td><span class=\"status %s\">", ok ? "ok" : "bad");
		esc(p, ok ? "passed" : r->result);
		putf(p, "</span></td><td class=\"n\">%s</td><td class=\"n\">%s</td>"
		     "<td class=\"n\">%s</td><td class=\"reason\">", rto, rpo, by);
		esc(p, r->reason ? r->reason : "");
		put(p, "</td></tr>\n");
	}
	put(p, "</tbody></table>\n");
}

static void section_drills(struct page *p)
{
	put(p, "<section id=\"drills\"><h2>DR drills</h2>\n");
	for (size_t i = 0; i < p->d->n_clusters; i++)
		drill_chart(p, &p->d->clusters[i]);
	drill_table(p);
	put(p, "</section>\n");
}

static void section_failures(struct page *p)
{
	const struct report_data *d = p->d;

	put(p, "<section id=\"failures\"><h2>Last failures</h2>\n");
	if (d->n_failures == 0) {
		char l[120];

		snprintf(l, sizeof(l), "No failed job, snapshot or drill in the last %d days.",
			 d->days);
		empty_note(p, l);
		put(p, "</section>\n");
		return;
	}
	put(p, "<table class=\"failures\"><thead><tr><th>when (UTC)</th><th>what</th>"
	       "<th>cluster</th><th>subject</th><th>message</th></tr></thead><tbody>\n");
	for (size_t i = 0; i < d->n_failures; i++) {
		const struct report_failure *f = &d->failures[i];
		char when[40];

		fmt_time(f->at, when, sizeof(when));
		put(p, "<tr class=\"failure\" data-kind=\"");
		esc(p, f->kind);
		putf(p, "\" data-ts=\"%.0f\"><td class=\"n\">%s</td><td>", f->at, when);
		esc(p, f->kind);
		if (f->source && strcmp(f->source, "job") != 0) {
			put(p, " (");
			esc(p, f->source);
			put(p, ")");
		}
		put(p, "</td><td>");
		esc(p, f->cluster ? f->cluster : "-");
		put(p, "</td><td><code>");
		esc(p, f->subject && *f->subject ? f->subject : "-");
		put(p, "</code></td><td class=\"reason\">");
		esc(p, f->message);
		put(p, "</td></tr>\n");
	}
	put(p, "</tbody></table>\n</section>\n");
}

static const char page_css[] =
	":root{--fg:#1f2937;--mut:#6b7280;--bg:#fff;--line:#e5e7eb;--ok:#15803d;--warn:#b45309;--bad:#b91c1c}\n"
	"*{box-sizing:border-box}body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;"
	"color:var(--fg);background:#f3f4f6;margin:0}\n"
	"header{background:#111827;color:#f9fafb;padding:18px 28px}header h1{margin:0;font-size:22px}"
	"header p{margin:4px 0 0;color:#d1d5db}\n"
	"nav{padding:8px 28px;background:#fff;border-bottom:1px solid var(--line)}nav a{margin-right:16px;color:#2563eb;text-decoration:none}\n"
	"main{max-width:1100px;margin:0 auto;padding:8px 20px 40px}\n"
	"section{background:var(--bg);border:1px solid var(--line);border-radius:8px;margin:18px 0;padding:14px 20px}\n"
	"h2{font-size:18px;margin:4px 0 10px}h3{font-size:15px;margin:14px 0 6px}h4{font-size:13px;margin:10px 0 2px;color:var(--mut)}\n"
	".tiles{display:flex;flex-wrap:wrap;gap:12px;margin-bottom:10px}.tile{flex:1 1 180px;border:1px solid var(--line);"
	"border-left:5px solid var(--mut);border-radius:6px;padding:8px 12px}.tile.ok{border-left-color:var(--ok)}"
	".tile.warn{border-left-color:var(--warn)}.tile.bad{border-left-color:var(--bad)}.tile.name{flex:0 0 140px}"
	".tl{font-size:12px;color:var(--mut);text-transform:uppercase;letter-spacing:.04em}.tv{font-size:20px;font-weight:600}"
	".td{font-size:12px;color:var(--mut);overflow-wrap:anywhere}\n"
	"table{border-collapse:collapse;width:100%;font-size:13px}th,td{text-align:left;padding:4px 8px;border-bottom:1px solid var(--line);vertical-align:top}"
	"th{color:var(--mut);font-weight:600}td.n{white-space:nowrap}code{font:12px ui-monospace,Menlo,Consolas,monospace}td.reason,.reason{color:#7f1d1d;overflow-wrap:anywhere}\n"
	".state,.status{padding:1px 6px;border-radius:9px;font-size:12px;background:#e5e7eb}.state.ok,.status.ok{background:#dcfce7;color:var(--ok)}"
	".state.warn{background:#fef3c7;color:var(--warn)}.state.crit,.state.broken,.state.unknown,.status.bad{background:#fee2e2;color:var(--bad)}\n"
	"svg.chart{width:100%;height:auto;display:block;font-size:11px}svg .plot{fill:#fafafa;stroke:#d1d5db}"
	"svg .grid{stroke:#e5e7eb}svg .vgrid{stroke:#f0f0f0}svg .ytick{text-anchor:end;fill:var(--mut)}"
	"svg .xtick{text-anchor:middle;fill:var(--mut)}svg .xtitle{text-anchor:end;fill:var(--mut)}svg .ytitle{text-anchor:middle;fill:var(--mut)}\n"
	"svg .line{fill:none;stroke-width:1.6}svg .pt.warn{stroke:var(--warn)}svg .pt.crit{stroke:var(--bad)}svg .nolag{fill:var(--bad)}"
	"svg .thr{stroke-dasharray:5 4;stroke-width:1}svg .thr.warn{stroke:var(--warn)}svg .thr.crit{stroke:var(--bad)}svg .thrl{text-anchor:end;fill:var(--mut)}\n"
	"svg .bar.raw{fill:#bfdbfe}svg .bar.stored{fill:#2563eb}svg .bar.dur{fill:#7c3aed}svg .count{text-anchor:middle;fill:var(--mut)}"
	"svg .failmark{text-anchor:middle;fill:var(--bad);font-size:12px}\n"
	"svg .rtoline{fill:none;stroke:#86efac;stroke-width:1.5}svg .drill.pass circle{fill:var(--ok);stroke:#fff;stroke-width:1.5}"
	"svg .drill.fail path{stroke:var(--bad);stroke-width:3;fill:none}svg .drill.running circle{fill:#fff;stroke:var(--mut);stroke-width:2}\n"
	"svg [data-tip]{cursor:default}svg g.day:hover rect,svg .pt:hover,svg g.drill:hover{opacity:.7}\n"
	".legend{font-size:12px;color:var(--mut);margin:2px 0 8px}.key{margin-right:14px;white-space:nowrap}.key i{display:inline-block;width:12px;height:4px;margin-right:5px;vertical-align:middle}"
	".key i.nolagkey{background:var(--bad);width:4px;height:10px}.key i.passkey{background:var(--ok);width:10px;height:10px;border-radius:5px}"
	".key i.failkey{background:var(--bad);width:10px;height:3px;transform:rotate(45deg)}\n"
	".empty{color:var(--mut);font-style:italic}.note{background:#fef3c7;padding:6px 10px;border-radius:4px}\n"
	"#tip{position:absolute;display:none;pointer-events:none;background:#111827;color:#f9fafb;padding:5px 8px;border-radius:4px;font-size:12px;max-width:420px;z-index:10}\n"
	"footer{color:var(--mut);font-size:12px;text-align:center;padding:10px}\n";

/* Tooltips from data-tip; marks the page as scripted (data-report-ready). */
static const char page_js[] =
	"(function(){var t=document.getElementById('tip');"
	"function mv(ev){t.style.left=(ev.pageX+14)+'px';t.style.top=(ev.pageY+14)+'px';}"
	"function sh(ev){var s=ev.currentTarget.getAttribute('data-tip');if(!s)return;t.textContent=s;t.style.display='block';mv(ev);}"
	"function hd(){t.style.display='none';}"
	"var els=document.querySelectorAll('[data-tip]');"
	"for(var i=0;i<els.length;i++){els[i].addEventListener('mouseenter',sh);els[i].addEventListener('mousemove',mv);"
	"els[i].addEventListener('mouseleave',hd);}"
	"document.documentElement.setAttribute('data-report-ready',String(els.length));})();\n";

int report_render_html(const struct report_data *d, struct buf *out,
		       struct err *e)
{
	struct page p = { .b = out, .e = e, .rc = 0, .d = d };
	char when[40], iso[40];

	fmt_time(d->generated_at, when, sizeof(when));
	fmt_iso(d->generated_at, iso, sizeof(iso));
	putf(&p, "<!DOCTYPE html>\n<html lang=\"en\" data-generated=\"%s\">\n<head>\n"
	     "<meta charset=\"utf-8\">\n"
	     "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
	     "<meta name=\"generator\" content=\"backupctl report\">\n"
	     "<title>backupd report %s UTC</title>\n<style>\n", iso, when);
	put(&p, page_css);
	put(&p, "</style>\n</head>\n<body>\n<header><h1>backupd report</h1><p>Generated ");
	putf(&p, "%s UTC from catalog <code>", when);
	esc(&p, d->catalog);
	putf(&p, "</code>. Snapshots, drills and failures of the last %d days; "
	     "replication lag of the last %d hours. Times are UTC.</p></header>\n",
	     d->days, d->lag_hours);
	put(&p, "<nav><a href=\"#summary\">Summary</a><a href=\"#topology\">Topology</a>"
	     "<a href=\"#lag\">Lag</a><a href=\"#snapshots\">Snapshots</a>"
	     "<a href=\"#drills\">DR drills</a><a href=\"#failures\">Failures</a></nav>\n<main>\n");
	section_summary(&p);
	section_topology(&p);
	section_lag(&p);
	section_snapshots(&p);
	section_drills(&p);
	section_failures(&p);
	put(&p, "</main>\n<footer>backupd &middot; hover a mark for its figures; "
	     "every mark carries them as data-* attributes</footer>\n"
	     "<div id=\"tip\" role=\"tooltip\"></div>\n<script>\n");
	put(&p, page_js);
	put(&p, "</script>\n</body>\n</html>\n");
	return p.rc;
}
