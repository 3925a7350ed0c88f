/* SPDX-License-Identifier: MIT */
/*
 * tests/integration/test_quota.c - Maildir++ quota of LMTP deliveries:
 * limits from the userdb (userdb_quota_rule extra field) and from
 * quota_rule, the check at RCPT (lmtp_rcpt_check_quota) and at save time
 * with the real size, maildirsize kept as Dovecot keeps it (read back by a
 * real Dovecot with GETQUOTAROOT when dovecot-imapd is installed), its
 * recalculation when missing or stale, and quota_full_tempfail.
 *
 * Runs in:  the integration suite, as root, one stowd for the program.
 * Users:    u1 storage=20K (userdb), u2 messages=2 (quota_rule default),
 *           u3 storage=1M:messages=100 (userdb; Dovecot), u4 messages=3
 *           (userdb), u5 messages=1 (userdb; tempfail), u6 storage=2K
 *           (userdb; RCPT check fails only at save).
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
#include <unistd.h>

#include "tests/integration/itest.h"
#include "tests/lib/imapc.h"
#include "tests/lib/imapd.h"

#define NUSERS 6

static struct harness *H;

static const char *const user_rules[NUSERS] = {
	"userdb_quota_rule=*:storage=20K",
	"",                                    /* quota_rule of stowd.conf */
	"userdb_quota_rule=*:storage=1M:messages=100",
	"userdb_quota_rule=*:messages=3",
	"userdb_quota_rule=*:messages=1",
	"userdb_quota_rule=*:storage=2K",
};

/* The harness's passwd-file again, with the quota extra fields. */
static int
write_passwd(struct harness *h)
{
	char *text = NULL, line[512];
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	unsigned i;
	int ret;

	for (i = 0; i < h->nusers; i++) {
		const struct harness_user *u = &h->users[i];

		snprintf(line, sizeof(line), "%s:x:%u:%u::%s:/bin/false:%s\n", u->name,
			 (unsigned)u->uid, (unsigned)u->gid, u->home,
			 i < NUSERS ? user_rules[i] : "");
		fputs(line, f);
	}
	fclose(f);
	ret = harness_write_file(h->passwd_path, text, len, 0600);
	free(text);
	return ret;
}

static int
group_setup(void **state)
{
	static const char *const conf[] = {
		"quota_rule = *:messages=2",
		"lmtp_rcpt_check_quota = yes",
		NULL,
	};
	struct harness_opts o = { .nusers = NUSERS, .conf = conf };

	(void)state;
	harness_require_root();
	H = harness_new(&o);
	if (H == NULL || write_passwd(H) < 0 || harness_start(H) < 0)
		return -1;
	itest_use(&H);
	return 0;
}

static char *
read_maildirsize(unsigned idx)
{
	char path[300], *data = NULL;
	size_t len;

	snprintf(path, sizeof(path), "%s/maildirsize", H->users[idx].maildir);
	if (harness_read_file(path, &data, &len) < 0)
		return NULL;
	return data;
}

/* Sum the usage lines of maildirsize (after the limits line). */
static void
maildirsize_sum(const char *text, long long *bytes, long long *count)
{
	const char *p = strchr(text, '\n');

	*bytes = 0;
	*count = 0;
	while (p != NULL && p[1] != '\0') {
		long long b, c;

		if (sscanf(p + 1, "%lld %lld", &b, &c) == 2) {
			*bytes += b;
			*count += c;
		}
		p = strchr(p + 1, '\n');
	}
}

/* One message to user idx on a new connection; the reply after DATA in *r
 * (the RCPT must get rcpt_code; no DATA when it is not 250). */
static void
deliver_one(unsigned idx, const char *body, size_t len, int rcpt_code,
	    struct lmtpc_reply *r)
{
	struct lmtpc *c = itest_connect(H, HARNESS_UNIX);
	struct lmtpc_reply dr, rr;

	itest_envelope(c);
	itest_cmd(c, rcpt_code, &rr, "RCPT TO:<%s>", H->users[idx].addr);
	if (rcpt_code == 250) {
		assert_int_equal(lmtpc_data(c, body, len, &dr, &rr, 1), 0);
		assert_int_equal(dr.code, 354);
	}
	if (r != NULL)
		*r = rr;
	itest_cmd(c, 221, NULL, "QUIT");
	lmtpc_free(&c);
}

