/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/storage/repl/test_repl_capture.c - change capture limited to
 * the file names of the change events (store_repl_capture with names,
 * doc/replication-protocol.md §7.6): each case makes the same change in
 * the fixture's Maildir and in an identical copy, captures the names in
 * the first and the whole mailbox in the copy, and wants the same records
 * and the same mailbox state; stowd's own writes give no record; too many
 * names, a name that is not valid or an ambiguous base name fall back to
 * the whole mailbox.  Part of the storage_repl program (main in
 * test_repl.c).
 */
#include <errno.h>
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

#define HAND "1700000000.M1P1Q1G" G3 ".h,S=3"   /* a file with a GUID */
#define PLAIN "1700000001.M2P2.h"                /* Dovecot's, none */

struct recs {
	size_t n;
	struct store_rec r[80];
};

static int
rec_cb(const struct store_rec *rec, void *arg)
{
	struct recs *rs = arg;

	if (rs->n < 80)
		rs->r[rs->n++] = *rec;
	return 0;
}

/* The fixture's Maildir and its copy (filled by copy_maildir). */
struct pair {
	struct fixture *f;
	struct store_repl_ctx copy;
	char md[2][PATH_MAX];
};

static void
copy_maildir(struct fixture *f, struct pair *p)
{
	char cmd[3 * PATH_MAX];

	p->f = f;
	p->copy = f->c;
	p->copy.mail_rel = "Copy";
	snprintf(p->md[0], sizeof(p->md[0]), "%s", f->md);
	snprintf(p->md[1], sizeof(p->md[1]), "%.4000s/Copy", f->t.base);
	snprintf(cmd, sizeof(cmd), "cp -a '%s' '%s'", p->md[0], p->md[1]);
	assert_int_equal(system(cmd), 0);
}

static struct recs
capture(const struct store_repl_ctx *c, const char *const *names, size_t n)
{
	struct store_capture_names nm = { .v = names, .n = n };
	struct store_repl_result res;
	const char *what = NULL;
	struct recs rs;

	memset(&rs, 0, sizeof(rs));
	assert_int_equal(store_repl_capture(c, "INBOX", names != NULL ? &nm : NULL,
					    rec_cb, &rs, &res, &what), 0);
	assert_int_equal(res.status, STORE_R_OK);
	return rs;
}

/* Capture names in the Maildir and the whole copy: the same records
 * (a new GUID of a name without one aside), the same state after; the
 * number of records is returned. */
static size_t
same_as_whole(struct pair *p, const char *const *names, size_t n)
{
	struct recs a = capture(&p->f->c, names, n), b = capture(&p->copy, NULL, 0);
	struct store_mbox_state sa, sb;
	struct store_repl_result res;
	const char *what;
	bool fresh = false;

	assert_int_equal(a.n, b.n);
	/* nothing left that the names should have found */
	assert_int_equal(capture(&p->f->c, NULL, 0).n, 0);
	for (size_t i = 0; i < a.n; i++) {
		const struct store_rec *x = &a.r[i], *y = NULL;

		/* the same record, in the order of the files found */
		for (size_t j = 0; j < b.n && y == NULL; j++)
			if (b.r[j].op == x->op && strcmp(b.r[j].name, x->name) == 0 &&
			    (x->op == STORE_REC_SAVE || strcmp(b.r[j].guid, x->guid) == 0))
				y = &b.r[j];
		assert_non_null(y);
		assert_int_equal(x->modseq, y->modseq);
		assert_string_equal(x->origin, y->origin);
		assert_string_equal(x->flags, y->flags);
		assert_int_equal(x->uid, y->uid);
		/* the GUID of the name, or a fresh one on both sides */
		if (x->op == STORE_REC_SAVE)
			assert_int_equal(strcmp(x->guid, G3) == 0, strcmp(y->guid, G3) == 0);
		fresh |= x->op == STORE_REC_SAVE && strcmp(x->guid, G3) != 0;
	}
	assert_int_equal(store_repl_sync(&p->f->c, "INBOX", &sa, &res, &what), 0);
	assert_int_equal(store_repl_sync(&p->copy, "INBOX", &sb, &res, &what), 0);
	assert_int_equal(sa.messages, sb.messages);
	assert_int_equal(sa.highestmodseq, sb.highestmodseq);
	assert_int_equal(sa.uidnext, sb.uidnext);
	if (!fresh)   /* a fresh GUID is a random one */
		assert_memory_equal(sa.flaghash, sb.flaghash, sizeof(sa.flaghash));
	return a.n;
}

