/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/repl-hook/test_journal.c - the per-replica event journal: append
 * and read back, torn or corrupt tails cut at open, resume from the acked
 * offset, truncation once drained, the size limit.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "repl-hook/journal_int.h"

struct fx {
	char dir[64];
	int dirfd;
};

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	snprintf(f->dir, sizeof(f->dir), "/tmp/stowd-journal-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	f->dirfd = open(f->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(f->dirfd >= 0);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	const char *names[] = { "r1.journal", "r1.acked" };
	size_t i;

	for (i = 0; i < 2; i++)
		(void)unlinkat(f->dirfd, names[i], 0);
	close(f->dirfd);
	rmdir(f->dir);
	free(f);
	return 0;
}

static struct journal *
jopen(struct fx *f, uint64_t max)
{
	struct journal *j = NULL;
	const char *why = NULL;

	assert_int_equal(journal_open(f->dirfd, "r1", max, &j, &why), 0);
	assert_non_null(j);
	return j;
}

static int
memfd_with(const char *data)
{
	int fd = memfd_create("body", MFD_CLOEXEC);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, strlen(data)), (ssize_t)strlen(data));
	return fd;
}

/* A STORE-like record without literal. */
static uint64_t
append_store(struct journal *j, const char *user)
{
	static const char line[] = "STORE a.example 9 bob INBOX "
				   "0190f3a2c0017a3b5e1f00c4a9d2b7e3 (+\\Seen)";
	struct journal_rec rec = {
		.origin = "a.example", .peer = "", .user = user, .mailbox = "INBOX",
		.line = line, .line_len = sizeof(line) - 1, .body_fd = -1,
	};
	uint64_t seq = 0;

	assert_int_equal(journal_append(j, &rec, &seq), 0);
	return seq;
}

static uint64_t
append_save(struct journal *j, int body_fd, uint64_t body_size)
{
	static const char line[] = "SAVE a.example 17 alice INBOX "
				   "0190f3a2b4c8d2a1e5f6a7b8c9d0e1f2 42 1718000000 () {16}";
	struct journal_rec rec = {
		.origin = "a.example", .peer = "c.example", .user = "alice",
		.mailbox = "INBOX", .line = line, .line_len = sizeof(line) - 1,
		.prefix = "Head: x\r\n", .prefix_len = 9,
		.body_fd = body_fd, .body_size = body_size,
	};
	uint64_t seq = 0;

	assert_int_equal(journal_append(j, &rec, &seq), 0);
	return seq;
}

static off_t
file_size(struct fx *f, const char *name)
{
	struct stat st;

	assert_int_equal(fstatat(f->dirfd, name, &st, 0), 0);
	return st.st_size;
}

/* name in the test directory, opened read-write with extra flags. */
static int
open_rw(struct fx *f, const char *name, int flags)
{
	int fd = openat(f->dirfd, name, O_RDWR | O_CLOEXEC | flags, 0600);

	assert_true(fd >= 0);
	return fd;
}

/*
 * Appends STOREs for the first n of bob, carol, dave and syncs.  Returns
 * the offset where the second record starts.
 */
static uint64_t
append_stores_synced(struct journal *j, size_t n)
{
	static const char *const users[] = { "bob", "carol", "dave" };
	uint64_t second = 0;

	assert_true(n >= 2 && n <= 3);
	for (size_t i = 0; i < n; i++) {
		append_store(j, users[i]);
		if (i == 0)
			second = journal_size(j);
	}
	assert_int_equal(journal_sync(j), 0);
	return second;
}

/* Appends a STORE for bob, then a SAVE with a 7-octet body.  Returns the
 * offset where the SAVE record starts. */
static uint64_t
append_store_and_save(struct journal *j)
{
	int fd = memfd_with("Body.\r\n");
	uint64_t first_end;

	append_store(j, "bob");
	first_end = journal_size(j);
	append_save(j, fd, 7);
	close(fd);
	return first_end;
}

/* Reopened, the journal still holds records and nothing is acked. */
static void
assert_reopens_unacked(struct fx *f)
{
	struct journal *j = jopen(f, 0);

	assert_int_equal(journal_acked(j), 0);
	assert_true(journal_size(j) > 0);
	journal_free(&j);
}

