/* SPDX-License-Identifier: MIT */
/*
 * tests/integration/test_crash.c - a writer or front-end killed with
 * SIGKILL costs at most a 4xx for what it held: never a 250 without the
 * file, nothing acknowledged lost, and the supervisor restarts it so the
 * next transaction succeeds.
 *
 * Also a writer that breaks the protocol (a stamp for a request it does
 * not hold) is killed the same way.
 *
 * Runs in:  the integration suite, as root, one stowd per test.
 * Timing:   there is no hook to stall a writer from outside, so the kill
 *           races the delivery on purpose; every outcome allowed by the
 *           contract is accepted (4xx, or 250 with the file on disk), a
 *           5xx, a lost reply or a 250 without the file fails.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "tests/integration/itest.h"

#define RESTART_TIMEOUT_MS 15000
#define REPLY_TIMEOUT_MS 30000

static struct harness *H;

static int
setup(void **state)
{
	struct harness_opts o = { .nusers = 3 };

	(void)state;
	return itest_test_start(&H, &o);
}

/* SIGKILL every process of role; their pids in pids[], count returned. */
static size_t
kill_role(enum harness_role role, pid_t *pids, size_t max)
{
	struct harness_proc p[HARNESS_MAX_PROCS];
	int n = harness_find_role(H, role, p, HARNESS_MAX_PROCS);
	size_t k = 0;

	for (int i = 0; i < n && k < max; i++) {
		if (p[i].pid == H->pid)
			continue;
		kill(p[i].pid, SIGKILL);
		pids[k++] = p[i].pid;
	}
	return k;
}

/* The outcome of the transaction whose writer died: 4xx, or 250 + file. */
static void
assert_4xx_or_saved(unsigned idx, const struct lmtpc_reply *r, const char *body,
		    size_t len)
{
	if (r->code / 100 == 4)
		return;
	if (r->code == 250) {
		itest_assert_saved(H, idx, r, body, len, NULL, 0);
		return;
	}
	fail_msg("after the writer was killed: expected 4xx or 250 with the "
		 "file, got \"%s\"", r->text);
}

/* Every file in new/ of user idx is the complete message. */
static void
assert_new_files_complete(unsigned idx, int before, const char *body, size_t len)
{
	char **names, path[512], why[512], *data;
	size_t dlen;
	int n = harness_maildir_list(H, idx, "new", &names);

	assert_true(n >= before);
	for (int i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/new/%s", H->users[idx].maildir, names[i]);
		if (harness_read_file(path, &data, &dlen) < 0)
			fail_msg("read %s", path);
		if (harness_check_stored(data, dlen, H->users[idx].addr, body, len, why,
					 sizeof(why)) != 0)
			fail_msg("partial or wrong file after a killed writer: %s: %s",
				 path, why);
		free(data);
	}
	harness_names_free(&names, n);
}

/* Wait until writers run again (seteuid pool; fork mode starts on demand). */
static void
wait_writers_back(const pid_t *old, size_t n_old)
{
	if (strcmp(H->mode, "seteuid") != 0)
		return;
	if (harness_wait_role(H, HARNESS_ROLE_WRITER, 2, old, n_old,
			      RESTART_TIMEOUT_MS) < 0)
		fail_msg("the supervisor did not restart the killed writers");
}

static void
next_transaction_succeeds(unsigned idx)
{
	struct lmtpc *c = itest_connect(H, HARNESS_UNIX);
	struct lmtpc_reply dr, r;
	size_t len;
	char *body = itest_body(3000, 77, &len);

	itest_envelope(c);
	itest_cmd(c, 250, NULL, "RCPT TO:<%s>", H->users[idx].addr);
	assert_int_equal(lmtpc_data(c, body, len, &dr, &r, 1), 0);
	itest_assert_saved(H, idx, &r, body, len, NULL, 0);
	lmtpc_free(&c);
	free(body);
}

/* After a kill storm of its own: a kill sent just before the storm ended
 * may still hit the writer that takes the next job, which then costs that
 * job a 451; the one after it must succeed. */
