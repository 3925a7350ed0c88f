/* SPDX-License-Identifier: MIT */
/*
 * tests/lib/maildir.c - what stowd left on disk, checked from outside:
 * Maildir listings, file contents, owners and modes, the headers stowd
 * prepends to a stored message.
 *
 * Runs in:  integration test programs, as root.
 * Trust:    the tree may hold symlinks planted by a test: listings use
 *           lstat / FTW_PHYS and never follow them.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/lib/harness.h"

static int
cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int
harness_dir_list(const char *dir, char ***names_out)
{
	char **v = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	DIR *d = opendir(dir);

	*names_out = NULL;
	if (d == NULL) {
		if (errno == ENOENT)
			return 0;
		fprintf(stderr, "harness: opendir %s: %s\n", dir, strerror(errno));
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (n == cap) {
			char **nv;

			cap = cap ? cap * 2 : 16;
			nv = realloc(v, cap * sizeof(*v));
			if (nv == NULL)
				break;
			v = nv;
		}
		v[n] = strdup(de->d_name);
		if (v[n] == NULL)
			break;
		n++;
	}
	closedir(d);
	if (n > 0)
		qsort(v, n, sizeof(*v), cmp_names);
	*names_out = v;
	return (int)n;
}

void
harness_names_free(char ***names, int n)
{
	if (names == NULL || *names == NULL)
		return;
	for (int i = 0; i < n; i++)
		free((*names)[i]);
	free(*names);
	*names = NULL;
}

int
harness_maildir_list(const struct harness *h, unsigned idx, const char *sub,
		     char ***names_out)
{
	char dir[512];

	snprintf(dir, sizeof(dir), "%s%s%s", h->users[idx].maildir,
		 sub[0] ? "/" : "", sub);
	return harness_dir_list(dir, names_out);
}

int
harness_count_new(const struct harness *h, unsigned idx)
{
	char **names;
	int n = harness_maildir_list(h, idx, "new", &names);

	harness_names_free(&names, n);
	return n;
}

static int count_acc;

static int
count_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)path;
	(void)ftw;
	if (flag == FTW_F && S_ISREG(st->st_mode))
		count_acc++;
	return 0;
}

int
harness_count_files(const char *dir)
{
	struct stat st;

	if (lstat(dir, &st) < 0)
		return errno == ENOENT ? 0 : -1;
	count_acc = 0;
	if (nftw(dir, count_entry, 16, FTW_PHYS) < 0)
		return -1;
	return count_acc;
}

int
harness_read_file(const char *path, char **data_out, size_t *len_out)
{
	char *buf = NULL;
	size_t len = 0, cap = 0;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

	if (fd < 0)
		return -1;
	for (;;) {
		if (len + 4097 > cap) {
			char *nb;

			cap = cap ? cap * 2 : 65536;
			nb = realloc(buf, cap);
			if (nb == NULL) {
				free(buf);
				close(fd);
				errno = ENOMEM;
				return -1;
			}
			buf = nb;
		}
		n = read(fd, buf + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int saved = errno;

			free(buf);
			close(fd);
			errno = saved;
			return -1;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	buf[len] = '\0';
	*data_out = buf;
	if (len_out != NULL)
		*len_out = len;
	return 0;
}

int
harness_write_file(const char *path, const void *data, size_t len, mode_t mode)
{
	const char *p = data;
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
	ssize_t n;

	if (fd < 0) {
		fprintf(stderr, "harness: open %s: %s\n", path, strerror(errno));
		return -1;
	}
	while (len > 0) {
		n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			close(fd);
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return close(fd);
}

int
harness_check_owner_mode(const char *path, uid_t uid, gid_t gid, mode_t mode,
			 char *why, size_t why_size)
{
	struct stat st;

	if (lstat(path, &st) < 0) {
		snprintf(why, why_size, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (S_ISLNK(st.st_mode)) {
		snprintf(why, why_size, "%s is a symlink", path);
		return -1;
	}
	if (st.st_uid != uid || st.st_gid != gid || (st.st_mode & 07777) != mode) {
		snprintf(why, why_size, "%s: owner %u:%u mode %04o, want %u:%u %04o",
			 path, (unsigned)st.st_uid, (unsigned)st.st_gid,
			 (unsigned)(st.st_mode & 07777), (unsigned)uid, (unsigned)gid,
			 (unsigned)mode);
		return -1;
	}
	return 0;
}

char *
harness_crlf_to_lf(const char *body, size_t len, size_t *len_out)
{
	char *out = malloc(len + 2);
	size_t i, o = 0;

	if (out == NULL)
		return NULL;
	for (i = 0; i < len; i++) {
		if (body[i] == '\r' && i + 1 < len && body[i + 1] == '\n')
			continue;
		out[o++] = body[i];
	}
	out[o] = '\0';
	*len_out = o;
	return out;
}

/* One line of the added headers; counts in c[0..2], false if foreign. */
static bool
header_line(const char *l, size_t n, const char *rcpt, unsigned c[3], bool *cont_ok,
	    char *why, size_t why_size)
{
	static const char *const names[3] = { "Return-Path:", "Delivered-To:",
					      "Received:" };

	if (n > 0 && (l[0] == '\t' || l[0] == ' ')) {
		if (!*cont_ok)
			goto foreign;
		return true;
	}
	for (int i = 0; i < 3; i++) {
		size_t k = strlen(names[i]);

		if (n < k || strncmp(l, names[i], k) != 0)
			continue;
		c[i]++;
		*cont_ok = true;
		if (i == 1 && rcpt != NULL && memmem(l, n, rcpt, strlen(rcpt)) == NULL) {
			snprintf(why, why_size, "Delivered-To does not name %s: %.*s",
				 rcpt, (int)n, l);
			return false;
		}
		return true;
	}
foreign:
	snprintf(why, why_size, "unexpected line before the body: \"%.*s\"",
		 (int)(n > 200 ? 200 : n), l);
	return false;
}

