/* SPDX-License-Identifier: MIT */
/*
 * repl-hook/sync.c - resynchronisation of mailboxes with one replica
 * (doc/replication-protocol.md §11): the run over the users (all of them,
 * or those of the dirty set), LIST on both sides, then each mailbox in
 * turn (sync_mailbox.c compares and repairs it); the requests of a run and
 * the handling every reply shares.
 *
 * Split-of: hook_sync - one resync run (struct sync_state in sync_int.h)
 *           split by level: sync.c (users, requests, replies) and
 *           sync_mailbox.c (one mailbox); the run steps into a mailbox
 *           and the mailbox hands the run back when it is done.
 * Runs in:  repl-hook (libevent; run_user, no capabilities, seccomp).
 * Trust:    replica data lines are untrusted and parsed by repl_parse_*;
 *           local data memfds come from our writer through the supervisor
 *           and are parsed the same way.  Memory is bounded: one user and
 *           one mailbox at a time, SYNC_INFLIGHT repair commands in flight,
 *           at most SYNC_MAILBOX_MAX mailboxes per user, GUID sets bounded
 *           by sync_plan.h.
 * Order:    one user at a time; one mailbox at a time; a round is GUIDS on
 *           both sides, the repair commands, then SYNC on both sides.  Every
 *           request holds a reference to the replica's sync state and the
 *           run generation; a reply of an abandoned run (abort, free) only
 *           releases its resources.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "privsep/privsep.h"
#include "repl-hook/hook_int.h"
#include "repl-hook/proto/proto.h"
#include "repl-hook/sync_int.h"
#include "repl-hook/sync_plan.h"

#define LR_BUF 65536u

/* Buffered reader of "\n"-separated lines of a memfd, from offset 0. */
struct line_reader {
	int fd;
	uint64_t off;
	size_t start, end;
	bool eof;
	char buf[LR_BUF + 1];
};

static void next_user(struct sync_state *st);

/* ---- helpers ------------------------------------------------------------ */

static void
lr_init(struct line_reader *lr, int fd)
{
	lr->fd = fd;
	lr->off = 0;
	lr->start = lr->end = 0;
	lr->eof = false;
}

