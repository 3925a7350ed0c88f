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
#define STORE_CKPT_FILE "stowd-index.ckpt"   /* checkpoint of its state */

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
	/*
	 * Optional: with has_root, root_fd is the Maildir root of
	 * mail_base/mail_rel, already opened for uid by store_root_open, and
	 * store_dirs_open starts from it instead of walking the path again
	 * (the caller keeps it open and closes it).
	 */
	bool has_root;
	int root_fd;
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
 * checking that every directory below the base is owned by t->uid (with
 * t->has_root: below t->root_fd, which is not walked again).  cur/ is
 * checked (and made when missing) but not opened.  Fills
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

/* CRC-32 (IEEE 802.3, reflected, as zlib's crc32); start with crc = 0. */
uint32_t store_crc32(uint32_t crc, const void *buf, size_t len);

/*
 * openat the log of dirfd with flags | O_NOFOLLOW|O_NONBLOCK|O_CLOEXEC
 * (mode 0600 if created) and check it: a regular file owned by the owner of
 * dirfd, else EPERM.  Returns the fd or -1 with errno.
 */
int store_idx_open(int dirfd, int flags);

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
/* ---- Maildir side files: dot-locks, maildirsize, dovecot-keywords,
 * subscriptions (dotlock.c, quota.c, keywords.c, subscriptions.c) ------ *
 * The formats are Dovecot 2.3's (and Courier's, for maildirsize).  The
 * files are user-writable, hence hostile: every reader has a size bound,
 * opens relative to a directory fd with O_NOFOLLOW and refuses anything
 * but a regular file (ELOOP for a symlink, EINVAL otherwise).  Writers
 * create O_EXCL, fsync, then rename over the file. */

/* The host name used in the names of side files and dot-locks (Dovecot
 * puts it there); set once at start by a process whose sandbox has no
 * uname() (writers get it from the supervisor's settings).  Without it
 * gethostname() is called each time. */
void store_side_host_set(const char *host);

#define STORE_UIDLIST_FILE "dovecot-uidlist"
#define STORE_UIDLIST_LOCK_STALE_SECS 120  /* Dovecot's uidlist lock */

/* How to take a dot-lock. */
struct store_dotlock_set {
	unsigned timeout_secs;  /* give up (EAGAIN) after this; 0: one try */
	unsigned stale_secs;    /* 0: only the dead-pid rule */
	bool write_pid;         /* write "<pid>:<host>" and close the fd
				 * (a pure lock); else keep it open for the
				 * new content (store_dotlock_replace) */
};

/* A held dot-lock; dir_fd is borrowed and must stay open while held. */
struct store_dotlock {
	int dir_fd;             /* -1 when not held */
	int fd;                 /* lock file open for writing, or -1 */
	char file[STORE_MAX_NAME];
	char lock[STORE_MAX_NAME + 8];
	dev_t dev;
	ino_t ino;
};

/*
 * Take "<file>.lock" in dir_fd as Dovecot's file-dotlock does with
 * dotlock_use_excl: create it O_EXCL; while it exists, remove it if stale
 * (see dotlock.c) or poll until set->timeout_secs passed.  Returns 0 with
 * *out held, or -1 with errno EAGAIN (timeout), ENAMETOOLONG, or an
 * openat errno.
 */
int store_dotlock_take(int dir_fd, const char *file,
		       const struct store_dotlock_set *set,
		       struct store_dotlock *out);

/* Bump the lock's mtime so that others do not take it for stale (Dovecot
 * touches the uidlist lock every 10 s).  -1 with ESTALE if it is no
 * longer ours. */
int store_dotlock_touch(struct store_dotlock *l);

/* Remove the lock if it is still ours (else -1 with ESTALE) and mark *l
 * not held.  No-op for NULL or a lock not held. */
int store_dotlock_release(struct store_dotlock *l);

/* Lock taken without write_pid: write buf into it, fsync, rename it over
 * the protected file.  The lock is released either way (removed on
 * failure).  Returns 0 or -1 with errno (ESTALE: lock no longer ours). */
