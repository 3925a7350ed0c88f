/* SPDX-License-Identifier: MIT */
/*
 * tests/integration/test_repl_imap.c - what a user does in IMAP (a real
 * Dovecot on a's Maildirs) or in a mail client working on the files
 * reaches the replica b and stays done: flags, an expunge, a move between
 * folders, a file renamed or removed directly as mutt does, an expunge
 * while b is down, concurrent flag changes on a and b, subscriptions both
 * ways, a subscription and a folder deletion made while stowd on a was
 * down, a message the IMAP server made moved with its GUID, the kernel's
 * watch limit reached (logged once, the full sync still captures); after
 * settling a Dovecot on b shows what the one on a shows.
 *
 * Runs in:  the integration suite, as root, once per delivery mode; each
 *           test starts its own a <-> b pair and Dovecot instances.
 *           Without Dovecot installed the tests are skipped.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/integration/itest.h"
#include "tests/integration/itest_repl.h"
#include "storage/storage.h"
#include "tests/lib/imapc.h"
#include "tests/lib/imapd.h"

enum { A = 0, B = 1 };

#define SETTLE_MS 30000             /* longest wait for a change to arrive */
/* replication_full_sync_interval of the pairs */
#define FULL_SYNC "1h"

static struct imapd *D[2];          /* Dovecot on a's and b's Maildirs */

static void
password_of(const struct harness_user *u, char *buf, size_t size)
{
	snprintf(buf, size, "pw-%.28s", u->name);
}

/* A Dovecot serving the users of instance i. */
static struct imapd *
dovecot_for(unsigned i)
{
	struct harness *h = IR[i].h;
	struct imapd_user users[2];
	struct imapd_opts o = { 0 };
	char pw[2][32], path[256];
	unsigned k;

	for (k = 0; k < 2; k++) {
		password_of(&h->users[k], pw[k], sizeof(pw[k]));
		users[k] = (struct imapd_user){
			.name = h->users[k].name, .password = pw[k],
			.uid = h->users[k].uid, .gid = h->users[k].gid,
			.home = h->users[k].home,
		};
	}
	snprintf(path, sizeof(path), "%s/dovecot-passwd", h->tree);
	if (imapd_passwd_write(path, users, 2) < 0)
		fail_msg("cannot write %s", path);
	o.passwd_path = path;
	D[i] = imapd_start(&o);
	if (D[i] == NULL)
		fail_msg("dovecot for %s did not start", IR[i].name);
	return D[i];
}

static struct imapc *
imap_login(unsigned i)
{
	const struct harness_user *u = &IR[i].h->users[0];
	struct imapc *c = NULL;
	char pw[32];

	password_of(u, pw, sizeof(pw));
	if (imapc_connect(D[i]->addr, 0, &c) < 0 || imapc_login(c, u->name, pw) < 0)
		fail_msg("IMAP login on %s failed", IR[i].name);
	return c;
}

static int
setup(void **state)
{
	if (!imapd_installed()) {
		fprintf(stderr, "# dovecot not installed\n");
		skip();
	}
	D[0] = D[1] = NULL;
	return irepl_setup(state);
}

static int
teardown(void **state)
{
	imapd_free(&D[0]);
	imapd_free(&D[1]);
	return irepl_teardown(state);
}

/* a <-> b, each the other's replica, asynchronous acks not needed. */
static void
start_both(const char *full_sync)
{
	struct irepl_conf ca = { .replicas = { &IR[B] }, .nreplicas = 1,
				 .full_sync = full_sync },
		cb = { .replicas = { &IR[A] }, .nreplicas = 1,
		       .full_sync = full_sync };

	assert_int_equal(irepl_make(A, &ca), 0);
	assert_int_equal(irepl_make(B, &cb), 0);
	assert_int_equal(irepl_start(B), 0);
	assert_int_equal(irepl_start(A), 0);
	irepl_warm_up(A, B, 0);
	irepl_warm_up(B, A, 0);
}

/* The file of user idx's folder ("" = INBOX) on instance i whose name
 * holds guid: its name in name[size] (may be NULL).  The number of such
 * files. */
static int
find_in_user(unsigned i, unsigned idx, const char *folder, const char *guid,
	     char *name, size_t size)
{
	static const char *const subs[] = { "new", "cur" };
	char dir[512];
	struct dirent *de;
	int n = 0;

	for (unsigned k = 0; k < 2; k++) {
		DIR *d;

		snprintf(dir, sizeof(dir), "%s/%s%s%s%s", IR[i].h->users[idx].maildir,
			 folder[0] != '\0' ? "." : "", folder,
			 folder[0] != '\0' ? "/" : "", subs[k]);
		d = opendir(dir);
		if (d == NULL)
			continue;
		while ((de = readdir(d)) != NULL) {
			if (strstr(de->d_name, guid) == NULL)
				continue;
			n++;
			if (name != NULL)
				snprintf(name, size, "%s/%s", subs[k], de->d_name);
		}
		closedir(d);
	}
	return n;
}

/* The same for the first user (u1). */
static int
find_in(unsigned i, const char *folder, const char *guid, char *name,
	size_t size)
{
	return find_in_user(i, 0, folder, guid, name, size);
}

/* The info letters of guid's one file in user idx's folder on i, "-" if
 * not exactly one file. */
static void
letters_of(unsigned i, unsigned idx, const char *folder, const char *guid,
	   char *out, size_t size)
{
	char name[512];
	const char *p;

	if (find_in_user(i, idx, folder, guid, name, sizeof(name)) != 1) {
		snprintf(out, size, "-");
		return;
	}
	p = strstr(name, ":2,");
	snprintf(out, size, "%s", p != NULL ? p + 3 : "");
}

