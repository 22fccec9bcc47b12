/* Slack Block Kit messages for outbox events (see slack.h). Each known
 * event kind has a line in `kinds` with its title and a function writing
 * the summary, the key figure and what to do; payload keys no handler used
 * still become fields, so new payload fields and unknown kinds show up.
 * Every piece of outside text passes through esc(): Slack's & < > escaped,
 * invalid UTF-8 replaced, length capped to Slack's limits.
 * Pure code, no I/O; safe from any thread. */
#include "slack.h"

#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "mem.h"

#define MSG_BUF_MAX (256u * 1024u)
#define USED_MAX 32
#define LIST_SHOW 5       /* array items shown before "+N more" */
#define ERROR_MAX 1200    /* characters of an error message shown */
#define VALUE_MAX 300     /* characters of one generic field value */
#define BRIEF_MAX 300     /* characters of the fallback's detail */
#define EXTRA_MAX 20      /* generic keys shown beyond the fields */

struct msg {
	const struct catalog_event *ev;
	json_t *p;              /* payload object, owned */
	const char *raw_payload; /* set when the payload was not a JSON object */
	const char *cluster;    /* NULL when none */
	const char *server;     /* event's server, else the payload's */
	const char *emoji;      /* Slack emoji code */
	const char *title;      /* ours, never outside text */
	struct buf title_buf;   /* for titles built from the kind */
	struct buf summary;     /* mrkdwn, escaped */
	struct buf advice;        /* mrkdwn, escaped; empty: nothing to do */
	struct buf brief;       /* the fallback's detail, escaped */
	struct buf extra;       /* generic keys beyond SLACK_FIELDS_MAX */
	json_t *fields;         /* mrkdwn text objects */
	const char *used[USED_MAX];
	size_t n_used;
	struct err *e;
};

/* ---- text helpers ---- */

/* Length of the valid UTF-8 sequence at s (n bytes left), 0 if invalid. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	unsigned char c = s[0], lo = 0x80, hi = 0xbf;
	size_t len;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		len = 2;
	else if (c >= 0xe0 && c <= 0xef)
		len = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		len = 4;
	else
		return 0;
	if (n < len)
		return 0;
	if (c == 0xe0)
		lo = 0xa0;
	else if (c == 0xed)
		hi = 0x9f;
	else if (c == 0xf0)
		lo = 0x90;
	else if (c == 0xf4)
		hi = 0x8f;
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return len;
}

/* Appends s escaped for Slack; in_code also turns backticks into quotes
 * so outside text cannot end a code span or block early. */
static int esc_mode(struct buf *out, const char *s, size_t max_chars,
		    bool in_code, struct err *e)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n, i = 0, chars = 0;
	int rc = 0;

	if (!s)
		return 0;
	n = strlen(s);
	while (i < n && rc == 0) {
		unsigned char c = p[i];
		size_t k;

		if (max_chars && chars == max_chars) {
			rc = buf_append_str(out, "\xe2\x80\xa6", e); /* … */
			break;
		}
		chars++;
		switch (c) {
		case '&': rc = buf_append_str(out, "&amp;", e); i++; continue;
		case '<': rc = buf_append_str(out, "&lt;", e); i++; continue;
		case '>': rc = buf_append_str(out, "&gt;", e); i++; continue;
		case '\n': case '\t': rc = buf_append_char(out, (char)c, e); i++; continue;
		case '`':
			rc = buf_append_char(out, in_code ? '\'' : '`', e);
			i++;
			continue;
		default: break;
		}
		if (c < 0x20 || c == 0x7f) {
			rc = buf_append_char(out, ' ', e);
			i++;
			continue;
		}
		k = utf8_len(p + i, n - i);
		if (k == 0) {
			rc = buf_append_str(out, "\xef\xbf\xbd", e); /* U+FFFD */
			i++;
			continue;
		}
		rc = buf_append(out, p + i, k, e);
		i += k;
	}
	return rc;
}

int slack_escape(struct buf *out, const char *s, size_t max_chars,
		 struct err *e)
{
	return esc_mode(out, s, max_chars, false, e);
}

/* Outside text as an inline code span: `text`. */
static void code(struct msg *m, struct buf *b, const char *s)
{
	buf_append_char(b, '`', m->e);
	esc_mode(b, s, VALUE_MAX, true, m->e);
	buf_append_char(b, '`', m->e);
}

/* Outside text as bold: *text*. Asterisks inside would end it early. */
static void bold(struct msg *m, struct buf *b, const char *s)
{
	struct buf t;

	buf_init(&t, MSG_BUF_MAX);
	esc_mode(&t, s, VALUE_MAX, false, m->e);
	for (char *c = t.data; *c; c++)
		if (*c == '*')
			*c = '+';
	buf_append_char(b, '*', m->e);
	buf_append_str(b, t.data, m->e);
	buf_append_char(b, '*', m->e);
	buf_release(&t);
}

static void put(struct msg *m, struct buf *b, const char *ours)
{
	buf_append_str(b, ours, m->e);
}

