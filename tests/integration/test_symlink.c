/* SPDX-License-Identifier: MIT */
/*
 * tests/integration/test_symlink.c - a user who controls the Maildir
 * cannot make stowd write anywhere else: ~/Maildir, ~/Maildir/new and
 * ~/Maildir/tmp replaced by symlinks (planted as the user's uid) make the
 * delivery to that user fail with a 4xx/5xx, nothing appears in the
 * symlink's target, and the other recipient of the same transaction
 * still gets the message.
 *
 * Runs in:  the integration suite, as root, one stowd for the program.
 * Targets:  a directory owned by the user (what a careless seteuid writer
 *           would happily follow) and a root-owned 01777 directory.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/integration/itest.h"

#define NUSERS 5
#define VICTIM_OK 4        /* u5: the recipient that must still get mail */

static struct harness *H;

static int
group_setup(void **state)
{
	struct harness_opts o = { .nusers = NUSERS };

	(void)state;
	return itest_group_start(&H, &o);
}

/* A complete Maildir (tmp, new, cur) at path, owned by uid:gid, mode. */
static void
make_maildir(const char *path, uid_t uid, gid_t gid, mode_t mode)
{
	static const char *const subs[] = { "", "/tmp", "/new", "/cur" };
	char p[512];

	for (size_t i = 0; i < 4; i++) {
		snprintf(p, sizeof(p), "%s%s", path, subs[i]);
		if (mkdir(p, mode) < 0 || chown(p, uid, gid) < 0 || chmod(p, mode) < 0)
			fail_msg("mkdir %s: %s", p, strerror(errno));
	}
}

struct plant {
	const struct harness_user *u;
	const char *sub;         /* "" = the Maildir itself, "new", "tmp" */
	const char *target;
};

/* As the user: build the Maildir except sub, and make sub a symlink. */
static int
plant_as_user(void *arg)
{
	const struct plant *p = arg;
	char path[512];

	if (p->sub[0] != '\0') {
		static const char *const subs[] = { "", "/tmp", "/new", "/cur" };

		for (size_t i = 0; i < 4; i++) {
			if (i > 0 && strcmp(subs[i] + 1, p->sub) == 0)
				continue;
			snprintf(path, sizeof(path), "%s%s", p->u->maildir, subs[i]);
			if (mkdir(path, 0700) < 0 && errno != EEXIST)
				return -1;
		}
		snprintf(path, sizeof(path), "%s/%s", p->u->maildir, p->sub);
	} else {
		snprintf(path, sizeof(path), "%s", p->u->maildir);
	}
	return symlink(p->target, path);
}

/*
 * Plant the symlink for user idx, deliver one message to idx and to
 * VICTIM_OK in one transaction, and check both outcomes and the target.
 */
static void
attack(unsigned idx, const char *sub, const char *target, const char *check_dir)
{
	const struct harness_user *u = &H->users[idx];
	struct plant p = { .u = u, .sub = sub, .target = target };
	struct lmtpc *c;
	struct lmtpc_reply dr, rr[2];
	char what[512], link[512];
	struct stat st;
	size_t len;
	char *body = itest_body(2000, 40 + idx, &len);
	int ok_before = itest_count_new(H, VICTIM_OK);

	assert_int_equal(harness_run_as(u->uid, u->gid, plant_as_user, &p), 0);
	c = itest_connect(H, HARNESS_UNIX);
	itest_envelope(c);
	itest_cmd(c, 250, NULL, "RCPT TO:<%s>", u->addr);
	itest_cmd(c, 250, NULL, "RCPT TO:<%s>", H->users[VICTIM_OK].addr);
	assert_int_equal(lmtpc_data(c, body, len, &dr, rr, 2), 0);
	assert_int_equal(dr.code, 354);
	snprintf(what, sizeof(what), "%s with %s/%s a symlink", u->addr, u->maildir, sub);
	itest_assert_refused(&rr[0], what);
	itest_assert_saved(H, VICTIM_OK, &rr[1], body, len, NULL, 0);
	assert_int_equal(itest_count_new(H, VICTIM_OK), ok_before + 1);
	if (harness_count_files(check_dir) != 0)
		fail_msg("stowd followed the symlink: files in %s", check_dir);
	/* the symlink is still there, not replaced by stowd */
	snprintf(link, sizeof(link), "%s%s%s", u->maildir, sub[0] ? "/" : "", sub);
	assert_int_equal(lstat(link, &st), 0);
	assert_true(S_ISLNK(st.st_mode));
	assert_true(harness_alive(H));
	itest_cmd(c, 221, NULL, "QUIT");
	lmtpc_free(&c);
	free(body);
}

