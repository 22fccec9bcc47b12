/* The snapshot manifest: <repo>/<cluster>/<snapshot id>/manifest.json.
 *
 * Written last (atomically, by storage_write_atomic) it is the commit point of
 * a snapshot: a folder without one does not exist. It is self-describing, so
 * the catalog can be rebuilt from the repository alone, and a restore needs
 * nothing else to load the data back. docs/manifest.md describes every field.
 *
 * This module is pure: it turns a struct manifest into JSON text and back and
 * validates, it does no I/O. manifest_parse treats its input as hostile (a
 * repository may be shared, damaged or tampered with): every path it accepts
 * stays inside the snapshot folder, every index is in range, every checksum
 * is well-formed and the totals add up.
 *
 * Threads: a struct manifest is not locked. One thread fills it (the
 * snapshot engine's coordinator; workers hand their results to it); a parsed
 * manifest may then be read by any number of threads.
 *
 * Ownership: every string in these structs is a heap string owned by the
 * manifest and freed by manifest_free. Adders copy their arguments. */
#ifndef BACKUPD_MANIFEST_H
#define BACKUPD_MANIFEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "checksum.h"
#include "err.h"
#include "tsv.h"

#define MANIFEST_FORMAT "backupd-manifest"
#define MANIFEST_VERSION 1
#define MANIFEST_NAME "manifest.json"
/* manifest_parse refuses larger input, manifest_to_json larger output. */
#define MANIFEST_MAX_BYTES (256u * 1024u * 1024u)
#define MANIFEST_MAX_FILES 1000000u
#define MANIFEST_ENCODING "load-data-tsv-v1"
#define MANIFEST_COMPRESSION "zstd"
/* "2026-11-25T13:15:00.123Z" and NUL, with room to spare. */
#define MANIFEST_TIME_MAX 40

struct manifest_source {
	char *address;           /* "host:port" the snapshot was read from */
	char *role;              /* "primary" | "replica" */
	int64_t server_id;       /* 0 .. 4294967295 */
	char *flavor;            /* "mariadb" | "mysql" (free text) */
	char *version;           /* the server's version string */
};

/* NULL strings are written as JSON null: no GTID (gtid), binary log off on
 * the source (binlog_file, binlog_pos), snapshot taken from the primary
 * (source_binlog_file, source_binlog_pos). A _pos is only meaningful when
 * its _file is set; it is written as null otherwise. */
struct manifest_position {
	char *gtid;
	char *binlog_file;
	uint64_t binlog_pos;
	char *source_binlog_file;
	uint64_t source_binlog_pos;
};

struct manifest_settings {
	int threads;
	char *compression;       /* MANIFEST_COMPRESSION */
	int compress_level;
	char *checksum;          /* CHECKSUM_ALGO */
	char *encoding;          /* MANIFEST_ENCODING */
	uint64_t chunk_rows;
	bool include_users;
};

struct manifest_database {
	char *name;
	char *create_sql;
};

struct manifest_table {
	char *schema;
	char *name;
	char *engine;
	char *create_sql;
	/* Sum of the rows of the table's data files: maintained by
	 * manifest_add_file, checked by manifest_parse. */
	uint64_t rows;
	char *checksum;          /* "xxh128:<hex>" of the table's data, or NULL */
	/* In table order, with the load kind the restore builds its LOAD DATA
	 * column list from (tsv_load_columns(b, columns, n_columns, e)). */
	struct tsv_col *columns;
	size_t n_columns;
	/* Indexes into manifest.files, in the order they were added. */
	size_t *files;
	size_t n_files;
	size_t cap_columns, cap_files;   /* internal */
};

struct manifest_view {
	char *schema;
	char *name;
	char *create_sql;
};

/* The session a stored program was created in; replay it in the same. */
struct manifest_sql_env {
	char *sql_mode;
	char *character_set_client;
	char *collation_connection;
	char *db_collation;
};

struct manifest_trigger {
	char *schema;
	char *name;
	char *table;
	char *create_sql;
	struct manifest_sql_env env;
};

struct manifest_routine {
	char *schema;
	char *name;
	char *type;              /* PROCEDURE | FUNCTION | PACKAGE | PACKAGE BODY */
	char *create_sql;
	struct manifest_sql_env env;
};

struct manifest_event {
	char *schema;
	char *name;
	char *create_sql;
	char *time_zone;
	struct manifest_sql_env env;
};

/* create_sql may hold a password hash: never log it. */
struct manifest_user {
	char *user;
	char *host;
	char *create_sql;
	char **grants;
	size_t n_grants;
};

enum manifest_file_kind {
	MANIFEST_FILE_DATA = 0,   /* path under "data/", one chunk of a table */
	MANIFEST_FILE_SCHEMA,     /* path under "schema/" */
};

#define MANIFEST_NO_INDEX (-1)

struct manifest_file {
	char *path;              /* relative to the snapshot folder */
	enum manifest_file_kind kind;
	int64_t table;           /* index into tables; data files always have one,
				    schema files may (MANIFEST_NO_INDEX) */
	int64_t chunk;           /* data: 0.. unique per table; schema: NO_INDEX */
	uint64_t rows;
	uint64_t bytes_raw;      /* before compression */
	uint64_t bytes_stored;   /* as stored in the repository */
	char checksum_raw[CHECKSUM_HEX_MAX];
	char checksum_stored[CHECKSUM_HEX_MAX];
};

