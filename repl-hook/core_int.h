/* SPDX-License-Identifier: MIT */
/*
 * repl-hook/core_int.h - state shared by the repl-hook core files: hook.c
 * (process top, events and their acknowledgements), replica.c
 * (accessors, server ids), local.c (sync.c's requests to the supervisor),
 * conn.c
 * (one TLS connection per replica: life cycle and libevent callbacks),
 * conn_send.c (journal streaming and sync.c's direct commands) and
 * conn_reply.c (greeting, HELLO and the replies to what was sent).
 *
 * Runs in:  repl-hook (libevent, one thread).
 * Trust:    see hook_int.h.
 * Order:    an event is appended to every eligible journal and the
 *           connections are kicked (hook_conn_kick: the entries go out on
 *           the next turn of the loop); a zero timer then fsyncs the
 *           journals, and only after that fsync is the event answered or
 *           registered as pending.  An OK that arrives before the fsync is
 *           counted and answered after it (hook.c).
 */
#ifndef STOWD_REPL_HOOK_CORE_INT_H
#define STOWD_REPL_HOOK_CORE_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>

#include <event2/event.h>

#include "policy/policy.h"
#include "repl-hook/hook_int.h"
#include "repl-hook/journal_int.h"

struct bufferevent;
struct hook_conn;
struct repl_framer;

struct hook_replica {
	struct hook *h;
	size_t index;
	const struct policy_replica *cfg;   /* borrowed from the settings */
	char server_id[PSEP_ID_MAX];        /* "" until the first greeting */
	struct journal *j;
	struct hook_conn *conn;             /* NULL while disconnected */
	void *sync_slot;                    /* sync.c */
	struct event *ev_retry;             /* reconnect after backoff */
	struct event *ev_full;              /* replication_full_sync_interval */
	struct event *ev_trunc;             /* truncate a journal that stayed
					     * drained (hook_conn_flush_acked) */
	uint64_t backoff_ms;
	/* the journal entry that got the last temporary NO and how many it
	 * got in a row (conn_reply.c; kept across reconnects; seq 0: none) */
	uint64_t temp_seq;
	unsigned temp_failures;
	bool full_due;                      /* next hook_sync_start is full */
	bool full_running;                  /* the running sync is full */
	bool overflow_logged;
	uint64_t last_ack_flush_ms;
	/* counters since start, for PSEP_STATS_REP (stats.c) */
	uint64_t n_sent, n_acks, n_timeouts;
	struct psep_histogram ack_lat;      /* entry sent -> its OK */
	uint64_t unacked_since_ms;          /* the journal stopped being
					     * drained (0: drained) */
	char last_error[128];               /* the last connection failure */
	uint64_t sync_last;                 /* end of the last full sync (epoch s) */
	uint64_t sync_ms, sync_repairs;     /* its length and changes */
	uint64_t repairs_total;             /* changes of every sync */
};

/*
 * What the connection layer (conn*.c) tells the layers above it; hook.c
 * fills it in (the events' acknowledgements, sync.c).  A lower file never
 * calls a higher one by name.
 */
struct hook_notify {
	/* An entry of r with this seq got an OK reply (counts towards
	 * synchronous acknowledgements). */
	void (*event_acked)(struct hook *h, struct hook_replica *r, uint64_t seq);
	/* hook_sync_mark_dirty, hook_sync_start, hook_sync_abort,
	 * hook_sync_running (hook_int.h). */
	void (*mark_dirty)(struct hook_replica *r, const char *user,
			   const char *mailbox);
	void (*sync_start)(struct hook_replica *r, bool full);
	void (*sync_abort)(struct hook_replica *r);
	bool (*sync_running)(const struct hook_replica *r);
	/* A sync run with r ended (ok: it finished; else it was given up):
	 * mailboxes compared, changes made (stowctl resync, stats.c). */
	void (*sync_done)(struct hook_replica *r, bool ok, uint64_t mailboxes,
			  uint64_t repairs);
	/* Journal an event of this server for every replica, as if the
	 * supervisor had sent it, but answered to no one: a change of others
	 * that change capture found (watch.c, doc/replication-protocol.md
	 * §7.6).  No SAVE (it would need a body). */
	void (*event_local)(struct hook *h, const struct psep_repl_cmd *cmd);
	/* Change capture for sync.c (hook_capture_*, hook_int.h): is it
	 * on; is a capture of user waiting or running; journal the folder
	 * events of a CAPTURE_BOXES answer in fd and count them. */
	bool (*capture_on)(const struct hook *h);
	bool (*capture_busy)(const struct hook *h, const char *user);
	unsigned (*capture_boxes)(struct hook *h, const char *user, int fd);
};

struct hook_lreq;
struct psep_link;

/* hook.c fills it in (the process); the lower files read it. */
struct hook {
	const struct hook_args *args;       /* borrowed, from the spawner */
	const struct policy_settings *set;
	void *tls_ctx;                      /* SSL_CTX * */
	void *own_tls;                      /* tls_ctx if built here from the
					     * supervisor's fds (freed at
					     * teardown) */
	struct event_base *base;
	const struct hook_notify *notify;
	int dirfd;
	char server_id[PSEP_ID_MAX];
	size_t n_replicas;
	struct hook_replica *replicas;
	struct hook_ipc *ipc;               /* hook.c: events */
	struct psep_link *link;             /* borrowed from privsep/child.c */
	TAILQ_HEAD(hook_lreq_list, hook_lreq) lreqs;  /* local.c */
	struct hook_resync *resyncs;        /* stats.c: stowctl resyncs */
	uint64_t next_lreq_id;              /* local.c */
	struct hook_watch *watch;           /* watch.c, NULL when off */
	bool stopping;
};

