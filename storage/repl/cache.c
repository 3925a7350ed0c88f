/* SPDX-License-Identifier: MIT */
/*
 * storage/repl/cache.c - replayed mailbox states kept between replication
 * operations of one writer process, so that an operation on a mailbox
 * replays only the index transactions appended since the last one instead
 * of the whole index (a replica SAVE into a mailbox of n messages was
 * O(n); it is O(new transactions) now).
 *
 * Runs in:  a writer (a seteuid worker serves many users in turn, a
 *           fork-mode child one), with the user's credentials, under the
 *           index lock.
 * Trust:    an entry is used only for the same uid and the same index file
 *           (st_dev, st_ino), when the file still holds, before the offset
 *           the entry was replayed to, the last ROP_TAIL bytes it held then
 *           (the last transactions, GUIDs and CRCs included), and when the
 *           state after replaying the new transactions equals the state
 *           logged in the last one; anything else replays the whole file.
 *           An entry is kept only after an operation that succeeded with
 *           every applied record committed, so it never holds a change the
 *           file does not.  The memory is bounded (ROP_CACHE_BYTES and
 *           ROP_CACHE_N mailboxes, or what store_repl_cache_limit set).
 * Syscalls: fstat (once per load), pread64 (the index), as storage/index.c.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/repl/repl_int.h"

#define ROP_CACHE_N 128                      /* mailboxes kept, at most: a
						* seteuid worker serves every
						* user in turn */
#define ROP_CACHE_BYTES (16u * 1024u * 1024u) /* default budget of their state */
#define ROP_TAIL 512                         /* bytes before end, compared: the
						* last frames, with their GUIDs
						* and CRCs */

struct rop_cached {
	bool used;
	uid_t uid;
	dev_t dev;
	ino_t ino;
	off_t end;                   /* replayed up to here */
	size_t ntail;                /* bytes of tail: min(end, ROP_TAIL) */
	unsigned char tail[ROP_TAIL];
	uint64_t last_use;
	size_t bytes;
	off_t ck_end, ck_size;       /* the checkpoint known then */
	struct store_mbox m;
};

static struct rop_cached rop_cache[ROP_CACHE_N];
#ifdef STOWD_TEST_HOOKS
unsigned long store_repl_test_cache_scanned;
#endif
static uint64_t rop_clock;
static size_t rop_budget = ROP_CACHE_BYTES;
static size_t rop_nmax = ROP_CACHE_N;        /* entries in use (a fork-mode
						* child, one user, needs few:
						* every entry scanned is a
						* page it touches) */
static size_t rop_hi;                        /* entries [0, rop_hi) may be
						* used: what a clear or a
						* look-up scans (a
						* fresh process scans none; on
						* this VM even reading an
						* untouched page of the array
						* gives the process a page of
						* its own) */

static size_t
mbox_bytes(const struct store_mbox *m)
{
	size_t b = m->cap * sizeof(*m->msgs) + m->nslots * sizeof(*m->slots);

	for (size_t i = 0; i < m->nmsgs; i++)
		b += m->msgs[i].nfs * sizeof(*m->msgs[i].fs);
	return b;
}

static void
entry_drop(struct rop_cached *e)
{
	store_mbox_free(&e->m);
	memset(e, 0, sizeof(*e));
}

static size_t
cache_bytes(void)
{
	size_t b = 0;

	for (size_t i = 0; i < rop_hi; i++)
		b += rop_cache[i].used ? rop_cache[i].bytes : 0;
	return b;
}

/* The n = min(end, ROP_TAIL) bytes before end into tail; n, or -1. */
static ssize_t
read_tail(int fd, off_t end, unsigned char tail[ROP_TAIL])
{
	size_t n = end < ROP_TAIL ? (size_t)end : ROP_TAIL;

	if (n == 0 || pread(fd, tail, n, end - (off_t)n) != (ssize_t)n)
		return -1;
	return (ssize_t)n;
}

static int
apply_cb(const struct store_rec *rec, void *arg)
{
	return store_mbox_apply(arg, rec);
}

/* The entry for o's index file (NULL: none). */
static struct rop_cached *
entry_find(const struct store_rop *o)
{
	for (size_t i = 0; i < rop_hi; i++) {
		struct rop_cached *e = &rop_cache[i];

		if (e->used && e->uid == o->c->uid && e->dev == o->idx_dev &&
		    e->ino == o->idx_ino)
			return e;
	}
	return NULL;
}

/* Replay [e->end, o->end) onto e's state; 0 if o->m now matches the file
 * (and owns the state), -1 if the entry does not fit (o->m untouched). */
