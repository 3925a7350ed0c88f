/* SPDX-License-Identifier: MIT */
/*
 * storage/repl/ckpt.c - the checkpoint of a mailbox's replayed state
 * (STORE_CKPT_FILE beside the index log): every message entry as of one
 * offset of the log, with tables sorted by GUID and by base name, so that
 * a writer that does not hold the mailbox in its cache reads only the
 * entries an operation names plus the log written since the checkpoint
 * (change capture: O(names + tail), not O(messages)), and a whole load
 * reads the entries without replaying the log's history.
 *
 * Runs in:  a writer, with the user's credentials, under the index lock
 *           (writing, and reading for an operation); change capture also
 *           reads another folder's checkpoint without its lock (a file is
 *           only ever replaced whole, by rename).
 * Trust:    the file lives in a user-controlled directory, like the log:
 *           opened O_NOFOLLOW|O_NONBLOCK, a regular file owned by the user,
 *           header CRC'd, every record CRC'd and decoded with bounds and the
 *           checks of the log's records (repl/state.c store_mbox_put), every
 *           table offset bounded.  It is trusted only as far as the log is:
 *           it names the log (device, inode) and the last CKPT_TAIL bytes
 *           before the offset it covers, which must still be there; the
 *           rest of the log is replayed on top, and the state after that
 *           must equal the state the log's last transaction carries.  A
 *           checkpoint that does not fit is ignored (the log is replayed).
 *           Memory does not follow the file's size: a whole load streams
 *           it through CKPT_LOAD_BUF bytes, a partial one caches at most
 *           CKPT_PAGES pages of the tables.
 * Cost:     a partial load: the header, the log since (at most an eighth
 *           of the checkpoint's size, 64 KiB or more), a binary search per
 *           name and per GUID that log names, one record read per entry.
 * Durable:  written to a temporary name, fdatasync'ed, renamed over the old
 *           one: a crash leaves the old or the new file, each complete (a
 *           torn one fails its CRCs).  The log stays the record; losing
 *           the checkpoint costs one replay.
 * Format:   little-endian.  A CKPT_HDR-byte header (magic "STOWDCKP",
 *           version, its CRC, the log's device and inode, the offset
 *           covered and the bytes before it, the state and digests, the
 *           counts), then the records (u32 length, u32 CRC of the rest,
 *           GUID, kind, uid, base stamp, date, flags, name, per-flag
 *           stamps), then two tables of 12-byte entries (u64 FNV-1a key,
 *           u32 record offset), sorted: every entry by its GUID, the
 *           present messages with a name by their base name (up to ':').
 * Syscalls: openat, fstat, pread64, write, pwrite64, fdatasync, renameat,
 *           unlinkat, close.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/repl/repl_int.h"

#define CKPT_MAGIC "STOWDCKP"
#define CKPT_VERSION 1u
#define CKPT_REC_MAX 10240u            /* one record, at most */
#define CKPT_REC_READ 512u             /* first read of a record */
#define CKPT_MAX_BYTES (1u << 30)      /* a file over this is not read */
#define CKPT_LOAD_BUF (256u * 1024u)   /* a whole load reads this at a time */
#define CKPT_MIN_TAIL (64u * 1024u)    /* log bytes before one is written */
#define CKPT_TMP STORE_CKPT_FILE ".tmp"

static void
put(unsigned char *p, uint64_t v, size_t n)
{
	for (size_t i = 0; i < n; i++, v >>= 8)
		p[i] = (unsigned char)(v & 0xff);
}

static uint64_t
get(const unsigned char *p, size_t n)
{
	uint64_t v = 0;

	while (n-- > 0)
		v = v << 8 | p[n];
	return v;
}

/* FNV-1a of s[0..len), the key of both tables. */
static uint64_t
ckpt_key(const char *s, size_t len)
{
	uint64_t h = 1469598103934665603ull;

	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)s[i];
		h *= 1099511628211ull;
	}
	return h;
}

size_t
store_ckpt_base_len(const char *name)
{
	const char *colon = strchr(name, ':');

	return colon != NULL ? (size_t)(colon - name) : strlen(name);
}

/* ---- writing ------------------------------------------------------------ */

