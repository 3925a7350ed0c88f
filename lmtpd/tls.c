/* SPDX-License-Identifier: MIT */
/*
 * lmtpd/tls.c - the STARTTLS context of the front-end (RFC 3207 on LMTP):
 * built once at start from the certificate and key files that the
 * supervisor opened as root and left open in this process only; the key
 * is parsed here and nowhere else.
 *
 * Runs in:  lmtpd, as run_user, under its seccomp profile (the files are
 *           read with pread: no open).
 * Trust:    the PEM files are the admin's; every buffer that held their
 *           text is wiped.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#include "lmtpd/server_int.h"
#include "privsep/privsep.h"

#define PEM_MAX (1024 * 1024)

/* The whole file of fd in a malloc'd buffer (*len_out octets); NULL. */
static char *
read_fd(int fd, size_t *len_out)
{
	struct stat st;
	size_t len, off = 0;
	char *buf;

	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size <= 0 ||
	    st.st_size > PEM_MAX)
		return NULL;
	len = (size_t)st.st_size;
	buf = OPENSSL_malloc(len);
	if (buf == NULL)
		return NULL;
	while (off < len) {
		ssize_t n = pread(fd, buf + off, len - off, (off_t)off);

		if (n <= 0) {
			OPENSSL_clear_free(buf, len);
			return NULL;
		}
		off += (size_t)n;
	}
	*len_out = len;
	return buf;
}

static int
use_chain(SSL_CTX *ctx, const char *pem, size_t len)
{
	BIO *bio = BIO_new_mem_buf(pem, (int)len);
	X509 *x;
	int ret = -1;

	if (bio == NULL)
		return -1;
	x = PEM_read_bio_X509_AUX(bio, NULL, NULL, NULL);
	if (x == NULL || SSL_CTX_use_certificate(ctx, x) != 1)
		goto out;
	X509_free(x);
	while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL)
		if (SSL_CTX_add0_chain_cert(ctx, x) != 1)
			goto out;
	ERR_clear_error();   /* the end of the chain */
	ret = 0;
out:
	if (ret < 0)
		X509_free(x);
	BIO_free(bio);
	return ret;
}

static int
use_key(SSL_CTX *ctx, const char *pem, size_t len)
{
	BIO *bio = BIO_new_mem_buf(pem, (int)len);
	EVP_PKEY *k;
	int ret = -1;

	if (bio == NULL)
		return -1;
	k = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
	if (k != NULL && SSL_CTX_use_PrivateKey(ctx, k) == 1 &&
	    SSL_CTX_check_private_key(ctx) == 1)
		ret = 0;
	EVP_PKEY_free(k);
	BIO_free(bio);
	return ret;
}

void *
lmtp_tls_ctx_from_fds(int cert_fd, int key_fd, char *err, size_t errsize)
{
	char *cert = NULL, *key = NULL;
	size_t cert_len = 0, key_len = 0;
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	if (ctx == NULL) {
		snprintf(err, errsize, "cannot create a TLS context");
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
			    SSL_OP_CIPHER_SERVER_PREFERENCE);
	cert = read_fd(cert_fd, &cert_len);
	key = read_fd(key_fd, &key_len);
	if (cert == NULL || key == NULL) {
		snprintf(err, errsize, "cannot read lmtp_tls_cert or lmtp_tls_key");
		goto fail;
	}
	if (use_chain(ctx, cert, cert_len) < 0) {
		snprintf(err, errsize, "lmtp_tls_cert: no usable PEM certificate");
		goto fail;
	}
	if (use_key(ctx, key, key_len) < 0) {
		snprintf(err, errsize, "lmtp_tls_key: no usable PEM key, or it does "
			 "not match lmtp_tls_cert");
		goto fail;
	}
	OPENSSL_clear_free(cert, cert_len);
	OPENSSL_clear_free(key, key_len);
	return ctx;
fail:
	if (cert != NULL)
		OPENSSL_clear_free(cert, cert_len);
	if (key != NULL)
		OPENSSL_clear_free(key, key_len);
	ERR_clear_error();
	SSL_CTX_free(ctx);
	return NULL;
}

void *
lmtp_tls_new_ssl(void *ctx)
{
	return SSL_new(ctx);
}

void
lmtp_tls_ctx_free(void *ctx)
{
	SSL_CTX_free(ctx);
}
