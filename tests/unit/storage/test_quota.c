/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/storage/test_quota.c - maildirsize: the parser on valid and
 * malformed files, reading through a directory fd (symlink, FIFO, the
 * 5120-octet bound), Dovecot's recalculation rules (missing, invalid,
 * size, forced limits, over quota with several lines or a stale file),
 * the recalculation scan (sizes from S= or fstat, folders, ignored and
 * symlinked folders, files removed by hand), appended lines, the fit
 * check and the quota_rule syntax.
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
	char md[PATH_MAX];      /* the Maildir root */
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
put(struct fixture *f, const char *rel, const char *content)
{
	assert_int_equal(tu_write_file(tu_path("%s/%s", f->md, rel), content,
				       strlen(content)), 0);
}

static void
mkdirs(struct fixture *f, const char *box)
{
	if (strcmp(box, ".") != 0)
		assert_int_equal(mkdir(tu_path("%s/%s", f->md, box), 0700), 0);
	assert_int_equal(mkdir(tu_path("%s/%s/new", f->md, box), 0700), 0);
	assert_int_equal(mkdir(tu_path("%s/%s/cur", f->md, box), 0700), 0);
	assert_int_equal(mkdir(tu_path("%s/%s/tmp", f->md, box), 0700), 0);
}

static char *
slurp(struct fixture *f, const char *rel)
{
	char *buf = NULL;
	ssize_t n = tu_read_file(tu_path("%s/%s", f->md, rel), &buf);

	assert_true(n >= 0);
	buf[n] = '\0';        /* tu_read_file leaves room: len < capacity */
	return buf;
}

static void
set_mtime(struct fixture *f, const char *rel, time_t t)
{
	struct timespec ts[2] = { { t, 0 }, { t, 0 } };

	assert_int_equal(utimensat(AT_FDCWD, tu_path("%s/%s", f->md, rel), ts,
				   AT_SYMLINK_NOFOLLOW), 0);
}

/* ---- parser ----------------------------------------------------------- */

static void
test_quota_parse_table(void **state)
{
	static const struct {
		const char *text;
		size_t len;           /* 0: strlen */
		bool valid;
		uint64_t lb, lc;
		int64_t ub, uc;
		unsigned lines;
	} cases[] = {
		{ "1048576S,100C\n39 1\n39 1\n", 0, true, 1048576, 100, 78, 2, 2 },
		{ "100C,2048S\n5 1\n", 0, true, 2048, 100, 5, 1, 1 },
		{ "0S\n0 0\n", 0, true, 0, 0, 0, 0, 1 },
		{ "100C\n5 1\n", 0, true, 0, 100, 5, 1, 1 },
		{ "1024S\n", 0, true, 1024, 0, 0, 0, 0 },
		{ "1024S\n10 1\n-10 -1\n", 0, true, 1024, 0, 0, 0, 2 },
		/* the last line without '\n' is ignored, as Dovecot */
		{ "1024S\n10 1\n5 1", 0, true, 1024, 0, 10, 1, 1 },
		{ "1024S", 0, false, 0, 0, 0, 0, 0 },
		{ "", 0, false, 0, 0, 0, 0, 0 },
		/* bad limits count as unlimited, the usage still counts */
		{ "garbage\n5 1\n", 0, true, 0, 0, 5, 1, 1 },
		{ "1024S,10X\n5 1\n", 0, true, 1024, 0, 5, 1, 1 },
		{ "18446744073709551615S\n", 0, true, INT64_MAX, 0, 0, 0, 0 },
		{ "99999999999999999999S\n", 0, true, 0, 0, 0, 0, 0 },
		/* corrupt usage */
		{ "1024S\n10 1\n-20 -1\n", 0, false, 1024, 0, 0, 0, 0 },
		{ "1024S\n10 1\n0 -2\n", 0, false, 1024, 0, 0, 0, 0 },
		{ "1024S\nabc\n", 0, false, 1024, 0, 0, 0, 0 },
		{ "1024S\n10\n", 0, false, 1024, 0, 0, 0, 0 },
		{ "1024S\n10 1 x\n", 0, false, 1024, 0, 0, 0, 0 },
		{ "1024S\n\n", 0, false, 1024, 0, 0, 0, 0 },
		{ "1024S\n10  1\n", 0, false, 1024, 0, 0, 0, 0 },
		{ "1024S\n99999999999999999999 1\n", 0, false, 1024, 0, 0, 0, 0 },
		{ "1024S\n9223372036854775807 1\n1 0\n", 0, false, 1024, 0, 0, 0, 0 },
		{ "1024S\n1 3000000000\n", 0, false, 1024, 0, 0, 0, 0 },
		{ "1024S\n1\0 1\n", 11, false, 0, 0, 0, 0, 0 },
	};
	struct store_quota q;
	size_t i, len;

	(void)state;
	for (i = 0; i < N_ELEMENTS(cases); i++) {
		len = cases[i].len ? cases[i].len : strlen(cases[i].text);
		memset(&q, 0xa5, sizeof(q));
		assert_int_equal(store_quota_parse(cases[i].text, len, &q), 0);
		if (q.valid != cases[i].valid)
			fail_msg("case %zu: valid %d", i, q.valid);
		if (cases[i].len == 0 && (q.limit_bytes != cases[i].lb ||
					  q.limit_count != cases[i].lc))
			fail_msg("case %zu: limits %llu %llu", i,
				 (unsigned long long)q.limit_bytes,
				 (unsigned long long)q.limit_count);
		if (!q.valid)
			continue;
		if (q.used_bytes != cases[i].ub || q.used_count != cases[i].uc ||
		    q.lines != cases[i].lines)
			fail_msg("case %zu: used %lld %lld lines %u", i,
				 (long long)q.used_bytes, (long long)q.used_count,
				 q.lines);
	}
}

