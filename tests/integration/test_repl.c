/* SPDX-License-Identifier: MIT */
/*
 * tests/integration/test_repl.c - replication between real stowd
 * instances (doc/replication-protocol.md): synchronous acks, a replica
 * that is down (accept: journal and catch-up; tempfail: 451 and no local
 * copy), a chain A->B->C without loops, a lost file brought back by SYNC,
 * a message added by hand on a replica, a damaged file replaced by SYNC,
 * concurrent flag changes on two masters, mailbox events (CREATE, RENAME
 * with inferiors, DELETE) reaching the replica, and who may connect (TLS
 * certificates, SO_PEERCRED).  The tests of the delivery pipeline (early
 * stamp, TCP_NODELAY) are in test_repl_pipeline.c.
 *
 * Runs in:  the integration suite, as root; every test starts its own
 *           instances (IR[0] = a.test, IR[1] = b.test, IR[2] = c.test).
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
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/integration/itest.h"
#include "tests/integration/itest_repl.h"
#include "tests/integration/test_repl.h"

enum { A = 0, B = 1, C = 2 };

/* Logged by a once its full sync with b is in step and acknowledged. */
#define SYNC_DONE "sync: replica=b full sync done"

/* Deliver to u1 on instance i, assert 250 and the stored file (path). */
static void
deliver_ok(unsigned i, const char *body, size_t len, char guid[33], char *path,
	   size_t size)
{
	struct lmtpc_reply r;

	irepl_deliver(i, 0, body, len, &r, guid);
	itest_assert_saved(IR[i].h, 0, &r, body, len, path, size);
}

static void
test_sync_ack_message_is_on_replica_when_250_arrives(void **state)
{
	char guid[33], pa[512], pb[512];
	size_t len;
	char *body = itest_body(20000, 101, &len);

	(void)state;
	irepl_start_pair(A, B, NULL);
	deliver_ok(A, body, len, guid, pa, sizeof(pa));
	/* no poll: the 250 means B already has it */
	assert_int_equal(irepl_find(B, 0, guid, pb, sizeof(pb)), 1);
	if (strstr(pb, "/new/") == NULL)
		fail_msg("%s: expected in new/", pb);
	irepl_assert_same_file(pa, B, 0, pb);
	assert_int_equal(irepl_find(A, 0, guid, NULL, 0), 1);
	free(body);
	irepl_pass();
}

/* One descendant of instance i has comm and a command line that starts
 * with title. */
static void
assert_one_named(unsigned i, const char *comm, const char *title)
{
	struct harness_proc p[HARNESS_MAX_PROCS];
	int n = harness_descendants(IR[i].h->pid, p, HARNESS_MAX_PROCS);
	char buf[128];
	int found = 0;

	assert_true(n > 0);
	for (int k = 0; k < n; k++) {
		if (strcmp(p[k].comm, comm) != 0)
			continue;
		found++;
		assert_true(harness_proc_file(p[k].pid, "cmdline", buf, sizeof(buf)) > 0);
		if (strncmp(buf, title, strlen(title)) != 0)
			fail_msg("%s pid %d: cmdline \"%s\", want \"%s\"", comm,
				 (int)p[k].pid, buf, title);
	}
	if (found != 1)
		fail_msg("%d processes named %s under %s, want 1", found, comm,
			 IR[i].name);
}

static void
test_ps_names_the_replication_processes(void **state)
{
	(void)state;
	irepl_start_pair(A, B, NULL);
	assert_one_named(A, "stowd-hook", "stowd: repl-hook");
	assert_one_named(B, "stowd-repld", "stowd: repld");
	irepl_pass();
}

static void
test_replica_down_accept_journals_and_catches_up(void **state)
{
	struct irepl_conf ca = { .on_timeout = "accept", .sync_timeout = "2s" };
	char guid[2][33], pa[2][512], pb[512];
	size_t len[2];
	char *body[2];

	(void)state;
	irepl_start_pair(A, B, &ca);
	irepl_stop(B);
	for (unsigned k = 0; k < 2; k++) {
		int64_t t0 = harness_mono_ms(), took;

		body[k] = itest_body(3000 + 1000 * k, 200 + k, &len[k]);
		deliver_ok(A, body[k], len[k], guid[k], pa[k], sizeof(pa[k]));
		took = harness_mono_ms() - t0;
		/* accepted after the sync timeout, not before */
		if (took < 1500)
			fail_msg("250 after %lld ms with the replica down; expected "
				 "about replication_sync_timeout (2s)", (long long)took);
	}
	if (irepl_journal_size(A, "b") <= 0)
		fail_msg("A's journal for b is empty while b is down");
	if (irepl_start(B) < 0)
		fail_msg("b did not restart");
	for (unsigned k = 0; k < 2; k++) {
		if (irepl_wait_guid(B, 0, guid[k], IREPL_POLL_MS, pb, sizeof(pb)) < 0)
			fail_msg("message %u (%s) did not reach b after restart", k,
				 guid[k]);
		irepl_assert_same_file(pa[k], B, 0, pb);
	}
	if (irepl_wait_journal_empty(A, "b", IREPL_POLL_MS) < 0)
		fail_msg("A's journal for b did not drain");
	/* every message exactly once: warm-up + 2, on both sides */
	assert_int_equal(irepl_count(B, 0), 3);
	assert_int_equal(irepl_count(A, 0), 3);
	free(body[0]);
	free(body[1]);
	irepl_pass();
}

