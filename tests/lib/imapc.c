/* SPDX-License-Identifier: MIT */
/*
 * tests/lib/imapc.c - a tiny synchronous IMAP client for the integration
 * tests: transport, command/response loop, and the parsers of the few
 * responses the tests look at (SELECT, FETCH FLAGS, LIST, STATUS, QUOTA).
 *
 * Runs in:  test programs only.
 * Trust:    the server may hang or misbehave: the socket is non-blocking,
 *           every wait is a poll() bounded by the connection timeout, and
 *           a response line (literals included) is bounded by
 *           IMAPC_LINE_MAX.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "tests/lib/imapc.h"
#include "tests/lib/imapc_int.h"

#define IMAPC_RBUF 65536

struct imapc {
	int fd;
	int timeout_ms;
	unsigned next_tag;
	size_t roff;                 /* first unread byte in rbuf */
	size_t rlen;                 /* bytes in rbuf */
	bool eof;
	char greeting[512];
	char rbuf[IMAPC_RBUF];
};

/* A growing buffer for one logical response line. */
struct line_buf {
	char *p;
	size_t len;
	size_t cap;
};

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

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

/* "tcp:1.2.3.4:143" or "unix:/path" into ss. */
static int
parse_addr(const char *addr, struct sockaddr_storage *ss, socklen_t *sl)
{
	struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
	struct sockaddr_un *un = (struct sockaddr_un *)ss;
	char host[64];
	const char *colon;
	unsigned long port;
	char *end;
	size_t n;

	memset(ss, 0, sizeof(*ss));
	if (strncmp(addr, "unix:", 5) == 0) {
		n = strlen(addr + 5);
		if (n == 0 || n >= sizeof(un->sun_path))
			goto bad;
		un->sun_family = AF_UNIX;
		memcpy(un->sun_path, addr + 5, n + 1);
		*sl = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
		return 0;
	}
	if (strncmp(addr, "tcp:", 4) != 0 || (colon = strrchr(addr + 4, ':')) == NULL)
		goto bad;
	n = (size_t)(colon - (addr + 4));
	if (n == 0 || n >= sizeof(host))
		goto bad;
	memcpy(host, addr + 4, n);
	host[n] = '\0';
	errno = 0;
	port = strtoul(colon + 1, &end, 10);
	if (errno != 0 || *end != '\0' || port == 0 || port > 65535 ||
	    inet_pton(AF_INET, host, &in4->sin_addr) != 1)
		goto bad;
	in4->sin_family = AF_INET;
	in4->sin_port = htons((uint16_t)port);
	*sl = sizeof(*in4);
	return 0;
bad:
	errno = EINVAL;
	return -1;
}

static int
connect_fd(const char *addr, int64_t deadline)
{
	struct sockaddr_storage ss;
	socklen_t sl, el = sizeof(int);
	int fd, err = 0, saved;

	if (parse_addr(addr, &ss, &sl) < 0)
		return -1;
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&ss, sl) == 0)
		return fd;
	if (errno != EINPROGRESS && errno != EAGAIN)
		goto fail;
	if (wait_fd(fd, POLLOUT, deadline) < 0 ||
	    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0)
		goto fail;
	if (err == 0)
		return fd;
	errno = err;
fail:
	saved = errno;
	close(fd);
	errno = saved;
	return -1;
}

static int
send_all(struct imapc *c, const void *buf, size_t len)
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

/* Read more bytes into rbuf.  0 on data, -1 on EOF (ECONNRESET) or error. */
static int
fill(struct imapc *c, int64_t deadline)
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

static int
lb_add(struct line_buf *b, const char *p, size_t n)
{
	if (b->len + n + 1 > IMAPC_LINE_MAX) {
		errno = EMSGSIZE;
		return -1;
	}
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		char *np;

		while (cap < b->len + n + 1)
			cap *= 2;
		np = realloc(b->p, cap);
		if (np == NULL) {
			errno = ENOMEM;
			return -1;
		}
		b->p = np;
		b->cap = cap;
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
	b->p[b->len] = '\0';
	return 0;
}

