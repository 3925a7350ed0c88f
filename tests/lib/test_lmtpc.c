/* SPDX-License-Identifier: MIT */
/*
 * tests/lib/test_lmtpc.c - self-test of the LMTP client and the transcript
 * runner against tests/lib/fake_lmtpd, and a lint of every .lmtp file in
 * tests/integration/cases.
 *
 * Runs in:  the unit suite, as any user, no stowd needed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "tests/lib/fake_lmtpd.h"
#include "tests/lib/lmtpc.h"
#include "tests/lib/transcript.h"

static struct fake_lmtpd fake;

static int
group_setup(void **state)
{
	(void)state;
	return fake_lmtpd_start(&fake);
}

static int
group_teardown(void **state)
{
	(void)state;
	fake_lmtpd_stop(&fake);
	return 0;
}

static struct lmtpc *
open_conn(const char *addr)
{
	struct lmtpc *c = NULL;
	struct lmtpc_reply r;

	assert_int_equal(lmtpc_connect(addr, 2000, &c), 0);
	assert_int_equal(lmtpc_greeting(c, &r), 0);
	assert_int_equal(r.code, 220);
	return c;
}

static void
test_connect_each_address_family(void **state)
{
	const char *addrs[] = { fake.unix_addr, fake.tcp4_addr, fake.tcp6_addr };
	struct lmtpc_reply r;

	(void)state;
	for (size_t i = 0; i < 3; i++) {
		struct lmtpc *c;

		if (addrs[i][0] == '\0')
			continue;    /* no IPv6 here */
		c = open_conn(addrs[i]);
		assert_int_equal(lmtpc_cmd(c, &r, "NOOP"), 0);
		assert_int_equal(r.code, 250);
		assert_string_equal(r.enhanced, "2.0.0");
		lmtpc_free(&c);
		assert_null(c);
	}
}

static void
test_bad_addresses_are_einval(void **state)
{
	const char *bad[] = { "udp:1.2.3.4:5", "tcp:1.2.3.4", "tcp:[::1]25",
			      "tcp:host.example:25", "tcp:127.0.0.1:0",
			      "tcp:127.0.0.1:70000", "unix:", "" };
	struct lmtpc *c = NULL;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		errno = 0;
		assert_int_equal(lmtpc_connect(bad[i], 500, &c), -1);
		assert_int_equal(errno, EINVAL);
	}
}

static void
test_multiline_reply_is_one_reply(void **state)
{
	struct lmtpc *c = open_conn(fake.unix_addr);
	struct lmtpc_reply r;

	(void)state;
	assert_int_equal(lmtpc_lhlo(c, "client.example", &r), 0);
	assert_int_equal(r.code, 250);
	assert_int_equal(r.nlines, 4);
	assert_string_equal(r.text, "250-fake.example\n250-PIPELINING\n"
			    "250-CHUNKING\n250 ENHANCEDSTATUSCODES");
	assert_string_equal(r.enhanced, "");
	assert_int_equal(lmtpc_cmd(c, &r, "NOOP"), 0);
	assert_int_equal(r.nlines, 1);
	lmtpc_free(&c);
}

static void
test_data_dot_stuffs_and_reads_one_reply_per_rcpt(void **state)
{
	static const char body[] = ".leading dot\r\nmiddle\r\n..two\r\n.\r\nend";
	static const char unstuffed[] = ".leading dot\r\nmiddle\r\n..two\r\n.\r\nend\r\n";
	struct lmtpc *c = open_conn(fake.tcp4_addr);
	struct lmtpc_reply r, dr, rr[2];
	char want[128];

	(void)state;
	assert_int_equal(lmtpc_mail(c, "", &r), 0);
	assert_int_equal(lmtpc_rcpt(c, "a@x", &r), 0);
	assert_int_equal(r.code, 250);
	assert_int_equal(lmtpc_rcpt(c, "unknown@x", &r), 0);
	assert_int_equal(r.code, 550);
	assert_string_equal(r.enhanced, "5.1.1");
	assert_int_equal(lmtpc_rcpt(c, "b@x", &r), 0);
	assert_int_equal(lmtpc_data(c, body, strlen(body), &dr, rr, 2), 0);
	assert_int_equal(dr.code, 354);
	snprintf(want, sizeof(want), "250 2.0.0 <a@x> len=%zu hash=%08x",
		 strlen(unstuffed), (unsigned)fake_lmtpd_hash(unstuffed, strlen(unstuffed)));
	assert_string_equal(rr[0].text, want);
	snprintf(want, sizeof(want), "250 2.0.0 <b@x> len=%zu hash=%08x",
		 strlen(unstuffed), (unsigned)fake_lmtpd_hash(unstuffed, strlen(unstuffed)));
	assert_string_equal(rr[1].text, want);
	lmtpc_free(&c);
}

