/* backupctl list, show, verify and catalog rebuild: the catalog's view of
 * the snapshots, one snapshot's manifest in full, re-reading a snapshot
 * from the repository, and re-indexing the repository into the catalog.
 * Human output on stdout, --json one document on stdout, errors through
 * the verb's struct err (main prints them, exit status by code).
 * Single-threaded. */
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "catalog.h"
#include "catalog_rebuild.h"
#include "cli.h"
#include "manifest.h"
#include "mem.h"
#include "snapshots.h"
#include "storage.h"
#include "verify.h"

const char cli_list_help[] =
	"      --cluster C     only this cluster\n"
	"      --all           every snapshot the catalog remembers: also running,\n"
	"                      failed, aborted and deleted (pruned) ones\n";
const char cli_show_help[] =
	"  ID                  the snapshot id (as `backupctl list` prints it)\n";
const char cli_verify_help[] =
	"  ID                  the snapshot id (as `backupctl list` prints it)\n"
	"      --cluster C     the snapshot's cluster (default: from the catalog,\n"
	"                      else every cluster folder of the repository)\n"
	"      --progress      one line per file on stderr\n";
const char cli_catalog_help[] =
	"  rebuild             re-index the repository: a snapshot exists iff its\n"
	"                      <cluster>/<id>/manifest.json is valid; rows are\n"
	"                      created or fixed from the manifests, complete rows\n"
	"                      whose folder is gone are marked deleted. Safe to\n"
	"                      run at any time and any number of times.\n";

/* ---- shared helpers ------------------------------------------------------ */

static const struct cli_verb *verb_named(const char *name)
{
	static const struct cli_verb fallback = { "?", "", "", NULL, NULL, NULL };

	for (unsigned i = 0; i < cli_n_verbs; i++)
		if (strcmp(cli_verbs[i].name, name) == 0)
			return &cli_verbs[i];
	return &fallback;
}

static int open_catalog(struct cli_ctx *ctx, struct catalog **cat, struct err *e)
{
	int rc = cli_load_config(ctx, e);

	if (rc == 0)
		rc = catalog_open(ctx->cfg->catalog, cat, e);
	return rc;
}

static json_t *jstr(const char *s)
{
	json_t *j = s ? json_string(s) : NULL;

	return j ? j : json_null();
}

static json_t *jtime(double t)
{
	char buf[40];

	if (t <= 0 || catalog_time_iso(t, false, buf, sizeof(buf)) != 0)
		return json_null();
	return json_string(buf);
}

static json_t *jint_or_null(int64_t v)
{
	return v < 0 ? json_null() : json_integer((json_int_t)v);
}

