/* SPDX-License-Identifier: MIT */
/*
 * storage/sidefile_int.h - reading and replacing the small side files of a
 * Maildir (maildirsize, dovecot-keywords, subscriptions) through the fd of
 * the directory that holds them; shared by quota.c, keywords.c,
 * subscriptions.c and dotlock.c, never included from another directory.
 *
 * Runs in:  a writer, with the user's credentials.
 * Trust:    the files are user-writable: opened O_NOFOLLOW|O_NONBLOCK,
 *           required to be regular files, read up to a caller-given bound.
 */
#ifndef STOWD_STORAGE_SIDEFILE_INT_H
#define STOWD_STORAGE_SIDEFILE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

/*
 * Read at most max octets of the regular file name in dir_fd into buf
 * (which has room for max + 1 octets; a NUL is stored after the data).
 * *more_out (may be NULL) tells whether the file holds more than max
 * octets; *st_out (may be NULL) gets its fstat.  Returns the number of
 * octets read, or -1 with errno: ENOENT (no file), ELOOP (a symlink),
 * EINVAL (not a regular file), or an open/read errno.
 */
ssize_t store_side_read(int dir_fd, const char *name, char *buf, size_t max,
			bool *more_out, struct stat *st_out);

/* write() all of buf to fd, retrying on EINTR and short writes.
 * Returns 0 or -1 with errno. */
int store_side_write_all(int fd, const void *buf, size_t len);

/* Mode for a new file in dir_fd as Dovecot picks it: the directory's
 * permission bits without the execute bits (0700 -> 0600). */
mode_t store_side_file_mode(int dir_fd);

/*
 * Replace name in dir_fd: write buf into lock_name (an fd the caller
 * created O_EXCL, lock_fd), fsync it and rename lock_name over name.
 * On failure lock_name is unlinked.  lock_fd is always closed.
 * Returns 0 or -1 with errno.
 */
int store_side_replace(int dir_fd, int lock_fd, const char *lock_name,
		       const char *name, const void *buf, size_t len);

#endif
