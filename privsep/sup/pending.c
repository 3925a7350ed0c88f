/* SPDX-License-Identifier: MIT */
/*
 * privsep/sup/pending.c - the bounded queues of accepted clients waiting
 * for a front-end (lmtpd: sup->pending, repld: sup->repl_pending), and
 * handing one client socket to a front-end (PSEP_CLIENT_FD).
 *
 * Runs in:  the supervisor.
 * Trust:    the sockets are not read here; at most SUP_MAX_PENDING wait
 *           per queue, and never more than an eighth of RLIMIT_NOFILE (a
 *           queue that held the last fds would keep the front-end it
 *           waits for from being spawned); more are closed.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "privsep/sup/sup_int.h"

/* Clients one queue may hold. */
static unsigned
pending_max(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY ||
	    rl.rlim_cur / 8 >= SUP_MAX_PENDING)
		return SUP_MAX_PENDING;
	return rl.rlim_cur / 8 > 0 ? (unsigned)(rl.rlim_cur / 8) : 1;
}

void
sup_pending_push(struct sup_pending_list *q, unsigned *n, int fd,
		 const char *listener, const char *kind)
{
	static struct log_limit rl;
	struct sup_pending *p;
	unsigned skipped = 0;

	if (*n >= pending_max()) {
		if (log_limited(&rl, &skipped))
			log_warn("no %s front-end ready and %u clients waiting: closing "
				 "connection listener=%s (%u more since the last line; "
				 "the queue holds at most %u, an eighth of LimitNOFILE "
				 "up to %u)", kind, *n, listener, skipped, pending_max(),
				 SUP_MAX_PENDING);
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
