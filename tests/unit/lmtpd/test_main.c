/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/lmtpd/test_main.c - lmtp_main end to end: a forked front-end
 * talks over real socketpairs to this test, which plays the supervisor
 * (HELLO, CLIENT_FD, RCPT/DELIVER replies, SHUTDOWN) and the LMTP client.
 * Covers the IPC queue and matching (ipc.c), bufferevent transport
 * (conn.c) and process life cycle (main.c).  The same conversation under
 * the LMTPD seccomp profile runs when STOWD_TEST_LMTPD_SECCOMP=1.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "lmtpd/lmtpd.h"
#include "policy/policy.h"
#include "privsep/privsep.h"
#include "tests/unit/common/frontend.h"

#define MAXCLI 2

struct e2e {
	struct policy_settings set;
	pid_t pid;
	int sup;
	bool sup_eof;
	int cli[MAXCLI];
	char in[MAXCLI][65536];
	size_t in_len[MAXCLI];
	bool cli_eof[MAXCLI];
	int n_rcpt, n_dlv, n_end;
	char prefix[PSEP_PREFIX_MAX + 1];
	char body[1024];
	uint64_t size, vsize;
	int seals;
	bool sandbox;
};

/* Send on the (non-blocking) supervisor end, waiting while it is full. */
static void
sup_send(struct e2e *e, uint16_t type, uint64_t id, const void *body, size_t len)
{
	struct pollfd p = { .fd = e->sup, .events = POLLOUT };
	int64_t end = lt_now_ms() + 5000;

	while (psep_msg_send(e->sup, type, id, body, len, -1) == -1) {
		assert_int_equal(errno, EAGAIN);
		if (lt_now_ms() > end)
			fail_msg("supervisor link stays full");
		poll(&p, 1, 50);
	}
}

static void
answer_rcpt(struct e2e *e, const struct psep_msg *m)
{
	struct psep_rcpt_rep r;
	bool ok = strncmp(m->u.rcpt_req.address, "bad", 3) != 0;

	memset(&r, 0, sizeof(r));
	r.result.status = ok ? DLV_OK : DLV_PERMFAIL;
	r.result.code = ok ? 250 : 550;
	strcpy(r.result.enhanced, ok ? "2.1.5" : "5.1.1");
	strcpy(r.result.text, ok ? "Ok" : "No such user");
	e->n_rcpt++;
	sup_send(e, PSEP_RCPT_REP, m->hdr.id, &r, sizeof(r));
}

static void
answer_deliver(struct e2e *e, const struct psep_msg *m)
{
	const struct psep_deliver_req *d = &m->u.deliver_req;
	struct psep_deliver_rep r;
	ssize_t n;

	memcpy(e->prefix, d->prefix, d->prefix_len);
	e->prefix[d->prefix_len] = '\0';
	n = pread(m->fd, e->body, sizeof(e->body) - 1, 0);
	assert_true(n >= 0);
	e->body[n] = '\0';
	e->size = d->body_size;
	e->vsize = d->body_vsize;
	e->seals = fcntl(m->fd, F_GET_SEALS);
	memset(&r, 0, sizeof(r));
	r.result.status = DLV_OK;
	r.result.code = 250;
	strcpy(r.result.enhanced, "2.0.0");
	strcpy(r.result.text, "Saved");
	snprintf(r.guid, sizeof(r.guid), "%032x", (unsigned)++e->n_dlv);
	sup_send(e, PSEP_DELIVER_REP, m->hdr.id, &r, sizeof(r));
}

static void
sup_message(struct e2e *e)
{
	struct psep_msg m;
	const char *why = NULL;

	if (psep_msg_recv(e->sup, PSEP_ROLE_LMTPD, PSEP_STATE_READY, &m, &why) == -1) {
		if (errno == EAGAIN)
			return;
		assert_int_equal(errno, ECONNRESET);
		e->sup_eof = true;
		return;
	}
	switch (m.hdr.type) {
	case PSEP_RCPT_REQ:
		answer_rcpt(e, &m);
		break;
	case PSEP_DELIVER_REQ:
		answer_deliver(e, &m);
		break;
	case PSEP_SESSION_END:
		e->n_end++;
		break;
	case PSEP_LOG:
		break;
	default:
		fail_msg("unexpected message %u", m.hdr.type);
	}
	psep_msg_clear(&m);
}

