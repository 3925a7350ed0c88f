/* SPDX-License-Identifier: MIT */
/*
 * storage/sidefile.c - bounded reads and lock-file replacement of the
 * small side files of a Maildir (see sidefile_int.h).
 *
 * Runs in:  a writer, with the user's credentials.
 * Trust:    the files are user-writable: nothing is followed (O_NOFOLLOW,
 *           relative to a directory fd), a FIFO or device does not block
 *           (O_NONBLOCK) and is refused, reads stop at the caller's bound.
 * Order:    replace = write the lock file, fsync, rename over the target.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include "storage/sidefile_int.h"

ssize_t
store_side_read(int dir_fd, const char *name, char *buf, size_t max,
		bool *more_out, struct stat *st_out)
{
	struct stat st;
	size_t got = 0;
	ssize_t n;
	char extra;
	int fd, saved;

	if (more_out != NULL)
		*more_out = false;
	fd = openat(dir_fd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return -1;
	if (fstat(fd, &st) < 0)
		goto fail;
	if (!S_ISREG(st.st_mode)) {
		errno = EINVAL;
		goto fail;
	}
	while (got < max) {
		n = read(fd, buf + got, max - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			goto fail;
		if (n == 0)
			break;
		got += (size_t)n;
	}
	buf[got] = '\0';
	if (got == max && more_out != NULL) {
		do
			n = read(fd, &extra, 1);
		while (n < 0 && errno == EINTR);
		if (n < 0)
			goto fail;
		*more_out = n > 0;
	}
	if (st_out != NULL)
		*st_out = st;
	close(fd);
	return (ssize_t)got;
fail:
	saved = errno;
	close(fd);
	errno = saved;
	return -1;
}

int
store_side_write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	ssize_t n;

	while (len > 0) {
		n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0) {
			errno = EIO;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

mode_t
store_side_file_mode(int dir_fd)
{
	struct stat st;

	if (fstat(dir_fd, &st) < 0)
		return 0600;
	return (st.st_mode & 0666) | 0600;
}

int
store_side_replace(int dir_fd, int lock_fd, const char *lock_name,
		   const char *name, const void *buf, size_t len)
{
	int saved;

	if (store_side_write_all(lock_fd, buf, len) < 0 || fsync(lock_fd) < 0)
		goto fail;
	if (close(lock_fd) < 0) {
		lock_fd = -1;
		goto fail;
	}
	lock_fd = -1;
	if (renameat(dir_fd, lock_name, dir_fd, name) < 0)
		goto fail;
	return 0;
fail:
	saved = errno;
	if (lock_fd >= 0)
		close(lock_fd);
	(void)unlinkat(dir_fd, lock_name, 0);
	errno = saved;
	return -1;
}
