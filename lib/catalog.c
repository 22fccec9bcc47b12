/* SQLite catalog: opening and migrating the file, transactions, and the
 * shared helpers for jobs, the notification outbox, topology and snapshots.
 * Modules with their own tables (lag, restores, drills, cutovers, schedules)
 * run their own bound queries on catalog_sqlite().
 *
 * Threading: one owner thread per struct catalog connection; other threads
 * open their own connection or hand work to the owner. */
#include "catalog.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "log.h"
#include "mem.h"

/* Defined by build/gen/migrations.c (scripts/embed-sql.sh). Until that
 * script emits `struct catalog_migration` itself, its anonymous struct has
 * the same layout as this one. */
extern const struct catalog_migration catalog_migrations[];
extern const size_t catalog_migrations_count;

#define CATALOG_BUSY_TIMEOUT_MS 5000
/* STRICT tables need 3.37; json_valid() is built in from 3.38. */
#define CATALOG_SQLITE_MIN 3038000

struct catalog {
	sqlite3 *db;
	char *path;
};

static const char *const job_kinds[] = {
	"snapshot", "verify", "prune", "drill", "restore", "rebuild", "cutover",
	NULL
};
static const char *const job_triggers[] = {
	"manual", "schedule", "daemon", NULL
};
static const char *const job_end_states[] = {
	"ok", "failed", "skipped", "aborted", NULL
};
static const char *const severities[] = {
	"info", "warn", "error", "crit", NULL
};
static const char *const server_roles[] = {
	"primary", "replica", "drill", "spare", NULL
};

static bool in_list(const char *s, const char *const *list)
{
	if (!s)
		return false;
	for (; *list; list++)
		if (strcmp(s, *list) == 0)
			return true;
	return false;
}

static const char *or_null(const char *s)
{
	return s ? s : "(null)";
}

int catalog_error(struct catalog *c, const char *op, struct err *e)
{
	const char *msg = c->db ? sqlite3_errmsg(c->db) : "out of memory";

	if (err_is_set(e))
		return e->code;
	err_set(e, ERR_CATALOG, "%s in catalog '%s': %s", op, c->path, msg);
	if (e && c->db) {
		e->db_errno = (unsigned)sqlite3_extended_errcode(c->db);
		e->sys_errno = sqlite3_system_errno(c->db);
	}
	return ERR_CATALOG;
}

static void err_copy(struct err *dst, const struct err *src)
{
	if (dst && !err_is_set(dst))
		*dst = *src;
}

/* Binds positional parameters by a type string: s text (NULL binds NULL),
 * i int64, I int64 or NULL when < 0, n int64 or NULL when 0, d double,
 * D double or NULL when <= 0. Every i/I/n argument must be an int64_t. */
static int bind_va(sqlite3_stmt *st, const char *types, va_list ap)
{
	int rc = SQLITE_OK;

	for (int i = 0; types[i] && rc == SQLITE_OK; i++) {
		int idx = i + 1;
		switch (types[i]) {
		case 's': {
			const char *s = va_arg(ap, const char *);
			rc = s ? sqlite3_bind_text(st, idx, s, -1, SQLITE_STATIC)
			       : sqlite3_bind_null(st, idx);
			break;
		}
		case 'i':
			rc = sqlite3_bind_int64(st, idx, va_arg(ap, int64_t));
			break;
		case 'I': {
			int64_t v = va_arg(ap, int64_t);
			rc = v < 0 ? sqlite3_bind_null(st, idx)
				   : sqlite3_bind_int64(st, idx, v);
			break;
		}
		case 'n': {
			int64_t v = va_arg(ap, int64_t);
			rc = v == 0 ? sqlite3_bind_null(st, idx)
				    : sqlite3_bind_int64(st, idx, v);
			break;
		}
		case 'd':
			rc = sqlite3_bind_double(st, idx, va_arg(ap, double));
			break;
		case 'D': {
			double v = va_arg(ap, double);
			rc = v > 0 ? sqlite3_bind_double(st, idx, v)
				   : sqlite3_bind_null(st, idx);
			break;
		}
		default:
			rc = SQLITE_MISUSE;
			break;
		}
	}
	return rc;
}

static int stmt_vopen(struct catalog *c, sqlite3_stmt **st, const char *op,
		      struct err *e, const char *sql, const char *types,
		      va_list ap)
{
	*st = NULL;
	if (sqlite3_prepare_v2(c->db, sql, -1, st, NULL) != SQLITE_OK)
		return catalog_error(c, op, e);
	/* A missing argument would silently bind NULL. */
	if ((size_t)sqlite3_bind_parameter_count(*st) != strlen(types)) {
		err_set(e, ERR_CATALOG, "%s in catalog '%s': statement takes %d "
			"parameters, %zu given (a bug)", op, c->path,
			sqlite3_bind_parameter_count(*st), strlen(types));
		sqlite3_finalize(*st);
		*st = NULL;
		return ERR_CATALOG;
	}
	if (bind_va(*st, types, ap) != SQLITE_OK) {
		catalog_error(c, op, e);
		sqlite3_finalize(*st);
		*st = NULL;
		return ERR_CATALOG;
	}
	return 0;
}

/* Prepares sql and binds the arguments; the caller steps and finalizes. */
static int stmt_open(struct catalog *c, sqlite3_stmt **st, const char *op,
		     struct err *e, const char *sql, const char *types, ...)
{
	va_list ap;
	int rc;

	va_start(ap, types);
	rc = stmt_vopen(c, st, op, e, sql, types, ap);
	va_end(ap);
	return rc;
}

/* Runs one statement to completion; *changes (may be NULL) gets the number
 * of rows it changed. */
static int run(struct catalog *c, const char *op, struct err *e, int *changes,
	       const char *sql, const char *types, ...)
{
	sqlite3_stmt *st;
	va_list ap;
	int rc;

	va_start(ap, types);
	rc = stmt_vopen(c, &st, op, e, sql, types, ap);
	va_end(ap);
	if (rc)
		return rc;
	do
		rc = sqlite3_step(st);
	while (rc == SQLITE_ROW);
	if (rc != SQLITE_DONE) {
		catalog_error(c, op, e);
		sqlite3_finalize(st);
		return ERR_CATALOG;
	}
	if (changes)
		*changes = sqlite3_changes(c->db);
	sqlite3_finalize(st);
	return 0;
}

static int exec_sql(struct catalog *c, const char *sql, const char *op,
		    struct err *e)
{
	char *msg = NULL;

	if (sqlite3_exec(c->db, sql, NULL, NULL, &msg) == SQLITE_OK)
		return 0;
	err_set(e, ERR_CATALOG, "%s in catalog '%s': %s", op, c->path,
		msg ? msg : sqlite3_errmsg(c->db));
	if (e && e->code == ERR_CATALOG && e->db_errno == 0)
		e->db_errno = (unsigned)sqlite3_extended_errcode(c->db);
	sqlite3_free(msg);
	return e && e->code ? e->code : ERR_CATALOG;
}

