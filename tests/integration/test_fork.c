/* SPDX-License-Identifier: MIT */
/*
 * tests/integration/test_fork.c - delivery_mode = fork seen from outside:
 * one writer child per uid, with that user's ids on every field and no
 * capability, reused for the uid's next write, stopped after
 * fork_idle_timeout, replaced after fork_max_requests, never more than
 * fork_max_children alive at once under load; the writer template that
 * forks them, killed, costs nothing: the children it forked serve on and
 * the next miss has a new template fork its child; and (test hooks) a child
 * that dies of SIGSYS or SIGKILL while it holds a write costs a 451 4.3.0
 * for that write only: nothing in new/, tmp/ empty, a new child next time.
 *
 * Runs in:  the integration suite, fork mode only (the program forces
 *           delivery_mode = fork whatever STOWD_DELIVERY_MODE says), as
 *           root, one stowd per test.
 * Hooks:    the SIGSYS and SIGKILL tests need stowd built with
 *           -Dtest_hooks=true (without hooks SIGUSR1/SIGUSR2 would end
 *           the supervisor), so they are compiled only with
 *           STOWD_TEST_HOOKS, which that option defines.
 * Timing:   no sleep is a synchronisation: a child exists when the 250 of
 *           the write it served is read; disappearances are bounded polls
 *           of /proc; the stalled writer is found through
 *           /proc/PID/syscall, not by waiting.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "tests/integration/itest.h"

#define GONE_TIMEOUT_MS 5000       /* a retired or killed child disappears */
#define STALL_TIMEOUT_MS 5000      /* the stalled writer reaches its sleep */
#define REPLY_TIMEOUT_MS 30000
#define LOAD_USERS 20
#define LOAD_SESSIONS 5
#define LOAD_RCPTS (LOAD_USERS / LOAD_SESSIONS)   /* 4 <= lmtp_max_recipients */
#define LOAD_MAX_CHILDREN 4

/* A test's stowd: its user count and settings over the harness base. */
struct fork_case {
	unsigned nusers;
	const char *const *conf;
};

static const char *const conf_plain[] = { "delivery_mode = fork", NULL };
static const char *const conf_idle[] = {
	"delivery_mode = fork", "fork_idle_timeout = 1s", NULL,
};
static const char *const conf_requests[] = {
	"delivery_mode = fork", "fork_max_requests = 2", NULL,
};
static const char *const conf_load[] = {
	"delivery_mode = fork", "fork_max_children = 4", NULL,
};

static const struct fork_case case_plain = { 3, conf_plain };
static const struct fork_case case_idle = { 3, conf_idle };
static const struct fork_case case_requests = { 3, conf_requests };
static const struct fork_case case_load = { LOAD_USERS, conf_load };

static struct harness *H;

static int
setup(void **state)
{
	const struct fork_case *fc = *state;
	struct harness_opts o = { .nusers = fc->nusers, .conf = fc->conf };

	itest_use(&H);
	H = harness_new(&o);
	if (H == NULL)
		return -1;
	/* harness_proc_role() reads h->mode: writers are the users' uids */
	snprintf(H->mode, sizeof(H->mode), "fork");
	if (H->nusers != fc->nusers || harness_write_conf(H, &o) < 0 ||
	    harness_start(H) < 0) {
		harness_free(&H);
		return -1;
	}
	itest_begin(H);
	return 0;
}

/* ---- helpers ---------------------------------------------------------- */

/* Writer children whose real uid is user idx's, into out[0..max). */
static int
user_children(unsigned idx, struct harness_proc *out, size_t max)
{
	struct harness_proc p[HARNESS_MAX_PROCS];
	int n = harness_find_role(H, HARNESS_ROLE_WRITER, p, HARNESS_MAX_PROCS);
	size_t k = 0;

	if (n < 0)
		fail_msg("cannot list stowd's children");
	for (int i = 0; i < n; i++)
		if (p[i].uid[0] == H->users[idx].uid && k < max)
			out[k++] = p[i];
	return (int)k;
}

