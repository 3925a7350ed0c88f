/* SPDX-License-Identifier: MIT */
/*
 * tests/integration/test_repl_proto.c - the replication protocol as a
 * client sees it on stowd's UNIX replication socket: malformed input
 * (bad tag, unknown command, overlong line, oversized and short
 * literals, commands before HELLO, too many errors) gets the reply the
 * protocol names and never hurts the service; SAVE, replay, EXPUNGE,
 * FETCH, SYNC, SUBSCRIBE, UNSUBSCRIBE and unknown users behave as
 * specified, checked against the Maildir.
 *
 * Runs in:  the integration suite, as root, one stowd (a.test) for the
 *           program, driven as the peer "test.client".
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
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/integration/itest.h"
#include "tests/integration/itest_repl.h"

#define PEER "test.client"
#define DATE 1718000000LL

static const char msg_body[] =
	"From: <sender@example.net>\r\nSubject: replicated\r\n\r\n"
	"a CRLF line\r\na bare LF line\n\0a NUL before this\r\n.\r\n..\r\nend";
#define MSG_LEN (sizeof(msg_body) - 1)

static int
group_setup(void **state)
{
	struct irepl_conf conf = { 0 };

	if (irepl_group_setup(state) < 0 || irepl_setup(state) < 0)
		return -1;
	itest_use(&IR[0].h);
	if (irepl_make(0, &conf) < 0 || irepl_start(0) < 0) {
		/* cmocka runs no group teardown after a failed setup */
		harness_free(&IR[0].h);
		irepl_group_teardown(state);
		return -1;
	}
	return 0;
}

static int
group_teardown(void **state)
{
	harness_free(&IR[0].h);
	return irepl_group_teardown(state);
}

static const char *
user1(void)
{
	return IR[0].h->users[0].name;
}

/* stowd still runs and a new connection gets its NOOP answered. */
static void
assert_still_serving(void)
{
	struct replc *c;
	struct replc_resp r;

	assert_true(harness_alive(IR[0].h));
	c = irepl_unix(0, PEER);
	assert_int_equal(replc_cmd(c, &r, "n1", NULL, 0, "NOOP"), 0);
	if (!replc_tagged_is(&r, "OK", NULL))
		fail_msg("NOOP: \"%s\"", r.tagged);
	replc_free(&c);
}

/* Read one line (asserts) and check its start. */
static void
expect_line(struct replc *c, const char *prefix)
{
	char line[REPLC_LINE_MAX];

	if (replc_line(c, line, sizeof(line)) < 0)
		fail_msg("waiting for \"%s\": %s", prefix, strerror(errno));
	if (strncmp(line, prefix, strlen(prefix)) != 0)
		fail_msg("expected \"%s...\", got \"%s\"", prefix, line);
}

static void
expect_noop_ok(struct replc *c, const char *tag)
{
	struct replc_resp r;

	if (replc_cmd(c, &r, tag, NULL, 0, "NOOP") < 0 || !replc_tagged_is(&r, "OK", NULL))
		fail_msg("NOOP after the error: \"%s\"", r.tagged);
}

static void
test_bad_tag_gets_untagged_badtag(void **state)
{
	struct replc *c = irepl_unix(0, PEER);

	(void)state;
	assert_int_equal(replc_sendf(c, "!!! SYNC %s INBOX\r\n", user1()), 0);
	expect_line(c, "* BAD [BADTAG]");
	expect_noop_ok(c, "t2");
	replc_free(&c);
	assert_still_serving();
	itest_pass(IR[0].h);
}

static void
test_unknown_command_gets_bad_unknown(void **state)
{
	struct replc *c = irepl_unix(0, PEER);
	struct replc_resp r;

	(void)state;
	assert_int_equal(replc_cmd(c, &r, "e4", NULL, 0, "FROB %s", user1()), 0);
	if (!replc_tagged_is(&r, "BAD", "[UNKNOWN]"))
		fail_msg("FROB: \"%s\"", r.tagged);
	expect_noop_ok(c, "e5");
	replc_free(&c);
	assert_still_serving();
	itest_pass(IR[0].h);
}

