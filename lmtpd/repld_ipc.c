/* SPDX-License-Identifier: MIT */
/*
 * lmtpd/repld_ipc.c - repld's link to the supervisor: receives accepted
 * replication sockets (PSEP_CLIENT_FD), replies (PSEP_REPL_REP) and
 * PSEP_SHUTDOWN; sends PSEP_REPL_REQ through an ordered outgoing queue.
 *
 * Runs in:  repld.
 * Trust:    only psep_msg_recv() reads the link; on EPROTO the process
 *           exits, on EOF it exits at once.  A reply whose id is unknown
 *           (its connection is gone) is dropped by repld_cmd_reply.
 * Order:    while the queue is not empty every request goes into it, so
 *           the supervisor sees requests in the order they were made.  A
 *           queued SAVE body memfd is owned by the queue until sent.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "lmtpd/repld_int.h"
#include "privsep/privsep.h"

#define IPC_OUT_MAX 4096u          /* queued requests */
#define IPC_READ_BATCH 64

struct ipc_out {
	TAILQ_ENTRY(ipc_out) entry;
	uint64_t id;
	int fd;
	struct psep_repl_req req;
};

struct repld_ipc {
	struct repld_server *srv;
	int fd;
	bool dead;
	struct event *ev_read;
	struct event *ev_write;
	struct event *ev_retry;           /* after ETOOMANYREFS */
	TAILQ_HEAD(, ipc_out) outq;
	size_t n_out;
	struct psep_msg msg;
};

/* Worth retrying later: a full socket buffer, or too many fds in flight. */
static bool
again(int err)
{
	return err == EAGAIN || err == EWOULDBLOCK || err == ENOBUFS ||
	       err == EINTR || err == ETOOMANYREFS;
}

static int
ipc_submit(void *ctx, uint64_t id, const struct psep_repl_cmd *cmd, int body_fd)
{
	struct repld_ipc *ipc = ctx;
	struct psep_repl_req req;
	struct ipc_out *o;

	memset(&req, 0, sizeof(req));
	req.cmd = *cmd;
	if (ipc->dead) {
		errno = EPIPE;
		goto fail;
	}
	if (TAILQ_EMPTY(&ipc->outq)) {
		if (psep_msg_send(ipc->fd, PSEP_REPL_REQ, id, &req, sizeof(req),
				  body_fd) == 0) {
			if (body_fd >= 0)
				close(body_fd);
			return 0;
		}
		if (!again(errno)) {
			log_err("send REPL_REQ to supervisor: %s", strerrordesc_np(errno));
			goto fail;
		}
	}
	if (ipc->n_out >= IPC_OUT_MAX) {
		log_warn("queue to supervisor full");
		errno = ENOBUFS;
		goto fail;
	}
	o = xcalloc(1, sizeof(*o));
	o->id = id;
	o->fd = body_fd;
	o->req = req;
	TAILQ_INSERT_TAIL(&ipc->outq, o, entry);
	ipc->n_out++;
	if (!evtimer_pending(ipc->ev_retry, NULL))
		event_add(ipc->ev_write, NULL);
	return 0;
fail:
	if (body_fd >= 0)
		close(body_fd);
	return -1;
}

static void
ipc_write_cb(evutil_socket_t fd, short what, void *arg)
{
	struct repld_ipc *ipc = arg;
	struct ipc_out *o;

	(void)fd;
	(void)what;
	while ((o = TAILQ_FIRST(&ipc->outq)) != NULL) {
		if (psep_msg_send(ipc->fd, PSEP_REPL_REQ, o->id, &o->req,
				  sizeof(o->req), o->fd) == -1) {
			if (errno == ETOOMANYREFS) {
				struct timeval tv = { 0, 20000 };

				event_del(ipc->ev_write);
				evtimer_add(ipc->ev_retry, &tv);
				return;
			}
			if (again(errno))
				return;
			log_err("send REPL_REQ to supervisor: %s", strerrordesc_np(errno));
			ipc->dead = true;
			repld_server_stop(ipc->srv, 1);
			return;
		}
		TAILQ_REMOVE(&ipc->outq, o, entry);
		ipc->n_out--;
		if (o->fd >= 0)
			close(o->fd);
		free(o);
	}
	event_del(ipc->ev_write);
	repld_server_maybe_exit(ipc->srv);
}

static bool
ipc_idle(void *ctx)
{
	struct repld_ipc *ipc = ctx;

	return ipc == NULL || TAILQ_EMPTY(&ipc->outq);
}

