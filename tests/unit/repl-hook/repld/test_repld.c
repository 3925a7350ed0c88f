/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/repl-hook/repld/test_repld.c - the replication front-end's connection
 * logic (repl-hook/repld/conn.c, repld/cmd.c, repld/out.c) in-process: a
 * server on its own event_base with a fake supervisor backend that
 * records PSEP_REPL_REQ commands and answers them with psep_repl_rep (and
 * data memfds / message files), and replication clients on AF_UNIX
 * socketpairs (SO_PEERCRED) or on a UNIX listener for another uid.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "repl-hook/repld/repld_int.h"
#include "policy/policy.h"
#include "privsep/privsep.h"
#include "tests/unit/common/frontend.h"

#define GUID "0190f3a2b4c8d2a1e5f6a7b8c9d0e1f2"
#define MAXREQ 256

struct fake_req {
	uint64_t id;
	struct psep_repl_cmd cmd;
	int fd;
};

struct t {
	struct event_base *base;
	struct policy_settings set;
	struct repld_config cfg;
	struct repld_server srv;
	int cli;
	char in[1 << 17];
	size_t in_len;
	bool eof;
	struct fake_req req[MAXREQ];
	size_t n_req;
};


static int
fake_submit(void *ctx, uint64_t id, const struct psep_repl_cmd *cmd, int body_fd)
{
	struct t *t = ctx;

	assert_true(t->n_req < MAXREQ);
	t->req[t->n_req].id = id;
	t->req[t->n_req].cmd = *cmd;
	t->req[t->n_req].fd = body_fd;
	t->n_req++;
	return 0;
}

static bool
fake_idle(void *ctx)
{
	(void)ctx;
	return true;
}

static const struct repld_backend_ops fake_ops = {
	.submit = fake_submit,
	.idle = fake_idle,
};

/* Run the server loop once and collect what the client received. */
static void
step(struct t *t, int ms)
{
	struct pollfd p = { .fd = t->cli, .events = POLLIN };
	ssize_t n;

	event_base_loop(t->base, EVLOOP_NONBLOCK);
	if (t->eof || poll(&p, 1, ms) <= 0)
		return;
	n = read(t->cli, t->in + t->in_len, sizeof(t->in) - 1 - t->in_len);
	if (n <= 0)
		t->eof = true;
	else
		t->in_len += (size_t)n;
	t->in[t->in_len] = '\0';
}

/* Wait for text at the start of the received bytes; consume it. */
static void
expect(struct t *t, const char *text)
{
	int64_t end = lt_now_ms() + 5000;
	size_t len = strlen(text);

	while (t->in_len < len && !t->eof && lt_now_ms() < end)
		step(t, 10);
	if (t->in_len < len || memcmp(t->in, text, len) != 0)
		fail_msg("expected \"%s\", got \"%s\"", text, t->in);
	memmove(t->in, t->in + len, t->in_len - len + 1);
	t->in_len -= len;
}

static void
expect_eof(struct t *t)
{
	int64_t end = lt_now_ms() + 5000;

	while (!t->eof && lt_now_ms() < end)
		step(t, 10);
	assert_true(t->eof);
	assert_int_equal(t->in_len, 0);
}

static void
wait_reqs(struct t *t, size_t n)
{
	int64_t end = lt_now_ms() + 5000;

	while (t->n_req < n && lt_now_ms() < end)
		step(t, 10);
	assert_int_equal(t->n_req, n);
}

static void __attribute__((format(printf, 2, 3)))
say(struct t *t, const char *fmt, ...)
{
	char buf[16384];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	assert_true(n > 0 && (size_t)n < sizeof(buf));
	assert_int_equal(write(t->cli, buf, (size_t)n), n);
}

