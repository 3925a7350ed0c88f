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
int writer_loop(int ipc, enum psep_role role, const struct policy_settings *s,
		const struct writer_creds_ops *ops);

#endif
