/* SPDX-License-Identifier: MIT */
/*
 * writer/seteuid.c - seteuid mode: a long-lived worker with real and saved
 * uid 0 and only CAP_SETUID/CAP_SETGID that switches supplementary groups,
 * egid and euid to the target user for each request, directly from the
 * previous user; it never returns to euid 0.
 *
 * Runs in:  writer-seteuid (seccomp profile WRITER_SETEUID), with
 *           SECBIT_NO_SETUID_FIXUP (locked, privsep/spawn.c): the two
 *           capabilities stay effective when the euid leaves 0, so the
 *           next switch needs no way back to root.
 * Trust:    uid 0 and uids outside first_valid_uid..last_valid_uid are
 *           refused here as well as in the supervisor.  Every switch is
 *           verified with getresuid/getresgid; a mismatch is fatal.  The
 *           seccomp profile kills a setresuid/setresgid call that would
 *           set any id to 0 or change the real or saved id, so code
 *           running here after its first request cannot become euid 0
 *           again (doc/security.md: what it can still do).
 * Order:    groups, gid, uid (CAP_SETGID is kept across the uid change
 *           anyway, but a failure leaves the old user's uid, not root).
 */
#include <errno.h>
#include <grp.h>
#include <string.h>
#include <unistd.h>

#include "policy/policy.h"
#include "privsep/privsep.h"
#include "writer/writer.h"
#include "writer/writer_int.h"

static void
check_ids(uid_t ruid, uid_t euid, gid_t rgid, gid_t egid)
{
	uid_t r, e, s;
	gid_t rg, eg, sg;

	if (getresuid(&r, &e, &s) < 0 || getresgid(&rg, &eg, &sg) < 0)
		fatal("getresuid");
	if (r != ruid || e != euid || s != 0 || rg != rgid || eg != egid || sg != 0)
		fatalx("credential switch failed: uid %u/%u/%u gid %u/%u/%u",
		       (unsigned)r, (unsigned)e, (unsigned)s, (unsigned)rg,
		       (unsigned)eg, (unsigned)sg);
}

static int
seteuid_enter(uint32_t uid, uint32_t gid, uint32_t ngroups, const uint32_t *ids)
{
	gid_t groups[PSEP_MAX_GROUPS];
	uint32_t i;

	if (!psep_uid_allowed(uid) || gid == 0 || gid == (uint32_t)-1 ||
	    ngroups > PSEP_MAX_GROUPS) {
		errno = EPERM;
		return -1;
	}
	for (i = 0; i < ngroups; i++) {
		if (ids[i] == 0 || ids[i] == (uint32_t)-1) {
			errno = EPERM;
			return -1;
		}
		groups[i] = (gid_t)ids[i];
	}
	if (setgroups(ngroups, groups) < 0)
		fatal("setgroups");
	if (setresgid((gid_t)-1, (gid_t)gid, (gid_t)-1) < 0)
		fatal("setresgid(%u)", gid);
	if (setresuid((uid_t)-1, (uid_t)uid, (uid_t)-1) < 0)
		fatal("setresuid(%u)", uid);
	check_ids(0, (uid_t)uid, 0, (gid_t)gid);
	return 0;
}

/* The worker stays the last user until the next request switches it to
 * the next user: going back to euid 0 is what the sandbox forbids. */
static void
seteuid_leave(void)
{
}

static const struct writer_creds_ops seteuid_ops = {
	.enter = seteuid_enter,
	.leave = seteuid_leave,
};

int
writer_seteuid_main(void *arg, int ipc)
{
	return writer_loop(ipc, PSEP_ROLE_WRITER_SETEUID, arg, &seteuid_ops);
}
