/* SPDX-License-Identifier: MIT */
/*
 * tests/integration/test_ops_repl.c - the admin's window on a replicating
 * pair (IR[0] = a.test sends to IR[1] = b.test): stowctl status while the
 * replica is down (lag and journal grow) and after it is back (they
 * drain); stowctl resync of a user whose files were removed by hand on the
 * replica, with the repair reported; the metrics endpoint scraped over
 * HTTP and parsed by prometheus_client (tests/integration/
 * metrics_parse.py) with counters that match the deliveries made, and
 * hostile HTTP input that changes nothing.
 *
 * Runs in:  the integration suite, as root; every test starts its own
 *           instances.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "tests/integration/itest.h"
#include "tests/integration/itest_ops.h"
#include "tests/integration/itest_repl.h"

enum { A = 0, B = 1 };

/* The number after "key": in a JSON text (the first one), -1 if none. */
static double
json_num(const char *json, const char *key)
{
	char pat[96];
	const char *p;

	snprintf(pat, sizeof(pat), "\"%s\":", key);
	p = strstr(json, pat);
	return p != NULL ? strtod(p + strlen(pat), NULL) : -1.0;
}

/* With STOWD_OPS_SHOW set, print stowctl status of instance i (for a
 * person looking at the test). */
static void
show_status(unsigned i, const char *when)
{
	char *out = NULL;

	if (getenv("STOWD_OPS_SHOW") == NULL)
		return;
	(void)iops_ctl(IR[i].h, &out, "status", NULL);
	fprintf(stderr, "---- stowctl status on %s, %s ----\n%s", IR[i].name, when, out);
	free(out);
}

static char *
status_json(unsigned i)
{
	char *out = NULL;
	int rc = iops_ctl(IR[i].h, &out, "-j", "status", NULL);

	if (rc != 0)
		fail_msg("stowctl -j status on %s: exit %d: %s", IR[i].name, rc, out);
	iops_json_check(out, "status");
	return out;
}

static void
deliver_ok(unsigned i, unsigned idx, unsigned seed, char guid[33])
{
	struct lmtpc_reply r;
	size_t len;
	char *body = itest_body(3000, seed, &len);

	irepl_deliver(i, idx, body, len, &r, guid);
	if (r.code != 250)
		fail_msg("delivery to %s: %d %s", IR[i].name, r.code, r.text);
	free(body);
}

static void
test_status_while_replica_is_down_and_back(void **state)
{
	struct irepl_conf conf = { .sync_timeout = "300ms" };
	char guid[33], *s1, *s2, *s3, *text = NULL;
	double lag1, lag2;

	(void)state;
	irepl_start_pair(A, B, &conf);
	s1 = status_json(A);
	assert_non_null(strstr(s1, "\"name\":\"b\",\"server_id\":\"b.test\",\"connected\":true"));
	assert_true(json_num(s1, "acks") >= 1);
	irepl_stop(B);
	for (unsigned k = 0; k < 3; k++)
		deliver_ok(A, 0, 700 + k, guid);
	s2 = status_json(A);
	assert_non_null(strstr(s2, "\"connected\":false"));
	assert_null(strstr(s2, "\"last_error\":\"\""));
	assert_true(json_num(s2, "journal_entries") >= 3);
	assert_true(json_num(s2, "journal_bytes") > 9000);
	lag1 = json_num(s2, "lag_seconds");
	assert_true(lag1 > 0);
	assert_true(json_num(s2, "timeouts") >= 3);
	usleep(1200 * 1000);
	free(s2);
	s2 = status_json(A);
	show_status(A, "replica b down");
	lag2 = json_num(s2, "lag_seconds");
	if (!(lag2 >= lag1 + 1.0))
		fail_msg("lag did not grow: %.3f then %.3f", lag1, lag2);
	assert_int_equal(iops_ctl(IR[A].h, &text, "replicas", NULL), 0);
	assert_non_null(strstr(text, "replica b (b.test): not connected, last error: "));
	free(text);
	if (irepl_start(B) < 0)
		fail_msg("b did not restart");
	if (irepl_wait_journal_empty(A, "b", IREPL_POLL_MS) < 0)
		fail_msg("a's journal for b did not drain");
	if (irepl_wait_guid(B, 0, guid, IREPL_POLL_MS, NULL, 0) < 0)
		fail_msg("the last message did not reach b");
	s3 = status_json(A);
	show_status(A, "replica b back, journal drained");
	assert_non_null(strstr(s3, "\"connected\":true"));
	assert_true(json_num(s3, "journal_entries") == 0);
	assert_true(json_num(s3, "journal_bytes") == 0);
	assert_true(json_num(s3, "lag_seconds") == 0);
	assert_true(json_num(s3, "acks") >= 4);
	free(s1);
	free(s2);
	free(s3);
	irepl_pass();
}

