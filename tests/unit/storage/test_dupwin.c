/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/storage/test_dupwin.c - the duplicate window of a mailbox
 * (storage/dupwin.c): keys from Message-ID and the text after the header,
 * the look-up inside and outside the window, the size bound, hostile
 * files.
 *
 * Runs in:  the test process only (a temporary directory).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/storage.h"
#include "tests/unit/storage/util.h"

#define G1 "0190f3a2c1aa7a3b77e0c1d2e3f40001"
#define G2 "0190f3a2c1aa7a3b77e0c1d2e3f40002"

static int
memfd_of(const char *text)
{
	int fd = memfd_create("t", MFD_CLOEXEC);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	return fd;
}

static int
key_of(const char *text, char key[STORE_DUP_KEY_LEN + 1])
{
	int fd = memfd_of(text), r;

	r = store_dup_key(fd, strlen(text), key);
	close(fd);
	return r;
}

static void
test_key_from_message_id_and_text(void **state)
{
	char a[65], b[65], c[65], d[65], e[65];

	(void)state;
	assert_int_equal(key_of("Message-ID: <1@x>\nSubject: s\n\nbody\n", a), 0);
	assert_int_equal(strlen(a), 64);
	/* trace headers in front (a replicated SAVE), folding, case: same */
	assert_int_equal(key_of("Return-Path: <s@x>\nDelivered-To: u@x\n"
				"message-id:\n  <1@x>  \nSubject: s\n\nbody\n", b), 0);
	assert_string_equal(a, b);
	/* CRLF header, same text after it */
	assert_int_equal(key_of("Message-ID: <1@x>\r\n\r\nbody\n", c), 0);
	assert_string_equal(a, c);
	/* another body or another id: another key */
	assert_int_equal(key_of("Message-ID: <1@x>\n\nbody2\n", d), 0);
	assert_string_not_equal(a, d);
	assert_int_equal(key_of("Message-ID: <2@x>\n\nbody\n", e), 0);
	assert_string_not_equal(a, e);
	/* no Message-ID (or only in the body): never a key */
	assert_int_equal(key_of("Subject: s\n\nbody\n", e), -1);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(key_of("Subject: s\n\nMessage-ID: <1@x>\n", e), -1);
	assert_int_equal(key_of("Message-ID:   \n\nbody\n", e), -1);
}

static void
test_find_within_window_only(void **state)
{
	char dir[64], key[65], other[65], guid[33];
	int dfd, fd;

	(void)state;
	tu_mkdtemp(dir);
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(dfd >= 0);
	assert_int_equal(key_of("Message-ID: <1@x>\n\nb\n", key), 0);
	assert_int_equal(key_of("Message-ID: <2@x>\n\nb\n", other), 0);
	fd = store_dup_open(dfd);
	assert_true(fd >= 0);
	assert_int_equal(store_dup_find(fd, key, 1000, 60, guid), 0);
	assert_int_equal(store_dup_record(fd, key, G1, 1000, 60), 0);
	assert_int_equal(store_dup_record(fd, other, G2, 1001, 60), 0);
	assert_int_equal(store_dup_find(fd, key, 1060, 60, guid), 1);
	assert_string_equal(guid, G1);
	assert_int_equal(store_dup_find(fd, other, 1010, 60, guid), 1);
	assert_string_equal(guid, G2);
	assert_int_equal(store_dup_find(fd, key, 1061, 60, guid), 0);  /* expired */
	assert_int_equal(store_dup_find(fd, key, 999, 60, guid), 0);   /* future */
	close(fd);
	/* a second open finds what the first wrote (kept across restarts) */
	fd = store_dup_open(dfd);
	assert_int_equal(store_dup_find(fd, key, 1030, 60, guid), 1);
	close(fd);
	close(dfd);
	tu_rmtree(dir);
}

static void
test_file_stays_bounded(void **state)
{
	char dir[64], key[65], text[64], guid[33];
	struct stat st;
	int dfd, fd, i;

	(void)state;
	tu_mkdtemp(dir);
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	fd = store_dup_open(dfd);
	assert_true(fd >= 0);
	for (i = 0; i < STORE_DUP_MAX + 2000; i++) {
		snprintf(text, sizeof(text), "Message-ID: <%d@x>\n\nb\n", i);
		assert_int_equal(key_of(text, key), 0);
		assert_int_equal(store_dup_record(fd, key, G1, 5000, 3600), 0);
	}
	assert_int_equal(fstat(fd, &st), 0);
	assert_true(st.st_size <= STORE_DUP_MAX_FILE);
	/* the newest are kept */
	assert_int_equal(store_dup_find(fd, key, 5000, 3600, guid), 1);
	close(fd);
	close(dfd);
	tu_rmtree(dir);
}

static void
test_hostile_files_refused(void **state)
{
	char dir[64], key[65], guid[33];
	int dfd, fd;

	(void)state;
	tu_mkdtemp(dir);
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_int_equal(symlinkat("/etc/passwd", dfd, STORE_DUP_FILE), 0);
	assert_int_equal(store_dup_open(dfd), -1);
	assert_int_equal(errno, ELOOP);
	assert_int_equal(unlinkat(dfd, STORE_DUP_FILE, 0), 0);
	assert_int_equal(mkdirat(dfd, STORE_DUP_FILE, 0700), 0);
	assert_int_equal(store_dup_open(dfd), -1);
	assert_int_equal(unlinkat(dfd, STORE_DUP_FILE, AT_REMOVEDIR), 0);
	/* garbage lines are skipped, and a torn last line with a NUL */
	assert_int_equal(tu_write_file(tu_path("%s/%s", dir, STORE_DUP_FILE),
				       "junk\n\x01\x02 3 4\nzz 1 " G1, 50), 0);
	assert_int_equal(key_of("Message-ID: <1@x>\n\nb\n", key), 0);
	fd = store_dup_open(dfd);
	assert_true(fd >= 0);
	assert_int_equal(store_dup_find(fd, key, 10, 60, guid), 0);
	assert_int_equal(store_dup_record(fd, key, G2, 10, 60), 0);
	assert_int_equal(store_dup_find(fd, key, 10, 60, guid), 1);
	close(fd);
	close(dfd);
	tu_rmtree(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_key_from_message_id_and_text),
		cmocka_unit_test(test_find_within_window_only),
		cmocka_unit_test(test_file_stays_bounded),
		cmocka_unit_test(test_hostile_files_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
