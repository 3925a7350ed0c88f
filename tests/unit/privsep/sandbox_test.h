/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/privsep/sandbox_test.h - what the two halves of the sandbox
 * test program share: the profiles under test, the resources a sandboxed
 * child gets (struct sb_env), and running one function in a sandboxed
 * child.  Defined in test_sandbox.c; the allowed-call tests are in
 * test_sandbox_allowed.c.
 */
#ifndef STOWD_TESTS_SANDBOX_TEST_H
#define STOWD_TESTS_SANDBOX_TEST_H

#include <stddef.h>

#include "privsep/privsep.h"

#define BODY "Subject: test\n\nhello\n"
#define BODY_LEN (sizeof(BODY) - 1)
#define ALL_SEALS (F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL)

#define PB(p) (1u << (p))
#define LMTPD_LIKE (PB(PSEP_PROFILE_LMTPD) | PB(PSEP_PROFILE_REPL_HOOK) | \
		    PB(PSEP_PROFILE_REPLD))
/* The network-facing parsers: no files, no sockets of their own. */
#define NO_FILES (PB(PSEP_PROFILE_LMTPD) | PB(PSEP_PROFILE_REPLD))
#define WRITERS (PB(PSEP_PROFILE_WRITER_SETEUID) | PB(PSEP_PROFILE_WRITER_CHILD))
#define ALL_PROFILES (LMTPD_LIKE | WRITERS)

struct sb_profile {
	enum psep_profile profile;
	const char *name;
};
extern const struct sb_profile profiles[];
extern const size_t nprofiles;
#define NPROFILES nprofiles

struct sb_env {
	int ipc[2];      /* seqpacket: [0] parent (supervisor), [1] child */
	int stream[2];   /* stream socketpair, both in the child (client I/O) */
	int pipe[2];     /* a pipe, both ends in the child */
	int dir;         /* a fresh empty temp directory */
	int body;        /* a sealed memfd holding BODY */
	char dirpath[64];
};

void env_open(struct sb_env *e);
void env_close(struct sb_env *e);
/* In the child, before the filter: no core file for the expected SIGSYS,
 * NO_NEW_PRIVS as a real spawn sets it. */
void child_prepare(void);
/* Fork; the child applies profile and returns fn(e) as its exit code.
 * Returns the child's wait status. */
int run_sandboxed(enum psep_profile profile, int (*fn)(const struct sb_env *),
		  const struct sb_env *e);
/* A wait status in words. */
const char *describe(int st, char *buf, size_t size);

/* test_sandbox_allowed.c */
void test_allowed_calls_work_every_profile(void **state);
void test_proc_status_shows_filter_mode_and_no_new_privs_every_profile(void **state);
void test_profile_none_installs_no_filter(void **state);

#endif
