/* SPDX-License-Identifier: MIT */
/*
 * policy/replication.c - replication values of stowd.conf: the
 * replication_unix_uids list, replica addresses and the
 * `replica NAME { address = tcp:HOST:PORT }` block.
 *
 * Runs in:  the supervisor (config parser), tests; policy_repl_unix_uid_allowed
 *           also in repl-hook on its inherited copy of the settings.
 * Trust:    admin-controlled text, checked completely: bounded names and
 *           hosts, numeric ports 1..65535, at most POLICY_MAX_REPLICAS
 *           replicas and POLICY_MAX_REPL_UIDS uids.
 * Order:    a replica is counted in n_replicas only when its block closes
 *           with an address.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy_int.h"
#include "privsep/privsep.h"

#define USER_NAME_MAX 32

static bool
is_alnum(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9');
}

static bool
only_chars(const char *text, size_t len, const char *extra)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (!is_alnum((unsigned char)text[i]) &&
		    strchr(extra, text[i]) == NULL)
			return false;
	return true;
}

static int
fail(const char *why, const char **why_out)
{
	*why_out = why;
	errno = EINVAL;
	return -1;
}

/* ---- replication_unix_uids -------------------------------------------- */

static int
uid_word(const char *word, uid_t *uid_out, const char **why_out)
{
	struct passwd *pw;
	uint64_t n;

	if (word[0] >= '0' && word[0] <= '9') {
		if (policy_parse_decimal(word, UINT32_MAX - 1, &n) < 0)
			return fail("not a valid uid", why_out);
		*uid_out = (uid_t)n;
		return 0;
	}
	if (strlen(word) > USER_NAME_MAX || word[0] == '-' ||
	    !only_chars(word, strlen(word), "_.-"))
		return fail("not a valid user name or uid", why_out);
	errno = 0;
	pw = getpwnam(word);
	if (pw == NULL)
		return fail("unknown user", why_out);
	*uid_out = pw->pw_uid;
	return 0;
}

int
policy_uid_list_parse(const char *text, uid_t uids[POLICY_MAX_REPL_UIDS],
		      size_t *n_out, const char **why_out)
{
	char word[USER_NAME_MAX + 2];
	const char *p = text;
	size_t n = 0, len, i;
	uid_t uid;

	for (;;) {
		p += strspn(p, " \t");
		len = strcspn(p, " \t");
		if (len == 0)
			break;
		if (len >= sizeof(word))
			return fail("not a valid user name or uid", why_out);
		memcpy(word, p, len);
		word[len] = '\0';
		p += len;
		if (uid_word(word, &uid, why_out) < 0)
			return -1;
		if (n == POLICY_MAX_REPL_UIDS)
			return fail("too many uids (max 32)", why_out);
		for (i = 0; i < n; i++)
			if (uids[i] == uid)
				return fail("uid listed twice", why_out);
		uids[n++] = uid;
	}
	*n_out = n;
	return 0;
}

char *
policy_uid_list_format(const uid_t *uids, size_t n)
{
	char *buf = xmalloc(n * 11 + 1);
	size_t i, len = 0;

	buf[0] = '\0';
	for (i = 0; i < n; i++)
		len += (size_t)snprintf(buf + len, 12, "%s%u", i > 0 ? " " : "",
					(unsigned)uids[i]);
	return buf;
}

bool
policy_repl_peer_listed(const struct policy_settings *s, const char *id)
{
	const char *p = s->replication_peers;
	size_t n = strlen(id);

	if (p == NULL || p[0] == '\0')
		return true;
	while (*p != '\0') {
		size_t len;

		p += strspn(p, " \t");
		len = strcspn(p, " \t");
		if (len > 0 && len == n && memcmp(p, id, n) == 0)
			return true;
		p += len;
	}
	return false;
}

bool
policy_repl_unix_uid_allowed(const struct policy_settings *s, uid_t uid)
{
	size_t i;

	for (i = 0; i < s->n_repl_unix_uids && i < POLICY_MAX_REPL_UIDS; i++)
		if (s->repl_unix_uids[i] == uid)
			return true;
	return false;
}

/* ---- replica addresses ------------------------------------------------- */

/* A DNS name: labels of 1..63 letters, digits and '-', not starting or
 * ending with '-'.  A name of only digits and dots is taken as IPv4. */
