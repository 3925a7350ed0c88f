/* SPDX-License-Identifier: MIT */
/*
 * storage/storage_int.h - helpers shared by the files of storage/ and its
 * unit tests; never included from another directory.
 *
 * Runs in:  a writer (walk, save, index) or anywhere (names, index codec).
 * Trust:    see storage.h; everything below the base directory is
 *           user-controlled.
 */
#ifndef STOWD_STORAGE_STORAGE_INT_H
#define STOWD_STORAGE_STORAGE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "storage/storage.h"

/* ---- names (name.c) --------------------------------------------------- */

/*
 * The unique name without the size fields, as used in tmp/:
 * "<sec>.M<usec>P<pid>Q<seq>G<guid>.<host>" (p->size and p->vsize unused).
 * Returns 0, or -1 with errno EINVAL (bad guid, host, usec) or ENAMETOOLONG.
 */
int store_name_format_base(const struct store_name_parts *p, char *out,
			   size_t out_size);

/* ---- safe directory walk (walk.c) ------------------------------------- */

/* Open directories of one target mailbox; -1 when not open. */
struct store_dirs {
	int box_fd;   /* the mailbox directory (Maildir root for INBOX): index */
	int tmp_fd;
	int new_fd;
	int cur_fd;   /* store_dirs_open2 only, else -1 */
	int root_fd;  /* the Maildir root: store_dirs_open2 only, else -1 */
	bool created; /* store_dirs_open2: a directory was made */
};

#define STORE_DIRS_INIT { -1, -1, -1, -1, -1, false }

/*
 * Open (creating 0700 when missing) base, the Maildir below it, the mailbox
 * directory (with its maildirfolder marker for a folder) and its tmp/new/cur,
 * following no symlink below the base and checking that every directory
 * below the base is owned by t->uid.  Fills *out (caller closes with
 * store_dirs_close).  Returns 0 or -1 with errno: ELOOP (a symlink), EPERM
 * (wrong owner or not a directory at a checked level), ENOTDIR, EINVAL (bad
 * mailbox name or ".." in mail_rel), ENAMETOOLONG, or an open/mkdir error.
 */
int store_dirs_open(const struct store_target *t, struct store_dirs *out);
/* Close the fds of d that are open and mark them -1.  Accepts NULL. */
void store_dirs_close(struct store_dirs *d);

/*
 * Like store_dirs_open, and also keeps cur_fd and root_fd open.  With
 * create false nothing is made: a missing Maildir, mailbox directory,
 * new/ or cur/ gives ENOENT (tmp/ is still made, a Maildir needs it).
 * d->created tells whether a directory was made.
 */
int store_dirs_open2(const struct store_target *t, bool create,
		     struct store_dirs *out);

/*
 * Open the Maildir root of base/rel (created when create is true), with
 * the same checks; the fd, or -1 with errno (ENOENT when missing).
 */
int store_root_open(const char *base, const char *rel, uid_t uid, bool create);

/* Open the directory name in dirfd (no symlink followed) and check it is
 * a directory owned by uid; created 0700 when create.  fd or -1. */
int store_walk_step(int dirfd, const char *name, uid_t uid, bool create);

/* ---- index log format (indexfmt.c) ------------------------------------ */

/*
 * File: a header frame, then one frame per transaction.  Frame, all
 * integers little-endian:
 *   u32 len | u32 crc32(len bytes || payload) | payload[len] | u32 len
 * Header payload (20 bytes): u8 kind=1, 3 zero bytes, "STOWDIDX",
 *   u32 version (1 or 2; new logs are written as 2), u32 uidvalidity.
 * Transaction payload: u8 kind, 3 zero bytes, u32 uidvalidity,
 *   u32 uidnext, u32 messages, u64 highestmodseq (the state after the
 *   transaction), u32 nrecs, then nrecs records.
 *   kind=2 (version 1, read only): records of
 *     u8 op, u8 flags_len, u16 name_len, u32 uid, u64 modseq, 32 bytes guid,
 *     flags[flags_len], name[name_len]  (no NULs; origin "", date 0).
 *   kind=3 (version 2, written since): records of
 *     u8 op, u8 flags_len, u16 name_len, u32 uid, u64 modseq, 32 bytes guid,
 *     i64 date, u32 origin_len,
 *     origin[origin_len], flags[flags_len], name[name_len]  (no NULs).
 *   A version-1 log gets kind=3 transactions appended; its header stays.
 * GUIDHASH and FLAGHASH are not stored: they are computed by replaying
 * the log (store_mbox_load), which every replication query does anyway to
 * reconcile the index with the Maildir.
 */
