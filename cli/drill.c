/* backupctl drill and drills: run a DR drill now (restore the latest or a
 * given snapshot into the cluster's drill_target, check it, report RTO and
 * RPO) and list the drill history. Human output on stdout, --json one
 * document on stdout (also for a failed drill, whose error then goes to
 * stderr as usual), progress on stderr. SIGINT/SIGTERM abort a drill
 * cleanly: what it created on the target is dropped. Single-threaded. */
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "buf.h"
#include "catalog.h"
#include "cli.h"
#include "drill.h"
#include "drills.h"

const char cli_drill_help[] =
	"      --cluster C     the cluster (needed when the config has several)\n"
	"      --snapshot ID   drill this snapshot instead of the latest complete one\n"
	"      --keep          leave the restored databases on the drill target for\n"
	"                      inspection (the next drill drops them); also drill_keep\n"
	"      --threads N     restore connections (default: the config's threads)\n"
	"      --progress      phase lines on stderr (default when stderr is a terminal)\n";
const char cli_drills_help[] =
	"      --cluster C     only this cluster\n"
	"      --limit N       the newest N drills (default 50)\n";

static volatile sig_atomic_t drill_abort;

static void drill_on_signal(int sig)
{
	(void)sig;
	drill_abort = 1;
}

static json_t *jtime(double t)
{
	char b[40];

	if (t <= 0 || catalog_time_iso(t, true, b, sizeof(b)) != 0)
		return json_null();
	return json_string(b);
}

static json_t *jsecs(double s)
{
	return s < 0 ? json_null() : json_real(round(s * 1000) / 1000);
}

static json_t *jstr(const char *s)
{
	json_t *j = s ? json_string(s) : NULL;

	return j ? j : json_null();
}

static int print_json(json_t *doc, struct err *e)
{
	int rc = json_dumpf(doc, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(10));

	json_decref(doc);
	if (rc != 0)
		return err_set(e, ERR_IO, "unable to write the JSON output");
	fputc('\n', stdout);
	return 0;
}

static void fmt_bytes(double b, char *out, size_t n)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB" };
	unsigned u = 0;

	while (b >= 1024 && u + 1 < sizeof(units) / sizeof(units[0])) {
		b /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(out, n, "%.0f B", b);
	else
		snprintf(out, n, "%.1f %s", b, units[u]);
}

static void fmt_dur(double s, char *out, size_t n)
{
	if (s < 0)
		str_copy(out, n, "-");
	else if (s < 120)
		snprintf(out, n, "%.2fs", s);
	else if (s < 7200)
		snprintf(out, n, "%dm%02ds", (int)s / 60, (int)s % 60);
	else if (s < 172800)
		snprintf(out, n, "%dh%02dm", (int)s / 3600, (int)s % 3600 / 60);
	else
		snprintf(out, n, "%.1fd", s / 86400);
}

static void fmt_time(double t, char *out, size_t n)
{
	if (t <= 0 || catalog_time_iso(t, false, out, n) != 0)
		str_copy(out, n, "-");
}

/* ---- drill --------------------------------------------------------------- */

struct drill_cli_opts {
	const char *cluster;
	const char *snapshot;
	bool keep;
	bool progress;
	long threads;
};

static int drill_opt(int opt, const char *arg, void *u)
{
	struct drill_cli_opts *o = u;

	switch (opt) {
	case 'C': o->cluster = arg; return 0;
	case 'S': o->snapshot = arg; return 0;
	case 'K': o->keep = true; return 0;
	case 'P': o->progress = true; return 0;
	case 'T': return str_to_long(arg, 1, 256, &o->threads);
	default: return -1;
	}
}

