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

#endif
