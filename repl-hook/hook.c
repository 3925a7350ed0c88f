/* SPDX-License-Identifier: MIT */
/*
 * repl-hook/hook.c - the top of the repl-hook process: its callbacks for
 * the privsep/child.h skeleton (HELLO, logging, the loop and the exit are
 * the skeleton's), one journal and one connection per replica, the events
 * from the supervisor (group commit, synchronous acknowledgements with a
 * timeout).  The requests sync.c makes through the supervisor are in
 * local.c, the accessors the lower files use in replica.c.
 *
 * Layers:   hook.c -> sync.c, sync_mailbox.c, sync_dirty.c -> conn.c,
 *           conn_send.c, conn_reply.c -> local.c, replica.c, journal.c.
 *           A lower file tells a higher one only through struct
 *           hook_notify (set here).
 *
 * Runs in:  repl-hook, as run_user, no capabilities, seccomp profile
 *           PSEP_PROFILE_REPL_HOOK.  libevent (epoll, no signal events).
 * Trust:    every message from the supervisor went through psep_msg_recv;
 *           a bad one ends the process (the supervisor restarts it).
 * Order:    the EVENT_REQs of one wake-up of the supervisor link (at most
 *           PSEP_LINK_READ_BATCH messages, privsep/link.h) are appended to
 *           the journals and the connections are kicked, so the new entries
 *           go out on the next turn of the loop; the fsync of each touched
 *           journal runs from a zero timer, after that turn's socket
 *           writes, and covers every event appended before it (group
 *           commit across wake-ups).  Only after it is an event answered
 *           (JOURNALED / FAILED), or kept pending until enough replicas
 *           acknowledged it (ACKED) or its timeout passed (TIMEOUT; the
 *           entry stays journaled).  A replica may so apply an entry
 *           before it is durable here: if this host crashes before the
 *           fsync, the event is lost from the journal, but the change it
 *           describes was already durable in the mailbox (the event is
 *           sent after the save), so the replica is ahead, not wrong, and
 *           no 250 was given for it.  An event that would
 *           push a journal past replication_journal_max_size is not
 *           journaled for that replica: its mailbox is marked for resync.
 *           When want_acks > 0 and fewer replicas can acknowledge, the
 *           event still waits for its timeout and then gets TIMEOUT (the
 *           same answer as for a replica that is down).
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "policy/policy.h"
#include "privsep/child.h"
#include "privsep/link.h"
#include "privsep/privsep.h"
#include "privsep/tls.h"
#include "repl-hook/core_int.h"

#define IPC_OUT_MAX (4u * 1024u * 1024u)   /* queued bytes to the supervisor */

/* An event waiting for synchronous acknowledgements. */
struct pending {
	TAILQ_ENTRY(pending) entry;
	struct hook *h;
	uint64_t id;
	uint32_t want;
	uint32_t acks;
	bool failed;
	bool answered;
	uint32_t touched;                       /* replicas whose journal holds it */
	uint64_t timeout_ms;
	uint64_t seq[POLICY_MAX_REPLICAS];
	struct event *timer;
};

TAILQ_HEAD(pending_list, pending);

struct hook_ipc {
	struct hook *h;
	struct pending_list pend;
	size_t n_pend;
	/* events appended, not yet fsynced (ev_sync is armed) */
	struct pending_list unsynced;
	uint32_t touched;                       /* their journals, as a bit mask */
	struct event *ev_sync;                  /* zero timer: fsync, then answer */
};

static void ipc_sync_now(struct hook_ipc *ipc);

/* Send now if nothing is queued, else queue (fd duplicated, not consumed). */
static int
ipc_send(struct hook_ipc *ipc, uint16_t type, uint64_t id, const void *body,
	 size_t len, int fd)
{
	return psep_link_send(ipc->h->link, type, id, body, len, fd);
}

/* ---- events and acknowledgements -------------------------------------- */

static void
pending_answer(struct pending *p, enum psep_event_status st)
{
	struct hook_ipc *ipc = p->h->ipc;
	struct psep_event_rep rep;

	memset(&rep, 0, sizeof(rep));
	rep.status = st;
	rep.acks = p->acks;
	p->answered = true;
	if (ipc_send(ipc, PSEP_EVENT_REP, p->id, &rep, sizeof(rep), -1) == -1)
		log_err("id=%llu cannot answer the event", (unsigned long long)p->id);
}

