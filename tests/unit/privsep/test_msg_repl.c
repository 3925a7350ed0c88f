/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/privsep/test_msg_repl.c - the IPC decoder for the replication
 * messages (REPL_REQ/REP, REPL_OP_REQ/REP, EVENT_REQ/REP, USERS_REQ/REP,
 * WRITE_STAMP):
 * command fields per op, the SAVE body rule, the names of a CAPTURE,
 * optional reply fds, the
 * field validators of the replies.  Framing, role and state matrices of
 * these types run with every other type in test_msg.c.
 *
 * Runs in:  the test process only (no privilege needed).
 * Method:   a command is built per case, sent raw on a SOCK_SEQPACKET pair
 *           with or without an fd, and psep_msg_recv's verdict is checked;
 *           no received fd may stay open.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "msgcase.h"

/* ---- commands: one change to a valid command of the op ----------------- */

static void
set(char *f, size_t size, const char *s)
{
	memset(f, 0, size);
	memcpy(f, s, strlen(s) < size ? strlen(s) : size);
}

#define SET(f, s) set((f), sizeof(f), (s))

/* The valid command of op (SAVE: the test body goes with it). */
static void
cmd_of(uint32_t op, struct psep_repl_cmd *c)
{
	memset(c, 0, sizeof(*c));
	fill_repl_cmd(c);
	c->op = op;
	if (op == PSEP_REPL_SAVE)
		return;
	c->uid_hint = 0;
	c->date = 0;
	c->body_size = 0;
	SET(c->flags, op == PSEP_REPL_STORE ? "+\\Seen -\\Flagged" : "");
	if (!psep_repl_op_is_event(op)) {
		c->modseq = 0;
		SET(c->origin, "");
		SET(c->peer, "");
	}
	if (op == PSEP_REPL_CREATE || op == PSEP_REPL_DELETE ||
	    op == PSEP_REPL_RENAME || op == PSEP_REPL_SUBSCRIBE ||
	    op == PSEP_REPL_UNSUBSCRIBE) {
		c->modseq = 0;
	}
	if (op != PSEP_REPL_STORE && op != PSEP_REPL_EXPUNGE &&
	    op != PSEP_REPL_FETCH)
		SET(c->guid, "");
	if (op == PSEP_REPL_RENAME)
		SET(c->mailbox2, "Archive.Old");
	if (op == PSEP_REPL_LIST)
		SET(c->mailbox, "");
}

enum change {
	CH_NONE,
	CH_OP_0, CH_OP_PAST, CH_OP_HUGE,
	CH_ORIGIN_EMPTY, CH_ORIGIN_SPACE, CH_ORIGIN_CTRL, CH_ORIGIN_64, CH_ORIGIN_NONUL,
	CH_PEER_SPACE, CH_PEER_NONUL, CH_PEER_8BIT,
	CH_USER_EMPTY, CH_USER_CTRL, CH_USER_NONUL,
	CH_MAILBOX_DOTDOT, CH_MAILBOX_SLASH, CH_MAILBOX_EMPTY, CH_MAILBOX_NONUL,
	CH_MAILBOX_LEADING_DOT, CH_MAILBOX_SET,
	CH_MAILBOX2_SET, CH_MAILBOX2_BAD,
	CH_GUID_UPPER, CH_GUID_EMPTY, CH_GUID_SET, CH_GUID_NONUL,
	CH_FLAGS_CTRL, CH_FLAGS_SET, CH_FLAGS_NONUL,
	CH_MODSEQ_SET, CH_BODY_SIZE_SET,
};

struct cmd_case {
	const char *name;
	uint32_t op;
	enum change ch;
	bool accept;
};

