/* Config file: libinih splits lines, one option table (cfg_options) drives
 * types, defaults, validation, help and printing. Our own line reader counts
 * lines and sees [section] headers, which inih's handler does not report.
 * Threading: config_load() holds a mutex while parsing because libinih's
 * options are process-wide globals; a loaded struct config is read-only. */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "mem.h"

#define CFG_ZONEINFO "/usr/share/zoneinfo"
#define CFG_NAME_MAX 63

enum cfg_kind { CFG_SEC_BACKUPD, CFG_SEC_CLUSTER, CFG_SEC_SCHEDULE, CFG_N_KINDS };

static const char *const cfg_kind_names[CFG_N_KINDS] = {
	"backupd", "cluster", "schedule",
};

enum cfg_type {
	CFG_T_STRING,      /* non-empty text */
	CFG_T_PATH,        /* absolute path: the daemon does not depend on its cwd */
	CFG_T_INT,         /* int within [min, max] */
	CFG_T_DECIMAL,     /* double within [min, max] */
	CFG_T_BOOL,
	CFG_T_ENUM,        /* int: index into values */
	CFG_T_ADDR,        /* struct cfg_addr */
	CFG_T_ADDR_TEXT,   /* char *, checked as host:port */
	CFG_T_ADDR_LIST,   /* struct cfg_addr * + count at off_n */
	CFG_T_URL,         /* http(s) URL */
	CFG_T_REPO,        /* absolute dir or nfs:// URL */
	CFG_T_SECRET_FILE, /* path; its content is parsed as the alt option */
	CFG_T_LIST,        /* comma list: char ** + count at off_n; max: item length */
	CFG_T_MULTI,       /* repeatable key: char ** + count at off_n */
	CFG_T_TIME,        /* "HH:MM" as minutes after midnight */
	CFG_T_ZONE,        /* a file under /usr/share/zoneinfo */
};

static const char *const cfg_type_names[] = {
	[CFG_T_STRING] = "string",     [CFG_T_PATH] = "path",
	[CFG_T_INT] = "int",           [CFG_T_DECIMAL] = "decimal",
	[CFG_T_BOOL] = "bool",         [CFG_T_ENUM] = "enum",
	[CFG_T_ADDR] = "host:port",    [CFG_T_ADDR_TEXT] = "host:port",
	[CFG_T_ADDR_LIST] = "host:port list",
	[CFG_T_URL] = "url",           [CFG_T_REPO] = "dir|nfs-url",
	[CFG_T_SECRET_FILE] = "secret-file",
	[CFG_T_LIST] = "list",         [CFG_T_MULTI] = "string, repeatable",
	[CFG_T_TIME] = "HH:MM",        [CFG_T_ZONE] = "timezone",
};

#define CFG_F_REQUIRED 1u  /* must be set (it or its alt) */
#define CFG_F_SECRET   2u  /* never shown; the config file must be private */
#define CFG_F_INHERIT  4u  /* unset: the value of the same key in [backupd] */

struct cfg_option {
	const char *name;
	enum cfg_kind kind;
	enum cfg_type type;
	unsigned flags;
	const char *def;            /* default, as config text; NULL: none */
	double min, max;            /* INT and DECIMAL */
	const char *const *values;  /* ENUM: NULL-terminated */
	size_t off;                 /* field in the section's struct */
	size_t off_n;               /* count field of lists */
	/* The other way to give the same value (inline secret vs secret
	 * file): the two exclude each other, either satisfies REQUIRED and
	 * `needs`, and a secret file's content is parsed as its alt. */
	const char *alt;
	const char *needs;          /* a key (or its alt) that must be set too */
	const char *help;
};

static const char *const cfg_log_levels[] = {
	"error", "warn", "info", "debug", "trace", NULL };
static const char *const cfg_log_formats[] = { "text", "json", NULL };
static const char *const cfg_missed[] = { "run_once", "skip", NULL };
static const char *const cfg_from[] = { "replica", "primary", NULL };
static const char *const cfg_rebuilds[] = { "manual", "auto", NULL };
static const char *const cfg_jobs[] = {
	"snapshot", "verify", "prune", "drill", NULL };
static const char *const cfg_ssl_modes[] = {
	"disabled", "preferred", "required", "verify_ca", "verify_identity", NULL };

/* Enums are stored through int pointers. */
_Static_assert(sizeof(enum log_level) == sizeof(int), "enum size");
_Static_assert(sizeof(enum log_format) == sizeof(int), "enum size");
_Static_assert(sizeof(enum cfg_missed_runs) == sizeof(int), "enum size");
_Static_assert(sizeof(enum cfg_snapshot_from) == sizeof(int), "enum size");
_Static_assert(sizeof(enum cfg_rebuild) == sizeof(int), "enum size");
_Static_assert(sizeof(enum cfg_job) == sizeof(int), "enum size");
_Static_assert(sizeof(enum cfg_ssl_mode) == sizeof(int), "enum size");

#define BK(f) .kind = CFG_SEC_BACKUPD, .off = offsetof(struct config, f)
#define CL(f) .kind = CFG_SEC_CLUSTER, .off = offsetof(struct cfg_cluster, f)
#define CL_N(f) .off_n = offsetof(struct cfg_cluster, f)
#define SC(f) .kind = CFG_SEC_SCHEDULE, .off = offsetof(struct cfg_schedule, f)
#define RANGE(a, b) .min = (a), .max = (b)

