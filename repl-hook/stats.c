/* SPDX-License-Identifier: MIT */
/*
 * repl-hook/stats.c - what the supervisor asks of repl-hook for stowctl
 * and the metrics: the state and counters of each replica
 * (PSEP_STATS_REQ), and a resync run now (PSEP_RESYNC_REQ, answered when
 * the runs it started ended, with what they repaired).
 *
 * Runs in:  repl-hook (libevent; run_user, no capabilities, seccomp).
 * Trust:    the requests went through psep_msg_recv.  The journal scan is
 *           bounded (100,000 records per replica: hook_replica_unacked_each).
 * Order:    a resync marks the user's mailbox dirty (or asks for a full
 *           sync) and starts a run; a run already going on is let finish
 *           and one more run is started for the request.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "privsep/link.h"
#include "privsep/privsep.h"
#include "repl-hook/core_int.h"


/* One stowctl resync waiting for its runs. */
struct hook_resync {
	struct hook_resync *next;
	uint64_t id;
	uint32_t waiting;             /* replicas (bits) whose run is awaited */
	uint32_t again;               /* ... whose run started before the
				       * request: one more run follows */
	bool full;
	uint64_t start_ms, mailboxes, repairs;
	char failed[128];
};

struct user_count {
	const char *user;
	uint64_t *n;
};

static void
user_count_cb(const struct journal_entry *e, void *arg)
{
	const struct user_count *u = arg;

	if (u->user[0] != '\0' && strcmp(e->user, u->user) == 0)
		(*u->n)++;
}

/* Entries after the acked offset (and those of user, if not ""). */
static void
journal_count(struct hook_replica *r, const char *user, uint64_t *entries_out,
	      uint64_t *user_out)
{
	struct user_count u = { .user = user, .n = user_out };

	*entries_out = hook_replica_unacked_each(r, user_count_cb, &u);
}

static void
replica_fill(struct hook_replica *r, const char *user, struct psep_replica_stats *s,
	     uint64_t *user_events)
{
	uint64_t size = journal_size(r->j), acked = journal_acked(r->j);

	memset(s, 0, sizeof(*s));
	xstrlcpy(s->name, r->cfg->name, sizeof(s->name));
	xstrlcpy(s->server_id, r->server_id, sizeof(s->server_id));
	s->connected = hook_replica_connected(r) ? 1 : 0;
	s->syncing = hook_sync_running(r) ? 1 : 0;
	xstrlcpy(s->last_error, r->last_error, sizeof(s->last_error));
	s->inflight = r->conn != NULL ? r->conn->inflight : 0;
	s->journal_bytes = size - acked;
	journal_count(r, user, &s->journal_entries, user_events);
	if (size == acked)
		r->unacked_since_ms = 0;
	else if (r->unacked_since_ms == 0)
		r->unacked_since_ms = hook_now_ms();   /* left from before start */
	s->lag_ms = r->unacked_since_ms != 0 ? hook_now_ms() - r->unacked_since_ms : 0;
	s->sent = r->n_sent;
	s->acks = r->n_acks;
	s->timeouts = r->n_timeouts;
	s->dirty = hook_sync_dirty_count(r);
	s->sync_last = r->sync_last;
	s->sync_ms = r->sync_ms;
	s->sync_repairs = r->sync_repairs;
	s->repairs_total = r->repairs_total;
	memcpy(s->ack_buckets, r->ack_lat.buckets, sizeof(s->ack_buckets));
	s->ack_count = r->ack_lat.count;
	s->ack_sum_us = r->ack_lat.sum_us;
}

void
hook_stats_answer(struct hook *h, const struct psep_msg *m)
{
	struct psep_stats_rep *rep = xcalloc(1, sizeof(*rep));
	size_t i;

	for (i = 0; i < h->n_replicas && i < sizeof(rep->r) / sizeof(rep->r[0]); i++)
		replica_fill(&h->replicas[i], m->u.stats_req.user, &rep->r[i],
			     &rep->user_events);
	rep->n = (uint32_t)i;
	if (psep_link_send(h->link, PSEP_STATS_REP, m->hdr.id, rep, sizeof(*rep), -1) < 0)
		log_err("id=%llu cannot answer the stats request",
			(unsigned long long)m->hdr.id);
	free(rep);
}

/* ---- resync ------------------------------------------------------------- */

