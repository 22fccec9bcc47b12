/* The Slack sender (see notify.h): one thread delivering the catalog's
 * event outbox to the incoming webhook, strictly oldest-first, with rate
 * limit, Retry-After, backoff and a give-up rule.
 *
 * Threading: the sender thread alone uses n->cat, n->curl and the fields
 * marked "sender only". Everything callers touch is under n->mu, which the
 * sender never holds during I/O, so notify_wake and notify_get_stats never
 * wait on Slack or SQLite. */
#include "notify.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <sqlite3.h>

#include "buf.h"
#include "catalog.h"
#include "log.h"
#include "mem.h"
#include "slack.h"

#define MOD "notify"
#define RESP_MAX 4096         /* bytes of an answer kept for messages */
#define SNIPPET_MAX 200       /* characters of an answer put in an error */
#define CATALOG_RETRY_S 5.0   /* wait after a catalog error */

struct notify {
	/* Set by notify_start, read-only afterwards. */
	struct notify_opts o;
	char *url;                    /* the secret */
	char *host;                   /* what messages show instead */
	char *secret_part;            /* path and query of the URL */
	struct catalog *cat;          /* the sender's own connection */
	CURL *curl;
	struct curl_slist *headers;
	pthread_t thread;

	/* Sender only. */
	uint64_t rng;
	double next_post_mono;        /* no POST before (rate limit, 429) */
	int64_t unmarked_id;          /* delivered, mark failed: never re-post */
	int64_t text_only_id;         /* Slack rejected its blocks */
	struct buf resp;
	char errbuf[CURL_ERROR_SIZE];

	/* Guarded by mu. */
	pthread_mutex_t mu;
	pthread_cond_t cv;            /* on CLOCK_MONOTONIC */
	bool wake;
	bool stop;
	double drain_deadline;        /* monotonic seconds */
	struct notify_stats st;
};

/* One POST's outcome. */
struct post_result {
	CURLcode cc;
	long status;                  /* 0: no HTTP answer */
	long retry_after_s;           /* -1: none */
	char error[400];              /* "" on 2xx; never holds the URL */
};

static double mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* xorshift64*: jitter only, no quality needed. */
static double rng01(struct notify *n)
{
	n->rng ^= n->rng >> 12;
	n->rng ^= n->rng << 25;
	n->rng ^= n->rng >> 27;
	return (double)((n->rng * 2685821657736338717ULL) >> 11) / 9007199254740992.0;
}

static void opts_fill(struct notify_opts *o, const struct notify_opts *in)
{
	static const struct notify_opts defaults = {
		.min_interval_ms = 1000,
		.backoff_initial_ms = 1000,
		.backoff_max_ms = 300000,
		.retry_after_max_s = 3600,
		.give_up_after_s = 86400,
		.connect_timeout_ms = 5000,
		.timeout_ms = 15000,
		.poll_ms = 5000,
	};

	*o = defaults;
	if (!in)
		return;
#define TAKE(f) do { if (in->f > 0) o->f = in->f; } while (0)
	TAKE(min_interval_ms);
	TAKE(backoff_initial_ms);
	TAKE(backoff_max_ms);
	TAKE(retry_after_max_s);
	TAKE(give_up_after_s);
	TAKE(connect_timeout_ms);
	TAKE(timeout_ms);
	TAKE(poll_ms);
#undef TAKE
}

/* ---- the secret: messages never carry the URL ---- */

/* Replaces the URL and its secret path in s (in place, bounded). */
static void scrub(const struct notify *n, char *s, size_t size)
{
	static const char with[] = "the Slack webhook";
	const char *needles[2] = { n->url, n->secret_part };

	for (size_t k = 0; k < 2; k++) {
		const char *nd = needles[k];
		char *hit;

		/* A needle inside the replacement would never end. */
		if (!nd || strlen(nd) < 4 || strstr(with, nd))
			continue;
		while ((hit = strstr(s, nd)) != NULL) {
			char tail[512];
			str_copy(tail, sizeof(tail), hit + strlen(nd));
			*hit = '\0';
			snprintf(hit, size - (size_t)(hit - s), "%s%s", with, tail);
		}
	}
}