static void
cmd_change(struct psep_repl_cmd *c, enum change ch)
{
	switch (ch) {
	case CH_NONE: break;
	case CH_OP_0: c->op = 0; break;
	case CH_OP_PAST: c->op = PSEP_REPL_OP_MAX + 1; break;
	case CH_OP_HUGE: c->op = 0xffffffffu; break;
	case CH_ORIGIN_EMPTY: SET(c->origin, ""); break;
	case CH_ORIGIN_SPACE: SET(c->origin, "a example"); break;
	case CH_ORIGIN_CTRL: SET(c->origin, "a\texample"); break;
	case CH_ORIGIN_64:
		memset(c->origin, 'o', 64);
		c->origin[64] = '\0';
		break;
	case CH_ORIGIN_NONUL: memset(c->origin, 'o', sizeof(c->origin)); break;
	case CH_PEER_SPACE: SET(c->peer, "b example"); break;
	case CH_PEER_NONUL: memset(c->peer, 'p', sizeof(c->peer)); break;
	case CH_PEER_8BIT: SET(c->peer, "b\xc3\xa4"); break;
	case CH_USER_EMPTY: SET(c->user, ""); break;
	case CH_USER_CTRL: SET(c->user, "al\nice"); break;
	case CH_USER_NONUL: memset(c->user, 'u', sizeof(c->user)); break;
	case CH_MAILBOX_DOTDOT: SET(c->mailbox, "a..b"); break;
	case CH_MAILBOX_SLASH: SET(c->mailbox, "a/b"); break;
	case CH_MAILBOX_EMPTY: SET(c->mailbox, ""); break;
	case CH_MAILBOX_NONUL: memset(c->mailbox, 'm', sizeof(c->mailbox)); break;
	case CH_MAILBOX_LEADING_DOT: SET(c->mailbox, ".Sent"); break;
	case CH_MAILBOX_SET: SET(c->mailbox, "Sent"); break;
	case CH_MAILBOX2_SET: SET(c->mailbox2, "Other"); break;
	case CH_MAILBOX2_BAD: SET(c->mailbox2, "../x"); break;
	case CH_GUID_UPPER: SET(c->guid, "0123456789ABCDEF0123456789ABCDEF"); break;
	case CH_GUID_EMPTY: SET(c->guid, ""); break;
	case CH_GUID_SET: SET(c->guid, TEST_GUID); break;
	case CH_GUID_NONUL: memset(c->guid, 'a', sizeof(c->guid)); break;
	case CH_FLAGS_CTRL: SET(c->flags, "\\Seen\r\n"); break;
	case CH_FLAGS_SET: SET(c->flags, "\\Seen"); break;
	case CH_FLAGS_NONUL: memset(c->flags, 'f', sizeof(c->flags)); break;
	case CH_MODSEQ_SET: c->modseq = 9; break;
	case CH_BODY_SIZE_SET: c->body_size = BODY_LEN; break;
	}
}

#define C(n, op, ch, ok) { (n), PSEP_REPL_##op, (ch), (ok) }

static const struct cmd_case cmd_cases[] = {
	C("SAVE valid", SAVE, CH_NONE, true),
	C("STORE valid", STORE, CH_NONE, true),
	C("EXPUNGE valid", EXPUNGE, CH_NONE, true),
	C("CREATE valid", CREATE, CH_NONE, true),
	C("DELETE valid", DELETE, CH_NONE, true),
	C("RENAME valid", RENAME, CH_NONE, true),
	C("LIST valid", LIST, CH_NONE, true),
	C("SYNC valid", SYNC, CH_NONE, true),
	C("GUIDS valid", GUIDS, CH_NONE, true),
	C("FETCH valid", FETCH, CH_NONE, true),
	C("SUBSCRIBE valid", SUBSCRIBE, CH_NONE, true),
	C("UNSUBSCRIBE valid", UNSUBSCRIBE, CH_NONE, true),
	C("op 0", SAVE, CH_OP_0, false),
	C("op past the last", SAVE, CH_OP_PAST, false),
	C("op ~0", SAVE, CH_OP_HUGE, false),
	C("SAVE empty origin", SAVE, CH_ORIGIN_EMPTY, false),
	C("SAVE origin with space", SAVE, CH_ORIGIN_SPACE, false),
	C("SAVE origin with tab", SAVE, CH_ORIGIN_CTRL, false),
	C("SAVE origin of 64 octets", SAVE, CH_ORIGIN_64, true),
	C("SAVE origin without NUL", SAVE, CH_ORIGIN_NONUL, false),
	C("CREATE empty origin", CREATE, CH_ORIGIN_EMPTY, false),
	C("SUBSCRIBE empty origin", SUBSCRIBE, CH_ORIGIN_EMPTY, false),
	C("UNSUBSCRIBE origin with space", UNSUBSCRIBE, CH_ORIGIN_SPACE, false),
	C("SUBSCRIBE empty user", SUBSCRIBE, CH_USER_EMPTY, false),
	C("SUBSCRIBE empty mailbox", SUBSCRIBE, CH_MAILBOX_EMPTY, false),
	C("SUBSCRIBE mailbox a..b", SUBSCRIBE, CH_MAILBOX_DOTDOT, false),
	C("UNSUBSCRIBE mailbox a/b", UNSUBSCRIBE, CH_MAILBOX_SLASH, false),
	C("UNSUBSCRIBE mailbox .Sent", UNSUBSCRIBE, CH_MAILBOX_LEADING_DOT, false),
	C("SUBSCRIBE with a second name", SUBSCRIBE, CH_MAILBOX2_SET, false),
	C("UNSUBSCRIBE with a guid", UNSUBSCRIBE, CH_GUID_SET, false),
	C("SUBSCRIBE with flags", SUBSCRIBE, CH_FLAGS_SET, false),
	C("SUBSCRIBE with a body size", SUBSCRIBE, CH_BODY_SIZE_SET, false),
	C("LIST with an origin", LIST, CH_ORIGIN_64, false),
	C("SAVE peer with space", SAVE, CH_PEER_SPACE, false),
	C("SAVE peer without NUL", SAVE, CH_PEER_NONUL, false),
	C("SAVE peer with 8-bit octets", SAVE, CH_PEER_8BIT, false),
	C("SAVE empty user", SAVE, CH_USER_EMPTY, false),
	C("SAVE user with LF", SAVE, CH_USER_CTRL, false),
	C("SAVE user without NUL", SAVE, CH_USER_NONUL, false),
	C("LIST empty user", LIST, CH_USER_EMPTY, false),
	C("SAVE mailbox a..b", SAVE, CH_MAILBOX_DOTDOT, false),
	C("SAVE mailbox a/b", SAVE, CH_MAILBOX_SLASH, false),
	C("SAVE empty mailbox", SAVE, CH_MAILBOX_EMPTY, false),
	C("SAVE mailbox without NUL", SAVE, CH_MAILBOX_NONUL, false),
	C("SYNC mailbox .Sent", SYNC, CH_MAILBOX_LEADING_DOT, false),
	C("SYNC mailbox Sent", SYNC, CH_MAILBOX_SET, true),
	C("LIST with a mailbox", LIST, CH_MAILBOX_SET, false),
	C("RENAME bad new name", RENAME, CH_MAILBOX2_BAD, false),
	C("RENAME empty old name", RENAME, CH_MAILBOX_EMPTY, false),
	C("CREATE with a second name", CREATE, CH_MAILBOX2_SET, false),
	C("SAVE upper-case guid", SAVE, CH_GUID_UPPER, false),
	C("SAVE empty guid", SAVE, CH_GUID_EMPTY, false),
	C("STORE empty guid", STORE, CH_GUID_EMPTY, false),
	C("EXPUNGE guid without NUL", EXPUNGE, CH_GUID_NONUL, false),
	C("FETCH empty guid", FETCH, CH_GUID_EMPTY, false),
	C("CREATE with a guid", CREATE, CH_GUID_SET, false),
	C("SYNC with a guid", SYNC, CH_GUID_SET, false),
	C("SAVE flags with CR LF", SAVE, CH_FLAGS_CTRL, false),
	C("SAVE flags without NUL", SAVE, CH_FLAGS_NONUL, false),
	C("EXPUNGE with flags", EXPUNGE, CH_FLAGS_SET, false),
	C("GUIDS with a modseq", GUIDS, CH_MODSEQ_SET, false),
	C("STORE with a modseq", STORE, CH_MODSEQ_SET, true),
	C("STORE with a body size", STORE, CH_BODY_SIZE_SET, false),
};

