/* SPDX-License-Identifier: MIT */
/*
 * repl-hook/conn.c - one outgoing TLS connection per replica: connect with
 * backoff, greeting and HELLO, then the journal streamed in order (up to
 * REPL_MAXINFLIGHT commands in flight, shared with sync.c's direct
 * commands), replies handled as doc/replication-protocol.md §10.3 says.
 *
 * Runs in:  repl-hook.  Syscalls: socket, connect, getsockopt (connect
 *           result), setsockopt (libevent: TCP_NODELAY is not set; none),
 *           read/write/readv/writev on the socket, pread on the journal and
 *           on body fds, fcntl (dup), close.  A replica host that is not an
 *           IP literal is resolved with a blocking getaddrinfo (which needs
 *           /etc/hosts, /etc/resolv.conf, nsswitch and a UDP/TCP socket to
 *           the resolver); numeric hosts need nothing of that.
 * Trust:    replica responses are untrusted: framed by repl_framer (bounded
 *           lines, literals into memfds), parsed by repl_parse_response; a
 *           framing or parse error closes the connection (reconnect).
 * Order:    a journal entry is sent only after it is durable; the acked
 *           offset advances only over a prefix of entries that all got a
 *           final reply; a temporary NO closes the connection, so the entry
 *           and everything after it are resent from the acked offset.
 */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <fcntl.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>

#include "privsep/privsep.h"
#include "privsep/tls.h"
#include "repl-hook/core_int.h"

#define CONN_BACKOFF_MIN_MS 1000u
#define CONN_BACKOFF_MAX_MS 30000u
#define CONN_BACKOFF_TEMP_MAX_MS 300000u  /* after a temporary NO (§10.3) */
#define CONN_CONNECT_TIMEOUT_S 30
#define CONN_READ_TIMEOUT_S 180
#define CONN_WRITE_TIMEOUT_S 120
#define CONN_NOOP_S 60
#define CONN_OUT_HIGH (1024u * 1024u)     /* stop filling the output here */
#define CONN_OUT_LOW (256u * 1024u)       /* refill below this */
#define CONN_CHUNK 65536u
#define CONN_MAX_DIRECT_INFLIGHT 32u
#define CONN_MAX_DIRECT_QUEUED 1024u
#define CONN_MAX_JOURNAL_TRACK 1024u      /* answered + unanswered entries */
#define CONN_ACK_FLUSH_MS 1000u

enum conn_state {
	C_CONNECTING = 0,
	C_GREETING,
	C_HELLO,
	C_READY,
};

/* A journal entry sent on this connection, in journal order. */
struct jsent {
	TAILQ_ENTRY(jsent) entry;
	uint64_t seq;
	uint64_t off, next_off;
	bool answered;
	char user[PSEP_NAME_MAX];
	char mailbox[PSEP_NAME_MAX];
};

/* A direct command of sync.c. */
struct dcmd {
	TAILQ_ENTRY(dcmd) entry;
	uint64_t n;
	char line[REPL_MAXLINE];
	size_t line_len;
	int body_fd;                   /* dup, closed when sent or dropped */
	uint64_t body_size;
	hook_reply_cb cb;
	void *arg;
};

TAILQ_HEAD(jsent_list, jsent);
TAILQ_HEAD(dcmd_list, dcmd);

struct hook_conn {
	struct hook_replica *r;
	struct bufferevent *bev;
	struct event *ev_noop;
	struct repl_framer *framer;
	enum conn_state state;
	bool dead;                     /* closed inside a callback: free later */
	unsigned busy;                 /* callbacks running on this connection */
	bool temp_failure;
	bool drained_told;
	uint32_t maxinflight;
	uint64_t maxliteral;
	uint32_t inflight;             /* unanswered commands */
	uint32_t direct_inflight;
	size_t n_jsent;
	size_t n_dqueued;
	uint64_t cursor;               /* next journal offset to send */
	uint64_t next_direct;
	uint64_t next_noop;
	struct jsent_list jsent;
	struct dcmd_list dqueue;       /* not sent yet */
	struct dcmd_list dsent;
	/* literal being written */
	int stream_fd;
	bool stream_own;
	uint64_t stream_off, stream_left;
	struct repl_frame frame;
	struct journal_entry je;
};

