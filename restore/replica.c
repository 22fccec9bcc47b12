/* Re-attaching a restored server to replication and proving it right.
 *
 * Re-attach: RESET MASTER (the target holds only what was just restored),
 * gtid_slave_pos = the snapshot's GTID, CHANGE MASTER with GTID
 * positioning and the cluster's replication account, START SLAVE,
 * read_only. Catch-up: MASTER_GTID_WAIT for the primary's gtid_binlog_pos
 * in one-second steps, failing at once on a replication error.
 *
 * The proof is pt-table-checksum's technique: on the primary, with
 * binlog_format=STATEMENT for the session, INSERT ... SELECT a checksum of
 * each chunk of each table into backupd.restore_checksums, then record the
 * primary's own result with an UPDATE of literals. Both statements
 * replicate as statements, so the replica recomputes the checksum over its
 * own rows at exactly the same point of the replication stream while
 * writes go on; once it has applied them, every chunk's this_crc/this_cnt
 * must equal master_crc/master_cnt. Chunks keep the row locks the
 * statement-based INSERT ... SELECT takes on the primary short.
 *
 * Threading: runs on the restore's control thread with its own
 * connections. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "mem.h"
#include "restore_int.h"

#define MOD "restore"
/* Rows per checksum chunk for tables with a single integer primary key. */
#define CMP_CHUNK_ROWS 100000
/* An IO thread still failing to connect after this long is an error. */
#define IO_ERROR_GRACE_S 30

static double mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- re-attach ---------------------------------------------------------- */

int restore_reattach(struct db *t, const struct restore_replica_ctx *c,
		     struct err *e)
{
	struct dialect_source src;
	struct buf b;
	int rc;

	if (!c->cl->replication_user)
		return err_set(e, ERR_CONFIG,
			       "cluster '%s' has no replication_user: set it (and replication_password_file) to re-attach replicas",
			       c->cl->name);
	buf_init(&b, 1024 * 1024);
	rc = db_exec(t, db_sql(t, DIALECT_STOP_REPLICA), e);
	if (rc == 0)
		rc = db_exec(t, db_sql(t, DIALECT_RESET_REPLICA_ALL), e);
	/* The target's own binlog may hold GTIDs (accounts created on it,
	 * an old life as a primary); under gtid_strict_mode they would make
	 * setting the position fail. It holds nothing but what this restore
	 * loaded (checked before loading), so the binlog goes. */
	if (rc == 0)
		rc = db_exec(t, db_sql(t, DIALECT_RESET_BINLOGS), e);
	if (rc == 0)
		rc = dialect_build_set_gtid_position(db_flavor(t), c->gtid ? c->gtid : "",
						     db_no_backslash_escapes(t), &b, e);
	if (rc == 0)
		rc = db_exec_buf(t, &b, e);
	if (rc == 0) {
		memset(&src, 0, sizeof(src));
		src.host = c->primary->host;
		src.port = c->primary->port;
		src.user = c->cl->replication_user;
		src.password = c->cl->replication_password;
		src.connect_retry_s = 5;
		src.ssl = c->cl->ssl_mode >= CFG_SSL_REQUIRED;
		rc = db_change_source(t, &src, e);
	}
	if (rc == 0)
		rc = db_exec(t, db_sql(t, DIALECT_START_REPLICA), e);
	if (rc == 0)
		rc = db_exec(t, db_sql(t, DIALECT_SET_READ_ONLY), e);
	if (rc)
		err_prefix(e, "re-attaching '%s' to '%s': ", db_addr(t), c->primary_addr);
	else
		log_info(MOD, "'%s' replicates from '%s' starting after gtid '%s'",
			 db_addr(t), c->primary_addr, c->gtid ? c->gtid : "");
	buf_release(&b);
	return rc;
}

/* ---- catch-up ------------------------------------------------------------ */

/* A replication problem that waiting will not cure: 0 when none. */
static int replica_broken(struct db *t, double *io_err_since, double now,
			  struct err *e)
{
	struct db_replica_status rs;
	int rc = db_replica_status(t, &rs, e);

