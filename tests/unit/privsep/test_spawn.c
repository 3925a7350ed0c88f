/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/privsep/test_spawn.c - psep_spawn_child() as any user: the
 * spawn mechanics (with the supervisor row, which changes no privilege),
 * refusal of uid/gid 0 for unprivileged roles, fatal privilege steps
 * (failures injected), psep_child_hello() and psep_close_fds_except().
 * The privilege drop itself is checked in test_spawn_root.c.
 *
 * Runs in:  the test process and children it spawns or forks.
 * Method:   see spawnutil.h; children report through their exit status.
 * Mocks:    fcntl64 (psep_spawn_child's F_SETFL; fcntl is fcntl64 with
 *           _FILE_OFFSET_BITS=64), setgroups, capng_change_id, capng_apply
 *           (--wrap): fail on demand, else pass through.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cap-ng.h>
#include <cmocka.h>

#include "spawnutil.h"

/* ---- mocks -------------------------------------------------------------- */

enum inject {
	INJ_NONE,
	INJ_SETFL,          /* fcntl(F_SETFL) fails (parent side) */
	INJ_SETGROUPS,      /* setgroups fails */
	INJ_CHANGE_ID,      /* capng_change_id fails */
	INJ_CAPNG_APPLY,    /* capng_apply fails */
};

/* Set in the parent around one spawn; the forked child inherits it. */
static enum inject inject;

int __real_fcntl64(int fd, int cmd, ...);
int __wrap_fcntl64(int fd, int cmd, ...);
int __real_setgroups(size_t n, const gid_t *groups);
int __wrap_setgroups(size_t n, const gid_t *groups);
int __real_capng_change_id(int uid, int gid, capng_flags_t flag);
int __wrap_capng_change_id(int uid, int gid, capng_flags_t flag);
int __real_capng_apply(capng_select_t set);
int __wrap_capng_apply(capng_select_t set);

int
__wrap_fcntl64(int fd, int cmd, ...)
{
	unsigned long arg;
	va_list ap;

	va_start(ap, cmd);
	arg = va_arg(ap, unsigned long);
	va_end(ap);
	if (inject == INJ_SETFL && cmd == F_SETFL) {
		errno = EINVAL;
		return -1;
	}
	return __real_fcntl64(fd, cmd, arg);
}

int
__wrap_setgroups(size_t n, const gid_t *groups)
{
	if (inject == INJ_SETGROUPS) {
		errno = EPERM;
		return -1;
	}
	return __real_setgroups(n, groups);
}

int
__wrap_capng_change_id(int uid, int gid, capng_flags_t flag)
{
	if (inject == INJ_CHANGE_ID)
		return -4;
	return __real_capng_change_id(uid, gid, flag);
}

int
__wrap_capng_apply(capng_select_t set)
{
	if (inject == INJ_CAPNG_APPLY)
		return -1;
	return __real_capng_apply(set);
}

/* ---- child mains -------------------------------------------------------- */

struct fd_list {
	const int *fds;
	size_t n;
};

/* 0 if every fd of the list is open in the child. */
static int
main_check_keep(void *arg, int ipc)
{
	const struct fd_list *l = arg;
	size_t i;

	(void)ipc;
	for (i = 0; i < l->n; i++)
		if (fcntl(l->fds[i], F_GETFD) < 0)
			return 1;
	return 0;
}

static int
main_hello(void *arg, int ipc)
{
	(void)arg;
	return psep_child_hello(ipc, PSEP_ROLE_LMTPD, 3) == 0 ? 0 : 1;
}