/* The one writer child of user idx (asserts there is exactly one). */
static struct harness_proc
the_child(unsigned idx)
{
	struct harness_proc p[8];
	int n = user_children(idx, p, 8);

	if (n != 1)
		fail_msg("%d writer children with %s's uid %u, want exactly 1", n,
			 H->users[idx].name, (unsigned)H->users[idx].uid);
	return p[0];
}

/* The writer child of user idx that is not pid old (asserts it exists). */
static struct harness_proc
new_child(unsigned idx, pid_t old)
{
	struct harness_proc p[8];
	int n = user_children(idx, p, 8), found = -1;

	for (int i = 0; i < n; i++) {
		if (p[i].pid == old)
			continue;
		if (found >= 0)
			fail_msg("two new writer children for %s: %d and %d",
				 H->users[idx].name, (int)p[found].pid, (int)p[i].pid);
		found = i;
	}
	if (found < 0)
		fail_msg("no writer child for %s other than pid %d", H->users[idx].name,
			 (int)old);
	return p[found];
}

/* Is pid gone (or a zombie)?  Polls up to timeout_ms. */
static bool
wait_gone(pid_t pid, int timeout_ms)
{
	int64_t deadline = harness_mono_ms() + timeout_ms;
	struct harness_proc p;

	for (;;) {
		if (harness_proc_read(pid, &p) < 0 || p.state == 'Z')
			return true;
		if (harness_mono_ms() >= deadline)
			return false;
		harness_sleep_ms(10);
	}
}

/* A writer child of user idx: the user's ids on every field, no caps. */
static void
assert_child_privs(const struct harness_proc *p, unsigned idx)
{
	const struct harness_user *u = &H->users[idx];

	for (int i = 0; i < 4; i++)
		if (p->uid[i] != u->uid || p->gid[i] != u->gid)
			fail_msg("writer child pid %d of %s: Uid %u %u %u %u Gid %u %u %u %u,"
				 " want all %u / %u", (int)p->pid, u->name, p->uid[0],
				 p->uid[1], p->uid[2], p->uid[3], p->gid[0], p->gid[1],
				 p->gid[2], p->gid[3], (unsigned)u->uid, (unsigned)u->gid);
	if (p->cap_inh != 0 || p->cap_prm != 0 || p->cap_eff != 0 || p->cap_bnd != 0 ||
	    p->cap_amb != 0)
		fail_msg("writer child pid %d: CapInh %llx CapPrm %llx CapEff %llx "
			 "CapBnd %llx CapAmb %llx, want all 0", (int)p->pid,
			 (unsigned long long)p->cap_inh, (unsigned long long)p->cap_prm,
			 (unsigned long long)p->cap_eff, (unsigned long long)p->cap_bnd,
			 (unsigned long long)p->cap_amb);
	if (p->no_new_privs != 1 || p->seccomp != 2)
		fail_msg("writer child pid %d: NoNewPrivs %d Seccomp %d, want 1 and 2",
			 (int)p->pid, p->no_new_privs, p->seccomp);
}

/* One message to user idx on a new connection; the final reply in *r. */
static void
transact(unsigned idx, const char *body, size_t len, struct lmtpc_reply *r)
{
	struct lmtpc *c = itest_connect(H, HARNESS_UNIX);
	struct lmtpc_reply dr;

	itest_envelope(c);
	itest_cmd(c, 250, NULL, "RCPT TO:<%s>", H->users[idx].addr);
	lmtpc_set_timeout(c, REPLY_TIMEOUT_MS);
	if (lmtpc_data(c, body, len, &dr, r, 1) < 0)
		fail_msg("DATA for %s: %s (%s)", H->users[idx].addr,
			 lmtpc_strerror(errno), dr.text);
	if (dr.code != 354)
		fail_msg("DATA for %s: \"%s\"", H->users[idx].addr, dr.text);
	lmtpc_free(&c);
}

/* Deliver message seed to user idx: 250 and the file (itest_assert_saved). */
static void
deliver_ok(unsigned idx, unsigned seed)
{
	struct lmtpc_reply r;
	size_t len;
	char *body = itest_body(1500, seed, &len);

	transact(idx, body, len, &r);
	itest_assert_saved(H, idx, &r, body, len, NULL, 0);
	free(body);
}

