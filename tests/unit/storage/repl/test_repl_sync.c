/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/storage/repl/test_repl_sync.c - the replica side of the
 * replication protocol on a Maildir (storage/repl/repl.h), whole mailboxes:
 * reconciliation with hand-made changes, CREATE/DELETE/RENAME/LIST, FETCH,
 * index logs of version 1 and the origin of LMTP saves.  Part of the
 * storage_repl program (main in test_repl.c).
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
#include <sys/mman.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "storage/repl/repl.h"
#include "storage/storage.h"
#include "tests/unit/storage/util.h"
#include "tests/unit/storage/repl/test_repl.h"

/* ---- reconcile --------------------------------------------------------- */

void
test_reconcile_hand_added_deleted_damaged(void **state)
{
	struct fixture *f = *state;
	struct store_mbox_state st;
	struct store_repl_result r;
	const struct store_msg_info *mi;
	char name[256], hand[PATH_MAX + 128];
	struct seen g;
	bool changed;

	f->c.vanished_repair = true;   /* replication_vanished = repair */
	r = save(f, "INBOX", G1, 1, "a", 0, "");
	snprintf(hand, sizeof(hand), "%s/new/1.M1P1Q1G%s.h,S=3,W=3", f->md, G2);
	assert_int_equal(tu_write_file(hand, "abc", 3), 0);
	assert_int_equal(tu_write_file(tu_path("%s/cur/plain:2,S", f->md), "x", 1), 0);
	st = sync_box(f, "INBOX");
	assert_int_equal(st.messages, 3);
	g = guids(f, "INBOX");
	mi = seen_find(&g, G2);
	assert_non_null(mi);
	assert_true(mi->uid == 2 || mi->uid == 3);
	assert_string_equal(mi->stamp.origin, "b.example");
	/* reconciled already: nothing more to do */
	assert_int_equal(store_repl_reconcile(&f->c, "INBOX", &changed, NULL), 0);
	assert_false(changed);
	/* hand-deleted: lost, not tombstoned; a later SAVE writes it again */
	assert_int_equal(unlink(tu_path("%s/new/%s", f->md, r.filename)), 0);
	st = sync_box(f, "INBOX");
	assert_int_equal(st.messages, 2);
	g = guids(f, "INBOX");
	assert_null(seen_find(&g, G1));
	r = save(f, "INBOX", G1, 2, "a", 0, "");
	assert_int_equal(r.status, STORE_R_OK);
	assert_true(r.effective);
	assert_int_equal(sync_box(f, "INBOX").messages, 3);
	/* damaged: size differs from S=, moved aside and lost */
	assert_int_equal(truncate(hand, 1), 0);
	assert_int_equal(store_repl_reconcile(&f->c, "INBOX", &changed, NULL), 0);
	assert_true(changed);
	assert_int_equal(access(hand, F_OK), -1);
	assert_int_equal(access(tu_path("%s/tmp/stowd-damaged-1.M1P1Q1G%s.h,S=3,W=3",
					f->md, G2), F_OK), 0);
	assert_int_equal(sync_box(f, "INBOX").messages, 2);
	(void)name;
}

/* replication_vanished = expunge (the default): a file removed by someone
 * else is an expunge, tombstoned with a fresh stamp, final; a damaged file
 * is still a loss to repair. */
void
test_reconcile_vanished_file_is_expunge(void **state)
{
	struct fixture *f = *state;
	struct store_repl_result r1, r2;
	const struct store_msg_info *mi;
	struct seen g;
	bool changed;

	r1 = save(f, "INBOX", G1, 4, "a", 0, "");
	r2 = save(f, "INBOX", G2, 5, "a", 0, "\\Seen");
	assert_int_equal(unlink(tu_path("%s/new/%s", f->md, r1.filename)), 0);
	assert_int_equal(store_repl_reconcile(&f->c, "INBOX", &changed, NULL), 0);
	assert_true(changed);
	g = guids(f, "INBOX");
	mi = seen_find(&g, G1);
	assert_non_null(mi);
	assert_true(mi->expunged);
	assert_int_equal(sync_box(f, "INBOX").messages, 1);
	assert_int_equal(sync_box(f, "INBOX").highestmodseq, 6);
	/* final: the same GUID is not saved again */
	assert_int_equal(save(f, "INBOX", G1, 7, "a", 0, "").status,
			 STORE_R_EXPUNGED);
	/* damaged (size differs from S=): lost, no tombstone */
	assert_int_equal(truncate(tu_path("%s/cur/%s", f->md, r2.filename), 1), 0);
	assert_int_equal(store_repl_reconcile(&f->c, "INBOX", &changed, NULL), 0);
	assert_true(changed);
	g = guids(f, "INBOX");
	assert_null(seen_find(&g, G2));
	assert_int_equal(save(f, "INBOX", G2, 8, "a", 0, "\\Seen").status,
			 STORE_R_OK);
	assert_int_equal(sync_box(f, "INBOX").messages, 1);
}

/* Info letters changed by an IMAP server are a STORE of this server with a
 * fresh stamp for the flags that changed: a concurrent replicated STORE
 * with a smaller stamp loses on those flags and wins on the others. */
