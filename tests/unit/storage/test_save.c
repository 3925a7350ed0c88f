/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/storage/test_save.c - the durable save into real temporary
 * Maildirs: layout, modes, bytes, S=/W=, duplicates, symlink and ownership
 * attacks, and every failing step through --wrap mocks of fsync, renameat2,
 * write and sendfile64 (the name sendfile has with _FILE_OFFSET_BITS=64).
 * The early stamp (store_save_req.stamped) is tested in test_save_stamp.c
 * (same program, sharing the mocks and the fixture of test_save.h).
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
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "storage/storage_int.h"
#include "tests/unit/storage/util.h"
#include "tests/unit/storage/test_save.h"

/* ---- fault injection -------------------------------------------------- */

static struct inj inj_armed[2];
static int inj_calls[2];
static char inj_trace[32];
static bool inj_tracing;

void
inj_arm(const struct inj spec[2])
{
	memcpy(inj_armed, spec, sizeof(inj_armed));
	memset(inj_calls, 0, sizeof(inj_calls));
}

void
inj_disarm(void)
{
	memset(inj_armed, 0, sizeof(inj_armed));
	inj_tracing = false;
}

void
inj_trace_start(void)
{
	inj_trace[0] = '\0';
	inj_tracing = true;
}

void
inj_note(char c)
{
	size_t n = strlen(inj_trace);

	if (inj_tracing && n + 1 < sizeof(inj_trace)) {
		inj_trace[n] = c;
		inj_trace[n + 1] = '\0';
	}
}

const char *
inj_trace_stop(void)
{
	inj_tracing = false;
	return inj_trace;
}

/* The armed entry that fires for this call of fn, or NULL. */
static const struct inj *
inj_hit(const char *fn)
{
	const struct inj *hit = NULL;
	size_t i;

	for (i = 0; i < 2; i++) {
		if (inj_armed[i].fn == NULL || strcmp(inj_armed[i].fn, fn) != 0)
			continue;
		if (++inj_calls[i] == inj_armed[i].nth && hit == NULL)
			hit = &inj_armed[i];
	}
	return hit;
}

int __real_fsync(int fd);
int __wrap_fsync(int fd);
int __real_renameat2(int ofd, const char *o, int nfd, const char *n,
		     unsigned int flags);
int __wrap_renameat2(int ofd, const char *o, int nfd, const char *n,
		     unsigned int flags);
ssize_t __real_write(int fd, const void *buf, size_t len);
ssize_t __wrap_write(int fd, const void *buf, size_t len);
ssize_t __real_sendfile64(int out, int in, off64_t *off, size_t len);
ssize_t __wrap_sendfile64(int out, int in, off64_t *off, size_t len);

int
__wrap_fsync(int fd)
{
	const struct inj *i = inj_hit("fsync");

	inj_note('f');
	if (i != NULL) {
		errno = i->err;
		return -1;
	}
	return __real_fsync(fd);
}

int
__wrap_renameat2(int ofd, const char *o, int nfd, const char *n,
		 unsigned int flags)
{
	const struct inj *i = inj_hit("renameat2");

	inj_note('r');
	if (i != NULL) {
		errno = i->err;
		return -1;
	}
	return __real_renameat2(ofd, o, nfd, n, flags);
}

ssize_t
__wrap_write(int fd, const void *buf, size_t len)
{
	const struct inj *i = inj_hit("write");

	inj_note('w');
	if (i != NULL && i->short_io && len > 1)
		return __real_write(fd, buf, len / 2);
	if (i != NULL) {
		errno = i->err;
		return -1;
	}
	return __real_write(fd, buf, len);
}

ssize_t
__wrap_sendfile64(int out, int in, off64_t *off, size_t len)
{
	const struct inj *i = inj_hit("sendfile");

	inj_note('s');
	if (i != NULL) {
		errno = i->err;
		return -1;
	}
	return __real_sendfile64(out, in, off, len);
}

