/* The daemon's job runner: each job (snapshot, verify, prune, drill) runs
 * on its own thread with its own catalog connection, against a reference-
 * counted config so a SIGHUP reload never pulls a config from under a
 * running job. The catalog's one-running-job-per-kind-per-cluster index is
 * the lock; the runner also refuses overlap up front so a schedule's
 * overlapping run is "skipped", not "failed". */
#ifndef BACKUPD_JOBS_H
#define BACKUPD_JOBS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "err.h"

struct cfg_ref;  /* a config shared by the daemon and its jobs */
struct cfg_ref *cfg_ref_new(struct config *cfg);      /* takes ownership */
struct cfg_ref *cfg_ref_get(struct cfg_ref *r);       /* +1 */
void cfg_ref_put(struct cfg_ref *r);                  /* -1, frees at 0; NULL ok */
const struct config *cfg_ref_config(const struct cfg_ref *r);

/* Not a schedulable job: the daemon starts it when a replica of a
 * `rebuild = auto` cluster breaks. */
#define JOB_REBUILD ((enum cfg_job)100)
/* cfg_job_name plus "rebuild". */
const char *jobs_kind_name(enum cfg_job kind);

struct job_req {
	enum cfg_job kind;
	char server[300];         /* rebuild: the replica */
	char cluster[128];
	const char *trigger;      /* manual|schedule|daemon (static strings) */
	char schedule[128];       /* "" when not fired by a schedule */
	char snapshot_id[64];     /* verify: this one ("" = latest unverified) */
	char from[300];           /* snapshot: --from, "" = policy */
	bool dry_run;             /* prune */
};

struct jobs;
struct jobs *jobs_new(void);
/* Starts a job thread. ERR_BUSY when a job of that kind already runs for
 * the cluster in this daemon. *id identifies it for jobs_wait. */
int jobs_start(struct jobs *j, struct cfg_ref *cfg, const struct job_req *r,
	       uint64_t *id, struct err *e);
bool jobs_is_running(struct jobs *j, enum cfg_job kind, const char *cluster);
/* Blocks until the job ends; *result is its JSON summary (caller
 * decref's) and *job_err its error. The job is forgotten afterwards. */
int jobs_wait(struct jobs *j, uint64_t id, json_t **result, struct err *job_err);
/* Finished jobs nobody waits for are reaped here; returns how many. */
int jobs_reap(struct jobs *j);
/* Running jobs as a JSON array (kind, cluster, trigger, started_at). */
json_t *jobs_list(struct jobs *j);
/* Asks every running job to stop (snapshots abort cleanly). */
void jobs_abort_all(struct jobs *j);
/* Waits for every job thread, then frees the runner. */
void jobs_free(struct jobs *j);

#endif
