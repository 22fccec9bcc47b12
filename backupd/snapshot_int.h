/* Internals shared by the snapshot engine's files (snapshot.c: consistency,
 * workers, commit; snapshot_schema.c: discovery and DDL capture). Not a
 * public interface. */
#ifndef BACKUPD_SNAPSHOT_INT_H
#define BACKUPD_SNAPSHOT_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "checksum.h"
#include "db.h"
#include "snapshot.h"
#include "storage.h"
#include "tsv.h"

struct snap_table {
	char *schema;
	char *name;
	char *engine;
	bool transactional;      /* InnoDB and friends: read in the snapshot */
	bool is_sequence;
	uint64_t est_rows;       /* information_schema estimate, for ETA/chunks */
	char *create_sql;
	struct tsv_col *cols;
	size_t n_cols;
	char *pk_col;            /* single integer primary key, or NULL */
	size_t first_job, n_jobs;
	uint64_t rows;           /* counted while dumping */
	char checksum[CHECKSUM_HEX_MAX];
};

struct snap_job {
	size_t table;
	unsigned chunk;
	char *where;             /* NULL: the whole table */
	char path[512];          /* relative to the snapshot folder */
	/* Results, written by the worker that ran the job. */
	uint64_t rows, bytes_raw, bytes_stored;
	char cks_raw[CHECKSUM_HEX_MAX];
	char cks_stored[CHECKSUM_HEX_MAX];
	bool done;
};

/* A view, trigger, routine, event or database: DDL plus the session
 * context it must be replayed in. */
struct snap_obj {
	char *schema;
	char *name;
	char *extra;             /* trigger: its table; routine: PROCEDURE|FUNCTION */
	char *create_sql;
	char *sql_mode;
	char *time_zone;
	char *cs_client, *coll_conn, *db_coll;
};

struct snap_user {
	char *user, *host, *create_sql;
	char **grants;
	size_t n_grants;
};

struct snap_objs {
	struct snap_obj *items;
	size_t n, cap;
};

struct snap_ctx {
	const struct snapshot_opts *o;
	const struct cfg_cluster *cl;
	char id[64];
	char dir[400];           /* "<cluster>/<id>" in the repository */
	char source[300];
	const char *source_role;
	struct db *ctl;          /* control connection to the source */

	struct snap_table *tables;
	size_t n_tables;
	struct snap_job *jobs;
	size_t n_jobs;
	struct snap_objs databases, views, triggers, routines, events;
	struct snap_user *users;
	size_t n_users;
	char **warnings;
	size_t n_warnings;

	/* position */
	char *gtid;
	char *binlog_file;
	uint64_t binlog_pos;
	char *source_binlog_file;
	uint64_t source_binlog_pos;

	/* work queue */
	pthread_mutex_t lock;
	pthread_cond_t idle;     /* signalled when running drops to 0 */
	size_t next_job, job_limit;
	struct err first_err;
	atomic_bool failed;
	atomic_uint_fast64_t rows_done, bytes_raw_done, bytes_stored_done;
	atomic_int running;
	uint64_t est_rows_total;
};

void snap_warn(struct snap_ctx *x, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Discovers databases, tables, columns, keys and every object's DDL on
 * x->ctl; run while the source is frozen. */
int snap_discover(struct snap_ctx *x, struct err *e);
/* Splits tables into jobs (chunks), non-transactional tables first. */
int snap_plan_jobs(struct snap_ctx *x, struct err *e);
void snap_objs_free(struct snap_objs *o);

#endif
