/* SPDX-License-Identifier: MIT */
/*
 * repl-hook/conn_reply.c - what a replica connection reads, one frame at a
 * time: the greeting (answered with HELLO), the HELLO reply, tagged replies
 * to journal entries (jN), direct commands (sN) and NOOPs (nN), data lines
 * for direct commands, untagged BYE/BAD.
 *
 * Split-of: hook_conn - one replica connection (struct hook_conn in
 *           core_int.h) split by concern: conn.c (life cycle, libevent
 *           callbacks), conn_send.c (what goes out), conn_reply.c (what
 *           comes back); each drives the others on the same state.  Layers
 *           above (sync, events) are told through r->h->notify only.
 * Runs in:  repl-hook.  No syscall of its own (the socket is written
 *           through libevent).
 * Trust:    every line is untrusted: framed by repl_framer, parsed by
 *           repl_parse_response; an invalid line, a refused HELLO, a replica
 *           with this server's own id or a BYE closes the connection.
 * Order:    a journal entry counts as acknowledged only on OK; a temporary
 *           NO (UNAVAILABLE, OVERQUOTA, CORRUPTION, SERVERBUG) closes the
 *           connection so the entry is resent from the acked offset, after
 *           the reconnect backoff; the CONN_TEMP_NO_MAX-th temporary NO in
 *           a row to the same entry (counted in its hook_replica across
 *           reconnects, restarted by an answer to it or a temporary NO to
 *           another entry) does not close it: the entry is poisoned and
 *           handled like any other NO or BAD, which drops it, marks its
 *           mailbox for sync and lets the acked offset pass it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/bufferevent.h>

#include "privsep/privsep.h"
#include "repl-hook/core_int.h"

static bool
code_is(const char *code, const char *name)
{
	size_t n = strlen(name);

	return strncmp(code, name, n) == 0 && (code[n] == '\0' || code[n] == ' ');
}

static bool
temporary_no(const char *code)
{
	return code_is(code, "UNAVAILABLE") || code_is(code, "OVERQUOTA") ||
	       code_is(code, "CORRUPTION") || code_is(code, "SERVERBUG");
}

/*
 * A temporary NO to the entry seq: count it (one more for the same entry,
 * the first for another).  Returns whether the entry is poisoned: it got
 * CONN_TEMP_NO_MAX of them in a row.
 */
static bool
temp_no_poisoned(struct hook_replica *r, uint64_t seq)
{
	if (r->temp_seq != seq) {
		r->temp_seq = seq;
		r->temp_failures = 0;
	}
	return ++r->temp_failures >= CONN_TEMP_NO_MAX;
}

static void
journal_reply(struct hook_conn *c, const struct repl_response *rp, uint64_t seq)
{
	struct hook_replica *r = c->r;
	struct jsent *s;
	unsigned tries = 0;

	TAILQ_FOREACH(s, &c->jsent, entry)
		if (s->seq == seq && !s->answered)
			break;
	if (s == NULL) {
		log_warn("replica=%s reply for unknown tag j%llu", r->cfg->name,
			 (unsigned long long)seq);
		return;
	}
	if (rp->status == PSEP_RS_NO && temporary_no(rp->code)) {
		if (!temp_no_poisoned(r, seq)) {
			log_warn("replica=%s user=%s mailbox=%s seq=%llu NO [%s] %s: "
				 "retrying later", r->cfg->name, s->user, s->mailbox,
				 (unsigned long long)seq, rp->code, rp->text);
			c->temp_failure = true;
			c->dead = true;
			return;
		}
		tries = r->temp_failures;
	}
	if (r->temp_seq == seq) {
		r->temp_seq = 0;
		r->temp_failures = 0;
	}
	s->answered = true;
	c->inflight--;
	if (rp->status == PSEP_RS_OK) {
		r->n_acks++;
		psep_histogram_add(&r->ack_lat, (hook_now_ms() - s->sent_ms) * 1000u);
		if (code_is(rp->code, "NONEXISTENT"))
			r->h->notify->mark_dirty(r, s->user, s->mailbox);
		r->h->notify->event_acked(r->h, r, seq);
	} else if (tries > 0) {
		log_err("replica=%s user=%s mailbox=%s seq=%llu NO [%s] %s: dropped "
			"after %u temporary failures, mailbox marked for sync",
			r->cfg->name, s->user, s->mailbox, (unsigned long long)seq,
			rp->code, rp->text, tries);
		r->h->notify->mark_dirty(r, s->user, s->mailbox);
	} else {
		log_err("replica=%s user=%s mailbox=%s seq=%llu %s [%s] %s: dropped, "
			"mailbox marked for sync", r->cfg->name, s->user, s->mailbox,
			(unsigned long long)seq, rp->status == PSEP_RS_NO ? "NO" : "BAD",
			rp->code, rp->text);
		r->h->notify->mark_dirty(r, s->user, s->mailbox);
	}
	hook_conn_advance_acked(c);
}

static struct dcmd *
direct_find(struct hook_conn *c, const char *tag)
{
	struct dcmd *d;
	char t[32];

	TAILQ_FOREACH(d, &c->dsent, entry) {
		snprintf(t, sizeof(t), "s%llu", (unsigned long long)d->n);
		if (strcmp(t, tag) == 0)
			return d;
	}
	return NULL;
}

