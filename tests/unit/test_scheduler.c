/* Unit tests for the pure scheduler: due runs, the one-job-of-a-kind-per-
 * cluster overlap rule, run_once versus skip after downtime, late checks,
 * @every grids, reloads, time zones and error messages. Times are UTC
 * epochs; the daemon's clock is simulated by passing `now`. */
#include <glob.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "scheduler.h"

#define T0 1704067200  /* 2024-01-01T00:00:00Z */
#define H 3600
#define D 86400

static struct cfg_schedule mk(const char *name, const char *cluster,
			      enum cfg_job job, const char *cron,
			      const char *tz, enum cfg_missed_runs missed)
{
	struct cfg_schedule cs;
	memset(&cs, 0, sizeof(cs));
	cs.name = (char *)name;
	cs.cluster = (char *)cluster;
	cs.job = job;
	cs.cron = (char *)cron;
	cs.timezone = (char *)tz;
	cs.missed_runs = missed;
	return cs;
}

static void add_ok(struct sched *s, struct cfg_schedule cs, time_t last,
		   time_t now)
{
	struct err e;
	err_init(&e);
	if (sched_add(s, &cs, last, now, &e) != 0)
		fail_msg("sched_add(%s): %s", cs.name, e.msg);
}

static void test_due_regular(void **state)
{
	struct sched s;
	struct sched_decision d[8];

	sched_init(&s);
	add_ok(&s, mk("nightly", "shop", CFG_JOB_SNAPSHOT, "0 3 * * *", NULL,
		      CFG_MISSED_RUN_ONCE), SCHED_NEVER, T0 + 12 * H);
	const struct sched_entry *en = sched_find(&s, "nightly");
	assert_non_null(en);
	assert_int_equal(en->next_fire, T0 + D + 3 * H);
	assert_int_equal(sched_next_wakeup(&s), T0 + D + 3 * H);

	assert_int_equal(sched_due(&s, T0 + D + 3 * H - 1, d, 8), 0);
	assert_int_equal(sched_due(&s, T0 + D + 3 * H, d, 8), 1);
	assert_int_equal(d[0].action, SCHED_RUN);
	assert_int_equal(d[0].reason, SCHED_REGULAR);
	assert_string_equal(d[0].schedule, "nightly");
	assert_string_equal(d[0].cluster, "shop");
	assert_int_equal(d[0].job, CFG_JOB_SNAPSHOT);
	assert_int_equal(d[0].scheduled, T0 + D + 3 * H);
	assert_int_equal(d[0].next, T0 + 2 * D + 3 * H);
	assert_string_equal(d[0].msg, "schedule 'nightly': snapshot of cluster 'shop' "
			    "due at 2024-01-02T03:00:00Z; next at 2024-01-03T03:00:00Z");
	assert_true(sched_job_running(&s, "shop", CFG_JOB_SNAPSHOT, NULL));
	assert_int_equal(en->last_fire, T0 + D + 3 * H);
	/* each decision once */
	assert_int_equal(sched_due(&s, T0 + D + 3 * H + 30, d, 8), 0);
	sched_job_end(&s, "shop", CFG_JOB_SNAPSHOT);
	assert_false(sched_job_running(&s, "shop", CFG_JOB_SNAPSHOT, NULL));
	sched_job_end(&s, "shop", CFG_JOB_SNAPSHOT);  /* no-op */
	sched_release(&s);
}

static void test_no_history_exact_time(void **state)
{
	struct sched s;
	struct sched_decision d[2];

	sched_init(&s);
	/* started exactly at a fire time with no history: due now */
	add_ok(&s, mk("a", "shop", CFG_JOB_PRUNE, "0 3 * * *", NULL,
		      CFG_MISSED_RUN_ONCE), SCHED_NEVER, T0 + 3 * H);
	assert_int_equal(sched_due(&s, T0 + 3 * H, d, 2), 1);
	assert_int_equal(d[0].reason, SCHED_REGULAR);
	/* @every without history starts its grid at now */
	add_ok(&s, mk("b", "shop", CFG_JOB_VERIFY, "@every 5s", NULL,
		      CFG_MISSED_RUN_ONCE), SCHED_NEVER, T0);
	assert_int_equal(sched_find(&s, "b")->next_fire, T0 + 5);
	sched_release(&s);
}

