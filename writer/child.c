/* SPDX-License-Identifier: MIT */
/*
 * writer/child.c - fork mode: a child that is the target user for life
 * (all uids and gids, the user's groups), owns no capability, runs with
 * NO_NEW_PRIVS under an allow-list without any set*id call, and serves only
 * requests for its own uid.
 *
 * Runs in:  writer-child (seccomp profile WRITER_CHILD).
 * Trust:    a request for another uid or gid is refused (EPERM).
 */
#include <errno.h>
#include <unistd.h>

#include "policy/policy.h"
#include "privsep/privsep.h"
#include "storage/repl/repl.h"
#include "writer/writer.h"
#include "writer/writer_int.h"

static int
child_enter(uint32_t uid, uint32_t gid, uint32_t ngroups, const uint32_t *groups)
{
	(void)ngroups;
	(void)groups;
	if (!psep_uid_allowed(uid) || uid != (uint32_t)getuid() ||
	    gid != (uint32_t)getgid()) {
		errno = EPERM;
		return -1;
	}
	return 0;
}

static void
child_leave(void)
{
}

static const struct writer_creds_ops child_ops = {
	.enter = child_enter,
	.leave = child_leave,
};

int
writer_child_main(void *arg, int ipc)
{
	/* up to fork_max_children of these live at once: replayed mailbox
	 * states of at most 2 MiB and 8 mailboxes of its one user each (a
	 * seteuid worker keeps 16 MiB and 128 mailboxes of any users) */
	store_repl_cache_limit(2u * 1024u * 1024u, 8);
	return writer_loop(ipc, PSEP_ROLE_WRITER_CHILD, arg, &child_ops);
}
