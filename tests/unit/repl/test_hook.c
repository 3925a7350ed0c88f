/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/repl/test_hook.c - the repl-hook core end to end in one
 * process tree: the test plays the supervisor (HELLO, EVENT_REQ, USERS_REQ,
 * SHUTDOWN over a SEQPACKET pair) and a replica (a TLS server thread with
 * a throw-away certificate that answers every command OK, one temporary
 * NO, and leaves one command unanswered); repl_hook_main runs in a forked
 * child.  Checks: ACKED after the replica's OK, the SAVE literal (prefix +
 * body) on the wire, JOURNALED for want_acks 0, a temporary NO resent on a
 * new connection, TIMEOUT, the journal truncated once drained, the
 * replica's server id recorded, exit 0 on SHUTDOWN.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/evp.h>
#include "policy/policy.h"
#include "privsep/privsep.h"
#include "repl-hook/hook_int.h"

static int lsock;
static SSL_CTX *sctx;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static char seen[65536];
static int temp_no_once = 0;

static void add_seen(const char *s) { pthread_mutex_lock(&mu); strncat(seen, s, sizeof(seen) - strlen(seen) - 1); pthread_mutex_unlock(&mu); }

static int rdline(SSL *ssl, char *buf, size_t n) {
	size_t i = 0; char c;
	while (i + 1 < n) { if (SSL_read(ssl, &c, 1) != 1) return -1; buf[i++] = c; if (c == '\n') break; }
	buf[i] = 0; return (int)i;
}
static void *replica(void *arg) {
	(void)arg;
	for (int conn = 0; conn < 3; conn++) {
		int fd = accept(lsock, NULL, NULL);
		if (fd < 0) return NULL;
		SSL *ssl = SSL_new(sctx); SSL_set_fd(ssl, fd);
		if (SSL_accept(ssl) != 1) { fprintf(stderr, "replica: accept failed\n"); close(fd); continue; }
		const char *g = "* OK STOWD-REPL 1 b.example MAXLINE=8192 MAXLITERAL=2000000 MAXINFLIGHT=64 ready\r\n";
		SSL_write(ssl, g, strlen(g));
		char line[9000], tag[64], out[256];
		while (rdline(ssl, line, sizeof(line)) > 0) {
			char rec[9100]; snprintf(rec, sizeof(rec), "C%d: %s", conn, line); add_seen(rec);
			sscanf(line, "%63s", tag);
			char *lb = strrchr(line, '{');
			if (lb && strstr(line, "}\r\n")) {
				long n = atol(lb + 1); char *b = malloc(n + 3); long got = 0;
				while (got < n + 2) { int r = SSL_read(ssl, b + got, n + 2 - got); if (r <= 0) break; got += r; }
				b[n + 2] = 0; add_seen("LIT:"); add_seen(b); free(b);
			}
			if (strstr(line, " LOGOUT")) break;
			if (strstr(line, "noreply"))
				continue;
			if (strstr(line, "STORE") && strstr(line, "tempfail") && temp_no_once == 0) {
				temp_no_once = 1;
				snprintf(out, sizeof(out), "%s NO [UNAVAILABLE] try later\r\n", tag);
				SSL_write(ssl, out, strlen(out)); break;
			}
			snprintf(out, sizeof(out), "%s OK done\r\n", tag);
			SSL_write(ssl, out, strlen(out));
		}
		SSL_shutdown(ssl); SSL_free(ssl); close(fd);
	}
	return NULL;
}

static void mkcert(void) {
	EVP_PKEY *k = EVP_EC_gen("P-256");
	X509 *x = X509_new(); ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), 0); X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, k);
	X509_NAME *nm = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC, (const unsigned char *)"b", -1, -1, 0);
	X509_set_issuer_name(x, nm); X509_sign(x, k, EVP_sha256());
	sctx = SSL_CTX_new(TLS_server_method()); SSL_CTX_use_certificate(sctx, x); SSL_CTX_use_PrivateKey(sctx, k);
	X509_free(x);
	EVP_PKEY_free(k);
}

