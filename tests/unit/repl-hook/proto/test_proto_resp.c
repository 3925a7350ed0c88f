/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/repl-hook/proto/test_proto_resp.c - the response side of the replication
 * protocol: greeting, tagged and untagged status lines, data lines and
 * their bodies (every response line of doc/replication-protocol.md §6,
 * §8, §11, §12), the formatters (astring quoting, states, data lines, hex)
 * and fmt -> parse round trips.
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

#define G1 "0190f3a2b4c8d2a1e5f6a7b8c9d0e1f2"
#define H1 "c0300c5b9eb43cc226e646a37428e3ab29ea33e1fad17874a7bf78cd97228387"
#define H2 "528bae78c91c388ca3e3cef40d0686accb2c758d82a6f8976b58592684f7d81e"
#define Z64 "0000000000000000000000000000000000000000000000000000000000000000"

static void
test_greeting(void **state)
{
	struct repl_response r;

	(void)state;
	assert_int_equal(repl_parse_response("* OK STOWD-REPL 1 b.example MAXLINE=8192 "
					     "MAXLITERAL=52494336 MAXINFLIGHT=64 stowd ready",
					     &r), 0);
	assert_int_equal(r.kind, REPL_R_GREETING);
	assert_true(r.version1);
	assert_string_equal(r.server_id, "b.example");
	assert_int_equal(r.maxline, 8192);
	assert_int_equal(r.maxliteral, 52494336);
	assert_int_equal(r.maxinflight, 64);
	assert_string_equal(r.text, "stowd ready");
	assert_int_equal(repl_parse_response("* OK STOWD-REPL 1,2,7 \"b.x\" MAXLINE=1 "
					     "MAXLITERAL=0 MAXINFLIGHT=1", &r), 0);
	assert_true(r.version1);
	assert_string_equal(r.server_id, "b.x");
	assert_string_equal(r.text, "");
	assert_int_equal(repl_parse_response("* OK STOWD-REPL 2,3 b MAXLINE=1 "
					     "MAXLITERAL=0 MAXINFLIGHT=1 x", &r), 0);
	assert_false(r.version1);
	/* malformed greetings */
	static const char *const bad[] = {
		"* OK STOWD-REPL 2,1 b MAXLINE=1 MAXLITERAL=0 MAXINFLIGHT=1",
		"* OK STOWD-REPL 1,1 b MAXLINE=1 MAXLITERAL=0 MAXINFLIGHT=1",
		"* OK STOWD-REPL 1, b MAXLINE=1 MAXLITERAL=0 MAXINFLIGHT=1",
		"* OK STOWD-REPL 1 b MAXLINE=1 MAXLITERAL=0",
		"* OK STOWD-REPL 1 b MAXLINE= MAXLITERAL=0 MAXINFLIGHT=1",
		"* OK STOWD-REPL 1 b MAXLINE=01 MAXLITERAL=0 MAXINFLIGHT=1",
		"* OK STOWD-REPL 1 b MAXLINE=1 MAXLITERAL=0 MAXINFLIGHT=1 \x01",
		"* OK STOWD-REPL 1  b MAXLINE=1 MAXLITERAL=0 MAXINFLIGHT=1",
		"* OK OTHER 1 b MAXLINE=1 MAXLITERAL=0 MAXINFLIGHT=1",
		"* OK STOWD-REPL 0 b MAXLINE=1 MAXLITERAL=0 MAXINFLIGHT=1",
		"* OK", "*", "* ", "",
	};
	size_t i;

	for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_int_equal(repl_parse_response(bad[i], &r), -1);
}

