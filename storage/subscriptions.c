/* SPDX-License-Identifier: MIT */
/*
 * storage/subscriptions.c - Dovecot's "subscriptions" file in the Maildir
 * root: header "V\t2\n\n", then one mailbox per line with TAB between
 * hierarchy levels and each level tab-escaped (\001 -> \0011, TAB ->
 * \001t, CR -> \001r, LF -> \001n).  A file without the header is
 * version 1: one raw name per line.
 *
 * Runs in:  a writer, with the user's credentials (the parser anywhere).
 * Trust:    the file is user-writable: at most STORE_SUBS_MAX_FILE octets,
 *           STORE_SUBS_MAX_LINE per line, STORE_SUBS_MAX_NAMES names; a NUL
 *           fails the read; opened O_NOFOLLOW in the root fd.
 * Order:    subscriptions.lock (dot-lock, 120 s timeout, 30 s stale) holds
 *           the new content, fsynced, then renamed over subscriptions; with
 *           no change the lock is removed.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "storage/sidefile_int.h"
#include "storage/storage.h"

static const char subs_v2_header[] = "V\t2\n\n";

void
store_subs_free(struct store_subs *s)
{
	size_t i;

	if (s == NULL)
		return;
	for (i = 0; i < s->count; i++)
		free(s->names[i]);
	free(s->names);
	memset(s, 0, sizeof(*s));
}

/* Decode one version-2 line: TAB -> sep, \001x escapes.  Caller frees. */
static char *
subs_unescape(const char *s, size_t len, char sep)
{
	char *out = malloc(len + 1), *o = out;
	size_t i;

	if (out == NULL)
		return NULL;
	for (i = 0; i < len; i++) {
		if (s[i] == '\t') {
			*o++ = sep;
		} else if (s[i] == '\001' && i + 1 < len) {
			i++;
			*o++ = s[i] == '1' ? '\001' : s[i] == 't' ? '\t' :
			       s[i] == 'r' ? '\r' : s[i] == 'n' ? '\n' : s[i];
		} else {
			*o++ = s[i];
		}
	}
	*o = '\0';
	return out;
}

/* Escape name for a version-2 line: sep -> TAB, each level tab-escaped.
 * Caller frees. */
static char *
subs_escape(const char *name, char sep)
{
	char *out = malloc(strlen(name) * 2 + 1), *o = out;

	if (out == NULL)
		return NULL;
	for (; *name != '\0'; name++) {
		if (*name == sep) {
			*o++ = '\t';
			continue;
		}
		switch (*name) {
		case '\001': *o++ = '\001'; *o++ = '1'; break;
		case '\t': *o++ = '\001'; *o++ = 't'; break;
		case '\r': *o++ = '\001'; *o++ = 'r'; break;
		case '\n': *o++ = '\001'; *o++ = 'n'; break;
		default: *o++ = *name; break;
		}
	}
	*o = '\0';
	return out;
}

static int
subs_push(struct store_subs *s, char *name)
{
	char **grown;

	if (name == NULL)
		return -1;
	/* INBOX is one name whatever its case (RFC 3501 5.1) */
	if (strcasecmp(name, "INBOX") == 0)
		memcpy(name, "INBOX", 5);
	if (s->count == STORE_SUBS_MAX_NAMES) {
		free(name);
		errno = E2BIG;
		return -1;
	}
	if ((s->count & (s->count - 1)) == 0) {
		grown = realloc(s->names, (s->count ? s->count * 2 : 8) *
				sizeof(*grown));
		if (grown == NULL) {
			free(name);
			return -1;
		}
		s->names = grown;
	}
	s->names[s->count++] = name;
	return 0;
}

int
store_subs_parse(const char *buf, size_t len, char sep, struct store_subs *out)
{
	const char *p = buf, *end = buf + len, *nl;
	size_t hlen = sizeof(subs_v2_header) - 1;
	char *name;
	int saved;

	memset(out, 0, sizeof(*out));
	out->version = 1;
	if (memchr(buf, '\0', len) != NULL) {
		errno = EINVAL;
		return -1;
	}
	if (len >= hlen && memcmp(buf, subs_v2_header, hlen) == 0) {
		out->version = 2;
		p += hlen;
	}
	for (; p < end; p = nl + 1) {
		nl = memchr(p, '\n', (size_t)(end - p));
		if (nl == NULL)
			nl = end;
		if ((size_t)(nl - p) > STORE_SUBS_MAX_LINE) {
			errno = EMSGSIZE;
			goto fail;
		}
		if (nl == p)
			continue;
		if (out->version == 2)
			name = subs_unescape(p, (size_t)(nl - p), sep);
		else
			name = strndup(p, (size_t)(nl - p));
		if (subs_push(out, name) < 0)
			goto fail;
	}
	return 0;
fail:
	saved = errno;
	store_subs_free(out);
	errno = saved;
	return -1;
}

