/* SPDX-License-Identifier: MIT */
/*
 * repl-hook/conn_send.c - what a replica connection writes: journal entries
 * from the cursor, sync.c's direct commands and their literals (streamed
 * from the journal or a body fd in CONN_CHUNK pieces), within the window
 * the greeting allowed; and the start of sync.c once the journal is
 * drained.
 *
 * Split-of: hook_conn - one replica connection (struct hook_conn in
 *           core_int.h) split by concern: conn.c (life cycle, libevent
 *           callbacks), conn_send.c (what goes out), conn_reply.c (what
 *           comes back); each drives the others on the same state.  Layers
 *           above (sync, events) are told through r->h->notify only.
 * Runs in:  repl-hook.  Syscalls: pread on the journal and on body fds,
 *           fcntl (dup of a body fd), close; the socket through libevent.
 * Trust:    journal entries were checked when read (journal.c); an entry
 *           whose origin or peer is the replica itself is not sent back.
 * Order:    a journal entry is sent once it is written (the caller kicks
 *           before the fsync, which overlaps the replica's work; hook.c
 *           answers an event only after it); direct commands go before journal
 *           entries, at most CONN_MAX_DIRECT_INFLIGHT at a time; a literal
 *           is written whole before the next command.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "privsep/privsep.h"
#include "repl-hook/core_int.h"

/* Write the next chunk of the literal being streamed, then its CRLF. */
static int
stream_chunk(struct hook_conn *c)
{
	static unsigned char buf[CONN_CHUNK];
	size_t want = c->stream_left > CONN_CHUNK ? CONN_CHUNK : (size_t)c->stream_left;
	ssize_t n;

	do
		n = pread(c->stream_fd, buf, want, (off_t)c->stream_off);
	while (n == -1 && errno == EINTR);
	if (n <= 0) {
		log_err("replica=%s cannot read a literal: %s", c->r->cfg->name,
			n == 0 ? "short file" : strerrordesc_np(errno));
		return -1;
	}
	if (bufferevent_write(c->bev, buf, (size_t)n) == -1)
		return -1;
	c->stream_off += (uint64_t)n;
	c->stream_left -= (uint64_t)n;
	if (c->stream_left == 0) {
		if (c->stream_own)
			close(c->stream_fd);
		c->stream_fd = -1;
		c->stream_own = false;
		return bufferevent_write(c->bev, "\r\n", 2);
	}
	return 0;
}

static void
stream_begin(struct hook_conn *c, int fd, bool own, uint64_t off, uint64_t len)
{
	c->stream_fd = fd;
	c->stream_own = own;
	c->stream_off = off;
	c->stream_left = len;
	if (len == 0) {
		if (own)
			close(fd);
		c->stream_fd = -1;
		c->stream_own = false;
		(void)bufferevent_write(c->bev, "\r\n", 2);
	}
}

static int
send_direct(struct hook_conn *c)
{
	struct dcmd *d = TAILQ_FIRST(&c->dqueue);
	char tag[32];
	int fd;

	TAILQ_REMOVE(&c->dqueue, d, entry);
	c->n_dqueued--;
	snprintf(tag, sizeof(tag), "s%llu ", (unsigned long long)d->n);
	if (bufferevent_write(c->bev, tag, strlen(tag)) == -1 ||
	    bufferevent_write(c->bev, d->line, d->line_len) == -1 ||
	    bufferevent_write(c->bev, "\r\n", 2) == -1) {
		TAILQ_INSERT_HEAD(&c->dqueue, d, entry);
		c->n_dqueued++;
		return -1;
	}
	TAILQ_INSERT_TAIL(&c->dsent, d, entry);
	c->inflight++;
	c->direct_inflight++;
	if (d->body_fd != -1) {
		fd = d->body_fd;
		d->body_fd = -1;
		stream_begin(c, fd, true, 0, d->body_size);
	}
	return 0;
}

/* Advance the acked offset over the answered prefix of sent entries. */
void
hook_conn_advance_acked(struct hook_conn *c)
{
	struct jsent *s;

	while ((s = TAILQ_FIRST(&c->jsent)) != NULL && s->answered) {
		TAILQ_REMOVE(&c->jsent, s, entry);
		c->n_jsent--;
		free(s);
	}
	journal_set_acked(c->r->j, s != NULL ? s->off : c->cursor);
}

/* The entry at the cursor is not to be sent: skip it as acknowledged. */
static void
skip_entry(struct hook_conn *c, const char *why)
{
	log_debug("replica=%s seq=%llu not sent: %s", c->r->cfg->name,
		  (unsigned long long)c->je.seq, why);
	c->cursor = c->je.next_off;
	hook_conn_advance_acked(c);
}

/* Send the journal entry at the cursor.  Returns 1 sent or skipped, 0
 * nothing to send, -1 error (connection to be closed). */
