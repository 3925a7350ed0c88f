/* SPDX-License-Identifier: MIT */
/*
 * bench/load_session.c - one LMTP client session of lmtp-load on a
 * libevent bufferevent: connect, greeting, LHLO, then transactions
 * (MAIL, RCPT..., DATA, body, one reply per accepted RCPT), pipelined
 * (MAIL + every RCPT + DATA in one write, as Postfix does) or lock-step,
 * on one connection per message or reusing the session.
 *
 * Runs in:  the benchmark client.
 * Trust:    replies are read line by line with a length cap; any reply
 *           the state does not expect counts as a failure of the message,
 *           never as a crash.
 * Order:    a message is assigned before connecting, so every failure
 *           (connect, greeting, reply, close, time limit) is charged to the
 *           recipients of one message, each exactly once.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "bench/load_int.h"

#define LAT_CAP (4ul * 1024 * 1024)
#define MAX_LINES_PER_READ 100000u

enum bench_state {
	BS_IDLE,
	BS_GREETING,
	BS_LHLO,
	BS_MAIL,
	BS_RCPT,
	BS_DATA,
	BS_DOT,
	BS_RSET,
	BS_QUIT,
	BS_DONE,
};

enum bench_rcpt_st {
	RS_PENDING,
	RS_ACCEPTED,
	RS_OK,
	RS_FAILED,
};

struct bench_session {
	struct bench_run *run;
	struct bufferevent *bev;
	enum bench_state state;
	bool in_txn;              /* a message is assigned */
	unsigned long msg;        /* message number, 1-based */
	unsigned *rcpt_user;      /* opts->rcpts user indexes (0-based) */
	unsigned char *rcpt_st;   /* enum bench_rcpt_st */
	unsigned short *rcpt_code;/* reply code of a failure */
	unsigned rcpt_next;       /* next RCPT reply to match */
	unsigned accepted;        /* RCPTs accepted */
	unsigned dot_seen;        /* per-rcpt replies seen after the body */
	unsigned dot_expected;
	int mail_code;            /* MAIL reply code */
	unsigned reply_lines;     /* lines of the multi-line reply so far */
	struct timespec t_start;
};

static void session_next(struct bench_session *s);

void
bench_count_error(struct bench_run *run, const char *key)
{
	unsigned i;

	for (i = 0; i < run->nerrs; i++) {
		if (strcmp(run->errs[i].key, key) == 0) {
			run->errs[i].count++;
			return;
		}
	}
	if (run->nerrs == BENCH_MAX_ERRKINDS) {
		run->other_errs++;
		return;
	}
	snprintf(run->errs[i].key, sizeof(run->errs[i].key), "%s", key);
	run->errs[i].count = 1;
	run->nerrs++;
}

static bool
taken(const struct bench_session *s, unsigned j, unsigned u)
{
	unsigned k;

	for (k = 0; k < j; k++)
		if (s->rcpt_user[k] == u)
			return true;
	return false;
}

static void
pick_rcpts(struct bench_session *s)
{
	struct bench_run *run = s->run;
	const struct bench_opts *o = run->opts;
	unsigned j, tries;

	for (j = 0; j < o->rcpts; j++) {
		unsigned u;

		if (!o->random_rcpts) {
			u = (unsigned)(((s->msg - 1) * o->rcpts + j) % o->users);
		} else {
			/* distinct within the message (rcpts <= users) */
			u = (unsigned)(bench_rand(&run->rng) % o->users);
			for (tries = 0; tries < o->users && taken(s, j, u); tries++)
				u = (u + 1) % o->users;
		}
		s->rcpt_user[j] = u;
		s->rcpt_st[j] = RS_PENDING;
		s->rcpt_code[j] = 0;
	}
	s->rcpt_next = 0;
	s->accepted = 0;
	s->dot_seen = 0;
	s->dot_expected = 0;
	s->mail_code = 0;
}

static void
record_latency(struct bench_run *run, const struct bench_session *s)
{
	struct timespec now;
	double usec;
	uint32_t us;

	clock_gettime(CLOCK_MONOTONIC, &now);
	usec = bench_ts_diff(&s->t_start, &now) * 1e6;
	us = usec > 4e9 ? UINT32_MAX : (uint32_t)usec;
	if (run->nlat < LAT_CAP) {
		run->lat_us[run->nlat++] = us;
	} else {
		/* reservoir sample once the array is full */
		uint64_t r = bench_rand(&run->rng) % (run->msgs_done + 1);

		if (r < LAT_CAP)
			run->lat_us[r] = us;
	}
}