static void
test_resync_user_after_files_removed_on_replica(void **state)
{
	/* a store only stowd writes: a file removed by hand is a loss to
	 * repair (with the default "expunge" it is the user's expunge, which
	 * replicates instead) */
	static const struct irepl_conf conf = { .vanished = "repair" };
	char g1[33], g2[33], pb[512], *out = NULL;
	int rc;

	(void)state;
	irepl_start_pair(A, B, &conf);
	if (irepl_wait_log(A, "full sync done", 0, IREPL_POLL_MS) < 0)
		fail_msg("no full sync at start");
	deliver_ok(A, 0, 800, g1);
	deliver_ok(A, 0, 801, g2);
	assert_int_equal(irepl_find(B, 0, g1, pb, sizeof(pb)), 1);
	assert_int_equal(unlink(pb), 0);
	assert_int_equal(irepl_find(B, 0, g2, pb, sizeof(pb)), 1);
	assert_int_equal(unlink(pb), 0);
	rc = iops_ctl(IR[A].h, &out, "resync", IR[A].h->users[0].name, "--replica", "b",
		      NULL);
	if (rc != 0)
		fail_msg("stowctl resync: exit %d: %s", rc, out);
	if (strstr(out, "resync done: ") == NULL || strstr(out, " 0 repairs") != NULL)
		fail_msg("resync reported no repair: %s", out);
	free(out);
	assert_int_equal(irepl_find(B, 0, g1, NULL, 0), 1);
	assert_int_equal(irepl_find(B, 0, g2, NULL, 0), 1);
	/* nothing left to repair, as JSON */
	rc = iops_ctl(IR[A].h, &out, "-j", "resync", IR[A].h->users[0].name, NULL);
	assert_int_equal(rc, 0);
	iops_json_check(out, "resync");
	assert_true(json_num(out, "repairs") == 0);
	assert_true(json_num(out, "mailboxes") >= 1);
	free(out);
	rc = iops_ctl(IR[A].h, &out, "resync", "nosuchuser", NULL);
	assert_int_equal(rc, 1);
	assert_non_null(strstr(out, "unknown user"));
	free(out);
	/* a full sync of every user, now */
	rc = iops_ctl(IR[A].h, &out, "resync", "--all", NULL);
	if (rc != 0 || strstr(out, "resync done: ") == NULL)
		fail_msg("stowctl resync --all: exit %d: %s", rc, out);
	free(out);
	rc = iops_ctl(IR[A].h, &out, "resync", "--all", "--replica", "nosuch", NULL);
	assert_int_equal(rc, 1);
	assert_non_null(strstr(out, "no replica named nosuch"));
	free(out);
	rc = iops_ctl(IR[A].h, &out, "-j", "status", NULL);
	assert_int_equal(rc, 0);
	assert_true(json_num(out, "repairs_total") >= 2);
	free(out);
	irepl_pass();
}

/* ---- metrics -------------------------------------------------------- */

/* Scrape, parse with prometheus_client; the canonical sample lines. */
static char *
scrape_parsed(unsigned port)
{
	const char *script = getenv("STOWD_METRICS_PARSER");
	char path[] = "/tmp/stowd-metrics.XXXXXX", *resp = NULL, *body, *out = NULL;
	const char *argv[] = { "/usr/bin/python3", script, path, NULL };
	int fd, st = 0;

	assert_non_null(script);
	if (iops_http_get(port, "/metrics", &resp) < 0)
		fail_msg("no answer from the metrics listener");
	if (strncmp(resp, "HTTP/1.0 200 ", 13) != 0)
		fail_msg("metrics: %s", resp);
	assert_non_null(strstr(resp, "Content-Type: text/plain; version=0.0.4"));
	body = strstr(resp, "\r\n\r\n");
	assert_non_null(body);
	body += 4;
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, body, strlen(body)), (ssize_t)strlen(body));
	close(fd);
	if (harness_run_capture(argv, 30000, &st, &out) < 0 || st != 0)
		fail_msg("prometheus_client did not accept the metrics: %s\n%s", out, body);
	unlink(path);
	free(resp);
	return out;
}

static void
assert_sample(const char *samples, const char *line)
{
	if (strstr(samples, line) == NULL) {
		fprintf(stderr, "samples:\n%s\n", samples);
		fail_msg("no sample line \"%s\"", line);
	}
}

/* Bounded poll until stowctl shows replica b connected on instance i (the
 * replica closes an idle link after lmtp_command_timeout). */
static void
wait_connected(unsigned i)
{
	for (int k = 0; k < 300; k++) {
		char *out = NULL;
		bool up = iops_ctl(IR[i].h, &out, "-j", "replicas", NULL) == 0 &&
			  strstr(out, "\"connected\":true") != NULL;

		free(out);
		if (up)
			return;
		usleep(100 * 1000);
	}
	fail_msg("replica b did not connect again");
}

/* A connection that sends bytes and expects stowd to close it (an HTTP
 * error answer first, or nothing) within 10 s. */
