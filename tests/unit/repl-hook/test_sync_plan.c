/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/repl-hook/test_sync_plan.c - the resync repair table
 * (doc/replication-protocol.md §11): the §11.1 worked example and edge cases.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "repl-hook/sync_plan.h"

#define G1 "0190f3a2b4c8d2a1e5f6a7b8c9d0e1f2"
#define G2 "0190f3a2b4c9000100000000deadbeef"
#define G3 "0190f3a2c0017a3b5e1f00c4a9d2b7e3"
#define G5 "0190f3a2c2bb7a3b0000111122223333"

#define MAX_ACTIONS 8

static void
add_msg(struct sync_side *s, const char *guid, uint32_t uid,
	uint64_t modseq, const char *origin, const char *flags)
{
	struct store_msg_info m;

	memset(&m, 0, sizeof(m));
	strcpy(m.guid, guid);
	m.uid = uid;
	m.stamp.modseq = modseq;
	strcpy(m.stamp.origin, origin);
	strcpy(m.flags, flags);
	assert_int_equal(sync_side_add(s, &m), 0);
}

static void
add_tomb(struct sync_side *s, const char *guid)
{
	struct store_msg_info m;

	memset(&m, 0, sizeof(m));
	strcpy(m.guid, guid);
	m.expunged = true;
	assert_int_equal(sync_side_add(s, &m), 0);
}

/* Every action, in plan order; returns the count. */
static size_t
run_plan(const struct sync_side *l, const struct sync_side *r,
	 struct sync_action *out, size_t max, size_t *skipped)
{
	struct sync_cursor c;
	struct sync_action a;
	size_t n = 0;

	sync_cursor_init(&c);
	while (sync_plan_next(l, r, &c, &a)) {
		assert_true(n < max);
		out[n++] = a;
	}
	/* done stays done */
	assert_false(sync_plan_next(l, r, &c, &a));
	if (skipped != NULL)
		*skipped = c.skipped;
	return n;
}

static const struct sync_action *
find_action(const struct sync_action *a, size_t n,
	    const char *guid)
{
	for (size_t i = 0; i < n; i++) {
		if (strcmp(a[i].guid, guid) == 0)
			return &a[i];
	}
	return NULL;
}

static void
test_plan_worked_example(void **state)
{
	struct sync_side *l = sync_side_new(), *r = sync_side_new();
	struct sync_action a[MAX_ACTIONS];
	const struct sync_action *x;
	size_t n, skipped;

	(void)state;
	add_msg(l, G1, 1, 14, "a.example", "\\Seen");
	add_tomb(l, G2);
	add_msg(l, G3, 3, 15, "a.example", "");
	add_msg(r, G1, 1, 9, "a.example", "");
	add_msg(r, G2, 2, 10, "a.example", "");
	add_msg(r, G5, 3, 11, "b.example", "\\Flagged");

	n = run_plan(l, r, a, MAX_ACTIONS, &skipped);
	assert_int_equal(n, 4);
	assert_int_equal(skipped, 0);

	x = find_action(a, n, G2);
	assert_non_null(x);
	assert_int_equal(x->kind, SYNC_A_EXPUNGE_REMOTE);
	assert_int_equal(x->uid, 2);

	x = find_action(a, n, G3);
	assert_non_null(x);
	assert_int_equal(x->kind, SYNC_A_SAVE_REMOTE);
	assert_int_equal(x->uid, 3);
	assert_int_equal(x->stamp.modseq, 15);
	assert_string_equal(x->stamp.origin, "a.example");
	assert_string_equal(x->flags, "");

	x = find_action(a, n, G5);
	assert_non_null(x);
	assert_int_equal(x->kind, SYNC_A_FETCH_REMOTE);
	assert_int_equal(x->uid, 3);
	assert_string_equal(x->flags, "\\Flagged");
	assert_int_equal(x->stamp.modseq, 11);
	assert_string_equal(x->stamp.origin, "b.example");

	x = find_action(a, n, G1);
	assert_non_null(x);
	assert_int_equal(x->kind, SYNC_A_STORE_LOCAL);
	assert_false(x->remote_wins);
	assert_string_equal(x->flags, "+\\Seen");
	assert_int_equal(x->uid, 1);

	sync_side_free(&l);
	sync_side_free(&r);
	assert_null(l);
	sync_side_free(&r);    /* NULL is fine */
	sync_side_free(NULL);
}

