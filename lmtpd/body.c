/* SPDX-License-Identifier: MIT */
/*
 * lmtpd/body.c - DATA and BDAT bodies: feeding the decoder, the end of a
 * body, one delivery request per accepted recipient, and the replies to
 * them in RCPT order.
 *
 * Split-of: lmtp_session - one state machine (struct lmtp_session in
 *           session_int.h) split by phase: session.c (life cycle, input
 *           loop), command.c (command phase), body.c (body phase); each
 *           phase hands control to the others on the same state.
 * Runs in:  lmtpd.
 * Trust:    the body is client-controlled (decode.c); results come from
 *           the supervisor and are still normalised before printing.
 * Order:    all requests go out at once (the supervisor may deliver them in
 *           parallel); a recipient's reply is sent once it and every
 *           recipient before it have their result.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>

#include "lmtpd/session_int.h"
#include "privsep/privsep.h"

static void
result_set(struct dlv_result *r, enum dlv_status status, unsigned code,
	   const char *enhanced, const char *text)
{
	memset(r, 0, sizeof(*r));
	r->status = status;
	r->code = code;
	xstrlcpy(r->enhanced, enhanced, sizeof(r->enhanced));
	xstrlcpy(r->text, text, sizeof(r->text));
}

static bool
enhanced_ok(const char *e, unsigned cls)
{
	const char *p = e;
	int parts = 0;

	if (e[0] != (char)('0' + cls) || e[1] != '.')
		return false;
	for (;;) {
		if (*p < '0' || *p > '9')
			return false;
		while (*p >= '0' && *p <= '9')
			p++;
		parts++;
		if (*p != '.')
			break;
		p++;
	}
	return *p == '\0' && parts == 3;
}

void
lmtp_result_norm(const struct dlv_result *in, struct dlv_result *out)
{
	static const char *const defaults[] = { "2.0.0", "4.0.0", "5.0.0" };
	unsigned cls = in->code / 100;
	size_t i;

	*out = *in;
	out->enhanced[sizeof(out->enhanced) - 1] = '\0';
	out->text[sizeof(out->text) - 1] = '\0';
	if (in->code < 200 || in->code > 599 || cls == 3 ||
	    (in->status == DLV_OK) != (cls == 2)) {
		result_set(out, DLV_TEMPFAIL, 451, "4.3.0",
			   "Internal error: invalid result from delivery service");
		return;
	}
	out->status = cls == 2 ? DLV_OK : cls == 4 ? DLV_TEMPFAIL : DLV_PERMFAIL;
	if (!enhanced_ok(out->enhanced, cls))
		xstrlcpy(out->enhanced, defaults[cls == 2 ? 0 : cls - 3],
			 sizeof(out->enhanced));
	for (i = 0; out->text[i] != '\0'; i++)
		if ((unsigned char)out->text[i] < 0x20 || out->text[i] == 0x7f)
			out->text[i] = ' ';
	if (out->text[0] == '\0')
		xstrlcpy(out->text, cls == 2 ? "Ok" : "Failed", sizeof(out->text));
}

static void
reply_rcpt(struct lmtp_session *s, const struct lmtp_rcpt *rc)
{
	const struct dlv_result *r = &rc->result;

	if (r->status == DLV_OK)
		lmtp_reply(s, "%u %s <%s> %s Saved%s%s", r->code, r->enhanced,
			   rc->address, s->id, rc->guid[0] ? " as " : "", rc->guid);
	else
		lmtp_reply(s, "%u %s <%s> %s %s", r->code, r->enhanced,
			   rc->address, s->id, r->text);
	log_debug("session=%s rcpt=%s result=%u", s->id, rc->address, r->code);
}

/* Answer every recipient whose turn has come; end the transaction after
 * the last one. */
static void
flush_replies(struct lmtp_session *s)
{
	while (s->next_reply < s->n_rcpts && s->rcpts[s->next_reply].done)
		reply_rcpt(s, &s->rcpts[s->next_reply++]);
	if (s->next_reply == s->n_rcpts) {
		lmtp_tx_reset(s);
		s->phase = LMTP_PHASE_CMD;
	}
}

/* The same reply for every recipient; the transaction ends. */
static void
fail_all(struct lmtp_session *s, const char *reply)
{
	size_t i;

	for (i = 0; i < s->n_rcpts; i++)
		lmtp_reply(s, "%s", reply);
	lmtp_tx_reset(s);
	s->phase = LMTP_PHASE_CMD;
}

/* Reply text if the body must not be delivered, else NULL. */
static const char *
body_refusal(struct lmtp_session *s, char *buf, size_t size)
{
	switch (s->dec.err) {
	case LMTP_BODY_TOO_BIG:
		return "552 5.3.4 Message size exceeds fixed limit";
	case LMTP_BODY_LONG_LINE:
		snprintf(buf, size, "554 5.6.0 %s Message line longer than %u octets",
			 s->id, s->cfg->max_line_length);
		return buf;
	case LMTP_BODY_NUL:
		return "554 5.6.0 Message contains NUL byte (BINARYMIME not supported)";
	case LMTP_BODY_OK:
	default:
		break;
	}
	if (lmtp_spool_error(s->spool) != 0) {
		log_err("session=%s spool write: %s", s->id,
			strerrordesc_np(lmtp_spool_error(s->spool)));
		snprintf(buf, size, "451 4.3.0 %s Temporary failure storing message",
			 s->id);
		return buf;
	}
	return NULL;
}