/* Datagram of type with the command cmd in it. */
static size_t
build(struct dgram *d, uint16_t type, const struct psep_repl_cmd *cmd)
{
	const struct mcase *c = case_of(type);
	unsigned char *b;

	dg_build(c, d);
	b = dg_body(d);
	switch (type) {
	case PSEP_REPL_REQ:
		memcpy(b + offsetof(struct psep_repl_req, cmd), cmd, sizeof(*cmd));
		break;
	case PSEP_REPL_OP_REQ:
		memcpy(b + offsetof(struct psep_repl_op_req, cmd), cmd, sizeof(*cmd));
		break;
	default: {
		uint32_t zero = 0;

		memcpy(b + offsetof(struct psep_event_req, cmd), cmd, sizeof(*cmd));
		if (cmd->op != PSEP_REPL_SAVE) {
			/* the prefix goes with a SAVE only */
			memcpy(b + offsetof(struct psep_event_req, prefix_len), &zero, 4);
			dg_set_len(d, HDR_LEN + sizeof(struct psep_event_req));
		}
		break;
	}
	}
	return d->len;
}

/* Send d with a sealed body (with_fd) or none; true if the verdict is
 * the wanted one. */
static bool
verdict(struct pair *p, const struct dgram *d, uint16_t type, bool with_fd,
	bool accept, const char *what)
{
	const struct mcase *c = case_of(type);
	bool ok;

	send_dgram(p->tx, d, with_fd ? TFD_MEMFD : TFD_NONE, with_fd ? 1 : 0);
	if (accept)
		ok = accepted(p->rx, valid_role(c), valid_state(c), d,
			      with_fd ? TFD_MEMFD : TFD_NONE, what);
	else
		ok = rejected(p->rx, valid_role(c), valid_state(c), what);
	assert_queue_empty(p);
	assert_no_fd_leak(&p->before, what);
	return ok;
}