	if (rc == 0 && !rs.configured)
		rc = err_set(e, ERR_REPLICATION, "'%s' is no longer configured as a replica",
			     db_addr(t));
	else if (rc == 0 && rs.last_sql_errno)
		rc = err_set(e, ERR_REPLICATION,
			     "replication on '%s' stopped with SQL error %u: %.300s",
			     db_addr(t), rs.last_sql_errno, rs.last_sql_error);
	else if (rc == 0 && !rs.sql_running)
		rc = err_set(e, ERR_REPLICATION, "the SQL thread of '%s' is not running",
			     db_addr(t));
	else if (rc == 0 && !rs.io_running && rs.last_io_errno) {
		bool connecting = strcmp(rs.io_state_raw, "Connecting") == 0;

		if (*io_err_since == 0)
			*io_err_since = now;
		if (!connecting || now - *io_err_since > IO_ERROR_GRACE_S)
			rc = err_set(e, ERR_REPLICATION,
				     "the IO thread of '%s' fails with error %u: %.300s",
				     db_addr(t), rs.last_io_errno, rs.last_io_error);
	} else if (rc == 0) {
		*io_err_since = 0;
	}
	db_replica_status_release(&rs);
	return rc;
}

static int read_binlog_pos(struct db *p, char **pos, struct err *e)
{
	bool found = false;
	int rc = db_query_value(p, db_sql(p, DIALECT_GTID_BINLOG_POS), pos, &found, e);

	if (rc == 0 && !*pos)
		*pos = xstrdup("");
	return rc;
}

static int wait_pos(struct db *t, const char *pos,
		    const struct restore_replica_ctx *c, const char *what,
		    struct err *e)
{
	double t0 = mono_now(), io_err_since = 0;
	unsigned long ticks = 0;
	int rc;

	if (!*pos)
		return 0;
	for (;;) {
		struct err we;

		if (c->abort_flag && *c->abort_flag)
			return err_set(e, ERR_ABORTED, "restore aborted while waiting for '%s'",
				       db_addr(t));
		err_init(&we);
		rc = db_gtid_wait(t, pos, 1, &we);
		if (rc == 0)
			break;
		if (rc != ERR_TIMEOUT) {
			*e = we;
			return rc;
		}
		double now = mono_now();
		if ((rc = replica_broken(t, &io_err_since, now, e)))
			return rc;
		if (now - t0 > c->timeout_s)
			return err_set(e, ERR_TIMEOUT,
				       "'%s' did not reach the primary's position '%.200s' within %u s (%s)",
				       db_addr(t), pos, c->timeout_s, what);
		if (c->progress && ++ticks % 2 == 0) {
			fprintf(stderr, "\r%s: %.0f s ", what, now - t0);
			fflush(stderr);
		}
	}
	if (c->progress && ticks >= 2)
		fprintf(stderr, "\n");
	return 0;
}

int restore_wait_caught_up(struct db *t, struct db *p,
			   const struct restore_replica_ctx *c, double *seconds,
			   char *pos_out, size_t pos_size, struct err *e)
{
	double t0 = mono_now();
	char *pos = NULL;
	int rc = read_binlog_pos(p, &pos, e);

	if (rc == 0)
		rc = wait_pos(t, pos, c, "catching up with the primary", e);
	/* Even with nothing to wait for, the threads must be healthy. */
	if (rc == 0) {
		double since = 0;

		rc = replica_broken(t, &since, mono_now(), e);
	}
	*seconds = mono_now() - t0;
	if (pos_out && pos)
		str_copy(pos_out, pos_size, pos);
	free(pos);
	return rc;
}

/* ---- the proof ------------------------------------------------------------ */

static const char *const cmp_table_ddl =
	"CREATE TABLE IF NOT EXISTS `backupd`.`restore_checksums` ("
	" run_id VARCHAR(64) NOT NULL, db VARCHAR(64) NOT NULL, tbl VARCHAR(64) NOT NULL,"
	" chunk INT UNSIGNED NOT NULL, this_crc CHAR(32) NULL, this_cnt BIGINT UNSIGNED NULL,"
	" master_crc CHAR(32) NULL, master_cnt BIGINT UNSIGNED NULL,"
	" ts TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,"
	" PRIMARY KEY (run_id, db, tbl, chunk)"
	") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin";