/* stats.c: what the supervisor asks of repl-hook for stowctl and the
 * metrics (PSEP_STATS_REQ, PSEP_RESYNC_REQ). */
void hook_stats_answer(struct hook *h, const struct psep_msg *m);
void hook_resync_request(struct hook *h, const struct psep_msg *m);
void hook_stats_sync_done(struct hook_replica *r, bool ok, uint64_t mailboxes,
			  uint64_t repairs);
/* Answer every resync still waiting (shutdown). */
void hook_resync_fail_all(struct hook *h);

/* replica.c */
/* Read r's <NAME>.id (if any and valid) into r->server_id. */
void hook_replica_load_server_id(struct hook_replica *r);
/* Persist a (new) server id for r from its greeting. */
void hook_replica_set_server_id(struct hook_replica *r, const char *id);
uint64_t hook_now_ms(void);

/* local.c: the requests of sync.c (hook_local_send, hook_users_request) */
/* Send on link (borrowed for h's life). */
void hook_local_init(struct hook *h, struct psep_link *link);
/* A PSEP_REPL_REP or PSEP_USERS_REP: call its request's callback (which
 * takes m->fd). */
void hook_local_reply(struct hook *h, struct psep_msg *m);
/* The supervisor is gone: every request gets its "no answer" call. */
void hook_local_fail_all(struct hook *h);

/* ---- one replica connection (conn.c, conn_send.c, conn_reply.c) ---- */

#define CONN_BACKOFF_MIN_MS 1000u   /* hook_conn_backoff_min_ms() */
#define CONN_BACKOFF_MAX_MS 30000u
#define CONN_BACKOFF_TEMP_MAX_MS 300000u  /* after a temporary NO (§10.3) */
/* A journal entry answered with a temporary NO this many times in a row
 * (each on a new connection after the backoff, so at least 15 s after the
 * first) is poisoned: it is dropped and its mailbox marked for sync, as
 * for a permanent NO, so the rest of the journal flows (§10.3). */
#define CONN_TEMP_NO_MAX 5u
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
#define CONN_TRUNC_SETTLE_MS 200u            /* drained this long: truncate */
#define CONN_TRUNC_BYTES (16u * 1024u * 1024u) /* drained and this big: now */

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
	uint64_t sent_ms;
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

/* conn.c */
/* Start connecting (now). */
void hook_conn_start(struct hook_replica *r);
/* New entries are in r's journal (written; their fsync follows on the next
 * turn of the loop): send what the window allows. */
void hook_conn_kick(struct hook_replica *r);
/* Close the connection and stop reconnecting (shutdown); flushes the acked
 * offset. */
void hook_conn_stop(struct hook_replica *r);
/* replication_full_sync_interval passed: the next sync is full (started
 * now if the replica is connected and drained). */
void hook_conn_full_due(struct hook_replica *r);
/* Change capture marked mailboxes dirty: once connected and drained, run
 * a dirty sync of them (a running sync runs again when it ends). */
void hook_conn_dirty_due(struct hook_replica *r);
/* Record r's acked offset in its journal (and truncate it when drained):
 * always if force, else at most once per CONN_ACK_FLUSH_MS, at once for a
 * drained journal of CONN_TRUNC_BYTES, or after it stayed drained for
 * CONN_TRUNC_SETTLE_MS.  A journal that was truncated restarts the
 * connection's cursor at 0. */
void hook_conn_flush_acked(struct hook_replica *r, bool force);
/* Free a direct command (closes its body fd). */
void hook_dcmd_free(struct dcmd *d);

/* conn_send.c */
/* Write literal chunks, direct commands and journal entries until the
 * output reaches CONN_OUT_HIGH or the window is full, then let sync.c run
 * if the journal is drained.  On error c->dead is set (the caller frees). */
void hook_conn_fill(struct hook_conn *c);
/* Connected and the journal drained and acked: start sync.c (once). */
void hook_conn_maybe_sync(struct hook_conn *c);
/* Advance the acked offset over the answered prefix of sent entries. */
void hook_conn_advance_acked(struct hook_conn *c);

/* conn_reply.c */
/* Handle the frame in c->frame (a literal fd left in it is the caller's
 * to close).  Sets c->dead when the connection must close. */
void hook_conn_frame(struct hook_conn *c);

/* replica.c: cb for each journal entry of r not yet acknowledged, oldest
 * first, at most REPLICA_SCAN_MAX (100,000) of them; how many were read. */
uint64_t hook_replica_unacked_each(struct hook_replica *r,
				   void (*cb)(const struct journal_entry *e, void *arg),
				   void *arg);

/* conn.c: the first reconnect back-off, CONN_BACKOFF_MIN_MS (a test
 * build may take a shorter one from STOWD_TEST_BACKOFF_MIN_MS). */
uint64_t hook_conn_backoff_min_ms(void);

#endif
