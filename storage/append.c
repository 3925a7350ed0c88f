/* SPDX-License-Identifier: MIT */
/*
 * storage/append.c - appending transactions to the per-mailbox index log
 * (format in storage_int.h, reading in storage/index.c).
 *
 * Runs in:  writer, with the recipient's credentials.
 * Trust:    the log is created O_CREAT|O_EXCL|O_NOFOLLOW mode 0600 and checked
 *           like any open of it (storage/index.c: regular file, owner of the
 *           directory).
 * Writing:  one write() per transaction on an O_APPEND fd, under flock
 *           LOCK_EX (non-blocking tries with backoff for
 *           store_index_lock_timeout_ms, then EWOULDBLOCK for a tempfail).
 *           Under the lock the state comes from the last frame alone; if that
 *           frame is invalid (a torn write) the log is scanned and cut back
 *           (ftruncate, fdatasync) to the end of the last good frame.  A log
 *           too short to hold its header (a crash at creation) is restarted
 *           with a fresh UIDVALIDITY, written and fdatasynced.  A failed or
 *           short write is cut off at once.
 * Not synced: appends are not fsynced.  The message file is already durable
 *           (fsync of the file and of new/) and carries its GUID in its
 *           name, so a transaction lost in a crash is recovered by
 *           rebuilding the index from the directory; an fsync here would
 *           double the cost of every delivery for no durability gain.
 * Syscalls: openat, fstat/newfstatat, pread64, write, flock, ftruncate,
 *           fdatasync, clock_gettime, clock_nanosleep (nanosleep), close.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "storage/storage_int.h"

unsigned int store_index_lock_timeout_ms = 10000;

void
store_index_set_lock_timeout(unsigned int ms)
{
	store_index_lock_timeout_ms = ms;
}

static void
idx_close(int *fd)
{
	int saved = errno;

	if (*fd >= 0)
		close(*fd);
	*fd = -1;
	errno = saved;
}

/* flock LOCK_EX with non-blocking tries and backoff; EWOULDBLOCK after
 * store_index_lock_timeout_ms. */
static int
idx_lock(int fd)
{
	struct timespec now, nap = { 0, 0 };
	uint64_t start_ms, now_ms;
	long delay_ms = 1;

	if (clock_gettime(CLOCK_MONOTONIC, &now) < 0)
		return -1;
	start_ms = (uint64_t)now.tv_sec * 1000u + (uint64_t)now.tv_nsec / 1000000u;
	for (;;) {
		if (flock(fd, LOCK_EX | LOCK_NB) == 0)
			return 0;
		if (errno != EWOULDBLOCK && errno != EINTR)
			return -1;
		if (clock_gettime(CLOCK_MONOTONIC, &now) < 0)
			return -1;
		now_ms = (uint64_t)now.tv_sec * 1000u +
			 (uint64_t)now.tv_nsec / 1000000u;
		if (now_ms - start_ms >= store_index_lock_timeout_ms) {
			errno = EWOULDBLOCK;
			return -1;
		}
		nap.tv_nsec = delay_ms * 1000000L;
		nanosleep(&nap, NULL);
		if (delay_ms < 64)
			delay_ms *= 2;
	}
}

/* Open or create the log for appending. */
static int
idx_open_rw(int dirfd)
{
	int fd, i;

	for (i = 0; i < 3; i++) {
		fd = store_idx_open(dirfd, O_RDWR | O_APPEND);
		if (fd >= 0 || errno != ENOENT)
			return fd;
		fd = store_idx_open(dirfd, O_RDWR | O_APPEND | O_CREAT | O_EXCL);
		if (fd >= 0 || errno != EEXIST)
			return fd;
	}
	return -1;
}

/* (Re)start a log that holds no whole header: fresh UIDVALIDITY. */
static int
idx_init(int fd, struct store_index_state *st, off_t *end_out)
{
	unsigned char hdr[STORE_IDX_HDR_FRAME];
	struct timespec ts;
	uint32_t uidvalidity;
	ssize_t wr;

	if (clock_gettime(CLOCK_REALTIME, &ts) < 0)
		return -1;
	uidvalidity = (uint32_t)ts.tv_sec != 0 ? (uint32_t)ts.tv_sec : 1;
	store_idx_encode_header(uidvalidity, hdr);
	if (ftruncate(fd, 0) < 0)
		return -1;
	wr = write(fd, hdr, sizeof(hdr));
	if (wr != (ssize_t)sizeof(hdr)) {
		if (wr >= 0)
			errno = ENOSPC;
		return -1;
	}
	if (fdatasync(fd) < 0)
		return -1;
	*st = store_idx_empty;
	st->uidvalidity = uidvalidity;
	*end_out = (off_t)sizeof(hdr);
	return 0;
}