int restore_sql_chunk_checksum(struct buf *b, const char *run_id,
			       const struct restore_cmp_table *t,
			       unsigned chunk, const char *where, bool nbe,
			       struct err *e)
{
	int rc = buf_append_str(b,
		"INSERT INTO `backupd`.`restore_checksums` (run_id, db, tbl, chunk, this_crc, this_cnt) SELECT ", e);

	if (rc == 0)
		rc = dialect_quote_string(b, run_id, strlen(run_id), nbe, e);
	if (rc == 0)
		rc = buf_append_str(b, ", ", e);
	if (rc == 0)
		rc = dialect_quote_string(b, t->schema, strlen(t->schema), nbe, e);
	if (rc == 0)
		rc = buf_append_str(b, ", ", e);
	if (rc == 0)
		rc = dialect_quote_string(b, t->name, strlen(t->name), nbe, e);
	/* pt-table-checksum's measure: XOR of a CRC32 per row, and the row
	 * count. Cheap enough that the proof does not take longer than the
	 * restore it proves (an MD5 per row, or a derived table for a second
	 * aggregate, cost 1.5-2x on sysbench rows). */
	if (rc == 0)
		rc = buf_printf(b, e, ", %u, LPAD(HEX(BIT_XOR(CRC32(CONCAT_WS('#'", chunk);
	for (size_t i = 0; rc == 0 && i < t->n_cols; i++) {
		bool text = t->text && t->text[i];

		rc = buf_append_str(b, text ? ", CAST(" : ", ", e);
		if (rc == 0)
			rc = db_quote_ident(b, t->cols[i], e);
		if (rc == 0 && text)
			rc = buf_append_str(b, " AS BINARY)", e);
	}
	bool any_null = false;
	for (size_t i = 0; rc == 0 && i < t->n_cols; i++) {
		if (t->nullable && !t->nullable[i])
			continue;
		rc = buf_append_str(b, any_null ? ", ISNULL(" : ", CONCAT(ISNULL(", e);
		any_null = true;
		if (rc == 0)
			rc = db_quote_ident(b, t->cols[i], e);
		if (rc == 0)
			rc = buf_append_char(b, ')', e);
	}
	if (rc == 0 && any_null)
		rc = buf_append_char(b, ')', e);
	if (rc == 0)
		rc = buf_append_str(b, ")))), 8, '0'), COUNT(*) FROM ", e);
	if (rc == 0)
		rc = db_quote_table(b, t->schema, t->name, e);
	if (rc == 0 && where && *where)
		rc = buf_printf(b, e, " WHERE %s", where);
	return rc;
}

static void cmp_tables_free(struct restore_cmp_table *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].schema);
		free(v[i].name);
		for (size_t c = 0; c < v[i].n_cols; c++)
			free(v[i].cols[c]);
		free(v[i].cols);
		free(v[i].text);
		free(v[i].nullable);
		free(v[i].pk);
	}
	free(v);
}

static struct restore_cmp_table *cmp_find(struct restore_cmp_table *v, size_t n,
					  const char *schema, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i].schema, schema) == 0 && strcmp(v[i].name, name) == 0)
			return &v[i];
	return NULL;
}

/* "TABLE_SCHEMA IN ('a','b')" for the snapshot's databases. */
static int schema_in(struct db *d, const struct restore_replica_ctx *c,
		     struct buf *b, struct err *e)
{
	int rc = buf_append_str(b, "TABLE_SCHEMA IN (", e);

	for (size_t i = 0; rc == 0 && i < c->n_databases; i++) {
		if (i)
			rc = buf_append_char(b, ',', e);
		if (rc == 0)
			rc = db_quote_string(d, b, c->databases[i],
					     strlen(c->databases[i]), e);
	}
	if (rc == 0)
		rc = buf_append_char(b, ')', e);
	return rc;
}

static bool int_type(const char *t)
{
	static const char *const ints[] = { "tinyint", "smallint", "mediumint", "int", "bigint" };

	for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++)
		if (strcmp(t, ints[i]) == 0)
			return true;
	return false;
}

