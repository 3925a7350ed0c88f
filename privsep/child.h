/* SPDX-License-Identifier: MIT */
/*
 * privsep/child.h - the skeleton every unprivileged event-loop child runs
 * (lmtpd, repld, repl-hook): HELLO, logging to the supervisor, the event
 * base, the supervisor link, PSEP_SHUTDOWN, the exit once idle, the loop
 * and the teardown.  The role gives only callbacks: its messages, "is any
 * work left", "begin winding down", set-up and teardown.
 *
 * Runs in:  lmtpd, repld, repl-hook, already dropped and sandboxed: the
 *           skeleton makes no system call beyond what HELLO, the link and
 *           libevent's epoll base already needed.
 * Trust:    only psep_msg_recv() reads the link (privsep/link.h); a bad
 *           message or EOF ends the loop (status 1, or 0 for EOF).
 * Order:    hello, log_init, event base, link, setup, loop; on SHUTDOWN
 *           the role's shutdown runs once, and the loop ends as soon as
 *           the role is idle and the queue to the supervisor is empty; then
 *           teardown, the link and the base are freed.
 */
#ifndef STOWD_PRIVSEP_CHILD_H
#define STOWD_PRIVSEP_CHILD_H

#include <stdbool.h>
#include <stddef.h>

#include "privsep/msg.h"

struct event_base;
struct psep_child;
struct psep_link;

/* What the skeleton calls back; arg is psep_child_args.arg.  None of them
 * may free the child. */
struct psep_child_ops {
	/* After HELLO, log_init, the event base and the link exist: build the
	 * role's state (psep_child_base, psep_child_link are valid).  Fatal
	 * errors exit through fatal().  Required. */
	void (*setup)(void *arg, struct psep_child *ch);
	/* One validated message other than PSEP_SHUTDOWN (see
	 * psep_link_ops.dispatch for m and its fd).  Required. */
	void (*dispatch)(void *arg, struct psep_msg *m);
	/* After the last message of a wake-up.  Optional. */
	void (*batch_end)(void *arg);
	/* True if the role has no work left (sessions, connections ...).
	 * Optional: no callback means always idle. */
	bool (*idle)(void *arg);
	/* PSEP_SHUTDOWN arrived (called once): start winding down.  The
	 * skeleton checks for the exit right after.  Optional. */
	void (*shutdown)(void *arg);
	/* The loop ended: free the role's state (the link and the base still
	 * exist, the link may be dead).  Optional. */
	void (*teardown)(void *arg);
};

struct psep_child_args {
	enum psep_role role;          /* for HELLO */
	const char *name;             /* log role name, static */
	bool debug;                   /* log_set_debug */
	size_t queue_max;             /* bytes queued to the supervisor */
	const struct psep_child_ops *ops;
	void *arg;                    /* borrowed, passed to every callback */
};

/*
 * Run a child on its supervisor socket ipc (stays the caller's): returns
 * the exit status: 1 if HELLO failed, the loop failed or the link broke;
 * 0 after an EOF on the link or an orderly shutdown; else what
 * psep_child_stop was given.
 */
int psep_child_run(const struct psep_child_args *a, int ipc);

/* The event base, borrowed until psep_child_run returns. */
struct event_base *psep_child_base(struct psep_child *ch);
/* The supervisor link, borrowed until psep_child_run returns. */
struct psep_link *psep_child_link(struct psep_child *ch);
/* True once PSEP_SHUTDOWN arrived. */
bool psep_child_shutting_down(const struct psep_child *ch);
/* End the loop now; psep_child_run returns status. */
void psep_child_stop(struct psep_child *ch, int status);
/* The role finished some work: end the loop if shutting down, the role is
 * idle and nothing waits to be sent. */
void psep_child_maybe_exit(struct psep_child *ch);

/*
 * RLIMIT_NOFILE for sandboxed children, which may not ask the kernel:
 * the supervisor calls psep_fd_limit_note() before it forks a child (the
 * value is inherited by the fork); psep_fd_limit() returns the noted soft
 * limit, 0 if unknown or unlimited.
 */
void psep_fd_limit_note(void);
uint64_t psep_fd_limit(void);

/*
 * Lower *max_conns (0 = unlimited) to what the noted RLIMIT_NOFILE allows
 * when each connection may hold per_conn fds and the process keeps
 * reserve for itself, so that a full fd table never ends the process;
 * logs once, naming setting, when it lowers it.
 */
void psep_fd_fit_connections(unsigned *max_conns, unsigned per_conn,
			     unsigned reserve, const char *setting);

#endif
