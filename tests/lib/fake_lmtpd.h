/* SPDX-License-Identifier: MIT */
/*
 * tests/lib/fake_lmtpd.h - a tiny scripted LMTP server for the self-tests
 * of tests/lib (lmtpc, transcripts).  Not stowd, not a model of it.
 *
 * Runs in:  a process forked by the self-test; one child per connection.
 * Commands: LHLO (4-line reply), MAIL, RCPT (550 5.1.1 for addresses that
 *           start with "unknown"), DATA and BDAT (one reply per recipient:
 *           "250 2.0.0 <rcpt> len=N hash=H" over the unstuffed body, H =
 *           32-bit FNV-1a in hex), RSET, NOOP, QUIT; test commands: STALL
 *           (no reply), GARBAGE (a non-reply line), MIXED (multi-line reply
 *           with two codes), LONGLINE (a 5000-byte reply), CLOSE (close, no
 *           reply), ECHO text ("250 " + text with control bytes as \xNN).
 */
#ifndef STOWD_TESTS_FAKE_LMTPD_H
#define STOWD_TESTS_FAKE_LMTPD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct fake_lmtpd {
	pid_t pid;                 /* server process (own process group) */
	char unix_addr[128];       /* "unix:/tmp/.../s" */
	char tcp4_addr[64];        /* "tcp:127.0.0.1:P" */
	char tcp6_addr[64];        /* "tcp:[::1]:P", "" without IPv6 */
	char dir[64];              /* temp dir of the unix socket */
};

/* Start the server; 0 or -1. */
int fake_lmtpd_start(struct fake_lmtpd *f);
/* Kill it and remove its socket. */
void fake_lmtpd_stop(struct fake_lmtpd *f);

/* The hash the server reports. */
uint32_t fake_lmtpd_hash(const void *data, size_t len);

#endif