static void
test_messages_limit_refused_at_rcpt(void **state)
{
	struct lmtpc_reply r;

	(void)state;
	deliver_one(1, ITEST_MINI_BODY, strlen(ITEST_MINI_BODY), 250, &r);
	assert_int_equal(r.code, 250);
	deliver_one(1, ITEST_MINI_BODY, strlen(ITEST_MINI_BODY), 250, &r);
	assert_int_equal(r.code, 250);
	/* the third: refused at RCPT, permanently (quota_full_tempfail = no) */
	deliver_one(1, NULL, 0, 552, &r);
	assert_string_equal(r.enhanced, "5.2.2");
	assert_int_equal(itest_count_new(H, 1), 2);
	itest_pass(H);
}

static void
test_message_passing_rcpt_refused_at_save(void **state)
{
	struct lmtpc *c = itest_connect(H, HARNESS_UNIX);
	struct lmtpc_reply dr, rr[2];
	size_t len;
	char *body = itest_body(12000, 7, &len);
	char *text;
	long long b, n;

	(void)state;
	deliver_one(0, body, len, 250, &rr[0]);
	assert_int_equal(rr[0].code, 250);
	/* 12K used of 20K: RCPT passes, the real size does not fit; the other
	 * recipient of the same transaction still gets it */
	itest_envelope(c);
	itest_cmd(c, 250, NULL, "RCPT TO:<%s>", H->users[0].addr);
	itest_cmd(c, 250, NULL, "RCPT TO:<%s>", H->users[2].addr);
	assert_int_equal(lmtpc_data(c, body, len, &dr, rr, 2), 0);
	assert_int_equal(rr[0].code, 552);
	assert_string_equal(rr[0].enhanced, "5.2.2");
	itest_assert_saved(H, 2, &rr[1], body, len, NULL, 0);
	itest_cmd(c, 221, NULL, "QUIT");
	lmtpc_free(&c);
	assert_int_equal(itest_count_new(H, 0), 1);
	/* nothing of the refused message is counted */
	text = read_maildirsize(0);
	assert_non_null(text);
	assert_true(strncmp(text, "20480S\n", 7) == 0);
	maildirsize_sum(text, &b, &n);
	assert_int_equal(n, 1);
	assert_true(b > 11000 && b < 13500);
	free(text);
	free(body);
	itest_pass(H);
}

static void
test_message_larger_than_the_whole_quota(void **state)
{
	struct lmtpc_reply r;
	size_t len;
	char *body = itest_body(4000, 9, &len);

	(void)state;
	/* u6: 0 of 2K used, so RCPT passes; 4000 octets never fit */
	deliver_one(5, body, len, 250, &r);
	assert_int_equal(r.code, 552);
	assert_int_equal(itest_count_new(H, 5), 0);
	free(body);
	itest_pass(H);
}

static void
test_recalculated_after_files_removed_by_hand(void **state)
{
	struct lmtpc_reply r;
	char **names, path[600], *text;
	long long b, n;
	int cnt;

	(void)state;
	for (int i = 0; i < 3; i++) {
		deliver_one(3, ITEST_MINI_BODY, strlen(ITEST_MINI_BODY), 250, &r);
		assert_int_equal(r.code, 250);
	}
	deliver_one(3, NULL, 0, 552, &r);     /* full: 3 of 3 */
	/* files removed by hand, and a line of another Maildir++ writer for a
	 * message that is gone too: maildirsize says 4 of 3, over quota with
	 * several lines, so it is not trusted but recalculated (Dovecot's
	 * rule): 1 message left, the next ones fit */
	cnt = harness_maildir_list(H, 3, "new", &names);
	assert_int_equal(cnt, 3);
	for (int i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "%s/new/%s", H->users[3].maildir,
			 names[i]);
		assert_int_equal(unlink(path), 0);
	}
	harness_names_free(&names, cnt);
	text = read_maildirsize(3);
	assert_non_null(text);
	snprintf(path, sizeof(path), "%s/maildirsize", H->users[3].maildir);
	{
		size_t tl = strlen(text);
		char *more = malloc(tl + 16);

		memcpy(more, text, tl);
		memcpy(more + tl, "100 1\n", 7);
		assert_int_equal(harness_write_file(path, more, tl + 6, 0600), 0);
		assert_int_equal(chown(path, H->users[3].uid, H->users[3].gid), 0);
		free(more);
	}
	free(text);
	deliver_one(3, ITEST_MINI_BODY, strlen(ITEST_MINI_BODY), 250, &r);
	assert_int_equal(r.code, 250);
	deliver_one(3, ITEST_MINI_BODY, strlen(ITEST_MINI_BODY), 250, &r);
	assert_int_equal(r.code, 250);
	assert_int_equal(itest_count_new(H, 3), 3);
	text = read_maildirsize(3);
	assert_non_null(text);
	maildirsize_sum(text, &b, &n);
	assert_int_equal(n, 3);
	free(text);
	/* maildirsize removed by hand: recalculated from the files */
	snprintf(path, sizeof(path), "%s/maildirsize", H->users[3].maildir);
	assert_int_equal(unlink(path), 0);
	deliver_one(3, NULL, 0, 552, &r);
	text = read_maildirsize(3);
	assert_non_null(text);
	assert_true(strncmp(text, "3C\n", 3) == 0);
	maildirsize_sum(text, &b, &n);
	assert_int_equal(n, 3);
	assert_true(b > 0);
	free(text);
	itest_pass(H);
}

