/* SPDX-License-Identifier: MIT */
/*
 * privsep/tls.c - OpenSSL server and client contexts for mutual TLS >= 1.2,
 * built from PEM files the supervisor opened; the CA file is the only
 * trust anchor.
 *
 * Runs in:  the supervisor opens the files as root (psep_tls_open) and
 *           never reads them; the process that does the TLS (repld,
 *           repl-hook) builds its context from the inherited fds after its
 *           drop, under its seccomp profile (read/pread64/fstat only), and
 *           closes them; psep_tls_check builds both contexts in a
 *           short-lived child of the supervisor, so a bad file is refused
 *           at start and reload without the key entering the supervisor.
 * Trust:    the PEM files are admin-controlled.  A peer is accepted only if
 *           its chain ends at the configured CA; the default system trust
 *           store is never loaded.  Every buffer that held PEM text is
 *           wiped (OPENSSL_cleanse) before it is freed; the parsed key lives
 *           in the SSL_CTX, which OpenSSL wipes when it is freed.
 * Order:    certificate chain, private key (matched against the
 *           certificate), CA, verify mode.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "privsep/privsep.h"
#include "privsep/tls.h"

#define TLS_VERIFY_DEPTH 8
#define TLS_HOST_MAX 253
#define TLS_FILE_MAX (1 << 20)     /* longest PEM file read */

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

/* ---- the files, opened by the supervisor ------------------------------ */

void
psep_tls_fds_init(struct psep_tls_fds *fds)
{
	fds->cert = fds->key = fds->ca = -1;
}

void
psep_tls_close(struct psep_tls_fds *fds)
{
	if (fds->cert >= 0)
		close(fds->cert);
	if (fds->key >= 0)
		close(fds->key);
	if (fds->ca >= 0)
		close(fds->ca);
	psep_tls_fds_init(fds);
}

