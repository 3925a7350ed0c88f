/* SPDX-License-Identifier: MIT */
/*
 * tests/integration/test_delivery.c - messages land where, as whom and
 * how they should: several users with distinct uids, owners and modes,
 * the body byte-identical after the added headers, one reply per
 * accepted recipient in RCPT order, DATA and BDAT, pipelining (a group
 * answered by one write), a large body read in large reads, bare LF,
 * and every listener (unix, tcp IPv4, tcp IPv6).
 *
 * Runs in:  the integration suite, as root, one stowd for the program.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "tests/integration/itest.h"

#define NUSERS 6

static struct harness *H;

static int
group_setup(void **state)
{
	/* room for the large body of test_large_body_is_read_in_large_reads */
	static const char *const conf[] = { "lmtp_max_message_size = 1M", NULL };
	struct harness_opts o = { .nusers = NUSERS, .conf = conf };

	(void)state;
	return itest_group_start(&H, &o);
}

static void
test_three_users_each_get_the_message_as_themselves(void **state)
{
	struct lmtpc *c = itest_connect(H, HARNESS_UNIX);
	struct lmtpc_reply dr, rr[3];
	char paths[3][512];
	size_t len;
	char *body = itest_body(20000, 1, &len);

	(void)state;
	itest_envelope(c);
	for (unsigned i = 0; i < 3; i++)
		itest_cmd(c, 250, NULL, "RCPT TO:<%s>", H->users[i].addr);
	assert_int_equal(lmtpc_data(c, body, len, &dr, rr, 3), 0);
	assert_int_equal(dr.code, 354);
	for (unsigned i = 0; i < 3; i++)
		itest_assert_saved(H, i, &rr[i], body, len, paths[i], sizeof(paths[i]));
	/* distinct uids: three files, not one shared inode */
	assert_string_not_equal(paths[0], paths[1]);
	assert_string_not_equal(paths[1], paths[2]);
	itest_cmd(c, 221, NULL, "QUIT");
	free(body);
	lmtpc_free(&c);
	itest_pass(H);
}

static void
test_unknown_recipient_among_known_ones(void **state)
{
	struct lmtpc *c = itest_connect(H, HARNESS_UNIX);
	struct lmtpc_reply r, dr, rr[2];
	int before0 = itest_count_new(H, 0), before1 = itest_count_new(H, 1);
	size_t len;
	char *body = itest_body(3000, 2, &len);

	(void)state;
	itest_envelope(c);
	itest_cmd(c, 250, NULL, "RCPT TO:<%s>", H->users[1].addr);
	itest_cmd(c, 550, &r, "RCPT TO:<nosuchuser@%s>", H->domain);
	assert_string_equal(r.enhanced, "5.1.1");
	itest_cmd(c, 250, NULL, "RCPT TO:<%s>", H->users[0].addr);
	/* exactly two replies after DATA, in RCPT order: u2 then u1 */
	assert_int_equal(lmtpc_data(c, body, len, &dr, rr, 2), 0);
	itest_assert_saved(H, 1, &rr[0], body, len, NULL, 0);
	itest_assert_saved(H, 0, &rr[1], body, len, NULL, 0);
	assert_int_equal(itest_count_new(H, 0), before0 + 1);
	assert_int_equal(itest_count_new(H, 1), before1 + 1);
	/* no third reply is pending: the next command gets its own */
	itest_cmd(c, 250, NULL, "NOOP");
	free(body);
	lmtpc_free(&c);
	itest_pass(H);
}

