/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/lmtpd/test_parse.c - command verbs, paths (source routes,
 * quoted local parts, address literals, UTF-8), MAIL/RCPT parameter
 * tables, BDAT and LHLO arguments, trace ids, dates and trace headers.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "lmtpd/lmtpd_int.h"

int __wrap_psep_msg_send(int sock, uint16_t type, uint64_t id, const void *body,
			 size_t body_len, int fd);

/* log.c references psep_msg_send; tests never log over IPC. */
int
__wrap_psep_msg_send(int sock, uint16_t type, uint64_t id, const void *body,
		     size_t body_len, int fd)
{
	(void)sock, (void)type, (void)id, (void)body, (void)body_len, (void)fd;
	errno = EPIPE;
	return -1;
}

static void
test_verb_table(void **state)
{
	static const struct {
		const char *line;
		enum lmtp_verb verb;
		const char *args;
	} cases[] = {
		{ "LHLO mx.example", LMTP_VERB_LHLO, "mx.example" },
		{ "lhlo   mx", LMTP_VERB_LHLO, "mx" },
		{ "HeLo x", LMTP_VERB_HELO, "x" },
		{ "EHLO x", LMTP_VERB_EHLO, "x" },
		{ "MAIL FROM:<>", LMTP_VERB_MAIL, "FROM:<>" },
		{ "rcpt\tTO:<a@b>", LMTP_VERB_RCPT, "TO:<a@b>" },
		{ "DATA", LMTP_VERB_DATA, "" },
		{ "bdat 10 LAST", LMTP_VERB_BDAT, "10 LAST" },
		{ "RSET", LMTP_VERB_RSET, "" },
		{ "noop hello", LMTP_VERB_NOOP, "hello" },
		{ "QUIT", LMTP_VERB_QUIT, "" },
		{ "VRFY root", LMTP_VERB_VRFY, "root" },
		{ "MAILFROM:<>", LMTP_VERB_UNKNOWN, "" },
		{ "MAI", LMTP_VERB_UNKNOWN, "" },
		{ "", LMTP_VERB_UNKNOWN, "" },
		{ " NOOP", LMTP_VERB_UNKNOWN, "NOOP" },
		{ "STARTTLS", LMTP_VERB_STARTTLS, "" },
		{ "starttls x", LMTP_VERB_STARTTLS, "x" },
		{ "STARTTLSX", LMTP_VERB_UNKNOWN, "" },
	};
	const char *args;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(lmtp_parse_verb(cases[i].line, &args), cases[i].verb);
		assert_string_equal(args, cases[i].args);
	}
}

