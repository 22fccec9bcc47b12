/* backupctl lag: replication lag per replica. Without --watch it measures
 * once (lag_measure_once: writes one heartbeat, reads every replica) and
 * adds the per-minute history the daemon recorded in the catalog. With
 * --watch S it runs the lag monitor itself for S seconds, printing every
 * state change and, each second, every replica's reading (JSON Lines with
 * --json), optionally serving /metrics and recording history like the
 * daemon. Threading: the monitor's event thread prints transitions while
 * the main thread prints readings; out_mu keeps lines whole. */
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "catalog.h"
#include "cli.h"
#include "lag.h"
#include "log.h"
#include "mem.h"
#include "metrics.h"

/* cli.h declares it once the verb is wired; repeated here for
 * -Wmissing-prototypes until then. */
int cli_lag(struct cli_ctx *ctx, int argc, char **argv, struct err *e);

const char cli_lag_help[] =
	"      --cluster C     only this cluster\n"
	"      --history N     per-minute history of the last N minutes from the catalog\n"
	"                      (default 10; 0: none)\n"
	"      --watch S       run the lag monitor for S seconds (0: until Ctrl-C): state\n"
	"                      changes as they happen and every replica's reading each\n"
	"                      second (--json: one JSON object per line)\n"
	"      --interval MS   with --watch: heartbeat and read interval, 100-500 (default 250)\n"
	"      --metrics       with --watch: serve Prometheus /metrics on metrics_listen\n"
	"      --record        with --watch: record history and state in the catalog, as the\n"
	"                      daemon does\n"
	"  Lag is the age of a heartbeat written on the primary, as the replica has it; a\n"
	"  stopped thread or unreachable replica shows the growing figure as UNBOUNDED.\n"
	"  Exit status: 0 when every replica is ok or warn, 5 when one is unreachable,\n"
	"  18 when one is broken, critical or cannot be judged.\n";

#define LAG_HISTORY_DEFAULT_MIN 10
#define LAG_HISTORY_MAX_MIN (30 * 24 * 60)
#define LAG_WATCH_MAX_S (7L * 24 * 3600)

struct lag_opts {
	const char *cluster;
	long history_min;
	bool watch;
	long watch_s;
	long interval_ms;
	bool metrics;
	bool record;
};

static int lag_opt(int opt, const char *arg, void *u)
{
	struct lag_opts *o = u;

	switch (opt) {
	case 'C':
		o->cluster = arg;
		return 0;
	case 'H':
		return str_to_long(arg, 0, LAG_HISTORY_MAX_MIN, &o->history_min);
	case 'W':
		o->watch = true;
		return str_to_long(arg, 0, LAG_WATCH_MAX_S, &o->watch_s);
	case 'I':
		return str_to_long(arg, LAG_INTERVAL_MIN_MS, LAG_INTERVAL_MAX_MS,
				   &o->interval_ms);
	case 'M':
		o->metrics = true;
		return 0;
	case 'R':
		o->record = true;
		return 0;
	default:
		return -1;
	}
}

/* ---- output helpers -------------------------------------------------------- */

static json_t *jnum(double v)
{
	return isfinite(v) ? json_real(round(v * 1000) / 1000) : json_null();
}

static json_t *jtime(double t)
{
	char b[40];

	if (t <= 0 || catalog_time_iso(t, true, b, sizeof(b)) != 0)
		return json_null();
	return json_string(b);
}

static json_t *reading_json(const struct lag_reading *r)
{
	json_t *o = json_object();

	json_object_set_new(o, "cluster", json_string(r->cluster));
	json_object_set_new(o, "server", json_string(r->server));
	json_object_set_new(o, "state", json_string(lag_state_name(r->state)));
	json_object_set_new(o, "lag_s", jnum(r->lag_s));
	json_object_set_new(o, "lag_known", json_boolean(r->lag_known));
	json_object_set_new(o, "unbounded", json_boolean(!r->lag_known));
	json_object_set_new(o, "heartbeat_age_s",
			    r->heartbeat_age_s >= 0 ? jnum(r->heartbeat_age_s) : json_null());
	json_object_set_new(o, "seconds_behind",
			    r->seconds_behind >= 0 ? json_integer(r->seconds_behind) : json_null());
	json_object_set_new(o, "io_running", json_boolean(r->io_running));
	json_object_set_new(o, "sql_running", json_boolean(r->sql_running));
	json_object_set_new(o, "last_errno", json_integer(r->last_errno));
	json_object_set_new(o, "reason", r->reason[0] ? json_string(r->reason) : json_null());
	json_object_set_new(o, "measured_at", jtime(r->updated_at));
	return o;
}

