/* SPDX-License-Identifier: MIT */
/*
 * repl-hook/repld/repld_int.h - internals of the replication front-end: the server
 * context (repld/main.c), connections on bufferevents (repld/conn.c), the
 * command pipeline with its per-user queues (repld/cmd.c), the ordered
 * output of replies, data lines and FETCH literals (repld/out.c) and the
 * supervisor link (repld/ipc.c), which implements struct repld_backend_ops.
 *
 * Layers:   main.c -> ipc.c -> conn.c -> cmd.c -> out.c; cmd.c reaches
 *           conn.c only through srv->kick.
 * Runs in:  repld, one event_base, no threads (and the unit tests, which
 *           run a server in-process with a fake backend).
 * Trust:    client sockets come from the supervisor; every byte read from
 *           them is untrusted; the supervisor's messages are validated by
 *           psep_msg_recv before use.
 */
#ifndef STOWD_LMTPD_REPLD_INT_H
#define STOWD_LMTPD_REPLD_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include "privsep/msg.h"
#include "privsep/privsep.h"
#include "repl-hook/proto/proto.h"

struct bufferevent;
struct event;
struct event_base;
struct repld_conn;
struct policy_settings;

/* Output bytes queued for one peer before input and reply streaming
 * pause; streaming resumes below REPLD_OUT_LOW. */
#define REPLD_OUT_HIGH (256u * 1024u)
#define REPLD_OUT_LOW (64u * 1024u)
/* Input bytes buffered by the bufferevent while a connection is paused. */
#define REPLD_IN_MAX (256u * 1024u)
/* Bytes read from a reply fd (data memfd, FETCH file) at a time. */
#define REPLD_CHUNK (64u * 1024u)
/* Request id hash buckets. */
#define REPLD_BUCKETS 1024u

struct repld_config {
	char server_id[PSEP_ID_MAX];
	uint64_t maxliteral;          /* lmtp_max_message_size + 65536 */
	uint64_t command_timeout_ms;  /* idle / stalled input; 0 = none */
	uint64_t reply_timeout_ms;    /* longest wait for a PSEP_REPL_REP */
	unsigned max_connections;     /* 0 = no limit; more are closed */
	uint64_t handshake_timeout_ms;/* TLS + first command; 0 = none */
	const struct policy_settings *set;  /* borrowed */
	void *tls_ctx;                /* borrowed SSL_CTX *, or NULL */
};

/* How commands reach the supervisor.  The test suite supplies its own. */
struct repld_backend_ops {
	/* Send cmd as request id.  body_fd (SAVE literal memfd, or -1) is
	 * taken over: closed once sent or on error.  Returns 0, or -1 with
	 * errno (the command is then answered NO [UNAVAILABLE]). */
	int (*submit)(void *ctx, uint64_t id, const struct psep_repl_cmd *cmd,
		      int body_fd);
	/* True if nothing waits to be sent (for the exit on shutdown). */
	bool (*idle)(void *ctx);
};

/* One command on a connection, from arrival to its last reply octet. */
enum rcmd_kind {
	RCMD_LINE = 0,        /* a preformatted reply line */
	RCMD_OP,              /* executed by the supervisor */
	RCMD_LOOP,            /* an own event from a peer: OK [LOOP] in turn */
};

enum rcmd_state {
	RCMD_QUEUED = 0,      /* waits for an earlier command of its user */
	RCMD_SENT,            /* at the supervisor */
	RCMD_DONE,            /* reply known, in the output queue */
};

struct rcmd {
	TAILQ_ENTRY(rcmd) entry;      /* conn->pipe or conn->outq */
	LIST_ENTRY(rcmd) hash;        /* srv->buckets, while RCMD_SENT */
	TAILQ_ENTRY(rcmd) by_time;    /* srv->sentq, while RCMD_SENT */
	struct repld_conn *conn;
	enum rcmd_kind kind;
	enum rcmd_state state;
	bool hashed;
	uint64_t id;
	uint64_t deadline_ms;
	char tag[REPL_TAG_MAX];
	struct psep_repl_cmd cmd;
	int body_fd;                  /* SAVE literal until submitted */
	/* reply */
	struct psep_repl_rep rep;
	int rep_fd;                   /* data memfd / FETCH file, or -1 */
	uint64_t rep_size;            /* st_size of rep_fd (data memfd) */
	uint64_t off;                 /* streaming position in rep_fd */
	int phase;                    /* repld/out.c streaming step */
	char line[REPL_MAXLINE + 1];  /* RCMD_LINE: the whole reply */
};

TAILQ_HEAD(rcmd_list, rcmd);

struct repld_server {
	const struct repld_config *cfg;
	struct event_base *base;
	const struct repld_backend_ops *backend;
	void *backend_ctx;
	TAILQ_HEAD(repld_conn_list, repld_conn) conns;
	size_t n_conns;
	LIST_HEAD(, rcmd) buckets[REPLD_BUCKETS];
	struct rcmd_list sentq;       /* RCMD_SENT, in deadline order */
	struct event *ev_timer;
	uint64_t next_id;
	struct repl_frame *frame;     /* scratch, one frame at a time */
	/* repld_conn_kick, for cmd.c (which must not call conn.c) */
	void (*kick)(struct repld_conn *c);
	bool shutting_down;
	bool stopped;
	/* Commands answered after reply_timeout_ms that the supervisor may
	 * still run: their user's next command waits for the late reply
	 * (or a second reply_timeout_ms).  cmd.c. */
	LIST_HEAD(, repld_ghost) ghosts;
	struct log_limit rl_conns;    /* replication_max_connections hit */
	struct log_limit rl_handshake;/* replication_handshake_timeout hit */
};

