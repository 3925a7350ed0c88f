/* SPDX-License-Identifier: MIT */
/*
 * lmtpd/command.c - LMTP commands: LHLO, MAIL, RCPT, DATA, BDAT, RSET,
 * NOOP, QUIT, VRFY; the transaction state they build.
 *
 * Split-of: lmtp_session - one state machine (struct lmtp_session in
 *           session_int.h) split by phase: session.c (life cycle, input
 *           loop), command.c (command phase), body.c (body phase); each
 *           phase hands control to the others on the same state.
 * Runs in:  lmtpd.
 * Trust:    arguments are client-controlled and parsed by parse.c; a RCPT
 *           is accepted only if the supervisor's look-up says so.
 * Order:    RCPT sends a look-up and parks the session (WAIT_RCPT) until
 *           lmtp_session_rcpt_done; DATA and BDAT switch to body phases.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "lmtpd/session_int.h"
#include "privsep/privsep.h"

void
lmtp_tx_reset(struct lmtp_session *s)
{
	size_t i;

	for (i = 0; i < s->n_rcpts; i++)
		free(s->rcpts[i].address);
	s->n_rcpts = 0;
	free(s->sender);
	s->sender = NULL;
	lmtp_spool_free(&s->spool);
	s->have_mail = false;
	s->smtputf8 = false;
	s->used_bdat = false;
	s->bdat_reply = NULL;
	s->bdat_reset = false;
	s->next_reply = 0;
}

static void
cmd_lhlo(struct lmtp_session *s, const char *args)
{
	const struct lmtp_config *c = s->cfg;

	if (lmtp_parse_lhlo(args, s->lhlo, sizeof(s->lhlo)) == -1) {
		lmtp_reply(s, "501 5.5.4 Syntax: LHLO hostname");
		return;
	}
	lmtp_tx_reset(s);
	s->lhlo_done = true;
	lmtp_reply(s, "250-%s", c->host);
	lmtp_reply(s, "250-PIPELINING");
	lmtp_reply(s, "250-ENHANCEDSTATUSCODES");
	lmtp_reply(s, "250-8BITMIME");
	lmtp_reply(s, "250-SMTPUTF8");
	lmtp_reply(s, "250-SIZE %llu", (unsigned long long)c->max_message_size);
	if (s->tls_offer && !s->tls_active)
		lmtp_reply(s, "250-STARTTLS");
	lmtp_reply(s, "250 CHUNKING");
}

/*
 * RFC 3207: 220, then TLS.  Bytes the client sent after STARTTLS before
 * the handshake would be taken for commands sent under TLS (command
 * injection): the connection is refused instead.  After the handshake the
 * session knows nothing from before it (LHLO again).
 */
static void
cmd_starttls(struct lmtp_session *s, const char *args)
{
	if (!s->tls_offer) {
		lmtp_reply(s, "502 5.5.1 STARTTLS not available");
		return;
	}
	if (s->tls_active) {
		lmtp_reply(s, "503 5.5.1 TLS already active");
		return;
	}
	if (*args != '\0') {
		lmtp_reply(s, "501 5.5.4 Syntax: STARTTLS");
		return;
	}
	if (s->have_mail) {
		lmtp_reply(s, "503 5.5.1 STARTTLS not allowed in a transaction");
		return;
	}
	if (evbuffer_get_length(s->in) > 0) {
		log_warn("session=%s command pipelined after STARTTLS: refused", s->id);
		lmtp_reply(s, "554 5.5.1 Error: command pipelined after STARTTLS");
		lmtp_session_close(s);
		return;
	}
	lmtp_reply(s, "220 2.0.0 Ready to start TLS");
	if (s->io->starttls == NULL || s->io->starttls(s->io_ctx) < 0) {
		log_err("session=%s STARTTLS could not be set up", s->id);
		lmtp_session_close(s);
		return;
	}
	lmtp_tx_reset(s);
	s->lhlo_done = false;
	s->lhlo[0] = '\0';
	s->tls_active = true;
}

/* lmtp_tls = required: only these before STARTTLS (RFC 3207 section 4). */
static bool
allowed_before_tls(enum lmtp_verb v)
{
	return v == LMTP_VERB_LHLO || v == LMTP_VERB_HELO || v == LMTP_VERB_EHLO ||
	       v == LMTP_VERB_NOOP || v == LMTP_VERB_RSET || v == LMTP_VERB_QUIT ||
	       v == LMTP_VERB_STARTTLS;
}

