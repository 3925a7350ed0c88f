/* SPDX-License-Identifier: MIT */
/*
 * repl-hook/sync.c - resynchronisation of mailboxes with one replica
 * (doc/replication-protocol.md §11): for each user, LIST on both sides,
 * CREATE what one side lacks, compare digests, and for a mailbox that
 * differs exchange GUIDS and repair (sync_plan.c decides), up to
 * SYNC_ROUNDS rounds.
 *
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
#include <unistd.h>

#include "privsep/privsep.h"
#include "repl-hook/hook_int.h"
#include "repl-hook/proto.h"
#include "repl-hook/sync_int.h"
#include "repl-hook/sync_plan.h"

#define SYNC_ROUNDS 3
#define SYNC_INFLIGHT 8u           /* repair commands in flight per mailbox */
#define SYNC_MAILBOX_MAX 10000u    /* mailboxes per user */
#define LR_BUF 65536u

/* Buffered reader of "\n"-separated lines of a memfd, from offset 0. */
struct line_reader {
	int fd;
	uint64_t off;
	size_t start, end;
	bool eof;
	char buf[LR_BUF + 1];
};

struct mbox_ent {
	char name[PSEP_NAME_MAX];
	bool l, r;                     /* exists here, on the replica */
	bool ok;                       /* in sync at the end */
	struct store_mbox_state ls, rs;
};

enum req_kind {
	RQ_USERS,
	RQ_LIST,
	RQ_CREATE,
	RQ_SYNC,
	RQ_GUIDS,
	RQ_ACTION,
};

/* The mailbox being repaired. */
struct mbox_job {
	int round;
	uint64_t fresh;                /* last fresh modseq used */
	struct sync_side *ls, *rs;
	struct sync_cursor cur;
	bool planning, pumping;
	unsigned inflight;
	unsigned pending;              /* queries outstanding */
	enum req_kind lkind;           /* the local query being read */
	bool failed;
	const char *why;
	unsigned sent, fetched, expunged, flags, errors;
};

struct user_job {
	char user[PSEP_NAME_MAX];
	struct mbox_ent *mb;
	size_t n, cap, i;
	unsigned pending;
	bool failed, nouser;
	uint64_t mark_start;
	struct mbox_job m;
};

struct sync_state {
	struct hook_replica *r;
	struct hook *h;
	unsigned refs;                 /* the slot + each outstanding request */
	bool dead;
	uint64_t gen;                  /* bumped when a run is abandoned */
	struct dirty_set dirty;
	bool running, full, pending_full;
	/* users of the run: full: lines of a memfd; else an array */
	struct line_reader *users_lr;
	char **users;
	size_t nusers, user_i, done_users;
	struct user_job *uj;
};


struct sync_req {
	struct sync_state *st;
	uint64_t gen;
	enum req_kind kind;
	struct sync_action act;
	int fd;                        /* body kept until the reply */
	struct store_msg_info info;    /* FETCH data */
	uint64_t size;
	bool bad_data;
};

static void next_user(struct sync_state *st);
static void mbox_next(struct sync_state *st);
static void mbox_guids(struct sync_state *st);
static void plan_pump(struct sync_state *st);

/* ---- helpers ------------------------------------------------------------ */

static void lr_init(struct line_reader *lr, int fd)
{
	lr->fd = fd;
	lr->off = 0;
	lr->start = lr->end = 0;
	lr->eof = false;
}

/* 1 with *line, 0 at the end, -1 with errno (EMSGSIZE: line too long). */
static int lr_next(struct line_reader *lr, char **line)
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

/* Call fn for each non-empty line of fd; 0, or -1 (read error, or fn
 * returned -1). */
