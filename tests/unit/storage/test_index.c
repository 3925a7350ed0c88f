/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/storage/test_index.c - the per-mailbox index log: state and
 * records across transactions, torn and corrupt tails, lookups by GUID,
 * locking, and what is refused (symlinks, foreign files, bad records).
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
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "storage/storage_int.h"
#include "tests/unit/storage/util.h"

#define MAX_SEEN 64

struct fixture {
	char dir[PATH_MAX];
	char log[PATH_MAX];
	int dirfd;
};

struct seen {
	size_t n;
	struct store_rec recs[MAX_SEEN];
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	tu_mkdtemp(f->dir);
	memcpy(f->log, f->dir, strlen(f->dir));
	strcat(f->log, "/" STORE_INDEX_FILE);
	f->dirfd = open(f->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	store_index_lock_timeout_ms = 10000;
	*state = f;
	return f->dirfd < 0 ? -1 : 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	close(f->dirfd);
	tu_rmtree(f->dir);
	free(f);
	return 0;
}

static int
collect(const struct store_rec *rec, void *arg)
{
	struct seen *s = arg;

	if (s->n < MAX_SEEN)
		s->recs[s->n] = *rec;
	s->n++;
	return 0;
}

static struct store_rec
rec_make(enum store_rec_op op, int guid_no,
	 const char *flags)
{
	struct store_rec r;

	memset(&r, 0, sizeof(r));
	r.op = op;
	snprintf(r.guid, sizeof(r.guid), "%032x", guid_no);
	snprintf(r.flags, sizeof(r.flags), "%s", flags);
	if (op == STORE_REC_SAVE)
		snprintf(r.name, sizeof(r.name), "1.M1P1Q%dG%s.h,S=1,W=1",
			 guid_no, r.guid);
	return r;
}

/* Append one SAVE of guid_no; returns the state after it. */
static struct store_index_state
save_one(struct fixture *f, int guid_no)
{
	struct store_rec r = rec_make(STORE_REC_SAVE, guid_no, "\\Seen");
	struct store_index_state st;

	assert_int_equal(store_index_append(f->dirfd, &r, 1, &st), 0);
	return st;
}

static off_t
file_size(const char *path)
{
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	return st.st_size;
}

static void
state_equal(const struct store_index_state *a,
	    const struct store_index_state *b)
{
	assert_int_equal(a->uidvalidity, b->uidvalidity);
	assert_int_equal(a->uidnext, b->uidnext);
	assert_true(a->highestmodseq == b->highestmodseq);
	assert_int_equal(a->messages, b->messages);
}

static void
test_crc32_matches_standard_check_value(void **state)
{
	(void)state;
	assert_int_equal(store_crc32(0, "123456789", 9), 0xcbf43926u);
	assert_int_equal(store_crc32(store_crc32(0, "1234", 4), "56789", 5),
			 0xcbf43926u);
	assert_int_equal(store_crc32(0, "", 0), 0);
}

/* Bit-at-a-time reference, to check the sliced version on any split. */
static uint32_t
crc32_ref(const unsigned char *p, size_t len)
{
	uint32_t c = 0xffffffffu;
	int k;

	while (len-- > 0) {
		c ^= *p++;
		for (k = 0; k < 8; k++)
			c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
	}
	return ~c;
}

static void
test_crc32_equals_reference_for_every_length_and_split(void **state)
{
	unsigned char buf[67];
	size_t len, cut;
	uint32_t want;

	(void)state;
	for (len = 0; len < sizeof(buf); len++)
		buf[len] = (unsigned char)(len * 37 + 11);
	for (len = 0; len <= sizeof(buf); len++) {
		want = crc32_ref(buf, len);
		for (cut = 0; cut <= len; cut++)
			assert_int_equal(store_crc32(store_crc32(0, buf, cut),
						     buf + cut, len - cut), want);
	}
}

static void
test_index_missing_log_reads_empty_state(void **state)
{
	struct fixture *f = *state;
	struct store_index_state st;
	struct seen s = { 0 };
	bool found = true;

	assert_int_equal(store_index_read(f->dirfd, collect, &s, &st), 0);
	assert_int_equal(st.uidvalidity, 0);
	assert_int_equal(st.messages, 0);
	assert_int_equal(s.n, 0);
	assert_int_equal(store_index_has_guid(f->dirfd,
			 "0123456789abcdef0123456789abcdef", &found), 0);
	assert_false(found);
}

static void
test_index_append_creates_log_0600_with_header(void **state)
{
	struct fixture *f = *state;
	struct store_index_state st;
	struct stat sb;

	assert_int_equal(store_index_append(f->dirfd, NULL, 0, &st), 0);
	assert_int_not_equal(st.uidvalidity, 0);
	assert_int_equal(st.uidnext, 1);
	assert_true(st.highestmodseq == 0);
	assert_int_equal(lstat(f->log, &sb), 0);
	assert_true(S_ISREG(sb.st_mode));
	assert_int_equal(sb.st_mode & 07777, 0600);
	assert_int_equal(sb.st_size, STORE_IDX_HDR_FRAME);
}

static void
test_index_transactions_advance_state_and_read_back(void **state)
{
	struct fixture *f = *state;
	struct store_rec two[2] = { rec_make(STORE_REC_SAVE, 2, ""),
				    rec_make(STORE_REC_SAVE, 3, "\\Flagged") };
	struct store_rec fl = rec_make(STORE_REC_FLAGS, 2, "+\\Seen -\\Draft");
	struct store_rec ex = rec_make(STORE_REC_EXPUNGE, 1, "");
	struct store_index_state st1, st, rd;
	struct seen s = { 0 };

	st1 = save_one(f, 1);
	assert_int_equal(st1.uidnext, 2);
	assert_true(st1.highestmodseq == 1);
	assert_int_equal(st1.messages, 1);
	assert_int_equal(store_index_append(f->dirfd, two, 2, &st), 0);
	assert_int_equal(two[0].uid, 2);
	assert_int_equal(two[1].uid, 3);
	assert_true(two[0].modseq == 2 && two[1].modseq == 2);
	assert_int_equal(store_index_append(f->dirfd, &fl, 1, &st), 0);
	assert_true(fl.modseq == 3);
	assert_int_equal(store_index_append(f->dirfd, &ex, 1, &st), 0);
	assert_int_equal(st.uidvalidity, st1.uidvalidity);
	assert_int_equal(st.uidnext, 4);
	assert_true(st.highestmodseq == 4);
	assert_int_equal(st.messages, 2);

	assert_int_equal(store_index_read(f->dirfd, collect, &s, &rd), 0);
	state_equal(&rd, &st);
	assert_int_equal(s.n, 5);
	assert_int_equal(s.recs[0].op, STORE_REC_SAVE);
	assert_int_equal(s.recs[0].uid, 1);
	assert_string_equal(s.recs[0].flags, "\\Seen");
	assert_string_equal(s.recs[0].guid, "00000000000000000000000000000001");
	assert_string_equal(s.recs[0].name,
			    "1.M1P1Q1G00000000000000000000000000000001.h,S=1,W=1");
	assert_string_equal(s.recs[2].flags, "\\Flagged");
	assert_int_equal(s.recs[3].op, STORE_REC_FLAGS);
	assert_string_equal(s.recs[3].flags, "+\\Seen -\\Draft");
	assert_true(s.recs[3].modseq == 3);
	assert_int_equal(s.recs[4].op, STORE_REC_EXPUNGE);
	assert_string_equal(s.recs[4].name, "");
}

static void
test_index_given_uid_kept_if_new_reassigned_if_used(void **state)
{
	struct fixture *f = *state;
	struct store_rec r = rec_make(STORE_REC_SAVE, 1, "");
	struct store_index_state st;

	r.uid = 100;
	assert_int_equal(store_index_append(f->dirfd, &r, 1, &st), 0);
	assert_int_equal(r.uid, 100);
	assert_int_equal(st.uidnext, 101);
	r = rec_make(STORE_REC_SAVE, 2, "");
	r.uid = 50;
	assert_int_equal(store_index_append(f->dirfd, &r, 1, &st), 0);
	assert_int_equal(r.uid, 101);
	assert_int_equal(st.uidnext, 102);
}

static void
test_index_invalid_records_are_einval(void **state)
{
	struct fixture *f = *state;
	struct store_index_state st;
	struct store_rec r;
	struct seen s = { 0 };

	r = rec_make(STORE_REC_SAVE, 1, "");
	r.guid[5] = 'x';
	assert_int_equal(store_index_append(f->dirfd, &r, 1, &st), -1);
	assert_int_equal(errno, EINVAL);
	r = rec_make(STORE_REC_SAVE, 1, "");
	r.op = (enum store_rec_op)9;
	assert_int_equal(store_index_append(f->dirfd, &r, 1, &st), -1);
	assert_int_equal(errno, EINVAL);
	r = rec_make(STORE_REC_SAVE, 1, "");
	memset(r.name, 'n', sizeof(r.name));
	assert_int_equal(store_index_append(f->dirfd, &r, 1, &st), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(store_index_read(f->dirfd, collect, &s, &st), 0);
	assert_int_equal(s.n, 0);
}

static void
test_index_too_big_transaction_is_e2big(void **state)
{
	struct fixture *f = *state;
	size_t n = STORE_IDX_MAX_PAYLOAD / STORE_IDX_REC_FIXED + 1, i;
	struct store_rec *recs = calloc(n, sizeof(*recs));
	struct store_index_state st;

	assert_non_null(recs);
	for (i = 0; i < n; i++)
		recs[i] = rec_make(STORE_REC_FLAGS, (int)i, "");
	assert_int_equal(store_index_append(f->dirfd, recs, n, &st), -1);
	assert_int_equal(errno, E2BIG);
	free(recs);
	assert_int_equal(store_index_append(f->dirfd, NULL, 0, &st), 0);
	assert_true(st.highestmodseq == 0);
}

/* Three transactions; returns the log bytes and the state/size after two. */
static char *
three_txns(struct fixture *f, struct store_index_state *st2,
	   off_t *size2, off_t *size3)
{
	char *buf;

	save_one(f, 1);
	*st2 = save_one(f, 2);
	*size2 = file_size(f->log);
	save_one(f, 3);
	*size3 = file_size(f->log);
	assert_int_equal(tu_read_file(f->log, &buf), *size3);
	return buf;
}

/* The log as damaged reads as st2 with 2 records; the next append cuts
 * the tail off and lands right after the second transaction. */
static void
check_tail_recovery(struct fixture *f,
		    const struct store_index_state *st2)
{
	struct store_index_state st, rd;
	struct seen s = { 0 };
	bool found = true;

	assert_int_equal(store_index_read(f->dirfd, collect, &s, &rd), 0);
	state_equal(&rd, st2);
	assert_int_equal(s.n, 2);
	assert_int_equal(store_index_has_guid(f->dirfd,
			 "00000000000000000000000000000003", &found), 0);
	assert_false(found);
	st = save_one(f, 4);
	assert_int_equal(st.uidnext, st2->uidnext + 1);
	assert_true(st.highestmodseq == st2->highestmodseq + 1);
	s.n = 0;
	assert_int_equal(store_index_read(f->dirfd, collect, &s, &rd), 0);
	state_equal(&rd, &st);
	assert_int_equal(s.n, 3);
	assert_string_equal(s.recs[2].guid, "00000000000000000000000000000004");
}

static void
test_index_torn_tail_at_every_offset_is_ignored_then_cut(void **state)
{
	struct fixture *f = *state;
	struct store_index_state st2;
	off_t size2, size3, cut;
	char *orig = three_txns(f, &st2, &size2, &size3);

	for (cut = size2 + 1; cut < size3; cut++) {
		assert_int_equal(tu_write_file(f->log, orig, (size_t)cut), 0);
		check_tail_recovery(f, &st2);
		/* the append cut exactly the torn bytes */
		assert_int_equal(file_size(f->log) - size2, size3 - size2);
	}
	free(orig);
}

static void
test_index_corrupt_byte_in_last_frame_is_ignored_then_cut(void **state)
{
	struct fixture *f = *state;
	struct store_index_state st2;
	off_t size2, size3, at;
	char *orig = three_txns(f, &st2, &size2, &size3);

	for (at = size2; at < size3; at++) {
		orig[at] ^= 0x41;
		assert_int_equal(tu_write_file(f->log, orig, (size_t)size3), 0);
		orig[at] ^= 0x41;
		check_tail_recovery(f, &st2);
		assert_int_equal(file_size(f->log), size3);
	}
	free(orig);
}

static void
test_index_zero_filled_tail_is_ignored_then_cut(void **state)
{
	struct fixture *f = *state;
	struct store_index_state st2;
	off_t size2, size3;
	char *orig = three_txns(f, &st2, &size2, &size3);

	memset(orig + size2, 0, (size_t)(size3 - size2));
	assert_int_equal(tu_write_file(f->log, orig, (size_t)size3), 0);
	check_tail_recovery(f, &st2);
	free(orig);
}

static void
test_index_corruption_in_middle_gives_ebadmsg(void **state)
{
	struct fixture *f = *state;
	struct store_index_state st2, st;
	off_t size2, size3;
	char *orig = three_txns(f, &st2, &size2, &size3);
	bool found;

	orig[STORE_IDX_HDR_FRAME + 10] ^= 1;   /* inside the first transaction */
	assert_int_equal(tu_write_file(f->log, orig, (size_t)size3), 0);
	assert_int_equal(store_index_read(f->dirfd, NULL, NULL, &st), -1);
	assert_int_equal(errno, EBADMSG);
	assert_int_equal(store_index_has_guid(f->dirfd,
			 "00000000000000000000000000000003", &found), -1);
	assert_int_equal(errno, EBADMSG);
	orig[STORE_IDX_HDR_FRAME + 10] ^= 1;
	orig[3] ^= 1;                          /* the header */
	assert_int_equal(tu_write_file(f->log, orig, (size_t)size3), 0);
	assert_int_equal(store_index_read(f->dirfd, NULL, NULL, &st), -1);
	assert_int_equal(errno, EBADMSG);
	free(orig);
}

static void
test_index_torn_header_restarts_log(void **state)
{
	struct fixture *f = *state;
	unsigned char hdr[STORE_IDX_HDR_FRAME];
	struct store_index_state st;
	size_t cut;

	store_idx_encode_header(12345, hdr);
	for (cut = 0; cut < sizeof(hdr); cut++) {
		assert_int_equal(tu_write_file(f->log, hdr, cut), 0);
		assert_int_equal(store_index_read(f->dirfd, NULL, NULL, &st), 0);
		assert_int_equal(st.uidvalidity, 0);
		st = save_one(f, 1);
		assert_int_not_equal(st.uidvalidity, 0);
		assert_int_not_equal(st.uidvalidity, 12345);
		assert_int_equal(st.uidnext, 2);
	}
	assert_int_equal(tu_write_file(f->log, hdr, sizeof(hdr)), 0);
	st = save_one(f, 1);
	assert_int_equal(st.uidvalidity, 12345);
}

static void
test_index_has_guid_follows_save_and_expunge(void **state)
{
	struct fixture *f = *state;
	struct store_rec ex = rec_make(STORE_REC_EXPUNGE, 7, "");
	struct store_rec fl = rec_make(STORE_REC_FLAGS, 8, "+\\Seen");
	struct store_rec got;
	struct store_index_state st;
	bool found;

	save_one(f, 7);
	save_one(f, 8);
	assert_int_equal(store_index_has_guid(f->dirfd,
			 "00000000000000000000000000000007", &found), 0);
	assert_true(found);
	assert_int_equal(store_index_has_guid(f->dirfd,
			 "0000000000000000000000000000000A", &found), 0);
	assert_false(found);
	assert_int_equal(store_index_append(f->dirfd, &ex, 1, &st), 0);
	assert_int_equal(store_index_append(f->dirfd, &fl, 1, &st), 0);
	assert_int_equal(store_index_has_guid(f->dirfd,
			 "00000000000000000000000000000007", &found), 0);
	assert_false(found);
	assert_int_equal(store_index_find_guid(f->dirfd,
			 "00000000000000000000000000000008", &found, &got), 0);
	assert_true(found);
	assert_int_equal(got.uid, 2);
	save_one(f, 7);   /* saved again after the expunge */
	assert_int_equal(store_index_find_guid(f->dirfd,
			 "00000000000000000000000000000007", &found, &got), 0);
	assert_true(found);
	assert_int_equal(got.uid, 3);
	assert_int_equal(store_index_has_guid(f->dirfd, "nope", &found), -1);
	assert_int_equal(errno, EINVAL);
}

static int
fail_cb(const struct store_rec *rec, void *arg)
{
	int *calls = arg;

	(void)rec;
	(*calls)++;
	errno = ECANCELED;
	return -1;
}

static void
test_index_read_callback_error_is_returned(void **state)
{
	struct fixture *f = *state;
	struct store_index_state st;
	int calls = 0;

	save_one(f, 1);
	save_one(f, 2);
	assert_int_equal(store_index_read(f->dirfd, fail_cb, &calls, &st), -1);
	assert_int_equal(errno, ECANCELED);
	assert_int_equal(calls, 1);
}

static void
test_index_symlink_or_special_file_is_refused(void **state)
{
	struct fixture *f = *state;
	const char *other = tu_path("%s/other", f->dir);
	struct store_index_state st;
	bool found;

	assert_int_equal(tu_write_file(other, "keep", 4), 0);
	assert_int_equal(symlink("other", f->log), 0);
	assert_int_equal(store_index_append(f->dirfd, NULL, 0, &st), -1);
	assert_int_equal(errno, ELOOP);
	assert_int_equal(store_index_read(f->dirfd, NULL, NULL, &st), -1);
	assert_int_equal(errno, ELOOP);
	assert_int_equal(file_size(other), 4);
	assert_int_equal(unlink(f->log), 0);

	assert_int_equal(mkfifo(f->log, 0600), 0);   /* must not hang */
	assert_int_equal(store_index_has_guid(f->dirfd,
			 "00000000000000000000000000000001", &found), -1);
	assert_int_equal(errno, EPERM);
	assert_int_equal(store_index_append(f->dirfd, NULL, 0, &st), -1);
	assert_int_equal(errno, EPERM);
}

static void
test_index_file_of_other_owner_is_eperm(void **state)
{
	struct fixture *f = *state;
	struct store_index_state st;

	if (geteuid() != 0)
		skip();
	save_one(f, 1);
	assert_int_equal(chown(f->log, 12345, 12345), 0);
	assert_int_equal(store_index_append(f->dirfd, NULL, 0, &st), -1);
	assert_int_equal(errno, EPERM);
	assert_int_equal(store_index_read(f->dirfd, NULL, NULL, &st), -1);
	assert_int_equal(errno, EPERM);
}

static void
test_index_lock_held_gives_ewouldblock_after_timeout(void **state)
{
	struct fixture *f = *state;
	struct store_index_state st;
	struct timespec a, b;
	long ms;
	int fd;

	save_one(f, 1);
	fd = open(f->log, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(flock(fd, LOCK_EX), 0);
	store_index_lock_timeout_ms = 60;
	clock_gettime(CLOCK_MONOTONIC, &a);
	assert_int_equal(store_index_append(f->dirfd, NULL, 0, &st), -1);
	assert_int_equal(errno, EWOULDBLOCK);
	clock_gettime(CLOCK_MONOTONIC, &b);
	ms = (b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000;
	assert_true(ms >= 60 && ms < 1000);
	/* readers take no lock */
	assert_int_equal(store_index_read(f->dirfd, NULL, NULL, &st), 0);
	assert_int_equal(st.uidnext, 2);
	close(fd);
	st = save_one(f, 2);
	assert_int_equal(st.uidnext, 3);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crc32_matches_standard_check_value),
		cmocka_unit_test(test_crc32_equals_reference_for_every_length_and_split),
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
		T(test_index_missing_log_reads_empty_state),
		T(test_index_append_creates_log_0600_with_header),
		T(test_index_transactions_advance_state_and_read_back),
		T(test_index_given_uid_kept_if_new_reassigned_if_used),
		T(test_index_invalid_records_are_einval),
		T(test_index_too_big_transaction_is_e2big),
		T(test_index_torn_tail_at_every_offset_is_ignored_then_cut),
		T(test_index_corrupt_byte_in_last_frame_is_ignored_then_cut),
		T(test_index_zero_filled_tail_is_ignored_then_cut),
		T(test_index_corruption_in_middle_gives_ebadmsg),
		T(test_index_torn_header_restarts_log),
		T(test_index_has_guid_follows_save_and_expunge),
		T(test_index_read_callback_error_is_returned),
		T(test_index_symlink_or_special_file_is_refused),
		T(test_index_file_of_other_owner_is_eperm),
		T(test_index_lock_held_gives_ewouldblock_after_timeout),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
