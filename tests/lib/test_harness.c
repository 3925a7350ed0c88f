/* SPDX-License-Identifier: MIT */
/*
 * tests/lib/test_harness.c - self-test of tests/lib/harness.c: the tree,
 * users and config it writes, start/reload/stop against fake_notifyd,
 * process discovery, and the Maildir/stored-message checks.
 *
 * Runs in:  the unit suite.  Needs root (users, chown); skipped otherwise.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tests/lib/harness.h"

/* The harness of the running test; freed by teardown even after a failure. */
static struct harness *cur;

static int
teardown(void **state)
{
	(void)state;
	harness_free(&cur);
	unsetenv("FAKE_NOTIFYD_EXIT");
	unsetenv("FAKE_NOTIFYD_LINGER");
	unsetenv("FAKE_NOTIFYD_IGNORE_TERM");
	return 0;
}

static struct harness *
new_harness(const struct harness_opts *o)
{
	struct harness *h;

	h = harness_new(o);
	assert_non_null(h);
	cur = h;
	snprintf(h->bin, sizeof(h->bin), "%s", getenv("FAKE_NOTIFYD"));
	snprintf(h->mode, sizeof(h->mode), "seteuid");
	return h;
}

static void
test_tree_users_and_config(void **state)
{
	static const char *const conf[] = { "lmtp_max_recipients = 2",
					    "extra_key = x", NULL };
	struct harness_opts o = { .nusers = 4, .conf = conf,
				  .conf_text = "# tail\n" };
	struct harness *h = new_harness(&o);
	char why[256], *text;
	char line[256];

	(void)state;
	assert_int_equal(h->nusers, 4);
	for (unsigned i = 0; i < h->nusers; i++) {
		const struct harness_user *u = &h->users[i];

		assert_int_equal(u->uid, HARNESS_UID_BASE + i + 1);
		if (harness_check_owner_mode(u->home, u->uid, u->gid, 0700, why,
					     sizeof(why)) != 0)
			fail_msg("%s", why);
		snprintf(line, sizeof(line), "u%u@example.org", i + 1);
		if (getenv("STOWD_TEST_DOMAIN") == NULL)
			assert_string_equal(u->addr, line);
	}
	assert_int_equal(harness_read_file(h->passwd_path, &text, NULL), 0);
	snprintf(line, sizeof(line), "u2:x:%u:%u:test user 2:%s:/bin/false\n",
		 HARNESS_UID_BASE + 2, HARNESS_UID_BASE + 2, h->users[1].home);
	assert_non_null(strstr(text, line));
	free(text);

	assert_int_equal(harness_read_file(h->conf_path, &text, NULL), 0);
	assert_non_null(strstr(text, "\nlmtp_max_recipients = 2\n"));
	assert_null(strstr(text, "lmtp_max_recipients = 5"));
	assert_non_null(strstr(text, "\nextra_key = x\n# tail\n"));
	assert_non_null(strstr(text, h->listen[HARNESS_UNIX]));
	assert_non_null(strstr(text, "run_user = nobody\n"));
	free(text);
	assert_int_equal(harness_conf_line(h, "# stowd.conf"), 1);
	assert_true(harness_conf_line(h, "extra_key") > 2);
	assert_int_equal(harness_conf_line(h, "nope"), -1);
	assert_string_equal(h->listen[HARNESS_TCP4], strstr(h->listen[HARNESS_TCP4],
							     "tcp:127.0.0.1:"));
	harness_free(&cur);
	assert_null(cur);
}

static void
test_start_reload_stop(void **state)
{
	struct harness *h = new_harness(NULL);
	struct harness_proc p[8];
	pid_t writer;
	int st = -1, n;

	(void)state;
	assert_int_equal(harness_start(h), 0);
	assert_true(harness_alive(h));
	n = harness_find_role(h, HARNESS_ROLE_LMTPD, p, 8);
	assert_int_equal(n, 1);
	assert_int_equal(p[0].uid[0], h->run_uid);
	assert_int_equal(p[0].uid[3], h->run_uid);
	assert_int_equal(p[0].cap_eff, 0);
	assert_int_equal(p[0].ppid, h->pid);
	assert_int_equal(p[0].pgrp, h->pid);
	n = harness_find_role(h, HARNESS_ROLE_WRITER, p, 8);
	assert_int_equal(n, 1);
	assert_int_equal(p[0].uid[0], 0);
	writer = p[0].pid;
	assert_int_equal(harness_find_role(h, HARNESS_ROLE_ANY, p, 8), 2);
	assert_int_equal(harness_wait_role(h, HARNESS_ROLE_WRITER, 1, NULL, 0, 1000), 1);
	assert_int_equal(harness_wait_role(h, HARNESS_ROLE_WRITER, 1, &writer, 1, 100),
			 -1);

	assert_int_equal(harness_reload(h), 0);
	assert_int_equal(harness_stop(h, 5000, &st), 0);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	assert_false(harness_alive(h));
	assert_int_equal(harness_group_left(h, 2000), 0);
	assert_true(harness_log_contains(h, "fake_notifyd: children"));
}

