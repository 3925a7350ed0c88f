/* SPDX-License-Identifier: MIT */
/*
 * tests/lib/replc.c - blocking replication-protocol client for the
 * integration tests (see replc.h).
 *
 * Runs in:  test programs only.
 * Trust:    the server is under test: every read waits at most the
 *           client's timeout (poll, plus SO_RCVTIMEO under TLS where a
 *           record may arrive in pieces).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <grp.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "tests/lib/replc.h"

#define REPLC_BUF (64 * 1024)

struct replc {
	int fd;
	SSL_CTX *ctx;
	SSL *ssl;
	int timeout_ms;
	size_t off, len;
	char buf[REPLC_BUF];
};

static struct replc *
replc_alloc(int fd)
{
	struct replc *c = calloc(1, sizeof(*c));

	if (c == NULL) {
		close(fd);
		return NULL;
	}
	c->fd = fd;
	c->timeout_ms = REPLC_TIMEOUT_MS;
	signal(SIGPIPE, SIG_IGN);
	return c;
}

static void
set_sock_timeouts(int fd, int ms)
{
	struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };

	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

void
replc_set_timeout(struct replc *c, int timeout_ms)
{
	c->timeout_ms = timeout_ms > 0 ? timeout_ms : REPLC_TIMEOUT_MS;
	set_sock_timeouts(c->fd, c->timeout_ms);
}

static int
unix_socket(const char *path)
{
	struct sockaddr_un un = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof(un.sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(un.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&un, sizeof(un)) < 0) {
		int e = errno;

		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

int
replc_connect_unix(const char *path, struct replc **out)
{
	int fd = unix_socket(path);

	*out = NULL;
	if (fd < 0)
		return -1;
	*out = replc_alloc(fd);
	if (*out == NULL)
		return -1;
	replc_set_timeout(*out, REPLC_TIMEOUT_MS);
	return 0;
}

/* Child of replc_connect_unix_as: drop to uid, connect, pass the fd. */
static void
connect_as_child(int sp, const char *path, uid_t uid, gid_t gid)
{
	char cbuf[CMSG_SPACE(sizeof(int))] = { 0 };
	char byte = 'x';
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
			     .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
	int fd;

	if (setgroups(0, NULL) < 0 || setresgid(gid, gid, gid) < 0 ||
	    setresuid(uid, uid, uid) < 0)
		_exit(2);
	fd = unix_socket(path);
	if (fd < 0)
		_exit(3);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	_exit(sendmsg(sp, &mh, 0) == 1 ? 0 : 4);
}

int
replc_connect_unix_as(const char *path, uid_t uid, gid_t gid, struct replc **out)
{
	char cbuf[CMSG_SPACE(sizeof(int))] = { 0 };
	char byte;
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
			     .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
	struct pollfd pf;
	struct cmsghdr *cm;
	int sp[2], fd = -1, st = 0;
	pid_t pid;

	*out = NULL;
	if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sp) < 0)
		return -1;
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		close(sp[0]);
		close(sp[1]);
		return -1;
	}
	if (pid == 0)
		connect_as_child(sp[1], path, uid, gid);
	close(sp[1]);
	pf = (struct pollfd){ .fd = sp[0], .events = POLLIN };
	if (poll(&pf, 1, REPLC_TIMEOUT_MS) == 1 &&
	    recvmsg(sp[0], &mh, MSG_CMSG_CLOEXEC) == 1) {
		cm = CMSG_FIRSTHDR(&mh);
		if (cm != NULL && cm->cmsg_type == SCM_RIGHTS)
			memcpy(&fd, CMSG_DATA(cm), sizeof(int));
	}
	close(sp[0]);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (fd < 0) {
		fprintf(stderr, "replc: connect %s as uid %u failed (child status 0x%x)\n",
			path, (unsigned)uid, (unsigned)st);
		errno = ECONNREFUSED;
		return -1;
	}
	*out = replc_alloc(fd);
	if (*out == NULL)
		return -1;
	replc_set_timeout(*out, REPLC_TIMEOUT_MS);
	return 0;
}