static void
test_path_table(void **state)
{
	static const struct {
		const char *in;
		int rc;
		const char *out;
		bool utf8;
		const char *rest;
	} cases[] = {
		{ "<a@b.example>", 0, "a@b.example", false, "" },
		{ "<>", 0, "", false, "" },
		{ "<> SIZE=1", 0, "", false, " SIZE=1" },
		{ "<@r1.example,@r2.example:u@d.example>", 0, "u@d.example", false, "" },
		{ "<@r1.example:u@d.example>", 0, "u@d.example", false, "" },
		{ "<\"john doe\"@example.com>", 0, "\"john doe\"@example.com", false, "" },
		{ "<\"a\\\"b>c\"@x.example>", 0, "\"a\\\"b>c\"@x.example", false, "" },
		{ "<first.last+tag@sub.example.org>", 0, "first.last+tag@sub.example.org", false, "" },
		{ "<a@[192.0.2.1]>", 0, "a@[192.0.2.1]", false, "" },
		{ "<a@[IPv6:2001:db8::1]>", 0, "a@[IPv6:2001:db8::1]", false, "" },
		{ "<postmaster>", 0, "postmaster", false, "" },
		{ "<j\xc3\xb6rg@example.de>", 0, "j\xc3\xb6rg@example.de", true, "" },
		{ "<\xe7\x94\xa8\xe6\x88\xb7@\xe4\xbe\x8b\xe5\xad\x90.\xe5\xb9\xbf\xe5\x91\x8a>", 0,
		  "\xe7\x94\xa8\xe6\x88\xb7@\xe4\xbe\x8b\xe5\xad\x90.\xe5\xb9\xbf\xe5\x91\x8a", true, "" },
		{ "<\xf0\x9f\x98\x80@x.example>", 0, "\xf0\x9f\x98\x80@x.example", true, "" },
		{ "<a@b>x", 0, "a@b", false, "x" },
		{ "<\xc3\x28@x.example>", -1, NULL, false, NULL },
		{ "<\xc0\xaf@x.example>", -1, NULL, false, NULL },
		{ "<\xed\xa0\x80@x.example>", -1, NULL, false, NULL },
		{ "<\xf4\x90\x80\x80@x.example>", -1, NULL, false, NULL },
		{ "<\xe2\x82@x.example>", -1, NULL, false, NULL },
		{ "<@r1.example:>", -1, NULL, false, NULL },
		{ "<@r1.example u@d>", -1, NULL, false, NULL },
		{ "<@:u@d>", -1, NULL, false, NULL },
		{ "<a b@c>", -1, NULL, false, NULL },
		{ "a@b", -1, NULL, false, NULL },
		{ "<a@b", -1, NULL, false, NULL },
		{ "<a@>", -1, NULL, false, NULL },
		{ "<a@b..c>", -1, NULL, false, NULL },
		{ "<a@b.>", -1, NULL, false, NULL },
		{ "<@a@b>", -1, NULL, false, NULL },
		{ "<a@[1.2.3.4>", -1, NULL, false, NULL },
		{ "<\"unterminated@x>", -1, NULL, false, NULL },
		{ "<a\x01@x>", -1, NULL, false, NULL },
		{ "<\"a\x01\"@x>", -1, NULL, false, NULL },
		{ "<<a@b>>", -1, NULL, false, NULL },
	};
	char out[PSEP_ADDR_MAX];
	const char *p;
	bool utf8;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		p = cases[i].in;
		utf8 = !cases[i].utf8;
		errno = 0;
		assert_int_equal(lmtp_parse_path(&p, out, sizeof(out), &utf8), cases[i].rc);
		if (cases[i].rc == 0) {
			assert_string_equal(out, cases[i].out);
			assert_int_equal(utf8, cases[i].utf8);
			assert_string_equal(p, cases[i].rest);
		} else {
			assert_int_equal(errno, EINVAL);
			assert_ptr_equal(p, cases[i].in);
		}
	}
}

static void
test_path_too_long(void **state)
{
	char in[700], out[PSEP_ADDR_MAX];
	const char *p = in;
	bool utf8;

	(void)state;
	in[0] = '<';
	memset(in + 1, 'a', 600);
	memcpy(in + 601, "@x>", 4);
	assert_int_equal(lmtp_parse_path(&p, out, sizeof(out), &utf8), -1);
	assert_int_equal(errno, ENAMETOOLONG);
	/* exactly the largest that fits */
	memset(in + 1, 'a', PSEP_ADDR_MAX - 4);
	memcpy(in + 1 + PSEP_ADDR_MAX - 4, "@x>", 4);
	p = in;
	assert_int_equal(lmtp_parse_path(&p, out, sizeof(out), &utf8), 0);
	assert_int_equal(strlen(out), PSEP_ADDR_MAX - 2);
}

