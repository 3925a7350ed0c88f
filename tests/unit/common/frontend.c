/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/common/frontend.c - helpers shared by the lmtpd unit tests (see
 * util.h).
 *
 * Runs in:  test executables only, as a normal user.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "tests/unit/common/frontend.h"

int64_t
lt_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
lt_spawn(enum psep_role role, int (*child)(void *arg, int ipc), void *arg,
	 pid_t *pid_out, int *sup_out)
{
	struct psep_hello h = { .version = PSEP_PROTO_VERSION,
				.role = PSEP_ROLE_SUPERVISOR };
	struct psep_msg m;
	const char *why;
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	*pid_out = fork();
	assert_true(*pid_out >= 0);
	if (*pid_out == 0) {
		close(sv[0]);
		_exit(child(arg, sv[1]));
	}
	close(sv[1]);
	*sup_out = sv[0];
	assert_int_equal(psep_msg_recv(sv[0], role, PSEP_STATE_NEW, &m, &why), 0);
	assert_int_equal(m.hdr.type, PSEP_HELLO_REQ);
	assert_int_equal(m.u.hello.role, role);
	assert_int_equal(psep_msg_send(sv[0], PSEP_HELLO_REP, m.hdr.id, &h, sizeof(h), -1), 0);
	assert_int_equal(fcntl(sv[0], F_SETFL, O_NONBLOCK), 0);
}

int
lt_wait_exit(pid_t *pid, const char *who, void (*serve)(void *ctx), void *ctx)
{
	int64_t end = lt_now_ms() + 5000;
	int st;

	while (waitpid(*pid, &st, WNOHANG) == 0) {
		if (lt_now_ms() > end)
			fail_msg("%s did not exit", who);
		serve(ctx);
	}
	*pid = -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}
