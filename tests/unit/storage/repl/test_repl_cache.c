/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/storage/repl/test_repl_cache.c - the replayed mailbox states kept
 * between replication operations (storage/repl/cache.c): an operation sees
 * what was appended to the index since the last one (also by the LMTP
 * path), and never trusts a kept state for an index that was rewritten,
 * cut back or replaced.  Observed through what the operations answer (a
 * SAVE of a GUID the index holds is DUPLICATE) and SYNC's state.
 */
#include <errno.h>
#include <fcntl.h>
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

#include "storage/repl/repl.h"
#include "storage/storage.h"
#include "tests/unit/storage/util.h"
#include "tests/unit/storage/repl/test_repl.h"

#define G4 "0190f3a2c2bb7a3b0000111122224444"

/* The index file of INBOX as bytes (malloc'd), its length in *len. */
static char *
index_bytes(struct fixture *f, size_t *len)
{
	char *data;
	ssize_t n = tu_read_file(tu_path("%s/%s", f->md, STORE_INDEX_FILE), &data);

	assert_true(n > 0);
	*len = (size_t)n;
	return data;
}

/* Overwrite the index in place (same inode) with data[len]. */
static void
index_overwrite(struct fixture *f, const char *data, size_t len)
{
	int fd = open(tu_path("%s/%s", f->md, STORE_INDEX_FILE),
		      O_WRONLY | O_TRUNC | O_CLOEXEC);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
}

/* LMTP-path save of guid into INBOX (appends to the index outside the
 * replication operations). */
static void
lmtp_save(struct fixture *f, const char *guid)
{
	struct store_target t = { .mail_base = f->t.base, .mail_rel = "Maildir",
				  .mailbox = "INBOX", .uid = geteuid() };
	struct store_save_req req = { .target = &t, .body_size = 3,
		.body_vsize = 3, .guid = guid, .host = "h", .flags = "",
		.origin = "b.example" };
	struct store_save_result res;

	req.body_fd = body_fd("abc");
	assert_int_equal(store_save(&req, &res, NULL), 0);
	close(req.body_fd);
}

/* Transactions appended by the LMTP path between two replication
 * operations are seen by the second. */
void
test_cache_catches_up_with_lmtp_appends(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(save(f, "INBOX", G1, 5, "a.example", 1, "").status, STORE_R_OK);
	lmtp_save(f, G2);
	assert_int_equal(save(f, "INBOX", G2, 9, "a.example", 0, "").status,
			 STORE_R_DUPLICATE);
	lmtp_save(f, G3);
	assert_int_equal(save(f, "INBOX", G3, 9, "a.example", 0, "").status,
			 STORE_R_DUPLICATE);
	assert_int_equal(save(f, "INBOX", G4, 9, "a.example", 0, "").status, STORE_R_OK);
	assert_int_equal(sync_box(f, "INBOX").messages, 4);
}

/* An index cut back to an earlier state (same inode, shorter) is replayed
 * again: what it no longer holds is not a duplicate. */
void
test_cache_not_used_for_a_shorter_index(void **state)
{
	struct fixture *f = *state;
	size_t len;
	char *two;

	assert_int_equal(save(f, "INBOX", G1, 5, "a.example", 1, "").status, STORE_R_OK);
	assert_int_equal(save(f, "INBOX", G2, 6, "a.example", 2, "").status, STORE_R_OK);
	two = index_bytes(f, &len);
	assert_int_equal(save(f, "INBOX", G3, 7, "a.example", 3, "").status, STORE_R_OK);
	assert_int_equal(sync_box(f, "INBOX").messages, 3);
	index_overwrite(f, two, len);
	assert_int_equal(save(f, "INBOX", G3, 7, "a.example", 3, "").status, STORE_R_OK);
	assert_int_equal(save(f, "INBOX", G2, 6, "a.example", 2, "").status,
			 STORE_R_DUPLICATE);
	free(two);
}

/* An index rewritten in place with other content of the same length (or
 * longer) is replayed again, not extended from the kept state. */
void
test_cache_not_used_for_a_rewritten_index(void **state)
{
	struct fixture *f = *state;
	size_t la;
	ssize_t lb;
	char *a, *b;

	/* the log of {G3, G4} in another mailbox, then INBOX holds {G1, G2} */
	assert_int_equal(save(f, "Other", G3, 5, "a.example", 1, "").status, STORE_R_OK);
	assert_int_equal(save(f, "Other", G4, 6, "a.example", 2, "").status, STORE_R_OK);
	lb = tu_read_file(tu_path("%s/.Other/%s", f->md, STORE_INDEX_FILE), &b);
	assert_true(lb > 0);
	assert_int_equal(save(f, "INBOX", G1, 5, "a.example", 1, "").status, STORE_R_OK);
	assert_int_equal(save(f, "INBOX", G2, 6, "a.example", 2, "").status, STORE_R_OK);
	a = index_bytes(f, &la);
	assert_int_equal(la, lb);   /* the same shape: only GUIDs differ */
	index_overwrite(f, b, (size_t)lb);
	/* INBOX's index now holds G3 and G4, not G1 and G2 */
	assert_int_equal(save(f, "INBOX", G3, 5, "a.example", 1, "").status,
			 STORE_R_DUPLICATE);
	assert_int_equal(save(f, "INBOX", G1, 7, "a.example", 0, "").status, STORE_R_OK);
	free(a);
	free(b);
}

