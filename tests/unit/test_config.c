/* Unit tests of lib/config: the DESIGN.md example and deploy example load,
 * defaults, every kind of error with its exact message and line, secret
 * file and config file modes, masking in config_print and the log, address
 * and URL edge cases. Configs are written into a mkdtemp directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "config.h"
#include "log.h"
#include "mem.h"

static char tmpdir[64];

/* Replaces @D with the temp dir and @F with the config path. */
static char *subst(const char *text, const char *cfg_path)
{
	struct buf b;
	struct err e;
	char *out;

	err_init(&e);
	buf_init(&b, 0);
	for (const char *p = text; *p; p++) {
		if (p[0] == '@' && p[1] == 'D') {
			buf_append_str(&b, tmpdir, &e);
			p++;
		} else if (p[0] == '@' && p[1] == 'F') {
			buf_append_str(&b, cfg_path, &e);
			p++;
		} else {
			buf_append_char(&b, *p, &e);
		}
	}
	assert_false(err_is_set(&e));
	out = buf_detach(&b);
	buf_release(&b); /* buf_detach re-initialises b */
	return out;
}

/* Writes tmpdir/name with exactly mode (umask aside); returns its path. */
static char *put_file(const char *name, mode_t mode, const char *text)
{
	char *path = xmalloc(256);
	char *body;
	int fd;

	snprintf(path, 256, "%s/%s", tmpdir, name);
	body = subst(text, path);
	unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, body, strlen(body)), (ssize_t)strlen(body));
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
	free(body);
	return path;
}

static int rm_entry(const char *p, const struct stat *st, int flag,
		    struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(p);
}