struct ckpt_ent {
	uint64_t key;
	uint32_t off;
};

static int
ent_cmp(const void *a, const void *b)
{
	const struct ckpt_ent *x = a, *y = b;

	if (x->key != y->key)
		return x->key < y->key ? -1 : 1;
	return x->off < y->off ? -1 : x->off > y->off;
}

/* Append a string of at most max octets with a lenbytes-long length. */
static unsigned char *
put_str(unsigned char *p, const char *s, size_t lenbytes)
{
	size_t n = strlen(s);

	put(p, n, lenbytes);
	memcpy(p + lenbytes, s, n);
	return p + lenbytes + n;
}

/* Encode msg at out[CKPT_REC_MAX]; its length. */
static size_t
rec_encode(const struct store_msg *msg, unsigned char *out)
{
	unsigned char *p = out + 8;
	uint32_t len;

	memcpy(p, msg->guid, STORE_GUID_HEX);
	p += STORE_GUID_HEX;
	*p++ = (unsigned char)msg->kind;
	put(p, msg->uid, 4);
	put(p + 4, msg->base_modseq, 8);
	put(p + 12, (uint64_t)msg->date, 8);
	p = put_str(p + 20, msg->base_origin, 1);
	p = put_str(p, msg->flags, 1);
	p = put_str(p, msg->name, 2);
	put(p, msg->nfs, 2);
	p += 2;
	for (size_t i = 0; i < msg->nfs; i++) {
		p = put_str(p, msg->fs[i].flag, 1);
		put(p, msg->fs[i].modseq, 8);
		p = put_str(p + 8, msg->fs[i].origin, 1);
	}
	len = (uint32_t)(p - out);
	put(out, len, 4);
	put(out + 4, store_crc32(0, out + 8, len - 8), 4);
	return len;
}

/* The file of o's state: records, tables, header; fdatasync'ed. */
static int
ckpt_fill(int fd, const struct store_rop *o, const unsigned char *tail, size_t ntail,
	  off_t *size_out)
{
	const struct store_mbox *m = &o->m;
	struct ckpt_ent *ents = calloc(m->nmsgs * 2 + 1, sizeof(*ents));
	unsigned char hdr[CKPT_HDR] = { 0 }, *buf = malloc(CKPT_REC_MAX * 8);
	size_t ng = 0, nn = 0, nbuf = 0, i;
	uint64_t off = 0;
	uint32_t body_crc = 0;
	int ret = -1;

	/* written in order: zeros where the header goes, the records, the
	 * tables; then the header */
	if (ents == NULL || buf == NULL || store_write_all(fd, hdr, CKPT_HDR) < 0)
		goto out;
	for (i = 0; i < m->nmsgs; i++) {
		const struct store_msg *msg = &m->msgs[i];
		size_t len = rec_encode(msg, buf + nbuf);

		if (off + len > CKPT_MAX_BYTES / 2) {
			errno = EFBIG;
			goto out;
		}
		ents[ng++] = (struct ckpt_ent){ ckpt_key(msg->guid, STORE_GUID_HEX),
						(uint32_t)off };
		if (msg->kind == STORE_MSG_PRESENT && msg->name[0] != '\0')
			ents[m->nmsgs + nn++] = (struct ckpt_ent){
				ckpt_key(msg->name, store_ckpt_base_len(msg->name)),
				(uint32_t)off };
		off += len;
		nbuf += len;
		if (nbuf > CKPT_REC_MAX * 7 || i + 1 == m->nmsgs) {
			body_crc = store_crc32(body_crc, buf, nbuf);
			if (store_write_all(fd, buf, nbuf) < 0)
				goto out;
			nbuf = 0;
		}
	}
	qsort(ents, ng, sizeof(*ents), ent_cmp);
	qsort(ents + m->nmsgs, nn, sizeof(*ents), ent_cmp);
	/* the tables, CKPT_ENT bytes an entry, through buf */
	for (int t = 0; t < 2; t++) {
		const struct ckpt_ent *e = t == 0 ? ents : ents + m->nmsgs;
		size_t n = t == 0 ? ng : nn;

		for (i = 0; i < n; i++) {
			put(buf + nbuf, e[i].key, 8);
			put(buf + nbuf + 8, e[i].off, 4);
			nbuf += CKPT_ENT;
			if (nbuf + CKPT_ENT > CKPT_REC_MAX * 8 || i + 1 == n) {
				body_crc = store_crc32(body_crc, buf, nbuf);
				if (store_write_all(fd, buf, nbuf) < 0)
					goto out;
				nbuf = 0;
			}
		}
	}
	memcpy(hdr + H_MAGIC, CKPT_MAGIC, 8);
	put(hdr + H_VERSION, CKPT_VERSION, 4);
	put(hdr + H_DEV, (uint64_t)o->idx_dev, 8);
	put(hdr + H_INO, (uint64_t)o->idx_ino, 8);
	put(hdr + H_END, (uint64_t)o->end, 8);
	put(hdr + H_NTAIL, ntail, 4);
	put(hdr + H_UIDVALIDITY, m->st.uidvalidity, 4);
	put(hdr + H_UIDNEXT, m->st.uidnext, 4);
	put(hdr + H_MESSAGES, m->st.messages, 4);
	put(hdr + H_HMS, m->st.highestmodseq, 8);
	memcpy(hdr + H_GUIDHASH, m->guidhash, 32);
	memcpy(hdr + H_FLAGHASH, m->flaghash, 32);
	put(hdr + H_NREC, ng, 4);
	put(hdr + H_NNAME, nn, 4);
	put(hdr + H_RECS_LEN, off, 8);
	put(hdr + H_BODY_CRC, body_crc, 4);
	put(hdr + H_UID, o->c->uid, 4);
	memcpy(hdr + H_TAIL, tail, ntail);
	put(hdr + H_CRC, store_crc32(0, hdr, CKPT_HDR), 4);
	/* the header last, over the zeros written first: a file cut short
	 * anywhere fails its CRCs */
	if (pwrite(fd, hdr, CKPT_HDR, 0) != (ssize_t)CKPT_HDR || fdatasync(fd) < 0)
		goto out;
	*size_out = CKPT_HDR + (off_t)off + (off_t)(ng + nn) * CKPT_ENT;
	ret = 0;
out:
	free(ents);
	free(buf);
	return ret;
}

