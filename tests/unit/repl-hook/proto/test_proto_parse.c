/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/repl-hook/proto/test_proto_parse.c - the command parser of the
 * replication protocol: every command line of doc/replication-protocol.md
 * §6, §8, §11 and §12, tags and frame flags.  The value rules of §4 and
 * the fmt -> parse round trips are in test_proto_values.c (same program).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "repl-hook/proto/proto.h"
#include "tests/unit/repl-hook/proto/test_proto_parse.h"

/* A frame for line; a literal of size lit if lit >= 0. */
static void
mkframe(struct repl_frame *f, const char *line, long long lit)
{
	memset(f, 0, sizeof *f);
	f->len = strlen(line);
	assert_true(f->len <= REPL_MAXLINE);
	memcpy(f->line, line, f->len);
	f->literal_fd = -1;
	if (lit >= 0) {
		f->has_literal = true;
		f->literal_size = (uint64_t)lit;
	}
}

enum repl_parse_result
parse(const char *line, long long lit,
      struct repl_command *c, const char **code,
      const char **text)
{
	struct repl_frame *f = malloc(sizeof *f);
	enum repl_parse_result r;

	assert_non_null(f);
	mkframe(f, line, lit);
	r = repl_parse_command(f, c, code, text);
	free(f);
	return r;
}

/* Expect BAD/NO with code; returns nothing. */
static void
expect_err(const char *line, long long lit, enum repl_parse_result want,
	   const char *want_code)
{
	struct repl_command c;
	const char *code, *text;
	enum repl_parse_result r = parse(line, lit, &c, &code, &text);

	if (r != want || strcmp(code, want_code) != 0)
		print_error("line: %s -> %d %s %s\n", line, r, code, text);
	assert_int_equal(r, want);
	assert_string_equal(code, want_code);
	assert_non_null(text);
	assert_true(strlen(text) > 0);
}

void
expect_ok(const char *line, long long lit, struct repl_command *c)
{
	const char *code, *text;
	enum repl_parse_result r = parse(line, lit, c, &code, &text);

	if (r != REPL_P_OK)
		print_error("line: %s -> %d %s %s\n", line, r, code, text);
	assert_int_equal(r, REPL_P_OK);
}

/* ---- examples of the document ------------------------------------------- */

static void
test_hello_noop_logout(void **state)
{
	struct repl_command c;

	(void)state;
	expect_ok("a1 HELLO 1 a.example", -1, &c);
	assert_string_equal(c.tag, "a1");
	assert_int_equal(c.name, REPL_CMD_HELLO);
	assert_int_equal(c.version, 1);
	assert_string_equal(c.server_id, "a.example");
	expect_ok("e2 HELLO 2 a.example", -1, &c);
	assert_int_equal(c.version, 2);
	expect_ok("x hello 65535 \"a\\\\b\"", -1, &c);
	assert_int_equal(c.version, 65535);
	assert_string_equal(c.server_id, "a\\b");
	expect_err("x HELLO 1 \"a b\"", -1, REPL_P_BAD, "SYNTAX");
	expect_ok("a9 NOOP", -1, &c);
	assert_int_equal(c.name, REPL_CMD_NOOP);
	assert_string_equal(c.tag, "a9");
	expect_ok("a10 LOGOUT", -1, &c);
	assert_int_equal(c.name, REPL_CMD_LOGOUT);
	expect_ok("a10 lOgOuT", -1, &c);
	assert_int_equal(c.name, REPL_CMD_LOGOUT);

	expect_err("a1 HELLO 0 a.example", -1, REPL_P_BAD, "SYNTAX");
	expect_err("a1 HELLO 65536 a.example", -1, REPL_P_BAD, "SYNTAX");
	expect_err("a1 HELLO 01 a.example", -1, REPL_P_BAD, "SYNTAX");
	expect_err("a1 HELLO 1", -1, REPL_P_BAD, "SYNTAX");
	expect_err("a1 HELLO 1 a.example x", -1, REPL_P_BAD, "SYNTAX");
	expect_err("a1 HELLO 1  a.example", -1, REPL_P_BAD, "SYNTAX");
	expect_err("a9 NOOP ", -1, REPL_P_BAD, "SYNTAX");
	expect_err("a9 NOOP x", -1, REPL_P_BAD, "SYNTAX");
	expect_err("a9 NOOP {3}", 3, REPL_P_BAD, "SYNTAX");
	expect_err("a9 NOOP", 3, REPL_P_BAD, "SYNTAX");
}