static void
test_append_and_read_back(void **state)
{
	struct fx *f = *state;
	struct journal *j = jopen(f, 0);
	struct journal_entry e;
	char lit[32] = "";
	int fd = memfd_with("Body.\r\n");

	assert_int_equal(append_store(j, "bob"), 1);
	assert_int_equal(append_save(j, fd, 7), 2);
	assert_int_equal(journal_sync(j), 0);
	assert_int_equal(journal_size(j), (uint64_t)file_size(f, "r1.journal"));

	assert_int_equal(journal_read(j, 0, &e), 0);
	assert_int_equal(e.seq, 1);
	assert_string_equal(e.user, "bob");
	assert_string_equal(e.origin, "a.example");
	assert_string_equal(e.peer, "");
	assert_int_equal(e.literal_len, 0);
	assert_true(strncmp(e.line, "STORE ", 6) == 0);

	assert_int_equal(journal_read(j, e.next_off, &e), 0);
	assert_int_equal(e.seq, 2);
	assert_string_equal(e.peer, "c.example");
	assert_string_equal(e.mailbox, "INBOX");
	assert_int_equal(e.literal_len, 16);
	assert_int_equal(e.line[e.line_len - 1], '}');
	assert_int_equal(pread(journal_fd(j), lit, e.literal_len, (off_t)e.literal_off), 16);
	assert_memory_equal(lit, "Head: x\r\nBody.\r\n", 16);
	assert_int_equal(e.next_off, journal_size(j));

	assert_int_equal(journal_read(j, e.next_off, &e), -1);
	assert_int_equal(errno, ENODATA);
	close(fd);
	journal_free(&j);
	assert_null(j);
}

static void
test_short_body_is_not_appended(void **state)
{
	struct fx *f = *state;
	struct journal *j = jopen(f, 0);
	struct journal_rec rec = {
		.origin = "a", .peer = "", .user = "u", .mailbox = "INBOX",
		.line = "SAVE x {100}", .line_len = 12, .body_fd = -1,
	};
	uint64_t seq;
	int fd = memfd_with("short");

	rec.body_fd = fd;
	rec.body_size = 100;
	assert_int_equal(journal_append(j, &rec, &seq), -1);
	assert_int_equal(errno, EIO);
	assert_int_equal(journal_size(j), 0);
	assert_int_equal(file_size(f, "r1.journal"), 0);
	close(fd);
	journal_free(&j);
}

static void
test_torn_tail_is_cut(void **state)
{
	struct fx *f = *state;
	struct journal *j = jopen(f, 0);
	struct journal_entry e;
	uint64_t first_end = append_store_and_save(j);
	int fd;

	assert_int_equal(journal_sync(j), 0);
	journal_free(&j);

	/* the second record lost its last octets */
	fd = open_rw(f, "r1.journal", 0);
	assert_int_equal(ftruncate(fd, file_size(f, "r1.journal") - 3), 0);
	close(fd);

	j = jopen(f, 0);
	assert_int_equal(journal_size(j), first_end);
	assert_int_equal(file_size(f, "r1.journal"), (off_t)first_end);
	assert_int_equal(journal_read(j, 0, &e), 0);
	assert_string_equal(e.user, "bob");
	/* the next record gets the next seq after the kept one */
	assert_int_equal(append_store(j, "carol"), 2);
	journal_free(&j);
}

static void
test_corrupt_record_is_cut(void **state)
{
	struct fx *f = *state;
	struct journal *j = jopen(f, 0);
	uint64_t first_end = append_store_and_save(j);
	uint64_t second_end = journal_size(j);
	char x = 'X';
	int fd;

	append_store(j, "carol");
	assert_int_equal(journal_sync(j), 0);
	journal_free(&j);

	/* flip an octet of the second record's literal: its CRC fails, it and
	 * everything after it is cut */
	fd = open_rw(f, "r1.journal", 0);
	assert_int_equal(pwrite(fd, &x, 1, (off_t)second_end - 3), 1);
	close(fd);

	j = jopen(f, 0);
	assert_int_equal(journal_size(j), first_end);
	journal_free(&j);
}

static void
test_garbage_file_is_emptied(void **state)
{
	struct fx *f = *state;
	struct journal *j;
	int fd = open_rw(f, "r1.journal", O_CREAT);

	assert_int_equal(write(fd, "not a journal at all, just text\n", 32), 32);
	close(fd);
	j = jopen(f, 0);
	assert_int_equal(journal_size(j), 0);
	assert_int_equal(journal_acked(j), 0);
	journal_free(&j);
}

static void
test_resume_from_acked_offset(void **state)
{
	struct fx *f = *state;
	struct journal *j = jopen(f, 0);
	struct journal_entry e;
	bool trunc = true;
	uint64_t second = append_stores_synced(j, 3);

	journal_set_acked(j, second);
	assert_int_equal(journal_flush_acked(j, &trunc), 0);
	assert_false(trunc);
	journal_free(&j);

	j = jopen(f, 0);
	assert_int_equal(journal_acked(j), second);
	assert_int_equal(journal_read(j, journal_acked(j), &e), 0);
	assert_string_equal(e.user, "carol");
	assert_int_equal(e.seq, 2);
	assert_int_equal(journal_next_seq(j), 4);
	journal_free(&j);
}

