/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/storage/test_walk.c - the safe directory walk: fds returned,
 * path forms, and symlinks anywhere below the base, once with openat2 and
 * once with the openat O_NOFOLLOW fallback (openat2 made to fail with
 * ENOSYS through a --wrap of syscall).  The fallback tests must run last:
 * the walk remembers that openat2 is missing.
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
#include <sys/syscall.h>
#include <unistd.h>

#include <cmocka.h>

#include "storage/storage_int.h"
#include "tests/unit/storage/util.h"

/* ---- openat2 switch --------------------------------------------------- */

static bool openat2_enosys;
static int openat2_calls;

long __real_syscall(long n, ...);
long __wrap_syscall(long n, ...);

/* storage/ calls syscall() for openat2 only. */
long
__wrap_syscall(long n, ...)
{
	va_list ap;
	long a[4];
	int i;

	if (n != SYS_openat2)
		abort();
	va_start(ap, n);
	for (i = 0; i < 4; i++)
		a[i] = va_arg(ap, long);
	va_end(ap);
	openat2_calls++;
	if (openat2_enosys) {
		errno = ENOSYS;
		return -1;
	}
	return __real_syscall(n, a[0], a[1], a[2], a[3]);
}

/* ---- fixture ---------------------------------------------------------- */

struct fixture {
	char root[PATH_MAX];
	char base[PATH_MAX];
	char outside[PATH_MAX];
	struct store_target target;
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	tu_mkdtemp(f->root);
	snprintf(f->base, sizeof(f->base), "%.4000s/base", f->root);
	snprintf(f->outside, sizeof(f->outside), "%.4000s/outside", f->root);
	if (mkdir(f->base, 0700) < 0 || mkdir(f->outside, 0700) < 0)
		return -1;
	f->target = (struct store_target){ .mail_base = f->base,
		.mail_rel = "Maildir", .mailbox = "INBOX", .uid = geteuid() };
	umask(022);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	tu_rmtree(f->root);
	free(f);
	return 0;
}

/* fd and path name the same directory. */
static void
same_dir(int fd, const char *path)
{
	struct stat a, b;

	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &a), 0);
	assert_int_equal(stat(path, &b), 0);
	assert_true(S_ISDIR(a.st_mode));
	assert_true(a.st_dev == b.st_dev && a.st_ino == b.st_ino);
	assert_int_equal(fcntl(fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
}

static void
test_walk_returns_fds_of_mailbox_tmp_new(void **state)
{
	struct fixture *f = *state;
	struct store_dirs d;

	assert_int_equal(store_dirs_open(&f->target, &d), 0);
	same_dir(d.box_fd, tu_path("%s/Maildir", f->base));
	same_dir(d.tmp_fd, tu_path("%s/Maildir/tmp", f->base));
	same_dir(d.new_fd, tu_path("%s/Maildir/new", f->base));
	store_dirs_close(&d);
	assert_int_equal(d.box_fd, -1);
	assert_int_equal(d.new_fd, -1);
	store_dirs_close(&d);
	store_dirs_close(NULL);

	f->target.mailbox = "Sent";
	assert_int_equal(store_dirs_open(&f->target, &d), 0);
	same_dir(d.box_fd, tu_path("%s/Maildir/.Sent", f->base));
	same_dir(d.new_fd, tu_path("%s/Maildir/.Sent/new", f->base));
	store_dirs_close(&d);
}

static void
test_walk_path_forms_table(void **state)
{
	static const struct {
		const char *rel;      /* NULL allowed */
		const char *maildir;  /* below base; NULL: error */
		int err;
	} cases[] = {
		{ "Maildir", "Maildir", 0 },
		{ "./Maildir//", "Maildir", 0 },
		{ "/a/b/", "a/b", 0 },
		{ "", "", 0 },
		{ NULL, "", 0 },
		{ "a/../b", NULL, EINVAL },
		{ "..", NULL, EINVAL },
	};
	struct fixture *f = *state;
	struct store_dirs d;
	char longc[NAME_MAX + 2];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		f->target.mail_rel = cases[i].rel;
		errno = 0;
		if (cases[i].maildir == NULL) {
			assert_int_equal(store_dirs_open(&f->target, &d), -1);
			assert_int_equal(errno, cases[i].err);
			assert_int_equal(d.box_fd, -1);
			continue;
		}
		assert_int_equal(store_dirs_open(&f->target, &d), 0);
		same_dir(d.new_fd, tu_path("%s/%s/new", f->base,
					   cases[i].maildir));
		store_dirs_close(&d);
	}
	memset(longc, 'x', sizeof(longc) - 1);
	longc[sizeof(longc) - 1] = '\0';
	f->target.mail_rel = longc;
	assert_int_equal(store_dirs_open(&f->target, &d), -1);
	assert_int_equal(errno, ENAMETOOLONG);
	f->target.mail_base = "";
	assert_int_equal(store_dirs_open(&f->target, &d), -1);
	assert_int_equal(errno, EINVAL);
}

