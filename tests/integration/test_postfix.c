/* SPDX-License-Identifier: MIT */
/*
 * tests/integration/test_postfix.c - a real Postfix delivering to stowd
 * over LMTP with STARTTLS (lmtp_tls_security_level = encrypt, stowd with
 * lmtp_tls = required): a private Postfix instance from a temporary
 * config_directory and queue_directory, listening on loopback only, takes
 * a message over SMTP and relays it to stowd's tcp: listener.
 *
 * Runs in:  the integration suite, as root; exits 77 (skipped) when
 *           Debian's postfix package is not installed
 *           (scripts/install-deps installs it).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/integration/itest.h"
#include "tests/lib/certs.h"

#define NUSERS 1
#define POSTFIX "/usr/sbin/postfix"
#define DELIVERY_TIMEOUT_MS 60000

static struct harness *H;
static struct certs C;
static char pf_dir[64];
static unsigned smtp_port;

static const char master_cf[] =
	"%s inet n - n - - smtpd\n"
	"pickup unix n - n 60 1 pickup\n"
	"cleanup unix n - n - 0 cleanup\n"
	"qmgr unix n - n 300 1 qmgr\n"
	"tlsmgr unix - - n 1000? 1 tlsmgr\n"
	"rewrite unix - - n - - trivial-rewrite\n"
	"bounce unix - - n - 0 bounce\n"
	"defer unix - - n - 0 bounce\n"
	"trace unix - - n - 0 bounce\n"
	"verify unix - - n - 1 verify\n"
	"flush unix n - n 1000? 0 flush\n"
	"proxymap unix - - n - - proxymap\n"
	"smtp unix - - n - - smtp\n"
	"relay unix - - n - - smtp\n"
	"showq unix n - n - - showq\n"
	"error unix - - n - - error\n"
	"retry unix - - n - - error\n"
	"discard unix - - n - - discard\n"
	"local unix - n n - - local\n"
	"lmtp unix - - n - - lmtp\n"
	"anvil unix - - n - 1 anvil\n"
	"scache unix - - n - 1 scache\n"
	"postlog unix-dgram n - n - 1 postlogd\n";

static const char main_cf[] =
	"compatibility_level = 3.6\n"
	"queue_directory = %s/queue\n"
	"data_directory = %s/data\n"
	"maillog_file = %s/maillog\n"
	"maillog_file_prefixes = /tmp/\n"
	"mail_owner = postfix\n"
	"setgid_group = postdrop\n"
	"myhostname = postfix.stowd-test.example\n"
	"mydestination =\n"
	"inet_interfaces = 127.0.0.1\n"
	"inet_protocols = ipv4\n"
	"mynetworks = 127.0.0.0/8\n"
	"relay_domains = %s\n"
	"relay_transport = lmtp:inet:%s\n"
	"lmtp_tls_security_level = encrypt\n"
	"lmtp_tls_loglevel = 1\n"
	"smtputf8_enable = no\n"
	"biff = no\n"
	"alias_maps =\n"
	"alias_database =\n";

static int
run(const char *const argv[])
{
	char *out = NULL;
	int st = 0;

	if (harness_run_capture(argv, 60000, &st, &out) < 0 ||
	    !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		fprintf(stderr, "%s %s failed:\n%s\n", argv[0], argv[1] ? argv[1] : "",
			out ? out : "");
		free(out);
		return -1;
	}
	free(out);
	return 0;
}

static int
postfix_cmd(const char *what)
{
	const char *argv[] = { POSTFIX, "-c", pf_dir, what, NULL };

	return run(argv);
}

static int
write_text(const char *name, const char *text)
{
	char path[128];

	snprintf(path, sizeof(path), "%s/%s", pf_dir, name);
	return harness_write_file(path, text, strlen(text), 0644);
}

static int
postfix_setup(void)
{
	char listen[64], *text = NULL;
	const char *lmtp = H->listen[HARNESS_TCP4] + 4;   /* "tcp:" */

	struct passwd *pw = getpwnam("postfix");
	char path[128];

	snprintf(pf_dir, sizeof(pf_dir), "/tmp/stowd-postfix.XXXXXX");
	if (pw == NULL || mkdtemp(pf_dir) == NULL || chmod(pf_dir, 0755) < 0)
		return -1;
	/* the queue is root's (Postfix makes its subdirectories), the data
	 * directory postfix's */
	snprintf(path, sizeof(path), "%s/queue", pf_dir);
	if (mkdir(path, 0755) < 0)
		return -1;
	snprintf(path, sizeof(path), "%s/data", pf_dir);
	if (mkdir(path, 0700) < 0 || chown(path, pw->pw_uid, pw->pw_gid) < 0)
		return -1;
	smtp_port = harness_pick_port();
	snprintf(listen, sizeof(listen), "127.0.0.1:%u", smtp_port);
	if (asprintf(&text, master_cf, listen) < 0 || write_text("master.cf", text) < 0)
		return -1;
	free(text);
	if (asprintf(&text, main_cf, pf_dir, pf_dir, pf_dir, H->domain, lmtp) < 0 ||
	    write_text("main.cf", text) < 0)
		return -1;
	free(text);
	if (postfix_cmd("check") < 0 || postfix_cmd("start") < 0)
		return -1;
	return 0;
}

