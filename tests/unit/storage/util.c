/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/storage/util.c - file system helpers for the storage tests.
 */
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/unit/storage/util.h"

void
tu_mkdtemp(char *out)
{
	const char *tmp = getenv("TMPDIR");

	/* /dev/shm by default: the save path fsyncs a lot, tmpfs makes that
	 * free and keeps the tests fast; $TMPDIR picks a real disk. */
	if (tmp == NULL || *tmp == '\0')
		tmp = access("/dev/shm", W_OK | X_OK) == 0 ? "/dev/shm" : "/tmp";
	snprintf(out, PATH_MAX, "%s/stowd-test-XXXXXX", tmp);
	if (mkdtemp(out) == NULL)
		abort();
}

void *
tu_tree_new(size_t size)
{
	struct tu_tree *t = calloc(1, size);

	if (t == NULL || size < sizeof(*t))
		abort();
	tu_mkdtemp(t->root);
	snprintf(t->base, sizeof(t->base), "%.4000s/base", t->root);
	return t;
}

int
tu_tree_teardown(void **state)
{
	struct tu_tree *t = *state;

	tu_rmtree(t->root);
	free(t);
	return 0;
}

static int
tu_rm_one(const char *path, const struct stat *st, int flag,
	  struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag == FTW_DP)
		return rmdir(path);
	return unlink(path);
}

int
tu_rmtree(const char *path)
{
	return nftw(path, tu_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

int
tu_count_entries(const char *path)
{
	struct dirent *de;
	DIR *d = opendir(path);
	int n = 0;

	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			n++;
	}
	closedir(d);
	return n;
}

int
tu_only_entry(const char *path, char *out)
{
	struct dirent *de;
	DIR *d = opendir(path);
	int n = 0;

	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(out, 256, "%s", de->d_name);
		n++;
	}
	closedir(d);
	return n == 1 ? 0 : -1;
}

ssize_t
tu_read_file(const char *path, char **buf_out)
{
	size_t cap = 4096, len = 0;
	char *buf = malloc(cap);
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || buf == NULL) {
		free(buf);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	while ((n = read(fd, buf + len, cap - len)) > 0) {
		len += (size_t)n;
		if (len == cap) {
			cap *= 2;
			buf = realloc(buf, cap);
			if (buf == NULL)
				abort();
		}
	}
	close(fd);
	*buf_out = buf;
	return n < 0 ? -1 : (ssize_t)len;
}

int
tu_write_file(const char *path, const void *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	int ret = 0;

	if (fd < 0)
		return -1;
	if (write(fd, buf, len) != (ssize_t)len)
		ret = -1;
	close(fd);
	return ret;
}

const char *
tu_path(const char *fmt, ...)
{
	static char bufs[16][PATH_MAX];
	static unsigned int next;
	char *b = bufs[next++ % 16];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(b, PATH_MAX, fmt, ap);
	va_end(ap);
	return b;
}