static json_t *report_json(const struct drill_report *r, const struct err *why)
{
	json_t *o = json_object(), *ph = json_array();

	for (size_t i = 0; i < r->n_phases; i++)
		json_array_append_new(ph, json_pack("{s:s, s:o, s:b}", "name", r->phases[i].name,
						    "seconds", jsecs(r->phases[i].seconds),
						    "ok", r->phases[i].ok));
	json_object_set_new(o, "drill_id", r->drill_id ? json_integer((json_int_t)r->drill_id)
						       : json_null());
	json_object_set_new(o, "cluster", json_string(r->cluster));
	json_object_set_new(o, "snapshot_id", r->snapshot_id[0] ? json_string(r->snapshot_id)
							       : json_null());
	json_object_set_new(o, "target", json_string(r->target));
	json_object_set_new(o, "passed", json_boolean(r->passed));
	json_object_set_new(o, "result", json_string(r->passed ? "ok" : why && why->code == ERR_ABORTED
							     ? "aborted" : "failed"));
	json_object_set_new(o, "started_at", jtime(r->started_at));
	json_object_set_new(o, "finished_at", jtime(r->finished_at));
	json_object_set_new(o, "rto_s", jsecs(r->rto_s));
	json_object_set_new(o, "rpo_s", jsecs(r->rpo_s));
	json_object_set_new(o, "bytes", json_integer((json_int_t)r->bytes));
	json_object_set_new(o, "bytes_stored", json_integer((json_int_t)r->bytes_stored));
	json_object_set_new(o, "rows", json_integer((json_int_t)r->rows));
	json_object_set_new(o, "databases", json_integer(r->n_databases));
	json_object_set_new(o, "tables", json_integer(r->n_tables));
	json_object_set_new(o, "tables_checked", json_integer(r->n_checked));
	json_object_set_new(o, "probes", json_integer(r->n_probes));
	json_object_set_new(o, "wiped", json_integer(r->n_wiped));
	json_object_set_new(o, "kept", json_boolean(r->kept));
	json_object_set_new(o, "phases", ph);
	json_object_set_new(o, "failed_phase", r->failed_phase[0] ? json_string(r->failed_phase)
								 : json_null());
	json_object_set_new(o, "file", r->file[0] ? json_string(r->file) : json_null());
	json_object_set_new(o, "reason", r->reason[0] ? json_string(r->reason) : json_null());
	if (why) {
		json_object_set_new(o, "error", json_string(why->msg));
		json_object_set_new(o, "error_code", json_string(err_code_name(why->code)));
	}
	return o;
}

/* Whether the drill got to phase name. */
static bool ran(const struct drill_report *r, const char *name)
{
	for (size_t i = 0; i < r->n_phases; i++)
		if (strcmp(r->phases[i].name, name) == 0)
			return true;
	return false;
}

static void report_text(const struct drill_report *r)
{
	char a[48], b[48], c[48];

	if (r->drill_id)
		printf("drill %" PRId64 " of '%s': %s\n", r->drill_id, r->cluster,
		       r->passed ? "PASSED" : "FAILED");
	else
		printf("drill of '%s': %s\n", r->cluster, r->passed ? "PASSED" : "FAILED");
	printf("  snapshot   %s\n", r->snapshot_id[0] ? r->snapshot_id : "-");
	printf("  target     %s%s\n", r->target, r->kept ? " (data kept for inspection)" : "");
	if (ran(r, "restore")) {
		fmt_bytes((double)r->bytes, a, sizeof(a));
		fmt_bytes((double)r->bytes_stored, b, sizeof(b));
		printf("  restored   %u tables in %u databases, %" PRIu64 " rows, %s (%s stored)\n",
		       r->n_tables, r->n_databases, r->rows, a, b);
	}
	if (ran(r, "check"))
		printf("  checked    %u of %u tables with CHECK TABLE, %u probe%s passed\n",
		       r->n_checked, r->n_tables, r->n_probes, r->n_probes == 1 ? "" : "s");
	if (r->n_wiped)
		printf("  wiped      %u database%s an earlier drill left\n", r->n_wiped,
		       r->n_wiped == 1 ? "" : "s");
	fmt_dur(r->rto_s, a, sizeof(a));
	fmt_dur(r->rpo_s, c, sizeof(c));
	printf("  RTO        %s%s\n", a, r->passed ? " (start to data restored and verified)" : "");
	printf("  RPO        %s (age of the snapshot's data at drill time)\n", c);
	printf("  phases    ");
	for (size_t i = 0; i < r->n_phases; i++) {
		fmt_dur(r->phases[i].seconds, a, sizeof(a));
		printf(" %s %s%s%s", r->phases[i].name, a, r->phases[i].ok ? "" : " FAILED",
		       i + 1 < r->n_phases ? "," : "");
	}
	printf("\n");
	if (r->file[0])
		printf("  bad file   %s\n", r->file);
	if (r->reason[0])
		printf("  reason     %s\n", r->reason);
}