static void
test_mail_table(void **state)
{
	static const struct {
		const char *args;
		const char *reply;   /* prefix of the error reply, NULL = ok */
		const char *addr;
		bool has_size;
		uint64_t size;
		enum lmtp_body_type body;
		bool smtputf8;
	} cases[] = {
		{ "FROM:<a@b.example>", NULL, "a@b.example", false, 0, LMTP_BODY_NONE, false },
		{ "from:<a@b.example>", NULL, "a@b.example", false, 0, LMTP_BODY_NONE, false },
		{ "FROM: <a@b.example>", NULL, "a@b.example", false, 0, LMTP_BODY_NONE, false },
		{ "FROM:<>", NULL, "", false, 0, LMTP_BODY_NONE, false },
		{ "FROM:<> SIZE=100", NULL, "", true, 100, LMTP_BODY_NONE, false },
		{ "FROM:<a@b> size=0  BODY=8BITMIME", NULL, "a@b", true, 0, LMTP_BODY_8BITMIME, false },
		{ "FROM:<a@b> BODY=7bit", NULL, "a@b", false, 0, LMTP_BODY_7BIT, false },
		{ "FROM:<a@b> SMTPUTF8", NULL, "a@b", false, 0, LMTP_BODY_NONE, true },
		{ "FROM:<a@b> SMTPUTF8 BODY=8BITMIME SIZE=18446744073709551615", NULL, "a@b",
		  true, UINT64_MAX, LMTP_BODY_8BITMIME, true },
		{ "FROM:<@r:a@b>", NULL, "a@b", false, 0, LMTP_BODY_NONE, false },
		{ "FROM:<a@b> SIZE=abc", "501 5.5.4", NULL, false, 0, LMTP_BODY_NONE, false },
		{ "FROM:<a@b> SIZE=", "501 5.5.4", NULL, false, 0, LMTP_BODY_NONE, false },
		{ "FROM:<a@b> SIZE=1 SIZE=2", "501 5.5.4", NULL, false, 0, LMTP_BODY_NONE, false },
		{ "FROM:<a@b> SIZE=18446744073709551616", "501 5.5.4", NULL, false, 0, LMTP_BODY_NONE, false },
		{ "FROM:<a@b> SIZE=-1", "501 5.5.4", NULL, false, 0, LMTP_BODY_NONE, false },
		{ "FROM:<a@b> BODY=BINARYMIME", "555 5.5.4", NULL, false, 0, LMTP_BODY_NONE, false },
		{ "FROM:<a@b> BODY=7BIT BODY=7BIT", "501 5.5.4", NULL, false, 0, LMTP_BODY_NONE, false },
		{ "FROM:<a@b> SMTPUTF8=yes", "501 5.5.4", NULL, false, 0, LMTP_BODY_NONE, false },
		{ "FROM:<a@b> FOO=bar", "555 5.5.4", NULL, false, 0, LMTP_BODY_NONE, false },
		{ "FROM:<a@b> AUTH=<>", "555 5.5.4", NULL, false, 0, LMTP_BODY_NONE, false },
		{ "FROM:<a@b> RET=HDRS", "555 5.5.4", NULL, false, 0, LMTP_BODY_NONE, false },
		{ "FROM:<a@b> =x", "501 5.5.4", NULL, false, 0, LMTP_BODY_NONE, false },
		{ "FROM:<a@b> SIZE=1=2", "501 5.5.4", NULL, false, 0, LMTP_BODY_NONE, false },
		{ "FROM:a@b", "501 5.5.4", NULL, false, 0, LMTP_BODY_NONE, false },
		{ "FROM", "501 5.5.4", NULL, false, 0, LMTP_BODY_NONE, false },
		{ "", "501 5.5.4", NULL, false, 0, LMTP_BODY_NONE, false },
		{ "TO:<a@b>", "501 5.5.4", NULL, false, 0, LMTP_BODY_NONE, false },
		{ "FROM:<a@b>junk", "501 5.1.7", NULL, false, 0, LMTP_BODY_NONE, false },
		{ "FROM:<a b@c>", "501 5.1.7", NULL, false, 0, LMTP_BODY_NONE, false },
	};
	struct lmtp_mail_args m;
	const char *reply;
	size_t i;
	int rc;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		reply = NULL;
		rc = lmtp_parse_mail(cases[i].args, &m, &reply);
		if (cases[i].reply != NULL) {
			assert_int_equal(rc, -1);
			assert_non_null(reply);
			assert_memory_equal(reply, cases[i].reply, strlen(cases[i].reply));
			continue;
		}
		assert_int_equal(rc, 0);
		assert_string_equal(m.address, cases[i].addr);
		assert_int_equal(m.has_size, cases[i].has_size);
		assert_true(m.size == cases[i].size);
		assert_int_equal(m.body, cases[i].body);
		assert_int_equal(m.smtputf8, cases[i].smtputf8);
	}
}

