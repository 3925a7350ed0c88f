/* SPDX-License-Identifier: MIT */
/*
 * repl-hook/conn.c - one outgoing TLS connection per replica, its life
 * cycle: connect with backoff, the bufferevent callbacks (frames read go to
 * conn_reply.c, room in the output to conn_send.c), close and reconnect.
 * Once connected: greeting and HELLO (conn_reply.c), then the journal
 * streamed in order (conn_send.c: up to REPL_MAXINFLIGHT commands in
 * flight, shared with sync.c's direct commands), replies handled as
 * doc/replication-protocol.md §10.3 says (conn_reply.c).
 *
 * Split-of: hook_conn - one replica connection (struct hook_conn in
 *           core_int.h) split by concern: conn.c (life cycle, libevent
 *           callbacks), conn_send.c (what goes out), conn_reply.c (what
 *           comes back); each drives the others on the same state.  Layers
 *           above (sync, events) are told through r->h->notify only.
 * Runs in:  repl-hook.  Syscalls: socket, connect, getsockopt (connect
 *           result), getsockname and setsockopt
 *           (TCP_NODELAY),
 *           read/write/readv/writev on the socket, pread on the journal and
 *           on body fds, fcntl (dup), close.  A replica host that is not an
 *           IP literal is resolved with a blocking getaddrinfo (which needs
 *           /etc/hosts, /etc/resolv.conf, nsswitch and a UDP/TCP socket to
 *           the resolver); numeric hosts need nothing of that.
 * Trust:    replica responses are untrusted: framed by repl_framer (bounded
 *           lines, literals into memfds), parsed by repl_parse_response; a
 *           framing or parse error closes the connection (reconnect).
 * Order:    a journal entry is sent once written (its fsync overlaps the
 *           round trip; hook.c answers only after the fsync); the acked
 *           offset advances only over a prefix of entries that all got a
 *           final reply; a temporary NO closes the connection, so the entry
 *           and everything after it are resent from the acked offset (an
 *           entry that gets CONN_TEMP_NO_MAX of them in a row is dropped
 *           instead, conn_reply.c).
 */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>

#include "privsep/privsep.h"
#include "privsep/tls.h"
#include "repl-hook/core_int.h"

static void conn_read_cb(struct bufferevent *bev, void *arg);
static void conn_write_cb(struct bufferevent *bev, void *arg);
static void conn_event_cb(struct bufferevent *bev, short what, void *arg);

/* ---- lifetime --------------------------------------------------------- */

uint64_t
hook_conn_backoff_min_ms(void)
{
#ifdef STOWD_TEST_HOOKS
	/* a test build may shorten it (STOWD_TEST_BACKOFF_MIN_MS), so that a
	 * test of several back-offs does not wait them out */
	static uint64_t ms;

	if (ms == 0) {
		const char *e = getenv("STOWD_TEST_BACKOFF_MIN_MS");

		ms = e != NULL ? strtoull(e, NULL, 10) : 0;
		if (ms == 0 || ms > CONN_BACKOFF_MIN_MS)
			ms = CONN_BACKOFF_MIN_MS;
	}
	return ms;
#else
	return CONN_BACKOFF_MIN_MS;
#endif
}

static void
retry_schedule(struct hook_replica *r, bool temp)
{
	uint64_t cap = temp ? CONN_BACKOFF_TEMP_MAX_MS : CONN_BACKOFF_MAX_MS;
	struct timeval tv;

	if (r->h->stopping)
		return;
	if (r->backoff_ms < hook_conn_backoff_min_ms())
		r->backoff_ms = hook_conn_backoff_min_ms();
	tv.tv_sec = (time_t)(r->backoff_ms / 1000u);
	tv.tv_usec = (suseconds_t)(r->backoff_ms % 1000u) * 1000;
	evtimer_add(r->ev_retry, &tv);
	log_debug("replica=%s reconnect in %llu ms", r->cfg->name,
		  (unsigned long long)r->backoff_ms);
	r->backoff_ms = r->backoff_ms * 2 > cap ? cap : r->backoff_ms * 2;
}

