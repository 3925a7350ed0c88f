/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/storage/test_sweep.c - store_sweep: stale tmp/ files (older
 * than 36 hours) and tmp/stowd-deleted-* trees go, in the Maildir root and
 * in its folders; young files, other directories and whatever a symlink
 * points at stay; the budget bounds the work; a missing Maildir is fine.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "storage/storage.h"
#include "tests/unit/storage/util.h"

struct fixture {
	struct tu_tree tree;
	char md[PATH_MAX + 16];     /* <base>/Maildir */
	time_t now;
};

static int
setup(void **state)
{
	struct fixture *f = tu_tree_new(sizeof(*f));
	static const char *const dirs[] = {
		"", "/Maildir", "/Maildir/tmp", "/Maildir/new", "/Maildir/cur",
		"/Maildir/.Sent", "/Maildir/.Sent/tmp", "/outside",
	};

	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++)
		assert_int_equal(mkdir(tu_path("%s%s", f->tree.base, dirs[i]), 0700), 0);
	assert_true(strlen(f->tree.base) < sizeof(f->md) - 16);
	memcpy(f->md, f->tree.base, strlen(f->tree.base));
	strcat(f->md, "/Maildir");
	f->now = time(NULL);
	*state = f;
	return 0;
}

/* A file at md/rel (under base for outside/), changed age seconds ago. */
static void
put(struct fixture *f, const char *path, long age)
{
	struct timespec ts[2] = { { .tv_sec = f->now - age }, { .tv_sec = f->now - age } };

	assert_int_equal(tu_write_file(path, "x", 1), 0);
	assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
}

static bool
exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

static void
sweep(struct fixture *f, unsigned budget, struct store_sweep_stats *st)
{
	assert_int_equal(store_sweep(f->tree.base, "Maildir", getuid(), f->now, budget, st),
			 0);
}

static void
test_sweep_removes_stale_tmp_files_and_deleted_trees(void **state)
{
	struct fixture *f = *state;
	struct store_sweep_stats st;
	const long old = STORE_SWEEP_TMP_AGE + 3600, young = STORE_SWEEP_TMP_AGE - 3600;

	put(f, tu_path("%s/tmp/old", f->md), old);
	put(f, tu_path("%s/tmp/young", f->md), young);
	put(f, tu_path("%s/.Sent/tmp/old", f->md), old);
	put(f, tu_path("%s/new/old", f->md), old);      /* not tmp/: stays */
	assert_int_equal(mkdir(tu_path("%s/tmp/stowd-deleted-ab", f->md), 0700), 0);
	assert_int_equal(mkdir(tu_path("%s/tmp/stowd-deleted-ab/cur", f->md), 0700), 0);
	put(f, tu_path("%s/tmp/stowd-deleted-ab/cur/m1", f->md), 10);
	assert_int_equal(mkdir(tu_path("%s/tmp/other", f->md), 0700), 0);
	put(f, tu_path("%s/tmp/other/in", f->md), old);

	sweep(f, 100, &st);
	assert_int_equal(st.files, 2);
	assert_int_equal(st.trees, 1);
	assert_false(exists(tu_path("%s/tmp/old", f->md)));
	assert_false(exists(tu_path("%s/.Sent/tmp/old", f->md)));
	assert_false(exists(tu_path("%s/tmp/stowd-deleted-ab", f->md)));
	assert_true(exists(tu_path("%s/tmp/young", f->md)));
	assert_true(exists(tu_path("%s/new/old", f->md)));
	assert_true(exists(tu_path("%s/tmp/other/in", f->md)));
	/* nothing more to do */
	sweep(f, 100, &st);
	assert_int_equal(st.files + st.trees, 0);
}

/* Symlinks are never followed: a link in tmp/, a link inside a
 * stowd-deleted tree, a folder whose tmp is a link, a Maildir that is a
 * link; what they point at stays. */
static void
test_sweep_follows_no_symlink(void **state)
{
	struct fixture *f = *state;
	struct store_sweep_stats st;
	const long old = STORE_SWEEP_TMP_AGE + 3600;
	char out[PATH_MAX + 16];

	snprintf(out, sizeof(out), "%s/outside", f->tree.base);
	put(f, tu_path("%s/victim", out), old);
	assert_int_equal(symlink(tu_path("%s/victim", out), tu_path("%s/tmp/link", f->md)), 0);
	assert_int_equal(symlink(out, tu_path("%s/tmp/stowd-deleted-link", f->md)), 0);
	assert_int_equal(mkdir(tu_path("%s/tmp/stowd-deleted-x", f->md), 0700), 0);
	assert_int_equal(symlink(out, tu_path("%s/tmp/stowd-deleted-x/dir", f->md)), 0);
	assert_int_equal(mkdir(tu_path("%s/.Evil", f->md), 0700), 0);
	assert_int_equal(symlink(out, tu_path("%s/.Evil/tmp", f->md)), 0);
	assert_int_equal(symlink(out, tu_path("%s/.Link", f->md)), 0);

	sweep(f, 100, &st);
	assert_true(exists(tu_path("%s/victim", out)));
	assert_true(exists(tu_path("%s/tmp/link", f->md)));
	assert_true(exists(tu_path("%s/tmp/stowd-deleted-link", f->md)));
	/* the tree goes, its symlink as a name only */
	assert_false(exists(tu_path("%s/tmp/stowd-deleted-x", f->md)));
	assert_int_equal(tu_count_entries(out), 1);

	/* a Maildir that is a symlink is refused */
	assert_int_equal(symlink(f->md, tu_path("%s/Linked", f->tree.base)), 0);
	assert_int_equal(store_sweep(f->tree.base, "Linked", getuid(), f->now, 100, &st), -1);
	assert_int_equal(errno, ELOOP);
}

static void
test_sweep_budget_and_missing_maildir(void **state)
{
	struct fixture *f = *state;
	struct store_sweep_stats st;

	for (int i = 0; i < 5; i++)
		put(f, tu_path("%s/tmp/old%d", f->md, i), STORE_SWEEP_TMP_AGE + 60);
	sweep(f, 2, &st);
	assert_int_equal(st.files, 2);
	assert_int_equal(tu_count_entries(tu_path("%s/tmp", f->md)), 3);
	sweep(f, 100, &st);
	assert_int_equal(st.files, 3);
	assert_int_equal(store_sweep(f->tree.base, "Nope", getuid(), f->now, 100, &st), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_sweep_removes_stale_tmp_files_and_deleted_trees,
						setup, tu_tree_teardown),
		cmocka_unit_test_setup_teardown(test_sweep_follows_no_symlink, setup,
						tu_tree_teardown),
		cmocka_unit_test_setup_teardown(test_sweep_budget_and_missing_maildir, setup,
						tu_tree_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
