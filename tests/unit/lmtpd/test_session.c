/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/lmtpd/test_session.c - the LMTP session state machine driven
 * without sockets (session_fake.c): greeting, command order, arguments,
 * pipelined input, command line limits, timeouts, shutdown, EOF, output
 * back-pressure.
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
test_greeting_lhlo_quit(void **state)
{
	struct fake *f = *state;

	start_with(f, false);
	assert_string_equal(out(f), "220 test.example LMTP stowd ready\r\n");
	assert_int_equal(strlen(lmtp_session_id(f->s)), 16);
	sends(f, "lhlo client.example\r\nNOOP\r\nVRFY root\r\nQUIT\r\nNOOP\r\n");
	assert_string_equal(out(f), fmt(LHLO_REPLY "250 2.0.0 Ok\r\n"
		"252 2.5.2 Cannot VRFY user, but will accept message and attempt delivery\r\n"
		"221 2.0.0 test.example closing connection\r\n", 1000000ull));
	assert_int_equal(f->closes, 1);
	assert_false(f->reading);
	assert_true(lmtp_session_closed(f->s));
}

static void
test_helo_ehlo_refused(void **state)
{
	struct fake *f = *state;

	start_with(f, false);
	out(f);
	sends(f, "HELO x\r\nEHLO x\r\nLHLO\r\nLHLO a\x01\r\n");
	assert_string_equal(out(f),
		"500 5.5.1 use LHLO (this is LMTP)\r\n"
		"500 5.5.1 use LHLO (this is LMTP)\r\n"
		"501 5.5.4 Syntax: LHLO hostname\r\n"
		"501 5.5.4 Syntax: LHLO hostname\r\n");
}

static void
test_wrong_order(void **state)
{
	struct fake *f = *state;

	start_with(f, false);
	out(f);
	sends(f, "MAIL FROM:<a@b>\r\nRCPT TO:<a@b>\r\nDATA\r\nRSET\r\n");
	assert_string_equal(out(f),
		"503 5.5.1 Send LHLO first\r\n"
		"503 5.5.1 Need MAIL before RCPT\r\n"
		"503 5.5.1 Need MAIL command\r\n"
		"250 2.0.0 Ok\r\n");
	sends(f, "LHLO c\r\n");
	out(f);
	sends(f, "RCPT TO:<a@b>\r\nDATA\r\nMAIL FROM:<a@b>\r\nMAIL FROM:<c@d>\r\n"
		 "DATA\r\nRSET x\r\nFOO\r\nRSET\r\nRCPT TO:<a@b>\r\n");
	assert_string_equal(out(f),
		"503 5.5.1 Need MAIL before RCPT\r\n"
		"503 5.5.1 Need MAIL command\r\n"
		"250 2.1.0 Ok\r\n"
		"503 5.5.1 Nested MAIL command\r\n"
		"503 5.5.1 No valid recipients\r\n"
		"501 5.5.4 Syntax: RSET\r\n"
		"500 5.5.2 Command not recognized\r\n"
		"250 2.0.0 Ok\r\n"
		"503 5.5.1 Need MAIL before RCPT\r\n");
	assert_int_equal(f->n_rcpt, 0);
}

static void
test_bad_arguments(void **state)
{
	struct fake *f = *state;

	start_mail(f, "");
	sends(f, "RCPT TO:<>\r\nRCPT TO:<a@b> NOTIFY=NEVER\r\nRCPT a@b\r\n");
	assert_string_equal(out(f),
		"501 5.1.3 Empty recipient address\r\n"
		"555 5.5.4 Unsupported RCPT parameter\r\n"
		"501 5.5.4 Syntax: RCPT TO:<address>\r\n");
	rcpt(f, "a@x.example", 250, "2.1.5");
	sends(f, "DATA now\r\n");
	assert_string_equal(out(f), "501 5.5.4 Syntax: DATA\r\n");
	sends(f, "RSET\r\nMAIL FROM:<a@b> FOO=1\r\nMAIL FROM:<a@b> SIZE=x\r\n");
	assert_string_equal(out(f), "250 2.0.0 Ok\r\n555 5.5.4 Unsupported MAIL parameter\r\n"
		"501 5.5.4 Syntax error in MAIL parameters\r\n");
}