static void
pending_free(struct pending *p)
{
	struct hook_ipc *ipc = p->h->ipc;

	TAILQ_REMOVE(&ipc->pend, p, entry);
	ipc->n_pend--;
	if (p->timer != NULL)
		event_free(p->timer);
	free(p);
}

static void
pending_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct pending *p = arg;

	(void)fd;
	(void)what;
	log_info("id=%llu synchronous replication timed out acks=%u want=%u",
		 (unsigned long long)p->id, p->acks, p->want);
	for (size_t i = 0; i < p->h->n_replicas; i++)
		if (p->touched & (1u << i))
			p->h->replicas[i].n_timeouts++;
	pending_answer(p, PSEP_EV_TIMEOUT);
	pending_free(p);
}

/* An OK for an entry whose journal fsync has not run yet (the reply beat
 * the zero timer): counted now, answered by event_finish. */
static bool
unsynced_acked(struct hook *h, uint32_t bit, size_t ri, uint64_t seq)
{
	struct pending *p;

	TAILQ_FOREACH(p, &h->ipc->unsynced, entry) {
		if (!(p->touched & bit) || p->seq[ri] != seq)
			continue;
		p->touched &= ~bit;
		p->acks++;
		return true;
	}
	return false;
}

/* An entry of replica r with this seq got an OK reply (counts towards
 * synchronous acknowledgements; hook_notify.event_acked). */
static void
event_acked(struct hook *h, struct hook_replica *r, uint64_t seq)
{
	struct pending *p, *next;
	uint32_t bit = 1u << r->index;

	if (unsynced_acked(h, bit, r->index, seq))
		return;
	for (p = TAILQ_FIRST(&h->ipc->pend); p != NULL; p = next) {
		next = TAILQ_NEXT(p, entry);
		if (!(p->touched & bit) || p->seq[r->index] != seq || p->answered)
			continue;
		p->touched &= ~bit;
		if (++p->acks >= p->want) {
			pending_answer(p, PSEP_EV_ACKED);
			pending_free(p);
		}
		return;
	}
}

/* Build the journal record for an event; false if it cannot be one. */
static bool
event_record(const struct psep_msg *m, char *line, size_t size,
	     struct journal_rec *rec)
{
	const struct psep_event_req *ev = &m->u.event_req;
	bool save = ev->cmd.op == PSEP_REPL_SAVE;
	uint64_t lit = save ? ev->prefix_len + ev->cmd.body_size : 0;

	memset(rec, 0, sizeof(*rec));
	if ((save && m->fd < 0) || ev->prefix_len > PSEP_PREFIX_MAX ||
	    (save && ev->prefix_len == 0 && ev->cmd.body_size == 0 && m->fd < 0))
		return false;
	rec->line_len = repl_fmt_command(line, size, &ev->cmd, lit);
	if (rec->line_len == 0)
		return false;
	rec->line = line;
	rec->origin = ev->cmd.origin;
	rec->peer = ev->cmd.peer;
	rec->user = ev->cmd.user;
	rec->mailbox = ev->cmd.mailbox;
	rec->prefix = save ? ev->prefix : NULL;
	rec->prefix_len = save ? ev->prefix_len : 0;
	rec->body_fd = save ? m->fd : -1;
	rec->body_size = save ? ev->cmd.body_size : 0;
	return true;
}

static bool
replica_excluded(const struct hook_replica *r, const struct psep_repl_cmd *cmd)
{
	return r->server_id[0] != '\0' && (strcmp(r->server_id, cmd->origin) == 0 ||
					   strcmp(r->server_id, cmd->peer) == 0);
}