/* A helper that writes several statements joins the caller's transaction
 * through a savepoint, or runs its own when there is none. */
static int tx_enter(struct catalog *c, bool *own, struct err *e)
{
	*own = sqlite3_get_autocommit(c->db) != 0;
	return exec_sql(c, *own ? "BEGIN IMMEDIATE" : "SAVEPOINT catalog_helper",
			"unable to begin transaction", e);
}

static int tx_leave(struct catalog *c, bool own, int rc, struct err *e)
{
	if (rc == 0) {
		rc = exec_sql(c, own ? "COMMIT" : "RELEASE catalog_helper",
			      "unable to commit transaction", e);
		if (rc == 0)
			return 0;
	}
	/* Some errors (I/O, full disk) already rolled the whole transaction
	 * back; then these fail harmlessly. */
	if (own) {
		sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
	} else {
		sqlite3_exec(c->db, "ROLLBACK TO catalog_helper", NULL, NULL, NULL);
		sqlite3_exec(c->db, "RELEASE catalog_helper", NULL, NULL, NULL);
	}
	return rc;
}

static char *col_str(sqlite3_stmt *st, int i)
{
	const unsigned char *s = sqlite3_column_text(st, i);
	return s && sqlite3_column_type(st, i) != SQLITE_NULL
		? xstrdup((const char *)s) : NULL;
}

static int64_t col_i64(sqlite3_stmt *st, int i, int64_t if_null)
{
	return sqlite3_column_type(st, i) == SQLITE_NULL
		? if_null : sqlite3_column_int64(st, i);
}

static double col_time(sqlite3_stmt *st, int i)
{
	return sqlite3_column_type(st, i) == SQLITE_NULL
		? 0 : sqlite3_column_double(st, i);
}

typedef void (*row_fn)(sqlite3_stmt *st, void *elem);

/* Steps st to the end, decoding each row into a growing array (at most
 * CATALOG_LIST_MAX elements). Finalizes st. */
static int collect(struct catalog *c, sqlite3_stmt *st, size_t elem_size,
		   row_fn decode, void **arr, size_t *n, const char *op,
		   struct err *e)
{
	char *items = NULL;
	size_t len = 0, cap = 0;
	int rc;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (len == CATALOG_LIST_MAX) {
			err_set(e, ERR_CATALOG,
				"%s in catalog '%s': more than %d rows",
				op, c->path, CATALOG_LIST_MAX);
			rc = SQLITE_ERROR;
			break;
		}
		if (len == cap) {
			cap = cap ? cap * 2 : 16;
			items = xrealloc(items, cap * elem_size);
		}
		memset(items + len * elem_size, 0, elem_size);
		decode(st, items + len * elem_size);
		len++;
	}
	if (rc != SQLITE_DONE) {
		catalog_error(c, op, e);
		sqlite3_finalize(st);
		*arr = items;  /* caller frees the decoded part */
		*n = len;
		return ERR_CATALOG;
	}
	sqlite3_finalize(st);
	*arr = items;
	*n = len;
	return 0;
}

/* ---- opening and migrations ---- */

static int dir_of(const char *path, char *dir, size_t size)
{
	const char *slash = strrchr(path, '/');
	size_t len;

	if (!slash) {
		str_copy(dir, size, ".");
		return 0;
	}
	len = slash == path ? 1 : (size_t)(slash - path);
	if (len >= size)
		return -1;
	memcpy(dir, path, len);
	dir[len] = '\0';
	return 0;
}

/* mkdir -p with mode 0700 for the components that are missing; existing
 * directories keep their mode. */
static int make_dirs(const char *dir, struct err *e)
{
	char tmp[PATH_MAX];
	struct stat sb;

	if (str_copy(tmp, sizeof(tmp), dir) >= sizeof(tmp))
		return err_set(e, ERR_CATALOG, "catalog directory '%s' is too long", dir);
	for (char *p = tmp + 1; ; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char saved = *p;
		*p = '\0';
		if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
			return err_set_errno(e, ERR_CATALOG, errno,
					     "unable to create catalog directory '%s'",
					     tmp);
		*p = saved;
		if (saved == '\0')
			break;
	}
	if (stat(tmp, &sb) != 0)
		return err_set_errno(e, ERR_CATALOG, errno,
				     "unable to stat catalog directory '%s'", tmp);
	if (!S_ISDIR(sb.st_mode))
		return err_set(e, ERR_CATALOG,
			       "catalog directory '%s' is not a directory", tmp);
	return 0;
}

/* Creates the directory and an empty file (mode 0600; SQLite gives the -wal
 * and -shm files the same mode) so the catalog is never world-readable, and
 * turns "unable to open database file" into a message naming the cause. */
static int prepare_file(const char *path, struct err *e)
{
	char dir[PATH_MAX];
	struct stat sb;
	int fd;

	if (dir_of(path, dir, sizeof(dir)) != 0)
		return err_set(e, ERR_CATALOG, "catalog path '%s' is too long", path);
	if (make_dirs(dir, e) != 0)
		return e->code;
	/* WAL needs to create -wal and -shm files next to the catalog. */
	if (access(dir, W_OK | X_OK) != 0)
		return err_set_errno(e, ERR_CATALOG, errno,
				     "catalog directory '%s' is not writable", dir);
	if (stat(path, &sb) == 0) {
		if (S_ISDIR(sb.st_mode))
			return err_set(e, ERR_CATALOG,
				       "catalog '%s' is a directory", path);
		return 0;
	}
	if (errno != ENOENT)
		return err_set_errno(e, ERR_CATALOG, errno,
				     "unable to stat catalog '%s'", path);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0 && errno != EEXIST)
		return err_set_errno(e, ERR_CATALOG, errno,
				     "unable to create catalog '%s'", path);
	if (fd >= 0)
		close(fd);
	return 0;
}

static int read_user_version(struct catalog *c, int *version, struct err *e)
{
	sqlite3_stmt *st;
	int rc;

	if (stmt_open(c, &st, "unable to read schema version", e,
		      "PRAGMA user_version", "") != 0)
		return ERR_CATALOG;
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		catalog_error(c, "unable to read schema version", e);
		sqlite3_finalize(st);
		return ERR_CATALOG;
	}
	*version = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return 0;
}

static int refuse_newer(struct catalog *c, int have, int latest, struct err *e)
{
	return err_set(e, ERR_CATALOG,
		       "catalog '%s' has schema version %d but this backupd "
		       "knows only up to %d: upgrade backupd or use another catalog",
		       c->path, have, latest);
}

/* Any foreign key a migration broke (e.g. while rebuilding a table) fails
 * the migration rather than surfacing later. */
static int check_foreign_keys(struct catalog *c, const char *name,
			      struct err *e)
{
	sqlite3_stmt *st;
	int rc;

