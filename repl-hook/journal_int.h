/* SPDX-License-Identifier: MIT */
/*
 * repl-hook/journal_int.h - the durable per-replica journal of events a
 * replica has not acknowledged yet (<NAME>.journal) and its acknowledged
 * offset (<NAME>.acked).
 *
 * Runs in:  repl-hook.  Pure file I/O on fds below the replication state
 *           directory; no libevent.
 * Trust:    the files are ours (run_user, mode 0600), but may end in a torn
 *           record after a crash: every record is framed with its length
 *           and a CRC-32, checked when the journal is opened.
 * Order:    append (pwrite), journal_sync (fdatasync) before anything that
 *           depends on the entry being durable; the acked offset may lag
 *           (a replay is idempotent); a drained journal is truncated to 0
 *           before its acked offset is reset to 0.
 *
 * Record layout (host byte order):
 *   uint64 len (payload octets), uint32 crc32(payload), uint32 magic,
 *   payload: uint64 seq, uint64 literal_len, uint32 line_len,
 *            uint8 origin_len, uint8 peer_len, uint16 user_len,
 *            uint16 mailbox_len, uint16 pad,
 *            origin, peer, user, mailbox, line, literal.
 */
#ifndef STOWD_REPL_HOOK_JOURNAL_INT_H
#define STOWD_REPL_HOOK_JOURNAL_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "privsep/msg.h"
#include "repl-hook/proto/proto.h"

struct journal;

/* What one record holds (for append). */
struct journal_rec {
	const char *origin;           /* stamp origin, may be "" */
	const char *peer;             /* peer the event came from, "" = local */
	const char *user;
	const char *mailbox;
	const char *line;             /* command without tag and CRLF */
	size_t line_len;              /* <= REPL_MAXLINE - 2 */
	const void *prefix;           /* SAVE: literal = prefix + body */
	size_t prefix_len;
	int body_fd;                  /* SAVE: read from offset 0, or -1 */
	uint64_t body_size;
};

/* One record read back (without its literal). */
struct journal_entry {
	uint64_t seq;
	uint64_t off;                 /* start of the record */
	uint64_t next_off;            /* start of the next record */
	char origin[PSEP_ID_MAX];
	char peer[PSEP_ID_MAX];
	char user[PSEP_NAME_MAX];
	char mailbox[PSEP_NAME_MAX];
	char line[REPL_MAXLINE + 1];  /* NUL-terminated */
	size_t line_len;
	uint64_t literal_off;         /* file offset of the literal data */
	uint64_t literal_len;
};

/*
 * Open (create) <name>.journal and <name>.acked below dirfd.  Records after
 * the acked offset are checked (length, CRC); the first bad or torn one and
 * everything after it is cut off (ftruncate + fdatasync).  An acked offset
 * that is not a record boundary is moved back to the boundary before it.
 * max_size: the largest journal size (0 = no limit).  Returns 0 and *out
 * (caller frees with journal_free), or -1 with errno and *why.
 */
int journal_open(int dirfd, const char *name, uint64_t max_size,
		 struct journal **out, const char **why);
void journal_free(struct journal **jp);

/*
 * Append one record (not yet durable: journal_sync).  Returns 0 and the
 * record's seq in *seq_out, or -1 with errno: EFBIG (the journal would grow
 * past max_size; nothing was written), EINVAL (a field too long), EIO (the
 * body is shorter than body_size), or a write error (the partial record is
 * cut off again).
 */
int journal_append(struct journal *j, const struct journal_rec *rec,
		   uint64_t *seq_out);

/* fdatasync the journal if anything was appended since the last sync.
 * Returns 0 or -1 with errno. */
int journal_sync(struct journal *j);

/*
 * Read the record at off (a record boundary at or after the acked offset).
 * Returns 0, or -1 with errno: ENODATA (off is the end), EBADMSG (not a
 * valid record), or a read error.
 */
int journal_read(struct journal *j, uint64_t off, struct journal_entry *e);

/* Everything before off is acknowledged (memory only until
 * journal_flush_acked). */
void journal_set_acked(struct journal *j, uint64_t off);

/*
 * Make the acked offset durable if it changed (pwrite + fdatasync of
 * <name>.acked).  If everything is acked (acked == size), the journal is
 * truncated to 0 first and the acked offset becomes 0; *truncated_out is
 * then true (offsets held by the caller are void).  Returns 0 or -1.
 */
int journal_flush_acked(struct journal *j, bool *truncated_out);

uint64_t journal_size(const struct journal *j);
uint64_t journal_acked(const struct journal *j);
/* The journal fd, for pread of literals (borrowed). */
int journal_fd(const struct journal *j);
/* Number of records appended or found since open (for logs/tests). */
uint64_t journal_next_seq(const struct journal *j);

/* CRC-32 (IEEE 802.3), crc = 0 to start. */
uint32_t journal_crc32(uint32_t crc, const void *buf, size_t len);

#endif