static size_t ckpt_every = SIZE_MAX;

#ifdef STOWD_TEST_HOOKS
unsigned long store_repl_test_ckpt_loads[3];
#define CKPT_COUNT(i) (store_repl_test_ckpt_loads[i]++)
#else
#define CKPT_COUNT(i) ((void)0)
#endif

void
store_repl_ckpt_every(size_t every)
{
	ckpt_every = every;
}

/* Log bytes after a checkpoint of size bytes: a new one is due past them,
 * and a partial load reads at most max(them, CKPT_MIN_TAIL). */
static off_t
ckpt_tail_max(off_t size, bool partial)
{
	off_t every = size / 8 > CKPT_MIN_TAIL ? size / 8 : CKPT_MIN_TAIL, fixed;

	if (ckpt_every == SIZE_MAX)
		return every;
	fixed = ckpt_every > (size_t)INT64_MAX ? INT64_MAX : (off_t)ckpt_every;
	return partial && fixed < every ? every : fixed;
}

bool
store_ckpt_due(const struct store_rop *o)
{
	return o->end - o->ck_end > ckpt_tail_max(o->ck_size, false);
}

void
store_ckpt_write(struct store_rop *o)
{
	unsigned char tail[CKPT_TAIL];
	size_t ntail = o->end < CKPT_TAIL ? (size_t)o->end : CKPT_TAIL;
	int saved = errno, fd;
	off_t size;

	if (o->m.partial || o->idx_fd < 0 || ntail == 0 ||
	    pread(o->idx_fd, tail, ntail, o->end - (off_t)ntail) != (ssize_t)ntail)
		goto out;
	/* the index lock is held: nobody else writes the temporary file */
	if (unlinkat(o->d.box_fd, CKPT_TMP, 0) < 0 && errno != ENOENT)
		goto out;
	fd = openat(o->d.box_fd, CKPT_TMP, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
		    O_CLOEXEC, 0600);
	if (fd < 0)
		goto out;
	if (ckpt_fill(fd, o, tail, ntail, &size) == 0 &&
	    renameat(o->d.box_fd, CKPT_TMP, o->d.box_fd, STORE_CKPT_FILE) == 0) {
		o->ck_end = o->end;
		o->ck_size = size;
	} else {
		unlinkat(o->d.box_fd, CKPT_TMP, 0);
	}
	close(fd);
out:
	errno = saved;   /* a hint: failures are ignored */
}