static const struct cfg_option cfg_options[] = {
	/* [backupd] */
	{ .name = "catalog", BK(catalog), .type = CFG_T_PATH,
	  .flags = CFG_F_REQUIRED,
	  .help = "SQLite catalog file (an index of the repository)" },
	{ .name = "repository", BK(repository), .type = CFG_T_REPO,
	  .flags = CFG_F_REQUIRED,
	  .help = "where snapshots go: an absolute directory or "
		  "nfs://host/export/path?nfsport=N&mountport=N" },
	{ .name = "threads", BK(threads), .type = CFG_T_INT, .def = "4",
	  RANGE(1, 64),
	  .help = "parallel workers of a snapshot or restore, one database "
		  "connection each" },
	{ .name = "compress_level", BK(compress_level), .type = CFG_T_INT,
	  .def = "3", RANGE(1, 19), .help = "zstd compression level" },
	{ .name = "slack_webhook", BK(slack_webhook), .type = CFG_T_URL,
	  .flags = CFG_F_SECRET, .alt = "slack_webhook_file",
	  .help = "Slack incoming webhook URL; a secret: prefer "
		  "slack_webhook_file; unset: no Slack messages" },
	{ .name = "slack_webhook_file", BK(slack_webhook_file),
	  .type = CFG_T_SECRET_FILE, .alt = "slack_webhook",
	  .help = "file holding the Slack webhook URL (mode 0600 or 0400)" },
	{ .name = "metrics_listen", BK(metrics_listen), .type = CFG_T_ADDR_TEXT,
	  .help = "Prometheus metrics endpoint; unset: none" },
	{ .name = "control_socket", BK(control_socket), .type = CFG_T_PATH,
	  .def = "/run/backupd/backupd.sock",
	  .help = "unix socket backupctl talks to the daemon through" },
	{ .name = "log_level", BK(log_level), .type = CFG_T_ENUM,
	  .values = cfg_log_levels, .def = "info", .help = "least severe level logged" },
	{ .name = "log_format", BK(log_format), .type = CFG_T_ENUM,
	  .values = cfg_log_formats, .def = "text",
	  .help = "log lines on stderr as text or one JSON object each" },
	{ .name = "pid_file", BK(pid_file), .type = CFG_T_PATH,
	  .help = "the daemon writes its pid here; unset: no pid file" },
	{ .name = "digest_time", BK(digest_time_min), .type = CFG_T_TIME,
	  .def = "09:00", .help = "time (UTC, HH:MM) of the daily Slack digest" },
	{ .name = "missed_runs", BK(missed_runs), .type = CFG_T_ENUM,
	  .values = cfg_missed, .def = "run_once",
	  .help = "after downtime, run a missed schedule once or skip it; "
		  "default of every [schedule]" },

	/* [cluster NAME] */
	{ .name = "primary", CL(primary), .type = CFG_T_ADDR,
	  .flags = CFG_F_REQUIRED, .help = "the writer" },
	{ .name = "replicas", CL(replicas), CL_N(n_replicas),
	  .type = CFG_T_ADDR_LIST, .help = "comma-separated; may be empty" },
	{ .name = "user", CL(user), .type = CFG_T_STRING, .flags = CFG_F_REQUIRED,
	  .help = "account backupd connects as" },
	{ .name = "password", CL(password), .type = CFG_T_STRING,
	  .flags = CFG_F_REQUIRED | CFG_F_SECRET, .alt = "password_file",
	  .help = "password of user; a secret: prefer password_file" },
	{ .name = "password_file", CL(password_file), .type = CFG_T_SECRET_FILE,
	  .alt = "password",
	  .help = "file holding the password (mode 0600 or 0400, one line)" },
	{ .name = "replication_user", CL(replication_user), .type = CFG_T_STRING,
	  .needs = "replication_password",
	  .help = "account replicas use to attach to their source" },
	{ .name = "replication_password", CL(replication_password),
	  .type = CFG_T_STRING, .flags = CFG_F_SECRET,
	  .alt = "replication_password_file", .needs = "replication_user",
	  .help = "password of replication_user; prefer replication_password_file" },
	{ .name = "replication_password_file", CL(replication_password_file),
	  .type = CFG_T_SECRET_FILE, .alt = "replication_password",
	  .needs = "replication_user",
	  .help = "file holding the replication password (mode 0600 or 0400)" },
	{ .name = "snapshot_from", CL(snapshot_from), .type = CFG_T_ENUM,
	  .values = cfg_from, .def = "replica",
	  .help = "take snapshots from a replica or from the primary" },
	{ .name = "lag_warn_s", CL(lag_warn_s), .type = CFG_T_DECIMAL,
	  .def = "5", RANGE(0.001, 86400),
	  .help = "replication lag that raises a warning" },
	{ .name = "lag_crit_s", CL(lag_crit_s), .type = CFG_T_DECIMAL,
	  .def = "30", RANGE(0.001, 86400),
	  .help = "replication lag that is critical; above lag_warn_s" },
	{ .name = "rebuild", CL(rebuild), .type = CFG_T_ENUM,
	  .values = cfg_rebuilds, .def = "manual",
	  .help = "rebuild a downed replica from the latest snapshot by hand or "
		  "automatically" },
	{ .name = "rebuild_interval_s", CL(rebuild_interval_s), .type = CFG_T_INT,
	  .def = "3600", RANGE(60, 604800),
	  .help = "least time between two automatic rebuilds of one replica" },
	{ .name = "keep_last", CL(keep_last), .type = CFG_T_INT, .def = "7",
	  RANGE(0, 10000), .help = "retention: keep this many snapshots; 0: no "
				   "count limit" },
	{ .name = "keep_days", CL(keep_days), .type = CFG_T_INT, .def = "0",
	  RANGE(0, 36500), .help = "retention: keep snapshots this many days; "
				   "0: no age limit" },
	{ .name = "drill_target", CL(drill_target), .type = CFG_T_ADDR,
	  .help = "scratch server DR drills restore into; never the primary or "
		  "a replica; unset: no drills" },
	{ .name = "drill_probe", CL(drill_probes), CL_N(n_drill_probes),
	  .type = CFG_T_MULTI,
	  .help = "SQL a drill runs on the restored server; repeat for more" },
	{ .name = "drill_max_age_h", CL(drill_max_age_h), .type = CFG_T_INT,
	  .def = "48", RANGE(1, 8760),
	  .help = "alert when the last good drill is older" },
	{ .name = "drill_keep", CL(drill_keep), .type = CFG_T_BOOL,
	  .def = "false", .help = "leave the drill's data on the target" },
	{ .name = "haproxy_socket", CL(haproxy_socket), .type = CFG_T_PATH,
	  .needs = "haproxy_backend",
	  .help = "HAProxy admin socket cutover switches traffic through" },
	{ .name = "haproxy_backend", CL(haproxy_backend), .type = CFG_T_STRING,
	  .needs = "haproxy_socket", .help = "HAProxy backend of the writer" },
	{ .name = "haproxy_read_backend", CL(haproxy_read_backend),
	  .type = CFG_T_STRING, .needs = "haproxy_socket",
	  .help = "HAProxy backend of the readers; unset: none" },
	{ .name = "switch_hook", CL(switch_hook), .type = CFG_T_PATH,
	  .help = "instead of HAProxy: program cutover runs with the old and "
		  "new writer" },
	{ .name = "databases", CL(databases), CL_N(n_databases),
	  .type = CFG_T_LIST, .max = 64, /* MySQL's identifier limit */
	  .help = "comma-separated databases to back up; empty: all "
		  "non-system databases" },
	{ .name = "include_users", CL(include_users), .type = CFG_T_BOOL,
	  .def = "false", .help = "also back up accounts and grants" },
	{ .name = "connect_timeout_s", CL(connect_timeout_s), .type = CFG_T_INT,
	  .def = "5", RANGE(1, 3600), .help = "database connect timeout" },
	{ .name = "read_timeout_s", CL(read_timeout_s), .type = CFG_T_INT,
	  .def = "3600", RANGE(1, 86400), .help = "database read timeout" },
	{ .name = "write_timeout_s", CL(write_timeout_s), .type = CFG_T_INT,
	  .def = "3600", RANGE(1, 86400), .help = "database write timeout" },
	/* preferred, not disabled: production servers sit across a network
	 * and carry every customer row, so encrypt whenever the server offers
	 * TLS; on loopback a server without TLS still works, as the client
	 * falls back to plain text. */
	{ .name = "ssl_mode", CL(ssl_mode), .type = CFG_T_ENUM,
	  .values = cfg_ssl_modes, .def = "preferred",
	  .help = "TLS to the servers; verify_* need ssl_ca" },
	{ .name = "ssl_ca", CL(ssl_ca), .type = CFG_T_PATH,
	  .help = "CA certificate file" },
	{ .name = "ssl_cert", CL(ssl_cert), .type = CFG_T_PATH, .needs = "ssl_key",
	  .help = "client certificate file" },
	{ .name = "ssl_key", CL(ssl_key), .type = CFG_T_PATH, .needs = "ssl_cert",
	  .help = "client key file" },

	/* [schedule NAME] */
	{ .name = "cluster", SC(cluster), .type = CFG_T_STRING,
	  .flags = CFG_F_REQUIRED, .help = "name of a [cluster NAME] section" },
	{ .name = "job", SC(job), .type = CFG_T_ENUM, .values = cfg_jobs,
	  .flags = CFG_F_REQUIRED, .help = "what runs" },
	{ .name = "cron", SC(cron), .type = CFG_T_STRING, .flags = CFG_F_REQUIRED,
	  .help = "5-field cron expression or @daily-style alias" },
	{ .name = "timezone", SC(timezone), .type = CFG_T_ZONE,
	  .help = "zone cron times are in, e.g. Europe/Berlin; unset: UTC" },
	{ .name = "missed_runs", SC(missed_runs), .type = CFG_T_ENUM,
	  .values = cfg_missed, .flags = CFG_F_INHERIT,
	  .help = "after downtime, run a missed run once or skip it" },
};

#define CFG_N_OPTIONS (sizeof(cfg_options) / sizeof(cfg_options[0]))

/* Parse state of one section; lives only during config_load. */
struct cfg_sect {
	enum cfg_kind kind;
	size_t idx;                 /* into clusters / schedules */
	int line;                   /* of the header */
	int seen[CFG_N_OPTIONS];    /* line each option was set on, 0: not */
};

struct cfg_ctx {
	struct config *cfg;
	struct err *e;              /* &err: the caller's e is only filled at the end */
	struct err err;
	const char *path;
	FILE *f;
	mode_t mode;                /* of the config file */
	int line;                   /* last line read */
	struct cfg_sect **sects;
	size_t n_sects;
	struct cfg_sect *cur;       /* NULL before the first header */
};

const char *cfg_job_name(enum cfg_job job)
{
	size_t n = sizeof(cfg_jobs) / sizeof(cfg_jobs[0]) - 1;

	return (size_t)job < n ? cfg_jobs[job] : "unknown";
}

const char *config_default_path(void)
{
	return CFG_DEFAULT_PATH;
}

const char *config_resolve_path(const char *cli_path)
{
	const char *env;

	if (cli_path && *cli_path)
		return cli_path;
	env = getenv("BACKUPD_CONFIG");
	if (env && *env)
		return env;
	return CFG_DEFAULT_PATH;
}

/* ---- addresses and URLs: checks return NULL or why the text is bad ---- */

static bool cfg_all_of(const char *s, size_t n, const char *set)
{
	for (size_t i = 0; i < n; i++)
		if (!s[i] || !strchr(set, s[i]))
			return false;
	return true;
}

#define CFG_DIGITS "0123456789"
#define CFG_NAME_CHARS "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ" \
		       CFG_DIGITS "-_"

/* host: an IPv4 address, an IPv6 address (already without brackets) or a
 * DNS name. */
static const char *cfg_host_check(const char *h)
{
	size_t n = strlen(h);
	unsigned char bin[16];
	const char *p = h;

	if (n == 0)
		return "empty host";
	if (n > 253)
		return "host name longer than 253 characters";
	if (strchr(h, ':'))
		return inet_pton(AF_INET6, h, bin) == 1 ? NULL
							: "bad IPv6 address";
	if (cfg_all_of(h, n, CFG_DIGITS "."))
		return inet_pton(AF_INET, h, bin) == 1 ? NULL
						       : "bad IPv4 address";
	while (*p) {
		size_t l = strcspn(p, ".");
		if (l == 0 || l > 63 || !cfg_all_of(p, l, CFG_NAME_CHARS) ||
		    p[0] == '-' || p[l - 1] == '-')
			return "bad host name";
		p += l;
		if (*p == '.' && *++p == '\0')
			return "bad host name";
	}
	return NULL;
}

