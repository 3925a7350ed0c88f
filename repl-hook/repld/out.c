/* SPDX-License-Identifier: MIT */
/*
 * repl-hook/repld/out.c - ordered output of a replication connection: tagged
 * replies, data lines read from a LIST/SYNC/GUIDS memfd, and FETCH data
 * with the message file as a literal (doc/replication-protocol.md §5.1).
 *
 * Runs in:  repld (pread on reply fds handed over by the supervisor).
 * Trust:    the reply texts and data come from the supervisor and writers;
 *           they are still checked here so that nothing that breaks the
 *           framing (CR, LF, NUL, over-long lines) reaches the peer.  The
 *           message file may be user-controlled: if it yields fewer octets
 *           than announced, the literal cannot be completed and the
 *           connection is dropped.
 * Order:    replies go out in completion order; a reply with data lines
 *           or a literal is written whole before the next one starts
 *           (never split by another line).  At most REPLD_OUT_HIGH bytes
 *           are queued; the rest is read from the fd when the peer has
 *           taken the output (bounded memory).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "repl-hook/repld/repld_int.h"
#include "privsep/privsep.h"

enum out_phase {
	OUT_START = 0,
	OUT_DATA,             /* data lines from the memfd */
	OUT_LITERAL,          /* FETCH file octets */
	OUT_TAGGED,
};

enum step_result {
	STEP_ERROR = -1,
	STEP_MORE = 0,        /* output full */
	STEP_DONE = 1,
};

void
repld_rcmd_free(struct rcmd **rp)
{
	struct rcmd *r = *rp;

	if (r == NULL)
		return;
	if (r->body_fd >= 0)
		close(r->body_fd);
	if (r->rep_fd >= 0)
		close(r->rep_fd);
	free(r);
	*rp = NULL;
}

static const char *
status_word(uint32_t st)
{
	switch ((enum psep_repl_status)st) {
	case PSEP_RS_OK:
		return "OK";
	case PSEP_RS_NO:
		return "NO";
	case PSEP_RS_BAD:
	default:
		return "BAD";
	}
}

/* A response code: upper-case name and atom/number arguments. */
static bool
code_ok(const char *s)
{
	size_t i;

	if (s[0] < 'A' || s[0] > 'Z')
		return false;
	for (i = 0; s[i] != '\0'; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e ||
		    strchr("[]{}()\"\\", s[i]) != NULL)
			return false;
	return s[i - 1] != ' ' && strstr(s, "  ") == NULL;
}

static void
add_tagged(struct rcmd *r, struct evbuffer *out)
{
	const char *code = r->rep.code;
	char text[sizeof(r->rep.text)];
	size_t i;

	if (code[0] != '\0' && !code_ok(code)) {
		log_err("conn=%u tag=%s bad response code from the server",
			r->conn->serial, r->tag);
		code = "SERVERBUG";
	}
	for (i = 0; r->rep.text[i] != '\0' && i + 1 < sizeof(text); i++)
		text[i] = (r->rep.text[i] >= 0x20 && r->rep.text[i] < 0x7f) ?
			  r->rep.text[i] : '?';
	text[i] = '\0';
	if (i == 0)
		xstrlcpy(text, r->rep.status == PSEP_RS_OK ? "done" : "failed",
			 sizeof(text));
	evbuffer_add_printf(out, "%s %s %s%s%s%s\r\n", r->tag, status_word(r->rep.status),
			    code[0] != '\0' ? "[" : "", code, code[0] != '\0' ? "] " : "",
			    text);
}

static void
data_failed(struct rcmd *r, const char *why)
{
	log_err("conn=%u tag=%s data from the server: %s", r->conn->serial, r->tag,
		why);
	r->rep.status = PSEP_RS_NO;
	xstrlcpy(r->rep.code, "SERVERBUG", sizeof(r->rep.code));
	xstrlcpy(r->rep.text, "internal error", sizeof(r->rep.text));
	r->phase = OUT_TAGGED;
}

/* One data body: printable, and "* tag body CRLF" within MAXLINE. */
static bool
data_line_ok(const struct rcmd *r, const char *p, size_t n)
{
	size_t i;

	if (n + strlen(r->tag) + 5 > REPL_MAXLINE)
		return false;
	for (i = 0; i < n; i++)
		if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f)
			return false;
	return true;
}

