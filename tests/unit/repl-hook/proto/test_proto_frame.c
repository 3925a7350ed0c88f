/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/repl-hook/proto/test_proto_frame.c - the framer of the replication
 * protocol (doc/replication-protocol.md §3): lines at LF, bad line ends,
 * MAXLINE, overlong lines with and without literal, literals in sealed
 * memfds, literals over maxliteral, short and long literals, bad literal
 * sizes, input split at every octet, bounded memory, random input.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/buffer.h>

#include "repl-hook/proto/proto.h"

#define MAXFRAMES 16

/* What a frame looked like, literal content included. */
struct got {
	char line[REPL_MAXLINE + 1];
	size_t len;
	bool toolong, bad_eol, has_literal, toobig;
	uint64_t literal_size;
	char *data;           /* literal content read from the memfd, or NULL */
	size_t datalen;
};

struct run {
	struct got f[MAXFRAMES];
	int n;
	bool fatal;
	const char *why;
};

static void
run_free(struct run *r)
{
	int i;

	for (i = 0; i < r->n; i++)
		free(r->f[i].data);
	free(r);
}

/* Read and check a literal memfd: sealed, at offset 0, size as announced. */
static void
take_literal(struct repl_frame *fr, struct got *g)
{
	int seals = fcntl(fr->literal_fd, F_GET_SEALS);
	off_t end;
	ssize_t n;

	assert_int_equal(seals, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL);
	assert_int_equal(lseek(fr->literal_fd, 0, SEEK_CUR), 0);
	end = lseek(fr->literal_fd, 0, SEEK_END);
	assert_int_equal((uint64_t)end, fr->literal_size);
	assert_int_equal(lseek(fr->literal_fd, 0, SEEK_SET), 0);
	g->data = malloc((size_t)end + 1);
	assert_non_null(g->data);
	n = read(fr->literal_fd, g->data, (size_t)end);
	assert_int_equal(n, end);
	g->datalen = (size_t)n;
	assert_int_equal(write(fr->literal_fd, "x", 1), -1);
	close(fr->literal_fd);
}

/* Drain frames from in into r until MORE or FATAL. */
static void
pump(struct repl_framer *fw, struct evbuffer *in, struct run *r)
{
	struct repl_frame *fr = malloc(sizeof *fr);

	assert_non_null(fr);
	while (!r->fatal) {
		const char *why = NULL;
		enum repl_frame_result res = repl_framer_next(fw, in, fr, &why);

		if (res == REPL_F_MORE) {
			assert_int_equal(evbuffer_get_length(in), 0);
			break;
		}
		if (res == REPL_F_FATAL) {
			assert_non_null(why);
			r->fatal = true;
			r->why = why;
			break;
		}
		assert_int_equal(res, REPL_F_FRAME);
		assert_true(r->n < MAXFRAMES);
		{
			struct got *g = &r->f[r->n++];

			memset(g, 0, sizeof *g);
			assert_int_equal(strlen(fr->line) <= fr->len, true);
			assert_true(fr->len <= REPL_MAXLINE);
			memcpy(g->line, fr->line, fr->len + 1);
			g->len = fr->len;
			g->toolong = fr->toolong;
			g->bad_eol = fr->bad_eol;
			g->has_literal = fr->has_literal;
			g->toobig = fr->literal_toobig;
			g->literal_size = fr->literal_size;
			if (fr->literal_fd >= 0) {
				assert_true(fr->has_literal);
				assert_false(fr->literal_toobig);
				take_literal(fr, g);
			}
		}
	}
	free(fr);
}

/* Feed data in pieces cut at the offsets cuts[0..ncuts). */
static struct run *
feed(const char *data, size_t len, uint64_t maxlit,
     const size_t *cuts, size_t ncuts)
{
	struct repl_framer *fw = repl_framer_new(maxlit);
	struct evbuffer *in = evbuffer_new();
	struct run *r = calloc(1, sizeof *r);
	size_t pos = 0, i;

	assert_non_null(r);
	for (i = 0; i <= ncuts && !r->fatal; i++) {
		size_t to = i < ncuts ? cuts[i] : len;

		evbuffer_add(in, data + pos, to - pos);
		pos = to;
		pump(fw, in, r);
	}
	repl_framer_free(&fw);
	assert_null(fw);
	evbuffer_free(in);
	return r;
}

static struct run *
feed_all(const char *data, size_t len, uint64_t maxlit)
{
	return feed(data, len, maxlit, NULL, 0);
}