static const char *cfg_port_check(const char *s, unsigned *port)
{
	long v;

	if (!cfg_all_of(s, strlen(s), CFG_DIGITS) ||
	    str_to_long(s, 1, 65535, &v) != 0)
		return "port must be a number from 1 to 65535";
	*port = (unsigned)v;
	return NULL;
}

/* host:port, or just host when the port is optional (port 0 then). */
static const char *cfg_hostport_check(const char *s, size_t n,
				      bool port_required, struct cfg_addr *out)
{
	char tmp[300];
	const char *port = NULL;
	const char *why;

	if (n == 0)
		return "empty address";
	if (n >= sizeof(tmp))
		return "address too long";
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	memset(out, 0, sizeof(*out));
	if (tmp[0] == '[') {
		char *close = strchr(tmp, ']');
		if (!close)
			return "missing ']' after the IPv6 address";
		*close = '\0';
		if (!strchr(tmp + 1, ':') || cfg_host_check(tmp + 1))
			return "bad IPv6 address";
		if (close[1] == ':')
			port = close + 2;
		else if (close[1] != '\0')
			return "expected ':port' after ']'";
		str_copy(out->host, sizeof(out->host), tmp + 1);
	} else {
		char *colon = strrchr(tmp, ':');
		if (colon && memchr(tmp, ':', (size_t)(colon - tmp)))
			return "IPv6 addresses go in brackets, e.g. [::1]:3306";
		if (colon) {
			*colon = '\0';
			port = colon + 1;
		}
		if ((why = cfg_host_check(tmp)))
			return why;
		str_copy(out->host, sizeof(out->host), tmp);
	}
	if (!port)
		return port_required ? "missing ':port', e.g. 127.0.0.1:3306"
				     : NULL;
	return cfg_port_check(port, &out->port);
}

static const char *cfg_addr_check(const char *s, struct cfg_addr *out)
{
	return cfg_hostport_check(s, strlen(s), true, out);
}

int cfg_addr_parse(const char *s, struct cfg_addr *out, struct err *e)
{
	const char *why = cfg_addr_check(s ? s : "", out);

	if (why)
		return err_set(e, ERR_CONFIG, "bad address '%s': %s", s ? s : "",
			       why);
	return 0;
}

void cfg_addr_format(const struct cfg_addr *a, char *out, size_t n)
{
	snprintf(out, n, strchr(a->host, ':') ? "[%s]:%u" : "%s:%u", a->host,
		 a->port);
}

bool cfg_addr_is_set(const struct cfg_addr *a)
{
	return a->host[0] != '\0';
}

bool cfg_addr_equal(const struct cfg_addr *a, const struct cfg_addr *b)
{
	unsigned char x[16], y[16];
	int af;

	if (a->port != b->port)
		return false;
	af = strchr(a->host, ':') ? AF_INET6 : AF_INET;
	if (inet_pton(af, a->host, x) == 1 && inet_pton(af, b->host, y) == 1)
		return memcmp(x, y, af == AF_INET6 ? 16 : 4) == 0;
	return strcasecmp(a->host, b->host) == 0;
}

static bool cfg_has_space(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s <= ' ' || *s == 0x7f)
			return true;
	return false;
}

static const char *cfg_url_check(const char *s)
{
	struct cfg_addr a;
	size_t skip, n;

	if (strncasecmp(s, "https://", 8) == 0)
		skip = 8;
	else if (strncasecmp(s, "http://", 7) == 0)
		skip = 7;
	else
		return "must start with http:// or https://";
	if (cfg_has_space(s))
		return "no spaces or control characters";
	s += skip;
	n = strcspn(s, "/?#");
	if (memchr(s, '@', n))
		return "user names in the URL are not supported";
	return cfg_hostport_check(s, n, false, &a);
}

bool cfg_is_nfs_url(const char *s)
{
	return s && strncasecmp(s, "nfs://", 6) == 0;
}

static const char *cfg_nfs_check(const char *s, struct cfg_nfs_url *out)
{
	struct cfg_addr a;
	const char *why, *p, *q;
	size_t n;

	memset(out, 0, sizeof(*out));
	if (!cfg_is_nfs_url(s))
		return "must start with nfs://";
	if (cfg_has_space(s))
		return "no spaces or control characters";
	s += 6;
	n = strcspn(s, "/?");
	if ((why = cfg_hostport_check(s, n, false, &a)))
		return why;
	if (a.port)
		return "give the port as ?nfsport=N, not after the host";
	str_copy(out->host, sizeof(out->host), a.host);
	p = s + n;
	n = strcspn(p, "?");
	if (*p != '/' || n < 2)
		return "missing export path, e.g. nfs://host/export/mysql";
	if (n >= sizeof(out->path))
		return "export path too long";
	memcpy(out->path, p, n);
	out->path[n] = '\0';
	for (q = p + n; *q; ) {
		const char *kv = q + 1;
		size_t kl = strcspn(kv, "&");
		size_t nl = strcspn(kv, "=");
		unsigned *slot = NULL;
		char port[16];

		if (nl == 7 && strncmp(kv, "nfsport", 7) == 0)
			slot = &out->nfsport;
		else if (nl == 9 && strncmp(kv, "mountport", 9) == 0)
			slot = &out->mountport;
		if (!slot || nl >= kl)
			return "parameters are nfsport=N and mountport=N";
		if (*slot)
			return "parameter given twice";
		if (kl - nl - 1 >= sizeof(port))
			return "port must be a number from 1 to 65535";
		memcpy(port, kv + nl + 1, kl - nl - 1);
		port[kl - nl - 1] = '\0';
		if ((why = cfg_port_check(port, slot)))
			return why;
		q = kv + kl;
	}
	return NULL;
}

int cfg_nfs_url_parse(const char *s, struct cfg_nfs_url *out, struct err *e)
{
	const char *why = cfg_nfs_check(s ? s : "", out);

	if (why)
		return err_set(e, ERR_CONFIG, "bad NFS URL '%s': %s", s ? s : "",
			       why);
	return 0;
}

/* ---- typed values ---- */

enum { CFG_OK = 0, CFG_BAD = 1, CFG_RANGE = 2 };

static void *cfg_field(const void *obj, size_t off)
{
	return (char *)obj + off;
}

static bool cfg_is_text(enum cfg_type t)
{
	return t == CFG_T_STRING || t == CFG_T_PATH || t == CFG_T_ADDR_TEXT ||
	       t == CFG_T_URL || t == CFG_T_REPO || t == CFG_T_SECRET_FILE ||
	       t == CFG_T_ZONE;
}

static void cfg_set_text(void *obj, size_t off, const char *v)
{
	char **f = cfg_field(obj, off);

	free(*f);
	*f = xstrdup(v);
}

static void cfg_free_strv(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static const struct cfg_option *cfg_find(enum cfg_kind k, const char *name)
{
	for (size_t i = 0; i < CFG_N_OPTIONS; i++)
		if (cfg_options[i].kind == k &&
		    strcmp(cfg_options[i].name, name) == 0)
			return &cfg_options[i];
	return NULL;
}

/* A comma list of trimmed, non-empty, distinct items; a blank value is the
 * empty list. */
static int cfg_split(const char *v, char ***out, size_t *n_out, char *why,
		     size_t wn)
{
	char **items = NULL;
	size_t n = 0;
	const char *p = v;

	*out = NULL;
	*n_out = 0;
	if (v[strspn(v, " \t")] == '\0')
		return CFG_OK;
	for (;;) {
		size_t l = strcspn(p, ",");
		const char *a = p, *b = p + l;

		while (a < b && (*a == ' ' || *a == '\t'))
			a++;
		while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
			b--;
		if (a == b) {
			snprintf(why, wn, "a comma-separated list without empty entries");
			goto bad;
		}
		if (n == CFG_MAX_LIST) {
			snprintf(why, wn, "at most %d entries", CFG_MAX_LIST);
			goto bad;
		}
		items = xrealloc(items, (n + 1) * sizeof(*items));
		items[n++] = xstrndup(a, (size_t)(b - a));
		for (size_t i = 0; i + 1 < n; i++)
			if (strcmp(items[i], items[n - 1]) == 0) {
				snprintf(why, wn, "a list without duplicates ('%s' is listed twice)",
					 items[i]);
				goto bad;
			}
		if (!p[l])
			break;
		p += l + 1;
	}
	*out = items;
	*n_out = n;
	return CFG_OK;
bad:
	cfg_free_strv(items, n);
	return CFG_BAD;
}

static int cfg_store_addr_list(const struct cfg_option *o, void *obj,
			       const char *v, char *why, size_t wn)
{
	struct cfg_addr **f = cfg_field(obj, o->off);
	size_t *fn = cfg_field(obj, o->off_n);
	struct cfg_addr *as = NULL;
	char **items;
	size_t n;
	int rc = CFG_OK;

	if (cfg_split(v, &items, &n, why, wn))
		return CFG_BAD;
	if (n)
		as = xcalloc(n, sizeof(*as));
	for (size_t i = 0; i < n && rc == CFG_OK; i++) {
		const char *r = cfg_addr_check(items[i], &as[i]);
		if (r) {
			snprintf(why, wn, "a comma-separated list of host:port ('%s': %s)",
				 items[i], r);
			rc = CFG_BAD;
		}
		for (size_t j = 0; j < i && rc == CFG_OK; j++)
			if (cfg_addr_equal(&as[i], &as[j])) {
				snprintf(why, wn, "a list without duplicates ('%s' is listed twice)",
					 items[i]);
				rc = CFG_BAD;
			}
	}
	cfg_free_strv(items, n);
	if (rc) {
		free(as);
		return rc;
	}
	free(*f);
	*f = as;
	*fn = n;
	return CFG_OK;
}

static int cfg_store_zone(const struct cfg_option *o, void *obj,
			  const char *v, char *why, size_t wn)
{
	char path[128];
	struct stat st;

	snprintf(why, wn, "a time zone such as Europe/Berlin (a file under "
		 CFG_ZONEINFO ")");
	if (!*v || v[0] == '/' || strstr(v, "..") || strlen(v) > 64 ||
	    !cfg_all_of(v, strlen(v), CFG_NAME_CHARS "+/"))
		return CFG_BAD;
	snprintf(path, sizeof(path), CFG_ZONEINFO "/%s", v);
	if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
		snprintf(why, wn, "a time zone such as Europe/Berlin (no file '%s')",
			 path);
		return CFG_BAD;
	}
	cfg_set_text(obj, o->off, v);
	return CFG_OK;
}

