/* SPDX-License-Identifier: MIT */
/*
 * tests/integration/test_signals.c - SIGTERM and SIGHUP: a stop in the
 * middle of a DATA transfer loses nothing that was acknowledged and ends
 * the open transaction cleanly; a reload with a broken config keeps the
 * old one; a reload with a good config applies it.
 *
 * Runs in:  the integration suite, as root, one stowd per test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include "tests/integration/itest.h"

#define EXIT_TIMEOUT_MS 5000

static struct harness *H;

/* One front-end, so an idle session shows when it has seen the stop. */
static const char *const base_conf[] = { "lmtp_processes = 1", NULL };

static int
setup(void **state)
{
	struct harness_opts o = { .nusers = 3, .conf = base_conf };

	(void)state;
	return itest_test_start(&H, &o);
}

static void
assert_exit_zero_and_nothing_left(void)
{
	int st = 0;

	if (harness_wait_exit(H, EXIT_TIMEOUT_MS, &st) < 0)
		fail_msg("stowd still runs %d ms after SIGTERM", EXIT_TIMEOUT_MS);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		fail_msg("stowd ended with wait status 0x%x, want exit 0", (unsigned)st);
	if (harness_group_left(H, 2000) != 0)
		fail_msg("stowd's children outlived it");
}

static void
test_sigterm_during_data(void **state)
{
	struct lmtpc *c, *idle;
	struct lmtpc_reply r, dr, first;
	char seen[256] = "", first_path[512];
	size_t len, slen;
	char *body = itest_body(30000, 8, &len), *stuffed;
	int n;

	(void)state;
	/* One message acknowledged on this connection, a second one half sent. */
	c = itest_connect(H, HARNESS_UNIX);
	itest_envelope(c);
	itest_cmd(c, 250, NULL, "RCPT TO:<%s>", H->users[0].addr);
	assert_int_equal(lmtpc_data(c, body, len, &dr, &first, 1), 0);
	itest_assert_saved(H, 0, &first, body, len, first_path, sizeof(first_path));
	itest_cmd(c, 250, NULL, "MAIL FROM:<%s>", ITEST_SENDER);
	itest_cmd(c, 250, NULL, "RCPT TO:<%s>", H->users[1].addr);
	itest_cmd(c, 354, NULL, "DATA");
	stuffed = lmtpc_dot_stuff(body, len, &slen);
	assert_int_equal(lmtpc_send(c, stuffed, slen / 2), 0);
	idle = itest_connect(H, HARNESS_UNIX);
	itest_cmd(idle, 250, NULL, "LHLO client.example");

	assert_int_equal(harness_signal(H, SIGTERM), 0);
	if (harness_wait_notify(H, "STOPPING=1", EXIT_TIMEOUT_MS, seen, sizeof(seen)) < 0)
		fail_msg("no STOPPING=1 after SIGTERM (saw: %s)", seen);
	/* The idle session's 421 (or close) shows the front-end is stopping,
	 * so the rest of the body reaches a stopping stowd. */
	lmtpc_set_timeout(idle, EXIT_TIMEOUT_MS);
	if (lmtpc_read_reply(idle, &r) == 0 && r.code != 421)
		fail_msg("idle session at stop: got \"%s\", want 421 or a close", r.text);
	if (lmtpc_wait_closed(idle, EXIT_TIMEOUT_MS) != 0)
		fail_msg("idle session still open %d ms after SIGTERM", EXIT_TIMEOUT_MS);
	lmtpc_free(&idle);
	/* what was acknowledged is on disk */
	assert_int_equal(harness_check_owner_mode(first_path, H->users[0].uid,
						  H->users[0].gid, 0600, seen,
						  sizeof(seen)), 0);

	/* finish the body: 250 with the file, or a 4xx; never silence (a
	 * 421 sent before the close may make the send fail: read it then) */
	n = lmtpc_send(c, stuffed + slen / 2, slen - slen / 2);
	if (lmtpc_read_reply(c, &r) < 0)
		fail_msg("no reply to the DATA in progress at SIGTERM (%s): %s",
			 n < 0 ? "closed while sending the body" : "body sent",
			 lmtpc_strerror(errno));
	if (n < 0 && r.code / 100 != 4)
		fail_msg("stowd closed the session in DATA after \"%s\"", r.text);
	if (r.code == 250)
		itest_assert_saved(H, 1, &r, body, len, NULL, 0);
	else if (r.code / 100 != 4)
		fail_msg("DATA in progress at SIGTERM: got \"%s\", want 250 or 4xx",
			 r.text);
	else
		assert_int_equal(itest_count_new(H, 1), 0);
	/* after that the session is closed (maybe after a 421) */
	lmtpc_set_timeout(c, EXIT_TIMEOUT_MS);
	n = lmtpc_read_reply(c, &r);
	if (n < 0 && errno == ETIMEDOUT)
		fail_msg("session still open %d ms after its transaction ended "
			 "during the stop", EXIT_TIMEOUT_MS);
	if (n == 0 && r.code != 421)
		fail_msg("after the transaction, a stopping stowd sent \"%s\"", r.text);
	if (n == 0 && lmtpc_wait_closed(c, EXIT_TIMEOUT_MS) != 0)
		fail_msg("session not closed after 421");
	assert_exit_zero_and_nothing_left();
	lmtpc_free(&c);
	free(stuffed);
	free(body);
	itest_pass(H);
}

