/* SPDX-License-Identifier: MIT */
/*
 * repl-hook/hook_int.h - the repl-hook process: one unprivileged process
 * (run_user, no capabilities, seccomp) that owns the connections to every
 * `replica NAME { address = tcp:HOST:PORT }`, the fsynced journal of
 * events each replica has not acknowledged, the synchronous-ack
 * accounting, and the resynchronisation (SYNC) of mailboxes.
 *
 * Runs in:  repl-hook (libevent).
 * Trust:    replica responses are untrusted (parsed by repl-hook/proto.c);
 *           messages from the supervisor are validated by psep_msg_recv.
 * Files:    <state_dir>/replication/ (created by the supervisor, owned by
 *           run_user, mode 0700): <NAME>.journal, <NAME>.acked,
 *           <NAME>.dirty, <NAME>.id.
 */
#ifndef STOWD_REPL_HOOK_INT_H
#define STOWD_REPL_HOOK_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "privsep/msg.h"
#include "repl-hook/hook.h"
#include "repl-hook/proto/proto.h"

struct hook;
struct hook_replica;
struct policy_settings;

/* ---- core (replica.c, local.c, conn*.c) used by sync.c ----------------- */

/* Name (config) and server id (from the greeting, "" before the first
 * greeting) of a replica. */
const char *hook_replica_name(const struct hook_replica *r);
const char *hook_replica_server_id(const struct hook_replica *r);
/* A sync run with r ended (ok: finished, else given up); full: it was a
 * full sync; start_ms: its CLOCK_MONOTONIC start in ms.  Records the
 * replica's sync statistics and tells the top (stowctl resync). */
void hook_replica_sync_ended(struct hook_replica *r, bool ok, bool full,
			     uint64_t start_ms, uint64_t mailboxes, uint64_t repairs);
/* The replica's connection is up (greeting + HELLO OK). */
bool hook_replica_connected(const struct hook_replica *r);
/* local.c: change capture as sync.c sees it (false / 0 when capture is
 * off): is it on; is a capture of user waiting or running; the memfd fd
 * of a CAPTURE_BOXES answer for user (asked before a mailbox found on
 * one side only is created): its folder events journaled like the
 * watch's own, their number returned. */
bool hook_capture_on(const struct hook *h);
bool hook_capture_user_busy(const struct hook *h, const char *user);
unsigned hook_capture_boxes_reply(struct hook *h, const char *user, int fd);
/* Run a dirty sync with r once it is connected and its journal drained
 * (at once if it is). */
void hook_replica_sync_due(struct hook_replica *r);
/* Folder events (CREATE, DELETE, RENAME) of user in r's journal not yet
 * acknowledged (replica.c; the scan is bounded: at most REPLICA_SCAN_MAX
 * entries are read). */
uint64_t hook_replica_user_folder_unacked(struct hook_replica *r, const char *user);
/* Unacknowledged STORE events of user's mailbox in r's journal. */
uint64_t hook_replica_mailbox_store_unacked(struct hook_replica *r, const char *user,
					    const char *mailbox);

/*
 * Reply to a direct command: called for each DATA line of the command
 * (resp->kind == REPL_R_DATA; for FETCH, frame->literal_fd holds the body,
 * owned by the callee: close it or keep it), then once for the tagged
 * reply (REPL_R_TAGGED), or once with resp == NULL if the connection was
 * lost before the reply.
 */
typedef void (*hook_reply_cb)(struct hook_replica *r, const struct repl_response *resp,
			      struct repl_frame *frame, void *arg);

/* Send a direct (not journaled) command to a connected replica; body_fd
 * (SAVE: the literal, read from offset 0, not consumed) or -1.  Returns 0
 * or -1 (not connected). */
int hook_replica_send(struct hook_replica *r, const struct psep_repl_cmd *cmd,
		      int body_fd, uint64_t body_size, hook_reply_cb cb, void *arg);

/*
 * Run a command on this server through the supervisor (PSEP_REPL_REQ):
 * queries LIST/SYNC/GUIDS/FETCH, and local changes with modseq 0 (they
 * are journaled for every replica like any local change).  cb gets the
 * reply and its fd (data memfd or FETCH file; owned by the callee), or
 * rep == NULL if the supervisor went away.  memfd: SAVE body (sealed) or -1.
 */
typedef void (*hook_local_cb)(struct hook *h, const struct psep_repl_rep *rep,
			      int fd, void *arg);
int hook_local_send(struct hook *h, const struct psep_repl_cmd *cmd, int memfd,
		    hook_local_cb cb, void *arg);