static void test_overlap_skip(void **state)
{
	struct sched s;
	struct sched_decision d[8];

	sched_init(&s);
	add_ok(&s, mk("fast", "shop", CFG_JOB_SNAPSHOT, "@every 5s", NULL,
		      CFG_MISSED_RUN_ONCE), SCHED_NEVER, T0);
	/* same kind on another cluster, other kind on the same cluster */
	add_ok(&s, mk("other-cluster", "blog", CFG_JOB_SNAPSHOT, "@every 5s", NULL,
		      CFG_MISSED_RUN_ONCE), SCHED_NEVER, T0);
	add_ok(&s, mk("verify", "shop", CFG_JOB_VERIFY, "@every 5s", NULL,
		      CFG_MISSED_RUN_ONCE), SCHED_NEVER, T0);

	assert_int_equal(sched_due(&s, T0 + 5, d, 8), 3);
	for (int i = 0; i < 3; i++)
		assert_int_equal(d[i].action, SCHED_RUN);
	sched_job_end(&s, "blog", CFG_JOB_SNAPSHOT);
	sched_job_end(&s, "shop", CFG_JOB_VERIFY);

	/* the shop snapshot takes 12 s: T0+10 is skipped, T0+15 runs */
	assert_int_equal(sched_due(&s, T0 + 10, d, 8), 3);
	assert_int_equal(d[0].action, SCHED_SKIP);
	assert_int_equal(d[0].reason, SCHED_OVERLAP);
	assert_int_equal(d[0].busy_since, T0 + 5);
	assert_string_equal(d[0].busy_by, "fast");
	assert_int_equal(d[0].next, T0 + 15);
	assert_string_equal(d[0].msg, "schedule 'fast': snapshot of cluster 'shop' "
			    "due at 2024-01-01T00:00:10Z skipped: the previous snapshot "
			    "is still running (since 2024-01-01T00:00:05Z, schedule "
			    "'fast'); next at 2024-01-01T00:00:15Z");
	assert_string_equal(sched_reason_name(d[0].reason), "overlap");
	assert_int_equal(d[1].action, SCHED_RUN);  /* blog */
	assert_int_equal(d[2].action, SCHED_RUN);  /* verify */
	sched_job_end(&s, "blog", CFG_JOB_SNAPSHOT);
	sched_job_end(&s, "shop", CFG_JOB_VERIFY);
	sched_job_end(&s, "shop", CFG_JOB_SNAPSHOT);  /* finished at T0+12 */
	assert_int_equal(sched_due(&s, T0 + 15, d, 8), 3);
	assert_int_equal(d[0].action, SCHED_RUN);
	assert_int_equal(d[0].scheduled, T0 + 15);
	sched_release(&s);
}

static void test_overlap_between_schedules_and_by_hand(void **state)
{
	struct sched s;
	struct sched_decision d[8];
	struct err e;
	time_t since;

	sched_init(&s);
	/* two schedules for the same (cluster, job) due at the same time:
	 * the first in config order runs, the second is skipped */
	add_ok(&s, mk("nightly", "shop", CFG_JOB_SNAPSHOT, "0 3 * * *", NULL,
		      CFG_MISSED_RUN_ONCE), SCHED_NEVER, T0);
	add_ok(&s, mk("hourly", "shop", CFG_JOB_SNAPSHOT, "0 * * * *", NULL,
		      CFG_MISSED_RUN_ONCE), SCHED_NEVER, T0 + 1);
	assert_int_equal(sched_due(&s, T0 + 3 * H, d, 8), 2);
	assert_int_equal(d[0].action, SCHED_RUN);
	assert_string_equal(d[0].schedule, "nightly");
	assert_int_equal(d[1].action, SCHED_SKIP);
	assert_int_equal(d[1].reason, SCHED_OVERLAP);
	assert_string_equal(d[1].busy_by, "nightly");

	/* a manual snapshot while the scheduled one runs: ERR_BUSY */
	err_init(&e);
	assert_int_equal(sched_job_begin(&s, "shop", CFG_JOB_SNAPSHOT, T0 + 3 * H + 60,
					 &e), ERR_BUSY);
	assert_string_equal(e.msg, "a snapshot of cluster 'shop' is already running "
			    "(since 2024-01-01T03:00:00Z, schedule 'nightly')");
	sched_job_end(&s, "shop", CFG_JOB_SNAPSHOT);

	/* a manual one blocks the schedule */
	err_init(&e);
	assert_int_equal(sched_job_begin(&s, "shop", CFG_JOB_SNAPSHOT, T0 + 3 * H + 120,
					 &e), 0);
	assert_true(sched_job_running(&s, "shop", CFG_JOB_SNAPSHOT, &since));
	assert_int_equal(since, T0 + 3 * H + 120);
	assert_int_equal(sched_due(&s, T0 + 4 * H, d, 8), 1);
	assert_int_equal(d[0].reason, SCHED_OVERLAP);
	assert_null(d[0].busy_by);
	assert_non_null(strstr(d[0].msg, "(since 2024-01-01T03:02:00Z, started by hand)"));
	err_init(&e);
	assert_int_equal(sched_job_begin(&s, "shop", CFG_JOB_SNAPSHOT, T0 + 4 * H, &e),
			 ERR_BUSY);
	assert_string_equal(e.msg, "a snapshot of cluster 'shop' is already running "
			    "(since 2024-01-01T03:02:00Z, started by hand)");
	sched_job_end(&s, "shop", CFG_JOB_SNAPSHOT);
	assert_int_equal(sched_due(&s, T0 + 5 * H, d, 8), 1);
	assert_int_equal(d[0].action, SCHED_RUN);
	sched_release(&s);
}

