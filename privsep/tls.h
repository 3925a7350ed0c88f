/* SPDX-License-Identifier: MIT */
/*
 * privsep/tls.h - OpenSSL contexts for mutual TLS (one CA as the only
 * trust anchor), built from PEM files the caller names.
 *
 * Runs in:  the supervisor (as root) builds the contexts before it forks
 *           repl-hook and the replication front-end; those inherit them
 *           (fork without exec), so the key file may stay readable by root
 *           only.  psep_tls_set_peer_name runs in repl-hook per connection.
 * Trust:    the PEM files are admin-controlled; peers are trusted only after
 *           a handshake that chains to the configured CA.
 */
#ifndef STOWD_PRIVSEP_TLS_H
#define STOWD_PRIVSEP_TLS_H

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

/*
 * Server context (SSL_CTX *): TLS >= 1.2, f->cert (chain) and f->key
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
