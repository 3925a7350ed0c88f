/* SPDX-License-Identifier: MIT */
/*
 * privsep/tls.h - OpenSSL contexts for replication (mutual TLS, one CA as
 * the only trust anchor).
 *
 * Runs in:  the supervisor (as root) builds the contexts before it forks
 *           repl-hook and the replication front-end; those inherit them
 *           (fork without exec), so the key file may stay readable by root
 *           only.  psep_tls_set_peer_name runs in repl-hook per connection.
 * Trust:    the PEM files are admin-controlled; peers are trusted only after
 *           a handshake that chains to replication_tls_ca.
 *
 * The settings are only read (replication_tls_cert, _key, _ca); this
 * header needs no policy/ library, only the struct definition.
 */
#ifndef STOWD_PRIVSEP_TLS_H
#define STOWD_PRIVSEP_TLS_H

#include <stddef.h>

struct policy_settings;

/*
 * Server context (SSL_CTX *): TLS >= 1.2, s->replication_tls_cert (chain)
 * and s->replication_tls_key (checked to match), s->replication_tls_ca as
 * the only trust anchor and the client CA list, SSL_VERIFY_PEER |
 * SSL_VERIFY_FAIL_IF_NO_PEER_CERT.  Returns the context (caller frees with
 * psep_tls_ctx_free) or NULL with a message naming the file and the
 * OpenSSL reason in err (NUL-terminated, truncated to errsize).
 */
void *psep_tls_server_ctx_new(const struct policy_settings *s, char *err,
			      size_t errsize);

/*
 * Client context (SSL_CTX *): TLS >= 1.2, own certificate and key (checked
 * to match), the server verified against s->replication_tls_ca
 * (SSL_VERIFY_PEER).  The caller names the expected server on each SSL
 * with psep_tls_set_peer_name before the handshake.  Returns the context
 * or NULL with err as above.
 */
void *psep_tls_client_ctx_new(const struct policy_settings *s, char *err,
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