void
hook_conn_flush_acked(struct hook_replica *r, bool force)
{
	static const struct timeval settle = {
		.tv_sec = 0, .tv_usec = CONN_TRUNC_SETTLE_MS * 1000,
	};
	struct hook_conn *c = r->conn;
	bool trunc = false;
	bool drained = journal_acked(r->j) == journal_size(r->j);
	uint64_t now = hook_now_ms();

	/*
	 * Recording the offset and truncating a drained journal cost a sync
	 * each, and under a steady load the journal drains after almost
	 * every reply: do it at most once per CONN_ACK_FLUSH_MS, or at once
	 * for a large drained journal, or once the journal stayed drained
	 * for CONN_TRUNC_SETTLE_MS (ev_trunc).  The offset on disk may lag:
	 * a replay after a crash resends events, which is harmless.
	 */
	if (!force && now - r->last_ack_flush_ms < CONN_ACK_FLUSH_MS &&
	    !(drained && journal_size(r->j) >= CONN_TRUNC_BYTES)) {
		if (drained && journal_size(r->j) > 0 &&
		    !evtimer_pending(r->ev_trunc, NULL))
			evtimer_add(r->ev_trunc, &settle);
		return;
	}
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

void
hook_dcmd_free(struct dcmd *d)
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
		hook_dcmd_free(d);
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
	hook_conn_flush_acked(r, true);
	fail_direct(r, &sent);
	fail_direct(r, &queued);
	if (was_ready) {
		if (r->h->notify->sync_running(r) && r->full_running)
			r->full_due = true;
		r->h->notify->sync_abort(r);
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
		snprintf(r->last_error, sizeof(r->last_error), "cannot connect");
		rc = -1;
		goto out;
	}
	if (psep_tcp_nodelay(bufferevent_getfd(c->bev)) == -1)
		log_warn("replica=%s cannot set TCP_NODELAY: %s", r->cfg->name,
			 strerrordesc_np(errno));
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
	evtimer_del(r->ev_trunc);
	if (r->conn != NULL)
		conn_free(r->conn);
	hook_conn_flush_acked(r, true);
}

/* ---- events on the connection ----------------------------------------- */

void
hook_conn_kick(struct hook_replica *r)
{
	struct hook_conn *c = r->conn;

	if (c == NULL)
		return;
	c->busy++;
	hook_conn_fill(c);
	c->busy--;
	if (c->dead && c->busy == 0)
		conn_fail(c, false);
}

static bool
sink_more(void *arg)
{
	const struct hook_conn *c = arg;

	return !c->dead;
}

/* One frame: handled, then its literal (if still here) is closed. */
static void
sink_frame(void *arg, struct repl_frame *f)
{
	struct hook_conn *c = arg;

	hook_conn_frame(c);
	if (f->literal_fd != -1) {
		close(f->literal_fd);
		f->literal_fd = -1;
	}
}

static void
conn_read_cb(struct bufferevent *bev, void *arg)
{
	struct hook_conn *c = arg;
	const struct repl_frame_sink sink = {
		.more = sink_more, .frame = sink_frame, .arg = c,
	};
	enum repl_frame_result rc;
	const char *why = NULL;

	c->busy++;
	rc = repl_framer_read(c->framer, bufferevent_get_input(bev), &c->frame,
			      &sink, &why);
	if (!c->dead && rc == REPL_F_FATAL) {
		log_warn("replica=%s framing lost: %s", c->r->cfg->name,
			 why != NULL ? why : "?");
		c->dead = true;
	}
	if (!c->dead) {
		hook_conn_flush_acked(c->r, false);
		hook_conn_fill(c);
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
	hook_conn_fill(c);
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
		snprintf(c->r->last_error, sizeof(c->r->last_error), "timeout (%s)",
			 c->state == C_READY ? "no reply" : "connect or greeting");
		return;
	}
	if (c->state == C_CONNECTING && err != 0) {
		log_info("replica=%s host=%s port=%u connect: %s", name,
			 c->r->cfg->host, (unsigned)c->r->cfg->port,
			 strerrordesc_np(err));
		snprintf(c->r->last_error, sizeof(c->r->last_error), "connect: %s",
			 strerrordesc_np(err));
		return;
	}
	if (what & BEV_EVENT_EOF) {
		log_info("replica=%s connection closed by the replica", name);
		snprintf(c->r->last_error, sizeof(c->r->last_error),
			 "connection closed by the replica");
		return;
	}
	if ((e = bufferevent_get_openssl_error(c->bev)) != 0) {
		ERR_error_string_n(e, buf, sizeof(buf));
		log_warn("replica=%s host=%s TLS: %s", name, c->r->cfg->host, buf);
		snprintf(c->r->last_error, sizeof(c->r->last_error), "TLS: %.100s", buf);
		while (bufferevent_get_openssl_error(c->bev) != 0)
			;
		return;
	}
	log_warn("replica=%s host=%s port=%u connection error: %s", name,
		 c->r->cfg->host, (unsigned)c->r->cfg->port,
		 err != 0 ? strerrordesc_np(err) : "unknown");
	snprintf(c->r->last_error, sizeof(c->r->last_error), "connection error: %s",
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
hook_conn_dirty_due(struct hook_replica *r)
{
	struct hook_conn *c = r->conn;

	if (c == NULL)
		return;
	c->busy++;
	c->drained_told = false;
	hook_conn_maybe_sync(c);
	c->busy--;
	if (c->dead && c->busy == 0)
		conn_fail(c, false);
}

void
hook_replica_sync_due(struct hook_replica *r)
{
	hook_conn_dirty_due(r);
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
	hook_conn_maybe_sync(c);
	c->busy--;
	if (c->dead && c->busy == 0)
		conn_fail(c, false);
}

bool
hook_replica_connected(const struct hook_replica *r)
{
	return r->conn != NULL && r->conn->state == C_READY && !r->conn->dead;
}
