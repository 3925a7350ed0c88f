/* SPDX-License-Identifier: MIT */
/*
 * tests/integration/test_detail.c - user+folder@domain into the Maildir++
 * folder "folder" (lmtp_save_to_detail_mailbox): an existing folder, a
 * missing one (INBOX, or created with lda_mailbox_autocreate), a UTF-8
 * detail stored in modified UTF-7, an unusable detail (INBOX), and the
 * result seen by a real Dovecot IMAP (LIST, SELECT) when dovecot-imapd is
 * installed.
 *
 * Runs in:  the integration suite, as root, one stowd for the program.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/integration/itest.h"
#include "tests/lib/imapc.h"
#include "tests/lib/imapd.h"

#define NUSERS 3

static struct harness *H;

static const char *const conf_no_create[] = {
	"lmtp_save_to_detail_mailbox = yes",
	"lda_mailbox_autocreate = no",
	NULL,
};

static int
group_setup(void **state)
{
	struct harness_opts o = { .nusers = NUSERS, .conf = conf_no_create };

	(void)state;
	return itest_group_start(&H, &o);
}

/* Deliver the mini body to local+detail@domain of user idx; the
 * recipient's reply code after the data. */
static int
deliver_detail_code(unsigned idx, const char *detail)
{
	struct lmtpc *c = itest_connect(H, HARNESS_UNIX);
	struct lmtpc_reply dr, rr;
	const char *body = ITEST_MINI_BODY;

	itest_cmd(c, 250, NULL, "LHLO client.example");
	itest_cmd(c, 250, NULL, "MAIL FROM:<%s> SMTPUTF8", ITEST_SENDER);
	itest_cmd(c, 250, NULL, "RCPT TO:<%s+%s@%s>", H->users[idx].name, detail,
		  H->domain);
	assert_int_equal(lmtpc_data(c, body, strlen(body), &dr, &rr, 1), 0);
	assert_int_equal(dr.code, 354);
	lmtpc_free(&c);
	return rr.code;
}

/* Deliver the mini body to local+detail@domain of user idx; 250 asserted. */
static void
deliver_detail(unsigned idx, const char *detail)
{
	int code = deliver_detail_code(idx, detail);

	if (code != 250)
		fail_msg("detail %s: %d", detail, code);
}

/* Files in <maildir>/<folder>/new ("" = INBOX). */
static int
count_in(unsigned idx, const char *folder)
{
	char path[400], **names;
	int n;

	snprintf(path, sizeof(path), "%s%s%s/new", H->users[idx].maildir,
		 folder[0] ? "/" : "", folder);
	n = harness_dir_list(path, &names);
	if (n > 0)
		harness_names_free(&names, n);
	return n;
}

static void
make_folder(unsigned idx, const char *folder)
{
	static const char *const subs[] = { "", "", "/tmp", "/new", "/cur" };
	const struct harness_user *u = &H->users[idx];
	char path[400];
	size_t i;

	for (i = 0; i < 5; i++) {
		if (i == 0)
			snprintf(path, sizeof(path), "%s", u->maildir);
		else
			snprintf(path, sizeof(path), "%s/%s%s", u->maildir, folder, subs[i]);
		if (mkdir(path, 0700) < 0 && errno != EEXIST)
			fail_msg("mkdir %s: %s", path, strerror(errno));
		assert_int_equal(chown(path, u->uid, u->gid), 0);
	}
}

static void
test_existing_folder_gets_the_message(void **state)
{
	(void)state;
	make_folder(0, ".Lists");
	deliver_detail(0, "Lists");
	assert_int_equal(count_in(0, ".Lists"), 1);
	assert_int_equal(count_in(0, ""), 0);
	/* the delivery line names the folder */
	assert_true(harness_log_contains(H, " user=u1 mailbox=Lists guid="));
	itest_pass(H);
}

static void
test_missing_folder_means_inbox_without_autocreate(void **state)
{
	struct stat st;
	char path[400];

	(void)state;
	deliver_detail(0, "nosuchfolder");
	assert_int_equal(count_in(0, ""), 1);
	assert_true(harness_log_contains(H, " user=u1 mailbox=INBOX guid="));
	assert_false(harness_log_contains(H, "mailbox=nosuchfolder guid="));
	snprintf(path, sizeof(path), "%s/.nosuchfolder", H->users[0].maildir);
	assert_int_equal(stat(path, &st), -1);
	/* an unusable detail goes to INBOX too */
	deliver_detail(0, "a..b");
	assert_int_equal(count_in(0, ""), 2);
	itest_pass(H);
}

