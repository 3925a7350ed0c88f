/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/storage/test_repl.c - the replica side of the replication
 * protocol on a Maildir (storage/repl.h): stamps, canonical flags, digest
 * test vectors, the merge rule, SAVE/STORE/EXPUNGE rules, reconciliation
 * with hand-made changes, CREATE/DELETE/RENAME/LIST, FETCH, and index
 * logs of version 1.
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

#include "storage/repl.h"
#include "storage/storage_int.h"
#include "tests/unit/storage/util.h"

#define G1 "0190f3a2b4c8d2a1e5f6a7b8c9d0e1f2"
#define G2 "0190f3a2b4c9000100000000deadbeef"
#define G3 "0190f3a2c2bb7a3b0000111122223333"
#define BODY "Subject: hi\r\n\r\nbody\n"

struct fixture {
	struct tu_tree t;           /* first: tu_tree_new, tu_tree_teardown */
	char md[PATH_MAX];          /* the Maildir */
	struct store_repl_ctx c;
};

static int setup(void **state)
{
	struct fixture *f = tu_tree_new(sizeof(*f));

	snprintf(f->md, sizeof(f->md), "%.4000s/Maildir", f->t.base);
	f->c = (struct store_repl_ctx){ .mail_base = f->t.base,
		.mail_rel = "Maildir", .uid = geteuid(),
		.server_id = "b.example", .host = "h" };
	*state = f;
	return 0;
}

static void hex(const unsigned char *h, char out[65])
{
	size_t i;

	for (i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", h[i]);
}

static int body_fd(const char *body)
{
	int fd = memfd_create("body", MFD_CLOEXEC | MFD_ALLOW_SEALING);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, body, strlen(body)), (ssize_t)strlen(body));
	assert_int_equal(fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_GROW |
			       F_SEAL_SHRINK | F_SEAL_SEAL), 0);
	return fd;
}

static struct store_stamp stamp(uint64_t modseq, const char *origin)
{
	struct store_stamp s;

	memset(&s, 0, sizeof(s));
	s.modseq = modseq;
	snprintf(s.origin, sizeof(s.origin), "%s", origin);
	return s;
}