/* Rename (to NULL: unlink) the file base in both Maildirs; from and to
 * are "new/" or "cur/" followed by what comes after the base name. */
static void
in_both(struct pair *p, const char *from, const char *to, const char *base)
{
	for (int k = 0; k < 2; k++) {
		char f[2 * PATH_MAX], t[2 * PATH_MAX];

		snprintf(f, sizeof(f), "%s/%.4s%s%s", p->md[k], from, base, from + 4);
		if (to == NULL) {
			assert_int_equal(unlink(f), 0);
			continue;
		}
		snprintf(t, sizeof(t), "%s/%.4s%s%s", p->md[k], to, base, to + 4);
		assert_int_equal(rename(f, t), 0);
	}
}

static void
write_both(struct pair *p, const char *rel)
{
	for (int k = 0; k < 2; k++)
		assert_int_equal(tu_write_file(tu_path("%s/%s", p->md[k], rel), "abc", 3), 0);
}

/* Messages saved by stowd: G1 in new/ (no flags), G2 in cur/ (\Seen). */
static void
two_saved(struct fixture *f, char n1[256], char n2[256])
{
	struct store_repl_result r;

	r = save(f, "INBOX", G1, 5, "a.example", 0, "");
	snprintf(n1, 256, "%s", r.filename);
	r = save(f, "INBOX", G2, 6, "a.example", 0, "\\Seen");
	snprintf(n2, 256, "%s", r.filename);
	*strchr(n2, ':') = '\0';
}

void
test_capture_names_new_file(void **state)
{
	struct pair p;
	char n1[256], n2[256];
	const char *names[] = { HAND, PLAIN ":2,S" };

	two_saved(*state, n1, n2);
	copy_maildir(*state, &p);
	write_both(&p, "new/" HAND);
	write_both(&p, "cur/" PLAIN ":2,S");
	assert_int_equal(same_as_whole(&p, names, 2), 2);
	/* captured: the names again find nothing */
	assert_int_equal(capture(&p.f->c, names, 2).n, 0);
}

void
test_capture_names_removed_file(void **state)
{
	struct fixture *f = *state;
	struct pair p;
	char n1[256], n2[256], full[300];
	const char *names[] = { full };
	struct recs rs;

	two_saved(f, n1, n2);
	copy_maildir(f, &p);
	snprintf(full, sizeof(full), "%s:2,S", n2);
	in_both(&p, "cur/:2,S", NULL, n2);
	assert_int_equal(same_as_whole(&p, names, 1), 1);
	rs = capture(&f->c, NULL, 0);
	assert_int_equal(rs.n, 0);
	/* replication_vanished = repair: lost, as the whole mailbox says */
	f->c.vanished_repair = p.copy.vanished_repair = true;
	in_both(&p, "new/", NULL, n1);
	names[0] = n1;
	assert_int_equal(same_as_whole(&p, names, 1), 1);
}

void
test_capture_names_new_to_cur_with_letters(void **state)
{
	struct pair p;
	char n1[256], n2[256], to[300];
	const char *names[] = { n1, to };

	two_saved(*state, n1, n2);
	copy_maildir(*state, &p);
	snprintf(to, sizeof(to), "%s:2,FS", n1);
	in_both(&p, "new/", "cur/:2,FS", n1);
	assert_int_equal(same_as_whole(&p, names, 2), 1);
	/* only the new name known (the old one's event missed): the same */
	in_both(&p, "cur/:2,FS", "cur/:2,", n1);
	snprintf(to, sizeof(to), "%s:2,", n1);
	assert_int_equal(same_as_whole(&p, names + 1, 1), 1);
}

void
test_capture_names_letter_change(void **state)
{
	struct pair p;
	char n1[256], n2[256], from[300], to[300];
	const char *names[] = { from, to };
	struct recs rs;

	two_saved(*state, n1, n2);
	copy_maildir(*state, &p);
	snprintf(from, sizeof(from), "%s:2,S", n2);
	snprintf(to, sizeof(to), "%s:2,RS", n2);
	in_both(&p, "cur/:2,S", "cur/:2,RS", n2);
	assert_int_equal(same_as_whole(&p, names, 2), 1);
	rs = capture(&p.f->c, NULL, 0);
	assert_int_equal(rs.n, 0);
	/* only the old name known (renamed again since): found by a search
	 * of the directories, not taken for gone */
	in_both(&p, "cur/:2,RS", "cur/:2,DRS", n2);
	snprintf(from, sizeof(from), "%s:2,RS", n2);
	assert_int_equal(same_as_whole(&p, names, 1), 1);
}

