/* SPDX-License-Identifier: MIT */
/*
 * storage/repl/repl.h - the mailbox state replication needs (stamps, flags with
 * per-flag stamps, tombstones, digests) and the operations of the
 * replication protocol on a Maildir: SAVE, STORE, EXPUNGE, CREATE, DELETE,
 * RENAME, LIST, SYNC, GUIDS, FETCH (doc/replication-protocol.md §7, §8,
 * §13).
 *
 * Runs in:  a writer, with the user's credentials (like store_save).  The
 *           codec parts (flags, digests, mbox state replay) are pure.
 * Trust:    the Maildir and its index are user-controlled: no symlink is
 *           followed, owners are checked (storage/walk.c), every index
 *           record is bounded and CRC-checked.  Arguments come from the
 *           supervisor after repld parsed them; they are checked again
 *           here (mailbox names, GUIDs, flag strings, delta lists).
 * Order:    every operation on one mailbox holds the index lock (flock
 *           LOCK_EX on stowd-index.log) from reading the state to the
 *           fsync of its transaction, so a load-modify-append (STORE merge,
 *           SAVE duplicate check, UID choice) is atomic against other
 *           writers.  Maildir changes (file write/rename/unlink + directory
 *           fsync) come before the index transaction and its fsync.
 */
#ifndef STOWD_STORAGE_REPL_H
#define STOWD_STORAGE_REPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "storage/storage.h"

#define STORE_ORIGIN_MAX 65      /* server id 1..64 octets %x21-7E + NUL */
#define STORE_FLAGS_MAX 128      /* canonical flag string + NUL */
#define STORE_HASH_LEN 32        /* SHA-256 */

/* ---- stamps, flags, digests (pure; repl/state.c) ----------------------- */

struct store_stamp {
	uint64_t modseq;
	char origin[STORE_ORIGIN_MAX];
};

/* <0, 0, >0 by the total order of §7.1 (modseq, then origin by memcmp with
 * the longer string greater when one is a prefix of the other). */
int store_stamp_cmp(const struct store_stamp *a, const struct store_stamp *b);

/*
 * Canonicalise a space-separated flag list (system flags matched
 * case-insensitively and spelt \Answered \Flagged \Deleted \Seen \Draft;
 * keywords case-sensitive, 1..64 atom chars not starting with + or -;
 * duplicates dropped; sorted by memcmp) into out[STORE_FLAGS_MAX].
 * Returns 0; -1 with EINVAL for a bad flag (\Recent, any other \word, a
 * bad keyword), E2BIG if the canonical string exceeds 127 octets.
 */
int store_flags_canon(const char *in, char out[STORE_FLAGS_MAX]);

/* The Maildir info letters ("DFRST" subset, ASCII order) of a canonical
 * flag string into out[8]. */
void store_flags_letters(const char *canon, char out[8]);

/* The STORE deltas ("+\Seen -\Flagged", system flags in the order D F R S
 * T) that turn the system flags of canon into those the info letters of
 * the Maildir file name say (NAME:2,LETTERS; other letters, such as
 * Dovecot's keyword letters a..z, are not looked at), into
 * out[STORE_FLAGS_MAX].  A name without ":2," says nothing: "".  Returns
 * the number of deltas. */
int store_flags_letter_deltas(const char *canon, const char *name,
			      char out[STORE_FLAGS_MAX]);

/* §7.5 terms: SHA-256(guid) and SHA-256(guid SP canonical-flags). */
void store_digest_guid(const char *guid, unsigned char out[STORE_HASH_LEN]);
void store_digest_flags(const char *guid, const char *canon,
			unsigned char out[STORE_HASH_LEN]);

/* ---- mailbox state --------------------------------------------------- */

