/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/storage/repl/test_repl.c - the replica side of the replication
 * protocol on a Maildir (storage/repl/repl.h), single messages: stamps,
 * canonical flags, digest test vectors, the merge rule, SAVE/STORE/EXPUNGE
 * rules.  Reconciliation, mailbox operations, FETCH and index logs are in
 * test_repl_sync.c (same program).
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
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "storage/repl/repl.h"
#include "storage/storage.h"
#include "tests/unit/storage/util.h"
#include "tests/unit/storage/repl/test_repl.h"

/* The second run of each test: no kept states, a checkpoint after every
 * change. */
static bool from_checkpoints;

static int
setup(void **state)
{
	struct fixture *f = tu_tree_new(sizeof(*f));

	snprintf(f->md, sizeof(f->md), "%.4000s/Maildir", f->t.base);
	f->c = (struct store_repl_ctx){ .mail_base = f->t.base,
		.mail_rel = "Maildir", .uid = geteuid(),
		.server_id = "b.example", .host = "h" };
	/* a kept state of an earlier test's tree must not meet a reused
	 * inode here */
	store_repl_cache_clear();
	if (from_checkpoints) {
		/* every operation loads its state from the checkpoint that
		 * the one before wrote (a capture of names: a partial one) */
		store_repl_cache_limit(0, 0);
		store_repl_ckpt_every(0);
	} else {
		store_repl_cache_limit(16u * 1024u * 1024u, 128);
		store_repl_ckpt_every(SIZE_MAX);
	}
	*state = f;
	return 0;
}

static int
setup_ckpt(void **state)
{
	from_checkpoints = true;
	setup(state);
	from_checkpoints = false;
	return 0;
}

static void
hex(const unsigned char *h, char out[65])
{
	size_t i;

	for (i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", h[i]);
}

int
body_fd(const char *body)
{
	int fd = memfd_create("body", MFD_CLOEXEC | MFD_ALLOW_SEALING);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, body, strlen(body)), (ssize_t)strlen(body));
	assert_int_equal(fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_GROW |
			       F_SEAL_SHRINK | F_SEAL_SEAL), 0);
	return fd;
}

struct store_stamp
stamp(uint64_t modseq, const char *origin)
{
	struct store_stamp s;

	memset(&s, 0, sizeof(s));
	s.modseq = modseq;
	snprintf(s.origin, sizeof(s.origin), "%s", origin);
	return s;
}

/* SAVE of BODY; asserts the call itself succeeds. */
struct store_repl_result
save(struct fixture *f, const char *box,
     const char *guid, uint64_t modseq,
     const char *origin, uint32_t hint,
     const char *flags)
{
	struct store_stamp s = stamp(modseq, origin);
	struct store_repl_result res;
	const char *what = NULL;
	int fd = body_fd(BODY);

	assert_int_equal(store_repl_save(&f->c, box, guid, &s, hint, 1718000000,
					 flags, fd, strlen(BODY), NULL, 0, &res,
					 &what), 0);
	close(fd);
	return res;
}

struct store_repl_result
store(struct fixture *f, const char *box,
      const char *guid, uint64_t modseq,
      const char *origin, const char *deltas)
{
	struct store_stamp s = stamp(modseq, origin);
	struct store_repl_result res;
	const char *what;

	assert_int_equal(store_repl_store(&f->c, box, guid, &s, deltas, &res,
					  &what), 0);
	return res;
}

struct store_repl_result
expunge(struct fixture *f, const char *box,
	const char *guid, uint64_t modseq)
{
	struct store_stamp s = stamp(modseq, "a.example");
	struct store_repl_result res;
	const char *what;

	assert_int_equal(store_repl_expunge(&f->c, box, guid, &s, &res, &what), 0);
	return res;
}

struct store_mbox_state
sync_box(struct fixture *f, const char *box)
{
	struct store_mbox_state st;
	struct store_repl_result res;
	const char *what;

	assert_int_equal(store_repl_sync(&f->c, box, &st, &res, &what), 0);
	assert_int_equal(res.status, STORE_R_OK);
	return st;
}

