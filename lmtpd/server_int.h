/* SPDX-License-Identifier: MIT */
/*
 * lmtpd/server_int.h - the process glue of the front-end: the server
 * context (main.c), client connections on bufferevents (conn.c) and the
 * supervisor link (ipc.c), which implements struct lmtp_backend_ops.
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

struct event_base;
struct lmtp_conn;
struct lmtp_ipc;

/* Bytes of client input buffered before reading pauses. */
#define LMTP_IN_MAX (256u * 1024u)

struct lmtp_server {
	const struct lmtp_config *cfg;
	struct event_base *base;
	struct lmtp_ipc *ipc;
	TAILQ_HEAD(lmtp_conn_list, lmtp_conn) conns;
	size_t n_conns;
	bool shutting_down;       /* PSEP_SHUTDOWN received */
	int status;               /* exit status once the loop stops */
};

/* main.c */
/* Stop the event loop now; lmtp_main returns status. */
void lmtp_server_stop(struct lmtp_server *srv, int status);
/* PSEP_SHUTDOWN: stop sessions gracefully, exit when the last is gone. */
void lmtp_server_shutdown(struct lmtp_server *srv);
/* Exit if shutting down, no session is left and nothing is queued. */
void lmtp_server_maybe_exit(struct lmtp_server *srv);

/* conn.c */
/* Start a session on client socket fd (adopted: closed on any error). */
void lmtp_conn_start(struct lmtp_server *srv, int fd);
/* lmtp_session_shutdown on every session. */
void lmtp_conn_shutdown_all(struct lmtp_server *srv);
/* Free every connection at once (process exit). */
void lmtp_conn_free_all(struct lmtp_server *srv);

/* ipc.c */
/* Watch the supervisor link fd (made non-blocking).  Caller frees with
 * lmtp_ipc_free; fd stays the caller's. */
struct lmtp_ipc *lmtp_ipc_new(struct lmtp_server *srv, int fd);
void lmtp_ipc_free(struct lmtp_ipc **ipc);
/* True if no message waits in the outgoing queue. */
bool lmtp_ipc_idle(const struct lmtp_ipc *ipc);
/* Backend for sessions; ctx is the struct lmtp_ipc *. */
extern const struct lmtp_backend_ops lmtp_ipc_backend;

#endif