static void putf(struct msg *m, struct buf *b, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void putf(struct msg *m, struct buf *b, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	buf_vprintf(b, m->e, fmt, ap);
	va_end(ap);
}

void slack_human_bytes(double bytes, char *out, size_t out_size)
{
	static const char *const units[] = { "KiB", "MiB", "GiB", "TiB", "PiB",
					     "EiB" };
	double v = bytes;
	size_t u = 0;

	if (!isfinite(bytes) || bytes < 0) {
		snprintf(out, out_size, "?");
		return;
	}
	if (v < 1024) {
		snprintf(out, out_size, "%.0f B", v);
		return;
	}
	v /= 1024;
	while (v >= 1024 && u + 1 < sizeof(units) / sizeof(units[0])) {
		v /= 1024;
		u++;
	}
	snprintf(out, out_size, v < 100 ? "%.1f %s" : "%.0f %s", v, units[u]);
}

void slack_human_duration(double s, char *out, size_t out_size)
{
	long long t;

	if (!isfinite(s) || s < 0) {
		snprintf(out, out_size, "?");
		return;
	}
	if (s < 1) {
		snprintf(out, out_size, "%.0f ms", s * 1000);
		return;
	}
	if (s < 9.95) {
		snprintf(out, out_size, "%.1f s", s);
		return;
	}
	if (s < 59.5) {
		snprintf(out, out_size, "%.0f s", s);
		return;
	}
	t = llround(s);
	if (t < 3600)
		snprintf(out, out_size, "%lldm %02llds", t / 60, t % 60);
	else if (t < 86400)
		snprintf(out, out_size, "%lldh %02lldm", t / 3600, t % 3600 / 60);
	else if (t % 86400 / 3600 == 0)
		snprintf(out, out_size, "%lldd", t / 86400);
	else
		snprintf(out, out_size, "%lldd %lldh", t / 86400, t % 86400 / 3600);
}

/* 4512300 -> "4,512,300"; fractions keep two decimals. */
static void human_count(double v, char *out, size_t out_size)
{
	char digits[32];
	size_t n, o = 0;
	long long i;

	if (!isfinite(v) || fabs(v) >= 9e18) {
		snprintf(out, out_size, "%g", v);
		return;
	}
	if (v != floor(v)) {
		snprintf(out, out_size, "%.2f", v);
		return;
	}
	i = (long long)v;
	snprintf(digits, sizeof(digits), "%lld", i < 0 ? -i : i);
	n = strlen(digits);
	if (i < 0 && o + 1 < out_size)
		out[o++] = '-';
	for (size_t k = 0; k < n && o + 1 < out_size; k++) {
		if (k > 0 && (n - k) % 3 == 0 && o + 2 < out_size)
			out[o++] = ',';
		out[o++] = digits[k];
	}
	out[o] = '\0';
}

/* Slack renders <!date^...> in the reader's own time zone. */
static void slack_date(struct msg *m, struct buf *b, double t)
{
	char iso[40];
	struct tm tm;
	time_t tt = (time_t)t;

	if (t <= 0 || !gmtime_r(&tt, &tm)) {
		put(m, b, "time unknown");
		return;
	}
	strftime(iso, sizeof(iso), "%Y-%m-%d %H:%M:%S UTC", &tm);
	putf(m, b, "<!date^%lld^{date_short_pretty} {time_secs}|%s>",
	     (long long)tt, iso);
}

/* ---- payload access: every key read is marked used ---- */

static void use(struct msg *m, const char *key)
{
	for (size_t i = 0; i < m->n_used; i++)
		if (strcmp(m->used[i], key) == 0)
			return;
	if (m->n_used < USED_MAX)
		m->used[m->n_used++] = key;
}

static bool used(const struct msg *m, const char *key)
{
	for (size_t i = 0; i < m->n_used; i++)
		if (strcmp(m->used[i], key) == 0)
			return true;
	return false;
}

static json_t *pget(struct msg *m, const char *key)
{
	json_t *v = json_object_get(m->p, key);

	if (v)
		use(m, key);
	return v;
}

/* A non-empty string value, else NULL. */
static const char *pstr(struct msg *m, const char *key)
{
	json_t *v = pget(m, key);
	const char *s = json_is_string(v) ? json_string_value(v) : NULL;

	return s && *s ? s : NULL;
}

/* First non-empty string among keys (a NULL-terminated list). */
static const char *pstr_any(struct msg *m, const char *const *keys)
{
	const char *s = NULL;

	for (; *keys; keys++) {
		const char *t = pstr(m, *keys);
		if (!s)
			s = t;
	}
	return s;
}

static bool pnum(struct msg *m, const char *key, double *out)
{
	json_t *v = pget(m, key);

	if (!json_is_number(v))
		return false;
	*out = json_number_value(v);
	return isfinite(*out);
}

/* ---- fields and generic values ---- */

static void add_field_raw(struct msg *m, const char *label_esc,
			  const char *value_esc)
{
	struct buf b;
	json_t *f;

	if (json_array_size(m->fields) >= SLACK_FIELDS_MAX) {
		putf(m, &m->extra, "*%s:* %s\n", label_esc, value_esc);
		return;
	}
	buf_init(&b, MSG_BUF_MAX);
	putf(m, &b, "*%s*\n%s", label_esc, value_esc);
	f = json_object();
	json_object_set_new(f, "type", json_string("mrkdwn"));
	json_object_set_new(f, "text", json_string(b.data));
	json_array_append_new(m->fields, f);
	buf_release(&b);
}

static void field_text(struct msg *m, const char *label, const char *value)
{
	struct buf b;

	if (!value)
		return;
	buf_init(&b, MSG_BUF_MAX);
	esc_mode(&b, value, VALUE_MAX, false, m->e);
	add_field_raw(m, label, b.data);
	buf_release(&b);
}

static void field_code(struct msg *m, const char *label, const char *value)
{
	struct buf b;

	if (!value)
		return;
	buf_init(&b, MSG_BUF_MAX);
	code(m, &b, value);
	add_field_raw(m, label, b.data);
	buf_release(&b);
}

enum unit { U_COUNT, U_BYTES, U_SECONDS, U_MS, U_HOURS };

static void fmt_unit(double v, enum unit u, char *out, size_t size)
{
	switch (u) {
	case U_BYTES: slack_human_bytes(v, out, size); break;
	case U_SECONDS: slack_human_duration(v, out, size); break;
	case U_MS: slack_human_duration(v / 1000, out, size); break;
	case U_HOURS: slack_human_duration(v * 3600, out, size); break;
	default: human_count(v, out, size); break;
	}
}

static void field_num(struct msg *m, const char *label, const char *key,
		      enum unit u)
{
	char s[48];
	double v;

	if (!pnum(m, key, &v))
		return;
	fmt_unit(v, u, s, sizeof(s));
	add_field_raw(m, label, s);
}

/* The unit a generic key's number is in, from backupd's naming habits. */
static enum unit key_unit(const char *key)
{
	size_t n = strlen(key);

	if (strstr(key, "bytes"))
		return U_BYTES;
	if (n > 3 && strcmp(key + n - 3, "_ms") == 0)
		return U_MS;
	if ((n > 2 && strcmp(key + n - 2, "_s") == 0) ||
	    strcmp(key, "seconds") == 0 || strcmp(key, "phases") == 0)
		return U_SECONDS;
	if (n > 2 && strcmp(key + n - 2, "_h") == 0)
		return U_HOURS;
	return U_COUNT;
}

static bool key_is_time(const char *key)
{
	size_t n = strlen(key);

	return (n > 3 && strcmp(key + n - 3, "_at") == 0) ||
	       strcmp(key, "at") == 0 || strcmp(key, "time") == 0;
}

/* Renders any JSON value readably (escaped mrkdwn), depth-limited. */
static void render_value(struct msg *m, struct buf *b, const char *key,
			 json_t *v, int depth)
{
	char s[48];

	if (json_is_string(v)) {
		esc_mode(b, json_string_value(v), VALUE_MAX, false, m->e);
	} else if (json_is_number(v)) {
		double d = json_number_value(v);
		if (key && key_is_time(key) && d > 1e8)
			slack_date(m, b, d);
		else {
			fmt_unit(d, key ? key_unit(key) : U_COUNT, s, sizeof(s));
			put(m, b, s);
		}
	} else if (json_is_boolean(v)) {
		put(m, b, json_is_true(v) ? "yes" : "no");
	} else if (json_is_null(v)) {
		put(m, b, "\xe2\x80\x94"); /* — */
	} else if (depth >= 2) {
		put(m, b, "\xe2\x80\xa6");
	} else if (json_is_array(v)) {
		size_t n = json_array_size(v), i;
		if (n == 0)
			put(m, b, "none");
		for (i = 0; i < n && i < LIST_SHOW; i++) {
			if (i)
				put(m, b, json_is_object(json_array_get(v, i)) ? "\n" : ", ");
			render_value(m, b, key, json_array_get(v, i), depth + 1);
		}
		if (n > LIST_SHOW)
			putf(m, b, " +%zu more", n - LIST_SHOW);
	} else if (json_is_object(v)) {
		const char *k;
		json_t *x;
		size_t i = 0;
		json_object_foreach(v, k, x) {
			if (i == 6) {
				put(m, b, ", \xe2\x80\xa6");
				break;
			}
			if (i++)
				put(m, b, ", ");
			esc_mode(b, k, 40, false, m->e);
			put(m, b, ": ");
			/* {"phases": {"load": 12.5}}: the parent names the unit. */
			render_value(m, b, key && strcmp(key, "phases") == 0 ? key : k,
				     x, depth + 1);
		}
	}
}

/* "bytes_stored" -> "Bytes stored", "worst_lag_s" -> "Worst lag": the
 * value shows the unit. */
static void key_label(struct msg *m, struct buf *b, const char *key)
{
	size_t start = b->len, n = strlen(key);
	char *k;

	if (n > 3 && strcmp(key + n - 3, "_ms") == 0)
		n -= 3;
	else if (n > 2 && (strcmp(key + n - 2, "_s") == 0 ||
			   strcmp(key + n - 2, "_h") == 0))
		n -= 2;
	k = xstrndup(key, n);
	esc_mode(b, k, 40, false, m->e);
	free(k);
	for (size_t i = start; i < b->len; i++)
		if (b->data[i] == '_' || b->data[i] == '*')
			b->data[i] = ' ';
	if (b->len > start && b->data[start] >= 'a' && b->data[start] <= 'z')
		b->data[start] = (char)(b->data[start] - 'a' + 'A');
}

/* Every payload key no handler used, as a field (or a line past the
 * field limit), so nothing the event carries is lost. */
static void generic_fields(struct msg *m)
{
	const char *k;
	json_t *v;
	size_t extra = 0;

	json_object_foreach(m->p, k, v) {
		struct buf label, val;

		if (used(m, k))
			continue;
		if (json_array_size(m->fields) >= SLACK_FIELDS_MAX &&
		    ++extra > EXTRA_MAX) {
			put(m, &m->extra, "\xe2\x80\xa6\n");
			break;
		}
		buf_init(&label, MSG_BUF_MAX);
		buf_init(&val, MSG_BUF_MAX);
		key_label(m, &label, k);
		render_value(m, &val, k, v, 0);
		add_field_raw(m, label.data, val.data);
		buf_release(&label);
		buf_release(&val);
	}
}

/* The error of a failure: a code block in the summary, first line in the
 * fallback. */
static void add_error(struct msg *m, const char *err)
{
	const char *nl;

	if (!err)
		return;
	put(m, &m->summary, "\n```");
	esc_mode(&m->summary, err, ERROR_MAX, true, m->e);
	put(m, &m->summary, "```");
	if (m->brief.len)
		put(m, &m->brief, ": ");
	nl = strchr(err, '\n');
	if (nl) {
		char *line = xstrndup(err, (size_t)(nl - err));
		esc_mode(&m->brief, line, BRIEF_MAX, true, m->e);
		free(line);
	} else {
		esc_mode(&m->brief, err, BRIEF_MAX, true, m->e);
	}
}

/* " of *cluster*" when there is one. */
static void of_cluster(struct msg *m, struct buf *b)
{
	if (!m->cluster)
		return;
	put(m, b, " of ");
	bold(m, b, m->cluster);
}

/* " --cluster C" inside a command in the what-to-do text. */
static void cluster_opt(struct msg *m)
{
	if (!m->cluster)
		return;
	put(m, &m->advice, " --cluster ");
	esc_mode(&m->advice, m->cluster, VALUE_MAX, true, m->e);
}

/* ---- kinds ---- */

static const char *const id_keys[] = { "id", "snapshot", "snapshot_id", NULL };

static void snapshot_done(struct msg *m)
{
	const char *id = pstr(m, "id"), *src = pstr(m, "source");
	double raw = 0, stored = 0, secs = 0;
	bool has_raw = pnum(m, "bytes_raw", &raw);
	bool has_stored = pnum(m, "bytes_stored", &stored);
	bool has_secs = pnum(m, "seconds", &secs);
	char a[48], b[48], c[48];

	put(m, &m->summary, "Snapshot");
	if (id) {
		put(m, &m->summary, " ");
		code(m, &m->summary, id);
	}
	of_cluster(m, &m->summary);
	put(m, &m->summary, " is complete");
	if (src || m->server) {
		put(m, &m->summary, " (taken from ");
		code(m, &m->summary, src ? src : m->server);
		put(m, &m->summary, ")");
	}
	put(m, &m->summary, ".");
	if (has_stored) {
		slack_human_bytes(stored, a, sizeof(a));
		putf(m, &m->summary, "\n*%s* stored", a);
		put(m, &m->brief, a);
		if (has_raw) {
			slack_human_bytes(raw, b, sizeof(b));
			putf(m, &m->summary, " (%s raw", b);
			if (stored > 0) {
				snprintf(c, sizeof(c), "%.2f\xc3\x97", raw / stored);
				putf(m, &m->summary, ", ratio %s", c);
			}
			put(m, &m->summary, ")");
		}
	}
	if (has_secs) {
		slack_human_duration(secs, a, sizeof(a));
		putf(m, &m->summary, "%s in *%s*", has_stored ? "" : "\nTook", a);
		putf(m, &m->brief, "%s%s", m->brief.len ? " in " : "took ", a);
	}
	if (has_stored && has_raw && stored > 0)
		putf(m, &m->brief, " (ratio %.2f\xc3\x97)", raw / stored);
	if (has_stored || has_secs)
		put(m, &m->summary, ".");
	field_num(m, "Tables", "tables", U_COUNT);
	field_num(m, "Rows", "rows", U_COUNT);
	field_num(m, "Freeze", "freeze_ms", U_MS);
}

static void snapshot_failed(struct msg *m)
{
	const char *id = pstr(m, "id");

	put(m, &m->summary, "Snapshot");
	if (id) {
		put(m, &m->summary, " ");
		code(m, &m->summary, id);
	}
	of_cluster(m, &m->summary);
	put(m, &m->summary, " failed");
	if (m->server) {
		put(m, &m->summary, " on ");
		code(m, &m->summary, m->server);
	}
	put(m, &m->summary, ".");
	add_error(m, pstr(m, "error"));
	put(m, &m->advice, "Read the error above and the backupd log; "
	    "`backupctl status` shows what runs. Once fixed, take one by hand: "
	    "`backupctl snapshot");
	cluster_opt(m);
	put(m, &m->advice, "`. Until then the newest good snapshot is older "
	    "than planned.");
}

static void verify(struct msg *m, bool ok)
{
	static const char *const bad_keys[] = { "bad_files", "files_bad", NULL };
	const char *id = pstr_any(m, id_keys);
	json_t *bad = NULL;
	double files = 0, tbad = 0, bytes, secs;
	bool has_files = pnum(m, "files", &files);
	bool has_tbad = pnum(m, "tables_bad", &tbad);
	char a[48];

	for (const char *const *k = bad_keys; *k && !bad; k++)
		bad = pget(m, *k);
	put(m, &m->summary, "Snapshot");
	if (id) {
		put(m, &m->summary, " ");
		code(m, &m->summary, id);
	}
	of_cluster(m, &m->summary);
	if (ok) {
		put(m, &m->summary, " verified: every checksum matches");
		if (has_files) {
			human_count(files, a, sizeof(a));
			putf(m, &m->summary, " (%s files", a);
			put(m, &m->brief, a);
			put(m, &m->brief, " files");
			if (pnum(m, "bytes_read", &bytes)) {
				slack_human_bytes(bytes, a, sizeof(a));
				putf(m, &m->summary, ", %s read", a);
			}
			if (pnum(m, "seconds", &secs)) {
				slack_human_duration(secs, a, sizeof(a));
				putf(m, &m->summary, " in %s", a);
				putf(m, &m->brief, " in %s", a);
			}
			put(m, &m->summary, ")");
		}
		put(m, &m->summary, ".");
		return;
	}
	put(m, &m->summary, " *failed verification*");
	if (json_is_integer(bad) || json_is_array(bad)) {
		double n = json_is_array(bad) ? (double)json_array_size(bad)
					      : (double)json_integer_value(bad);
		human_count(n, a, sizeof(a));
		putf(m, &m->summary, ": %s ", a);
		putf(m, &m->brief, "%s ", a);
		if (has_files) {
			human_count(files, a, sizeof(a));
			putf(m, &m->summary, "of %s ", a);
		}
		put(m, &m->summary, n == 1 ? "file bad" : "files bad");
		put(m, &m->brief, n == 1 ? "file bad" : "files bad");
	}
	if (has_tbad && tbad > 0) {
		human_count(tbad, a, sizeof(a));
		putf(m, &m->summary, ", %s %s", a, tbad == 1 ? "table" : "tables");
	}
	put(m, &m->summary, ".");
	if (json_is_array(bad) && json_array_size(bad) > 0) {
		struct buf b;
		buf_init(&b, MSG_BUF_MAX);
		render_value(m, &b, "bad_files", bad, 0);
		add_field_raw(m, "Bad files", b.data);
		buf_release(&b);
	}
	add_error(m, pstr(m, "error"));
	put(m, &m->advice, "Do not restore from this snapshot. ");
	if (id) {
		put(m, &m->advice, "`backupctl verify ");
		esc_mode(&m->advice, id, VALUE_MAX, true, m->e);
		put(m, &m->advice, "` lists the bad files; ");
	}
	put(m, &m->advice, "check the repository storage (NFS server, disks), "
	    "then take a fresh snapshot: `backupctl snapshot");
	cluster_opt(m);
	put(m, &m->advice, "`.");
}

static void verify_ok(struct msg *m) { verify(m, true); }
static void verify_failed(struct msg *m) { verify(m, false); }

static void lag(struct msg *m, const char *level, const char *state_name)
{
	const char *state = pstr(m, "state"), *reason = pstr(m, "reason");
	double lag_s = 0, thr = 0;
	bool has_lag = pnum(m, "lag_s", &lag_s);
	bool has_thr = pnum(m, "threshold_s", &thr);
	bool unbounded = !has_lag ||
		(state && (strcmp(state, "broken") == 0 ||
			   strcmp(state, "down") == 0));
	char a[48], t[48];

	use(m, "server");
	use(m, "from");
	slack_human_duration(lag_s, a, sizeof(a));
	slack_human_duration(thr, t, sizeof(t));
	put(m, &m->summary, "Replica ");
	code(m, &m->summary, m->server ? m->server : "?");
	of_cluster(m, &m->summary);
	if (!level) {
		put(m, &m->summary, " has caught up");
		if (has_lag) {
			putf(m, &m->summary, ": lag *%s*", a);
			putf(m, &m->brief, "lag %s", a);
		}
		put(m, &m->summary, ".");
		return;
	}
	if (unbounded) {
		put(m, &m->summary, ": replication is not running, so the lag "
		    "is *unbounded* and growing");
		put(m, &m->brief, "lag unbounded (replication not running)");
	} else {
		putf(m, &m->summary, " is *%s* behind the primary", a);
		putf(m, &m->brief, "lag %s", a);
	}
	if (has_thr) {
		putf(m, &m->summary, " (%s at %s)", level, t);
		putf(m, &m->brief, " (%s at %s)", level, t);
	}
	put(m, &m->summary, ".");
	if (state && !unbounded && strcmp(state, state_name) != 0) {
		put(m, &m->summary, " State: ");
		esc_mode(&m->summary, state, 40, false, m->e);
		put(m, &m->summary, ".");
	}
	if (reason) {
		put(m, &m->summary, "\n_");
		esc_mode(&m->summary, reason, VALUE_MAX, false, m->e);
		put(m, &m->summary, "_");
	}
	if (strcmp(level, "critical") == 0) {
		put(m, &m->advice, "Check `backupctl lag`; the replica's SQL "
		    "thread may be stopped: run `SHOW SLAVE STATUS` on ");
		code(m, &m->advice, m->server ? m->server : "the replica");
		put(m, &m->advice, " and look at Slave_SQL_Running, "
		    "Slave_IO_Running and Last_Error. Snapshots taken from it "
		    "are stale until it catches up.");
	} else {
		put(m, &m->advice, "Watch `backupctl lag`. Heavy writes on the "
		    "primary or a long transaction on the replica usually "
		    "cause this; it turns critical if it keeps growing.");
	}
}

static void lag_warn(struct msg *m) { lag(m, "warning", "warn"); }
static void lag_crit(struct msg *m) { lag(m, "critical", "crit"); }
static void lag_recovered(struct msg *m) { lag(m, NULL, "ok"); }

static const char *const replica_err_keys[] = { "error", "reason", "sql_error",
						       "io_error", NULL };

static void replica_head(struct msg *m, const char *what)
{
	/* The lag monitor's transition payload: implied by the kind. */
	static const char *const implied[] = { "server", "state", "from",
					       "lag_s", "threshold_s" };

	for (size_t i = 0; i < sizeof(implied) / sizeof(implied[0]); i++)
		use(m, implied[i]);
	put(m, &m->summary, "Replica ");
	code(m, &m->summary, m->server ? m->server : "?");
	of_cluster(m, &m->summary);
	put(m, &m->summary, what);
}

static void rebuild_cmd(struct msg *m)
{
	put(m, &m->advice, "`backupctl rebuild ");
	esc_mode(&m->advice, m->server ? m->server : "SERVER", VALUE_MAX, true,
		 m->e);
	put(m, &m->advice, "`");
}

static void replica_down(struct msg *m)
{
	replica_head(m, " is *down*: backupd cannot reach it.");
	add_error(m, pstr_any(m, replica_err_keys));
	put(m, &m->advice, "Check that the server runs and is reachable from "
	    "the backupd host; `backupctl status` shows the topology. If it "
	    "comes back without its data, ");
	rebuild_cmd(m);
	put(m, &m->advice, " restores the latest good snapshot into it "
	    "(automatic with `rebuild = auto`).");
}

static void replica_broken(struct msg *m)
{
	replica_head(m, ": replication is *broken*.");
	add_error(m, pstr_any(m, replica_err_keys));
	put(m, &m->advice, "Run `SHOW SLAVE STATUS` on the replica and read "
	    "Last_SQL_Error / Last_IO_Error. If it cannot be repaired, ");
	rebuild_cmd(m);
	put(m, &m->advice, " restores the latest good snapshot into it and "
	    "re-attaches it.");
}

static void replica_rebuilt(struct msg *m)
{
	const char *snap = pstr_any(m, id_keys);
	const char *why = pstr(m, "reason"), *primary = pstr(m, "primary");
	double secs;
	char a[48];

	replica_head(m, " was rebuilt");
	if (snap) {
		put(m, &m->summary, " from snapshot ");
		code(m, &m->summary, snap);
	}
	if (pnum(m, "seconds", &secs)) {
		slack_human_duration(secs, a, sizeof(a));
		putf(m, &m->summary, " in *%s*", a);
		putf(m, &m->brief, "took %s", a);
	}
	put(m, &m->summary, " and replicates again");
	if (primary) {
		put(m, &m->summary, " from ");
		code(m, &m->summary, primary);
	}
	put(m, &m->summary, ".");
	field_text(m, "Why", why);
}

static void replica_rebuild_failed(struct msg *m)
{
	const char *why = pstr(m, "reason");

	replica_head(m, ": the rebuild *failed*.");
	field_text(m, "Why it was rebuilt", why);
	add_error(m, pstr(m, "error"));
	put(m, &m->advice, "The replica stays out of service. Read the rebuild "
	    "steps in the backupd log, fix the cause, then run ");
	rebuild_cmd(m);
	put(m, &m->advice, " again.");
}

/* deleted/kept may be counts or lists of snapshot ids. */
static void prune(struct msg *m, bool failed)
{
	json_t *del = pget(m, "deleted"), *kept = pget(m, "kept");
	double nd = json_is_array(del) ? (double)json_array_size(del)
		  : json_is_number(del) ? json_number_value(del) : -1;
	double nk = json_is_array(kept) ? (double)json_array_size(kept)
		  : json_is_number(kept) ? json_number_value(kept) : -1;
	char a[48];

	use(m, "failed");
	put(m, &m->summary, "Retention");
	if (m->cluster) {
		put(m, &m->summary, " on ");
		bold(m, &m->summary, m->cluster);
	}
	put(m, &m->summary, failed ? " *stopped*: a removal failed" : "");
	put(m, &m->summary, failed && nd >= 0 ? " after " : !failed ? ": " : "");
	if (nd == 0) {
		put(m, &m->summary, failed ? "deleting nothing" : "nothing to delete");
		put(m, &m->brief, "nothing deleted");
	} else if (nd > 0) {
		human_count(nd, a, sizeof(a));
		putf(m, &m->summary, failed ? "deleting %s snapshot%s" :
		     "*%s* snapshot%s deleted", a, nd == 1 ? "" : "s");
		putf(m, &m->brief, "%s deleted", a);
	} else if (!failed) {
		put(m, &m->summary, "done");
	}
	if (nk >= 0) {
		human_count(nk, a, sizeof(a));
		putf(m, &m->summary, ", %s kept", a);
		putf(m, &m->brief, ", %s kept", a);
	}
	put(m, &m->summary, ".");
	if (json_is_array(del) && json_array_size(del) > 0) {
		struct buf b;
		buf_init(&b, MSG_BUF_MAX);
		render_value(m, &b, "deleted", del, 0);
		add_field_raw(m, "Deleted", b.data);
		buf_release(&b);
	}
	add_error(m, pstr(m, "error"));
	if (failed) {
		put(m, &m->advice, "Check the repository (NFS server, permissions, "
		    "free space) and the backupd log, then `backupctl prune");
		cluster_opt(m);
		put(m, &m->advice, " --dry-run` shows what is still to go. A "
		    "snapshot whose removal failed may be left half deleted in "
		    "the repository.");
	}
}

static void prune_done(struct msg *m) { prune(m, false); }
static void prune_failed(struct msg *m) { prune(m, true); }

static void config_reload_failed(struct msg *m)
{
	static const char *const path_keys[] = { "config", "path", NULL };
	const char *path = pstr_any(m, path_keys);

	put(m, &m->summary, "The new configuration was *rejected*; backupd "
	    "keeps running with the previous one.");
	field_code(m, "File", path);
	add_error(m, pstr(m, "error"));
	put(m, &m->advice, "Fix the config file (`backupctl");
	if (path) {
		put(m, &m->advice, " -c ");
		esc_mode(&m->advice, path, VALUE_MAX, true, m->e);
	}
	put(m, &m->advice, " config check` says what is wrong) and reload again "
	    "(`systemctl reload backupd` or SIGHUP). Until then changes to "
	    "schedules, clusters and thresholds are not in force.");
}

static void drill(struct msg *m, bool ok)
{
	const char *snap = pstr_any(m, id_keys), *target = pstr(m, "target");
	const char *phase = pstr(m, "phase");
	json_t *kept = pget(m, "kept");
	double rto, rpo;
	char a[48];

	use(m, "result");
	put(m, &m->summary, "DR drill");
	of_cluster(m, &m->summary);
	put(m, &m->summary, ok ? " *passed*" : " *failed*");
	if (snap) {
		put(m, &m->summary, ok ? ": snapshot " : " for snapshot ");
		code(m, &m->summary, snap);
		if (ok)
			put(m, &m->summary, " restored");
	}
	if (ok && target) {
		put(m, &m->summary, snap ? " into " : ": restored into ");
		code(m, &m->summary, target);
	}
	if (ok)
		put(m, &m->summary, snap || target ? " and verified" : "");
	put(m, &m->summary, ".");
	if (pnum(m, "rto_s", &rto)) {
		slack_human_duration(rto, a, sizeof(a));
		if (ok) {
			putf(m, &m->summary, " RTO *%s*.", a);
			putf(m, &m->brief, "RTO %s", a);
		} else {
			add_field_raw(m, "Ran for", a);
		}
	}
	if (pnum(m, "rpo_s", &rpo)) {
		slack_human_duration(rpo, a, sizeof(a));
		add_field_raw(m, "RPO", a);
	}
	if (!ok && target)
		field_code(m, "Target", target);
	if (!ok && phase)
		field_code(m, "Failed in", phase);
	if (json_is_true(kept))
		add_field_raw(m, "Scratch server", "kept for inspection");
	if (ok)
		return;
	add_error(m, pstr(m, "error"));
	put(m, &m->advice, "The latest snapshot was not proven restorable. Read "
	    "the drill steps in the backupd log, fix the cause and run "
	    "`backupctl drill");
	cluster_opt(m);
	put(m, &m->advice, "` again; take a fresh snapshot if this one is bad.");
}

static void drill_passed(struct msg *m) { drill(m, true); }
static void drill_failed(struct msg *m) { drill(m, false); }

static void cutover(struct msg *m)
{
	static const char *const from_keys[] = { "from", "from_server", NULL };
	static const char *const to_keys[] = { "to", "to_server", NULL };
	const char *from = pstr_any(m, from_keys), *to = pstr_any(m, to_keys);
	const char *what = strchr(m->ev->kind, '.') + 1;
	bool done = strcmp(what, "done") == 0 || strcmp(what, "ok") == 0 ||
		    strcmp(what, "completed") == 0;
	bool bad = strcmp(what, "failed") == 0 ||
		   strcmp(what, "rolled_back") == 0 ||
		   strcmp(what, "aborted") == 0;
	double pause;
	size_t start;
	char a[48];

	if (done) {
		put(m, &m->summary, "The writer");
		of_cluster(m, &m->summary);
		put(m, &m->summary, " is now ");
		code(m, &m->summary, to ? to : "?");
		if (from) {
			put(m, &m->summary, " (was ");
			code(m, &m->summary, from);
			put(m, &m->summary, ")");
		}
	} else {
		put(m, &m->summary, "Cutover");
		of_cluster(m, &m->summary);
		if (from || to) {
			put(m, &m->summary, " from ");
			code(m, &m->summary, from ? from : "?");
			put(m, &m->summary, " to ");
			code(m, &m->summary, to ? to : "?");
		}
		put(m, &m->summary, ": ");
		start = m->summary.len;
		esc_mode(&m->summary, what, 40, false, m->e);
		for (size_t i = start; i < m->summary.len; i++)
			if (m->summary.data[i] == '_')
				m->summary.data[i] = ' ';
	}
	put(m, &m->summary, ".");
	if (pnum(m, "write_pause_ms", &pause)) {
		slack_human_duration(pause / 1000, a, sizeof(a));
		putf(m, &m->summary, " Writes paused *%s*.", a);
		putf(m, &m->brief, "writes paused %s", a);
	}
	add_error(m, pstr(m, "error"));
	if (done && from) {
		put(m, &m->advice, "Nothing to do. To roll back: `backupctl "
		    "cutover --to ");
		esc_mode(&m->advice, from, VALUE_MAX, true, m->e);
		put(m, &m->advice, "`.");
	} else if (bad) {
		put(m, &m->advice, "The old writer");
		if (from) {
			put(m, &m->advice, " ");
			code(m, &m->advice, from);
		}
		put(m, &m->advice, " should be (again) the writer: check "
		    "`backupctl status` and HAProxy, read the cutover steps in "
		    "the backupd log, and try `backupctl cutover --dry-run` "
		    "before the next attempt.");
	}
}

static void restore(struct msg *m, bool ok)
{
	const char *snap = pstr_any(m, id_keys), *target = pstr(m, "target");
	const char *primary = pstr(m, "as_replica_of");
	double secs, bytes;
	char a[48];

	put(m, &m->summary, "Snapshot");
	if (snap) {
		put(m, &m->summary, " ");
		code(m, &m->summary, snap);
	}
	of_cluster(m, &m->summary);
	put(m, &m->summary, ok ? " restored" : " could *not* be restored");
	if (target) {
		put(m, &m->summary, " into ");
		code(m, &m->summary, target);
	}
	if (ok && pnum(m, "seconds", &secs)) {
		slack_human_duration(secs, a, sizeof(a));
		putf(m, &m->summary, " in *%s*", a);
		putf(m, &m->brief, "took %s", a);
	}
	if (ok && primary) {
		put(m, &m->summary, ", replicating from ");
		code(m, &m->summary, primary);
	}
	put(m, &m->summary, ".");
	if (pnum(m, "bytes", &bytes)) {
		slack_human_bytes(bytes, a, sizeof(a));
		add_field_raw(m, "Size", a);
	}
	field_num(m, "Tables", "tables", U_COUNT);
	field_num(m, "Rows", "rows", U_COUNT);
	if (ok)
		return;
	add_error(m, pstr(m, "error"));
	put(m, &m->advice, "The target may hold a partial load: do not use it. "
	    "Read the error, fix the cause and run `backupctl restore");
	if (snap) {
		put(m, &m->advice, " ");
		esc_mode(&m->advice, snap, VALUE_MAX, true, m->e);
	}
	if (target) {
		put(m, &m->advice, " --target ");
		esc_mode(&m->advice, target, VALUE_MAX, true, m->e);
	}
	put(m, &m->advice, "` again.");
}

static void restore_done(struct msg *m) { restore(m, true); }
static void restore_failed(struct msg *m) { restore(m, false); }

static void drill_overdue(struct msg *m)
{
	const char *last = pstr(m, "last_passed_at");
	double age, max;
	bool has_age = pnum(m, "age_h", &age), has_max = pnum(m, "max_age_h", &max);
	char a[48];

	put(m, &m->summary, "No DR drill");
	of_cluster(m, &m->summary);
	put(m, &m->summary, " has passed");
	if (has_age) {
		slack_human_duration(age * 3600, a, sizeof(a));
		putf(m, &m->summary, " for *%s*", a);
		putf(m, &m->brief, "none passed for %s", a);
	}
	if (has_max) {
		slack_human_duration(max * 3600, a, sizeof(a));
		putf(m, &m->summary, " (at most %s allowed)", a);
	}
	put(m, &m->summary, ": nobody knows whether the backups restore.");
	field_text(m, "Last passed", last ? last : "never");
	field_text(m, "Last result", pstr(m, "last_result"));
	put(m, &m->advice, "Run `backupctl drill");
	cluster_opt(m);
	put(m, &m->advice, "` and check that a `drill` schedule exists and runs "
	    "(`backupctl status`).");
}

static void job_skipped(struct msg *m)
{
	const char *job = pstr(m, "job"), *sched = pstr(m, "schedule");
	const char *reason = pstr(m, "reason"), *msg = pstr(m, "message");
	bool overlap = reason && strcmp(reason, "overlap") == 0;

	put(m, &m->summary, "A scheduled ");
	code(m, &m->summary, job ? job : "job");
	of_cluster(m, &m->summary);
	if (sched) {
		put(m, &m->summary, " (schedule ");
		code(m, &m->summary, sched);
		put(m, &m->summary, ")");
	}
	put(m, &m->summary, " was *skipped*");
	if (msg) {
		put(m, &m->summary, ": ");
		esc_mode(&m->summary, msg, VALUE_MAX, false, m->e);
		esc_mode(&m->brief, msg, BRIEF_MAX, false, m->e);
	}
	put(m, &m->summary, ".");
	if (overlap)
		put(m, &m->advice, "The previous run was still going. If this "
		    "repeats, the job takes longer than the schedule allows: "
		    "space the runs out or make the job faster; `backupctl "
		    "status` shows what runs.");
	else if (reason)
		field_text(m, "Reason", reason);
}

/* The daily digest: the day in one line, then the next runs. */
static void digest(struct msg *m)
{
	double snaps, snaps_failed, bytes, worst, jobs_failed;
	bool has_snaps = pnum(m, "snapshots", &snaps);
	bool has_sf = pnum(m, "snapshots_failed", &snaps_failed);
	bool has_bytes = pnum(m, "bytes_stored", &bytes);
	bool has_worst = pnum(m, "worst_lag_s", &worst);
	bool has_jf = pnum(m, "jobs_failed", &jobs_failed);
	json_t *next = pget(m, "next_runs"), *r;
	char a[48];
	size_t i;

	put(m, &m->summary, "Last 24 h");
	if (m->cluster) {
		put(m, &m->summary, " on ");
		bold(m, &m->summary, m->cluster);
	}
	put(m, &m->summary, ":");
	if (has_snaps) {
		human_count(snaps, a, sizeof(a));
		putf(m, &m->summary, " *%s* snapshot%s", a, snaps == 1 ? "" : "s");
		putf(m, &m->brief, "%s snapshot%s", a, snaps == 1 ? "" : "s");
		if (has_sf && snaps_failed > 0) {
			human_count(snaps_failed, a, sizeof(a));
			putf(m, &m->summary, " (*%s failed*)", a);
			putf(m, &m->brief, " (%s failed)", a);
		}
		if (has_bytes) {
			slack_human_bytes(bytes, a, sizeof(a));
			putf(m, &m->summary, ", %s stored", a);
		}
		put(m, &m->summary, ";");
	}
	if (has_worst) {
		slack_human_duration(worst, a, sizeof(a));
		putf(m, &m->summary, " worst replication lag *%s*;", a);
		putf(m, &m->brief, "%sworst lag %s", m->brief.len ? ", " : "", a);
	}
	if (has_jf) {
		human_count(jobs_failed, a, sizeof(a));
		putf(m, &m->summary, " %s failed job%s;", jobs_failed > 0 ? a : "no",
		     jobs_failed == 1 ? "" : "s");
		if (jobs_failed > 0)
			putf(m, &m->brief, "%s%s failed job%s", m->brief.len ? ", " : "",
			     a, jobs_failed == 1 ? "" : "s");
	}
	if (m->summary.data[m->summary.len - 1] == ';')
		m->summary.data[m->summary.len - 1] = '.';
	else if (m->summary.data[m->summary.len - 1] == ':')
		m->summary.data[m->summary.len - 1] = '.';
	if (json_is_array(next) && json_array_size(next) > 0) {
		put(m, &m->summary, "\n*Next runs*");
		json_array_foreach(next, i, r) {
			json_t *at = json_object_get(r, "at");
			const char *sn = json_string_value(json_object_get(r, "schedule"));
			const char *jb = json_string_value(json_object_get(r, "job"));

			if (i == LIST_SHOW) {
				putf(m, &m->summary, "\n\xe2\x80\xa2 +%zu more",
				     json_array_size(next) - LIST_SHOW);
				break;
			}
			put(m, &m->summary, "\n\xe2\x80\xa2 ");  /* • */
			if (json_is_number(at))
				slack_date(m, &m->summary, json_number_value(at));
			if (sn) {
				put(m, &m->summary, " ");
				code(m, &m->summary, sn);
			}
			if (jb) {
				put(m, &m->summary, " (");
				esc_mode(&m->summary, jb, 40, false, m->e);
				put(m, &m->summary, ")");
			}
		}
	} else if (next) {
		put(m, &m->summary, "\nNo runs scheduled.");
	}
}

/* Unknown kinds: what, where, the error if any. */
static void generic(struct msg *m)
{
	put(m, &m->summary, "Event ");
	code(m, &m->summary, m->ev->kind);
	if (m->cluster) {
		put(m, &m->summary, " on ");
		bold(m, &m->summary, m->cluster);
	}
	if (m->server) {
		put(m, &m->summary, m->cluster ? " (" : " on ");
		code(m, &m->summary, m->server);
		if (m->cluster)
			put(m, &m->summary, ")");
	}
	put(m, &m->summary, ".");
	add_error(m, pstr(m, "error"));
	if (strcmp(m->ev->severity, "error") == 0 ||
	    strcmp(m->ev->severity, "crit") == 0)
		put(m, &m->advice, "See the backupd log on its host for details; "
		    "`backupctl status` shows the current state.");
}

struct kind {
	const char *kind;   /* exact, or a prefix when it ends in '.' */
	const char *title;  /* NULL: built from the kind */
	const char *emoji;  /* for severity info; others use the severity's */
	void (*fn)(struct msg *m);
};

static const struct kind kinds[] = {
	{ "snapshot.done", "Snapshot complete", ":white_check_mark:", snapshot_done },
	{ "snapshot.failed", "Snapshot failed", NULL, snapshot_failed },
	{ "verify.ok", "Snapshot verified", ":white_check_mark:", verify_ok },
	{ "verify.failed", "Verify failed", NULL, verify_failed },
	{ "lag.warn", "Replication lag warning", NULL, lag_warn },
	{ "lag.crit", "Replication lag critical", NULL, lag_crit },
	{ "lag.recovered", "Replication lag recovered", ":large_green_circle:", lag_recovered },
	{ "replica.down", "Replica down", NULL, replica_down },
	{ "replica.broken", "Replication broken", NULL, replica_broken },
	{ "replica.rebuilt", "Replica rebuilt", ":white_check_mark:", replica_rebuilt },
	{ "replica.rebuild_failed", "Replica rebuild failed", NULL, replica_rebuild_failed },
	{ "prune.done", "Retention applied", ":wastebasket:", prune_done },
	{ "prune.failed", "Retention failed", NULL, prune_failed },
	{ "restore.done", "Restore complete", ":white_check_mark:", restore_done },
	{ "restore.failed", "Restore failed", NULL, restore_failed },
	{ "drill.overdue", "DR drill overdue", NULL, drill_overdue },
	{ "job.skipped", "Scheduled job skipped", NULL, job_skipped },
	{ "config.reload_failed", "Config reload failed", NULL, config_reload_failed },
	{ "drill.passed", "DR drill passed", ":white_check_mark:", drill_passed },
	{ "drill.failed", "DR drill failed", NULL, drill_failed },
	{ "cutover.", NULL, ":arrows_counterclockwise:", cutover },
	{ "digest.daily", "Daily report", ":bar_chart:", digest },
};

static const struct kind *kind_find(const char *k)
{
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		size_t n = strlen(kinds[i].kind);
		if (kinds[i].kind[n - 1] == '.' ? strncmp(k, kinds[i].kind, n) == 0 && k[n]
						: strcmp(k, kinds[i].kind) == 0)
			return &kinds[i];
	}
	return NULL;
}