/* The base tables of the snapshot's databases as the primary has them
 * now (tables created since the snapshot replicated to the target too). */
static int cmp_list_tables(struct db *p, const struct restore_replica_ctx *c,
			   struct restore_cmp_table **out, size_t *n_out,
			   struct err *e)
{
	struct restore_cmp_table *v = NULL;
	size_t n = 0;
	struct buf in, q;
	MYSQL_RES *res = NULL;
	MYSQL_ROW row;
	int rc;

	*out = NULL;
	*n_out = 0;
	if (c->n_databases == 0)
		return 0;
	buf_init(&in, 0);
	buf_init(&q, 0);
	rc = schema_in(p, c, &in, e);
	if (rc == 0)
		rc = buf_printf(&q, e,
				"SELECT TABLE_SCHEMA, TABLE_NAME, IFNULL(TABLE_ROWS, 0) FROM information_schema.TABLES "
				"WHERE %s AND TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED') "
				"AND NOT (TABLE_SCHEMA = 'backupd' AND TABLE_NAME = 'restore_checksums') "
				"ORDER BY TABLE_SCHEMA, TABLE_NAME", in.data);
	if (rc == 0)
		rc = db_query_result(p, q.data, false, &res, e);
	while (rc == 0 && (rc = db_fetch_row(p, res, &row, NULL, e)) == 0 && row) {
		v = xrealloc(v, (n + 1) * sizeof(*v));
		memset(&v[n], 0, sizeof(v[n]));
		v[n].schema = xstrdup(row[0]);
		v[n].name = xstrdup(row[1]);
		v[n].est_rows = strtoull(row[2], NULL, 10);
		n++;
	}
	if (res) {
		mysql_free_result(res);
		db_finish(p, NULL);
		res = NULL;
	}
	buf_reset(&q);
	if (rc == 0)
		rc = buf_printf(&q, e,
				"SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME, COLLATION_NAME IS NOT NULL, "
				"IS_NULLABLE = 'YES' FROM information_schema.COLUMNS "
				"WHERE %s ORDER BY TABLE_SCHEMA, TABLE_NAME, ORDINAL_POSITION", in.data);
	if (rc == 0)
		rc = db_query_result(p, q.data, false, &res, e);
	while (rc == 0 && (rc = db_fetch_row(p, res, &row, NULL, e)) == 0 && row) {
		struct restore_cmp_table *t = cmp_find(v, n, row[0], row[1]);

		if (!t)
			continue;
		t->cols = xrealloc(t->cols, (t->n_cols + 1) * sizeof(char *));
		t->text = xrealloc(t->text, (t->n_cols + 1) * sizeof(bool));
		t->nullable = xrealloc(t->nullable, (t->n_cols + 1) * sizeof(bool));
		t->text[t->n_cols] = row[3] && strcmp(row[3], "1") == 0;
		t->nullable[t->n_cols] = row[4] && strcmp(row[4], "1") == 0;
		t->cols[t->n_cols++] = xstrdup(row[2]);
	}
	if (res) {
		mysql_free_result(res);
		db_finish(p, NULL);
		res = NULL;
	}
	buf_reset(&q);
	if (rc == 0)
		rc = buf_printf(&q, e,
				"SELECT k.TABLE_SCHEMA, k.TABLE_NAME, MIN(k.COLUMN_NAME), MIN(c.DATA_TYPE), COUNT(*) "
				"FROM information_schema.KEY_COLUMN_USAGE k JOIN information_schema.COLUMNS c "
				"ON c.TABLE_SCHEMA = k.TABLE_SCHEMA AND c.TABLE_NAME = k.TABLE_NAME AND c.COLUMN_NAME = k.COLUMN_NAME "
				"WHERE k.%s AND k.CONSTRAINT_NAME = 'PRIMARY' GROUP BY k.TABLE_SCHEMA, k.TABLE_NAME",
				in.data);
	if (rc == 0)
		rc = db_query_result(p, q.data, false, &res, e);
	while (rc == 0 && (rc = db_fetch_row(p, res, &row, NULL, e)) == 0 && row) {
		struct restore_cmp_table *t = cmp_find(v, n, row[0], row[1]);

		if (t && row[4] && strcmp(row[4], "1") == 0 && row[3] && int_type(row[3]))
			t->pk = xstrdup(row[2]);
	}
	if (res) {
		mysql_free_result(res);
		db_finish(p, NULL);
	}
	buf_release(&in);
	buf_release(&q);
	if (rc) {
		cmp_tables_free(v, n);
		return rc;
	}
	*out = v;
	*n_out = n;
	return 0;
}

