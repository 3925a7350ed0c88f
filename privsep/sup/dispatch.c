/* SPDX-License-Identifier: MIT */
/*
 * privsep/sup/dispatch.c - write dispatch: one FIFO of jobs served by the
 * writers of the configured delivery_mode.  The same job interface serves
 * LMTP deliveries (WRITE_REQ) and replication operations (REPL_OP_REQ).
 *
 *   seteuid: a pool of seteuid_workers long-lived workers; a job goes to
 *            any idle one, but at most delivery_max_workers_per_user (and
 *            never all of them) are busy for one uid at once: the first queued job of a uid
 *            below that share goes first, so a user whose writes stall
 *            (a held index lock) delays only their own mail.
 *   fork:    one child per uid, forked on demand, kept fork_idle_timeout
 *            after its last job, recycled after fork_max_requests; at most
 *            fork_max_children exist at once (idle ones are evicted least
 *            recently used first; when all are busy, jobs wait).  Jobs of one
 *            uid are served in order by that uid's child.
 *
 * Limits:   delivery_max_queued jobs wait at most, delivery_max_queued_per_user
 *           of one uid (sup_dispatch_room; the caller answers a 4xx).
 *
 * Runs in:  the supervisor.
 * Trust:    a job's uid was checked by the userdb; psep_msg_recv checks it
 *           again in the writer.  A writer that dies or overruns
 *           writer_timeout costs only the job it held (a tempfail).  A
 *           writer killed for what it sent while it held a job (a message
 *           the spec table refused, a reply or stamp for another request)
 *           fails that job as refused: its caller may answer for good.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "privsep/sup/sup_int.h"

struct sup_writer {
	struct sup_job *job;
	struct event *timer;      /* writer_timeout of the job in progress */
	struct event *idle;       /* fork mode: fork_idle_timeout */
	uid_t uid;                /* fork mode: the only uid it serves */
	struct timespec job_started;
	unsigned requests;
	struct timespec last_used;
};

static void wr_ready(struct sup_child *c);
static void wr_message(struct sup_child *c, struct psep_msg *m);
static void wr_exited(struct sup_child *c, int wstatus);
static void dispatch_run(struct sup *sup);
static struct sup_child *fork_find(struct sup *sup, uid_t uid);
static void tmpl_ready(struct sup *sup);
static void tmpl_gone(struct sup *sup, bool in_startup);

static const struct sup_template_hooks tmpl_hooks = {
	.ready = tmpl_ready,
	.gone = tmpl_gone,
};

static const struct sup_child_ops wr_ops = {
	.ready = wr_ready,
	.message = wr_message,
	.exited = wr_exited,
};

static bool
is_writer(const struct sup_child *c)
{
	return c->role == PSEP_ROLE_WRITER_SETEUID || c->role == PSEP_ROLE_WRITER_CHILD;
}

void
sup_job_free(struct sup_job **jp)
{
	struct sup_job *job = *jp;

	if (job == NULL)
		return;
	*jp = NULL;
	if (job->memfd >= 0)
		close(job->memfd);
	sup_body_put(&job->body);
	free(job->req);
	free(job);
}

int
sup_job_fd(const struct sup_job *job)
{
	return job->body != NULL ? job->body->fd : job->memfd;
}

/* ---- per-uid load ------------------------------------------------------ */

static struct sup_uid_load *
load_find(struct sup *sup, uid_t uid, bool create)
{
	struct sup_uid_load *l;

	LIST_FOREACH(l, &sup->loads, link)
		if (l->uid == uid)
			return l;
	if (!create)
		return NULL;
	l = xcalloc(1, sizeof(*l));
	l->uid = uid;
	LIST_INSERT_HEAD(&sup->loads, l, link);
	return l;
}

static void
load_gc(struct sup_uid_load *l)
{
	if (l->queued == 0 && l->busy == 0) {
		LIST_REMOVE(l, link);
		free(l);
	}
}

/* job joins (+1) or leaves (-1) the queue. */
static void
load_queued(struct sup *sup, const struct sup_job *job, int delta)
{
	struct sup_uid_load *l = load_find(sup, job->uid, delta > 0);

	if (delta > 0) {
		l->queued++;
		sup->n_queued++;
		return;
	}
	l->queued--;
	sup->n_queued--;
	load_gc(l);
}

static void
queue_remove(struct sup *sup, struct sup_job *job)
{
	TAILQ_REMOVE(&sup->queue, job, link);
	load_queued(sup, job, -1);
}