static void fmt_time(double t, char *out, size_t n)
{
	if (t <= 0 || catalog_time_iso(t, false, out, n) != 0)
		str_copy(out, n, "-");
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

static void fmt_ratio(double raw, double stored, char *out, size_t n)
{
	if (stored <= 0 || raw <= 0)
		str_copy(out, n, "-");
	else
		snprintf(out, n, "%.1fx", raw / stored);
}

static void fmt_duration(double s, char *out, size_t n)
{
	if (s < 0)
		str_copy(out, n, "-");
	else if (s < 60)
		snprintf(out, n, "%.1fs", s);
	else if (s < 3600)
		snprintf(out, n, "%dm%02ds", (int)s / 60, (int)s % 60);
	else
		snprintf(out, n, "%dh%02dm", (int)s / 3600, (int)s % 3600 / 60);
}

static double row_duration(const struct catalog_snapshot *s)
{
	return s->started_at > 0 && s->finished_at > 0 ? s->finished_at - s->started_at
						     : -1;
}

/* The repository URL without its query string, for output. */
static void repo_redacted(const char *url, char *out, size_t n)
{
	const char *q = cfg_is_nfs_url(url) ? strchr(url, '?') : NULL;

	if (q && (size_t)(q - url) < n)
		snprintf(out, n, "%.*s", (int)(q - url), url);
	else
		str_copy(out, n, url);
}

static json_t *snapshot_row_json(const struct catalog_snapshot *s)
{
	json_t *o = json_object();
	double d = row_duration(s);

	json_object_set_new(o, "id", jstr(s->id));
	json_object_set_new(o, "cluster", jstr(s->cluster));
	json_object_set_new(o, "status", jstr(s->status));
	json_object_set_new(o, "started_at", jtime(s->started_at));
	json_object_set_new(o, "finished_at", jtime(s->finished_at));
	json_object_set_new(o, "duration_s",
			    d >= 0 ? json_real(round(d * 1000) / 1000) : json_null());
	json_object_set_new(o, "gtid", jstr(s->gtid));
	json_object_set_new(o, "binlog_file", jstr(s->binlog_file));
	json_object_set_new(o, "binlog_pos", s->binlog_file ? jint_or_null(s->binlog_pos)
							  : json_null());
	json_object_set_new(o, "bytes_raw", json_integer((json_int_t)s->bytes_raw));
	json_object_set_new(o, "bytes_stored", json_integer((json_int_t)s->bytes_stored));
	json_object_set_new(o, "source", jstr(s->source_server));
	json_object_set_new(o, "server_flavor", jstr(s->server_flavor));
	json_object_set_new(o, "server_version", jstr(s->server_version));
	json_object_set_new(o, "tables", json_integer((json_int_t)s->n_tables));
	json_object_set_new(o, "files", json_integer((json_int_t)s->n_files));
	json_object_set_new(o, "compress_level", json_integer(s->compress_level));
	json_object_set_new(o, "threads", jint_or_null(s->threads));
	json_object_set_new(o, "verified", jstr(s->verify_status));
	json_object_set_new(o, "verified_at", jtime(s->verified_at));
	json_object_set_new(o, "reason", jstr(s->reason));
	json_object_set_new(o, "deleted_at", jtime(s->deleted_at));
	json_object_set_new(o, "job_id", jint_or_null(s->job_id));
	json_object_set_new(o, "manifest_path", jstr(s->manifest_path));
	json_object_set_new(o, "repository", jstr(s->repository));
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

/* Whether option word a (without its value) takes the next word as its
 * value: -c/--config, and longopts with required_argument. */
static bool takes_value(const char *a, const struct option *longopts)
{
	if (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0)
		return true;
	if (strncmp(a, "--", 2) != 0 || strchr(a, '='))
		return false;
	for (size_t i = 0; longopts && longopts[i].name; i++)
		if (strcmp(a + 2, longopts[i].name) == 0)
			return longopts[i].has_arg == required_argument;
	return false;
}

/* cli_parse stops at the first operand, but `show ID --json` is how people
 * type it: options move before the operands (behind a "--"), order kept.
 * The array is the caller's to free; its strings are argv's. */
static char **permute(int argc, char **argv, const struct option *longopts,
		      int *n_out)
{
	char **out = xcalloc((size_t)argc + 2, sizeof(*out));
	char **ops = xcalloc((size_t)argc + 1, sizeof(*ops));
	int n = 0, nops = 0, i;

	out[n++] = argv[0];
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0) {
			i++;
			break;
		}
		if (argv[i][0] != '-' || argv[i][1] == '\0') {
			ops[nops++] = argv[i];
			continue;
		}
		out[n++] = argv[i];
		if (takes_value(argv[i], longopts) && i + 1 < argc)
			out[n++] = argv[++i];
	}
	for (; i < argc; i++)
		ops[nops++] = argv[i];
	out[n++] = "--";
	for (int k = 0; k < nops; k++)
		out[n++] = ops[k];
	free(ops);
	*n_out = n;
	return out;
}

/* Parses the common options plus longopts, anywhere on the line. On
 * success *args and *n_args are the reordered words (free *args), *first
 * the index of the first operand in them. Returns 1 after --help. */
static int parse(struct cli_ctx *ctx, const char *verb, int argc, char **argv,
		 const struct option *longopts,
		 int (*on_opt)(int opt, const char *arg, void *u), void *u,
		 char ***args, int *n_args, int *first, struct err *e)
{
	int rc;

	*args = permute(argc, argv, longopts, n_args);
	rc = cli_parse(ctx, verb_named(verb), *n_args, *args, NULL, longopts,
		       on_opt, u, first, e);
	if (rc) {
		free(*args);
		*args = NULL;
	}
	return rc;
}

/* ---- list ------------------------------------------------------------------ */

struct list_opts {
	const char *cluster;
	bool all;
};

static int list_opt(int opt, const char *arg, void *u)
{
	struct list_opts *o = u;

	if (opt == 'C')
		o->cluster = arg;
	else if (opt == 'A')
		o->all = true;
	else
		return -1;
	return 0;
}

