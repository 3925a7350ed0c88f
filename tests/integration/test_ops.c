/* SPDX-License-Identifier: MIT */
/*
 * tests/integration/test_ops.c - the admin's window on one stowd: stowctl
 * (status and JSON, user, reload good and refused, stop), permission
 * denied for a non-root stowctl, hostile input on the control socket, and
 * the systemd watchdog seen through the harness's private NOTIFY_SOCKET.
 *
 * Runs in:  the integration suite, as root, one stowd per test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "privsep/msg.h"
#include "tests/integration/itest.h"
#include "tests/integration/itest_ops.h"

#define MSG "Subject: x\r\nmessage-id:\r\n <m1.ops@example.org>\r\n\r\nhi\r\n"

static struct harness *H;

static int
setup(void **state)
{
	struct harness_opts o = { .nusers = 3 };

	(void)state;
	return itest_test_start(&H, &o);
}

/* stowd under a watchdog of 400 ms (WATCHDOG_USEC as systemd sets it). */
static int
setup_watchdog(void **state)
{
	struct harness_opts o = { .nusers = 1 };
	int rc;

	(void)state;
	setenv("WATCHDOG_USEC", "400000", 1);
	rc = itest_test_start(&H, &o);
	unsetenv("WATCHDOG_USEC");
	return rc;
}

static void
test_watchdog_pings_while_healthy_and_stops_when_stalled(void **state)
{
	char seen[512] = "";

	(void)state;
	itest_begin(H);
	harness_drain_notify(H);
	assert_int_equal(harness_wait_notify(H, "WATCHDOG=1", 2000, seen, sizeof(seen)), 0);
	seen[0] = '\0';
	assert_int_equal(harness_wait_notify(H, "WATCHDOG=1", 2000, seen, sizeof(seen)), 0);
	if (strstr(seen, "STATUS=ready generation 0, ") == NULL ||
	    strstr(seen, " mode; delivered 0, tempfail 0, permfail 0; queue 0") == NULL)
		fail_msg("no STATUS= line with the pings: %s", seen);
	/* a loop that stalls for longer than half the interval: that tick
	 * sends no WATCHDOG=1 and says why */
	assert_int_equal(harness_signal(H, SIGSTOP), 0);
	usleep(600 * 1000);
	assert_int_equal(harness_signal(H, SIGCONT), 0);
	for (int k = 0; k < 50 && !harness_log_contains(H, "watchdog: the loop turned after"); k++)
		usleep(50 * 1000);
	assert_true(harness_log_contains(H, "watchdog: the loop turned after"));
	/* and it pings again once the loop keeps pace */
	harness_drain_notify(H);
	assert_int_equal(harness_wait_notify(H, "WATCHDOG=1", 2000, NULL, 0), 0);
	itest_pass(H);
}

static void
test_status_text_and_json(void **state)
{
	char *out = NULL;
	int rc;

	(void)state;
	itest_begin(H);
	rc = iops_ctl(H, &out, "status", NULL);
	assert_int_equal(rc, 0);
	assert_non_null(strstr(out, "stowd 0.1.0"));
	assert_non_null(strstr(out, "delivery_mode"));
	assert_non_null(strstr(out, "lmtpd"));
	assert_non_null(strstr(out, "fork cache"));
	assert_non_null(strstr(out, "replicas: none configured"));
	free(out);
	assert_int_equal(harness_deliver(H, (unsigned[]){ 0 }, 1, MSG, strlen(MSG)), 0);
	rc = iops_ctl(H, &out, "-j", "status", NULL);
	assert_int_equal(rc, 0);
	iops_json_check(out, "status");
	assert_non_null(strstr(out, "\"generation\":"));
	assert_non_null(strstr(out, "\"role\":\"lmtpd\""));
	assert_non_null(strstr(out, "\"ok\":1,"));
	if (strcmp(H->mode, "fork") == 0 && strstr(out, "\"misses\":1,\"evictions\":0}") == NULL)
		fail_msg("fork mode: one miss expected: %.900s", strstr(out, "\"fork_cache\""));
	free(out);
	/* one delivery line with the Message-ID, as Dovecot logs it */
	assert_true(harness_log_contains(H, "delivery session="));
	assert_true(harness_log_contains(H, " outcome=ok code=250 status=2.0.0 user=u1 "
					 "mailbox=INBOX guid="));
	assert_true(harness_log_contains(H, " msgid=<m1.ops@example.org> size="));
	itest_pass(H);
}