int
sup_dispatch_room(struct sup *sup, uid_t uid, const char **setting_out)
{
	const struct sup_uid_load *l = load_find(sup, uid, false);

	if (sup->set.delivery_max_queued != 0 &&
	    sup->n_queued >= sup->set.delivery_max_queued) {
		*setting_out = "delivery_max_queued";
		return -1;
	}
	if (l != NULL && sup->set.delivery_max_queued_per_user != 0 &&
	    l->queued >= sup->set.delivery_max_queued_per_user) {
		*setting_out = "delivery_max_queued_per_user";
		return -1;
	}
	return 0;
}

static void
job_finish(struct sup *sup, struct sup_job *job, struct psep_msg *rep,
	   const char *failure)
{
	job->done(job, rep, failure);
	sup_job_free(&job);
	sup->jobs_running--;
	sup_check_stopped(sup);
}

static void
wr_timeout(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	sup_child_kill(arg, "writer_timeout exceeded");
}

static void
wr_idle_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct sup_child *c = arg;
	struct sup_writer *w = c->owner;

	(void)fd;
	(void)what;
	if (w->job == NULL) {
		log_debug("writer-child pid=%ld uid=%u idle: stopping", (long)c->pid,
			  (unsigned)w->uid);
		sup_child_retire(c);
	}
}

static struct sup_child *
wr_spawn(struct sup *sup, const struct psep_spawn *sp, uid_t uid)
{
	struct sup_writer *w = xcalloc(1, sizeof(*w));
	struct sup_child *c = sp->role == PSEP_ROLE_WRITER_CHILD ?
		sup_template_fork(sup, sp, &wr_ops, w) :
		sup_child_spawn(sup, sp, &wr_ops, w);

	if (c == NULL) {
		free(w);
		return NULL;
	}
	w->uid = uid;
	w->timer = evtimer_new(sup->base, wr_timeout, c);
	w->idle = evtimer_new(sup->base, wr_idle_timeout, c);
	if (w->timer == NULL || w->idle == NULL)
		fatalx("evtimer_new");
	clock_gettime(CLOCK_MONOTONIC, &w->last_used);
	return c;
}

void
sup_writers_start(struct sup *sup)
{
	struct psep_spawn sp = {
		.role = PSEP_ROLE_WRITER_SETEUID,
	};
	unsigned n = sup_children_count(sup, PSEP_ROLE_WRITER_SETEUID, true);

	sup_template_start(sup, &tmpl_hooks);
	if (sup->set.delivery_mode != POLICY_MODE_SETEUID)
		return;
	for (; n < sup->set.seteuid_workers; n++)
		(void)wr_spawn(sup, &sp, 0);
}

/* Fail every queued job for uid (its writer cannot be had). */
static void
fail_queued_uid(struct sup *sup, uid_t uid, const char *why)
{
	struct sup_job *job, *next;

	for (job = TAILQ_FIRST(&sup->queue); job != NULL; job = next) {
		next = TAILQ_NEXT(job, link);
		if (job->uid != uid)
			continue;
		queue_remove(sup, job);
		job_finish(sup, job, NULL, why);
	}
}

/* Fail the queued jobs whose uid has no writer child: none can be forked
 * now. */
static void
fork_failed(struct sup *sup, const char *why)
{
	struct sup_job *job, *next;

	for (job = TAILQ_FIRST(&sup->queue); job != NULL; job = next) {
		next = TAILQ_NEXT(job, link);
		if (fork_find(sup, job->uid) != NULL)
			continue;
		queue_remove(sup, job);
		job_finish(sup, job, NULL, why);
	}
}

/* Have the template fork the child for job's uid.  Returns 0 or -1 (the
 * request could not be made). */
static int
fork_spawn(struct sup *sup, const struct sup_job *job)
{
	struct psep_spawn sp = {
		.role = PSEP_ROLE_WRITER_CHILD,
	};

	sp.creds = job->creds;
	return wr_spawn(sup, &sp, job->uid) != NULL ? 0 : -1;
}

static bool
wr_usable(const struct sup_child *c)
{
	const struct sup_writer *w = c->owner;

	return c->state == PSEP_STATE_READY && !c->retired && !c->dead &&
	       w->job == NULL;
}