/* Append n raw bytes (a literal) from the connection to b. */
static int
read_bytes(struct imapc *c, struct line_buf *b, size_t n, int64_t deadline)
{
	while (n > 0) {
		size_t avail = c->rlen - c->roff;
		size_t take = avail < n ? avail : n;

		if (take > 0) {
			if (lb_add(b, c->rbuf + c->roff, take) < 0)
				return -1;
			c->roff += take;
			n -= take;
		} else if (fill(c, deadline) < 0) {
			return -1;
		}
	}
	return 0;
}

/* Append one line to b, without its CRLF (or bare LF). */
static int
read_raw_line(struct imapc *c, struct line_buf *b, int64_t deadline)
{
	for (;;) {
		char *start = c->rbuf + c->roff;
		size_t avail = c->rlen - c->roff;
		char *nl = memchr(start, '\n', avail);

		if (nl != NULL) {
			size_t take = (size_t)(nl - start);

			c->roff += take + 1;
			if (take > 0 && start[take - 1] == '\r')
				take--;
			return lb_add(b, start, take);
		}
		/* keep a trailing CR in rbuf until its LF arrives */
		if (avail > 1) {
			size_t take = start[avail - 1] == '\r' ? avail - 1 : avail;

			if (lb_add(b, start, take) < 0)
				return -1;
			c->roff += take;
		}
		if (fill(c, deadline) < 0)
			return -1;
	}
}

/* The size of a literal "{N}" or "{N+}" ending the line, -1 if none. */
static long
literal_size(const struct line_buf *b)
{
	const char *open;
	char *end;
	long n;

	if (b->len < 3 || b->p[b->len - 1] != '}')
		return -1;
	open = strrchr(b->p, '{');
	if (open == NULL)
		return -1;
	errno = 0;
	n = strtol(open + 1, &end, 10);
	if (errno != 0 || end == open + 1 || n < 0)
		return -1;
	if (*end == '+')
		end++;
	return *end == '}' && end + 1 == b->p + b->len ? n : -1;
}

/*
 * One logical response line into b (cleared first): a line, and for each
 * literal it announces, CRLF + the literal's bytes + the rest of the line.
 */
static int
read_line(struct imapc *c, struct line_buf *b)
{
	int64_t deadline = now_ms() + c->timeout_ms;
	long lit;

	b->len = 0;
	if (read_raw_line(c, b, deadline) < 0)
		return -1;
	while ((lit = literal_size(b)) >= 0) {
		if (lb_add(b, "\r\n", 2) < 0 ||
		    read_bytes(c, b, (size_t)lit, deadline) < 0 ||
		    read_raw_line(c, b, deadline) < 0)
			return -1;
	}
	return 0;
}

int
imapc_connect(const char *addr, int timeout_ms, struct imapc **out)
{
	struct line_buf b = { 0 };
	struct imapc *c;
	int fd, saved;

	if (timeout_ms <= 0)
		timeout_ms = IMAPC_DEFAULT_TIMEOUT_MS;
	fd = connect_fd(addr, now_ms() + timeout_ms);
	if (fd < 0)
		return -1;
	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		close(fd);
		errno = ENOMEM;
		return -1;
	}
	c->fd = fd;
	c->timeout_ms = timeout_ms;
	if (read_line(c, &b) < 0)
		goto fail;
	snprintf(c->greeting, sizeof(c->greeting), "%s",
		 strncmp(b.p, "* ", 2) == 0 ? b.p + 2 : b.p);
	if (strncmp(b.p, "* OK", 4) != 0 && strncmp(b.p, "* PREAUTH", 9) != 0) {
		fprintf(stderr, "imapc: %s: greeting: %s\n", addr, b.p);
		errno = EPROTO;
		goto fail;
	}
	free(b.p);
	*out = c;
	return 0;
