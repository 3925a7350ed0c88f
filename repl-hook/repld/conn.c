/* SPDX-License-Identifier: MIT */
/*
 * repl-hook/repld/conn.c - the server context and its replication
 * connections: authentication of the
 * transport (SO_PEERCRED on UNIX sockets, mutual TLS on TCP), the
 * greeting, the input loop through the framer, flow control (MAXINFLIGHT,
 * output watermarks), timeouts and the orderly close (LOGOUT, SHUTDOWN,
 * too many errors, lost framing).
 *
 * Runs in:  repld (seccomp: getsockopt(SO_PEERCRED), setsockopt
 *           (TCP_NODELAY), getsockname,
 *           getpeername, readv/writev/read/write, fcntl, close on client
 *           sockets; OpenSSL's server side on TCP; no socket is created).
 * Trust:    the peer is untrusted until the transport check passed, and its
 *           bytes are untrusted after: input is bounded by the framer
 *           (MAXLINE, MAXLITERAL into a memfd), by MAXINFLIGHT and by the
 *           read watermark; a peer that does not read its replies stops
 *           its own input (output watermark) and meets the write timeout.
 *           At most replication_max_connections are served (more are
 *           closed at once, before any TLS), and a new connection must
 *           finish its TLS handshake and send its first complete command
 *           within replication_handshake_timeout.
 * Layers:   conn.c holds the server and its connections and calls cmd.c
 *           and out.c; they call back only through srv->kick.
 * Order:    a connection is freed only from a libevent callback (deferred
 *           bufferevent callbacks, the close event), never inside the
 *           command code; before a close every in-flight command is
 *           answered and the output is flushed.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "repl-hook/repld/repld_int.h"
#include "policy/policy.h"
#include "privsep/privsep.h"
#include "privsep/tls.h"

static unsigned conn_serial;

static void
conn_free(struct repld_conn *c)
{
	struct repld_server *srv = c->srv;

	repld_cmd_drop_all(c);
	repl_framer_free(&c->framer);
	X509_free(c->peer_cert);
	c->peer_cert = NULL;
	if (c->bev != NULL)
		bufferevent_free(c->bev);
	event_free(c->close_ev);
	event_free(c->handshake_ev);
	TAILQ_REMOVE(&srv->conns, c, entry);
	srv->n_conns--;
	log_debug("conn=%u closed", c->serial);
	free(c);
	repld_server_maybe_exit(srv);
}

/* Free after the output is out (or at once if there is none). */
static void
conn_close(struct repld_conn *c)
{
	c->closing = true;
	c->no_input = true;
	bufferevent_disable(c->bev, EV_READ);
	bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
	event_active(c->close_ev, EV_TIMEOUT, 1);
}

static void
conn_close_cb(evutil_socket_t fd, short what, void *arg)
{
	struct repld_conn *c = arg;

	(void)fd;
	(void)what;
	if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
		conn_free(c);
}

static bool
can_read(const struct repld_conn *c)
{
	return !c->no_input && !c->closing && c->auth != REPLD_AUTH_PENDING &&
	       c->n_cmds < REPL_MAXINFLIGHT &&
	       evbuffer_get_length(bufferevent_get_output(c->bev)) < REPLD_OUT_HIGH;
}

static bool
sink_more(void *arg)
{
	return can_read(arg);
}

static void
sink_frame_cb(void *arg, struct repl_frame *f)
{
	struct repld_conn *c = arg;

	/* the first complete command ends the handshake deadline */
	evtimer_del(c->handshake_ev);
	repld_cmd_frame(c, f);
}

static void
read_frames(struct repld_conn *c)
{
	const struct repl_frame_sink sink = {
		.more = sink_more, .frame = sink_frame_cb, .arg = c,
	};
	struct evbuffer *in = bufferevent_get_input(c->bev);
	enum repl_frame_result r;
	const char *why = NULL;
	char bye[128];

	r = repl_framer_read(c->framer, in, c->srv->frame, &sink, &why);
	if (r == REPL_F_MORE) {
		if (c->eof)
			c->no_input = true;
	} else if (r == REPL_F_FATAL) {
		log_warn("conn=%u %s framing lost: %s", c->serial, c->name,
			 why ? why : "?");
		snprintf(bye, sizeof(bye), "* BYE [FRAMING] %s",
			 why ? why : "framing lost");
		repld_conn_bye(c, bye);
		evbuffer_drain(in, evbuffer_get_length(in));
	}
}

