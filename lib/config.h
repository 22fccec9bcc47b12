/* Configuration: one INI file (libinih) parsed into a struct config.
 *
 * One static option table in config.c (name, section kind, type, default,
 * range or allowed values, field offset, secret flag, help) drives parsing,
 * defaults, validation, config_help() and config_print(). Sections:
 * [backupd] (exactly once), [cluster NAME] (one or more), [schedule NAME]
 * (zero or more). Every error is one line naming the file and line number.
 *
 * Ownership: config_load() hands the caller a struct config to release with
 * config_free(); every pointer inside it is owned by that struct. The loaded
 * struct is read-only afterwards and may be shared between threads. */
#ifndef BACKUPD_CONFIG_H
#define BACKUPD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "err.h"
#include "log.h"

#define CFG_DEFAULT_PATH "/etc/backupd/backupd.conf"
#define CFG_SECRET_MASK "********"
#define CFG_MAX_CLUSTERS 64
#define CFG_MAX_SCHEDULES 256
#define CFG_MAX_LIST 256        /* entries of one list or repeated key */
#define CFG_MAX_LINE 4096       /* bytes of one config line */
#define CFG_MAX_SECRET 4096     /* bytes of one secret file */

/* "127.0.0.1:3306", "db1.example:3306", "[::1]:3306". host is stored
 * without brackets so it can go straight to the client library. An empty
 * host means "not set" for optional addresses (see cfg_addr_is_set). */
struct cfg_addr {
	char host[256];
	unsigned port;
};

/* Parses "host:port" (host = IPv4, [IPv6] or a DNS name; port 1-65535). */
int cfg_addr_parse(const char *s, struct cfg_addr *out, struct err *e);
/* "host:port", with brackets around an IPv6 host. */
void cfg_addr_format(const struct cfg_addr *a, char *out, size_t n);
/* Same port and same host (case-insensitive; IP addresses compared as
 * addresses, so "[::1]" equals "[0:0::1]"). Names are not resolved. */
bool cfg_addr_equal(const struct cfg_addr *a, const struct cfg_addr *b);
bool cfg_addr_is_set(const struct cfg_addr *a);

/* nfs://host/export/path?nfsport=N&mountport=N (ports optional, 0 = ask
 * the portmapper). */
struct cfg_nfs_url {
	char host[256];
	char path[1024];
	unsigned nfsport;
	unsigned mountport;
};
/* True when s starts with "nfs://" (the repository is NFS, not a dir). */
bool cfg_is_nfs_url(const char *s);
int cfg_nfs_url_parse(const char *s, struct cfg_nfs_url *out, struct err *e);

enum cfg_snapshot_from { CFG_FROM_REPLICA, CFG_FROM_PRIMARY };
enum cfg_rebuild { CFG_REBUILD_MANUAL, CFG_REBUILD_AUTO };
enum cfg_job { CFG_JOB_SNAPSHOT, CFG_JOB_VERIFY, CFG_JOB_PRUNE, CFG_JOB_DRILL };
enum cfg_missed_runs { CFG_MISSED_RUN_ONCE, CFG_MISSED_SKIP };
enum cfg_ssl_mode {
	CFG_SSL_DISABLED,
	CFG_SSL_PREFERRED,
	CFG_SSL_REQUIRED,
	CFG_SSL_VERIFY_CA,
	CFG_SSL_VERIFY_IDENTITY,
};

/* "snapshot", "verify", ... as written in the config. */
const char *cfg_job_name(enum cfg_job job);

struct cfg_cluster {
	char *name;
	struct cfg_addr primary;
	struct cfg_addr *replicas;        /* may be empty */
	size_t n_replicas;
	char *user;
	char *password;                   /* inline or read from password_file */
	char *password_file;              /* NULL when inline */
	char *replication_user;           /* NULL: not set */
	char *replication_password;       /* set iff replication_user is */
	char *replication_password_file;
	enum cfg_snapshot_from snapshot_from;
	double lag_warn_s;
	double lag_crit_s;                /* > lag_warn_s */
	enum cfg_rebuild rebuild;
	int rebuild_interval_s;
	int keep_last;                    /* 0: no count limit */
	int keep_days;                    /* 0: no age limit */
	struct cfg_addr drill_target;     /* unset: no drills */
	char **drill_probes;              /* SQL run after a drill restore */
	size_t n_drill_probes;
	int drill_max_age_h;
	bool drill_keep;
	char *haproxy_socket;
	char *haproxy_backend;
	char *haproxy_read_backend;
	char *switch_hook;                /* excludes haproxy_socket */
	char **databases;                 /* empty: all non-system databases */
	size_t n_databases;
	bool include_users;
	int connect_timeout_s;
	int read_timeout_s;
	int write_timeout_s;
	enum cfg_ssl_mode ssl_mode;
	char *ssl_ca;
	char *ssl_cert;                   /* set iff ssl_key is */
	char *ssl_key;
	int line;                         /* of the [cluster NAME] header */
};

struct cfg_schedule {
	char *name;
	char *cluster;                    /* names a cluster of the same config */
	enum cfg_job job;
	char *cron;                       /* syntax checked by the cron parser */
	char *timezone;                   /* NULL: UTC */
	enum cfg_missed_runs missed_runs; /* defaults to [backupd] missed_runs */
	int line;
};

struct config {
	char *path;
	char *catalog;
	char *repository;                 /* absolute dir or nfs:// URL */
	int threads;
	int compress_level;
	char *slack_webhook;              /* inline or from slack_webhook_file; NULL: off */
	char *slack_webhook_file;
	char *metrics_listen;             /* "host:port" (cfg_addr_parse it); NULL: off */
	char *control_socket;
	enum log_level log_level;
	enum log_format log_format;
	char *pid_file;                   /* NULL: none */
	int digest_time_min;              /* digest_time as minutes after midnight */
	enum cfg_missed_runs missed_runs;
	struct cfg_cluster *clusters;     /* at least one */
	size_t n_clusters;
	struct cfg_schedule *schedules;
	size_t n_schedules;
};

/* Reads and validates the file. On success *out is the config (caller
 * frees with config_free); on failure *out is NULL and e says what and
 * where: ERR_CONFIG, or ERR_PERMISSION for unsafe modes and access denied.
 * Every secret read is registered with log_register_secret(). The libinih
 * options are process-wide: loads are serialised by a mutex. */
int config_load(const char *path, struct config **out, struct err *e);
void config_free(struct config *c);    /* NULL ok */
/* NULL if none; borrowed from c. */
const struct cfg_cluster *config_find_cluster(const struct config *c,
					      const char *name);
/* Effective config, every key with its value or default (unset ones as
 * comments / null), secrets as CFG_SECRET_MASK; INI text, or one JSON
 * object when json is true. */
int config_print(const struct config *c, FILE *out, bool json, struct err *e);
/* The option table: section, key, type, default, range, help. */
void config_help(FILE *out);
/* CFG_DEFAULT_PATH. */
const char *config_default_path(void);
/* cli_path if given, else $BACKUPD_CONFIG if set and non-empty, else the
 * default path. Borrowed: from the argument, the environment or static. */
const char *config_resolve_path(const char *cli_path);

#endif
