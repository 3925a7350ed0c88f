/* SPDX-License-Identifier: MIT */
/*
 * storage/index.c - the per-mailbox index log (STORE_INDEX_FILE in the
 * mailbox directory): GUID <-> file name <-> IMAP UID, flags, modseq, and
 * the mailbox state (UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ, messages).
 * This file opens and reads it; storage/append.c writes it.
 *
 * Runs in:  writer, with the recipient's credentials.
 * Trust:    the log sits in a user-controlled directory: opened O_NOFOLLOW,
 *           O_NONBLOCK so a FIFO cannot hang us, then fstat'ed: a regular
 *           file owned by the owner of the directory, else EPERM.  Its bytes
 *           are checked by indexfmt.c; no length read from it is trusted.
 * Format:   storage_int.h: a header frame, then one CRC'd frame per
 *           transaction carrying its records and the state after it, so the
 *           state is found by reading the last frame only (its trailing
 *           length leads back to its start).
 * Reading:  no lock (appends are single write() calls).  Whole valid frames
 *           are applied in order; an invalid tail (torn write, bad CRC, at
 *           most one frame long and not followed by a valid last frame) is
 *           ignored.  Damage before a valid last frame is EBADMSG: the log
 *           must be rebuilt, never silently shortened.
 * Cost:     store_index_read and the GUID lookups scan the whole log: 64 KiB
 *           preads, CRC of every byte (slicing-by-8), every record checked;
 *           a SAVE takes ~90 bytes + its name.  Measured ~0.4 us per record,
 *           i.e. ~40 ms and ~18 MB read for a mailbox of 100k messages.
 * Syscalls: openat, fstat/newfstatat, pread64, close.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/storage_int.h"

const struct store_index_state store_idx_empty = { .uidnext = 1 };

static void
idx_close(int *fd)
{
	int saved = errno;

	if (*fd >= 0)
		close(*fd);
	*fd = -1;
	errno = saved;
}

/* Make [off, off + n) readable at *p_out; ENODATA if the file is shorter. */
static int
idx_get(struct store_idx_reader *r, off_t off, size_t n,
	const unsigned char **p_out)
{
	size_t want = n > r->chunk ? n : r->chunk, got = 0;
	unsigned char *nb;
	ssize_t rd;

	if (off >= r->buf_off && (size_t)(off - r->buf_off) + n <= r->buf_len)
		goto done;
	if (off < r->size && want > (size_t)(r->size - off))
		want = n > (size_t)(r->size - off) ? n : (size_t)(r->size - off);
	if (want > r->cap) {
		nb = realloc(r->buf, want);
		if (nb == NULL)
			return -1;
		r->buf = nb;
		r->cap = want;
	}
	r->buf_off = off;
	r->buf_len = 0;
	while (got < want) {
		rd = pread(r->fd, r->buf + got, want - got, off + (off_t)got);
		if (rd < 0 && errno == EINTR)
			continue;
		if (rd < 0)
			return -1;
		if (rd == 0)
			break;
		got += (size_t)rd;
	}
	r->buf_len = got;
	if (got < n) {
		errno = ENODATA;
		return -1;
	}
done:
	*p_out = r->buf + (off - r->buf_off);
	return 0;
}

/*
 * The frame at off: *valid_out says whether it is whole and CRC-correct;
 * then payload and length are returned.  -1 only for a read error.
 */
static int
idx_frame_at(struct store_idx_reader *r, off_t off,
	     const unsigned char **payload_out, size_t *len_out,
	     bool *valid_out)
{
	const unsigned char *p;
	size_t len;

	*valid_out = false;
	if (off < 0 || r->size - off < (off_t)STORE_IDX_OVERHEAD)
		return 0;
	if (idx_get(r, off, 4, &p) < 0)
		return errno == ENODATA ? 0 : -1;
	len = store_get_le32(p);
	if (len > STORE_IDX_MAX_PAYLOAD ||
	    r->size - off < (off_t)(len + STORE_IDX_OVERHEAD))
		return 0;
	if (idx_get(r, off, len + STORE_IDX_OVERHEAD, &p) < 0)
		return errno == ENODATA ? 0 : -1;
	if (!store_idx_frame_valid(p, len + STORE_IDX_OVERHEAD))
		return 0;
	*payload_out = p + 8;
	*len_out = len;
	*valid_out = true;
	return 0;
}

/* A caller's record callback, and whether it failed (not the frame). */
struct idx_cb {
	int (*cb)(const struct store_rec *rec, void *arg);
	void *arg;
	bool failed;
};

