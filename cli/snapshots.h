/* backupctl verbs over the catalog and the repository's snapshots: list,
 * show, verify and catalog rebuild (cli/snapshots.c). */
#ifndef BACKUPD_CLI_SNAPSHOTS_H
#define BACKUPD_CLI_SNAPSHOTS_H

#include "cli.h"

/* The cli_verb help texts (options of each verb). */
extern const char cli_list_help[];
extern const char cli_show_help[];
extern const char cli_verify_help[];
extern const char cli_catalog_help[];

int cli_list(struct cli_ctx *ctx, int argc, char **argv, struct err *e);
int cli_show(struct cli_ctx *ctx, int argc, char **argv, struct err *e);
int cli_verify(struct cli_ctx *ctx, int argc, char **argv, struct err *e);
int cli_catalog(struct cli_ctx *ctx, int argc, char **argv, struct err *e);

#endif
