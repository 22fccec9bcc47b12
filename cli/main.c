/* backupctl: the operator's CLI. Parses global options, dispatches to a verb
 * and turns the verb's struct err into a one-line message on stderr and a
 * documented exit status (lib/err.h). Single-threaded. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <mysql.h>

#include "cli.h"
#include "config.h"
#include "err.h"
#include "log.h"
#include "drills.h"
#include "snapshots.h"

#define BACKUPD_VERSION "0.1.0"

static const char cli_common_help[] =
	"  -c, --config PATH   config file (else $BACKUPD_CONFIG, else /etc/backupd/backupd.conf)\n"
	"      --json          one JSON document on stdout\n"
	"  -h, --help          this help\n";

const struct cli_verb cli_verbs[] = {
	{ "status", "[--cluster C]",
	  "live topology: reachability, version, read_only, replication threads, lag, GTIDs",
	  "      --cluster C     only this cluster\n", cli_status, NULL },
	{ "lag", "[--cluster C] [--history N] [--watch S [--interval MS] [--metrics] [--record]]",
	  "lag per replica, current and recent history",
	  cli_lag_help, cli_lag, NULL },
	{ "snapshot", "[--cluster C] [--from SERVER]",
	  "take a consistent snapshot now; prints its id",
	  "      --cluster C     the cluster (needed when the config has several)\n"
	  "      --from SERVER   read from this server (host:port of the primary or a replica)\n"
	  "                      instead of the healthiest replica (snapshot_from)\n"
	  "      --chunk-rows N  split tables with an integer primary key into ranges of ~N rows\n",
	  cli_snapshot, NULL },
	{ "list", "[--cluster C] [--all]", "list the snapshots in the catalog",
	  cli_list_help, cli_list, NULL },
	{ "show", "ID", "files, sizes, GTID and checksums of one snapshot",
	  cli_show_help, cli_show, NULL },
	{ "verify", "ID [--cluster C] [--progress]",
	  "re-read every file of a snapshot and check its checksum",
	  cli_verify_help, cli_verify, NULL },
	{ "restore", "ID --target HOST:PORT [--as-replica-of SERVER] [--databases a,b] [--tables db.t] [--threads N] [--force]",
	  "load a snapshot into a server, optionally re-attach it as a replica",
	  cli_restore_help, cli_restore, NULL },
	{ "rebuild", "SERVER [--force]",
	  "restore the latest good snapshot into a downed replica and re-attach it",
	  cli_rebuild_help, cli_rebuild, NULL },
	{ "prune", "[--cluster C] [--dry-run]", "apply retention (keep_last, keep_days)",
	  "      --cluster C     only this cluster\n"
	  "      --dry-run       list what would be deleted and why the rest stays\n",
	  cli_prune, NULL },
	{ "cutover", "--to SERVER [--dry-run] [--timeout S] [--cluster C]",
	  "blue/green switch of the writer with guardrails and rollback",
	  cli_cutover_help, cli_cutover, NULL },
	{ "canary", "--to SERVER --weight PCT [--backend NAME] [--cluster C]",
	  "route a share of read traffic to a server", cli_canary_help,
	  cli_canary, NULL },
	{ "drill", "[--cluster C] [--snapshot ID] [--keep] [--threads N]",
	  "restore the latest snapshot into a scratch server, verify it, report RTO",
	  cli_drill_help, cli_drill, NULL },
	{ "drills", "[--cluster C] [--limit N]", "DR drill history",
	  cli_drills_help, cli_drills, NULL },
	{ "report", "--html FILE [--cluster C] [--days N] [--lag-hours N]",
	  "a self-contained HTML report of the catalog",
	  cli_report_help, cli_report, NULL },
	{ "catalog", "rebuild", "re-create the catalog from the repository's manifests",
	  cli_catalog_help, cli_catalog, NULL },
	{ "config", "check|help",
	  "check: validate and print the effective config (secrets masked); help: every option",
	  NULL, cli_config, NULL },
};
const unsigned cli_n_verbs = sizeof(cli_verbs) / sizeof(cli_verbs[0]);

static void cli_usage(FILE *out)
{
	fprintf(out,
		"usage: backupctl [-c PATH] [--json] [--log-level L] VERB [ARGS]\n\n"
		"backupd's CLI: MySQL/MariaDB snapshots, restores, lag, cutovers, drills.\n\n"
		"verbs:\n");
	for (unsigned i = 0; i < cli_n_verbs; i++)
		fprintf(out, "  %-9s %s%s\n", cli_verbs[i].name,
			cli_verbs[i].summary,
			cli_verbs[i].fn ? "" : " [not available yet]");
	fprintf(out, "\noptions:\n%s"
		"      --log-level L   error|warn|info|debug|trace (stderr)\n"
		"      --log-format F  text|json\n"
		"  -V, --version       print the version\n\n"
		"`backupctl VERB --help` describes a verb. Exit status: 0 success;\n"
		"see README.md \"Exit status\" for the codes (10: verify failed).\n",
		cli_common_help);
}

void cli_verb_usage(const struct cli_verb *v, FILE *out)
{
	fprintf(out, "usage: backupctl %s %s\n\n%s\n", v->name, v->args,
		v->summary);
	if (!v->fn)
		fprintf(out, "\nnot available yet: arrives with %s.\n",
			v->pending);
	fprintf(out, "\noptions:\n%s%s", v->help ? v->help : "",
		cli_common_help);
}

const struct cli_verb *cli_find_verb(const char *name)
{
	for (unsigned i = 0; i < cli_n_verbs; i++)
		if (strcmp(cli_verbs[i].name, name) == 0)
			return &cli_verbs[i];
	return NULL;
}

int cli_load_config(struct cli_ctx *ctx, struct err *e)
{
	if (ctx->cfg)
		return 0;
	return config_load(config_resolve_path(ctx->config_path), &ctx->cfg,
			   e);
}

int cli_parse(struct cli_ctx *ctx, const struct cli_verb *v, int argc,
	      char **argv, const char *shortopts, const struct option *longopts,
	      int (*on_opt)(int opt, const char *arg, void *u), void *u,
	      int *optind_out, struct err *e)
{
	struct option all[32];
	char shorts[64];
	size_t n = 0;
	int c;

	static const struct option common[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "json", no_argument, NULL, 'J' },
		{ "help", no_argument, NULL, 'h' },
	};
	for (size_t i = 0; i < sizeof(common) / sizeof(common[0]); i++)
		all[n++] = common[i];
	for (size_t i = 0; longopts && longopts[i].name && n < 31; i++)
		all[n++] = longopts[i];
	memset(&all[n], 0, sizeof(all[n]));
	/* No '+': options may follow operands ("show ID --json"). */
	snprintf(shorts, sizeof(shorts), ":c:h%s", shortopts ? shortopts : "");

	optind = 0;   /* 0, not 1: glibc then forgets main()'s scan entirely */
	opterr = 0;
	while ((c = getopt_long(argc, argv, shorts, all, NULL)) != -1) {
		switch (c) {
		case 'c':
			ctx->config_path = optarg;
			break;
		case 'J':
			ctx->json = true;
			break;
		case 'h':
			cli_verb_usage(v, stdout);
			return 1;
		case '?':
			return err_set(e, ERR_USAGE,
				       "unknown option '%s' for '%s' (see backupctl %s --help)",
				       argv[optind - 1], v->name, v->name);
		case ':':
			return err_set(e, ERR_USAGE,
				       "option '%s' of '%s' needs a value",
				       argv[optind - 1], v->name);
		default:
			if (!on_opt || on_opt(c, optarg, u) != 0)
				return err_set(e, ERR_USAGE,
					       "bad value '%s' for option '%s' of '%s'",
					       optarg ? optarg : "",
					       argv[optind - 1], v->name);
		}
	}
	*optind_out = optind;
	return 0;
}