/* Write len bytes without blocking the server's loop. */
static void
say_all(struct t *t, const char *p, size_t len)
{
	int64_t end = lt_now_ms() + 10000;
	ssize_t n;

	while (len > 0 && lt_now_ms() < end) {
		n = send(t->cli, p, len, MSG_DONTWAIT);
		if (n > 0) {
			p += n;
			len -= (size_t)n;
		} else {
			assert_true(errno == EAGAIN);
			event_base_loop(t->base, EVLOOP_NONBLOCK);
		}
	}
	assert_int_equal(len, 0);
}

static int
memfd_with(const char *data, size_t len)
{
	int fd = memfd_create("test", MFD_CLOEXEC);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	return fd;
}

static void
answer(struct t *t, size_t i, uint32_t status, const char *code, const char *text,
       int fd)
{
	struct psep_repl_rep rep;

	assert_true(i < t->n_req);
	memset(&rep, 0, sizeof(rep));
	rep.status = status;
	strcpy(rep.code, code);
	strcpy(rep.text, text);
	repld_cmd_reply(&t->srv, t->req[i].id, &rep, fd);
}

static void
connect_client(struct t *t)
{
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	t->cli = sv[0];
	t->eof = false;
	t->in_len = 0;
	t->in[0] = '\0';
	repld_conn_start(&t->srv, sv[1], "unix:/test");
}

static void
greeted(struct t *t)
{
	expect(t, "* OK STOWD-REPL 1 b.example MAXLINE=8192 MAXLITERAL=1065536 "
		  "MAXINFLIGHT=64 stowd ready\r\n");
}

/* Connected, greeted, HELLO done as peer a.example. */
static void
hello(struct t *t)
{
	greeted(t);
	say(t, "h1 HELLO 1 a.example\r\n");
	expect(t, "h1 OK hello a.example\r\n");
}

static int
setup(void **state)
{
	struct t *t = calloc(1, sizeof(*t));

	assert_non_null(t);
	t->set.n_repl_unix_uids = 1;
	t->set.repl_unix_uids[0] = getuid();
	strcpy(t->cfg.server_id, "b.example");
	t->cfg.maxliteral = 1000000 + REPL_LITERAL_EXTRA;
	t->cfg.command_timeout_ms = 60000;
	t->cfg.reply_timeout_ms = 60000;
	t->cfg.set = &t->set;
	t->base = event_base_new();
	assert_non_null(t->base);
	repld_server_init(&t->srv, &t->cfg, t->base, &fake_ops, t);
	t->cli = -1;
	*state = t;
	return 0;
}

static int
teardown(void **state)
{
	struct t *t = *state;
	size_t i;

	repld_server_fini(&t->srv);
	for (i = 0; i < t->n_req; i++)
		if (t->req[i].fd >= 0)
			close(t->req[i].fd);
	if (t->cli >= 0)
		close(t->cli);
	event_base_free(t->base);
	free(t);
	return 0;
}

/* ---- tests ------------------------------------------------------------ */

static void
test_greeting_and_hello_rules(void **state)
{
	struct t *t = *state;

	connect_client(t);
	greeted(t);
	say(t, "e1 SYNC alice INBOX\r\n");
	expect(t, "e1 BAD [NOHELLO] HELLO first\r\n");
	say(t, "e2 HELLO 2 a.example\r\n");
	expect(t, "e2 NO [VERSION] supported versions: 1\r\n");
	say(t, "e3 HELLO 1 a.example\r\n");
	expect(t, "e3 OK hello a.example\r\n");
	say(t, "e4 HELLO 1 a.example\r\n");
	expect(t, "e4 BAD [PROTOCOL] HELLO already done\r\n");
	say(t, "e5 NOOP\r\n");
	expect(t, "e5 OK noop\r\n");
	say(t, "e6 FROB alice\r\n");
	expect(t, "e6 BAD [UNKNOWN]");
	assert_int_equal(t->n_req, 0);
}

