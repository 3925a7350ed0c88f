/* SPDX-License-Identifier: MIT */
/*
 * privsep/sup/template.c - fork mode's writer template, seen from the
 * supervisor: started with the writers of each settings generation, asked
 * for one child per cache miss (FORK_REQ with the child's end of a fresh
 * socketpair), told each child's pid in order (FORK_REP), retired with
 * the writers.
 *
 * The child is the supervisor's own (CLONE_PARENT): it is reaped, killed
 * and listed like a child the supervisor forked itself.  Between the
 * request and the reply its table entry has pid 0; a kill is kept until
 * the pid is known, and a child reaped before it (it died at once) waits
 * in a small table of orphans for its FORK_REP.
 *
 * Runs in:  the supervisor.
 * Trust:    the template is trusted like any root child, but a reply it
 *           owes no request for, or for another request, kills it; its
 *           death fails only the children it had not named yet.  A pid it
 *           names is signalled only if it is the supervisor's own child.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "privsep/sup/sup_int.h"

struct sup_tmpl {
	TAILQ_HEAD(, sup_child) pending;   /* asked, FIFO, pid still 0 */
	const struct sup_template_hooks *hooks;
};

static void tmpl_ready(struct sup_child *t);
static void tmpl_message(struct sup_child *t, struct psep_msg *m);
static void tmpl_exited(struct sup_child *t, int wstatus);

static const struct sup_child_ops tmpl_ops = {
	.ready = tmpl_ready,
	.message = tmpl_message,
	.exited = tmpl_exited,
};

void
sup_template_start(struct sup *sup, const struct sup_template_hooks *h)
{
	struct psep_spawn sp = { .role = PSEP_ROLE_WRITER_TEMPLATE };
	struct sup_tmpl *st;

	if (sup->set.delivery_mode != POLICY_MODE_FORK || sup->tmpl != NULL)
		return;
	sp.creds = sup->run_creds;   /* its file-system ids */
	st = xcalloc(1, sizeof(*st));
	TAILQ_INIT(&st->pending);
	st->hooks = h;
	sup->tmpl = sup_child_spawn(sup, &sp, &tmpl_ops, st);
	if (sup->tmpl == NULL)
		free(st);
}

int
sup_template_ready(struct sup *sup, const struct sup_template_hooks *h)
{
	sup_template_start(sup, h);
	if (sup->tmpl == NULL)
		return -1;
	return sup->tmpl->state == PSEP_STATE_READY ? 1 : 0;
}

struct sup_child *
sup_template_fork(struct sup *sup, const struct psep_spawn *sp,
		  const struct sup_child_ops *ops, void *owner)
{
	struct sup_child *t = sup->tmpl, *c;
	struct sup_tmpl *st;
	struct psep_fork_req req = { .uid = sp->creds.uid, .gid = sp->creds.gid,
				     .ngroups = (uint32_t)sp->creds.ngroups };
	int sv[2];

	if (t == NULL || t->state != PSEP_STATE_READY) {
		errno = EAGAIN;
		return NULL;
	}
	st = t->owner;
	for (size_t i = 0; i < sp->creds.ngroups && i < PSEP_MAX_GROUPS; i++)
		req.groups[i] = sp->creds.groups[i];
	if (psep_ipc_pair(sv) < 0) {
		log_err("socketpair for a writer child: %s", strerror(errno));
		return NULL;
	}
	if (sup_child_send(t, PSEP_FORK_REQ, ++sup->fork_next, &req, sizeof(req),
			   sv[1]) < 0) {
		close(sv[0]);
		close(sv[1]);
		return NULL;
	}
	close(sv[1]);
	c = sup_child_new(sup, sp->role, sp->creds.uid, sv[0], ops, owner);
	c->fork_id = sup->fork_next;
	TAILQ_INSERT_TAIL(&st->pending, c, fork_link);
	return c;
}

