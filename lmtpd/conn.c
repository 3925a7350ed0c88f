/* SPDX-License-Identifier: MIT */
/*
 * lmtpd/conn.c - client connections: a bufferevent per accepted socket,
 * feeding one struct lmtp_session and carrying out its lmtp_io_ops.
 *
 * Runs in:  lmtpd (seccomp: readv/writev/ioctl(FIONREAD)/getpeername/
 *           fcntl/close on client sockets; no socket is ever created).
 * Trust:    the peer is untrusted: input is bounded by the read watermark,
 *           idle clients meet the command timeout (read) and clients that
 *           do not read their replies meet it too (write); a command line
 *           has one deadline however slowly it trickles in.  At most
 *           lmtp_max_connections clients (lowered to what RLIMIT_NOFILE
 *           allows) and lmtp_max_connections_per_peer of one peer (TCP
 *           address, unix uid by SO_PEERCRED) are served; a client over a
 *           limit gets 421 4.3.2 and is closed, the others go on.
 * Order:    a session is freed only from a libevent callback (deferred
 *           bufferevent callbacks, a close event), never inside its own
 *           code; after close() the output is flushed first.
 * Writing:  on a plain connection a reply is written by a flush event
 *           that runs once per loop after output was added (one writev),
 *           not by the bufferevent's write event, which would cost an
 *           epoll_ctl to arm it, an epoll_wait and an epoll_ctl to disarm
 *           it for every reply; only what the socket does not take at once
 *           is left to the bufferevent (write event, write timeout).
 *           While a RCPT look-up is out the queued replies wait for its
 *           reply, so a pipelined MAIL, RCPT, DATA is answered by one
 *           write, and the client wakes once instead of twice.
 *           Under TLS the bufferevent writes as usual.
 * Reading:  libevent 2.1 reads at most 4096 octets per read event
 *           (EVBUFFER_MAX_READ; settable only from 2.2 on), so a body
 *           took one loop pass, an epoll_wait, a FIONREAD ioctl and a
 *           readv per 4 KiB.  On a plain connection, a read that filled
 *           those 4096 octets is followed at once by one readv of up to
 *           64 KiB more (never past the read watermark); under TLS the
 *           filter reads as usual.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "lmtpd/server_int.h"
#include "privsep/child.h"
#include "privsep/privsep.h"

/* What one read of libevent 2.1 takes at most (EVBUFFER_MAX_READ). */
#define CONN_LIBEVENT_READ 4096u
/* What conn_read_more reads at most after it. */
#define CONN_READ_MORE (64u * 1024u)

/* Connections of one peer ("[addr]" or "uid:N"). */
struct lmtp_peer {
	LIST_ENTRY(lmtp_peer) entry;
	char key[64];
	unsigned n;
};

struct lmtp_conn {
	struct lmtp_server *srv;
	struct bufferevent *bev;
	struct lmtp_session *sess;
	struct event *close_ev;
	struct event *deadline_ev;    /* the command line being read */
	struct event *flush_ev;       /* plain: write the output (see Writing) */
	struct evbuffer_cb_entry *out_cb;
	struct lmtp_peer *peer;
	bool closing;
	bool eof;
	bool direct;                  /* plain: replies written by flush_ev */
	bool flush_pending;
	struct evbuffer_cb_entry *in_cb;
	size_t last_add;              /* octets of the last add to the input */
	unsigned close_polls;     /* TLS: waits for the socket to drain */
	TAILQ_ENTRY(lmtp_conn) entry;
};

static void
peer_put(struct lmtp_peer **pp)
{
	struct lmtp_peer *p = *pp;

	if (p == NULL)
		return;
	*pp = NULL;
	if (--p->n == 0) {
		LIST_REMOVE(p, entry);
		free(p);
	}
}

static void
conn_free(struct lmtp_conn *c)
{
	struct lmtp_server *srv = c->srv;

	lmtp_session_free(&c->sess);
	/* the output's callbacks may still run, deferred, after the free */
	if (c->out_cb != NULL)
		evbuffer_remove_cb_entry(bufferevent_get_output(c->bev), c->out_cb);
	if (c->in_cb != NULL)
		evbuffer_remove_cb_entry(bufferevent_get_input(c->bev), c->in_cb);
	bufferevent_free(c->bev);
	event_free(c->flush_ev);
	event_free(c->close_ev);
	event_free(c->deadline_ev);
	peer_put(&c->peer);
	TAILQ_REMOVE(&srv->conns, c, entry);
	srv->n_conns--;
	free(c);
	psep_child_maybe_exit(srv->child);
}