static void
test_user_known_and_unknown(void **state)
{
	char *out = NULL;
	int rc;

	(void)state;
	itest_begin(H);
	assert_int_equal(harness_deliver(H, (unsigned[]){ 1 }, 1, MSG, strlen(MSG)), 0);
	rc = iops_ctl(H, &out, "user", H->users[1].name, NULL);
	assert_int_equal(rc, 0);
	assert_non_null(strstr(out, "MAILBOX INBOX MESSAGES 1 "));
	assert_non_null(strstr(out, "s ago, 250, guid "));
	free(out);
	rc = iops_ctl(H, &out, "user", H->users[2].name, NULL);
	assert_int_equal(rc, 0);
	assert_non_null(strstr(out, "last delivery: none since stowd started"));
	free(out);
	rc = iops_ctl(H, &out, "-j", "user", H->users[1].name, NULL);
	assert_int_equal(rc, 0);
	iops_json_check(out, "user");
	assert_non_null(strstr(out, "\"last_delivery\":{\"time\":"));
	free(out);
	rc = iops_ctl(H, &out, "user", "nosuchuser", NULL);
	assert_int_equal(rc, 1);
	assert_non_null(strstr(out, "unknown user"));
	free(out);
	itest_pass(H);
}

static void
test_reload_refused_then_applied(void **state)
{
	char *out = NULL, *good = NULL;
	size_t len;
	int rc;

	(void)state;
	itest_begin(H);
	assert_int_equal(harness_read_file(H->conf_path, &good, &len), 0);
	assert_int_equal(harness_write_file(H->conf_path, "no_such_setting = 1\n", 20, 0644), 0);
	rc = iops_ctl_sock(H, &out, "reload", NULL);
	assert_int_equal(rc, 1);
	assert_non_null(strstr(out, "no_such_setting"));
	free(out);
	/* still serving on the old config */
	assert_int_equal(harness_deliver(H, (unsigned[]){ 0 }, 1, MSG, strlen(MSG)), 0);
	assert_int_equal(harness_write_file(H->conf_path, good, len, 0644), 0);
	rc = iops_ctl(H, &out, "reload", NULL);
	assert_int_equal(rc, 0);
	assert_non_null(strstr(out, "reloaded, ready: generation 1"));
	free(out);
	rc = iops_ctl(H, &out, "-j", "status", NULL);
	assert_int_equal(rc, 0);
	assert_non_null(strstr(out, "\"generation\":1,"));
	free(out);
	free(good);
	itest_pass(H);
}

static void
test_stop(void **state)
{
	char *out = NULL;
	int st = 0;

	(void)state;
	itest_begin(H);
	assert_int_equal(iops_ctl(H, &out, "stop", NULL), 0);
	free(out);
	if (harness_wait_exit(H, 10000, &st) < 0)
		fail_msg("stowd still runs after stowctl stop");
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	assert_int_equal(iops_ctl(H, &out, "status", NULL), 3);
	assert_non_null(strstr(out, "not running"));
	free(out);
	itest_pass(H);
}

static void
test_non_root_is_denied(void **state)
{
	char *out = NULL;
	int rc;

	(void)state;
	itest_begin(H);
	rc = iops_ctl_as(H, H->run_uid, H->run_gid, &out, "status", NULL);
	assert_int_equal(rc, 4);
	assert_non_null(strstr(out, "permission denied"));
	free(out);
	itest_pass(H);
}

static void
test_hostile_control_input(void **state)
{
	char *before = NULL, *out = NULL;

	(void)state;
	itest_begin(H);
	assert_int_equal(iops_ctl(H, &before, "-j", "status", NULL), 0);
	iops_hostile_control(H->control_path);
	assert_true(harness_alive(H));
	assert_int_equal(iops_ctl(H, &out, "status", NULL), 0);
	assert_non_null(strstr(out, "generation 0"));
	free(out);
	free(before);
	assert_int_equal(harness_deliver(H, (unsigned[]){ 0 }, 1, MSG, strlen(MSG)), 0);
	itest_pass(H);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_status_text_and_json, setup, itest_test_teardown),
		cmocka_unit_test_setup_teardown(test_user_known_and_unknown, setup, itest_test_teardown),
		cmocka_unit_test_setup_teardown(test_reload_refused_then_applied, setup, itest_test_teardown),
		cmocka_unit_test_setup_teardown(test_non_root_is_denied, setup, itest_test_teardown),
		cmocka_unit_test_setup_teardown(test_hostile_control_input, setup, itest_test_teardown),
		cmocka_unit_test_setup_teardown(test_stop, setup, itest_test_teardown),
		cmocka_unit_test_setup_teardown(
			test_watchdog_pings_while_healthy_and_stops_when_stalled,
			setup_watchdog, itest_test_teardown),
	};

	harness_require_root();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
