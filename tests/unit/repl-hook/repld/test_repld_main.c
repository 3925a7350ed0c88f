/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/repl-hook/repld/test_repld_main.c - repld_main end to end: a forked
 * replication front-end, under the REPLD seccomp profile, talks over a
 * real SOCK_SEQPACKET link to this test, which plays the supervisor
 * (HELLO, CLIENT_FD, REPL_REQ -> REPL_REP with data memfds and message
 * files, SHUTDOWN) and the replication clients: AF_UNIX socketpairs and
 * TCP connections with mutual TLS (certificates made with the openssl
 * command) or without it (refused without a greeting).
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
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/ssl.h>

#include "repl-hook/repld/repld.h"
#include "policy/policy.h"
#include "privsep/privsep.h"
#include "privsep/tls.h"
#include "tests/unit/common/frontend.h"

#define GUID "0190f3a2b4c8d2a1e5f6a7b8c9d0e1f2"

struct e2e {
	struct policy_settings set;
	struct repld_args args;
	char dir[64];
	pid_t pid;
	int sup;
	bool sup_eof;
	struct psep_msg req[8];
	size_t n_req;
};

static char certdir[64];

/* Serve the link for up to ms: keep REPL_REQs, drop logs. */
static void
pump(struct e2e *e, int ms)
{
	struct pollfd p = { .fd = e->sup, .events = POLLIN };
	struct psep_msg *m;
	const char *why = NULL;

	if (e->sup_eof || poll(&p, 1, ms) <= 0)
		return;
	assert_true(e->n_req < 8);
	m = &e->req[e->n_req];
	if (psep_msg_recv(e->sup, PSEP_ROLE_REPLD, PSEP_STATE_READY, m, &why) == -1) {
		if (errno == EAGAIN)
			return;
		assert_int_equal(errno, ECONNRESET);
		e->sup_eof = true;
		return;
	}
	if (m->hdr.type == PSEP_LOG) {
		fprintf(stderr, "# repld: %.*s\n", (int)m->u.log.text_len, m->u.log.text);
		psep_msg_clear(m);
		return;
	}
	assert_int_equal(m->hdr.type, PSEP_REPL_REQ);
	e->n_req++;
}

static void
wait_req(struct e2e *e, size_t n)
{
	int64_t end = lt_now_ms() + 5000;

	while (e->n_req < n && lt_now_ms() < end)
		pump(e, 20);
	assert_int_equal(e->n_req, n);
}

static void
reply(struct e2e *e, size_t i, const struct psep_repl_rep *rep, int fd)
{
	assert_int_equal(psep_msg_send(e->sup, PSEP_REPL_REP, e->req[i].hdr.id, rep,
				       sizeof(*rep), fd), 0);
	if (fd >= 0)
		close(fd);
}

/* Read from fd (served meanwhile) until text arrived; fail otherwise. */
static void
expect_fd(struct e2e *e, int fd, const char *text)
{
	char buf[4096];
	size_t len = 0, want = strlen(text);
	int64_t end = lt_now_ms() + 5000;
	struct pollfd p = { .fd = fd, .events = POLLIN };
	ssize_t n;

	while (len < want && lt_now_ms() < end) {
		pump(e, 0);
		if (poll(&p, 1, 20) <= 0)
			continue;
		n = read(fd, buf + len, want - len);
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	if (len != want || memcmp(buf, text, want) != 0)
		fail_msg("expected \"%s\", got \"%s\"", text, buf);
}

static void
say(int fd, const char *text)
{
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
}

static int
memfd_with(const char *data)
{
	int fd = memfd_create("t", MFD_CLOEXEC | MFD_ALLOW_SEALING);

	assert_int_equal(write(fd, data, strlen(data)), (ssize_t)strlen(data));
	assert_int_equal(fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW |
			       F_SEAL_WRITE | F_SEAL_SEAL), 0);
	return fd;
}

