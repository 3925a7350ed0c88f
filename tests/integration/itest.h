/* SPDX-License-Identifier: MIT */
/*
 * tests/integration/itest.h - cmocka glue shared by the integration
 * programs: start/stop a harness with assertions, per-test log dumps,
 * message bodies, and the "this reply means this file" checks.
 *
 * Runs in:  integration test programs (root, a real stowd).
 * Use:      each program keeps its harness in a static pointer, frees it in
 *           a teardown (so a failed assertion still cleans up), calls
 *           itest_begin() at the start of a test and itest_pass() as its
 *           last statement; itest_end() (teardown) prints the part of
 *           stowd.log written during a test that did not pass.
 */
#ifndef STOWD_TESTS_ITEST_H
#define STOWD_TESTS_ITEST_H

#include <stdbool.h>
#include <stddef.h>

#include "tests/lib/harness.h"
#include "tests/lib/lmtpc.h"

#define ITEST_SENDER "sender@example.net"
#define ITEST_MINI_BODY "Subject: mini\r\n\r\nmini body\r\n"

/* A started harness (asserts on failure). */
struct harness *itest_start(const struct harness_opts *o);

/*
 * Programs whose tests share one stowd: the group setup calls
 * itest_group_start(&H, opts) (a started harness in H, or -1), the group
 * teardown is itest_group_teardown (stops and frees it), and every test
 * uses itest_setup /
 * itest_teardown, which do the log bookkeeping for the harness registered
 * by itest_group_start (or itest_use).
 */
int itest_group_start(struct harness **h, const struct harness_opts *o);
int itest_group_teardown(void **state);
void itest_use(struct harness **h);
int itest_setup(void **state);
int itest_teardown(void **state);

/* Programs with one stowd per test: the setup calls itest_test_start(&H,
 * opts) (started, log mark set), the teardown is itest_test_teardown. */
int itest_test_start(struct harness **h, const struct harness_opts *o);
int itest_test_teardown(void **state);

/* Log bookkeeping around one test. */
void itest_begin(struct harness *h);
void itest_pass(struct harness *h);
void itest_end(struct harness *h);

/* A connection with the greeting read (asserts). */
struct lmtpc *itest_connect(struct harness *h, enum harness_listener which);

/* Send a command and assert the reply code; the reply in *r (may be NULL). */
void itest_cmd(struct lmtpc *c, int code, struct lmtpc_reply *r, const char *fmt,
	       ...) __attribute__((format(printf, 4, 5)));

/* LHLO + MAIL FROM (asserts 250s). */
void itest_envelope(struct lmtpc *c);

/*
 * A message of about size bytes (at least its headers): CRLF lines,
 * some starting with '.', one "." and one ".." line, so DATA must
 * dot-stuff it.  seed varies the text.  Caller frees.
 */
char *itest_body(size_t size, unsigned seed, size_t *len_out);

/*
 * Assert that reply is "250 2.0.0 ... Saved as <guid>" naming user idx's
 * address, that the file with that GUID is in the user's new/, owned by
 * the user, mode 0600, that Maildir, tmp, new, cur are 0700 and owned by
 * the user, and that the file is the added headers + body (CRLF -> LF).
 * The file's path goes to path_out (may be NULL).
 */
void itest_assert_saved(struct harness *h, unsigned idx,
			const struct lmtpc_reply *reply, const char *body,
			size_t len, char *path_out, size_t path_size);

/* Assert the reply is a 4xx or 5xx (failure for a recipient). */
void itest_assert_refused(const struct lmtpc_reply *r, const char *what);

/* Count of new/ files of user idx (asserts it could be read). */
int itest_count_new(struct harness *h, unsigned idx);

#endif
