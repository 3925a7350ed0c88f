/* SPDX-License-Identifier: MIT */
/*
 * privsep/sup/sup_int.h - the supervisor's private interfaces.
 *
 * Runs in:  the supervisor (root, libevent).
 * Trust:    reads nothing from the network; reads only validated IPC
 *           messages (psep_msg_recv) from its children.
 *
 * The files, bottom-up (a file calls only files above it in this list,
 * never one below; the top reaches down through struct sup_top_ops and
 * the role table in struct sup):
 *   notify.c    readiness on $NOTIFY_SOCKET
 *   children.c  the child table: spawn (entry from sup->entries), IPC, reap
 *   pending.c   clients waiting for a front-end; handing one to a child
 *   dispatch.c  the writer pools and the job queue
 *   events.c    events handed to repl-hook and their answers
 *   repl.c      replication requests -> writer jobs (+ events)
 *   frontend.c  the lmtpd pool: clients, recipients, deliveries
 *   replproc.c  the repld and repl-hook processes, TLS contexts, users
 *   listen.c    listening sockets, accepting clients
 *   entry.c     the role -> entry table
 *   sup.c       start-up, signals, readiness, reload, stop (the top)
 */
#ifndef STOWD_SUP_INT_H
#define STOWD_SUP_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/types.h>
#include <time.h>

#include <event2/event.h>

#include "policy/policy.h"
#include "privsep/msg.h"
#include "privsep/privsep.h"
#include "privsep/tls.h"

struct sup;
struct sup_child;

/* What the lower files tell the top (sup.c) through sup->top. */
struct sup_top_ops {
	/* Something may have become ready: send READY=1 once all is. */
	void (*check_ready)(struct sup *sup);
	/* Something finished: during a stop, retire what is no longer
	 * needed and end the loop when no child is left. */
	void (*check_stopped)(struct sup *sup);
	/* A child of a pool was reaped: refill the pools (at once, or after
	 * a short delay if it died young, to avoid a fork loop) and check
	 * whether a graceful stop is complete. */
	void (*child_gone)(struct sup_child *c);
};

/* One row of the role -> entry table (entry.c).  main NULL: this stowd
 * has no such process.  arg returns the spawn argument for sp (which
 * holds the role, credentials and kept fds of the spawn site); it is
 * static or supervisor storage, copied into the child at fork. */
struct sup_entry {
	psep_child_main main;
	void *(*arg)(struct sup *sup, const struct psep_spawn *sp);
};

struct sup_child_ops {
	/* HELLO done. */
	void (*ready)(struct sup_child *c);
	/* A validated message other than HELLO/LOG; the callee owns msg->fd. */
	void (*message)(struct sup_child *c, struct psep_msg *msg);
	/* The process was reaped (wstatus from waitpid). */
	void (*exited)(struct sup_child *c, int wstatus);
};

struct sup_child {
	TAILQ_ENTRY(sup_child) link;
	struct sup *sup;
	pid_t pid;
	enum psep_role role;
	enum psep_state state;
	unsigned generation;
	int ipc;
	struct event *ev;
	int refs;                 /* holders besides the child list */
	bool dead;
	bool retired;             /* SHUTDOWN sent or to be sent; never respawned */
	const struct sup_child_ops *ops;
	void *owner;              /* role-specific state, owned by its module */
	struct timespec started;
};

TAILQ_HEAD(sup_child_list, sup_child);

/* One request for one user, handed to a writer: a PSEP_WRITE_REQ (an
 * LMTP delivery) or a PSEP_REPL_OP_REQ (a replication operation). */
struct sup_job {
	TAILQ_ENTRY(sup_job) link;
	uint64_t id;
	uid_t uid;
	uint16_t type;                /* PSEP_WRITE_REQ or PSEP_REPL_OP_REQ */
	void *req;                    /* the request body (struct psep_write_req
				       * + prefix, or struct psep_repl_op_req),
				       * malloc'd */
	size_t req_len;
	struct psep_creds creds;      /* the user's (fork mode spawns with it) */
	int memfd;                    /* sent with the request, or -1 */
	/* rep: the writer's validated reply (WRITE_REP for WRITE_REQ,
	 * REPL_OP_REP for REPL_OP_REQ); the callee may take rep->fd (set it
	 * to -1).  rep == NULL: the job failed before the writer answered;
	 * failure says why.  The callee must not free the job; it may take
	 * job->memfd (set it to -1). */
	void (*done)(struct sup_job *job, struct psep_msg *rep, const char *failure);
	/* Optional: the writer's PSEP_WRITE_STAMP for a WRITE_REQ sent with
	 * early_stamp (at most one, before done). */
	void (*stamped)(struct sup_job *job, const struct psep_write_rep *stamp);
	bool stamp_seen;
	bool started;                 /* sent to a writer (which may have acted
				       * on it before it failed) */
	void *arg;
};

TAILQ_HEAD(sup_job_list, sup_job);