static int
seen_cb(const struct store_msg_info *m, void *arg)
{
	struct seen *s = arg;

	if (s->n < 16)
		s->m[s->n] = *m;
	s->n++;
	return 0;
}

const struct store_msg_info *
seen_find(const struct seen *s,
	  const char *guid)
{
	size_t i;

	for (i = 0; i < s->n && i < 16; i++) {
		if (strcmp(s->m[i].guid, guid) == 0)
			return &s->m[i];
	}
	return NULL;
}

struct seen
guids(struct fixture *f, const char *box)
{
	struct store_repl_result res;
	const char *what;
	struct seen s;

	memset(&s, 0, sizeof(s));
	assert_int_equal(store_repl_guids(&f->c, box, seen_cb, &s, &res, &what), 0);
	assert_int_equal(res.status, STORE_R_OK);
	return s;
}

/* ---- pure parts -------------------------------------------------------- */

static void
test_digest_vectors_of_protocol(void **state)
{
	unsigned char h[32], gh[32], fh[32];
	char x[65];
	size_t i;

	(void)state;
	store_digest_guid(G1, h);
	hex(h, x);
	assert_string_equal(x, "e1345823504f896000d92ad5484c46029e5106b4f0b440ffc32f5f8964ea4120");
	memcpy(gh, h, 32);
	store_digest_guid(G2, h);
	hex(h, x);
	assert_string_equal(x, "e402e2906f8a0f01c25df4b834d2d495929777df6dbc764804028de7723f8127");
	for (i = 0; i < 32; i++)
		gh[i] ^= h[i];
	hex(gh, x);
	assert_string_equal(x, "0536bab33fc58661c284de6d7c9e92970cc6716b9d0836b7c72dd26e16d5c007");
	store_digest_flags(G1, "\\Flagged \\Seen", fh);
	store_digest_flags(G2, "", h);
	for (i = 0; i < 32; i++)
		fh[i] ^= h[i];
	hex(fh, x);
	assert_string_equal(x, "44f9aac5254f60199f0ac029c1807a56f0d5c9f458290fdaabb244f1b940e00f");
}

static void
test_digest_vectors_from_saved_mailbox(void **state)
{
	struct fixture *f = *state;
	struct store_mbox_state st;
	struct store_repl_result r;
	char x[65];

	assert_int_equal(store_repl_sync(&f->c, "INBOX", &st, &r, NULL), 0);
	assert_int_equal(r.status, STORE_R_NONEXISTENT);
	assert_int_equal(store_repl_create(&f->c, "INBOX", &r, NULL), 0);
	st = sync_box(f, "INBOX");   /* the empty mailbox */
	assert_int_equal(st.messages, 0);
	assert_true(st.highestmodseq == 0);
	assert_int_equal(st.uidnext, 1);
	hex(st.guidhash, x);
	assert_string_equal(x, "0000000000000000000000000000000000000000000000000000000000000000");
	assert_int_equal(save(f, "INBOX", G1, 9, "a.example", 1, "\\seen \\FLAGGED").status,
			 STORE_R_OK);
	assert_int_equal(save(f, "INBOX", G2, 10, "a.example", 2, "").status,
			 STORE_R_OK);
	st = sync_box(f, "INBOX");
	assert_int_equal(st.messages, 2);
	assert_true(st.highestmodseq == 10);
	assert_int_equal(st.uidnext, 3);
	assert_true(st.uidvalidity != 0);
	hex(st.guidhash, x);
	assert_string_equal(x, "0536bab33fc58661c284de6d7c9e92970cc6716b9d0836b7c72dd26e16d5c007");
	hex(st.flaghash, x);
	assert_string_equal(x, "44f9aac5254f60199f0ac029c1807a56f0d5c9f458290fdaabb244f1b940e00f");
}

