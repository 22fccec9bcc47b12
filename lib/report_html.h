/* The HTML report of `backupctl report --html FILE`: one self-contained page
 * (inline CSS, inline SVG charts, a few lines of inline script for
 * tooltips; no external asset, no network) that an on-call engineer opens
 * in any browser: the topology, replication lag per replica over time,
 * snapshot size and duration per day, DR drill RTO over time with pass/fail
 * marks, and the last failures.
 *
 * report_load reads the catalog (and the config for the topology) into a
 * struct report_data; report_render_html turns that into HTML. Rendering is
 * pure (no I/O, no clock), so tests feed it data directly. Every figure a
 * chart draws is also on its SVG element as data-* attributes (data-ts,
 * data-lag, data-bytes-stored, data-rto, ...) and in a table next to it, so
 * scripts and tests can read the page back.
 *
 * Ownership: every string in these structs is a heap string owned by the
 * struct report_data, freed by report_data_release. Threading: none. */
#ifndef BACKUPD_REPORT_HTML_H
#define BACKUPD_REPORT_HTML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "catalog.h"
#include "config.h"
#include "err.h"

/* Hard maximum of one page. */
#define REPORT_HTML_MAX (64u * 1024u * 1024u)
/* Points per lag series: samples are merged into this many time buckets. */
#define REPORT_LAG_BUCKETS 720
/* Rows of each list the loader keeps (snapshots, drills, failures). */
#define REPORT_ROWS_MAX 10000
#define REPORT_DAYS_DEFAULT 30
#define REPORT_LAG_HOURS_DEFAULT 24
#define REPORT_FAILURES_DEFAULT 20

struct report_opts {
	const char *cluster;        /* NULL: every cluster of the config */
	double now;                 /* 0: catalog_now() */
	int days;                   /* snapshots, drills, failures; 0: default */
	int lag_hours;              /* lag window; 0: default */
	size_t failures_max;        /* 0: REPORT_FAILURES_DEFAULT */
};

/* One time bucket of one replica's lag. */
struct report_lag_point {
	double ts;                  /* start of the bucket, unix seconds */
	bool have_lag;              /* false: only broken/unknown samples */
	double lag_s;               /* mean of the samples with a figure */
	double lag_max_s;           /* largest figure */
	char state[8];              /* worst: ok|warn|crit|broken|unknown */
	unsigned samples;
};

struct report_lag_series {
	char *cluster;
	char *server;
	struct report_lag_point *points;    /* oldest first */
	size_t n_points;
};

/* Snapshots of one cluster started on one UTC day. */
struct report_day {
	char *cluster;
	char day[11];               /* YYYY-MM-DD */
	double day_start;           /* unix seconds of 00:00 UTC */
	unsigned snapshots;         /* complete (or since pruned) */
	unsigned failed;            /* failed or aborted */
	uint64_t bytes_raw, bytes_stored;   /* summed over the day */
	double seconds_max;         /* longest snapshot */
	double seconds_sum;
};

struct report_snapshot {
	char *id;
	char *cluster;
	char *status;
	char *verify_status;        /* NULL: never verified */
	char *reason;
	double started_at, finished_at;
	uint64_t bytes_raw, bytes_stored;
};

struct report_drill {
	int64_t id;
	char *cluster;
	char *snapshot_id;
	char *target;
	char *result;               /* running|ok|failed|aborted */
	char *reason;
	double started_at, finished_at;
	double rto_s, rpo_s;        /* -1: unknown */
	int64_t bytes;              /* -1: unknown */
};

struct report_failure {
	double at;
	char *source;               /* job|snapshot|drill */
	char *kind;                 /* snapshot, verify, drill, restore, ... */
	char *cluster;
	char *subject;              /* snapshot id, target, ... ("" when none) */
	char *message;
};

struct report_server {
	char *addr;
	char *role;                 /* primary|replica|drill target */
	char *version;              /* NULL: unknown */
	char *lag_state;            /* NULL: no lag state recorded */
	double lag_s;               /* < 0: unknown */
	double lag_updated_at;
};

struct report_cluster {
	char *name;
	char *primary;              /* current: the catalog's topology, else the config's */
	char *config_primary;
	struct report_server *servers;   /* primary, replicas, drill target */
	size_t n_servers;
	double lag_warn_s, lag_crit_s;
	int drill_max_age_h;
};

struct report_data {
	double generated_at;
	double since;               /* snapshots, drills, failures from here */
	double lag_since;
	int days, lag_hours;
	char *catalog;
	struct report_cluster *clusters;
	size_t n_clusters;
	struct report_lag_series *series;
	size_t n_series;
	struct report_day *days_list;    /* per cluster, oldest first */
	size_t n_days;
	struct report_snapshot *snapshots;   /* oldest first */
	size_t n_snapshots;
	struct report_drill *drills;     /* oldest first */
	size_t n_drills;
	struct report_failure *failures; /* newest first */
	size_t n_failures;
};

void report_data_init(struct report_data *d);
void report_data_release(struct report_data *d);

/* Fills d from the catalog and cfg (topology: the config's servers, the
 * catalog's current primary and last lag states). ERR_NOT_FOUND when
 * o->cluster is not in cfg. Release d even on error. */
int report_load(struct catalog *cat, const struct config *cfg,
		const struct report_opts *o, struct report_data *d,
		struct err *e);

/* Appends the page to out (at most REPORT_HTML_MAX bytes). */
int report_render_html(const struct report_data *d, struct buf *out,
		       struct err *e);

/* Merges lag samples (ts ascending) into REPORT_LAG_BUCKETS buckets over
 * [since, until); exposed for tests. lag_s < 0 means no figure. Caller
 * frees *points. */
struct report_lag_sample {
	double ts;
	double lag_s;
	double lag_max_s;           /* < 0: same as lag_s */
	const char *state;
};
void report_lag_bucket(const struct report_lag_sample *s, size_t n,
		       double since, double until,
		       struct report_lag_point **points, size_t *n_points);

#endif
