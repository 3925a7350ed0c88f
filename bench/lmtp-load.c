/* SPDX-License-Identifier: MIT */
/*
 * bench/lmtp-load.c - LMTP load generator (RFC 2033), main program:
 * options, the run (event loop with an overall deadline), the report
 * (key: value lines or one JSON object) and the optional Maildir check.
 *
 * Runs in:  a benchmark client; works against stowd or any LMTP server.
 * Trust:    connects only to unix sockets and loopback TCP addresses.
 * Exit:     0 all recipients delivered (and verified with -V), 1 any
 *           failure, 2 usage or setup error.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <event2/event.h>

#include "bench/load_int.h"

#define EXIT_USAGE 2

static struct rusage ru_start;

struct bench_report {
	double elapsed, cpu_user, cpu_sys;
	double p50, p90, p99, max;
	unsigned long unsent;
	bool verified, verify_ok;
};

static void
usage(FILE *f)
{
	fprintf(f,
"usage: lmtp-load [-P1j] [-s SESSIONS] [-m MESSAGES] [-b BYTES] [-r RCPTS]\n"
"                 [-u USERS] [-f FORMAT] [-x SEED] [-a ADDRESS] [-t SECONDS]\n"
"                 [-V MAILDIR_PATTERN]\n"
"  -s N   concurrent sessions (default 1)\n"
"  -m N   messages in total (default 1000)\n"
"  -b N   message size in bytes, headers included (default 4096)\n"
"  -r N   recipients per message, round-robin over the users (default 1)\n"
"  -u N   number of users (default 100)\n"
"  -f F   recipient address pattern, %%d = user index 1..N (u%%d@example.com)\n"
"  -x S   draw recipients at random with seed S instead of round-robin\n"
"  -P     pipelining: MAIL, every RCPT and DATA in one write\n"
"  -1     one connection per message (default: reuse the session)\n"
"  -a A   unix:/path | tcp:HOST:PORT | tcp:[V6]:PORT, loopback only\n"
"         (default unix:/run/stowd/lmtp)\n"
"  -t S   overall time limit in seconds (default 300); in-flight messages\n"
"         then count as failed (\"timeout\")\n"
"  -V P   after the run, compare each user's P/new (P with %%d) with the\n"
"         deliveries made\n"
"  -j     print one JSON object instead of key: value lines\n");
}

static int
num_arg(const char *text, unsigned long min, unsigned long max,
	unsigned long *out)
{
	char *end = NULL;
	unsigned long v;

	errno = 0;
	v = strtoul(text, &end, 10);
	if (errno != 0 || end == text || *end != '\0' || text[0] == '-' ||
	    v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

/* Numeric options: letter, range, and where the value goes. */
static int
num_opt(struct bench_opts *o, int c, const char *arg)
{
	unsigned long v = 0;

	switch (c) {
	case 's':
		if (num_arg(arg, 1, BENCH_MAX_SESSIONS, &v) < 0)
			return -1;
		o->sessions = (unsigned)v;
		return 0;
	case 'm':
		return num_arg(arg, 1, BENCH_MAX_MESSAGES, &o->messages);
	case 'b':
		if (num_arg(arg, 0, BENCH_MAX_BYTES, &v) < 0)
			return -1;
		o->bytes = v;
		return 0;
	case 'r':
		if (num_arg(arg, 1, BENCH_MAX_RCPTS, &v) < 0)
			return -1;
		o->rcpts = (unsigned)v;
		return 0;
	case 'u':
		if (num_arg(arg, 1, BENCH_MAX_USERS, &v) < 0)
			return -1;
		o->users = (unsigned)v;
		return 0;
	case 'x':
		if (num_arg(arg, 0, ULONG_MAX, &v) < 0)
			return -1;
		o->random_rcpts = true;
		o->seed = v;
		return 0;
	case 't':
		if (num_arg(arg, 1, 7 * 86400, &v) < 0)
			return -1;
		o->time_limit = (unsigned)v;
		return 0;
	default:
		return -1;
	}
}