static void
test_sigterm_idle_session_gets_421(void **state)
{
	struct lmtpc *c = itest_connect(H, HARNESS_TCP4);
	struct lmtpc_reply r;

	(void)state;
	itest_cmd(c, 250, NULL, "LHLO client.example");
	assert_int_equal(harness_signal(H, SIGTERM), 0);
	lmtpc_set_timeout(c, EXIT_TIMEOUT_MS);
	if (lmtpc_read_reply(c, &r) == 0 && r.code != 421)
		fail_msg("idle session at stop: got \"%s\", want 421 or a close", r.text);
	assert_int_equal(lmtpc_wait_closed(c, EXIT_TIMEOUT_MS), 0);
	assert_exit_zero_and_nothing_left();
	lmtpc_free(&c);
	itest_pass(H);
}

/* Connect and offer n recipients; returns how many got 250. */
static unsigned
rcpts_accepted(unsigned n)
{
	struct lmtpc *c = itest_connect(H, HARNESS_UNIX);
	struct lmtpc_reply r;
	unsigned ok = 0;

	itest_envelope(c);
	for (unsigned i = 0; i < n; i++) {
		if (lmtpc_rcpt(c, H->users[i].addr, &r) < 0)
			fail_msg("RCPT: %s", lmtpc_strerror(errno));
		if (r.code == 250)
			ok++;
		else if (r.code != 452 || strcmp(r.enhanced, "4.5.3") != 0)
			fail_msg("RCPT %u: \"%s\"", i, r.text);
	}
	itest_cmd(c, 250, NULL, "RSET");
	lmtpc_free(&c);
	return ok;
}

static void
test_sighup_with_broken_config_keeps_the_old_one(void **state)
{
	static const char *const conf[] = { "lmtp_max_recipients = 2", NULL };
	struct harness_opts o = { .nusers = 3, .conf = conf,
				  .conf_text = "no_such_setting = 1\n" };
	char where[200], seen[256] = "";
	int line;
	int64_t deadline;
	bool handled = false;

	(void)state;
	assert_int_equal(rcpts_accepted(3), 3);
	assert_int_equal(harness_write_conf(H, &o), 0);
	line = harness_conf_line(H, "no_such_setting");
	snprintf(where, sizeof(where), "%s:%d:", H->conf_path, line);
	harness_drain_notify(H);
	assert_int_equal(harness_signal(H, SIGHUP), 0);
	/* Reload done = READY=1 again, or the error logged; whichever first. */
	deadline = time(NULL) + 10;
	while (!handled && time(NULL) < deadline) {
		handled = harness_poll_notify(H, "READY=1", 200, seen, sizeof(seen)) == 0 ||
			  harness_log_contains(H, where);
	}
	if (!handled)
		fail_msg("no READY=1 and no \"%s\" in the log after SIGHUP", where);
	assert_true(harness_alive(H));
	/* still the old limit of 5, not 2 */
	assert_int_equal(rcpts_accepted(3), 3);
	unsigned idx[3] = { 0, 1, 2 };

	assert_int_equal(harness_deliver(H, idx, 3, ITEST_MINI_BODY,
					 strlen(ITEST_MINI_BODY)), 0);
	itest_pass(H);
}

static void
test_sighup_with_good_config_applies_it(void **state)
{
	static const char *const conf[] = { "lmtp_max_recipients = 2", NULL };
	struct harness_opts o = { .nusers = 3, .conf = conf };

	(void)state;
	assert_int_equal(rcpts_accepted(3), 3);
	assert_int_equal(harness_write_conf(H, &o), 0);
	assert_int_equal(harness_reload(H), 0);
	assert_int_equal(rcpts_accepted(3), 2);
	/* and it still delivers */
	unsigned idx[2] = { 0, 1 };

	assert_int_equal(harness_deliver(H, idx, 2, ITEST_MINI_BODY,
					 strlen(ITEST_MINI_BODY)), 0);
	itest_pass(H);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_sigterm_during_data, setup, itest_test_teardown),
		cmocka_unit_test_setup_teardown(test_sigterm_idle_session_gets_421, setup, itest_test_teardown),
		cmocka_unit_test_setup_teardown(
			test_sighup_with_broken_config_keeps_the_old_one, setup, itest_test_teardown),
		cmocka_unit_test_setup_teardown(test_sighup_with_good_config_applies_it, setup, itest_test_teardown),
	};

	harness_require_root();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