/* 1 with *line, 0 at the end, -1 with errno (EMSGSIZE: line too long). */
static int
lr_next(struct line_reader *lr, char **line)
{
	for (;;) {
		char *nl = memchr(lr->buf + lr->start, '\n', lr->end - lr->start);
		ssize_t n;

		if (nl != NULL) {
			*nl = '\0';
			*line = lr->buf + lr->start;
			lr->start = (size_t)(nl - lr->buf) + 1;
			return 1;
		}
		if (lr->eof) {
			if (lr->start == lr->end)
				return 0;
			lr->buf[lr->end] = '\0';
			*line = lr->buf + lr->start;
			lr->start = lr->end;
			return 1;
		}
		if (lr->end - lr->start > REPL_MAXLINE) {
			errno = EMSGSIZE;
			return -1;
		}
		memmove(lr->buf, lr->buf + lr->start, lr->end - lr->start);
		lr->end -= lr->start;
		lr->start = 0;
		n = pread(lr->fd, lr->buf + lr->end, LR_BUF - lr->end, (off_t)lr->off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		lr->eof = n == 0;
		lr->off += (uint64_t)n;
		lr->end += (size_t)n;
	}
}

int
sync_each_line(int fd, int (*fn)(struct sync_state *st, const char *line),
	       struct sync_state *st)
{
	struct line_reader *lr = xmalloc(sizeof(*lr));
	char *line;
	int rc, err = 0;

	lr_init(lr, fd);
	while ((rc = lr_next(lr, &line)) > 0) {
		if (line[0] != '\0' && fn(st, line) < 0) {
			err = -1;
			break;
		}
	}
	free(lr);
	return rc < 0 ? -1 : err;
}

static uint64_t
sync_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static struct sync_state *
state_of(struct hook_replica *r)
{
	void **slot = hook_replica_sync_slot(r);
	struct sync_state *st = *slot;

	if (st == NULL) {
		st = xcalloc(1, sizeof(*st));
		st->r = r;
		st->h = hook_replica_hook(r);
		st->refs = 1;
		*slot = st;
	}
	return st;
}

static void
state_unref(struct sync_state *st)
{
	if (--st->refs > 0)
		return;
	sync_dirty_clear(&st->dirty);
	free(st);
}

struct sync_req *
sync_req_new(struct sync_state *st, enum req_kind kind,
	     const struct sync_req_ops *ops)
{
	struct sync_req *q = xcalloc(1, sizeof(*q));

	q->st = st;
	q->gen = st->gen;
	q->kind = kind;
	q->ops = ops;
	q->fd = -1;
	st->refs++;
	return q;
}

static void
req_free(struct sync_req *q)
{
	if (q->fd >= 0)
		close(q->fd);
	state_unref(q->st);
	free(q);
}

/* The request belongs to the run in progress. */
static bool
req_live(const struct sync_req *q)
{
	return !q->st->dead && q->st->running && q->gen == q->st->gen;
}

void
sync_cmd_init(struct psep_repl_cmd *c, enum psep_repl_op op,
	      const struct sync_state *st, const char *mailbox)
{
	memset(c, 0, sizeof(*c));
	c->op = op;
	xstrlcpy(c->user, st->uj->user, sizeof(c->user));
	if (mailbox != NULL)
		xstrlcpy(c->mailbox, mailbox, sizeof(c->mailbox));
}

void
sync_cmd_event(struct psep_repl_cmd *c, const struct sync_state *st,
	       uint64_t modseq)
{
	xstrlcpy(c->origin, hook_server_id(st->h), sizeof(c->origin));
	c->modseq = modseq;
}

static void
user_job_free(struct user_job **uj)
{
	if (*uj == NULL)
		return;
	sync_mbox_job_reset(&(*uj)->m);
	free((*uj)->mb);
	free(*uj);
	*uj = NULL;
}

/* Drop the run's state (requests in flight become stale). */
static void
run_clear(struct sync_state *st)
{
	st->gen++;
	user_job_free(&st->uj);
	if (st->users_lr != NULL) {
		close(st->users_lr->fd);
		free(st->users_lr);
		st->users_lr = NULL;
	}
	for (size_t i = 0; i < st->nusers; i++)
		free(st->users[i]);
	free(st->users);
	st->users = NULL;
	st->nusers = st->user_i = 0;
	if (st->running && st->full)
		st->pending_full = true;
	st->running = false;
}

/* A send failed (link or supervisor gone): give the run up. */
static void
run_fail(struct sync_state *st, const char *why)
{
	log_warn("sync: replica=%s stopped: %s", hook_replica_name(st->r), why);
	run_clear(st);
	hook_replica_sync_ended(st->r, false, false, st->run_start_ms, st->run_mailboxes,
				st->run_repairs);
}

/* No reply will come (resp or rep NULL: the link or the supervisor went
 * away): give the run up and free q.  Returns true if so. */
static bool
req_lost(struct sync_req *q, bool lost, const char *why)
{
	if (!lost)
		return false;
	if (req_live(q))
		run_fail(q->st, why);
	req_free(q);
	return true;
}

/* Every reply of the replica to a request: DATA lines, then the tagged
 * reply (or NULL: connection lost); q->ops says what the request does. */
static void
remote_cb(struct hook_replica *r, const struct repl_response *resp,
	  struct repl_frame *frame, void *arg)
{
	struct sync_req *q = arg;

	(void)r;
	if (resp != NULL && resp->kind == REPL_R_DATA) {
		if (req_live(q) && q->ops->remote_data != NULL)
			q->ops->remote_data(q, resp, frame);
		if (frame != NULL && frame->literal_fd >= 0) {
			close(frame->literal_fd);
			frame->literal_fd = -1;
		}
		return;
	}
	if (resp != NULL && resp->kind != REPL_R_TAGGED)
		return;
	if (req_lost(q, resp == NULL, "connection lost"))
		return;
	if (req_live(q) && q->ops->remote_done(q, resp->status == PSEP_RS_OK))
		return;
	req_free(q);
}

/* The local reply to a request (rep NULL: the supervisor went away). */
static void
local_cb(struct hook *h, const struct psep_repl_rep *rep, int fd,
	 void *arg)
{
	struct sync_req *q = arg;

	(void)h;
	if (req_lost(q, rep == NULL, "supervisor gone")) {
		if (fd >= 0)
			close(fd);
		return;
	}
	if (q->fd < 0)
		q->fd = fd;
	else if (fd >= 0)
		close(fd);
	if (req_live(q) && q->ops->local_done(q, rep))
		return;
	req_free(q);
}

int
sync_send_remote(struct sync_state *st, struct sync_req *q,
		 const struct psep_repl_cmd *c, int body_fd, uint64_t size)
{
	if (hook_replica_send(st->r, c, body_fd, size, remote_cb, q) < 0) {
		req_free(q);
		run_fail(st, "replica not connected");
		return -1;
	}
	return 0;
}

int
sync_send_local(struct sync_state *st, struct sync_req *q,
		const struct psep_repl_cmd *c, int memfd)
{
	if (hook_local_send(st->h, c, memfd, local_cb, q) < 0) {
		req_free(q);
		run_fail(st, "local request failed");
		return -1;
	}
	return 0;
}

/* ---- dirty set ---------------------------------------------------------- */

void
hook_sync_mark_dirty(struct hook_replica *r, const char *user,
		     const char *mailbox)
{
	struct sync_state *st = state_of(r);

	if (!sync_dirty_name_ok(user) || !sync_dirty_name_ok(mailbox)) {
		log_warn("sync: replica=%s cannot mark a mailbox with a bad name",
			 hook_replica_name(r));
		return;
	}
	sync_dirty_load(&st->dirty, r);
	if (sync_dirty_add(&st->dirty, r, user, mailbox) < 0)
		st->pending_full = true;
	else if (st->running)
		st->pending_dirty = true;   /* marked after the run began */
}

/* At the end of a user: drop the pairs that are done. */
static void
user_dirty_done(struct sync_state *st)
{
	struct user_job *uj = st->uj;
	bool changed = false;
	size_t i = 0;

	while (i < st->dirty.n) {
		struct dirty_ent *d = &st->dirty.v[i];
		bool done = !uj->failed;

		if (strcmp(d->user, uj->user) != 0 || d->mark > uj->mark_start) {
			i++;
			continue;
		}
		for (size_t k = 0; done && !uj->nouser && k < uj->n; k++) {
			if (strcmp(uj->mb[k].name, d->mailbox) == 0)
				done = uj->mb[k].ok;
		}
		if (done || uj->nouser) {
			sync_dirty_remove(&st->dirty, i);
			changed = true;
		} else {
			i++;
		}
	}
	if (changed)
		(void)sync_dirty_rewrite(&st->dirty, st->r);
}

/* ---- users -------------------------------------------------------------- */

void
sync_user_end(struct sync_state *st)
{
	struct user_job *uj = st->uj;

	if (uj->nouser)
		log_warn("sync: replica=%s user=%s unknown here: dropped from the dirty set",
			 hook_replica_name(st->r), uj->user);
	else if (uj->failed && !uj->deferred)
		log_warn("sync: replica=%s user=%s not synced: %s", hook_replica_name(st->r),
			 uj->user, uj->m.why != NULL ? uj->m.why : "LIST failed");
	user_dirty_done(st);
	st->done_users++;
	user_job_free(&st->uj);
	next_user(st);
}

static struct mbox_ent *
mbox_get(struct user_job *uj, const char *name)
{
	for (size_t i = 0; i < uj->n; i++) {
		if (strcmp(uj->mb[i].name, name) == 0)
			return &uj->mb[i];
	}
	if (uj->n >= SYNC_MAILBOX_MAX)
		return NULL;
	if (uj->n == uj->cap) {
		uj->cap = uj->cap ? 2 * uj->cap : 16;
		uj->mb = xrealloc(uj->mb, uj->cap * sizeof(*uj->mb));
	}
	memset(&uj->mb[uj->n], 0, sizeof(uj->mb[uj->n]));
	xstrlcpy(uj->mb[uj->n].name, name, sizeof(uj->mb[uj->n].name));
	return &uj->mb[uj->n++];
}

static int
list_line(struct sync_state *st, const char *line, bool remote)
{
	char name[PSEP_NAME_MAX];
	struct store_mbox_state s;
	struct mbox_ent *e;

	if (repl_parse_mailbox_data(line, name, &s) < 0) {
		st->uj->m.why = remote ? "bad LIST data from the replica"
				       : "bad local LIST data";
		return -1;
	}
	e = mbox_get(st->uj, name);
	if (e == NULL) {
		st->uj->m.why = "too many mailboxes";
		return -1;
	}
	if (remote) {
		e->r = true;
		e->rs = s;
	} else {
		e->l = true;
		e->ls = s;
	}
	return 0;
}

static int
list_line_local(struct sync_state *st, const char *line)
{
	return list_line(st, line, false);
}

/* The user's folders are not settled: a folder change of this side is
 * still being captured or on its way to the replica.  Creating a mailbox
 * found on one side only would then undo a rename or delete (Dovecot
 * renamed Work, the replica has not yet: Work would be made again here):
 * the user is left marked and synced after the journal drained. */
static void
user_defer(struct sync_state *st, const char *why)
{
	log_info("sync: replica=%s user=%s later: %s", hook_replica_name(st->r),
		 st->uj->user, why);
	st->uj->failed = true;
	st->uj->deferred = true;
	st->deferred = true;
	/* a full sync's user has no mark yet: the later run needs one */
	if (sync_dirty_add(&st->dirty, st->r, st->uj->user, "INBOX") < 0)
		st->pending_full = true;
	sync_user_end(st);
}

static bool
settle_local_done(struct sync_req *q, const struct psep_repl_rep *rep)
{
	struct sync_state *st = q->st;
	unsigned events;

	if (rep->status != PSEP_RS_OK) {
		user_defer(st, "folder capture failed");
		return false;
	}
	events = hook_capture_boxes_reply(st->h, st->uj->user, q->fd);
	if (events > 0)
		user_defer(st, "folder changes just captured");
	else if (hook_replica_user_folder_unacked(st->r, st->uj->user) > 0)
		user_defer(st, "folder changes of the user still in the journal");
	else
		sync_mbox_next(st);
	return false;
}

static const struct sync_req_ops settle_ops = {
	.local_done = settle_local_done,
};

static void
lists_done(struct sync_state *st)
{
	struct psep_repl_cmd c;
	bool one_sided = false;

	if (--st->uj->pending > 0)
		return;
	if (st->uj->failed || st->uj->nouser) {
		sync_user_end(st);
		return;
	}
	st->uj->i = 0;
	for (size_t i = 0; i < st->uj->n && !one_sided; i++)
		one_sided = st->uj->mb[i].l != st->uj->mb[i].r;
	/*
	 * A mailbox on one side only, or a full sync (at start-up and every
	 * replication_full_sync_interval): first what this side's user did to
	 * the folders and subscriptions, which inotify did not report while
	 * stowd was down (the capture compares with stowd's last look).
	 */
	if ((!one_sided && !st->full) || !hook_capture_on(st->h)) {
		sync_mbox_next(st);
		return;
	}
	if (hook_capture_user_busy(st->h, st->uj->user)) {
		user_defer(st, "folder changes being captured");
		return;
	}
	sync_cmd_init(&c, PSEP_REPL_CAPTURE_BOXES, st, NULL);
	(void)sync_send_local(st, sync_req_new(st, RQ_SETTLE, &settle_ops), &c, -1);
}

static void
list_remote_data(struct sync_req *q, const struct repl_response *resp,
		 struct repl_frame *frame)
{
	struct sync_state *st = q->st;

	(void)frame;
	if (!st->uj->failed && list_line(st, resp->body, true) < 0)
		st->uj->failed = true;
}

static bool
list_remote_done(struct sync_req *q, bool ok)
{
	struct sync_state *st = q->st;

	if (!ok) {
		st->uj->failed = true;
		if (st->uj->m.why == NULL)
			st->uj->m.why = "LIST failed on the replica";
	}
	lists_done(st);
	return false;
}

static bool
list_local_done(struct sync_req *q, const struct psep_repl_rep *rep)
{
	struct sync_state *st = q->st;

	if (rep->status == PSEP_RS_NO && strcmp(rep->code, "NOUSER") == 0) {
		st->uj->nouser = true;
	} else if (rep->status != PSEP_RS_OK || q->fd < 0 ||
		   sync_each_line(q->fd, list_line_local, st) < 0) {
		st->uj->failed = true;
		if (st->uj->m.why == NULL)
			st->uj->m.why = "local LIST failed";
	}
	lists_done(st);
	return false;
}

static const struct sync_req_ops list_ops = {
	.remote_data = list_remote_data,
	.remote_done = list_remote_done,
	.local_done = list_local_done,
};

static void
user_begin(struct sync_state *st, const char *user)
{
	struct psep_repl_cmd c;
	struct user_job *uj = xcalloc(1, sizeof(*uj));

	xstrlcpy(uj->user, user, sizeof(uj->user));
	uj->mark_start = st->dirty.mark_seq;
	uj->pending = 2;
	st->uj = uj;
	sync_cmd_init(&c, PSEP_REPL_LIST, st, NULL);
	if (sync_send_remote(st, sync_req_new(st, RQ_LIST, &list_ops), &c, -1, 0) < 0)
		return;
	(void)sync_send_local(st, sync_req_new(st, RQ_LIST, &list_ops), &c, -1);
}

static void retry_cb(evutil_socket_t fd, short what, void *arg);

static void
run_end(struct sync_state *st)
{
	struct hook_replica *r = st->r;
	bool full = st->full;

	log_info("sync: replica=%s %s sync done: users=%zu dirty=%zu mailboxes=%llu "
		 "repairs=%llu", hook_replica_name(st->r),
		 st->full ? "full" : "dirty", st->done_users, st->dirty.n,
		 (unsigned long long)st->run_mailboxes,
		 (unsigned long long)st->run_repairs);
	st->full = false;
	run_clear(st);
	hook_replica_sync_ended(r, true, full, st->run_start_ms, st->run_mailboxes,
				st->run_repairs);
	if (st->deferred && !st->pending_full) {
		/* the deferred users once their changes are out (a capture in
		 * flight journals nothing when it found nothing, so no drain
		 * would start the run): shortly, then after the drain */
		struct timeval tv = { 0, SYNC_RETRY_MS * 1000 };

		st->deferred = false;
		if (st->ev_retry == NULL)
			st->ev_retry = evtimer_new(hook_event_base(st->h), retry_cb, st);
		if (st->ev_retry != NULL)
			evtimer_add(st->ev_retry, &tv);
		else
			st->pending_dirty = true;
	}
	if (st->pending_full) {
		hook_sync_start(st->r, true);
	} else if (st->pending_dirty) {
		st->pending_dirty = false;
		hook_sync_start(st->r, false);
	}
}

static void
retry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sync_state *st = arg;

	(void)fd;
	(void)what;
	if (!st->dead)
		hook_replica_sync_due(st->r);
}