static void test_missed_run_once(void **state)
{
	struct sched s;
	struct sched_decision d[8];
	time_t now = T0 + 3 * D + 12 * H;  /* 2024-01-04T12:00Z */

	sched_init(&s);
	/* last ran 2024-01-01T03:00; down until 01-04 12:00: the runs of
	 * 01-02, 01-03 and 01-04 at 03:00 were missed */
	add_ok(&s, mk("nightly", "shop", CFG_JOB_SNAPSHOT, "0 3 * * *", NULL,
		      CFG_MISSED_RUN_ONCE), T0 + 3 * H, now);
	assert_int_equal(sched_next_wakeup(&s), T0 + D + 3 * H);
	assert_int_equal(sched_due(&s, now, d, 8), 1);
	assert_int_equal(d[0].action, SCHED_RUN);
	assert_int_equal(d[0].reason, SCHED_MISSED_RUN);
	assert_int_equal(d[0].missed, 3);
	/* stands for the last missed time; the first is reported too */
	assert_int_equal(d[0].scheduled, T0 + 3 * D + 3 * H);
	assert_int_equal(d[0].missed_first, T0 + D + 3 * H);
	assert_int_equal(d[0].next, T0 + 4 * D + 3 * H);
	assert_string_equal(d[0].msg, "schedule 'nightly': snapshot of cluster 'shop' "
			    "missed 3 runs while backupd was down (first due "
			    "2024-01-02T03:00:00Z, last 2024-01-04T03:00:00Z); running "
			    "it once now, next at 2024-01-05T03:00:00Z");
	sched_job_end(&s, "shop", CFG_JOB_SNAPSHOT);
	/* once, not three times */
	assert_int_equal(sched_due(&s, now + 1, d, 8), 0);
	assert_int_equal(sched_due(&s, T0 + 4 * D + 3 * H, d, 8), 1);
	assert_int_equal(d[0].reason, SCHED_REGULAR);
	sched_release(&s);

	/* The daemon stores `scheduled` as the last fire; restarted a minute
	 * later, nothing counts as missed again. */
	sched_init(&s);
	add_ok(&s, mk("nightly", "shop", CFG_JOB_SNAPSHOT, "0 3 * * *", NULL,
		      CFG_MISSED_RUN_ONCE), T0 + 3 * D + 3 * H, now + 60);
	assert_int_equal(sched_due(&s, now + 60, d, 8), 0);
	assert_int_equal(sched_find(&s, "nightly")->next_fire, T0 + 4 * D + 3 * H);
	sched_release(&s);

	/* one missed run */
	sched_init(&s);
	add_ok(&s, mk("nightly", "shop", CFG_JOB_SNAPSHOT, "0 3 * * *", NULL,
		      CFG_MISSED_RUN_ONCE), T0 + 3 * H, T0 + D + 4 * H);
	assert_int_equal(sched_due(&s, T0 + D + 4 * H, d, 8), 1);
	assert_int_equal(d[0].missed, 1);
	assert_int_equal(d[0].scheduled, T0 + D + 3 * H);
	assert_non_null(strstr(d[0].msg, "missed 1 run while backupd was down (due "
			       "2024-01-02T03:00:00Z); running it once now"));
	sched_release(&s);
}