static void
wr_start_job(struct sup_child *c, struct sup_job *job)
{
	struct sup_writer *w = c->owner;
	struct timeval tv = {
		.tv_sec = (time_t)(c->sup->set.writer_timeout / 1000),
		.tv_usec = (suseconds_t)(c->sup->set.writer_timeout % 1000) * 1000,
	};

	w->job = job;
	job->started = true;
	w->requests++;
	load_find(c->sup, job->uid, true)->busy++;
	clock_gettime(CLOCK_MONOTONIC, &w->job_started);
	evtimer_del(w->idle);
	evtimer_add(w->timer, &tv);
#ifdef STOWD_TEST_HOOKS
	/* a stamp comes only from an LMTP save */
	if (c->sup->test_op != 0 && (job->type == PSEP_WRITE_REQ ||
				     (c->sup->test_op != PSEP_TEST_DIE_AFTER_STAMP &&
				      c->sup->test_op != PSEP_TEST_STALL_AFTER_STAMP &&
				      c->sup->test_op != PSEP_TEST_DIE_AFTER_SAVE))) {
		struct psep_test_req t = { .op = c->sup->test_op };

		c->sup->test_op = 0;
		(void)sup_child_send(c, PSEP_TEST_REQ, 0, &t, sizeof(t), -1);
	}
#endif
	/* A failed send kills the writer; wr_exited then fails the job. */
	(void)sup_child_send(c, job->type, job->id, job->req, job->req_len,
			     sup_job_fd(job));
}

/* The writer of job is gone or done with it. */
static void
load_unbusy(struct sup *sup, const struct sup_job *job)
{
	struct sup_uid_load *l = load_find(sup, job->uid, false);

	if (l != NULL && l->busy > 0) {
		l->busy--;
		load_gc(l);
	}
}

/* The first queued job whose uid has fewer than
 * delivery_max_workers_per_user busy writers (but always one writer left
 * for the other users when there are two or more), or NULL. */
static struct sup_job *
seteuid_next(struct sup *sup)
{
	unsigned max = sup->set.delivery_max_workers_per_user;
	unsigned workers = sup->set.seteuid_workers;
	struct sup_job *job;

	if (max != 0 && workers > 1 && max > workers - 1)
		max = workers - 1;
	TAILQ_FOREACH(job, &sup->queue, link) {
		const struct sup_uid_load *l = load_find(sup, job->uid, false);

		if (max == 0 || l == NULL || l->busy < max)
			return job;
	}
	return NULL;
}

static void
seteuid_run(struct sup *sup)
{
	struct sup_child *c;

	TAILQ_FOREACH(c, &sup->children, link) {
		struct sup_job *job;

		if (TAILQ_EMPTY(&sup->queue))
			return;
		if (c->role != PSEP_ROLE_WRITER_SETEUID || !wr_usable(c))
			continue;
		if ((job = seteuid_next(sup)) == NULL)
			return;
		queue_remove(sup, job);
		wr_start_job(c, job);
	}
}

static struct sup_child *
fork_find(struct sup *sup, uid_t uid)
{
	struct sup_child *c;

	TAILQ_FOREACH(c, &sup->children, link)
		if (c->role == PSEP_ROLE_WRITER_CHILD && !c->retired &&
		    ((struct sup_writer *)c->owner)->uid == uid)
			return c;
	return NULL;
}

static struct sup_child *
fork_lru_idle(struct sup *sup)
{
	struct sup_child *c, *best = NULL;

	TAILQ_FOREACH(c, &sup->children, link) {
		const struct sup_writer *w = c->owner, *bw;

		if (c->role != PSEP_ROLE_WRITER_CHILD || !wr_usable(c))
			continue;
		bw = best ? best->owner : NULL;
		if (bw == NULL || w->last_used.tv_sec < bw->last_used.tv_sec ||
		    (w->last_used.tv_sec == bw->last_used.tv_sec &&
		     w->last_used.tv_nsec < bw->last_used.tv_nsec))
			best = c;
	}
	return best;
}

/* True if a job before job in the queue has the same uid. */
static bool
uid_queued_before(struct sup *sup, const struct sup_job *job)
{
	const struct sup_job *j;

	for (j = TAILQ_FIRST(&sup->queue); j != job; j = TAILQ_NEXT(j, link))
		if (j->uid == job->uid)
			return true;
	return false;
}

/* One pass over the queue.  Returns true if the queue changed under it
 * (a uid's jobs failed) and another pass is needed. */