static void
conn_want_input(void *ctx, bool on)
{
	struct lmtp_conn *c = ctx;

	if (on && !c->eof && !c->closing)
		bufferevent_enable(c->bev, EV_READ);
	else
		bufferevent_disable(c->bev, EV_READ);
}

static void
conn_close(void *ctx)
{
	struct lmtp_conn *c = ctx;

	c->closing = true;
	bufferevent_disable(c->bev, EV_READ);
	event_active(c->close_ev, EV_TIMEOUT, 1);
}

static void
conn_deadline(void *ctx, uint64_t ms)
{
	struct lmtp_conn *c = ctx;
	struct timeval tv = { .tv_sec = (time_t)(ms / 1000),
			      .tv_usec = (suseconds_t)(ms % 1000) * 1000 };

	if (ms == 0)
		evtimer_del(c->deadline_ev);
	else
		evtimer_add(c->deadline_ev, &tv);
}

static void
conn_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	struct lmtp_conn *c = arg;

	(void)fd;
	(void)what;
	if (!c->closing)
		lmtp_session_timeout(c->sess);
}

static void conn_setup(struct lmtp_conn *c);
static void conn_direct_off(struct lmtp_conn *c);

/* STARTTLS: a TLS filter over the socket's bufferevent; the 220 already
 * in the socket's output leaves first, in clear. */
