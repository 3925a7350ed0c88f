/* SPDX-License-Identifier: MIT */
/*
 * tests/integration/test_disk.c - a full disk: the home of one user is a
 * tiny tmpfs, so the kernel really answers ENOSPC while stowd writes.  The
 * recipient on the full disk gets 452 4.2.2 (retry later), nothing of the
 * message is left in its new/ or tmp/, the other recipient of the same
 * transaction gets the message, and once space is free again delivery to
 * the first user works.
 *
 * Runs in:  the integration suite, as root (mount(2) of a tmpfs).
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
#include <sys/mount.h>
#include <unistd.h>

#include "tests/integration/itest.h"

#define FULL 0          /* u1: home on a 192 KiB tmpfs */
#define OTHER 1         /* u2: normal home */

static struct harness *H;
static bool mounted;

static int
group_setup(void **state)
{
	static const char *const conf[] = { "lmtp_max_message_size = 10M", NULL };
	struct harness_opts o = { .nusers = 2, .conf = conf };
	char opts[128];

	(void)state;
	itest_use(&H);
	H = harness_new(&o);
	if (H == NULL)
		return -1;
	snprintf(opts, sizeof(opts), "size=192k,mode=0700,uid=%u,gid=%u",
		 (unsigned)H->users[FULL].uid, (unsigned)H->users[FULL].gid);
	if (mount("stowd-test", H->users[FULL].home, "tmpfs", 0, opts) < 0) {
		fprintf(stderr, "mount tmpfs on %s: %s\n", H->users[FULL].home,
			strerror(errno));
		harness_free(&H);
		return -1;
	}
	mounted = true;
	if (harness_start(H) < 0)
		return -1;
	return 0;
}

static int
group_teardown(void **state)
{
	(void)state;
	if (H != NULL && H->pid > 0)
		(void)harness_stop(H, 0, NULL);
	if (mounted && umount2(H->users[FULL].home, MNT_DETACH) < 0)
		fprintf(stderr, "umount: %s\n", strerror(errno));
	harness_free(&H);
	return 0;
}

/* One transaction to FULL and OTHER; replies in rr[2]. */
static void
deliver_both(const char *body, size_t len, struct lmtpc_reply rr[2])
{
	struct lmtpc *c = itest_connect(H, HARNESS_UNIX);
	struct lmtpc_reply dr;

	itest_envelope(c);
	itest_cmd(c, 250, NULL, "RCPT TO:<%s>", H->users[FULL].addr);
	itest_cmd(c, 250, NULL, "RCPT TO:<%s>", H->users[OTHER].addr);
	assert_int_equal(lmtpc_data(c, body, len, &dr, rr, 2), 0);
	assert_int_equal(dr.code, 354);
	itest_cmd(c, 221, NULL, "QUIT");
	lmtpc_free(&c);
}

static void
test_full_disk_tempfails_that_recipient_and_leaves_nothing(void **state)
{
	struct lmtpc_reply rr[2];
	size_t len;
	char *body = itest_body(400 * 1024, 7, &len);
	int other_before = itest_count_new(H, OTHER);

	(void)state;
	deliver_both(body, len, rr);
	assert_int_equal(rr[0].code, 452);
	if (strstr(rr[0].text, "4.2.2") == NULL)
		fail_msg("want 452 4.2.2 for the full disk, got: %s", rr[0].text);
	itest_assert_saved(H, OTHER, &rr[1], body, len, NULL, 0);
	assert_int_equal(itest_count_new(H, OTHER), other_before + 1);
	/* nothing partial anywhere in the full user's Maildir */
	assert_int_equal(itest_count_new(H, FULL), 0);
	{
		char **names = NULL;
		int n = harness_maildir_list(H, FULL, "tmp", &names);

		harness_names_free(&names, n);
		assert_int_equal(n, 0);
	}
	assert_true(harness_alive(H));
	free(body);
	itest_pass(H);
}

static void
test_small_message_still_fits_after_enospc(void **state)
{
	struct lmtpc_reply rr[2];
	size_t len;
	char *body = itest_body(2000, 8, &len);

	(void)state;
	deliver_both(body, len, rr);
	itest_assert_saved(H, FULL, &rr[0], body, len, NULL, 0);
	itest_assert_saved(H, OTHER, &rr[1], body, len, NULL, 0);
	free(body);
	itest_pass(H);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			test_full_disk_tempfails_that_recipient_and_leaves_nothing,
			itest_setup, itest_teardown),
		cmocka_unit_test_setup_teardown(test_small_message_still_fits_after_enospc,
						itest_setup, itest_teardown),
	};

	harness_require_root();
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
