/* SPDX-License-Identifier: MIT */
/*
 * repl-hook/proto/frame.c - framing of the replication protocol
 * (doc/replication-protocol.md §3): lines split at LF, MAXLINE, counted
 * non-synchronising literals streamed into sealed memfds.
 *
 * Runs in:  repld and repl-hook (memfd_create, write, fcntl, lseek, close).
 * Trust:    the stream is untrusted.  At most REPL_MAXLINE octets of a line
 *           are held; an overlong line keeps its first octets (for the tag)
 *           and its last 32 (for a literal marker); literal data goes to
 *           the memfd as it arrives, or is drained when it is not kept.
 * Order:    line, literal marker, N literal octets, the CRLF after them;
 *           a frame is returned only when its command is complete.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "privsep/privsep.h"
#include "repl-hook/proto/proto.h"

#define TOOLONG_KEEP 64u      /* first octets of an overlong line */
#define TAIL_KEEP 32u         /* last octets of an overlong line */
#define LIT_DIGITS_MAX 19u

enum framer_state {
	FS_LINE = 0,          /* reading a line */
	FS_DISCARD,           /* discarding an overlong line up to LF */
	FS_LITERAL,           /* reading (or discarding) literal octets */
	FS_LITERAL_CRLF,      /* the 2 octets after a literal */
};

struct repl_framer {
	uint64_t maxliteral;
	enum framer_state st;
	char buf[REPL_MAXLINE + 1];
	size_t len;               /* raw octets before LF in buf */
	unsigned char tail[TAIL_KEEP];
	size_t taillen;
	bool toolong;
	bool bad_eol;
	bool has_literal;
	bool toobig;
	uint64_t lit_size;
	uint64_t lit_left;
	int lit_fd;               /* -1 when the literal is not kept */
	unsigned char crlf[2];
	size_t crlf_got;
};

struct repl_framer *
repl_framer_new(uint64_t maxliteral)
{
	struct repl_framer *f = xcalloc(1, sizeof *f);

	f->maxliteral = maxliteral;
	f->lit_fd = -1;
	return f;
}

void
repl_framer_free(struct repl_framer **fp)
{
	if (fp == NULL || *fp == NULL)
		return;
	if ((*fp)->lit_fd >= 0)
		close((*fp)->lit_fd);
	free(*fp);
	*fp = NULL;
}

bool
repl_framer_busy(const struct repl_framer *f)
{
	return f->st != FS_LINE || f->len > 0;
}

static void
reset(struct repl_framer *f)
{
	f->st = FS_LINE;
	f->len = 0;
	f->taillen = 0;
	f->toolong = f->bad_eol = f->has_literal = f->toobig = false;
	f->lit_size = f->lit_left = 0;
	f->lit_fd = -1;
	f->crlf_got = 0;
}

/*
 * A literal marker "{N}" at the end of s[0..n).  complete: s is the whole
 * line (else only its tail).  Returns 1 with *size_out, 0 for none, -1 if
 * the digits do not form a number <= 2^63-1.
 */
static int
find_marker(const unsigned char *s, size_t n, bool complete, uint64_t *size_out)
{
	size_t j, digits, i;
	uint64_t v = 0;

	if (n == 0 || s[n - 1] != '}')
		return 0;
	j = n - 1;
	while (j > 0 && s[j - 1] >= '0' && s[j - 1] <= '9')
		j--;
	digits = n - 1 - j;
	if (j == 0)
		return (complete || digits <= LIT_DIGITS_MAX) ? 0 : -1;
	if (s[j - 1] != '{' || digits == 0)
		return 0;
	if (digits > LIT_DIGITS_MAX)
		return -1;
	for (i = j; i < n - 1; i++)
		v = v * 10 + (uint64_t)(s[i] - '0');
	if (v > (uint64_t)INT64_MAX)
		return -1;
	*size_out = v;
	return 1;
}