static void
send_client(struct e2e *e, int fd, const char *listener)
{
	struct psep_client_fd c;

	memset(&c, 0, sizeof(c));
	strcpy(c.listener, listener);
	assert_int_equal(psep_msg_send(e->sup, PSEP_CLIENT_FD, 0, &c, sizeof(c), fd), 0);
	close(fd);
}

static int
unix_client(struct e2e *e)
{
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	send_client(e, sv[1], "unix:/run/test-repl");
	return sv[0];
}

/* A TCP connection to ourselves; the accepted end goes to repld. */
static int
tcp_client(struct e2e *e)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);
	int l, c, a;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(l >= 0);
	assert_int_equal(bind(l, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(l, 1), 0);
	assert_int_equal(getsockname(l, (struct sockaddr *)&sa, &len), 0);
	c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(connect(c, (struct sockaddr *)&sa, sizeof(sa)), 0);
	a = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	assert_true(a >= 0);
	close(l);
	send_client(e, a, "tcp:127.0.0.1:0");
	return c;
}

static const char greeting[] =
	"* OK STOWD-REPL 1 b.example MAXLINE=8192 MAXLITERAL=1065536 "
	"MAXINFLIGHT=64 stowd ready\r\n";

/* Child body: the replication front-end under its seccomp profile. */
static int
repld_child(void *arg, int ipc)
{
	struct e2e *e = arg;

	psep_sandbox_apply(PSEP_PROFILE_REPLD);
	return repld_main(&e->args, ipc);
}

static void
start(struct e2e *e)
{
	lt_spawn(PSEP_ROLE_REPLD, repld_child, e, &e->pid, &e->sup);
}

/* One round of pump for lt_wait_exit. */
static void
serve(void *ctx)
{
	pump(ctx, 20);
}

/* The child's exit status (or 128 + signal). */
static int
wait_exit(struct e2e *e)
{
	return lt_wait_exit(&e->pid, "repld", serve, e);
}

/* The replication TLS files of s, named as the supervisor names them. */
static struct psep_tls_files
tls_files(const struct policy_settings *s)
{
	struct psep_tls_files f = {
		.cert = s->replication_tls_cert,
		.key = s->replication_tls_key,
		.ca = s->replication_tls_ca,
		.cert_name = "replication_tls_cert",
		.key_name = "replication_tls_key",
		.ca_name = "replication_tls_ca",
	};

	return f;
}

static void
settings_for(struct policy_settings *s, const char *id)
{
	static char paths[2][3][128];
	int k = strcmp(id, "a.example") == 0 ? 0 : 1;

	snprintf(paths[k][0], sizeof(paths[k][0]), "%s/%s.pem", certdir, id);
	snprintf(paths[k][1], sizeof(paths[k][1]), "%s/%s.key", certdir, id);
	snprintf(paths[k][2], sizeof(paths[k][2]), "%s/ca.pem", certdir);
	memset(s, 0, sizeof(*s));
	s->server_id = (char *)id;
	s->hostname = (char *)id;
	s->lmtp_max_message_size = 1000000;
	s->lmtp_command_timeout = 60000;
	s->writer_timeout = 60000;
	s->log_debug = true;
	s->n_repl_unix_uids = 1;
	s->repl_unix_uids[0] = getuid();
	s->replication_tls_cert = paths[k][0];
	s->replication_tls_key = paths[k][1];
	s->replication_tls_ca = paths[k][2];
}

static int
group_setup(void **state)
{
	char cmd[2048];

	(void)state;
	/* As the supervisor does before it forks: glibc reads the time zone
	 * on the first gmtime_r (X509 time checks), and openat is not on
	 * repld's seccomp list; and OpenSSL reads its config file once. */
	psep_tls_preinit();
	strcpy(certdir, "/tmp/repld-certs-XXXXXX");
	if (mkdtemp(certdir) == NULL)
		return -1;
	snprintf(cmd, sizeof(cmd),
		 "cd %s && exec >/dev/null 2>&1 && "
		 "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
		 "-keyout ca.key -out ca.pem -days 2 -subj /CN=test-ca && "
		 "for id in a.example b.example; do "
		 "openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
		 "-keyout $id.key -out $id.csr -subj /CN=$id && "
		 "printf 'subjectAltName=DNS:%%s,IP:127.0.0.1\\nextendedKeyUsage=serverAuth,clientAuth\\n' $id > $id.ext && "
		 "openssl x509 -req -in $id.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
		 "-days 2 -out $id.pem -extfile $id.ext || exit 1; done", certdir);
	return system(cmd) == 0 ? 0 : -1;
}

