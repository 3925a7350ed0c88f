/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/policy/policy_test.h - helpers for the policy unit tests: a
 * private temporary directory and files in it.
 *
 * Runs in:  test executables only, as a normal user.
 */
#ifndef STOWD_TESTS_POLICY_TEST_H
#define STOWD_TESTS_POLICY_TEST_H

#include <ftw.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <setjmp.h>
#include <cmocka.h>

/* A fresh directory under $TMPDIR (or /tmp).  Caller frees the name and
 * removes the tree with ptest_rmtree. */
static inline char *
ptest_mkdtemp(void)
{
	const char *base = getenv("TMPDIR");
	char *dir = NULL;

	if (base == NULL || base[0] == '\0')
		base = "/tmp";
	assert_true(asprintf(&dir, "%s/stowd-policy-XXXXXX", base) > 0);
	assert_non_null(mkdtemp(dir));
	return dir;
}

/* dir/name as a new string.  Caller frees. */
static inline char *
ptest_path(const char *dir, const char *name)
{
	char *p = NULL;

	assert_true(asprintf(&p, "%s/%s", dir, name) > 0);
	return p;
}

/* Write len bytes of data to dir/name (created or truncated); returns the
 * path (caller frees). */
static inline char *
ptest_write_len(const char *dir, const char *name, const char *data, size_t len)
{
	char *p = ptest_path(dir, name);
	FILE *f = fopen(p, "w");

	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
	return p;
}

static inline char *
ptest_write(const char *dir, const char *name, const char *text)
{
	return ptest_write_len(dir, name, text, strlen(text));
}

/* mkdir dir/name. */
static inline void
ptest_mkdir(const char *dir, const char *name)
{
	char *p = ptest_path(dir, name);

	assert_int_equal(mkdir(p, 0700), 0);
	free(p);
}

static inline int
ptest_rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static inline void
ptest_rmtree(char **dir)
{
	if (*dir == NULL)
		return;
	(void)nftw(*dir, ptest_rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(*dir);
	*dir = NULL;
}

#endif