/* Printable one-line excerpt of an answer body. */
static void snippet(const struct buf *b, char *out, size_t size)
{
	size_t o = 0;

	for (size_t i = 0; i < b->len && o + 1 < size && o < SNIPPET_MAX; i++) {
		unsigned char c = (unsigned char)b->data[i];
		out[o++] = c >= 0x20 && c < 0x7f ? (char)c : ' ';
	}
	while (o > 0 && out[o - 1] == ' ')
		o--;
	out[o] = '\0';
}

/* ---- HTTP ---- */

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct buf *b = arg;
	size_t len = size * nmemb, room;

	room = b->len < RESP_MAX ? RESP_MAX - b->len : 0;
	if (room)
		buf_append(b, ptr, len < room ? len : room, NULL);
	return len;  /* the rest is dropped, not an error */
}

static void post(struct notify *n, const char *body, struct post_result *r)
{
	curl_off_t ra = -1;
	char snip[SNIPPET_MAX + 1];

	memset(r, 0, sizeof(*r));
	r->retry_after_s = -1;
	buf_reset(&n->resp);
	n->errbuf[0] = '\0';
	curl_easy_setopt(n->curl, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(n->curl, CURLOPT_POSTFIELDSIZE_LARGE,
			 (curl_off_t)strlen(body));
	r->cc = curl_easy_perform(n->curl);
	if (r->cc != CURLE_OK) {
		snprintf(r->error, sizeof(r->error),
			 "unable to reach the Slack webhook on '%s': %s", n->host,
			 n->errbuf[0] ? n->errbuf : curl_easy_strerror(r->cc));
		scrub(n, r->error, sizeof(r->error));
		return;
	}
	curl_easy_getinfo(n->curl, CURLINFO_RESPONSE_CODE, &r->status);
	/* 0 means "none" here too: a 429 without a usable Retry-After
	 * backs off instead of hammering. */
	if (curl_easy_getinfo(n->curl, CURLINFO_RETRY_AFTER, &ra) == CURLE_OK &&
	    ra > 0)
		r->retry_after_s = ra > LONG_MAX ? LONG_MAX : (long)ra;
	if (r->status >= 200 && r->status < 300)
		return;
	snippet(&n->resp, snip, sizeof(snip));
	snprintf(r->error, sizeof(r->error),
		 "the Slack webhook on '%s' answered HTTP %ld%s%s", n->host,
		 r->status, snip[0] ? ": " : "", snip);
	scrub(n, r->error, sizeof(r->error));
}

/* ---- outbox ---- */

/* The oldest pending event by id, whether due or not, so a retried event
 * is never overtaken (catalog_event_due orders by next_attempt_at). The
 * partial index keeps this off the sent history. */
static int head_fetch(struct notify *n, struct catalog_event *ev,
		      double *next_at, bool *found, struct err *e)
{
	sqlite3 *db = catalog_sqlite(n->cat);
	sqlite3_stmt *st = NULL;
	int rc;

	*found = false;
	memset(ev, 0, sizeof(*ev));
	if (sqlite3_prepare_v2(db,
		"SELECT id, created_at, cluster, server, kind, severity, payload, "
		"  attempts, next_attempt_at "
		"FROM events INDEXED BY events_pending "
		"WHERE delivery = 'pending' ORDER BY id LIMIT 1",
		-1, &st, NULL) != SQLITE_OK)
		return catalog_error(n->cat, "unable to read the outbox", e);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		const unsigned char *s;

		ev->id = sqlite3_column_int64(st, 0);
		ev->created_at = sqlite3_column_double(st, 1);
#define COL(i) ((s = sqlite3_column_text(st, i)) != NULL ? xstrdup((const char *)s) : NULL)
		ev->cluster = COL(2);
		ev->server = COL(3);
		ev->kind = COL(4);
		ev->severity = COL(5);
		ev->payload = COL(6);
#undef COL
		ev->attempts = sqlite3_column_int(st, 7);
		*next_at = sqlite3_column_double(st, 8);
		*found = true;
		rc = SQLITE_DONE;
	}
	if (rc != SQLITE_DONE) {
		catalog_error(n->cat, "unable to read the outbox", e);
		sqlite3_finalize(st);
		return ERR_CATALOG;
	}
	sqlite3_finalize(st);
	if (*found && !ev->kind)
		ev->kind = xstrdup("unknown");
	if (*found && !ev->severity)
		ev->severity = xstrdup("info");
	return 0;
}