static void test_missed_skip(void **state)
{
	struct sched s;
	struct sched_decision d[8];
	time_t now = T0 + 3 * D + 12 * H;

	sched_init(&s);
	add_ok(&s, mk("nightly", "shop", CFG_JOB_SNAPSHOT, "0 3 * * *", NULL,
		      CFG_MISSED_SKIP), T0 + 3 * H, now);
	assert_int_equal(sched_find(&s, "nightly")->next_fire, T0 + 4 * D + 3 * H);
	assert_int_equal(sched_due(&s, now, d, 8), 1);
	assert_int_equal(d[0].action, SCHED_SKIP);
	assert_int_equal(d[0].reason, SCHED_MISSED_SKIP);
	assert_int_equal(d[0].missed, 3);
	assert_int_equal(d[0].scheduled, T0 + 3 * D + 3 * H);
	assert_int_equal(d[0].missed_first, T0 + D + 3 * H);
	assert_string_equal(d[0].msg, "schedule 'nightly': snapshot of cluster 'shop' "
			    "missed 3 runs while backupd was down (first due "
			    "2024-01-02T03:00:00Z, last 2024-01-04T03:00:00Z); skipped "
			    "(missed_runs = skip), next at 2024-01-05T03:00:00Z");
	assert_false(sched_job_running(&s, "shop", CFG_JOB_SNAPSHOT, NULL));
	assert_int_equal(sched_due(&s, now + 60, d, 8), 0);
	assert_int_equal(sched_due(&s, T0 + 4 * D + 3 * H, d, 8), 1);
	assert_int_equal(d[0].action, SCHED_RUN);
	assert_int_equal(d[0].reason, SCHED_REGULAR);
	sched_release(&s);
}

static void test_not_missed(void **state)
{
	struct sched s;
	struct sched_decision d[8];

	sched_init(&s);
	/* last ran today 03:00, back at 12:00: nothing missed */
	add_ok(&s, mk("a", "shop", CFG_JOB_SNAPSHOT, "0 3 * * *", NULL,
		      CFG_MISSED_RUN_ONCE), T0 + 3 * H, T0 + 12 * H);
	assert_int_equal(sched_find(&s, "a")->next_fire, T0 + D + 3 * H);
	/* a fire time of exactly now is due, not missed */
	add_ok(&s, mk("b", "shop", CFG_JOB_PRUNE, "0 12 * * *", NULL,
		      CFG_MISSED_SKIP), T0 - 12 * H, T0 + 12 * H);
	assert_int_equal(sched_due(&s, T0 + 12 * H, d, 8), 1);
	assert_string_equal(d[0].schedule, "b");
	assert_int_equal(d[0].reason, SCHED_REGULAR);
	/* last fire in the future (clock stepped back) counts as now */
	add_ok(&s, mk("c", "shop", CFG_JOB_VERIFY, "0 3 * * *", NULL,
		      CFG_MISSED_RUN_ONCE), T0 + 300 * D, T0 + 12 * H);
	assert_int_equal(sched_find(&s, "c")->next_fire, T0 + D + 3 * H);
	sched_release(&s);
}

static void test_missed_many_capped(void **state)
{
	struct sched s;
	struct sched_decision d[2];

	sched_init(&s);
	/* every minute, down for 30 days */
	add_ok(&s, mk("m", "shop", CFG_JOB_VERIFY, "* * * * *", NULL,
		      CFG_MISSED_RUN_ONCE), T0, T0 + 30 * D);
	assert_int_equal(sched_due(&s, T0 + 30 * D, d, 2), 1);
	assert_int_equal(d[0].missed, SCHED_MISSED_CAP);
	assert_non_null(strstr(d[0].msg, "missed at least 1000 runs"));
	assert_int_equal(d[0].missed_first, T0 + 60);
	assert_int_equal(d[0].scheduled, T0 + 30 * D - 60);
	assert_int_equal(d[0].next, T0 + 30 * D + 60);
	sched_release(&s);

	/* sparse schedule, long downtime: the last missed one found exactly
	 * (Feb 29 2028, down from 2024-03-01 to 2031-01-01) */
	sched_init(&s);
	add_ok(&s, mk("leap", "shop", CFG_JOB_DRILL, "0 0 29 2 *", NULL,
		      CFG_MISSED_RUN_ONCE), 1709164800 /* 2024-02-29 */,
	       1924992000 /* 2031-01-01 */);
	assert_int_equal(sched_due(&s, 1924992000, d, 2), 1);
	assert_int_equal(d[0].missed, 1);
	assert_int_equal(d[0].scheduled, 1835395200);  /* 2028-02-29 */
	assert_int_equal(d[0].next, 1961625600);       /* 2032-02-29 */
	sched_release(&s);
}

