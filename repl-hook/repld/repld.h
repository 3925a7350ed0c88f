/* SPDX-License-Identifier: MIT */
/*
 * repl-hook/repld/repld.h - the replica-side replication front-end "repld"
 * (doc/replication-protocol.md §2, §3, §5, §6).
 *
 * Runs in:  repld (role PSEP_ROLE_REPLD), as run_user, no capabilities,
 *           seccomp profile PSEP_PROFILE_REPLD.
 * Trust:    every byte from a replication peer is untrusted.  Peers are
 *           authenticated below the protocol: SO_PEERCRED on UNIX sockets,
 *           mutual TLS on TCP.  Commands are framed and parsed here, then
 *           executed by the supervisor and its writers (PSEP_REPL_REQ).
 */
#ifndef STOWD_LMTPD_REPLD_H
#define STOWD_LMTPD_REPLD_H

#include "privsep/tls.h"

struct policy_settings;

struct repld_args {
	const struct policy_settings *set;
	/* The TLS files (replication_tls_cert, _key, _ca) opened by the
	 * supervisor, all -1 if there is no tcp: listener: repld builds its
	 * server context from them after its drop and closes them. */
	struct psep_tls_fds tls_fds;
	void *tls_server_ctx;   /* or a context the caller built (tests);
				 * NULL with the supervisor */
};

/*
 * Entry point of the replication front-end (role PSEP_ROLE_REPLD).  arg is
 * a borrowed struct repld_args *.  ipc is the socketpair end to the
 * supervisor: HELLO first, then PSEP_CLIENT_FD gives accepted replication
 * sockets, PSEP_REPL_REP answers PSEP_REPL_REQ, PSEP_SHUTDOWN asks for a
 * graceful stop (in-flight commands finish, then * BYE [SHUTDOWN]); EOF on
 * ipc = stop at once.  Returns the exit status.
 */
int repld_main(void *arg, int ipc);

#endif