static void drill_print_daemon(struct cli_ctx *ctx, json_t *r, bool ok, void *u)
{
	if (ctx->json) {
		cli_print_json(r);
		return;
	}
	printf("drill %lld of '%s' by the running daemon: %s, RTO %.2f s, RPO %.2f s\n",
	       (long long)json_integer_value(json_object_get(r, "drill_id")),
	       json_string_value(json_object_get(r, "cluster")) ?: "?",
	       json_is_true(json_object_get(r, "passed")) ? "PASSED" : "FAILED",
	       json_number_value(json_object_get(r, "rto_s")),
	       json_number_value(json_object_get(r, "rpo_s")));
}

int cli_drill(struct cli_ctx *ctx, int argc, char **argv, struct err *e)
{
	static const struct option longopts[] = {
		{ "cluster", required_argument, NULL, 'C' },
		{ "snapshot", required_argument, NULL, 'S' },
		{ "keep", no_argument, NULL, 'K' },
		{ "progress", no_argument, NULL, 'P' },
		{ "threads", required_argument, NULL, 'T' },
		{ NULL, 0, NULL, 0 },
	};
	struct drill_cli_opts co = { 0 };
	struct drill_opts o;
	struct drill_report *rep = NULL;
	const struct cfg_cluster *cl;
	struct catalog *cat = NULL;
	struct sigaction sa;
	int first, rc;

	rc = cli_parse(ctx, cli_find_verb("drill"), argc, argv, NULL, longopts,
		       drill_opt, &co, &first, e);
	if (rc)
		return rc;
	if (first < argc)
		return err_set(e, ERR_USAGE, "unexpected argument '%s'", argv[first]);
	rc = cli_load_config(ctx, e);
	if (rc == 0)
		rc = cli_pick_cluster(ctx, co.cluster, &cl, e);
	if (rc)
		return rc;
	/* A running daemon runs the drill (its job lock, its outbox); --keep
	 * and --threads are options of a drill run here. */
	if (!co.keep && !co.threads) {
		bool handled;
		json_t *req = json_pack("{s:s, s:s}", "verb", "drill", "cluster", cl->name);
		if (co.snapshot)
			json_object_set_new(req, "id", json_string(co.snapshot));
		rc = cli_daemon_job(ctx, req, "result", drill_print_daemon, NULL, &handled, e);
		if (handled)
			return rc;
	}
	rc = catalog_open(ctx->cfg->catalog, &cat, e);
	if (rc)
		return rc;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = drill_on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	memset(&o, 0, sizeof(o));
	o.snapshot_id = co.snapshot;
	o.keep = co.keep;
	o.trigger = "manual";
	o.threads = (int)co.threads;
	o.progress = co.progress || (!ctx->json && isatty(2));
	o.abort_flag = &drill_abort;
	rep = calloc(1, sizeof(*rep));
	if (!rep) {
		catalog_close(cat);
		return err_set(e, ERR_INTERNAL, "out of memory");
	}
	rc = drill_run(ctx->cfg, cl, cat, &o, rep, e);
	catalog_close(cat);
	/* Nothing was tried (no target, a drill already running, a bad id):
	 * the error alone says it. */
	if (rc && rep->drill_id == 0) {
		free(rep);
		return rc;
	}
	if (ctx->json) {
		int jrc = print_json(report_json(rep, rc ? e : NULL), rc ? NULL : e);

		if (rc == 0)
			rc = jrc;
	} else {
		report_text(rep);
	}
	free(rep);
	return rc;
}

/* ---- drills -------------------------------------------------------------- */

struct drills_cli_opts {
	const char *cluster;
	long limit;
};

static int drills_opt(int opt, const char *arg, void *u)
{
	struct drills_cli_opts *o = u;

	switch (opt) {
	case 'C': o->cluster = arg; return 0;
	case 'N': return str_to_long(arg, 1, DRILL_LIST_MAX, &o->limit);
	default: return -1;
	}
}