static const char *severity_emoji(const char *sev)
{
	if (strcmp(sev, "warn") == 0)
		return ":warning:";
	if (strcmp(sev, "error") == 0)
		return ":x:";
	if (strcmp(sev, "crit") == 0)
		return ":rotating_light:";
	return ":information_source:";
}

/* "cutover.rolled_back" -> "Cutover rolled back". */
static void kind_title(struct msg *m, const char *kind)
{
	size_t start = m->title_buf.len;

	esc_mode(&m->title_buf, kind, 60, false, m->e);
	for (size_t i = start; i < m->title_buf.len; i++)
		if (m->title_buf.data[i] == '.' || m->title_buf.data[i] == '_')
			m->title_buf.data[i] = ' ';
	if (m->title_buf.len > start && m->title_buf.data[start] >= 'a' &&
	    m->title_buf.data[start] <= 'z')
		m->title_buf.data[start] =
			(char)(m->title_buf.data[start] - 'a' + 'A');
	m->title = m->title_buf.data;
}

/* ---- assembly ---- */

static json_t *text_obj(const char *type, const char *text)
{
	json_t *t = json_object();

	json_object_set_new(t, "type", json_string(type));
	json_object_set_new(t, "text", json_string(text));
	if (strcmp(type, "plain_text") == 0)
		json_object_set_new(t, "emoji", json_true());
	return t;
}