static void
tail_add(struct repl_framer *f, const unsigned char *p, size_t n)
{
	if (n >= TAIL_KEEP) {
		memcpy(f->tail, p + n - TAIL_KEEP, TAIL_KEEP);
		f->taillen = TAIL_KEEP;
		return;
	}
	if (f->taillen + n > TAIL_KEEP) {
		size_t drop = f->taillen + n - TAIL_KEEP;

		memmove(f->tail, f->tail + drop, f->taillen - drop);
		f->taillen -= drop;
	}
	memcpy(f->tail + f->taillen, p, n);
	f->taillen += n;
}

/* The line ended (its LF was drained): find the marker, start the literal. */
static enum repl_frame_result
line_done(struct repl_framer *f, const char **why)
{
	const unsigned char *s;
	size_t n, i;
	int m;

	if (f->toolong) {
		s = f->tail;
		n = f->taillen;
	} else {
		s = (const unsigned char *)f->buf;
		n = f->len;
	}
	if (n > 0 && s[n - 1] == '\r')
		n--;
	else if (!f->toolong)
		f->bad_eol = true;
	if (!f->toolong) {
		f->len = n;
		f->buf[n] = '\0';
		for (i = 0; i < n; i++) {
			if (s[i] == '\r' || s[i] == '\0')
				f->bad_eol = true;
		}
	}
	m = find_marker(s, n, !f->toolong, &f->lit_size);
	if (m < 0) {
		*why = "bad literal size";
		return REPL_F_FATAL;
	}
	if (m == 0)
		return REPL_F_FRAME;
	f->has_literal = true;
	f->lit_left = f->lit_size;
	f->toobig = f->lit_size > f->maxliteral;
	if (!f->toolong && !f->bad_eol && !f->toobig) {
		f->lit_fd = memfd_create("stowd-repl-literal", MFD_CLOEXEC | MFD_ALLOW_SEALING);
		if (f->lit_fd < 0) {
			*why = "cannot create a memfd for the literal";
			return REPL_F_FATAL;
		}
	}
	f->st = FS_LITERAL;
	return REPL_F_MORE;
}

/* Read line octets; REPL_F_FRAME when the line (without literal) ended. */
static enum repl_frame_result
read_line(struct repl_framer *f, struct evbuffer *in, const char **why)
{
	struct evbuffer_ptr pos = evbuffer_search(in, "\n", 1, NULL);
	size_t avail = pos.pos >= 0 ? (size_t)pos.pos : evbuffer_get_length(in);
	size_t room = REPL_MAXLINE - 1 - f->len;

	if (avail > room) {
		evbuffer_remove(in, f->buf + f->len, room);
		f->len += room;
		f->toolong = true;
		f->taillen = 0;
		tail_add(f, (const unsigned char *)f->buf, f->len);
		f->len = TOOLONG_KEEP;
		f->buf[f->len] = '\0';
		f->st = FS_DISCARD;
		return REPL_F_MORE;
	}
	evbuffer_remove(in, f->buf + f->len, avail);
	f->len += avail;
	if (pos.pos < 0)
		return REPL_F_MORE;
	evbuffer_drain(in, 1);
	return line_done(f, why);
}

/* Discard an overlong line up to its LF, keeping the tail. */
static enum repl_frame_result
discard_line(struct repl_framer *f, struct evbuffer *in, const char **why)
{
	struct evbuffer_ptr pos = evbuffer_search(in, "\n", 1, NULL);
	size_t avail = pos.pos >= 0 ? (size_t)pos.pos : evbuffer_get_length(in);
	unsigned char chunk[4096];

	while (avail > 0) {
		size_t n = avail < sizeof chunk ? avail : sizeof chunk;
		int got = evbuffer_remove(in, chunk, n);

		if (got <= 0)
			break;
		tail_add(f, chunk, (size_t)got);
		avail -= (size_t)got;
	}
	if (pos.pos < 0)
		return REPL_F_MORE;
	evbuffer_drain(in, 1);
	return line_done(f, why);
}

