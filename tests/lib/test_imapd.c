/* SPDX-License-Identifier: MIT */
/*
 * tests/lib/test_imapd.c - self-test of tests/lib/imapd.c and imapc.c, and
 * a record of what Dovecot 2.3 does on disk in a Maildir it did not write:
 * which IMAP command renames, links or unlinks which file, and the files
 * it adds (dovecot-keywords, subscriptions, maildirsize, .Folder/).
 *
 * Runs in:  the integration suite, as root (exit 77 = skipped otherwise).
 * Layout:   one harness tree (test users, homes) and one private Dovecot for
 *           the whole program; every test works on its own user, so the
 *           tests do not depend on each other.  The quota test starts a
 *           second Dovecot with the quota plugin.
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

#include "tests/lib/harness.h"
#include "tests/lib/imapc.h"
#include "tests/lib/imapd.h"

#define NUSERS 8
#define MSG_A "From: a@example.net\nSubject: a\n\nbody a\n"
#define MSG_B "From: b@example.net\nSubject: b\n\nbody b\n"
#define NAME_A "1700000000.M1P1.test"
#define NAME_B "1700000001.M2P1.test"

static struct harness *H;
static struct imapd *D;
static struct imapd *Q;              /* the quota test's own Dovecot */
static char passwd_path[128];

static void
password_of(const struct harness_user *u, char *buf, size_t size)
{
	snprintf(buf, size, "pw-%.28s", u->name);
}

/* The Dovecot passwd-file for the harness users; u6 has a quota rule. */
static int
write_passwd(void)
{
	struct imapd_user users[NUSERS];
	char pw[NUSERS][32];
	unsigned i;

	for (i = 0; i < NUSERS; i++) {
		const struct harness_user *u = &H->users[i];

		password_of(u, pw[i], sizeof(pw[i]));
		users[i] = (struct imapd_user){
			.name = u->name, .password = pw[i], .uid = u->uid,
			.gid = u->gid, .home = u->home,
			.extra = i == 5 ? "userdb_quota_rule=*:storage=1M "
					  "userdb_quota_rule2=*:messages=100" : NULL,
		};
	}
	snprintf(passwd_path, sizeof(passwd_path), "%s/dovecot-passwd", H->tree);
	return imapd_passwd_write(passwd_path, users, NUSERS);
}

static int
group_setup(void **state)
{
	struct harness_opts ho = { .nusers = NUSERS };
	struct imapd_opts o = { 0 };
	int64_t t0;

	(void)state;
	H = harness_new(&ho);
	if (H == NULL || write_passwd() < 0)
		return -1;
	o.passwd_path = passwd_path;
	t0 = harness_mono_ms();
	D = imapd_start(&o);
	if (D == NULL)
		return -1;
	fprintf(stderr, "# dovecot ready on %s in %lld ms\n", D->addr,
		(long long)(harness_mono_ms() - t0));
	return 0;
}

static int
group_teardown(void **state)
{
	(void)state;
	imapd_free(&Q);
	imapd_free(&D);
	harness_free(&H);
	return 0;
}

/* ---- Maildir by hand -------------------------------------------------- */

static void
mkdir_as(const struct harness_user *u, const char *path)
{
	if (mkdir(path, 0700) < 0 && errno != EEXIST)
		fail_msg("mkdir %s: %s", path, strerror(errno));
	assert_int_equal(chown(path, u->uid, u->gid), 0);
}

/* <maildir>{,/tmp,/new,/cur} owned by the user, mode 0700. */
static void
make_maildir(const struct harness_user *u)
{
	static const char *const subs[] = { "tmp", "new", "cur" };
	char path[256];
	size_t i;

	mkdir_as(u, u->maildir);
	for (i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s/%s", u->maildir, subs[i]);
		mkdir_as(u, path);
	}
}

/* A message file <maildir>/<sub>/<name> as stowd would leave it. */
static void
put_msg(const struct harness_user *u, const char *sub, const char *name,
	const char *body)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/%s/%s", u->maildir, sub, name);
	assert_int_equal(harness_write_file(path, body, strlen(body), 0600), 0);
	assert_int_equal(chown(path, u->uid, u->gid), 0);
}

static bool
exists(const struct harness_user *u, const char *rel)
{
	char path[512];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", u->maildir, rel);
	return lstat(path, &st) == 0;
}

static int
count_dir(const struct harness_user *u, const char *sub)
{
	char path[256], **names = NULL;
	int n;

	snprintf(path, sizeof(path), "%s/%s", u->maildir, sub);
	n = harness_dir_list(path, &names);
	harness_names_free(&names, n);
	return n;
}