/* ---- reading ---------------------------------------------------------- */

static const struct store_quota_conf conf_1m = { { 1048576, 100 }, true };

static void
test_quota_read_missing_file(void **state)
{
	struct fixture *f = *state;
	struct store_quota q;

	assert_int_equal(store_quota_read(f->root_fd, &conf_1m, &q), 0);
	assert_false(q.exists);
	assert_int_equal(q.limit_bytes, 1048576);
	assert_true(store_quota_need_recalc(&q, &conf_1m, time(NULL)));
}

static void
test_quota_read_symlink_is_refused_not_followed(void **state)
{
	struct fixture *f = *state;
	struct store_quota q;
	char *buf;

	assert_int_equal(tu_write_file(tu_path("%s/target", f->tree.root),
				       "1S\n5 1\n", 7), 0);
	assert_int_equal(symlink(tu_path("%s/target", f->tree.root),
				 tu_path("%s/maildirsize", f->md)), 0);
	assert_int_equal(store_quota_read(f->root_fd, &conf_1m, &q), -1);
	assert_int_equal(errno, ELOOP);
	assert_int_equal(store_quota_update(f->root_fd, 10, 1), -1);
	assert_int_equal(errno, ELOOP);
	assert_true(tu_read_file(tu_path("%s/target", f->tree.root), &buf) == 7);
	assert_memory_equal(buf, "1S\n5 1\n", 7);
	free(buf);
}

