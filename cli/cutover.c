/* backupctl cutover --to SERVER [--dry-run] [--timeout S] ...: blue/green
 * switch of the writer with guardrails and rollback (backupd/cutover.h);
 * backupctl canary --to SERVER --weight PCT [--backend NAME]: a share of
 * the read traffic to a server through HAProxy. The report goes to stdout
 * (one JSON document with --json); SIGINT/SIGTERM before the traffic switch
 * roll the cutover back. */
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "catalog.h"
#include "cli.h"
#include "cutover.h"

/* Declared in cli.h with the verb table; repeated here so this file
 * stands on its own until then. */
int cli_cutover(struct cli_ctx *ctx, int argc, char **argv, struct err *e);
int cli_canary(struct cli_ctx *ctx, int argc, char **argv, struct err *e);
extern const char cli_cutover_help[];
extern const char cli_canary_help[];

const char cli_cutover_help[] =
	"      --to SERVER     green: host:port of a configured server replicating from the\n"
	"                      current primary (the catalog's topology, else the config's)\n"
	"      --cluster C     the cluster (needed when the config has several)\n"
	"      --dry-run       run the preflight checks, print them and the plan, change nothing\n"
	"      --timeout S     write pause budget: a failure before the traffic switch rolls\n"
	"                      back within S seconds (default 10)\n"
	"      --max-lag S     green's lag limit (default 5, at most half of --timeout)\n"
	"      --max-trx-age S longest open transaction allowed on the primary (default 10)\n"
	"      --trx-wait S    after read-only, wait S for open write transactions, then kill\n"
	"                      them (default 2)\n"
	"      --max-snapshot-age H  newest complete snapshot must be younger (default 24;\n"
	"                      0 skips the check)\n"
	"      --resume        finish a cutover that stopped after the traffic switch\n";
const char cli_canary_help[] =
	"      --to SERVER     host:port of the server that gets the share (found by address)\n"
	"      --weight PCT    share of new read connections, 1..99; 0 undoes\n"
	"      --backend NAME  HAProxy backend (default: haproxy_read_backend)\n"
	"      --cluster C     the cluster (needed when the config has several)\n";

static volatile sig_atomic_t cutover_abort;

static void cutover_on_signal(int sig)
{
	(void)sig;
	cutover_abort = 1;
}

/* A non-negative decimal number ("2", "0.5"), at most max. */
static int parse_decimal(const char *s, double max, double *out)
{
	char *end;
	double v;

	if (!s || !*s || strspn(s, "0123456789.") != strlen(s))
		return -1;
	v = strtod(s, &end);
	if (*end || !isfinite(v) || v < 0 || v > max)
		return -1;
	*out = v;
	return 0;
}

struct cutover_cli_opts {
	const char *cluster;
	struct cutover_opts o;
	bool snap_age_set;
};

static int cutover_opt(int opt, const char *arg, void *u)
{
	struct cutover_cli_opts *c = u;
	double v;

	switch (opt) {
	case 'C': c->cluster = arg; return 0;
	case 'T': c->o.to = arg; return 0;
	case 'n': c->o.dry_run = true; return 0;
	case 'R': c->o.resume = true; return 0;
	case 't':
		if (parse_decimal(arg, 86400, &v) || v < 1)
			return -1;
		c->o.timeout_s = v;
		return 0;
	case 'L':
		if (parse_decimal(arg, 86400, &v) || v <= 0)
			return -1;
		c->o.max_lag_s = v;
		return 0;
	case 'A':
		if (parse_decimal(arg, 86400 * 30.0, &v) || v <= 0)
			return -1;
		c->o.max_trx_s = v;
		return 0;
	case 'W':
		if (parse_decimal(arg, 3600, &v) || v <= 0)
			return -1;
		c->o.trx_wait_s = v;
		return 0;
	case 'S':
		if (parse_decimal(arg, 24 * 3650.0, &v))
			return -1;
		/* 0 skips the check (cutover_opts uses < 0 for that). */
		c->o.max_snapshot_age_h = v > 0 ? v : -1;
		return 0;
	default:
		return -1;
	}
}