static int setup(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_config.XXXXXX");
	if (!mkdtemp(tmpdir))
		return -1;
	free(put_file("pw", 0600, "s3cret-pw\n"));
	free(put_file("repl", 0400, "r3pl-pw\r\n"));
	free(put_file("hook", 0600, "https://hooks.example.com/services/T0/B0/XyZ\n"));
	free(put_file("pw644", 0644, "loose\n"));
	free(put_file("pw640", 0640, "loose\n"));
	free(put_file("empty", 0600, "\n"));
	free(put_file("twolines", 0600, "a\nb\n"));
	free(put_file("badhook", 0600, "ftp://x/y\n"));
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	return nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static struct config *load_ok(const char *name, mode_t mode, const char *text)
{
	char *path = put_file(name, mode, text);
	struct config *c = NULL;
	struct err e;

	err_init(&e);
	if (config_load(path, &c, &e) != 0)
		print_message("unexpected error: %s\n", e.msg);
	assert_int_equal(e.code, 0);
	assert_non_null(c);
	assert_string_equal(c->path, path);
	free(path);
	return c;
}

/* ---- the contract example ---- */

static const char design_example[] =
	"[backupd]\n"
	"catalog        = /var/lib/backupd/catalog.db\n"
	"repository     = nfs://nfs-host/export/mysql?nfsport=2049&mountport=20048   ; or a local directory\n"
	"threads        = 4\n"
	"compress_level = 3\n"
	"slack_webhook  = https://hooks.slack.com/services/...   ; or slack_webhook_file = PATH\n"
	"metrics_listen = 127.0.0.1:9590\n"
	"control_socket = /run/backupd/backupd.sock\n"
	"\n"
	"[cluster shop]\n"
	"primary        = 10.0.0.11:3306\n"
	"replicas       = 10.0.0.12:3306, 10.0.0.13:3306\n"
	"user           = backupd                 ; password = ... or password_file = PATH\n"
	"password_file  = @D/pw\n"
	"replication_user = repl                  ; replication_password(_file) likewise\n"
	"replication_password_file = @D/repl\n"
	"snapshot_from  = replica                 ; replica | primary\n"
	"lag_warn_s     = 5\n"
	"lag_crit_s     = 30\n"
	"rebuild        = manual                  ; manual | auto\n"
	"keep_last      = 7                       ; retention; keep_days = N as well\n"
	"drill_target   = 10.0.0.20:3306          ; scratch server for DR drills\n"
	"haproxy_socket = /run/haproxy/admin.sock ; traffic switch for cutover (servers found by address)\n"
	"haproxy_backend = mysql_writer           ; or switch_hook = PATH (called with old and new writer)\n"
	"\n"
	"[schedule nightly]\n"
	"cluster = shop\n"
	"job     = snapshot                       ; snapshot | verify | prune | drill\n"
	"cron    = 0 3 * * *\n";

static void test_design_example(void **state)
{
	struct config *c = load_ok("design.conf", 0600, design_example);
	const struct cfg_cluster *cl;
	const struct cfg_schedule *s;
	struct cfg_nfs_url u;
	struct err e;
	char a[300];

	(void)state;
	err_init(&e);
	assert_string_equal(c->catalog, "/var/lib/backupd/catalog.db");
	assert_string_equal(c->repository,
			    "nfs://nfs-host/export/mysql?nfsport=2049&mountport=20048");
	assert_true(cfg_is_nfs_url(c->repository));
	assert_int_equal(cfg_nfs_url_parse(c->repository, &u, &e), 0);
	assert_string_equal(u.host, "nfs-host");
	assert_string_equal(u.path, "/export/mysql");
	assert_int_equal(u.nfsport, 2049);
	assert_int_equal(u.mountport, 20048);
	assert_int_equal(c->threads, 4);
	assert_int_equal(c->compress_level, 3);
	assert_string_equal(c->slack_webhook, "https://hooks.slack.com/services/...");
	assert_null(c->slack_webhook_file);
	assert_string_equal(c->metrics_listen, "127.0.0.1:9590");
	assert_string_equal(c->control_socket, "/run/backupd/backupd.sock");

	assert_int_equal(c->n_clusters, 1);
	cl = config_find_cluster(c, "shop");
	assert_ptr_equal(cl, &c->clusters[0]);
	assert_null(config_find_cluster(c, "nope"));
	assert_string_equal(cl->name, "shop");
	assert_int_equal(cl->line, 10);
	assert_string_equal(cl->primary.host, "10.0.0.11");
	assert_int_equal(cl->primary.port, 3306);
	assert_int_equal(cl->n_replicas, 2);
	cfg_addr_format(&cl->replicas[1], a, sizeof(a));
	assert_string_equal(a, "10.0.0.13:3306");
	assert_string_equal(cl->user, "backupd");
	assert_string_equal(cl->password, "s3cret-pw");
	assert_non_null(strstr(cl->password_file, "/pw"));
	assert_string_equal(cl->replication_user, "repl");
	assert_string_equal(cl->replication_password, "r3pl-pw"); /* \r\n dropped */
	assert_int_equal(cl->snapshot_from, CFG_FROM_REPLICA);
	assert_true(cl->lag_warn_s == 5.0);
	assert_true(cl->lag_crit_s == 30.0);
	assert_int_equal(cl->rebuild, CFG_REBUILD_MANUAL);
	assert_int_equal(cl->keep_last, 7);
	assert_true(cfg_addr_is_set(&cl->drill_target));
	assert_string_equal(cl->drill_target.host, "10.0.0.20");
	assert_string_equal(cl->haproxy_socket, "/run/haproxy/admin.sock");
	assert_string_equal(cl->haproxy_backend, "mysql_writer");
	assert_null(cl->switch_hook);

	assert_int_equal(c->n_schedules, 1);
	s = &c->schedules[0];
	assert_string_equal(s->name, "nightly");
	assert_string_equal(s->cluster, "shop");
	assert_int_equal(s->job, CFG_JOB_SNAPSHOT);
	assert_string_equal(cfg_job_name(s->job), "snapshot");
	assert_string_equal(s->cron, "0 3 * * *");
	assert_null(s->timezone);
	assert_int_equal(s->line, 26);
	config_free(c);
}

/* deploy/backupd.conf.example, with its secret paths moved to tmpdir. */
static void test_deploy_example(void **state)
{
	FILE *f = fopen("deploy/backupd.conf.example", "r");
	struct buf b;
	struct err e;
	char line[4096];
	struct config *c;

	(void)state;
	if (!f)
		skip();
	err_init(&e);
	buf_init(&b, 0);
	free(put_file("shop-backupd.pw", 0600, "pw1\n"));
	free(put_file("shop-repl.pw", 0600, "pw2\n"));
	free(put_file("slack-webhook", 0600, "https://hooks.slack.com/services/T/B/C\n"));
	while (fgets(line, sizeof(line), f)) {
		char *p = strstr(line, "/etc/backupd/secrets");
		if (p) {
			buf_append(&b, line, (size_t)(p - line), &e);
			buf_append_str(&b, "@D", &e);
			buf_append_str(&b, p + strlen("/etc/backupd/secrets"), &e);
		} else {
			buf_append_str(&b, line, &e);
		}
	}
	fclose(f);
	c = load_ok("deploy.conf", 0644, b.data);
	buf_release(&b);
	assert_string_equal(c->clusters[0].password, "pw1");
	assert_string_equal(c->clusters[0].replication_password, "pw2");
	assert_string_equal(c->slack_webhook, "https://hooks.slack.com/services/T/B/C");
	assert_int_equal(c->clusters[0].n_drill_probes, 2);
	assert_int_equal(c->n_schedules, 4);
	assert_string_equal(c->schedules[0].timezone, "Europe/Berlin");
	assert_int_equal(c->schedules[3].job, CFG_JOB_DRILL);
	assert_int_equal(c->schedules[3].missed_runs, CFG_MISSED_SKIP);
	config_free(c);
}

static void test_defaults(void **state)
{
	struct config *c = load_ok("min.conf", 0600,
		"[backupd]\n"
		"catalog = /var/lib/backupd/c.db\n"
		"repository = /srv/backups\n"
		"[cluster shop]\n"
		"primary = 127.0.0.1:3306\n"
		"user = backupd\n"
		"password_file = @D/pw\n"
		"[schedule p]\n"
		"cluster = shop\n"
		"job = prune\n"
		"cron = @daily\n");
	const struct cfg_cluster *cl = &c->clusters[0];

	(void)state;
	assert_false(cfg_is_nfs_url(c->repository));
	assert_int_equal(c->threads, 4);
	assert_int_equal(c->compress_level, 3);
	assert_null(c->slack_webhook);
	assert_null(c->metrics_listen);
	assert_string_equal(c->control_socket, "/run/backupd/backupd.sock");
	assert_int_equal(c->log_level, LOGL_INFO);
	assert_int_equal(c->log_format, LOG_FORMAT_TEXT);
	assert_null(c->pid_file);
	assert_int_equal(c->digest_time_min, 9 * 60);
	assert_int_equal(c->missed_runs, CFG_MISSED_RUN_ONCE);

	assert_int_equal(cl->n_replicas, 0);
	assert_null(cl->replicas);
	assert_null(cl->replication_user);
	assert_null(cl->replication_password);
	assert_int_equal(cl->snapshot_from, CFG_FROM_REPLICA);
	assert_true(cl->lag_warn_s == 5.0);
	assert_true(cl->lag_crit_s == 30.0);
	assert_int_equal(cl->rebuild, CFG_REBUILD_MANUAL);
	assert_int_equal(cl->rebuild_interval_s, 3600);
	assert_int_equal(cl->keep_last, 7);
	assert_int_equal(cl->keep_days, 0);
	assert_false(cfg_addr_is_set(&cl->drill_target));
	assert_int_equal(cl->n_drill_probes, 0);
	assert_int_equal(cl->drill_max_age_h, 48);
	assert_false(cl->drill_keep);
	assert_null(cl->haproxy_socket);
	assert_int_equal(cl->n_databases, 0);
	assert_false(cl->include_users);
	assert_int_equal(cl->connect_timeout_s, 5);
	assert_int_equal(cl->read_timeout_s, 3600);
	assert_int_equal(cl->write_timeout_s, 3600);
	assert_int_equal(cl->ssl_mode, CFG_SSL_PREFERRED);
	assert_null(cl->ssl_ca);
	assert_int_equal(c->schedules[0].job, CFG_JOB_PRUNE);
	assert_int_equal(c->schedules[0].missed_runs, CFG_MISSED_RUN_ONCE);
	config_free(c);
}

/* Every key set to a non-default value; lists, repeats, inheritance, odd
 * but valid spelling (BOM, CRLF, spaces in the header, indented keys). */
static void test_all_keys(void **state)
{
	struct config *c = load_ok("all.conf", 0600,
		"\xEF\xBB\xBF; all keys\r\n"
		"[schedule early]\r\n"
		"cluster = shop\n"
		"job = verify\n"
		"cron = 5 * * * *\n"
		"timezone = Europe/Berlin\n"
		"[schedule late]\n"
		"cluster = shop\n"
		"job = drill\n"
		"cron = 0 23 * * *\n"
		"missed_runs = run_once\n"
		"[ cluster   shop ]\n"
		"  primary = [::1]:3306\n"
		"replicas =\n"
		"user = backupd\n"
		"password = inline;pw\n"
		"replication_user = repl\n"
		"replication_password = rpw\n"
		"snapshot_from = primary\n"
		"lag_warn_s = 0.5\n"
		"lag_crit_s = 2.25\n"
		"rebuild = auto\n"
		"rebuild_interval_s = 600\n"
		"keep_last = 0\n"
		"keep_days = 30\n"
		"drill_target = [::1]:3307\n"
		"drill_probe = SELECT COUNT(*) FROM shop.orders\n"
		"drill_probe = SELECT 1\n"
		"drill_max_age_h = 24\n"
		"drill_keep = yes\n"
		"switch_hook = /usr/local/bin/switch\n"
		"databases = shop , billing\n"
		"include_users = ON\n"
		"connect_timeout_s = 2\n"
		"read_timeout_s = 60\n"
		"write_timeout_s = 61\n"
		"ssl_mode = verify_identity\n"
		"ssl_ca = /etc/ssl/ca.pem\n"
		"ssl_cert = /etc/ssl/c.pem\n"
		"ssl_key = /etc/ssl/k.pem\n"
		"[cluster b-2.x_y]\n"
		"primary = db.example.com:3306\n"
		"replicas = db2.example.com:3306,10.1.1.1:1\n"
		"user = u\n"
		"password_file = @D/pw\n"
		"haproxy_socket = /run/haproxy.sock\n"
		"haproxy_backend = w\n"
		"haproxy_read_backend = r\n"
		"[backupd]\n"
		"catalog = /c.db\n"
		"repository = nfs://[fd00::1]/export\n"
		"threads = 64\n"
		"compress_level = 19\n"
		"slack_webhook_file = @D/hook\n"
		"metrics_listen = [::1]:9590\n"
		"control_socket = /tmp/b.sock\n"
		"log_level = trace\n"
		"log_format = json\n"
		"pid_file = /run/b.pid\n"
		"digest_time = 7:05\n"
		"missed_runs = skip\n");
	const struct cfg_cluster *cl = config_find_cluster(c, "shop");
	const struct cfg_cluster *b2 = config_find_cluster(c, "b-2.x_y");
	char a[300];

	(void)state;
	assert_non_null(cl);
	assert_non_null(b2);
	assert_int_equal(c->threads, 64);
	assert_int_equal(c->compress_level, 19);
	assert_string_equal(c->slack_webhook,
			    "https://hooks.example.com/services/T0/B0/XyZ");
	assert_string_equal(c->metrics_listen, "[::1]:9590");
	assert_int_equal(c->log_level, LOGL_TRACE);
	assert_int_equal(c->log_format, LOG_FORMAT_JSON);
	assert_string_equal(c->pid_file, "/run/b.pid");
	assert_int_equal(c->digest_time_min, 7 * 60 + 5);
	assert_int_equal(c->missed_runs, CFG_MISSED_SKIP);

	assert_string_equal(cl->primary.host, "::1");
	cfg_addr_format(&cl->primary, a, sizeof(a));
	assert_string_equal(a, "[::1]:3306");
	assert_int_equal(cl->n_replicas, 0);
	assert_string_equal(cl->password, "inline;pw");
	assert_null(cl->password_file);
	assert_string_equal(cl->replication_password, "rpw");
	assert_int_equal(cl->snapshot_from, CFG_FROM_PRIMARY);
	assert_true(cl->lag_warn_s == 0.5);
	assert_true(cl->lag_crit_s == 2.25);
	assert_int_equal(cl->rebuild, CFG_REBUILD_AUTO);
	assert_int_equal(cl->rebuild_interval_s, 600);
	assert_int_equal(cl->keep_last, 0);
	assert_int_equal(cl->keep_days, 30);
	assert_int_equal(cl->drill_target.port, 3307);
	assert_int_equal(cl->n_drill_probes, 2);
	assert_string_equal(cl->drill_probes[0], "SELECT COUNT(*) FROM shop.orders");
	assert_string_equal(cl->drill_probes[1], "SELECT 1");
	assert_int_equal(cl->drill_max_age_h, 24);
	assert_true(cl->drill_keep);
	assert_string_equal(cl->switch_hook, "/usr/local/bin/switch");
	assert_int_equal(cl->n_databases, 2);
	assert_string_equal(cl->databases[0], "shop");
	assert_string_equal(cl->databases[1], "billing");
	assert_true(cl->include_users);
	assert_int_equal(cl->connect_timeout_s, 2);
	assert_int_equal(cl->read_timeout_s, 60);
	assert_int_equal(cl->write_timeout_s, 61);
	assert_int_equal(cl->ssl_mode, CFG_SSL_VERIFY_IDENTITY);
	assert_string_equal(cl->ssl_key, "/etc/ssl/k.pem");

	assert_int_equal(b2->n_replicas, 2);
	assert_string_equal(b2->replicas[0].host, "db2.example.com");
	assert_int_equal(b2->replicas[1].port, 1);
	assert_string_equal(b2->haproxy_read_backend, "r");

	/* [backupd] comes last, yet "early" inherits its missed_runs. */
	assert_int_equal(c->schedules[0].missed_runs, CFG_MISSED_SKIP);
	assert_string_equal(c->schedules[0].timezone, "Europe/Berlin");
	assert_int_equal(c->schedules[1].missed_runs, CFG_MISSED_RUN_ONCE);
	config_free(c);
}

/* ---- errors: exact message, exact line ---- */

/* BK ends inside [backupd], CL inside [cluster shop]: line 8 is the next. */
#define BK "[cluster shop]\n"                   /* 1 */ \
	   "primary = 127.0.0.1:3306\n"         /* 2 */ \
	   "user = backupd\n"                   /* 3 */ \
	   "password_file = @D/pw\n"            /* 4 */ \
	   "[backupd]\n"                        /* 5 */ \
	   "catalog = /var/lib/backupd/c.db\n"  /* 6 */ \
	   "repository = /srv/backups\n"        /* 7 */
#define CL "[backupd]\n"                        /* 1 */ \
	   "catalog = /var/lib/backupd/c.db\n"  /* 2 */ \
	   "repository = /srv/backups\n"        /* 3 */ \
	   "[cluster shop]\n"                   /* 4 */ \
	   "primary = 127.0.0.1:3306\n"         /* 5 */ \
	   "user = backupd\n"                   /* 6 */ \
	   "password_file = @D/pw\n"            /* 7 */
#define SCHED "[schedule nightly]\n"            /* 8 */ \
	      "cluster = shop\n"                /* 9 */ \
	      "job = snapshot\n"                /* 10 */ \
	      "cron = 0 3 * * *\n"              /* 11 */

struct bad_case {
	const char *text;
	mode_t mode;        /* 0: 0600 */
	int code;
	const char *msg;    /* @F: config path, @D: temp dir */
};

#define LONG40 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define LONG400 LONG40 LONG40 LONG40 LONG40 LONG40 LONG40 LONG40 LONG40 LONG40 LONG40
#define LONG4000 LONG400 LONG400 LONG400 LONG400 LONG400 LONG400 LONG400 LONG400 LONG400 LONG400

static const struct bad_case bad_cases[] = {
	/* unknown keys and sections */
	{ BK "tread = 4\n", 0, ERR_CONFIG,
	  "config '@F' line 8: unknown key 'tread' in [backupd]; did you mean 'threads'?" },
	{ CL "colour = red\n", 0, ERR_CONFIG,
	  "config '@F' line 8: unknown key 'colour' in [cluster shop]" },
	{ CL "cron = 0 3 * * *\n", 0, ERR_CONFIG,
	  "config '@F' line 8: unknown key 'cron' in [cluster shop] (it belongs in [schedule NAME])" },
	{ CL "[clusters x]\n", 0, ERR_CONFIG,
	  "config '@F' line 8: unknown section kind 'clusters': expected [backupd], [cluster NAME] or [schedule NAME]" },
	{ CL "[cluster]\n", 0, ERR_CONFIG,
	  "config '@F' line 8: section [cluster] needs a name: [cluster NAME]" },
	{ CL "[]\n", 0, ERR_CONFIG, "config '@F' line 8: empty section header '[]'" },
	{ CL "[backupd main]\n", 0, ERR_CONFIG,
	  "config '@F' line 8: [backupd] takes no name (found 'main')" },
	{ CL "[cluster a/b]\n", 0, ERR_CONFIG,
	  "config '@F' line 8: bad cluster name 'a/b': use up to 63 letters, digits, '_', '-' and '.', not first '.' or '-'" },
	{ "threads = 4\n" BK, 0, ERR_CONFIG,
	  "config '@F' line 1: key 'threads' outside any section: put it under [backupd], [cluster NAME] or [schedule NAME]" },
	/* duplicates */
	{ CL "[cluster shop]\n", 0, ERR_CONFIG,
	  "config '@F' line 8: duplicate section [cluster shop] (first on line 4)" },
	{ CL "[backupd]\n", 0, ERR_CONFIG,
	  "config '@F' line 8: duplicate section [backupd] (first on line 1)" },
	{ BK "threads = 4\nthreads = 8\n", 0, ERR_CONFIG,
	  "config '@F' line 9: duplicate key 'threads' in [backupd] (first set on line 8)" },
	{ CL "user = other\n", 0, ERR_CONFIG,
	  "config '@F' line 8: duplicate key 'user' in [cluster shop] (first set on line 6)" },
	/* syntax errors inih reports */
	{ CL "this is not a key\n", 0, ERR_CONFIG,
	  "config '@F' line 8: syntax error: expected '[section]', 'key = value' or a comment" },
	{ CL "[schedule x\n", 0, ERR_CONFIG,
	  "config '@F' line 8: syntax error: expected '[section]', 'key = value' or a comment" },
	{ CL "   continued\n", 0, ERR_CONFIG,
	  "config '@F' line 8: syntax error: expected '[section]', 'key = value' or a comment" },
	{ CL "databases = " LONG4000 LONG400 "\n", 0, ERR_CONFIG,
	  "config '@F' line 8: line longer than 4095 characters" },
	/* bad values and ranges */
	{ BK "threads = many\n", 0, ERR_CONFIG,
	  "config '@F' line 8: bad value 'many' for 'threads' in [backupd]: expected an integer from 1 to 64" },
	{ BK "threads = 65\n", 0, ERR_CONFIG,
	  "config '@F' line 8: value '65' for 'threads' in [backupd] is out of range: expected an integer from 1 to 64" },
	{ BK "compress_level = 0\n", 0, ERR_CONFIG,
	  "config '@F' line 8: value '0' for 'compress_level' in [backupd] is out of range: expected an integer from 1 to 19" },
	{ BK "log_level = verbose\n", 0, ERR_CONFIG,
	  "config '@F' line 8: bad value 'verbose' for 'log_level' in [backupd]: expected one of error|warn|info|debug|trace" },
	{ BK "digest_time = 25:00\n", 0, ERR_CONFIG,
	  "config '@F' line 8: value '25:00' for 'digest_time' in [backupd] is out of range: expected a time of day as HH:MM" },
	{ BK "digest_time = 9am\n", 0, ERR_CONFIG,
	  "config '@F' line 8: bad value '9am' for 'digest_time' in [backupd]: expected a time of day as HH:MM" },
	{ BK "metrics_listen = 127.0.0.1\n", 0, ERR_CONFIG,
	  "config '@F' line 8: bad value '127.0.0.1' for 'metrics_listen' in [backupd]: expected host:port (missing ':port', e.g. 127.0.0.1:3306)" },
	{ BK "control_socket = run/b.sock\n", 0, ERR_CONFIG,
	  "config '@F' line 8: bad value 'run/b.sock' for 'control_socket' in [backupd]: expected an absolute path" },
	{ BK "slack_webhook = ftp://hooks.example.com/x\n", 0, ERR_CONFIG,
	  "config '@F' line 8: bad value for 'slack_webhook' in [backupd] (not shown: a secret): expected an http:// or https:// URL (must start with http:// or https://)" },
	{ BK "slack_webhook_file = @D/badhook\n", 0, ERR_CONFIG,
	  "config '@F' line 8: bad content of slack_webhook_file '@D/badhook' in [backupd] (not shown: a secret): expected an http:// or https:// URL (must start with http:// or https://)" },
	{ CL "drill_keep = maybe\n", 0, ERR_CONFIG,
	  "config '@F' line 8: bad value 'maybe' for 'drill_keep' in [cluster shop]: expected true, false, yes, no, on, off, 1 or 0" },
	{ CL "keep_days = 40000\n", 0, ERR_CONFIG,
	  "config '@F' line 8: value '40000' for 'keep_days' in [cluster shop] is out of range: expected an integer from 0 to 36500" },
	{ CL "keep_last = -1\n", 0, ERR_CONFIG,
	  "config '@F' line 8: value '-1' for 'keep_last' in [cluster shop] is out of range: expected an integer from 0 to 10000" },
	{ CL "lag_crit_s = -1\n", 0, ERR_CONFIG,
	  "config '@F' line 8: bad value '-1' for 'lag_crit_s' in [cluster shop]: expected a decimal number from 0.001 to 86400" },
	{ CL "lag_crit_s = 0\n", 0, ERR_CONFIG,
	  "config '@F' line 8: value '0' for 'lag_crit_s' in [cluster shop] is out of range: expected a decimal number from 0.001 to 86400" },
	{ CL "lag_warn_s = 1e3\n", 0, ERR_CONFIG,
	  "config '@F' line 8: bad value '1e3' for 'lag_warn_s' in [cluster shop]: expected a decimal number from 0.001 to 86400" },
	{ CL "ssl_mode = on\n", 0, ERR_CONFIG,
	  "config '@F' line 8: bad value 'on' for 'ssl_mode' in [cluster shop]: expected one of disabled|preferred|required|verify_ca|verify_identity" },
	{ CL "haproxy_backend =\n", 0, ERR_CONFIG,
	  "config '@F' line 8: bad value '' for 'haproxy_backend' in [cluster shop]: expected a non-empty value" },
	{ CL "replicas = 10.0.0.2:3306,,10.0.0.3:3306\n", 0, ERR_CONFIG,
	  "config '@F' line 8: bad value '10.0.0.2:3306,,10.0.0.3:3306' for 'replicas' in [cluster shop]: expected a comma-separated list without empty entries" },
	{ CL "replicas = 10.0.0.2:3306, 10.0.0.2:3306\n", 0, ERR_CONFIG,
	  "config '@F' line 8: bad value '10.0.0.2:3306, 10.0.0.2:3306' for 'replicas' in [cluster shop]: expected a list without duplicates ('10.0.0.2:3306' is listed twice)" },
	{ CL "replicas = 10.0.0.2:3306, ::1:3306\n", 0, ERR_CONFIG,
	  "config '@F' line 8: bad value '10.0.0.2:3306, ::1:3306' for 'replicas' in [cluster shop]: expected a comma-separated list of host:port ('::1:3306': IPv6 addresses go in brackets, e.g. [::1]:3306)" },
	{ CL "databases = shop,,x\n", 0, ERR_CONFIG,
	  "config '@F' line 8: bad value 'shop,,x' for 'databases' in [cluster shop]: expected a comma-separated list without empty entries" },
	{ CL "drill_target = db:0\n", 0, ERR_CONFIG,
	  "config '@F' line 8: bad value 'db:0' for 'drill_target' in [cluster shop]: expected host:port (port must be a number from 1 to 65535)" },
	{ CL "databases = shop, " LONG40 LONG40 "\n", 0, ERR_CONFIG,
	  "config '@F' line 8: bad value 'shop, " LONG40 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...' for 'databases' in [cluster shop]: expected a comma-separated list of names of up to 64 characters" },
	{ BK "threads = " LONG400 "\n", 0, ERR_CONFIG,
	  "config '@F' line 8: bad value ... for 'threads'" /* see below */ },
	/* repository */
	{ "[backupd]\ncatalog = /c.db\nrepository = backups\n", 0, ERR_CONFIG,
	  "config '@F' line 3: bad value 'backups' for 'repository' in [backupd]: expected an absolute directory or an nfs://host/export/path URL" },
	{ "[backupd]\ncatalog = /c.db\nrepository = nfs://host\n", 0, ERR_CONFIG,
	  "config '@F' line 3: bad value 'nfs://host' for 'repository' in [backupd]: expected nfs://host/export/path?nfsport=N&mountport=N (missing export path, e.g. nfs://host/export/mysql)" },
	{ "[backupd]\ncatalog = /c.db\nrepository = nfs://host:2049/x\n", 0, ERR_CONFIG,
	  "config '@F' line 3: bad value 'nfs://host:2049/x' for 'repository' in [backupd]: expected nfs://host/export/path?nfsport=N&mountport=N (give the port as ?nfsport=N, not after the host)" },
	{ "[backupd]\ncatalog = /c.db\nrepository = nfs://host/x?nfsport=abc\n", 0, ERR_CONFIG,
	  "config '@F' line 3: bad value 'nfs://host/x?nfsport=abc' for 'repository' in [backupd]: expected nfs://host/export/path?nfsport=N&mountport=N (port must be a number from 1 to 65535)" },
	{ "[backupd]\ncatalog = /c.db\nrepository = nfs://host/x?nfsport=1&nfsport=2\n", 0, ERR_CONFIG,
	  "config '@F' line 3: bad value 'nfs://host/x?nfsport=1&nfsport=2' for 'repository' in [backupd]: expected nfs://host/export/path?nfsport=N&mountport=N (parameter given twice)" },
	{ "[backupd]\ncatalog = /c.db\nrepository = nfs://host/x?version=4\n", 0, ERR_CONFIG,
	  "config '@F' line 3: bad value 'nfs://host/x?version=4' for 'repository' in [backupd]: expected nfs://host/export/path?nfsport=N&mountport=N (parameters are nfsport=N and mountport=N)" },
	{ "[backupd]\ncatalog = /c.db\nrepository = nfs://bad_-host-/x\n", 0, ERR_CONFIG,
	  "config '@F' line 3: bad value 'nfs://bad_-host-/x' for 'repository' in [backupd]: expected nfs://host/export/path?nfsport=N&mountport=N (bad host name)" },
	/* missing things */
	{ "[backupd]\nrepository = /srv\n[cluster shop]\n", 0, ERR_CONFIG,
	  "config '@F' line 1: missing required key 'catalog' in [backupd]" },
	{ "[backupd]\ncatalog = /c.db\nrepository = /srv\n[cluster shop]\nprimary = 127.0.0.1:3306\nuser = u\n",
	  0, ERR_CONFIG,
	  "config '@F' line 4: missing required key 'password' (or 'password_file') in [cluster shop]" },
	{ "[cluster shop]\nprimary = 127.0.0.1:3306\nuser = u\npassword_file = @D/pw\n\n; end\n", 0,
	  ERR_CONFIG, "config '@F' line 6: missing [backupd] section (end of file reached)" },
	{ "", 0, ERR_CONFIG,
	  "config '@F' line 1: missing [backupd] section (end of file reached)" },
	{ "[backupd]\ncatalog = /c.db\nrepository = /srv\n", 0, ERR_CONFIG,
	  "config '@F' line 3: no [cluster NAME] section: at least one is required" },
	/* secrets */
	{ CL "password = inline\n", 0, ERR_CONFIG,
	  "config '@F' line 8: both 'password_file' (line 7) and 'password' in [cluster shop]: give only one" },
	{ BK "slack_webhook = https://h.example/x\nslack_webhook_file = @D/hook\n", 0, ERR_CONFIG,
	  "config '@F' line 9: both 'slack_webhook' (line 8) and 'slack_webhook_file' in [backupd]: give only one" },
	{ CL "replication_user = repl\n", 0, ERR_CONFIG,
	  "config '@F' line 8: 'replication_user' needs 'replication_password' (or 'replication_password_file') in [cluster shop]" },
	{ CL "replication_password_file = @D/repl\n", 0, ERR_CONFIG,
	  "config '@F' line 8: 'replication_password_file' needs 'replication_user' in [cluster shop]" },
	{ CL "replication_user = r\nreplication_password = a\nreplication_password_file = @D/repl\n", 0, ERR_CONFIG,
	  "config '@F' line 10: both 'replication_password' (line 9) and 'replication_password_file' in [cluster shop]: give only one" },
	{ "[backupd]\ncatalog = /c.db\nrepository = /srv\n[cluster shop]\nprimary = 127.0.0.1:3306\nuser = u\npassword_file = @D/nope\n",
	  0, ERR_CONFIG,
	  "config '@F' line 7: unable to open password_file '@D/nope' in [cluster shop]: No such file or directory" },
	{ "[backupd]\ncatalog = /c.db\nrepository = /srv\n[cluster shop]\nprimary = 127.0.0.1:3306\nuser = u\npassword_file = pw\n",
	  0, ERR_CONFIG,
	  "config '@F' line 7: bad value 'pw' for 'password_file' in [cluster shop]: expected an absolute path" },
	{ "[backupd]\ncatalog = /c.db\nrepository = /srv\n[cluster shop]\nprimary = 127.0.0.1:3306\nuser = u\npassword_file = @D/pw644\n",
	  0, ERR_PERMISSION,
	  "config '@F' line 7: password_file '@D/pw644' in [cluster shop] is accessible by group or others (mode 0644); chmod 600 it" },
	{ CL "replication_user = r\nreplication_password_file = @D/pw640\n", 0, ERR_PERMISSION,
	  "config '@F' line 9: replication_password_file '@D/pw640' in [cluster shop] is accessible by group or others (mode 0640); chmod 600 it" },
	{ BK "slack_webhook_file = @D\n", 0, ERR_CONFIG,
	  "config '@F' line 8: slack_webhook_file '@D' in [backupd] is not a regular file" },
	{ BK "slack_webhook_file = @D/empty\n", 0, ERR_CONFIG,
	  "config '@F' line 8: slack_webhook_file '@D/empty' in [backupd] is empty" },
	{ BK "slack_webhook_file = @D/twolines\n", 0, ERR_CONFIG,
	  "config '@F' line 8: slack_webhook_file '@D/twolines' in [backupd] holds more than one line" },
	/* a config holding a secret inline must be private */
	{ "[backupd]\ncatalog = /c.db\nrepository = /srv\n[cluster shop]\nprimary = 127.0.0.1:3306\nuser = u\npassword = hunter2\n",
	  0644, ERR_PERMISSION,
	  "config '@F' line 7: holds a password ('password' in [cluster shop]) and is readable by others (mode 0644); chmod 600 it" },
	{ BK "slack_webhook = https://hooks.example.com/x\n", 0640, ERR_PERMISSION,
	  "config '@F' line 8: holds a secret ('slack_webhook' in [backupd]) and is readable by others (mode 0640); chmod 600 it" },
	{ CL "replication_user = r\nreplication_password = x\n", 0604, ERR_PERMISSION,
	  "config '@F' line 9: holds a password ('replication_password' in [cluster shop]) and is readable by others (mode 0604); chmod 600 it" },
	/* cluster rules */
	{ CL "lag_warn_s = 40\n", 0, ERR_CONFIG,
	  "config '@F' line 8: 'lag_warn_s' (40) must be below 'lag_crit_s' (30) in [cluster shop]" },
	{ CL "lag_crit_s = 2\nlag_warn_s = 2\n", 0, ERR_CONFIG,
	  "config '@F' line 8: 'lag_warn_s' (2) must be below 'lag_crit_s' (2) in [cluster shop]" },
	{ CL "replicas = 127.0.0.1:3307, 127.0.0.1:3306\n", 0, ERR_CONFIG,
	  "config '@F' line 8: replica '127.0.0.1:3306' is the primary of [cluster shop]" },
	{ CL "drill_target = 127.0.0.1:3306\n", 0, ERR_CONFIG,
	  "config '@F' line 8: 'drill_target' 127.0.0.1:3306 is a server of [cluster shop]: a drill overwrites its target, give a scratch server" },
	{ CL "drill_target = 127.0.0.1:3307\nreplicas = 127.0.0.1:3307\n" SCHED, 0, ERR_CONFIG,
	  "config '@F' line 8: 'drill_target' 127.0.0.1:3307 is a server of [cluster shop]: a drill overwrites its target, give a scratch server" },
	{ CL "haproxy_backend = w\n", 0, ERR_CONFIG,
	  "config '@F' line 8: 'haproxy_backend' needs 'haproxy_socket' in [cluster shop]" },
	{ CL "haproxy_socket = /run/h.sock\nhaproxy_backend = w\nswitch_hook = /bin/sw\n", 0, ERR_CONFIG,
	  "config '@F' line 10: both 'haproxy_socket' (line 8) and 'switch_hook' (line 10) in [cluster shop]: cutover uses one traffic switch" },
	{ CL "ssl_cert = /c.pem\n", 0, ERR_CONFIG,
	  "config '@F' line 8: 'ssl_cert' needs 'ssl_key' in [cluster shop]" },
	/* schedules */
	{ CL "[schedule nightly]\ncluster = shp\njob = snapshot\ncron = 0 3 * * *\n", 0, ERR_CONFIG,
	  "config '@F' line 9: unknown cluster 'shp' in [schedule nightly]: there is no [cluster shp]" },
	{ CL "[schedule nightly]\ncluster = shop\ncron = 0 3 * * *\n", 0, ERR_CONFIG,
	  "config '@F' line 8: missing required key 'job' in [schedule nightly]" },
	{ CL "[schedule nightly]\ncluster = shop\njob = backup\ncron = 0 3 * * *\n", 0, ERR_CONFIG,
	  "config '@F' line 10: bad value 'backup' for 'job' in [schedule nightly]: expected one of snapshot|verify|prune|drill" },
	{ CL SCHED "timezone = Mars/Olympus\n", 0, ERR_CONFIG,
	  "config '@F' line 12: bad value 'Mars/Olympus' for 'timezone' in [schedule nightly]: expected a time zone such as Europe/Berlin (no file '/usr/share/zoneinfo/Mars/Olympus')" },
	{ CL SCHED "timezone = ../../etc/passwd\n", 0, ERR_CONFIG,
	  "config '@F' line 12: bad value '../../etc/passwd' for 'timezone' in [schedule nightly]: expected a time zone such as Europe/Berlin (a file under /usr/share/zoneinfo)" },
	{ CL SCHED "cron =\n", 0, ERR_CONFIG,
	  "config '@F' line 12: duplicate key 'cron' in [schedule nightly] (first set on line 11)" },
	{ CL "[schedule nightly]\ncluster = shop\njob = snapshot\ncron =\n", 0, ERR_CONFIG,
	  "config '@F' line 11: bad value '' for 'cron' in [schedule nightly]: expected a non-empty value" },
	{ CL SCHED "missed_runs = always\n", 0, ERR_CONFIG,
	  "config '@F' line 12: bad value 'always' for 'missed_runs' in [schedule nightly]: expected one of run_once|skip" },
};

static void test_errors(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		const struct bad_case *bc = &bad_cases[i];
		char *path = put_file("bad.conf", bc->mode ? bc->mode : 0600,
				      bc->text);
		char *want = subst(bc->msg, path);
		struct config *c = (struct config *)&c;
		struct err e;
		int rc;

		err_init(&e);
		rc = config_load(path, &c, &e);
		if (c) {
			print_message("case %zu loaded, want: %s\n", i, want);
			fail();
		}
		if (strstr(want, "bad value ... for 'threads'")) {
			/* Long values are cut in messages, never the line. */
			assert_int_equal(rc, ERR_CONFIG);
			assert_non_null(strstr(e.msg, "line 8: bad value 'aaaa"));
			assert_non_null(strstr(e.msg, "...' for 'threads'"));
			assert_true(strlen(e.msg) < 300);
		} else if (rc != bc->code || strcmp(e.msg, want) != 0) {
			print_message("case %zu:\n got  %d %s\n want %d %s\n", i,
				      rc, e.msg, bc->code, want);
			fail();
		}
		assert_int_equal(e.code, rc);
		assert_null(strchr(e.msg, '\n'));
		free(want);
		free(path);
	}
}

/* A secret's value never shows in an error, nor in the error of a bad
 * secret file's content. */
static void test_error_hides_secret(void **state)
{
	char *path = put_file("sec.conf", 0600,
			      BK "slack_webhook = htps://hooks.example.com/T0PSECRET\n");
	struct config *c;
	struct err e;

	(void)state;
	err_init(&e);
	assert_int_equal(config_load(path, &c, &e), ERR_CONFIG);
	assert_null(strstr(e.msg, "T0PSECRET"));
	assert_non_null(strstr(e.msg, "line 8"));
	free(path);
}

static void test_file_errors(void **state)
{
	struct config *c;
	struct err e;
	char path[128];

	(void)state;
	err_init(&e);
	snprintf(path, sizeof(path), "%s/does-not-exist.conf", tmpdir);
	assert_int_equal(config_load(path, &c, &e), ERR_CONFIG);
	assert_null(c);
	assert_non_null(strstr(e.msg, "unable to open config '"));
	assert_non_null(strstr(e.msg, "No such file or directory"));

	err_init(&e);
	assert_int_equal(config_load(tmpdir, &c, &e), ERR_CONFIG);
	assert_non_null(strstr(e.msg, "is not a regular file"));

	/* Loose mode is fine when the config holds no secret inline. */
	c = load_ok("public.conf", 0644, CL);
	config_free(c);
	config_free(NULL);

	if (geteuid() != 0) {
		char *p = put_file("locked.conf", 0000, CL);
		err_init(&e);
		assert_int_equal(config_load(p, &c, &e), ERR_PERMISSION);
		free(p);
		p = put_file("lockedpw", 0000, "x\n");
		free(p);
		p = put_file("bad2.conf", 0600,
			     "[backupd]\ncatalog = /c.db\nrepository = /srv\n[cluster shop]\n"
			     "primary = 127.0.0.1:3306\nuser = u\npassword_file = @D/lockedpw\n");
		err_init(&e);
		assert_int_equal(config_load(p, &c, &e), ERR_PERMISSION);
		assert_non_null(strstr(e.msg, "line 7: unable to open password_file"));
		free(p);
	}
}

/* ---- printing, masking, help ---- */

static char *capture(const struct config *c, bool json)
{
	char *data = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&data, &n);
	struct err e;

	err_init(&e);
	assert_non_null(f);
	assert_int_equal(config_print(c, f, json, &e), 0);
	fclose(f);
	return data;
}