static void test_every_grid_and_late_check(void **state)
{
	struct sched s;
	struct sched_decision d[4];

	sched_init(&s);
	/* last fire at T0+1000, every 30 s, back at T0+1100: 1030, 1060 and
	 * 1090 were missed; run once, then stay on the grid: 1120 */
	add_ok(&s, mk("e", "shop", CFG_JOB_SNAPSHOT, "@every 30s", NULL,
		      CFG_MISSED_RUN_ONCE), T0 + 1000, T0 + 1100);
	assert_int_equal(sched_due(&s, T0 + 1100, d, 4), 1);
	assert_int_equal(d[0].reason, SCHED_MISSED_RUN);
	assert_int_equal(d[0].missed, 3);
	assert_int_equal(d[0].missed_first, T0 + 1030);
	assert_int_equal(d[0].scheduled, T0 + 1090);
	assert_int_equal(d[0].next, T0 + 1120);
	sched_job_end(&s, "shop", CFG_JOB_SNAPSHOT);
	/* checked late (the loop was stuck for 100 s): one run, grid kept */
	assert_int_equal(sched_due(&s, T0 + 1220, d, 4), 1);
	assert_int_equal(d[0].action, SCHED_RUN);
	assert_int_equal(d[0].reason, SCHED_REGULAR);
	assert_int_equal(d[0].scheduled, T0 + 1120);
	assert_int_equal(d[0].next, T0 + 1240);
	sched_job_end(&s, "shop", CFG_JOB_SNAPSHOT);

	/* cron schedule checked late: one run, next from now */
	add_ok(&s, mk("c", "shop", CFG_JOB_PRUNE, "*/5 * * * *", NULL,
		      CFG_MISSED_RUN_ONCE), SCHED_NEVER, T0 + 1);
	assert_int_equal(sched_due(&s, T0 + 1900, d, 4), 2);
	assert_string_equal(d[0].schedule, "e");
	assert_int_equal(d[0].next, T0 + 1930);
	assert_string_equal(d[1].schedule, "c");
	assert_int_equal(d[1].scheduled, T0 + 300);
	assert_int_equal(d[1].next, T0 + 2100);
	sched_release(&s);
}

static void test_capacity(void **state)
{
	struct sched s;
	struct sched_decision d[1];
	time_t now = T0 + 3 * D;

	sched_init(&s);
	/* b has a missed-skip report and is due again: two decisions */
	add_ok(&s, mk("a", "shop", CFG_JOB_SNAPSHOT, "0 0 * * *", NULL,
		      CFG_MISSED_RUN_ONCE), SCHED_NEVER, T0 + 1);
	add_ok(&s, mk("b", "shop", CFG_JOB_PRUNE, "0 0 * * *", NULL,
		      CFG_MISSED_SKIP), T0, now);
	assert_int_equal(sched_due(&s, now, d, 1), 1);
	assert_string_equal(d[0].schedule, "a");
	assert_int_equal(sched_due(&s, now, d, 1), 1);
	assert_string_equal(d[0].schedule, "b");
	assert_int_equal(d[0].reason, SCHED_MISSED_SKIP);
	assert_int_equal(d[0].missed, 2);
	assert_int_equal(d[0].scheduled, T0 + 2 * D);
	assert_int_equal(sched_due(&s, now, d, 1), 1);
	assert_string_equal(d[0].schedule, "b");
	assert_int_equal(d[0].reason, SCHED_REGULAR);
	assert_int_equal(sched_due(&s, now, d, 1), 0);
	sched_release(&s);
}