static json_t *section(const char *mrkdwn)
{
	json_t *s = json_object();

	json_object_set_new(s, "type", json_string("section"));
	json_object_set_new(s, "text", text_obj("mrkdwn", mrkdwn));
	return s;
}

/* Cuts escaped text to about max characters (Slack's limits) at a
 * character, entity or ``` boundary, marks the cut with an ellipsis and
 * closes a code block the cut left open. Entities count at their full
 * length, so the limit holds however Slack counts them. */
static void cap_text(struct msg *m, struct buf *b, size_t max)
{
	size_t chars = 0, i = 0, cut = 0;
	bool have_cut = false, in_block = false, block_at_cut = false;

	while (i < b->len && chars <= max) {
		unsigned char c = (unsigned char)b->data[i];
		size_t k = c < 0x80 ? 1 : c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
		size_t w = 1;

		if (!have_cut && chars + 8 >= max) {
			cut = i;
			have_cut = true;
			block_at_cut = in_block;
		}
		if (strncmp(b->data + i, "```", 3) == 0) {
			in_block = !in_block;
			k = w = 3;
		} else if (c == '&') {
			const char *semi = memchr(b->data + i, ';', b->len - i);
			if (semi && semi - (b->data + i) <= 5)
				k = w = (size_t)(semi - (b->data + i)) + 1;
		}
		i += k;
		chars += w;
	}
	if (chars <= max)
		return;
	b->len = cut;
	b->data[cut] = '\0';
	put(m, b, "\xe2\x80\xa6");
	if (block_at_cut)
		put(m, b, "```");
}

