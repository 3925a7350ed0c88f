/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/writer/mock.h - the credentials of a simulated writer
 * process, changed only through the wrapped set*id calls
 * (-Wl,--wrap=setresuid,setresgid,setgroups,getresuid,getresgid,getuid,
 * getgid), a log of those calls, and a wrapped store_save that records
 * the credentials it ran with.
 */
#ifndef STOWD_TESTS_UNIT_WRITER_MOCK_H
#define STOWD_TESTS_UNIT_WRITER_MOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define MOCK_MAX_GROUPS 16
#define MOCK_MAX_CALLS 32

struct mock_creds {
	uid_t ruid, euid, suid;
	gid_t rgid, egid, sgid;
	size_t ngroups;
	gid_t groups[MOCK_MAX_GROUPS];
};

struct mock_state {
	struct mock_creds now;        /* what getres*id report */
	/* set*id calls, in order: "setresuid -1 600 -1", "setgroups 2 700 701"
	 * (setgroups: count, first and last group, -1 when absent) */
	char calls[MOCK_MAX_CALLS][64];
	size_t ncalls;
	/* failure injection: the named call returns -1 with errno EPERM */
	const char *fail_call;        /* "setresuid", "setresgid", "setgroups" */
	bool fail_only_to_root;       /* ... only when it asks for id 0 */
	bool ignore_setresuid;        /* setresuid "succeeds" but changes nothing */
	/* getuid/getgid of a per-uid child; (uid_t)-1: the real ones */
	uid_t child_uid;
	gid_t child_gid;
	/* uids the wrapped psep_uid_allowed refuses on top of the real range
	 * (a writer's own check, narrower than the validator's) */
	uid_t deny_uid;
	/* store_save */
	size_t nsaves;
	struct mock_creds save_creds; /* credentials during the last save */
	int save_errno;               /* 0: succeed, else fail with it */
	int save_mark_fd;             /* >= 0: one byte written per save */
};

extern struct mock_state mock;

/* Reset mock to a root process (all ids 0, no groups), no failures. */
void mock_reset(void);

/* Index of the first logged call equal to call, or -1. */
int mock_call_index(const char *call);

#endif