/* Append one event to every eligible journal (no fsync yet). */
static struct pending *
event_append(struct hook *h, const struct psep_msg *m, uint32_t *touched)
{
	static char line[REPL_MAXLINE];
	const struct psep_event_req *ev = &m->u.event_req;
	struct pending *p = xcalloc(1, sizeof(*p));
	struct journal_rec rec;
	bool ok;
	size_t i;

	p->h = h;
	p->id = m->hdr.id;
	p->want = ev->want_acks;
	p->timeout_ms = ev->timeout_ms != 0 ? ev->timeout_ms :
			h->set->replication_sync_timeout;
	ok = event_record(m, line, sizeof(line) - 24, &rec);
	for (i = 0; i < h->n_replicas; i++) {
		struct hook_replica *r = &h->replicas[i];

		if (replica_excluded(r, &ev->cmd))
			continue;
		if (!ok) {
			log_err("replica=%s id=%llu user=%s mailbox=%s event cannot be "
				"journaled (too long or no body); mailbox marked for sync",
				r->cfg->name, (unsigned long long)p->id, ev->cmd.user,
				ev->cmd.mailbox);
			hook_sync_mark_dirty(r, ev->cmd.user, ev->cmd.mailbox);
			continue;
		}
		if (journal_acked(r->j) == journal_size(r->j))
			r->unacked_since_ms = hook_now_ms();
		if (journal_append(r->j, &rec, &p->seq[i]) == 0) {
			p->touched |= 1u << i;
			continue;
		}
		if (errno == EFBIG) {
			if (!r->overflow_logged)
				log_warn("replica=%s journal full "
					 "(replication_journal_max_size): mailboxes "
					 "marked for sync instead", r->cfg->name);
			r->overflow_logged = true;
			hook_sync_mark_dirty(r, ev->cmd.user, ev->cmd.mailbox);
			continue;
		}
		log_err("replica=%s id=%llu journal append failed: %s", r->cfg->name,
			(unsigned long long)p->id, strerrordesc_np(errno));
		p->failed = true;
	}
	*touched |= p->touched;
	return p;
}

/* hook_notify.event_local: a captured STORE or EXPUNGE into every
 * eligible journal; fsynced by the zero timer like the others. */
static void
event_local(struct hook *h, const struct psep_repl_cmd *cmd)
{
	static char line[REPL_MAXLINE];
	static const struct timeval zero = { 0, 0 };
	struct hook_ipc *ipc = h->ipc;
	struct journal_rec rec;
	uint64_t seq;
	size_t i;

	memset(&rec, 0, sizeof(rec));
	rec.body_fd = -1;
	if (cmd->op != PSEP_REPL_SAVE)
		rec.line_len = repl_fmt_command(line, sizeof(line) - 24, cmd, 0);
	rec.line = line;
	rec.origin = cmd->origin;
	rec.peer = cmd->peer;
	rec.user = cmd->user;
	rec.mailbox = cmd->mailbox;
	for (i = 0; i < h->n_replicas; i++) {
		struct hook_replica *r = &h->replicas[i];

		if (replica_excluded(r, cmd))
			continue;
		if (rec.line_len == 0 || journal_append(r->j, &rec, &seq) < 0) {
			if (rec.line_len != 0 && errno != EFBIG)
				log_err("replica=%s journal append failed: %s",
					r->cfg->name, strerrordesc_np(errno));
			hook_sync_mark_dirty(r, cmd->user, cmd->mailbox);
			hook_conn_dirty_due(r);
			continue;
		}
		ipc->touched |= 1u << i;
		hook_conn_kick(r);
	}
	if (ipc->touched != 0 && !evtimer_pending(ipc->ev_sync, NULL) &&
	    evtimer_add(ipc->ev_sync, &zero) == -1)
		ipc_sync_now(ipc);
}

/* After the fsync: answer, or wait for acknowledgements. */
static void
event_finish(struct hook *h, struct pending *p, uint32_t sync_failed)
{
	struct hook_ipc *ipc = h->ipc;
	struct timeval tv;

	TAILQ_INSERT_TAIL(&ipc->pend, p, entry);
	ipc->n_pend++;
	if (p->failed || (p->touched & sync_failed)) {
		pending_answer(p, PSEP_EV_FAILED);
		pending_free(p);
		return;
	}
	if (p->want == 0) {
		pending_answer(p, PSEP_EV_JOURNALED);
		pending_free(p);
		return;
	}
	if (p->acks >= p->want) {               /* acked before the fsync ran */
		pending_answer(p, PSEP_EV_ACKED);
		pending_free(p);
		return;
	}
	tv.tv_sec = (time_t)(p->timeout_ms / 1000u);
	tv.tv_usec = (suseconds_t)(p->timeout_ms % 1000u) * 1000;
	p->timer = evtimer_new(h->base, pending_timeout_cb, p);
	if (p->timer == NULL || evtimer_add(p->timer, &tv) == -1)
		fatalx("cannot arm an event timer");
}