static void
test_walk_base_that_is_a_file_gives_enotdir(void **state)
{
	struct fixture *f = *state;
	char file[PATH_MAX];
	struct store_dirs d;

	snprintf(file, sizeof(file), "%.4000s/file", f->root);
	assert_int_equal(tu_write_file(file, "x", 1), 0);
	f->target.mail_base = file;
	assert_int_equal(store_dirs_open(&f->target, &d), -1);
	assert_int_equal(errno, ENOTDIR);
}

/* With has_root the walk starts from the caller's root: the base path is
 * not looked at again, and the caller's fd stays open. */
static void
test_walk_from_an_open_root(void **state)
{
	struct fixture *f = *state;
	struct store_dirs d;
	char gone[PATH_MAX];
	int root;

	root = store_root_open(f->base, "Maildir", f->target.uid, true);
	assert_true(root >= 0);
	snprintf(gone, sizeof(gone), "%.4000s/no-such-base", f->root);
	f->target.mail_base = gone;
	f->target.has_root = true;
	f->target.root_fd = root;
	assert_int_equal(store_dirs_open(&f->target, &d), 0);
	same_dir(d.box_fd, tu_path("%s/Maildir", f->base));
	same_dir(d.new_fd, tu_path("%s/Maildir/new", f->base));
	assert_true(d.box_fd != root);
	store_dirs_close(&d);
	f->target.mailbox = "Sent";
	assert_int_equal(store_dirs_open(&f->target, &d), 0);
	same_dir(d.tmp_fd, tu_path("%s/Maildir/.Sent/tmp", f->base));
	store_dirs_close(&d);
	same_dir(root, tu_path("%s/Maildir", f->base));
	/* nothing was made at the path the target names */
	assert_int_equal(access(gone, F_OK), -1);
	assert_int_equal(errno, ENOENT);
	close(root);
}

/* cur/ is checked without being opened: made when missing, and a file, a
 * directory of another owner or a symlink there fails the save. */
