/* SPDX-License-Identifier: MIT */
/*
 * bench/load_util.c - small helpers of lmtp-load: %d pattern expansion,
 * target address parsing (unix / loopback tcp), time and PRNG.
 *
 * Runs in:  the benchmark client.
 * Trust:    patterns come from the command line and are expanded by hand,
 *           never passed to printf as a format.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "bench/load_int.h"

static bool
is_conv(char c)
{
	return c == 'd' || c == 'u' || c == 'i';
}

bool
bench_pattern_ok(const char *pattern)
{
	unsigned convs = 0;
	const char *p;

	for (p = pattern; *p != '\0'; p++) {
		if (*p != '%')
			continue;
		if (p[1] == '%') {
			p++;
		} else if (is_conv(p[1])) {
			convs++;
			p++;
		} else {
			return false;
		}
	}
	return convs == 1;
}

int
bench_expand(const char *pattern, unsigned long n, char *out, size_t outlen)
{
	char num[24];
	size_t o = 0, k;
	const char *p;

	if (!bench_pattern_ok(pattern)) {
		errno = EINVAL;
		return -1;
	}
	snprintf(num, sizeof(num), "%lu", n);
	for (p = pattern; *p != '\0'; p++) {
		const char *piece = p;
		size_t plen = 1;

		if (*p == '%' && p[1] == '%') {
			p++;
		} else if (*p == '%') {
			piece = num;
			plen = strlen(num);
			p++;
		}
		if (o + plen >= outlen) {
			errno = ENAMETOOLONG;
			return -1;
		}
		for (k = 0; k < plen; k++)
			out[o++] = piece[k];
	}
	out[o] = '\0';
	return 0;
}

static bool
loopback(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;

		return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;

		return IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr);
	}
	return false;
}

static int
parse_unix(const char *path, struct bench_target *out, const char **why_out)
{
	struct sockaddr_un *sun = (struct sockaddr_un *)&out->sa;
	size_t len = strlen(path);

	if (len == 0 || len >= sizeof(sun->sun_path)) {
		*why_out = "unix socket path empty or too long";
		return -1;
	}
	memset(&out->sa, 0, sizeof(out->sa));
	sun->sun_family = AF_UNIX;
	memcpy(sun->sun_path, path, len);
	out->salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + 1);
	out->family = AF_UNIX;
	return 0;
}

static int
parse_tcp(const char *hostport, struct bench_target *out, const char **why_out)
{
	char host[256];
	const char *colon = strrchr(hostport, ':');
	struct addrinfo hints, *res = NULL;
	size_t hlen;
	int rc = -1;

	if (colon == NULL || colon[1] == '\0') {
		*why_out = "expected tcp:HOST:PORT";
		return -1;
	}
	hlen = (size_t)(colon - hostport);
	if (hlen >= 2 && hostport[0] == '[' && hostport[hlen - 1] == ']') {
		hostport++;
		hlen -= 2;
	}
	if (hlen == 0 || hlen >= sizeof(host)) {
		*why_out = "bad host";
		return -1;
	}
	memcpy(host, hostport, hlen);
	host[hlen] = '\0';
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	if (getaddrinfo(host, colon + 1, &hints, &res) != 0 || res == NULL) {
		*why_out = "cannot resolve host or port";
		goto out;
	}
	if (!loopback(res->ai_addr) || res->ai_addrlen > sizeof(out->sa)) {
		*why_out = "only loopback TCP addresses are allowed";
		goto out;
	}
	memset(&out->sa, 0, sizeof(out->sa));
	memcpy(&out->sa, res->ai_addr, res->ai_addrlen);
	out->salen = res->ai_addrlen;
	out->family = res->ai_family;
	rc = 0;
out:
	if (res != NULL)
		freeaddrinfo(res);
	return rc;
}

int
bench_target_parse(const char *text, struct bench_target *out,
		   const char **why_out)
{
	if (strncmp(text, "unix:", 5) == 0)
		return parse_unix(text + 5, out, why_out);
	if (strncmp(text, "tcp:", 4) == 0)
		return parse_tcp(text + 4, out, why_out);
	if (text[0] == '/')
		return parse_unix(text, out, why_out);
	*why_out = "address must be unix:/path or tcp:HOST:PORT";
	return -1;
}

double
bench_ts_diff(const struct timespec *a, const struct timespec *b)
{
	return (double)(b->tv_sec - a->tv_sec) +
	       (double)(b->tv_nsec - a->tv_nsec) / 1e9;
}

/* splitmix64: small, seedable, good enough to pick recipients. */
uint64_t
bench_rand(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}
