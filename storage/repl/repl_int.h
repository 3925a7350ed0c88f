/* SPDX-License-Identifier: MIT */
/*
 * storage/repl/repl_int.h - what the files of storage/repl/ share: the
 * replication state of a mailbox replayed from its index (state.c), one
 * mailbox opened and locked for a replication operation, the checks and
 * steps every operation starts with, a directory listing (ops.c).
 *
 * Runs in:  a writer, with the user's credentials.
 * Trust:    see storage/repl/repl.h.
 */
#ifndef STOWD_STORAGE_REPL_INT_H
#define STOWD_STORAGE_REPL_INT_H

#include <limits.h>
#include <stdbool.h>
#include <sys/stat.h>

#include "storage/repl/repl.h"
#include "storage/storage.h"

/* ---- replication state of a mailbox (state.c) -------------------------- */

#define STORE_FS_MAX 64         /* per-flag stamps kept per message */

/* One entry of a message's per-flag stamp map S (§7.2). */
struct store_flag_stamp {
	char flag[66];          /* canonical spelling */
	uint64_t modseq;
	char origin[65];
};

enum store_msg_kind {
	STORE_MSG_PRESENT = 1,
	STORE_MSG_TOMBSTONE = 2,  /* expunged: final */
	STORE_MSG_LOST = 3,       /* file gone: not present, not tombstoned */
};

struct store_msg {
	char guid[STORE_GUID_HEX + 1];
	enum store_msg_kind kind;
	uint32_t uid;
	uint64_t base_modseq;     /* base stamp b */
	char base_origin[65];
	char flags[128];          /* canonical F */
	char name[STORE_MAX_NAME];/* the file name in new/ or cur/ */
	int64_t date;
	size_t nfs;
	struct store_flag_stamp *fs;  /* owned, nfs entries */
};

/* A mailbox's state replayed from its index: GUID hash table. */
struct store_mbox {
	struct store_index_state st;
	unsigned char guidhash[32];
	unsigned char flaghash[32];
	struct store_msg *msgs;   /* owned; nmsgs used of cap */
	size_t nmsgs, cap;
	uint32_t *slots;          /* open addressing: index + 1, 0 = empty */
	size_t nslots;            /* power of two */
	bool partial;             /* only some entries (repl/ckpt.c): the
				   * counts and digests are whole, msgs are
				   * the entries an operation named */
};

/* Free what m owns and zero it.  Accepts NULL. */
void store_mbox_free(struct store_mbox *m);
/*
 * Add the entry *msg (read from a checkpoint: checked like a record of the
 * log, its name taken only if plain) to m as it is, without touching the
 * counts or digests; m takes msg->fs.  0, or -1 with errno: EBADMSG (not a
 * valid entry), EEXIST (its GUID is there), ENOMEM, E2BIG.
 */
int store_mbox_put(struct store_mbox *m, const struct store_msg *msg);
/* The entry of guid (any kind), or NULL.  Borrowed from m. */
struct store_msg *store_mbox_find(const struct store_mbox *m, const char *guid);
/*
 * Apply one record to m (SAVE, EXPUNGE, FLAGS with the merge rule, LOST),
 * keeping MESSAGES, GUIDHASH, FLAGHASH, H (max of modseqs) and UIDNEXT.
 * Returns 0 or -1 with errno (ENOMEM, EINVAL for a bad delta list).
 */
int store_mbox_apply(struct store_mbox *m, const struct store_rec *rec);
/*
 * Replay the locked log fd (whole, valid: after store_idx_begin) into *m
 * (zeroed first; caller frees with store_mbox_free); m->st is the state
 * of the last transaction.  Returns 0 or -1 with errno.
 */
int store_mbox_load(int fd, struct store_mbox *m);
/*
 * The merge rule of §7.2 for one STORE on present message msg: fills
 * won[] (the deltas that took effect, in the form "+\Seen -\Flagged", into
 * won[128]) and new_flags[128].  Does not change msg.  Returns 0 (nothing
 * won gives won ""), -1 with EINVAL (bad delta list), E2BIG (flags over
 * 127 octets, or more than STORE_FS_MAX per-flag stamps).
 */
int store_merge_deltas(const struct store_msg *msg, const char *deltas,
		       uint64_t modseq, const char *origin, char *won,
		       char *new_flags);
/* The message stamp (max of base and every per-flag stamp). */
void store_msg_stamp(const struct store_msg *msg, uint64_t *modseq_out,
		     const char **origin_out);

/* ---- checkpoint of a mailbox's state (ckpt.c) -------------------------- */