static void event_release(struct catalog_event *ev)
{
	free(ev->cluster);
	free(ev->server);
	free(ev->kind);
	free(ev->severity);
	free(ev->payload);
	memset(ev, 0, sizeof(*ev));
}

/* Outbox depth and age for the stats. */
static void depth_refresh(struct notify *n)
{
	sqlite3_stmt *st = NULL;
	size_t pending = 0;
	double oldest = 0;

	if (sqlite3_prepare_v2(catalog_sqlite(n->cat),
		"SELECT count(*), min(created_at) FROM events "
		"INDEXED BY events_pending WHERE delivery = 'pending'",
		-1, &st, NULL) != SQLITE_OK)
		return;
	if (sqlite3_step(st) == SQLITE_ROW) {
		pending = (size_t)sqlite3_column_int64(st, 0);
		oldest = sqlite3_column_double(st, 1);
	}
	sqlite3_finalize(st);
	pthread_mutex_lock(&n->mu);
	n->st.pending = pending;
	n->st.oldest_pending_at = oldest;
	pthread_mutex_unlock(&n->mu);
}

/* ---- delivery ---- */

static double backoff_s(struct notify *n, int attempts)
{
	double cap = n->o.backoff_max_ms / 1000.0;
	double d = n->o.backoff_initial_ms / 1000.0;

	for (int i = 0; i < attempts && d < cap; i++)
		d *= 2;
	d *= 0.75 + 0.5 * rng01(n);  /* +-25 %: senders do not retry in step */
	return d < cap ? d : cap;
}

static void stats_attempt(struct notify *n, const struct post_result *r,
			  bool ok, bool given_up)
{
	pthread_mutex_lock(&n->mu);
	n->st.last_http_status = (int)r->status;
	if (ok) {
		n->st.sent++;
		n->st.last_sent_at = catalog_now();
		if (n->st.pending)
			n->st.pending--;
	} else {
		n->st.failed_attempts++;
		if (r->status == 429)
			n->st.rate_limited++;
		str_copy(n->st.last_error, sizeof(n->st.last_error), r->error);
	}
	if (given_up) {
		n->st.given_up++;
		if (n->st.pending)
			n->st.pending--;
	}
	pthread_mutex_unlock(&n->mu);
}

/* A catalog write failed: the event stays pending as it was. Pause the
 * sender so it does not hammer Slack or the log. */
static void mark_error(struct notify *n, const struct catalog_event *ev,
			    const struct err *me)
{
	log_error(MOD, "event %" PRId64 " (%s): %s", ev->id, ev->kind, me->msg);
	if (n->next_post_mono < mono_now() + CATALOG_RETRY_S)
		n->next_post_mono = mono_now() + CATALOG_RETRY_S;
}

static void give_up(struct notify *n, const struct catalog_event *ev,
		    const struct post_result *r, const char *why)
{
	char msg[600];
	struct err me;

	err_init(&me);
	snprintf(msg, sizeof(msg), "%s%s", why, r->error);
	log_error(MOD, "event %" PRId64 " (%s) dropped after %d attempt%s: %s",
		  ev->id, ev->kind, ev->attempts + 1, ev->attempts ? "s" : "",
		  msg);
	stats_attempt(n, r, false, true);
	if (catalog_event_mark_failed(n->cat, ev->id, msg, &me) != 0)
		mark_error(n, ev, &me);
}

static void retry_at(struct notify *n, const struct catalog_event *ev,
		     const struct post_result *r, double delay_s,
		     const char *note)
{
	struct err me;
	char msg[600];

	err_init(&me);
	snprintf(msg, sizeof(msg), "%s%s", r->error, note);
	stats_attempt(n, r, false, false);
	if (catalog_event_mark_retry(n->cat, ev->id, catalog_now() + delay_s,
				     msg, &me) != 0)
		mark_error(n, ev, &me);
}