static void
test_start_fails_fast_when_stowd_exits(void **state)
{
	struct harness *h = new_harness(NULL);
	time_t t0 = time(NULL);

	(void)state;
	setenv("FAKE_NOTIFYD_EXIT", "3", 1);
	assert_int_equal(harness_start(h), -1);
	unsetenv("FAKE_NOTIFYD_EXIT");
	assert_true(time(NULL) - t0 < 5);
	assert_false(harness_alive(h));
	assert_true(WIFEXITED(h->exit_status));
	assert_int_equal(WEXITSTATUS(h->exit_status), 3);
}

static void
test_leftovers_are_found_and_killed(void **state)
{
	struct harness *h = new_harness(NULL);
	int st;

	(void)state;
	setenv("FAKE_NOTIFYD_LINGER", "1", 1);
	assert_int_equal(harness_start(h), 0);
	unsetenv("FAKE_NOTIFYD_LINGER");
	assert_int_equal(harness_stop(h, 5000, &st), 0);
	assert_int_equal(harness_group_left(h, 100), 2);
	harness_kill_group(h);
	assert_int_equal(harness_group_left(h, 0), 0);
}

static void
test_stop_kills_a_stuck_stowd(void **state)
{
	struct harness *h = new_harness(NULL);
	int st;

	(void)state;
	setenv("FAKE_NOTIFYD_IGNORE_TERM", "1", 1);
	assert_int_equal(harness_start(h), 0);
	unsetenv("FAKE_NOTIFYD_IGNORE_TERM");
	assert_int_equal(harness_stop(h, 200, &st), -1);
	assert_true(WIFSIGNALED(st));
	assert_int_equal(WTERMSIG(st), SIGKILL);
	assert_int_equal(harness_group_left(h, 2000), 0);
}

static void
test_check_stored_table(void **state)
{
	static const char body[] = "Subject: x\r\n\r\nline\r\n";
	static const struct {
		const char *file;
		int rc;
		const char *why;
	} cases[] = {
		{ "Return-Path: <s@x>\nDelivered-To: u1@example.org\n"
		  "Received: from a\n\tby b; date\nSubject: x\n\nline\n", 0, "" },
		{ "Return-Path: <s@x>\nDelivered-To: <u1@example.org>\n"
		  "Received: a\nReceived: b\n c\nSubject: x\n\nline\n", 0, "" },
		{ "Return-Path: <s@x>\nDelivered-To: u2@example.org\n"
		  "Received: a\nSubject: x\n\nline\n", -1, "Delivered-To does not name" },
		{ "Return-Path: <s@x>\nDelivered-To: u1@example.org\n"
		  "Subject: x\n\nline\n", -1, "added headers: 1 Return-Path" },
		{ "Return-Path: <s@x>\nX-Other: 1\nDelivered-To: u1@example.org\n"
		  "Received: a\nSubject: x\n\nline\n", -1, "unexpected line" },
		{ "Return-Path: <s@x>\nDelivered-To: u1@example.org\n"
		  "Received: a\nSubject: x\r\n\r\nline\r\n", -1, "does not end with" },
		{ "\tReturn-Path: <s@x>\nDelivered-To: u1@example.org\n"
		  "Received: a\nSubject: x\n\nline\n", -1, "unexpected line" },
		{ "Subject: x\n\nline\n", -1, "added headers: 0" },
		{ "line\n", -1, "does not end with" },
	};
	char why[256];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc;

		why[0] = '\0';
		rc = harness_check_stored(cases[i].file, strlen(cases[i].file),
					  "u1@example.org", body, strlen(body), why,
					  sizeof(why));
		if (rc != cases[i].rc || strstr(why, cases[i].why) == NULL)
			fail_msg("case %zu: rc %d why \"%s\"", i, rc, why);
	}
}

static void
test_reply_guid(void **state)
{
	char g[33];

	(void)state;
	assert_int_equal(harness_reply_guid("250 2.0.0 <u1@x> s1 Saved as "
					    "0123456789abcdef0123456789ABCDEF", g), 0);
	assert_string_equal(g, "0123456789abcdef0123456789ABCDEF");
	assert_int_equal(harness_reply_guid("250 2.0.0 Saved as 0123", g), -1);
	assert_int_equal(harness_reply_guid("250 2.0.0 Saved as "
					    "0123456789abcdef0123456789abcdef0", g), -1);
	assert_int_equal(harness_reply_guid("250 2.0.0 ok", g), -1);
}