static void
same_runs(const struct run *a, const struct run *b)
{
	int i;

	assert_int_equal(a->n, b->n);
	assert_int_equal(a->fatal, b->fatal);
	for (i = 0; i < a->n; i++) {
		assert_int_equal(a->f[i].len, b->f[i].len);
		assert_memory_equal(a->f[i].line, b->f[i].line, a->f[i].len);
		assert_int_equal(a->f[i].toolong, b->f[i].toolong);
		assert_int_equal(a->f[i].bad_eol, b->f[i].bad_eol);
		assert_int_equal(a->f[i].has_literal, b->f[i].has_literal);
		assert_int_equal(a->f[i].toobig, b->f[i].toobig);
		assert_int_equal(a->f[i].literal_size, b->f[i].literal_size);
		assert_int_equal(a->f[i].datalen, b->f[i].datalen);
		if (a->f[i].datalen > 0)
			assert_memory_equal(a->f[i].data, b->f[i].data, a->f[i].datalen);
	}
}

#define S(x) x, sizeof(x) - 1

static const char stream[] =
	"a1 HELLO 1 a.example\r\n"
	"a2 SAVE a.example 17 alice INBOX 0190f3a2b4c8d2a1e5f6a7b8c9d0e1f2 42 1718000000 () {12}\r\n"
	"Hi\r\n\0{3}\r\nx\n\r\n"
	"a3 NOOP\r\n"
	"a4 SAVE x 1 u m 0190f3a2b4c8d2a1e5f6a7b8c9d0e1f2 0 0 () {0}\r\n\r\n"
	"a5 LOGOUT\r\n";

static void
check_stream(const struct run *r)
{
	assert_false(r->fatal);
	assert_int_equal(r->n, 5);
	assert_string_equal(r->f[0].line, "a1 HELLO 1 a.example");
	assert_false(r->f[0].bad_eol);
	assert_false(r->f[0].has_literal);
	assert_true(r->f[1].has_literal);
	assert_int_equal(r->f[1].literal_size, 12);
	assert_int_equal(r->f[1].datalen, 12);
	assert_memory_equal(r->f[1].data, "Hi\r\n\0{3}\r\nx\n", 12);
	assert_string_equal(r->f[2].line, "a3 NOOP");
	assert_true(r->f[3].has_literal);
	assert_int_equal(r->f[3].literal_size, 0);
	assert_int_equal(r->f[3].datalen, 0);
	assert_string_equal(r->f[4].line, "a5 LOGOUT");
}

static void
test_stream_whole(void **state)
{
	struct run *r;

	(void)state;
	r = feed_all(S(stream), 1000);
	check_stream(r);
	assert_false(r->f[1].bad_eol);
	run_free(r);
}

static void
test_stream_split_at_every_octet(void **state)
{
	struct run *whole = feed_all(S(stream), 1000);
	size_t k, all[sizeof stream];

	(void)state;
	for (k = 1; k < sizeof stream - 1; k++) {
		struct run *r = feed(S(stream), 1000, &k, 1);

		same_runs(whole, r);
		run_free(r);
	}
	for (k = 0; k < sizeof stream - 1; k++)
		all[k] = k + 1;
	{
		struct run *r = feed(S(stream), 1000, all, sizeof stream - 2);

		check_stream(r);
		run_free(r);
	}
	run_free(whole);
}

static void
test_bad_line_ends(void **state)
{
	static const char in[] = "a1 NOOP\na2 NO\rOP\r\na3 NO\0OP\r\na4 NOOP\r\r\na5 NOOP\r\n";
	struct run *r;

	(void)state;
	r = feed_all(S(in), 1000);
	assert_false(r->fatal);
	assert_int_equal(r->n, 5);
	assert_true(r->f[0].bad_eol);
	assert_string_equal(r->f[0].line, "a1 NOOP");
	assert_true(r->f[1].bad_eol);
	assert_true(r->f[2].bad_eol);
	assert_int_equal(r->f[2].len, 8);
	assert_true(r->f[3].bad_eol);
	assert_false(r->f[4].bad_eol);
	assert_string_equal(r->f[4].line, "a5 NOOP");
	run_free(r);
}

static void
test_bad_eol_literal_is_discarded(void **state)
{
	static const char in[] = "a1 SAVE x {3}\nabc\r\na2 NOOP\r\n";
	struct run *r;

	(void)state;
	r = feed_all(S(in), 1000);
	assert_false(r->fatal);
	assert_int_equal(r->n, 2);
	assert_true(r->f[0].bad_eol);
	assert_true(r->f[0].has_literal);
	assert_null(r->f[0].data);
	assert_string_equal(r->f[1].line, "a2 NOOP");
	run_free(r);
}