/*
 * Where the message with base name base is in folder ("" = INBOX, else
 * ".Name/"): "new/<base>" or "cur/<base>:2,<flags>", into rel (relative
 * to the Maildir).  False if in neither.
 */
static bool
locate(const struct harness_user *u, const char *folder, const char *base,
       char *rel, size_t size)
{
	char dir[256], **names = NULL;
	size_t bl = strlen(base);
	bool found = false;
	int i, n;

	snprintf(rel, size, "%snew/%s", folder, base);
	if (exists(u, rel))
		return true;
	snprintf(dir, sizeof(dir), "%s/%scur", u->maildir, folder);
	n = harness_dir_list(dir, &names);
	for (i = 0; i < n && !found; i++) {
		if (strncmp(names[i], base, bl) == 0 && names[i][bl] == ':') {
			snprintf(rel, size, "%scur/%s", folder, names[i]);
			found = true;
		}
	}
	harness_names_free(&names, n);
	return found;
}

/* A message Dovecot has not flagged yet: still in new/ as written, or
 * moved to cur/ with an empty info part (see test 1). */
static void
assert_unflagged(const struct harness_user *u, const char *base)
{
	char rel[256], want[256];

	assert_true(locate(u, "", base, rel, sizeof(rel)));
	snprintf(want, sizeof(want), "cur/%s:2,", base);
	if (strcmp(rel, want) != 0) {
		snprintf(want, sizeof(want), "new/%s", base);
		assert_string_equal(rel, want);
	}
}

/* A user with NAME_A and NAME_B in new/, logged in, INBOX selected. */
static struct imapc *
open_inbox(unsigned idx, struct imapc_mailbox *mb)
{
	const struct harness_user *u = &H->users[idx];
	struct imapc *c = NULL;
	char pw[32];

	make_maildir(u);
	put_msg(u, "new", NAME_A, MSG_A);
	put_msg(u, "new", NAME_B, MSG_B);
	password_of(u, pw, sizeof(pw));
	assert_int_equal(imapc_connect(D->addr, 0, &c), 0);
	assert_int_equal(imapc_login(c, u->name, pw), 0);
	assert_int_equal(imapc_select(c, "INBOX", false, mb), 0);
	return c;
}

/* ---- tests ------------------------------------------------------------ */

static void
test_select_counts_hand_written_messages(void **state)
{
	struct imapc_mailbox mb;
	struct imapc_msg *m = NULL;
	struct imapc *c = open_inbox(0, &mb);
	int n;

	(void)state;
	assert_true(strstr(imapc_greeting(c), "OK") == imapc_greeting(c));
	assert_int_equal(mb.exists, 2);
	assert_int_equal(mb.recent, 2);
	assert_true(mb.uidvalidity > 0);
	assert_int_equal(mb.uidnext, 3);
	n = imapc_fetch_flags(c, false, "1:*", &m);
	assert_int_equal(n, 2);
	assert_int_equal(m[0].seq, 1);
	assert_int_equal(m[0].uid, 1);
	assert_int_equal(m[1].uid, 2);
	assert_string_equal(m[0].flags, "\\Recent");
	free(m);
	/*
	 * A SELECT (read-write: it drops \Recent) may move new/NAME to
	 * cur/NAME:2, when its sync holds the dovecot-uidlist lock; an
	 * unlocked sync leaves new/ as it is.  Both happen.
	 */
	assert_int_equal(count_dir(&H->users[0], "new") +
			 count_dir(&H->users[0], "cur"), 2);
	assert_unflagged(&H->users[0], NAME_A);
	assert_unflagged(&H->users[0], NAME_B);
	assert_true(exists(&H->users[0], "dovecot-uidlist"));
	assert_true(exists(&H->users[0], "dovecot.index.log"));
	assert_int_equal(imapc_logout(c), 0);
	imapc_free(&c);
}

static void
test_flags_move_file_to_cur_with_info(void **state)
{
	const struct harness_user *u = &H->users[1];
	struct imapc_mailbox mb;
	struct imapc_msg *m = NULL;
	struct imapc *c = open_inbox(1, &mb);

	(void)state;
	assert_int_equal(imapc_store(c, false, "1", "+FLAGS", "\\Seen \\Flagged"), 0);
	/* new/NAME -> cur/NAME:2,FS (flags sorted by ASCII) */
	assert_false(exists(u, "new/" NAME_A));
	assert_true(exists(u, "cur/" NAME_A ":2,FS"));
	assert_unflagged(u, NAME_B);
	/* the UID store changes the other one the same way */
	assert_int_equal(imapc_store(c, true, "2", "FLAGS", "\\Answered"), 0);
	assert_true(exists(u, "cur/" NAME_B ":2,R"));
	assert_int_equal(imapc_store(c, false, "1", "-FLAGS", "\\Flagged"), 0);
	assert_true(exists(u, "cur/" NAME_A ":2,S"));
	assert_int_equal(imapc_fetch_flags(c, false, "1", &m), 1);
	assert_string_equal(m[0].flags, "\\Seen \\Recent");
	free(m);
	imapc_free(&c);
}