int
store_subs_read(int root_fd, char sep, struct store_subs *out)
{
	char *buf;
	ssize_t n;
	bool more;
	int ret, saved;

	memset(out, 0, sizeof(*out));
	out->version = 2;
	buf = malloc(STORE_SUBS_MAX_FILE + 1);
	if (buf == NULL)
		return -1;
	n = store_side_read(root_fd, STORE_SUBS_FILE, buf, STORE_SUBS_MAX_FILE,
			    &more, NULL);
	if (n < 0 || more) {
		saved = n < 0 ? errno : EFBIG;
		free(buf);
		errno = saved;
		return saved == ENOENT ? 0 : -1;
	}
	ret = store_subs_parse(buf, (size_t)n, sep, out);
	saved = errno;
	free(buf);
	errno = saved;
	return ret;
}

bool
store_subs_contains(const struct store_subs *s, const char *name)
{
	size_t i;

	if (strcasecmp(name, "INBOX") == 0)
		name = "INBOX";
	for (i = 0; i < s->count; i++)
		if (strcmp(s->names[i], name) == 0)
			return true;
	return false;
}

/* The file content for s; caller frees.  *len_out gets its length. */
static char *
subs_format(const struct store_subs *s, char sep, size_t *len_out)
{
	size_t i, len = 0, cap = 64;
	char *buf = malloc(cap), *line, *grown;
	size_t llen;

	if (buf == NULL)
		return NULL;
	if (s->version >= 2) {
		memcpy(buf, subs_v2_header, sizeof(subs_v2_header) - 1);
		len = sizeof(subs_v2_header) - 1;
	}
	for (i = 0; i < s->count; i++) {
		line = s->version >= 2 ? subs_escape(s->names[i], sep) :
					 strdup(s->names[i]);
		if (line == NULL)
			goto fail;
		llen = strlen(line);
		if (len + llen + 1 > cap) {
			cap = (len + llen + 1) * 2;
			grown = realloc(buf, cap);
			if (grown == NULL) {
				free(line);
				goto fail;
			}
			buf = grown;
		}
		memcpy(buf + len, line, llen);
		buf[len + llen] = '\n';
		len += llen + 1;
		free(line);
	}
	*len_out = len;
	return buf;
fail:
	free(buf);
	return NULL;
}

static bool
subs_name_valid(const char *name)
{
	size_t len = strlen(name);

	if (len == 0 || len > STORE_SUBS_MAX_LINE / 2)
		return false;
	for (; *name != '\0'; name++)
		if ((unsigned char)*name < 0x20 || *name == 0x7f)
			return false;
	return true;
}

/* Add or remove name in s; true if s changed. */
static int
subs_change(struct store_subs *s, const char *name, bool subscribe,
	    bool *changed)
{
	size_t i, j;

	*changed = false;
	for (i = j = 0; i < s->count; i++) {
		if (strcmp(s->names[i], name) == 0 && !subscribe) {
			free(s->names[i]);
			*changed = true;
			continue;
		}
		s->names[j++] = s->names[i];
	}
	s->count = j;
	if (subscribe && !store_subs_contains(s, name)) {
		if (subs_push(s, strdup(name)) < 0)
			return -1;
		*changed = true;
	}
	return 0;
}

int
store_subs_set(int root_fd, char sep, const char *name, bool subscribe,
	       bool *changed_out)
{
	return store_subs_set_wait(root_fd, sep, name, subscribe,
				   STORE_SUBS_LOCK_TIMEOUT, changed_out);
}

int
store_subs_set_wait(int root_fd, char sep, const char *name, bool subscribe,
		    unsigned timeout_secs, bool *changed_out)
{
	struct store_dotlock_set set = {
		.timeout_secs = timeout_secs,
		.stale_secs = STORE_SUBS_LOCK_STALE,
		.write_pid = false,
	};
	struct store_dotlock lock;
	struct store_subs s = { 0 };
	bool changed = false;
	char *buf = NULL;
	size_t len;
	int ret = -1, saved;

	if (changed_out != NULL)
		*changed_out = false;
	if (!subs_name_valid(name)) {
		errno = EINVAL;
		return -1;
	}
	if (strcasecmp(name, "INBOX") == 0)
		name = "INBOX";
	if (store_dotlock_take(root_fd, STORE_SUBS_FILE, &set, &lock) < 0)
		return -1;
	if (store_subs_read(root_fd, sep, &s) < 0 ||
	    subs_change(&s, name, subscribe, &changed) < 0)
		goto out;
	if (!changed) {
		ret = 0;
		goto out;
	}
	buf = subs_format(&s, sep, &len);
	if (buf == NULL)
		goto out;
	ret = store_dotlock_replace(&lock, buf, len);
	if (ret == 0 && changed_out != NULL)
		*changed_out = true;
out:
	saved = errno;
	if (lock.dir_fd >= 0)
		(void)store_dotlock_release(&lock);
	store_subs_free(&s);
	free(buf);
	errno = saved;
	return ret;
}