static void
test_plan_tombstones_both_sides_do_nothing(void **state)
{
	struct sync_side *l = sync_side_new(), *r = sync_side_new();
	struct sync_action a[MAX_ACTIONS];

	(void)state;
	add_tomb(l, G1);
	add_tomb(r, G1);
	add_tomb(l, G2);               /* tombstone only here: R never had it */
	add_tomb(r, G3);               /* tombstone only there */
	assert_int_equal(run_plan(l, r, a, MAX_ACTIONS, NULL), 0);
	sync_side_free(&l);
	sync_side_free(&r);
}

static void
test_plan_present_here_tombstoned_there_expunges_locally(void **state)
{
	struct sync_side *l = sync_side_new(), *r = sync_side_new();
	struct sync_action a[MAX_ACTIONS];

	(void)state;
	add_msg(l, G1, 7, 30, "a.example", "\\Seen");
	add_tomb(r, G1);
	assert_int_equal(run_plan(l, r, a, MAX_ACTIONS, NULL), 1);
	assert_int_equal(a[0].kind, SYNC_A_EXPUNGE_LOCAL);
	assert_string_equal(a[0].guid, G1);
	assert_int_equal(a[0].uid, 7);
	sync_side_free(&l);
	sync_side_free(&r);
}

struct flag_case {
	const char *name;
	uint64_t lm;
	const char *lo, *lf;
	uint64_t rm;
	const char *ro, *rf;
	bool remote_wins;
	const char *delta;
};

static const struct flag_case flag_cases[] = {
	{ "equal stamps: I wins", 5, "a.example", "\\Seen", 5, "a.example", "\\Flagged",
	  false, "+\\Seen -\\Flagged" },
	{ "remote newer", 5, "a.example", "\\Seen", 6, "b.example", "\\Flagged",
	  true, "+\\Flagged -\\Seen" },
	{ "same modseq, greater origin", 6, "a.example", "\\Seen", 6, "b.example", "",
	  true, "-\\Seen" },
	{ "origin prefix: longer is greater", 6, "a", "", 6, "a.x", "$Junk",
	  true, "+$Junk" },
	{ "flags only here, here newer", 9, "a.example", "\\Flagged \\Seen", 3, "a.example", "",
	  false, "+\\Flagged +\\Seen" },
	{ "flags only here, there newer", 3, "a.example", "\\Flagged \\Seen", 9, "a.example", "",
	  true, "-\\Flagged -\\Seen" },
	{ "flags only there, here newer", 9, "a.example", "", 3, "b.example", "\\Answered",
	  false, "-\\Answered" },
	{ "overlap listed whole", 9, "a.example", "\\Answered \\Seen", 3, "b.example",
	  "\\Draft \\Seen", false, "+\\Answered +\\Seen -\\Draft" },
};

static void
test_plan_flag_conflicts(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(flag_cases) / sizeof(flag_cases[0]); i++) {
		const struct flag_case *fc = &flag_cases[i];
		struct sync_side *l = sync_side_new(), *r = sync_side_new();
		struct sync_action a[MAX_ACTIONS];

		print_message("# case: %s\n", fc->name);
		add_msg(l, G1, 1, fc->lm, fc->lo, fc->lf);
		add_msg(r, G1, 1, fc->rm, fc->ro, fc->rf);
		assert_int_equal(run_plan(l, r, a, MAX_ACTIONS, NULL), 1);
		assert_int_equal(a[0].kind, SYNC_A_STORE_LOCAL);
		assert_int_equal(a[0].remote_wins, fc->remote_wins);
		assert_string_equal(a[0].flags, fc->delta);
		sync_side_free(&l);
		sync_side_free(&r);
	}
}

static void
test_plan_equal_flags_in_other_order_do_nothing(void **state)
{
	struct sync_side *l = sync_side_new(), *r = sync_side_new();
	struct sync_action a[MAX_ACTIONS];

	(void)state;
	add_msg(l, G1, 1, 4, "a.example", "\\Flagged \\Seen");
	add_msg(r, G1, 9, 8, "b.example", "\\Seen  \\Flagged");
	add_msg(l, G2, 2, 4, "a.example", "");
	add_msg(r, G2, 2, 2, "a.example", "");
	assert_int_equal(run_plan(l, r, a, MAX_ACTIONS, NULL), 0);
	sync_side_free(&l);
	sync_side_free(&r);
}

