/* SPDX-License-Identifier: MIT */
/*
 * tests/integration/test_starttls.c - STARTTLS on LMTP (RFC 3207 with
 * RFC 2033) driven by an OpenSSL client in C: offered on tcp: listeners
 * only, a whole delivery under TLS (1.2 or later), the session state
 * reset by the handshake, a command pipelined after STARTTLS refused (no
 * command injection across the handshake), lmtp_tls = required (530
 * 5.7.0 before it), and lmtp_allow_networks.
 *
 * Runs in:  the integration suite, as root, one stowd for the program.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include "tests/integration/itest.h"
#include "tests/lib/certs.h"

#define NUSERS 2
#define IO_TIMEOUT_MS 10000

static struct harness *H;
static struct certs C;
static char cert_path[192], key_path[192];

/* A client on the tcp: listener, plain or TLS after STARTTLS. */
struct tc {
	int fd;
	SSL_CTX *ctx;
	SSL *ssl;
};

static int
write_conf(const char *tls, const char *nets)
{
	char l1[256], l2[256], l3[256], l4[256];
	const char *conf[] = { l1, l2, l3, l4, NULL };
	struct harness_opts o = { .nusers = NUSERS, .conf = conf };

	snprintf(l1, sizeof(l1), "lmtp_tls = %s", tls);
	snprintf(l2, sizeof(l2), "lmtp_tls_cert = %s", cert_path);
	snprintf(l3, sizeof(l3), "lmtp_tls_key = %s", key_path);
	snprintf(l4, sizeof(l4), "lmtp_allow_networks = %s", nets);
	return harness_write_conf(H, &o);
}

static int
group_setup(void **state)
{
	static const char *const ids[] = { "lmtp.test" };
	struct harness_opts o = { .nusers = NUSERS };

	(void)state;
	harness_require_root();
	if (certs_make(&C, ids, 1) < 0)
		return -1;
	certs_cert_path(&C, "lmtp.test", cert_path, sizeof(cert_path));
	certs_key_path(&C, "lmtp.test", key_path, sizeof(key_path));
	H = harness_new(&o);
	if (H == NULL || write_conf("optional", "") < 0 || harness_start(H) < 0)
		return -1;
	itest_use(&H);
	return 0;
}

/* lmtpd's log lines reach stowd.log through the supervisor, a little
 * after the client saw the reply: a bounded poll. */
static bool
log_soon(const char *text)
{
	int64_t end = harness_mono_ms() + 5000;

	while (!harness_log_contains(H, text)) {
		if (harness_mono_ms() > end)
			return false;
		harness_sleep_ms(10);
	}
	return true;
}

static int
group_teardown(void **state)
{
	int r = itest_group_teardown(state);

	certs_remove(&C);
	return r;
}

/* 127.0.0.1:port of the tcp: listener. */
static int
tc_connect(struct tc *t)
{
	const char *a = H->listen[HARNESS_TCP4];
	struct sockaddr_in sin = { .sin_family = AF_INET };

	memset(t, 0, sizeof(*t));
	assert_true(strncmp(a, "tcp:127.0.0.1:", 14) == 0);
	sin.sin_port = htons((uint16_t)atoi(a + 14));
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	t->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(t->fd >= 0);
	return connect(t->fd, (struct sockaddr *)&sin, sizeof(sin));
}

static void
tc_close(struct tc *t)
{
	if (t->ssl != NULL)
		SSL_free(t->ssl);
	if (t->ctx != NULL)
		SSL_CTX_free(t->ctx);
	if (t->fd >= 0)
		close(t->fd);
	t->fd = -1;
	t->ssl = NULL;
	t->ctx = NULL;
}

static void
tc_send(struct tc *t, const char *text)
{
	size_t len = strlen(text);

	if (t->ssl != NULL)
		assert_int_equal(SSL_write(t->ssl, text, (int)len), (int)len);
	else
		assert_int_equal(send(t->fd, text, len, MSG_NOSIGNAL), (ssize_t)len);
}

/* One byte, bounded wait; 0 at EOF, -1 on error or timeout. */
static int
tc_getc(struct tc *t, char *c)
{
	struct pollfd p = { .fd = t->fd, .events = POLLIN };

	if (t->ssl != NULL && SSL_pending(t->ssl) > 0)
		return SSL_read(t->ssl, c, 1) == 1 ? 1 : -1;
	if (poll(&p, 1, IO_TIMEOUT_MS) != 1)
		return -1;
	if (t->ssl != NULL) {
		int n = SSL_read(t->ssl, c, 1);

		return n == 1 ? 1 : n == 0 ? 0 : -1;
	}
	return (int)recv(t->fd, c, 1, 0);
}

