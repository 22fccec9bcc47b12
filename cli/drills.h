/* backupctl verbs of the DR drill capability: drill, drills (cli/drill.c)
 * and report (cli/report.c). */
#ifndef BACKUPD_CLI_DRILLS_H
#define BACKUPD_CLI_DRILLS_H

#include "cli.h"

/* The cli_verb help texts (options of each verb). */
extern const char cli_drill_help[];
extern const char cli_drills_help[];
extern const char cli_report_help[];

int cli_drill(struct cli_ctx *ctx, int argc, char **argv, struct err *e);
int cli_drills(struct cli_ctx *ctx, int argc, char **argv, struct err *e);
int cli_report(struct cli_ctx *ctx, int argc, char **argv, struct err *e);

#endif