static void conn_read_cb(struct bufferevent *bev, void *arg);
static void conn_write_cb(struct bufferevent *bev, void *arg);
static void conn_event_cb(struct bufferevent *bev, short what, void *arg);
static void conn_fill(struct hook_conn *c);

/* ---- lifetime --------------------------------------------------------- */

static void
retry_schedule(struct hook_replica *r, bool temp)
{
	uint64_t cap = temp ? CONN_BACKOFF_TEMP_MAX_MS : CONN_BACKOFF_MAX_MS;
	struct timeval tv;

	if (r->h->stopping)
		return;
	if (r->backoff_ms < CONN_BACKOFF_MIN_MS)
		r->backoff_ms = CONN_BACKOFF_MIN_MS;
	tv.tv_sec = (time_t)(r->backoff_ms / 1000u);
	tv.tv_usec = (suseconds_t)(r->backoff_ms % 1000u) * 1000;
	evtimer_add(r->ev_retry, &tv);
	log_debug("replica=%s reconnect in %llu ms", r->cfg->name,
		  (unsigned long long)r->backoff_ms);
	r->backoff_ms = r->backoff_ms * 2 > cap ? cap : r->backoff_ms * 2;
}

static void
flush_acked(struct hook_replica *r, bool force)
{
	struct hook_conn *c = r->conn;
	bool trunc = false;
	uint64_t now = hook_now_ms();

	if (!force && journal_acked(r->j) != journal_size(r->j) &&
	    now - r->last_ack_flush_ms < CONN_ACK_FLUSH_MS)
		return;
	r->last_ack_flush_ms = now;
	if (journal_flush_acked(r->j, &trunc) == -1) {
		log_err("replica=%s journal: cannot record the acked offset: %s",
			r->cfg->name, strerrordesc_np(errno));
		return;
	}
	if (trunc) {
		r->overflow_logged = false;
		if (c != NULL)
			c->cursor = 0;
	}
}

static void
dcmd_free(struct dcmd *d)
{
	if (d->body_fd != -1)
		close(d->body_fd);
	free(d);
}

/* Tell sync.c about every direct command that will get no reply. */
static void
fail_direct(struct hook_replica *r, struct dcmd_list *l)
{
	struct dcmd *d;

	while ((d = TAILQ_FIRST(l)) != NULL) {
		TAILQ_REMOVE(l, d, entry);
		d->cb(r, NULL, NULL, d->arg);
		dcmd_free(d);
	}
}

/* Free the connection; the in-flight journal entries are resent on the
 * next one (from the acked offset). */
static void
conn_free(struct hook_conn *c)
{
	struct hook_replica *r = c->r;
	struct dcmd_list sent, queued;
	struct jsent *s;
	bool was_ready = c->state == C_READY;

	r->conn = NULL;
	while ((s = TAILQ_FIRST(&c->jsent)) != NULL) {
		TAILQ_REMOVE(&c->jsent, s, entry);
		free(s);
	}
	TAILQ_INIT(&sent);
	TAILQ_INIT(&queued);
	TAILQ_CONCAT(&sent, &c->dsent, entry);
	TAILQ_CONCAT(&queued, &c->dqueue, entry);
	if (c->stream_own && c->stream_fd != -1)
		close(c->stream_fd);
	if (c->bev != NULL)
		bufferevent_free(c->bev);
	if (c->ev_noop != NULL)
		event_free(c->ev_noop);
	repl_framer_free(&c->framer);
	if (c->frame.literal_fd != -1)
		close(c->frame.literal_fd);
	free(c);
	flush_acked(r, true);
	fail_direct(r, &sent);
	fail_direct(r, &queued);
	if (was_ready) {
		if (hook_sync_running(r) && r->full_running)
			r->full_due = true;
		hook_sync_abort(r);
	}
}