static void
event_reject(struct hook_ipc *ipc, const struct psep_msg *m)
{
	struct psep_event_rep rep;

	memset(&rep, 0, sizeof(rep));
	rep.status = PSEP_EV_FAILED;
	(void)ipc_send(ipc, PSEP_EVENT_REP, m->hdr.id, &rep, sizeof(rep), -1);
}

/* ---- receiving -------------------------------------------------------- */

/* PSEP_SHUTDOWN (psep_child_ops.shutdown): answer what waits, fsync and
 * close; the skeleton exits once the answers are sent. */
static void
hook_shutdown(void *arg)
{
	struct hook *h = arg;
	struct pending *p;
	size_t i;

	log_info("shutdown requested pending=%zu", h->ipc->n_pend);
	h->stopping = true;
	ipc_sync_now(h->ipc);
	while ((p = TAILQ_FIRST(&h->ipc->pend)) != NULL) {
		pending_answer(p, PSEP_EV_TIMEOUT);
		pending_free(p);
	}
	for (i = 0; i < h->n_replicas; i++) {
		if (journal_sync(h->replicas[i].j) == -1)
			log_err("replica=%s journal fsync: %s", h->replicas[i].cfg->name,
				strerrordesc_np(errno));
		hook_conn_stop(&h->replicas[i]);
	}
}

/* One validated message from the supervisor (psep_child_ops.dispatch).
 * Events are appended to the journals now and finished in ipc_batch_end. */
static void
ipc_dispatch(void *arg, struct psep_msg *m)
{
	struct hook *h = arg;
	struct hook_ipc *ipc = h->ipc;
	struct pending *p;

	switch (m->hdr.type) {
	case PSEP_EVENT_REQ:
		if (ipc->h->stopping) {
			event_reject(ipc, m);
			break;
		}
		hook_watch_user_seen(h, m->u.event_req.cmd.user);
		hook_watch_event_seen(h, &m->u.event_req.cmd);
		p = event_append(ipc->h, m, &ipc->touched);
		TAILQ_INSERT_TAIL(&ipc->unsynced, p, entry);
		break;
	case PSEP_REPL_REP:
	case PSEP_USERS_REP:
		hook_local_reply(h, m);
		break;
	case PSEP_STATS_REQ:
		hook_stats_answer(h, m);
		break;
	case PSEP_RESYNC_REQ:
		hook_resync_request(h, m);
		break;
	case PSEP_WATCH_REP:
		hook_watch_reply(h, m);
		break;
	default:
		log_warn("unexpected %s from supervisor", psep_type_name(m->hdr.type));
		break;
	}
}

/* fsync every touched journal once; the failed ones as a bit mask. */
static uint32_t
journals_sync(struct hook *h, uint32_t touched)
{
	uint32_t failed = 0;
	size_t i;

	for (i = 0; i < h->n_replicas; i++) {
		if (!(touched & (1u << i)))
			continue;
		if (journal_sync(h->replicas[i].j) == -1) {
			log_err("replica=%s journal fsync: %s", h->replicas[i].cfg->name,
				strerrordesc_np(errno));
			failed |= 1u << i;
		}
	}
	return failed;
}

/* One fsync per touched journal, then every appended event is answered or
 * waits.  Called from the zero timer, and at shutdown. */
static void
ipc_sync_now(struct hook_ipc *ipc)
{
	struct hook *h = ipc->h;
	uint32_t failed = journals_sync(h, ipc->touched);
	struct pending *p;

	ipc->touched = 0;
	while ((p = TAILQ_FIRST(&ipc->unsynced)) != NULL) {
		TAILQ_REMOVE(&ipc->unsynced, p, entry);
		event_finish(h, p, failed);
	}
}

static void
ipc_sync_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	ipc_sync_now(arg);
}

