/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/storage/test_subscriptions.c - Dovecot's subscriptions file:
 * the parser (version 2 with TAB separators and \001 escapes, version 1
 * without a header, NUL, overlong lines, too many names), reading through
 * the root fd (symlink, size bound), and subscribe / unsubscribe through
 * subscriptions.lock keeping the version and the other lines.
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

#include "storage/storage.h"
#include "tests/unit/storage/util.h"

#define N_ELEMENTS(a) (sizeof(a) / sizeof((a)[0]))

struct fixture {
	struct tu_tree tree;
	char md[PATH_MAX];
	int root_fd;
};

static int
setup(void **state)
{
	struct fixture *f = tu_tree_new(sizeof(*f));

	snprintf(f->md, sizeof(f->md), "%.4000s/Maildir", f->tree.root);
	if (mkdir(f->md, 0700) < 0)
		return -1;
	f->root_fd = open(f->md, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	*state = f;
	return f->root_fd < 0 ? -1 : 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	close(f->root_fd);
	return tu_tree_teardown(state);
}

static void
put(struct fixture *f, const void *content, size_t len)
{
	assert_int_equal(tu_write_file(tu_path("%s/subscriptions", f->md),
				       content, len), 0);
}

static char *
slurp(const char *path)
{
	char *buf = NULL;
	ssize_t n = tu_read_file(path, &buf);

	assert_true(n >= 0);
	buf[n] = '\0';
	return buf;
}

static void
assert_file(struct fixture *f, const char *want)
{
	char *buf = slurp(tu_path("%s/subscriptions", f->md));

	assert_string_equal(buf, want);
	free(buf);
	assert_int_equal(access(tu_path("%s/subscriptions.lock", f->md), F_OK),
			 -1);
}

/* ---- parser ----------------------------------------------------------- */

static void
test_subs_parse_table(void **state)
{
	static const struct {
		const char *text;
		unsigned version;
		size_t count;
		const char *names[3];
	} cases[] = {
		{ "V\t2\n\nArchive\n", 2, 1, { "Archive" } },
		{ "V\t2\n\n", 2, 0, { NULL } },
		{ "V\t2\n\nINBOX\nA\tB\tC\nSent\n", 2, 3,
		  { "INBOX", "A.B.C", "Sent" } },
		{ "V\t2\n\na\001tb\nx\0011y\nc\001rd\001n\n", 2, 3,
		  { "a\tb", "x\001y", "c\rd\n" } },
		{ "V\t2\n\nA\n\n\nB", 2, 2, { "A", "B" } },
		/* version 1: raw names, no header */
		{ "Archive\nA.B\n", 1, 2, { "Archive", "A.B" } },
		{ "V\t2\nA\n", 1, 2, { "V\t2", "A" } },
		{ "", 1, 0, { NULL } },
	};
	struct store_subs s;
	size_t i, j;

	(void)state;
	for (i = 0; i < N_ELEMENTS(cases); i++) {
		assert_int_equal(store_subs_parse(cases[i].text,
						  strlen(cases[i].text), '.',
						  &s), 0);
		if (s.version != cases[i].version || s.count != cases[i].count)
			fail_msg("case %zu: version %u count %zu", i, s.version,
				 s.count);
		for (j = 0; j < s.count; j++)
			assert_string_equal(s.names[j], cases[i].names[j]);
		store_subs_free(&s);
		assert_int_equal(s.count, 0);
	}
	store_subs_free(NULL);
}

static void
test_subs_parse_malformed(void **state)
{
	struct store_subs s;
	char *buf = malloc(STORE_SUBS_MAX_FILE);
	size_t len, i;

	(void)state;
	assert_int_equal(store_subs_parse("V\t2\n\nA\0B\n", 10, '.', &s), -1);
	assert_int_equal(errno, EINVAL);
	/* the longest line passes, one more octet fails */
	memcpy(buf, "V\t2\n\n", 5);
	memset(buf + 5, 'x', STORE_SUBS_MAX_LINE);
	buf[5 + STORE_SUBS_MAX_LINE] = '\n';
	assert_int_equal(store_subs_parse(buf, 6 + STORE_SUBS_MAX_LINE, '.', &s),
			 0);
	assert_int_equal(s.count, 1);
	store_subs_free(&s);
	buf[5 + STORE_SUBS_MAX_LINE] = 'x';
	assert_int_equal(store_subs_parse(buf, 6 + STORE_SUBS_MAX_LINE, '.', &s),
			 -1);
	assert_int_equal(errno, EMSGSIZE);
	/* too many names */
	len = 5;
	for (i = 0; i <= STORE_SUBS_MAX_NAMES; i++)
		len += (size_t)snprintf(buf + len, 16, "m%zu\n", i);
	assert_int_equal(store_subs_parse(buf, len, '.', &s), -1);
	assert_int_equal(errno, E2BIG);
	len -= strlen("m10000\n");
	assert_int_equal(store_subs_parse(buf, len, '.', &s), 0);
	assert_int_equal(s.count, STORE_SUBS_MAX_NAMES);
	store_subs_free(&s);
	free(buf);
}

/* ---- reading ---------------------------------------------------------- */

static void
test_subs_read_missing_symlink_too_big(void **state)
{
	struct fixture *f = *state;
	struct store_subs s;
	char *big;

	assert_int_equal(store_subs_read(f->root_fd, '.', &s), 0);
	assert_int_equal(s.count, 0);
	assert_int_equal(s.version, 2);

	assert_int_equal(tu_write_file(tu_path("%s/target", f->tree.root),
				       "V\t2\n\nX\n", 7), 0);
	assert_int_equal(symlink(tu_path("%s/target", f->tree.root),
				 tu_path("%s/subscriptions", f->md)), 0);
	assert_int_equal(store_subs_read(f->root_fd, '.', &s), -1);
	assert_int_equal(errno, ELOOP);
	assert_int_equal(store_subs_set(f->root_fd, '.', "A", true, NULL), -1);
	assert_int_equal(errno, ELOOP);
	assert_int_equal(access(tu_path("%s/subscriptions.lock", f->md), F_OK),
			 -1);
	assert_int_equal(unlink(tu_path("%s/subscriptions", f->md)), 0);

	big = malloc(STORE_SUBS_MAX_FILE + 1);
	memset(big, '\n', STORE_SUBS_MAX_FILE + 1);
	put(f, big, STORE_SUBS_MAX_FILE + 1);
	assert_int_equal(store_subs_read(f->root_fd, '.', &s), -1);
	assert_int_equal(errno, EFBIG);
	free(big);
}

/* ---- subscribe / unsubscribe ------------------------------------------ */

static void
test_subs_set_round_trip(void **state)
{
	struct fixture *f = *state;
	struct store_subs s;
	struct stat a, b;
	bool changed;

	assert_int_equal(store_subs_set(f->root_fd, '.', "Archive", true,
					&changed), 0);
	assert_true(changed);
	assert_file(f, "V\t2\n\nArchive\n");
	assert_int_equal(stat(tu_path("%s/subscriptions", f->md), &a), 0);
	assert_int_equal(a.st_mode & 0777, 0600);
	/* no change: the file stays, the lock goes */
	assert_int_equal(store_subs_set(f->root_fd, '.', "Archive", true,
					&changed), 0);
	assert_false(changed);
	assert_int_equal(store_subs_set(f->root_fd, '.', "Nope", false,
					&changed), 0);
	assert_false(changed);
	assert_int_equal(stat(tu_path("%s/subscriptions", f->md), &b), 0);
	assert_true(a.st_ino == b.st_ino);
	assert_file(f, "V\t2\n\nArchive\n");

	assert_int_equal(store_subs_set(f->root_fd, '.', "A.B", true, NULL), 0);
	assert_int_equal(store_subs_set(f->root_fd, '.', "inbox", true, NULL), 0);
	assert_file(f, "V\t2\n\nArchive\nA\tB\nINBOX\n");
	assert_int_equal(store_subs_read(f->root_fd, '.', &s), 0);
	assert_int_equal(s.count, 3);
	assert_true(store_subs_contains(&s, "A.B"));
	assert_true(store_subs_contains(&s, "Inbox"));
	assert_false(store_subs_contains(&s, "A"));
	store_subs_free(&s);

	assert_int_equal(store_subs_set(f->root_fd, '.', "Archive", false,
					&changed), 0);
	assert_true(changed);
	assert_int_equal(store_subs_set(f->root_fd, '.', "INBOX", false, NULL), 0);
	assert_file(f, "V\t2\n\nA\tB\n");
	/* with '/' as the separator */
	assert_int_equal(store_subs_set(f->root_fd, '/', "x/y", true, NULL), 0);
	assert_file(f, "V\t2\n\nA\tB\nx\ty\n");
}

static void
test_subs_set_keeps_version_and_other_lines(void **state)
{
	struct fixture *f = *state;

	put(f, "Old\nA.B\n", 8);
	assert_int_equal(store_subs_set(f->root_fd, '.', "New", true, NULL), 0);
	assert_file(f, "Old\nA.B\nNew\n");
	assert_int_equal(store_subs_set(f->root_fd, '.', "Old", false, NULL), 0);
	assert_file(f, "A.B\nNew\n");

	put(f, "V\t2\n\nx\0011y\n\na\001tb\n", 16);
	assert_int_equal(store_subs_set(f->root_fd, '.', "z", true, NULL), 0);
	assert_file(f, "V\t2\n\nx\0011y\na\001tb\nz\n");
}

static void
test_subs_set_rejects_bad_names(void **state)
{
	static const char *const bad[] = { "", "a\tb", "a\nb", "a\rb", "a\001" };
	struct fixture *f = *state;
	size_t i;

	for (i = 0; i < N_ELEMENTS(bad); i++) {
		if (store_subs_set(f->root_fd, '.', bad[i], true, NULL) != -1 ||
		    errno != EINVAL)
			fail_msg("case %zu accepted", i);
	}
	assert_int_equal(tu_count_entries(f->md), 0);
}

static void
test_subs_set_stale_lock_of_dead_process_is_taken(void **state)
{
	struct fixture *f = *state;
	struct timespec ts[2];
	char host[256], text[300];
	int fd;

	/* a lock whose pid is ours from before: taken over at once */
	gethostname(host, sizeof(host));
	host[sizeof(host) - 1] = '\0';
	snprintf(text, sizeof(text), "%ld:%s", (long)getpid(), host);
	assert_int_equal(tu_write_file(tu_path("%s/subscriptions.lock", f->md),
				       text, strlen(text)), 0);
	fd = open(tu_path("%s/subscriptions.lock", f->md), O_RDONLY | O_CLOEXEC);
	ts[0].tv_sec = ts[1].tv_sec = time(NULL) - 10;
	ts[0].tv_nsec = ts[1].tv_nsec = 0;
	assert_int_equal(futimens(fd, ts), 0);
	close(fd);
	assert_int_equal(store_subs_set(f->root_fd, '.', "A", true, NULL), 0);
	assert_file(f, "V\t2\n\nA\n");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_subs_parse_table),
		cmocka_unit_test(test_subs_parse_malformed),
		cmocka_unit_test_setup_teardown(
			test_subs_read_missing_symlink_too_big, setup, teardown),
		cmocka_unit_test_setup_teardown(test_subs_set_round_trip,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_subs_set_keeps_version_and_other_lines,
			setup, teardown),
		cmocka_unit_test_setup_teardown(test_subs_set_rejects_bad_names,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_subs_set_stale_lock_of_dead_process_is_taken,
			setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