struct store_mbox_state {
	uint32_t messages;
	uint32_t uidvalidity;        /* 0 before the index exists */
	uint32_t uidnext;
	uint64_t highestmodseq;      /* H of §7.1 */
	unsigned char guidhash[STORE_HASH_LEN];
	unsigned char flaghash[STORE_HASH_LEN];
};

/* One message or tombstone, as GUIDS reports it. */
struct store_msg_info {
	char guid[STORE_GUID_HEX + 1];
	bool expunged;               /* a tombstone: only guid is set */
	uint32_t uid;
	struct store_stamp stamp;    /* the message stamp (max of base and
				      * every per-flag stamp) */
	char flags[STORE_FLAGS_MAX]; /* canonical */
	time_t date;                 /* internal date (the file's mtime) */
	uint64_t size;               /* S= of the file */
};

/* ---- operations (repl/ops.c, in a writer) ----------------------------- */

/* Who and where: one user's Maildir, as for store_save. */
struct store_repl_ctx {
	const char *mail_base;       /* trusted directory */
	const char *mail_rel;        /* Maildir root below base */
	uid_t uid;                   /* owner every directory must have */
	const char *server_id;       /* this server: origin of local stamps */
	const char *host;            /* for unique file names */
	bool vanished_repair;        /* reconcile: a vanished file is a loss
				      * (LOST, restored by SYNC), not an
				      * expunge (replication_vanished) */
};

enum store_repl_status {
	STORE_R_OK = 0,              /* done */
	STORE_R_DUPLICATE = 1,       /* SAVE: GUID present; uid = its UID */
	STORE_R_EXPUNGED = 2,        /* SAVE/STORE: tombstoned, nothing done
				      * (OK [EXPUNGED]); FETCH: NO [EXPUNGED] */
	STORE_R_NONEXISTENT = 3,     /* STORE/EXPUNGE: OK [NONEXISTENT];
				      * RENAME/SYNC/GUIDS/FETCH: NO [NONEXISTENT] */
	STORE_R_ALREADYEXISTS = 4,   /* RENAME target exists */
	STORE_R_CANNOT = 5,          /* DELETE/RENAME of INBOX, RENAME into itself */
	STORE_R_LIMIT = 6,           /* flags over 127 octets, UID space used up */
};

struct store_repl_result {
	enum store_repl_status status;
	bool effective;              /* changed state here (§9): forward it */
	uint32_t uid;                /* SAVE: UID here (new or the duplicate's) */
	struct store_stamp stamp;    /* events: the stamp applied; a local
				      * change (modseq 0) gets (H+1, server_id) */
	char filename[STORE_MAX_NAME]; /* SAVE: base name written */
	uint64_t size;               /* SAVE/FETCH: file size; EXPUNGE: size
				      * of the file it removed (0: none) */
};

/*
 * All operations: 0 with *res filled (status may be a "not done" outcome,
 * which is not an error), or -1 with errno and *what_out naming the failed
 * step ("open Maildir", "fsync", "index", ...).  errno EINVAL: a bad
 * argument (mailbox name, GUID, flags); EBADMSG: the index is corrupt;
 * ELOOP/EPERM: a symlink or wrong owner in the Maildir; ENOSPC/EDQUOT.
 * A stamp with modseq 0 is a local change: the operation gives it
 * (H+1, ctx->server_id) under the lock.
 */

/*
 * SAVE (§8.1): creates a missing mailbox; duplicate and tombstone checks;
 * UID from the hint (used if >= UIDNEXT) else UIDNEXT; writes
 * prefix (may be NULL) + the body_size bytes of body_fd (read from offset
 * 0) exactly as they are, mtime = date, into new/NAME or, with system
 * flags, cur/NAME:2,LETTERS; W= counts LF not preceded by CR as two.  The
 * index transaction (base stamp, flags, digests, H := max(H, modseq)) is
 * written while the file is still in tmp/ (locked), then the file is put
 * in place: a SAVE killed in between is finished by the SAVE sent again
 * (a duplicate whose file is in tmp/ is placed), undone by an EXPUNGE and
 * finished by a reconcile.  A failure after the record appends LOST.
 */
