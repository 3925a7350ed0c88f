/* SPDX-License-Identifier: MIT */
/*
 * writer/fetch.c - the content a FETCH hands on: a copy of the message
 * file in a sealed memfd.
 *
 * Runs in:  writer-seteuid and writer-child, under seccomp (memfd_create,
 *           read, write, fstat, fcntl, lseek).
 * Trust:    the message file is the user's: they may resize or rewrite it
 *           while it is read.  What leaves the writer is a sealed copy of
 *           one consistent size (the supervisor, repld and repl-hook check
 *           the size against the fd), or a per-message error: a file that
 *           changed while it was copied, or one larger than max.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "privsep/privsep.h"
#include "writer/writer_int.h"

#define FETCH_CHUNK (64u * 1024u)

static int
write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Copy size bytes of src into dst; 0, or -1 with errno (ESTALE: src
 * ended early or has more). */
static int
copy_exact(int src, int dst, uint64_t size)
{
	static char buf[FETCH_CHUNK];
	uint64_t done = 0;
	ssize_t n;

	for (;;) {
		n = read(src, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		if (done + (uint64_t)n > size) {
			errno = ESTALE;
			return -1;
		}
		if (write_all(dst, buf, (size_t)n) < 0)
			return -1;
		done += (uint64_t)n;
	}
	if (done != size) {
		errno = ESTALE;
		return -1;
	}
	return 0;
}

static bool
same_file_state(const struct stat *a, const struct stat *b)
{
	return a->st_size == b->st_size && a->st_ino == b->st_ino &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec &&
	       a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

int
writer_fetch_seal(int file_fd, uint64_t max, int *memfd_out, uint64_t *size_out,
		  const char **why_out)
{
	struct stat before, after;
	int fd = -1, err = 0;

	*memfd_out = -1;
	if (fstat(file_fd, &before) < 0 || !S_ISREG(before.st_mode)) {
		*why_out = "message file is not a regular file";
		errno = EIO;
		return -1;
	}
	if (max != 0 && (uint64_t)before.st_size > max) {
		*why_out = "message file larger than the largest message";
		errno = EFBIG;
		return -1;
	}
	fd = memfd_create("stowd-repl-fetch", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0) {
		*why_out = "create fetch memfd";
		return -1;
	}
	if (lseek(file_fd, 0, SEEK_SET) < 0 ||
	    copy_exact(file_fd, fd, (uint64_t)before.st_size) < 0 ||
	    fstat(file_fd, &after) < 0)
		err = errno != 0 ? errno : EIO;
	else if (!same_file_state(&before, &after))
		err = ESTALE;
	if (err != 0) {
		*why_out = err == ESTALE ? "message file changed while it was read" :
					   "read message file";
		close(fd);
		errno = err;
		return -1;
	}
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK |
		  F_SEAL_SEAL) < 0 || lseek(fd, 0, SEEK_SET) < 0) {
		*why_out = "seal fetch memfd";
		close(fd);
		return -1;
	}
	*memfd_out = fd;
	*size_out = (uint64_t)before.st_size;
	return 0;
}
