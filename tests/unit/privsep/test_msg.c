/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/privsep/test_msg.c - the IPC decoder, through the real
 * psep_msg_recv() on real SOCK_SEQPACKET socketpairs: framing (length,
 * type, flags), sender role and peer state, and every field validator.
 * fd rules, transport and psep_msg_send are in test_msg_transport.c.
 *
 * Runs in:  the test process only (no privilege needed).
 * Method:   every case starts from the valid message of its type (one row
 *           per type in msgcase.c, checked to be accepted), changes one
 *           thing, sends the raw datagram with sendmsg() (with the fd its
 *           type needs) and checks that psep_msg_recv() accepts it or fails
 *           with EPROTO, and that no received fd is left open.
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

/* ---- tests: every type, valid, truncated, extended -------------------- */

static void
test_valid_message_of_every_type_accepted(void **state)
{
	struct pair *p = *state;
	size_t i;

	for (i = 0; i < msg_ncases; i++) {
		dg_build(&msg_cases[i], &p->d);
		check_verdict(p, &msg_cases[i], &p->d, valid_role(&msg_cases[i]),
			      valid_state(&msg_cases[i]), true, msg_cases[i].name);
	}
}

static void
test_every_truncation_of_every_type_rejected(void **state)
{
	struct pair *p = *state;
	char what[96];
	size_t i, len, full;

	for (i = 0; i < msg_ncases; i++) {
		const struct mcase *c = &msg_cases[i];

		dg_build(c, &p->d);
		full = p->d.len;
		/* Length 0 is test_empty_datagram_rejected_eproto. */
		for (len = 1; len < full; len++) {
			dg_build(c, &p->d);
			p->d.len = len;
			if (len >= offsetof(struct psep_hdr, id))
				dg_hdr(&p->d)->len = (uint32_t)len;
			snprintf(what, sizeof(what), "%s truncated to %zu of %zu bytes",
				 c->name, len, full);
			check_verdict(p, c, &p->d, valid_role(c), valid_state(c),
				      false, what);
		}
	}
}

/* A zero-length datagram is a message, not a close: the peer must be
 * dropped as for any invalid message (EPROTO), not treated as gone. */
static void
test_empty_datagram_rejected_eproto(void **state)
{
	struct pair *p = *state;

	send_raw(p->tx, "", 0, NULL, 0);
	expect_reject(p->rx, PSEP_ROLE_LMTPD, PSEP_STATE_READY, "empty datagram");
	assert_no_fd_leak(&p->before, "empty datagram");
}

static void
test_one_extra_byte_rejected_every_type(void **state)
{
	struct pair *p = *state;
	char what[96];
	size_t i;

	for (i = 0; i < msg_ncases; i++) {
		const struct mcase *c = &msg_cases[i];

		dg_build(c, &p->d);
		dg_set_len(&p->d, p->d.len + 1);
		snprintf(what, sizeof(what), "%s with one byte extra", c->name);
		check_verdict(p, c, &p->d, valid_role(c), valid_state(c), false, what);
	}
}

static void
test_len_field_disagreeing_with_datagram_rejected(void **state)
{
	struct pair *p = *state;
	static const int64_t deltas[] = { -1, 1, -(int64_t)HDR_LEN, PSEP_MSG_MAX };
	static const uint32_t absolute[] = { 0, 1, HDR_LEN, 0xffffffffu };
	char what[96];
	size_t i, k;

	for (i = 0; i < msg_ncases; i++) {
		const struct mcase *c = &msg_cases[i];

		for (k = 0; k < sizeof(deltas) / sizeof(deltas[0]); k++) {
			dg_build(c, &p->d);
			dg_hdr(&p->d)->len = (uint32_t)((int64_t)p->d.len + deltas[k]);
			if (dg_hdr(&p->d)->len == p->d.len)
				continue;
			snprintf(what, sizeof(what), "%s with len field %+lld", c->name,
				 (long long)deltas[k]);
			check_verdict(p, c, &p->d, valid_role(c), valid_state(c), false, what);
		}
		for (k = 0; k < sizeof(absolute) / sizeof(absolute[0]); k++) {
			dg_build(c, &p->d);
			if (absolute[k] == p->d.len)
				continue;
			dg_hdr(&p->d)->len = absolute[k];
			snprintf(what, sizeof(what), "%s with len field %u", c->name,
				 (unsigned)absolute[k]);
			check_verdict(p, c, &p->d, valid_role(c), valid_state(c), false, what);
		}
	}
}

