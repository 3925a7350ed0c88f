/* SPDX-License-Identifier: MIT */
/*
 * storage/storage.h - Maildir / Maildir++ layout, safe path walking,
 * durable save, GUIDs, unique names, and the per-mailbox index log.
 *
 * Runs in:  a writer, with the recipient's credentials (euid/egid/groups in
 *           seteuid mode, all ids in fork mode).  Pure helpers (names, GUIDs,
 *           index codec) run anywhere.
 * Trust:    everything below the base directory is user-controlled: no
 *           symlink is followed (openat2 RESOLVE_NO_SYMLINKS|RESOLVE_BENEATH),
 *           files are created O_EXCL|O_NOFOLLOW, ownership is checked with
 *           fstat on the opened fd.
 * Order:    tmp write, fsync, rename (no replace) into new/, fsync new/,
 *           then the index record.  Knows nothing of IPC.
 */
#ifndef STOWD_STORAGE_STORAGE_H
#define STOWD_STORAGE_STORAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#define STORE_GUID_HEX 32
#define STORE_MAX_NAME 256
#define STORE_INDEX_FILE "stowd-index.log"

/* ---- GUIDs ------------------------------------------------------------ */

/*
 * New 128-bit GUID as 32 lower-case hex digits + NUL in out[33]:
 * 48 bits of milliseconds since the epoch, 32 bits of a hash of server_id,
 * 48 random bits (getrandom).  Returns 0 or -1 with errno.
 */
int store_guid_new(const char *server_id, char out[STORE_GUID_HEX + 1]);
/* True if s is exactly 32 hex digits. */
bool store_guid_valid(const char *s);

/* ---- names ------------------------------------------------------------ */

struct store_name_parts {
	time_t sec;
	long usec;
	pid_t pid;
	unsigned long seq;
	const char *guid;    /* 32 hex digits */
	const char *host;    /* '/' and ':' are escaped as \057 and \072 */
	uint64_t size;       /* file size in bytes (S=) */
	uint64_t vsize;      /* size with CRLF line ends (W=) */
};

/*
 * Unique Maildir name "<sec>.M<usec>P<pid>Q<seq>G<guid>.<host>,S=<size>,W=<vsize>".
 * Returns 0, or -1 with errno ENAMETOOLONG if it does not fit in out.
 */
int store_name_format(const struct store_name_parts *p, char *out, size_t out_size);

/* Parse S=, W= and G<guid> back from a name (any of the out pointers may be
 * NULL).  Returns 0 if the name carries S=, else -1 (EINVAL). */
int store_name_parse(const char *name, uint64_t *size_out, uint64_t *vsize_out,
		     char guid_out[STORE_GUID_HEX + 1]);

/*
 * Maildir++ directory for a mailbox name: "INBOX" -> "" (the root),
 * "Sent" -> ".Sent", "a/b" or "a.b" hierarchy -> ".a.b".  Rejects names with
 * "..", control bytes, a leading '.', or '/' at either end.  Returns 0 or
 * -1 with errno EINVAL.
 */
int store_mailbox_dir(const char *mailbox, char *out, size_t out_size);

/* ---- durable save ----------------------------------------------------- */

struct store_target {
	const char *mail_base;  /* trusted directory, opened normally */
	const char *mail_rel;   /* Maildir below base; no symlinks, created 0700 */
	const char *mailbox;    /* "INBOX" or a folder name */
	uid_t uid;              /* the directories must be owned by this uid */
};

struct store_save_result;

