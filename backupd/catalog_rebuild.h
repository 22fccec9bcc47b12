/* Catalog rebuild: re-index the repository. The repository is the truth
 * (a snapshot exists iff <cluster>/<id>/manifest.json parses); the catalog's
 * snapshot rows, files and tables are brought in line with it. Used by
 * `backupctl catalog rebuild` after a lost or damaged catalog, or after
 * snapshots were copied into the repository by hand. */
#ifndef BACKUPD_CATALOG_REBUILD_H
#define BACKUPD_CATALOG_REBUILD_H

#include <stddef.h>
#include <stdint.h>

#include "catalog.h"
#include "config.h"
#include "err.h"

/* Most items a report lists; more are counted but not listed. */
#define CATALOG_REBUILD_ITEMS_MAX 100000

enum catalog_rebuild_action {
	CATALOG_REBUILD_CREATED = 0,   /* no row: created from the manifest */
	CATALOG_REBUILD_UPDATED,       /* row differed (or was failed, aborted,
					  deleted, or left running by a dead
					  job): re-created from the manifest */
	CATALOG_REBUILD_DELETED,       /* complete row, folder or manifest gone:
					  marked deleted */
	CATALOG_REBUILD_INCOMPLETE,    /* folder without manifest: not a snapshot */
	CATALOG_REBUILD_CORRUPT,       /* manifest unreadable or invalid: skipped */
	CATALOG_REBUILD_SKIPPED,       /* left alone (a snapshot being written,
					  an id found in two clusters) */
};

/* "created", "updated", "deleted", "incomplete", "corrupt", "skipped". */
const char *catalog_rebuild_action_name(enum catalog_rebuild_action a);

/* Strings owned by the report. */
struct catalog_rebuild_item {
	enum catalog_rebuild_action action;
	char *cluster;
	char *id;
	char *detail;        /* one line: why */
};

struct catalog_rebuild_report {
	size_t clusters;     /* cluster folders scanned */
	size_t folders;      /* snapshot folders seen */
	size_t snapshots;    /* valid manifests found */
	size_t created, updated, unchanged, deleted, incomplete, corrupt,
	       skipped;
	double seconds;
	/* Everything but unchanged snapshots, in scan order (deletions last);
	 * at most CATALOG_REBUILD_ITEMS_MAX. */
	struct catalog_rebuild_item *items;
	size_t n_items;
	size_t cap_items;    /* internal */
};

void catalog_rebuild_report_init(struct catalog_rebuild_report *r);
void catalog_rebuild_report_release(struct catalog_rebuild_report *r);

/* Scans every cluster folder of cfg->repository and makes the catalog's
 * snapshot rows match: a snapshot with a valid manifest gets a complete row
 * with every field, file and table from the manifest (an identical row is
 * left as it is, keeping its verify status); a complete row whose manifest
 * is gone is marked deleted. Rows of failed or aborted snapshots whose
 * folder is gone stay as they are (history of attempts, never in the
 * repository), and so do rows of snapshots being written now. Corrupt
 * manifests are reported and skipped. All changes are one transaction:
 * on error nothing changes. Running it twice changes nothing the second
 * time. Reaps jobs left running by dead processes of this host first. */
int catalog_rebuild(const struct config *cfg, struct catalog *cat,
		    struct catalog_rebuild_report *rep, struct err *e);

#endif