#define STORE_IDX_VERSION 2u
#define STORE_IDX_OVERHEAD 12u                  /* len + crc + len */
#define STORE_IDX_HDR_PAYLOAD 20u
#define STORE_IDX_HDR_FRAME (STORE_IDX_HDR_PAYLOAD + STORE_IDX_OVERHEAD)
#define STORE_IDX_TXN_FIXED 28u
#define STORE_IDX_REC_FIXED_V1 48u
#define STORE_IDX_REC_FIXED 60u
#define STORE_IDX_MAX_PAYLOAD (1u << 20)
#define STORE_IDX_KIND_HEADER 1u
#define STORE_IDX_KIND_TXN 2u                   /* version-1 records */
#define STORE_IDX_KIND_TXN2 3u                  /* version-2 records */

/* CRC-32 (IEEE 802.3, reflected, as zlib's crc32); start with crc = 0. */
uint32_t store_crc32(uint32_t crc, const void *buf, size_t len);

static inline uint32_t store_get_le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

/* Header frame for uidvalidity into out[STORE_IDX_HDR_FRAME]. */
void store_idx_encode_header(uint32_t uidvalidity,
			     unsigned char out[STORE_IDX_HDR_FRAME]);

/* Size of the frame for n records, or 0 (errno E2BIG) past the maximum. */
size_t store_idx_txn_size(const struct store_rec *recs, size_t n);

/*
 * Transaction frame with state *st and recs[0..n) into out (out_size must
 * be store_idx_txn_size(recs, n)).  The records must be valid (see
 * store_idx_rec_valid).
 */
void store_idx_encode_txn(const struct store_index_state *st,
			  const struct store_rec *recs, size_t n,
			  unsigned char *out, size_t out_size);

/* True if rec has a valid op and guid, NUL-terminated flags and name,
 * and an origin of 0..64 octets %x21-7E. */
bool store_idx_rec_valid(const struct store_rec *rec);

/*
 * True if frame[0..frame_len) is one whole frame: lengths agree, in range,
 * CRC matches.  Does not look inside the payload.
 */
bool store_idx_frame_valid(const unsigned char *frame, size_t frame_len);

/* Decode a header payload (version 1 or 2); -1 (EBADMSG) if it is not a
 * valid header, or EPROTONOSUPPORT for another version. */
int store_idx_decode_header(const unsigned char *payload, size_t len,
			    uint32_t *uidvalidity_out);

/*
 * Decode a transaction payload: the state after it and, if rec_cb is not
 * NULL, each record to rec_cb (only after all records were checked).
 * Returns 0; -1 with EBADMSG if malformed; -1 with the callback's errno if
 * rec_cb returned non-zero.
 */
int store_idx_decode_txn(const unsigned char *payload, size_t len,
			 struct store_index_state *st_out,
			 int (*rec_cb)(const struct store_rec *rec, void *arg),
			 void *arg);

/* ---- index log file (index.c, append.c) ------------------------------- */

#define STORE_IDX_CHUNK 65536   /* read-ahead when scanning */
#define STORE_IDX_TAIL 4096     /* read-ahead when looking at the end only */
#define STORE_IDX_MAX_FRAME ((off_t)STORE_IDX_MAX_PAYLOAD + STORE_IDX_OVERHEAD)

/* Buffered pread of the log; buf holds [buf_off, buf_off + buf_len). */
struct store_idx_reader {
	int fd;                 /* borrowed */
	off_t size;             /* file size when the reader was set up */
	size_t chunk;           /* read-ahead */
	unsigned char *buf;     /* owned: free(r->buf) when done */
	size_t cap;
	off_t buf_off;
	size_t buf_len;
};

/* The state of a mailbox without a log: all zero, uidnext 1. */
extern const struct store_index_state store_idx_empty;