static void
test_whole_transaction_in_one_write(void **state)
{
	struct lmtpc *c = itest_connect(H, HARNESS_UNIX);
	struct lmtpc_reply r[7];
	size_t len, slen;
	char *body = itest_body(5000, 3, &len);
	char *stuffed = lmtpc_dot_stuff(body, len, &slen);
	char *all;
	int n;

	(void)state;
	n = asprintf(&all, "LHLO client.example\r\nMAIL FROM:<%s>\r\n"
		     "RCPT TO:<%s>\r\nRCPT TO:<%s>\r\nDATA\r\n%.*sQUIT\r\n",
		     ITEST_SENDER, H->users[2].addr, H->users[3].addr,
		     (int)slen, stuffed);
	assert_true(n > 0);
	assert_int_equal(lmtpc_send(c, all, (size_t)n), 0);
	assert_int_equal(lmtpc_read_replies(c, r, 7), 0);
	assert_int_equal(r[0].code, 250);   /* LHLO */
	assert_int_equal(r[1].code, 250);   /* MAIL */
	assert_int_equal(r[2].code, 250);   /* RCPT */
	assert_int_equal(r[3].code, 250);   /* RCPT */
	assert_int_equal(r[4].code, 354);   /* DATA */
	itest_assert_saved(H, 2, &r[5], body, len, NULL, 0);
	itest_assert_saved(H, 3, &r[6], body, len, NULL, 0);
	assert_int_equal(lmtpc_read_reply(c, &r[0]), 0);
	assert_int_equal(r[0].code, 221);
	assert_int_equal(lmtpc_wait_closed(c, 5000), 0);
	free(all);
	free(stuffed);
	free(body);
	lmtpc_free(&c);
	itest_pass(H);
}

/* A pipelined MAIL, RCPT, RCPT, DATA is answered by one write (RFC 2920):
 * the first bytes the client can read hold the four replies, in order. */
static void
test_pipelined_group_is_answered_in_one_write(void **state)
{
	struct lmtpc *c = itest_connect(H, HARNESS_UNIX);
	struct lmtpc_reply r[2];
	struct pollfd pfd;
	char buf[1024], *cmds;
	const char *p;
	size_t len, slen;
	char *body = itest_body(300, 5, &len);
	char *stuffed = lmtpc_dot_stuff(body, len, &slen);
	ssize_t n;
	int m;

	(void)state;
	itest_cmd(c, 250, &r[0], "LHLO client.example");
	m = asprintf(&cmds, "MAIL FROM:<%s>\r\nRCPT TO:<%s>\r\n"
		     "RCPT TO:<%s>\r\nDATA\r\n", ITEST_SENDER,
		     H->users[4].addr, H->users[5].addr);
	assert_true(m > 0);
	assert_int_equal(lmtpc_send(c, cmds, (size_t)m), 0);
	pfd = (struct pollfd){ .fd = lmtpc_fd(c), .events = POLLIN };
	assert_int_equal(poll(&pfd, 1, 10000), 1);
	n = recv(lmtpc_fd(c), buf, sizeof(buf) - 1, MSG_DONTWAIT);
	assert_true(n > 0);
	buf[n] = '\0';
	p = strstr(buf, "250 2.1.0 ");
	assert_ptr_equal(p, buf);
	p = strstr(p, "\r\n250 2.1.5 ");
	assert_non_null(p);
	p = strstr(p + 2, "\r\n250 2.1.5 ");
	assert_non_null(p);
	p = strstr(p + 2, "\r\n354 ");
	assert_non_null(p);
	assert_int_equal(buf[n - 2], '\r');
	assert_int_equal(buf[n - 1], '\n');
	assert_int_equal(lmtpc_send(c, stuffed, slen), 0);
	assert_int_equal(lmtpc_read_replies(c, r, 2), 0);
	itest_assert_saved(H, 4, &r[0], body, len, NULL, 0);
	itest_assert_saved(H, 5, &r[1], body, len, NULL, 0);
	free(cmds);
	free(stuffed);
	free(body);
	lmtpc_free(&c);
	itest_pass(H);
}

/* Read system calls of the lmtpd processes so far (syscr in /proc/PID/io;
 * the supervisor's IPC uses recvmsg, which it does not count). */
static long long
lmtpd_reads(void)
{
	struct harness_proc p[8];
	char buf[1024];
	const char *v;
	long long sum = 0;
	int i, n;

	n = harness_find_role(H, HARNESS_ROLE_LMTPD, p, 8);
	assert_true(n > 0);
	for (i = 0; i < n; i++) {
		assert_true(harness_proc_file(p[i].pid, "io", buf, sizeof(buf)) > 0);
		v = strstr(buf, "syscr: ");
		assert_non_null(v);
		sum += strtoll(v + 7, NULL, 10);
	}
	return sum;
}