static const char print_conf[] =
	"[backupd]\n"
	"catalog = /c.db\n"
	"repository = /srv/backups\n"
	"slack_webhook_file = @D/hook\n"
	"[cluster shop]\n"
	"primary = 127.0.0.1:3306\n"
	"replicas = 10.0.0.2:3306, [fd00::3]:3306\n"
	"user = u\n"
	"password_file = @D/pw\n"
	"replication_user = repl\n"
	"replication_password = R3pl-inline\n"
	"drill_probe = SELECT 1\n"
	"drill_probe = SELECT 2\n"
	"lag_warn_s = 0.5\n"
	"databases = a, b\n"
	"[schedule n]\n"
	"cluster = shop\n"
	"job = verify\n"
	"cron = @hourly\n";

static void test_print_ini(void **state)
{
	struct config *c = load_ok("print.conf", 0600, print_conf);
	struct config *again;
	char *ini, *ini2;

	(void)state;
	ini = capture(c, false);
	assert_null(strstr(ini, "s3cret-pw"));
	assert_null(strstr(ini, "R3pl-inline"));
	assert_null(strstr(ini, "XyZ"));
	assert_non_null(strstr(ini, "\n; slack_webhook = " CFG_SECRET_MASK " (from slack_webhook_file)\n"));
	assert_non_null(strstr(ini, "\n; password = " CFG_SECRET_MASK " (from password_file)\n"));
	assert_non_null(strstr(ini, "\nreplication_password = " CFG_SECRET_MASK "\n"));
	assert_non_null(strstr(ini, "\nreplicas = 10.0.0.2:3306, [fd00::3]:3306\n"));
	assert_non_null(strstr(ini, "\ndrill_probe = SELECT 1\ndrill_probe = SELECT 2\n"));
	assert_non_null(strstr(ini, "\nthreads = 4\n"));
	assert_non_null(strstr(ini, "\nlag_warn_s = 0.5\n"));
	assert_non_null(strstr(ini, "\ndigest_time = 09:00\n"));
	assert_non_null(strstr(ini, "\n; pid_file =\n"));
	assert_non_null(strstr(ini, "\n[schedule n]\ncluster = shop\njob = verify\n"));
	assert_non_null(strstr(ini, "\nmissed_runs = run_once\n"));

	/* The effective config is itself a valid config that loads to the
	 * same effective config (masked inline secrets load as the mask). */
	again = load_ok("again.conf", 0600, strchr(ini, '\n'));
	ini2 = capture(again, false);
	assert_string_equal(strchr(ini, '\n'), strchr(ini2, '\n'));
	free(ini2);
	config_free(again);
	free(ini);
	config_free(c);
}