static void list_text(const struct catalog_snapshot *arr, const size_t *idx,
		      size_t n)
{
	int wid = 2, wcl = 7;

	for (size_t k = 0; k < n; k++) {
		const struct catalog_snapshot *s = &arr[idx[k]];
		int l1 = (int)strlen(s->id), l2 = (int)strlen(s->cluster);

		wid = l1 > wid ? l1 : wid;
		wcl = l2 > wcl ? l2 : wcl;
	}
	printf("%-*s  %-*s  %-8s  %-20s  %8s  %10s  %10s  %6s  %-8s  %s\n",
	       wid, "ID", wcl, "CLUSTER", "STATUS", "STARTED (UTC)", "DURATION",
	       "RAW", "STORED", "RATIO", "VERIFIED", "GTID");
	for (size_t k = 0; k < n; k++) {
		const struct catalog_snapshot *s = &arr[idx[k]];
		char when[40], dur[32], raw[32], stored[32], ratio[32];
		bool sized = strcmp(s->status, "complete") == 0 ||
			     strcmp(s->status, "deleted") == 0;

		fmt_time(s->started_at, when, sizeof(when));
		fmt_duration(row_duration(s), dur, sizeof(dur));
		if (sized) {
			fmt_bytes((double)s->bytes_raw, raw, sizeof(raw));
			fmt_bytes((double)s->bytes_stored, stored, sizeof(stored));
			fmt_ratio((double)s->bytes_raw, (double)s->bytes_stored,
				  ratio, sizeof(ratio));
		} else {
			str_copy(raw, sizeof(raw), "-");
			str_copy(stored, sizeof(stored), "-");
			str_copy(ratio, sizeof(ratio), "-");
		}
		printf("%-*s  %-*s  %-8s  %-20s  %8s  %10s  %10s  %6s  %-8s  %s\n",
		       wid, s->id, wcl, s->cluster, s->status, when, dur, raw,
		       stored, ratio, s->verify_status ? s->verify_status : "-",
		       s->gtid && *s->gtid ? s->gtid : "-");
		if (s->reason && strcmp(s->status, "complete") != 0)
			printf("%*s  %s\n", wid, "", s->reason);
	}
}

int cli_list(struct cli_ctx *ctx, int argc, char **argv, struct err *e)
{
	static const struct option longopts[] = {
		{ "cluster", required_argument, NULL, 'C' },
		{ "all", no_argument, NULL, 'A' },
		{ NULL, 0, NULL, 0 },
	};
	struct list_opts lo = { 0 };
	struct catalog *cat = NULL;
	struct catalog_snapshot *arr = NULL;
	size_t n = 0, shown = 0, *idx = NULL;
	char **args = NULL;
	int nargs, first, rc;

	rc = parse(ctx, "list", argc, argv, longopts, list_opt, &lo, &args, &nargs,
		   &first, e);
	if (rc)
		return rc;
	if (first < nargs) {
		rc = err_set(e, ERR_USAGE, "unexpected argument '%s'", args[first]);
		goto out;
	}
	rc = open_catalog(ctx, &cat, e);
	if (rc == 0)
		rc = catalog_snapshot_list(cat, lo.cluster, &arr, &n, e);
	if (rc)
		goto out;
	if (lo.cluster && n == 0 && !config_find_cluster(ctx->cfg, lo.cluster)) {
		rc = err_set(e, ERR_NOT_FOUND, "no cluster '%s' in config '%s' or in the catalog",
			     lo.cluster, ctx->cfg->path);
		goto out;
	}
	/* Oldest first from the catalog: newest last, next to the prompt. */
	idx = xcalloc(n ? n : 1, sizeof(*idx));
	for (size_t i = 0; i < n; i++)
		if (lo.all || strcmp(arr[i].status, "complete") == 0)
			idx[shown++] = i;
	if (ctx->json) {
		json_t *a = json_array();

		for (size_t k = 0; k < shown; k++)
			json_array_append_new(a, snapshot_row_json(&arr[idx[k]]));
		rc = print_json(a, e);
	} else if (shown == 0) {
		printf("no %ssnapshots%s%s%s\n", lo.all ? "" : "complete ",
		       lo.cluster ? " of cluster '" : "", lo.cluster ? lo.cluster : "",
		       lo.cluster ? "'" : "");
	} else {
		list_text(arr, idx, shown);
	}
out:
	free(args);
	free(idx);
	catalog_snapshot_free_list(arr, n);
	catalog_close(cat);
	return rc;
}

/* ---- show ------------------------------------------------------------------ */

/* Users' CREATE USER and grants may carry password hashes: they stay in
 * the repository, not on terminals and in tickets. */
static void redact_users(json_t *doc)
{
	json_t *users = json_object_get(doc, "users");
	size_t i;
	json_t *u;

	if (!json_is_array(users))
		return;
	json_array_foreach(users, i, u) {
		json_t *g = json_object_get(u, "grants");

		json_object_set_new(u, "grants_count",
				    json_integer(json_is_array(g) ? (json_int_t)json_array_size(g) : 0));
		json_object_del(u, "create_sql");
		json_object_del(u, "grants");
		json_object_set_new(u, "redacted", json_true());
	}
}

