/* The lag monitor: a heartbeat row written on each cluster's primary every
 * interval, read back on every replica together with its replication status,
 * turned into a lag figure and an alert state per replica (ok, warn, crit,
 * broken, down) with hysteresis, an event on every state change, and a
 * downsampled history in the catalog.
 *
 * Lag is measured with the heartbeat: the writer puts the primary's NOW(6)
 * into backupd.heartbeat every interval and remembers what it wrote; a
 * replica's lag is how long the oldest heartbeat it has not applied yet has
 * been waiting -- 0 when it has all of them, growing from the moment
 * replication stops (resolution: one interval). Only when the writer is not
 * writing (primary down or read-only) is it the age of the replica's newest
 * row, which then keeps growing. Clocks: the writer measures the primary's
 * clock against this host's on every write (offset = primary time - local
 * midpoint of the query) and readers compute the primary's "now" as local
 * time + offset, so the replica's clock does not matter. Until an offset is
 * known (primary down since start) the replica's own NOW(6) is used, which
 * assumes NTP-synchronised servers. All sessions use time_zone +00:00 so
 * DATETIME values mean UTC on every server.
 *
 * Unbounded lag: when a replication thread is stopped, the replica is
 * unreachable or the heartbeat stops advancing, the age keeps growing and is
 * reported as the growing figure (lag_known false when a thread does not
 * run) -- never 0 and never a blank.
 *
 * States and hysteresis (struct lag_policy, defaults in lag_policy_init):
 *   down    the replica is unreachable for down_readings (2) readings in a row
 *   broken  replication is not configured, or a thread stopped with an error
 *           (an IO thread that is retrying, "Connecting", is not broken: its
 *           lag grows instead)
 *   crit    lag >= lag_crit_s;  warn  lag >= lag_warn_s;  ok  below
 * A worse state is entered on the first reading that shows it (down: after
 * down_readings). A better state needs recover_readings (2) readings in a row
 * that are all better; for the lag levels "better" means below
 * recover_ratio (0.8) x the threshold, so a value hovering at a threshold
 * does not flap. After such a run the state becomes the one its last
 * reading points at (a lag falling from crit through the warn band is one
 * recovery event, not two). A thread stopped without an error (STOP SLAVE, a snapshot pausing
 * the SQL thread) is judged by its growing lag, so it turns warn and crit
 * as the thresholds pass.
 *
 * Threads: one heartbeat writer per cluster with replicas, one reader per
 * replica, each with its own connection, reconnecting with backoff (0.5 s
 * doubling to 5 s) when a server is down; and one event thread that owns the
 * catalog connection: it persists lag_state, writes lag_samples (per-second
 * mean and max), rolls them up (1 s rows kept 1 h, then 1 min rows kept
 * 30 days) and calls the event sink. Readers never wait on the catalog or
 * the sink. */
#ifndef BACKUPD_LAG_H
#define BACKUPD_LAG_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "catalog.h"
#include "config.h"
#include "err.h"

#define LAG_INTERVAL_MIN_MS 100u
#define LAG_INTERVAL_MAX_MS 500u
#define LAG_INTERVAL_DEFAULT_MS 250u
/* History horizons. */
#define LAG_HISTORY_FINE_S 3600.0            /* 1 s samples */
#define LAG_HISTORY_KEEP_S (30.0 * 86400.0)  /* 1 min samples */

/* Ordered from healthy to worst; LAG_UNKNOWN is "no verdict yet". */
enum lag_state { LAG_OK, LAG_WARN, LAG_CRIT, LAG_BROKEN, LAG_DOWN, LAG_UNKNOWN };

/* "ok", "warn", "crit", "broken", "down", "unknown". */
const char *lag_state_name(enum lag_state s);
/* Inverse of lag_state_name; false for an unknown name. */
bool lag_state_parse(const char *s, enum lag_state *out);

