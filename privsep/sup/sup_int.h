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
 *   counters.c  counters: deliveries, latencies, deaths by signal
 *   children.c  the child table: spawn (entry from sup->entries), IPC, reap
 *   pending.c   clients waiting for a front-end; handing one to a child
 *   body.c      message bodies shared by queued jobs; the fd budget
 *   dispatch.c  the writer pools and the job queue
 *   events.c    events handed to repl-hook and their answers
 *   stats.c     the counter snapshot; the questions asked of repl-hook
 *               (stats, resync); the metrics snapshot for lmtpd
 *   quota.c     quota rules -> limits, the RCPT quota check (a writer job)
 *   repl.c      replication requests -> writer jobs (+ events)
 *   frontend.c  the lmtpd pool: clients, recipients, deliveries
 *   replproc.c  the repld and repl-hook processes, TLS contexts, users
 *   listen.c    listening sockets, accepting clients
 *   control.c   the control socket (stowctl): requests, status, reload
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
struct sup_body;

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
	/* Reload the config now (control socket); 0, or -1 with the reason
	 * in err[errsize] (the running config stays). */
	int (*reload)(struct sup *sup, char *err, size_t errsize);
	/* Begin a graceful stop. */
	void (*stop)(struct sup *sup);
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
	bool killed;              /* SIGKILL sent: read nothing more from it */
	bool refused;             /* killed for a message it sent (the spec
				   * table or its role's protocol refused it) */
	bool retired;             /* SHUTDOWN sent or to be sent; never respawned */
	const struct sup_child_ops *ops;
	void *owner;              /* role-specific state, owned by its module */
	struct timespec started;
	uid_t uid;                /* the uid it runs as (status) */
	uint64_t served;          /* requests it made or answered (status) */
	/* fork mode: a writer child asked of the template, pid still 0 */
	TAILQ_ENTRY(sup_child) fork_link;
	uint64_t fork_id;
};

TAILQ_HEAD(sup_child_list, sup_child);

/* One request for one user, handed to a writer: a PSEP_WRITE_REQ (an
 * LMTP delivery) or a PSEP_REPL_OP_REQ (a replication operation). */
struct sup_job {
	TAILQ_ENTRY(sup_job) link;
	uint64_t id;
	uid_t uid;
	uint16_t type;                /* PSEP_WRITE_REQ, PSEP_REPL_OP_REQ or
				       * PSEP_WATCH_OP_REQ */
	void *req;                    /* the request body (struct psep_write_req
				       * + prefix, or struct psep_repl_op_req),
				       * malloc'd */
	size_t req_len;
	struct psep_creds creds;      /* the user's (fork mode spawns with it) */
	int memfd;                    /* sent with the request, or -1 */
	struct sup_body *body;        /* or this shared body (one reference;
				       * LMTP recipients of one message) */
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
	bool refused;                 /* rep == NULL because its writer was
				       * killed for a message it sent while it
				       * held this job: the job's own failure
				       * (its data made the writer's answer
				       * unacceptable), which a retry repeats */
	void *arg;
};

TAILQ_HEAD(sup_job_list, sup_job);

/* A message body (sealed memfd) held for queued jobs: the recipients of
 * one message share one fd, whatever number of DELIVER_REQs brought it. */
struct sup_body {
	LIST_ENTRY(sup_body) link;
	struct sup *sup;
	int fd;
	dev_t dev;
	ino_t ino;
	const void *source;           /* the front-end that sent it */
	unsigned refs;
};
LIST_HEAD(sup_body_list, sup_body);

/* Jobs queued and writers busy for one uid (fairness, per-user limits). */
struct sup_uid_load {
	LIST_ENTRY(sup_uid_load) link;
	uid_t uid;
	unsigned queued;
	unsigned busy;
};
LIST_HEAD(sup_uid_load_list, sup_uid_load);