static json_t *catalog_files_json(struct catalog *cat, const char *id)
{
	struct catalog_snapshot_file *f = NULL;
	struct catalog_snapshot_table *t = NULL;
	size_t nf = 0, nt = 0;
	json_t *o = json_object(), *fa = json_array(), *ta = json_array();
	struct err e;

	err_init(&e);
	if (catalog_snapshot_files(cat, id, &f, &nf, &e) == 0)
		for (size_t i = 0; i < nf; i++) {
			json_t *j = json_object();
			char cks[CHECKSUM_HEX_MAX + 16];

			snprintf(cks, sizeof(cks), "%s:%s", f[i].checksum_algo ? f[i].checksum_algo : "",
				 f[i].checksum ? f[i].checksum : "");
			json_object_set_new(j, "path", jstr(f[i].path));
			json_object_set_new(j, "kind", jstr(f[i].kind));
			json_object_set_new(j, "schema", jstr(f[i].schema_name));
			json_object_set_new(j, "table", jstr(f[i].table_name));
			json_object_set_new(j, "bytes_raw", json_integer((json_int_t)f[i].bytes_raw));
			json_object_set_new(j, "bytes_stored", json_integer((json_int_t)f[i].bytes_stored));
			json_object_set_new(j, "checksum_stored", jstr(cks));
			json_array_append_new(fa, j);
		}
	err_init(&e);
	if (catalog_snapshot_tables(cat, id, &t, &nt, &e) == 0)
		for (size_t i = 0; i < nt; i++) {
			json_t *j = json_object();

			json_object_set_new(j, "schema", jstr(t[i].schema_name));
			json_object_set_new(j, "name", jstr(t[i].table_name));
			json_object_set_new(j, "engine", jstr(t[i].engine));
			json_object_set_new(j, "rows", jint_or_null(t[i].n_rows));
			json_object_set_new(j, "checksum", jstr(t[i].checksum));
			json_array_append_new(ta, j);
		}
	catalog_snapshot_file_free_list(f, nf);
	catalog_snapshot_table_free_list(t, nt);
	json_object_set_new(o, "files", fa);
	json_object_set_new(o, "tables", ta);
	return o;
}

static void show_row_text(const struct catalog_snapshot *s)
{
	char a[40], b[40], c[40], d[32];

	printf("snapshot    %s\n", s->id);
	printf("cluster     %s\n", s->cluster);
	printf("status      %s%s%s\n", s->status, s->reason ? ": " : "",
	       s->reason ? s->reason : "");
	if (s->verify_status) {
		fmt_time(s->verified_at, a, sizeof(a));
		printf("verified    %s at %s\n", s->verify_status, a);
	} else {
		printf("verified    never\n");
	}
	fmt_time(s->started_at, a, sizeof(a));
	fmt_time(s->finished_at, b, sizeof(b));
	fmt_duration(row_duration(s), d, sizeof(d));
	printf("started     %s\nfinished    %s\nduration    %s\n", a, b, d);
	if (s->deleted_at > 0) {
		fmt_time(s->deleted_at, c, sizeof(c));
		printf("deleted     %s\n", c);
	}
}