static void test_print_json(void **state)
{
	struct config *c = load_ok("printj.conf", 0600, print_conf);
	json_t *root, *b, *shop;
	json_error_t jerr;
	char *js;

	(void)state;
	js = capture(c, true);
	assert_null(strstr(js, "s3cret-pw"));
	assert_null(strstr(js, "R3pl-inline"));
	assert_null(strstr(js, "XyZ"));
	root = json_loads(js, 0, &jerr);
	assert_non_null(root);
	assert_true(json_is_string(json_object_get(root, "path")));
	b = json_object_get(root, "backupd");
	assert_int_equal(json_integer_value(json_object_get(b, "threads")), 4);
	assert_string_equal(json_string_value(json_object_get(b, "slack_webhook")),
			    CFG_SECRET_MASK);
	assert_true(json_is_null(json_object_get(b, "pid_file")));
	assert_true(json_is_null(json_object_get(b, "metrics_listen")));
	assert_string_equal(json_string_value(json_object_get(b, "log_level")), "info");
	assert_string_equal(json_string_value(json_object_get(b, "digest_time")), "09:00");
	shop = json_object_get(json_object_get(root, "clusters"), "shop");
	assert_non_null(shop);
	assert_string_equal(json_string_value(json_object_get(shop, "password")),
			    CFG_SECRET_MASK);
	assert_string_equal(json_string_value(json_object_get(shop, "replication_password")),
			    CFG_SECRET_MASK);
	assert_string_equal(json_string_value(json_object_get(shop, "primary")),
			    "127.0.0.1:3306");
	assert_int_equal(json_array_size(json_object_get(shop, "replicas")), 2);
	assert_string_equal(json_string_value(json_array_get(json_object_get(shop, "replicas"), 1)),
			    "[fd00::3]:3306");
	assert_int_equal(json_array_size(json_object_get(shop, "drill_probe")), 2);
	assert_int_equal(json_array_size(json_object_get(shop, "databases")), 2);
	assert_true(json_real_value(json_object_get(shop, "lag_warn_s")) == 0.5);
	assert_true(json_is_false(json_object_get(shop, "drill_keep")));
	assert_true(json_is_null(json_object_get(shop, "drill_target")));
	assert_string_equal(json_string_value(json_object_get(
		json_object_get(json_object_get(root, "schedules"), "n"), "job")), "verify");
	json_decref(root);
	free(js);
	config_free(c);
}