struct manifest_totals {
	uint64_t bytes_raw;
	uint64_t bytes_stored;
	uint64_t files;
	uint64_t tables;
	uint64_t rows;
};

struct manifest {
	int version;             /* MANIFEST_VERSION */
	char *id;                /* the snapshot folder's name */
	char *cluster;           /* the cluster folder's name */
	struct manifest_source source;
	struct manifest_position position;
	char *started_at;        /* "2026-11-25T13:15:00.123Z", UTC */
	char *finished_at;
	struct manifest_settings settings;

	struct manifest_database *databases;
	size_t n_databases;
	struct manifest_table *tables;
	size_t n_tables;
	struct manifest_view *views;
	size_t n_views;
	struct manifest_trigger *triggers;
	size_t n_triggers;
	struct manifest_routine *routines;
	size_t n_routines;
	struct manifest_event *events;
	size_t n_events;
	struct manifest_user *users;
	size_t n_users;
	char **warnings;
	size_t n_warnings;
	struct manifest_file *files;
	size_t n_files;
	/* Maintained by the adders, checked by manifest_parse. */
	struct manifest_totals totals;

	/* internal: capacities of the arrays above */
	size_t cap_databases, cap_tables, cap_views, cap_triggers, cap_routines,
	       cap_events, cap_users, cap_warnings, cap_files;
};

/* An empty manifest with default settings (threads 1, zstd level 3, xxh128,
 * MANIFEST_ENCODING). Free with manifest_free. */
struct manifest *manifest_new(void);
void manifest_free(struct manifest *m);              /* NULL ok */

/* Replaces a string field of a manifest with a copy of value (NULL clears):
 * manifest_set_str(&m->id, id), manifest_set_str(&m->source.version, v). */
void manifest_set_str(char **field, const char *value);

/* Adders: the engine calls them from one thread. Each copies its arguments
 * and returns the new entry's index. Required strings that are NULL are
 * caught by manifest_to_json, which refuses to write an invalid manifest. */
size_t manifest_add_database(struct manifest *m, const char *name,
			     const char *create_sql);
size_t manifest_add_table(struct manifest *m, const char *schema,
			  const char *name, const char *engine,
			  const char *create_sql);
/* ERR_INTERNAL for a table index out of range or an unknown kind. */
int manifest_table_add_column(struct manifest *m, size_t table,
			      const char *name, enum tsv_col_kind kind,
			      struct err *e);
/* checksum NULL clears it; otherwise ERR_INTERNAL unless checksum_parse
 * accepts it. */
int manifest_table_set_checksum(struct manifest *m, size_t table,
				const char *checksum, struct err *e);
size_t manifest_add_view(struct manifest *m, const char *schema,
			 const char *name, const char *create_sql);
size_t manifest_add_trigger(struct manifest *m, const char *schema,
			    const char *name, const char *table,
			    const char *create_sql,
			    const struct manifest_sql_env *env);
size_t manifest_add_routine(struct manifest *m, const char *schema,
			    const char *name, const char *type,
			    const char *create_sql,
			    const struct manifest_sql_env *env);
size_t manifest_add_event(struct manifest *m, const char *schema,
			  const char *name, const char *create_sql,
			  const char *time_zone,
			  const struct manifest_sql_env *env);
size_t manifest_add_user(struct manifest *m, const char *user,
			 const char *host, const char *create_sql,
			 char *const *grants, size_t n_grants);
/* A line for humans, cut at 1023 bytes; bytes that are not UTF-8 become
 * '?' (a warning must never make the manifest unwritable). */
size_t manifest_add_warning(struct manifest *m, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Adds a finished file (written, fsynced, checksummed); f is copied. For a
 * data file, f->table and f->chunk say which chunk of which table it holds:
 * the file is appended to that table's file list, and the table's rows and
 * the totals grow by its numbers. Returns the file's index (>= 0) or
 * ERR_INTERNAL (bad path, kind, table index, checksum, or more than
 * MANIFEST_MAX_FILES files). Duplicate paths and chunks are only caught by
 * manifest_to_json. */
int manifest_add_file(struct manifest *m, const struct manifest_file *f,
		      struct err *e);

/* The manifest as indented JSON with a fixed key order, ending in a newline;
 * *out is NUL-terminated (not counted in *n), caller frees with free().
 * Validates exactly as manifest_parse does first: an invalid manifest
 * (a bug in the caller) is ERR_INTERNAL naming the field, never written. */
int manifest_to_json(const struct manifest *m, char **out, size_t *n,
		     struct err *e);

/* Parses and validates n bytes of manifest.json (json need not be
 * NUL-terminated). Every failure is ERR_CORRUPT with a one-line message
 * naming the field: "manifest 'tables[3].files[0]': path '../../etc/passwd'
 * escapes the snapshot folder". A newer format version is ERR_CORRUPT
 * "manifest version 2 is newer than this backupd understands". Caller frees
 * *out with manifest_free. */
int manifest_parse(const char *json, size_t n, struct manifest **out,
		   struct err *e);

/* Formats unix time t (seconds, UTC) as "2026-11-25T13:15:00.123Z". */
int manifest_time_format(double t, char out[MANIFEST_TIME_MAX], struct err *e);
/* Parses "YYYY-MM-DDTHH:MM:SS[.fraction]Z" (what manifests hold) into unix
 * seconds. ERR_CORRUPT when s has another shape or an impossible date. */
int manifest_time_parse(const char *s, double *t, struct err *e);

#endif