/* A line of exactly n octets including CRLF. */
static char *
line_of(size_t n, const char *head, const char *end)
{
	char *s = malloc(n + 1);
	size_t h = strlen(head), e = strlen(end);

	assert_non_null(s);
	memcpy(s, head, h);
	memset(s + h, 'k', n - 2 - h - e);
	memcpy(s + n - 2 - e, end, e);
	memcpy(s + n - 2, "\r\n", 3);
	return s;
}

static void
test_maxline_boundary(void **state)
{
	char *ok = line_of(REPL_MAXLINE, "t1 LIST ", "");
	char *over = line_of(REPL_MAXLINE + 1, "t2 LIST ", "");
	struct run *r;

	(void)state;
	r = feed_all(ok, strlen(ok), 1000);
	assert_int_equal(r->n, 1);
	assert_false(r->f[0].toolong);
	assert_int_equal(r->f[0].len, REPL_MAXLINE - 2);
	run_free(r);
	r = feed_all(over, strlen(over), 1000);
	assert_int_equal(r->n, 1);
	assert_true(r->f[0].toolong);
	assert_true(r->f[0].len >= REPL_TAG_MAX);
	{
		char tag[REPL_TAG_MAX];

		assert_true(repl_parse_tag(r->f[0].line, tag));
		assert_string_equal(tag, "t2");
	}
	run_free(r);
	free(ok);
	free(over);
}

static void
test_overlong_line_then_next_command(void **state)
{
	char *over = line_of(20000, "t2 STORE a.example 24 alice INBOX ", ")");
	char *buf = malloc(30000);
	struct run *r;
	size_t n;

	(void)state;
	assert_non_null(buf);
	n = (size_t)sprintf(buf, "%st3 NOOP\r\n", over);
	r = feed_all(buf, n, 1000);
	assert_false(r->fatal);
	assert_int_equal(r->n, 2);
	assert_true(r->f[0].toolong);
	assert_false(r->f[0].has_literal);
	assert_string_equal(r->f[1].line, "t3 NOOP");
	assert_false(r->f[1].toolong);
	run_free(r);
	/* in small pieces as well */
	{
		size_t cuts[64], i;

		for (i = 0; i < 64; i++)
			cuts[i] = (i + 1) * (n / 65);
		r = feed(buf, n, 1000, cuts, 64);
		assert_int_equal(r->n, 2);
		assert_true(r->f[0].toolong);
		assert_string_equal(r->f[1].line, "t3 NOOP");
		run_free(r);
	}
	free(over);
	free(buf);
}

static void
test_overlong_line_with_literal(void **state)
{
	char *over = line_of(9000, "t2 SAVE a.example 24 alice INBOX ", " {10}");
	char *buf = malloc(12000);
	struct run *r;
	size_t n;

	(void)state;
	assert_non_null(buf);
	n = (size_t)sprintf(buf, "%s0123\n56789\r\nt3 NOOP\r\n", over);
	r = feed_all(buf, n, 1000);
	assert_false(r->fatal);
	assert_int_equal(r->n, 2);
	assert_true(r->f[0].toolong);
	assert_true(r->f[0].has_literal);
	assert_int_equal(r->f[0].literal_size, 10);
	assert_null(r->f[0].data);
	assert_false(r->f[0].toobig);
	assert_string_equal(r->f[1].line, "t3 NOOP");
	run_free(r);
	/* its literal not followed by CRLF: framing lost */
	n = (size_t)sprintf(buf, "%s0123456789XXt3 NOOP\r\n", over);
	r = feed_all(buf, n, 1000);
	assert_true(r->fatal);
	assert_string_equal(r->why, "literal not followed by CRLF");
	run_free(r);
	/* 20 digits at the end of an overlong line */
	free(over);
	over = line_of(9000, "t2 SAVE ", " {12345678901234567890}");
	r = feed_all(over, strlen(over), 1000);
	assert_true(r->fatal);
	run_free(r);
	free(over);
	free(buf);
}