/* Wait up to ms for anything; serve the supervisor side, collect client
 * bytes. */
static void
pump(struct e2e *e, int ms)
{
	struct pollfd p[1 + MAXCLI];
	ssize_t n;
	int i;

	p[0].fd = e->sup_eof ? -1 : e->sup;
	p[0].events = POLLIN;
	for (i = 0; i < MAXCLI; i++) {
		p[1 + i].fd = e->cli_eof[i] ? -1 : e->cli[i];
		p[1 + i].events = POLLIN;
	}
	if (poll(p, 1 + MAXCLI, ms) <= 0)
		return;
	if (p[0].revents)
		sup_message(e);
	for (i = 0; i < MAXCLI; i++) {
		if (!p[1 + i].revents)
			continue;
		n = read(e->cli[i], e->in[i] + e->in_len[i],
			 sizeof(e->in[i]) - 1 - e->in_len[i]);
		if (n <= 0)
			e->cli_eof[i] = true;
		else
			e->in_len[i] += (size_t)n;
		e->in[i][e->in_len[i]] = '\0';
	}
}

/* Wait for text from client k; drop everything through it. */
static void
expect(struct e2e *e, int k, const char *text)
{
	int64_t end = lt_now_ms() + 5000;
	char *hit;

	while ((hit = strstr(e->in[k], text)) == NULL) {
		if (lt_now_ms() > end || e->cli_eof[k])
			fail_msg("client %d: wanted \"%s\", have \"%s\"%s", k, text,
				 e->in[k], e->cli_eof[k] ? " and EOF" : "");
		pump(e, 50);
	}
	hit += strlen(text);
	e->in_len[k] -= (size_t)(hit - e->in[k]);
	memmove(e->in[k], hit, e->in_len[k] + 1);
}

static void
expect_eof(struct e2e *e, int k)
{
	int64_t end = lt_now_ms() + 5000;

	while (!e->cli_eof[k]) {
		if (lt_now_ms() > end)
			fail_msg("client %d: no EOF", k);
		pump(e, 50);
	}
}

static void
say(struct e2e *e, int k, const char *text)
{
	assert_int_equal(write(e->cli[k], text, strlen(text)), (ssize_t)strlen(text));
}

/* Serve until *counter reaches n. */
static void
wait_for(struct e2e *e, const int *counter, int n)
{
	int64_t end = lt_now_ms() + 5000;

	while (*counter < n) {
		if (lt_now_ms() > end)
			fail_msg("counter at %d, wanted %d", *counter, n);
		pump(e, 50);
	}
}

/* One round of pump for lt_wait_exit. */
static void
serve(void *ctx)
{
	pump(ctx, 20);
}

/* The child's exit status (or 128 + signal); serves the link meanwhile
 * and reads it to the end. */
static int
wait_exit(struct e2e *e)
{
	int st = lt_wait_exit(&e->pid, "front-end", serve, e);

	while (!e->sup_eof)
		pump(e, 20);
	return st;
}

static void
send_client(struct e2e *e, int k, int fd)
{
	struct psep_client_fd c;

	memset(&c, 0, sizeof(c));
	strcpy(c.listener, "unix:/run/test");
	assert_int_equal(psep_msg_send(e->sup, PSEP_CLIENT_FD, 100 + (unsigned)k, &c,
				       sizeof(c), fd), 0);
	close(fd);
}

/* Client k on a unix socketpair. */
static void
connect_unix(struct e2e *e, int k)
{
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	e->cli[k] = sv[0];
	send_client(e, k, sv[1]);
}

static void
shutdown_now(struct e2e *e)
{
	sup_send(e, PSEP_SHUTDOWN, 0, NULL, 0);
}

/* Child body: the front-end, sandboxed if the test asks for it. */
static int
lmtpd_child(void *arg, int ipc)
{
	struct e2e *e = arg;

	if (e->sandbox) {
		prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
		psep_sandbox_apply(PSEP_PROFILE_LMTPD);
	}
	{
		struct lmtp_args la = { .set = &e->set, .tls_cert_fd = -1,
					.tls_key_fd = -1 };

		return lmtp_main(&la, ipc);
	}
}

