/* The restore engine: one snapshot into one server. Reads the manifest,
 * checks that the target may be written (not a primary, none of the
 * snapshot's databases there unless forced), creates databases and tables,
 * loads every data file on N worker connections with LOAD DATA LOCAL
 * INFILE fed from the repository through zstd (restore/infile.c: verified
 * as it streams; a failure drops the databases the restore created, so a
 * bad file leaves nothing behind), adds deferred secondary keys per table
 * as soon as its data is in, then routines, views (in rounds, for views
 * on views), triggers and events in the session they were created in;
 * optionally re-attaches the target as a replica and proves it equal to
 * the primary (replica.c).
 *
 * Threading: the calling thread owns the catalog, the manifest and the
 * control connection; each worker owns its connection, its storage handle
 * and its infile stream, and touches the shared context only under
 * x->lock or through atomics. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>

#include "log.h"
#include "mem.h"
#include "probe.h"
#include "restore_int.h"
#include "verify.h"

#define MOD "restore"
#define ER_NO_SUCH_TABLE 1146
#define ER_VIEW_INVALID 1356
#define ER_SP_DOES_NOT_EXIST 1305
/* The load's session: id 0 stays 0 in AUTO_INCREMENT columns, no silent
 * engine substitution, nothing strict that the source did not enforce
 * (the data is what it was; warnings are checked instead). */
#define RS_SQL_MODE "NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION"

/* Rows per LOAD DATA statement, in bytes of the stream: about 165k
 * sysbench rows. Measured (restore/README.md): 32 MiB statements cost the
 * server less CPU than 2, 8 or 16 MiB ones or whole 250k-row chunks. */
#define RS_STATEMENT_BYTES (32u * 1024u * 1024u)

/* One data file to load: plan table and its k-th file in chunk order. */
struct rs_job {
	size_t table, k;
};

/* Files of a table load in any order and on any worker; its checksum is
 * built once all are in. Guarded by rs_ctx.lock. */
struct rs_table_state {
	char (*cks)[CHECKSUM_HEX_MAX];       /* raw checksum per file, chunk order */
	size_t files_left;
	uint64_t rows;
};

struct rs_ctx {
	const struct restore_opts *o;
	struct catalog *cat;
	struct restore_result *res;
	const struct cfg_cluster *cl;        /* the snapshot's cluster, or NULL */
	char *cluster;                       /* its name */
	struct storage *st;
	struct manifest *m;
	struct restore_plan plan;
	char dir[2 * STORAGE_PATH_MAX + 2];  /* "<cluster>/<id>" */
	struct cfg_addr target;
	struct db_opts dop;                  /* for the target */
	bool log_bin_off;
	unsigned threads;
	/* re-attach */
	bool as_replica;
	const struct cfg_cluster *pcl;
	struct cfg_addr primary;
	/* state on the target */
	struct db *ctl;
	bool *db_created;                    /* per plan.dbs entry */
	bool *db_existed;
	bool trust_set;                      /* we switched log_bin_trust_function_creators on */
	int64_t job_id;
	bool own_job;
	/* workers */
	pthread_mutex_t lock;
	struct rs_job *jobs;
	size_t n_jobs, next_job;
	struct rs_table_state *tstate;       /* per plan table */
	pthread_cond_t worker_done;          /* signalled as each worker ends */
	struct err first_err;
	atomic_bool failed;
	atomic_int running;
	atomic_uint_fast64_t raw_done, rows_done, tables_done;
	double t0, phase_t0;
};

struct rs_worker {
	struct rs_ctx *x;
	unsigned no;
	pthread_t thread;
	bool started;
	struct db *db;
	struct storage *st;
	struct restore_infile in;
};

static double rs_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static bool rs_aborted(struct rs_ctx *x)
{
	return atomic_load(&x->failed) || (x->o->abort_flag && *x->o->abort_flag);
}

static void rs_fail(struct rs_ctx *x, const struct err *we)
{
	pthread_mutex_lock(&x->lock);
	if (!err_is_set(&x->first_err))
		x->first_err = *we;
	atomic_store(&x->failed, true);
	pthread_mutex_unlock(&x->lock);
}

static void rs_phase_begin(struct rs_ctx *x)
{
	x->phase_t0 = rs_mono();
}

static void rs_phase_end(struct rs_ctx *x, const char *name)
{
	struct restore_result *r = x->res;

	if (r->n_phases >= RESTORE_PHASES_MAX)
		return;
	str_copy(r->phases[r->n_phases].name, sizeof(r->phases[0].name), name);
	r->phases[r->n_phases].seconds = rs_mono() - x->phase_t0;
	log_info(MOD, "phase %s: %.2f s", name, r->phases[r->n_phases].seconds);
	r->n_phases++;
}

static bool rs_system_schema(const char *s)
{
	return strcasecmp(s, "mysql") == 0 || strcasecmp(s, "information_schema") == 0 ||
	       strcasecmp(s, "performance_schema") == 0 || strcasecmp(s, "sys") == 0;
}

static const char *rs_db_name(struct rs_ctx *x, size_t k)
{
	return x->m->databases[x->plan.dbs[k]].name;
}

/* ---- connections ---------------------------------------------------------- */

/* The load session: see RS_SQL_MODE. Closing the connection undoes it. */
static int rs_session(struct rs_ctx *x, struct db *d, struct err *e)
{
	int rc = 0;

	if (x->log_bin_off)
		rc = db_exec(d, "SET SESSION sql_log_bin = 0", e);
	if (rc == 0)
		rc = db_exec(d, "SET SESSION unique_checks = 0, SESSION foreign_key_checks = 0, "
			     "SESSION time_zone = '+00:00', SESSION sql_mode = '" RS_SQL_MODE "', "
			     "SESSION net_read_timeout = 3600, SESSION net_write_timeout = 3600, "
			     "SESSION wait_timeout = 86400", e);
	if (rc == 0 && db_flavor(d) == DB_FLAVOR_MARIADB)
		rc = db_exec(d, "SET SESSION max_statement_time = 0", e);
	return rc;
}

static int rs_connect(struct rs_ctx *x, bool local_infile, struct db **out,
		      struct err *e)
{
	struct db_opts o = x->dop;

	o.local_infile = local_infile;
	return db_connect(&o, out, e);
}

static int rs_worker_open(struct rs_ctx *x, struct rs_worker *w, struct err *e)
{
	struct storage_opts so;
	int rc = rs_connect(x, true, &w->db, e);

	if (rc == 0)
		rc = rs_session(x, w->db, e);
	storage_opts_init(&so);
	so.create_root = false;
	if (rc == 0)
		rc = storage_open(x->o->cfg->repository, &so, &w->st, e);
	if (rc == 0)
		restore_infile_attach(db_handle(w->db), &w->in);
	return rc;
}

/* ---- loading: one job per data file -------------------------------------- */

/* The first warning of the last statement, for the message. */
static void rs_first_warning(struct db *d, char *out, size_t n)
{
	MYSQL_RES *res = NULL;
	MYSQL_ROW row;
	struct err we;

	out[0] = '\0';
	err_init(&we);
	if (db_query_result(d, "SHOW WARNINGS LIMIT 1", false, &res, &we) == 0 &&
	    db_fetch_row(d, res, &row, NULL, &we) == 0 && row && row[2])
		snprintf(out, n, "%s %s: %s", row[0] ? row[0] : "", row[1] ? row[1] : "", row[2]);
	if (res) {
		mysql_free_result(res);
		db_finish(d, NULL);
	}
}