static int
parse_opts(int argc, char **argv, struct bench_opts *o)
{
	int c;

	*o = (struct bench_opts){ .sessions = 1, .messages = 1000, .bytes = 4096,
		.rcpts = 1, .users = 100, .format = "u%d@example.com",
		.address = "unix:/run/stowd/lmtp", .time_limit = 300 };
	while ((c = getopt(argc, argv, "s:m:b:r:u:f:x:P1a:t:V:jh")) != -1) {
		if (c == 'f') {
			o->format = optarg;
		} else if (c == 'a') {
			o->address = optarg;
		} else if (c == 'V') {
			o->verify = optarg;
		} else if (c == 'P') {
			o->pipelining = true;
		} else if (c == '1') {
			o->one_per_conn = true;
		} else if (c == 'j') {
			o->json = true;
		} else if (c == 'h') {
			usage(stdout);
			exit(0);
		} else if (c == '?' || num_opt(o, c, optarg) < 0) {
			if (c != '?')
				fprintf(stderr, "lmtp-load: -%c %s: bad number\n", c,
					optarg);
			return -1;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "lmtp-load: unexpected argument %s\n", argv[optind]);
		return -1;
	}
	if (o->rcpts > o->users) {
		fprintf(stderr, "lmtp-load: -r must not exceed -u\n");
		return -1;
	}
	if (!bench_pattern_ok(o->format) ||
	    (o->verify != NULL && !bench_pattern_ok(o->verify))) {
		fprintf(stderr, "lmtp-load: -f/-V need exactly one %%d\n");
		return -1;
	}
	return 0;
}

static bool
addr_ok(const char *a)
{
	for (; *a != '\0'; a++)
		if ((unsigned char)*a <= 0x20 || *a == '<' || *a == '>' ||
		    (unsigned char)*a >= 0x7f)
			return false;
	return true;
}

static int
make_addresses(struct bench_run *run)
{
	char buf[BENCH_MAX_ADDR];
	unsigned u;

	run->rcpt_addr = calloc(run->opts->users, sizeof(*run->rcpt_addr));
	run->user_ok = calloc(run->opts->users, sizeof(*run->user_ok));
	if (run->rcpt_addr == NULL || run->user_ok == NULL)
		return -1;
	for (u = 0; u < run->opts->users; u++) {
		if (bench_expand(run->opts->format, u + 1, buf, sizeof(buf)) < 0 ||
		    !addr_ok(buf)) {
			fprintf(stderr, "lmtp-load: bad recipient address from -f\n");
			return -1;
		}
		run->rcpt_addr[u] = strdup(buf);
		if (run->rcpt_addr[u] == NULL)
			return -1;
	}
	return 0;
}

static void
deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	struct bench_run *run = arg;

	(void)fd;
	(void)what;
	run->timed_out = true;
	clock_gettime(CLOCK_MONOTONIC, &run->t1);
	bench_sessions_abort(run, "timeout");
	event_base_loopexit(run->base, NULL);
}

static void
signal_cb(evutil_socket_t fd, short what, void *arg)
{
	struct bench_run *run = arg;

	(void)fd;
	(void)what;
	clock_gettime(CLOCK_MONOTONIC, &run->t1);
	bench_sessions_abort(run, "interrupted");
	event_base_loopexit(run->base, NULL);
}

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of the sorted array, in ms. */
static double
pct(const uint32_t *v, unsigned long n, double q)
{
	unsigned long k;

	if (n == 0)
		return 0;
	k = (unsigned long)(q * (double)n + 0.999999);
	if (k == 0)
		k = 1;
	return (double)v[(k > n ? n : k) - 1] / 1000.0;
}

static double
tv_diff(const struct timeval *a, const struct timeval *b)
{
	return (double)(b->tv_sec - a->tv_sec) +
	       (double)(b->tv_usec - a->tv_usec) / 1e6;
}

/* CPU time is counted from the start of the run to the report, so setup
 * and the Maildir check (-V) are not charged to the load. */
static void
compute(struct bench_run *run, struct bench_report *r)
{
	struct rusage ru;

	r->elapsed = bench_ts_diff(&run->t0, &run->t1);
	if (getrusage(RUSAGE_SELF, &ru) == 0) {
		r->cpu_user = tv_diff(&ru_start.ru_utime, &ru.ru_utime);
		r->cpu_sys = tv_diff(&ru_start.ru_stime, &ru.ru_stime);
	}
	qsort(run->lat_us, run->nlat, sizeof(*run->lat_us), cmp_u32);
	r->p50 = pct(run->lat_us, run->nlat, 0.50);
	r->p90 = pct(run->lat_us, run->nlat, 0.90);
	r->p99 = pct(run->lat_us, run->nlat, 0.99);
	r->max = pct(run->lat_us, run->nlat, 1.0);
	r->unsent = run->opts->messages - run->next_msg;
}