static void test_timezone(void **state)
{
	struct sched s;
	struct sched_decision d[2];
	/* 2024-03-30T12:00Z; 02:30 Berlin falls in the gap on 03-31 */
	time_t now = 1711800000;

	sched_init(&s);
	add_ok(&s, mk("berlin", "shop", CFG_JOB_SNAPSHOT, "30 2 * * *",
		      "Europe/Berlin", CFG_MISSED_RUN_ONCE), SCHED_NEVER, now);
	assert_int_equal(sched_next_wakeup(&s), 1711846800);  /* 03:00 CEST */
	assert_int_equal(sched_due(&s, 1711846800, d, 2), 1);
	assert_int_equal(d[0].next, 1711931400);  /* 04-01 02:30 CEST */
	sched_release(&s);
}

static void test_reload(void **state)
{
	struct sched s;
	struct sched_decision d[4];
	struct err e;

	sched_init(&s);
	add_ok(&s, mk("keep", "shop", CFG_JOB_SNAPSHOT, "0 3 * * *", NULL,
		      CFG_MISSED_RUN_ONCE), T0 + 3 * H, T0 + 4 * H);
	add_ok(&s, mk("change", "shop", CFG_JOB_PRUNE, "0 4 * * *", NULL,
		      CFG_MISSED_RUN_ONCE), T0 + 4 * H, T0 + 4 * H);
	add_ok(&s, mk("drop", "shop", CFG_JOB_VERIFY, "0 5 * * *", NULL,
		      CFG_MISSED_RUN_ONCE), SCHED_NEVER, T0 + 4 * H);
	err_init(&e);
	assert_int_equal(sched_job_begin(&s, "shop", CFG_JOB_DRILL, T0 + 4 * H, &e), 0);

	struct cfg_schedule bad[] = {
		mk("keep", "shop", CFG_JOB_SNAPSHOT, "0 3 * * *", NULL,
		   CFG_MISSED_RUN_ONCE),
		mk("broken", "shop", CFG_JOB_PRUNE, "0 24 * * *", NULL,
		   CFG_MISSED_RUN_ONCE),
	};
	err_init(&e);
	assert_int_equal(sched_reload(&s, bad, 2, T0 + 6 * H, &e), ERR_CONFIG);
	assert_string_equal(e.msg, "schedule 'broken': cron '0 24 * * *': hour 24 is "
			    "out of range 0-23");
	assert_int_equal(sched_count(&s), 3);  /* unchanged */

	struct cfg_schedule good[] = {
		mk("change", "shop", CFG_JOB_PRUNE, "30 */2 * * *", NULL,
		   CFG_MISSED_RUN_ONCE),
		mk("keep", "shop", CFG_JOB_SNAPSHOT, "0 3 * * *", NULL,
		   CFG_MISSED_RUN_ONCE),
		mk("new", "blog", CFG_JOB_SNAPSHOT, "@every 1h", NULL,
		   CFG_MISSED_RUN_ONCE),
	};
	err_init(&e);
	assert_int_equal(sched_reload(&s, good, 3, T0 + 6 * H + 60, &e), 0);
	assert_int_equal(sched_count(&s), 3);
	assert_null(sched_find(&s, "drop"));
	assert_string_equal(sched_entry_at(&s, 0)->name, "change");
	assert_null(sched_entry_at(&s, 3));
	const struct sched_entry *k = sched_find(&s, "keep");
	assert_int_equal(k->last_fire, T0 + 3 * H);
	assert_int_equal(k->next_fire, T0 + D + 3 * H);
	const struct sched_entry *c = sched_find(&s, "change");
	assert_int_equal(c->last_fire, T0 + 4 * H);
	/* changed: from the reload time on, 04:30 is not run late */
	assert_int_equal(c->next_fire, T0 + 6 * H + 30 * 60);
	assert_int_equal(sched_find(&s, "new")->next_fire, T0 + 7 * H + 60);
	assert_true(sched_job_running(&s, "shop", CFG_JOB_DRILL, NULL));
	/* a changed schedule whose old fire passed while up is not "missed" */
	struct cfg_schedule again[] = {
		mk("change", "shop", CFG_JOB_PRUNE, "0 5 * * *", NULL,
		   CFG_MISSED_RUN_ONCE),
	};
	assert_int_equal(sched_reload(&s, again, 1, T0 + 6 * H + 120, &e), 0);
	assert_int_equal(sched_find(&s, "change")->next_fire, T0 + D + 5 * H);
	assert_int_equal(sched_due(&s, T0 + 6 * H + 180, d, 4), 0);
	sched_release(&s);
}

