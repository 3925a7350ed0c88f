/* SPDX-License-Identifier: MIT */
/*
 * writer/writer_int.h - the writer loop and its credential switch.
 *
 * Runs in:  a writer process.
 */
#ifndef STOWD_WRITER_INT_H
#define STOWD_WRITER_INT_H

#include "privsep/msg.h"

/* How a writer gets the target user's credentials for one request. */
struct writer_creds_ops {
	/* Become the request's user.  -1 with errno: refuse the request.
	 * A failed set*id call is fatal (the process dies). */
	int (*enter)(const struct psep_write_req *req);
	/* Return to the idle credentials; fatal on failure. */
	void (*leave)(void);
};

struct policy_settings;

/*
 * Serve requests on ipc until SHUTDOWN or EOF.  s (borrowed) gives the
 * host name used in file names.  Returns the exit status.
 */
int writer_loop(int ipc, enum psep_role role, const struct policy_settings *s,
		const struct writer_creds_ops *ops);

#endif
