/* SPDX-License-Identifier: MIT */
/*
 * repl-hook/journal.c - the durable per-replica event journal: append-only
 * records framed with length and CRC-32, an acknowledged offset kept in a
 * second file, torn-tail recovery at open, truncation once drained.
 *
 * Runs in:  repl-hook (openat/pread/pwrite/ftruncate/fdatasync on files in
 *           <state_dir>/replication).
 * Trust:    the files are ours but may be torn by a crash: every length is
 *           checked against the file size and the field limits, the CRC
 *           of each record past the acked offset is checked at open.
 * Order:    a record is written payload first, then its header; it counts
 *           only after journal_sync.  Truncation: ftruncate + fdatasync of
 *           the journal, then the acked offset 0.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "privsep/privsep.h"
#include "repl-hook/journal_int.h"

#define J_MAGIC 0x314a5453u          /* "STJ1" */
#define J_ACK_MAGIC 0x314b5453u      /* "STK1" */
#define J_HDR 16u                    /* len, crc, magic */
#define J_FIXED 32u                  /* payload fixed part */
#define J_CHUNK 65536u
#define J_MAX_RECORD (1ull << 40)    /* sanity bound on one record */

struct journal {
	int fd;
	int ackfd;
	char name[80];
	uint64_t max_size;
	uint64_t size;
	uint64_t acked;
	uint64_t acked_disk;
	uint64_t next_seq;
	bool dirty;
};

struct j_fixed {
	uint64_t seq;
	uint64_t literal_len;
	uint32_t line_len;
	uint8_t origin_len;
	uint8_t peer_len;
	uint16_t user_len;
	uint16_t mailbox_len;
	uint16_t pad;
};

struct j_ackrec {
	uint64_t off;
	uint32_t crc;
	uint32_t magic;
};

_Static_assert(sizeof(struct j_fixed) == J_FIXED, "journal fixed part");
_Static_assert(sizeof(struct j_ackrec) == 16, "acked record");

static uint32_t crc_table[256];
static bool crc_ready;

uint32_t
journal_crc32(uint32_t crc, const void *buf, size_t len)
{
	const unsigned char *p = buf;
	uint32_t c;
	unsigned i, k;

	if (!crc_ready) {
		for (i = 0; i < 256; i++) {
			c = i;
			for (k = 0; k < 8; k++)
				c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
			crc_table[i] = c;
		}
		crc_ready = true;
	}
	crc = ~crc;
	while (len-- > 0)
		crc = crc_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return ~crc;
}

/* All of len bytes at off, read (buf) or written (wbuf); a read that hits
 * the end of the file is EIO. */