/* How long store_index_append tries to get the lock (test hook). */
extern unsigned int store_index_lock_timeout_ms;

/*
 * openat the log of dirfd with flags | O_NOFOLLOW|O_NONBLOCK|O_CLOEXEC
 * (mode 0600 if created) and check it: a regular file owned by the owner of
 * dirfd, else EPERM.  Returns the fd or -1 with errno.
 */
int store_idx_open(int dirfd, int flags);

/* Set up r for fd with the current file size.  0 or -1 with errno. */
int store_idx_reader_init(struct store_idx_reader *r, int fd);

/*
 * The state after the last frame, found from the end of the file (and the
 * header); *valid_out is false if the last frame is not a whole, valid frame
 * of this log.  -1 only for a read error.
 */
int store_idx_last_state(struct store_idx_reader *r,
			 struct store_index_state *st, bool *valid_out);

/*
 * Apply the log from the start, calling cb (may be NULL) for the records of
 * each valid transaction; stops at the first invalid frame.  *st gets the
 * state there, *good_end_out the end of the last valid frame (0 if even the
 * header is invalid).  -1 for a read error or the callback's error.
 */
int store_idx_scan(struct store_idx_reader *r,
		   int (*cb)(const struct store_rec *rec, void *arg), void *arg,
		   struct store_index_state *st, off_t *good_end_out);
/* The same from the frame boundary from (> 0: after the header), where
 * the state is *st_from; *good_end_out is from if nothing valid follows. */
int store_idx_scan_from(struct store_idx_reader *r, off_t from,
			const struct store_index_state *st_from,
			int (*cb)(const struct store_rec *rec, void *arg), void *arg,
			struct store_index_state *st, off_t *good_end_out);

/*
 * After a scan stopped at good_end before the end of the file: *torn_out is
 * true if what follows is a single torn or corrupt last frame (to ignore or
 * cut off), false if valid data follows the damage (EBADMSG for the caller).
 */
int store_idx_tail_is_torn(struct store_idx_reader *r, off_t good_end,
			   bool *torn_out);

/*
 * Open (creating it with a fresh UIDVALIDITY if missing) and lock
 * (flock LOCK_EX) the log of dirfd, repairing a torn tail: *fd_out holds
 * the lock until closed, *st the current state, *end_out the end of the
 * log.  Returns 0 or -1 with errno.
 */
int store_idx_begin(int dirfd, int *fd_out, struct store_index_state *st,
		    off_t *end_out);

/*
 * Write one transaction of recs[0..n) (modseq, uid, origin as given) with
 * the state *st after it at end (returned by store_idx_begin, advanced to
 * the new end), then fdatasync if sync.  A failed write is cut off again.
 */
int store_idx_commit(int fd, off_t *end, const struct store_index_state *st,
		     const struct store_rec *recs, size_t n, bool sync);

/* ---- shared save helpers (maildir.c) ---------------------------------- */

/* Next per-process sequence number for unique names. */
unsigned long store_name_seq_next(void);
/* write() all of buf, retrying on EINTR; a 0-byte write is ENOSPC. */
int store_write_all(int fd, const void *buf, size_t len);

/*
 * Create tmp/<unique name> in tmp_fd (O_CREAT|O_EXCL|O_NOFOLLOW, 0600) for
 * guid: fills *parts (now, pid, guid, host; host NULL or "" is
 * "localhost") and name; on EEXIST a new sequence number, up to
 * STORE_TMP_TRIES names (maildir.c).  Returns the fd (caller closes), or
 * -1 with errno.
 */
#define STORE_TMP_TRIES 8
int store_tmp_create(int tmp_fd, const char *guid, const char *host,
		     struct store_name_parts *parts, char name[STORE_MAX_NAME]);

/* ---- replication state (repl/state.c) --------------------------------- */

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
};

/* Free what m owns and zero it.  Accepts NULL. */
void store_mbox_free(struct store_mbox *m);
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

/*
 * Like store_index_has_guid, and when found copies the SAVE record (its
 * uid, name, flags as saved) into *rec_out (may be NULL).
 */
int store_index_find_guid(int dirfd, const char *guid, bool *found_out,
			  struct store_rec *rec_out);

#endif