static json_t *build(struct msg *m, enum slack_style style)
{
	const struct catalog_event *ev = m->ev;
	struct buf head, text, ctx;
	json_t *root = json_object(), *blocks;

	buf_init(&head, MSG_BUF_MAX);
	buf_init(&text, MSG_BUF_MAX);
	buf_init(&ctx, MSG_BUF_MAX);

	/* Header: plain text, Slack renders the :emoji: code. */
	putf(m, &head, "%s %s", m->emoji, m->title);
	if (m->cluster) {
		put(m, &head, " \xc2\xb7 "); /* · */
		esc_mode(&head, m->cluster, 60, false, m->e);
	}
	/* The fallback: what shows in notifications and on old clients. */
	putf(m, &text, "%s *%s*", m->emoji, m->title);
	if (m->cluster) {
		put(m, &text, " \xc2\xb7 ");
		esc_mode(&text, m->cluster, 60, false, m->e);
	}
	if (m->server) {
		put(m, &text, " \xc2\xb7 ");
		esc_mode(&text, m->server, 80, false, m->e);
	}
	if (m->brief.len) {
		put(m, &text, ": ");
		put(m, &text, m->brief.data);
	}
	if (style == SLACK_TEXT_ONLY && m->advice.len) {
		put(m, &text, "\n");
		put(m, &text, m->advice.data);
	}
	cap_text(m, &text, SLACK_FALLBACK_MAX);
	json_object_set_new(root, "text", json_string(text.data));
	if (style == SLACK_TEXT_ONLY)
		goto out;

	blocks = json_array();
	{
		json_t *h = json_object();

		cap_text(m, &head, SLACK_HEADER_MAX);
		json_object_set_new(h, "type", json_string("header"));
		json_object_set_new(h, "text", text_obj("plain_text", head.data));
		json_array_append_new(blocks, h);
	}
	cap_text(m, &m->summary, SLACK_TEXT_MAX);
	{
		json_t *s = section(m->summary.data);
		if (json_array_size(m->fields) > 0)
			json_object_set(s, "fields", m->fields);
		json_array_append_new(blocks, s);
	}
	if (m->extra.len) {
		cap_text(m, &m->extra, SLACK_TEXT_MAX);
		json_array_append_new(blocks, section(m->extra.data));
	}
	if (m->advice.len) {
		struct buf t;
		buf_init(&t, MSG_BUF_MAX);
		putf(m, &t, ":point_right: *What to do:* %s", m->advice.data);
		cap_text(m, &t, SLACK_TEXT_MAX);
		json_array_append_new(blocks, section(t.data));
		buf_release(&t);
	}
	{
		json_t *c = json_object(), *els = json_array();
		char id[64];

		slack_date(m, &ctx, ev->created_at);
		put(m, &ctx, " \xc2\xb7 ");
		code(m, &ctx, ev->kind);
		putf(m, &ctx, " \xc2\xb7 %s \xc2\xb7 backupd event %" PRId64,
		     ev->severity, ev->id);
		snprintf(id, sizeof(id), SLACK_BLOCK_ID_PREFIX "%" PRId64, ev->id);
		json_array_append_new(els, text_obj("mrkdwn", ctx.data));
		json_object_set_new(c, "type", json_string("context"));
		json_object_set_new(c, "block_id", json_string(id));
		json_object_set_new(c, "elements", els);
		json_array_append_new(blocks, c);
	}
	json_object_set_new(root, "blocks", blocks);
out:
	buf_release(&head);
	buf_release(&text);
	buf_release(&ctx);
	return root;
}

