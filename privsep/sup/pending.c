/* SPDX-License-Identifier: MIT */
/*
 * privsep/sup/pending.c - the bounded queues of accepted clients waiting
 * for a front-end (lmtpd: sup->pending, repld: sup->repl_pending), and
 * handing one client socket to a front-end (PSEP_CLIENT_FD).
 *
 * Runs in:  the supervisor.
 * Trust:    the sockets are not read here; at most SUP_MAX_PENDING wait
 *           per queue, more are closed.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "privsep/sup/sup_int.h"

void
sup_pending_push(struct sup_pending_list *q, unsigned *n, int fd,
		 const char *listener, const char *kind)
{
	struct sup_pending *p;

	if (*n >= SUP_MAX_PENDING) {
		log_warn("no %s front-end ready and %u clients waiting: closing "
			 "connection listener=%s", kind, *n, listener);
		close(fd);
		return;
	}
	p = xcalloc(1, sizeof(*p));
	p->fd = fd;
	xstrlcpy(p->listener, listener, sizeof(p->listener));
	TAILQ_INSERT_TAIL(q, p, link);
	(*n)++;
}

int
sup_pending_take(struct sup_pending_list *q, unsigned *n, char *listener)
{
	struct sup_pending *p = TAILQ_FIRST(q);
	int fd;

	if (p == NULL)
		return -1;
	TAILQ_REMOVE(q, p, link);
	(*n)--;
	fd = p->fd;
	memcpy(listener, p->listener, SUP_LISTENER_MAX);
	free(p);
	return fd;
}

void
sup_pending_drop(struct sup_pending_list *q, unsigned *n)
{
	char listener[SUP_LISTENER_MAX];
	int fd;

	while ((fd = sup_pending_take(q, n, listener)) >= 0)
		close(fd);
	*n = 0;
}

int
sup_client_send(struct sup_child *c, int fd, const char *listener)
{
	struct psep_client_fd msg;

	memset(&msg, 0, sizeof(msg));
	xstrlcpy(msg.listener, listener, sizeof(msg.listener));
	return sup_child_send(c, PSEP_CLIENT_FD, 0, &msg, sizeof(msg), fd);
}