static void show_manifest_text(const struct catalog_snapshot *row,
			       const struct manifest *m)
{
	const struct manifest_position *p = &m->position;
	const struct manifest_settings *st = &m->settings;
	char a[32], b[32], r[32];

	printf("source      %s (%s, %s %s, server_id %" PRId64 ")\n",
	       m->source.address ? m->source.address : "-",
	       m->source.role ? m->source.role : "-",
	       m->source.flavor ? m->source.flavor : "-",
	       m->source.version ? m->source.version : "-", m->source.server_id);
	printf("gtid        %s\n", p->gtid && *p->gtid ? p->gtid : "-");
	if (p->binlog_file)
		printf("binlog      %s:%" PRIu64 "\n", p->binlog_file, p->binlog_pos);
	else
		printf("binlog      - (binary log off on the source)\n");
	if (p->source_binlog_file)
		printf("primary at  %s:%" PRIu64 " (the replica's source position)\n",
		       p->source_binlog_file, p->source_binlog_pos);
	fmt_bytes((double)m->totals.bytes_raw, a, sizeof(a));
	fmt_bytes((double)m->totals.bytes_stored, b, sizeof(b));
	fmt_ratio((double)m->totals.bytes_raw, (double)m->totals.bytes_stored, r, sizeof(r));
	printf("size        %s raw, %s stored (%s), %" PRIu64 " files, %" PRIu64
	       " tables, %" PRIu64 " rows\n", a, b, r, m->totals.files,
	       m->totals.tables, m->totals.rows);
	printf("settings    threads %d, %s level %d, %s, %s, chunk_rows %" PRIu64
	       ", users %s\n", st->threads, st->compression ? st->compression : "-",
	       st->compress_level, st->checksum ? st->checksum : "-",
	       st->encoding ? st->encoding : "-", st->chunk_rows,
	       st->include_users ? "included" : "not included");
	printf("objects     %zu databases, %zu views, %zu triggers, %zu routines, "
	       "%zu events, %zu users\n", m->n_databases, m->n_views, m->n_triggers,
	       m->n_routines, m->n_events, m->n_users);
	printf("repository  %s/%s\n", row->repository ? row->repository : "-",
	       row->manifest_path ? row->manifest_path : "-");
	if (m->n_warnings) {
		printf("\nwarnings:\n");
		for (size_t i = 0; i < m->n_warnings; i++)
			printf("  - %s\n", m->warnings[i]);
	}

	int ws = 6, wn = 5;
	for (size_t i = 0; i < m->n_tables; i++) {
		int l1 = (int)strlen(m->tables[i].schema), l2 = (int)strlen(m->tables[i].name);
		ws = l1 > ws ? l1 : ws;
		wn = l2 > wn ? l2 : wn;
	}
	printf("\ntables:\n  %-*s  %-*s  %-10s  %12s  %s\n", ws, "SCHEMA", wn, "TABLE",
	       "ENGINE", "ROWS", "CHECKSUM");
	for (size_t i = 0; i < m->n_tables; i++) {
		const struct manifest_table *t = &m->tables[i];

		printf("  %-*s  %-*s  %-10s  %12" PRIu64 "  %s\n", ws, t->schema, wn,
		       t->name, t->engine ? t->engine : "-", t->rows,
		       t->checksum ? t->checksum : "-");
	}

	int wp = 4;
	for (size_t i = 0; i < m->n_files; i++) {
		int l = (int)strlen(m->files[i].path);
		wp = l > wp ? l : wp;
	}
	printf("\nfiles:\n  %-*s  %10s  %10s  %6s  %s\n", wp, "PATH", "RAW", "STORED",
	       "RATIO", "CHECKSUM (STORED)");
	for (size_t i = 0; i < m->n_files; i++) {
		const struct manifest_file *f = &m->files[i];

		fmt_bytes((double)f->bytes_raw, a, sizeof(a));
		fmt_bytes((double)f->bytes_stored, b, sizeof(b));
		fmt_ratio((double)f->bytes_raw, (double)f->bytes_stored, r, sizeof(r));
		printf("  %-*s  %10s  %10s  %6s  %s\n", wp, f->path, a, b, r,
		       f->checksum_stored);
	}
}

/* The catalog's files and tables, when the manifest cannot be read. */
static void show_catalog_files_text(struct catalog *cat, const char *id)
{
	struct catalog_snapshot_file *f = NULL;
	size_t nf = 0;
	struct err e;
	char a[32], b[32];

	err_init(&e);
	if (catalog_snapshot_files(cat, id, &f, &nf, &e) != 0 || nf == 0) {
		catalog_snapshot_file_free_list(f, nf);
		return;
	}
	printf("\nfiles (from the catalog):\n");
	for (size_t i = 0; i < nf; i++) {
		fmt_bytes((double)f[i].bytes_raw, a, sizeof(a));
		fmt_bytes((double)f[i].bytes_stored, b, sizeof(b));
		printf("  %s  %s  %s  %s:%s\n", f[i].path, a, b,
		       f[i].checksum_algo ? f[i].checksum_algo : "",
		       f[i].checksum ? f[i].checksum : "");
	}
	catalog_snapshot_file_free_list(f, nf);
}

/* An id the catalog does not know: say so, and whether a rebuild would
 * find it. */
static int show_not_found(struct cli_ctx *ctx, const char *id, struct err *e)
{
	struct storage *st = NULL;
	struct storage_opts so;
	struct err se;
	char *cluster = NULL;

	err_init(&se);
	storage_opts_init(&so);
	so.create_root = false;
	if (snapshot_id_check(id, &se) == 0 &&
	    storage_open(ctx->cfg->repository, &so, &st, &se) == 0 &&
	    snapshot_find_cluster(ctx->cfg, NULL, st, id, &cluster, &se) == 0) {
		err_set(e, ERR_NOT_FOUND,
			"no snapshot '%s' in the catalog, but the repository has '%s/%s': "
			"run 'backupctl catalog rebuild'", id, cluster, id);
	} else {
		err_set(e, ERR_NOT_FOUND, "no snapshot '%s' in the catalog", id);
	}
	free(cluster);
	storage_close(st);
	return ERR_NOT_FOUND;
}