struct sup_listener;
struct sup_event_wait;
TAILQ_HEAD(sup_event_list, sup_event_wait);

/* A client accepted while no front-end was ready (bounded queue). */
#define SUP_LISTENER_MAX 64
struct sup_pending {
	TAILQ_ENTRY(sup_pending) link;
	int fd;
	char listener[SUP_LISTENER_MAX];
};
TAILQ_HEAD(sup_pending_list, sup_pending);
#define SUP_MAX_PENDING 256

struct sup {
	struct event_base *base;
	struct policy_settings set;
	char *config_path;
	bool config_required;
	unsigned generation;
	struct policy_userdb *userdb;
	struct sup_child_list children;
	struct sup_listener *listeners;
	size_t n_listeners;
	struct sup_job_list queue;    /* jobs waiting for a writer */
	struct sup_pending_list pending;
	unsigned n_pending;
	unsigned jobs_running;
	uint64_t next_id;
	unsigned fe_next;             /* round-robin start */
	bool stopping;
	bool ready_sent;              /* READY=1 sent for this generation */
	struct psep_creds run_creds;
	char hostname[256];
	char server_id[128];
	/* replication */
	/* The replication TLS files, open (as root) but never read here:
	 * repld (tcp: listeners) and repl-hook inherit the fds and build
	 * their own contexts; no other child keeps them. */
	struct psep_tls_fds tls_fds;
	bool tls_server;              /* repld needs a server context */
	bool tls_client;              /* repl-hook needs a client context */
	struct sup_event_list events; /* events queued for / sent to repl-hook */
	unsigned n_events;
	struct sup_pending_list repl_pending; /* clients waiting for repld */
	unsigned n_repl_pending;
	struct event *ev_sig[10];
	struct event *ev_deadline;
	struct event *ev_respawn;
	const struct sup_top_ops *top;     /* sup.c's callbacks */
	const struct sup_entry *entries;   /* PSEP_ROLE_COUNT rows */
#ifdef STOWD_TEST_HOOKS
	uint32_t test_op;             /* sent before the next job (SIGUSR1/2) */
#endif
};

/* The top's callbacks (see struct sup_top_ops). */
static inline void
sup_check_ready(struct sup *sup)
{
	sup->top->check_ready(sup);
}

static inline void
sup_check_stopped(struct sup *sup)
{
	sup->top->check_stopped(sup);
}

static inline void
sup_child_gone(struct sup_child *c)
{
	c->sup->top->child_gone(c);
}

/* children.c */
/* Spawn a child for sp->role with the entry function and argument of
 * sup->entries (sp->main and sp->arg are ignored).  NULL if the fork
 * failed or this stowd has no entry for the role (logged). */
struct sup_child *sup_child_spawn(struct sup *sup, const struct psep_spawn *sp,
				  const struct sup_child_ops *ops, void *owner);
/* Send a message; a child that cannot take it is killed.  Returns 0/-1. */
int sup_child_send(struct sup_child *c, uint16_t type, uint64_t id,
		   const void *body, size_t len, int fd);
void sup_child_kill(struct sup_child *c, const char *why);
/* Mark c retired (never respawned); send SHUTDOWN if it is ready (a
 * child still in HELLO is killed).  Idempotent. */
void sup_child_retire(struct sup_child *c);
void sup_child_ref(struct sup_child *c);
void sup_child_unref(struct sup_child **c);
void sup_children_reap(struct sup *sup);
unsigned sup_children_count(struct sup *sup, enum psep_role role, bool live_only);
/* Seconds since the child started. */
double sup_child_age(const struct sup_child *c);
/* The first child of role that is neither retired nor dead (and ready
 * if ready_only), or NULL. */
struct sup_child *sup_child_find(struct sup *sup, enum psep_role role,
				 bool ready_only);

/* pending.c */
/*
 * The bounded queue of clients waiting for a front-end (LMTP: sup->pending,
 * repld: sup->repl_pending; *n counts the entries):
 * - push takes fd; when SUP_MAX_PENDING wait already the connection is
 *   closed and logged, with kind ("LMTP", "replication") naming the
 *   front-end;
 * - take removes the first client: its fd (the caller's now, -1 if the
 *   queue is empty) and its listener into listener[SUP_LISTENER_MAX];
 * - drop closes every waiting client.
 */
void sup_pending_push(struct sup_pending_list *q, unsigned *n, int fd,
		      const char *listener, const char *kind);
int sup_pending_take(struct sup_pending_list *q, unsigned *n, char *listener);
void sup_pending_drop(struct sup_pending_list *q, unsigned *n);
/* Send client fd (not taken) to front-end c as PSEP_CLIENT_FD; 0 or -1. */
int sup_client_send(struct sup_child *c, int fd, const char *listener);

/* dispatch.c */
void sup_writers_start(struct sup *sup);
void sup_writers_retire(struct sup *sup);
/* Queue a job; takes ownership of job (and job->memfd). */
void sup_dispatch_submit(struct sup *sup, struct sup_job *job);
void sup_job_free(struct sup_job **job);
bool sup_dispatch_idle(struct sup *sup);
/* Writers that must be ready before READY=1 (the seteuid pool). */
unsigned sup_writers_expected(const struct sup *sup);

