/* The snapshot engine: a consistent, parallel, zstd-compressed dump of a
 * cluster's databases into the repository, committed by its manifest and
 * indexed in the catalog. Used by `backupctl snapshot` and by the daemon's
 * schedules. */
#ifndef BACKUPD_SNAPSHOT_H
#define BACKUPD_SNAPSHOT_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "catalog.h"
#include "config.h"
#include "storage.h"
#include "err.h"

struct snapshot_opts {
	const struct config *cfg;
	const struct cfg_cluster *cluster;
	const char *from;            /* "host:port" or NULL: cluster policy */
	const char *trigger;         /* manual|schedule|daemon */
	const char *schedule;        /* schedule name or NULL */
	bool progress;               /* redraw a progress line on stderr */
	/* Set (by a signal handler) to stop the snapshot: it then fails with
	 * ERR_ABORTED, leaving nothing visible. May be NULL. */
	volatile sig_atomic_t *abort_flag;
	/* Rows per chunk for splitting large tables; 0 = default. */
	uint64_t chunk_rows;
};

struct snapshot_result {
	char id[64];
	char gtid[1024];
	char source[300];
	uint64_t bytes_raw;
	uint64_t bytes_stored;
	uint64_t rows;
	unsigned n_tables;
	unsigned n_files;
	double seconds;
	double freeze_ms;            /* SQL thread stopped / lock held */
};

#define SNAPSHOT_CHUNK_ROWS_DEFAULT 250000

/* Runs one snapshot. On failure nothing is visible in the repository (the
 * folder without a manifest is removed) and the catalog row says failed or
 * aborted with the reason. */
int snapshot_run(struct catalog *cat, const struct snapshot_opts *o,
		 struct snapshot_result *res, struct err *e);

/* Removes folders of this cluster that have no manifest and no running
 * snapshot (left by a crash or a killed run). */
int snapshot_cleanup_leftovers(struct catalog *cat, struct storage *st,
			       const char *cluster, struct err *e);

#endif
