/* SPDX-License-Identifier: MIT */
/*
 * storage/keywords.c - Dovecot's per-mailbox "dovecot-keywords" file: the
 * map from the letters a..z in Maildir file names (":2,<flags><letters>")
 * to IMAP keyword names, one "<index> <name>\n" line per keyword.
 *
 * Runs in:  a writer, with the user's credentials (the parser anywhere).
 * Trust:    the file is user-writable: read up to STORE_KEYWORDS_MAX_FILE
 *           octets, bad lines skipped as Dovecot skips them, names with
 *           control bytes dropped; opened O_NOFOLLOW in the mailbox fd.
 * Order:    the caller holds dovecot-uidlist.lock (store_uidlist_lock), as
 *           Dovecot does for every keywords write; the new file is written
 *           into dovecot-keywords.lock (leftover one removed first, then
 *           created O_EXCL), its mtime made to grow, fsynced and renamed
 *           over dovecot-keywords.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/sidefile_int.h"
#include "storage/storage.h"

#define KEYWORDS_LOCK STORE_KEYWORDS_FILE ".lock"

/* "<index> <name>" of one line (without '\n'), as Dovecot's sync. */
static void
keywords_line(const char *s, size_t len, struct store_keywords *out)
{
	const char *sp = memchr(s, ' ', len), *name;
	size_t nlen, i;
	unsigned idx = 0;

	if (sp == NULL || sp == s)
		return;
	for (i = 0; s + i < sp; i++) {
		if (s[i] < '0' || s[i] > '9' || idx >= STORE_KEYWORDS_MAX)
			return;
		idx = idx * 10 + (unsigned)(s[i] - '0');
	}
	name = sp + 1;
	nlen = len - (size_t)(name - s);
	if (idx >= STORE_KEYWORDS_MAX || nlen == 0 ||
	    nlen > STORE_KEYWORD_MAX_LEN)
		return;
	for (i = 0; i < nlen; i++)
		if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f)
			return;
	for (i = 0; i < STORE_KEYWORDS_MAX; i++)
		if (strlen(out->names[i]) == nlen &&
		    memcmp(out->names[i], name, nlen) == 0)
			return;
	/* a later line for the same index replaces the name, as Dovecot's
	 * array_idx_get_space */
	memcpy(out->names[idx], name, nlen);
	out->names[idx][nlen] = '\0';
}

int
store_keywords_parse(const char *buf, size_t len, struct store_keywords *out)
{
	const char *p = buf, *end = buf + len, *nl;

	memset(out->names, 0, sizeof(out->names));
	while (p < end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		if (nl == NULL)
			nl = end;
		keywords_line(p, (size_t)(nl - p), out);
		p = nl + 1;
	}
	return 0;
}

int
store_keywords_read(int box_fd, struct store_keywords *out)
{
	char *buf;
	struct stat st;
	ssize_t n;
	bool more;
	int saved;

	memset(out, 0, sizeof(*out));
	buf = malloc(STORE_KEYWORDS_MAX_FILE + 1);
	if (buf == NULL)
		return -1;
	n = store_side_read(box_fd, STORE_KEYWORDS_FILE, buf,
			    STORE_KEYWORDS_MAX_FILE, &more, &st);
	if (n < 0) {
		saved = errno;
		free(buf);
		errno = saved;
		return saved == ENOENT ? 0 : -1;
	}
	if (more) {
		free(buf);
		errno = EFBIG;
		return -1;
	}
	store_keywords_parse(buf, (size_t)n, out);
	out->mtime = st.st_mtime;
	free(buf);
	return 0;
}

bool
store_keyword_valid(const char *name)
{
	size_t i, len = strlen(name);

	if (len == 0 || len > STORE_KEYWORD_MAX_LEN || name[0] == '\\')
		return false;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];

		if (c <= 0x20 || c >= 0x7f || strchr("(){%*\"\\]", c) != NULL)
			return false;
	}
	return true;
}

int
store_keywords_letter(const struct store_keywords *kw, const char *name)
{
	int i;

	for (i = 0; i < STORE_KEYWORDS_MAX; i++)
		if (kw->names[i][0] != '\0' && strcmp(kw->names[i], name) == 0)
			return 'a' + i;
	errno = ENOENT;
	return -1;
}