/* ---- reading ------------------------------------------------------------ */

void
store_ckpt_close(struct store_ckpt *ck)
{
	if (ck->fd >= 0)
		close(ck->fd);
	free(ck->pages);
	memset(ck, 0, sizeof(*ck));
	ck->fd = -1;
}

int
store_ckpt_open(struct store_ckpt *ck, int box_fd, int idx_fd, uid_t uid)
{
	unsigned char hdr[CKPT_HDR], tail[CKPT_TAIL];
	struct stat ist, st;
	uint32_t crc;

	memset(ck, 0, sizeof(*ck));
	ck->fd = openat(box_fd, STORE_CKPT_FILE, O_RDONLY | O_NOFOLLOW | O_NONBLOCK |
			O_CLOEXEC);
	if (ck->fd < 0)
		return -1;
	if (fstat(ck->fd, &st) < 0 || fstat(idx_fd, &ist) < 0 ||
	    !S_ISREG(st.st_mode) || st.st_uid != uid || st.st_size < CKPT_HDR ||
	    st.st_size > CKPT_MAX_BYTES ||
	    pread(ck->fd, hdr, CKPT_HDR, 0) != CKPT_HDR)
		goto bad;
	crc = (uint32_t)get(hdr + H_CRC, 4);
	put(hdr + H_CRC, 0, 4);
	if (memcmp(hdr, CKPT_MAGIC, 8) != 0 || get(hdr + H_VERSION, 4) != CKPT_VERSION ||
	    store_crc32(0, hdr, CKPT_HDR) != crc || get(hdr + H_UID, 4) != (uint64_t)uid ||
	    get(hdr + H_DEV, 8) != (uint64_t)ist.st_dev ||
	    get(hdr + H_INO, 8) != (uint64_t)ist.st_ino)
		goto bad;
	ck->end = (off_t)get(hdr + H_END, 8);
	ck->size = st.st_size;
	ck->nrec = (uint32_t)get(hdr + H_NREC, 4);
	ck->nname = (uint32_t)get(hdr + H_NNAME, 4);
	ck->recs_len = get(hdr + H_RECS_LEN, 8);
	ck->body_crc = (uint32_t)get(hdr + H_BODY_CRC, 4);
	ck->ntail = (size_t)get(hdr + H_NTAIL, 4);
	if (ck->end <= 0 || ck->end > ist.st_size || ck->ntail == 0 ||
	    ck->ntail > CKPT_TAIL ||
	    ck->ntail != (ck->end < CKPT_TAIL ? (size_t)ck->end : CKPT_TAIL) ||
	    ck->nname > ck->nrec || ck->recs_len > CKPT_MAX_BYTES ||
	    (uint64_t)st.st_size != CKPT_HDR + ck->recs_len +
				    (uint64_t)(ck->nrec + ck->nname) * CKPT_ENT ||
	    pread(idx_fd, tail, ck->ntail, ck->end - (off_t)ck->ntail) !=
	    (ssize_t)ck->ntail || memcmp(tail, hdr + H_TAIL, ck->ntail) != 0)
		goto bad;
	ck->st.uidvalidity = (uint32_t)get(hdr + H_UIDVALIDITY, 4);
	ck->st.uidnext = (uint32_t)get(hdr + H_UIDNEXT, 4);
	ck->st.messages = (uint32_t)get(hdr + H_MESSAGES, 4);
	ck->st.highestmodseq = get(hdr + H_HMS, 8);
	memcpy(ck->guidhash, hdr + H_GUIDHASH, 32);
	memcpy(ck->flaghash, hdr + H_FLAGHASH, 32);
	return 0;
bad:
	store_ckpt_close(ck);
	errno = EBADMSG;
	return -1;
}

