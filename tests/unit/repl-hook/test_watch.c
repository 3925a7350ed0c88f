/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/repl-hook/test_watch.c - what change capture makes of one
 * inotify event (repl-hook/watch.c, hook_watch_classify): message files
 * in new/ and cur/ appear, go and are renamed; folders appear in the
 * Maildir root; Dovecot's subscriptions file is replaced; Dovecot's other
 * files and hidden names are no changes; a queue overflow asks for a full
 * resync.  And the names of a mailbox's events (watch_names.c): kept
 * once each, checked, bounded, passed as a sealed list; past the bound or
 * for a doubtful name, the whole mailbox.
 */
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <cmocka.h>

#include "repl-hook/hook_int.h"

#define V(mask, name, root) hook_watch_classify((mask), (name), (root))

static void
test_message_files_in_new_and_cur_are_changes(void **state)
{
	static const char name[] = "1700000000.M1P1Q1G0190f3a2b4c8d2a1e5f6a7b8c9d0e1f2.h,S=3";

	(void)state;
	/* delivered or moved in (new/ -> cur/, COPY/MOVE from another folder) */
	assert_int_equal(V(IN_MOVED_TO, name, false), HOOK_WATCH_CHANGE);
	/* expunged, moved away, renamed for flags */
	assert_int_equal(V(IN_DELETE, name, false), HOOK_WATCH_CHANGE);
	assert_int_equal(V(IN_MOVED_FROM, "x:2,S", false), HOOK_WATCH_CHANGE);
	assert_int_equal(V(IN_MOVED_TO, "x:2,FS", false), HOOK_WATCH_CHANGE);
	/* a file made in place (cp, a hard link) */
	assert_int_equal(V(IN_CREATE, name, false), HOOK_WATCH_CHANGE);
}

static void
test_hidden_names_and_directories_in_new_cur_ignored(void **state)
{
	(void)state;
	assert_int_equal(V(IN_CREATE, ".nfs0001", false), HOOK_WATCH_NOTHING);
	assert_int_equal(V(IN_CREATE | IN_ISDIR, "sub", false), HOOK_WATCH_NOTHING);
	assert_int_equal(V(IN_DELETE, "", false), HOOK_WATCH_NOTHING);
	assert_int_equal(V(IN_DELETE, NULL, false), HOOK_WATCH_NOTHING);
}

static void
test_root_folders_and_dovecot_files(void **state)
{
	(void)state;
	/* a folder created (Dovecot CREATE) or renamed in: watch it too */
	assert_int_equal(V(IN_CREATE | IN_ISDIR, ".Archive", true), HOOK_WATCH_NEW_FOLDER);
	assert_int_equal(V(IN_MOVED_TO | IN_ISDIR, ".Archive.2024", true),
			 HOOK_WATCH_NEW_FOLDER);
	/* renamed away or deleted */
	assert_int_equal(V(IN_MOVED_FROM | IN_ISDIR, ".Old", true), HOOK_WATCH_CHANGE);
	assert_int_equal(V(IN_DELETE | IN_ISDIR, ".Old", true), HOOK_WATCH_CHANGE);
	/* Dovecot's trash name of a folder it deletes, and its files */
	assert_int_equal(V(IN_MOVED_TO | IN_ISDIR, "..DOVECOT-TRASHED", true),
			 HOOK_WATCH_NOTHING);
	assert_int_equal(V(IN_MOVED_TO, "dovecot-uidlist", true), HOOK_WATCH_NOTHING);
	assert_int_equal(V(IN_CREATE, "dovecot.index.log", true), HOOK_WATCH_NOTHING);
	assert_int_equal(V(IN_MOVED_TO, "dovecot-keywords", true), HOOK_WATCH_NOTHING);
	assert_int_equal(V(IN_CREATE, "maildirsize", true), HOOK_WATCH_NOTHING);
	assert_int_equal(V(IN_CREATE, "stowd-index.log", true), HOOK_WATCH_NOTHING);
	/* INBOX's own new/, cur/, tmp/ are not folders */
	assert_int_equal(V(IN_CREATE | IN_ISDIR, "tmp", true), HOOK_WATCH_NOTHING);
	assert_int_equal(V(IN_CREATE | IN_ISDIR, ".", true), HOOK_WATCH_NOTHING);
}

/* Dovecot's subscriptions file: written as subscriptions.lock, renamed
 * over subscriptions; the rename (or a removal) is a change of the user's
 * subscriptions, captured with the folders (a root change); the lock and
 * a file of that name elsewhere are nothing. */