static void
test_badtag_and_taginuse(void **state)
{
	struct t *t = *state;

	connect_client(t);
	hello(t);
	say(t, "!!! NOOP\r\n");
	expect(t, "* BAD [BADTAG] invalid tag\r\n");
	say(t, "t1 SYNC alice INBOX\r\n");
	wait_reqs(t, 1);
	assert_int_equal(t->req[0].cmd.op, PSEP_REPL_SYNC);
	assert_string_equal(t->req[0].cmd.user, "alice");
	assert_string_equal(t->req[0].cmd.peer, "a.example");
	say(t, "t1 SYNC alice Sent\r\n");
	expect(t, "t1 BAD [TAGINUSE] tag in use\r\n");
	answer(t, 0, PSEP_RS_NO, "NONEXISTENT", "no such mailbox", -1);
	expect(t, "t1 NO [NONEXISTENT] no such mailbox\r\n");
	/* answered: the tag may be used again */
	say(t, "t1 NOOP\r\n");
	expect(t, "t1 OK noop\r\n");
	assert_int_equal(t->n_req, 1);
}

static void
test_save_literal_reaches_supervisor(void **state)
{
	struct t *t = *state;
	char body[16] = "";
	int seals;

	connect_client(t);
	hello(t);
	say(t, "a2 SAVE a.example 17 alice INBOX " GUID " 42 1718000000 (\\Seen) {5}\r\n"
	       "hello\r\n");
	wait_reqs(t, 1);
	assert_int_equal(t->req[0].cmd.op, PSEP_REPL_SAVE);
	assert_int_equal(t->req[0].cmd.modseq, 17);
	assert_int_equal(t->req[0].cmd.uid_hint, 42);
	assert_int_equal(t->req[0].cmd.body_size, 5);
	assert_string_equal(t->req[0].cmd.origin, "a.example");
	assert_string_equal(t->req[0].cmd.guid, GUID);
	assert_true(t->req[0].fd >= 0);
	assert_int_equal(pread(t->req[0].fd, body, sizeof(body) - 1, 0), 5);
	assert_string_equal(body, "hello");
	seals = fcntl(t->req[0].fd, F_GET_SEALS);
	assert_true(seals & F_SEAL_WRITE);
	answer(t, 0, PSEP_RS_OK, "UID 42", "saved", -1);
	expect(t, "a2 OK [UID 42] saved\r\n");
}

static void
test_pipelined_replies_by_tag_per_user_order(void **state)
{
	struct t *t = *state;

	connect_client(t);
	hello(t);
	say(t, "a1 STORE a.example 18 alice INBOX " GUID " (+\\Seen)\r\n"
	       "a2 STORE a.example 19 alice INBOX " GUID " (-\\Seen)\r\n"
	       "a3 STORE a.example 9 bob INBOX " GUID " (+\\Seen)\r\n"
	       "a4 NOOP\r\n");
	/* the NOOP reply proves every line before it was read */
	expect(t, "a4 OK noop\r\n");
	assert_int_equal(t->n_req, 2);
	assert_string_equal(t->req[0].cmd.user, "alice");
	assert_int_equal(t->req[0].cmd.modseq, 18);
	assert_string_equal(t->req[1].cmd.user, "bob");
	/* bob first: replies go out as commands complete */
	answer(t, 1, PSEP_RS_OK, "", "stored", -1);
	expect(t, "a3 OK stored\r\n");
	assert_int_equal(t->n_req, 2);
	answer(t, 0, PSEP_RS_OK, "", "stored", -1);
	expect(t, "a1 OK stored\r\n");
	wait_reqs(t, 3);
	assert_string_equal(t->req[2].cmd.user, "alice");
	assert_int_equal(t->req[2].cmd.modseq, 19);
	assert_string_equal(t->req[2].cmd.flags, "-\\Seen");
	answer(t, 2, PSEP_RS_OK, "", "", -1);
	expect(t, "a2 OK done\r\n");
}