static void
test_save_examples(void **state)
{
	struct repl_command c;

	(void)state;
	expect_ok("a2 SAVE a.example 17 alice INBOX " G1 " 42 1718000000 () {61}", 61, &c);
	assert_int_equal(c.name, REPL_CMD_OP);
	assert_int_equal(c.cmd.op, PSEP_REPL_SAVE);
	assert_string_equal(c.cmd.origin, "a.example");
	assert_int_equal(c.cmd.modseq, 17);
	assert_string_equal(c.cmd.user, "alice");
	assert_string_equal(c.cmd.mailbox, "INBOX");
	assert_string_equal(c.cmd.guid, G1);
	assert_int_equal(c.cmd.uid_hint, 42);
	assert_int_equal(c.cmd.date, 1718000000);
	assert_string_equal(c.cmd.flags, "");
	assert_int_equal(c.cmd.body_size, 61);
	assert_string_equal(c.cmd.peer, "");

	expect_ok("a2 SAVE a.example 17 alice INBOX " G1 " 42 1718000000 (\\Seen) {61}", 61, &c);
	assert_string_equal(c.cmd.flags, "\\Seen");
	expect_ok("r9 SAVE a.example 18 alice INBOX " G3 " 3 1718003600 () {1204}", 1204, &c);
	assert_int_equal(c.cmd.uid_hint, 3);
	assert_int_equal(c.cmd.body_size, 1204);
	/* local producer: modseq 0 is accepted by the parser */
	expect_ok("p1 SAVE b.example 0 carol Sent " GS " 0 1718009000 (\\Seen) {480}", 480, &c);
	assert_int_equal(c.cmd.modseq, 0);
	assert_string_equal(c.cmd.mailbox, "Sent");
	assert_int_equal(c.cmd.uid_hint, 0);
	expect_ok("j1 SAVE a.example 18 alice INBOX 0190f3a2c2bb7a3b0000111122223333 4 1718001000 (\\Flagged) {2210}",
		  2210, &c);
	assert_string_equal(c.cmd.flags, "\\Flagged");
	expect_ok("e9 SAVE a.example 21 nosuchuser INBOX " GS " 0 1718009000 () {480}", 480, &c);
	assert_string_equal(c.cmd.user, "nosuchuser");
	expect_ok("y4 SAVE a.example 17 alice INBOX " G3 " 3 1718003600 () {0}", 0, &c);
	assert_int_equal(c.cmd.body_size, 0);
}

static void
test_save_literal_rules(void **state)
{
	(void)state;
	/* SAVE requires its literal, with the announced size */
	expect_err("a2 SAVE a.example 17 alice INBOX " G1 " 42 1718000000 () {61}", -1,
		   REPL_P_BAD, "SYNTAX");
	expect_err("a2 SAVE a.example 17 alice INBOX " G1 " 42 1718000000 () {61}", 60,
		   REPL_P_BAD, "SYNTAX");
	expect_err("a2 SAVE a.example 17 alice INBOX " G1 " 42 1718000000 ()", -1,
		   REPL_P_BAD, "SYNTAX");
	expect_err("a2 SAVE a.example 17 alice INBOX " G1 " 42 1718000000 () {061}", 61,
		   REPL_P_BAD, "SYNTAX");
	expect_err("a2 SAVE a.example 17 alice INBOX " G1 " 42 1718000000 (){61}", 61,
		   REPL_P_BAD, "SYNTAX");
	expect_err("a2 SAVE a.example 17 alice INBOX " G1 " 42 1718000000 () {61} ", 61,
		   REPL_P_BAD, "SYNTAX");
	/* uid and date ranges */
	{
		struct repl_command c;

		expect_ok("a SAVE o 9223372036854775807 u m " G1
			  " 4294967295 253402300799 () {1}", 1, &c);
		assert_int_equal(c.cmd.modseq, 9223372036854775807ull);
		assert_int_equal(c.cmd.uid_hint, 4294967295u);
		assert_int_equal(c.cmd.date, 253402300799ull);
	}
	expect_err("a SAVE o 9223372036854775808 u m " G1 " 1 1 () {1}", 1,
		   REPL_P_BAD, "SYNTAX");
	expect_err("a SAVE o 1 u m " G1 " 4294967296 1 () {1}", 1, REPL_P_BAD, "SYNTAX");
	expect_err("a SAVE o 1 u m " G1 " 1 253402300800 () {1}", 1, REPL_P_BAD, "SYNTAX");
	expect_err("a SAVE o 1 u m " G1 " 1 99999999999999999999999 () {1}", 1,
		   REPL_P_BAD, "SYNTAX");
	expect_err("a SAVE o 1 u m " G1 " 01 1 () {1}", 1, REPL_P_BAD, "SYNTAX");
	expect_err("a SAVE o 1 u m " G1 " -1 1 () {1}", 1, REPL_P_BAD, "SYNTAX");
	expect_err("a SAVE o 1 u m " G1 " 1 1 \\Seen {1}", 1, REPL_P_BAD, "SYNTAX");
}

