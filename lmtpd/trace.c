/* SPDX-License-Identifier: MIT */
/*
 * lmtpd/trace.c - session trace ids, RFC 5322 dates and the trace headers
 * (Return-Path:, Delivered-To:, Received:) prepended to each delivery.
 *
 * Runs in:  lmtpd, under seccomp: no file may be opened, so dates are
 *           computed here in UTC (gmtime_r may read /etc/localtime on its
 *           first call) and ids come from getrandom(2), not /dev/urandom.
 * Trust:    addresses and the LHLO name were validated by parse.c; the
 *           LHLO name is still reduced to safe characters for the header.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "lmtpd/lmtpd_int.h"

static const char b32[] = "0123456789abcdefghjkmnpqrstvwxyz";

/* splitmix64: only used if getrandom(2) is not ready yet. */
static uint64_t
mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static void
fallback_random(unsigned char *buf, size_t n)
{
	static uint64_t counter;
	struct timespec ts;
	uint64_t x;
	size_t i;

	clock_gettime(CLOCK_REALTIME, &ts);
	x = mix64((uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec) ^
	    mix64(((uint64_t)getpid() << 32) + ++counter);
	for (i = 0; i < n; i++) {
		if (i % 8 == 0)
			x = mix64(x);
		buf[i] = (unsigned char)(x >> (8 * (i % 8)));
	}
}

void
lmtp_trace_id(char *out, size_t size)
{
	unsigned char rnd[10];
	uint64_t bits = 0;
	size_t i, nbits = 0, o = 0;

	if (getrandom(rnd, sizeof(rnd), GRND_NONBLOCK) != (ssize_t)sizeof(rnd))
		fallback_random(rnd, sizeof(rnd));
	for (i = 0; i < sizeof(rnd) && o + 1 < size; i++) {
		bits = (bits << 8) | rnd[i];
		nbits += 8;
		while (nbits >= 5 && o + 1 < size) {
			out[o++] = b32[(bits >> (nbits - 5)) & 31];
			nbits -= 5;
		}
	}
	out[o] = '\0';
}

char *
lmtp_rfc5322_date(int64_t t, char *out, size_t size)
{
	static const char days[][4] = { "Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed" };
	static const char months[][4] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
					  "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	int64_t z, era, doe, yoe, doy, mp, secs;
	int64_t day = t >= 0 ? t / 86400 : (t - 86399) / 86400;
	unsigned y, m, d;

	secs = t - day * 86400;
	/* civil_from_days (H. Hinnant), days since 1970-01-01 */
	z = day + 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	d = (unsigned)(doy - (153 * mp + 2) / 5 + 1);
	m = (unsigned)(mp < 10 ? mp + 3 : mp - 9);
	y = (unsigned)(yoe + era * 400 + (m <= 2));
	snprintf(out, size, "%s, %02u %s %u %02u:%02u:%02u +0000",
		 days[((day % 7) + 7) % 7], d, months[m - 1], y,
		 (unsigned)(secs / 3600), (unsigned)(secs / 60 % 60),
		 (unsigned)(secs % 60));
	return out;
}

/* The LHLO name as it may appear in a header: unsafe bytes become '_'. */
static void
safe_name(const char *in, char *out, size_t size)
{
	size_t i;

	for (i = 0; in[i] != '\0' && i + 1 < size; i++) {
		unsigned char c = (unsigned char)in[i];

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c >= 0x80 || strchr(".-_:[]", c))
			out[i] = (char)c;
		else
			out[i] = '_';
	}
	out[i] = '\0';
}

int
lmtp_trace_prefix(const struct lmtp_trace *t, char *out, size_t size)
{
	char date[64], name[LMTP_LHLO_MAX];
	int n;

	safe_name(t->lhlo, name, sizeof(name));
	lmtp_rfc5322_date(t->time, date, sizeof(date));
	n = snprintf(out, size,
		     "Return-Path: <%s>\n"
		     "Delivered-To: %s\n"
		     "Received: from %s (%s)\n"
		     "\tby %s (stowd) with %s id %s\n"
		     "\tfor <%s>; %s\n",
		     t->sender, t->rcpt, name, t->peer, t->host,
		     t->smtputf8 ? "UTF8LMTP" : "LMTP", t->session, t->rcpt, date);
	if (n < 0 || (size_t)n >= size) {
		errno = ENOSPC;
		return -1;
	}
	return n;
}
