/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/storage/repl/test_repl_crash.c - a replicated SAVE whose
 * writer is killed between its index record and the rename that puts the
 * file in place (test hook store_repl_test_mid_save, in a child process
 * that _exits there), and one that fails at that point: whatever comes
 * next (the SAVE sent again, an EXPUNGE of the GUID, a reconcile) leaves
 * exactly the one file the index says, never a second copy or a file the
 * index holds as expunged.  Part of the storage_repl program (main in
 * test_repl.c); test builds only (the hook).
 */
#include <dirent.h>
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

#include "storage/repl/repl.h"
#include "storage/storage.h"
#include "tests/unit/storage/util.h"
#include "tests/unit/storage/repl/test_repl.h"

#ifdef STOWD_TEST_HOOKS

#define DIED_MID_SAVE 42

static void
die_mid_save(int dest_fd, const char *name)
{
	(void)dest_fd;
	(void)name;
	_exit(DIED_MID_SAVE);
}

/* The name the SAVE is about to take is there already: the rename fails
 * after the record. */
static void
block_mid_save(int dest_fd, const char *name)
{
	int fd = openat(dest_fd, name, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);

	assert_true(fd >= 0);
	close(fd);
}

/* A SAVE of guid (origin a.example) into INBOX killed between its record
 * and its rename: in a child, as a writer the supervisor SIGKILLs. */
static void
save_killed_mid_save(struct fixture *f, const char *guid)
{
	pid_t pid = fork();
	int status;

	assert_true(pid >= 0);
	if (pid == 0) {
		store_repl_test_mid_save = die_mid_save;
		(void)save(f, "INBOX", guid, 5, "a.example", 0, "");
		_exit(1);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), DIED_MID_SAVE);
}

/* Entries of Maildir/SUB whose name holds guid. */
static int
files_of(struct fixture *f, const char *sub, const char *guid)
{
	DIR *d = opendir(tu_path("%s/%s", f->md, sub));
	struct dirent *de;
	int k = 0;

	assert_non_null(d);
	while ((de = readdir(d)) != NULL)
		k += strstr(de->d_name, guid) != NULL;
	closedir(d);
	return k;
}

static int
placed(struct fixture *f, const char *guid)
{
	return files_of(f, "new", guid) + files_of(f, "cur", guid);
}

/* The state a kill leaves: the index holds the SAVE, the file is still in
 * tmp/ and no process holds its lock. */
static void
assert_left_in_tmp(struct fixture *f, const char *guid)
{
	assert_int_equal(rec_count(f, guid, STORE_REC_SAVE), 1);
	assert_int_equal(placed(f, guid), 0);
	assert_int_equal(files_of(f, "tmp", guid), 1);
}

/* The master sends the SAVE again (no OK came): the file is placed, once;
 * the answer is a duplicate (the UID of the first record). */
void
test_save_killed_after_its_record_is_finished_by_the_retry(void **state)
{
	struct fixture *f = *state;
	struct store_repl_result r;

	save_killed_mid_save(f, G1);
	assert_left_in_tmp(f, G1);
	r = save(f, "INBOX", G1, 5, "a.example", 0, "");
	assert_int_equal(r.status, STORE_R_DUPLICATE);
	assert_int_equal(r.uid, 1);
	assert_int_equal(placed(f, G1), 1);
	assert_int_equal(files_of(f, "tmp", G1), 0);
	assert_int_equal(access(tu_path("%s/new/%s", f->md, r.filename), F_OK), 0);
	assert_int_equal(rec_count(f, G1, STORE_REC_SAVE), 1);
	assert_true(present(f, G1));
	/* and once more: nothing changes */
	r = save(f, "INBOX", G1, 5, "a.example", 0, "");
	assert_int_equal(r.status, STORE_R_DUPLICATE);
	assert_int_equal(placed(f, G1), 1);
}

/* The master expunged the message meanwhile (its own save was not
 * answered): the EXPUNGE removes the file from tmp/ and tombstones it. */
void
test_save_killed_after_its_record_is_undone_by_expunge(void **state)
{
	struct fixture *f = *state;
	struct store_repl_result r;

	save_killed_mid_save(f, G1);
	assert_left_in_tmp(f, G1);
	r = expunge(f, "INBOX", G1, 6);
	assert_true(r.effective);
	assert_int_equal(placed(f, G1), 0);
	assert_int_equal(files_of(f, "tmp", G1), 0);
	assert_false(present(f, G1));
	assert_int_equal(rec_count(f, G1, STORE_REC_EXPUNGE), 1);
	/* the SAVE sent again after that is refused for good */
	r = save(f, "INBOX", G1, 5, "a.example", 0, "");
	assert_int_equal(r.status, STORE_R_EXPUNGED);
	assert_int_equal(placed(f, G1), 0);
}

/* A reconcile (a capture of the mailbox, a resync) finds the file of a
 * replicated SAVE in tmp/: it is the master's message, so it is placed,
 * not tombstoned (an EXPUNGE from here would delete it on the master). */
void
test_save_killed_after_its_record_is_placed_by_reconcile(void **state)
{
	struct fixture *f = *state;
	bool changed;

	save_killed_mid_save(f, G1);
	assert_left_in_tmp(f, G1);
	assert_int_equal(store_repl_reconcile(&f->c, "INBOX", &changed, NULL), 0);
	assert_false(changed);
	assert_int_equal(placed(f, G1), 1);
	assert_int_equal(files_of(f, "tmp", G1), 0);
	assert_true(present(f, G1));
	assert_int_equal(rec_count(f, G1, STORE_REC_EXPUNGE), 0);
	assert_int_equal(rec_count(f, G1, STORE_REC_LOST), 0);
	/* the next reconcile takes it as an ordinary message */
	assert_int_equal(store_repl_reconcile(&f->c, "INBOX", &changed, NULL), 0);
	assert_false(changed);
	assert_int_equal(placed(f, G1), 1);
}

/* The rename fails after the record: the SAVE fails, its tmp file goes,
 * and the record is followed by LOST (not an expunge: the message is the
 * master's); the SAVE sent again stores it. */
void
test_save_failing_after_its_record_is_lost_not_expunged(void **state)
{
	struct fixture *f = *state;
	struct store_stamp s = stamp(5, "a.example");
	struct store_repl_result r;
	const char *what = NULL;
	int fd = body_fd(BODY), ret, err;

	store_repl_test_mid_save = block_mid_save;
	ret = store_repl_save(&f->c, "INBOX", G1, &s, 0, 1718000000, "", fd,
			      strlen(BODY), NULL, 0, &r, &what);
	err = errno;
	store_repl_test_mid_save = NULL;
	close(fd);
	assert_int_equal(ret, -1);
	assert_int_equal(err, EEXIST);
	assert_string_equal(what, "rename into new");
	assert_int_equal(files_of(f, "tmp", G1), 0);
	assert_int_equal(placed(f, G1), 1);   /* only the name that blocked it */
	assert_int_equal(rec_count(f, G1, STORE_REC_SAVE), 1);
	assert_int_equal(rec_count(f, G1, STORE_REC_LOST), 1);
	assert_int_equal(rec_count(f, G1, STORE_REC_EXPUNGE), 0);
	assert_false(present(f, G1));
	r = save(f, "INBOX", G1, 5, "a.example", 0, "");
	assert_int_equal(r.status, STORE_R_OK);
	assert_true(r.effective);
	assert_true(present(f, G1));
	assert_int_equal(placed(f, G1), 2);   /* the message and the blocker */
}

#endif /* STOWD_TEST_HOOKS */