static void
run_cmd_cases(struct pair *p, uint16_t type)
{
	struct psep_repl_cmd cmd;
	char what[160];
	size_t i, wrong = 0;

	for (i = 0; i < sizeof(cmd_cases) / sizeof(cmd_cases[0]); i++) {
		const struct cmd_case *k = &cmd_cases[i];
		bool event = psep_repl_op_is_event(k->op);

		if (type == PSEP_EVENT_REQ && !event)
			continue;
		cmd_of(k->op, &cmd);
		cmd_change(&cmd, k->ch);
		build(&p->d, type, &cmd);
		snprintf(what, sizeof(what), "%s: %s", psep_type_name(type), k->name);
		if (!verdict(p, &p->d, type, k->op == PSEP_REPL_SAVE, k->accept, what))
			wrong++;
	}
	if (wrong > 0)
		fail_msg("%zu command cases got the wrong verdict", wrong);
}

static void
test_repl_req_command_fields_checked_per_op(void **state)
{
	run_cmd_cases(*state, PSEP_REPL_REQ);
}

static void
test_repl_op_req_command_fields_checked_per_op(void **state)
{
	run_cmd_cases(*state, PSEP_REPL_OP_REQ);
}

static void
test_event_req_command_fields_checked_per_op(void **state)
{
	run_cmd_cases(*state, PSEP_EVENT_REQ);
}

/* SAVE needs its body; every other op must come without one. */
static void
test_body_required_for_save_and_refused_otherwise(void **state)
{
	static const uint16_t types[] = { PSEP_REPL_REQ, PSEP_REPL_OP_REQ,
					  PSEP_EVENT_REQ };
	struct pair *p = *state;
	struct psep_repl_cmd cmd;
	char what[128];
	size_t k;
	uint32_t op;

	for (k = 0; k < sizeof(types) / sizeof(types[0]); k++) {
		for (op = PSEP_REPL_SAVE; op <= PSEP_REPL_OP_MAX; op++) {
			if (types[k] == PSEP_EVENT_REQ && !psep_repl_op_is_event(op))
				continue;
			cmd_of(op, &cmd);
			build(&p->d, types[k], &cmd);
			snprintf(what, sizeof(what), "%s op %u %s body",
				 psep_type_name(types[k]), op,
				 op == PSEP_REPL_SAVE ? "without" : "with");
			if (!verdict(p, &p->d, types[k], op != PSEP_REPL_SAVE, false, what))
				fail_msg("%s: wrong verdict", what);
		}
	}
}

/* CAPTURE may carry the sealed names of its change events: exactly
 * body_size bytes, at most PSEP_CAPTURE_NAMES_MAX; no size without it. */
static void
test_capture_names_memfd_size_checked(void **state)
{
	static const uint16_t types[] = { PSEP_REPL_REQ, PSEP_REPL_OP_REQ };
	static const struct {
		uint64_t size;
		bool fd, accept;
	} cases[] = {
		{ BODY_LEN, true, true },
		{ 0, false, true },
		{ 0, true, false },
		{ BODY_LEN + 1, true, false },
		{ BODY_LEN, false, false },
		{ PSEP_CAPTURE_NAMES_MAX + 1, true, false },
	};
	struct pair *p = *state;
	struct psep_repl_cmd cmd;
	char what[128];

	for (size_t k = 0; k < sizeof(types) / sizeof(types[0]); k++) {
		for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
			cmd_of(PSEP_REPL_CAPTURE, &cmd);
			cmd.body_size = cases[i].size;
			build(&p->d, types[k], &cmd);
			snprintf(what, sizeof(what), "%s CAPTURE case %zu",
				 psep_type_name(types[k]), i);
			if (!verdict(p, &p->d, types[k], cases[i].fd, cases[i].accept, what))
				fail_msg("%s: wrong verdict", what);
		}
	}
}

/* ---- EVENT_REQ: queries, want_acks, prefix ---------------------------- */