/* Copy whole data lines from the memfd while the output has room. */
static enum step_result
step_data(struct rcmd *r, struct evbuffer *out)
{
	static char buf[REPLD_CHUNK];
	ssize_t n;
	size_t rem, len;
	char *p, *nl;

	while (evbuffer_get_length(out) < REPLD_OUT_HIGH) {
		n = pread(r->rep_fd, buf, sizeof(buf), (off_t)r->off);
		if (n < 0) {
			data_failed(r, strerrordesc_np(errno));
			return STEP_DONE;
		}
		if (n == 0) {
			r->phase = OUT_TAGGED;
			return STEP_DONE;
		}
		p = buf;
		rem = (size_t)n;
		while (rem > 0) {
			nl = memchr(p, '\n', rem);
			if (nl == NULL && r->off + rem < r->rep_size) {
				if (rem == sizeof(buf)) {
					data_failed(r, "line too long");
					return STEP_DONE;
				}
				break;      /* read the rest of the line next */
			}
			len = nl != NULL ? (size_t)(nl - p) : rem;
			if (len > 0 && !data_line_ok(r, p, len)) {
				data_failed(r, "bad data line");
				return STEP_DONE;
			}
			if (len > 0)
				evbuffer_add_printf(out, "* %s %.*s\r\n", r->tag, (int)len, p);
			len += nl != NULL ? 1 : 0;
			p += len;
			rem -= len;
			r->off += len;
		}
	}
	return STEP_MORE;
}

/* Copy file octets of a FETCH literal while the output has room. */
static enum step_result
step_literal(struct rcmd *r, struct evbuffer *out)
{
	static char buf[REPLD_CHUNK];
	uint64_t want;
	ssize_t n;

	while (r->off < r->rep.size) {
		if (evbuffer_get_length(out) >= REPLD_OUT_HIGH)
			return STEP_MORE;
		want = r->rep.size - r->off;
		if (want > sizeof(buf))
			want = sizeof(buf);
		n = pread(r->rep_fd, buf, (size_t)want, (off_t)r->off);
		if (n <= 0) {
			log_err("conn=%u tag=%s message file ended at %llu of %llu octets",
				r->conn->serial, r->tag, (unsigned long long)r->off,
				(unsigned long long)r->rep.size);
			return STEP_ERROR;
		}
		evbuffer_add(out, buf, (size_t)n);
		r->off += (uint64_t)n;
	}
	evbuffer_add(out, "\r\n", 2);
	r->phase = OUT_TAGGED;
	return STEP_DONE;
}

static void
start_reply(struct rcmd *r, struct evbuffer *out)
{
	r->phase = OUT_TAGGED;
	if (r->rep_fd < 0 || r->rep.status != PSEP_RS_OK)
		return;
	if (r->cmd.op != PSEP_REPL_FETCH) {
		r->phase = OUT_DATA;
		return;
	}
	if (!psep_str_ok(r->rep.flags, sizeof(r->rep.flags)) ||
	    !data_line_ok(r, r->rep.flags, strlen(r->rep.flags))) {
		data_failed(r, "bad FETCH flags");
		return;
	}
	evbuffer_add_printf(out, "* %s FETCH %s %u %llu (%s) {%llu}\r\n", r->tag,
			    r->cmd.guid, r->rep.uid, (unsigned long long)r->rep.date,
			    r->rep.flags, (unsigned long long)r->rep.size);
	r->off = 0;
	r->phase = OUT_LITERAL;
}

static enum step_result
step(struct rcmd *r, struct evbuffer *out)
{
	enum step_result res;

	if (r->kind == RCMD_LINE) {
		evbuffer_add_printf(out, "%s\r\n", r->line);
		return STEP_DONE;
	}
	if (r->phase == OUT_START)
		start_reply(r, out);
	if (r->phase == OUT_DATA) {
		res = step_data(r, out);
		if (res != STEP_DONE)
			return res;
	}
	if (r->phase == OUT_LITERAL) {
		res = step_literal(r, out);
		if (res != STEP_DONE)
			return res;
	}
	add_tagged(r, out);
	return STEP_DONE;
}

int
repld_out_flush(struct repld_conn *c)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	struct rcmd *r;

	while ((r = TAILQ_FIRST(&c->outq)) != NULL &&
	       evbuffer_get_length(out) < REPLD_OUT_HIGH) {
		switch (step(r, out)) {
		case STEP_ERROR:
			return -1;
		case STEP_MORE:
			return 0;
		case STEP_DONE:
		default:
			break;
		}
		TAILQ_REMOVE(&c->outq, r, entry);
		c->n_cmds--;
		repld_rcmd_free(&r);
	}
	return 0;
}
