/* SPDX-License-Identifier: MIT */
/*
 * tests/integration/test_config.c - the config checks an admin sees:
 * `stowd -t` accepts the harness config and rejects an unknown key, a bad
 * value or a bad key in an !include'd file with "FILE:LINE:" and exit 1;
 * `stowd -n` and `-a` print settings; stowd refuses to start on a broken
 * config instead of running on defaults.
 *
 * Runs in:  the integration suite, as root; stowd only runs in -t/-n/-a
 *           mode, except in the last test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include "tests/integration/itest.h"

#define RUN_TIMEOUT_MS 10000

static struct harness *H;

static int
setup(void **state)
{
	(void)state;
	H = harness_new(NULL);
	return H != NULL ? 0 : -1;
}

static int
teardown(void **state)
{
	(void)state;
	harness_free(&H);
	return 0;
}

/* Run "stowd <opt> -c <conf>"; exit status returned, output in *out. */
static int
run_stowd(const char *opt, char **out)
{
	const char *argv[] = { H->bin, opt, "-c", H->conf_path, NULL };
	int st;

	if (harness_run_capture(argv, RUN_TIMEOUT_MS, &st, out) < 0)
		fail_msg("stowd %s did not finish", opt);
	if (!WIFEXITED(st))
		fail_msg("stowd %s died with wait status 0x%x; output:\n%s", opt,
			 (unsigned)st, *out);
	return WEXITSTATUS(st);
}

static void
expect_check_ok(void)
{
	char *out = NULL;
	int rc = run_stowd("-t", &out);

	if (rc != 0)
		fail_msg("stowd -t on %s: exit %d, want 0; output:\n%s", H->conf_path,
			 rc, out);
	free(out);
}

/* stowd -t exits 1 and names file:line. */
static void
expect_check_error(const char *file, int line)
{
	char where[256], *out = NULL;
	int rc = run_stowd("-t", &out);

	snprintf(where, sizeof(where), "%s:%d:", file, line);
	if (rc != 1 || strstr(out, where) == NULL)
		fail_msg("stowd -t: exit %d, want 1 with \"%s\"; output:\n%s", rc,
			 where, out);
	free(out);
}

static void
test_check_accepts_the_harness_config(void **state)
{
	(void)state;
	expect_check_ok();
}

static void
test_check_rejects_unknown_key_with_file_line(void **state)
{
	struct harness_opts o = { .conf_text = "# a comment\nno_such_setting = 1\n" };

	(void)state;
	assert_int_equal(harness_write_conf(H, &o), 0);
	expect_check_error(H->conf_path, harness_conf_line(H, "no_such_setting"));
}

static void
test_check_rejects_bad_values_with_file_line(void **state)
{
	static const char *const bad[] = {
		"lmtp_max_message_size = 10Q",
		"lmtp_command_timeout = soon",
		"delivery_mode = sometimes",
		"log_debug = maybe",
		"lmtp_max_recipients = -1",
		"lmtp_listen = carrier-pigeon:/x",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *conf[] = { bad[i], NULL };
		char key[64];
		struct harness_opts o = { .conf = conf };

		assert_int_equal(harness_write_conf(H, &o), 0);
		snprintf(key, sizeof(key), "%.*s", (int)strcspn(bad[i], " "), bad[i]);
		fprintf(stderr, "checking: %s\n", bad[i]);
		expect_check_error(H->conf_path, harness_conf_line(H, key));
	}
}

static void
test_check_rejects_unknown_run_user(void **state)
{
	static const char *const conf[] = { "run_user = no-such-user-here", NULL };
	struct harness_opts o = { .conf = conf };
	char *out = NULL;
	int rc;

	(void)state;
	/* run_user must exist in /etc/passwd: -t must not pass a config
	 * that cannot start (file:line not required, the name is) */
	assert_int_equal(harness_write_conf(H, &o), 0);
	rc = run_stowd("-t", &out);
	if (rc != 1 || strstr(out, "no-such-user-here") == NULL)
		fail_msg("stowd -t with an unknown run_user: exit %d, want 1 naming "
			 "the user; output:\n%s", rc, out);
	free(out);
}

static void
test_check_names_the_included_file(void **state)
{
	char inc[256], text[512];
	struct harness_opts o = { .conf_text = text };

	(void)state;
	snprintf(inc, sizeof(inc), "%s/extra.conf", H->tree);
	static const char extra[] = "# extra\n\nbogus_in_include = 2\n";

	assert_int_equal(harness_write_file(inc, extra, strlen(extra), 0644), 0);
	snprintf(text, sizeof(text), "!include %s\n", inc);
	assert_int_equal(harness_write_conf(H, &o), 0);
	expect_check_error(inc, 3);
}

static void
test_print_changed_and_all_settings(void **state)
{
	static const char *const names[] = {
		"lmtp_listen", "delivery_mode", "userdb", "mail_location", "run_user",
		"first_valid_uid", "last_valid_uid", "seteuid_workers",
		"fork_max_children", "fork_idle_timeout", "lmtp_max_message_size",
		"lmtp_max_recipients", "lmtp_command_timeout", "lmtp_socket_mode",
		"lmtp_socket_group", "state_dir",
	};
	char *out = NULL;

	(void)state;
	if (run_stowd("-n", &out) != 0)
		fail_msg("stowd -n failed:\n%s", out);
	/* non-default here: run_user (default "stowd"), the recipient limit */
	if (strstr(out, "run_user") == NULL || strstr(out, "lmtp_max_recipients") == NULL)
		fail_msg("stowd -n does not show changed settings:\n%s", out);
	free(out);
	if (run_stowd("-a", &out) != 0)
		fail_msg("stowd -a failed:\n%s", out);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strstr(out, names[i]) == NULL)
			fail_msg("stowd -a does not list %s", names[i]);
	free(out);
}

static void
test_broken_config_does_not_start(void **state)
{
	struct harness_opts o = { .conf_text = "no_such_setting = 1\n" };
	time_t t0 = time(NULL);

	(void)state;
	assert_int_equal(harness_write_conf(H, &o), 0);
	/* harness_start fails as soon as stowd exits without READY=1 */
	assert_int_equal(harness_start(H), -1);
	assert_false(harness_alive(H));
	assert_true(time(NULL) - t0 < 10);
	assert_true(WIFEXITED(H->exit_status));
	assert_int_not_equal(WEXITSTATUS(H->exit_status), 0);
	assert_true(harness_log_contains(H, "no_such_setting"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_check_accepts_the_harness_config,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_check_rejects_unknown_key_with_file_line,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_check_rejects_bad_values_with_file_line,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_check_rejects_unknown_run_user,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_check_names_the_included_file,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_print_changed_and_all_settings,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_broken_config_does_not_start,
						setup, teardown),
	};

	harness_require_root();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
