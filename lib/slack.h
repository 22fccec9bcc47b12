/* Slack messages for outbox events: turns one catalog event (kind, severity,
 * cluster, server, JSON payload) into a Block Kit message readable on a
 * phone: an emoji by severity, what happened, where, the key figure, and
 * what to do for failures, with a plain `text` fallback. Pure functions,
 * no I/O; safe from any thread. */
#ifndef BACKUPD_SLACK_H
#define BACKUPD_SLACK_H

#include <stddef.h>

#include "buf.h"
#include "catalog.h"
#include "err.h"

/* The context block of every message carries block_id
 * SLACK_BLOCK_ID_PREFIX "<event id>", so a receiver (and the tests) can
 * tell which outbox event a post delivers. */
#define SLACK_BLOCK_ID_PREFIX "backupd-event-"

/* Slack's limits (characters) the formatter keeps to; longer user text is
 * cut with an ellipsis. */
#define SLACK_HEADER_MAX 150
#define SLACK_TEXT_MAX 3000
#define SLACK_FIELD_MAX 2000
#define SLACK_FIELDS_MAX 10
#define SLACK_FALLBACK_MAX 600

enum slack_style {
	SLACK_BLOCKS = 0,   /* Block Kit blocks plus the `text` fallback */
	SLACK_TEXT_ONLY,    /* only `text`: for when Slack rejected the blocks */
};

/* Formats ev as the JSON body of an incoming-webhook POST. Never fails on
 * odd input: unknown kinds, missing or mistyped payload fields and a
 * payload that is not JSON still give a sensible generic message. Fails
 * only on an internal error (ERR_INTERNAL). Caller frees *json with
 * free(). */
int slack_format_event(const struct catalog_event *ev, enum slack_style style,
		       char **json, struct err *e);

/* Appends s with Slack's control characters escaped (& < > become &amp;
 * &lt; &gt;), invalid UTF-8 replaced by U+FFFD, control characters other
 * than newline and tab replaced by a space, and at most max_chars
 * characters kept (an ellipsis marks a cut; 0 = no limit). NULL appends
 * nothing. */
int slack_escape(struct buf *out, const char *s, size_t max_chars,
		 struct err *e);

/* Human figures for messages: "3.1 GiB", "512 B"; "850 ms", "42 s",
 * "4m 12s", "2h 05m", "3d 4h". Always NUL-terminate out (24 bytes are
 * always enough). */
void slack_human_bytes(double bytes, char *out, size_t out_size);
void slack_human_duration(double seconds, char *out, size_t out_size);

#endif