/* Parses config text v as option o into its field of obj. On failure
 * returns CFG_BAD or CFG_RANGE and says in why what was expected (never
 * quoting v: it may be a secret). */
static int cfg_store(const struct cfg_option *o, void *obj, const char *v,
		     char *why, size_t wn)
{
	static const char *const truths[] = { "true", "yes", "on", "1" };
	static const char *const lies[] = { "false", "no", "off", "0" };
	void *f = cfg_field(obj, o->off);
	const char *r;

	switch (o->type) {
	case CFG_T_STRING:
		snprintf(why, wn, "a non-empty value");
		if (!*v)
			return CFG_BAD;
		cfg_set_text(obj, o->off, v);
		return CFG_OK;
	case CFG_T_MULTI: {
		char ***arr = f;
		size_t *n = cfg_field(obj, o->off_n);

		snprintf(why, wn, "a non-empty value");
		if (!*v)
			return CFG_BAD;
		if (*n >= CFG_MAX_LIST) {
			snprintf(why, wn, "at most %d '%s' lines", CFG_MAX_LIST,
				 o->name);
			return CFG_BAD;
		}
		*arr = xrealloc(*arr, (*n + 1) * sizeof(**arr));
		(*arr)[(*n)++] = xstrdup(v);
		return CFG_OK;
	}
	case CFG_T_PATH:
	case CFG_T_SECRET_FILE:
		snprintf(why, wn, "an absolute path");
		if (v[0] != '/' || strlen(v) >= PATH_MAX)
			return CFG_BAD;
		cfg_set_text(obj, o->off, v);
		return CFG_OK;
	case CFG_T_INT: {
		const char *d = v + (*v == '-');
		long x;

		snprintf(why, wn, "an integer from %ld to %ld", (long)o->min,
			 (long)o->max);
		if (!*d || !cfg_all_of(d, strlen(d), CFG_DIGITS))
			return CFG_BAD;
		if (str_to_long(v, (long)o->min, (long)o->max, &x) != 0)
			return CFG_RANGE;
		*(int *)f = (int)x;
		return CFG_OK;
	}
	case CFG_T_DECIMAL: {
		size_t whole = strspn(v, CFG_DIGITS), frac = 0;
		const char *p = v + whole;
		double x;

		snprintf(why, wn, "a decimal number from %g to %g", o->min, o->max);
		if (*p == '.') {
			frac = strspn(p + 1, CFG_DIGITS);
			p += 1 + frac;
		}
		if (*p || whole + frac == 0)
			return CFG_BAD;
		x = strtod(v, NULL);
		if (x < o->min || x > o->max)
			return CFG_RANGE;
		*(double *)f = x;
		return CFG_OK;
	}
	case CFG_T_BOOL:
		for (size_t i = 0; i < 4; i++) {
			if (strcasecmp(v, truths[i]) == 0 ||
			    strcasecmp(v, lies[i]) == 0) {
				*(bool *)f = strcasecmp(v, truths[i]) == 0;
				return CFG_OK;
			}
		}
		snprintf(why, wn, "true, false, yes, no, on, off, 1 or 0");
		return CFG_BAD;
	case CFG_T_ENUM: {
		size_t used = 0;

		for (int i = 0; o->values[i]; i++)
			if (strcmp(v, o->values[i]) == 0) {
				*(int *)f = i;
				return CFG_OK;
			}
		used = (size_t)snprintf(why, wn, "one of");
		for (int i = 0; o->values[i] && used < wn; i++)
			used += (size_t)snprintf(why + used, wn - used, "%s%s",
						 i ? "|" : " ", o->values[i]);
		return CFG_BAD;
	}
	case CFG_T_ADDR:
	case CFG_T_ADDR_TEXT: {
		struct cfg_addr a;
		char text[300];

		if ((r = cfg_addr_check(v, &a))) {
			snprintf(why, wn, "host:port (%s)", r);
			return CFG_BAD;
		}
		if (o->type == CFG_T_ADDR) {
			*(struct cfg_addr *)f = a;
		} else {
			cfg_addr_format(&a, text, sizeof(text));
			cfg_set_text(obj, o->off, text);
		}
		return CFG_OK;
	}
	case CFG_T_ADDR_LIST:
		return cfg_store_addr_list(o, obj, v, why, wn);
	case CFG_T_LIST: {
		char ***arr = f;
		size_t *n = cfg_field(obj, o->off_n);
		char **items;
		size_t ni;

		if (cfg_split(v, &items, &ni, why, wn))
			return CFG_BAD;
		for (size_t i = 0; i < ni; i++)
			if (o->max > 0 && strlen(items[i]) > (size_t)o->max) {
				snprintf(why, wn, "a comma-separated list of names of up to %ld characters",
					 (long)o->max);
				cfg_free_strv(items, ni);
				return CFG_BAD;
			}
		cfg_free_strv(*arr, *n);
		*arr = items;
		*n = ni;
		return CFG_OK;
	}
	case CFG_T_URL:
		if ((r = cfg_url_check(v))) {
			snprintf(why, wn, "an http:// or https:// URL (%s)", r);
			return CFG_BAD;
		}
		cfg_set_text(obj, o->off, v);
		return CFG_OK;
	case CFG_T_REPO:
		if (cfg_is_nfs_url(v)) {
			struct cfg_nfs_url u;
			if ((r = cfg_nfs_check(v, &u))) {
				snprintf(why, wn, "nfs://host/export/path?nfsport=N&mountport=N (%s)",
					 r);
				return CFG_BAD;
			}
		} else if (v[0] != '/' || strlen(v) >= PATH_MAX) {
			snprintf(why, wn, "an absolute directory or an nfs://host/export/path URL");
			return CFG_BAD;
		}
		cfg_set_text(obj, o->off, v);
		return CFG_OK;
	case CFG_T_TIME: {
		size_t h = strspn(v, CFG_DIGITS);
		long hh, mm;

		snprintf(why, wn, "a time of day as HH:MM");
		if (h < 1 || h > 2 || v[h] != ':' || strlen(v + h + 1) != 2 ||
		    !cfg_all_of(v + h + 1, 2, CFG_DIGITS))
			return CFG_BAD;
		hh = strtol(v, NULL, 10);
		mm = strtol(v + h + 1, NULL, 10);
		if (hh > 23 || mm > 59)
			return CFG_RANGE;
		*(int *)f = (int)(hh * 60 + mm);
		return CFG_OK;
	}
	case CFG_T_ZONE:
		return cfg_store_zone(o, obj, v, why, wn);
	}
	snprintf(why, wn, "a value of a known type");
	return CFG_BAD;
}

/* ---- parse state and errors ---- */

static void *cfg_obj(const struct config *c, enum cfg_kind k, size_t i)
{
	switch (k) {
	case CFG_SEC_CLUSTER:
		return &c->clusters[i];
	case CFG_SEC_SCHEDULE:
		return &c->schedules[i];
	default:
		return (void *)c;
	}
}

static const char *cfg_obj_name(const struct config *c, enum cfg_kind k,
				size_t i)
{
	switch (k) {
	case CFG_SEC_CLUSTER:
		return c->clusters[i].name;
	case CFG_SEC_SCHEDULE:
		return c->schedules[i].name;
	default:
		return NULL;
	}
}

static void cfg_label(const struct cfg_ctx *ctx, const struct cfg_sect *s,
		      char *out, size_t n)
{
	const char *name = cfg_obj_name(ctx->cfg, s->kind, s->idx);

	if (name)
		snprintf(out, n, "[%s %s]", cfg_kind_names[s->kind], name);
	else
		snprintf(out, n, "[%s]", cfg_kind_names[s->kind]);
}