/* True if one line of stowd.log written during this test has a and b. */
static bool
log_line_has(const char *a, const char *b)
{
	char *log, *line, *save = NULL;
	size_t len;
	bool found = false;

	if (harness_read_file(H->log_path, &log, &len) < 0)
		return false;
	line = log + (H->log_mark > 0 && (size_t)H->log_mark <= len ? H->log_mark : 0);
	for (line = strtok_r(line, "\n", &save); line != NULL && !found;
	     line = strtok_r(NULL, "\n", &save))
		found = strstr(line, a) != NULL && (b == NULL || strstr(line, b) != NULL);
	free(log);
	return found;
}

/* ---- 1. one child per uid, reused ------------------------------------ */

static void
test_same_uid_is_served_by_the_same_child(void **state)
{
	struct harness_proc a, b, c;

	(void)state;
	deliver_ok(0, 1);
	a = the_child(0);
	assert_child_privs(&a, 0);

	deliver_ok(0, 2);
	b = the_child(0);       /* exactly one u1 child: no new one appeared */
	if (b.pid != a.pid)
		fail_msg("second write to u1 served by pid %d, first by pid %d",
			 (int)b.pid, (int)a.pid);
	assert_child_privs(&b, 0);

	deliver_ok(1, 3);
	c = the_child(1);
	assert_child_privs(&c, 1);
	assert_int_not_equal(c.pid, a.pid);
	/* u2's write did not touch u1's child */
	assert_int_equal(the_child(0).pid, a.pid);
	assert_int_equal(itest_count_new(H, 0), 2);
	assert_int_equal(itest_count_new(H, 1), 1);
	itest_pass(H);
}

/* ---- 1b. the writer template ------------------------------------------ */

/* The one writer template (asserts there is exactly one). */
static struct harness_proc
the_template(void)
{
	struct harness_proc p[4];
	int n = harness_find_role(H, HARNESS_ROLE_TEMPLATE, p, 4);

	if (n != 1)
		fail_msg("%d writer templates, want exactly 1", n);
	return p[0];
}

static void
test_killed_template_is_replaced_and_costs_nothing(void **state)
{
	struct harness_proc t1, t2, a, b;
	int64_t deadline;
	int n;

	(void)state;
	deliver_ok(0, 20);
	a = the_child(0);
	t1 = the_template();
	assert_int_equal(a.ppid, H->pid);    /* the supervisor's, not the template's */
	assert_int_equal(kill(t1.pid, SIGKILL), 0);
	if (!wait_gone(t1.pid, GONE_TIMEOUT_MS))
		fail_msg("killed writer template pid %d still there", (int)t1.pid);

	/* u1's child was not the template's to take along: it serves on */
	deliver_ok(0, 21);
	assert_int_equal(the_child(0).pid, a.pid);

	/* a miss: a new template forks u2's child */
	deliver_ok(1, 22);
	b = the_child(1);
	assert_child_privs(&b, 1);
	assert_int_equal(b.ppid, H->pid);
	deadline = harness_mono_ms() + GONE_TIMEOUT_MS;
	while ((n = harness_find_role(H, HARNESS_ROLE_TEMPLATE, &t2, 1)) != 1 &&
	       harness_mono_ms() < deadline)
		harness_sleep_ms(10);
	assert_int_equal(n, 1);
	assert_int_not_equal(t2.pid, t1.pid);
	assert_true(log_line_has("role=writer-template", "signal=9"));
	assert_int_equal(itest_count_new(H, 0), 2);
	assert_int_equal(itest_count_new(H, 1), 1);
	assert_true(harness_alive(H));
	itest_pass(H);
}

/* ---- 2. fork_idle_timeout ---------------------------------------------- */