static void
test_dot_stuff_table(void **state)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{ "", "\r\n.\r\n" },
		{ "a\r\n", "a\r\n.\r\n" },
		{ "a", "a\r\n.\r\n" },
		{ ".", "..\r\n.\r\n" },
		{ "a\r\n.b\r\n", "a\r\n..b\r\n.\r\n" },
		{ "a\n.b\r\n", "a\n..b\r\n.\r\n" },      /* after a bare LF too */
		{ "a.\r\nb.c\r\n", "a.\r\nb.c\r\n.\r\n" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t len;
		char *s = lmtpc_dot_stuff(cases[i].in, strlen(cases[i].in), &len);

		assert_non_null(s);
		assert_int_equal(len, strlen(cases[i].out));
		assert_memory_equal(s, cases[i].out, len);
		free(s);
	}
}

static void
test_bdat_chunks(void **state)
{
	struct lmtpc *c = open_conn(fake.unix_addr);
	struct lmtpc_reply r;
	char want[128];

	(void)state;
	assert_int_equal(lmtpc_mail(c, "s@x", &r), 0);
	assert_int_equal(lmtpc_rcpt(c, "a@x", &r), 0);
	assert_int_equal(lmtpc_bdat(c, "hello ", 6, false, &r, 1), 0);
	assert_int_equal(r.code, 250);
	assert_int_equal(lmtpc_bdat(c, "", 0, false, &r, 1), 0);
	assert_int_equal(lmtpc_bdat(c, "world\r\n", 7, true, &r, 1), 0);
	snprintf(want, sizeof(want), "250 2.0.0 <a@x> len=13 hash=%08x",
		 (unsigned)fake_lmtpd_hash("hello world\r\n", 13));
	assert_string_equal(r.text, want);
	lmtpc_free(&c);
}

static int64_t
ms_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
test_silent_server_times_out(void **state)
{
	struct lmtpc *c = open_conn(fake.unix_addr);
	struct lmtpc_reply r;
	int64_t t0;

	(void)state;
	lmtpc_set_timeout(c, 200);
	t0 = ms_now();
	assert_int_equal(lmtpc_cmd(c, &r, "STALL"), -1);
	assert_int_equal(errno, ETIMEDOUT);
	assert_true(ms_now() - t0 >= 150);
	assert_true(ms_now() - t0 < 2000);
	lmtpc_free(&c);
}

static void
test_bad_replies_are_errors(void **state)
{
	static const struct {
		const char *cmd;
		int err;
	} cases[] = {
		{ "GARBAGE", EPROTO },
		{ "MIXED", EPROTO },
		{ "LONGLINE", EMSGSIZE },
		{ "CLOSE", ECONNRESET },
	};
	struct lmtpc_reply r;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct lmtpc *c = open_conn(fake.unix_addr);

		errno = 0;
		assert_int_equal(lmtpc_cmd(c, &r, "%s", cases[i].cmd), -1);
		assert_int_equal(errno, cases[i].err);
		lmtpc_free(&c);
	}
}

static void
test_quit_then_closed(void **state)
{
	struct lmtpc *c = open_conn(fake.unix_addr);
	struct lmtpc_reply r;

	(void)state;
	assert_int_equal(lmtpc_cmd(c, &r, "QUIT"), 0);
	assert_int_equal(r.code, 221);
	assert_int_equal(lmtpc_wait_closed(c, 2000), 0);
	lmtpc_free(&c);

	c = open_conn(fake.unix_addr);
	errno = 0;
	assert_int_equal(lmtpc_wait_closed(c, 100), -1);
	assert_int_equal(errno, ETIMEDOUT);
	lmtpc_free(&c);
}

