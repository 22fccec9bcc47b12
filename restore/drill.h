/* DR drills: prove a snapshot restorable by restoring it into a scratch
 * server (the cluster's drill_target), checking it, and measuring how long
 * that took (RTO) and how old the data was (RPO).
 *
 * A drill runs these phases, each timed:
 *   pick      the given snapshot, else the cluster's latest complete one
 *   target    refuse a target that is any configured primary or replica
 *             (of any cluster), the catalog's current primary of any
 *             cluster, or a server replicating from somewhere; take the
 *             target's drill lock (GET_LOCK) so two drills never share it
 *   verify    snapshot_verify_ex: every file's size and checksum
 *   wipe      drop what earlier drills left (only databases listed in the
 *             target's backupd_drill.created, see below); refuse when the
 *             target holds a database of the snapshot no drill created
 *   restore   restore_run (binlog off): rows, views, triggers, routines,
 *             events; row counts and content checksums against the manifest
 *   check     CHECK TABLE on every table of the manifest
 *   probes    every drill_probe of the cluster must return at least one row
 *   cleanup   drop the restored databases (not with drill_keep / keep)
 * RTO is the time from the drill's start to the end of the probes (data
 * restored and proven); RPO is the drill's start minus the manifest's
 * started_at (the age of the snapshot's data at drill time).
 *
 * The target remembers what drills created on it in the table
 * `backupd_drill`.`created` (db_name, cluster, snapshot_id, drill_id,
 * catalog, created_at). Rows are written before a database is created and
 * removed after it is dropped, so a crash or a kept drill leaves a record
 * the next drill wipes; a database that has no row is never touched. The
 * schema is dropped once it is empty, so a cleaned target holds nothing of
 * backupd. Statements on the target run with sql_log_bin = 0: a drill adds
 * no GTIDs to the scratch server.
 *
 * Probes: each drill_probe line is one SQL statement, run in a read-only
 * transaction on the target after the restore. It runs with no default
 * database unless the snapshot holds exactly one database besides backupd's
 * own `backupd` (then that one), so `SELECT 1 FROM shop.orders WHERE
 * created_at > NOW() - INTERVAL 1 DAY` works as on production. A probe may
 * start with `USE db;` (backticks allowed) to pick the database itself:
 * `drill_probe = USE shop; SELECT 1 FROM orders LIMIT 1`. A probe passes
 * when it returns a result set with at least one row.
 *
 * Catalog: a "drill" job (target: the snapshot id, so prune leaves the
 * snapshot alone), a row in drills (snapshot, start, end, RTO, RPO, bytes,
 * phases as JSON, result and reason) and an outbox event drill.passed
 * (info) or drill.failed (error); drill_check_overdue adds drill.overdue
 * (warn). The restore step runs without the catalog, so a drill gives one
 * Slack message, not a restore message as well.
 *
 * Threading: drill_run runs in the calling thread, which owns cat (a job
 * thread opens its own catalog connection); the restore starts its own
 * workers and joins them. Everything else here is reentrant. */
#ifndef BACKUPD_DRILL_H
#define BACKUPD_DRILL_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "catalog.h"
#include "config.h"
#include "err.h"

#define DRILL_PHASES_MAX 10
/* Schema and table on the target that record what drills created there. */
#define DRILL_MARKER_SCHEMA "backupd_drill"
#define DRILL_MARKER_TABLE "created"
/* Most drills drill_list returns. */
#define DRILL_LIST_MAX 100000

struct drill_opts {
	const char *snapshot_id;    /* NULL: the cluster's latest complete one */
	bool keep;                  /* leave the data on the target (or drill_keep) */
	const char *trigger;        /* catalog job trigger: manual|schedule|daemon */
	const char *schedule;       /* schedule name or NULL */
	int threads;                /* restore connections; 0: the config's */
	bool progress;              /* phase lines (and the restore's) on stderr */
	/* Set (by a signal handler) to stop: ERR_ABORTED, what the drill
	 * created dropped. May be NULL. */
	volatile sig_atomic_t *abort_flag;
};

struct drill_phase {
	char name[16];
	double seconds;
	bool ok;
};

