/* SPDX-License-Identifier: MIT */
/*
 * bench/load_int.h - internals of lmtp-load, the LMTP load generator:
 * options, the shared run state, sessions, message template, verification.
 *
 * Runs in:  the benchmark client only (never inside stowd).
 * Trust:    server replies are parsed defensively (bounded line length);
 *           user-supplied address and path patterns are expanded without
 *           printf so a bad pattern cannot become a format string.
 */
#ifndef BENCH_LOAD_INT_H
#define BENCH_LOAD_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

struct event_base;
struct event;
struct bufferevent;

#define BENCH_MAX_SESSIONS   4096u
#define BENCH_MAX_MESSAGES   1000000000ul
#define BENCH_MAX_BYTES      (64ul * 1024 * 1024)
#define BENCH_MAX_RCPTS      1000u
#define BENCH_MAX_USERS      1000000u
#define BENCH_MAX_ADDR       256u
#define BENCH_MAX_REPLY_LINE 4096u
#define BENCH_MAX_REPLY_LINES 512u
#define BENCH_MAX_ERRKINDS   32u
#define BENCH_TOKEN_LEN      16u

struct bench_opts {
	unsigned sessions;        /* -s */
	unsigned long messages;   /* -m */
	size_t bytes;             /* -b, whole message before dot-stuffing */
	unsigned rcpts;           /* -r, recipients per message */
	unsigned users;           /* -u */
	const char *format;       /* -f, e.g. "u%d@example.com" */
	bool pipelining;          /* -P */
	bool one_per_conn;        /* -1 */
	const char *address;      /* -a unix:/path | tcp:HOST:PORT */
	unsigned time_limit;      /* -t seconds */
	bool json;                /* -j */
	const char *verify;       /* -V maildir pattern, NULL = no check */
	bool random_rcpts;        /* -x given */
	uint64_t seed;            /* -x SEED */
};

/* Where to connect; only AF_UNIX and loopback AF_INET/AF_INET6. */
struct bench_target {
	struct sockaddr_storage sa;
	socklen_t salen;
	int family;
};

/* The message every transaction sends: fixed-length headers with the
 * message number and run token filled in, then a shared body. */
struct bench_tmpl {
	char date[64];            /* RFC 5322 date, fixed for the run */
	char token[BENCH_TOKEN_LEN + 1];
	size_t header_len;        /* bytes of the header block incl. blank line */
	char *body_wire;          /* dot-stuffed body + ".\r\n" */
	size_t body_wire_len;
	char *body_lf;            /* unstuffed body with LF endings (verify) */
	size_t body_lf_len;
	size_t body_len;          /* unstuffed body, CRLF endings */
	unsigned dot_lines;       /* lines that needed stuffing */
};

struct bench_errkind {
	char key[16];             /* "451", "timeout", "closed", ... */
	unsigned long count;
};

struct bench_session;

struct bench_run {
	const struct bench_opts *opts;
	struct event_base *base;
	struct event *deadline;
	struct bench_target target;
	struct bench_tmpl tmpl;
	char **rcpt_addr;         /* users entries, "u1@example.com" ... */
	struct bench_session *sessions;

	unsigned long next_msg;   /* next message number to hand out */
	unsigned long msgs_done;  /* transactions that got all replies */
	unsigned long msgs_ok;    /* ... and every recipient delivered */
	unsigned long deliveries; /* successful recipient deliveries */
	unsigned long failures;   /* failed recipient deliveries */
	unsigned long *user_ok;   /* per user index: successful deliveries */
	uint32_t *lat_us;         /* latency per completed transaction */
	unsigned long nlat;
	struct bench_errkind errs[BENCH_MAX_ERRKINDS];
	unsigned nerrs;
	unsigned long other_errs; /* kinds past BENCH_MAX_ERRKINDS */

	unsigned active;          /* sessions not yet finished */
	bool stopping;
	bool timed_out;
	unsigned long connects;
	struct timespec t0, t1;
	uint64_t rng;
};

/* ---- util ------------------------------------------------------------- */

/* Expands the one %d/%u/%i in `pattern` with `n`, "%%" with '%', into
 * out[outlen].  Returns 0, or -1 with errno EINVAL (bad pattern: none or
 * several conversions, unknown conversion) or ENAMETOOLONG. */
int bench_expand(const char *pattern, unsigned long n, char *out, size_t outlen);

/* True if `pattern` has exactly one %d/%u/%i conversion. */
bool bench_pattern_ok(const char *pattern);

/* Parses unix:/path, tcp:HOST:PORT, tcp:[V6]:PORT into *out.  Refuses
 * non-loopback TCP addresses.  Returns 0, or -1 with *why_out set. */
int bench_target_parse(const char *text, struct bench_target *out,
		       const char **why_out);

double bench_ts_diff(const struct timespec *a, const struct timespec *b);
uint64_t bench_rand(uint64_t *state);

/* ---- message template (bench/load_msg.c) ----------------------------- */

/* Builds the template for messages of `bytes` bytes.  Returns 0 / -1. */
int bench_tmpl_init(struct bench_tmpl *t, size_t bytes);
void bench_tmpl_fini(struct bench_tmpl *t);

/* Appends message `n`'s header block (exactly t->header_len bytes) to buf
 * (a struct evbuffer *).  Returns 0 / -1. */
int bench_tmpl_add_header(const struct bench_tmpl *t, void *evbuf,
			  unsigned long n);

/* ---- sessions (bench/load_session.c) --------------------------------- */

/* Creates opts->sessions sessions and starts them.  Returns 0 / -1. */
int bench_sessions_start(struct bench_run *run);

/* Aborts every session still in a transaction (time limit). */
void bench_sessions_abort(struct bench_run *run, const char *why);
void bench_sessions_free(struct bench_run *run);

/* Counts one failed recipient delivery under `key`. */
void bench_count_error(struct bench_run *run, const char *key);

/* ---- verification (bench/load_verify.c) ------------------------------ */

struct bench_verify {
	unsigned long *before;    /* files in new/ per user before the run */
	unsigned long expected;
	unsigned long found;
	unsigned long ours;       /* files carrying this run's token */
	unsigned long bad_bodies; /* ours whose body differs from the template */
	unsigned long users_bad;  /* users with a missing or extra file */
	char first_bad[512];      /* first mismatch, for the report */
};

/* Counts files in each user's new/ before the run.  Returns 0 / -1. */
int bench_verify_before(const struct bench_run *run, struct bench_verify *v);

/* Compares after the run.  Returns 0 if everything matches, else -1. */
int bench_verify_after(const struct bench_run *run, struct bench_verify *v);
void bench_verify_fini(struct bench_verify *v);

#endif