static void
next_transaction_succeeds_after_kills(unsigned idx)
{
	struct lmtpc *c = itest_connect(H, HARNESS_UNIX);
	struct lmtpc_reply dr, r;
	size_t len;
	char *body = itest_body(3000, 78, &len);

	itest_envelope(c);
	itest_cmd(c, 250, NULL, "RCPT TO:<%s>", H->users[idx].addr);
	assert_int_equal(lmtpc_data(c, body, len, &dr, &r, 1), 0);
	lmtpc_free(&c);
	free(body);
	if (r.code == 451 && strstr(r.text, "killed by signal 9") != NULL)
		print_message("a late kill hit the next writer: %s\n", r.text);
	else if (r.code != 250)
		fail_msg("expected 250 or a 451 of a late kill, got \"%s\"", r.text);
	next_transaction_succeeds(idx);
}

static void
test_writers_killed_while_data_is_pending(void **state)
{
	struct lmtpc *c;
	struct lmtpc_reply r;
	pid_t old[64];
	size_t n_old, len, slen;
	char *body = itest_body(40000, 5, &len), *stuffed;
	unsigned first = 0;

	(void)state;
	/* A first message makes sure writers exist (fork mode: u1's). */
	assert_int_equal(harness_deliver(H, &first, 1, body, len), 0);
	assert_true(harness_wait_role(H, HARNESS_ROLE_WRITER, 1, NULL, 0, 5000) >= 1);

	c = itest_connect(H, HARNESS_UNIX);
	itest_envelope(c);
	itest_cmd(c, 250, NULL, "RCPT TO:<%s>", H->users[0].addr);
	itest_cmd(c, 354, NULL, "DATA");
	stuffed = lmtpc_dot_stuff(body, len, &slen);
	assert_int_equal(lmtpc_send(c, stuffed, slen / 2), 0);

	n_old = kill_role(HARNESS_ROLE_WRITER, old, 64);
	assert_true(n_old >= 1);
	/* gone (or zombies) before the body ends */
	assert_true(harness_wait_role(H, HARNESS_ROLE_WRITER, 0, old, n_old, 5000) >= 0);

	lmtpc_set_timeout(c, REPLY_TIMEOUT_MS);
	assert_int_equal(lmtpc_send(c, stuffed + slen / 2, slen - slen / 2), 0);
	if (lmtpc_read_reply(c, &r) < 0)
		fail_msg("no reply after the writers were killed: %s",
			 lmtpc_strerror(errno));
	assert_4xx_or_saved(0, &r, body, len);
	assert_true(harness_alive(H));
	/* the first, acknowledged message is still there */
	assert_true(itest_count_new(H, 0) >= 1);

	wait_writers_back(old, n_old);
	next_transaction_succeeds(1);
	next_transaction_succeeds(0);
	lmtpc_free(&c);
	free(stuffed);
	free(body);
	itest_pass(H);
}

static void
test_writers_killed_during_the_save(void **state)
{
	struct lmtpc *c;
	struct lmtpc_reply r;
	pid_t old[64];
	size_t n_old = 0, len, slen;
	char *body = itest_body(90000, 6, &len), *stuffed;
	unsigned who[2] = { 0, 1 };
	int before = 0;

	(void)state;
	assert_int_equal(harness_deliver(H, who, 2, body, len), 0);
	before = itest_count_new(H, 2);
	c = itest_connect(H, HARNESS_UNIX);
	itest_envelope(c);
	itest_cmd(c, 250, NULL, "RCPT TO:<%s>", H->users[2].addr);
	itest_cmd(c, 354, NULL, "DATA");
	stuffed = lmtpc_dot_stuff(body, len, &slen);
	assert_int_equal(lmtpc_send(c, stuffed, slen), 0);

	/* Kill writers over and over until the reply comes (at most 2 s),
	 * so the kill lands before, during or after the save. */
	for (int round = 0; round < 400; round++) {
		struct pollfd p = { .fd = lmtpc_fd(c), .events = POLLIN };

		if (n_old < 60)
			n_old += kill_role(HARNESS_ROLE_WRITER, old + n_old, 64 - n_old);
		if (poll(&p, 1, 5) > 0)
			break;
	}
	lmtpc_set_timeout(c, REPLY_TIMEOUT_MS);
	if (lmtpc_read_reply(c, &r) < 0)
		fail_msg("no reply after the writers were killed: %s",
			 lmtpc_strerror(errno));
	assert_4xx_or_saved(2, &r, body, len);
	/* A 4xx may still leave the message in new/ (killed after the save,
	 * before the reply: the retry makes a duplicate, which the contract
	 * allows), but never a partial file. */
	assert_new_files_complete(2, before, body, len);
	assert_true(harness_alive(H));
	/* the messages acknowledged earlier are still there */
	assert_true(itest_count_new(H, 0) >= 1);
	assert_true(itest_count_new(H, 1) >= 1);

	wait_writers_back(old, n_old);
	next_transaction_succeeds_after_kills(2);
	lmtpc_free(&c);
	free(stuffed);
	free(body);
	itest_pass(H);
}

