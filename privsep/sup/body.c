/* SPDX-License-Identifier: MIT */
/*
 * privsep/sup/body.c - message bodies held for queued writer jobs, and
 * the supervisor's fd budget for them.  lmtpd sends one DELIVER_REQ (with
 * the body's sealed memfd) per recipient; the recipients of one message
 * share one held fd: a memfd whose inode is already held is closed at
 * once.  New bodies are refused (the recipient gets 451 4.3.2, the
 * front-end lives on) once the budget, or the sending front-end's share
 * of it, is used up, so a client can never fill the supervisor's fd table.
 *
 * Runs in:  the supervisor.
 * Trust:    the fds come from psep_msg_recv (checked to be sealed memfds).
 */
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "privsep/sup/sup_int.h"

/* fds kept free for logging, spawns, accepts and replication. */
#define BODY_RESERVE 64u

uint64_t
sup_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY)
		return 1u << 20;
	return rl.rlim_cur;
}

unsigned
sup_body_budget(const struct sup *sup)
{
	const struct policy_settings *s = &sup->set;
	uint64_t limit = sup->nofile != 0 ? sup->nofile : sup_nofile(), need;

	/* two generations of front-ends (a reload), the writers, repld and
	 * repl-hook: one IPC socket each; two queues of waiting clients; the
	 * events waiting for repl-hook with their body */
	need = BODY_RESERVE + 2u * s->lmtp_processes + 4u + 2u * SUP_MAX_PENDING +
	       (s->n_replicas > 0 ? SUP_MAX_EVENT_FDS : 0u) +
	       (s->delivery_mode == POLICY_MODE_FORK ? s->fork_max_children
						      : 2u * s->seteuid_workers);
	if (limit <= need + 16u)
		return 16u;
	return limit - need > UINT32_MAX ? UINT32_MAX : (unsigned)(limit - need);
}

static unsigned
source_bodies(const struct sup *sup, const void *source)
{
	const struct sup_body *b;
	unsigned n = 0;

	LIST_FOREACH(b, &sup->bodies, link)
		if (b->source == source)
			n++;
	return n;
}

struct sup_body *
sup_body_adopt(struct sup *sup, int fd, dev_t dev, ino_t ino, const void *source,
	       const char **why_out)
{
	unsigned budget = sup_body_budget(sup);
	unsigned share = budget / (sup->set.lmtp_processes + 1u);
	struct sup_body *b;

	LIST_FOREACH(b, &sup->bodies, link) {
		if (b->dev == dev && b->ino == ino) {
			close(fd);
			b->refs++;
			return b;
		}
	}
	if (sup->n_bodies >= budget) {
		*why_out = "supervisor fd budget";
		close(fd);
		return NULL;
	}
	if (share > 0 && source_bodies(sup, source) >= share) {
		*why_out = "front-end's share of the supervisor fd budget";
		close(fd);
		return NULL;
	}
	b = xcalloc(1, sizeof(*b));
	b->sup = sup;
	b->fd = fd;
	b->dev = dev;
	b->ino = ino;
	b->source = source;
	b->refs = 1;
	LIST_INSERT_HEAD(&sup->bodies, b, link);
	sup->n_bodies++;
	return b;
}

void
sup_body_put(struct sup_body **bp)
{
	struct sup_body *b = *bp;

	if (b == NULL)
		return;
	*bp = NULL;
	if (--b->refs > 0)
		return;
	LIST_REMOVE(b, link);
	b->sup->n_bodies--;
	close(b->fd);
	free(b);
}