/* stowd's own SAVE, STORE (a rename) and EXPUNGE (an unlink) are in the
 * index when their events come: the names give no record. */
void
test_capture_names_own_writes_give_nothing(void **state)
{
	struct fixture *f = *state;
	struct store_repl_result r;
	char n1[256], n2[256], old[300], now[300];
	const char *names[] = { old, now };

	two_saved(f, n1, n2);
	r = save(f, "INBOX", G3, 7, "a.example", 0, "");
	names[0] = r.filename;
	assert_int_equal(capture(&f->c, names, 1).n, 0);
	snprintf(old, sizeof(old), "%s:2,S", n2);
	snprintf(now, sizeof(now), "%s:2,FS", n2);
	assert_true(store(f, "INBOX", G2, 8, "a.example", "+\\Flagged").effective);
	assert_int_equal(access(tu_path("%s/cur/%s", f->md, now), F_OK), 0);
	names[0] = old;
	assert_int_equal(capture(&f->c, names, 2).n, 0);
	assert_true(expunge(f, "INBOX", G2, 9).effective);
	assert_int_equal(capture(&f->c, names, 2).n, 0);
	names[0] = n1;
	assert_true(expunge(f, "INBOX", G1, 10).effective);
	assert_int_equal(capture(&f->c, names, 1).n, 0);
	assert_int_equal(capture(&f->c, NULL, 0).n, 0);
}

/* Everything at once: a new file (its GUID tombstoned: a fresh one), a
 * removal, a move with letters, a letter change, names of nothing. */
void
test_capture_names_mix(void **state)
{
	struct fixture *f = *state;
	struct store_repl_result r;
	struct pair p;
	char n1[256], n2[256], n3[256], a[300], b[300], c[300];
	const char *names[] = { HAND, n1, a, b, c, n3, "gone.1.h", "x:2,S" };

	two_saved(f, n1, n2);
	r = save(f, "INBOX", G3 , 7, "a.example", 0, "\\Flagged");
	snprintf(n3, sizeof(n3), "%s", r.filename);
	*strchr(n3, ':') = '\0';
	copy_maildir(f, &p);
	in_both(&p, "new/", "cur/:2,S", n1);
	snprintf(a, sizeof(a), "%s:2,S", n1);
	in_both(&p, "cur/:2,S", "cur/:2,ST", n2);
	snprintf(b, sizeof(b), "%s:2,S", n2);
	snprintf(c, sizeof(c), "%s:2,ST", n2);
	in_both(&p, "cur/:2,F", NULL, n3);
	write_both(&p, "new/" HAND);
	assert_int_equal(same_as_whole(&p, names, 8), 4);
}

/* A change not named is not looked at; too many names, a name that is
 * not valid, two files with one base name: the whole mailbox, unnamed
 * changes included. */
void
test_capture_names_fallback_to_whole_mailbox(void **state)
{
	struct fixture *f = *state;
	struct pair p;
	char n1[256], n2[256], many[65][32];
	const char *names[65];

	two_saved(f, n1, n2);
	/* a change not named is left to the capture of its name */
	assert_int_equal(tu_write_file(tu_path("%s/new/" PLAIN, f->md), "abc", 3), 0);
	names[0] = "nothing.here";
	assert_int_equal(capture(&f->c, names, 1).n, 0);
	assert_int_equal(capture(&f->c, NULL, 0).n, 1);
	copy_maildir(f, &p);
	for (int i = 0; i < 65; i++) {
		snprintf(many[i], sizeof(many[i]), "x%d:2,", i);
		names[i] = many[i];
	}
	in_both(&p, "new/", "cur/:2,S", n1);    /* not named */
	assert_int_equal(same_as_whole(&p, names, 65), 1);
	in_both(&p, "cur/:2,S", "cur/:2,FS", n1);
	names[0] = "../x";
	assert_int_equal(same_as_whole(&p, names, 1), 1);
	in_both(&p, "cur/:2,FS", "cur/:2,DFS", n1);
	names[0] = ".hidden";
	assert_int_equal(same_as_whole(&p, names, 1), 1);
	/* a second file with n2's base name: which one a reconciliation
	 * follows depends on readdir (new/ first); the whole mailbox decides */
	for (int k = 0; k < 2; k++)
		assert_int_equal(link(tu_path("%s/cur/%s:2,S", p.md[k], n2),
				      tu_path("%s/new/%s", p.md[k], n2)), 0);
	names[0] = n2;
	assert_int_equal(same_as_whole(&p, names, 1), 1);
}

