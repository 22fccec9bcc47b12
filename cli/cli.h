/* backupctl internals shared by the verb files: the invocation context and
 * the verb table. Each verb lives in its own cli/<verb>.c. */
#ifndef BACKUPD_CLI_H
#define BACKUPD_CLI_H

#include <stdbool.h>
#include <stdio.h>

#include "config.h"
#include "err.h"

struct cli_ctx {
	const char *config_path;   /* -c PATH, or NULL: resolved by config */
	bool json;                 /* --json: one JSON document on stdout */
	struct config *cfg;        /* loaded on demand by cli_load_config */
	const char *argv0;
};

typedef int (*cli_verb_fn)(struct cli_ctx *ctx, int argc, char **argv,
			   struct err *e);

struct cli_verb {
	const char *name;
	const char *args;          /* usage after the verb name */
	const char *summary;       /* one line for --help */
	const char *help;          /* options, printed by VERB --help */
	cli_verb_fn fn;            /* NULL: not landed yet */
	const char *pending;       /* for fn == NULL: which capability brings it */
};

extern const struct cli_verb cli_verbs[];
extern const unsigned cli_n_verbs;

/* Loads ctx->cfg once (from -c, $BACKUPD_CONFIG or the default path). */
int cli_load_config(struct cli_ctx *ctx, struct err *e);

/* Parses the options every verb accepts (-c, --json, --help) plus the
 * verb's own; see cli/main.c. Returns 1 when --help was printed. */
struct option;
int cli_parse(struct cli_ctx *ctx, const struct cli_verb *v, int argc,
	      char **argv, const char *shortopts, const struct option *longopts,
	      int (*on_opt)(int opt, const char *arg, void *u), void *u,
	      int *optind_out, struct err *e);

void cli_verb_usage(const struct cli_verb *v, FILE *out);

/* Sends req (consumed) to a running daemon's control socket. ERR_NOT_FOUND
 * when none runs (the caller then works standalone; BACKUPCTL_NO_DAEMON
 * forces that); else the daemon's reply (caller decref's) and its error. */
#include <jansson.h>
int cli_daemon_call(struct cli_ctx *ctx, json_t *req, json_t **reply,
		    struct err *e);

/* Hands a job to a running daemon: *handled false when none runs (e is
 * left clear; the caller runs the job itself). Otherwise returns the job's
 * status, after print got the reply's `key` object (when there is one)
 * and whether the job succeeded. */
typedef void (*cli_job_print_fn)(struct cli_ctx *ctx, json_t *r, bool ok, void *u);
int cli_daemon_job(struct cli_ctx *ctx, json_t *req, const char *key,
		   cli_job_print_fn print, void *u, bool *handled, struct err *e);
/* One JSON document on stdout. */
void cli_print_json(json_t *j);

/* The verb named name (it must exist). */
const struct cli_verb *cli_find_verb(const char *name);
/* The cluster named by --cluster, or the config's only cluster. */
int cli_pick_cluster(struct cli_ctx *ctx, const char *name,
		     const struct cfg_cluster **out, struct err *e);

int cli_status(struct cli_ctx *ctx, int argc, char **argv, struct err *e);
int cli_snapshot(struct cli_ctx *ctx, int argc, char **argv, struct err *e);
int cli_prune(struct cli_ctx *ctx, int argc, char **argv, struct err *e);
int cli_lag(struct cli_ctx *ctx, int argc, char **argv, struct err *e);
extern const char cli_lag_help[];
int cli_cutover(struct cli_ctx *ctx, int argc, char **argv, struct err *e);
int cli_canary(struct cli_ctx *ctx, int argc, char **argv, struct err *e);
extern const char cli_cutover_help[];
extern const char cli_canary_help[];
int cli_restore(struct cli_ctx *ctx, int argc, char **argv, struct err *e);
int cli_rebuild(struct cli_ctx *ctx, int argc, char **argv, struct err *e);
extern const char cli_restore_help[];
extern const char cli_rebuild_help[];
int cli_config(struct cli_ctx *ctx, int argc, char **argv, struct err *e);

#endif
