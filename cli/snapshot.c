/* backupctl snapshot: take a consistent snapshot now and print its id
 * (stdout), or one JSON document with --json. SIGINT/SIGTERM abort it
 * cleanly: nothing becomes visible and the catalog says aborted. */
#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "catalog.h"
#include "cli.h"
#include "control.h"
#include "snapshot.h"

static volatile sig_atomic_t snapshot_abort;

static void snapshot_on_signal(int sig)
{
	(void)sig;
	snapshot_abort = 1;
}

struct snapshot_cli_opts {
	const char *cluster;
	const char *from;
	long chunk_rows;
};

static int snapshot_opt(int opt, const char *arg, void *u)
{
	struct snapshot_cli_opts *o = u;
	switch (opt) {
	case 'C': o->cluster = arg; return 0;
	case 'F': o->from = arg; return 0;
	case 'R': return str_to_long(arg, 1, 1000000000L, &o->chunk_rows);
	default: return -1;
	}
}

int cli_daemon_call(struct cli_ctx *ctx, json_t *req, json_t **reply, struct err *e)
{
	int rc;
	if (getenv("BACKUPCTL_NO_DAEMON")) {
		json_decref(req);
		return err_set(e, ERR_NOT_FOUND, "daemon hand-off disabled");
	}
	rc = control_call(ctx->cfg->control_socket, req, 24 * 3600 * 1000, reply, e);
	if (rc == 0)
		rc = control_reply_check(*reply, e);
	return rc;
}

void cli_print_json(json_t *j)
{
	json_dumpf(j, stdout, JSON_INDENT(2));
	fputc('\n', stdout);
}

int cli_daemon_job(struct cli_ctx *ctx, json_t *req, const char *key,
		   cli_job_print_fn print, void *u, bool *handled, struct err *e)
{
	json_t *reply = NULL;
	int rc = cli_daemon_call(ctx, req, &reply, e);

	*handled = rc != ERR_NOT_FOUND;
	if (!*handled) {
		err_init(e);
		return 0;
	}
	json_t *r = reply ? json_object_get(reply, key) : NULL;
	if (r && !json_is_null(r))
		print(ctx, r, rc == 0, u);
	json_decref(reply);
	return rc;
}

/* The cluster named by --cluster, or the only one the config has. */
int cli_pick_cluster(struct cli_ctx *ctx, const char *name,
		     const struct cfg_cluster **out, struct err *e)
{
	if (name) {
		*out = config_find_cluster(ctx->cfg, name);
		if (!*out)
			return err_set(e, ERR_NOT_FOUND, "no cluster '%s' in config '%s'",
				       name, ctx->cfg->path);
		return 0;
	}
	if (ctx->cfg->n_clusters != 1)
		return err_set(e, ERR_USAGE,
			       "config '%s' has %zu clusters: name one with --cluster",
			       ctx->cfg->path, ctx->cfg->n_clusters);
	*out = &ctx->cfg->clusters[0];
	return 0;
}

static void snapshot_print_daemon(struct cli_ctx *ctx, json_t *r, bool ok, void *u)
{
	const char *id = json_string_value(json_object_get(r, "id"));
	if (ctx->json) {
		cli_print_json(r);
	} else if (ok && id) {
		printf("%s\n", id);
		fprintf(stderr, "snapshot %s taken by the running daemon\n", id);
	}
}

int cli_snapshot(struct cli_ctx *ctx, int argc, char **argv, struct err *e)
{
	static const struct option longopts[] = {
		{ "cluster", required_argument, NULL, 'C' },
		{ "from", required_argument, NULL, 'F' },
		{ "chunk-rows", required_argument, NULL, 'R' },
		{ NULL, 0, NULL, 0 },
	};
	struct snapshot_cli_opts so = { 0 };
	struct snapshot_opts o;
	struct snapshot_result res;
	const struct cfg_cluster *cl;
	struct catalog *cat = NULL;
	struct sigaction sa;
	int first, rc;

	rc = cli_parse(ctx, cli_find_verb("snapshot"), argc, argv, NULL, longopts,
		       snapshot_opt, &so, &first, e);
	if (rc)
		return rc;
	if (first < argc)
		return err_set(e, ERR_USAGE, "unexpected argument '%s'", argv[first]);
	rc = cli_load_config(ctx, e);
	if (rc == 0)
		rc = cli_pick_cluster(ctx, so.cluster, &cl, e);
	if (rc)
		return rc;

	/* A running daemon takes the job, so its locks and schedules stay in
	 * charge; without one, run it here. */
	bool handled;
	json_t *req = json_pack("{s:s, s:s}", "verb", "snapshot", "cluster", cl->name);
	if (so.from)
		json_object_set_new(req, "from", json_string(so.from));
	rc = cli_daemon_job(ctx, req, "result", snapshot_print_daemon, NULL, &handled, e);
	if (handled)
		return rc;
	rc = catalog_open(ctx->cfg->catalog, &cat, e);
	if (rc)
		return rc;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = snapshot_on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	memset(&o, 0, sizeof(o));
	o.cfg = ctx->cfg;
	o.cluster = cl;
	o.from = so.from;
	o.trigger = "manual";
	o.progress = !ctx->json && isatty(2);
	o.abort_flag = &snapshot_abort;
	o.chunk_rows = (uint64_t)so.chunk_rows;
	rc = snapshot_run(cat, &o, &res, e);
	catalog_close(cat);
	if (rc)
		return rc;
	if (ctx->json) {
		json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:i, s:i, s:f, s:f}",
				      "id", res.id, "cluster", cl->name, "source", res.source,
				      "gtid", res.gtid, "bytes_raw", (json_int_t)res.bytes_raw,
				      "bytes_stored", (json_int_t)res.bytes_stored,
				      "rows", (json_int_t)res.rows, "tables", (int)res.n_tables,
				      "files", (int)res.n_files, "seconds", res.seconds,
				      "freeze_ms", res.freeze_ms);
		json_dumpf(j, stdout, JSON_INDENT(2));
		fputc('\n', stdout);
		json_decref(j);
	} else {
		printf("%s\n", res.id);
		fprintf(stderr,
			"snapshot %s of '%s' from %s at gtid '%s': %u tables, %llu rows, %.1f MB -> %.1f MB (%.2fx) in %.2f s (source frozen %.0f ms)\n",
			res.id, cl->name, res.source, res.gtid, res.n_tables,
			(unsigned long long)res.rows, res.bytes_raw / 1e6,
			res.bytes_stored / 1e6,
			res.bytes_stored ? (double)res.bytes_raw / (double)res.bytes_stored : 0.0,
			res.seconds, res.freeze_ms);
	}
	return 0;
}
