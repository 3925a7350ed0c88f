/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/lmtpd/test_session_body.c - transactions through the session:
 * recipients and their results in RCPT order, DATA and BDAT bodies, size,
 * line and recipient limits, backend failures, result normalisation,
 * SMTPUTF8 and the trace headers.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <event2/buffer.h>

#include "session_fake.h"

static void
test_transaction_mixed_results(void **state)
{
	struct fake *f = *state;
	const char *id, *want;

	start_mail(f, " BODY=8BITMIME");
	id = lmtp_session_id(f->s);
	rcpt(f, "a@x.example", 250, "2.1.5");
	rcpt(f, "b@x.example", 550, "5.1.1");
	rcpt(f, "c@x.example", 250, "2.1.5");
	sends(f, "DATA\r\n");
	assert_string_equal(out(f), "354 Start mail input; end with <CRLF>.<CRLF>\r\n");
	sends(f, "Subject: hi\r\n\r\n..dot\r\nbare\nlf\r\n");
	assert_int_equal(f->n_dlv, 0);
	sends(f, ".\r\n");
	assert_int_equal(f->n_dlv, 2);
	assert_true(f->reading);   /* buffered, not processed, while waiting */
	assert_string_equal(f->dlv[0].address, "a@x.example");
	assert_int_equal(f->dlv[0].rcpt_index, 0);
	assert_string_equal(f->dlv[1].address, "c@x.example");
	assert_int_equal(f->dlv[1].rcpt_index, 1);
	assert_string_equal(body(f, 0), "Subject: hi\n\n.dot\nbare\nlf\n");
	assert_true(f->dlv[0].vsize == f->dlv[0].size + 5);
	assert_ptr_equal(f->dlv[0].body, f->dlv[1].body);
	want = fmt("Return-Path: <s@x.example>\nDelivered-To: c@x.example\n"
		   "Received: from client.example (local)\n"
		   "\tby test.example (stowd) with LMTP id %s\n"
		   "\tfor <c@x.example>; ", id);
	assert_memory_equal(f->dlv[1].prefix, want, strlen(want));
	assert_string_equal(f->dlv[1].prefix + strlen(f->dlv[1].prefix) - 7, " +0000\n");
	assert_string_equal(out(f), "");
	dlv_reply(f, 1, 250, "2.0.0", "0123456789abcdef0123456789abcdef");
	assert_string_equal(out(f), "");
	dlv_reply(f, 0, 452, "4.2.2", NULL);
	assert_string_equal(out(f), fmt(
		"452 4.2.2 <a@x.example> %s Mailbox full\r\n"
		"250 2.0.0 <c@x.example> %s Saved as 0123456789abcdef0123456789abcdef\r\n",
		id, id));
	assert_true(f->reading);
	/* the transaction is over: a new one may start */
	sends(f, "RCPT TO:<a@x.example>\r\nMAIL FROM:<>\r\n");
	assert_string_equal(out(f), "503 5.5.1 Need MAIL before RCPT\r\n250 2.1.0 Ok\r\n");
}

static void
test_recipient_limit(void **state)
{
	struct fake *f = *state;

	f->cfg.max_recipients = 2;
	start_mail(f, "");
	rcpt(f, "a@x", 250, "2.1.5");
	rcpt(f, "b@x", 550, "5.1.1");
	rcpt(f, "c@x", 250, "2.1.5");
	sends(f, "RCPT TO:<d@x>\r\n");
	assert_string_equal(out(f), "452 4.5.3 Too many recipients\r\n");
	assert_int_equal(f->n_rcpt, 3);
}

static void
test_mail_size_limit(void **state)
{
	struct fake *f = *state;

	f->cfg.max_message_size = 100;
	start_mail(f, " SIZE=100");
	sends(f, "RSET\r\nMAIL FROM:<a@b> SIZE=101\r\n");
	assert_string_equal(out(f), "250 2.0.0 Ok\r\n"
		"552 5.3.4 Message size exceeds fixed maximum message size\r\n");
}

/* MAIL, two recipients, DATA: ready for a body. */

static void
body_prepare(struct fake *f)
{
	start_mail(f, "");
	rcpt(f, "a@x", 250, "2.1.5");
	rcpt(f, "b@x", 250, "2.1.5");
	sends(f, "DATA\r\n");
	out(f);
}

static void
test_body_too_big(void **state)
{
	struct fake *f = *state;
	const char *reply = "552 5.3.4 Message size exceeds fixed limit";

	f->cfg.max_message_size = 20;
	body_prepare(f);
	sends(f, "0123456789\r\n0123456789\r\n0123456789\r\n.\r\nNOOP\r\n");
	assert_int_equal(f->n_dlv, 0);
	assert_string_equal(out(f), fmt("%s\r\n%s\r\n250 2.0.0 Ok\r\n", reply, reply));
}