/* One data file, in statements of RS_STATEMENT_BYTES: every statement's
 * rows must all be stored, without a warning (a value the server changed
 * would be a silent difference). Statements autocommit: a restore that
 * fails drops the databases it created, so nothing of a bad file stays. */
static int rs_load_file(struct rs_worker *w, const struct manifest_table *t,
			size_t fi, struct buf *sql, struct err *e)
{
	struct rs_ctx *x = w->x;
	const struct manifest_file *mf = &x->m->files[fi];
	MYSQL *m = db_handle(w->db);
	char name[64], warn[400];
	int rc;

	snprintf(name, sizeof(name), "backupd-%zu", fi);
	buf_reset(sql);
	rc = restore_sql_load(sql, name, t, e);
	if (rc == 0)
		rc = restore_infile_open(&w->in, w->st, x->dir, mf, RS_STATEMENT_BYTES,
					 x->o->abort_flag, &x->raw_done, e);
	while (rc == 0) {
		my_ulonglong affected;
		unsigned warnings;

		restore_infile_next_statement(&w->in);
		if (mysql_real_query(m, sql->data, (unsigned long)sql->len) != 0) {
			if (err_is_set(&w->in.err)) {
				*e = w->in.err;
				rc = e->code;
			} else {
				rc = db_set_error(e, ERR_DB_QUERY, m, "loading file '%s' on '%s'",
						  mf->path, db_addr(w->db));
			}
			break;
		}
		affected = mysql_affected_rows(m);
		warnings = mysql_warning_count(m);
		if (affected != (my_ulonglong)w->in.stmt_rows || warnings) {
			rs_first_warning(w->db, warn, sizeof(warn));
			if (affected != (my_ulonglong)w->in.stmt_rows)
				rc = err_set(e, ERR_VERIFY,
					     "the server stored %llu of %" PRIu64 " rows sent from file '%s'%s%s",
					     (unsigned long long)affected, w->in.stmt_rows, mf->path,
					     warn[0] ? ": " : "", warn);
			else
				rc = err_set(e, ERR_VERIFY,
					     "the server changed values while loading file '%s' (%u warning%s): %s",
					     mf->path, warnings, warnings == 1 ? "" : "s", warn);
			break;
		}
		atomic_fetch_add(&x->rows_done, w->in.stmt_rows);
		if (w->in.done)
			break;
		if (w->in.stmt_rows == 0)
			rc = err_set(e, ERR_INTERNAL, "file '%s': a statement without rows before its end",
				     mf->path);
	}
	restore_infile_close(&w->in);
	return rc;
}

/* After the last file of a table: its checksum over the files' raw
 * checksums in chunk order (as the snapshot built it) and its rows. */
static int rs_table_done(struct rs_ctx *x, struct rs_table_state *ts,
			 const struct restore_plan_table *pt, struct err *e)
{
	const struct manifest_table *t = &x->m->tables[pt->mi];
	char sum[CHECKSUM_HEX_MAX];
	struct checksum tc;

	checksum_init(&tc);
	for (size_t k = 0; k < pt->n_files; k++)
		checksum_update(&tc, ts->cks[k], strlen(ts->cks[k]));
	checksum_final(&tc, sum);
	checksum_release(&tc);
	if (t->checksum && strcmp(sum, t->checksum) != 0)
		return err_set(e, ERR_VERIFY, "table `%s`.`%s`: checksum %s != manifest %s",
			       t->schema, t->name, sum, t->checksum);
	if (ts->rows != t->rows)
		return err_set(e, ERR_VERIFY, "table `%s`.`%s`: %" PRIu64 " rows != manifest %" PRIu64,
			       t->schema, t->name, ts->rows, t->rows);
	return 0;
}

static int rs_add_keys(struct db *d, const struct manifest_table *t,
		       const char *add_keys, struct err *e)
{
	struct buf b;
	int rc;

	buf_init(&b, 0);
	rc = buf_append_str(&b, "ALTER TABLE ", e);
	if (rc == 0)
		rc = db_quote_table(&b, t->schema, t->name, e);
	if (rc == 0)
		rc = buf_printf(&b, e, " %s", add_keys);
	if (rc == 0)
		rc = db_exec_buf(d, &b, e);
	if (rc)
		err_prefix(e, "adding the secondary keys: ");
	buf_release(&b);
	return rc;
}

static int rs_run_job(struct rs_worker *w, const struct rs_job *j, struct err *e)
{
	struct rs_ctx *x = w->x;
	const struct restore_plan_table *pt = &x->plan.tables[j->table];
	const struct manifest_table *t = &x->m->tables[pt->mi];
	struct rs_table_state *ts = &x->tstate[j->table];
	bool last = false;
	struct buf sql;
	int rc;

	buf_init(&sql, 0);
	rc = rs_load_file(w, t, pt->files[j->k], &sql, e);
	buf_release(&sql);
	if (rc == 0) {
		pthread_mutex_lock(&x->lock);
		str_copy(ts->cks[j->k], CHECKSUM_HEX_MAX, w->in.checksum_raw);
		ts->rows += w->in.rows;
		last = --ts->files_left == 0;
		pthread_mutex_unlock(&x->lock);
		/* The last file's worker is the only one touching it now. */
		if (last)
			rc = rs_table_done(x, ts, pt, e);
		/* Its deferred keys are built right away, while the other
		 * workers go on loading: the sorts overlap the loads. */
		if (last && rc == 0 && pt->add_keys)
			rc = rs_add_keys(w->db, t, pt->add_keys, e);
		if (last && rc == 0)
			atomic_fetch_add(&x->tables_done, 1);
	}
	if (rc && rc != ERR_ABORTED)
		err_prefix(e, "restoring `%s`.`%s`: ", t->schema, t->name);
	return rc;
}

static void *rs_worker_main(void *arg)
{
	struct rs_worker *w = arg;
	struct rs_ctx *x = w->x;
	char job[300];

	snprintf(job, sizeof(job), "restore/%s/w%u", x->o->snapshot_id, w->no);
	log_set_job(job);
	for (;;) {
		const struct rs_job *j = NULL;
		struct err e;

		pthread_mutex_lock(&x->lock);
		if (x->next_job < x->n_jobs && !rs_aborted(x))
			j = &x->jobs[x->next_job++];
		pthread_mutex_unlock(&x->lock);
		if (!j)
			break;
		err_init(&e);
		if (rs_run_job(w, j, &e) != 0) {
			rs_fail(x, &e);
			break;
		}
	}
	pthread_mutex_lock(&x->lock);
	atomic_fetch_sub(&x->running, 1);
	pthread_cond_signal(&x->worker_done);
	pthread_mutex_unlock(&x->lock);
	log_set_job(NULL);
	return NULL;
}