static void
test_event_req_query_op_and_bad_counts_rejected(void **state)
{
	static const struct patch t[] = {
		NUM("EVENT_REQ want_acks 16", PSEP_EVENT_REQ, psep_event_req,
		    want_acks, 16, true),
		NUM("EVENT_REQ want_acks 17", PSEP_EVENT_REQ, psep_event_req,
		    want_acks, 17, false),
		NUM("EVENT_REQ want_acks ~0", PSEP_EVENT_REQ, psep_event_req,
		    want_acks, 0xffffffffu, false),
		NUM("EVENT_REQ prefix_len + 1", PSEP_EVENT_REQ, psep_event_req,
		    prefix_len, PREFIX_LEN + 1, false),
		NUM("EVENT_REQ prefix_len 0", PSEP_EVENT_REQ, psep_event_req,
		    prefix_len, 0, false),
		NUM("EVENT_REQ body_size + 1", PSEP_EVENT_REQ, psep_event_req,
		    cmd.body_size, BODY_LEN + 1, false),
		NUM("EVENT_REP status 4", PSEP_EVENT_REP, psep_event_rep, status, 4, false),
		NUM("EVENT_REP status timeout", PSEP_EVENT_REP, psep_event_rep, status,
		    PSEP_EV_TIMEOUT, true),
		NUM("EVENT_REP acks 17", PSEP_EVENT_REP, psep_event_rep, acks, 17, false),
	};
	struct pair *p = *state;
	struct psep_repl_cmd cmd;
	uint32_t op;

	RUN_PATCHES(p, t);
	for (op = PSEP_REPL_LIST; op <= PSEP_REPL_OP_MAX; op++) {
		if (psep_repl_op_is_event(op))
			continue;
		cmd_of(op, &cmd);
		build(&p->d, PSEP_EVENT_REQ, &cmd);
		if (!verdict(p, &p->d, PSEP_EVENT_REQ, false, false, "EVENT_REQ query"))
			fail_msg("EVENT_REQ of query op %u accepted", op);
	}
	/* A prefix with an event other than SAVE. */
	cmd_of(PSEP_REPL_EXPUNGE, &cmd);
	build(&p->d, PSEP_EVENT_REQ, &cmd);
	{
		uint32_t n = 4;

		memcpy(dg_body(&p->d) + offsetof(struct psep_event_req, prefix_len), &n, 4);
		memcpy(dg_body(&p->d) + sizeof(struct psep_event_req), "X: y", 4);
		dg_set_len(&p->d, HDR_LEN + sizeof(struct psep_event_req) + 4);
	}
	if (!verdict(p, &p->d, PSEP_EVENT_REQ, false, false, "EXPUNGE with a prefix"))
		fail_msg("EVENT_REQ EXPUNGE with a prefix accepted");
}

/* ---- replies ------------------------------------------------------------ */

#define RR(n, f, v, ok) NUM(n, PSEP_REPL_REP, psep_repl_rep, f, v, ok)
#define RRS(n, f, s, ok) STR(n, PSEP_REPL_REP, psep_repl_rep, f, s, ok)
#define OR(n, f, v, ok) NUM(n, PSEP_REPL_OP_REP, psep_repl_op_rep, f, v, ok)
#define ORS(n, f, s, ok) STR(n, PSEP_REPL_OP_REP, psep_repl_op_rep, f, s, ok)

static const struct patch reply_patches[] = {
	RR("status BAD", status, PSEP_RS_BAD, true),
	RR("status 3", status, 3, false),
	RR("effective 2", effective, 2, false),
	RRS("origin empty", origin, "", true),
	RRS("origin with space", origin, "a b", false),
	RRS("code with CR", code, "UID\r1", false),
	RRS("text with LF", text, "sa\nved", false),
	RRS("flags with tab", flags, "\\Seen\t", false),
	RR("size 1 without an fd", size, 1, true),
	NONUL("REPL_REP origin", PSEP_REPL_REP, psep_repl_rep, origin, NULL),
	NONUL("REPL_REP code", PSEP_REPL_REP, psep_repl_rep, code, NULL),
	NONUL("REPL_REP text", PSEP_REPL_REP, psep_repl_rep, text, NULL),
	NONUL("REPL_REP flags", PSEP_REPL_REP, psep_repl_rep, flags, NULL),
	OR("err -1", err, 0xffffffffu, false),
	OR("err ENOSPC", err, ENOSPC, true),
	OR("result LIMIT", result, 6, true),
	OR("result 7", result, 7, false),
	OR("effective 2", effective, 2, false),
	ORS("origin with control byte", origin, "a\x01", false),
	ORS("filename with /", filename, "../x", false),
	ORS("filename hidden", filename, ".x", false),
	ORS("filename empty", filename, "", true),
	ORS("what with LF", what, "a\nb", false),
	NONUL("REPL_OP_REP what", PSEP_REPL_OP_REP, psep_repl_op_rep, what, NULL),
	NONUL("REPL_OP_REP flags", PSEP_REPL_OP_REP, psep_repl_op_rep, flags, NULL),
	NONUL("REPL_OP_REP filename", PSEP_REPL_OP_REP, psep_repl_op_rep, filename,
	      NULL),
	NONUL("REPL_OP_REP origin", PSEP_REPL_OP_REP, psep_repl_op_rep, origin, NULL),
	NUM("USERS_REP err -1", PSEP_USERS_REP, psep_users_rep, err, 0xffffffffu,
	    false),
	NUM("USERS_REP err EIO with the fd", PSEP_USERS_REP, psep_users_rep, err, EIO,
	    false),
};

static void
test_reply_field_validators(void **state)
{
	RUN_PATCHES((struct pair *)*state, reply_patches);
}

/* A reply fd: a sealed memfd or a read-only file of the announced size;
 * a writable file, a pipe or a socket never. */
