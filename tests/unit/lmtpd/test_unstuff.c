/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/lmtpd/test_unstuff.c - the body decoder: dot-unstuffing, end
 * of DATA (and what must not end it), CRLF -> LF, bare LF and CR, NUL,
 * line and size limits, BDAT chunks; every case is also fed split at every
 * possible boundary (two and three pieces) and byte by byte.  Then the
 * memfd spool: content, size, seals.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "lmtpd/lmtpd_int.h"

int __wrap_psep_msg_send(int sock, uint16_t type, uint64_t id, const void *body,
			 size_t body_len, int fd);

int
__wrap_psep_msg_send(int sock, uint16_t type, uint64_t id, const void *body,
		     size_t body_len, int fd)
{
	(void)sock, (void)type, (void)id, (void)body, (void)body_len, (void)fd;
	errno = EPIPE;
	return -1;
}

struct collect {
	char buf[4096];
	size_t len;
};

static void
collect_write(void *ctx, const char *p, size_t n)
{
	struct collect *c = ctx;

	assert_true(c->len + n <= sizeof(c->buf));
	memcpy(c->buf + c->len, p, n);
	c->len += n;
}

struct dcase {
	const char *name;
	enum lmtp_dec_mode mode;
	const char *in;
	size_t in_len;        /* 0 = strlen(in) */
	const char *out;      /* expected output (compared if err == OK) */
	size_t out_len;       /* 0 = strlen(out) */
	size_t consumed;      /* 0 = all of in */
	bool done;
	enum lmtp_body_err err;
	uint64_t max_size;
	uint64_t max_line;
	uint64_t lfs;         /* checked if err == OK */
};