fail:
	saved = errno;
	free(b.p);
	imapc_free(&c);
	errno = saved;
	return -1;
}

void
imapc_free(struct imapc **c)
{
	if (c == NULL || *c == NULL)
		return;
	if ((*c)->fd >= 0)
		close((*c)->fd);
	free(*c);
	*c = NULL;
}

void
imapc_set_timeout(struct imapc *c, int timeout_ms)
{
	c->timeout_ms = timeout_ms > 0 ? timeout_ms : IMAPC_DEFAULT_TIMEOUT_MS;
}

const char *
imapc_greeting(const struct imapc *c)
{
	return c->greeting;
}

void
imapc_resp_free(struct imapc_resp *r)
{
	size_t i;

	for (i = 0; i < r->nlines; i++)
		free(r->lines[i]);
	free(r->lines);
	memset(r, 0, sizeof(*r));
}

const char *
imapc_resp_find(const struct imapc_resp *r, const char *prefix)
{
	size_t i, n = strlen(prefix);

	for (i = 0; i < r->nlines; i++)
		if (strncasecmp(r->lines[i], prefix, n) == 0)
			return r->lines[i];
	return NULL;
}

static int
resp_push(struct imapc_resp *r, const char *line)
{
	char **nl = realloc(r->lines, (r->nlines + 1) * sizeof(*nl));

	if (nl == NULL)
		return -1;
	r->lines = nl;
	r->lines[r->nlines] = strdup(line);
	if (r->lines[r->nlines] == NULL)
		return -1;
	r->nlines++;
	return 0;
}

/* "OK text" / "NO text" / "BAD text" of a tagged line into r. */
static int
resp_complete(struct imapc_resp *r, const char *rest)
{
	static const struct {
		const char *word;
		enum imapc_status st;
	} words[] = { { "OK", IMAPC_OK }, { "NO", IMAPC_NO }, { "BAD", IMAPC_BAD } };
	size_t i, n;

	for (i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
		n = strlen(words[i].word);
		if (strncasecmp(rest, words[i].word, n) == 0 &&
		    (rest[n] == ' ' || rest[n] == '\0')) {
			r->status = words[i].st;
			snprintf(r->text, sizeof(r->text), "%s",
				 rest[n] == ' ' ? rest + n + 1 : "");
			return 0;
		}
	}
	snprintf(r->text, sizeof(r->text), "%s", rest);
	errno = EPROTO;
	return -1;
}

/*
 * Read lines into r until the completion of tag.  With stop_at_cont, a
 * "+" continuation also ends the loop: returns 1 then, 0 on completion.
 */
static int
collect(struct imapc *c, struct imapc_resp *r, const char *tag, bool stop_at_cont)
{
	struct line_buf b = { 0 };
	size_t tl = strlen(tag);
	int rc = -1;

	for (;;) {
		if (read_line(c, &b) < 0)
			break;
		if (strncmp(b.p, "* ", 2) == 0) {
			if (resp_push(r, b.p + 2) < 0) {
				errno = ENOMEM;
				break;
			}
		} else if (b.p[0] == '+' && stop_at_cont) {
			rc = 1;
			break;
		} else if (strncmp(b.p, tag, tl) == 0 && b.p[tl] == ' ') {
			rc = resp_complete(r, b.p + tl + 1);
			break;
		} else {
			snprintf(r->text, sizeof(r->text), "%s", b.p);
			errno = EPROTO;
			break;
		}
	}
	free(b.p);
	return rc;
}

/* Send "<tag> " + the command + (literal ? "" : CRLF); tag_out[16]. */
static int
__attribute__((format(printf, 3, 0)))
send_cmd(struct imapc *c, char tag_out[16], const char *fmt, va_list ap)
{
	char *s = NULL, *line = NULL;
	int n, rc = -1;

	snprintf(tag_out, 16, "t%u", ++c->next_tag);
	if (vasprintf(&s, fmt, ap) < 0)
		goto nomem;
	n = asprintf(&line, "%s %s\r\n", tag_out, s);
	if (n < 0)
		goto nomem;
	rc = send_all(c, line, (size_t)n);
	goto out;
nomem:
	errno = ENOMEM;
out:
	free(s);
	free(line);
	return rc;
}