static void
cmd_mail(struct lmtp_session *s, const char *args)
{
	struct lmtp_mail_args m;
	const char *reply;

	if (!s->lhlo_done) {
		lmtp_reply(s, "503 5.5.1 Send LHLO first");
		return;
	}
	if (s->have_mail) {
		lmtp_reply(s, "503 5.5.1 Nested MAIL command");
		return;
	}
	if (lmtp_parse_mail(args, &m, &reply) == -1) {
		lmtp_reply(s, "%s", reply);
		return;
	}
	if (m.has_size && s->cfg->max_message_size != 0 &&
	    m.size > s->cfg->max_message_size) {
		lmtp_reply(s, "552 5.3.4 Message size exceeds fixed maximum message size");
		return;
	}
	if (m.utf8 && !m.smtputf8) {
		lmtp_reply(s, "553 5.6.7 Non-ASCII sender address needs SMTPUTF8");
		return;
	}
	s->have_mail = true;
	s->smtputf8 = m.smtputf8;
	s->sender = xstrdup(m.address);
	lmtp_reply(s, "250 2.1.0 Ok");
}

static void
cmd_rcpt(struct lmtp_session *s, const char *args)
{
	struct lmtp_rcpt_args r;
	const char *reply;

	if (!s->have_mail) {
		lmtp_reply(s, "503 5.5.1 Need MAIL before RCPT");
		return;
	}
	if (s->used_bdat) {
		lmtp_reply(s, "503 5.5.1 RCPT not allowed after BDAT");
		return;
	}
	if (lmtp_parse_rcpt(args, &r, &reply) == -1) {
		lmtp_reply(s, "%s", reply);
		return;
	}
	if (r.utf8 && !s->smtputf8) {
		lmtp_reply(s, "553 5.6.7 Non-ASCII recipient address needs SMTPUTF8");
		return;
	}
	if (s->cfg->max_recipients != 0 && s->n_rcpts >= s->cfg->max_recipients) {
		lmtp_reply(s, "452 4.5.3 Too many recipients");
		return;
	}
	s->rcpt_cookie++;
	memcpy(s->pending_rcpt, r.address, sizeof(s->pending_rcpt));
	s->phase = LMTP_PHASE_WAIT_RCPT;
	if (s->be->rcpt(s->be_ctx, s, s->rcpt_cookie, r.address) == -1) {
		s->phase = LMTP_PHASE_CMD;
		log_warn("session=%s rcpt look-up could not be sent", s->id);
		lmtp_reply(s, "451 4.3.0 Temporary lookup failure");
	}
}

static void
rcpt_add(struct lmtp_session *s, const char *address)
{
	struct lmtp_rcpt *r;

	if (s->n_rcpts == s->cap_rcpts) {
		s->cap_rcpts = s->cap_rcpts ? s->cap_rcpts * 2 : 8;
		s->rcpts = xrealloc(s->rcpts, s->cap_rcpts * sizeof(*s->rcpts));
	}
	r = &s->rcpts[s->n_rcpts++];
	memset(r, 0, sizeof(*r));
	r->address = xstrdup(address);
}

void
lmtp_session_rcpt_done(struct lmtp_session *s, uint32_t cookie,
		       const struct dlv_result *res)
{
	struct dlv_result r;

	if (s->phase != LMTP_PHASE_WAIT_RCPT || cookie != s->rcpt_cookie) {
		log_warn("session=%s unexpected rcpt result", s->id);
		return;
	}
	lmtp_result_norm(res, &r);
	s->phase = LMTP_PHASE_CMD;
	if (r.status == DLV_OK)
		rcpt_add(s, s->pending_rcpt);
	if (r.enhanced[0] != '\0')
		lmtp_reply(s, "%u %s %s", r.code, r.enhanced, r.text);
	else
		lmtp_reply(s, "%u %s", r.code, r.text);
	lmtp_session_run(s);
}

/* Refusal common to DATA and BDAT, or NULL if a body may come. */
static const char *
body_refusal(const struct lmtp_session *s)
{
	if (!s->have_mail)
		return "503 5.5.1 Need MAIL command";
	if (s->n_rcpts == 0)
		return "503 5.5.1 No valid recipients";
	return NULL;
}