/* events.c: events handed to repl-hook. */
/* Event outcome: enum psep_event_status (FAILED also when repl-hook is
 * gone or did not answer in time). */
typedef void (*sup_event_fn)(struct sup *sup, enum psep_event_status st,
			     uint32_t acks, void *arg);
/* Hand one event to repl-hook (queued while it starts).  body_fd is not
 * taken (it is duplicated).  Returns 0 (cb is called later, exactly
 * once) or -1 (no repl-hook configured or it cannot come back: a stop). */
int sup_event_send(struct sup *sup, const struct psep_repl_cmd *cmd,
		   const char *prefix, size_t prefix_len, int body_fd,
		   uint32_t want_acks, uint64_t timeout_ms, sup_event_fn cb, void *arg);
bool sup_events_idle(const struct sup *sup);
/* The current ready repl-hook, or NULL. */
struct sup_child *sup_hook_current(struct sup *sup);
/* True if a repl-hook is running or will be (replicas configured, not
 * stopping). */
bool sup_hook_expected(struct sup *sup);
/* Called by replproc.c when repl-hook is ready, gone or answers. */
void sup_events_hook_ready(struct sup *sup);
void sup_events_hook_gone(struct sup *sup, struct sup_child *hook);
void sup_events_reply(struct sup *sup, struct sup_child *hook, const struct psep_msg *m);

/* repl.c: replication requests (from repld and repl-hook) and events. */

/* The outcome of one replication operation, as on the wire; fd (data
 * memfd or FETCH file, or -1) is the callee's to close. */
typedef void (*sup_repl_done_fn)(struct sup *sup, const struct psep_repl_rep *rep,
				 int fd, void *arg);
/* Run cmd for the resolved user u in a writer; an effective event is
 * journaled by repl-hook (when replicas are configured) before done is
 * called.  Takes memfd (SAVE body, or -1).  done is called exactly once
 * (at once only if the body cannot be duplicated). */
void sup_repl_run(struct sup *sup, const struct policy_user *u,
		  const struct psep_repl_cmd *cmd, int memfd, sup_repl_done_fn done,
		  void *arg);
/* The writer's facts for op -> the wire reply (§5.2, §8). */
void sup_repl_map(uint32_t op, const struct psep_repl_op_rep *w,
		  struct psep_repl_rep *r);
/* A validated PSEP_REPL_REQ from repld or repl-hook; the callee owns m->fd. */
void sup_repl_request(struct sup_child *c, struct psep_msg *m);

/* frontend.c */
void sup_frontends_start(struct sup *sup);
void sup_frontends_retire(struct sup *sup);
/* Hand an accepted client socket to a front-end (or keep it until one is
 * ready, up to SUP_MAX_PENDING); takes ownership of fd. */
void sup_frontends_hand(struct sup *sup, int fd, const char *listener);
/* Close clients still waiting for a front-end. */
void sup_frontends_drop_pending(struct sup *sup);

/* replproc.c: the repld and repl-hook processes, TLS contexts, users. */
void sup_repl_procs_start(struct sup *sup);
/* Retire repld (stop, reload). */
void sup_repld_retire(struct sup *sup);
/* Retire repl-hook (reload; a stop once nothing else needs it). */
void sup_hook_retire(struct sup *sup);
/* Hand an accepted replication client to repld; takes fd. */
void sup_repld_hand(struct sup *sup, int fd, const char *listener);
/* The replication TLS files of s, as the running processes will need
 * them: opened into *fds_out (all -1 when no context is needed), which
 * contexts are needed in *server_out / *client_out, and both contexts
 * built once in a short-lived child (psep_tls_check) so that a bad file
 * is refused now.  0, or -1 with err filled (nothing open). */
struct sup_tls {
	struct psep_tls_fds fds;
	bool server;
	bool client;
};
int sup_tls_build(const struct policy_settings *s, struct sup_tls *out, char *err,
		  size_t errsize);
/* Close the TLS fds of sup; sup_tls_take: replace them with t's. */
void sup_tls_free(struct sup *sup);
void sup_tls_take(struct sup *sup, struct sup_tls *t);
/* Ready checks: repld/repl-hook ready when configured. */
bool sup_repl_procs_ready(struct sup *sup);

/* listen.c */
int sup_listeners_open(struct sup *sup, const char **why_out);
void sup_listeners_close(struct sup *sup);
/* True if the listener settings of a and b are the same. */
bool sup_listeners_same(const struct policy_settings *a, const struct policy_settings *b);

/* entry.c: the role -> entry table (struct sup_entry), indexed by role. */
extern const struct sup_entry sup_entries[PSEP_ROLE_COUNT];

/* notify.c: systemd-style readiness on $NOTIFY_SOCKET (no-op if unset). */
void sup_notify(const char *state);

#endif