/* Filled by drill_run as far as the drill got. Strings are fixed arrays. */
struct drill_report {
	int64_t drill_id;           /* row in drills; 0 when none was written */
	int64_t job_id;             /* -1 when none */
	char cluster[128];
	char snapshot_id[64];       /* "" when none was picked */
	char target[300];
	bool passed;
	double started_at, finished_at;  /* unix seconds */
	double rto_s;               /* -1 unless passed */
	double rpo_s;               /* -1 when unknown */
	uint64_t bytes;             /* decompressed bytes restored */
	uint64_t bytes_stored;      /* bytes read from the repository */
	uint64_t rows;
	unsigned n_databases, n_tables, n_checked, n_probes;
	bool kept;                  /* the restored data stayed on the target */
	unsigned n_wiped;           /* databases of earlier drills dropped */
	struct drill_phase phases[DRILL_PHASES_MAX];
	size_t n_phases;
	char failed_phase[16];      /* "" when passed */
	char file[512];             /* the bad file when verify found one, else "" */
	char reason[512];           /* why it failed; "" when passed */
};

void drill_report_init(struct drill_report *r);

/* Runs one drill of cluster cl (which must have a drill_target) and records
 * it (see the header comment). Returns 0 when the drill passed. A failed
 * drill returns the failure's code with e->msg saying the phase and what
 * failed ("drill of 'shop' failed in phase verify: verify of 'shop/ID':
 * file 'data/...': stored checksum ..."): ERR_VERIFY (a file, a row count,
 * a checksum, CHECK TABLE or a probe), ERR_REFUSED (the target is a
 * server of a cluster, replicates, or holds a database no drill created),
 * ERR_NOT_FOUND (no such or no complete snapshot), ERR_DB_*, ERR_STORAGE,
 * ERR_ABORTED. Not recorded as drills (nothing was tried): ERR_CONFIG (no
 * drill_target), ERR_BUSY (a drill of the cluster runs), ERR_USAGE (a
 * malformed snapshot id). cat must not be NULL. */
int drill_run(const struct config *cfg, const struct cfg_cluster *cl,
	      struct catalog *cat, const struct drill_opts *o,
	      struct drill_report *rep, struct err *e);

/* One row of the drills table. Strings are heap copies (NULL for SQL NULL);
 * times 0, rto_s/rpo_s -1 and bytes -1 when unknown. */
struct drill_row {
	int64_t id;
	int64_t job_id;
	char *cluster;
	char *snapshot_id;
	char *target;
	double started_at, finished_at;
	double rto_s, rpo_s;
	int64_t bytes;
	char *phases;               /* JSON text */
	char *result;               /* running|ok|failed|aborted */
	char *reason;
};

/* Drills of a cluster (NULL: all), oldest first, the newest `limit` of them
 * (0: at most DRILL_LIST_MAX). Caller frees with drill_row_free_list. */
int drill_list(struct catalog *cat, const char *cluster, size_t limit,
	       struct drill_row **rows, size_t *n, struct err *e);
void drill_row_free_list(struct drill_row *rows, size_t n);

/* For every cluster of cfg with a drill_target: when the last passing drill
 * (or, with none, the cluster's first appearance in the catalog) is older
 * than drill_max_age_h at now (0: the current time), adds a drill.overdue
 * event (warn) with {"last_passed_at", "age_h", "max_age_h",
 * "last_drill_id", "last_result"}. It alerts once when a cluster becomes
 * overdue and again every drill_max_age_h while it stays so (the last alert
 * time is kept in catalog_meta as "drill.overdue_alerted.<cluster>").
 * *n_alerts (may be NULL) is how many events were added. The daemon calls
 * it periodically; cheap (two indexed queries per cluster). */
int drill_check_overdue(const struct config *cfg, struct catalog *cat,
			double now, int *n_alerts, struct err *e);

/* Appends Prometheus text (HELP/TYPE once per family) for every cluster of
 * cfg that has drills: backupd_drill_last_age_seconds (since the last
 * finished drill ended), backupd_drill_last_success (1 passed, 0 failed),
 * backupd_drill_last_rto_seconds and backupd_drill_last_rpo_seconds (of
 * the last passing drill), backupd_drill_last_pass_age_seconds, and for
 * every cluster with a drill_target backupd_drill_overdue (0/1) and
 * backupd_drill_max_age_seconds. All gauges with label cluster. */
int drill_metrics(struct catalog *cat, const struct config *cfg,
		  struct buf *out, struct err *e);

/* The phases JSON of a report, as stored in drills.phases. Caller frees
 * with free(). */
char *drill_phases_json(const struct drill_report *r);

#endif