/* ---- fixture ---------------------------------------------------------- */

int
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
	f->body_fd = memfd_create("body", MFD_CLOEXEC);
	/* the file offset is left at the end: the save must read from 0 */
	if (f->body_fd < 0 ||
	    write(f->body_fd, BODY, sizeof(BODY) - 1) != sizeof(BODY) - 1)
		return -1;
	f->target = (struct store_target){ .mail_base = f->base,
		.mail_rel = "Maildir", .mailbox = "INBOX", .uid = geteuid() };
	f->req = (struct store_save_req){ .target = &f->target,
		.body_fd = f->body_fd, .body_size = sizeof(BODY) - 1,
		.body_vsize = BODY_VSIZE, .prefix = PREFIX,
		.prefix_len = sizeof(PREFIX) - 1, .guid = GUID_A,
		.host = "mx1.example.org", .flags = "" };
	umask(022);
	inj_disarm();
	*state = f;
	return 0;
}

int
teardown(void **state)
{
	struct fixture *f = *state;

	inj_disarm();
	close(f->body_fd);
	tu_rmtree(f->root);
	free(f);
	return 0;
}

const char *
md(const struct fixture *f, const char *sub)
{
	return tu_path("%s/Maildir%s%s", f->base, *sub ? "/" : "", sub);
}

static int
mode_of(const char *path)
{
	struct stat st;

	assert_int_equal(lstat(path, &st), 0);
	return (int)(st.st_mode & 07777);
}

void
check_one_saved(const char *dir, char *name_out)
{
	char *buf;
	ssize_t n;

	assert_int_equal(tu_only_entry(tu_path("%s/new", dir), name_out), 0);
	n = tu_read_file(tu_path("%s/new/%s", dir, name_out), &buf);
	assert_int_equal(n, sizeof(PREFIX BODY) - 1);
	assert_memory_equal(buf, PREFIX BODY, (size_t)n);
	free(buf);
	assert_int_equal(mode_of(tu_path("%s/new/%s", dir, name_out)), 0600);
	assert_int_equal(tu_count_entries(tu_path("%s/tmp", dir)), 0);
}

void
check_nothing_saved(const char *dir)
{
	assert_int_equal(tu_count_entries(tu_path("%s/new", dir)), 0);
	assert_int_equal(tu_count_entries(tu_path("%s/tmp", dir)), 0);
}

/* ---- layout and bytes ------------------------------------------------- */

static void
test_save_creates_maildir_0700_and_file_0600_with_exact_bytes(void **state)
{
	struct fixture *f = *state;
	struct store_save_result res;
	const char *what = "unset";
	char name[256], guid[STORE_GUID_HEX + 1];
	uint64_t size, vsize;

	assert_int_equal(store_save(&f->req, &res, &what), 0);
	assert_null(what);
	assert_false(res.duplicate);
	assert_int_equal(res.imap_uid, 1);
	assert_true(res.size == sizeof(PREFIX BODY) - 1);
	assert_int_equal(mode_of(md(f, "")), 0700);
	assert_int_equal(mode_of(md(f, "tmp")), 0700);
	assert_int_equal(mode_of(md(f, "new")), 0700);
	assert_int_equal(mode_of(md(f, "cur")), 0700);
	check_one_saved(md(f, ""), name);
	assert_string_equal(name, res.filename);
	assert_int_equal(store_name_parse(name, &size, &vsize, guid), 0);
	assert_true(size == sizeof(PREFIX BODY) - 1);
	/* W = body vsize + prefix bytes + one CR per LF of the prefix */
	assert_true(vsize == BODY_VSIZE + sizeof(PREFIX) - 1 + 2);
	assert_string_equal(guid, GUID_A);
	assert_non_null(strstr(name, ".mx1.example.org,S="));
	assert_int_equal(mode_of(md(f, STORE_INDEX_FILE)), 0600);

	f->req.guid = GUID_B;
	assert_int_equal(store_save(&f->req, &res, &what), 0);
	assert_int_equal(res.imap_uid, 2);
	assert_int_equal(tu_count_entries(md(f, "new")), 2);
}