static int
tcp_socket(unsigned port)
{
	struct sockaddr_in in = { .sin_family = AF_INET };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	in.sin_port = htons((uint16_t)port);
	in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&in, sizeof(in)) < 0) {
		int e = errno;

		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

static int
tls_setup(struct replc *c, const char *cert, const char *key, const char *ca)
{
	c->ctx = SSL_CTX_new(TLS_client_method());
	if (c->ctx == NULL ||
	    !SSL_CTX_set_min_proto_version(c->ctx, TLS1_2_VERSION) ||
	    SSL_CTX_load_verify_locations(c->ctx, ca, NULL) != 1)
		return -1;
	SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, NULL);
	if (cert != NULL &&
	    (SSL_CTX_use_certificate_chain_file(c->ctx, cert) != 1 ||
	     SSL_CTX_use_PrivateKey_file(c->ctx, key, SSL_FILETYPE_PEM) != 1))
		return -1;
	c->ssl = SSL_new(c->ctx);
	if (c->ssl == NULL ||
	    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), "127.0.0.1") != 1 ||
	    SSL_set_fd(c->ssl, c->fd) != 1)
		return -1;
	if (SSL_connect(c->ssl) != 1)
		return -1;
	return 0;
}

int
replc_connect_tls(unsigned port, const char *cert, const char *key,
		  const char *ca, struct replc **out)
{
	int fd = tcp_socket(port);
	struct replc *c;

	*out = NULL;
	if (fd < 0)
		return -1;
	c = replc_alloc(fd);
	if (c == NULL)
		return -1;
	replc_set_timeout(c, REPLC_TIMEOUT_MS);
	ERR_clear_error();
	if (tls_setup(c, cert, key, ca) < 0) {
		fprintf(stderr, "replc: TLS to 127.0.0.1:%u failed:\n", port);
		ERR_print_errors_fp(stderr);
		replc_free(&c);
		errno = EPROTO;
		return -1;
	}
	*out = c;
	return 0;
}

void
replc_free(struct replc **cp)
{
	struct replc *c;

	if (cp == NULL || *cp == NULL)
		return;
	c = *cp;
	if (c->ssl != NULL) {
		set_sock_timeouts(c->fd, 200);
		(void)SSL_shutdown(c->ssl);
		SSL_free(c->ssl);
	}
	SSL_CTX_free(c->ctx);
	if (c->fd >= 0)
		close(c->fd);
	ERR_clear_error();
	free(c);
	*cp = NULL;
}

/* ---- I/O --------------------------------------------------------------- */

/* Read some octets into dst.  >0, or -1 with errno (ECONNRESET at EOF). */
static ssize_t
raw_read(struct replc *c, char *dst, size_t size)
{
	struct pollfd pf = { .fd = c->fd, .events = POLLIN };
	ssize_t n;

	if (c->ssl == NULL || SSL_pending(c->ssl) == 0) {
		int r = poll(&pf, 1, c->timeout_ms);

		if (r == 0) {
			errno = ETIMEDOUT;
			return -1;
		}
		if (r < 0)
			return -1;
	}
	if (c->ssl != NULL) {
		int r = SSL_read(c->ssl, dst, (int)(size > 65536 ? 65536 : size));

		if (r > 0)
			return r;
		if (SSL_get_error(c->ssl, r) == SSL_ERROR_SYSCALL &&
		    (errno == EAGAIN || errno == EWOULDBLOCK)) {
			errno = ETIMEDOUT;
			return -1;
		}
		ERR_clear_error();
		errno = ECONNRESET;
		return -1;
	}
	n = read(c->fd, dst, size);
	if (n == 0 || (n < 0 && (errno == ECONNRESET || errno == EPIPE)))
		errno = ECONNRESET;
	return n > 0 ? n : -1;
}

