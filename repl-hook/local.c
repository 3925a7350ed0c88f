/* SPDX-License-Identifier: MIT */
/*
 * repl-hook/local.c - the requests sync.c makes through the supervisor:
 * commands run on this server (PSEP_REPL_REQ) and the list of users
 * (PSEP_USERS_REQ), matched to their replies by id; and what sync.c asks
 * of change capture (watch.c, reached through hook_notify).
 *
 * Runs in:  repl-hook.  Sends on the supervisor link (privsep/link.h)
 *           held in struct hook; no other system call.
 * Trust:    replies went through psep_msg_recv; one whose id matches no
 *           request (or a request of the other kind) is dropped.
 * Order:    each request gets exactly one callback: its reply, or the "no
 *           answer" call when the supervisor went away (hook_local_fail_all).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "privsep/link.h"
#include "privsep/privsep.h"
#include "repl-hook/core_int.h"

enum lreq_kind {
	LREQ_REPL = 0,
	LREQ_USERS = 1,
};

/* A request to the supervisor for sync.c. */
struct hook_lreq {
	TAILQ_ENTRY(hook_lreq) entry;
	uint64_t id;
	enum lreq_kind kind;
	hook_local_cb local_cb;
	hook_users_cb users_cb;
	void *arg;
};

static struct hook_lreq *
lreq_take(struct hook *h, uint64_t id, enum lreq_kind kind)
{
	struct hook_lreq *q;

	TAILQ_FOREACH(q, &h->lreqs, entry) {
		if (q->id == id && q->kind == kind) {
			TAILQ_REMOVE(&h->lreqs, q, entry);
			return q;
		}
	}
	return NULL;
}

static void
lreq_add(struct hook *h, uint64_t id, enum lreq_kind kind,
	 hook_local_cb lcb, hook_users_cb ucb, void *arg)
{
	struct hook_lreq *q = xcalloc(1, sizeof(*q));

	q->id = id;
	q->kind = kind;
	q->local_cb = lcb;
	q->users_cb = ucb;
	q->arg = arg;
	TAILQ_INSERT_TAIL(&h->lreqs, q, entry);
}

void
hook_local_init(struct hook *h, struct psep_link *link)
{
	h->link = link;
	TAILQ_INIT(&h->lreqs);
}

int
hook_local_send(struct hook *h, const struct psep_repl_cmd *cmd, int memfd,
		hook_local_cb cb, void *arg)
{
	struct psep_repl_req req;
	uint64_t id = ++h->next_lreq_id;

	memset(&req, 0, sizeof(req));
	req.cmd = *cmd;
	memset(req.cmd.peer, 0, sizeof(req.cmd.peer));
	if (psep_link_send(h->link, PSEP_REPL_REQ, id, &req, sizeof(req), memfd) == -1)
		return -1;
	lreq_add(h, id, LREQ_REPL, cb, NULL, arg);
	return 0;
}

int
hook_users_request(struct hook *h, hook_users_cb cb, void *arg)
{
	struct psep_users_req req;
	uint64_t id = ++h->next_lreq_id;

	memset(&req, 0, sizeof(req));
	if (psep_link_send(h->link, PSEP_USERS_REQ, id, &req, sizeof(req), -1) == -1)
		return -1;
	lreq_add(h, id, LREQ_USERS, NULL, cb, arg);
	return 0;
}

void
hook_local_reply(struct hook *h, struct psep_msg *m)
{
	enum lreq_kind kind = m->hdr.type == PSEP_USERS_REP ? LREQ_USERS : LREQ_REPL;
	struct hook_lreq *q = lreq_take(h, m->hdr.id, kind);
	int fd = m->fd;

	if (q == NULL) {
		log_debug("reply %s id=%llu matches no request",
			  psep_type_name(m->hdr.type), (unsigned long long)m->hdr.id);
		return;
	}
	m->fd = -1;   /* the callback owns it */
	if (kind == LREQ_REPL)
		q->local_cb(h, &m->u.repl_rep, fd, q->arg);
	else
		q->users_cb(h, m->u.users_rep.err, fd, q->arg);
	free(q);
}

void
hook_local_fail_all(struct hook *h)
{
	struct hook_lreq *q;

	while ((q = TAILQ_FIRST(&h->lreqs)) != NULL) {
		TAILQ_REMOVE(&h->lreqs, q, entry);
		if (q->kind == LREQ_REPL)
			q->local_cb(h, NULL, -1, q->arg);
		else
			q->users_cb(h, EPIPE, -1, q->arg);
		free(q);
	}
}

/* ---- change capture, for sync.c ------------------------------------------ */

bool
hook_capture_on(const struct hook *h)
{
	return h->notify->capture_on != NULL && h->notify->capture_on(h);
}

bool
hook_capture_user_busy(const struct hook *h, const char *user)
{
	return h->notify->capture_busy != NULL && h->notify->capture_busy(h, user);
}

unsigned
hook_capture_boxes_reply(struct hook *h, const char *user, int fd)
{
	return h->notify->capture_boxes != NULL ? h->notify->capture_boxes(h, user, fd) : 0;
}