/* Bounded poll until guid's file in user idx's folder on i has the info
 * letters want ("-": until there is no such file).  0 or -1. */
static int
wait_letters_user(unsigned i, unsigned idx, const char *folder, const char *guid,
		  const char *want)
{
	int64_t deadline = harness_mono_ms() + SETTLE_MS;
	char have[64];

	for (;;) {
		letters_of(i, idx, folder, guid, have, sizeof(have));
		if (strcmp(have, want) == 0)
			return 0;
		if (harness_mono_ms() > deadline) {
			fprintf(stderr, "%s %s %s: letters \"%s\", want \"%s\"\n",
				IR[i].name, folder[0] ? folder : "INBOX", guid, have, want);
			return -1;
		}
		harness_sleep_ms(50);
	}
}

/* The same for the first user (u1). */
static int
wait_letters(unsigned i, const char *folder, const char *guid, const char *want)
{
	return wait_letters_user(i, 0, folder, guid, want);
}

/* Deliver a message to u1 on a, wait for it on b, let Dovecot on a give it
 * the next UID (SELECT), so UIDs follow delivery order. */
static void
deliver_and_select(struct imapc *c, unsigned seed, char guid[33])
{
	struct lmtpc_reply r;
	struct imapc_mailbox mb;
	size_t len;
	char *body = itest_body(3000, seed, &len);

	irepl_deliver(A, 0, body, len, &r, guid);
	if (r.code != 250)
		fail_msg("delivery: %d", r.code);
	if (irepl_wait_guid(B, 0, guid, IREPL_POLL_MS, NULL, 0) < 0)
		fail_msg("%s did not reach b", guid);
	assert_int_equal(imapc_select(c, "INBOX", false, &mb), 0);
	free(body);
}

/* FLAGS of UID uid in the selected mailbox, into out. */
static void
imap_flags(struct imapc *c, unsigned uid, char *out, size_t size)
{
	struct imapc_msg *m = NULL;
	char set[16];
	int n;

	snprintf(set, sizeof(set), "%u", uid);
	n = imapc_fetch_flags(c, true, set, &m);
	if (n != 1)
		fail_msg("UID FETCH %u FLAGS: %d", uid, n);
	snprintf(out, size, "%s", m[0].flags);
	free(m);
}

/* Messages of the selected mailbox whose flags hold both f1 and f2. */
static int
count_flagged(struct imapc *c, const char *f1, const char *f2)
{
	struct imapc_msg *m = NULL;
	int n = imapc_fetch_flags(c, false, "1:*", &m), k = 0;

	for (int i = 0; i < n; i++)
		k += strstr(m[i].flags, f1) != NULL && strstr(m[i].flags, f2) != NULL;
	free(m);
	return n < 0 ? -1 : k;
}

static void
test_imap_changes_reach_the_replica(void **state)
{
	char g[6][33], name[512], from[700], to[700];
	struct imapc_mailbox mb;
	struct imapc *c;
	long n;

	(void)state;
	start_both(FULL_SYNC);
	/* the first pass over the users (at start, before any Maildir
	 * exists here) says when it is over and what it set up */
	if (irepl_wait_log(A, "watch: initial watches set: users=", 0, SETTLE_MS) < 0)
		fail_msg("no line for the first pass over the users");
	dovecot_for(A);
	c = imap_login(A);
	assert_int_equal(imapc_select(c, "INBOX", false, &mb), 0);
	for (unsigned k = 0; k < 6; k++)
		deliver_and_select(c, 700 + k, g[k]);
	/* the two warm-ups are UIDs 1 and 2; g[k] has UID k + 3 */
	assert_int_equal(imapc_store(c, true, "3", "+FLAGS", "\\Seen \\Flagged"), 0);
	assert_int_equal(imapc_store(c, true, "4", "+FLAGS", "\\Deleted"), 0);
	assert_int_equal(imapc_expunge(c, "4"), 0);
	assert_int_equal(imapc_create(c, "Archive"), 0);
	assert_int_equal(imapc_move(c, true, "5", "Archive"), 0);
	assert_int_equal(imapc_store(c, true, "8", "+FLAGS", "\\Seen"), 0);
	assert_int_equal(imapc_store(c, true, "8", "-FLAGS", "\\Seen"), 0);
	/* as mutt does: rename for \Answered, unlink for an expunge */
	assert_int_equal(find_in(A, "", g[3], name, sizeof(name)), 1);
	snprintf(from, sizeof(from), "%s/%s", IR[A].h->users[0].maildir, name);
	snprintf(to, sizeof(to), "%s/cur/%s", IR[A].h->users[0].maildir,
		 strrchr(name, '/') + 1);
	*strstr(to, ":2,") = '\0';
	strcat(to, ":2,RS");
	assert_int_equal(rename(from, to), 0);
	assert_int_equal(find_in(A, "", g[4], name, sizeof(name)), 1);
	snprintf(from, sizeof(from), "%s/%s", IR[A].h->users[0].maildir, name);
	assert_int_equal(unlink(from), 0);

	if (wait_letters(B, "", g[0], "FS") < 0 ||
	    wait_letters(B, "", g[1], "-") < 0 ||
	    wait_letters(B, "", g[2], "-") < 0 ||
	    wait_letters(B, "Archive", g[2], "") < 0 ||
	    wait_letters(B, "", g[3], "RS") < 0 ||
	    wait_letters(B, "", g[4], "-") < 0 ||
	    wait_letters(B, "", g[5], "") < 0)
		fail_msg("the IMAP changes did not all reach b");
	/* and nothing came back on a */
	assert_int_equal(find_in(A, "", g[1], NULL, 0), 0);
	assert_int_equal(find_in(A, "", g[2], NULL, 0), 0);
	assert_int_equal(find_in(A, "", g[4], NULL, 0), 0);
	assert_int_equal(find_in(A, "Archive", g[2], NULL, 0), 1);
	imapc_free(&c);
	if (getenv("STOWD_TEST_CKPT") != NULL) {
		/* the writers wrote checkpoints: the user's, 0600 */
		struct stat st;
		char p[600];

		for (unsigned i = 0; i < 2; i++) {
			snprintf(p, sizeof(p), "%s/" STORE_CKPT_FILE, IR[i].h->users[0].maildir);
			if (stat(p, &st) < 0)
				fail_msg("%s: %s", p, strerror(errno));
			assert_int_equal(st.st_uid, IR[i].h->users[0].uid);
			assert_int_equal(st.st_mode & 07777, 0600);
		}
	}

	/* failover: Dovecot on b shows the same */
	dovecot_for(B);
	c = imap_login(B);
	assert_int_equal(imapc_select(c, "INBOX", false, &mb), 0);
	assert_int_equal(mb.exists, 5);   /* two warm-ups, g0, g3, g5 */
	assert_int_equal(imapc_status(c, "Archive", "MESSAGES", &n), 0);
	assert_int_equal(n, 1);
	if (count_flagged(c, "\\Flagged", "\\Seen") != 1 ||
	    count_flagged(c, "\\Answered", "\\Seen") != 1 ||
	    count_flagged(c, "\\Seen", "\\Seen") != 2)
		fail_msg("flags on b differ from a");
	imapc_free(&c);
	irepl_pass();
}