static void
test_maildir_symlink_to_users_own_dir_is_refused(void **state)
{
	const struct harness_user *u = &H->users[0];
	char target[256];

	(void)state;
	snprintf(target, sizeof(target), "%s/elsewhere-u1", H->tree);
	make_maildir(target, u->uid, u->gid, 0700);
	attack(0, "", target, target);
	itest_pass(H);
}

static void
test_new_symlink_to_world_writable_dir_is_refused(void **state)
{
	char target[256], newdir[300];

	(void)state;
	snprintf(target, sizeof(target), "%s/shared-tmp", H->tree);
	make_maildir(target, 0, 0, 01777);
	snprintf(newdir, sizeof(newdir), "%s/new", target);
	attack(1, "new", newdir, target);
	itest_pass(H);
}

static void
test_tmp_symlink_to_users_own_dir_is_refused(void **state)
{
	const struct harness_user *u = &H->users[2];
	char target[256], tmpdir[300];

	(void)state;
	snprintf(target, sizeof(target), "%s/elsewhere-u3", H->tree);
	make_maildir(target, u->uid, u->gid, 0700);
	snprintf(tmpdir, sizeof(tmpdir), "%s/tmp", target);
	attack(2, "tmp", tmpdir, target);
	itest_pass(H);
}

static void
test_maildir_symlink_to_other_users_maildir_is_refused(void **state)
{
	const struct harness_user *u = &H->users[3];
	struct plant p = { .u = u, .sub = "", .target = H->users[VICTIM_OK].maildir };
	struct lmtpc *c;
	struct lmtpc_reply dr, r;
	size_t len;
	char *body = itest_body(1000, 44, &len);
	int before = itest_count_new(H, VICTIM_OK);

	(void)state;
	/* u4's Maildir -> u5's Maildir: a writer that follows it, or writes
	 * with more than u4's rights, would drop u4's mail into u5's box. */
	assert_int_equal(harness_run_as(u->uid, u->gid, plant_as_user, &p), 0);
	c = itest_connect(H, HARNESS_UNIX);
	itest_envelope(c);
	itest_cmd(c, 250, NULL, "RCPT TO:<%s>", u->addr);
	assert_int_equal(lmtpc_data(c, body, len, &dr, &r, 1), 0);
	itest_assert_refused(&r, "delivery through a symlink to another Maildir");
	assert_int_equal(itest_count_new(H, VICTIM_OK), before);
	lmtpc_free(&c);
	free(body);
	itest_pass(H);
}

static void
test_user_with_sane_maildir_still_served(void **state)
{
	unsigned idx = VICTIM_OK;

	(void)state;
	/* After all the attacks, stowd (and its writers) still deliver. */
	assert_int_equal(harness_deliver(H, &idx, 1, ITEST_MINI_BODY,
					 strlen(ITEST_MINI_BODY)), 0);
	itest_pass(H);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			test_maildir_symlink_to_users_own_dir_is_refused, itest_setup, itest_teardown),
		cmocka_unit_test_setup_teardown(
			test_new_symlink_to_world_writable_dir_is_refused, itest_setup, itest_teardown),
		cmocka_unit_test_setup_teardown(
			test_tmp_symlink_to_users_own_dir_is_refused, itest_setup, itest_teardown),
		cmocka_unit_test_setup_teardown(
			test_maildir_symlink_to_other_users_maildir_is_refused,
			itest_setup, itest_teardown),
		cmocka_unit_test_setup_teardown(test_user_with_sane_maildir_still_served,
						itest_setup, itest_teardown),
	};

	harness_require_root();
	return cmocka_run_group_tests(tests, group_setup, itest_group_teardown);
}