static void
test_flags_canon_cases(void **state)
{
	static const struct { const char *in, *out; int err; } cases[] = {
		{ "", "", 0 },
		{ "\\Seen \\Flagged", "\\Flagged \\Seen", 0 },
		{ "\\SEEN \\seen Work $Junk", "$Junk Work \\Seen", 0 },
		{ "b a b", "a b", 0 },
		{ "\\answered \\draft \\deleted", "\\Answered \\Deleted \\Draft", 0 },
		{ "\\Recent", NULL, EINVAL },
		{ "\\Foo", NULL, EINVAL },
		{ "+kw", NULL, EINVAL },
		{ "-kw", NULL, EINVAL },
		{ "a(b", NULL, EINVAL },
		{ "k\\w", NULL, EINVAL },
		{ "\x01", NULL, EINVAL },
		{ "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
		  NULL, EINVAL },   /* 65 octets */
	};
	char out[STORE_FLAGS_MAX], big[400];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		errno = 0;
		if (cases[i].out != NULL) {
			assert_int_equal(store_flags_canon(cases[i].in, out), 0);
			assert_string_equal(out, cases[i].out);
		} else {
			assert_int_equal(store_flags_canon(cases[i].in, out), -1);
			assert_int_equal(errno, cases[i].err);
		}
	}
	/* 40 keywords of 3 octets + spaces: over 127 */
	for (i = 0; i < 40; i++)
		snprintf(big + 4 * i, sizeof(big) - 4 * i, "k%02zu ", i);
	assert_int_equal(store_flags_canon(big, out), -1);
	assert_int_equal(errno, E2BIG);
}

static void
test_flags_letters_ascii_order(void **state)
{
	char l[8];

	(void)state;
	store_flags_letters("$Junk \\Answered \\Deleted \\Draft \\Flagged \\Seen", l);
	assert_string_equal(l, "DFRST");
	store_flags_letters("\\Seen", l);
	assert_string_equal(l, "S");
	store_flags_letters("Work", l);
	assert_string_equal(l, "");
}

static void
test_stamp_total_order(void **state)
{
	struct store_stamp a = stamp(6, "a"), b = stamp(6, "b"), c = stamp(7, "a");
	struct store_stamp ab = stamp(6, "ab"), a2 = stamp(6, "a");

	(void)state;
	assert_true(store_stamp_cmp(&b, &a) > 0);
	assert_true(store_stamp_cmp(&a, &b) < 0);
	assert_true(store_stamp_cmp(&c, &b) > 0);
	assert_true(store_stamp_cmp(&ab, &a) > 0);   /* longer is greater */
	assert_int_equal(store_stamp_cmp(&a, &a2), 0);
}

/* ---- SAVE, STORE, EXPUNGE ---------------------------------------------- */

static void
test_merge_example_gives_same_flags_in_both_orders(void **state)
{
	struct fixture *f = *state;
	struct store_mbox_state s1, s2;
	struct seen g;
	char name[256];

	assert_int_equal(save(f, "One", G1, 5, "a", 1, "\\Flagged").status, STORE_R_OK);
	assert_int_equal(save(f, "Two", G1, 5, "a", 1, "\\Flagged").status, STORE_R_OK);
	assert_true(store(f, "One", G1, 6, "a", "+\\Answered").effective);
	assert_true(store(f, "One", G1, 6, "b", "+\\Seen -\\Flagged").effective);
	assert_true(store(f, "Two", G1, 6, "b", "+\\Seen -\\Flagged").effective);
	assert_true(store(f, "Two", G1, 6, "a", "+\\Answered").effective);
	/* a replay ties: not effective; an older stamp loses */
	assert_false(store(f, "Two", G1, 6, "a", "+\\Answered").effective);
	assert_false(store(f, "Two", G1, 5, "z", "+\\Flagged").effective);
	s1 = sync_box(f, "One");
	s2 = sync_box(f, "Two");
	assert_memory_equal(s1.flaghash, s2.flaghash, 32);
	assert_memory_equal(s1.guidhash, s2.guidhash, 32);
	g = guids(f, "One");
	assert_int_equal(g.n, 1);
	assert_string_equal(g.m[0].flags, "\\Answered \\Seen");
	assert_true(g.m[0].stamp.modseq == 6);
	assert_string_equal(g.m[0].stamp.origin, "b");
	g = guids(f, "Two");
	assert_string_equal(g.m[0].flags, "\\Answered \\Seen");
	assert_int_equal(tu_only_entry(tu_path("%s/.One/cur", f->md), name), 0);
	assert_non_null(strstr(name, ":2,RS"));
}