/* LMTP saves carry fresh GUIDs and skip the index scan. */
static void
test_save_without_duplicate_check_writes_again(void **state)
{
	struct fixture *f = *state;
	struct store_save_result first, again;
	const char *what;

	assert_int_equal(store_save(&f->req, &first, &what), 0);
	assert_int_equal(store_save(&f->req, &again, &what), 0);
	assert_false(again.duplicate);
	assert_int_equal(tu_count_entries(md(f, "new")), 2);
}

static void
test_save_without_prefix_and_empty_body(void **state)
{
	struct fixture *f = *state;
	struct store_save_result res;
	const char *what;
	uint64_t size, vsize;

	f->req.prefix = NULL;
	f->req.prefix_len = 0;
	f->req.body_size = 0;
	f->req.body_vsize = 0;
	assert_int_equal(store_save(&f->req, &res, &what), 0);
	assert_int_equal(store_name_parse(res.filename, &size, &vsize, NULL), 0);
	assert_true(size == 0 && vsize == 0);
	assert_int_equal(tu_count_entries(md(f, "new")), 1);
}

static void
test_save_large_body_is_copied_exactly(void **state)
{
	struct fixture *f = *state;
	size_t len = 3u << 20, i;
	struct store_save_result res;
	char *body = malloc(len), *got;
	const char *what;
	int fd = memfd_create("big", MFD_CLOEXEC);

	assert_non_null(body);
	for (i = 0; i < len; i++)
		body[i] = (char)(i * 7 + i / 251);
	assert_int_equal(write(fd, body, len), (ssize_t)len);
	f->req.body_fd = fd;
	f->req.body_size = len;
	f->req.prefix_len = 0;
	assert_int_equal(store_save(&f->req, &res, &what), 0);
	assert_int_equal(tu_read_file(tu_path("%s/%s", md(f, "new"),
					      res.filename), &got), (ssize_t)len);
	assert_memory_equal(got, body, len);
	free(got);
	free(body);
	close(fd);
}

static void
test_save_folder_creates_dot_dir_with_maildirfolder(void **state)
{
	struct fixture *f = *state;
	struct store_save_result res;
	const char *what;
	char name[256];

	f->target.mailbox = "Archive/2024";
	assert_int_equal(store_save(&f->req, &res, &what), 0);
	assert_int_equal(res.imap_uid, 1);
	assert_int_equal(mode_of(md(f, ".Archive.2024")), 0700);
	assert_int_equal(mode_of(md(f, ".Archive.2024/maildirfolder")), 0600);
	check_one_saved(md(f, ".Archive.2024"), name);
	assert_int_equal(mode_of(md(f, ".Archive.2024/" STORE_INDEX_FILE)), 0600);
	assert_int_equal(access(md(f, "new"), F_OK), -1);   /* root has no mail */
}

static void
test_save_creates_missing_base_and_parents(void **state)
{
	struct fixture *f = *state;
	struct store_save_result res;
	const char *what;
	char base[PATH_MAX], name[256];

	snprintf(base, sizeof(base), "%.4000s/x/y/z", f->root);
	f->target.mail_base = base;
	f->target.mail_rel = "a/b/Maildir";
	assert_int_equal(store_save(&f->req, &res, &what), 0);
	assert_int_equal(mode_of(tu_path("%s/x/y", f->root)), 0700);
	assert_int_equal(mode_of(base), 0700);
	assert_int_equal(mode_of(tu_path("%s/a/b", base)), 0700);
	check_one_saved(tu_path("%s/a/b/Maildir", base), name);
}

/* ---- duplicates ------------------------------------------------------- */