/* The users to sync (PSEP_USERS_REQ): cb gets err and a memfd of lines. */
typedef void (*hook_users_cb)(struct hook *h, int err, int fd, void *arg);
int hook_users_request(struct hook *h, hook_users_cb cb, void *arg);

struct hook *hook_replica_hook(struct hook_replica *r);
/* A pointer slot in each replica that belongs to sync.c (NULL at start). */
void **hook_replica_sync_slot(struct hook_replica *r);
/* The open <state_dir>/replication directory. */
int hook_state_dirfd(const struct hook *h);
/* This server's id, the settings. */
const char *hook_server_id(const struct hook *h);
const struct policy_settings *hook_settings(const struct hook *h);
struct event_base *hook_event_base(struct hook *h);

/* ---- watch.c (change capture), called by hook.c ---------------------------- */

struct hook_watch;
struct psep_msg;
/* After setup: the inotify instance, then the watches of every user, one
 * user at a time (never before READY). */
void hook_watch_start(struct hook *h);
/* A PSEP_WATCH_REP from the supervisor. */
void hook_watch_reply(struct hook *h, struct psep_msg *m);
/* An event of stowd's own for user: ask for the user's watches if it has
 * none yet (a Maildir made by the first delivery). */
void hook_watch_user_seen(struct hook *h, const char *user);
/* An event from the supervisor: a SAVE is remembered so that its own
 * file's appearance starts no capture (hook_own_saves). */
void hook_watch_event_seen(struct hook *h, const struct psep_repl_cmd *cmd);
void hook_watch_free(struct hook *h);
/* The table entries behind hook_capture_* (hook.c puts them in its
 * hook_notify): capture is on (h->watch); a capture of user's changes is
 * waiting or running; the folder events of a CAPTURE_BOXES answer in fd
 * journaled like the watch's own, and counted. */
bool hook_watch_on(const struct hook *h);
bool hook_watch_user_busy(const struct hook *h, const char *user);
unsigned hook_watch_boxes_reply(struct hook *h, const char *user, int fd);

/* What one inotify event means (pure; mask and name of the event, root:
 * the watch is on a Maildir root rather than on new/ or cur/). */
enum hook_watch_verdict {
	HOOK_WATCH_NOTHING = 0,     /* not a message or folder: ignored */
	HOOK_WATCH_CHANGE,          /* the user's mailboxes changed: resync */
	HOOK_WATCH_NEW_FOLDER,      /* a folder appeared: watch it, resync */
	HOOK_WATCH_GONE,            /* the watch is gone (IN_IGNORED) */
	HOOK_WATCH_OVERFLOW,        /* events were lost: full resync */
};
enum hook_watch_verdict hook_watch_classify(uint32_t mask, const char *name,
					    bool root);

/* watch_names.c: the file names of one mailbox's change events, so that
 * its capture reconciles those messages only (§7.6). */
#define HOOK_WATCH_NAMES_MAX 64     /* names per mailbox, then all of it */
struct hook_watch_names {
	char *buf;                  /* "name\n" each; owned */
	size_t len;
	unsigned n;
	uint64_t unlinked;          /* bit i: name i's last event an unlink */
	bool all;                   /* the whole mailbox: a name not known or
				     * not valid, or too many */
};
/* True if name may be kept: 1..NAME_MAX octets, no '/', no control
 * byte, no leading '.' or ':'. */
bool hook_watch_name_ok(const char *name);
/* Add the name of an event (NULL: not known) to s (zeroed at first);
 * past HOOK_WATCH_NAMES_MAX names or PSEP_CAPTURE_NAMES_MAX octets, or
 * for a name hook_watch_name_ok refuses, s becomes "all".  A name kept
 * already is not added twice.  unlinked: the event removed the file
 * (IN_DELETE); a later event of the name clears it. */
void hook_watch_names_add(struct hook_watch_names *s, const char *name, bool unlinked);
/* Free what s holds and zero it. */
void hook_watch_names_free(struct hook_watch_names *s);
/* How the names of a capture are written. */
struct hook_names_out {
	/* the folder name was moved from, or NULL (from may be NULL) */
	const char *(*from)(const char *name, void *arg);
	void *arg;
	bool unlinked;              /* mark the unlinked names */
};
/* The names as a sealed memfd (the caller closes it) and its size; -1 if
 * there are none to pass (all, empty, or an error).  One line each:
 * the name, then "\tfrom=FOLDER" when o->from names its source folder,
 * then "\tunlinked" when o->unlinked and its last event removed it.  A
 * field that does not fit in PSEP_CAPTURE_NAMES_MAX is left out. */
