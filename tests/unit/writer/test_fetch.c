/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/writer/test_fetch.c - the FETCH content a writer hands on
 * (writer/fetch.c): a sealed copy of the message file, or a per-message
 * error when the file is too large or changes while it is copied (read is
 * wrapped to change the file between two reads, as a user could).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "writer/writer_int.h"

static int grow_fd = -1;       /* read() of this fd appends to it first */

ssize_t __real_read(int fd, void *buf, size_t n);
ssize_t __wrap_read(int fd, void *buf, size_t n);
/* With _FORTIFY_SOURCE a read into a buffer of known size may be this. */
ssize_t __real___read_chk(int fd, void *buf, size_t n, size_t buflen);
ssize_t __wrap___read_chk(int fd, void *buf, size_t n, size_t buflen);

static void
grow_first(int fd)
{
	if (fd == grow_fd) {
		grow_fd = -1;
		assert_int_equal(pwrite(fd, "more", 4, 1 << 20), 4);
	}
}

ssize_t
__wrap_read(int fd, void *buf, size_t n)
{
	grow_first(fd);
	return __real_read(fd, buf, n);
}

ssize_t
__wrap___read_chk(int fd, void *buf, size_t n, size_t buflen)
{
	grow_first(fd);
	return __real___read_chk(fd, buf, n, buflen);
}

/* A temporary regular file holding len bytes of text. */
static int
tmp_file(const char *text, size_t len)
{
	char path[] = "/tmp/stowd-fetch-XXXXXX";
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	unlink(path);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	return fd;
}

static void
test_copy_is_sealed_and_exact(void **state)
{
	static const char text[] = "Subject: x\n\nbody\n";
	int fd = tmp_file(text, sizeof(text) - 1), copy = -1, seals;
	const char *why = NULL;
	uint64_t size = 0;
	struct stat st;
	char buf[64];

	(void)state;
	assert_int_equal(writer_fetch_seal(fd, 1000, &copy, &size, &why), 0);
	assert_int_equal(size, sizeof(text) - 1);
	seals = fcntl(copy, F_GET_SEALS);
	assert_int_equal(seals & (F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK),
			 F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK);
	assert_int_equal(read(copy, buf, sizeof(buf)), (ssize_t)(sizeof(text) - 1));
	assert_memory_equal(buf, text, sizeof(text) - 1);
	/* the user's file changes afterwards: the copy does not */
	assert_int_equal(ftruncate(fd, 0), 0);
	assert_int_equal(fstat(copy, &st), 0);
	assert_int_equal(st.st_size, (off_t)(sizeof(text) - 1));
	close(copy);
	close(fd);
}

static void
test_file_changed_while_read_is_estale(void **state)
{
	int fd = tmp_file("0123456789", 10), copy = -1;
	const char *why = NULL;
	uint64_t size = 0;

	(void)state;
	grow_fd = fd;
	assert_int_equal(writer_fetch_seal(fd, 1 << 22, &copy, &size, &why), -1);
	assert_int_equal(errno, ESTALE);
	assert_int_equal(copy, -1);
	assert_string_equal(why, "message file changed while it was read");
	close(fd);
}

static void
test_file_over_the_limit_is_efbig(void **state)
{
	int fd = tmp_file("0123456789", 10), copy = -1;
	const char *why = NULL;
	uint64_t size = 0;

	(void)state;
	assert_int_equal(writer_fetch_seal(fd, 9, &copy, &size, &why), -1);
	assert_int_equal(errno, EFBIG);
	assert_int_equal(copy, -1);
	close(fd);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_copy_is_sealed_and_exact),
		cmocka_unit_test(test_file_changed_while_read_is_estale),
		cmocka_unit_test(test_file_over_the_limit_is_efbig),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