static void
test_unknown_type_rejected(void **state)
{
	struct pair *p = *state;
	static const uint16_t unknown[] = {
		0, 1, 5, 7, 9, 17,
#ifndef STOWD_TEST_HOOKS
		PSEP_TEST_REQ, PSEP_TEST_REP,  /* only with test hooks */
#endif
		PSEP_TYPE_MAX + 1, PSEP_TYPE_MAX + 2, 0x100, 0x7fff, 0xffff,
	};
	static const size_t body_lens[] = { 0, 8, 64 };
	char what[96];
	size_t i, k;

	for (i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
		for (k = 0; k < sizeof(body_lens) / sizeof(body_lens[0]); k++) {
			memset(p->d.buf, 0, HDR_LEN + body_lens[k]);
			dg_hdr(&p->d)->type = unknown[i];
			dg_hdr(&p->d)->id = MSG_ID;
			dg_set_len(&p->d, HDR_LEN + body_lens[k]);
			snprintf(what, sizeof(what), "unknown type %u, %zu body bytes",
				 (unsigned)unknown[i], body_lens[k]);
			/* With an fd, which must be closed too. */
			send_dgram(p->tx, &p->d, TFD_MEMFD, 1);
			expect_reject(p->rx, PSEP_ROLE_SUPERVISOR, PSEP_STATE_READY, what);
			send_dgram(p->tx, &p->d, TFD_NONE, 0);
			expect_reject(p->rx, PSEP_ROLE_LMTPD, PSEP_STATE_NEW, what);
			assert_no_fd_leak(&p->before, what);
		}
	}
}

static void
test_type_name_known_for_every_type_and_unknown_is_question_mark(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < msg_ncases; i++)
		assert_string_equal(psep_type_name(msg_cases[i].type), msg_cases[i].name);
	assert_string_equal(psep_type_name(0), "?");
	assert_string_equal(psep_type_name(0xffff), "?");
#ifndef STOWD_TEST_HOOKS
	assert_string_equal(psep_type_name(PSEP_TEST_REQ), "?");
	assert_string_equal(psep_type_name(PSEP_TEST_REP), "?");
#endif
}

static void
test_nonzero_flags_rejected_every_type(void **state)
{
	struct pair *p = *state;
	static const uint16_t flags[] = { 1, 2, 0x100, 0x8000, 0xffff };
	char what[96];
	size_t i, k;

	for (i = 0; i < msg_ncases; i++) {
		const struct mcase *c = &msg_cases[i];

		for (k = 0; k < sizeof(flags) / sizeof(flags[0]); k++) {
			dg_build(c, &p->d);
			dg_hdr(&p->d)->flags = flags[k];
			snprintf(what, sizeof(what), "%s with flags %#x", c->name,
				 (unsigned)flags[k]);
			check_verdict(p, c, &p->d, valid_role(c), valid_state(c), false, what);
		}
	}
}

/* ---- tests: sender role and state ------------------------------------- */

static void
test_sender_role_matrix_every_type(void **state)
{
	struct pair *p = *state;
	char what[96];
	size_t i;
	unsigned role;

	for (i = 0; i < msg_ncases; i++) {
		const struct mcase *c = &msg_cases[i];

		dg_build(c, &p->d);
		/* PSEP_ROLE_COUNT and beyond: never a valid sender. */
		for (role = 0; role <= PSEP_ROLE_COUNT + 1; role++) {
			bool ok = role < 32 && (c->senders & R(role)) != 0;

			snprintf(what, sizeof(what), "%s from role %u", c->name, role);
			check_verdict(p, c, &p->d, (enum psep_role)role, valid_state(c),
				      ok, what);
		}
	}
}

static void
test_peer_state_matrix_every_type(void **state)
{
	struct pair *p = *state;
	char what[96];
	size_t i;
	unsigned st;

	for (i = 0; i < msg_ncases; i++) {
		const struct mcase *c = &msg_cases[i];

		dg_build(c, &p->d);
		for (st = 0; st <= PSEP_STATE_STOPPING + 2; st++) {
			bool ok = (c->states & S(st)) != 0;

			snprintf(what, sizeof(what), "%s in state %u", c->name, st);
			check_verdict(p, c, &p->d, valid_role(c), (enum psep_state)st,
				      ok, what);
		}
	}
}

/* The two named in the contract, spelled out. */
static void
test_hello_req_in_ready_and_rcpt_req_in_new_rejected(void **state)
{
	struct pair *p = *state;

	dg_build(case_of(PSEP_HELLO_REQ), &p->d);
	check_verdict(p, case_of(PSEP_HELLO_REQ), &p->d, PSEP_ROLE_LMTPD,
		      PSEP_STATE_READY, false, "HELLO_REQ in READY");
	dg_build(case_of(PSEP_RCPT_REQ), &p->d);
	check_verdict(p, case_of(PSEP_RCPT_REQ), &p->d, PSEP_ROLE_LMTPD,
		      PSEP_STATE_NEW, false, "RCPT_REQ in NEW");
	dg_build(case_of(PSEP_WRITE_REQ), &p->d);
	check_verdict(p, case_of(PSEP_WRITE_REQ), &p->d, PSEP_ROLE_LMTPD,
		      PSEP_STATE_READY, false, "WRITE_REQ claimed from lmtpd");
	dg_build(case_of(PSEP_RCPT_REQ), &p->d);
	check_verdict(p, case_of(PSEP_RCPT_REQ), &p->d, PSEP_ROLE_WRITER_SETEUID,
		      PSEP_STATE_READY, false, "RCPT_REQ from a writer");
}

