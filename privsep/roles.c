/* SPDX-License-Identifier: MIT */
/*
 * privsep/roles.c - the role table: one row per process kind, read by the
 * spawner.  Nothing else in stowd grants privileges.
 *
 * Runs in:  the supervisor (and inherited by each child).
 */
#include "privsep/privsep.h"

static const struct psep_role_def roles[PSEP_ROLE_COUNT] = {
	[PSEP_ROLE_SUPERVISOR] = {
		.role = PSEP_ROLE_SUPERVISOR, .name = "supervisor", .comm = "stowd-sup",
		.title = "supervisor",
		.uid_kind = PSEP_UID_ROOT, .keep_setid_caps = false,
		.no_new_privs = false, .profile = PSEP_PROFILE_NONE,
	},
	/* Parses untrusted LMTP: no uid 0, no capabilities, no files. */
	[PSEP_ROLE_LMTPD] = {
		.role = PSEP_ROLE_LMTPD, .name = "lmtpd", .comm = "stowd-lmtpd",
		.title = "lmtpd",
		.uid_kind = PSEP_UID_RUN_USER, .keep_setid_caps = false,
		.no_new_privs = true, .profile = PSEP_PROFILE_LMTPD,
	},
	/* Real and saved uid 0, euid switched from user to user per request,
	 * never back to 0 (locked securebits, seccomp); only
	 * CAP_SETUID/CAP_SETGID. */
	[PSEP_ROLE_WRITER_SETEUID] = {
		.role = PSEP_ROLE_WRITER_SETEUID, .name = "writer", .comm = "stowd-writer",
		.title = "writer seteuid",
		.uid_kind = PSEP_UID_ROOT, .keep_setid_caps = true,
		.no_new_privs = true, .profile = PSEP_PROFILE_WRITER_SETEUID,
	},
	/* One target uid for life, nothing else. */
	[PSEP_ROLE_WRITER_CHILD] = {
		.role = PSEP_ROLE_WRITER_CHILD, .name = "writer-child", .comm = "stowd-writer",
		.title = "writer",
		.uid_kind = PSEP_UID_TARGET, .keep_setid_caps = false,
		.no_new_privs = true, .profile = PSEP_PROFILE_WRITER_CHILD,
	},
	/* Replica links and journal; the only process besides repld that
	 * gets the TLS files (keep_fds of its spawn) and holds the key. */
	[PSEP_ROLE_REPL_HOOK] = {
		.role = PSEP_ROLE_REPL_HOOK, .name = "repl-hook", .comm = "stowd-hook",
		.title = "repl-hook",
		.uid_kind = PSEP_UID_RUN_USER, .keep_setid_caps = false,
		.no_new_privs = true, .profile = PSEP_PROFILE_REPL_HOOK,
	},
	/* Replica-side TLS front-end: parses untrusted replication input like
	 * lmtpd, no uid 0, no capabilities, no files of its own; builds its
	 * TLS server context (the key) from the fds the supervisor opened. */
	[PSEP_ROLE_REPLD] = {
		.role = PSEP_ROLE_REPLD, .name = "repld", .comm = "stowd-repld",
		.title = "repld",
		.uid_kind = PSEP_UID_RUN_USER, .keep_setid_caps = false,
		.no_new_privs = true, .profile = PSEP_PROFILE_REPLD,
	},
	/* Fork mode: a small process that forks the per-uid writer children
	 * (privsep/template.c), so that neither the supervisor's address
	 * space nor its event loop pays for a fork per cache miss.  uid 0,
	 * only CAP_SETUID, CAP_SETGID and CAP_SETPCAP (a child drops its
	 * bounding set, groups and ids with them), a seccomp profile that
	 * refuses any id 0; each child adds the writer-child profile. */
	[PSEP_ROLE_WRITER_TEMPLATE] = {
		.role = PSEP_ROLE_WRITER_TEMPLATE, .name = "writer-template",
		.comm = "stowd-template", .title = "writer template",
		.uid_kind = PSEP_UID_ROOT, .keep_drop_caps = true,
		.no_new_privs = true, .profile = PSEP_PROFILE_WRITER_TEMPLATE,
	},
	/* Not a process of stowd: the peer on the control socket (stowctl,
	 * root, checked with SO_PEERCRED).  Its row names the sender role of
	 * PSEP_CTL_REQ in the spec table; nothing spawns it. */
	[PSEP_ROLE_CONTROL] = {
		.role = PSEP_ROLE_CONTROL, .name = "control", .comm = "stowctl",
		.title = "control",
		.uid_kind = PSEP_UID_ROOT, .keep_setid_caps = false,
		.no_new_privs = false, .profile = PSEP_PROFILE_NONE,
	},
};

const struct psep_role_def *
psep_role_get(enum psep_role role)
{
	if ((unsigned)role >= PSEP_ROLE_COUNT)
		fatalx("unknown role %d", (int)role);
	return &roles[role];
}

const char *
psep_role_name(enum psep_role role)
{
	if ((unsigned)role >= PSEP_ROLE_COUNT)
		return "?";
	return roles[role].name;
}