/* A client waiting for its replies is not idle: a read timeout while the
 * deliveries are in progress neither answers nor closes. */
static void
test_timeout_while_delivering_is_not_the_clients(void **state)
{
	struct fake *f = *state;

	body_prepare(f);
	sends(f, "hello\r\n.\r\n");
	assert_int_equal(f->n_dlv, 2);
	lmtp_session_timeout(f->s);
	assert_string_equal(out(f), "");
	assert_int_equal(f->closes, 0);
	assert_true(f->reading);
	dlv_reply(f, 0, 250, "2.0.0", "0123456789abcdef0123456789abcdef");
	dlv_reply(f, 1, 250, "2.0.0", "0123456789abcdef0123456789abcdee");
	assert_true(strstr(out(f), "Saved as 0123456789abcdef0123456789abcdee") != NULL);
	/* back to reading commands: now a timeout is the client's */
	lmtp_session_timeout(f->s);
	assert_string_equal(out(f), "421 4.4.2 test.example Timeout\r\n");
	assert_int_equal(f->closes, 1);
}

static void
test_body_long_line(void **state)
{
	struct fake *f = *state;
	const char *id;

	f->cfg.max_line_length = 10;
	body_prepare(f);
	id = lmtp_session_id(f->s);
	sends(f, "0123456789\r\n0123456789a\r\n.\r\nNOOP\r\n");
	assert_int_equal(f->n_dlv, 0);
	assert_string_equal(out(f), fmt(
		"554 5.6.0 %s Message line longer than 10 octets\r\n"
		"554 5.6.0 %s Message line longer than 10 octets\r\n"
		"250 2.0.0 Ok\r\n", id, id));
}

static void
test_body_nul(void **state)
{
	struct fake *f = *state;
	static const char text[] = "a\0b\r\n.\r\nNOOP\r\n";
	const char *reply = "554 5.6.0 Message contains NUL byte (BINARYMIME not supported)";

	start_mail(f, "");
	rcpt(f, "a@x", 250, "2.1.5");
	sends(f, "DATA\r\n");
	out(f);
	sendn(f, text, sizeof(text) - 1);
	assert_int_equal(f->n_dlv, 0);
	assert_string_equal(out(f), fmt("%s\r\n250 2.0.0 Ok\r\n", reply));
}

static void
test_bdat_chunks(void **state)
{
	struct fake *f = *state;
	const char *id;

	start_mail(f, "");
	id = lmtp_session_id(f->s);
	rcpt(f, "a@x", 250, "2.1.5");
	sends(f, "BDAT 6\r\nab\r\ncd");
	assert_string_equal(out(f), "250 2.0.0 6 octets received\r\n");
	sends(f, "BDAT 0\r\n");
	assert_string_equal(out(f), "250 2.0.0 0 octets received\r\n");
	sends(f, "DATA\r\nBDAT 8 LAST\r\n\r\nQUIT\r");
	assert_string_equal(out(f), "503 5.5.1 DATA not allowed after BDAT\r\n");
	assert_int_equal(f->n_dlv, 0);
	sends(f, "\nQUIT\r\n");
	assert_int_equal(f->n_dlv, 1);
	assert_string_equal(body(f, 0), "ab\ncd\nQUIT\n");
	assert_true(f->dlv[0].vsize == 11 + 3);
	dlv_reply(f, 0, 250, "2.0.0", "g");
	assert_string_equal(out(f), fmt("250 2.0.0 <a@x> %s Saved as g\r\n"
		"221 2.0.0 test.example closing connection\r\n", id));
}

static void
test_bdat_without_recipients_consumes(void **state)
{
	struct fake *f = *state;

	start_with(f, false);
	out(f);
	sends(f, "BDAT 8\r\nRSET\r\nXXNOOP\r\n");
	assert_string_equal(out(f), "503 5.5.1 Need MAIL command\r\n250 2.0.0 Ok\r\n");
	sends(f, "LHLO c\r\nMAIL FROM:<a@b>\r\n");
	out(f);
	sends(f, "BDAT 10 LAST\r\n0123");
	assert_string_equal(out(f), "");
	sends(f, "456789NOOP\r\n");
	assert_string_equal(out(f), "503 5.5.1 No valid recipients\r\n250 2.0.0 Ok\r\n");
	assert_int_equal(f->n_dlv, 0);
	sends(f, "BDAT 1x\r\n");
	assert_string_equal(out(f), "501 5.5.4 Syntax: BDAT size [LAST]\r\n");
	assert_int_equal(f->closes, 1);
}

