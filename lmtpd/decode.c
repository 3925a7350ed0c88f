/* SPDX-License-Identifier: MIT */
/*
 * lmtpd/decode.c - the body decoder: DATA dot-unstuffing and end
 * detection, CRLF -> LF, line length, size and NUL checks; BDAT chunks
 * take the same path without the dot rules.
 *
 * Runs in:  lmtpd.
 * Trust:    the body is client-controlled.  Only CRLF "." CRLF (or "."
 *           CRLF at the very start) ends DATA: a bare LF ends a line for
 *           storage but never the data, so "LF . CRLF" cannot smuggle
 *           commands.  Dot-stuffing is a property of CRLF lines: a dot
 *           after a bare LF is data and is kept.
 * State:    fed in arbitrary pieces; every decision that needs the next
 *           byte (a CR, a leading dot) is kept in struct lmtp_dec.
 */
#include <string.h>

#include "lmtpd/lmtpd_int.h"

void
lmtp_dec_init(struct lmtp_dec *d, enum lmtp_dec_mode mode, uint64_t max_size,
	      uint64_t max_line)
{
	memset(d, 0, sizeof(*d));
	d->mode = mode;
	d->max_size = max_size;
	d->max_line = max_line;
	d->bol = true;
	d->bol_crlf = true;
}

static void
dec_error(struct lmtp_dec *d, enum lmtp_body_err err)
{
	if (d->err == LMTP_BODY_OK)
		d->err = err;
}

/* Pass decoded bytes on, unless the body is already refused. */
static void
dec_out(struct lmtp_dec *d, const char *p, size_t n, const struct lmtp_sink *sink)
{
	if (n == 0 || d->err != LMTP_BODY_OK)
		return;
	if (d->max_size != 0 && d->size + n + d->lfs > d->max_size) {
		dec_error(d, LMTP_BODY_TOO_BIG);
		return;
	}
	d->size += n;
	sink->write(sink->ctx, p, n);
}

/* One more octet on the current line. */
static void
dec_count(struct lmtp_dec *d)
{
	d->line_len++;
	if (d->max_line != 0 && d->line_len > d->max_line)
		dec_error(d, LMTP_BODY_LONG_LINE);
}

/* An LF was accepted as a line end (it stays in the output run). */
static void
dec_newline(struct lmtp_dec *d, bool crlf)
{
	d->lfs++;
	d->line_len = 0;
	d->bol = true;
	d->bol_crlf = crlf;
	d->dot = false;
}

/*
 * The byte after a held-back CR.  Returns true if it was consumed here
 * (LF: a line end, or the end of DATA); otherwise the CR was passed on as
 * a bare CR and the byte is still to be handled.
 */
static bool
dec_after_cr(struct lmtp_dec *d, unsigned char c, const struct lmtp_sink *sink)
{
	d->cr = false;
	if (c == '\n') {
		if (d->mode == LMTP_DEC_DATA && d->dot && d->bol_crlf)
			d->done = true;
		else
			dec_newline(d, true);
		return true;
	}
	dec_out(d, "\r", 1, sink);
	dec_count(d);
	d->dot = false;
	return false;
}

size_t
lmtp_dec_feed(struct lmtp_dec *d, const char *in, size_t len,
	      const struct lmtp_sink *sink)
{
	size_t i = 0, run = 0;  /* in[run..i) is output not yet passed on */
	unsigned char c;

	while (i < len && !d->done) {
		if (!d->cr && !d->bol) {
			/* the octets up to the next CR, LF or NUL in one step:
			 * they only add to the line (most of a body) */
			size_t j = i;

			while (j < len && in[j] != '\r' && in[j] != '\n' && in[j] != '\0')
				j++;
			if (j > i) {
				d->dot = false;
				d->line_len += j - i;
				if (d->max_line != 0 && d->line_len > d->max_line)
					dec_error(d, LMTP_BODY_LONG_LINE);
				i = j;
				continue;
			}
		}
		c = (unsigned char)in[i];
		if (d->cr && dec_after_cr(d, c, sink)) {
			i++;          /* the LF starts the next run */
			if (d->done)
				return i;
			continue;
		}
		if (d->bol) {
			d->bol = false;
			if (d->mode == LMTP_DEC_DATA && c == '.' && d->bol_crlf) {
				dec_out(d, in + run, i - run, sink);
				run = ++i;    /* drop the stuffed dot */
				d->dot = true;
				dec_count(d);
				continue;
			}
		}
		if (c == '\r') {
			dec_out(d, in + run, i - run, sink);
			run = ++i;            /* hold the CR back */
			d->cr = true;
			continue;
		}
		d->dot = false;
		if (c == '\n') {
			dec_newline(d, false);
		} else {
			if (c == '\0')
				dec_error(d, LMTP_BODY_NUL);
			dec_count(d);
		}
		i++;
	}
	dec_out(d, in + run, i - run, sink);
	return i;
}

void
lmtp_dec_finish(struct lmtp_dec *d, const struct lmtp_sink *sink)
{
	if (d->cr) {
		d->cr = false;
		dec_out(d, "\r", 1, sink);
		dec_count(d);
	}
	d->done = true;
}
