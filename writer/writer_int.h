/* SPDX-License-Identifier: MIT */
/*
 * writer/writer_int.h - the writer loop and its credential switch.
 *
 * Runs in:  a writer process.
 */
#ifndef STOWD_WRITER_INT_H
#define STOWD_WRITER_INT_H

#include <stdint.h>

#include "privsep/msg.h"

/* How a writer gets the target user's credentials for one request. */
struct writer_creds_ops {
	/* Become the user uid/gid with groups[0..ngroups) (as received in a
	 * request).  -1 with errno: refuse the request.  A failed set*id call
	 * is fatal (the process dies). */
	int (*enter)(uint32_t uid, uint32_t gid, uint32_t ngroups,
		     const uint32_t *groups);
	/* Return to the idle credentials; fatal on failure. */
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

/*
 * One PSEP_WATCH_OP_REQ (writer/repl.c): with the user's credentials, add
 * the watches of the user's Maildir to the inotify instance m->fd
 * (store_repl_watch) and answer PSEP_WATCH_OP_REP with a sealed memfd of
 * "<wd> <mailbox>" lines.  Fatal only if the reply cannot be sent.
 */
void writer_watch_one(int ipc, const struct psep_msg *m, const struct policy_settings *s,
		      const struct writer_creds_ops *ops);

/*
 * Serve requests on ipc until SHUTDOWN or EOF.  s (borrowed) gives the
 * host name used in file names.  Returns the exit status.
 */
int writer_loop(int ipc, enum psep_role role, const struct policy_settings *s,
		const struct writer_creds_ops *ops);

#endif