void
test_reconcile_letters_are_store(void **state)
{
	struct fixture *f = *state;
	struct store_repl_result r;
	const struct store_msg_info *mi;
	struct seen g;
	bool changed;

	r = save(f, "INBOX", G1, 5, "a", 0, "\\Flagged");
	assert_string_equal(strchr(r.filename, ':'), ":2,F");
	*strchr(r.filename, ':') = '\0';
	assert_int_equal(rename(tu_path("%s/cur/%s:2,F", f->md, r.filename),
				tu_path("%s/cur/%s:2,RSa", f->md, r.filename)), 0);
	assert_int_equal(store_repl_reconcile(&f->c, "INBOX", &changed, NULL), 0);
	assert_true(changed);
	g = guids(f, "INBOX");
	mi = seen_find(&g, G1);
	assert_non_null(mi);
	assert_string_equal(mi->flags, "\\Answered \\Seen");
	assert_int_equal(mi->stamp.modseq, 6);
	assert_string_equal(mi->stamp.origin, "b.example");
	/* (6,a.example) < (6,b.example) for \Seen; \Deleted had (5,a) */
	assert_true(store(f, "INBOX", G1, 6, "a.example",
			  "-\\Seen +\\Deleted").effective);
	g = guids(f, "INBOX");
	assert_string_equal(seen_find(&g, G1)->flags,
			    "\\Answered \\Deleted \\Seen");
	assert_int_equal(access(tu_path("%s/cur/%s:2,RSTa", f->md, r.filename),
				F_OK), 0);
	/* stowd's own rename is already in the index: no change, no echo */
	assert_int_equal(store_repl_reconcile(&f->c, "INBOX", &changed, NULL), 0);
	assert_false(changed);
	/* new/ -> cur/ with an empty info part is not a flag change */
	r = save(f, "INBOX", G2, 9, "a", 0, "");
	assert_int_equal(rename(tu_path("%s/new/%s", f->md, r.filename),
				tu_path("%s/cur/%s:2,", f->md, r.filename)), 0);
	assert_int_equal(store_repl_reconcile(&f->c, "INBOX", &changed, NULL), 0);
	assert_true(changed);
	g = guids(f, "INBOX");
	assert_string_equal(seen_find(&g, G2)->flags, "");
	assert_int_equal(seen_find(&g, G2)->stamp.modseq, 9);
}

/* A replicated STORE or EXPUNGE that arrives after an IMAP server renamed
 * the file but before reconciliation saw it: the STORE keeps the IMAP
 * server's letters and adds its own, so reconciliation still records the
 * IMAP change; the EXPUNGE removes the renamed file (no resurrection as a
 * new message). */
void
test_replicated_ops_on_a_file_renamed_by_others(void **state)
{
	struct fixture *f = *state;
	struct store_repl_result r, r2;
	const struct store_msg_info *mi;
	struct seen g;
	bool changed;

	r = save(f, "INBOX", G1, 5, "a", 0, "");
	assert_int_equal(rename(tu_path("%s/new/%s", f->md, r.filename),
				tu_path("%s/cur/%s:2,S", f->md, r.filename)), 0);
	assert_true(store(f, "INBOX", G1, 6, "a", "+\\Flagged").effective);
	assert_int_equal(access(tu_path("%s/cur/%s:2,FS", f->md, r.filename), F_OK), 0);
	assert_int_equal(store_repl_reconcile(&f->c, "INBOX", &changed, NULL), 0);
	assert_true(changed);
	g = guids(f, "INBOX");
	mi = seen_find(&g, G1);
	assert_non_null(mi);
	assert_string_equal(mi->flags, "\\Flagged \\Seen");
	assert_string_equal(mi->stamp.origin, "b.example");
	/* expunge after a rename by others */
	r2 = save(f, "INBOX", G2, 8, "a", 0, "");
	assert_int_equal(rename(tu_path("%s/new/%s", f->md, r2.filename),
				tu_path("%s/cur/%s:2,T", f->md, r2.filename)), 0);
	assert_true(expunge(f, "INBOX", G2, 9).effective);
	assert_int_equal(access(tu_path("%s/cur/%s:2,T", f->md, r2.filename), F_OK), -1);
	assert_int_equal(sync_box(f, "INBOX").messages, 1);
}

struct boxes_seen {
	char ops[8][128];
	int n;
};

static int
boxes_cb(const char *op, const char *a, const char *b, void *arg)
{
	struct boxes_seen *bs = arg;

	if (bs->n < 8)
		snprintf(bs->ops[bs->n++], sizeof(bs->ops[0]), "%s %s%s%s", op, a,
			 b != NULL ? " " : "", b != NULL ? b : "");
	return 0;
}

static struct boxes_seen
capture_boxes(struct fixture *f)
{
	struct boxes_seen bs = { .n = 0 };
	const char *what;

	assert_int_equal(store_repl_capture_boxes(&f->c, boxes_cb, &bs, &what), 0);
	return bs;
}

static void
mkbox(struct fixture *f, const char *dir)
{
	assert_int_equal(mkdir(tu_path("%s/%s", f->md, dir), 0700), 0);
	assert_int_equal(mkdir(tu_path("%s/%s/new", f->md, dir), 0700), 0);
	assert_int_equal(mkdir(tu_path("%s/%s/cur", f->md, dir), 0700), 0);
}

/* Folders created, renamed (with a subfolder) and deleted by an IMAP
 * server are reported once, parents first, a subfolder's rename implied
 * by its parent's; stowd's own CREATE, RENAME and DELETE are not. */