/* An expunge on a while b is down does not come back from b. */
static void
test_expunge_while_replica_down_stays_expunged(void **state)
{
	struct imapc_mailbox mb;
	struct imapc *c;
	char g[2][33];
	int da, db;
	long n;

	(void)state;
	start_both("2s");
	dovecot_for(A);
	c = imap_login(A);
	assert_int_equal(imapc_select(c, "INBOX", false, &mb), 0);
	deliver_and_select(c, 800, g[0]);
	deliver_and_select(c, 801, g[1]);
	irepl_stop(B);
	assert_int_equal(imapc_store(c, true, "3", "+FLAGS", "\\Deleted"), 0);
	assert_int_equal(imapc_expunge(c, "3"), 0);
	assert_int_equal(imapc_status(c, "INBOX", "MESSAGES", &n), 0);
	assert_int_equal(n, 3);
	imapc_free(&c);
	da = irepl_log_count(A, "sync: replica=b full sync done");
	if (irepl_start(B) < 0)
		fail_msg("b did not restart");
	db = irepl_log_count(B, "sync: replica=a full sync done");
	if (wait_letters(B, "", g[0], "-") < 0)
		fail_msg("the expunge did not reach b");
	/* both sides ran a full sync since: still gone on a, g1 still there */
	if (irepl_wait_log(A, "sync: replica=b full sync done", da, SETTLE_MS) < 0 ||
	    irepl_wait_log(B, "sync: replica=a full sync done", db, SETTLE_MS) < 0)
		fail_msg("no full sync after b came back");
	assert_int_equal(find_in(A, "", g[0], NULL, 0), 0);
	assert_int_equal(find_in(B, "", g[0], NULL, 0), 0);
	assert_int_equal(find_in(A, "", g[1], NULL, 0), 1);
	assert_int_equal(find_in(B, "", g[1], NULL, 0), 1);
	irepl_pass();
}

/* Flag changes made through IMAP on a and on b at the same time are
 * merged flag by flag, the same on both. */
static void
test_concurrent_imap_flag_changes_converge(void **state)
{
	struct imapc_mailbox mb;
	struct imapc *ca, *cb;
	char g[33], la[64], lb[64], fa[256];
	int64_t deadline;

	(void)state;
	start_both(FULL_SYNC);
	dovecot_for(A);
	dovecot_for(B);
	ca = imap_login(A);
	assert_int_equal(imapc_select(ca, "INBOX", false, &mb), 0);
	deliver_and_select(ca, 900, g);
	cb = imap_login(B);
	assert_int_equal(imapc_select(cb, "INBOX", false, &mb), 0);
	assert_int_equal(mb.exists, 3);
	assert_int_equal(imapc_store(ca, true, "3", "+FLAGS", "\\Seen"), 0);
	assert_int_equal(imapc_store(cb, false, "1:*", "+FLAGS", "\\Flagged"), 0);
	deadline = harness_mono_ms() + SETTLE_MS;
	for (;;) {
		letters_of(A, 0, "", g, la, sizeof(la));
		letters_of(B, 0, "", g, lb, sizeof(lb));
		if (strcmp(la, lb) == 0 && strcmp(la, "-") != 0 && la[0] != '\0' &&
		    irepl_journal_size(A, "b") == 0 && irepl_journal_size(B, "a") == 0)
			break;
		if (harness_mono_ms() > deadline)
			fail_msg("letters differ: a \"%s\", b \"%s\"", la, lb);
		harness_sleep_ms(50);
	}
	/* merged flag by flag (§7.2): \Seen from a, \Flagged from b */
	if (strcmp(la, "FS") != 0)
		fail_msg("letters \"%s\", want \"FS\"", la);
	/* what Dovecot on a shows (after it noticed stowd's rename) is what
	 * the file on b says */
	assert_int_equal(imapc_ok(ca, "NOOP"), 0);
	imap_flags(ca, 3, fa, sizeof(fa));
	if ((strstr(fa, "\\Seen") != NULL) != (strchr(lb, 'S') != NULL) ||
	    (strstr(fa, "\\Flagged") != NULL) != (strchr(lb, 'F') != NULL))
		fail_msg("IMAP flags on a \"%s\", letters on b \"%s\"", fa, lb);
	imapc_free(&ca);
	imapc_free(&cb);
	irepl_pass();
}