static int rs_job_order(const void *a, const void *b, void *u)
{
	const struct rs_job *x = a, *y = b;
	const struct restore_plan *p = u;

	/* First chunks of every table first, so the workers start on
	 * different tables; larger tables before smaller ones. */
	if (x->k != y->k)
		return x->k < y->k ? -1 : 1;
	if (p->tables[x->table].bytes_raw != p->tables[y->table].bytes_raw)
		return p->tables[x->table].bytes_raw > p->tables[y->table].bytes_raw ? -1 : 1;
	return (x->table > y->table) - (x->table < y->table);
}

/* One job per data file; tables without files are checked here. */
static int rs_plan_jobs(struct rs_ctx *x, struct err *e)
{
	x->tstate = xcalloc(x->plan.n_tables ? x->plan.n_tables : 1, sizeof(*x->tstate));
	x->jobs = xcalloc(x->plan.n_files ? x->plan.n_files : 1, sizeof(*x->jobs));
	for (size_t i = 0; i < x->plan.n_tables; i++) {
		const struct restore_plan_table *pt = &x->plan.tables[i];
		const struct manifest_table *t = &x->m->tables[pt->mi];

		x->tstate[i].files_left = pt->n_files;
		x->tstate[i].cks = xcalloc(pt->n_files ? pt->n_files : 1, CHECKSUM_HEX_MAX);
		if (pt->n_files == 0) {
			if (t->rows != 0)
				return err_set(e, ERR_VERIFY, "table `%s`.`%s`: no data files for %" PRIu64 " rows",
					       t->schema, t->name, t->rows);
			atomic_fetch_add(&x->tables_done, 1);
		}
		for (size_t k = 0; k < pt->n_files; k++) {
			x->jobs[x->n_jobs].table = i;
			x->jobs[x->n_jobs].k = k;
			x->n_jobs++;
		}
	}
	qsort_r(x->jobs, x->n_jobs, sizeof(*x->jobs), rs_job_order, &x->plan);
	return 0;
}

static void rs_progress(struct rs_ctx *x, bool final)
{
	double el = rs_mono() - x->phase_t0;
	uint64_t raw = atomic_load(&x->raw_done);
	uint64_t total = x->plan.bytes_raw;
	char eta[32] = "-";

	if (!x->o->progress)
		return;
	if (raw && total > raw && el > 0.5)
		snprintf(eta, sizeof(eta), "%.0fs", el * (double)(total - raw) / (double)raw);
	else if (final)
		str_copy(eta, sizeof(eta), "0s");
	fprintf(stderr, "\rrestore %s: tables %" PRIu64 "/%zu  rows %" PRIu64 "/%" PRIu64
		"  %.1f/%.1f MB  %.1f MB/s  ETA %s   %s",
		x->o->snapshot_id, (uint64_t)atomic_load(&x->tables_done), x->plan.n_tables,
		(uint64_t)atomic_load(&x->rows_done), x->plan.rows, raw / 1e6, total / 1e6,
		el > 0 ? raw / el / 1e6 : 0.0, eta, final ? "\n" : "");
	fflush(stderr);
}

static int rs_load(struct rs_ctx *x, struct rs_worker *ws, unsigned nw,
		   struct err *e)
{
	atomic_store(&x->running, (int)nw);
	for (unsigned i = 0; i < nw; i++) {
		if (pthread_create(&ws[i].thread, NULL, rs_worker_main, &ws[i]) != 0) {
			struct err te;

			atomic_fetch_sub(&x->running, 1);
			err_init(&te);
			err_set(&te, ERR_INTERNAL, "unable to start restore worker %u", i);
			rs_fail(x, &te);
			continue;
		}
		ws[i].started = true;
	}
	pthread_mutex_lock(&x->lock);
	while (atomic_load(&x->running) > 0) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 200 * 1000 * 1000;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		if (pthread_cond_timedwait(&x->worker_done, &x->lock, &ts) != 0 &&
		    atomic_load(&x->running) > 0) {
			pthread_mutex_unlock(&x->lock);
			rs_progress(x, false);
			pthread_mutex_lock(&x->lock);
		}
	}
	pthread_mutex_unlock(&x->lock);
	for (unsigned i = 0; i < nw; i++)
		if (ws[i].started) {
			pthread_join(ws[i].thread, NULL);
			ws[i].started = false;
		}
	if (!atomic_load(&x->failed) && x->o->abort_flag && *x->o->abort_flag) {
		struct err ae;

		err_init(&ae);
		err_set(&ae, ERR_ABORTED, "restore aborted by a signal");
		rs_fail(x, &ae);
	}
	rs_progress(x, true);
	if (atomic_load(&x->failed)) {
		pthread_mutex_lock(&x->lock);
		*e = x->first_err;
		pthread_mutex_unlock(&x->lock);
		if (!err_is_set(e))
			err_set(e, ERR_INTERNAL, "a restore worker failed");
		return e->code;
	}
	return 0;
}

/* ---- where the target stands ------------------------------------------- */

/* The current primary of cluster c: a cutover recorded in the catalog, else
 * the config's. */
static int rs_current_primary(struct catalog *cat, const struct cfg_cluster *c,
			      struct cfg_addr *out, struct err *e)
{
	char *addr = NULL;
	struct err ce;
	int rc = 0;

	*out = c->primary;
	if (!cat)
		return 0;
	err_init(&ce);
	if (catalog_get_primary(cat, c->name, &addr, &ce) != 0) {
		*e = ce;
		return ce.code;
	}
	if (addr)
		rc = cfg_addr_parse(addr, out, e);
	free(addr);
	return rc;
}

/* "SELECT @@server_id, @@hostname, @@port" as one string, to tell whether
 * two addresses reach the same server. */
static int rs_identity(struct db *d, char **out, struct err *e)
{
	bool found;

	return db_query_value(d, "SELECT CONCAT(@@GLOBAL.server_id, '/', @@GLOBAL.hostname, '/', @@GLOBAL.port)",
			      out, &found, e);
}

static int rs_check_not_primary(struct rs_ctx *x, struct err *e)
{
	const struct config *cfg = x->o->cfg;
	char tgt[300];
	int rc = 0;

	cfg_addr_format(&x->target, tgt, sizeof(tgt));
	for (size_t i = 0; i < cfg->n_clusters; i++) {
		const struct cfg_cluster *c = &cfg->clusters[i];
		struct cfg_addr cur;

		if ((rc = rs_current_primary(x->cat, c, &cur, e)))
			return rc;
		if (cfg_addr_equal(&cur, &x->target)) {
			if (x->o->force) {
				log_warn(MOD, "restoring into '%s', the current primary of cluster '%s' (--force)",
					 tgt, c->name);
				return 0;
			}
			return err_set(e, ERR_REFUSED,
				       "refusing to restore into '%s': it is the current primary of cluster '%s' (--force overrides)",
				       tgt, c->name);
		}
	}
	/* Another name for the same server (localhost vs 127.0.0.1): ask
	 * the snapshot cluster's primary who it is. Unreachable: nothing to
	 * compare with, and nothing to protect from this restore either. */
	if (x->cl && !x->o->force) {
		struct cfg_addr cur;
		struct db_opts po;
		struct db *p = NULL;
		char *a = NULL, *b = NULL;
		struct err pe;

		if ((rc = rs_current_primary(x->cat, x->cl, &cur, e)))
			return rc;
		err_init(&pe);
		probe_db_opts(x->cl, &cur, &po);
		po.connect_timeout_s = 3;
		if (db_connect(&po, &p, &pe) == 0 && rs_identity(p, &a, &pe) == 0 &&
		    rs_identity(x->ctl, &b, &pe) == 0 && a && b && strcmp(a, b) == 0) {
			char pa[300];

			cfg_addr_format(&cur, pa, sizeof(pa));
			rc = err_set(e, ERR_REFUSED,
				     "refusing to restore into '%s': it is the same server as '%s', the current primary of cluster '%s' (--force overrides)",
				     tgt, pa, x->cl->name);
		}
		free(a);
		free(b);
		db_close(p);
	}
	return rc;
}

