/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/policy/test_location.c - policy_mail_location_expand: the
 * split into a trusted base and a relative part, variables, and every
 * value that must be refused.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy.h"
#include "privsep/msg.h"
#include "tests/unit/policy/policy_test.h"

struct loc_case {
	const char *location;
	const char *user;
	const char *home;
	const char *base;   /* NULL: expect an error with why */
	const char *rel;
	const char *why;
};

static const char not_below[] = "mail_location must name a directory below the base";
static const char bad_name[] = "user name not usable as a directory name";

static const struct loc_case cases[] = {
	/* home-based */
	{ "maildir:~/Maildir", "alice", "/home/alice", "/home/alice", "Maildir", NULL },
	{ "maildir:~/Maildir", "alice", "/home/alice/", "/home/alice", "Maildir", NULL },
	{ "maildir:~/Maildir", "alice", "//home//alice", "/home/alice", "Maildir", NULL },
	{ "maildir:~/Maildir/", "alice", "/home/alice", "/home/alice", "Maildir", NULL },
	{ "maildir:~//mail//inbox", "a", "/h/a", "/h/a", "mail/inbox", NULL },
	{ "maildir:~/./Maildir", "a", "/h/a", "/h/a", "Maildir", NULL },
	{ "maildir:~/Maildir", "a", "/", "/", "Maildir", NULL },
	{ "maildir:~/mail/%n", "bob@example.com", "/home/bob", "/home/bob", "mail/bob", NULL },
	{ "maildir:~/Maildir", "alice", "", NULL, NULL,
	  "user has no home directory for ~/ in mail_location" },
	{ "maildir:~/Maildir", "alice", "home/alice", NULL, NULL,
	  "user's home directory is not an absolute path" },
	/* absolute with variables: base is the part before the first one */
	{ "maildir:/var/vmail/%d/%n", "alice@example.com", "", "/var/vmail",
	  "example.com/alice", NULL },
	{ "maildir:/var/vmail/%d/%n/Maildir", "alice@example.com", "", "/var/vmail",
	  "example.com/alice/Maildir", NULL },
	{ "maildir:/var//vmail/u_%u", "alice@example.com", "", "/var/vmail",
	  "u_alice@example.com", NULL },
	{ "maildir:/%u", "alice", "", "/", "alice", NULL },
	{ "maildir:/var/100%%/%n", "alice", "", "/var/100%", "alice", NULL },
	{ "maildir:/var/vmail/%n", "alice", "/ignored", "/var/vmail", "alice", NULL },
	/* refused */
	{ "maildir:/var/vmail/%d/%n", "alice", "", NULL, NULL,
	  "user has no usable domain for %d" },
	{ "maildir:/var/vmail/%n", "..", "", NULL, NULL, bad_name },
	{ "maildir:/var/vmail/%n", ".", "", NULL, NULL, bad_name },
	{ "maildir:/var/vmail/%n", "a/b", "", NULL, NULL, bad_name },
	{ "maildir:/var/vmail/%u", "", "", NULL, NULL, bad_name },
	{ "maildir:/var/vmail/%n", "@example.com", "", NULL, NULL, bad_name },
	{ "maildir:/var/vmail/%d", "a@..", "", NULL, NULL,
	  "user has no usable domain for %d" },
	{ "maildir:/var/vmail/%n.", "a", "", "/var/vmail", "a.", NULL },
	{ "maildir:/var/vmail/%n..", ".", "", NULL, NULL, bad_name },
	{ "maildir:~/../Maildir", "a", "/h/a", NULL, NULL, not_below },
	{ "maildir:~/Maildir/..", "a", "/h/a", NULL, NULL, not_below },
	{ "maildir:/var/vmail/%n/..", "a", "", NULL, NULL, not_below },
	{ "maildir:~/", "a", "/h/a", NULL, NULL, not_below },
	{ "maildir:~/.", "a", "/h/a", NULL, NULL, not_below },
	{ "maildir:/var/mail/shared", "a", "", NULL, NULL, not_below },
	{ "maildir:/", "a", "", NULL, NULL, not_below },
	{ "maildir:/var/%x", "a", "", NULL, NULL,
	  "unknown variable in mail_location (use %u, %n, %d or %%)" },
	{ "maildir:/var/%", "a", "", NULL, NULL,
	  "unknown variable in mail_location (use %u, %n, %d or %%)" },
	{ "mbox:~/mail", "a", "/h/a", NULL, NULL, "mail_location must start with maildir:" },
	{ "maildir:Maildir", "a", "/h/a", NULL, NULL,
	  "mail_location path must start with ~/ or /" },
	{ "maildir:~Maildir", "a", "/h/a", NULL, NULL,
	  "mail_location path must start with ~/ or /" },
	{ "maildir:~/Maildir:LAYOUT=fs", "a", "/h/a", NULL, NULL,
	  "mail_location options (:KEY=VALUE) are not supported" },
};