/* One reply (multi-line joined by '\n') into buf; its code, 0 at EOF. */
static int
tc_reply(struct tc *t, char *buf, size_t size)
{
	size_t n = 0, start;
	char c;

	buf[0] = '\0';
	for (;;) {
		start = n;
		for (;;) {
			int r = tc_getc(t, &c);

			if (r <= 0)
				return 0;
			if (c == '\n')
				break;
			if (c != '\r' && n + 2 < size)
				buf[n++] = c;
		}
		buf[n] = '\0';
		if (n - start < 4 || buf[start + 3] != '-')
			return atoi(buf + start);
		buf[n++] = '\n';
	}
}

static void
tc_cmd(struct tc *t, int code, char *buf, size_t size, const char *cmd)
{
	char line[512];
	int got;

	snprintf(line, sizeof(line), "%s\r\n", cmd);
	tc_send(t, line);
	got = tc_reply(t, buf, size);
	if (got != code)
		fail_msg("%s: expected %d, got \"%s\"", cmd, code, buf);
}

static void
tc_handshake(struct tc *t)
{
	t->ctx = SSL_CTX_new(TLS_client_method());
	assert_non_null(t->ctx);
	assert_int_equal(SSL_CTX_load_verify_locations(t->ctx, C.ca, NULL), 1);
	SSL_CTX_set_verify(t->ctx, SSL_VERIFY_PEER, NULL);
	t->ssl = SSL_new(t->ctx);
	assert_non_null(t->ssl);
	SSL_set_fd(t->ssl, t->fd);
	SSL_set_tlsext_host_name(t->ssl, "localhost");
	/* the test certificates name 127.0.0.1 and localhost */
	assert_int_equal(SSL_set1_host(t->ssl, "localhost"), 1);
	if (SSL_connect(t->ssl) != 1)
		fail_msg("TLS handshake failed");
	assert_true(SSL_version(t->ssl) >= TLS1_2_VERSION);
}

static void
test_starttls_offered_on_tcp_only_and_delivery_under_tls(void **state)
{
	struct lmtpc *u = itest_connect(H, HARNESS_UNIX);
	struct lmtpc_reply r;
	char buf[2048], guid[33];
	struct tc t;

	(void)state;
	itest_cmd(u, 250, &r, "LHLO client.example");
	assert_null(strstr(r.text, "STARTTLS"));
	itest_cmd(u, 502, NULL, "STARTTLS");
	lmtpc_free(&u);

	assert_int_equal(tc_connect(&t), 0);
	assert_int_equal(tc_reply(&t, buf, sizeof(buf)), 220);
	tc_cmd(&t, 250, buf, sizeof(buf), "LHLO client.example");
	assert_non_null(strstr(buf, "STARTTLS"));
	tc_cmd(&t, 250, buf, sizeof(buf), "MAIL FROM:<" ITEST_SENDER ">");
	tc_cmd(&t, 503, buf, sizeof(buf), "STARTTLS");   /* not in a transaction */
	tc_cmd(&t, 250, buf, sizeof(buf), "RSET");
	tc_cmd(&t, 220, buf, sizeof(buf), "STARTTLS");
	tc_handshake(&t);
	/* the state before TLS is gone: LHLO again; STARTTLS no longer offered */
	tc_cmd(&t, 503, buf, sizeof(buf), "MAIL FROM:<" ITEST_SENDER ">");
	tc_cmd(&t, 250, buf, sizeof(buf), "LHLO client.example");
	assert_null(strstr(buf, "STARTTLS"));
	tc_cmd(&t, 503, buf, sizeof(buf), "STARTTLS");
	tc_cmd(&t, 250, buf, sizeof(buf), "MAIL FROM:<" ITEST_SENDER ">");
	snprintf(buf, sizeof(buf), "RCPT TO:<%s>", H->users[0].addr);
	tc_cmd(&t, 250, buf, sizeof(buf), buf);
	tc_cmd(&t, 354, buf, sizeof(buf), "DATA");
	tc_send(&t, "Subject: tls\r\n\r\nover TLS\r\n.\r\n");
	assert_int_equal(tc_reply(&t, buf, sizeof(buf)), 250);
	assert_int_equal(harness_reply_guid(buf, guid), 0);
	assert_int_equal(harness_find_guid(H, 0, guid, NULL, 0), 0);
	tc_cmd(&t, 221, buf, sizeof(buf), "QUIT");
	tc_close(&t);
	assert_true(log_soon("TLS TLSv1."));
	itest_pass(H);
}

