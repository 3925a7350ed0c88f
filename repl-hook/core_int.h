/* SPDX-License-Identifier: MIT */
/*
 * repl-hook/core_int.h - state shared by the repl-hook core files: hook.c
 * (process, supervisor link, events and their acknowledgements) and
 * conn.c (one TLS connection per replica, journal streaming, replies).
 *
 * Runs in:  repl-hook (libevent, one thread).
 * Trust:    see hook_int.h.
 * Order:    an event is appended to every eligible journal, the journals
 *           are fsynced, the event is registered as pending, and only then
 *           do the connections read the new entries (hook_conn_kick).
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

struct hook_conn;

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
	uint64_t backoff_ms;
	bool full_due;                      /* next hook_sync_start is full */
	bool full_running;                  /* the running sync is full */
	bool overflow_logged;
	uint64_t last_ack_flush_ms;
};

/* hook.c */
struct hook {
	const struct policy_settings *set;
	void *tls_ctx;                      /* SSL_CTX * */
	struct event_base *base;
	int dirfd;
	char server_id[PSEP_ID_MAX];
	size_t n_replicas;
	struct hook_replica *replicas;
	struct hook_ipc *ipc;
	bool stopping;
	int status;
};

/* An entry of replica r with this seq got an OK reply (counts towards
 * synchronous acknowledgements). */
void hook_event_acked(struct hook *h, struct hook_replica *r, uint64_t seq);
/* Persist a (new) server id for r from its greeting. */
void hook_replica_set_server_id(struct hook_replica *r, const char *id);
uint64_t hook_now_ms(void);

/* conn.c */
/* Start connecting (now). */
void hook_conn_start(struct hook_replica *r);
/* New entries are in r's journal (durable): send what the window allows. */
void hook_conn_kick(struct hook_replica *r);
/* Close the connection and stop reconnecting (shutdown); flushes the acked
 * offset. */
void hook_conn_stop(struct hook_replica *r);
/* replication_full_sync_interval passed: the next sync is full (started
 * now if the replica is connected and drained). */
void hook_conn_full_due(struct hook_replica *r);

#endif