static int
__attribute__((format(printf, 3, 0)))
vcmd(struct imapc *c, struct imapc_resp *r, const char *fmt, va_list ap)
{
	char tag[16];

	imapc_resp_free(r);
	if (send_cmd(c, tag, fmt, ap) < 0)
		return -1;
	return collect(c, r, tag, false);
}

int
imapc_cmd(struct imapc *c, struct imapc_resp *r, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = vcmd(c, r, fmt, ap);
	va_end(ap);
	return rc;
}

int
imapc_need_ok(const struct imapc_resp *r, int rc, const char *what)
{
	if (rc == 0 && r->status == IMAPC_OK)
		return 0;
	if (rc == 0) {
		fprintf(stderr, "imapc: %s: %s %s\n", what,
			r->status == IMAPC_NO ? "NO" : "BAD", r->text);
		errno = r->status == IMAPC_NO ? EACCES : EINVAL;
	} else {
		fprintf(stderr, "imapc: %s: %s%s%s\n", what, strerror(errno),
			r->text[0] ? ": " : "", r->text);
	}
	return -1;
}

int
imapc_ok(struct imapc *c, const char *fmt, ...)
{
	struct imapc_resp r = { 0 };
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = vcmd(c, &r, fmt, ap);
	va_end(ap);
	rc = imapc_need_ok(&r, rc, fmt);
	imapc_resp_free(&r);
	return rc;
}

int
imapc_quote(const char *s, char *out, size_t size)
{
	size_t o = 0;

	if (size < 3)
		goto big;
	out[o++] = '"';
	for (; *s != '\0'; s++) {
		if (*s == '\r' || *s == '\n') {
			errno = EINVAL;
			return -1;
		}
		if (o + 4 > size)
			goto big;
		if (*s == '"' || *s == '\\')
			out[o++] = '\\';
		out[o++] = *s;
	}
	out[o++] = '"';
	out[o] = '\0';
	return 0;
big:
	errno = EMSGSIZE;
	return -1;
}

/* The uid of "[APPENDUID <validity> <uid>]" in text, 0 if none. */
static unsigned
append_uid(const char *text)
{
	unsigned long validity, uid;

	if (sscanf(text, "[APPENDUID %lu %lu]", &validity, &uid) != 2)
		return 0;
	return (unsigned)uid;
}

/* Send "<tag> <fmt...>" without waiting, the rest of APPEND follows. */
static int
__attribute__((format(printf, 3, 4)))
send_head(struct imapc *c, char tag_out[16], const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = send_cmd(c, tag_out, fmt, ap);
	va_end(ap);
	return rc;
}

int
imapc_append(struct imapc *c, const char *mailbox, const char *flags,
	     const void *msg, size_t len, unsigned *uid_out)
{
	struct imapc_resp r = { 0 };
	char box[IMAPC_QUOTED_MAX], tag[16];
	int rc = -1;

	if (uid_out != NULL)
		*uid_out = 0;
	if (imapc_quote(mailbox, box, sizeof(box)) < 0)
		return -1;
	if (send_head(c, tag, "APPEND %s%s%s%s {%zu}", box, flags ? " (" : "",
		      flags ? flags : "", flags ? ")" : "", len) < 0)
		goto out;
	rc = collect(c, &r, tag, true);
	if (rc == 1) {
		if (send_all(c, msg, len) < 0 || send_all(c, "\r\n", 2) < 0) {
			rc = -1;
			goto out;
		}
		rc = collect(c, &r, tag, false);
	}
	rc = imapc_need_ok(&r, rc, "APPEND");
	if (rc == 0 && uid_out != NULL)
		*uid_out = append_uid(r.text);
out:
	imapc_resp_free(&r);
	return rc;
}