static void
test_acked_offset_inside_a_record_moves_back(void **state)
{
	struct fx *f = *state;
	struct journal *j = jopen(f, 0);
	bool trunc;
	uint64_t second = append_stores_synced(j, 3);

	/* the in-memory setter does not check boundaries; open does */
	journal_set_acked(j, second + 5);
	assert_int_equal(journal_flush_acked(j, &trunc), 0);
	journal_free(&j);

	j = jopen(f, 0);
	assert_int_equal(journal_acked(j), second);
	journal_free(&j);
}

static void
test_bad_acked_file_means_zero(void **state)
{
	struct fx *f = *state;
	struct journal *j = jopen(f, 0);
	int fd;

	(void)append_stores_synced(j, 2);
	journal_free(&j);
	fd = open_rw(f, "r1.acked", O_TRUNC);
	assert_int_equal(write(fd, "garbage garbage!", 16), 16);
	close(fd);
	assert_reopens_unacked(f);
}

static void
test_drained_journal_is_truncated(void **state)
{
	struct fx *f = *state;
	struct journal *j = jopen(f, 0);
	bool trunc = false;

	(void)append_stores_synced(j, 2);
	journal_set_acked(j, journal_size(j));
	assert_int_equal(journal_flush_acked(j, &trunc), 0);
	assert_true(trunc);
	assert_int_equal(journal_size(j), 0);
	assert_int_equal(journal_acked(j), 0);
	assert_int_equal(file_size(f, "r1.journal"), 0);
	/* seqs keep growing in this process (tags stay unique) */
	assert_int_equal(append_store(j, "dave"), 3);
	journal_free(&j);
	assert_reopens_unacked(f);
}

static void
test_max_size_refuses_append(void **state)
{
	struct fx *f = *state;
	struct journal *j = jopen(f, 0);
	uint64_t one, seq;
	struct journal_rec rec = {
		.origin = "a", .peer = "", .user = "u", .mailbox = "INBOX",
		.line = "CREATE a u INBOX", .line_len = 16, .body_fd = -1,
	};

	assert_int_equal(journal_append(j, &rec, &seq), 0);
	one = journal_size(j);
	journal_free(&j);

	/* room for exactly two records */
	j = jopen(f, 2 * one);
	assert_int_equal(journal_append(j, &rec, &seq), 0);
	assert_int_equal(journal_append(j, &rec, &seq), -1);
	assert_int_equal(errno, EFBIG);
	assert_int_equal(journal_size(j), 2 * one);
	assert_int_equal(file_size(f, "r1.journal"), (off_t)(2 * one));
	journal_free(&j);
}

static void
test_overlong_fields_are_refused(void **state)
{
	struct fx *f = *state;
	struct journal *j = jopen(f, 0);
	char user[PSEP_NAME_MAX + 8];
	uint64_t seq;
	struct journal_rec rec = {
		.origin = "a", .peer = "", .user = user, .mailbox = "INBOX",
		.line = "CREATE a u INBOX", .line_len = 16, .body_fd = -1,
	};

	memset(user, 'u', sizeof(user) - 1);
	user[sizeof(user) - 1] = '\0';
	assert_int_equal(journal_append(j, &rec, &seq), -1);
	assert_int_equal(errno, EINVAL);
	rec.user = "u";
	rec.line_len = REPL_MAXLINE + 1;
	assert_int_equal(journal_append(j, &rec, &seq), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(journal_size(j), 0);
	journal_free(&j);
}

static void
test_crc32_known_value(void **state)
{
	(void)state;
	/* the standard check value of CRC-32/ISO-HDLC */
	assert_int_equal(journal_crc32(0, "123456789", 9), 0xcbf43926u);
	assert_int_equal(journal_crc32(journal_crc32(0, "1234", 4), "56789", 5),
			 0xcbf43926u);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crc32_known_value),
		cmocka_unit_test_setup_teardown(test_append_and_read_back, setup, teardown),
		cmocka_unit_test_setup_teardown(test_short_body_is_not_appended, setup, teardown),
		cmocka_unit_test_setup_teardown(test_torn_tail_is_cut, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_record_is_cut, setup, teardown),
		cmocka_unit_test_setup_teardown(test_garbage_file_is_emptied, setup, teardown),
		cmocka_unit_test_setup_teardown(test_resume_from_acked_offset, setup, teardown),
		cmocka_unit_test_setup_teardown(test_acked_offset_inside_a_record_moves_back,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_acked_file_means_zero, setup, teardown),
		cmocka_unit_test_setup_teardown(test_drained_journal_is_truncated, setup, teardown),
		cmocka_unit_test_setup_teardown(test_max_size_refuses_append, setup, teardown),
		cmocka_unit_test_setup_teardown(test_overlong_fields_are_refused, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