static void text_lag(const struct lag_reading *r, char *out, size_t n)
{
	if (!isfinite(r->lag_s))
		snprintf(out, n, "lag UNBOUNDED (never measured)");
	else if (r->lag_known)
		snprintf(out, n, "lag %.3f s", r->lag_s);
	else
		snprintf(out, n, "lag >= %.3f s UNBOUNDED", r->lag_s);
}

/* ---- one-shot ------------------------------------------------------------- */

static json_t *history_json(const struct lag_sample *h, size_t n)
{
	json_t *a = json_array();
	char t[40];

	for (size_t i = 0; i < n; i++) {
		json_t *o = json_object();

		catalog_time_iso(h[i].ts, false, t, sizeof(t));
		json_object_set_new(o, "minute", json_string(t));
		json_object_set_new(o, "ts", json_integer((json_int_t)h[i].ts));
		json_object_set_new(o, "lag_s", h[i].have_lag ? jnum(h[i].lag_s) : json_null());
		json_object_set_new(o, "lag_max_s", jnum(h[i].lag_max_s));
		json_object_set_new(o, "state", json_string(lag_state_name(h[i].state)));
		json_array_append_new(a, o);
	}
	return a;
}

static void history_text(const struct lag_sample *h, size_t n)
{
	char t[40];

	for (size_t i = 0; i < n; i++) {
		catalog_time_iso(h[i].ts, false, t, sizeof(t));
		printf("      %s  ", t);
		if (h[i].have_lag)
			printf("mean %8.3f s  max %8.3f s  ", h[i].lag_s,
			       isfinite(h[i].lag_max_s) ? h[i].lag_max_s : h[i].lag_s);
		else
			printf("%-30s", "no figure");
		printf("%s\n", lag_state_name(h[i].state));
	}
}

/* The catalog only when it exists: a look at lag must not create one. */
static struct catalog *history_catalog(const struct config *cfg)
{
	struct catalog *cat = NULL;
	struct err e;

	if (!cfg->catalog || access(cfg->catalog, F_OK) != 0)
		return NULL;
	err_init(&e);
	if (catalog_open(cfg->catalog, &cat, &e) != 0) {
		log_warn("lag", "no lag history: %s", e.msg);
		return NULL;
	}
	return cat;
}

static int lag_once(struct cli_ctx *ctx, const struct lag_opts *o,
		    struct err *e)
{
	const struct config *cfg = ctx->cfg;
	struct lag_reading *rd;
	struct catalog *cat = NULL;
	size_t max = 0, n = 0;
	json_t *root = NULL, *arr = NULL;
	int worst = 0, rc;
	const char *cur_cluster = NULL;

	for (size_t i = 0; i < cfg->n_clusters; i++)
		if (!o->cluster || strcmp(o->cluster, cfg->clusters[i].name) == 0)
			max += cfg->clusters[i].n_replicas;
	rd = xcalloc(max ? max : 1, sizeof(*rd));
	if ((rc = lag_measure_once(cfg, o->cluster, rd, max, &n, e))) {
		free(rd);
		return rc;
	}
	if (o->history_min > 0)
		cat = history_catalog(cfg);
	if (ctx->json) {
		root = json_object();
		arr = json_array();
		json_object_set_new(root, "source", json_string("measured"));
		json_object_set_new(root, "replicas", arr);
	} else if (n == 0) {
		printf("no replicas configured\n");
	}
	for (size_t i = 0; i < n; i++) {
		const struct lag_reading *r = &rd[i];
		struct lag_sample *h = NULL;
		size_t hn = 0;
		struct err he;

		err_init(&he);
		if (cat && lag_history_query(cat, r->cluster, r->server,
					     catalog_now() - (double)o->history_min * 60,
					     (size_t)o->history_min + 1, &h, &hn, &he) != 0)
			log_warn("lag", "%s", he.msg);
		if (r->state == LAG_DOWN)
			worst = ERR_DB_CONNECT;
		else if ((r->state == LAG_BROKEN || r->state == LAG_CRIT ||
			  r->state == LAG_UNKNOWN) && worst == 0)
			worst = ERR_REPLICATION;
		if (ctx->json) {
			json_t *j = reading_json(r);
			if (o->history_min > 0)
				json_object_set_new(j, "history", history_json(h, hn));
			json_array_append_new(arr, j);
		} else {
			char lag[80];

			if (!cur_cluster || strcmp(cur_cluster, r->cluster) != 0)
				printf("cluster %s\n", r->cluster);
			cur_cluster = r->cluster;
			text_lag(r, lag, sizeof(lag));
			printf("  %-21s %-7s %s", r->server, lag_state_name(r->state), lag);
			if (r->heartbeat_age_s >= 0)
				printf("  heartbeat %.3f s", r->heartbeat_age_s);
			if (r->seconds_behind >= 0)
				printf("  Seconds_Behind_Master %lld", r->seconds_behind);
			printf("  io=%s sql=%s\n", r->io_running ? "yes" : "NO",
			       r->sql_running ? "yes" : "NO");
			if (r->reason[0])
				printf("      %s\n", r->reason);
			if (hn) {
				printf("    history (per minute):\n");
				history_text(h, hn);
			}
		}
		free(h);
	}
	catalog_close(cat);
	if (ctx->json) {
		json_object_set_new(root, "healthy", json_boolean(worst == 0));
		json_dumpf(root, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(15));
		fputc('\n', stdout);
		json_decref(root);
	}
	free(rd);
	if (worst) {
		fflush(stdout);
		return err_set(e, worst, "replication not healthy: %s",
			       worst == ERR_DB_CONNECT ? "a replica is unreachable"
						       : "a replica is broken or critically behind");
	}
	return 0;
}

