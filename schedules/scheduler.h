/* Scheduling state, pure: which scheduled jobs are due at "now", which are
 * skipped and why. No threads, no clock, no I/O besides loading a time zone
 * file the first time a zone is named (in sched_add / sched_reload); the
 * daemon passes the time in and acts on the decisions, tests do the same.
 *
 * Rules (issue #5):
 *   - at most one job of a kind per cluster at a time: a scheduled run
 *     whose (cluster, job) slot is busy is skipped and reported
 *     (SCHED_OVERLAP); runs started by hand take the slot with
 *     sched_job_begin, so they block scheduled ones and the reverse;
 *   - missed runs: when a schedule's next fire time after its last recorded
 *     fire passed while the daemon was down, missed_runs = run_once runs it
 *     once at start (however many were missed), skip reports it once and
 *     waits for the next regular time;
 *   - a late sched_due call (suspend, busy loop) never runs a schedule more
 *     than once: the next fire time is computed from "now";
 *   - @every schedules stay on the grid last_fire + k * interval.
 *
 * Threading: a struct sched belongs to one thread (the daemon's loop). It
 * may call cron_zone_get, which is thread-safe. */
#ifndef BACKUPD_SCHEDULER_H
#define BACKUPD_SCHEDULER_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "config.h"
#include "cron.h"
#include "err.h"

#define SCHED_NEVER ((time_t)-1)   /* no fire recorded / none due */
#define SCHED_MISSED_CAP 1000      /* missed runs are counted up to this */
#define SCHED_MAX_SLOTS 1024       /* busy (cluster, job) pairs at once */

/* One configured schedule. Read-only for callers (sched_entry_at). */
struct sched_entry {
	char *name;
	char *cluster;
	enum cfg_job job;
	enum cfg_missed_runs missed_runs;
	char *tz;                      /* NULL: UTC */
	struct cron cron;
	const struct cron_zone *zone;  /* from the cron zone cache */
	time_t last_fire;              /* fire time of the last run; SCHED_NEVER */
	time_t next_fire;              /* SCHED_NEVER: disabled after an error */
	unsigned missed;               /* > 0: missed while down, not reported yet */
	time_t missed_first;           /* the first fire time missed */
	time_t missed_last;            /* the last one (before the start) */
};

/* A (cluster, job) pair that is running. */
struct sched_slot {
	char *cluster;
	enum cfg_job job;
	time_t since;
	char *by;                      /* schedule name, NULL: started by hand */
};

struct sched {
	struct sched_entry *entries;
	size_t n;
	struct sched_slot *slots;
	size_t n_slots;
};

enum sched_action {
	SCHED_RUN,   /* start the job now; its slot is marked busy */
	SCHED_SKIP,  /* do not start it; report why */
};

enum sched_reason {
	SCHED_REGULAR,      /* RUN: its fire time came */
	SCHED_MISSED_RUN,   /* RUN: missed while down, missed_runs = run_once */
	SCHED_MISSED_SKIP,  /* SKIP: missed while down, missed_runs = skip */
	SCHED_OVERLAP,      /* SKIP: the same job runs on that cluster */
};

struct sched_decision {
	size_t index;            /* entry, for sched_entry_at */
	const char *schedule;    /* borrowed until sched_reload/sched_release */
	const char *cluster;     /* likewise */
	enum cfg_job job;
	enum sched_action action;
	enum sched_reason reason;
	time_t scheduled;        /* the fire time this decision stands for; for
				    MISSED_* the LAST missed one, so storing it
				    as the schedule's last fire (and passing it
				    to sched_add after a restart) does not make
				    the same downtime count as missed again */
	unsigned missed;         /* MISSED_*: fire times missed (capped) */
	time_t missed_first;     /* MISSED_*: the first one */
	time_t busy_since;       /* OVERLAP: when the running job started */
	const char *busy_by;     /* OVERLAP: its schedule, NULL if by hand;
				    borrowed until that job's sched_job_end */
	time_t next;             /* the entry's next fire time now; SCHED_NEVER
				    if none could be computed (then msg says
				    why and the entry is disabled) */
	char msg[256];           /* one line for logs and reports */
};

void sched_init(struct sched *s);
void sched_release(struct sched *s);

/* Adds a schedule at daemon start. last_fire is the `scheduled` time of
 * its last decision (run or skip) from the catalog, or the start time of
 * its last run, SCHED_NEVER if none; a last_fire in the future (clock
 * stepped back) counts as now. Computes the first fire
 * time; one that passed before `now` is a missed run (see the rules).
 * ERR_CONFIG for a bad cron expression or time zone, ERR_CONFIG also for
 * a duplicate name. */
int sched_add(struct sched *s, const struct cfg_schedule *cs,
	      time_t last_fire, time_t now, struct err *e);

/* Replaces the schedules after a config reload, all or nothing: on error s
 * is unchanged. An entry whose name, cluster, job, cron, timezone are
 * unchanged keeps its state; a changed or new one starts from now (its
 * last_fire kept by name), with no missed-run handling since the daemon
 * was up. Busy slots are kept. */
int sched_reload(struct sched *s, const struct cfg_schedule *cs, size_t n,
		 time_t now, struct err *e);

/* The decisions due at `now`, at most max, in entry order. A RUN marks its
 * (cluster, job) slot busy: call sched_job_end when the job ends or fails
 * to start. Every decision advances its entry, so each is returned once;
 * entries left over when out is full stay due for the next call. Returns
 * how many were written. */
size_t sched_due(struct sched *s, time_t now, struct sched_decision *out,
		 size_t max);

/* A job started outside the schedules (backupctl via the control socket):
 * takes the slot, or ERR_BUSY naming the running job. */
int sched_job_begin(struct sched *s, const char *cluster, enum cfg_job job,
		    time_t now, struct err *e);
/* Frees the slot (no-op if free). */
void sched_job_end(struct sched *s, const char *cluster, enum cfg_job job);
bool sched_job_running(const struct sched *s, const char *cluster,
		       enum cfg_job job, time_t *since);

/* The earliest next fire time of all entries (SCHED_NEVER if none): sleep
 * until then (or a control socket event), then call sched_due. An entry
 * with a missed run to report counts as due at its first missed time. */
time_t sched_next_wakeup(const struct sched *s);

size_t sched_count(const struct sched *s);
const struct sched_entry *sched_entry_at(const struct sched *s, size_t i);
/* NULL if no such schedule. */
const struct sched_entry *sched_find(const struct sched *s, const char *name);
/* "regular", "missed_run", "missed_skip", "overlap". */
const char *sched_reason_name(enum sched_reason r);

#endif
