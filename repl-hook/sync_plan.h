/* SPDX-License-Identifier: MIT */
/*
 * repl-hook/sync_plan.h - the repair decisions of a mailbox resync
 * (doc/replication-protocol.md §11, step 4): two compact GUID sets, one
 * per side (present messages with uid, message stamp and flags; tombstones),
 * and an iterator that yields one repair action at a time, so no action
 * list is ever held in memory.
 *
 * Runs in:  repl-hook (pure code, also linked into unit tests).
 * Trust:    the entries come from a replica's GUIDS data (untrusted, already
 *           parsed by repl_parse_guid_data) and from the local writer; every
 *           set is bounded by SYNC_SIDE_MAX entries and SYNC_STR_MAX distinct
 *           origin/flag strings.
 */
#ifndef STOWD_REPL_SYNC_PLAN_H
#define STOWD_REPL_SYNC_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "privsep/msg.h"
#include "storage/repl/repl.h"

#define SYNC_SIDE_MAX 4000000u   /* GUID lines (messages + tombstones) per side */
#define SYNC_STR_MAX 65536u      /* distinct origins + flag strings per side */

/* One side's view of a mailbox. */
struct sync_side;

/* Empty set; caller frees with sync_side_free. */
struct sync_side *sync_side_new(void);
void sync_side_free(struct sync_side **s);

/*
 * Add one GUIDS line (m->expunged: a tombstone, only m->guid is used).  A
 * GUID given twice keeps the tombstone if either line is one (expunge is
 * final), else the last line.  Returns 0, or -1 with errno EINVAL (GUID
 * not 32 lower-case hex digits) or E2BIG (SYNC_SIDE_MAX / SYNC_STR_MAX
 * reached).
 */
int sync_side_add(struct sync_side *s, const struct store_msg_info *m);

/* Number of distinct GUIDs held (present + tombstones). */
size_t sync_side_count(const struct sync_side *s);

enum sync_action_kind {
	SYNC_A_EXPUNGE_REMOTE = 1, /* g in P_R and T_I: EXPUNGE to R */
	SYNC_A_SAVE_REMOTE,        /* g in P_I, not in P_R nor T_R: FETCH here,
				    * SAVE to R */
	SYNC_A_EXPUNGE_LOCAL,      /* g in P_I and T_R: local EXPUNGE */
	SYNC_A_FETCH_REMOTE,       /* g in P_R, not in P_I nor T_I: FETCH from
				    * R, local SAVE */
	SYNC_A_STORE_LOCAL,        /* g in both, flags differ: local STORE */
};

struct sync_action {
	enum sync_action_kind kind;
	char guid[STORE_GUID_HEX + 1];
	uint32_t uid;                 /* SAVE_REMOTE: I's uid; FETCH_REMOTE,
				       * EXPUNGE_REMOTE: R's uid; else I's */
	struct store_stamp stamp;     /* SAVE_REMOTE: I's message stamp;
				       * FETCH_REMOTE: R's; STORE_LOCAL: the
				       * winner's */
	bool remote_wins;             /* STORE_LOCAL: R's flags won */
	char flags[PSEP_FLAGS_MAX];   /* SAVE_REMOTE: I's flags; FETCH_REMOTE:
				       * R's flags; STORE_LOCAL: the delta list
				       * without parentheses */
};

/* Iterator state; start with sync_cursor_init. */
struct sync_cursor {
	int phase;
	size_t pos;
	size_t skipped;               /* flag differences no delta list of at
				       * most 127 octets can express */
};

void sync_cursor_init(struct sync_cursor *c);

/*
 * The next repair action for local (I) against remote (R), in an
 * unspecified but stable order; every GUID gives at most one action.
 * The sets must not change while a cursor runs over them.  Returns true
 * with *out filled, false when done.
 */
bool sync_plan_next(const struct sync_side *local, const struct sync_side *remote,
		    struct sync_cursor *c, struct sync_action *out);

/*
 * The STORE delta list that makes flags `winner` win over `other` (both
 * canonical, space separated): "+f" for each f in winner, "-f" for each f
 * in other but not in winner, space separated, into out[PSEP_FLAGS_MAX].
 * If that does not fit, only the flags that differ are listed.  Returns
 * 0, or -1 with E2BIG if even that does not fit, EINVAL if a flag is too
 * long or both are equal (nothing to do).
 */
int sync_flags_delta(const char *winner, const char *other,
		     char out[PSEP_FLAGS_MAX]);

#endif
