/* SPDX-License-Identifier: MIT */
/*
 * tests/integration/test_limits.c - availability limits of a real stowd:
 * the recipients of one message share one fd in the supervisor; the
 * supervisor's fd budget answers 451 4.3.2 instead of killing a
 * front-end; a user whose index lock is held delays only their own mail;
 * lmtpd's connection limits (per process, per peer, and the fd limit)
 * refuse new clients with 421 while the others go on; a command line
 * over the limit is answered at once and a trickled one meets one
 * deadline.  The fd tests run stowd with a low RLIMIT_NOFILE (lowered in
 * this process around the start, inherited by stowd), so they stay fast.
 *
 * Runs in:  the integration suite, as root.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "tests/integration/itest.h"

static struct harness *H;

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Start stowd with conf over the base and RLIMIT_NOFILE nofile (0 = as
 * this process has it). */
static void
start(const char *const *conf, unsigned nusers, rlim_t nofile)
{
	struct harness_opts o = { .nusers = nusers, .conf = conf };
	struct rlimit old, rl;
	int rc;

	itest_use(&H);
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
	rl = old;
	if (nofile != 0)
		rl.rlim_cur = nofile;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
	rc = itest_test_start(&H, &o);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
	assert_int_equal(rc, 0);
}

/* Open fds of process pid. */
static int
count_fds(pid_t pid)
{
	char path[64];
	struct dirent *e;
	DIR *d;
	int n = 0;

	snprintf(path, sizeof(path), "/proc/%ld/fd", (long)pid);
	d = opendir(path);
	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

/* Take the index lock of user idx the way a user would (flock on their
 * own stowd-index.log).  Returns the fd holding it. */
static int
lock_index(unsigned idx)
{
	char path[512];
	int fd;

	snprintf(path, sizeof(path), "%s/stowd-index.log", H->users[idx].maildir);
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		fail_msg("open %s: %s", path, strerror(errno));
	assert_int_equal(flock(fd, LOCK_EX), 0);
	return fd;
}

static void
deliver_one(unsigned idx)
{
	unsigned i = idx;

	assert_int_equal(harness_deliver(H, &i, 1, ITEST_MINI_BODY,
					 strlen(ITEST_MINI_BODY)), 0);
}

/* MAIL, n recipients user idx "+N" (all must get 250), DATA sent: the
 * replies are left to read. */
static struct lmtpc *
send_plus_recipients(unsigned idx, unsigned n, const char *body)
{
	struct lmtpc *c = itest_connect(H, HARNESS_UNIX);
	const char *at = strchr(H->users[idx].addr, '@');
	struct lmtpc_reply r;
	size_t len;
	char *stuffed;
	unsigned i;

	itest_envelope(c);
	for (i = 0; i < n; i++)
		itest_cmd(c, 250, NULL, "RCPT TO:<%s+%u%s>", H->users[idx].name, i,
			  at != NULL ? at : "");
	itest_cmd(c, 354, &r, "DATA");
	stuffed = lmtpc_dot_stuff(body, strlen(body), &len);
	assert_non_null(stuffed);
	assert_int_equal(lmtpc_send(c, stuffed, len), 0);
	free(stuffed);
	return c;
}

/* Read n replies of a DATA, expecting code for each; returns how many had
 * it. */
static unsigned
read_replies(struct lmtpc *c, unsigned n, int code)
{
	struct lmtpc_reply *r = calloc(1, sizeof(*r));
	unsigned i, ok = 0;

	assert_non_null(r);
	for (i = 0; i < n; i++) {
		if (lmtpc_read_reply(c, r) != 0)
			fail_msg("reply %u of %u: none", i + 1, n);
		if (r->code == code)
			ok++;
		else
			fprintf(stderr, "reply %u: %s\n", i + 1, r->text);
	}
	free(r);
	return ok;
}

/* ---- item 1: the supervisor's fds --------------------------------------- */

/* 600 recipients of one message, while their writes wait for a held index
 * lock: the supervisor holds one fd for the body, not 600 (its limit is
 * 256), and every recipient gets 250. */
/* The log line with text appears within 5 s: a line a child logs after
 * it answered travels through the supervisor, so it may come after the
 * answer. */
static void
assert_logged(const char *text)
{
	int64_t end = harness_mono_ms() + 5000;

	while (!harness_log_contains(H, text)) {
		if (harness_mono_ms() > end)
			fail_msg("no log line with \"%s\"", text);
		harness_sleep_ms(20);
	}
}

static void
test_recipients_share_one_body(void **state)
{
	static const char *const conf[] = { "index_lock_timeout = 10s",
					    "lmtp_max_recipients = 1000", NULL };
	struct lmtpc *c;
	int lock, max = 0, base;
	uint64_t end;

	(void)state;
	start(conf, 2, 256);
	deliver_one(0);
	base = count_fds(H->pid);
	lock = lock_index(0);
	c = send_plus_recipients(0, 600, ITEST_MINI_BODY);
	/* bounded sampling while the writes are stuck behind the lock */
	for (end = now_ms() + 1500; now_ms() < end;) {
		int n = count_fds(H->pid);

		if (n > max)
			max = n;
		poll(NULL, 0, 20);
	}
	close(lock);
	lmtpc_set_timeout(c, 60000);
	assert_int_equal(read_replies(c, 600, 250), 600);
	lmtpc_free(&c);
	fprintf(stderr, "supervisor fds: %d before, at most %d with 600 "
		"recipients queued\n", base, max);
	assert_true(max < base + 16);
	assert_false(harness_log_contains(H, "truncated"));
	assert_int_equal(itest_count_new(H, 0), 601);
	itest_pass(H);
}

/* More distinct messages waiting than the fd budget allows: the excess
 * recipients get 451 4.3.2 at once, one log line names the limit, no
 * front-end dies, and the others are delivered once the lock is gone. */
static void
test_fd_budget_refuses_with_4xx(void **state)
{
	static const char *const conf[] = { "index_lock_timeout = 20s", NULL };
	enum { N = 24 };
	struct lmtpc *c[N];
	struct lmtpc_reply *r = calloc(1, sizeof(*r));
	unsigned i, refused = 0, saved = 0;
	char body[128];
	int lock;

	(void)state;
	assert_non_null(r);
	start(conf, 2, 256);      /* budget: 16 bodies */
	deliver_one(0);
	lock = lock_index(0);
	for (i = 0; i < N; i++) {
		snprintf(body, sizeof(body), "Subject: %u\r\n\r\nbody %u\r\n", i, i);
		c[i] = send_plus_recipients(0, 1, body);
	}
	/* the refused ones are answered while the lock is still held */
	for (i = 0; i < N; i++) {
		struct pollfd p = { .fd = lmtpc_fd(c[i]), .events = POLLIN };

		if (poll(&p, 1, i == 0 ? 2000 : 200) == 1) {
			assert_int_equal(lmtpc_read_reply(c[i], r), 0);
			assert_int_equal(r->code, 451);
			assert_string_equal(r->enhanced, "4.3.2");
			refused++;
			lmtpc_free(&c[i]);
		}
	}
	close(lock);
	for (i = 0; i < N; i++) {
		if (c[i] == NULL)
			continue;
		lmtpc_set_timeout(c[i], 60000);
		saved += read_replies(c[i], 1, 250);
		lmtpc_free(&c[i]);
	}
	free(r);
	fprintf(stderr, "%u refused, %u saved\n", refused, saved);
	assert_true(refused > 0);
	assert_int_equal(refused + saved, N);
	assert_logged("raise LimitNOFILE");
	assert_false(harness_log_contains(H, "truncated"));
	assert_false(harness_log_contains(H, "killed"));
	deliver_one(1);
	itest_pass(H);
}

/* ---- item 5: one user's stuck writes ------------------------------------ */

/* 1000 recipients of u1 wait for u1's held index lock (RLIMIT_NOFILE
 * 1024, where 1000 recipients used to leave the supervisor 4 fds); a
 * delivery to u2 takes less than a second more than it does normally. */
static void
test_locked_user_does_not_delay_others(void **state)
{
	/* one front-end: u1's requests reach the supervisor before u2's */
	static const char *const conf[] = { "index_lock_timeout = 5s",
					    "lmtp_processes = 1",
					    "lmtp_max_recipients = 1000", NULL };
	struct lmtpc *c;
	uint64_t t0, normal, slow;
	int lock;

	(void)state;
	start(conf, 2, 1024);     /* the limit the issue was seen with */
	deliver_one(0);
	t0 = now_ms();
	deliver_one(1);
	normal = now_ms() - t0;
	lock = lock_index(0);
	c = send_plus_recipients(0, 1000, ITEST_MINI_BODY);
	t0 = now_ms();
	deliver_one(1);
	slow = now_ms() - t0;
	close(lock);
	fprintf(stderr, "delivery to u2: %llu ms alone, %llu ms with 1000 of u1 "
		"stuck\n", (unsigned long long)normal, (unsigned long long)slow);
	lmtpc_set_timeout(c, 120000);
	assert_int_equal(read_replies(c, 1000, 250), 1000);
	lmtpc_free(&c);
	assert_true(slow < normal + 1000);
	itest_pass(H);
}

/* index_lock_timeout bounds the wait for a lock the user holds: the
 * message is saved (without its index record) and the log says which
 * setting applies. */
static void
test_index_lock_timeout_is_a_setting(void **state)
{
	static const char *const conf[] = { "index_lock_timeout = 200ms", NULL };
	uint64_t t0;
	int lock;

	(void)state;
	start(conf, 1, 0);
	deliver_one(0);
	lock = lock_index(0);
	t0 = now_ms();
	deliver_one(0);
	close(lock);
	assert_true(now_ms() - t0 < 3000);
	assert_logged("index_lock_timeout");
	assert_int_equal(itest_count_new(H, 0), 2);
	itest_pass(H);
}

/* ---- item 2: lmtpd's connections --------------------------------------- */

/* A connection, its greeting read into r. */
static struct lmtpc *
connect_raw(enum harness_listener which, struct lmtpc_reply *r)
{
	struct lmtpc *c = NULL;

	assert_int_equal(lmtpc_connect(H->listen[which], 5000, &c), 0);
	assert_int_equal(lmtpc_greeting(c, r), 0);
	return c;
}

static void
test_connection_limits(void **state)
{
	static const char *const conf[] = {
		"lmtp_processes = 1", "lmtp_max_connections = 8",
		"lmtp_max_connections_per_peer = 4", NULL
	};
	struct lmtpc *u[5], *t[5];
	struct lmtpc_reply r;
	unsigned i;

	(void)state;
	start(conf, 1, 0);
	for (i = 0; i < 4; i++) {
		u[i] = connect_raw(HARNESS_UNIX, &r);
		assert_int_equal(r.code, 220);
	}
	/* a fifth from the same uid: 421, closed */
	u[4] = connect_raw(HARNESS_UNIX, &r);
	assert_int_equal(r.code, 421);
	assert_string_equal(r.enhanced, "4.3.2");
	assert_int_equal(lmtpc_wait_closed(u[4], 5000), 0);
	lmtpc_free(&u[4]);
	assert_logged("lmtp_max_connections_per_peer");
	/* another peer (TCP address) has its own share, up to the process
	 * limit */
	for (i = 0; i < 4; i++) {
		t[i] = connect_raw(HARNESS_TCP4, &r);
		assert_int_equal(r.code, 220);
	}
	t[4] = connect_raw(HARNESS_TCP4, &r);
	assert_int_equal(r.code, 421);
	lmtpc_free(&t[4]);
	assert_logged("lmtp_max_connections reached");
	/* the connections already there go on */
	for (i = 0; i < 4; i++) {
		itest_cmd(u[i], 250, NULL, "NOOP");
		itest_cmd(t[i], 250, NULL, "NOOP");
	}
	/* one leaves: a new one is served */
	lmtpc_free(&u[0]);
	for (i = 0; i < 50; i++) {
		u[0] = connect_raw(HARNESS_UNIX, &r);
		if (r.code == 220)
			break;
		lmtpc_free(&u[0]);
		poll(NULL, 0, 20);
	}
	assert_int_equal(r.code, 220);
	for (i = 0; i < 4; i++) {
		lmtpc_free(&u[i]);
		lmtpc_free(&t[i]);
	}
	itest_pass(H);
}

/* With RLIMIT_NOFILE 128, lmtpd serves what fits and refuses the rest with
 * 421; it never dies of a full fd table. */
static void
test_fd_limit_never_kills_lmtpd(void **state)
{
	static const char *const conf[] = {
		"lmtp_processes = 1", "lmtp_max_connections_per_peer = 1000", NULL
	};
	enum { N = 120 };
	struct lmtpc *c[N];
	struct lmtpc_reply r;
	unsigned i, ok = 0, refused = 0;

	(void)state;
	start(conf, 1, 128);
	for (i = 0; i < N; i++) {
		c[i] = connect_raw(HARNESS_UNIX, &r);
		if (r.code == 220)
			ok++;
		else if (r.code == 421)
			refused++;
	}
	fprintf(stderr, "%u served, %u refused\n", ok, refused);
	assert_true(ok > 0);
	assert_true(refused > 0);
	assert_int_equal(ok + refused, N);
	for (i = 0; i < N; i++)
		lmtpc_free(&c[i]);
	assert_logged("lmtp_max_connections=256 lowered");
	assert_false(harness_log_contains(H, "truncated"));
	deliver_one(0);
	itest_pass(H);
}

/* ---- spawns ------------------------------------------------------------- */

/* Set the supervisor's soft RLIMIT_NOFILE (prlimit, as root). */
static void
sup_nofile(rlim_t cur)
{
	struct rlimit rl;

	assert_int_equal(prlimit(H->pid, RLIMIT_NOFILE, NULL, &rl), 0);
	rl.rlim_cur = cur;
	assert_int_equal(prlimit(H->pid, RLIMIT_NOFILE, &rl, NULL), 0);
}

/* A front-end that cannot be spawned (the supervisor is out of fds) is
 * tried again with a back-off until it can. */
static void
test_failed_spawn_is_retried(void **state)
{
	static const char *const conf[] = { "lmtp_processes = 1", NULL };
	struct harness_proc p[4];
	pid_t old;
	int i;

	(void)state;
	start(conf, 1, 0);
	assert_int_equal(harness_find_role(H, HARNESS_ROLE_LMTPD, p, 4), 1);
	old = p[0].pid;
	/* no room for the socketpair of a new child */
	sup_nofile((rlim_t)count_fds(H->pid));
	assert_int_equal(kill(old, SIGKILL), 0);
	for (i = 0; i < 150 && !harness_log_contains(H, "could not be started"); i++)
		poll(NULL, 0, 20);
	assert_logged("could not be started: trying again");
	sup_nofile(1024);
	assert_int_equal(harness_wait_role(H, HARNESS_ROLE_LMTPD, 1, &old, 1, 10000), 1);
	deliver_one(0);
	itest_pass(H);
}

/* ---- item 8: command lines ---------------------------------------------- */

static void
test_long_line_answered_before_its_end(void **state)
{
	char line[3000];
	struct lmtpc *c;
	struct lmtpc_reply r;

	(void)state;
	start(NULL, 1, 0);
	c = itest_connect(H, HARNESS_UNIX);
	memset(line, 'x', sizeof(line));
	assert_int_equal(lmtpc_send(c, line, sizeof(line)), 0);
	lmtpc_set_timeout(c, 3000);
	assert_int_equal(lmtpc_read_reply(c, &r), 0);
	assert_int_equal(r.code, 500);
	assert_string_equal(r.enhanced, "5.5.2");
	assert_int_equal(lmtpc_send(c, "\r\n", 2), 0);
	itest_cmd(c, 250, NULL, "NOOP");
	lmtpc_free(&c);
	itest_pass(H);
}

/* One byte every 200 ms never completes a line: the session ends at
 * lmtp_command_timeout (1 s) after the command was first awaited. */
static void
test_trickled_line_meets_one_deadline(void **state)
{
	static const char *const conf[] = { "lmtp_command_timeout = 1s", NULL };
	struct lmtpc *c;
	struct lmtpc_reply r;
	uint64_t t0;
	bool got = false;

	(void)state;
	start(conf, 1, 0);
	c = itest_connect(H, HARNESS_UNIX);
	t0 = now_ms();
	while (now_ms() - t0 < 4000) {
		struct pollfd p = { .fd = lmtpc_fd(c), .events = POLLIN };

		if (poll(&p, 1, 200) == 1) {
			got = true;
			break;
		}
		if (lmtpc_send(c, "N", 1) != 0)
			break;
	}
	assert_true(got);
	assert_int_equal(lmtpc_read_reply(c, &r), 0);
	assert_int_equal(r.code, 421);
	assert_true(now_ms() - t0 < 2000);
	assert_int_equal(lmtpc_wait_closed(c, 3000), 0);
	lmtpc_free(&c);
	itest_pass(H);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_recipients_share_one_body,
					  itest_test_teardown),
		cmocka_unit_test_teardown(test_fd_budget_refuses_with_4xx,
					  itest_test_teardown),
		cmocka_unit_test_teardown(test_locked_user_does_not_delay_others,
					  itest_test_teardown),
		cmocka_unit_test_teardown(test_index_lock_timeout_is_a_setting,
					  itest_test_teardown),
		cmocka_unit_test_teardown(test_connection_limits, itest_test_teardown),
		cmocka_unit_test_teardown(test_fd_limit_never_kills_lmtpd,
					  itest_test_teardown),
		cmocka_unit_test_teardown(test_failed_spawn_is_retried, itest_test_teardown),
		cmocka_unit_test_teardown(test_long_line_answered_before_its_end,
					  itest_test_teardown),
		cmocka_unit_test_teardown(test_trickled_line_meets_one_deadline,
					  itest_test_teardown),
	};

	harness_require_root();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