static int
plant(void *arg)
{
	const char *home = arg;
	char path[256];

	snprintf(path, sizeof(path), "%s/Maildir", home);
	if (mkdir(path, 0700) < 0)
		return -1;
	snprintf(path, sizeof(path), "%s/Maildir/new", home);
	if (mkdir(path, 0700) < 0)
		return -1;
	snprintf(path, sizeof(path), "%s/Maildir/new/1.M2P3G00112233445566778899aabbccddeeff.h,S=5",
		 home);
	if (harness_write_file(path, "hello", 5, 0600) < 0)
		return -1;
	snprintf(path, sizeof(path), "%s/Maildir/link", home);
	return symlink("/etc/passwd", path);
}

static void
test_maildir_helpers(void **state)
{
	struct harness *h = new_harness(NULL);
	struct harness_user *u;
	char why[256], path[512], *out = NULL, **names;
	const char *const argv[] = { "/bin/sh", "-c", "echo hi; echo err >&2; exit 3",
				     NULL };
	int st, n;

	(void)state;
	u = &h->users[0];
	assert_int_equal(harness_count_new(h, 0), 0);       /* no Maildir yet */
	assert_int_equal(harness_run_as(u->uid, u->gid, plant, h->users[0].home), 0);
	assert_int_equal(harness_count_new(h, 0), 1);
	assert_int_equal(harness_count_files(u->maildir), 1);   /* link not counted */
	n = harness_maildir_list(h, 0, "", &names);
	assert_int_equal(n, 2);
	assert_string_equal(names[0], "link");
	assert_string_equal(names[1], "new");
	harness_names_free(&names, n);
	assert_null(names);
	assert_int_equal(harness_find_guid(h, 0, "00112233445566778899AABBCCDDEEFF",
					   path, sizeof(path)), 0);
	if (harness_check_owner_mode(path, u->uid, u->gid, 0600, why, sizeof(why)) != 0)
		fail_msg("%s", why);
	assert_int_equal(harness_check_owner_mode(path, u->uid, u->gid, 0644, why,
						  sizeof(why)), -1);
	snprintf(path, sizeof(path), "%s/link", u->maildir);
	assert_int_equal(harness_check_owner_mode(path, u->uid, u->gid, 0777, why,
						  sizeof(why)), -1);
	assert_non_null(strstr(why, "symlink"));
	assert_int_equal(harness_find_guid(h, 1, "00112233445566778899aabbccddeeff",
					   path, sizeof(path)), -1);

	assert_int_equal(harness_run_capture(argv, 5000, &st, &out), 0);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 3);
	assert_string_equal(out, "hi\nerr\n");
	free(out);
}

static void
test_crlf_to_lf(void **state)
{
	size_t n;
	char *s = harness_crlf_to_lf("a\r\nb\rc\n\r\r\n", 10, &n);

	(void)state;
	assert_int_equal(n, 8);
	assert_memory_equal(s, "a\nb\rc\n\r\n", 8);
	free(s);
}

int
main(void)
{
	/* cmocka's TAP output marks a skip "not ok # SKIP", which meson counts
	 * as a failure: as a normal user, run only the first three tests,
	 * the ones that need no users. */
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_check_stored_table),
		cmocka_unit_test(test_reply_guid),
		cmocka_unit_test(test_crlf_to_lf),
		cmocka_unit_test_teardown(test_tree_users_and_config, teardown),
		cmocka_unit_test_teardown(test_start_reload_stop, teardown),
		cmocka_unit_test_teardown(test_start_fails_fast_when_stowd_exits, teardown),
		cmocka_unit_test_teardown(test_leftovers_are_found_and_killed, teardown),
		cmocka_unit_test_teardown(test_stop_kills_a_stuck_stowd, teardown),
		cmocka_unit_test_teardown(test_maildir_helpers, teardown),
	};
	size_t n = sizeof(tests) / sizeof(tests[0]);

	if (getenv("FAKE_NOTIFYD") == NULL) {
		fprintf(stderr, "FAKE_NOTIFYD is not set\n");
		return 1;
	}
	if (geteuid() != 0) {
		fprintf(stderr, "not root: the harness tests that need users are not run\n");
		n = 3;
	}
	return _cmocka_run_group_tests("harness", tests, n, NULL, NULL);
}
