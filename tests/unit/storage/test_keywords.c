/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/storage/test_keywords.c - dovecot-keywords: the parser on
 * valid and malformed lines, reading through the mailbox fd (symlink,
 * FIFO, size bound), adding keywords (first free index, the file written
 * through dovecot-keywords.lock, growing mtime, 26 at most), letters <->
 * names, and the dot-locks (dovecot-uidlist.lock: held, timeout, stale by
 * a dead pid or by age, release of a lock that is no longer ours).
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
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "storage/storage.h"
#include "tests/unit/storage/util.h"

#define N_ELEMENTS(a) (sizeof(a) / sizeof((a)[0]))

struct fixture {
	struct tu_tree tree;
	char box[PATH_MAX];
	int box_fd;
};

static int
setup(void **state)
{
	struct fixture *f = tu_tree_new(sizeof(*f));

	snprintf(f->box, sizeof(f->box), "%.4000s/Maildir", f->tree.root);
	if (mkdir(f->box, 0700) < 0)
		return -1;
	f->box_fd = open(f->box, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	*state = f;
	return f->box_fd < 0 ? -1 : 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	close(f->box_fd);
	return tu_tree_teardown(state);
}

static void
put(struct fixture *f, const char *rel, const void *content, size_t len)
{
	assert_int_equal(tu_write_file(tu_path("%s/%s", f->box, rel), content,
				       len), 0);
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
set_mtime(const char *path, time_t t)
{
	struct timespec ts[2] = { { t, 0 }, { t, 0 } };

	assert_int_equal(utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW), 0);
}

/* ---- parser ----------------------------------------------------------- */

static void
test_keywords_parse_table(void **state)
{
	static const struct {
		const char *text;
		size_t len;             /* 0: strlen */
		const char *want[4];    /* names of a, b, c, d ("" free) */
	} cases[] = {
		{ "0 $Important\n1 $Later\n", 0, { "$Important", "$Later", "", "" } },
		{ "1 b\n0 a\n3 d\n", 0, { "a", "b", "", "d" } },
		/* last line without '\n' still counts */
		{ "0 a\n1 b", 0, { "a", "b", "", "" } },
		/* skipped: no space, bad index, index >= 26, empty name */
		{ "junk\n0 a\nx b\n26 c\n99999999999999999999 d\n2 \n", 0,
		  { "a", "", "", "" } },
		/* a duplicate name is skipped */
		{ "0 a\n1 a\n2 c\n", 0, { "a", "", "c", "" } },
		/* control bytes and NUL in a name */
		{ "0 a\tb\n1 ok\n2 a\rb\n", 0, { "", "ok", "", "" } },
		{ "0 a\0b\n1 ok\n", 11, { "", "ok", "", "" } },
		/* leading space: no index */
		{ " 0 a\n1 b\n", 0, { "", "b", "", "" } },
		{ "", 0, { "", "", "", "" } },
		{ "\n\n\n", 0, { "", "", "", "" } },
	};
	struct store_keywords kw;
	size_t i, j, len;

	(void)state;
	for (i = 0; i < N_ELEMENTS(cases); i++) {
		len = cases[i].len ? cases[i].len : strlen(cases[i].text);
		memset(&kw, 'x', sizeof(kw));
		assert_int_equal(store_keywords_parse(cases[i].text, len, &kw), 0);
		for (j = 0; j < 4; j++)
			if (strcmp(kw.names[j], cases[i].want[j]) != 0)
				fail_msg("case %zu: [%zu] \"%s\"", i, j,
					 kw.names[j]);
		for (j = 4; j < STORE_KEYWORDS_MAX; j++)
			assert_string_equal(kw.names[j], "");
	}
}

static void
test_keywords_parse_overlong_name_is_skipped(void **state)
{
	struct store_keywords kw;
	char text[600];

	(void)state;
	memcpy(text, "0 ", 2);
	memset(text + 2, 'k', 256);
	memcpy(text + 258, "\n1 short\n", 10);
	assert_int_equal(store_keywords_parse(text, strlen(text), &kw), 0);
	assert_string_equal(kw.names[0], "");
	assert_string_equal(kw.names[1], "short");
	text[257] = '\n';      /* 255 octets: the longest name */
	assert_int_equal(store_keywords_parse(text, strlen(text), &kw), 0);
	assert_int_equal(strlen(kw.names[0]), 255);
}

/* ---- reading ---------------------------------------------------------- */

static void
test_keywords_read_missing_symlink_fifo_and_too_big(void **state)
{
	struct fixture *f = *state;
	struct store_keywords kw;
	char *big;

	assert_int_equal(store_keywords_read(f->box_fd, &kw), 0);
	assert_string_equal(kw.names[0], "");

	assert_int_equal(tu_write_file(tu_path("%s/target", f->tree.root),
				       "0 secret\n", 9), 0);
	assert_int_equal(symlink(tu_path("%s/target", f->tree.root),
				 tu_path("%s/dovecot-keywords", f->box)), 0);
	assert_int_equal(store_keywords_read(f->box_fd, &kw), -1);
	assert_int_equal(errno, ELOOP);
	assert_int_equal(unlink(tu_path("%s/dovecot-keywords", f->box)), 0);

	assert_int_equal(mkfifo(tu_path("%s/dovecot-keywords", f->box), 0600), 0);
	assert_int_equal(store_keywords_read(f->box_fd, &kw), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(unlink(tu_path("%s/dovecot-keywords", f->box)), 0);

	big = malloc(STORE_KEYWORDS_MAX_FILE + 1);
	memset(big, '\n', STORE_KEYWORDS_MAX_FILE + 1);
	put(f, "dovecot-keywords", big, STORE_KEYWORDS_MAX_FILE);
	assert_int_equal(store_keywords_read(f->box_fd, &kw), 0);
	put(f, "dovecot-keywords", big, STORE_KEYWORDS_MAX_FILE + 1);
	assert_int_equal(store_keywords_read(f->box_fd, &kw), -1);
	assert_int_equal(errno, EFBIG);
	free(big);
}

/* ---- adding ----------------------------------------------------------- */

static void
test_keywords_add_assigns_first_free_index(void **state)
{
	struct fixture *f = *state;
	struct store_keywords kw;
	struct stat a, b;
	char *buf;

	assert_int_equal(store_keywords_add(f->box_fd, "$Important", &kw), 'a');
	assert_int_equal(store_keywords_add(f->box_fd, "$Later", NULL), 'b');
	buf = slurp(tu_path("%s/dovecot-keywords", f->box));
	assert_string_equal(buf, "0 $Important\n1 $Later\n");
	free(buf);
	/* known: same letter, file untouched */
	assert_int_equal(stat(tu_path("%s/dovecot-keywords", f->box), &a), 0);
	assert_int_equal(store_keywords_add(f->box_fd, "$Later", &kw), 'b');
	assert_int_equal(stat(tu_path("%s/dovecot-keywords", f->box), &b), 0);
	assert_true(a.st_ino == b.st_ino);
	assert_string_equal(kw.names[0], "$Important");
	/* a gap is filled first */
	put(f, "dovecot-keywords", "0 a\n2 c\n", 8);
	assert_int_equal(store_keywords_add(f->box_fd, "new", NULL), 'b');
	buf = slurp(tu_path("%s/dovecot-keywords", f->box));
	assert_string_equal(buf, "0 a\n1 new\n2 c\n");
	free(buf);
	assert_int_equal(stat(tu_path("%s/dovecot-keywords", f->box), &a), 0);
	assert_int_equal(a.st_mode & 0777, 0600);
	assert_int_equal(tu_count_entries(f->box), 1);
}

static void
test_keywords_add_makes_mtime_grow(void **state)
{
	struct fixture *f = *state;
	time_t future = time(NULL) + 1000;
	struct stat st;

	put(f, "dovecot-keywords", "0 a\n", 4);
	set_mtime(tu_path("%s/dovecot-keywords", f->box), future);
	assert_int_equal(store_keywords_add(f->box_fd, "b", NULL), 'b');
	assert_int_equal(stat(tu_path("%s/dovecot-keywords", f->box), &st), 0);
	assert_true(st.st_mtime > future);
}

static void
test_keywords_add_26_then_enospc(void **state)
{
	struct fixture *f = *state;
	char name[16];
	int i;

	for (i = 0; i < STORE_KEYWORDS_MAX; i++) {
		snprintf(name, sizeof(name), "k%d", i);
		assert_int_equal(store_keywords_add(f->box_fd, name, NULL),
				 'a' + i);
	}
	assert_int_equal(store_keywords_add(f->box_fd, "one-more", NULL), -1);
	assert_int_equal(errno, ENOSPC);
	assert_int_equal(store_keywords_add(f->box_fd, "k25", NULL), 'z');
}

static void
test_keywords_add_rejects_invalid_names(void **state)
{
	static const char *const bad[] = {
		"", "\\Seen", "a b", "a(b", "a)", "a{", "a%", "a*", "a\"",
		"a\\b", "a]", "a\tb", "a\x7f", "caf\xc3\xa9",
	};
	struct fixture *f = *state;
	char longname[300];
	size_t i;

	for (i = 0; i < N_ELEMENTS(bad); i++) {
		if (store_keywords_add(f->box_fd, bad[i], NULL) != -1 ||
		    errno != EINVAL)
			fail_msg("case %zu accepted", i);
	}
	memset(longname, 'x', 256);
	longname[256] = '\0';
	assert_int_equal(store_keywords_add(f->box_fd, longname, NULL), -1);
	longname[255] = '\0';
	assert_int_equal(store_keywords_add(f->box_fd, longname, NULL), 'a');
	assert_true(store_keyword_valid("$Label1"));
	assert_true(store_keyword_valid("NonJunk"));
}

static void
test_keywords_add_does_not_follow_symlinks(void **state)
{
	struct fixture *f = *state;
	char *buf;

	assert_int_equal(tu_write_file(tu_path("%s/target", f->tree.root),
				       "keep", 4), 0);
	/* a symlink as the file: refused */
	assert_int_equal(symlink(tu_path("%s/target", f->tree.root),
				 tu_path("%s/dovecot-keywords", f->box)), 0);
	assert_int_equal(store_keywords_add(f->box_fd, "a", NULL), -1);
	assert_int_equal(errno, ELOOP);
	assert_int_equal(unlink(tu_path("%s/dovecot-keywords", f->box)), 0);
	/* a symlink as the lock: removed, never written through */
	assert_int_equal(symlink(tu_path("%s/target", f->tree.root),
				 tu_path("%s/dovecot-keywords.lock", f->box)), 0);
	assert_int_equal(store_keywords_add(f->box_fd, "a", NULL), 'a');
	buf = slurp(tu_path("%s/target", f->tree.root));
	assert_string_equal(buf, "keep");
	free(buf);
	buf = slurp(tu_path("%s/dovecot-keywords", f->box));
	assert_string_equal(buf, "0 a\n");
	free(buf);
}

/* ---- letters and names ------------------------------------------------ */

static void
test_keywords_letters_and_names_round_trip(void **state)
{
	static const char *const names[] = { "$Later", "$Important", "NonJunk" };
	static const char *const unknown[] = { "$Important", "nope" };
	struct store_keywords kw;
	const char *got[STORE_KEYWORDS_MAX];
	char letters[STORE_KEYWORDS_MAX + 1];

	(void)state;
	store_keywords_parse("0 $Important\n1 $Later\n3 NonJunk\n", 33, &kw);
	assert_int_equal(store_keywords_letter(&kw, "$Later"), 'b');
	assert_int_equal(store_keywords_letter(&kw, "$later"), -1);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(store_keywords_letters(&kw, names, 3, letters,
						sizeof(letters)), 0);
	assert_string_equal(letters, "abd");
	assert_int_equal(store_keywords_letters(&kw, names, 3, letters, 3), -1);
	assert_int_equal(errno, ENAMETOOLONG);
	assert_int_equal(store_keywords_letters(&kw, unknown, 2, letters,
						sizeof(letters)), -1);
	assert_int_equal(errno, ENOENT);
	/* flags are skipped, letters without a keyword too */
	assert_int_equal(store_keywords_names(&kw, "FSabcd", got,
					      N_ELEMENTS(got)), 3);
	assert_string_equal(got[0], "$Important");
	assert_string_equal(got[1], "$Later");
	assert_string_equal(got[2], "NonJunk");
	assert_int_equal(store_keywords_names(&kw, "abd", got, 1), 1);
	assert_int_equal(store_keywords_names(&kw, "", got, 4), 0);
}

/* ---- dot-locks -------------------------------------------------------- */

static pid_t
dead_pid(void)
{
	pid_t pid = fork();
	int st;

	assert_true(pid >= 0);
	if (pid == 0)
		_exit(0);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	return pid;
}

static void
test_uidlist_lock_held_then_timeout_then_released(void **state)
{
	struct fixture *f = *state;
	struct store_dotlock a, b;
	char *buf, want[320], host[256];

	assert_int_equal(store_uidlist_lock(f->box_fd, 0, &a), 0);
	gethostname(host, sizeof(host));
	host[sizeof(host) - 1] = '\0';
	snprintf(want, sizeof(want), "%ld:%s", (long)getpid(), host);
	buf = slurp(tu_path("%s/dovecot-uidlist.lock", f->box));
	assert_string_equal(buf, want);
	free(buf);
	/* another process's fresh lock: not stale */
	assert_int_equal(unlink(tu_path("%s/dovecot-uidlist.lock", f->box)), 0);
	put(f, "dovecot-uidlist.lock", "1:other.host", 12);
	assert_int_equal(store_uidlist_lock(f->box_fd, 0, &b), -1);
	assert_int_equal(errno, EAGAIN);
	assert_int_equal(store_uidlist_lock(f->box_fd, 1, &b), -1);
	assert_int_equal(errno, EAGAIN);
	/* replaced by another: release leaves it alone */
	assert_int_equal(store_dotlock_touch(&a), -1);
	assert_int_equal(errno, ESTALE);
	assert_int_equal(store_dotlock_release(&a), -1);
	assert_int_equal(errno, ESTALE);
	assert_int_equal(access(tu_path("%s/dovecot-uidlist.lock", f->box), F_OK),
			 0);
	assert_int_equal(unlink(tu_path("%s/dovecot-uidlist.lock", f->box)), 0);
	assert_int_equal(store_uidlist_lock(f->box_fd, 0, &a), 0);
	assert_int_equal(store_dotlock_touch(&a), 0);
	assert_int_equal(store_dotlock_release(&a), 0);
	assert_int_equal(access(tu_path("%s/dovecot-uidlist.lock", f->box), F_OK),
			 -1);
	assert_int_equal(store_dotlock_release(&a), 0);
	assert_int_equal(store_dotlock_release(NULL), 0);
}

static void
test_uidlist_lock_stale_rules(void **state)
{
	struct fixture *f = *state;
	struct store_dotlock l;
	char text[320], host[256];
	const char *lock = tu_path("%s/dovecot-uidlist.lock", f->box);
	char lockpath[PATH_MAX];
	time_t now = time(NULL);

	snprintf(lockpath, sizeof(lockpath), "%s", lock);
	gethostname(host, sizeof(host));
	host[sizeof(host) - 1] = '\0';
	/* a dead pid of this host, older than 2 s: stale */
	snprintf(text, sizeof(text), "%ld:%s", (long)dead_pid(), host);
	put(f, "dovecot-uidlist.lock", text, strlen(text));
	set_mtime(lockpath, now - 10);
	assert_int_equal(store_uidlist_lock(f->box_fd, 0, &l), 0);
	assert_int_equal(store_dotlock_release(&l), 0);
	/* the same, but just created: not yet */
	put(f, "dovecot-uidlist.lock", text, strlen(text));
	assert_int_equal(store_uidlist_lock(f->box_fd, 0, &l), -1);
	assert_int_equal(errno, EAGAIN);
	/* a live pid (ours is taken over; pid 1 lives) */
	snprintf(text, sizeof(text), "1:%s", host);
	put(f, "dovecot-uidlist.lock", text, strlen(text));
	set_mtime(lockpath, now - 60);
	assert_int_equal(store_uidlist_lock(f->box_fd, 0, &l), -1);
	/* older than 120 s, the uidlist too: stale whoever holds it */
	put(f, "dovecot-uidlist", "3 V1 N1\n", 8);
	set_mtime(tu_path("%s/dovecot-uidlist", f->box), now - 500);
	set_mtime(lockpath, now - 121);
	assert_int_equal(store_uidlist_lock(f->box_fd, 0, &l), -1);
	/* (its ctime is now: utimensat changed it; Dovecot goes by the
	 * later of mtime and ctime, so this one is fresh) */
}

static void
test_dotlock_stale_by_age_is_taken_while_waiting(void **state)
{
	struct store_dotlock_set set = { .timeout_secs = 5, .stale_secs = 1,
					 .write_pid = true };
	struct fixture *f = *state;
	struct store_dotlock l;
	time_t start = time(NULL);

	put(f, "file.lock", "1:other.host", 12);
	assert_int_equal(store_dotlock_take(f->box_fd, "file", &set, &l), 0);
	assert_true(time(NULL) - start >= 1);
	assert_int_equal(store_dotlock_release(&l), 0);
	assert_int_equal(store_dotlock_take(f->box_fd, "a/b", &set, &l), -1);
	assert_int_equal(errno, ENAMETOOLONG);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keywords_parse_table),
		cmocka_unit_test(test_keywords_parse_overlong_name_is_skipped),
		cmocka_unit_test_setup_teardown(
			test_keywords_read_missing_symlink_fifo_and_too_big,
			setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_keywords_add_assigns_first_free_index,
			setup, teardown),
		cmocka_unit_test_setup_teardown(test_keywords_add_makes_mtime_grow,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_keywords_add_26_then_enospc,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_keywords_add_rejects_invalid_names, setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_keywords_add_does_not_follow_symlinks,
			setup, teardown),
		cmocka_unit_test(test_keywords_letters_and_names_round_trip),
		cmocka_unit_test_setup_teardown(
			test_uidlist_lock_held_then_timeout_then_released,
			setup, teardown),
		cmocka_unit_test_setup_teardown(test_uidlist_lock_stale_rules,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_dotlock_stale_by_age_is_taken_while_waiting,
			setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