/* Refuses a target that already holds the snapshot's databases (unless
 * force), and for a future replica any other database (RESET MASTER and
 * replication would make no sense of it). */
static int rs_check_databases(struct rs_ctx *x, struct err *e)
{
	MYSQL_RES *res = NULL;
	MYSQL_ROW row;
	struct buf clash, extra;
	char tgt[300];
	int rc;

	cfg_addr_format(&x->target, tgt, sizeof(tgt));
	buf_init(&clash, 4096);
	buf_init(&extra, 4096);
	rc = db_query_result(x->ctl, "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA ORDER BY SCHEMA_NAME",
			     false, &res, e);
	while (rc == 0 && (rc = db_fetch_row(x->ctl, res, &row, NULL, e)) == 0 && row) {
		bool mine = false;

		if (rs_system_schema(row[0]))
			continue;
		for (size_t k = 0; k < x->plan.n_dbs; k++)
			if (strcmp(rs_db_name(x, k), row[0]) == 0) {
				x->db_existed[k] = true;
				mine = true;
			}
		struct buf *b = mine ? &clash : &extra;
		if (b->len + strlen(row[0]) + 8 < b->max)
			buf_printf(b, NULL, "%s'%s'", b->len ? ", " : "", row[0]);
	}
	if (res) {
		mysql_free_result(res);
		db_finish(x->ctl, NULL);
	}
	if (rc == 0 && clash.len && !x->o->force)
		rc = err_set(e, ERR_REFUSED,
			     "refusing to restore into '%s': it already holds database%s %s of snapshot '%s' (--force drops and replaces them)",
			     tgt, strchr(clash.data, ',') ? "s" : "", clash.data, x->o->snapshot_id);
	else if (rc == 0 && x->as_replica && extra.len && !x->o->force)
		rc = err_set(e, ERR_REFUSED,
			     "refusing to make '%s' a replica: it holds database%s %s that are not in snapshot '%s' (--force keeps them and resets its binlog anyway)",
			     tgt, strchr(extra.data, ',') ? "s" : "", extra.data, x->o->snapshot_id);
	else if (rc == 0 && clash.len)
		log_warn(MOD, "'%s' holds %s: dropping and replacing them (--force)", tgt, clash.data);
	buf_release(&clash);
	buf_release(&extra);
	return rc;
}

/* ---- schema and objects --------------------------------------------------- */

static int rs_use(struct db *d, const char *schema, struct err *e)
{
	struct buf b;
	int rc;

	buf_init(&b, 0);
	rc = buf_append_str(&b, "USE ", e);
	if (rc == 0)
		rc = db_quote_ident(&b, schema, e);
	if (rc == 0)
		rc = db_exec(d, b.data, e);
	buf_release(&b);
	return rc;
}

static int rs_drop_database(struct db *d, const char *name, struct err *e)
{
	struct buf b;
	int rc;

	buf_init(&b, 0);
	rc = buf_append_str(&b, "DROP DATABASE IF EXISTS ", e);
	if (rc == 0)
		rc = db_quote_ident(&b, name, e);
	if (rc == 0)
		rc = db_exec(d, b.data, e);
	buf_release(&b);
	return rc;
}

static int rs_schema(struct rs_ctx *x, struct err *e)
{
	const struct manifest *m = x->m;
	int rc = 0;

	for (size_t k = 0; rc == 0 && k < x->plan.n_dbs; k++) {
		const struct manifest_database *d = &m->databases[x->plan.dbs[k]];

		if (x->db_existed[k])
			rc = rs_drop_database(x->ctl, d->name, e);
		if (rc == 0)
			rc = db_exec(x->ctl, d->create_sql, e);
		if (rc == 0)
			x->db_created[k] = true;
		else
			err_prefix(e, "creating database '%s': ", d->name);
	}
	for (size_t i = 0; rc == 0 && i < x->plan.n_tables; i++) {
		const struct restore_plan_table *pt = &x->plan.tables[i];
		const struct manifest_table *t = &m->tables[pt->mi];

		rc = rs_use(x->ctl, t->schema, e);
		if (rc == 0)
			rc = db_exec(x->ctl, pt->create_sql ? pt->create_sql : t->create_sql, e);
		if (rc)
			err_prefix(e, "creating table `%s`.`%s`: ", t->schema, t->name);
	}
	return rc;
}

/* Replays a stored program in the session it was created in. */
static int rs_program(struct rs_ctx *x, const char *kind, const char *schema,
		      const char *name, const char *create_sql,
		      const struct manifest_sql_env *env, const char *time_zone,
		      struct err *e)
{
	struct buf b;
	bool warn = false;
	int rc;

	buf_init(&b, 0);
	rc = rs_use(x->ctl, schema, e);
	if (rc == 0)
		rc = restore_sql_object_env(&b, env, time_zone, create_sql,
					    db_no_backslash_escapes(x->ctl), &warn, e);
	if (rc == 0)
		rc = db_exec_buf(x->ctl, &b, e);
	if (rc == 0 && warn)
		log_warn(MOD, "%s `%s`.`%s` was created with character_set_client '%s'; replayed as utf8mb4",
			 kind, schema, name, env->character_set_client);
	if (rc == 0)
		rc = db_exec(x->ctl, create_sql, e);
	if (rc)
		err_prefix(e, "creating %s `%s`.`%s`: ", kind, schema, name);
	buf_release(&b);
	return rc;
}

static int rs_views(struct rs_ctx *x, struct err *e)
{
	size_t n = x->plan.n_views;
	size_t *pending = xcalloc(n ? n : 1, sizeof(size_t));
	struct err last;
	int rc = 0;

	if (n)
		memcpy(pending, x->plan.views, n * sizeof(size_t));
	err_init(&last);
	/* A view on a view fails until the inner one exists: retry in rounds
	 * while each round makes progress. */
	while (rc == 0 && n > 0) {
		size_t left = 0;

		for (size_t i = 0; rc == 0 && i < n; i++) {
			const struct manifest_view *v = &x->m->views[pending[i]];
			struct err ve;

			err_init(&ve);
			rc = rs_use(x->ctl, v->schema, e);
			if (rc)
				break;
			if (db_exec(x->ctl, v->create_sql, &ve) == 0)
				continue;
			if (ve.db_errno != ER_NO_SUCH_TABLE && ve.db_errno != ER_VIEW_INVALID &&
			    ve.db_errno != ER_SP_DOES_NOT_EXIST) {
				*e = ve;
				rc = ve.code;
				err_prefix(e, "creating view `%s`.`%s`: ", v->schema, v->name);
				break;
			}
			last = ve;
			err_prefix(&last, "creating view `%s`.`%s`: ", v->schema, v->name);
			pending[left++] = pending[i];
		}
		if (rc == 0 && left == n) {
			*e = last;
			rc = last.code ? last.code : ERR_DB_QUERY;
		}
		n = left;
	}
	free(pending);
	return rc;
}

