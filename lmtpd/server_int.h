/* SPDX-License-Identifier: MIT */
/*
 * lmtpd/server_int.h - the process glue of the front-end: the server
 * context (main.c, the callbacks of the privsep/child.h skeleton), client
 * connections on bufferevents (conn.c) and the use of the supervisor link
 * (ipc.c), which implements struct lmtp_backend_ops.
 * Layers:   main.c -> ipc.c -> conn.c; no file calls one above it.
 *
 * Runs in:  lmtpd, one event_base, no threads.
 * Trust:    client sockets come from the supervisor; the supervisor's
 *           messages are validated by psep_msg_recv before use.
 */
#ifndef STOWD_LMTPD_SERVER_INT_H
#define STOWD_LMTPD_SERVER_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/queue.h>

#include "lmtpd/lmtpd_int.h"
#include "privsep/privsep.h"

struct event_base;
struct lmtp_conn;
struct lmtp_ipc;
struct lmtp_peer;
struct lmtp_metrics;
struct psep_msg;
struct psep_child;
struct psep_link;

/* Bytes queued to the supervisor at most. */
#define LMTP_IPC_OUT_MAX (32u * 1024u * 1024u)
/* Bytes of client input buffered before reading pauses. */
#define LMTP_IN_MAX (256u * 1024u)

struct lmtp_server {
	const struct lmtp_config *cfg;
	struct event_base *base;
	struct psep_child *child;           /* the process skeleton */
	struct lmtp_ipc *ipc;
	struct lmtp_metrics *metrics;       /* metrics.c */
	const struct lmtp_backend_ops *backend;  /* for new sessions */
	void *backend_ctx;
	TAILQ_HEAD(lmtp_conn_list, lmtp_conn) conns;
	size_t n_conns;
	LIST_HEAD(lmtp_peer_list, lmtp_peer) peers;   /* conn.c */
	struct log_limit rl_conns;          /* limit-hit log lines */
	struct log_limit rl_peer;
	bool shutting_down;       /* PSEP_SHUTDOWN received */
	void *tls_ctx;            /* SSL_CTX * for STARTTLS, or NULL */
	bool tls_required;        /* lmtp_tls = required */
};

/* conn.c (knows neither ipc.c nor main.c: sessions reach the supervisor
 * through srv->backend, the exit check goes to the skeleton) */
/* Start a session on client socket fd (adopted: closed on any error);
 * tcp: it came from a tcp: listener (STARTTLS is offered there only). */
void lmtp_conn_start(struct lmtp_server *srv, int fd, bool tcp);
/* lmtp_session_shutdown on every session. */
void lmtp_conn_shutdown_all(struct lmtp_server *srv);
/* Free every connection at once (process exit). */
void lmtp_conn_free_all(struct lmtp_server *srv);

/* metrics.c: Prometheus metrics over HTTP on metrics_listen clients. */
/* Send on link (borrowed, outlives the result); free with lmtp_metrics_free. */
struct lmtp_metrics *lmtp_metrics_new(struct lmtp_server *srv, struct psep_link *link);
void lmtp_metrics_free(struct lmtp_metrics **m);
/* A client socket (adopted: closed on any error). */
void lmtp_metrics_client(struct lmtp_metrics *m, int fd);
/* A validated PSEP_METRICS_REP. */
void lmtp_metrics_reply(struct lmtp_metrics *m, const struct psep_msg *msg);
/* tls.c (the key is parsed here only) */
/* SSL_CTX * (TLS >= 1.2) from the open PEM files (read with pread, left
 * open), or NULL with err filled.  Free with lmtp_tls_ctx_free. */
void *lmtp_tls_ctx_from_fds(int cert_fd, int key_fd, char *err, size_t errsize);
void *lmtp_tls_new_ssl(void *ctx);
void lmtp_tls_ctx_free(void *ctx);

/* ipc.c */
/* Use the supervisor link (borrowed, outlives the result).  Caller frees
 * with lmtp_ipc_free. */
struct lmtp_ipc *lmtp_ipc_new(struct lmtp_server *srv, struct psep_link *link);
void lmtp_ipc_free(struct lmtp_ipc **ipc);
/* One validated message from the supervisor other than PSEP_SHUTDOWN
 * (psep_child_ops.dispatch; m->fd may be taken). */
void lmtp_ipc_dispatch(struct lmtp_ipc *ipc, struct psep_msg *m);
/* Backend for sessions; ctx is the struct lmtp_ipc *. */
extern const struct lmtp_backend_ops lmtp_ipc_backend;

#endif
