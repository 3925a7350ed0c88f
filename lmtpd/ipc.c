/* SPDX-License-Identifier: MIT */
/*
 * lmtpd/ipc.c - the front-end's use of its supervisor link (privsep/link.h,
 * owned by the privsep/child.h skeleton): receives client sockets and replies; sends RCPT/DELIVER
 * requests and SESSION_END through the link's ordered outgoing queue;
 * matches replies to sessions by request id, with a timeout.
 *
 * Runs in:  lmtpd.
 * Trust:    only psep_msg_recv() reads the link; on EPROTO the process
 *           exits, on EOF it exits at once (privsep/child.c).  A reply whose id is unknown
 *           (its session is gone) is dropped.
 * Order:    while the queue is not empty every message goes into it, so
 *           the supervisor sees them in the order they were made.  A queued
 *           body memfd is held by a duplicate until it was sent.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "lmtpd/server_int.h"
#include "privsep/link.h"
#include "privsep/privsep.h"

#define IPC_BUCKETS 1024u

enum pend_kind {
	PEND_RCPT = 0,
	PEND_DELIVER = 1,
};

struct ipc_pend {
	uint64_t id;
	enum pend_kind kind;
	struct lmtp_session *sess;
	uint32_t cookie;
	uint64_t deadline_ms;
	LIST_ENTRY(ipc_pend) hash;
	TAILQ_ENTRY(ipc_pend) by_time;
	TAILQ_ENTRY(ipc_pend) by_sess;
};

TAILQ_HEAD(ipc_pend_list, ipc_pend);

/* Backend data of a session: its requests in flight. */
struct ipc_sess {
	struct ipc_pend_list pend;
};

struct lmtp_ipc {
	struct lmtp_server *srv;
	struct psep_link *link;
	struct event *ev_timer;
	LIST_HEAD(, ipc_pend) buckets[IPC_BUCKETS];
	struct ipc_pend_list timeq[2];    /* per kind, in deadline order */
	size_t n_pend;
	uint64_t next_id;
};

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Send now if nothing is queued, else queue (fd duplicated until sent). */
static int
ipc_send(struct lmtp_ipc *ipc, uint16_t type, uint64_t id, const void *body,
	 size_t len, const struct lmtp_fdref *fd)
{
	return psep_link_send(ipc->link, type, id, body, len, fd ? fd->fd : -1);
}

/* ---- requests in flight ----------------------------------------------- */

static struct ipc_pend *
pend_add(struct lmtp_ipc *ipc, enum pend_kind kind, struct lmtp_session *s,
	 uint32_t cookie)
{
	const struct lmtp_config *cfg = ipc->srv->cfg;
	struct ipc_sess *is = lmtp_session_backend_data(s);
	struct ipc_pend *p = xcalloc(1, sizeof(*p));
	struct timeval sec = { 1, 0 };

	if (is == NULL) {
		is = xcalloc(1, sizeof(*is));
		TAILQ_INIT(&is->pend);
		lmtp_session_set_backend_data(s, is);
	}
	p->id = ++ipc->next_id;
	p->kind = kind;
	p->sess = s;
	p->cookie = cookie;
	p->deadline_ms = now_ms() + (kind == PEND_RCPT ? cfg->rcpt_timeout_ms
						       : cfg->deliver_timeout_ms);
	LIST_INSERT_HEAD(&ipc->buckets[p->id % IPC_BUCKETS], p, hash);
	TAILQ_INSERT_TAIL(&ipc->timeq[kind], p, by_time);
	TAILQ_INSERT_TAIL(&is->pend, p, by_sess);
	if (ipc->n_pend++ == 0)
		evtimer_add(ipc->ev_timer, &sec);
	return p;
}

static void
pend_remove(struct lmtp_ipc *ipc, struct ipc_pend *p)
{
	struct ipc_sess *is = lmtp_session_backend_data(p->sess);

	LIST_REMOVE(p, hash);
	TAILQ_REMOVE(&ipc->timeq[p->kind], p, by_time);
	TAILQ_REMOVE(&is->pend, p, by_sess);
	ipc->n_pend--;
	free(p);
}

