/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/storage/test_save.h - shared by test_save.c and
 * test_save_stamp.c, the two files of the storage_save program: the test
 * message, the Maildir fixture, the fault injection of the --wrap mocks
 * (in test_save.c) and the tests of test_save_stamp.c.
 */
#ifndef STOWD_TESTS_STORAGE_TEST_SAVE_H
#define STOWD_TESTS_STORAGE_TEST_SAVE_H

#include <limits.h>
#include <stdbool.h>

#include "storage/storage.h"

#define GUID_A "0123456789abcdef0123456789abcdef"
#define GUID_B "fedcba9876543210fedcba9876543210"
#define PREFIX "Return-Path: <a@example.org>\nDelivered-To: b@example.org\n"
#define BODY "Subject: hi\n\nhello\nworld\n"
#define BODY_VSIZE (sizeof(BODY) - 1 + 4)

/* ---- fault injection (the mocks of fsync, renameat2, write, sendfile64) */

struct inj {
	const char *fn;   /* "fsync", "renameat2", "write", "sendfile" */
	int nth;          /* fail the nth call from arming on (1 = first) */
	int err;          /* errno to fail with */
	bool short_io;    /* instead: do half of a write and report that */
};

void inj_arm(const struct inj spec[2]);
/* Disarm, and stop a trace. */
void inj_disarm(void);
/* Record the order of the mocked calls from now on, one letter per call:
 * f fsync, r renameat2, w write, s sendfile (at most 31). */
void inj_trace_start(void);
/* Add c to the trace (a test's own marker, e.g. a callback). */
void inj_note(char c);
/* Stop recording; the trace so far. */
const char *inj_trace_stop(void);

/* ---- fixture ---------------------------------------------------------- */

struct fixture {
	char root[PATH_MAX];
	char base[PATH_MAX];
	char outside[PATH_MAX];   /* must stay empty in attack tests */
	int body_fd;
	struct store_target target;
	struct store_save_req req;   /* PREFIX + BODY as GUID_A into INBOX */
};

int setup(void **state);
int teardown(void **state);
/* Path below the Maildir of f (mail_rel "Maildir"). */
const char *md(const struct fixture *f, const char *sub);
/* new/ of dir holds exactly one file with prefix + body; returns it. */
void check_one_saved(const char *dir, char *name_out);
/* new/ and tmp/ of dir are empty. */
void check_nothing_saved(const char *dir);

/* ---- the tests of test_save_stamp.c ------------------------------------ */

void test_save_stamped_announces_before_fsync_and_saves_once(void **state);
void test_save_unstamped_appends_index_after_fsyncs(void **state);
void test_save_stamped_failing_after_stamp_is_expunged(void **state);
void test_save_stamped_expunge_failing_too_reports_modseq_zero(void **state);
void test_save_stamped_index_failing_is_not_announced(void **state);
void test_save_stamped_unusable_index_saves_without_callback(void **state);
void test_save_stamped_duplicate_is_not_announced(void **state);

#endif