static const struct dcase dcases[] = {
	{ "empty body", LMTP_DEC_DATA, ".\r\n", 0, "", 0, 0, true, LMTP_BODY_OK, 0, 0, 0 },
	{ "one line", LMTP_DEC_DATA, "a\r\n.\r\n", 0, "a\n", 0, 0, true, LMTP_BODY_OK, 0, 0, 1 },
	{ "stuffed dot", LMTP_DEC_DATA, "a\r\n..b\r\n.\r\n", 0, "a\n.b\n", 0, 0, true,
	  LMTP_BODY_OK, 0, 0, 2 },
	{ "dot line", LMTP_DEC_DATA, "..\r\n.\r\n", 0, ".\n", 0, 0, true, LMTP_BODY_OK, 0, 0, 1 },
	{ "dot space", LMTP_DEC_DATA, ". \r\n.\r\n", 0, " \n", 0, 0, true, LMTP_BODY_OK, 0, 0, 1 },
	{ "dot then text", LMTP_DEC_DATA, ".x\r\n.\r\n", 0, "x\n", 0, 0, true, LMTP_BODY_OK, 0, 0, 1 },
	{ "rest stays", LMTP_DEC_DATA, "a\r\n.\r\nQUIT\r\n", 0, "a\n", 0, 6, true,
	  LMTP_BODY_OK, 0, 0, 1 },
	{ "end at start, rest", LMTP_DEC_DATA, ".\r\nNOOP\r\n", 0, "", 0, 3, true,
	  LMTP_BODY_OK, 0, 0, 0 },
	{ "LF.CRLF does not end", LMTP_DEC_DATA, "a\n.\r\nX\r\n.\r\n", 0, "a\n.\nX\n", 0, 0,
	  true, LMTP_BODY_OK, 0, 0, 3 },
	{ "dot after bare LF kept", LMTP_DEC_DATA, "a\n..b\nc\r\n.\r\n", 0, "a\n..b\nc\n", 0, 0,
	  true, LMTP_BODY_OK, 0, 0, 3 },
	{ "CRLF.LF does not end", LMTP_DEC_DATA, "a\r\n.\nb\r\n.\r\n", 0, "a\n\nb\n", 0, 0,
	  true, LMTP_BODY_OK, 0, 0, 3 },
	{ "LF.LF does not end", LMTP_DEC_DATA, "a\n.\n", 0, "a\n.\n", 0, 0, false,
	  LMTP_BODY_OK, 0, 0, 2 },
	{ "smuggling attempt", LMTP_DEC_DATA, "a\n.\nMAIL FROM:<x>\r\n.\r\n", 0,
	  "a\n.\nMAIL FROM:<x>\n", 0, 0, true, LMTP_BODY_OK, 0, 0, 3 },
	{ "CR.CR does not end", LMTP_DEC_DATA, "a\r.\r\n.\r\n", 0, "a\r.\n", 0, 0, true,
	  LMTP_BODY_OK, 0, 0, 1 },
	{ "bare CR kept", LMTP_DEC_DATA, "a\rb\r\n.\r\n", 0, "a\rb\n", 0, 0, true,
	  LMTP_BODY_OK, 0, 0, 1 },
	{ "CR CR LF", LMTP_DEC_DATA, "a\r\r\n.\r\n", 0, "a\r\n", 0, 0, true, LMTP_BODY_OK, 0, 0, 1 },
	{ "bare LF kept", LMTP_DEC_DATA, "a\nb\r\n.\r\n", 0, "a\nb\n", 0, 0, true,
	  LMTP_BODY_OK, 0, 0, 2 },
	{ "dot CR x", LMTP_DEC_DATA, ".\rx\r\n.\r\n", 0, "\rx\n", 0, 0, true, LMTP_BODY_OK, 0, 0, 1 },
	{ "unfinished", LMTP_DEC_DATA, "a\r\n.", 0, "a\n", 0, 0, false, LMTP_BODY_OK, 0, 0, 1 },
	{ "unfinished CR", LMTP_DEC_DATA, "a\r\n.\r", 0, "a\n", 0, 0, false, LMTP_BODY_OK, 0, 0, 1 },
	{ "NUL", LMTP_DEC_DATA, "a\0b\r\n.\r\n", 8, NULL, 0, 0, true, LMTP_BODY_NUL, 0, 0, 0 },
	{ "line at limit", LMTP_DEC_DATA, "abcd\r\n.\r\n", 0, "abcd\n", 0, 0, true,
	  LMTP_BODY_OK, 0, 4, 1 },
	{ "line over limit", LMTP_DEC_DATA, "abcde\r\nx\r\n.\r\n", 0, NULL, 0, 0, true,
	  LMTP_BODY_LONG_LINE, 0, 4, 0 },
	{ "stuffed line over limit", LMTP_DEC_DATA, "..abc\r\n.\r\n", 0, NULL, 0, 0, true,
	  LMTP_BODY_LONG_LINE, 0, 4, 0 },
	{ "bare CR counts", LMTP_DEC_DATA, "ab\r\rc\r\n.\r\n", 0, NULL, 0, 0, true,
	  LMTP_BODY_LONG_LINE, 0, 3, 0 },
	{ "size at limit", LMTP_DEC_DATA, "12345678\r\n.\r\n", 0, "12345678\n", 0, 0, true,
	  LMTP_BODY_OK, 10, 0, 1 },
	{ "size over limit", LMTP_DEC_DATA, "123456789\r\n.\r\n", 0, NULL, 0, 0, true,
	  LMTP_BODY_TOO_BIG, 10, 0, 0 },
	{ "bare LF counts as CRLF", LMTP_DEC_DATA, "1234\n5678\n.\r\n", 0, NULL, 0, 0, false,
	  LMTP_BODY_TOO_BIG, 11, 0, 0 },
	{ "first error wins", LMTP_DEC_DATA, "a\0bcdef\r\n.\r\n", 12, NULL, 0, 0, true,
	  LMTP_BODY_NUL, 0, 3, 0 },
	{ "bdat plain", LMTP_DEC_BDAT, "a\r\n.\r\nb", 0, "a\n.\nb", 0, 0, false,
	  LMTP_BODY_OK, 0, 0, 2 },
	{ "bdat dots kept", LMTP_DEC_BDAT, "..x\r\n", 0, "..x\n", 0, 0, false, LMTP_BODY_OK, 0, 0, 1 },
	{ "bdat CR held", LMTP_DEC_BDAT, "a\r", 0, "a", 0, 0, false, LMTP_BODY_OK, 0, 0, 0 },
	{ "bdat NUL", LMTP_DEC_BDAT, "\0", 1, NULL, 0, 0, false, LMTP_BODY_NUL, 0, 0, 0 },
};