static struct ipc_pend *
pend_find(struct lmtp_ipc *ipc, uint64_t id)
{
	struct ipc_pend *p;

	LIST_FOREACH(p, &ipc->buckets[id % IPC_BUCKETS], hash)
		if (p->id == id)
			return p;
	return NULL;
}

/* Hand a result to the session that asked; p is freed first. */
static void
pend_complete(struct lmtp_ipc *ipc, struct ipc_pend *p,
	      const struct dlv_result *r, const char *guid)
{
	struct lmtp_session *s = p->sess;
	enum pend_kind kind = p->kind;
	uint32_t cookie = p->cookie;

	pend_remove(ipc, p);
	if (kind == PEND_RCPT)
		lmtp_session_rcpt_done(s, cookie, r);
	else
		lmtp_session_deliver_done(s, cookie, r, guid);
}

static void
ipc_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct lmtp_ipc *ipc = arg;
	struct dlv_result r;
	struct ipc_pend *p;
	uint64_t now = now_ms();
	int k;

	(void)fd;
	(void)what;
	for (k = PEND_RCPT; k <= PEND_DELIVER; k++) {
		while ((p = TAILQ_FIRST(&ipc->timeq[k])) != NULL &&
		       p->deadline_ms <= now) {
			log_warn("session=%s id=%llu no reply from supervisor",
				 lmtp_session_id(p->sess), (unsigned long long)p->id);
			memset(&r, 0, sizeof(r));
			r.status = DLV_TEMPFAIL;
			r.code = 451;
			xstrlcpy(r.enhanced, k == PEND_RCPT ? "4.4.3" : "4.4.7",
				 sizeof(r.enhanced));
			xstrlcpy(r.text, k == PEND_RCPT ? "Recipient look-up timed out" :
				 "Delivery timed out, the message may have been delivered",
				 sizeof(r.text));
			pend_complete(ipc, p, &r, NULL);
		}
	}
	if (ipc->n_pend == 0)
		evtimer_del(ipc->ev_timer);
}

/* ---- backend operations for sessions ---------------------------------- */

static int
ipc_be_rcpt(void *ctx, struct lmtp_session *s, uint32_t cookie,
	    const char *address)
{
	struct lmtp_ipc *ipc = ctx;
	struct psep_rcpt_req req;
	struct ipc_pend *p;

	memset(&req, 0, sizeof(req));
	if (!xstrlcpy(req.session, lmtp_session_id(s), sizeof(req.session)) ||
	    !xstrlcpy(req.address, address, sizeof(req.address))) {
		errno = ENAMETOOLONG;
		return -1;
	}
	p = pend_add(ipc, PEND_RCPT, s, cookie);
	if (ipc_send(ipc, PSEP_RCPT_REQ, p->id, &req, sizeof(req), NULL) == -1) {
		pend_remove(ipc, p);
		return -1;
	}
	return 0;
}

static int
ipc_be_deliver(void *ctx, struct lmtp_session *s, const struct lmtp_delivery *d)
{
	static union {
		struct psep_deliver_req req;
		unsigned char raw[PSEP_MSG_MAX];
	} u;
	struct lmtp_ipc *ipc = ctx;
	size_t len = sizeof(u.req) + d->prefix_len;
	struct ipc_pend *p;

	if (d->prefix_len > PSEP_PREFIX_MAX || len > PSEP_MSG_MAX - sizeof(struct psep_hdr)) {
		errno = EMSGSIZE;
		return -1;
	}
	memset(&u.req, 0, sizeof(u.req));
	if (!xstrlcpy(u.req.session, d->session, sizeof(u.req.session)) ||
	    !xstrlcpy(u.req.address, d->address, sizeof(u.req.address))) {
		errno = ENAMETOOLONG;
		return -1;
	}
	u.req.rcpt_index = d->rcpt_index;
	u.req.prefix_len = (uint32_t)d->prefix_len;
	u.req.body_size = d->body_size;
	u.req.body_vsize = d->body_vsize;
	xstrlcpy(u.req.msgid, d->msgid != NULL ? d->msgid : "", sizeof(u.req.msgid));
	memcpy(u.req.prefix, d->prefix, d->prefix_len);
	p = pend_add(ipc, PEND_DELIVER, s, d->rcpt_index);
	if (ipc_send(ipc, PSEP_DELIVER_REQ, p->id, &u, len, d->body) == -1) {
		pend_remove(ipc, p);
		return -1;
	}
	return 0;
}