static int sup;
static struct psep_msg m;
static int recv_msg(int timeout_ms) {
	const char *why;
	for (;;) {
		struct pollfd p = { sup, POLLIN, 0 };
		if (poll(&p, 1, timeout_ms) <= 0) return -1;
		if (psep_msg_recv(sup, PSEP_ROLE_REPL_HOOK, PSEP_STATE_READY, &m, &why) == -1) { fprintf(stderr, "recv: %s\n", why ? why : strerror(errno)); return -1; }
		if (m.hdr.type == PSEP_LOG) { fprintf(stderr, "  hook: %.*s\n", (int)m.u.log.text_len, m.u.log.text); psep_msg_clear(&m); continue; }
		if (m.hdr.type == PSEP_USERS_REQ) { struct psep_users_rep r = {0}; int fd = memfd_create("u", MFD_CLOEXEC|MFD_ALLOW_SEALING); fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK|F_SEAL_GROW|F_SEAL_WRITE|F_SEAL_SEAL); psep_msg_send(sup, PSEP_USERS_REP, m.hdr.id, &r, sizeof(r), fd); close(fd); psep_msg_clear(&m); continue; }
		if (m.hdr.type == PSEP_REPL_REQ) { struct psep_repl_rep r = {0}; r.status = PSEP_RS_NO; strcpy(r.code, "NONEXISTENT"); psep_msg_send(sup, PSEP_REPL_REP, m.hdr.id, &r, sizeof(r), -1); psep_msg_clear(&m); continue; }
		return 0;
	}
}

static void send_event(uint64_t id, int op, const char *flags, const char *body, uint32_t want, uint64_t tmo) {
	static union { struct psep_event_req e; unsigned char raw[PSEP_MSG_MAX]; } u;
	memset(&u, 0, sizeof(u));
	u.e.cmd.op = op; u.e.cmd.modseq = 5; u.e.cmd.date = 1718000000;
	strcpy(u.e.cmd.origin, "a.example"); strcpy(u.e.cmd.user, "alice"); strcpy(u.e.cmd.mailbox, "INBOX");
	strcpy(u.e.cmd.guid, "0190f3a2b4c8d2a1e5f6a7b8c9d0e1f2"); strcpy(u.e.cmd.flags, flags);
	u.e.want_acks = want; u.e.timeout_ms = tmo;
	int fd = -1; size_t len = sizeof(u.e);
	if (body) { fd = memfd_create("b", MFD_CLOEXEC | MFD_ALLOW_SEALING); assert_int_equal(write(fd, body, strlen(body)), (ssize_t)strlen(body)); if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK|F_SEAL_GROW|F_SEAL_WRITE|F_SEAL_SEAL) == -1) perror("seal"); u.e.cmd.body_size = strlen(body); u.e.cmd.uid_hint = 7; memcpy(u.e.prefix, "X-P: 1\r\n", 8); u.e.prefix_len = 8; len += 8; }
	if (psep_msg_send(sup, PSEP_EVENT_REQ, id, &u, len, fd) == -1) perror("send event");
	if (fd >= 0) close(fd);
}

static int expect_rep(uint64_t id, uint32_t st) {
	if (recv_msg(10000) == -1) { fprintf(stderr, "FAIL no reply for %llu\n", (unsigned long long)id); return 1; }
	if (m.hdr.type != PSEP_EVENT_REP || m.hdr.id != id || m.u.event_rep.status != st) {
		fprintf(stderr, "FAIL id=%llu type=%u status=%u acks=%u want %u\n", (unsigned long long)m.hdr.id, m.hdr.type, m.u.event_rep.status, m.u.event_rep.acks, st); return 1; }
	fprintf(stderr, "ok id=%llu status=%u acks=%u\n", (unsigned long long)id, st, m.u.event_rep.acks);
	return 0;
}

