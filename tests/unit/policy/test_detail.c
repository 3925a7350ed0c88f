/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/policy/test_detail.c - policy_detail_mailbox: the mailbox an
 * address detail names, checked and converted to modified UTF-7.
 *
 * Runs in:  the test process only.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "policy/policy.h"

struct detail_case {
	const char *detail;
	const char *want;    /* NULL: refused */
};

static const struct detail_case cases[] = {
	{ "", "INBOX" },
	{ "inbox", "INBOX" },
	{ "InBox", "INBOX" },
	{ "lists", "lists" },
	{ "Lists.linux", "Lists.linux" },
	{ "a&b", "a&-b" },
	{ "caf\xc3\xa9", "caf&AOk-" },                       /* U+00E9 */
	{ "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e", "&ZeVnLIqe-" }, /* RFC 3501 */
	{ "x\xf0\x9f\x98\x80y", "x&2D3eAA-y" },             /* U+1F600 */
	{ "~peter/mail/\xe5\x8f\xb0\xe5\x8c\x97", NULL },    /* '/' and '~' */
	{ "..", NULL },
	{ "a..b", NULL },
	{ ".hidden", NULL },
	{ "trailing.", NULL },
	{ "a/b", NULL },
	{ "a\\b", NULL },
	{ "a*", NULL },
	{ "a%", NULL },
	{ "tab\there", NULL },
	{ "del\x7f", NULL },
	{ "bad\xc3", NULL },                  /* truncated UTF-8 */
	{ "over\xc0\xaf", NULL },             /* overlong '/' */
	{ "sur\xed\xa0\x80", NULL },          /* a surrogate */
	{ "hi\xf4\x90\x80\x80", NULL },       /* above U+10FFFF */
};

static void
test_detail_table(void **state)
{
	char out[256];
	const char *why;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int r;

		why = NULL;
		r = policy_detail_mailbox(cases[i].detail, out, sizeof(out), &why);
		if (cases[i].want == NULL) {
			if (r != -1 || errno != EINVAL || why == NULL)
				fail_msg("case %zu: accepted as \"%s\"", i, out);
			continue;
		}
		if (r != 0)
			fail_msg("case %zu: refused: %s", i, why);
		if (strcmp(out, cases[i].want) != 0)
			fail_msg("case %zu: got \"%s\", want \"%s\"", i, out, cases[i].want);
	}
}

static void
test_detail_too_long_is_refused(void **state)
{
	char out[8];
	const char *why = NULL;

	(void)state;
	assert_int_equal(policy_detail_mailbox("abcdefg", out, sizeof(out), &why), 0);
	assert_int_equal(policy_detail_mailbox("abcdefgh", out, sizeof(out), &why), -1);
	assert_string_equal(out, "");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_detail_table),
		cmocka_unit_test(test_detail_too_long_is_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