static void
start(struct e2e *e)
{
	lt_spawn(PSEP_ROLE_LMTPD, lmtpd_child, e, &e->pid, &e->sup);
}

static int
setup(void **state)
{
	struct e2e *e = calloc(1, sizeof(*e));
	int i;

	e->set.hostname = "h.example";
	e->set.lmtp_max_message_size = 1000000;
	e->set.lmtp_max_recipients = 10;
	e->set.lmtp_command_timeout = 10000;
	e->set.lmtp_max_line_length = 1000;
	e->set.writer_timeout = 10000;
	e->pid = -1;
	e->sup = -1;
	for (i = 0; i < MAXCLI; i++)
		e->cli[i] = -1;
	signal(SIGPIPE, SIG_IGN);
	*state = e;
	return 0;
}

static int
teardown(void **state)
{
	struct e2e *e = *state;
	int i;

	if (e->pid > 0) {
		kill(e->pid, SIGKILL);
		waitpid(e->pid, NULL, 0);
	}
	if (e->sup >= 0)
		close(e->sup);
	for (i = 0; i < MAXCLI; i++)
		if (e->cli[i] >= 0)
			close(e->cli[i]);
	free(e);
	return 0;
}

/* One full transaction on client 0, then QUIT. */
static void
conversation(struct e2e *e)
{
	connect_unix(e, 0);
	expect(e, 0, "220 h.example LMTP stowd ready\r\n");
	say(e, 0, "LHLO me.example\r\nMAIL FROM:<s@x.example>\r\nRCPT TO:<a@x.example>\r\n"
		  "RCPT TO:<bad@x.example>\r\nRCPT TO:<b@x.example>\r\nDATA\r\n");
	expect(e, 0, "250 CHUNKING\r\n250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n"
		     "550 5.1.1 No such user\r\n250 2.1.5 Ok\r\n354 ");
	say(e, 0, "Subject: t\r\n\r\n..hi\r\nbare\nLF\r\n.\r\n");
	expect(e, 0, "Saved as 00000000000000000000000000000001\r\n");
	expect(e, 0, "Saved as 00000000000000000000000000000002\r\n");
	assert_int_equal(e->n_rcpt, 3);
	assert_string_equal(e->body, "Subject: t\n\n.hi\nbare\nLF\n");
	assert_true(e->size == 24 && e->vsize == 29);
	assert_int_equal(e->seals, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE);
	assert_non_null(strstr(e->prefix, "Delivered-To: b@x.example\n"
				       "Received: from me.example (local)\n\tby h.example"));
	say(e, 0, "QUIT\r\n");
	expect(e, 0, "221 2.0.0 h.example closing connection\r\n");
	expect_eof(e, 0);
	wait_for(e, &e->n_end, 1);
}

static void
test_main_transaction_and_shutdown(void **state)
{
	struct e2e *e = *state;

	start(e);
	conversation(e);
	shutdown_now(e);
	assert_int_equal(wait_exit(e), 0);
}

static void
test_main_sandboxed(void **state)
{
	struct e2e *e = *state;
	const char *on = getenv("STOWD_TEST_LMTPD_SECCOMP");

	if (on == NULL || strcmp(on, "1") != 0) {
		/* cmocka's "not ok # SKIP" counts as a failure in meson */
		print_message("# sandboxed run off (STOWD_TEST_LMTPD_SECCOMP=1)\n");
		return;
	}
	e->sandbox = true;
	start(e);
	conversation(e);
	shutdown_now(e);
	assert_int_equal(wait_exit(e), 0);
}

static void
test_main_graceful_shutdown(void **state)
{
	struct e2e *e = *state;

	start(e);
	connect_unix(e, 0);
	connect_unix(e, 1);
	say(e, 0, "LHLO one\r\n");
	say(e, 1, "LHLO two\r\nMAIL FROM:<>\r\n");
	expect(e, 0, "250 CHUNKING\r\n");
	expect(e, 1, "250 2.1.0 Ok\r\n");
	shutdown_now(e);
	expect(e, 0, "421 4.3.2 h.example Service shutting down\r\n");
	expect_eof(e, 0);
	say(e, 1, "RCPT TO:<a@x>\r\nDATA\r\nx\r\n.\r\nNOOP\r\n");
	expect(e, 1, "354 ");
	expect(e, 1, "250 2.0.0 <a@x> ");
	expect(e, 1, "421 4.3.2 h.example Service shutting down\r\n");
	expect_eof(e, 1);
	assert_int_equal(wait_exit(e), 0);
	assert_int_equal(e->n_end, 2);
}