/* A string of a record: [*p, end) holds lenbytes of length then the
 * octets; copied into out[cap] (NUL-terminated).  false if it does not fit. */
static bool
get_str(const unsigned char **p, const unsigned char *end, size_t lenbytes,
	char *out, size_t cap)
{
	size_t n;

	if ((size_t)(end - *p) < lenbytes)
		return false;
	n = (size_t)get(*p, lenbytes);
	*p += lenbytes;
	if (n >= cap || (size_t)(end - *p) < n || memchr(*p, '\0', n) != NULL)
		return false;
	memcpy(out, *p, n);
	out[n] = '\0';
	*p += n;
	return true;
}

/* Decode rec[0..len) (length and CRC checked by the caller) into *msg
 * (zeroed first; msg->fs owned by the caller).  0 or -1 (EBADMSG). */
static int
rec_decode(const unsigned char *rec, size_t len, struct store_msg *msg)
{
	const unsigned char *p = rec + 8, *end = rec + len;
	size_t i;

	memset(msg, 0, sizeof(*msg));
	if (len < 8 + STORE_GUID_HEX + 21)
		goto bad;
	memcpy(msg->guid, p, STORE_GUID_HEX);
	p += STORE_GUID_HEX;
	msg->kind = (enum store_msg_kind)*p++;
	msg->uid = (uint32_t)get(p, 4);
	msg->base_modseq = get(p + 4, 8);
	msg->date = (int64_t)get(p + 12, 8);
	p += 20;
	if (!get_str(&p, end, 1, msg->base_origin, sizeof(msg->base_origin)) ||
	    !get_str(&p, end, 1, msg->flags, sizeof(msg->flags)) ||
	    !get_str(&p, end, 2, msg->name, sizeof(msg->name)) || end - p < 2)
		goto bad;
	msg->nfs = (size_t)get(p, 2);
	p += 2;
	if (msg->nfs > STORE_FS_MAX)
		goto bad;
	if (msg->nfs > 0 && (msg->fs = calloc(msg->nfs, sizeof(*msg->fs))) == NULL)
		return -1;
	for (i = 0; i < msg->nfs; i++) {
		if (!get_str(&p, end, 1, msg->fs[i].flag, sizeof(msg->fs[i].flag)) ||
		    end - p < 8)
			goto bad;
		msg->fs[i].modseq = get(p, 8);
		p += 8;
		if (!get_str(&p, end, 1, msg->fs[i].origin, sizeof(msg->fs[i].origin)))
			goto bad;
	}
	if (p != end)
		goto bad;
	return 0;
bad:
	free(msg->fs);
	msg->fs = NULL;
	msg->nfs = 0;
	errno = EBADMSG;
	return -1;
}

/* The record at off (from the records' start) into *msg. */
static int
ckpt_rec_at(const struct store_ckpt *ck, uint64_t off, struct store_msg *msg)
{
	unsigned char buf[CKPT_REC_MAX];
	size_t len;
	ssize_t n;

	if (off + 8 > ck->recs_len)
		goto bad;
	n = pread(ck->fd, buf, CKPT_REC_READ, CKPT_HDR + (off_t)off);
	if (n < 8)
		goto bad;
	len = (size_t)get(buf, 4);
	if (len < 8 || len > CKPT_REC_MAX || off + len > ck->recs_len)
		goto bad;
	if (len > (size_t)n &&
	    pread(ck->fd, buf + n, len - (size_t)n, CKPT_HDR + (off_t)off + n) !=
	    (ssize_t)(len - (size_t)n))
		goto bad;
	if (store_crc32(0, buf + 8, len - 8) != (uint32_t)get(buf + 4, 4))
		goto bad;
	return rec_decode(buf, len, msg);
bad:
	errno = EBADMSG;
	return -1;
}

/* Table entry idx of table t into e[CKPT_ENT], through ck's cache of
 * table pages (CKPT_PAGE_ENTS entries each, direct-mapped): a binary
 * search's first probes are the same for every key, so a load that looks
 * up many keys reads each page near the top once.  0 or -1. */
