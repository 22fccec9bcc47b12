/* Prometheus metrics: GET /metrics on metrics_listen (libmicrohttpd), in the
 * text exposition format 0.0.4.
 *
 * Whoever owns state writes its own families through a collector callback:
 * the lag monitor (lag_monitor_metrics), and the daemon for snapshots, jobs,
 * the outbox and Slack. Collectors append samples with metrics_gauge /
 * metrics_counter, which write the HELP and TYPE lines once per name, escape
 * label values, and may be called in any order: metrics_render groups the
 * lines of each family together before the page is served.
 *
 * Threading: the HTTP server has one internal thread; the collector is
 * called from it, one request at a time, and must take its own locks. */
#ifndef BACKUPD_METRICS_H
#define BACKUPD_METRICS_H

#include <stdbool.h>

#include "buf.h"
#include "err.h"

/* Hard maximum of one /metrics page. */
#define METRICS_PAGE_MAX (8u * 1024u * 1024u)

struct metrics;

/* Appends samples to out (with the helpers below). Returns 0 or a negative
 * ERR_* code with e set; the request is then answered 500. */
typedef int (*metrics_collect_fn)(void *ctx, struct buf *out, struct err *e);

/* Listens on "host:port" (IPv4, [IPv6] or a name; the first address it
 * resolves to) and serves GET/HEAD /metrics with what fn collects; any
 * other path is 404, another method on /metrics 405. ctx is passed to fn.
 * Caller stops *out with metrics_stop. ERR_CONFIG for a bad address,
 * ERR_IO when the port cannot be bound. */
int metrics_start(const char *listen, metrics_collect_fn fn, void *ctx,
		  struct metrics **out, struct err *e);
/* Stops serving and waits for a running request; NULL is a no-op. */
void metrics_stop(struct metrics *m);
/* The port actually bound. */
unsigned metrics_port(const struct metrics *m);

/* One sample "name{k="v",...} value". labels: NULL or key, value pairs
 * ending with NULL, e.g. (const char *[]){ "cluster", c, NULL }; a NULL
 * value is written as "". The first sample of a name is preceded by
 * "# HELP name help" and "# TYPE name gauge|counter". ERR_INTERNAL for an
 * invalid metric or label name, or a name used with two types. NaN and
 * infinities are written as NaN, +Inf, -Inf. */
int metrics_gauge(struct buf *b, const char *name, const char *help,
		  const char *const *labels, double value, struct err *e);
int metrics_counter(struct buf *b, const char *name, const char *help,
		    const char *const *labels, double value, struct err *e);

/* Runs fn into a scratch buffer and appends its lines to out with every
 * family's lines together (families in the order of first appearance,
 * samples in the order written). metrics_start serves exactly this. */
int metrics_render(metrics_collect_fn fn, void *ctx, struct buf *out,
		   struct err *e);

/* Appends s escaped as a label value (\\, \" and \n), without quotes. */
int metrics_escape_label(struct buf *b, const char *s, struct err *e);
/* Appends v as the format writes numbers: shortest text that reads back
 * to the same double, or NaN / +Inf / -Inf. */
int metrics_format_value(struct buf *b, double v, struct err *e);

#endif