static void
test_overlong_line_gets_toolong_and_connection_lives(void **state)
{
	struct replc *c = irepl_unix(0, PEER);
	struct replc_resp r;
	char *line = malloc(9100);
	size_t n;

	(void)state;
	assert_non_null(line);
	n = (size_t)sprintf(line, "t2 STORE %s 24 %s INBOX 0190f3a2b4c8d2a1e5f6a7b8c9d0e1f2 (+k0000",
			    PEER, user1());
	for (unsigned k = 1; n < 9000; k++)
		n += (size_t)sprintf(line + n, " +k%04u", k);
	n += (size_t)sprintf(line + n, ")\r\n");
	assert_int_equal(replc_send(c, line, n), 0);
	assert_int_equal(replc_collect(c, &r, "t2"), 0);
	if (!replc_tagged_is(&r, "BAD", "[TOOLONG]"))
		fail_msg("9000-octet line: \"%s\"", r.tagged);
	expect_noop_ok(c, "t3");
	free(line);
	replc_free(&c);
	assert_still_serving();
	itest_pass(IR[0].h);
}

static void
test_literal_over_maxliteral_gets_toobig(void **state)
{
	static const char guid[] = "0190f3a2c1aa7a3b77e0c1d2e3f40001";
	struct replc *c = NULL;
	struct replc_resp r;
	unsigned long long max = 0;
	char greet[REPLC_LINE_MAX], *big;
	size_t n;

	(void)state;
	assert_int_equal(replc_connect_unix(IR[0].sock, &c), 0);
	if (replc_greeting(c, greet, sizeof(greet), &max) < 0 || max == 0)
		fail_msg("greeting without MAXLITERAL: \"%s\"", greet);
	assert_int_equal(replc_cmd(c, &r, "h1", NULL, 0, "HELLO 1 %s", PEER), 0);
	assert_true(replc_tagged_is(&r, "OK", NULL));
	n = (size_t)max + 1;
	big = malloc(n);
	assert_non_null(big);
	memset(big, 'x', n);
	replc_set_timeout(c, 20000);
	assert_int_equal(replc_cmd(c, &r, "t3", big, n,
				   "SAVE %s 25 %s INBOX %s 0 %lld () {%zu}", PEER,
				   user1(), guid, DATE, n), 0);
	if (!replc_tagged_is(&r, "BAD", "[TOOBIG]"))
		fail_msg("literal of MAXLITERAL+1: \"%s\"", r.tagged);
	expect_noop_ok(c, "t4");
	assert_int_equal(irepl_find(0, 0, guid, NULL, 0), 0);
	free(big);
	replc_free(&c);
	assert_still_serving();
	itest_pass(IR[0].h);
}

static void
test_short_literal_loses_framing_and_closes(void **state)
{
	static const char guid[] = "0190f3a2c1aa7a3b77e0c1d2e3f40002";
	struct replc *c = irepl_unix(0, PEER);
	char line[REPLC_LINE_MAX], body[470];
	bool bye = false;

	(void)state;
	memset(body, 'y', sizeof(body));
	assert_int_equal(replc_sendf(c, "f1 SAVE %s 26 %s INBOX %s 0 %lld () {480}\r\n",
				     PEER, user1(), guid, DATE), 0);
	assert_int_equal(replc_send(c, body, sizeof(body)), 0);
	assert_int_equal(replc_sendf(c, "f2 NOOP\r\nf3 NOOP\r\n"), 0);
	while (replc_line(c, line, sizeof(line)) == 0) {
		if (strncmp(line, "f1 ", 3) == 0 || strncmp(line, "f2 ", 3) == 0)
			fail_msg("a command inside lost framing was answered: \"%s\"", line);
		if (strncmp(line, "* BYE [FRAMING]", 15) == 0)
			bye = true;
	}
	if (errno != ECONNRESET)
		fail_msg("connection not closed after lost framing: %s", strerror(errno));
	assert_true(bye);
	assert_int_equal(irepl_find(0, 0, guid, NULL, 0), 0);
	replc_free(&c);
	assert_still_serving();
	itest_pass(IR[0].h);
}

