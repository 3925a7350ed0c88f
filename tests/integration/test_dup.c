/* SPDX-License-Identifier: MIT */
/*
 * tests/integration/test_dup.c - lmtp_duplicate_window: the same message
 * (Message-ID and body) delivered twice gets the GUID already stored and
 * no second copy; without a Message-ID, with another body, or with the
 * window off it is saved again; the window survives a restart of stowd;
 * each suppressed copy is counted (stowctl status, the metrics counter).
 *
 * Runs in:  the integration suite, as root, one stowd for the program.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/integration/itest.h"
#include "tests/integration/itest_ops.h"

#define NUSERS 4

static struct harness *H;

static const char *const conf_on[] = { "lmtp_duplicate_window = 1h", NULL };

static int
group_setup(void **state)
{
	struct harness_opts o = { .nusers = NUSERS, .conf = conf_on };

	(void)state;
	return itest_group_start(&H, &o);
}

/* Deliver body to user idx, 250 asserted; its GUID into guid[33]. */
static void
deliver(unsigned idx, const char *body, char guid[33])
{
	struct lmtpc *c = itest_connect(H, HARNESS_UNIX);
	struct lmtpc_reply dr, rr;

	itest_envelope(c);
	itest_cmd(c, 250, NULL, "RCPT TO:<%s>", H->users[idx].addr);
	assert_int_equal(lmtpc_data(c, body, strlen(body), &dr, &rr, 1), 0);
	assert_int_equal(dr.code, 354);
	if (rr.code != 250)
		fail_msg("%d %s", rr.code, rr.text);
	assert_int_equal(harness_reply_guid(rr.text, guid), 0);
	itest_cmd(c, 221, NULL, "QUIT");
	lmtpc_free(&c);
}

/* The supervisor's count of suppressed duplicates (stowctl -j status). */
static long
duplicates(void)
{
	char *out = NULL;
	const char *p;
	long n;

	assert_int_equal(iops_ctl(H, &out, "-j", "status", NULL), 0);
	iops_json_check(out, "stowctl -j status");
	p = strstr(out, "\"duplicates\":");
	assert_non_null(p);
	n = strtol(p + strlen("\"duplicates\":"), NULL, 10);
	free(out);
	return n;
}

static const char msg1[] =
	"Message-ID: <dup-1@example.net>\r\nSubject: once\r\n\r\nthe body\r\n";

static void
test_same_message_twice_is_saved_once(void **state)
{
	char g1[33], g2[33];
	long before;

	(void)state;
	before = duplicates();
	deliver(0, msg1, g1);
	assert_int_equal(duplicates(), before);
	deliver(0, msg1, g2);
	assert_string_equal(g1, g2);
	assert_int_equal(duplicates(), before + 1);
	assert_int_equal(itest_count_new(H, 0), 1);
	assert_int_equal(harness_find_guid(H, 0, g1, NULL, 0), 0);
	/* another recipient has a window of its own */
	deliver(1, msg1, g2);
	assert_string_not_equal(g1, g2);
	assert_int_equal(itest_count_new(H, 1), 1);
	itest_pass(H);
}

static void
test_no_message_id_or_other_body_is_saved_again(void **state)
{
	static const char noid[] = "Subject: no id\r\n\r\nthe body\r\n";
	static const char other[] =
		"Message-ID: <dup-1@example.net>\r\nSubject: once\r\n\r\nanother body\r\n";
	char g1[33], g2[33];
	long before;

	(void)state;
	before = duplicates();
	deliver(2, noid, g1);
	deliver(2, noid, g2);
	assert_string_not_equal(g1, g2);
	deliver(2, msg1, g1);
	deliver(2, other, g2);
	assert_string_not_equal(g1, g2);
	assert_int_equal(itest_count_new(H, 2), 4);
	assert_int_equal(duplicates(), before);
	itest_pass(H);
}

static void
test_window_survives_restart_and_can_be_turned_off(void **state)
{
	static const char msg3[] =
		"Message-ID: <dup-3@example.net>\r\n\r\nrestart\r\n";
	static const char *const conf_off[] = { "lmtp_duplicate_window = 0", NULL };
	struct harness_opts o = { .nusers = NUSERS, .conf = conf_off };
	char g1[33], g2[33];

	(void)state;
	deliver(3, msg3, g1);
	assert_int_equal(harness_stop(H, 0, NULL), 0);
	assert_int_equal(harness_start(H), 0);
	deliver(3, msg3, g2);
	assert_string_equal(g1, g2);
	assert_int_equal(itest_count_new(H, 3), 1);
	/* off: the same message is a new delivery */
	assert_int_equal(harness_write_conf(H, &o), 0);
	assert_int_equal(harness_reload(H), 0);
	deliver(3, msg3, g2);
	assert_string_not_equal(g1, g2);
	assert_int_equal(itest_count_new(H, 3), 2);
	itest_pass(H);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_same_message_twice_is_saved_once,
						itest_setup, itest_teardown),
		cmocka_unit_test_setup_teardown(test_no_message_id_or_other_body_is_saved_again,
						itest_setup, itest_teardown),
		cmocka_unit_test_setup_teardown(test_window_survives_restart_and_can_be_turned_off,
						itest_setup, itest_teardown),
	};

	return cmocka_run_group_tests(tests, group_setup, itest_group_teardown);
}
