/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/privsep/test_msg_ops.c - the IPC decoder for the operations
 * messages (CTL_REQ/REP from and to stowctl, STATS_REQ/REP and
 * RESYNC_REQ/REP with repl-hook, METRICS_REQ/REP/CLIENT with lmtpd): bad
 * enums, missing NULs, argument combinations, histogram consistency, the
 * optional output memfd, wrong senders.  Framing, role and state matrices
 * of these types run with every other type in test_msg.c.
 *
 * Runs in:  the test process only (no privilege needed).
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
#include <unistd.h>

#include <cmocka.h>

#include "msgcase.h"

#define CQ(n, f, v, ok) NUM("CTL_REQ " n, PSEP_CTL_REQ, psep_ctl_req, f, v, ok)
#define CQS(n, f, s, ok) STR("CTL_REQ " n, PSEP_CTL_REQ, psep_ctl_req, f, s, ok)

static const struct patch ctl_req_patches[] = {
	CQ("cmd 0", cmd, 0, false),
	CQ("cmd 7", cmd, PSEP_CTL_CMD_MAX + 1, false),
	CQ("cmd ~0", cmd, 0xffffffffu, false),
	CQ("flags 4", flags, 4, false),
	CQ("flags ~0", flags, 0xffffffffu, false),
	CQ("flags all on user", flags, PSEP_CTL_F_ALL, false),
	CQ("flags none", flags, 0, true),
	CQS("empty user", user, "", false),
	CQS("user with a control byte", user, "al\x01ice", false),
	NONUL("CTL_REQ user without NUL", PSEP_CTL_REQ, psep_ctl_req, user, "u"),
	NONUL("CTL_REQ mailbox without NUL", PSEP_CTL_REQ, psep_ctl_req, mailbox, "m"),
	NONUL("CTL_REQ replica without NUL", PSEP_CTL_REQ, psep_ctl_req, replica, "r"),
	CQS("mailbox on user", mailbox, "INBOX", false),
	CQS("replica on user", replica, "b", false),
};

static const struct patch ctl_rep_patches[] = {
	NUM("CTL_REP err -1", PSEP_CTL_REP, psep_ctl_rep, err, 0xffffffffu, false),
	NUM("CTL_REP err ENOENT", PSEP_CTL_REP, psep_ctl_rep, err, ENOENT, true),
	NUM("CTL_REP size without fd", PSEP_CTL_REP, psep_ctl_rep, size, 10, false),
	STR("CTL_REP text with LF", PSEP_CTL_REP, psep_ctl_rep, text, "a\nb", false),
	NONUL("CTL_REP text without NUL", PSEP_CTL_REP, psep_ctl_rep, text, "x"),
};

static const struct patch stats_patches[] = {
	NONUL("STATS_REQ user without NUL", PSEP_STATS_REQ, psep_stats_req, user, "u"),
	STR("STATS_REQ empty user", PSEP_STATS_REQ, psep_stats_req, user, "", true),
	NUM("STATS_REP n 17", PSEP_STATS_REP, psep_stats_rep, n, 17, false),
	NUM("STATS_REP n 0", PSEP_STATS_REP, psep_stats_rep, n, 0, true),
	STR("STATS_REP empty name", PSEP_STATS_REP, psep_stats_rep, r[0].name, "", false),
	NONUL("STATS_REP name without NUL", PSEP_STATS_REP, psep_stats_rep, r[1].name, "c"),
	STR("STATS_REP server id with a space", PSEP_STATS_REP, psep_stats_rep,
	    r[0].server_id, "b test", false),
	NUM("STATS_REP connected 2", PSEP_STATS_REP, psep_stats_rep, r[0].connected, 2, false),
	NUM("STATS_REP syncing 2", PSEP_STATS_REP, psep_stats_rep, r[1].syncing, 2, false),
	STR("STATS_REP error with CR", PSEP_STATS_REP, psep_stats_rep, r[0].last_error,
	    "x\ry", false),
	NUM("STATS_REP histogram not cumulative", PSEP_STATS_REP, psep_stats_rep,
	    r[0].ack_buckets[5], 0, false),
	NUM("STATS_REP histogram count mismatch", PSEP_STATS_REP, psep_stats_rep,
	    r[0].ack_count, 3, false),
	NUM("STATS_REP unused row not checked", PSEP_STATS_REP, psep_stats_rep,
	    r[5].connected, 9, true),
};