static int
ckpt_ent_at(struct store_ckpt *ck, int t, size_t idx, unsigned char e[CKPT_ENT])
{
	size_t n = t == 0 ? ck->nrec : ck->nname, page = idx / CKPT_PAGE_ENTS, slot, len;
	off_t base = CKPT_HDR + (off_t)ck->recs_len + (t == 0 ? 0 : (off_t)ck->nrec * CKPT_ENT);
	struct store_ckpt_page *pg;

	if (ck->pages == NULL &&
	    (ck->pages = calloc(CKPT_PAGES, sizeof(*ck->pages))) == NULL)
		return -1;
	slot = (page * 2 + (size_t)t) % CKPT_PAGES;
	pg = &ck->pages[slot];
	if (!pg->used || pg->table != t || pg->page != page) {
		len = (n - page * CKPT_PAGE_ENTS < CKPT_PAGE_ENTS ?
		       n - page * CKPT_PAGE_ENTS : CKPT_PAGE_ENTS) * CKPT_ENT;
		pg->used = false;
		if (pread(ck->fd, pg->buf, len,
			  base + (off_t)(page * CKPT_PAGE_ENTS * CKPT_ENT)) != (ssize_t)len) {
			errno = EBADMSG;
			return -1;
		}
		pg->used = true;
		pg->table = t;
		pg->page = page;
	}
	memcpy(e, pg->buf + (idx % CKPT_PAGE_ENTS) * CKPT_ENT, CKPT_ENT);
	return 0;
}

/*
 * Each record whose key in table t (0: GUIDs, 1: base names) is key, to
 * cb until it returns non-zero (its value returned).  Binary search over
 * the cached table pages.  -1 (EBADMSG) for a damaged table.
 */
static int
ckpt_each_key(struct store_ckpt *ck, int t, uint64_t key,
	      int (*cb)(struct store_msg *msg, void *arg), void *arg)
{
	size_t lo = 0, hi = t == 0 ? ck->nrec : ck->nname;
	unsigned char e[CKPT_ENT];
	struct store_msg msg;
	int ret = 0;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (ckpt_ent_at(ck, t, mid, e) < 0)
			return -1;
		if (get(e, 8) < key)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (hi = t == 0 ? ck->nrec : ck->nname; lo < hi && ret == 0; lo++) {
		if (ckpt_ent_at(ck, t, lo, e) < 0)
			return -1;
		if (get(e, 8) != key)
			break;
		if (ckpt_rec_at(ck, get(e + 8, 4), &msg) < 0)
			return -1;
		ret = cb(&msg, arg);
		free(msg.fs);
	}
	return ret;
}

/* ---- a partial state: the entries an operation needs ------------------- */

struct want_guid {
	struct store_mbox *m;
	const char *guid;
};

static int
put_guid_cb(struct store_msg *msg, void *arg)
{
	struct want_guid *w = arg;

	if (strncasecmp(msg->guid, w->guid, STORE_GUID_HEX) != 0)
		return 0;
	if (store_mbox_put(w->m, msg) < 0)
		return -1;
	msg->fs = NULL;   /* owned by m now */
	return 1;
}

int
store_ckpt_want_guid(struct store_rop *o, const char *guid)
{
	struct want_guid w = { &o->m, guid };

	if (!o->m.partial || !store_guid_valid(guid) || store_mbox_find(&o->m, guid) != NULL)
		return 0;
	return ckpt_each_key(&o->ck, 0, ckpt_key(guid, STORE_GUID_HEX), put_guid_cb,
			     &w) < 0 ? -1 : 0;
}

struct want_base {
	struct store_mbox *m;
	const char *name;
	size_t len;
};

static int
put_base_cb(struct store_msg *msg, void *arg)
{
	struct want_base *w = arg;

	if (msg->kind != STORE_MSG_PRESENT || store_ckpt_base_len(msg->name) != w->len ||
	    memcmp(msg->name, w->name, w->len) != 0 ||
	    store_mbox_find(w->m, msg->guid) != NULL)
		return 0;   /* another base with this key, or known from the tail */
	if (store_mbox_put(w->m, msg) < 0)
		return -1;
	msg->fs = NULL;
	return 0;
}