static void
test_store_expunge_examples(void **state)
{
	struct repl_command c;

	(void)state;
	expect_ok("a3 STORE a.example 9 bob INBOX " G3 " (+\\Seen)", -1, &c);
	assert_int_equal(c.cmd.op, PSEP_REPL_STORE);
	assert_string_equal(c.cmd.flags, "+\\Seen");
	assert_int_equal(c.cmd.modseq, 9);
	assert_string_equal(c.cmd.user, "bob");
	expect_ok("a4 STORE a.example 18 alice INBOX " G1 " (+\\Seen -\\Flagged)", -1, &c);
	assert_string_equal(c.cmd.flags, "-\\Flagged +\\Seen");
	expect_ok("a5 STORE a.example 19 alice INBOX " G1 " (+$Junk)", -1, &c);
	assert_string_equal(c.cmd.flags, "+$Junk");
	expect_ok("a6 EXPUNGE a.example 20 alice INBOX " G1, -1, &c);
	assert_int_equal(c.cmd.op, PSEP_REPL_EXPUNGE);
	assert_int_equal(c.cmd.modseq, 20);
	assert_string_equal(c.cmd.guid, G1);
	expect_ok("e14 EXPUNGE b.example 30 alice INBOX " G1, -1, &c);
	assert_string_equal(c.cmd.origin, "b.example");
	expect_ok("y3 EXPUNGE a.example 16 alice INBOX " G2, -1, &c);
	assert_string_equal(c.cmd.guid, G2);
	/* modseq 0 on STORE is the caller's decision (§12 e8) */
	expect_ok("e8 STORE a.example 0 alice INBOX " G1 " (+\\Seen)", -1, &c);
	assert_int_equal(c.cmd.modseq, 0);
}