static json_t *row_json(const struct drill_row *r)
{
	json_t *o = json_object();
	json_t *ph = r->phases ? json_loads(r->phases, 0, NULL) : NULL;

	json_object_set_new(o, "id", json_integer((json_int_t)r->id));
	json_object_set_new(o, "job_id", r->job_id >= 0 ? json_integer((json_int_t)r->job_id)
							: json_null());
	json_object_set_new(o, "cluster", jstr(r->cluster));
	json_object_set_new(o, "snapshot_id", jstr(r->snapshot_id));
	json_object_set_new(o, "target", jstr(r->target));
	json_object_set_new(o, "started_at", jtime(r->started_at));
	json_object_set_new(o, "finished_at", jtime(r->finished_at));
	json_object_set_new(o, "result", jstr(r->result));
	json_object_set_new(o, "passed", json_boolean(r->result && strcmp(r->result, "ok") == 0));
	json_object_set_new(o, "rto_s", jsecs(r->rto_s));
	json_object_set_new(o, "rpo_s", jsecs(r->rpo_s));
	json_object_set_new(o, "bytes", r->bytes >= 0 ? json_integer((json_int_t)r->bytes)
						      : json_null());
	json_object_set_new(o, "phases", ph ? ph : json_array());
	json_object_set_new(o, "reason", jstr(r->reason));
	return o;
}

int cli_drills(struct cli_ctx *ctx, int argc, char **argv, struct err *e)
{
	static const struct option longopts[] = {
		{ "cluster", required_argument, NULL, 'C' },
		{ "limit", required_argument, NULL, 'N' },
		{ NULL, 0, NULL, 0 },
	};
	struct drills_cli_opts co = { .limit = 50 };
	struct catalog *cat = NULL;
	struct drill_row *rows = NULL;
	size_t n = 0;
	int first, rc;

	rc = cli_parse(ctx, cli_find_verb("drills"), argc, argv, NULL, longopts,
		       drills_opt, &co, &first, e);
	if (rc)
		return rc;
	if (first < argc)
		return err_set(e, ERR_USAGE, "unexpected argument '%s'", argv[first]);
	rc = cli_load_config(ctx, e);
	if (rc == 0 && co.cluster && !config_find_cluster(ctx->cfg, co.cluster))
		rc = err_set(e, ERR_NOT_FOUND, "no cluster '%s' in config '%s'",
			     co.cluster, ctx->cfg->path);
	if (rc == 0)
		rc = catalog_open(ctx->cfg->catalog, &cat, e);
	if (rc == 0)
		rc = drill_list(cat, co.cluster, (size_t)co.limit, &rows, &n, e);
	catalog_close(cat);
	if (rc)
		return rc;
	if (ctx->json) {
		json_t *a = json_array();

		for (size_t i = 0; i < n; i++)
			json_array_append_new(a, row_json(&rows[i]));
		rc = print_json(a, e);
	} else if (n == 0) {
		printf("no drills%s%s%s: `backupctl drill` runs one\n",
		       co.cluster ? " of cluster '" : "", co.cluster ? co.cluster : "",
		       co.cluster ? "'" : "");
	} else {
		int wid = 8;

		for (size_t i = 0; i < n; i++)
			if (rows[i].snapshot_id && (int)strlen(rows[i].snapshot_id) > wid)
				wid = (int)strlen(rows[i].snapshot_id);
		printf("%-5s  %-10s  %-20s  %-*s  %-7s  %9s  %9s  %10s  %s\n", "ID", "CLUSTER",
		       "STARTED (UTC)", wid, "SNAPSHOT", "RESULT", "RTO", "RPO", "RESTORED",
		       "REASON");
		for (size_t i = 0; i < n; i++) {
			const struct drill_row *r = &rows[i];
			char when[40], rto[32], rpo[32], by[32];

			fmt_time(r->started_at, when, sizeof(when));
			fmt_dur(r->rto_s, rto, sizeof(rto));
			fmt_dur(r->rpo_s, rpo, sizeof(rpo));
			if (r->bytes >= 0)
				fmt_bytes((double)r->bytes, by, sizeof(by));
			else
				str_copy(by, sizeof(by), "-");
			printf("%-5" PRId64 "  %-10s  %-20s  %-*s  %-7s  %9s  %9s  %10s  %s\n",
			       r->id, r->cluster ? r->cluster : "-", when, wid,
			       r->snapshot_id ? r->snapshot_id : "-",
			       r->result && strcmp(r->result, "ok") == 0 ? "passed"
									: r->result ? r->result : "-",
			       rto, rpo, by, r->reason ? r->reason : "");
		}
	}
	drill_row_free_list(rows, n);
	return rc;
}