struct store_save_req {
	const struct store_target *target;
	int body_fd;            /* sealed memfd, read from offset 0 */
	uint64_t body_size;
	uint64_t body_vsize;
	const char *prefix;     /* prepended verbatim (may be NULL) */
	size_t prefix_len;
	const char *guid;       /* 32 hex digits */
	const char *host;       /* for the unique name */
	const char *flags;      /* IMAP flags for the index, "" for none */
	bool check_duplicate;   /* the GUID may exist already (a replayed
				 * replication write): look it up first.
				 * Fresh GUIDs (LMTP) skip this index scan. */
	const char *origin;     /* server id for the record's stamp (0..64
				 * octets %x21-7E); NULL or "" for none */
	/*
	 * Optional (NULL: none).  When set, the SAVE record goes into the
	 * index as soon as the tmp file is written, before its fsync, and
	 * stamped is called with the result the save will have (uid, modseq,
	 * size, final name), so that replication can run while this save
	 * syncs.  Not called for a duplicate or if the index append failed
	 * (the record is then appended after the fsyncs, as without it).  If
	 * the save fails after the call, an EXPUNGE record for the GUID
	 * follows (best effort).  Until the rename, the record names a file
	 * that is still in tmp/ (store_repl reconciliation leaves it alone).
	 */
	void (*stamped)(void *arg, const struct store_save_result *res);
	void *stamped_arg;
};

struct store_save_result {
	char filename[STORE_MAX_NAME];  /* base name in new/ */
	uint32_t imap_uid;              /* from the index, 0 if the index failed */
	uint64_t size;                  /* file size */
	bool duplicate;                 /* GUID already in the index: nothing written */
	uint64_t modseq;                /* modseq of the SAVE (H+1), 0 if the
					 * index failed or for a duplicate; on
					 * failure after req->stamped was
					 * called: the EXPUNGE's, or 0 */
};

/*
 * Save one message durably into the target mailbox, creating the Maildir
 * (and tmp/new/cur, mode 0700) on first use.  Only when this returns 0 is
 * the message in new/ with file and directory fsynced (also with
 * req->stamped: the call only announces it).  On failure returns
 * -1 with errno and *what_out naming the failed step ("open Maildir",
 * "write", "fsync", ...); nothing is left in new/ and the tmp file is
 * removed.  A Maildir component that is a symlink gives ELOOP; a directory
 * not owned by target->uid gives EPERM.
 */
int store_save(const struct store_save_req *req, struct store_save_result *out,
	       const char **what_out);

/* ---- safe directory walk (walk.c) ------------------------------------- */

/*
 * Open directories of one target mailbox; -1 when not open.  Every fd is
 * O_CLOEXEC and owned by the struct: close them with store_dirs_close.
 */
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
 * Open (creating 0700 when missing) t->mail_base, the Maildir t->mail_rel
 * below it, the directory of t->mailbox (with its maildirfolder marker for
 * a folder) and its tmp/new/cur, following no symlink below the base and
 * checking that every directory below the base is owned by t->uid.  Fills
 * *out (box_fd, tmp_fd, new_fd; cur_fd and root_fd -1); the caller closes
 * it with store_dirs_close, also after a failure.  Returns 0 or -1 with
 * errno: ELOOP (a symlink), EPERM (wrong owner or not a directory at a
 * checked level), ENOTDIR, EINVAL (bad mailbox name or ".." in mail_rel),
 * ENAMETOOLONG, or an open/mkdir error.
 */
int store_dirs_open(const struct store_target *t, struct store_dirs *out);

/* Close the fds of d that are open and mark them -1.  Accepts NULL. */
void store_dirs_close(struct store_dirs *d);

/*
 * Like store_dirs_open, and also keeps cur_fd and root_fd open.  With
 * create false nothing is made: a missing Maildir, mailbox directory,
 * new/ or cur/ gives ENOENT (tmp/ is still made, a Maildir needs it).
 * out->created tells whether a directory was made.  The caller closes
 * *out with store_dirs_close, also after a failure.  Returns 0 or -1 with
 * the errno values of store_dirs_open.
 */
int store_dirs_open2(const struct store_target *t, bool create,
		     struct store_dirs *out);

