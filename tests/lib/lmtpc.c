/* SPDX-License-Identifier: MIT */
/*
 * tests/lib/lmtpc.c - a small LMTP client for the integration tests.
 *
 * Runs in:  test programs only.
 * Trust:    the server may hang or misbehave: the socket is non-blocking
 *           and every wait is a poll() bounded by the connection timeout.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "tests/lib/lmtpc.h"

#define LMTPC_RBUF 65536

struct lmtpc {
	int fd;
	int timeout_ms;
	size_t roff;                 /* first unread byte in rbuf */
	size_t rlen;                 /* bytes in rbuf */
	bool eof;
	char rbuf[LMTPC_RBUF];
};

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Milliseconds left until deadline, 0 if past. */
static int
left_ms(int64_t deadline)
{
	int64_t d = deadline - now_ms();

	return d > 0 ? (int)d : 0;
}

/* Wait for events on fd until deadline.  0 when ready, -1 ETIMEDOUT. */
static int
wait_fd(int fd, short events, int64_t deadline)
{
	struct pollfd p = { .fd = fd, .events = events };
	int n;

	for (;;) {
		n = poll(&p, 1, left_ms(deadline));
		if (n > 0)
			return 0;
		if (n == 0) {
			errno = ETIMEDOUT;
			return -1;
		}
		if (errno != EINTR)
			return -1;
	}
}

/* Parse "tcp:" host and port: "1.2.3.4:25" or "[::1]:25". */
static int
parse_tcp(const char *s, struct sockaddr_storage *ss, socklen_t *sl)
{
	struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
	char host[128];
	const char *colon, *h = s;
	size_t hl;
	char *end;
	unsigned long port;

	if (*s == '[') {
		const char *rb = strchr(s, ']');

		if (rb == NULL || rb[1] != ':')
			goto bad;
		h = s + 1;
		hl = (size_t)(rb - h);
		colon = rb + 1;
	} else {
		colon = strrchr(s, ':');
		if (colon == NULL)
			goto bad;
		hl = (size_t)(colon - s);
	}
	if (hl == 0 || hl >= sizeof(host))
		goto bad;
	memcpy(host, h, hl);
	host[hl] = '\0';
	errno = 0;
	port = strtoul(colon + 1, &end, 10);
	if (errno != 0 || *end != '\0' || port == 0 || port > 65535)
		goto bad;
	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
		in4->sin_family = AF_INET;
		in4->sin_port = htons((uint16_t)port);
		*sl = sizeof(*in4);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)port);
		*sl = sizeof(*in6);
		return 0;
	}
bad:
	errno = EINVAL;
	return -1;
}

static int
parse_addr(const char *addr, struct sockaddr_storage *ss, socklen_t *sl)
{
	if (strncmp(addr, "unix:", 5) == 0) {
		struct sockaddr_un *un = (struct sockaddr_un *)ss;
		size_t n = strlen(addr + 5);

		if (n == 0 || n >= sizeof(un->sun_path)) {
			errno = EINVAL;
			return -1;
		}
		memset(ss, 0, sizeof(*ss));
		un->sun_family = AF_UNIX;
		memcpy(un->sun_path, addr + 5, n + 1);
		*sl = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
		return 0;
	}
	if (strncmp(addr, "tcp:", 4) == 0)
		return parse_tcp(addr + 4, ss, sl);
	errno = EINVAL;
	return -1;
}

int
lmtpc_connect(const char *addr, int timeout_ms, struct lmtpc **out)
{
	struct sockaddr_storage ss;
	socklen_t sl, el = sizeof(int);
	struct lmtpc *c = NULL;
	int fd = -1, err = 0, saved;
	int64_t deadline;

	if (timeout_ms <= 0)
		timeout_ms = LMTPC_DEFAULT_TIMEOUT_MS;
	deadline = now_ms() + timeout_ms;
	if (parse_addr(addr, &ss, &sl) < 0)
		return -1;
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto fail;
	if (connect(fd, (struct sockaddr *)&ss, sl) < 0) {
		if (errno != EINPROGRESS && errno != EAGAIN)
			goto fail;
		if (wait_fd(fd, POLLOUT, deadline) < 0)
			goto fail;
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0)
			goto fail;
		if (err != 0) {
			errno = err;
			goto fail;
		}
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		goto fail;
	c->fd = fd;
	c->timeout_ms = timeout_ms;
	*out = c;
	return 0;
fail:
	saved = errno;
	if (fd >= 0)
		close(fd);
	errno = saved;
	return -1;
}

void
lmtpc_free(struct lmtpc **c)
{
	if (c == NULL || *c == NULL)
		return;
	if ((*c)->fd >= 0)
		close((*c)->fd);
	free(*c);
	*c = NULL;
}

