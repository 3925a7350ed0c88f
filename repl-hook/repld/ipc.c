/* SPDX-License-Identifier: MIT */
/*
 * repl-hook/repld/ipc.c - repld's use of its supervisor link (privsep/link.h,
 * owned by the privsep/child.h skeleton): receives accepted replication
 * sockets (PSEP_CLIENT_FD) and replies (PSEP_REPL_REP); sends PSEP_REPL_REQ through the
 * link's ordered outgoing queue.
 *
 * Runs in:  repld.
 * Trust:    only psep_msg_recv() reads the link; on EPROTO the process
 *           exits, on EOF it exits at once (privsep/child.c).  A reply whose id is unknown
 *           (its connection is gone) is dropped by repld_cmd_reply.
 * Order:    while the queue is not empty every request goes into it, so
 *           the supervisor sees requests in the order they were made.  A
 *           queued SAVE body memfd is held by a duplicate until sent.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "repl-hook/repld/repld_int.h"
#include "privsep/link.h"
#include "privsep/privsep.h"

struct repld_ipc {
	struct repld_server *srv;
	struct psep_link *link;
};

static int
ipc_submit(void *ctx, uint64_t id, const struct psep_repl_cmd *cmd, int body_fd)
{
	struct repld_ipc *ipc = ctx;
	struct psep_repl_req req;
	int rc, err;

	memset(&req, 0, sizeof(req));
	req.cmd = *cmd;
	rc = psep_link_send(ipc->link, PSEP_REPL_REQ, id, &req, sizeof(req), body_fd);
	err = errno;
	if (body_fd >= 0)
		close(body_fd);
	errno = err;
	return rc;
}

static bool
ipc_idle(void *ctx)
{
	struct repld_ipc *ipc = ctx;

	return ipc == NULL || psep_link_idle(ipc->link);
}

const struct repld_backend_ops repld_ipc_backend = {
	.submit = ipc_submit,
	.idle = ipc_idle,
};

void
repld_ipc_dispatch(struct repld_ipc *ipc, struct psep_msg *m)
{
	char listener[sizeof(m->u.client_fd.listener)];
	int fd;

	switch (m->hdr.type) {
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
	default:
		log_warn("unexpected %s from supervisor", psep_type_name(m->hdr.type));
		break;
	}
}

struct repld_ipc *
repld_ipc_new(struct repld_server *srv, struct psep_link *link)
{
	struct repld_ipc *ipc = xcalloc(1, sizeof(*ipc));

	ipc->srv = srv;
	ipc->link = link;
	return ipc;
}

void
repld_ipc_free(struct repld_ipc **ipcp)
{
	struct repld_ipc *ipc = *ipcp;

	if (ipc == NULL)
		return;
	free(ipc);
	*ipcp = NULL;
}
