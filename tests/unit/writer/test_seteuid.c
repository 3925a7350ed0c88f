/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/writer/test_seteuid.c - the credential switch of a seteuid
 * writer (writer/seteuid.c through writer/loop.c): supplementary groups,
 * egid and euid set for the request, from the previous user directly and
 * never back to root (real and saved ids stay 0, no set*id call names id
 * 0: the seccomp profile kills such a call), each switch checked with
 * getresuid/getresgid; uid 0 and uids outside
 * first_valid_uid..last_valid_uid refused before any switch; a failed or
 * unverified switch ends the process.  set*id, getres*id and store_save
 * are wrapped (tests/unit/writer/mock.c): nothing here needs root.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "privsep/privsep.h"
#include "writer/writer.h"
#include "tests/unit/writer/fakesup.h"
#include "tests/unit/writer/mock.h"

#define ROLE PSEP_ROLE_WRITER_SETEUID

static const struct sup_creds user600 = {
	.uid = 600, .gid = 600, .ngroups = 2, .groups = { 700, 701 },
};

static int
setup(void **state)
{
	(void)state;
	mock_reset();
	psep_msg_set_uid_range(500, 1000);
	return 0;
}

static void
assert_calls(const char *const *want, size_t n)
{
	size_t i;

	assert_int_equal(mock.ncalls, n);
	for (i = 0; i < n; i++)
		assert_string_equal(mock.calls[i], want[i]);
}

static void
assert_root(const struct mock_creds *c)
{
	assert_int_equal(c->ruid, 0);
	assert_int_equal(c->euid, 0);
	assert_int_equal(c->suid, 0);
	assert_int_equal(c->rgid, 0);
	assert_int_equal(c->egid, 0);
	assert_int_equal(c->sgid, 0);
	assert_int_equal(c->ngroups, 0);
}

/* After a request: still the user (euid, egid), real and saved ids 0. */
static void
assert_user(const struct mock_creds *c, unsigned uid)
{
	assert_int_equal(c->ruid, 0);
	assert_int_equal(c->euid, uid);
	assert_int_equal(c->suid, 0);
	assert_int_equal(c->rgid, 0);
	assert_int_equal(c->egid, uid);
	assert_int_equal(c->sgid, 0);
}

/* No recorded set*id call has 0 as an argument ("-1" is unchanged). */
static void
assert_no_setid_to_0(void)
{
	size_t i;

	for (i = 0; i < mock.ncalls; i++) {
		if (strncmp(mock.calls[i], "setres", 6) != 0)
			continue;
		if (strstr(mock.calls[i], " 0 ") != NULL ||
		    (strlen(mock.calls[i]) >= 2 &&
		     strcmp(mock.calls[i] + strlen(mock.calls[i]) - 2, " 0") == 0))
			fail_msg("set*id call to 0: %s", mock.calls[i]);
	}
}

static void
test_seteuid_saves_as_user_and_never_returns_to_root(void **state)
{
	static const char *const want[] = {
		"setgroups 2 700 701", "setresgid -1 600 -1", "setresuid -1 600 -1",
	};
	struct sup_seen seen;

	(void)state;
	assert_int_equal(sup_run(writer_seteuid_main, ROLE, &user600, 1, &seen), 0);
	assert_int_equal(seen.hello, 1);
	assert_int_equal(seen.other, 0);
	assert_int_equal(seen.nreps, 1);
	assert_int_equal(seen.reps[0].id, 10);
	assert_int_equal(seen.reps[0].err, 0);
	assert_int_equal(seen.reps[0].imap_uid, 1);
	/* the save ran with the user's euid, egid and groups; real and
	 * saved ids stayed root so that the way back works */
	assert_int_equal(mock.nsaves, 1);
	assert_int_equal(mock.save_creds.euid, 600);
	assert_int_equal(mock.save_creds.egid, 600);
	assert_int_equal(mock.save_creds.ruid, 0);
	assert_int_equal(mock.save_creds.suid, 0);
	assert_int_equal(mock.save_creds.rgid, 0);
	assert_int_equal(mock.save_creds.sgid, 0);
	assert_int_equal(mock.save_creds.ngroups, 2);
	assert_int_equal(mock.save_creds.groups[0], 700);
	assert_int_equal(mock.save_creds.groups[1], 701);
	/* groups, gid, uid; no way back to root afterwards */
	assert_calls(want, sizeof(want) / sizeof(want[0]));
	assert_user(&mock.now, 600);
	assert_no_setid_to_0();
}

static void
test_seteuid_failed_save_keeps_the_user_ids(void **state)
{
	struct sup_seen seen;

	(void)state;
	mock.save_errno = ENOSPC;
	assert_int_equal(sup_run(writer_seteuid_main, ROLE, &user600, 1, &seen), 0);
	assert_int_equal(seen.nreps, 1);
	assert_int_equal(seen.reps[0].err, ENOSPC);
	assert_string_equal(seen.reps[0].what, "fsync");
	assert_int_equal(mock.nsaves, 1);
	assert_int_equal(mock.save_creds.euid, 600);
	assert_int_equal(mock_call_index("setresuid -1 0 -1"), -1);
	assert_user(&mock.now, 600);
	assert_no_setid_to_0();
}

