/* SPDX-License-Identifier: MIT */
/*
 * repl-hook/sync_int.h - state shared by the resync of one replica:
 * repl-hook/sync.c (the run: users, LIST, requests and their replies),
 * repl-hook/sync_mailbox.c (compare and repair one mailbox) and
 * repl-hook/sync_dirty.c (the durable dirty set, <NAME>.dirty).
 *
 * Runs in:  repl-hook (libevent).
 * Trust:    <NAME>.dirty lives in the state directory owned by run_user;
 *           its lines are still checked (lengths, separators) when loaded.
 */
#ifndef STOWD_REPL_SYNC_INT_H
#define STOWD_REPL_SYNC_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "repl-hook/hook_int.h"
#include "repl-hook/sync_plan.h"

#define SYNC_DIRTY_MAX 16384u      /* (user, mailbox) pairs per replica */

struct dirty_ent {
	char *user;
	char *mailbox;
	uint64_t mark;                 /* sync_state.mark_seq when last marked */
};

struct dirty_set {
	bool loaded;
	bool overflow;                 /* pairs were dropped: run a full sync */
	struct dirty_ent *v;
	size_t n, cap;
	uint64_t mark_seq;
};

/* True if user and mailbox can be kept in the dirty file (non-empty,
 * shorter than PSEP_NAME_MAX, no TAB, CR or LF). */
bool sync_dirty_name_ok(const char *s);

/* Load <NAME>.dirty once (no-op when loaded).  A missing file is an empty
 * set; bad lines are logged and skipped. */
void sync_dirty_load(struct dirty_set *d, struct hook_replica *r);

/* Add or re-mark (user, mailbox): append "user\tmailbox\n" and fdatasync
 * when new.  Returns 0, or -1 if the set is full (d->overflow set). */
int sync_dirty_add(struct dirty_set *d, struct hook_replica *r, const char *user,
		   const char *mailbox);

/* Index of (user, mailbox) in d->v, or -1. */
long sync_dirty_find(const struct dirty_set *d, const char *user,
		     const char *mailbox);

/* Remove entry i (order not kept); the caller rewrites the file. */
void sync_dirty_remove(struct dirty_set *d, size_t i);

/* Rewrite <NAME>.dirty from d (tmp file, fdatasync, rename, directory
 * fsync).  Returns 0 or -1 (logged). */
int sync_dirty_rewrite(const struct dirty_set *d, struct hook_replica *r);

/* Free every entry. */
void sync_dirty_clear(struct dirty_set *d);

/* ---- the run (sync.c, sync_mailbox.c) ----------------------------------- */

#define SYNC_ROUNDS 3
#define SYNC_INFLIGHT 8u           /* repair commands in flight per mailbox */
#define SYNC_MAILBOX_MAX 10000u    /* mailboxes per user */
#define SYNC_RETRY_MS 200          /* a deferred user's next try, at the
				    * earliest */

struct line_reader;

struct mbox_ent {
	char name[PSEP_NAME_MAX];
	bool l, r;                     /* exists here, on the replica */
	bool ok;                       /* in sync at the end */
	struct store_mbox_state ls, rs;
};

enum req_kind {
	RQ_USERS,
	RQ_LIST,
	RQ_SETTLE,
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
	bool deferred;                 /* folders not settled: later */
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
	bool pending_dirty;            /* marked while running: run again */
	/* users of the run: full: lines of a memfd; else an array */
	struct line_reader *users_lr;
	char **users;
	size_t nusers, user_i, done_users;
	struct user_job *uj;
	/* the run's account (stats, stowctl resync) */
	uint64_t run_start_ms, run_mailboxes, run_repairs;
	bool deferred;                 /* a user of the run was deferred */
	struct event *ev_retry;        /* then: a dirty sync a little later */
};

struct sync_req;
struct event;

/* What a request does with its replies; sync.c's reply callbacks handle
 * what every request shares (lost link or supervisor, abandoned runs,
 * literals nobody took, the reply fd) and call these only for a request
 * of the run in progress. */
struct sync_req_ops {
	/* A DATA line of the replica's reply (NULL: ignored).  It may take
	 * frame->literal_fd (and set it to -1); else the literal is closed. */
	void (*remote_data)(struct sync_req *q, const struct repl_response *resp,
			    struct repl_frame *frame);
	/* The replica's tagged reply (ok: status OK).  Returns true if q was
	 * sent again (it is no longer the caller's), false to free it. */
	bool (*remote_done)(struct sync_req *q, bool ok);
	/* The local reply; its fd, if any, is in q->fd (or was closed when q
	 * already held one).  Returns as remote_done. */
	bool (*local_done)(struct sync_req *q, const struct psep_repl_rep *rep);
};

struct sync_req {
	struct sync_state *st;
	uint64_t gen;
	enum req_kind kind;
	const struct sync_req_ops *ops;
	struct sync_action act;
	int fd;                        /* body kept until the reply */
	struct store_msg_info info;    /* FETCH data */
	uint64_t size;
	bool bad_data;
};

/* A request of st's current run; freed by the reply callbacks (or by a
 * failed send). */
struct sync_req *sync_req_new(struct sync_state *st, enum req_kind kind,
			      const struct sync_req_ops *ops);

/* A command of the current user on mailbox (may be NULL); cmd_event sets
 * this server as origin with modseq (0: a local change). */
void sync_cmd_init(struct psep_repl_cmd *c, enum psep_repl_op op,
		   const struct sync_state *st, const char *mailbox);
void sync_cmd_event(struct psep_repl_cmd *c, const struct sync_state *st,
		    uint64_t modseq);

/* Send q's command to the replica (body_fd: SAVE literal or -1) or to the
 * local writer (memfd: SAVE body or -1).  On failure q is freed and the
 * run given up; returns 0 or -1. */
int sync_send_remote(struct sync_state *st, struct sync_req *q,
		     const struct psep_repl_cmd *c, int body_fd, uint64_t size);
int sync_send_local(struct sync_state *st, struct sync_req *q,
		    const struct psep_repl_cmd *c, int memfd);

/* Call fn for each non-empty line of the memfd fd (from offset 0); 0, or
 * -1 (read error, a line over REPL_MAXLINE, or fn returned -1). */
int sync_each_line(int fd, int (*fn)(struct sync_state *st, const char *line),
		   struct sync_state *st);

/* The current user is done (its mailboxes ok or not): log, update the
 * dirty set, go on with the next user. */
void sync_user_end(struct sync_state *st);

/* sync_mailbox.c: start the next mailbox of the current user that needs
 * work (from uj->i on); the user ends after the last. */
void sync_mbox_next(struct sync_state *st);
/* Free the GUID sets of m and zero it. */
void sync_mbox_job_reset(struct mbox_job *m);

#endif