/* One replica as the monitor last saw it. */
struct lag_reading {
	char cluster[64];
	char server[300];             /* host:port as in the config */
	enum lag_state state;
	double state_since;           /* unix time the state was entered */
	/* lag_s is the figure to show and alert on (see above), growing while
	 * replication is stopped or the replica is unreachable; +INFINITY only
	 * when there has never been any figure (down since start).
	 * lag_known: the figure is a real lag, i.e. both threads run and the
	 * heartbeat is being written; otherwise it is a lower bound. */
	bool lag_known;
	double lag_s;
	double heartbeat_age_s;       /* age of the replica's newest heartbeat
				       * row; -1: none read this time */
	long long seconds_behind;     /* Seconds_Behind_Master, -1 when NULL */
	bool io_running, sql_running;
	unsigned last_errno;          /* last SQL error, else last IO error */
	char reason[256];             /* why not ok / not known; "" when fine */
	double updated_at;            /* unix time of the reading */
};

/* Called on every state change, also from LAG_UNKNOWN (the first verdict for
 * a replica without a persisted state: a notifier usually stays quiet on
 * unknown -> ok). Runs in the monitor's event thread, in order; when the
 * monitor has a catalog, inside the catalog transaction that stores the new
 * state, so lag_monitor_catalog() lets the sink add its outbox event to the
 * same transaction. lag_s is NaN when there is no figure. Keep it short. */
struct lag_event_sink {
	void (*on_transition)(void *ctx, const char *cluster, const char *server,
			      enum lag_state from, enum lag_state to,
			      double lag_s, const char *reason);
	void *ctx;
};

struct lag_monitor;

/* Starts the writer, reader and event threads (see the top of this file).
 * cfg is borrowed and must outlive the monitor. catalog_path NULL: no
 * history and no persisted state (every start begins at unknown). sink may
 * be NULL. interval_ms: LAG_INTERVAL_MIN_MS..LAG_INTERVAL_MAX_MS, else
 * ERR_USAGE. Servers being down is not an error; a catalog that cannot be
 * opened is. Caller stops *out with lag_monitor_stop. */
int lag_monitor_start(const struct config *cfg, const char *catalog_path,
		      const struct lag_event_sink *sink, unsigned interval_ms,
		      struct lag_monitor **out, struct err *e);
/* Stops every thread (a thread blocked on a hung server returns within the
 * 10 s read timeout), writes the last history and state, frees m. NULL ok. */
void lag_monitor_stop(struct lag_monitor *m);
/* Copies up to max readings (config order) and returns how many replicas
 * there are (out may be NULL with max 0 to count them). Thread-safe. */
size_t lag_monitor_readings(struct lag_monitor *m, struct lag_reading *out,
			    size_t max);
/* The monitor's catalog, for the sink: valid only inside on_transition
 * (event thread); NULL without a catalog or when the transaction could not
 * be opened (then the event is delivered outside any transaction). */
struct catalog *lag_monitor_catalog(struct lag_monitor *m);
/* Stops (paused = true) or resumes the heartbeat writes on a cluster's
 * primary, e.g. around a cutover's read-only phase. Unknown cluster: no-op.
 * While paused the heartbeat stops advancing, so lag figures grow. */
void lag_monitor_pause_writer(struct lag_monitor *m, const char *cluster,
			      bool paused);
/* Appends the monitor's Prometheus families (metrics.h helpers):
 * backupd_replica_lag_seconds, backupd_replica_lag_known,
 * backupd_replica_state{state=...} (1 for the current state, 0 for the
 * others), backupd_replica_io_running, backupd_replica_sql_running,
 * backupd_replica_seconds_behind_master, backupd_heartbeat_age_seconds (per
 * cluster: since the last successful write) and
 * backupd_primary_clock_offset_seconds. Thread-safe. */
int lag_monitor_metrics(struct lag_monitor *m, struct buf *out, struct err *e);

