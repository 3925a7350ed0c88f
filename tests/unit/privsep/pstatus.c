/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/privsep/pstatus.c - /proc/<pid>/status and /proc/<pid>/fd
 * readers for the privsep tests.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pstatus.h"

int
pstatus_read(pid_t pid, char *buf, size_t size)
{
	char path[64];
	size_t len = 0;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || size == 0)
		return -1;
	while (len + 1 < size && (n = read(fd, buf + len, size - 1 - len)) > 0)
		len += (size_t)n;
	close(fd);
	buf[len] = '\0';
	return len > 0 ? 0 : -1;
}

const char *
pstatus_field(const char *status, const char *key, char *out, size_t size)
{
	size_t klen = strlen(key);
	const char *p = status;

	while (p != NULL && *p != '\0') {
		if (strncmp(p, key, klen) == 0 && p[klen] == ':') {
			const char *v = p + klen + 1;
			size_t n;

			if (*v == '\t')
				v++;
			n = strcspn(v, "\n");
			while (n > 0 && v[n - 1] == ' ')  /* "Groups:\t1 2 \n" */
				n--;
			if (n >= size)
				n = size - 1;
			memcpy(out, v, n);
			out[n] = '\0';
			return out;
		}
		p = strchr(p, '\n');
		if (p != NULL)
			p++;
	}
	return NULL;
}

static int
int_cmp(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;

	return (x > y) - (x < y);
}

int
pstatus_fds(pid_t pid, int *fds, size_t max)
{
	char path[64];
	struct dirent *e;
	DIR *d;
	int n = 0;

	snprintf(path, sizeof(path), "/proc/%ld/fd", (long)pid);
	d = opendir(path);
	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL) {
		int fd;

		if (e->d_name[0] == '.')
			continue;
		fd = atoi(e->d_name);
		if (pid == getpid() && fd == dirfd(d))
			continue;
		if ((size_t)n < max)
			fds[n] = fd;
		n++;
	}
	closedir(d);
	qsort(fds, (size_t)n < max ? (size_t)n : max, sizeof(int), int_cmp);
	return n;
}

bool
pstatus_has_fd(const int *fds, int n, int fd)
{
	int i;

	for (i = 0; i < n; i++)
		if (fds[i] == fd)
			return true;
	return false;
}

int
pstatus_fd_target(pid_t pid, int fd, char *out, size_t size)
{
	char path[64];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%ld/fd/%d", (long)pid, fd);
	n = readlink(path, out, size - 1);
	if (n < 0)
		return -1;
	out[n] = '\0';
	return 0;
}