/*
 * Open the Maildir root of base/rel (base and its parents created 0700
 * when create is true, rel's directories too), with the checks of
 * store_dirs_open against uid.  Returns the directory fd (O_CLOEXEC,
 * caller closes), or -1 with errno (ENOENT when missing and not create,
 * ELOOP, EPERM, ENOTDIR, EINVAL, ENAMETOOLONG).
 */
int store_root_open(const char *base, const char *rel, uid_t uid, bool create);

/*
 * Open the directory name (one path component) in dirfd, following no
 * symlink, and check it is a directory owned by uid; it is created 0700
 * first when create is true and it is missing.  Returns the fd (O_CLOEXEC,
 * caller closes) or -1 with errno: ENOENT (missing, not create), ELOOP (a
 * symlink), EPERM (wrong owner or not a directory), or an open/mkdir error.
 */
int store_walk_step(int dirfd, const char *name, uid_t uid, bool create);

/* ---- writing message files (maildir.c) -------------------------------- */

/* write() all of buf to fd, retrying on EINTR.  Returns 0, or -1 with the
 * errno of write; a write of 0 bytes gives ENOSPC. */
int store_write_all(int fd, const void *buf, size_t len);

/*
 * Create tmp/<unique name> in tmp_fd (O_CREAT|O_EXCL|O_NOFOLLOW, 0600) for
 * guid: fills *parts (now, pid, guid, host; host NULL or "" is
 * "localhost"; size and vsize untouched) and name[] with the name without
 * the size fields; on EEXIST it tries a new sequence number, up to
 * STORE_TMP_TRIES names.  parts->guid and parts->host borrow guid and
 * host.  Returns the fd (write-only, O_CLOEXEC, caller closes), or -1 with
 * errno (EEXIST after STORE_TMP_TRIES names, EINVAL, ENAMETOOLONG, or an
 * open error).
 */
#define STORE_TMP_TRIES 8
int store_tmp_create(int tmp_fd, const char *guid, const char *host,
		     struct store_name_parts *parts, char name[STORE_MAX_NAME]);

/* ---- index log -------------------------------------------------------- */

enum store_rec_op {
	STORE_REC_SAVE = 1,     /* guid, uid, modseq, flags, name */
	STORE_REC_EXPUNGE = 2,  /* guid, modseq */
	STORE_REC_FLAGS = 3,    /* guid, modseq, flags (+X -Y deltas), name:
				 * the file's new name if it changed, or "" */
	STORE_REC_LOST = 4,     /* guid: the file is gone; no longer present,
				 * not a tombstone (index version 2) */
};

struct store_rec {
	enum store_rec_op op;
	char guid[STORE_GUID_HEX + 1];
	uint32_t uid;
	uint64_t modseq;
	char origin[65];        /* stamp origin, "" in version-1 records */
	char flags[128];
	char name[STORE_MAX_NAME];
	int64_t date;           /* SAVE: internal date (mtime), 0 if unknown */
};

struct store_index_state {
	uint32_t uidvalidity;
	uint32_t uidnext;
	uint64_t highestmodseq;
	uint32_t messages;      /* records saved minus expunged */
};

/*
 * Read the whole index log of the Maildir directory dirfd.  Calls rec_cb for
 * every record of every complete transaction (a torn or corrupt last
 * transaction is ignored), fills *state_out.  A missing log gives an empty
 * state (uidvalidity 0) and returns 0.  Returns 0 or -1 with errno.
 */
int store_index_read(int dirfd, int (*rec_cb)(const struct store_rec *rec, void *arg),
		     void *arg, struct store_index_state *state_out);

/*
 * Append one transaction of n records to the index of dirfd, under an
 * exclusive lock: assigns uid (for SAVE records with uid 0) and modseq,
 * creates the log (with a fresh UIDVALIDITY) if missing, truncates a torn
 * tail first.  Fills recs[] with the assigned values and *state_out with the
 * state after the transaction.  Returns 0 or -1 with errno.
 */
int store_index_append(int dirfd, struct store_rec *recs, size_t n,
		       struct store_index_state *state_out);

