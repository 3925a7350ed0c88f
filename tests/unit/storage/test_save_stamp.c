/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/storage/test_save_stamp.c - the early stamp of store_save
 * (store_save_req.stamped): the SAVE record is in the index and announced
 * while the file is still in tmp/, before its fsync; the save then ends as
 * without it, with one SAVE record; a failure after the announcement
 * expunges the GUID again.  The order of the steps is read from a trace of
 * the mocked calls.  Part of the storage_save program (main, mocks and
 * fixture in test_save.c).
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

#include "storage/storage_int.h"
#include "tests/unit/storage/util.h"
#include "tests/unit/storage/test_save.h"

#define SAVED_SIZE (sizeof(PREFIX BODY) - 1)

/* ---- the index -------------------------------------------------------- */

/* The records of one GUID, in log order. */
struct guid_recs {
	const char *guid;
	size_t n;
	struct store_rec rec[8];
};

static int
guid_recs_cb(const struct store_rec *rec, void *arg)
{
	struct guid_recs *g = arg;

	if (strcmp(rec->guid, g->guid) == 0 && g->n < 8)
		g->rec[g->n++] = *rec;
	return 0;
}

static struct guid_recs
index_recs(const struct fixture *f, const char *guid)
{
	struct guid_recs g = { .guid = guid };
	struct store_index_state st;
	int dirfd = open(md(f, ""), O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	assert_true(dirfd >= 0);
	assert_int_equal(store_index_read(dirfd, guid_recs_cb, &g, &st), 0);
	close(dirfd);
	return g;
}

static bool
index_has(const struct fixture *f, const char *guid)
{
	int dirfd = open(md(f, ""), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	bool found = false;

	assert_true(dirfd >= 0);
	assert_int_equal(store_index_has_guid(dirfd, guid, &found), 0);
	close(dirfd);
	return found;
}

/* ---- the callback ----------------------------------------------------- */

struct stamp_seen {
	const struct fixture *f;
	int calls;
	int new_before;                 /* files in new/ before the save */
	struct store_save_result res;   /* as the callback got it */
};

/*
 * What must hold when the stamp is announced: a uid and a modseq, the
 * final name of the GUID, the file written in full but only in tmp/ under
 * the base name (the final name up to its first ','), and the SAVE record
 * with that uid, modseq and name already the last of the GUID in the index.
 */
static void
on_stamped(void *arg, const struct store_save_result *res)
{
	struct stamp_seen *s = arg;
	const struct fixture *f = s->f;
	char base[256], tmpname[256], guid[STORE_GUID_HEX + 1];
	struct guid_recs g;
	struct stat st;
	uint64_t size;
	size_t n;

	inj_note('C');
	s->calls++;
	s->res = *res;
	assert_true(res->imap_uid != 0);
	assert_true(res->modseq != 0);
	assert_false(res->duplicate);
	assert_true(res->size == SAVED_SIZE);
	assert_int_equal(store_name_parse(res->filename, &size, NULL, guid), 0);
	assert_true(size == SAVED_SIZE);
	assert_string_equal(guid, f->req.guid);
	n = strcspn(res->filename, ",");
	assert_true(n > 0 && n < strlen(res->filename) && n < sizeof(base));
	snprintf(base, sizeof(base), "%.*s", (int)n, res->filename);

	assert_int_equal(tu_count_entries(md(f, "new")), s->new_before);
	assert_int_equal(access(tu_path("%s/%s", md(f, "new"), res->filename),
				F_OK), -1);
	assert_int_equal(tu_only_entry(md(f, "tmp"), tmpname), 0);
	assert_string_equal(tmpname, base);
	assert_int_equal(lstat(tu_path("%s/%s", md(f, "tmp"), base), &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_true((uint64_t)st.st_size == SAVED_SIZE);

	assert_true(index_has(f, f->req.guid));
	g = index_recs(f, f->req.guid);
	assert_true(g.n >= 1);
	assert_int_equal(g.rec[g.n - 1].op, STORE_REC_SAVE);
	assert_int_equal(g.rec[g.n - 1].uid, res->imap_uid);
	assert_true(g.rec[g.n - 1].modseq == res->modseq);
	assert_string_equal(g.rec[g.n - 1].name, res->filename);
}

static void
stamp_on(struct fixture *f, struct stamp_seen *s)
{
	memset(s, 0, sizeof(*s));
	s->f = f;
	s->new_before = tu_count_entries(md(f, "new"));
	if (s->new_before < 0)
		s->new_before = 0;   /* no Maildir yet */
	f->req.stamped = on_stamped;
	f->req.stamped_arg = s;
}

/* ---- success ---------------------------------------------------------- */

/*
 * The announcement comes after the writes and the SAVE record and before
 * the fsync of the file, the rename and the fsync of new/ (trace
 * "w s w C f r f": prefix, body, index, callback, ...).  Afterwards the
 * file is in new/ under the announced name with the announced uid and
 * modseq, tmp/ is empty, and the index has the SAVE once.
 */
void
test_save_stamped_announces_before_fsync_and_saves_once(void **state)
{
	struct fixture *f = *state;
	struct store_save_result first, res;
	struct stamp_seen s;
	struct guid_recs g;
	const char *what = "unset";
	char name[256];

	/* a first save makes the index: one write per transaction after it */
	assert_int_equal(store_save(&f->req, &first, &what), 0);
	f->req.guid = GUID_B;
	stamp_on(f, &s);
	inj_trace_start();
	assert_int_equal(store_save(&f->req, &res, &what), 0);
	assert_string_equal(inj_trace_stop(), "wswCfrf");
	assert_null(what);
	assert_int_equal(s.calls, 1);
	assert_int_equal(res.imap_uid, s.res.imap_uid);
	assert_int_equal(res.imap_uid, first.imap_uid + 1);
	assert_true(res.modseq == s.res.modseq);
	assert_true(res.modseq > first.modseq);
	assert_true(res.size == SAVED_SIZE);
	assert_string_equal(res.filename, s.res.filename);
	assert_int_equal(tu_count_entries(md(f, "new")), 2);
	assert_int_equal(access(tu_path("%s/%s", md(f, "new"), res.filename), F_OK), 0);
	assert_int_equal(tu_count_entries(md(f, "tmp")), 0);
	g = index_recs(f, GUID_B);
	assert_int_equal(g.n, 1);
	assert_int_equal(g.rec[0].op, STORE_REC_SAVE);
	assert_true(g.rec[0].modseq == res.modseq);
	assert_true(index_has(f, GUID_B));

	/* the same in a fresh mailbox (the index is created at the stamp) */
	teardown(state);
	assert_int_equal(setup(state), 0);
	f = *state;
	stamp_on(f, &s);
	assert_int_equal(store_save(&f->req, &res, &what), 0);
	assert_int_equal(s.calls, 1);
	assert_int_equal(res.imap_uid, 1);
	assert_true(res.modseq == s.res.modseq);
	check_one_saved(md(f, ""), name);
	assert_string_equal(name, s.res.filename);
	g = index_recs(f, GUID_A);
	assert_int_equal(g.n, 1);
	assert_int_equal(g.rec[0].op, STORE_REC_SAVE);
}

/* Without stamped the SAVE record still follows the fsync of the file,
 * the rename and the fsync of new/. */
void
test_save_unstamped_appends_index_after_fsyncs(void **state)
{
	struct fixture *f = *state;
	struct store_save_result res;
	const char *what;

	assert_int_equal(store_save(&f->req, &res, &what), 0);
	f->req.guid = GUID_B;
	inj_trace_start();
	assert_int_equal(store_save(&f->req, &res, &what), 0);
	assert_string_equal(inj_trace_stop(), "wsfrfw");
	assert_int_equal(res.imap_uid, 2);
	assert_int_equal(index_recs(f, GUID_B).n, 1);
}

/* ---- failures after the announcement ---------------------------------- */

struct late_fail {
	struct inj inj[2];
	int err;
	const char *what;
};

/* Calls of a stamped save in a fresh mailbox: write #1 = prefix, #2 =
 * index header, #3 = SAVE, #4 = EXPUNGE; fsync #1 = tmp file, #2 = new/. */
static const struct late_fail late_fails[] = {
	{ { { "fsync", 1, EIO, false } }, EIO, "fsync" },
	{ { { "fsync", 1, ENOSPC, false } }, ENOSPC, "fsync" },
	{ { { "renameat2", 1, EIO, false } }, EIO, "rename into new" },
	{ { { "renameat2", 1, ENOSPC, false } }, ENOSPC, "rename into new" },
	{ { { "fsync", 2, EIO, false } }, EIO, "fsync new" },
	/* linkat fallback: the file was linked into new/ when new/ failed */
	{ { { "renameat2", 1, EINVAL, false }, { "fsync", 2, EIO, false } },
	  EIO, "fsync new" },
};

/*
 * A step failing after the stamp was announced: -1 with the step's errno
 * and name, nothing in new/ or tmp/, the index has the SAVE and then an
 * EXPUNGE of the GUID (no longer present), and the result's modseq is the
 * EXPUNGE's, above the announced one.  The index stays usable.
 */
void
test_save_stamped_failing_after_stamp_is_expunged(void **state)
{
	struct store_save_result res;
	struct stamp_seen s;
	struct guid_recs g;
	struct fixture *f;
	const char *what;
	size_t i;
	int rc;

	(void)state;
	for (i = 0; i < sizeof(late_fails) / sizeof(late_fails[0]); i++) {
		const struct late_fail *c = &late_fails[i];

		assert_int_equal(setup((void **)&f), 0);
		stamp_on(f, &s);
		inj_arm(c->inj);
		errno = 0;
		what = "unset";
		rc = store_save(&f->req, &res, &what);
		inj_disarm();
		if (rc != -1)
			fail_msg("case %zu: store_save returned %d", i, rc);
		assert_int_equal(errno, c->err);
		assert_string_equal(what, c->what);
		assert_int_equal(s.calls, 1);
		check_nothing_saved(md(f, ""));
		g = index_recs(f, GUID_A);
		assert_int_equal(g.n, 2);
		assert_int_equal(g.rec[0].op, STORE_REC_SAVE);
		assert_true(g.rec[0].modseq == s.res.modseq);
		assert_int_equal(g.rec[1].op, STORE_REC_EXPUNGE);
		assert_true(g.rec[1].modseq > g.rec[0].modseq);
		assert_true(res.modseq == g.rec[1].modseq);
		assert_false(index_has(f, GUID_A));
		/* the GUID may be saved again, under the next uid */
		assert_int_equal(store_save(&f->req, &res, &what), 0);
		assert_int_equal(s.calls, 2);
		assert_int_equal(res.imap_uid, s.res.imap_uid);
		assert_true(res.imap_uid > g.rec[0].uid);
		assert_true(index_has(f, GUID_A));
		teardown((void **)&f);
	}
}

/* If the EXPUNGE cannot be appended either, the modseq is 0 (nothing
 * undid the stamp) and the failed step's errno and name are kept. */
void
test_save_stamped_expunge_failing_too_reports_modseq_zero(void **state)
{
	static const struct inj inj[2] = {
		{ "fsync", 1, EIO, false }, { "write", 4, ENOSPC, false },
	};
	struct fixture *f = *state;
	struct store_save_result res;
	struct stamp_seen s;
	struct guid_recs g;
	const char *what;

	stamp_on(f, &s);
	inj_arm(inj);
	errno = 0;
	assert_int_equal(store_save(&f->req, &res, &what), -1);
	inj_disarm();
	assert_int_equal(errno, EIO);
	assert_string_equal(what, "fsync");
	assert_int_equal(s.calls, 1);
	assert_true(res.modseq == 0);
	check_nothing_saved(md(f, ""));
	g = index_recs(f, GUID_A);
	assert_int_equal(g.n, 1);
	assert_int_equal(g.rec[0].op, STORE_REC_SAVE);
}

/* ---- no announcement -------------------------------------------------- */

/* The index append at the stamp fails once: no announcement, and the SAVE
 * record is appended after the fsyncs as without stamped (trace: prefix,
 * body, failed index header, fsync, rename, fsync, header, SAVE). */
void
test_save_stamped_index_failing_is_not_announced(void **state)
{
	static const struct inj inj[2] = { { "write", 2, ENOSPC, false } };
	struct fixture *f = *state;
	struct store_save_result res;
	struct stamp_seen s;
	struct guid_recs g;
	const char *what;
	char name[256];

	stamp_on(f, &s);
	inj_arm(inj);
	inj_trace_start();
	assert_int_equal(store_save(&f->req, &res, &what), 0);
	assert_string_equal(inj_trace_stop(), "wswfrfww");
	inj_disarm();
	assert_int_equal(s.calls, 0);
	assert_int_equal(res.imap_uid, 1);
	assert_true(res.modseq != 0);
	check_one_saved(md(f, ""), name);
	assert_string_equal(name, res.filename);
	g = index_recs(f, GUID_A);
	assert_int_equal(g.n, 1);
	assert_int_equal(g.rec[0].op, STORE_REC_SAVE);
	assert_true(g.rec[0].modseq == res.modseq);
}

/* An index that cannot be appended at all (a symlink): no announcement,
 * the message is saved with uid 0 as without stamped. */
void
test_save_stamped_unusable_index_saves_without_callback(void **state)
{
	struct fixture *f = *state;
	struct store_save_result res;
	struct stamp_seen s;
	const char *what;
	char name[256], victim[PATH_MAX];

	snprintf(victim, sizeof(victim), "%.4000s/victim", f->outside);
	assert_int_equal(tu_write_file(victim, "keep", 4), 0);
	assert_int_equal(mkdir(md(f, ""), 0700), 0);
	assert_int_equal(symlink(victim, md(f, STORE_INDEX_FILE)), 0);
	stamp_on(f, &s);
	assert_int_equal(store_save(&f->req, &res, &what), 0);
	assert_int_equal(s.calls, 0);
	assert_int_equal(res.imap_uid, 0);
	assert_true(res.modseq == 0);
	check_one_saved(md(f, ""), name);
	assert_string_equal(name, res.filename);
}

/* A duplicate writes nothing and announces nothing. */
void
test_save_stamped_duplicate_is_not_announced(void **state)
{
	struct fixture *f = *state;
	struct store_save_result first, again;
	struct stamp_seen s;
	const char *what;

	f->req.check_duplicate = true;
	assert_int_equal(store_save(&f->req, &first, &what), 0);
	stamp_on(f, &s);
	assert_int_equal(store_save(&f->req, &again, &what), 0);
	assert_true(again.duplicate);
	assert_int_equal(s.calls, 0);
	assert_int_equal(again.imap_uid, first.imap_uid);
	assert_int_equal(tu_count_entries(md(f, "new")), 1);
	assert_int_equal(index_recs(f, GUID_A).n, 1);
}