static void print_report(const struct cutover_report *r, FILE *out)
{
	fprintf(out, "cutover of '%s': %s (primary per %s) -> %s%s%s\n", r->cluster, r->from,
		r->from_catalog ? "catalog" : "config", r->to, r->dry_run ? "  [dry run]" : "",
		r->resume ? "  [resume]" : "");
	if (r->n_checks) {
		fprintf(out, "preflight:\n");
		for (size_t i = 0; i < r->n_checks; i++) {
			const struct cutover_check *c = &r->checks[i];
			fprintf(out, "  %-4s  %-18s %s\n", c->skipped ? "SKIP" : c->pass ? "PASS" : "FAIL",
				c->name, c->value);
			if (c->limit[0])
				fprintf(out, "        %-18s limit: %s\n", "", c->limit);
		}
	}
	if (r->n_plan && (r->dry_run || !r->preflight_ok)) {
		fprintf(out, "plan:\n");
		for (size_t i = 0; i < r->n_plan; i++)
			fprintf(out, "  %2zu. %s\n", i + 1, r->plan[i]);
	}
	if (r->n_steps > 1 || (r->n_steps == 1 && !r->dry_run && r->preflight_ok)) {
		fprintf(out, "steps:\n");
		for (size_t i = 0; i < r->n_steps; i++) {
			const struct cutover_step *s = &r->steps[i];
			fprintf(out, "  %-11s %-28s %9.1f ms  %s\n", s->result, s->name,
				s->duration_ms, s->message);
		}
	}
	if (r->write_pause_ms >= 0)
		fprintf(out, "write pause: %.1f ms%s\n", r->write_pause_ms,
			strcmp(r->result, "ok") == 0 ? "" : " (until blue was writable again)");
	if (strcmp(r->result, "ok") == 0)
		fprintf(out, "result: ok: the writer is now %s; roll back with `backupctl cutover --to %s`\n",
			r->to, r->from);
	else if (strcmp(r->result, "dry_run") == 0)
		fprintf(out, "result: dry run: every check passed, nothing changed\n");
	else
		fprintf(out, "result: %s%s%s\n", r->result,
			r->failed_step[0] ? " at step " : "", r->failed_step);
	if (r->next[0])
		fprintf(out, "next: %s\n", r->next);
}

static void cutover_print_daemon(struct cli_ctx *ctx, json_t *r, bool ok, void *u)
{
	if (ctx->json)
		cli_print_json(r);
	else
		fprintf(stderr, "cutover run by the daemon: result %s, write pause %.1f ms\n",
			json_string_value(json_object_get(r, "result")) ?: "?",
			json_number_value(json_object_get(r, "write_pause_ms")));
}

int cli_cutover(struct cli_ctx *ctx, int argc, char **argv, struct err *e)
{
	static const struct option longopts[] = {
		{ "cluster", required_argument, NULL, 'C' },
		{ "to", required_argument, NULL, 'T' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ "resume", no_argument, NULL, 'R' },
		{ "timeout", required_argument, NULL, 't' },
		{ "max-lag", required_argument, NULL, 'L' },
		{ "max-trx-age", required_argument, NULL, 'A' },
		{ "trx-wait", required_argument, NULL, 'W' },
		{ "max-snapshot-age", required_argument, NULL, 'S' },
		{ NULL, 0, NULL, 0 },
	};
	struct cutover_cli_opts co;
	struct cutover_report *rep;
	const struct cfg_cluster *cl;
	struct catalog *cat = NULL;
	struct sigaction sa, old_int, old_term;
	int first, rc;

	memset(&co, 0, sizeof(co));
	rc = cli_parse(ctx, cli_find_verb("cutover"), argc, argv, NULL, longopts,
		       cutover_opt, &co, &first, e);
	if (rc)
		return rc;
	if (first < argc)
		return err_set(e, ERR_USAGE, "unexpected argument '%s'", argv[first]);
	if (!co.o.to)
		return err_set(e, ERR_USAGE, "cutover needs --to SERVER (see backupctl cutover --help)");
	rc = cli_load_config(ctx, e);
	if (rc == 0)
		rc = cli_pick_cluster(ctx, co.cluster, &cl, e);
	if (rc)
		return rc;

	/* A running daemon runs the cutover and owns its job lock. */
	bool handled;
	json_t *req = json_pack("{s:s, s:s, s:s, s:b, s:b, s:f, s:f, s:f, s:f, s:f}",
				"verb", "cutover", "cluster", cl->name, "to", co.o.to,
				"dry_run", co.o.dry_run, "resume", co.o.resume,
				"timeout_s", co.o.timeout_s, "max_lag_s", co.o.max_lag_s,
				"max_trx_s", co.o.max_trx_s, "trx_wait_s", co.o.trx_wait_s,
				"max_snapshot_age_h", co.o.max_snapshot_age_h);
	rc = cli_daemon_job(ctx, req, "report", cutover_print_daemon, NULL, &handled, e);
	if (handled)
		return rc;
	rc = catalog_open(ctx->cfg->catalog, &cat, e);
	if (rc)
		return rc;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = cutover_on_signal;
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);
	co.o.trigger = "manual";
	co.o.abort_flag = &cutover_abort;
	rep = calloc(1, sizeof(*rep));
	if (!rep) {
		catalog_close(cat);
		return err_set(e, ERR_INTERNAL, "out of memory");
	}
	rc = cutover_run(ctx->cfg, cl, cat, &co.o, rep, e);
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	catalog_close(cat);
	if (ctx->json) {
		json_t *j = cutover_report_json(rep);
		json_dumpf(j, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(10));
		fputc('\n', stdout);
		json_decref(j);
	} else if (rep->from[0]) {
		print_report(rep, stdout);
	}
	fflush(stdout);
	free(rep);
	return rc;
}