static const struct patch enum_patches[] = {
	NUM("HELLO_REQ version 0", PSEP_HELLO_REQ, psep_hello, version, 0, false),
	NUM("HELLO_REQ version 2", PSEP_HELLO_REQ, psep_hello, version, 2, false),
	NUM("HELLO_REQ role 5", PSEP_HELLO_REQ, psep_hello, role, PSEP_ROLE_COUNT, false),
	NUM("HELLO_REQ role ~0", PSEP_HELLO_REQ, psep_hello, role, 0xffffffffu, false),
	NUM("HELLO_REQ role repl-hook", PSEP_HELLO_REQ, psep_hello, role,
	    PSEP_ROLE_REPL_HOOK, true),
	NUM("HELLO_REP version 0", PSEP_HELLO_REP, psep_hello, version, 0, false),
	NUM("HELLO_REP version 2", PSEP_HELLO_REP, psep_hello, version, 2, false),
	NUM("HELLO_REP role 5", PSEP_HELLO_REP, psep_hello, role, PSEP_ROLE_COUNT, false),
	NUM("LOG level 4", PSEP_LOG, psep_log, level, PSEP_LOG_ERR + 1, false),
	NUM("LOG level ~0", PSEP_LOG, psep_log, level, 0xffffffffu, false),
	NUM("LOG level debug", PSEP_LOG, psep_log, level, PSEP_LOG_DEBUG, true),
	NUM("LOG level err", PSEP_LOG, psep_log, level, PSEP_LOG_ERR, true),
	NUM("RCPT_REP status 3", PSEP_RCPT_REP, psep_rcpt_rep, result.status, 3, false),
	NUM("RCPT_REP status ~0", PSEP_RCPT_REP, psep_rcpt_rep, result.status,
	    0xffffffffu, false),
	NUM("RCPT_REP status permfail", PSEP_RCPT_REP, psep_rcpt_rep, result.status,
	    DLV_PERMFAIL, true),
	NUM("RCPT_REP code 0", PSEP_RCPT_REP, psep_rcpt_rep, result.code, 0, false),
	NUM("RCPT_REP code 199", PSEP_RCPT_REP, psep_rcpt_rep, result.code, 199, false),
	NUM("RCPT_REP code 600", PSEP_RCPT_REP, psep_rcpt_rep, result.code, 600, false),
	NUM("RCPT_REP code ~0", PSEP_RCPT_REP, psep_rcpt_rep, result.code,
	    0xffffffffu, false),
	NUM("RCPT_REP code 200", PSEP_RCPT_REP, psep_rcpt_rep, result.code, 200, true),
	NUM("RCPT_REP code 599", PSEP_RCPT_REP, psep_rcpt_rep, result.code, 599, true),
	NUM("DELIVER_REP status 3", PSEP_DELIVER_REP, psep_deliver_rep, result.status,
	    3, false),
	NUM("DELIVER_REP code 199", PSEP_DELIVER_REP, psep_deliver_rep, result.code,
	    199, false),
	NUM("DELIVER_REP code 600", PSEP_DELIVER_REP, psep_deliver_rep, result.code,
	    600, false),
	NUM("DELIVER_REP code 451", PSEP_DELIVER_REP, psep_deliver_rep, result.code,
	    451, true),
	STR("DELIVER_REP empty guid", PSEP_DELIVER_REP, psep_deliver_rep, guid, "", true),
	STR("DELIVER_REP upper-case guid", PSEP_DELIVER_REP, psep_deliver_rep, guid,
	    "0123456789ABCDEF0123456789ABCDEF", false),
	STR("DELIVER_REP short guid", PSEP_DELIVER_REP, psep_deliver_rep, guid,
	    "0123456789abcdef0123456789abcde", false),
	NUM("WRITE_REP err -1", PSEP_WRITE_REP, psep_write_rep, err, 0xffffffffu, false),
	NUM("WRITE_REP err INT_MIN", PSEP_WRITE_REP, psep_write_rep, err, 0x80000000u,
	    false),
	NUM("WRITE_REP err ENOSPC", PSEP_WRITE_REP, psep_write_rep, err, ENOSPC, true),
	STR("WRITE_REP ok with bad guid", PSEP_WRITE_REP, psep_write_rep, guid,
	    "xyz", false),
	STR("WRITE_REP ok with empty guid", PSEP_WRITE_REP, psep_write_rep, guid,
	    "", false),
	STR("WRITE_REP ok with '/' in file name", PSEP_WRITE_REP, psep_write_rep,
	    filename, "../new/x", false),
	STR("WRITE_REP ok with empty file name", PSEP_WRITE_REP, psep_write_rep,
	    filename, "", false),
	STR("WRITE_REP ok with file name '..'", PSEP_WRITE_REP, psep_write_rep,
	    filename, "..", false),
	STR("WRITE_REP ok with hidden file name", PSEP_WRITE_REP, psep_write_rep,
	    filename, ".stowd", false),
	/* the writer template: never a child of uid or gid 0, only a real pid
	 * or an errno */
	NUM("FORK_REQ uid 0", PSEP_FORK_REQ, psep_fork_req, uid, 0, false),
	NUM("FORK_REQ gid 0", PSEP_FORK_REQ, psep_fork_req, gid, 0, false),
	NUM("FORK_REQ group 0", PSEP_FORK_REQ, psep_fork_req, groups[1], 0, false),
	NUM("FORK_REQ 33 groups", PSEP_FORK_REQ, psep_fork_req, ngroups, 33, false),
	NUM("FORK_REP pid 1", PSEP_FORK_REP, psep_fork_rep, pid, 1, false),
	NUM("FORK_REP pid -1", PSEP_FORK_REP, psep_fork_rep, pid, 0xffffffffu, false),
	NUM("FORK_REP pid 0 without errno", PSEP_FORK_REP, psep_fork_rep, pid, 0, false),
	NUM("FORK_REP pid with errno", PSEP_FORK_REP, psep_fork_rep, err, EAGAIN, false),
#ifdef STOWD_TEST_HOOKS
	NUM("TEST_REQ op 0", PSEP_TEST_REQ, psep_test_req, op, 0, false),
	NUM("TEST_REQ op 7", PSEP_TEST_REQ, psep_test_req, op, 7, false),
	NUM("TEST_REQ op die after save", PSEP_TEST_REQ, psep_test_req, op,
	    PSEP_TEST_DIE_AFTER_SAVE, true),
	NUM("TEST_REQ op die after stamp", PSEP_TEST_REQ, psep_test_req, op,
	    PSEP_TEST_DIE_AFTER_STAMP, true),
	NUM("TEST_REQ op stall after stamp", PSEP_TEST_REQ, psep_test_req, op,
	    PSEP_TEST_STALL_AFTER_STAMP, true),
	NUM("TEST_REQ op bogus stamp", PSEP_TEST_REQ, psep_test_req, op,
	    PSEP_TEST_BOGUS_STAMP, true),
	NUM("TEST_REQ op stall", PSEP_TEST_REQ, psep_test_req, op, PSEP_TEST_STALL, true),
#endif
};