static void
test_literal_too_big(void **state)
{
	static const char in[] =
		"t3 SAVE a.example 25 alice INBOX 0190f3a2c1aa7a3b77e0c1d2e3f40516 0 1718009000 () {11}\r\n"
		"01234567890\r\nt4 NOOP\r\n";
	static const char bad[] = "t3 SAVE x {11}\r\n01234567890XYt4 NOOP\r\n";
	struct repl_command c;
	const char *code, *text;
	struct repl_frame *fr;
	struct run *r;

	(void)state;
	r = feed_all(S(in), 10);
	assert_false(r->fatal);
	assert_int_equal(r->n, 2);
	assert_true(r->f[0].has_literal);
	assert_true(r->f[0].toobig);
	assert_int_equal(r->f[0].literal_size, 11);
	assert_null(r->f[0].data);
	assert_string_equal(r->f[1].line, "t4 NOOP");
	fr = calloc(1, sizeof *fr);
	assert_non_null(fr);
	memcpy(fr->line, r->f[0].line, r->f[0].len);
	fr->len = r->f[0].len;
	fr->has_literal = true;
	fr->literal_size = 11;
	fr->literal_toobig = true;
	fr->literal_fd = -1;
	assert_int_equal(repl_parse_command(fr, &c, &code, &text), REPL_P_BAD);
	assert_string_equal(code, "TOOBIG");
	assert_string_equal(c.tag, "t3");
	free(fr);
	run_free(r);
	/* exactly maxliteral is kept */
	r = feed_all(S(in), 11);
	assert_int_equal(r->n, 2);
	assert_false(r->f[0].toobig);
	assert_int_equal(r->f[0].datalen, 11);
	run_free(r);
	/* discarded literal followed by garbage */
	r = feed_all(S(bad), 10);
	assert_true(r->fatal);
	assert_string_equal(r->why, "literal not followed by CRLF");
	run_free(r);
}

static void
test_literal_short_and_long_are_fatal(void **state)
{
	/* announced 20, sent 10: the next command is swallowed */
	static const char shrt[] = "f1 SAVE x {20}\r\n0123456789\r\nf2 NOOP\r\nf3 NOOP\r\n";
	static const char lng[] = "f1 SAVE x {5}\r\n0123456789\r\nf2 NOOP\r\n";
	static const char half[] = "f1 SAVE x {5}\r\n01234\rX";
	struct run *r;

	(void)state;
	r = feed_all(S(shrt), 1000);
	assert_true(r->fatal);
	assert_string_equal(r->why, "literal not followed by CRLF");
	assert_int_equal(r->n, 0);
	run_free(r);
	r = feed_all(S(lng), 1000);
	assert_true(r->fatal);
	assert_string_equal(r->why, "literal not followed by CRLF");
	run_free(r);
	r = feed_all(S(half), 1000);
	assert_true(r->fatal);
	run_free(r);
}

static void
test_bad_literal_sizes(void **state)
{
	static const char *const fatal[] = {
		"t SAVE x {12345678901234567890}\r\n",      /* 20 digits */
		"t SAVE x {00000000000000000001}\r\n",      /* 20 digits, small value */
		"t SAVE x {9223372036854775808}\r\n",       /* 2^63 */
		"t SAVE x {9999999999999999999}\r\n",
	};
	static const char *const notmarker[] = {
		"t SAVE x {}\r\n", "t SAVE x {-1}\r\n", "t SAVE x {1 }\r\n", "t SAVE x 5}\r\n",
		"t SAVE x {5}x\r\n", "t SAVE x {0x5}\r\n",
	};
	static const char max[] = "t SAVE x {9223372036854775807}\r\n";
	struct run *r;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof fatal / sizeof fatal[0]; i++) {
		r = feed_all(fatal[i], strlen(fatal[i]), 1000);
		assert_true(r->fatal);
		assert_string_equal(r->why, "bad literal size");
		run_free(r);
	}
	for (i = 0; i < sizeof notmarker / sizeof notmarker[0]; i++) {
		r = feed_all(notmarker[i], strlen(notmarker[i]), 1000);
		assert_false(r->fatal);
		assert_int_equal(r->n, 1);
		assert_false(r->f[0].has_literal);
		run_free(r);
	}
	/* 2^63-1: too big, being discarded: no frame yet, busy */
	{
		struct repl_framer *fw = repl_framer_new(1000);
		struct evbuffer *in = evbuffer_new();
		struct repl_frame *fr = malloc(sizeof *fr);
		const char *why;

		assert_non_null(fr);
		assert_false(repl_framer_busy(fw));
		evbuffer_add(in, S(max));
		assert_int_equal(repl_framer_next(fw, in, fr, &why), REPL_F_MORE);
		assert_true(repl_framer_busy(fw));
		evbuffer_add(in, S("0123456789"));
		assert_int_equal(repl_framer_next(fw, in, fr, &why), REPL_F_MORE);
		assert_int_equal(evbuffer_get_length(in), 0);
		assert_true(repl_framer_busy(fw));
		repl_framer_free(&fw);
		repl_framer_free(&fw);
		evbuffer_free(in);
		free(fr);
	}
	/* leading zeros keep the framing; the parser rejects them */
	r = feed_all(S("t SAVE x {007}\r\nabcdefg\r\nu NOOP\r\n"), 1000);
	assert_int_equal(r->n, 2);
	assert_int_equal(r->f[0].literal_size, 7);
	assert_string_equal(r->f[1].line, "u NOOP");
	run_free(r);
}