static void
test_quota_read_fifo_is_refused_without_blocking(void **state)
{
	struct fixture *f = *state;
	struct store_quota q;

	assert_int_equal(mkfifo(tu_path("%s/maildirsize", f->md), 0600), 0);
	assert_int_equal(store_quota_read(f->root_fd, &conf_1m, &q), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(store_quota_update(f->root_fd, 10, 1), -1);
}

static void
test_quota_5120_octets_need_recalc(void **state)
{
	struct fixture *f = *state;
	struct store_quota q;
	char *text = malloc(8192);
	size_t len, target[] = { 5119, 5120, 8000 };
	size_t i;
	time_t now = time(NULL);

	for (i = 0; i < N_ELEMENTS(target); i++) {
		/* "0 0\n" lines, and "00 0\n" ones to hit the size exactly */
		strcpy(text, "1048576S,100C\n");
		len = strlen(text);
		while (len < target[i]) {
			bool five = (target[i] - len) % 4 != 0;

			memcpy(text + len, five ? "00 0\n" : "0 0\n", five ? 5 : 4);
			len += five ? 5 : 4;
		}
		assert_int_equal(len, target[i]);
		assert_int_equal(tu_write_file(tu_path("%s/maildirsize", f->md),
					       text, len), 0);
		assert_int_equal(store_quota_read(f->root_fd, &conf_1m, &q), 0);
		assert_true(q.exists);
		if (target[i] < 5120) {
			assert_false(q.too_big);
			assert_true(q.valid);
			assert_false(store_quota_need_recalc(&q, &conf_1m, now));
		} else {
			assert_true(q.too_big);
			assert_true(store_quota_need_recalc(&q, &conf_1m, now));
		}
	}
	free(text);
}

/* ---- when to recalculate ---------------------------------------------- */

static void
test_quota_need_recalc_table(void **state)
{
	static const struct {
		const char *text;
		struct store_quota_conf conf;
		long age;             /* seconds before now */
		bool recalc;
		bool fits_1k;
	} cases[] = {
		/* under quota: never, however many lines */
		{ "1048576S,100C\n10 1\n10 1\n10 1\n", { { 1048576, 100 }, true },
		  0, false, true },
		{ "1048576S,100C\n10 1\n", { { 1048576, 100 }, true }, 3600,
		  false, true },
		/* over quota: one line and fresh -> trusted */
		{ "1000S\n2000 1\n", { { 1000, 0 }, true }, 0, false, false },
		/* over quota: two lines -> recalc */
		{ "1000S\n1000 1\n1000 1\n", { { 1000, 0 }, true }, 0, true,
		  false },
		/* over quota: older than 15 minutes -> recalc */
		{ "1000S\n2000 1\n", { { 1000, 0 }, true }, 16 * 60, true, false },
		{ "1000S\n2000 1\n", { { 1000, 0 }, true }, 14 * 60, false, false },
		/* over the message count */
		{ "0S,2C\n10 3\n10 0\n", { { 0, 2 }, true }, 0, true, false },
		/* forced limits differ -> rewrite */
		{ "2000S\n10 1\n", { { 1000, 0 }, true }, 0, true, true },
		/* not forced: the file's limits win */
		{ "2000S\n10 1\n", { { 1000, 0 }, false }, 0, false, true },
		/* corrupt */
		{ "1000S\n10 1\n-20 -1\n", { { 1000, 0 }, true }, 0, true, true },
		{ "1000S\nx\n", { { 1000, 0 }, true }, 0, true, true },
		/* exactly at the limit is not over */
		{ "1000S,2C\n1000 2\n1 0\n-1 0\n", { { 1000, 2 }, true }, 0,
		  false, false },
	};
	struct fixture *f = *state;
	struct store_quota q;
	time_t now = time(NULL);
	size_t i;

	for (i = 0; i < N_ELEMENTS(cases); i++) {
		put(f, "maildirsize", cases[i].text);
		set_mtime(f, "maildirsize", now - cases[i].age);
		assert_int_equal(store_quota_read(f->root_fd, &cases[i].conf,
						  &q), 0);
		if (store_quota_need_recalc(&q, &cases[i].conf, now) !=
		    cases[i].recalc)
			fail_msg("case %zu: recalc %d", i, !cases[i].recalc);
		if (q.valid && store_quota_fits(&q, 1) != cases[i].fits_1k)
			fail_msg("case %zu: fits %d", i, !cases[i].fits_1k);
	}
}

static void
test_quota_no_limits_no_file_needs_nothing(void **state)
{
	struct fixture *f = *state;
	struct store_quota_conf none = { { 0, 0 }, false };
	struct store_quota q;

	assert_int_equal(store_quota_read(f->root_fd, &none, &q), 0);
	assert_false(store_quota_need_recalc(&q, &none, time(NULL)));
	none.force = true;
	assert_true(store_quota_need_recalc(&q, &none, time(NULL)));
}

static void
test_quota_fits_table(void **state)
{
	static const struct {
		uint64_t lb, lc;
		int64_t ub, uc;
		uint64_t size;
		bool fits;
	} cases[] = {
		{ 0, 0, 1000000, 1000000, UINT64_MAX, true },
		{ 1000, 0, 0, 0, 1000, true },
		{ 1000, 0, 0, 0, 1001, false },
		{ 1000, 0, 999, 5, 1, true },
		{ 1000, 0, 999, 5, 2, false },
		{ 1000, 0, 1500, 5, 0, false },
		{ 1000, 0, 10, 5, UINT64_MAX, false },
		{ 0, 10, 0, 9, 5, true },
		{ 0, 10, 0, 10, 5, false },
		{ 1000, 10, 100, 9, 900, true },
	};
	struct store_quota q;
	size_t i;

	(void)state;
	for (i = 0; i < N_ELEMENTS(cases); i++) {
		memset(&q, 0, sizeof(q));
		q.limit_bytes = cases[i].lb;
		q.limit_count = cases[i].lc;
		q.used_bytes = cases[i].ub;
		q.used_count = cases[i].uc;
		q.valid = q.exists = true;
		if (store_quota_fits(&q, cases[i].size) != cases[i].fits)
			fail_msg("case %zu", i);
	}
}

/* ---- recalculation and updates ---------------------------------------- */

static void
maildir_with_mail(struct fixture *f)
{
	mkdirs(f, ".");
	put(f, "new/1.M1P1.host,S=100,W=102", "x");       /* S= wins: 100 */
	put(f, "cur/2.M2P2.host,S=50:2,S", "x");           /* 50 */
	put(f, "cur/3.M3P3.host:2,", "0123456789");        /* no S=: 10 */
	put(f, "cur/4.M4P4.host,S=12x:2,", "abc");         /* bad S=: 3 */
	put(f, "tmp/5.M5P5.host,S=1000", "x");             /* tmp/ ignored */
	mkdirs(f, ".Sent");
	put(f, ".Sent/cur/6.M6P6.host,S=7:2,S", "x");
	mkdirs(f, ".Trash");
	put(f, ".Trash/cur/7.M7P7.host,S=1000:2,S", "x");
	mkdirs(f, ".A.B");
	put(f, ".A.B/new/8.M8P8.host,S=1", "x");
	/* Dovecot's trash of a deleted folder is no mailbox */
	mkdirs(f, "..DOVECOT-TRASHED");
	put(f, "..DOVECOT-TRASHED/new/9.M9P9.host,S=5000", "x");
	/* a symlinked folder is not followed */
	assert_int_equal(mkdir(tu_path("%s/elsewhere", f->tree.root), 0700), 0);
	assert_int_equal(mkdir(tu_path("%s/elsewhere/new", f->tree.root), 0700),
			 0);
	assert_int_equal(tu_write_file(tu_path("%s/elsewhere/new/10,S=9999",
					       f->tree.root), "x", 1), 0);
	assert_int_equal(symlink(tu_path("%s/elsewhere", f->tree.root),
				 tu_path("%s/.Link", f->md)), 0);
}

static void
test_quota_recalc_counts_all_folders(void **state)
{
	struct fixture *f = *state;
	struct store_quota_limits lim = { 1048576, 100 };
	struct store_quota q;
	char *buf;

	maildir_with_mail(f);
	assert_int_equal(store_quota_recalc(f->root_fd, &lim, NULL, 0, &q), 0);
	buf = slurp(f, "maildirsize");
	/* 100 + 50 + 10 + 3 + 7 + 1000 + 1 */
	assert_string_equal(buf, "1048576S,100C\n1171 7\n");
	free(buf);
	assert_int_equal(q.used_bytes, 1171);
	assert_int_equal(q.used_count, 7);
	/* no temp file left in the root */
	assert_int_equal(tu_count_entries(f->md), 9);
}

static void
test_quota_recalc_skips_ignored_folders(void **state)
{
	static const char *const ignore[] = { "Trash", "A.B" };
	struct fixture *f = *state;
	struct store_quota_limits lim = { 0, 0 };
	char *buf;

	maildir_with_mail(f);
	assert_int_equal(store_quota_recalc(f->root_fd, &lim, ignore, 2, NULL),
			 0);
	buf = slurp(f, "maildirsize");
	assert_string_equal(buf, "0S\n170 5\n");
	free(buf);
}

static void
test_quota_recalc_after_files_removed_by_hand(void **state)
{
	struct fixture *f = *state;
	struct store_quota_conf conf = { { 1000, 0 }, true };
	struct store_quota q;
	time_t now = time(NULL);
	char *buf;

	maildir_with_mail(f);
	assert_int_equal(store_quota_recalc(f->root_fd, &conf.limits, NULL, 0,
					    NULL), 0);
	assert_int_equal(store_quota_read(f->root_fd, &conf, &q), 0);
	assert_int_equal(q.used_bytes, 1171);
	assert_false(store_quota_fits(&q, 1));
	/* over quota with one fresh line: Dovecot trusts it */
	assert_false(store_quota_need_recalc(&q, &conf, now));
	/* the user deletes the big message outside any IMAP server; a
	 * delivery then appends its line: two lines while over quota */
	assert_int_equal(unlink(tu_path("%s/.Trash/cur/7.M7P7.host,S=1000:2,S",
					f->md)), 0);
	assert_int_equal(store_quota_update(f->root_fd, 0, 0), 0);
	assert_int_equal(store_quota_update(f->root_fd, -1, -1), 0);
	assert_int_equal(store_quota_read(f->root_fd, &conf, &q), 0);
	assert_int_equal(q.lines, 2);
	assert_true(store_quota_need_recalc(&q, &conf, now));
	assert_int_equal(store_quota_recalc(f->root_fd, &conf.limits, NULL, 0,
					    &q), 0);
	buf = slurp(f, "maildirsize");
	assert_string_equal(buf, "1000S\n171 6\n");
	free(buf);
	assert_true(store_quota_fits(&q, 829));
	assert_false(store_quota_fits(&q, 830));
}

static void
test_quota_recalc_empty_maildir_and_count_only(void **state)
{
	struct fixture *f = *state;
	struct store_quota_limits lim = { 0, 50000 };
	char *buf;

	assert_int_equal(store_quota_recalc(f->root_fd, &lim, NULL, 0, NULL), 0);
	buf = slurp(f, "maildirsize");
	assert_string_equal(buf, "50000C\n0 0\n");
	free(buf);
}

static void
test_quota_recalc_replaces_symlink_without_following(void **state)
{
	struct fixture *f = *state;
	struct store_quota_limits lim = { 10, 0 };
	struct stat st;
	char *buf;

	assert_int_equal(tu_write_file(tu_path("%s/target", f->tree.root),
				       "keep", 4), 0);
	assert_int_equal(symlink(tu_path("%s/target", f->tree.root),
				 tu_path("%s/maildirsize", f->md)), 0);
	assert_int_equal(store_quota_recalc(f->root_fd, &lim, NULL, 0, NULL), 0);
	assert_int_equal(lstat(tu_path("%s/maildirsize", f->md), &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_true(tu_read_file(tu_path("%s/target", f->tree.root), &buf) == 4);
	free(buf);
}

static void
test_quota_update_appends_lines(void **state)
{
	static const struct store_quota_conf conf = { { 0, 0 }, false };
	struct fixture *f = *state;
	struct store_quota q;
	char *buf;

	assert_int_equal(store_quota_update(f->root_fd, 10, 1), -1);
	assert_int_equal(errno, ENOENT);
	put(f, "maildirsize", "0S\n0 0\n");
	assert_int_equal(store_quota_update(f->root_fd, 39, 1), 0);
	assert_int_equal(store_quota_update(f->root_fd, 0, 0), 0);
	assert_int_equal(store_quota_update(f->root_fd, -39, -1), 0);
	assert_int_equal(store_quota_update(f->root_fd, 5, 1), 0);
	assert_int_equal(store_quota_update(f->root_fd, 1, 3000000000LL), -1);
	assert_int_equal(errno, ERANGE);
	buf = slurp(f, "maildirsize");
	assert_string_equal(buf, "0S\n0 0\n39 1\n-39 -1\n5 1\n");
	free(buf);
	assert_int_equal(store_quota_read(f->root_fd, &conf, &q), 0);
	assert_true(q.valid);
	assert_int_equal(q.used_bytes, 5);
	assert_int_equal(q.used_count, 1);
	assert_int_equal(q.lines, 4);
}

/* ---- quota_rule ------------------------------------------------------- */

static void
test_quota_rule_table(void **state)
{
	static const struct {
		const char *rule;
		int ret;
		int err;
		const char *mask;
		bool force, ignore;
		int64_t bytes, count;
	} cases[] = {
		{ "*:storage=1G:messages=50000", 0, 0, "*", true, false,
		  1073741824LL, 50000 },
		{ "*:storage=1024", 0, 0, "*", true, false, 1048576, 0 },
		{ "*:storage=10M", 0, 0, "*", true, false, 10485760, 0 },
		{ "*:storage=2t", 0, 0, "*", true, false, 2199023255552LL, 0 },
		{ "*:storage=100B", 0, 0, "*", true, false, 100, 0 },
		{ "*:bytes=1048576", 0, 0, "*", true, false, 1048576, 0 },
		{ "*:bytes=1k", 0, 0, "*", true, false, 1024, 0 },
		{ "*:messages=10", 0, 0, "*", true, false, 0, 10 },
		{ "?:storage=1M", 0, 0, "?", false, false, 1048576, 0 },
		{ "Trash:storage=+100M", 0, 0, "Trash", false, false,
		  104857600, 0 },
		{ "Trash:storage=-1M", 0, 0, "Trash", false, false, -1048576, 0 },
		{ "Spam:ignore", 0, 0, "Spam", false, true, 0, 0 },
		{ "inbox:ignore", 0, 0, "INBOX", false, true, 0, 0 },
		{ "*:backend=1024S,10C", 0, 0, "*", true, false, 1024, 10 },
		{ "*:backend=NOQUOTA", 0, 0, "*", true, false, 0, 0 },
		{ "*:storage=10%", -1, EINVAL, NULL, false, false, 0, 0 },
		{ "*:storage=+1M", -1, EINVAL, NULL, false, false, 0, 0 },
		{ "*:storage=-1M", -1, EINVAL, NULL, false, false, 0, 0 },
		{ "*:storage=1X", -1, EINVAL, NULL, false, false, 0, 0 },
		{ "*:storage=1MB", -1, EINVAL, NULL, false, false, 0, 0 },
		{ "*:storage=", -1, EINVAL, NULL, false, false, 0, 0 },
		{ "*:storage=abc", -1, EINVAL, NULL, false, false, 0, 0 },
		{ "*:storage=9999999999999999999T", -1, ERANGE, NULL, false,
		  false, 0, 0 },
		{ "*:storage=99999999999999999999999", -1, EINVAL, NULL, false,
		  false, 0, 0 },
		{ "*:storage=9007199254740992", -1, ERANGE, NULL, false, false,
		  0, 0 },
		{ "*:size=1M", -1, EINVAL, NULL, false, false, 0, 0 },
		{ "*:", -1, EINVAL, NULL, false, false, 0, 0 },
		{ "storage=1M", -1, EINVAL, NULL, false, false, 0, 0 },
		{ ":storage=1M", -1, EINVAL, NULL, false, false, 0, 0 },
		{ "*:backend=1024Q", -1, EINVAL, NULL, false, false, 0, 0 },
		{ "*:backend=", -1, EINVAL, NULL, false, false, 0, 0 },
	};
	struct store_quota_rule r;
	const char *why;
	size_t i;
	int ret;

	(void)state;
	for (i = 0; i < N_ELEMENTS(cases); i++) {
		why = NULL;
		errno = 0;
		ret = store_quota_rule_parse(cases[i].rule, &r, &why);
		if (ret != cases[i].ret)
			fail_msg("case %zu (%s): ret %d", i, cases[i].rule, ret);
		if (ret < 0) {
			if (errno != cases[i].err || why == NULL)
				fail_msg("case %zu: errno %d", i, errno);
			continue;
		}
		if (strcmp(r.mask, cases[i].mask) != 0 ||
		    r.force != cases[i].force || r.ignore != cases[i].ignore ||
		    r.bytes != cases[i].bytes || r.count != cases[i].count)
			fail_msg("case %zu (%s): %s %d %d %lld %lld", i,
				 cases[i].rule, r.mask, r.force, r.ignore,
				 (long long)r.bytes, (long long)r.count);
	}
}

static void
test_quota_rule_percent_says_why(void **state)
{
	struct store_quota_rule r;
	const char *why = NULL;

	(void)state;
	assert_int_equal(store_quota_rule_parse("*:messages=50%", &r, &why), -1);
	assert_non_null(strstr(why, "percentage"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_quota_parse_table),
		cmocka_unit_test_setup_teardown(test_quota_read_missing_file,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_quota_read_symlink_is_refused_not_followed,
			setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_quota_read_fifo_is_refused_without_blocking,
			setup, teardown),
		cmocka_unit_test_setup_teardown(test_quota_5120_octets_need_recalc,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_quota_need_recalc_table,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_quota_no_limits_no_file_needs_nothing,
			setup, teardown),
		cmocka_unit_test(test_quota_fits_table),
		cmocka_unit_test_setup_teardown(
			test_quota_recalc_counts_all_folders, setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_quota_recalc_skips_ignored_folders, setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_quota_recalc_after_files_removed_by_hand,
			setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_quota_recalc_empty_maildir_and_count_only,
			setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_quota_recalc_replaces_symlink_without_following,
			setup, teardown),
		cmocka_unit_test_setup_teardown(test_quota_update_appends_lines,
						setup, teardown),
		cmocka_unit_test(test_quota_rule_table),
		cmocka_unit_test(test_quota_rule_percent_says_why),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
