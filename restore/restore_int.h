/* Internals of the restore engine shared by the restore/ files and its unit tests:
 * the verified local-infile stream (infile.c), the plan of what to restore
 * and the statements it needs (plan.c), the replica proof (replica.c).
 * Not a public interface: restore.h is. */
#ifndef BACKUPD_RESTORE_INT_H
#define BACKUPD_RESTORE_INT_H

#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <mysql.h>

#include "buf.h"
#include "checksum.h"
#include "db.h"
#include "err.h"
#include "manifest.h"
#include "restore.h"
#include "storage.h"
#include "zst.h"

/* ---- infile.c: one data file, repository -> zstd -> LOAD DATA --------- */

/* The stream of one data file into LOAD DATA LOCAL INFILE statements.
 * Every stored byte (stored size and checksum) and every decompressed byte
 * (raw size, checksum, rows) is checked against the manifest before the
 * stream says "end of file": a mismatch or a zstd error makes the last read
 * fail, so the server never sees a clean end of a bad file.
 *
 * A file may be cut into several statements of about stmt_limit bytes,
 * always at a row boundary: the stream then ends a statement (a read gives
 * 0 with done still false) and the caller sends the next LOAD DATA, which
 * continues where the last one stopped (restore_infile_next_statement).
 * Statements of ~32 MiB cost the server less CPU than smaller ones, whole
 * 250k-row chunks, or a transaction per table (restore/README.md).
 *
 * Owned by one worker thread; reused for its files (open, statements,
 * close, open, ...); restore_infile_release frees it at the end. Zero it
 * before the first open. */
struct restore_infile {
	/* set by restore_infile_open */
	struct storage *st;                  /* borrowed: the worker's own */
	const struct manifest_file *mf;      /* borrowed: what to expect */
	char path[2 * STORAGE_PATH_MAX + 2]; /* "<cluster>/<id>/<file path>" */
	volatile sig_atomic_t *abort_flag;   /* may be NULL */
	atomic_uint_fast64_t *progress_raw;  /* may be NULL: raw bytes counter */
	uint64_t stmt_limit;                 /* bytes per statement; 0: whole file */
	struct storage_file *f;
	struct zst_reader *zr;
	struct checksum cks_raw, cks_stored;
	bool cks_live;
	unsigned char *pend;                 /* decompressed, not yet handed out */
	size_t pend_pos, pend_len, pend_cap;
	/* the current statement */
	uint64_t stmt_bytes, stmt_rows;
	bool stmt_full;                      /* ends at the next read */
	/* the whole file */
	uint64_t bytes_raw, bytes_stored, rows;
	char checksum_raw[CHECKSUM_HEX_MAX]; /* final, once done */
	bool done;                           /* reached a verified end */
	struct err err;                      /* first failure, or unset */
};

/* Opens dir/mf->path on st for reading; stmt_limit as above. ERR_STORAGE
 * (a missing file: ERR_VERIFY naming it). */
int restore_infile_open(struct restore_infile *in, struct storage *st,
			const char *dir, const struct manifest_file *mf,
			uint64_t stmt_limit, volatile sig_atomic_t *abort_flag,
			atomic_uint_fast64_t *progress_raw, struct err *e);
/* Copies up to cap decompressed bytes into buf. *got == 0 ends the current
 * statement; in->done says whether that was the verified end of the file.
 * Errors (also kept in in->err): ERR_VERIFY naming the file for any
 * mismatch or damaged zstd data, ERR_STORAGE, ERR_ABORTED. After an error
 * every call fails. */
int restore_infile_read(struct restore_infile *in, void *buf, size_t cap,
			size_t *got, struct err *e);
/* Starts the next statement of the same file (stmt_bytes, stmt_rows). */
void restore_infile_next_statement(struct restore_infile *in);
/* Releases the file and the zstd reader; keeps counters and err. Safe to
 * call twice. */
void restore_infile_close(struct restore_infile *in);
/* restore_infile_close and frees the buffer. */
void restore_infile_release(struct restore_infile *in);
/* Installs the local-infile handler on m: the server's request for any
 * file name on this connection is answered from in (opened beforehand). */
void restore_infile_attach(MYSQL *m, struct restore_infile *in);
/* The connector callbacks, exported for the unit tests. */
int restore_infile_cb_init(void **ptr, const char *name, void *userdata);
int restore_infile_cb_read(void *ptr, char *buf, unsigned int len);
void restore_infile_cb_end(void *ptr);
int restore_infile_cb_error(void *ptr, char *msg, unsigned int len);

/* ---- plan.c: what to restore, and the statements ---------------------- */

struct restore_plan_table {
	size_t mi;                 /* index into manifest tables */
	size_t *files;             /* manifest file indexes in chunk order */
	size_t n_files;
	uint64_t bytes_raw, bytes_stored;
	char *create_sql;          /* without deferred keys; NULL: the manifest's */
	char *add_keys;            /* "ADD KEY ..., ADD UNIQUE KEY ..." or NULL */
};

/* The selection of a manifest a restore works on. Arrays hold manifest
 * indexes. Views, routines and events come only with whole databases;
 * triggers with their table. */