static int
conn_starttls(void *ctx)
{
	struct lmtp_conn *c = ctx;
	struct bufferevent *f;
	SSL *ssl;

	if (c->srv->tls_ctx == NULL)
		return -1;
	ssl = lmtp_tls_new_ssl(c->srv->tls_ctx);
	if (ssl == NULL)
		return -1;
	conn_direct_off(c);
	f = bufferevent_openssl_filter_new(c->srv->base, c->bev, ssl,
					   BUFFEREVENT_SSL_ACCEPTING,
					   BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (f == NULL) {
		SSL_free(ssl);
		return -1;
	}
	bufferevent_openssl_set_allow_dirty_shutdown(f, 1);
	c->bev = f;
	conn_setup(c);
	lmtp_session_set_buffers(c->sess, bufferevent_get_input(f),
				 bufferevent_get_output(f));
	bufferevent_enable(f, EV_READ | EV_WRITE);
	return 0;
}

static const struct lmtp_io_ops conn_io = {
	.want_input = conn_want_input,
	.close = conn_close,
	.deadline = conn_deadline,
	.starttls = conn_starttls,
};

/* Octets still to go out: the bufferevent's, and under TLS those the
 * filter already handed to the socket's bufferevent. */
static size_t
conn_unsent(struct lmtp_conn *c)
{
	struct bufferevent *under = bufferevent_get_underlying(c->bev);
	size_t n = evbuffer_get_length(bufferevent_get_output(c->bev));

	if (under != NULL)
		n += evbuffer_get_length(bufferevent_get_output(under));
	return n;
}

/* Deferred close: free now if the output is out, else after it is.  Under
 * TLS the filter's write callback does not see the socket drain: poll it
 * (every 10 ms, for at most 5 s). */
static void
conn_close_cb(evutil_socket_t fd, short what, void *arg)
{
	struct lmtp_conn *c = arg;
	struct timeval tv = { .tv_sec = 0, .tv_usec = 10000 };

	(void)fd;
	(void)what;
	if (conn_unsent(c) == 0 ||
	    (bufferevent_get_underlying(c->bev) != NULL && ++c->close_polls > 500)) {
		conn_free(c);
		return;
	}
	if (bufferevent_get_underlying(c->bev) != NULL &&
	    evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
		event_add(c->close_ev, &tv);
}

/* plain: the last read filled libevent's read size (see Reading) */
static void
conn_in_cb(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
	struct lmtp_conn *c = arg;

	(void)buf;
	if (info->n_added > 0)
		c->last_add = info->n_added;
}

/* Plain connection: after a read of libevent's full size, read what else
 * the socket holds (up to CONN_READ_MORE, within the read watermark) into
 * the input, as the bufferevent would have over further loop passes.  End
 * of file is left to the bufferevent's next read; so is an error, which
 * that read may see as end of file (the connection ends either way). */
static void
conn_read_more(struct lmtp_conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	struct evbuffer_iovec v[2];
	size_t have = evbuffer_get_length(in), want, left;
	ssize_t n;
	int nv, i;

	if (!c->direct || c->last_add < CONN_LIBEVENT_READ || c->eof ||
	    c->closing || !(bufferevent_get_enabled(c->bev) & EV_READ) ||
	    have >= LMTP_IN_MAX)
		return;
	c->last_add = 0;
	want = LMTP_IN_MAX - have < CONN_READ_MORE ? LMTP_IN_MAX - have :
						      CONN_READ_MORE;
	evbuffer_unfreeze(in, 0);
	nv = evbuffer_reserve_space(in, (ev_ssize_t)want, v, 2);
	if (nv > 0) {
		if ((size_t)nv == 2 && v[0].iov_len >= want)
			nv = 1;
		n = readv(bufferevent_getfd(c->bev), (struct iovec *)v, nv);
		left = n > 0 ? (size_t)n : 0;
		for (i = 0; i < nv; i++) {
			if (v[i].iov_len > left)
				v[i].iov_len = left;
			left -= v[i].iov_len;
		}
		evbuffer_commit_space(in, v, nv);
	}
	evbuffer_freeze(in, 0);
}

static void
conn_read_cb(struct bufferevent *bev, void *arg)
{
	struct lmtp_conn *c = arg;

	(void)bev;
	conn_read_more(c);
	if (!c->closing)
		lmtp_session_input(c->sess);
}

static void
conn_write_cb(struct bufferevent *bev, void *arg)
{
	struct lmtp_conn *c = arg;

	(void)bev;
	if (c->direct)
		bufferevent_disable(c->bev, EV_WRITE);   /* drained: direct again */
	if (c->closing)
		conn_close_cb(-1, 0, c);
	else
		lmtp_session_output_drained(c->sess);
}

/* Plain connections: write what the session added, once per loop (see
 * Writing).  What the socket does not take is left to the bufferevent. */
static void
conn_flush_cb(evutil_socket_t fd, short what, void *arg)
{
	struct lmtp_conn *c = arg;
	struct evbuffer *out = bufferevent_get_output(c->bev);

	(void)fd;
	(void)what;
	c->flush_pending = false;
	if (!c->direct || evbuffer_get_length(out) == 0 ||
	    (bufferevent_get_enabled(c->bev) & EV_WRITE))
		return;
	/* the RCPT reply will come with them (the next output brings this
	 * event back): one write for a pipelined group */
	if (!c->closing && c->sess != NULL &&
	    lmtp_session_output_may_wait(c->sess))
		return;
	/* a socket bufferevent freezes the start of its output: only its
	 * own write drains it, which thaws it as this does */
	evbuffer_unfreeze(out, 1);
	while (evbuffer_get_length(out) > 0)
		if (evbuffer_write(out, bufferevent_getfd(c->bev)) <= 0)
			break;
	evbuffer_freeze(out, 1);
	if (evbuffer_get_length(out) > 0) {
		/* EAGAIN (the client does not read) or an error: the
		 * bufferevent writes the rest, with the write timeout, or
		 * reports the error */
		bufferevent_enable(c->bev, EV_WRITE);
		return;
	}
	conn_write_cb(c->bev, c);
}

static void
conn_out_cb(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
	struct lmtp_conn *c = arg;

	(void)buf;
	if (info->n_added > 0 && c->direct && !c->flush_pending) {
		c->flush_pending = true;
		event_active(c->flush_ev, EV_TIMEOUT, 1);
	}
}

/* Plain connection: replies are written by conn_flush_cb. */
static void
conn_direct_on(struct lmtp_conn *c)
{
	c->flush_ev = event_new(c->srv->base, -1, 0, conn_flush_cb, c);
	c->out_cb = evbuffer_add_cb(bufferevent_get_output(c->bev), conn_out_cb, c);
	c->in_cb = evbuffer_add_cb(bufferevent_get_input(c->bev), conn_in_cb, c);
	if (c->flush_ev == NULL || c->out_cb == NULL || c->in_cb == NULL)
		fatalx("cannot set up a client connection");
	c->direct = true;
	bufferevent_disable(c->bev, EV_WRITE);
}

/* STARTTLS: the bufferevent writes again (the TLS filter over it needs
 * its write event); what is in the output (the 220) leaves first. */
static void
conn_direct_off(struct lmtp_conn *c)
{
	if (!c->direct)
		return;
	c->direct = false;
	evbuffer_remove_cb_entry(bufferevent_get_output(c->bev), c->out_cb);
	c->out_cb = NULL;
	evbuffer_remove_cb_entry(bufferevent_get_input(c->bev), c->in_cb);
	c->in_cb = NULL;
	bufferevent_enable(c->bev, EV_WRITE);
}

static void
conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct lmtp_conn *c = arg;

	if (what & BEV_EVENT_CONNECTED) {
		SSL *ssl = bufferevent_openssl_get_ssl(bev);

		if (ssl != NULL)
			log_info("session=%s TLS %s %s", lmtp_session_id(c->sess),
				 SSL_get_version(ssl), SSL_get_cipher_name(ssl));
		return;
	}
	if ((what & BEV_EVENT_ERROR) && bufferevent_openssl_get_ssl(bev) != NULL) {
		unsigned long e = bufferevent_get_openssl_error(bev);

		log_info("session=%s TLS failed: %s", lmtp_session_id(c->sess),
			 e != 0 ? ERR_reason_error_string(e) : "connection error");
	}
	/* A read timeout queued while the session closed (the command
	 * deadline may fire first): the 421 is still being flushed. */
	if (c->closing && !(what & BEV_EVENT_ERROR) &&
	    (what & (BEV_EVENT_TIMEOUT | BEV_EVENT_READING)) ==
		    (BEV_EVENT_TIMEOUT | BEV_EVENT_READING))
		return;
	if ((what & BEV_EVENT_ERROR) || c->closing ||
	    (what & (BEV_EVENT_TIMEOUT | BEV_EVENT_WRITING)) ==
		    (BEV_EVENT_TIMEOUT | BEV_EVENT_WRITING)) {
		log_debug("session=%s connection dropped", lmtp_session_id(c->sess));
		conn_free(c);
		return;
	}
	if (what & BEV_EVENT_EOF) {
		c->eof = true;
		lmtp_session_eof(c->sess);
	} else if (what & BEV_EVENT_TIMEOUT) {
		lmtp_session_timeout(c->sess);
	}
}

/* "[address]" for TCP peers, "local" for unix sockets; *key the peer for
 * the per-peer limit: the address, or "uid:N" of the unix peer. */
static void
conn_peer(int fd, char *out, size_t size, char *key, size_t key_size)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char addr[INET6_ADDRSTRLEN];
	const void *a = NULL;

	xstrlcpy(out, "local", size);
	xstrlcpy(key, "local", key_size);
	if (getpeername(fd, (struct sockaddr *)&ss, &len) == -1)
		return;
	if (ss.ss_family == AF_UNIX) {
		struct ucred cr;
		socklen_t crlen = sizeof(cr);

		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &crlen) == 0)
			snprintf(key, key_size, "uid:%u", (unsigned)cr.uid);
		return;
	}
	if (ss.ss_family == AF_INET)
		a = &((const struct sockaddr_in *)&ss)->sin_addr;
	else if (ss.ss_family == AF_INET6)
		a = &((const struct sockaddr_in6 *)&ss)->sin6_addr;
	if (a != NULL && inet_ntop(ss.ss_family, a, addr, sizeof(addr)) != NULL) {
		xstrlcpy(out, "[", size);
		strncat(out, addr, size - strlen(out) - 1);
		strncat(out, "]", size - strlen(out) - 1);
		xstrlcpy(key, out, key_size);
	}
}