/* Close after an error; reconnect after backoff. */
static void
conn_fail(struct hook_conn *c, bool temp)
{
	struct hook_replica *r = c->r;

	conn_free(c);
	retry_schedule(r, temp);
}

/* ---- connecting ------------------------------------------------------- */

static struct addrinfo *
resolve(const struct policy_replica *cfg)
{
	struct addrinfo hints, *res = NULL;
	char port[8];
	int rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
	snprintf(port, sizeof(port), "%u", (unsigned)cfg->port);
	if (getaddrinfo(cfg->host, port, &hints, &res) == 0)
		return res;
	/* a host name: blocking look-up (documented in the header) */
	hints.ai_flags = AI_NUMERICSERV;
	rc = getaddrinfo(cfg->host, port, &hints, &res);
	if (rc != 0) {
		log_warn("replica=%s host=%s cannot resolve: %s", cfg->name, cfg->host,
			 gai_strerror(rc));
		return NULL;
	}
	return res;
}

static struct hook_conn *
conn_new(struct hook_replica *r)
{
	struct hook_conn *c = xcalloc(1, sizeof(*c));
	const struct policy_settings *set = r->h->set;

	c->r = r;
	c->stream_fd = -1;
	c->frame.literal_fd = -1;
	c->maxinflight = REPL_MAXINFLIGHT;
	c->cursor = journal_acked(r->j);
	TAILQ_INIT(&c->jsent);
	TAILQ_INIT(&c->dqueue);
	TAILQ_INIT(&c->dsent);
	c->framer = repl_framer_new(set->lmtp_max_message_size + REPL_LITERAL_EXTRA);
	return c;
}

static void
noop_cb(evutil_socket_t fd, short what, void *arg)
{
	struct hook_conn *c = arg;
	char line[48];

	(void)fd;
	(void)what;
	if (c->state != C_READY || c->inflight > 0 || c->stream_left > 0)
		return;
	snprintf(line, sizeof(line), "n%llu NOOP\r\n",
		 (unsigned long long)++c->next_noop);
	if (bufferevent_write(c->bev, line, strlen(line)) == 0)
		c->inflight++;
}

static int
conn_open(struct hook_conn *c)
{
	struct hook_replica *r = c->r;
	struct addrinfo *ai = resolve(r->cfg);
	struct timeval rt = { CONN_CONNECT_TIMEOUT_S, 0 };
	struct timeval wt = { CONN_WRITE_TIMEOUT_S, 0 };
	struct timeval noop = { CONN_NOOP_S, 0 };
	SSL *ssl = NULL;
	int rc = -1;

	if (ai == NULL || c->framer == NULL)
		goto out;
	if ((ssl = SSL_new(r->h->tls_ctx)) == NULL ||
	    psep_tls_set_peer_name(ssl, r->cfg->host) == -1) {
		log_err("replica=%s host=%s TLS set-up failed", r->cfg->name, r->cfg->host);
		goto out;
	}
	c->bev = bufferevent_openssl_socket_new(hook_event_base(r->h), -1, ssl,
						BUFFEREVENT_SSL_CONNECTING,
						BEV_OPT_CLOSE_ON_FREE |
						BEV_OPT_DEFER_CALLBACKS);
	ssl = NULL;  /* owned by the bufferevent (freed with it) */
	if (c->bev == NULL)
		goto out;
	bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
	bufferevent_setcb(c->bev, conn_read_cb, conn_write_cb, conn_event_cb, c);
	bufferevent_setwatermark(c->bev, EV_WRITE, CONN_OUT_LOW, 0);
	bufferevent_set_timeouts(c->bev, &rt, &wt);
	c->ev_noop = event_new(hook_event_base(r->h), -1, EV_PERSIST, noop_cb, c);
	if (c->ev_noop == NULL || event_add(c->ev_noop, &noop) == -1)
		goto out;
	/* libevent may run the event callback from inside the connect call
	 * (socket creation failed): busy keeps it from freeing c */
	c->busy++;
	rc = bufferevent_socket_connect(c->bev, ai->ai_addr, (int)ai->ai_addrlen);
	c->busy--;
	if (rc == -1 || c->dead) {
		log_warn("replica=%s host=%s port=%u cannot connect", r->cfg->name,
			 r->cfg->host, (unsigned)r->cfg->port);
		rc = -1;
		goto out;
	}
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
out:
	if (ssl != NULL)
		SSL_free(ssl);
	if (ai != NULL)
		freeaddrinfo(ai);
	return rc;
}

