/* Blue/green cutover engine (see cutover.h): preflight guardrails, the
 * write-pause sequence, automatic rollback before the traffic switch, the
 * reverse replication and topology record after it; and canary weights.
 *
 * Threading: one cutover per call, on the caller's thread, with its own two
 * database connections and the caller's catalog connection. Nothing is
 * written to the catalog while writes are paused: the steps are timed in
 * memory and flushed right after the switch (or the rollback). */
#include "cutover.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "db.h"
#include "haproxy.h"
#include "log.h"
#include "mem.h"
#include "probe.h"

extern char **environ;

#define MOD "cutover"
#define GTID_MAX (64u * 1024u)          /* bytes of a GTID position we read */
#define GTID_ENTRIES_MAX 4096
#define HOOK_OUTPUT_KEEP 2000           /* bytes of hook output kept for errors */
#define ROLLBACK_RESERVE_MAX_S 2.0      /* of the timeout kept for a rollback */
#define REATTACH_WAIT_S 5.0             /* blue's threads must start within */
/* MASTER_CONNECT_RETRY of the replicas cutover attaches: a replica of a
 * writer that restarts should be back within about a second. */
#define CONNECT_RETRY_S 1

/* ------------------------------------------------------------------ time */

static double mono_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* ------------------------------------------------------------------ state */

struct cx {
	const struct config *cfg;
	const struct cfg_cluster *cl;
	struct catalog *cat;
	const struct cutover_opts *o;
	struct cutover_report *rep;
	double timeout_s, max_lag_s, max_trx_s, trx_wait_s, max_snap_h;
	struct cfg_addr blue, green;
	struct db *bdb, *gdb;
	bool use_haproxy, use_hook;
	char be[HAPROXY_NAME_MAX], blue_srv[HAPROXY_NAME_MAX],
	     green_srv[HAPROXY_NAME_MAX];
	int64_t job_id;
	size_t n_flushed;            /* steps already in the catalog */
	double t_exec0;              /* mono: blue turned read-only */
	double deadline;             /* mono: t_exec0 + timeout */
	char *final_pos;
	/* What execution changed, for the rollback. */
	bool blue_ro, green_stopped, green_reset, green_writable, switch_touched;
	double step_t0[CUTOVER_MAX_STEPS]; /* mono start of each step */
	double trx_read_at;          /* mono: last read of INNODB_TRX on blue */
};

static bool aborted(const struct cx *x)
{
	return x->o->abort_flag && *x->o->abort_flag;
}

/* ------------------------------------------------------------------ report */

__attribute__((format(printf, 5, 6)))
static struct cutover_check *check_add(struct cx *x, const char *name,
				       bool pass, const char *limit,
				       const char *fmt, ...)
{
	struct cutover_report *r = x->rep;
	struct cutover_check *c;
	va_list ap;

	if (r->n_checks == CUTOVER_MAX_CHECKS)
		return &r->checks[CUTOVER_MAX_CHECKS - 1];
	c = &r->checks[r->n_checks++];
	memset(c, 0, sizeof(*c));
	c->name = name;
	c->pass = pass;
	str_copy(c->limit, sizeof(c->limit), limit ? limit : "");
	va_start(ap, fmt);
	vsnprintf(c->value, sizeof(c->value), fmt, ap);
	va_end(ap);
	if (!pass)
		r->preflight_ok = false;
	return c;
}

__attribute__((format(printf, 2, 3)))
static void plan_add(struct cx *x, const char *fmt, ...)
{
	struct cutover_report *r = x->rep;
	va_list ap;

	if (r->n_plan == CUTOVER_MAX_PLAN)
		return;
	va_start(ap, fmt);
	vsnprintf(r->plan[r->n_plan++], sizeof(r->plan[0]), fmt, ap);
	va_end(ap);
}

static struct cutover_step *step_begin(struct cx *x, const char *name)
{
	struct cutover_report *r = x->rep;
	struct cutover_step *s;
	size_t i = r->n_steps < CUTOVER_MAX_STEPS ? r->n_steps++ : CUTOVER_MAX_STEPS - 1;

	s = &r->steps[i];
	memset(s, 0, sizeof(*s));
	s->name = name;
	s->started_at = catalog_now();
	s->result = "running";
	x->step_t0[i] = mono_s();
	return s;
}

__attribute__((format(printf, 4, 5)))
static void step_end(struct cx *x, struct cutover_step *s, const char *result,
		     const char *fmt, ...)
{
	size_t i = (size_t)(s - x->rep->steps);
	va_list ap;

	s->duration_ms = (mono_s() - x->step_t0[i]) * 1e3;
	s->result = result;
	if (fmt) {
		va_start(ap, fmt);
		vsnprintf(s->message, sizeof(s->message), fmt, ap);
		va_end(ap);
	}
	log_info(MOD, "step %s: %s in %.1f ms%s%s", s->name, result,
		 s->duration_ms, s->message[0] ? ": " : "", s->message);
}

/* ------------------------------------------------------------------ catalog */