static void
test_expunge_unlinks_the_file(void **state)
{
	const struct harness_user *u = &H->users[2];
	struct imapc_mailbox mb;
	struct imapc *c = open_inbox(2, &mb);
	long n = 0;

	(void)state;
	assert_int_equal(imapc_store(c, false, "1", "+FLAGS.SILENT", "\\Deleted"), 0);
	assert_true(exists(u, "cur/" NAME_A ":2,T"));
	assert_int_equal(imapc_expunge(c, NULL), 0);
	assert_false(exists(u, "cur/" NAME_A ":2,T"));
	assert_int_equal(count_dir(u, "cur") + count_dir(u, "new"), 1);
	/* UID EXPUNGE of the other one */
	assert_int_equal(imapc_store(c, true, "2", "+FLAGS", "\\Deleted"), 0);
	assert_int_equal(imapc_expunge(c, "2"), 0);
	assert_int_equal(count_dir(u, "cur") + count_dir(u, "new"), 0);
	assert_int_equal(imapc_status(c, "INBOX", "MESSAGES", &n), 0);
	assert_int_equal(n, 0);
	imapc_free(&c);
}

static void
test_create_move_subscribe_folder(void **state)
{
	const struct harness_user *u = &H->users[3];
	struct imapc_mailbox mb;
	struct imapc_list_item *it = NULL;
	struct imapc *c = open_inbox(3, &mb);
	char path[256], src[256], *text = NULL;
	long n = -1;
	int i, cnt;

	(void)state;
	assert_int_equal(imapc_create(c, "Archive"), 0);
	/* Maildir++: .Archive with cur/new/tmp and an empty maildirfolder */
	assert_true(exists(u, ".Archive/cur"));
	assert_true(exists(u, ".Archive/new"));
	assert_true(exists(u, ".Archive/tmp"));
	assert_true(exists(u, ".Archive/maildirfolder"));
	/*
	 * MOVE hard-links the file to .Archive/tmp/ under a new name, renames
	 * that to the source's base name, then unlinks the source: without
	 * flags into new/ (no info part), whatever subdir the source was in.
	 */
	assert_true(locate(u, "", NAME_B, src, sizeof(src)));
	assert_int_equal(imapc_move(c, false, "2", "Archive"), 0);
	assert_false(exists(u, src));
	assert_true(exists(u, ".Archive/new/" NAME_B));
	assert_int_equal(count_dir(u, ".Archive/tmp"), 0);
	/* COPY keeps the source; a flagged copy goes to cur/ with its flags */
	assert_int_equal(imapc_store(c, false, "1", "+FLAGS", "\\Seen"), 0);
	assert_int_equal(imapc_copy(c, false, "1", "Archive"), 0);
	assert_true(exists(u, "cur/" NAME_A ":2,S"));
	assert_true(exists(u, ".Archive/cur/" NAME_A ":2,S"));
	assert_int_equal(imapc_status(c, "Archive", "MESSAGES", &n), 0);
	assert_int_equal(n, 2);
	cnt = imapc_list(c, false, "*", &it);
	assert_int_equal(cnt, 2);
	for (i = 0; i < cnt && strcmp(it[i].name, "Archive") != 0; i++)
		;
	assert_true(i < cnt);
	assert_int_equal(it[i].sep, '.');
	free(it);
	/* subscriptions: "V\t2\n\n" then one name per line */
	assert_int_equal(imapc_subscribe(c, "Archive"), 0);
	snprintf(path, sizeof(path), "%s/subscriptions", u->maildir);
	assert_int_equal(harness_read_file(path, &text, NULL), 0);
	assert_string_equal(text, "V\t2\n\nArchive\n");
	free(text);
	assert_int_equal(imapc_rename(c, "Archive", "Old"), 0);
	assert_false(exists(u, ".Archive"));
	assert_true(exists(u, ".Old/maildirfolder"));
	assert_int_equal(imapc_delete(c, "Old"), 0);
	assert_false(exists(u, ".Old"));
	imapc_free(&c);
}