static void
ipc_be_end(void *ctx, struct lmtp_session *s)
{
	struct lmtp_ipc *ipc = ctx;
	struct ipc_sess *is = lmtp_session_backend_data(s);
	struct psep_session_end end;
	struct ipc_pend *p;

	if (is != NULL) {
		while ((p = TAILQ_FIRST(&is->pend)) != NULL)
			pend_remove(ipc, p);
		free(is);
		lmtp_session_set_backend_data(s, NULL);
	}
	if (psep_link_dead(ipc->link))
		return;
	memset(&end, 0, sizeof(end));
	xstrlcpy(end.session, lmtp_session_id(s), sizeof(end.session));
	(void)ipc_send(ipc, PSEP_SESSION_END, ++ipc->next_id, &end, sizeof(end), NULL);
}

const struct lmtp_backend_ops lmtp_ipc_backend = {
	.rcpt = ipc_be_rcpt,
	.deliver = ipc_be_deliver,
	.end = ipc_be_end,
};

/* ---- receiving -------------------------------------------------------- */

static void
ipc_reply(struct lmtp_ipc *ipc, const struct psep_msg *m, enum pend_kind kind)
{
	struct ipc_pend *p = pend_find(ipc, m->hdr.id);

	if (p == NULL || p->kind != kind) {
		log_debug("reply %s id=%llu matches no request",
			  psep_type_name(m->hdr.type), (unsigned long long)m->hdr.id);
		return;
	}
	if (kind == PEND_RCPT)
		pend_complete(ipc, p, &m->u.rcpt_rep.result, NULL);
	else
		pend_complete(ipc, p, &m->u.deliver_rep.result, m->u.deliver_rep.guid);
}

void
lmtp_ipc_dispatch(struct lmtp_ipc *ipc, struct psep_msg *m)
{
	int fd;

	switch (m->hdr.type) {
	case PSEP_CLIENT_FD:
		fd = m->fd;
		m->fd = -1;
		lmtp_conn_start(ipc->srv, fd,
				strncmp(m->u.client_fd.listener, "tcp:", 4) == 0);
		break;
	case PSEP_METRICS_CLIENT:
		fd = m->fd;
		m->fd = -1;
		lmtp_metrics_client(ipc->srv->metrics, fd);
		break;
	case PSEP_METRICS_REP:
		lmtp_metrics_reply(ipc->srv->metrics, m);
		break;
	case PSEP_RCPT_REP:
		ipc_reply(ipc, m, PEND_RCPT);
		break;
	case PSEP_DELIVER_REP:
		ipc_reply(ipc, m, PEND_DELIVER);
		break;
	default:
		log_warn("unexpected %s from supervisor", psep_type_name(m->hdr.type));
		break;
	}
}

struct lmtp_ipc *
lmtp_ipc_new(struct lmtp_server *srv, struct psep_link *link)
{
	struct lmtp_ipc *ipc = xcalloc(1, sizeof(*ipc));
	size_t i;

	ipc->srv = srv;
	for (i = 0; i < IPC_BUCKETS; i++)
		LIST_INIT(&ipc->buckets[i]);
	TAILQ_INIT(&ipc->timeq[PEND_RCPT]);
	TAILQ_INIT(&ipc->timeq[PEND_DELIVER]);
	ipc->ev_timer = event_new(srv->base, -1, EV_PERSIST, ipc_timer_cb, ipc);
	if (ipc->ev_timer == NULL)
		fatalx("cannot watch the supervisor link");
	ipc->link = link;
	return ipc;
}

void
lmtp_ipc_free(struct lmtp_ipc **ipcp)
{
	struct lmtp_ipc *ipc = *ipcp;

	if (ipc == NULL)
		return;
	/* pending requests belong to sessions, freed before (conn.c) */
	event_free(ipc->ev_timer);
	free(ipc);
	*ipcp = NULL;
}