static int cfg_seen(const struct cfg_sect *s, const char *name)
{
	const struct cfg_option *o = cfg_find(s->kind, name);

	return o ? s->seen[o - cfg_options] : 0;
}

/* Line of o, or of its alt when that was given instead; 0 if neither. */
static int cfg_seen_either(const struct cfg_sect *s, const struct cfg_option *o)
{
	int l = s->seen[o - cfg_options];

	return l ? l : o->alt ? cfg_seen(s, o->alt) : 0;
}

static int cfg_fail(struct cfg_ctx *ctx, int code, int line,
		    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int cfg_fail(struct cfg_ctx *ctx, int code, int line,
		    const char *fmt, ...)
{
	char msg[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return err_set(ctx->e, code, "config '%s' line %d: %s", ctx->path,
		       line, msg);
}

/* Quotable form of a (non-secret) value: long values are cut. */
static const char *cfg_shown(const char *v, char *out, size_t n)
{
	if (strlen(v) < n)
		return v;
	snprintf(out, n, "%.*s...", (int)n - 4, v);
	return out;
}

static int cfg_bad(struct cfg_ctx *ctx, const struct cfg_option *o,
		   const char *v, const char *label, int r, const char *why)
{
	char shown[80];

	if (o->flags & CFG_F_SECRET)
		return cfg_fail(ctx, ERR_CONFIG, ctx->line,
				"%s value for '%s' in %s (not shown: a secret): expected %s",
				r == CFG_RANGE ? "out of range" : "bad", o->name,
				label, why);
	if (r == CFG_RANGE)
		return cfg_fail(ctx, ERR_CONFIG, ctx->line,
				"value '%s' for '%s' in %s is out of range: expected %s",
				cfg_shown(v, shown, sizeof(shown)), o->name, label,
				why);
	return cfg_fail(ctx, ERR_CONFIG, ctx->line,
			"bad value '%s' for '%s' in %s: expected %s",
			cfg_shown(v, shown, sizeof(shown)), o->name, label, why);
}

/* Reads a secret file the way ssh reads a private key: a regular file
 * nobody but its owner may read or write, one line, trailing newline
 * dropped. *out is the secret (caller wipes and frees it). */
static int cfg_read_secret(struct cfg_ctx *ctx, const struct cfg_option *o,
			   const char *path, const char *label, char **out)
{
	char data[CFG_MAX_SECRET + 1];
	size_t len = 0;
	struct stat st;
	int fd, rc = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		int en = errno;
		return err_set_errno(ctx->e, en == EACCES || en == EPERM
				     ? ERR_PERMISSION : ERR_CONFIG, en,
				     "config '%s' line %d: unable to open %s '%s' in %s",
				     ctx->path, ctx->line, o->name, path, label);
	}
	if (fstat(fd, &st) != 0)
		rc = err_set_errno(ctx->e, ERR_CONFIG, errno,
				   "config '%s' line %d: unable to stat %s '%s'",
				   ctx->path, ctx->line, o->name, path);
	else if (!S_ISREG(st.st_mode))
		rc = cfg_fail(ctx, ERR_CONFIG, ctx->line,
			      "%s '%s' in %s is not a regular file", o->name,
			      path, label);
	else if (st.st_mode & 077)
		rc = cfg_fail(ctx, ERR_PERMISSION, ctx->line,
			      "%s '%s' in %s is accessible by group or others (mode %04o); chmod 600 it",
			      o->name, path, label, (unsigned)(st.st_mode & 07777));
	while (rc == 0 && len < sizeof(data)) {
		ssize_t k = read(fd, data + len, sizeof(data) - len);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			rc = err_set_errno(ctx->e, ERR_CONFIG, errno,
					   "config '%s' line %d: unable to read %s '%s'",
					   ctx->path, ctx->line, o->name, path);
		if (k <= 0)
			break;
		len += (size_t)k;
	}
	close(fd);
	while (len && (data[len - 1] == '\n' || data[len - 1] == '\r'))
		len--;
	if (rc == 0 && len > CFG_MAX_SECRET)
		rc = cfg_fail(ctx, ERR_CONFIG, ctx->line,
			      "%s '%s' in %s is larger than %d bytes", o->name,
			      path, label, CFG_MAX_SECRET);
	else if (rc == 0 && len == 0)
		rc = cfg_fail(ctx, ERR_CONFIG, ctx->line, "%s '%s' in %s is empty",
			      o->name, path, label);
	else if (rc == 0 && (memchr(data, '\n', len) || memchr(data, '\r', len) ||
			     memchr(data, '\0', len)))
		rc = cfg_fail(ctx, ERR_CONFIG, ctx->line,
			      "%s '%s' in %s holds more than one line", o->name,
			      path, label);
	if (rc == 0)
		*out = xstrndup(data, len);
	explicit_bzero(data, sizeof(data));
	return rc;
}

/* A secret file's path goes to its own field, its content to the alt
 * option's field, checked as that option's type. */
static int cfg_set_secret_file(struct cfg_ctx *ctx, const struct cfg_option *o,
			       void *obj, const char *path, const char *label)
{
	const struct cfg_option *alt = cfg_find(o->kind, o->alt);
	char why[300];
	char *secret = NULL;
	int r;

	r = cfg_store(o, obj, path, why, sizeof(why));
	if (r)
		return cfg_bad(ctx, o, path, label, r, why);
	r = cfg_read_secret(ctx, o, path, label, &secret);
	if (r)
		return r;
	log_register_secret(secret);
	r = cfg_store(alt, obj, secret, why, sizeof(why));
	explicit_bzero(secret, strlen(secret));
	free(secret);
	if (r)
		return cfg_fail(ctx, ERR_CONFIG, ctx->line,
				"bad content of %s '%s' in %s (not shown: a secret): expected %s",
				o->name, path, label, why);
	return 0;
}

static size_t cfg_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), row[65];

	if (la > 64 || lb > 64)
		return SIZE_MAX;
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t diag = row[0];
		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t up = row[j];
			size_t best = diag + (a[i - 1] != b[j - 1]);
			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	return row[lb];
}

static int cfg_unknown_key(struct cfg_ctx *ctx, enum cfg_kind k,
			   const char *name, const char *label)
{
	const struct cfg_option *near = NULL;
	size_t best = 3;

	for (size_t i = 0; i < CFG_N_OPTIONS; i++) {
		const struct cfg_option *o = &cfg_options[i];
		size_t d;
		if (o->kind != k && strcmp(o->name, name) == 0)
			return cfg_fail(ctx, ERR_CONFIG, ctx->line,
					"unknown key '%s' in %s (it belongs in [%s%s])",
					name, label, cfg_kind_names[o->kind],
					o->kind == CFG_SEC_BACKUPD ? "" : " NAME");
		if (o->kind == k && (d = cfg_distance(name, o->name)) < best) {
			best = d;
			near = o;
		}
	}
	if (near)
		return cfg_fail(ctx, ERR_CONFIG, ctx->line,
				"unknown key '%s' in %s; did you mean '%s'?", name,
				label, near->name);
	return cfg_fail(ctx, ERR_CONFIG, ctx->line, "unknown key '%s' in %s",
			name, label);
}

/* inih's handler: one key = value of the section our reader last saw. */
static int cfg_on_key(void *user, const char *section, const char *name,
		      const char *value)
{
	struct cfg_ctx *ctx = user;
	struct cfg_sect *s = ctx->cur;
	const struct cfg_option *o;
	char label[128], why[300];
	void *obj;
	int alt_line, r;

	(void)section; /* inih does not trim it; ctx->cur knows more */
	if (err_is_set(ctx->e))
		return 0;
	if (!s) {
		cfg_fail(ctx, ERR_CONFIG, ctx->line,
			 "key '%s' outside any section: put it under [backupd], [cluster NAME] or [schedule NAME]",
			 name);
		return 0;
	}
	cfg_label(ctx, s, label, sizeof(label));
	o = cfg_find(s->kind, name);
	if (!o) {
		cfg_unknown_key(ctx, s->kind, name, label);
		return 0;
	}
	if (s->seen[o - cfg_options] && o->type != CFG_T_MULTI) {
		cfg_fail(ctx, ERR_CONFIG, ctx->line,
			 "duplicate key '%s' in %s (first set on line %d)", name,
			 label, s->seen[o - cfg_options]);
		return 0;
	}
	if (o->alt && (alt_line = cfg_seen(s, o->alt))) {
		cfg_fail(ctx, ERR_CONFIG, ctx->line,
			 "both '%s' (line %d) and '%s' in %s: give only one",
			 o->alt, alt_line, name, label);
		return 0;
	}
	if ((o->flags & CFG_F_SECRET) && (ctx->mode & (S_IRGRP | S_IROTH))) {
		cfg_fail(ctx, ERR_PERMISSION, ctx->line,
			 "holds a %s ('%s' in %s) and is readable by others (mode %04o); chmod 600 it",
			 strstr(name, "password") ? "password" : "secret", name,
			 label, (unsigned)(ctx->mode & 07777));
		return 0;
	}
	obj = cfg_obj(ctx->cfg, s->kind, s->idx);
	if (o->type == CFG_T_SECRET_FILE) {
		if (cfg_set_secret_file(ctx, o, obj, value, label))
			return 0;
	} else if ((r = cfg_store(o, obj, value, why, sizeof(why)))) {
		cfg_bad(ctx, o, value, label, r, why);
		return 0;
	} else if (o->flags & CFG_F_SECRET) {
		log_register_secret(value);
	}
	s->seen[o - cfg_options] = ctx->line;
	return 1;
}