static const struct patch metrics_patches[] = {
	NUM("METRICS_REP lmtp histogram count", PSEP_METRICS_REP, psep_metrics_rep,
	    c.lmtp.count, 5, false),
	NUM("METRICS_REP save bucket decreasing", PSEP_METRICS_REP, psep_metrics_rep,
	    c.save.buckets[11], 0, false),
	NUM("METRICS_REP stats flag 2", PSEP_METRICS_REP, psep_metrics_rep,
	    c.replica_stats_ok, 2, false),
	NUM("METRICS_REP replica n 17", PSEP_METRICS_REP, psep_metrics_rep, repl.n, 17,
	    false),
	STR("METRICS_CLIENT listener with LF", PSEP_METRICS_CLIENT, psep_client_fd,
	    listener, "a\nb", false),
};

static const struct patch resync_patches[] = {
	NUM("RESYNC_REQ all 2", PSEP_RESYNC_REQ, psep_resync_req, all, 2, false),
	NUM("RESYNC_REQ all with a user", PSEP_RESYNC_REQ, psep_resync_req, all, 1, false),
	STR("RESYNC_REQ no user", PSEP_RESYNC_REQ, psep_resync_req, user, "", false),
	STR("RESYNC_REQ mailbox ..", PSEP_RESYNC_REQ, psep_resync_req, mailbox,
	    "a..b", false),
	STR("RESYNC_REQ mailbox with /", PSEP_RESYNC_REQ, psep_resync_req, mailbox,
	    "a/b", false),
	STR("RESYNC_REQ every mailbox", PSEP_RESYNC_REQ, psep_resync_req, mailbox, "", true),
	NONUL("RESYNC_REQ replica without NUL", PSEP_RESYNC_REQ, psep_resync_req,
	      replica, "b"),
	NUM("RESYNC_REP err -1", PSEP_RESYNC_REP, psep_resync_rep, err, 0xffffffffu, false),
	NUM("RESYNC_REP err ENOTCONN", PSEP_RESYNC_REP, psep_resync_rep, err, ENOTCONN,
	    true),
	STR("RESYNC_REP text with LF", PSEP_RESYNC_REP, psep_resync_rep, text, "a\nb",
	    false),
};

/* The Message-ID that DELIVER_REQ carries for the delivery log line. */
static const struct patch msgid_patches[] = {
	STR("DELIVER_REQ msgid", PSEP_DELIVER_REQ, psep_deliver_req, msgid, "<a@b>", true),
	STR("DELIVER_REQ msgid with a space", PSEP_DELIVER_REQ, psep_deliver_req, msgid,
	    "<a b>", false),
	STR("DELIVER_REQ msgid with LF", PSEP_DELIVER_REQ, psep_deliver_req, msgid,
	    "<a\nb>", false),
	NONUL("DELIVER_REQ msgid without NUL", PSEP_DELIVER_REQ, psep_deliver_req, msgid,
	      "<a@b>"),
};

static void
test_deliver_req_msgid(void **state)
{
	RUN_PATCHES(*state, msgid_patches);
}

static void
test_ctl_req_fields(void **state)
{
	RUN_PATCHES(*state, ctl_req_patches);
}

static void
test_ctl_rep_fields(void **state)
{
	RUN_PATCHES(*state, ctl_rep_patches);
}

static void
test_stats_fields(void **state)
{
	RUN_PATCHES(*state, stats_patches);
}

static void
test_metrics_fields(void **state)
{
	RUN_PATCHES(*state, metrics_patches);
}

static void
test_resync_fields(void **state)
{
	RUN_PATCHES(*state, resync_patches);
}

