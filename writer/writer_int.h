/* SPDX-License-Identifier: MIT */
/*
 * writer/writer_int.h - the writer loop and its credential switch.
 *
 * Runs in:  a writer process.
 */
#ifndef STOWD_WRITER_INT_H
#define STOWD_WRITER_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "privsep/msg.h"

struct store_quota;

/* How a writer gets the target user's credentials for one request. */
struct writer_creds_ops {
	/* Become the user uid/gid with groups[0..ngroups) (as received in a
	 * request).  -1 with errno: refuse the request.  A failed set*id call
	 * is fatal (the process dies). */
	int (*enter)(uint32_t uid, uint32_t gid, uint32_t ngroups,
		     const uint32_t *groups);
	/* After a request: return to the idle credentials (fatal on
	 * failure), or, in seteuid mode, nothing (the worker stays the last
	 * user; the next enter switches from user to user). */
	void (*leave)(void);
};

struct policy_settings;

/*
 * One PSEP_REPL_OP_REQ (writer/repl.c): enter the user's credentials, run
 * the store_repl_* operation of m's command, leave, answer
 * PSEP_REPL_OP_REP with the facts and, for LIST/SYNC/GUIDS, a sealed memfd
 * of data lines (FETCH: the message file).  m (and m->fd) stay the
 * caller's.  Fatal only if the reply cannot be sent.
 */
void writer_repl_one(int ipc, const struct psep_msg *m, const struct policy_settings *s,
		     const struct writer_creds_ops *ops);

/* ---- quota (writer/quota.c), with the user's credentials ---- */

/*
 * Read maildirsize in root_fd (the Maildir root) under the quota pq, and
 * recalculate it when Dovecot would (missing, invalid, stale, limits
 * changed), retrying a recalculation that raced with a change.  *q gets
 * the state.  Returns 0, or -1 with errno and *what_out.
 */
int writer_quota_read(int root_fd, const struct psep_quota *pq, struct store_quota *q,
		      const char **what_out);

/* Append "<bytes> <count>" to maildirsize in root_fd if it exists (the
 * Maildir++ rule for every writer); a failure is logged for user and
 * left to the next recalculation. */
void writer_quota_account(int root_fd, int64_t bytes, int64_t count, const char *user);

/* One PSEP_QUOTA_REQ: would r->size octets fit?  Answers PSEP_QUOTA_REP;
 * fatal only if the reply cannot be sent. */
void writer_quota_one(int ipc, const struct psep_msg *m,
		      const struct writer_creds_ops *ops);

/* ---- duplicate window (writer/dup.c), with the user's credentials ---- */

/* One save as the window sees it. */
struct writer_dup_req {
	int root_fd;                  /* the Maildir root, or -1 */
	const char *mailbox;          /* "INBOX" or a folder */
	uid_t uid;
	int body_fd;                  /* the message without trace headers */
	uint64_t body_size;
	uint64_t window_secs;         /* 0: off */
	const char *user;             /* for logs */
};

/* The locked window of one save; writer_dup_done releases it. */
struct writer_dup {
	int fd;
	bool have_key;
	char key[65];
};

void writer_dup_init(struct writer_dup *d);
/* Before an LMTP save: 1 with guid_out if the same message (Message-ID and
 * body) was saved into the mailbox within the window, else 0 (also when
 * the window is off, the message has no Message-ID, or the window cannot
 * be used: logged).  The window stays locked until writer_dup_done. */
int writer_dup_check(struct writer_dup *d, const struct writer_dup_req *q,
		     char guid_out[33]);
/* After a save: record the message's key with guid (best effort, logged). */
void writer_dup_record(struct writer_dup *d, const struct writer_dup_req *q,
		       const char *guid);
void writer_dup_done(struct writer_dup *d);

/*
 * One PSEP_WATCH_OP_REQ (writer/repl.c): with the user's credentials, add
 * the watches of the user's Maildir to the inotify instance m->fd
 * (store_repl_watch) and answer PSEP_WATCH_OP_REP with a sealed memfd of
 * "<wd> <mailbox>" lines.  Fatal only if the reply cannot be sent.
 */
void writer_watch_one(int ipc, const struct psep_msg *m, const struct policy_settings *s,
		      const struct writer_creds_ops *ops);

/* The user and Maildir a request touched (borrowed from the request). */
struct writer_sweep_who {
	uint32_t uid;
	const char *mail_base;
	const char *mail_rel;
};

/* After a request was answered, still with the user's credentials (its
 * ops->enter succeeded, ops->leave not yet called): sweep the tmp/
 * directories of that Maildir (storage/sweep.c) if it is due
 * (writer/sweep.c says when). */
void writer_sweep_maybe(const struct writer_sweep_who *w);

/*
 * Serve requests on ipc until SHUTDOWN or EOF.  s (borrowed) gives the
 * host name used in file names.  Returns the exit status.
 */
/*
 * Copy the FETCH file file_fd (not taken) into a new sealed memfd:
 * *memfd_out (caller closes) and *size_out.  Returns 0, or -1 with errno
 * and *why_out: ESTALE (the file changed while it was copied), EFBIG
 * (larger than max; 0 = no limit), or a memfd/read error.
 */
int writer_fetch_seal(int file_fd, uint64_t max, int *memfd_out, uint64_t *size_out,
		      const char **why_out);

int writer_loop(int ipc, enum psep_role role, const struct policy_settings *s,
		const struct writer_creds_ops *ops);

#endif
