/* Blue/green cutover of a cluster's writer, with guardrails and rollback,
 * and canary read weights. Used by `backupctl cutover` / `canary` and by
 * the daemon (which calls cutover_run from its job thread).
 *
 * Blue is the current primary: the catalog's topology when a cutover has
 * recorded one, else the config's `primary`. Green (--to) must be a
 * configured server of the cluster (primary or replicas) that replicates
 * from blue. The sequence, its guardrails and what a failure does at each
 * point are described at cutover_run. */
#ifndef BACKUPD_CUTOVER_H
#define BACKUPD_CUTOVER_H

#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "catalog.h"
#include "config.h"
#include "err.h"

#define CUTOVER_TIMEOUT_DEFAULT_S 10.0
#define CUTOVER_MAX_LAG_DEFAULT_S 5.0
#define CUTOVER_MAX_TRX_DEFAULT_S 10.0
#define CUTOVER_TRX_WAIT_DEFAULT_S 2.0
#define CUTOVER_MAX_SNAPSHOT_AGE_DEFAULT_H 24.0

struct cutover_opts {
	const char *to;              /* green: "host:port" of a configured server */
	bool dry_run;                /* checks and plan only; changes nothing */
	/* Finish a cutover that stopped after the traffic switch: re-attach
	 * blue to green and record the topology, nothing else. */
	bool resume;
	/* From blue turning read-only until the end of an automatic
	 * rollback: the catch-up wait gets what is left minus a reserve for
	 * the rollback. 0: CUTOVER_TIMEOUT_DEFAULT_S. */
	double timeout_s;
	/* Guardrail limits; 0 takes the default. The lag limit is capped at
	 * half the timeout so that catching up fits in it. */
	double max_lag_s;
	double max_trx_s;            /* oldest open transaction on blue */
	/* After blue turned read-only: how long open write transactions may
	 * take to finish before their connections are killed. */
	double trx_wait_s;
	/* Newest complete snapshot must be younger; 0: default; < 0: the
	 * check is skipped (and reported as skipped). */
	double max_snapshot_age_h;
	const char *trigger;         /* manual|daemon (job trigger); NULL: manual */
	/* > 0: the caller (the daemon's job runner) holds this catalog job
	 * of kind "cutover" and finishes it; 0: cutover_run takes its own
	 * (ERR_BUSY when one runs) and finishes it. */
	int64_t job_id;
	/* Set by a signal handler: before the traffic switch the cutover
	 * stops and rolls back; after it, it is ignored (finishing is the
	 * safe way out then). May be NULL. */
	volatile sig_atomic_t *abort_flag;
};

#define CUTOVER_MAX_CHECKS 16
#define CUTOVER_MAX_PLAN 16
#define CUTOVER_MAX_STEPS 40

struct cutover_check {
	const char *name;            /* static: "replication", "lag", ... */
	bool pass;
	bool skipped;                /* not checked (pass is true) */
	char value[512];             /* what was measured */
	char limit[200];             /* what passes */
};

struct cutover_step {
	const char *name;            /* static: "blue_read_only", ... */
	double started_at;           /* unix seconds */
	double duration_ms;
	const char *result;          /* ok|failed|skipped|rolled_back */
	char message[512];
};

struct cutover_report {
	char cluster[128];
	char from[300];              /* blue */
	char to[300];                /* green */
	bool from_catalog;           /* blue came from the catalog topology */
	const char *traffic_switch;  /* "haproxy", "hook" or "none" */
	bool dry_run, resume;
	int64_t cutover_id;          /* catalog row, -1 when none */
	struct cutover_check checks[CUTOVER_MAX_CHECKS];
	size_t n_checks;
	bool preflight_ok;
	char plan[CUTOVER_MAX_PLAN][400];
	size_t n_plan;
	struct cutover_step steps[CUTOVER_MAX_STEPS];
	size_t n_steps;
	/* ok | dry_run | preflight_failed | rolled_back | rollback_failed |
	 * failed (after the switch: see failed_step and next) */
	const char *result;
	double write_pause_ms;       /* -1: writes never paused */
	char gtid_at_switch[2048];   /* blue's final position */
	char failed_step[48];
	char next[2048];             /* after a failure: the command(s) to run */
	struct err error;            /* the failure, when result is not ok */
};

