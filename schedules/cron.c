/* Cron parser and next-fire computation (see cron.h for grammar and the DST
 * rule), with a small reader for tz database (TZif) files so time zones are
 * handled with integer arithmetic instead of TZ/tzset/mktime.
 *
 * Threading: parsing and cron_next_in touch no shared state. The zone cache
 * is guarded by one mutex; a zone is immutable once in the cache. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cron.h"
#include "mem.h"

_Static_assert(sizeof(time_t) == 8, "cron needs a 64-bit time_t");

#define DAY_S 86400
#define NONE INT64_MAX
/* Whole Gregorian cycle: a calendar pattern that does not occur in 400
 * years never occurs. */
#define CYCLE_S ((int64_t)146097 * DAY_S)
#define TIME_MIN (-62135596800LL)  /* 0001-01-01T00:00:00Z */
#define TIME_MAX 253402300799LL    /* 9999-12-31T23:59:59Z */
#define ZONE_FILE_MAX (1024 * 1024)

/* ---- civil calendar (proleptic Gregorian, H. Hinnant's algorithms) ---- */

static int64_t floor_div(int64_t a, int64_t b)
{
	int64_t q = a / b;
	return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
	z += 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	unsigned doe = (unsigned)(z - era * 146097);
	unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	unsigned mp = (5 * doy + 2) / 153;
	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static unsigned weekday_from_days(int64_t z)  /* 0 = Sunday */
{
	return (unsigned)(z - floor_div(z + 4, 7) * 7 + 4) % 7;
}

static bool is_leap(int64_t y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static unsigned month_days(int64_t y, unsigned m)
{
	static const unsigned char n[] = { 31, 28, 31, 30, 31, 30,
					   31, 31, 30, 31, 30, 31 };
	return n[m - 1] + (m == 2 && is_leap(y));
}

/* ---- parser ---- */

struct cron_field {
	const char *name;
	int lo, hi;        /* values accepted */
	int star_hi;       /* what '*' covers (day-of-week: 0-6) */
	const char *const *names;  /* names[i] is value name_base + i */
	int name_base;
};

static const char *const month_names[] = {
	"jan", "feb", "mar", "apr", "may", "jun",
	"jul", "aug", "sep", "oct", "nov", "dec", NULL
};
static const char *const wday_names[] = {
	"sun", "mon", "tue", "wed", "thu", "fri", "sat", NULL
};

enum { F_MIN, F_HOUR, F_MDAY, F_MON, F_WDAY, F_COUNT };

static const struct cron_field cron_fields[F_COUNT] = {
	[F_MIN] = { "minute", 0, 59, 59, NULL, 0 },
	[F_HOUR] = { "hour", 0, 23, 23, NULL, 0 },
	[F_MDAY] = { "day-of-month", 1, 31, 31, NULL, 0 },
	[F_MON] = { "month", 1, 12, 12, month_names, 1 },
	[F_WDAY] = { "day-of-week", 0, 7, 6, wday_names, 0 },
};

/* The expression as it may appear in a one-line message. */
static void cron_quote(const char *s, char *out, size_t n)
{
	size_t i, o = 0, max = 64;

	for (i = 0; s[i] && o + 4 < n; i++) {
		if (i == max) {
			memcpy(out + o, "...", 3);
			o += 3;
			break;
		}
		unsigned char ch = (unsigned char)s[i];
		out[o++] = (ch >= 0x20 && ch < 0x7f) ? (char)ch : '?';
	}
	out[o] = '\0';
}

/* Shows a part of the expression (a field or a token) the same way. */
static void cron_quote_n(const char *s, size_t len, char *out, size_t n)
{
	char tmp[CRON_EXPR_MAX + 1];
	if (len > CRON_EXPR_MAX)
		len = CRON_EXPR_MAX;
	memcpy(tmp, s, len);
	tmp[len] = '\0';
	cron_quote(tmp, out, n);
}

struct parse_ctx {
	const char *expr;
	char q[80];          /* quoted expression for messages */
	struct err *e;
};

__attribute__((format(printf, 2, 3)))
static int perr(struct parse_ctx *x, const char *fmt, ...)
{
	char msg[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return err_set(x->e, ERR_CONFIG, "cron '%s': %s", x->q, msg);
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static char lower(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

/* Reads a number or a name at *p (within [*p, end)) into *v, range-checked.
 * Returns 0, ERR_CONFIG, or 1 when *p starts neither. */
static int parse_value(struct parse_ctx *x, const struct cron_field *f,
		       const char **p, const char *end, int *v)
{
	const char *s = *p, *t = s;
	char tq[80];

	if (t < end && is_digit(*t)) {
		long n = 0;
		while (t < end && is_digit(*t)) {
			if (n < 1000000)
				n = n * 10 + (*t - '0');
			t++;
		}
		if (n < f->lo || n > f->hi) {
			cron_quote_n(s, (size_t)(t - s), tq, sizeof(tq));
			return perr(x, "%s %s is out of range %d-%d", f->name,
				    tq, f->lo, f->hi);
		}
		*v = (int)n;
		*p = t;
		return 0;
	}
	if (t < end && is_alpha(*t)) {
		while (t < end && is_alpha(*t))
			t++;
		cron_quote_n(s, (size_t)(t - s), tq, sizeof(tq));
		if (!f->names)
			return perr(x, "%s '%s' is not a number", f->name, tq);
		if (t - s == 3) {
			for (int i = 0; f->names[i]; i++) {
				if (lower(s[0]) == f->names[i][0] &&
				    lower(s[1]) == f->names[i][1] &&
				    lower(s[2]) == f->names[i][2]) {
					*v = i + f->name_base;
					*p = t;
					return 0;
				}
			}
		}
		return perr(x, "%s '%s' is not a %s name", f->name, tq,
			    f->names == month_names ? "month" : "weekday");
	}
	return 1;  /* nothing there: the caller says what it expected */
}

static int unexpected(struct parse_ctx *x, const struct cron_field *f,
		      const char *field, size_t flen, const char *at,
		      const char *end, const char *what)
{
	char fq[80];

	cron_quote_n(field, flen, fq, sizeof(fq));
	if (at >= end)
		return perr(x, "%s '%s' ends early: expected %s", f->name, fq,
			    what);
	unsigned char ch = (unsigned char)*at;
	if (ch >= 0x20 && ch < 0x7f)
		return perr(x, "%s '%s' has unexpected '%c' where %s was expected",
			    f->name, fq, ch, what);
	return perr(x, "%s '%s' has unexpected byte 0x%02x where %s was expected",
		    f->name, fq, ch, what);
}

/* One field: a comma list of *, N, N-M, * / S, N-M/S. */
static int parse_field(struct parse_ctx *x, int fi, const char *s, size_t n,
		       uint64_t *bits, bool *star)
{
	const struct cron_field *f = &cron_fields[fi];
	const char *p = s, *end = s + n;
	int rc;

	*bits = 0;
	*star = n > 0 && s[0] == '*';
	for (;;) {
		int lo, hi, step = 1;
		bool ranged = false;
		const char *item = p;

		if (p >= end || *p == ',') {
			char fq[80];
			cron_quote_n(s, n, fq, sizeof(fq));
			return perr(x, "%s '%s' has an empty list element",
				    f->name, fq);
		}
		if (*p == '*') {
			lo = f->lo;
			hi = f->star_hi;
			ranged = true;
			p++;
		} else {
			if ((rc = parse_value(x, f, &p, end, &lo)) != 0)
				return rc < 0 ? rc : unexpected(x, f, s, n, p, end,
						"a number, a name or '*'");
			hi = lo;
			if (p < end && *p == '-') {
				p++;
				if ((rc = parse_value(x, f, &p, end, &hi)) != 0)
					return rc < 0 ? rc : unexpected(x, f, s, n,
							p, end, "a number or a name");
				if (hi < lo) {
					char iq[80];
					cron_quote_n(item, (size_t)(p - item), iq,
						     sizeof(iq));
					return perr(x, "%s range %s is reversed",
						    f->name, iq);
				}
				ranged = true;
			}
		}
		if (p < end && *p == '/') {
			const char *d = ++p;
			long sv = 0;
			int max = f->star_hi - f->lo + 1;

			while (p < end && is_digit(*p)) {
				if (sv < 1000000)
					sv = sv * 10 + (*p - '0');
				p++;
			}
			if (p == d)
				return unexpected(x, f, s, n, p, end, "a step number");
			if (!ranged) {
				char iq[80];
				cron_quote_n(item, (size_t)(p - item), iq, sizeof(iq));
				return perr(x, "%s '%s': a step needs a range or '*' "
					    "(e.g. %d-%d/%ld)", f->name, iq, lo, f->hi,
					    sv);
			}
			if (sv < 1 || sv > max) {
				char dq[80];
				cron_quote_n(d, (size_t)(p - d), dq, sizeof(dq));
				return perr(x, "%s step %s is out of range 1-%d",
					    f->name, dq, max);
			}
			step = (int)sv;
		}
		if (p < end && *p != ',')
			return unexpected(x, f, s, n, p, end, "',' or the field's end");
		for (int v = lo; v <= hi; v += step)
			*bits |= (uint64_t)1 << (fi == F_WDAY && v == 7 ? 0 : v);
		if (p >= end)
			return 0;
		p++;  /* ',' */
	}
}

struct cron_alias {
	const char *name;
	const char *fields;
};

static const struct cron_alias cron_aliases[] = {
	{ "@yearly", "0 0 1 1 *" },
	{ "@annually", "0 0 1 1 *" },
	{ "@monthly", "0 0 1 * *" },
	{ "@weekly", "0 0 * * 0" },
	{ "@daily", "0 0 * * *" },
	{ "@midnight", "0 0 * * *" },
	{ "@hourly", "0 * * * *" },
	{ NULL, NULL },
};

static bool token_is(const char *s, size_t n, const char *word)
{
	size_t i;
	for (i = 0; i < n && word[i]; i++)
		if (lower(s[i]) != word[i])
			return false;
	return i == n && !word[i];
}

static int parse_every(struct parse_ctx *x, const char *s, size_t n,
		       int64_t *out)
{
	static const char units[] = "dhms";
	static const int64_t unit_s[] = { 86400, 3600, 60, 1 };
	const char *p = s, *end = s + n;
	int64_t total = 0;
	int last = -1;
	char dq[80];

	cron_quote_n(s, n, dq, sizeof(dq));
	if (n == 0)
		return perr(x, "@every needs a duration such as 30s, 5m or 1h30m");
	while (p < end) {
		int64_t v = 0;
		const char *d = p;
		const char *u;

		while (p < end && is_digit(*p)) {
			if (v < 100000000)
				v = v * 10 + (*p - '0');
			p++;
		}
		if (p == d || p >= end || !(u = strchr(units, lower(*p))) ||
		    !*p)
			return perr(x, "@every duration '%s' is not valid "
				    "(use e.g. 30s, 5m, 1h30m, 2d)", dq);
		if ((int)(u - units) <= last)
			return perr(x, "@every duration '%s' is not valid: give "
				    "each of d, h, m, s at most once, in that order",
				    dq);
		last = (int)(u - units);
		total += v * unit_s[last];
		if (total > CRON_EVERY_MAX_S)
			break;
		p++;
	}
	if (total < CRON_EVERY_MIN_S || total > CRON_EVERY_MAX_S)
		return perr(x, "@every duration '%s' is out of range 1s-31d", dq);
	*out = total;
	return 0;
}

/* A day-of-month that exists in no selected month (0 0 30 2 *) would make
 * every search run through the whole 400-year cycle: refuse it here. With
 * '*' in day-of-month, the set holds day 1; with both days restricted, any
 * weekday matches somewhere; so only this case can never fire. */
static bool cron_can_fire(const struct cron *c)
{
	if (c->mday_star || !c->wday_star)
		return true;
	for (unsigned m = 1; m <= 12; m++) {
		if (!(c->months & (1u << m)))
			continue;
		unsigned max = m == 2 ? 29 : month_days(2001, m);
		for (unsigned d = 1; d <= max; d++)
			if (c->mdays & (1u << d))
				return true;
	}
	return false;
}

static int parse_fields(struct parse_ctx *x, const char *text,
			struct cron *c)
{
	const char *tok[F_COUNT];
	size_t len[F_COUNT], n = 0;
	const char *p = text;
	uint64_t bits[F_COUNT];
	bool star[F_COUNT];
	int rc;

	for (;;) {
		while (is_blank(*p))
			p++;
		if (!*p)
			break;
		const char *t = p;
		while (*p && !is_blank(*p))
			p++;
		if (n < F_COUNT) {
			tok[n] = t;
			len[n] = (size_t)(p - t);
		}
		n++;
	}
	if (n != F_COUNT)
		return perr(x, "expected 5 fields (minute hour day-of-month "
			    "month day-of-week), found %zu", n);
	for (int i = 0; i < F_COUNT; i++)
		if ((rc = parse_field(x, i, tok[i], len[i], &bits[i],
				      &star[i])) != 0)
			return rc;
	c->minutes = bits[F_MIN];
	c->hours = (uint32_t)bits[F_HOUR];
	c->mdays = (uint32_t)bits[F_MDAY];
	c->months = (uint16_t)bits[F_MON];
	c->wdays = (uint8_t)bits[F_WDAY];
	c->mday_star = star[F_MDAY];
	c->wday_star = star[F_WDAY];
	c->wild = star[F_MIN] || star[F_HOUR];
	if (!cron_can_fire(c))
		return perr(x, "never fires: no selected month has any of "
			    "those days of the month");
	return 0;
}

int cron_parse(const char *expr, struct cron *out, struct err *e)
{
	struct parse_ctx x = { .expr = expr, .e = e };
	struct cron c;
	const char *p;
	size_t len;
	int rc;

	memset(&c, 0, sizeof(c));
	if (!expr)
		expr = x.expr = "";
	cron_quote(expr, x.q, sizeof(x.q));
	len = strlen(expr);
	if (len > CRON_EXPR_MAX)
		return perr(&x, "too long (%zu bytes, at most %d)", len,
			    CRON_EXPR_MAX);
	memcpy(c.expr, expr, len + 1);
	p = expr;
	while (is_blank(*p))
		p++;
	if (!*p)
		return perr(&x, "empty expression");
	if (*p == '@') {
		const char *t = p, *rest;
		size_t tn;
		while (*p && !is_blank(*p))
			p++;
		tn = (size_t)(p - t);
		while (is_blank(*p))
			p++;
		rest = p;
		if (token_is(t, tn, "@every")) {
			const char *d = rest;
			while (*p && !is_blank(*p))
				p++;
			size_t dn = (size_t)(p - d);
			while (is_blank(*p))
				p++;
			if (*p)
				return perr(&x, "unexpected text after @every "
					    "duration");
			if ((rc = parse_every(&x, d, dn, &c.every_s)) != 0)
				return rc;
			*out = c;
			return 0;
		}
		for (const struct cron_alias *a = cron_aliases; a->name; a++) {
			if (!token_is(t, tn, a->name))
				continue;
			if (*rest)
				return perr(&x, "unexpected text after %s",
					    a->name);
			if ((rc = parse_fields(&x, a->fields, &c)) != 0)
				return rc;
			*out = c;
			return 0;
		}
		char aq[80];
		cron_quote_n(t, tn, aq, sizeof(aq));
		if (token_is(t, tn, "@reboot"))
			return perr(&x, "@reboot is not supported");
		return perr(&x, "unknown alias '%s' (use @yearly, @monthly, "
			    "@weekly, @daily, @hourly or @every DURATION)", aq);
	}
	if ((rc = parse_fields(&x, expr, &c)) != 0)
		return rc;
	*out = c;
	return 0;
}

/* ---- time zones ---- */

/* A POSIX TZ rule date: Jn (1-365, no Feb 29), n (0-365), Mm.w.d. */
struct tz_date {
	char kind;          /* 'J', 'N' or 'M' */
	int n, m, w, d;
	int32_t time;       /* seconds after local midnight, may be <0 or >24h */
};

struct tz_rule {
	int32_t std_off;    /* seconds east of UTC */
	int32_t dst_off;
	bool has_dst;
	struct tz_date start, end;
};

struct cron_zone {
	char *name;
	size_t n;           /* transitions */
	int64_t *at;        /* instants, strictly increasing */
	int32_t *off;       /* offset from at[i] on */
	int32_t *suf_min;   /* min of off[i..] and of the rule's offsets */
	int32_t *suf_max;
	int32_t off0;       /* before the first transition */
	bool has_rule;      /* footer rule governs from at[n-1] on */
	struct tz_rule rule;
};

static int64_t tz_date_day(const struct tz_date *d, int64_t y)
{
	int64_t jan1 = days_from_civil(y, 1, 1);

	switch (d->kind) {
	case 'J':
		return jan1 + d->n - 1 + (is_leap(y) && d->n >= 60);
	case 'N':
		return jan1 + d->n;
	default: {
		int64_t first = days_from_civil(y, (unsigned)d->m, 1);
		int64_t day = first + ((d->d - (int)weekday_from_days(first) + 7) % 7)
			      + 7 * (d->w - 1);
		int64_t last = first + month_days(y, (unsigned)d->m) - 1;
		while (day > last)
			day -= 7;
		return day;
	}
	}
}

static int64_t rule_start(const struct tz_rule *r, int64_t y)
{
	return tz_date_day(&r->start, y) * DAY_S + r->start.time - r->std_off;
}

static int64_t rule_end(const struct tz_rule *r, int64_t y)
{
	return tz_date_day(&r->end, y) * DAY_S + r->end.time - r->dst_off;
}

static int64_t year_of(int64_t t)
{
	int64_t y;
	unsigned m, d;
	civil_from_days(floor_div(t, DAY_S), &y, &m, &d);
	return y;
}

static int32_t rule_utoff(const struct tz_rule *r, int64_t t)
{
	if (!r->has_dst)
		return r->std_off;
	int64_t y = year_of(t + r->std_off);
	int64_t s = rule_start(r, y), en = rule_end(r, y);
	bool dst = s < en ? (s <= t && t < en) : !(en <= t && t < s);
	return dst ? r->dst_off : r->std_off;
}

/* The first rule instant after t; instants where nothing changes may be
 * returned too (callers only need every real change to be among them). */
static int64_t rule_next(const struct tz_rule *r, int64_t t)
{
	int64_t best = NONE;

	if (!r->has_dst)
		return NONE;
	int64_t y = year_of(t + r->std_off);
	for (int64_t yy = y - 1; yy <= y + 2; yy++) {
		int64_t a = rule_start(r, yy), b = rule_end(r, yy);
		if (a > t && a < best)
			best = a;
		if (b > t && b < best)
			best = b;
	}
	return best;
}

int32_t cron_zone_utoff(const struct cron_zone *z, time_t t)
{
	if (z->n == 0)
		return z->has_rule ? rule_utoff(&z->rule, t) : z->off0;
	if (t < z->at[0])
		return z->off0;
	if (t >= z->at[z->n - 1])
		return z->has_rule ? rule_utoff(&z->rule, t) : z->off[z->n - 1];
	size_t lo = 0, hi = z->n - 1;  /* at[lo] <= t < at[hi] */
	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;
		if (z->at[mid] <= t)
			lo = mid;
		else
			hi = mid;
	}
	return z->off[lo];
}

static int64_t zone_next(const struct cron_zone *z, int64_t t)
{
	if (z->n > 0 && t < z->at[z->n - 1]) {
		size_t lo = 0, hi = z->n - 1;  /* first at[i] > t */
		if (z->at[0] > t)
			return z->at[0];
		while (hi - lo > 1) {
			size_t mid = lo + (hi - lo) / 2;
			if (z->at[mid] <= t)
				lo = mid;
			else
				hi = mid;
		}
		return z->at[hi];
	}
	return z->has_rule ? rule_next(&z->rule, t) : NONE;
}

/* Bounds of the offsets in effect at t or later. */
static void zone_bounds(const struct cron_zone *z, int64_t t, int32_t *mn,
			int32_t *mx)
{
	int32_t a = z->off0, b = z->off0;

	if (z->n > 0) {
		size_t i = 0;
		if (t >= z->at[0]) {
			size_t lo = 0, hi = z->n;  /* last at[i] <= t */
			while (hi - lo > 1) {
				size_t mid = lo + (hi - lo) / 2;
				if (z->at[mid] <= t)
					lo = mid;
				else
					hi = mid;
			}
			i = lo;
			a = b = z->off[i];
		}
		if (z->suf_min[i] < a)
			a = z->suf_min[i];
		if (z->suf_max[i] > b)
			b = z->suf_max[i];
	}
	if (z->has_rule) {
		int32_t o[2] = { z->rule.std_off,
				 z->rule.has_dst ? z->rule.dst_off : z->rule.std_off };
		for (int k = 0; k < 2; k++) {
			if (o[k] < a)
				a = o[k];
			if (o[k] > b)
				b = o[k];
		}
	}
	*mn = a;
	*mx = b;
}

/* ---- TZif reading (RFC 8536) ---- */

struct rd {
	const unsigned char *p, *end;
};

static bool rd_has(const struct rd *r, size_t n)
{
	return (size_t)(r->end - r->p) >= n;
}

static uint32_t be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

static int64_t be64(const unsigned char *p)
{
	return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

/* POSIX TZ string pieces. Each returns false on a syntax error. */
static bool tzs_name(const char **s)
{
	const char *p = *s;
	if (*p == '<') {
		p++;
		while (*p && *p != '>')
			p++;
		if (*p != '>' || p - *s < 4)
			return false;
		*s = p + 1;
		return true;
	}
	while (is_alpha(*p))
		p++;
	if (p - *s < 3)
		return false;
	*s = p;
	return true;
}

/* [+-]hh[:mm[:ss]] with hh up to max_h. */
static bool tzs_hms(const char **s, int max_h, int32_t *out)
{
	const char *p = *s;
	int sign = 1;
	long h = 0, m = 0, sec = 0;

	if (*p == '+' || *p == '-')
		sign = *p++ == '-' ? -1 : 1;
	if (!is_digit(*p))
		return false;
	while (is_digit(*p) && h <= max_h)
		h = h * 10 + (*p++ - '0');
	if (h > max_h)
		return false;
	if (*p == ':') {
		p++;
		if (!is_digit(p[0]) || !is_digit(p[1]))
			return false;
		m = (p[0] - '0') * 10 + (p[1] - '0');
		p += 2;
		if (*p == ':') {
			p++;
			if (!is_digit(p[0]) || !is_digit(p[1]))
				return false;
			sec = (p[0] - '0') * 10 + (p[1] - '0');
			p += 2;
		}
	}
	if (m > 59 || sec > 59)
		return false;
	*out = (int32_t)(sign * (h * 3600 + m * 60 + sec));
	*s = p;
	return true;
}

static bool tzs_num(const char **s, int lo, int hi, int *out)
{
	const char *p = *s;
	long v = 0;
	if (!is_digit(*p))
		return false;
	while (is_digit(*p) && v <= hi)
		v = v * 10 + (*p++ - '0');
	if (v < lo || v > hi)
		return false;
	*out = (int)v;
	*s = p;
	return true;
}

static bool tzs_date(const char **s, struct tz_date *d)
{
	const char *p = *s;

	d->time = 2 * 3600;
	if (*p == 'J') {
		p++;
		d->kind = 'J';
		if (!tzs_num(&p, 1, 365, &d->n))
			return false;
	} else if (*p == 'M') {
		p++;
		d->kind = 'M';
		if (!tzs_num(&p, 1, 12, &d->m) || *p++ != '.' ||
		    !tzs_num(&p, 1, 5, &d->w) || *p++ != '.' ||
		    !tzs_num(&p, 0, 6, &d->d))
			return false;
	} else {
		d->kind = 'N';
		if (!tzs_num(&p, 0, 365, &d->n))
			return false;
	}
	if (*p == '/') {
		p++;
		if (!tzs_hms(&p, 167, &d->time))
			return false;
	}
	*s = p;
	return true;
}

/* "CET-1CEST,M3.5.0,M10.5.0/3" → rule. Offsets in TZ strings are west of
 * UTC, hence the negations. */
static bool tz_parse_posix(const char *s, struct tz_rule *r)
{
	int32_t o;

	memset(r, 0, sizeof(*r));
	if (!tzs_name(&s) || !tzs_hms(&s, 24, &o))
		return false;
	r->std_off = -o;
	if (!*s)
		return true;
	if (!tzs_name(&s))
		return false;
	r->has_dst = true;
	r->dst_off = r->std_off + 3600;
	if (*s && *s != ',') {
		if (!tzs_hms(&s, 24, &o))
			return false;
		r->dst_off = -o;
	}
	if (!*s) {  /* POSIX default: US rules */
		r->start = (struct tz_date){ 'M', 0, 3, 2, 0, 7200 };
		r->end = (struct tz_date){ 'M', 0, 11, 1, 0, 7200 };
		return true;
	}
	if (*s++ != ',' || !tzs_date(&s, &r->start) || *s++ != ',' ||
	    !tzs_date(&s, &r->end))
		return false;
	return *s == '\0';
}

static void zone_free(struct cron_zone *z)
{
	if (!z)
		return;
	free(z->name);
	free(z->at);
	free(z->off);
	free(z->suf_min);
	free(z->suf_max);
	free(z);
}

static bool utoff_ok(int64_t o)
{
	return o >= -89999 && o <= 93599;  /* RFC 8536: within ±25 h */
}

/* Parses a TZif file image into z (fields zeroed by the caller). */
static int tzif_parse(const unsigned char *buf, size_t len,
		      struct cron_zone *z, const char *path, struct err *e)
{
	struct rd r = { buf, buf + len };
	uint32_t cnt[6];
	int version;
	size_t tsize = 4;

#define BAD(why) err_set(e, ERR_CONFIG, "time zone file '%s' is not valid: %s", \
			 path, why)
	for (int pass = 0; pass < 2; pass++) {
		if (!rd_has(&r, 44) || memcmp(r.p, "TZif", 4) != 0)
			return BAD("no TZif header");
		version = r.p[4];
		for (int i = 0; i < 6; i++)
			cnt[i] = be32(r.p + 20 + 4 * i);
		r.p += 44;
		uint32_t isut = cnt[0], isstd = cnt[1], leap = cnt[2],
			 timecnt = cnt[3], typecnt = cnt[4], charcnt = cnt[5];
		if (leap)
			return err_set(e, ERR_CONFIG, "time zone file '%s' counts "
				       "leap seconds, which cron does not support",
				       path);
		if (typecnt == 0 || typecnt > 256 || timecnt > 100000 ||
		    (isut && isut != typecnt) || (isstd && isstd != typecnt))
			return BAD("bad counts");
		size_t need = (size_t)timecnt * (tsize + 1) + (size_t)typecnt * 6 +
			      charcnt + isstd + isut;
		if (!rd_has(&r, need))
			return BAD("truncated");
		if (pass == 0 && version >= '2') {
			r.p += need;  /* skip the 32-bit block */
			tsize = 8;
			continue;
		}
		const unsigned char *times = r.p;
		const unsigned char *idx = times + (size_t)timecnt * tsize;
		const unsigned char *types = idx + timecnt;
		int32_t toff[256];
		for (uint32_t i = 0; i < typecnt; i++) {
			int64_t o = (int32_t)be32(types + 6 * i);
			if (!utoff_ok(o) || types[6 * i + 4] > 1)
				return BAD("bad time type");
			toff[i] = (int32_t)o;
		}
		z->n = timecnt;
		z->at = xcalloc(timecnt ? timecnt : 1, sizeof(*z->at));
		z->off = xcalloc(timecnt ? timecnt : 1, sizeof(*z->off));
		for (uint32_t i = 0; i < timecnt; i++) {
			z->at[i] = tsize == 8 ? be64(times + 8 * i)
					      : (int32_t)be32(times + 4 * i);
			if (idx[i] >= typecnt)
				return BAD("bad type index");
			if (i && z->at[i] <= z->at[i - 1])
				return BAD("transitions out of order");
			z->off[i] = toff[idx[i]];
		}
		z->off0 = toff[0];
		r.p += need;
		break;
	}
	if (version >= '2') {
		/* Footer: "\n" TZ string "\n"; empty means no rule. */
		const unsigned char *nl;
		if (!rd_has(&r, 2) || r.p[0] != '\n' ||
		    !(nl = memchr(r.p + 1, '\n', (size_t)(r.end - r.p - 1))))
			return BAD("no footer");
		size_t fl = (size_t)(nl - r.p - 1);
		if (fl > 0) {
			char tz[128];
			if (fl >= sizeof(tz))
				return BAD("footer too long");
			memcpy(tz, r.p + 1, fl);
			tz[fl] = '\0';
			if (!tz_parse_posix(tz, &z->rule))
				return BAD("footer TZ string not understood");
			if (!utoff_ok(z->rule.std_off) || !utoff_ok(z->rule.dst_off))
				return BAD("footer offset out of range");
			z->has_rule = true;
		}
	}
#undef BAD
	size_t n = z->n ? z->n : 1;
	z->suf_min = xcalloc(n, sizeof(int32_t));
	z->suf_max = xcalloc(n, sizeof(int32_t));
	if (z->n) {
		z->suf_min[z->n - 1] = z->suf_max[z->n - 1] = z->off[z->n - 1];
		for (size_t i = z->n - 1; i-- > 0;) {
			z->suf_min[i] = z->off[i] < z->suf_min[i + 1] ? z->off[i]
								       : z->suf_min[i + 1];
			z->suf_max[i] = z->off[i] > z->suf_max[i + 1] ? z->off[i]
								       : z->suf_max[i + 1];
		}
	}
	return 0;
}

static bool zone_name_ok(const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n > 200 || name[0] == '/' || strstr(name, ".."))
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		if (!(is_alpha(c) || is_digit(c) || c == '_' || c == '-' ||
		      c == '+' || c == '/' || c == '.'))
			return false;
	}
	return true;
}

static int zone_load(const char *name, struct cron_zone **out, struct err *e)
{
	char path[512];
	struct stat st;
	unsigned char *buf;
	size_t got = 0;
	int fd, rc;

	snprintf(path, sizeof(path), CRON_ZONEINFO "/%s", name);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return err_set_errno(e, ERR_CONFIG, errno,
				     "unable to open time zone '%s'", path);
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
	    st.st_size > ZONE_FILE_MAX) {
		close(fd);
		return err_set(e, ERR_CONFIG, "time zone '%s' is not a zone file",
			       path);
	}
	buf = xmalloc((size_t)st.st_size + 1);
	while (got < (size_t)st.st_size) {
		ssize_t k = read(fd, buf + got, (size_t)st.st_size - got);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			rc = k < 0 ? err_set_errno(e, ERR_CONFIG, errno,
						   "unable to read '%s'", path)
				   : err_set(e, ERR_CONFIG, "unable to read '%s': "
					     "file shrank", path);
			free(buf);
			close(fd);
			return rc;
		}
		got += (size_t)k;
	}
	close(fd);
	struct cron_zone *z = xcalloc(1, sizeof(*z));
	rc = tzif_parse(buf, got, z, path, e);
	free(buf);
	if (rc) {
		zone_free(z);
		return rc;
	}
	z->name = xstrdup(name);
	*out = z;
	return 0;
}