#define CKPT_HDR 1024u              /* header bytes, records follow */
#define CKPT_TAIL 512u              /* log bytes before the offset covered */
#define CKPT_ENT 12u                /* table entry: u64 key, u32 offset */
/* Header field offsets (little-endian; H_CRC: CRC-32 of the header with
 * this field 0; H_BODY_CRC: of everything after the header). */
enum {
	H_MAGIC = 0, H_VERSION = 8, H_CRC = 12, H_DEV = 16, H_INO = 24,
	H_END = 32, H_NTAIL = 40, H_UIDVALIDITY = 44, H_UIDNEXT = 48,
	H_MESSAGES = 52, H_HMS = 56, H_GUIDHASH = 64, H_FLAGHASH = 96,
	H_NREC = 128, H_NNAME = 132, H_RECS_LEN = 136, H_BODY_CRC = 144,
	H_UID = 148, H_TAIL = 152,
};
#define CKPT_PAGE_ENTS 341          /* table entries per cached page */
#define CKPT_PAGES 64               /* pages cached while one is open */

struct store_ckpt_page {
	bool used;
	int table;
	size_t page;
	unsigned char buf[CKPT_PAGE_ENTS * CKPT_ENT];
};

struct store_ckpt {
	int fd;                     /* -1: none (or not usable) */
	struct store_ckpt_page *pages;   /* owned, CKPT_PAGES, or NULL */
	off_t end;                  /* log offset it covers */
	off_t size;                 /* of the file */
	uint32_t nrec, nname;       /* table entries */
	uint64_t recs_len;
	uint32_t body_crc;
	size_t ntail;
	struct store_index_state st;   /* messages: present ones */
	unsigned char guidhash[32], flaghash[32];
};

/* ---- one mailbox open for an operation (ops.c, cache.c) --------------- */

/* One mailbox, its directories, its locked index and replayed state. */
struct store_rop {
	const struct store_repl_ctx *c;   /* borrowed */
	struct store_target t;
	struct store_dirs d;
	int idx_fd;                 /* holds the index lock */
	off_t end;                  /* end of the index */
	dev_t idx_dev;              /* the index file, from store_rop_load */
	ino_t idx_ino;
	struct store_mbox m;
	struct store_index_state logged;   /* of the last transaction */
	const struct store_capture_names *want;  /* a capture's names: a
				     * partial state will do (or NULL) */
	struct store_ckpt ck;       /* open while m is partial */
	off_t ck_end, ck_size;      /* the checkpoint known (0: none) */
	struct store_keywords *kw;  /* dovecot-keywords of the mailbox, read
				     * when first needed (store_rop_kw_*) */
	/* reconciliation: each change it records is also given to this
	 * callback (NULL: none); a non-zero return fails the step */
	int (*capture)(const struct store_rec *rec, void *arg);
	void *capture_arg;
	struct store_rec *pending;  /* records of the next transaction */
	size_t npending, cap;
	const char *what;           /* the step that failed */
};

/* True if s is 1..64 octets %x21-7E (0 octets too with empty_ok; NULL
 * counts as empty). */
bool store_origin_valid(const char *s, bool empty_ok);

/* True if c has a base directory, a valid server id and a short host. */
bool store_repl_ctx_ok(const struct store_repl_ctx *c);

/* Check a protocol mailbox name (§4) and give its Maildir++ directory
 * ("" for INBOX).  0 or -1 with EINVAL. */
int store_repl_mailbox_check(const char *mailbox, char dir[NAME_MAX + 1]);

/* The names of c's mailboxes (INBOX first if it exists), from the
 * directories of the Maildir root (box.c); *names_out to free.  0 (none
 * if there is no Maildir), or -1 with errno and *what_out. */
int store_box_names(const struct store_repl_ctx *c, char (**names_out)[NAME_MAX + 1],
		    size_t *n_out, const char **what_out);

/*
 * Open mailbox (created when create), lock and replay its index into *o.
 * Returns 0; 1 if it does not exist (only without create); -1 with errno
 * and o->what.  Always close with store_rop_close.
 */
int store_rop_open(struct store_rop *o, const struct store_repl_ctx *c,
		   const char *mailbox, bool create);
/* The same for a capture of names (a partial state may be loaded). */
int store_rop_open_want(struct store_rop *o, const struct store_repl_ctx *c,
			const char *mailbox, bool create,
			const struct store_capture_names *want);
void store_rop_close(struct store_rop *o);

