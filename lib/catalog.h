/* The SQLite catalog: an index of the repository plus backupd's own state
 * (jobs, notification outbox, lag history, topology, restores, drills,
 * cutovers, schedule state). Schema: sql/catalog/NNN_*.sql, embedded at build
 * time and applied by catalog_open.
 *
 * Threading: one owner thread per struct catalog. Other threads open their
 * own connection (WAL lets readers and one writer share the file) or hand
 * work to the owner.
 *
 * Times are unix seconds (UTC) as double everywhere; 0 means "not set" in the
 * structs below (NULL in the database). catalog_time_iso formats them.
 *
 * Every helper that writes works inside or outside a caller's transaction:
 * inside catalog_begin/commit it joins it (so an event is written in the same
 * transaction as the state it reports), outside it runs its own. */
#ifndef BACKUPD_CATALOG_H
#define BACKUPD_CATALOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include "err.h"

struct catalog;

/* One embedded migration (build/gen/migrations.c). */
struct catalog_migration {
	int version;
	const char *name;
	const char *sql;
};

/* Opens (creating the file, mode 0600, and missing parent directories, mode
 * 0700) and migrates the catalog at path; ":memory:" works too. Refuses a
 * catalog whose schema is newer than this binary. Caller closes. */
int catalog_open(const char *path, struct catalog **out, struct err *e);
/* As catalog_open with another migration list (versions 1..n in order);
 * for tests and tools. */
int catalog_open_migrations(const char *path,
			    const struct catalog_migration *migrations,
			    size_t n_migrations, struct catalog **out,
			    struct err *e);
void catalog_close(struct catalog *c);   /* NULL ok */

/* PRAGMA user_version, or a negative ERR_CATALOG when it cannot be read. */
int catalog_schema_version(struct catalog *c);
/* Highest embedded migration version. */
int catalog_latest_version(void);
/* Borrowed until catalog_close; for modules that own their queries. */
sqlite3 *catalog_sqlite(struct catalog *c);
/* Borrowed until catalog_close. */
const char *catalog_path(const struct catalog *c);

/* BEGIN IMMEDIATE / COMMIT / ROLLBACK. Transactions do not nest: begin
 * inside a transaction is ERR_INTERNAL. A failed commit rolls back.
 * Rollback without a transaction is a no-op. */
int catalog_begin(struct catalog *c, struct err *e);
int catalog_commit(struct catalog *c, struct err *e);
int catalog_rollback(struct catalog *c, struct err *e);
bool catalog_in_transaction(struct catalog *c);
/* Runs fixed SQL (one or more statements). Never paste values into it: use
 * catalog_sqlite and bound parameters for those. */
int catalog_exec(struct catalog *c, const char *sql, struct err *e);

/* Current time as unix seconds with sub-second precision. */
double catalog_now(void);
/* Formats t as "2026-11-25T13:15:00Z" (or "2026-11-25T13:15:00.250Z" with
 * millis when with_ms); "" for t <= 0. Returns 0 or ERR_INTERNAL when out
 * is too small (32 bytes is always enough). */
int catalog_time_iso(double t, bool with_ms, char *out, size_t out_size);

/* Clusters and servers. Helpers below that reference a cluster create its
 * row when missing. */
int catalog_cluster_ensure(struct catalog *c, const char *cluster,
			   struct err *e);
/* role: primary|replica|drill|spare. flavor/version NULL and server_id < 0
 * keep what is stored. Sets last_seen_at to now. */
int catalog_server_upsert(struct catalog *c, const char *cluster,
			  const char *addr, const char *role,
			  const char *flavor, const char *version,
			  int64_t server_id, struct err *e);

/* Topology: the current primary of each cluster (changed by cutovers). */
int catalog_set_primary(struct catalog *c, const char *cluster,
			const char *addr, struct err *e);
/* *addr is NULL when the cluster has no recorded primary; caller frees. */
int catalog_get_primary(struct catalog *c, const char *cluster, char **addr,
			struct err *e);

/* Jobs. kind: snapshot|verify|prune|drill|restore|rebuild|cutover;
 * trigger: manual|schedule|daemon. At most one running job of a kind per
 * cluster (per target for restore/rebuild): a second start fails with
 * ERR_BUSY naming the running job. Records this process's pid and host. */