static void
test_subscriptions_file_at_root_is_a_change(void **state)
{
	(void)state;
	assert_int_equal(V(IN_MOVED_TO, "subscriptions", true), HOOK_WATCH_CHANGE);
	assert_int_equal(V(IN_DELETE, "subscriptions", true), HOOK_WATCH_CHANGE);
	assert_int_equal(V(IN_MOVED_FROM, "subscriptions", true), HOOK_WATCH_CHANGE);
	/* the lock file comes and goes: only its rename counts */
	assert_int_equal(V(IN_CREATE, "subscriptions.lock", true), HOOK_WATCH_NOTHING);
	assert_int_equal(V(IN_MOVED_FROM, "subscriptions.lock", true), HOOK_WATCH_NOTHING);
	assert_int_equal(V(IN_DELETE, "subscriptions.lock", true), HOOK_WATCH_NOTHING);
	/* made in place: its content may not be there yet; the next root
	 * event or the resync's capture reads it */
	assert_int_equal(V(IN_CREATE, "subscriptions", true), HOOK_WATCH_NOTHING);
	/* not a folder, whatever it is; and other root files stay nothing */
	assert_int_equal(V(IN_MOVED_TO | IN_ISDIR, "subscriptions", true),
			 HOOK_WATCH_NOTHING);
	assert_int_equal(V(IN_MOVED_TO, "subscriptions2", true), HOOK_WATCH_NOTHING);
	assert_int_equal(V(IN_MOVED_TO, "stowd-subscriptions", true), HOOK_WATCH_NOTHING);
	assert_int_equal(V(IN_MOVED_TO, "courierimapsubscribed", true), HOOK_WATCH_NOTHING);
	assert_int_equal(V(IN_MOVED_TO, ".subscriptions", true), HOOK_WATCH_NOTHING);
	/* in new/ or cur/ it would be a message file like any other name */
	assert_int_equal(V(IN_MOVED_TO, "subscriptions", false), HOOK_WATCH_CHANGE);
}

static void
test_overflow_and_removed_watches(void **state)
{
	(void)state;
	/* events were lost: a full resync recovers whatever they were */
	assert_int_equal(V(IN_Q_OVERFLOW, NULL, false), HOOK_WATCH_OVERFLOW);
	assert_int_equal(V(IN_Q_OVERFLOW, NULL, true), HOOK_WATCH_OVERFLOW);
	/* the directory went (folder deleted): forget the watch */
	assert_int_equal(V(IN_IGNORED, NULL, false), HOOK_WATCH_GONE);
	assert_int_equal(V(IN_IGNORED, NULL, true), HOOK_WATCH_GONE);
}

/* ---- the names of one mailbox's events (watch_names.c) ------------------ */

/* The sealed list of s (written as o says), as one string. */
static void
names_list_out(const struct hook_watch_names *s, const struct hook_names_out *o,
	       char *out, size_t size)
{
	uint64_t n = 0;
	int fd = hook_watch_names_memfd(s, o, &n);
	int seals;

	assert_true(fd >= 0);
	assert_true(n < size);
	seals = fcntl(fd, F_GET_SEALS);
	assert_true((seals & (F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK)) ==
		    (F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK));
	assert_int_equal(pread(fd, out, size - 1, 0), (ssize_t)n);
	out[n] = '\0';
	close(fd);
}

static void
names_list(const struct hook_watch_names *s, char *out, size_t size)
{
	names_list_out(s, NULL, out, size);
}

static void
test_names_of_events_kept_once_in_order(void **state)
{
	struct hook_watch_names s = { .buf = NULL };
	char list[PSEP_CAPTURE_NAMES_MAX + 1];
	uint64_t n = 1;

	(void)state;
	assert_int_equal(hook_watch_names_memfd(&s, NULL, &n), -1);   /* none yet */
	assert_int_equal(n, 0);
	hook_watch_names_add(&s, "1700000000.M1P1.h", false);
	hook_watch_names_add(&s, "1700000000.M1P1.h:2,S", false);
	hook_watch_names_add(&s, "1700000000.M1P1.h", false);
	assert_false(s.all);
	assert_int_equal(s.n, 2);
	names_list(&s, list, sizeof(list));
	assert_string_equal(list, "1700000000.M1P1.h\n1700000000.M1P1.h:2,S\n");
	hook_watch_names_free(&s);
	assert_null(s.buf);
}

