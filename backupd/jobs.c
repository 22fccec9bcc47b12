/* Job threads for the daemon; see jobs.h. Threading: the runner's list is
 * guarded by its mutex; each job thread owns its catalog connection. */
#include "jobs.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "catalog.h"
#include "drill.h"
#include "log.h"
#include "mem.h"
#include "prune.h"
#include "restore.h"
#include "snapshot.h"
#include "verify.h"

#define MOD "jobs"

struct cfg_ref {
	pthread_mutex_t lock;
	int refs;
	struct config *cfg;
};

struct cfg_ref *cfg_ref_new(struct config *cfg)
{
	struct cfg_ref *r = xcalloc(1, sizeof(*r));
	pthread_mutex_init(&r->lock, NULL);
	r->refs = 1;
	r->cfg = cfg;
	return r;
}

struct cfg_ref *cfg_ref_get(struct cfg_ref *r)
{
	pthread_mutex_lock(&r->lock);
	r->refs++;
	pthread_mutex_unlock(&r->lock);
	return r;
}

void cfg_ref_put(struct cfg_ref *r)
{
	int left;
	if (!r)
		return;
	pthread_mutex_lock(&r->lock);
	left = --r->refs;
	pthread_mutex_unlock(&r->lock);
	if (left == 0) {
		config_free(r->cfg);
		pthread_mutex_destroy(&r->lock);
		free(r);
	}
}

const struct config *cfg_ref_config(const struct cfg_ref *r)
{
	return r->cfg;
}

struct job {
	struct job *next;
	uint64_t id;
	struct jobs *runner;
	struct job_req req;
	struct cfg_ref *cfg;
	pthread_t thread;
	volatile sig_atomic_t abort;
	bool done, waited;
	double started_at;
	json_t *result;
	struct err err;
};

struct jobs {
	pthread_mutex_t lock;
	pthread_cond_t changed;
	struct job *list;
	uint64_t next_id;
};

struct jobs *jobs_new(void)
{
	struct jobs *j = xcalloc(1, sizeof(*j));
	pthread_mutex_init(&j->lock, NULL);
	pthread_cond_init(&j->changed, NULL);
	j->next_id = 1;
	return j;
}

static double jobs_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* verify with no id: the latest complete snapshot never verified. */
static int job_pick_unverified(struct catalog *cat, const char *cluster,
			       char *id, size_t n, struct err *e)
{
	struct catalog_snapshot *arr = NULL;
	size_t cnt = 0;
	int rc = catalog_snapshot_list(cat, cluster, &arr, &cnt, e);
	id[0] = '\0';
	for (size_t i = cnt; rc == 0 && i > 0; i--) {
		struct catalog_snapshot *s = &arr[i - 1];
		if (strcmp(s->status, "complete") == 0 && !s->verify_status) {
			str_copy(id, n, s->id);
			break;
		}
	}
	catalog_snapshot_free_list(arr, cnt);
	return rc;
}

const char *jobs_kind_name(enum cfg_job kind)
{
	return kind == JOB_REBUILD ? "rebuild" : cfg_job_name(kind);
}