/* Charges the outcome of the current message: every recipient once.
 * `why` names the failure of recipients still unresolved. */
static void
txn_tally(struct bench_session *s, bool completed, const char *why)
{
	struct bench_run *run = s->run;
	unsigned j, ok = 0;
	char key[16];

	for (j = 0; j < run->opts->rcpts; j++) {
		if (s->rcpt_st[j] == RS_OK) {
			ok++;
			run->deliveries++;
			run->user_ok[s->rcpt_user[j]]++;
			continue;
		}
		run->failures++;
		if (s->rcpt_st[j] == RS_FAILED && s->rcpt_code[j] != 0) {
			snprintf(key, sizeof(key), "%u", s->rcpt_code[j]);
			bench_count_error(run, key);
		} else {
			bench_count_error(run, why);
		}
	}
	if (completed) {
		record_latency(run, s);
		run->msgs_done++;
		if (ok == run->opts->rcpts)
			run->msgs_ok++;
	}
	s->in_txn = false;
}

static void
close_conn(struct bench_session *s)
{
	if (s->bev != NULL)
		bufferevent_free(s->bev);
	s->bev = NULL;
	s->state = BS_IDLE;
}

static void
send_rcpt(struct bench_session *s, unsigned j)
{
	evbuffer_add_printf(bufferevent_get_output(s->bev), "RCPT TO:<%s>\r\n",
			    s->run->rcpt_addr[s->rcpt_user[j]]);
}

static void
txn_start(struct bench_session *s)
{
	struct evbuffer *out = bufferevent_get_output(s->bev);
	unsigned j;

	clock_gettime(CLOCK_MONOTONIC, &s->t_start);
	evbuffer_add_printf(out, "MAIL FROM:<load@lmtp-load.invalid>\r\n");
	if (s->run->opts->pipelining) {
		for (j = 0; j < s->run->opts->rcpts; j++)
			send_rcpt(s, j);
		evbuffer_add_printf(out, "DATA\r\n");
	}
	s->state = BS_MAIL;
}

/* Transaction over without per-rcpt replies: RSET so the next MAIL is
 * not refused as nested. */
static void
txn_reset(struct bench_session *s)
{
	evbuffer_add_printf(bufferevent_get_output(s->bev), "RSET\r\n");
	s->state = BS_RSET;
}

/* The current message is fully answered; go on with the next one. */
static void
txn_done(struct bench_session *s, bool completed)
{
	txn_tally(s, completed, "protocol");
	if (s->run->opts->one_per_conn) {
		evbuffer_add_printf(bufferevent_get_output(s->bev), "QUIT\r\n");
		s->state = BS_QUIT;
		return;
	}
	s->state = BS_IDLE;
	session_next(s);
}

static void
fail_pending(struct bench_session *s, int code)
{
	unsigned j;

	for (j = 0; j < s->run->opts->rcpts; j++) {
		if (s->rcpt_st[j] == RS_PENDING || s->rcpt_st[j] == RS_ACCEPTED) {
			s->rcpt_st[j] = RS_FAILED;
			s->rcpt_code[j] = (unsigned short)code;
		}
	}
}

static void
on_rcpt_reply(struct bench_session *s, int code)
{
	const struct bench_opts *o = s->run->opts;
	unsigned j = s->rcpt_next++;

	if (s->mail_code / 100 != 2) {
		s->rcpt_st[j] = RS_FAILED;
		s->rcpt_code[j] = (unsigned short)s->mail_code;
	} else if (code / 100 == 2) {
		s->rcpt_st[j] = RS_ACCEPTED;
		s->accepted++;
	} else {
		s->rcpt_st[j] = RS_FAILED;
		s->rcpt_code[j] = (unsigned short)code;
	}
	if (s->rcpt_next < o->rcpts) {
		if (!o->pipelining)
			send_rcpt(s, s->rcpt_next);
		return;
	}
	if (o->pipelining) {
		s->state = BS_DATA;
	} else if (s->accepted > 0) {
		evbuffer_add_printf(bufferevent_get_output(s->bev), "DATA\r\n");
		s->state = BS_DATA;
	} else {
		txn_reset(s);
	}
}