static void
test_bad_enum_and_range_values_rejected(void **state)
{
	RUN_PATCHES((struct pair *)*state, enum_patches);
}

static const struct patch nul_patches[] = {
	NONUL("CLIENT_FD listener", PSEP_CLIENT_FD, psep_client_fd, listener, NULL),
	NONUL("RCPT_REQ session", PSEP_RCPT_REQ, psep_rcpt_req, session, NULL),
	NONUL("RCPT_REQ address", PSEP_RCPT_REQ, psep_rcpt_req, address, NULL),
	NONUL("RCPT_REP enhanced", PSEP_RCPT_REP, psep_rcpt_rep, result.enhanced, NULL),
	NONUL("RCPT_REP text", PSEP_RCPT_REP, psep_rcpt_rep, result.text, NULL),
	NONUL("DELIVER_REQ session", PSEP_DELIVER_REQ, psep_deliver_req, session, NULL),
	NONUL("DELIVER_REQ address", PSEP_DELIVER_REQ, psep_deliver_req, address, NULL),
	NONUL("DELIVER_REP enhanced", PSEP_DELIVER_REP, psep_deliver_rep,
	      result.enhanced, NULL),
	NONUL("DELIVER_REP text", PSEP_DELIVER_REP, psep_deliver_rep, result.text, NULL),
	NONUL("DELIVER_REP guid", PSEP_DELIVER_REP, psep_deliver_rep, guid, NULL),
	NONUL("WRITE_REQ session", PSEP_WRITE_REQ, psep_write_req, session, NULL),
	NONUL("WRITE_REQ user", PSEP_WRITE_REQ, psep_write_req, user, NULL),
	NONUL("WRITE_REQ mail_base", PSEP_WRITE_REQ, psep_write_req, mail_base, "/"),
	NONUL("WRITE_REQ mail_rel", PSEP_WRITE_REQ, psep_write_req, mail_rel, NULL),
	NONUL("WRITE_REQ mailbox", PSEP_WRITE_REQ, psep_write_req, mailbox, NULL),
	NONUL("WRITE_REQ guid", PSEP_WRITE_REQ, psep_write_req, guid, NULL),
	NONUL("WRITE_REP what", PSEP_WRITE_REP, psep_write_rep, what, NULL),
	NONUL("WRITE_REP guid", PSEP_WRITE_REP, psep_write_rep, guid, NULL),
	NONUL("WRITE_REP filename", PSEP_WRITE_REP, psep_write_rep, filename, NULL),
	NONUL("SESSION_END session", PSEP_SESSION_END, psep_session_end, session, NULL),
};

static void
test_missing_nul_in_every_char_field_rejected(void **state)
{
	RUN_PATCHES((struct pair *)*state, nul_patches);
}

/* Text fields that must be free of control bytes; lead makes the rest of
 * the value valid for that field. */
struct text_field {
	const char *name;
	uint16_t type;
	size_t off, size;
	const char *lead;
};

#define TF(n, ty, st, f, lead) { (n), (ty), FLD(st, f), (lead) }

