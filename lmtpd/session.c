/* SPDX-License-Identifier: MIT */
/*
 * lmtpd/session.c - life cycle of one LMTP session: the input loop that
 * reads command lines and bodies in order, replies, timeouts, shutdown.
 *
 * Split-of: lmtp_session - one state machine (struct lmtp_session in
 *           session_int.h) split by phase: session.c (life cycle, input
 *           loop), command.c (command phase), body.c (body phase); each
 *           phase hands control to the others on the same state.
 * Runs in:  lmtpd.  No sockets here: the transport (conn.c, or a unit
 *           test) owns the two evbuffers and is steered by lmtp_io_ops;
 *           the supervisor is reached through lmtp_backend_ops.
 * Trust:    command lines are client-controlled: at most LMTP_CMD_MAX
 *           octets, CRLF or bare LF, no NUL.  A longer line is answered
 *           500 5.5.2 as soon as LMTP_CMD_MAX octets are buffered (the
 *           rest up to its LF is skipped).  The whole line must arrive
 *           within lmtp_command_timeout of its first octet being awaited
 *           (one deadline per command, not renewed by each read).
 * Order:    the loop stops whenever a reply from the supervisor is
 *           awaited; input stays buffered (PIPELINING) and is read again
 *           when the completion arrives, so replies keep command order.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "lmtpd/session_int.h"
#include "privsep/privsep.h"

enum line_status {
	LINE_NONE = 0,   /* no complete line buffered */
	LINE_OK,         /* a command line */
	LINE_HANDLED,    /* a bad line was answered */
};

struct lmtp_session *
lmtp_session_new(const struct lmtp_session_args *a)
{
	struct lmtp_session *s = xcalloc(1, sizeof(*s));

	s->cfg = a->cfg;
	s->in = a->in;
	s->out = a->out;
	s->io = a->io;
	s->io_ctx = a->io_ctx;
	s->be = a->backend;
	s->be_ctx = a->backend_ctx;
	s->shutdown = a->shutting_down;
	s->tls_offer = a->tls_offer;
	s->tls_required = a->tls_required;   /* without a context: fail closed */
	lmtp_trace_id(s->id, sizeof(s->id));
	xstrlcpy(s->peer, a->peer, sizeof(s->peer));
	log_info("session=%s connect peer=%s", s->id, s->peer);
	if (!s->shutdown)  /* else run() answers 421 and closes */
		lmtp_reply(s, "220 %s LMTP stowd ready", s->cfg->host);
	lmtp_session_run(s);
	return s;
}

void
lmtp_session_set_buffers(struct lmtp_session *s, struct evbuffer *in,
			 struct evbuffer *out)
{
	s->in = in;
	s->out = out;
}

void
lmtp_session_free(struct lmtp_session **sp)
{
	struct lmtp_session *s = *sp;

	if (s == NULL)
		return;
	if (s->be != NULL && s->be->end != NULL)
		s->be->end(s->be_ctx, s);
	log_info("session=%s disconnect transactions=%u", s->id, s->transactions);
	lmtp_tx_reset(s);
	free(s->rcpts);
	free(s);
	*sp = NULL;
}

const char *
lmtp_session_id(const struct lmtp_session *s)
{
	return s->id;
}

void *
lmtp_session_backend_data(const struct lmtp_session *s)
{
	return s->be_data;
}

void
lmtp_session_set_backend_data(struct lmtp_session *s, void *data)
{
	s->be_data = data;
}

bool
lmtp_session_closed(const struct lmtp_session *s)
{
	return s->phase == LMTP_PHASE_CLOSED;
}

bool
lmtp_session_output_may_wait(const struct lmtp_session *s)
{
	return s->phase == LMTP_PHASE_WAIT_RCPT;
}

void
lmtp_reply(struct lmtp_session *s, const char *fmt, ...)
{
	va_list ap;

	if (s->phase == LMTP_PHASE_CLOSED)
		return;
	va_start(ap, fmt);
	evbuffer_add_vprintf(s->out, fmt, ap);
	va_end(ap);
	evbuffer_add(s->out, "\r\n", 2);
}

static void
session_update_input(struct lmtp_session *s)
{
	bool want;

	/*
	 * While the session waits for the supervisor, reading stays on: what
	 * arrives is only buffered (session_step ignores it, the read high
	 * watermark bounds it), and not toggling read interest around every
	 * round trip saves the epoll_ctl calls.
	 */
	switch (s->phase) {
	case LMTP_PHASE_CMD:
	case LMTP_PHASE_DATA:
	case LMTP_PHASE_BDAT:
	case LMTP_PHASE_WAIT_RCPT:
	case LMTP_PHASE_WAIT_DELIVER:
		want = !s->out_full && !s->eof;
		break;
	case LMTP_PHASE_CLOSED:
	default:
		want = false;
		break;
	}
	if (want != s->reading) {
		s->reading = want;
		s->io->want_input(s->io_ctx, want);
	}
}

void
lmtp_session_close(struct lmtp_session *s)
{
	if (s->phase == LMTP_PHASE_CLOSED)
		return;
	s->phase = LMTP_PHASE_CLOSED;
	session_update_input(s);
	s->io->close(s->io_ctx);
}