void
lmtpc_set_timeout(struct lmtpc *c, int timeout_ms)
{
	c->timeout_ms = timeout_ms > 0 ? timeout_ms : LMTPC_DEFAULT_TIMEOUT_MS;
}

int
lmtpc_timeout(const struct lmtpc *c)
{
	return c->timeout_ms;
}

int
lmtpc_fd(const struct lmtpc *c)
{
	return c->fd;
}

int
lmtpc_send(struct lmtpc *c, const void *buf, size_t len)
{
	const char *p = buf;
	int64_t deadline = now_ms() + c->timeout_ms;
	ssize_t n;

	while (len > 0) {
		n = send(c->fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0) {
			p += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno != EAGAIN)
			return -1;
		if (wait_fd(c->fd, POLLOUT, deadline) < 0)
			return -1;
	}
	return 0;
}

int
lmtpc_sendf(struct lmtpc *c, const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;
	int n, rc;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0) {
		errno = ENOMEM;
		return -1;
	}
	rc = lmtpc_send(c, s, (size_t)n);
	free(s);
	return rc;
}

/* Read more bytes into rbuf.  0 on data, -1 on EOF (ECONNRESET) or error. */
static int
fill(struct lmtpc *c, int64_t deadline)
{
	ssize_t n;

	if (c->roff > 0) {
		memmove(c->rbuf, c->rbuf + c->roff, c->rlen - c->roff);
		c->rlen -= c->roff;
		c->roff = 0;
	}
	if (c->eof) {
		errno = ECONNRESET;
		return -1;
	}
	for (;;) {
		n = recv(c->fd, c->rbuf + c->rlen, sizeof(c->rbuf) - c->rlen,
			 MSG_DONTWAIT);
		if (n > 0) {
			c->rlen += (size_t)n;
			return 0;
		}
		if (n == 0 || (n < 0 && errno == ECONNRESET)) {
			c->eof = true;
			errno = ECONNRESET;
			return -1;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN)
			return -1;
		if (wait_fd(c->fd, POLLIN, deadline) < 0)
			return -1;
	}
}

int
lmtpc_read_line(struct lmtpc *c, char *line, size_t size, size_t *len_out)
{
	int64_t deadline = now_ms() + c->timeout_ms;
	size_t total = 0, copied = 0;

	for (;;) {
		char *start = c->rbuf + c->roff;
		size_t avail = c->rlen - c->roff;
		char *nl = memchr(start, '\n', avail);
		size_t take = nl != NULL ? (size_t)(nl - start) : avail;
		size_t room = size > copied + 1 ? size - copied - 1 : 0;

		/* A CR right before the LF is not part of the line; a CR at
		 * the end of the buffer stays there until we know. */
		if (take > 0 && start[take - 1] == '\r')
			take--;
		memcpy(line + copied, start, take < room ? take : room);
		copied += take < room ? take : room;
		total += take;
		if (nl != NULL) {
			c->roff += (size_t)(nl - start) + 1;
			line[copied] = '\0';
			if (len_out != NULL)
				*len_out = total;
			return 0;
		}
		c->roff += take;
		if (fill(c, deadline) < 0) {
			line[copied] = '\0';
			return -1;
		}
	}
}

static bool
is_reply_line(const char *s)
{
	return s[0] >= '1' && s[0] <= '5' && s[1] >= '0' && s[1] <= '9' &&
	       s[2] >= '0' && s[2] <= '9' &&
	       (s[3] == ' ' || s[3] == '-' || s[3] == '\0');
}

/* "x.y.z" after the code, if the first line has one. */
static void
parse_enhanced(const char *line, char out[16])
{
	char tmp[16], tail;
	unsigned a, b, d;
	size_t n;

	out[0] = '\0';
	if (line[3] == '\0')
		return;            /* "250" alone */
	n = strcspn(line + 4, " ");
	if (n == 0 || n >= sizeof(tmp))
		return;
	memcpy(tmp, line + 4, n);
	tmp[n] = '\0';
	if (sscanf(tmp, "%u.%u.%u%c", &a, &b, &d, &tail) == 3 && a >= 2 && a <= 5)
		memcpy(out, tmp, n + 1);
}

static void
append_text(struct lmtpc_reply *r, const char *line)
{
	size_t have = strlen(r->text);

	snprintf(r->text + have, sizeof(r->text) - have, "%s%s",
		 have > 0 ? "\n" : "", line);
}

int
lmtpc_read_reply(struct lmtpc *c, struct lmtpc_reply *r)
{
	char line[LMTPC_LINE_MAX];
	size_t len;
	int code;

	memset(r, 0, sizeof(*r));
	for (;;) {
		if (lmtpc_read_line(c, line, sizeof(line), &len) < 0)
			return -1;
		if (len >= sizeof(line) || !is_reply_line(line)) {
			snprintf(r->text, sizeof(r->text), "%s", line);
			errno = len >= sizeof(line) ? EMSGSIZE : EPROTO;
			return -1;
		}
		code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
		if (r->nlines == 0) {
			r->code = code;
			parse_enhanced(line, r->enhanced);
		} else if (code != r->code) {
			append_text(r, line);
			errno = EPROTO;
			return -1;
		}
		append_text(r, line);
		r->nlines++;
		if (line[3] != '-')
			return 0;
	}
}