/* Posts the head event once and records the outcome. */
static void deliver(struct notify *n, const struct catalog_event *ev)
{
	enum slack_style style = ev->id == n->text_only_id ? SLACK_TEXT_ONLY
							   : SLACK_BLOCKS;
	struct post_result r;
	struct err fe, me;
	char *body = NULL;
	double now;

	err_init(&fe);
	err_init(&me);
	if (slack_format_event(ev, style, &body, &fe) != 0) {
		memset(&r, 0, sizeof(r));
		str_copy(r.error, sizeof(r.error), fe.msg);
		give_up(n, ev, &r, "");
		return;
	}
	post(n, body, &r);
	free(body);
	/* Spaced from the end of this POST: arrivals at Slack are then at
	 * least min_interval apart whatever the network did. */
	n->next_post_mono = mono_now() + n->o.min_interval_ms / 1000.0;
	now = catalog_now();

	if (r.cc == CURLE_OK && r.status >= 200 && r.status < 300) {
		/* The at-least-once window is from Slack's accept to this
		 * commit: nothing else happens in between. */
		if (catalog_event_mark_sent(n->cat, ev->id, &me) != 0) {
			n->unmarked_id = ev->id;
			log_error(MOD, "event %" PRId64 " (%s) was delivered but "
				  "not marked sent: %s; retrying the mark (a "
				  "restart before it succeeds sends it again)",
				  ev->id, ev->kind, me.msg);
		}
		if (n->text_only_id == ev->id)
			n->text_only_id = 0;
		stats_attempt(n, &r, true, false);
		log_debug(MOD, "event %" PRId64 " (%s) delivered to the Slack "
			  "webhook on '%s'", ev->id, ev->kind, n->host);
		return;
	}

	if (r.cc == CURLE_OK && r.status == 429) {
		double wait = r.retry_after_s >= 0 ? (double)r.retry_after_s
						   : backoff_s(n, ev->attempts);
		if (wait > n->o.retry_after_max_s)
			wait = n->o.retry_after_max_s;
		log_warn(MOD, "rate limited by Slack (HTTP 429): waiting %.0f s "
			 "before event %" PRId64 " (%s) and the ones after it",
			 wait, ev->id, ev->kind);
		if (n->next_post_mono < mono_now() + wait)
			n->next_post_mono = mono_now() + wait;
		retry_at(n, ev, &r, wait, "");
		return;
	}

	if (r.cc != CURLE_OK || r.status >= 500 || r.status == 408) {
		double delay = backoff_s(n, ev->attempts);

		if (now - ev->created_at >= n->o.give_up_after_s) {
			give_up(n, ev, &r, "still failing after the give-up "
				"age of the outbox: ");
			return;
		}
		log_warn(MOD, "event %" PRId64 " (%s): %s; attempt %d in %.1f s",
			 ev->id, ev->kind, r.error, ev->attempts + 2, delay);
		retry_at(n, ev, &r, delay, "");
		return;
	}

	if (r.status == 400 && style == SLACK_BLOCKS) {
		/* Most likely our blocks broke one of Slack's rules: the
		 * plain text still tells the on-call what happened. */
		log_warn(MOD, "event %" PRId64 " (%s): %s; sending it as plain "
			 "text", ev->id, ev->kind, r.error);
		n->text_only_id = ev->id;
		retry_at(n, ev, &r, 0, "; retrying as plain text");
		return;
	}

	/* 403 invalid_token, 404 no_service, 410 channel_is_archived ...:
	 * repeating the same POST will never succeed. */
	give_up(n, ev, &r, r.status == 403 || r.status == 404 ||
		r.status == 410 ? "check slack_webhook in the config: " : "");
}

/* ---- the thread ---- */

/* One step: deliver the head event if it may go now, else return how long
 * to wait (seconds; < 0: nothing left to do while stopping). */
static double step(struct notify *n, bool stopping, double deadline)
{
	struct catalog_event ev;
	struct err e;
	double next_at = 0, now, mono, wait;
	bool found;

	err_init(&e);
	if (n->unmarked_id) {
		if (catalog_event_mark_sent(n->cat, n->unmarked_id, &e) != 0 &&
		    e.code != ERR_NOT_FOUND) {
			log_error(MOD, "%s", e.msg);
			return CATALOG_RETRY_S;
		}
		n->unmarked_id = 0;
		err_init(&e);
	}
	depth_refresh(n);
	if (head_fetch(n, &ev, &next_at, &found, &e) != 0) {
		log_error(MOD, "%s", e.msg);
		return CATALOG_RETRY_S;
	}
	if (!found)
		return stopping ? -1 : n->o.poll_ms / 1000.0;
	now = catalog_now();
	mono = mono_now();
	wait = next_at - now;
	/* Longer than any wait this sender sets: the wall clock stepped
	 * back since; do not park the whole outbox behind it. */
	if (wait > n->o.backoff_max_ms / 1000.0 + n->o.retry_after_max_s + 60)
		wait = 0;
	if (mono + wait < n->next_post_mono)
		wait = n->next_post_mono - mono;
	if (wait > 0) {
		event_release(&ev);
		if (stopping && mono + wait > deadline)
			return -1;
		return wait < n->o.poll_ms / 1000.0 ? wait : n->o.poll_ms / 1000.0;
	}
	deliver(n, &ev);
	event_release(&ev);
	return 0;
}

