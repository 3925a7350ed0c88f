/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/privsep/spawnutil.h - spawning helpers shared by
 * test_spawn.c (any user) and test_spawn_root.c (root only).
 *
 * A spawned child's main_ready_then_wait() writes one byte on its IPC end
 * and blocks reading it, so the parent can read /proc/<pid>/status and
 * /proc/<pid>/fd of a live, fully set-up child without any sleep.
 */
#ifndef STOWD_TESTS_PRIVSEP_SPAWNUTIL_H
#define STOWD_TESTS_PRIVSEP_SPAWNUTIL_H

#include <stddef.h>
#include <sys/types.h>

#include "privsep/privsep.h"
#include "pstatus.h"

#define READY_TIMEOUT_MS 10000  /* a guard against a hung child, not a delay */
#define NO_CAPS "0000000000000000"
#define SETID_CAPS "00000000000000c0"  /* CAP_SETGID | CAP_SETUID */

/* Child mains.  main_ready_then_wait: byte 'r', then wait for EOF, exit 0.
 * main_mark: byte 'm' (shows that main ran), exit 0. */
int main_ready_then_wait(void *arg, int ipc);
int main_mark(void *arg, int ipc);

/* psep_spawn_child after fflush(NULL) (a child's exit() must not repeat
 * the parent's buffered output). */
pid_t spawn(const struct psep_spawn *sp, int *ipc);
const char *describe(int st, char *buf, size_t size);
/* The first byte the child sends, or 0 if it closed its end without. */
char wait_byte(int ipc);
/* Close the parent's end, reap the child; returns the wait status. */
int finish(pid_t pid, int ipc);
void assert_exited(int st, int code, const char *what);
/* status has "key:\t<want>". */
void expect_field(const char *status, const char *key, const char *want,
		  const char *what);

/* What the parent saw of a paused child. */
struct seen {
	char status[PSTATUS_MAX];
	int fds[64];
	int nfds;
	char targets[64][128];
};

/* Spawn (main must be main_ready_then_wait), wait until ready, read
 * /proc, let the child exit; returns the wait status. */
int spawn_and_look(const struct psep_spawn *sp, struct seen *s, const char *what);

/* Extra fds opened without CLOEXEC (only the spawner may remove them). */
struct extra_fds {
	int pipe[2];
	int null;
	int keep;  /* /dev/zero, to pass in keep_fds */
};

void extra_open(struct extra_fds *x);
void extra_close(struct extra_fds *x);
/* The child held exactly: /dev/null as 0 and 1, the parent's stderr as
 * 2, x->keep (still /dev/zero), one socket (its IPC end); not the pipe,
 * not x->null. */
void expect_child_fds(const struct seen *s, const struct extra_fds *x,
		      const char *what);

#endif