static void
test_tagged(void **state)
{
	static const struct {
		const char *line, *tag;
		enum psep_repl_status st;
		const char *code, *text;
	} rows[] = {
		{ "a1 OK hello a.example", "a1", PSEP_RS_OK, "", "hello a.example" },
		{ "a2 OK [UID 42] saved", "a2", PSEP_RS_OK, "UID 42", "saved" },
		{ "a7 OK [DUPLICATE 42] already present", "a7", PSEP_RS_OK, "DUPLICATE 42",
		  "already present" },
		{ "a5 OK [NONEXISTENT] no such message", "a5", PSEP_RS_OK, "NONEXISTENT",
		  "no such message" },
		{ "e1 BAD [NOHELLO] HELLO first", "e1", PSEP_RS_BAD, "NOHELLO", "HELLO first" },
		{ "e2 NO [VERSION] supported versions: 1", "e2", PSEP_RS_NO, "VERSION",
		  "supported versions: 1" },
		{ "e4 BAD [UNKNOWN] unknown command", "e4", PSEP_RS_BAD, "UNKNOWN",
		  "unknown command" },
		{ "e9 NO [NOUSER] unknown user", "e9", PSEP_RS_NO, "NOUSER", "unknown user" },
		{ "e14 OK [LOOP] own event ignored", "e14", PSEP_RS_OK, "LOOP",
		  "own event ignored" },
		{ "t1 BAD [TAGINUSE] tag in use", "t1", PSEP_RS_BAD, "TAGINUSE", "tag in use" },
		{ "t3 BAD [TOOBIG] literal exceeds MAXLITERAL", "t3", PSEP_RS_BAD, "TOOBIG",
		  "literal exceeds MAXLITERAL" },
		{ "a10 OK logout", "a10", PSEP_RS_OK, "", "logout" },
		{ "x ok [A-1 b c] t", "x", PSEP_RS_OK, "A-1 b c", "t" },
		{ "x OK", "x", PSEP_RS_OK, "", "" },
		{ "x NO [LIMIT]", "x", PSEP_RS_NO, "LIMIT", "" },
	};
	static const char *const bad[] = {
		"a1 MAYBE x", "a1", "a1 ", "a1 OK [UID 42 saved", "a1 OK [] x",
		"a1 OK [uid 4] x", "a1 OK [UID  4] x", "a1 OK [UID 4]x", "OK OK x",
		"a+ OK x", "a1 OK \x7f", ("a1 OK [" "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA] x"),
		"a1  OK x",
	};
	struct repl_response r;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		if (repl_parse_response(rows[i].line, &r) != 0)
			print_error("row %zu: %s\n", i, rows[i].line);
		assert_int_equal(repl_parse_response(rows[i].line, &r), 0);
		assert_int_equal(r.kind, REPL_R_TAGGED);
		assert_string_equal(r.tag, rows[i].tag);
		assert_int_equal(r.status, rows[i].st);
		assert_string_equal(r.code, rows[i].code);
		assert_string_equal(r.text, rows[i].text);
	}
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		if (repl_parse_response(bad[i], &r) != -1)
			print_error("bad row %zu: %s\n", i, bad[i]);
		assert_int_equal(repl_parse_response(bad[i], &r), -1);
	}
}

static void
test_untagged_and_data(void **state)
{
	struct repl_response r;

	(void)state;
	assert_int_equal(repl_parse_response("* BAD [BADTAG] invalid tag", &r), 0);
	assert_int_equal(r.kind, REPL_R_UNTAGGED);
	assert_false(r.bye);
	assert_int_equal(r.status, PSEP_RS_BAD);
	assert_string_equal(r.code, "BADTAG");
	assert_string_equal(r.text, "invalid tag");
	assert_int_equal(repl_parse_response("* BYE [FRAMING] literal not followed by CRLF", &r), 0);
	assert_true(r.bye);
	assert_int_equal(r.status, PSEP_RS_NO);
	assert_string_equal(r.code, "FRAMING");
	assert_int_equal(repl_parse_response("* BYE [LOGOUT] bye", &r), 0);
	assert_true(r.bye);
	assert_int_equal(repl_parse_response("* BYE [AUTHFAILED] peer uid not allowed", &r), 0);
	assert_string_equal(r.code, "AUTHFAILED");
	/* untagged status needs a code */
	assert_int_equal(repl_parse_response("* BYE bye", &r), -1);
	assert_int_equal(repl_parse_response("* BAD", &r), -1);

	assert_int_equal(repl_parse_response("* y2 GUID " G1 " 1 9 a.example ()", &r), 0);
	assert_int_equal(r.kind, REPL_R_DATA);
	assert_string_equal(r.tag, "y2");
	assert_string_equal(r.body, "GUID " G1 " 1 9 a.example ()");
	assert_int_equal(repl_parse_response("* s4 FETCH " G1 " 3 1718001000 (\\Flagged) {2210}",
					     &r), 0);
	assert_string_equal(r.tag, "s4");
	assert_int_equal(repl_parse_response("* s4", &r), -1);
	assert_int_equal(repl_parse_response("* s4 ", &r), -1);
	assert_int_equal(repl_parse_response("* NO x", &r), -1);
	assert_int_equal(repl_parse_response("* !! x", &r), -1);
	assert_int_equal(repl_parse_response("** x", &r), -1);
}