/* Names are user-controlled: one that could reach outside the directory,
 * a hidden one, a control byte, an overlong one, or a name not known
 * (NULL) make the set stand for the whole mailbox, for good. */
static void
test_names_not_valid_mean_the_whole_mailbox(void **state)
{
	static const char *const bad[] = { "a/b", ".", "..", ".x", ":2,S", "a\nb",
					   "a\x7f", "", NULL };
	char longname[NAME_MAX + 2];
	uint64_t n = 1;

	(void)state;
	memset(longname, 'n', sizeof(longname) - 1);
	longname[NAME_MAX + 1] = '\0';
	assert_false(hook_watch_name_ok(longname));
	longname[NAME_MAX] = '\0';
	assert_true(hook_watch_name_ok(longname));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct hook_watch_names s = { .buf = NULL };

		assert_false(hook_watch_name_ok(bad[i]));
		hook_watch_names_add(&s, "ok.1.h", false);
		hook_watch_names_add(&s, bad[i], false);
		assert_true(s.all);
		hook_watch_names_add(&s, "ok.2.h", false);
		assert_true(s.all);
		assert_int_equal(s.n, 0);
		assert_int_equal(hook_watch_names_memfd(&s, NULL, &n), -1);
		hook_watch_names_free(&s);
	}
}

/* At most HOOK_WATCH_NAMES_MAX names (of NAME_MAX octets, they fill
 * PSEP_CAPTURE_NAMES_MAX exactly); one more: the whole mailbox. */
static void
test_names_bounded_then_whole_mailbox(void **state)
{
	struct hook_watch_names s = { .buf = NULL };
	char name[NAME_MAX + 1];
	uint64_t n = 0;
	int fd;

	(void)state;
	memset(name, 'm', NAME_MAX);
	name[NAME_MAX] = '\0';
	for (unsigned i = 0; i < HOOK_WATCH_NAMES_MAX; i++) {
		snprintf(name, 8, "%07u", i);
		name[7] = 'm';
		hook_watch_names_add(&s, name, false);
	}
	assert_false(s.all);
	assert_int_equal(s.n, HOOK_WATCH_NAMES_MAX);
	fd = hook_watch_names_memfd(&s, NULL, &n);
	assert_true(fd >= 0);
	assert_int_equal(n, PSEP_CAPTURE_NAMES_MAX);
	close(fd);
	hook_watch_names_add(&s, "one.more.h", false);
	assert_true(s.all);
	assert_int_equal(hook_watch_names_memfd(&s, NULL, &n), -1);
	hook_watch_names_free(&s);
}

/* stowd's own save: its file appearing in the same user's same mailbox
 * under stowd's name with that GUID matches once; anything else (another
 * GUID, mailbox or user, a name renamed into cur/, a name not of stowd's
 * form) does not. */
static void
test_own_saves_match_their_file_once(void **state)
{
	static struct hook_own_saves o;
	static const char g[] = "0190f3a2b4c8d2a1e5f6a7b8c9d0e1f2";
	static const char file[] =
		"1733470000.M123456P42Q7G0190f3a2b4c8d2a1e5f6a7b8c9d0e1f2.host,S=100,W=102";

	(void)state;
	memset(&o, 0, sizeof(o));
	hook_own_saves_note(&o, "alice", "INBOX", g);
	assert_false(hook_own_saves_take(&o, "bob", "INBOX", file));
	assert_false(hook_own_saves_take(&o, "alice", "Archive", file));
	assert_false(hook_own_saves_take(&o, "alice", "INBOX",
		"1733470000.M123456P42Q7G0190f3a2b4c8d2a1e5f6a7b8c9d0e1f2.host,S=100,W=102:2,S"));
	assert_false(hook_own_saves_take(&o, "alice", "INBOX",
		"1733470000.M123456P42Q7G0190f3a2b4c8d2a1e5f6a7b8c9d0e1f3.host,S=100,W=102"));
	assert_false(hook_own_saves_take(&o, "alice", "INBOX", "1733470000.M1P2.host"));
	assert_false(hook_own_saves_take(&o, "alice", "INBOX", NULL));
	assert_true(hook_own_saves_take(&o, "alice", "INBOX", file));
	assert_false(hook_own_saves_take(&o, "alice", "INBOX", file));   /* once */
	/* the ring forgets the oldest: HOOK_OWN_SAVES saves of other GUIDs
	 * later, alice's is gone and the last of them still matches */
	hook_own_saves_note(&o, "alice", "INBOX", g);
	for (unsigned i = 0; i < HOOK_OWN_SAVES; i++) {
		char gi[33], fi[sizeof(file)];

		snprintf(gi, sizeof(gi), "0190f3a2b4c8d2a1e5f6a7b8%08x", i);
		snprintf(fi, sizeof(fi), "1733470000.M123456P42Q7G%s.host,S=100,W=102", gi);
		hook_own_saves_note(&o, "carol", "INBOX", gi);
		if (i == HOOK_OWN_SAVES - 1) {
			assert_false(hook_own_saves_take(&o, "alice", "INBOX", file));
			assert_true(hook_own_saves_take(&o, "carol", "INBOX", fi));
			assert_false(hook_own_saves_take(&o, "carol", "INBOX", fi));
		}
	}
	hook_own_saves_free(&o);
}