/* Runs one cutover of cluster cl to o->to (or only its preflight and plan
 * with o->dry_run). rep is always filled, also on failure (it is what the
 * CLI prints). Takes the catalog's "cutover" job for the cluster unless
 * o->job_id names the caller's (ERR_BUSY when one runs), records the run
 * in `cutovers`/`cutover_steps` and adds outbox events: cutover.started
 * (preflight passed), cutover.step (write pause, reverse replication), then
 * cutover.done, cutover.failed or cutover.rolled_back (with
 * write_pause_ms); a failed preflight is a cutover.failed (warn).
 *
 * Preflight guardrails, each reported with its measured value: blue and
 * green reachable, blue writable; green replicates from blue with both
 * threads running and no error; lag below the limit; no foreign GTIDs on
 * green; no transaction open on blue longer than max_trx_s; green's version
 * the same or newer; a snapshot younger than max_snapshot_age_h; the
 * traffic switch sees both servers (HAProxy socket answers and both are in
 * haproxy_backend by address, or switch_hook is executable); a replication
 * user is configured (blue replicates from green afterwards and a rollback
 * re-attaches green). Any failure: ERR_REFUSED, nothing changed.
 *
 * Execution: blue read-only; open write transactions waited for, then
 * killed; blue's final GTID position; green waits for it; green's
 * replication stopped and reset; green writable; traffic switched (HAProxy:
 * green ready, blue maint, blue's sessions shut down; or the hook run as
 * `hook OLD NEW`). The write pause is measured from blue read-only to the
 * end of the switch. A failure up to here (or o->abort_flag) rolls back
 * within the timeout: traffic back to blue, green read-only and replicating
 * from blue again, blue writable; result rolled_back, the error returned.
 * Then: blue replicates from green (gtid_slave_pos = the final position,
 * MASTER_USE_GTID=slave_pos, the config's replication user) so that
 * `cutover --to BLUE` is the rollback, and the catalog records green as the
 * primary. A failure there stops with result failed, failed_step and the
 * commands in next (`--resume` finishes). */
int cutover_run(const struct config *cfg, const struct cfg_cluster *cl,
		struct catalog *cat, const struct cutover_opts *o,
		struct cutover_report *rep, struct err *e);

/* The report as one JSON object (caller decref's). */
json_t *cutover_report_json(const struct cutover_report *rep);

/* The current writer of the cluster: the catalog's topology when set and
 * still a configured server, else the config's primary. *from_catalog
 * may be NULL. cat may be NULL (config only). */
int cutover_effective_primary(const struct cfg_cluster *cl,
			      struct catalog *cat, struct cfg_addr *out,
			      bool *from_catalog, struct err *e);

/* Whether addr is the cluster's primary or one of its replicas. */
bool cutover_is_cluster_server(const struct cfg_cluster *cl,
			       const struct cfg_addr *addr);

/* HAProxy weights and states for `status`: {"socket": ..., "writer":
 * {"backend": B, "servers": [...]}, "read": {...} or null}, each server
 * {name, address, state, operational, weight, initial_weight, share_pct,
 * cluster_server}. *out is NULL (and 0 returned) when the cluster has no
 * haproxy_socket. Caller decref's. */
int cutover_haproxy_weights(const struct cfg_cluster *c, json_t **out,
			    struct err *e);

/* The latest cutover of the cluster from the catalog (id, from, to,
 * result, dry_run, started_at, finished_at, write_pause_ms, error), or
 * *out NULL when there is none. Caller decref's. */
int cutover_last_json(struct catalog *cat, const char *cluster, json_t **out,
		      struct err *e);

/* Canary: sets the weight of server `to` in the read backend (backend, or
 * the cluster's haproxy_read_backend) so that it gets pct % of new
 * connections next to the other servers' current weights; pct 0 sets 0
 * (undo). *out describes the backend afterwards (as in
 * cutover_haproxy_weights, plus "server", "weight", "requested_pct").
 * cat may be NULL; else a canary.weight event is added. ERR_USAGE for pct
 * outside 0..99, ERR_REFUSED when the share needs a weight above
 * HAProxy's 256 or the other servers carry no weight. */
int cutover_canary(const struct cfg_cluster *cl, struct catalog *cat,
		   const char *to, int pct, const char *backend, json_t **out,
		   struct err *e);

/* Pure helpers (unit-tested). */

/* Weight for a share of pct % next to others_weight (sum of the other
 * servers' weights): round(pct * others / (100 - pct)), at least 1 for
 * pct > 0. 0 for pct 0. ERR_REFUSED when it exceeds HAPROXY_WEIGHT_MAX
 * or others_weight is 0 with pct > 0; ERR_USAGE for pct outside 0..99. */
int cutover_canary_weight(int pct, int others_weight, int *weight,
			  struct err *e);

/* MariaDB foreign-GTID check: every domain-server-seq of green's
 * @@gtid_binlog_state must be in blue's @@gtid_binlog_state with a seq_no
 * at most blue's for that domain and server. Returns the number of
 * entries that are not (writes applied on green outside replication) and
 * lists up to a few of them in why ("" when none). ERR_CORRUPT for a
 * malformed GTID list. */
int cutover_foreign_gtids(const char *green_state, const char *blue_state,
			  int *n_foreign, char *why, size_t why_size,
			  struct err *e);

#endif
