/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/repl-hook/proto/test_proto_values.c - the value rules of the replication
 * protocol (doc/replication-protocol.md §4: numbers, astrings, server ids,
 * users, mailbox names, GUIDs, flags, deltas) with their BAD / NO codes,
 * and fmt -> parse round trips.  Part of the repl_proto_parse program
 * (main in test_proto_parse.c).
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

/* ---- value rules --------------------------------------------------------- */

struct case_row {
	const char *line;
	enum repl_parse_result r;
	const char *code;
	const char *want;      /* OK: expected mailbox / user / origin / flags */
};

static void
run_rows(const struct case_row *rows, size_t n, int field)
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

void
test_mailbox_names(void **state)
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

void
test_users_and_server_ids(void **state)
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

void
test_numbers_and_guids(void **state)
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

void
test_flag_lists(void **state)
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

void
test_delta_lists(void **state)
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

static void
roundtrip(const struct psep_repl_cmd *in, uint64_t lit)
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

void
test_fmt_command_roundtrip(void **state)
{
	struct psep_repl_cmd c;
	uint32_t op;

	(void)state;
	for (op = PSEP_REPL_SAVE; op <= PSEP_REPL_OP_MAX; op++) {
		bool events = psep_repl_op_is_event(op);
		bool stamped = op <= PSEP_REPL_EXPUNGE;

		memset(&c, 0, sizeof c);
		c.op = op;
		if (op == PSEP_REPL_CAPTURE || op == PSEP_REPL_CAPTURE_BOXES) {
			/* local only: no wire form */
			char out[512];

			strcpy(c.user, "alice");
			strcpy(c.mailbox, "INBOX");
			assert_int_equal(repl_fmt_command(out, sizeof(out), &c, 0), 0);
			continue;
		}
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
		if (op == PSEP_REPL_SUBSCRIBE) /* need not exist: any name */
			strcpy(c.mailbox, "Sent Messages");
		roundtrip(&c, op == PSEP_REPL_SAVE ? 52494336 : 0);
	}
}

void
test_fmt_command_examples_and_limits(void **state)
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
	c.op = PSEP_REPL_SUBSCRIBE;
	strcpy(c.mailbox, "Sent Messages");
	strcpy(c.mailbox2, "");
	assert_true(repl_fmt_command(out, sizeof out, &c, 0) > 0);
	assert_string_equal(out, "SUBSCRIBE a.example alice \"Sent Messages\"");
	c.op = PSEP_REPL_UNSUBSCRIBE;
	strcpy(c.mailbox, "Work");
	assert_true(repl_fmt_command(out, sizeof out, &c, 0) > 0);
	assert_string_equal(out, "UNSUBSCRIBE a.example alice Work");
	/* never a name the parser would refuse */
	strcpy(c.mailbox, "a..b");
	assert_int_equal(repl_fmt_command(out, sizeof out, &c, 0), 0);
	strcpy(c.mailbox, "Work");
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
void
test_random_lines_never_crash(void **state)
{
	static const char alphabet[] = "aZ09 ()\\\"{}+-.[]*\r\x80\x01SAVESTOREINBOX";
	static const char *const seeds[] = {
		("a SAVE o 1 u m " G1 " 0 0 (\\Seen a) {1}"),
		("a STORE o 1 u m " G1 " (+\\Seen -a)"),
		"a RENAME o u \"a b\" c", "a HELLO 1 x", ("a FETCH u m " G1),
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
