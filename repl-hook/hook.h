/* SPDX-License-Identifier: MIT */
/*
 * repl-hook/hook.h - the public face of the repl-hook process: what the
 * supervisor hands it at spawn and its entry function.  Everything else
 * about the process is in repl-hook/hook_int.h.
 *
 * Runs in:  the supervisor fills struct hook_args before fork; the child
 *           (repl-hook, run_user, no capabilities, seccomp) runs
 *           repl_hook_main.
 */
#ifndef STOWD_REPL_HOOK_HOOK_H
#define STOWD_REPL_HOOK_HOOK_H

#include "privsep/tls.h"

struct policy_settings;

/* What the supervisor hands to the process (spawn argument). */
struct hook_args {
	const struct policy_settings *set;  /* borrowed, read-only */
	struct psep_tls_fds tls_fds;        /* the TLS files opened by the
					     * supervisor (-1 if no replica):
					     * the process builds its client
					     * context and closes them */
	void *tls_client_ctx;               /* or a context the caller built
					     * (tests); NULL with the
					     * supervisor */
	int state_dirfd;                    /* <state_dir>/replication, opened
					     * by the supervisor (kept across
					     * the fork); the process never
					     * walks state_dir itself */
};

/* Entry of the repl-hook process (psep spawn function): arg is a struct
 * hook_args (borrowed), ipc the supervisor link.  Returns the exit status. */
int repl_hook_main(void *arg, int ipc);

#endif