/* Each command with the arguments it takes is accepted, and only then. */
static void
test_ctl_req_argument_combinations(void **state)
{
	static const struct {
		uint32_t cmd, flags;
		const char *user, *mailbox, *replica;
		bool ok;
	} t[] = {
		{ PSEP_CTL_STATUS, 0, "", "", "", true },
		{ PSEP_CTL_STATUS, PSEP_CTL_F_JSON, "", "", "", true },
		{ PSEP_CTL_STATUS, 0, "alice", "", "", false },
		{ PSEP_CTL_REPLICAS, 0, "", "", "b", false },
		{ PSEP_CTL_RELOAD, 0, "", "", "", true },
		{ PSEP_CTL_STOP, PSEP_CTL_F_ALL, "", "", "", false },
		{ PSEP_CTL_RESYNC, PSEP_CTL_F_ALL, "", "", "", true },
		{ PSEP_CTL_RESYNC, PSEP_CTL_F_ALL, "", "", "b", true },
		{ PSEP_CTL_RESYNC, PSEP_CTL_F_ALL, "alice", "", "", false },
		{ PSEP_CTL_RESYNC, PSEP_CTL_F_ALL, "", "INBOX", "", false },
		{ PSEP_CTL_RESYNC, 0, "", "", "", false },
		{ PSEP_CTL_RESYNC, 0, "alice", "", "", true },
		{ PSEP_CTL_RESYNC, 0, "alice", "Sent", "b", true },
		{ PSEP_CTL_RESYNC, 0, "alice", "../x", "", false },
		{ PSEP_CTL_RESYNC, 0, "alice", ".hidden", "", false },
	};
	struct pair *p = *state;
	const struct mcase *c = case_of(PSEP_CTL_REQ);
	char what[96];

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct psep_ctl_req *r;

		dg_build(c, &p->d);
		r = (struct psep_ctl_req *)dg_body(&p->d);
		memset(r, 0, sizeof(*r));
		r->cmd = t[i].cmd;
		r->flags = t[i].flags;
		SET_STR(r->user, t[i].user);
		SET_STR(r->mailbox, t[i].mailbox);
		SET_STR(r->replica, t[i].replica);
		snprintf(what, sizeof(what), "CTL_REQ cmd %u flags %u user '%s' mailbox '%s'",
			 t[i].cmd, t[i].flags, t[i].user, t[i].mailbox);
		check_verdict(p, c, &p->d, PSEP_ROLE_CONTROL, PSEP_STATE_READY, t[i].ok, what);
	}
}

/* The control peer may send CTL_REQ and nothing else; no child may send
 * CTL_REQ. */
static void
test_only_the_control_peer_sends_ctl_req(void **state)
{
	struct pair *p = *state;
	const struct mcase *c = case_of(PSEP_CTL_REQ);
	int role;

	for (role = 0; role < PSEP_ROLE_COUNT; role++) {
		dg_build(c, &p->d);
		check_verdict(p, c, &p->d, (enum psep_role)role, PSEP_STATE_READY,
			      role == PSEP_ROLE_CONTROL, "CTL_REQ by role");
	}
	for (size_t i = 0; i < msg_ncases; i++) {
		if (msg_cases[i].type == PSEP_CTL_REQ)
			continue;
		dg_build(&msg_cases[i], &p->d);
		check_verdict(p, &msg_cases[i], &p->d, PSEP_ROLE_CONTROL,
			      valid_state(&msg_cases[i]), false, msg_cases[i].name);
	}
}

/* CTL_REP: an output memfd whose size is announced, or none. */
static void
test_ctl_rep_output_memfd(void **state)
{
	struct pair *p = *state;
	const struct mcase *c = case_of(PSEP_CTL_REP);
	struct psep_ctl_rep *r;
	struct psep_msg m;
	const char *why = NULL;

	dg_build(c, &p->d);
	r = (struct psep_ctl_rep *)dg_body(&p->d);
	r->size = BODY_LEN;
	send_dgram(p->tx, &p->d, TFD_MEMFD, 1);
	assert_int_equal(psep_msg_recv(p->rx, PSEP_ROLE_SUPERVISOR, PSEP_STATE_READY,
				       &m, &why), 0);
	assert_true(m.fd >= 0);
	psep_msg_clear(&m);
	r->size = BODY_LEN + 1;
	send_dgram(p->tx, &p->d, TFD_MEMFD, 1);
	expect_reject(p->rx, PSEP_ROLE_SUPERVISOR, PSEP_STATE_READY, "size mismatch");
	assert_no_fd_leak(&p->before, "CTL_REP memfd");
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, pair_setup, pair_teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_ctl_req_fields),
		T(test_ctl_rep_fields),
		T(test_stats_fields),
		T(test_metrics_fields),
		T(test_resync_fields),
		T(test_ctl_req_argument_combinations),
		T(test_only_the_control_peer_sends_ctl_req),
		T(test_ctl_rep_output_memfd),
		T(test_deliver_req_msgid),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
