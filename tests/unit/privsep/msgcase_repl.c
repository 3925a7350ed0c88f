/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/privsep/msgcase_repl.c - the valid message of each type of the
 * replication family (REPL, REPL_OP, EVENT, USERS, WRITE_STAMP) for the
 * decoder tests;
 * the rows of msg_cases (msgcase.c) point here (see msgcase.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "msgcase.h"

/* A SAVE of the test body (the sealed memfd of every body case). */
void
fill_repl_cmd(struct psep_repl_cmd *c)
{
	c->op = PSEP_REPL_SAVE;
	c->uid_hint = 42;
	c->modseq = 17;
	c->date = 1718000000;
	c->body_size = BODY_LEN;
	SET_STR(c->origin, "a.example");
	SET_STR(c->peer, "a.example");
	SET_STR(c->user, "alice");
	SET_STR(c->mailbox, "INBOX");
	SET_STR(c->guid, TEST_GUID);
	SET_STR(c->flags, "\\Seen");
}

size_t
fill_repl_req(void *b)
{
	struct psep_repl_req *r = b;

	fill_repl_cmd(&r->cmd);
	return sizeof(*r);
}

size_t
fill_repl_rep(void *b)
{
	struct psep_repl_rep *r = b;

	r->status = PSEP_RS_OK;
	r->effective = 1;
	r->uid = 42;
	r->modseq = 17;
	SET_STR(r->origin, "a.example");
	SET_STR(r->code, "UID 42");
	SET_STR(r->text, "saved");
	return sizeof(*r);
}

size_t
fill_repl_op_req(void *b)
{
	struct psep_repl_op_req *r = b;
	uint32_t i;

	r->uid = 1000;
	r->gid = 1000;
	r->ngroups = 2;
	for (i = 0; i < PSEP_MAX_GROUPS; i++)
		r->groups[i] = 1000 + i;
	SET_STR(r->mail_base, "/var/mail");
	SET_STR(r->mail_rel, "alice/Maildir");
	fill_repl_cmd(&r->cmd);
	return sizeof(*r);
}

size_t
fill_repl_op_rep(void *b)
{
	struct psep_repl_op_rep *r = b;

	r->err = 0;
	r->result = 0;
	r->effective = 1;
	r->uid = 42;
	r->modseq = 17;
	SET_STR(r->origin, "a.example");
	SET_STR(r->filename, "1718000000.M1P2.host,S=21");
	return sizeof(*r);
}

size_t
fill_event_req(void *b)
{
	struct psep_event_req *r = b;

	fill_repl_cmd(&r->cmd);
	SET_STR(r->cmd.peer, "");
	r->want_acks = 1;
	r->timeout_ms = 2000;
	r->prefix_len = PREFIX_LEN;
	memcpy(r->prefix, TEST_PREFIX, PREFIX_LEN);
	return sizeof(*r) + PREFIX_LEN;
}

size_t
fill_event_rep(void *b)
{
	struct psep_event_rep *r = b;

	r->status = PSEP_EV_ACKED;
	r->acks = 1;
	return sizeof(*r);
}

size_t
fill_users_req(void *b)
{
	(void)b;
	return sizeof(struct psep_users_req);
}

size_t
fill_users_rep(void *b)
{
	struct psep_users_rep *r = b;

	r->err = 0;
	r->count = BODY_LINES;
	return sizeof(*r);
}

/* The early stamp of a save: a WRITE_REP body with err 0, uid, modseq. */
size_t
fill_write_stamp(void *b)
{
	struct psep_write_rep *r = b;

	r->err = 0;
	r->imap_uid = 7;
	r->size = BODY_LEN + PREFIX_LEN;
	r->modseq = 12;
	SET_STR(r->guid, TEST_GUID);
	SET_STR(r->filename, "1700000000.M1P2Q3G" TEST_GUID ".host,S=52,W=55");
	return sizeof(*r);
}

size_t
fill_watch_req(void *b)
{
	struct psep_watch_req *r = b;

	SET_STR(r->user, "alice");
	return sizeof(*r);
}

/* WATCH_REP and WATCH_OP_REP: the list of BODY_LINES watches. */
size_t
fill_watch_rep(void *b)
{
	struct psep_watch_rep *r = b;

	r->err = 0;
	r->count = BODY_LINES;
	return sizeof(*r);
}

size_t
fill_watch_op_req(void *b)
{
	struct psep_watch_op_req *r = b;
	uint32_t i;

	r->uid = 1000;
	r->gid = 1000;
	r->ngroups = 2;
	for (i = 0; i < PSEP_MAX_GROUPS; i++)
		r->groups[i] = 1000 + i;
	SET_STR(r->mail_base, "/var/mail");
	SET_STR(r->mail_rel, "alice/Maildir");
	SET_STR(r->user, "alice");
	return sizeof(*r);
}