/* Message files in folder ("" = INBOX) of u1 on i; -1 if it is not there. */
static int
count_in(unsigned i, const char *folder)
{
	static const char *const subs[] = { "new", "cur" };
	char dir[512];
	struct dirent *de;
	int n = 0, dirs = 0;

	for (unsigned k = 0; k < 2; k++) {
		DIR *d;

		snprintf(dir, sizeof(dir), "%s/%s%s%s%s", IR[i].h->users[0].maildir,
			 folder[0] != '\0' ? "." : "", folder,
			 folder[0] != '\0' ? "/" : "", subs[k]);
		d = opendir(dir);
		if (d == NULL)
			continue;
		dirs++;
		while ((de = readdir(d)) != NULL)
			n += de->d_name[0] != '.';
		closedir(d);
	}
	return dirs == 2 ? n : -1;
}

/* Bounded poll until count_in(i, folder) == want. */
static int
wait_count(unsigned i, const char *folder, int want)
{
	int64_t deadline = harness_mono_ms() + SETTLE_MS;
	int have;

	while ((have = count_in(i, folder)) != want) {
		if (harness_mono_ms() > deadline) {
			fprintf(stderr, "%s %s: %d messages, want %d\n", IR[i].name,
				folder, have, want);
			return -1;
		}
		harness_sleep_ms(50);
	}
	return 0;
}

#define MSG_W "From: w@example.net\r\nSubject: work\r\n\r\nwork\r\n"

/* A folder renamed with its subfolder and one deleted through IMAP on a:
 * b renames and deletes the same (RENAME with inferiors, DELETE), and
 * nothing comes back on a. */
static void
test_folder_rename_with_subfolders_and_delete(void **state)
{
	struct imapc *c;
	unsigned uid;

	(void)state;
	start_both(FULL_SYNC);
	dovecot_for(A);
	c = imap_login(A);
	assert_int_equal(imapc_create(c, "Work"), 0);
	assert_int_equal(imapc_create(c, "Work.2024"), 0);
	assert_int_equal(imapc_create(c, "Old"), 0);
	assert_int_equal(imapc_append(c, "Work.2024", NULL, MSG_W, strlen(MSG_W), &uid), 0);
	if (wait_count(B, "Work.2024", 1) < 0 || wait_count(B, "Work", 0) < 0 ||
	    wait_count(B, "Old", 0) < 0)
		fail_msg("the folders did not reach b");
	assert_int_equal(imapc_rename(c, "Work", "Archive"), 0);
	assert_int_equal(imapc_delete(c, "Old"), 0);
	if (wait_count(B, "Archive.2024", 1) < 0 || wait_count(B, "Archive", 0) < 0 ||
	    wait_count(B, "Work.2024", -1) < 0 || wait_count(B, "Work", -1) < 0 ||
	    wait_count(B, "Old", -1) < 0)
		fail_msg("the rename and delete did not reach b");
	if (irepl_wait_journal_empty(A, "b", IREPL_POLL_MS) < 0 ||
	    irepl_wait_journal_empty(B, "a", IREPL_POLL_MS) < 0)
		fail_msg("journals did not drain");
	/* nothing came back on a (its resync with b ran after the events) */
	assert_int_equal(count_in(A, "Work"), -1);
	assert_int_equal(count_in(A, "Work.2024"), -1);
	assert_int_equal(count_in(A, "Old"), -1);
	assert_int_equal(count_in(A, "Archive.2024"), 1);
	imapc_free(&c);
	irepl_pass();
}

/* A keyword set through IMAP on a shows in Dovecot on b (its own
 * dovecot-keywords letter), and one removed on b is removed on a. */
static void
test_keywords_both_ways(void **state)
{
	struct imapc_mailbox mb;
	struct imapc *ca, *cb;
	char g[33];

	(void)state;
	start_both(FULL_SYNC);
	dovecot_for(A);
	dovecot_for(B);
	ca = imap_login(A);
	assert_int_equal(imapc_select(ca, "INBOX", false, &mb), 0);
	deliver_and_select(ca, 990, g);
	assert_int_equal(imapc_store(ca, true, "3", "+FLAGS", "$Later"), 0);
	if (wait_letters(B, "", g, "a") < 0)
		fail_msg("the keyword did not reach b");
	cb = imap_login(B);
	assert_int_equal(imapc_select(cb, "INBOX", false, &mb), 0);
	assert_int_equal(count_flagged(cb, "$Later", "$Later"), 1);
	assert_int_equal(imapc_store(cb, false, "1:*", "-FLAGS", "$Later"), 0);
	if (wait_letters(A, "", g, "") < 0)
		fail_msg("the keyword's removal did not reach a");
	assert_int_equal(imapc_ok(ca, "NOOP"), 0);
	assert_int_equal(count_flagged(ca, "$Later", "$Later"), 0);
	imapc_free(&ca);
	imapc_free(&cb);
	irepl_pass();
}

/* Whether Dovecot on i lists name among u1's subscriptions (LSUB, in a
 * session of its own: what a client that logs in now sees); -1 on error. */
