/* SPDX-License-Identifier: MIT */
/*
 * privsep/child.c - the skeleton of the event-loop children: HELLO,
 * log_init, the epoll event base, the supervisor link and its drained and
 * on_close callbacks, PSEP_SHUTDOWN, the exit once idle, the loop and the
 * teardown (after Postfix's single_server_main: the role brings callbacks,
 * the skeleton owns the process).
 *
 * Runs in:  lmtpd, repld, repl-hook (see privsep/child.h for the calls
 *           made: none beyond HELLO, the link and event_base_new).
 * Trust:    only psep_msg_recv() (inside the link) reads the supervisor.
 * Order:    see privsep/child.h.
 */
#include <string.h>
#include <sys/resource.h>

#include <event2/event.h>

#include "privsep/child.h"
#include "privsep/link.h"
#include "privsep/privsep.h"

struct psep_child {
	const struct psep_child_args *a;
	struct event_base *base;
	struct psep_link *link;
	bool shutting_down;
	int status;
};

struct event_base *
psep_child_base(struct psep_child *ch)
{
	return ch->base;
}

struct psep_link *
psep_child_link(struct psep_child *ch)
{
	return ch->link;
}

bool
psep_child_shutting_down(const struct psep_child *ch)
{
	return ch->shutting_down;
}

void
psep_child_stop(struct psep_child *ch, int status)
{
	ch->status = status;
	event_base_loopbreak(ch->base);
}

void
psep_child_maybe_exit(struct psep_child *ch)
{
	const struct psep_child_ops *ops = ch->a->ops;

	if (!ch->shutting_down || ch->link == NULL || !psep_link_idle(ch->link))
		return;
	if (ops->idle == NULL || ops->idle(ch->a->arg))
		psep_child_stop(ch, 0);
}

static void
child_shutdown(struct psep_child *ch)
{
	const struct psep_child_ops *ops = ch->a->ops;

	if (ch->shutting_down)
		return;
	ch->shutting_down = true;
	if (ops->shutdown != NULL)
		ops->shutdown(ch->a->arg);
	psep_child_maybe_exit(ch);
}

/* psep_link_ops.dispatch: SHUTDOWN here, everything else to the role. */
static void
child_dispatch(void *arg, struct psep_msg *m)
{
	struct psep_child *ch = arg;

	if (m->hdr.type == PSEP_SHUTDOWN)
		child_shutdown(ch);
	else
		ch->a->ops->dispatch(ch->a->arg, m);
}

static void
child_batch_end(void *arg)
{
	struct psep_child *ch = arg;

	if (ch->a->ops->batch_end != NULL)
		ch->a->ops->batch_end(ch->a->arg);
}

static void
child_drained(void *arg)
{
	psep_child_maybe_exit(arg);
}

/* EOF (err 0) ends the process normally, anything else with status 1. */
static void
child_closed(void *arg, int err)
{
	psep_child_stop(arg, err == 0 ? 0 : 1);
}

static const struct psep_link_ops child_link_ops = {
	.dispatch = child_dispatch,
	.batch_end = child_batch_end,
	.drained = child_drained,
	.on_close = child_closed,
};

int
psep_child_run(const struct psep_child_args *a, int ipc)
{
	struct psep_child ch;

	if (psep_child_hello(ipc, a->role, 0) == -1)
		return 1;
	log_init(a->name, ipc);
	log_set_debug(a->debug);
	memset(&ch, 0, sizeof(ch));
	ch.a = a;
	ch.base = psep_event_base_new();
	ch.link = psep_link_new(ch.base, ipc, a->queue_max, &child_link_ops, &ch);
	a->ops->setup(a->arg, &ch);
	if (event_base_dispatch(ch.base) == -1) {
		log_err("event loop failed");
		ch.status = 1;
	}
	if (a->ops->teardown != NULL)
		a->ops->teardown(a->arg);
	psep_link_free(&ch.link);
	event_base_free(ch.base);
	return ch.status;
}

static uint64_t fd_limit;

void
psep_fd_limit_note(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
		fd_limit = rl.rlim_cur;
	else
		fd_limit = 0;
}

uint64_t
psep_fd_limit(void)
{
	return fd_limit;
}

void
psep_fd_fit_connections(unsigned *max_conns, unsigned per_conn, unsigned reserve,
			const char *setting)
{
	uint64_t limit = psep_fd_limit(), fit;

	if (limit == 0)
		return;
	fit = limit > reserve + per_conn ? (limit - reserve) / per_conn : 1;
	if (*max_conns == 0 || fit < *max_conns) {
		log_warn("%s=%u lowered to %llu: RLIMIT_NOFILE is %llu (raise "
			 "LimitNOFILE)", setting, *max_conns, (unsigned long long)fit,
			 (unsigned long long)limit);
		*max_conns = (unsigned)fit;
	}
}