static void
test_backend_failures(void **state)
{
	struct fake *f = *state;
	const char *id;

	start_mail(f, "");
	id = lmtp_session_id(f->s);
	rcpt(f, "a@x", 250, "2.1.5");
	rcpt(f, "b@x", 250, "2.1.5");
	f->fail_rcpt = true;
	sends(f, "RCPT TO:<c@x>\r\n");
	assert_string_equal(out(f), "451 4.3.0 Temporary lookup failure\r\n");
	assert_true(f->reading);
	f->fail_deliver = true;
	sends(f, "DATA\r\nx\r\n.\r\n");
	assert_string_equal(out(f), fmt("354 Start mail input; end with <CRLF>.<CRLF>\r\n"
		"451 4.3.0 <a@x> %s Temporary failure, try again later\r\n"
		"451 4.3.0 <b@x> %s Temporary failure, try again later\r\n", id, id));
	assert_true(f->reading);
}

static void
test_result_normalised(void **state)
{
	struct fake *f = *state;
	struct dlv_result r;

	start_mail(f, "");
	sends(f, "RCPT TO:<a@x>\r\n");
	r = result(250, "2.1.5", "fine\r\nDATA");
	lmtp_session_rcpt_done(f->s, f->rcpt_cookie[0], &r);
	assert_string_equal(out(f), "250 2.1.5 fine  DATA\r\n");
	sends(f, "RCPT TO:<b@x>\r\n");
	r = result(999, "9.9.9", "odd");
	lmtp_session_rcpt_done(f->s, f->rcpt_cookie[1], &r);
	assert_string_equal(out(f),
		"451 4.3.0 Internal error: invalid result from delivery service\r\n");
	sends(f, "RCPT TO:<c@x>\r\n");
	r = result(550, "bogus", "no");
	lmtp_session_rcpt_done(f->s, f->rcpt_cookie[2], &r);
	assert_string_equal(out(f), "550 5.0.0 no\r\n");
	sends(f, "RCPT TO:<d@x>\r\n");
	r = result(250, "2.1.5", "ok");
	r.status = DLV_PERMFAIL;
	lmtp_session_rcpt_done(f->s, f->rcpt_cookie[3], &r);
	assert_memory_equal(out(f), "451 4.3.0", 9);
}

static void
test_unexpected_completions(void **state)
{
	struct fake *f = *state;
	struct dlv_result r = result(250, "2.1.5", "Ok");

	start_mail(f, "");
	lmtp_session_rcpt_done(f->s, 12345, &r);
	lmtp_session_deliver_done(f->s, 0, &r, "g");
	assert_string_equal(out(f), "");
	sends(f, "RCPT TO:<a@x>\r\n");
	lmtp_session_rcpt_done(f->s, f->rcpt_cookie[0] + 1, &r);
	assert_string_equal(out(f), "");
	rcpt_reply(f, 0, 250, "2.1.5");
	assert_string_equal(out(f), "250 2.1.5 Ok\r\n");
	sends(f, "DATA\r\nx\r\n.\r\n");
	out(f);
	lmtp_session_deliver_done(f->s, 7, &r, "g");
	assert_string_equal(out(f), "");
	dlv_reply(f, 0, 250, "2.0.0", "g");
	dlv_reply(f, 0, 250, "2.0.0", "g");
	assert_int_equal(strlen(out(f)) > 0, 1);
}

static void
test_smtputf8(void **state)
{
	struct fake *f = *state;

	start_mail(f, "");
	sends(f, "RCPT TO:<\xc3\xbc@x>\r\nRSET\r\nMAIL FROM:<j\xc3\xb6rg@x>\r\n"
		 "MAIL FROM:<j\xc3\xb6rg@x> SMTPUTF8\r\n");
	assert_string_equal(out(f),
		"553 5.6.7 Non-ASCII recipient address needs SMTPUTF8\r\n"
		"250 2.0.0 Ok\r\n"
		"553 5.6.7 Non-ASCII sender address needs SMTPUTF8\r\n"
		"250 2.1.0 Ok\r\n");
	rcpt(f, "\xc3\xbc@x", 250, "2.1.5");
	sends(f, "DATA\r\n.\r\n");
	assert_int_equal(f->n_dlv, 1);
	assert_non_null(strstr(f->dlv[0].prefix, "Return-Path: <j\xc3\xb6rg@x>\n"));
	assert_non_null(strstr(f->dlv[0].prefix, " with UTF8LMTP id "));
	assert_true(f->dlv[0].size == 0 && f->dlv[0].vsize == 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_transaction_mixed_results, setup, teardown),
		cmocka_unit_test_setup_teardown(test_recipient_limit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mail_size_limit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_body_too_big, setup, teardown),
		cmocka_unit_test_setup_teardown(test_timeout_while_delivering_is_not_the_clients,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_body_long_line, setup, teardown),
		cmocka_unit_test_setup_teardown(test_body_nul, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bdat_chunks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bdat_without_recipients_consumes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_backend_failures, setup, teardown),
		cmocka_unit_test_setup_teardown(test_result_normalised, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unexpected_completions, setup, teardown),
		cmocka_unit_test_setup_teardown(test_smtputf8, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