/* A name whose last event removed the file (IN_DELETE) is marked
 * "unlinked" when the list asks for it; a later event of the name (made
 * again) clears the mark; without the ask no name is marked. */
static void
test_unlinked_names_are_marked(void **state)
{
	struct hook_watch_names s = { .buf = NULL };
	char list[PSEP_CAPTURE_NAMES_MAX + 1];

	(void)state;
	hook_watch_names_add(&s, "1.M1P1.h:2,S", true);
	hook_watch_names_add(&s, "2.M1P1.h", false);
	hook_watch_names_add(&s, "3.M1P1.h", true);
	hook_watch_names_add(&s, "3.M1P1.h", false);   /* there again */
	hook_watch_names_add(&s, "2.M1P1.h", true);
	names_list_out(&s, &(const struct hook_names_out){ .unlinked = true }, list,
		       sizeof(list));
	assert_string_equal(list, "1.M1P1.h:2,S\tunlinked\n2.M1P1.h\tunlinked\n3.M1P1.h\n");
	names_list_out(&s, &(const struct hook_names_out){ .unlinked = false }, list,
		       sizeof(list));
	assert_string_equal(list, "1.M1P1.h:2,S\n2.M1P1.h\n3.M1P1.h\n");
	hook_watch_names_free(&s);
}

static const char *
moved_from_cb(const char *name, void *arg)
{
	return hook_moved_from(arg, "alice", "Archive", name);
}

/* A file an IMAP server removed from a folder (a name without stowd's
 * G<guid>) is the source of a file of the same base name appearing in
 * another folder of the same user: the capture's list names that folder
 * ("name\tfolder"); not for the same folder, another user, a stowd name,
 * or once HOOK_MOVED_MAX removals later; a source that does not fit in
 * PSEP_CAPTURE_NAMES_MAX is left out, the names stay. */
static void
test_moved_files_name_their_source(void **state)
{
	static struct hook_moved m;
	struct hook_watch_names s = { .buf = NULL };
	char list[PSEP_CAPTURE_NAMES_MAX + 1], name[NAME_MAX + 1];
	const char *stowd_name =
		"1733470000.M1P2Q3G0190f3a2b4c8d2a1e5f6a7b8c9d0e1f2.host,S=10,W=11:2,S";

	(void)state;
	hook_moved_note(&m, "alice", "INBOX", "1700000000.M1P1.h,S=5:2,S");
	hook_moved_note(&m, "bob", "Work", "1700000000.M2P1.h:2,");
	hook_moved_note(&m, "alice", "INBOX", stowd_name);
	assert_string_equal(hook_moved_from(&m, "alice", "Archive", "1700000000.M1P1.h,S=5:2,ST"),
			    "INBOX");
	assert_null(hook_moved_from(&m, "alice", "INBOX", "1700000000.M1P1.h,S=5:2,S"));
	assert_null(hook_moved_from(&m, "alice", "Archive", "1700000000.M2P1.h:2,"));
	assert_null(hook_moved_from(&m, "alice", "Archive", stowd_name));
	hook_watch_names_add(&s, "1700000000.M1P1.h,S=5:2,S", false);
	hook_watch_names_add(&s, "1700000000.M9P9.h", false);
	names_list_out(&s, &(const struct hook_names_out){ .from = moved_from_cb, .arg = &m },
		       list, sizeof(list));
	assert_string_equal(list, "1700000000.M1P1.h,S=5:2,S\tfrom=INBOX\n1700000000.M9P9.h\n");
	hook_watch_names_free(&s);
	/* a full list: no room for a source */
	for (unsigned i = 0; i < HOOK_WATCH_NAMES_MAX; i++) {
		memset(name, 'n', NAME_MAX);
		snprintf(name, sizeof(name), "%05u", i);
		name[5] = 'n';
		name[NAME_MAX] = '\0';
		hook_watch_names_add(&s, name, false);
		if (i == 0)
			hook_moved_note(&m, "alice", "INBOX", name);
	}
	assert_false(s.all);
	names_list_out(&s, &(const struct hook_names_out){ .from = moved_from_cb, .arg = &m },
		       list, sizeof(list));
	assert_null(strchr(list, '\t'));
	assert_int_equal(strlen(list), PSEP_CAPTURE_NAMES_MAX);
	hook_watch_names_free(&s);
	/* HOOK_MOVED_MAX removals later it is forgotten */
	for (unsigned i = 0; i < HOOK_MOVED_MAX; i++) {
		snprintf(name, sizeof(name), "17000%05u.M1P1.h", i);
		hook_moved_note(&m, "carol", "INBOX", name);
	}
	assert_null(hook_moved_from(&m, "alice", "Archive", "1700000000.M1P1.h,S=5:2,S"));
	assert_string_equal(hook_moved_from(&m, "carol", "Sent", name), "INBOX");
	hook_moved_free(&m);
}