static void
test_pipelined_one_buffer(void **state)
{
	struct fake *f = *state;
	const char *id;

	start_with(f, false);
	out(f);
	id = lmtp_session_id(f->s);
	sends(f, "LHLO c\r\nMAIL FROM:<s@x>\r\nRCPT TO:<a@x>\r\nRCPT TO:<b@x>\r\n"
		 "DATA\r\nhello\r\n.\r\nNOOP\r\nQUIT\r\n");
	assert_string_equal(out(f), fmt(LHLO_REPLY "250 2.1.0 Ok\r\n", 1000000ull));
	assert_int_equal(f->n_rcpt, 1);
	assert_true(f->reading);   /* buffered, not processed, while waiting */
	rcpt_reply(f, 0, 250, "2.1.5");
	assert_string_equal(out(f), "250 2.1.5 Ok\r\n");
	assert_int_equal(f->n_rcpt, 2);
	rcpt_reply(f, 1, 250, "2.1.5");
	assert_string_equal(out(f), "250 2.1.5 Ok\r\n"
		"354 Start mail input; end with <CRLF>.<CRLF>\r\n");
	assert_int_equal(f->n_dlv, 2);
	assert_int_equal(evbuffer_get_length(f->in), strlen("NOOP\r\nQUIT\r\n"));
	dlv_reply(f, 0, 250, "2.0.0", "g1");
	assert_string_equal(out(f), fmt("250 2.0.0 <a@x> %s Saved as g1\r\n", id));
	dlv_reply(f, 1, 250, "2.0.0", "g2");
	assert_string_equal(out(f), fmt("250 2.0.0 <b@x> %s Saved as g2\r\n"
		"250 2.0.0 Ok\r\n221 2.0.0 test.example closing connection\r\n", id));
	assert_int_equal(f->closes, 1);
	assert_string_equal(body(f, 1), "hello\n");
}

static void
test_command_line_limits(void **state)
{
	struct fake *f = *state;
	char line[4000];

	start_with(f, false);
	out(f);
	/* 2048 octets with CRLF: accepted */
	memcpy(line, "NOOP ", 5);
	memset(line + 5, 'x', 2041);
	memcpy(line + 2046, "\r\n", 3);
	sends(f, line);
	assert_string_equal(out(f), "250 2.0.0 Ok\r\n");
	/* 2049: refused, the whole line discarded */
	memset(line + 5, 'x', 2042);
	memcpy(line + 2047, "\r\n", 3);
	sends(f, line);
	assert_string_equal(out(f), "500 5.5.2 Line too long\r\n");
	/* a long line in pieces: answered as soon as the limit is passed,
	 * the rest up to its LF skipped, then the next command */
	memset(line, 'y', 3000);
	sendn(f, line, 2000);
	assert_string_equal(out(f), "");
	sendn(f, line, 3000);
	assert_string_equal(out(f), "500 5.5.2 Line too long\r\n");
	sendn(f, line, 3000);
	assert_string_equal(out(f), "");
	sends(f, "zzz\r\nNOOP\n");
	assert_string_equal(out(f), "250 2.0.0 Ok\r\n");
	sendn(f, "NO\0OP\r\nNOOP\r\n", 13);
	assert_string_equal(out(f), "500 5.5.2 NUL byte in command\r\n250 2.0.0 Ok\r\n");
	sends(f, "NOOP");
	assert_string_equal(out(f), "");
	sends(f, "\r");
	assert_string_equal(out(f), "");
	sends(f, "\n");
	assert_string_equal(out(f), "250 2.0.0 Ok\r\n");
}

/* A command line trickled in pieces keeps the deadline set when it was
 * first awaited: reads do not move it; a complete command ends it. */
static void
test_command_deadline_not_renewed_by_reads(void **state)
{
	struct fake *f = *state;

	f->cfg.command_timeout_ms = 5000;
	start_with(f, false);
	out(f);
	assert_int_equal(f->deadline_ms, 5000);
	assert_int_equal(f->deadline_sets, 1);
	sends(f, "NO");
	sends(f, "O");
	sends(f, "P");
	assert_int_equal(f->deadline_sets, 1);
	assert_string_equal(out(f), "");
	lmtp_session_timeout(f->s);
	assert_string_equal(out(f), "421 4.4.2 test.example Timeout\r\n");
	assert_int_equal(f->closes, 1);
}

static void
test_command_deadline_per_command(void **state)
{
	struct fake *f = *state;

	f->cfg.command_timeout_ms = 5000;
	start_with(f, false);
	out(f);
	sends(f, "NOOP\r\n");
	assert_string_equal(out(f), "250 2.0.0 Ok\r\n");
	/* ended by the command, armed again for the next one */
	assert_int_equal(f->deadline_sets, 2);
	assert_int_equal(f->deadline_ms, 5000);
}