int catalog_job_start(struct catalog *c, const char *kind,
		      const char *cluster, const char *trigger,
		      int64_t *job_id, struct err *e);
/* As catalog_job_start with the schedule that fired it and the job's target
 * (snapshot id or server address); both may be NULL. */
int catalog_job_start_ex(struct catalog *c, const char *kind,
			 const char *cluster, const char *trigger,
			 const char *schedule, const char *target,
			 int64_t *job_id, struct err *e);
/* status: ok|failed|skipped|aborted. job_err may be NULL or unset; when set
 * its code (ERR_*) and message are stored. A job that is not running is
 * ERR_NOT_FOUND. */
int catalog_job_finish(struct catalog *c, int64_t job_id, const char *status,
		       const struct err *job_err, struct err *e);
/* Marks running jobs of this host whose process is gone as aborted (after a
 * crash), so they stop blocking new jobs. *n_reaped may be NULL. */
int catalog_job_reap(struct catalog *c, int *n_reaped, struct err *e);

/* Events / notification outbox. severity: info|warn|error|crit.
 * payload_json NULL means "{}"; it must be valid JSON. cluster, server may be
 * NULL. *event_id may be NULL. Due at once. */
int catalog_event_add(struct catalog *c, const char *cluster,
		      const char *server, const char *kind,
		      const char *severity, const char *payload_json,
		      int64_t *event_id, struct err *e);

struct catalog_event {
	int64_t id;
	double created_at;
	char *cluster;      /* NULL when none */
	char *server;       /* NULL when none */
	char *kind;
	char *severity;
	char *payload;      /* JSON text */
	int attempts;
};

/* Pending events due at `now`, oldest due first, at most max. Caller frees
 * with catalog_event_free_list. */
int catalog_event_due(struct catalog *c, double now, size_t max,
		      struct catalog_event **events, size_t *n, struct err *e);
void catalog_event_free_list(struct catalog_event *events, size_t n);
int catalog_event_mark_sent(struct catalog *c, int64_t event_id,
			    struct err *e);
/* Counts a failed attempt; due again at next_attempt_at. */
int catalog_event_mark_retry(struct catalog *c, int64_t event_id,
			     double next_attempt_at, const char *error,
			     struct err *e);
/* Counts a failed attempt and gives up on the event. */
int catalog_event_mark_failed(struct catalog *c, int64_t event_id,
			      const char *error, struct err *e);

/* Snapshots. Strings are heap copies owned by the struct (NULL when the
 * column is NULL); times 0 and job_id, server_id, binlog_pos, threads -1
 * when unknown. The totals (bytes_*, n_*) are 0 until the snapshot
 * completes. compress_level is stored as given (zstd levels may be 0 or
 * negative). */
struct catalog_snapshot {
	char *id;
	char *cluster;
	char *status;         /* running|complete|failed|aborted|deleted */
	char *reason;
	int64_t job_id;
	char *source_server;
	char *server_flavor;
	char *server_version;
	int64_t server_id;
	char *gtid;
	char *binlog_file;
	int64_t binlog_pos;
	double started_at;
	double finished_at;
	int64_t bytes_raw;
	int64_t bytes_stored;
	int64_t n_files;
	int64_t n_tables;
	int compress_level;
	int threads;
	double verified_at;
	char *verify_status;  /* ok|failed, NULL if never verified */
	char *manifest_path;
	char *repository;
	double deleted_at;
};

/* Sets every number to "unknown" and every pointer to NULL. */
void catalog_snapshot_init(struct catalog_snapshot *s);
/* Frees the strings and re-initialises s. */
void catalog_snapshot_release(struct catalog_snapshot *s);

/* Inserts a running snapshot from id, cluster, job_id, source_server,
 * server_*, compress_level, threads, repository, manifest_path and
 * started_at (0 = now). Status and totals in s are ignored. */
int catalog_snapshot_insert(struct catalog *c,
			    const struct catalog_snapshot *s, struct err *e);
/* Marks the running snapshot s->id complete and stores its position
 * (gtid, binlog_*), server_* (NULL / -1 keep what is stored), totals,
 * manifest_path and finished_at (0 = now). Below, an unknown id is
 * ERR_NOT_FOUND and a snapshot in the wrong state ERR_REFUSED. */