static void
test_state_data(void **state)
{
	struct store_mbox_state st;
	char mbox[PSEP_NAME_MAX];
	char out[REPL_MAXLINE];
	unsigned char h1[32];

	(void)state;
	assert_int_equal(repl_parse_sync_data("SYNC INBOX MESSAGES 3 GUIDHASH " H1 " FLAGHASH " H2
					      " HIGHESTMODSEQ 11 UIDVALIDITY 1717990000 UIDNEXT 4",
					      mbox, &st), 0);
	assert_string_equal(mbox, "INBOX");
	assert_int_equal(st.messages, 3);
	assert_int_equal(st.highestmodseq, 11);
	assert_int_equal(st.uidvalidity, 1717990000u);
	assert_int_equal(st.uidnext, 4);
	assert_int_equal(repl_unhex(H1, h1, 32), 0);
	assert_memory_equal(st.guidhash, h1, 32);
	assert_int_equal(st.flaghash[0], 0x52);
	/* and back */
	assert_true(repl_fmt_sync_data(out, sizeof out, mbox, &st) > 0);
	assert_string_equal(out, "SYNC INBOX MESSAGES 3 GUIDHASH " H1 " FLAGHASH " H2
			    " HIGHESTMODSEQ 11 UIDVALIDITY 1717990000 UIDNEXT 4");
	assert_true(repl_fmt_state(out, sizeof out, &st) > 0);
	assert_string_equal(out, "MESSAGES 3 GUIDHASH " H1 " FLAGHASH " H2
			    " HIGHESTMODSEQ 11 UIDVALIDITY 1717990000 UIDNEXT 4");
	assert_int_equal(repl_fmt_state(out, 40, &st), 0);
	assert_int_equal(repl_fmt_sync_data(out, sizeof out, "a/b", &st), 0);
	assert_int_equal(repl_fmt_mailbox_data(out, sizeof out, "", &st), 0);
	assert_int_equal(repl_fmt_mailbox_data(out, sizeof out, "a\r\n", &st), 0);
	assert_string_equal(out, "");

	assert_int_equal(repl_parse_mailbox_data("MAILBOX Sent MESSAGES 0 GUIDHASH " Z64
						 " FLAGHASH " Z64 " HIGHESTMODSEQ 0 UIDVALIDITY "
						 "1717990001 UIDNEXT 1", mbox, &st), 0);
	assert_string_equal(mbox, "Sent");
	assert_int_equal(st.uidnext, 1);
	strcpy(mbox, "My \"Mail\"");
	assert_true(repl_fmt_mailbox_data(out, sizeof out, mbox, &st) > 0);
	assert_int_equal(strncmp(out, "MAILBOX \"My \\\"Mail\\\"\" MESSAGES 0 ", 33), 0);
	memset(mbox, 0, sizeof mbox);
	assert_int_equal(repl_parse_mailbox_data(out, mbox, &st), 0);
	assert_string_equal(mbox, "My \"Mail\"");
	assert_int_equal(repl_parse_mailbox_data("MAILBOX inbox MESSAGES 0 GUIDHASH " Z64
						 " FLAGHASH " Z64 " HIGHESTMODSEQ 0 UIDVALIDITY 1 UIDNEXT 1",
						 mbox, &st), 0);
	assert_string_equal(mbox, "INBOX");

	static const char *const bad[] = {
		"SYNC INBOX MESSAGES 3 GUIDHASH " H1 " FLAGHASH " H2 " HIGHESTMODSEQ 11 UIDVALIDITY 1",
		"SYNC INBOX MESSAGES 3 GUIDHASH " H1 " FLAGHASH " H2
		" HIGHESTMODSEQ 11 UIDVALIDITY 1 UIDNEXT 4 ",
		"SYNC INBOX MESSAGES 4294967296 GUIDHASH " H1 " FLAGHASH " H2
		" HIGHESTMODSEQ 11 UIDVALIDITY 1 UIDNEXT 4",
		"SYNC INBOX MESSAGES 3 GUIDHASH " Z64 "0 FLAGHASH " H2
		" HIGHESTMODSEQ 11 UIDVALIDITY 1 UIDNEXT 4",
		"SYNC INBOX MESSAGES 3 GUIDHASH C0300c5b9eb43cc226e646a37428e3ab29ea33e1fad17874a7bf78cd97228387"
		" FLAGHASH " H2 " HIGHESTMODSEQ 11 UIDVALIDITY 1 UIDNEXT 4",
		"SYNC ../x MESSAGES 3 GUIDHASH " H1 " FLAGHASH " H2
		" HIGHESTMODSEQ 11 UIDVALIDITY 1 UIDNEXT 4",
		"MAILBOX INBOX MESSAGES 3 GUIDHASH " H1 " FLAGHASH " H2
		" HIGHESTMODSEQ 11 UIDVALIDITY 1 UIDNEXT 4",
		"SYNC INBOX MESSAGES 3 FLAGHASH " H2 " GUIDHASH " H1
		" HIGHESTMODSEQ 11 UIDVALIDITY 1 UIDNEXT 4",
		"SYNC INBOX MESSAGES 3 GUIDHASH " H1 " FLAGHASH " H2
		" HIGHESTMODSEQ 9223372036854775808 UIDVALIDITY 1 UIDNEXT 4",
		"SYNC", "",
	};
	size_t i;

	for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_int_equal(repl_parse_sync_data(bad[i], mbox, &st), -1);
}