static int
group_teardown(void **state)
{
	char cmd[256];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", certdir);
	return system(cmd) == 0 ? 0 : -1;
}

static int
setup(void **state)
{
	struct e2e *e = calloc(1, sizeof(*e));
	struct psep_tls_files files;
	char err[256];

	assert_non_null(e);
	settings_for(&e->set, "b.example");
	e->args.set = &e->set;
	files = tls_files(&e->set);
	/* As the supervisor does: the files are opened here, the context is
	 * built in repld, after its drop, under its seccomp profile. */
	if (psep_tls_open(&files, &e->args.tls_fds, err, sizeof(err)) < 0)
		fail_msg("TLS files: %s", err);
	e->pid = -1;
	start(e);
	*state = e;
	return 0;
}

static int
teardown(void **state)
{
	struct e2e *e = *state;
	size_t i;

	if (e->pid > 0) {
		int st = 0;

		if (waitpid(e->pid, &st, WNOHANG) == e->pid)
			fprintf(stderr, "# repld had ended: %s %d\n",
				WIFSIGNALED(st) ? "signal" : "exit",
				WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
		else
			kill(e->pid, SIGKILL);
		waitpid(e->pid, NULL, 0);
	}
	for (i = 0; i < e->n_req; i++)
		psep_msg_clear(&e->req[i]);
	close(e->sup);
	psep_tls_close(&e->args.tls_fds);
	free(e);
	return 0;
}

static void
test_unix_save_list_fetch_shutdown(void **state)
{
	struct e2e *e = *state;
	struct psep_repl_rep rep;
	char body[8] = "";
	int c = unix_client(e);

	expect_fd(e, c, greeting);
	say(c, "h1 HELLO 1 a.example\r\n");
	expect_fd(e, c, "h1 OK hello a.example\r\n");
	say(c, "a2 SAVE a.example 17 alice INBOX " GUID " 42 1718000000 (\\Seen) {5}\r\n"
	       "hello\r\n");
	wait_req(e, 1);
	assert_int_equal(e->req[0].u.repl_req.cmd.op, PSEP_REPL_SAVE);
	assert_string_equal(e->req[0].u.repl_req.cmd.peer, "a.example");
	assert_int_equal(pread(e->req[0].fd, body, 5, 0), 5);
	assert_string_equal(body, "hello");
	memset(&rep, 0, sizeof(rep));
	rep.status = PSEP_RS_OK;
	rep.effective = 1;
	rep.uid = 42;
	strcpy(rep.code, "UID 42");
	strcpy(rep.text, "saved");
	reply(e, 0, &rep, -1);
	expect_fd(e, c, "a2 OK [UID 42] saved\r\n");

	say(c, "s1 LIST alice\r\n");
	wait_req(e, 2);
	memset(&rep, 0, sizeof(rep));
	strcpy(rep.text, "listed");
	rep.size = strlen("MAILBOX INBOX MESSAGES 1\n");
	reply(e, 1, &rep, memfd_with("MAILBOX INBOX MESSAGES 1\n"));
	expect_fd(e, c, "* s1 MAILBOX INBOX MESSAGES 1\r\ns1 OK listed\r\n");

	say(c, "f1 FETCH alice INBOX " GUID "\r\n");
	wait_req(e, 3);
	memset(&rep, 0, sizeof(rep));
	rep.uid = 42;
	rep.date = 1718000000;
	rep.size = 5;
	strcpy(rep.flags, "\\Seen");
	strcpy(rep.text, "fetched");
	reply(e, 2, &rep, memfd_with("hello"));
	expect_fd(e, c, "* f1 FETCH " GUID " 42 1718000000 (\\Seen) {5}\r\nhello\r\n"
		  "f1 OK fetched\r\n");

	say(c, "g1 GUIDS alice INBOX\r\n");
	wait_req(e, 4);
	assert_int_equal(psep_msg_send(e->sup, PSEP_SHUTDOWN, 0, NULL, 0, -1), 0);
	memset(&rep, 0, sizeof(rep));
	rep.status = PSEP_RS_NO;
	strcpy(rep.code, "NONEXISTENT");
	strcpy(rep.text, "no such mailbox");
	reply(e, 3, &rep, -1);
	expect_fd(e, c, "g1 NO [NONEXISTENT] no such mailbox\r\n"
		  "* BYE [SHUTDOWN] server stopping\r\n");
	assert_int_equal(wait_exit(e), 0);
	close(c);
}

static void
test_unix_refused_uid(void **state)
{
	struct e2e *e = *state;
	int c;

	/* the settings were inherited at fork: restart with another list */
	e->set.repl_unix_uids[0] = getuid() + 4242;
	kill(e->pid, SIGKILL);
	waitpid(e->pid, NULL, 0);
	close(e->sup);
	start(e);
	c = unix_client(e);
	expect_fd(e, c, "* BYE [AUTHFAILED] peer uid not allowed\r\n");
	close(c);
}

static SSL *
tls_connect(int fd, const char *id, SSL_CTX **ctx_out)
{
	struct policy_settings s;
	struct psep_tls_files files;
	char err[256];
	SSL_CTX *ctx;
	SSL *ssl;

	settings_for(&s, id);
	files = tls_files(&s);
	ctx = psep_tls_client_ctx_new(&files, err, sizeof(err));
	if (ctx == NULL)
		fail_msg("client ctx: %s", err);
	ssl = SSL_new(ctx);
	assert_non_null(ssl);
	assert_int_equal(psep_tls_set_peer_name(ssl, "127.0.0.1"), 0);
	SSL_set_fd(ssl, fd);
	*ctx_out = ctx;
	return ssl;
}

static void
test_tls_mutual_hello(void **state)
{
	struct e2e *e = *state;
	char buf[512];
	SSL_CTX *ctx;
	SSL *ssl;
	int c = tcp_client(e), n;
	size_t len = 0;

	ssl = tls_connect(c, "a.example", &ctx);
	if (SSL_connect(ssl) != 1)
		fail_msg("TLS handshake failed");
	while (len < strlen(greeting) &&
	       (n = SSL_read(ssl, buf + len, (int)(sizeof(buf) - 1 - len))) > 0)
		len += (size_t)n;
	buf[len] = '\0';
	assert_string_equal(buf, greeting);
	assert_int_equal(SSL_write(ssl, "h1 HELLO 1 b.example\r\n", 22), 22);
	len = 0;
	while (len < 34 && (n = SSL_read(ssl, buf + len, (int)(sizeof(buf) - 1 - len))) > 0)
		len += (size_t)n;
	buf[len] = '\0';
	/* own id over TCP: connected to itself */
	assert_string_equal(buf, "h1 NO [SELF] connected to itself\r\n");
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	close(c);
}

/* One line from ssl (up to CRLF) into buf. */
static void
ssl_line(SSL *ssl, char *buf, size_t size)
{
	size_t len = 0;
	int n;

	while (len < size - 1 && (len == 0 || buf[len - 1] != '\n') &&
	       (n = SSL_read(ssl, buf + len, 1)) > 0)
		len++;
	buf[len] = '\0';
}

/* With the certificate of cert_id, HELLO as hello_id: the reply line. */
static void
tls_hello(struct e2e *e, const char *cert_id, const char *hello_id, char *reply,
	  size_t size)
{
	char line[128];
	SSL_CTX *ctx;
	SSL *ssl;
	int c = tcp_client(e);

	ssl = tls_connect(c, cert_id, &ctx);
	if (SSL_connect(ssl) != 1)
		fail_msg("TLS handshake failed");
	ssl_line(ssl, reply, size);
	assert_string_equal(reply, greeting);
	snprintf(line, sizeof(line), "h1 HELLO 1 %s\r\n", hello_id);
	assert_int_equal(SSL_write(ssl, line, (int)strlen(line)), (int)strlen(line));
	ssl_line(ssl, reply, size);
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	close(c);
}

/* Any CA-signed certificate gets through the handshake; HELLO binds the
 * claimed server id to the names in that certificate. */
static void
test_tls_hello_claims_only_the_certificate_name(void **state)
{
	struct e2e *e = *state;
	char reply[256];

	tls_hello(e, "a.example", "c.example", reply, sizeof(reply));
	assert_string_equal(reply,
		"h1 NO [AUTHFAILED] certificate does not name this server id\r\n");
	tls_hello(e, "a.example", "a.example", reply, sizeof(reply));
	assert_string_equal(reply, "h1 OK hello a.example\r\n");
}

/* Stop repld (SIGKILL) and forget its link, for a start with new settings. */
static void
restart_killed(struct e2e *e)
{
	kill(e->pid, SIGKILL);
	(void)wait_exit(e);
	close(e->sup);
	e->sup = -1;
	e->sup_eof = false;
}

/* replication_peers: a listed id only, even if the certificate names it. */
static void
test_tls_hello_outside_replication_peers_is_refused(void **state)
{
	struct e2e *e = *state;
	char reply[256];

	restart_killed(e);
	e->set.replication_peers = (char *)"x.example b.example";
	start(e);
	tls_hello(e, "a.example", "a.example", reply, sizeof(reply));
	assert_string_equal(reply,
		"h1 NO [AUTHFAILED] server id not in replication_peers\r\n");
	e->set.replication_peers = (char *)"x.example  a.example";
	restart_killed(e);
	start(e);
	tls_hello(e, "a.example", "a.example", reply, sizeof(reply));
	assert_string_equal(reply, "h1 OK hello a.example\r\n");
}

static void
test_tls_without_client_cert_gets_no_greeting(void **state)
{
	struct e2e *e = *state;
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	char buf[256];
	SSL *ssl;
	int c = tcp_client(e), n, len = 0;

	assert_non_null(ctx);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	ssl = SSL_new(ctx);
	SSL_set_fd(ssl, c);
	/* TLS 1.3: the client may finish before the server refuses */
	if (SSL_connect(ssl) == 1)
		while ((n = SSL_read(ssl, buf + len, (int)sizeof(buf) - 1 - len)) > 0)
			len += n;
	buf[len] = '\0';
	assert_null(strstr(buf, "* OK"));
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	close(c);
	c = unix_client(e);
	expect_fd(e, c, greeting);
	close(c);
}

static void
test_tcp_without_tls_gets_no_greeting(void **state)
{
	struct e2e *e = *state;
	char buf[256];
	size_t len = 0;
	ssize_t n;
	int c = tcp_client(e);

	say(c, "h1 HELLO 1 a.example\r\n");
	while (len < sizeof(buf) - 1 && (n = read(c, buf + len, sizeof(buf) - 1 - len)) > 0)
		len += (size_t)n;
	buf[len] = '\0';
	assert_null(strstr(buf, "* OK"));
	close(c);
	/* repld is still serving */
	c = unix_client(e);
	expect_fd(e, c, greeting);
	close(c);
}

static void
test_supervisor_eof_exits(void **state)
{
	struct e2e *e = *state;
	int c = unix_client(e);

	expect_fd(e, c, greeting);
	shutdown(e->sup, SHUT_RDWR);
	assert_int_equal(wait_exit(e), 0);
	close(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_unix_save_list_fetch_shutdown, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unix_refused_uid, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tls_mutual_hello, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tls_without_client_cert_gets_no_greeting,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_tcp_without_tls_gets_no_greeting,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_tls_hello_claims_only_the_certificate_name,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_tls_hello_outside_replication_peers_is_refused,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_supervisor_eof_exits, setup, teardown),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