static void
test_loop_and_modseq_rules(void **state)
{
	struct t *t = *state;

	connect_client(t);
	hello(t);
	say(t, "e14 EXPUNGE b.example 30 alice INBOX " GUID "\r\n");
	expect(t, "e14 OK [LOOP] own event ignored\r\n");
	say(t, "e8 STORE a.example 0 alice INBOX " GUID " (+\\Seen)\r\n");
	expect(t, "e8 BAD [SYNTAX] modseq 0 only from a local producer\r\n");
	say(t, "e9 CREATE b.example alice Sent\r\n");
	expect(t, "e9 OK [LOOP] own event ignored\r\n");
	assert_int_equal(t->n_req, 0);
}

static void
test_loop_waits_for_earlier_command_of_user(void **state)
{
	struct t *t = *state;

	connect_client(t);
	hello(t);
	say(t, "a1 SYNC alice INBOX\r\n"
	       "a2 EXPUNGE b.example 30 alice INBOX " GUID "\r\n"
	       "a3 NOOP\r\n");
	expect(t, "a3 OK noop\r\n");
	assert_int_equal(t->n_req, 1);
	answer(t, 0, PSEP_RS_OK, "", "sync", -1);
	expect(t, "a1 OK sync\r\na2 OK [LOOP] own event ignored\r\n");
}

static void
test_local_producer(void **state)
{
	struct t *t = *state;

	connect_client(t);
	greeted(t);
	say(t, "p0 HELLO 1 b.example\r\n");
	expect(t, "p0 OK hello b.example\r\n");
	say(t, "p1 STORE a.example 0 carol INBOX " GUID " (+\\Seen)\r\n");
	expect(t, "p1 BAD [SYNTAX] origin must be this server on a local-producer connection\r\n");
	say(t, "p2 STORE b.example 5 carol INBOX " GUID " (+\\Seen)\r\n");
	expect(t, "p2 BAD [SYNTAX] modseq must be 0 from a local producer\r\n");
	say(t, "p3 STORE b.example 0 carol INBOX " GUID " (+\\Seen)\r\n");
	wait_reqs(t, 1);
	assert_string_equal(t->req[0].cmd.peer, "");
	assert_string_equal(t->req[0].cmd.origin, "b.example");
	assert_int_equal(t->req[0].cmd.modseq, 0);
	answer(t, 0, PSEP_RS_OK, "", "stored", -1);
	expect(t, "p3 OK stored\r\n");
}

static void
test_list_data_lines_and_fetch_literal(void **state)
{
	static const char data[] = "MAILBOX INBOX MESSAGES 3\nMAILBOX Sent MESSAGES 0\n";
	struct t *t = *state;
	struct psep_repl_rep rep;

	connect_client(t);
	hello(t);
	say(t, "s1 LIST alice\r\n");
	wait_reqs(t, 1);
	assert_int_equal(t->req[0].cmd.op, PSEP_REPL_LIST);
	answer(t, 0, PSEP_RS_OK, "", "listed", memfd_with(data, sizeof(data) - 1));
	expect(t, "* s1 MAILBOX INBOX MESSAGES 3\r\n* s1 MAILBOX Sent MESSAGES 0\r\n"
		  "s1 OK listed\r\n");
	say(t, "s4 FETCH alice INBOX " GUID "\r\n");
	wait_reqs(t, 2);
	memset(&rep, 0, sizeof(rep));
	rep.status = PSEP_RS_OK;
	rep.uid = 3;
	rep.date = 1718001000;
	rep.size = 10;
	strcpy(rep.flags, "\\Flagged");
	strcpy(rep.text, "fetched");
	repld_cmd_reply(&t->srv, t->req[1].id, &rep, memfd_with("0123456789", 10));
	expect(t, "* s4 FETCH " GUID " 3 1718001000 (\\Flagged) {10}\r\n0123456789\r\n"
		  "s4 OK fetched\r\n");
}