static void
test_replica_down_tempfail_refuses_and_keeps_no_copy(void **state)
{
	struct irepl_conf ca = { .replicas = { &IR[B] }, .nreplicas = 1,
				 .on_timeout = "tempfail", .sync_timeout = "2s" };
	struct lmtpc_reply r;
	char guid[33];
	size_t len;
	char *body = itest_body(4000, 300, &len);

	(void)state;
	/* b never runs: nothing listens on its port */
	irepl_make_start(A, &ca);
	irepl_deliver(A, 0, body, len, &r, guid);
	if (r.code != 451 || strcmp(r.enhanced, "4.4.1") != 0)
		fail_msg("expected 451 4.4.1 with the replica down, got \"%s\"", r.text);
	assert_int_equal(irepl_count(A, 0), 0);
	free(body);
	irepl_pass();
}

static void
test_chain_a_b_c_reaches_c_without_loops(void **state)
{
	struct irepl_conf cc = { 0 },
		cb = { .replicas = { &IR[C] }, .nreplicas = 1 },
		ca = { .replicas = { &IR[B] }, .nreplicas = 1 };
	char guid[33], pa[512], pc[512];
	size_t len;
	char *body = itest_body(12000, 400, &len);

	(void)state;
	irepl_make_start(C, &cc);
	irepl_make_start(B, &cb);
	irepl_make_start(A, &ca);
	irepl_warm_up(A, C, 0);
	deliver_ok(A, body, len, guid, pa, sizeof(pa));
	if (irepl_wait_guid(C, 0, guid, IREPL_POLL_MS, pc, sizeof(pc)) < 0)
		fail_msg("message %s did not reach c through b", guid);
	irepl_assert_same_file(pa, C, 0, pc);
	if (irepl_wait_journal_empty(B, "c", IREPL_POLL_MS) < 0)
		fail_msg("b's journal for c did not drain");
	assert_int_equal(irepl_find(B, 0, guid, NULL, 0), 1);
	/* nothing came back to a: one copy of each message */
	assert_int_equal(irepl_find(A, 0, guid, NULL, 0), 1);
	assert_int_equal(irepl_count(A, 0), 2);
	assert_int_equal(irepl_count(C, 0), 2);
	free(body);
	irepl_pass();
}

/* replication_vanished = repair: a file that vanished is a loss. */
static void
test_file_deleted_on_replica_comes_back_by_sync(void **state)
{
	char guid[33], pa[512], pb[512];
	size_t len;
	char *body = itest_body(6000, 500, &len);
	struct irepl_conf conf = { .vanished = "repair" };

	(void)state;
	irepl_start_pair(A, B, &conf);
	deliver_ok(A, body, len, guid, pa, sizeof(pa));
	assert_int_equal(irepl_find(B, 0, guid, pb, sizeof(pb)), 1);
	assert_int_equal(unlink(pb), 0);
	assert_int_equal(irepl_find(B, 0, guid, NULL, 0), 0);
	/* a full sync runs at start */
	irepl_stop(A);
	if (irepl_start(A) < 0)
		fail_msg("a did not restart");
	if (irepl_wait_guid(B, 0, guid, IREPL_POLL_MS, pb, sizeof(pb)) < 0)
		fail_msg("message %s deleted on b did not come back", guid);
	irepl_assert_same_file(pa, B, 0, pb);
	assert_int_equal(irepl_find(A, 0, guid, NULL, 0), 1);
	free(body);
	irepl_pass();
}

/* replication_full_sync_interval: a full sync runs again while A keeps
 * running, and repairs what went missing on B since the last one
 * (replication_vanished = repair). */
static void
test_periodic_full_sync_repairs_without_restart(void **state)
{
	struct irepl_conf conf = { .full_sync = "2s", .vanished = "repair" };
	char guid[33], pa[512], pb[512];
	pid_t pid;
	size_t len;
	int done;
	char *body = itest_body(5000, 510, &len);

	(void)state;
	irepl_start_pair(A, B, &conf);
	pid = IR[A].h->pid;
	deliver_ok(A, body, len, guid, pa, sizeof(pa));
	assert_int_equal(irepl_find(B, 0, guid, pb, sizeof(pb)), 1);
	done = irepl_log_count(A, SYNC_DONE);
	assert_int_equal(unlink(pb), 0);
	if (irepl_wait_log(A, SYNC_DONE, done, IREPL_POLL_MS) < 0)
		fail_msg("no full sync after the interval");
	if (irepl_wait_guid(B, 0, guid, IREPL_POLL_MS, pb, sizeof(pb)) < 0)
		fail_msg("message %s deleted on b did not come back", guid);
	irepl_assert_same_file(pa, B, 0, pb);
	/* the same A all along: the interval, not a restart, did it */
	assert_int_equal(IR[A].h->pid, pid);
	assert_true(harness_alive(IR[A].h));
	free(body);
	irepl_pass();
}