	if (stmt_open(c, &st, "unable to check foreign keys", e,
		      "PRAGMA foreign_key_check", "") != 0)
		return ERR_CATALOG;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		err_set(e, ERR_CATALOG,
			"catalog migration '%s' leaves foreign key violations in "
			"table '%s' of catalog '%s'", name,
			(const char *)sqlite3_column_text(st, 0), c->path);
		sqlite3_finalize(st);
		return ERR_CATALOG;
	}
	if (rc != SQLITE_DONE) {
		catalog_error(c, "unable to check foreign keys", e);
		sqlite3_finalize(st);
		return ERR_CATALOG;
	}
	sqlite3_finalize(st);
	return 0;
}

/* Applies migration m inside the caller's transaction. */
static int apply_one(struct catalog *c, const struct catalog_migration *m,
		     struct err *e)
{
	char *msg = NULL;
	char pragma[64];

	if (sqlite3_exec(c->db, m->sql, NULL, NULL, &msg) != SQLITE_OK) {
		err_set(e, ERR_CATALOG,
			"unable to apply catalog migration '%s' to '%s': %s",
			m->name, c->path, msg ? msg : sqlite3_errmsg(c->db));
		if (e && e->db_errno == 0)
			e->db_errno = (unsigned)sqlite3_extended_errcode(c->db);
		sqlite3_free(msg);
		return ERR_CATALOG;
	}
	if (check_foreign_keys(c, m->name, e) != 0)
		return ERR_CATALOG;
	/* PRAGMA takes no bound parameters; the value is our own integer. */
	snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %d", m->version);
	return exec_sql(c, pragma, "unable to set schema version", e);
}

static int migrate(struct catalog *c, const struct catalog_migration *m,
		   size_t n, struct err *e)
{
	int latest = n ? m[n - 1].version : 0;
	int version;

	for (size_t i = 0; i < n; i++)
		if (m[i].version != (int)i + 1)
			return err_set(e, ERR_INTERNAL,
				       "catalog migration '%s' has version %d, "
				       "expected %zu", m[i].name, m[i].version,
				       i + 1);
	if (read_user_version(c, &version, e) != 0)
		return ERR_CATALOG;
	if (version > latest)
		return refuse_newer(c, version, latest, e);
	/* Re-read under the write lock: another process may be migrating the
	 * same file right now. */
	while (version < latest) {
		int rc;

		if (exec_sql(c, "BEGIN IMMEDIATE",
			     "unable to lock catalog for migration", e) != 0)
			return ERR_CATALOG;
		rc = read_user_version(c, &version, e);
		if (rc == 0 && version > latest)
			rc = refuse_newer(c, version, latest, e);
		if (rc == 0 && version < latest) {
			rc = apply_one(c, &m[version], e);
			if (rc == 0)
				log_info("catalog", "applied migration %s to '%s'",
					 m[version].name, c->path);
		}
		if (rc == 0)
			rc = exec_sql(c, "COMMIT",
				      "unable to commit catalog migration", e);
		if (rc != 0) {
			sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
			return rc;
		}
		if (read_user_version(c, &version, e) != 0)
			return ERR_CATALOG;
	}
	return 0;
}

static int set_pragmas(struct catalog *c, bool memory, struct err *e)
{
	sqlite3_stmt *st;
	const char *mode;
	int rc;

	sqlite3_extended_result_codes(c->db, 1);
	sqlite3_busy_timeout(c->db, CATALOG_BUSY_TIMEOUT_MS);
	/* The first statement that reads the file: a corrupt or foreign file
	 * fails here with "file is not a database". */
	if (stmt_open(c, &st, "unable to enable WAL journal", e,
		      "PRAGMA journal_mode = WAL", "") != 0)
		return ERR_CATALOG;
	/* Switching a fresh file to WAL needs an exclusive lock and SQLite
	 * does not call the busy handler for it: another process creating the
	 * same catalog gets SQLITE_BUSY at once. Retry up to the busy timeout. */
	for (int waited_ms = 0; ; waited_ms += 20) {
		struct timespec pause = { 0, 20 * 1000 * 1000 };

		rc = sqlite3_step(st);
		if ((rc & 0xff) != SQLITE_BUSY ||
		    waited_ms >= CATALOG_BUSY_TIMEOUT_MS)
			break;
		sqlite3_reset(st);
		nanosleep(&pause, NULL);
	}
	if (rc != SQLITE_ROW) {
		catalog_error(c, "unable to enable WAL journal", e);
		sqlite3_finalize(st);
		return ERR_CATALOG;
	}
	mode = (const char *)sqlite3_column_text(st, 0);
	if (!memory && (!mode || strcmp(mode, "wal") != 0)) {
		err_set(e, ERR_CATALOG,
			"catalog '%s' cannot use the WAL journal (got '%s'); "
			"put it on a local filesystem", c->path, or_null(mode));
		sqlite3_finalize(st);
		return ERR_CATALOG;
	}
	sqlite3_finalize(st);
	if (exec_sql(c, "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON",
		     "unable to set pragmas", e) != 0)
		return ERR_CATALOG;
	return 0;
}

int catalog_open_migrations(const char *path,
			    const struct catalog_migration *migrations,
			    size_t n_migrations, struct catalog **out,
			    struct err *e)
{
	struct catalog *c;
	bool memory;
	int rc;

	*out = NULL;
	if (!path || !*path)
		return err_set(e, ERR_CATALOG, "catalog path is empty");
	if (sqlite3_libversion_number() < CATALOG_SQLITE_MIN)
		return err_set(e, ERR_CATALOG,
			       "sqlite %s is too old for the catalog '%s' "
			       "(3.38 or newer needed)", sqlite3_libversion(), path);
	memory = strcmp(path, ":memory:") == 0;
	if (!memory && prepare_file(path, e) != 0)
		return e->code;

	c = xcalloc(1, sizeof(*c));
	c->path = xstrdup(path);
	rc = sqlite3_open_v2(path, &c->db,
			     SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
	if (rc != SQLITE_OK) {
		err_set(e, ERR_CATALOG, "unable to open catalog '%s': %s", path,
			c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc));
		catalog_close(c);
		return ERR_CATALOG;
	}
	if (set_pragmas(c, memory, e) != 0 ||
	    migrate(c, migrations, n_migrations, e) != 0) {
		catalog_close(c);
		return e && e->code ? e->code : ERR_CATALOG;
	}
	*out = c;
	return 0;
}

int catalog_open(const char *path, struct catalog **out, struct err *e)
{
	return catalog_open_migrations(path, catalog_migrations,
				       catalog_migrations_count, out, e);
}

void catalog_close(struct catalog *c)
{
	if (!c)
		return;
	if (c->db && sqlite3_close(c->db) != SQLITE_OK)
		log_error("catalog", "unable to close catalog '%s': %s",
			  c->path, sqlite3_errmsg(c->db));
	free(c->path);
	free(c);
}

int catalog_schema_version(struct catalog *c)
{
	int version;

	if (read_user_version(c, &version, NULL) != 0)
		return ERR_CATALOG;
	return version;
}

int catalog_latest_version(void)
{
	return catalog_migrations_count
		? catalog_migrations[catalog_migrations_count - 1].version : 0;
}