static double
rate(unsigned long n, double secs)
{
	return secs > 0 ? (double)n / secs : 0;
}

static void
print_text(const struct bench_run *run, const struct bench_report *r,
	   const struct bench_verify *v)
{
	const struct bench_opts *o = run->opts;
	double cpu = r->cpu_user + r->cpu_sys;
	unsigned i;

	printf("address: %s\nsessions: %u\npipelining: %s\nconnection: %s\n"
	       "message_bytes: %zu\nrecipients_per_message: %u\nusers: %u\n",
	       o->address, o->sessions, o->pipelining ? "yes" : "no",
	       o->one_per_conn ? "per-message" : "reused", o->bytes, o->rcpts,
	       o->users);
	printf("messages: %lu\nmessages_ok: %lu\nmessages_unsent: %lu\n"
	       "recipient_deliveries: %lu\nfailed_deliveries: %lu\n"
	       "connections: %lu\ntimed_out: %s\n",
	       run->msgs_done, run->msgs_ok, r->unsent, run->deliveries,
	       run->failures, run->connects, run->timed_out ? "yes" : "no");
	printf("elapsed_s: %.3f\nmessages_per_s: %.1f\ndeliveries_per_s: %.1f\n"
	       "latency_ms_p50: %.3f\nlatency_ms_p90: %.3f\nlatency_ms_p99: %.3f\n"
	       "latency_ms_max: %.3f\n",
	       r->elapsed, rate(run->msgs_done, r->elapsed),
	       rate(run->deliveries, r->elapsed), r->p50, r->p90, r->p99, r->max);
	printf("errors: %lu\n", run->failures);
	for (i = 0; i < run->nerrs; i++)
		printf("%s: %lu\n", run->errs[i].key, run->errs[i].count);
	if (run->other_errs > 0)
		printf("other: %lu\n", run->other_errs);
	printf("cpu_user_s: %.3f\ncpu_sys_s: %.3f\ncpu_percent: %.1f\n",
	       r->cpu_user, r->cpu_sys,
	       r->elapsed > 0 ? 100.0 * cpu / r->elapsed : 0);
	if (r->verified) {
		printf("files: expected %lu found %lu\nfiles_this_run: %lu\n"
		       "bad_bodies: %lu\nverify: %s\n", v->expected, v->found,
		       v->ours, v->bad_bodies, r->verify_ok ? "ok" : "FAILED");
		if (!r->verify_ok)
			printf("verify_first_problem: %s\n", v->first_bad);
	}
}

static void
json_str(const char *text)
{
	const unsigned char *p;

	putchar('"');
	for (p = (const unsigned char *)text; *p != '\0'; p++) {
		if (*p == '"' || *p == '\\')
			printf("\\%c", *p);
		else if (*p < 0x20)
			printf("\\u%04x", *p);
		else
			putchar(*p);
	}
	putchar('"');
}

static void
print_json(const struct bench_run *run, const struct bench_report *r,
	   const struct bench_verify *v)
{
	const struct bench_opts *o = run->opts;
	double cpu = r->cpu_user + r->cpu_sys;
	unsigned i;

	printf("{\"address\":");
	json_str(o->address);
	printf(",\"sessions\":%u,\"pipelining\":%s,\"connection_per_message\":%s,"
	       "\"message_bytes\":%zu,\"recipients_per_message\":%u,\"users\":%u,",
	       o->sessions, o->pipelining ? "true" : "false",
	       o->one_per_conn ? "true" : "false", o->bytes, o->rcpts, o->users);
	printf("\"messages\":%lu,\"messages_ok\":%lu,\"messages_unsent\":%lu,"
	       "\"recipient_deliveries\":%lu,\"failed_deliveries\":%lu,"
	       "\"connections\":%lu,\"timed_out\":%s,",
	       run->msgs_done, run->msgs_ok, r->unsent, run->deliveries,
	       run->failures, run->connects, run->timed_out ? "true" : "false");
	printf("\"elapsed_s\":%.3f,\"messages_per_s\":%.1f,\"deliveries_per_s\":%.1f,"
	       "\"latency_ms\":{\"p50\":%.3f,\"p90\":%.3f,\"p99\":%.3f,\"max\":%.3f},",
	       r->elapsed, rate(run->msgs_done, r->elapsed),
	       rate(run->deliveries, r->elapsed), r->p50, r->p90, r->p99, r->max);
	printf("\"errors\":{");
	for (i = 0; i < run->nerrs; i++)
		printf("%s\"%s\":%lu", i ? "," : "", run->errs[i].key,
		       run->errs[i].count);
	if (run->other_errs > 0)
		printf("%s\"other\":%lu", run->nerrs ? "," : "", run->other_errs);
	printf("},\"cpu_user_s\":%.3f,\"cpu_sys_s\":%.3f,\"cpu_percent\":%.1f",
	       r->cpu_user, r->cpu_sys,
	       r->elapsed > 0 ? 100.0 * cpu / r->elapsed : 0);
	if (r->verified)
		printf(",\"files\":{\"expected\":%lu,\"found\":%lu,\"this_run\":%lu,"
		       "\"bad_bodies\":%lu,\"ok\":%s}", v->expected, v->found,
		       v->ours, v->bad_bodies, r->verify_ok ? "true" : "false");
	printf("}\n");
}