static void
test_hook_events_end_to_end(void **state)
{
	(void)state;
	signal(SIGPIPE, SIG_IGN);
	mkcert();
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);
	lsock = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(bind(lsock, (void *)&a, sizeof(a)), 0);
	assert_int_equal(listen(lsock, 4), 0);
	assert_int_equal(getsockname(lsock, (void *)&a, &al), 0);
	char dir[] = "/tmp/stowd-hook-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char rd[128];
	snprintf(rd, sizeof(rd), "%s/replication", dir);
	assert_int_equal(mkdir(rd, 0700), 0);
	static struct policy_settings set;
	set.server_id = "a.example"; set.hostname = "a"; set.state_dir = dir;
	set.replication_journal_max_size = 1 << 20; set.replication_sync_timeout = 2000;
	set.lmtp_max_message_size = 1 << 20;
	set.n_replicas = 1; strcpy(set.replicas[0].name, "r1");
	strcpy(set.replicas[0].host, "127.0.0.1"); set.replicas[0].port = ntohs(a.sin_port);
	SSL_CTX *cctx = SSL_CTX_new(TLS_client_method());
	struct hook_args args = { .set = &set, .tls_client_ctx = cctx,
				  .state_dirfd = open(rd, O_RDONLY | O_DIRECTORY | O_CLOEXEC) };
	assert_true(args.state_dirfd >= 0);
	int sp[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp), 0);
	pid_t pid = fork();
	if (pid == 0) { close(sp[0]); close(lsock); _exit(repl_hook_main(&args, sp[1])); }
	close(sp[1]); sup = sp[0];
	pthread_t t;
	pthread_create(&t, NULL, replica, NULL);
	const char *why;
	assert_int_equal(psep_msg_recv(sup, PSEP_ROLE_REPL_HOOK, PSEP_STATE_NEW, &m, &why), 0);
	assert_int_equal(m.hdr.type, PSEP_HELLO_REQ);
	struct psep_hello h = { .version = PSEP_PROTO_VERSION, .role = PSEP_ROLE_SUPERVISOR };
	assert_int_equal(psep_msg_send(sup, PSEP_HELLO_REP, m.hdr.id, &h, sizeof(h), -1), 0);

	send_event(100, PSEP_REPL_STORE, "+\\Seen", NULL, 1, 5000);
	assert_int_equal(expect_rep(100, PSEP_EV_ACKED), 0);
	send_event(101, PSEP_REPL_SAVE, "\\Seen", "Subject: hi\r\n\r\nbody\r\n", 1, 5000);
	assert_int_equal(expect_rep(101, PSEP_EV_ACKED), 0);
	send_event(102, PSEP_REPL_STORE, "+\\Flagged", NULL, 0, 0);
	assert_int_equal(expect_rep(102, PSEP_EV_JOURNALED), 0);
	/* temporary NO: the connection is closed, the entry resent on the
	 * next one (after the 1 s backoff), then acknowledged */
	send_event(103, PSEP_REPL_STORE, "+tempfail", NULL, 1, 10000);
	assert_int_equal(expect_rep(103, PSEP_EV_ACKED), 0);
	/* no reply at all: TIMEOUT after timeout_ms, the entry stays */
	send_event(104, PSEP_REPL_STORE, "+noreply", NULL, 1, 300);
	assert_int_equal(expect_rep(104, PSEP_EV_TIMEOUT), 0);

	struct stat sb;
	char jp[160];
	snprintf(jp, sizeof(jp), "%s/r1.journal", rd);
	assert_int_equal(stat(jp, &sb), 0);
	assert_true(sb.st_size > 0);               /* 104 is not acknowledged */

	assert_int_equal(psep_msg_send(sup, PSEP_SHUTDOWN, 999, NULL, 0, -1), 0);
	while (recv_msg(5000) == 0)
		psep_msg_clear(&m);
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);

	pthread_mutex_lock(&mu);
	assert_non_null(strstr(seen, "C0: h1 HELLO 1 a.example\r\n"));
	assert_non_null(strstr(seen, "C0: j2 SAVE a.example 5 alice INBOX "
			       "0190f3a2b4c8d2a1e5f6a7b8c9d0e1f2 7 1718000000 (\\Seen) {29}\r\n"
			       "LIT:X-P: 1\r\nSubject: hi\r\n\r\nbody\r\n\r\n"));
	assert_non_null(strstr(seen, "C0: j4 STORE"));
	assert_non_null(strstr(seen, "C1: j4 STORE"));   /* resent */
	assert_non_null(strstr(seen, "C1: j5 STORE"));
	pthread_mutex_unlock(&mu);

	char idp[160], idbuf[64] = "";
	snprintf(idp, sizeof(idp), "%s/r1.id", rd);
	int fd = open(idp, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_true(read(fd, idbuf, sizeof(idbuf) - 1) > 0);
	close(fd);
	assert_string_equal(idbuf, "b.example\n");

	shutdown(lsock, SHUT_RDWR);
	close(lsock);
	pthread_join(t, NULL);
	SSL_CTX_free(cctx);
	SSL_CTX_free(sctx);
	/* leave no files behind */
	const char *names[] = { "r1.journal", "r1.acked", "r1.id", "r1.dirty" };
	for (size_t i = 0; i < 4; i++)
		(void)unlinkat(AT_FDCWD, (snprintf(jp, sizeof(jp), "%s/%s", rd, names[i]), jp), 0);
	rmdir(rd);
	rmdir(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hook_events_end_to_end),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
