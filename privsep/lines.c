/* SPDX-License-Identifier: MIT */
/*
 * privsep/lines.c - a sealed memfd built one text line at a time: the
 * data of a LIST/SYNC/GUIDS reply (writer) and the user list for
 * repl-hook (supervisor), both passed on as a read-only fd.
 *
 * Runs in:  the writer (seccomp: memfd_create, write, fcntl, lseek) and
 *           the supervisor.
 * Trust:    the lines are built here; each is bounded by
 *           PSEP_LINES_LINE_MAX and may not contain a newline.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "privsep/privsep.h"

int
psep_lines_open(struct psep_lines *l, const char *name)
{
	l->size = 0;
	l->lines = 0;
	l->fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
	return l->fd < 0 ? -1 : 0;
}

int
psep_lines_add(struct psep_lines *l, const char *line, size_t n)
{
	char buf[PSEP_LINES_LINE_MAX + 1];
	size_t off = 0;

	if (n == 0 || n >= PSEP_LINES_LINE_MAX || memchr(line, '\n', n) != NULL) {
		errno = EOVERFLOW;
		return -1;
	}
	memcpy(buf, line, n);
	buf[n++] = '\n';
	while (off < n) {
		ssize_t w = write(l->fd, buf + off, n - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		off += (size_t)w;
	}
	l->size += n;
	l->lines++;
	return 0;
}

int
psep_lines_seal(struct psep_lines *l)
{
	if (fcntl(l->fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK |
		  F_SEAL_SEAL) < 0 || lseek(l->fd, 0, SEEK_SET) < 0)
		return -1;
	return 0;
}
