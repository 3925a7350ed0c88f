/* SPDX-License-Identifier: MIT */
/*
 * lmtpd/lmtpd.h - the LMTP front-end (RFC 2033, 3030, 2920, 6152, 1870, 6531).
 *
 * Runs in:  lmtpd, as run_user, no capabilities, seccomp profile LMTPD.
 * Trust:    every byte from the client is untrusted.  Parses commands and
 *           bodies, spools each body into a memfd that is sealed before any
 *           other process sees it, and talks to the supervisor only through
 *           privsep/msg.h messages.
 */
#ifndef STOWD_LMTPD_LMTPD_H
#define STOWD_LMTPD_LMTPD_H

struct policy_settings;

/* What a front-end process starts with. */
struct lmtp_args {
	const struct policy_settings *set;   /* borrowed */
	int tls_cert_fd;        /* lmtp_tls_cert and lmtp_tls_key opened by the */
	int tls_key_fd;         /* supervisor, or -1; read and closed at start */
};

/*
 * Entry point of a front-end process (role PSEP_ROLE_LMTPD).  arg is a
 * borrowed const struct lmtp_args *.  ipc is the socketpair end to
 * the supervisor: HELLO first, then PSEP_CLIENT_FD gives client sockets,
 * PSEP_SHUTDOWN asks for a graceful stop (idle sessions get 421, sessions in
 * a transaction finish it first), EOF on ipc = stop at once.  Returns the
 * exit status.
 */
int lmtp_main(void *arg, int ipc);

#endif