static void
test_rcpt_table(void **state)
{
	static const struct {
		const char *args;
		const char *reply;
		const char *addr;
		bool utf8;
	} cases[] = {
		{ "TO:<a@b.example>", NULL, "a@b.example", false },
		{ "to: <a@b.example>", NULL, "a@b.example", false },
		{ "TO:<@relay.example:a@b.example>", NULL, "a@b.example", false },
		{ "TO:<\xc3\xa9@b.example>", NULL, "\xc3\xa9@b.example", true },
		{ "TO:<>", "501 5.1.3", NULL, false },
		{ "TO:<a@b> NOTIFY=NEVER", "555 5.5.4", NULL, false },
		{ "TO:<a@b> ORCPT=rfc822;a@b", "555 5.5.4", NULL, false },
		{ "TO:<a@b> =", "501 5.5.4", NULL, false },
		{ "TO:a@b", "501 5.5.4", NULL, false },
		{ "FROM:<a@b>", "501 5.5.4", NULL, false },
		{ "TO:<a@@b>", "501 5.1.3", NULL, false },
		{ "TO:<a@b>x", "501 5.1.3", NULL, false },
	};
	struct lmtp_rcpt_args r;
	const char *reply;
	size_t i;
	int rc;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		reply = NULL;
		rc = lmtp_parse_rcpt(cases[i].args, &r, &reply);
		if (cases[i].reply != NULL) {
			assert_int_equal(rc, -1);
			assert_memory_equal(reply, cases[i].reply, strlen(cases[i].reply));
			continue;
		}
		assert_int_equal(rc, 0);
		assert_string_equal(r.address, cases[i].addr);
		assert_int_equal(r.utf8, cases[i].utf8);
	}
}

static void
test_bdat_table(void **state)
{
	static const struct {
		const char *args;
		int rc;
		uint64_t size;
		bool last;
	} cases[] = {
		{ "100", 0, 100, false },
		{ "100 LAST", 0, 100, true },
		{ "0 last", 0, 0, true },
		{ "7  LAST", 0, 7, true },
		{ "18446744073709551615", 0, UINT64_MAX, false },
		{ "18446744073709551616", -1, 0, false },
		{ "", -1, 0, false },
		{ "abc", -1, 0, false },
		{ "-1", -1, 0, false },
		{ "10LAST", -1, 0, false },
		{ "10 FIRST", -1, 0, false },
		{ "10 LAST x", -1, 0, false },
		{ "10 LASTX", -1, 0, false },
		{ "0x10", -1, 0, false },
	};
	uint64_t size;
	bool last;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(lmtp_parse_bdat(cases[i].args, &size, &last), cases[i].rc);
		if (cases[i].rc == 0) {
			assert_true(size == cases[i].size);
			assert_int_equal(last, cases[i].last);
		}
	}
}

static void
test_lhlo(void **state)
{
	char out[LMTP_LHLO_MAX], big[400];

	(void)state;
	assert_int_equal(lmtp_parse_lhlo("mx.example.com", out, sizeof(out)), 0);
	assert_string_equal(out, "mx.example.com");
	assert_int_equal(lmtp_parse_lhlo("[192.0.2.1] extra words", out, sizeof(out)), 0);
	assert_string_equal(out, "[192.0.2.1]");
	assert_int_equal(lmtp_parse_lhlo("b\xc3\xbc" "cher.example", out, sizeof(out)), 0);
	assert_int_equal(lmtp_parse_lhlo("", out, sizeof(out)), -1);
	assert_int_equal(lmtp_parse_lhlo("a\x01z", out, sizeof(out)), -1);
	assert_int_equal(lmtp_parse_lhlo("a\xffz", out, sizeof(out)), -1);
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(lmtp_parse_lhlo(big, out, sizeof(out)), -1);
}

