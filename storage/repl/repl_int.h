/* SPDX-License-Identifier: MIT */
/*
 * storage/repl/repl_int.h - what storage/repl/ops.c, storage/repl/query.c and
 * storage/repl/box.c share: one mailbox opened and locked for a
 * replication operation, the checks and steps every operation starts
 * with, a directory listing.
 *
 * Runs in:  a writer, with the user's credentials.
 * Trust:    see storage/repl/repl.h.
 */
#ifndef STOWD_STORAGE_REPL_INT_H
#define STOWD_STORAGE_REPL_INT_H

#include <limits.h>
#include <stdbool.h>
#include <sys/stat.h>

#include "storage/repl/repl.h"
#include "storage/storage_int.h"

/* One mailbox, its directories, its locked index and replayed state. */
struct store_rop {
	const struct store_repl_ctx *c;   /* borrowed */
	struct store_target t;
	struct store_dirs d;
	int idx_fd;                 /* holds the index lock */
	off_t end;                  /* end of the index */
	dev_t idx_dev;              /* the index file, from store_rop_load */
	ino_t idx_ino;
	struct store_mbox m;
	struct store_rec *pending;  /* records of the next transaction */
	size_t npending, cap;
	const char *what;           /* the step that failed */
};

/* True if s is 1..64 octets %x21-7E (0 octets too with empty_ok; NULL
 * counts as empty). */
bool store_origin_valid(const char *s, bool empty_ok);

/* True if c has a base directory, a valid server id and a short host. */
bool store_repl_ctx_ok(const struct store_repl_ctx *c);

/* Check a protocol mailbox name (§4) and give its Maildir++ directory
 * ("" for INBOX).  0 or -1 with EINVAL. */
int store_repl_mailbox_check(const char *mailbox, char dir[NAME_MAX + 1]);

/*
 * Open mailbox (created when create), lock and replay its index into *o.
 * Returns 0; 1 if it does not exist (only without create); -1 with errno
 * and o->what.  Always close with store_rop_close.
 */
int store_rop_open(struct store_rop *o, const struct store_repl_ctx *c,
		   const char *mailbox, bool create);
void store_rop_close(struct store_rop *o);

/*
 * repl/cache.c: o->m for o's locked index (logged: the state of its last
 * transaction, from store_idx_begin): a kept state of the same file caught
 * up with the transactions appended since, or the whole file replayed.
 * 0 or -1 with errno.
 */
int store_rop_load(struct store_rop *o, const struct store_index_state *logged);
/* After an operation that succeeded: keep o->m (taken from o) for the next
 * operation on the same index, if every applied record is committed. */
void store_rop_keep(struct store_rop *o);

/* The directory fd (new/ or cur/ of o) holding the regular file name, its
 * stat in *st_out; -1 with ENOENT if neither has it. */
int store_rop_locate(const struct store_rop *o, const char *name,
		     struct stat *st_out);

/* Apply rec to o's in-memory state and queue it for the transaction. */
int store_rop_apply(struct store_rop *o, const struct store_rec *rec);
/* Write the queued records as one transaction and fdatasync it. */
int store_rop_flush(struct store_rop *o);
/* A zeroed record of op for guid with stamp s (may be NULL: 0, ""). */
void store_rop_rec(struct store_rec *r, enum store_rec_op op, const char *guid,
		   const struct store_stamp *s);
/* Set *what_out (may be NULL) from ret and o->what, then close o. */
void store_rop_done(struct store_rop *o, int ret, const char **what_out);

/* Reconcile the open mailbox o with its files (see store_repl_reconcile). */
int store_rop_reconcile(struct store_rop *o, bool *changed_out);

/*
 * The first steps of an operation on one existing mailbox: open it as
 * store_rop_open does without create.  Returns true with o open and
 * *ret_out -1 (the caller sets 0 when its step succeeds); false with
 * *ret_out 0 if it does not exist (res->status NONEXISTENT; res may be
 * NULL) or -1 if it
 * cannot be opened.  Either way close with store_rop_done(o, *ret_out).
 */
bool store_rop_open_existing(struct store_rop *o, const struct store_repl_ctx *c,
			     const char *mailbox, struct store_repl_result *res,
			     int *ret_out);

/* A bad argument: *what_out (may be NULL) "check request", errno
 * EINVAL; returns -1. */
int store_rop_bad_request(const char **what_out);

/* The names of dirfd's entries (not . and ..), read through a fresh fd,
 * each given to cb with its d_type; a non-zero return of cb stops and is
 * returned.  0, or -1 with errno (open, read). */
int store_dir_each(int dirfd,
		   int (*cb)(const char *name, unsigned char type, void *arg),
		   void *arg);

#endif