int catalog_snapshot_complete(struct catalog *c,
			      const struct catalog_snapshot *s, struct err *e);
/* status: failed|aborted. Only a running snapshot can fail. */
int catalog_snapshot_fail(struct catalog *c, const char *id,
			  const char *status, const char *reason,
			  struct err *e);
/* Only a complete snapshot can be verified. */
int catalog_snapshot_set_verified(struct catalog *c, const char *id, bool ok,
				  struct err *e);
/* Prune: the row stays as history with status deleted; deleting a deleted
 * snapshot again is a no-op, a running one ERR_REFUSED. */
int catalog_snapshot_mark_deleted(struct catalog *c, const char *id,
				  const char *reason, struct err *e);
/* Forgets the snapshot and its files and tables entirely. */
int catalog_snapshot_delete(struct catalog *c, const char *id,
			    struct err *e);
/* ERR_NOT_FOUND when there is no such id. Caller releases *out. */
int catalog_snapshot_get(struct catalog *c, const char *id,
			 struct catalog_snapshot *out, struct err *e);
/* Latest (by started_at) snapshot of a cluster with that status (NULL =
 * any); ERR_NOT_FOUND when none. Caller releases *out. */
int catalog_snapshot_latest(struct catalog *c, const char *cluster,
			    const char *status, struct catalog_snapshot *out,
			    struct err *e);
/* As catalog_snapshot_latest for complete snapshots whose repository is
 * `repository` (storage_redact_url of the configured one) or unknown: a
 * catalog that once indexed another repository must not hand out its
 * snapshots. ERR_NOT_FOUND when none. Caller releases *out. */
int catalog_snapshot_latest_in(struct catalog *c, const char *cluster,
			       const char *repository,
			       struct catalog_snapshot *out, struct err *e);
/* All snapshots (every status, deleted ones too) of a cluster or of all
 * clusters (NULL), oldest first. Caller frees with
 * catalog_snapshot_free_list. At most CATALOG_LIST_MAX rows. */
#define CATALOG_LIST_MAX 100000
int catalog_snapshot_list(struct catalog *c, const char *cluster,
			  struct catalog_snapshot **arr, size_t *n,
			  struct err *e);
void catalog_snapshot_free_list(struct catalog_snapshot *arr, size_t n);

struct catalog_snapshot_file {
	char *path;            /* relative to the snapshot folder */
	char *kind;            /* schema|data|routines|meta ... */
	char *schema_name;     /* NULL for files of no table */
	char *table_name;
	int64_t bytes_raw;
	int64_t bytes_stored;
	char *checksum_algo;
	char *checksum;
};

struct catalog_snapshot_table {
	char *schema_name;
	char *table_name;
	char *engine;
	int64_t n_rows;        /* -1 when unknown */
	char *checksum_algo;
	char *checksum;
};

int catalog_snapshot_add_file(struct catalog *c, const char *snapshot_id,
			      const struct catalog_snapshot_file *f,
			      struct err *e);
int catalog_snapshot_add_table(struct catalog *c, const char *snapshot_id,
			       const struct catalog_snapshot_table *t,
			       struct err *e);
/* Ordered by path / by schema and table. Caller frees with the matching
 * free_list. At most CATALOG_LIST_MAX rows. */
int catalog_snapshot_files(struct catalog *c, const char *snapshot_id,
			   struct catalog_snapshot_file **arr, size_t *n,
			   struct err *e);
void catalog_snapshot_file_free_list(struct catalog_snapshot_file *arr,
				     size_t n);
int catalog_snapshot_tables(struct catalog *c, const char *snapshot_id,
			    struct catalog_snapshot_table **arr, size_t *n,
			    struct err *e);
void catalog_snapshot_table_free_list(struct catalog_snapshot_table *arr,
				      size_t n);

/* For modules that own their queries: sets ERR_CATALOG naming the catalog,
 * the operation and SQLite's message for the connection's last error.
 * Returns ERR_CATALOG. op reads like "unable to insert lag sample". */
int catalog_error(struct catalog *c, const char *op, struct err *e);

#endif
