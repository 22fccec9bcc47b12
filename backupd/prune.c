/* Retention (keep_last / keep_days) with the rules a DBA expects: nothing
 * is deleted when no rule is configured, the newest verified snapshot and
 * snapshots in use always stay, and a removal deletes the manifest first so
 * an interrupted prune leaves no half snapshot. Runs on the catalog's
 * owner thread. */
#include "prune.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "log.h"
#include "mem.h"
#include "storage.h"

#define MOD "prune"

/* Is the snapshot the source of a running restore, rebuild or drill? */
static int prune_in_use(struct catalog *cat, const char *id, bool *in_use,
			struct err *e)
{
	sqlite3_stmt *st = NULL;
	int rc;

	*in_use = false;
	if (sqlite3_prepare_v2(catalog_sqlite(cat),
			       "SELECT 1 FROM restores WHERE snapshot_id = ?1 AND result = 'running' "
			       "UNION ALL SELECT 1 FROM jobs WHERE status = 'running' AND target = ?1 "
			       "AND kind IN ('restore', 'rebuild', 'drill', 'verify') LIMIT 1",
			       -1, &st, NULL) != SQLITE_OK)
		return catalog_error(cat, "unable to check snapshot use", e);
	sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*in_use = true;
	else if (rc != SQLITE_DONE) {
		sqlite3_finalize(st);
		return catalog_error(cat, "unable to check snapshot use", e);
	}
	sqlite3_finalize(st);
	return 0;
}

static int prune_remove(struct storage *st, const char *cluster, const char *id,
			struct err *e)
{
	char dir[600], man[700];
	struct storage_stat sst;
	int rc;

	if (snprintf(dir, sizeof(dir), "%s/%s", cluster, id) >= (int)sizeof(dir))
		return err_set(e, ERR_INTERNAL, "snapshot path too long");
	snprintf(man, sizeof(man), "%s/manifest.json", dir);
	rc = storage_stat(st, man, &sst, e);
	if (rc == 0 && sst.exists)
		rc = storage_remove(st, man, e);
	if (rc == 0)
		rc = storage_stat(st, dir, &sst, e);
	if (rc == 0 && sst.exists)
		rc = storage_remove_tree(st, dir, e);
	return rc;
}

void prune_report_release(struct prune_report *rep)
{
	if (!rep)
		return;
	for (size_t i = 0; i < rep->n_items; i++)
		free(rep->items[i].id);
	free(rep->items);
	free(rep->cluster);
	memset(rep, 0, sizeof(*rep));
}

int prune_cluster(const struct config *cfg, const struct cfg_cluster *cl,
		  struct catalog *cat, bool dry_run, double now,
		  struct prune_report *rep, struct err *e)
{
	struct catalog_snapshot *arr = NULL;
	struct storage *st = NULL;
	size_t n = 0;
	int latest_verified = -1;
	int rc;

	memset(rep, 0, sizeof(*rep));
	rep->cluster = xstrdup(cl->name);
	struct storage_opts so;
	storage_opts_init(&so);
	so.create_root = false;
	rc = storage_open(cfg->repository, &so, &st, e);
	if (rc == 0)
		rc = catalog_snapshot_list(cat, cl->name, &arr, &n, e);
	if (rc) {
		storage_close(st);
		return rc;
	}
	/* Only this repository's snapshots: a catalog that once indexed
	 * another repository must not have those counted (or deleted here). */
	const char *repo = storage_url_redacted(st);
	/* Newest first: the list is oldest first. */
	rep->items = xcalloc(n ? n : 1, sizeof(*rep->items));
	for (size_t k = 0; k < n; k++) {
		struct catalog_snapshot *s = &arr[n - 1 - k];
		if (strcmp(s->status, "complete") != 0 ||
		    (s->repository && strcmp(s->repository, repo) != 0))
			continue;
		struct prune_item *it = &rep->items[rep->n_items++];
		it->id = xstrdup(s->id);
		it->started_at = s->started_at;
		if (latest_verified < 0 && s->verify_status &&
		    strcmp(s->verify_status, "ok") == 0)
			latest_verified = (int)(rep->n_items - 1);
	}

	size_t rank = 0;
	for (size_t i = 0; i < rep->n_items && rc == 0; i++) {
		struct prune_item *it = &rep->items[i];
		bool in_use = false;
		rank++;
		rc = prune_in_use(cat, it->id, &in_use, e);
		if (rc)
			break;
		if (cl->keep_last <= 0 && cl->keep_days <= 0)
			it->why = "no retention configured (keep_last = 0, keep_days = 0)";
		else if (cl->keep_last > 0 && rank <= (size_t)cl->keep_last)
			it->why = "within keep_last";
		else if (cl->keep_days > 0 &&
			 now - it->started_at < (double)cl->keep_days * 86400.0)
			it->why = "within keep_days";
		else if ((int)i == latest_verified)
			it->why = "the latest verified snapshot";
		else if (in_use)
			it->why = "in use by a running restore, rebuild, drill or verify";
		else {
			it->delete = true;
			it->why = cl->keep_days > 0 && cl->keep_last > 0
					  ? "beyond keep_last and older than keep_days"
				  : cl->keep_last > 0 ? "beyond keep_last"
						      : "older than keep_days";
		}
		if (it->delete)
			rep->n_deleted++;
		else
			rep->n_kept++;
	}
	catalog_snapshot_free_list(arr, n);
	if (rc || dry_run || rep->n_deleted == 0) {
		storage_close(st);
		return rc;
	}

	size_t done = 0;
	struct err rerr;
	err_init(&rerr);
	for (size_t i = 0; i < rep->n_items && rc == 0; i++) {
		struct prune_item *it = &rep->items[i];
		if (!it->delete)
			continue;
		if (prune_remove(st, cl->name, it->id, &rerr) != 0) {
			/* Keep what was removed so far in the catalog below. */
			err_prefix(&rerr, "pruning snapshot '%s': ", it->id);
			it->delete = false;
			it->why = "removal failed";
			break;
		}
		done++;
		log_info(MOD, "deleted snapshot %s of '%s' (%s)", it->id, cl->name, it->why);
	}
	storage_close(st);
	if (rc == 0) {
		/* The rows and the event in one transaction: Slack hears about
		 * exactly what the catalog says was pruned. */
		char payload[256];
		snprintf(payload, sizeof(payload),
			 "{\"deleted\":%zu,\"kept\":%zu,\"failed\":%s}", done,
			 rep->n_items - done, err_is_set(&rerr) ? "true" : "false");
		rc = catalog_begin(cat, e);
		for (size_t i = 0; i < rep->n_items && rc == 0; i++)
			if (rep->items[i].delete)
				rc = catalog_snapshot_mark_deleted(cat, rep->items[i].id,
								   rep->items[i].why, e);
		if (rc == 0)
			rc = catalog_event_add(cat, cl->name, NULL,
					       err_is_set(&rerr) ? "prune.failed" : "prune.done",
					       err_is_set(&rerr) ? "error" : "info", payload, NULL, e);
		if (rc == 0)
			rc = catalog_commit(cat, e);
		else
			catalog_rollback(cat, NULL);
	}
	if (rc == 0 && err_is_set(&rerr)) {
		*e = rerr;
		rc = rerr.code;
	}
	rep->n_deleted = done;
	return rc;
}