int hook_watch_names_memfd(const struct hook_watch_names *s, const struct hook_names_out *o,
			   uint64_t *size_out);

/* watch_names.c: files that IMAP servers removed lately, so that a file
 * of the same base name appearing in another folder of the user (a move:
 * Dovecot links it there, then unlinks the source) can name its source
 * folder to the capture.  Only names without stowd's G<guid> are kept
 * (stowd's names carry their GUID); a ring of HOOK_MOVED_MAX. */
#define HOOK_MOVED_MAX 256
struct hook_moved {
	char *user[HOOK_MOVED_MAX];    /* NULL: empty */
	char *mailbox[HOOK_MOVED_MAX];
	char *base[HOOK_MOVED_MAX];    /* the name up to ':' */
	size_t next;
};
/* A file name removed from user's mailbox (new/ or cur/). */
void hook_moved_note(struct hook_moved *m, const char *user, const char *mailbox,
		     const char *name);
/* The folder other than mailbox that a file of name's base name was
 * removed from lately (the latest), or NULL. */
const char *hook_moved_from(const struct hook_moved *m, const char *user,
			    const char *mailbox, const char *name);
void hook_moved_free(struct hook_moved *m);

/* watch_names.c: a hash set of (key, name): an open-addressing table
 * (linear probing, at most half full) of 64-bit keys, each with an
 * optional borrowed string that must also match (strcmp); the caller
 * keeps a string alive while it is in the set.  Key 0 is never stored
 * (hook_hset_key gives none). */
struct hook_hset_ent {
	uint64_t key;               /* 0: empty */
	const char *name;           /* NULL: the key alone */
};
struct hook_hset {
	struct hook_hset_ent *slot;
	size_t cap, n;              /* cap: 0 or a power of two */
};
/* FNV-1a over the n strings of parts, each followed by a separator no
 * name holds; never 0. */
uint64_t hook_hset_key(const char *const *parts, const size_t *lens, int n);
bool hook_hset_has(const struct hook_hset *s, uint64_t key, const char *name);
/* Add (key, name) unless it is there; false if it was. */
bool hook_hset_add(struct hook_hset *s, uint64_t key, const char *name);
/* Remove (key, name) if it is there; true if it was. */
bool hook_hset_del(struct hook_hset *s, uint64_t key, const char *name);
void hook_hset_free(struct hook_hset *s);

/* watch_names.c: stowd's own saves, so that the event of the rename that
 * puts one into new/ starts no capture (the index holds it already: a
 * capture would find nothing).  A ring of the last HOOK_OWN_SAVES keys of
 * (user, mailbox, GUID), the oldest forgotten first, and a set of the
 * same keys for a lookup in O(1); a key is used once. */
#define HOOK_OWN_SAVES 4096
struct hook_own_saves {
	uint64_t key[HOOK_OWN_SAVES];  /* ring; 0: empty */
	size_t next;
	struct hook_hset set;          /* the ring's keys not taken yet */
};
/* A SAVE of this server's writer (an event from the supervisor). */
void hook_own_saves_note(struct hook_own_saves *o, const char *user,
			 const char *mailbox, const char *guid);
/* True (and the key forgotten) if name, a file that appeared in user's
 * mailbox, is the file of a noted save: no ':' (not renamed into cur/
 * since), and the G<guid> of stowd's names. */
bool hook_own_saves_take(struct hook_own_saves *o, const char *user,
			 const char *mailbox, const char *name);
void hook_own_saves_free(struct hook_own_saves *o);

/* ---- sync.c, called by the core ------------------------------------------ */

/* A (user, mailbox) pair to resync with r (journal overflow, a NONEXISTENT
 * or permanent-error reply, an entry dropped after repeated temporary
 * errors); kept durably in <NAME>.dirty until done. */
void hook_sync_mark_dirty(struct hook_replica *r, const char *user,
			  const char *mailbox);
/* The replica is connected and its journal is drained: run the pending
 * work (the dirty mailboxes; a full sync of every user when full). */
void hook_sync_start(struct hook_replica *r, bool full);
/* The connection dropped: abandon the running sync (restart later). */
void hook_sync_abort(struct hook_replica *r);
/* Free sync state at exit. */
void hook_sync_free(struct hook_replica *r);
/* True while a sync runs for r (tests and logs). */
bool hook_sync_running(const struct hook_replica *r);
/* Mailboxes of r's dirty set (stats). */
size_t hook_sync_dirty_count(struct hook_replica *r);

#endif