static int
partial_apply_cb(const struct store_rec *rec, void *arg)
{
	struct store_rop *o = arg;

	if (store_ckpt_want_guid(o, rec->guid) < 0)
		return -1;
	return store_mbox_apply(&o->m, rec);
}

/* m := ck's state with [ck->end, o->end) replayed through cb; 0 if the
 * result is the state logged, -1 otherwise (m freed). */
static int
ckpt_catch_up(struct store_rop *o, const struct store_index_state *logged,
	      int (*cb)(const struct store_rec *rec, void *arg), void *arg)
{
	struct store_idx_reader r;
	struct store_index_state st;
	uint32_t messages;
	off_t good_end;
	int ret = -1;

	o->m.st = o->ck.st;
	memcpy(o->m.guidhash, o->ck.guidhash, 32);
	memcpy(o->m.flaghash, o->ck.flaghash, 32);
	if (store_idx_reader_init(&r, o->idx_fd) < 0)
		goto out;
	if (store_idx_scan_from(&r, o->ck.end, &o->m.st, cb, arg, &st, &good_end) == 0 &&
	    good_end == o->end && st.uidvalidity == logged->uidvalidity &&
	    st.uidnext == logged->uidnext && st.highestmodseq == logged->highestmodseq) {
		messages = o->m.st.messages;
		o->m.st = st;
		o->m.st.messages = messages;
		ret = 0;
	}
	store_idx_reader_release(&r);
out:
	if (ret < 0)
		store_mbox_free(&o->m);
	return ret;
}

int
store_ckpt_load_partial(struct store_rop *o, const struct store_index_state *logged,
			const char *const *names, size_t n)
{
	if (o->ck.fd < 0)
		return 1;
	if (o->end - o->ck.end > ckpt_tail_max(o->ck.size, true))
		return 1;   /* a long tail: the whole load writes a new one */
	memset(&o->m, 0, sizeof(o->m));
	o->m.partial = true;
	if (ckpt_catch_up(o, logged, partial_apply_cb, o) < 0)
		goto unfit;
	o->m.partial = true;
	for (size_t i = 0; i < n; i++) {
		struct want_base w = { &o->m, names[i], store_ckpt_base_len(names[i]) };

		if (ckpt_each_key(&o->ck, 1, ckpt_key(w.name, w.len), put_base_cb, &w) < 0) {
			store_mbox_free(&o->m);
			goto unfit;
		}
	}
	CKPT_COUNT(1);
	return 0;
unfit:
	/* damaged, or not this log's: the next whole state replaces it */
	o->ck_end = o->ck_size = 0;
	store_ckpt_close(&o->ck);
	return 1;
}

/* ---- a whole state ------------------------------------------------------ */

static int
full_apply_cb(const struct store_rec *rec, void *arg)
{
	return store_mbox_apply(arg, rec);
}

/* Read [at, at + n) of the body (after the header) into buf, adding it
 * to *crc; 0 or -1. */
static int
body_read(const struct store_ckpt *ck, unsigned char *buf, size_t n, uint64_t at,
	  uint32_t *crc)
{
	if (n > 0 && pread(ck->fd, buf, n, CKPT_HDR + (off_t)at) != (ssize_t)n)
		return -1;
	*crc = store_crc32(*crc, buf, n);
	return 0;
}

