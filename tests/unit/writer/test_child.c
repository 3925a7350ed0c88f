/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/writer/test_child.c - the credential check of a fork-mode
 * writer child (writer/child.c through writer/loop.c): it is one user for
 * life, serves only requests for its own uid and gid, never calls a
 * set*id function, and refuses uid 0 and uids outside
 * first_valid_uid..last_valid_uid.  getuid/getgid, set*id and store_save
 * are wrapped (tests/unit/writer/mock.c).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "privsep/privsep.h"
#include "writer/writer.h"
#include "tests/unit/writer/fakesup.h"
#include "tests/unit/writer/mock.h"

#define ROLE PSEP_ROLE_WRITER_CHILD

static int
setup(void **state)
{
	(void)state;
	mock_reset();
	mock.child_uid = 600;       /* this child is uid 600, gid 600 */
	mock.child_gid = 600;
	psep_msg_set_uid_range(500, 1000);
	return 0;
}

static void
test_child_serves_its_own_uid_without_setid_calls(void **state)
{
	const struct sup_creds c = { .uid = 600, .gid = 600, .ngroups = 1,
				     .groups = { 700 } };
	struct sup_seen seen;

	(void)state;
	assert_int_equal(sup_run(writer_child_main, ROLE, &c, 1, &seen), 0);
	assert_int_equal(seen.hello, 1);
	assert_int_equal(seen.other, 0);
	assert_int_equal(seen.nreps, 1);
	assert_int_equal(seen.reps[0].err, 0);
	assert_int_equal(mock.nsaves, 1);
	assert_int_equal(mock.ncalls, 0);
}

/* Valid requests for someone else: refused with EPERM, the loop goes on. */
static const struct {
	const char *name;
	struct sup_creds c;
} other_user[] = {
	{ "another uid", { .uid = 601, .gid = 600 } },
	{ "another gid", { .uid = 600, .gid = 601 } },
	{ "another uid and gid", { .uid = 700, .gid = 700 } },
};

static void
test_child_refuses_request_for_another_user(void **state)
{
	struct sup_creds two[2] = {
		{ 0 },
		{ .uid = 600, .gid = 600 },
	};
	struct sup_seen seen;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(other_user) / sizeof(other_user[0]); i++) {
		setup(NULL);
		print_message("# case: %s\n", other_user[i].name);
		two[0] = other_user[i].c;
		assert_int_equal(sup_run(writer_child_main, ROLE, two, 2, &seen), 0);
		assert_int_equal(seen.nreps, 2);
		assert_int_equal(seen.reps[0].id, 10);
		assert_int_equal(seen.reps[0].err, EPERM);
		assert_string_equal(seen.reps[0].what, "switch to user");
		assert_int_equal(seen.reps[1].id, 11);
		assert_int_equal(seen.reps[1].err, 0);
		assert_int_equal(mock.nsaves, 1);   /* only the child's own */
		assert_int_equal(mock.ncalls, 0);
	}
}

static void
test_child_refuses_uid_0_even_as_uid_0(void **state)
{
	const struct sup_creds c = { .uid = 0, .gid = 600 };
	struct sup_seen seen;

	(void)state;
	mock.child_uid = 0;
	assert_int_equal(sup_run(writer_child_main, ROLE, &c, 1, &seen), 1);
	assert_int_equal(seen.nreps, 0);
	assert_true(seen.logs >= 1);
	assert_int_equal(mock.nsaves, 0);
}

static void
test_child_refuses_its_own_uid_outside_the_range(void **state)
{
	const struct sup_creds c = { .uid = 600, .gid = 600 };
	struct sup_seen seen;

	(void)state;
	/* the validator accepts 600; the child's own range check does not */
	mock.deny_uid = 600;
	assert_int_equal(sup_run(writer_child_main, ROLE, &c, 1, &seen), 0);
	assert_int_equal(seen.nreps, 1);
	assert_int_equal(seen.reps[0].err, EPERM);
	assert_int_equal(mock.nsaves, 0);
}

static void
test_child_uid_outside_range_drops_supervisor(void **state)
{
	const struct sup_creds c = { .uid = 1001, .gid = 600 };
	struct sup_seen seen;

	(void)state;
	mock.child_uid = 1001;
	assert_int_equal(sup_run(writer_child_main, ROLE, &c, 1, &seen), 1);
	assert_int_equal(seen.nreps, 0);
	assert_int_equal(mock.nsaves, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_child_serves_its_own_uid_without_setid_calls,
				       setup),
		cmocka_unit_test_setup(test_child_refuses_request_for_another_user,
				       setup),
		cmocka_unit_test_setup(test_child_refuses_uid_0_even_as_uid_0, setup),
		cmocka_unit_test_setup(test_child_refuses_its_own_uid_outside_the_range,
				       setup),
		cmocka_unit_test_setup(test_child_uid_outside_range_drops_supervisor,
				       setup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