static int job_run(struct job *jb, struct catalog *cat, struct err *e)
{
	const struct config *cfg = cfg_ref_config(jb->cfg);
	const struct cfg_cluster *cl = config_find_cluster(cfg, jb->req.cluster);
	const char *sched = jb->req.schedule[0] ? jb->req.schedule : NULL;
	int rc = 0;

	if (!cl)
		return err_set(e, ERR_NOT_FOUND, "no cluster '%s' in the config", jb->req.cluster);
	if (jb->req.kind == JOB_REBUILD) {
		struct restore_rebuild_opts ro = {
			.cfg = cfg, .cluster = cl->name, .server = jb->req.server,
			/* rebuild = auto is what allows wiping the snapshot's
			 * databases there; restore_rebuild reads it from cfg. */
			.force = false, .threads = cfg->threads, .trigger = jb->req.trigger,
			.abort_flag = &jb->abort,
		};
		struct restore_rebuild_result *res = xcalloc(1, sizeof(*res));
		rc = restore_rebuild(cat, &ro, res, e);
		jb->result = json_pack("{s:s, s:s, s:s, s:s, s:f}", "cluster", cl->name,
				       "server", jb->req.server, "snapshot_id", res->snapshot_id,
				       "reason", res->reason, "seconds", res->seconds);
		free(res);
		return rc;
	}
	switch (jb->req.kind) {
	case CFG_JOB_SNAPSHOT: {
		struct snapshot_opts o = {
			.cfg = cfg, .cluster = cl,
			.from = jb->req.from[0] ? jb->req.from : NULL,
			.trigger = jb->req.trigger, .schedule = sched,
			.abort_flag = &jb->abort,
		};
		struct snapshot_result res;
		rc = snapshot_run(cat, &o, &res, e);
		if (rc == 0)
			jb->result = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:i, s:i, s:f, s:f}",
					       "id", res.id, "cluster", cl->name, "source", res.source,
					       "gtid", res.gtid, "bytes_raw", (json_int_t)res.bytes_raw,
					       "bytes_stored", (json_int_t)res.bytes_stored,
					       "rows", (json_int_t)res.rows, "tables", (int)res.n_tables,
					       "files", (int)res.n_files, "seconds", res.seconds,
					       "freeze_ms", res.freeze_ms);
		break;
	}
	case CFG_JOB_VERIFY: {
		char id[64];
		struct verify_report rep;
		struct verify_opts vo = { .trigger = jb->req.trigger, .schedule = sched,
					  .abort_flag = &jb->abort };
		if (jb->req.snapshot_id[0])
			str_copy(id, sizeof(id), jb->req.snapshot_id);
		else if ((rc = job_pick_unverified(cat, cl->name, id, sizeof(id), e)) != 0)
			break;
		if (!id[0]) {
			jb->result = json_pack("{s:s, s:s}", "cluster", cl->name,
					       "skipped", "no unverified snapshot");
			break;
		}
		verify_report_init(&rep);
		rc = snapshot_verify_ex(cfg, cat, cl->name, id, &vo, &rep, e);
		jb->result = json_pack("{s:s, s:s, s:b, s:I, s:I, s:f}", "id", id,
				       "cluster", cl->name, "ok", rep.ok,
				       "files_checked", (json_int_t)rep.files_checked,
				       "files_bad", (json_int_t)rep.files_bad,
				       "seconds", rep.seconds);
		verify_report_release(&rep);
		break;
	}
	case CFG_JOB_PRUNE: {
		struct prune_report rep;
		int64_t job_id = -1;
		if (!jb->req.dry_run)
			rc = catalog_job_start_ex(cat, "prune", cl->name, jb->req.trigger,
						  sched, NULL, &job_id, e);
		if (rc)
			break;
		rc = prune_cluster(cfg, cl, cat, jb->req.dry_run, catalog_now(), &rep, e);
		if (job_id >= 0) {
			struct err je;
			err_init(&je);
			catalog_job_finish(cat, job_id, rc ? "failed" : "ok", rc ? e : NULL, &je);
		}
		json_t *items = json_array();
		for (size_t i = 0; i < rep.n_items; i++)
			json_array_append_new(items, json_pack("{s:s, s:b, s:s}", "id", rep.items[i].id,
							       "delete", rep.items[i].delete,
							       "why", rep.items[i].why));
		jb->result = json_pack("{s:s, s:b, s:I, s:I, s:o}", "cluster", cl->name,
				       "dry_run", jb->req.dry_run, "deleted", (json_int_t)rep.n_deleted,
				       "kept", (json_int_t)rep.n_kept, "items", items);
		prune_report_release(&rep);
		break;
	}
	case CFG_JOB_DRILL: {
		struct drill_report *rep = xcalloc(1, sizeof(*rep));
		struct drill_opts o = {
			.snapshot_id = jb->req.snapshot_id[0] ? jb->req.snapshot_id : NULL,
			.trigger = jb->req.trigger, .schedule = sched, .abort_flag = &jb->abort,
		};
		drill_report_init(rep);
		rc = drill_run(cfg, cl, cat, &o, rep, e);
		jb->result = json_pack("{s:s, s:I, s:s?, s:b, s:f, s:f}", "cluster", cl->name,
				       "drill_id", (json_int_t)rep->drill_id, "snapshot_id",
				       rep->snapshot_id[0] ? rep->snapshot_id : NULL,
				       "passed", rep->passed, "rto_s", rep->rto_s, "rpo_s", rep->rpo_s);
		free(rep);
		break;
	}
	}
	return rc;
}

static void *job_main(void *arg)
{
	struct job *jb = arg;
	struct catalog *cat = NULL;
	char tag[160];

	snprintf(tag, sizeof(tag), "%s:%s", jobs_kind_name(jb->req.kind), jb->req.cluster);
	log_set_job(tag);
	err_init(&jb->err);
	if (catalog_open(cfg_ref_config(jb->cfg)->catalog, &cat, &jb->err) == 0)
		job_run(jb, cat, &jb->err);
	if (err_is_set(&jb->err))
		log_error(MOD, "%s job of '%s' failed: %s", jobs_kind_name(jb->req.kind),
			  jb->req.cluster, jb->err.msg);
	catalog_close(cat);
	log_set_job(NULL);
	pthread_mutex_lock(&jb->runner->lock);
	jb->done = true;
	pthread_cond_broadcast(&jb->runner->changed);
	pthread_mutex_unlock(&jb->runner->lock);
	return NULL;
}