static void
test_read_line_truncates_long_lines(void **state)
{
	struct lmtpc *c;
	char line[16];
	size_t len;

	(void)state;
	c = open_conn(fake.unix_addr);
	assert_int_equal(lmtpc_sendf(c, "ECHO a\tb\r\n"), 0);
	assert_int_equal(lmtpc_read_line(c, line, sizeof(line), &len), 0);
	assert_string_equal(line, "250 a\\x09b");
	assert_int_equal(len, 10);
	/* A long line is truncated to the buffer, len says the truth. */
	assert_int_equal(lmtpc_sendf(c, "ECHO 0123456789abcdefghij\r\n"), 0);
	assert_int_equal(lmtpc_read_line(c, line, sizeof(line), &len), 0);
	assert_string_equal(line, "250 0123456789a");
	assert_int_equal(len, 24);
	lmtpc_free(&c);
}

/* ---- transcripts ------------------------------------------------------ */

static const struct transcript_var vars[] = {
	{ "USER1", "a@x" },
	{ "DOMAIN", "x" },
	{ "DOTTY", "a.b" },
};

static int directive_calls;

static int
directive(struct transcript_ctx *ctx, const char *line, char *err, size_t errsize)
{
	(void)ctx;
	directive_calls++;
	if (strcmp(line, "!check a@x") == 0)
		return 0;
	snprintf(err, errsize, "no such check");
	return -1;
}

static int
run(const char *text, char *err, size_t errsize)
{
	struct transcript_ctx ctx = { .vars = vars, .nvars = 3,
				      .directive = directive };
	int rc;

	ctx.conn = NULL;
	if (lmtpc_connect(fake.unix_addr, 1000, &ctx.conn) < 0)
		return -2;
	rc = transcript_run_text(&ctx, "t.lmtp", text, err, errsize);
	lmtpc_free(&ctx.conn);
	return rc;
}

static void
test_transcript_passes(void **state)
{
	char err[TRANSCRIPT_ERR_MAX];
	const char *t =
		"# a comment\n"
		"S: 220 fake\n"
		"\n"
		"C: LHLO me\n"
		"C: MAIL FROM:<>\n"
		"C: RCPT TO:<${USER1}>\n"
		"C: RCPT TO:<unknown@${DOMAIN}>\n"
		"C: DATA\n"
		"S~ ^250-PIPELINING$\n"
		"S: 250 2.1.0\n"
		"S: 250 2.1.5\n"
		"S~ ^550 5\\.1\\.1 <unknown@${DOMAIN}>\n"
		"S: 354\n"
		"C* 3 ..x\\r\\n\n"
		"C+ tail\\r\\n.\n"
		"C: \n"
		"S~ ^250 2\\.0\\.0 <${USER1}> len=18 hash=[0-9a-f]{8}$\r\n"
		"C: ECHO nul\\0x\\x41\\\\\n"
		"S: 250 nul\\x00xA\\x5c\n"
		"!check ${USER1}\n"
		"!timeout 300\n"
		"C: QUIT\n"
		"S: 221\n"
		"!close\n";

	(void)state;
	directive_calls = 0;
	assert_int_equal(run(t, err, sizeof(err)), 0);
	assert_string_equal(err, "");
	assert_int_equal(directive_calls, 1);
}

static void
test_transcript_reports_first_mismatch(void **state)
{
	static const struct {
		const char *text;
		const char *err;
	} cases[] = {
		{ "S: 220\nC: NOOP\nS: 251\n",
		  "t.lmtp:3: expected a reply starting with \"251\", got "
		  "\"250 2.0.0 Ok\"" },
		{ "S: 220\nC: FOO\nS~ ^250\n",
		  "t.lmtp:3: expected a reply matching /^250/, got "
		  "\"500 5.5.1 Unknown command\"" },
		{ "S: 220\n!timeout 100\nC: STALL\nS: 250\n",
		  "t.lmtp:4: expected a reply starting with \"250\", got timeout "
		  "(no answer from the server) after 100 ms" },
		{ "S: 220\nC: CLOSE\nS: 250\n",
		  "t.lmtp:3: expected a reply starting with \"250\", got "
		  "connection closed by the server" },
		{ "S: 220\n!timeout 100\n!close\n",
		  "t.lmtp:3: expected the server to close, got timeout "
		  "(no answer from the server) after 100 ms" },
		{ "S~ ^220 ${DOTTY}\n",
		  "t.lmtp:1: expected a reply matching /^220 a\\.b/, got "
		  "\"220 fake.example LMTP ready\"" },
		{ "S: 220\nC: ${NOPE}\n", "t.lmtp:2: unknown variable ${NOPE}" },
		{ "S: 220\nC: \\q\n", "t.lmtp:2: unknown escape \\q" },
		{ "S: 220\nC: \\x4\n", "t.lmtp:2: bad \\x escape" },
		{ "S: 220\nX: y\n", "t.lmtp:2: cannot parse line \"X: y\"" },
		{ "S: 220\n!check nope\n", "t.lmtp:2: !check nope: no such check" },
		{ "S: 220\nC* x y\n", "t.lmtp:2: C* needs a count and a text" },
		{ "S: 220\nS~ (\n", "t.lmtp:2: bad regex /(/: " },
	};
	char err[TRANSCRIPT_ERR_MAX];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(run(cases[i].text, err, sizeof(err)), -1);
		if (strncmp(err, cases[i].err, strlen(cases[i].err)) != 0)
			fail_msg("case %zu: got \"%s\"\nwant \"%s\"", i, err, cases[i].err);
	}
}

