/* The daemon's control socket: a Unix stream socket (mode 0600) speaking
 * one JSON object per line each way. backupctl uses it to ask the running
 * daemon for live status and to hand it jobs, so the daemon's job locks and
 * schedules stay in charge. Shared by both sides, hence in lib/. */
#ifndef BACKUPD_CONTROL_H
#define BACKUPD_CONTROL_H

#include <stdbool.h>

#include <jansson.h>

#include "err.h"

/* Longest request or reply line accepted. */
#define CONTROL_LINE_MAX (16u * 1024u * 1024u)

/* Server side. The handler runs on a thread of its own per connection
 * and returns the reply (the server frees it); it may block for as long as
 * the job takes. */
typedef json_t *(*control_handler_fn)(void *ctx, json_t *request);
struct control_server;
int control_server_start(const char *path, control_handler_fn fn, void *ctx,
			 struct control_server **out, struct err *e);
void control_server_stop(struct control_server *s);    /* NULL ok */

/* Client side. ERR_NOT_FOUND when no daemon listens at path (no socket,
 * or a stale one): the caller then runs the job itself. Otherwise the
 * daemon's reply (caller json_decref's it) or an I/O error. */
int control_call(const char *path, json_t *request, int timeout_ms,
		 json_t **reply, struct err *e);

/* Reply helpers: {"ok":true, ...} and {"ok":false,"code":N,"error":"..."}.
 * control_reply_error turns a failed reply back into a struct err. */
json_t *control_reply_ok(void);
json_t *control_reply_err(const struct err *e);
int control_reply_check(json_t *reply, struct err *e);

#endif