static void
test_message_added_by_hand_on_replica_reaches_master_once(void **state)
{
	static const char guid[] = "5eed0b1e7a3b4c5d8e9f00112233abcd";
	char name[2][256], pb[2][512], pa[512];
	size_t clen[2], len[2];
	int done;
	char *crlf[2], *msg[2];

	(void)state;
	irepl_start_pair(A, B, NULL);
	for (unsigned k = 0; k < 2; k++) {
		crlf[k] = itest_body(4000 + 1000 * k, 700 + k, &clen[k]);
		msg[k] = harness_crlf_to_lf(crlf[k], clen[k], &len[k]);
		/* message 0 without a G part, message 1 with one */
		irepl_put_by_hand(B, 0, msg[k], len[k], k == 1 ? guid : NULL,
				  name[k], sizeof(name[k]));
	}
	/* a full sync runs at start */
	irepl_stop(A);
	done = irepl_log_count(A, SYNC_DONE);
	if (irepl_start(A) < 0)
		fail_msg("a did not restart");
	for (unsigned k = 0; k < 2; k++) {
		if (irepl_wait_bytes(A, 0, msg[k], len[k], IREPL_POLL_MS, pa,
				     sizeof(pa)) < 0)
			fail_msg("message %s written on b did not reach a once",
				 name[k]);
		assert_int_equal(irepl_find_bytes(B, 0, msg[k], len[k], pb[k],
						  sizeof(pb[k])), 1);
		irepl_assert_same_file(pb[k], A, 0, pa);
	}
	/* the GUID of the name is kept */
	assert_int_equal(irepl_find(A, 0, guid, NULL, 0), 1);
	/* a's SAVE of what it fetched went back to b, which already had it */
	if (irepl_wait_log(A, SYNC_DONE, done, IREPL_POLL_MS) < 0)
		fail_msg("a's full sync with b did not end");
	assert_int_equal(irepl_log_count(A, "still differs"), 0);
	/* a drained journal is truncated once it stayed drained a moment */
	assert_int_equal(irepl_wait_journal_empty(A, "b", IREPL_POLL_MS), 0);
	for (unsigned k = 0; k < 2; k++) {
		assert_int_equal(irepl_find_bytes(A, 0, msg[k], len[k], NULL, 0), 1);
		assert_int_equal(irepl_find_bytes(B, 0, msg[k], len[k], NULL, 0), 1);
		free(crlf[k]);
		free(msg[k]);
	}
	/* warm-up + 2 on both sides */
	assert_int_equal(irepl_count(A, 0), 3);
	assert_int_equal(irepl_count(B, 0), 3);
	irepl_pass();
}

static void
test_damaged_file_on_replica_is_replaced_by_sync(void **state)
{
	char guid[33], pa[512], pb[512], bad[512], aside[512], *name, *ga;
	int64_t deadline;
	struct stat st;
	size_t len, alen;
	int done;
	char *body = itest_body(8000, 800, &len);

	(void)state;
	irepl_start_pair(A, B, NULL);
	deliver_ok(A, body, len, guid, pa, sizeof(pa));
	/* sync_acks 1: on b when the 250 arrived */
	assert_int_equal(irepl_find(B, 0, guid, bad, sizeof(bad)), 1);
	assert_int_equal(stat(bad, &st), 0);
	/* shorter than the S= of its name */
	assert_int_equal(truncate(bad, st.st_size - 100), 0);
	name = strrchr(bad, '/') + 1;
	snprintf(aside, sizeof(aside), "%s/tmp/stowd-damaged-%s",
		 IR[B].h->users[0].maildir, name);
	if (harness_read_file(pa, &ga, &alen) < 0)
		fail_msg("read %s: %s", pa, strerror(errno));
	/* a full sync runs at start */
	irepl_stop(A);
	done = irepl_log_count(A, SYNC_DONE);
	if (irepl_start(A) < 0)
		fail_msg("a did not restart");
	/* b first moves the damaged file aside, then gets a's copy */
	deadline = harness_mono_ms() + IREPL_POLL_MS;
	while (irepl_find_bytes(B, 0, ga, alen, NULL, 0) != 1) {
		if (harness_mono_ms() > deadline)
			fail_msg("no good copy of %s on b (%d files with its GUID)",
				 guid, irepl_find(B, 0, guid, NULL, 0));
		harness_sleep_ms(50);
	}
	assert_int_equal(irepl_find(B, 0, guid, pb, sizeof(pb)), 1);
	irepl_assert_same_file(pa, B, 0, pb);
	if (strstr(pb, name) != NULL)
		fail_msg("good copy %s has the damaged file's name", pb);
	if (stat(aside, &st) < 0)
		fail_msg("damaged file not moved to %s: %s", aside, strerror(errno));
	assert_int_equal(st.st_size, (off_t)alen - 100);
	if (irepl_wait_log(A, SYNC_DONE, done, IREPL_POLL_MS) < 0)
		fail_msg("a's full sync with b did not end");
	assert_int_equal(irepl_log_count(A, "still differs"), 0);
	/* a drained journal is truncated once it stayed drained a moment */
	assert_int_equal(irepl_wait_journal_empty(A, "b", IREPL_POLL_MS), 0);
	assert_int_equal(irepl_find(A, 0, guid, NULL, 0), 1);
	assert_int_equal(irepl_find(B, 0, guid, NULL, 0), 1);
	assert_int_equal(irepl_count(A, 0), 2);
	assert_int_equal(irepl_count(B, 0), 2);
	free(ga);
	free(body);
	irepl_pass();
}