static void
test_transcript_pipelined_block_is_one_write(void **state)
{
	char err[TRANSCRIPT_ERR_MAX];
	/* All commands go out before any reply is read: the replies come
	 * back in order however the server's reads are split. */
	const char *t =
		"C: NOOP\nC: NOOP\nC: RSET\nC: FOO\n"
		"S: 220\nS: 250\nS: 250\nS: 250\nS: 500\n";

	(void)state;
	assert_int_equal(run(t, err, sizeof(err)), 0);
}

static void
test_transcript_config_lines(void **state)
{
	char path[] = "/tmp/tscript.XXXXXX";
	int fd = mkstemp(path);
	const char *text = "# x\n!config a = 1\nC: NOOP\n!config b = two words\r\n";
	char *conf = NULL;

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	assert_int_equal(transcript_config(path, &conf), 0);
	assert_string_equal(conf, "a = 1\nb = two words\n");
	free(conf);
	unlink(path);
}

/* Every case file parses, with the variables test_transcripts.c defines. */
static void
test_cases_lint(void **state)
{
	static const struct transcript_var cvars[] = {
		{ "USER1", "u1@example.org" }, { "USER2", "u2@example.org" },
		{ "USER3", "u3@example.org" }, { "USER4", "u4@example.org" },
		{ "USER5", "u5@example.org" }, { "USER6", "u6@example.org" },
		{ "UNKNOWN", "nosuchuser@example.org" },
		{ "USER1_TAGGED", "u1+lists@example.org" },
		{ "DOMAIN", "example.org" }, { "HOSTNAME", "stowd-test.example" },
	};
	struct transcript_ctx ctx = { .vars = cvars,
				      .nvars = sizeof(cvars) / sizeof(cvars[0]) };
	const char *dir = getenv("STOWD_CASES_DIR");
	char err[TRANSCRIPT_ERR_MAX], path[512];
	struct dirent *de;
	DIR *d;
	int n = 0;

	(void)state;
	if (dir == NULL) {
		/* not skip(): meson reads cmocka's "not ok # SKIP" as a failure */
		fprintf(stderr, "STOWD_CASES_DIR not set, no cases checked\n");
		return;
	}
	d = opendir(dir);
	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		size_t l = strlen(de->d_name);

		if (l < 6 || strcmp(de->d_name + l - 5, ".lmtp") != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (transcript_lint_file(&ctx, path, err, sizeof(err)) != 0)
			fail_msg("%s", err);
		n++;
	}
	closedir(d);
	assert_true(n > 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_connect_each_address_family),
		cmocka_unit_test(test_bad_addresses_are_einval),
		cmocka_unit_test(test_multiline_reply_is_one_reply),
		cmocka_unit_test(test_data_dot_stuffs_and_reads_one_reply_per_rcpt),
		cmocka_unit_test(test_dot_stuff_table),
		cmocka_unit_test(test_bdat_chunks),
		cmocka_unit_test(test_silent_server_times_out),
		cmocka_unit_test(test_bad_replies_are_errors),
		cmocka_unit_test(test_quit_then_closed),
		cmocka_unit_test(test_read_line_truncates_long_lines),
		cmocka_unit_test(test_transcript_passes),
		cmocka_unit_test(test_transcript_reports_first_mismatch),
		cmocka_unit_test(test_transcript_pipelined_block_is_one_write),
		cmocka_unit_test(test_transcript_config_lines),
		cmocka_unit_test(test_cases_lint),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