struct sup_listener;
struct sup_event_wait;
struct sup_hookq;
struct sup_control;
struct sup_lastdlv;
TAILQ_HEAD(sup_hookq_list, sup_hookq);
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
/* Events queued for repl-hook (while it starts) that hold a copy of their
 * body fd: part of the fd budget (body.c); over it an event fails as one
 * over SUP_MAX_EVENTS does. */
#define SUP_MAX_EVENT_FDS 256u

#define SUP_ORPHANS 16

struct sup {
	struct event_base *base;
	struct policy_settings set;
	uint64_t nofile;              /* RLIMIT_NOFILE, read at each load */
	/* set.lmtp_allow_networks parsed at each load (listen.c) */
	struct policy_net allow_nets[POLICY_MAX_NETWORKS];
	size_t n_allow_nets;
	char *config_path;
	bool config_required;
	unsigned generation;
	struct policy_userdb *userdb;
	struct sup_child_list children;
	struct sup_listener *listeners;
	size_t n_listeners;
	struct sup_job_list queue;    /* jobs waiting for a writer */
	unsigned n_queued;            /* ... their number */
	struct sup_uid_load_list loads; /* per uid with queued or busy jobs */
	struct sup_body_list bodies;  /* bodies held for jobs */
	unsigned n_bodies;
	struct log_limit rl_budget;   /* limit-hit log lines */
	struct log_limit rl_queue;
	struct log_limit rl_index;
	unsigned respawn_ms;          /* back-off of failed spawns */
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
	unsigned n_event_fds;         /* ... of them holding a body fd */
	struct log_limit rl_events;
	struct sup_pending_list repl_pending; /* clients waiting for repld */
	unsigned n_repl_pending;
	struct event *ev_sig[10];
	struct event *ev_deadline;
	struct event *ev_respawn;
	const struct sup_top_ops *top;     /* sup.c's callbacks */
	const struct sup_entry *entries;   /* PSEP_ROLE_COUNT rows */
	/* operations */
	struct psep_counters ctr;     /* counters since start (counters.c) */
	time_t started;               /* epoch seconds */
	struct sup_hookq_list hookq;  /* questions to repl-hook (stats.c) */
	uint64_t hookq_next;
	struct sup_control *control;  /* control.c */
	struct sup_lastdlv *lastdlv;  /* counters.c: last delivery per user */
	/* systemd watchdog (sup.c) */
	struct event *ev_watchdog;
	uint64_t watchdog_us;         /* WATCHDOG_USEC, 0 = none */
	struct timespec watchdog_last;/* the previous tick */
	struct timespec missing_since[PSEP_ROLE_COUNT]; /* 0: present */
	/* fork mode (template.c) */
	struct sup_child *tmpl;       /* the writer template of this generation */
	uint64_t fork_next;           /* FORK_REQ ids */
	struct {                      /* children reaped before their pid was
				       * known (a FORK_REP still in flight) */
		pid_t pid;
		int wstatus;
	} orphans[SUP_ORPHANS];
	unsigned orphan_next;
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
/* A child table entry for a process that exists or will (state NEW,
 * pid 0 until the caller sets it), reading ipc. */
struct sup_child *sup_child_new(struct sup *sup, enum psep_role role, uid_t uid,
				int ipc, const struct sup_child_ops *ops, void *owner);
/* c is gone (reaped with wstatus, or never came to be): out of the table,
 * its exited callback run, freed unless referenced. */
void sup_child_exit(struct sup_child *c, int wstatus);
/* The wait status of pid if it was reaped while in no entry (and forget
 * it): a child the template forked, reaped before its FORK_REP. */
bool sup_child_orphan_take(struct sup *sup, pid_t pid, int *wstatus);
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

/* template.c: fork mode's writer template */
/* What the template tells its user (dispatch.c). */
struct sup_template_hooks {
	void (*ready)(struct sup *sup);     /* requests can be made */
	void (*gone)(struct sup *sup, bool in_startup); /* it died */
};
/* Spawn the template of this generation if fork mode has none. */
void sup_template_start(struct sup *sup, const struct sup_template_hooks *h);
/* 1: the template is ready for requests; 0: it is starting (the jobs
 * wait, h->ready follows); -1: none can be spawned now. */
int sup_template_ready(struct sup *sup, const struct sup_template_hooks *h);
/* Ask the template for a child of sp->role with sp->creds; the entry in
 * the child table exists at once (pid 0 until FORK_REP).  NULL if the
 * request could not be sent. */
struct sup_child *sup_template_fork(struct sup *sup, const struct psep_spawn *sp,
				    const struct sup_child_ops *ops, void *owner);
/* Retire the template (reload, stop, a change of delivery_mode); what it
 * was asked is still answered. */
void sup_template_retire(struct sup *sup);

/* pending.c */
/*
 * The bounded queue of clients waiting for a front-end (LMTP: sup->pending,
 * repld: sup->repl_pending; *n counts the entries):
 * - push takes fd; when SUP_MAX_PENDING (or an eighth of RLIMIT_NOFILE,
 *   whichever is less) wait already the connection is closed and logged
 *   (rate-limited), with kind ("LMTP", "replication") naming the
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

/* dispatch.c (bodies: body.c) */
void sup_writers_start(struct sup *sup);

void sup_writers_retire(struct sup *sup);
/* Queue a job; takes ownership of job (and job->memfd, job->body). */
void sup_dispatch_submit(struct sup *sup, struct sup_job *job);
void sup_job_free(struct sup_job **job);
/* The fd that goes with job (its body's or its memfd), or -1; borrowed. */
int sup_job_fd(const struct sup_job *job);
/* Whether one more job for uid may be queued: 0, or -1 with *setting_out
 * naming the limit that is full (delivery_max_queued[_per_user]). */
int sup_dispatch_room(struct sup *sup, uid_t uid, const char **setting_out);
/*
 * Bodies: adopt takes fd (a sealed memfd from front-end source, its device
 * and inode as psep_msg_recv read them).  If a
 * body with the same inode is held, fd is closed and that body gets one
 * more reference; else a new body holds fd, unless the fd budget (from
 * RLIMIT_NOFILE, see sup_body_budget) or source's share of it is used up:
 * then fd is closed and NULL returned, *why_out saying which.  put drops
 * one reference (NULL ok) and clears *b.
 */
struct sup_body *sup_body_adopt(struct sup *sup, int fd, dev_t dev, ino_t ino,
				const void *source, const char **why_out);
void sup_body_put(struct sup_body **b);
/* Bodies the supervisor may hold at once: RLIMIT_NOFILE minus what the
 * children, listeners and waiting clients of the settings need. */
unsigned sup_body_budget(const struct sup *sup);
/* RLIMIT_NOFILE of this process (1 << 20 if unlimited). */
uint64_t sup_nofile(void);
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
 * once) or -1 (no repl-hook configured or it cannot come back: a stop;
 * SUP_MAX_EVENTS wait, or SUP_MAX_EVENT_FDS with a body and this one has
 * one). */
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

