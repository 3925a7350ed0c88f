/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/storage/repl/test_repl_subs.c - the subscriptions of a
 * Maildir in replication: SUBSCRIBE and UNSUBSCRIBE change Dovecot's
 * subscriptions file (doc/replication-protocol.md §8.13).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/unit/storage/repl/test_repl.h"

static struct store_repl_result
subscribe(struct fixture *f, const char *mailbox, bool on)
{
	struct store_repl_result r;
	const char *what = "unset";

	assert_int_equal(store_repl_subscribe(&f->c, mailbox, on, &r, &what), 0);
	assert_null(what);
	assert_int_equal(r.status, STORE_R_OK);
	return r;
}

/* The subscriptions file as text ("" when it is missing). */
static char *
subs_text(struct fixture *f)
{
	char *buf = NULL, *text;
	ssize_t n = tu_read_file(tu_path("%s/subscriptions", f->md), &buf);

	text = n < 0 ? strdup("") : strndup(buf, (size_t)n);
	free(buf);
	assert_non_null(text);
	return text;
}

static void
assert_subs(struct fixture *f, const char *want)
{
	char *text = subs_text(f);

	assert_string_equal(text, want);
	free(text);
}

/* SUBSCRIBE and UNSUBSCRIBE write Dovecot's format, are idempotent (a
 * replay is not effective), need no folder, and take "inbox" as INBOX. */
void
test_subscribe_unsubscribe_idempotent(void **state)
{
	struct fixture *f = *state;
	struct store_repl_result r;
	const char *what;

	/* no Maildir yet: UNSUBSCRIBE has nothing to do, SUBSCRIBE makes it */
	assert_false(subscribe(f, "Work", false).effective);
	assert_int_equal(access(f->md, F_OK), -1);
	assert_true(subscribe(f, "Work.2024", true).effective);
	assert_subs(f, "V\t2\n\nWork\t2024\n");
	assert_false(subscribe(f, "Work.2024", true).effective);
	assert_true(subscribe(f, "Sent Messages", true).effective);
	assert_true(subscribe(f, "inbox", true).effective);
	assert_false(subscribe(f, "INBOX", true).effective);
	assert_subs(f, "V\t2\n\nWork\t2024\nSent Messages\nINBOX\n");
	assert_true(subscribe(f, "Work.2024", false).effective);
	assert_false(subscribe(f, "Work.2024", false).effective);
	assert_false(subscribe(f, "Never", false).effective);
	assert_true(subscribe(f, "Inbox", false).effective);
	assert_subs(f, "V\t2\n\nSent Messages\n");
	/* no folder was made for any of them */
	assert_int_equal(access(tu_path("%s/.Work.2024", f->md), F_OK), -1);
	/* bad names are refused */
	assert_int_equal(store_repl_subscribe(&f->c, "a..b", true, &r, &what), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(store_repl_subscribe(&f->c, ".Sent", false, &r, &what), -1);
	assert_int_equal(errno, EINVAL);
}

/* A subscriptions.lock another program keeps fresh is waited for a few
 * seconds, then the operation fails with EAGAIN (retried later). */
void
test_subscribe_waits_for_the_lock_then_eagain(void **state)
{
	struct fixture *f = *state;
	struct store_repl_result r;
	const char *what = NULL;

	assert_true(subscribe(f, "A", true).effective);
	assert_int_equal(tu_write_file(tu_path("%s/subscriptions.lock", f->md),
				       "", 0), 0);
	assert_int_equal(store_repl_subscribe(&f->c, "B", true, &r, &what), -1);
	assert_int_equal(errno, EAGAIN);
	assert_string_equal(what, "subscriptions");
	assert_int_equal(unlink(tu_path("%s/subscriptions.lock", f->md)), 0);
	assert_true(subscribe(f, "B", true).effective);
	assert_subs(f, "V\t2\n\nA\nB\n");
}