void
sup_template_retire(struct sup *sup)
{
	struct sup_child *t = sup->tmpl;

	if (t == NULL)
		return;
	sup->tmpl = NULL;
	sup_child_retire(t);
}

static void
tmpl_ready(struct sup_child *t)
{
	struct sup_tmpl *st = t->owner;

	st->hooks->ready(t->sup);
}

/* The child c will never exist, or is no longer known: it is gone. */
static void
pending_fail(struct sup_child *c)
{
	sup_child_exit(c, W_EXITCODE(1, 0));
}

/* Is pid an unreaped child of this process?  (waitid with WNOWAIT
 * reaps nothing; ECHILD for any other process.) */
static bool
is_own_child(pid_t pid)
{
	siginfo_t si;

	memset(&si, 0, sizeof(si));
	return waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0;
}

static void
tmpl_reply(struct sup_child *t, const struct psep_msg *m)
{
	struct sup_tmpl *st = t->owner;
	struct sup_child *c = TAILQ_FIRST(&st->pending);
	const struct psep_fork_rep *r = &m->u.fork_rep;
	int wstatus;

	if (c == NULL || c->fork_id != m->hdr.id) {
		t->refused = true;
		sup_child_kill(t, "FORK_REP for a request it does not hold");
		return;
	}
	TAILQ_REMOVE(&st->pending, c, fork_link);
	if (r->pid == 0) {
		log_err("writer template could not fork a child for uid=%u: %s",
			(unsigned)c->uid, strerror(r->err));
		pending_fail(c);
		return;
	}
	if (sup_child_orphan_take(t->sup, r->pid, &wstatus)) {
		c->pid = r->pid;
		sup_child_exit(c, wstatus);
		return;
	}
	/* The pid must be a child of this process (CLONE_PARENT) that is
	 * not reaped yet: nothing is ever signalled on the template's word
	 * alone.  One that is not (or no longer: an orphan table overrun)
	 * is gone for the table, never killed. */
	if (!is_own_child(r->pid)) {
		log_warn("writer template named pid=%ld for uid=%u, which is not a "
			 "child of the supervisor", (long)r->pid, (unsigned)c->uid);
		pending_fail(c);
		return;
	}
	c->pid = r->pid;
	log_debug("spawned role=%s pid=%ld generation=%u (template)",
		  psep_role_name(c->role), (long)c->pid, c->generation);
	if (c->killed)
		kill(c->pid, SIGKILL);
}

static void
tmpl_message(struct sup_child *t, struct psep_msg *m)
{
	if (m->hdr.type == PSEP_FORK_REP) {
		tmpl_reply(t, m);
		return;
	}
	t->refused = true;
	sup_child_kill(t, "unexpected message type");
}

static void
tmpl_exited(struct sup_child *t, int wstatus)
{
	struct sup_tmpl *st = t->owner;
	const struct sup_template_hooks *h = st->hooks;
	struct sup *sup = t->sup;
	bool in_startup = t->state == PSEP_STATE_NEW && !t->retired;
	struct sup_child *c;
	struct psep_msg m;
	const char *why;

	(void)wstatus;
	/* Its last replies name children that exist. */
	while (!TAILQ_EMPTY(&st->pending) && !t->refused &&
	       psep_msg_recv(t->ipc, t->role, t->state, &m, &why) == 0) {
		if (m.hdr.type == PSEP_FORK_REP)
			tmpl_reply(t, &m);
		psep_msg_clear(&m);
	}
	if (sup->tmpl == t)
		sup->tmpl = NULL;
	/* The rest were never forked, or their pids are lost with the
	 * template: closing their sockets ends any that exist. */
	while ((c = TAILQ_FIRST(&st->pending)) != NULL) {
		TAILQ_REMOVE(&st->pending, c, fork_link);
		pending_fail(c);
	}
	free(st);
	t->owner = NULL;
	sup_child_gone(t);
	h->gone(sup, in_startup);
}