/* ---- sections ---- */

static int cfg_check_cluster(struct cfg_ctx *ctx, const struct cfg_sect *s,
			     const char *label)
{
	const struct cfg_cluster *c = &ctx->cfg->clusters[s->idx];
	int warn = cfg_seen(s, "lag_warn_s"), crit = cfg_seen(s, "lag_crit_s");
	int hook = cfg_seen(s, "switch_hook"), sock = cfg_seen(s, "haproxy_socket");
	int drill = cfg_seen(s, "drill_target");
	char a[300];

	if (c->lag_warn_s >= c->lag_crit_s)
		return cfg_fail(ctx, ERR_CONFIG, crit ? crit : warn,
				"'lag_warn_s' (%g) must be below 'lag_crit_s' (%g) in %s",
				c->lag_warn_s, c->lag_crit_s, label);
	for (size_t i = 0; i < c->n_replicas; i++)
		if (cfg_addr_equal(&c->replicas[i], &c->primary)) {
			cfg_addr_format(&c->primary, a, sizeof(a));
			return cfg_fail(ctx, ERR_CONFIG, cfg_seen(s, "replicas"),
					"replica '%s' is the primary of %s", a,
					label);
		}
	if (cfg_addr_is_set(&c->drill_target)) {
		bool clash = cfg_addr_equal(&c->drill_target, &c->primary);
		for (size_t i = 0; i < c->n_replicas && !clash; i++)
			clash = cfg_addr_equal(&c->drill_target, &c->replicas[i]);
		cfg_addr_format(&c->drill_target, a, sizeof(a));
		if (clash)
			return cfg_fail(ctx, ERR_CONFIG, drill,
					"'drill_target' %s is a server of %s: a drill overwrites its target, give a scratch server",
					a, label);
	}
	if (hook && sock)
		return cfg_fail(ctx, ERR_CONFIG, hook > sock ? hook : sock,
				"both 'haproxy_socket' (line %d) and 'switch_hook' (line %d) in %s: cutover uses one traffic switch",
				sock, hook, label);
	return 0;
}

/* Required keys, keys that need others, then the cluster's own rules. */
static int cfg_close_section(struct cfg_ctx *ctx, const struct cfg_sect *s)
{
	char label[128];

	cfg_label(ctx, s, label, sizeof(label));
	for (size_t i = 0; i < CFG_N_OPTIONS; i++) {
		const struct cfg_option *o = &cfg_options[i];
		const struct cfg_option *need;

		if (o->kind != s->kind)
			continue;
		if ((o->flags & CFG_F_REQUIRED) && !cfg_seen_either(s, o))
			return cfg_fail(ctx, ERR_CONFIG, s->line,
					"missing required key '%s'%s%s%s in %s",
					o->name, o->alt ? " (or '" : "",
					o->alt ? o->alt : "", o->alt ? "')" : "",
					label);
		if (o->needs && s->seen[i] &&
		    !cfg_seen_either(s, need = cfg_find(s->kind, o->needs)))
			return cfg_fail(ctx, ERR_CONFIG, s->seen[i],
					"'%s' needs '%s'%s%s%s in %s", o->name,
					need->name, need->alt ? " (or '" : "",
					need->alt ? need->alt : "",
					need->alt ? "')" : "", label);
	}
	if (s->kind == CFG_SEC_CLUSTER)
		return cfg_check_cluster(ctx, s, label);
	return 0;
}

static bool cfg_name_ok(const char *name)
{
	size_t n = strlen(name);

	return n >= 1 && n <= CFG_NAME_MAX && name[0] != '.' && name[0] != '-' &&
	       cfg_all_of(name, n, CFG_NAME_CHARS ".");
}

/* A "[kind name]" header: closes the section before, opens this one with
 * its defaults. text is what stands between the brackets. */
static int cfg_open_section(struct cfg_ctx *ctx, const char *text, size_t len)
{
	struct config *c = ctx->cfg;
	struct cfg_sect *s;
	char hdr[128], why[300];
	char *kind, *name;
	int k = -1;
	size_t idx = 0;

	while (len && (*text == ' ' || *text == '\t')) {
		text++;
		len--;
	}
	while (len && (text[len - 1] == ' ' || text[len - 1] == '\t'))
		len--;
	if (len >= sizeof(hdr))
		return cfg_fail(ctx, ERR_CONFIG, ctx->line,
				"section header longer than %zu characters",
				sizeof(hdr) - 1);
	memcpy(hdr, text, len);
	hdr[len] = '\0';
	kind = hdr;
	name = hdr + strcspn(hdr, " \t");
	if (*name)
		*name++ = '\0';
	name += strspn(name, " \t");

	if (ctx->cur && cfg_close_section(ctx, ctx->cur))
		return -1;
	ctx->cur = NULL;

	for (int i = 0; i < CFG_N_KINDS; i++)
		if (strcmp(kind, cfg_kind_names[i]) == 0)
			k = i;
	if (!*kind)
		return cfg_fail(ctx, ERR_CONFIG, ctx->line, "empty section header '[]'");
	if (k < 0)
		return cfg_fail(ctx, ERR_CONFIG, ctx->line,
				"unknown section kind '%s': expected [backupd], [cluster NAME] or [schedule NAME]",
				kind);
	if (k == CFG_SEC_BACKUPD && *name)
		return cfg_fail(ctx, ERR_CONFIG, ctx->line,
				"[backupd] takes no name (found '%s')", name);
	if (k != CFG_SEC_BACKUPD && !*name)
		return cfg_fail(ctx, ERR_CONFIG, ctx->line,
				"section [%s] needs a name: [%s NAME]", kind, kind);
	if (k != CFG_SEC_BACKUPD && !cfg_name_ok(name))
		return cfg_fail(ctx, ERR_CONFIG, ctx->line,
				"bad %s name '%s': use up to %d letters, digits, '_', '-' and '.', not first '.' or '-'",
				kind, name, CFG_NAME_MAX);
	for (size_t i = 0; i < ctx->n_sects; i++) {
		const struct cfg_sect *o = ctx->sects[i];
		const char *oname = cfg_obj_name(c, o->kind, o->idx);
		if ((int)o->kind == k && (!oname || strcmp(oname, name) == 0))
			return cfg_fail(ctx, ERR_CONFIG, ctx->line,
					"duplicate section [%s%s%s] (first on line %d)",
					kind, *name ? " " : "", name, o->line);
	}

	if (k == CFG_SEC_CLUSTER) {
		if (c->n_clusters == CFG_MAX_CLUSTERS)
			return cfg_fail(ctx, ERR_CONFIG, ctx->line,
					"more than %d clusters", CFG_MAX_CLUSTERS);
		idx = c->n_clusters++;
		c->clusters = xrealloc(c->clusters, c->n_clusters * sizeof(*c->clusters));
		memset(&c->clusters[idx], 0, sizeof(c->clusters[idx]));
		c->clusters[idx].name = xstrdup(name);
		c->clusters[idx].line = ctx->line;
	} else if (k == CFG_SEC_SCHEDULE) {
		if (c->n_schedules == CFG_MAX_SCHEDULES)
			return cfg_fail(ctx, ERR_CONFIG, ctx->line,
					"more than %d schedules", CFG_MAX_SCHEDULES);
		idx = c->n_schedules++;
		c->schedules = xrealloc(c->schedules,
					c->n_schedules * sizeof(*c->schedules));
		memset(&c->schedules[idx], 0, sizeof(c->schedules[idx]));
		c->schedules[idx].name = xstrdup(name);
		c->schedules[idx].line = ctx->line;
	}
	s = xcalloc(1, sizeof(*s));
	s->kind = (enum cfg_kind)k;
	s->idx = idx;
	s->line = ctx->line;
	ctx->sects = xrealloc(ctx->sects, (ctx->n_sects + 1) * sizeof(*ctx->sects));
	ctx->sects[ctx->n_sects++] = s;
	ctx->cur = s;

	for (size_t i = 0; i < CFG_N_OPTIONS; i++) {
		const struct cfg_option *o = &cfg_options[i];
		if (o->kind == s->kind && o->def &&
		    cfg_store(o, cfg_obj(c, s->kind, idx), o->def, why, sizeof(why)))
			return cfg_fail(ctx, ERR_INTERNAL, ctx->line,
					"bad default '%s' of '%s': expected %s",
					o->def, o->name, why);
	}
	return 0;
}

/* inih's reader: fgets that counts lines, refuses over-long ones instead
 * of letting inih split them, and opens sections as their headers pass. */