void
repld_conn_kick(struct repld_conn *c)
{
	struct evbuffer *out;

	if (c->closing || c->auth == REPLD_AUTH_PENDING)
		return;
	read_frames(c);
	if (repld_out_flush(c) == -1) {
		c->closing = true;
		c->no_input = true;
		bufferevent_disable(c->bev, EV_READ | EV_WRITE);
		evbuffer_drain(bufferevent_get_output(c->bev),
			       evbuffer_get_length(bufferevent_get_output(c->bev)));
		event_active(c->close_ev, EV_TIMEOUT, 1);
		return;
	}
	if (can_read(c)) {
		if (c->paused) {
			c->paused = false;
			bufferevent_enable(c->bev, EV_READ);
		}
	} else if (!c->paused) {
		c->paused = true;
		bufferevent_disable(c->bev, EV_READ);
	}
	if (!c->no_input || !TAILQ_EMPTY(&c->pipe) || !TAILQ_EMPTY(&c->outq))
		return;
	out = bufferevent_get_output(c->bev);
	if (c->bye[0] != '\0')
		evbuffer_add_printf(out, "%s\r\n", c->bye);
	if (c->logout_tag[0] != '\0')
		evbuffer_add_printf(out, "%s OK logout\r\n", c->logout_tag);
	conn_close(c);
}

static void
greet(struct repld_conn *c)
{
	const struct repld_config *cfg = c->srv->cfg;
	char id[PSEP_ID_MAX + 2];

	if (repl_fmt_astring(id, sizeof(id), cfg->server_id) == 0)
		xstrlcpy(id, "stowd", sizeof(id));
	evbuffer_add_printf(bufferevent_get_output(c->bev),
			    "* OK STOWD-REPL 1 %s MAXLINE=%u MAXLITERAL=%llu "
			    "MAXINFLIGHT=%u stowd ready\r\n", id, REPL_MAXLINE,
			    (unsigned long long)cfg->maxliteral, REPL_MAXINFLIGHT);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

/* ---- bufferevent callbacks -------------------------------------------- */

static void
conn_read_cb(struct bufferevent *bev, void *arg)
{
	(void)bev;
	repld_conn_kick(arg);
}

static void
conn_write_cb(struct bufferevent *bev, void *arg)
{
	struct repld_conn *c = arg;

	(void)bev;
	if (c->closing)
		event_active(c->close_ev, EV_TIMEOUT, 1);
	else
		repld_conn_kick(c);
}

static void
log_tls_failure(struct repld_conn *c)
{
	SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
	unsigned long e = bufferevent_get_openssl_error(c->bev);
	char buf[256];
	long v;

	if (e != 0) {
		ERR_error_string_n(e, buf, sizeof(buf));
	} else {
		xstrlcpy(buf, errno != 0 ? strerrordesc_np(errno) : "connection closed",
			 sizeof(buf));
	}
	v = ssl != NULL ? SSL_get_verify_result(ssl) : X509_V_OK;
	log_warn("conn=%u %s TLS handshake failed: %s%s%s", c->serial, c->name, buf,
		 v != X509_V_OK ? "; certificate: " : "",
		 v != X509_V_OK ? X509_verify_cert_error_string(v) : "");
	while (bufferevent_get_openssl_error(c->bev) != 0)
		;
}

static void
tls_connected(struct repld_conn *c)
{
	SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
	X509 *cert = ssl != NULL ? SSL_get1_peer_certificate(ssl) : NULL;
	char subj[256] = "?";

	if (cert != NULL)
		X509_NAME_oneline(X509_get_subject_name(cert), subj, sizeof(subj));
	X509_free(c->peer_cert);
	c->peer_cert = cert;    /* HELLO checks the server id against it */
	c->auth = REPLD_AUTH_TLS;
	log_info("conn=%u %s TLS %s peer=%s", c->serial, c->name,
		 ssl != NULL ? SSL_get_version(ssl) : "?", subj);
	greet(c);
}

static void
conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct repld_conn *c = arg;

	(void)bev;
	if (what & BEV_EVENT_CONNECTED) {
		tls_connected(c);
		return;
	}
	if (c->auth == REPLD_AUTH_PENDING) {
		log_tls_failure(c);
		conn_free(c);
		return;
	}
	if ((what & BEV_EVENT_ERROR) || c->closing ||
	    (what & (BEV_EVENT_TIMEOUT | BEV_EVENT_WRITING)) ==
		    (BEV_EVENT_TIMEOUT | BEV_EVENT_WRITING)) {
		log_debug("conn=%u %s connection dropped", c->serial, c->name);
		conn_free(c);
		return;
	}
	if (what & BEV_EVENT_EOF) {
		c->eof = true;
		c->paused = true;   /* the bufferevent stopped reading */
		repld_conn_kick(c);
	} else if (what & BEV_EVENT_TIMEOUT) {
		if (repl_framer_busy(c->framer) || c->n_cmds == 0) {
			log_info("conn=%u %s idle timeout", c->serial, c->name);
			repld_conn_bye(c, "* BYE [TIMEOUT] idle");
		} else {
			bufferevent_enable(c->bev, EV_READ);
		}
		repld_conn_kick(c);
	}
}