static bool
fork_pass(struct sup *sup)
{
	unsigned live = sup_children_count(sup, PSEP_ROLE_WRITER_CHILD, false);
	unsigned retiring = live - sup_children_count(sup, PSEP_ROLE_WRITER_CHILD, true);
	unsigned waiting = 0;
	int can_fork = -2;   /* sup_template_ready, asked at the first miss */
	struct sup_job *job, *next;

	for (job = TAILQ_FIRST(&sup->queue); job != NULL; job = next) {
		struct sup_child *c = fork_find(sup, job->uid);

		next = TAILQ_NEXT(job, link);
		if (c != NULL) {
			if (wr_usable(c)) {
				sup->ctr.fork_hits++;
				queue_remove(sup, job);
				wr_start_job(c, job);
			}
			continue;
		}
		if (uid_queued_before(sup, job))
			continue;
		if (live >= sup->set.fork_max_children) {
			waiting++;
			continue;
		}
		if (can_fork == -2)
			can_fork = sup_template_ready(sup, &tmpl_hooks);
		if (can_fork == 0)
			continue;   /* the template is starting: kicked when ready */
		if (can_fork < 0) {
			fail_queued_uid(sup, job->uid, "cannot create a writer child");
			return true;
		}
		sup->ctr.fork_misses++;
		if (fork_spawn(sup, job) < 0) {
			fail_queued_uid(sup, job->uid, "cannot create a writer child");
			return true;
		}
		live++;
	}
	/* Make room: stop least recently used idle children. */
	while (waiting > retiring) {
		struct sup_child *c = fork_lru_idle(sup);

		if (c == NULL)
			break;
		log_debug("writer-child pid=%ld uid=%u evicted", (long)c->pid,
			  (unsigned)((struct sup_writer *)c->owner)->uid);
		sup_child_retire(c);
		sup->ctr.fork_evictions++;
		retiring++;
	}
	return false;
}

static void
fork_run(struct sup *sup)
{
	while (fork_pass(sup))
		;
}

static void
dispatch_run(struct sup *sup)
{
	if (sup->set.delivery_mode == POLICY_MODE_FORK)
		fork_run(sup);
	else
		seteuid_run(sup);
}

void
sup_dispatch_submit(struct sup *sup, struct sup_job *job)
{
	sup->jobs_running++;
	TAILQ_INSERT_TAIL(&sup->queue, job, link);
	load_queued(sup, job, +1);
	dispatch_run(sup);
}

bool
sup_dispatch_idle(struct sup *sup)
{
	return sup->jobs_running == 0;
}

static void
tmpl_ready(struct sup *sup)
{
	dispatch_run(sup);
}

/* The template died: a new one is started by the next miss (or the
 * pools' respawn); one that died before it was ready cannot be trusted
 * to come up, so the jobs waiting for it fail now (4xx). */
static void
tmpl_gone(struct sup *sup, bool in_startup)
{
	if (in_startup)
		fork_failed(sup, "writer template died during start-up");
	dispatch_run(sup);
}

static void
wr_ready(struct sup_child *c)
{
	sup_check_ready(c->sup);
	dispatch_run(c->sup);
}

static void
wr_job_done(struct sup_child *c)
{
	struct sup_writer *w = c->owner;
	struct sup *sup = c->sup;
	struct timeval tv = {
		.tv_sec = (time_t)(sup->set.fork_idle_timeout / 1000),
		.tv_usec = (suseconds_t)(sup->set.fork_idle_timeout % 1000) * 1000,
	};

	clock_gettime(CLOCK_MONOTONIC, &w->last_used);
	if (c->role == PSEP_ROLE_WRITER_CHILD) {
		if (sup->set.fork_max_requests != 0 &&
		    w->requests >= sup->set.fork_max_requests)
			sup_child_retire(c);
		else
			evtimer_add(w->idle, &tv);
	}
	if (c->retired)
		sup_child_retire(c);
}

/* c sent what it must not while it held its job: kill it, and that job
 * fails as refused.  A writer already dead (its last words drained by
 * wr_exited) is left as it is. */
static void
wr_refuse(struct sup_child *c, const char *why)
{
	if (c->dead)
		return;
	c->refused = true;
	sup_child_kill(c, why);
}

static void
wr_reply(struct sup_child *c, struct psep_msg *m)
{
	struct sup_writer *w = c->owner;
	struct sup_job *job = w->job;

	if (job == NULL || job->id != m->hdr.id || m->hdr.type != job->type + 1) {
		wr_refuse(c, "reply to a request it does not hold");
		return;
	}
	w->job = NULL;
	evtimer_del(w->timer);
	load_unbusy(c->sup, job);
	if (job->type == PSEP_WRITE_REQ) {
		struct timespec now;

		clock_gettime(CLOCK_MONOTONIC, &now);
		sup_stats_save(c->sup, (uint64_t)((now.tv_sec - w->job_started.tv_sec) * 1000000 +
						  (now.tv_nsec - w->job_started.tv_nsec) / 1000));
	}
	job_finish(c->sup, job, m, NULL);
	wr_job_done(c);
	dispatch_run(c->sup);
}