static void
test_overlong_line_and_bad_eol(void **state)
{
	struct t *t = *state;
	char big[9001];

	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	connect_client(t);
	hello(t);
	say(t, "l1 %s\r\n", big);
	expect(t, "l1 BAD [TOOLONG] line too long\r\n");
	say(t, "%s\r\n", big);
	expect(t, "* BAD [TOOLONG] line too long\r\n");
	say(t, "b1 NOOP\n");
	expect(t, "b1 BAD [SYNTAX]");
	expect(t, " line must end with CRLF\r\n");
	say(t, "l2 NOOP\r\n");
	expect(t, "l2 OK noop\r\n");
}

static void
test_literal_toobig_is_discarded(void **state)
{
	struct t *t = *state;
	char *big = malloc(1065537 + 3);

	assert_non_null(big);
	memset(big, 'y', 1065537);
	memcpy(big + 1065537, "\r\n", 3);
	t->cfg.maxliteral = 1065536;
	connect_client(t);
	hello(t);
	say(t, "t1 SAVE a.example 17 alice INBOX " GUID " 0 1718000000 () {1065537}\r\n");
	say_all(t, big, 1065537 + 2);
	expect(t, "t1 BAD [TOOBIG] literal exceeds MAXLITERAL\r\n");
	say(t, "t2 NOOP\r\n");
	expect(t, "t2 OK noop\r\n");
	assert_int_equal(t->n_req, 0);
	free(big);
}

static void
test_twenty_bads_close(void **state)
{
	struct t *t = *state;
	int i;

	connect_client(t);
	hello(t);
	for (i = 0; i < 20; i++)
		say(t, "!!! x\r\n");
	for (i = 0; i < 20; i++)
		expect(t, "* BAD [BADTAG] invalid tag\r\n");
	expect(t, "* BYE [PROTOCOL] too many errors\r\n");
	expect_eof(t);
}

static void
test_logout_finishes_inflight(void **state)
{
	struct t *t = *state;

	connect_client(t);
	hello(t);
	say(t, "a1 SYNC alice INBOX\r\na2 LOGOUT\r\na3 NOOP\r\n");
	wait_reqs(t, 1);
	answer(t, 0, PSEP_RS_OK, "", "sync", -1);
	expect(t, "a1 OK sync\r\n* BYE [LOGOUT] bye\r\na2 OK logout\r\n");
	expect_eof(t);
	assert_int_equal(t->n_req, 1);
}

static void
test_maxinflight_stops_reading(void **state)
{
	struct t *t = *state;
	char buf[64 * 80 + 64];
	size_t len = 0;
	int i;

	connect_client(t);
	hello(t);
	for (i = 0; i < 64; i++)
		len += (size_t)snprintf(buf + len, sizeof(buf) - len,
					"s%d SYNC u%d INBOX\r\n", i, i);
	len += (size_t)snprintf(buf + len, sizeof(buf) - len, "z NOOP\r\n");
	assert_int_equal(write(t->cli, buf, len), (ssize_t)len);
	wait_reqs(t, 64);
	step(t, 20);
	assert_int_equal(t->in_len, 0);   /* the NOOP waits */
	answer(t, 5, PSEP_RS_OK, "", "sync", -1);
	expect(t, "s5 OK sync\r\nz OK noop\r\n");
}

static void
test_framing_lost_says_bye(void **state)
{
	struct t *t = *state;

	connect_client(t);
	hello(t);
	say(t, "f1 SAVE a.example 17 alice INBOX " GUID " 0 1718000000 () {5}\r\n"
	       "helloXX\r\n");
	expect(t, "* BYE [FRAMING] ");
	t->in_len = 0;
	t->in[0] = '\0';
	expect_eof(t);
	assert_int_equal(t->n_req, 0);
}