static void
test_mailbox_event_and_query_examples(void **state)
{
	struct repl_command c;

	(void)state;
	expect_ok("a11 CREATE a.example alice Projects.2024", -1, &c);
	assert_int_equal(c.cmd.op, PSEP_REPL_CREATE);
	assert_string_equal(c.cmd.origin, "a.example");
	assert_string_equal(c.cmd.mailbox, "Projects.2024");
	assert_int_equal(c.cmd.modseq, 0);
	expect_ok("a12 DELETE a.example alice Projects.2024", -1, &c);
	assert_int_equal(c.cmd.op, PSEP_REPL_DELETE);
	expect_ok("e12 DELETE a.example alice INBOX", -1, &c);
	assert_string_equal(c.cmd.mailbox, "INBOX");
	expect_ok("a13 RENAME a.example alice Work Archive.Work", -1, &c);
	assert_int_equal(c.cmd.op, PSEP_REPL_RENAME);
	assert_string_equal(c.cmd.mailbox, "Work");
	assert_string_equal(c.cmd.mailbox2, "Archive.Work");
	expect_ok("a15 RENAME a.example alice inbox Old", -1, &c);
	assert_string_equal(c.cmd.mailbox, "INBOX");
	expect_ok("b1 SUBSCRIBE a.example alice Projects.2024", -1, &c);
	assert_int_equal(c.cmd.op, PSEP_REPL_SUBSCRIBE);
	assert_string_equal(c.cmd.origin, "a.example");
	assert_string_equal(c.cmd.user, "alice");
	assert_string_equal(c.cmd.mailbox, "Projects.2024");
	assert_string_equal(c.cmd.mailbox2, "");
	assert_int_equal(c.cmd.modseq, 0);
	expect_ok("b2 unsubscribe a.example alice \"Sent Messages\"", -1, &c);
	assert_int_equal(c.cmd.op, PSEP_REPL_UNSUBSCRIBE);
	assert_string_equal(c.cmd.mailbox, "Sent Messages");
	expect_ok("b3 SUBSCRIBE a.example alice inbox", -1, &c);
	assert_string_equal(c.cmd.mailbox, "INBOX");
	expect_ok("s1 LIST alice", -1, &c);
	assert_int_equal(c.cmd.op, PSEP_REPL_LIST);
	assert_string_equal(c.cmd.user, "alice");
	assert_string_equal(c.cmd.origin, "");
	expect_ok("s2 SYNC alice INBOX", -1, &c);
	assert_int_equal(c.cmd.op, PSEP_REPL_SYNC);
	expect_ok("t1 SYNC alice Sent", -1, &c);
	assert_string_equal(c.cmd.mailbox, "Sent");
	expect_ok("s3 GUIDS alice INBOX", -1, &c);
	assert_int_equal(c.cmd.op, PSEP_REPL_GUIDS);
	expect_ok("s4 FETCH alice INBOX 0190f3a2c2bb7a3b0000111122223333", -1, &c);
	assert_int_equal(c.cmd.op, PSEP_REPL_FETCH);
	assert_string_equal(c.cmd.guid, "0190f3a2c2bb7a3b0000111122223333");
	expect_ok("e13 FETCH alice INBOX " G2, -1, &c);
	expect_ok("z fetch alice inbox " G2, -1, &c);
	assert_string_equal(c.cmd.mailbox, "INBOX");

	expect_err("s1 LIST", -1, REPL_P_BAD, "SYNTAX");
	expect_err("s1 LIST alice INBOX", -1, REPL_P_BAD, "SYNTAX");
	expect_err("s2 SYNC alice", -1, REPL_P_BAD, "SYNTAX");
	expect_err("a13 RENAME a.example alice Work", -1, REPL_P_BAD, "SYNTAX");
	expect_err("a11 CREATE a.example alice", -1, REPL_P_BAD, "SYNTAX");
	expect_err("b1 SUBSCRIBE a.example alice", -1, REPL_P_BAD, "SYNTAX");
	expect_err("b1 SUBSCRIBE a.example 3 alice Work", -1, REPL_P_BAD, "SYNTAX");
	expect_err("b1 SUBSCRIBE a.example alice Work Old", -1, REPL_P_BAD, "SYNTAX");
	expect_err("b1 SUBSCRIBE a.example alice Work {3}", 3, REPL_P_BAD, "SYNTAX");
	expect_err("b2 UNSUBSCRIBE a.example alice a..b", -1, REPL_P_BAD, "BADNAME");
	expect_err("b2 UNSUBSCRIBE a.example alice .Sent", -1, REPL_P_BAD, "BADNAME");
	expect_err("b2 UNSUBSCRIBE a.example alice \"a/b\"", -1, REPL_P_BAD, "BADNAME");
	expect_err("s4 FETCH alice INBOX", -1, REPL_P_BAD, "SYNTAX");
}

static void
test_error_examples(void **state)
{
	struct repl_command c;
	const char *code, *text;

	(void)state;
	expect_err("e4 FROB alice", -1, REPL_P_BAD, "UNKNOWN");
	expect_err("e5 STORE a.example 20 alice INBOX 0190F3A2B4C8D2A1E5F6A7B8C9D0E1F2 (+\\Seen)",
		   -1, REPL_P_BAD, "SYNTAX");
	assert_int_equal(parse("e5 STORE a.example 20 alice INBOX 0190F3A2B4C8D2A1E5F6A7B8C9D0E1F2 (+\\Seen)",
			       -1, &c, &code, &text), REPL_P_BAD);
	assert_string_equal(text, "GUID must be 32 lower-case hex digits");
	assert_string_equal(c.tag, "e5");
	expect_err("e6 STORE a.example 20 alice INBOX " G1 " (+\\Seen -\\Seen)", -1,
		   REPL_P_BAD, "SYNTAX");
	assert_int_equal(parse("e6 STORE a.example 20 alice INBOX " G1 " (+\\Seen -\\seen)",
			       -1, &c, &code, &text), REPL_P_BAD);
	assert_string_equal(text, "flag both added and removed");
	expect_err("e7 CREATE a.example alice ../etc", -1, REPL_P_BAD, "BADNAME");
	assert_int_equal(parse("!!! SYNC alice INBOX", -1, &c, &code, &text), REPL_P_BADTAG);
	assert_string_equal(code, "BADTAG");
	assert_string_equal(c.tag, "");
}

