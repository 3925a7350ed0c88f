/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/privsep/spawnutil.c - spawning helpers for the spawn tests
 * (see spawnutil.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "spawnutil.h"

/* ---- child mains -------------------------------------------------------- */

/* Signal readiness with one byte, then wait for the parent to close. */
int
main_ready_then_wait(void *arg, int ipc)
{
	char c = 'r';

	(void)arg;
	if (write(ipc, &c, 1) != 1)
		return 2;
	while (read(ipc, &c, 1) > 0)
		;
	return 0;
}

/* Leaves a mark if it runs at all. */
int
main_mark(void *arg, int ipc)
{
	(void)arg;
	return write(ipc, "m", 1) == 1 ? 0 : 2;
}

/* ---- parent helpers ----------------------------------------------------- */

pid_t
spawn(const struct psep_spawn *sp, int *ipc)
{
	fflush(NULL);  /* a child's exit() must not repeat buffered output */
	return psep_spawn_child(sp, ipc);
}

const char *
describe(int st, char *buf, size_t size)
{
	if (WIFEXITED(st))
		snprintf(buf, size, "exited %d", WEXITSTATUS(st));
	else if (WIFSIGNALED(st))
		snprintf(buf, size, "killed by signal %d", WTERMSIG(st));
	else
		snprintf(buf, size, "wait status %#x", (unsigned)st);
	return buf;
}

/* Wait for the child's one readable event; returns the byte received, or
 * 0 if the child closed its end (exited) without sending. */
char
wait_byte(int ipc)
{
	struct pollfd p = { .fd = ipc, .events = POLLIN };
	char c = 0;

	assert_int_equal(poll(&p, 1, READY_TIMEOUT_MS), 1);
	if (recv(ipc, &c, 1, MSG_DONTWAIT) <= 0)
		return 0;
	return c;
}

/* Close the parent's end and reap; returns the wait status. */
int
finish(pid_t pid, int ipc)
{
	int st;

	close(ipc);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	return st;
}

void
assert_exited(int st, int code, const char *what)
{
	char desc[64];

	if (!WIFEXITED(st) || WEXITSTATUS(st) != code)
		fail_msg("%s: child %s, want exit %d", what, describe(st, desc, sizeof(desc)),
			 code);
}

void
expect_field(const char *status, const char *key, const char *want, const char *what)
{
	char v[128];

	if (pstatus_field(status, key, v, sizeof(v)) == NULL)
		fail_msg("%s: no %s line", what, key);
	if (strcmp(v, want) != 0)
		fail_msg("%s: %s: \"%s\", want \"%s\"", what, key, v, want);
}

/* Spawn, wait for readiness, read /proc, let the child exit; returns
 * the wait status.  A child that dies before it is ready fails the test. */
int
spawn_and_look(const struct psep_spawn *sp, struct seen *s, const char *what)
{
	int ipc, st, i;
	pid_t pid;

	pid = spawn(sp, &ipc);
	assert_true(pid > 0);
	if (wait_byte(ipc) != 'r') {
		char desc[64];

		st = finish(pid, ipc);
		fail_msg("%s: child %s before it was ready", what,
			 describe(st, desc, sizeof(desc)));
	}
	assert_int_equal(pstatus_read(pid, s->status, sizeof(s->status)), 0);
	s->nfds = pstatus_fds(pid, s->fds, 64);
	assert_true(s->nfds > 0 && s->nfds <= 64);
	for (i = 0; i < s->nfds; i++)
		if (pstatus_fd_target(pid, s->fds[i], s->targets[i], sizeof(s->targets[i])) < 0)
			s->targets[i][0] = '\0';
	return finish(pid, ipc);
}

/* Index of fd in s, or -1. */
static int
seen_index(const struct seen *s, int fd)
{
	int i;

	for (i = 0; i < s->nfds; i++)
		if (s->fds[i] == fd)
			return i;
	return -1;
}

/* stdin and stdout are /dev/null; stderr is the parent's (or /dev/null,
 * or absent, if the parent has none). */
static void
expect_child_stdio(const struct seen *s, const char *what)
{
	char mine[128];
	int fd, i;

	for (fd = 0; fd <= 2; fd++) {
		i = seen_index(s, fd);
		if (fd < 2 || pstatus_fd_target(getpid(), fd, mine, sizeof(mine)) < 0)
			strcpy(mine, "/dev/null");
		if (fd < 2 && i < 0)
			fail_msg("%s: child has no fd %d", what, fd);
		if (i >= 0 && strcmp(s->targets[i], mine) != 0)
			fail_msg("%s: child fd %d is %s, want %s", what, fd, s->targets[i],
				 mine);
	}
}

void
expect_child_fds(const struct seen *s, const struct extra_fds *x, const char *what)
{
	const int closed[] = { x->pipe[0], x->pipe[1], x->null };
	int i, sockets = 0;
	size_t k;

	for (i = 0; i < s->nfds; i++) {
		int fd = s->fds[i];

		if (fd <= 2) {
			continue;  /* below */
		} else if (fd == x->keep) {
			if (strcmp(s->targets[i], "/dev/zero") != 0)
				fail_msg("%s: keep fd %d is %s", what, fd, s->targets[i]);
		} else if (strncmp(s->targets[i], "socket:", 7) == 0) {
			sockets++;
		} else {
			fail_msg("%s: child kept fd %d (%s)", what, fd, s->targets[i]);
		}
	}
	expect_child_stdio(s, what);
	if (!pstatus_has_fd(s->fds, s->nfds, x->keep))
		fail_msg("%s: keep fd %d closed in the child", what, x->keep);
	for (k = 0; k < sizeof(closed) / sizeof(closed[0]); k++)
		if (pstatus_has_fd(s->fds, s->nfds, closed[k]))
			fail_msg("%s: fd %d not closed in the child", what, closed[k]);
	if (sockets != 1)
		fail_msg("%s: %d sockets in the child, want 1 (its IPC end)", what, sockets);
}

/* fd moved to a number above stdio (the child's 0..2 are its own). */
static int
above_stdio(int fd)
{
	int moved;

	assert_true(fd >= 0);
	if (fd > 2)
		return fd;
	moved = fcntl(fd, F_DUPFD, 3);
	assert_true(moved > 2);
	close(fd);
	return moved;
}

void
extra_open(struct extra_fds *x)
{
	assert_int_equal(pipe(x->pipe), 0);
	x->pipe[0] = above_stdio(x->pipe[0]);
	x->pipe[1] = above_stdio(x->pipe[1]);
	x->null = above_stdio(open("/dev/null", O_RDONLY));
	x->keep = above_stdio(open("/dev/zero", O_RDONLY));
}

void
extra_close(struct extra_fds *x)
{
	close(x->pipe[0]);
	close(x->pipe[1]);
	close(x->null);
	close(x->keep);
}

