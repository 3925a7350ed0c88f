/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/privsep/pstatus.h - read another process's /proc/<pid>/status
 * and /proc/<pid>/fd from a test (shared by test_sandbox.c, test_spawn.c).
 */
#ifndef STOWD_TESTS_PRIVSEP_PSTATUS_H
#define STOWD_TESTS_PRIVSEP_PSTATUS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define PSTATUS_MAX 8192

/* Read /proc/<pid>/status into buf (NUL-terminated).  Returns 0 or -1. */
int pstatus_read(pid_t pid, char *buf, size_t size);

/* The value of "key:\t<value>\n" in status, copied into out (without the
 * tab, trailing spaces and LF).  Returns out, or NULL if key is missing. */
const char *pstatus_field(const char *status, const char *key, char *out,
			  size_t size);

/* The open fds of pid (ascending), at most max.  Returns the count (which
 * may exceed max) or -1.  The directory fd itself is left out for self. */
int pstatus_fds(pid_t pid, int *fds, size_t max);

/* True if fd is in fds[0..n). */
bool pstatus_has_fd(const int *fds, int n, int fd);

/* Target of /proc/<pid>/fd/<fd> into out.  Returns 0 or -1. */
int pstatus_fd_target(pid_t pid, int fd, char *out, size_t size);

#endif
