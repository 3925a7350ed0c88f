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
 * the log (store_mbox_load in storage/repl/), which every replication
 * query does anyway to reconcile the index with the Maildir.
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


static inline uint32_t
store_get_le32(const unsigned char *p)
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

/* How long store_index_append tries to get the lock (test hook). */
extern unsigned int store_index_lock_timeout_ms;


/*
 * The state after the last frame, found from the end of the file (and the
 * header); *valid_out is false if the last frame is not a whole, valid frame
 * of this log.  -1 only for a read error.
 */
int store_idx_last_state(struct store_idx_reader *r,
			 struct store_index_state *st, bool *valid_out);

/*
 * After a scan stopped at good_end before the end of the file: *torn_out is
 * true if what follows is a single torn or corrupt last frame (to ignore or
 * cut off), false if valid data follows the damage (EBADMSG for the caller).
 */
int store_idx_tail_is_torn(struct store_idx_reader *r, off_t good_end,
			   bool *torn_out);

/* ---- shared save helpers (maildir.c) ---------------------------------- */

/* Next per-process sequence number for unique names. */
unsigned long store_name_seq_next(void);

/* ---- index lookups (index.c) ----------------------------------------- */

/*
 * Like store_index_has_guid, and when found copies the SAVE record (its
 * uid, name, flags as saved) into *rec_out (may be NULL).
 */
int store_index_find_guid(int dirfd, const char *guid, bool *found_out,
			  struct store_rec *rec_out);

#endif