sqlite3 *catalog_sqlite(struct catalog *c)
{
	return c->db;
}

const char *catalog_path(const struct catalog *c)
{
	return c->path;
}

/* ---- transactions ---- */

bool catalog_in_transaction(struct catalog *c)
{
	return sqlite3_get_autocommit(c->db) == 0;
}

int catalog_begin(struct catalog *c, struct err *e)
{
	if (catalog_in_transaction(c))
		return err_set(e, ERR_INTERNAL,
			       "a transaction is already open on catalog '%s'",
			       c->path);
	return exec_sql(c, "BEGIN IMMEDIATE", "unable to begin transaction", e);
}

int catalog_commit(struct catalog *c, struct err *e)
{
	int rc = exec_sql(c, "COMMIT", "unable to commit transaction", e);

	if (rc != 0 && catalog_in_transaction(c))
		sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
	return rc;
}

int catalog_rollback(struct catalog *c, struct err *e)
{
	if (!catalog_in_transaction(c))
		return 0;
	return exec_sql(c, "ROLLBACK", "unable to roll back transaction", e);
}

int catalog_exec(struct catalog *c, const char *sql, struct err *e)
{
	return exec_sql(c, sql, "unable to run statement", e);
}

/* ---- time ---- */

double catalog_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int catalog_time_iso(double t, bool with_ms, char *out, size_t out_size)
{
	struct tm tm;
	time_t secs;
	size_t len;
	int ms;

	if (out_size == 0)
		return ERR_INTERNAL;
	out[0] = '\0';
	if (t <= 0)
		return 0;
	secs = (time_t)t;
	ms = (int)((t - (double)secs) * 1000.0);
	if (ms > 999)
		ms = 999;
	if (!gmtime_r(&secs, &tm))
		return ERR_INTERNAL;
	len = strftime(out, out_size, "%Y-%m-%dT%H:%M:%S", &tm);
	if (len == 0)
		return ERR_INTERNAL;
	if (with_ms) {
		if ((size_t)snprintf(out + len, out_size - len, ".%03dZ", ms)
		    >= out_size - len)
			return ERR_INTERNAL;
	} else if (len + 2 > out_size) {
		return ERR_INTERNAL;
	} else {
		out[len] = 'Z';
		out[len + 1] = '\0';
	}
	return 0;
}

/* ---- clusters, servers, topology ---- */

int catalog_cluster_ensure(struct catalog *c, const char *cluster,
			   struct err *e)
{
	if (!cluster || !*cluster)
		return err_set(e, ERR_INTERNAL, "cluster name is empty");
	return run(c, "unable to add cluster", e, NULL,
		   "INSERT INTO clusters(name, created_at) VALUES (?, ?) "
		   "ON CONFLICT(name) DO NOTHING",
		   "sd", cluster, catalog_now());
}

int catalog_server_upsert(struct catalog *c, const char *cluster,
			  const char *addr, const char *role,
			  const char *flavor, const char *version,
			  int64_t server_id, struct err *e)
{
	double now = catalog_now();
	bool own;
	int rc;

	if (!in_list(role, server_roles))
		return err_set(e, ERR_INTERNAL, "unknown server role '%s'",
			       or_null(role));
	if (!addr || !*addr)
		return err_set(e, ERR_INTERNAL, "server address is empty");
	if (tx_enter(c, &own, e) != 0)
		return ERR_CATALOG;
	rc = catalog_cluster_ensure(c, cluster, e);
	if (rc == 0)
		rc = run(c, "unable to record server", e, NULL,
			 "INSERT INTO servers(cluster, address, role, flavor, "
			 "  version, server_id, last_seen_at, created_at, updated_at) "
			 "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?7) "
			 "ON CONFLICT(cluster, address) DO UPDATE SET "
			 "  role = excluded.role, "
			 "  flavor = COALESCE(excluded.flavor, flavor), "
			 "  version = COALESCE(excluded.version, version), "
			 "  server_id = COALESCE(excluded.server_id, server_id), "
			 "  last_seen_at = excluded.last_seen_at, "
			 "  updated_at = excluded.updated_at",
			 "sssssId", cluster, addr, role, flavor, version,
			 server_id, now);
	return tx_leave(c, own, rc, e);
}

int catalog_set_primary(struct catalog *c, const char *cluster,
			const char *addr, struct err *e)
{
	bool own;
	int rc;

	if (!addr || !*addr)
		return err_set(e, ERR_INTERNAL, "primary address is empty");
	if (tx_enter(c, &own, e) != 0)
		return ERR_CATALOG;
	rc = catalog_cluster_ensure(c, cluster, e);
	/* SET expressions all see the old row, so previous_primary gets the
	 * primary being replaced. */
	if (rc == 0)
		rc = run(c, "unable to set primary", e, NULL,
			 "INSERT INTO topology(cluster, primary_addr, changed_at) "
			 "VALUES (?, ?, ?) "
			 "ON CONFLICT(cluster) DO UPDATE SET "
			 "  previous_primary = CASE WHEN primary_addr = excluded.primary_addr "
			 "    THEN previous_primary ELSE primary_addr END, "
			 "  changed_at = CASE WHEN primary_addr = excluded.primary_addr "
			 "    THEN changed_at ELSE excluded.changed_at END, "
			 "  primary_addr = excluded.primary_addr",
			 "ssd", cluster, addr, catalog_now());
	return tx_leave(c, own, rc, e);
}

int catalog_get_primary(struct catalog *c, const char *cluster, char **addr,
			struct err *e)
{
	sqlite3_stmt *st;
	int rc;

	*addr = NULL;
	if (stmt_open(c, &st, "unable to read primary", e,
		      "SELECT primary_addr FROM topology WHERE cluster = ?",
		      "s", cluster) != 0)
		return ERR_CATALOG;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*addr = col_str(st, 0);
	else if (rc != SQLITE_DONE)
		catalog_error(c, "unable to read primary", e);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : ERR_CATALOG;
}

/* ---- jobs ---- */

static bool job_keyed_by_target(const char *kind)
{
	return strcmp(kind, "restore") == 0 || strcmp(kind, "rebuild") == 0;
}

/* The insert hit jobs_one_running*: name the job that holds the slot. */
static int job_busy(struct catalog *c, const char *kind, const char *cluster,
		    const char *target, struct err *e)
{
	bool by_target = job_keyed_by_target(kind);
	const char *key = by_target ? target : cluster;
	sqlite3_stmt *st;
	int64_t id = 0, pid = 0;
	char *host = NULL;

	if (stmt_open(c, &st, "unable to find running job", e,
		      by_target
		      ? "SELECT id, pid, host FROM jobs WHERE status = 'running' "
			"AND kind = ? AND IFNULL(target, '') = IFNULL(?, '')"
		      : "SELECT id, pid, host FROM jobs WHERE status = 'running' "
			"AND kind = ? AND IFNULL(cluster, '') = IFNULL(?, '')",
		      "ss", kind, key) != 0)
		return ERR_CATALOG;
	if (sqlite3_step(st) == SQLITE_ROW) {
		id = sqlite3_column_int64(st, 0);
		pid = col_i64(st, 1, 0);
		host = col_str(st, 2);
	}
	sqlite3_finalize(st);
	err_set(e, ERR_BUSY,
		"a %s job already runs for %s '%s' (job %" PRId64 ", pid %"
		PRId64 " on '%s')", kind, by_target ? "target" : "cluster",
		key ? key : "", id, pid, host ? host : "?");
	free(host);
	return ERR_BUSY;
}