/* "MESSAGES n GUIDHASH h FLAGHASH h" of SYNC u1 INBOX on instance i. */
static int
sync_digest(unsigned i, char *out, size_t size)
{
	struct replc *c = irepl_unix(i, "test.client");
	struct replc_resp r;
	const char *m, *e;
	int rc = -1;

	if (replc_cmd(c, &r, "y1", NULL, 0, "SYNC %s INBOX",
		      IR[i].h->users[0].name) == 0 &&
	    replc_tagged_is(&r, "OK", NULL) && r.ndata == 1 &&
	    (m = strstr(r.data[0], " MESSAGES ")) != NULL &&
	    (e = strstr(m, " HIGHESTMODSEQ ")) != NULL) {
		snprintf(out, size, "%.*s", (int)(e - m - 1), m + 1);
		rc = 0;
	} else {
		fprintf(stderr, "%s: SYNC: \"%s\" %s\n", IR[i].name, r.tagged,
			r.ndata ? r.data[0] : "");
	}
	replc_resp_clear(&r);
	replc_free(&c);
	return rc;
}

/* Info letters of the file with guid on instance i ("" in new/). */
static void
info_letters(unsigned i, const char *guid, char *out, size_t size)
{
	char path[512];
	const char *p;

	if (irepl_find(i, 0, guid, path, sizeof(path)) != 1)
		fail_msg("%s: not exactly one file with GUID %s", IR[i].name, guid);
	p = strstr(strrchr(path, '/'), ":2,");
	snprintf(out, size, "%s", p != NULL ? p + 3 : "");
}

static void
test_concurrent_flag_changes_converge(void **state)
{
	struct irepl_conf ca = { .replicas = { &IR[B] }, .nreplicas = 1 },
		cb = { .replicas = { &IR[A] }, .nreplicas = 1 };
	struct replc *pa, *pb;
	struct replc_resp ra, rb;
	char guid[33], path[512], da[256] = "", db[256] = "", la[16], lb[16];
	int64_t deadline;
	size_t len;
	char *body = itest_body(5000, 600, &len);

	(void)state;
	assert_int_equal(irepl_make(A, &ca), 0);
	assert_int_equal(irepl_make(B, &cb), 0);
	assert_int_equal(irepl_start(B), 0);
	assert_int_equal(irepl_start(A), 0);
	irepl_warm_up(A, B, 0);
	irepl_warm_up(B, A, 0);
	deliver_ok(A, body, len, guid, path, sizeof(path));
	if (irepl_wait_guid(B, 0, guid, IREPL_POLL_MS, NULL, 0) < 0)
		fail_msg("message %s not on b", guid);
	/* the start-up full syncs are over: a SYNC that finds the flags
	 * differing while the two STOREs are in flight gives the message the
	 * flags of the side with the greater message stamp
	 * (doc/replication-protocol.md §11, step 4), which is another test;
	 * here the two changes meet through the journals only */
	if (irepl_wait_log(A, "sync: replica=b full sync done", 0, IREPL_POLL_MS) < 0 ||
	    irepl_wait_log(B, "sync: replica=a full sync done", 0, IREPL_POLL_MS) < 0)
		fail_msg("no full sync done on a and b");
	/* both local producers change the same message at the same time */
	pa = irepl_unix(A, IR[A].id);
	pb = irepl_unix(B, IR[B].id);
	assert_int_equal(replc_sendf(pa, "s1 STORE %s 0 %s INBOX %s (+\\Seen -\\Flagged)\r\n",
				     IR[A].id, IR[A].h->users[0].name, guid), 0);
	assert_int_equal(replc_sendf(pb, "s1 STORE %s 0 %s INBOX %s (+\\Answered +\\Flagged)\r\n",
				     IR[B].id, IR[B].h->users[0].name, guid), 0);
	assert_int_equal(replc_collect(pa, &ra, "s1"), 0);
	assert_int_equal(replc_collect(pb, &rb, "s1"), 0);
	if (!replc_tagged_is(&ra, "OK", NULL) || !replc_tagged_is(&rb, "OK", NULL))
		fail_msg("STORE replies: a \"%s\", b \"%s\"", ra.tagged, rb.tagged);
	replc_free(&pa);
	replc_free(&pb);
	/* settle: both digests equal (bounded poll) */
	deadline = harness_mono_ms() + IREPL_POLL_MS;
	for (;;) {
		if (sync_digest(A, da, sizeof(da)) == 0 &&
		    sync_digest(B, db, sizeof(db)) == 0 && strcmp(da, db) == 0 &&
		    irepl_journal_size(A, "b") == 0 && irepl_journal_size(B, "a") == 0)
			break;
		if (harness_mono_ms() > deadline)
			fail_msg("digests still differ: a \"%s\", b \"%s\"", da, db);
		harness_sleep_ms(100);
	}
	info_letters(A, guid, la, sizeof(la));
	info_letters(B, guid, lb, sizeof(lb));
	assert_string_equal(la, lb);
	/* \Seen (only a) and \Answered (only b) survive whatever the order */
	if (strchr(la, 'S') == NULL || strchr(la, 'R') == NULL)
		fail_msg("info letters \"%s\" lack S or R", la);
	assert_string_equal(strstr(da, "MESSAGES "), strstr(db, "MESSAGES "));
	assert_true(strncmp(da, "MESSAGES 3 ", 11) == 0);
	free(body);
	irepl_pass();
}