static int
send_journal(struct hook_conn *c)
{
	struct hook_replica *r = c->r;
	struct journal_entry *e = &c->je;
	struct jsent *s;
	char tag[32];

	if (journal_read(r->j, c->cursor, e) == -1) {
		if (errno == ENODATA)
			return 0;
		log_err("replica=%s journal unreadable at %llu: %s", r->cfg->name,
			(unsigned long long)c->cursor, strerrordesc_np(errno));
		return -1;
	}
	if (r->server_id[0] != '\0' && (strcmp(e->origin, r->server_id) == 0 ||
					strcmp(e->peer, r->server_id) == 0)) {
		skip_entry(c, "the replica is the event's origin or peer");
		return 1;
	}
	if (e->literal_len > c->maxliteral) {
		log_err("replica=%s user=%s mailbox=%s seq=%llu message of %llu "
			"octets exceeds the replica's MAXLITERAL; mailbox marked for "
			"sync", r->cfg->name, e->user, e->mailbox,
			(unsigned long long)e->seq, (unsigned long long)e->literal_len);
		r->h->notify->mark_dirty(r, e->user, e->mailbox);
		skip_entry(c, "too big");
		return 1;
	}
	snprintf(tag, sizeof(tag), "j%llu ", (unsigned long long)e->seq);
	if (bufferevent_write(c->bev, tag, strlen(tag)) == -1 ||
	    bufferevent_write(c->bev, e->line, e->line_len) == -1 ||
	    bufferevent_write(c->bev, "\r\n", 2) == -1)
		return -1;
	s = xcalloc(1, sizeof(*s));
	s->seq = e->seq;
	s->off = e->off;
	s->next_off = e->next_off;
	s->sent_ms = hook_now_ms();
	c->r->n_sent++;
	xstrlcpy(s->user, e->user, sizeof(s->user));
	xstrlcpy(s->mailbox, e->mailbox, sizeof(s->mailbox));
	TAILQ_INSERT_TAIL(&c->jsent, s, entry);
	c->n_jsent++;
	c->inflight++;
	c->cursor = e->next_off;
	c->drained_told = false;
	if (e->line_len > 0 && e->line[e->line_len - 1] == '}')
		stream_begin(c, journal_fd(r->j), false, e->literal_off, e->literal_len);
	return 1;
}

/* Connected, journal drained: let sync.c run. */
void
hook_conn_maybe_sync(struct hook_conn *c)
{
	struct hook_replica *r = c->r;
	bool full;

	if (c->state != C_READY || c->drained_told || !TAILQ_EMPTY(&c->jsent) ||
	    c->cursor != journal_size(r->j) || r->h->stopping)
		return;
	hook_conn_flush_acked(r, false);
	if (journal_acked(r->j) != journal_size(r->j))
		return;
	c->drained_told = true;
	r->backoff_ms = hook_conn_backoff_min_ms();
	if (r->h->notify->sync_running(r))
		return;
	full = r->full_due;
	r->full_due = false;
	r->full_running = full;
	if (full && r->h->set->replication_full_sync_interval > 0) {
		uint64_t ms = r->h->set->replication_full_sync_interval;
		struct timeval tv = { (time_t)(ms / 1000u), (suseconds_t)(ms % 1000u) * 1000 };

		evtimer_add(r->ev_full, &tv);
	}
	r->h->notify->sync_start(r, full);
}

void
hook_conn_fill(struct hook_conn *c)
{
	struct evbuffer *out;
	int rc;

	if (c->dead || c->bev == NULL)
		return;
	out = bufferevent_get_output(c->bev);
	while (!c->dead && evbuffer_get_length(out) < CONN_OUT_HIGH) {
		if (c->stream_left > 0) {
			if (stream_chunk(c) == -1)
				goto fail;
			continue;
		}
		if (c->state != C_READY || c->inflight >= c->maxinflight)
			break;
		if (!TAILQ_EMPTY(&c->dqueue) &&
		    c->direct_inflight < CONN_MAX_DIRECT_INFLIGHT) {
			if (send_direct(c) == -1)
				goto fail;
			continue;
		}
		if (c->n_jsent >= CONN_MAX_JOURNAL_TRACK)
			break;
		rc = send_journal(c);
		if (rc == -1)
			goto fail;
		if (rc == 0)
			break;
	}
	hook_conn_maybe_sync(c);
	return;
fail:
	c->dead = true;
}

int
hook_replica_send(struct hook_replica *r, const struct psep_repl_cmd *cmd,
		  int body_fd, uint64_t body_size, hook_reply_cb cb, void *arg)
{
	struct hook_conn *c = r->conn;
	struct dcmd *d;

	if (c == NULL || c->state != C_READY || c->dead) {
		errno = ENOTCONN;
		return -1;
	}
	if (c->n_dqueued >= CONN_MAX_DIRECT_QUEUED) {
		errno = ENOBUFS;
		return -1;
	}
	d = xcalloc(1, sizeof(*d));
	d->body_fd = -1;
	d->line_len = repl_fmt_command(d->line, sizeof(d->line) - 24, cmd,
				       body_fd >= 0 ? body_size : 0);
	if (d->line_len == 0 ||
	    (body_fd >= 0 && (d->body_fd = fcntl(body_fd, F_DUPFD_CLOEXEC, 3)) == -1)) {
		if (d->line_len == 0)
			errno = EINVAL;
		free(d);
		return -1;
	}
	d->body_size = body_size;
	d->cb = cb;
	d->arg = arg;
	d->n = ++c->next_direct;
	TAILQ_INSERT_TAIL(&c->dqueue, d, entry);
	c->n_dqueued++;
	hook_conn_kick(r);
	return 0;
}