static const struct text_field text_fields[] = {
	TF("CLIENT_FD listener", PSEP_CLIENT_FD, psep_client_fd, listener, ""),
	TF("RCPT_REQ session", PSEP_RCPT_REQ, psep_rcpt_req, session, ""),
	TF("RCPT_REQ address", PSEP_RCPT_REQ, psep_rcpt_req, address, "u@"),
	TF("RCPT_REP enhanced", PSEP_RCPT_REP, psep_rcpt_rep, result.enhanced, "2."),
	TF("RCPT_REP text", PSEP_RCPT_REP, psep_rcpt_rep, result.text, "OK "),
	TF("DELIVER_REQ session", PSEP_DELIVER_REQ, psep_deliver_req, session, ""),
	TF("DELIVER_REQ address", PSEP_DELIVER_REQ, psep_deliver_req, address, "u@"),
	TF("DELIVER_REP text", PSEP_DELIVER_REP, psep_deliver_rep, result.text, ""),
	TF("WRITE_REQ session", PSEP_WRITE_REQ, psep_write_req, session, ""),
	TF("WRITE_REQ user", PSEP_WRITE_REQ, psep_write_req, user, ""),
	TF("WRITE_REQ mail_base", PSEP_WRITE_REQ, psep_write_req, mail_base, "/var/"),
	TF("WRITE_REQ mail_rel", PSEP_WRITE_REQ, psep_write_req, mail_rel, "alice/"),
	TF("WRITE_REQ mailbox", PSEP_WRITE_REQ, psep_write_req, mailbox, "Sent"),
	TF("WRITE_REP what", PSEP_WRITE_REP, psep_write_rep, what, ""),
	TF("WRITE_REP filename", PSEP_WRITE_REP, psep_write_rep, filename, "17."),
	TF("SESSION_END session", PSEP_SESSION_END, psep_session_end, session, ""),
};

static void
test_control_bytes_in_text_fields_rejected(void **state)
{
	static const char bad[] = { '\r', '\n', '\t', 0x01, 0x1b, 0x1f, 0x7f };
	struct pair *p = *state;
	char value[64], name[128];
	size_t i, k;

	for (i = 0; i < sizeof(text_fields) / sizeof(text_fields[0]); i++) {
		const struct text_field *f = &text_fields[i];

		for (k = 0; k <= sizeof(bad); k++) {
			struct patch pt = { .name = name, .type = f->type, .off = f->off,
					    .size = f->size, .kind = P_STR, .str = value };

			/* k == sizeof(bad): the same value without the control
			 * byte, which must pass (the lead is valid). */
			if (k < sizeof(bad))
				snprintf(value, sizeof(value), "%sx%cy", f->lead, bad[k]);
			else
				snprintf(value, sizeof(value), "%sxy", f->lead);
			pt.accept = k == sizeof(bad);
			snprintf(name, sizeof(name), "%s with byte %#x", f->name,
				 k < sizeof(bad) ? (unsigned char)bad[k] : 0u);
			run_patches(p, &pt, 1);
		}
	}
}

static const struct patch utf8_patches[] = {
	STR("RCPT_REQ UTF-8 address", PSEP_RCPT_REQ, psep_rcpt_req, address,
	    "j\xc3\xb6rg@ex\xc3\xa4mple.org", true),
	STR("DELIVER_REQ UTF-8 address", PSEP_DELIVER_REQ, psep_deliver_req, address,
	    "j\xc3\xb6rg@ex\xc3\xa4mple.org", true),
	STR("WRITE_REQ UTF-8 mailbox", PSEP_WRITE_REQ, psep_write_req, mailbox,
	    "Entw\xc3\xbcrfe", true),
};

static void
test_utf8_in_address_and_mailbox_accepted(void **state)
{
	RUN_PATCHES((struct pair *)*state, utf8_patches);
}

/* ---- WRITE_REQ / DELIVER_REQ field validators -------------------------- */

#define W(n, f, v, ok) NUM(n, PSEP_WRITE_REQ, psep_write_req, f, v, ok)
#define WS(n, f, s, ok) STR(n, PSEP_WRITE_REQ, psep_write_req, f, s, ok)