/* A state kept for one uid is not used for another on the same file. */
void
test_cache_keyed_by_uid(void **state)
{
	struct fixture *f = *state;
	struct store_repl_ctx other = f->c;
	struct store_repl_result res;
	const char *what = NULL;
	struct store_stamp s = stamp(6, "a.example");
	int fd;

	assert_int_equal(save(f, "INBOX", G1, 5, "a.example", 1, "").status, STORE_R_OK);
	/* as another uid the Maildir is not ours: refused, not served from
	 * the state kept for the owner */
	other.uid = f->c.uid + 1;
	fd = body_fd(BODY);
	assert_int_equal(store_repl_save(&other, "INBOX", G1, &s, 0, 1718000000, "", fd,
					 strlen(BODY), NULL, 0, &res, &what), -1);
	close(fd);
	assert_int_equal(save(f, "INBOX", G1, 5, "a.example", 1, "").status,
			 STORE_R_DUPLICATE);
}

/* With fewer entries than mailboxes in use (a fork-mode child keeps 8),
 * each operation evicts another mailbox's state and replays its own
 * index when it comes back: still the same answers. */
void
test_cache_entry_limit_evicts_and_stays_correct(void **state)
{
	struct fixture *f = *state;
	struct store_repl_result r;

	store_repl_cache_limit(16u * 1024u * 1024u, 1);
	assert_int_equal(store_repl_create(&f->c, "Archive", &r, NULL), 0);
	assert_int_equal(save(f, "INBOX", G1, 5, "a.example", 1, "").status, STORE_R_OK);
	assert_int_equal(save(f, "Archive", G2, 6, "a.example", 1, "").status, STORE_R_OK);
	assert_int_equal(save(f, "INBOX", G1, 5, "a.example", 1, "").status,
			 STORE_R_DUPLICATE);
	lmtp_save(f, G3);
	assert_int_equal(save(f, "Archive", G2, 6, "a.example", 1, "").status,
			 STORE_R_DUPLICATE);
	assert_int_equal(save(f, "INBOX", G3, 9, "a.example", 0, "").status,
			 STORE_R_DUPLICATE);
	assert_int_equal(save(f, "Archive", G3, 9, "a.example", 0, "").status, STORE_R_OK);
	assert_int_equal(sync_box(f, "INBOX").messages, 2);
	assert_int_equal(sync_box(f, "Archive").messages, 2);
	/* none at all: every operation replays */
	store_repl_cache_limit(16u * 1024u * 1024u, 0);
	assert_int_equal(save(f, "INBOX", G3, 9, "a.example", 0, "").status,
			 STORE_R_DUPLICATE);
	store_repl_cache_limit(16u * 1024u * 1024u, 128);
}

/* A clear looks only at the entries that were used since the last one: a
 * fork-mode child setting its limit at start touches none of the array
 * (on a guest without a shared zero page even reading a page of it costs
 * the child a page), and the states kept sit at the start. */
void
test_cache_clear_scans_only_entries_used(void **state)
{
	struct fixture *f = *state;
	struct store_repl_result r;

	store_repl_cache_limit(16u * 1024u * 1024u, 128);
	store_repl_test_cache_scanned = 0;
	store_repl_cache_limit(2u * 1024u * 1024u, 8);
	assert_int_equal(store_repl_test_cache_scanned, 0);
	assert_int_equal(store_repl_create(&f->c, "Archive", &r, NULL), 0);
	assert_int_equal(save(f, "INBOX", G1, 5, "a.example", 1, "").status, STORE_R_OK);
	assert_int_equal(save(f, "Archive", G2, 6, "a.example", 1, "").status, STORE_R_OK);
	store_repl_cache_clear();
	assert_int_equal(store_repl_test_cache_scanned, 2);
	store_repl_cache_clear();
	assert_int_equal(store_repl_test_cache_scanned, 2);
	/* without its kept states each mailbox replays: the same answers */
	assert_int_equal(save(f, "INBOX", G1, 5, "a.example", 1, "").status,
			 STORE_R_DUPLICATE);
	assert_int_equal(save(f, "Archive", G2, 6, "a.example", 1, "").status,
			 STORE_R_DUPLICATE);
	store_repl_cache_limit(16u * 1024u * 1024u, 128);
}
