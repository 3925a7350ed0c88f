/* SPDX-License-Identifier: MIT */
/*
 * privsep/sup/stats.c - the snapshot of the supervisor's counters (kept
 * by counters.c) with its gauges, the questions the supervisor asks
 * repl-hook (replica stats, a resync now) and the snapshot a front-end
 * turns into Prometheus metrics.
 *
 * Runs in:  the supervisor.
 * Trust:    repl-hook's answers went through psep_msg_recv; an answer whose
 *           id matches no question is dropped.  Nothing here parses text.
 */
#include <stdlib.h>
#include <string.h>

#include "privsep/sup/sup_int.h"

#define HOOKQ_STATS_MS 2000u

/* One question to repl-hook. */
struct sup_hookq {
	TAILQ_ENTRY(sup_hookq) link;
	struct sup *sup;
	uint64_t id;
	uint16_t type;                /* PSEP_STATS_REQ or PSEP_RESYNC_REQ */
	struct event *timer;
	bool sent;                    /* to a repl-hook (else: no one to ask) */
	sup_stats_fn stats_cb;
	sup_resync_fn resync_cb;
	void *arg;
};

/* ---- snapshot ------------------------------------------------------- */

void
sup_stats_fill(struct sup *sup, struct psep_counters *out)
{
	struct sup_job *j;
	uint64_t n = 0;

	*out = sup->ctr;
	out->start_time = (uint64_t)sup->started;
	TAILQ_FOREACH(j, &sup->queue, link)
		n++;
	out->queue_depth = n;
	out->jobs_running = sup->jobs_running;
	out->fork_cache_size = sup_children_count(sup, PSEP_ROLE_WRITER_CHILD, true);
	out->generation = sup->generation;
	out->replica_stats_ok = 0;
}

/* ---- questions to repl-hook -------------------------------------------- */

static void
hookq_end(struct sup_hookq *q, const struct psep_msg *m)
{
	struct sup *sup = q->sup;

	TAILQ_REMOVE(&sup->hookq, q, link);
	event_free(q->timer);
	if (q->type == PSEP_STATS_REQ)
		q->stats_cb(sup, m ? &m->u.stats_rep : NULL, q->arg);
	else
		q->resync_cb(sup, m ? &m->u.resync_rep : NULL, q->arg);
	free(q);
}

static void
hookq_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct sup_hookq *q = arg;

	(void)fd;
	(void)what;
	if (q->sent)
		log_warn("id=%llu repl-hook did not answer %s in time",
			 (unsigned long long)q->id, psep_type_name(q->type));
	hookq_end(q, NULL);
}

/* Send a question; the callbacks run from the loop even when it cannot
 * be sent (a zero timeout), so a caller never sees its callback at once. */
static void
hookq_send(struct sup *sup, uint16_t type, const void *body, size_t len,
	   uint64_t timeout_ms, struct sup_hookq *q)
{
	struct sup_child *hook = sup_hook_current(sup);
	struct timeval tv = { .tv_sec = (time_t)(timeout_ms / 1000),
			      .tv_usec = (suseconds_t)(timeout_ms % 1000) * 1000 };

	q->sup = sup;
	q->type = type;
	q->id = ++sup->hookq_next;
	q->timer = evtimer_new(sup->base, hookq_timeout, q);
	if (q->timer == NULL)
		fatalx("evtimer_new");
	TAILQ_INSERT_TAIL(&sup->hookq, q, link);
	q->sent = hook != NULL && sup_child_send(hook, type, q->id, body, len, -1) == 0;
	if (!q->sent) {
		tv.tv_sec = 0;
		tv.tv_usec = 0;
	}
	evtimer_add(q->timer, &tv);
}

void
sup_stats_ask(struct sup *sup, const char *user, sup_stats_fn cb, void *arg)
{
	struct sup_hookq *q = xcalloc(1, sizeof(*q));
	struct psep_stats_req req;

	memset(&req, 0, sizeof(req));
	xstrlcpy(req.user, user, sizeof(req.user));
	q->stats_cb = cb;
	q->arg = arg;
	hookq_send(sup, PSEP_STATS_REQ, &req, sizeof(req), HOOKQ_STATS_MS, q);
}

void
sup_resync_ask(struct sup *sup, const struct psep_resync_req *req,
	       uint64_t timeout_ms, sup_resync_fn cb, void *arg)
{
	struct sup_hookq *q = xcalloc(1, sizeof(*q));

	q->resync_cb = cb;
	q->arg = arg;
	hookq_send(sup, PSEP_RESYNC_REQ, req, sizeof(*req), timeout_ms, q);
}

void
sup_stats_hook_reply(struct sup *sup, const struct psep_msg *m)
{
	struct sup_hookq *q;

	TAILQ_FOREACH(q, &sup->hookq, link)
		if (q->id == m->hdr.id && q->type + 1 == m->hdr.type) {
			hookq_end(q, m);
			return;
		}
	log_debug("%s id=%llu matches no question", psep_type_name(m->hdr.type),
		  (unsigned long long)m->hdr.id);
}

void
sup_stats_hook_gone(struct sup *sup)
{
	struct sup_hookq *q;

	while ((q = TAILQ_FIRST(&sup->hookq)) != NULL)
		hookq_end(q, NULL);
}

/* ---- the metrics snapshot ---------------------------------------------- */

struct metrics_wait {
	struct sup_child *fe;         /* referenced */
	uint64_t id;
};

static void
metrics_answer(struct sup *sup, const struct psep_stats_rep *rep, void *arg)
{
	struct metrics_wait *w = arg;
	struct psep_metrics_rep *out = xcalloc(1, sizeof(*out));

	sup_stats_fill(sup, &out->c);
	if (rep != NULL) {
		out->repl = *rep;
		out->c.replica_stats_ok = 1;
	}
	if (!w->fe->dead)
		(void)sup_child_send(w->fe, PSEP_METRICS_REP, w->id, out, sizeof(*out), -1);
	sup_child_unref(&w->fe);
	free(out);
	free(w);
}

void
sup_metrics_request(struct sup_child *c, const struct psep_msg *m)
{
	struct metrics_wait *w = xcalloc(1, sizeof(*w));

	w->fe = c;
	w->id = m->hdr.id;
	sup_child_ref(c);
	if (c->sup->set.n_replicas == 0) {
		/* nothing to ask: an empty, fresh replica list */
		struct psep_stats_rep none;

		memset(&none, 0, sizeof(none));
		metrics_answer(c->sup, &none, w);
		return;
	}
	sup_stats_ask(c->sup, "", metrics_answer, w);
}