static void
test_shutdown_finishes_inflight(void **state)
{
	struct t *t = *state;

	connect_client(t);
	hello(t);
	say(t, "a1 SYNC alice INBOX\r\n");
	wait_reqs(t, 1);
	repld_server_shutdown(&t->srv);
	assert_false(t->srv.stopped);
	answer(t, 0, PSEP_RS_OK, "", "sync", -1);
	expect(t, "a1 OK sync\r\n* BYE [SHUTDOWN] server stopping\r\n");
	expect_eof(t);
	assert_true(t->srv.stopped);
	assert_int_equal(t->srv.n_conns, 0);
}

static void
test_idle_timeout(void **state)
{
	struct t *t = *state;

	t->cfg.command_timeout_ms = 100;
	connect_client(t);
	hello(t);
	expect(t, "* BYE [TIMEOUT] idle\r\n");
	expect_eof(t);
}

/* A command answered NO after reply_timeout_ms may still run at the
 * supervisor: the same user's next command waits for its late reply. */
static void
test_timed_out_command_holds_its_user(void **state)
{
	struct t *t = *state;

	t->cfg.reply_timeout_ms = 100;
	connect_client(t);
	hello(t);
	say(t, "t1 SYNC alice INBOX\r\n");
	wait_reqs(t, 1);
	expect(t, "t1 NO [UNAVAILABLE] timeout inside the server, try again\r\n");
	say(t, "t2 SYNC alice INBOX\r\nt3 SYNC bob INBOX\r\n");
	wait_reqs(t, 2);
	assert_string_equal(t->req[1].cmd.user, "bob");
	answer(t, 1, PSEP_RS_OK, "", "sync", -1);
	expect(t, "t3 OK sync\r\n");
	assert_int_equal(t->n_req, 2);    /* alice waits */
	answer(t, 0, PSEP_RS_OK, "", "sync", -1);    /* the late reply */
	wait_reqs(t, 3);
	assert_string_equal(t->req[2].cmd.user, "alice");
	answer(t, 2, PSEP_RS_OK, "", "sync", -1);
	expect(t, "t2 OK sync\r\n");
}

/* replication_max_connections: one more is closed at once (told why on a
 * unix socket); the one already served goes on. */
static void
test_max_connections_refuses_new_ones(void **state)
{
	struct t *t = *state;
	char buf[128] = "";
	ssize_t n;
	int sv[2];

	t->cfg.max_connections = 1;
	connect_client(t);
	hello(t);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	repld_conn_start(&t->srv, sv[1], "unix:/test");
	n = read(sv[0], buf, sizeof(buf) - 1);
	assert_true(n > 0);
	buf[n] = '\0';
	assert_string_equal(buf, "* BYE [UNAVAILABLE] too many connections\r\n");
	assert_int_equal(read(sv[0], buf, sizeof(buf)), 0);
	close(sv[0]);
	assert_int_equal(t->srv.n_conns, 1);
	say(t, "n1 NOOP\r\n");
	expect(t, "n1 OK noop\r\n");
}

/* replication_handshake_timeout: a connection without a complete first
 * command in time is closed; a command in time ends that deadline. */
static void
test_handshake_timeout(void **state)
{
	struct t *t = *state;

	t->cfg.handshake_timeout_ms = 100;
	connect_client(t);
	greeted(t);
	say(t, "h1 HELL");      /* never completed */
	expect(t, "* BYE [TIMEOUT] no command\r\n");
	expect_eof(t);
	assert_int_equal(t->srv.n_conns, 0);
}

static void
test_handshake_deadline_ends_with_first_command(void **state)
{
	struct t *t = *state;
	int64_t end;

	t->cfg.handshake_timeout_ms = 100;
	connect_client(t);
	hello(t);
	for (end = lt_now_ms() + 300; lt_now_ms() < end;)
		step(t, 10);
	assert_int_equal(t->in_len, 0);
	say(t, "n1 NOOP\r\n");
	expect(t, "n1 OK noop\r\n");
}