static struct cron_zone zone_utc = { .name = (char *)"UTC" };

static struct {
	pthread_mutex_t lock;
	struct cron_zone *z[CRON_ZONE_CACHE_MAX];
	size_t n;
} zone_cache = { .lock = PTHREAD_MUTEX_INITIALIZER };

int cron_zone_get(const char *name, const struct cron_zone **out,
		  struct err *e)
{
	struct cron_zone *z = NULL;
	int rc = 0;

	if (!name || !*name) {
		*out = &zone_utc;
		return 0;
	}
	if (!zone_name_ok(name))
		return err_set(e, ERR_CONFIG, "time zone '%.64s' is not a valid "
			       "zone name (e.g. Europe/Berlin)", name);
	pthread_mutex_lock(&zone_cache.lock);
	for (size_t i = 0; i < zone_cache.n; i++) {
		if (strcmp(zone_cache.z[i]->name, name) == 0) {
			*out = zone_cache.z[i];
			goto out;
		}
	}
	if (zone_cache.n >= CRON_ZONE_CACHE_MAX) {
		rc = err_set(e, ERR_CONFIG, "time zone '%s': too many distinct "
			     "zones (at most %d)", name, CRON_ZONE_CACHE_MAX);
		goto out;
	}
	/* Loading under the lock: rare, and no caller waits on a network. */
	if ((rc = zone_load(name, &z, e)) == 0) {
		zone_cache.z[zone_cache.n++] = z;
		*out = z;
	}
out:
	pthread_mutex_unlock(&zone_cache.lock);
	return rc;
}