int store_dotlock_replace(struct store_dotlock *l, const void *buf, size_t len);

/* Dovecot's mailbox lock, dovecot-uidlist.lock in box_fd (the Maildir root
 * for INBOX, else the ".Folder" directory): stale after 120 s, pid
 * written.  Hold it around store_keywords_add, as Dovecot does.
 * Returns 0 or -1 as store_dotlock_take. */
int store_uidlist_lock(int box_fd, unsigned timeout_secs,
		       struct store_dotlock *out);

/* ---- maildirsize (Maildir++ quota, Dovecot "quota = maildir") -------- */

#define STORE_QUOTA_FILE "maildirsize"
#define STORE_QUOTA_MAX_READ 5120          /* Dovecot: a larger file is
					    * recalculated */
#define STORE_QUOTA_STALE_SECS (15 * 60)   /* MAILDIRSIZE_STALE_SECS */
#define STORE_QUOTA_MAX_FOLDERS 10000      /* recalculation scan bound */

/* Limits; 0 = unlimited. */
struct store_quota_limits {
	uint64_t bytes;
	uint64_t count;
};

/* A configured quota: limits plus Dovecot's "force" (the default rule
 * given with mask "*" is forced, with mask "?" it is not): when forced, a
 * file whose limits differ is recalculated; otherwise the file's limits
 * win. */
struct store_quota_conf {
	struct store_quota_limits limits;
	bool force;
};

/* The state of maildirsize as read. */
struct store_quota {
	uint64_t limit_bytes;   /* effective limits (file or config) */
	uint64_t limit_count;
	int64_t used_bytes;     /* sum of the lines (valid only if valid) */
	int64_t used_count;
	size_t file_size;       /* octets read (at most STORE_QUOTA_MAX_READ) */
	unsigned lines;         /* usage lines after the limits line */
	time_t mtime;
	bool exists;
	bool valid;             /* usage parsed and not negative */
	bool too_big;           /* file >= STORE_QUOTA_MAX_READ octets */
	bool limits_differ;     /* file limits != configured ones */
};

/*
 * Parse maildirsize content buf[0..len) (pure; buf need not be
 * NUL-terminated) into *out (limits from the file; exists, mtime,
 * too_big, limits_differ untouched).  As Dovecot: a last line without
 * '\n' is ignored, a NUL or an unparsable usage line makes it invalid,
 * unparsable limits count as 0.  Sums that overflow make it invalid.
 * Always returns 0.
 */
int store_quota_parse(const char *buf, size_t len, struct store_quota *out);

/*
 * Read "maildirsize" in root_fd (the Maildir root) and fill *out, with the
 * effective limits chosen from conf as Dovecot does.  A missing file gives
 * 0 with out->exists false.  Returns 0, or -1 with errno (ELOOP for a
 * symlink, EINVAL for a non-regular file, or a read errno).
 */
int store_quota_read(int root_fd, const struct store_quota_conf *conf,
		     struct store_quota *out);

/*
 * Whether Dovecot would recalculate: missing, invalid (NUL, bad line,
 * negative or overflowing totals), >= 5120 octets, forced limits that
 * differ, or over quota with more than one usage line or an mtime older
 * than STORE_QUOTA_STALE_SECS before now.  False when no limit applies
 * and conf is not forced (Dovecot then keeps no file).
 */
bool store_quota_need_recalc(const struct store_quota *q,
			     const struct store_quota_conf *conf, time_t now);

/*
 * Recalculate: count the messages of new/ and cur/ of the root and every
 * ".Folder" directory (S= from the name, else fstatat without following),
 * skipping folders whose mailbox name is in ignore[0..n_ignore) (Dovecot's
 * "<mailbox>:ignore" rules, exact names, hierarchy '.').  Symlinked
 * folders are skipped, not followed.  If a scanned directory's mtime grew
 * during the scan nothing is written and -1 is returned with EAGAIN, as
 * Dovecot does.  Otherwise writes "<limits>\n<bytes> <count>\n" to a temp
 * file "maildirsize<host>.<pid>.<rand>" created O_EXCL in root_fd, fsyncs
 * it and renames it over maildirsize.  *out (may be NULL) gets the new
 * state.  Returns 0 or -1 with errno.
 */