static void
test_keyword_letter_and_keywords_file(void **state)
{
	const struct harness_user *u = &H->users[4];
	struct imapc_mailbox mb;
	struct imapc *c = open_inbox(4, &mb);
	char path[256], *text = NULL;

	(void)state;
	assert_int_equal(imapc_store(c, false, "1", "+FLAGS", "$Important"), 0);
	assert_true(exists(u, "cur/" NAME_A ":2,a"));
	assert_int_equal(imapc_store(c, false, "2", "+FLAGS", "\\Seen $Later $Important"), 0);
	assert_true(exists(u, "cur/" NAME_B ":2,Sab"));
	snprintf(path, sizeof(path), "%s/dovecot-keywords", u->maildir);
	assert_int_equal(harness_read_file(path, &text, NULL), 0);
	assert_string_equal(text, "0 $Important\n1 $Later\n");
	free(text);
	imapc_free(&c);
}

static void
test_external_unlink_is_seen_and_doveadm_runs(void **state)
{
	const struct harness_user *u = &H->users[6];
	struct imapc_mailbox mb;
	struct imapc *c = open_inbox(6, &mb);
	char path[600], rel[256], *out = NULL;
	long n = -1;

	(void)state;
	assert_int_equal(imapc_logout(c), 0);
	imapc_free(&c);
	assert_true(locate(u, "", NAME_A, rel, sizeof(rel)));
	snprintf(path, sizeof(path), "%s/%s", u->maildir, rel);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(imapd_doveadm(D, &out, "force-resync", "-u", u->name,
				       "INBOX", (char *)NULL), 0);
	free(out);
	assert_int_equal(imapd_doveadm(D, &out, "mailbox", "status", "-u", u->name,
				       "messages", "INBOX", (char *)NULL), 0);
	assert_non_null(strstr(out, "messages=1\n"));
	free(out);
	assert_int_equal(imapc_connect(D->addr, 0, &c), 0);
	password_of(u, path, sizeof(path));
	assert_int_equal(imapc_login(c, u->name, path), 0);
	assert_int_equal(imapc_status(c, "INBOX", "MESSAGES", &n), 0);
	assert_int_equal(n, 1);
	imapc_free(&c);
}

static void
test_quota_maildirsize_and_append(void **state)
{
	const struct harness_user *u = &H->users[5];
	struct imapd_opts o = { .passwd_path = passwd_path, .flags = IMAPD_QUOTA };
	struct imapc *c = NULL;
	struct imapc_quota qr;
	char pw[32], path[256], *text = NULL;
	unsigned uid = 0;

	(void)state;
	make_maildir(u);
	put_msg(u, "new", NAME_A, MSG_A);
	Q = imapd_start(&o);
	assert_non_null(Q);
	password_of(u, pw, sizeof(pw));
	if (imapc_connect(Q->addr, 0, &c) < 0 || imapc_login(c, u->name, pw) < 0)
		fail();
	assert_int_equal(imapc_append(c, "INBOX", "\\Seen", MSG_B, strlen(MSG_B), &uid), 0);
	/* the new file got its UID before the unsynced hand-written one */
	assert_true(uid == 1 || uid == 2);
	assert_int_equal(imapc_getquotaroot(c, "INBOX", &qr), 0);
	assert_string_equal(qr.root, "User quota");
	assert_int_equal(qr.storage_limit, 1024);
	assert_int_equal(qr.message_limit, 100);
	assert_int_equal(qr.message_used, 2);
	assert_int_equal(qr.storage_used, 1);
	snprintf(path, sizeof(path), "%s/maildirsize", u->maildir);
	assert_int_equal(harness_read_file(path, &text, NULL), 0);
	assert_true(strncmp(text, "1048576S,100C\n", 14) == 0);
	fprintf(stderr, "# maildirsize:\n%s", text);
	free(text);
	imapc_free(&c);
	assert_int_equal(imapd_stop(Q, 0), 0);
	imapd_free(&Q);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_select_counts_hand_written_messages),
		cmocka_unit_test(test_flags_move_file_to_cur_with_info),
		cmocka_unit_test(test_expunge_unlinks_the_file),
		cmocka_unit_test(test_create_move_subscribe_folder),
		cmocka_unit_test(test_keyword_letter_and_keywords_file),
		cmocka_unit_test(test_external_unlink_is_seen_and_doveadm_runs),
		cmocka_unit_test(test_quota_maildirsize_and_append),
	};

	if (geteuid() != 0) {
		fprintf(stderr, "SKIP: test_imapd needs root\n");
		return 77;
	}
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