static void host_name(char *out, size_t size)
{
	if (gethostname(out, size) != 0)
		str_copy(out, size, "?");
	out[size - 1] = '\0';
}

int catalog_job_start_ex(struct catalog *c, const char *kind,
			 const char *cluster, const char *trigger,
			 const char *schedule, const char *target,
			 int64_t *job_id, struct err *e)
{
	char host[256];
	struct err tmp;

	*job_id = 0;
	if (!in_list(kind, job_kinds))
		return err_set(e, ERR_INTERNAL, "unknown job kind '%s'",
			       or_null(kind));
	if (!in_list(trigger, job_triggers))
		return err_set(e, ERR_INTERNAL, "unknown job trigger '%s'",
			       or_null(trigger));
	host_name(host, sizeof(host));
	err_init(&tmp);
	if (run(c, "unable to record job start", &tmp, NULL,
		"INSERT INTO jobs(kind, cluster, triggered_by, schedule, target, "
		"  status, started_at, pid, host) "
		"VALUES (?, ?, ?, ?, ?, 'running', ?, ?, ?)",
		"sssssdis", kind, cluster, trigger, schedule, target,
		catalog_now(), (int64_t)getpid(), host) != 0) {
		if (tmp.db_errno == SQLITE_CONSTRAINT_UNIQUE)
			return job_busy(c, kind, cluster, target, e);
		err_copy(e, &tmp);
		return tmp.code;
	}
	*job_id = sqlite3_last_insert_rowid(c->db);
	return 0;
}

int catalog_job_start(struct catalog *c, const char *kind,
		      const char *cluster, const char *trigger,
		      int64_t *job_id, struct err *e)
{
	return catalog_job_start_ex(c, kind, cluster, trigger, NULL, NULL,
				    job_id, e);
}

int catalog_job_finish(struct catalog *c, int64_t job_id, const char *status,
		       const struct err *job_err, struct err *e)
{
	bool failed = err_is_set(job_err);
	int changes = 0;

	if (!in_list(status, job_end_states))
		return err_set(e, ERR_INTERNAL, "unknown job status '%s'",
			       or_null(status));
	if (run(c, "unable to record job end", e, &changes,
		"UPDATE jobs SET status = ?, finished_at = ?, error_code = ?, "
		"  error_message = ? WHERE id = ? AND status = 'running'",
		"sdnsi", status, catalog_now(),
		(int64_t)(failed ? job_err->code : 0),
		failed ? job_err->msg : NULL, job_id) != 0)
		return ERR_CATALOG;
	if (changes == 0)
		return err_set(e, ERR_NOT_FOUND,
			       "no running job %" PRId64 " in catalog '%s'",
			       job_id, c->path);
	return 0;
}

#define REAP_MAX 10000

int catalog_job_reap(struct catalog *c, int *n_reaped, struct err *e)
{
	char host[256];
	sqlite3_stmt *st;
	int64_t *dead = NULL;
	size_t n_dead = 0, cap = 0;
	int rc = 0;

	if (n_reaped)
		*n_reaped = 0;
	host_name(host, sizeof(host));
	if (stmt_open(c, &st, "unable to list running jobs", e,
		      "SELECT id, pid FROM jobs WHERE status = 'running' "
		      "AND host = ? ORDER BY id", "s", host) != 0)
		return ERR_CATALOG;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW && n_dead < REAP_MAX) {
		int64_t pid = col_i64(st, 1, 0);

		/* kill(pid, 0) tells "gone" (ESRCH) from "not ours" (EPERM). */
		if (pid > 0 && pid <= INT_MAX && kill((pid_t)pid, 0) != 0 &&
		    errno == ESRCH) {
			if (n_dead == cap) {
				cap = cap ? cap * 2 : 8;
				dead = xrealloc(dead, cap * sizeof(*dead));
			}
			dead[n_dead++] = sqlite3_column_int64(st, 0);
		}
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		catalog_error(c, "unable to list running jobs", e);
		sqlite3_finalize(st);
		free(dead);
		return ERR_CATALOG;
	}
	sqlite3_finalize(st);
	rc = 0;
	for (size_t i = 0; i < n_dead && rc == 0; i++) {
		int changes = 0;

		rc = run(c, "unable to mark job aborted", e, &changes,
			 "UPDATE jobs SET status = 'aborted', finished_at = ?, "
			 "  error_code = ?, error_message = "
			 "  'the process running the job ended without finishing it' "
			 "WHERE id = ? AND status = 'running'",
			 "dni", catalog_now(), (int64_t)ERR_ABORTED, dead[i]);
		if (rc == 0 && changes > 0) {
			log_warn("catalog", "job %" PRId64 " was left running by a "
				 "process that is gone: marked aborted", dead[i]);
			if (n_reaped)
				(*n_reaped)++;
		}
	}
	free(dead);
	return rc;
}

/* ---- events / outbox ---- */

int catalog_event_add(struct catalog *c, const char *cluster,
		      const char *server, const char *kind,
		      const char *severity, const char *payload_json,
		      int64_t *event_id, struct err *e)
{
	double now = catalog_now();

	if (event_id)
		*event_id = 0;
	if (!kind || !*kind)
		return err_set(e, ERR_INTERNAL, "event kind is empty");
	if (!in_list(severity, severities))
		return err_set(e, ERR_INTERNAL, "unknown event severity '%s'",
			       or_null(severity));
	if (run(c, "unable to add event", e, NULL,
		"INSERT INTO events(created_at, cluster, server, kind, severity, "
		"  payload, next_attempt_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?1)",
		"dsssss", now, cluster, server, kind, severity,
		payload_json ? payload_json : "{}") != 0)
		return ERR_CATALOG;
	if (event_id)
		*event_id = sqlite3_last_insert_rowid(c->db);
	return 0;
}

static void decode_event(sqlite3_stmt *st, void *elem)
{
	struct catalog_event *ev = elem;

	ev->id = sqlite3_column_int64(st, 0);
	ev->created_at = col_time(st, 1);
	ev->cluster = col_str(st, 2);
	ev->server = col_str(st, 3);
	ev->kind = col_str(st, 4);
	ev->severity = col_str(st, 5);
	ev->payload = col_str(st, 6);
	ev->attempts = sqlite3_column_int(st, 7);
}

int catalog_event_due(struct catalog *c, double now, size_t max,
		      struct catalog_event **events, size_t *n, struct err *e)
{
	sqlite3_stmt *st;
	void *arr = NULL;
	int rc;

