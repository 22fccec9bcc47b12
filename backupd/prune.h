/* Retention: which snapshots keep_last / keep_days let go, and their
 * removal from the repository and the catalog. Used by `backupctl prune`
 * and the daemon's prune schedule. */
#ifndef BACKUPD_PRUNE_H
#define BACKUPD_PRUNE_H

#include <stdbool.h>
#include <stddef.h>

#include "catalog.h"
#include "config.h"
#include "err.h"

struct prune_item {
	char *id;
	double started_at;
	bool delete;
	const char *why;           /* static text: why kept or deleted */
};

struct prune_report {
	char *cluster;
	struct prune_item *items;  /* complete snapshots, newest first */
	size_t n_items;
	size_t n_deleted;          /* deleted (or, dry run, to delete) */
	size_t n_kept;
};

/* Decides for every complete snapshot of the cluster; with dry_run it
 * changes nothing. Removal: manifest first (the snapshot stops existing),
 * then its files, then the catalog row becomes "deleted" with a prune.done
 * event in the same transaction. Never deletes the latest verified
 * snapshot or one a running restore, rebuild or drill uses. */
int prune_cluster(const struct config *cfg, const struct cfg_cluster *cl,
		  struct catalog *cat, bool dry_run, double now,
		  struct prune_report *rep, struct err *e);
void prune_report_release(struct prune_report *rep);

#endif
