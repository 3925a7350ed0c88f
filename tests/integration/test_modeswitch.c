/* SPDX-License-Identifier: MIT */
/*
 * tests/integration/test_modeswitch.c - changing delivery_mode by SIGHUP
 * (seteuid -> fork -> seteuid) with a transaction in the middle of its
 * DATA: the message in flight is saved (250, file on disk), new writes
 * go to the writers of the new mode, and the writers of the old mode go
 * away.
 *
 * Runs in:  the integration suite, once (registered for fork mode only;
 *           the program sets delivery_mode itself, starting in seteuid),
 *           as root, one stowd.  Needs no test hooks.
 * Roles:    a seteuid worker has real uid 0 and CapEff = CAP_SETUID |
 *           CAP_SETGID; a fork writer child has a test user's uid.  Both
 *           kinds can exist during a switch, so children are classified
 *           here from their Uid line, not by harness_proc_role().
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tests/integration/itest.h"

#define GONE_TIMEOUT_MS 5000       /* retired writers of the old mode exit */
#define REPLY_TIMEOUT_MS 30000
#define SETEUID_WORKERS 2          /* harness base config */

static struct harness *H;

/* Write stowd.conf for mode; h->mode follows (harness_proc_role uses it). */
static int
write_mode(const char *mode)
{
	char line[64];
	const char *conf[] = { line, NULL };
	struct harness_opts o = { .conf = conf };

	snprintf(line, sizeof(line), "delivery_mode = %s", mode);
	snprintf(H->mode, sizeof(H->mode), "%s", mode);
	return harness_write_conf(H, &o);
}

static int
setup(void **state)
{
	(void)state;
	itest_use(&H);
	H = harness_new(NULL);
	if (H == NULL || write_mode("seteuid") < 0 || harness_start(H) < 0) {
		harness_free(&H);
		return -1;
	}
	itest_begin(H);
	return 0;
}

enum kind {
	KIND_ROOT,             /* real uid 0: a seteuid worker (or a fresh fork),
				* not the writer template */
	KIND_TEMPLATE,         /* fork mode's writer template */
	KIND_SETEUID,          /* real and saved uid 0, effective and fs uid 0
				* (no request yet) or the last user's,
				* CapEff == CAP_SETID exactly */
	KIND_FORK,             /* real uid of a test user */
};

static bool
user_uid(uid_t uid)
{
	for (unsigned i = 0; i < H->nusers; i++)
		if (H->users[i].uid == uid)
			return true;
	return false;
}

static bool
is_kind(const struct harness_proc *p, enum kind k)
{
	switch (k) {
	case KIND_ROOT:
		return p->uid[0] == 0 && strcmp(p->comm, "stowd-template") != 0;
	case KIND_TEMPLATE:
		return p->uid[0] == 0 && strcmp(p->comm, "stowd-template") == 0;
	case KIND_SETEUID:
		return p->uid[0] == 0 && p->uid[2] == 0 && p->uid[1] == p->uid[3] &&
		       (p->uid[1] == 0 || user_uid(p->uid[1])) &&
		       p->cap_eff == HARNESS_CAP_SETID &&
		       p->cap_prm == HARNESS_CAP_SETID && p->no_new_privs == 1 &&
		       p->seccomp == 2;
	case KIND_FORK:
		return user_uid(p->uid[0]);
	}
	return false;
}

/* Children of stowd of kind k, into out[0..max) (out may be NULL). */
static int
children_of(enum kind k, struct harness_proc *out, size_t max)
{
	struct harness_proc p[HARNESS_MAX_PROCS];
	int n = harness_find_role(H, HARNESS_ROLE_ANY, p, HARNESS_MAX_PROCS);
	size_t found = 0;

	if (n < 0)
		fail_msg("cannot list stowd's children");
	for (int i = 0; i < n; i++) {
		if (!is_kind(&p[i], k))
			continue;
		if (out != NULL && found < max)
			out[found] = p[i];
		found++;
	}
	return (int)found;
}

/* Poll until there are exactly want children of kind k (bounded). */
static void
wait_count(enum kind k, int want, const char *what)
{
	int64_t deadline = harness_mono_ms() + GONE_TIMEOUT_MS;
	int n;

	while ((n = children_of(k, NULL, 0)) != want) {
		if (harness_mono_ms() >= deadline)
			fail_msg("%s: %d after %d ms, want %d", what, n, GONE_TIMEOUT_MS,
				 want);
		harness_sleep_ms(20);
	}
}

/* The writer child of user idx: the user's ids everywhere, no caps. */
static void
assert_fork_child_of(unsigned idx)
{
	const struct harness_user *u = &H->users[idx];
	struct harness_proc p[16];
	int n = children_of(KIND_FORK, p, 16), found = 0;

	for (int i = 0; i < n && i < 16; i++) {
		if (p[i].uid[0] != u->uid)
			continue;
		found++;
		for (int j = 0; j < 4; j++)
			if (p[i].uid[j] != u->uid || p[i].gid[j] != u->gid)
				fail_msg("writer child pid %d: Uid %u %u %u %u Gid %u %u "
					 "%u %u, want %u / %u", (int)p[i].pid, p[i].uid[0],
					 p[i].uid[1], p[i].uid[2], p[i].uid[3], p[i].gid[0],
					 p[i].gid[1], p[i].gid[2], p[i].gid[3],
					 (unsigned)u->uid, (unsigned)u->gid);
		if (p[i].cap_eff != 0 || p[i].cap_prm != 0 || p[i].cap_bnd != 0 ||
		    p[i].no_new_privs != 1 || p[i].seccomp != 2)
			fail_msg("writer child pid %d: CapEff %llx CapPrm %llx CapBnd %llx "
				 "NoNewPrivs %d Seccomp %d", (int)p[i].pid,
				 (unsigned long long)p[i].cap_eff,
				 (unsigned long long)p[i].cap_prm,
				 (unsigned long long)p[i].cap_bnd, p[i].no_new_privs,
				 p[i].seccomp);
	}
	if (found != 1)
		fail_msg("%d writer children with %s's uid, want 1", found, u->name);
}