/* An unprivileged role is never run with uid or gid 0 (any user). */
static void
test_spawn_refuses_uid_or_gid_0_for_unprivileged_roles(void **state)
{
	static const struct {
		enum psep_role role;
		uid_t uid;
		gid_t gid;
	} t[] = {
		{ PSEP_ROLE_LMTPD, 0, 0 },
		{ PSEP_ROLE_LMTPD, 0, 65534 },
		{ PSEP_ROLE_LMTPD, 65534, 0 },
		{ PSEP_ROLE_WRITER_CHILD, 0, 1000 },
		{ PSEP_ROLE_WRITER_CHILD, 1000, 0 },
		{ PSEP_ROLE_REPL_HOOK, 0, 0 },
	};
	char what[64];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct psep_spawn sp = { .role = t[i].role,
					 .creds = { .uid = t[i].uid, .gid = t[i].gid },
					 .main = main_mark };
		pid_t pid;
		int ipc;

		snprintf(what, sizeof(what), "%s as %u:%u", psep_role_name(t[i].role),
			 (unsigned)t[i].uid, (unsigned)t[i].gid);
		pid = spawn(&sp, &ipc);
		assert_true(pid > 0);
		if (wait_byte(ipc) != 0) {
			(void)finish(pid, ipc);
			fail_msg("%s: main ran", what);
		}
		assert_exited(finish(pid, ipc), 1, what);
	}
}

/* A failed privilege step is fatal: the child exits 1 and main never
 * runs (as root the step is made to fail; without root it fails anyway). */
static void
test_spawn_failed_privilege_step_exits_1_before_main(void **state)
{
	static const struct {
		const char *name;
		enum psep_role role;
		enum inject inject;
	} t[] = {
		{ "lmtpd: setgroups fails", PSEP_ROLE_LMTPD, INJ_SETGROUPS },
		{ "lmtpd: capng_change_id fails", PSEP_ROLE_LMTPD, INJ_CHANGE_ID },
		{ "writer-child: setgroups fails", PSEP_ROLE_WRITER_CHILD, INJ_SETGROUPS },
		{ "repl-hook: capng_change_id fails", PSEP_ROLE_REPL_HOOK, INJ_CHANGE_ID },
		{ "writer-seteuid: capng_apply fails", PSEP_ROLE_WRITER_SETEUID,
		  INJ_CAPNG_APPLY },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct psep_spawn sp = { .role = t[i].role,
					 .creds = { .uid = 65534, .gid = 65534 },
					 .main = main_mark };
		pid_t pid;
		int ipc;

		inject = t[i].inject;
		pid = spawn(&sp, &ipc);
		inject = INJ_NONE;
		assert_true(pid > 0);
		if (wait_byte(ipc) != 0) {
			(void)finish(pid, ipc);
			fail_msg("%s: main ran", t[i].name);
		}
		assert_exited(finish(pid, ipc), 1, t[i].name);
	}
}

/* ---- spawn mechanics (any user: the supervisor row changes nothing) ----- */

static void
test_spawn_child_closes_fds_except_ipc_and_keep_fds(void **state)
{
	struct psep_spawn sp = { .role = PSEP_ROLE_SUPERVISOR,
				 .main = main_ready_then_wait, .n_keep_fds = 1 };
	struct extra_fds x;
	struct seen *s = malloc(sizeof(*s));

	(void)state;
	assert_non_null(s);
	extra_open(&x);
	sp.keep_fds = &x.keep;
	assert_exited(spawn_and_look(&sp, s, "supervisor row"), 0, "supervisor row");
	extra_close(&x);
	expect_child_fds(s, &x, "supervisor row");
	free(s);
}

static void
test_spawn_parent_ipc_end_is_nonblocking_and_cloexec(void **state)
{
	struct psep_spawn sp = { .role = PSEP_ROLE_SUPERVISOR,
				 .main = main_ready_then_wait };
	pid_t pid;
	int ipc, type;
	socklen_t len = sizeof(type);

	(void)state;
	pid = spawn(&sp, &ipc);
	assert_true(pid > 0);
	assert_true(fcntl(ipc, F_GETFL) & O_NONBLOCK);
	assert_true(fcntl(ipc, F_GETFD) & FD_CLOEXEC);
	assert_int_equal(getsockopt(ipc, SOL_SOCKET, SO_TYPE, &type, &len), 0);
	assert_int_equal(type, SOCK_SEQPACKET);
	assert_int_equal(wait_byte(ipc), 'r');
	assert_exited(finish(pid, ipc), 0, "supervisor row");
}