static int
idx_cb_call(const struct store_rec *rec, void *arg)
{
	struct idx_cb *c = arg;

	if (c->cb(rec, c->arg) == 0)
		return 0;
	c->failed = true;
	return -1;
}

/*
 * Decode the payload of the valid frame at off into the state after it;
 * a transaction must carry uidvalidity (that of the header).  Records go
 * to c (may be NULL) once the whole transaction is known to be valid.
 */
static int
idx_frame_state(off_t off, const unsigned char *payload, size_t len,
		uint32_t uidvalidity, struct idx_cb *c,
		struct store_index_state *st, bool *valid_out)
{
	uint32_t hdr_uidvalidity;
	bool with_cb = c != NULL && c->cb != NULL;

	*valid_out = false;
	if (off == 0) {
		if (store_idx_decode_header(payload, len, &hdr_uidvalidity) < 0)
			return errno == EBADMSG ? 0 : -1;
		*st = store_idx_empty;
		st->uidvalidity = hdr_uidvalidity;
	} else {
		if (off < (off_t)STORE_IDX_HDR_FRAME ||
		    len < STORE_IDX_TXN_FIXED ||
		    store_get_le32(payload + 4) != uidvalidity)
			return 0;
		if (store_idx_decode_txn(payload, len, st,
					 with_cb ? idx_cb_call : NULL, c) < 0)
			return with_cb && c->failed ? -1 : 0;
	}
	*valid_out = true;
	return 0;
}

/* The state after the frame at off, if it is valid. */
static int
idx_state_at(struct store_idx_reader *r, off_t off, uint32_t uidvalidity,
	     struct store_index_state *st, bool *valid_out)
{
	const unsigned char *p;
	size_t len;

	if (idx_frame_at(r, off, &p, &len, valid_out) < 0)
		return -1;
	if (!*valid_out)
		return 0;
	return idx_frame_state(off, p, len, uidvalidity, NULL, st, valid_out);
}

/*
 * The state after the last frame, found from the end (one small read for
 * the tail, one for the header); *valid_out false if the last frame is not
 * a whole, valid frame of this log.
 */
int
store_idx_last_state(struct store_idx_reader *r, struct store_index_state *st,
		     bool *valid_out)
{
	struct store_index_state hdr;
	const unsigned char *p;
	size_t len, tail;
	off_t start;

	*valid_out = false;
	if (r->size < (off_t)STORE_IDX_HDR_FRAME)
		return 0;
	tail = r->size < STORE_IDX_TAIL ? (size_t)r->size : STORE_IDX_TAIL;
	if (idx_get(r, r->size - (off_t)tail, tail, &p) < 0)
		return errno == ENODATA ? 0 : -1;
	len = store_get_le32(p + tail - 4);
	if (len > STORE_IDX_MAX_PAYLOAD ||
	    r->size < (off_t)(len + STORE_IDX_OVERHEAD))
		return 0;
	start = r->size - (off_t)(len + STORE_IDX_OVERHEAD);
	if (idx_state_at(r, 0, 0, &hdr, valid_out) < 0)
		return -1;
	if (!*valid_out || start == 0) {
		*st = hdr;
		return 0;
	}
	return idx_state_at(r, start, hdr.uidvalidity, st, valid_out);
}

/*
 * Apply the log from the start; stops at the first invalid frame.
 * *good_end_out: end of the last valid frame (0 if the header is invalid).
 */
int
store_idx_scan(struct store_idx_reader *r,
	       int (*cb)(const struct store_rec *rec, void *arg), void *arg,
	       struct store_index_state *st, off_t *good_end_out)
{
	return store_idx_scan_from(r, 0, &store_idx_empty, cb, arg, st, good_end_out);
}

int
store_idx_scan_from(struct store_idx_reader *r, off_t from,
		    const struct store_index_state *st_from,
		    int (*cb)(const struct store_rec *rec, void *arg),
		    void *arg, struct store_index_state *st,
		    off_t *good_end_out)
{
	struct idx_cb c = { .cb = cb, .arg = arg, .failed = false };
	struct store_index_state next;
	const unsigned char *p;
	off_t off = from;
	size_t len;
	bool valid;

	*st = *st_from;
	*good_end_out = from;
	for (;;) {
		if (idx_frame_at(r, off, &p, &len, &valid) < 0)
			return -1;
		if (valid && idx_frame_state(off, p, len, st->uidvalidity, &c,
					     &next, &valid) < 0)
			return -1;
		if (!valid)
			return 0;
		*st = next;
		off += (off_t)(len + STORE_IDX_OVERHEAD);
		*good_end_out = off;
	}
}