/* Cut a torn tail off at good_end (fdatasync'ed). */
static int
idx_repair(struct store_idx_reader *r, struct store_index_state *st,
	   off_t *end_out)
{
	off_t good_end;
	bool torn;

	r->chunk = STORE_IDX_CHUNK;
	if (store_idx_scan(r, NULL, NULL, st, &good_end) < 0 ||
	    store_idx_tail_is_torn(r, good_end, &torn) < 0)
		return -1;
	if (!torn || good_end == 0) {
		errno = EBADMSG;
		return -1;
	}
	if (ftruncate(r->fd, good_end) < 0 || fdatasync(r->fd) < 0)
		return -1;
	*end_out = good_end;
	return 0;
}

/* Under the lock: the current state and end of the log, repairing it. */
static int
idx_prepare(int fd, struct store_index_state *st, off_t *end_out)
{
	struct store_idx_reader r;
	int ret = -1;
	bool valid;

	if (store_idx_reader_init(&r, fd) < 0)
		goto out;
	r.chunk = STORE_IDX_TAIL;   /* the common case reads only the tail */
	if (store_idx_last_state(&r, st, &valid) < 0)
		goto out;
	*end_out = r.size;
	if (valid)
		ret = 0;
	else if (r.size <= (off_t)STORE_IDX_HDR_FRAME)
		ret = idx_init(fd, st, end_out);
	else
		ret = idx_repair(&r, st, end_out);
out:
	free(r.buf);
	return ret;
}

/* Give the records their modseq (one per transaction) and SAVEs a uid. */
static int
idx_assign(struct store_index_state *st, struct store_rec *recs, size_t n)
{
	struct store_index_state next = *st;
	size_t i;

	next.highestmodseq++;
	for (i = 0; i < n; i++) {
		recs[i].modseq = next.highestmodseq;
		switch (recs[i].op) {
		case STORE_REC_SAVE:
			if (recs[i].uid < next.uidnext)
				recs[i].uid = next.uidnext;
			if (recs[i].uid == UINT32_MAX) {
				errno = EOVERFLOW;
				return -1;
			}
			next.uidnext = recs[i].uid + 1;
			next.messages++;
			break;
		case STORE_REC_EXPUNGE:
		case STORE_REC_LOST:
			if (next.messages > 0)
				next.messages--;
			break;
		case STORE_REC_FLAGS:
			break;
		}
	}
	*st = next;
	return 0;
}

/* One write() of one frame; a failed or short write is cut off again. */
static int
idx_write_txn(int fd, off_t end, const struct store_index_state *st,
	      const struct store_rec *recs, size_t n)
{
	unsigned char *buf;
	size_t size;
	ssize_t wr;
	int saved, ret = -1;

	size = store_idx_txn_size(recs, n);
	if (size == 0)
		return -1;
	buf = malloc(size);
	if (buf == NULL)
		return -1;
	store_idx_encode_txn(st, recs, n, buf, size);
	wr = write(fd, buf, size);
	if (wr == (ssize_t)size) {
		ret = 0;
	} else {
		saved = wr < 0 ? errno : ENOSPC;
		if (ftruncate(fd, end) < 0) {
			/* left torn: the next appender cuts it off */
		}
		errno = saved;
	}
	free(buf);
	return ret;
}

int
store_idx_begin(int dirfd, int *fd_out, struct store_index_state *st,
		off_t *end_out)
{
	int fd;

	*fd_out = -1;
	fd = idx_open_rw(dirfd);
	if (fd < 0)
		return -1;
	if (idx_lock(fd) < 0 || idx_prepare(fd, st, end_out) < 0) {
		idx_close(&fd);
		return -1;
	}
	*fd_out = fd;
	return 0;
}

int
store_idx_commit(int fd, off_t *end, const struct store_index_state *st,
		 const struct store_rec *recs, size_t n, bool sync)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (!store_idx_rec_valid(&recs[i])) {
			errno = EINVAL;
			return -1;
		}
	}
	if (idx_write_txn(fd, *end, st, recs, n) < 0)
		return -1;
	*end += (off_t)store_idx_txn_size(recs, n);
	if (sync && fdatasync(fd) < 0)
		return -1;
	return 0;
}

int
store_index_append(int dirfd, struct store_rec *recs, size_t n,
		   struct store_index_state *state_out)
{
	struct store_index_state st;
	off_t end;
	size_t i;
	int fd = -1, ret = -1;

	if (n > 0 && recs == NULL) {
		errno = EINVAL;
		goto out;
	}
	for (i = 0; i < n; i++) {
		if (!store_idx_rec_valid(&recs[i])) {
			errno = EINVAL;
			goto out;
		}
	}
	if (store_idx_begin(dirfd, &fd, &st, &end) < 0)
		goto out;
	if (n > 0 && (idx_assign(&st, recs, n) < 0 ||
		      idx_write_txn(fd, end, &st, recs, n) < 0))
		goto out;
	*state_out = st;
	ret = 0;
out:
	idx_close(&fd);   /* also drops the lock */
	return ret;
}