int store_quota_recalc(int root_fd, const struct store_quota_limits *limits,
		       const char *const *ignore, size_t n_ignore,
		       struct store_quota *out);

/*
 * Append one usage line "<bytes> <count>\n" with O_APPEND in one write()
 * (no lock, as Maildir++ and Dovecot).  Nothing for (0, 0).  The file must
 * exist (-1 with ENOENT: recalculate instead).  count must fit in an int.
 * Returns 0 or -1 with errno (EIO for a short write).
 */
int store_quota_update(int root_fd, int64_t bytes, int64_t count);

/* Would one more message of size octets stay within q's limits (used +
 * size <= limit, count + 1 <= limit)?  Unlimited parts always fit. */
bool store_quota_fits(const struct store_quota *q, uint64_t size);

/* One parsed Dovecot quota_rule ("<mailbox mask>:<limits>"). */
struct store_quota_rule {
	char mask[STORE_MAX_NAME];  /* "*", "?", "INBOX", "Trash", ... */
	bool is_default;            /* mask "*" or "?" */
	bool force;                 /* mask "*" (Dovecot's forced default) */
	bool ignore;                /* "<mask>:ignore" */
	int64_t bytes;              /* default rule: >= 0; others: signed
				     * relative ("+N" or "-N") */
	int64_t count;
};

/*
 * Parse one quota_rule value as Dovecot: "*:storage=1G:messages=50000",
 * "*:bytes=1048576", "Trash:storage=+100M", "Spam:ignore",
 * "*:backend=1024S,10C" (Maildir++ limits) or "*:backend=NOQUOTA".
 * storage= without a unit is KiB; units B K M G T (case-insensitive) on
 * storage=, bytes= and messages=.  Percentages ("10%") are not supported
 * here and rejected.  Returns 0, or -1 with errno EINVAL (ERANGE on
 * overflow) and *why_out (may be NULL) saying why (static text).
 */
int store_quota_rule_parse(const char *rule, struct store_quota_rule *out,
			   const char **why_out);

/* ---- dovecot-keywords (per mailbox directory) ------------------------ */

#define STORE_KEYWORDS_FILE "dovecot-keywords"
#define STORE_KEYWORDS_MAX 26              /* letters a..z */
#define STORE_KEYWORD_MAX_LEN 255
#define STORE_KEYWORDS_MAX_FILE 16384      /* larger files are refused */

/* Keyword names by index (letter 'a' + index); "" for a free index. */
struct store_keywords {
	char names[STORE_KEYWORDS_MAX][STORE_KEYWORD_MAX_LEN + 1];
	time_t mtime;           /* of the file read, 0 if none */
};

/*
 * Parse dovecot-keywords content buf[0..len) into *out (pure).  As
 * Dovecot, lines without a space, with an index that is not a number
 * below 26, an empty name or a name seen before are skipped; so are lines
 * with a NUL or control byte and names longer than STORE_KEYWORD_MAX_LEN.
 * A last line without '\n' is used.  Returns 0.
 */
int store_keywords_parse(const char *buf, size_t len, struct store_keywords *out);

/*
 * Read dovecot-keywords in box_fd (a missing file gives an empty set).
 * Returns 0, or -1 with errno EFBIG (more than STORE_KEYWORDS_MAX_FILE
 * octets), ELOOP (a symlink), EINVAL (not a regular file), or read errno.
 */
int store_keywords_read(int box_fd, struct store_keywords *out);

/* True if name can be a keyword: 1..255 octets of IMAP atom characters
 * (no SP, control, ( ) { % * " \ ]), not starting with '\'. */
bool store_keyword_valid(const char *name);

