/* backupctl restore and rebuild: load a snapshot into a server (optionally
 * re-attaching it as a replica and proving it equal to the primary), and
 * rebuild a downed replica from the latest good snapshot. Progress with
 * ETA on stderr when it is a terminal; a summary on stdout, or one JSON
 * document with --json. SIGINT/SIGTERM abort cleanly (what the restore
 * created is dropped again). Single-threaded here; the engine starts its
 * own workers. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "buf.h"
#include "catalog.h"
#include "cli.h"
#include "log.h"
#include "restore.h"

const char cli_restore_help[] =
	"  ID                     the snapshot id (as `backupctl list` prints it)\n"
	"      --target HOST:PORT the server to load it into (required)\n"
	"      --user U           account on the target (default: the cluster's user)\n"
	"      --password-file F  its password, one line, mode 0600 or 0400\n"
	"      --databases a,b    only these databases (`quote` names holding commas)\n"
	"      --tables db.t,...  only these tables (and their triggers)\n"
	"      --threads N        load connections (default: threads of the config)\n"
	"      --force            drop and replace databases the target already holds;\n"
	"                         allow a target that is a cluster's primary\n"
	"      --as-replica-of S  then make the target a replica of S (a cluster name or\n"
	"                         its primary's host:port) at the snapshot's GTID, wait\n"
	"                         until it caught up and prove it equal to the primary\n"
	"      --no-verify        with --as-replica-of: skip the checksum proof\n"
	"      --timeout S        with --as-replica-of: catch-up deadline (default 900)\n"
	"      --cluster C        the snapshot's cluster (default: from the catalog)\n"
	"      --no-binlog        keep the load out of the target's binlog (implied by\n"
	"                         --as-replica-of; needs BINLOG ADMIN)\n"
	"      --users            also create the snapshot's accounts (needs CREATE USER)\n"
	"      --no-defer-indexes create secondary keys with their table instead of right\n"
	"                         after its data (the default, measured faster)\n";

const char cli_rebuild_help[] =
	"  SERVER                 host:port of a configured replica that is down (start it\n"
	"                         empty first), broken or emptied\n"
	"      --cluster C        its cluster (default: the one that lists it)\n"
	"      --force            wipe the snapshot's databases on it even with\n"
	"                         rebuild = manual; rebuild a healthy replica too\n"
	"      --threads N        load connections (default: threads of the config)\n"
	"      --timeout S        catch-up deadline (default 900)\n";

static volatile sig_atomic_t restore_abort;

static void restore_on_signal(int sig)
{
	(void)sig;
	restore_abort = 1;
}

static void restore_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = restore_on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

enum {
	OPT_TARGET = 1000, OPT_USER, OPT_PASSWORD_FILE, OPT_DATABASES, OPT_TABLES,
	OPT_THREADS, OPT_FORCE, OPT_AS_REPLICA, OPT_NO_VERIFY, OPT_TIMEOUT,
	OPT_CLUSTER, OPT_NO_BINLOG, OPT_USERS, OPT_DEFER, OPT_NO_DEFER,
};

struct restore_cli {
	const char *target, *user, *password_file, *databases, *tables;
	const char *as_replica_of, *cluster;
	long threads, timeout_s;
	bool force, no_verify, no_binlog, users;
	int defer;                 /* -1: engine default */
};

static int restore_opt(int opt, const char *arg, void *u)
{
	struct restore_cli *o = u;

	switch (opt) {
	case OPT_TARGET: o->target = arg; return 0;
	case OPT_USER: o->user = arg; return 0;
	case OPT_PASSWORD_FILE: o->password_file = arg; return 0;
	case OPT_DATABASES: o->databases = arg; return 0;
	case OPT_TABLES: o->tables = arg; return 0;
	case OPT_THREADS: return str_to_long(arg, 1, 256, &o->threads);
	case OPT_FORCE: o->force = true; return 0;
	case OPT_AS_REPLICA: o->as_replica_of = arg; return 0;
	case OPT_NO_VERIFY: o->no_verify = true; return 0;
	case OPT_TIMEOUT: return str_to_long(arg, 1, 86400, &o->timeout_s);
	case OPT_CLUSTER: o->cluster = arg; return 0;
	case OPT_NO_BINLOG: o->no_binlog = true; return 0;
	case OPT_USERS: o->users = true; return 0;
	case OPT_DEFER: o->defer = 1; return 0;
	case OPT_NO_DEFER: o->defer = 0; return 0;
	default: return -1;
	}
}