static int
subscribed_on(unsigned i, const char *name)
{
	struct imapc_list_item *it = NULL;
	struct imapc *c = imap_login(i);
	int n = imapc_list(c, true, "*", &it), found = 0;

	for (int k = 0; k < n; k++)
		found |= strcmp(it[k].name, name) == 0;
	free(it);
	imapc_free(&c);
	return n < 0 ? -1 : found;
}

/* Bounded poll until subscribed_on(i, name) == want (1 or 0); 0 or -1. */
static int
wait_subscribed(unsigned i, const char *name, int want)
{
	int64_t deadline = harness_mono_ms() + SETTLE_MS;
	int have;

	while ((have = subscribed_on(i, name)) != want) {
		if (harness_mono_ms() > deadline) {
			fprintf(stderr, "%s: \"%s\" subscribed %d, want %d\n",
				IR[i].name, name, have, want);
			return -1;
		}
		harness_sleep_ms(100);
	}
	return 0;
}

/* Lines of i's log where change capture journaled "<op> <name>" for u1. */
static int
captured(unsigned i, const char *op_and_name)
{
	char text[256];

	snprintf(text, sizeof(text), "watch: user=%s %s", IR[i].h->users[0].name,
		 op_and_name);
	return irepl_log_count(i, text);
}

/* Subscriptions made through IMAP on one side are subscriptions in
 * Dovecot on the other, both ways (a name with a space too); an
 * unsubscribe follows; the replica's own write of the file is not
 * captured back.  A flag change made right before a
 * subscription still travels (the capture of the root does not take the
 * place of the mailbox's). */
static void
test_subscriptions_both_ways(void **state)
{
	struct imapc *ca, *cb;
	char g[33];

	(void)state;
	start_both(FULL_SYNC);
	dovecot_for(A);
	dovecot_for(B);
	ca = imap_login(A);
	assert_int_equal(imapc_create(ca, "Lists"), 0);
	assert_int_equal(imapc_create(ca, "Sent Messages"), 0);
	if (wait_count(B, "Lists", 0) < 0 || wait_count(B, "Sent Messages", 0) < 0)
		fail_msg("the folders did not reach b");
	deliver_and_select(ca, 1100, g);
	assert_int_equal(imapc_store(ca, true, "3", "+FLAGS", "\\Flagged"), 0);
	assert_int_equal(imapc_subscribe(ca, "Lists"), 0);
	assert_int_equal(imapc_subscribe(ca, "Sent Messages"), 0);
	if (wait_subscribed(B, "Lists", 1) < 0 ||
	    wait_subscribed(B, "Sent Messages", 1) < 0)
		fail_msg("the subscriptions did not reach b");
	if (wait_letters(B, "", g, "F") < 0)
		fail_msg("the flag change next to them did not reach b");
	assert_int_equal(imapc_unsubscribe(ca, "Lists"), 0);
	if (wait_subscribed(B, "Lists", 0) < 0)
		fail_msg("the unsubscribe did not reach b");
	assert_int_equal(subscribed_on(B, "Sent Messages"), 1);
	/* b to a */
	cb = imap_login(B);
	assert_int_equal(imapc_subscribe(cb, "INBOX"), 0);
	if (wait_subscribed(A, "INBOX", 1) < 0)
		fail_msg("b's subscription did not reach a");
	/* a last change on each side: its capture runs after those of the
	 * replicated writes before it, so these have run when it arrives */
	assert_int_equal(imapc_unsubscribe(ca, "Sent Messages"), 0);
	assert_int_equal(imapc_subscribe(cb, "Lists"), 0);
	if (wait_subscribed(B, "Sent Messages", 0) < 0 ||
	    wait_subscribed(A, "Lists", 1) < 0)
		fail_msg("the last changes did not arrive");
	if (irepl_wait_journal_empty(A, "b", IREPL_POLL_MS) < 0 ||
	    irepl_wait_journal_empty(B, "a", IREPL_POLL_MS) < 0)
		fail_msg("journals did not drain");
	/* each change captured once, where it was made: no echo */
	assert_int_equal(captured(A, "SUBSCRIBE Lists"), 1);
	assert_int_equal(captured(A, "SUBSCRIBE \"Sent Messages\""), 1);
	assert_int_equal(captured(A, "UNSUBSCRIBE Lists"), 1);
	assert_int_equal(captured(A, "SUBSCRIBE INBOX"), 0);
	assert_int_equal(captured(B, "SUBSCRIBE INBOX"), 1);
	assert_int_equal(captured(B, "SUBSCRIBE Lists"), 1);   /* b's own, last */
	assert_int_equal(captured(B, "UNSUBSCRIBE Lists"), 0);
	assert_int_equal(captured(B, "SUBSCRIBE \"Sent Messages\""), 0);
	assert_int_equal(captured(B, "UNSUBSCRIBE \"Sent Messages\""), 0);
	/* both Dovecots list the same */
	for (unsigned i = A; i <= B; i++) {
		assert_int_equal(subscribed_on(i, "INBOX"), 1);
		assert_int_equal(subscribed_on(i, "Lists"), 1);
		assert_int_equal(subscribed_on(i, "Sent Messages"), 0);
	}
	imapc_free(&ca);
	imapc_free(&cb);
	irepl_pass();
}

#define MSG_APP "From: m@example.net\r\nSubject: appended\r\n\r\nmoved later\r\n"
#define MSG_APP_LF "From: m@example.net\nSubject: appended\n\nmoved later\n"   /* as Dovecot keeps it */