static void
test_reply_fd_kind_and_size_checked(void **state)
{
	static const struct {
		const char *name;
		enum fdmake make;
		bool accept;
	} kinds[] = {
		{ "sealed memfd", FM_MEMFD_SEALED, true },
		{ "unsealed memfd (writable)", FM_MEMFD_UNSEALED, false },
		{ "writable regular file", FM_TMPFILE, false },
		{ "pipe", FM_PIPE, false },
		{ "socket", FM_SOCKET, false },
		{ "directory", FM_DIR, false },
		{ "longer memfd", FM_MEMFD_LONGER, false },
	};
	static const struct {
		uint16_t type;
		size_t off;
	} types[] = {
		{ PSEP_REPL_REP, offsetof(struct psep_repl_rep, size) },
		{ PSEP_REPL_OP_REP, offsetof(struct psep_repl_op_rep, size) },
	};
	struct pair *p = *state;
	char what[128];
	size_t i, k;

	for (k = 0; k < sizeof(types) / sizeof(types[0]); k++) {
		const struct mcase *c = case_of(types[k].type);

		for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
			uint64_t size = BODY_LEN;
			int fd = fd_make(kinds[i].make);

			dg_build(c, &p->d);
			memcpy(dg_body(&p->d) + types[k].off, &size, 8);
			send_raw(p->tx, p->d.buf, p->d.len, &fd, 1);
			close(fd);
			snprintf(what, sizeof(what), "%s with a %s", c->name, kinds[i].name);
			if (kinds[i].accept)
				expect_accept(p->rx, valid_role(c), valid_state(c), &p->d,
					      TFD_MEMFD, what);
			else
				expect_reject(p->rx, valid_role(c), valid_state(c), what);
			assert_no_fd_leak(&p->before, what);
		}
	}
}

/* A FETCH reply carries the message file opened read-only. */
static void
test_reply_with_read_only_file_accepted(void **state)
{
	struct pair *p = *state;
	const struct mcase *c = case_of(PSEP_REPL_REP);
	char path[] = "/tmp/stowd-test-XXXXXX";
	uint64_t size = BODY_LEN;
	int wfd = mkostemp(path, O_CLOEXEC), fd;

	assert_true(wfd >= 0);
	assert_int_equal(write(wfd, TEST_BODY, BODY_LEN), (ssize_t)BODY_LEN);
	close(wfd);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	unlink(path);
	assert_true(fd >= 0);
	dg_build(c, &p->d);
	memcpy(dg_body(&p->d) + offsetof(struct psep_repl_rep, size), &size, 8);
	send_raw(p->tx, p->d.buf, p->d.len, &fd, 1);
	close(fd);
	expect_accept(p->rx, valid_role(c), valid_state(c), &p->d, TFD_MEMFD,
		      "REPL_REP with a read-only file");
	assert_no_fd_leak(&p->before, "REPL_REP with a read-only file");
}

/* A failed operation has no data; a failed users list has no fd. */
static void
test_failed_replies_with_an_fd_rejected(void **state)
{
	struct pair *p = *state;
	const struct mcase *c = case_of(PSEP_REPL_OP_REP);
	int32_t err = EIO;
	uint64_t size = BODY_LEN;

	dg_build(c, &p->d);
	memcpy(dg_body(&p->d) + offsetof(struct psep_repl_op_rep, err), &err, 4);
	memcpy(dg_body(&p->d) + offsetof(struct psep_repl_op_rep, size), &size, 8);
	send_dgram(p->tx, &p->d, TFD_MEMFD, 1);
	expect_reject(p->rx, valid_role(c), valid_state(c), "REPL_OP_REP err with fd");
	c = case_of(PSEP_USERS_REP);
	dg_build(c, &p->d);
	memcpy(dg_body(&p->d) + offsetof(struct psep_users_rep, err), &err, 4);
	send_dgram(p->tx, &p->d, TFD_NONE, 0);
	expect_accept(p->rx, valid_role(c), valid_state(c), &p->d, TFD_NONE,
		      "USERS_REP err without fd");
	assert_no_fd_leak(&p->before, "failed replies");
}

/* repld may send REPL_REQ and be handed clients; LOG from it is accepted. */
static void
test_repld_role_may_send_repl_req_and_log(void **state)
{
	struct pair *p = *state;

	dg_build(case_of(PSEP_REPL_REQ), &p->d);
	check_verdict(p, case_of(PSEP_REPL_REQ), &p->d, PSEP_ROLE_REPLD,
		      PSEP_STATE_READY, true, "REPL_REQ from repld");
	dg_build(case_of(PSEP_LOG), &p->d);
	check_verdict(p, case_of(PSEP_LOG), &p->d, PSEP_ROLE_REPLD,
		      PSEP_STATE_READY, true, "LOG from repld");
	dg_build(case_of(PSEP_REPL_REQ), &p->d);
	check_verdict(p, case_of(PSEP_REPL_REQ), &p->d, PSEP_ROLE_LMTPD,
		      PSEP_STATE_READY, false, "REPL_REQ from lmtpd");
	dg_build(case_of(PSEP_EVENT_REP), &p->d);
	check_verdict(p, case_of(PSEP_EVENT_REP), &p->d, PSEP_ROLE_REPLD,
		      PSEP_STATE_READY, false, "EVENT_REP from repld");
}