int cli_show(struct cli_ctx *ctx, int argc, char **argv, struct err *e)
{
	struct catalog *cat = NULL;
	struct catalog_snapshot row;
	struct storage *st = NULL;
	struct storage_opts so;
	struct manifest *m = NULL;
	char *json = NULL;
	size_t jn = 0;
	struct err me;
	const char *id;
	bool expect_manifest;
	char **args = NULL;
	int nargs, first, rc;

	catalog_snapshot_init(&row);
	rc = parse(ctx, "show", argc, argv, NULL, NULL, NULL, &args, &nargs, &first, e);
	if (rc)
		return rc;
	if (first >= nargs)
		rc = err_set(e, ERR_USAGE, "show needs a snapshot id (see backupctl list)");
	else if (first + 1 < nargs)
		rc = err_set(e, ERR_USAGE, "unexpected argument '%s'", args[first + 1]);
	else
		rc = open_catalog(ctx, &cat, e);
	if (rc)
		goto out;
	id = args[first];
	err_init(&me);
	rc = catalog_snapshot_get(cat, id, &row, &me);
	if (rc == ERR_NOT_FOUND) {
		rc = show_not_found(ctx, id, e);
		goto out;
	}
	if (rc) {
		*e = me;
		goto out;
	}

	/* Only a complete snapshot must have its manifest; running, failed
	 * and deleted ones show what the catalog remembers. */
	expect_manifest = strcmp(row.status, "complete") == 0;
	err_init(&me);
	storage_opts_init(&so);
	so.create_root = false;
	if (storage_open(ctx->cfg->repository, &so, &st, &me) == 0)
		snapshot_manifest_load(st, row.cluster, id, &m, &json, &jn, &me);

	if (ctx->json) {
		json_t *doc = NULL;

		if (m) {
			json_error_t jerr;

			doc = json_loadb(json, jn, 0, &jerr);
		}
		if (doc) {
			redact_users(doc);
		} else {
			json_t *cf = catalog_files_json(cat, id);

			doc = json_object();
			json_object_set_new(doc, "id", jstr(id));
			json_object_set_new(doc, "cluster", jstr(row.cluster));
			json_object_set_new(doc, "manifest", json_null());
			json_object_set_new(doc, "manifest_error",
					    jstr(err_is_set(&me) ? me.msg : "unreadable"));
			json_object_set(doc, "files", json_object_get(cf, "files"));
			json_object_set(doc, "tables", json_object_get(cf, "tables"));
			json_decref(cf);
		}
		json_object_set_new(doc, "status", jstr(row.status));
		json_object_set_new(doc, "reason", jstr(row.reason));
		json_object_set_new(doc, "verified", jstr(row.verify_status));
		json_object_set_new(doc, "verified_at", jtime(row.verified_at));
		json_object_set_new(doc, "catalog", snapshot_row_json(&row));
		rc = print_json(doc, e);
	} else {
		show_row_text(&row);
		if (m) {
			show_manifest_text(&row, m);
		} else {
			if (row.gtid)
				printf("gtid        %s\n", *row.gtid ? row.gtid : "-");
			printf("manifest    %s: %s\n", expect_manifest ? "MISSING" : "not available",
			       err_is_set(&me) ? me.msg : "unreadable");
			show_catalog_files_text(cat, id);
		}
	}
	if (rc == 0 && !m && expect_manifest) {
		/* The catalog says complete but the snapshot cannot be used. */
		fflush(stdout);
		*e = me;
		rc = me.code ? me.code : ERR_CORRUPT;
	}
out:
	free(args);
	free(json);
	manifest_free(m);
	storage_close(st);
	catalog_snapshot_release(&row);
	catalog_close(cat);
	return rc;
}

/* ---- verify ---------------------------------------------------------------- */

struct verify_cli_opts {
	const char *cluster;
	bool progress;
};

static int verify_opt(int opt, const char *arg, void *u)
{
	struct verify_cli_opts *o = u;

	if (opt == 'C')
		o->cluster = arg;
	else if (opt == 'P')
		o->progress = true;
	else
		return -1;
	return 0;
}

static json_t *verify_json(const struct verify_report *r, const struct err *e)
{
	json_t *o = json_object(), *pa = json_array();

	json_object_set_new(o, "id", jstr(r->id));
	json_object_set_new(o, "cluster", jstr(r->cluster));
	json_object_set_new(o, "ok", json_boolean(r->ok));
	json_object_set_new(o, "files", json_integer((json_int_t)r->files_total));
	json_object_set_new(o, "files_checked", json_integer((json_int_t)r->files_checked));
	json_object_set_new(o, "files_bad", json_integer((json_int_t)r->files_bad));
	json_object_set_new(o, "tables", json_integer((json_int_t)r->tables_total));
	json_object_set_new(o, "tables_bad", json_integer((json_int_t)r->tables_bad));
	json_object_set_new(o, "bytes_read", json_integer((json_int_t)r->bytes_read));
	json_object_set_new(o, "bytes_raw", json_integer((json_int_t)r->bytes_raw));
	json_object_set_new(o, "rows", json_integer((json_int_t)r->rows));
	json_object_set_new(o, "seconds", json_real(r->seconds));
	for (size_t i = 0; i < r->n_problems; i++) {
		json_t *p = json_object();

		json_object_set_new(p, "path", jstr(r->problems[i].path));
		json_object_set_new(p, "table", jstr(r->problems[i].table));
		json_object_set_new(p, "problem", jstr(r->problems[i].what));
		json_array_append_new(pa, p);
	}
	json_object_set_new(o, "problems", pa);
	if (err_is_set(e)) {
		json_t *ej = json_object();

		json_object_set_new(ej, "code", jstr(err_code_name(e->code)));
		json_object_set_new(ej, "message", jstr(e->msg));
		json_object_set_new(o, "error", ej);
	} else {
		json_object_set_new(o, "error", json_null());
	}
	return o;
}