/* replication_handshake_timeout: no TLS session, or no complete command,
 * in time.  A TLS peer that has not finished is dropped; one that did
 * gets a BYE. */
static void
handshake_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct repld_conn *c = arg;
	struct repld_server *srv = c->srv;
	unsigned skipped = 0;

	(void)fd;
	(void)what;
	if (log_limited(&srv->rl_handshake, &skipped))
		log_warn("conn=%u %s closed: replication_handshake_timeout reached "
			 "(%llu ms, %s): raise replication_handshake_timeout if "
			 "legitimate peers are that slow (%u more since the last line)",
			 c->serial, c->name,
			 (unsigned long long)srv->cfg->handshake_timeout_ms,
			 c->auth == REPLD_AUTH_PENDING ? "in TLS handshake" :
			 "no command", skipped);
	if (c->closing)
		return;
	if (c->auth == REPLD_AUTH_PENDING) {
		conn_free(c);
		return;
	}
	repld_conn_bye(c, "* BYE [TIMEOUT] no command");
	repld_conn_kick(c);
}

/* ---- accepting -------------------------------------------------------- */

/* replication_max_connections reached: close fd at once (a unix peer is
 * told why; a TCP peer has not started TLS, so it just sees the close). */
static void
refuse_full(struct repld_server *srv, int fd, int family, const char *listener)
{
	static const char bye[] = "* BYE [UNAVAILABLE] too many connections\r\n";
	unsigned skipped = 0;

	if (log_limited(&srv->rl_conns, &skipped))
		log_warn("replication connection via %s refused: "
			 "replication_max_connections reached (%u): raise "
			 "replication_max_connections (%u more refused since the "
			 "last line)", listener, srv->cfg->max_connections, skipped);
	if (family == AF_UNIX &&
	    send(fd, bye, sizeof(bye) - 1, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
		log_debug("replication peer via %s: BYE not sent", listener);
	close(fd);
}

/* SO_PEERCRED check; false (after the AUTHFAILED line) if refused. */
static bool
unix_peer_ok(struct repld_server *srv, int fd, char *name, size_t size)
{
	static const char refuse[] = "* BYE [AUTHFAILED] peer uid not allowed\r\n";
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == -1) {
		log_err("replication socket: SO_PEERCRED: %s", strerrordesc_np(errno));
		return false;
	}
	snprintf(name, size, "uid=%u pid=%d", (unsigned)cred.uid, (int)cred.pid);
	if (policy_repl_unix_uid_allowed(srv->cfg->set, cred.uid))
		return true;
	log_warn("replication peer %s refused: uid not in replication_unix_uids", name);
	if (write(fd, refuse, sizeof(refuse) - 1) < 0)
		log_debug("replication peer %s: %s", name, strerrordesc_np(errno));
	return false;
}

static void
tcp_peer_name(int fd, char *out, size_t size)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char addr[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;

	if (getpeername(fd, (struct sockaddr *)&ss, &len) == 0) {
		if (ss.ss_family == AF_INET) {
			const struct sockaddr_in *s4 = (const struct sockaddr_in *)&ss;

			inet_ntop(AF_INET, &s4->sin_addr, addr, sizeof(addr));
			port = ntohs(s4->sin_port);
		} else if (ss.ss_family == AF_INET6) {
			const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&ss;

			inet_ntop(AF_INET6, &s6->sin6_addr, addr, sizeof(addr));
			port = ntohs(s6->sin6_port);
		}
	}
	snprintf(out, size, "addr=[%s]:%u", addr, port);
}

static struct bufferevent *
make_bev(struct repld_server *srv, int fd, int family, const char *name)
{
	int opt = BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS;
	struct bufferevent *bev;
	SSL *ssl;

	if (family == AF_UNIX)
		return bufferevent_socket_new(srv->base, fd, opt);
	if (srv->cfg->tls_ctx == NULL) {
		log_err("replication peer %s: TCP connection but no TLS context", name);
		return NULL;
	}
	ssl = SSL_new(srv->cfg->tls_ctx);
	if (ssl == NULL) {
		log_err("replication peer %s: SSL_new failed", name);
		return NULL;
	}
	bev = bufferevent_openssl_socket_new(srv->base, fd, ssl,
					     BUFFEREVENT_SSL_ACCEPTING, opt);
	if (bev == NULL)
		SSL_free(ssl);
	return bev;
}

static int
sock_family(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len) == -1)
		return -1;
	return ss.ss_family;
}