static void
test_peercred_refused_uid(void **state)
{
	struct t *t = *state;

	t->set.repl_unix_uids[0] = getuid() + 4242;
	connect_client(t);
	expect(t, "* BYE [AUTHFAILED] peer uid not allowed\r\n");
	expect_eof(t);
	assert_int_equal(t->srv.n_conns, 0);
}

/* As root: a client process that runs as another uid is refused, while
 * root (listed) is served. */
static void
test_peercred_other_uid_forked(void **state)
{
	struct t *t = *state;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char dir[] = "/tmp/repld-test-XXXXXX";
	int lfd, afd, status = -1;
	int64_t end;
	pid_t pid;

	if (geteuid() != 0) {
		/* no other uid to become: the refusal of an unlisted uid is
		 * covered by test_peercred_refused_uid */
		t->set.repl_unix_uids[0] = getuid() + 1;
		connect_client(t);
		expect(t, "* BYE [AUTHFAILED] peer uid not allowed\r\n");
		expect_eof(t);
		return;
	}
	t->set.repl_unix_uids[0] = 0;
	assert_non_null(mkdtemp(dir));
	assert_int_equal(chmod(dir, 0755), 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/s", dir);
	lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(lfd >= 0);
	assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(chmod(sa.sun_path, 0777), 0);
	assert_int_equal(listen(lfd, 4), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		static const char want[] = "* BYE [AUTHFAILED] peer uid not allowed\r\n";
		char got[256];
		size_t n = 0;
		ssize_t r;
		int fd;

		if (setgid(65534) != 0 || setuid(65534) != 0)
			_exit(2);
		fd = socket(AF_UNIX, SOCK_STREAM, 0);
		if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
			_exit(3);
		while (n < sizeof(got) - 1 && (r = read(fd, got + n, sizeof(got) - 1 - n)) > 0)
			n += (size_t)r;
		got[n] = '\0';
		_exit(strcmp(got, want) == 0 ? 0 : 4);
	}
	afd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	assert_true(afd >= 0);
	repld_conn_start(&t->srv, afd, "unix:test");
	end = lt_now_ms() + 5000;
	while (lt_now_ms() < end) {
		event_base_loop(t->base, EVLOOP_NONBLOCK);
		if (waitpid(pid, &status, WNOHANG) == pid)
			break;
		poll(NULL, 0, 10);
	}
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(t->srv.n_conns, 0);
	/* root is listed: served */
	connect_client(t);
	greeted(t);
	close(lfd);
	unlink(sa.sun_path);
	rmdir(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_greeting_and_hello_rules, setup, teardown),
		cmocka_unit_test_setup_teardown(test_badtag_and_taginuse, setup, teardown),
		cmocka_unit_test_setup_teardown(test_save_literal_reaches_supervisor, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pipelined_replies_by_tag_per_user_order,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_loop_and_modseq_rules, setup, teardown),
		cmocka_unit_test_setup_teardown(test_loop_waits_for_earlier_command_of_user,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_local_producer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_list_data_lines_and_fetch_literal,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_overlong_line_and_bad_eol, setup, teardown),
		cmocka_unit_test_setup_teardown(test_literal_toobig_is_discarded, setup, teardown),
		cmocka_unit_test_setup_teardown(test_twenty_bads_close, setup, teardown),
		cmocka_unit_test_setup_teardown(test_logout_finishes_inflight, setup, teardown),
		cmocka_unit_test_setup_teardown(test_maxinflight_stops_reading, setup, teardown),
		cmocka_unit_test_setup_teardown(test_framing_lost_says_bye, setup, teardown),
		cmocka_unit_test_setup_teardown(test_shutdown_finishes_inflight, setup, teardown),
		cmocka_unit_test_setup_teardown(test_idle_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_timed_out_command_holds_its_user,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_max_connections_refuses_new_ones,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_handshake_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_handshake_deadline_ends_with_first_command,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_peercred_refused_uid, setup, teardown),
		cmocka_unit_test_setup_teardown(test_peercred_other_uid_forked, setup, teardown),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