const char *cron_zone_name(const struct cron_zone *z)
{
	return z->name;
}

void cron_zone_cache_clear(void)
{
	pthread_mutex_lock(&zone_cache.lock);
	for (size_t i = 0; i < zone_cache.n; i++)
		zone_free(zone_cache.z[i]);
	zone_cache.n = 0;
	pthread_mutex_unlock(&zone_cache.lock);
}

/* ---- next fire ---- */

static bool cron_day_matches(const struct cron *c, unsigned mday,
			     unsigned wday)
{
	bool dm = c->mdays & (1u << mday), wm = c->wdays & (1u << wday);
	/* Vixie: a '*' in either field means both must match (the '*' one
	 * always does); two restricted fields match if either does. */
	if (c->mday_star || c->wday_star)
		return dm && wm;
	return dm || wm;
}

static int next_bit(uint64_t mask, int from, int max)
{
	for (int i = from; i <= max; i++)
		if (mask & ((uint64_t)1 << i))
			return i;
	return -1;
}

/* The first local wall-clock minute >= l (a minute boundary, seconds in
 * "local epoch" terms) that matches, or NONE past limit. */
static int64_t next_local(const struct cron *c, int64_t l, int64_t limit)
{
	while (l <= limit) {
		int64_t days = floor_div(l, DAY_S), y;
		int sod = (int)(l - days * DAY_S);
		unsigned m, d;

		civil_from_days(days, &y, &m, &d);
		if (!(c->months & (1u << m))) {
			l = days_from_civil(m == 12 ? y + 1 : y,
					    m == 12 ? 1 : m + 1, 1) * DAY_S;
			continue;
		}
		if (!cron_day_matches(c, d, weekday_from_days(days))) {
			l = (days + 1) * DAY_S;
			continue;
		}
		int h = next_bit(c->hours, sod / 3600, 23);
		if (h < 0) {
			l = (days + 1) * DAY_S;
			continue;
		}
		int mi = h == sod / 3600 ? (sod % 3600) / 60 : 0;
		mi = next_bit(c->minutes, mi, 59);
		if (mi < 0) {
			l = days * DAY_S + (int64_t)(h + 1) * 3600;
			continue;
		}
		return days * DAY_S + (int64_t)h * 3600 + mi * 60;
	}
	return NONE;
}