static void
hostile(unsigned port, const char *bytes, size_t len, bool send_nothing)
{
	struct sockaddr_in sin;
	char buf[4096];
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	if (!send_nothing)
		(void)send(fd, bytes, len, MSG_NOSIGNAL);
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t n;

		if (poll(&p, 1, 10000) <= 0)
			fail_msg("the metrics listener kept a hostile client open");
		n = read(fd, buf, sizeof(buf));
		if (n <= 0)
			break;
		if (strncmp(buf, "HTTP/1.0 200", 12) == 0)
			fail_msg("hostile input got metrics");
	}
	close(fd);
}

static void
test_metrics_scraped_and_parsed(void **state)
{
	char extra[128], guid[33], *samples, *garbage;
	struct irepl_conf conf = { 0 };
	unsigned port = harness_pick_port();
	struct lmtpc_reply r;
	size_t len;
	char *body = itest_body(1000, 900, &len);

	(void)state;
	/* not a port already given to an instance (they bind later) */
	for (int k = 0; k < 20 && (port == IR[A].port || port == IR[B].port); k++)
		port = harness_pick_port();
	assert_true(port != 0 && port != IR[A].port && port != IR[B].port);
	snprintf(extra, sizeof(extra), "metrics_listen = tcp:127.0.0.1:%u\n", port);
	conf.extra = extra;
	conf.extra_to = "";                /* the listener is a's only */
	irepl_start_pair(A, B, &conf);      /* one warm-up delivery */
	deliver_ok(A, 0, 901, guid);
	deliver_ok(A, 1, 902, guid);
	irepl_deliver(A, 0, body, len, &r, guid);
	assert_int_equal(r.code, 250);
	if (irepl_wait_journal_empty(A, "b", IREPL_POLL_MS) < 0)
		fail_msg("a's journal for b did not drain");
	/* hostile input first: it must change nothing */
	garbage = malloc(20000);
	assert_non_null(garbage);
	memset(garbage, 'G', 20000);
	hostile(port, garbage, 20000, false);                      /* overlong head */
	hostile(port, "\x01\x02\x03\r\n\r\n", 7, false);           /* garbage */
	hostile(port, "POST /metrics HTTP/1.1\r\n\r\n", 26, false);
	hostile(port, "GET /../../etc/passwd HTTP/1.1\r\n\r\n", 34, false);
	hostile(port, "GET /metrics HTTP/1.1\r\n", 23, false);   /* slow: never ends */
	hostile(port, "", 0, true);                                  /* silent */
	free(garbage);
	assert_true(harness_alive(IR[A].h));
	wait_connected(A);
	samples = scrape_parsed(port);
	/* 4 deliveries to a (warm-up + 3), all 2xx */
	assert_sample(samples, "stowd_deliveries_total{code=\"2xx\",reason=\"ok\"} 4.0");
	assert_sample(samples, "stowd_deliveries_total{code=\"4xx\",reason=\"writer\"} 0.0");
	assert_sample(samples, "stowd_lmtp_reply_seconds_count{} 4.0");
	assert_sample(samples, "stowd_lmtp_reply_seconds_bucket{le=\"+Inf\"} 4.0");
	assert_sample(samples, "stowd_save_seconds_count{} 4.0");
	assert_sample(samples, "stowd_replica_connected{replica=\"b\"} 1.0");
	assert_sample(samples, "stowd_replica_events_acked_total{replica=\"b\"} 4.0");
	assert_sample(samples, "stowd_replica_events_sent_total{replica=\"b\"} 4.0");
	assert_sample(samples, "stowd_replica_ack_seconds_count{replica=\"b\"} 4.0");
	assert_sample(samples, "stowd_replica_journal_bytes{replica=\"b\"} 0.0");
	assert_sample(samples, "stowd_replica_lag_seconds{replica=\"b\"} 0.0");
	assert_sample(samples, "stowd_seccomp_kills_total{} 0.0");
	assert_sample(samples, "stowd_duplicates_suppressed_total{} 0.0");
	assert_sample(samples, "stowd_queue_depth{} 0.0");
	assert_sample(samples, "stowd_replication_stats_up{} 1.0");
	free(samples);
	/* an unknown user is a 5xx with its reason */
	{
		struct lmtpc *c = itest_connect(IR[A].h, HARNESS_UNIX);

		itest_envelope(c);
		itest_cmd(c, 550, NULL, "RCPT TO:<nosuchuser@%s>", IR[A].h->domain);
		lmtpc_free(&c);
	}
	samples = scrape_parsed(port);
	assert_sample(samples, "stowd_deliveries_total{code=\"5xx\",reason=\"unknown_user\"} 1.0");
	free(samples);
	free(body);
	irepl_pass();
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_status_while_replica_is_down_and_back,
						irepl_setup, irepl_teardown),
		cmocka_unit_test_setup_teardown(test_resync_user_after_files_removed_on_replica,
						irepl_setup, irepl_teardown),
		cmocka_unit_test_setup_teardown(test_metrics_scraped_and_parsed,
						irepl_setup, irepl_teardown),
	};

	harness_require_root();
	return cmocka_run_group_tests(tests, irepl_group_setup, irepl_group_teardown);
}