/* A message the IMAP server made (an APPEND: its file name holds no
 * GUID) and then moved to another folder keeps its GUID: b gets it in
 * Archive under the GUID it had in INBOX, not as a new message, and the
 * INBOX copy goes; a copy of it into a third folder has that GUID too. */
static void
test_move_of_appended_message_keeps_its_guid(void **state)
{
	struct imapc_mailbox mb;
	struct imapc *c;
	char path[700], g[33];
	const char *p;
	unsigned uid = 0;

	(void)state;
	start_both(FULL_SYNC);
	dovecot_for(A);
	c = imap_login(A);
	assert_int_equal(imapc_create(c, "Archive"), 0);
	if (wait_count(B, "Archive", 0) < 0)
		fail_msg("the folder did not reach b");
	assert_int_equal(imapc_append(c, "INBOX", "\\Seen", MSG_APP, strlen(MSG_APP),
				      &uid), 0);
	assert_true(uid > 0);
	if (irepl_wait_bytes(B, 0, MSG_APP_LF, strlen(MSG_APP_LF), SETTLE_MS, path,
			     sizeof(path)) < 0)
		fail_msg("the appended message did not reach b");
	/* b's file name holds the GUID a gave it */
	p = strstr(strrchr(path, '/'), "G");
	assert_non_null(p);
	snprintf(g, sizeof(g), "%.32s", p + 1);
	assert_int_equal(strlen(g), 32);
	assert_int_equal(imapc_select(c, "INBOX", false, &mb), 0);
	snprintf(path, sizeof(path), "%u", uid);
	assert_int_equal(imapc_move(c, true, path, "Archive"), 0);
	if (wait_letters(B, "Archive", g, "S") < 0 || wait_letters(B, "", g, "-") < 0)
		fail_msg("b does not hold the moved message under its GUID in Archive");
	if (irepl_wait_journal_empty(A, "b", IREPL_POLL_MS) < 0)
		fail_msg("a's journal did not drain");
	assert_int_equal(count_in(B, "Archive"), 1);
	assert_int_equal(irepl_find_bytes(B, 0, MSG_APP_LF, strlen(MSG_APP_LF), NULL, 0), 0);
	/* a COPY (Dovecot hard-links the file) keeps it too */
	assert_int_equal(imapc_create(c, "Copies"), 0);
	assert_int_equal(imapc_select(c, "Archive", false, &mb), 0);
	assert_int_equal(imapc_copy(c, false, "1", "Copies"), 0);
	if (wait_letters(B, "Copies", g, "S") < 0)
		fail_msg("b does not hold the copy under its GUID");
	assert_int_equal(find_in(B, "Archive", g, NULL, 0), 1);
	imapc_free(&c);
	irepl_pass();
}

/* What the user did in Dovecot while stowd on a was down (a subscription,
 * a folder deleted) reaches b once a is back: the full sync at start-up
 * captures a's folders and subscriptions before it compares the
 * mailboxes, so the deleted folder is not made again from b either. */
static void
test_folder_changes_while_down_reach_the_replica(void **state)
{
	struct imapc *ca;

	(void)state;
	start_both(FULL_SYNC);
	dovecot_for(A);
	dovecot_for(B);
	ca = imap_login(A);
	assert_int_equal(imapc_create(ca, "Lists"), 0);
	assert_int_equal(imapc_create(ca, "Old"), 0);
	if (wait_count(B, "Lists", 0) < 0 || wait_count(B, "Old", 0) < 0)
		fail_msg("the folders did not reach b");
	if (irepl_wait_journal_empty(A, "b", IREPL_POLL_MS) < 0)
		fail_msg("a's journal did not drain");
	/* a subscription alone: no mailbox differs, the full sync finds it */
	irepl_stop(A);
	assert_int_equal(imapc_subscribe(ca, "Lists"), 0);
	assert_int_equal(subscribed_on(B, "Lists"), 0);
	if (irepl_start(A) < 0)
		fail_msg("a did not restart");
	if (wait_subscribed(B, "Lists", 1) < 0)
		fail_msg("the subscription made while a was down did not reach b");
	if (irepl_wait_journal_empty(A, "b", IREPL_POLL_MS) < 0)
		fail_msg("a's journal did not drain");
	/* a folder deleted: not made again from b */
	irepl_stop(A);
	assert_int_equal(imapc_delete(ca, "Old"), 0);
	imapc_free(&ca);
	if (irepl_start(A) < 0)
		fail_msg("a did not restart");
	if (wait_count(B, "Old", -1) < 0)
		fail_msg("the folder deleted while a was down is still on b");
	if (irepl_wait_journal_empty(A, "b", IREPL_POLL_MS) < 0)
		fail_msg("a's journal did not drain");
	assert_int_equal(count_in(A, "Old"), -1);
	assert_int_equal(subscribed_on(A, "Lists"), 1);
	assert_int_equal(captured(A, "SUBSCRIBE Lists"), 1);
	irepl_pass();
}

#define LAT_N 150                   /* changes, one per message */
#define LAT_RATE_MS 10              /* one change every 10 ms: 100/s */

static int
cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

/* Which of g[0..n) have reached b's cur/ with the info letters "S": their
 * first-seen time in seen[] (0 = not yet).  Returns how many have. */
static size_t
scan_b(char (*g)[33], size_t n, int64_t *seen)
{
	char dir[512];
	struct dirent *de;
	size_t have = 0;
	DIR *d;

	snprintf(dir, sizeof(dir), "%s/cur", IR[B].h->users[0].maildir);
	d = opendir(dir);
	if (d == NULL)
		return 0;
	while ((de = readdir(d)) != NULL) {
		const char *info = strstr(de->d_name, ":2,");

		if (info == NULL || strcmp(info, ":2,S") != 0)
			continue;
		for (size_t k = 0; k < n; k++) {
			if (seen[k] == 0 && strstr(de->d_name, g[k]) != NULL)
				seen[k] = harness_mono_ms();
		}
	}
	closedir(d);
	for (size_t k = 0; k < n; k++)
		have += seen[k] != 0;
	return have;
}

