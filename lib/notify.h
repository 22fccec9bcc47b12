/* The Slack sender: a thread that delivers the catalog's event outbox to
 * the Slack incoming webhook, oldest event first and strictly in order.
 *
 * Producers never talk to Slack. They write the event with
 * catalog_event_add() in the same transaction as the state it reports and,
 * after the commit, call notify_wake(). Neither waits for Slack: a slow or
 * dead Slack only makes the outbox grow (see notify_get_stats).
 *
 * Delivery: one POST at a time, never two closer than min_interval_ms
 * (Slack allows 1 message/s per webhook), also across a restart. 2xx: the
 * event is marked sent at once. 429: the same event again after its
 * Retry-After; later events wait behind it. 5xx, 408, timeouts and
 * connection errors: the same event again after an exponential backoff
 * with jitter (backoff_initial_ms doubling up to backoff_max_ms); an event
 * still failing give_up_after_s after it was created is marked failed.
 * 400: sent once more as plain text only (Slack rejected the blocks); any
 * other answer (403, 404, 410, ...) will never succeed: marked failed and
 * logged at once. The outbox survives restarts: pending events are sent
 * by the next sender.
 *
 * Exactly once, with one at-least-once window: the mark "sent" is written
 * right after the 2xx. If the process dies between Slack accepting a POST
 * and that commit (crash, SIGKILL, power loss losing the last WAL commit),
 * or the answer is lost after Slack accepted the request (a timeout), the
 * event is sent again: one duplicate. notify_stop never cuts a POST short,
 * so a clean stop causes none; if the mark itself fails (catalog busy) the
 * sender retries the mark and never re-posts the event while it runs.
 *
 * The webhook URL is a secret: notify_start registers it with the logger,
 * and messages and stored errors name only "the Slack webhook" and its
 * host.
 *
 * Threading: notify_start, notify_stop from one controlling thread;
 * notify_wake and notify_get_stats from any thread. The sender has its own
 * catalog connection and CURL handle. curl_global_init() must have run (in
 * main, before any thread starts). */
#ifndef BACKUPD_NOTIFY_H
#define BACKUPD_NOTIFY_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

/* Fields left 0 take the default. */
struct notify_opts {
	int min_interval_ms;     /* between two POSTs; 1000 */
	int backoff_initial_ms;  /* first retry after a failure; 1000 */
	int backoff_max_ms;      /* backoff cap; 300000 (5 min) */
	int retry_after_max_s;   /* longest Retry-After honoured; 3600 */
	int give_up_after_s;     /* event age after which failures are final; 86400 */
	int connect_timeout_ms;  /* 5000 */
	int timeout_ms;          /* whole request; 15000 */
	int poll_ms;             /* outbox re-read without a wake (events added
				  * by other processes, e.g. backupctl); 5000 */
};

struct notify;

/* Opens its own connection to the catalog at catalog_path (a file: WAL
 * lets it share the file with the caller's connection) and starts the
 * sender thread posting to webhook_url (http:// or https://). o NULL =
 * defaults. Errors: ERR_CONFIG (bad URL, never shown), ERR_CATALOG,
 * ERR_NOTIFY (curl), ERR_INTERNAL (thread). Stop and free with
 * notify_stop. */
int notify_start(const char *catalog_path, const char *webhook_url,
		 const struct notify_opts *o, struct notify **out,
		 struct err *e);

/* Tells the sender the outbox changed (call after the commit that added
 * events). Never blocks on I/O. NULL is a no-op. */
void notify_wake(struct notify *n);

/* Stops the sender and frees n. It keeps delivering due events for up to
 * drain_timeout_ms (0: none), then stops; a POST in flight is finished,
 * not cut short (so this may take up to timeout_ms longer). Undelivered
 * events stay in the outbox for the next start. Returns the number of
 * events still pending. NULL: 0. */
int notify_stop(struct notify *n, int drain_timeout_ms);

/* For /metrics. Counters count since notify_start. */
struct notify_stats {
	uint64_t sent;             /* events delivered (2xx) */
	uint64_t failed_attempts;  /* POSTs without a 2xx, 429s included */
	uint64_t rate_limited;     /* 429 answers */
	uint64_t given_up;         /* events marked failed */
	size_t pending;            /* outbox depth at the sender's last look */
	double oldest_pending_at;  /* created_at of the oldest pending event; 0: none */
	double last_sent_at;       /* unix time of the last delivery; 0: none */
	int last_http_status;      /* of the last POST; 0: no answer */
	char last_error[256];      /* of the last failed POST; "" if none */
};

/* A consistent copy; NULL n gives zeros. */
void notify_get_stats(struct notify *n, struct notify_stats *st);

#endif
