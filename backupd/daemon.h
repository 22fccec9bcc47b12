/* backupd's long-running mode: schedules, lag monitor, Slack sender,
 * metrics, control socket, retention, daily digest, auto-rebuild. */
#ifndef BACKUPD_DAEMON_H
#define BACKUPD_DAEMON_H

#include "err.h"

/* Runs until SIGTERM/SIGINT. SIGHUP reloads the config (an invalid one is
 * rejected, reported and the old one kept). pid_file may be NULL (then the
 * config's pid_file, if any). */
int daemon_run(const char *config_path, const char *pid_file, struct err *e);

#endif
