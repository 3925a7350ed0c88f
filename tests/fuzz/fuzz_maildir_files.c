/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/fuzz_maildir_files.c - the files a user writes into their own
 * Maildir and a writer reads (storage/quota.c, keywords.c,
 * subscriptions.c): maildirsize, dovecot-keywords, subscriptions, and the
 * userdb quota_rule value.
 *
 * Input:    the first byte picks the parser, the rest is the file (or the
 *           rule text, cut at the first NUL).
 * Oracle:   the sanitizers and LeakSanitizer; maildirsize: a valid usage
 *           is not negative; keywords: every name is valid, unique and
 *           found at its own letter, and the letters of all names map back
 *           to the names; subscriptions: every name is found by
 *           store_subs_contains, within the count limit.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "storage/storage.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_quota(const char *buf, size_t len)
{
	struct store_quota q;

	memset(&q, 0, sizeof(q));
	(void)store_quota_parse(buf, len, &q);
	if (q.valid && (q.used_bytes < 0 || q.used_count < 0))
		abort();
}

static void
check_keywords(const char *buf, size_t len)
{
	static struct store_keywords kw;
	const char *names[STORE_KEYWORDS_MAX], *back[STORE_KEYWORDS_MAX];
	char letters[STORE_KEYWORDS_MAX + 1];
	size_t i, n = 0, m;

	memset(&kw, 0, sizeof(kw));
	(void)store_keywords_parse(buf, len, &kw);
	for (i = 0; i < STORE_KEYWORDS_MAX; i++) {
		if (kw.names[i][0] == '\0')
			continue;
		if (!store_keyword_valid(kw.names[i]) ||
		    store_keywords_letter(&kw, kw.names[i]) != (int)('a' + i))
			abort();
		names[n++] = kw.names[i];
	}
	if (store_keywords_letters(&kw, names, n, letters, sizeof(letters)) < 0 ||
	    strlen(letters) != n)
		abort();
	m = store_keywords_names(&kw, letters, back, STORE_KEYWORDS_MAX);
	if (m != n)
		abort();
	for (i = 0; i < n; i++)
		if (strcmp(back[i], names[i]) != 0)
			abort();
}

static void
check_subs(const char *buf, size_t len, char sep)
{
	struct store_subs s;
	size_t i;

	memset(&s, 0, sizeof(s));
	if (store_subs_parse(buf, len, sep, &s) < 0)
		return;
	if (s.count > STORE_SUBS_MAX_NAMES)
		abort();
	for (i = 0; i < s.count; i++)
		if (!store_subs_contains(&s, s.names[i]))
			abort();
	store_subs_free(&s);
}

static void
check_rule(const char *buf, size_t len)
{
	struct store_quota_rule r;
	char text[512];
	const char *why = NULL;

	if (len >= sizeof(text))
		len = sizeof(text) - 1;
	memcpy(text, buf, len);
	text[len] = '\0';
	if (store_quota_rule_parse(text, &r, &why) < 0 && why == NULL &&
	    errno != ERANGE && errno != EINVAL)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data + 1;

	if (size < 1)
		return 0;
	switch (data[0] % 5) {
	case 0:
		check_quota(buf, size - 1);
		break;
	case 1:
		check_keywords(buf, size - 1);
		break;
	case 2:
		check_subs(buf, size - 1, '.');
		break;
	case 3:
		check_subs(buf, size - 1, '/');
		break;
	default:
		check_rule(buf, size - 1);
		break;
	}
	return 0;
}