/*
 * repl/cache.c: o->m for o's locked index (logged: the state of its last
 * transaction, from store_idx_begin): a kept state of the same file caught
 * up with the transactions appended since, or the whole file replayed.
 * 0 or -1 with errno.
 */
int store_rop_load(struct store_rop *o, const struct store_index_state *logged);

/* After an operation that succeeded: keep o->m (taken from o) for the next
 * operation on the same index, if every applied record is committed, and
 * write a new checkpoint when the log grew enough since the last. */
void store_rop_keep(struct store_rop *o);
/* o->m (partial) replaced by the whole state; 0 or -1 with errno. */
int store_rop_load_whole(struct store_rop *o);

/*
 * repl/ckpt.c.  store_ckpt_open: ck for the log idx_fd of box_fd, if the
 * checkpoint there is the user's, whole and still matches the log; 0, or
 * -1 (ck->fd -1).  store_ckpt_load: o->m := the whole state from o->ck and
 * the log since; store_ckpt_load_partial: o->m := a partial state holding
 * the entries the log names since the checkpoint and the present messages
 * with the base names of names[0..n) (store_ckpt_want_guid adds one more
 * by GUID); both 0, or 1 when the checkpoint does not do (nothing loaded).
 * store_ckpt_due: is a new checkpoint due (the log grew by an eighth of the
 * last one, at least 64 KiB)?  store_ckpt_write: write it from o->m (whole),
 * errors ignored.
 */
int store_ckpt_open(struct store_ckpt *ck, int box_fd, int idx_fd, uid_t uid);
void store_ckpt_close(struct store_ckpt *ck);
int store_ckpt_load(struct store_rop *o, const struct store_index_state *logged);
int store_ckpt_load_partial(struct store_rop *o, const struct store_index_state *logged,
			    const char *const *names, size_t n);
int store_ckpt_want_guid(struct store_rop *o, const char *guid);
bool store_ckpt_due(const struct store_rop *o);
void store_ckpt_write(struct store_rop *o);
/* The length of name's base (up to ':'). */
size_t store_ckpt_base_len(const char *name);

/* Base names looked up in another folder: the GUID of the last record
 * naming each, "" if none. */
struct store_ckpt_bases {
	const char *const *name;
	size_t n;
	char (*guid)[STORE_GUID_HEX + 1];
};
/* A record of that folder's log, into f (arg). */
int store_ckpt_bases_cb(const struct store_rec *rec, void *arg);
/* f from the checkpoint of box_fd and the log since, without the lock:
 * 0, or 1 when the whole log has to be read (no usable checkpoint, a name
 * not found). */
int store_ckpt_read_bases(int box_fd, uid_t uid, struct store_ckpt_bases *f);

/* The directory fd (new/ or cur/ of o) holding the regular file name, its
 * stat in *st_out; -1 with ENOENT if neither has it. */
int store_rop_locate(const struct store_rop *o, const char *name,
		     struct stat *st_out);

/* The tmp/ file of a SAVE record's name (its base, up to ',' or ':'), as
 * store_save leaves it while a stamped save is in flight: none (no
 * regular file there), in flight (its writer still holds the file's
 * flock) or an orphan (nobody holds it: the writer is gone). */
enum store_rop_tmp {
	STORE_ROP_TMP_NONE = 0,
	STORE_ROP_TMP_IN_FLIGHT = 1,
	STORE_ROP_TMP_ORPHAN = 2,
};
enum store_rop_tmp store_rop_tmp_state(const struct store_rop *o, const char *name);
/* Unlink that tmp/ file if it is a regular file; 0, or -1 with errno. */
int store_rop_tmp_remove(const struct store_rop *o, const char *name);
/* Rename that tmp/ file to name in cur/ (a name with ':') or new/ and
 * fsync the directory: a replicated SAVE whose writer was killed after
 * its record (repl/ops.c); 0, or -1 with errno. */
int store_rop_tmp_place(struct store_rop *o, const char *name);

/* Apply rec to o's in-memory state and queue it for the transaction. */
int store_rop_apply(struct store_rop *o, const struct store_rec *rec);
/* Write the queued records as one transaction and fdatasync it. */
int store_rop_flush(struct store_rop *o);
/* A zeroed record of op for guid with stamp s (may be NULL: 0, ""). */
void store_rop_rec(struct store_rec *r, enum store_rec_op op, const char *guid,
		   const struct store_stamp *s);
/* Set *what_out (may be NULL) from ret and o->what, then close o. */
void store_rop_done(struct store_rop *o, int ret, const char **what_out);