static void
on_data_reply(struct bench_session *s, int code)
{
	struct evbuffer *out = bufferevent_get_output(s->bev);
	const struct bench_tmpl *t = &s->run->tmpl;

	if (code != 354) {
		fail_pending(s, code);
		txn_reset(s);
		return;
	}
	bench_tmpl_add_header(t, out, s->msg);
	evbuffer_add_reference(out, t->body_wire, t->body_wire_len, NULL, NULL);
	/* A server that said 354 with no recipient still owes one reply. */
	s->dot_expected = s->accepted > 0 ? s->accepted : 1;
	s->state = BS_DOT;
}

static void
on_dot_reply(struct bench_session *s, int code)
{
	unsigned j;

	/* replies come in RCPT order: the first still-accepted one is next */
	for (j = 0; j < s->run->opts->rcpts; j++) {
		if (s->rcpt_st[j] != RS_ACCEPTED)
			continue;
		s->rcpt_st[j] = code / 100 == 2 ? RS_OK : RS_FAILED;
		s->rcpt_code[j] = code / 100 == 2 ? 0 : (unsigned short)code;
		break;
	}
	if (++s->dot_seen < s->dot_expected)
		return;
	txn_done(s, true);
}

/* One complete reply (final line `code`).  Returns false if the session
 * left this connection (reading must stop). */
static bool
handle_reply(struct bench_session *s, int code)
{
	struct bufferevent *bev = s->bev;

	switch (s->state) {
	case BS_GREETING:
		if (code != 220) {
			fail_pending(s, code);
			txn_tally(s, false, "greeting");
			close_conn(s);
			session_next(s);
			return false;
		}
		evbuffer_add_printf(bufferevent_get_output(bev),
				    "LHLO lmtp-load.invalid\r\n");
		s->state = BS_LHLO;
		break;
	case BS_LHLO:
		if (code / 100 != 2) {
			fail_pending(s, code);
			txn_tally(s, false, "lhlo");
			evbuffer_add_printf(bufferevent_get_output(bev), "QUIT\r\n");
			s->state = BS_QUIT;
			break;
		}
		txn_start(s);
		break;
	case BS_MAIL:
		s->mail_code = code;
		if (s->run->opts->pipelining) {
			s->state = BS_RCPT;
		} else if (code / 100 == 2) {
			send_rcpt(s, 0);
			s->state = BS_RCPT;
		} else {
			fail_pending(s, code);
			txn_reset(s);
		}
		break;
	case BS_RCPT:
		on_rcpt_reply(s, code);
		break;
	case BS_DATA:
		on_data_reply(s, code);
		break;
	case BS_DOT:
		on_dot_reply(s, code);
		break;
	case BS_RSET:
		txn_done(s, false);
		break;
	case BS_QUIT:
		close_conn(s);
		session_next(s);
		return false;
	case BS_IDLE:
	case BS_DONE:
		/* unsolicited reply (e.g. 421 before closing) */
		if (s->in_txn) {
			fail_pending(s, code);
			txn_tally(s, false, "unexpected");
		}
		close_conn(s);
		session_next(s);
		return false;
	}
	return s->bev == bev;
}

/* Parses one reply line.  Returns the code on a final line, 0 on a
 * continuation line, -1 on a malformed line. */
static int
parse_line(const char *line, size_t n)
{
	int code;

	if (n < 3 || line[0] < '2' || line[0] > '5' || line[1] < '0' ||
	    line[1] > '9' || line[2] < '0' || line[2] > '9')
		return -1;
	code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
	if (n == 3 || line[3] == ' ')
		return code;
	return line[3] == '-' ? 0 : -1;
}

static void
protocol_error(struct bench_session *s, const char *why)
{
	if (s->in_txn)
		txn_tally(s, false, why);
	close_conn(s);
	session_next(s);
}

static void
read_cb(struct bufferevent *bev, void *arg)
{
	struct bench_session *s = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	unsigned i;

	for (i = 0; i < MAX_LINES_PER_READ; i++) {
		size_t n = 0;
		char *line = evbuffer_readln(in, &n, EVBUFFER_EOL_CRLF);
		int code;

		if (line == NULL) {
			if (evbuffer_get_length(in) > BENCH_MAX_REPLY_LINE)
				protocol_error(s, "protocol");
			return;
		}
		code = parse_line(line, n);
		free(line);
		if (code < 0 || ++s->reply_lines > BENCH_MAX_REPLY_LINES) {
			protocol_error(s, "protocol");
			return;
		}
		if (code == 0)
			continue;
		s->reply_lines = 0;
		if (!handle_reply(s, code))
			return;
	}
}