/* ------------------------------------------------------------------ canary */

struct canary_cli_opts {
	const char *cluster;
	const char *to;
	const char *backend;
	long weight;
	bool weight_set;
};

static int canary_opt(int opt, const char *arg, void *u)
{
	struct canary_cli_opts *c = u;
	switch (opt) {
	case 'C': c->cluster = arg; return 0;
	case 'T': c->to = arg; return 0;
	case 'B': c->backend = arg; return 0;
	case 'w': {
		/* "10" or "10%". */
		char tmp[8];
		size_t n = strlen(arg);
		if (n == 0 || n >= sizeof(tmp))
			return -1;
		memcpy(tmp, arg, n + 1);
		if (tmp[n - 1] == '%')
			tmp[n - 1] = '\0';
		if (str_to_long(tmp, 0, 99, &c->weight) != 0)
			return -1;
		c->weight_set = true;
		return 0;
	}
	default:
		return -1;
	}
}

static void print_backend(json_t *b, FILE *out)
{
	size_t i;
	json_t *s;

	fprintf(out, "backend %s:\n", json_string_value(json_object_get(b, "backend")));
	json_array_foreach(json_object_get(b, "servers"), i, s) {
		fprintf(out, "  %-12s %-21s %-5s %-8s weight %3lld  %5.1f%%%s\n",
			json_string_value(json_object_get(s, "name")),
			json_string_value(json_object_get(s, "address")),
			json_string_value(json_object_get(s, "state")),
			json_string_value(json_object_get(s, "operational")),
			(long long)json_integer_value(json_object_get(s, "weight")),
			json_real_value(json_object_get(s, "share_pct")),
			json_is_true(json_object_get(s, "cluster_server")) ? "" : "  (not in the cluster)");
	}
}

int cli_canary(struct cli_ctx *ctx, int argc, char **argv, struct err *e)
{
	static const struct option longopts[] = {
		{ "cluster", required_argument, NULL, 'C' },
		{ "to", required_argument, NULL, 'T' },
		{ "weight", required_argument, NULL, 'w' },
		{ "backend", required_argument, NULL, 'B' },
		{ NULL, 0, NULL, 0 },
	};
	struct canary_cli_opts co;
	const struct cfg_cluster *cl;
	struct catalog *cat = NULL;
	json_t *out = NULL;
	int first, rc;

	memset(&co, 0, sizeof(co));
	rc = cli_parse(ctx, cli_find_verb("canary"), argc, argv, NULL, longopts, canary_opt,
		       &co, &first, e);
	if (rc)
		return rc;
	if (first < argc)
		return err_set(e, ERR_USAGE, "unexpected argument '%s'", argv[first]);
	if (!co.to || !co.weight_set)
		return err_set(e, ERR_USAGE, "canary needs --to SERVER and --weight PCT (0..99; 0 undoes)");
	rc = cli_load_config(ctx, e);
	if (rc == 0)
		rc = cli_pick_cluster(ctx, co.cluster, &cl, e);
	if (rc == 0)
		rc = catalog_open(ctx->cfg->catalog, &cat, e);
	if (rc)
		return rc;
	rc = cutover_canary(cl, cat, co.to, (int)co.weight, co.backend, &out, e);
	catalog_close(cat);
	if (rc)
		return rc;
	if (ctx->json) {
		json_dumpf(out, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(10));
		fputc('\n', stdout);
	} else {
		printf("canary: %s/%s (%s) weight %lld -> %lld: %ld%% of new read connections requested\n",
		       json_string_value(json_object_get(out, "backend")),
		       json_string_value(json_object_get(out, "server")), co.to,
		       (long long)json_integer_value(json_object_get(out, "previous_weight")),
		       (long long)json_integer_value(json_object_get(out, "weight")), co.weight);
		print_backend(out, stdout);
	}
	json_decref(out);
	return 0;
}