/* <Maildir of u1 on instance i>/.<mbox>[/<sub>] */
static void
folder_path(unsigned i, const char *mbox, const char *sub, char *out,
	    size_t size)
{
	snprintf(out, size, "%s/.%s%s%s", IR[i].h->users[0].maildir, mbox,
		 sub != NULL ? "/" : "", sub != NULL ? sub : "");
}

/* Send one event over a local-producer connection and wait for its OK. */
static void
producer_ok(struct replc *c, const char *tag, const void *literal, size_t len,
	    const char *cmd)
{
	struct replc_resp r;

	if (replc_cmd(c, &r, tag, literal, len, "%s", cmd) < 0 ||
	    !replc_tagged_is(&r, "OK", NULL))
		fail_msg("\"%s\" answered \"%s\" (%s)", cmd, r.tagged,
			 r.ndata ? r.data[0] : "no data line");
	replc_resp_clear(&r);
}

/* Files of <folder>/new and <folder>/cur with the bytes data[len]; the
 * last one's path in path. */
static int
folder_find_bytes(unsigned i, const char *mbox, const char *data, size_t len,
		  char *path, size_t size)
{
	static const char *const subs[] = { "new", "cur" };
	char dir[512], file[1024], **names, *got;
	size_t glen;
	int count = 0;

	for (size_t s = 0; s < 2; s++) {
		int n;

		folder_path(i, mbox, subs[s], dir, sizeof(dir));
		if ((n = harness_dir_list(dir, &names)) < 0)
			return -1;
		for (int k = 0; k < n; k++) {
			snprintf(file, sizeof(file), "%s/%s", dir, names[k]);
			if (harness_read_file(file, &got, &glen) < 0)
				continue;   /* renamed meanwhile */
			if (glen == len && memcmp(got, data, len) == 0) {
				count++;
				snprintf(path, size, "%s", file);
			}
			free(got);
		}
		harness_names_free(&names, n);
	}
	return count;
}

/*
 * Whether u1 on instance i has the layout the events lead to: .Archive and
 * .Archive.Sub complete folders, no .Work, .Work.Sub or .Trash, and one
 * copy of msg in .Archive.Sub (its path in path).  NULL if so, else what
 * differs, in why.
 */