/* A 512 KiB body sent at once arrives byte for byte (its dot-stuffed lines
 * fall across every read boundary), and lmtpd reads it in large reads:
 * libevent 2.1 alone takes at most 4096 octets per read, 128 reads. */
static void
test_large_body_is_read_in_large_reads(void **state)
{
	struct lmtpc *c = itest_connect(H, HARNESS_UNIX);
	struct lmtpc_reply r;
	size_t len, slen;
	char *body = itest_body(512 * 1024, 9, &len);
	char *stuffed = lmtpc_dot_stuff(body, len, &slen);
	long long before, reads;

	(void)state;
	itest_envelope(c);
	itest_cmd(c, 250, &r, "RCPT TO:<%s>", H->users[1].addr);
	itest_cmd(c, 354, &r, "DATA");
	before = lmtpd_reads();
	assert_int_equal(lmtpc_send(c, stuffed, slen), 0);
	assert_int_equal(lmtpc_read_reply(c, &r), 0);
	reads = lmtpd_reads() - before;
	itest_assert_saved(H, 1, &r, body, len, NULL, 0);
	if (reads >= 64)
		fail_msg("%lld reads for a body of %zu octets", reads, slen);
	free(stuffed);
	free(body);
	lmtpc_free(&c);
	itest_pass(H);
}

static void
test_lhlo_advertises_pipelining_chunking(void **state)
{
	struct lmtpc *c = itest_connect(H, HARNESS_UNIX);
	struct lmtpc_reply r;

	(void)state;
	itest_cmd(c, 250, &r, "LHLO client.example");
	assert_non_null(strstr(r.text, "PIPELINING"));
	assert_non_null(strstr(r.text, "CHUNKING"));
	assert_non_null(strstr(r.text, "ENHANCEDSTATUSCODES"));
	lmtpc_free(&c);
	itest_pass(H);
}

static void
test_bdat_chunks_are_not_unstuffed(void **state)
{
	static const char *const chunks[] = {
		"From: <a@example.net>\r\nSubject: bdat\r\n\r\n",
		".\r\n..two dots stay two\r\n",
		"",
		"last line, split in the mid",
		"dle\r\n",
	};
	struct lmtpc *c = itest_connect(H, HARNESS_TCP4);
	struct lmtpc_reply r;
	char body[512] = "";
	size_t n = sizeof(chunks) / sizeof(chunks[0]);

	(void)state;
	itest_envelope(c);
	itest_cmd(c, 250, NULL, "RCPT TO:<%s>", H->users[4].addr);
	for (size_t i = 0; i < n; i++) {
		bool last = i + 1 == n;

		strcat(body, chunks[i]);
		if (lmtpc_bdat(c, chunks[i], strlen(chunks[i]), last, &r, 1) < 0)
			fail_msg("BDAT %zu: %s", i, lmtpc_strerror(errno));
		if (!last && r.code != 250)
			fail_msg("BDAT chunk %zu: \"%s\"", i, r.text);
	}
	itest_assert_saved(H, 4, &r, body, strlen(body), NULL, 0);
	lmtpc_free(&c);
	itest_pass(H);
}

static void
test_bare_lf_is_kept_and_does_not_end_data(void **state)
{
	static const char raw[] = "Subject: lf\r\n\r\nline1\nline2\n.\nline3\r\n.\r\n";
	static const char body[] = "Subject: lf\r\n\r\nline1\nline2\n.\nline3\r\n";
	struct lmtpc *c = itest_connect(H, HARNESS_UNIX);
	struct lmtpc_reply r;

	(void)state;
	itest_envelope(c);
	itest_cmd(c, 250, NULL, "RCPT TO:<%s>", H->users[5].addr);
	itest_cmd(c, 354, NULL, "DATA");
	assert_int_equal(lmtpc_send(c, raw, strlen(raw)), 0);
	assert_int_equal(lmtpc_read_reply(c, &r), 0);
	/* stored: CRLF -> LF, the bare LFs as they were, the "." kept */
	itest_assert_saved(H, 5, &r, body, strlen(body), NULL, 0);
	/* "line3" was not taken for a command: the session is in sync */
	itest_cmd(c, 250, NULL, "NOOP");
	lmtpc_free(&c);
	itest_pass(H);
}