static void
test_busy_tracks_partial_input(void **state)
{
	struct repl_framer *fw = repl_framer_new(100);
	struct evbuffer *in = evbuffer_new();
	struct repl_frame *fr = malloc(sizeof *fr);
	const char *why;

	(void)state;
	assert_non_null(fr);
	evbuffer_add(in, S("t1 NO"));
	assert_int_equal(repl_framer_next(fw, in, fr, &why), REPL_F_MORE);
	assert_true(repl_framer_busy(fw));
	evbuffer_add(in, S("OP\r\nt2 SAVE x {2}\r\nab"));
	assert_int_equal(repl_framer_next(fw, in, fr, &why), REPL_F_FRAME);
	assert_string_equal(fr->line, "t1 NOOP");
	assert_int_equal(repl_framer_next(fw, in, fr, &why), REPL_F_MORE);
	assert_true(repl_framer_busy(fw));
	evbuffer_add(in, S("\r"));
	assert_int_equal(repl_framer_next(fw, in, fr, &why), REPL_F_MORE);
	evbuffer_add(in, S("\n"));
	assert_int_equal(repl_framer_next(fw, in, fr, &why), REPL_F_FRAME);
	assert_false(repl_framer_busy(fw));
	assert_true(fr->literal_fd >= 0);
	close(fr->literal_fd);
	/* a literal in progress is closed by free */
	evbuffer_add(in, S("t3 SAVE x {50}\r\nabc"));
	assert_int_equal(repl_framer_next(fw, in, fr, &why), REPL_F_MORE);
	repl_framer_free(&fw);
	evbuffer_free(in);
	free(fr);
}

/* repl_framer_read: the loop both connection ends share. */
struct sink_log {
	char lines[6][REPL_MAXLINE + 1];
	int n;
	int limit;            /* frames the sink takes */
};

static bool
sink_more(void *arg)
{
	const struct sink_log *l = arg;

	return l->n < l->limit;
}

static void
sink_frame(void *arg, struct repl_frame *f)
{
	struct sink_log *l = arg;

	snprintf(l->lines[l->n++], sizeof(l->lines[0]), "%s", f->line);
	if (f->literal_fd != -1) {
		close(f->literal_fd);
		f->literal_fd = -1;
	}
}

static void
test_read_stops_when_sink_is_full_then_resumes(void **state)
{
	struct repl_framer *fw = repl_framer_new(100);
	struct evbuffer *in = evbuffer_new();
	struct repl_frame *fr = calloc(1, sizeof *fr);
	struct sink_log log = { .limit = 2 };
	const struct repl_frame_sink sink = {
		.more = sink_more, .frame = sink_frame, .arg = &log,
	};
	const char *why = NULL;

	(void)state;
	assert_non_null(fr);
	fr->literal_fd = -1;
	evbuffer_add(in, S("a1 NOOP\r\na2 SAVE x {2}\r\nab\r\na3 NOOP\r\na4"));
	assert_int_equal(repl_framer_read(fw, in, fr, &sink, &why), REPL_F_FRAME);
	assert_int_equal(log.n, 2);
	assert_string_equal(log.lines[0], "a1 NOOP");
	assert_string_equal(log.lines[1], "a2 SAVE x {2}");
	assert_true(evbuffer_get_length(in) > 0);
	log.limit = 6;
	assert_int_equal(repl_framer_read(fw, in, fr, &sink, &why), REPL_F_MORE);
	assert_int_equal(log.n, 3);
	assert_string_equal(log.lines[2], "a3 NOOP");
	evbuffer_add(in, S(" NOOP\r\nb1 SAVE x {5}\r\n0123456789\r\n"));
	assert_int_equal(repl_framer_read(fw, in, fr, &sink, &why), REPL_F_FATAL);
	assert_int_equal(log.n, 4);
	assert_string_equal(log.lines[3], "a4 NOOP");
	assert_non_null(why);
	repl_framer_free(&fw);
	evbuffer_free(in);
	free(fr);
}