static void
test_idle_child_stops_after_fork_idle_timeout(void **state)
{
	struct harness_proc a, b;
	struct harness_proc none[4];

	(void)state;
	deliver_ok(0, 10);
	a = the_child(0);       /* exists right after the 250 */
	if (!wait_gone(a.pid, GONE_TIMEOUT_MS))
		fail_msg("u1's idle child pid %d still there %d ms after its last write "
			 "(fork_idle_timeout = 1s)", (int)a.pid, GONE_TIMEOUT_MS);
	assert_int_equal(user_children(0, none, 4), 0);
	assert_true(harness_alive(H));

	deliver_ok(0, 11);
	b = the_child(0);
	assert_int_not_equal(b.pid, a.pid);
	assert_child_privs(&b, 0);
	assert_int_equal(itest_count_new(H, 0), 2);
	itest_pass(H);
}

/* ---- 3. fork_max_requests ---------------------------------------------- */

static void
test_child_is_replaced_after_fork_max_requests(void **state)
{
	struct harness_proc a, b, p[8];
	int n;

	(void)state;
	deliver_ok(0, 20);
	a = the_child(0);

	deliver_ok(0, 21);
	/* Served by a: a new child would still be there (1 request < 2). */
	n = user_children(0, p, 8);
	for (int i = 0; i < n; i++)
		if (p[i].pid != a.pid)
			fail_msg("second write to u1 made a new child pid %d (first: %d)",
				 (int)p[i].pid, (int)a.pid);

	deliver_ok(0, 22);
	b = new_child(0, a.pid);
	assert_child_privs(&b, 0);
	if (!wait_gone(a.pid, GONE_TIMEOUT_MS))
		fail_msg("u1's child pid %d still there after fork_max_requests = 2 "
			 "requests", (int)a.pid);
	assert_int_equal(the_child(0).pid, b.pid);
	assert_int_equal(itest_count_new(H, 0), 3);
	itest_pass(H);
}

/* ---- 4. fork_max_children under load ---------------------------------- */

struct sampler {
	atomic_bool stop;
	int samples;
	int max_seen;          /* largest writer count of a sample */
	int confirmed;         /* largest count proven simultaneous (> limit) */
	char why[512];
};

/*
 * One /proc scan is not atomic: a child seen early in the scan may exit
 * before one seen late was forked.  A sample over the limit is checked
 * again: every pid of it still alive (same uid) after the scan was alive
 * both during and after it, hence all at once at the scan's end.
 */
static int
recheck(const struct harness_proc *p, int n)
{
	for (int i = 0; i < n; i++) {
		struct harness_proc q;

		if (harness_proc_read(p[i].pid, &q) < 0 || q.state == 'Z' ||
		    q.uid[0] != p[i].uid[0])
			return 0;
	}
	return n;
}

static void *
sampler_main(void *arg)
{
	struct sampler *s = arg;
	struct harness_proc p[HARNESS_MAX_PROCS];

	while (!atomic_load(&s->stop)) {
		int n = harness_find_role(H, HARNESS_ROLE_WRITER, p, HARNESS_MAX_PROCS);

		if (n < 0)
			continue;
		s->samples++;
		if (n > s->max_seen)
			s->max_seen = n;
		if (n > LOAD_MAX_CHILDREN && recheck(p, n) > s->confirmed) {
			size_t off;

			s->confirmed = n;
			off = (size_t)snprintf(s->why, sizeof(s->why), "%d writer children "
					       "alive at once:", n);
			for (int i = 0; i < n && off < sizeof(s->why); i++)
				off += (size_t)snprintf(s->why + off, sizeof(s->why) - off,
							" %d(uid %u)", (int)p[i].pid,
							p[i].uid[0]);
		}
	}
	return NULL;
}