int
store_ckpt_load(struct store_rop *o, const struct store_index_state *logged)
{
	uint64_t body = (uint64_t)(o->ck.size - CKPT_HDR), len = o->ck.recs_len, at = 0;
	size_t have = 0, pos = 0, i;
	unsigned char *buf;
	struct store_msg msg;
	uint32_t crc = 0;

	if (o->ck.fd < 0)
		return 1;
	/* streamed through CKPT_LOAD_BUF bytes (the file is the user's: its
	 * size does not decide what is allocated); the records are kept
	 * only if the CRC of the whole body holds */
	buf = malloc(CKPT_LOAD_BUF);
	if (buf == NULL)
		return 1;
	memset(&o->m, 0, sizeof(o->m));
	for (i = 0; i < o->ck.nrec; i++) {
		size_t rl;

		if (have - pos < CKPT_REC_MAX && at < len) {
			size_t n = CKPT_LOAD_BUF - (have - pos);

			memmove(buf, buf + pos, have - pos);
			have -= pos;
			pos = 0;
			if (n > len - at)
				n = (size_t)(len - at);
			if (body_read(&o->ck, buf + have, n, at, &crc) < 0)
				goto bad;
			have += n;
			at += n;
		}
		if (have - pos < 8 || (rl = (size_t)get(buf + pos, 4)) < 8 ||
		    rl > CKPT_REC_MAX || rl > have - pos || rec_decode(buf + pos, rl, &msg) < 0)
			goto bad;
		if (store_mbox_put(&o->m, &msg) < 0) {
			free(msg.fs);
			goto bad;
		}
		pos += rl;
	}
	if (pos != have || at != len)
		goto bad;
	/* the tables: only their CRC matters here */
	while (at < body) {
		size_t n = body - at < CKPT_LOAD_BUF ? (size_t)(body - at) : CKPT_LOAD_BUF;

		if (body_read(&o->ck, buf, n, at, &crc) < 0)
			goto bad;
		at += n;
	}
	if (crc != o->ck.body_crc)
		goto bad;
	free(buf);
	if (ckpt_catch_up(o, logged, full_apply_cb, &o->m) < 0)
		goto unfit;
	CKPT_COUNT(0);
	return 0;
bad:
	free(buf);
	store_mbox_free(&o->m);
unfit:
	o->ck_end = o->ck_size = 0;   /* the next keep replaces it */
	return 1;
}

/* ---- base names in another folder (change capture of a move) ---------- */

int
store_ckpt_bases_cb(const struct store_rec *rec, void *arg)
{
	struct store_ckpt_bases *f = arg;
	size_t len;

	if ((rec->op != STORE_REC_SAVE && rec->op != STORE_REC_FLAGS) ||
	    !store_guid_valid(rec->guid))
		return 0;
	len = store_ckpt_base_len(rec->name);
	for (size_t i = 0; i < f->n; i++)
		if (store_ckpt_base_len(f->name[i]) == len &&
		    memcmp(rec->name, f->name[i], len) == 0)
			memcpy(f->guid[i], rec->guid, sizeof(f->guid[i]));
	return 0;
}

struct base_guid {
	const char *name;
	size_t len;
	char *guid;
};

static int
base_guid_cb(struct store_msg *msg, void *arg)
{
	struct base_guid *w = arg;

	if (msg->kind != STORE_MSG_PRESENT || store_ckpt_base_len(msg->name) != w->len ||
	    memcmp(msg->name, w->name, w->len) != 0 || !store_guid_valid(msg->guid))
		return 0;
	memcpy(w->guid, msg->guid, STORE_GUID_HEX + 1);
	return 1;
}

int
store_ckpt_read_bases(int box_fd, uid_t uid, struct store_ckpt_bases *f)
{
	struct store_idx_reader r;
	struct store_index_state st;
	struct store_ckpt ck = { .fd = -1 };
	off_t good_end;
	int idx_fd, ret = 1;

	idx_fd = store_idx_open(box_fd, O_RDONLY);
	if (idx_fd < 0)
		return 1;
	if (store_ckpt_open(&ck, box_fd, idx_fd, uid) < 0)
		goto out;
	for (size_t i = 0; i < f->n; i++) {
		struct base_guid w = { f->name[i], store_ckpt_base_len(f->name[i]), f->guid[i] };

		f->guid[i][0] = '\0';
		if (ckpt_each_key(&ck, 1, ckpt_key(w.name, w.len), base_guid_cb, &w) < 0)
			goto out;
	}
	/* the log since: a later record naming a base wins, as in a replay */
	if (store_idx_reader_init(&r, idx_fd) < 0)
		goto out;
	if (store_idx_scan_from(&r, ck.end, &ck.st, store_ckpt_bases_cb, f, &st,
				&good_end) == 0)
		ret = 0;
	store_idx_reader_release(&r);
	for (size_t i = 0; i < f->n && ret == 0; i++)
		if (f->guid[i][0] == '\0')
			ret = 1;   /* not found: the whole log decides */
	if (ret == 0)
		CKPT_COUNT(2);
out:
	store_ckpt_close(&ck);
	close(idx_fd);
	return ret;
}