/*
 * 100 changes a second made directly on a's files (the first new/ -> cur/
 * move with \Seen, as a mail client does) reach b within 2 s each (p99),
 * with replication_full_sync_interval at 1h: inotify found them.  Then
 * both servers go quiet: no more syncs once the changes are in.
 */
static void
test_changes_at_100_per_second_reach_b_within_2s(void **state)
{
	static char g[LAT_N][33], from[LAT_N][700];
	static int64_t changed[LAT_N], seen[LAT_N], lat[LAT_N];
	char name[512], to[800];
	struct lmtpc_reply r;
	int64_t t0, deadline;
	size_t len, k, have = 0;
	char *body = itest_body(2000, 950, &len);
	int syncs_a, syncs_b;

	(void)state;
	start_both(FULL_SYNC);
	for (k = 0; k < LAT_N; k++) {
		irepl_deliver(A, 0, body, len, &r, g[k]);
		if (r.code != 250)
			fail_msg("delivery %zu: %d", k, r.code);
		if (find_in(A, "", g[k], name, sizeof(name)) != 1 ||
		    strncmp(name, "new/", 4) != 0)
			fail_msg("%s not in a's new/", g[k]);
		snprintf(from[k], sizeof(from[k]), "%s/%s", IR[A].h->users[0].maildir, name);
	}
	if (irepl_wait_guid(B, 0, g[LAT_N - 1], IREPL_POLL_MS, NULL, 0) < 0 ||
	    irepl_wait_journal_empty(A, "b", IREPL_POLL_MS) < 0)
		fail_msg("deliveries did not settle on b");
	t0 = harness_mono_ms();
	for (k = 0; k < LAT_N; k++) {
		const char *base = strrchr(from[k], '/') + 1;
		int64_t next = t0 + (int64_t)(k + 1) * LAT_RATE_MS;

		snprintf(to, sizeof(to), "%s/cur/%s:2,S", IR[A].h->users[0].maildir, base);
		if (rename(from[k], to) < 0)
			fail_msg("rename %s: %s", from[k], strerror(errno));
		changed[k] = harness_mono_ms();
		have = scan_b(g, k + 1, seen);
		while (harness_mono_ms() < next)
			harness_sleep_ms(1);
	}
	deadline = harness_mono_ms() + SETTLE_MS;
	while (have < LAT_N && harness_mono_ms() < deadline) {
		harness_sleep_ms(10);
		have = scan_b(g, LAT_N, seen);
	}
	if (have < LAT_N)
		fail_msg("only %zu of %d changes reached b", have, LAT_N);
	for (k = 0; k < LAT_N; k++)
		lat[k] = seen[k] - changed[k];
	qsort(lat, LAT_N, sizeof(lat[0]), cmp_i64);
	fprintf(stderr, "# %d changes at %d/s (%s): latency p50 %lld ms, p99 %lld ms, "
		"max %lld ms\n", LAT_N, 1000 / LAT_RATE_MS, getenv("STOWD_DELIVERY_MODE"),
		(long long)lat[LAT_N / 2], (long long)lat[LAT_N * 99 / 100],
		(long long)lat[LAT_N - 1]);
	if (lat[LAT_N * 99 / 100] > 2000)
		fail_msg("p99 latency %lld ms > 2000 ms", (long long)lat[LAT_N * 99 / 100]);
	/* quiet: once the journals are drained, no sync runs any more (a
	 * bounded observation: there is no signal for "nothing happens") */
	if (irepl_wait_journal_empty(A, "b", IREPL_POLL_MS) < 0 ||
	    irepl_wait_journal_empty(B, "a", IREPL_POLL_MS) < 0)
		fail_msg("journals did not drain");
	harness_sleep_ms(1000);
	syncs_a = irepl_log_count(A, "sync done");
	syncs_b = irepl_log_count(B, "sync done");
	harness_sleep_ms(1500);
	assert_int_equal(irepl_log_count(A, "sync done"), syncs_a);
	assert_int_equal(irepl_log_count(B, "sync done"), syncs_b);
	free(body);
	irepl_pass();
}

/* ---- the kernel's watch limit ------------------------------------------ */

#define WATCHES_SYSCTL "/proc/sys/fs/inotify/max_user_watches"
#define LIMIT_LINE "inotify watch limit reached"

static char watches_old[32];    /* the limit before the test, or "" */

/* meson's timeout (SIGTERM) or a ^C: the machine's limit back first, or
 * every inotify user of the machine (Dovecot, stowd, the next tests)
 * would stay at 3 watches.  open/write/close only: async-signal-safe. */
static void
watches_restore_on_signal(int sig)
{
	int fd = open(WATCHES_SYSCTL, O_WRONLY | O_CLOEXEC);

	if (fd >= 0) {
		if (write(fd, watches_old, strlen(watches_old)) < 0) {
			/* nothing more to do in a signal handler */
		}
		close(fd);
	}
	signal(sig, SIG_DFL);
	raise(sig);
}

/* Set the limit: true, or false when this machine does not let even
 * root change it (a container with a read-only /proc/sys); any other
 * failure fails the test. */