static void
test_save_duplicate_tombstone_and_uid_hint(void **state)
{
	struct fixture *f = *state;
	struct store_repl_result r;

	r = save(f, "INBOX", G1, 17, "a.example", 42, "\\Seen");
	assert_int_equal(r.status, STORE_R_OK);
	assert_true(r.effective);
	assert_int_equal(r.uid, 42);
	assert_non_null(strstr(r.filename, ":2,S"));
	assert_int_equal(tu_count_entries(tu_path("%s/cur", f->md)), 1);
	r = save(f, "INBOX", G1, 17, "a.example", 42, "\\Seen");
	assert_int_equal(r.status, STORE_R_DUPLICATE);
	assert_int_equal(r.uid, 42);
	assert_false(r.effective);
	r = save(f, "INBOX", G2, 18, "a.example", 3, "");    /* hint < UIDNEXT */
	assert_int_equal(r.uid, 43);
	assert_int_equal(tu_count_entries(tu_path("%s/new", f->md)), 1);
	r = save(f, "INBOX", G3, 0, "", 0, "");               /* local, no hint */
	assert_int_equal(r.uid, 44);
	assert_true(r.stamp.modseq == 19);
	assert_string_equal(r.stamp.origin, "b.example");
	assert_true(expunge(f, "INBOX", G1, 30).effective);
	assert_int_equal(tu_count_entries(tu_path("%s/cur", f->md)), 0);
	r = save(f, "INBOX", G1, 31, "a.example", 0, "");
	assert_int_equal(r.status, STORE_R_EXPUNGED);
	assert_false(r.effective);
	assert_int_equal(sync_box(f, "INBOX").messages, 2);
	assert_true(sync_box(f, "INBOX").highestmodseq == 30);
}

static void
test_save_uid_space_used_up_is_limit(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(save(f, "INBOX", G1, 1, "a", UINT32_MAX, "").status,
			 STORE_R_LIMIT);
	assert_int_equal(save(f, "INBOX", G1, 1, "a", UINT32_MAX - 1, "").uid,
			 UINT32_MAX - 1);
	assert_int_equal(save(f, "INBOX", G2, 1, "a", 0, "").status, STORE_R_LIMIT);
}

static void
test_save_counts_bare_lf_twice_in_w(void **state)
{
	struct fixture *f = *state;
	struct store_repl_result r;
	char want[64];

	r = save(f, "INBOX", G1, 1, "a", 0, "");   /* BODY: 20 octets, 1 bare LF */
	snprintf(want, sizeof(want), ",S=%zu,W=%zu", strlen(BODY), strlen(BODY) + 1);
	assert_non_null(strstr(r.filename, want));
}

static void
test_expunge_before_save_wins(void **state)
{
	struct fixture *f = *state;
	struct store_repl_result r;
	struct seen g;

	assert_int_equal(expunge(f, "INBOX", G1, 5).status, STORE_R_NONEXISTENT);
	assert_int_equal(store_repl_create(&f->c, "INBOX", &r, NULL), 0);
	assert_true(r.effective);
	r = expunge(f, "INBOX", G1, 5);
	assert_int_equal(r.status, STORE_R_OK);
	assert_true(r.effective);
	assert_false(expunge(f, "INBOX", G1, 6).effective);
	assert_int_equal(save(f, "INBOX", G1, 4, "a", 0, "").status, STORE_R_EXPUNGED);
	assert_int_equal(store(f, "INBOX", G1, 7, "a", "+\\Seen").status,
			 STORE_R_EXPUNGED);
	g = guids(f, "INBOX");
	assert_int_equal(g.n, 1);
	assert_true(g.m[0].expunged);
	assert_int_equal(tu_count_entries(tu_path("%s/new", f->md)), 0);
}

