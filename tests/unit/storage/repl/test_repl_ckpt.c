/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/storage/repl/test_repl_ckpt.c - checkpoints of a mailbox's
 * state (storage/repl/ckpt.c): a capture of names in a mailbox that no
 * writer keeps in memory reads the entries it names and the index written
 * since the checkpoint, and records what a replay of the whole index would
 * give; a move's source folder is looked up in its checkpoint; a
 * checkpoint that is damaged, truncated, a symlink or another mailbox's is
 * not used (and is written anew).  The rest of the storage_repl
 * program runs every test a second time from checkpoints (test_repl.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "storage/repl/repl.h"
#include "storage/storage.h"
#include "tests/unit/storage/util.h"
#include "tests/unit/storage/repl/test_repl.h"

#define NMSG 30

struct recs {
	size_t n;
	struct store_rec r[8];
};

static int
rec_cb(const struct store_rec *rec, void *arg)
{
	struct recs *rs = arg;

	if (rs->n < 8)
		rs->r[rs->n++] = *rec;
	return 0;
}

static void
guid_of(unsigned i, char out[33])
{
	snprintf(out, 33, "0190f3a2b4c8d2a1e5f6a7b8c9d0%04x", i);
}

/* NMSG messages with \Seen (in cur/), their file names in names[]. */
static void
fill(struct fixture *f, char names[][256])
{
	char g[33];

	for (unsigned i = 0; i < NMSG; i++) {
		guid_of(i, g);
		snprintf(names[i], 256, "%s",
			 save(f, "INBOX", g, 10 + i, "a.example", 0, "\\Seen").filename);
	}
}

static const char *
ckpt_path(struct fixture *f)
{
	return tu_path("%s/%s", f->md, STORE_CKPT_FILE);
}

/* SYNC's state of INBOX replayed from the index alone (checkpoint moved
 * aside and back), against the state read now: equal. */
static void
same_as_replay(struct fixture *f, const struct store_mbox_state *now)
{
	char aside[PATH_MAX + 8];
	struct store_mbox_state st;

	snprintf(aside, sizeof(aside), "%s.aside", ckpt_path(f));
	store_repl_cache_clear();
	assert_int_equal(rename(ckpt_path(f), aside), 0);
	store_repl_ckpt_every(SIZE_MAX - 1);   /* none written by this sync */
	st = sync_box(f, "INBOX");
	assert_int_equal(access(ckpt_path(f), F_OK), -1);
	assert_int_equal(rename(aside, ckpt_path(f)), 0);
	assert_int_equal(st.messages, now->messages);
	assert_int_equal(st.uidnext, now->uidnext);
	assert_int_equal(st.highestmodseq, now->highestmodseq);
	assert_memory_equal(st.guidhash, now->guidhash, sizeof(st.guidhash));
	assert_memory_equal(st.flaghash, now->flaghash, sizeof(st.flaghash));
}

void
test_ckpt_capture_reads_named_entries_and_index_since(void **state)
{
	struct fixture *f = *state;
	char names[NMSG][256], g[NMSG + 1][33], from[300], to[300], gone[300];
	const char *nv[] = { from, to, gone };
	struct store_capture_names nm = { .v = nv, .n = 3 };
	struct store_repl_result res;
	struct store_mbox_state st;
	const char *what = NULL;
	struct stat s1, s2;
	struct recs rs = { 0 };

	store_repl_cache_limit(0, 0);
	store_repl_ckpt_every(0);
	fill(f, names);
	for (unsigned i = 0; i <= NMSG; i++)
		guid_of(i, g[i]);
	/* the checkpoint: the user's, 0600, beside the index */
	assert_int_equal(lstat(ckpt_path(f), &s1), 0);
	assert_true(S_ISREG(s1.st_mode));
	assert_int_equal(s1.st_mode & 07777, 0600);
	assert_int_equal(s1.st_uid, geteuid());
	/* then changes it does not hold: a STORE, an EXPUNGE, a SAVE */
	store_repl_ckpt_every(SIZE_MAX - 1);
	assert_int_equal(store(f, "INBOX", g[3], 100, "a.example", "+\\Flagged").status,
			 STORE_R_OK);
	assert_int_equal(expunge(f, "INBOX", g[4], 101).status, STORE_R_OK);
	assert_int_equal(save(f, "INBOX", g[NMSG], 102, "a.example", 0, "").status,
			 STORE_R_OK);
	assert_int_equal(lstat(ckpt_path(f), &s2), 0);
	assert_int_equal(s2.st_ino, s1.st_ino);   /* not written again */
	/* an IMAP server answers message 3 (its file got F from the STORE)
	 * and expunges message 5 */
	*strchr(names[3], ':') = '\0';
	snprintf(from, sizeof(from), "%s:2,FS", names[3]);
	snprintf(to, sizeof(to), "%s:2,FRS", names[3]);
	snprintf(gone, sizeof(gone), "%s", names[5]);
	assert_int_equal(rename(tu_path("%s/cur/%s", f->md, from),
				tu_path("%s/cur/%s", f->md, to)), 0);
	assert_int_equal(unlink(tu_path("%s/cur/%s", f->md, gone)), 0);
#ifdef STOWD_TEST_HOOKS
	memset(store_repl_test_ckpt_loads, 0, sizeof(store_repl_test_ckpt_loads));
#endif
	assert_int_equal(store_repl_capture(&f->c, "INBOX", &nm, rec_cb, &rs, &res, &what), 0);
	assert_int_equal(res.status, STORE_R_OK);
#ifdef STOWD_TEST_HOOKS
	assert_int_equal(store_repl_test_ckpt_loads[1], 1);   /* partial */
	assert_int_equal(store_repl_test_ckpt_loads[0], 0);   /* not whole */
#endif
	assert_int_equal(rs.n, 2);
	assert_int_equal(rs.r[0].op, STORE_REC_FLAGS);
	assert_string_equal(rs.r[0].guid, g[3]);
	assert_string_equal(rs.r[0].flags, "+\\Answered");
	assert_int_equal(rs.r[0].modseq, 103);   /* after the index's H */
	assert_string_equal(rs.r[0].name, to);
	assert_int_equal(rs.r[1].op, STORE_REC_EXPUNGE);
	assert_string_equal(rs.r[1].guid, g[5]);
	/* the state after: as a replay of the whole index says */
	st = sync_box(f, "INBOX");
#ifdef STOWD_TEST_HOOKS
	assert_int_equal(store_repl_test_ckpt_loads[0], 1);   /* whole, from it */
#endif
	assert_int_equal(st.messages, NMSG - 1);
	same_as_replay(f, &st);
	/* nothing left to capture, by names or in the whole mailbox */
	rs.n = 0;
	assert_int_equal(store_repl_capture(&f->c, "INBOX", &nm, rec_cb, &rs, &res, &what), 0);
	assert_int_equal(store_repl_capture(&f->c, "INBOX", NULL, rec_cb, &rs, &res, &what), 0);
	assert_int_equal(rs.n, 0);
}

/* Overwrite the checkpoint with data[0..len). */
static void
ckpt_put(struct fixture *f, const char *data, size_t len)
{
	unlink(ckpt_path(f));
	assert_int_equal(tu_write_file(ckpt_path(f), data, len), 0);
	assert_int_equal(chmod(ckpt_path(f), 0600), 0);
}

/* A cold SYNC with the checkpoint as it is now: the right state, the
 * checkpoint not used, and a good one written in its place (the next
 * cold SYNC loads it). */
static void
not_used(struct fixture *f, const struct store_mbox_state *want)
{
	struct store_mbox_state st;

	store_repl_cache_clear();
#ifdef STOWD_TEST_HOOKS
	memset(store_repl_test_ckpt_loads, 0, sizeof(store_repl_test_ckpt_loads));
#endif
	st = sync_box(f, "INBOX");
	assert_int_equal(st.messages, want->messages);
	assert_memory_equal(st.guidhash, want->guidhash, sizeof(st.guidhash));
	assert_memory_equal(st.flaghash, want->flaghash, sizeof(st.flaghash));
	store_repl_cache_clear();
	st = sync_box(f, "INBOX");
	assert_memory_equal(st.flaghash, want->flaghash, sizeof(st.flaghash));
#ifdef STOWD_TEST_HOOKS
	assert_int_equal(store_repl_test_ckpt_loads[0], 1);
#endif
}

void
test_ckpt_damaged_foreign_or_symlinked_is_not_used(void **state)
{
	struct fixture *f = *state;
	char names[NMSG][256], *good, *other;
	struct store_repl_result r;
	struct store_mbox_state want;
	struct stat sl;
	ssize_t len, olen;

	store_repl_cache_limit(0, 0);
	store_repl_ckpt_every(0);
	fill(f, names);
	want = sync_box(f, "INBOX");
	len = tu_read_file(ckpt_path(f), &good);
	assert_true(len > 1024);
	/* a byte of a record flipped (CRC), then the file cut short */
	good[len / 2] ^= 0x40;
	ckpt_put(f, good, (size_t)len);
	not_used(f, &want);
	good[len / 2] ^= 0x40;
	ckpt_put(f, good, (size_t)len - 12);
	not_used(f, &want);
	/* the header changed (its CRC) */
	good[40] ^= 1;
	ckpt_put(f, good, (size_t)len);
	not_used(f, &want);
	good[40] ^= 1;
	/* a symlink to a good copy is not followed */
	assert_int_equal(tu_write_file(tu_path("%s/../good", f->md), good, (size_t)len), 0);
	unlink(ckpt_path(f));
	assert_int_equal(symlink(tu_path("%s/../good", f->md), ckpt_path(f)), 0);
	not_used(f, &want);
	assert_int_equal(lstat(ckpt_path(f), &sl), 0);
	assert_true(S_ISREG(sl.st_mode));   /* written in the link's place */
	/* another mailbox's checkpoint: not this index */
	assert_int_equal(store_repl_create(&f->c, "Other", &r, NULL), 0);
	assert_int_equal(save(f, "Other", G1, 5, "a.example", 0, "").status, STORE_R_OK);
	olen = tu_read_file(tu_path("%s/.Other/%s", f->md, STORE_CKPT_FILE), &other);
	assert_true(olen > 0);
	ckpt_put(f, other, (size_t)olen);
	not_used(f, &want);
	free(good);
	free(other);
}

/* A move from Archive into INBOX of a file without a GUID in its name:
 * the GUID Archive holds for the base name comes from Archive's
 * checkpoint (not a read of its whole index). */
void
test_ckpt_move_source_from_checkpoint(void **state)
{
	static const char *const name[1] = { "1700000001.M2P2.h:2,S" };
	static const char *const from[1] = { "Archive" };
	struct store_capture_names nm = { .v = name, .from = from, .n = 1 };
	struct fixture *f = *state;
	struct store_repl_result res;
	const char *what = NULL;
	struct recs rs = { 0 };
	char x[33];

	store_repl_cache_limit(0, 0);
	store_repl_ckpt_every(0);
	assert_int_equal(store_repl_create(&f->c, "INBOX", &res, NULL), 0);
	assert_int_equal(store_repl_create(&f->c, "Archive", &res, NULL), 0);
	assert_int_equal(tu_write_file(tu_path("%s/.Archive/cur/%s", f->md, name[0]), "abc", 3), 0);
	assert_int_equal(store_repl_capture(&f->c, "Archive", NULL, rec_cb, &rs, &res, &what), 0);
	assert_int_equal(rs.n, 1);
	memcpy(x, rs.r[0].guid, sizeof(x));
	assert_int_equal(access(tu_path("%s/.Archive/%s", f->md, STORE_CKPT_FILE), F_OK), 0);
	/* the IMAP server's move: a link in INBOX, the source removed */
	assert_int_equal(link(tu_path("%s/.Archive/cur/%s", f->md, name[0]),
			      tu_path("%s/cur/%s", f->md, name[0])), 0);
	assert_int_equal(unlink(tu_path("%s/.Archive/cur/%s", f->md, name[0])), 0);
#ifdef STOWD_TEST_HOOKS
	memset(store_repl_test_ckpt_loads, 0, sizeof(store_repl_test_ckpt_loads));
#endif
	rs.n = 0;
	assert_int_equal(store_repl_capture(&f->c, "INBOX", &nm, rec_cb, &rs, &res, &what), 0);
	assert_int_equal(rs.n, 1);
	assert_int_equal(rs.r[0].op, STORE_REC_SAVE);
	assert_string_equal(rs.r[0].guid, x);
#ifdef STOWD_TEST_HOOKS
	assert_int_equal(store_repl_test_ckpt_loads[2], 1);
#endif
}