/* Secrets read from the config reach the log's mask list. */
static void test_log_masks_secrets(void **state)
{
	struct config *c = load_ok("log.conf", 0600, print_conf);
	char path[128], got[4096];
	int fd;
	ssize_t n;

	(void)state;
	snprintf(path, sizeof(path), "%s/log.txt", tmpdir);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	log_set_fd(fd);
	log_info("test", "pw=%s repl=%s hook=%s", c->clusters[0].password,
		 c->clusters[0].replication_password, c->slack_webhook);
	log_set_fd(2);
	n = pread(fd, got, sizeof(got) - 1, 0);
	close(fd);
	assert_true(n > 0);
	got[n] = '\0';
	assert_null(strstr(got, "s3cret-pw"));
	assert_null(strstr(got, "R3pl-inline"));
	assert_null(strstr(got, "hooks.example.com"));
	assert_non_null(strstr(got, "pw=*** repl=*** hook=***"));
	config_free(c);
}

static void test_help(void **state)
{
	static const char *const keys[] = {
		"catalog", "repository", "threads", "compress_level",
		"slack_webhook", "slack_webhook_file", "metrics_listen",
		"control_socket", "log_level", "log_format", "pid_file",
		"digest_time", "missed_runs", "primary", "replicas", "user",
		"password", "password_file", "replication_user",
		"replication_password", "replication_password_file",
		"snapshot_from", "lag_warn_s", "lag_crit_s", "rebuild",
		"rebuild_interval_s", "keep_last", "keep_days", "drill_target",
		"drill_probe", "drill_max_age_h", "drill_keep", "haproxy_socket",
		"haproxy_backend", "haproxy_read_backend", "switch_hook",
		"databases", "include_users", "connect_timeout_s",
		"read_timeout_s", "write_timeout_s", "ssl_mode", "ssl_ca",
		"ssl_cert", "ssl_key", "cluster", "job", "cron", "timezone",
	};
	char *data = NULL, key[64];
	size_t n = 0;
	FILE *f = open_memstream(&data, &n);

	(void)state;
	config_help(f);
	fclose(f);
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		snprintf(key, sizeof(key), "\n  %s ", keys[i]);
		if (!strstr(data, key)) {
			print_message("help lacks '%s'\n", keys[i]);
			fail();
		}
	}
	assert_non_null(strstr(data, "int 1..64"));
	assert_non_null(strstr(data, "default 4"));
	assert_non_null(strstr(data, "required, or password_file, secret"));
	assert_non_null(strstr(data, "snapshot|verify|prune|drill"));
	assert_non_null(strstr(data, "default: [backupd] missed_runs"));
	assert_non_null(strstr(data, "[cluster NAME]"));
	free(data);
}

