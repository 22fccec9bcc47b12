/* Restore engine, replica re-attach and rebuild of downed replicas.
 *
 * restore_run loads one snapshot into a server: databases and tables from
 * the manifest, rows streamed from the repository through zstd into
 * LOAD DATA LOCAL INFILE on N connections (no temporary files), every file
 * verified as it streams, then views, triggers, routines and events. With
 * as_replica_of it then makes the server a replica at the snapshot's GTID
 * and proves the data equal to the primary's at a common GTID.
 * restore_rebuild does the same for a configured replica that is down,
 * broken or emptied, picking the latest good snapshot itself.
 *
 * Threading: one call runs in the calling thread, which owns the catalog;
 * it starts its own load workers (each with its own connection and storage
 * handle) and joins them before returning. */
#ifndef BACKUPD_RESTORE_H
#define BACKUPD_RESTORE_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "catalog.h"
#include "config.h"
#include "err.h"

/* Catch-up deadline when none is given. */
#define RESTORE_CATCHUP_TIMEOUT_S_DEFAULT 900u
/* Most phases a result reports. */
#define RESTORE_PHASES_MAX 12

/* A --tables entry: schema and table name, both unquoted. */
struct restore_table_name {
	char *schema;
	char *name;
};

struct restore_opts {
	const struct config *cfg;
	/* The snapshot's cluster; NULL: found through the catalog, then the
	 * repository's cluster folders. Its credentials are the default. */
	const struct cfg_cluster *cluster;
	const char *snapshot_id;
	const char *target;          /* "host:port" */
	const char *user;            /* NULL: the cluster's */
	const char *password;        /* used only when user is set */
	char **databases;            /* filter; n_databases 0: all */
	size_t n_databases;
	struct restore_table_name *tables;   /* filter; n_tables 0: none */
	size_t n_tables;
	int threads;                 /* 0: the config's threads */
	bool force;                  /* overwrite existing databases; allow the primary */
	bool no_binlog;              /* sql_log_bin=0 even for a standalone target */
	bool users;                  /* also create the manifest's accounts */
	/* Create secondary keys with their table. Default (false): plain
	 * secondary keys of tables with a primary key and no foreign keys are
	 * added right after the table's data, which measured faster
	 * (restore/README.md). */
	bool keep_indexes;
	/* "host:port" of a configured primary or a cluster name (its current
	 * primary): re-attach the target there at the snapshot's GTID. */
	const char *as_replica_of;
	bool verify_replica;         /* with as_replica_of: the checksum proof */
	unsigned catchup_timeout_s;  /* 0: RESTORE_CATCHUP_TIMEOUT_S_DEFAULT */
	const char *trigger;         /* catalog job trigger: manual|schedule|daemon */
	/* > 0: runs inside that catalog job (a rebuild's); 0: starts its own
	 * "restore" job for the target. */
	int64_t job_id;
	bool progress;               /* a redrawn progress line with ETA on stderr */
	/* Set (by a signal handler) to stop: ERR_ABORTED, databases created
	 * so far dropped. May be NULL. */
	volatile sig_atomic_t *abort_flag;
};

struct restore_phase {
	char name[24];
	double seconds;
};

struct restore_result {
	int64_t restore_id;          /* row in the catalog's restores table; 0 if none */
	char snapshot_id[256];
	char cluster[256];
	char target[300];
	char gtid[1024];             /* the snapshot's position */
	uint64_t bytes_raw;          /* decompressed bytes loaded */
	uint64_t bytes_stored;       /* bytes read from the repository */
	uint64_t rows;
	unsigned n_databases, n_tables, n_files;
	unsigned n_views, n_triggers, n_routines, n_events, n_users;
	bool indexes_deferred;
	double seconds;
	struct restore_phase phases[RESTORE_PHASES_MAX];
	size_t n_phases;
	/* Re-attach (as_replica_of). */
	bool replica;
	char primary[300];
	double catchup_s;            /* START SLAVE until the primary's position */
	bool verified;               /* the checksum proof ran and matched */
	uint64_t verify_tables, verify_chunks, verify_mismatches;
	char verify_gtid[1024];      /* the primary's position the proof ended at */
};

/* Runs one restore; see the header comment. Errors: ERR_NOT_FOUND (no
 * such snapshot, database or table), ERR_REFUSED (the target is a
 * primary or holds the snapshot's databases, without force), ERR_VERIFY
 * (a file, a table or the replica proof does not match; the message names
 * the file or table), ERR_DB_CONNECT, ERR_DB_QUERY, ERR_STORAGE,
 * ERR_REPLICATION, ERR_TIMEOUT, ERR_ABORTED. When the load fails the
 * databases this call created are dropped again. With cat: a "restore" job
 * (unless job_id), a row in restores and a restore.done or restore.failed
 * event. res is filled as far as the run got. */
int restore_run(struct catalog *cat, const struct restore_opts *o,
		struct restore_result *res, struct err *e);

struct restore_rebuild_opts {
	const struct config *cfg;
	const char *cluster;         /* NULL: the cluster that lists server */
	const char *server;          /* "host:port" of a configured replica */
	bool force;                  /* wipe the snapshot's databases there */
	int threads;
	unsigned catchup_timeout_s;
	const char *trigger;         /* manual|schedule|daemon */
	bool progress;
	volatile sig_atomic_t *abort_flag;
};

struct restore_rebuild_result {
	int64_t rebuild_id;
	char cluster[256];
	char server[300];
	char reason[512];            /* what was wrong with the replica */
	char snapshot_id[256];
	double seconds;
	struct restore_result restore;
};

/* Rebuilds a configured replica: it must be reachable (a downed server is
 * started empty first); the newest complete snapshot in the repository
 * that verifies is restored into it (verified ok already, or verified now
 * when it never was; a bad one is passed over), it is re-attached to the cluster's current primary at that
 * snapshot's GTID and checked equal to it. The snapshot's databases on the
 * replica are wiped when the cluster says rebuild = auto or force is set;
 * otherwise they refuse the rebuild. A healthy replica is rebuilt only
 * with force. With cat: a "rebuild" job, a row in rebuilds (with the
 * restore's row, which holds the phase timings) and a replica.rebuilt or
 * replica.rebuild_failed event. */
int restore_rebuild(struct catalog *cat, const struct restore_rebuild_opts *o,
		    struct restore_rebuild_result *res, struct err *e);

/* ---- helpers for callers (pure) ---------------------------------------- */

/* Parses "a,b,`c,d`" into names (a backticked name may hold commas and
 * doubled backticks). ERR_USAGE for an empty list or name. Caller frees
 * with restore_names_free. */
int restore_parse_names(const char *s, char ***out, size_t *n, struct err *e);
void restore_names_free(char **v, size_t n);
/* Parses "db.t,`odd.db`.`t,1`" into schema/table pairs. ERR_USAGE when an
 * entry has no '.' outside backticks. Caller frees with
 * restore_tables_free. */
int restore_parse_tables(const char *s, struct restore_table_name **out,
			 size_t *n, struct err *e);
void restore_tables_free(struct restore_table_name *v, size_t n);

/* Reads a password file with the config's rule for secret files: a
 * regular file not accessible by group or others (else ERR_PERMISSION),
 * one non-empty line of at most CFG_MAX_SECRET bytes, trailing newline
 * dropped. *out: caller wipes (explicit_bzero) and frees. */
int restore_read_password_file(const char *path, char **out, struct err *e);

#endif