static void
conn_setup(struct repld_conn *c)
{
	uint64_t ms = c->srv->cfg->command_timeout_ms;
	struct timeval tv;

	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)(ms % 1000 * 1000);
	bufferevent_setcb(c->bev, conn_read_cb, conn_write_cb, conn_event_cb, c);
	bufferevent_setwatermark(c->bev, EV_READ, 0, REPLD_IN_MAX);
	bufferevent_setwatermark(c->bev, EV_WRITE, REPLD_OUT_LOW, 0);
	if (ms != 0)
		bufferevent_set_timeouts(c->bev, &tv, &tv);
}

void
repld_conn_start(struct repld_server *srv, int fd, const char *listener)
{
	struct repld_conn *c;
	char name[64] = "?";
	int family = sock_family(fd);
	struct bufferevent *bev = NULL;

	if (srv->cfg->max_connections != 0 && srv->n_conns >= srv->cfg->max_connections) {
		refuse_full(srv, fd, family, listener);
		return;
	}
	if (family == AF_UNIX) {
		if (!unix_peer_ok(srv, fd, name, sizeof(name)))
			goto fail;
	} else if (family == AF_INET || family == AF_INET6) {
		tcp_peer_name(fd, name, sizeof(name));
		if (psep_tcp_nodelay(fd) == -1)
			log_warn("replication socket from %s: cannot set TCP_NODELAY: %s",
				 name, strerrordesc_np(errno));
	} else {
		log_err("replication socket from %s: not a UNIX or TCP socket", listener);
		goto fail;
	}
	if (evutil_make_socket_nonblocking(fd) == -1) {
		log_err("replication socket: fcntl failed");
		goto fail;
	}
	bev = make_bev(srv, fd, family, name);
	if (bev == NULL)
		goto fail;
	c = xcalloc(1, sizeof(*c));
	c->srv = srv;
	c->bev = bev;
	c->serial = ++conn_serial;
	xstrlcpy(c->name, name, sizeof(c->name));
	c->auth = family == AF_UNIX ? REPLD_AUTH_UNIX : REPLD_AUTH_PENDING;
	TAILQ_INIT(&c->pipe);
	TAILQ_INIT(&c->outq);
	c->framer = repl_framer_new(srv->cfg->maxliteral);
	c->close_ev = event_new(srv->base, -1, 0, conn_close_cb, c);
	c->handshake_ev = evtimer_new(srv->base, handshake_timeout_cb, c);
	if (c->framer == NULL || c->close_ev == NULL || c->handshake_ev == NULL)
		fatalx("cannot set up a replication connection");
	conn_setup(c);
	if (srv->cfg->handshake_timeout_ms != 0) {
		uint64_t ms = srv->cfg->handshake_timeout_ms;
		struct timeval tv = { .tv_sec = (time_t)(ms / 1000),
				      .tv_usec = (suseconds_t)(ms % 1000) * 1000 };

		evtimer_add(c->handshake_ev, &tv);
	}
	TAILQ_INSERT_TAIL(&srv->conns, c, entry);
	srv->n_conns++;
	log_info("conn=%u %s connected via %s", c->serial, name, listener);
	if (c->auth == REPLD_AUTH_UNIX)
		greet(c);
	else
		bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	return;
fail:
	close(fd);
}