static void
test_store_renames_file_with_letters(void **state)
{
	struct fixture *f = *state;
	struct store_repl_result r;
	const char *what;
	char name[256];

	r = save(f, "INBOX", G1, 1, "a", 0, "");
	assert_int_equal(tu_only_entry(tu_path("%s/new", f->md), name), 0);
	assert_false(store(f, "INBOX", G1, 2, "a", "+Work").status != STORE_R_OK);
	/* a keyword gets a Dovecot letter (dovecot-keywords, §7.3) */
	assert_int_equal(tu_only_entry(tu_path("%s/cur", f->md), name), 0);
	assert_string_equal(strstr(name, ":2,"), ":2,a");
	r = store(f, "INBOX", G1, 3, "a", "+\\seen +\\Draft");
	assert_true(r.effective);
	assert_int_equal(tu_only_entry(tu_path("%s/cur", f->md), name), 0);
	assert_string_equal(strstr(name, ":2,"), ":2,DSa");
	r = store(f, "INBOX", G1, 0, "", "-\\Seen -\\Draft");   /* local */
	assert_true(r.stamp.modseq == 4);
	assert_string_equal(r.stamp.origin, "b.example");
	assert_int_equal(tu_only_entry(tu_path("%s/cur", f->md), name), 0);
	assert_string_equal(strstr(name, ":2,"), ":2,a");   /* the keyword's */
	assert_string_equal(guids(f, "INBOX").m[0].flags, "Work");
	assert_int_equal(store(f, "INBOX", G2, 5, "a", "+\\Seen").status,
			 STORE_R_NONEXISTENT);
	assert_int_equal(store(f, "Nope", G1, 5, "a", "+\\Seen").status,
			 STORE_R_NONEXISTENT);
	assert_int_equal(access(tu_path("%s/.Nope", f->md), F_OK), -1);
	/* bad delta lists */
	{
		struct store_stamp s = stamp(9, "a");

		assert_int_equal(store_repl_store(&f->c, "INBOX", G1, &s,
						  "+\\Seen -\\Seen", &r, &what), -1);
		assert_int_equal(errno, EINVAL);
		assert_int_equal(store_repl_store(&f->c, "INBOX", G1, &s,
						  "\\Seen", &r, &what), -1);
		assert_int_equal(errno, EINVAL);
		assert_int_equal(store_repl_store(&f->c, "INBOX", G1, &s,
						  "+\\Recent", &r, &what), -1);
		assert_int_equal(errno, EINVAL);
	}
}