static void
test_walk_checks_cur(void **state)
{
	struct fixture *f = *state;
	const char *cur = tu_path("%s/Maildir/cur", f->base);
	struct store_dirs d;
	struct stat st;

	assert_int_equal(store_dirs_open(&f->target, &d), 0);
	store_dirs_close(&d);
	assert_int_equal(lstat(cur, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0700);
	assert_int_equal(d.cur_fd, -1);

	assert_int_equal(rmdir(cur), 0);
	assert_int_equal(tu_write_file(cur, "x", 1), 0);
	assert_int_equal(store_dirs_open(&f->target, &d), -1);
	assert_int_equal(errno, ENOTDIR);
	assert_int_equal(unlink(cur), 0);

	assert_int_equal(mkdir(cur, 0700), 0);
	assert_int_equal(chown(cur, f->target.uid + 1, (gid_t)-1), 0);
	assert_int_equal(store_dirs_open(&f->target, &d), -1);
	assert_int_equal(errno, EPERM);
	assert_int_equal(d.box_fd, -1);
	assert_int_equal(d.new_fd, -1);
}

/* ---- symlinks --------------------------------------------------------- */

struct link_case {
	const char *rel;
	const char *mailbox;
	const char *mkdirs[4];   /* below base, created first */
	const char *link;        /* below base: made a symlink ... */
	const char *to;          /* ... to outside/<to> ("" = outside) */
};

static const struct link_case link_cases[] = {
	{ "Maildir", "INBOX", { NULL }, "Maildir", "" },
	{ "Maildir", "INBOX", { NULL }, "Maildir", "not-there" },
	{ "Maildir", "INBOX", { NULL }, "Maildir", "file" },
	{ "Maildir", "INBOX", { "Maildir" }, "Maildir/tmp", "" },
	{ "Maildir", "INBOX", { "Maildir" }, "Maildir/tmp", "not-there" },
	{ "Maildir", "INBOX", { "Maildir", "Maildir/tmp" }, "Maildir/new", "" },
	{ "Maildir", "INBOX", { "Maildir", "Maildir/tmp" }, "Maildir/new",
	  "file" },
	{ "Maildir", "INBOX", { "Maildir", "Maildir/tmp", "Maildir/new" },
	  "Maildir/cur", "" },
	{ "users/alice/Maildir", "INBOX", { "users" }, "users/alice", "" },
	{ "users/alice/Maildir", "INBOX", { "users", "users/alice" },
	  "users/alice/Maildir", "" },
	{ "Maildir", "Sent", { "Maildir" }, "Maildir/.Sent", "" },
	{ "Maildir", "Sent", { "Maildir" }, "Maildir/.Sent", "not-there" },
	{ "Maildir", "Sent", { "Maildir", "Maildir/.Sent" },
	  "Maildir/.Sent/new", "" },
};

static void
run_link_case(const struct link_case *c, size_t n)
{
	struct fixture *f;
	struct store_dirs d;
	size_t i;
	int rc;

	assert_int_equal(setup((void **)&f), 0);
	assert_int_equal(tu_write_file(tu_path("%s/file", f->outside), "x", 1), 0);
	for (i = 0; i < 4 && c->mkdirs[i] != NULL; i++)
		assert_int_equal(mkdir(tu_path("%s/%s", f->base, c->mkdirs[i]),
				       0700), 0);
	assert_int_equal(symlink(tu_path("%s/%s", f->outside, c->to),
				 tu_path("%s/%s", f->base, c->link)), 0);
	f->target.mail_rel = c->rel;
	f->target.mailbox = c->mailbox;
	errno = 0;
	rc = store_dirs_open(&f->target, &d);
	if (rc != -1 || errno != ELOOP)
		fail_msg("case %zu (%s -> %s): rc %d errno %d", n, c->link,
			 c->to, rc, errno);
	/* nothing was created outside (only the file put there) */
	assert_int_equal(tu_count_entries(f->outside), 1);
	teardown((void **)&f);
}

static void
test_walk_symlink_anywhere_gives_eloop_with_openat2(void **state)
{
	size_t i;

	(void)state;
	openat2_calls = 0;
	for (i = 0; i < sizeof(link_cases) / sizeof(link_cases[0]); i++)
		run_link_case(&link_cases[i], i);
	assert_true(openat2_calls > 0);
}

static void
test_walk_maildirfolder_symlink_is_not_followed(void **state)
{
	struct fixture *f = *state;
	struct store_dirs d;

	assert_int_equal(mkdir(tu_path("%s/Maildir", f->base), 0700), 0);
	assert_int_equal(mkdir(tu_path("%s/Maildir/.Sent", f->base), 0700), 0);
	assert_int_equal(symlink(tu_path("%s/made", f->outside),
			 tu_path("%s/Maildir/.Sent/maildirfolder", f->base)), 0);
	f->target.mailbox = "Sent";
	assert_int_equal(store_dirs_open(&f->target, &d), 0);
	store_dirs_close(&d);
	assert_int_equal(tu_count_entries(f->outside), 0);
}

/* Must run after every test that expects openat2 to be used. */
static void
test_walk_symlink_anywhere_gives_eloop_with_openat_fallback(void **state)
{
	struct fixture *f;
	struct store_dirs d;
	size_t i;

	(void)state;
	openat2_enosys = true;
	openat2_calls = 0;
	for (i = 0; i < sizeof(link_cases) / sizeof(link_cases[0]); i++)
		run_link_case(&link_cases[i], i);
	assert_int_equal(openat2_calls, 1);   /* tried once, then remembered */

	/* and a normal walk still works without openat2 */
	assert_int_equal(setup((void **)&f), 0);
	f->target.mailbox = "Sent";
	assert_int_equal(store_dirs_open(&f->target, &d), 0);
	same_dir(d.tmp_fd, tu_path("%s/Maildir/.Sent/tmp", f->base));
	store_dirs_close(&d);
	teardown((void **)&f);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
		T(test_walk_returns_fds_of_mailbox_tmp_new),
		T(test_walk_path_forms_table),
		T(test_walk_base_that_is_a_file_gives_enotdir),
		T(test_walk_from_an_open_root),
		T(test_walk_checks_cur),
		cmocka_unit_test(test_walk_symlink_anywhere_gives_eloop_with_openat2),
		T(test_walk_maildirfolder_symlink_is_not_followed),
		cmocka_unit_test(test_walk_symlink_anywhere_gives_eloop_with_openat_fallback),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