static bool
watches_limit(const char *v)
{
	int fd = open(WATCHES_SYSCTL, O_WRONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? write(fd, v, strlen(v)) : -1;
	int err = errno;

	if (fd >= 0)
		close(fd);
	if (n == (ssize_t)strlen(v))
		return true;
	errno = err;
	if (err == EROFS || err == EACCES || err == EPERM)
		return false;
	fail_msg("cannot set %s to %s: %s", WATCHES_SYSCTL, v, strerror(err));
	return false;
}

static int
teardown_watches(void **state)
{
	signal(SIGTERM, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	if (watches_old[0] != '\0') {
		FILE *f = fopen(WATCHES_SYSCTL, "w");

		if (f != NULL) {
			fputs(watches_old, f);
			fclose(f);
		}
		watches_old[0] = '\0';
	}
	return teardown(state);
}

/* Put a message on a for user idx, wait for it on b; its GUID in g and
 * its file on a (new/...) in name[size]. */
static void
deliver_to(unsigned idx, unsigned seed, char g[33], char *name, size_t size)
{
	struct lmtpc_reply r;
	size_t len;
	char *body = itest_body(2000, seed, &len);

	irepl_deliver(A, idx, body, len, &r, g);
	if (r.code != 250)
		fail_msg("delivery: %d", r.code);
	if (irepl_wait_guid(B, idx, g, IREPL_POLL_MS, NULL, 0) < 0)
		fail_msg("%s did not reach b", g);
	assert_int_equal(find_in_user(A, idx, "", g, name, size), 1);
	free(body);
}

/* A mail client's flag change: new/NAME renamed to cur/NAME:2,LETTERS. */
static void
client_flags(unsigned idx, const char *name, const char *letters)
{
	char from[700], to[700];

	snprintf(from, sizeof(from), "%s/%s", IR[A].h->users[idx].maildir, name);
	snprintf(to, sizeof(to), "%s/cur/%s:2,%s", IR[A].h->users[idx].maildir,
		 strrchr(name, '/') + 1, letters);
	if (rename(from, to) < 0)
		fail_msg("rename %s: %s", from, strerror(errno));
}

/*
 * fs.inotify.max_user_watches reached: a's repl-hook says so once, and the
 * Maildirs it could not watch are still reconciled by the periodic full
 * sync (2 s here), so a flag change made there reaches b.  The limit (a
 * per-uid count, 3: the Maildir root, new/ and cur/ of the first user
 * seen) is the kernel's; b does not watch (capture off).
 */
static void
test_watch_limit_logged_once_full_sync_still_captures(void **state)
{
	struct irepl_conf c = { .full_sync = "2s",
				.extra_to = "replication_capture_delay = 0\n" };
	char g[3][33], name[3][512];
	FILE *f;

	(void)state;
	f = fopen(WATCHES_SYSCTL, "r");
	if (f == NULL || fgets(watches_old, sizeof(watches_old), f) == NULL)
		fail_msg("cannot read %s", WATCHES_SYSCTL);
	fclose(f);
	signal(SIGTERM, watches_restore_on_signal);
	signal(SIGINT, watches_restore_on_signal);
	if (!watches_limit("3")) {
		/* said loudly: this case then runs nowhere on this machine */
		fprintf(stderr, "# %s cannot be written here (%s): the kernel's "
			"watch limit cannot be reached, case not run\n",
			WATCHES_SYSCTL, strerror(errno));
		watches_old[0] = '\0';
		irepl_pass();
		return;
	}
	/* user 0's warm-up makes its Maildir: watched, all 3 used */
	irepl_start_pair(A, B, &c);
	if (irepl_wait_log(A, "watch: initial watches set: users=", 0, SETTLE_MS) < 0)
		fail_msg("no line for the first pass over the users");
	deliver_to(0, 910, g[0], name[0], sizeof(name[0]));
	deliver_to(1, 911, g[1], name[1], sizeof(name[1]));
	/* user 1's first event asks for its watches: refused by the kernel */
	if (irepl_wait_log(A, LIMIT_LINE, 0, SETTLE_MS) < 0)
		fail_msg("no line for the watch limit");
	client_flags(0, name[0], "S");
	client_flags(1, name[1], "F");
	/* another event of user 1: asked again, refused again, not logged */
	deliver_to(1, 912, g[2], name[2], sizeof(name[2]));
	if (wait_letters_user(B, 0, "", g[0], "S") < 0 ||
	    wait_letters_user(B, 1, "", g[1], "F") < 0)
		fail_msg("the flag changes did not reach b");
	assert_int_equal(irepl_log_count(A, LIMIT_LINE), 1);
	irepl_pass();
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_imap_changes_reach_the_replica,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_expunge_while_replica_down_stays_expunged, setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_concurrent_imap_flag_changes_converge, setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_changes_at_100_per_second_reach_b_within_2s, setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_folder_rename_with_subfolders_and_delete, setup, teardown),
		cmocka_unit_test_setup_teardown(test_keywords_both_ways, setup, teardown),
		cmocka_unit_test_setup_teardown(test_subscriptions_both_ways, setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_folder_changes_while_down_reach_the_replica, setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_move_of_appended_message_keeps_its_guid, setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_watch_limit_logged_once_full_sync_still_captures, setup,
			teardown_watches),
	};

	harness_require_root();
	if (getenv("STOWD_TEST_FILTER") != NULL)
		cmocka_set_test_filter(getenv("STOWD_TEST_FILTER"));
	if (getenv("STOWD_TEST_SKIP") != NULL)
		cmocka_set_skip_filter(getenv("STOWD_TEST_SKIP"));
	return cmocka_run_group_tests(tests, irepl_group_setup, irepl_group_teardown);
}
