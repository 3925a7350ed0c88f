/* SPDX-License-Identifier: MIT */
/*
 * privsep/sup/dispatch.c - write dispatch: a FIFO of jobs and the pool of
 * seteuid writers that serve them.  The same job interface serves LMTP
 * deliveries and any later per-user write.
 *
 * Runs in:  the supervisor.
 * Trust:    a job's uid was checked by the userdb; psep_msg_recv checks it
 *           again in the writer.  A writer that dies or overruns
 *           writer_timeout costs only the job it held (a tempfail).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "privsep/sup/sup_int.h"
#include "writer/writer.h"

struct sup_writer {
	struct sup_job *job;
	struct event *timer;
};

static void wr_ready(struct sup_child *c);
static void wr_message(struct sup_child *c, struct psep_msg *m);
static void wr_exited(struct sup_child *c, int wstatus);

static const struct sup_child_ops wr_ops = {
	.ready = wr_ready,
	.message = wr_message,
	.exited = wr_exited,
};

void
sup_job_free(struct sup_job **jp)
{
	struct sup_job *job = *jp;

	if (job == NULL)
		return;
	*jp = NULL;
	if (job->memfd >= 0)
		close(job->memfd);
	free(job->req);
	free(job);
}

static void
job_finish(struct sup *sup, struct sup_job *job, const struct psep_write_rep *rep,
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
	struct sup_child *c = arg;

	(void)fd;
	(void)what;
	sup_child_kill(c, "writer_timeout exceeded");
}

static void
wr_spawn(struct sup *sup)
{
	struct psep_spawn sp = {
		.role = PSEP_ROLE_WRITER_SETEUID,
		.main = writer_seteuid_main,
		.arg = &sup->set,
	};
	struct sup_writer *w = xcalloc(1, sizeof(*w));
	struct sup_child *c = sup_child_spawn(sup, &sp, &wr_ops, w);

	if (c == NULL) {
		free(w);
		return;
	}
	w->timer = evtimer_new(sup->base, wr_timeout, c);
	if (w->timer == NULL)
		fatalx("evtimer_new");
}

void
sup_writers_start(struct sup *sup)
{
	unsigned n = sup_children_count(sup, PSEP_ROLE_WRITER_SETEUID, true);

	for (; n < sup->set.seteuid_workers; n++)
		wr_spawn(sup);
}

static bool
wr_idle(const struct sup_child *c)
{
	const struct sup_writer *w = c->owner;

	return c->role == PSEP_ROLE_WRITER_SETEUID && c->state == PSEP_STATE_READY &&
	       !c->retired && !c->dead && w->job == NULL;
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
	evtimer_add(w->timer, &tv);
	/* A failed send kills the writer; wr_exited then fails the job. */
	(void)sup_child_send(c, PSEP_WRITE_REQ, job->id, job->req, job->req_len,
			     job->memfd);
}

/* Give queued jobs to idle writers, in order. */
static void
dispatch_run(struct sup *sup)
{
	struct sup_child *c;

	TAILQ_FOREACH(c, &sup->children, link) {
		struct sup_job *job = TAILQ_FIRST(&sup->queue);

		if (job == NULL)
			return;
		if (!wr_idle(c))
			continue;
		TAILQ_REMOVE(&sup->queue, job, link);
		wr_start_job(c, job);
	}
}

void
sup_dispatch_submit(struct sup *sup, struct sup_job *job)
{
	sup->jobs_running++;
	TAILQ_INSERT_TAIL(&sup->queue, job, link);
	dispatch_run(sup);
}

bool
sup_dispatch_idle(struct sup *sup)
{
	return sup->jobs_running == 0;
}

static void
wr_ready(struct sup_child *c)
{
	sup_check_ready(c->sup);
	dispatch_run(c->sup);
}

static void
wr_reply(struct sup_child *c, const struct psep_msg *m)
{
	struct sup_writer *w = c->owner;
	struct sup_job *job = w->job;

	if (job == NULL || job->id != m->hdr.id) {
		sup_child_kill(c, "reply to a request it does not hold");
		return;
	}
	w->job = NULL;
	evtimer_del(w->timer);
	job_finish(c->sup, job, &m->u.write_rep, NULL);
	if (c->retired)
		sup_child_retire(c);
	dispatch_run(c->sup);
}

static void
wr_message(struct sup_child *c, struct psep_msg *m)
{
	switch ((enum psep_type)m->hdr.type) {
	case PSEP_WRITE_REP:
		wr_reply(c, m);
		break;
	case PSEP_TEST_REP:
		break;
	case PSEP_HELLO_REQ:
	case PSEP_HELLO_REP:
	case PSEP_LOG:
	case PSEP_CLIENT_FD:
	case PSEP_SHUTDOWN:
	case PSEP_RCPT_REQ:
	case PSEP_RCPT_REP:
	case PSEP_DELIVER_REQ:
	case PSEP_DELIVER_REP:
	case PSEP_WRITE_REQ:
	case PSEP_SESSION_END:
	case PSEP_TEST_REQ:
		sup_child_kill(c, "unexpected message type");
		break;
	}
}

static void
wr_exited(struct sup_child *c, int wstatus)
{
	struct sup_writer *w = c->owner;
	struct sup_job *job = w->job;

	w->job = NULL;
	event_free(w->timer);
	free(w);
	c->owner = NULL;
	if (job != NULL) {
		char why[96];

		if (WIFSIGNALED(wstatus))
			snprintf(why, sizeof(why), "writer pid %ld killed by signal %d",
				 (long)c->pid, WTERMSIG(wstatus));
		else
			snprintf(why, sizeof(why), "writer pid %ld exited", (long)c->pid);
		job_finish(c->sup, job, NULL, why);
	}
	sup_child_gone(c);
	dispatch_run(c->sup);
}

/* Retire writers: idle ones stop now, busy ones after their job. */
void
sup_writers_retire(struct sup *sup)
{
	struct sup_child *c;

	TAILQ_FOREACH(c, &sup->children, link) {
		struct sup_writer *w = c->owner;

		if (c->role != PSEP_ROLE_WRITER_SETEUID || c->retired)
			continue;
		if (w->job == NULL)
			sup_child_retire(c);
		else
			c->retired = true;
	}
}