static int each_line(int fd, int (*fn)(struct sync_state *st, const char *line),
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

static bool state_equal(const struct store_mbox_state *a,
			const struct store_mbox_state *b)
{
	return a->messages == b->messages &&
	       memcmp(a->guidhash, b->guidhash, STORE_HASH_LEN) == 0 &&
	       memcmp(a->flaghash, b->flaghash, STORE_HASH_LEN) == 0;
}

static struct sync_state *state_of(struct hook_replica *r)
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

static void state_unref(struct sync_state *st)
{
	if (--st->refs > 0)
		return;
	sync_dirty_clear(&st->dirty);
	free(st);
}

static struct sync_req *req_new(struct sync_state *st, enum req_kind kind)
{
	struct sync_req *q = xcalloc(1, sizeof(*q));

	q->st = st;
	q->gen = st->gen;
	q->kind = kind;
	q->fd = -1;
	st->refs++;
	return q;
}

static void req_free(struct sync_req *q)
{
	if (q->fd >= 0)
		close(q->fd);
	state_unref(q->st);
	free(q);
}

/* The request belongs to the run in progress. */
static bool req_live(const struct sync_req *q)
{
	return !q->st->dead && q->st->running && q->gen == q->st->gen;
}

static void cmd_init(struct psep_repl_cmd *c, enum psep_repl_op op,
		     const struct sync_state *st, const char *mailbox)
{
	memset(c, 0, sizeof(*c));
	c->op = op;
	xstrlcpy(c->user, st->uj->user, sizeof(c->user));
	if (mailbox != NULL)
		xstrlcpy(c->mailbox, mailbox, sizeof(c->mailbox));
}

static void cmd_event(struct psep_repl_cmd *c, const struct sync_state *st,
		      uint64_t modseq)
{
	xstrlcpy(c->origin, hook_server_id(st->h), sizeof(c->origin));
	c->modseq = modseq;
}

static struct mbox_ent *cur_mbox(struct sync_state *st)
{
	return &st->uj->mb[st->uj->i];
}

static void mbox_job_reset(struct mbox_job *m)
{
	sync_side_free(&m->ls);
	sync_side_free(&m->rs);
	memset(m, 0, sizeof(*m));
}

static void user_job_free(struct user_job **uj)
{
	if (*uj == NULL)
		return;
	mbox_job_reset(&(*uj)->m);
	free((*uj)->mb);
	free(*uj);
	*uj = NULL;
}

/* Drop the run's state (requests in flight become stale). */
static void run_clear(struct sync_state *st)
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
static void run_fail(struct sync_state *st, const char *why)
{
	log_warn("sync: replica=%s stopped: %s", hook_replica_name(st->r), why);
	run_clear(st);
}

static int send_remote(struct sync_state *st, struct sync_req *q,
		       const struct psep_repl_cmd *c, int body_fd, uint64_t size,
		       hook_reply_cb cb)
{
	if (hook_replica_send(st->r, c, body_fd, size, cb, q) < 0) {
		req_free(q);
		run_fail(st, "replica not connected");
		return -1;
	}
	return 0;
}

static int send_local(struct sync_state *st, struct sync_req *q,
		      const struct psep_repl_cmd *c, int memfd, hook_local_cb cb)
{
	if (hook_local_send(st->h, c, memfd, cb, q) < 0) {
		req_free(q);
		run_fail(st, "local request failed");
		return -1;
	}
	return 0;
}

/* No reply will come (resp or rep NULL: the link or the supervisor went
 * away): give the run up and free q.  Returns true if so. */
static bool req_lost(struct sync_req *q, bool lost, const char *why)
{
	if (!lost)
		return false;
	if (req_live(q))
		run_fail(q->st, why);
	req_free(q);
	return true;
}

/* ---- dirty set ---------------------------------------------------------- */

void hook_sync_mark_dirty(struct hook_replica *r, const char *user,
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
}

/* At the end of a user: drop the pairs that are done. */
static void user_dirty_done(struct sync_state *st)
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

static void user_end(struct sync_state *st)
{
	struct user_job *uj = st->uj;

	if (uj->nouser)
		log_warn("sync: replica=%s user=%s unknown here: dropped from the dirty set",
			 hook_replica_name(st->r), uj->user);
	else if (uj->failed)
		log_warn("sync: replica=%s user=%s not synced: %s", hook_replica_name(st->r),
			 uj->user, uj->m.why != NULL ? uj->m.why : "LIST failed");
	user_dirty_done(st);
	st->done_users++;
	user_job_free(&st->uj);
	next_user(st);
}

static struct mbox_ent *mbox_get(struct user_job *uj, const char *name)
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

static int list_line(struct sync_state *st, const char *line, bool remote)
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

static int list_line_local(struct sync_state *st, const char *line)
{
	return list_line(st, line, false);
}

static void lists_done(struct sync_state *st)
{
	if (--st->uj->pending > 0)
		return;
	if (st->uj->failed || st->uj->nouser) {
		user_end(st);
		return;
	}
	st->uj->i = 0;
	mbox_next(st);
}

static void list_remote_cb(struct hook_replica *r, const struct repl_response *resp,
			   struct repl_frame *frame, void *arg)
{
	struct sync_req *q = arg;
	struct sync_state *st = q->st;

	(void)r;
	if (resp != NULL && resp->kind == REPL_R_DATA) {
		if (frame != NULL && frame->literal_fd >= 0) {
			close(frame->literal_fd);
			frame->literal_fd = -1;
		}
		if (req_live(q) && !st->uj->failed && list_line(st, resp->body, true) < 0)
			st->uj->failed = true;
		return;
	}
	if (resp != NULL && resp->kind != REPL_R_TAGGED)
		return;
	if (req_lost(q, resp == NULL, "connection lost"))
		return;
	if (req_live(q)) {
		if (resp == NULL || resp->status != PSEP_RS_OK) {
			st->uj->failed = true;
			if (st->uj->m.why == NULL)
				st->uj->m.why = "LIST failed on the replica";
		}
		lists_done(st);
	}
	req_free(q);
}

static void list_local_cb(struct hook *h, const struct psep_repl_rep *rep, int fd,
			  void *arg)
{
	struct sync_req *q = arg;
	struct sync_state *st = q->st;

	(void)h;
	if (req_lost(q, rep == NULL, "supervisor gone")) {
		if (fd >= 0)
			close(fd);
		return;
	}
	q->fd = fd;
	if (req_live(q)) {
		if (rep != NULL && rep->status == PSEP_RS_NO &&
		    strcmp(rep->code, "NOUSER") == 0)
			st->uj->nouser = true;
		else if (rep == NULL || rep->status != PSEP_RS_OK || fd < 0 ||
			 each_line(fd, list_line_local, st) < 0) {
			st->uj->failed = true;
			if (st->uj->m.why == NULL)
				st->uj->m.why = "local LIST failed";
		}
		lists_done(st);
	}
	req_free(q);
}

static void user_begin(struct sync_state *st, const char *user)
{
	struct psep_repl_cmd c;
	struct user_job *uj = xcalloc(1, sizeof(*uj));

	xstrlcpy(uj->user, user, sizeof(uj->user));
	uj->mark_start = st->dirty.mark_seq;
	uj->pending = 2;
	st->uj = uj;
	cmd_init(&c, PSEP_REPL_LIST, st, NULL);
	if (send_remote(st, req_new(st, RQ_LIST), &c, -1, 0, list_remote_cb) < 0)
		return;
	(void)send_local(st, req_new(st, RQ_LIST), &c, -1, list_local_cb);
}

static void run_end(struct sync_state *st)
{
	log_info("sync: replica=%s %s sync done: users=%zu dirty=%zu",
		 hook_replica_name(st->r), st->full ? "full" : "dirty",
		 st->done_users, st->dirty.n);
	st->full = false;
	run_clear(st);
	if (st->pending_full)
		hook_sync_start(st->r, true);
}

/* A name from the users memfd, or NULL at the end. */
static const char *users_next(struct sync_state *st)
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

static void next_user(struct sync_state *st)
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

static void users_cb(struct hook *h, int err, int fd, void *arg)
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
static void users_from_dirty(struct sync_state *st)
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

void hook_sync_start(struct hook_replica *r, bool full)
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
	if (full) {
		struct sync_req *q = req_new(st, RQ_USERS);

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
		return;
	}
	log_info("sync: replica=%s dirty sync: users=%zu mailboxes=%zu",
		 hook_replica_name(r), st->nusers, st->dirty.n);
	next_user(st);
}

