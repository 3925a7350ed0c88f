/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/storage/repl/test_repl_subs.c - the subscriptions of a
 * Maildir in replication: SUBSCRIBE and UNSUBSCRIBE change Dovecot's
 * subscriptions file (doc/replication-protocol.md §8.13); change capture
 * reports what others changed in it, once, and not stowd's own changes
 * (§7.6).
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

/* ---- capture ------------------------------------------------------------ */

struct reported {
	char ops[16][300];
	int n;
};

static int
report_cb(const char *op, const char *a, const char *b, void *arg)
{
	struct reported *r = arg;

	if (r->n < 16)
		snprintf(r->ops[r->n++], sizeof(r->ops[0]), "%s %s%s%s", op, a,
			 b != NULL ? " " : "", b != NULL ? b : "");
	return 0;
}

static struct reported
capture(struct fixture *f)
{
	struct reported r = { .n = 0 };
	const char *what = "unset";

	assert_int_equal(store_repl_capture_boxes(&f->c, report_cb, &r, &what), 0);
	assert_null(what);
	return r;
}

/* A change of the subscriptions as Dovecot makes it (its lock, its
 * format), on the name as IMAP gives it. */
static void
dovecot_subscribe(struct fixture *f, const char *name, bool on)
{
	int root = open(f->md, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	assert_true(root >= 0);
	assert_int_equal(store_subs_set(root, '.', name, on, NULL), 0);
	close(root);
}

static void
mkfolder(struct fixture *f, const char *dir)
{
	assert_int_equal(mkdir(tu_path("%s/%s", f->md, dir), 0700), 0);
	assert_int_equal(mkdir(tu_path("%s/%s/new", f->md, dir), 0700), 0);
	assert_int_equal(mkdir(tu_path("%s/%s/cur", f->md, dir), 0700), 0);
}

/* What Dovecot subscribes or unsubscribes is reported once, after the
 * folder changes of the same look; the first look reports nothing; names
 * that cannot travel (§4) are left out. */
void
test_capture_reports_subscriptions_of_others(void **state)
{
	struct fixture *f = *state;
	struct store_repl_result res;
	struct reported r;

	assert_int_equal(store_repl_create(&f->c, "INBOX", &res, NULL), 0);
	dovecot_subscribe(f, "Work", true);
	dovecot_subscribe(f, "A.B", true);
	/* the first look: recorded, not reported */
	assert_int_equal(capture(f).n, 0);
	assert_int_equal(access(tu_path("%s/stowd-subscriptions", f->md), F_OK), 0);
	dovecot_subscribe(f, "Work", false);
	dovecot_subscribe(f, "Sent Messages", true);
	dovecot_subscribe(f, "inbox", true);
	r = capture(f);
	assert_int_equal(r.n, 3);
	assert_string_equal(r.ops[0], "UNSUBSCRIBE Work");
	assert_string_equal(r.ops[1], "SUBSCRIBE INBOX");
	assert_string_equal(r.ops[2], "SUBSCRIBE Sent Messages");
	assert_int_equal(capture(f).n, 0);
	/* a folder and its subscription, as an IMAP client makes them */
	mkfolder(f, ".Lists");
	dovecot_subscribe(f, "Lists", true);
	r = capture(f);
	assert_int_equal(r.n, 2);
	assert_string_equal(r.ops[0], "CREATE Lists");
	assert_string_equal(r.ops[1], "SUBSCRIBE Lists");
	/* names that are no protocol mailbox names are not captured */
	dovecot_subscribe(f, "shared/bob", true);
	dovecot_subscribe(f, "a..b", true);
	assert_int_equal(capture(f).n, 0);
	/* the whole file removed: every name is unsubscribed */
	assert_int_equal(unlink(tu_path("%s/subscriptions", f->md)), 0);
	r = capture(f);
	assert_int_equal(r.n, 4);
	assert_string_equal(r.ops[0], "UNSUBSCRIBE A.B");
	assert_string_equal(r.ops[1], "UNSUBSCRIBE INBOX");
	assert_string_equal(r.ops[2], "UNSUBSCRIBE Lists");
	assert_string_equal(r.ops[3], "UNSUBSCRIBE Sent Messages");
}

/* stowd's own SUBSCRIBE and UNSUBSCRIBE are noted, not reported; a
 * change of others in between still is. */
void
test_capture_does_not_report_own_subscriptions(void **state)
{
	struct fixture *f = *state;
	struct store_repl_result res;
	struct reported r;

	assert_int_equal(store_repl_create(&f->c, "INBOX", &res, NULL), 0);
	assert_int_equal(capture(f).n, 0);
	assert_true(subscribe(f, "Work", true).effective);
	assert_true(subscribe(f, "Old", true).effective);
	assert_int_equal(capture(f).n, 0);
	dovecot_subscribe(f, "Mine", true);
	assert_true(subscribe(f, "Old", false).effective);
	/* a replay changes nothing and notes nothing */
	assert_false(subscribe(f, "Work", true).effective);
	r = capture(f);
	assert_int_equal(r.n, 1);
	assert_string_equal(r.ops[0], "SUBSCRIBE Mine");
	assert_int_equal(capture(f).n, 0);
	/* without stowd-subscriptions, stowd's change is the first look */
	assert_int_equal(unlink(tu_path("%s/stowd-subscriptions", f->md)), 0);
	assert_true(subscribe(f, "New", true).effective);
	assert_int_equal(capture(f).n, 0);
}

/* The files are the user's: a damaged stowd-subscriptions is a first
 * look; one that is a symlink or a damaged subscriptions file costs the
 * subscriptions of that look only (nothing reported, nothing written, the
 * folders still captured); once readable, the change is reported. */
void
test_capture_subscriptions_damaged_files(void **state)
{
	static const char junk[] = "stowd-subscriptions 1\nok\n..bad\n";
	struct fixture *f = *state;
	struct store_repl_result res;
	struct reported r;
	char *text = NULL;
	ssize_t n;

	assert_int_equal(store_repl_create(&f->c, "INBOX", &res, NULL), 0);
	dovecot_subscribe(f, "Work", true);
	assert_int_equal(capture(f).n, 0);
	/* damaged: written anew, nothing reported */
	assert_int_equal(tu_write_file(tu_path("%s/stowd-subscriptions", f->md), junk,
				       sizeof(junk) - 1), 0);
	dovecot_subscribe(f, "Other", true);
	assert_int_equal(capture(f).n, 0);
	n = tu_read_file(tu_path("%s/stowd-subscriptions", f->md), &text);
	assert_int_equal(n, (ssize_t)strlen("stowd-subscriptions 1\nOther\nWork\n"));
	assert_memory_equal(text, "stowd-subscriptions 1\nOther\nWork\n", (size_t)n);
	free(text);
	/* subscriptions with a NUL: not read, not reported, nothing lost */
	assert_int_equal(tu_write_file(tu_path("%s/subscriptions", f->md),
				       "V\t2\n\nWork\n\0x\n", 12), 0);
	mkfolder(f, ".Lists");
	r = capture(f);
	assert_int_equal(r.n, 1);
	assert_string_equal(r.ops[0], "CREATE Lists");
	assert_int_equal(tu_write_file(tu_path("%s/subscriptions", f->md),
				       "V\t2\n\nWork\n", 9), 0);
	r = capture(f);
	assert_int_equal(r.n, 1);
	assert_string_equal(r.ops[0], "UNSUBSCRIBE Other");
	/* stowd-subscriptions a symlink: not followed, the look goes on */
	assert_int_equal(unlink(tu_path("%s/stowd-subscriptions", f->md)), 0);
	assert_int_equal(symlink("/etc/passwd", tu_path("%s/stowd-subscriptions", f->md)), 0);
	dovecot_subscribe(f, "Third", true);
	mkfolder(f, ".More");
	r = capture(f);
	assert_int_equal(r.n, 1);
	assert_string_equal(r.ops[0], "CREATE More");
	assert_true(subscribe(f, "Fourth", true).effective);
}