/* *found_out = whether the index of dirfd has a SAVE for guid not expunged
 * later.  Returns 0 or -1 with errno. */
int store_index_has_guid(int dirfd, const char *guid, bool *found_out);


/* ---- index log, low level (index.c, append.c) -------------------------- */

/*
 * For callers that keep a mailbox's index locked over several steps (the
 * replication operations): lock and read the log, replay it, append
 * transactions with stamps chosen by the caller.
 */

/* The state of a mailbox without a log: all zero, uidnext 1. */
extern const struct store_index_state store_idx_empty;

/*
 * Buffered pread of an index log; buf holds [buf_off, buf_off + buf_len).
 * Set up with store_idx_reader_init, released with store_idx_reader_release.
 */
struct store_idx_reader {
	int fd;                 /* borrowed */
	off_t size;             /* file size when the reader was set up */
	size_t chunk;           /* read-ahead */
	unsigned char *buf;     /* owned */
	size_t cap;
	off_t buf_off;
	size_t buf_len;
};

/*
 * Set up r for the log open on fd (borrowed: it must stay open while r is
 * used) with the current file size.  Returns 0 or -1 with the errno of
 * fstat.  Release r with store_idx_reader_release either way.
 */
int store_idx_reader_init(struct store_idx_reader *r, int fd);

/* Free the buffer r owns and clear it.  Does not close r->fd. */
void store_idx_reader_release(struct store_idx_reader *r);

/*
 * Apply the log from the start, calling cb (may be NULL) for each record
 * of each valid transaction, after the whole transaction was checked;
 * stops at the first invalid frame.  *st gets the state there (that of the
 * last valid transaction), *good_end_out the end of the last valid frame
 * (0 if even the header is invalid; less than r->size if something
 * follows it).  Returns 0, or -1 with errno for a read error or with the
 * callback's errno when cb returned non-zero.
 */
int store_idx_scan(struct store_idx_reader *r,
		   int (*cb)(const struct store_rec *rec, void *arg), void *arg,
		   struct store_index_state *st, off_t *good_end_out);

/*
 * The same from the frame boundary from (> 0: after the header), where
 * the state is *st_from; *good_end_out is from if nothing valid follows.
 */
int store_idx_scan_from(struct store_idx_reader *r, off_t from,
			const struct store_index_state *st_from,
			int (*cb)(const struct store_rec *rec, void *arg), void *arg,
			struct store_index_state *st, off_t *good_end_out);

/*
 * Open (creating it 0600 with a fresh UIDVALIDITY if missing) and lock
 * (flock LOCK_EX, waiting a bounded time) the log of dirfd, cutting off a
 * torn last frame: *fd_out (caller closes; the lock is held until then)
 * the log, *st the current state, *end_out the end of the log.  Returns 0,
 * or -1 with errno and *fd_out -1: EPERM (the log is not a regular file
 * owned by the directory's owner), EBADMSG (valid data after damage),
 * EWOULDBLOCK (lock not obtained in time), or an open/read/write error.
 */
int store_idx_begin(int dirfd, int *fd_out, struct store_index_state *st,
		    off_t *end_out);

/* How long store_idx_begin waits for the lock before EWOULDBLOCK (the
 * setting index_lock_timeout; 10 s until set).  Process-wide. */
void store_index_set_lock_timeout(unsigned int ms);

/*
 * Write one transaction of recs[0..n) (uid, modseq and origin as given:
 * nothing is assigned) with *st the state after it at *end (from
 * store_idx_begin on the same fd, advanced here to the new end), then
 * fdatasync when sync.  A failed write is cut off again.  Returns 0, or
 * -1 with errno: EINVAL (an invalid record), E2BIG (transaction over the
 * maximum frame), or a write/fdatasync error.
 */
int store_idx_commit(int fd, off_t *end, const struct store_index_state *st,
		     const struct store_rec *recs, size_t n, bool sync);

#endif
