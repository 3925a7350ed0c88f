/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/policy/util.c - the config-loading fixture of the policy
 * unit tests (see util.h).
 *
 * Runs in:  test executables only, as a normal user.
 */
#include <stdlib.h>
#include <string.h>

#include "tests/unit/policy/policy_test.h"
#include "tests/unit/policy/util.h"

int
cfx_setup(void **state)
{
	struct cfx *fx = calloc(1, sizeof(*fx));

	assert_non_null(fx);
	fx->dir = ptest_mkdtemp();
	*state = fx;
	return 0;
}

int
cfx_teardown(void **state)
{
	struct cfx *fx = *state;

	if (fx->loaded)
		policy_settings_clear(&fx->s);
	free(fx->err);
	ptest_rmtree(&fx->dir);
	free(fx);
	return 0;
}

int
cfx_load_path(struct cfx *fx, const char *path,
		  const struct policy_block_def *blocks, void *arg)
{
	int r;

	if (fx->loaded)
		policy_settings_clear(&fx->s);
	free(fx->err);
	fx->err = NULL;
	r = policy_config_load_blocks(path, true, &fx->s, blocks, arg, &fx->err);
	fx->loaded = true;
	assert_true((r == 0) == (fx->err == NULL));
	return r;
}

int
cfx_load(struct cfx *fx, const char *text)
{
	char *p = ptest_write(fx->dir, "main.conf", text);
	int r = cfx_load_path(fx, p, policy_blocks, NULL);

	free(p);
	return r;
}

void
cfx_expect_err(const struct cfx *fx, const char *suffix)
{
	char *want = ptest_path(fx->dir, suffix);

	assert_non_null(fx->err);
	assert_string_equal(fx->err, want);
	free(want);
}

void
cfx_expect_case(const struct cfx *fx, int r, const char *name,
		    const char *suffix)
{
	char *want = ptest_path(fx->dir, suffix);

	if (r != -1 || fx->err == NULL || strcmp(fx->err, want) != 0)
		fail_msg("case '%s': expected \"%s\", got \"%s\"", name, want,
			 fx->err != NULL ? fx->err : "(success)");
	free(want);
}

void
cfx_expect(struct cfx *fx, const char *name, const char *text,
		    const char *suffix)
{
	int r = cfx_load(fx, text);

	cfx_expect_case(fx, r, name, suffix);
}

void
cfx_check_values(const struct cfx_value_case *cases, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const struct cfx_value_case *c = &cases[i];
		struct policy_settings s;
		const char *why = NULL;
		char *text;
		int r;

		policy_settings_defaults(&s);
		r = policy_setting_set(&s, c->name, c->value, &why);
		if (r != (c->ok ? 0 : -1))
			fail_msg("%s = '%s': expected %s, got %s (%s)", c->name, c->value,
				 c->ok ? "success" : "an error", r == 0 ? "success" : "an error",
				 why != NULL ? why : "");
		if (c->ok) {
			text = policy_setting_format(&s, policy_setting_find(c->name));
			if (strcmp(text, c->canon) != 0)
				fail_msg("%s = '%s' printed as '%s', expected '%s'", c->name,
					 c->value, text, c->canon);
			free(text);
		} else {
			assert_non_null(why);
		}
		policy_settings_clear(&s);
	}
}

char *
cfx_capture(void (*fn)(FILE *f, const struct policy_settings *s),
	     const struct policy_settings *s)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	if (fn != NULL)
		fn(f, s);
	else
		policy_settings_print_all(f);
	assert_int_equal(fclose(f), 0);
	return buf;
}