/* Sleeps up to wait_s or until woken. */
static void nap(struct notify *n, double wait_s)
{
	struct timespec ts;
	double until = mono_now() + wait_s;

	ts.tv_sec = (time_t)until;
	ts.tv_nsec = (long)((until - (double)ts.tv_sec) * 1e9);
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&n->mu);
	while (!n->wake)
		if (pthread_cond_timedwait(&n->cv, &n->mu, &ts) == ETIMEDOUT)
			break;
	n->wake = false;
	pthread_mutex_unlock(&n->mu);
}

static void *sender_main(void *arg)
{
	struct notify *n = arg;

	for (;;) {
		bool stopping;
		double deadline, wait;

		pthread_mutex_lock(&n->mu);
		stopping = n->stop;
		deadline = n->drain_deadline;
		pthread_mutex_unlock(&n->mu);
		if (stopping && mono_now() >= deadline)
			break;
		wait = step(n, stopping, deadline);
		if (wait < 0)
			break;
		if (stopping && mono_now() + wait > deadline)
			wait = deadline - mono_now();
		if (wait > 0)
			nap(n, wait);
	}
	depth_refresh(n);
	return NULL;
}

/* ---- public ---- */

static void notify_free(struct notify *n)
{
	if (!n)
		return;
	if (n->curl)
		curl_easy_cleanup(n->curl);
	curl_slist_free_all(n->headers);
	catalog_close(n->cat);
	buf_release(&n->resp);
	free(n->url);
	free(n->host);
	free(n->secret_part);
	free(n);
}

/* Checks the URL and finds what messages may show (the host) and what
 * they must not (path and query). Never puts the URL in e. */
static int url_parse(struct notify *n, const char *url, struct err *e)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL, *path = NULL, *query = NULL;
	int rc = 0;

	if (!u)
		return err_set(e, ERR_NOTIFY, "unable to parse the Slack webhook "
			       "URL: out of memory");
	if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
	    (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)) {
		rc = err_set(e, ERR_CONFIG, "the Slack webhook URL (not shown: a "
			     "secret) is not a valid http:// or https:// URL");
		goto out;
	}
	n->host = xstrdup(host);
	if (curl_url_get(u, CURLUPART_PATH, &path, 0) == CURLUE_OK &&
	    strcmp(path, "/") != 0) {
		n->secret_part = xstrdup(path);
	} else if (curl_url_get(u, CURLUPART_QUERY, &query, 0) == CURLUE_OK) {
		n->secret_part = xstrdup(query);
	}
out:
	curl_free(scheme);
	curl_free(host);
	curl_free(path);
	curl_free(query);
	curl_url_cleanup(u);
	return rc;
}

static int curl_setup(struct notify *n, struct err *e)
{
	CURL *c = curl_easy_init();
	CURLcode cc = CURLE_OK;

	if (!c)
		return err_set(e, ERR_NOTIFY, "unable to create a curl handle for "
			       "the Slack webhook");
	n->curl = c;
	n->headers = curl_slist_append(NULL, "Content-Type: application/json");
	n->headers = curl_slist_append(n->headers, "Expect:");
	if (!n->headers)
		return err_set(e, ERR_NOTIFY, "unable to set up the Slack request "
			       "headers");
#define SET(opt, val) do { if (cc == CURLE_OK) cc = curl_easy_setopt(c, opt, val); } while (0)
	SET(CURLOPT_URL, n->url);
	SET(CURLOPT_PROTOCOLS_STR, "http,https");
	SET(CURLOPT_POST, 1L);
	SET(CURLOPT_HTTPHEADER, n->headers);
	SET(CURLOPT_NOSIGNAL, 1L);  /* threads: no SIGALRM for DNS timeouts */
	SET(CURLOPT_CONNECTTIMEOUT_MS, (long)n->o.connect_timeout_ms);
	SET(CURLOPT_TIMEOUT_MS, (long)n->o.timeout_ms);
	SET(CURLOPT_FOLLOWLOCATION, 0L);
	SET(CURLOPT_USERAGENT, "backupd");
	SET(CURLOPT_WRITEFUNCTION, on_body);
	SET(CURLOPT_WRITEDATA, &n->resp);
	SET(CURLOPT_ERRORBUFFER, n->errbuf);
#undef SET
	if (cc != CURLE_OK)
		return err_set(e, ERR_NOTIFY, "unable to set up the curl handle "
			       "for the Slack webhook: %s", curl_easy_strerror(cc));
	return 0;
}