/* Chunk bounds of t: n ranges over [lo, hi] with open ends, or one
 * (where NULL) for a table without a usable key or with few rows. */
static int cmp_bounds(struct db *p, const struct restore_cmp_table *t,
		      long long *lo, long long *hi, unsigned *n, struct err *e)
{
	struct buf q, col;
	MYSQL_RES *res = NULL;
	MYSQL_ROW row;
	int rc;

	*n = 1;
	if (!t->pk || t->est_rows <= CMP_CHUNK_ROWS)
		return 0;
	buf_init(&q, 0);
	buf_init(&col, 0);
	rc = db_quote_ident(&col, t->pk, e);
	if (rc == 0)
		rc = buf_printf(&q, e, "SELECT MIN(%s), MAX(%s) FROM ", col.data, col.data);
	if (rc == 0)
		rc = db_quote_table(&q, t->schema, t->name, e);
	if (rc == 0)
		rc = db_query_result(p, q.data, false, &res, e);
	if (rc == 0)
		rc = db_fetch_row(p, res, &row, NULL, e);
	if (rc == 0 && row && row[0] && row[1]) {
		char *e1, *e2;

		*lo = strtoll(row[0], &e1, 10);
		*hi = strtoll(row[1], &e2, 10);
		if (!*e1 && !*e2 && *hi > *lo) {
			uint64_t want = (t->est_rows + CMP_CHUNK_ROWS - 1) / CMP_CHUNK_ROWS;

			*n = want > 4096 ? 4096 : (unsigned)want;
			if ((unsigned long long)(*hi - *lo) < *n)
				*n = 1;
		}
	}
	if (res) {
		mysql_free_result(res);
		db_finish(p, NULL);
	}
	buf_release(&q);
	buf_release(&col);
	return rc;
}

static int cmp_where(struct buf *w, const struct restore_cmp_table *t,
		     long long lo, long long hi, unsigned i, unsigned n,
		     struct err *e)
{
	struct buf col;
	long double step = ((long double)hi - (long double)lo) / n;
	long long b0 = lo + (long long)(step * i), b1 = lo + (long long)(step * (i + 1));
	int rc;

	buf_reset(w);
	if (n == 1)
		return 0;
	buf_init(&col, 0);
	rc = db_quote_ident(&col, t->pk, e);
	if (rc == 0 && i == 0)
		rc = buf_printf(w, e, "%s < %lld", col.data, b1);
	else if (rc == 0 && i == n - 1)
		rc = buf_printf(w, e, "%s >= %lld", col.data, b0);
	else if (rc == 0)
		rc = buf_printf(w, e, "%s >= %lld AND %s < %lld", col.data, b0, col.data, b1);
	buf_release(&col);
	return rc;
}

/* "run_id = '...' AND db = '...' AND tbl = '...' AND chunk = N" */
static int chunk_key(struct db *d, struct buf *b, const char *run_id,
		     const struct restore_cmp_table *t, unsigned chunk,
		     struct err *e)
{
	int rc = buf_append_str(b, "run_id = ", e);

	if (rc == 0)
		rc = db_quote_string(d, b, run_id, strlen(run_id), e);
	if (rc == 0)
		rc = buf_append_str(b, " AND db = ", e);
	if (rc == 0)
		rc = db_quote_string(d, b, t->schema, strlen(t->schema), e);
	if (rc == 0)
		rc = buf_append_str(b, " AND tbl = ", e);
	if (rc == 0)
		rc = db_quote_string(d, b, t->name, strlen(t->name), e);
	if (rc == 0)
		rc = buf_printf(b, e, " AND chunk = %u", chunk);
	return rc;
}

