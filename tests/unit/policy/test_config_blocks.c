/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/policy/test_config_blocks.c - `name [label] { ... }` blocks of
 * the config parser, through a test-only block table: callbacks, errors
 * with FILE:LINE, bodies from an included file, braces per file.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy.h"
#include "policy/policy_int.h"
#include "tests/unit/policy/policy_test.h"
#include "tests/unit/policy/util.h"

/* ---- blocks through a test table -------------------------------------- */

struct rec {
	char log[512];
};

static void __attribute__((format(printf, 2, 3)))
rec_add(struct rec *r, const char *fmt, ...)
{
	size_t len = strlen(r->log);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r->log + len, sizeof(r->log) - len, fmt, ap);
	va_end(ap);
}

static int
t_open(struct policy_settings *s, void *arg, const char *label, const char **why_out)
{
	(void)s;
	if (label != NULL && strcmp(label, "bad") == 0) {
		*why_out = "bad name";
		return -1;
	}
	rec_add(arg, "open(%s) ", label != NULL ? label : "-");
	return 0;
}

static int
t_set(struct policy_settings *s, void *arg, const char *key, const char *value,
      const char **why_out)
{
	(void)s;
	if (strcmp(key, "address") != 0) {
		errno = ENOENT;
		return -1;
	}
	if (strcmp(value, "nowhere") == 0) {
		*why_out = "no such address";
		errno = EINVAL;
		return -1;
	}
	rec_add(arg, "%s=%s ", key, value);
	return 0;
}

static int
t_close(struct policy_settings *s, void *arg, const char **why_out)
{
	struct rec *r = arg;

	(void)s;
	if (strstr(r->log, "address=") == NULL && strstr(r->log, "open(-)") == NULL) {
		*why_out = "address missing";
		return -1;
	}
	rec_add(arg, "close ");
	return 0;
}

static const struct policy_block_def test_blocks[] = {
	{ "replica", POLICY_LABEL_REQUIRED, t_open, t_set, t_close },
	{ "defaults", POLICY_LABEL_NONE, t_open, t_set, t_close },
	{ "any", POLICY_LABEL_OPTIONAL, NULL, NULL, NULL },
	{ NULL, POLICY_LABEL_NONE, NULL, NULL, NULL },
};

static int
fx_load_blocks(struct cfx *fx, const char *text, struct rec *r)
{
	char *p = ptest_write(fx->dir, "main.conf", text);
	int ret;

	memset(r, 0, sizeof(*r));
	ret = cfx_load_path(fx, p, test_blocks, r);
	free(p);
	return ret;
}

static void
test_blocks_call_table_callbacks(void **state)
{
	struct cfx *fx = *state;
	struct rec r;

	assert_int_equal(fx_load_blocks(fx,
		"replica b {\n"
		"  address = tcp:192.0.2.1:2525   # comment\n"
		"}\n"
		"lmtp_processes = 3\n"
		"defaults {\n"
		"}\n"
		"any {\n}\nany x {\n}\n", &r), 0);
	assert_string_equal(r.log, "open(b) address=tcp:192.0.2.1:2525 close open(-) close ");
	assert_int_equal(fx->s.lmtp_processes, 3);
}

static const struct cfx_err_case block_err_cases[] = {
	{ "label required", "replica {\n}\n",
	  "main.conf:1: block 'replica' needs a name: replica NAME {" },
	{ "label refused", "defaults x {\n}\n", "main.conf:1: block 'defaults' takes no name" },
	{ "nested", "replica b {\nreplica c {\n}\n}\n",
	  "main.conf:2: block 'replica' not allowed inside block 'replica'" },
	{ "unterminated", "log_debug = yes\nreplica b {\naddress = x\n",
	  "main.conf:2: unterminated block 'replica'" },
	{ "unknown key in block", "replica b {\nbogus = 1\n}\n",
	  "main.conf:2: unknown setting 'bogus' in block 'replica'" },
	{ "global key in block", "replica b {\nlmtp_processes = 1\n}\n",
	  "main.conf:2: unknown setting 'lmtp_processes' in block 'replica'" },
	{ "bad value in block", "replica b {\naddress = nowhere\n}\n",
	  "main.conf:2: invalid value for 'address' in block 'replica': no such address" },
	{ "open refused", "replica bad {\n}\n", "main.conf:1: block 'replica': bad name" },
	{ "close refused", "replica b {\n\n}\n",
	  "main.conf:3: block 'replica': address missing" },
	{ "text after brace", "replica b { address = x\n}\n",
	  "main.conf:1: unexpected text after '{'" },
	{ "extra close", "replica b {\naddress = y\n}\n}\n", "main.conf:4: unmatched '}'" },
	{ "unknown block in test table", "foo {\n}\n", "main.conf:1: unknown block 'foo'" },
	{ "block without callbacks has no keys", "any {\nk = v\n}\n",
	  "main.conf:2: unknown setting 'k' in block 'any'" },
};

static void
test_block_errors(void **state)
{
	struct cfx *fx = *state;
	struct rec r;
	size_t i;

	for (i = 0; i < sizeof(block_err_cases) / sizeof(block_err_cases[0]); i++) {
		cfx_expect_case(fx, fx_load_blocks(fx, block_err_cases[i].text, &r),
				block_err_cases[i].name, block_err_cases[i].err);
	}
}

static void
test_block_body_may_come_from_include(void **state)
{
	struct cfx *fx = *state;
	struct rec r;

	free(ptest_write(fx->dir, "body.conf", "address = tcp:[::1]:1\n"));
	assert_int_equal(fx_load_blocks(fx, "replica b {\n!include body.conf\n}\n", &r), 0);
	assert_string_equal(r.log, "open(b) address=tcp:[::1]:1 close ");
}

static void
test_block_braces_must_match_within_one_file(void **state)
{
	struct cfx *fx = *state;
	struct rec r;

	free(ptest_write(fx->dir, "close.conf", "address = a\n}\n"));
	assert_int_equal(fx_load_blocks(fx, "replica b {\n!include close.conf\n}\n", &r), -1);
	cfx_expect_err(fx, "close.conf:2: unmatched '}'");
	free(ptest_write(fx->dir, "open.conf", "replica c {\naddress = a\n"));
	assert_int_equal(fx_load_blocks(fx, "!include open.conf\n}\n", &r), -1);
	cfx_expect_err(fx, "open.conf:1: unterminated block 'replica'");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_blocks_call_table_callbacks,
						cfx_setup, cfx_teardown),
		cmocka_unit_test_setup_teardown(test_block_errors, cfx_setup, cfx_teardown),
		cmocka_unit_test_setup_teardown(test_block_body_may_come_from_include,
						cfx_setup, cfx_teardown),
		cmocka_unit_test_setup_teardown(test_block_braces_must_match_within_one_file,
						cfx_setup, cfx_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