static char *cfg_read_line(char *str, int num, void *stream)
{
	struct cfg_ctx *ctx = stream;
	const char *p, *close;
	size_t len;

	if (err_is_set(ctx->e))
		return NULL;
	if (!fgets(str, num, ctx->f)) {
		if (ferror(ctx->f))
			err_set_errno(ctx->e, ERR_IO, errno ? errno : EIO,
				      "config '%s' line %d: unable to read",
				      ctx->path, ctx->line + 1);
		return NULL;
	}
	ctx->line++;
	len = strlen(str);
	if (len == (size_t)num - 1 && str[len - 1] != '\n') {
		int c = getc(ctx->f);
		if (c != EOF && c != '\n') {
			cfg_fail(ctx, ERR_CONFIG, ctx->line,
				 "line longer than %d characters", num - 1);
			return NULL;
		}
	}
	p = str;
	if (ctx->line == 1 && memcmp(p, "\xEF\xBB\xBF", 3) == 0)
		p += 3;
	p += strspn(p, " \t");
	if (*p == '[' && (close = strchr(p, ']')) &&
	    cfg_open_section(ctx, p + 1, (size_t)(close - p - 1)))
		return NULL;
	return str;
}

/* After the last line: the last section, the file-wide rules, schedules'
 * cluster references and inherited defaults. */
static int cfg_finish(struct cfg_ctx *ctx)
{
	struct config *c = ctx->cfg;
	int last = ctx->line > 0 ? ctx->line : 1;
	bool backupd = false;

	if (ctx->cur && cfg_close_section(ctx, ctx->cur))
		return ctx->err.code;
	for (size_t i = 0; i < ctx->n_sects; i++)
		backupd |= ctx->sects[i]->kind == CFG_SEC_BACKUPD;
	if (!backupd)
		return cfg_fail(ctx, ERR_CONFIG, last,
				"missing [backupd] section (end of file reached)");
	if (c->n_clusters == 0)
		return cfg_fail(ctx, ERR_CONFIG, last,
				"no [cluster NAME] section: at least one is required");
	for (size_t i = 0; i < ctx->n_sects; i++) {
		const struct cfg_sect *s = ctx->sects[i];
		struct cfg_schedule *sc;

		if (s->kind != CFG_SEC_SCHEDULE)
			continue;
		sc = &c->schedules[s->idx];
		if (!config_find_cluster(c, sc->cluster))
			return cfg_fail(ctx, ERR_CONFIG, cfg_seen(s, "cluster"),
					"unknown cluster '%s' in [schedule %s]: there is no [cluster %s]",
					sc->cluster, sc->name, sc->cluster);
		for (size_t j = 0; j < CFG_N_OPTIONS; j++) {
			const struct cfg_option *o = &cfg_options[j], *from;
			if (o->kind != CFG_SEC_SCHEDULE ||
			    !(o->flags & CFG_F_INHERIT) || s->seen[j])
				continue;
			/* Only enums inherit so far: both fields are ints. */
			from = cfg_find(CFG_SEC_BACKUPD, o->name);
			*(int *)cfg_field(sc, o->off) = *(int *)cfg_field(c, from->off);
		}
	}
	return 0;
}

static pthread_mutex_t cfg_ini_lock = PTHREAD_MUTEX_INITIALIZER;

/* Debian's libinih has its build options as globals. backupd is their only
 * user in the process and sets them on every load, under cfg_ini_lock:
 * lines up to CFG_MAX_LINE on the heap; no continuation lines (an indented
 * line is an error, not a silent append to the key above); stop at the
 * first error so that its line is the one reported. */
static void cfg_ini_options(void)
{
	ini_use_stack = false;
	ini_allow_realloc = false;
	ini_initial_alloc = CFG_MAX_LINE;
	ini_max_line = CFG_MAX_LINE;
	ini_allow_multiline = false;
	ini_allow_bom = true;
	ini_allow_inline_comments = true;
	ini_allow_no_value = false;
	ini_stop_on_first_error = true;
}

int config_load(const char *path, struct config **out, struct err *e)
{
	struct cfg_ctx ctx;
	struct stat st;
	int rc;

	*out = NULL;
	memset(&ctx, 0, sizeof(ctx));
	ctx.e = &ctx.err;
	ctx.cfg = xcalloc(1, sizeof(*ctx.cfg));
	ctx.cfg->path = xstrdup(path);
	ctx.path = ctx.cfg->path;
	ctx.f = fopen(path, "re");
	if (!ctx.f) {
		int en = errno;
		err_set_errno(ctx.e, en == EACCES || en == EPERM ? ERR_PERMISSION
			      : ERR_CONFIG, en, "unable to open config '%s'", path);
	} else if (fstat(fileno(ctx.f), &st) != 0) {
		err_set_errno(ctx.e, ERR_CONFIG, errno,
			      "unable to stat config '%s'", path);
	} else if (!S_ISREG(st.st_mode)) {
		err_set(ctx.e, ERR_CONFIG, "config '%s' is not a regular file", path);
	} else {
		ctx.mode = st.st_mode;
		pthread_mutex_lock(&cfg_ini_lock);
		cfg_ini_options();
		rc = ini_parse_stream(cfg_read_line, &ctx, cfg_on_key, &ctx);
		pthread_mutex_unlock(&cfg_ini_lock);
		if (err_is_set(ctx.e))
			;
		else if (rc > 0)
			cfg_fail(&ctx, ERR_CONFIG, rc,
				 "syntax error: expected '[section]', 'key = value' or a comment");
		else if (rc < 0)
			err_set(ctx.e, ERR_INTERNAL,
				"unable to parse config '%s' (inih error %d)", path, rc);
		else
			cfg_finish(&ctx);
	}
	if (ctx.f)
		fclose(ctx.f);
	for (size_t i = 0; i < ctx.n_sects; i++)
		free(ctx.sects[i]);
	free(ctx.sects);
	rc = ctx.err.code;
	if (rc) {
		if (e && !err_is_set(e))
			*e = ctx.err;
		config_free(ctx.cfg);
		return rc;
	}
	*out = ctx.cfg;
	return 0;
}

static void cfg_free_fields(enum cfg_kind k, void *obj)
{
	for (size_t i = 0; i < CFG_N_OPTIONS; i++) {
		const struct cfg_option *o = &cfg_options[i];
		void *f = cfg_field(obj, o->off);

		if (o->kind != k)
			continue;
		if (cfg_is_text(o->type)) {
			char *s = *(char **)f;
			if (s && (o->flags & CFG_F_SECRET))
				explicit_bzero(s, strlen(s));
			free(s);
		} else if (o->type == CFG_T_ADDR_LIST) {
			free(*(struct cfg_addr **)f);
		} else if (o->type == CFG_T_LIST || o->type == CFG_T_MULTI) {
			cfg_free_strv(*(char ***)f, *(size_t *)cfg_field(obj, o->off_n));
		}
	}
}

void config_free(struct config *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n_clusters; i++) {
		cfg_free_fields(CFG_SEC_CLUSTER, &c->clusters[i]);
		free(c->clusters[i].name);
	}
	for (size_t i = 0; i < c->n_schedules; i++) {
		cfg_free_fields(CFG_SEC_SCHEDULE, &c->schedules[i]);
		free(c->schedules[i].name);
	}
	cfg_free_fields(CFG_SEC_BACKUPD, c);
	free(c->clusters);
	free(c->schedules);
	free(c->path);
	free(c);
}

const struct cfg_cluster *config_find_cluster(const struct config *c,
					      const char *name)
{
	if (!c || !name)
		return NULL;
	for (size_t i = 0; i < c->n_clusters; i++)
		if (strcmp(c->clusters[i].name, name) == 0)
			return &c->clusters[i];
	return NULL;
}

/* ---- printing ---- */

/* o's value in obj as config text (secrets masked) into b; false when
 * unset. Not for CFG_T_MULTI, which prints one line per value. */
static bool cfg_text_value(const struct cfg_option *o, const void *obj,
			   struct buf *b, struct err *e)
{
	const void *f = cfg_field(obj, o->off);

	buf_reset(b);
	if (cfg_is_text(o->type)) {
		const char *s = *(char *const *)f;
		if (!s)
			return false;
		buf_append_str(b, o->flags & CFG_F_SECRET ? CFG_SECRET_MASK : s, e);
		return true;
	}
	switch (o->type) {
	case CFG_T_INT:
		buf_printf(b, e, "%d", *(const int *)f);
		break;
	case CFG_T_DECIMAL:
		buf_printf(b, e, "%g", *(const double *)f);
		break;
	case CFG_T_BOOL:
		buf_append_str(b, *(const bool *)f ? "true" : "false", e);
		break;
	case CFG_T_ENUM:
		buf_append_str(b, o->values[*(const int *)f], e);
		break;
	case CFG_T_TIME:
		buf_printf(b, e, "%02d:%02d", *(const int *)f / 60,
			   *(const int *)f % 60);
		break;
	case CFG_T_ADDR: {
		char a[300];
		if (!cfg_addr_is_set(f))
			return false;
		cfg_addr_format(f, a, sizeof(a));
		buf_append_str(b, a, e);
		break;
	}
	case CFG_T_ADDR_LIST: {
		const struct cfg_addr *as = *(struct cfg_addr *const *)f;
		size_t n = *(const size_t *)cfg_field(obj, o->off_n);
		char a[300];
		for (size_t i = 0; i < n; i++) {
			cfg_addr_format(&as[i], a, sizeof(a));
			buf_printf(b, e, "%s%s", i ? ", " : "", a);
		}
		break;
	}
	case CFG_T_LIST: {
		char *const *v = *(char **const *)f;
		size_t n = *(const size_t *)cfg_field(obj, o->off_n);
		for (size_t i = 0; i < n; i++)
			buf_printf(b, e, "%s%s", i ? ", " : "", v[i]);
		break;
	}
	default:
		return false;
	}
	return true;
}