/* One chunk on the primary: the replicated checksum, then its own result
 * as literals. */
static int cmp_chunk(struct db *p, const char *run_id,
		     const struct restore_cmp_table *t, unsigned chunk,
		     const char *where, struct err *e)
{
	struct buf q, key;
	MYSQL_RES *res = NULL;
	MYSQL_ROW row = NULL;
	int rc;

	buf_init(&q, 0);
	buf_init(&key, 0);
	rc = restore_sql_chunk_checksum(&q, run_id, t, chunk, where,
					db_no_backslash_escapes(p), e);
	if (rc == 0)
		rc = db_exec_buf(p, &q, e);
	if (rc == 0)
		rc = chunk_key(p, &key, run_id, t, chunk, e);
	buf_reset(&q);
	if (rc == 0)
		rc = buf_printf(&q, e, "SELECT this_crc, this_cnt FROM `backupd`.`restore_checksums` WHERE %s",
				key.data);
	if (rc == 0)
		rc = db_query_result(p, q.data, false, &res, e);
	if (rc == 0)
		rc = db_fetch_row(p, res, &row, NULL, e);
	if (rc == 0 && (!row || !row[0] || !row[1]))
		rc = err_set(e, ERR_INTERNAL, "the checksum of `%s`.`%s` chunk %u was not recorded on the primary",
			     t->schema, t->name, chunk);
	buf_reset(&q);
	if (rc == 0)
		rc = buf_append_str(&q, "UPDATE `backupd`.`restore_checksums` SET master_crc = ", e);
	if (rc == 0)
		rc = db_quote_string(p, &q, row[0], strlen(row[0]), e);
	if (rc == 0)
		rc = buf_printf(&q, e, ", master_cnt = %s WHERE %s", row[1], key.data);
	if (res) {
		mysql_free_result(res);
		db_finish(p, NULL);
	}
	if (rc == 0)
		rc = db_exec_buf(p, &q, e);
	buf_release(&q);
	buf_release(&key);
	return rc;
}

static int cmp_results(struct db *t, const char *run_id, uint64_t expected,
		       struct restore_result *r, struct err *e)
{
	struct buf q;
	MYSQL_RES *res = NULL;
	MYSQL_ROW row;
	unsigned long long seen = 0;
	char first[400] = "";
	int rc;

	buf_init(&q, 0);
	rc = buf_append_str(&q,
		"SELECT db, tbl, chunk, IFNULL(this_cnt, -1), IFNULL(master_cnt, -1), "
		"this_crc <=> master_crc AND this_cnt <=> master_cnt AND master_crc IS NOT NULL "
		"FROM `backupd`.`restore_checksums` WHERE run_id = ", e);
	if (rc == 0)
		rc = db_quote_string(t, &q, run_id, strlen(run_id), e);
	if (rc == 0)
		rc = db_query_result(t, q.data, false, &res, e);
	while (rc == 0 && (rc = db_fetch_row(t, res, &row, NULL, e)) == 0 && row) {
		seen++;
		if (row[5] && strcmp(row[5], "1") == 0)
			continue;
		r->verify_mismatches++;
		if (!first[0])
			snprintf(first, sizeof(first),
				 "table `%.100s`.`%.100s` chunk %s differs from the primary (%s rows here, %s there)",
				 row[0], row[1], row[2], row[3], row[4]);
	}
	if (res) {
		mysql_free_result(res);
		db_finish(t, NULL);
	}
	buf_release(&q);
	if (rc)
		return rc;
	r->verify_chunks = seen;
	if (r->verify_mismatches)
		return err_set(e, ERR_VERIFY, "'%s' is not equal to the primary: %s%s",
			       db_addr(t), first,
			       r->verify_mismatches > 1 ? " (and more chunks)" : "");
	if (seen != expected)
		return err_set(e, ERR_VERIFY,
			       "'%s' applied %llu of the primary's %" PRIu64 " checksum chunks",
			       db_addr(t), seen, expected);
	return 0;
}