void
hook_conn_start(struct hook_replica *r)
{
	struct hook_conn *c;

	if (r->conn != NULL || r->h->stopping)
		return;
	c = conn_new(r);
	r->conn = c;
	c->state = C_CONNECTING;
	log_debug("replica=%s connecting to %s port %u", r->cfg->name, r->cfg->host,
		  (unsigned)r->cfg->port);
	if (conn_open(c) == -1)
		conn_fail(c, false);
}

void
hook_conn_stop(struct hook_replica *r)
{
	evtimer_del(r->ev_retry);
	if (r->conn != NULL)
		conn_free(r->conn);
	flush_acked(r, true);
}

/* ---- sending ---------------------------------------------------------- */

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
static void
advance_acked(struct hook_conn *c)
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
	advance_acked(c);
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
		hook_sync_mark_dirty(r, e->user, e->mailbox);
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
static void
maybe_sync(struct hook_conn *c)
{
	struct hook_replica *r = c->r;
	bool full;

	if (c->state != C_READY || c->drained_told || !TAILQ_EMPTY(&c->jsent) ||
	    c->cursor != journal_size(r->j) || r->h->stopping)
		return;
	flush_acked(r, true);
	if (journal_size(r->j) != 0)
		return;
	c->drained_told = true;
	r->backoff_ms = CONN_BACKOFF_MIN_MS;
	if (hook_sync_running(r))
		return;
	full = r->full_due;
	r->full_due = false;
	r->full_running = full;
	if (full && r->h->set->replication_full_sync_interval > 0) {
		uint64_t ms = r->h->set->replication_full_sync_interval;
		struct timeval tv = { (time_t)(ms / 1000u), (suseconds_t)(ms % 1000u) * 1000 };

		evtimer_add(r->ev_full, &tv);
	}
	hook_sync_start(r, full);
}

static void
conn_fill(struct hook_conn *c)
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
	maybe_sync(c);
	return;
fail:
	c->dead = true;
}