/* Send one delivery request per recipient; failures are results. */
static void
deliver_all(struct lmtp_session *s, struct lmtp_fdref *body, uint64_t size)
{
	char prefix[PSEP_PREFIX_MAX], msgid[PSEP_MSGID_MAX];
	struct lmtp_trace t = {
		.sender = s->sender, .lhlo = s->lhlo, .peer = s->peer,
		.host = s->cfg->host, .session = s->id, .smtputf8 = s->smtputf8,
	};
	struct lmtp_delivery d = {
		.session = s->id, .body_size = size, .body_vsize = lmtp_dec_vsize(&s->dec),
		.prefix = prefix, .body = body, .msgid = msgid,
	};
	struct timespec now;
	size_t i;
	int n;

	lmtp_spool_msgid(s->spool, msgid, sizeof(msgid));
	clock_gettime(CLOCK_REALTIME, &now);
	t.time = now.tv_sec;
	for (i = 0; i < s->n_rcpts; i++) {
		t.rcpt = d.address = s->rcpts[i].address;
		d.rcpt_index = (uint32_t)i;
		n = lmtp_trace_prefix(&t, prefix, sizeof(prefix));
		d.prefix_len = n < 0 ? 0 : (size_t)n;
		if (n >= 0 && s->be->deliver(s->be_ctx, s, &d) == 0)
			continue;
		log_warn("session=%s rcpt=%s delivery request could not be sent",
			 s->id, s->rcpts[i].address);
		result_set(&s->rcpts[i].result, DLV_TEMPFAIL, 451, "4.3.0",
			   "Temporary failure, try again later");
		s->rcpts[i].done = true;
	}
}

/* The body is complete: refuse it or hand it over. */
static void
body_end(struct lmtp_session *s)
{
	struct lmtp_fdref *body = NULL;
	const char *refusal;
	char buf[160];
	uint64_t size = 0;

	s->transactions++;
	refusal = body_refusal(s, buf, sizeof(buf));
	if (refusal == NULL && lmtp_spool_finish(s->spool, &body, &size) == -1) {
		log_err("session=%s seal body: %s", s->id, strerrordesc_np(errno));
		snprintf(buf, sizeof(buf), "451 4.3.0 %s Temporary failure storing message",
			 s->id);
		refusal = buf;
	}
	if (refusal != NULL) {
		log_info("session=%s body refused: %s", s->id, refusal);
		fail_all(s, refusal);
		return;
	}
	log_debug("session=%s body size=%llu rcpts=%zu", s->id,
		  (unsigned long long)size, s->n_rcpts);
	s->phase = LMTP_PHASE_WAIT_DELIVER;
	deliver_all(s, body, size);
	lmtp_fdref_put(&body);
	flush_replies(s);
}

void
lmtp_session_deliver_done(struct lmtp_session *s, uint32_t rcpt_index,
			  const struct dlv_result *r, const char *guid)
{
	struct lmtp_rcpt *rc;
	size_t i;

	if (s->phase != LMTP_PHASE_WAIT_DELIVER || rcpt_index >= s->n_rcpts ||
	    s->rcpts[rcpt_index].done) {
		log_warn("session=%s unexpected delivery result rcpt=%u", s->id,
			 rcpt_index);
		return;
	}
	rc = &s->rcpts[rcpt_index];
	lmtp_result_norm(r, &rc->result);
	for (i = 0; guid != NULL && guid[i] != '\0' && i + 1 < sizeof(rc->guid); i++)
		rc->guid[i] = (guid[i] >= '0' && guid[i] <= '9') ||
			      (guid[i] >= 'a' && guid[i] <= 'z') ||
			      (guid[i] >= 'A' && guid[i] <= 'Z') ? guid[i] : '_';
	rc->guid[i] = '\0';
	rc->done = true;
	if (s->in_run)
		return;  /* body_end() flushes */
	flush_replies(s);
	lmtp_session_run(s);
}

/* A BDAT chunk was read completely. */
static void
bdat_chunk_done(struct lmtp_session *s, const struct lmtp_sink *sink)
{
	if (s->bdat_reply != NULL) {
		lmtp_reply(s, "%s", s->bdat_reply);
		if (s->bdat_reset)
			lmtp_tx_reset(s);
		s->bdat_reply = NULL;
		s->bdat_reset = false;
		s->phase = LMTP_PHASE_CMD;
		return;
	}
	if (!s->bdat_last) {
		lmtp_reply(s, "250 2.0.0 %llu octets received",
			   (unsigned long long)s->bdat_size);
		s->phase = LMTP_PHASE_CMD;
		return;
	}
	lmtp_dec_finish(&s->dec, sink);
	body_end(s);
}

static void
discard_write(void *ctx, const char *p, size_t n)
{
	(void)ctx;
	(void)p;
	(void)n;
}

bool
lmtp_body_input(struct lmtp_session *s)
{
	struct lmtp_sink sink = { .write = discard_write };
	struct evbuffer_iovec v;
	size_t n, used;
	bool bdat = s->phase == LMTP_PHASE_BDAT;

	if (s->spool != NULL)
		sink = lmtp_spool_sink(s->spool);
	for (;;) {
		if (bdat && s->bdat_left == 0) {
			bdat_chunk_done(s, &sink);
			return true;
		}
		if (evbuffer_peek(s->in, -1, NULL, &v, 1) < 1 || v.iov_len == 0)
			break;
		n = v.iov_len;
		if (bdat && n > s->bdat_left)
			n = (size_t)s->bdat_left;
		if (bdat && s->bdat_reply != NULL)
			used = n;
		else
			used = lmtp_dec_feed(&s->dec, v.iov_base, n, &sink);
		evbuffer_drain(s->in, used);
		if (bdat)
			s->bdat_left -= used;
		else if (s->dec.done)
			break;
	}
	if (!bdat && s->dec.done) {
		body_end(s);
		return true;
	}
	if (s->eof) {
		log_info("session=%s client closed during the body", s->id);
		lmtp_session_close(s);
	}
	return false;
}