/* A capture of box with names (and their sources, may be NULL). */
static struct recs
capture_in(struct fixture *f, const char *box, const char *const *names,
	   const char *const *from, size_t n)
{
	struct store_capture_names nm = { .v = names, .from = from, .n = n };
	struct store_repl_result res;
	const char *what = NULL;
	struct recs rs;

	memset(&rs, 0, sizeof(rs));
	assert_int_equal(store_repl_capture(&f->c, box, names != NULL ? &nm : NULL,
					    rec_cb, &rs, &res, &what), 0);
	assert_int_equal(res.status, STORE_R_OK);
	return rs;
}

/* The IMAP server moves cur/NAME from folder dir a to folder dir b (""
 * for INBOX): a hard link there, then the source removed. */
static void
imap_move(struct fixture *f, const char *a, const char *b, const char *name)
{
	assert_int_equal(link(tu_path("%s/%s/cur/%s", f->md, a, name),
			      tu_path("%s/%s/cur/%s", f->md, b, name)), 0);
	assert_int_equal(unlink(tu_path("%s/%s/cur/%s", f->md, a, name)), 0);
}

/*
 * A file without a GUID in its name (one the IMAP server made) moved
 * from Archive into INBOX: the capture that names its source takes the
 * GUID Archive's index holds for its base name (present or, once the
 * source was captured, tombstoned); moved back, Archive holds that GUID's
 * tombstone, so it gets a fresh one (§7.4).  Without a source, a fresh
 * GUID too, unless the file has a second link (a copy): then the user's
 * other folders are looked through.
 */
void
test_capture_names_move_keeps_guid_of_plain_file(void **state)
{
	static const char *const inbox[1] = { "INBOX" }, *const archive[1] = { "Archive" };
	static const char *const n1[1] = { PLAIN ":2,S" }, *const n2[1] = { PLAIN "9:2," };
	static const char *const n3[1] = { PLAIN "7:2,F" };
	struct fixture *f = *state;
	struct store_repl_result r;
	struct recs rs;
	char x[33];

	assert_int_equal(store_repl_create(&f->c, "INBOX", &r, NULL), 0);
	assert_int_equal(store_repl_create(&f->c, "Archive", &r, NULL), 0);
	assert_int_equal(tu_write_file(tu_path("%s/.Archive/cur/%s", f->md, n1[0]), "abc", 3), 0);
	assert_int_equal(tu_write_file(tu_path("%s/.Archive/cur/%s", f->md, n2[0]), "def", 3), 0);
	rs = capture_in(f, "Archive", NULL, NULL, 0);
	assert_int_equal(rs.n, 2);
	for (size_t i = 0; i < rs.n; i++)
		if (strcmp(rs.r[i].name, n1[0]) == 0)
			memcpy(x, rs.r[i].guid, sizeof(x));
	/* into INBOX, captured before the source: Archive still holds x */
	imap_move(f, ".Archive", "", n1[0]);
	rs = capture_in(f, "INBOX", n1, archive, 1);
	assert_int_equal(rs.n, 1);
	assert_int_equal(rs.r[0].op, STORE_REC_SAVE);
	assert_string_equal(rs.r[0].guid, x);
	rs = capture_in(f, "Archive", n1, NULL, 1);
	assert_int_equal(rs.n, 1);
	assert_int_equal(rs.r[0].op, STORE_REC_EXPUNGE);
	assert_string_equal(rs.r[0].guid, x);
	/* back to Archive, which holds x's tombstone: a fresh GUID */
	imap_move(f, "", ".Archive", n1[0]);
	rs = capture_in(f, "INBOX", n1, NULL, 1);
	assert_int_equal(rs.n, 1);
	assert_int_equal(rs.r[0].op, STORE_REC_EXPUNGE);
	assert_string_equal(rs.r[0].guid, x);
	rs = capture_in(f, "Archive", n1, inbox, 1);
	assert_int_equal(rs.n, 1);
	assert_int_equal(rs.r[0].op, STORE_REC_SAVE);
	assert_string_not_equal(rs.r[0].guid, x);
	/* a move whose source the capture does not know: a fresh GUID */
	imap_move(f, ".Archive", "", n2[0]);
	rs = capture_in(f, "INBOX", n2, NULL, 1);
	assert_int_equal(rs.n, 1);
	assert_int_equal(rs.r[0].op, STORE_REC_SAVE);
	memcpy(x, rs.r[0].guid, sizeof(x));
	rs = capture_in(f, "Archive", n2, NULL, 1);
	assert_int_equal(rs.n, 1);
	assert_int_equal(rs.r[0].op, STORE_REC_EXPUNGE);
	assert_string_not_equal(rs.r[0].guid, x);
	/* a copy (a second link, the source kept): found by its base name in
	 * the user's other folders */
	assert_int_equal(tu_write_file(tu_path("%s/.Archive/cur/%s", f->md, n3[0]), "ghi", 3), 0);
	rs = capture_in(f, "Archive", n3, NULL, 1);
	assert_int_equal(rs.n, 1);
	memcpy(x, rs.r[0].guid, sizeof(x));
	assert_int_equal(link(tu_path("%s/.Archive/cur/%s", f->md, n3[0]),
			      tu_path("%s/cur/%s", f->md, n3[0])), 0);
	rs = capture_in(f, "INBOX", n3, NULL, 1);
	assert_int_equal(rs.n, 1);
	assert_int_equal(rs.r[0].op, STORE_REC_SAVE);
	assert_string_equal(rs.r[0].guid, x);
	assert_int_equal(capture_in(f, "Archive", n3, NULL, 1).n, 0);
	/* two moved in one capture: one read of the source's index gives both */
	{
		static const char *const two[2] = { PLAIN "5:2,", PLAIN "6:2,S" };
		static const char *const from2[2] = { "Archive", "Archive" };
		char y[2][33];

		for (int k = 0; k < 2; k++)
			assert_int_equal(tu_write_file(tu_path("%s/.Archive/cur/%s", f->md,
							       two[k]), "jkl", 3), 0);
		rs = capture_in(f, "Archive", two, NULL, 2);
		assert_int_equal(rs.n, 2);
		for (size_t i = 0; i < 2; i++)
			memcpy(y[strcmp(rs.r[i].name, two[0]) == 0 ? 0 : 1], rs.r[i].guid, 33);
		imap_move(f, ".Archive", "", two[0]);
		imap_move(f, ".Archive", "", two[1]);
		rs = capture_in(f, "INBOX", two, from2, 2);
		assert_int_equal(rs.n, 2);
		for (size_t i = 0; i < 2; i++) {
			assert_int_equal(rs.r[i].op, STORE_REC_SAVE);
			assert_string_equal(rs.r[i].guid,
					    y[strcmp(rs.r[i].name, two[0]) == 0 ? 0 : 1]);
		}
	}
}