static void
test_guid_and_fetch_data(void **state)
{
	struct store_msg_info m;
	uint64_t lit;
	char out[REPL_MAXLINE];

	(void)state;
	assert_int_equal(repl_parse_guid_data("GUID 0190f3a2c2bb7a3b0000111122223333 3 11 b.example "
					      "(\\Flagged)", &m), 0);
	assert_false(m.expunged);
	assert_string_equal(m.guid, "0190f3a2c2bb7a3b0000111122223333");
	assert_int_equal(m.uid, 3);
	assert_int_equal(m.stamp.modseq, 11);
	assert_string_equal(m.stamp.origin, "b.example");
	assert_string_equal(m.flags, "\\Flagged");
	assert_true(repl_fmt_guid_data(out, sizeof out, &m) > 0);
	assert_string_equal(out, "GUID 0190f3a2c2bb7a3b0000111122223333 3 11 b.example (\\Flagged)");
	assert_int_equal(repl_parse_guid_data("GUID " G1 " 1 9 a.example (\\seen $Junk \\Seen)", &m), 0);
	assert_string_equal(m.flags, "$Junk \\Seen");
	assert_int_equal(repl_parse_guid_data("EXPUNGED " G1, &m), 0);
	assert_true(m.expunged);
	assert_string_equal(m.guid, G1);
	assert_true(repl_fmt_guid_data(out, sizeof out, &m) > 0);
	assert_string_equal(out, "EXPUNGED " G1);
	assert_int_equal(repl_parse_guid_data("EXPUNGED " G1 " ", &m), -1);
	assert_int_equal(repl_parse_guid_data("GUID " G1 " 1 9 a.example", &m), -1);
	assert_int_equal(repl_parse_guid_data("GUID " G1 " 1 9 a.example (\\Recent)", &m), -1);
	assert_int_equal(repl_parse_guid_data("GUID " G1 " -1 9 a.example ()", &m), -1);
	assert_int_equal(repl_parse_guid_data("GUID " G1 " 1 9 \"a b\" ()", &m), -1);
	assert_int_equal(repl_parse_guid_data("FETCH " G1 " 1 9 a ()", &m), -1);

	assert_int_equal(repl_parse_fetch_data("FETCH 0190f3a2c2bb7a3b0000111122223333 3 1718001000 "
					       "(\\Flagged) {2210}", &m, &lit), 0);
	assert_int_equal(m.uid, 3);
	assert_int_equal(m.date, 1718001000);
	assert_string_equal(m.flags, "\\Flagged");
	assert_int_equal(lit, 2210);
	assert_true(repl_fmt_fetch_data(out, sizeof out, &m, lit) > 0);
	assert_string_equal(out, "FETCH 0190f3a2c2bb7a3b0000111122223333 3 1718001000 (\\Flagged) {2210}");
	/* formatters refuse what the parsers would refuse */
	m.date = -1;
	assert_int_equal(repl_fmt_fetch_data(out, sizeof out, &m, 1), 0);
	assert_string_equal(out, "");
	m.date = 0;
	assert_true(repl_fmt_fetch_data(out, sizeof out, &m, 0) > 0);
	strcpy(m.flags, "\\Recent");
	assert_int_equal(repl_fmt_fetch_data(out, sizeof out, &m, 0), 0);
	assert_int_equal(repl_fmt_guid_data(out, sizeof out, &m), 0);
	strcpy(m.flags, "");
	m.expunged = false;
	strcpy(m.stamp.origin, "a b");
	assert_int_equal(repl_fmt_guid_data(out, sizeof out, &m), 0);
	strcpy(m.stamp.origin, "a");
	m.stamp.modseq = 9223372036854775808ull;
	assert_int_equal(repl_fmt_guid_data(out, sizeof out, &m), 0);
	m.stamp.modseq = 1;
	assert_true(repl_fmt_guid_data(out, sizeof out, &m) > 0);
	m.guid[5] = 'X';
	assert_int_equal(repl_fmt_guid_data(out, sizeof out, &m), 0);
	m.expunged = true;
	assert_int_equal(repl_fmt_guid_data(out, sizeof out, &m), 0);
	assert_int_equal(repl_parse_fetch_data("FETCH " G1 " 3 1718001000 () {22} ", &m, &lit), -1);
	assert_int_equal(repl_parse_fetch_data("FETCH " G1 " 3 1718001000 ()", &m, &lit), -1);
	assert_int_equal(repl_parse_fetch_data("FETCH " G1 " 3 253402300800 () {1}", &m, &lit), -1);
	assert_int_equal(repl_parse_fetch_data("FETCH " G1 " 3 1 () {9223372036854775808}", &m,
					       &lit), -1);
}