int restore_compare_with_primary(struct db *t, struct db *p,
				 const struct restore_replica_ctx *c,
				 struct restore_result *r, struct err *e)
{
	struct restore_cmp_table *tabs = NULL;
	size_t n_tabs = 0;
	uint64_t chunks = 0;
	char run_id[64];
	struct buf w, q;
	char *pos = NULL;
	int rc;

	struct timespec now;

	clock_gettime(CLOCK_REALTIME, &now);
	snprintf(run_id, sizeof(run_id), "%lld.%09ld-%d", (long long)now.tv_sec,
		 (long)now.tv_nsec, (int)getpid());
	buf_init(&w, 0);
	buf_init(&q, 0);
	/* STATEMENT so the checksums are recomputed on the replica;
	 * REPEATABLE READ because InnoDB refuses statement logging under
	 * READ COMMITTED. */
	rc = db_exec(p, "SET SESSION binlog_format = 'STATEMENT', "
		     "SESSION time_zone = '+00:00', SESSION sql_log_bin = 1", e);
	if (rc == 0)
		rc = db_exec(p, "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ", e);
	if (rc == 0 && db_flavor(p) == DB_FLAVOR_MARIADB)
		rc = db_exec(p, "SET SESSION max_statement_time = 0", e);
	if (rc == 0)
		rc = db_exec(p, "CREATE DATABASE IF NOT EXISTS `backupd`", e);
	if (rc == 0)
		rc = db_exec(p, cmp_table_ddl, e);
	if (rc == 0)
		rc = db_exec(p, "DELETE FROM `backupd`.`restore_checksums` WHERE ts < NOW() - INTERVAL 1 DAY", e);
	if (rc == 0)
		rc = cmp_list_tables(p, c, &tabs, &n_tabs, e);
	for (size_t i = 0; rc == 0 && i < n_tabs; i++) {
		long long lo = 0, hi = 0;
		unsigned n = 1;

		if (c->abort_flag && *c->abort_flag) {
			rc = err_set(e, ERR_ABORTED, "restore aborted");
			break;
		}
		rc = cmp_bounds(p, &tabs[i], &lo, &hi, &n, e);
		for (unsigned k = 0; rc == 0 && k < n; k++) {
			rc = cmp_where(&w, &tabs[i], lo, hi, k, n, e);
			if (rc == 0)
				rc = cmp_chunk(p, run_id, &tabs[i], k, w.data, e);
			chunks++;
		}
		if (rc)
			err_prefix(e, "checksum of `%s`.`%s` on the primary: ", tabs[i].schema,
				   tabs[i].name);
	}
	r->verify_tables = n_tabs;
	if (rc == 0)
		rc = read_binlog_pos(p, &pos, e);
	if (rc == 0) {
		str_copy(r->verify_gtid, sizeof(r->verify_gtid), pos);
		rc = wait_pos(t, pos, c, "replica applying the checksums", e);
	}
	if (rc == 0)
		rc = cmp_results(t, run_id, chunks, r, e);
	else if (rc != ERR_ABORTED)
		err_prefix(e, "comparing '%s' with the primary '%s': ", db_addr(t), c->primary_addr);
	if (rc == 0) {
		r->verified = true;
		log_info(MOD, "'%s' equals the primary at gtid '%s': %" PRIu64 " tables, %" PRIu64 " chunks",
			 db_addr(t), r->verify_gtid, r->verify_tables, r->verify_chunks);
	}
	/* The rows were only the means; the DELETE replicates too. */
	buf_reset(&q);
	if (buf_append_str(&q, "DELETE FROM `backupd`.`restore_checksums` WHERE run_id = ", NULL) == 0 &&
	    db_quote_string(p, &q, run_id, strlen(run_id), NULL) == 0) {
		struct err de;

		err_init(&de);
		if (db_exec_buf(p, &q, &de) != 0)
			log_warn(MOD, "unable to remove checksum rows of run '%s': %s", run_id, de.msg);
	}
	free(pos);
	buf_release(&w);
	buf_release(&q);
	cmp_tables_free(tabs, n_tabs);
	return rc;
}