/* ---- WRITE_STAMP --------------------------------------------------------- */

#define WST(n, f, v, ok) \
	NUM("WRITE_STAMP " n, PSEP_WRITE_STAMP, psep_write_rep, f, v, ok)
#define WSTS(n, f, s, ok) \
	STR("WRITE_STAMP " n, PSEP_WRITE_STAMP, psep_write_rep, f, s, ok)

/* A stamp announces a save that has not failed: err 0, a uid and a modseq,
 * and the GUID and file name a successful WRITE_REP has. */
static const struct patch write_stamp_patches[] = {
	WST("err ENOSPC", err, ENOSPC, false),
	WST("err EIO", err, EIO, false),
	WST("err -1", err, 0xffffffffu, false),
	WST("imap_uid 0", imap_uid, 0, false),
	WST("imap_uid 1", imap_uid, 1, true),
	WST("imap_uid ~0", imap_uid, 0xffffffffu, true),
	WST("modseq 0", modseq, 0, false),
	WST("modseq 1", modseq, 1, true),
	WSTS("guid empty", guid, "", false),
	WSTS("guid upper-case", guid, "0123456789ABCDEF0123456789ABCDEF", false),
	WSTS("guid 31 digits", guid, "0123456789abcdef0123456789abcde", false),
	WSTS("guid non-hex", guid, "xyz", false),
	WSTS("filename empty", filename, "", false),
	WSTS("filename ../new/x", filename, "../new/x", false),
	WSTS("filename new/x", filename, "new/x", false),
	WSTS("filename ..", filename, "..", false),
	WSTS("filename hidden", filename, ".stowd", false),
	WSTS("filename with LF", filename, "17.x\ny", false),
	WSTS("filename plain", filename, "17.x", true),
	WSTS("what with LF", what, "a\nb", false),
	NONUL("WRITE_STAMP guid", PSEP_WRITE_STAMP, psep_write_rep, guid, NULL),
	NONUL("WRITE_STAMP filename", PSEP_WRITE_STAMP, psep_write_rep, filename,
	      NULL),
};

static void
test_write_stamp_field_validators(void **state)
{
	RUN_PATCHES((struct pair *)*state, write_stamp_patches);
}

/* Only a writer announces a stamp, and only once it runs; lmtpd, the
 * supervisor and the replication children never. */
static void
test_write_stamp_only_from_writers_when_running(void **state)
{
	static const struct {
		enum psep_role role;
		enum psep_state state;
		bool accept;
		const char *what;
	} t[] = {
		{ PSEP_ROLE_WRITER_SETEUID, PSEP_STATE_READY, true,
		  "WRITE_STAMP from writer-seteuid" },
		{ PSEP_ROLE_WRITER_CHILD, PSEP_STATE_READY, true,
		  "WRITE_STAMP from writer-child" },
		{ PSEP_ROLE_WRITER_CHILD, PSEP_STATE_STOPPING, true,
		  "WRITE_STAMP from writer-child while stopping" },
		{ PSEP_ROLE_LMTPD, PSEP_STATE_READY, false, "WRITE_STAMP from lmtpd" },
		{ PSEP_ROLE_SUPERVISOR, PSEP_STATE_READY, false,
		  "WRITE_STAMP from the supervisor" },
		{ PSEP_ROLE_REPL_HOOK, PSEP_STATE_READY, false,
		  "WRITE_STAMP from repl-hook" },
		{ PSEP_ROLE_REPLD, PSEP_STATE_READY, false, "WRITE_STAMP from repld" },
		{ PSEP_ROLE_WRITER_SETEUID, PSEP_STATE_NEW, false,
		  "WRITE_STAMP before HELLO" },
	};
	struct pair *p = *state;
	const struct mcase *c = case_of(PSEP_WRITE_STAMP);
	size_t i;

	assert_string_equal(psep_type_name(PSEP_WRITE_STAMP), "WRITE_STAMP");
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		dg_build(c, &p->d);
		check_verdict(p, c, &p->d, t[i].role, t[i].state, t[i].accept,
			      t[i].what);
	}
}

/* ---- change capture: WATCH_* ---------------------------------------------- */

#define WR(n, f, v, ok) NUM("WATCH_REP " n, PSEP_WATCH_REP, psep_watch_rep, f, v, ok)
#define WOR(n, f, v, ok) \
	NUM("WATCH_OP_REP " n, PSEP_WATCH_OP_REP, psep_watch_rep, f, v, ok)
#define WQS(n, f, s, ok) STR("WATCH_REQ " n, PSEP_WATCH_REQ, psep_watch_req, f, s, ok)
#define WOQ(n, f, v, ok) \
	NUM("WATCH_OP_REQ " n, PSEP_WATCH_OP_REQ, psep_watch_op_req, f, v, ok)