static int
check_host_name(const char *host, const char **why_out)
{
	unsigned char addr[sizeof(struct in_addr)];
	const char *label = host;
	size_t len;

	if (strspn(host, "0123456789.") == strlen(host)) {
		if (inet_pton(AF_INET, host, addr) != 1)
			return fail("invalid IPv4 address", why_out);
		return 0;
	}
	for (;;) {
		len = strcspn(label, ".");
		if (len == 0 || len > 63 || label[0] == '-' || label[len - 1] == '-' ||
		    !only_chars(label, len, "-"))
			return fail("invalid host name", why_out);
		if (label[len] == '\0')
			return 0;
		label += len + 1;
		if (*label == '\0')   /* one trailing dot: an absolute name */
			return 0;
	}
}

int
policy_replica_address_parse(const char *text, struct policy_replica *r,
			     const char **why_out)
{
	unsigned char addr[sizeof(struct in6_addr)];
	const char *host, *colon;
	size_t host_len;
	uint64_t port;

	if (strlen(text) >= sizeof(r->address))
		return fail("address too long", why_out);
	if (strncmp(text, "tcp:", 4) != 0)
		return fail("expected tcp:HOST:PORT", why_out);
	host = text + 4;
	if (host[0] == '[') {
		colon = strstr(host, "]:");
		if (colon == NULL)
			return fail("expected tcp:[IPv6]:PORT", why_out);
		host++;
		host_len = (size_t)(colon - host);
		colon++;
	} else {
		colon = strrchr(host, ':');
		if (colon == NULL)
			return fail("expected tcp:HOST:PORT", why_out);
		host_len = (size_t)(colon - host);
		if (memchr(host, ':', host_len) != NULL)
			return fail("IPv6 address must be in brackets: tcp:[ADDR]:PORT",
				    why_out);
	}
	if (host_len == 0 || host_len >= sizeof(r->host))
		return fail("invalid host", why_out);
	memcpy(r->host, host, host_len);
	r->host[host_len] = '\0';
	if (host[-1] == '[') {
		if (inet_pton(AF_INET6, r->host, addr) != 1)
			return fail("invalid IPv6 address", why_out);
	} else if (check_host_name(r->host, why_out) < 0) {
		return -1;
	}
	if (policy_parse_decimal(colon + 1, 65535, &port) < 0 || port == 0)
		return fail("invalid port (1..65535)", why_out);
	r->port = (uint16_t)port;
	xstrlcpy(r->address, text, sizeof(r->address));
	return 0;
}

/* ---- the replica block ------------------------------------------------- */

int
policy_replica_open(struct policy_settings *s, void *arg, const char *label,
		    const char **why_out)
{
	struct policy_replica *r;
	size_t i;

	(void)arg;
	if (label[0] == '\0' || strlen(label) >= sizeof(r->name) ||
	    !only_chars(label, strlen(label), "-_."))
		return fail("invalid name (letters, digits, '-', '_', '.'; at most 63)",
			    why_out);
	for (i = 0; i < s->n_replicas; i++)
		if (strcmp(s->replicas[i].name, label) == 0)
			return fail("duplicate replica name", why_out);
	if (s->n_replicas >= POLICY_MAX_REPLICAS)
		return fail("too many replicas (max 16)", why_out);
	r = &s->replicas[s->n_replicas];
	memset(r, 0, sizeof(*r));
	xstrlcpy(r->name, label, sizeof(r->name));
	return 0;
}

int
policy_replica_set(struct policy_settings *s, void *arg, const char *key,
		   const char *value, const char **why_out)
{
	struct policy_replica *r = &s->replicas[s->n_replicas];
	struct policy_replica tmp;

	(void)arg;
	if (strcmp(key, "address") != 0) {
		*why_out = "unknown setting";
		errno = ENOENT;
		return -1;
	}
	if (r->address[0] != '\0')
		return fail("address given twice", why_out);
	memset(&tmp, 0, sizeof(tmp));
	if (policy_replica_address_parse(value, &tmp, why_out) < 0)
		return -1;
	memcpy(tmp.name, r->name, sizeof(tmp.name));
	*r = tmp;
	return 0;
}

int
policy_replica_close(struct policy_settings *s, void *arg, const char **why_out)
{
	(void)arg;
	if (s->replicas[s->n_replicas].address[0] == '\0')
		return fail("address missing (address = tcp:HOST:PORT)", why_out);
	s->n_replicas++;
	return 0;
}
