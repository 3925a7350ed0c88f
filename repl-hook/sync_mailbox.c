/* SPDX-License-Identifier: MIT */
/*
 * repl-hook/sync_mailbox.c - compare and repair one mailbox with a replica
 * (doc/replication-protocol.md §11, steps 3-5): CREATE it on the side that
 * lacks it, SYNC both sides and compare the digests, and while they differ
 * (up to SYNC_ROUNDS rounds) exchange GUIDS and run the repair actions
 * sync_plan.c yields, SYNC_INFLIGHT at a time.
 *
 * Split-of: hook_sync - one resync run (struct sync_state in sync_int.h)
 *           split by level: sync.c (users, requests, replies) and
 *           sync_mailbox.c (one mailbox); the run steps into a mailbox
 *           and the mailbox hands the run back when it is done.
 * Runs in:  repl-hook (libevent; run_user, no capabilities, seccomp).
 * Trust:    replica data lines are untrusted and parsed by repl_parse_*;
 *           local data memfds come from our writer through the supervisor
 *           and are parsed the same way.  A FETCH literal is used only if
 *           its GUID and size match the request.
 * Order:    a round is GUIDS on both sides, the repair commands, then SYNC
 *           on both sides; a SAVE to one side follows the FETCH of the
 *           other side's copy, in the same request.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "privsep/privsep.h"
#include "repl-hook/hook_int.h"
#include "repl-hook/proto/proto.h"
#include "repl-hook/sync_int.h"
#include "repl-hook/sync_plan.h"

static void mbox_guids(struct sync_state *st);
static void plan_pump(struct sync_state *st);

static bool
state_equal(const struct store_mbox_state *a,
	    const struct store_mbox_state *b)
{
	return a->messages == b->messages &&
	       memcmp(a->guidhash, b->guidhash, STORE_HASH_LEN) == 0 &&
	       memcmp(a->flaghash, b->flaghash, STORE_HASH_LEN) == 0;
}

static struct mbox_ent *
cur_mbox(struct sync_state *st)
{
	return &st->uj->mb[st->uj->i];
}

void
sync_mbox_job_reset(struct mbox_job *m)
{
	sync_side_free(&m->ls);
	sync_side_free(&m->rs);
	memset(m, 0, sizeof(*m));
}

/* The mailbox is done (ok: in step), or, later != NULL, left marked for
 * the run that follows the journal's drain (why in later). */
static void
mbox_finish(struct sync_state *st, bool ok, const char *later)
{
	struct user_job *uj = st->uj;
	struct mbox_job *m = &uj->m;
	struct mbox_ent *e = cur_mbox(st);

	e->ok = ok;
	st->run_mailboxes++;
	st->run_repairs += (uint64_t)m->sent + m->fetched + m->expunged + m->flags;
	if (later != NULL) {
		log_info("sync: replica=%s user=%s mailbox=%s later: %s",
			 hook_replica_name(st->r), uj->user, e->name, later);
		if (sync_dirty_add(&st->dirty, st->r, uj->user, e->name) < 0)
			st->pending_full = true;
		st->deferred = true;
	} else if (!ok)
		log_warn("sync: replica=%s user=%s mailbox=%s still differs after %d rounds: %s "
			 "sent=%u fetched=%u expunged=%u flags=%u errors=%u",
			 hook_replica_name(st->r), uj->user, e->name, m->round,
			 m->why != NULL ? m->why : "digests differ", m->sent, m->fetched,
			 m->expunged, m->flags, m->errors);
	else if (m->round > 0 || !e->l || !e->r)
		log_info("sync: replica=%s user=%s mailbox=%s repaired: rounds=%d "
			 "sent=%u fetched=%u expunged=%u flags=%u errors=%u",
			 hook_replica_name(st->r), uj->user, e->name, m->round, m->sent,
			 m->fetched, m->expunged, m->flags, m->errors);
	sync_mbox_job_reset(m);
	uj->i++;
	sync_mbox_next(st);
}

static void
mbox_end(struct sync_state *st, bool ok)
{
	mbox_finish(st, ok, NULL);
}

/* ---- SYNC and GUIDS on both sides ------------------------------------------ */

/* The digests differ: the GUIDS exchange and the repair, unless a flag
 * change of this side made since the run began is still on its way (the
 * run starts with the journal drained).  A repair now would give the
 * differing flags a stamp above that change and undo it (§11); the
 * mailbox is left marked for the run after the drain, when the change
 * has arrived and the digests tell what is left. */