static int
full_io(int fd, void *buf, const void *wbuf, size_t len, uint64_t off)
{
	unsigned char *p = buf;
	const unsigned char *wp = wbuf;
	ssize_t n;

	while (len > 0) {
		n = wp != NULL ? pwrite(fd, wp, len, (off_t)off) :
				 pread(fd, p, len, (off_t)off);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			return -1;
		if (n == 0 && wp == NULL) {
			errno = EIO;
			return -1;
		}
		if (wp != NULL)
			wp += n;
		else
			p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

static int
full_pread(int fd, void *buf, size_t len, uint64_t off)
{
	return full_io(fd, buf, NULL, len, off);
}

static int
full_pwrite(int fd, const void *buf, size_t len, uint64_t off)
{
	return full_io(fd, NULL, buf, len, off);
}

/* ---- reading ---------------------------------------------------------- */

/* Check a record header and fixed part at off; *len_out = payload length. */
static int
read_head(struct journal *j, uint64_t off, uint64_t *len_out, uint32_t *crc_out,
	  struct j_fixed *fx)
{
	unsigned char h[J_HDR];
	uint64_t len;
	uint32_t magic;

	if (off + J_HDR + J_FIXED > j->size ||
	    full_pread(j->fd, h, sizeof(h), off) == -1 ||
	    full_pread(j->fd, fx, sizeof(*fx), off + J_HDR) == -1) {
		errno = EBADMSG;
		return -1;
	}
	memcpy(&len, h, 8);
	memcpy(crc_out, h + 8, 4);
	memcpy(&magic, h + 12, 4);
	if (magic != J_MAGIC || len < J_FIXED || len > J_MAX_RECORD ||
	    len > j->size - off - J_HDR ||
	    fx->origin_len >= PSEP_ID_MAX || fx->peer_len >= PSEP_ID_MAX ||
	    fx->user_len >= PSEP_NAME_MAX || fx->mailbox_len >= PSEP_NAME_MAX ||
	    fx->line_len > REPL_MAXLINE ||
	    (uint64_t)J_FIXED + fx->origin_len + fx->peer_len + fx->user_len +
	    fx->mailbox_len + fx->line_len + fx->literal_len != len) {
		errno = EBADMSG;
		return -1;
	}
	*len_out = len;
	return 0;
}

static void
take_str(char *dst, const unsigned char **p, size_t n)
{
	memcpy(dst, *p, n);
	dst[n] = '\0';
	*p += n;
}

int
journal_read(struct journal *j, uint64_t off, struct journal_entry *e)
{
	static unsigned char buf[2 * PSEP_ID_MAX + 2 * PSEP_NAME_MAX + REPL_MAXLINE];
	const unsigned char *p = buf;
	struct j_fixed fx;
	uint64_t len;
	uint32_t crc;
	size_t vlen;

	if (off >= j->size) {
		errno = ENODATA;
		return -1;
	}
	if (read_head(j, off, &len, &crc, &fx) == -1)
		return -1;
	vlen = (size_t)fx.origin_len + fx.peer_len + fx.user_len + fx.mailbox_len +
	       fx.line_len;
	if (full_pread(j->fd, buf, vlen, off + J_HDR + J_FIXED) == -1)
		return -1;
	e->seq = fx.seq;
	e->off = off;
	e->next_off = off + J_HDR + len;
	take_str(e->origin, &p, fx.origin_len);
	take_str(e->peer, &p, fx.peer_len);
	take_str(e->user, &p, fx.user_len);
	take_str(e->mailbox, &p, fx.mailbox_len);
	take_str(e->line, &p, fx.line_len);
	e->line_len = fx.line_len;
	e->literal_off = off + J_HDR + J_FIXED + vlen;
	e->literal_len = fx.literal_len;
	return 0;
}

/* CRC of the payload at off matches. */
static bool
record_crc_ok(struct journal *j, uint64_t off, uint64_t len, uint32_t crc)
{
	static unsigned char buf[J_CHUNK];
	uint32_t c = 0;
	uint64_t pos = off + J_HDR, end = pos + len;
	size_t n;

	while (pos < end) {
		n = end - pos > J_CHUNK ? J_CHUNK : (size_t)(end - pos);
		if (full_pread(j->fd, buf, n, pos) == -1)
			return false;
		c = journal_crc32(c, buf, n);
		pos += n;
	}
	return c == crc;
}

/* ---- open ------------------------------------------------------------- */

static int
open_file(int dirfd, const char *name, const char *suffix)
{
	char path[128];

	snprintf(path, sizeof(path), "%s.%s", name, suffix);
	return openat(dirfd, path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
}

static uint64_t
load_acked(struct journal *j)
{
	struct j_ackrec a;
	ssize_t n = pread(j->ackfd, &a, sizeof(a), 0);

	if (n != (ssize_t)sizeof(a) || a.magic != J_ACK_MAGIC ||
	    a.crc != journal_crc32(0, &a.off, sizeof(a.off)))
		return 0;
	return a.off;
}

static int
store_acked(struct journal *j, uint64_t off)
{
	struct j_ackrec a;

	memset(&a, 0, sizeof(a));
	a.off = off;
	a.crc = journal_crc32(0, &a.off, sizeof(a.off));
	a.magic = J_ACK_MAGIC;
	if (full_pwrite(j->ackfd, &a, sizeof(a), 0) == -1 || fdatasync(j->ackfd) == -1)
		return -1;
	j->acked_disk = off;
	return 0;
}

/* Walk the records; cut a torn or corrupt tail; place the acked offset. */
static int
journal_scan(struct journal *j, uint64_t acked_raw)
{
	struct j_fixed fx;
	uint64_t off = 0, len, boundary = 0;
	uint32_t crc;

	while (off < j->size) {
		if (read_head(j, off, &len, &crc, &fx) == -1 ||
		    (off + J_HDR + len > acked_raw && !record_crc_ok(j, off, len, crc)))
			break;
		if (off + J_HDR + len <= acked_raw)
			boundary = off + J_HDR + len;
		j->next_seq = fx.seq + 1;
		off += J_HDR + len;
	}
	if (off < j->size) {
		log_warn("replica=%s journal: torn or corrupt record at %llu, "
			 "%llu octets cut off", j->name, (unsigned long long)off,
			 (unsigned long long)(j->size - off));
		if (ftruncate(j->fd, (off_t)off) == -1 || fdatasync(j->fd) == -1)
			return -1;
		j->size = off;
	}
	if (boundary != acked_raw)
		log_info("replica=%s journal: acked offset %llu moved to %llu",
			 j->name, (unsigned long long)acked_raw,
			 (unsigned long long)boundary);
	j->acked = boundary;
	j->acked_disk = acked_raw;
	return 0;
}

int
journal_open(int dirfd, const char *name, uint64_t max_size,
	     struct journal **out, const char **why)
{
	struct journal *j = xcalloc(1, sizeof(*j));
	struct stat st;
	int saved;

	j->fd = j->ackfd = -1;
	j->max_size = max_size;
	j->next_seq = 1;
	if (!xstrlcpy(j->name, name, sizeof(j->name))) {
		errno = ENAMETOOLONG;
		*why = "replica name too long";
		goto fail;
	}
	if ((j->fd = open_file(dirfd, name, "journal")) == -1) {
		*why = "open journal";
		goto fail;
	}
	if ((j->ackfd = open_file(dirfd, name, "acked")) == -1) {
		*why = "open acked";
		goto fail;
	}
	if (fstat(j->fd, &st) == -1) {
		*why = "fstat journal";
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		errno = EINVAL;
		*why = "journal is not a regular file";
		goto fail;
	}
	j->size = (uint64_t)st.st_size;
	if (journal_scan(j, load_acked(j)) == -1) {
		*why = "cut torn journal tail";
		goto fail;
	}
	*out = j;
	return 0;
fail:
	saved = errno;
	journal_free(&j);
	errno = saved;
	return -1;
}

void
journal_free(struct journal **jp)
{
	struct journal *j = *jp;

	if (j == NULL)
		return;
	if (j->fd != -1)
		close(j->fd);
	if (j->ackfd != -1)
		close(j->ackfd);
	free(j);
	*jp = NULL;
}

/* ---- append ----------------------------------------------------------- */

/* Copy body_size octets of fd (from 0) to the journal at *pos, adding to
 * the CRC. */
static int
copy_body(struct journal *j, int fd, uint64_t size, uint64_t *pos, uint32_t *crc)
{
	static unsigned char buf[J_CHUNK];
	uint64_t in = 0;
	ssize_t n;

	while (in < size) {
		n = pread(fd, buf, size - in > J_CHUNK ? J_CHUNK : (size_t)(size - in),
			  (off_t)in);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = EIO;
			return -1;
		}
		*crc = journal_crc32(*crc, buf, (size_t)n);
		if (full_pwrite(j->fd, buf, (size_t)n, *pos) == -1)
			return -1;
		in += (uint64_t)n;
		*pos += (uint64_t)n;
	}
	return 0;
}

/* Fixed part, strings, line and prefix into buf; returns its length. */
static size_t
build_head(const struct journal_rec *rec, const struct j_fixed *fx,
	   unsigned char *buf)
{
	size_t n = 0;

	memcpy(buf, fx, sizeof(*fx));
	n += sizeof(*fx);
	memcpy(buf + n, rec->origin, fx->origin_len);
	n += fx->origin_len;
	memcpy(buf + n, rec->peer, fx->peer_len);
	n += fx->peer_len;
	memcpy(buf + n, rec->user, fx->user_len);
	n += fx->user_len;
	memcpy(buf + n, rec->mailbox, fx->mailbox_len);
	n += fx->mailbox_len;
	memcpy(buf + n, rec->line, rec->line_len);
	n += rec->line_len;
	if (rec->prefix_len > 0)
		memcpy(buf + n, rec->prefix, rec->prefix_len);
	return n + rec->prefix_len;
}

int
journal_append(struct journal *j, const struct journal_rec *rec,
	       uint64_t *seq_out)
{
	static unsigned char buf[J_FIXED + 2 * PSEP_ID_MAX + 2 * PSEP_NAME_MAX +
				 REPL_MAXLINE + PSEP_PREFIX_MAX];
	unsigned char h[J_HDR];
	struct j_fixed fx;
	uint64_t len, pos, start = j->size;
	uint32_t crc, magic = J_MAGIC;
	size_t hlen;
	int saved;

	memset(&fx, 0, sizeof(fx));
	fx.seq = j->next_seq;
	fx.origin_len = (uint8_t)strnlen(rec->origin, PSEP_ID_MAX);
	fx.peer_len = (uint8_t)strnlen(rec->peer, PSEP_ID_MAX);
	fx.user_len = (uint16_t)strnlen(rec->user, PSEP_NAME_MAX);
	fx.mailbox_len = (uint16_t)strnlen(rec->mailbox, PSEP_NAME_MAX);
	fx.line_len = (uint32_t)rec->line_len;
	fx.literal_len = rec->prefix_len + (rec->body_fd >= 0 ? rec->body_size : 0);
	if (fx.origin_len >= PSEP_ID_MAX || fx.peer_len >= PSEP_ID_MAX ||
	    fx.user_len >= PSEP_NAME_MAX || fx.mailbox_len >= PSEP_NAME_MAX ||
	    rec->line_len > REPL_MAXLINE || rec->prefix_len > PSEP_PREFIX_MAX ||
	    fx.literal_len > J_MAX_RECORD) {
		errno = EINVAL;
		return -1;
	}
	len = J_FIXED + fx.origin_len + fx.peer_len + fx.user_len + fx.mailbox_len +
	      fx.line_len + fx.literal_len;
	if (j->max_size > 0 && start + J_HDR + len > j->max_size) {
		errno = EFBIG;
		return -1;
	}
	hlen = build_head(rec, &fx, buf);
	crc = journal_crc32(0, buf, hlen);
	pos = start + J_HDR;
	if (full_pwrite(j->fd, buf, hlen, pos) == -1)
		goto fail;
	pos += hlen;
	if (rec->body_fd >= 0 && copy_body(j, rec->body_fd, rec->body_size, &pos, &crc) == -1)
		goto fail;
	memcpy(h, &len, 8);
	memcpy(h + 8, &crc, 4);
	memcpy(h + 12, &magic, 4);
	if (full_pwrite(j->fd, h, sizeof(h), start) == -1)
		goto fail;
	j->size = start + J_HDR + len;
	j->next_seq++;
	j->dirty = true;
	*seq_out = fx.seq;
	return 0;
fail:
	saved = errno;
	if (ftruncate(j->fd, (off_t)start) == -1)
		log_warn("replica=%s journal: cannot cut a failed append: %s",
			 j->name, strerrordesc_np(errno));
	errno = saved;
	return -1;
}

int
journal_sync(struct journal *j)
{
	if (!j->dirty)
		return 0;
	if (fdatasync(j->fd) == -1)
		return -1;
	j->dirty = false;
	return 0;
}

/* ---- acknowledgement -------------------------------------------------- */

void
journal_set_acked(struct journal *j, uint64_t off)
{
	if (off > j->size)
		off = j->size;
	j->acked = off;
}

int
journal_flush_acked(struct journal *j, bool *truncated_out)
{
	*truncated_out = false;
	if (j->acked == j->size && j->size > 0) {
		if (ftruncate(j->fd, 0) == -1 || fdatasync(j->fd) == -1)
			return -1;
		j->size = 0;
		j->acked = 0;
		j->dirty = false;
		*truncated_out = true;
	}
	if (j->acked == j->acked_disk)
		return 0;
	return store_acked(j, j->acked);
}

uint64_t
journal_size(const struct journal *j)
{
	return j->size;
}

uint64_t
journal_acked(const struct journal *j)
{
	return j->acked;
}

int
journal_fd(const struct journal *j)
{
	return j->fd;
}

uint64_t
journal_next_seq(const struct journal *j)
{
	return j->next_seq;
}