int
harness_check_stored(const char *msg, size_t len, const char *rcpt,
		     const char *body, size_t blen, char *why, size_t why_size)
{
	size_t elen, hlen, i;
	unsigned counts[3] = { 0, 0, 0 };
	bool cont_ok = false;
	char *exp = harness_crlf_to_lf(body, blen, &elen);
	int rc = -1;

	if (exp == NULL)
		return -1;
	if (elen == 0 || exp[elen - 1] != '\n')
		exp[elen++] = '\n';   /* lmtpc_dot_stuff added a CRLF */
	if (len < elen || memcmp(msg + len - elen, exp, elen) != 0) {
		for (i = 0; i < elen && i < len && msg[len - 1 - i] == exp[elen - 1 - i]; i++)
			;
		snprintf(why, why_size, "stored file (%zu bytes) does not end with the "
			 "%zu-byte body: they differ %zu bytes before the end", len,
			 elen, i);
		goto out;
	}
	hlen = len - elen;
	if (hlen > 0 && msg[hlen - 1] != '\n') {
		snprintf(why, why_size, "added headers do not end with LF");
		goto out;
	}
	for (i = 0; i < hlen;) {
		const char *nl = memchr(msg + i, '\n', hlen - i);
		size_t n = (size_t)(nl - (msg + i));

		if (n > 0 && msg[i + n - 1] == '\r') {
			snprintf(why, why_size, "CR in the added headers");
			goto out;
		}
		if (!header_line(msg + i, n, rcpt, counts, &cont_ok, why, why_size))
			goto out;
		i += n + 1;
	}
	if (counts[0] != 1 || counts[1] != 1 || counts[2] < 1) {
		snprintf(why, why_size, "added headers: %u Return-Path, %u Delivered-To, "
			 "%u Received (want 1, 1, >= 1)", counts[0], counts[1], counts[2]);
		goto out;
	}
	rc = 0;
out:
	free(exp);
	return rc;
}

int
harness_reply_guid(const char *reply_text, char guid_out[33])
{
	const char *p = strstr(reply_text, "Saved as ");
	size_t i;

	guid_out[0] = '\0';
	if (p == NULL)
		return -1;
	p += 9;
	for (i = 0; i < 32; i++) {
		char ch = p[i];

		if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') ||
		      (ch >= 'A' && ch <= 'F')))
			return -1;
		guid_out[i] = ch;
	}
	if (p[32] != '\0' && p[32] != ' ' && p[32] != '\n')
		return -1;
	guid_out[32] = '\0';
	return 0;
}

int
harness_find_guid(const struct harness *h, unsigned idx, const char *guid,
		  char *path_out, size_t path_size)
{
	char **names;
	int n = harness_maildir_list(h, idx, "new", &names), i, rc = -1;

	for (i = 0; i < n; i++) {
		if (strcasestr(names[i], guid) != NULL) {
			snprintf(path_out, path_size, "%s/new/%s", h->users[idx].maildir,
				 names[i]);
			rc = 0;
			break;
		}
	}
	harness_names_free(&names, n);
	return rc;
}