static const char *
folders_mismatch(unsigned i, const char *msg, size_t len, char *path,
		 size_t size, char *why, size_t wsize)
{
	static const char *const present[] = { "Archive", "Archive.Sub" };
	static const char *const absent[] = { "Work", "Work.Sub", "Trash" };
	static const char *const parts[] = { NULL, "cur", "new", "tmp" };
	const struct harness_user *u = &IR[i].h->users[0];
	char p[400];
	struct stat st;
	int n;

	for (size_t k = 0; k < 2; k++) {
		for (size_t s = 0; s < 4; s++) {
			folder_path(i, present[k], parts[s], p, sizeof(p));
			if (harness_check_owner_mode(p, u->uid, u->gid, 0700, why,
						     wsize) != 0)
				return why;
			if (lstat(p, &st) < 0 || !S_ISDIR(st.st_mode)) {
				snprintf(why, wsize, "%s: not a directory", p);
				return why;
			}
		}
		folder_path(i, present[k], "maildirfolder", p, sizeof(p));
		if (lstat(p, &st) < 0 || !S_ISREG(st.st_mode) ||
		    st.st_uid != u->uid) {
			snprintf(why, wsize, "%s: missing, not a file or not owned "
				 "by uid %u", p, (unsigned)u->uid);
			return why;
		}
	}
	for (size_t k = 0; k < 3; k++) {
		folder_path(i, absent[k], NULL, p, sizeof(p));
		if (lstat(p, &st) == 0 || errno != ENOENT) {
			snprintf(why, wsize, "%s still exists", p);
			return why;
		}
	}
	n = folder_find_bytes(i, "Archive.Sub", msg, len, path, size);
	if (n != 1) {
		snprintf(why, wsize, "%d copies of the saved message in .Archive.Sub",
			 n);
		return why;
	}
	return NULL;
}

/* CREATE, SAVE into a new inferior, RENAME of the parent, CREATE and
 * DELETE from a's local producer: b ends with a's folders and message. */
static void
test_mailbox_events_reach_the_replica(void **state)
{
	static const char msg[] =
		"From: a@example.org\r\nTo: u1@example.org\r\n"
		"Subject: mailbox events\r\n\r\nkept through a RENAME\r\n";
	const char *user;
	char cmd[512], guid[33], pa[1024], pb[1024], why[512] = "";
	unsigned char rnd[16];
	struct replc *p;
	int64_t deadline;
	const char *bad;

	(void)state;
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		fail_msg("getrandom: %s", strerror(errno));
	for (size_t k = 0; k < sizeof(rnd); k++)
		snprintf(guid + 2 * k, 3, "%02x", rnd[k]);
	irepl_start_pair(A, B, NULL);
	user = IR[A].h->users[0].name;
	p = irepl_unix(A, IR[A].id);
	snprintf(cmd, sizeof(cmd), "CREATE %s %s Work", IR[A].id, user);
	producer_ok(p, "m1", NULL, 0, cmd);
	snprintf(cmd, sizeof(cmd), "CREATE %s %s Work.Sub", IR[A].id, user);
	producer_ok(p, "m2", NULL, 0, cmd);
	snprintf(cmd, sizeof(cmd), "SAVE %s 0 %s Work.Sub %s 0 1718000000 () {%zu}",
		 IR[A].id, user, guid, sizeof(msg) - 1);
	producer_ok(p, "m3", msg, sizeof(msg) - 1, cmd);
	snprintf(cmd, sizeof(cmd), "RENAME %s %s Work Archive", IR[A].id, user);
	producer_ok(p, "m4", NULL, 0, cmd);
	snprintf(cmd, sizeof(cmd), "CREATE %s %s Trash", IR[A].id, user);
	producer_ok(p, "m5", NULL, 0, cmd);
	snprintf(cmd, sizeof(cmd), "DELETE %s %s Trash", IR[A].id, user);
	producer_ok(p, "m6", NULL, 0, cmd);
	replc_free(&p);
	/* every OK came after a's own durable change */
	bad = folders_mismatch(A, msg, sizeof(msg) - 1, pa, sizeof(pa), why,
			       sizeof(why));
	if (bad != NULL)
		fail_msg("a: %s", bad);
	/* b applies the events as they arrive (bounded poll) */
	deadline = harness_mono_ms() + IREPL_POLL_MS;
	while ((bad = folders_mismatch(B, msg, sizeof(msg) - 1, pb, sizeof(pb),
				       why, sizeof(why))) != NULL) {
		if (harness_mono_ms() > deadline)
			fail_msg("b: %s", bad);
		harness_sleep_ms(50);
	}
	irepl_assert_same_file(pa, B, 0, pb);
	if (irepl_wait_journal_empty(A, "b", IREPL_POLL_MS) < 0)
		fail_msg("a's journal for b did not drain");
	/* b acknowledged everything: nothing comes after the layout */
	bad = folders_mismatch(B, msg, sizeof(msg) - 1, pb, sizeof(pb), why,
			       sizeof(why));
	if (bad != NULL)
		fail_msg("b after the journal drained: %s", bad);
	bad = folders_mismatch(A, msg, sizeof(msg) - 1, pa, sizeof(pa), why,
			       sizeof(why));
	if (bad != NULL)
		fail_msg("a after the journal drained: %s", bad);
	irepl_pass();
}

/* Delivery features across a pair: a detail folder and its message reach
 * the replica (the event names the mailbox), and the replica's duplicate
 * window knows the replicated message, so an MTA that fails over to b
 * with a message a already took gets a's GUID, not a second copy. */