static void
test_seteuid_each_request_gets_its_own_groups(void **state)
{
	const struct sup_creds two[] = {
		user600,
		{ .uid = 601, .gid = 601, .ngroups = 0 },
	};
	struct sup_seen seen;

	(void)state;
	assert_int_equal(sup_run(writer_seteuid_main, ROLE, two, 2, &seen), 0);
	assert_int_equal(seen.nreps, 2);
	assert_int_equal(seen.reps[0].err, 0);
	assert_int_equal(seen.reps[1].err, 0);
	assert_int_equal(mock.nsaves, 2);
	/* the second save does not keep the first user's groups; the
	 * switch went from user 600 to user 601 directly */
	assert_int_equal(mock.save_creds.euid, 601);
	assert_int_equal(mock.save_creds.egid, 601);
	assert_int_equal(mock.save_creds.ngroups, 0);
	assert_int_equal(mock_call_index("setresuid -1 601 -1"),
			 mock_call_index("setresuid -1 600 -1") + 3);
	assert_user(&mock.now, 601);
	assert_no_setid_to_0();
}

/* Requests the writer must refuse before touching any credential. */
static const struct {
	const char *name;
	struct sup_creds c;
} bad_creds[] = {
	{ "uid 0", { .uid = 0, .gid = 600 } },
	{ "uid below first_valid_uid", { .uid = 499, .gid = 600 } },
	{ "uid above last_valid_uid", { .uid = 1001, .gid = 600 } },
	{ "uid -1", { .uid = UINT32_MAX, .gid = 600 } },
	{ "gid 0", { .uid = 600, .gid = 0 } },
	{ "supplementary group 0", { .uid = 600, .gid = 600, .ngroups = 1,
				     .groups = { 0 } } },
	{ "too many groups", { .uid = 600, .gid = 600,
			       .ngroups = PSEP_MAX_GROUPS + 1 } },
};

static void
test_seteuid_bad_credentials_refused_without_switch(void **state)
{
	struct sup_seen seen;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad_creds) / sizeof(bad_creds[0]); i++) {
		mock_reset();
		print_message("# case: %s\n", bad_creds[i].name);
		/* the request is invalid: the writer drops its supervisor */
		assert_int_equal(sup_run(writer_seteuid_main, ROLE, &bad_creds[i].c,
					 1, &seen), 1);
		assert_int_equal(seen.hello, 1);
		assert_int_equal(seen.nreps, 0);
		assert_true(seen.logs >= 1);
		assert_int_equal(mock.ncalls, 0);
		assert_int_equal(mock.nsaves, 0);
		assert_root(&mock.now);
	}
}

static void
test_seteuid_own_uid_check_refuses_with_eperm(void **state)
{
	const struct sup_creds two[] = {
		user600,
		{ .uid = 601, .gid = 601 },
	};
	struct sup_seen seen;

	(void)state;
	/* the message validator lets 600 through; the writer's own check
	 * (seteuid_enter) refuses it: the request fails, the loop goes on */
	mock.deny_uid = 600;
	assert_int_equal(sup_run(writer_seteuid_main, ROLE, two, 2, &seen), 0);
	assert_int_equal(seen.nreps, 2);
	assert_int_equal(seen.reps[0].err, EPERM);
	assert_string_equal(seen.reps[0].what, "switch to user");
	assert_int_equal(seen.reps[1].err, 0);
	assert_int_equal(mock.nsaves, 1);
	assert_int_equal(mock.save_creds.euid, 601);
	assert_int_equal(mock_call_index("setresuid -1 600 -1"), -1);
	assert_int_equal(mock_call_index("setgroups 2 700 701"), -1);
}

/* Credential failures that must end the writer (STYLE §4: a failed or
 * unverified set*id call is fatal). */
static const struct {
	const char *name;
	const char *fail_call;
	bool only_to_root;
	bool ignore_setresuid;
	int saves;              /* store_save calls before the end */
} fatal_cases[] = {
	{ "setgroups fails", "setgroups", false, false, 0 },
	{ "setresgid fails", "setresgid", false, false, 0 },
	{ "setresuid fails", "setresuid", false, false, 0 },
	{ "euid not switched", NULL, false, true, 0 },
};

static void
test_seteuid_failed_or_unverified_switch_is_fatal(void **state)
{
	struct sup_seen seen;
	int status, saves;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(fatal_cases) / sizeof(fatal_cases[0]); i++) {
		mock_reset();
		print_message("# case: %s\n", fatal_cases[i].name);
		mock.fail_call = fatal_cases[i].fail_call;
		mock.fail_only_to_root = fatal_cases[i].only_to_root;
		mock.ignore_setresuid = fatal_cases[i].ignore_setresuid;
		status = sup_run_forked(writer_seteuid_main, ROLE, &user600, 1,
					&seen, &saves);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 1);
		assert_int_equal(saves, fatal_cases[i].saves);
		/* no answer: the supervisor sees the writer die instead */
		assert_int_equal(seen.hello, 1);
		assert_int_equal(seen.nreps, 0);
		assert_true(seen.logs >= 1);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_seteuid_saves_as_user_and_never_returns_to_root,
				       setup),
		cmocka_unit_test_setup(test_seteuid_failed_save_keeps_the_user_ids,
				       setup),
		cmocka_unit_test_setup(test_seteuid_each_request_gets_its_own_groups,
				       setup),
		cmocka_unit_test_setup(test_seteuid_bad_credentials_refused_without_switch,
				       setup),
		cmocka_unit_test_setup(test_seteuid_own_uid_check_refuses_with_eperm,
				       setup),
		cmocka_unit_test_setup(test_seteuid_failed_or_unverified_switch_is_fatal,
				       setup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