static void verify_print_daemon(struct cli_ctx *ctx, json_t *r, bool ok, void *u)
{
	if (ctx->json)
		cli_print_json(r);
	else if (ok)
		printf("snapshot %s/%s verified by the running daemon: %lld files in %.2f s\n",
		       json_string_value(json_object_get(r, "cluster")) ?: "?",
		       json_string_value(json_object_get(r, "id")) ?: "?",
		       (long long)json_integer_value(json_object_get(r, "files_checked")),
		       json_number_value(json_object_get(r, "seconds")));
}

int cli_verify(struct cli_ctx *ctx, int argc, char **argv, struct err *e)
{
	static const struct option longopts[] = {
		{ "cluster", required_argument, NULL, 'C' },
		{ "progress", no_argument, NULL, 'P' },
		{ NULL, 0, NULL, 0 },
	};
	struct verify_cli_opts vo = { 0 };
	struct verify_opts opts = { .trigger = "manual" };
	struct verify_report rep;
	struct catalog *cat = NULL;
	char **args = NULL;
	int nargs, first, rc;

	verify_report_init(&rep);
	rc = parse(ctx, "verify", argc, argv, longopts, verify_opt, &vo, &args, &nargs,
		   &first, e);
	if (rc)
		return rc;
	if (first >= nargs)
		rc = err_set(e, ERR_USAGE, "verify needs a snapshot id (see backupctl list)");
	else if (first + 1 < nargs)
		rc = err_set(e, ERR_USAGE, "unexpected argument '%s'", args[first + 1]);
	else
		rc = open_catalog(ctx, &cat, e);
	if (rc)
		goto out;
	if (vo.cluster && !config_find_cluster(ctx->cfg, vo.cluster)) {
		rc = err_set(e, ERR_NOT_FOUND, "no cluster '%s' in config '%s'",
			     vo.cluster, ctx->cfg->path);
		goto out;
	}
	opts.progress = vo.progress;
	/* A running daemon runs the verify when the cluster is known (named,
	 * or the config's only one). */
	if (vo.cluster || ctx->cfg->n_clusters == 1) {
		bool handled;
		const char *cl = vo.cluster ? vo.cluster : ctx->cfg->clusters[0].name;
		rc = cli_daemon_job(ctx, json_pack("{s:s, s:s, s:s}", "verb", "verify",
						   "cluster", cl, "id", args[first]),
				    "result", verify_print_daemon, NULL, &handled, e);
		if (handled)
			goto out;
	}
	rc = snapshot_verify_ex(ctx->cfg, cat, vo.cluster, args[first], &opts, &rep, e);
	if (!rep.id)
		goto out;        /* nothing verified: the error says why */
	if (ctx->json) {
		int prc = print_json(verify_json(&rep, rc ? e : NULL), rc ? NULL : e);

		if (rc == 0)
			rc = prc;
		goto out;
	}
	if (rc == 0) {
		char rb[32], wb[32];

		fmt_bytes((double)rep.bytes_read, rb, sizeof(rb));
		fmt_bytes((double)rep.bytes_raw, wb, sizeof(wb));
		printf("snapshot %s/%s verified: %" PRIu64 " files, %" PRIu64 " tables, %"
		       PRIu64 " rows, %s read (%s raw) in %.2f s\n", rep.cluster, rep.id,
		       rep.files_checked, rep.tables_total, rep.rows, rb, wb, rep.seconds);
	} else if (rep.n_problems || rep.files_bad || rep.tables_bad) {
		printf("snapshot %s/%s FAILED verification: %" PRIu64 " of %" PRIu64
		       " files bad, %" PRIu64 " of %" PRIu64 " tables bad\n", rep.cluster,
		       rep.id, rep.files_bad, rep.files_total, rep.tables_bad,
		       rep.tables_total);
		for (size_t i = 0; i < rep.n_problems; i++) {
			const struct verify_problem *p = &rep.problems[i];

			if (p->path)
				printf("  file '%s': %s\n", p->path, p->what);
			else
				printf("  table '%s': %s\n", p->table ? p->table : "?", p->what);
		}
		if (rep.n_problems == VERIFY_PROBLEMS_MAX)
			printf("  (only the first %u problems are listed)\n",
			       VERIFY_PROBLEMS_MAX);
		fflush(stdout);
	}
out:
	free(args);
	verify_report_release(&rep);
	catalog_close(cat);
	return rc;
}