/* ---- addresses, URLs, paths ---- */

static void test_addr(void **state)
{
	static const struct { const char *in, *host; unsigned port; } good[] = {
		{ "127.0.0.1:3306", "127.0.0.1", 3306 },
		{ "[::1]:3306", "::1", 3306 },
		{ "[fe80::1:2]:1", "fe80::1:2", 1 },
		{ "db-1.example.com:65535", "db-1.example.com", 65535 },
		{ "my_host:3306", "my_host", 3306 },
		{ "localhost:3307", "localhost", 3307 },
	};
	static const struct { const char *in, *why; } bad[] = {
		{ "", "empty address" },
		{ "host", "missing ':port', e.g. 127.0.0.1:3306" },
		{ "host:", "port must be a number from 1 to 65535" },
		{ "host:0", "port must be a number from 1 to 65535" },
		{ "host:65536", "port must be a number from 1 to 65535" },
		{ "host:+1", "port must be a number from 1 to 65535" },
		{ "host: 1", "port must be a number from 1 to 65535" },
		{ "host:1x", "port must be a number from 1 to 65535" },
		{ "::1:3306", "IPv6 addresses go in brackets, e.g. [::1]:3306" },
		{ "[::1]", "missing ':port', e.g. 127.0.0.1:3306" },
		{ "[::1]x", "expected ':port' after ']'" },
		{ "[::1:3306", "missing ']' after the IPv6 address" },
		{ "[zz]:1", "bad IPv6 address" },
		{ "[127.0.0.1]:1", "bad IPv6 address" },
		{ ":3306", "empty host" },
		{ "10.0.0.256:1", "bad IPv4 address" },
		{ "1.2.3:1", "bad IPv4 address" },
		{ "-bad.com:1", "bad host name" },
		{ "bad-.com:1", "bad host name" },
		{ "a..b:1", "bad host name" },
		{ "a.:1", "bad host name" },
		{ "ho st:1", "bad host name" },
		{ "x" LONG40 LONG40 ".com:1", "bad host name" },
	};
	struct cfg_addr a, b;
	struct err e;
	char out[300], want[300];

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		err_init(&e);
		assert_int_equal(cfg_addr_parse(good[i].in, &a, &e), 0);
		assert_string_equal(a.host, good[i].host);
		assert_int_equal(a.port, good[i].port);
		assert_true(cfg_addr_is_set(&a));
		cfg_addr_format(&a, out, sizeof(out));
		assert_string_equal(out, good[i].in);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err_init(&e);
		assert_int_equal(cfg_addr_parse(bad[i].in, &a, &e), ERR_CONFIG);
		snprintf(want, sizeof(want), "bad address '%s': %s", bad[i].in,
			 bad[i].why);
		assert_string_equal(e.msg, want);
	}
	err_init(&e);
	assert_int_equal(cfg_addr_parse(NULL, &a, &e), ERR_CONFIG);

	cfg_addr_parse("DB.example:1", &a, &e);
	cfg_addr_parse("db.example:1", &b, &e);
	assert_true(cfg_addr_equal(&a, &b));
	cfg_addr_parse("db.example:2", &b, &e);
	assert_false(cfg_addr_equal(&a, &b));
	cfg_addr_parse("[::1]:1", &a, &e);
	cfg_addr_parse("[0:0::1]:1", &b, &e);
	assert_true(cfg_addr_equal(&a, &b));
	cfg_addr_parse("127.0.0.1:1", &a, &e);
	cfg_addr_parse("localhost:1", &b, &e);
	assert_false(cfg_addr_equal(&a, &b));

	cfg_addr_parse("[::1]:3306", &a, &e);
	cfg_addr_format(&a, out, 5);          /* truncates, terminates */
	assert_string_equal(out, "[::1");
}