static int
entry_catch_up(struct store_rop *o, struct rop_cached *e,
	       const struct store_index_state *logged)
{
	struct store_idx_reader r;
	struct store_index_state st;
	unsigned char tail[ROP_TAIL];
	uint32_t messages;
	off_t good_end;
	int ret = -1;

	if (e->end > o->end || e->m.st.uidvalidity != logged->uidvalidity ||
	    read_tail(o->idx_fd, e->end, tail) != (ssize_t)e->ntail ||
	    memcmp(tail, e->tail, e->ntail) != 0)
		return -1;
	if (store_idx_reader_init(&r, o->idx_fd) < 0)
		return -1;
	if (store_idx_scan_from(&r, e->end, &e->m.st, apply_cb, &e->m, &st,
				&good_end) == 0 &&
	    good_end == o->end && st.uidvalidity == logged->uidvalidity &&
	    st.uidnext == logged->uidnext &&
	    st.highestmodseq == logged->highestmodseq) {
		messages = e->m.st.messages;
		e->m.st = st;
		e->m.st.messages = messages;
		o->m = e->m;
		memset(&e->m, 0, sizeof(e->m));
		ret = 0;
	}
	store_idx_reader_release(&r);
	return ret;
}

/* The whole state: from the checkpoint and the log since, or the log. */
static int
load_whole(struct store_rop *o)
{
	if (o->ck.fd >= 0 && store_ckpt_load(o, &o->logged) == 0)
		return 0;
	return store_mbox_load(o->idx_fd, &o->m);
}

int
store_rop_load(struct store_rop *o, const struct store_index_state *logged)
{
	struct rop_cached *e;
	struct stat st;
	int ret;

	if (fstat(o->idx_fd, &st) < 0)
		return -1;
	o->idx_dev = st.st_dev;
	o->idx_ino = st.st_ino;
	o->logged = *logged;
	e = entry_find(o);
	if (e != NULL) {
		int ok = entry_catch_up(o, e, logged);

		o->ck_end = e->ck_end;
		o->ck_size = e->ck_size;
		entry_drop(e);   /* used (o owns the state now) or stale */
		if (ok == 0)
			return 0;
	}
	if (store_ckpt_open(&o->ck, o->d.box_fd, o->idx_fd, o->c->uid) == 0) {
		o->ck_end = o->ck.end;
		o->ck_size = o->ck.size;
	}
	/* a capture of names: the entries it names will do */
	if (o->want != NULL && o->want->n > 0 &&
	    store_ckpt_load_partial(o, logged, o->want->v, o->want->n) == 0)
		return 0;   /* o->ck stays open for more entries */
	ret = load_whole(o);
	store_ckpt_close(&o->ck);
	return ret;
}

int
store_rop_load_whole(struct store_rop *o)
{
	int ret;

	if (!o->m.partial)
		return 0;
	store_mbox_free(&o->m);
	ret = load_whole(o);
	store_ckpt_close(&o->ck);
	return ret;
}

void
store_rop_keep(struct store_rop *o)
{
	struct rop_cached *e = NULL;
	size_t bytes, i;
	ssize_t ntail;

	/* under the lock o->end is the end of the file: every transaction
	 * since the load went through store_idx_commit */
	if (o->idx_fd < 0 || o->npending != 0 || o->m.partial)
		return;
	if (store_ckpt_due(o))
		store_ckpt_write(o);
	bytes = mbox_bytes(&o->m);
	if (bytes > rop_budget)
		return;
	if ((e = entry_find(o)) != NULL)
		entry_drop(e);
	/* room: evict the least recently used until the state fits */
	for (;;) {
		struct rop_cached *lru = NULL;
		size_t n = 0;

		e = NULL;
		/* the used entries are below rop_hi; rop_hi itself may be
		 * the first free one */
		for (i = 0; i < rop_nmax && i <= rop_hi; i++) {
			if (!rop_cache[i].used) {
				if (e == NULL)   /* the first free: kept low */
					e = &rop_cache[i];
				continue;
			}
			n++;
			if (lru == NULL || rop_cache[i].last_use < lru->last_use)
				lru = &rop_cache[i];
		}
		if (lru == NULL || (n < rop_nmax && cache_bytes() + bytes <= rop_budget))
			break;
		entry_drop(lru);   /* the next pass finds it free */
	}
	if (e == NULL || (ntail = read_tail(o->idx_fd, o->end, e->tail)) < 0)
		return;
	if ((size_t)(e - rop_cache) + 1 > rop_hi)
		rop_hi = (size_t)(e - rop_cache) + 1;
	e->ntail = (size_t)ntail;
	e->used = true;
	e->uid = o->c->uid;
	e->dev = o->idx_dev;
	e->ino = o->idx_ino;
	e->end = o->end;
	e->last_use = ++rop_clock;
	e->bytes = bytes;
	e->ck_end = o->ck_end;
	e->ck_size = o->ck_size;
	e->m = o->m;
	memset(&o->m, 0, sizeof(o->m));
}

void
store_repl_cache_limit(size_t bytes, unsigned entries)
{
	store_repl_cache_clear();
	rop_budget = bytes;
	rop_nmax = entries < ROP_CACHE_N ? entries : ROP_CACHE_N;
}

void
store_repl_cache_clear(void)
{
#ifdef STOWD_TEST_HOOKS
	store_repl_test_cache_scanned += rop_hi;
#endif
	for (size_t i = 0; i < rop_hi; i++)
		if (rop_cache[i].used)
			entry_drop(&rop_cache[i]);
	rop_hi = 0;
}