static void
mbox_differs(struct sync_state *st)
{
	if (hook_replica_mailbox_store_unacked(st->r, st->uj->user, cur_mbox(st)->name) > 0)
		mbox_finish(st, false, "flag changes of the mailbox still in the journal");
	else
		mbox_guids(st);
}

/* The end of a pair of queries (SYNC or GUIDS on both sides). */
static void
query_done(struct sync_state *st, enum req_kind kind)
{
	struct mbox_job *m = &st->uj->m;
	struct mbox_ent *e;

	if (--m->pending > 0)
		return;
	if (m->failed) {
		mbox_end(st, false);
		return;
	}
	e = cur_mbox(st);
	if (kind == RQ_GUIDS) {
		if (e->ls.highestmodseq > m->fresh)
			m->fresh = e->ls.highestmodseq;
		if (e->rs.highestmodseq > m->fresh)
			m->fresh = e->rs.highestmodseq;
		sync_cursor_init(&m->cur);
		m->planning = true;
		plan_pump(st);
		return;
	}
	if (state_equal(&e->ls, &e->rs))
		mbox_end(st, true);
	else if (m->round >= SYNC_ROUNDS)
		mbox_end(st, false);
	else
		mbox_differs(st);
}

static void
query_fail(struct sync_state *st, const char *why)
{
	if (!st->uj->m.failed)
		st->uj->m.why = why;
	st->uj->m.failed = true;
}

/* One data line of SYNC or GUIDS, from either side. */
static void
query_line(struct sync_state *st, enum req_kind kind, bool remote,
	   const char *line)
{
	struct mbox_ent *e = cur_mbox(st);
	struct store_msg_info mi;
	char name[PSEP_NAME_MAX];

	if (st->uj->m.failed)
		return;
	if (kind == RQ_SYNC) {
		if (repl_parse_sync_data(line, name, remote ? &e->rs : &e->ls) < 0 ||
		    strcmp(name, e->name) != 0)
			query_fail(st, remote ? "bad SYNC data from the replica"
					      : "bad local SYNC data");
		return;
	}
	if (repl_parse_guid_data(line, &mi) < 0) {
		query_fail(st, remote ? "bad GUIDS data from the replica"
				      : "bad local GUIDS data");
		return;
	}
	if (sync_side_add(remote ? st->uj->m.rs : st->uj->m.ls, &mi) < 0)
		query_fail(st, errno == E2BIG ? "mailbox too large" : "bad GUID");
}

static int
query_line_local(struct sync_state *st, const char *line)
{
	query_line(st, st->uj->m.lkind, false, line);
	return st->uj->m.failed ? -1 : 0;
}

static void
query_remote_data(struct sync_req *q, const struct repl_response *resp,
		  struct repl_frame *frame)
{
	(void)frame;
	query_line(q->st, q->kind, true, resp->body);
}

static bool
query_remote_done(struct sync_req *q, bool ok)
{
	if (!ok)
		query_fail(q->st, q->kind == RQ_SYNC ? "SYNC failed on the replica"
						     : "GUIDS failed on the replica");
	query_done(q->st, q->kind);
	return false;
}

static bool
query_local_done(struct sync_req *q, const struct psep_repl_rep *rep)
{
	struct sync_state *st = q->st;

	if (rep->status != PSEP_RS_OK || q->fd < 0)
		query_fail(st, q->kind == RQ_SYNC ? "local SYNC failed"
						  : "local GUIDS failed");
	else if ((st->uj->m.lkind = q->kind, sync_each_line(q->fd, query_line_local, st)) < 0)
		query_fail(st, "cannot read local data");
	query_done(st, q->kind);
	return false;
}

static const struct sync_req_ops query_ops = {
	.remote_data = query_remote_data,
	.remote_done = query_remote_done,
	.local_done = query_local_done,
};

/* SYNC or GUIDS on both sides. */
static void
query_both(struct sync_state *st, enum req_kind kind)
{
	struct psep_repl_cmd c;
	struct mbox_ent *e = cur_mbox(st);

	st->uj->m.pending = 2;
	sync_cmd_init(&c, kind == RQ_SYNC ? PSEP_REPL_SYNC : PSEP_REPL_GUIDS, st, e->name);
	if (sync_send_remote(st, sync_req_new(st, kind, &query_ops), &c, -1, 0) < 0)
		return;
	(void)sync_send_local(st, sync_req_new(st, kind, &query_ops), &c, -1);
}