struct repld_ghost {
	LIST_ENTRY(repld_ghost) link;
	uint64_t id;
	uint64_t deadline_ms;
	char user[sizeof(((struct psep_repl_cmd *)0)->user)];
};

enum repld_auth {
	REPLD_AUTH_PENDING = 0,       /* TLS handshake running */
	REPLD_AUTH_UNIX,
	REPLD_AUTH_TLS,
};

struct repld_conn {
	struct repld_server *srv;
	TAILQ_ENTRY(repld_conn) entry;
	struct bufferevent *bev;
	struct event *close_ev;
	struct event *handshake_ev;   /* until the first complete command */
	struct repl_framer *framer;
	char name[64];                /* for logs: "uid=N" or "[addr]:port" */
	unsigned serial;
	enum repld_auth auth;
	bool hello;                   /* successful HELLO */
	bool local;                   /* local-producer connection */
	char peer[PSEP_ID_MAX];       /* HELLO server id ("" if local) */
	void *peer_cert;              /* X509 * of a TLS peer (owned), the
				       * names it may claim in HELLO */
	unsigned bads;
	bool eof;
	bool no_input;                /* LOGOUT, BYE pending, EOF: read no more */
	bool closing;                 /* free once the output is out */
	bool paused;                  /* EV_READ disabled by us */
	char bye[128];                /* "* BYE ..." to send when drained */
	char logout_tag[REPL_TAG_MAX];/* "" unless LOGOUT was received */
	struct rcmd_list pipe;        /* QUEUED and SENT, in arrival order */
	struct rcmd_list outq;        /* DONE, in completion order */
	size_t n_cmds;                /* pipe + outq */
};

/* Queued requests to the supervisor, as bytes: every request has the
 * same size. */
#define REPLD_IPC_OUT_MAX (4096u * sizeof(struct psep_repl_req))

/* ---- repld/conn.c: the server ---- */
/* Stop the event loop (repld_main then returns 0). */
void repld_server_stop(struct repld_server *srv);
/* Stop if shutting down, no connection is left and the backend is idle. */
void repld_server_maybe_exit(struct repld_server *srv);
/* PSEP_SHUTDOWN: wind every connection down. */
void repld_server_shutdown(struct repld_server *srv);
/* Set up srv on base (frees nothing of cfg/base; free with
 * repld_server_fini). */
void repld_server_init(struct repld_server *srv, const struct repld_config *cfg,
		       struct event_base *base,
		       const struct repld_backend_ops *ops, void *ctx);
void repld_server_fini(struct repld_server *srv);

/* ---- repld/conn.c: connections ---- */
/* Serve an accepted replication socket fd (adopted: closed on any error).
 * listener names the replication_listen entry (for logs). */
void repld_conn_start(struct repld_server *srv, int fd, const char *listener);
/* Try to read and run more commands, write replies, close when done. */
void repld_conn_kick(struct repld_conn *c);
/* SHUTDOWN: every connection stops reading and says BYE once its
 * in-flight commands are answered; TLS handshakes are dropped. */
void repld_server_shutdown_conns(struct repld_server *srv);
/* Free every connection at once (process exit). */
void repld_conn_free_all(struct repld_server *srv);

/* ---- repld/cmd.c ---- */
/* Handle one frame (its literal fd is taken over). */
void repld_cmd_frame(struct repld_conn *c, struct repl_frame *f);
/* A reply from the supervisor (fd taken over, -1 if none). */
void repld_cmd_reply(struct repld_server *srv, uint64_t id,
		     const struct psep_repl_rep *rep, int fd);
/* Answer every command whose reply is overdue. */
void repld_cmd_expire(struct repld_server *srv);
/* Forget every command of c (connection going away). */
void repld_cmd_drop_all(struct repld_conn *c);
/* Forget the timed-out commands still awaited (server end). */
void repld_cmd_ghosts_free(struct repld_server *srv);
/* Queue a reply line "text" (no CRLF) to be written in order. */
void repld_cmd_line(struct repld_conn *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Stop reading; close with line once in-flight commands are answered. */
void repld_conn_bye(struct repld_conn *c, const char *line);
/* Count one BAD reply; at REPL_MAX_BADS the connection says BYE. */
void repld_cmd_count_bad(struct repld_conn *c);

/* ---- repld/out.c ---- */
/* Write queued replies while the output is below REPLD_OUT_HIGH.  Returns
 * 0, or -1 if the connection must be dropped (reply fd failed mid-way). */
int repld_out_flush(struct repld_conn *c);
/* Free an rcmd (closes its fds). */
void repld_rcmd_free(struct rcmd **r);

/* ---- repld/ipc.c ---- */
struct repld_ipc;
struct psep_link;
/* Use the supervisor link (borrowed, outlives the result).  Free with
 * repld_ipc_free. */
struct repld_ipc *repld_ipc_new(struct repld_server *srv, struct psep_link *link);
void repld_ipc_free(struct repld_ipc **ipc);
/* One validated message from the supervisor other than PSEP_SHUTDOWN
 * (psep_child_ops.dispatch; m->fd may be taken). */
void repld_ipc_dispatch(struct repld_ipc *ipc, struct psep_msg *m);
extern const struct repld_backend_ops repld_ipc_backend;

#endif