static void
test_command_before_hello_gets_nohello(void **state)
{
	struct replc *c = NULL;
	struct replc_resp r;

	(void)state;
	assert_int_equal(replc_connect_unix(IR[0].sock, &c), 0);
	assert_int_equal(replc_greeting(c, NULL, 0, NULL), 0);
	assert_int_equal(replc_cmd(c, &r, "e1", NULL, 0, "SYNC %s INBOX", user1()), 0);
	if (!replc_tagged_is(&r, "BAD", "[NOHELLO]"))
		fail_msg("SYNC before HELLO: \"%s\"", r.tagged);
	assert_int_equal(replc_cmd(c, &r, "e2", NULL, 0, "HELLO 2 %s", PEER), 0);
	if (!replc_tagged_is(&r, "NO", "[VERSION]"))
		fail_msg("HELLO 2: \"%s\"", r.tagged);
	assert_int_equal(replc_cmd(c, &r, "e3", NULL, 0, "HELLO 1 %s", PEER), 0);
	assert_true(replc_tagged_is(&r, "OK", NULL));
	assert_int_equal(replc_cmd(c, &r, "e4", NULL, 0, "HELLO 1 %s", PEER), 0);
	if (!replc_tagged_is(&r, "BAD", "[PROTOCOL]"))
		fail_msg("second HELLO: \"%s\"", r.tagged);
	expect_noop_ok(c, "e5");
	replc_free(&c);
	assert_still_serving();
	itest_pass(IR[0].h);
}

static void
test_too_many_bad_replies_end_the_session(void **state)
{
	struct replc *c = irepl_unix(0, PEER);
	char line[REPLC_LINE_MAX], all[2048];
	size_t n = 0;
	unsigned bads = 0;
	bool bye = false;

	(void)state;
	for (unsigned k = 1; k <= 21; k++)
		n += (size_t)snprintf(all + n, sizeof(all) - n, "b%u FROB\r\n", k);
	assert_int_equal(replc_send(c, all, n), 0);
	while (replc_line(c, line, sizeof(line)) == 0) {
		if (strstr(line, " BAD [") != NULL)
			bads++;
		if (strncmp(line, "* BYE [PROTOCOL]", 16) == 0)
			bye = true;
	}
	if (!bye)
		fail_msg("no * BYE [PROTOCOL] after %u BAD replies", bads);
	if (bads < 20 || bads > 21)
		fail_msg("%u BAD replies before the BYE, expected 20", bads);
	replc_free(&c);
	assert_still_serving();
	itest_pass(IR[0].h);
}

/* SAVE guid with msg_body as the peer; the reply in *r. */
static void
save(struct replc *c, const char *tag, unsigned long long modseq, const char *guid,
     struct replc_resp *r)
{
	if (replc_cmd(c, r, tag, msg_body, MSG_LEN, "SAVE %s %llu %s INBOX %s 0 %lld () {%zu}",
		      PEER, modseq, user1(), guid, DATE, MSG_LEN) < 0)
		fail_msg("SAVE %s: connection lost: %s", guid, strerror(errno));
}

static void
test_save_writes_exact_bytes_and_replay_is_duplicate(void **state)
{
	static const char guid[] = "0190f3a2c1aa7a3b77e0c1d2e3f40003";
	const struct harness_user *u = &IR[0].h->users[0];
	struct replc *c = irepl_unix(0, PEER);
	struct replc_resp r;
	char path[512], why[512], uid1[32], *data;
	size_t len;
	struct stat st;

	(void)state;
	save(c, "a2", 17, guid, &r);
	if (!replc_tagged_is(&r, "OK", "[UID "))
		fail_msg("SAVE: \"%s\"", r.tagged);
	snprintf(uid1, sizeof(uid1), "%s", strstr(r.tagged, "[UID ") + 5);
	uid1[strcspn(uid1, "]")] = '\0';
	assert_int_equal(irepl_find(0, 0, guid, path, sizeof(path)), 1);
	assert_int_equal(harness_read_file(path, &data, &len), 0);
	assert_int_equal(len, MSG_LEN);
	assert_memory_equal(data, msg_body, MSG_LEN);
	free(data);
	if (harness_check_owner_mode(path, u->uid, u->gid, 0600, why, sizeof(why)) != 0)
		fail_msg("%s", why);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal((long long)st.st_mtime, DATE);
	/* the same SAVE again: nothing written, the same UID named */
	save(c, "a7", 17, guid, &r);
	if (!replc_tagged_is(&r, "OK", "[DUPLICATE "))
		fail_msg("replayed SAVE: \"%s\"", r.tagged);
	assert_int_equal(atoi(strstr(r.tagged, "[DUPLICATE ") + 11), atoi(uid1));
	assert_int_equal(irepl_find(0, 0, guid, NULL, 0), 1);
	replc_free(&c);
	itest_pass(IR[0].h);
}