static void test_add_errors(void **state)
{
	struct sched s;
	struct err e;
	struct cfg_schedule cs;

	sched_init(&s);
	cs = mk("x", "shop", CFG_JOB_SNAPSHOT, "0 0 30 2 *", NULL, CFG_MISSED_SKIP);
	err_init(&e);
	assert_int_equal(sched_add(&s, &cs, SCHED_NEVER, T0, &e), ERR_CONFIG);
	assert_string_equal(e.msg, "schedule 'x': cron '0 0 30 2 *': never fires: no "
			    "selected month has any of those days of the month");
	cs = mk("y", "shop", CFG_JOB_SNAPSHOT, "@daily", "Nowhere/Town",
		CFG_MISSED_SKIP);
	err_init(&e);
	assert_int_equal(sched_add(&s, &cs, SCHED_NEVER, T0, &e), ERR_CONFIG);
	assert_non_null(strstr(e.msg, "schedule 'y': unable to open time zone "
			       "'/usr/share/zoneinfo/Nowhere/Town'"));
	cs = mk("z", "shop", CFG_JOB_SNAPSHOT, "@daily", NULL, CFG_MISSED_SKIP);
	add_ok(&s, cs, SCHED_NEVER, T0);
	err_init(&e);
	assert_int_equal(sched_add(&s, &cs, SCHED_NEVER, T0, &e), ERR_CONFIG);
	assert_string_equal(e.msg, "schedule 'z' is defined twice");
	assert_int_equal(sched_count(&s), 1);
	sched_release(&s);
	/* empty scheduler */
	sched_init(&s);
	assert_int_equal(sched_next_wakeup(&s), SCHED_NEVER);
	sched_release(&s);
}

/* The example configs in schedules/examples load with config_load (after a
 * minimal [backupd] and [cluster shop]) and the scheduler takes them all. */
static void test_examples_load(void **state)
{
	glob_t g;
	size_t total = 0;

	if (glob("schedules/examples/*.conf", 0, NULL, &g) != 0) {
		print_message("no schedules/examples here (run from the tree top)\n");
		skip();
	}
	for (size_t i = 0; i < g.gl_pathc; i++) {
		char tmp[] = "/tmp/test_scheduler.XXXXXX";
		int fd = mkstemp(tmp);
		FILE *out, *in;
		char buf[4096];
		size_t n;
		struct config *c = NULL;
		struct sched s;
		struct err e;

		assert_true(fd >= 0);
		out = fdopen(fd, "w");
		assert_non_null(out);
		fprintf(out, "[backupd]\ncatalog = /tmp/x.db\nrepository = /tmp/repo\n"
			"[cluster shop]\nprimary = 127.0.0.1:3306\nuser = u\n"
			"password = p\n");
		in = fopen(g.gl_pathv[i], "r");
		assert_non_null(in);
		while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
			fwrite(buf, 1, n, out);
		fclose(in);
		fclose(out);
		err_init(&e);
		int rc = config_load(tmp, &c, &e);
		unlink(tmp);
		if (rc != 0)
			fail_msg("%s: %s", g.gl_pathv[i], e.msg);
		assert_true(c->n_schedules > 0);
		sched_init(&s);
		for (size_t k = 0; k < c->n_schedules; k++) {
			err_init(&e);
			if (sched_add(&s, &c->schedules[k], SCHED_NEVER, T0, &e) != 0)
				fail_msg("%s: %s", g.gl_pathv[i], e.msg);
			total++;
		}
		sched_release(&s);
		config_free(c);
	}
	globfree(&g);
	print_message("%zu example schedules\n", total);
}

static int teardown(void **state)
{
	cron_zone_cache_clear();
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_due_regular),
		cmocka_unit_test(test_no_history_exact_time),
		cmocka_unit_test(test_overlap_skip),
		cmocka_unit_test(test_overlap_between_schedules_and_by_hand),
		cmocka_unit_test(test_missed_run_once),
		cmocka_unit_test(test_missed_skip),
		cmocka_unit_test(test_not_missed),
		cmocka_unit_test(test_missed_many_capped),
		cmocka_unit_test(test_every_grid_and_late_check),
		cmocka_unit_test(test_capacity),
		cmocka_unit_test(test_timezone),
		cmocka_unit_test(test_reload),
		cmocka_unit_test(test_add_errors),
		cmocka_unit_test(test_examples_load),
	};
	return cmocka_run_group_tests(tests, NULL, teardown);
}