/*
 * A name whose file was unlinked (its event an IN_DELETE) is gone without
 * a search of new/ and cur/: shown by a file of the same base name that
 * the capture was not told of (a search would find it and follow it as a
 * rename).  Without the mark the search runs and finds it.
 */
void
test_capture_names_unlinked_file_is_not_searched_for(void **state)
{
	struct fixture *f = *state;
	char n1[256], n2[256], full[300];
	const char *names[1] = { full };
	const bool gone[1] = { true };
	struct store_capture_names nm = { .v = names, .unlinked = gone, .n = 1 };
	struct store_repl_result res;
	const char *what = NULL;
	struct recs rs;

	two_saved(f, n1, n2);
	snprintf(full, sizeof(full), "%s:2,S", n2);
	/* unlinked, and a file of its base name that no event named */
	assert_int_equal(rename(tu_path("%s/cur/%s", f->md, full),
				tu_path("%s/cur/%s:2,ST", f->md, n2)), 0);
	memset(&rs, 0, sizeof(rs));
	assert_int_equal(store_repl_capture(&f->c, "INBOX", &nm, rec_cb, &rs, &res, &what), 0);
	assert_int_equal(rs.n, 1);
	assert_int_equal(rs.r[0].op, STORE_REC_EXPUNGE);
	assert_string_equal(rs.r[0].guid, G2);
	/* the same without the mark: G1's file, renamed unseen, is found */
	snprintf(full, sizeof(full), "%s", n1);
	assert_int_equal(rename(tu_path("%s/new/%s", f->md, n1),
				tu_path("%s/cur/%s:2,F", f->md, n1)), 0);
	nm.unlinked = NULL;
	memset(&rs, 0, sizeof(rs));
	assert_int_equal(store_repl_capture(&f->c, "INBOX", &nm, rec_cb, &rs, &res, &what), 0);
	assert_int_equal(rs.n, 1);
	assert_int_equal(rs.r[0].op, STORE_REC_FLAGS);
	assert_string_equal(rs.r[0].guid, G1);
}