/* ---- catalog rebuild ------------------------------------------------------- */

int cli_catalog(struct cli_ctx *ctx, int argc, char **argv, struct err *e)
{
	struct catalog *cat = NULL;
	struct catalog_rebuild_report rep;
	char repo[1100];
	char **args = NULL;
	int nargs, first, rc;

	catalog_rebuild_report_init(&rep);
	rc = parse(ctx, "catalog", argc, argv, NULL, NULL, NULL, &args, &nargs, &first, e);
	if (rc)
		return rc;
	if (first >= nargs)
		rc = err_set(e, ERR_USAGE, "catalog needs an action: rebuild");
	else if (strcmp(args[first], "rebuild") != 0)
		rc = err_set(e, ERR_USAGE, "unknown catalog action '%s' (expected 'rebuild')",
			     args[first]);
	else if (first + 1 < nargs)
		rc = err_set(e, ERR_USAGE, "unexpected argument '%s'", args[first + 1]);
	else
		rc = open_catalog(ctx, &cat, e);
	if (rc)
		goto out;
	repo_redacted(ctx->cfg->repository, repo, sizeof(repo));
	rc = catalog_rebuild(ctx->cfg, cat, &rep, e);
	if (rc)
		goto out;
	if (ctx->json) {
		json_t *o = json_object(), *items = json_array();

		json_object_set_new(o, "catalog", jstr(ctx->cfg->catalog));
		json_object_set_new(o, "repository", jstr(repo));
		json_object_set_new(o, "clusters", json_integer((json_int_t)rep.clusters));
		json_object_set_new(o, "folders", json_integer((json_int_t)rep.folders));
		json_object_set_new(o, "snapshots", json_integer((json_int_t)rep.snapshots));
		json_object_set_new(o, "created", json_integer((json_int_t)rep.created));
		json_object_set_new(o, "updated", json_integer((json_int_t)rep.updated));
		json_object_set_new(o, "unchanged", json_integer((json_int_t)rep.unchanged));
		json_object_set_new(o, "deleted", json_integer((json_int_t)rep.deleted));
		json_object_set_new(o, "incomplete", json_integer((json_int_t)rep.incomplete));
		json_object_set_new(o, "corrupt", json_integer((json_int_t)rep.corrupt));
		json_object_set_new(o, "skipped", json_integer((json_int_t)rep.skipped));
		json_object_set_new(o, "seconds", json_real(rep.seconds));
		for (size_t i = 0; i < rep.n_items; i++) {
			json_t *it = json_object();

			json_object_set_new(it, "action",
					    jstr(catalog_rebuild_action_name(rep.items[i].action)));
			json_object_set_new(it, "cluster", jstr(rep.items[i].cluster));
			json_object_set_new(it, "id", jstr(rep.items[i].id));
			json_object_set_new(it, "detail", jstr(rep.items[i].detail));
			json_array_append_new(items, it);
		}
		json_object_set_new(o, "items", items);
		rc = print_json(o, e);
	} else {
		printf("catalog '%s' rebuilt from '%s' in %.2f s\n", ctx->cfg->catalog,
		       repo, rep.seconds);
		printf("  %zu cluster folder%s, %zu snapshot folder%s, %zu snapshot%s with a valid manifest\n",
		       rep.clusters, rep.clusters == 1 ? "" : "s", rep.folders,
		       rep.folders == 1 ? "" : "s", rep.snapshots,
		       rep.snapshots == 1 ? "" : "s");
		printf("  created %zu, updated %zu, unchanged %zu, marked deleted %zu, "
		       "incomplete %zu, corrupt %zu, skipped %zu\n", rep.created,
		       rep.updated, rep.unchanged, rep.deleted, rep.incomplete,
		       rep.corrupt, rep.skipped);
		for (size_t i = 0; i < rep.n_items; i++)
			printf("  %-10s  %s/%s: %s\n",
			       catalog_rebuild_action_name(rep.items[i].action),
			       rep.items[i].cluster, rep.items[i].id, rep.items[i].detail);
	}
out:
	free(args);
	catalog_rebuild_report_release(&rep);
	catalog_close(cat);
	return rc;
}