static const struct patch write_req_patches[] = {
	W("uid 0", uid, 0, false),
	W("uid below first_valid_uid", uid, UID_FIRST - 1, false),
	W("uid first_valid_uid", uid, UID_FIRST, true),
	W("uid last_valid_uid", uid, UID_LAST, true),
	W("uid above last_valid_uid", uid, UID_LAST + 1, false),
	W("uid -1", uid, 0xffffffffu, false),
	W("gid 0", gid, 0, false),
	W("gid 1", gid, 1, true),
	W("ngroups 0", ngroups, 0, true),
	W("ngroups 32", ngroups, PSEP_MAX_GROUPS, true),
	W("ngroups 33", ngroups, PSEP_MAX_GROUPS + 1, false),
	W("ngroups ~0", ngroups, 0xffffffffu, false),
	WS("mail_base relative", mail_base, "var/mail", false),
	WS("mail_base empty", mail_base, "", false),
	WS("mail_base /", mail_base, "/", true),
	WS("mail_rel ..", mail_rel, "..", false),
	WS("mail_rel ../x", mail_rel, "../x", false),
	WS("mail_rel a/../b", mail_rel, "a/../b", false),
	WS("mail_rel a/..", mail_rel, "a/..", false),
	WS("mail_rel .", mail_rel, ".", false),
	WS("mail_rel a/./b", mail_rel, "a/./b", false),
	WS("mail_rel leading /", mail_rel, "/alice/Maildir", false),
	WS("mail_rel empty component", mail_rel, "alice//Maildir", false),
	WS("mail_rel trailing /", mail_rel, "alice/", false),
	WS("mail_rel empty", mail_rel, "", false),
	WS("mail_rel one component", mail_rel, "alice", true),
	WS("mail_rel dotted names", mail_rel, ".maildir/...x/a..b", true),
	WS("mailbox ..", mailbox, "..", false),
	WS("mailbox a..b", mailbox, "a..b", false),
	WS("mailbox leading .", mailbox, ".Sent", false),
	WS("mailbox .", mailbox, ".", false),
	WS("mailbox empty", mailbox, "", false),
	WS("mailbox leading /", mailbox, "/Sent", false),
	WS("mailbox trailing /", mailbox, "Sent/", false),
	WS("mailbox //", mailbox, "a//b", false),
	WS("mailbox Sent", mailbox, "Sent", true),
	WS("mailbox Maildir++ hierarchy", mailbox, "Archive.2024", true),
	WS("guid upper-case", guid, "0123456789ABCDEF0123456789ABCDEF", false),
	WS("guid 31 digits", guid, "0123456789abcdef0123456789abcde", false),
	WS("guid non-hex", guid, "0123456789abcdef0123456789abcdeg", false),
	WS("guid empty", guid, "", false),
	WS("guid with space", guid, "0123456789abcdef 123456789abcdef", false),
	W("prefix_len + 1", prefix_len, PREFIX_LEN + 1, false),
	W("prefix_len - 1", prefix_len, PREFIX_LEN - 1, false),
	W("prefix_len 0", prefix_len, 0, false),
	W("prefix_len ~0", prefix_len, 0xffffffffu, false),
	W("body_size + 1", body_size, BODY_LEN + 1, false),
	W("body_size - 1", body_size, BODY_LEN - 1, false),
	W("body_size 0", body_size, 0, false),
	W("body_size 2^63", body_size, 1ull << 63, false),
	W("body_vsize < body_size", body_vsize, BODY_LEN - 1, false),
	W("body_vsize > 2 * body_size", body_vsize, 2 * BODY_LEN + 1, false),
	W("body_vsize == body_size", body_vsize, BODY_LEN, true),
	W("body_vsize == 2 * body_size", body_vsize, 2 * BODY_LEN, true),
	W("early_stamp 1", early_stamp, 1, true),
	W("early_stamp 2", early_stamp, 2, false),
	W("early_stamp 255", early_stamp, 255, false),
};

static void
test_write_req_field_validators(void **state)
{
	RUN_PATCHES((struct pair *)*state, write_req_patches);
}

/* gid -1 is "leave unchanged" to setresgid(): like uid -1 it must never
 * pass; a supplementary group 0 must not pass where gid 0 does not. */
static const struct patch write_req_gid_patches[] = {
	W("gid -1", gid, 0xffffffffu, false),
	W("supplementary group 0", groups[0], 0, false),
	W("supplementary group -1", groups[1], 0xffffffffu, false),
};

static void
test_write_req_gid_minus_one_and_group_zero_rejected(void **state)
{
	RUN_PATCHES((struct pair *)*state, write_req_gid_patches);
}

/* STYLE.md §3: mailbox names free of '/'.  (storage/name.c maps '/' to
 * '.', so if '/' is meant as the hierarchy separator, STYLE.md and this
 * row change together.) */
static const struct patch write_req_mailbox_slash_patches[] = {
	WS("mailbox a/b", mailbox, "a/b", false),
};

static void
test_write_req_mailbox_with_slash_rejected(void **state)
{
	RUN_PATCHES((struct pair *)*state, write_req_mailbox_slash_patches);
}

/* A leading '.' is refused for the name; inside it ("a/.b", which
 * storage/name.c would map to ".a..b") it must be refused as well. */
static const struct patch write_req_mailbox_dot_patches[] = {
	WS("mailbox a/.b", mailbox, "a/.b", false),
	WS("mailbox a/./b", mailbox, "a/./b", false),
	WS("mailbox a/.", mailbox, "a/.", false),
};

static void
test_write_req_mailbox_component_starting_with_dot_rejected(void **state)
{
	RUN_PATCHES((struct pair *)*state, write_req_mailbox_dot_patches);
}

#define D(n, f, v, ok) NUM(n, PSEP_DELIVER_REQ, psep_deliver_req, f, v, ok)

static const struct patch deliver_req_patches[] = {
	D("prefix_len + 1", prefix_len, PREFIX_LEN + 1, false),
	D("prefix_len - 1", prefix_len, PREFIX_LEN - 1, false),
	D("prefix_len 0", prefix_len, 0, false),
	D("prefix_len ~0", prefix_len, 0xffffffffu, false),
	D("body_size + 1", body_size, BODY_LEN + 1, false),
	D("body_size - 1", body_size, BODY_LEN - 1, false),
	D("body_size 2^63", body_size, 1ull << 63, false),
	D("body_vsize < body_size", body_vsize, BODY_LEN - 1, false),
	D("body_vsize > 2 * body_size", body_vsize, 2 * BODY_LEN + 1, false),
	D("rcpt_index large", rcpt_index, 0xffffffffu, true),
};

