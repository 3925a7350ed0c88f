/* SPDX-License-Identifier: MIT */
/*
 * tests/integration/test_ops.c - the admin's window on one stowd: stowctl
 * (status and JSON, user, reload good and refused, stop), permission
 * denied for a non-root stowctl, hostile input on the control socket, and
 * the systemd watchdog seen through the harness's private NOTIFY_SOCKET,
 * log_target = syslog seen through a private /dev/log.
 *
 * Runs in:  the integration suite, as root, one stowd per test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "privsep/msg.h"
#include "tests/integration/itest.h"
#include "tests/integration/itest_ops.h"

#define MSG "Subject: x\r\nmessage-id:\r\n <m1.ops@example.org>\r\n\r\nhi\r\n"

static struct harness *H;
static char metrics_sock[128];

static int
setup(void **state)
{
	struct harness_opts o = { .nusers = 3 };

	(void)state;
	return itest_test_start(&H, &o);
}

/* stowd under a watchdog of 400 ms (WATCHDOG_USEC as systemd sets it). */
static int
setup_watchdog(void **state)
{
	struct harness_opts o = { .nusers = 1 };
	int rc;

	(void)state;
	setenv("WATCHDOG_USEC", "400000", 1);
	rc = itest_test_start(&H, &o);
	unsetenv("WATCHDOG_USEC");
	return rc;
}

static void
test_watchdog_pings_while_healthy_and_stops_when_stalled(void **state)
{
	char seen[512] = "";

	(void)state;
	itest_begin(H);
	harness_drain_notify(H);
	assert_int_equal(harness_wait_notify(H, "WATCHDOG=1", 2000, seen, sizeof(seen)), 0);
	seen[0] = '\0';
	assert_int_equal(harness_wait_notify(H, "WATCHDOG=1", 2000, seen, sizeof(seen)), 0);
	if (strstr(seen, "STATUS=ready generation 0, ") == NULL ||
	    strstr(seen, " mode; delivered 0, tempfail 0, permfail 0; queue 0") == NULL)
		fail_msg("no STATUS= line with the pings: %s", seen);
	/* a loop that stalls for longer than half the interval: that tick
	 * sends no WATCHDOG=1 and says why */
	assert_int_equal(harness_signal(H, SIGSTOP), 0);
	usleep(600 * 1000);
	assert_int_equal(harness_signal(H, SIGCONT), 0);
	for (int k = 0; k < 50 && !harness_log_contains(H, "watchdog: the loop turned after"); k++)
		usleep(50 * 1000);
	assert_true(harness_log_contains(H, "watchdog: the loop turned after"));
	/* and it pings again once the loop keeps pace */
	harness_drain_notify(H);
	assert_int_equal(harness_wait_notify(H, "WATCHDOG=1", 2000, NULL, 0), 0);
	itest_pass(H);
}

/* log_target = syslog, /dev/log bound to the harness's socket. */
static int
setup_syslog(void **state)
{
	static const char *const conf[] = { "log_target = syslog", NULL };
	struct harness_opts o = { .nusers = 2, .conf = conf, .syslog = true };

	(void)state;
	return itest_test_start(&H, &o);
}

/* Every line goes to syslog (facility mail, key=value after the role),
 * none to stderr; a delivery line carries user, mailbox, GUID, the IMAP
 * uid and name of the file saved, msgid, size and time. */
static void
test_log_target_syslog(void **state)
{
	char line[2048], guid[33], want[64], path[4096];
	const char *p, *slash;
	size_t n;
	bool found;
	struct lmtpc *c;
	struct lmtpc_reply dr, rr;

	(void)state;
	c = itest_connect(H, HARNESS_UNIX);
	itest_envelope(c);
	itest_cmd(c, 250, NULL, "RCPT TO:<%s>", H->users[1].addr);
	assert_int_equal(lmtpc_data(c, MSG, strlen(MSG), &dr, &rr, 1), 0);
	assert_int_equal(rr.code, 250);
	assert_int_equal(harness_reply_guid(rr.text, guid), 0);
	lmtpc_free(&c);
	snprintf(want, sizeof(want), " guid=%s ", guid);
	/* "<22>Mmm dd hh:mm:ss stowd[pid]: supervisor: delivery ..." */
	found = harness_syslog_wait(H, ": delivery session=", line, sizeof(line),
				    10000) == 0;
	if (found) {
		assert_int_equal(strncmp(line, "<22>", 4), 0);   /* mail.info */
		p = strstr(line, " stowd[");
		assert_non_null(p);
		assert_non_null(strstr(p, ": supervisor: delivery session="));
		assert_non_null(strstr(line, want));
		assert_non_null(strstr(line, " outcome=ok code=250 status=2.0.0 user=u2 "
				       "mailbox=INBOX "));
		assert_non_null(strstr(line, " msgid=<m1.ops@example.org> size="));
		assert_non_null(strstr(line, " time="));
		/* " imap_uid=1 file=NAME ": NAME is the file in new/ */
		snprintf(want, sizeof(want), " guid=%s imap_uid=1 file=", guid);
		p = strstr(line, want);
		assert_non_null(p);
		p += strlen(want);
		n = strcspn(p, " ");
		assert_int_equal(harness_find_guid(H, 1, guid, path, sizeof(path)), 0);
		slash = strrchr(path, '/');
		assert_non_null(slash);
		assert_int_equal(strlen(slash + 1), n);
		assert_int_equal(strncmp(slash + 1, p, n), 0);
	}
	if (!found)
		fail_msg("no delivery line reached syslog");
	/* nothing went to stderr but what is written before the config is
	 * read */
	assert_false(harness_log_contains(H, "delivery session="));
	assert_false(harness_log_contains(H, ": info: "));
	itest_pass(H);
}