	*events = NULL;
	*n = 0;
	if (max > CATALOG_LIST_MAX)
		max = CATALOG_LIST_MAX;
	if (stmt_open(c, &st, "unable to read due events", e,
		      "SELECT id, created_at, cluster, server, kind, severity, "
		      "  payload, attempts FROM events "
		      "WHERE delivery = 'pending' AND next_attempt_at <= ? "
		      "ORDER BY next_attempt_at, id LIMIT ?",
		      "di", now, (int64_t)max) != 0)
		return ERR_CATALOG;
	rc = collect(c, st, sizeof(struct catalog_event), decode_event, &arr, n,
		     "unable to read due events", e);
	*events = arr;
	if (rc != 0) {
		catalog_event_free_list(*events, *n);
		*events = NULL;
		*n = 0;
	}
	return rc;
}

void catalog_event_free_list(struct catalog_event *events, size_t n)
{
	if (!events)
		return;
	for (size_t i = 0; i < n; i++) {
		free(events[i].cluster);
		free(events[i].server);
		free(events[i].kind);
		free(events[i].severity);
		free(events[i].payload);
	}
	free(events);
}

static int event_update(struct catalog *c, int64_t event_id, int changes,
			struct err *e)
{
	if (changes == 0)
		return err_set(e, ERR_NOT_FOUND,
			       "no pending event %" PRId64 " in catalog '%s'",
			       event_id, c->path);
	return 0;
}

int catalog_event_mark_sent(struct catalog *c, int64_t event_id,
			    struct err *e)
{
	int changes = 0;

	if (run(c, "unable to mark event sent", e, &changes,
		"UPDATE events SET delivery = 'sent', sent_at = ?, "
		"  attempts = attempts + 1, last_error = NULL "
		"WHERE id = ? AND delivery = 'pending'",
		"di", catalog_now(), event_id) != 0)
		return ERR_CATALOG;
	return event_update(c, event_id, changes, e);
}

int catalog_event_mark_retry(struct catalog *c, int64_t event_id,
			     double next_attempt_at, const char *error,
			     struct err *e)
{
	int changes = 0;

	if (run(c, "unable to reschedule event", e, &changes,
		"UPDATE events SET attempts = attempts + 1, next_attempt_at = ?, "
		"  last_error = ? WHERE id = ? AND delivery = 'pending'",
		"dsi", next_attempt_at, error, event_id) != 0)
		return ERR_CATALOG;
	return event_update(c, event_id, changes, e);
}

int catalog_event_mark_failed(struct catalog *c, int64_t event_id,
			      const char *error, struct err *e)
{
	int changes = 0;

	if (run(c, "unable to mark event failed", e, &changes,
		"UPDATE events SET delivery = 'failed', attempts = attempts + 1, "
		"  last_error = ? WHERE id = ? AND delivery = 'pending'",
		"si", error, event_id) != 0)
		return ERR_CATALOG;
	return event_update(c, event_id, changes, e);
}

/* ---- snapshots ---- */

#define SNAPSHOT_COLS \
	"id, cluster, status, reason, job_id, source_server, server_flavor, " \
	"server_version, server_id, gtid, binlog_file, binlog_pos, started_at, " \
	"finished_at, bytes_raw, bytes_stored, n_files, n_tables, " \
	"compress_level, threads, verified_at, verify_status, manifest_path, " \
	"repository, deleted_at"

void catalog_snapshot_init(struct catalog_snapshot *s)
{
	memset(s, 0, sizeof(*s));
	s->job_id = -1;
	s->server_id = -1;
	s->binlog_pos = -1;
	s->threads = -1;
}

void catalog_snapshot_release(struct catalog_snapshot *s)
{
	if (!s)
		return;
	free(s->id);
	free(s->cluster);
	free(s->status);
	free(s->reason);
	free(s->source_server);
	free(s->server_flavor);
	free(s->server_version);
	free(s->gtid);
	free(s->binlog_file);
	free(s->verify_status);
	free(s->manifest_path);
	free(s->repository);
	catalog_snapshot_init(s);
}

static void decode_snapshot(sqlite3_stmt *st, void *elem)
{
	struct catalog_snapshot *s = elem;

	s->id = col_str(st, 0);
	s->cluster = col_str(st, 1);
	s->status = col_str(st, 2);
	s->reason = col_str(st, 3);
	s->job_id = col_i64(st, 4, -1);
	s->source_server = col_str(st, 5);
	s->server_flavor = col_str(st, 6);
	s->server_version = col_str(st, 7);
	s->server_id = col_i64(st, 8, -1);
	s->gtid = col_str(st, 9);
	s->binlog_file = col_str(st, 10);
	s->binlog_pos = col_i64(st, 11, -1);
	s->started_at = col_time(st, 12);
	s->finished_at = col_time(st, 13);
	s->bytes_raw = col_i64(st, 14, 0);
	s->bytes_stored = col_i64(st, 15, 0);
	s->n_files = col_i64(st, 16, 0);
	s->n_tables = col_i64(st, 17, 0);
	s->compress_level = (int)col_i64(st, 18, 0);
	s->threads = (int)col_i64(st, 19, -1);
	s->verified_at = col_time(st, 20);
	s->verify_status = col_str(st, 21);
	s->manifest_path = col_str(st, 22);
	s->repository = col_str(st, 23);
	s->deleted_at = col_time(st, 24);
}

int catalog_snapshot_insert(struct catalog *c,
			    const struct catalog_snapshot *s, struct err *e)
{
	bool own;
	int rc;

	if (!s->id || !*s->id)
		return err_set(e, ERR_INTERNAL, "snapshot id is empty");
	if (tx_enter(c, &own, e) != 0)
		return ERR_CATALOG;
	rc = catalog_cluster_ensure(c, s->cluster, e);
	if (rc == 0)
		rc = run(c, "unable to record snapshot start", e, NULL,
			 "INSERT INTO snapshots(id, cluster, status, job_id, "
			 "  source_server, server_flavor, server_version, "
			 "  server_id, started_at, compress_level, threads, "
			 "  repository, manifest_path) "
			 "VALUES (?, ?, 'running', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
			 "ssIsssIdiIss", s->id, s->cluster, s->job_id,
			 s->source_server, s->server_flavor, s->server_version,
			 s->server_id,
			 s->started_at > 0 ? s->started_at : catalog_now(),
			 (int64_t)s->compress_level, (int64_t)s->threads,
			 s->repository, s->manifest_path);
	if (rc != 0)
		err_prefix(e, "snapshot '%s': ", s->id);
	return tx_leave(c, own, rc, e);
}

/* An update that matched no row: say whether the snapshot is missing or in
 * the wrong state. */
static int snapshot_state_error(struct catalog *c, const char *id,
				const char *want, struct err *e)
{
	sqlite3_stmt *st;
	char *status = NULL;
	int rc;

	if (stmt_open(c, &st, "unable to read snapshot status", e,
		      "SELECT status FROM snapshots WHERE id = ?", "s", id) != 0)
		return ERR_CATALOG;
	if (sqlite3_step(st) == SQLITE_ROW)
		status = col_str(st, 0);
	sqlite3_finalize(st);
	if (!status)
		return err_set(e, ERR_NOT_FOUND, "no snapshot '%s' in catalog '%s'",
			       id, c->path);
	rc = err_set(e, ERR_REFUSED, "snapshot '%s' is %s, not %s", id, status,
		     want);
	free(status);
	return rc;
}