static void
test_load_never_exceeds_fork_max_children(void **state)
{
	struct lmtpc *c[LOAD_SESSIONS];
	struct lmtpc_reply r[LOAD_SESSIONS][LOAD_RCPTS], pre[2 + LOAD_RCPTS];
	char *body[LOAD_SESSIONS], *stuffed[LOAD_SESSIONS];
	size_t len[LOAD_SESSIONS], slen[LOAD_SESSIONS];
	struct sampler s = { .stop = false };
	pthread_t tid;
	int failed = -1, err = 0;

	(void)state;
	assert_int_equal(H->nusers, LOAD_USERS);
	for (unsigned i = 0; i < LOAD_USERS; i++)
		for (unsigned j = 0; j < i; j++)
			assert_int_not_equal(H->users[i].uid, H->users[j].uid);

	/* 5 sessions, each MAIL + 4 RCPT + DATA pipelined in one write */
	for (int k = 0; k < LOAD_SESSIONS; k++) {
		char cmds[2048];
		size_t off;

		c[k] = itest_connect(H, HARNESS_UNIX);
		itest_cmd(c[k], 250, NULL, "LHLO client.example");
		off = (size_t)snprintf(cmds, sizeof(cmds), "MAIL FROM:<%s>\r\n",
				       ITEST_SENDER);
		for (int j = 0; j < LOAD_RCPTS; j++)
			off += (size_t)snprintf(cmds + off, sizeof(cmds) - off,
						"RCPT TO:<%s>\r\n",
						H->users[k * LOAD_RCPTS + j].addr);
		off += (size_t)snprintf(cmds + off, sizeof(cmds) - off, "DATA\r\n");
		assert_int_equal(lmtpc_send(c[k], cmds, off), 0);
		assert_int_equal(lmtpc_read_replies(c[k], pre, 2 + LOAD_RCPTS), 0);
		for (int j = 0; j < 1 + LOAD_RCPTS; j++)
			if (pre[j].code != 250)
				fail_msg("session %d, pipelined reply %d: \"%s\"", k, j,
					 pre[j].text);
		if (pre[1 + LOAD_RCPTS].code != 354)
			fail_msg("session %d, DATA: \"%s\"", k, pre[1 + LOAD_RCPTS].text);
		body[k] = itest_body(2000 + 700 * (size_t)k, 100 + (unsigned)k, &len[k]);
		stuffed[k] = lmtpc_dot_stuff(body[k], len[k], &slen[k]);
		assert_non_null(stuffed[k]);
	}

	assert_int_equal(pthread_create(&tid, NULL, sampler_main, &s), 0);
	/* All 20 writes reach the supervisor at about the same time.  No
	 * assertion while the sampler runs: it must be joined first. */
	for (int k = 0; k < LOAD_SESSIONS && failed < 0; k++)
		if (lmtpc_send(c[k], stuffed[k], slen[k]) < 0) {
			failed = k;
			err = errno;
		}
	for (int k = 0; k < LOAD_SESSIONS && failed < 0; k++) {
		lmtpc_set_timeout(c[k], REPLY_TIMEOUT_MS);
		if (lmtpc_read_replies(c[k], r[k], LOAD_RCPTS) < 0) {
			failed = k;
			err = errno;
		}
	}
	atomic_store(&s.stop, true);
	assert_int_equal(pthread_join(tid, NULL), 0);
	if (failed >= 0)
		fail_msg("session %d: body or final replies: %s", failed,
			 lmtpc_strerror(err));

	if (s.confirmed > 0)
		fail_msg("fork_max_children = %d exceeded: %s", LOAD_MAX_CHILDREN, s.why);
	if (s.samples == 0 || s.max_seen == 0)
		fail_msg("%d samples saw no writer child at all", s.samples);
	print_message("load: %d samples, at most %d writer children seen\n", s.samples,
		      s.max_seen);

	for (int k = 0; k < LOAD_SESSIONS; k++) {
		for (int j = 0; j < LOAD_RCPTS; j++) {
			unsigned idx = (unsigned)(k * LOAD_RCPTS + j);

			itest_assert_saved(H, idx, &r[k][j], body[k], len[k], NULL, 0);
			assert_int_equal(itest_count_new(H, idx), 1);
		}
		lmtpc_free(&c[k]);
		free(stuffed[k]);
		free(body[k]);
	}
	/* 20 uids through 4 slots: idle children were evicted to make room */
	if (!log_line_has("writer-child pid=", " evicted"))
		fail_msg("no \"writer-child ... evicted\" line in stowd.log");
	itest_pass(H);
}

#ifdef STOWD_TEST_HOOKS
/* ---- helpers of the test-hook tests ------------------------------ */