const struct repld_backend_ops repld_ipc_backend = {
	.submit = ipc_submit,
	.idle = ipc_idle,
};

static void
ipc_dispatch(struct repld_ipc *ipc, struct psep_msg *m)
{
	char listener[sizeof(m->u.client_fd.listener)];
	int fd;

	switch ((enum psep_type)m->hdr.type) {
	case PSEP_CLIENT_FD:
		fd = m->fd;
		m->fd = -1;
		memcpy(listener, m->u.client_fd.listener, sizeof(listener));
		listener[sizeof(listener) - 1] = '\0';
		if (ipc->srv->shutting_down) {
			close(fd);
			break;
		}
		repld_conn_start(ipc->srv, fd, listener);
		break;
	case PSEP_REPL_REP:
		fd = m->fd;
		m->fd = -1;
		repld_cmd_reply(ipc->srv, m->hdr.id, &m->u.repl_rep, fd);
		break;
	case PSEP_SHUTDOWN:
		repld_server_shutdown(ipc->srv);
		break;
	case PSEP_HELLO_REQ:
	case PSEP_HELLO_REP:
	case PSEP_LOG:
	case PSEP_RCPT_REQ:
	case PSEP_RCPT_REP:
	case PSEP_DELIVER_REQ:
	case PSEP_DELIVER_REP:
	case PSEP_WRITE_REQ:
	case PSEP_WRITE_REP:
	case PSEP_SESSION_END:
	case PSEP_TEST_REQ:
	case PSEP_TEST_REP:
	case PSEP_REPL_REQ:
	case PSEP_REPL_OP_REQ:
	case PSEP_REPL_OP_REP:
	case PSEP_EVENT_REQ:
	case PSEP_EVENT_REP:
	case PSEP_USERS_REQ:
	case PSEP_USERS_REP:
	default:
		log_warn("unexpected %s from supervisor", psep_type_name(m->hdr.type));
		break;
	}
}

static void
ipc_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct repld_ipc *ipc = arg;
	const char *why = NULL;
	int i;

	(void)what;
	for (i = 0; i < IPC_READ_BATCH && !ipc->dead; i++) {
		if (psep_msg_recv(fd, PSEP_ROLE_SUPERVISOR, PSEP_STATE_READY,
				  &ipc->msg, &why) == -1) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
				return;
			ipc->dead = true;
			event_del(ipc->ev_read);
			if (errno == ECONNRESET) {
				log_info("supervisor closed the link, exiting");
				repld_server_stop(ipc->srv, 0);
			} else {
				log_err("bad message from supervisor: %s",
					why ? why : strerrordesc_np(errno));
				repld_server_stop(ipc->srv, 1);
			}
			return;
		}
		ipc_dispatch(ipc, &ipc->msg);
		psep_msg_clear(&ipc->msg);
	}
}

struct repld_ipc *
repld_ipc_new(struct repld_server *srv, int fd)
{
	struct repld_ipc *ipc = xcalloc(1, sizeof(*ipc));
	int fl;

	fl = fcntl(fd, F_GETFL);
	if (fl == -1 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) == -1)
		fatal("fcntl(ipc, O_NONBLOCK)");
	ipc->srv = srv;
	ipc->fd = fd;
	ipc->msg.fd = -1;
	TAILQ_INIT(&ipc->outq);
	ipc->ev_read = event_new(srv->base, fd, EV_READ | EV_PERSIST, ipc_read_cb, ipc);
	ipc->ev_write = event_new(srv->base, fd, EV_WRITE | EV_PERSIST, ipc_write_cb, ipc);
	ipc->ev_retry = event_new(srv->base, -1, 0, ipc_write_cb, ipc);
	if (ipc->ev_read == NULL || ipc->ev_write == NULL || ipc->ev_retry == NULL ||
	    event_add(ipc->ev_read, NULL) == -1)
		fatalx("cannot watch the supervisor link");
	return ipc;
}

void
repld_ipc_free(struct repld_ipc **ipcp)
{
	struct repld_ipc *ipc = *ipcp;
	struct ipc_out *o;

	if (ipc == NULL)
		return;
	while ((o = TAILQ_FIRST(&ipc->outq)) != NULL) {
		TAILQ_REMOVE(&ipc->outq, o, entry);
		if (o->fd >= 0)
			close(o->fd);
		free(o);
	}
	event_free(ipc->ev_read);
	event_free(ipc->ev_write);
	event_free(ipc->ev_retry);
	psep_msg_clear(&ipc->msg);
	free(ipc);
	*ipcp = NULL;
}