static void
test_astring_and_hex(void **state)
{
	char out[64];
	unsigned char bin[4] = { 0x00, 0x9f, 0xa0, 0xff }, back[4];

	(void)state;
	assert_int_equal(repl_fmt_astring(out, sizeof out, "INBOX"), 5);
	assert_string_equal(out, "INBOX");
	assert_int_equal(repl_fmt_astring(out, sizeof out, "a b"), 5);
	assert_string_equal(out, "\"a b\"");
	assert_int_equal(repl_fmt_astring(out, sizeof out, ""), 2);
	assert_string_equal(out, "\"\"");
	assert_int_equal(repl_fmt_astring(out, sizeof out, "a\"b\\c"), 9);
	assert_string_equal(out, "\"a\\\"b\\\\c\"");
	assert_int_equal(repl_fmt_astring(out, sizeof out, "(x)"), 5);
	assert_int_equal(repl_fmt_astring(out, sizeof out, "{5}"), 5);
	assert_int_equal(repl_fmt_astring(out, sizeof out, "j\xc3\xb6rg"), 7);
	assert_int_equal(repl_fmt_astring(out, sizeof out, "a\r\nb"), 0);
	assert_int_equal(repl_fmt_astring(out, sizeof out, "a\x7f"), 0);
	assert_int_equal(repl_fmt_astring(out, 5, "INBOX"), 0);
	assert_int_equal(repl_fmt_astring(out, 6, "INBOX"), 5);
	assert_int_equal(repl_fmt_astring(out, 5, "a b"), 0);
	assert_int_equal(repl_fmt_astring(out, 6, "a b"), 5);
	assert_int_equal(repl_fmt_astring(out, 0, "a"), 0);

	repl_hex(bin, 4, out);
	assert_string_equal(out, "009fa0ff");
	assert_int_equal(repl_unhex("009fa0ff", back, 4), 0);
	assert_memory_equal(bin, back, 4);
	assert_int_equal(repl_unhex("009FA0ff", back, 4), -1);
	assert_int_equal(repl_unhex("009fa0f", back, 4), -1);
	assert_int_equal(repl_unhex("009fa0ff0", back, 4), -1);
	assert_int_equal(repl_unhex("009fa0fg", back, 4), -1);
	assert_int_equal(repl_unhex("", back, 0), 0);
}

/* Random response lines: never a crash. */
/* Change capture's folder and subscription lines: names as astrings both
 * ways, a name with spaces stays one name; the rest is refused. */