/* The replica of readings[0..n) to read from: the lowest state (ok before
 * warn before crit), then the lowest lag, among replicas of cluster (NULL:
 * any) in ok, warn or crit. -1 when none qualifies (all broken, down or not
 * yet judged). */
long lag_pick_healthiest(const struct lag_reading *r, size_t n,
			 const char *cluster);

/* Measures once, without a monitor running (backupctl lag): per cluster
 * (cluster NULL: all), connects to the replicas, reads the primary's server
 * id and clock offset, writes one heartbeat (creating backupd.heartbeat when
 * missing, never on a read-only primary), then reads each replica's status
 * and heartbeat, waiting up to 1 s for the new heartbeat to arrive. Arrived:
 * the lag is at most the time since it was written, which is the figure.
 * Not arrived and no other writer active: the larger of the wait and
 * Seconds_Behind_Master, as a lower bound (with a stopped thread: the age
 * of the replica's newest row, an upper bound). States come from the
 * thresholds without hysteresis; an unreachable replica is down at once.
 * Fills out[0..*n) in config order, measuring at most max replicas.
 * ERR_NOT_FOUND for an unknown cluster; unreachable servers are readings,
 * not errors. */
int lag_measure_once(const struct config *cfg, const char *cluster,
		     struct lag_reading *out, size_t max, size_t *n,
		     struct err *e);

/* ---- pure parts, exposed for tests ---------------------------------------- */

struct lag_policy {
	double warn_s, crit_s;
	double recover_ratio;         /* leave a lag level below ratio x threshold */
	unsigned recover_readings;    /* readings in a row to improve */
	unsigned down_readings;       /* failed readings in a row to be down */
};
void lag_policy_init(struct lag_policy *p, double warn_s, double crit_s);

/* What one reading of a replica saw. */
struct lag_observation {
	bool reachable;
	const char *conn_error;       /* when !reachable */
	bool status_read;             /* replica status could be read */
	const char *status_error;     /* when !status_read */
	bool configured;              /* replication set up */
	bool io_running, sql_running;
	bool io_connecting;           /* IO thread retrying a connection */
	unsigned last_io_errno, last_sql_errno;
	const char *last_io_error, *last_sql_error;
	long long seconds_behind;     /* -1: NULL */
	/* The heartbeat age on the primary's clock, growing while nothing new
	 * arrives (also while unreachable: from the last heartbeat seen). */
	bool have_age;
	double age_s;
	bool heartbeat_fresh;         /* read this time (not carried over) */
	const char *heartbeat_error;  /* why no heartbeat this time, or NULL */
	bool writer_ok;               /* the primary's heartbeat is being written */
	const char *writer_error;     /* when !writer_ok */
	/* Seconds since the threads were first seen stopped, when there is no
	 * heartbeat to age (a lower bound of the lag); -1: unknown. */
	double stopped_for_s;
};

enum lag_verdict_kind {
	LAG_V_DOWN,      /* unreachable */
	LAG_V_BROKEN,    /* replication broken */
	LAG_V_LAG,       /* judge by lag_s */
	LAG_V_NONE,      /* nothing to judge by: keep the state */
};

struct lag_verdict {
	enum lag_verdict_kind kind;
	bool have_lag;                /* lag_s holds a figure */
	double lag_s;
	bool lag_known;               /* a real lag, not a lower bound */
	unsigned last_errno;
	char reason[256];             /* "" when replicating normally */
};

/* Turns an observation into a verdict (the unbounded-lag rules above). */
void lag_evaluate(const struct lag_observation *o, struct lag_verdict *v);

struct lag_sm {
	enum lag_state state;
	double since;
	enum lag_state pending;       /* candidate state, LAG_UNKNOWN: none */
	unsigned pending_n;           /* readings in a row supporting it */
	double pending_since;
};
void lag_sm_init(struct lag_sm *sm, enum lag_state state, double since);
/* The state a verdict points at from the current state (entry thresholds
 * when rising, recover_ratio x thresholds when falling). */
