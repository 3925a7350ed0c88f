/* SPDX-License-Identifier: MIT */
/*
 * tests/integration/test_dovecot_files.c - the Maildir side files written
 * by storage/ (maildirsize, dovecot-keywords, subscriptions) read by the
 * real Dovecot 2.3, and Dovecot's own writes read back by storage/.
 *
 * Runs in:  the integration suite, as root (exit 77 = skipped otherwise):
 *           Dovecot's master must be root; storage/ runs in a child with
 *           the test user's uid and gid, as in a writer.
 * Layout:   one harness tree (users and homes, stowd itself not started)
 *           and one private Dovecot with the Maildir++ quota plugin; each
 *           test uses its own user.
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
#include <sys/stat.h>
#include <unistd.h>

#include "storage/storage.h"
#include "tests/lib/harness.h"
#include "tests/lib/imapc.h"
#include "tests/lib/imapd.h"

#define NUSERS 3
#define BODY_1K_LEN 1024
#define NAME_A "1700000000.M1P1.test"
#define NAME_B "1700000001.M2P1.test"

static struct harness *H;
static struct imapd *D;
static char passwd_path[128];

static void
password_of(const struct harness_user *u, char *buf, size_t size)
{
	snprintf(buf, size, "pw-%.28s", u->name);
}

static int
group_setup(void **state)
{
	struct harness_opts ho = { .nusers = NUSERS };
	struct imapd_opts o = { .flags = IMAPD_QUOTA };
	struct imapd_user users[NUSERS];
	char pw[NUSERS][32];
	unsigned i;

	(void)state;
	H = harness_new(&ho);
	if (H == NULL)
		return -1;
	for (i = 0; i < NUSERS; i++) {
		password_of(&H->users[i], pw[i], sizeof(pw[i]));
		users[i] = (struct imapd_user){
			.name = H->users[i].name, .password = pw[i],
			.uid = H->users[i].uid, .gid = H->users[i].gid,
			.home = H->users[i].home,
			.extra = "userdb_quota_rule=*:storage=1M "
				 "userdb_quota_rule2=*:messages=100",
		};
	}
	snprintf(passwd_path, sizeof(passwd_path), "%s/dovecot-passwd", H->tree);
	if (imapd_passwd_write(passwd_path, users, NUSERS) < 0)
		return -1;
	o.passwd_path = passwd_path;
	D = imapd_start(&o);
	return D == NULL ? -1 : 0;
}

static int
group_teardown(void **state)
{
	(void)state;
	imapd_free(&D);
	harness_free(&H);
	return 0;
}

/* ---- Maildir by hand (as root, chowned to the user) ------------------- */

static void
mkdir_as(const struct harness_user *u, const char *path)
{
	if (mkdir(path, 0700) < 0 && errno != EEXIST)
		fail_msg("mkdir %s: %s", path, strerror(errno));
	assert_int_equal(chown(path, u->uid, u->gid), 0);
}

static void
make_box(const struct harness_user *u, const char *folder)
{
	static const char *const subs[] = { "", "/tmp", "/new", "/cur" };
	char path[300];
	size_t i;

	mkdir_as(u, u->maildir);
	for (i = 0; i < 4; i++) {
		snprintf(path, sizeof(path), "%s%s%s%s", u->maildir,
			 *folder ? "/" : "", folder, subs[i]);
		mkdir_as(u, path);
	}
}

static void
put_msg(const struct harness_user *u, const char *rel, size_t len)
{
	char path[400], *body = malloc(len);

	memset(body, 'x', len);
	memcpy(body, "Subject: t\n\n", 12);
	body[len - 1] = '\n';
	snprintf(path, sizeof(path), "%s/%s", u->maildir, rel);
	assert_int_equal(harness_write_file(path, body, len, 0600), 0);
	assert_int_equal(chown(path, u->uid, u->gid), 0);
	free(body);
}

static char *
read_rel(const struct harness_user *u, const char *rel)
{
	char path[400], *text = NULL;

	snprintf(path, sizeof(path), "%s/%s", u->maildir, rel);
	if (harness_read_file(path, &text, NULL) < 0)
		fail_msg("read %s", path);
	return text;
}

/* <maildir>/<rel> in a static buffer (one use at a time). */
static const char *
rel_path(const struct harness_user *u, const char *rel)
{
	static char path[400];

	snprintf(path, sizeof(path), "%s/%s", u->maildir, rel);
	return path;
}

static struct imapc *
login(const struct harness_user *u)
{
	struct imapc *c = NULL;
	char pw[32];

	password_of(u, pw, sizeof(pw));
	if (imapc_connect(D->addr, 0, &c) < 0 || imapc_login(c, u->name, pw) < 0)
		fail_msg("login %s", u->name);
	return c;
}

/* ---- storage/ as the user (in a child: no cmocka asserts there) ------- */

struct job {
	const char *maildir;
	int (*fn)(int root_fd, struct job *j);
	const char *name;          /* keyword or mailbox name */
	int result;                /* letter of store_keywords_add */
};

