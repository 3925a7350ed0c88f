/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/privsep/test_child.c - the child skeleton (privsep/child.c)
 * with a small fake role in a forked process: EOF on the link ends it with
 * 0, a bad message with 1, SHUTDOWN ends an idle child at once and a busy
 * one only after its work is done, and every run calls setup and
 * teardown.
 *
 * Runs in:  test executables only, as a normal user (no privilege drop,
 *           no seccomp: the child calls psep_child_run directly).
 */
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "../common/frontend.h"
#include "privsep/child.h"
#include "privsep/msg.h"
#include "privsep/privsep.h"

/* ---- the fake role (runs in the child) --------------------------------- */

/* The running child, for the callbacks that need it. */
static struct psep_child *role_child;

struct role {
	bool busy;            /* work that holds the exit back */
	unsigned setups;
};

static void
role_setup(void *arg, struct psep_child *ch)
{
	struct role *r = arg;

	r->setups++;
	log_info("setup base=%s link=%s", psep_child_base(ch) ? "yes" : "no",
		 psep_child_link(ch) ? "yes" : "no");
	role_child = ch;
}

static void
role_dispatch(void *arg, struct psep_msg *m)
{
	struct role *r = arg;

	/* a RCPT_REP stands for "the last piece of work is done" */
	if (m->hdr.type == PSEP_RCPT_REP) {
		r->busy = false;
		log_info("work done shutting_down=%d",
			 psep_child_shutting_down(role_child) ? 1 : 0);
		psep_child_maybe_exit(role_child);
	}
}

static bool
role_idle(void *arg)
{
	const struct role *r = arg;

	return !r->busy;
}

static void
role_shutdown(void *arg)
{
	struct role *r = arg;

	log_info("winding down busy=%d", r->busy ? 1 : 0);
}

static void
role_teardown(void *arg)
{
	(void)arg;
}

static const struct psep_child_ops role_ops = {
	.setup = role_setup,
	.dispatch = role_dispatch,
	.idle = role_idle,
	.shutdown = role_shutdown,
	.teardown = role_teardown,
};

static int
child_main(void *arg, int ipc)
{
	struct role r = { .busy = arg != NULL };
	const struct psep_child_args a = {
		.role = PSEP_ROLE_LMTPD, .name = "test-child", .queue_max = 65536,
		.ops = &role_ops, .arg = &r,
	};
	int status = psep_child_run(&a, ipc);

	return r.setups == 1 ? status : 99;
}

/* ---- the supervisor's side (the test) ----------------------------------- */

struct fx {
	pid_t pid;
	int sup;
};

static int
setup(void **state)
{
	static struct fx fx;

	fx.pid = -1;
	fx.sup = -1;
	*state = &fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *fx = *state;

	if (fx->pid > 0) {
		kill(fx->pid, SIGKILL);
		waitpid(fx->pid, NULL, 0);
	}
	if (fx->sup >= 0)
		close(fx->sup);
	return 0;
}

/* Nothing to serve while waiting: the tests read what they expect. */
static void
no_serve(void *ctx)
{
	(void)ctx;
}

/* Receive the next message from the child (5 s at most); -1 on EOF. */
static int
recv_from_child(struct fx *fx, struct psep_msg *m)
{
	struct pollfd p = { .fd = fx->sup, .events = POLLIN };
	const char *why = NULL;

	assert_int_equal(poll(&p, 1, 5000), 1);
	if (psep_msg_recv(fx->sup, PSEP_ROLE_LMTPD, PSEP_STATE_READY, m, &why) == -1)
		return -1;
	return 0;
}

/* The next message is a PSEP_LOG whose text starts with prefix. */
static void
expect_log(struct fx *fx, const char *prefix)
{
	struct psep_msg m;

	assert_int_equal(recv_from_child(fx, &m), 0);
	assert_int_equal(m.hdr.type, PSEP_LOG);
	assert_true(m.u.log.text_len >= strlen(prefix));
	assert_memory_equal(m.u.log.text, prefix, strlen(prefix));
	psep_msg_clear(&m);
}

static void
send_to_child(struct fx *fx, uint16_t type, const void *body, size_t len)
{
	assert_int_equal(psep_msg_send(fx->sup, type, 7, body, len, -1), 0);
}

static void
send_work_done(struct fx *fx)
{
	struct psep_rcpt_rep rep;

	memset(&rep, 0, sizeof(rep));
	rep.result.status = DLV_OK;
	rep.result.code = 250;
	xstrlcpy(rep.result.enhanced, "2.1.5", sizeof(rep.result.enhanced));
	xstrlcpy(rep.result.text, "ok", sizeof(rep.result.text));
	send_to_child(fx, PSEP_RCPT_REP, &rep, sizeof(rep));
}

static void
start(struct fx *fx, bool busy)
{
	lt_spawn(PSEP_ROLE_LMTPD, child_main, busy ? (void *)1 : NULL, &fx->pid,
		 &fx->sup);
	expect_log(fx, "setup base=yes link=yes");
}

static void
test_child_link_closed_exits_0(void **state)
{
	struct fx *fx = *state;

	start(fx, true);
	close(fx->sup);
	fx->sup = -1;
	assert_int_equal(lt_wait_exit(&fx->pid, "child", no_serve, NULL), 0);
}

static void
test_child_bad_message_exits_1(void **state)
{
	struct fx *fx = *state;
	char junk[3] = { 1, 2, 3 };

	start(fx, false);
	assert_int_equal(send(fx->sup, junk, sizeof(junk), 0), (ssize_t)sizeof(junk));
	assert_int_equal(lt_wait_exit(&fx->pid, "child", no_serve, NULL), 1);
}

static void
test_child_shutdown_when_idle_exits_0(void **state)
{
	struct fx *fx = *state;
	struct psep_msg m;

	start(fx, false);
	send_to_child(fx, PSEP_SHUTDOWN, NULL, 0);
	expect_log(fx, "winding down busy=0");
	assert_int_equal(recv_from_child(fx, &m), -1);   /* EOF: it is gone */
	assert_int_equal(lt_wait_exit(&fx->pid, "child", no_serve, NULL), 0);
}

static void
test_child_shutdown_waits_for_work_then_exits_0(void **state)
{
	struct fx *fx = *state;
	struct psep_msg m;

	start(fx, true);
	send_to_child(fx, PSEP_SHUTDOWN, NULL, 0);
	expect_log(fx, "winding down busy=1");
	send_to_child(fx, PSEP_SHUTDOWN, NULL, 0);        /* a second is ignored */
	/* still there: it answers the end of its work */
	send_work_done(fx);
	expect_log(fx, "work done shutting_down=1");
	assert_int_equal(recv_from_child(fx, &m), -1);
	assert_int_equal(lt_wait_exit(&fx->pid, "child", no_serve, NULL), 0);
}

static void
test_child_work_done_without_shutdown_keeps_running(void **state)
{
	struct fx *fx = *state;

	start(fx, true);
	send_work_done(fx);
	expect_log(fx, "work done shutting_down=0");
	assert_int_equal(waitpid(fx->pid, NULL, WNOHANG), 0);
	send_to_child(fx, PSEP_SHUTDOWN, NULL, 0);
	expect_log(fx, "winding down busy=0");
	assert_int_equal(lt_wait_exit(&fx->pid, "child", no_serve, NULL), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_child_link_closed_exits_0,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_child_bad_message_exits_1,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_child_shutdown_when_idle_exits_0,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_child_shutdown_waits_for_work_then_exits_0, setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_child_work_done_without_shutdown_keeps_running, setup,
			teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