/* Runs the event loop until every session finished or the deadline. */
static int
run_loop(struct bench_run *run)
{
	struct timeval tv = { .tv_sec = run->opts->time_limit };
	struct event *sigint, *sigterm;
	int rc = -1;

	run->deadline = evtimer_new(run->base, deadline_cb, run);
	sigint = evsignal_new(run->base, SIGINT, signal_cb, run);
	sigterm = evsignal_new(run->base, SIGTERM, signal_cb, run);
	if (run->deadline == NULL || sigint == NULL || sigterm == NULL ||
	    evtimer_add(run->deadline, &tv) < 0 || evsignal_add(sigint, NULL) < 0 ||
	    evsignal_add(sigterm, NULL) < 0)
		goto out;
	getrusage(RUSAGE_SELF, &ru_start);
	clock_gettime(CLOCK_MONOTONIC, &run->t0);
	if (bench_sessions_start(run) < 0)
		goto out;
	if (run->active > 0 && event_base_dispatch(run->base) < 0)
		goto out;
	rc = 0;
out:
	if (sigint != NULL)
		event_free(sigint);
	if (sigterm != NULL)
		event_free(sigterm);
	if (run->deadline != NULL)
		event_free(run->deadline);
	run->deadline = NULL;
	return rc;
}

int
main(int argc, char **argv)
{
	struct bench_opts opts;
	struct bench_run run;
	struct bench_report rep;
	struct bench_verify ver;
	const char *why = NULL;
	int status = EXIT_USAGE;
	unsigned u;

	memset(&run, 0, sizeof(run));
	memset(&rep, 0, sizeof(rep));
	memset(&ver, 0, sizeof(ver));
	if (parse_opts(argc, argv, &opts) < 0) {
		usage(stderr);
		return EXIT_USAGE;
	}
	run.opts = &opts;
	run.rng = opts.random_rcpts ? opts.seed : 1;
	signal(SIGPIPE, SIG_IGN);
	if (bench_target_parse(opts.address, &run.target, &why) < 0) {
		fprintf(stderr, "lmtp-load: %s: %s\n", opts.address, why);
		return EXIT_USAGE;
	}
	if (make_addresses(&run) < 0 || bench_tmpl_init(&run.tmpl, opts.bytes) < 0 ||
	    (run.base = event_base_new()) == NULL) {
		fprintf(stderr, "lmtp-load: setup failed\n");
		goto out;
	}
	if (opts.verify != NULL && bench_verify_before(&run, &ver) < 0) {
		fprintf(stderr, "lmtp-load: -V %s: %s\n", opts.verify, strerror(errno));
		goto out;
	}
	if (run_loop(&run) < 0) {
		fprintf(stderr, "lmtp-load: event loop failed\n");
		goto out;
	}
	compute(&run, &rep);
	if (opts.verify != NULL) {
		rep.verified = true;
		rep.verify_ok = bench_verify_after(&run, &ver) == 0;
	}
	if (opts.json)
		print_json(&run, &rep, &ver);
	else
		print_text(&run, &rep, &ver);
	status = run.failures > 0 || run.timed_out || rep.unsent > 0 ||
		 (rep.verified && !rep.verify_ok) ? 1 : 0;
out:
	bench_sessions_free(&run);
	bench_verify_fini(&ver);
	bench_tmpl_fini(&run.tmpl);
	if (run.base != NULL)
		event_base_free(run.base);
	for (u = 0; run.rcpt_addr != NULL && u < opts.users; u++)
		free(run.rcpt_addr[u]);
	free(run.rcpt_addr);
	free(run.user_ok);
	return status;
}