static void
test_bad_arguments_are_einval(void **state)
{
	struct fixture *f = *state;
	struct store_stamp s = stamp(1, "a");
	struct store_repl_result r;
	const char *what;
	int fd = body_fd(BODY);

	assert_int_equal(store_repl_save(&f->c, "INBOX", "xyz", &s, 0, 0, "", fd,
					 1, NULL, 0, &r, &what), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(store_repl_save(&f->c, "a..b", G1, &s, 0, 0, "", fd,
					 1, NULL, 0, &r, &what), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(store_repl_save(&f->c, "INBOX", G1, &s, 0, 0, "\\Recent",
					 fd, 1, NULL, 0, &r, &what), -1);
	assert_int_equal(errno, EINVAL);
	s = stamp(1, "bad origin");
	assert_int_equal(store_repl_save(&f->c, "INBOX", G1, &s, 0, 0, "", fd,
					 1, NULL, 0, &r, &what), -1);
	assert_int_equal(errno, EINVAL);
	s = stamp(1, "a");
	assert_int_equal(store_repl_save(&f->c, "INBOX", G1, &s, 0, 0,
					 "k01 k02 k03 k04 k05 k06 k07 k08 k09 k10 "
					 "k11 k12 k13 k14 k15 k16 k17 k18 k19 k20 "
					 "k21 k22 k23 k24 k25 k26 k27 k28 k29 k30 "
					 "k31 k32 k33", fd, 1, NULL, 0, &r, &what), 0);
	assert_int_equal(r.status, STORE_R_LIMIT);
	close(fd);
}


int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_digest_vectors_of_protocol),
		cmocka_unit_test_setup_teardown(test_digest_vectors_from_saved_mailbox, setup, tu_tree_teardown),
		cmocka_unit_test(test_flags_canon_cases),
		cmocka_unit_test(test_flags_letters_ascii_order),
		cmocka_unit_test(test_stamp_total_order),
		cmocka_unit_test_setup_teardown(test_merge_example_gives_same_flags_in_both_orders, setup, tu_tree_teardown),
		cmocka_unit_test_setup_teardown(test_save_duplicate_tombstone_and_uid_hint, setup, tu_tree_teardown),
		cmocka_unit_test_setup_teardown(test_save_uid_space_used_up_is_limit, setup, tu_tree_teardown),
		cmocka_unit_test_setup_teardown(test_save_counts_bare_lf_twice_in_w, setup, tu_tree_teardown),
		cmocka_unit_test_setup_teardown(test_expunge_before_save_wins, setup, tu_tree_teardown),
		cmocka_unit_test_setup_teardown(test_store_renames_file_with_letters, setup, tu_tree_teardown),
		cmocka_unit_test_setup_teardown(test_bad_arguments_are_einval, setup, tu_tree_teardown),
		cmocka_unit_test_setup_teardown(test_reconcile_hand_added_deleted_damaged, setup, tu_tree_teardown),
		cmocka_unit_test_setup_teardown(test_reconcile_follows_imap_rename, setup, tu_tree_teardown),
		cmocka_unit_test_setup_teardown(test_reconcile_vanished_file_is_expunge, setup, tu_tree_teardown),
		cmocka_unit_test_setup_teardown(test_reconcile_letters_are_store, setup, tu_tree_teardown),
		cmocka_unit_test(test_flags_letter_deltas),
		cmocka_unit_test_setup_teardown(test_move_keeps_guid_until_it_comes_back, setup, tu_tree_teardown),
		cmocka_unit_test_setup_teardown(test_dovecot_keyword_letters_both_ways, setup, tu_tree_teardown),
		cmocka_unit_test_setup_teardown(test_capture_boxes_reports_folder_changes_of_others, setup, tu_tree_teardown),
		cmocka_unit_test_setup_teardown(test_replicated_ops_on_a_file_renamed_by_others, setup, tu_tree_teardown),
		cmocka_unit_test_setup_teardown(test_reconcile_leaves_record_of_file_in_tmp_alone, setup, tu_tree_teardown),
		cmocka_unit_test_setup_teardown(test_expunge_removes_orphaned_tmp_file, setup, tu_tree_teardown),
#ifdef STOWD_TEST_HOOKS
		cmocka_unit_test_setup_teardown(test_save_killed_after_its_record_is_finished_by_the_retry, setup, tu_tree_teardown),
		cmocka_unit_test_setup_teardown(test_save_killed_after_its_record_is_undone_by_expunge, setup, tu_tree_teardown),
		cmocka_unit_test_setup_teardown(test_save_killed_after_its_record_is_placed_by_reconcile, setup, tu_tree_teardown),
		cmocka_unit_test_setup_teardown(test_save_failing_after_its_record_is_lost_not_expunged, setup, tu_tree_teardown),
#endif
		cmocka_unit_test_setup_teardown(test_index_name_that_is_a_path_is_not_followed, setup, tu_tree_teardown),
		cmocka_unit_test_setup_teardown(test_index_name_with_control_byte_is_not_taken, setup, tu_tree_teardown),
		cmocka_unit_test_setup_teardown(test_index_over_limits_is_e2big, setup, tu_tree_teardown),
		cmocka_unit_test_setup_teardown(test_fetch_returns_exact_bytes_and_date, setup, tu_tree_teardown),
		cmocka_unit_test_setup_teardown(test_create_delete_rename_list, setup, tu_tree_teardown),
		cmocka_unit_test_setup_teardown(test_version1_log_still_read_and_extended, setup, tu_tree_teardown),
		cmocka_unit_test_setup_teardown(test_lmtp_save_records_origin_and_modseq, setup, tu_tree_teardown),
		cmocka_unit_test_setup_teardown(test_cache_catches_up_with_lmtp_appends, setup, tu_tree_teardown),
		cmocka_unit_test_setup_teardown(test_cache_not_used_for_a_shorter_index, setup, tu_tree_teardown),
		cmocka_unit_test_setup_teardown(test_cache_not_used_for_a_rewritten_index, setup, tu_tree_teardown),
		cmocka_unit_test_setup_teardown(test_cache_keyed_by_uid, setup, tu_tree_teardown),
		cmocka_unit_test_setup_teardown(test_cache_entry_limit_evicts_and_stays_correct,
						setup, tu_tree_teardown),
		cmocka_unit_test_setup_teardown(test_cache_clear_scans_only_entries_used,
						setup, tu_tree_teardown),
		cmocka_unit_test_setup_teardown(test_ckpt_capture_reads_named_entries_and_index_since,
						setup, tu_tree_teardown),
		cmocka_unit_test_setup_teardown(test_ckpt_damaged_foreign_or_symlinked_is_not_used,
						setup, tu_tree_teardown),
		cmocka_unit_test_setup_teardown(test_ckpt_move_source_from_checkpoint,
						setup, tu_tree_teardown),
		cmocka_unit_test_setup_teardown(test_subscribe_unsubscribe_idempotent, setup, tu_tree_teardown),
		cmocka_unit_test_setup_teardown(test_subscribe_waits_for_the_lock_then_eagain, setup, tu_tree_teardown),
		cmocka_unit_test_setup_teardown(test_capture_reports_subscriptions_of_others, setup, tu_tree_teardown),
		cmocka_unit_test_setup_teardown(test_capture_does_not_report_own_subscriptions, setup, tu_tree_teardown),
		cmocka_unit_test_setup_teardown(test_capture_subscriptions_damaged_files, setup, tu_tree_teardown),
		cmocka_unit_test_setup_teardown(test_capture_names_new_file, setup, tu_tree_teardown),
		cmocka_unit_test_setup_teardown(test_capture_names_removed_file, setup, tu_tree_teardown),
		cmocka_unit_test_setup_teardown(test_capture_names_new_to_cur_with_letters, setup, tu_tree_teardown),
		cmocka_unit_test_setup_teardown(test_capture_names_letter_change, setup, tu_tree_teardown),
		cmocka_unit_test_setup_teardown(test_capture_names_own_writes_give_nothing, setup, tu_tree_teardown),
		cmocka_unit_test_setup_teardown(test_capture_names_mix, setup, tu_tree_teardown),
		cmocka_unit_test_setup_teardown(test_capture_names_fallback_to_whole_mailbox, setup, tu_tree_teardown),
		cmocka_unit_test_setup_teardown(test_capture_names_move_keeps_guid_of_plain_file, setup, tu_tree_teardown),
		cmocka_unit_test_setup_teardown(test_capture_names_unlinked_file_is_not_searched_for, setup, tu_tree_teardown),
	};

	const size_t n = sizeof(tests) / sizeof(tests[0]);
	struct CMUnitTest all[2 * sizeof(tests) / sizeof(tests[0])];
	char names[sizeof(tests) / sizeof(tests[0])][160];

	/* each test twice: states replayed from the index, and (those with a
	 * tree) loaded from checkpoints */
	for (size_t i = 0; i < n; i++) {
		all[i] = tests[i];
		all[n + i] = tests[i];
		snprintf(names[i], sizeof(names[i]), "%s, from checkpoints", tests[i].name);
		all[n + i].name = names[i];
		if (tests[i].setup_func == setup)
			all[n + i].setup_func = setup_ckpt;
	}
	return _cmocka_run_group_tests("storage_repl", all, 2 * n, NULL, NULL);
}