/* One stowd with metrics on a unix socket and no replicas. */
static int
setup_metrics_unix(void **state)
{
	static char line[160];
	static const char *conf[] = { line, NULL };
	struct harness_opts o = { .nusers = 2, .conf = conf };
	char tree[] = "/tmp/stowd-metrics-dir.XXXXXX";

	(void)state;
	/* the socket path is only known once the tree exists: use a fixed
	 * directory of our own beside it */
	if (mkdtemp(tree) == NULL)
		return -1;
	snprintf(metrics_sock, sizeof(metrics_sock), "%s/metrics", tree);
	snprintf(line, sizeof(line), "metrics_listen = unix:%s", metrics_sock);
	return itest_test_start(&H, &o);
}

static void
test_metrics_on_unix_socket_without_replicas(void **state)
{
	struct stat st;
	char *out = NULL, dir[sizeof(metrics_sock)];

	(void)state;
	itest_begin(H);
	assert_int_equal(stat(metrics_sock, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0666);
	assert_int_equal(st.st_uid, 0);
	assert_int_equal(harness_deliver(H, (unsigned[]){ 0, 1 }, 2, MSG, strlen(MSG)), 0);
	assert_int_equal(iops_http_get_unix(metrics_sock, "/metrics", &out), 0);
	assert_non_null(strstr(out, "HTTP/1.0 200 OK\r\n"));
	assert_non_null(strstr(out, "\nstowd_deliveries_total{code=\"2xx\",reason=\"ok\"} 2\n"));
	assert_non_null(strstr(out, "\nstowd_replication_stats_up 1\n"));
	assert_null(strstr(out, "stowd_replica_connected{"));
	free(out);
	assert_int_equal(iops_http_get_unix(metrics_sock, "/nothing", &out), 0);
	assert_non_null(strstr(out, "HTTP/1.0 404 "));
	free(out);
	snprintf(dir, sizeof(dir), "%s", metrics_sock);
	*strrchr(dir, '/') = '\0';
	harness_stop(H, 0, NULL);
	unlink(metrics_sock);
	rmdir(dir);
	itest_pass(H);
}

static void
test_status_text_and_json(void **state)
{
	char *out = NULL;
	int rc;

	(void)state;
	itest_begin(H);
	rc = iops_ctl(H, &out, "status", NULL);
	assert_int_equal(rc, 0);
	assert_non_null(strstr(out, "stowd 0.1.0"));
	assert_non_null(strstr(out, "delivery_mode"));
	assert_non_null(strstr(out, "lmtpd"));
	assert_non_null(strstr(out, "fork cache"));
	assert_non_null(strstr(out, "replicas: none configured"));
	free(out);
	assert_int_equal(harness_deliver(H, (unsigned[]){ 0 }, 1, MSG, strlen(MSG)), 0);
	rc = iops_ctl(H, &out, "-j", "status", NULL);
	assert_int_equal(rc, 0);
	iops_json_check(out, "status");
	assert_non_null(strstr(out, "\"generation\":"));
	assert_non_null(strstr(out, "\"role\":\"lmtpd\""));
	assert_non_null(strstr(out, "\"ok\":1,"));
	if (strcmp(H->mode, "fork") == 0 && strstr(out, "\"misses\":1,\"evictions\":0}") == NULL)
		fail_msg("fork mode: one miss expected: %.900s", strstr(out, "\"fork_cache\""));
	free(out);
	/* one delivery line with the Message-ID, as Dovecot logs it */
	assert_true(harness_log_contains(H, "delivery session="));
	assert_true(harness_log_contains(H, " outcome=ok code=250 status=2.0.0 user=u1 "
					 "mailbox=INBOX guid="));
	assert_true(harness_log_contains(H, " msgid=<m1.ops@example.org> size="));
	itest_pass(H);
}

static void
test_user_known_and_unknown(void **state)
{
	char *out = NULL;
	int rc;

	(void)state;
	itest_begin(H);
	assert_int_equal(harness_deliver(H, (unsigned[]){ 1 }, 1, MSG, strlen(MSG)), 0);
	rc = iops_ctl(H, &out, "user", H->users[1].name, NULL);
	assert_int_equal(rc, 0);
	/* a table: name, messages, uidnext, highestmodseq, uidvalidity */
	assert_non_null(strstr(out, "  MAILBOX                         MESSAGES   UIDNEXT "
			       " HIGHESTMODSEQ UIDVALIDITY\n"));
	assert_non_null(strstr(out, "\n  INBOX                                  1         2 "));
	assert_non_null(strstr(out, "s ago, 250, guid "));
	free(out);
	rc = iops_ctl(H, &out, "user", H->users[2].name, NULL);
	assert_int_equal(rc, 0);
	assert_non_null(strstr(out, "last delivery: none since stowd started"));
	free(out);
	rc = iops_ctl(H, &out, "-j", "user", H->users[1].name, NULL);
	assert_int_equal(rc, 0);
	iops_json_check(out, "user");
	assert_non_null(strstr(out, "\"last_delivery\":{\"time\":"));
	free(out);
	rc = iops_ctl(H, &out, "user", "nosuchuser", NULL);
	assert_int_equal(rc, 1);
	assert_non_null(strstr(out, "unknown user"));
	free(out);
	itest_pass(H);
}

static void
test_reload_refused_then_applied(void **state)
{
	char *out = NULL, *good = NULL;
	size_t len;
	int rc;

	(void)state;
	itest_begin(H);
	assert_int_equal(harness_read_file(H->conf_path, &good, &len), 0);
	assert_int_equal(harness_write_file(H->conf_path, "no_such_setting = 1\n", 20, 0644), 0);
	rc = iops_ctl_sock(H, &out, "reload", NULL);
	assert_int_equal(rc, 1);
	assert_non_null(strstr(out, "no_such_setting"));
	free(out);
	/* still serving on the old config */
	assert_int_equal(harness_deliver(H, (unsigned[]){ 0 }, 1, MSG, strlen(MSG)), 0);
	assert_int_equal(harness_write_file(H->conf_path, good, len, 0644), 0);
	rc = iops_ctl(H, &out, "reload", NULL);
	assert_int_equal(rc, 0);
	assert_non_null(strstr(out, "reloaded, ready: generation 1"));
	free(out);
	rc = iops_ctl(H, &out, "-j", "status", NULL);
	assert_int_equal(rc, 0);
	assert_non_null(strstr(out, "\"generation\":1,"));
	free(out);
	free(good);
	itest_pass(H);
}

static void
test_stop(void **state)
{
	char *out = NULL;
	int st = 0;

	(void)state;
	itest_begin(H);
	assert_int_equal(iops_ctl(H, &out, "stop", NULL), 0);
	free(out);
	if (harness_wait_exit(H, 10000, &st) < 0)
		fail_msg("stowd still runs after stowctl stop");
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	assert_int_equal(iops_ctl(H, &out, "status", NULL), 3);
	assert_non_null(strstr(out, "not running"));
	free(out);
	itest_pass(H);
}

static void
test_non_root_is_denied(void **state)
{
	char *out = NULL;
	int rc;

	(void)state;
	itest_begin(H);
	rc = iops_ctl_as(H, H->run_uid, H->run_gid, &out, "status", NULL);
	assert_int_equal(rc, 4);
	assert_non_null(strstr(out, "permission denied"));
	free(out);
	itest_pass(H);
}

static void
test_hostile_control_input(void **state)
{
	char *before = NULL, *out = NULL;

	(void)state;
	itest_begin(H);
	assert_int_equal(iops_ctl(H, &before, "-j", "status", NULL), 0);
	iops_hostile_control(H->control_path);
	assert_true(harness_alive(H));
	assert_int_equal(iops_ctl(H, &out, "status", NULL), 0);
	assert_non_null(strstr(out, "generation 0"));
	free(out);
	free(before);
	assert_int_equal(harness_deliver(H, (unsigned[]){ 0 }, 1, MSG, strlen(MSG)), 0);
	itest_pass(H);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_status_text_and_json, setup, itest_test_teardown),
		cmocka_unit_test_setup_teardown(test_user_known_and_unknown, setup, itest_test_teardown),
		cmocka_unit_test_setup_teardown(test_reload_refused_then_applied, setup, itest_test_teardown),
		cmocka_unit_test_setup_teardown(test_non_root_is_denied, setup, itest_test_teardown),
		cmocka_unit_test_setup_teardown(test_hostile_control_input, setup, itest_test_teardown),
		cmocka_unit_test_setup_teardown(test_stop, setup, itest_test_teardown),
		cmocka_unit_test_setup_teardown(
			test_watchdog_pings_while_healthy_and_stops_when_stalled,
			setup_watchdog, itest_test_teardown),
		cmocka_unit_test_setup_teardown(test_metrics_on_unix_socket_without_replicas,
						setup_metrics_unix, itest_test_teardown),
		cmocka_unit_test_setup_teardown(test_log_target_syslog, setup_syslog,
						itest_test_teardown),
	};

	harness_require_root();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