static void
test_detail_folder_and_duplicate_window_across_the_pair(void **state)
{
	static const char msg[] =
		"Message-ID: <pair-1@example.net>\r\nSubject: failover\r\n\r\nonce\r\n";
	struct irepl_conf conf = {
		.extra = "lmtp_duplicate_window = 1h\n"
			 "lmtp_save_to_detail_mailbox = yes\n"
			 "lda_mailbox_autocreate = yes",
	};
	struct lmtpc_reply r, dr;
	char guid[33], guid2[33], dir[400], **names;
	struct lmtpc *c;
	int64_t deadline;
	int n = 0;

	(void)state;
	irepl_start_pair(A, B, &conf);
	irepl_deliver(A, 1, msg, sizeof(msg) - 1, &r, guid);
	assert_int_equal(r.code, 250);
	if (irepl_wait_guid(B, 1, guid, IREPL_POLL_MS, NULL, 0) < 0)
		fail_msg("the message did not reach b");
	irepl_deliver(B, 1, msg, sizeof(msg) - 1, &r, guid2);
	assert_int_equal(r.code, 250);
	assert_string_equal(guid, guid2);
	assert_int_equal(irepl_count(B, 1), 1);
	/* user+Lists on a: the folder is made there and on b */
	c = itest_connect(IR[A].h, HARNESS_UNIX);
	itest_envelope(c);
	itest_cmd(c, 250, NULL, "RCPT TO:<%s+Lists@%s>", IR[A].h->users[1].name,
		  IR[A].h->domain);
	assert_int_equal(lmtpc_data(c, ITEST_MINI_BODY, strlen(ITEST_MINI_BODY), &dr,
				    &r, 1), 0);
	assert_int_equal(r.code, 250);
	lmtpc_free(&c);
	snprintf(dir, sizeof(dir), "%s/.Lists/new", IR[B].h->users[1].maildir);
	deadline = harness_mono_ms() + IREPL_POLL_MS;
	while ((n = harness_dir_list(dir, &names)) < 1) {
		if (n == 0)
			harness_names_free(&names, n);
		if (harness_mono_ms() > deadline)
			fail_msg("%s: the detail folder's message did not reach b", dir);
		harness_sleep_ms(50);
	}
	harness_names_free(&names, n);
	irepl_pass();
}

/* replication_quota_exceed = no: a replicated SAVE over the user's quota
 * is refused (NO [OVERQUOTA], the master keeps its event); what was saved
 * is counted in maildirsize. */
static void
test_replica_refuses_saves_over_quota_when_told(void **state)
{
	static const char msg[] = "Subject: q\r\n\r\nquota\r\n";
	struct irepl_conf conf = {
		.extra = "quota_rule = *:messages=1\nreplication_quota_exceed = no",
	};
	const char *user;
	char cmd[512], path[400], *data;
	struct replc_resp r;
	struct replc *p;
	size_t len;

	(void)state;
	irepl_make_start(B, &conf);
	user = IR[B].h->users[0].name;
	p = irepl_unix(B, IR[B].id);
	snprintf(cmd, sizeof(cmd), "SAVE %s 0 %s INBOX %s 0 1718000000 () {%zu}",
		 IR[B].id, user, "0190f3a2c1aa7a3b77e0c1d2e3f40021", sizeof(msg) - 1);
	producer_ok(p, "q1", msg, sizeof(msg) - 1, cmd);
	snprintf(cmd, sizeof(cmd), "SAVE %s 0 %s INBOX %s 0 1718000000 () {%zu}",
		 IR[B].id, user, "0190f3a2c1aa7a3b77e0c1d2e3f40022", sizeof(msg) - 1);
	if (replc_cmd(p, &r, "q2", msg, sizeof(msg) - 1, "%s", cmd) < 0 ||
	    !replc_tagged_is(&r, "NO", "[OVERQUOTA]"))
		fail_msg("SAVE over quota answered \"%s\"", r.tagged);
	replc_resp_clear(&r);
	replc_free(&p);
	assert_int_equal(irepl_count(B, 0), 1);
	snprintf(path, sizeof(path), "%s/maildirsize", IR[B].h->users[0].maildir);
	assert_int_equal(harness_read_file(path, &data, &len), 0);
	assert_non_null(strstr(data, "1C\n"));
	free(data);
	irepl_pass();
}