static void
cmd_data(struct lmtp_session *s, const char *args)
{
	const char *refusal = body_refusal(s);

	if (refusal != NULL) {
		lmtp_reply(s, "%s", refusal);
		return;
	}
	if (s->used_bdat) {
		lmtp_reply(s, "503 5.5.1 DATA not allowed after BDAT");
		return;
	}
	if (*args != '\0') {
		lmtp_reply(s, "501 5.5.4 Syntax: DATA");
		return;
	}
	if (lmtp_spool_open(&s->spool) == -1) {
		log_err("session=%s memfd_create: %s", s->id, strerrordesc_np(errno));
		lmtp_reply(s, "451 4.3.0 Temporary failure, try again later");
		return;
	}
	lmtp_dec_init(&s->dec, LMTP_DEC_DATA, s->cfg->max_message_size,
		      s->cfg->max_line_length);
	s->phase = LMTP_PHASE_DATA;
	lmtp_reply(s, "354 Start mail input; end with <CRLF>.<CRLF>");
}

static void
cmd_bdat(struct lmtp_session *s, const char *args)
{
	uint64_t size;
	bool last;

	if (lmtp_parse_bdat(args, &size, &last) == -1) {
		/* the chunk size is unknown: no way to find the next command */
		lmtp_reply(s, "501 5.5.4 Syntax: BDAT size [LAST]");
		lmtp_session_close(s);
		return;
	}
	s->bdat_size = size;
	s->bdat_left = size;
	s->bdat_last = last;
	s->bdat_reply = body_refusal(s);
	s->phase = LMTP_PHASE_BDAT;
	if (s->bdat_reply != NULL || s->spool != NULL)
		return;  /* refused, or a later chunk of an accepted body */
	if (lmtp_spool_open(&s->spool) == -1) {
		log_err("session=%s memfd_create: %s", s->id, strerrordesc_np(errno));
		s->bdat_reply = "451 4.3.0 Temporary failure, try again later";
		s->bdat_reset = true;
		return;
	}
	lmtp_dec_init(&s->dec, LMTP_DEC_BDAT, s->cfg->max_message_size,
		      s->cfg->max_line_length);
	s->used_bdat = true;
}

void
lmtp_cmd_line(struct lmtp_session *s, const char *line)
{
	const char *args;
	enum lmtp_verb v = lmtp_parse_verb(line, &args);

	if (s->tls_required && !s->tls_active && !allowed_before_tls(v)) {
		lmtp_reply(s, "530 5.7.0 Must issue a STARTTLS command first");
		return;
	}
	switch (v) {
	case LMTP_VERB_LHLO:
		cmd_lhlo(s, args);
		break;
	case LMTP_VERB_HELO:
	case LMTP_VERB_EHLO:
		lmtp_reply(s, "500 5.5.1 use LHLO (this is LMTP)");
		break;
	case LMTP_VERB_MAIL:
		cmd_mail(s, args);
		break;
	case LMTP_VERB_RCPT:
		cmd_rcpt(s, args);
		break;
	case LMTP_VERB_DATA:
		cmd_data(s, args);
		break;
	case LMTP_VERB_BDAT:
		cmd_bdat(s, args);
		break;
	case LMTP_VERB_RSET:
		if (*args != '\0') {
			lmtp_reply(s, "501 5.5.4 Syntax: RSET");
			break;
		}
		lmtp_tx_reset(s);
		lmtp_reply(s, "250 2.0.0 Ok");
		break;
	case LMTP_VERB_NOOP:
		lmtp_reply(s, "250 2.0.0 Ok");
		break;
	case LMTP_VERB_QUIT:
		lmtp_reply(s, "221 2.0.0 %s closing connection", s->cfg->host);
		lmtp_session_close(s);
		break;
	case LMTP_VERB_VRFY:
		lmtp_reply(s, "252 2.5.2 Cannot VRFY user, but will accept message "
			   "and attempt delivery");
		break;
	case LMTP_VERB_STARTTLS:
		cmd_starttls(s, args);
		break;
	case LMTP_VERB_UNKNOWN:
	default:
		lmtp_reply(s, "500 5.5.2 Command not recognized");
		break;
	}
}