static void
test_expunge_is_final(void **state)
{
	static const char guid[] = "0190f3a2c1aa7a3b77e0c1d2e3f40004";
	struct replc *c = irepl_unix(0, PEER);
	struct replc_resp r;

	(void)state;
	save(c, "x1", 30, guid, &r);
	if (!replc_tagged_is(&r, "OK", "[UID "))
		fail_msg("SAVE: \"%s\"", r.tagged);
	assert_int_equal(irepl_find(0, 0, guid, NULL, 0), 1);
	assert_int_equal(replc_cmd(c, &r, "x2", NULL, 0, "EXPUNGE %s 31 %s INBOX %s",
				   PEER, user1(), guid), 0);
	if (!replc_tagged_is(&r, "OK", NULL))
		fail_msg("EXPUNGE: \"%s\"", r.tagged);
	assert_int_equal(irepl_find(0, 0, guid, NULL, 0), 0);
	save(c, "x3", 32, guid, &r);
	if (!replc_tagged_is(&r, "OK", "[EXPUNGED]"))
		fail_msg("SAVE after EXPUNGE: \"%s\"", r.tagged);
	assert_int_equal(irepl_find(0, 0, guid, NULL, 0), 0);
	assert_int_equal(replc_cmd(c, &r, "x4", NULL, 0, "FETCH %s INBOX %s", user1(),
				   guid), 0);
	if (!replc_tagged_is(&r, "NO", "[EXPUNGED]"))
		fail_msg("FETCH of an expunged GUID: \"%s\"", r.tagged);
	replc_free(&c);
	itest_pass(IR[0].h);
}

/* Replicated SAVE and EXPUNGE keep an existing maildirsize right (the
 * Maildir++ rule for every writer; no quota is configured here). */
static void
test_save_and_expunge_update_maildirsize(void **state)
{
	static const char ga[] = "0190f3a2c1aa7a3b77e0c1d2e3f40010";
	static const char gb[] = "0190f3a2c1aa7a3b77e0c1d2e3f40011";
	const struct harness_user *u = &IR[0].h->users[1];
	struct replc *c = irepl_unix(0, PEER);
	struct replc_resp r;
	char path[300], want[128], *data;
	size_t len;

	(void)state;
	assert_int_equal(replc_cmd(c, &r, "q1", msg_body, MSG_LEN,
				   "SAVE %s 40 %s INBOX %s 0 %lld () {%zu}", PEER,
				   u->name, ga, DATE, MSG_LEN), 0);
	if (!replc_tagged_is(&r, "OK", "[UID "))
		fail_msg("SAVE: \"%s\"", r.tagged);
	snprintf(path, sizeof(path), "%s/maildirsize", u->maildir);
	snprintf(want, sizeof(want), "1048576S\n%zu 1\n", MSG_LEN);
	assert_int_equal(harness_write_file(path, want, strlen(want), 0600), 0);
	assert_int_equal(chown(path, u->uid, u->gid), 0);
	assert_int_equal(replc_cmd(c, &r, "q2", msg_body, MSG_LEN,
				   "SAVE %s 41 %s INBOX %s 0 %lld () {%zu}", PEER,
				   u->name, gb, DATE, MSG_LEN), 0);
	if (!replc_tagged_is(&r, "OK", "[UID "))
		fail_msg("SAVE: \"%s\"", r.tagged);
	assert_int_equal(replc_cmd(c, &r, "q3", NULL, 0, "EXPUNGE %s 42 %s INBOX %s",
				   PEER, u->name, ga), 0);
	if (!replc_tagged_is(&r, "OK", NULL))
		fail_msg("EXPUNGE: \"%s\"", r.tagged);
	/* a replayed EXPUNGE changes nothing */
	assert_int_equal(replc_cmd(c, &r, "q4", NULL, 0, "EXPUNGE %s 42 %s INBOX %s",
				   PEER, u->name, ga), 0);
	assert_int_equal(harness_read_file(path, &data, &len), 0);
	snprintf(want, sizeof(want), "1048576S\n%zu 1\n%zu 1\n-%zu -1\n", MSG_LEN,
		 MSG_LEN, MSG_LEN);
	assert_string_equal(data, want);
	free(data);
	replc_free(&c);
	itest_pass(IR[0].h);
}