static void
test_plan_empty_sides(void **state)
{
	struct sync_side *l = sync_side_new(), *r = sync_side_new();
	struct sync_action a[MAX_ACTIONS];
	size_t n;

	(void)state;
	assert_int_equal(run_plan(l, r, a, MAX_ACTIONS, NULL), 0);

	add_msg(l, G1, 1, 1, "a.example", "\\Seen");
	add_msg(l, G2, 2, 2, "a.example", "");
	n = run_plan(l, r, a, MAX_ACTIONS, NULL);
	assert_int_equal(n, 2);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(a[i].kind, SYNC_A_SAVE_REMOTE);
	assert_string_equal(find_action(a, n, G1)->flags, "\\Seen");

	/* the other way round: everything is fetched */
	n = run_plan(r, l, a, MAX_ACTIONS, NULL);
	assert_int_equal(n, 2);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(a[i].kind, SYNC_A_FETCH_REMOTE);
	assert_int_equal(find_action(a, n, G2)->uid, 2);
	sync_side_free(&l);
	sync_side_free(&r);
}

static void
test_side_tombstone_is_final(void **state)
{
	struct sync_side *l = sync_side_new(), *r = sync_side_new();
	struct sync_action a[MAX_ACTIONS];

	(void)state;
	/* present then tombstone, tombstone then present: both a tombstone */
	add_msg(l, G1, 1, 1, "a.example", "");
	add_tomb(l, G1);
	add_tomb(l, G2);
	add_msg(l, G2, 2, 2, "a.example", "");
	assert_int_equal(sync_side_count(l), 2);
	add_msg(r, G1, 1, 1, "a.example", "");
	add_msg(r, G2, 2, 2, "a.example", "");
	assert_int_equal(run_plan(l, r, a, MAX_ACTIONS, NULL), 2);
	assert_int_equal(a[0].kind, SYNC_A_EXPUNGE_REMOTE);
	assert_int_equal(a[1].kind, SYNC_A_EXPUNGE_REMOTE);
	/* a repeated line replaces the earlier one */
	add_msg(r, G3, 3, 3, "b.example", "");
	add_msg(r, G3, 3, 4, "b.example", "\\Seen");
	assert_int_equal(sync_side_count(r), 3);
	assert_int_equal(run_plan(l, r, a, MAX_ACTIONS, NULL), 3);
	assert_string_equal(find_action(a, 3, G3)->flags, "\\Seen");
	assert_int_equal(find_action(a, 3, G3)->stamp.modseq, 4);
	sync_side_free(&l);
	sync_side_free(&r);
}

static void
test_side_rejects_bad_guid(void **state)
{
	static const char *bad[] = {
		"0190F3A2B4C8D2A1E5F6A7B8C9D0E1F2", /* upper case */
		"0190f3a2b4c8d2a1e5f6a7b8c9d0e1f",  /* 31 digits */
		"0190f3a2b4c8d2a1e5f6a7b8c9d0e1fg",
		"",
	};
	struct sync_side *s = sync_side_new();
	struct store_msg_info m;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(&m, 0, sizeof(m));
		strcpy(m.guid, bad[i]);
		errno = 0;
		assert_int_equal(sync_side_add(s, &m), -1);
		assert_int_equal(errno, EINVAL);
	}
	sync_side_free(&s);
}

