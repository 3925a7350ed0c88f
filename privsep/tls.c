/* SPDX-License-Identifier: MIT */
/*
 * privsep/tls.c - OpenSSL server and client contexts for mutual TLS >= 1.2,
 * built from the PEM files the caller names; the CA file is the only
 * trust anchor.
 *
 * Runs in:  the supervisor, as root, before it forks the processes that
 *           use the contexts (they inherit them; nothing is re-read after
 *           the privilege drop).  psep_tls_set_peer_name in repl-hook.
 * Trust:    the PEM files are admin-controlled.  A peer is accepted only if
 *           its chain ends at the configured CA; the default system trust
 *           store is never loaded.
 * Order:    open-check each file (clear errno message), certificate chain,
 *           private key (matched against the certificate), CA, verify mode.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "privsep/tls.h"

#define TLS_VERIFY_DEPTH 8
#define TLS_HOST_MAX 253

static const unsigned char session_id_ctx[] = "stowd-repl";

/* The OpenSSL error queue as "reason: reason" (first error first), then
 * cleared. */
static void
tls_reasons(char *buf, size_t size)
{
	unsigned long e;
	size_t len = 0;
	const char *r;
	char code[32];

	buf[0] = '\0';
	while ((e = ERR_get_error()) != 0) {
		r = ERR_reason_error_string(e);
		if (r == NULL) {
			snprintf(code, sizeof(code), "error %lx", e);
			r = code;
		}
		if (len < size && strstr(buf, r) == NULL)
			len += (size_t)snprintf(buf + len, size - len, "%s%s",
						len > 0 ? ": " : "", r);
	}
	if (buf[0] == '\0')
		snprintf(buf, size, "unknown OpenSSL error");
}

static void *
tls_fail(SSL_CTX *ctx, char *err, size_t errsize, const char *what,
	 const char *path)
{
	char reasons[256];

	tls_reasons(reasons, sizeof(reasons));
	snprintf(err, errsize, "%s %s: %s", what, path, reasons);
	SSL_CTX_free(ctx);
	return NULL;
}

/* The file must be set and readable now (by the supervisor, as root). */
static bool
tls_file_ok(const char *what, const char *path, char *err, size_t errsize)
{
	int fd;

	if (path == NULL || path[0] == '\0') {
		snprintf(err, errsize, "%s is not set", what);
		return false;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		snprintf(err, errsize, "%s %s: %s", what, path, strerror(errno));
		return false;
	}
	close(fd);
	return true;
}

/* Common part of both sides: protocol floor, own certificate and key, CA. */
static SSL_CTX *
tls_ctx_new(const SSL_METHOD *method, const struct psep_tls_files *f, char *err,
	    size_t errsize)
{
	char what[128];
	SSL_CTX *ctx;

	/* Certificate checks call gmtime_r, whose first use in a process
	 * opens /etc/localtime; the sandboxed children that inherit this
	 * context may not open files, so load the zone data now. */
	tzset();
	ERR_clear_error();
	if (!tls_file_ok(f->cert_name, f->cert, err, errsize) ||
	    !tls_file_ok(f->key_name, f->key, err, errsize) ||
	    !tls_file_ok(f->ca_name, f->ca, err, errsize))
		return NULL;
	ctx = SSL_CTX_new(method);
	if (ctx == NULL)
		return tls_fail(NULL, err, errsize, "TLS context for", f->cert);
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1)
		return tls_fail(ctx, err, errsize, "TLS 1.2 minimum for", f->cert);
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
				 SSL_OP_CIPHER_SERVER_PREFERENCE);
	if (SSL_CTX_use_certificate_chain_file(ctx, f->cert) != 1)
		return tls_fail(ctx, err, errsize, f->cert_name, f->cert);
	if (SSL_CTX_use_PrivateKey_file(ctx, f->key, SSL_FILETYPE_PEM) != 1)
		return tls_fail(ctx, err, errsize, f->key_name, f->key);
	if (SSL_CTX_check_private_key(ctx) != 1) {
		snprintf(what, sizeof(what), "%s does not match %s,", f->key_name,
			 f->cert_name);
		return tls_fail(ctx, err, errsize, what, f->key);
	}
	/* The CA file is the only trust anchor: no default verify paths. */
	if (SSL_CTX_load_verify_locations(ctx, f->ca, NULL) != 1)
		return tls_fail(ctx, err, errsize, f->ca_name, f->ca);
	SSL_CTX_set_verify_depth(ctx, TLS_VERIFY_DEPTH);
	return ctx;
}

void *
psep_tls_server_ctx_new(const struct psep_tls_files *f, char *err, size_t errsize)
{
	STACK_OF(X509_NAME) *names;
	SSL_CTX *ctx = tls_ctx_new(TLS_server_method(), f, err, errsize);
	char what[128];

	if (ctx == NULL)
		return NULL;
	names = SSL_load_client_CA_file(f->ca);
	if (names == NULL) {
		snprintf(what, sizeof(what), "%s (client CA list)", f->ca_name);
		return tls_fail(ctx, err, errsize, what, f->ca);
	}
	SSL_CTX_set_client_CA_list(ctx, names);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
			   NULL);
	/* Server processes are forked per role; no session cache or tickets
	 * to share between them. */
	if (SSL_CTX_set_session_id_context(ctx, session_id_ctx,
					   sizeof(session_id_ctx) - 1) != 1)
		return tls_fail(ctx, err, errsize, "session id context for", f->cert);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
	(void)SSL_CTX_set_num_tickets(ctx, 0);
	return ctx;
}

void *
psep_tls_client_ctx_new(const struct psep_tls_files *f, char *err, size_t errsize)
{
	SSL_CTX *ctx = tls_ctx_new(TLS_client_method(), f, err, errsize);

	if (ctx == NULL)
		return NULL;
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	return ctx;
}

int
psep_tls_set_peer_name(void *ssl_arg, const char *host)
{
	unsigned char addr[sizeof(struct in6_addr)];
	SSL *ssl = ssl_arg;
	size_t len = host != NULL ? strlen(host) : 0;

	if (ssl == NULL || len == 0 || len > TLS_HOST_MAX) {
		errno = EINVAL;
		return -1;
	}
	if (inet_pton(AF_INET, host, addr) == 1 || inet_pton(AF_INET6, host, addr) == 1) {
		/* An IP literal: iPAddress subjectAltName, no SNI (RFC 6066). */
		if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host) != 1) {
			ERR_clear_error();
			errno = EINVAL;
			return -1;
		}
		return 0;
	}
	if (strchr(host, ':') != NULL || strchr(host, '[') != NULL) {
		errno = EINVAL;
		return -1;
	}
	SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	if (SSL_set1_host(ssl, host) != 1 || SSL_set_tlsext_host_name(ssl, host) != 1) {
		ERR_clear_error();
		errno = ENOMEM;
		return -1;
	}
	return 0;
}

void
psep_tls_ctx_free(void *ctx)
{
	SSL_CTX_free(ctx);
}

int
psep_tcp_nodelay(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int one = 1;

	if (getsockname(fd, (struct sockaddr *)&ss, &len) == -1)
		return -1;
	if (ss.ss_family != AF_INET && ss.ss_family != AF_INET6)
		return 0;
	return setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}