static void
test_fetch_returns_the_exact_bytes(void **state)
{
	static const char guid[] = "0190f3a2c1aa7a3b77e0c1d2e3f40005";
	struct replc *c = irepl_unix(0, PEER);
	struct replc_resp r;
	char want[128];

	(void)state;
	save(c, "g1", 40, guid, &r);
	if (!replc_tagged_is(&r, "OK", "[UID "))
		fail_msg("SAVE: \"%s\"", r.tagged);
	assert_int_equal(replc_cmd(c, &r, "g2", NULL, 0, "FETCH %s INBOX %s", user1(),
				   guid), 0);
	if (!replc_tagged_is(&r, "OK", NULL))
		fail_msg("FETCH: \"%s\"", r.tagged);
	assert_int_equal(r.ndata, 1);
	snprintf(want, sizeof(want), "* g2 FETCH %s ", guid);
	if (strncmp(r.data[0], want, strlen(want)) != 0)
		fail_msg("FETCH data \"%s\"", r.data[0]);
	snprintf(want, sizeof(want), " %lld () {%zu}", DATE, MSG_LEN);
	if (strstr(r.data[0], want) == NULL)
		fail_msg("FETCH data \"%s\" lacks \"%s\"", r.data[0], want);
	assert_non_null(r.literal);
	assert_int_equal(r.literal_len, MSG_LEN);
	assert_memory_equal(r.literal, msg_body, MSG_LEN);
	replc_resp_clear(&r);
	replc_free(&c);
	itest_pass(IR[0].h);
}

static void
test_sync_of_missing_mailbox_is_nonexistent(void **state)
{
	struct replc *c = irepl_unix(0, PEER);
	struct replc_resp r;

	(void)state;
	assert_int_equal(replc_cmd(c, &r, "s2", NULL, 0, "SYNC %s NoSuchBox", user1()), 0);
	if (!replc_tagged_is(&r, "NO", "[NONEXISTENT]"))
		fail_msg("SYNC of a missing mailbox: \"%s\"", r.tagged);
	assert_int_equal(r.ndata, 0);
	replc_free(&c);
	itest_pass(IR[0].h);
}

static void
test_unknown_user_is_nouser(void **state)
{
	static const char guid[] = "0190f3a2c1aa7a3b77e0c1d2e3f40006";
	struct replc *c = irepl_unix(0, PEER);
	struct replc_resp r;

	(void)state;
	assert_int_equal(replc_cmd(c, &r, "e9", msg_body, MSG_LEN,
				   "SAVE %s 21 nosuchuser INBOX %s 0 %lld () {%zu}",
				   PEER, guid, DATE, MSG_LEN), 0);
	if (!replc_tagged_is(&r, "NO", "[NOUSER]"))
		fail_msg("SAVE for an unknown user: \"%s\"", r.tagged);
	assert_int_equal(replc_cmd(c, &r, "e10", NULL, 0, "LIST nosuchuser"), 0);
	if (!replc_tagged_is(&r, "NO", "[NOUSER]"))
		fail_msg("LIST of an unknown user: \"%s\"", r.tagged);
	replc_free(&c);
	itest_pass(IR[0].h);
}