void
test_capture_boxes_reports_folder_changes_of_others(void **state)
{
	struct fixture *f = *state;
	struct store_repl_result r;
	struct boxes_seen bs;

	assert_int_equal(store_repl_create(&f->c, "INBOX", &r, NULL), 0);
	mkbox(f, ".Work");
	/* stowd made the Maildir and saw no folder then */
	bs = capture_boxes(f);
	assert_int_equal(bs.n, 1);
	assert_string_equal(bs.ops[0], "CREATE Work");
	/* without the file, the first look reports nothing */
	assert_int_equal(unlink(tu_path("%s/stowd-mailboxes", f->md)), 0);
	mkbox(f, ".Tmp");
	assert_int_equal(capture_boxes(f).n, 0);
	assert_int_equal(rename(tu_path("%s/.Tmp", f->md), tu_path("%s/tmp/x", f->md)), 0);
	assert_string_equal(capture_boxes(f).ops[0], "DELETE Tmp");
	mkbox(f, ".Work.2024");
	mkbox(f, ".Old");
	bs = capture_boxes(f);
	assert_int_equal(bs.n, 2);
	assert_string_equal(bs.ops[0], "CREATE Old");
	assert_string_equal(bs.ops[1], "CREATE Work.2024");
	assert_int_equal(capture_boxes(f).n, 0);
	/* as Dovecot renames: the folder and its subfolder */
	assert_int_equal(rename(tu_path("%s/.Work", f->md), tu_path("%s/.Archive", f->md)), 0);
	assert_int_equal(rename(tu_path("%s/.Work.2024", f->md),
				tu_path("%s/.Archive.2024", f->md)), 0);
	assert_int_equal(rename(tu_path("%s/.Old", f->md),
				tu_path("%s/..DOVECOT-TRASHED", f->md)), 0);
	bs = capture_boxes(f);
	assert_int_equal(bs.n, 2);
	assert_string_equal(bs.ops[0], "RENAME Work Archive");
	assert_string_equal(bs.ops[1], "DELETE Old");
	/* stowd's own operations are noted, not reported */
	assert_int_equal(store_repl_create(&f->c, "Sent", &r, NULL), 0);
	assert_int_equal(store_repl_rename(&f->c, "Archive", "Done", &r, NULL), 0);
	assert_true(r.effective);
	assert_int_equal(store_repl_delete(&f->c, "Sent", &r, NULL), 0);
	assert_int_equal(capture_boxes(f).n, 0);
	assert_int_equal(access(tu_path("%s/.Done.2024/cur", f->md), F_OK), 0);
}

/* Dovecot keyword letters (a..z, by the folder's dovecot-keywords) are
 * keyword changes both ways: letters an IMAP server adds or removes are
 * recorded as keyword deltas; replicated keywords that have a letter are
 * written as letters, others stay in the index only. */
void
test_dovecot_keyword_letters_both_ways(void **state)
{
	static const char kw[] = "0 $Later\n1 $Important\n";
	struct fixture *f = *state;
	struct store_repl_result r, r2;
	struct seen g;
	char base[256];
	bool changed;

	r = save(f, "INBOX", G1, 5, "a", 0, "");
	assert_int_equal(tu_write_file(tu_path("%s/dovecot-keywords", f->md), kw,
				       strlen(kw)), 0);
	snprintf(base, sizeof(base), "%s", r.filename);
	assert_int_equal(rename(tu_path("%s/new/%s", f->md, base),
				tu_path("%s/cur/%s:2,Sa", f->md, base)), 0);
	assert_int_equal(store_repl_reconcile(&f->c, "INBOX", &changed, NULL), 0);
	g = guids(f, "INBOX");
	assert_string_equal(seen_find(&g, G1)->flags, "$Later \\Seen");
	assert_int_equal(rename(tu_path("%s/cur/%s:2,Sa", f->md, base),
				tu_path("%s/cur/%s:2,Sb", f->md, base)), 0);
	assert_int_equal(store_repl_reconcile(&f->c, "INBOX", &changed, NULL), 0);
	g = guids(f, "INBOX");
	assert_string_equal(seen_find(&g, G1)->flags, "$Important \\Seen");
	/* replicated: a keyword with a letter is written, one without gets
	 * the next free letter, as Dovecot gives it */
	assert_true(store(f, "INBOX", G1, 20, "a", "+$Later +Work").effective);
	assert_int_equal(access(tu_path("%s/cur/%s:2,Sabc", f->md, base), F_OK), 0);
	{
		char buf[128] = "";
		FILE *fp = fopen(tu_path("%s/dovecot-keywords", f->md), "r");

		assert_non_null(fp);
		assert_true(fread(buf, 1, sizeof(buf) - 1, fp) > 0);
		fclose(fp);
		assert_string_equal(buf, "0 $Later\n1 $Important\n2 Work\n");
	}
	/* Dovecot's lock taken and released again */
	assert_int_equal(access(tu_path("%s/dovecot-uidlist.lock", f->md), F_OK), -1);
	g = guids(f, "INBOX");
	assert_string_equal(seen_find(&g, G1)->flags, "$Important $Later Work \\Seen");
	assert_true(store(f, "INBOX", G1, 21, "a", "-$Important").effective);
	assert_int_equal(access(tu_path("%s/cur/%s:2,Sac", f->md, base), F_OK), 0);
	assert_int_equal(store_repl_reconcile(&f->c, "INBOX", &changed, NULL), 0);
	assert_false(changed);
	/* a replicated SAVE with a keyword */
	r2 = save(f, "INBOX", G2, 22, "a", 0, "$Important \\Flagged");
	assert_string_equal(strchr(r2.filename, ':'), ":2,Fb");
}

/* Dovecot's MOVE hard-links a file under its base name into the other
 * folder and removes the source: the target gets the GUID of the name,
 * the source an expunge; moving it back into a folder that has the GUID's
 * tombstone gives it a new GUID there (§7.4), and so on: nothing is lost. */