/*
 * After a scan stopped at good_end before the end of the file: true if
 * what follows is one torn or corrupt last frame (to ignore or cut off),
 * false if the damage is in the middle of the log (EBADMSG for the caller).
 */
int
store_idx_tail_is_torn(struct store_idx_reader *r, off_t good_end, bool *torn)
{
	struct store_index_state st;
	bool last_valid;

	*torn = false;
	if (good_end == 0)
		*torn = r->size <= (off_t)STORE_IDX_HDR_FRAME;
	else if (r->size - good_end <= STORE_IDX_MAX_FRAME) {
		if (store_idx_last_state(r, &st, &last_valid) < 0)
			return -1;
		*torn = !last_valid;
	}
	return 0;
}

/* Open the log with flags, and check it is ours. */
int
store_idx_open(int dirfd, int flags)
{
	struct stat dst, fst;
	int fd;

	fd = openat(dirfd, STORE_INDEX_FILE,
		    flags | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	if (fstat(dirfd, &dst) < 0 || fstat(fd, &fst) < 0)
		goto fail;
	if (!S_ISREG(fst.st_mode) || fst.st_uid != dst.st_uid) {
		errno = EPERM;
		goto fail;
	}
	return fd;
fail:
	idx_close(&fd);
	return -1;
}

int
store_idx_reader_init(struct store_idx_reader *r, int fd)
{
	struct stat st;

	memset(r, 0, sizeof(*r));
	r->fd = fd;
	r->chunk = STORE_IDX_CHUNK;
	if (fstat(fd, &st) < 0)
		return -1;
	r->size = st.st_size;
	return 0;
}

void
store_idx_reader_release(struct store_idx_reader *r)
{
	free(r->buf);
	r->buf = NULL;
	r->cap = 0;
	r->buf_len = 0;
}

int
store_index_read(int dirfd,
		 int (*rec_cb)(const struct store_rec *rec, void *arg),
		 void *arg, struct store_index_state *state_out)
{
	struct store_idx_reader r = { .buf = NULL };
	struct store_index_state st;
	off_t good_end;
	int fd, ret = -1;
	bool torn;

	*state_out = store_idx_empty;
	fd = store_idx_open(dirfd, O_RDONLY);
	if (fd < 0) {
		ret = errno == ENOENT ? 0 : -1;
		goto out;
	}
	if (store_idx_reader_init(&r, fd) < 0 ||
	    store_idx_scan(&r, rec_cb, arg, &st, &good_end) < 0)
		goto out;
	if (good_end < r.size) {
		if (store_idx_tail_is_torn(&r, good_end, &torn) < 0)
			goto out;
		if (!torn) {
			errno = EBADMSG;
			goto out;
		}
	}
	*state_out = st;
	ret = 0;
out:
	free(r.buf);
	idx_close(&fd);
	return ret;
}

/* ---- lookups ---------------------------------------------------------- */

struct idx_find {
	const char *guid;
	bool found;
	struct store_rec rec;
};

static int
idx_find_cb(const struct store_rec *rec, void *arg)
{
	struct idx_find *f = arg;

	if (strcasecmp(rec->guid, f->guid) != 0)
		return 0;
	switch (rec->op) {
	case STORE_REC_SAVE:
		f->found = true;
		f->rec = *rec;
		break;
	case STORE_REC_EXPUNGE:
	case STORE_REC_LOST:
		f->found = false;
		break;
	case STORE_REC_FLAGS:
		if (f->found && rec->name[0] != '\0')
			memcpy(f->rec.name, rec->name, sizeof(f->rec.name));
		break;
	}
	return 0;
}

int
store_index_find_guid(int dirfd, const char *guid, bool *found_out,
		      struct store_rec *rec_out)
{
	struct store_index_state st;
	struct idx_find f = { .guid = guid, .found = false };

	*found_out = false;
	if (!store_guid_valid(guid)) {
		errno = EINVAL;
		return -1;
	}
	if (store_index_read(dirfd, idx_find_cb, &f, &st) < 0)
		return -1;
	*found_out = f.found;
	if (f.found && rec_out != NULL)
		*rec_out = f.rec;
	return 0;
}

int
store_index_has_guid(int dirfd, const char *guid, bool *found_out)
{
	return store_index_find_guid(dirfd, guid, found_out, NULL);
}