int store_repl_save(const struct store_repl_ctx *c, const char *mailbox,
		    const char *guid, const struct store_stamp *stamp,
		    uint32_t uid_hint, time_t date, const char *flags,
		    int body_fd, uint64_t body_size, const char *prefix,
		    size_t prefix_len, struct store_repl_result *res,
		    const char **what_out);

/* STORE (§8.2): deltas is a delta list without parentheses
 * ("+\Seen -\Flagged"); per-flag last-writer-wins; renames the file to
 * match the system flags (§7.3). */
int store_repl_store(const struct store_repl_ctx *c, const char *mailbox,
		     const char *guid, const struct store_stamp *stamp,
		     const char *deltas, struct store_repl_result *res,
		     const char **what_out);

/* EXPUNGE (§8.3): unlink if present, always a tombstone. */
int store_repl_expunge(const struct store_repl_ctx *c, const char *mailbox,
		       const char *guid, const struct store_stamp *stamp,
		       struct store_repl_result *res, const char **what_out);

/* CREATE, DELETE, RENAME (§8.6-8.8). */
int store_repl_create(const struct store_repl_ctx *c, const char *mailbox,
		      struct store_repl_result *res, const char **what_out);
int store_repl_delete(const struct store_repl_ctx *c, const char *mailbox,
		      struct store_repl_result *res, const char **what_out);
int store_repl_rename(const struct store_repl_ctx *c, const char *from,
		      const char *to, struct store_repl_result *res,
		      const char **what_out);

/*
 * SUBSCRIBE (subscribe true) and UNSUBSCRIBE (§8.13): add mailbox (which
 * need not exist) to Dovecot's subscriptions file in the Maildir root, or
 * remove it, as Dovecot does (storage/subscriptions.c); effective if the
 * file changed.  A missing Maildir root is made for SUBSCRIBE and leaves
 * UNSUBSCRIBE not effective.  errno EAGAIN: subscriptions.lock was held
 * by another program for too long.
 */
int store_repl_subscribe(const struct store_repl_ctx *c, const char *mailbox,
			 bool subscribe, struct store_repl_result *res,
			 const char **what_out);

/*
 * Queries first reconcile the index with the Maildir (store_repl_reconcile)
 * so that hand-made changes show in the digests.
 *
 * LIST (§8.9): cb once per existing mailbox ("INBOX", "Sent", "a.b"); a
 * missing Maildir gives no calls and 0.  A non-zero return of cb stops
 * and is returned (errno preserved).
 */
int store_repl_list(const struct store_repl_ctx *c,
		    int (*cb)(const char *mailbox, const struct store_mbox_state *st,
			      void *arg),
		    void *arg, const char **what_out);

/* SYNC (§8.10): the state of one mailbox; res->status NONEXISTENT if
 * it does not exist. */
int store_repl_sync(const struct store_repl_ctx *c, const char *mailbox,
		    struct store_mbox_state *st, struct store_repl_result *res,
		    const char **what_out);

/* GUIDS (§8.11): cb for each present message and each tombstone. */
int store_repl_guids(const struct store_repl_ctx *c, const char *mailbox,
		     int (*cb)(const struct store_msg_info *m, void *arg), void *arg,
		     struct store_repl_result *res, const char **what_out);

/* FETCH (§8.12): *fd_out = the message file opened O_RDONLY|O_NOFOLLOW
 * (caller closes), *info filled (uid, date, flags, size).  Status
 * NONEXISTENT or EXPUNGED leave *fd_out = -1. */
int store_repl_fetch(const struct store_repl_ctx *c, const char *mailbox,
		     const char *guid, int *fd_out, struct store_msg_info *info,
		     struct store_repl_result *res, const char **what_out);

