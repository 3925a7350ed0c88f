/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/policy/test_result.c - delivery results: errno mapping,
 * lookup outcomes, text sanitising and truncation.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "policy/policy.h"
#include "tests/unit/policy/policy_test.h"

struct errno_case {
	int err;
	enum dlv_status status;
	unsigned code;
	const char *enhanced;
	const char *text;  /* for what = "create tmp file" */
};

static const struct errno_case errno_cases[] = {
	{ EDQUOT, DLV_PERMFAIL, 552, "5.2.2",
	  "mailbox full (create tmp file: Disk quota exceeded)" },
	{ ENOSPC, DLV_TEMPFAIL, 452, "4.2.2",
	  "insufficient disk space (create tmp file: No space left on device)" },
	{ ELOOP, DLV_TEMPFAIL, 450, "4.2.0",
	  "mailbox not writable: symlink or unexpected file type in Maildir "
	  "(create tmp file: Too many levels of symbolic links)" },
	{ ENOTDIR, DLV_TEMPFAIL, 450, "4.2.0",
	  "mailbox not writable: symlink or unexpected file type in Maildir "
	  "(create tmp file: Not a directory)" },
	{ EXDEV, DLV_TEMPFAIL, 450, "4.2.0",
	  "mailbox not writable: symlink or unexpected file type in Maildir "
	  "(create tmp file: Invalid cross-device link)" },
	{ EPERM, DLV_TEMPFAIL, 450, "4.2.0",
	  "mailbox not writable: permission denied or not owned by user "
	  "(create tmp file: Operation not permitted)" },
	{ EACCES, DLV_TEMPFAIL, 450, "4.2.0",
	  "mailbox not writable: permission denied or not owned by user "
	  "(create tmp file: Permission denied)" },
	{ ENOENT, DLV_TEMPFAIL, 450, "4.2.0",
	  "mailbox not available: directory missing "
	  "(create tmp file: No such file or directory)" },
	{ EROFS, DLV_TEMPFAIL, 451, "4.3.0",
	  "read-only file system (create tmp file: Read-only file system)" },
	{ EIO, DLV_TEMPFAIL, 451, "4.3.0", "I/O error (create tmp file: Input/output error)" },
	{ EMFILE, DLV_TEMPFAIL, 451, "4.3.0",
	  "insufficient local resources (create tmp file: Too many open files)" },
	{ ENFILE, DLV_TEMPFAIL, 451, "4.3.0",
	  "insufficient local resources (create tmp file: Too many open files in system)" },
	{ ENOMEM, DLV_TEMPFAIL, 451, "4.3.0",
	  "insufficient local resources (create tmp file: Cannot allocate memory)" },
	{ ETIMEDOUT, DLV_TEMPFAIL, 451, "4.3.0",
	  "timeout (create tmp file: Connection timed out)" },
	{ ENAMETOOLONG, DLV_TEMPFAIL, 451, "4.3.0",
	  "invalid mailbox path (create tmp file: File name too long)" },
	{ EINVAL, DLV_TEMPFAIL, 451, "4.3.0",
	  "invalid mailbox path (create tmp file: Invalid argument)" },
	{ EBADF, DLV_TEMPFAIL, 451, "4.3.0",
	  "internal error EBADF (create tmp file: Bad file descriptor)" },
	{ 0, DLV_OK, 250, "2.0.0", "OK" },
};

static void
test_errno_mapping(void **state)
{
	struct dlv_result r;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(errno_cases) / sizeof(errno_cases[0]); i++) {
		const struct errno_case *c = &errno_cases[i];

		policy_result_from_errno(&r, c->err, "create tmp file");
		if (r.status != c->status || r.code != c->code ||
		    strcmp(r.enhanced, c->enhanced) != 0 || strcmp(r.text, c->text) != 0)
			fail_msg("errno %d (%s): got %u %u %s \"%s\"", c->err,
				 strerror(c->err), r.status, r.code, r.enhanced, r.text);
	}
}

static void
test_status_class_matches_code(void **state)
{
	static const int errs[] = { EDQUOT, ENOSPC, ELOOP, EACCES, EROFS, EIO, ENOMEM,
				    ETIMEDOUT, EINVAL, EBADF, EAGAIN, 0, 9999 };
	struct dlv_result r;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(errs) / sizeof(errs[0]); i++) {
		policy_result_from_errno(&r, errs[i], "fsync");
		assert_int_equal(r.code / 100, r.enhanced[0] - '0');
		assert_int_equal(r.status, r.code / 100 == 2 ? DLV_OK
				 : r.code / 100 == 4 ? DLV_TEMPFAIL : DLV_PERMFAIL);
	}
}