/* UTC instants whose local time is l, ascending, within the window the
 * offset bounds allow; when there are none, *gap is the first instant after
 * the spring-forward gap l falls into (or NONE). */
static int zone_solve(const struct cron_zone *z, int64_t l, int32_t mn,
		      int32_t mx, int64_t sol[4], int64_t *gap)
{
	int64_t u = l - mx, last = l - mn;
	int n = 0;

	*gap = NONE;
	while (u <= last) {
		int32_t o = cron_zone_utoff(z, u);
		int64_t nx = zone_next(z, u);
		int64_t s = l - o;

		if (s >= u && s < nx) {
			if (n < 4)
				sol[n++] = s;
		} else if (s >= nx && nx != NONE && *gap == NONE &&
			   nx + cron_zone_utoff(z, nx) > l) {
			*gap = nx;
		}
		if (nx == NONE)
			break;
		u = nx;
	}
	return n;
}

int cron_next_in(const struct cron *c, const struct cron_zone *z,
		 time_t after, time_t *next, struct err *e)
{
	int32_t mn, mx;
	int64_t best = NONE, l, limit;

	if (after < TIME_MIN || after > TIME_MAX) {
		char q[80];
		cron_quote(c->expr, q, sizeof(q));
		return err_set(e, ERR_INTERNAL, "cron '%s': time %lld is out "
			       "of range", q, (long long)after);
	}
	if (c->every_s > 0) {
		*next = after + c->every_s;
		return 0;
	}
	/* Offsets of the last two days count too: the first occurrence of a
	 * repeated wall-clock time may lie before `after`. */
	zone_bounds(z, after - 2 * DAY_S, &mn, &mx);
	l = (floor_div(after + mn, 60) + 1) * 60;
	limit = l + CYCLE_S + 2 * DAY_S;
	for (;;) {
		int64_t sol[4], gap, cand = NONE;
		int n;

		l = next_local(c, l, limit);
		if (l == NONE || (best != NONE && l - mx > best))
			break;
		n = zone_solve(z, l, mn, mx, sol, &gap);
		if (n > 0) {
			if (!c->wild) {
				/* Fires at the first occurrence only. */
				if (sol[0] > after)
					cand = sol[0];
			} else {
				for (int i = 0; i < n && cand == NONE; i++)
					if (sol[i] > after)
						cand = sol[i];
			}
		} else if (!c->wild && gap != NONE && gap > after) {
			cand = gap;
		}
		if (cand < best)
			best = cand;
		l += 60;
	}
	if (best == NONE) {
		char q[80];
		cron_quote(c->expr, q, sizeof(q));
		return err_set(e, ERR_CONFIG, "cron '%s': never fires", q);
	}
	*next = best;
	return 0;
}

int cron_next(const struct cron *c, const char *tz, time_t after,
	      time_t *next, struct err *e)
{
	const struct cron_zone *z;
	int rc;

	if (c->every_s > 0)
		return cron_next_in(c, &zone_utc, after, next, e);
	if ((rc = cron_zone_get(tz, &z, e)) != 0)
		return rc;
	return cron_next_in(c, z, after, next, e);
}