struct restore_plan {
	const struct manifest *m;  /* borrowed */
	size_t *dbs; size_t n_dbs;
	struct restore_plan_table *tables; size_t n_tables;  /* largest first */
	size_t *views; size_t n_views;
	size_t *triggers; size_t n_triggers;
	size_t *routines; size_t n_routines;
	size_t *events; size_t n_events;
	bool filtered;             /* a --databases or --tables filter applied */
	uint64_t bytes_raw, bytes_stored, rows;
	size_t n_files;
};

/* Builds the plan. Unknown databases or tables in the filters are
 * ERR_NOT_FOUND naming them and the snapshot. defer_indexes: secondary
 * KEY / UNIQUE KEY definitions of tables without foreign keys are split
 * off create_sql to be added after the load (restore_split_keys). */
int restore_plan_build(const struct manifest *m, char *const *dbs,
		       size_t n_dbs, const struct restore_table_name *tables,
		       size_t n_tables, bool defer_indexes,
		       struct restore_plan *p, struct err *e);
void restore_plan_release(struct restore_plan *p);

/* Splits the plain secondary indexes (KEY, INDEX, UNIQUE KEY; not
 * PRIMARY, FULLTEXT, SPATIAL, foreign keys) out of a SHOW CREATE TABLE
 * statement, honouring backticks and quotes. *create_out is the statement
 * without them, *add_out "ADD KEY `k` (`c`), ADD UNIQUE KEY ..." for an
 * ALTER TABLE; both NULL (return 0) when there is nothing to split or the
 * table has foreign keys (their indexes must exist at creation). Caller
 * frees both. ERR_INTERNAL when the text cannot be parsed. */
int restore_split_keys(const char *create_sql, char **create_out,
		       char **add_out, struct err *e);

/* LOAD DATA LOCAL INFILE 'name' INTO TABLE `s`.`t` CHARACTER SET binary
 * (cols) [SET ...]: the load statement for the manifest's column kinds. */
int restore_sql_load(struct buf *b, const char *infile_name,
		     const struct manifest_table *t, struct err *e);
/* SET SESSION sql_mode=..., character_set_client=..., collation_connection
 * =..., collation_database=... [, time_zone=...]: the session a stored
 * program was created in. A non-UTF-8 character_set_client is kept only
 * for an all-ASCII create_sql (the text arrives here as UTF-8); otherwise
 * utf8mb4 is used and *warn set. time_zone NULL: not set. */
int restore_sql_object_env(struct buf *b, const struct manifest_sql_env *env,
			   const char *time_zone, const char *create_sql,
			   bool no_backslash_escapes, bool *warn,
			   struct err *e);

/* ---- replica.c: re-attach and the proof ------------------------------- */

/* One base table the proof compares, with the columns its checksum covers
 * and its integer primary key when it has a single one. */
struct restore_cmp_table {
	char *schema, *name;
	char **cols; size_t n_cols;
	bool *text;                /* per column: has a collation (compared as bytes) */
	bool *nullable;            /* per column: NULL is possible */
	char *pk;                  /* NULL: checksummed whole */
	uint64_t est_rows;
};

/* The statement that checksums one chunk of t on the primary and, because
 * it runs with binlog_format=STATEMENT, re-runs on the replica against its
 * own rows at the same point of the replication stream:
 * INSERT INTO `backupd`.`restore_checksums` (run_id, db, tbl, chunk,
 * this_crc, this_cnt) SELECT '<run>', '<db>', '<tbl>', <chunk>,
 * LPAD(HEX(BIT_XOR(CRC32(CONCAT_WS('#', cols..., null flags)))), 8, '0'),
 * COUNT(*) FROM `db`.`tbl` [WHERE where]. Text columns are compared as
 * bytes (CAST AS BINARY: no collation mixing), nullable ones also by an
 * ISNULL flag (CONCAT_WS skips NULLs). where is trusted SQL built from the
 * table's key. */
int restore_sql_chunk_checksum(struct buf *b, const char *run_id,
			       const struct restore_cmp_table *t,
			       unsigned chunk, const char *where,
			       bool no_backslash_escapes, struct err *e);

struct restore_replica_ctx {
	const struct cfg_cluster *cl;    /* replication user and password */
	const struct cfg_addr *primary;
	const char *primary_addr;        /* formatted, for messages */
	const char *gtid;                /* the snapshot's position */
	unsigned timeout_s;
	volatile sig_atomic_t *abort_flag;
	bool progress;
	char *const *databases;          /* the snapshot's databases */
	size_t n_databases;
};

/* RESET MASTER, gtid_slave_pos, CHANGE MASTER, START SLAVE, read_only on
 * target. The target must hold nothing but the restored data (checked by
 * the caller). */
int restore_reattach(struct db *target, const struct restore_replica_ctx *c,
		     struct err *e);
/* Waits until target has executed the primary's current gtid_binlog_pos,
 * failing early on a replication error. */
int restore_wait_caught_up(struct db *target, struct db *primary,
			   const struct restore_replica_ctx *c, double *seconds,
			   char *pos_out, size_t pos_size, struct err *e);
/* The proof: chunk checksums computed on the primary under
 * binlog_format=STATEMENT replicate and are recomputed by the target at
 * the same GTID; every chunk must match. ERR_VERIFY naming the first
 * table that differs. */
int restore_compare_with_primary(struct db *target, struct db *primary,
				 const struct restore_replica_ctx *c,
				 struct restore_result *res, struct err *e);

#endif
