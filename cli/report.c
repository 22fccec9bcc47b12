/* backupctl report --html FILE: writes the catalog's self-contained HTML
 * report (lib/report_html.h) to FILE, atomically (FILE.tmp, fsync, rename),
 * so a browser or a web server never sees half a page. "-" writes to
 * stdout. Prints the file and its figures (one JSON document with --json).
 * Single-threaded. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "buf.h"
#include "catalog.h"
#include "cli.h"
#include "drills.h"
#include "report_html.h"

const char cli_report_help[] =
	"      --html FILE     write the HTML report to FILE ('-': stdout)\n"
	"      --cluster C     only this cluster (default: every cluster of the config)\n"
	"      --days N        snapshots, drills and failures of the last N days (default 30)\n"
	"      --lag-hours N   replication lag of the last N hours (default 24)\n";

struct report_cli_opts {
	const char *html;
	const char *cluster;
	long days;
	long lag_hours;
};

static int report_opt(int opt, const char *arg, void *u)
{
	struct report_cli_opts *o = u;

	switch (opt) {
	case 'H': o->html = arg; return 0;
	case 'C': o->cluster = arg; return 0;
	case 'D': return str_to_long(arg, 1, 3650, &o->days);
	case 'L': return str_to_long(arg, 1, 24 * 31, &o->lag_hours);
	default: return -1;
	}
}

static int write_all(int fd, const char *p, size_t n, const char *path,
		     struct err *e)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return err_set_errno(e, ERR_IO, errno, "unable to write '%s'", path);
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* path.tmp -> write -> fsync -> rename: readers see the old page or the
 * new one. Mode 0644: the page holds no secret (addresses and figures). */
static int write_atomic(const char *path, const struct buf *b, struct err *e)
{
	struct buf tmp;
	int fd, rc;

	buf_init(&tmp, 8192);
	if ((rc = buf_printf(&tmp, e, "%s.tmp", path))) {
		buf_release(&tmp);
		return rc;
	}
	fd = open(tmp.data, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		rc = err_set_errno(e, ERR_IO, errno, "unable to create '%s'", tmp.data);
		buf_release(&tmp);
		return rc;
	}
	rc = write_all(fd, b->data, b->len, tmp.data, e);
	if (rc == 0 && fsync(fd) != 0)
		rc = err_set_errno(e, ERR_IO, errno, "unable to sync '%s'", tmp.data);
	if (close(fd) != 0 && rc == 0)
		rc = err_set_errno(e, ERR_IO, errno, "unable to close '%s'", tmp.data);
	if (rc == 0 && rename(tmp.data, path) != 0)
		rc = err_set_errno(e, ERR_IO, errno, "unable to rename '%s' to '%s'",
				   tmp.data, path);
	if (rc)
		unlink(tmp.data);
	buf_release(&tmp);
	return rc;
}

static size_t lag_points(const struct report_data *d)
{
	size_t n = 0;

	for (size_t i = 0; i < d->n_series; i++)
		n += d->series[i].n_points;
	return n;
}

int cli_report(struct cli_ctx *ctx, int argc, char **argv, struct err *e)
{
	static const struct option longopts[] = {
		{ "html", required_argument, NULL, 'H' },
		{ "cluster", required_argument, NULL, 'C' },
		{ "days", required_argument, NULL, 'D' },
		{ "lag-hours", required_argument, NULL, 'L' },
		{ NULL, 0, NULL, 0 },
	};
	struct report_cli_opts co = { 0 };
	struct report_opts ro;
	struct report_data d;
	struct catalog *cat = NULL;
	struct buf page;
	bool to_stdout;
	int first, rc;

	rc = cli_parse(ctx, cli_find_verb("report"), argc, argv, NULL, longopts,
		       report_opt, &co, &first, e);
	if (rc)
		return rc;
	if (first < argc)
		return err_set(e, ERR_USAGE, "unexpected argument '%s'", argv[first]);
	if (!co.html || !*co.html)
		return err_set(e, ERR_USAGE, "report needs --html FILE (the only format)");
	to_stdout = strcmp(co.html, "-") == 0;
	if (to_stdout && ctx->json)
		return err_set(e, ERR_USAGE, "--json and --html - both write to stdout: pick one");
	rc = cli_load_config(ctx, e);
	if (rc == 0)
		rc = catalog_open(ctx->cfg->catalog, &cat, e);
	if (rc)
		return rc;

	memset(&ro, 0, sizeof(ro));
	ro.cluster = co.cluster;
	ro.days = (int)co.days;
	ro.lag_hours = (int)co.lag_hours;
	buf_init(&page, REPORT_HTML_MAX);
	rc = report_load(cat, ctx->cfg, &ro, &d, e);
	catalog_close(cat);
	if (rc == 0)
		rc = report_render_html(&d, &page, e);
	if (rc == 0) {
		if (to_stdout) {
			if (fwrite(page.data, 1, page.len, stdout) != page.len || fflush(stdout) != 0)
				rc = err_set(e, ERR_IO, "unable to write the report to stdout");
		} else {
			rc = write_atomic(co.html, &page, e);
		}
	}
	if (rc == 0 && !to_stdout) {
		if (ctx->json) {
			json_t *j = json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
					      "file", co.html, "bytes", (json_int_t)page.len,
					      "clusters", (json_int_t)d.n_clusters,
					      "snapshots", (json_int_t)d.n_snapshots,
					      "drills", (json_int_t)d.n_drills,
					      "lag_series", (json_int_t)d.n_series,
					      "lag_points", (json_int_t)lag_points(&d),
					      "failures", (json_int_t)d.n_failures);

			if (json_dumpf(j, stdout, JSON_INDENT(2)) != 0)
				rc = err_set(e, ERR_IO, "unable to write the JSON output");
			else
				fputc('\n', stdout);
			json_decref(j);
		} else {
			printf("%s\n", co.html);
			fprintf(stderr,
				"report written to %s (%zu bytes): %zu cluster%s, %zu snapshots, %zu drills, %zu lag points, %zu failures\n",
				co.html, page.len, d.n_clusters, d.n_clusters == 1 ? "" : "s",
				d.n_snapshots, d.n_drills, lag_points(&d), d.n_failures);
		}
	}
	buf_release(&page);
	report_data_release(&d);
	return rc;
}