static void
test_boxes_data(void **state)
{
	static const struct {
		const char *word, *a, *b, *line;
		uint32_t op;
	} ok[] = {
		{ "CREATE", "Work", NULL, "CREATE Work", PSEP_REPL_CREATE },
		{ "DELETE", "Sent Messages", NULL, "DELETE \"Sent Messages\"",
		  PSEP_REPL_DELETE },
		{ "RENAME", "Sent Messages", "Old Sent", "RENAME \"Sent Messages\" \"Old Sent\"",
		  PSEP_REPL_RENAME },
		{ "RENAME", "a \"q\"", "b\\c", "RENAME \"a \\\"q\\\"\" \"b\\\\c\"",
		  PSEP_REPL_RENAME },
		{ "SUBSCRIBE", "Lists.stowd", NULL, "SUBSCRIBE Lists.stowd",
		  PSEP_REPL_SUBSCRIBE },
		{ "UNSUBSCRIBE", "Sent Messages", NULL, "UNSUBSCRIBE \"Sent Messages\"",
		  PSEP_REPL_UNSUBSCRIBE },
	};
	static const char *const bad[] = {
		"", "CREATE", "CREATE ", "CREATE a b", "RENAME a", "RENAME a b c",
		"CREATE a..b", "DELETE .Sent", "FROB a", "CREATEX a", "CREATE \"a",
		"CREATE  a", "CREATE a ", "SUBSCRIBE a b", "UNSUBSCRIBE", "SUBSCRIBE a/b",
	};
	char line[1024], m[PSEP_NAME_MAX], m2[PSEP_NAME_MAX];
	uint32_t op;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		assert_int_equal(repl_fmt_boxes_data(line, sizeof line, ok[i].word, ok[i].a,
						     ok[i].b), strlen(ok[i].line));
		assert_string_equal(line, ok[i].line);
		assert_int_equal(repl_parse_boxes_data(line, &op, m, m2), 0);
		assert_int_equal(op, ok[i].op);
		assert_string_equal(m, ok[i].a);
		assert_string_equal(m2, ok[i].b != NULL ? ok[i].b : "");
	}
	assert_int_equal(repl_parse_boxes_data("create inbox", &op, m, m2), 0);
	assert_string_equal(m, "INBOX");
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		if (repl_parse_boxes_data(bad[i], &op, m, m2) != -1)
			fail_msg("accepted: \"%s\"", bad[i]);
		assert_int_equal(op, 0);
	}
	/* never a line that would not parse back */
	assert_int_equal(repl_fmt_boxes_data(line, sizeof line, "FROB", "a", NULL), 0);
	assert_int_equal(repl_fmt_boxes_data(line, sizeof line, "RENAME", "a", NULL), 0);
	assert_int_equal(repl_fmt_boxes_data(line, sizeof line, "CREATE", "a", "b"), 0);
	assert_int_equal(repl_fmt_boxes_data(line, sizeof line, "CREATE", "a/b", NULL), 0);
	assert_int_equal(repl_fmt_boxes_data(line, 8, "CREATE", "Work", NULL), 0);
}

static void
test_random_responses_never_crash(void **state)
{
	static const char alphabet[] = "* OKNBADYE[]()\\\"{}0123 abx=,-.\x80\x01";
	unsigned seed = 99;
	int i;

	(void)state;
	for (i = 0; i < 20000; i++) {
		char line[200], mbox[PSEP_NAME_MAX];
		struct repl_response r;
		struct store_mbox_state st;
		struct store_msg_info m;
		uint64_t lit;
		size_t n, j;

		seed = seed * 1103515245u + 12345u;
		n = (seed >> 16) % (sizeof line - 1);
		for (j = 0; j < n; j++) {
			seed = seed * 1103515245u + 12345u;
			line[j] = alphabet[(seed >> 16) % (sizeof alphabet - 1)];
		}
		line[n] = '\0';
		if (repl_parse_response(line, &r) == 0)
			assert_true(r.kind >= REPL_R_GREETING && r.kind <= REPL_R_UNTAGGED);
		(void)repl_parse_sync_data(line, mbox, &st);
		(void)repl_parse_guid_data(line, &m);
		(void)repl_parse_fetch_data(line, &m, &lit);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_greeting),
		cmocka_unit_test(test_tagged),
		cmocka_unit_test(test_untagged_and_data),
		cmocka_unit_test(test_state_data),
		cmocka_unit_test(test_guid_and_fetch_data),
		cmocka_unit_test(test_astring_and_hex),
		cmocka_unit_test(test_boxes_data),
		cmocka_unit_test(test_random_responses_never_crash),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