static int row_insert(struct cx *x, struct err *e)
{
	sqlite3 *db = catalog_sqlite(x->cat);
	sqlite3_stmt *st = NULL;
	int rc;

	if ((rc = catalog_cluster_ensure(x->cat, x->cl->name, e)) != 0)
		return rc;
	if (sqlite3_prepare_v2(db,
			       "INSERT INTO cutovers(job_id, cluster, from_server, to_server, "
			       "dry_run, started_at) VALUES (?, ?, ?, ?, ?, ?)",
			       -1, &st, NULL) != SQLITE_OK)
		return catalog_error(x->cat, "unable to record the cutover", e);
	if (x->job_id > 0)
		sqlite3_bind_int64(st, 1, x->job_id);
	else
		sqlite3_bind_null(st, 1);
	sqlite3_bind_text(st, 2, x->cl->name, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 3, x->rep->from, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 4, x->rep->to, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int(st, 5, x->o->dry_run ? 1 : 0);
	sqlite3_bind_double(st, 6, catalog_now());
	if (sqlite3_step(st) != SQLITE_DONE)
		rc = catalog_error(x->cat, "unable to record the cutover", e);
	else
		x->rep->cutover_id = sqlite3_last_insert_rowid(db);
	sqlite3_finalize(st);
	return rc;
}

/* Writes the steps not yet written. */
static int steps_flush(struct cx *x, struct err *e)
{
	sqlite3_stmt *st = NULL;
	int rc = 0;

	if (x->rep->cutover_id < 0 || x->n_flushed >= x->rep->n_steps)
		return 0;
	if (sqlite3_prepare_v2(catalog_sqlite(x->cat),
			       "INSERT OR REPLACE INTO cutover_steps(cutover_id, seq, name, "
			       "started_at, duration_ms, result, message) "
			       "VALUES (?, ?, ?, ?, ?, ?, ?)", -1, &st, NULL) != SQLITE_OK)
		return catalog_error(x->cat, "unable to record cutover steps", e);
	for (size_t i = x->n_flushed; !rc && i < x->rep->n_steps; i++) {
		const struct cutover_step *s = &x->rep->steps[i];
		const char *res = strcmp(s->result, "running") == 0 ? "failed" : s->result;
		sqlite3_reset(st);
		sqlite3_bind_int64(st, 1, x->rep->cutover_id);
		sqlite3_bind_int64(st, 2, (int64_t)i + 1);
		sqlite3_bind_text(st, 3, s->name, -1, SQLITE_STATIC);
		sqlite3_bind_double(st, 4, s->started_at);
		sqlite3_bind_int64(st, 5, (int64_t)llround(s->duration_ms));
		sqlite3_bind_text(st, 6, res, -1, SQLITE_STATIC);
		if (s->message[0])
			sqlite3_bind_text(st, 7, s->message, -1, SQLITE_TRANSIENT);
		else
			sqlite3_bind_null(st, 7);
		if (sqlite3_step(st) != SQLITE_DONE)
			rc = catalog_error(x->cat, "unable to record cutover steps", e);
	}
	sqlite3_finalize(st);
	if (!rc)
		x->n_flushed = x->rep->n_steps;
	return rc;
}

static int row_finish(struct cx *x, const char *result, const struct err *fail,
		      struct err *e)
{
	sqlite3_stmt *st = NULL;
	int rc = 0;

	if (x->rep->cutover_id < 0)
		return 0;
	if (sqlite3_prepare_v2(catalog_sqlite(x->cat),
			       "UPDATE cutovers SET finished_at = ?, write_pause_ms = ?, "
			       "gtid_at_switch = ?, result = ?, error_code = ?, "
			       "error_message = ? WHERE id = ?", -1, &st, NULL) != SQLITE_OK)
		return catalog_error(x->cat, "unable to record the cutover result", e);
	sqlite3_bind_double(st, 1, catalog_now());
	if (x->rep->write_pause_ms >= 0)
		sqlite3_bind_int64(st, 2, (int64_t)llround(x->rep->write_pause_ms));
	else
		sqlite3_bind_null(st, 2);
	if (x->rep->gtid_at_switch[0])
		sqlite3_bind_text(st, 3, x->rep->gtid_at_switch, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(st, 3);
	sqlite3_bind_text(st, 4, result, -1, SQLITE_STATIC);
	if (fail && err_is_set(fail)) {
		sqlite3_bind_int(st, 5, fail->code);
		sqlite3_bind_text(st, 6, fail->msg, -1, SQLITE_TRANSIENT);
	} else {
		sqlite3_bind_null(st, 5);
		sqlite3_bind_null(st, 6);
	}
	sqlite3_bind_int64(st, 7, x->rep->cutover_id);
	if (sqlite3_step(st) != SQLITE_DONE)
		rc = catalog_error(x->cat, "unable to record the cutover result", e);
	sqlite3_finalize(st);
	return rc;
}

/* Adds an outbox event; payload (consumed) gets from/to added. A failure
 * is logged, not returned: the cutover's own outcome matters more. */
static void event(struct cx *x, const char *kind, const char *severity,
		  json_t *payload)
{
	struct err e;
	char *text;

	if (x->o->dry_run) {
		json_decref(payload);
		return;
	}
	json_object_set_new(payload, "from", json_string(x->rep->from));
	json_object_set_new(payload, "to", json_string(x->rep->to));
	if (x->rep->cutover_id >= 0)
		json_object_set_new(payload, "cutover_id", json_integer(x->rep->cutover_id));
	text = json_dumps(payload, JSON_COMPACT | JSON_REAL_PRECISION(10));
	json_decref(payload);
	err_init(&e);
	if (!text || catalog_event_add(x->cat, x->cl->name, x->rep->to, kind,
				       severity, text, NULL, &e) != 0)
		log_error(MOD, "unable to add event %s: %s", kind,
			  text ? e.msg : "out of memory");
	free(text);
}

static json_t *steps_json(const struct cutover_report *r, size_t from, size_t to)
{
	json_t *a = json_array();
	for (size_t i = from; i < to && i < r->n_steps; i++) {
		const struct cutover_step *s = &r->steps[i];
		json_array_append_new(a, json_pack("{s:s, s:s, s:f, s:s}",
						   "name", s->name, "result", s->result,
						   "ms", round(s->duration_ms * 10) / 10,
						   "message", s->message));
	}
	return a;
}

/* ------------------------------------------------------------------ SQL */

/* Connects to addr with the cluster's account; the read timeout covers a
 * GTID wait of the whole cutover timeout. */
static int connect_to(struct cx *x, const struct cfg_addr *addr, struct db **out,
		      struct err *e)
{
	struct db_opts o;
	unsigned need = (unsigned)ceil(x->timeout_s) + 10;

	probe_db_opts(x->cl, addr, &o);
	if (o.read_timeout_s < need)
		o.read_timeout_s = need;
	if (o.write_timeout_s < need)
		o.write_timeout_s = need;
	return db_connect(&o, out, e);
}

static int exec_stmt(struct db *d, enum dialect_stmt s, struct err *e)
{
	const char *sql = db_sql(d, s);
	if (!sql)
		return err_set(e, ERR_INTERNAL, "no statement %d for '%s'", (int)s,
			       db_addr(d));
	return db_exec(d, sql, e);
}

/* A string value (NULL becomes ""); caller frees. */
static int query_text(struct db *d, const char *sql, char **out, struct err *e)
{
	bool found = false;
	int rc = db_query_value(d, sql, out, &found, e);
	if (!rc && !*out)
		*out = xstrdup("");
	return rc;
}

static int binlog_pos(struct db *d, char **out, struct err *e)
{
	const char *sql = db_sql(d, DIALECT_GTID_BINLOG_POS);
	if (!sql)
		return err_set(e, ERR_INTERNAL, "no GTID statement for '%s'", db_addr(d));
	return query_text(d, sql, out, e);
}

/* The replication source of the replica as a config address. */
static void source_of(const struct db_replica_status *rs, struct cfg_addr *a)
{
	memset(a, 0, sizeof(*a));
	str_copy(a->host, sizeof(a->host), rs->source_host);
	a->port = rs->source_port;
}

/* CHANGE MASTER TO target with the config's replication user. */
static int attach(struct cx *x, struct db *replica, const struct cfg_addr *source,
		  struct err *e)
{
	struct dialect_source src;

	memset(&src, 0, sizeof(src));
	src.host = source->host;
	src.port = source->port;
	src.user = x->cl->replication_user;
	src.password = x->cl->replication_password;
	src.connect_retry_s = CONNECT_RETRY_S;
	src.ssl = x->cl->ssl_mode >= CFG_SSL_REQUIRED;
	return db_change_source(replica, &src, e);
}

/* MariaDB: set gtid_slave_pos so that the replica resumes after pos. */
static int set_slave_pos(struct db *d, const char *pos, struct err *e)
{
	struct buf b;
	int rc;

	if (db_flavor(d) != DB_FLAVOR_MARIADB)
		return 0;   /* MySQL auto-positions from gtid_executed */
	buf_init(&b, GTID_MAX + 256);
	rc = dialect_build_set_gtid_position(DB_FLAVOR_MARIADB, pos,
					     db_no_backslash_escapes(d), &b, e);
	if (!rc)
		rc = db_exec_buf(d, &b, e);
	buf_release(&b);
	return rc;
}

/* ------------------------------------------------------------------ GTIDs */

struct gtid_entry {
	unsigned long domain, server;
	unsigned long long seq;
};

static int gtid_list_parse(const char *s, struct gtid_entry **out, size_t *n,
			   struct err *e)
{
	struct gtid_entry *arr = NULL;
	size_t cnt = 0;

	*out = NULL;
	*n = 0;
	while (s && *s) {
		unsigned long long v[3];
		char *end;

		while (*s == ' ' || *s == '\n' || *s == ',')
			s++;
		if (!*s)
			break;
		for (int i = 0; i < 3; i++) {
			if (*s < '0' || *s > '9')
				goto bad;
			errno = 0;
			v[i] = strtoull(s, &end, 10);
			if (errno)
				goto bad;
			s = end;
			if (i < 2) {
				if (*s != '-')
					goto bad;
				s++;
			}
		}
		if (v[0] > 0xffffffffULL || v[1] > 0xffffffffULL)
			goto bad;
		if (*s && *s != ',' && *s != ' ' && *s != '\n')
			goto bad;
		if (cnt == GTID_ENTRIES_MAX) {
			free(arr);
			return err_set(e, ERR_CORRUPT, "GTID list has more than %d entries",
				       GTID_ENTRIES_MAX);
		}
		arr = xrealloc(arr, (cnt + 1) * sizeof(*arr));
		arr[cnt].domain = (unsigned long)v[0];
		arr[cnt].server = (unsigned long)v[1];
		arr[cnt].seq = v[2];
		cnt++;
	}
	*out = arr;
	*n = cnt;
	return 0;
bad:
	free(arr);
	return err_set(e, ERR_CORRUPT, "malformed GTID list near '%.40s'", s);
}

int cutover_foreign_gtids(const char *green_state, const char *blue_state,
			  int *n_foreign, char *why, size_t why_size,
			  struct err *e)
{
	struct gtid_entry *g = NULL, *b = NULL;
	size_t ng = 0, nb = 0, used = 0;
	int rc, shown = 0;

	*n_foreign = 0;
	if (why_size)
		why[0] = '\0';
	if ((rc = gtid_list_parse(green_state, &g, &ng, e)) != 0 ||
	    (rc = gtid_list_parse(blue_state, &b, &nb, e)) != 0) {
		free(g);
		return rc;
	}
	for (size_t i = 0; i < ng; i++) {
		const struct gtid_entry *m = NULL;
		for (size_t j = 0; j < nb; j++)
			if (b[j].domain == g[i].domain && b[j].server == g[i].server)
				m = &b[j];
		if (m && g[i].seq <= m->seq)
			continue;
		(*n_foreign)++;
		if (shown < 3 && used < why_size) {
			int w;
			if (m)
				w = snprintf(why + used, why_size - used,
					     "%s%lu-%lu-%llu (blue has %lu-%lu-%llu)",
					     shown ? ", " : "", g[i].domain, g[i].server,
					     g[i].seq, m->domain, m->server, m->seq);
			else
				w = snprintf(why + used, why_size - used,
					     "%s%lu-%lu-%llu (blue has nothing from server %lu in domain %lu)",
					     shown ? ", " : "", g[i].domain, g[i].server,
					     g[i].seq, g[i].server, g[i].domain);
			if (w > 0)
				used += (size_t)w;
			shown++;
		}
	}
	free(g);
	free(b);
	return 0;
}

/* ------------------------------------------------------------------ addresses */

bool cutover_is_cluster_server(const struct cfg_cluster *cl,
			       const struct cfg_addr *addr)
{
	if (cfg_addr_equal(&cl->primary, addr))
		return true;
	for (size_t i = 0; i < cl->n_replicas; i++)
		if (cfg_addr_equal(&cl->replicas[i], addr))
			return true;
	return false;
}

int cutover_effective_primary(const struct cfg_cluster *cl,
			      struct catalog *cat, struct cfg_addr *out,
			      bool *from_catalog, struct err *e)
{
	char *addr = NULL;
	struct cfg_addr a;
	struct err pe;
	int rc;

	*out = cl->primary;
	if (from_catalog)
		*from_catalog = false;
	if (!cat)
		return 0;
	if ((rc = catalog_get_primary(cat, cl->name, &addr, e)) != 0)
		return rc;
	if (!addr)
		return 0;
	err_init(&pe);
	if (cfg_addr_parse(addr, &a, &pe) == 0 && cutover_is_cluster_server(cl, &a)) {
		*out = a;
		if (from_catalog)
			*from_catalog = true;
	} else {
		log_warn(MOD, "catalog names '%s' as primary of '%s', which is not one of its "
			 "configured servers: using the config's primary", addr, cl->name);
	}
	free(addr);
	return 0;
}

/* ------------------------------------------------------------------ hook */

/* Runs `hook old new`, output collected, killed at the deadline. */
static int run_hook(const char *hook, const char *old_w, const char *new_w,
		    double deadline, char *out, size_t out_size, struct err *e)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	char *argv[] = { (char *)hook, (char *)old_w, (char *)new_w, NULL };
	char keep[HOOK_OUTPUT_KEEP + 1];
	size_t kept = 0;
	int pfd[2], status = 0, rc = 0;
	pid_t pid;
	bool timed_out = false;

	out[0] = '\0';
	if (pipe2(pfd, O_CLOEXEC) != 0)
		return err_set_errno(e, ERR_IO, errno, "unable to create a pipe for the switch hook");
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, pfd[1], 1);
	posix_spawn_file_actions_adddup2(&fa, pfd[1], 2);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawnattr_init(&at);
	/* Own process group: a timeout kills the hook and its children. */
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
				 POSIX_SPAWN_SETSIGDEF);
	posix_spawnattr_setpgroup(&at, 0);
	{
		sigset_t none, all;
		sigemptyset(&none);
		sigfillset(&all);
		posix_spawnattr_setsigmask(&at, &none);
		posix_spawnattr_setsigdefault(&at, &all);
	}
	rc = posix_spawn(&pid, hook, &fa, &at, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	close(pfd[1]);
	if (rc != 0) {
		close(pfd[0]);
		return err_set_errno(e, ERR_IO, rc, "unable to run switch hook '%s'", hook);
	}
	for (;;) {
		struct pollfd p = { .fd = pfd[0], .events = POLLIN };
		double left = deadline - mono_s();
		char tmp[1024];
		ssize_t r;
		int pr;

		if (left <= 0) {
			timed_out = true;
			kill(-pid, SIGKILL);
			break;
		}
		pr = poll(&p, 1, (int)(left * 1000) + 1);
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr <= 0)
			continue;
		r = read(pfd[0], tmp, sizeof(tmp));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		/* Keep the tail: the last lines say why a hook failed. */
		for (ssize_t i = 0; i < r; i++) {
			if (kept == HOOK_OUTPUT_KEEP) {
				memmove(keep, keep + 1, HOOK_OUTPUT_KEEP - 1);
				kept--;
			}
			keep[kept++] = tmp[i];
		}
	}
	close(pfd[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	keep[kept] = '\0';
	for (size_t i = 0; i < kept; i++)
		if (keep[i] == '\n' || keep[i] == '\r' || keep[i] == '\t')
			keep[i] = ' ';
	while (kept && keep[kept - 1] == ' ')
		keep[--kept] = '\0';
	str_copy(out, out_size, keep);
	if (kept)
		log_info(MOD, "switch hook output: %s", keep);
	if (timed_out)
		return err_set(e, ERR_TIMEOUT, "switch hook '%s' did not finish in time (killed)",
			       hook);
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	if (WIFEXITED(status))
		return err_set(e, ERR_REFUSED, "switch hook '%s %s %s' exited with status %d%s%.300s",
			       hook, old_w, new_w, WEXITSTATUS(status), kept ? ": " : "",
			       kept > 300 ? keep + kept - 300 : keep);
	return err_set(e, ERR_REFUSED, "switch hook '%s' was killed by signal %d", hook,
		       WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

/* ------------------------------------------------------------------ preflight */

static const char *flavor_word(enum db_flavor f)
{
	return f == DB_FLAVOR_MYSQL ? "MySQL" : f == DB_FLAVOR_MARIADB ? "MariaDB" : "unknown";
}

static void fmt_limit_s(char *out, size_t n, const char *what, double v)
{
	snprintf(out, n, "%s %g s", what, v);
}

static void check_traffic_switch(struct cx *x)
{
	const struct cfg_cluster *cl = x->cl;
	char lim[200];

	if (cl->switch_hook) {
		struct stat st;
		bool ok = stat(cl->switch_hook, &st) == 0 && S_ISREG(st.st_mode) &&
			  access(cl->switch_hook, X_OK) == 0;
		x->use_hook = ok;
		check_add(x, "traffic_switch", ok, "switch_hook is an executable file",
			  ok ? "hook '%s' is executable (run as: hook OLD NEW)"
			     : "hook '%s' is not an executable file",
			  cl->switch_hook);
		return;
	}
	if (!cl->haproxy_socket || !cl->haproxy_backend) {
		check_add(x, "traffic_switch", false,
			  "haproxy_socket + haproxy_backend, or switch_hook",
			  "no traffic switch configured");
		return;
	}
	snprintf(lim, sizeof(lim), "socket answers; blue and green in backend '%s' by address",
		 cl->haproxy_backend);
	struct haproxy_server *s = NULL;
	size_t n = 0;
	struct err he;
	err_init(&he);
	if (haproxy_servers_state(cl->haproxy_socket, cl->haproxy_backend, 0, &s, &n, &he) != 0) {
		check_add(x, "traffic_switch", false, lim, "%s", he.msg);
		return;
	}
	const struct haproxy_server *b = haproxy_find_server(s, n, cl->haproxy_backend,
							     x->blue.host, x->blue.port);
	const struct haproxy_server *g = haproxy_find_server(s, n, cl->haproxy_backend,
							     x->green.host, x->green.port);
	if (b && g && b != g) {
		x->use_haproxy = true;
		str_copy(x->be, sizeof(x->be), cl->haproxy_backend);
		str_copy(x->blue_srv, sizeof(x->blue_srv), b->name);
		str_copy(x->green_srv, sizeof(x->green_srv), g->name);
		check_add(x, "traffic_switch", true, lim,
			  "haproxy '%s': blue is server '%s' (%s, %s, weight %d), green is server '%s' (%s, %s)",
			  cl->haproxy_backend, b->name, haproxy_admin_state_name(b->admin_state),
			  haproxy_op_state_name(b->op_state), b->weight, g->name,
			  haproxy_admin_state_name(g->admin_state), haproxy_op_state_name(g->op_state));
	} else {
		check_add(x, "traffic_switch", false, lim,
			  "haproxy backend '%s' (%zu servers): blue %s %s, green %s %s",
			  cl->haproxy_backend, n, x->rep->from, b ? "found" : "NOT FOUND",
			  x->rep->to, g && g != b ? "found" : "NOT FOUND");
	}
	free(s);
}

/* Preflight. Connects x->bdb and x->gdb (kept open for execution). */
static void preflight(struct cx *x)
{
	const struct cfg_cluster *cl = x->cl;
	struct cutover_report *r = x->rep;
	struct db_replica_status rs;
	struct err be, ge, qe;
	bool blue_up, green_up, blue_ro = false, green_ro = false;
	char lim[200], *bpos = NULL;

	memset(&rs, 0, sizeof(rs));
	r->preflight_ok = true;
	err_init(&be);
	err_init(&ge);
	blue_up = connect_to(x, &x->blue, &x->bdb, &be) == 0;
	green_up = connect_to(x, &x->green, &x->gdb, &ge) == 0;

	/* blue */
	err_init(&qe);
	if (!blue_up)
		check_add(x, "blue", false, "reachable and writable", "unreachable: %s", be.msg);
	else if (db_read_only(x->bdb, &blue_ro, &qe) != 0)
		check_add(x, "blue", false, "reachable and writable", "%s", qe.msg);
	else
		check_add(x, "blue", !blue_ro, "reachable and writable",
			  "%s %s %s, server_id %lu, %s (primary per %s)", r->from,
			  flavor_word(db_flavor(x->bdb)), db_version_string(x->bdb),
			  db_server_id(x->bdb), blue_ro ? "READ-ONLY" : "writable",
			  r->from_catalog ? "catalog topology" : "config");

	/* green */
	err_init(&qe);
	if (!green_up)
		check_add(x, "green", false, "reachable", "unreachable: %s", ge.msg);
	else if (db_read_only(x->gdb, &green_ro, &qe) != 0)
		check_add(x, "green", false, "reachable", "%s", qe.msg);
	else {
		bool same_id = blue_up && db_server_id(x->bdb) == db_server_id(x->gdb);
		check_add(x, "green", !same_id, "reachable, server_id differs from blue's",
			  "%s %s %s, server_id %lu%s, %s", r->to,
			  flavor_word(db_flavor(x->gdb)), db_version_string(x->gdb),
			  db_server_id(x->gdb), same_id ? " (SAME AS BLUE)" : "",
			  green_ro ? "read-only" : "writable");
	}

	/* replication and lag */
	err_init(&qe);
	if (!green_up) {
		check_add(x, "replication", false, "from blue, both threads running, no error",
			  "not checked: green unreachable");
		check_add(x, "lag", false, "", "not checked: green unreachable");
	} else if (db_replica_status(x->gdb, &rs, &qe) != 0) {
		check_add(x, "replication", false, "from blue, both threads running, no error",
			  "%s", qe.msg);
		check_add(x, "lag", false, "", "not checked: replica status unreadable");
	} else if (!rs.configured) {
		check_add(x, "replication", false, "from blue, both threads running, no error",
			  "green is not a replica");
		check_add(x, "lag", false, "", "unbounded: green is not a replica");
	} else {
		struct cfg_addr src;
		bool from_blue, ok;
		double limit = x->max_lag_s;

		source_of(&rs, &src);
		from_blue = cfg_addr_equal(&src, &x->blue);
		ok = from_blue && rs.io_running && rs.sql_running && !rs.last_io_errno &&
		     !rs.last_sql_errno && rs.using_gtid;
		check_add(x, "replication", ok,
			  "from blue, both threads running, no error, GTID positioning",
			  "from %s:%u%s, io=%s sql=%s, %s%s%s%s%s",
			  rs.source_host, rs.source_port, from_blue ? "" : " (NOT BLUE)",
			  rs.io_state_raw, rs.sql_running ? "Yes" : "No",
			  rs.using_gtid ? "gtid" : "NO GTID",
			  rs.last_io_errno ? ", io error: " : "",
			  rs.last_io_errno ? rs.last_io_error : "",
			  rs.last_sql_errno ? ", sql error: " : "",
			  rs.last_sql_errno ? rs.last_sql_error : (ok ? ", no error" : ""));
		if (limit > x->timeout_s / 2)
			limit = x->timeout_s / 2;
		snprintf(lim, sizeof(lim), "at most %g s (--max-lag %g, at most half of --timeout %g)",
			 limit, x->max_lag_s, x->timeout_s);
		err_init(&qe);
		if (blue_up && binlog_pos(x->bdb, &bpos, &qe) == 0 && rs.gtid_executed &&
		    rs.sql_running && strcmp(bpos, rs.gtid_executed) == 0)
			check_add(x, "lag", true, lim,
				  "0 s: green has executed blue's position %.200s", bpos);
		else if (!rs.io_running || !rs.sql_running)
			check_add(x, "lag", false, lim, "unbounded: %s thread not running",
				  rs.sql_running ? "io" : "sql");
		else if (rs.seconds_behind < 0)
			check_add(x, "lag", false, lim, "unbounded: the server reports no lag");
		else
			check_add(x, "lag", (double)rs.seconds_behind <= limit, lim,
				  "%lld s (Seconds_Behind_Master)", rs.seconds_behind);
	}

	/* foreign GTIDs */
	if (!blue_up || !green_up) {
		check_add(x, "foreign_gtids", false, "none", "not checked: %s unreachable",
			  blue_up ? "green" : "blue");
	} else if (db_flavor(x->gdb) == DB_FLAVOR_MARIADB) {
		char *gs = NULL, *bs = NULL, why[400];
		int nf = 0;
		err_init(&qe);
		if (query_text(x->gdb, "SELECT @@GLOBAL.gtid_binlog_state", &gs, &qe) == 0 &&
		    query_text(x->bdb, "SELECT @@GLOBAL.gtid_binlog_state", &bs, &qe) == 0 &&
		    cutover_foreign_gtids(gs, bs, &nf, why, sizeof(why), &qe) == 0) {
			if (nf)
				check_add(x, "foreign_gtids", false, "green's gtid_binlog_state within blue's",
					  "%d GTID(s) written on green outside replication: %s", nf, why);
			else
				check_add(x, "foreign_gtids", true, "green's gtid_binlog_state within blue's",
					  "none: green's binlog state '%.150s' is within blue's '%.150s'",
					  gs, bs);
		} else
			check_add(x, "foreign_gtids", false, "none", "%s", qe.msg);
		free(gs);
		free(bs);
	} else {
		/* MySQL: every GTID green executed must be in blue's set. */
		char *gx = NULL, *v = NULL;
		struct buf q;
		err_init(&qe);
		buf_init(&q, 2 * GTID_MAX);
		if (query_text(x->gdb, "SELECT @@GLOBAL.gtid_executed", &gx, &qe) == 0 &&
		    buf_append_str(&q, "SELECT GTID_SUBSET(", &qe) == 0 &&
		    db_quote_string(x->bdb, &q, gx, strlen(gx), &qe) == 0 &&
		    buf_append_str(&q, ", @@GLOBAL.gtid_executed)", &qe) == 0 &&
		    query_text(x->bdb, q.data, &v, &qe) == 0) {
			if (strcmp(v, "1") == 0)
				check_add(x, "foreign_gtids", true, "green's gtid_executed within blue's",
					  "none");
			else
				check_add(x, "foreign_gtids", false, "green's gtid_executed within blue's",
					  "green executed GTIDs blue does not have: %.300s", gx);
		} else
			check_add(x, "foreign_gtids", false, "none", "%s", qe.msg);
		free(gx);
		free(v);
		buf_release(&q);
	}

	/* long transactions on blue */
	fmt_limit_s(lim, sizeof(lim), "none open longer than", x->max_trx_s);
	if (!blue_up) {
		check_add(x, "long_transactions", false, lim, "not checked: blue unreachable");
	} else {
		MYSQL_RES *res = NULL;
		MYSQL_ROW row;
		err_init(&qe);
		if (db_query_result(x->bdb,
				    "SELECT t.trx_mysql_thread_id, "
				    "TIMESTAMPDIFF(SECOND, t.trx_started, NOW()), "
				    "t.trx_rows_modified, IFNULL(p.USER, ''), "
				    "(SELECT COUNT(*) FROM information_schema.INNODB_TRX "
				    " WHERE trx_mysql_thread_id <> CONNECTION_ID()) "
				    "FROM information_schema.INNODB_TRX t "
				    "LEFT JOIN information_schema.PROCESSLIST p "
				    "ON p.ID = t.trx_mysql_thread_id "
				    "WHERE t.trx_mysql_thread_id <> CONNECTION_ID() "
				    "ORDER BY t.trx_started LIMIT 1", false, &res, &qe) != 0) {
			x->trx_read_at = mono_s();
			check_add(x, "long_transactions", false, lim, "%s", qe.msg);
		} else {
			x->trx_read_at = mono_s();
			row = mysql_fetch_row(res);
			if (!row) {
				check_add(x, "long_transactions", true, lim, "no transaction open");
			} else {
				long age = 0;
				str_to_long(row[1] ? row[1] : "0", 0, 1L << 40, &age);
				check_add(x, "long_transactions", (double)age <= x->max_trx_s, lim,
					  "%s open, the oldest %ld s (connection %s of '%s', %s rows modified)",
					  row[4] ? row[4] : "?", age, row[0] ? row[0] : "?",
					  row[3] ? row[3] : "", row[2] ? row[2] : "?");
			}
			mysql_free_result(res);
			db_finish(x->bdb, &qe);
		}
	}

	/* version */
	if (!blue_up || !green_up) {
		check_add(x, "version", false, "green same or newer", "not checked: %s unreachable",
			  blue_up ? "green" : "blue");
	} else {
		bool same_flavor = db_flavor(x->bdb) == db_flavor(x->gdb);
		unsigned long bv = db_version(x->bdb), gv = db_version(x->gdb);
		check_add(x, "version", same_flavor && gv >= bv, "green same flavor, same or newer",
			  "blue %s %s, green %s %s (%s)", flavor_word(db_flavor(x->bdb)),
			  db_version_string(x->bdb), flavor_word(db_flavor(x->gdb)),
			  db_version_string(x->gdb),
			  !same_flavor ? "DIFFERENT FLAVOR" : gv == bv ? "same" : gv > bv ? "newer" : "OLDER");
	}

	/* snapshot */
	if (x->max_snap_h < 0) {
		struct cutover_check *c = check_add(x, "snapshot", true, "skipped (--max-snapshot-age 0)",
						    "not checked");
		c->skipped = true;
	} else {
		struct catalog_snapshot s;
		snprintf(lim, sizeof(lim), "a complete one younger than %g h (--max-snapshot-age)",
			 x->max_snap_h);
		catalog_snapshot_init(&s);
		err_init(&qe);
		int rc = catalog_snapshot_latest(x->cat, cl->name, "complete", &s, &qe);
		if (rc == ERR_NOT_FOUND) {
			check_add(x, "snapshot", false, lim, "no complete snapshot of '%s' in the catalog",
				  cl->name);
		} else if (rc) {
			check_add(x, "snapshot", false, lim, "%s", qe.msg);
		} else {
			double t = s.finished_at > 0 ? s.finished_at : s.started_at;
			double age_h = (catalog_now() - t) / 3600.0;
			check_add(x, "snapshot", age_h < x->max_snap_h, lim, "%s, %.1f h old",
				  s.id, age_h);
		}
		catalog_snapshot_release(&s);
	}

	check_traffic_switch(x);

	check_add(x, "replication_user", cl->replication_user != NULL,
		  "replication_user set (blue re-attaches to green; rollback re-attaches green)",
		  cl->replication_user ? "'%s'" : "%s",
		  cl->replication_user ? cl->replication_user : "not set in the config");

	free(bpos);
	db_replica_status_release(&rs);
}

/* --resume: green has been promoted and traffic switched; only blue's
 * re-attach and the topology are left. */
static void preflight_resume(struct cx *x)
{
	struct db_replica_status rs;
	struct err be, ge, qe;
	bool ro = false;

	memset(&rs, 0, sizeof(rs));
	x->rep->preflight_ok = true;
	err_init(&be);
	err_init(&ge);
	err_init(&qe);
	if (connect_to(x, &x->blue, &x->bdb, &be) != 0)
		check_add(x, "blue", false, "reachable", "unreachable: %s", be.msg);
	else
		check_add(x, "blue", true, "reachable", "%s %s", x->rep->from,
			  db_version_string(x->bdb));
	if (connect_to(x, &x->green, &x->gdb, &ge) != 0) {
		check_add(x, "green", false, "reachable, writable, not replicating",
			  "unreachable: %s", ge.msg);
	} else if (db_read_only(x->gdb, &ro, &qe) != 0 ||
		   db_replica_status(x->gdb, &rs, &qe) != 0) {
		check_add(x, "green", false, "reachable, writable, not replicating", "%s", qe.msg);
	} else {
		bool repl = rs.configured && (rs.io_running || rs.sql_running);
		check_add(x, "green", !ro && !repl, "reachable, writable, not replicating",
			  "%s %s, %s, %s", x->rep->to, db_version_string(x->gdb),
			  ro ? "READ-ONLY (was it promoted?)" : "writable",
			  repl ? "STILL REPLICATING" : "not replicating");
	}
	check_add(x, "replication_user", x->cl->replication_user != NULL,
		  "replication_user set", "%s",
		  x->cl->replication_user ? x->cl->replication_user : "not set in the config");
	db_replica_status_release(&rs);
}

static void make_plan(struct cx *x)
{
	const char *b = x->rep->from, *g = x->rep->to;

	if (x->o->resume) {
		plan_add(x, "blue %s: check it has nothing green lacks; SET GLOBAL gtid_slave_pos to "
			 "its own position; CHANGE MASTER TO green %s (user '%s', MASTER_USE_GTID="
			 "slave_pos); START SLAVE", b, g,
			 x->cl->replication_user ? x->cl->replication_user : "?");
		plan_add(x, "catalog: record %s as the primary of '%s'", g, x->cl->name);
		return;
	}
	plan_add(x, "blue %s: SET GLOBAL read_only = 1 (writes pause from here)", b);
	plan_add(x, "blue: wait up to %g s for open write transactions, then KILL them",
		 x->trx_wait_s);
	plan_add(x, "blue: read the final position (@@gtid_binlog_pos)");
	plan_add(x, "green %s: MASTER_GTID_WAIT(final position) within what is left of --timeout %g s",
		 g, x->timeout_s);
	plan_add(x, "green: STOP SLAVE; RESET SLAVE ALL");
	plan_add(x, "green: SET GLOBAL read_only = 0");
	if (x->use_haproxy)
		plan_add(x, "haproxy: set server %s/%s state ready; set server %s/%s state maint; "
			 "shutdown sessions server %s/%s (writes resume)",
			 x->be, x->green_srv, x->be, x->blue_srv, x->be, x->blue_srv);
	else if (x->cl->haproxy_socket && x->cl->haproxy_backend)
		plan_add(x, "haproxy %s: green ready, blue maint, blue's sessions shut down "
			 "(servers not found: see traffic_switch)", x->cl->haproxy_backend);
	else if (x->cl->switch_hook)
		plan_add(x, "run switch hook: %s %s %s (writes resume)", x->cl->switch_hook, b, g);
	else
		plan_add(x, "switch traffic: no switch configured");
	plan_add(x, "blue: SET GLOBAL gtid_slave_pos = final position; CHANGE MASTER TO green "
		 "(user '%s', MASTER_USE_GTID=slave_pos); START SLAVE (rollback = cutover --to %s)",
		 x->cl->replication_user ? x->cl->replication_user : "?", b);
	plan_add(x, "catalog: record %s as the primary of '%s'", g, x->cl->name);
	plan_add(x, "on a failure before the switch completes: traffic back to blue, green "
		 "read-only and replicating from blue, blue writable, within --timeout");
}

/* ------------------------------------------------------------------ execution */

/* InnoDB refreshes information_schema.INNODB_TRX only when it was last
 * read more than 100 ms ago (trx0i_s.cc); polling it faster would keep
 * showing the same, possibly finished, transactions forever. */
#define TRX_CACHE_S 0.11
#define TRX_MAX 256

struct trx_ref {
	unsigned long long trx_id, thread_id;
};

/* Open write transactions on blue (rows modified, other connections). */
static int write_trx(struct cx *x, struct trx_ref *out, size_t max, size_t *n,
		     struct err *e)
{
	MYSQL_RES *res = NULL;
	MYSQL_ROW row;
	int rc;

	*n = 0;
	rc = db_query_result(x->bdb,
			     "SELECT trx_id, trx_mysql_thread_id FROM information_schema.INNODB_TRX "
			     "WHERE trx_rows_modified > 0 AND trx_mysql_thread_id <> 0 "
			     "AND trx_mysql_thread_id <> CONNECTION_ID()", false, &res, e);
	x->trx_read_at = mono_s();
	if (rc)
		return rc;
	while ((row = mysql_fetch_row(res)) != NULL)
		if (row[0] && row[1] && *n < max) {
			out[*n].trx_id = strtoull(row[0], NULL, 10);
			out[*n].thread_id = strtoull(row[1], NULL, 10);
			(*n)++;
		}
	mysql_free_result(res);
	return db_finish(x->bdb, e);
}

/* Write transactions open when blue turned read-only: an ordinary session
 * cannot commit them any more (read_only is checked at commit), but one
 * with READ_ONLY ADMIN or SUPER can, so they get trx_wait_s to end and are
 * killed after it. Transactions that start later are not waited for: they
 * cannot commit either, and a privileged one that does moves blue's
 * position, which the catch-up notices. */
static int step_write_transactions(struct cx *x, struct err *e)
{
	struct cutover_step *s = step_begin(x, "write_transactions");
	struct trx_ref first[TRX_MAX], now[TRX_MAX];
	size_t n_first = 0, n_now = 0, left, killed = 0;
	double t0 = mono_s(), t_end = t0 + x->trx_wait_s;
	int rc;

	if ((rc = write_trx(x, first, TRX_MAX, &n_first, e)) != 0) {
		step_end(x, s, "failed", "%s", e->msg);
		return rc;
	}
	left = n_first;
	while (left > 0 && mono_s() + TRX_CACHE_S < t_end && mono_s() + TRX_CACHE_S < x->deadline) {
		sleep_ms((int)(TRX_CACHE_S * 1000));
		if ((rc = write_trx(x, now, TRX_MAX, &n_now, e)) != 0) {
			step_end(x, s, "failed", "%s", e->msg);
			return rc;
		}
		/* Keep in first only those still open. */
		left = 0;
		for (size_t i = 0; i < n_first; i++) {
			bool open = false;
			for (size_t j = 0; j < n_now && !open; j++)
				open = now[j].trx_id == first[i].trx_id;
			if (open)
				first[left++] = first[i];
		}
		n_first = left;
	}
	for (size_t i = 0; i < left; i++) {
		char q[64];
		struct err ke;
		err_init(&ke);
		snprintf(q, sizeof(q), "KILL CONNECTION %llu", first[i].thread_id);
		if (db_exec(x->bdb, q, &ke) == 0)
			killed++;
		else
			log_warn(MOD, "unable to kill connection %llu on blue: %s",
				 first[i].thread_id, ke.msg);
	}
	if (left == 0)
		step_end(x, s, "ok", "%s", mono_s() - t0 < TRX_CACHE_S
			 ? "no open write transaction" : "open write transactions ended");
	else
		step_end(x, s, "ok", "%zu write transaction(s) still open after %g s: killed %zu",
			 left, x->trx_wait_s, killed);
	return 0;
}

/* Waits until green has executed blue's final position; re-reads the
 * position after each wait in case a session that may ignore read_only
 * (READ_ONLY ADMIN / SUPER) wrote meanwhile. */
static int step_catch_up(struct cx *x, double reserve, struct err *e)
{
	struct cutover_step *s = step_begin(x, "green_catch_up");
	int rounds = 0, rc;

	for (;;) {
		double left = x->deadline - reserve - mono_s();
		unsigned secs = left > 0 ? (unsigned)floor(left) : 0;
		char *again = NULL;

		rounds++;
		rc = db_gtid_wait(x->gdb, x->final_pos, secs, e);
		if (rc == ERR_TIMEOUT) {
			/* A whole-second wait may undershoot the deadline: one
			 * last look within what is left. */
			err_init(e);
			rc = db_gtid_wait(x->gdb, x->final_pos, 0, e);
			if (rc == ERR_TIMEOUT) {
				err_init(e);
				rc = err_set(e, ERR_TIMEOUT,
					     "green '%s' did not reach blue's position '%.300s' within --timeout %g s",
					     x->rep->to, x->final_pos, x->timeout_s);
			}
		}
		if (rc) {
			step_end(x, s, "failed", "%s", e->msg);
			return rc;
		}
		if ((rc = binlog_pos(x->bdb, &again, e)) != 0) {
			step_end(x, s, "failed", "%s", e->msg);
			return rc;
		}
		if (strcmp(again, x->final_pos) == 0) {
			free(again);
			break;
		}
		log_warn(MOD, "blue's position moved while read-only (%s -> %s): a session with "
			 "READ_ONLY ADMIN wrote; waiting again", x->final_pos, again);
		free(x->final_pos);
		x->final_pos = again;
		if (rounds >= 20) {
			rc = err_set(e, ERR_REFUSED,
				     "blue '%s' keeps taking writes while read-only (sessions with READ_ONLY ADMIN or SUPER)",
				     x->rep->from);
			step_end(x, s, "failed", "%s", e->msg);
			return rc;
		}
	}
	str_copy(x->rep->gtid_at_switch, sizeof(x->rep->gtid_at_switch), x->final_pos);
	step_end(x, s, "ok", "reached %.400s", x->final_pos);
	return 0;
}

static int switch_traffic(struct cx *x, bool back, double deadline, char *msg,
			  size_t msg_size, struct err *e)
{
	const char *to_srv = back ? x->blue_srv : x->green_srv;
	const char *from_srv = back ? x->green_srv : x->blue_srv;
	int tmo = (int)((deadline - mono_s()) * 1000);
	int rc;

	if (tmo < 500)
		tmo = 500;
	msg[0] = '\0';
	if (x->use_haproxy) {
		const char *sock = x->cl->haproxy_socket;
		if ((rc = haproxy_set_state(sock, x->be, to_srv, "ready", tmo, e)) != 0 ||
		    (rc = haproxy_set_state(sock, x->be, from_srv, "maint", tmo, e)) != 0 ||
		    (rc = haproxy_shutdown_sessions(sock, x->be, from_srv, tmo, e)) != 0)
			return rc;
		snprintf(msg, msg_size, "haproxy %s: %s ready, %s maint, %s's sessions shut down",
			 x->be, to_srv, from_srv, from_srv);
		return 0;
	}
	if (x->cl->switch_hook) {
		char out[400];
		const char *o_w = back ? x->rep->to : x->rep->from;
		const char *n_w = back ? x->rep->from : x->rep->to;
		rc = run_hook(x->cl->switch_hook, o_w, n_w, deadline, out, sizeof(out), e);
		if (rc)
			return rc;
		snprintf(msg, msg_size, "hook %.150s %.100s %.100s: ok%s%.200s", x->cl->switch_hook, o_w, n_w,
			 out[0] ? ": " : "", out);
		return 0;
	}
	return err_set(e, ERR_CONFIG, "no traffic switch configured for '%s'", x->cl->name);
}

/* Undo before the switch completed. Returns 0 when blue is writable again
 * (the rollback did its job), else the first rollback error in re. */
static int rollback(struct cx *x, struct err *re)
{
	/* The timeout includes the rollback; a rollback that has no time left
	 * still runs: leaving blue read-only is the worst outcome. */
	double deadline = x->deadline > mono_s() + 2 ? x->deadline : mono_s() + 5;
	int first = 0;
	char msg[600];

	if (x->switch_touched) {
		struct cutover_step *s = step_begin(x, "rollback_traffic");
		struct err e;
		err_init(&e);
		if (switch_traffic(x, true, deadline, msg, sizeof(msg), &e) == 0) {
			step_end(x, s, "rolled_back", "%s", msg);
		} else {
			/* Blue is still made writable below: traffic that
			 * reaches green finds it read-only, not split. */
			step_end(x, s, "failed", "%s", e.msg);
			log_error(MOD, "rollback: traffic not switched back: %s", e.msg);
		}
	}
	if (x->green_writable) {
		struct cutover_step *s = step_begin(x, "rollback_green_read_only");
		struct err e;
		err_init(&e);
		if (exec_stmt(x->gdb, DIALECT_SET_READ_ONLY, &e) == 0) {
			x->green_writable = false;
			step_end(x, s, "rolled_back", "green read-only again");
		} else {
			step_end(x, s, "failed", "%s", e.msg);
			if (!first) {
				*re = e;
				first = e.code;
			}
		}
	}
	if (x->blue_ro && !first) {
		struct cutover_step *s = step_begin(x, "rollback_blue_writable");
		struct err e;
		err_init(&e);
		if (exec_stmt(x->bdb, DIALECT_CLEAR_READ_ONLY, &e) == 0) {
			x->blue_ro = false;
			x->rep->write_pause_ms = (mono_s() - x->t_exec0) * 1e3;
			step_end(x, s, "rolled_back", "blue writable again after %.0f ms",
				 x->rep->write_pause_ms);
		} else {
			step_end(x, s, "failed", "%s", e.msg);
			*re = e;
			first = e.code;
		}
	}
	if (x->green_stopped) {
		struct cutover_step *s = step_begin(x, "rollback_green_replication");
		struct err e;
		char *gp = NULL;
		int rc;
		err_init(&e);
		/* Writes that reached green while it was writable would make
		 * its binlog diverge: say so rather than hide it. */
		rc = binlog_pos(x->gdb, &gp, &e);
		if (!rc && x->final_pos && strcmp(gp, x->final_pos) != 0)
			log_error(MOD, "rollback: green's binlog moved to '%s' after blue's final "
				  "position '%s': green took writes and may not replicate cleanly",
				  gp, x->final_pos);
		if (!rc && x->green_reset)
			rc = attach(x, x->gdb, &x->blue, &e);
		if (!rc)
			rc = exec_stmt(x->gdb, DIALECT_START_REPLICA, &e);
		if (!rc) {
			x->green_stopped = x->green_reset = false;
			step_end(x, s, "rolled_back", "green replicates from blue again%s",
				 gp && x->final_pos && strcmp(gp, x->final_pos) != 0
				 ? " (BUT its binlog moved past blue's final position)" : "");
		} else {
			step_end(x, s, "failed", "%s", e.msg);
			if (!first) {
				*re = e;
				first = e.code;
			}
		}
		free(gp);
	}
	return first;
}

/* Blue replicates from green, so `cutover --to BLUE` is the rollback. */
static int step_reverse(struct cx *x, struct err *e)
{
	struct cutover_step *s = step_begin(x, "blue_replicates_from_green");
	struct db_replica_status rs;
	char *bp = NULL, *gp = NULL;
	double until;
	int rc;

	memset(&rs, 0, sizeof(rs));
	rc = binlog_pos(x->bdb, &bp, e);
	if (!rc && !x->final_pos) {
		/* --resume: blue must hold nothing green lacks. */
		char *gs = NULL, *bs = NULL, why[400];
		int nf = 0;
		if (db_flavor(x->bdb) == DB_FLAVOR_MARIADB &&
		    (rc = query_text(x->bdb, "SELECT @@GLOBAL.gtid_binlog_state", &bs, e)) == 0 &&
		    (rc = query_text(x->gdb, "SELECT @@GLOBAL.gtid_binlog_state", &gs, e)) == 0 &&
		    (rc = cutover_foreign_gtids(bs, gs, &nf, why, sizeof(why), e)) == 0 && nf)
			rc = err_set(e, ERR_REPLICATION,
				     "blue '%s' has transactions green lacks: %s", x->rep->from, why);
		free(gs);
		free(bs);
		if (!rc)
			x->final_pos = xstrdup(bp);
	} else if (!rc && strcmp(bp, x->final_pos) != 0) {
		rc = err_set(e, ERR_REPLICATION,
			     "blue '%s' took writes after its final position '%.200s' (now '%.200s'): "
			     "they are not on green; reconcile them before blue can replicate",
			     x->rep->from, x->final_pos, bp);
	}
	if (!rc)
		rc = exec_stmt(x->bdb, DIALECT_STOP_REPLICA, e);
	if (!rc)
		rc = exec_stmt(x->bdb, DIALECT_RESET_REPLICA_ALL, e);
	if (!rc)
		rc = set_slave_pos(x->bdb, x->final_pos, e);
	if (!rc)
		rc = attach(x, x->bdb, &x->green, e);
	if (!rc)
		rc = exec_stmt(x->bdb, DIALECT_START_REPLICA, e);
	/* Both threads should come up; an error (wrong password, errant
	 * GTID) shows within a second or two. */
	until = mono_s() + REATTACH_WAIT_S;
	while (!rc) {
		db_replica_status_release(&rs);
		if ((rc = db_replica_status(x->bdb, &rs, e)) != 0)
			break;
		if (rs.last_io_errno || rs.last_sql_errno) {
			rc = err_set(e, ERR_REPLICATION, "blue '%s' does not replicate from green: %s",
				     x->rep->from, rs.last_io_errno ? rs.last_io_error : rs.last_sql_error);
			break;
		}
		if ((rs.io_running && rs.sql_running) || mono_s() >= until)
			break;
		sleep_ms(20);
	}
	if (rc)
		step_end(x, s, "failed", "%s", e->msg);
	else
		step_end(x, s, "ok", "blue replicates from %s after %.200s: io=%s sql=%s",
			 x->rep->to, x->final_pos, rs.io_state_raw, rs.sql_running ? "Yes" : "No");
	db_replica_status_release(&rs);
	free(bp);
	free(gp);
	return rc;
}

static int step_topology(struct cx *x, struct err *e)
{
	struct cutover_step *s = step_begin(x, "record_topology");
	int rc = catalog_begin(x->cat, e);

	if (!rc)
		rc = catalog_set_primary(x->cat, x->cl->name, x->rep->to, e);
	if (!rc)
		rc = catalog_server_upsert(x->cat, x->cl->name, x->rep->to, "primary",
					   NULL, NULL, -1, e);
	if (!rc)
		rc = catalog_server_upsert(x->cat, x->cl->name, x->rep->from, "replica",
					   NULL, NULL, -1, e);
	if (!rc)
		rc = catalog_commit(x->cat, e);
	else
		catalog_rollback(x->cat, NULL);
	if (rc)
		step_end(x, s, "failed", "%s", e->msg);
	else
		step_end(x, s, "ok", "catalog: primary of '%s' is %s (was %s)", x->cl->name,
			 x->rep->to, x->rep->from);
	return rc;
}

static void set_next_after_switch(struct cx *x, const char *step)
{
	char cl[200] = "";
	if (x->cfg->n_clusters > 1)
		snprintf(cl, sizeof(cl), " --cluster %.120s", x->cl->name);
	str_copy(x->rep->failed_step, sizeof(x->rep->failed_step), step);
	snprintf(x->rep->next, sizeof(x->rep->next),
		 "writes go to green %.200s now. To finish: fix the cause, then `backupctl cutover "
		 "--to %.200s%s --resume` (re-attaches blue %.200s to green and records the "
		 "topology). To roll back after that: `backupctl cutover --to %.200s%s`.",
		 x->rep->to, x->rep->to, cl, x->rep->from, x->rep->from, cl);
}

/* The write-pause sequence and what follows. */
static int execute(struct cx *x, struct err *e)
{
	struct cutover_report *r = x->rep;
	double reserve = x->timeout_s / 4;
	struct cutover_step *s;
	char msg[600];
	int rc = 0;

	if (reserve > ROLLBACK_RESERVE_MAX_S)
		reserve = ROLLBACK_RESERVE_MAX_S;

	if (x->o->resume)
		goto after_switch;

	/* Bound the wait for the global read lock SET read_only takes (a
	 * long statement on blue would hold it). */
	{
		char q[80];
		long lw = (long)ceil(x->timeout_s / 2);
		snprintf(q, sizeof(q), "SET SESSION lock_wait_timeout = %ld", lw < 1 ? 1 : lw);
		if ((rc = db_exec(x->bdb, q, e)) != 0)
			return rc;
	}

	/* The first look at open transactions after read-only must not get
	 * the cache preflight filled (see TRX_CACHE_S); waiting here costs
	 * no write time. */
	if (x->trx_read_at > 0 && mono_s() - x->trx_read_at < TRX_CACHE_S)
		sleep_ms((int)((TRX_CACHE_S - (mono_s() - x->trx_read_at)) * 1000) + 1);

	x->t_exec0 = mono_s();
	x->deadline = x->t_exec0 + x->timeout_s;
	s = step_begin(x, "blue_read_only");
	x->blue_ro = true;   /* a failed SET may still have applied: undo it too */
	rc = exec_stmt(x->bdb, DIALECT_SET_READ_ONLY, e);
	if (rc) {
		step_end(x, s, "failed", "%s", e->msg);
		goto rollback;
	}
	step_end(x, s, "ok", "blue %s read-only", r->from);

	if ((rc = step_write_transactions(x, e)) != 0)
		goto rollback;

	s = step_begin(x, "blue_final_position");
	rc = binlog_pos(x->bdb, &x->final_pos, e);
	if (rc) {
		step_end(x, s, "failed", "%s", e->msg);
		goto rollback;
	}
	step_end(x, s, "ok", "%.400s", x->final_pos);

	if (aborted(x)) {
		rc = err_set(e, ERR_ABORTED, "cutover interrupted");
		goto rollback;
	}
	if ((rc = step_catch_up(x, reserve, e)) != 0)
		goto rollback;
	if (aborted(x)) {
		rc = err_set(e, ERR_ABORTED, "cutover interrupted");
		goto rollback;
	}

	s = step_begin(x, "green_stop_replication");
	rc = exec_stmt(x->gdb, DIALECT_STOP_REPLICA, e);
	if (!rc) {
		/* A privileged session writing on blue between the catch-up and
		 * this STOP would leave green without it: look once more, while
		 * green can still resume replicating. */
		char *again = NULL;
		x->green_stopped = true;
		rc = binlog_pos(x->bdb, &again, e);
		if (!rc && strcmp(again, x->final_pos) != 0)
			rc = err_set(e, ERR_REFUSED,
				     "blue '%s' took a write while read-only (a session with READ_ONLY ADMIN "
				     "or SUPER): position moved from '%.200s' to '%.200s'",
				     r->from, x->final_pos, again);
		free(again);
	}
	if (!rc)
		rc = exec_stmt(x->gdb, DIALECT_RESET_REPLICA_ALL, e);
	if (rc) {
		step_end(x, s, "failed", "%s", e->msg);
		goto rollback;
	}
	x->green_reset = true;
	step_end(x, s, "ok", "replication stopped and reset");

	s = step_begin(x, "green_writable");
	rc = exec_stmt(x->gdb, DIALECT_CLEAR_READ_ONLY, e);
	x->green_writable = true;   /* a failed SET may still have applied */
	if (rc) {
		step_end(x, s, "failed", "%s", e->msg);
		goto rollback;
	}
	step_end(x, s, "ok", "green %s writable", r->to);

	if (aborted(x)) {
		rc = err_set(e, ERR_ABORTED, "cutover interrupted");
		goto rollback;
	}
	s = step_begin(x, "switch_traffic");
	x->switch_touched = true;
	rc = switch_traffic(x, false, x->deadline - reserve, msg, sizeof(msg), e);
	if (rc) {
		step_end(x, s, "failed", "%s", e->msg);
		goto rollback;
	}
	r->write_pause_ms = (mono_s() - x->t_exec0) * 1e3;
	step_end(x, s, "ok", "%s", msg);
	log_info(MOD, "writer of '%s' is now %s; write pause %.1f ms", x->cl->name, r->to,
		 r->write_pause_ms);

	{
		struct err fe;
		err_init(&fe);
		if (steps_flush(x, &fe) != 0)
			log_error(MOD, "%s", fe.msg);
		json_t *p = json_pack("{s:s, s:f, s:o}", "phase", "write_pause",
				      "write_pause_ms", round(r->write_pause_ms * 10) / 10,
				      "steps", steps_json(r, 1, r->n_steps));
		event(x, "cutover.step", "info", p);
	}

after_switch:
	if ((rc = step_reverse(x, e)) != 0) {
		set_next_after_switch(x, "blue_replicates_from_green");
		return rc;
	}
	{
		struct err fe;
		err_init(&fe);
		if (steps_flush(x, &fe) != 0)
			log_error(MOD, "%s", fe.msg);
		const struct cutover_step *last = &r->steps[r->n_steps - 1];
		event(x, "cutover.step", "info",
		      json_pack("{s:s, s:s, s:f}", "phase", "reverse_replication",
				"message", last->message, "ms", round(last->duration_ms)));
	}
	if ((rc = step_topology(x, e)) != 0) {
		set_next_after_switch(x, "record_topology");
		return rc;
	}
	return 0;

rollback:
	{
		struct err re, orig = *e;
		int rrc;

		err_init(&re);
		log_error(MOD, "cutover of '%s' to %s failed before the traffic switch: %s; rolling back",
			  x->cl->name, r->to, e->msg);
		rrc = rollback(x, &re);
		if (rrc == 0) {
			r->result = "rolled_back";
			err_prefix(e, "cutover rolled back (blue %s writable again, green replicating "
				   "from it): ", r->from);
		} else {
			r->result = "rollback_failed";
			str_copy(r->failed_step, sizeof(r->failed_step),
				 r->steps[r->n_steps - 1].name);
			snprintf(r->next, sizeof(r->next),
				 "ROLLBACK INCOMPLETE at %s: %.400s. Check `backupctl status` and HAProxy; "
				 "blue %.200s must be writable (SET GLOBAL read_only = 0) and the only "
				 "writer, green %.200s read-only and replicating from blue.",
				 r->failed_step, re.msg, r->from, r->to);
			err_init(e);
			err_set(e, orig.code, "cutover failed (%s) and its rollback failed at %s: %s",
				orig.msg, r->failed_step, re.msg);
		}
		return rc ? rc : orig.code;
	}
}

/* ------------------------------------------------------------------ run */

static int resolve(struct cx *x, struct err *e)
{
	const struct cfg_cluster *cl = x->cl;
	struct cutover_report *r = x->rep;
	bool from_cat = false;
	int rc;

	if (!x->o->to || !*x->o->to)
		return err_set(e, ERR_USAGE, "cutover needs --to SERVER");
	{
		struct err pe;
		err_init(&pe);
		if (cfg_addr_parse(x->o->to, &x->green, &pe) != 0)
			return err_set(e, ERR_USAGE, "--to: %s", pe.msg);
	}
	if (!cutover_is_cluster_server(cl, &x->green))
		return err_set(e, ERR_NOT_FOUND,
			       "'%s' is not a server of cluster '%s' (its primary or one of its replicas)",
			       x->o->to, cl->name);
	if ((rc = cutover_effective_primary(cl, x->cat, &x->blue, &from_cat, e)) != 0)
		return rc;
	r->from_catalog = from_cat;
	cfg_addr_format(&x->blue, r->from, sizeof(r->from));
	cfg_addr_format(&x->green, r->to, sizeof(r->to));
	if (cfg_addr_equal(&x->blue, &x->green))
		return err_set(e, ERR_REFUSED, "'%s' is already the primary of '%s'%s", r->to,
			       cl->name, from_cat ? " (catalog topology)" : " (config)");
	return 0;
}

json_t *cutover_report_json(const struct cutover_report *r)
{
	json_t *o = json_object(), *checks = json_array(), *plan = json_array();

	json_object_set_new(o, "cluster", json_string(r->cluster));
	json_object_set_new(o, "from", json_string(r->from));
	json_object_set_new(o, "to", json_string(r->to));
	json_object_set_new(o, "from_source", json_string(r->from_catalog ? "catalog" : "config"));
	json_object_set_new(o, "traffic_switch", json_string(r->traffic_switch ? r->traffic_switch : "none"));
	json_object_set_new(o, "dry_run", json_boolean(r->dry_run));
	json_object_set_new(o, "resume", json_boolean(r->resume));
	json_object_set_new(o, "cutover_id", r->cutover_id >= 0 ? json_integer(r->cutover_id) : json_null());
	json_object_set_new(o, "result", json_string(r->result ? r->result : "failed"));
	json_object_set_new(o, "preflight_ok", json_boolean(r->preflight_ok));
	for (size_t i = 0; i < r->n_checks; i++) {
		const struct cutover_check *c = &r->checks[i];
		json_array_append_new(checks, json_pack("{s:s, s:b, s:b, s:s, s:s}",
							"name", c->name, "pass", c->pass,
							"skipped", c->skipped, "value", c->value,
							"limit", c->limit));
	}
	json_object_set_new(o, "checks", checks);
	for (size_t i = 0; i < r->n_plan; i++)
		json_array_append_new(plan, json_string(r->plan[i]));
	json_object_set_new(o, "plan", plan);
	json_object_set_new(o, "steps", steps_json(r, 0, r->n_steps));
	json_object_set_new(o, "write_pause_ms", r->write_pause_ms >= 0
			    ? json_real(round(r->write_pause_ms * 10) / 10) : json_null());
	json_object_set_new(o, "gtid_at_switch", r->gtid_at_switch[0] ? json_string(r->gtid_at_switch) : json_null());
	json_object_set_new(o, "failed_step", r->failed_step[0] ? json_string(r->failed_step) : json_null());
	json_object_set_new(o, "next", r->next[0] ? json_string(r->next) : json_null());
	json_object_set_new(o, "error", err_is_set(&r->error) ? json_string(r->error.msg) : json_null());
	return o;
}

static json_t *checks_brief(const struct cutover_report *r)
{
	json_t *o = json_object();
	for (size_t i = 0; i < r->n_checks; i++)
		json_object_set_new(o, r->checks[i].name,
				    json_string(r->checks[i].skipped ? "skipped"
						: r->checks[i].pass ? "pass" : "FAIL"));
	return o;
}

int cutover_run(const struct config *cfg, const struct cfg_cluster *cl,
		struct catalog *cat, const struct cutover_opts *o,
		struct cutover_report *rep, struct err *e)
{
	struct cx x;
	struct err fe;
	int rc;

	memset(rep, 0, sizeof(*rep));
	rep->cutover_id = -1;
	rep->write_pause_ms = -1;
	rep->dry_run = o->dry_run;
	rep->resume = o->resume;
	rep->result = "failed";
	rep->traffic_switch = cl->switch_hook ? "hook" : cl->haproxy_socket ? "haproxy" : "none";
	str_copy(rep->cluster, sizeof(rep->cluster), cl->name);
	err_init(&rep->error);

	memset(&x, 0, sizeof(x));
	x.cfg = cfg;
	x.cl = cl;
	x.cat = cat;
	x.o = o;
	x.rep = rep;
	x.job_id = -1;
	x.timeout_s = o->timeout_s > 0 ? o->timeout_s : CUTOVER_TIMEOUT_DEFAULT_S;
	x.max_lag_s = o->max_lag_s > 0 ? o->max_lag_s : CUTOVER_MAX_LAG_DEFAULT_S;
	x.max_trx_s = o->max_trx_s > 0 ? o->max_trx_s : CUTOVER_MAX_TRX_DEFAULT_S;
	x.trx_wait_s = o->trx_wait_s > 0 ? o->trx_wait_s : CUTOVER_TRX_WAIT_DEFAULT_S;
	x.max_snap_h = o->max_snapshot_age_h > 0 ? o->max_snapshot_age_h
		       : o->max_snapshot_age_h < 0 ? -1 : CUTOVER_MAX_SNAPSHOT_AGE_DEFAULT_H;
	if (o->dry_run && o->resume) {
		rc = err_set(e, ERR_USAGE, "--dry-run and --resume exclude each other");
		goto out;
	}

	if ((rc = resolve(&x, e)) != 0)
		goto out;
	if (o->job_id > 0) {
		x.job_id = o->job_id;
	} else if (!o->dry_run) {
		if ((rc = catalog_job_reap(cat, NULL, e)) != 0 ||
		    (rc = catalog_job_start_ex(cat, "cutover", cl->name,
					       o->trigger ? o->trigger : "manual", NULL,
					       rep->to, &x.job_id, e)) != 0)
			goto out;
	}
	if ((rc = row_insert(&x, e)) != 0)
		goto out;

	{
		struct cutover_step *s = step_begin(&x, "preflight");
		if (o->resume)
			preflight_resume(&x);
		else
			preflight(&x);
		make_plan(&x);
		size_t failed = 0;
		for (size_t i = 0; i < rep->n_checks; i++)
			failed += !rep->checks[i].pass;
		step_end(&x, s, rep->preflight_ok ? "ok" : "failed", "%zu checks, %zu failed",
			 rep->n_checks, failed);
	}
	if (!rep->preflight_ok) {
		struct buf b;
		buf_init(&b, 4096);
		for (size_t i = 0; i < rep->n_checks; i++)
			if (!rep->checks[i].pass)
				buf_printf(&b, NULL, "%s%s (%s)", b.len ? "; " : "",
					   rep->checks[i].name, rep->checks[i].value);
		rc = err_set(e, ERR_REFUSED, "cutover preflight failed, nothing changed: %s", b.data);
		buf_release(&b);
		rep->result = "preflight_failed";
		event(&x, "cutover.failed", "warn",
		      json_pack("{s:s, s:s, s:o}", "phase", "preflight", "error", e->msg,
				"checks", checks_brief(rep)));
		goto out;
	}
	if (o->dry_run) {
		rep->result = "dry_run";
		goto out;
	}

	event(&x, "cutover.started", "info",
	      json_pack("{s:s, s:f, s:o, s:s}", "phase", "preflight passed",
			"timeout_s", x.timeout_s, "checks", checks_brief(rep),
			"switch", rep->traffic_switch));
	err_init(&fe);
	if (steps_flush(&x, &fe) != 0)
		log_error(MOD, "%s", fe.msg);

	rc = execute(&x, e);
	if (rc == 0) {
		rep->result = "ok";
		event(&x, "cutover.done", "info",
		      json_pack("{s:o, s:s}", "write_pause_ms",
				rep->write_pause_ms >= 0 ? json_real(round(rep->write_pause_ms * 10) / 10)
				: json_null(),
				"gtid", rep->gtid_at_switch));
	} else if (strcmp(rep->result, "rolled_back") == 0 ||
		   strcmp(rep->result, "rollback_failed") == 0) {
		bool ok = strcmp(rep->result, "rolled_back") == 0;
		event(&x, "cutover.rolled_back", ok ? "error" : "crit",
		      json_pack("{s:s, s:o, s:s, s:s}", "error", e->msg, "write_pause_ms",
				rep->write_pause_ms >= 0 ? json_real(round(rep->write_pause_ms * 10) / 10)
				: json_null(),
				"failed_step", rep->failed_step[0] ? rep->failed_step
				: (rep->n_steps ? rep->steps[rep->n_steps - 1].name : ""),
				"next", rep->next));
	} else {
		rep->result = "failed";
		event(&x, "cutover.failed", "crit",
		      json_pack("{s:s, s:s, s:s, s:o}", "error", e->msg, "failed_step",
				rep->failed_step, "next", rep->next, "write_pause_ms",
				rep->write_pause_ms >= 0 ? json_real(round(rep->write_pause_ms * 10) / 10)
				: json_null()));
	}

out:
	if (rc)
		rep->error = *e;
	if (x.cat && rep->cutover_id >= 0) {
		const char *res = strcmp(rep->result, "ok") == 0 || strcmp(rep->result, "dry_run") == 0
				  ? "ok" : strcmp(rep->result, "rolled_back") == 0 ? "rolled_back" : "failed";
		err_init(&fe);
		if (steps_flush(&x, &fe) != 0 || row_finish(&x, res, rc ? e : NULL, &fe) != 0)
			log_error(MOD, "%s", fe.msg);
	}
	if (x.job_id > 0 && o->job_id <= 0) {
		err_init(&fe);
		if (catalog_job_finish(cat, x.job_id, rc ? "failed" : "ok", rc ? e : NULL, &fe) != 0)
			log_error(MOD, "%s", fe.msg);
	}
	db_close(x.bdb);
	db_close(x.gdb);
	free(x.final_pos);
	return rc;
}

/* ------------------------------------------------------------------ last cutover */

int cutover_last_json(struct catalog *cat, const char *cluster, json_t **out,
		      struct err *e)
{
	sqlite3_stmt *st = NULL;
	int rc = 0, s;

	*out = NULL;
	if (sqlite3_prepare_v2(catalog_sqlite(cat),
			       "SELECT id, from_server, to_server, result, dry_run, started_at, "
			       "finished_at, write_pause_ms, error_message FROM cutovers "
			       "WHERE cluster = ? AND dry_run = 0 ORDER BY started_at DESC, id DESC LIMIT 1",
			       -1, &st, NULL) != SQLITE_OK)
		return catalog_error(cat, "unable to read cutovers", e);
	sqlite3_bind_text(st, 1, cluster, -1, SQLITE_TRANSIENT);
	s = sqlite3_step(st);
	if (s == SQLITE_ROW) {
		char a[40], b[40];
		catalog_time_iso(sqlite3_column_double(st, 5), false, a, sizeof(a));
		catalog_time_iso(sqlite3_column_double(st, 6), false, b, sizeof(b));
		json_t *o = json_object();
		json_object_set_new(o, "id", json_integer(sqlite3_column_int64(st, 0)));
		json_object_set_new(o, "from", json_string((const char *)sqlite3_column_text(st, 1)));
		json_object_set_new(o, "to", json_string((const char *)sqlite3_column_text(st, 2)));
		json_object_set_new(o, "result", json_string((const char *)sqlite3_column_text(st, 3)));
		json_object_set_new(o, "started_at", json_string(a));
		json_object_set_new(o, "finished_at", b[0] ? json_string(b) : json_null());
		json_object_set_new(o, "write_pause_ms", sqlite3_column_type(st, 7) == SQLITE_NULL
				    ? json_null() : json_integer(sqlite3_column_int64(st, 7)));
		json_object_set_new(o, "error", sqlite3_column_type(st, 8) == SQLITE_NULL ? json_null()
				    : json_string((const char *)sqlite3_column_text(st, 8)));
		*out = o;
	} else if (s != SQLITE_DONE) {
		rc = catalog_error(cat, "unable to read cutovers", e);
	}
	sqlite3_finalize(st);
	return rc;
}

/* ------------------------------------------------------------------ canary and weights */

int cutover_canary_weight(int pct, int others_weight, int *weight, struct err *e)
{
	long w;

	*weight = 0;
	if (pct < 0 || pct > 99)
		return err_set(e, ERR_USAGE,
			       "canary share %d%% is outside 0..99 (0 undoes; 100%% of the reads is a switch, not a canary)",
			       pct);
	if (pct == 0)
		return 0;
	if (others_weight <= 0)
		return err_set(e, ERR_REFUSED,
			       "the other servers of the backend carry no weight: any weight would send 100%% of the reads");
	w = lround((double)pct * others_weight / (100.0 - pct));
	if (w < 1)
		w = 1;
	if (w > HAPROXY_WEIGHT_MAX)
		return err_set(e, ERR_REFUSED,
			       "a %d%% share next to a total weight of %d needs weight %ld, above HAProxy's %d: lower the other servers' weights",
			       pct, others_weight, w, HAPROXY_WEIGHT_MAX);
	*weight = (int)w;
	return 0;
}

static bool serves(const struct haproxy_server *s)
{
	return !haproxy_in_maint(s) && !(s->admin_state & HAPROXY_ADMF_DRAIN);
}

static json_t *backend_json(const struct cfg_cluster *c, const char *backend,
			    const struct haproxy_server *s, size_t n)
{
	json_t *o = json_object(), *arr = json_array();
	long total = 0;

	for (size_t i = 0; i < n; i++)
		if (strcmp(s[i].backend, backend) == 0 && serves(&s[i]))
			total += s[i].weight;
	for (size_t i = 0; i < n; i++) {
		char addr[300];
		struct cfg_addr a;
		if (strcmp(s[i].backend, backend) != 0)
			continue;
		memset(&a, 0, sizeof(a));
		str_copy(a.host, sizeof(a.host), s[i].addr);
		a.port = s[i].port;
		cfg_addr_format(&a, addr, sizeof(addr));
		json_array_append_new(arr, json_pack(
			"{s:s, s:s, s:s, s:s, s:i, s:i, s:f, s:b}",
			"name", s[i].name, "address", addr,
			"state", haproxy_admin_state_name(s[i].admin_state),
			"operational", haproxy_op_state_name(s[i].op_state),
			"weight", s[i].weight, "initial_weight", s[i].initial_weight,
			"share_pct", serves(&s[i]) && total > 0
				? round(1000.0 * s[i].weight / (double)total) / 10 : 0.0,
			"cluster_server", c ? cutover_is_cluster_server(c, &a) : false));
	}
	json_object_set_new(o, "backend", json_string(backend));
	json_object_set_new(o, "servers", arr);
	return o;
}

int cutover_haproxy_weights(const struct cfg_cluster *c, json_t **out,
			    struct err *e)
{
	struct haproxy_server *s = NULL;
	size_t n = 0;
	int rc;

	*out = NULL;
	if (!c->haproxy_socket)
		return 0;
	if ((rc = haproxy_servers_state(c->haproxy_socket, NULL, 0, &s, &n, e)) != 0)
		return rc;
	json_t *o = json_object();
	json_object_set_new(o, "socket", json_string(c->haproxy_socket));
	json_object_set_new(o, "writer", c->haproxy_backend ? backend_json(c, c->haproxy_backend, s, n)
			    : json_null());
	json_object_set_new(o, "read", c->haproxy_read_backend
			    ? backend_json(c, c->haproxy_read_backend, s, n) : json_null());
	free(s);
	*out = o;
	return 0;
}

int cutover_canary(const struct cfg_cluster *cl, struct catalog *cat,
		   const char *to, int pct, const char *backend, json_t **out,
		   struct err *e)
{
	struct haproxy_server *s = NULL;
	const struct haproxy_server *g;
	struct cfg_addr a;
	size_t n = 0;
	long others = 0;
	int w = 0, before, rc;

	*out = NULL;
	if (!backend)
		backend = cl->haproxy_read_backend;
	if (!cl->haproxy_socket)
		return err_set(e, ERR_CONFIG, "cluster '%s' has no haproxy_socket: canary needs HAProxy",
			       cl->name);
	if (!backend)
		return err_set(e, ERR_USAGE,
			       "cluster '%s' has no haproxy_read_backend: name the backend with --backend",
			       cl->name);
	if (pct < 0 || pct > 99)
		return cutover_canary_weight(pct, 1, &w, e);
	{
		struct err pe;
		err_init(&pe);
		if (!to || cfg_addr_parse(to, &a, &pe) != 0)
			return err_set(e, ERR_USAGE, "--to: %s", to ? pe.msg : "missing");
	}
	if ((rc = haproxy_servers_state(cl->haproxy_socket, backend, 0, &s, &n, e)) != 0)
		return rc;
	g = haproxy_find_server(s, n, backend, a.host, a.port);
	if (!g) {
		rc = err_set(e, ERR_NOT_FOUND, "haproxy backend '%s' has no server at '%s'", backend, to);
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		if (&s[i] != g && serves(&s[i]))
			others += s[i].weight;
	if ((rc = cutover_canary_weight(pct, (int)(others > 1000000 ? 1000000 : others), &w,
					e)) != 0)
		goto out;
	before = g->weight;
	char srv[HAPROXY_NAME_MAX];
	str_copy(srv, sizeof(srv), g->name);
	if ((rc = haproxy_set_weight(cl->haproxy_socket, backend, srv, w, 0, e)) != 0)
		goto out;
	log_info(MOD, "canary: %s/%s weight %d -> %d (%d%% of %s)", backend, srv, before, w,
		 pct, backend);
	free(s);
	s = NULL;
	if ((rc = haproxy_servers_state(cl->haproxy_socket, backend, 0, &s, &n, e)) != 0)
		goto out;
	*out = backend_json(cl, backend, s, n);
	json_object_set_new(*out, "server", json_string(srv));
	json_object_set_new(*out, "address", json_string(to));
	json_object_set_new(*out, "weight", json_integer(w));
	json_object_set_new(*out, "previous_weight", json_integer(before));
	json_object_set_new(*out, "requested_pct", json_integer(pct));
	if (cat) {
		json_t *p = json_pack("{s:s, s:s, s:i, s:i, s:i}", "backend", backend, "server", srv,
				      "weight", w, "previous_weight", before, "share_pct", pct);
		char *text = json_dumps(p, JSON_COMPACT | JSON_REAL_PRECISION(10));
		struct err ee;
		err_init(&ee);
		if (!text || catalog_event_add(cat, cl->name, to, "canary.weight", "info", text,
					       NULL, &ee) != 0)
			log_warn(MOD, "unable to add the canary event: %s", ee.msg);
		free(text);
		json_decref(p);
	}
out:
	free(s);
	return rc;
}