/* ---- one mailbox --------------------------------------------------------- */

static void mbox_end(struct sync_state *st, bool ok)
{
	struct user_job *uj = st->uj;
	struct mbox_job *m = &uj->m;
	struct mbox_ent *e = cur_mbox(st);

	e->ok = ok;
	if (!ok)
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
	mbox_job_reset(m);
	uj->i++;
	mbox_next(st);
}

/* The end of a pair of queries (SYNC or GUIDS on both sides). */
static void query_done(struct sync_state *st, enum req_kind kind)
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
		mbox_guids(st);
}

static void query_fail(struct sync_state *st, const char *why)
{
	if (!st->uj->m.failed)
		st->uj->m.why = why;
	st->uj->m.failed = true;
}

/* One data line of SYNC or GUIDS, from either side. */
static void query_line(struct sync_state *st, enum req_kind kind, bool remote,
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

static int query_line_local(struct sync_state *st, const char *line)
{
	query_line(st, st->uj->m.lkind, false, line);
	return st->uj->m.failed ? -1 : 0;
}

static void query_remote_cb(struct hook_replica *r, const struct repl_response *resp,
			    struct repl_frame *frame, void *arg)
{
	struct sync_req *q = arg;
	struct sync_state *st = q->st;

	(void)r;
	if (resp != NULL && resp->kind == REPL_R_DATA) {
		if (frame != NULL && frame->literal_fd >= 0) {
			close(frame->literal_fd);
			frame->literal_fd = -1;
		}
		if (req_live(q))
			query_line(st, q->kind, true, resp->body);
		return;
	}
	if (resp != NULL && resp->kind != REPL_R_TAGGED)
		return;
	if (req_lost(q, resp == NULL, "connection lost"))
		return;
	if (req_live(q)) {
		if (resp == NULL || resp->status != PSEP_RS_OK)
			query_fail(st, q->kind == RQ_SYNC ? "SYNC failed on the replica"
							  : "GUIDS failed on the replica");
		query_done(st, q->kind);
	}
	req_free(q);
}

static void query_local_cb(struct hook *h, const struct psep_repl_rep *rep, int fd,
			   void *arg)
{
	struct sync_req *q = arg;
	struct sync_state *st = q->st;

	(void)h;
	if (req_lost(q, rep == NULL, "supervisor gone")) {
		if (fd >= 0)
			close(fd);
		return;
	}
	q->fd = fd;
	if (req_live(q)) {
		if (rep == NULL || rep->status != PSEP_RS_OK || fd < 0)
			query_fail(st, q->kind == RQ_SYNC ? "local SYNC failed"
							  : "local GUIDS failed");
		else if ((st->uj->m.lkind = q->kind, each_line(fd, query_line_local, st)) < 0)
			query_fail(st, "cannot read local data");
		query_done(st, q->kind);
	}
	req_free(q);
}

/* SYNC or GUIDS on both sides. */
static void query_both(struct sync_state *st, enum req_kind kind)
{
	struct psep_repl_cmd c;
	struct mbox_ent *e = cur_mbox(st);

	st->uj->m.pending = 2;
	cmd_init(&c, kind == RQ_SYNC ? PSEP_REPL_SYNC : PSEP_REPL_GUIDS, st, e->name);
	if (send_remote(st, req_new(st, kind), &c, -1, 0, query_remote_cb) < 0)
		return;
	(void)send_local(st, req_new(st, kind), &c, -1, query_local_cb);
}

static void mbox_guids(struct sync_state *st)
{
	struct mbox_job *m = &st->uj->m;

	m->round++;
	sync_side_free(&m->ls);
	sync_side_free(&m->rs);
	m->ls = sync_side_new();
	m->rs = sync_side_new();
	query_both(st, RQ_GUIDS);
}

static void create_remote_cb(struct hook_replica *r, const struct repl_response *resp,
			     struct repl_frame *frame, void *arg)
{
	struct sync_req *q = arg;

	(void)r;
	if (resp != NULL && resp->kind == REPL_R_DATA && frame != NULL &&
	    frame->literal_fd >= 0) {
		close(frame->literal_fd);
		frame->literal_fd = -1;
	}
	if (resp != NULL && resp->kind != REPL_R_TAGGED)
		return;
	if (req_lost(q, resp == NULL, "connection lost"))
		return;
	if (req_live(q)) {
		if (resp == NULL || resp->status != PSEP_RS_OK)
			query_fail(q->st, "CREATE failed on the replica");
		if (q->st->uj->m.failed)
			mbox_end(q->st, false);
		else
			query_both(q->st, RQ_SYNC);
	}
	req_free(q);
}

static void create_local_cb(struct hook *h, const struct psep_repl_rep *rep, int fd,
			    void *arg)
{
	struct sync_req *q = arg;

	(void)h;
	if (req_lost(q, rep == NULL, "supervisor gone")) {
		if (fd >= 0)
			close(fd);
		return;
	}
	q->fd = fd;
	if (req_live(q)) {
		if (rep == NULL || rep->status != PSEP_RS_OK)
			mbox_end(q->st, false);
		else
			query_both(q->st, RQ_SYNC);
	}
	req_free(q);
}

/* Start the next mailbox that needs work; the user ends after the last. */
static void mbox_next(struct sync_state *st)
{
	struct user_job *uj = st->uj;

	for (; uj->i < uj->n; uj->i++) {
		struct mbox_ent *e = &uj->mb[uj->i];
		struct psep_repl_cmd c;

		if (e->l && e->r && state_equal(&e->ls, &e->rs)) {
			e->ok = true;
			continue;
		}
		mbox_job_reset(&uj->m);
		if (e->l && e->r) {
			mbox_guids(st);
			return;
		}
		cmd_init(&c, PSEP_REPL_CREATE, st, e->name);
		cmd_event(&c, st, 0);
		if (!e->r)
			(void)send_remote(st, req_new(st, RQ_CREATE), &c, -1, 0,
					  create_remote_cb);
		else
			(void)send_local(st, req_new(st, RQ_CREATE), &c, -1,
					 create_local_cb);
		return;
	}
	user_end(st);
}

/* ---- repair actions ------------------------------------------------------- */

static void action_done(struct sync_state *st, struct sync_req *q, bool ok)
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

static void act_remote_cb(struct hook_replica *r, const struct repl_response *resp,
			  struct repl_frame *frame, void *arg);

static void act_local_cb(struct hook *h, const struct psep_repl_rep *rep, int fd,
			 void *arg)
{
	struct sync_req *q = arg;
	struct sync_state *st = q->st;
	struct psep_repl_cmd c;
	bool ok = rep != NULL && rep->status == PSEP_RS_OK;

	(void)h;
	if (req_lost(q, rep == NULL, "supervisor gone")) {
		if (fd >= 0)
			close(fd);
		return;
	}
	if (q->act.kind == SYNC_A_SAVE_REMOTE && q->fd < 0 && fd < 0)
		ok = false;             /* a FETCH reply without its file */
	if (!req_live(q) || q->act.kind != SYNC_A_SAVE_REMOTE || q->fd >= 0 || !ok) {
		if (fd >= 0)
			close(fd);
		if (req_live(q))
			action_done(st, q, ok);
		req_free(q);
		return;
	}
	/* the local FETCH of a SAVE to the replica: send the message */
	q->fd = fd;
	cmd_init(&c, PSEP_REPL_SAVE, st, cur_mbox(st)->name);
	cmd_event(&c, st, ++st->uj->m.fresh);
	xstrlcpy(c.guid, q->act.guid, sizeof(c.guid));
	c.uid_hint = q->act.uid;
	c.date = rep->date;
	c.body_size = rep->size;
	xstrlcpy(c.flags, rep->flags, sizeof(c.flags));
	(void)send_remote(st, q, &c, q->fd, rep->size, act_remote_cb);
}

/* FETCH data from the replica: keep the body for the local SAVE. */
static void act_fetch_data(struct sync_req *q, const struct repl_response *resp,
			   struct repl_frame *frame)
{
	int fd = frame != NULL ? frame->literal_fd : -1;

	if (frame != NULL)
		frame->literal_fd = -1;
	if (!req_live(q) || q->act.kind != SYNC_A_FETCH_REMOTE || q->fd >= 0 ||
	    fd < 0 || repl_parse_fetch_data(resp->body, &q->info, &q->size) < 0 ||
	    strcmp(q->info.guid, q->act.guid) != 0 || q->size != frame->literal_size) {
		q->bad_data = true;
		if (fd >= 0)
			close(fd);
		return;
	}
	q->fd = fd;
}

static void act_remote_cb(struct hook_replica *r, const struct repl_response *resp,
			  struct repl_frame *frame, void *arg)
{
	struct sync_req *q = arg;
	struct sync_state *st = q->st;
	struct psep_repl_cmd c;
	bool ok;

	(void)r;
	if (resp != NULL && resp->kind == REPL_R_DATA) {
		act_fetch_data(q, resp, frame);
		return;
	}
	if (resp != NULL && resp->kind != REPL_R_TAGGED)
		return;
	if (req_lost(q, resp == NULL, "connection lost"))
		return;
	ok = resp != NULL && resp->status == PSEP_RS_OK;
	if (req_live(q) && ok && q->act.kind == SYNC_A_FETCH_REMOTE) {
		if (q->bad_data || q->fd < 0) {
			log_warn("sync: replica=%s user=%s guid=%s bad FETCH data",
				 hook_replica_name(st->r), st->uj->user, q->act.guid);
			action_done(st, q, false);
			req_free(q);
			return;
		}
		cmd_init(&c, PSEP_REPL_SAVE, st, cur_mbox(st)->name);
		cmd_event(&c, st, 0);
		xstrlcpy(c.guid, q->act.guid, sizeof(c.guid));
		c.uid_hint = q->info.uid;
		c.date = (uint64_t)q->info.date;
		c.body_size = q->size;
		xstrlcpy(c.flags, q->info.flags, sizeof(c.flags));
		(void)send_local(st, q, &c, q->fd, act_local_cb);
		return;
	}
	if (req_live(q))
		action_done(st, q, ok);
	req_free(q);
}

static void action_launch(struct sync_state *st, const struct sync_action *a)
{
	struct sync_req *q = req_new(st, RQ_ACTION);
	struct psep_repl_cmd c;
	const char *mbox = cur_mbox(st)->name;

	memset(&c, 0, sizeof(c));
	q->act = *a;
	st->uj->m.inflight++;
	switch (a->kind) {
	case SYNC_A_EXPUNGE_REMOTE:
		cmd_init(&c, PSEP_REPL_EXPUNGE, st, mbox);
		cmd_event(&c, st, ++st->uj->m.fresh);
		xstrlcpy(c.guid, a->guid, sizeof(c.guid));
		(void)send_remote(st, q, &c, -1, 0, act_remote_cb);
		return;
	case SYNC_A_FETCH_REMOTE:
		cmd_init(&c, PSEP_REPL_FETCH, st, mbox);
		xstrlcpy(c.guid, a->guid, sizeof(c.guid));
		(void)send_remote(st, q, &c, -1, 0, act_remote_cb);
		return;
	case SYNC_A_SAVE_REMOTE:
		cmd_init(&c, PSEP_REPL_FETCH, st, mbox);
		break;
	case SYNC_A_EXPUNGE_LOCAL:
		cmd_init(&c, PSEP_REPL_EXPUNGE, st, mbox);
		cmd_event(&c, st, 0);
		break;
	case SYNC_A_STORE_LOCAL:
		cmd_init(&c, PSEP_REPL_STORE, st, mbox);
		cmd_event(&c, st, 0);
		xstrlcpy(c.flags, a->flags, sizeof(c.flags));
		break;
	}
	xstrlcpy(c.guid, a->guid, sizeof(c.guid));
	(void)send_local(st, q, &c, -1, act_local_cb);
}

/* Keep up to SYNC_INFLIGHT repairs going; SYNC both sides after the last. */
static void plan_pump(struct sync_state *st)
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

/* ---- lifecycle ------------------------------------------------------------ */

void hook_sync_abort(struct hook_replica *r)
{
	struct sync_state *st = *hook_replica_sync_slot(r);

	if (st == NULL || !st->running)
		return;
	log_info("sync: replica=%s connection lost, sync abandoned (restarts later)",
		 hook_replica_name(r));
	run_clear(st);
}

void hook_sync_free(struct hook_replica *r)
{
	void **slot = hook_replica_sync_slot(r);
	struct sync_state *st = *slot;

	if (st == NULL)
		return;
	run_clear(st);
	st->dead = true;
	*slot = NULL;
	state_unref(st);
}

bool hook_sync_running(const struct hook_replica *r)
{
	struct sync_state *st = *hook_replica_sync_slot((struct hook_replica *)r);

	return st != NULL && st->running;
}
