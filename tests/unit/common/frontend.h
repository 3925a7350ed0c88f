/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/common/frontend.h - helpers shared by the lmtpd unit tests that
 * drive a front-end (lmtp_main, repld_main) or a repld server: a
 * monotonic clock for deadlines, a forked front-end with the
 * supervisor's side of the HELLO exchange done, and its exit.
 *
 * Runs in:  test executables only, as a normal user.
 */
#ifndef STOWD_TESTS_UNIT_LMTPD_UTIL_H
#define STOWD_TESTS_UNIT_LMTPD_UTIL_H

#include <stdint.h>
#include <sys/types.h>

#include "privsep/privsep.h"

/* CLOCK_MONOTONIC in milliseconds. */
int64_t lt_now_ms(void);

/*
 * Fork child(arg, ipc) on one end of a fresh SOCK_SEQPACKET pair; the
 * child exits with child's return value.  *pid_out (the caller reaps it)
 * and *sup_out (the supervisor's end of the link, owned by the caller)
 * are set at once, so a teardown finds them if a check below fails.
 * Then play the supervisor: the first message must be a HELLO_REQ from
 * role, answered with HELLO_REP; the link is then made non-blocking.
 * Failures are cmocka assertions.
 */
void lt_spawn(enum psep_role role, int (*child)(void *arg, int ipc), void *arg,
	      pid_t *pid_out, int *sup_out);

/*
 * Wait up to 5 s for the child *pid to exit, calling serve(ctx) between
 * looks so that its link does not fill up; fail naming who if it does
 * not exit.  Sets *pid to -1.  Returns the exit status, or 128 + the
 * signal that ended it.
 */
int lt_wait_exit(pid_t *pid, const char *who, void (*serve)(void *ctx), void *ctx);

#endif