static void
test_side_many_entries_each_once(void **state)
{
	struct sync_side *l = sync_side_new(), *r = sync_side_new();
	struct sync_cursor c;
	struct sync_action a;
	char guid[STORE_GUID_HEX + 1];
	size_t saves = 0, fetches = 0, stores = 0;
	const size_t n = 20000;

	(void)state;
	for (size_t i = 0; i < n; i++) {
		snprintf(guid, sizeof(guid), "0190f3a2b4c8d2a1%016zx", i);
		add_msg(l, guid, (uint32_t)i + 1, 5, "a.example", i % 3 == 0 ? "\\Seen" : "");
		if (i % 2 == 0)
			add_msg(r, guid, (uint32_t)i + 1, 4, "b.example", "");
	}
	snprintf(guid, sizeof(guid), "ffffffffffffffff%016x", 1u);
	add_msg(r, guid, 1, 4, "b.example", "");
	assert_int_equal(sync_side_count(l), n);
	sync_cursor_init(&c);
	while (sync_plan_next(l, r, &c, &a)) {
		switch (a.kind) {
		case SYNC_A_SAVE_REMOTE: saves++; break;
		case SYNC_A_FETCH_REMOTE: fetches++; break;
		case SYNC_A_STORE_LOCAL: stores++; break;
		case SYNC_A_EXPUNGE_LOCAL:
		case SYNC_A_EXPUNGE_REMOTE:
			fail_msg("unexpected expunge");
		}
	}
	assert_int_equal(saves, n / 2);
	assert_int_equal(fetches, 1);
	/* even i with i % 3 == 0: i % 6 == 0 */
	assert_int_equal(stores, (n + 5) / 6);
	sync_side_free(&l);
	sync_side_free(&r);
}

static void
test_flags_delta(void **state)
{
	char out[PSEP_FLAGS_MAX], longa[PSEP_FLAGS_MAX], longb[PSEP_FLAGS_MAX];

	(void)state;
	assert_int_equal(sync_flags_delta("\\Seen", "", out), 0);
	assert_string_equal(out, "+\\Seen");
	assert_int_equal(sync_flags_delta("", "\\Deleted \\Seen", out), 0);
	assert_string_equal(out, "-\\Deleted -\\Seen");
	errno = 0;
	assert_int_equal(sync_flags_delta("\\Seen", "\\Seen", out), -1);
	assert_int_equal(errno, EINVAL);

	/* 60-octet keywords: the full list does not fit, the difference does */
	memset(longa, 'k', 60);
	longa[60] = ' ';
	memset(longa + 61, 'm', 60);
	longa[121] = '\0';
	strcpy(longb, longa);
	longb[61] = 'n';             /* "kkk... nmmm..." */
	assert_int_equal(sync_flags_delta(longa, longb, out), 0);
	assert_int_equal(out[0], '+');
	assert_non_null(strstr(out, " -n"));
	assert_null(strstr(out, "+kk"));
	assert_true(strlen(out) < PSEP_FLAGS_MAX);

	/* two full, disjoint sets: no list of <= 127 octets expresses it */
	memset(longa, 'a', 120);
	longa[120] = '\0';
	memset(longb, 'b', 120);
	longb[120] = '\0';
	errno = 0;
	assert_int_equal(sync_flags_delta(longa, longb, out), -1);
	assert_int_equal(errno, E2BIG);
	assert_string_equal(out, "");
}

static void
test_plan_counts_inexpressible_flag_change(void **state)
{
	struct sync_side *l = sync_side_new(), *r = sync_side_new();
	struct sync_action a[MAX_ACTIONS];
	char fa[PSEP_FLAGS_MAX], fb[PSEP_FLAGS_MAX];
	size_t skipped;

	(void)state;
	memset(fa, 'a', 120);
	fa[120] = '\0';
	memset(fb, 'b', 120);
	fb[120] = '\0';
	add_msg(l, G1, 1, 5, "a.example", fa);
	add_msg(r, G1, 1, 4, "a.example", fb);
	assert_int_equal(run_plan(l, r, a, MAX_ACTIONS, &skipped), 0);
	assert_int_equal(skipped, 1);
	sync_side_free(&l);
	sync_side_free(&r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plan_worked_example),
		cmocka_unit_test(test_plan_tombstones_both_sides_do_nothing),
		cmocka_unit_test(test_plan_present_here_tombstoned_there_expunges_locally),
		cmocka_unit_test(test_plan_flag_conflicts),
		cmocka_unit_test(test_plan_equal_flags_in_other_order_do_nothing),
		cmocka_unit_test(test_plan_empty_sides),
		cmocka_unit_test(test_side_tombstone_is_final),
		cmocka_unit_test(test_side_rejects_bad_guid),
		cmocka_unit_test(test_side_many_entries_each_once),
		cmocka_unit_test(test_flags_delta),
		cmocka_unit_test(test_plan_counts_inexpressible_flag_change),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