static void
test_autocreate_makes_the_folder_utf8_as_mutf7(void **state)
{
	static const char *const conf[] = {
		"lmtp_save_to_detail_mailbox = yes",
		"lda_mailbox_autocreate = yes",
		NULL,
	};
	struct harness_opts o = { .nusers = NUSERS, .conf = conf };
	char path[400];
	struct stat st;

	(void)state;
	assert_int_equal(harness_write_conf(H, &o), 0);
	assert_int_equal(harness_reload(H), 0);
	deliver_detail(1, "created");
	deliver_detail(1, "caf\xc3\xa9");
	deliver_detail(1, "inbox");
	assert_int_equal(count_in(1, ".created"), 1);
	assert_int_equal(count_in(1, ".caf&AOk-"), 1);
	assert_int_equal(count_in(1, ""), 1);
	snprintf(path, sizeof(path), "%s/.created/maildirfolder", H->users[1].maildir);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_uid, H->users[1].uid);
	itest_pass(H);
}

static void
test_dovecot_lists_and_selects_the_folders(void **state)
{
	struct imapd_user users[1];
	struct imapd_opts o = { 0 };
	struct imapd *d = NULL;
	struct imapc *c = NULL;
	struct imapc_list_item *items = NULL;
	struct imapc_mailbox mb;
	char pwpath[160];
	bool seen_created = false, seen_cafe = false;
	int n, i;

	(void)state;
	if (!imapd_installed()) {
		fprintf(stderr, "# dovecot-imapd not installed: LIST/SELECT not checked\n");
		itest_pass(H);
		skip();
	}
	users[0] = (struct imapd_user){
		.name = H->users[1].name, .password = "pw-u2",
		.uid = H->users[1].uid, .gid = H->users[1].gid,
		.home = H->users[1].home,
	};
	snprintf(pwpath, sizeof(pwpath), "%s/dovecot-passwd", H->tree);
	assert_int_equal(imapd_passwd_write(pwpath, users, 1), 0);
	o.passwd_path = pwpath;
	d = imapd_start(&o);
	assert_non_null(d);
	assert_int_equal(imapc_connect(d->addr, 10000, &c), 0);
	assert_int_equal(imapc_login(c, users[0].name, users[0].password), 0);
	n = imapc_list(c, false, "*", &items);
	assert_true(n >= 3);
	for (i = 0; i < n; i++) {
		seen_created |= strcmp(items[i].name, "created") == 0;
		seen_cafe |= strcmp(items[i].name, "caf&AOk-") == 0;
	}
	free(items);
	assert_true(seen_created);
	assert_true(seen_cafe);
	assert_int_equal(imapc_select(c, "created", true, &mb), 0);
	assert_int_equal(mb.exists, 1);
	assert_int_equal(imapc_select(c, "caf&AOk-", true, &mb), 0);
	assert_int_equal(mb.exists, 1);
	imapc_logout(c);
	imapc_free(&c);
	imapd_free(&d);
	itest_pass(H);
}

#ifdef STOWD_TEST_HOOKS
/* The writer dies right after saving a +detail message into INBOX (its
 * folder does not exist), before its reply, with no replica (so no early
 * stamp told the supervisor where it went): the MTA gets a 4xx and the
 * copy is expunged where it is, in INBOX, so the retry leaves exactly one
 * (test hook: SIGVTALRM to the supervisor). */
static void
test_unanswered_save_into_inbox_is_expunged_there(void **state)
{
	int before, code;
	struct harness_opts o = { .nusers = NUSERS, .conf = conf_no_create };
	struct stat st;
	char path[400];

	(void)state;
	/* no autocreate (an earlier test may have turned it on) */
	assert_int_equal(harness_write_conf(H, &o), 0);
	assert_int_equal(harness_reload(H), 0);
	before = count_in(2, "");
	assert_int_equal(harness_test_hook(H, SIGVTALRM), 0);
	assert_true(harness_log_contains(H, "dies after the save, before its reply"));
	code = deliver_detail_code(2, "nosuchfolder2");
	assert_int_equal(code / 100, 4);
	assert_true(harness_log_contains(H, "unanswered save expunged"));
	assert_int_equal(count_in(2, ""), before);
	/* the retry is saved once, in INBOX; the folder was never made */
	deliver_detail(2, "nosuchfolder2");
	assert_int_equal(count_in(2, ""), before + 1);
	snprintf(path, sizeof(path), "%s/.nosuchfolder2", H->users[2].maildir);
	assert_int_equal(stat(path, &st), -1);
	itest_pass(H);
}
#endif

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_existing_folder_gets_the_message,
						itest_setup, itest_teardown),
		cmocka_unit_test_setup_teardown(test_missing_folder_means_inbox_without_autocreate,
						itest_setup, itest_teardown),
		cmocka_unit_test_setup_teardown(test_autocreate_makes_the_folder_utf8_as_mutf7,
						itest_setup, itest_teardown),
#ifdef STOWD_TEST_HOOKS
		cmocka_unit_test_setup_teardown(test_unanswered_save_into_inbox_is_expunged_there,
						itest_setup, itest_teardown),
#endif
		cmocka_unit_test_setup_teardown(test_dovecot_lists_and_selects_the_folders,
						itest_setup, itest_teardown),
	};

	return cmocka_run_group_tests(tests, group_setup, itest_group_teardown);
}