/* The letter ('a'..'z') of keyword name (exact match), or -1 with ENOENT. */
int store_keywords_letter(const struct store_keywords *kw, const char *name);

/*
 * Give keyword name a letter in box_fd's dovecot-keywords: re-read the
 * file, return the existing letter, else take the first free index and
 * rewrite the whole file as Dovecot does (remove a leftover
 * dovecot-keywords.lock, create it O_EXCL, write, make the mtime grow,
 * fsync, rename over dovecot-keywords).  The caller holds the mailbox
 * lock (store_uidlist_lock), which is what serialises Dovecot's writers.
 * *kw_out (may be NULL) gets the new set.  Returns the letter, or -1 with
 * errno EINVAL (invalid name), ENOSPC (26 keywords already), or an I/O
 * errno.
 */
int store_keywords_add(int box_fd, const char *name,
		       struct store_keywords *kw_out);

/*
 * Keyword names of the letters in a Maildir info flags string (the part
 * after ":2,", e.g. "FSab"): names_out[i] point into kw (borrowed).
 * Letters without a keyword are skipped (Dovecot drops them).  Returns the
 * count (at most max).
 */
size_t store_keywords_names(const struct store_keywords *kw, const char *flags,
			    const char **names_out, size_t max);

/*
 * Letters for names[0..n) in ascending order, NUL-terminated, into
 * out[out_size] (27 octets are enough).  Returns 0, or -1 with errno
 * ENOENT (a name has no letter: store_keywords_add first) or ENAMETOOLONG.
 */
int store_keywords_letters(const struct store_keywords *kw,
			   const char *const *names, size_t n, char *out,
			   size_t out_size);

/* ---- subscriptions (Maildir root) ------------------------------------ */

#define STORE_SUBS_FILE "subscriptions"
#define STORE_SUBS_MAX_LINE 4096           /* a longer line fails the read */
#define STORE_SUBS_MAX_NAMES 10000
#define STORE_SUBS_MAX_FILE (1024 * 1024)
#define STORE_SUBS_LOCK_TIMEOUT 120        /* Dovecot's values */
#define STORE_SUBS_LOCK_STALE 30

/* A subscription list; free with store_subs_free. */
struct store_subs {
	unsigned version;       /* 2 (header "V\t2\n\n") or 1 (none) */
	size_t count;
	char **names;           /* mailbox names, hierarchy separator sep */
};

/*
 * Parse subscriptions content buf[0..len) (pure).  Version 2: TAB between
 * hierarchy levels becomes sep, "\001" escapes (1 t r n) are decoded;
 * version 1: lines are names as they are.  Empty lines are skipped; a
 * last line without '\n' is used.  Returns 0, or -1 with errno EINVAL (a
 * NUL anywhere), EMSGSIZE (a line over
 * STORE_SUBS_MAX_LINE), E2BIG (more than STORE_SUBS_MAX_NAMES).  On
 * success caller frees *out with store_subs_free.
 */
int store_subs_parse(const char *buf, size_t len, char sep,
		     struct store_subs *out);

/* Read "subscriptions" in root_fd (missing: empty, version 2).  Errors as
 * store_subs_parse, plus EFBIG (> STORE_SUBS_MAX_FILE), ELOOP, EINVAL. */
int store_subs_read(int root_fd, char sep, struct store_subs *out);

/* Free the names and zero *s; accepts NULL. */
void store_subs_free(struct store_subs *s);

/* True if name is in s (INBOX compared case-insensitively). */
bool store_subs_contains(const struct store_subs *s, const char *name);

/*
 * Subscribe (subscribe true) or unsubscribe name, as Dovecot: take
 * subscriptions.lock (timeout 120 s, stale 30 s), re-read the file, keep
 * its version and other lines, and, if something changed, write the new
 * list into the lock, fsync, rename over "subscriptions"; otherwise remove
 * the lock.  "inbox" in any case is written "INBOX".  *changed_out (may be
 * NULL) tells whether the file changed.  Returns 0 or -1 with errno
 * (EINVAL for an empty name or one with a control byte, EAGAIN for a
 * lock timeout, or as store_subs_read).
 */