/*
 * Bring the index of one mailbox in line with its Maildir, under the lock:
 * - a file in new/ or cur/ whose base name (up to ':') the index does not
 *   know is added (GUID from its G<guid> part if that GUID is neither
 *   present nor tombstoned, else a fresh GUID; stamp (H+1, server_id));
 * - a present message whose file is gone was expunged by someone else (an
 *   IMAP server, a mail client): recorded as EXPUNGE with the stamp
 *   (H+1, server_id), a tombstone, so no SYNC brings it back; with
 *   c->vanished_repair it is recorded LOST instead (see below);
 * - a present message whose file's size differs from its S= (a damaged
 *   file, which is moved to tmp/stowd-damaged-NAME), or whose index entry
 *   names no usable file, is recorded as LOST: no longer present, and NOT
 *   tombstoned, so a SYNC with a replica brings it back;
 * - a file renamed by an IMAP server is followed; when its info letters
 *   (cur/NAME:2,LETTERS) name other system flags than the index holds, the
 *   difference is recorded as a STORE (a FLAGS record with the deltas,
 *   "+\Seen -\Flagged") stamped (H+1, server_id), so the flags that
 *   changed carry a stamp greater than any the mailbox holds (§7.2).
 * - a present message whose file is still in tmp/ (a stamped store_save
 *   before its rename) is left alone while its writer holds the tmp
 *   file's flock (in flight); once nobody holds it the writer died before
 *   the save was answered: the tmp file is removed and the GUID
 *   tombstoned (EXPUNGE record, stamp (H+1, server_id));
 * *changed_out (may be NULL) tells whether a transaction was written.
 */
int store_repl_reconcile(const struct store_repl_ctx *c, const char *mailbox,
			 bool *changed_out, const char **what_out);

/*
 * Change capture of folders (doc/replication-protocol.md §7.6): compare
 * the folders of the Maildir (by the inode of their directory) with the
 * stowd-mailboxes file of the last look, call cb("RENAME", from, to),
 * cb("DELETE", name, NULL), cb("CREATE", name, NULL) for what others
 * changed (a rename of a parent implies its inferiors': only the parent's
 * is reported; parents first); then the same for Dovecot's subscriptions
 * file against stowd-subscriptions: cb("UNSUBSCRIBE", name, NULL),
 * cb("SUBSCRIBE", name, NULL); then write both files anew.  A missing or
 * damaged file reports nothing.  0, or -1 with errno and *what_out.
 */
int store_repl_capture_boxes(const struct store_repl_ctx *c,
			     int (*cb)(const char *op, const char *a, const char *b,
				       void *arg),
			     void *arg, const char **what_out);

/* At most this many file names limit one capture (else: the mailbox). */
#define STORE_CAPTURE_NAMES_MAX 64

/* The file names (in new/ or cur/) of the change events of one mailbox,
 * and for each (from may be NULL, or from[i] NULL) the folder a file of
 * that base name was removed from around the same time: a move made by
 * the IMAP server, whose source tells a GUID-less file's GUID. */
struct store_capture_names {
	const char *const *v;        /* borrowed */
	const char *const *from;     /* borrowed; v's sources */
	const bool *unlinked;        /* may be NULL: v[i]'s file was removed
				      * (its last event an unlink) */
	size_t n;
};

/* True if name can be a message file name of a change event: 1..255
 * octets, no '/', no control byte, not hidden (no leading '.', so not "."
 * or ".."), a base name (up to ':') of at least one octet. */
bool store_capture_name_ok(const char *name);

