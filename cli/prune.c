/* backupctl prune [--cluster C] [--dry-run]: apply retention now, or show
 * what it would remove and why every other snapshot stays. */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "catalog.h"
#include "cli.h"
#include "prune.h"

struct prune_cli_opts {
	const char *cluster;
	bool dry_run;
};

static int prune_opt(int opt, const char *arg, void *u)
{
	struct prune_cli_opts *o = u;
	switch (opt) {
	case 'C': o->cluster = arg; return 0;
	case 'n': o->dry_run = true; return 0;
	default: return -1;
	}
}

static void prune_print(const struct prune_report *rep, bool dry_run, json_t *arr)
{
	for (size_t i = 0; i < rep->n_items; i++) {
		const struct prune_item *it = &rep->items[i];
		if (arr) {
			json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:s}",
							     "cluster", rep->cluster, "id", it->id,
							     "action", it->delete ? (dry_run ? "would delete" : "deleted") : "keep",
							     "why", it->why));
		} else {
			printf("%-8s %-22s %-13s %s\n", rep->cluster, it->id,
			       it->delete ? (dry_run ? "WOULD DELETE" : "DELETED") : "keep", it->why);
		}
	}
}

static void prune_print_daemon(struct cli_ctx *ctx, json_t *r, bool ok, void *u)
{
	const char *cluster = json_string_value(json_object_get(r, "cluster")) ?: "?";
	if (!ok)
		return;
	if (ctx->json) {
		/* The same shape as a standalone prune. */
		json_t *out = json_array(), *it;
		size_t i;
		json_array_foreach(json_object_get(r, "items"), i, it)
			json_array_append_new(out, json_pack("{s:s, s:O, s:s, s:O}",
				"cluster", cluster, "id", json_object_get(it, "id"),
				"action", json_is_true(json_object_get(it, "delete")) ? "deleted" : "keep",
				"why", json_object_get(it, "why")));
		cli_print_json(out);
		json_decref(out);
	} else {
		fprintf(stderr, "%s: prune by the running daemon: %lld deleted, %lld kept\n",
			cluster, (long long)json_integer_value(json_object_get(r, "deleted")),
			(long long)json_integer_value(json_object_get(r, "kept")));
	}
}

int cli_prune(struct cli_ctx *ctx, int argc, char **argv, struct err *e)
{
	static const struct option longopts[] = {
		{ "cluster", required_argument, NULL, 'C' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ NULL, 0, NULL, 0 },
	};
	struct prune_cli_opts po = { 0 };
	struct catalog *cat = NULL;
	json_t *arr = NULL;
	int first, rc;

	rc = cli_parse(ctx, cli_find_verb("prune"), argc, argv, NULL, longopts,
		       prune_opt, &po, &first, e);
	if (rc)
		return rc;
	if (first < argc)
		return err_set(e, ERR_USAGE, "unexpected argument '%s'", argv[first]);
	rc = cli_load_config(ctx, e);
	if (rc == 0 && po.cluster && !config_find_cluster(ctx->cfg, po.cluster))
		rc = err_set(e, ERR_NOT_FOUND, "no cluster '%s' in config '%s'",
			     po.cluster, ctx->cfg->path);
	if (rc)
		return rc;
	if (!po.dry_run && po.cluster) {
		bool handled;
		rc = cli_daemon_job(ctx, json_pack("{s:s, s:s}", "verb", "prune", "cluster", po.cluster),
				    "result", prune_print_daemon, NULL, &handled, e);
		if (handled)
			return rc;
	}
	rc = catalog_open(ctx->cfg->catalog, &cat, e);
	if (rc)
		return rc;
	if (ctx->json)
		arr = json_array();
	for (size_t i = 0; rc == 0 && i < ctx->cfg->n_clusters; i++) {
		const struct cfg_cluster *cl = &ctx->cfg->clusters[i];
		struct prune_report rep;
		int64_t job = -1;
		if (po.cluster && strcmp(po.cluster, cl->name) != 0)
			continue;
		if (!po.dry_run)
			rc = catalog_job_start(cat, "prune", cl->name, "manual", &job, e);
		if (rc)
			break;
		rc = prune_cluster(ctx->cfg, cl, cat, po.dry_run, catalog_now(), &rep, e);
		if (job >= 0) {
			struct err je;
			err_init(&je);
			catalog_job_finish(cat, job, rc ? "failed" : "ok", rc ? e : NULL, &je);
		}
		prune_print(&rep, po.dry_run, arr);
		if (!ctx->json)
			fprintf(stderr, "%s: %zu %s, %zu kept\n", cl->name, rep.n_deleted,
				po.dry_run ? "would be deleted" : "deleted", rep.n_kept);
		prune_report_release(&rep);
	}
	if (arr) {
		json_dumpf(arr, stdout, JSON_INDENT(2));
		fputc('\n', stdout);
		json_decref(arr);
	}
	catalog_close(cat);
	return rc;
}