/* counters.c: a delivery's outcome and latencies (frontend.c). */
void sup_stats_delivery(struct sup *sup, const struct dlv_result *r,
			uint64_t lmtp_us, uint64_t bytes);
void sup_stats_save(struct sup *sup, uint64_t us);
/* A child ended with wstatus (children.c). */
void sup_stats_exit(struct sup *sup, enum psep_role role, int wstatus);
/* Remember the last delivery of user (a bounded table, the oldest entry
 * goes); and look it up (false: none since start). */
void sup_stats_note_delivery(struct sup *sup, const char *user, const char *guid,
			     unsigned code);
bool sup_stats_last_delivery(const struct sup *sup, const char *user, time_t *when_out,
			     char guid_out[PSEP_GUID_MAX], unsigned *code_out);
/* stats.c: the counters and gauges now. */
void sup_stats_fill(struct sup *sup, struct psep_counters *out);
/* Answer of repl-hook: rep NULL when it is not running or did not answer
 * within 2 s. */
typedef void (*sup_stats_fn)(struct sup *sup, const struct psep_stats_rep *rep,
			     void *arg);
typedef void (*sup_resync_fn)(struct sup *sup, const struct psep_resync_rep *rep,
			      void *arg);
/* Ask repl-hook for its replica stats (user: also count its journal
 * entries; may be ""); cb is called exactly once, maybe at once. */