static void
test_expansion_cases(void **state)
{
	char base[PSEP_PATH_MAX], rel[PSEP_NAME_MAX];
	const char *why;
	size_t i;
	int r;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct loc_case *c = &cases[i];

		why = NULL;
		r = policy_mail_location_expand(c->location, c->user, c->home, base,
						sizeof(base), rel, sizeof(rel), &why);
		if (c->base != NULL && (r != 0 || strcmp(base, c->base) != 0 ||
					strcmp(rel, c->rel) != 0))
			fail_msg("%s user=%s home=%s: expected %s + %s, got r=%d %s + %s (%s)",
				 c->location, c->user, c->home, c->base, c->rel, r, base,
				 rel, r < 0 ? why : "");
		if (c->base == NULL && (r != -1 || why == NULL || strcmp(why, c->why) != 0))
			fail_msg("%s user=%s home=%s: expected error \"%s\", got r=%d (%s)",
				 c->location, c->user, c->home, c->why, r,
				 why != NULL ? why : "");
		if (r < 0) {
			assert_string_equal(base, "");
			assert_string_equal(rel, "");
		}
	}
}

static void
test_output_too_small_is_error(void **state)
{
	char base[8], rel[PSEP_NAME_MAX], small_rel[4];
	const char *why = NULL;

	(void)state;
	assert_int_equal(policy_mail_location_expand("maildir:~/Maildir", "a",
						     "/home/alice", base, sizeof(base),
						     rel, sizeof(rel), &why), -1);
	assert_string_equal(why, "mail location too long");
	assert_int_equal(policy_mail_location_expand("maildir:~/Maildir", "a", "/h",
						     base, sizeof(base), small_rel,
						     sizeof(small_rel), &why), -1);
	assert_string_equal(why, "mail location too long");
}

static void
test_long_user_fills_rel_exactly(void **state)
{
	char base[PSEP_PATH_MAX], rel[PSEP_NAME_MAX], user[PSEP_NAME_MAX];
	const char *why = NULL;

	(void)state;
	memset(user, 'u', sizeof(user) - 1);
	user[sizeof(user) - 1] = '\0';
	/* A 255-byte component fits PSEP_NAME_MAX with its NUL; one byte
	 * more does not. */
	assert_int_equal(policy_mail_location_expand("maildir:/v/%n", user, "", base,
						     sizeof(base), rel, sizeof(rel),
						     &why), 0);
	assert_int_equal(strlen(rel), sizeof(user) - 1);
	assert_int_equal(policy_mail_location_expand("maildir:/v/%nx", user, "", base,
						     sizeof(base), rel, sizeof(rel),
						     &why), -1);
	assert_string_equal(why, "mail location too long");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_expansion_cases),
		cmocka_unit_test(test_output_too_small_is_error),
		cmocka_unit_test(test_long_user_fills_rel_exactly),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
