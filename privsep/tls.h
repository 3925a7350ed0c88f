/* SPDX-License-Identifier: MIT */
/*
 * privsep/tls.h - OpenSSL contexts for mutual TLS (one CA as the only
 * trust anchor), built from PEM files the caller names.
 *
 * Runs in:  the supervisor (as root) opens the PEM files (psep_tls_open)
 *           and hands the fds to repl-hook and repld only; each builds its
 *           own context from them after its privilege drop
 *           (psep_tls_*_ctx_from_fds) and closes them, so the key file may
 *           stay readable by root only and the key is never in the
 *           supervisor's memory nor in any other child's.  psep_tls_check
 *           parses the files in a short-lived child of the supervisor.
 *           psep_tls_set_peer_name runs in repl-hook per connection.
 * Trust:    the PEM files are admin-controlled; peers are trusted only after
 *           a handshake that chains to the configured CA.
 */
#ifndef STOWD_PRIVSEP_TLS_H
#define STOWD_PRIVSEP_TLS_H

#include <stdbool.h>
#include <stddef.h>

/* The files of one context (borrowed for the call).  Each *_name is how
 * an error message names that file (the supervisor passes its setting
 * names, e.g. "replication_tls_cert"). */
struct psep_tls_files {
	const char *cert;         /* PEM certificate chain */
	const char *key;          /* PEM private key, must match cert */
	const char *ca;           /* PEM CA: the only trust anchor */
	const char *cert_name;
	const char *key_name;
	const char *ca_name;
};

/* The three files, open read-only (-1: not open).  Owned by whoever
 * called psep_tls_open; closed with psep_tls_close. */
struct psep_tls_fds {
	int cert;
	int key;
	int ca;
};

/* All three fds -1. */
void psep_tls_fds_init(struct psep_tls_fds *fds);

/*
 * Open f's three files read-only (O_CLOEXEC; each must be set and a regular
 * file of at most 1 MiB).  Nothing is read.  0 with *out filled, or -1
 * with a message naming the setting and the file in err (nothing open).
 */
int psep_tls_open(const struct psep_tls_files *f, struct psep_tls_fds *out,
		  char *err, size_t errsize);

/* Close the open fds of *fds and set them to -1. */
void psep_tls_close(struct psep_tls_fds *fds);

/*
 * Initialise OpenSSL once in the supervisor before it forks: its config
 * file, error strings, providers, and the time zone data (tzset), so that
 * a sandboxed child builds a context without opening a file.  Fatal on
 * failure.
 */
void psep_tls_preinit(void);

/*
 * Build both contexts from fds in a forked child and report: 0 if every
 * wanted context (server, client) builds, else -1 with the reason in err.
 * The key is parsed only in that child, which exits at once.
 */
int psep_tls_check(const struct psep_tls_fds *fds, const struct psep_tls_files *f,
		   bool server, bool client, char *err, size_t errsize);

/*
 * Server and client contexts (as below) from the open files in fds,
 * read with pread (the fds stay open, the caller closes them); f names
 * the files in messages.  Every buffer that held file text is wiped.
 * The context or NULL with err filled.
 */
void *psep_tls_server_ctx_from_fds(const struct psep_tls_fds *fds,
				   const struct psep_tls_files *f, char *err,
				   size_t errsize);
void *psep_tls_client_ctx_from_fds(const struct psep_tls_fds *fds,
				   const struct psep_tls_files *f, char *err,
				   size_t errsize);

/*
 * Server context (SSL_CTX *) from the paths in f (opens, builds with
 * psep_tls_server_ctx_from_fds, closes; for stowd -t and tests): TLS >= 1.2, f->cert (chain) and f->key
 * (checked to match), f->ca as the only trust anchor and the client CA
 * list, SSL_VERIFY_PEER |
 * SSL_VERIFY_FAIL_IF_NO_PEER_CERT.  Returns the context (caller frees with
 * psep_tls_ctx_free) or NULL with a message naming the file and the
 * OpenSSL reason in err (NUL-terminated, truncated to errsize).
 */
void *psep_tls_server_ctx_new(const struct psep_tls_files *f, char *err,
			      size_t errsize);

/*
 * Client context (SSL_CTX *): TLS >= 1.2, own certificate and key (checked
 * to match), the server verified against f->ca
 * (SSL_VERIFY_PEER).  The caller names the expected server on each SSL
 * with psep_tls_set_peer_name before the handshake.  Returns the context
 * or NULL with err as above.
 */
void *psep_tls_client_ctx_new(const struct psep_tls_files *f, char *err,
			      size_t errsize);

/*
 * On ssl (SSL *, client side): require the server certificate to name host,
 * a DNS subjectAltName (SSL_set1_host; the name is also sent as SNI) or,
 * for an IPv4/IPv6 literal (no brackets), an iPAddress subjectAltName.
 * Returns 0, or -1 with errno EINVAL (empty/overlong host, bad literal) or
 * ENOMEM.
 */
int psep_tls_set_peer_name(void *ssl, const char *host);

/*
 * On a TCP socket of a replication connection (either end): TCP_NODELAY,
 * so a small command or reply is not held back by Nagle's algorithm while
 * an earlier segment waits for the peer's delayed ACK (on loopback that
 * adds about 40 ms to a request/reply exchange).  A UNIX socket is left
 * alone.  Returns 0, or -1 with errno from setsockopt.
 */
int psep_tcp_nodelay(int fd);

/* Free a context from psep_tls_*_ctx_new; NULL is accepted. */
void psep_tls_ctx_free(void *ctx);

#endif