static int
write_all(int fd, const void *p, size_t n)
{
	const char *c = p;

	while (n > 0) {
		ssize_t w = write(fd, c, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Move literal octets into the memfd (or drop them). */
static enum repl_frame_result
read_literal(struct repl_framer *f, struct evbuffer *in, const char **why)
{
	while (f->lit_left > 0 && evbuffer_get_length(in) > 0) {
		size_t n = evbuffer_get_length(in);
		struct evbuffer_iovec v[8];
		int nv, i;
		size_t done = 0;

		if (n > f->lit_left)
			n = (size_t)f->lit_left;
		if (f->lit_fd < 0) {
			evbuffer_drain(in, n);
			f->lit_left -= n;
			continue;
		}
		nv = evbuffer_peek(in, (ev_ssize_t)n, NULL, v, 8);
		if (nv > 8)
			nv = 8;
		for (i = 0; i < nv && done < n; i++) {
			size_t k = v[i].iov_len < n - done ? v[i].iov_len : n - done;

			if (write_all(f->lit_fd, v[i].iov_base, k) < 0) {
				*why = "cannot store the literal";
				return REPL_F_FATAL;
			}
			done += k;
		}
		evbuffer_drain(in, done);
		f->lit_left -= done;
	}
	if (f->lit_left == 0)
		f->st = FS_LITERAL_CRLF;
	return REPL_F_MORE;
}

/* The CRLF that ends the command; then seal the memfd. */
static enum repl_frame_result
read_crlf(struct repl_framer *f, struct evbuffer *in, const char **why)
{
	while (f->crlf_got < 2 && evbuffer_get_length(in) > 0)
		f->crlf_got += (size_t)evbuffer_remove(in, f->crlf + f->crlf_got, 1);
	if (f->crlf_got < 2)
		return REPL_F_MORE;
	if (f->crlf[0] != '\r' || f->crlf[1] != '\n') {
		*why = "literal not followed by CRLF";
		return REPL_F_FATAL;
	}
	if (f->lit_fd >= 0 &&
	    (fcntl(f->lit_fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE |
		   F_SEAL_SEAL) < 0 || lseek(f->lit_fd, 0, SEEK_SET) != 0)) {
		*why = "cannot seal the literal";
		return REPL_F_FATAL;
	}
	return REPL_F_FRAME;
}

static void
emit(struct repl_framer *f, struct repl_frame *out)
{
	memcpy(out->line, f->buf, f->len);
	out->line[f->len] = '\0';
	out->len = f->len;
	out->toolong = f->toolong;
	out->bad_eol = f->bad_eol;
	out->has_literal = f->has_literal;
	out->literal_size = f->has_literal ? f->lit_size : 0;
	out->literal_toobig = f->has_literal && f->toobig && !f->toolong;
	out->literal_fd = f->lit_fd;
	reset(f);
}

enum repl_frame_result
repl_framer_next(struct repl_framer *f, struct evbuffer *in,
		 struct repl_frame *out, const char **why)
{
	enum repl_frame_result r;
	enum framer_state before;

	*why = NULL;
	for (;;) {
		before = f->st;
		switch (f->st) {
		case FS_LINE:
			r = read_line(f, in, why);
			break;
		case FS_DISCARD:
			r = discard_line(f, in, why);
			break;
		case FS_LITERAL:
			r = read_literal(f, in, why);
			break;
		case FS_LITERAL_CRLF:
			r = read_crlf(f, in, why);
			break;
		default:
			*why = "framer state lost";
			return REPL_F_FATAL;
		}
		if (r == REPL_F_FATAL)
			return r;
		if (r == REPL_F_FRAME) {
			emit(f, out);
			return r;
		}
		if (f->st == before)
			return REPL_F_MORE;
	}
}

enum repl_frame_result
repl_framer_read(struct repl_framer *f, struct evbuffer *in, struct repl_frame *out,
		 const struct repl_frame_sink *sink, const char **why)
{
	enum repl_frame_result r = REPL_F_FRAME;

	while (sink->more(sink->arg)) {
		r = repl_framer_next(f, in, out, why);
		if (r != REPL_F_FRAME)
			return r;
		sink->frame(sink->arg, out);
	}
	return REPL_F_FRAME;
}
