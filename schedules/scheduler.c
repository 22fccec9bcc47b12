/* Scheduling decisions without side effects (see scheduler.h): fire times,
 * the one-job-of-a-kind-per-cluster rule and the missed-run policy, driven
 * by the time the caller passes in.
 *
 * Threading: a struct sched is owned by one thread; nothing here is
 * shared except the cron zone cache, which locks itself. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mem.h"
#include "scheduler.h"

/* snprintf for messages that may be cut short on purpose (decision text is
 * bounded; names in it can be long). */
__attribute__((format(printf, 3, 4)))
static void msg_fmt(char *out, size_t n, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(out, n, fmt, ap);
	va_end(ap);
}

static void fmt_time(time_t t, char *out, size_t n)
{
	struct tm tm;

	if (t == SCHED_NEVER || !gmtime_r(&t, &tm)) {
		snprintf(out, n, "never");
		return;
	}
	strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void entry_release(struct sched_entry *en)
{
	free(en->name);
	free(en->cluster);
	free(en->tz);
	memset(en, 0, sizeof(*en));
}

static void slot_release(struct sched_slot *sl)
{
	free(sl->cluster);
	free(sl->by);
}

void sched_init(struct sched *s)
{
	memset(s, 0, sizeof(*s));
}

void sched_release(struct sched *s)
{
	for (size_t i = 0; i < s->n; i++)
		entry_release(&s->entries[i]);
	for (size_t i = 0; i < s->n_slots; i++)
		slot_release(&s->slots[i]);
	free(s->entries);
	free(s->slots);
	memset(s, 0, sizeof(*s));
}

/* First fire strictly after `after`. @every keeps to the grid of anchor
 * (the last fire), so a late check does not shift the cadence. */
static int entry_next_after(const struct sched_entry *en, time_t anchor,
			    time_t after, time_t *next, struct err *e)
{
	int64_t d = en->cron.every_s;

	if (d > 0) {
		if (anchor == SCHED_NEVER || anchor > after)
			anchor = after;
		*next = anchor + ((after - anchor) / d + 1) * d;
		return 0;
	}
	return cron_next_in(&en->cron, en->zone, after, next, e);
}

/* The last fire time before now, given that first < now is one. Widens a
 * window back from now until it holds a fire time, so a dense schedule
 * after a long downtime costs a few dozen steps, not one per minute. */
static time_t last_missed(const struct sched_entry *en, time_t first,
			  time_t now)
{
	struct err e;
	int64_t d = en->cron.every_s;

	if (d > 0)
		return first + (now - 1 - first) / d * d;
	err_init(&e);
	for (int64_t w = 60;; w *= 2) {
		time_t start = now - w > first - 1 ? now - w : first - 1;
		time_t t, n;

		if (cron_next_in(&en->cron, en->zone, start, &t, &e) != 0)
			return first;
		if (t < now) {
			while (cron_next_in(&en->cron, en->zone, t, &n, &e) == 0 &&
			       n < now)
				t = n;
			return t;
		}
		if (start == first - 1)
			return first;  /* not reached: first < now fires */
	}
}

/* Fire times in [first, now), at most SCHED_MISSED_CAP. */
static unsigned count_missed(const struct sched_entry *en, time_t first,
			     time_t now)
{
	struct err e;
	unsigned n = 0;
	time_t t = first;

	if (en->cron.every_s > 0) {
		int64_t k = (now - 1 - first) / en->cron.every_s + 1;
		return k > SCHED_MISSED_CAP ? SCHED_MISSED_CAP : (unsigned)k;
	}
	err_init(&e);
	while (t < now && n < SCHED_MISSED_CAP) {
		n++;
		if (cron_next_in(&en->cron, en->zone, t, &t, &e) != 0)
			break;
	}
	return n;
}

/* Sets next_fire (and a pending missed run) for an entry that starts now.
 * allow_missed: daemon start, when fire times since last_fire passed while
 * it was down; false after a reload. */
static int entry_start(struct sched_entry *en, time_t last_fire, time_t now,
		       bool allow_missed, struct err *e)
{
	time_t next;
	int rc;

	if (last_fire != SCHED_NEVER && last_fire > now)
		last_fire = now;
	en->last_fire = last_fire;
	en->missed = 0;
	en->missed_first = en->missed_last = SCHED_NEVER;
	if (last_fire == SCHED_NEVER) {
		/* No history: a cron time of exactly now counts; @every starts
		 * its grid now, so a new schedule does not fire at once. */
		if (en->cron.every_s > 0) {
			en->next_fire = now + en->cron.every_s;
			return 0;
		}
		return entry_next_after(en, now, now - 1, &en->next_fire, e);
	}
	if ((rc = entry_next_after(en, last_fire, last_fire, &next, e)) != 0)
		return rc;
	if (next >= now) {
		en->next_fire = next;
		return 0;
	}
	if (allow_missed) {
		en->missed = count_missed(en, next, now);
		en->missed_first = next;
		en->missed_last = last_missed(en, next, now);
		if (en->missed_runs == CFG_MISSED_RUN_ONCE) {
			en->next_fire = en->missed_last;
			return 0;
		}
	}
	return entry_next_after(en, last_fire, now - 1, &en->next_fire, e);
}

static int entry_init(struct sched_entry *en, const struct cfg_schedule *cs,
		      struct err *e)
{
	int rc;

	memset(en, 0, sizeof(*en));
	en->name = xstrdup(cs->name ? cs->name : "");
	en->cluster = xstrdup(cs->cluster ? cs->cluster : "");
	en->job = cs->job;
	en->missed_runs = cs->missed_runs;
	en->tz = xstrdup(cs->timezone);
	en->last_fire = en->next_fire = SCHED_NEVER;
	en->missed_first = en->missed_last = SCHED_NEVER;
	if ((rc = cron_parse(cs->cron, &en->cron, e)) != 0 ||
	    (rc = cron_zone_get(en->tz, &en->zone, e)) != 0) {
		err_prefix(e, "schedule '%s': ", en->name);
		entry_release(en);
		return rc;
	}
	return 0;
}

static int entries_push(struct sched_entry **arr, size_t *n,
			const struct sched_entry *en, struct err *e)
{
	for (size_t i = 0; i < *n; i++)
		if (strcmp((*arr)[i].name, en->name) == 0)
			return err_set(e, ERR_CONFIG, "schedule '%s' is defined "
				       "twice", en->name);
	if (*n >= CFG_MAX_SCHEDULES)
		return err_set(e, ERR_CONFIG, "too many schedules (at most %d)",
			       CFG_MAX_SCHEDULES);
	*arr = xrealloc(*arr, (*n + 1) * sizeof(**arr));
	(*arr)[(*n)++] = *en;
	return 0;
}

int sched_add(struct sched *s, const struct cfg_schedule *cs,
	      time_t last_fire, time_t now, struct err *e)
{
	struct sched_entry en;
	int rc;

	if ((rc = entry_init(&en, cs, e)) != 0)
		return rc;
	if ((rc = entry_start(&en, last_fire, now, true, e)) != 0) {
		err_prefix(e, "schedule '%s': ", en.name);
		entry_release(&en);
		return rc;
	}
	if ((rc = entries_push(&s->entries, &s->n, &en, e)) != 0)
		entry_release(&en);
	return rc;
}

static bool str_eq(const char *a, const char *b)
{
	if (!a || !b)
		return a == b;
	return strcmp(a, b) == 0;
}

int sched_reload(struct sched *s, const struct cfg_schedule *cs, size_t n,
		 time_t now, struct err *e)
{
	struct sched_entry *arr = NULL;
	size_t na = 0;
	int rc = 0;

	for (size_t i = 0; i < n && rc == 0; i++) {
		struct sched_entry en;
		const struct sched_entry *old = sched_find(s, cs[i].name);

		if ((rc = entry_init(&en, &cs[i], e)) != 0)
			break;
		if (old && str_eq(old->cluster, en.cluster) &&
		    old->job == en.job && str_eq(old->tz, en.tz) &&
		    strcmp(old->cron.expr, en.cron.expr) == 0) {
			en.last_fire = old->last_fire;
			en.next_fire = old->next_fire;
			en.missed = old->missed;
			en.missed_first = old->missed_first;
			en.missed_last = old->missed_last;
		} else if ((rc = entry_start(&en, old ? old->last_fire : SCHED_NEVER,
					     now, false, e)) != 0) {
			err_prefix(e, "schedule '%s': ", en.name);
			entry_release(&en);
			break;
		}
		if ((rc = entries_push(&arr, &na, &en, e)) != 0)
			entry_release(&en);
	}
	if (rc) {
		for (size_t i = 0; i < na; i++)
			entry_release(&arr[i]);
		free(arr);
		return rc;
	}
	for (size_t i = 0; i < s->n; i++)
		entry_release(&s->entries[i]);
	free(s->entries);
	s->entries = arr;
	s->n = na;
	return 0;
}

static struct sched_slot *slot_find(const struct sched *s, const char *cluster,
				    enum cfg_job job)
{
	for (size_t i = 0; i < s->n_slots; i++)
		if (s->slots[i].job == job && strcmp(s->slots[i].cluster, cluster) == 0)
			return &s->slots[i];
	return NULL;
}

static int slot_take(struct sched *s, const char *cluster, enum cfg_job job,
		     time_t now, const char *by, struct err *e)
{
	struct sched_slot *sl = slot_find(s, cluster, job);

	if (sl) {
		char t[32];
		fmt_time(sl->since, t, sizeof(t));
		return err_set(e, ERR_BUSY, "a %s of cluster '%s' is already "
			       "running (since %s, %s%s%s)", cfg_job_name(job),
			       cluster, t, sl->by ? "schedule '" : "started by hand",
			       sl->by ? sl->by : "", sl->by ? "'" : "");
	}
	if (s->n_slots >= SCHED_MAX_SLOTS)
		return err_set(e, ERR_INTERNAL, "too many running jobs (at most "
			       "%d)", SCHED_MAX_SLOTS);
	s->slots = xrealloc(s->slots, (s->n_slots + 1) * sizeof(*s->slots));
	s->slots[s->n_slots++] = (struct sched_slot){
		.cluster = xstrdup(cluster), .job = job, .since = now,
		.by = xstrdup(by),
	};
	return 0;
}

int sched_job_begin(struct sched *s, const char *cluster, enum cfg_job job,
		    time_t now, struct err *e)
{
	return slot_take(s, cluster, job, now, NULL, e);
}

void sched_job_end(struct sched *s, const char *cluster, enum cfg_job job)
{
	struct sched_slot *sl = slot_find(s, cluster, job);

	if (!sl)
		return;
	slot_release(sl);
	*sl = s->slots[--s->n_slots];
}

bool sched_job_running(const struct sched *s, const char *cluster,
		       enum cfg_job job, time_t *since)
{
	const struct sched_slot *sl = slot_find(s, cluster, job);

	if (sl && since)
		*since = sl->since;
	return sl != NULL;
}

static void missed_text(const struct sched_entry *en, char *out, size_t n)
{
	char t1[32], t2[32];

	fmt_time(en->missed_first, t1, sizeof(t1));
	fmt_time(en->missed_last, t2, sizeof(t2));
	if (en->missed == 1)
		msg_fmt(out, n, "missed 1 run while backupd was down (due %s)", t1);
	else
		msg_fmt(out, n, "missed %s%u runs while backupd was down (first "
			"due %s, last %s)", en->missed >= SCHED_MISSED_CAP ?
			"at least " : "", en->missed, t1, t2);
}

static void decision_init(struct sched_decision *d, const struct sched *s,
			  size_t i)
{
	const struct sched_entry *en = &s->entries[i];

	memset(d, 0, sizeof(*d));
	d->index = i;
	d->schedule = en->name;
	d->cluster = en->cluster;
	d->job = en->job;
	d->busy_since = SCHED_NEVER;
	d->missed_first = SCHED_NEVER;
}

size_t sched_due(struct sched *s, time_t now, struct sched_decision *out,
		 size_t max)
{
	size_t k = 0;

	for (size_t i = 0; i < s->n && k < max; i++) {
		struct sched_entry *en = &s->entries[i];
		struct sched_decision *d;
		char what[128], when[32], nx[32], mt[128] = "";

		msg_fmt(what, sizeof(what), "schedule '%s': %s of cluster '%s'",
			 en->name, cfg_job_name(en->job), en->cluster);
		if (en->missed && en->missed_runs == CFG_MISSED_SKIP) {
			d = &out[k++];
			decision_init(d, s, i);
			d->action = SCHED_SKIP;
			d->reason = SCHED_MISSED_SKIP;
			d->scheduled = en->missed_last;
			d->missed = en->missed;
			d->missed_first = en->missed_first;
			d->next = en->next_fire;
			missed_text(en, mt, sizeof(mt));
			fmt_time(en->next_fire, nx, sizeof(nx));
			msg_fmt(d->msg, sizeof(d->msg), "%s %s; skipped "
				 "(missed_runs = skip), next at %s", what, mt, nx);
			en->missed = 0;
			if (k >= max)
				break;
		}
		if (en->next_fire == SCHED_NEVER || en->next_fire > now)
			continue;

		struct sched_slot *busy = slot_find(s, en->cluster, en->job);
		struct err e;
		time_t scheduled = en->next_fire;
		int rc;

		d = &out[k++];
		decision_init(d, s, i);
		d->scheduled = scheduled;
		d->reason = en->missed ? SCHED_MISSED_RUN : SCHED_REGULAR;
		d->missed = en->missed;
		if (en->missed) {
			d->missed_first = en->missed_first;
			missed_text(en, mt, sizeof(mt));
		}
		en->missed = 0;
		err_init(&e);
		if (busy) {
			d->action = SCHED_SKIP;
			d->reason = SCHED_OVERLAP;
			d->busy_since = busy->since;
			d->busy_by = busy->by;
		} else if (slot_take(s, en->cluster, en->job, now, en->name, &e) == 0) {
			d->action = SCHED_RUN;
			en->last_fire = scheduled;
		} else {
			/* Slot table full: a bug elsewhere (jobs never ended). */
			d->action = SCHED_SKIP;
			d->reason = SCHED_OVERLAP;
		}
		rc = entry_next_after(en, scheduled, now, &en->next_fire, &e);
		if (rc)
			en->next_fire = SCHED_NEVER;
		d->next = en->next_fire;

		fmt_time(scheduled, when, sizeof(when));
		fmt_time(en->next_fire, nx, sizeof(nx));
		if (d->reason == SCHED_OVERLAP && busy) {
			char since[32];
			fmt_time(busy->since, since, sizeof(since));
			msg_fmt(d->msg, sizeof(d->msg), "%s due at %s skipped: "
				 "the previous %s is still running (since %s, %s%s%s); "
				 "next at %s", what, when, cfg_job_name(en->job),
				 since, busy->by ? "schedule '" : "started by hand",
				 busy->by ? busy->by : "", busy->by ? "'" : "", nx);
		} else if (d->reason == SCHED_OVERLAP) {
			msg_fmt(d->msg, sizeof(d->msg), "%s due at %s skipped: %s",
				 what, when, e.msg);
		} else if (d->reason == SCHED_MISSED_RUN) {
			msg_fmt(d->msg, sizeof(d->msg), "%s %s; running it once "
				 "now, next at %s", what, mt, nx);
		} else {
			msg_fmt(d->msg, sizeof(d->msg), "%s due at %s; next at %s",
				 what, when, nx);
		}
		if (rc) {
			size_t l = strlen(d->msg);
			msg_fmt(d->msg + l, sizeof(d->msg) - l,
				 "; schedule disabled: %s", e.msg);
		}
	}
	return k;
}

time_t sched_next_wakeup(const struct sched *s)
{
	time_t best = SCHED_NEVER;

	for (size_t i = 0; i < s->n; i++) {
		const struct sched_entry *en = &s->entries[i];
		time_t t = en->next_fire;
		if (en->missed && en->missed_first != SCHED_NEVER)
			t = en->missed_first;
		if (t != SCHED_NEVER && (best == SCHED_NEVER || t < best))
			best = t;
	}
	return best;
}

size_t sched_count(const struct sched *s)
{
	return s->n;
}

const struct sched_entry *sched_entry_at(const struct sched *s, size_t i)
{
	return i < s->n ? &s->entries[i] : NULL;
}

const struct sched_entry *sched_find(const struct sched *s, const char *name)
{
	for (size_t i = 0; name && i < s->n; i++)
		if (strcmp(s->entries[i].name, name) == 0)
			return &s->entries[i];
	return NULL;
}

const char *sched_reason_name(enum sched_reason r)
{
	switch (r) {
	case SCHED_REGULAR: return "regular";
	case SCHED_MISSED_RUN: return "missed_run";
	case SCHED_MISSED_SKIP: return "missed_skip";
	case SCHED_OVERLAP: return "overlap";
	}
	return "unknown";
}