static void
deliver_via(enum harness_listener which, unsigned user)
{
	struct lmtpc *c;
	struct lmtpc_reply dr, r;
	size_t len;
	char *body;

	if (H->listen[which][0] == '\0')
		skip();     /* no IPv6 loopback on this host */
	c = itest_connect(H, which);
	body = itest_body(1000, 10 + (unsigned)which, &len);
	itest_envelope(c);
	itest_cmd(c, 250, NULL, "RCPT TO:<%s>", H->users[user].addr);
	assert_int_equal(lmtpc_data(c, body, len, &dr, &r, 1), 0);
	assert_int_equal(dr.code, 354);
	itest_assert_saved(H, user, &r, body, len, NULL, 0);
	free(body);
	lmtpc_free(&c);
	itest_pass(H);
}

static void
test_unix_listener(void **state)
{
	(void)state;
	deliver_via(HARNESS_UNIX, 0);
}

static void
test_tcp_ipv4_listener(void **state)
{
	(void)state;
	deliver_via(HARNESS_TCP4, 1);
}

static void
test_tcp_ipv6_listener(void **state)
{
	(void)state;
	deliver_via(HARNESS_TCP6, 2);
}

static void
test_many_connections_in_parallel(void **state)
{
	struct lmtpc *c[NUSERS];
	struct lmtpc_reply r;
	size_t len;
	char *body = itest_body(2000, 20, &len);

	(void)state;
	/* all sessions open and mid-transaction at once, then DATA each */
	for (unsigned i = 0; i < NUSERS; i++) {
		c[i] = itest_connect(H, i % 2 ? HARNESS_TCP4 : HARNESS_UNIX);
		itest_envelope(c[i]);
		itest_cmd(c[i], 250, NULL, "RCPT TO:<%s>", H->users[i].addr);
		itest_cmd(c[i], 354, NULL, "DATA");
	}
	for (unsigned i = 0; i < NUSERS; i++) {
		size_t slen;
		char *s = lmtpc_dot_stuff(body, len, &slen);

		assert_int_equal(lmtpc_send(c[i], s, slen), 0);
		free(s);
	}
	for (unsigned i = 0; i < NUSERS; i++) {
		assert_int_equal(lmtpc_read_reply(c[i], &r), 0);
		itest_assert_saved(H, i, &r, body, len, NULL, 0);
		lmtpc_free(&c[i]);
	}
	free(body);
	itest_pass(H);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			test_three_users_each_get_the_message_as_themselves, itest_setup, itest_teardown),
		cmocka_unit_test_setup_teardown(test_unknown_recipient_among_known_ones,
						itest_setup, itest_teardown),
		cmocka_unit_test_setup_teardown(test_whole_transaction_in_one_write,
						itest_setup, itest_teardown),
		cmocka_unit_test_setup_teardown(test_pipelined_group_is_answered_in_one_write,
						itest_setup, itest_teardown),
		cmocka_unit_test_setup_teardown(test_large_body_is_read_in_large_reads,
						itest_setup, itest_teardown),
		cmocka_unit_test_setup_teardown(test_lhlo_advertises_pipelining_chunking,
						itest_setup, itest_teardown),
		cmocka_unit_test_setup_teardown(test_bdat_chunks_are_not_unstuffed,
						itest_setup, itest_teardown),
		cmocka_unit_test_setup_teardown(test_bare_lf_is_kept_and_does_not_end_data,
						itest_setup, itest_teardown),
		cmocka_unit_test_setup_teardown(test_unix_listener, itest_setup, itest_teardown),
		cmocka_unit_test_setup_teardown(test_tcp_ipv4_listener, itest_setup, itest_teardown),
		cmocka_unit_test_setup_teardown(test_tcp_ipv6_listener, itest_setup, itest_teardown),
		cmocka_unit_test_setup_teardown(test_many_connections_in_parallel,
						itest_setup, itest_teardown),
	};

	harness_require_root();
	return cmocka_run_group_tests(tests, group_setup, itest_group_teardown);
}
