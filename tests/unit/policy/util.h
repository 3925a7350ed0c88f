/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/policy/util.h - the fixture shared by the config parser
 * tests (test_config.c, test_replication.c): a temporary directory, the
 * settings loaded from a file written there and the load's error text,
 * tables of setting values, and capture of the `stowd -a` / `stowd -n`
 * output.
 *
 * Runs in:  test executables only, as a normal user.
 */
#ifndef STOWD_TESTS_UNIT_POLICY_UTIL_H
#define STOWD_TESTS_UNIT_POLICY_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "policy/policy.h"
#include "policy/policy_int.h"

struct cfx {
	char *dir;                  /* removed by cfx_teardown */
	struct policy_settings s;   /* valid (cleared on teardown) if loaded */
	char *err;                  /* the last load's error, or NULL */
	bool loaded;
};

/* cmocka setup/teardown: *state is a fresh struct cfx with its own
 * directory; teardown clears the settings and removes the tree. */
int cfx_setup(void **state);
int cfx_teardown(void **state);

/* Load path with the block table blocks (arg passed to its handlers),
 * replacing the previous result.  Asserts that err is set exactly on
 * failure.  Returns the load's result (0 / -1). */
int cfx_load_path(struct cfx *fx, const char *path,
		      const struct policy_block_def *blocks, void *arg);

/* Write text to <dir>/main.conf and load it with the real block table. */
int cfx_load(struct cfx *fx, const char *text);

/* Assert the last error is "<dir>/<suffix>". */
void cfx_expect_err(const struct cfx *fx, const char *suffix);

/* A table case: r (a load's result) is -1 with the error
 * "<dir>/<suffix>"; the failure message names the case. */
void cfx_expect_case(const struct cfx *fx, int r, const char *name,
			 const char *suffix);

/* cfx_expect_case for the load of text (cfx_load). */
void cfx_expect(struct cfx *fx, const char *name, const char *text,
			 const char *suffix);

/* One setting value and what policy_setting_set makes of it. */
/* A config text that must fail, with the error expected after "<dir>/". */
struct cfx_err_case {
	const char *name;
	const char *text;
	const char *err;
};

struct cfx_value_case {
	const char *name;
	const char *value;
	bool ok;
	const char *canon;   /* printed back (ok only) */
};

/* Set each case's value on fresh defaults: it must succeed (and print
 * back as canon) or fail with a reason, as the case says; a failure
 * names the case. */
void cfx_check_values(const struct cfx_value_case *cases, size_t n);

/* Output of fn(f, s), or of policy_settings_print_all if fn is NULL, as a
 * string.  Caller frees. */
char *cfx_capture(void (*fn)(FILE *f, const struct policy_settings *s),
		   const struct policy_settings *s);

#endif