/* Bounded poll for a line in the log of instance i. */
static bool
log_wait(unsigned i, const char *text, int ms)
{
	for (; ms > 0; ms -= 20) {
		if (harness_log_contains(IR[i].h, text))
			return true;
		poll(NULL, 0, 20);
	}
	return harness_log_contains(IR[i].h, text);
}

/*
 * Plain TCP connects that never start TLS (RLIMIT_NOFILE 128, so repld
 * serves at most 32): the ones over replication_max_connections are
 * closed at once, the rest after replication_handshake_timeout; repld
 * never dies of a full fd table and serves again afterwards.
 */
static void
test_unauthenticated_connects_cannot_fill_repld(void **state)
{
	enum { N = 150 };
	struct irepl_conf conf = { .extra = "replication_handshake_timeout = 500ms\n" };
	struct sockaddr_in sin = { .sin_family = AF_INET };
	struct rlimit old, rl;
	struct replc *c = NULL;
	struct replc_resp r;
	int fd[N], rc, closed = 0;
	unsigned i;

	(void)state;
	assert_int_equal(irepl_make(1, &conf), 0);
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
	rl = old;
	rl.rlim_cur = 128;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
	rc = irepl_start(1);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
	assert_int_equal(rc, 0);
	sin.sin_port = htons((uint16_t)IR[1].port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	for (i = 0; i < N; i++) {
		fd[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		assert_true(fd[i] >= 0);
		assert_int_equal(connect(fd[i], (struct sockaddr *)&sin, sizeof(sin)), 0);
	}
	/* every one is closed by the server: at once, or at the deadline */
	for (i = 0; i < N; i++) {
		struct pollfd p = { .fd = fd[i], .events = POLLIN };
		char b;

		if (poll(&p, 1, 5000) == 1 && read(fd[i], &b, 1) <= 0)
			closed++;
		close(fd[i]);
	}
	assert_int_equal(closed, N);
	assert_true(log_wait(1, "replication_max_connections reached", 2000));
	assert_true(log_wait(1, "replication_handshake_timeout reached", 2000));
	assert_true(harness_log_contains(IR[1].h, "replication_max_connections=64 lowered"));
	assert_false(harness_log_contains(IR[1].h, "truncated"));
	assert_true(harness_alive(IR[1].h));
	c = irepl_unix(1, PEER);
	assert_int_equal(replc_cmd(c, &r, "n1", NULL, 0, "NOOP"), 0);
	assert_true(replc_tagged_is(&r, "OK", NULL));
	replc_resp_clear(&r);
	replc_free(&c);
	harness_free(&IR[1].h);
}

/* The subscriptions file of u1, "" when missing; caller frees. */
static char *
subs_text(void)
{
	char path[4200], *data = NULL;
	size_t len = 0;

	char *text;

	snprintf(path, sizeof(path), "%s/subscriptions", IR[0].h->users[0].maildir);
	if (harness_read_file(path, &data, &len) < 0)
		return strdup("");
	text = strndup(data, len);
	free(data);
	return text;
}

/* SUBSCRIBE and UNSUBSCRIBE from a peer change the user's subscriptions
 * file in Dovecot's format, owned by the user; replays and the removal of
 * a name never subscribed are OK; the server's own origin is a loop. */
static void
test_subscribe_and_unsubscribe(void **state)
{
	struct replc *c = irepl_unix(0, PEER);
	struct replc_resp r;
	char path[4200], *text;
	struct stat st;

	(void)state;
	assert_int_equal(replc_cmd(c, &r, "b1", NULL, 0, "SUBSCRIBE %s %s \"Sent Messages\"",
				   PEER, user1()), 0);
	if (!replc_tagged_is(&r, "OK", NULL))
		fail_msg("SUBSCRIBE: \"%s\"", r.tagged);
	assert_int_equal(replc_cmd(c, &r, "b2", NULL, 0, "SUBSCRIBE %s %s \"Sent Messages\"",
				   PEER, user1()), 0);
	if (!replc_tagged_is(&r, "OK", NULL))
		fail_msg("SUBSCRIBE replayed: \"%s\"", r.tagged);
	assert_int_equal(replc_cmd(c, &r, "b3", NULL, 0, "subscribe %s %s Lists.stowd",
				   PEER, user1()), 0);
	assert_int_equal(replc_cmd(c, &r, "b4", NULL, 0, "UNSUBSCRIBE %s %s Never",
				   PEER, user1()), 0);
	if (!replc_tagged_is(&r, "OK", NULL))
		fail_msg("UNSUBSCRIBE of a name not subscribed: \"%s\"", r.tagged);
	text = subs_text();
	assert_string_equal(text, "V\t2\n\nSent Messages\nLists\tstowd\n");
	free(text);
	snprintf(path, sizeof(path), "%s/subscriptions", IR[0].h->users[0].maildir);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_uid, IR[0].h->users[0].uid);
	assert_int_equal(replc_cmd(c, &r, "b5", NULL, 0, "UNSUBSCRIBE %s %s \"Sent Messages\"",
				   PEER, user1()), 0);
	if (!replc_tagged_is(&r, "OK", NULL))
		fail_msg("UNSUBSCRIBE: \"%s\"", r.tagged);
	assert_int_equal(replc_cmd(c, &r, "b6", NULL, 0, "SUBSCRIBE %s %s Other",
				   IR[0].id, user1()), 0);
	if (!replc_tagged_is(&r, "OK", "[LOOP]"))
		fail_msg("own origin: \"%s\"", r.tagged);
	assert_int_equal(replc_cmd(c, &r, "b7", NULL, 0, "SUBSCRIBE %s %s a..b",
				   PEER, user1()), 0);
	if (!replc_tagged_is(&r, "BAD", "[BADNAME]"))
		fail_msg("bad name: \"%s\"", r.tagged);
	text = subs_text();
	assert_string_equal(text, "V\t2\n\nLists\tstowd\n");
	free(text);
	replc_resp_clear(&r);
	replc_free(&c);
	itest_pass(IR[0].h);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_bad_tag_gets_untagged_badtag,
						itest_setup, itest_teardown),
		cmocka_unit_test_setup_teardown(test_unknown_command_gets_bad_unknown,
						itest_setup, itest_teardown),
		cmocka_unit_test_setup_teardown(
			test_overlong_line_gets_toolong_and_connection_lives,
			itest_setup, itest_teardown),
		cmocka_unit_test_setup_teardown(test_literal_over_maxliteral_gets_toobig,
						itest_setup, itest_teardown),
		cmocka_unit_test_setup_teardown(test_short_literal_loses_framing_and_closes,
						itest_setup, itest_teardown),
		cmocka_unit_test_setup_teardown(test_command_before_hello_gets_nohello,
						itest_setup, itest_teardown),
		cmocka_unit_test_setup_teardown(test_too_many_bad_replies_end_the_session,
						itest_setup, itest_teardown),
		cmocka_unit_test_setup_teardown(
			test_save_writes_exact_bytes_and_replay_is_duplicate,
			itest_setup, itest_teardown),
		cmocka_unit_test_setup_teardown(test_expunge_is_final,
						itest_setup, itest_teardown),
		cmocka_unit_test_setup_teardown(test_save_and_expunge_update_maildirsize,
						itest_setup, itest_teardown),
		cmocka_unit_test_setup_teardown(test_fetch_returns_the_exact_bytes,
						itest_setup, itest_teardown),
		cmocka_unit_test_setup_teardown(test_sync_of_missing_mailbox_is_nonexistent,
						itest_setup, itest_teardown),
		cmocka_unit_test_setup_teardown(test_unknown_user_is_nouser,
						itest_setup, itest_teardown),
		cmocka_unit_test_setup_teardown(test_subscribe_and_unsubscribe,
						itest_setup, itest_teardown),
		cmocka_unit_test(test_unauthenticated_connects_cannot_fill_repld),
	};

	harness_require_root();
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