/* SAVE of BODY; asserts the call itself succeeds. */
static struct store_repl_result save(struct fixture *f, const char *box,
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

static struct store_repl_result store(struct fixture *f, const char *box,
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

static struct store_repl_result expunge(struct fixture *f, const char *box,
					const char *guid, uint64_t modseq)
{
	struct store_stamp s = stamp(modseq, "a.example");
	struct store_repl_result res;
	const char *what;

	assert_int_equal(store_repl_expunge(&f->c, box, guid, &s, &res, &what), 0);
	return res;
}

static struct store_mbox_state sync_box(struct fixture *f, const char *box)
{
	struct store_mbox_state st;
	struct store_repl_result res;
	const char *what;

	assert_int_equal(store_repl_sync(&f->c, box, &st, &res, &what), 0);
	assert_int_equal(res.status, STORE_R_OK);
	return st;
}

/* GUIDS collected. */
struct seen {
	size_t n;
	struct store_msg_info m[16];
};

static int seen_cb(const struct store_msg_info *m, void *arg)
{
	struct seen *s = arg;

	if (s->n < 16)
		s->m[s->n] = *m;
	s->n++;
	return 0;
}

static const struct store_msg_info *seen_find(const struct seen *s,
					      const char *guid)
{
	size_t i;

	for (i = 0; i < s->n && i < 16; i++) {
		if (strcmp(s->m[i].guid, guid) == 0)
			return &s->m[i];
	}
	return NULL;
}

static struct seen guids(struct fixture *f, const char *box)
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

static void test_digest_vectors_of_protocol(void **state)
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

static void test_digest_vectors_from_saved_mailbox(void **state)
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

static void test_flags_canon_cases(void **state)
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

static void test_flags_letters_ascii_order(void **state)
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

static void test_stamp_total_order(void **state)
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

static void test_merge_example_gives_same_flags_in_both_orders(void **state)
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

static void test_save_duplicate_tombstone_and_uid_hint(void **state)
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

static void test_save_uid_space_used_up_is_limit(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(save(f, "INBOX", G1, 1, "a", UINT32_MAX, "").status,
			 STORE_R_LIMIT);
	assert_int_equal(save(f, "INBOX", G1, 1, "a", UINT32_MAX - 1, "").uid,
			 UINT32_MAX - 1);
	assert_int_equal(save(f, "INBOX", G2, 1, "a", 0, "").status, STORE_R_LIMIT);
}

static void test_save_counts_bare_lf_twice_in_w(void **state)
{
	struct fixture *f = *state;
	struct store_repl_result r;
	char want[64];

	r = save(f, "INBOX", G1, 1, "a", 0, "");   /* BODY: 20 octets, 1 bare LF */
	snprintf(want, sizeof(want), ",S=%zu,W=%zu", strlen(BODY), strlen(BODY) + 1);
	assert_non_null(strstr(r.filename, want));
}

static void test_expunge_before_save_wins(void **state)
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

static void test_store_renames_file_with_letters(void **state)
{
	struct fixture *f = *state;
	struct store_repl_result r;
	const char *what;
	char name[256];

	r = save(f, "INBOX", G1, 1, "a", 0, "");
	assert_int_equal(tu_only_entry(tu_path("%s/new", f->md), name), 0);
	assert_false(store(f, "INBOX", G1, 2, "a", "+Work").status != STORE_R_OK);
	assert_int_equal(tu_count_entries(tu_path("%s/new", f->md)), 1);  /* keyword */
	r = store(f, "INBOX", G1, 3, "a", "+\\seen +\\Draft");
	assert_true(r.effective);
	assert_int_equal(tu_only_entry(tu_path("%s/cur", f->md), name), 0);
	assert_non_null(strstr(name, ":2,DS"));
	r = store(f, "INBOX", G1, 0, "", "-\\Seen -\\Draft");   /* local */
	assert_true(r.stamp.modseq == 4);
	assert_string_equal(r.stamp.origin, "b.example");
	assert_int_equal(tu_only_entry(tu_path("%s/cur", f->md), name), 0);
	assert_string_equal(strstr(name, ":2,"), ":2,");   /* no letters left */
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

static void test_bad_arguments_are_einval(void **state)
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

/* ---- reconcile --------------------------------------------------------- */

static void test_reconcile_hand_added_deleted_damaged(void **state)
{
	struct fixture *f = *state;
	struct store_mbox_state st;
	struct store_repl_result r;
	const struct store_msg_info *mi;
	char name[256], hand[PATH_MAX + 128];
	struct seen g;
	bool changed;

	r = save(f, "INBOX", G1, 1, "a", 0, "");
	snprintf(hand, sizeof(hand), "%s/new/1.M1P1Q1G%s.h,S=3,W=3", f->md, G2);
	assert_int_equal(tu_write_file(hand, "abc", 3), 0);
	assert_int_equal(tu_write_file(tu_path("%s/cur/plain:2,S", f->md), "x", 1), 0);
	st = sync_box(f, "INBOX");
	assert_int_equal(st.messages, 3);
	g = guids(f, "INBOX");
	mi = seen_find(&g, G2);
	assert_non_null(mi);
	assert_true(mi->uid == 2 || mi->uid == 3);
	assert_string_equal(mi->stamp.origin, "b.example");
	/* reconciled already: nothing more to do */
	assert_int_equal(store_repl_reconcile(&f->c, "INBOX", &changed, NULL), 0);
	assert_false(changed);
	/* hand-deleted: lost, not tombstoned; a later SAVE writes it again */
	assert_int_equal(unlink(tu_path("%s/new/%s", f->md, r.filename)), 0);
	st = sync_box(f, "INBOX");
	assert_int_equal(st.messages, 2);
	g = guids(f, "INBOX");
	assert_null(seen_find(&g, G1));
	r = save(f, "INBOX", G1, 2, "a", 0, "");
	assert_int_equal(r.status, STORE_R_OK);
	assert_true(r.effective);
	assert_int_equal(sync_box(f, "INBOX").messages, 3);
	/* damaged: size differs from S=, moved aside and lost */
	assert_int_equal(truncate(hand, 1), 0);
	assert_int_equal(store_repl_reconcile(&f->c, "INBOX", &changed, NULL), 0);
	assert_true(changed);
	assert_int_equal(access(hand, F_OK), -1);
	assert_int_equal(access(tu_path("%s/tmp/stowd-damaged-1.M1P1Q1G%s.h,S=3,W=3",
					f->md, G2), F_OK), 0);
	assert_int_equal(sync_box(f, "INBOX").messages, 2);
	(void)name;
}

static void test_reconcile_follows_imap_rename(void **state)
{
	struct fixture *f = *state;
	struct store_repl_result r, fr;
	struct store_msg_info info;
	char *buf = NULL;
	int fd;

	r = save(f, "INBOX", G1, 1, "a", 0, "");
	assert_int_equal(rename(tu_path("%s/new/%s", f->md, r.filename),
				tu_path("%s/cur/%s:2,Sa", f->md, r.filename)), 0);
	assert_int_equal(sync_box(f, "INBOX").messages, 1);
	assert_int_equal(store_repl_fetch(&f->c, "INBOX", G1, &fd, &info, &fr,
					  NULL), 0);
	assert_int_equal(fr.status, STORE_R_OK);
	assert_true(fd >= 0);
	close(fd);
	/* a STORE keeps the IMAP server's own letters */
	assert_true(store(f, "INBOX", G1, 2, "a", "+\\Flagged").effective);
	assert_int_equal(access(tu_path("%s/cur/%s:2,Fa", f->md, r.filename),
				F_OK), 0);
	free(buf);
}

/* ---- FETCH ------------------------------------------------------------- */

static void test_fetch_returns_exact_bytes_and_date(void **state)
{
	struct fixture *f = *state;
	struct store_repl_result r;
	struct store_msg_info info;
	char buf[128];
	int fd;

	save(f, "Sent", G1, 1, "a", 7, "\\Seen");
	assert_int_equal(store_repl_fetch(&f->c, "Sent", G1, &fd, &info, &r, NULL), 0);
	assert_int_equal(r.status, STORE_R_OK);
	assert_int_equal(info.uid, 7);
	assert_true(info.date == 1718000000);
	assert_string_equal(info.flags, "\\Seen");
	assert_true(info.size == strlen(BODY));
	assert_int_equal(read(fd, buf, sizeof(buf)), (ssize_t)strlen(BODY));
	assert_memory_equal(buf, BODY, strlen(BODY));
	close(fd);
	assert_int_equal(store_repl_fetch(&f->c, "Sent", G2, &fd, &info, &r, NULL), 0);
	assert_int_equal(r.status, STORE_R_NONEXISTENT);
	assert_int_equal(fd, -1);
	expunge(f, "Sent", G1, 2);
	assert_int_equal(store_repl_fetch(&f->c, "Sent", G1, &fd, &info, &r, NULL), 0);
	assert_int_equal(r.status, STORE_R_EXPUNGED);
	assert_int_equal(store_repl_fetch(&f->c, "Nope", G1, &fd, &info, &r, NULL), 0);
	assert_int_equal(r.status, STORE_R_NONEXISTENT);
}

/* ---- CREATE, DELETE, RENAME, LIST -------------------------------------- */

struct listed {
	size_t n;
	char names[8][64];
	uint32_t messages[8];
};

static int list_cb(const char *mailbox, const struct store_mbox_state *st,
		   void *arg)
{
	struct listed *l = arg;

	if (l->n < 8) {
		snprintf(l->names[l->n], 64, "%s", mailbox);
		l->messages[l->n] = st->messages;
	}
	l->n++;
	return 0;
}

static bool listed_has(const struct listed *l, const char *name)
{
	size_t i;

	for (i = 0; i < l->n && i < 8; i++) {
		if (strcmp(l->names[i], name) == 0)
			return true;
	}
	return false;
}

static void test_create_delete_rename_list(void **state)
{
	struct fixture *f = *state;
	struct store_repl_result r;
	struct listed l = { 0 };

	assert_int_equal(store_repl_list(&f->c, list_cb, &l, NULL), 0);
	assert_int_equal(l.n, 0);   /* no Maildir */
	assert_int_equal(store_repl_create(&f->c, "Work", &r, NULL), 0);
	assert_true(r.effective);
	assert_int_equal(store_repl_create(&f->c, "Work", &r, NULL), 0);
	assert_false(r.effective);
	assert_int_equal(access(tu_path("%s/.Work/cur", f->md), F_OK), 0);
	assert_int_equal(access(tu_path("%s/.Work/" STORE_INDEX_FILE, f->md), F_OK), 0);
	save(f, "Work.sub", G1, 1, "a", 0, "");
	save(f, "INBOX", G2, 1, "a", 0, "");
	assert_int_equal(store_repl_list(&f->c, list_cb, &l, NULL), 0);
	assert_int_equal(l.n, 3);
	assert_true(listed_has(&l, "INBOX") && listed_has(&l, "Work") &&
		    listed_has(&l, "Work.sub"));

	assert_int_equal(store_repl_rename(&f->c, "Work", "Archive.Work", &r, NULL), 0);
	assert_int_equal(r.status, STORE_R_OK);
	assert_true(r.effective);
	assert_int_equal(access(tu_path("%s/.Archive.Work.sub/cur", f->md), F_OK), 0);
	assert_int_equal(access(tu_path("%s/.Work", f->md), F_OK), -1);
	assert_int_equal(sync_box(f, "Archive.Work.sub").messages, 1);
	assert_int_equal(store_repl_rename(&f->c, "Work", "Archive.Work", &r, NULL), 0);
	assert_int_equal(r.status, STORE_R_OK);   /* a replay */
	assert_false(r.effective);
	assert_int_equal(store_repl_rename(&f->c, "Gone", "Else", &r, NULL), 0);
	assert_int_equal(r.status, STORE_R_NONEXISTENT);
	assert_int_equal(store_repl_create(&f->c, "Other", &r, NULL), 0);
	assert_int_equal(store_repl_rename(&f->c, "Other", "Archive.Work", &r, NULL), 0);
	assert_int_equal(r.status, STORE_R_ALREADYEXISTS);
	assert_int_equal(store_repl_rename(&f->c, "INBOX", "Old", &r, NULL), 0);
	assert_int_equal(r.status, STORE_R_CANNOT);
	assert_int_equal(store_repl_rename(&f->c, "Other", "Other.x", &r, NULL), 0);
	assert_int_equal(r.status, STORE_R_CANNOT);
	assert_int_equal(store_repl_rename(&f->c, "Other", "a..b", &r, NULL), -1);
	assert_int_equal(errno, EINVAL);

	assert_int_equal(store_repl_delete(&f->c, "inbox", &r, NULL), 0);
	assert_int_equal(r.status, STORE_R_CANNOT);
	assert_int_equal(store_repl_delete(&f->c, "Archive.Work", &r, NULL), 0);
	assert_true(r.effective);
	assert_int_equal(access(tu_path("%s/.Archive.Work", f->md), F_OK), -1);
	assert_int_equal(access(tu_path("%s/.Archive.Work.sub/cur", f->md), F_OK), 0);
	assert_int_equal(tu_count_entries(tu_path("%s/tmp", f->md)), 0);
	assert_int_equal(store_repl_delete(&f->c, "Archive.Work", &r, NULL), 0);
	assert_false(r.effective);
	assert_int_equal(store_repl_sync(&f->c, "Archive.Work", &(struct store_mbox_state){ 0 },
					 &r, NULL), 0);
	assert_int_equal(r.status, STORE_R_NONEXISTENT);
}

/* ---- index versions ---------------------------------------------------- */

static void put32(unsigned char *p, uint32_t v)
{
	p[0] = v & 0xff;
	p[1] = (v >> 8) & 0xff;
	p[2] = (v >> 16) & 0xff;
	p[3] = v >> 24;
}

/* Frame around payload[0..len) into out; returns the frame length. */
static size_t frame(const unsigned char *payload, size_t len, unsigned char *out)
{
	uint32_t crc;

	put32(out, (uint32_t)len);
	memcpy(out + 8, payload, len);
	put32(out + 8 + len, (uint32_t)len);
	crc = store_crc32(0, out, 4);
	crc = store_crc32(crc, out + 8, len);
	put32(out + 4, crc);
	return len + 12;
}

static int collect_origin(const struct store_rec *rec, void *arg)
{
	char (*o)[2][128] = arg;
	int i = rec->op == STORE_REC_SAVE && rec->origin[0] == '\0' ? 0 : 1;

	snprintf((*o)[i], 128, "%s%s", rec->guid, rec->origin);
	return 0;
}

static void test_version1_log_still_read_and_extended(void **state)
{
	struct fixture *f = *state;
	unsigned char hdr[20] = { 1, 0, 0, 0, 'S', 'T', 'O', 'W', 'D', 'I', 'D', 'X' };
	unsigned char txn[200], file[400];
	struct store_index_state st;
	char fname[128], seen[2][128] = { "", "" };
	size_t len = 0, nl;
	int dirfd;

	put32(hdr + 12, 1);
	put32(hdr + 16, 777);
	len += frame(hdr, sizeof(hdr), file);
	snprintf(fname, sizeof(fname), "1.M1P1Q1G%s.h,S=3,W=3", G1);
	nl = strlen(fname);
	memset(txn, 0, sizeof(txn));
	txn[0] = 2;                      /* version-1 transaction */
	put32(txn + 4, 777);
	put32(txn + 8, 6);               /* uidnext */
	put32(txn + 12, 1);
	txn[16] = 9;                     /* highestmodseq */
	put32(txn + 24, 1);
	txn[28] = STORE_REC_SAVE;
	txn[29] = 5;
	txn[30] = (unsigned char)nl;
	put32(txn + 32, 5);              /* uid */
	txn[36] = 9;                     /* modseq */
	memcpy(txn + 44, G1, 32);
	memcpy(txn + 76, "\\Seen", 5);
	memcpy(txn + 81, fname, nl);
	len += frame(txn, 81 + nl, file + len);
	assert_int_equal(mkdir(f->t.base, 0700), 0);
	assert_int_equal(mkdir(f->md, 0700), 0);
	assert_int_equal(mkdir(tu_path("%s/new", f->md), 0700), 0);
	assert_int_equal(mkdir(tu_path("%s/cur", f->md), 0700), 0);
	assert_int_equal(mkdir(tu_path("%s/tmp", f->md), 0700), 0);
	assert_int_equal(tu_write_file(tu_path("%s/" STORE_INDEX_FILE, f->md),
				       file, len), 0);
	assert_int_equal(tu_write_file(tu_path("%s/new/%s", f->md, fname), "abc", 3), 0);

	assert_int_equal(sync_box(f, "INBOX").messages, 1);
	assert_int_equal(sync_box(f, "INBOX").uidvalidity, 777);
	assert_string_equal(guids(f, "INBOX").m[0].flags, "\\Seen");
	assert_int_equal(guids(f, "INBOX").m[0].uid, 5);
	/* a version-2 transaction appended to the version-1 log */
	assert_int_equal(save(f, "INBOX", G2, 20, "a.example", 0, "").uid, 6);
	dirfd = open(f->md, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_int_equal(store_index_read(dirfd, collect_origin, seen, &st), 0);
	close(dirfd);
	assert_string_equal(seen[0], G1);
	assert_string_equal(seen[1], G2 "a.example");
	assert_int_equal(st.uidvalidity, 777);
	assert_int_equal(st.messages, 2);
}

static void test_lmtp_save_records_origin_and_modseq(void **state)
{
	struct fixture *f = *state;
	struct store_target t = { .mail_base = f->t.base, .mail_rel = "Maildir",
				  .mailbox = "INBOX", .uid = geteuid() };
	struct store_save_req req = { .target = &t, .body_size = 3,
		.body_vsize = 3, .guid = G1, .host = "h", .flags = "",
		.origin = "b.example" };
	struct store_save_result res;
	struct seen g;

	req.body_fd = body_fd("abc");
	assert_int_equal(store_save(&req, &res, NULL), 0);
	assert_true(res.modseq == 1);
	req.guid = G2;
	req.origin = NULL;
	assert_int_equal(store_save(&req, &res, NULL), 0);
	assert_true(res.modseq == 2);
	close(req.body_fd);
	g = guids(f, "INBOX");
	assert_int_equal(g.n, 2);
	assert_string_equal(seen_find(&g, G1)->stamp.origin, "b.example");
	assert_true(seen_find(&g, G2)->stamp.modseq == 2);
	assert_int_equal(sync_box(f, "INBOX").messages, 2);
}

int main(void)
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
		cmocka_unit_test_setup_teardown(test_fetch_returns_exact_bytes_and_date, setup, tu_tree_teardown),
		cmocka_unit_test_setup_teardown(test_create_delete_rename_list, setup, tu_tree_teardown),
		cmocka_unit_test_setup_teardown(test_version1_log_still_read_and_extended, setup, tu_tree_teardown),
		cmocka_unit_test_setup_teardown(test_lmtp_save_records_origin_and_modseq, setup, tu_tree_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