/* A 10 MB literal in 64 KiB pieces: the evbuffer is emptied every time. */
static void
test_big_literal_is_streamed(void **state)
{
	const size_t total = 10u * 1024 * 1024, piece = 65536;
	struct repl_framer *fw = repl_framer_new(64u * 1024 * 1024);
	struct evbuffer *in = evbuffer_new();
	struct repl_frame *fr = malloc(sizeof *fr);
	char *chunk = malloc(piece);
	const char *why;
	size_t sent = 0, i;
	char hdr[64];

	(void)state;
	assert_non_null(fr);
	assert_non_null(chunk);
	snprintf(hdr, sizeof hdr, "b1 SAVE x {%zu}\r\n", total);
	evbuffer_add(in, hdr, strlen(hdr));
	while (sent < total) {
		for (i = 0; i < piece; i++)
			chunk[i] = (char)((sent + i) * 7);
		evbuffer_add(in, chunk, piece);
		sent += piece;
		assert_int_equal(repl_framer_next(fw, in, fr, &why), REPL_F_MORE);
		assert_int_equal(evbuffer_get_length(in), 0);
	}
	evbuffer_add(in, S("\r\n"));
	assert_int_equal(repl_framer_next(fw, in, fr, &why), REPL_F_FRAME);
	assert_int_equal(fr->literal_size, total);
	assert_int_equal(lseek(fr->literal_fd, 0, SEEK_END), (off_t)total);
	assert_int_equal(pread(fr->literal_fd, chunk, 16, 5000000), 16);
	for (i = 0; i < 16; i++)
		assert_int_equal((unsigned char)chunk[i], (unsigned char)((5000000 + i) * 7));
	close(fr->literal_fd);
	repl_framer_free(&fw);
	evbuffer_free(in);
	free(fr);
	free(chunk);
}

/* Random octets (with many LF, braces and digits): never a crash. */
static void
test_random_input_never_crashes(void **state)
{
	static const char alphabet[] = "ab {}0123456789\r\n\n\0*";
	unsigned seed = 4242;
	int round;

	(void)state;
	for (round = 0; round < 300; round++) {
		struct repl_framer *fw = repl_framer_new(64);
		struct evbuffer *in = evbuffer_new();
		struct repl_frame *fr = malloc(sizeof *fr);
		char buf[512];
		int j, k;

		assert_non_null(fr);
		for (k = 0; k < 20; k++) {
			size_t n;

			seed = seed * 1103515245u + 12345u;
			n = (seed >> 16) % sizeof buf;
			for (j = 0; j < (int)n; j++) {
				seed = seed * 1103515245u + 12345u;
				buf[j] = alphabet[(seed >> 16) % (sizeof alphabet - 1)];
			}
			evbuffer_add(in, buf, n);
			for (;;) {
				const char *why;
				enum repl_frame_result res = repl_framer_next(fw, in, fr, &why);

				if (res == REPL_F_FRAME) {
					struct repl_command c;
					const char *code, *text;

					assert_true(fr->len <= REPL_MAXLINE);
					(void)repl_parse_command(fr, &c, &code, &text);
					if (fr->literal_fd >= 0)
						close(fr->literal_fd);
					continue;
				}
				if (res == REPL_F_FATAL) {
					assert_non_null(why);
					k = 20;
				}
				break;
			}
		}
		repl_framer_free(&fw);
		evbuffer_free(in);
		free(fr);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stream_whole),
		cmocka_unit_test(test_stream_split_at_every_octet),
		cmocka_unit_test(test_bad_line_ends),
		cmocka_unit_test(test_bad_eol_literal_is_discarded),
		cmocka_unit_test(test_maxline_boundary),
		cmocka_unit_test(test_overlong_line_then_next_command),
		cmocka_unit_test(test_overlong_line_with_literal),
		cmocka_unit_test(test_literal_too_big),
		cmocka_unit_test(test_literal_short_and_long_are_fatal),
		cmocka_unit_test(test_bad_literal_sizes),
		cmocka_unit_test(test_busy_tracks_partial_input),
		cmocka_unit_test(test_read_stops_when_sink_is_full_then_resumes),
		cmocka_unit_test(test_big_literal_is_streamed),
		cmocka_unit_test(test_random_input_never_crashes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