static void
test_main_exits_on_ipc_eof(void **state)
{
	struct e2e *e = *state;

	start(e);
	connect_unix(e, 0);
	expect(e, 0, "220 ");
	close(e->sup);
	e->sup = -1;
	e->sup_eof = true;
	assert_int_equal(wait_exit(e), 0);
	expect_eof(e, 0);
}

static void
test_main_exits_on_garbage(void **state)
{
	struct e2e *e = *state;
	char junk[3] = { 1, 2, 3 };

	start(e);
	assert_int_equal(send(e->sup, junk, sizeof(junk), 0), 3);
	assert_int_equal(wait_exit(e), 1);
}

static void
test_main_timeout(void **state)
{
	struct e2e *e = *state;

	e->set.lmtp_command_timeout = 150;
	start(e);
	connect_unix(e, 0);
	expect(e, 0, "220 ");
	say(e, 0, "NOOP\r\n");
	expect(e, 0, "250 2.0.0 Ok\r\n");
	expect(e, 0, "421 4.4.2 h.example Timeout\r\n");
	expect_eof(e, 0);
	shutdown_now(e);
	assert_int_equal(wait_exit(e), 0);
}

static void
test_main_tcp_peer(void **state)
{
	struct e2e *e = *state;
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t len = sizeof(sin);
	int l, c, a;

	start(e);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(l >= 0);
	assert_int_equal(bind(l, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(l, 1), 0);
	assert_int_equal(getsockname(l, (struct sockaddr *)&sin, &len), 0);
	c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(connect(c, (struct sockaddr *)&sin, sizeof(sin)), 0);
	a = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	assert_true(a >= 0);
	close(l);
	e->cli[0] = c;
	send_client(e, 0, a);
	say(e, 0, "LHLO me\r\nMAIL FROM:<s@x>\r\nRCPT TO:<a@x>\r\nBDAT 3 LAST\r\nab\n");
	expect(e, 0, "250 2.0.0 <a@x> ");
	assert_non_null(strstr(e->prefix, "Received: from me ([127.0.0.1])\n"));
	assert_string_equal(e->body, "ab\n");
	shutdown_now(e);
	expect(e, 0, "421 4.3.2 ");
	assert_int_equal(wait_exit(e), 0);
}

/* Enough delivery requests at once to fill the socket buffer: the rest
 * waits in the outgoing queue, replies still come in RCPT order. */
static void
test_main_many_recipients_queue(void **state)
{
	struct e2e *e = *state;
	static char cmds[400 * 32];
	char want[64];
	size_t len = 0;
	int i, n = 400;

	e->set.lmtp_max_recipients = 1000;
	start(e);
	connect_unix(e, 0);
	len += (size_t)snprintf(cmds + len, sizeof(cmds) - len, "LHLO me\r\nMAIL FROM:<>\r\n");
	for (i = 0; i < n; i++)
		len += (size_t)snprintf(cmds + len, sizeof(cmds) - len, "RCPT TO:<r%d@x>\r\n", i);
	say(e, 0, cmds);
	for (i = 0; i < n; i++) {
		snprintf(want, sizeof(want), "250 2.1.5 Ok\r\n");
		expect(e, 0, want);
	}
	say(e, 0, "DATA\r\nhello\r\n.\r\n");
	for (i = 0; i < n; i++) {
		snprintf(want, sizeof(want), "250 2.0.0 <r%d@x> ", i);
		expect(e, 0, want);
	}
	assert_int_equal(e->n_dlv, n);
	shutdown_now(e);
	assert_int_equal(wait_exit(e), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_main_transaction_and_shutdown,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_main_sandboxed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_main_graceful_shutdown, setup, teardown),
		cmocka_unit_test_setup_teardown(test_main_exits_on_ipc_eof, setup, teardown),
		cmocka_unit_test_setup_teardown(test_main_exits_on_garbage, setup, teardown),
		cmocka_unit_test_setup_teardown(test_main_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_main_tcp_peer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_main_many_recipients_queue,
						setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