/* ---- watch ---------------------------------------------------------------- */

struct watch {
	bool json;
	pthread_mutex_t out_mu;
	struct lag_monitor *m;
};

static volatile sig_atomic_t watch_stop;

static void watch_on_signal(int sig)
{
	(void)sig;
	watch_stop = 1;
}

static void watch_print(struct watch *w, json_t *j, const char *text)
{
	char *s = j ? json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(15)) : NULL;

	pthread_mutex_lock(&w->out_mu);
	if (s)
		printf("%s\n", s);
	else if (text)
		printf("%s\n", text);
	fflush(stdout);
	pthread_mutex_unlock(&w->out_mu);
	free(s);
}

static void watch_on_transition(void *ctx, const char *cluster,
				const char *server, enum lag_state from,
				enum lag_state to, double lag_s,
				const char *reason)
{
	struct watch *w = ctx;
	double now = catalog_now();

	if (w->json) {
		json_t *j = json_object();

		json_object_set_new(j, "type", json_string("transition"));
		json_object_set_new(j, "at", json_real(now));
		json_object_set_new(j, "cluster", json_string(cluster));
		json_object_set_new(j, "server", json_string(server));
		json_object_set_new(j, "from", json_string(lag_state_name(from)));
		json_object_set_new(j, "to", json_string(lag_state_name(to)));
		json_object_set_new(j, "lag_s", jnum(lag_s));
		json_object_set_new(j, "reason", reason && *reason ? json_string(reason)
								   : json_null());
		watch_print(w, j, NULL);
		json_decref(j);
	} else {
		char t[40], num[32], line[1024];

		catalog_time_iso(now, true, t, sizeof(t));
		if (isfinite(lag_s))
			snprintf(num, sizeof(num), "%.3f s", lag_s);
		else
			snprintf(num, sizeof(num), "unbounded");
		snprintf(line, sizeof(line), "%s  %s %s  %s -> %s  lag %s%s%s", t,
			 cluster, server, lag_state_name(from), lag_state_name(to),
			 num, reason && *reason ? "  " : "", reason ? reason : "");
		watch_print(w, NULL, line);
	}
}

static void watch_readings(struct watch *w, const char *cluster)
{
	size_t max = lag_monitor_readings(w->m, NULL, 0);
	struct lag_reading *rd = xcalloc(max ? max : 1, sizeof(*rd));
	size_t n = lag_monitor_readings(w->m, rd, max);

	for (size_t i = 0; i < n && i < max; i++) {
		const struct lag_reading *r = &rd[i];

		if (cluster && strcmp(cluster, r->cluster) != 0)
			continue;
		if (w->json) {
			json_t *j = reading_json(r);

			json_object_set_new(j, "type", json_string("reading"));
			json_object_set_new(j, "at", json_real(catalog_now()));
			watch_print(w, j, NULL);
			json_decref(j);
		} else {
			char t[40], lag[80], line[1024];

			catalog_time_iso(catalog_now(), true, t, sizeof(t));
			text_lag(r, lag, sizeof(lag));
			snprintf(line, sizeof(line), "%s  %s %s  %-7s %s%s%s", t,
				 r->cluster, r->server, lag_state_name(r->state), lag,
				 r->reason[0] ? "  " : "", r->reason);
			watch_print(w, NULL, line);
		}
	}
	free(rd);
}

