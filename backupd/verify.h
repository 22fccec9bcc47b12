/* Snapshot verification: re-read every file a manifest lists from the
 * repository and prove it is what the snapshot wrote (stored size and
 * checksum, decompressed size, checksum and rows, each table's checksum and
 * row sum). Used by `backupctl verify`, the daemon's verify schedules and DR
 * drills. */
#ifndef BACKUPD_VERIFY_H
#define BACKUPD_VERIFY_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "catalog.h"
#include "config.h"
#include "err.h"

struct manifest;
struct storage;

/* Most problems a report keeps; more are counted (files_bad, tables_bad)
 * but not listed. */
#define VERIFY_PROBLEMS_MAX 1000
/* Longest manifest.json verify reads (MANIFEST_MAX_BYTES). */
#define VERIFY_MANIFEST_MAX (256u * 1024u * 1024u)

/* One thing that did not match. path is the file (relative to the snapshot
 * folder) or NULL for a table-level mismatch; table is "schema.name" or
 * NULL; what is one line: "stored checksum xxh128:ab.. != manifest
 * xxh128:cd..". Strings owned by the report. */
struct verify_problem {
	char *path;
	char *table;
	char *what;
};

/* Filled by snapshot_verify whether it succeeds or not; release with
 * verify_report_release. */
struct verify_report {
	char *id;                 /* the snapshot verified */
	char *cluster;
	bool ok;                  /* every check passed */
	uint64_t files_total;     /* files in the manifest */
	uint64_t files_checked;   /* files read to the end (good or bad) */
	uint64_t files_bad;
	uint64_t tables_total;
	uint64_t tables_bad;
	uint64_t bytes_read;      /* stored (compressed) bytes read */
	uint64_t bytes_raw;       /* decompressed bytes */
	uint64_t rows;            /* rows counted in the data files */
	double seconds;
	struct verify_problem *problems;
	size_t n_problems;        /* at most VERIFY_PROBLEMS_MAX */
	size_t cap_problems;      /* internal */
};

void verify_report_init(struct verify_report *r);
void verify_report_release(struct verify_report *r);

struct verify_opts {
	const char *trigger;      /* catalog job trigger: manual|schedule|daemon */
	const char *schedule;     /* schedule name or NULL */
	/* Set (by a signal handler) to stop early: ERR_ABORTED. May be NULL. */
	volatile sig_atomic_t *abort_flag;
	/* A line per file on stderr. */
	bool progress;
};

/* Verifies snapshot id of cluster (NULL: looked up in the catalog, then in
 * every cluster folder of cfg in the repository).
 *
 * Returns 0 when every check passed; ERR_VERIFY when a file is missing or
 * differs from the manifest or a table's checksum or rows differ (e->msg
 * names the first bad file and what differed, rep lists all of them);
 * ERR_NOT_FOUND when the snapshot or its manifest does not exist;
 * ERR_CORRUPT when the manifest cannot be parsed; ERR_STORAGE when the
 * repository cannot be read (nothing is concluded about the data then);
 * ERR_BUSY when another verify of the cluster runs.
 *
 * With cat: records a "verify" job; a concluded verify (ok, ERR_VERIFY,
 * ERR_CORRUPT, or a missing manifest of a snapshot the catalog has as
 * complete) sets the snapshot's verify status (when the catalog has it
 * complete) and adds a verify.ok (info) or verify.failed (error) event in
 * one transaction; the event payload is {"id", "files", "files_bad",
 * "tables_bad", "bytes_read", "seconds"[, "error", "error_code"]}. */
int snapshot_verify(const struct config *cfg, struct catalog *cat,
		    const char *cluster, const char *id,
		    struct verify_report *rep, struct err *e);
/* As snapshot_verify; o NULL means trigger "manual". */
int snapshot_verify_ex(const struct config *cfg, struct catalog *cat,
		       const char *cluster, const char *id,
		       const struct verify_opts *o, struct verify_report *rep,
		       struct err *e);

/* Refuses ids that are not a single safe folder name: ERR_USAGE. */
int snapshot_id_check(const char *id, struct err *e);

/* The cluster holding snapshot id: the catalog's row (cat may be NULL),
 * else the first cluster of cfg whose folder in st holds
 * <cluster>/<id>/manifest.json. ERR_NOT_FOUND when neither knows it.
 * Caller frees *cluster. */
int snapshot_find_cluster(const struct config *cfg, struct catalog *cat,
			  struct storage *st, const char *id, char **cluster,
			  struct err *e);

/* Reads and parses <cluster>/<id>/manifest.json from st. ERR_NOT_FOUND when
 * it is missing, ERR_CORRUPT when it is unparsable, too large or names
 * another snapshot, ERR_STORAGE when it cannot be read. Caller frees *out
 * with manifest_free and, when json is not NULL, *json (the file's text,
 * NUL-terminated, *json_len bytes) with free(). */
int snapshot_manifest_load(struct storage *st, const char *cluster,
			   const char *id, struct manifest **out, char **json,
			   size_t *json_len, struct err *e);

#endif