static int
group_setup(void **state)
{
	static const char *const ids[] = { "lmtp.test" };
	char l1[256], l2[256];
	const char *conf[] = { "lmtp_tls = required", l1, l2, NULL };
	struct harness_opts o = { .nusers = NUSERS, .conf = conf };
	char cert[192], key[192];

	(void)state;
	if (certs_make(&C, ids, 1) < 0)
		return -1;
	certs_cert_path(&C, "lmtp.test", cert, sizeof(cert));
	certs_key_path(&C, "lmtp.test", key, sizeof(key));
	snprintf(l1, sizeof(l1), "lmtp_tls_cert = %s", cert);
	snprintf(l2, sizeof(l2), "lmtp_tls_key = %s", key);
	if (itest_group_start(&H, &o) < 0)
		return -1;
	if (postfix_setup() < 0) {
		fprintf(stderr, "the private Postfix did not start\n");
		return -1;
	}
	return 0;
}

static int
group_teardown(void **state)
{
	char maillog[128], *log = NULL;
	size_t len;

	if (pf_dir[0] != '\0') {
		(void)postfix_cmd("stop");
		snprintf(maillog, sizeof(maillog), "%s/maillog", pf_dir);
		if (getenv("STOWD_SHOW_LOG") != NULL &&
		    harness_read_file(maillog, &log, &len) == 0)
			fprintf(stderr, "---- postfix maillog ----\n%s", log);
		free(log);
		if (getenv("STOWD_KEEP_TREE") == NULL) {
			const char *argv[] = { "/bin/rm", "-rf", pf_dir, NULL };

			(void)run(argv);
		}
	}
	certs_remove(&C);
	return itest_group_teardown(state);
}

static bool
maillog_contains(const char *text)
{
	char path[128], *log = NULL;
	size_t len;
	bool found;

	snprintf(path, sizeof(path), "%s/maillog", pf_dir);
	if (harness_read_file(path, &log, &len) < 0)
		return false;
	found = strstr(log, text) != NULL;
	free(log);
	return found;
}

static void
test_postfix_delivers_over_starttls(void **state)
{
	static const char body[] =
		"Message-ID: <postfix-1@example.net>\r\nSubject: via Postfix\r\n\r\n"
		"relayed over LMTP with STARTTLS\r\n";
	char addr[64];
	struct lmtpc *c;
	struct lmtpc_reply dr, rr;
	int64_t end;

	(void)state;
	snprintf(addr, sizeof(addr), "tcp:127.0.0.1:%u", smtp_port);
	assert_int_equal(lmtpc_connect(addr, 10000, &c), 0);
	assert_int_equal(lmtpc_read_reply(c, &rr), 0);
	assert_int_equal(rr.code, 220);
	itest_cmd(c, 250, NULL, "EHLO client.example");
	itest_cmd(c, 250, NULL, "MAIL FROM:<%s>", ITEST_SENDER);
	itest_cmd(c, 250, NULL, "RCPT TO:<%s>", H->users[0].addr);
	assert_int_equal(lmtpc_data(c, body, strlen(body), &dr, &rr, 1), 0);
	assert_int_equal(dr.code, 354);
	if (rr.code != 250)
		fail_msg("Postfix refused the message: %d %s", rr.code, rr.text);
	itest_cmd(c, 221, NULL, "QUIT");
	lmtpc_free(&c);
	/* the queue runs on its own: a bounded poll for the Maildir */
	end = harness_mono_ms() + DELIVERY_TIMEOUT_MS;
	while (itest_count_new(H, 0) < 1) {
		if (harness_mono_ms() > end)
			fail_msg("Postfix did not deliver to stowd in time");
		harness_sleep_ms(50);
	}
	end = harness_mono_ms() + 10000;
	while (!maillog_contains("status=sent") || !harness_log_contains(H, "TLS TLSv1.")) {
		if (harness_mono_ms() > end)
			fail_msg("no status=sent in Postfix's log or no TLS in stowd's");
		harness_sleep_ms(50);
	}
	assert_true(maillog_contains("TLS connection established to 127.0.0.1"));
	itest_pass(H);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_postfix_delivers_over_starttls,
						itest_setup, itest_teardown),
	};

	harness_require_root();
	if (access(POSTFIX, X_OK) != 0) {
		fprintf(stderr, "SKIP: postfix is not installed (scripts/install-deps)\n");
		return 77;
	}
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
