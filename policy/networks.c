/* SPDX-License-Identifier: MIT */
/*
 * policy/networks.c - lists of client networks (lmtp_allow_networks):
 * "127.0.0.1/32 10.0.0.0/8 ::1 2001:db8::/32", parsed once and matched
 * against the address of each accepted TCP client.
 *
 * Runs in:  the supervisor (parse at config load, match at accept).
 * Trust:    the list is the admin's; the address is the kernel's.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "policy/policy.h"
#include "privsep/privsep.h"

static int
parse_one(const char *tok, struct policy_net *n, const char **why_out)
{
	char buf[64], *slash;
	unsigned long bits;
	unsigned max;

	if (strlen(tok) >= sizeof(buf)) {
		*why_out = "network too long";
		return -1;
	}
	memcpy(buf, tok, strlen(tok) + 1);
	slash = strchr(buf, '/');
	if (slash != NULL)
		*slash++ = '\0';
	memset(n, 0, sizeof(*n));
	if (inet_pton(AF_INET, buf, n->addr) == 1) {
		n->family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, buf, n->addr) == 1) {
		n->family = AF_INET6;
		max = 128;
	} else {
		*why_out = "not an IPv4 or IPv6 address (ADDRESS[/BITS])";
		return -1;
	}
	bits = max;
	if (slash != NULL) {
		char *end;

		errno = 0;
		bits = strtoul(slash, &end, 10);
		if (*slash == '\0' || *end != '\0' || errno != 0 || bits > max) {
			*why_out = "bad prefix length";
			return -1;
		}
	}
	n->bits = (unsigned)bits;
	return 0;
}

int
policy_networks_parse(const char *text, struct policy_net *out, size_t max,
		      size_t *n_out, const char **why_out)
{
	char *copy = xstrdup(text), *tok, *save = NULL;
	size_t n = 0;
	int ret = -1;

	for (tok = strtok_r(copy, " \t,", &save); tok != NULL;
	     tok = strtok_r(NULL, " \t,", &save)) {
		if (n == max) {
			*why_out = "too many networks";
			goto out;
		}
		if (parse_one(tok, &out[n], why_out) < 0)
			goto out;
		n++;
	}
	*n_out = n;
	ret = 0;
out:
	free(copy);
	if (ret < 0)
		errno = EINVAL;
	return ret;
}

static bool
prefix_eq(const unsigned char *a, const unsigned char *b, unsigned bits)
{
	unsigned full = bits / 8, rest = bits % 8;

	if (memcmp(a, b, full) != 0)
		return false;
	if (rest == 0)
		return true;
	return ((a[full] ^ b[full]) & (0xff00u >> rest) & 0xff) == 0;
}

bool
policy_networks_match(const struct policy_net *nets, size_t n,
		      const struct sockaddr *sa)
{
	const unsigned char *a;
	unsigned char v4[4];
	int family;
	size_t i;

	if (sa->sa_family == AF_INET) {
		a = (const unsigned char *)&((const struct sockaddr_in *)sa)->sin_addr;
		family = AF_INET;
	} else if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;

		a = (const unsigned char *)a6;
		family = AF_INET6;
		if (IN6_IS_ADDR_V4MAPPED(a6)) {
			memcpy(v4, a + 12, 4);
			a = v4;
			family = AF_INET;
		}
	} else {
		return false;
	}
	for (i = 0; i < n; i++)
		if (nets[i].family == family && prefix_eq(nets[i].addr, a, nets[i].bits))
			return true;
	return false;
}