/* ---- tags and command names ------------------------------------------- */

static void
test_tags(void **state)
{
	static const char *const bad[] = {
		"", " NOOP", "OK NOOP", "no NOOP", "Bad NOOP", "bye NOOP", "a+b NOOP",
		"t1", "t1\tNOOP", "123456789012345678901234567890123 NOOP", "\"t\" NOOP",
	};
	char tag[REPL_TAG_MAX];
	struct repl_command c;
	const char *code, *text;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		assert_false(repl_parse_tag(bad[i], tag));
		assert_int_equal(parse(bad[i], -1, &c, &code, &text), REPL_P_BADTAG);
		assert_string_equal(code, "BADTAG");
	}
	assert_true(repl_parse_tag("12345678901234567890123456789012 NOOP", tag));
	assert_string_equal(tag, "12345678901234567890123456789012");
	assert_true(repl_parse_tag("A.b-c_9 x", tag));
	assert_string_equal(tag, "A.b-c_9");
	assert_true(repl_parse_tag("OKAY x", tag));
	expect_ok("OKAY NOOP", -1, &c);
	/* valid tag, bad rest */
	expect_err("t1 ", -1, REPL_P_BAD, "SYNTAX");
	expect_err("t1  NOOP", -1, REPL_P_BAD, "SYNTAX");
	expect_err("t1 NOOPX", -1, REPL_P_BAD, "UNKNOWN");
	expect_err("t1 SAVEX", -1, REPL_P_BAD, "UNKNOWN");
	expect_err("t1 (", -1, REPL_P_BAD, "UNKNOWN");
}

static void
test_frame_flags_reported_with_tag(void **state)
{
	struct repl_frame *f = malloc(sizeof *f);
	struct repl_command c;
	const char *code, *text;

	(void)state;
	assert_non_null(f);
	mkframe(f, "t2 STORE a.example 24 alice INBOX", -1);
	f->toolong = true;
	assert_int_equal(repl_parse_command(f, &c, &code, &text), REPL_P_BAD);
	assert_string_equal(code, "TOOLONG");
	assert_string_equal(c.tag, "t2");
	mkframe(f, "t3 SAVE a.example 25 alice INBOX " GS " 0 1718009000 () {99999999999}",
		99999999999ll);
	f->literal_toobig = true;
	assert_int_equal(repl_parse_command(f, &c, &code, &text), REPL_P_BAD);
	assert_string_equal(code, "TOOBIG");
	assert_string_equal(c.tag, "t3");
	mkframe(f, "t4 NOOP", -1);
	f->bad_eol = true;
	assert_int_equal(repl_parse_command(f, &c, &code, &text), REPL_P_BAD);
	assert_string_equal(code, "SYNTAX");
	mkframe(f, "!!! x", -1);
	f->toolong = true;
	assert_int_equal(repl_parse_command(f, &c, &code, &text), REPL_P_BADTAG);
	/* a NUL inside the line counted by len */
	mkframe(f, "t5 LIST alice", -1);
	f->line[9] = '\0';
	assert_int_equal(repl_parse_command(f, &c, &code, &text), REPL_P_BAD);
	assert_string_equal(code, "SYNTAX");
	free(f);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hello_noop_logout),
		cmocka_unit_test(test_save_examples),
		cmocka_unit_test(test_save_literal_rules),
		cmocka_unit_test(test_store_expunge_examples),
		cmocka_unit_test(test_mailbox_event_and_query_examples),
		cmocka_unit_test(test_error_examples),
		cmocka_unit_test(test_tags),
		cmocka_unit_test(test_frame_flags_reported_with_tag),
		cmocka_unit_test(test_mailbox_names),
		cmocka_unit_test(test_users_and_server_ids),
		cmocka_unit_test(test_numbers_and_guids),
		cmocka_unit_test(test_flag_lists),
		cmocka_unit_test(test_delta_lists),
		cmocka_unit_test(test_fmt_command_roundtrip),
		cmocka_unit_test(test_fmt_command_examples_and_limits),
		cmocka_unit_test(test_random_lines_never_crash),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