static void
resync_answer(struct hook *h, struct hook_resync *w, int err, const char *text)
{
	struct psep_resync_rep rep;
	struct hook_resync **pp;

	memset(&rep, 0, sizeof(rep));
	rep.err = err;
	rep.mailboxes = w->mailboxes;
	rep.repairs = w->repairs;
	rep.ms = hook_now_ms() - w->start_ms;
	xstrlcpy(rep.text, text, sizeof(rep.text));
	if (psep_link_send(h->link, PSEP_RESYNC_REP, w->id, &rep, sizeof(rep), -1) < 0)
		log_err("id=%llu cannot answer the resync", (unsigned long long)w->id);
	for (pp = &h->resyncs; *pp != NULL; pp = &(*pp)->next)
		if (*pp == w) {
			*pp = w->next;
			break;
		}
	free(w);
}

static void
resync_reject(struct hook *h, uint64_t id, int err, const char *text)
{
	struct hook_resync *w = xcalloc(1, sizeof(*w));

	w->id = id;
	w->start_ms = hook_now_ms();
	w->next = h->resyncs;
	h->resyncs = w;
	resync_answer(h, w, err, text);
}

void
hook_resync_request(struct hook *h, const struct psep_msg *m)
{
	const struct psep_resync_req *req = &m->u.resync_req;
	struct hook_resync *w;
	uint32_t targets = 0;
	char text[160];
	size_t i;

	for (i = 0; i < h->n_replicas; i++) {
		struct hook_replica *r = &h->replicas[i];

		if (req->replica[0] != '\0' && strcmp(req->replica, r->cfg->name) != 0)
			continue;
		if (!hook_replica_connected(r)) {
			snprintf(text, sizeof(text), "replica %.64s is not connected%s%.64s",
				 r->cfg->name, r->last_error[0] != '\0' ? ": " : "",
				 r->last_error);
			resync_reject(h, m->hdr.id, ENOTCONN, text);
			return;
		}
		targets |= 1u << i;
	}
	if (targets == 0) {
		snprintf(text, sizeof(text), "no replica named %.64s", req->replica);
		resync_reject(h, m->hdr.id, ENOENT, text);
		return;
	}
	w = xcalloc(1, sizeof(*w));
	w->id = m->hdr.id;
	w->full = req->all != 0;
	w->start_ms = hook_now_ms();
	w->waiting = targets;
	w->next = h->resyncs;
	h->resyncs = w;
	log_info("resync requested: user=%s mailbox=%s replica=%s",
		 req->all ? "(all)" : req->user, req->mailbox[0] ? req->mailbox : "(all)",
		 req->replica[0] ? req->replica : "(all)");
	for (i = 0; i < h->n_replicas; i++) {
		struct hook_replica *r = &h->replicas[i];

		if (!(targets & (1u << i)))
			continue;
		if (!req->all)
			hook_sync_mark_dirty(r, req->user,
					     req->mailbox[0] != '\0' ? req->mailbox : "INBOX");
		if (hook_sync_running(r))
			w->again |= 1u << i;
		else
			hook_sync_start(r, w->full);
	}
}

void
hook_stats_sync_done(struct hook_replica *r, bool ok, uint64_t mailboxes,
		     uint64_t repairs)
{
	struct hook *h = r->h;
	struct hook_resync *w, *next;
	uint32_t bit = 1u << r->index;
	bool restart = false, full = false;

	for (w = h->resyncs; w != NULL; w = next) {
		next = w->next;
		if (!(w->waiting & bit))
			continue;
		if (w->again & bit) {
			w->again &= ~bit;
			restart = true;
			full = full || w->full;
			continue;
		}
		w->waiting &= ~bit;
		w->mailboxes += mailboxes;
		w->repairs += repairs;
		if (!ok)
			snprintf(w->failed, sizeof(w->failed),
				 "the sync with %.64s was given up", r->cfg->name);
		if (w->waiting == 0)
			resync_answer(h, w, w->failed[0] != '\0' ? EIO : 0, w->failed);
	}
	if (restart && !h->stopping)
		hook_sync_start(r, full);
}

void
hook_resync_fail_all(struct hook *h)
{
	while (h->resyncs != NULL)
		resync_answer(h, h->resyncs, ESHUTDOWN, "repl-hook is stopping");
}