static void
assert_tempfail(const struct lmtpc_reply *r, const char *what)
{
	if (r->code != 451 || strcmp(r->enhanced, "4.3.0") != 0)
		fail_msg("%s: expected 451 4.3.0, got \"%s\"", what, r->text);
}

static void
assert_tmp_empty(unsigned idx)
{
	char **names;
	int n = harness_maildir_list(H, idx, "tmp", &names);

	if (n != 0)
		fail_msg("%s/tmp has %d entries%s%s, want none", H->users[idx].maildir, n,
			 n > 0 ? ", first " : "", n > 0 ? names[0] : "");
	harness_names_free(&names, n);
}

/* ---- 5. SIGSYS in a child holding a write (SIGUSR1 hook) ------------- */

static void
test_sigsys_costs_only_the_write_it_held(void **state)
{
	struct harness_proc a, other, b;
	struct lmtpc_reply r;
	char what[96], user[48];
	size_t len;
	char *body = itest_body(1500, 40, &len);
	int before;

	(void)state;
	deliver_ok(0, 41);
	deliver_ok(1, 42);
	a = the_child(0);
	other = the_child(1);
	before = itest_count_new(H, 0);

	/* the writer of the next job first calls socket(): SIGSYS */
	assert_int_equal(harness_test_hook(H, SIGUSR1), 0);
	transact(0, body, len, &r);
	assert_tempfail(&r, "u1 with a writer killed by SIGSYS");
	if (!wait_gone(a.pid, GONE_TIMEOUT_MS))
		fail_msg("u1's child pid %d survived its forbidden syscall", (int)a.pid);

	snprintf(what, sizeof(what), "writer pid %d killed by signal %d", (int)a.pid,
		 SIGSYS);
	snprintf(user, sizeof(user), "user=%s ", H->users[0].name);
	if (!log_line_has(what, user))
		fail_msg("stowd.log has no line with \"%s\" and \"%s\"", what, user);
	snprintf(what, sizeof(what), "child died role=writer-child pid=%d signal=%d",
		 (int)a.pid, SIGSYS);
	if (!log_line_has(what, "forbidden syscall"))
		fail_msg("stowd.log has no line with \"%s\"", what);

	assert_int_equal(itest_count_new(H, 0), before);
	assert_tmp_empty(0);
	assert_true(harness_alive(H));

	deliver_ok(0, 43);
	b = new_child(0, a.pid);
	assert_child_privs(&b, 0);
	assert_int_equal(itest_count_new(H, 0), before + 1);
	/* u2 kept its child and its mail */
	assert_int_equal(the_child(1).pid, other.pid);
	deliver_ok(1, 44);
	assert_int_equal(the_child(1).pid, other.pid);
	assert_int_equal(itest_count_new(H, 1), 2);
	free(body);
	itest_pass(H);
}

/* ---- 6. SIGKILL of a child holding a write (SIGUSR2 hook) ------------ */

/* First field of /proc/PID/syscall: the syscall it blocks in, or -1. */
static long
blocked_syscall(pid_t pid)
{
	char buf[256];

	if (harness_proc_file(pid, "syscall", buf, sizeof(buf)) < 0)
		return -1;
	if (buf[0] < '0' || buf[0] > '9')
		return -1;     /* "running" */
	return strtol(buf, NULL, 10);
}

static bool
is_sleep_syscall(long nr)
{
#ifdef SYS_nanosleep
	if (nr == SYS_nanosleep)
		return true;
#endif
	return nr == SYS_clock_nanosleep;
}

/* u2's writer child once it sleeps in the stall hook (asserts). */
static pid_t
wait_stalled_child(unsigned idx)
{
	int64_t deadline = harness_mono_ms() + STALL_TIMEOUT_MS;
	long nr = -1;

	for (;;) {
		struct harness_proc p[8];
		int n = user_children(idx, p, 8);

		if (n > 1)
			fail_msg("%d writer children for %s, want 1", n, H->users[idx].name);
		if (n == 1) {
			nr = blocked_syscall(p[0].pid);
			if (is_sleep_syscall(nr)) {
				assert_child_privs(&p[0], idx);
				return p[0].pid;
			}
		}
		if (harness_mono_ms() >= deadline)
			fail_msg("no writer child of %s asleep in nanosleep within %d ms "
				 "(%d children, last syscall %ld)", H->users[idx].name,
				 STALL_TIMEOUT_MS, n, nr);
		harness_sleep_ms(10);
	}
}