static void cfg_print_ini_section(const struct config *c, enum cfg_kind k,
				  size_t idx, FILE *out, struct buf *b,
				  struct err *e)
{
	const void *obj = cfg_obj(c, k, idx);
	const char *name = cfg_obj_name(c, k, idx);

	fprintf(out, "\n[%s%s%s]\n", cfg_kind_names[k], name ? " " : "",
		name ? name : "");
	for (size_t i = 0; i < CFG_N_OPTIONS; i++) {
		const struct cfg_option *o = &cfg_options[i];

		if (o->kind != k)
			continue;
		if (o->type == CFG_T_MULTI) {
			char *const *v = *(char **const *)cfg_field(obj, o->off);
			size_t n = *(const size_t *)cfg_field(obj, o->off_n);
			if (n == 0)
				fprintf(out, "; %s =\n", o->name);
			for (size_t j = 0; j < n; j++)
				fprintf(out, "%s = %s\n", o->name, v[j]);
		} else if ((o->flags & CFG_F_SECRET) && o->alt &&
			   *(char *const *)cfg_field(obj, cfg_find(k, o->alt)->off)) {
			/* Commented out so that the output loads again. */
			fprintf(out, "; %s = %s (from %s)\n", o->name,
				CFG_SECRET_MASK, o->alt);
		} else if (cfg_text_value(o, obj, b, e)) {
			fprintf(out, "%s = %s\n", o->name, b->data);
		} else {
			fprintf(out, "; %s =\n", o->name);
		}
	}
}

/* A JSON string, or NULL (with *bad = key) when s is not valid UTF-8. */
static json_t *cfg_json_str(const char *s, const char *key, const char **bad)
{
	json_t *j = json_string(s);

	if (!j && !*bad)
		*bad = key;
	return j;
}

static json_t *cfg_json_value(const struct cfg_option *o, const void *obj,
			      struct buf *b, struct err *e, const char **bad)
{
	const void *f = cfg_field(obj, o->off);
	json_t *arr;

	switch (o->type) {
	case CFG_T_INT:
		return json_integer(*(const int *)f);
	case CFG_T_DECIMAL:
		return json_real(*(const double *)f);
	case CFG_T_BOOL:
		return json_boolean(*(const bool *)f);
	case CFG_T_ADDR_LIST:
	case CFG_T_LIST:
	case CFG_T_MULTI: {
		size_t n = *(const size_t *)cfg_field(obj, o->off_n);
		char a[300];
		arr = json_array();
		for (size_t i = 0; i < n; i++) {
			const char *s = a;
			if (o->type == CFG_T_ADDR_LIST)
				cfg_addr_format(&(*(struct cfg_addr *const *)f)[i],
						a, sizeof(a));
			else
				s = (*(char **const *)f)[i];
			json_array_append_new(arr, cfg_json_str(s, o->name, bad));
		}
		return arr;
	}
	default:
		break;
	}
	if (!cfg_text_value(o, obj, b, e))
		return json_null();
	return cfg_json_str(b->data, o->name, bad);
}

static json_t *cfg_json_section(const struct config *c, enum cfg_kind k,
				size_t idx, struct buf *b, struct err *e,
				const char **bad)
{
	const void *obj = cfg_obj(c, k, idx);
	json_t *j = json_object();

	for (size_t i = 0; i < CFG_N_OPTIONS; i++)
		if (cfg_options[i].kind == k)
			json_object_set_new(j, cfg_options[i].name,
					    cfg_json_value(&cfg_options[i], obj,
							   b, e, bad));
	return j;
}

int config_print(const struct config *c, FILE *out, bool json, struct err *e)
{
	struct buf b;
	int rc = 0;

	buf_init(&b, 1024 * 1024);
	if (json) {
		const char *bad = NULL;
		json_t *root = json_object(), *cl = json_object(), *sc = json_object();

		json_object_set_new(root, "path", cfg_json_str(c->path, "path", &bad));
		json_object_set_new(root, "backupd",
				    cfg_json_section(c, CFG_SEC_BACKUPD, 0, &b, e, &bad));
		for (size_t i = 0; i < c->n_clusters; i++)
			json_object_set_new(cl, c->clusters[i].name,
					    cfg_json_section(c, CFG_SEC_CLUSTER, i,
							     &b, e, &bad));
		for (size_t i = 0; i < c->n_schedules; i++)
			json_object_set_new(sc, c->schedules[i].name,
					    cfg_json_section(c, CFG_SEC_SCHEDULE, i,
							     &b, e, &bad));
		json_object_set_new(root, "clusters", cl);
		json_object_set_new(root, "schedules", sc);
		if (bad)
			rc = err_set(e, ERR_CONFIG,
				     "value of '%s' in config '%s' is not valid UTF-8",
				     bad, c->path);
		else if (json_dumpf(root, out, JSON_INDENT(2) | JSON_PRESERVE_ORDER) != 0)
			rc = err_set(e, ERR_IO, "unable to write the config as JSON");
		else
			fputc('\n', out);
		json_decref(root);
	} else {
		fprintf(out, "; effective configuration of '%s' (secrets masked, "
			"unset keys commented out)\n", c->path);
		cfg_print_ini_section(c, CFG_SEC_BACKUPD, 0, out, &b, e);
		for (size_t i = 0; i < c->n_clusters; i++)
			cfg_print_ini_section(c, CFG_SEC_CLUSTER, i, out, &b, e);
		for (size_t i = 0; i < c->n_schedules; i++)
			cfg_print_ini_section(c, CFG_SEC_SCHEDULE, i, out, &b, e);
	}
	buf_release(&b);
	if (rc == 0 && (fflush(out) != 0 || ferror(out)))
		rc = err_set_errno(e, ERR_IO, errno ? errno : EIO,
				   "unable to write the config");
	return rc;
}

void config_help(FILE *out)
{
	static const char *const heads[CFG_N_KINDS] = {
		"[backupd]          exactly once",
		"[cluster NAME]     one or more; NAME: letters, digits, _ - .",
		"[schedule NAME]    zero or more",
	};

	fprintf(out,
		"backupd config: one INI file, 'key = value' lines, comments start with ';' or '#'\n"
		"(inline: ' ;'). Paths are absolute. Secret files must be mode 0600 or 0400, and a\n"
		"config holding a secret inline must not be readable by group or others.\n");
	for (int k = 0; k < CFG_N_KINDS; k++) {
		fprintf(out, "\n%s\n", heads[k]);
		for (size_t i = 0; i < CFG_N_OPTIONS; i++) {
			const struct cfg_option *o = &cfg_options[i];
			char type[120], attr[160];
			size_t n = 0;

			if ((int)o->kind != k)
				continue;
			if (o->type == CFG_T_ENUM)
				for (int v = 0; o->values[v] && n < sizeof(type); v++)
					n += (size_t)snprintf(type + n, sizeof(type) - n,
							      "%s%s", v ? "|" : "",
							      o->values[v]);
			else if (o->type == CFG_T_INT)
				snprintf(type, sizeof(type), "int %ld..%ld",
					 (long)o->min, (long)o->max);
			else if (o->type == CFG_T_DECIMAL)
				snprintf(type, sizeof(type), "decimal %g..%g",
					 o->min, o->max);
			else
				snprintf(type, sizeof(type), "%s",
					 cfg_type_names[o->type]);
			if (o->flags & CFG_F_REQUIRED)
				n = (size_t)snprintf(attr, sizeof(attr), "required");
			else if (o->def)
				n = (size_t)snprintf(attr, sizeof(attr), "default %s", o->def);
			else if (o->flags & CFG_F_INHERIT)
				n = (size_t)snprintf(attr, sizeof(attr),
						     "default: [backupd] %s", o->name);
			else
				n = (size_t)snprintf(attr, sizeof(attr), "optional");
			if (o->alt && n < sizeof(attr))
				n += (size_t)snprintf(attr + n, sizeof(attr) - n,
						      ", or %s", o->alt);
			if ((o->flags & CFG_F_SECRET) && n < sizeof(attr))
				snprintf(attr + n, sizeof(attr) - n, ", secret");
			fprintf(out, "  %-26s %-36s %s\n      %s\n", o->name, type,
				attr, o->help);
		}
	}
}