/* The whole file content of kw into buf; returns its length. */
static size_t
keywords_format(const struct store_keywords *kw, char *buf, size_t size)
{
	size_t len = 0;
	int i, n;

	for (i = 0; i < STORE_KEYWORDS_MAX; i++) {
		if (kw->names[i][0] == '\0')
			continue;
		n = snprintf(buf + len, size - len, "%d %s\n", i, kw->names[i]);
		if (n > 0)
			len += (size_t)n;
	}
	return len;
}

/* Write kw through dovecot-keywords.lock; prev_mtime is the mtime of the
 * file read (the new one must be later, as Dovecot's readers compare it). */
static int
keywords_write(int box_fd, const struct store_keywords *kw, time_t prev_mtime)
{
	char buf[STORE_KEYWORDS_MAX * (STORE_KEYWORD_MAX_LEN + 8)];
	struct timespec ts[2];
	struct stat st;
	size_t len = keywords_format(kw, buf, sizeof(buf));
	int fd, saved;

	if (unlinkat(box_fd, KEYWORDS_LOCK, 0) < 0 && errno != ENOENT)
		return -1;
	fd = openat(box_fd, KEYWORDS_LOCK,
		    O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		    store_side_file_mode(box_fd));
	if (fd < 0)
		return -1;
	if (store_side_write_all(fd, buf, len) < 0 || fstat(fd, &st) < 0)
		goto fail;
	if (st.st_mtime <= prev_mtime) {
		ts[0].tv_sec = st.st_mtime;
		ts[0].tv_nsec = 0;
		ts[1].tv_sec = prev_mtime + 1;
		ts[1].tv_nsec = 0;
		if (futimens(fd, ts) < 0)
			goto fail;
	}
	return store_side_replace(box_fd, fd, KEYWORDS_LOCK,
				  STORE_KEYWORDS_FILE, "", 0);
fail:
	saved = errno;
	close(fd);
	(void)unlinkat(box_fd, KEYWORDS_LOCK, 0);
	errno = saved;
	return -1;
}

int
store_keywords_add(int box_fd, const char *name, struct store_keywords *kw_out)
{
	struct store_keywords *kw;
	int i, letter = -1, saved;

	if (!store_keyword_valid(name)) {
		errno = EINVAL;
		return -1;
	}
	kw = malloc(sizeof(*kw));
	if (kw == NULL)
		return -1;
	if (store_keywords_read(box_fd, kw) < 0)
		goto out;
	letter = store_keywords_letter(kw, name);
	if (letter < 0) {
		for (i = 0; i < STORE_KEYWORDS_MAX && kw->names[i][0] != '\0'; i++)
			;
		if (i == STORE_KEYWORDS_MAX) {
			errno = ENOSPC;
			goto out;
		}
		snprintf(kw->names[i], sizeof(kw->names[i]), "%s", name);
		if (keywords_write(box_fd, kw, kw->mtime) < 0)
			goto out;
		letter = 'a' + i;
	}
	if (kw_out != NULL)
		*kw_out = *kw;
out:
	saved = errno;
	free(kw);
	errno = saved;
	return letter;
}

size_t
store_keywords_names(const struct store_keywords *kw, const char *flags,
		     const char **names_out, size_t max)
{
	size_t n = 0;

	for (; *flags != '\0' && n < max; flags++) {
		if (*flags < 'a' || *flags > 'z' ||
		    kw->names[*flags - 'a'][0] == '\0')
			continue;
		names_out[n++] = kw->names[*flags - 'a'];
	}
	return n;
}

int
store_keywords_letters(const struct store_keywords *kw,
		       const char *const *names, size_t n, char *out,
		       size_t out_size)
{
	bool set[STORE_KEYWORDS_MAX] = { false };
	size_t i, len = 0;
	int letter;

	for (i = 0; i < n; i++) {
		letter = store_keywords_letter(kw, names[i]);
		if (letter < 0)
			return -1;
		set[letter - 'a'] = true;
	}
	for (i = 0; i < STORE_KEYWORDS_MAX; i++) {
		if (!set[i])
			continue;
		if (len + 1 >= out_size) {
			errno = ENAMETOOLONG;
			return -1;
		}
		out[len++] = (char)('a' + i);
	}
	if (out_size == 0) {
		errno = ENAMETOOLONG;
		return -1;
	}
	out[len] = '\0';
	return 0;
}