/* repl/boxes.c: tell the Maildir's stowd-mailboxes file about stowd's own
 * folder operation op ("CREATE" a, "DELETE" a, "RENAME" a b, with the
 * inferiors of a), so change capture does not report it; op NULL: write
 * the folders as they are if the file is missing or damaged (the first
 * look), else nothing.  Errors are ignored (errno kept): the file is a
 * hint. */
void store_boxes_note(const struct store_repl_ctx *c, const char *op, const char *a,
		      const char *b);

/* repl/subs.c: a sorted set of mailbox names (subscriptions). */
struct store_subs_names {
	char **v;
	size_t n, cap;
};

/* One look of change capture at the subscriptions of a Maildir. */
struct store_subs_look {
	int fd;                          /* stowd-subscriptions, locked; -1 */
	bool valid;                      /* it held a list (else: first look) */
	struct store_subs_names seen;    /* as stowd last saw them */
	struct store_subs_names now;     /* Dovecot's subscriptions file now */
};

/*
 * Change capture of the subscriptions (doc/replication-protocol.md §7.6):
 * lock stowd-subscriptions in root (into *l), compare it with Dovecot's
 * subscriptions file and call cb("UNSUBSCRIBE", name, NULL) and
 * cb("SUBSCRIBE", name, NULL) for what others changed; nothing for the
 * first look (the file missing or damaged), nor when a file cannot be
 * read (then there is nothing to write either).  0, or -1 with errno if
 * cb failed.  Always finish with store_subs_look_end.
 */
int store_subs_look(const struct store_repl_ctx *c, int root,
		    int (*cb)(const char *op, const char *a, const char *b, void *arg),
		    void *arg, struct store_subs_look *l);
/* Write what the look saw into stowd-subscriptions (write true: the
 * report is out) and release *l; errors ignored, errno kept. */
void store_subs_look_end(struct store_subs_look *l, bool write);
/* The first look: write stowd-subscriptions if it is missing or damaged,
 * else nothing.  Errors ignored (errno kept): the file is a hint. */
void store_subs_first_look(const struct store_repl_ctx *c);

/*
 * Dovecot keywords (doc/replication-protocol.md §7.3): the letters a..z
 * of the keywords in the canonical flags canon, by the mailbox's
 * dovecot-keywords; a keyword without a letter gets the next free one
 * (written as Dovecot does, under Dovecot's dovecot-uidlist.lock, which
 * is waited for up to a second, never taken over; without it, or with 26
 * letters used, the keyword stays in the index only).  ASCII order, into
 * letters[27]; every letter that names a keyword into mapped[27] (may be
 * NULL).
 */
void store_rop_kw_letters(struct store_rop *o, const char *canon, char letters[27],
			  char mapped[27]);
/* Append to deltas[STORE_FLAGS_MAX] (space separated) the keyword changes
 * between the letters of old_name (the name the index holds) and name:
 * "+kw" for a keyword letter name gained, "-kw" for one it lost.  A name
 * without ":2," says nothing.  Returns the number added. */
int store_rop_kw_deltas(struct store_rop *o, const char *old_name, const char *name,
			char deltas[STORE_FLAGS_MAX]);

/* Reconcile the open mailbox o with its files (see store_repl_reconcile). */
int store_rop_reconcile(struct store_rop *o, bool *changed_out);

/*
 * The first steps of an operation on one existing mailbox: open it as
 * store_rop_open does without create.  Returns true with o open and
 * *ret_out -1 (the caller sets 0 when its step succeeds); false with
 * *ret_out 0 if it does not exist (res->status NONEXISTENT; res may be
 * NULL) or -1 if it
 * cannot be opened.  Either way close with store_rop_done(o, *ret_out).
 */
bool store_rop_open_existing(struct store_rop *o, const struct store_repl_ctx *c,
			     const char *mailbox, struct store_repl_result *res,
			     int *ret_out);
/* The same with store_rop_open_want. */
bool store_rop_open_existing_want(struct store_rop *o, const struct store_repl_ctx *c,
				  const char *mailbox,
				  const struct store_capture_names *want,
				  struct store_repl_result *res, int *ret_out);

/* A bad argument: *what_out (may be NULL) "check request", errno
 * EINVAL; returns -1. */
int store_rop_bad_request(const char **what_out);

/* The names of dirfd's entries (not . and ..), read through a fresh fd,
 * each given to cb with its d_type; a non-zero return of cb stops and is
 * returned.  0, or -1 with errno (open, read). */
int store_dir_each(int dirfd,
		   int (*cb)(const char *name, unsigned char type, void *arg),
		   void *arg);

#endif