void
test_move_keeps_guid_until_it_comes_back(void **state)
{
	struct fixture *f = *state;
	struct store_repl_result r;
	char base[256], from[PATH_MAX + 300], to[PATH_MAX + 300];
	struct seen g;
	const char *boxes[3] = { "INBOX", "Archive", "INBOX" };
	const char *dirs[3] = { "", ".Archive/", "" };
	bool changed;

	r = save(f, "INBOX", G1, 5, "a", 0, "");
	snprintf(base, sizeof(base), "%s", r.filename);
	assert_int_equal(store_repl_create(&f->c, "Archive", &r, NULL), 0);
	for (int i = 0; i < 2; i++) {
		snprintf(from, sizeof(from), "%s/%snew/%s", f->md, dirs[i], base);
		snprintf(to, sizeof(to), "%s/%snew/%s", f->md, dirs[i + 1], base);
		assert_int_equal(link(from, to), 0);
		assert_int_equal(unlink(from), 0);
		assert_int_equal(store_repl_reconcile(&f->c, boxes[i], &changed, NULL), 0);
		assert_true(changed);
		assert_int_equal(store_repl_reconcile(&f->c, boxes[i + 1], &changed, NULL), 0);
		assert_true(changed);
		g = guids(f, boxes[i]);
		assert_true(seen_find(&g, G1) != NULL && seen_find(&g, G1)->expunged);
		g = guids(f, boxes[i + 1]);
		assert_int_equal(sync_box(f, boxes[i + 1]).messages, 1);
		if (i == 0) {
			/* Archive: the same GUID */
			assert_non_null(seen_find(&g, G1));
			assert_false(seen_find(&g, G1)->expunged);
		} else {
			/* back in INBOX, which has its tombstone: a new GUID */
			assert_true(seen_find(&g, G1)->expunged);
			assert_int_equal(g.n, 2);
		}
	}
}

void
test_flags_letter_deltas(void **state)
{
	char out[STORE_FLAGS_MAX];

	(void)state;
	assert_int_equal(store_flags_letter_deltas("", "x", out), 0);
	assert_string_equal(out, "");
	assert_int_equal(store_flags_letter_deltas("\\Seen", "x:2,S", out), 0);
	assert_int_equal(store_flags_letter_deltas("$Later \\Seen", "x:2,Sab", out), 0);
	assert_int_equal(store_flags_letter_deltas("\\Flagged \\Seen", "x:2,DRT",
						   out), 5);
	assert_string_equal(out, "+\\Draft -\\Flagged +\\Answered -\\Seen "
			    "+\\Deleted");
	/* no info part, or another version: says nothing */
	assert_int_equal(store_flags_letter_deltas("\\Seen", "x", out), 0);
	assert_int_equal(store_flags_letter_deltas("\\Seen", "x:1,", out), 0);
}

void
test_reconcile_follows_imap_rename(void **state)
{
	struct fixture *f = *state;
	struct store_repl_result r, fr;
	struct store_msg_info info;
	char *buf = NULL;
	int fd;

	r = save(f, "INBOX", G1, 1, "a", 0, "");
	assert_int_equal(rename(tu_path("%s/new/%s", f->md, r.filename),
				tu_path("%s/cur/%s:2,Sa", f->md, r.filename)), 0);
	assert_int_equal(sync_box(f, "INBOX").messages, 1);
	assert_int_equal(store_repl_fetch(&f->c, "INBOX", G1, &fd, &info, &fr,
					  NULL), 0);
	assert_int_equal(fr.status, STORE_R_OK);
	assert_true(fd >= 0);
	close(fd);
	/* the S was taken as a STORE; a replicated STORE keeps the IMAP
	 * server's own letters */
	assert_true(store(f, "INBOX", G1, 2, "a", "+\\Flagged").effective);
	assert_int_equal(access(tu_path("%s/cur/%s:2,FSa", f->md, r.filename),
				F_OK), 0);
	free(buf);
}

/* The records of one op for guid in the index of the Maildir. */
struct rec_count {
	const char *guid;
	enum store_rec_op op;
	int n;
};

static int
rec_count_cb(const struct store_rec *rec, void *arg)
{
	struct rec_count *l = arg;

	if (rec->op == l->op && strcmp(rec->guid, l->guid) == 0)
		l->n++;
	return 0;
}

