/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/repl/test_proto_parse.c - the command parser of the
 * replication protocol: every command line of doc/replication-protocol.md
 * §6, §8, §11 and §12, the value rules of §4 (numbers, astrings, server
 * ids, users, mailbox names, GUIDs, flags, deltas) with their BAD / NO
 * codes, and fmt -> parse round trips.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "repl-hook/proto.h"

#define G1 "0190f3a2b4c8d2a1e5f6a7b8c9d0e1f2"
#define G2 "0190f3a2b4c9000100000000deadbeef"
#define G3 "0190f3a2c0017a3b5e1f00c4a9d2b7e3"
#define GS "0190f3a2c1aa7a3b77e0c1d2e3f40516"

/* A frame for line; a literal of size lit if lit >= 0. */
static void mkframe(struct repl_frame *f, const char *line, long long lit)
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

static enum repl_parse_result parse(const char *line, long long lit,
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
static void expect_err(const char *line, long long lit, enum repl_parse_result want,
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

static void expect_ok(const char *line, long long lit, struct repl_command *c)
{
	const char *code, *text;
	enum repl_parse_result r = parse(line, lit, c, &code, &text);

	if (r != REPL_P_OK)
		print_error("line: %s -> %d %s %s\n", line, r, code, text);
	assert_int_equal(r, REPL_P_OK);
}

/* ---- examples of the document ------------------------------------------- */

static void test_hello_noop_logout(void **state)
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

static void test_save_examples(void **state)
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

static void test_save_literal_rules(void **state)
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

static void test_store_expunge_examples(void **state)
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

static void test_mailbox_event_and_query_examples(void **state)
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
	expect_err("s4 FETCH alice INBOX", -1, REPL_P_BAD, "SYNTAX");
}

static void test_error_examples(void **state)
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

static void test_tags(void **state)
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

static void test_frame_flags_reported_with_tag(void **state)
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

/* ---- value rules --------------------------------------------------------- */

struct case_row {
	const char *line;
	enum repl_parse_result r;
	const char *code;
	const char *want;      /* OK: expected mailbox / user / origin / flags */
};

static void run_rows(const struct case_row *rows, size_t n, int field)
{
	size_t i;

	for (i = 0; i < n; i++) {
		struct repl_command c;
		const char *code, *text;
		enum repl_parse_result r = parse(rows[i].line, -1, &c, &code, &text);
		const char *got;

		if (r != rows[i].r || (r != REPL_P_OK && strcmp(code, rows[i].code) != 0))
			print_error("row %zu: %s -> %d %s %s\n", i, rows[i].line, r, code, text);
		assert_int_equal(r, rows[i].r);
		if (r != REPL_P_OK) {
			assert_string_equal(code, rows[i].code);
			continue;
		}
		got = field == 0 ? c.cmd.mailbox : field == 1 ? c.cmd.user :
		      field == 2 ? c.cmd.origin : c.cmd.flags;
		if (rows[i].want != NULL)
			assert_string_equal(got, rows[i].want);
	}
}

static void test_mailbox_names(void **state)
{
	static char long254[400], long255[400];
	struct case_row rows[] = {
		{ "t SYNC u INBOX", REPL_P_OK, NULL, "INBOX" },
		{ "t SYNC u inbox", REPL_P_OK, NULL, "INBOX" },
		{ "t SYNC u \"InBoX\"", REPL_P_OK, NULL, "INBOX" },
		{ "t SYNC u inbox.x", REPL_P_OK, NULL, "inbox.x" },
		{ "t SYNC u INBOX.x", REPL_P_OK, NULL, "INBOX.x" },
		{ "t SYNC u Sent", REPL_P_OK, NULL, "Sent" },
		{ "t SYNC u a.b", REPL_P_OK, NULL, "a.b" },
		{ "t SYNC u \"My Mail\"", REPL_P_OK, NULL, "My Mail" },
		{ "t SYNC u \"a\\\"b\"", REPL_P_OK, NULL, "a\"b" },
		{ "t SYNC u \"a\\\\b\"", REPL_P_OK, NULL, "a\\b" },
		{ "t SYNC u &AOQ-", REPL_P_OK, NULL, "&AOQ-" },
		{ "t SYNC u ../etc", REPL_P_BAD, "BADNAME", NULL },
		{ "t SYNC u a/b", REPL_P_BAD, "BADNAME", NULL },
		{ "t SYNC u a..b", REPL_P_BAD, "BADNAME", NULL },
		{ "t SYNC u .a", REPL_P_BAD, "BADNAME", NULL },
		{ "t SYNC u a.", REPL_P_BAD, "BADNAME", NULL },
		{ "t SYNC u .", REPL_P_BAD, "BADNAME", NULL },
		{ "t SYNC u \"\"", REPL_P_BAD, "BADNAME", NULL },
		{ "t SYNC u \"a\xc3\xa4\"", REPL_P_BAD, "BADNAME", NULL },
		{ long254, REPL_P_OK, NULL, NULL },
		{ long255, REPL_P_BAD, "BADNAME", NULL },
		{ "t SYNC u \"abc", REPL_P_BAD, "SYNTAX", NULL },
		{ "t SYNC u \"a\\b\"", REPL_P_BAD, "SYNTAX", NULL },
		{ "t SYNC u \"a\tb\"", REPL_P_BAD, "SYNTAX", NULL },
		{ "t SYNC u a(b", REPL_P_BAD, "SYNTAX", NULL },
		{ "t SYNC u a{b", REPL_P_BAD, "SYNTAX", NULL },
		{ "t SYNC u ", REPL_P_BAD, "SYNTAX", NULL },
		{ "t SYNC u \"a\"b", REPL_P_BAD, "SYNTAX", NULL },
	};

	(void)state;
	strcpy(long254, "t SYNC u ");
	memset(long254 + strlen(long254), 'x', 254);
	strcpy(long255, "t SYNC u ");
	memset(long255 + strlen(long255), 'x', 255);
	run_rows(rows, sizeof rows / sizeof rows[0], 0);
}

static void test_users_and_server_ids(void **state)
{
	static char u255[400], u256[400], id64[200], id65[200];
	struct case_row users[] = {
		{ "t LIST alice", REPL_P_OK, NULL, "alice" },
		{ "t LIST alice@example.org", REPL_P_OK, NULL, "alice@example.org" },
		{ "t LIST \"j\xc3\xb6rg\"", REPL_P_OK, NULL, "j\xc3\xb6rg" },
		{ "t LIST \"a b\"", REPL_P_BAD, "SYNTAX", NULL },
		{ "t LIST \"\"", REPL_P_BAD, "SYNTAX", NULL },
		{ u255, REPL_P_OK, NULL, NULL },
		{ u256, REPL_P_BAD, "SYNTAX", NULL },
	};
	struct case_row ids[] = {
		{ "t CREATE a.example u m", REPL_P_OK, NULL, "a.example" },
		{ "t CREATE \"a.example\" u m", REPL_P_OK, NULL, "a.example" },
		{ "t CREATE \"a b\" u m", REPL_P_BAD, "SYNTAX", NULL },
		{ "t CREATE \"\" u m", REPL_P_BAD, "SYNTAX", NULL },
		{ "t CREATE \"a\xc3\xa4\" u m", REPL_P_BAD, "SYNTAX", NULL },
		{ id64, REPL_P_OK, NULL, NULL },
		{ id65, REPL_P_BAD, "SYNTAX", NULL },
	};

	(void)state;
	strcpy(u255, "t LIST ");
	memset(u255 + strlen(u255), 'u', 255);
	strcpy(u256, "t LIST ");
	memset(u256 + strlen(u256), 'u', 256);
	strcpy(id64, "t CREATE ");
	memset(id64 + strlen(id64), 'i', 64);
	strcat(id64, " u m");
	strcpy(id65, "t CREATE ");
	memset(id65 + strlen(id65), 'i', 65);
	strcat(id65, " u m");
	run_rows(users, sizeof users / sizeof users[0], 1);
	run_rows(ids, sizeof ids / sizeof ids[0], 2);
}

static void test_numbers_and_guids(void **state)
{
	struct case_row rows[] = {
		{ "t EXPUNGE o 1 u m " G1, REPL_P_OK, NULL, NULL },
		{ "t EXPUNGE o 0 u m " G1, REPL_P_OK, NULL, NULL },
		{ "t EXPUNGE o 00 u m " G1, REPL_P_BAD, "SYNTAX", NULL },
		{ "t EXPUNGE o 012 u m " G1, REPL_P_BAD, "SYNTAX", NULL },
		{ "t EXPUNGE o +1 u m " G1, REPL_P_BAD, "SYNTAX", NULL },
		{ "t EXPUNGE o 1x u m " G1, REPL_P_BAD, "SYNTAX", NULL },
		{ "t EXPUNGE o  u m " G1, REPL_P_BAD, "SYNTAX", NULL },
		{ "t EXPUNGE o 18446744073709551615 u m " G1, REPL_P_BAD, "SYNTAX", NULL },
		{ "t EXPUNGE o 18446744073709551616 u m " G1, REPL_P_BAD, "SYNTAX", NULL },
		{ "t EXPUNGE o 1 u m 0190f3a2b4c8d2a1e5f6a7b8c9d0e1f", REPL_P_BAD, "SYNTAX", NULL },
		{ "t EXPUNGE o 1 u m " G1 "0", REPL_P_BAD, "SYNTAX", NULL },
		{ "t EXPUNGE o 1 u m 0190f3a2b4c8d2a1e5f6a7b8c9d0e1fg", REPL_P_BAD, "SYNTAX", NULL },
		{ "t EXPUNGE o 1 u m \"" G1 "\"", REPL_P_BAD, "SYNTAX", NULL },
		{ "t EXPUNGE o 1 u m " G1 " ", REPL_P_BAD, "SYNTAX", NULL },
		{ "t EXPUNGE o 1 u m", REPL_P_BAD, "SYNTAX", NULL },
		{ "t EXPUNGE o 1 u ../x " G1, REPL_P_BAD, "BADNAME", NULL },
	};

	(void)state;
	run_rows(rows, sizeof rows / sizeof rows[0], 0);
}

static void test_flag_lists(void **state)
{
	static char kw64[300], kw65[300], lim127[400], lim128[400], many[2000];
#define SAVEP "t SAVE o 1 u m " G1 " 0 0 "
	struct case_row rows[] = {
		{ SAVEP "() {1}", REPL_P_OK, NULL, "" },
		{ SAVEP "(\\seen \\FLAGGED) {1}", REPL_P_OK, NULL, "\\Flagged \\Seen" },
		{ SAVEP "(\\Seen \\Flagged Work $Junk) {1}", REPL_P_OK, NULL,
		  "$Junk Work \\Flagged \\Seen" },
		{ SAVEP "(\\Answered \\Flagged \\Deleted \\Seen \\Draft) {1}", REPL_P_OK, NULL,
		  "\\Answered \\Deleted \\Draft \\Flagged \\Seen" },
		{ SAVEP "(b a ab a B \\seen \\Seen) {1}", REPL_P_OK, NULL, "B \\Seen a ab b" },
		{ SAVEP "(work Work) {1}", REPL_P_OK, NULL, "Work work" },
		{ SAVEP "(a.b ab) {1}", REPL_P_OK, NULL, "a.b ab" },
		{ SAVEP "(k+ k-) {1}", REPL_P_OK, NULL, "k+ k-" },
		{ kw64, REPL_P_OK, NULL, NULL },
		{ kw65, REPL_P_BAD, "SYNTAX", NULL },
		{ lim127, REPL_P_OK, NULL, NULL },
		{ lim128, REPL_P_NO, "LIMIT", NULL },
		{ many, REPL_P_NO, "LIMIT", NULL },
		{ SAVEP "(\\Recent) {1}", REPL_P_BAD, "SYNTAX", NULL },
		{ SAVEP "(\\Foo) {1}", REPL_P_BAD, "SYNTAX", NULL },
		{ SAVEP "(\\) {1}", REPL_P_BAD, "SYNTAX", NULL },
		{ SAVEP "(+a) {1}", REPL_P_BAD, "SYNTAX", NULL },
		{ SAVEP "(-a) {1}", REPL_P_BAD, "SYNTAX", NULL },
		{ SAVEP "( a) {1}", REPL_P_BAD, "SYNTAX", NULL },
		{ SAVEP "(a ) {1}", REPL_P_BAD, "SYNTAX", NULL },
		{ SAVEP "(a  b) {1}", REPL_P_BAD, "SYNTAX", NULL },
		{ SAVEP "(a {1}", REPL_P_BAD, "SYNTAX", NULL },
		{ SAVEP "((a)) {1}", REPL_P_BAD, "SYNTAX", NULL },
		{ SAVEP "(\"a\") {1}", REPL_P_BAD, "SYNTAX", NULL },
		{ SAVEP "(a]) {1}", REPL_P_BAD, "SYNTAX", NULL },
		/* a LIMIT is only reported on an otherwise valid line */
		{ "t SAVE o 1 u m " G1 " 0 0 (", REPL_P_BAD, "SYNTAX", NULL },
	};
	size_t i, n;

	(void)state;
	strcpy(kw64, SAVEP "(");
	memset(kw64 + strlen(kw64), 'k', 64);
	strcat(kw64, ") {1}");
	strcpy(kw65, SAVEP "(");
	memset(kw65 + strlen(kw65), 'k', 65);
	strcat(kw65, ") {1}");
	/* 127 octets: "\Seen" + 121 more; 3 keywords of 40 + SPs */
	strcpy(lim127, SAVEP "(\\Seen ");
	n = strlen(lim127);
	memset(lim127 + n, 'a', 40);
	lim127[n + 40] = ' ';
	memset(lim127 + n + 41, 'b', 40);
	lim127[n + 81] = ' ';
	memset(lim127 + n + 82, 'c', 39);   /* 5+1+40+1+40+1+39 = 127 */
	strcpy(lim127 + n + 121, ") {1}");
	strcpy(lim128, lim127);
	memmove(lim128 + n + 122, lim128 + n + 121, strlen(lim128 + n + 121) + 1);
	lim128[n + 121] = 'c';
	/* 100 distinct 1-3 octet keywords: over the limit, never a crash */
	strcpy(many, SAVEP "(");
	for (i = 0; i < 100; i++)
		sprintf(many + strlen(many), "%sk%zu", i ? " " : "", i);
	strcat(many, ") {1}");
	for (i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		struct repl_command c;
		const char *code, *text;
		enum repl_parse_result r = parse(rows[i].line, 1, &c, &code, &text);

		if (r != rows[i].r || (r != REPL_P_OK && strcmp(code, rows[i].code) != 0))
			print_error("row %zu: %s -> %d %s %s\n", i, rows[i].line, r, code, text);
		assert_int_equal(r, rows[i].r);
		if (r != REPL_P_OK)
			assert_string_equal(code, rows[i].code);
		else if (rows[i].want != NULL)
			assert_string_equal(c.cmd.flags, rows[i].want);
		if (r == REPL_P_OK)
			assert_true(strlen(c.cmd.flags) <= 127);
		if (r == REPL_P_NO)
			assert_string_equal(c.tag, "t");
	}
#undef SAVEP
}

static void test_delta_lists(void **state)
{
	static char lim127[400], lim128[400];
#define STOREP "t STORE o 1 u m " G1 " "
	struct case_row rows[] = {
		{ STOREP "(+\\Seen)", REPL_P_OK, NULL, "+\\Seen" },
		{ STOREP "(-\\seen +\\flagged)", REPL_P_OK, NULL, "+\\Flagged -\\Seen" },
		{ STOREP "(+\\Seen +\\SEEN +\\seen)", REPL_P_OK, NULL, "+\\Seen" },
		{ STOREP "(-b -a -b +c)", REPL_P_OK, NULL, "-a -b +c" },
		{ STOREP "(+Work -work)", REPL_P_OK, NULL, "+Work -work" },
		{ STOREP "(+$Junk +\\Seen -\\Draft)", REPL_P_OK, NULL, "+$Junk -\\Draft +\\Seen" },
		{ STOREP "(+\\Seen -\\Seen)", REPL_P_BAD, "SYNTAX", NULL },
		{ STOREP "(+a +b -a)", REPL_P_BAD, "SYNTAX", NULL },
		{ STOREP "()", REPL_P_BAD, "SYNTAX", NULL },
		{ STOREP "(\\Seen)", REPL_P_BAD, "SYNTAX", NULL },
		{ STOREP "(+)", REPL_P_BAD, "SYNTAX", NULL },
		{ STOREP "(++a)", REPL_P_BAD, "SYNTAX", NULL },
		{ STOREP "(+-a)", REPL_P_BAD, "SYNTAX", NULL },
		{ STOREP "(+\\Recent)", REPL_P_BAD, "SYNTAX", NULL },
		{ STOREP "(+a  +b)", REPL_P_BAD, "SYNTAX", NULL },
		{ STOREP "+\\Seen", REPL_P_BAD, "SYNTAX", NULL },
		{ STOREP "(+\\Seen) ", REPL_P_BAD, "SYNTAX", NULL },
		{ STOREP "(+\\Seen", REPL_P_BAD, "SYNTAX", NULL },
		{ lim127, REPL_P_OK, NULL, NULL },
		{ lim128, REPL_P_NO, "LIMIT", NULL },
	};
	size_t n;

	(void)state;
	/* text between the parentheses: "+" 62 "a" SP "+" 62 "b" = 127 */
	strcpy(lim127, STOREP "(+");
	n = strlen(lim127);
	memset(lim127 + n, 'a', 62);
	strcpy(lim127 + n + 62, " +");
	memset(lim127 + n + 64, 'b', 62);
	strcpy(lim127 + n + 126, ")");
	strcpy(lim128, lim127);
	strcpy(lim128 + n + 126, "b)");
	run_rows(rows, sizeof rows / sizeof rows[0], 3);
	/* duplicates make the raw text long but it is the raw text that counts */
	{
		char line[600];
		struct repl_command c;
		const char *code, *text;
		int i;

		strcpy(line, STOREP "(");
		for (i = 0; i < 30; i++)
			strcat(line, i ? " +\\Seen" : "+\\Seen");
		strcat(line, ")");
		assert_int_equal(parse(line, -1, &c, &code, &text), REPL_P_NO);
		assert_string_equal(code, "LIMIT");
	}
#undef STOREP
}

/* ---- round trips ----------------------------------------------------------- */

static void roundtrip(const struct psep_repl_cmd *in, uint64_t lit)
{
	char line[REPL_MAXLINE + 1];
	struct repl_command c;
	size_t n;

	strcpy(line, "rt ");
	n = repl_fmt_command(line + 3, sizeof line - 3, in, lit);
	assert_true(n > 0);
	assert_int_equal(strlen(line + 3), n);
	expect_ok(line, in->op == PSEP_REPL_SAVE ? (long long)lit : -1, &c);
	assert_int_equal(c.name, REPL_CMD_OP);
	assert_int_equal(c.cmd.op, in->op);
	assert_int_equal(c.cmd.modseq, in->modseq);
	assert_int_equal(c.cmd.uid_hint, in->uid_hint);
	assert_int_equal(c.cmd.date, in->date);
	assert_string_equal(c.cmd.origin, in->origin);
	assert_string_equal(c.cmd.user, in->user);
	assert_string_equal(c.cmd.mailbox, in->mailbox);
	assert_string_equal(c.cmd.mailbox2, in->mailbox2);
	assert_string_equal(c.cmd.guid, in->guid);
	assert_string_equal(c.cmd.flags, in->flags);
	assert_int_equal(c.cmd.body_size, in->op == PSEP_REPL_SAVE ? lit : 0);
}

static void test_fmt_command_roundtrip(void **state)
{
	struct psep_repl_cmd c;
	uint32_t op;

	(void)state;
	for (op = PSEP_REPL_SAVE; op <= PSEP_REPL_OP_MAX; op++) {
		bool events = op <= PSEP_REPL_RENAME;
		bool stamped = op <= PSEP_REPL_EXPUNGE;

		memset(&c, 0, sizeof c);
		c.op = op;
		if (events)
			strcpy(c.origin, "a.example");
		if (stamped)
			c.modseq = op == PSEP_REPL_SAVE ? 9223372036854775807ull : 17;
		strcpy(c.user, op == PSEP_REPL_LIST ? "j\xc3\xb6rg" : "alice");
		if (op != PSEP_REPL_LIST)
			strcpy(c.mailbox, op == PSEP_REPL_SYNC ? "My \"Mail\" \\ x" : "INBOX.a");
		if (op == PSEP_REPL_RENAME)
			strcpy(c.mailbox2, "Archive.Work");
		if (stamped || op == PSEP_REPL_FETCH)
			strcpy(c.guid, G1);
		if (op == PSEP_REPL_SAVE) {
			c.uid_hint = 4294967295u;
			c.date = 253402300799ull;
			strcpy(c.flags, "$Junk Work \\Flagged \\Seen");
		}
		if (op == PSEP_REPL_STORE)
			strcpy(c.flags, "-\\Flagged +\\Seen");
		if (op == PSEP_REPL_CREATE) /* server ids have no SP */
			strcpy(c.origin, "srv\"q\"\\x");
		roundtrip(&c, op == PSEP_REPL_SAVE ? 52494336 : 0);
	}
}

static void test_fmt_command_examples_and_limits(void **state)
{
	struct psep_repl_cmd c;
	char out[REPL_MAXLINE];

	(void)state;
	memset(&c, 0, sizeof c);
	c.op = PSEP_REPL_SAVE;
	strcpy(c.origin, "a.example");
	c.modseq = 17;
	strcpy(c.user, "alice");
	strcpy(c.mailbox, "INBOX");
	strcpy(c.guid, G1);
	c.uid_hint = 42;
	c.date = 1718000000;
	strcpy(c.flags, "\\Seen");
	assert_int_equal(repl_fmt_command(out, sizeof out, &c, 61),
			 strlen("SAVE a.example 17 alice INBOX " G1 " 42 1718000000 (\\Seen) {61}"));
	assert_string_equal(out, "SAVE a.example 17 alice INBOX " G1 " 42 1718000000 (\\Seen) {61}");
	/* does not fit: 0 */
	assert_int_equal(repl_fmt_command(out, 20, &c, 61), 0);
	assert_int_equal(repl_fmt_command(out, 0, &c, 61), 0);
	c.op = PSEP_REPL_RENAME;
	strcpy(c.mailbox, "Work");
	strcpy(c.mailbox2, "Archive.Work");
	assert_true(repl_fmt_command(out, sizeof out, &c, 0) > 0);
	assert_string_equal(out, "RENAME a.example alice Work Archive.Work");
	c.op = PSEP_REPL_LIST;
	assert_true(repl_fmt_command(out, sizeof out, &c, 0) > 0);
	assert_string_equal(out, "LIST alice");
	c.op = PSEP_REPL_STORE;
	strcpy(c.mailbox, "INBOX");
	strcpy(c.flags, "+\\Seen");
	assert_true(repl_fmt_command(out, sizeof out, &c, 0) > 0);
	assert_string_equal(out, "STORE a.example 17 alice INBOX " G1 " (+\\Seen)");
	c.op = PSEP_REPL_FETCH;
	assert_true(repl_fmt_command(out, sizeof out, &c, 0) > 0);
	assert_string_equal(out, "FETCH alice INBOX " G1);
	/* bad op, a value that cannot be sent */
	c.op = 0;
	assert_int_equal(repl_fmt_command(out, sizeof out, &c, 0), 0);
	c.op = PSEP_REPL_OP_MAX + 1;
	assert_int_equal(repl_fmt_command(out, sizeof out, &c, 0), 0);
	c.op = PSEP_REPL_LIST;
	strcpy(c.user, "a\r\nb");
	assert_int_equal(repl_fmt_command(out, sizeof out, &c, 0), 0);
	/* never a line the parser would refuse */
	c.user[0] = '\0';
	assert_int_equal(repl_fmt_command(out, sizeof out, &c, 0), 0);
	strcpy(c.user, "a b");
	assert_int_equal(repl_fmt_command(out, sizeof out, &c, 0), 0);
	strcpy(c.user, "alice");
	c.op = PSEP_REPL_SYNC;
	strcpy(c.mailbox, "../etc");
	assert_int_equal(repl_fmt_command(out, sizeof out, &c, 0), 0);
	strcpy(c.mailbox, "INBOX");
	assert_true(repl_fmt_command(out, sizeof out, &c, 0) > 0);
	c.op = PSEP_REPL_STORE;
	strcpy(c.flags, "+\\Seen) (x");
	assert_int_equal(repl_fmt_command(out, sizeof out, &c, 0), 0);
	strcpy(c.flags, "");
	assert_int_equal(repl_fmt_command(out, sizeof out, &c, 0), 0);
	c.op = PSEP_REPL_SAVE;
	assert_true(repl_fmt_command(out, sizeof out, &c, 5) > 0);
	strcpy(c.guid, "0190F3A2B4C8D2A1E5F6A7B8C9D0E1F2");
	assert_int_equal(repl_fmt_command(out, sizeof out, &c, 5), 0);
	strcpy(c.guid, G1);
	c.modseq = 9223372036854775808ull;
	assert_int_equal(repl_fmt_command(out, sizeof out, &c, 5), 0);
	c.modseq = 1;
	c.date = 253402300800ull;
	assert_int_equal(repl_fmt_command(out, sizeof out, &c, 5), 0);
	c.date = 1;
	memset(c.flags, 'k', 127);
	c.flags[63] = ' ';
	c.flags[127] = '\0';
	assert_true(repl_fmt_command(out, sizeof out, &c, 5) > 0);
	assert_int_equal(repl_fmt_command(out, sizeof out, &c, 9223372036854775808ull), 0);
}

/* Random lines: any result, never a crash; OK results are well-formed. */
static void test_random_lines_never_crash(void **state)
{
	static const char alphabet[] = "aZ09 ()\\\"{}+-.[]*\r\x80\x01SAVESTOREINBOX";
	static const char *const seeds[] = {
		"a SAVE o 1 u m " G1 " 0 0 (\\Seen a) {1}",
		"a STORE o 1 u m " G1 " (+\\Seen -a)",
		"a RENAME o u \"a b\" c", "a HELLO 1 x", "a FETCH u m " G1,
	};
	struct repl_frame *f = malloc(sizeof *f);
	unsigned seed = 12345;
	int i;

	(void)state;
	assert_non_null(f);
	for (i = 0; i < 20000; i++) {
		struct repl_command c;
		const char *code, *text;
		enum repl_parse_result r;
		size_t len, j;

		seed = seed * 1103515245u + 12345u;
		if (i % 2 == 0) {
			len = (seed >> 16) % 120;
			for (j = 0; j < len; j++) {
				seed = seed * 1103515245u + 12345u;
				f->line[j] = alphabet[(seed >> 16) % (sizeof alphabet - 1)];
			}
		} else {
			const char *s = seeds[(seed >> 16) % 5];

			len = strlen(s);
			memcpy(f->line, s, len);
			for (j = 0; j < 3; j++) {
				seed = seed * 1103515245u + 12345u;
				f->line[(seed >> 8) % len] = alphabet[(seed >> 20) %
								      (sizeof alphabet - 1)];
			}
		}
		f->line[len] = '\0';
		f->len = len;
		f->has_literal = (seed >> 3) & 1;
		f->literal_size = 1;
		f->toolong = f->bad_eol = f->literal_toobig = false;
		f->literal_fd = -1;
		r = repl_parse_command(f, &c, &code, &text);
		assert_true(r == REPL_P_OK || r == REPL_P_BAD || r == REPL_P_BADTAG ||
			    r == REPL_P_NO);
		if (r != REPL_P_OK) {
			assert_non_null(code);
			assert_true(strlen(code) > 0);
			assert_non_null(text);
		} else {
			assert_true(strlen(c.tag) > 0);
			assert_true(strlen(c.cmd.flags) < PSEP_FLAGS_MAX);
		}
	}
	free(f);
}

int main(void)
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