static void
mbox_guids(struct sync_state *st)
{
	struct mbox_job *m = &st->uj->m;

	m->round++;
	sync_side_free(&m->ls);
	sync_side_free(&m->rs);
	m->ls = sync_side_new();
	m->rs = sync_side_new();
	query_both(st, RQ_GUIDS);
}

/* ---- CREATE on the side that lacks the mailbox ----------------------------- */

static bool
create_remote_done(struct sync_req *q, bool ok)
{
	if (!ok)
		query_fail(q->st, "CREATE failed on the replica");
	if (q->st->uj->m.failed)
		mbox_end(q->st, false);
	else
		query_both(q->st, RQ_SYNC);
	return false;
}

static bool
create_local_done(struct sync_req *q, const struct psep_repl_rep *rep)
{
	if (rep->status != PSEP_RS_OK)
		mbox_end(q->st, false);
	else
		query_both(q->st, RQ_SYNC);
	return false;
}

static const struct sync_req_ops create_ops = {
	.remote_done = create_remote_done,
	.local_done = create_local_done,
};

void
sync_mbox_next(struct sync_state *st)
{
	struct user_job *uj = st->uj;

	for (; uj->i < uj->n; uj->i++) {
		struct mbox_ent *e = &uj->mb[uj->i];
		struct psep_repl_cmd c;

		if (e->l && e->r && state_equal(&e->ls, &e->rs)) {
			e->ok = true;
			st->run_mailboxes++;
			continue;
		}
		sync_mbox_job_reset(&uj->m);
		if (e->l && e->r) {
			mbox_differs(st);
			return;
		}
		sync_cmd_init(&c, PSEP_REPL_CREATE, st, e->name);
		sync_cmd_event(&c, st, 0);
		if (!e->r)
			(void)sync_send_remote(st, sync_req_new(st, RQ_CREATE, &create_ops),
					       &c, -1, 0);
		else
			(void)sync_send_local(st, sync_req_new(st, RQ_CREATE, &create_ops),
					      &c, -1);
		return;
	}
	sync_user_end(st);
}

/* ---- repair actions ------------------------------------------------------- */

static void
action_done(struct sync_state *st, struct sync_req *q, bool ok)
{
	struct mbox_job *m = &st->uj->m;

	if (!ok) {
		m->errors++;
	} else {
		switch (q->act.kind) {
		case SYNC_A_SAVE_REMOTE: m->sent++; break;
		case SYNC_A_FETCH_REMOTE: m->fetched++; break;
		case SYNC_A_EXPUNGE_REMOTE:
		case SYNC_A_EXPUNGE_LOCAL: m->expunged++; break;
		case SYNC_A_STORE_LOCAL: m->flags++; break;
		}
	}
	m->inflight--;
	plan_pump(st);
}

/* A SAVE of the message just fetched from one side (guid, uid, date,
 * flags, size) to the other; origin and modseq set by the caller. */
static void
action_save_cmd(struct psep_repl_cmd *c, const struct sync_req *q,
		uint32_t uid, uint64_t date, const char *flags,
		uint64_t size)
{
	struct sync_state *st = q->st;

	sync_cmd_init(c, PSEP_REPL_SAVE, st, cur_mbox(st)->name);
	xstrlcpy(c->guid, q->act.guid, sizeof(c->guid));
	c->uid_hint = uid;
	c->date = date;
	c->body_size = size;
	xstrlcpy(c->flags, flags, sizeof(c->flags));
}

static bool
act_local_done(struct sync_req *q, const struct psep_repl_rep *rep)
{
	struct sync_state *st = q->st;
	struct psep_repl_cmd c;
	bool ok = rep->status == PSEP_RS_OK;

	if (q->act.kind != SYNC_A_SAVE_REMOTE) {
		action_done(st, q, ok);
		return false;
	}
	if (!ok || q->fd < 0) {         /* a FETCH reply without its file */
		action_done(st, q, false);
		return false;
	}
	/* the local FETCH of a SAVE to the replica: send the message */
	action_save_cmd(&c, q, q->act.uid, rep->date, rep->flags, rep->size);
	sync_cmd_event(&c, st, ++st->uj->m.fresh);
	(void)sync_send_remote(st, q, &c, q->fd, rep->size);
	return true;
}

/* FETCH data from the replica: keep the body for the local SAVE. */
static void
act_remote_data(struct sync_req *q, const struct repl_response *resp,
		struct repl_frame *frame)
{
	int fd = frame != NULL ? frame->literal_fd : -1;