int
lmtpc_read_replies(struct lmtpc *c, struct lmtpc_reply *r, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (lmtpc_read_reply(c, &r[i]) < 0)
			return -1;
	return 0;
}

int
lmtpc_cmd(struct lmtpc *c, struct lmtpc_reply *r, const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;
	int n, rc;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0) {
		errno = ENOMEM;
		return -1;
	}
	rc = lmtpc_sendf(c, "%s\r\n", s);
	free(s);
	if (rc < 0)
		return -1;
	return lmtpc_read_reply(c, r);
}

int
lmtpc_greeting(struct lmtpc *c, struct lmtpc_reply *r)
{
	return lmtpc_read_reply(c, r);
}

int
lmtpc_lhlo(struct lmtpc *c, const char *name, struct lmtpc_reply *r)
{
	return lmtpc_cmd(c, r, "LHLO %s", name);
}

int
lmtpc_mail(struct lmtpc *c, const char *from, struct lmtpc_reply *r)
{
	return lmtpc_cmd(c, r, "MAIL FROM:<%s>", from);
}

int
lmtpc_rcpt(struct lmtpc *c, const char *to, struct lmtpc_reply *r)
{
	return lmtpc_cmd(c, r, "RCPT TO:<%s>", to);
}

char *
lmtpc_dot_stuff(const void *body, size_t len, size_t *len_out)
{
	const char *b = body;
	size_t i, o = 0, dots = 0;
	char *out;
	bool bol = true;

	for (i = 0; i < len; i++) {
		if (bol && b[i] == '.')
			dots++;
		bol = b[i] == '\n';
	}
	out = malloc(len + dots + 5);
	if (out == NULL) {
		errno = ENOMEM;
		return NULL;
	}
	bol = true;
	for (i = 0; i < len; i++) {
		if (bol && b[i] == '.')
			out[o++] = '.';
		out[o++] = b[i];
		bol = b[i] == '\n';
	}
	if (len < 2 || b[len - 2] != '\r' || b[len - 1] != '\n') {
		out[o++] = '\r';
		out[o++] = '\n';
	}
	memcpy(out + o, ".\r\n", 3);
	*len_out = o + 3;
	return out;
}

int
lmtpc_data(struct lmtpc *c, const void *body, size_t len,
	   struct lmtpc_reply *data_reply, struct lmtpc_reply *r, size_t n)
{
	char *stuffed;
	size_t slen;
	int rc;

	if (lmtpc_cmd(c, data_reply, "DATA") < 0)
		return -1;
	if (data_reply->code != 354)
		return 0;
	stuffed = lmtpc_dot_stuff(body, len, &slen);
	if (stuffed == NULL)
		return -1;
	rc = lmtpc_send(c, stuffed, slen);
	free(stuffed);
	if (rc < 0)
		return -1;
	return lmtpc_read_replies(c, r, n);
}

int
lmtpc_bdat(struct lmtpc *c, const void *chunk, size_t len, bool last,
	   struct lmtpc_reply *r, size_t n)
{
	char head[64];
	char *buf;
	int hl, rc;

	hl = snprintf(head, sizeof(head), "BDAT %zu%s\r\n", len, last ? " LAST" : "");
	buf = malloc((size_t)hl + len);
	if (buf == NULL) {
		errno = ENOMEM;
		return -1;
	}
	memcpy(buf, head, (size_t)hl);
	if (len > 0)
		memcpy(buf + hl, chunk, len);
	rc = lmtpc_send(c, buf, (size_t)hl + len);
	free(buf);
	if (rc < 0)
		return -1;
	return lmtpc_read_replies(c, r, n);
}

int
lmtpc_wait_closed(struct lmtpc *c, int timeout_ms)
{
	int64_t deadline = now_ms() + timeout_ms;

	if (c->rlen > c->roff) {
		errno = EPROTO;
		return -1;
	}
	if (fill(c, deadline) == 0) {
		errno = EPROTO;
		return -1;
	}
	return errno == ECONNRESET ? 0 : -1;
}

const char *
lmtpc_strerror(int err)
{
	switch (err) {
	case ETIMEDOUT:
		return "timeout (no answer from the server)";
	case ECONNRESET:
		return "connection closed by the server";
	case EPROTO:
		return "malformed reply";
	case EMSGSIZE:
		return "reply line too long";
	default:
		return strerror(err);
	}
}