static int
job_run(void *arg)
{
	struct job *j = arg;
	int fd, ret;

	fd = open(j->maildir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ret = j->fn(fd, j);
	close(fd);
	return ret;
}

static int
as_user(const struct harness_user *u, int (*fn)(int, struct job *),
	const char *name)
{
	struct job j = { .maildir = u->maildir, .fn = fn, .name = name };

	return harness_run_as(u->uid, u->gid, job_run, &j);
}

static int
job_recalc(int root_fd, struct job *j)
{
	struct store_quota_limits lim = { 1048576, 100 };

	(void)j;
	return store_quota_recalc(root_fd, &lim, NULL, 0, NULL);
}

static int
job_deliver_1k(int root_fd, struct job *j)
{
	struct store_quota_conf conf = { { 1048576, 100 }, true };
	struct store_quota q;
	char path[300];
	int fd;

	if (store_quota_read(root_fd, &conf, &q) < 0 ||
	    store_quota_need_recalc(&q, &conf, time(NULL)) ||
	    !store_quota_fits(&q, BODY_1K_LEN))
		return -1;
	snprintf(path, sizeof(path), "new/%s", j->name);
	fd = openat(root_fd, path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0 || ftruncate(fd, BODY_1K_LEN) < 0 || close(fd) < 0)
		return -1;
	return store_quota_update(root_fd, BODY_1K_LEN, 1);
}

/* Give a keyword a letter under the uidlist lock, as a writer would, and
 * set it on cur/NAME_A:2, (rename to :2,<letter>). */
static int
job_keyword(int root_fd, struct job *j)
{
	struct store_dotlock lock;
	char from[128], to[128];
	int letter, ret = -1;

	if (store_uidlist_lock(root_fd, 10, &lock) < 0)
		return -1;
	letter = store_keywords_add(root_fd, j->name, NULL);
	if (letter < 0)
		goto out;
	snprintf(from, sizeof(from), "cur/%s:2,", NAME_A);
	snprintf(to, sizeof(to), "cur/%s:2,%c", NAME_A, letter);
	if (renameat(root_fd, from, root_fd, to) < 0)
		goto out;
	ret = 0;
out:
	if (store_dotlock_release(&lock) < 0)
		ret = -1;
	return ret;
}

static int
job_subscribe(int root_fd, struct job *j)
{
	return store_subs_set(root_fd, '.', j->name, true, NULL);
}

/* ---- tests ------------------------------------------------------------ */

static void
test_quota_written_by_storage_is_dovecots_usage(void **state)
{
	const struct harness_user *u = &H->users[0];
	struct store_quota_conf conf = { { 1048576, 100 }, true };
	struct store_quota q;
	struct imapc_quota qr;
	struct imapc *c;
	char *text, *dove;
	unsigned uid = 0;
	int fd;

	(void)state;
	make_box(u, "");
	make_box(u, ".Sent");
	put_msg(u, "new/" NAME_A ",S=1024", 1024);
	put_msg(u, "cur/" NAME_B ":2,S", 1024);          /* size by fstatat */
	put_msg(u, ".Sent/cur/1700000002.M3P1.test,S=1024:2,S", 1024);
	assert_int_equal(as_user(u, job_recalc, NULL), 0);
	text = read_rel(u, "maildirsize");
	assert_string_equal(text, "1048576S,100C\n3072 3\n");
	free(text);

	c = login(u);
	assert_int_equal(imapc_getquotaroot(c, "INBOX", &qr), 0);
	assert_int_equal(qr.storage_limit, 1024);
	assert_int_equal(qr.storage_used, 3);
	assert_int_equal(qr.message_limit, 100);
	assert_int_equal(qr.message_used, 3);
	/* Dovecot appends to the file it accepted, it does not rewrite it */
	assert_int_equal(imapc_append(c, "INBOX", NULL, "Subject: x\n\nx\n", 14,
				      &uid), 0);
	text = read_rel(u, "maildirsize");
	fprintf(stderr, "# maildirsize after APPEND:\n%s", text);
	assert_true(strncmp(text, "1048576S,100C\n3072 3\n", 21) == 0);
	assert_true(strlen(text) > 21);
	free(text);

	/* a delivery by storage/: fits, file + appended line */
	assert_int_equal(as_user(u, job_deliver_1k,
				 "1700000003.M4P1.test,S=1024"), 0);
	assert_int_equal(imapc_getquotaroot(c, "INBOX", &qr), 0);
	assert_int_equal(qr.message_used, 5);
	assert_int_equal(qr.storage_used, 5);   /* 4110 octets in KiB, rounded up */

	/* storage/ reads the file Dovecot and it wrote together */
	fd = open(u->maildir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(store_quota_read(fd, &conf, &q), 0);
	close(fd);
	assert_true(q.valid);
	assert_int_equal(q.used_count, 5);
	assert_int_equal(q.used_bytes, 3072 + 1024 + 14);
	assert_false(store_quota_need_recalc(&q, &conf, time(NULL)));

	/* both recalculate to the same file: Dovecot after the file is
	 * gone (on its next quota lookup), then storage/ */
	assert_int_equal(unlink(rel_path(u, "maildirsize")), 0);
	assert_int_equal(imapc_getquotaroot(c, "INBOX", &qr), 0);
	assert_int_equal(qr.message_used, 5);
	text = read_rel(u, "maildirsize");
	fprintf(stderr, "# recalculated by Dovecot:\n%s", text);
	assert_int_equal(as_user(u, job_recalc, NULL), 0);
	dove = read_rel(u, "maildirsize");
	assert_string_equal(dove, text);
	free(dove);
	free(text);
	imapc_free(&c);
}

static void
test_keywords_shared_both_ways(void **state)
{
	const struct harness_user *u = &H->users[1];
	struct store_keywords kw;
	struct imapc_msg *m = NULL;
	struct imapc *c;
	const char *names[4];
	char *text, **files = NULL, path[300];
	int fd, i, n;

	(void)state;
	make_box(u, "");
	put_msg(u, "cur/" NAME_A ":2,", 100);
	put_msg(u, "cur/" NAME_B ":2,", 100);
	/* stowd first: Dovecot sees the keyword */
	assert_int_equal(as_user(u, job_keyword, "$Stowd"), 0);
	text = read_rel(u, "dovecot-keywords");
	assert_string_equal(text, "0 $Stowd\n");
	free(text);
	c = login(u);
	assert_int_equal(imapc_select(c, "INBOX", false, NULL), 0);
	n = imapc_fetch_flags(c, true, "1:*", &m);
	assert_int_equal(n, 2);
	for (i = 0; i < n; i++)
		fprintf(stderr, "# uid %u flags (%s)\n", m[i].uid, m[i].flags);
	assert_true(strstr(m[0].flags, "$Stowd") != NULL ||
		    strstr(m[1].flags, "$Stowd") != NULL);
	assert_false(strstr(m[0].flags, "$Stowd") != NULL &&
		     strstr(m[1].flags, "$Stowd") != NULL);
	free(m);

	/* Dovecot next: storage/ reads the keyword and the letter */
	assert_int_equal(imapc_store(c, false, "1:*", "+FLAGS", "$FromImap"), 0);
	imapc_free(&c);
	fd = open(u->maildir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(store_keywords_read(fd, &kw), 0);
	close(fd);
	assert_int_equal(store_keywords_letter(&kw, "$Stowd"), 'a');
	assert_int_equal(store_keywords_letter(&kw, "$FromImap"), 'b');
	snprintf(path, sizeof(path), "%s/cur", u->maildir);
	n = harness_dir_list(path, &files);
	assert_int_equal(n, 2);
	for (i = 0; i < n; i++) {
		const char *info = strstr(files[i], ":2,");
		size_t k;

		assert_non_null(info);
		k = store_keywords_names(&kw, info + 3, names, 4);
		fprintf(stderr, "# %s ->", files[i]);
		for (size_t x = 0; x < k; x++)
			fprintf(stderr, " %s", names[x]);
		fprintf(stderr, "\n");
		assert_true(k >= 1);
		assert_string_equal(names[k - 1], "$FromImap");
	}
	harness_names_free(&files, n);
}

static void
test_subscriptions_shared_both_ways(void **state)
{
	const struct harness_user *u = &H->users[2];
	struct imapc_list_item *it = NULL;
	struct store_subs s;
	struct imapc *c;
	char *text;
	int fd, i, n;
	bool archive = false, ab = false;

	(void)state;
	make_box(u, "");
	make_box(u, ".Archive");
	make_box(u, ".A.B");
	assert_int_equal(as_user(u, job_subscribe, "Archive"), 0);
	assert_int_equal(as_user(u, job_subscribe, "A.B"), 0);
	text = read_rel(u, "subscriptions");
	assert_string_equal(text, "V\t2\n\nArchive\nA\tB\n");
	free(text);
	c = login(u);
	n = imapc_list(c, true, "*", &it);
	assert_int_equal(n, 2);
	for (i = 0; i < n; i++) {
		archive |= strcmp(it[i].name, "Archive") == 0;
		ab |= strcmp(it[i].name, "A.B") == 0;
	}
	free(it);
	assert_true(archive && ab);
	assert_int_equal(imapc_subscribe(c, "INBOX"), 0);
	assert_int_equal(imapc_unsubscribe(c, "Archive"), 0);
	imapc_free(&c);
	fd = open(u->maildir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(store_subs_read(fd, '.', &s), 0);
	close(fd);
	assert_int_equal(s.version, 2);
	assert_int_equal(s.count, 2);
	assert_true(store_subs_contains(&s, "A.B"));
	assert_true(store_subs_contains(&s, "INBOX"));
	assert_false(store_subs_contains(&s, "Archive"));
	store_subs_free(&s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_quota_written_by_storage_is_dovecots_usage),
		cmocka_unit_test(test_keywords_shared_both_ways),
		cmocka_unit_test(test_subscriptions_shared_both_ways),
	};

	if (geteuid() != 0) {
		fprintf(stderr, "SKIP: test_dovecot_files needs root\n");
		return 77;
	}
	if (!imapd_installed()) {
		fprintf(stderr, "SKIP: dovecot-imapd is not installed\n");
		return 77;
	}
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
