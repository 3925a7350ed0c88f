/* SPDX-License-Identifier: MIT */
/*
 * privsep/template.c - the writer template of fork mode: a small process
 * that forks the per-uid writer children on the supervisor's request.
 *
 * A fork per cache miss used to copy the supervisor: its mappings and
 * page tables at fork, then a copy-on-write fault in the supervisor for
 * every page it wrote while the child lived, and its event loop stood
 * still during each fork.  The template is forked once (per settings
 * generation) and then only reads requests: no event loop, no buffers;
 * the children are its copies, and the supervisor never forks in the
 * delivery path.
 *
 * Runs in:  writer-template (uid 0, CAP_SETUID/CAP_SETGID/CAP_SETPCAP
 *           only, NO_NEW_PRIVS, seccomp profile WRITER_TEMPLATE).
 * Trust:    requests come only from the supervisor, validated by
 *           psep_msg_recv (uid in range, no id 0).  A child is a child of
 *           the supervisor (CLONE_PARENT), which reaps and signals it;
 *           the child drops to the request's credentials, verifies the
 *           drop and adds the writer-child filter before it reads its
 *           socket (privsep/spawn.c), exactly as a child forked by the
 *           supervisor did.
 * Order:    HELLO; then FORK_REQ -> fork -> FORK_REP, one at a time, in
 *           order; SHUTDOWN or EOF ends it.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "privsep/privsep.h"

static void
fork_one(const struct psep_template_args *a, int ipc, struct psep_msg *m)
{
	const struct psep_fork_req *r = &m->u.fork_req;
	struct psep_spawn sp = { .role = PSEP_ROLE_WRITER_CHILD,
				 .main = a->child_main, .arg = a->child_arg };
	struct psep_fork_rep rep = { 0 };
	pid_t pid;

	sp.creds.uid = r->uid;
	sp.creds.gid = r->gid;
	sp.creds.ngroups = r->ngroups;
	for (uint32_t i = 0; i < r->ngroups; i++)
		sp.creds.groups[i] = r->groups[i];
	pid = psep_spawn_forked(&sp, m->fd);
	if (pid < 0) {
		rep.err = errno != 0 ? errno : EAGAIN;
		log_warn("fork for uid=%u failed: %s", (unsigned)r->uid, strerror(rep.err));
	} else {
		rep.pid = pid;
	}
	psep_msg_clear(m);   /* the child's end: the child has its copy */
	if (psep_msg_send(ipc, PSEP_FORK_REP, m->hdr.id, &rep, sizeof(rep), -1) < 0)
		fatal("FORK_REP");
}

int
psep_template_main(void *arg, int ipc)
{
	const struct psep_template_args *a = arg;
	struct psep_msg m;
	int rc;

	if (psep_child_hello(ipc, PSEP_ROLE_WRITER_TEMPLATE, 0) < 0)
		return 1;
	log_init(psep_role_name(PSEP_ROLE_WRITER_TEMPLATE), ipc);
	for (;;) {
		if ((rc = psep_child_next(ipc, &m)) <= 0)
			return rc < 0;
		switch (m.hdr.type) {
		case PSEP_FORK_REQ:
			fork_one(a, ipc, &m);
			break;
		case PSEP_SHUTDOWN:
			psep_msg_clear(&m);
			return 0;
		default:
			log_err("unexpected %s from supervisor", psep_type_name(m.hdr.type));
			psep_msg_clear(&m);
			return 1;
		}
	}
}