static void
test_sigkill_costs_only_the_write_it_held(void **state)
{
	struct harness_proc u1child, b;
	struct lmtpc *c;
	struct lmtpc_reply r;
	char what[96];
	size_t len, slen;
	char *body = itest_body(3000, 50, &len), *stuffed;
	int before;
	pid_t stalled;

	(void)state;
	deliver_ok(0, 51);
	u1child = the_child(0);
	before = itest_count_new(H, 1);

	/* the writer of the next job sleeps forever before it saves */
	assert_int_equal(harness_test_hook(H, SIGUSR2), 0);
	c = itest_connect(H, HARNESS_UNIX);
	itest_envelope(c);
	itest_cmd(c, 250, NULL, "RCPT TO:<%s>", H->users[1].addr);
	itest_cmd(c, 354, NULL, "DATA");
	stuffed = lmtpc_dot_stuff(body, len, &slen);
	assert_non_null(stuffed);
	assert_int_equal(lmtpc_send(c, stuffed, slen), 0);

	stalled = wait_stalled_child(1);
	assert_int_equal(kill(stalled, SIGKILL), 0);

	lmtpc_set_timeout(c, REPLY_TIMEOUT_MS);
	if (lmtpc_read_reply(c, &r) < 0)
		fail_msg("no reply after u2's writer was killed: %s",
			 lmtpc_strerror(errno));
	assert_tempfail(&r, "u2 with a writer killed by SIGKILL");
	lmtpc_free(&c);
	if (!wait_gone(stalled, GONE_TIMEOUT_MS))
		fail_msg("killed child pid %d still there", (int)stalled);
	snprintf(what, sizeof(what), "writer pid %d killed by signal %d", (int)stalled,
		 SIGKILL);
	if (!log_line_has(what, "user=u2 "))
		fail_msg("stowd.log has no line with \"%s\" for u2", what);
	assert_int_equal(itest_count_new(H, 1), before);
	assert_tmp_empty(1);
	assert_true(harness_alive(H));

	deliver_ok(1, 52);
	b = new_child(1, stalled);
	assert_child_privs(&b, 1);
	assert_int_equal(itest_count_new(H, 1), before + 1);
	/* u1's child was not involved */
	assert_int_equal(the_child(0).pid, u1child.pid);
	deliver_ok(0, 53);
	free(stuffed);
	free(body);
	itest_pass(H);
}
#endif /* STOWD_TEST_HOOKS */

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_prestate_setup_teardown(
			test_same_uid_is_served_by_the_same_child, setup, itest_test_teardown,
			(void *)&case_plain),
		cmocka_unit_test_prestate_setup_teardown(
			test_killed_template_is_replaced_and_costs_nothing, setup,
			itest_test_teardown, (void *)&case_plain),
		cmocka_unit_test_prestate_setup_teardown(
			test_idle_child_stops_after_fork_idle_timeout, setup, itest_test_teardown,
			(void *)&case_idle),
		cmocka_unit_test_prestate_setup_teardown(
			test_child_is_replaced_after_fork_max_requests, setup, itest_test_teardown,
			(void *)&case_requests),
		cmocka_unit_test_prestate_setup_teardown(
			test_load_never_exceeds_fork_max_children, setup, itest_test_teardown,
			(void *)&case_load),
#ifdef STOWD_TEST_HOOKS
		cmocka_unit_test_prestate_setup_teardown(
			test_sigsys_costs_only_the_write_it_held, setup, itest_test_teardown,
			(void *)&case_plain),
		cmocka_unit_test_prestate_setup_teardown(
			test_sigkill_costs_only_the_write_it_held, setup, itest_test_teardown,
			(void *)&case_plain),
#endif
	};

	harness_require_root();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