static const struct cli_verb *verb(const char *name)
{
	static const struct cli_verb fallback = { "?", "", "", NULL, NULL, NULL };
	const struct cli_verb *v = cli_find_verb(name);

	return v ? v : &fallback;
}

static json_t *phases_json(const struct restore_result *r)
{
	json_t *o = json_object();

	for (size_t i = 0; i < r->n_phases; i++)
		json_object_set_new(o, r->phases[i].name, json_real(r->phases[i].seconds));
	return o;
}

static json_t *result_json(const struct restore_result *r)
{
	json_t *o = json_object();

	json_object_set_new(o, "restore_id", json_integer(r->restore_id));
	json_object_set_new(o, "snapshot", json_string(r->snapshot_id));
	json_object_set_new(o, "cluster", json_string(r->cluster));
	json_object_set_new(o, "target", json_string(r->target));
	json_object_set_new(o, "gtid", json_string(r->gtid));
	json_object_set_new(o, "databases", json_integer(r->n_databases));
	json_object_set_new(o, "tables", json_integer(r->n_tables));
	json_object_set_new(o, "files", json_integer(r->n_files));
	json_object_set_new(o, "views", json_integer(r->n_views));
	json_object_set_new(o, "triggers", json_integer(r->n_triggers));
	json_object_set_new(o, "routines", json_integer(r->n_routines));
	json_object_set_new(o, "events", json_integer(r->n_events));
	json_object_set_new(o, "users", json_integer(r->n_users));
	json_object_set_new(o, "rows", json_integer((json_int_t)r->rows));
	json_object_set_new(o, "bytes_raw", json_integer((json_int_t)r->bytes_raw));
	json_object_set_new(o, "bytes_stored", json_integer((json_int_t)r->bytes_stored));
	json_object_set_new(o, "indexes_deferred", json_boolean(r->indexes_deferred));
	json_object_set_new(o, "seconds", json_real(r->seconds));
	json_object_set_new(o, "phases", phases_json(r));
	if (r->replica) {
		json_t *rp = json_object();

		json_object_set_new(rp, "primary", json_string(r->primary));
		json_object_set_new(rp, "catchup_s", json_real(r->catchup_s));
		json_object_set_new(rp, "verified", json_boolean(r->verified));
		json_object_set_new(rp, "verify_gtid", json_string(r->verify_gtid));
		json_object_set_new(rp, "verify_tables", json_integer((json_int_t)r->verify_tables));
		json_object_set_new(rp, "verify_chunks", json_integer((json_int_t)r->verify_chunks));
		json_object_set_new(rp, "verify_mismatches",
				    json_integer((json_int_t)r->verify_mismatches));
		json_object_set_new(o, "replica", rp);
	} else {
		json_object_set_new(o, "replica", json_null());
	}
	return o;
}

static int print_json(json_t *doc, struct err *e)
{
	int rc = json_dumpf(doc, stdout, JSON_INDENT(2));

	json_decref(doc);
	if (rc != 0)
		return err_set(e, ERR_IO, "unable to write the JSON output");
	fputc('\n', stdout);
	return 0;
}