/* Open one PEM file: set, a regular file, readable now (as root). */
static int
tls_file_open(const char *what, const char *path, char *err, size_t errsize)
{
	struct stat st;
	int fd;

	if (path == NULL || path[0] == '\0') {
		snprintf(err, errsize, "%s is not set", what);
		return -1;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		snprintf(err, errsize, "%s %s: %s", what, path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > TLS_FILE_MAX) {
		snprintf(err, errsize, "%s %s: not a regular file of at most %d bytes",
			 what, path, TLS_FILE_MAX);
		close(fd);
		return -1;
	}
	return fd;
}

int
psep_tls_open(const struct psep_tls_files *f, struct psep_tls_fds *out, char *err,
	      size_t errsize)
{
	psep_tls_fds_init(out);
	if ((out->cert = tls_file_open(f->cert_name, f->cert, err, errsize)) < 0 ||
	    (out->key = tls_file_open(f->key_name, f->key, err, errsize)) < 0 ||
	    (out->ca = tls_file_open(f->ca_name, f->ca, err, errsize)) < 0) {
		psep_tls_close(out);
		return -1;
	}
	return 0;
}

void
psep_tls_preinit(void)
{
	SSL_CTX *ctx;

	/* Certificate checks call gmtime_r, whose first use in a process
	 * opens /etc/localtime; the library reads its configuration file
	 * once.  Both happen here, in the supervisor, so that a sandboxed
	 * child that builds its context opens no file.  A context without
	 * keys loads the providers and the methods. */
	tzset();
	if (OPENSSL_init_ssl(OPENSSL_INIT_LOAD_CONFIG | OPENSSL_INIT_LOAD_SSL_STRINGS |
			     OPENSSL_INIT_LOAD_CRYPTO_STRINGS, NULL) != 1)
		fatalx("OpenSSL initialisation failed");
	ctx = SSL_CTX_new(TLS_method());
	if (ctx == NULL)
		fatalx("OpenSSL initialisation failed");
	SSL_CTX_free(ctx);
	ERR_clear_error();
}

/* ---- building a context from the fds (in the process that uses it) ---- */

/* The whole file behind fd (read with pread: the fd is shared with the
 * supervisor).  A memory BIO over a private copy, or NULL; the caller
 * frees with tls_bio_free, which wipes the copy. */
struct tls_pem {
	unsigned char *buf;
	size_t len;
	BIO *bio;
};

static int
tls_pem_read(int fd, struct tls_pem *p)
{
	struct stat st;
	size_t got = 0;
	ssize_t n;

	memset(p, 0, sizeof(*p));
	if (fd < 0 || fstat(fd, &st) < 0 || st.st_size <= 0 ||
	    st.st_size > TLS_FILE_MAX) {
		errno = EINVAL;
		return -1;
	}
	p->len = (size_t)st.st_size;
	p->buf = OPENSSL_malloc(p->len);
	if (p->buf == NULL)
		return -1;
	while (got < p->len) {
		n = pread(fd, p->buf + got, p->len - got, (off_t)got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	p->len = got;
	p->bio = BIO_new_mem_buf(p->buf, (int)p->len);
	if (got == 0 || p->bio == NULL) {
		OPENSSL_clear_free(p->buf, p->len);
		memset(p, 0, sizeof(*p));
		errno = EIO;
		return -1;
	}
	return 0;
}

static void
tls_pem_free(struct tls_pem *p)
{
	BIO_free(p->bio);
	if (p->buf != NULL)
		OPENSSL_clear_free(p->buf, p->len);
	memset(p, 0, sizeof(*p));
}

/* Certificate and the rest of its chain. */
static int
tls_use_chain(SSL_CTX *ctx, int fd)
{
	struct tls_pem p;
	X509 *x;
	int ret = -1;

	if (tls_pem_read(fd, &p) < 0)
		return -1;
	x = PEM_read_bio_X509_AUX(p.bio, NULL, NULL, NULL);
	if (x == NULL || SSL_CTX_use_certificate(ctx, x) != 1)
		goto out;
	X509_free(x);
	while ((x = PEM_read_bio_X509(p.bio, NULL, NULL, NULL)) != NULL) {
		if (SSL_CTX_add0_chain_cert(ctx, x) != 1)
			goto out;
	}
	ERR_clear_error();   /* the end of the file */
	x = NULL;
	ret = 0;
out:
	X509_free(x);
	tls_pem_free(&p);
	return ret;
}

static int
tls_use_key(SSL_CTX *ctx, int fd)
{
	struct tls_pem p;
	EVP_PKEY *key;
	int ret = -1;

	if (tls_pem_read(fd, &p) < 0)
		return -1;
	key = PEM_read_bio_PrivateKey(p.bio, NULL, NULL, NULL);
	if (key != NULL && SSL_CTX_use_PrivateKey(ctx, key) == 1)
		ret = 0;
	EVP_PKEY_free(key);
	tls_pem_free(&p);
	return ret;
}

/* Every certificate of the CA file into the trust store (and, for a
 * server, into the list of CAs it names to clients). */
static int
tls_use_ca(SSL_CTX *ctx, int fd, bool server)
{
	STACK_OF(X509_INFO) *infos;
	X509_STORE *store = SSL_CTX_get_cert_store(ctx);
	struct tls_pem p;
	int i, n = 0, ret = -1;

	if (tls_pem_read(fd, &p) < 0)
		return -1;
	infos = PEM_X509_INFO_read_bio(p.bio, NULL, NULL, NULL);
	if (infos == NULL)
		goto out;
	for (i = 0; i < sk_X509_INFO_num(infos); i++) {
		X509 *x = sk_X509_INFO_value(infos, i)->x509;

		if (x == NULL)
			continue;
		if (X509_STORE_add_cert(store, x) != 1 ||
		    (server && SSL_CTX_add_client_CA(ctx, x) != 1))
			goto out;
		n++;
	}
	ret = n > 0 ? 0 : -1;
out:
	sk_X509_INFO_pop_free(infos, X509_INFO_free);
	tls_pem_free(&p);
	return ret;
}

/* Common part of both sides: protocol floor, own certificate and key, CA. */
static SSL_CTX *
tls_ctx_new(const SSL_METHOD *method, const struct psep_tls_fds *fds, bool server,
	    const struct psep_tls_files *f, char *err, size_t errsize)
{
	char what[128];
	SSL_CTX *ctx;

	ERR_clear_error();
	ctx = SSL_CTX_new(method);
	if (ctx == NULL)
		return tls_fail(NULL, err, errsize, "TLS context for", f->cert);
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1)
		return tls_fail(ctx, err, errsize, "TLS 1.2 minimum for", f->cert);
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
				 SSL_OP_CIPHER_SERVER_PREFERENCE);
	if (tls_use_chain(ctx, fds->cert) < 0)
		return tls_fail(ctx, err, errsize, f->cert_name, f->cert);
	if (tls_use_key(ctx, fds->key) < 0)
		return tls_fail(ctx, err, errsize, f->key_name, f->key);
	if (SSL_CTX_check_private_key(ctx) != 1) {
		snprintf(what, sizeof(what), "%s does not match %s,", f->key_name,
			 f->cert_name);
		return tls_fail(ctx, err, errsize, what, f->key);
	}
	/* The CA file is the only trust anchor: no default verify paths. */
	if (tls_use_ca(ctx, fds->ca, server) < 0)
		return tls_fail(ctx, err, errsize, f->ca_name, f->ca);
	SSL_CTX_set_verify_depth(ctx, TLS_VERIFY_DEPTH);
	return ctx;
}

void *
psep_tls_server_ctx_from_fds(const struct psep_tls_fds *fds,
			     const struct psep_tls_files *f, char *err,
			     size_t errsize)
{
	SSL_CTX *ctx = tls_ctx_new(TLS_server_method(), fds, true, f, err, errsize);

	if (ctx == NULL)
		return NULL;
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
psep_tls_client_ctx_from_fds(const struct psep_tls_fds *fds,
			     const struct psep_tls_files *f, char *err,
			     size_t errsize)
{
	SSL_CTX *ctx = tls_ctx_new(TLS_client_method(), fds, false, f, err, errsize);

	if (ctx == NULL)
		return NULL;
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	return ctx;
}

/* Open f, build one context with from_fds, close the files. */
static void *
tls_ctx_from_paths(void *(*from_fds)(const struct psep_tls_fds *,
				     const struct psep_tls_files *, char *, size_t),
		   const struct psep_tls_files *f, char *err, size_t errsize)
{
	struct psep_tls_fds fds;
	void *ctx;

	tzset();
	if (psep_tls_open(f, &fds, err, errsize) < 0)
		return NULL;
	ctx = from_fds(&fds, f, err, errsize);
	psep_tls_close(&fds);
	return ctx;
}

void *
psep_tls_server_ctx_new(const struct psep_tls_files *f, char *err, size_t errsize)
{
	return tls_ctx_from_paths(psep_tls_server_ctx_from_fds, f, err, errsize);
}

void *
psep_tls_client_ctx_new(const struct psep_tls_files *f, char *err, size_t errsize)
{
	return tls_ctx_from_paths(psep_tls_client_ctx_from_fds, f, err, errsize);
}

/* ---- the check, in a child of the supervisor ---------------------------- */

/* Child side: build the wanted contexts, write the error (if any) to fd. */
static void __attribute__((noreturn))
tls_check_child(const struct psep_tls_fds *fds, const struct psep_tls_files *f,
		bool server, bool client, int fd)
{
	char err[256] = "";
	void *ctx = NULL;
	int rc = 0;

	/* Root holds the key here for a moment: no core file, no ptrace by
	 * anyone but root. */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		_exit(2);
	if (server) {
		ctx = psep_tls_server_ctx_from_fds(fds, f, err, sizeof(err));
		rc |= ctx == NULL;
		psep_tls_ctx_free(ctx);
	}
	if (rc == 0 && client) {
		ctx = psep_tls_client_ctx_from_fds(fds, f, err, sizeof(err));
		rc |= ctx == NULL;
		psep_tls_ctx_free(ctx);
	}
	if (rc != 0 && write(fd, err, strlen(err)) < 0)
		rc = 2;
	_exit(rc);
}

int
psep_tls_check(const struct psep_tls_fds *fds, const struct psep_tls_files *f,
	       bool server, bool client, char *err, size_t errsize)
{
	int pfd[2], st = 0;
	ssize_t n;
	pid_t pid;

	if (!server && !client)
		return 0;
	if (pipe2(pfd, O_CLOEXEC) < 0) {
		snprintf(err, errsize, "TLS check: pipe: %s", strerror(errno));
		return -1;
	}
	pid = fork();
	if (pid < 0) {
		snprintf(err, errsize, "TLS check: fork: %s", strerror(errno));
		close(pfd[0]);
		close(pfd[1]);
		return -1;
	}
	if (pid == 0) {
		close(pfd[0]);
		tls_check_child(fds, f, server, client, pfd[1]);
	}
	close(pfd[1]);
	do
		n = read(pfd[0], err, errsize > 0 ? errsize - 1 : 0);
	while (n < 0 && errno == EINTR);
	close(pfd[0]);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return 0;
	if (errsize > 0) {
		err[n > 0 ? (size_t)n : 0] = '\0';
		if (n <= 0)
			snprintf(err, errsize, "TLS check: the checking process failed");
	}
	return -1;
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