static void
test_deliver_req_field_validators(void **state)
{
	RUN_PATCHES((struct pair *)*state, deliver_req_patches);
}

#define L(n, f, v, ok) NUM(n, PSEP_LOG, psep_log, f, v, ok)

static const struct patch log_patches[] = {
	L("text_len + 1", text_len, 6, false),
	L("text_len - 1", text_len, 4, false),
	L("text_len 0", text_len, 0, false),
	L("text_len ~0", text_len, 0xffffffffu, false),
};

static void
test_log_text_len_mismatch_rejected(void **state)
{
	RUN_PATCHES((struct pair *)*state, log_patches);
}

/* Tail types at and beyond their maximum: tail_max accepted, +1 rejected. */
struct tail_case {
	uint16_t type;
	size_t fixed;      /* sizeof the fixed part */
	size_t len_off;    /* offset of the uint32 tail length field */
	size_t tail_max;
};

static const struct tail_case tail_cases[] = {
	{ PSEP_LOG, sizeof(struct psep_log), offsetof(struct psep_log, text_len),
	  PSEP_LOG_MAX },
	{ PSEP_DELIVER_REQ, sizeof(struct psep_deliver_req),
	  offsetof(struct psep_deliver_req, prefix_len), PSEP_PREFIX_MAX },
	{ PSEP_WRITE_REQ, sizeof(struct psep_write_req),
	  offsetof(struct psep_write_req, prefix_len), PSEP_PREFIX_MAX },
};

static void
test_tail_at_max_accepted_and_beyond_max_rejected(void **state)
{
	struct pair *p = *state;
	char what[96];
	size_t i, extra;

	for (i = 0; i < sizeof(tail_cases) / sizeof(tail_cases[0]); i++) {
		const struct tail_case *t = &tail_cases[i];
		const struct mcase *c = case_of(t->type);

		for (extra = 0; extra <= 1; extra++) {
			uint32_t n = (uint32_t)(t->tail_max + extra);

			dg_build(c, &p->d);
			memset(dg_body(&p->d) + t->fixed, 'x', n);
			memcpy(dg_body(&p->d) + t->len_off, &n, sizeof(n));
			dg_set_len(&p->d, HDR_LEN + t->fixed + n);
			snprintf(what, sizeof(what), "%s with a %u-byte tail", c->name,
				 (unsigned)n);
			check_verdict(p, c, &p->d, valid_role(c), valid_state(c),
				      extra == 0, what);
		}
	}
}

/* ---- helpers ------------------------------------------------------------ */

struct uid_case {
	uint32_t first, last, uid;
	bool allowed;
};

static void
test_uid_allowed_table(void **state)
{
	static const struct uid_case t[] = {
		{ 1000, 60000, 0, false },
		{ 1000, 60000, 999, false },
		{ 1000, 60000, 1000, true },
		{ 1000, 60000, 60000, true },
		{ 1000, 60000, 60001, false },
		{ 1000, 0, 4000000000u, true },  /* last 0: no upper bound */
		{ 1000, 0, 0xffffffffu, false },
		{ 0, 0, 0, false },              /* uid 0 never */
		{ 0, 0, 1, true },
		{ 1, 1, 1, true },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		psep_msg_set_uid_range(t[i].first, t[i].last);
		if (psep_uid_allowed(t[i].uid) != t[i].allowed)
			fail_msg("range %u..%u uid %u: want %s", (unsigned)t[i].first,
				 (unsigned)t[i].last, (unsigned)t[i].uid,
				 t[i].allowed ? "allowed" : "refused");
	}
	psep_msg_set_uid_range(UID_FIRST, UID_LAST);
}

/* A uid allowed by the range is accepted by WRITE_REQ; last == 0 is open. */
static void
test_write_req_uid_with_open_upper_bound_accepted(void **state)
{
	static const struct patch t[] = {
		W("uid 4e9 with no upper bound", uid, 4000000000u, true),
	};

	psep_msg_set_uid_range(UID_FIRST, 0);
	RUN_PATCHES((struct pair *)*state, t);
	psep_msg_set_uid_range(UID_FIRST, UID_LAST);
}

static void
test_str_ok_needs_nul_within_size(void **state)
{
	static const char s[4] = { 'a', 'b', 'c', '\0' };
	static const char t[4] = { 'a', 'b', 'c', 'd' };

	(void)state;
	assert_true(psep_str_ok(s, 4));
	assert_false(psep_str_ok(s, 3));
	assert_false(psep_str_ok(t, 4));
	assert_false(psep_str_ok(s, 0));
	assert_true(psep_str_ok("", 1));
}

/* ---- delivery features: QUOTA_REQ/REP, the quota of WRITE_REQ and
 * REPL_OP_REQ, detail folders (mailbox_create, in_inbox) ------------------ */

#define Q(n, f, v, ok) NUM(n, PSEP_QUOTA_REQ, psep_quota_req, f, v, ok)
#define QS(n, f, s, ok) STR(n, PSEP_QUOTA_REQ, psep_quota_req, f, s, ok)
#define QR(n, f, v, ok) NUM(n, PSEP_QUOTA_REP, psep_quota_rep, f, v, ok)