int catalog_snapshot_complete(struct catalog *c,
			      const struct catalog_snapshot *s, struct err *e)
{
	int changes = 0;

	if (run(c, "unable to record snapshot completion", e, &changes,
		"UPDATE snapshots SET status = 'complete', reason = NULL, "
		"  finished_at = ?, gtid = ?, binlog_file = ?, binlog_pos = ?, "
		"  server_flavor = COALESCE(?, server_flavor), "
		"  server_version = COALESCE(?, server_version), "
		"  server_id = COALESCE(?, server_id), "
		"  bytes_raw = ?, bytes_stored = ?, n_files = ?, n_tables = ?, "
		"  manifest_path = COALESCE(?, manifest_path) "
		"WHERE id = ? AND status = 'running'",
		"dssIssIiiiiss",
		s->finished_at > 0 ? s->finished_at : catalog_now(),
		s->gtid, s->binlog_file, s->binlog_pos, s->server_flavor,
		s->server_version, s->server_id, s->bytes_raw, s->bytes_stored,
		s->n_files, s->n_tables, s->manifest_path, s->id) != 0)
		return ERR_CATALOG;
	if (changes == 0)
		return snapshot_state_error(c, s->id, "running", e);
	return 0;
}

int catalog_snapshot_fail(struct catalog *c, const char *id,
			  const char *status, const char *reason,
			  struct err *e)
{
	int changes = 0;

	if (!status || (strcmp(status, "failed") != 0 &&
			strcmp(status, "aborted") != 0))
		return err_set(e, ERR_INTERNAL,
			       "snapshot end status '%s' is not failed or aborted",
			       or_null(status));
	if (run(c, "unable to record snapshot failure", e, &changes,
		"UPDATE snapshots SET status = ?, reason = ?, finished_at = ? "
		"WHERE id = ? AND status = 'running'",
		"ssds", status, reason, catalog_now(), id) != 0)
		return ERR_CATALOG;
	if (changes == 0)
		return snapshot_state_error(c, id, "running", e);
	return 0;
}

int catalog_snapshot_set_verified(struct catalog *c, const char *id, bool ok,
				  struct err *e)
{
	int changes = 0;

	if (run(c, "unable to record snapshot verification", e, &changes,
		"UPDATE snapshots SET verified_at = ?, verify_status = ? "
		"WHERE id = ? AND status = 'complete'",
		"dss", catalog_now(), ok ? "ok" : "failed", id) != 0)
		return ERR_CATALOG;
	if (changes == 0)
		return snapshot_state_error(c, id, "complete", e);
	return 0;
}

int catalog_snapshot_mark_deleted(struct catalog *c, const char *id,
				  const char *reason, struct err *e)
{
	struct catalog_snapshot s;
	int changes = 0;
	int rc;

	if (run(c, "unable to mark snapshot deleted", e, &changes,
		"UPDATE snapshots SET status = 'deleted', deleted_at = ?, "
		"  reason = COALESCE(?, reason) "
		"WHERE id = ? AND status IN ('complete', 'failed', 'aborted')",
		"dss", catalog_now(), reason, id) != 0)
		return ERR_CATALOG;
	if (changes > 0)
		return 0;
	/* Deleting twice is fine; deleting a running snapshot is not. */
	catalog_snapshot_init(&s);
	rc = catalog_snapshot_get(c, id, &s, e);
	if (rc == 0 && strcmp(s.status, "deleted") != 0)
		rc = err_set(e, ERR_REFUSED, "snapshot '%s' is %s: it cannot be "
			     "deleted", id, s.status);
	catalog_snapshot_release(&s);
	return rc;
}

int catalog_snapshot_delete(struct catalog *c, const char *id,
			    struct err *e)
{
	int changes = 0;

	if (run(c, "unable to delete snapshot", e, &changes,
		"DELETE FROM snapshots WHERE id = ?", "s", id) != 0)
		return ERR_CATALOG;
	if (changes == 0)
		return err_set(e, ERR_NOT_FOUND, "no snapshot '%s' in catalog '%s'",
			       id, c->path);
	return 0;
}

/* Runs a snapshot query expected to give at most one row into *out. */
static int snapshot_one(struct catalog *c, sqlite3_stmt *st, const char *op,
			struct catalog_snapshot *out, const char *missing,
			struct err *e)
{
	void *arr = NULL;
	size_t n = 0;
	int rc;

	rc = collect(c, st, sizeof(struct catalog_snapshot), decode_snapshot,
		     &arr, &n, op, e);
	if (rc == 0 && n == 0)
		rc = err_set(e, ERR_NOT_FOUND, "%s in catalog '%s'", missing,
			     c->path);
	if (rc == 0) {
		/* Take the row's strings; free only the array. */
		*out = *(struct catalog_snapshot *)arr;
		free(arr);
		return 0;
	}
	catalog_snapshot_free_list(arr, n);
	return rc;
}

int catalog_snapshot_get(struct catalog *c, const char *id,
			 struct catalog_snapshot *out, struct err *e)
{
	char missing[320];
	sqlite3_stmt *st;

	catalog_snapshot_init(out);
	if (stmt_open(c, &st, "unable to read snapshot", e,
		      "SELECT " SNAPSHOT_COLS " FROM snapshots WHERE id = ?",
		      "s", id) != 0)
		return ERR_CATALOG;
	snprintf(missing, sizeof(missing), "no snapshot '%s'", or_null(id));
	return snapshot_one(c, st, "unable to read snapshot", out, missing, e);
}

int catalog_snapshot_latest(struct catalog *c, const char *cluster,
			    const char *status, struct catalog_snapshot *out,
			    struct err *e)
{
	char missing[320];
	sqlite3_stmt *st;

	catalog_snapshot_init(out);
	if (stmt_open(c, &st, "unable to read latest snapshot", e,
		      "SELECT " SNAPSHOT_COLS " FROM snapshots "
		      "WHERE cluster = ?1 AND (?2 IS NULL OR status = ?2) "
		      "ORDER BY started_at DESC, id DESC LIMIT 1",
		      "ss", cluster, status) != 0)
		return ERR_CATALOG;
	snprintf(missing, sizeof(missing), "no %s%ssnapshot of cluster '%s'",
		 status ? status : "", status ? " " : "", or_null(cluster));
	return snapshot_one(c, st, "unable to read latest snapshot", out,
			    missing, e);
}

int catalog_snapshot_latest_in(struct catalog *c, const char *cluster,
			       const char *repository,
			       struct catalog_snapshot *out, struct err *e)
{
	char missing[600];
	sqlite3_stmt *st;