/* Take the next command line out of s->in into line (LMTP_CMD_MAX + 1). */
static enum line_status
session_read_line(struct lmtp_session *s, char *line)
{
	size_t avail = evbuffer_get_length(s->in), n;
	struct evbuffer_ptr eol;

	eol = evbuffer_search_eol(s->in, NULL, NULL, EVBUFFER_EOL_LF);
	if (eol.pos < 0) {
		if (s->discard_line) {
			evbuffer_drain(s->in, avail);
		} else if (avail >= LMTP_CMD_MAX) {
			evbuffer_drain(s->in, avail);
			s->discard_line = true;
			lmtp_reply(s, "500 5.5.2 Line too long");
			return LINE_HANDLED;
		}
		return LINE_NONE;
	}
	n = (size_t)eol.pos + 1;
	if (s->discard_line || n > LMTP_CMD_MAX) {
		bool answered = s->discard_line;

		evbuffer_drain(s->in, n);
		s->discard_line = false;
		if (answered)
			return LINE_HANDLED;
		lmtp_reply(s, "500 5.5.2 Line too long");
		return LINE_HANDLED;
	}
	evbuffer_remove(s->in, line, n);
	if (memchr(line, '\0', n) != NULL) {
		lmtp_reply(s, "500 5.5.2 NUL byte in command");
		return LINE_HANDLED;
	}
	line[--n] = '\0';
	if (n > 0 && line[n - 1] == '\r')
		line[--n] = '\0';
	while (n > 0 && (line[n - 1] == ' ' || line[n - 1] == '\t'))
		line[--n] = '\0';
	return LINE_OK;
}

/* Start (on) or end the deadline of the command line being awaited.
 * Started once per command: later reads do not move it. */
static void
session_deadline(struct lmtp_session *s, bool on)
{
	if (on == s->cmd_deadline || s->io->deadline == NULL)
		return;
	if (on && s->cfg->command_timeout_ms == 0)
		return;
	s->cmd_deadline = on;
	s->io->deadline(s->io_ctx, on ? s->cfg->command_timeout_ms : 0);
}

/* One command, if one is buffered.  Returns true if progress was made. */
static bool
session_command(struct lmtp_session *s)
{
	char line[LMTP_CMD_MAX + 1];

	if (s->shutdown && !s->have_mail) {
		lmtp_reply(s, "421 4.3.2 %s Service shutting down", s->cfg->host);
		lmtp_session_close(s);
		return false;
	}
	switch (session_read_line(s, line)) {
	case LINE_NONE:
		if (s->eof)
			lmtp_session_close(s);
		else
			session_deadline(s, true);
		return false;
	case LINE_HANDLED:
		if (!s->discard_line)
			session_deadline(s, false);
		return true;
	case LINE_OK:
	default:
		break;
	}
	session_deadline(s, false);
	lmtp_cmd_line(s, line);
	return true;
}

/* One step of work.  Returns true if another step may do more. */
static bool
session_step(struct lmtp_session *s)
{
	if (evbuffer_get_length(s->out) > LMTP_OUT_MAX)
		s->out_full = true;
	if (s->out_full)
		return false;
	switch (s->phase) {
	case LMTP_PHASE_CMD:
		return session_command(s);
	case LMTP_PHASE_DATA:
	case LMTP_PHASE_BDAT:
		return lmtp_body_input(s);
	case LMTP_PHASE_WAIT_RCPT:
	case LMTP_PHASE_WAIT_DELIVER:
	case LMTP_PHASE_CLOSED:
	default:
		return false;
	}
}

void
lmtp_session_run(struct lmtp_session *s)
{
	if (s->in_run)
		return;  /* the running loop sees the new state */
	s->in_run = true;
	while (session_step(s))
		;
	s->in_run = false;
	session_update_input(s);
}

void
lmtp_session_input(struct lmtp_session *s)
{
	lmtp_session_run(s);
}

void
lmtp_session_eof(struct lmtp_session *s)
{
	s->eof = true;
	lmtp_session_run(s);
}

void
lmtp_session_output_drained(struct lmtp_session *s)
{
	if (evbuffer_get_length(s->out) > LMTP_OUT_MAX)
		return;
	s->out_full = false;
	lmtp_session_run(s);
}

void
lmtp_session_timeout(struct lmtp_session *s)
{
	if (s->phase == LMTP_PHASE_CLOSED)
		return;
	if (s->phase == LMTP_PHASE_WAIT_RCPT || s->phase == LMTP_PHASE_WAIT_DELIVER) {
		/* We are the slow side, not the client (the IPC requests have
		 * their own time limits): keep reading. */
		s->io->want_input(s->io_ctx, true);
		return;
	}
	s->cmd_deadline = false;
	log_info("session=%s timeout", s->id);
	lmtp_reply(s, "421 4.4.2 %s Timeout", s->cfg->host);
	lmtp_session_close(s);
}

void
lmtp_session_shutdown(struct lmtp_session *s)
{
	s->shutdown = true;
	lmtp_session_run(s);
}
