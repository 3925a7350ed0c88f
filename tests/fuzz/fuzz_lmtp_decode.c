/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/fuzz_lmtp_decode.c - the DATA / BDAT body decoder
 * (lmtpd/decode.c), fed the same body once whole and once in pieces.
 *
 * Input:    4 octets of settings (mode, size and line limits, seed of
 *           the piece sizes), then the body as the client sends it.
 * Oracle:   the sanitizers, and the decoder's promise to keep every
 *           decision across pieces: both runs must agree on the end of
 *           the data (octets consumed) and on whether the body is refused,
 *           and an accepted body must come out the same; the output never
 *           exceeds a size limit, holds no NUL, and d->size counts what
 *           the sink got.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lmtpd/lmtpd_int.h"
#include "privsep/privsep.h"
#include "tests/fuzz/fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct out {
	char *buf;
	size_t len, cap;
};

static void
out_write(void *ctx, const char *p, size_t n)
{
	struct out *o = ctx;

	if (o->len + n > o->cap)
		abort();
	if (memchr(p, '\0', n) != NULL)
		abort();
	memcpy(o->buf + o->len, p, n);
	o->len += n;
}

struct run {
	struct lmtp_dec d;
	struct out o;
	size_t used;
};

static void
run_init(struct run *r, enum lmtp_dec_mode mode, uint64_t max_size,
	 uint64_t max_line, size_t cap)
{
	lmtp_dec_init(&r->d, mode, max_size, max_line);
	r->o.buf = xmalloc(cap + 1);
	r->o.len = 0;
	r->o.cap = cap;
	r->used = 0;
}

static void
run_feed(struct run *r, const char *in, size_t len, struct fuzz_rng *rng)
{
	const struct lmtp_sink sink = { out_write, &r->o };
	size_t piece, got;

	while (r->used < len && !r->d.done) {
		piece = len - r->used;
		if (rng != NULL)
			piece = 1 + fuzz_rng_below(rng, piece < 9 ? piece : 9);
		got = lmtp_dec_feed(&r->d, in + r->used, piece, &sink);
		if (got > piece || (got < piece && !r->d.done))
			abort();
		r->used += got;
	}
	if (r->d.mode == LMTP_DEC_BDAT)
		lmtp_dec_finish(&r->d, &sink);
}

static void
run_check(const struct run *r)
{
	if (r->d.size != r->o.len)
		abort();
	if (r->d.max_size != 0 && r->d.err == LMTP_BODY_OK &&
	    lmtp_dec_vsize(&r->d) > r->d.max_size)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint64_t sizes[] = { 0, 1, 7, 64, 1000 };
	static const uint64_t lines[] = { 0, 1, 4, 78, 998 };
	struct run whole, pieces;
	struct fuzz_rng rng;
	enum lmtp_dec_mode mode;
	uint64_t max_size, max_line;
	uint8_t ctl;

	ctl = (uint8_t)fuzz_take(&data, &size, 1);
	mode = (ctl & 1) ? LMTP_DEC_BDAT : LMTP_DEC_DATA;
	max_size = sizes[(ctl >> 1) % 5];
	max_line = lines[(ctl >> 4) % 5];
	fuzz_rng_seed(&rng, fuzz_take(&data, &size, 3));

	/* a CR held back may come out as a bare CR at the end */
	run_init(&whole, mode, max_size, max_line, size + 1);
	run_init(&pieces, mode, max_size, max_line, size + 1);
	run_feed(&whole, (const char *)data, size, NULL);
	run_feed(&pieces, (const char *)data, size, &rng);
	run_check(&whole);
	run_check(&pieces);
	/* where the data ends must never depend on the pieces */
	if (whole.used != pieces.used || whole.d.done != pieces.d.done)
		abort();
	/* a refused body is refused either way (which limit is hit first may
	 * differ, and what reached the sink before is discarded) */
	if ((whole.d.err == LMTP_BODY_OK) != (pieces.d.err == LMTP_BODY_OK))
		abort();
	if (whole.d.err == LMTP_BODY_OK &&
	    (whole.d.size != pieces.d.size || whole.d.lfs != pieces.d.lfs ||
	     whole.o.len != pieces.o.len ||
	     memcmp(whole.o.buf, pieces.o.buf, whole.o.len) != 0))
		abort();
	free(whole.o.buf);
	free(pieces.o.buf);
	return 0;
}