/* After a wake-up's messages (psep_link_ops.batch_end): the connections
 * queue the new entries now, their sockets are written on the next turn of
 * the loop, and the zero timer that fsyncs the journals fires in that same
 * turn after the writes, so the fsync and the replica's work overlap. */
static void
ipc_batch_end(void *arg)
{
	static const struct timeval zero = { 0, 0 };
	struct hook *h = arg;
	struct hook_ipc *ipc = h->ipc;
	size_t i;

	if (TAILQ_EMPTY(&ipc->unsynced))
		return;
	for (i = 0; i < h->n_replicas; i++)
		if (ipc->touched & (1u << i))
			hook_conn_kick(&h->replicas[i]);
	if (!evtimer_pending(ipc->ev_sync, NULL) && evtimer_add(ipc->ev_sync, &zero) == -1)
		ipc_sync_now(ipc);
}

static struct hook_ipc *
ipc_new(struct hook *h)
{
	struct hook_ipc *ipc = xcalloc(1, sizeof(*ipc));

	ipc->h = h;
	TAILQ_INIT(&ipc->pend);
	TAILQ_INIT(&ipc->unsynced);
	ipc->ev_sync = evtimer_new(h->base, ipc_sync_cb, ipc);
	if (ipc->ev_sync == NULL)
		fatalx("cannot create the journal sync timer");
	return ipc;
}

static void
ipc_free(struct hook *h)
{
	struct hook_ipc *ipc = h->ipc;
	struct pending *p;

	if (ipc == NULL)
		return;
	hook_local_fail_all(h);
	while ((p = TAILQ_FIRST(&ipc->unsynced)) != NULL) {
		TAILQ_REMOVE(&ipc->unsynced, p, entry);
		free(p);
	}
	while ((p = TAILQ_FIRST(&ipc->pend)) != NULL)
		pending_free(p);
	event_free(ipc->ev_sync);
	free(ipc);
	h->ipc = NULL;
}

/* ---- replicas --------------------------------------------------------- */

static void
retry_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	hook_conn_start(arg);
}

static void
full_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	hook_conn_full_due(arg);
}

static void
trunc_cb(evutil_socket_t fd, short what, void *arg)
{
	struct hook_replica *r = arg;

	(void)fd;
	(void)what;
	if (journal_acked(r->j) == journal_size(r->j))
		hook_conn_flush_acked(r, true);
}

static void
replica_init(struct hook *h, size_t i)
{
	struct hook_replica *r = &h->replicas[i];
	const char *why = "";

	r->h = h;
	r->index = i;
	r->cfg = &h->set->replicas[i];
	r->full_due = true;
	hook_replica_load_server_id(r);
	if (journal_open(h->dirfd, r->cfg->name, h->set->replication_journal_max_size,
			 &r->j, &why) == -1)
		fatal("replica=%s %s", r->cfg->name, why);
	r->ev_retry = evtimer_new(h->base, retry_cb, r);
	r->ev_full = evtimer_new(h->base, full_cb, r);
	r->ev_trunc = evtimer_new(h->base, trunc_cb, r);
	if (r->ev_retry == NULL || r->ev_full == NULL || r->ev_trunc == NULL)
		fatalx("cannot create replica timers");
	log_info("replica=%s server_id=%s journal=%llu acked=%llu", r->cfg->name,
		 r->server_id[0] != '\0' ? r->server_id : "-",
		 (unsigned long long)journal_size(r->j),
		 (unsigned long long)journal_acked(r->j));
}

static void
replica_free(struct hook_replica *r)
{
	hook_conn_stop(r);
	hook_sync_free(r);
	if (r->j != NULL && journal_sync(r->j) == -1)
		log_err("replica=%s journal fsync: %s", r->cfg->name,
			strerrordesc_np(errno));
	journal_free(&r->j);
	if (r->ev_retry != NULL)
		event_free(r->ev_retry);
	if (r->ev_full != NULL)
		event_free(r->ev_full);
	if (r->ev_trunc != NULL)
		event_free(r->ev_trunc);
}

/* ---- main ------------------------------------------------------------- */

/* The client context from the supervisor's fds, which are closed: the key
 * is parsed here, after the drop, and is in no other process. */