void
repld_server_shutdown_conns(struct repld_server *srv)
{
	struct repld_conn *c, *next;

	for (c = TAILQ_FIRST(&srv->conns); c != NULL; c = next) {
		next = TAILQ_NEXT(c, entry);
		if (c->closing)
			continue;
		if (c->auth == REPLD_AUTH_PENDING) {
			conn_close(c);
			continue;
		}
		repld_conn_bye(c, "* BYE [SHUTDOWN] server stopping");
		repld_conn_kick(c);
	}
}

void
repld_conn_free_all(struct repld_server *srv)
{
	struct repld_conn *c;

	while ((c = TAILQ_FIRST(&srv->conns)) != NULL)
		conn_free(c);
}

/* ---- the server that holds the connections ---------------------------- */

void
repld_server_stop(struct repld_server *srv)
{
	srv->stopped = true;
	event_base_loopbreak(srv->base);
}

void
repld_server_maybe_exit(struct repld_server *srv)
{
	if (srv->shutting_down && srv->n_conns == 0 &&
	    (srv->backend->idle == NULL || srv->backend->idle(srv->backend_ctx)))
		repld_server_stop(srv);
}

void
repld_server_shutdown(struct repld_server *srv)
{
	if (srv->shutting_down)
		return;
	log_info("shutdown requested connections=%zu", srv->n_conns);
	srv->shutting_down = true;
	repld_server_shutdown_conns(srv);
	repld_server_maybe_exit(srv);
}

static void
timer_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	repld_cmd_expire(arg);
}

void
repld_server_init(struct repld_server *srv, const struct repld_config *cfg,
		  struct event_base *base, const struct repld_backend_ops *ops,
		  void *ctx)
{
	size_t i;

	memset(srv, 0, sizeof(*srv));
	srv->cfg = cfg;
	srv->base = base;
	srv->backend = ops;
	srv->backend_ctx = ctx;
	TAILQ_INIT(&srv->conns);
	TAILQ_INIT(&srv->sentq);
	LIST_INIT(&srv->ghosts);
	for (i = 0; i < REPLD_BUCKETS; i++)
		LIST_INIT(&srv->buckets[i]);
	srv->frame = xcalloc(1, sizeof(*srv->frame));
	srv->frame->literal_fd = -1;
	srv->kick = repld_conn_kick;
	srv->ev_timer = event_new(base, -1, EV_PERSIST, timer_cb, srv);
	if (srv->ev_timer == NULL)
		fatalx("cannot create the reply timer");
}

void
repld_server_fini(struct repld_server *srv)
{
	repld_conn_free_all(srv);
	repld_cmd_ghosts_free(srv);
	if (srv->ev_timer != NULL)
		event_free(srv->ev_timer);
	srv->ev_timer = NULL;
	free(srv->frame);
	srv->frame = NULL;
}
