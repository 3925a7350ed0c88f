/* SPDX-License-Identifier: MIT */
/*
 * repl-hook/sync_int.h - state shared by repl-hook/sync.c (the resync run)
 * and repl-hook/sync_dirty.c (the durable dirty set, <NAME>.dirty).
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

#endif