static const struct patch dlv_patches[] = {
	Q("QUOTA_REQ uid 0", uid, 0, false),
	Q("QUOTA_REQ uid above last_valid_uid", uid, UID_LAST + 1, false),
	Q("QUOTA_REQ gid 0", gid, 0, false),
	Q("QUOTA_REQ ngroups 33", ngroups, PSEP_MAX_GROUPS + 1, false),
	Q("QUOTA_REQ quota off", quota.on, 0, false),
	Q("QUOTA_REQ quota on 2", quota.on, 2, false),
	Q("QUOTA_REQ force 2", quota.force, 2, false),
	Q("QUOTA_REQ enforce 2", quota.enforce, 2, false),
	Q("QUOTA_REQ size 0", size, 0, true),
	Q("QUOTA_REQ unlimited bytes", quota.bytes, 0, true),
	QS("QUOTA_REQ mail_base relative", mail_base, "var/mail", false),
	QS("QUOTA_REQ mail_rel ..", mail_rel, "a/../b", false),
	QS("QUOTA_REQ user with LF", user, "al\nice", false),
	QR("QUOTA_REP err -1", err, 0xffffffffu, false),
	QR("QUOTA_REP fits 2", fits, 2, false),
	QR("QUOTA_REP fits 0", fits, 0, true),
	QR("QUOTA_REP err EIO", err, 5, false),  /* fits 1 with an error */
	NUM("WRITE_REQ quota.on 2", PSEP_WRITE_REQ, psep_write_req, quota.on, 2, false),
	NUM("WRITE_REQ limits without quota", PSEP_WRITE_REQ, psep_write_req,
	    quota.bytes, 1000, false),
	NUM("WRITE_REQ force without quota", PSEP_WRITE_REQ, psep_write_req,
	    quota.force, 1, false),
	NUM("REPL_OP_REQ enforce without quota", PSEP_REPL_OP_REQ, psep_repl_op_req,
	    quota.enforce, 1, false),
	NUM("REPL_OP_REQ quota.on 1", PSEP_REPL_OP_REQ, psep_repl_op_req,
	    quota.on, 1, true),
	/* detail folders: create or fall back to INBOX */
	NUM("WRITE_REQ mailbox_create 1", PSEP_WRITE_REQ, psep_write_req,
	    mailbox_create, 1, true),
	NUM("WRITE_REQ mailbox_create 2", PSEP_WRITE_REQ, psep_write_req,
	    mailbox_create, 2, false),
	NUM("WRITE_REP in_inbox 1", PSEP_WRITE_REP, psep_write_rep, in_inbox, 1, true),
	NUM("WRITE_REP in_inbox 2", PSEP_WRITE_REP, psep_write_rep, in_inbox, 2, false),
	NUM("WRITE_STAMP in_inbox 2", PSEP_WRITE_STAMP, psep_write_rep, in_inbox, 2,
	    false),
	/* duplicate window */
	NUM("WRITE_REP duplicate 1", PSEP_WRITE_REP, psep_write_rep, duplicate, 1, true),
	NUM("WRITE_REP duplicate 2", PSEP_WRITE_REP, psep_write_rep, duplicate, 2, false),
	NUM("WRITE_STAMP duplicate 1", PSEP_WRITE_STAMP, psep_write_rep, duplicate, 1,
	    false),
};

static void
test_delivery_feature_field_validators(void **state)
{
	RUN_PATCHES((struct pair *)*state, dlv_patches);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, pair_setup, pair_teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_valid_message_of_every_type_accepted),
		T(test_every_truncation_of_every_type_rejected),
		T(test_empty_datagram_rejected_eproto),
		T(test_one_extra_byte_rejected_every_type),
		T(test_len_field_disagreeing_with_datagram_rejected),
		T(test_unknown_type_rejected),
		T(test_type_name_known_for_every_type_and_unknown_is_question_mark),
		T(test_nonzero_flags_rejected_every_type),
		T(test_sender_role_matrix_every_type),
		T(test_peer_state_matrix_every_type),
		T(test_hello_req_in_ready_and_rcpt_req_in_new_rejected),
		T(test_bad_enum_and_range_values_rejected),
		T(test_missing_nul_in_every_char_field_rejected),
		T(test_control_bytes_in_text_fields_rejected),
		T(test_utf8_in_address_and_mailbox_accepted),
		T(test_write_req_field_validators),
		T(test_write_req_gid_minus_one_and_group_zero_rejected),
		T(test_write_req_mailbox_with_slash_rejected),
		T(test_write_req_mailbox_component_starting_with_dot_rejected),
		T(test_write_req_uid_with_open_upper_bound_accepted),
		T(test_deliver_req_field_validators),
		T(test_log_text_len_mismatch_rejected),
		T(test_tail_at_max_accepted_and_beyond_max_rejected),
		T(test_delivery_feature_field_validators),
		cmocka_unit_test(test_uid_allowed_table),
		T(test_str_ok_needs_nul_within_size),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