static struct lmtp_peer *
peer_find(struct lmtp_server *srv, const char *key)
{
	struct lmtp_peer *p;

	LIST_FOREACH(p, &srv->peers, entry)
		if (strcmp(p->key, key) == 0)
			return p;
	return NULL;
}

/*
 * Refuse a client over a limit: 421 4.3.2 written straight to the socket
 * (non-blocking, nothing read), then closed.  One log line per limit and
 * LOG_LIMIT_SECONDS.
 */
static void
conn_refuse(struct lmtp_server *srv, int fd, const char *peer, const char *limit,
	    unsigned value, struct log_limit *rl)
{
	char line[LMTP_HOST_MAX + 96];
	unsigned skipped = 0;
	int n;

	if (log_limited(rl, &skipped))
		log_warn("peer=%s refused: %s reached (%u; connections=%zu): raise %s "
			 "(%u more refused since the last line)", peer, limit, value,
			 srv->n_conns, limit, skipped);
	n = snprintf(line, sizeof(line), "421 4.3.2 %s Too many connections, "
		     "try again later\r\n", srv->cfg->host);
	if (n > 0 && send(fd, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1,
			  MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
		log_debug("peer=%s: 421 not sent", peer);
	close(fd);
}

static void
conn_setup(struct lmtp_conn *c)
{
	const struct lmtp_config *cfg = c->srv->cfg;
	struct timeval tv;

	tv.tv_sec = (time_t)(cfg->command_timeout_ms / 1000);
	tv.tv_usec = (suseconds_t)(cfg->command_timeout_ms % 1000 * 1000);
	bufferevent_setcb(c->bev, conn_read_cb, conn_write_cb, conn_event_cb, c);
	bufferevent_setwatermark(c->bev, EV_READ, 0, LMTP_IN_MAX);
	if (cfg->command_timeout_ms != 0)
		bufferevent_set_timeouts(c->bev, &tv, &tv);
}

void
lmtp_conn_start(struct lmtp_server *srv, int fd, bool tcp)
{
	struct lmtp_session_args a = {
		.cfg = srv->cfg, .io = &conn_io, .backend = srv->backend,
		.backend_ctx = srv->backend_ctx, .shutting_down = srv->shutting_down,
		.tls_offer = tcp && srv->tls_ctx != NULL,
		.tls_required = tcp && srv->tls_required,
	};
	const struct lmtp_config *cfg = srv->cfg;
	struct lmtp_peer *p;
	struct lmtp_conn *c;
	char peer[64], key[64];

	if (evutil_make_socket_nonblocking(fd) == -1) {
		log_err("client socket: fcntl failed");
		close(fd);
		return;
	}
	conn_peer(fd, peer, sizeof(peer), key, sizeof(key));
	if (cfg->max_connections != 0 && srv->n_conns >= cfg->max_connections) {
		conn_refuse(srv, fd, key, "lmtp_max_connections", cfg->max_connections,
			    &srv->rl_conns);
		return;
	}
	p = peer_find(srv, key);
	if (p != NULL && cfg->max_connections_per_peer != 0 &&
	    p->n >= cfg->max_connections_per_peer) {
		conn_refuse(srv, fd, key, "lmtp_max_connections_per_peer",
			    cfg->max_connections_per_peer, &srv->rl_peer);
		return;
	}
	if (p == NULL) {
		p = xcalloc(1, sizeof(*p));
		xstrlcpy(p->key, key, sizeof(p->key));
		LIST_INSERT_HEAD(&srv->peers, p, entry);
	}
	p->n++;
	c = xcalloc(1, sizeof(*c));
	c->srv = srv;
	c->peer = p;
	c->bev = bufferevent_socket_new(srv->base, fd,
					BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	c->close_ev = event_new(srv->base, -1, 0, conn_close_cb, c);
	c->deadline_ev = evtimer_new(srv->base, conn_deadline_cb, c);
	if (c->bev == NULL || c->close_ev == NULL || c->deadline_ev == NULL)
		fatalx("cannot set up a client connection");
	conn_setup(c);
	conn_direct_on(c);
	TAILQ_INSERT_TAIL(&srv->conns, c, entry);
	srv->n_conns++;
	a.in = bufferevent_get_input(c->bev);
	a.out = bufferevent_get_output(c->bev);
	a.io_ctx = c;
	a.peer = peer;
	c->sess = lmtp_session_new(&a);
}

void
lmtp_conn_shutdown_all(struct lmtp_server *srv)
{
	struct lmtp_conn *c;

	TAILQ_FOREACH(c, &srv->conns, entry)
		if (!c->closing)
			lmtp_session_shutdown(c->sess);
}

void
lmtp_conn_free_all(struct lmtp_server *srv)
{
	struct lmtp_conn *c;

	while ((c = TAILQ_FIRST(&srv->conns)) != NULL)
		conn_free(c);
}
