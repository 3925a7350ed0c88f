/* SPDX-License-Identifier: MIT */
/*
 * privsep/link.h - an unprivileged child's link to the supervisor on its
 * libevent loop: a non-blocking SEQPACKET socket with a bounded, ordered
 * send queue and a read callback that hands validated messages to the
 * owner; and the epoll-only event base every such child runs.
 *
 * Runs in:  lmtpd, repld, repl-hook (one event_base, one thread).
 * Trust:    only psep_msg_recv() reads the link (peer role supervisor,
 *           state ready); a bad message or EOF ends the link and the owner
 *           is told through on_close.  Types a supervisor may not send
 *           never reach dispatch.
 * Order:    while the send queue is not empty every message goes into it,
 *           so the supervisor sees them in the order they were made.
 */
#ifndef STOWD_PRIVSEP_LINK_H
#define STOWD_PRIVSEP_LINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "privsep/msg.h"

struct event_base;
struct psep_link;

/* Messages read per wake-up at most (dispatch calls between two
 * batch_end calls). */
#define PSEP_LINK_READ_BATCH 64

/* What the link calls back.  None of them may free the link. */
struct psep_link_ops {
	/* One validated message.  m is borrowed until the call returns; to
	 * keep m->fd, take it and set m->fd to -1 (else it is closed).
	 * Required. */
	void (*dispatch)(void *arg, struct psep_msg *m);
	/* After the last message of a wake-up (also after on_close).
	 * Optional. */
	void (*batch_end)(void *arg);
	/* The send queue became empty.  Optional. */
	void (*drained)(void *arg);
	/* The link is dead (already logged): err is 0 if the supervisor closed
	 * it, else the errno of the failed send or receive (EPROTO for a bad
	 * message).  Called once.  Required. */
	void (*on_close)(void *arg, int err);
};

/*
 * Watch fd (made non-blocking; stays the caller's, not closed) on base.
 * queue_max bounds the body bytes waiting in the send queue.  ops and arg
 * are borrowed for the link's life.  Caller frees with psep_link_free.
 * Fatal if the events cannot be set up.
 */
struct psep_link *psep_link_new(struct event_base *base, int fd, size_t queue_max,
				const struct psep_link_ops *ops, void *arg);

/* Free link, its queue (and the fds in it); NULL-safe, clears *link. */
void psep_link_free(struct psep_link **link);

/*
 * Send a message now if nothing is queued, else queue a copy of body and a
 * duplicate of fd (-1: none).  fd stays the caller's in every case.
 * Returns 0, or -1 with errno: EPIPE (link dead), ENOBUFS (queue full,
 * logged), an errno of sendmsg (logged) or of the fd duplicate.
 */
int psep_link_send(struct psep_link *link, uint16_t type, uint64_t id,
		   const void *body, size_t len, int fd);

/* True if nothing waits in the send queue. */
bool psep_link_idle(const struct psep_link *link);

/* True once the link failed or was closed by the supervisor. */
bool psep_link_dead(const struct psep_link *link);

/*
 * A new event_base for a child: epoll only (no select/poll fallback), no
 * locking, environment ignored.  Caller frees with event_base_free.  Fatal
 * if there is none.
 */
struct event_base *psep_event_base_new(void);

#endif