void sup_stats_ask(struct sup *sup, const char *user, sup_stats_fn cb, void *arg);
/* Ask repl-hook to run SYNC now; cb exactly once (rep NULL: no repl-hook,
 * or no answer within timeout_ms). */
void sup_resync_ask(struct sup *sup, const struct psep_resync_req *req,
		    uint64_t timeout_ms, sup_resync_fn cb, void *arg);
/* A STATS_REP or RESYNC_REP from repl-hook (replproc.c). */
void sup_stats_hook_reply(struct sup *sup, const struct psep_msg *m);
/* Forget every question (stop); their callbacks get NULL. */
void sup_stats_hook_gone(struct sup *sup);
/* A PSEP_METRICS_REQ from lmtpd c: answer with the snapshot. */
void sup_metrics_request(struct sup_child *c, const struct psep_msg *m);
/* ---- quota.c ---- */

/* The quota_rule setting can be used (store_quota_rule_parse, default
 * mask).  0 or -1 with *why_out. */
int sup_quota_check_settings(const struct policy_settings *s, const char **why_out);

/* *q for user u (its userdb rule, else quota_rule); q->on 0 when no
 * limit applies; enforce: refuse what does not fit.  0, or -1 with
 * *why_out (an invalid userdb rule). */
int sup_quota_for(const struct policy_settings *s, const struct policy_user *u,
		  bool enforce, struct psep_quota *q, const char **why_out);

enum sup_quota_verdict {
	SUP_QUOTA_FITS = 0,
	SUP_QUOTA_FULL = 1,
	SUP_QUOTA_UNKNOWN = 2,   /* the check failed (logged) */
};
typedef void (*sup_quota_done_fn)(enum sup_quota_verdict v, void *arg);

/* Ask a writer (as u) whether size octets fit u's quota q (q->on); done
 * is called once, also when the job fails. */
void sup_quota_check(struct sup *sup, const struct policy_user *u,
		     const struct psep_quota *q, uint64_t size, sup_quota_done_fn done,
		     void *arg);

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
/* PSEP_WATCH_REQ from repl-hook: a writer adds the watches of the user's
 * Maildir to the inotify instance sent along; WATCH_REP answers. */
void sup_repl_watch(struct sup_child *c, struct psep_msg *m);

/* frontend.c */
void sup_frontends_start(struct sup *sup);
void sup_frontends_retire(struct sup *sup);
/* Hand an accepted client socket to a front-end (or keep it until one is
 * ready, up to SUP_MAX_PENDING); takes ownership of fd. */
void sup_frontends_hand(struct sup *sup, int fd, const char *listener);
/* Close clients still waiting for a front-end. */
void sup_frontends_drop_pending(struct sup *sup);
/* Hand a metrics client to a ready front-end (closed if none is). */
void sup_frontends_hand_metrics(struct sup *sup, int fd, const char *listener);

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
/* Open a root-only (0600) SOCK_SEQPACKET unix socket at path, bound
 * race-free like the LMTP sockets; non-blocking, listening.  fd, or -1
 * with *why_out. */
int sup_listen_private_seqpacket(const char *path, const char **why_out);

/* control.c: the control socket. */
/* Open (or reopen after a reload that changed control_socket) the control
 * socket; an error is logged, stowd runs on without one. */
void sup_control_open(struct sup *sup);
void sup_control_close(struct sup *sup);

/* entry.c: the role -> entry table (struct sup_entry), indexed by role. */
extern const struct sup_entry sup_entries[PSEP_ROLE_COUNT];

/* notify.c: systemd-style readiness on $NOTIFY_SOCKET (no-op if unset). */
void sup_notify(const char *state);

#endif