/* An early stamp: the job stays with the writer until its WRITE_REP. */
static void
wr_stamp(struct sup_child *c, struct psep_msg *m)
{
	struct sup_writer *w = c->owner;
	struct sup_job *job = w->job;
	const struct psep_write_req *req = job != NULL ? job->req : NULL;

	if (job == NULL || job->id != m->hdr.id || job->type != PSEP_WRITE_REQ ||
	    !req->early_stamp || job->stamp_seen ||
	    strcmp(m->u.write_rep.guid, req->guid) != 0) {
		wr_refuse(c, "stamp for a request it does not hold");
		return;
	}
	job->stamp_seen = true;
	if (job->stamped != NULL)
		job->stamped(job, &m->u.write_rep);
}

static void
wr_message(struct sup_child *c, struct psep_msg *m)
{
	switch (m->hdr.type) {
	case PSEP_WRITE_STAMP:
		wr_stamp(c, m);
		break;
	case PSEP_WRITE_REP:
	case PSEP_REPL_OP_REP:
	case PSEP_QUOTA_REP:
	case PSEP_WATCH_OP_REP:
		wr_reply(c, m);
		break;
	case PSEP_TEST_REP:
		break;
	default:
		wr_refuse(c, "unexpected message type");
		break;
	}
}

/* A writer's last words: what it sent before it died (an early stamp,
 * even its reply) may still wait in its socket when it is reaped; without
 * them the supervisor would not know that the save's event must go out,
 * or that the save was done. */
static void
wr_drain(struct sup_child *c)
{
	struct sup_writer *w = c->owner;
	struct psep_msg m;
	const char *why;

	for (int i = 0; i < 8 && w->job != NULL; i++) {
		if (psep_msg_recv(c->ipc, c->role, c->state, &m, &why) < 0)
			return;
		if (m.hdr.type == PSEP_WRITE_STAMP || m.hdr.type == PSEP_WRITE_REP ||
		    m.hdr.type == PSEP_REPL_OP_REP)
			wr_message(c, &m);   /* c is dead: a mismatch kills nothing */
		psep_msg_clear(&m);
	}
}

static void
wr_exited(struct sup_child *c, int wstatus)
{
	struct sup_writer *w = c->owner;
	struct sup_job *job;
	uid_t uid = w->uid;

	wr_drain(c);
	job = w->job;

	event_free(w->timer);
	event_free(w->idle);
	free(w);
	c->owner = NULL;
	/* A child that dies before it is ready would be forked again and
	 * again for the same queued jobs: fail them instead. */
	if (c->role == PSEP_ROLE_WRITER_CHILD && c->state == PSEP_STATE_NEW)
		fail_queued_uid(c->sup, uid, "writer child died during start-up");
	if (job != NULL) {
		char why[96];

		if (c->refused)
			snprintf(why, sizeof(why), "writer pid %ld killed: what it sent "
				 "was refused", (long)c->pid);
		else if (WIFSIGNALED(wstatus))
			snprintf(why, sizeof(why), "writer pid %ld killed by signal %d",
				 (long)c->pid, WTERMSIG(wstatus));
		else
			snprintf(why, sizeof(why), "writer pid %ld exited", (long)c->pid);
		job->refused = c->refused;
		load_unbusy(c->sup, job);
		job_finish(c->sup, job, NULL, why);
	}
	sup_child_gone(c);
	dispatch_run(c->sup);
}

/* Retire writers: idle ones stop now, busy ones after their job.  Jobs
 * still queued go to the writers of the current settings. */
void
sup_writers_retire(struct sup *sup)
{
	struct sup_child *c;

	sup_template_retire(sup);
	TAILQ_FOREACH(c, &sup->children, link) {
		struct sup_writer *w = c->owner;

		if (!is_writer(c) || c->retired)
			continue;
		if (w->job == NULL)
			sup_child_retire(c);
		else
			c->retired = true;
	}
}

unsigned
sup_writers_expected(const struct sup *sup)
{
	return sup->set.delivery_mode == POLICY_MODE_SETEUID ? sup->set.seteuid_workers : 0;
}
