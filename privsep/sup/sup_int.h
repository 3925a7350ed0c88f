/* SPDX-License-Identifier: MIT */
/*
 * privsep/sup/sup_int.h - the supervisor's private interfaces.
 *
 * Runs in:  the supervisor (root, libevent).
 * Trust:    reads nothing from the network; reads only validated IPC
 *           messages (psep_msg_recv) from its children.
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

struct sup;
struct sup_child;

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

/* One write for one recipient, handed to a writer. */
struct sup_job {
	TAILQ_ENTRY(sup_job) link;
	uint64_t id;
	uid_t uid;
	struct psep_write_req *req;   /* header + prefix, malloc'd */
	size_t req_len;
	int memfd;
	/* rep == NULL: the write failed before the writer answered; failure
	 * says why.  The callee must not free the job. */
	void (*done)(struct sup_job *job, const struct psep_write_rep *rep,
		     const char *failure);
	void *arg;
};

TAILQ_HEAD(sup_job_list, sup_job);

struct sup_listener;

/* A client accepted while no front-end was ready (bounded queue). */
struct sup_pending {
	TAILQ_ENTRY(sup_pending) link;
	int fd;
	char listener[64];
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
	struct event *ev_sig[6];
	struct event *ev_deadline;
	struct event *ev_respawn;
#ifdef STOWD_TEST_HOOKS
	uint32_t test_op;             /* sent before the next job (SIGUSR1/2) */
#endif
};

/* sup.c */
void sup_check_ready(struct sup *sup);
void sup_check_stopped(struct sup *sup);
/* A child of a pool was reaped: refill the pools (at once, or after a
 * short delay if it died young, to avoid a fork loop) and check whether a
 * graceful stop is complete. */
void sup_child_gone(struct sup_child *c);

/* children.c */
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

/* frontend.c */
void sup_frontends_start(struct sup *sup);
void sup_frontends_retire(struct sup *sup);
/* Hand an accepted client socket to a front-end (or keep it until one is
 * ready, up to SUP_MAX_PENDING); takes ownership of fd. */
void sup_frontends_hand(struct sup *sup, int fd, const char *listener);
/* Close clients still waiting for a front-end. */
void sup_frontends_drop_pending(struct sup *sup);

/* dispatch.c */
void sup_writers_start(struct sup *sup);
void sup_writers_retire(struct sup *sup);
/* Queue a job; takes ownership of job (and job->memfd). */
void sup_dispatch_submit(struct sup *sup, struct sup_job *job);
void sup_job_free(struct sup_job **job);
bool sup_dispatch_idle(struct sup *sup);
/* Writers that must be ready before READY=1 (the seteuid pool). */
unsigned sup_writers_expected(const struct sup *sup);

/* listen.c */
int sup_listeners_open(struct sup *sup, const char **why_out);
void sup_listeners_close(struct sup *sup);
/* True if the listener settings of a and b are the same. */
bool sup_listeners_same(const struct policy_settings *a, const struct policy_settings *b);

/* notify.c: systemd-style readiness on $NOTIFY_SOCKET (no-op if unset). */
void sup_notify(const char *state);

#endif