int store_subs_set(int root_fd, char sep, const char *name, bool subscribe,
		   bool *changed_out);

/* store_subs_set, waiting at most timeout_secs for subscriptions.lock
 * (then EAGAIN) instead of Dovecot's 120 s. */
int store_subs_set_wait(int root_fd, char sep, const char *name, bool subscribe,
			unsigned timeout_secs, bool *changed_out);

/* ---- duplicate window (dupwin.c, per mailbox directory) -------------- */

#define STORE_DUP_FILE "stowd-duplicates"
#define STORE_DUP_KEY_LEN 64               /* hex SHA-256 */
#define STORE_DUP_MAX 10000                /* entries; compaction keeps half */
#define STORE_DUP_MAX_FILE (STORE_DUP_MAX * 120)

/*
 * The duplicate key of a message: hex SHA-256 of its Message-ID value
 * (unfolded, trimmed; looked for in the first 64 KiB), a NUL, and the
 * text after its header block (the whole message if the header does not
 * end within 64 KiB), read from body_fd of body_size octets (pread, the
 * offset is not moved).  Trace headers prepended at delivery do not
 * change it, so a replica computes the key of the LMTP message.  Returns
 * 0, or -1 with errno ENOENT (no Message-ID: never suppressed) or a read
 * errno.
 */
int store_dup_key(int body_fd, uint64_t body_size, char key[STORE_DUP_KEY_LEN + 1]);

/*
 * Open (creating it 0600) STORE_DUP_FILE in box_fd, following no symlink,
 * and take its exclusive flock, waiting at most 2 s.  Returns the fd
 * (caller closes it, which releases the lock), or -1 with errno
 * (EWOULDBLOCK: lock not obtained; EINVAL: not a regular file; ELOOP: a
 * symlink; or an open errno).
 */
int store_dup_open(int box_fd);

/*
 * Look key up in the locked file fd among entries not older than
 * window_secs before now.  Returns 1 with the GUID recorded (the newest
 * match) in guid_out, 0 if none, -1 with errno.
 */
int store_dup_find(int fd, const char *key, time_t now, uint64_t window_secs,
		   char guid_out[STORE_GUID_HEX + 1]);

/*
 * Append "<key> <now> <guid>" to the locked file fd; when it would pass
 * STORE_DUP_MAX_FILE octets it is first compacted in place to the newest
 * STORE_DUP_MAX / 2 entries still in the window.  Returns 0 or -1 with
 * errno.
 */
int store_dup_record(int fd, const char *key, const char *guid, time_t now,
		     uint64_t window_secs);

/* ---- the tmp/ sweep (sweep.c) ----------------------------------------- */

/* A file in tmp/ last changed longer ago than this is abandoned (the
 * Maildir convention readers such as Dovecot follow). */
#define STORE_SWEEP_TMP_AGE (36 * 3600)

struct store_sweep_stats {
	unsigned files;              /* stale tmp/ files removed */
	unsigned trees;              /* stowd-deleted-* trees visited (removed,
				      * or in part if the budget ran out) */
};

/*
 * Sweep the Maildir base/rel of uid (the checks of store_root_open; a
 * missing Maildir is not an error): in its tmp/ and in the tmp/ of each of
 * its folders (at most 512), remove regular files last changed before
 * now - STORE_SWEEP_TMP_AGE and every tmp/stowd-deleted-* directory tree
 * (left by an interrupted mailbox DELETE).  No symlink is followed; at
 * most max_removals entries are removed (the rest waits for the next
 * sweep).  Counts in *out.  Returns 0, or -1 with errno when the Maildir
 * root cannot be opened (ELOOP, EPERM, ...).
 */
int store_sweep(const char *mail_base, const char *mail_rel, uid_t uid, time_t now,
		unsigned max_removals, struct store_sweep_stats *out);

#endif