/* A supervisor started with stdin and stdout closed gets its socketpair
 * as fds 0 and 1: the child's IPC end must survive the child's stdio
 * setup (/dev/null as 0 and 1). */
static void
test_spawn_ipc_end_survives_parent_with_closed_stdin_and_stdout(void **state)
{
	struct psep_spawn sp = { .role = PSEP_ROLE_SUPERVISOR,
				 .main = main_ready_then_wait };
	int saved[2], ipc = -1, moved = -1, fd;
	char got;
	pid_t pid;

	(void)state;
	fflush(NULL);
	for (fd = 0; fd < 2; fd++) {
		saved[fd] = fcntl(fd, F_DUPFD_CLOEXEC, 3);  /* -1 if not open */
		close(fd);
	}
	pid = spawn(&sp, &ipc);
	if (pid > 0) {
		moved = fcntl(ipc, F_DUPFD_CLOEXEC, 3);  /* ipc may be fd 0 or 1 */
		close(ipc);
	}
	for (fd = 0; fd < 2; fd++) {
		if (saved[fd] >= 0) {
			dup2(saved[fd], fd);
			close(saved[fd]);
		}
	}
	assert_true(pid > 0);
	assert_true(moved > 2);
	got = wait_byte(moved);
	assert_exited(finish(pid, moved), 0, "closed stdio");
	if (got != 'r')
		fail_msg("the child's IPC end was lost (got byte %#x)", (unsigned)got);
}

static bool
hex_bit(const char *hex, int bit)
{
	unsigned long long v = strtoull(hex, NULL, 16);

	return (v >> bit) & 1;
}

static void
test_spawn_child_has_empty_signal_mask_and_leaves_stop_signals_to_supervisor(void **state)
{
	struct psep_spawn sp = { .role = PSEP_ROLE_SUPERVISOR,
				 .main = main_ready_then_wait };
	struct sigaction old_term, old_pipe;
	sigset_t block, old_mask;
	struct seen *s = malloc(sizeof(*s));
	char v[64];
	int st;

	(void)state;
	assert_non_null(s);
	sigemptyset(&block);
	sigaddset(&block, SIGUSR1);
	sigaddset(&block, SIGTERM);
	assert_int_equal(sigprocmask(SIG_BLOCK, &block, &old_mask), 0);
	assert_int_equal(sigaction(SIGTERM, &(struct sigaction){ .sa_handler = SIG_DFL },
				   &old_term), 0);
	assert_int_equal(sigaction(SIGPIPE, &(struct sigaction){ .sa_handler = SIG_DFL },
				   &old_pipe), 0);
	st = spawn_and_look(&sp, s, "signals");
	sigaction(SIGTERM, &old_term, NULL);
	sigaction(SIGPIPE, &old_pipe, NULL);
	sigprocmask(SIG_SETMASK, &old_mask, NULL);
	assert_exited(st, 0, "signals");
	expect_field(s->status, "SigBlk", NO_CAPS, "signals");
	assert_non_null(pstatus_field(s->status, "SigIgn", v, sizeof(v)));
	assert_true(hex_bit(v, SIGPIPE - 1));
	/* SIGTERM/SIGINT/SIGHUP are the supervisor's: a child stops on
	 * SHUTDOWN or EOF, so a unit-wide SIGTERM cannot cut a delivery. */
	assert_true(hex_bit(v, SIGTERM - 1));
	assert_true(hex_bit(v, SIGINT - 1));
	assert_true(hex_bit(v, SIGHUP - 1));
	assert_false(hex_bit(v, SIGCHLD - 1));
	free(s);
}

/* keep_fds are documented without a limit: all of them stay open, or the
 * spawn fails; never silently fewer. */
static void
test_spawn_keeps_every_keep_fd_or_fails(void **state)
{
	enum { N = 16 };
	int keep[N];
	struct fd_list l = { .fds = keep, .n = N };
	struct psep_spawn sp = { .role = PSEP_ROLE_SUPERVISOR, .main = main_check_keep,
				 .arg = &l, .keep_fds = keep, .n_keep_fds = N };
	pid_t pid;
	int ipc, st = 0;
	size_t i;

	(void)state;
	for (i = 0; i < N; i++) {
		keep[i] = open("/dev/null", O_RDONLY);
		assert_true(keep[i] >= 0);
	}
	pid = spawn(&sp, &ipc);
	if (pid > 0)
		st = finish(pid, ipc);
	for (i = 0; i < N; i++)
		close(keep[i]);
	if (pid < 0)
		return;  /* refusing is fine */
	assert_exited(st, 0, "16 keep fds");
}