/* Decode c->in in the pieces given by the cut points; check the result. */
static void
run_case(const struct dcase *c, const size_t *cuts, size_t ncuts)
{
	size_t len = c->in_len ? c->in_len : strlen(c->in);
	size_t want = c->consumed ? c->consumed : len;
	struct collect col = { .len = 0 };
	struct lmtp_sink sink = { .write = collect_write, .ctx = &col };
	struct lmtp_dec d;
	size_t pos = 0, k, end, used, piece;

	lmtp_dec_init(&d, c->mode, c->max_size, c->max_line);
	for (k = 0; k <= ncuts && !d.done; k++) {
		end = k < ncuts ? cuts[k] : len;
		if (end < pos)
			continue;
		piece = end - pos;
		used = lmtp_dec_feed(&d, c->in + pos, piece, &sink);
		pos += used;
		if (!d.done)
			assert_int_equal(used, piece);
	}
	assert_int_equal(pos, want);
	assert_int_equal(d.done, c->done);
	assert_int_equal(d.err, c->err);
	if (c->err == LMTP_BODY_OK) {
		size_t olen = c->out_len ? c->out_len : strlen(c->out);

		assert_int_equal(col.len, olen);
		assert_memory_equal(col.buf, c->out, olen);
		assert_true(d.size == olen);
		assert_true(d.lfs == c->lfs);
		assert_true(lmtp_dec_vsize(&d) == olen + c->lfs);
	}
}

static void
test_decode_whole(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(dcases) / sizeof(dcases[0]); i++) {
		print_message("# case: %s\n", dcases[i].name);
		run_case(&dcases[i], NULL, 0);
	}
}

static void
test_decode_split_two_and_three(void **state)
{
	size_t i, a, b, len, cuts[2];

	(void)state;
	for (i = 0; i < sizeof(dcases) / sizeof(dcases[0]); i++) {
		len = dcases[i].in_len ? dcases[i].in_len : strlen(dcases[i].in);
		for (a = 0; a <= len; a++) {
			cuts[0] = a;
			run_case(&dcases[i], cuts, 1);
			for (b = a; b <= len; b++) {
				cuts[1] = b;
				run_case(&dcases[i], cuts, 2);
			}
		}
	}
}

static void
test_decode_byte_by_byte(void **state)
{
	size_t i, k, len, cuts[64];

	(void)state;
	for (i = 0; i < sizeof(dcases) / sizeof(dcases[0]); i++) {
		len = dcases[i].in_len ? dcases[i].in_len : strlen(dcases[i].in);
		assert_true(len < 64);
		for (k = 0; k < len; k++)
			cuts[k] = k + 1;
		run_case(&dcases[i], cuts, len);
	}
}