int slack_format_event(const struct catalog_event *ev, enum slack_style style,
		       char **json, struct err *e)
{
	static const char *const sevs[] = { "info", "warn", "error", "crit", NULL };
	struct catalog_event copy = *ev;
	struct msg m;
	const struct kind *k;
	json_t *root;
	bool sev_ok = false;
	int rc = 0;

	*json = NULL;
	if (!copy.kind || !*copy.kind)
		copy.kind = "unknown";
	for (const char *const *s = sevs; *s; s++)
		if (copy.severity && strcmp(copy.severity, *s) == 0)
			sev_ok = true;
	if (!sev_ok)
		copy.severity = "info";
	memset(&m, 0, sizeof(m));
	m.ev = &copy;
	m.e = e;
	buf_init(&m.title_buf, MSG_BUF_MAX);
	buf_init(&m.summary, MSG_BUF_MAX);
	buf_init(&m.advice, MSG_BUF_MAX);
	buf_init(&m.brief, MSG_BUF_MAX);
	buf_init(&m.extra, MSG_BUF_MAX);
	m.fields = json_array();
	m.p = copy.payload ? json_loads(copy.payload, JSON_DECODE_ANY, NULL)
			   : json_object();
	if (!json_is_object(m.p)) {
		json_decref(m.p);
		m.p = json_object();
		m.raw_payload = copy.payload;
	}
	m.cluster = copy.cluster && *copy.cluster ? copy.cluster : NULL;
	m.server = copy.server && *copy.server ? copy.server : NULL;
	/* A payload key repeating the event's cluster or server is no news;
	 * when the event has none, the payload's stands in. */
	{
		json_t *c = json_object_get(m.p, "cluster");
		json_t *s = json_object_get(m.p, "server");
		if (m.cluster && json_is_string(c) &&
		    strcmp(json_string_value(c), m.cluster) == 0)
			use(&m, "cluster");
		if (m.server && json_is_string(s) &&
		    strcmp(json_string_value(s), m.server) == 0)
			use(&m, "server");
	}
	if (!m.cluster) {
		json_t *c = json_object_get(m.p, "cluster");
		if (json_is_string(c) && *json_string_value(c)) {
			m.cluster = json_string_value(c);
			use(&m, "cluster");
		}
	}
	if (!m.server) {
		json_t *s = json_object_get(m.p, "server");
		if (json_is_string(s) && *json_string_value(s)) {
			m.server = json_string_value(s);
			use(&m, "server");
		}
	}

	k = kind_find(copy.kind);
	m.emoji = severity_emoji(copy.severity);
	if (k && k->emoji && strcmp(copy.severity, "info") == 0)
		m.emoji = k->emoji;
	if (k && k->title)
		m.title = k->title;
	else
		kind_title(&m, copy.kind);
	(k ? k->fn : generic)(&m);
	generic_fields(&m);
	if (m.raw_payload)
		field_text(&m, "Payload", m.raw_payload);

	root = build(&m, style);
	if (err_is_set(e)) {
		err_prefix(e, "unable to format Slack message for event %" PRId64 ": ",
			   copy.id);
		rc = e->code;
	} else {
		*json = json_dumps(root, JSON_COMPACT);
		if (!*json)
			rc = err_set(e, ERR_INTERNAL, "unable to encode Slack "
				     "message for event %" PRId64, copy.id);
	}
	json_decref(root);
	json_decref(m.fields);
	json_decref(m.p);
	buf_release(&m.title_buf);
	buf_release(&m.summary);
	buf_release(&m.advice);
	buf_release(&m.brief);
	buf_release(&m.extra);
	return rc;
}