enum lag_state lag_sm_target(const struct lag_sm *sm,
			     const struct lag_policy *p,
			     const struct lag_verdict *v);
/* Feeds one reading taken at now. Returns true when the state changed;
 * *from is then the previous state. */
bool lag_sm_step(struct lag_sm *sm, const struct lag_policy *p,
		 const struct lag_verdict *v, double now,
		 enum lag_state *from);

/* The ts of the heartbeats written in the current unbroken run of writes
 * (emptied whenever a write fails or is skipped). A replica's lag is how
 * long the oldest heartbeat it has not applied has been waiting; an old
 * row's age alone would count the time nobody wrote and always read about
 * one interval high. */
#define LAG_WRITTEN_MAX 64
/* DATETIME(6) keeps microseconds: values read back may differ by that. */
#define LAG_TS_EPS 2e-6
struct lag_written {
	double run_start;             /* first ts of the run, 0: not writing */
	double ts[LAG_WRITTEN_MAX];   /* the newest ones, oldest first */
	size_t n;
};
void lag_written_reset(struct lag_written *w);
void lag_written_add(struct lag_written *w, double ts);
/* The ts of the first heartbeat of this run that a replica whose newest
 * heartbeat is hb_ts has not applied; 0 when it has applied all of them;
 * -1 when there is no run to compare with. Beyond what is kept, the next
 * write is assumed one interval after hb_ts. */
double lag_written_first_unapplied(const struct lag_written *w, double hb_ts,
				   double interval_s);

/* One row of lag_samples. */
struct lag_sample {
	char cluster[64];
	char server[300];
	double ts;                    /* start of the second (or minute) */
	int resolution_s;             /* 1 or 60 */
	bool have_lag;
	double lag_s;                 /* mean */
	double lag_max_s;
	enum lag_state state;         /* worst of the period */
};

/* Per-second aggregation of one replica's readings. */
struct lag_agg {
	double second;                /* start of the open second; 0: empty */
	unsigned n, n_lag;
	double sum, max;
	enum lag_state worst;
};
void lag_agg_init(struct lag_agg *a);
/* Adds a reading taken at now. When it belongs to a later second than the
 * open one, the open second is closed into *done (cluster and server left
 * for the caller) and true returned. */
bool lag_agg_add(struct lag_agg *a, double now, bool have_lag, double lag_s,
		 enum lag_state st, struct lag_sample *done);
/* Closes the open second into *done when now is past it. */
bool lag_agg_flush(struct lag_agg *a, double now, struct lag_sample *done);

/* The catalog side. lag_state and lag_samples know no "down" state: a down
 * replica is stored as "unknown" (nothing about it can be seen) and read back
 * as down; LAG_UNKNOWN itself is never stored in lag_state. Each helper joins
 * the caller's transaction, or runs on its own. */
const char *lag_state_db_name(enum lag_state s);
int lag_history_insert(struct catalog *c, const struct lag_sample *s,
		       size_t n, struct err *e);
/* Rolls 1 s rows older than LAG_HISTORY_FINE_S before now into 1 min rows
 * (mean, max, worst state; whole minutes only) and deletes 1 min rows older
 * than LAG_HISTORY_KEEP_S. One transaction. */
int lag_history_rollup(struct catalog *c, double now, struct err *e);
/* Per-minute history of one replica since `since` (both resolutions
 * merged), oldest first, at most max_rows. Caller frees *rows. */
int lag_history_query(struct catalog *c, const char *cluster,
		      const char *server, double since, size_t max_rows,
		      struct lag_sample **rows, size_t *n, struct err *e);
int lag_state_store(struct catalog *c, const char *cluster,
		    const char *server, const struct lag_sm *sm,
		    bool have_lag, double lag_s, double now, struct err *e);
/* *found false when no row; sm untouched then. */
int lag_state_load(struct catalog *c, const char *cluster, const char *server,
		   struct lag_sm *sm, bool *found, struct err *e);

#endif
