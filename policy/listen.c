/* SPDX-License-Identifier: MIT */
/*
 * policy/listen.c - parse a listener list ("unix:/run/stowd/lmtp
 * tcp:127.0.0.1:24 tcp:[::1]:24") into struct policy_listen entries.
 *
 * Runs in:  the supervisor (config check and bind), tests.
 * Trust:    admin-controlled text; every entry is checked completely
 *           (absolute short unix paths, numeric addresses, ports 1..65535).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy_int.h"
#include "privsep/privsep.h"

#define LISTEN_MAX 16

static int
parse_port(const char *text, uint16_t *port_out, const char **why_out)
{
	uint64_t n;

	if (policy_parse_decimal(text, 65535, &n) < 0 || n == 0) {
		*why_out = "invalid port (1..65535)";
		return -1;
	}
	*port_out = (uint16_t)n;
	return 0;
}

static int
parse_unix(const char *path, struct policy_listen *l, const char **why_out)
{
	if (path[0] != '/') {
		*why_out = "unix socket path must be absolute";
		return -1;
	}
	if (!xstrlcpy(l->path, path, sizeof(l->path))) {
		*why_out = "unix socket path too long (max 107 bytes)";
		return -1;
	}
	l->kind = POLICY_LISTEN_UNIX;
	return 0;
}

/* "IPv4:PORT" or "[IPv6]:PORT". */
static int
parse_tcp(const char *text, struct policy_listen *l, const char **why_out)
{
	unsigned char addr[sizeof(struct in6_addr)];
	const char *colon, *host = text;
	size_t host_len;
	int af = AF_INET;

	if (text[0] == '[') {
		colon = strstr(text, "]:");
		if (colon == NULL) {
			*why_out = "expected tcp:[IPv6]:PORT";
			return -1;
		}
		host = text + 1;
		host_len = (size_t)(colon - host);
		colon++;
		af = AF_INET6;
	} else {
		colon = strrchr(text, ':');
		if (colon == NULL) {
			*why_out = "expected tcp:ADDRESS:PORT";
			return -1;
		}
		host_len = (size_t)(colon - host);
		if (memchr(host, ':', host_len) != NULL) {
			*why_out = "IPv6 address must be in brackets: tcp:[ADDR]:PORT";
			return -1;
		}
	}
	if (host_len == 0 || host_len >= sizeof(l->host)) {
		*why_out = "invalid address";
		return -1;
	}
	memcpy(l->host, host, host_len);
	l->host[host_len] = '\0';
	if (inet_pton(af, l->host, addr) != 1) {
		*why_out = af == AF_INET ? "invalid IPv4 address" : "invalid IPv6 address";
		return -1;
	}
	l->kind = POLICY_LISTEN_TCP;
	return parse_port(colon + 1, &l->port, why_out);
}

static int
parse_entry(const char *text, struct policy_listen *l, const char **why_out)
{
	memset(l, 0, sizeof(*l));
	if (!xstrlcpy(l->text, text, sizeof(l->text))) {
		*why_out = "listen entry too long";
		return -1;
	}
	if (strncmp(text, "unix:", 5) == 0)
		return parse_unix(text + 5, l, why_out);
	if (strncmp(text, "tcp:", 4) == 0)
		return parse_tcp(text + 4, l, why_out);
	*why_out = "unknown listener (use unix:/PATH or tcp:ADDRESS:PORT)";
	return -1;
}

static bool
same_listener(const struct policy_listen *a, const struct policy_listen *b)
{
	unsigned char x[sizeof(struct in6_addr)], y[sizeof(struct in6_addr)];
	int af;

	if (a->kind != b->kind)
		return false;
	if (a->kind == POLICY_LISTEN_UNIX)
		return strcmp(a->path, b->path) == 0;
	if (a->port != b->port)
		return false;
	af = strchr(a->host, ':') != NULL ? AF_INET6 : AF_INET;
	if (af != (strchr(b->host, ':') != NULL ? AF_INET6 : AF_INET))
		return false;
	memset(x, 0, sizeof(x));
	memset(y, 0, sizeof(y));
	return inet_pton(af, a->host, x) == 1 && inet_pton(af, b->host, y) == 1 &&
	       memcmp(x, y, sizeof(x)) == 0;
}

/* Copy the next blank-separated word of *pp into word; false at the end. */
static bool
next_word(const char **pp, char *word, size_t size, bool *too_long_out)
{
	const char *p = *pp;
	size_t n;

	p += strspn(p, " \t");
	n = strcspn(p, " \t");
	*too_long_out = n >= size;
	if (n == 0)
		return false;
	if (!*too_long_out) {
		memcpy(word, p, n);
		word[n] = '\0';
	}
	*pp = p + n;
	return true;
}

int
policy_listen_parse(const char *list, struct policy_listen **out, size_t *n_out,
		    const char **why_out)
{
	struct policy_listen *v = xcalloc(LISTEN_MAX, sizeof(*v));
	char word[sizeof(v->text)];
	const char *p = list;
	size_t n = 0, i;
	bool too_long;
	int ret = -1;

	*out = NULL;
	*n_out = 0;
	while (next_word(&p, word, sizeof(word), &too_long)) {
		if (too_long) {
			*why_out = "listen entry too long";
			goto out;
		}
		if (n == LISTEN_MAX) {
			*why_out = "too many listeners (max 16)";
			goto out;
		}
		if (parse_entry(word, &v[n], why_out) < 0)
			goto out;
		for (i = 0; i < n; i++) {
			if (same_listener(&v[i], &v[n])) {
				*why_out = "duplicate listener";
				goto out;
			}
		}
		n++;
	}
	if (n == 0) {
		*why_out = "no listener given";
		goto out;
	}
	*out = v;
	*n_out = n;
	v = NULL;
	ret = 0;
out:
	free(v);
	if (ret < 0)
		errno = EINVAL;
	return ret;
}