/* psep_spawn_child failing (here: F_SETFL O_NONBLOCK on its end) must
 * leave no child behind. */
static void
test_spawn_failing_set_nonblock_leaves_no_child(void **state)
{
	struct psep_spawn sp = { .role = PSEP_ROLE_SUPERVISOR, .main = main_mark };
	pid_t pid, left;
	int ipc = -1, saved;

	(void)state;
	inject = INJ_SETFL;
	pid = spawn(&sp, &ipc);
	saved = errno;
	inject = INJ_NONE;
	assert_int_equal(pid, -1);
	assert_int_equal(saved, EINVAL);
	left = waitpid(-1, NULL, 0);  /* reaps a leftover child, if any */
	if (left != -1)
		fail_msg("psep_spawn_child failed but left child %ld running", (long)left);
	assert_int_equal(errno, ECHILD);
}

/* ---- psep_child_hello ------------------------------------------------------ */

enum hello_reply {
	HR_OK,            /* HELLO_REP, same id */
	HR_WRONG_ID,      /* HELLO_REP, id 2 */
	HR_BAD_VERSION,   /* HELLO_REP, version 2 */
	HR_SHUTDOWN,      /* not allowed in state NEW */
	HR_CLOSE,         /* no reply */
};

static void
send_hello_reply(int ipc, enum hello_reply r, uint64_t id)
{
	struct psep_hello h = { .version = PSEP_PROTO_VERSION,
				.role = PSEP_ROLE_SUPERVISOR, .generation = 3 };

	switch (r) {
	case HR_OK:
		break;
	case HR_WRONG_ID:
		id = 2;
		break;
	case HR_BAD_VERSION:
		h.version = PSEP_PROTO_VERSION + 1;
		break;
	case HR_SHUTDOWN:
		assert_int_equal(psep_msg_send(ipc, PSEP_SHUTDOWN, id, NULL, 0, -1), 0);
		return;
	case HR_CLOSE:
		return;
	}
	assert_int_equal(psep_msg_send(ipc, PSEP_HELLO_REP, id, &h, sizeof(h), -1), 0);
}

static void
test_child_hello_needs_a_valid_reply_with_the_same_id(void **state)
{
	static const struct {
		const char *name;
		enum hello_reply reply;
		int exit_code;
	} t[] = {
		{ "HELLO_REP with the same id", HR_OK, 0 },
		{ "HELLO_REP with another id", HR_WRONG_ID, 1 },
		{ "HELLO_REP with another version", HR_BAD_VERSION, 1 },
		{ "SHUTDOWN instead of HELLO_REP", HR_SHUTDOWN, 1 },
		{ "no reply", HR_CLOSE, 1 },
	};
	struct psep_spawn sp = { .role = PSEP_ROLE_SUPERVISOR, .main = main_hello };
	struct pollfd p = { .events = POLLIN };
	struct psep_msg m;
	const char *why = "";
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		pid_t pid = spawn(&sp, &p.fd);

		assert_true(pid > 0);
		assert_int_equal(poll(&p, 1, READY_TIMEOUT_MS), 1);
		if (psep_msg_recv(p.fd, PSEP_ROLE_LMTPD, PSEP_STATE_NEW, &m, &why) < 0)
			fail_msg("%s: HELLO_REQ rejected: %s", t[i].name, why);
		assert_int_equal(m.hdr.type, PSEP_HELLO_REQ);
		assert_int_equal(m.u.hello.version, PSEP_PROTO_VERSION);
		assert_int_equal(m.u.hello.role, PSEP_ROLE_LMTPD);
		assert_int_equal(m.u.hello.generation, 3);
		send_hello_reply(p.fd, t[i].reply, m.hdr.id);
		assert_exited(finish(pid, p.fd), t[i].exit_code, t[i].name);
	}
}