static void
test_bdat_finish(void **state)
{
	struct collect col = { .len = 0 };
	struct lmtp_sink sink = { .write = collect_write, .ctx = &col };
	struct lmtp_dec d;

	(void)state;
	/* CR at the end of one chunk, LF at the start of the next */
	lmtp_dec_init(&d, LMTP_DEC_BDAT, 0, 0);
	lmtp_dec_feed(&d, "a\r", 2, &sink);
	lmtp_dec_feed(&d, "\nb", 2, &sink);
	lmtp_dec_finish(&d, &sink);
	assert_int_equal(col.len, 3);
	assert_memory_equal(col.buf, "a\nb", 3);
	assert_true(d.done);
	/* a CR left at LAST is a bare CR */
	col.len = 0;
	lmtp_dec_init(&d, LMTP_DEC_BDAT, 0, 0);
	lmtp_dec_feed(&d, "a\r", 2, &sink);
	lmtp_dec_finish(&d, &sink);
	assert_int_equal(col.len, 2);
	assert_memory_equal(col.buf, "a\r", 2);
	assert_true(d.size == 2 && d.lfs == 0);
}

static void
test_long_body_discarded(void **state)
{
	struct collect col = { .len = 0 };
	struct lmtp_sink sink = { .write = collect_write, .ctx = &col };
	char chunk[1000];
	struct lmtp_dec d;
	int i;

	(void)state;
	memset(chunk, 'x', sizeof(chunk));
	lmtp_dec_init(&d, LMTP_DEC_DATA, 2000, 0);
	for (i = 0; i < 100; i++)
		assert_int_equal(lmtp_dec_feed(&d, chunk, sizeof(chunk), &sink), sizeof(chunk));
	assert_int_equal(d.err, LMTP_BODY_TOO_BIG);
	assert_true(col.len <= 2000);
	assert_int_equal(lmtp_dec_feed(&d, "\r\n.\r\nNOOP", 9, &sink), 5);
	assert_true(d.done);
}

static void
test_spool_seal(void **state)
{
	struct lmtp_spool *sp = NULL;
	struct lmtp_fdref *body = NULL, *ref;
	struct lmtp_sink sink;
	struct lmtp_dec d;
	static char big[200000];
	char buf[64];
	uint64_t size;
	int seals;

	(void)state;
	assert_int_equal(lmtp_spool_open(&sp), 0);
	sink = lmtp_spool_sink(sp);
	lmtp_dec_init(&d, LMTP_DEC_DATA, 0, 0);
	memset(big, 'y', sizeof(big));
	lmtp_dec_feed(&d, "Subject: x\r\n\r\n", 14, &sink);
	lmtp_dec_feed(&d, big, sizeof(big), &sink);
	lmtp_dec_feed(&d, "\r\n..end\r\n.\r\n", 12, &sink);
	assert_true(d.done);
	assert_int_equal(lmtp_spool_error(sp), 0);
	assert_int_equal(lmtp_spool_finish(sp, &body, &size), 0);
	assert_true(size == 12 + sizeof(big) + 1 + 5);
	assert_true(size == d.size);
	seals = fcntl(body->fd, F_GET_SEALS);
	assert_int_equal(seals, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE);
	assert_int_equal(pread(body->fd, buf, 12, 0), 12);
	assert_memory_equal(buf, "Subject: x\n\n", 12);
	assert_int_equal(pread(body->fd, buf, 5, (off_t)size - 5), 5);
	assert_memory_equal(buf, ".end\n", 5);
	assert_int_equal(lseek(body->fd, 0, SEEK_CUR), 0);
	assert_int_equal(write(body->fd, "z", 1), -1);
	assert_int_equal(errno, EPERM);
	assert_int_equal(ftruncate(body->fd, 0), -1);
	lmtp_spool_free(&sp);
	assert_null(sp);
	ref = lmtp_fdref_get(body);
	assert_int_equal(ref->refs, 2);
	lmtp_fdref_put(&body);
	assert_null(body);
	assert_int_equal(ref->refs, 1);
	lmtp_fdref_put(&ref);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_decode_whole),
		cmocka_unit_test(test_decode_split_two_and_three),
		cmocka_unit_test(test_decode_byte_by_byte),
		cmocka_unit_test(test_bdat_finish),
		cmocka_unit_test(test_long_body_discarded),
		cmocka_unit_test(test_spool_seal),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