static void
event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct bench_session *s = arg;

	(void)bev;
	if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
		return;
	if (s->in_txn)
		txn_tally(s, false, s->state == BS_GREETING ? "connect" : "closed");
	close_conn(s);
	session_next(s);
}

/* Connects without libevent's connect helper (whose error path calls back
 * synchronously): LMTP servers speak first, so a read event reports both
 * the greeting and a failed connect. */
static int
start_connect(struct bench_session *s)
{
	struct bench_run *run = s->run;
	int fd, one = 1;

	run->connects++;
	fd = socket(run->target.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    0);
	if (fd < 0)
		return -1;
	if (run->target.family != AF_UNIX)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&run->target.sa, run->target.salen) < 0 &&
	    errno != EINPROGRESS) {
		close(fd);
		return -1;
	}
	s->bev = bufferevent_socket_new(run->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (s->bev == NULL) {
		close(fd);
		return -1;
	}
	bufferevent_setcb(s->bev, read_cb, NULL, event_cb, s);
	bufferevent_enable(s->bev, EV_READ | EV_WRITE);
	s->state = BS_GREETING;
	s->reply_lines = 0;
	return 0;
}

static void
session_finish(struct bench_session *s)
{
	struct bench_run *run = s->run;

	if (s->state == BS_DONE)
		return;
	close_conn(s);
	s->state = BS_DONE;
	if (run->active > 0 && --run->active == 0) {
		clock_gettime(CLOCK_MONOTONIC, &run->t1);
		event_base_loopexit(run->base, NULL);
	}
}

/* Takes the next message and gets it going.  Loops (bounded by the number
 * of messages) only while connecting fails synchronously. */
static void
session_next(struct bench_session *s)
{
	struct bench_run *run = s->run;
	unsigned long guard;

	for (guard = 0; guard <= run->opts->messages; guard++) {
		if (run->stopping || run->next_msg >= run->opts->messages) {
			if (s->bev != NULL && s->state == BS_IDLE && !run->stopping) {
				evbuffer_add_printf(bufferevent_get_output(s->bev),
						    "QUIT\r\n");
				s->state = BS_QUIT;
				return;
			}
			session_finish(s);
			return;
		}
		s->msg = ++run->next_msg;
		s->in_txn = true;
		pick_rcpts(s);
		if (s->bev != NULL) {
			txn_start(s);
			return;
		}
		if (start_connect(s) == 0)
			return;
		txn_tally(s, false, "connect");
	}
}

int
bench_sessions_start(struct bench_run *run)
{
	const struct bench_opts *o = run->opts;
	unsigned i;

	run->sessions = calloc(o->sessions, sizeof(*run->sessions));
	run->lat_us = calloc(o->messages < LAT_CAP ? o->messages : LAT_CAP,
			     sizeof(*run->lat_us));
	if (run->sessions == NULL || run->lat_us == NULL)
		return -1;
	for (i = 0; i < o->sessions; i++) {
		struct bench_session *s = &run->sessions[i];

		s->run = run;
		s->rcpt_user = calloc(o->rcpts, sizeof(*s->rcpt_user));
		s->rcpt_st = calloc(o->rcpts, sizeof(*s->rcpt_st));
		s->rcpt_code = calloc(o->rcpts, sizeof(*s->rcpt_code));
		if (s->rcpt_user == NULL || s->rcpt_st == NULL ||
		    s->rcpt_code == NULL)
			return -1;
	}
	run->active = o->sessions;
	for (i = 0; i < o->sessions; i++)
		session_next(&run->sessions[i]);
	return 0;
}

void
bench_sessions_abort(struct bench_run *run, const char *why)
{
	unsigned i;

	run->stopping = true;
	for (i = 0; i < run->opts->sessions; i++) {
		struct bench_session *s = &run->sessions[i];

		if (s->in_txn)
			txn_tally(s, false, why);
		if (s->state != BS_DONE)
			session_finish(s);
	}
}

void
bench_sessions_free(struct bench_run *run)
{
	unsigned i;

	if (run->sessions == NULL)
		return;
	for (i = 0; i < run->opts->sessions; i++) {
		struct bench_session *s = &run->sessions[i];

		close_conn(s);
		free(s->rcpt_user);
		free(s->rcpt_st);
		free(s->rcpt_code);
	}
	free(run->sessions);
	run->sessions = NULL;
	free(run->lat_us);
	run->lat_us = NULL;
}