int
rec_count(struct fixture *f, const char *guid, enum store_rec_op op)
{
	struct rec_count l = { guid, op, 0 };
	struct store_index_state st;
	int dirfd = open(f->md, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	assert_true(dirfd >= 0);
	assert_int_equal(store_index_read(dirfd, rec_count_cb, &l, &st), 0);
	close(dirfd);
	return l.n;
}

static int
lost_count(struct fixture *f, const char *guid)
{
	return rec_count(f, guid, STORE_REC_LOST);
}

bool
present(struct fixture *f, const char *guid)
{
	int dirfd = open(f->md, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	bool found = false;

	assert_true(dirfd >= 0);
	assert_int_equal(store_index_has_guid(dirfd, guid, &found), 0);
	close(dirfd);
	return found;
}

/* Reconcile INBOX: whether it changed anything must be want_changed; then
 * G1..G3 present (1) or not (0) and their LOST record counts. */
static void
reconcile_expect(struct fixture *f, bool want_changed,
		 const int want_present[3], const int want_lost[3])
{
	static const char *const gs[3] = { G1, G2, G3 };
	bool changed;
	int i;

	assert_int_equal(store_repl_reconcile(&f->c, "INBOX", &changed, NULL), 0);
	assert_int_equal(changed, want_changed);
	for (i = 0; i < 3; i++) {
		assert_int_equal(present(f, gs[i]), want_present[i]);
		assert_int_equal(lost_count(f, gs[i]), want_lost[i]);
	}
}

/* tmp/NAME of the fixture written and held with an flock, as store_save
 * holds a stamped save's tmp file; the open fd returned. */
static int
hold_tmp(struct fixture *f, const char *name)
{
	int fd;

	assert_int_equal(tu_write_file(tu_path("%s/tmp/%s", f->md, name), "abc", 3), 0);
	fd = open(tu_path("%s/tmp/%s", f->md, name), O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(flock(fd, LOCK_EX | LOCK_NB), 0);
	return fd;
}

/*
 * A SAVE record appended before its file left tmp/ (store_save with
 * stamped): while tmp/ holds a regular file under the record's base name
 * (up to the first ',' or ':') and a writer holds that file's lock, the
 * save is in flight and reconciliation leaves it alone; once the file is
 * renamed into new/ it is an ordinary message.  Once nobody holds the lock
 * (the writer died before its save was answered) the save is an orphan:
 * the tmp file is removed and the GUID tombstoned (an EXPUNGE record, not
 * LOST, so no SYNC brings it back), however young the file.  A record
 * whose file is nowhere, or only a directory of that name in tmp/, is
 * lost at once.
 */
void
test_reconcile_leaves_record_of_file_in_tmp_alone(void **state)
{
	static const char *const gs[3] = { G1, G2, G3 };
	struct fixture *f = *state;
	struct store_index_state st;
	struct store_repl_result r;
	struct store_rec rec[3];
	char base[3][128];
	int dirfd, i, held[2];

	f->c.vanished_repair = true;   /* lost records are counted */
	assert_int_equal(store_repl_create(&f->c, "INBOX", &r, NULL), 0);
	memset(rec, 0, sizeof(rec));
	for (i = 0; i < 3; i++) {
		snprintf(base[i], sizeof(base[i]), "1.M%dP1Q1G%s.h", i, gs[i]);
		/* G2 as a name whose info starts before any ',' */
		snprintf(rec[i].name, sizeof(rec[i].name), "%s%s", base[i],
			 i == 1 ? ":2,S" : ",S=3,W=3");
		rec[i].op = STORE_REC_SAVE;
		memcpy(rec[i].guid, gs[i], STORE_GUID_HEX);
	}
	dirfd = open(f->md, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(dirfd >= 0);
	assert_int_equal(store_index_append(dirfd, rec, 3, &st), 0);
	close(dirfd);
	held[0] = hold_tmp(f, base[0]);
	held[1] = hold_tmp(f, base[1]);
	assert_int_equal(mkdir(tu_path("%s/tmp/%s", f->md, base[2]), 0700), 0);

	/* G3 is lost at once; stable while the others are in flight */
	reconcile_expect(f, true, (const int[3]){ 1, 1, 0 }, (const int[3]){ 0, 0, 1 });
	reconcile_expect(f, false, (const int[3]){ 1, 1, 0 }, (const int[3]){ 0, 0, 1 });
	assert_int_equal(sync_box(f, "INBOX").messages, 2);
	assert_int_equal(tu_count_entries(tu_path("%s/tmp", f->md)), 3);

	/* G1 completes (renamed into new/, then its writer lets go); G2's
	 * writer dies: nobody holds its tmp file any more */
	assert_int_equal(rename(tu_path("%s/tmp/%s", f->md, base[0]),
				tu_path("%s/new/%s", f->md, rec[0].name)), 0);
	close(held[0]);
	close(held[1]);
	reconcile_expect(f, true, (const int[3]){ 1, 0, 0 }, (const int[3]){ 0, 0, 1 });
	assert_int_equal(rec_count(f, G2, STORE_REC_EXPUNGE), 1);
	assert_int_equal(access(tu_path("%s/tmp/%s", f->md, base[1]), F_OK), -1);
	reconcile_expect(f, false, (const int[3]){ 1, 0, 0 }, (const int[3]){ 0, 0, 1 });
	assert_int_equal(rec_count(f, G2, STORE_REC_EXPUNGE), 1);
	assert_int_equal(sync_box(f, "INBOX").messages, 1);
}

/*
 * EXPUNGE of a GUID whose save was stamped and whose writer died before
 * the file left tmp/: the tmp file goes too, and the GUID is tombstoned.
 */
void
test_expunge_removes_orphaned_tmp_file(void **state)
{
	struct fixture *f = *state;
	struct store_index_state st;
	struct store_repl_result r;
	struct store_stamp s = { .modseq = 0 };
	struct store_rec rec;
	const char *base = "1.M7P1Q1G" G1 ".h";
	int dirfd;

	assert_int_equal(store_repl_create(&f->c, "INBOX", &r, NULL), 0);
	memset(&rec, 0, sizeof(rec));
	snprintf(rec.name, sizeof(rec.name), "%s,S=3,W=3", base);
	rec.op = STORE_REC_SAVE;
	memcpy(rec.guid, G1, STORE_GUID_HEX);
	dirfd = open(f->md, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(dirfd >= 0);
	assert_int_equal(store_index_append(dirfd, &rec, 1, &st), 0);
	close(dirfd);
	close(hold_tmp(f, base));
	assert_int_equal(store_repl_expunge(&f->c, "INBOX", G1, &s, &r, NULL), 0);
	assert_true(r.effective);
	assert_false(present(f, G1));
	assert_int_equal(rec_count(f, G1, STORE_REC_EXPUNGE), 1);
	assert_int_equal(tu_count_entries(tu_path("%s/tmp", f->md)), 0);
	/* a replay is an OK no-op */
	assert_int_equal(store_repl_expunge(&f->c, "INBOX", G1, &s, &r, NULL), 0);
	assert_false(r.effective);
}

/* A file name in the index that is not one plain entry of new/ or cur/
 * ("../NAME") is not followed: FETCH does not serve the file it points at,
 * it is not taken for a save in flight (tmp/../NAME), and reconciliation
 * records the message lost. */
void
test_index_name_that_is_a_path_is_not_followed(void **state)
{
	struct fixture *f = *state;
	struct store_index_state st;
	struct store_repl_result r;
	struct store_msg_info info;
	struct store_rec rec;
	char base[128];
	int dirfd, fd = -1;

	assert_int_equal(store_repl_create(&f->c, "INBOX", &r, NULL), 0);
	snprintf(base, sizeof(base), "1.M8P1Q1G%s.h", G1);
	memset(&rec, 0, sizeof(rec));
	rec.op = STORE_REC_SAVE;
	memcpy(rec.guid, G1, STORE_GUID_HEX);
	snprintf(rec.name, sizeof(rec.name), "../%s,S=3,W=3", base);
	dirfd = open(f->md, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(dirfd >= 0);
	assert_int_equal(store_index_append(dirfd, &rec, 1, &st), 0);
	close(dirfd);
	/* the files the name points at exist (Maildir/, beside new/ and tmp/) */
	assert_int_equal(tu_write_file(tu_path("%s/%s", f->md, rec.name + 3), "abc", 3), 0);
	assert_int_equal(tu_write_file(tu_path("%s/%s", f->md, base), "abc", 3), 0);
	assert_int_equal(store_repl_fetch(&f->c, "INBOX", G1, &fd, &info, &r, NULL), 0);
	assert_int_equal(fd, -1);
	assert_int_equal(r.status, STORE_R_NONEXISTENT);
	reconcile_expect(f, true, (const int[3]){ 0, 0, 0 }, (const int[3]){ 1, 0, 0 });
}

/* A name with a control byte in the (user-writable) index is not taken:
 * FETCH does not serve it, and the message counts as lost. */
void
test_index_name_with_control_byte_is_not_taken(void **state)
{
	struct fixture *f = *state;
	struct store_index_state st;
	struct store_repl_result r;
	struct store_msg_info info;
	struct store_rec rec;
	int dirfd, fd = -1;

	assert_int_equal(store_repl_create(&f->c, "INBOX", &r, NULL), 0);
	memset(&rec, 0, sizeof(rec));
	rec.op = STORE_REC_SAVE;
	memcpy(rec.guid, G1, STORE_GUID_HEX);
	snprintf(rec.name, sizeof(rec.name), "1.M8P1Q1G%s.h\x01,S=3,W=3", G1);
	dirfd = open(f->md, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(dirfd >= 0);
	assert_int_equal(store_index_append(dirfd, &rec, 1, &st), 0);
	close(dirfd);
	assert_int_equal(tu_write_file(tu_path("%s/new/%s", f->md, rec.name), "abc", 3), 0);
	assert_int_equal(store_repl_fetch(&f->c, "INBOX", G1, &fd, &info, &r, NULL), 0);
	assert_int_equal(fd, -1);
	assert_int_equal(r.status, STORE_R_NONEXISTENT);
}

/* An index over index_max_messages or index_max_size (the user's file)
 * fails that mailbox with E2BIG instead of growing the writer. */
void
test_index_over_limits_is_e2big(void **state)
{
	struct fixture *f = *state;
	struct store_index_state st;
	struct store_repl_result r;
	struct store_msg_info info;
	struct store_rec rec[3];
	int dirfd, fd = -1, rc;
	unsigned i;

	assert_int_equal(store_repl_create(&f->c, "INBOX", &r, NULL), 0);
	memset(rec, 0, sizeof(rec));
	for (i = 0; i < 3; i++) {
		rec[i].op = STORE_REC_SAVE;
		snprintf(rec[i].guid, sizeof(rec[i].guid), "%031x%u", 0, i);
		snprintf(rec[i].name, sizeof(rec[i].name), "%u.M1P1Q%u.h,S=3,W=3", i, i);
	}
	dirfd = open(f->md, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(dirfd >= 0);
	assert_int_equal(store_index_append(dirfd, rec, 3, &st), 0);
	close(dirfd);
	store_repl_cache_clear();
	store_repl_set_limits(0, 2);
	errno = 0;
	rc = store_repl_fetch(&f->c, "INBOX", rec[0].guid, &fd, &info, &r, NULL);
	assert_int_equal(rc, -1);
	assert_int_equal(errno, E2BIG);
	store_repl_cache_clear();
	store_repl_set_limits(64, 0);
	errno = 0;
	rc = store_repl_fetch(&f->c, "INBOX", rec[0].guid, &fd, &info, &r, NULL);
	assert_int_equal(rc, -1);
	assert_int_equal(errno, E2BIG);
	store_repl_cache_clear();
	store_repl_set_limits(1ull << 30, 1000000);
	assert_int_equal(store_repl_fetch(&f->c, "INBOX", rec[0].guid, &fd, &info, &r,
					  NULL), 0);
	if (fd >= 0)
		close(fd);
}

/* ---- FETCH ------------------------------------------------------------- */

void
test_fetch_returns_exact_bytes_and_date(void **state)
{
	struct fixture *f = *state;
	struct store_repl_result r;
	struct store_msg_info info;
	char buf[128];
	int fd;

	save(f, "Sent", G1, 1, "a", 7, "\\Seen");
	assert_int_equal(store_repl_fetch(&f->c, "Sent", G1, &fd, &info, &r, NULL), 0);
	assert_int_equal(r.status, STORE_R_OK);
	assert_int_equal(info.uid, 7);
	assert_true(info.date == 1718000000);
	assert_string_equal(info.flags, "\\Seen");
	assert_true(info.size == strlen(BODY));
	assert_int_equal(read(fd, buf, sizeof(buf)), (ssize_t)strlen(BODY));
	assert_memory_equal(buf, BODY, strlen(BODY));
	close(fd);
	assert_int_equal(store_repl_fetch(&f->c, "Sent", G2, &fd, &info, &r, NULL), 0);
	assert_int_equal(r.status, STORE_R_NONEXISTENT);
	assert_int_equal(fd, -1);
	expunge(f, "Sent", G1, 2);
	assert_int_equal(store_repl_fetch(&f->c, "Sent", G1, &fd, &info, &r, NULL), 0);
	assert_int_equal(r.status, STORE_R_EXPUNGED);
	assert_int_equal(store_repl_fetch(&f->c, "Nope", G1, &fd, &info, &r, NULL), 0);
	assert_int_equal(r.status, STORE_R_NONEXISTENT);
}

/* ---- CREATE, DELETE, RENAME, LIST -------------------------------------- */

struct listed {
	size_t n;
	char names[8][64];
	uint32_t messages[8];
};

static int
list_cb(const char *mailbox, const struct store_mbox_state *st,
	void *arg)
{
	struct listed *l = arg;

	if (l->n < 8) {
		snprintf(l->names[l->n], 64, "%s", mailbox);
		l->messages[l->n] = st->messages;
	}
	l->n++;
	return 0;
}

static bool
listed_has(const struct listed *l, const char *name)
{
	size_t i;

	for (i = 0; i < l->n && i < 8; i++) {
		if (strcmp(l->names[i], name) == 0)
			return true;
	}
	return false;
}

void
test_create_delete_rename_list(void **state)
{
	struct fixture *f = *state;
	struct store_repl_result r;
	struct listed l = { 0 };

	assert_int_equal(store_repl_list(&f->c, list_cb, &l, NULL), 0);
	assert_int_equal(l.n, 0);   /* no Maildir */
	assert_int_equal(store_repl_create(&f->c, "Work", &r, NULL), 0);
	assert_true(r.effective);
	assert_int_equal(store_repl_create(&f->c, "Work", &r, NULL), 0);
	assert_false(r.effective);
	assert_int_equal(access(tu_path("%s/.Work/cur", f->md), F_OK), 0);
	assert_int_equal(access(tu_path("%s/.Work/" STORE_INDEX_FILE, f->md), F_OK), 0);
	save(f, "Work.sub", G1, 1, "a", 0, "");
	save(f, "INBOX", G2, 1, "a", 0, "");
	assert_int_equal(store_repl_list(&f->c, list_cb, &l, NULL), 0);
	assert_int_equal(l.n, 3);
	assert_true(listed_has(&l, "INBOX") && listed_has(&l, "Work") &&
		    listed_has(&l, "Work.sub"));

	assert_int_equal(store_repl_rename(&f->c, "Work", "Archive.Work", &r, NULL), 0);
	assert_int_equal(r.status, STORE_R_OK);
	assert_true(r.effective);
	assert_int_equal(access(tu_path("%s/.Archive.Work.sub/cur", f->md), F_OK), 0);
	assert_int_equal(access(tu_path("%s/.Work", f->md), F_OK), -1);
	assert_int_equal(sync_box(f, "Archive.Work.sub").messages, 1);
	assert_int_equal(store_repl_rename(&f->c, "Work", "Archive.Work", &r, NULL), 0);
	assert_int_equal(r.status, STORE_R_OK);   /* a replay */
	assert_false(r.effective);
	assert_int_equal(store_repl_rename(&f->c, "Gone", "Else", &r, NULL), 0);
	assert_int_equal(r.status, STORE_R_NONEXISTENT);
	assert_int_equal(store_repl_create(&f->c, "Other", &r, NULL), 0);
	assert_int_equal(store_repl_rename(&f->c, "Other", "Archive.Work", &r, NULL), 0);
	assert_int_equal(r.status, STORE_R_ALREADYEXISTS);
	assert_int_equal(store_repl_rename(&f->c, "INBOX", "Old", &r, NULL), 0);
	assert_int_equal(r.status, STORE_R_CANNOT);
	assert_int_equal(store_repl_rename(&f->c, "Other", "Other.x", &r, NULL), 0);
	assert_int_equal(r.status, STORE_R_CANNOT);
	assert_int_equal(store_repl_rename(&f->c, "Other", "a..b", &r, NULL), -1);
	assert_int_equal(errno, EINVAL);

	assert_int_equal(store_repl_delete(&f->c, "inbox", &r, NULL), 0);
	assert_int_equal(r.status, STORE_R_CANNOT);
	assert_int_equal(store_repl_delete(&f->c, "Archive.Work", &r, NULL), 0);
	assert_true(r.effective);
	assert_int_equal(access(tu_path("%s/.Archive.Work", f->md), F_OK), -1);
	assert_int_equal(access(tu_path("%s/.Archive.Work.sub/cur", f->md), F_OK), 0);
	assert_int_equal(tu_count_entries(tu_path("%s/tmp", f->md)), 0);
	assert_int_equal(store_repl_delete(&f->c, "Archive.Work", &r, NULL), 0);
	assert_false(r.effective);
	assert_int_equal(store_repl_sync(&f->c, "Archive.Work", &(struct store_mbox_state){ 0 },
					 &r, NULL), 0);
	assert_int_equal(r.status, STORE_R_NONEXISTENT);
}

/* ---- index versions ---------------------------------------------------- */

static void
put32(unsigned char *p, uint32_t v)
{
	p[0] = v & 0xff;
	p[1] = (v >> 8) & 0xff;
	p[2] = (v >> 16) & 0xff;
	p[3] = v >> 24;
}

/* CRC-32 (IEEE 802.3, reflected, as zlib's crc32), bit by bit: the
 * frame checksum of the index format, written independently of
 * storage/indexfmt.c. */
static uint32_t
crc32_ieee(uint32_t crc, const void *buf, size_t len)
{
	const unsigned char *p = buf;
	int k;

	crc = ~crc;
	while (len-- > 0) {
		crc ^= *p++;
		for (k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1u)));
	}
	return ~crc;
}

/* Frame around payload[0..len) into out; returns the frame length. */
static size_t
frame(const unsigned char *payload, size_t len, unsigned char *out)
{
	uint32_t crc;

	put32(out, (uint32_t)len);
	memcpy(out + 8, payload, len);
	put32(out + 8 + len, (uint32_t)len);
	crc = crc32_ieee(0, out, 4);
	crc = crc32_ieee(crc, out + 8, len);
	put32(out + 4, crc);
	return len + 12;
}

static int
collect_origin(const struct store_rec *rec, void *arg)
{
	char (*o)[2][128] = arg;
	int i = rec->op == STORE_REC_SAVE && rec->origin[0] == '\0' ? 0 : 1;

	snprintf((*o)[i], 128, "%s%s", rec->guid, rec->origin);
	return 0;
}

void
test_version1_log_still_read_and_extended(void **state)
{
	struct fixture *f = *state;
	unsigned char hdr[20] = { 1, 0, 0, 0, 'S', 'T', 'O', 'W', 'D', 'I', 'D', 'X' };
	unsigned char txn[200], file[400];
	struct store_index_state st;
	char fname[128], seen[2][128] = { "", "" };
	size_t len = 0, nl;
	int dirfd;

	put32(hdr + 12, 1);
	put32(hdr + 16, 777);
	len += frame(hdr, sizeof(hdr), file);
	snprintf(fname, sizeof(fname), "1.M1P1Q1G%s.h,S=3,W=3", G1);
	nl = strlen(fname);
	memset(txn, 0, sizeof(txn));
	txn[0] = 2;                      /* version-1 transaction */
	put32(txn + 4, 777);
	put32(txn + 8, 6);               /* uidnext */
	put32(txn + 12, 1);
	txn[16] = 9;                     /* highestmodseq */
	put32(txn + 24, 1);
	txn[28] = STORE_REC_SAVE;
	txn[29] = 5;
	txn[30] = (unsigned char)nl;
	put32(txn + 32, 5);              /* uid */
	txn[36] = 9;                     /* modseq */
	memcpy(txn + 44, G1, 32);
	memcpy(txn + 76, "\\Seen", 5);
	memcpy(txn + 81, fname, nl);
	len += frame(txn, 81 + nl, file + len);
	assert_int_equal(mkdir(f->t.base, 0700), 0);
	assert_int_equal(mkdir(f->md, 0700), 0);
	assert_int_equal(mkdir(tu_path("%s/new", f->md), 0700), 0);
	assert_int_equal(mkdir(tu_path("%s/cur", f->md), 0700), 0);
	assert_int_equal(mkdir(tu_path("%s/tmp", f->md), 0700), 0);
	assert_int_equal(tu_write_file(tu_path("%s/" STORE_INDEX_FILE, f->md),
				       file, len), 0);
	assert_int_equal(tu_write_file(tu_path("%s/new/%s", f->md, fname), "abc", 3), 0);

	assert_int_equal(sync_box(f, "INBOX").messages, 1);
	assert_int_equal(sync_box(f, "INBOX").uidvalidity, 777);
	assert_string_equal(guids(f, "INBOX").m[0].flags, "\\Seen");
	assert_int_equal(guids(f, "INBOX").m[0].uid, 5);
	/* a version-2 transaction appended to the version-1 log */
	assert_int_equal(save(f, "INBOX", G2, 20, "a.example", 0, "").uid, 6);
	dirfd = open(f->md, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_int_equal(store_index_read(dirfd, collect_origin, seen, &st), 0);
	close(dirfd);
	assert_string_equal(seen[0], G1);
	assert_string_equal(seen[1], G2 "a.example");
	assert_int_equal(st.uidvalidity, 777);
	assert_int_equal(st.messages, 2);
}

void
test_lmtp_save_records_origin_and_modseq(void **state)
{
	struct fixture *f = *state;
	struct store_target t = { .mail_base = f->t.base, .mail_rel = "Maildir",
				  .mailbox = "INBOX", .uid = geteuid() };
	struct store_save_req req = { .target = &t, .body_size = 3,
		.body_vsize = 3, .guid = G1, .host = "h", .flags = "",
		.origin = "b.example" };
	struct store_save_result res;
	struct seen g;

	req.body_fd = body_fd("abc");
	assert_int_equal(store_save(&req, &res, NULL), 0);
	assert_true(res.modseq == 1);
	req.guid = G2;
	req.origin = NULL;
	assert_int_equal(store_save(&req, &res, NULL), 0);
	assert_true(res.modseq == 2);
	close(req.body_fd);
	g = guids(f, "INBOX");
	assert_int_equal(g.n, 2);
	assert_string_equal(seen_find(&g, G1)->stamp.origin, "b.example");
	assert_true(seen_find(&g, G2)->stamp.modseq == 2);
	assert_int_equal(sync_box(f, "INBOX").messages, 2);
}
