/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/privsep/test_lines.c - psep_lines: a sealed memfd of text
 * lines, read back the way its receiver reads it.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "privsep/privsep.h"

static void
test_lines_are_written_sealed_and_rewound(void **state)
{
	struct psep_lines l = { .fd = -1 };
	char buf[64];
	ssize_t n;

	(void)state;
	assert_int_equal(psep_lines_open(&l, "stowd-test-lines"), 0);
	assert_int_equal(psep_lines_add(&l, "alice", 5), 0);
	assert_int_equal(psep_lines_add(&l, "MAILBOX INBOX", 13), 0);
	assert_int_equal(psep_lines_seal(&l), 0);
	assert_int_equal(l.lines, 2);
	assert_int_equal(l.size, 20);
	/* the receiver reads from offset 0 and cannot change it */
	n = read(l.fd, buf, sizeof(buf));
	assert_int_equal(n, 20);
	assert_memory_equal(buf, "alice\nMAILBOX INBOX\n", 20);
	assert_int_equal(fcntl(l.fd, F_GET_SEALS),
			 F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL);
	assert_int_equal(write(l.fd, "x", 1), -1);
	assert_int_equal(errno, EPERM);
	close(l.fd);
}

static void
test_bad_lines_are_refused_and_not_written(void **state)
{
	struct psep_lines l = { .fd = -1 };
	char big[PSEP_LINES_LINE_MAX];

	(void)state;
	memset(big, 'a', sizeof(big));
	assert_int_equal(psep_lines_open(&l, "stowd-test-lines"), 0);
	assert_int_equal(psep_lines_add(&l, "", 0), -1);
	assert_int_equal(errno, EOVERFLOW);
	assert_int_equal(psep_lines_add(&l, "two\nlines", 9), -1);
	assert_int_equal(errno, EOVERFLOW);
	assert_int_equal(psep_lines_add(&l, big, sizeof(big)), -1);
	assert_int_equal(errno, EOVERFLOW);
	assert_int_equal(psep_lines_add(&l, big, sizeof(big) - 1), 0);
	assert_int_equal(l.lines, 1);
	assert_int_equal(lseek(l.fd, 0, SEEK_END), (off_t)sizeof(big));
	close(l.fd);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lines_are_written_sealed_and_rewound),
		cmocka_unit_test(test_bad_lines_are_refused_and_not_written),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
