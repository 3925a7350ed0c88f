/* SPDX-License-Identifier: MIT */
/*
 * bench/load_msg.c - the message lmtp-load sends: a fixed-length header
 * block (unique Message-ID per message) and one body shared by every
 * message, built once: printable lines of at most 78 characters, CRLF,
 * including lines "." and ".." and lines starting with '.', so the server's
 * dot-unstuffing is exercised; the wire copy is dot-stuffed and ends with
 * ".\r\n".
 *
 * Runs in:  the benchmark client.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "bench/load_int.h"

#define HDR_FMT \
	"From: lmtp-load <load@lmtp-load.invalid>\r\n" \
	"To: undisclosed-recipients:;\r\n" \
	"Subject: lmtp-load message %010lu\r\n" \
	"Date: %s\r\n" \
	"Message-ID: <%s.%010lu@lmtp-load.invalid>\r\n" \
	"\r\n"

#define LINE_MAX_CHARS 78u
#define MAX_BODY_LINES (BENCH_MAX_BYTES / 2 + 2)

static const char fill_chars[] =
	"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_+=/";

/* Content of body line k, `len` characters, into line[]. */
static void
make_line(unsigned long k, size_t len, char *line)
{
	size_t i;

	for (i = 0; i < len; i++) {
		if (i % 10 == 9 && i + 1 < len)
			line[i] = ' ';
		else
			line[i] = fill_chars[(k * 7 + i) % (sizeof(fill_chars) - 1)];
	}
	if (k == 1 || k == 2) {         /* "." and ".." alone */
		for (i = 0; i < len; i++)
			line[i] = '.';
	} else if (k % 7 == 3 && len > 0) {
		line[0] = '.';
	}
}

/* Length of body line k when `r` bytes (incl. CRLFs) remain; never leaves
 * a single byte, which could not form a line. */
static size_t
line_len(unsigned long k, size_t r)
{
	size_t want = k == 1 ? 1 : k == 2 ? 2 : LINE_MAX_CHARS;
	size_t len = want < r - 2 ? want : r - 2;

	if (r - len - 2 == 1)
		len--;
	return len;
}

static int
build_body(struct bench_tmpl *t)
{
	char line[LINE_MAX_CHARS + 1];
	size_t r = t->body_len, w = 0, l = 0;
	unsigned long k;

	/* Worst case every line is stuffed: one extra byte per 2 bytes. */
	t->body_wire = malloc(t->body_len * 3 / 2 + 8);
	t->body_lf = malloc(t->body_len + 1);
	if (t->body_wire == NULL || t->body_lf == NULL)
		return -1;
	for (k = 0; r > 0 && k < MAX_BODY_LINES; k++) {
		size_t len = line_len(k, r);

		make_line(k, len, line);
		if (len > 0 && line[0] == '.') {
			t->body_wire[w++] = '.';
			t->dot_lines++;
		}
		memcpy(t->body_wire + w, line, len);
		w += len;
		t->body_wire[w++] = '\r';
		t->body_wire[w++] = '\n';
		memcpy(t->body_lf + l, line, len);
		l += len;
		t->body_lf[l++] = '\n';
		r -= len + 2;
	}
	if (r != 0) {
		errno = EINVAL;
		return -1;
	}
	memcpy(t->body_wire + w, ".\r\n", 3);
	t->body_wire_len = w + 3;
	t->body_lf_len = l;
	t->body_lf[l] = '\0';
	return 0;
}

int
bench_tmpl_init(struct bench_tmpl *t, size_t bytes)
{
	time_t now = time(NULL);
	struct tm tm;
	int n;

	memset(t, 0, sizeof(*t));
	if (gmtime_r(&now, &tm) == NULL ||
	    strftime(t->date, sizeof(t->date), "%a, %d %b %Y %H:%M:%S +0000",
		     &tm) == 0)
		return -1;
	snprintf(t->token, sizeof(t->token), "%08lx%08lx",
		 (unsigned long)now & 0xffffffffu,
		 (unsigned long)getpid() & 0xffffffffu);
	n = snprintf(NULL, 0, HDR_FMT, 0ul, t->date, t->token, 0ul);
	if (n <= 0)
		return -1;
	t->header_len = (size_t)n;
	t->body_len = bytes > t->header_len ? bytes - t->header_len : 0;
	if (t->body_len == 1)
		t->body_len = 2;
	return build_body(t);
}

void
bench_tmpl_fini(struct bench_tmpl *t)
{
	free(t->body_wire);
	free(t->body_lf);
	t->body_wire = NULL;
	t->body_lf = NULL;
}

int
bench_tmpl_add_header(const struct bench_tmpl *t, void *evbuf, unsigned long n)
{
	int w = evbuffer_add_printf(evbuf, HDR_FMT, n, t->date, t->token, n);

	return w == (int)t->header_len ? 0 : -1;
}