static int rs_trust_functions(struct rs_ctx *x, struct err *e)
{
	unsigned long long trust = 1, log_bin = 0;
	int rc;

	if (x->plan.n_triggers + x->plan.n_routines == 0)
		return 0;
	rc = db_query_ulong(x->ctl, "SELECT @@GLOBAL.log_bin_trust_function_creators", &trust, e);
	if (rc == 0)
		rc = db_query_ulong(x->ctl, "SELECT @@GLOBAL.log_bin", &log_bin, e);
	if (rc || trust || !log_bin)
		return rc;
	/* Without SUPER, CREATE TRIGGER/FUNCTION on a binlogging server needs
	 * this, even with sql_log_bin=0 (sql/mysql/README.md). */
	rc = db_exec(x->ctl, "SET GLOBAL log_bin_trust_function_creators = 1", e);
	if (rc == 0) {
		x->trust_set = true;
		log_info(MOD, "log_bin_trust_function_creators switched on for the restore");
	}
	return rc;
}

static void rs_trust_restore(struct rs_ctx *x)
{
	struct err te;
	struct db *d = x->ctl;
	bool own = false;

	if (!x->trust_set)
		return;
	err_init(&te);
	if (!d && rs_connect(x, false, &d, &te) == 0)
		own = true;
	if (d && db_exec(d, "SET GLOBAL log_bin_trust_function_creators = 0", &te) == 0)
		x->trust_set = false;
	else
		log_error(MOD, "unable to switch log_bin_trust_function_creators off again on '%s': %s",
			  x->res->target, te.msg);
	if (own)
		db_close(d);
}

static int rs_disable_on_replica(struct rs_ctx *x, const struct manifest_event *ev,
				 struct err *e)
{
	struct buf q;
	char *status = NULL;
	bool found = false;
	int rc;

	if (!x->as_replica || db_flavor(x->ctl) != DB_FLAVOR_MARIADB)
		return 0;
	buf_init(&q, 0);
	rc = buf_append_str(&q, "SELECT STATUS FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ", e);
	if (rc == 0)
		rc = db_quote_string(x->ctl, &q, ev->schema, strlen(ev->schema), e);
	if (rc == 0)
		rc = buf_append_str(&q, " AND EVENT_NAME = ", e);
	if (rc == 0)
		rc = db_quote_string(x->ctl, &q, ev->name, strlen(ev->name), e);
	if (rc == 0)
		rc = db_query_value(x->ctl, q.data, &status, &found, e);
	/* An event that runs on a replica writes errant transactions. */
	if (rc == 0 && status && strcmp(status, "ENABLED") == 0) {
		buf_reset(&q);
		rc = buf_append_str(&q, "ALTER EVENT ", e);
		if (rc == 0)
			rc = db_quote_table(&q, ev->schema, ev->name, e);
		if (rc == 0)
			rc = buf_append_str(&q, " DISABLE ON SLAVE", e);
		if (rc == 0)
			rc = db_exec(x->ctl, q.data, e);
	}
	free(status);
	buf_release(&q);
	return rc;
}

static int rs_users(struct rs_ctx *x, struct err *e)
{
	int rc = 0;

	for (size_t i = 0; rc == 0 && i < x->m->n_users; i++) {
		const struct manifest_user *u = &x->m->users[i];
		unsigned long long n = 0;
		struct buf q;

		buf_init(&q, 0);
		rc = buf_append_str(&q, "SELECT COUNT(*) FROM mysql.user WHERE User = ", e);
		if (rc == 0)
			rc = db_quote_string(x->ctl, &q, u->user, strlen(u->user), e);
		if (rc == 0)
			rc = buf_append_str(&q, " AND Host = ", e);
		if (rc == 0)
			rc = db_quote_string(x->ctl, &q, u->host, strlen(u->host), e);
		if (rc == 0)
			rc = db_query_ulong(x->ctl, q.data, &n, e);
		if (rc == 0 && n) {
			log_warn(MOD, "account '%s'@'%s' exists on '%s': left as it is",
				 u->user, u->host, x->res->target);
		} else if (rc == 0) {
			/* create_sql may hold a password hash: the secret
			 * form keeps it out of any message. */
			buf_reset(&q);
			rc = buf_append_str(&q, u->create_sql, e);
			if (rc == 0)
				rc = db_exec_secret(x->ctl, &q, NULL, e);
			for (size_t g = 0; rc == 0 && g < u->n_grants; g++) {
				buf_reset(&q);
				rc = buf_append_str(&q, u->grants[g], e);
				if (rc == 0)
					rc = db_exec_secret(x->ctl, &q, NULL, e);
			}
			if (rc)
				err_prefix(e, "creating account '%s'@'%s': ", u->user, u->host);
			else
				x->res->n_users++;
		}
		buf_release(&q);
	}
	return rc;
}

static int rs_objects(struct rs_ctx *x, struct err *e)
{
	const struct manifest *m = x->m;
	int rc = rs_trust_functions(x, e);

	/* Routines first: views may call functions; triggers after the data
	 * or they would have fired during the load. */
	for (size_t i = 0; rc == 0 && i < x->plan.n_routines; i++) {
		const struct manifest_routine *r = &m->routines[x->plan.routines[i]];

		rc = rs_program(x, strcasecmp(r->type, "FUNCTION") == 0 ? "function" : "procedure",
				r->schema, r->name, r->create_sql, &r->env, NULL, e);
	}
	if (rc == 0)
		rc = rs_session(x, x->ctl, e);
	if (rc == 0)
		rc = rs_views(x, e);
	for (size_t i = 0; rc == 0 && i < x->plan.n_triggers; i++) {
		const struct manifest_trigger *t = &m->triggers[x->plan.triggers[i]];

		rc = rs_program(x, "trigger", t->schema, t->name, t->create_sql, &t->env, NULL, e);
	}
	for (size_t i = 0; rc == 0 && i < x->plan.n_events; i++) {
		const struct manifest_event *ev = &m->events[x->plan.events[i]];

		rc = rs_program(x, "event", ev->schema, ev->name, ev->create_sql, &ev->env,
				ev->time_zone, e);
		if (rc == 0)
			rc = rs_disable_on_replica(x, ev, e);
	}
	if (rc == 0)
		rc = rs_session(x, x->ctl, e);
	if (rc == 0 && x->o->users)
		rc = rs_users(x, e);
	if (rc == 0) {
		x->res->n_views = (unsigned)x->plan.n_views;
		x->res->n_triggers = (unsigned)x->plan.n_triggers;
		x->res->n_routines = (unsigned)x->plan.n_routines;
		x->res->n_events = (unsigned)x->plan.n_events;
	}
	return rc;
}

/* Drops what this restore created, so a failed restore leaves no half
 * loaded copy of the snapshot behind. */