static void print_human(const struct restore_result *r)
{
	printf("restored snapshot %s into %s: %u tables, %llu rows, %.1f MB in %.2f s\n",
	       r->snapshot_id, r->target, r->n_tables, (unsigned long long)r->rows,
	       r->bytes_raw / 1e6, r->seconds);
	printf("  phases:");
	for (size_t i = 0; i < r->n_phases; i++)
		printf(" %s %.2fs", r->phases[i].name, r->phases[i].seconds);
	printf("\n  objects: %u views, %u triggers, %u routines, %u events%s\n",
	       r->n_views, r->n_triggers, r->n_routines, r->n_events,
	       r->indexes_deferred ? "; secondary keys added after the data" : "");
	if (r->replica) {
		printf("  replica of %s from gtid '%s': caught up in %.2f s\n", r->primary,
		       r->gtid, r->catchup_s);
		if (r->verified)
			printf("  equal to the primary at gtid '%s': %llu tables, %llu chunks checksummed\n",
			       r->verify_gtid, (unsigned long long)r->verify_tables,
			       (unsigned long long)r->verify_chunks);
		else
			printf("  not verified against the primary (--no-verify)\n");
	}
}

int cli_restore(struct cli_ctx *ctx, int argc, char **argv, struct err *e)
{
	static const struct option longopts[] = {
		{ "target", required_argument, NULL, OPT_TARGET },
		{ "user", required_argument, NULL, OPT_USER },
		{ "password-file", required_argument, NULL, OPT_PASSWORD_FILE },
		{ "databases", required_argument, NULL, OPT_DATABASES },
		{ "tables", required_argument, NULL, OPT_TABLES },
		{ "threads", required_argument, NULL, OPT_THREADS },
		{ "force", no_argument, NULL, OPT_FORCE },
		{ "as-replica-of", required_argument, NULL, OPT_AS_REPLICA },
		{ "no-verify", no_argument, NULL, OPT_NO_VERIFY },
		{ "timeout", required_argument, NULL, OPT_TIMEOUT },
		{ "cluster", required_argument, NULL, OPT_CLUSTER },
		{ "no-binlog", no_argument, NULL, OPT_NO_BINLOG },
		{ "users", no_argument, NULL, OPT_USERS },
		{ "defer-indexes", no_argument, NULL, OPT_DEFER },
		{ "no-defer-indexes", no_argument, NULL, OPT_NO_DEFER },
		{ NULL, 0, NULL, 0 },
	};
	struct restore_cli co = { .defer = -1 };
	struct restore_opts o;
	struct restore_result res;
	const struct cfg_cluster *cl = NULL;
	struct catalog *cat = NULL;
	char *password = NULL;
	char **dbs = NULL;
	size_t n_dbs = 0, n_tabs = 0;
	struct restore_table_name *tabs = NULL;
	int first, rc;

	rc = cli_parse(ctx, verb("restore"), argc, argv, NULL, longopts, restore_opt, &co,
		       &first, e);
	if (rc)
		return rc;
	if (first >= argc)
		return err_set(e, ERR_USAGE, "restore needs a snapshot id (see backupctl restore --help)");
	if (first + 1 < argc)
		return err_set(e, ERR_USAGE, "unexpected argument '%s'", argv[first + 1]);
	if (!co.target)
		return err_set(e, ERR_USAGE, "restore needs --target HOST:PORT");
	if (co.password_file && !co.user)
		return err_set(e, ERR_USAGE, "--password-file goes with --user");
	if ((co.no_verify || co.timeout_s) && !co.as_replica_of)
		return err_set(e, ERR_USAGE, "--no-verify and --timeout go with --as-replica-of");
	rc = cli_load_config(ctx, e);
	if (rc == 0 && co.cluster)
		rc = cli_pick_cluster(ctx, co.cluster, &cl, e);
	if (rc == 0 && co.password_file) {
		rc = restore_read_password_file(co.password_file, &password, e);
		if (rc == 0)
			log_register_secret(password);
	}
	if (rc == 0 && co.databases)
		rc = restore_parse_names(co.databases, &dbs, &n_dbs, e);
	if (rc == 0 && co.tables)
		rc = restore_parse_tables(co.tables, &tabs, &n_tabs, e);
	if (rc == 0)
		rc = catalog_open(ctx->cfg->catalog, &cat, e);
	if (rc == 0) {
		restore_signals();
		memset(&o, 0, sizeof(o));
		o.cfg = ctx->cfg;
		o.cluster = cl;
		o.snapshot_id = argv[first];
		o.target = co.target;
		o.user = co.user;
		o.password = password;
		o.databases = dbs;
		o.n_databases = n_dbs;
		o.tables = tabs;
		o.n_tables = n_tabs;
		o.threads = (int)co.threads;
		o.force = co.force;
		o.no_binlog = co.no_binlog;
		o.users = co.users;
		o.keep_indexes = co.defer == 0;
		o.as_replica_of = co.as_replica_of;
		o.verify_replica = !co.no_verify;
		o.catchup_timeout_s = (unsigned)co.timeout_s;
		o.trigger = "manual";
		o.progress = !ctx->json && isatty(2);
		o.abort_flag = &restore_abort;
		rc = restore_run(cat, &o, &res, e);
	}
	catalog_close(cat);
	if (password) {
		explicit_bzero(password, strlen(password));
		free(password);
	}
	restore_names_free(dbs, n_dbs);
	restore_tables_free(tabs, n_tabs);
	if (rc)
		return rc;
	if (ctx->json)
		return print_json(result_json(&res), e);
	print_human(&res);
	return 0;
}