/* A name from the users memfd, or NULL at the end. */
static const char *
users_next(struct sync_state *st)
{
	char *line;
	int rc;

	if (st->users_lr == NULL)
		return st->user_i < st->nusers ? st->users[st->user_i++] : NULL;
	while ((rc = lr_next(st->users_lr, &line)) > 0) {
		if (sync_dirty_name_ok(line))
			return line;
		if (line[0] != '\0')
			log_warn("sync: replica=%s skipping a bad user name",
				 hook_replica_name(st->r));
	}
	if (rc < 0)
		log_err("sync: replica=%s reading the user list: %s",
			hook_replica_name(st->r), strerror(errno));
	return NULL;
}

static void
next_user(struct sync_state *st)
{
	const char *user;

	if (!st->running)
		return;
	user = users_next(st);
	if (user == NULL) {
		run_end(st);
		return;
	}
	user_begin(st, user);
}

static void
users_cb(struct hook *h, int err, int fd, void *arg)
{
	struct sync_req *q = arg;
	struct sync_state *st = q->st;

	(void)h;
	if (!req_live(q)) {
		if (fd >= 0)
			close(fd);
		req_free(q);
		return;
	}
	req_free(q);
	if (err != 0 || fd < 0) {
		if (fd >= 0)
			close(fd);
		log_err("sync: replica=%s cannot get the user list: %s",
			hook_replica_name(st->r), strerror(err != 0 ? err : EINVAL));
		run_clear(st);
		return;
	}
	st->users_lr = xmalloc(sizeof(*st->users_lr));
	lr_init(st->users_lr, fd);
	next_user(st);
}