static int watch_collect(void *ctx, struct buf *out, struct err *e)
{
	return lag_monitor_metrics(ctx, out, e);
}

static int lag_watch(struct cli_ctx *ctx, const struct lag_opts *o,
		     struct err *e)
{
	const struct config *cfg = ctx->cfg;
	struct watch w = { .json = ctx->json };
	struct lag_event_sink sink = { watch_on_transition, &w };
	struct metrics *ms = NULL;
	struct sigaction sa, old_int, old_term;
	double deadline, next_print;
	int rc;

	if (o->metrics && !cfg->metrics_listen)
		return err_set(e, ERR_CONFIG, "--metrics: metrics_listen is not set in '%s'",
			       cfg->path);
	pthread_mutex_init(&w.out_mu, NULL);
	/* Jansson seeds its hash function on first use; do it before the
	 * event thread builds JSON too. */
	json_object_seed(0);
	rc = lag_monitor_start(cfg, o->record ? cfg->catalog : NULL, &sink,
			       (unsigned)o->interval_ms, &w.m, e);
	if (rc == 0 && o->metrics)
		rc = metrics_start(cfg->metrics_listen, watch_collect, w.m, &ms, e);
	if (rc) {
		lag_monitor_stop(w.m);
		pthread_mutex_destroy(&w.out_mu);
		return rc;
	}

	watch_stop = 0;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = watch_on_signal;
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);
	if (ctx->json) {
		json_t *j = json_object();

		json_object_set_new(j, "type", json_string("started"));
		json_object_set_new(j, "at", json_real(catalog_now()));
		json_object_set_new(j, "interval_ms", json_integer(o->interval_ms));
		json_object_set_new(j, "metrics", ms ? json_string(cfg->metrics_listen)
						     : json_null());
		json_object_set_new(j, "record", json_boolean(o->record));
		watch_print(&w, j, NULL);
		json_decref(j);
	} else {
		fprintf(stderr, "watching lag every %ld ms%s%s%s; Ctrl-C stops\n",
			o->interval_ms, ms ? ", metrics on http://" : "",
			ms ? cfg->metrics_listen : "", ms ? "/metrics" : "");
	}

	deadline = catalog_now() + (double)o->watch_s;
	next_print = catalog_now() + 1.0;
	while (!watch_stop && (o->watch_s == 0 || catalog_now() < deadline)) {
		struct timespec ts = { 0, 50 * 1000 * 1000 };

		nanosleep(&ts, NULL);
		if (catalog_now() >= next_print) {
			watch_readings(&w, o->cluster);
			next_print += 1.0;
		}
	}
	metrics_stop(ms);
	lag_monitor_stop(w.m);
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	pthread_mutex_destroy(&w.out_mu);
	return 0;
}

int cli_lag(struct cli_ctx *ctx, int argc, char **argv, struct err *e)
{
	static const struct option longopts[] = {
		{ "cluster", required_argument, NULL, 'C' },
		{ "history", required_argument, NULL, 'H' },
		{ "watch", required_argument, NULL, 'W' },
		{ "interval", required_argument, NULL, 'I' },
		{ "metrics", no_argument, NULL, 'M' },
		{ "record", no_argument, NULL, 'R' },
		{ NULL, 0, NULL, 0 },
	};
	struct lag_opts o = {
		.history_min = LAG_HISTORY_DEFAULT_MIN,
		.interval_ms = LAG_INTERVAL_DEFAULT_MS,
	};
	int first, rc;

	rc = cli_parse(ctx, cli_find_verb("lag"), argc, argv, NULL, longopts,
		       lag_opt, &o, &first, e);
	if (rc)
		return rc;
	if (first < argc)
		return err_set(e, ERR_USAGE, "unexpected argument '%s'", argv[first]);
	if (!o.watch && (o.metrics || o.record))
		return err_set(e, ERR_USAGE, "--metrics and --record need --watch");
	if ((rc = cli_load_config(ctx, e)))
		return rc;
	if (o.cluster && !config_find_cluster(ctx->cfg, o.cluster))
		return err_set(e, ERR_NOT_FOUND, "no cluster '%s' in config '%s'",
			       o.cluster, ctx->cfg->path);
	return o.watch ? lag_watch(ctx, &o, e) : lag_once(ctx, &o, e);
}