static void
test_only_the_group_may_connect_over_tls(void **state)
{
	struct irepl_conf ca = { 0 };
	char cert[160], key[160], line[REPLC_LINE_MAX], want[64];
	struct replc *c = NULL;

	(void)state;
	irepl_make_start(A, &ca);
	/* a certificate from another CA */
	if (replc_connect_tls(IR[A].port, irepl_certs.rogue_cert, irepl_certs.rogue_key,
			      irepl_certs.ca, &c) == 0) {
		if (replc_greeting(c, line, sizeof(line), NULL) == 0)
			fail_msg("rogue certificate got a greeting: \"%s\"", line);
		replc_free(&c);
	}
	/* no client certificate */
	if (replc_connect_tls(IR[A].port, NULL, NULL, irepl_certs.ca, &c) == 0) {
		if (replc_greeting(c, line, sizeof(line), NULL) == 0)
			fail_msg("client without certificate got a greeting: \"%s\"", line);
		replc_free(&c);
	}
	/* a member of the group */
	certs_cert_path(&irepl_certs, "b.test", cert, sizeof(cert));
	certs_key_path(&irepl_certs, "b.test", key, sizeof(key));
	if (replc_connect_tls(IR[A].port, cert, key, irepl_certs.ca, &c) < 0)
		fail_msg("TLS with b.test's certificate failed");
	if (replc_greeting(c, line, sizeof(line), NULL) < 0)
		fail_msg("no greeting for b.test: %s \"%s\"", strerror(errno), line);
	snprintf(want, sizeof(want), "* OK STOWD-REPL 1 %s ", IR[A].id);
	if (strncmp(line, want, strlen(want)) != 0)
		fail_msg("greeting \"%s\" does not start with \"%s\"", line, want);
	replc_free(&c);
	assert_true(harness_alive(IR[A].h));
	irepl_pass();
}

static void
test_unix_peer_uid_must_be_listed(void **state)
{
	struct irepl_conf ca = { 0 };
	char line[REPLC_LINE_MAX];
	struct replc *c = NULL;
	const struct harness_user *u;

	(void)state;
	irepl_make_start(A, &ca);
	u = &IR[A].h->users[0];
	/* a UNIX peer whose uid is not in replication_unix_uids */
	if (replc_connect_unix_as(IR[A].sock, u->uid, u->gid, &c) < 0)
		fail_msg("uid %u cannot connect to %s", (unsigned)u->uid, IR[A].sock);
	if (replc_line(c, line, sizeof(line)) < 0)
		fail_msg("uid %u: nothing read: %s", (unsigned)u->uid, strerror(errno));
	if (strncmp(line, "* BYE [AUTHFAILED]", 18) != 0)
		fail_msg("uid %u: expected * BYE [AUTHFAILED], got \"%s\"",
			 (unsigned)u->uid, line);
	assert_int_equal(replc_wait_closed(c, 5000), 0);
	replc_free(&c);
	/* root is listed: greeting */
	c = irepl_unix(A, "test.client");
	replc_free(&c);
	assert_true(harness_alive(IR[A].h));
	irepl_pass();
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			test_sync_ack_message_is_on_replica_when_250_arrives,
			irepl_setup, irepl_teardown),
		cmocka_unit_test_setup_teardown(
			test_replica_down_accept_journals_and_catches_up,
			irepl_setup, irepl_teardown),
		cmocka_unit_test_setup_teardown(
			test_replica_down_tempfail_refuses_and_keeps_no_copy,
			irepl_setup, irepl_teardown),
		cmocka_unit_test_setup_teardown(
			test_save_failing_after_its_event_is_undone_on_the_replica,
			irepl_setup, irepl_teardown),
		cmocka_unit_test_setup_teardown(test_replication_tcp_sockets_have_nodelay,
						irepl_setup, irepl_teardown),
		cmocka_unit_test_setup_teardown(test_ps_names_the_replication_processes,
						irepl_setup, irepl_teardown),
		cmocka_unit_test_setup_teardown(test_chain_a_b_c_reaches_c_without_loops,
						irepl_setup, irepl_teardown),
		cmocka_unit_test_setup_teardown(
			test_file_deleted_on_replica_comes_back_by_sync,
			irepl_setup, irepl_teardown),
		cmocka_unit_test_setup_teardown(
			test_periodic_full_sync_repairs_without_restart,
			irepl_setup, irepl_teardown),
		cmocka_unit_test_setup_teardown(
			test_message_added_by_hand_on_replica_reaches_master_once,
			irepl_setup, irepl_teardown),
		cmocka_unit_test_setup_teardown(
			test_damaged_file_on_replica_is_replaced_by_sync,
			irepl_setup, irepl_teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_flag_changes_converge,
						irepl_setup, irepl_teardown),
		cmocka_unit_test_setup_teardown(test_mailbox_events_reach_the_replica,
						irepl_setup, irepl_teardown),
		cmocka_unit_test_setup_teardown(
			test_detail_folder_and_duplicate_window_across_the_pair,
			irepl_setup, irepl_teardown),
		cmocka_unit_test_setup_teardown(test_replica_refuses_saves_over_quota_when_told,
						irepl_setup, irepl_teardown),
		cmocka_unit_test_setup_teardown(test_only_the_group_may_connect_over_tls,
						irepl_setup, irepl_teardown),
		cmocka_unit_test_setup_teardown(test_unix_peer_uid_must_be_listed,
						irepl_setup, irepl_teardown),
	};

	harness_require_root();
	return cmocka_run_group_tests(tests, irepl_group_setup, irepl_group_teardown);
}