static void test_nfs_url(void **state)
{
	struct cfg_nfs_url u;
	struct err e;

	(void)state;
	err_init(&e);
	assert_int_equal(cfg_nfs_url_parse("nfs://h/e", &u, &e), 0);
	assert_string_equal(u.host, "h");
	assert_string_equal(u.path, "/e");
	assert_int_equal(u.nfsport, 0);
	assert_int_equal(u.mountport, 0);
	assert_int_equal(cfg_nfs_url_parse("NFS://[::1]/a/b?mountport=20048", &u, &e), 0);
	assert_string_equal(u.host, "::1");
	assert_string_equal(u.path, "/a/b");
	assert_int_equal(u.mountport, 20048);
	assert_int_equal(cfg_nfs_url_parse("nfs://127.0.0.1/x?nfsport=2049&mountport=1", &u, &e), 0);
	assert_int_equal(u.nfsport, 2049);
	assert_int_equal(u.mountport, 1);
	assert_false(cfg_is_nfs_url("/srv/backups"));
	assert_false(cfg_is_nfs_url(NULL));

	assert_int_equal(cfg_nfs_url_parse("http://h/e", &u, &e), ERR_CONFIG);
	assert_string_equal(e.msg, "bad NFS URL 'http://h/e': must start with nfs://");
	err_init(&e);
	assert_int_equal(cfg_nfs_url_parse("nfs:///e", &u, &e), ERR_CONFIG);
	assert_string_equal(e.msg, "bad NFS URL 'nfs:///e': empty address");
	err_init(&e);
	assert_int_equal(cfg_nfs_url_parse("nfs://h/", &u, &e), ERR_CONFIG);
	err_init(&e);
	assert_int_equal(cfg_nfs_url_parse("nfs://h/e?", &u, &e), ERR_CONFIG);
	err_init(&e);
	assert_int_equal(cfg_nfs_url_parse("nfs://h/e?nfsport", &u, &e), ERR_CONFIG);
	err_init(&e);
	assert_int_equal(cfg_nfs_url_parse("nfs://h/e?nfsport=70000", &u, &e), ERR_CONFIG);
	err_init(&e);
	assert_int_equal(cfg_nfs_url_parse("nfs://h/e x", &u, &e), ERR_CONFIG);
	assert_string_equal(e.msg, "bad NFS URL 'nfs://h/e x': no spaces or control characters");
}