static void
test_utf8(void **state)
{
	static const struct {
		const char *s;
		bool ok;
	} cases[] = {
		{ "plain", true },
		{ "\xc3\xa9", true },
		{ "\xe2\x82\xac", true },
		{ "\xf0\x90\x8d\x88", true },
		{ "\xf4\x8f\xbf\xbf", true },
		{ "\x80", false },
		{ "\xc1\xbf", false },
		{ "\xe0\x80\xaf", false },
		{ "\xed\xbf\xbf", false },
		{ "\xf0\x80\x80\xaf", false },
		{ "\xf5\x80\x80\x80", false },
		{ "\xc3", false },
		{ "\xe2\x28\xa1", false },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_int_equal(lmtp_utf8_valid((const unsigned char *)cases[i].s,
						 strlen(cases[i].s)), cases[i].ok);
}

static void
test_dates(void **state)
{
	static const struct {
		int64_t t;
		const char *date;
	} cases[] = {
		{ 0, "Thu, 01 Jan 1970 00:00:00 +0000" },
		{ 951782400, "Tue, 29 Feb 2000 00:00:00 +0000" },
		{ 1709633472, "Tue, 05 Mar 2024 10:11:12 +0000" },
		{ -1, "Wed, 31 Dec 1969 23:59:59 +0000" },
		{ 4102444799, "Thu, 31 Dec 2099 23:59:59 +0000" },
		{ 253402300799, "Fri, 31 Dec 9999 23:59:59 +0000" },
	};
	char buf[64];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_string_equal(lmtp_rfc5322_date(cases[i].t, buf, sizeof(buf)),
				    cases[i].date);
}

static void
test_trace_id(void **state)
{
	char a[PSEP_SESSION_MAX], b[PSEP_SESSION_MAX];
	size_t i;

	(void)state;
	lmtp_trace_id(a, sizeof(a));
	lmtp_trace_id(b, sizeof(b));
	assert_int_equal(strlen(a), 16);
	assert_string_not_equal(a, b);
	for (i = 0; a[i] != '\0'; i++)
		assert_non_null(strchr("0123456789abcdefghjkmnpqrstvwxyz", a[i]));
}

static void
test_trace_prefix(void **state)
{
	struct lmtp_trace t = {
		.sender = "s@x.example", .rcpt = "r@y.example", .lhlo = "mx(evil)\"",
		.peer = "[192.0.2.7]", .host = "store.example", .session = "abc",
		.smtputf8 = false, .time = 1709633472,
	};
	char buf[PSEP_PREFIX_MAX];
	int n;

	(void)state;
	n = lmtp_trace_prefix(&t, buf, sizeof(buf));
	assert_string_equal(buf,
		"Return-Path: <s@x.example>\n"
		"Delivered-To: r@y.example\n"
		"Received: from mx_evil__ ([192.0.2.7])\n"
		"\tby store.example (stowd) with LMTP id abc\n"
		"\tfor <r@y.example>; Tue, 05 Mar 2024 10:11:12 +0000\n");
	assert_int_equal(n, (int)strlen(buf));
	t.sender = "";
	t.smtputf8 = true;
	lmtp_trace_prefix(&t, buf, sizeof(buf));
	assert_non_null(strstr(buf, "Return-Path: <>\n"));
	assert_non_null(strstr(buf, " with UTF8LMTP id abc\n"));
	assert_int_equal(lmtp_trace_prefix(&t, buf, 40), -1);
	assert_int_equal(errno, ENOSPC);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_verb_table),
		cmocka_unit_test(test_path_table),
		cmocka_unit_test(test_path_too_long),
		cmocka_unit_test(test_mail_table),
		cmocka_unit_test(test_rcpt_table),
		cmocka_unit_test(test_bdat_table),
		cmocka_unit_test(test_lhlo),
		cmocka_unit_test(test_utf8),
		cmocka_unit_test(test_dates),
		cmocka_unit_test(test_trace_id),
		cmocka_unit_test(test_trace_prefix),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