static void rs_undo(struct rs_ctx *x)
{
	struct db *d = x->ctl;
	bool own = false, any = false;
	struct err ue;

	for (size_t k = 0; k < x->plan.n_dbs; k++)
		any = any || x->db_created[k];
	if (!any)
		return;
	err_init(&ue);
	if (!d || db_ping(d, &ue) != 0) {
		err_init(&ue);
		d = NULL;
		if (rs_connect(x, false, &d, &ue) == 0 && rs_session(x, d, &ue) == 0)
			own = true;
		else {
			log_error(MOD, "unable to drop the databases this restore created on '%s': %s",
				  x->res->target, ue.msg);
			db_close(d);
			return;
		}
	}
	for (size_t k = 0; k < x->plan.n_dbs; k++) {
		if (!x->db_created[k])
			continue;
		err_init(&ue);
		if (rs_drop_database(d, rs_db_name(x, k), &ue) == 0) {
			x->db_created[k] = false;
			log_info(MOD, "dropped database '%s' on '%s' after the failed restore",
				 rs_db_name(x, k), x->res->target);
		} else {
			log_error(MOD, "unable to drop database '%s' on '%s': %s",
				  rs_db_name(x, k), x->res->target, ue.msg);
		}
	}
	if (own)
		db_close(d);
}

/* ---- re-attach and proof --------------------------------------------------- */

static int rs_resolve_primary(struct rs_ctx *x, struct err *e)
{
	const struct config *cfg = x->o->cfg;
	const char *s = x->o->as_replica_of;
	const struct cfg_cluster *c = config_find_cluster(cfg, s);
	struct cfg_addr want;
	int rc;

	if (c) {
		if ((rc = rs_current_primary(x->cat, c, &x->primary, e)))
			return rc;
	} else {
		struct err pe;

		err_init(&pe);
		if (cfg_addr_parse(s, &want, &pe) != 0)
			return err_set(e, ERR_NOT_FOUND,
				       "'%s' (--as-replica-of) is neither a cluster of config '%s' nor a host:port",
				       s, cfg->path);
		for (size_t i = 0; !c && i < cfg->n_clusters; i++) {
			struct cfg_addr cur;

			if ((rc = rs_current_primary(x->cat, &cfg->clusters[i], &cur, e)))
				return rc;
			if (cfg_addr_equal(&cur, &want)) {
				c = &cfg->clusters[i];
				x->primary = cur;
			}
		}
		if (!c)
			return err_set(e, ERR_NOT_FOUND,
				       "'%s' (--as-replica-of) is not the current primary of any cluster in config '%s'",
				       s, cfg->path);
	}
	if (strcmp(c->name, x->cluster) != 0)
		return err_set(e, ERR_USAGE,
			       "snapshot '%s' belongs to cluster '%s': it cannot start a replica of cluster '%s'",
			       x->o->snapshot_id, x->cluster, c->name);
	x->pcl = c;
	cfg_addr_format(&x->primary, x->res->primary, sizeof(x->res->primary));
	return 0;
}

/* Fault injection for tests (as the snapshot engine has): a statement run
 * on the new replica, out of its binlog, right before the proof, so a test
 * can show that the proof notices a difference. Unset in production. */
static int rs_fault_tamper(struct db *t, struct err *e)
{
	const char *sql = getenv("BACKUPD_FAULT_BEFORE_PROOF_SQL");
	int rc;

	if (!sql || !*sql)
		return 0;
	log_warn(MOD, "fault injection: changing '%s' before the proof", db_addr(t));
	rc = db_exec(t, "SET SESSION sql_log_bin = 0", e);
	if (rc == 0)
		rc = db_exec(t, sql, e);
	if (rc == 0)
		rc = db_exec(t, "SET SESSION sql_log_bin = 1", e);
	return rc;
}

static int rs_replica(struct rs_ctx *x, struct err *e)
{
	struct restore_replica_ctx rc_ctx;
	struct db_opts po;
	struct db *t = NULL, *p = NULL;
	char **dbs;
	int rc;

	dbs = xcalloc(x->m->n_databases ? x->m->n_databases : 1, sizeof(char *));
	for (size_t i = 0; i < x->m->n_databases; i++)
		dbs[i] = x->m->databases[i].name;
	memset(&rc_ctx, 0, sizeof(rc_ctx));
	rc_ctx.cl = x->pcl;
	rc_ctx.primary = &x->primary;
	rc_ctx.primary_addr = x->res->primary;
	rc_ctx.gtid = x->m->position.gtid;
	rc_ctx.timeout_s = x->o->catchup_timeout_s ? x->o->catchup_timeout_s
						   : RESTORE_CATCHUP_TIMEOUT_S_DEFAULT;
	rc_ctx.abort_flag = x->o->abort_flag;
	rc_ctx.progress = x->o->progress;
	rc_ctx.databases = dbs;
	rc_ctx.n_databases = x->m->n_databases;
	x->res->replica = true;

	rs_phase_begin(x);
	rc = rs_connect(x, false, &t, e);
	if (rc == 0)
		rc = restore_reattach(t, &rc_ctx, e);
	rs_phase_end(x, "reattach");
	if (rc == 0) {
		probe_db_opts(x->pcl, &x->primary, &po);
		rc = db_connect(&po, &p, e);
		if (rc)
			err_prefix(e, "connecting to the primary: ");
	}
	if (rc == 0) {
		rs_phase_begin(x);
		rc = restore_wait_caught_up(t, p, &rc_ctx, &x->res->catchup_s, NULL, 0, e);
		rs_phase_end(x, "catchup");
		log_info(MOD, "'%s' caught up with '%s' in %.2f s", x->res->target,
			 x->res->primary, x->res->catchup_s);
	}
	if (rc == 0 && x->o->verify_replica) {
		rs_phase_begin(x);
		rc = rs_fault_tamper(t, e);
		if (rc == 0)
			rc = restore_compare_with_primary(t, p, &rc_ctx, x->res, e);
		rs_phase_end(x, "consistency");
		/* Data that differs must not keep replicating as if it did not. */
		if (rc == ERR_VERIFY) {
			struct err se;

			err_init(&se);
			db_exec(t, db_sql(t, DIALECT_STOP_REPLICA), &se);
			err_prefix(e, "replication stopped: ");
		}
	}
	db_close(p);
	db_close(t);
	free(dbs);
	return rc;
}

/* ---- catalog ------------------------------------------------------------------ */

static int rs_cat_bind_text(sqlite3_stmt *st, int i, const char *s)
{
	return s ? sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT) : sqlite3_bind_null(st, i);
}