int notify_start(const char *catalog_path, const char *webhook_url,
		 const struct notify_opts *o, struct notify **out,
		 struct err *e)
{
	struct notify *n;
	pthread_condattr_t ca;
	int rc;

	*out = NULL;
	if (!webhook_url || !*webhook_url)
		return err_set(e, ERR_CONFIG, "no Slack webhook URL given");
	if (!catalog_path || !*catalog_path || strcmp(catalog_path, ":memory:") == 0)
		return err_set(e, ERR_INTERNAL, "the Slack sender needs a catalog "
			       "file it can open a second connection to");
	log_register_secret(webhook_url);

	n = xcalloc(1, sizeof(*n));
	opts_fill(&n->o, o);
	n->url = xstrdup(webhook_url);
	buf_init(&n->resp, RESP_MAX + 1);
	n->rng = ((uint64_t)time(NULL) << 20) ^ (uint64_t)getpid() ^
		 (uint64_t)(uintptr_t)n;
	if (!n->rng)
		n->rng = 88172645463325252ULL;
	/* A previous sender (before a restart) may have posted just now. */
	n->next_post_mono = mono_now() + n->o.min_interval_ms / 1000.0;
	rc = url_parse(n, webhook_url, e);
	if (rc == 0 && n->secret_part && strlen(n->secret_part) >= 8)
		log_register_secret(n->secret_part);
	if (rc == 0)
		rc = catalog_open(catalog_path, &n->cat, e);
	if (rc == 0)
		rc = curl_setup(n, e);
	if (rc != 0) {
		notify_free(n);
		return rc;
	}

	pthread_mutex_init(&n->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&n->cv, &ca);
	pthread_condattr_destroy(&ca);
	rc = pthread_create(&n->thread, NULL, sender_main, n);
	if (rc != 0) {
		pthread_cond_destroy(&n->cv);
		pthread_mutex_destroy(&n->mu);
		notify_free(n);
		return err_set_errno(e, ERR_INTERNAL, rc, "unable to start the "
				     "Slack sender thread");
	}
	log_info(MOD, "sending events to the Slack webhook on '%s'", n->host);
	*out = n;
	return 0;
}

void notify_wake(struct notify *n)
{
	if (!n)
		return;
	pthread_mutex_lock(&n->mu);
	n->wake = true;
	pthread_cond_signal(&n->cv);
	pthread_mutex_unlock(&n->mu);
}

int notify_stop(struct notify *n, int drain_timeout_ms)
{
	size_t pending;

	if (!n)
		return 0;
	pthread_mutex_lock(&n->mu);
	n->stop = true;
	n->wake = true;
	n->drain_deadline = mono_now() +
		(drain_timeout_ms > 0 ? drain_timeout_ms / 1000.0 : 0);
	pthread_cond_signal(&n->cv);
	pthread_mutex_unlock(&n->mu);
	pthread_join(n->thread, NULL);

	pending = n->st.pending;
	if (pending)
		log_info(MOD, "Slack sender stopped; %zu event%s in the "
			 "outbox for the next start", pending,
			 pending == 1 ? " stays" : "s stay");
	pthread_cond_destroy(&n->cv);
	pthread_mutex_destroy(&n->mu);
	notify_free(n);
	return pending > INT_MAX ? INT_MAX : (int)pending;
}

void notify_get_stats(struct notify *n, struct notify_stats *st)
{
	memset(st, 0, sizeof(*st));
	if (!n)
		return;
	pthread_mutex_lock(&n->mu);
	*st = n->st;
	pthread_mutex_unlock(&n->mu);
}