static void
hello_reply(struct hook_conn *c, const struct repl_response *rp)
{
	struct hook_replica *r = c->r;
	struct timeval rt = { CONN_READ_TIMEOUT_S, 0 };
	struct timeval wt = { CONN_WRITE_TIMEOUT_S, 0 };

	if (rp->status != PSEP_RS_OK) {
		log_err("replica=%s HELLO refused: [%s] %s", r->cfg->name, rp->code,
			rp->text);
		c->dead = true;
		return;
	}
	c->state = C_READY;
	c->inflight--;
	bufferevent_set_timeouts(c->bev, &rt, &wt);
	log_info("replica=%s server_id=%s connected, journal %llu octets to send",
		 r->cfg->name, r->server_id,
		 (unsigned long long)(journal_size(r->j) - c->cursor));
}

static void
tagged_reply(struct hook_conn *c, const struct repl_response *rp)
{
	struct dcmd *d;
	char *end;
	unsigned long long seq;

	if (c->state == C_HELLO && strcmp(rp->tag, "h1") == 0) {
		hello_reply(c, rp);
		return;
	}
	if (c->state != C_READY)
		goto unknown;
	if (rp->tag[0] == 'n') {
		if (c->inflight > 0)
			c->inflight--;
		return;
	}
	if (rp->tag[0] == 'j') {
		errno = 0;
		seq = strtoull(rp->tag + 1, &end, 10);
		if (errno != 0 || *end != '\0' || end == rp->tag + 1)
			goto unknown;
		journal_reply(c, rp, seq);
		return;
	}
	if (rp->tag[0] == 's' && (d = direct_find(c, rp->tag)) != NULL) {
		TAILQ_REMOVE(&c->dsent, d, entry);
		c->inflight--;
		c->direct_inflight--;
		d->cb(c->r, rp, &c->frame, d->arg);
		hook_dcmd_free(d);
		return;
	}
unknown:
	log_warn("replica=%s unexpected reply tag=%s", c->r->cfg->name, rp->tag);
}

static void
greeting(struct hook_conn *c, const struct repl_response *rp)
{
	struct hook_replica *r = c->r;
	char line[REPL_MAXLINE], id[PSEP_ID_MAX * 2 + 4];

	/* the greeting may be read before the deferred CONNECTED event ran */
	if (c->state != C_GREETING && c->state != C_CONNECTING) {
		log_warn("replica=%s unexpected greeting", r->cfg->name);
		c->dead = true;
		return;
	}
	if (!rp->version1) {
		log_err("replica=%s does not offer protocol version 1", r->cfg->name);
		c->dead = true;
		return;
	}
	if (strcmp(rp->server_id, hook_server_id(r->h)) == 0) {
		log_err("replica=%s has this server's own id %s", r->cfg->name,
			rp->server_id);
		c->dead = true;
		return;
	}
	hook_replica_set_server_id(r, rp->server_id);
	c->maxinflight = rp->maxinflight == 0 ? 1 :
		rp->maxinflight < REPL_MAXINFLIGHT ? (uint32_t)rp->maxinflight :
		REPL_MAXINFLIGHT;
	c->maxliteral = rp->maxliteral;
	if (repl_fmt_astring(id, sizeof(id), hook_server_id(r->h)) == 0) {
		c->dead = true;
		return;
	}
	snprintf(line, sizeof(line), "h1 HELLO %u %s\r\n", REPL_VERSION, id);
	if (bufferevent_write(c->bev, line, strlen(line)) == -1) {
		c->dead = true;
		return;
	}
	c->inflight++;
	c->state = C_HELLO;
}

static void
data_line(struct hook_conn *c, const struct repl_response *rp)
{
	struct dcmd *d = c->state == C_READY ? direct_find(c, rp->tag) : NULL;

	if (d == NULL) {
		log_debug("replica=%s data for tag=%s ignored", c->r->cfg->name, rp->tag);
		return;
	}
	d->cb(c->r, rp, &c->frame, d->arg);
	c->frame.literal_fd = -1;      /* the callee owns it now */
}

void
hook_conn_frame(struct hook_conn *c)
{
	struct repl_response rp;
	const char *name = c->r->cfg->name;

	if (c->frame.toolong || c->frame.bad_eol ||
	    repl_parse_response(c->frame.line, &rp) == -1) {
		log_warn("replica=%s invalid response line, closing", name);
		c->dead = true;
		return;
	}
	switch (rp.kind) {
	case REPL_R_GREETING:
		greeting(c, &rp);
		break;
	case REPL_R_TAGGED:
		tagged_reply(c, &rp);
		break;
	case REPL_R_DATA:
		data_line(c, &rp);
		break;
	case REPL_R_UNTAGGED:
		if (rp.bye) {
			log_info("replica=%s BYE [%s] %s", name, rp.code, rp.text);
			snprintf(c->r->last_error, sizeof(c->r->last_error), "BYE [%.40s] %.60s",
				 rp.code, rp.text);
			c->dead = true;
		} else {
			log_warn("replica=%s * BAD [%s] %s", name, rp.code, rp.text);
		}
		break;
	default:
		c->dead = true;
		break;
	}
}