static int rs_cat_start(struct rs_ctx *x, struct err *e)
{
	sqlite3 *db = catalog_sqlite(x->cat);
	sqlite3_stmt *st = NULL;
	int rc;

	if (x->o->job_id > 0) {
		x->job_id = x->o->job_id;
	} else {
		rc = catalog_job_reap(x->cat, NULL, e);
		if (rc == 0)
			rc = catalog_job_start_ex(x->cat, "restore",
					  x->res->cluster[0] ? x->res->cluster : NULL,
						  x->o->trigger ? x->o->trigger : "manual",
						  NULL, x->res->target, &x->job_id, e);
		if (rc)
			return rc;
		x->own_job = true;
	}
	if (sqlite3_prepare_v2(db,
			       "INSERT INTO restores (job_id, cluster, snapshot_id, target, as_replica_of, "
			       "forced, started_at) VALUES (?, ?, ?, ?, ?, ?, ?)", -1, &st, NULL) != SQLITE_OK)
		return catalog_error(x->cat, "unable to record the restore", e);
	sqlite3_bind_int64(st, 1, x->job_id);
	rs_cat_bind_text(st, 2, x->res->cluster[0] ? x->res->cluster : NULL);
	rs_cat_bind_text(st, 3, x->o->snapshot_id);
	rs_cat_bind_text(st, 4, x->res->target);
	rs_cat_bind_text(st, 5, x->o->as_replica_of && *x->o->as_replica_of ? x->o->as_replica_of : NULL);
	sqlite3_bind_int(st, 6, x->o->force ? 1 : 0);
	sqlite3_bind_double(st, 7, catalog_now());
	rc = sqlite3_step(st) == SQLITE_DONE ? 0 : catalog_error(x->cat, "unable to record the restore", e);
	sqlite3_finalize(st);
	if (rc == 0)
		x->res->restore_id = sqlite3_last_insert_rowid(db);
	return rc;
}

static char *rs_phases_json(const struct restore_result *r)
{
	json_t *a = json_array();
	char *s;

	for (size_t i = 0; i < r->n_phases; i++)
		json_array_append_new(a, json_pack("{s:s, s:f}", "name", r->phases[i].name,
						   "seconds", r->phases[i].seconds));
	s = json_dumps(a, JSON_COMPACT);
	json_decref(a);
	return s ? s : xstrdup("[]");
}

static void rs_cat_finish(struct rs_ctx *x, int result_rc, const struct err *re)
{
	sqlite3 *db = catalog_sqlite(x->cat);
	sqlite3_stmt *st = NULL;
	const struct restore_result *r = x->res;
	const char *result = result_rc == 0 ? "ok" : result_rc == ERR_ABORTED ? "aborted" : "failed";
	char *phases = rs_phases_json(r);
	json_t *p = json_object();
	char *payload;
	struct err ce;

	err_init(&ce);
	json_object_set_new(p, "snapshot", json_string(r->snapshot_id));
	json_object_set_new(p, "target", json_string(r->target));
	json_object_set_new(p, "seconds", json_real(r->seconds));
	json_object_set_new(p, "tables", json_integer(r->n_tables));
	json_object_set_new(p, "rows", json_integer((json_int_t)r->rows));
	json_object_set_new(p, "bytes", json_integer((json_int_t)r->bytes_raw));
	if (r->replica) {
		json_object_set_new(p, "as_replica_of", json_string(r->primary));
		json_object_set_new(p, "catchup_s", json_real(r->catchup_s));
		json_object_set_new(p, "verified", json_boolean(r->verified));
	}
	if (result_rc) {
		json_object_set_new(p, "error", json_string(re->msg));
		json_object_set_new(p, "error_code", json_string(err_code_name(re->code)));
	}
	payload = json_dumps(p, JSON_COMPACT);
	json_decref(p);

	if (r->restore_id > 0) {
		if (sqlite3_prepare_v2(db,
				       "UPDATE restores SET finished_at = ?, bytes = ?, n_tables = ?, n_rows = ?, "
				       "phases = ?, result = ?, error_code = ?, error_message = ?, "
				       "cluster = IFNULL(?, cluster), as_replica_of = IFNULL(?, as_replica_of) WHERE id = ?",
				       -1, &st, NULL) != SQLITE_OK) {
			catalog_error(x->cat, "unable to record the end of the restore", &ce);
		} else {
			sqlite3_bind_double(st, 1, catalog_now());
			sqlite3_bind_int64(st, 2, (sqlite3_int64)r->bytes_raw);
			sqlite3_bind_int64(st, 3, r->n_tables);
			sqlite3_bind_int64(st, 4, (sqlite3_int64)r->rows);
			rs_cat_bind_text(st, 5, phases);
			rs_cat_bind_text(st, 6, result);
			if (result_rc) {
				sqlite3_bind_int(st, 7, re->code);
				rs_cat_bind_text(st, 8, re->msg);
			} else {
				sqlite3_bind_null(st, 7);
				sqlite3_bind_null(st, 8);
			}
			rs_cat_bind_text(st, 9, r->cluster[0] ? r->cluster : NULL);
			rs_cat_bind_text(st, 10, r->replica ? r->primary : NULL);
			sqlite3_bind_int64(st, 11, r->restore_id);
			if (sqlite3_step(st) != SQLITE_DONE)
				catalog_error(x->cat, "unable to record the end of the restore", &ce);
			sqlite3_finalize(st);
		}
	}
	if (!err_is_set(&ce) && payload)
		catalog_event_add(x->cat, r->cluster[0] ? r->cluster : NULL, r->target,
				  result_rc == 0 ? "restore.done" : "restore.failed",
				  result_rc == 0 ? "info" : "error", payload, NULL, &ce);
	if (x->own_job && !err_is_set(&ce))
		catalog_job_finish(x->cat, x->job_id, result, result_rc ? re : NULL, &ce);
	if (err_is_set(&ce))
		log_error(MOD, "unable to record the restore in the catalog: %s", ce.msg);
	free(payload);
	free(phases);
}

/* ---- the run --------------------------------------------------------------- */

/* What the catalog record needs: a valid id and target. */
static int rs_parse(struct rs_ctx *x, struct err *e)
{
	const struct restore_opts *o = x->o;
	int rc;

	if (!o->snapshot_id || !o->target)
		return err_set(e, ERR_USAGE, "a snapshot id and a target are needed");
	if ((rc = snapshot_id_check(o->snapshot_id, e)))
		return rc;
	str_copy(x->res->snapshot_id, sizeof(x->res->snapshot_id), o->snapshot_id);
	if ((rc = cfg_addr_parse(o->target, &x->target, e))) {
		err_prefix(e, "--target: ");
		return rc;
	}
	cfg_addr_format(&x->target, x->res->target, sizeof(x->res->target));
	if (o->cluster)
		str_copy(x->res->cluster, sizeof(x->res->cluster), o->cluster->name);
	return 0;
}