/* A client that connects while the front-end restarts is kept by the
 * supervisor and greeted once the new front-end is ready: one connection,
 * no retry. */
/*
 * A writer that sends a stamp (PSEP_WRITE_STAMP) for a request it does not
 * hold is killed as a protocol violation (test hook: SIGWINCH makes the
 * writer of the next job send one first); its job gets a 4xx, nothing is
 * stored for it, and the next transaction succeeds.
 */
static void
test_writer_with_a_stamp_it_does_not_hold_is_killed(void **state)
{
	struct lmtpc_reply dr, r;
	struct lmtpc *c;
	size_t len;
	char *body = itest_body(2500, 91, &len);
	int before;

	(void)state;
	next_transaction_succeeds(0);
	before = itest_count_new(H, 0);
	assert_int_equal(harness_test_hook(H, SIGWINCH), 0);
	c = itest_connect(H, HARNESS_UNIX);
	itest_envelope(c);
	itest_cmd(c, 250, NULL, "RCPT TO:<%s>", H->users[0].addr);
	assert_int_equal(lmtpc_data(c, body, len, &dr, &r, 1), 0);
	lmtpc_free(&c);
	if (r.code != 451)
		fail_msg("expected 451 from a killed writer, got \"%s\"", r.text);
	if (!harness_log_contains(H, "stamp for a request it does not hold"))
		fail_msg("stowd.log does not say why the writer was killed");
	assert_int_equal(itest_count_new(H, 0), before);
	next_transaction_succeeds(0);
	assert_true(harness_alive(H));
	free(body);
	itest_pass(H);
}

static void
wait_for_greeting(void)
{
	struct lmtpc_reply r;
	struct lmtpc *c = NULL;

	if (lmtpc_connect(H->listen[HARNESS_UNIX], RESTART_TIMEOUT_MS, &c) < 0 ||
	    lmtpc_greeting(c, &r) < 0 || r.code != 220)
		fail_msg("no greeting within %d ms after the lmtpd restart",
			 RESTART_TIMEOUT_MS);
	lmtpc_free(&c);
}

static void
test_lmtpd_killed_mid_session(void **state)
{
	struct lmtpc *c;
	struct lmtpc_reply r;
	pid_t old[16];
	size_t n_old;
	int rc;

	(void)state;
	c = itest_connect(H, HARNESS_UNIX);
	itest_envelope(c);
	itest_cmd(c, 250, NULL, "RCPT TO:<%s>", H->users[0].addr);
	itest_cmd(c, 354, NULL, "DATA");
	assert_int_equal(lmtpc_sendf(c, "Subject: lost\r\n\r\nhalf a bo"), 0);

	n_old = kill_role(HARNESS_ROLE_LMTPD, old, 16);
	assert_true(n_old >= 1);
	/* The session dies with its front-end: the client sees the close
	 * (maybe after a 4xx), never a 250. */
	rc = lmtpc_sendf(c, "dy\r\n.\r\n");
	lmtpc_set_timeout(c, 10000);
	if (rc == 0 && lmtpc_read_reply(c, &r) == 0 && r.code / 100 != 4)
		fail_msg("session of a killed lmtpd answered \"%s\"", r.text);
	assert_int_equal(itest_count_new(H, 0), 0);
	lmtpc_free(&c);

	if (harness_wait_role(H, HARNESS_ROLE_LMTPD, n_old, old, n_old,
			      RESTART_TIMEOUT_MS) < 0)
		fail_msg("the supervisor did not restart the killed lmtpd");
	assert_true(harness_alive(H));
	/* A new lmtpd exists before it can take clients; nothing outside
	 * says when it can, so poll for a greeting (bounded). */
	wait_for_greeting();
	next_transaction_succeeds(0);
	itest_pass(H);
}

/* path, owned by user idx, last changed age seconds ago. */
static void
put_old(unsigned idx, const char *path, long age)
{
	struct timespec ts[2] = { { .tv_sec = time(NULL) - age },
				  { .tv_sec = time(NULL) - age } };

	assert_int_equal(harness_write_file(path, "x\n", 2, 0600), 0);
	assert_int_equal(chown(path, H->users[idx].uid, H->users[idx].gid), 0);
	assert_int_equal(utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW), 0);
}