	catalog_snapshot_init(out);
	if (stmt_open(c, &st, "unable to read latest snapshot", e,
		      "SELECT " SNAPSHOT_COLS " FROM snapshots "
		      "WHERE cluster = ?1 AND status = 'complete' "
		      "AND (repository IS NULL OR repository = ?2) "
		      "ORDER BY started_at DESC, id DESC LIMIT 1",
		      "ss", cluster, repository) != 0)
		return ERR_CATALOG;
	snprintf(missing, sizeof(missing),
		 "no complete snapshot of cluster '%s' in repository '%s'",
		 or_null(cluster), or_null(repository));
	return snapshot_one(c, st, "unable to read latest snapshot", out,
			    missing, e);
}

int catalog_snapshot_list(struct catalog *c, const char *cluster,
			  struct catalog_snapshot **arr, size_t *n,
			  struct err *e)
{
	sqlite3_stmt *st;
	void *items = NULL;
	int rc;

	*arr = NULL;
	*n = 0;
	if (stmt_open(c, &st, "unable to list snapshots", e,
		      "SELECT " SNAPSHOT_COLS " FROM snapshots "
		      "WHERE ?1 IS NULL OR cluster = ?1 "
		      "ORDER BY started_at, id", "s", cluster) != 0)
		return ERR_CATALOG;
	rc = collect(c, st, sizeof(struct catalog_snapshot), decode_snapshot,
		     &items, n, "unable to list snapshots", e);
	*arr = items;
	if (rc != 0) {
		catalog_snapshot_free_list(*arr, *n);
		*arr = NULL;
		*n = 0;
	}
	return rc;
}

void catalog_snapshot_free_list(struct catalog_snapshot *arr, size_t n)
{
	if (!arr)
		return;
	for (size_t i = 0; i < n; i++)
		catalog_snapshot_release(&arr[i]);
	free(arr);
}

int catalog_snapshot_add_file(struct catalog *c, const char *snapshot_id,
			      const struct catalog_snapshot_file *f,
			      struct err *e)
{
	if (run(c, "unable to record snapshot file", e, NULL,
		"INSERT INTO snapshot_files(snapshot_id, path, kind, schema_name, "
		"  table_name, bytes_raw, bytes_stored, checksum_algo, checksum) "
		"VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
		"sssssiiss", snapshot_id, f->path, f->kind, f->schema_name,
		f->table_name, f->bytes_raw, f->bytes_stored, f->checksum_algo,
		f->checksum) != 0) {
		err_prefix(e, "file '%s' of snapshot '%s': ", or_null(f->path),
			   or_null(snapshot_id));
		return ERR_CATALOG;
	}
	return 0;
}

int catalog_snapshot_add_table(struct catalog *c, const char *snapshot_id,
			       const struct catalog_snapshot_table *t,
			       struct err *e)
{
	if (run(c, "unable to record snapshot table", e, NULL,
		"INSERT INTO snapshot_tables(snapshot_id, schema_name, table_name, "
		"  engine, n_rows, checksum_algo, checksum) "
		"VALUES (?, ?, ?, ?, ?, ?, ?)",
		"ssssIss", snapshot_id, t->schema_name, t->table_name, t->engine,
		t->n_rows, t->checksum_algo, t->checksum) != 0) {
		err_prefix(e, "table '%s.%s' of snapshot '%s': ",
			   or_null(t->schema_name), or_null(t->table_name),
			   or_null(snapshot_id));
		return ERR_CATALOG;
	}
	return 0;
}

static void decode_file(sqlite3_stmt *st, void *elem)
{
	struct catalog_snapshot_file *f = elem;

	f->path = col_str(st, 0);
	f->kind = col_str(st, 1);
	f->schema_name = col_str(st, 2);
	f->table_name = col_str(st, 3);
	f->bytes_raw = col_i64(st, 4, 0);
	f->bytes_stored = col_i64(st, 5, 0);
	f->checksum_algo = col_str(st, 6);
	f->checksum = col_str(st, 7);
}

static void decode_table(sqlite3_stmt *st, void *elem)
{
	struct catalog_snapshot_table *t = elem;

	t->schema_name = col_str(st, 0);
	t->table_name = col_str(st, 1);
	t->engine = col_str(st, 2);
	t->n_rows = col_i64(st, 3, -1);
	t->checksum_algo = col_str(st, 4);
	t->checksum = col_str(st, 5);
}

int catalog_snapshot_files(struct catalog *c, const char *snapshot_id,
			   struct catalog_snapshot_file **arr, size_t *n,
			   struct err *e)
{
	sqlite3_stmt *st;
	void *items = NULL;
	int rc;

	*arr = NULL;
	*n = 0;
	if (stmt_open(c, &st, "unable to list snapshot files", e,
		      "SELECT path, kind, schema_name, table_name, bytes_raw, "
		      "  bytes_stored, checksum_algo, checksum FROM snapshot_files "
		      "WHERE snapshot_id = ? ORDER BY path", "s", snapshot_id) != 0)
		return ERR_CATALOG;
	rc = collect(c, st, sizeof(struct catalog_snapshot_file), decode_file,
		     &items, n, "unable to list snapshot files", e);
	*arr = items;
	if (rc != 0) {
		catalog_snapshot_file_free_list(*arr, *n);
		*arr = NULL;
		*n = 0;
	}
	return rc;
}

void catalog_snapshot_file_free_list(struct catalog_snapshot_file *arr,
				     size_t n)
{
	if (!arr)
		return;
	for (size_t i = 0; i < n; i++) {
		free(arr[i].path);
		free(arr[i].kind);
		free(arr[i].schema_name);
		free(arr[i].table_name);
		free(arr[i].checksum_algo);
		free(arr[i].checksum);
	}
	free(arr);
}

int catalog_snapshot_tables(struct catalog *c, const char *snapshot_id,
			    struct catalog_snapshot_table **arr, size_t *n,
			    struct err *e)
{
	sqlite3_stmt *st;
	void *items = NULL;
	int rc;

	*arr = NULL;
	*n = 0;
	if (stmt_open(c, &st, "unable to list snapshot tables", e,
		      "SELECT schema_name, table_name, engine, n_rows, "
		      "  checksum_algo, checksum FROM snapshot_tables "
		      "WHERE snapshot_id = ? ORDER BY schema_name, table_name",
		      "s", snapshot_id) != 0)
		return ERR_CATALOG;
	rc = collect(c, st, sizeof(struct catalog_snapshot_table), decode_table,
		     &items, n, "unable to list snapshot tables", e);
	*arr = items;
	if (rc != 0) {
		catalog_snapshot_table_free_list(*arr, *n);
		*arr = NULL;
		*n = 0;
	}
	return rc;
}

void catalog_snapshot_table_free_list(struct catalog_snapshot_table *arr,
				      size_t n)
{
	if (!arr)
		return;
	for (size_t i = 0; i < n; i++) {
		free(arr[i].schema_name);
		free(arr[i].table_name);
		free(arr[i].engine);
		free(arr[i].checksum_algo);
		free(arr[i].checksum);
	}
	free(arr);
}