static void
test_save_duplicate_guid_reports_duplicate_and_writes_nothing(void **state)
{
	struct fixture *f = *state;
	struct store_save_result first, again;
	struct store_index_state st;
	struct store_rec ex;
	const char *what;
	int dirfd;

	f->req.check_duplicate = true;
	assert_int_equal(store_save(&f->req, &first, &what), 0);
	assert_int_equal(store_save(&f->req, &again, &what), 0);
	assert_true(again.duplicate);
	assert_int_equal(again.imap_uid, first.imap_uid);
	assert_string_equal(again.filename, first.filename);
	assert_true(again.size == first.size);
	assert_int_equal(tu_count_entries(md(f, "new")), 1);
	assert_int_equal(tu_count_entries(md(f, "tmp")), 0);

	/* upper-case spelling of the same GUID is the same message */
	f->req.guid = "0123456789ABCDEF0123456789ABCDEF";
	assert_int_equal(store_save(&f->req, &again, &what), 0);
	assert_true(again.duplicate);

	/* after an expunge the GUID may be saved again */
	dirfd = open(md(f, ""), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	memset(&ex, 0, sizeof(ex));
	ex.op = STORE_REC_EXPUNGE;
	memcpy(ex.guid, GUID_A, STORE_GUID_HEX);
	assert_int_equal(store_index_append(dirfd, &ex, 1, &st), 0);
	close(dirfd);
	f->req.guid = GUID_A;
	assert_int_equal(store_save(&f->req, &again, &what), 0);
	assert_false(again.duplicate);
	assert_int_equal(again.imap_uid, 2);
	assert_int_equal(tu_count_entries(md(f, "new")), 2);
}

/* ---- attacks ---------------------------------------------------------- */

enum attack_where {
	ATTACK_MAILDIR, ATTACK_NEW, ATTACK_TMP, ATTACK_CUR, ATTACK_REL_COMPONENT,
	ATTACK_FOLDER, ATTACK_DANGLING,
};

static void
attack_prepare(struct fixture *f, enum attack_where where)
{
	const char *dirs[] = { "tmp", "new", "cur" };
	size_t i;

	if (where == ATTACK_NEW || where == ATTACK_TMP || where == ATTACK_CUR ||
	    where == ATTACK_FOLDER)
		assert_int_equal(mkdir(md(f, ""), 0700), 0);
	switch (where) {
	case ATTACK_MAILDIR:
		assert_int_equal(symlink(f->outside, md(f, "")), 0);
		break;
	case ATTACK_DANGLING:
		assert_int_equal(symlink(tu_path("%s/made", f->outside),
					 md(f, "")), 0);
		break;
	case ATTACK_REL_COMPONENT:
		f->target.mail_rel = "users/alice/Maildir";
		assert_int_equal(mkdir(tu_path("%s/users", f->base), 0700), 0);
		assert_int_equal(symlink(f->outside,
					 tu_path("%s/users/alice", f->base)), 0);
		break;
	case ATTACK_FOLDER:
		f->target.mailbox = "Sent";
		assert_int_equal(symlink(f->outside, md(f, ".Sent")), 0);
		break;
	case ATTACK_NEW:
	case ATTACK_TMP:
	case ATTACK_CUR:
		for (i = 0; i < 3; i++) {
			const char *p = md(f, dirs[i]);

			if ((where == ATTACK_TMP && i == 0) ||
			    (where == ATTACK_NEW && i == 1) ||
			    (where == ATTACK_CUR && i == 2))
				assert_int_equal(symlink(f->outside, p), 0);
			else
				assert_int_equal(mkdir(p, 0700), 0);
		}
		break;
	}
}

static void
test_save_symlink_anywhere_gives_eloop_and_writes_nothing_outside(void **state)
{
	static const enum attack_where cases[] = {
		ATTACK_MAILDIR, ATTACK_NEW, ATTACK_TMP, ATTACK_CUR,
		ATTACK_REL_COMPONENT, ATTACK_FOLDER, ATTACK_DANGLING,
	};
	struct fixture *f;
	struct store_save_result res;
	const char *what;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(setup((void **)&f), 0);
		attack_prepare(f, cases[i]);
		errno = 0;
		assert_int_equal(store_save(&f->req, &res, &what), -1);
		assert_int_equal(errno, ELOOP);
		assert_string_equal(what, "open Maildir");
		assert_int_equal(tu_count_entries(f->outside), 0);
		if (cases[i] == ATTACK_NEW || cases[i] == ATTACK_CUR)
			assert_int_equal(tu_count_entries(md(f, "tmp")), 0);
		teardown((void **)&f);
	}
	(void)state;
}

