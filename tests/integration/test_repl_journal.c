/* SPDX-License-Identifier: MIT */
/*
 * tests/integration/test_repl_journal.c - the replication journal's limits
 * and restarts between real stowd instances (doc/replication-protocol.md,
 * stowd.conf(5) "Journal and resync"): a journal that would pass
 * replication_journal_max_size is replaced by marks in <NAME>.dirty and
 * the marked mailboxes are resynced when the replica is back; journal
 * and marks survive a graceful restart of the sender; a replica that
 * restarts while deliveries go on gets every message exactly once.
 *
 * Runs in:  the integration suite, as root; every test starts its own
 *           instances (IR[0] = a.test sends to IR[1] = b.test).
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

#include "tests/integration/itest.h"
#include "tests/integration/itest_repl.h"

enum { A = 0, B = 1 };

#define JOURNAL_MAX (1024LL * 1024LL) /* replication_journal_max_size = 1M */
/* An asynchronous 250 waits for no replica: with replication_sync_timeout
 * at 30s, a 250 that waited for B would take 30 s; 10 s leaves room for a
 * slow, loaded machine. */
#define ASYNC_250_MS 10000
#define ASYNC_SYNC_TIMEOUT "30s"
/* 16 x 90 KiB = 1.4M; one message stays under the harness's
 * lmtp_max_message_size (100K) */
#define BIG_N 16
#define BIG_SIZE (90 * 1024)

/* One message delivered to instance A. */
struct msg {
	unsigned idx;                   /* user */
	char guid[33];
	char path[512];                 /* the file on A */
};

/* Deliver a body of about size bytes to user m->idx of instance i; assert
 * 250 and the stored file.  Returns the time the delivery took. */
static int64_t
deliver_ok(unsigned i, size_t size, unsigned seed, struct msg *m)
{
	struct lmtpc_reply r;
	int64_t t0 = harness_mono_ms();
	size_t len;
	char *body = itest_body(size, seed, &len);

	irepl_deliver(i, m->idx, body, len, &r, m->guid);
	itest_assert_saved(IR[i].h, m->idx, &r, body, len, m->path, sizeof(m->path));
	free(body);
	return harness_mono_ms() - t0;
}

/* Start A replicating to B with conf ca (B has no replicas); one
 * replicated warm-up message to u1 and A's journal drained. */
static void
start_pair(const struct irepl_conf *ca)
{
	irepl_start_pair(A, B, ca);
	if (irepl_wait_journal_empty(A, "b", IREPL_POLL_MS) < 0)
		fail_msg("A's journal for b did not drain after the warm-up");
}

/*
 * Every message of m[0..n) reaches B as a byte-identical copy, A's journal
 * and dirty set for b drain, and then each user has the same number of
 * files on both sides with each GUID exactly once (warm-up included).
 */
static void
assert_replicated_once(const struct msg *m, size_t n)
{
	char pb[512];

	for (size_t k = 0; k < n; k++) {
		if (irepl_wait_guid(B, m[k].idx, m[k].guid, IREPL_POLL_MS, pb,
				    sizeof(pb)) < 0)
			fail_msg("message %zu (%s, %s) not on b exactly once", k,
				 IR[A].h->users[m[k].idx].name, m[k].guid);
		irepl_assert_same_file(m[k].path, B, m[k].idx, pb);
	}
	if (irepl_wait_journal_empty(A, "b", IREPL_POLL_MS) < 0)
		fail_msg("A's journal for b did not drain");
	if (irepl_wait_dirty_empty(A, "b", IREPL_POLL_MS) < 0)
		fail_msg("A's dirty set for b was not emptied");
	for (unsigned idx = 0; idx < 2; idx++) {
		int na = irepl_count(A, idx), nb = irepl_count(B, idx);

		if (na != nb)
			fail_msg("%s: %d files on a, %d on b", IR[A].h->users[idx].name,
				 na, nb);
	}
	for (size_t k = 0; k < n; k++) {
		assert_int_equal(irepl_find(A, m[k].idx, m[k].guid, NULL, 0), 1);
		assert_int_equal(irepl_find(B, m[k].idx, m[k].guid, NULL, 0), 1);
	}
}

/* Assert A's b.dirty is exactly one "user\tINBOX" line for u1 and u2. */
static void
assert_dirty_names_both_inboxes(void)
{
	char dirty[4096], want[2][80];
	long dlen = irepl_dirty_read(A, "b", dirty, sizeof(dirty));

	if (dlen < 0)
		fail_msg("cannot read A's b.dirty: %s", strerror(errno));
	for (unsigned idx = 0; idx < 2; idx++) {
		snprintf(want[idx], sizeof(want[idx]), "%s\tINBOX\n",
			 IR[A].h->users[idx].name);
		if (strstr(dirty, want[idx]) == NULL)
			fail_msg("A's b.dirty \"%s\" does not name %s INBOX", dirty,
				 IR[A].h->users[idx].name);
	}
	if ((size_t)dlen != strlen(want[0]) + strlen(want[1]))
		fail_msg("A's b.dirty \"%s\": expected exactly the two pairs", dirty);
}