/* Webhook URLs through the config: which forms pass. */
static void test_webhook_urls(void **state)
{
	static const struct { const char *url; bool ok; } urls[] = {
		{ "https://hooks.slack.com/services/T0/B0/abc", true },
		{ "http://127.0.0.1:8080/hook", true },
		{ "HTTPS://[::1]:443", true },
		{ "https://h.example?x=1", true },
		{ "https://", false },
		{ "https://:80/x", false },
		{ "https://h:0/x", false },
		{ "https://user@h/x", false },
		{ "https://h/a b", false },
		{ "hooks.slack.com/services/x", false },
	};
	char text[512];

	(void)state;
	for (size_t i = 0; i < sizeof(urls) / sizeof(urls[0]); i++) {
		char *path;
		struct config *c = NULL;
		struct err e;

		snprintf(text, sizeof(text), BK "slack_webhook = %s\n", urls[i].url);
		path = put_file("hook.conf", 0600, text);
		err_init(&e);
		if ((config_load(path, &c, &e) == 0) != urls[i].ok) {
			print_message("url '%s': %s\n", urls[i].url, e.msg);
			fail();
		}
		if (c)
			assert_string_equal(c->slack_webhook, urls[i].url);
		config_free(c);
		free(path);
	}
}

static void test_resolve_path(void **state)
{
	(void)state;
	assert_string_equal(config_default_path(), "/etc/backupd/backupd.conf");
	unsetenv("BACKUPD_CONFIG");
	assert_string_equal(config_resolve_path(NULL), "/etc/backupd/backupd.conf");
	assert_string_equal(config_resolve_path("/x.conf"), "/x.conf");
	setenv("BACKUPD_CONFIG", "/env.conf", 1);
	assert_string_equal(config_resolve_path(NULL), "/env.conf");
	assert_string_equal(config_resolve_path(""), "/env.conf");
	assert_string_equal(config_resolve_path("/x.conf"), "/x.conf");
	setenv("BACKUPD_CONFIG", "", 1);
	assert_string_equal(config_resolve_path(NULL), "/etc/backupd/backupd.conf");
	unsetenv("BACKUPD_CONFIG");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_design_example),
		cmocka_unit_test(test_deploy_example),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_all_keys),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_error_hides_secret),
		cmocka_unit_test(test_file_errors),
		cmocka_unit_test(test_print_ini),
		cmocka_unit_test(test_print_json),
		cmocka_unit_test(test_log_masks_secrets),
		cmocka_unit_test(test_help),
		cmocka_unit_test(test_addr),
		cmocka_unit_test(test_nfs_url),
		cmocka_unit_test(test_webhook_urls),
		cmocka_unit_test(test_resolve_path),
	};
	int rc = cmocka_run_group_tests(tests, setup, teardown);

	log_forget_secrets();
	return rc;
}