static void
test_save_maildir_of_other_owner_gives_eperm(void **state)
{
	struct fixture *f = *state;
	struct store_save_result res;
	const char *what;

	/* created by us, but the target is someone else */
	f->target.uid = geteuid() + 1;
	assert_int_equal(store_save(&f->req, &res, &what), -1);
	assert_int_equal(errno, EPERM);
	assert_string_equal(what, "open Maildir");
	assert_int_equal(access(md(f, "new"), F_OK), -1);
	/* already there, owned by us */
	assert_int_equal(store_save(&f->req, &res, &what), -1);
	assert_int_equal(errno, EPERM);
}

static void
test_save_subdir_of_other_owner_gives_eperm(void **state)
{
	static const char *subs[] = { "tmp", "new", "cur" };
	struct fixture *f;
	struct store_save_result res;
	const char *what;
	size_t i;

	(void)state;
	if (geteuid() != 0)
		skip();
	for (i = 0; i < 3; i++) {
		assert_int_equal(setup((void **)&f), 0);
		assert_int_equal(store_save(&f->req, &res, &what), 0);
		assert_int_equal(chown(md(f, subs[i]), 12345, 12345), 0);
		f->req.guid = GUID_B;
		assert_int_equal(store_save(&f->req, &res, &what), -1);
		assert_int_equal(errno, EPERM);
		assert_int_equal(tu_count_entries(md(f, "new")), 1);
		teardown((void **)&f);
	}
}

static void
test_save_new_as_regular_file_gives_enotdir(void **state)
{
	struct fixture *f = *state;
	struct store_save_result res;
	const char *what;

	assert_int_equal(mkdir(md(f, ""), 0700), 0);
	assert_int_equal(tu_write_file(md(f, "new"), "x", 1), 0);
	assert_int_equal(store_save(&f->req, &res, &what), -1);
	assert_int_equal(errno, ENOTDIR);
}