/*
 * Change capture (doc/replication-protocol.md §7.6): store_repl_reconcile
 * of one existing mailbox that also gives cb each record it writes (SAVE
 * of a file it did not know, EXPUNGE or LOST of a vanished file, FLAGS
 * with the deltas of changed info letters, or without deltas for a rename
 * only), after it is applied and before its transaction is fsynced; the
 * step fails if cb returns non-zero.  res->status NONEXISTENT if the
 * mailbox does not exist.
 *
 * names (borrowed; NULL: the whole mailbox): the file names of the change
 * events.  Then only the messages of their base names (up to ':') are
 * reconciled, with the same records the whole reconciliation would give
 * them: those names and the names the index holds for them are looked up
 * in new/ and cur/; a known message found under none of them is searched
 * for by name in the directories before it is taken for gone, unless a
 * name of its base name was unlinked (names->unlinked): an unlinked file
 * is nowhere else (a link made before the unlink shows in the names or
 * was captured before).  A new file
 * whose name holds no GUID (one the IMAP server made) takes the GUID that
 * the index of its source folder (names->from) holds for its base name,
 * read without that folder's lock, unless this mailbox holds that GUID or
 * its tombstone (then, as without a source, a fresh GUID).  More than
 * STORE_CAPTURE_NAMES_MAX names, a name store_capture_name_ok refuses, or
 * two files with one base name: the whole mailbox is reconciled.
 */
int store_repl_capture(const struct store_repl_ctx *c, const char *mailbox,
		       const struct store_capture_names *names,
		       int (*cb)(const struct store_rec *rec, void *arg), void *arg,
		       struct store_repl_result *res, const char **what_out);

/*
 * Change capture (doc/replication-protocol.md §7.6): add inotify watches
 * on the inotify instance ino for the Maildir root (cb with mailbox NULL)
 * and for new/ and cur/ of every mailbox (cb with its name, twice), each
 * on a directory opened by the safe walk, through /proc/self/fd/N.  A
 * missing Maildir adds nothing and returns 0.  Returns 0, or -1 with errno
 * and *what_out (ENOSPC: fs.inotify.max_user_watches reached; the watches
 * added before were given to cb).  A non-zero return of cb stops.
 */
int store_repl_watch(const struct store_repl_ctx *c, int ino,
		     int (*cb)(int wd, const char *mailbox, void *arg), void *arg,
		     const char **what_out);

/*
 * The operations above keep the replayed state of up to 128 mailboxes (16 MiB
 * at most) in this process, so the next operation on one replays only what
 * was appended to its index since; an entry is used only for the same uid
 * and index file, and only if the file still ends as it did.  This drops
 * them all (tests; a process that has no more use for them).
 */
void store_repl_cache_clear(void);
/* Budget of the kept states: bytes (0: keep none) and mailboxes (at most
 * 128, the default); drops what is kept. */
void store_repl_cache_limit(size_t bytes, unsigned entries);

/*
 * A writer that holds a mailbox's whole state writes its checkpoint
 * (stowd-index.ckpt beside the index) when the index grew since the last
 * one by every bytes; SIZE_MAX (the default) means by an eighth of the
 * last checkpoint, at least 64 KiB.  Tests set 0 (after every change).
 * A checkpoint is read when the index after it is short: a capture of
 * names then reads only the entries it needs.
 */
void store_repl_ckpt_every(size_t every);

/* Bound the replay of one mailbox's index (settings index_max_size,
 * index_max_messages; 0 = no limit): a log larger than index_size bytes,
 * or one that names more than messages GUIDs, fails with E2BIG.
 * Process-wide; 1 GiB and 1000000 until set. */
void store_repl_set_limits(uint64_t index_size, uint32_t messages);

#ifdef STOWD_TEST_HOOKS
/* Called by store_repl_save between its index record and the rename (a
 * test makes it _exit there, as a writer killed at that moment). */
extern void (*store_repl_test_mid_save)(int dest_fd, const char *name);
/* Loads from checkpoints: [0] whole states, [1] partial states, [2] a
 * move's source folder's base names. */
extern unsigned long store_repl_test_ckpt_loads[3];
/* Entries of the kept states that store_repl_cache_clear looked at. */
extern unsigned long store_repl_test_cache_scanned;
#endif

#endif