/* The hash set: keys that share their low bits (one long probe chain
 * that wraps around the table) are all found; after deleting every other
 * one, in an order that leaves holes in the chain, exactly the others are
 * found; a name must match as well as its key. */
static void
test_hset_probe_chains_and_deletion(void **state)
{
	enum { N = 3000 };
	static char names[N][12];
	struct hook_hset s = { 0 };

	(void)state;
	for (unsigned i = 0; i < N; i++) {
		/* the same low 13 bits: the last slot of every table up to 8192 */
		uint64_t key = ((uint64_t)(i + 1) << 32) | 0x1fff;

		snprintf(names[i], sizeof(names[i]), "u%05u", i);
		assert_true(hook_hset_add(&s, key, i % 3 == 0 ? names[i] : NULL));
		assert_false(hook_hset_add(&s, key, i % 3 == 0 ? names[i] : NULL));
	}
	assert_int_equal(s.n, N);
	for (unsigned i = 0; i < N; i += 2) {
		unsigned k = (i * 7) % N;   /* not in insertion order */
		uint64_t key = ((uint64_t)(k + 1) << 32) | 0x1fff;

		if (k % 2 == 0)
			assert_true(hook_hset_del(&s, key, k % 3 == 0 ? names[k] : NULL));
	}
	for (unsigned i = 0; i < N; i++) {
		uint64_t key = ((uint64_t)(i + 1) << 32) | 0x1fff;

		/* 7 is prime to N: every even one was deleted, once */
		assert_int_equal(hook_hset_has(&s, key, i % 3 == 0 ? names[i] : NULL),
				 i % 2 != 0);
	}
	/* a key with another name, or without its name, is not there */
	assert_int_equal(s.n, N / 2);
	assert_false(hook_hset_has(&s, ((uint64_t)4 << 32) | 0x1fff, "u00004"));
	assert_false(hook_hset_has(&s, ((uint64_t)4 << 32) | 0x1fff, NULL));
	assert_true(hook_hset_has(&s, ((uint64_t)4 << 32) | 0x1fff, names[3]));
	assert_false(hook_hset_del(&s, ((uint64_t)4 << 32) | 0x1fff, NULL));
	hook_hset_free(&s);
	assert_int_equal(s.cap, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_message_files_in_new_and_cur_are_changes),
		cmocka_unit_test(test_hidden_names_and_directories_in_new_cur_ignored),
		cmocka_unit_test(test_root_folders_and_dovecot_files),
		cmocka_unit_test(test_subscriptions_file_at_root_is_a_change),
		cmocka_unit_test(test_overflow_and_removed_watches),
		cmocka_unit_test(test_names_of_events_kept_once_in_order),
		cmocka_unit_test(test_names_not_valid_mean_the_whole_mailbox),
		cmocka_unit_test(test_names_bounded_then_whole_mailbox),
		cmocka_unit_test(test_own_saves_match_their_file_once),
		cmocka_unit_test(test_hset_probe_chains_and_deletion),
		cmocka_unit_test(test_moved_files_name_their_source),
		cmocka_unit_test(test_unlinked_names_are_marked),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