int main(int argc, char **argv)
{
	struct cli_ctx ctx = { .argv0 = argv[0] };
	struct err e;
	int level = LOGL_WARN;
	enum log_format fmt = LOG_FORMAT_TEXT;
	int c, rc;

	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "json", no_argument, NULL, 'J' },
		{ "log-level", required_argument, NULL, 'L' },
		{ "log-format", required_argument, NULL, 'F' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};

	err_init(&e);
	/* A server or NFS peer that goes away must turn into an error, not
	 * kill the process. */
	signal(SIGPIPE, SIG_IGN);
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+c:hV", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			ctx.config_path = optarg;
			break;
		case 'J':
			ctx.json = true;
			break;
		case 'L':
			level = log_level_parse(optarg);
			if (level < 0) {
				fprintf(stderr, "backupctl: unknown log level '%s'\n", optarg);
				return err_exit_status(ERR_USAGE);
			}
			break;
		case 'F':
			if (strcmp(optarg, "json") == 0)
				fmt = LOG_FORMAT_JSON;
			else if (strcmp(optarg, "text") != 0) {
				fprintf(stderr, "backupctl: unknown log format '%s'\n", optarg);
				return err_exit_status(ERR_USAGE);
			}
			break;
		case 'h':
			cli_usage(stdout);
			return 0;
		case 'V':
			printf("backupctl %s\n", BACKUPD_VERSION);
			return 0;
		default:
			fprintf(stderr, "backupctl: unknown option '%s' (see backupctl --help)\n",
				argv[optind - 1]);
			return err_exit_status(ERR_USAGE);
		}
	}
	log_setup((enum log_level)level, fmt);
	if (optind >= argc) {
		cli_usage(stderr);
		return err_exit_status(ERR_USAGE);
	}

	const char *verb = argv[optind];
	const struct cli_verb *v = NULL;
	for (unsigned i = 0; i < cli_n_verbs; i++)
		if (strcmp(cli_verbs[i].name, verb) == 0)
			v = &cli_verbs[i];
	if (!v) {
		fprintf(stderr, "backupctl: unknown verb '%s' (see backupctl --help)\n", verb);
		return err_exit_status(ERR_USAGE);
	}
	argc -= optind;
	argv += optind;
	if (!v->fn) {
		for (int i = 1; i < argc; i++)
			if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
				cli_verb_usage(v, stdout);
				return 0;
			}
		fprintf(stderr, "backupctl: '%s' is not available yet: it arrives with %s\n",
			v->name, v->pending);
		return err_exit_status(ERR_NOT_IMPLEMENTED);
	}

	/* Once, before any thread starts (STYLE.md). */
	if (mysql_library_init(0, NULL, NULL) != 0) {
		fprintf(stderr, "backupctl: unable to initialise the MySQL client library\n");
		return err_exit_status(ERR_INTERNAL);
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);

	rc = v->fn(&ctx, argc, argv, &e);
	if (rc != 0 && rc != 1) {
		if (!err_is_set(&e))
			err_set(&e, rc, "'%s' failed", v->name);
		fprintf(stderr, "backupctl: %s\n", e.msg);
		rc = err_exit_status(e.code);
	} else {
		rc = 0;
	}
	config_free(ctx.cfg);
	curl_global_cleanup();
	mysql_library_end();
	log_forget_secrets();
	return rc;
}