/* A transaction to user idx stopped in the middle of its DATA. */
struct inflight {
	struct lmtpc *c;
	unsigned idx;
	char *body, *stuffed;
	size_t len, slen, sent;
};

static void
inflight_start(struct inflight *t, unsigned idx, unsigned seed)
{
	t->idx = idx;
	t->body = itest_body(6000, seed, &t->len);
	t->stuffed = lmtpc_dot_stuff(t->body, t->len, &t->slen);
	assert_non_null(t->stuffed);
	t->c = itest_connect(H, HARNESS_UNIX);
	itest_envelope(t->c);
	itest_cmd(t->c, 250, NULL, "RCPT TO:<%s>", H->users[idx].addr);
	itest_cmd(t->c, 354, NULL, "DATA");
	t->sent = t->slen / 2;
	assert_int_equal(lmtpc_send(t->c, t->stuffed, t->sent), 0);
}

/* Send the rest of the body: 250 and the file on disk. */
static void
inflight_finish(struct inflight *t)
{
	struct lmtpc_reply r;

	assert_int_equal(lmtpc_send(t->c, t->stuffed + t->sent, t->slen - t->sent), 0);
	lmtpc_set_timeout(t->c, REPLY_TIMEOUT_MS);
	if (lmtpc_read_reply(t->c, &r) < 0)
		fail_msg("in-flight transaction to %s: no reply: %s",
			 H->users[t->idx].addr, lmtpc_strerror(errno));
	itest_assert_saved(H, t->idx, &r, t->body, t->len, NULL, 0);
	lmtpc_free(&t->c);
	free(t->stuffed);
	free(t->body);
}

static void
deliver_ok(unsigned idx, unsigned seed)
{
	struct lmtpc *c = itest_connect(H, HARNESS_UNIX);
	struct lmtpc_reply dr, r;
	size_t len;
	char *body = itest_body(1500, seed, &len);

	itest_envelope(c);
	itest_cmd(c, 250, NULL, "RCPT TO:<%s>", H->users[idx].addr);
	lmtpc_set_timeout(c, REPLY_TIMEOUT_MS);
	if (lmtpc_data(c, body, len, &dr, &r, 1) < 0 || dr.code != 354)
		fail_msg("DATA for %s: %s %s", H->users[idx].addr, lmtpc_strerror(errno),
			 dr.text);
	itest_assert_saved(H, idx, &r, body, len, NULL, 0);
	lmtpc_free(&c);
	free(body);
}

static void
test_mode_switch_keeps_mail_in_flight(void **state)
{
	struct inflight t;

	(void)state;
	/* seteuid: the pool of root workers with CAP_SETUID|CAP_SETGID */
	assert_int_equal(children_of(KIND_SETEUID, NULL, 0), SETEUID_WORKERS);
	assert_int_equal(children_of(KIND_FORK, NULL, 0), 0);
	deliver_ok(0, 1);
	assert_int_equal(children_of(KIND_FORK, NULL, 0), 0);

	/* seteuid -> fork with u1's second message half sent */
	inflight_start(&t, 0, 2);
	assert_int_equal(write_mode("fork"), 0);
	assert_int_equal(harness_reload(H), 0);
	inflight_finish(&t);
	assert_int_equal(itest_count_new(H, 0), 2);

	deliver_ok(1, 3);
	assert_fork_child_of(1);
	wait_count(KIND_ROOT, 0, "children with real uid 0 left in fork mode");
	wait_count(KIND_TEMPLATE, 1, "writer templates in fork mode");

	/* fork -> seteuid with u3's message half sent */
	inflight_start(&t, 2, 4);
	assert_int_equal(write_mode("seteuid"), 0);
	assert_int_equal(harness_reload(H), 0);
	inflight_finish(&t);
	assert_int_equal(itest_count_new(H, 2), 1);

	wait_count(KIND_SETEUID, SETEUID_WORKERS, "seteuid workers after the switch back");
	wait_count(KIND_FORK, 0, "writer children left in seteuid mode");
	wait_count(KIND_TEMPLATE, 0, "writer templates left in seteuid mode");
	deliver_ok(1, 5);
	assert_int_equal(children_of(KIND_FORK, NULL, 0), 0);
	assert_int_equal(children_of(KIND_SETEUID, NULL, 0), SETEUID_WORKERS);
	assert_int_equal(itest_count_new(H, 1), 2);
	assert_true(harness_alive(H));
	itest_pass(H);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_mode_switch_keeps_mail_in_flight, setup, itest_test_teardown),
	};

	harness_require_root();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