static void
test_quota_full_tempfail_gives_452(void **state)
{
	static const char *const conf[] = {
		"quota_rule = *:messages=2",
		"lmtp_rcpt_check_quota = no",
		"quota_full_tempfail = yes",
		NULL,
	};
	struct harness_opts o = { .nusers = NUSERS, .conf = conf };
	struct lmtpc_reply r;

	(void)state;
	assert_int_equal(harness_write_conf(H, &o), 0);
	assert_int_equal(harness_reload(H), 0);
	deliver_one(4, ITEST_MINI_BODY, strlen(ITEST_MINI_BODY), 250, &r);
	assert_int_equal(r.code, 250);
	/* no RCPT check now: refused after DATA, with a temporary code */
	deliver_one(4, ITEST_MINI_BODY, strlen(ITEST_MINI_BODY), 250, &r);
	assert_int_equal(r.code, 452);
	assert_string_equal(r.enhanced, "4.2.2");
	assert_int_equal(itest_count_new(H, 4), 1);
	itest_pass(H);
}

static void
test_dovecot_reads_stowds_accounting(void **state)
{
	struct imapd_user users[1];
	struct imapd_opts o = { .flags = IMAPD_QUOTA };
	struct imapd *d = NULL;
	struct imapc *c = NULL;
	struct imapc_quota qr;
	char pwpath[160], *text;
	long long b, n;
	size_t len;
	char *body = itest_body(5000, 11, &len);
	struct lmtpc_reply r;

	(void)state;
	if (!imapd_installed()) {
		fprintf(stderr, "# dovecot-imapd not installed: GETQUOTAROOT not checked\n");
		free(body);
		itest_pass(H);
		skip();
	}
	deliver_one(2, body, len, 250, &r);
	assert_int_equal(r.code, 250);
	text = read_maildirsize(2);
	assert_non_null(text);
	assert_true(strncmp(text, "1048576S,100C\n", 14) == 0);
	maildirsize_sum(text, &b, &n);
	free(text);

	users[0] = (struct imapd_user){
		.name = H->users[2].name, .password = "pw-u3",
		.uid = H->users[2].uid, .gid = H->users[2].gid,
		.home = H->users[2].home, .extra = user_rules[2],
	};
	snprintf(pwpath, sizeof(pwpath), "%s/dovecot-passwd", H->tree);
	assert_int_equal(imapd_passwd_write(pwpath, users, 1), 0);
	o.passwd_path = pwpath;
	d = imapd_start(&o);
	assert_non_null(d);
	assert_int_equal(imapc_connect(d->addr, 10000, &c), 0);
	assert_int_equal(imapc_login(c, users[0].name, users[0].password), 0);
	assert_int_equal(imapc_getquotaroot(c, "INBOX", &qr), 0);
	assert_int_equal(qr.storage_limit, 1024);
	assert_int_equal(qr.message_limit, 100);
	assert_int_equal(qr.message_used, n);
	assert_int_equal(qr.storage_used, (b + 1023) / 1024);
	imapc_logout(c);
	imapc_free(&c);
	imapd_free(&d);
	free(body);
	itest_pass(H);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_messages_limit_refused_at_rcpt,
						itest_setup, itest_teardown),
		cmocka_unit_test_setup_teardown(test_message_passing_rcpt_refused_at_save,
						itest_setup, itest_teardown),
		cmocka_unit_test_setup_teardown(test_message_larger_than_the_whole_quota,
						itest_setup, itest_teardown),
		cmocka_unit_test_setup_teardown(test_recalculated_after_files_removed_by_hand,
						itest_setup, itest_teardown),
		cmocka_unit_test_setup_teardown(test_dovecot_reads_stowds_accounting,
						itest_setup, itest_teardown),
		cmocka_unit_test_setup_teardown(test_quota_full_tempfail_gives_452,
						itest_setup, itest_teardown),
	};

	return cmocka_run_group_tests(tests, group_setup, itest_group_teardown);
}