/* ---- psep_close_fds_except --------------------------------------------- */

static const int opened[] = { 5, 7, 9, 20, 100 };
#define NOPENED (sizeof(opened) / sizeof(opened[0]))

struct close_case {
	const char *name;
	int keep[16];
	size_t n;
};

static const struct close_case close_cases[] = {
	{ "keep nothing", { 0 }, 0 },
	{ "keep one", { 7 }, 1 },
	{ "keep unsorted", { 100, 9, 5 }, 3 },
	{ "keep the highest", { 100 }, 1 },
	{ "keep the lowest above 2", { 5 }, 1 },
	{ "keep duplicates", { 7, 7, 20, 20 }, 4 },
	{ "keep 0..2 listed", { 0, 1, 2, 9 }, 4 },
	{ "keep a negative fd", { -1, 20 }, 2 },
	{ "keep an fd that is not open", { 200, 7 }, 2 },
	{ "keep all", { 5, 7, 9, 20, 100 }, 5 },
	{ "keep 16 fds", { 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 20, 100, 101 }, 16 },
};

static bool
in_list(const int *l, size_t n, int fd)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (l[i] == fd)
			return true;
	return false;
}

/* In a forked child: open the fds, close, compare /proc/self/fd with the
 * expectation.  Exit 0 if equal, 1 if not (details on stderr). */
static void __attribute__((noreturn))
close_child(const struct close_case *c)
{
	bool was_open[128];
	int fds[128], n, fd, devnull, bad = 0, i;

	devnull = open("/dev/null", O_RDONLY);
	for (i = 0; i < (int)NOPENED; i++)
		if (dup2(devnull, opened[i]) < 0)
			_exit(3);
	for (fd = 0; fd < 128; fd++)
		was_open[fd] = fcntl(fd, F_GETFD) >= 0;
	psep_close_fds_except(c->keep, c->n);
	n = pstatus_fds(getpid(), fds, 128);
	if (n < 0 || n > 128)
		_exit(4);
	for (fd = 0; fd < 128; fd++) {
		bool want = was_open[fd] && (fd <= 2 || in_list(c->keep, c->n, fd));
		bool have = pstatus_has_fd(fds, n, fd);

		if (want != have) {
			dprintf(2, "%s: fd %d %s\n", c->name, fd, have ? "open" : "closed");
			bad = 1;
		}
	}
	if (n > 0 && fds[n - 1] >= 128 && !in_list(c->keep, c->n, fds[n - 1]))
		bad = 1;
	_exit(bad);
}

static void
test_close_fds_except_keeps_exactly_0_to_2_and_keep(void **state)
{
	size_t i;
	pid_t pid;
	int st;

	(void)state;
	for (i = 0; i < sizeof(close_cases) / sizeof(close_cases[0]); i++) {
		fflush(NULL);
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0)
			close_child(&close_cases[i]);
		assert_int_equal(waitpid(pid, &st, 0), pid);
		assert_exited(st, 0, close_cases[i].name);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_spawn_refuses_uid_or_gid_0_for_unprivileged_roles),
		cmocka_unit_test(test_spawn_failed_privilege_step_exits_1_before_main),
		cmocka_unit_test(test_spawn_child_closes_fds_except_ipc_and_keep_fds),
		cmocka_unit_test(test_spawn_parent_ipc_end_is_nonblocking_and_cloexec),
		cmocka_unit_test(test_spawn_ipc_end_survives_parent_with_closed_stdin_and_stdout),
		cmocka_unit_test(test_spawn_child_has_empty_signal_mask_and_leaves_stop_signals_to_supervisor),
		cmocka_unit_test(test_spawn_keeps_every_keep_fd_or_fails),
		cmocka_unit_test(test_spawn_failing_set_nonblock_leaves_no_child),
		cmocka_unit_test(test_child_hello_needs_a_valid_reply_with_the_same_id),
		cmocka_unit_test(test_close_fds_except_keeps_exactly_0_to_2_and_keep),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
