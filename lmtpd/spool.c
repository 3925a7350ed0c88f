/* SPDX-License-Identifier: MIT */
/*
 * lmtpd/spool.c - message bodies in memfds, sealed before they are shared;
 * reference-counted fds for handing one body to many delivery requests.
 *
 * Runs in:  lmtpd (seccomp: memfd_create, write, lseek, fcntl, close).
 * Trust:    once sealed (F_SEAL_SEAL|SHRINK|GROW|WRITE) nobody, lmtpd
 *           included, can change the body any more; receivers check the
 *           seals.  No mapping is ever made, so F_SEAL_WRITE cannot fail
 *           with EBUSY.  The open file description (and its offset) is
 *           shared by every receiver: they must read with pread.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "lmtpd/lmtpd_int.h"
#include "privsep/privsep.h"

struct lmtp_spool {
	int fd;
	char *buf;          /* LMTP_SPOOL_BUF bytes */
	size_t len;         /* buffered */
	uint64_t written;   /* bytes in the memfd */
	int err;            /* first write error */
	char head[LMTP_SPOOL_HEAD];  /* the first octets, for lmtp_spool_msgid */
	size_t head_len;
};

struct lmtp_fdref *
lmtp_fdref_new(int fd)
{
	struct lmtp_fdref *r = xmalloc(sizeof(*r));

	r->fd = fd;
	r->refs = 1;
	return r;
}

struct lmtp_fdref *
lmtp_fdref_get(struct lmtp_fdref *r)
{
	r->refs++;
	return r;
}

void
lmtp_fdref_put(struct lmtp_fdref **r)
{
	if (*r == NULL)
		return;
	if (--(*r)->refs == 0) {
		close((*r)->fd);
		free(*r);
	}
	*r = NULL;
}

int
lmtp_spool_open(struct lmtp_spool **out)
{
	struct lmtp_spool *sp;
	int fd;

	fd = memfd_create("stowd-body", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd == -1)
		return -1;
	sp = xcalloc(1, sizeof(*sp));
	sp->fd = fd;
	sp->buf = xmalloc(LMTP_SPOOL_BUF);
	*out = sp;
	return 0;
}

/* Write all of p to the memfd; remember the first error. */
static void
spool_write_fd(struct lmtp_spool *sp, const char *p, size_t n)
{
	ssize_t w;

	while (n > 0 && sp->err == 0) {
		w = write(sp->fd, p, n);
		if (w == -1) {
			if (errno != EINTR)
				sp->err = errno;
			continue;
		}
		if (w == 0) {
			sp->err = EIO;
			continue;
		}
		p += w;
		n -= (size_t)w;
		sp->written += (uint64_t)w;
	}
}

static void
spool_flush(struct lmtp_spool *sp)
{
	spool_write_fd(sp, sp->buf, sp->len);
	sp->len = 0;
}

void
lmtp_spool_write(struct lmtp_spool *sp, const void *p, size_t n)
{
	if (sp->head_len < sizeof(sp->head)) {
		size_t k = n < sizeof(sp->head) - sp->head_len ? n :
			   sizeof(sp->head) - sp->head_len;

		memcpy(sp->head + sp->head_len, p, k);
		sp->head_len += k;
	}
	if (sp->err != 0)
		return;
	if (sp->len + n > LMTP_SPOOL_BUF)
		spool_flush(sp);
	if (n >= LMTP_SPOOL_BUF) {
		spool_write_fd(sp, p, n);
		return;
	}
	memcpy(sp->buf + sp->len, p, n);
	sp->len += n;
}

int
lmtp_spool_error(const struct lmtp_spool *sp)
{
	return sp->err;
}

static void
spool_sink_write(void *ctx, const char *p, size_t n)
{
	lmtp_spool_write(ctx, p, n);
}

struct lmtp_sink
lmtp_spool_sink(struct lmtp_spool *sp)
{
	struct lmtp_sink s = { .write = spool_sink_write, .ctx = sp };

	return s;
}

int
lmtp_spool_finish(struct lmtp_spool *sp, struct lmtp_fdref **out,
		  uint64_t *size_out)
{
	const int seals = F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE;
	int ret = -1;

	spool_flush(sp);
	if (sp->err != 0) {
		errno = sp->err;
		goto out;
	}
	if (lseek(sp->fd, 0, SEEK_SET) == -1 ||
	    fcntl(sp->fd, F_ADD_SEALS, seals) == -1)
		goto out;
	*out = lmtp_fdref_new(sp->fd);
	*size_out = sp->written;
	sp->fd = -1;
	ret = 0;
out:
	return ret;
}

void
lmtp_spool_free(struct lmtp_spool **sp)
{
	if (*sp == NULL)
		return;
	if ((*sp)->fd >= 0)
		close((*sp)->fd);
	free((*sp)->buf);
	free(*sp);
	*sp = NULL;
}

/* Case-insensitive "Message-ID:" at line. */
static bool
is_msgid_header(const char *line, size_t len)
{
	static const char name[] = "message-id:";

	if (len < sizeof(name) - 1)
		return false;
	for (size_t i = 0; i < sizeof(name) - 1; i++)
		if ((line[i] | 0x20) != name[i] && line[i] != name[i])
			return false;
	return true;
}

void
lmtp_spool_msgid(const struct lmtp_spool *sp, char *out, size_t size)
{
	const char *p = sp->head, *end = sp->head + sp->head_len;
	bool in_msgid = false;
	size_t n = 0;

	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		size_t len = (eol != NULL ? eol : end) - p;

		if (len > 0 && p[len - 1] == '\r')
			len--;
		if (len == 0 || eol == NULL)
			break;                  /* end of the header (or cut off) */
		if (p[0] == ' ' || p[0] == '\t') {
			if (!in_msgid) {
				p = eol + 1;
				continue;
			}
		} else {
			if (in_msgid || !is_msgid_header(p, len)) {
				if (in_msgid)
					break;
				p = eol + 1;
				continue;
			}
			in_msgid = true;
			p += 11;
			len -= 11;
		}
		/* keep the visible octets, drop blanks and anything else */
		for (size_t i = 0; i < len && n + 1 < size; i++)
			if ((unsigned char)p[i] > 0x20 && (unsigned char)p[i] < 0x7f)
				out[n++] = p[i];
		p = eol + 1;
	}
	out[n] = '\0';
}