/*
 * Leftovers of crashes in a Maildir's tmp/: a file older than 36 hours
 * and a stowd-deleted-* tree (an interrupted mailbox DELETE).  The writer
 * that next delivers there removes them after its reply, with the user's
 * identity; a young file stays, and a symlink is not followed.
 */
static void
test_writer_sweeps_stale_tmp_files(void **state)
{
	char tmp[300], p_old[400], p_young[400], tree[350], link[400], victim[400];
	int64_t end;

	(void)state;
	snprintf(tmp, sizeof(tmp), "%s/tmp", H->users[1].maildir);
	snprintf(p_old, sizeof(p_old), "%s/1.M1P1Q1.crashed", tmp);
	snprintf(p_young, sizeof(p_young), "%s/2.M1P1Q1.young", tmp);
	snprintf(tree, sizeof(tree), "%s/stowd-deleted-0123", tmp);
	snprintf(link, sizeof(link), "%s/3.M1P1Q1.link", tmp);
	snprintf(victim, sizeof(victim), "%s/victim", H->tree);
	/* the Maildir with its leftovers, before any writer touches it */
	{
		static const char *const subs[] = { "", "/tmp", "/new", "/cur" };

		for (size_t i = 0; i < 4; i++) {
			snprintf(link, sizeof(link), "%s%s", H->users[1].maildir, subs[i]);
			assert_int_equal(mkdir(link, 0700), 0);
			assert_int_equal(chown(link, H->users[1].uid, H->users[1].gid), 0);
		}
	}
	assert_int_equal(harness_write_file(victim, "v\n", 2, 0600), 0);
	put_old(1, p_old, 40 * 3600);
	put_old(1, p_young, 3600);
	assert_int_equal(mkdir(tree, 0700), 0);
	assert_int_equal(chown(tree, H->users[1].uid, H->users[1].gid), 0);
	snprintf(link, sizeof(link), "%s/new", tree);
	assert_int_equal(mkdir(link, 0700), 0);
	assert_int_equal(chown(link, H->users[1].uid, H->users[1].gid), 0);
	snprintf(link, sizeof(link), "%s/new/m", tree);
	put_old(1, link, 10);
	snprintf(link, sizeof(link), "%s/3.M1P1Q1.link", tmp);
	assert_int_equal(symlink(victim, link), 0);
	assert_int_equal(lchown(link, H->users[1].uid, H->users[1].gid), 0);
	{
		struct timespec ts[2] = { { .tv_sec = time(NULL) - 40 * 3600 },
					  { .tv_sec = time(NULL) - 40 * 3600 } };

		assert_int_equal(utimensat(AT_FDCWD, victim, ts, 0), 0);
	}
	/* a writer sweeps a Maildir the first time it touches it, after
	 * its reply: poll for the result (bounded) */
	next_transaction_succeeds(1);
	end = harness_mono_ms() + 15000;
	while (access(p_old, F_OK) == 0 || access(tree, F_OK) == 0) {
		if (harness_mono_ms() > end)
			fail_msg("the stale tmp/ file or the stowd-deleted tree is "
				 "still there");
		harness_sleep_ms(50);
	}
	assert_int_equal(access(p_young, F_OK), 0);
	assert_int_equal(access(victim, F_OK), 0);
	assert_int_equal(faccessat(AT_FDCWD, link, F_OK, AT_SYMLINK_NOFOLLOW), 0);
	/* the log line follows the removals: poll for it too (bounded) */
	end = harness_mono_ms() + 5000;
	while (!harness_log_contains(H, "swept tmp/")) {
		if (harness_mono_ms() > end)
			fail_msg("no \"swept tmp/\" line in the log");
		harness_sleep_ms(50);
	}
	itest_pass(H);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_writers_killed_while_data_is_pending, setup, itest_test_teardown),
		cmocka_unit_test_setup_teardown(test_writers_killed_during_the_save, setup, itest_test_teardown),
		cmocka_unit_test_setup_teardown(test_lmtpd_killed_mid_session, setup, itest_test_teardown),
		cmocka_unit_test_setup_teardown(test_writer_with_a_stamp_it_does_not_hold_is_killed,
						setup, itest_test_teardown),
		cmocka_unit_test_setup_teardown(test_writer_sweeps_stale_tmp_files, setup,
						itest_test_teardown),
	};

	harness_require_root();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