static void
test_command_pipelined_after_starttls_is_refused(void **state)
{
	char buf[1024];
	struct tc t;
	int before = itest_count_new(H, 1);

	(void)state;
	assert_int_equal(tc_connect(&t), 0);
	assert_int_equal(tc_reply(&t, buf, sizeof(buf)), 220);
	tc_cmd(&t, 250, buf, sizeof(buf), "LHLO client.example");
	/* an attacker on the path appends commands after the client's
	 * STARTTLS: they must not run as if sent under TLS */
	snprintf(buf, sizeof(buf), "STARTTLS\r\nMAIL FROM:<evil@example.net>\r\n"
		 "RCPT TO:<%s>\r\n", H->users[1].addr);
	tc_send(&t, buf);
	assert_int_equal(tc_reply(&t, buf, sizeof(buf)), 554);
	assert_int_equal(tc_reply(&t, buf, sizeof(buf)), 0);   /* closed */
	tc_close(&t);
	assert_int_equal(itest_count_new(H, 1), before);
	assert_true(log_soon("pipelined after STARTTLS"));
	itest_pass(H);
}

static void
test_required_refuses_commands_before_tls(void **state)
{
	struct lmtpc *u;
	char buf[1024];
	struct tc t;

	(void)state;
	assert_int_equal(write_conf("required", ""), 0);
	assert_int_equal(harness_reload(H), 0);
	assert_int_equal(tc_connect(&t), 0);
	assert_int_equal(tc_reply(&t, buf, sizeof(buf)), 220);
	tc_cmd(&t, 250, buf, sizeof(buf), "LHLO client.example");
	tc_cmd(&t, 530, buf, sizeof(buf), "MAIL FROM:<" ITEST_SENDER ">");
	assert_non_null(strstr(buf, "5.7.0"));
	tc_cmd(&t, 530, buf, sizeof(buf), "VRFY u1");
	tc_cmd(&t, 250, buf, sizeof(buf), "NOOP");
	tc_cmd(&t, 220, buf, sizeof(buf), "STARTTLS");
	tc_handshake(&t);
	tc_cmd(&t, 250, buf, sizeof(buf), "LHLO client.example");
	tc_cmd(&t, 250, buf, sizeof(buf), "MAIL FROM:<" ITEST_SENDER ">");
	tc_cmd(&t, 221, buf, sizeof(buf), "QUIT");
	tc_close(&t);
	/* the unix listener is local: no TLS there */
	u = itest_connect(H, HARNESS_UNIX);
	itest_envelope(u);
	lmtpc_free(&u);
	itest_pass(H);
}

static void
test_allow_networks_on_tcp_listeners(void **state)
{
	struct lmtpc *u;
	char buf[256];
	struct tc t;

	(void)state;
	assert_int_equal(write_conf("optional", "10.0.0.0/8 2001:db8::/32"), 0);
	assert_int_equal(harness_reload(H), 0);
	assert_int_equal(tc_connect(&t), 0);
	assert_int_equal(tc_reply(&t, buf, sizeof(buf)), 0);   /* closed, no 220 */
	tc_close(&t);
	assert_true(harness_log_contains(H, "not in lmtp_allow_networks"));
	u = itest_connect(H, HARNESS_UNIX);                     /* unaffected */
	lmtpc_free(&u);
	assert_int_equal(write_conf("optional", "10.0.0.0/8, 127.0.0.0/8"), 0);
	assert_int_equal(harness_reload(H), 0);
	assert_int_equal(tc_connect(&t), 0);
	assert_int_equal(tc_reply(&t, buf, sizeof(buf)), 220);
	tc_close(&t);
	itest_pass(H);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			test_starttls_offered_on_tcp_only_and_delivery_under_tls,
			itest_setup, itest_teardown),
		cmocka_unit_test_setup_teardown(test_command_pipelined_after_starttls_is_refused,
						itest_setup, itest_teardown),
		cmocka_unit_test_setup_teardown(test_required_refuses_commands_before_tls,
						itest_setup, itest_teardown),
		cmocka_unit_test_setup_teardown(test_allow_networks_on_tcp_listeners,
						itest_setup, itest_teardown),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