#define WOQS(n, f, s, ok) \
	STR("WATCH_OP_REQ " n, PSEP_WATCH_OP_REQ, psep_watch_op_req, f, s, ok)

/* The user is a name; a writer gets valid credentials and paths; a reply
 * has its list unless it failed (ENOSPC: the watches added before). */
static const struct patch watch_patches[] = {
	WQS("user empty", user, "", false),
	WQS("user with LF", user, "al\nice", false),
	NONUL("WATCH_REQ user", PSEP_WATCH_REQ, psep_watch_req, user, NULL),
	WOQ("uid 0", uid, 0, false),
	WOQ("ngroups too many", ngroups, PSEP_MAX_GROUPS + 1, false),
	WOQS("mail_base relative", mail_base, "var/mail", false),
	WOQS("mail_rel with ..", mail_rel, "../x", false),
	WOQS("user with CR", user, "a\rb", false),
	NONUL("WATCH_OP_REQ user", PSEP_WATCH_OP_REQ, psep_watch_op_req, user, NULL),
	WR("err ENOSPC with the list", err, ENOSPC, true),
	WR("err EIO with an fd", err, EIO, false),
	WR("err -1", err, 0xffffffffu, false),
	WOR("err ENOSPC with the list", err, ENOSPC, true),
	WOR("err EACCES with an fd", err, EACCES, false),
};

static void
test_watch_field_validators(void **state)
{
	RUN_PATCHES((struct pair *)*state, watch_patches);
}

/* The inotify instance is an anonymous inode: a memfd, a socket, a pipe
 * or a directory in its place is refused (and closed), as is no fd. */
static void
test_watch_req_needs_an_inotify_instance(void **state)
{
	static const enum fdmake kinds[] = { FM_MEMFD_SEALED, FM_SOCKET, FM_PIPE,
					     FM_DIR, FM_DEVNULL };
	static const uint16_t types[] = { PSEP_WATCH_REQ, PSEP_WATCH_OP_REQ };
	struct pair *p = *state;
	char what[96];
	size_t i, k;

	for (i = 0; i < 2; i++) {
		const struct mcase *c = case_of(types[i]);

		for (k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
			int fd = fd_make(kinds[k]);

			dg_build(c, &p->d);
			send_raw(p->tx, p->d.buf, p->d.len, &fd, 1);
			close(fd);
			snprintf(what, sizeof(what), "%s with fd kind %d", c->name,
				 (int)kinds[k]);
			expect_reject(p->rx, valid_role(c), valid_state(c), what);
			assert_no_fd_leak(&p->before, what);
		}
	}
	/* a successful reply without its list */
	dg_build(case_of(PSEP_WATCH_REP), &p->d);
	send_dgram(p->tx, &p->d, TFD_NONE, 0);
	expect_reject(p->rx, PSEP_ROLE_SUPERVISOR, PSEP_STATE_READY, "WATCH_REP no list");
	/* only repl-hook asks for watches; only the supervisor gives a writer
	 * the instance */
	dg_build(case_of(PSEP_WATCH_REQ), &p->d);
	check_verdict(p, case_of(PSEP_WATCH_REQ), &p->d, PSEP_ROLE_REPLD,
		      PSEP_STATE_READY, false, "WATCH_REQ from repld");
	dg_build(case_of(PSEP_WATCH_REQ), &p->d);
	check_verdict(p, case_of(PSEP_WATCH_REQ), &p->d, PSEP_ROLE_WRITER_CHILD,
		      PSEP_STATE_READY, false, "WATCH_REQ from a writer");
	dg_build(case_of(PSEP_WATCH_OP_REQ), &p->d);
	check_verdict(p, case_of(PSEP_WATCH_OP_REQ), &p->d, PSEP_ROLE_REPL_HOOK,
		      PSEP_STATE_READY, false, "WATCH_OP_REQ from repl-hook");
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, pair_setup, pair_teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_repl_req_command_fields_checked_per_op),
		T(test_repl_op_req_command_fields_checked_per_op),
		T(test_event_req_command_fields_checked_per_op),
		T(test_body_required_for_save_and_refused_otherwise),
		T(test_capture_names_memfd_size_checked),
		T(test_event_req_query_op_and_bad_counts_rejected),
		T(test_reply_field_validators),
		T(test_reply_fd_kind_and_size_checked),
		T(test_reply_with_read_only_file_accepted),
		T(test_failed_replies_with_an_fd_rejected),
		T(test_repld_role_may_send_repl_req_and_log),
		T(test_write_stamp_field_validators),
		T(test_write_stamp_only_from_writers_when_running),
		T(test_watch_field_validators),
		T(test_watch_req_needs_an_inotify_instance),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