int cli_rebuild(struct cli_ctx *ctx, int argc, char **argv, struct err *e)
{
	static const struct option longopts[] = {
		{ "cluster", required_argument, NULL, OPT_CLUSTER },
		{ "force", no_argument, NULL, OPT_FORCE },
		{ "threads", required_argument, NULL, OPT_THREADS },
		{ "timeout", required_argument, NULL, OPT_TIMEOUT },
		{ NULL, 0, NULL, 0 },
	};
	struct restore_cli co = { .defer = -1 };
	struct restore_rebuild_opts o;
	struct restore_rebuild_result res;
	struct catalog *cat = NULL;
	int first, rc;

	rc = cli_parse(ctx, verb("rebuild"), argc, argv, NULL, longopts, restore_opt, &co,
		       &first, e);
	if (rc)
		return rc;
	if (first >= argc)
		return err_set(e, ERR_USAGE, "rebuild needs a SERVER (host:port of a replica)");
	if (first + 1 < argc)
		return err_set(e, ERR_USAGE, "unexpected argument '%s'", argv[first + 1]);
	rc = cli_load_config(ctx, e);
	if (rc == 0)
		rc = catalog_open(ctx->cfg->catalog, &cat, e);
	if (rc)
		return rc;
	restore_signals();
	memset(&o, 0, sizeof(o));
	o.cfg = ctx->cfg;
	o.cluster = co.cluster;
	o.server = argv[first];
	o.force = co.force;
	o.threads = (int)co.threads;
	o.catchup_timeout_s = (unsigned)co.timeout_s;
	o.trigger = "manual";
	o.progress = !ctx->json && isatty(2);
	o.abort_flag = &restore_abort;
	rc = restore_rebuild(cat, &o, &res, e);
	catalog_close(cat);
	if (rc)
		return rc;
	if (ctx->json) {
		json_t *doc = json_object();

		json_object_set_new(doc, "rebuild_id", json_integer(res.rebuild_id));
		json_object_set_new(doc, "cluster", json_string(res.cluster));
		json_object_set_new(doc, "server", json_string(res.server));
		json_object_set_new(doc, "reason", json_string(res.reason));
		json_object_set_new(doc, "snapshot", json_string(res.snapshot_id));
		json_object_set_new(doc, "seconds", json_real(res.seconds));
		json_object_set_new(doc, "restore", result_json(&res.restore));
		return print_json(doc, e);
	}
	printf("rebuilt replica %s of cluster '%s' (%s) from snapshot %s in %.2f s\n",
	       res.server, res.cluster, res.reason, res.snapshot_id, res.seconds);
	print_human(&res.restore);
	return 0;
}