static int rs_prepare(struct rs_ctx *x, struct err *e)
{
	const struct restore_opts *o = x->o;
	struct storage_opts so;
	char *found = NULL;
	int rc;

	storage_opts_init(&so);
	so.create_root = false;
	rc = storage_open(o->cfg->repository, &so, &x->st, e);
	if (rc)
		return rc;
	if (o->cluster) {
		x->cl = o->cluster;
		x->cluster = xstrdup(o->cluster->name);
	} else {
		rc = snapshot_find_cluster(o->cfg, x->cat, x->st, o->snapshot_id, &found, e);
		if (rc)
			return rc;
		x->cluster = found;
		x->cl = config_find_cluster(o->cfg, found);
	}
	str_copy(x->res->cluster, sizeof(x->res->cluster), x->cluster);
	if (snprintf(x->dir, sizeof(x->dir), "%s/%s", x->cluster, o->snapshot_id) >=
	    (int)sizeof(x->dir))
		return err_set(e, ERR_USAGE, "snapshot path is too long");
	rc = snapshot_manifest_load(x->st, x->cluster, o->snapshot_id, &x->m, NULL, NULL, e);
	if (rc)
		return rc;
	str_copy(x->res->gtid, sizeof(x->res->gtid),
		 x->m->position.gtid ? x->m->position.gtid : "");
	rc = restore_plan_build(x->m, o->databases, o->n_databases, o->tables, o->n_tables,
				!o->keep_indexes, &x->plan, e);
	if (rc)
		return rc;
	x->db_created = xcalloc(x->plan.n_dbs ? x->plan.n_dbs : 1, sizeof(bool));
	x->db_existed = xcalloc(x->plan.n_dbs ? x->plan.n_dbs : 1, sizeof(bool));
	for (size_t i = 0; i < x->plan.n_tables; i++)
		if (x->plan.tables[i].add_keys)
			x->res->indexes_deferred = true;

	x->as_replica = o->as_replica_of && *o->as_replica_of;
	if (x->as_replica) {
		if (x->plan.filtered)
			return err_set(e, ERR_USAGE,
				       "--as-replica-of needs the whole snapshot: a replica missing tables breaks on the first change to them");
		if (!x->m->position.gtid || !*x->m->position.gtid)
			return err_set(e, ERR_REPLICATION,
				       "snapshot '%s' has no GTID position: it cannot start a replica",
				       o->snapshot_id);
		if ((rc = rs_resolve_primary(x, e)))
			return rc;
	}
	x->log_bin_off = x->as_replica || o->no_binlog;

	/* Credentials: --user/--password-file, else the cluster's. */
	if (x->cl)
		probe_db_opts(x->cl, &x->target, &x->dop);
	else {
		memset(&x->dop, 0, sizeof(x->dop));
		x->dop.host = x->target.host;
		x->dop.port = x->target.port;
	}
	if (o->user) {
		x->dop.user = o->user;
		x->dop.password = o->password;
	} else if (!x->cl) {
		return err_set(e, ERR_USAGE,
			       "cluster '%s' of snapshot '%s' is not in config '%s': give --user and --password-file for the target",
			       x->cluster, o->snapshot_id, o->cfg->path);
	}
	x->threads = (unsigned)(o->threads > 0 ? o->threads : o->cfg->threads > 0 ? o->cfg->threads : 1);
	if (x->threads > x->plan.n_files && x->plan.n_files > 0)
		x->threads = (unsigned)x->plan.n_files;
	if (x->threads == 0)
		x->threads = 1;
	x->res->n_databases = (unsigned)x->plan.n_dbs;
	x->res->n_tables = (unsigned)x->plan.n_tables;
	x->res->n_files = (unsigned)x->plan.n_files;
	return 0;
}

int restore_run(struct catalog *cat, const struct restore_opts *o,
		struct restore_result *res, struct err *e)
{
	struct rs_ctx x;
	struct rs_worker *ws = NULL;
	bool recorded = false;
	int rc;

	memset(res, 0, sizeof(*res));
	memset(&x, 0, sizeof(x));
	x.o = o;
	x.cat = cat;
	x.res = res;
	x.t0 = rs_mono();
	pthread_mutex_init(&x.lock, NULL);
	pthread_cond_init(&x.worker_done, NULL);
	err_init(&x.first_err);

	/* Every attempt goes on record once it names a snapshot and a
	 * target: refusals and unknown ids too. */
	rc = rs_parse(&x, e);
	if (rc == 0 && cat) {
		rc = rs_cat_start(&x, e);
		recorded = rc == 0;
	}
	if (rc == 0)
		rc = rs_prepare(&x, e);
	if (rc == 0) {
		rc = rs_connect(&x, false, &x.ctl, e);
		if (rc)
			err_prefix(e, "restore target: ");
	}
	if (rc == 0)
		rc = rs_check_not_primary(&x, e);
	if (rc == 0)
		rc = rs_check_databases(&x, e);
	if (rc == 0) {
		log_set_job(o->snapshot_id);
		log_info(MOD, "restoring snapshot '%s' of cluster '%s' into '%s': %zu tables, %zu files, %.1f MB, %u threads%s",
			 o->snapshot_id, x.cluster, res->target, x.plan.n_tables, x.plan.n_files,
			 x.plan.bytes_raw / 1e6, x.threads,
			 x.as_replica ? ", then a replica" : "");
		ws = xcalloc(x.threads, sizeof(*ws));
		for (unsigned i = 0; rc == 0 && i < x.threads; i++) {
			ws[i].x = &x;
			ws[i].no = i;
			rc = rs_worker_open(&x, &ws[i], e);
		}
	}
	/* A replica being rebuilt must not apply anything while its
	 * databases are replaced under it. */
	if (rc == 0 && x.as_replica)
		rc = db_exec(x.ctl, db_sql(x.ctl, DIALECT_STOP_REPLICA), e);
	if (rc == 0)
		rc = rs_session(&x, x.ctl, e);
	if (rc == 0) {
		rs_phase_begin(&x);
		rc = rs_schema(&x, e);
		rs_phase_end(&x, "schema");
	}
	if (rc == 0) {
		rs_phase_begin(&x);
		rc = rs_plan_jobs(&x, e);
		if (rc == 0)
			rc = rs_load(&x, ws, x.threads, e);
		rs_phase_end(&x, "load");
		res->bytes_raw = atomic_load(&x.raw_done);
		res->rows = atomic_load(&x.rows_done);
		res->bytes_stored = rc == 0 ? x.plan.bytes_stored : 0;
	}
	if (ws) {
		for (unsigned i = 0; i < x.threads; i++) {
			restore_infile_release(&ws[i].in);
			db_close(ws[i].db);
			storage_close(ws[i].st);
		}
		free(ws);
		ws = NULL;
	}
	if (rc == 0) {
		rs_phase_begin(&x);
		rc = rs_objects(&x, e);
		rs_phase_end(&x, "objects");
	}
	rs_trust_restore(&x);
	if (rc)
		rs_undo(&x);
	db_close(x.ctl);
	x.ctl = NULL;
	if (rc == 0) {
		log_info(MOD, "snapshot '%s' restored into '%s': %u tables, %" PRIu64 " rows, %.1f MB in %.2f s",
			 o->snapshot_id, res->target, res->n_tables, res->rows,
			 res->bytes_raw / 1e6, rs_mono() - x.t0);
		if (x.as_replica)
			rc = rs_replica(&x, e);
	}
	res->seconds = rs_mono() - x.t0;
	if (recorded)
		rs_cat_finish(&x, rc, e);
	log_set_job(NULL);
	for (size_t i = 0; x.tstate && i < x.plan.n_tables; i++)
		free(x.tstate[i].cks);
	free(x.tstate);
	free(x.jobs);
	restore_plan_release(&x.plan);
	manifest_free(x.m);
	storage_close(x.st);
	free(x.cluster);
	free(x.db_created);
	free(x.db_existed);
	pthread_cond_destroy(&x.worker_done);
	pthread_mutex_destroy(&x.lock);
	return rc;
}