/* The distinct users of the dirty set. */
static void
users_from_dirty(struct sync_state *st)
{
	for (size_t i = 0; i < st->dirty.n; i++) {
		const char *u = st->dirty.v[i].user;
		bool seen = false;

		for (size_t k = 0; k < st->nusers && !seen; k++)
			seen = strcmp(st->users[k], u) == 0;
		if (seen)
			continue;
		st->users = xrealloc(st->users, (st->nusers + 1) * sizeof(*st->users));
		st->users[st->nusers++] = xstrdup(u);
	}
}

void
hook_sync_start(struct hook_replica *r, bool full)
{
	struct sync_state *st = state_of(r);

	sync_dirty_load(&st->dirty, r);
	if (st->running) {
		if (full && !st->full)
			st->pending_full = true;
		return;
	}
	full = full || st->pending_full || st->dirty.overflow;
	st->pending_full = false;
	if (full)
		st->dirty.overflow = false;
	st->running = true;
	st->full = full;
	st->done_users = 0;
	st->run_start_ms = sync_now_ms();
	st->run_mailboxes = 0;
	st->run_repairs = 0;
	if (full) {
		struct sync_req *q = sync_req_new(st, RQ_USERS, NULL);

		if (hook_users_request(st->h, users_cb, q) < 0) {
			req_free(q);
			run_fail(st, "cannot ask for the user list");
		}
		return;
	}
	users_from_dirty(st);
	if (st->nusers == 0) {
		st->running = false;
		free(st->users);
		st->users = NULL;
		hook_replica_sync_ended(r, true, false, st->run_start_ms, 0, 0);
		return;
	}
	log_info("sync: replica=%s dirty sync: users=%zu mailboxes=%zu",
		 hook_replica_name(r), st->nusers, st->dirty.n);
	next_user(st);
}

/* ---- lifecycle ------------------------------------------------------------ */

void
hook_sync_abort(struct hook_replica *r)
{
	struct sync_state *st = *hook_replica_sync_slot(r);

	if (st == NULL || !st->running)
		return;
	log_info("sync: replica=%s connection lost, sync abandoned (restarts later)",
		 hook_replica_name(r));
	run_clear(st);
	hook_replica_sync_ended(r, false, false, st->run_start_ms, st->run_mailboxes,
				st->run_repairs);
}

void
hook_sync_free(struct hook_replica *r)
{
	void **slot = hook_replica_sync_slot(r);
	struct sync_state *st = *slot;

	if (st == NULL)
		return;
	run_clear(st);
	if (st->ev_retry != NULL)
		event_free(st->ev_retry);
	st->ev_retry = NULL;
	st->dead = true;
	*slot = NULL;
	state_unref(st);
}

bool
hook_sync_running(const struct hook_replica *r)
{
	struct sync_state *st = *hook_replica_sync_slot((struct hook_replica *)r);

	return st != NULL && st->running;
}

size_t
hook_sync_dirty_count(struct hook_replica *r)
{
	struct sync_state *st = state_of(r);

	sync_dirty_load(&st->dirty, r);
	return st->dirty.n;
}