/*
 * With A replicating asynchronously to b with a 1M journal: stop b and
 * deliver BIG_N messages alternately to u1 and u2.  Each gets its 250 at
 * once, the journal never passes 1M, and the mailboxes that did not fit
 * are named in b.dirty.
 */
static void
overflow_while_b_down(struct msg m[BIG_N])
{
	struct irepl_conf ca = { .async = true, .journal_max = "1M",
				 .sync_timeout = ASYNC_SYNC_TIMEOUT };

	start_pair(&ca);
	irepl_stop(B);
	for (unsigned k = 0; k < BIG_N; k++) {
		int64_t took;
		long long js;

		m[k].idx = k % 2;
		took = deliver_ok(A, BIG_SIZE, 1000 + k, &m[k]);
		if (took > ASYNC_250_MS)
			fail_msg("message %u: 250 after %lld ms with replication_sync_acks "
				 "= 0", k, (long long)took);
		js = irepl_journal_size(A, "b");
		if (js > JOURNAL_MAX)
			fail_msg("message %u: A's journal for b is %lld bytes, over "
				 "replication_journal_max_size (1M)", k, js);
	}
	if (irepl_journal_size(A, "b") == 0)
		fail_msg("A's journal for b is empty while b is down");
	assert_dirty_names_both_inboxes();
}

/* b is back: every message there once, journal and dirty set drained. */
static void
assert_overflow_resynced(const struct msg m[BIG_N])
{
	if (irepl_start(B) < 0)
		fail_msg("b did not restart");
	assert_replicated_once(m, BIG_N);
	assert_int_equal(irepl_count(B, 0), 1 + BIG_N / 2);
	assert_int_equal(irepl_count(B, 1), BIG_N / 2);
	assert_true(irepl_journal_size(A, "b") <= JOURNAL_MAX);
}

static void
test_journal_overflow_marks_mailboxes_and_resync_delivers_all(void **state)
{
	struct msg m[BIG_N];

	(void)state;
	overflow_while_b_down(m);
	assert_overflow_resynced(m);
	irepl_pass();
}

static void
test_dirty_set_survives_sender_restart(void **state)
{
	struct msg m[BIG_N];

	(void)state;
	overflow_while_b_down(m);
	irepl_stop(A);
	if (irepl_start(A) < 0)
		fail_msg("a did not restart");
	/* b is still down: the marks are what a kept across its restart */
	assert_dirty_names_both_inboxes();
	if (irepl_journal_size(A, "b") == 0)
		fail_msg("A's journal for b is empty after a's restart");
	assert_overflow_resynced(m);
	irepl_pass();
}

static void
test_sender_restart_replays_journal_exactly_once(void **state)
{
	struct irepl_conf ca = { .async = true, .sync_timeout = ASYNC_SYNC_TIMEOUT };
	struct msg m[3];

	(void)state;
	start_pair(&ca);
	irepl_stop(B);
	for (unsigned k = 0; k < 3; k++) {
		m[k].idx = 0;
		(void)deliver_ok(A, 3000 + 2000 * k, 2000 + k, &m[k]);
	}
	if (irepl_journal_size(A, "b") == 0)
		fail_msg("A's journal for b is empty while b is down");
	irepl_stop(A);
	if (irepl_start(A) < 0)
		fail_msg("a did not restart");
	/* b is still down: the journal is what a kept across its restart */
	if (irepl_journal_size(A, "b") == 0)
		fail_msg("A's journal for b is empty after a's restart");
	if (irepl_start(B) < 0)
		fail_msg("b did not restart");
	assert_replicated_once(m, 3);
	assert_int_equal(irepl_count(B, 0), 1 + 3);
	irepl_pass();
}

static void
test_replica_restart_mid_stream_gets_each_message_once(void **state)
{
	struct irepl_conf ca = { .sync_acks = 1, .on_timeout = "accept",
				 .sync_timeout = "300ms" };
	struct msg m[20];

	(void)state;
	start_pair(&ca);
	for (unsigned k = 0; k < 20; k++) {
		if (k == 6)
			irepl_stop(B);
		if (k == 12 && irepl_start(B) < 0)
			fail_msg("b did not restart");
		m[k].idx = 0;
		(void)deliver_ok(A, 1500 + 700 * k, 3000 + k, &m[k]);
	}
	assert_replicated_once(m, 20);
	assert_int_equal(irepl_count(B, 0), 1 + 20);
	irepl_pass();
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			test_journal_overflow_marks_mailboxes_and_resync_delivers_all,
			irepl_setup, irepl_teardown),
		cmocka_unit_test_setup_teardown(test_dirty_set_survives_sender_restart,
						irepl_setup, irepl_teardown),
		cmocka_unit_test_setup_teardown(
			test_sender_restart_replays_journal_exactly_once,
			irepl_setup, irepl_teardown),
		cmocka_unit_test_setup_teardown(
			test_replica_restart_mid_stream_gets_each_message_once,
			irepl_setup, irepl_teardown),
	};

	harness_require_root();
	return cmocka_run_group_tests(tests, irepl_group_setup, irepl_group_teardown);
}