static void *
tls_from_fds(const struct hook_args *a)
{
	struct psep_tls_fds fds = a->tls_fds;
	struct psep_tls_files f = {
		.cert = "", .key = "", .ca = "",
		.cert_name = "replication_tls_cert",
		.key_name = "replication_tls_key",
		.ca_name = "replication_tls_ca",
	};
	char err[256];
	void *ctx;

	ctx = psep_tls_client_ctx_from_fds(&fds, &f, err, sizeof(err));
	psep_tls_close(&fds);
	if (ctx == NULL)
		fatalx("TLS client context: %s", err);
	return ctx;
}

static void
hook_setup(struct hook *h, const struct hook_args *a)
{
	const struct policy_settings *set = a->set;
	const char *id = set->server_id != NULL && set->server_id[0] != '\0' ?
			 set->server_id : set->hostname;
	h->set = set;
	h->tls_ctx = a->tls_client_ctx;
	h->dirfd = -1;
	if (a->tls_fds.key >= 0) {
		h->own_tls = tls_from_fds(a);
		h->tls_ctx = h->own_tls;
	}
	if (id == NULL || !xstrlcpy(h->server_id, id, sizeof(h->server_id)) ||
	    h->server_id[0] == '\0')
		fatalx("no valid server id");
	if (set->n_replicas > 0 && h->tls_ctx == NULL)
		fatalx("replicas configured but no TLS client context");
	if (set->n_replicas > POLICY_MAX_REPLICAS)
		fatalx("too many replicas");
	if (a->state_dirfd < 0)
		fatalx("no %s/replication directory", set->state_dir);
	h->dirfd = a->state_dirfd;
}

static const struct hook_notify hook_up = {
	.event_acked = event_acked,
	.mark_dirty = hook_sync_mark_dirty,
	.sync_start = hook_sync_start,
	.sync_abort = hook_sync_abort,
	.sync_running = hook_sync_running,
	.sync_done = hook_stats_sync_done,
	.event_local = event_local,
	.capture_on = hook_watch_on,
	.capture_busy = hook_watch_user_busy,
	.capture_boxes = hook_watch_boxes_reply,
};

/* psep_child_ops.setup: check the arguments, one journal and one
 * connection per replica. */
static void
hook_proc_setup(void *arg, struct psep_child *ch)
{
	struct hook *h = arg;
	size_t i;

	hook_setup(h, h->args);
	h->notify = &hook_up;
	h->base = psep_child_base(ch);
	hook_local_init(h, psep_child_link(ch));
	h->ipc = ipc_new(h);
	h->n_replicas = h->set->n_replicas;
	h->replicas = xcalloc(h->n_replicas > 0 ? h->n_replicas : 1,
			      sizeof(*h->replicas));
	for (i = 0; i < h->n_replicas; i++)
		replica_init(h, i);
	for (i = 0; i < h->n_replicas; i++)
		hook_conn_start(&h->replicas[i]);
	hook_watch_start(h);
	log_info("ready server_id=%s replicas=%zu", h->server_id, h->n_replicas);
}

static void
hook_proc_teardown(void *arg)
{
	struct hook *h = arg;
	size_t i;

	h->stopping = true;
	hook_resync_fail_all(h);
	hook_local_fail_all(h);
	hook_watch_free(h);
	for (i = 0; i < h->n_replicas; i++)
		replica_free(&h->replicas[i]);
	ipc_free(h);
	free(h->replicas);
	close(h->dirfd);
	psep_tls_ctx_free(h->own_tls);
	h->own_tls = NULL;
}

static const struct psep_child_ops hook_proc_ops = {
	.setup = hook_proc_setup,
	.dispatch = ipc_dispatch,
	.batch_end = ipc_batch_end,
	.shutdown = hook_shutdown,
	.teardown = hook_proc_teardown,
};

int
repl_hook_main(void *arg, int ipc)
{
	const struct hook_args *a = arg;
	struct hook h;
	const struct psep_child_args ca = {
		.role = PSEP_ROLE_REPL_HOOK, .name = "repl-hook",
		.debug = a->set->log_debug, .queue_max = IPC_OUT_MAX,
		.ops = &hook_proc_ops, .arg = &h,
	};

	memset(&h, 0, sizeof(h));
	h.args = a;
	return psep_child_run(&ca, ipc);
}