	if (frame != NULL)
		frame->literal_fd = -1;
	if (q->act.kind != SYNC_A_FETCH_REMOTE || q->fd >= 0 || fd < 0 ||
	    repl_parse_fetch_data(resp->body, &q->info, &q->size) < 0 ||
	    strcmp(q->info.guid, q->act.guid) != 0 || q->size != frame->literal_size) {
		q->bad_data = true;
		if (fd >= 0)
			close(fd);
		return;
	}
	q->fd = fd;
}

static bool
act_remote_done(struct sync_req *q, bool ok)
{
	struct sync_state *st = q->st;
	struct psep_repl_cmd c;

	if (!ok || q->act.kind != SYNC_A_FETCH_REMOTE) {
		action_done(st, q, ok);
		return false;
	}
	if (q->bad_data || q->fd < 0) {
		log_warn("sync: replica=%s user=%s guid=%s bad FETCH data",
			 hook_replica_name(st->r), st->uj->user, q->act.guid);
		action_done(st, q, false);
		return false;
	}
	action_save_cmd(&c, q, q->info.uid, (uint64_t)q->info.date, q->info.flags,
			q->size);
	sync_cmd_event(&c, st, 0);
	(void)sync_send_local(st, q, &c, q->fd);
	return true;
}

static const struct sync_req_ops act_ops = {
	.remote_data = act_remote_data,
	.remote_done = act_remote_done,
	.local_done = act_local_done,
};

static void
action_launch(struct sync_state *st, const struct sync_action *a)
{
	struct sync_req *q = sync_req_new(st, RQ_ACTION, &act_ops);
	struct psep_repl_cmd c;
	const char *mbox = cur_mbox(st)->name;

	memset(&c, 0, sizeof(c));
	q->act = *a;
	st->uj->m.inflight++;
	switch (a->kind) {
	case SYNC_A_EXPUNGE_REMOTE:
		sync_cmd_init(&c, PSEP_REPL_EXPUNGE, st, mbox);
		sync_cmd_event(&c, st, ++st->uj->m.fresh);
		xstrlcpy(c.guid, a->guid, sizeof(c.guid));
		(void)sync_send_remote(st, q, &c, -1, 0);
		return;
	case SYNC_A_FETCH_REMOTE:
		sync_cmd_init(&c, PSEP_REPL_FETCH, st, mbox);
		xstrlcpy(c.guid, a->guid, sizeof(c.guid));
		(void)sync_send_remote(st, q, &c, -1, 0);
		return;
	case SYNC_A_SAVE_REMOTE:
		sync_cmd_init(&c, PSEP_REPL_FETCH, st, mbox);
		break;
	case SYNC_A_EXPUNGE_LOCAL:
		sync_cmd_init(&c, PSEP_REPL_EXPUNGE, st, mbox);
		sync_cmd_event(&c, st, 0);
		break;
	case SYNC_A_STORE_LOCAL:
		sync_cmd_init(&c, PSEP_REPL_STORE, st, mbox);
		sync_cmd_event(&c, st, 0);
		xstrlcpy(c.flags, a->flags, sizeof(c.flags));
		break;
	}
	xstrlcpy(c.guid, a->guid, sizeof(c.guid));
	(void)sync_send_local(st, q, &c, -1);
}

/* Keep up to SYNC_INFLIGHT repairs going; SYNC both sides after the last. */
static void
plan_pump(struct sync_state *st)
{
	struct mbox_job *m = &st->uj->m;
	struct sync_action a;
	uint64_t gen = st->gen;

	if (m->pumping || !m->planning)
		return;
	m->pumping = true;
	while (m->inflight < SYNC_INFLIGHT && sync_plan_next(m->ls, m->rs, &m->cur, &a)) {
		action_launch(st, &a);
		if (st->gen != gen)
			return;             /* the run was given up */
	}
	m->pumping = false;
	if (m->inflight > 0 || sync_plan_next(m->ls, m->rs, &m->cur, &a))
		return;
	if (m->cur.skipped > 0) {
		log_warn("sync: replica=%s user=%s mailbox=%s %zu flag differences too "
			 "long for one STORE", hook_replica_name(st->r), st->uj->user,
			 cur_mbox(st)->name, m->cur.skipped);
		m->errors += (unsigned)m->cur.skipped;
	}
	m->planning = false;
	sync_side_free(&m->ls);
	sync_side_free(&m->rs);
	query_both(st, RQ_SYNC);
}