bool jobs_is_running(struct jobs *j, enum cfg_job kind, const char *cluster)
{
	bool busy = false;
	pthread_mutex_lock(&j->lock);
	for (struct job *jb = j->list; jb; jb = jb->next)
		if (!jb->done && jb->req.kind == kind && strcmp(jb->req.cluster, cluster) == 0)
			busy = true;
	pthread_mutex_unlock(&j->lock);
	return busy;
}

int jobs_start(struct jobs *j, struct cfg_ref *cfg, const struct job_req *r,
	       uint64_t *id, struct err *e)
{
	struct job *jb;

	if (jobs_is_running(j, r->kind, r->cluster))
		return err_set(e, ERR_BUSY, "a %s job of cluster '%s' is already running",
			       jobs_kind_name(r->kind), r->cluster);
	jb = xcalloc(1, sizeof(*jb));
	jb->req = *r;
	jb->runner = j;
	jb->cfg = cfg_ref_get(cfg);
	jb->started_at = jobs_now();
	pthread_mutex_lock(&j->lock);
	jb->id = j->next_id++;
	if (pthread_create(&jb->thread, NULL, job_main, jb) != 0) {
		pthread_mutex_unlock(&j->lock);
		cfg_ref_put(jb->cfg);
		free(jb);
		return err_set(e, ERR_INTERNAL, "unable to start a job thread");
	}
	jb->next = j->list;
	j->list = jb;
	*id = jb->id;
	pthread_mutex_unlock(&j->lock);
	log_info(MOD, "started %s job of '%s' (%s%s%s)", jobs_kind_name(r->kind), r->cluster,
		 r->trigger, r->schedule[0] ? " " : "", r->schedule);
	return 0;
}

static void job_free(struct job *jb)
{
	pthread_join(jb->thread, NULL);
	json_decref(jb->result);
	cfg_ref_put(jb->cfg);
	free(jb);
}

int jobs_wait(struct jobs *j, uint64_t id, json_t **result, struct err *job_err)
{
	struct job *jb = NULL, **pp;

	pthread_mutex_lock(&j->lock);
	for (jb = j->list; jb && jb->id != id; jb = jb->next)
		;
	if (!jb) {
		pthread_mutex_unlock(&j->lock);
		return err_set(job_err, ERR_NOT_FOUND, "no job %llu", (unsigned long long)id);
	}
	jb->waited = true;
	while (!jb->done)
		pthread_cond_wait(&j->changed, &j->lock);
	for (pp = &j->list; *pp != jb; pp = &(*pp)->next)
		;
	*pp = jb->next;
	pthread_mutex_unlock(&j->lock);
	*result = json_incref(jb->result);
	*job_err = jb->err;
	int rc = jb->err.code;
	job_free(jb);
	return rc;
}

int jobs_reap(struct jobs *j)
{
	struct job *done = NULL, **pp;
	int n = 0;

	pthread_mutex_lock(&j->lock);
	for (pp = &j->list; *pp;) {
		struct job *jb = *pp;
		if (jb->done && !jb->waited) {
			*pp = jb->next;
			jb->next = done;
			done = jb;
		} else {
			pp = &jb->next;
		}
	}
	pthread_mutex_unlock(&j->lock);
	while (done) {
		struct job *next = done->next;
		job_free(done);
		done = next;
		n++;
	}
	return n;
}

json_t *jobs_list(struct jobs *j)
{
	json_t *a = json_array();
	pthread_mutex_lock(&j->lock);
	for (struct job *jb = j->list; jb; jb = jb->next)
		if (!jb->done)
			json_array_append_new(a, json_pack("{s:s, s:s, s:s, s:s, s:f}",
							   "kind", jobs_kind_name(jb->req.kind),
							   "cluster", jb->req.cluster,
							   "trigger", jb->req.trigger,
							   "schedule", jb->req.schedule,
							   "started_at", jb->started_at));
	pthread_mutex_unlock(&j->lock);
	return a;
}

void jobs_abort_all(struct jobs *j)
{
	pthread_mutex_lock(&j->lock);
	for (struct job *jb = j->list; jb; jb = jb->next)
		jb->abort = 1;
	pthread_mutex_unlock(&j->lock);
}

void jobs_free(struct jobs *j)
{
	if (!j)
		return;
	/* Jobs someone waits for (a control connection) are removed by that
	 * waiter: stop the control server before calling this. */
	pthread_mutex_lock(&j->lock);
	for (;;) {
		bool running = false;
		for (struct job *jb = j->list; jb; jb = jb->next)
			running |= !jb->done;
		if (!running)
			break;
		pthread_cond_wait(&j->changed, &j->lock);
	}
	pthread_mutex_unlock(&j->lock);
	jobs_reap(j);
	pthread_mutex_destroy(&j->lock);
	pthread_cond_destroy(&j->changed);
	free(j);
}