void
hook_conn_kick(struct hook_replica *r)
{
	struct hook_conn *c = r->conn;

	if (c == NULL)
		return;
	c->busy++;
	conn_fill(c);
	c->busy--;
	if (c->dead && c->busy == 0)
		conn_fail(c, false);
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

/* ---- replies ---------------------------------------------------------- */

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

static void
journal_reply(struct hook_conn *c, const struct repl_response *rp, uint64_t seq)
{
	struct hook_replica *r = c->r;
	struct jsent *s;

	TAILQ_FOREACH(s, &c->jsent, entry)
		if (s->seq == seq && !s->answered)
			break;
	if (s == NULL) {
		log_warn("replica=%s reply for unknown tag j%llu", r->cfg->name,
			 (unsigned long long)seq);
		return;
	}
	if (rp->status == PSEP_RS_NO && temporary_no(rp->code)) {
		log_warn("replica=%s user=%s mailbox=%s seq=%llu NO [%s] %s: "
			 "retrying later", r->cfg->name, s->user, s->mailbox,
			 (unsigned long long)seq, rp->code, rp->text);
		c->temp_failure = true;
		c->dead = true;
		return;
	}
	s->answered = true;
	c->inflight--;
	if (rp->status == PSEP_RS_OK) {
		if (code_is(rp->code, "NONEXISTENT"))
			hook_sync_mark_dirty(r, s->user, s->mailbox);
		hook_event_acked(r->h, r, seq);
	} else {
		log_err("replica=%s user=%s mailbox=%s seq=%llu %s [%s] %s: dropped, "
			"mailbox marked for sync", r->cfg->name, s->user, s->mailbox,
			(unsigned long long)seq, rp->status == PSEP_RS_NO ? "NO" : "BAD",
			rp->code, rp->text);
		hook_sync_mark_dirty(r, s->user, s->mailbox);
	}
	advance_acked(c);
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
		dcmd_free(d);
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

static void
handle_frame(struct hook_conn *c)
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

static void
conn_read_cb(struct bufferevent *bev, void *arg)
{
	struct hook_conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	enum repl_frame_result rc = REPL_F_MORE;
	const char *why = NULL;

	c->busy++;
	while (!c->dead &&
	       (rc = repl_framer_next(c->framer, in, &c->frame, &why)) == REPL_F_FRAME) {
		handle_frame(c);
		if (c->frame.literal_fd != -1) {
			close(c->frame.literal_fd);
			c->frame.literal_fd = -1;
		}
	}
	if (!c->dead && rc == REPL_F_FATAL) {
		log_warn("replica=%s framing lost: %s", c->r->cfg->name,
			 why != NULL ? why : "?");
		c->dead = true;
	}
	if (!c->dead) {
		flush_acked(c->r, false);
		conn_fill(c);
	}
	c->busy--;
	if (c->dead)
		conn_fail(c, c->temp_failure);
}

static void
conn_write_cb(struct bufferevent *bev, void *arg)
{
	struct hook_conn *c = arg;

	(void)bev;
	c->busy++;
	conn_fill(c);
	c->busy--;
	if (c->dead)
		conn_fail(c, false);
}

static void
log_conn_error(struct hook_conn *c, short what)
{
	const char *name = c->r->cfg->name;
	unsigned long e;
	char buf[256];
	int err = EVUTIL_SOCKET_ERROR();

	if (what & BEV_EVENT_TIMEOUT) {
		log_warn("replica=%s timeout (%s)", name,
			 c->state == C_READY ? "no reply" : "connect or greeting");
		return;
	}
	if (what & BEV_EVENT_EOF) {
		log_info("replica=%s connection closed by the replica", name);
		return;
	}
	if ((e = bufferevent_get_openssl_error(c->bev)) != 0) {
		ERR_error_string_n(e, buf, sizeof(buf));
		log_warn("replica=%s host=%s TLS: %s", name, c->r->cfg->host, buf);
		while (bufferevent_get_openssl_error(c->bev) != 0)
			;
		return;
	}
	log_warn("replica=%s host=%s port=%u connection error: %s", name,
		 c->r->cfg->host, (unsigned)c->r->cfg->port,
		 err != 0 ? strerrordesc_np(err) : "unknown");
}

static void
conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct hook_conn *c = arg;

	(void)bev;
	if (what & BEV_EVENT_CONNECTED) {
		log_debug("replica=%s TLS established", c->r->cfg->name);
		if (c->state == C_CONNECTING)
			c->state = C_GREETING;
		return;
	}
	log_conn_error(c, what);
	if (c->busy > 0) {
		c->dead = true;
		return;
	}
	conn_fail(c, false);
}

void
hook_conn_full_due(struct hook_replica *r)
{
	struct hook_conn *c = r->conn;

	r->full_due = true;
	if (c == NULL)
		return;
	c->busy++;
	c->drained_told = false;
	maybe_sync(c);
	c->busy--;
	if (c->dead && c->busy == 0)
		conn_fail(c, false);
}

bool
hook_replica_connected(const struct hook_replica *r)
{
	return r->conn != NULL && r->conn->state == C_READY && !r->conn->dead;
}