static void
test_unknown_errno_and_missing_what(void **state)
{
	struct dlv_result r;

	(void)state;
	policy_result_from_errno(&r, 9999, NULL);
	assert_int_equal(r.code, 451);
	assert_string_equal(r.enhanced, "4.3.0");
	assert_string_equal(r.text, "internal error errno 9999 (write: Unknown error 9999)");
}

static void
test_what_with_newlines_is_sanitised(void **state)
{
	struct dlv_result r;

	(void)state;
	policy_result_from_errno(&r, EIO, "bad\r\nstep\t");
	assert_string_equal(r.text, "I/O error (bad  step : Input/output error)");
}

static void
test_long_text_is_truncated(void **state)
{
	struct dlv_result r;
	char what[400];

	(void)state;
	memset(what, 'w', sizeof(what) - 1);
	what[sizeof(what) - 1] = '\0';
	policy_result_from_errno(&r, ELOOP, what);
	assert_int_equal(strlen(r.text), sizeof(r.text) - 1);
	policy_result_set(&r, DLV_TEMPFAIL, 451, "4.3.0.too.long.for.the.field", "%s", what);
	assert_int_equal(strlen(r.text), sizeof(r.text) - 1);
	assert_int_equal(strlen(r.enhanced), sizeof(r.enhanced) - 1);
}

static void
test_result_set_formats(void **state)
{
	struct dlv_result r;

	(void)state;
	policy_result_set(&r, DLV_PERMFAIL, 552, "5.3.4", "message too big (%u > %s)\n",
			  10u, "5M");
	assert_int_equal(r.status, DLV_PERMFAIL);
	assert_int_equal(r.code, 552);
	assert_string_equal(r.enhanced, "5.3.4");
	assert_string_equal(r.text, "message too big (10 > 5M) ");
}

struct lookup_case {
	enum policy_lookup l;
	const char *why;
	enum dlv_status status;
	unsigned code;
	const char *enhanced;
	const char *text;
};

static const struct lookup_case lookup_cases[] = {
	{ POLICY_USER_FOUND, NULL, DLV_OK, 250, "2.1.5", "OK" },
	{ POLICY_USER_UNKNOWN, "user unknown", DLV_PERMFAIL, 550, "5.1.1", "user unknown" },
	{ POLICY_USER_UNKNOWN, NULL, DLV_PERMFAIL, 550, "5.1.1", "user unknown" },
	{ POLICY_USER_TEMPFAIL, "cannot read passwd-file", DLV_TEMPFAIL, 451, "4.3.0",
	  "userdb unavailable (cannot read passwd-file)" },
	{ POLICY_USER_TEMPFAIL, "", DLV_TEMPFAIL, 451, "4.3.0", "userdb unavailable" },
	{ POLICY_USER_BADUID, "uid 0 not allowed", DLV_PERMFAIL, 550, "5.7.1",
	  "delivery to this user not allowed (uid 0 not allowed)" },
	{ POLICY_USER_BADADDR, "no local part", DLV_PERMFAIL, 501, "5.1.3",
	  "bad recipient address syntax (no local part)" },
};

static void
test_lookup_mapping(void **state)
{
	struct dlv_result r;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(lookup_cases) / sizeof(lookup_cases[0]); i++) {
		const struct lookup_case *c = &lookup_cases[i];

		policy_result_from_lookup(&r, c->l, c->why);
		if (r.status != c->status || r.code != c->code ||
		    strcmp(r.enhanced, c->enhanced) != 0 || strcmp(r.text, c->text) != 0)
			fail_msg("lookup %d: got %u %u %s \"%s\"", c->l, r.status, r.code,
				 r.enhanced, r.text);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_errno_mapping),
		cmocka_unit_test(test_status_class_matches_code),
		cmocka_unit_test(test_unknown_errno_and_missing_what),
		cmocka_unit_test(test_what_with_newlines_is_sanitised),
		cmocka_unit_test(test_long_text_is_truncated),
		cmocka_unit_test(test_result_set_formats),
		cmocka_unit_test(test_lookup_mapping),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