static void
test_timeout(void **state)
{
	struct fake *f = *state;

	start_with(f, false);
	out(f);
	lmtp_session_timeout(f->s);
	assert_string_equal(out(f), "421 4.4.2 test.example Timeout\r\n");
	assert_int_equal(f->closes, 1);
	lmtp_session_timeout(f->s);
	assert_string_equal(out(f), "");
	assert_int_equal(f->closes, 1);
}

static void
test_shutdown_idle(void **state)
{
	struct fake *f = *state;

	start_with(f, false);
	sends(f, "LHLO c\r\n");
	out(f);
	lmtp_session_shutdown(f->s);
	assert_string_equal(out(f), "421 4.3.2 test.example Service shutting down\r\n");
	assert_int_equal(f->closes, 1);
}

static void
test_shutdown_at_start(void **state)
{
	struct fake *f = *state;

	start_with(f, true);
	assert_string_equal(out(f), "421 4.3.2 test.example Service shutting down\r\n");
	assert_int_equal(f->closes, 1);
}

static void
test_shutdown_in_transaction(void **state)
{
	struct fake *f = *state;
	const char *id;

	start_mail(f, "");
	id = lmtp_session_id(f->s);
	lmtp_session_shutdown(f->s);
	assert_string_equal(out(f), "");
	rcpt(f, "a@x", 250, "2.1.5");
	sends(f, "DATA\r\nx\r\n.\r\nNOOP\r\n");
	assert_string_equal(out(f), "354 Start mail input; end with <CRLF>.<CRLF>\r\n");
	assert_int_equal(f->closes, 0);
	dlv_reply(f, 0, 250, "2.0.0", "g");
	assert_string_equal(out(f), fmt("250 2.0.0 <a@x> %s Saved as g\r\n"
		"421 4.3.2 test.example Service shutting down\r\n", id));
	assert_int_equal(f->closes, 1);
}

static void
test_eof(void **state)
{
	struct fake *f = *state;

	start_with(f, false);
	out(f);
	evbuffer_add(f->in, "NOOP\r\nNOO", 9);
	lmtp_session_eof(f->s);
	assert_string_equal(out(f), "250 2.0.0 Ok\r\n");
	assert_int_equal(f->closes, 1);
}

static void
test_eof_in_data(void **state)
{
	struct fake *f = *state;

	start_mail(f, "");
	rcpt(f, "a@x", 250, "2.1.5");
	sends(f, "DATA\r\nsome text\r\n");
	out(f);
	lmtp_session_eof(f->s);
	assert_int_equal(f->closes, 1);
	assert_int_equal(f->n_dlv, 0);
	assert_string_equal(out(f), "");
}

static void
test_lhlo_resets_transaction(void **state)
{
	struct fake *f = *state;

	start_mail(f, "");
	rcpt(f, "a@x", 250, "2.1.5");
	sends(f, "LHLO again\r\nDATA\r\nMAIL FROM:<b@c>\r\n");
	assert_string_equal(out(f), fmt(LHLO_REPLY "503 5.5.1 Need MAIL command\r\n"
		"250 2.1.0 Ok\r\n", 1000000ull));
}

static void
test_output_backpressure(void **state)
{
	struct fake *f = *state;
	static const char reply[] = "250 2.0.0 Ok\r\n";
	size_t i, n = 20000, got = 0, len;

	start_with(f, false);
	out(f);
	for (i = 0; i < n; i++)
		evbuffer_add(f->in, "NOOP\r\n", 6);
	lmtp_session_input(f->s);
	assert_false(f->reading);
	len = evbuffer_get_length(f->out);
	assert_true(len > LMTP_OUT_MAX && len < LMTP_OUT_MAX + 100);
	while (evbuffer_get_length(f->in) > 0) {
		len = evbuffer_get_length(f->out);
		got += len / (sizeof(reply) - 1);
		evbuffer_drain(f->out, len);
		lmtp_session_output_drained(f->s);
	}
	got += evbuffer_get_length(f->out) / (sizeof(reply) - 1);
	assert_int_equal(got, n);
	assert_true(f->reading);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_greeting_lhlo_quit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_helo_ehlo_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wrong_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_arguments, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pipelined_one_buffer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_command_line_limits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_command_deadline_not_renewed_by_reads,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_command_deadline_per_command,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_shutdown_idle, setup, teardown),
		cmocka_unit_test_setup_teardown(test_shutdown_at_start, setup, teardown),
		cmocka_unit_test_setup_teardown(test_shutdown_in_transaction, setup, teardown),
		cmocka_unit_test_setup_teardown(test_eof, setup, teardown),
		cmocka_unit_test_setup_teardown(test_eof_in_data, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lhlo_resets_transaction, setup, teardown),
		cmocka_unit_test_setup_teardown(test_output_backpressure, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