static void
test_save_dotdot_in_mail_rel_or_bad_mailbox_is_einval(void **state)
{
	struct fixture *f = *state;
	struct store_save_result res;
	const char *what;

	f->target.mail_rel = "a/../../outside";
	assert_int_equal(store_save(&f->req, &res, &what), -1);
	assert_int_equal(errno, EINVAL);
	assert_string_equal(what, "open Maildir");
	f->target.mail_rel = "Maildir";
	f->target.mailbox = "../x";
	assert_int_equal(store_save(&f->req, &res, &what), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(tu_count_entries(f->outside), 0);
}

static void
test_save_index_symlink_still_saves_with_uid_zero(void **state)
{
	struct fixture *f = *state;
	struct store_save_result res;
	const char *what;
	char name[256], victim[PATH_MAX], *buf;

	snprintf(victim, sizeof(victim), "%.4000s/victim", f->outside);
	assert_int_equal(store_save(&f->req, &res, &what), 0);
	assert_int_equal(unlink(md(f, STORE_INDEX_FILE)), 0);
	assert_int_equal(tu_write_file(victim, "keep", 4), 0);
	assert_int_equal(symlink(victim, md(f, STORE_INDEX_FILE)), 0);
	assert_int_equal(unlink(tu_path("%s/%s", md(f, "new"), res.filename)), 0);
	f->req.guid = GUID_B;
	assert_int_equal(store_save(&f->req, &res, &what), 0);
	assert_int_equal(res.imap_uid, 0);
	check_one_saved(md(f, ""), name);
	assert_int_equal(tu_count_entries(f->outside), 1);
	assert_int_equal(tu_read_file(victim, &buf), 4);
	assert_memory_equal(buf, "keep", 4);
	free(buf);
}

/* ---- requests --------------------------------------------------------- */

static void
test_save_bad_request_is_einval_and_touches_nothing(void **state)
{
	struct fixture *f = *state;
	struct store_save_result res;
	struct store_save_req r;
	char flags[200];
	const char *what;
	int i;

	for (i = 0; i < 4; i++) {
		r = f->req;
		memset(flags, 'f', sizeof(flags) - 1);
		flags[sizeof(flags) - 1] = '\0';
		if (i == 0)
			r.guid = "not-a-guid";
		else if (i == 1)
			r.prefix = NULL;
		else if (i == 2)
			r.flags = flags;
		else
			r.body_fd = -1;
		assert_int_equal(store_save(&r, &res, &what), -1);
		assert_int_equal(errno, EINVAL);
		assert_string_equal(what, "check request");
	}
	assert_int_equal(access(md(f, ""), F_OK), -1);
}

static void
test_save_body_shorter_than_size_gives_eio(void **state)
{
	struct fixture *f = *state;
	struct store_save_result res;
	const char *what;

	f->req.body_size += 10;
	assert_int_equal(store_save(&f->req, &res, &what), -1);
	assert_int_equal(errno, EIO);
	assert_string_equal(what, "copy body");
	check_nothing_saved(md(f, ""));
}

/* ---- failing steps ---------------------------------------------------- */

struct fail_case {
	struct inj inj[2];
	int ret;
	int err;             /* when ret is -1 */
	const char *what;    /* when ret is -1 */
	uint32_t uid;        /* when ret is 0 */
};

/*
 * Calls in a fresh mailbox: write #1 = prefix, #2 = index header, #3 =
 * index transaction; fsync #1 = tmp file, #2 = new/; sendfile #1 = body.
 */
static const struct fail_case fail_cases[] = {
	{ { { "fsync", 1, EIO, false } }, -1, EIO, "fsync", 0 },
	{ { { "fsync", 1, ENOSPC, false } }, -1, ENOSPC, "fsync", 0 },
	{ { { "fsync", 1, EDQUOT, false } }, -1, EDQUOT, "fsync", 0 },
	{ { { "fsync", 2, EIO, false } }, -1, EIO, "fsync new", 0 },
	{ { { "fsync", 2, ENOSPC, false } }, -1, ENOSPC, "fsync new", 0 },
	{ { { "renameat2", 1, EIO, false } }, -1, EIO, "rename into new", 0 },
	{ { { "renameat2", 1, EDQUOT, false } }, -1, EDQUOT, "rename into new", 0 },
	{ { { "renameat2", 1, EEXIST, false } }, -1, EEXIST, "rename into new", 0 },
	{ { { "write", 1, ENOSPC, false } }, -1, ENOSPC, "write", 0 },
	{ { { "write", 1, EDQUOT, false } }, -1, EDQUOT, "write", 0 },
	{ { { "write", 1, 0, true }, { "write", 2, EDQUOT, false } },
	  -1, EDQUOT, "write", 0 },
	{ { { "sendfile", 1, ENOSPC, false } }, -1, ENOSPC, "copy body", 0 },
	{ { { "sendfile", 1, EDQUOT, false } }, -1, EDQUOT, "copy body", 0 },
	{ { { "sendfile", 1, EIO, false } }, -1, EIO, "copy body", 0 },
	/* sendfile unusable: pread/write fallback (body = write #2) */
	{ { { "sendfile", 1, EINVAL, false } }, 0, 0, NULL, 1 },
	{ { { "sendfile", 1, ENOSYS, false } }, 0, 0, NULL, 1 },
	{ { { "sendfile", 1, EINVAL, false }, { "write", 2, ENOSPC, false } },
	  -1, ENOSPC, "copy body", 0 },
	/* no RENAME_NOREPLACE: linkat + unlink fallback */
	{ { { "renameat2", 1, EINVAL, false } }, 0, 0, NULL, 1 },
	{ { { "renameat2", 1, EINVAL, false }, { "fsync", 2, EIO, false } },
	  -1, EIO, "fsync new", 0 },
	/* index failures do not undo a durable save */
	{ { { "write", 2, ENOSPC, false } }, 0, 0, NULL, 0 },
	{ { { "write", 3, EIO, false } }, 0, 0, NULL, 0 },
	{ { { "write", 3, 0, true } }, 0, 0, NULL, 0 },
};

static void
run_fail_case(const struct fail_case *c, size_t n)
{
	struct store_save_result res;
	struct store_index_state st;
	struct fixture *f;
	const char *what = "unset";
	char name[256];
	int rc, dirfd;

	assert_int_equal(setup((void **)&f), 0);
	inj_arm(c->inj);
	errno = 0;
	rc = store_save(&f->req, &res, &what);
	inj_disarm();
	if (rc != c->ret)
		fail_msg("case %zu: store_save returned %d", n, rc);
	if (c->ret < 0) {
		assert_int_equal(errno, c->err);
		assert_string_equal(what, c->what);
		check_nothing_saved(md(f, ""));
	} else {
		assert_int_equal(res.imap_uid, c->uid);
		check_one_saved(md(f, ""), name);
		assert_string_equal(name, res.filename);
	}
	/* the index is usable afterwards and holds only what was reported */
	dirfd = open(md(f, ""), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_int_equal(store_index_read(dirfd, NULL, NULL, &st), 0);
	assert_int_equal(st.messages, c->ret == 0 && c->uid != 0 ? 1 : 0);
	close(dirfd);
	f->req.guid = GUID_B;
	assert_int_equal(store_save(&f->req, &res, &what), 0);
	assert_int_equal(res.imap_uid, c->ret == 0 && c->uid != 0 ? 2 : 1);
	teardown((void **)&f);
}

static void
test_save_failing_step_reports_it_and_leaves_nothing(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(fail_cases) / sizeof(fail_cases[0]); i++)
		run_fail_case(&fail_cases[i], i);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
		T(test_save_creates_maildir_0700_and_file_0600_with_exact_bytes),
		T(test_save_without_prefix_and_empty_body),
		T(test_save_large_body_is_copied_exactly),
		T(test_save_folder_creates_dot_dir_with_maildirfolder),
		T(test_save_creates_missing_base_and_parents),
		T(test_save_duplicate_guid_reports_duplicate_and_writes_nothing),
		T(test_save_without_duplicate_check_writes_again),
		cmocka_unit_test(test_save_symlink_anywhere_gives_eloop_and_writes_nothing_outside),
		T(test_save_maildir_of_other_owner_gives_eperm),
		cmocka_unit_test(test_save_subdir_of_other_owner_gives_eperm),
		T(test_save_new_as_regular_file_gives_enotdir),
		T(test_save_dotdot_in_mail_rel_or_bad_mailbox_is_einval),
		T(test_save_index_symlink_still_saves_with_uid_zero),
		T(test_save_bad_request_is_einval_and_touches_nothing),
		T(test_save_body_shorter_than_size_gives_eio),
		cmocka_unit_test(test_save_failing_step_reports_it_and_leaves_nothing),
		/* test_save_stamp.c */
		T(test_save_stamped_announces_before_fsync_and_saves_once),
		T(test_save_unstamped_appends_index_after_fsyncs),
		cmocka_unit_test(test_save_stamped_failing_after_stamp_is_expunged),
		T(test_save_stamped_expunge_failing_too_reports_modseq_zero),
		T(test_save_stamped_index_failing_is_not_announced),
		T(test_save_stamped_unusable_index_saves_without_callback),
		T(test_save_stamped_duplicate_is_not_announced),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