/* Read more into the buffer. */
static int
fill(struct replc *c)
{
	ssize_t n;

	if (c->off > 0) {
		memmove(c->buf, c->buf + c->off, c->len - c->off);
		c->len -= c->off;
		c->off = 0;
	}
	if (c->len == sizeof(c->buf)) {
		errno = EMSGSIZE;
		return -1;
	}
	n = raw_read(c, c->buf + c->len, sizeof(c->buf) - c->len);
	if (n < 0)
		return -1;
	c->len += (size_t)n;
	return 0;
}

int
replc_send(struct replc *c, const void *data, size_t len)
{
	const char *p = data;

	while (len > 0) {
		ssize_t n;

		if (c->ssl != NULL) {
			int r = SSL_write(c->ssl, p, (int)(len > 65536 ? 65536 : len));

			if (r <= 0) {
				ERR_clear_error();
				errno = ECONNRESET;
				return -1;
			}
			n = r;
		} else {
			n = send(c->fd, p, len, MSG_NOSIGNAL);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0)
				return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int
replc_sendf(struct replc *c, const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;
	int n, rc;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -1;
	rc = replc_send(c, s, (size_t)n);
	free(s);
	return rc;
}

int
replc_line(struct replc *c, char *line, size_t size)
{
	for (;;) {
		char *lf = memchr(c->buf + c->off, '\n', c->len - c->off);

		if (lf != NULL) {
			size_t n = (size_t)(lf - (c->buf + c->off));

			if (n > 0 && c->buf[c->off + n - 1] == '\r')
				n--;
			if (n >= size)
				n = size - 1;
			memcpy(line, c->buf + c->off, n);
			line[n] = '\0';
			c->off = (size_t)(lf - c->buf) + 1;
			return 0;
		}
		if (c->len - c->off > REPLC_LINE_MAX + 2) {
			errno = EMSGSIZE;
			return -1;
		}
		if (fill(c) < 0)
			return -1;
	}
}

int
replc_literal(struct replc *c, size_t n, char **data_out)
{
	char *d = malloc(n + 1);
	size_t have = 0;

	*data_out = NULL;
	if (d == NULL)
		return -1;
	while (have < n + 2) {
		size_t avail = c->len - c->off, want = n + 2 - have, take;

		if (avail == 0) {
			if (fill(c) < 0) {
				free(d);
				return -1;
			}
			continue;
		}
		take = avail < want ? avail : want;
		for (size_t i = 0; i < take; i++, have++) {
			char ch = c->buf[c->off + i];

			if (have < n)
				d[have] = ch;
			else if (ch != (have == n ? '\r' : '\n')) {
				free(d);
				errno = EPROTO;
				return -1;
			}
		}
		c->off += take;
	}
	d[n] = '\0';
	*data_out = d;
	return 0;
}

int
replc_wait_closed(struct replc *c, int timeout_ms)
{
	int saved = c->timeout_ms;
	int rc = -1;

	replc_set_timeout(c, timeout_ms);
	for (;;) {
		c->off = c->len = 0;
		if (fill(c) == 0)
			continue;
		if (errno != ETIMEDOUT)
			rc = 0;
		break;
	}
	replc_set_timeout(c, saved);
	if (rc < 0)
		errno = ETIMEDOUT;
	return rc;
}

/* ---- protocol ------------------------------------------------------------ */

int
replc_greeting(struct replc *c, char *line, size_t size,
	       unsigned long long *maxliteral_out)
{
	char l[REPLC_LINE_MAX];
	const char *m;

	if (replc_line(c, l, sizeof(l)) < 0)
		return -1;
	if (line != NULL)
		snprintf(line, size, "%s", l);
	if (strncmp(l, "* OK STOWD-REPL ", 16) != 0) {
		errno = EPROTO;
		return -1;
	}
	m = strstr(l, " MAXLITERAL=");
	if (maxliteral_out != NULL)
		*maxliteral_out = m != NULL ? strtoull(m + 12, NULL, 10) : 0;
	return 0;
}

int
replc_start(struct replc *c, const char *id)
{
	struct replc_resp r;
	char g[REPLC_LINE_MAX];
	int rc;

	if (replc_greeting(c, g, sizeof(g), NULL) < 0) {
		fprintf(stderr, "replc: no greeting: %s (got \"%s\")\n",
			strerror(errno), g);
		return -1;
	}
	rc = replc_cmd(c, &r, "h0", NULL, 0, "HELLO 1 %s", id);
	if (rc == 0 && !replc_tagged_is(&r, "OK", NULL)) {
		fprintf(stderr, "replc: HELLO 1 %s: \"%s\"\n", id, r.tagged);
		errno = EPROTO;
		rc = -1;
	}
	replc_resp_clear(&r);
	return rc;
}

/* "{N}" at the end of line: N, or -1. */
static long long
literal_size(const char *line)
{
	size_t l = strlen(line);
	const char *open;

	if (l < 3 || line[l - 1] != '}')
		return -1;
	open = strrchr(line, '{');
	if (open == NULL || open[1] == '}')
		return -1;
	for (const char *p = open + 1; *p != '}'; p++)
		if (*p < '0' || *p > '9')
			return -1;
	return atoll(open + 1);
}

int
replc_collect(struct replc *c, struct replc_resp *r, const char *tag)
{
	char line[REPLC_LINE_MAX];
	size_t tl = strlen(tag);

	r->tagged[0] = '\0';
	r->ndata = 0;
	r->literal = NULL;
	r->literal_len = 0;
	for (;;) {
		long long n;

		if (replc_line(c, line, sizeof(line)) < 0)
			return -1;
		if (strncmp(line, tag, tl) == 0 && line[tl] == ' ') {
			snprintf(r->tagged, sizeof(r->tagged), "%s", line);
			return 0;
		}
		if (r->ndata < REPLC_MAX_DATA) {
			size_t l = strnlen(line, sizeof(r->data[0]) - 1);

			memcpy(r->data[r->ndata], line, l);
			r->data[r->ndata++][l] = '\0';
		}
		n = line[0] == '*' ? literal_size(line) : -1;
		if (n >= 0) {
			free(r->literal);
			r->literal = NULL;
			if (replc_literal(c, (size_t)n, &r->literal) < 0)
				return -1;
			r->literal_len = (size_t)n;
		}
	}
}

int
replc_cmd(struct replc *c, struct replc_resp *r, const char *tag,
	  const void *literal, size_t len, const char *fmt, ...)
{
	va_list ap;
	char *cmd = NULL, *all;
	int n;

	r->tagged[0] = '\0';
	r->ndata = 0;
	r->literal = NULL;
	va_start(ap, fmt);
	n = vasprintf(&cmd, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -1;
	all = malloc(strlen(tag) + (size_t)n + len + 8);
	if (all == NULL) {
		free(cmd);
		return -1;
	}
	n = sprintf(all, "%s %s\r\n", tag, cmd);
	if (literal != NULL) {
		memcpy(all + n, literal, len);
		memcpy(all + n + len, "\r\n", 2);
		n += (int)len + 2;
	}
	free(cmd);
	if (replc_send(c, all, (size_t)n) < 0) {
		free(all);
		return -1;
	}
	free(all);
	return replc_collect(c, r, tag);
}

void
replc_resp_clear(struct replc_resp *r)
{
	free(r->literal);
	r->literal = NULL;
	r->literal_len = 0;
}

bool
replc_tagged_is(const struct replc_resp *r, const char *status, const char *code)
{
	const char *p = strchr(r->tagged, ' ');
	size_t sl = strlen(status);

	if (p == NULL || strncmp(p + 1, status, sl) != 0)
		return false;
	p += 1 + sl;
	if (*p != ' ' && *p != '\0')
		return false;
	if (code == NULL)
		return true;
	return *p == ' ' && strncmp(p + 1, code, strlen(code)) == 0;
}
