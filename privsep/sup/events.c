/* SPDX-License-Identifier: MIT */
/*
 * privsep/sup/events.c - events handed to repl-hook (PSEP_EVENT_REQ) and
 * their answers: queued while repl-hook starts, sent to the current ready
 * one, ended by its EVENT_REP, its exit or a timeout (writer_timeout +
 * the event's timeout + a grace), each outcome reported exactly once.
 *
 * Runs in:  the supervisor.
 * Trust:    an EVENT_REP (validated by psep_msg_recv) must match an event
 *           sent to that very process; at most SUP_MAX_EVENTS wait, at most
 *           SUP_MAX_EVENT_FDS of them holding a body fd (queued while
 *           repl-hook is not ready: the fd goes with the event).
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "privsep/sup/sup_int.h"

#define SUP_MAX_EVENTS 4096      /* events queued for or at repl-hook */
#define EVENT_GRACE_MS 5000      /* beyond writer_timeout + timeout_ms */

struct sup_event_wait {
	TAILQ_ENTRY(sup_event_wait) link;
	struct sup *sup;
	uint64_t id;
	struct sup_child *hook;       /* sent to (referenced), NULL while queued */
	struct psep_event_req *req;   /* until sent */
	size_t req_len;
	int fd;                       /* until sent, or -1 */
	struct event *timer;
	sup_event_fn cb;
	void *arg;
};

struct sup_child *
sup_hook_current(struct sup *sup)
{
	return sup_child_find(sup, PSEP_ROLE_REPL_HOOK, true);
}

bool
sup_hook_expected(struct sup *sup)
{
	if (sup->set.n_replicas == 0)
		return false;
	return !sup->stopping || sup_child_find(sup, PSEP_ROLE_REPL_HOOK, false) != NULL;
}

static void
ev_close_fd(struct sup_event_wait *w)
{
	if (w->fd < 0)
		return;
	close(w->fd);
	w->fd = -1;
	w->sup->n_event_fds--;
}

static void
ev_end(struct sup_event_wait *w, enum psep_event_status st, uint32_t acks)
{
	struct sup *sup = w->sup;

	TAILQ_REMOVE(&sup->events, w, link);
	sup->n_events--;
	event_free(w->timer);
	ev_close_fd(w);
	free(w->req);
	sup_child_unref(&w->hook);
	w->cb(sup, st, acks, w->arg);
	free(w);
	sup_check_stopped(sup);
}

static void
ev_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct sup_event_wait *w = arg;

	(void)fd;
	(void)what;
	log_warn("repl-hook did not answer event id=%016llx user=%s guid=%s in time",
		 (unsigned long long)w->id, w->req != NULL ? w->req->cmd.user : "-",
		 w->req != NULL ? w->req->cmd.guid : "-");
	ev_end(w, PSEP_EV_FAILED, 0);
}

static void
ev_transmit(struct sup_event_wait *w, struct sup_child *hook)
{
	w->hook = hook;
	sup_child_ref(hook);
	/* A failed send kills the hook; its exit fails this wait. */
	(void)sup_child_send(hook, PSEP_EVENT_REQ, w->id, w->req, w->req_len, w->fd);
	ev_close_fd(w);
}

int
sup_event_send(struct sup *sup, const struct psep_repl_cmd *cmd, const char *prefix,
	       size_t prefix_len, int body_fd, uint32_t want_acks, uint64_t timeout_ms,
	       sup_event_fn cb, void *arg)
{
	struct sup_event_wait *w;
	struct sup_child *hook;
	uint64_t ms = sup->set.writer_timeout + timeout_ms + EVENT_GRACE_MS;
	struct timeval tv = { .tv_sec = (time_t)(ms / 1000),
			      .tv_usec = (suseconds_t)(ms % 1000) * 1000 };

	if (!sup_hook_expected(sup) || sup->n_events >= SUP_MAX_EVENTS ||
	    prefix_len > PSEP_PREFIX_MAX)
		return -1;
	if (body_fd >= 0 && cmd->op == PSEP_REPL_SAVE &&
	    sup->n_event_fds >= SUP_MAX_EVENT_FDS) {
		unsigned more = 0;

		if (log_limited(&sup->rl_events, &more))
			log_warn("user=%s %u events with a body wait for repl-hook "
				 "(the most): this one fails (%u more since the last "
				 "such line); the mailbox is repaired by the next sync",
				 cmd->user, SUP_MAX_EVENT_FDS, more);
		return -1;
	}
	w = xcalloc(1, sizeof(*w));
	w->fd = -1;
	if (body_fd >= 0 && cmd->op == PSEP_REPL_SAVE) {
		w->fd = fcntl(body_fd, F_DUPFD_CLOEXEC, 3);
		if (w->fd < 0) {
			free(w);
			return -1;
		}
		sup->n_event_fds++;
	}
	w->sup = sup;
	w->id = ++sup->next_id;
	w->cb = cb;
	w->arg = arg;
	w->req_len = sizeof(*w->req) + prefix_len;
	w->req = xcalloc(1, w->req_len);
	w->req->cmd = *cmd;
	w->req->want_acks = want_acks;
	w->req->timeout_ms = timeout_ms;
	w->req->prefix_len = (uint32_t)prefix_len;
	if (prefix_len > 0)
		memcpy(w->req->prefix, prefix, prefix_len);
	w->timer = evtimer_new(sup->base, ev_timeout, w);
	if (w->timer == NULL)
		fatalx("evtimer_new");
	evtimer_add(w->timer, &tv);
	TAILQ_INSERT_TAIL(&sup->events, w, link);
	sup->n_events++;
	hook = sup_hook_current(sup);
	if (hook != NULL)
		ev_transmit(w, hook);
	return 0;
}

bool
sup_events_idle(const struct sup *sup)
{
	return sup->n_events == 0;
}

void
sup_events_hook_ready(struct sup *sup)
{
	struct sup_child *hook = sup_hook_current(sup);
	struct sup_event_wait *w;

	if (hook == NULL)
		return;
	TAILQ_FOREACH(w, &sup->events, link)
		if (w->hook == NULL)
			ev_transmit(w, hook);
}

void
sup_events_hook_gone(struct sup *sup, struct sup_child *hook)
{
	struct sup_event_wait *w, *next;
	bool none = !sup_hook_expected(sup);

	for (w = TAILQ_FIRST(&sup->events); w != NULL; w = next) {
		next = TAILQ_NEXT(w, link);
		if (w->hook == hook || (none && w->hook == NULL))
			ev_end(w, PSEP_EV_FAILED, 0);
	}
}

void
sup_events_reply(struct sup *sup, struct sup_child *hook, const struct psep_msg *m)
{
	struct sup_event_wait *w;

	TAILQ_FOREACH(w, &sup->events, link) {
		if (w->id == m->hdr.id && w->hook == hook) {
			ev_end(w, (enum psep_event_status)m->u.event_rep.status,
			       m->u.event_rep.acks);
			return;
		}
	}
	log_debug("late answer from repl-hook for event id=%016llx",
		  (unsigned long long)m->hdr.id);
}
