/* SPDX-License-Identifier: MIT */
/*
 * storage/dotlock.c - Dovecot-compatible dot-locks ("<file>.lock") in a
 * Maildir directory: dovecot-uidlist.lock (the mailbox lock Dovecot holds
 * while it changes dovecot-keywords), subscriptions.lock and
 * dovecot-keywords.lock.
 *
 * Runs in:  a writer, with the user's credentials.
 * Trust:    the directory is user-controlled: the lock is created
 *           O_CREAT|O_EXCL|O_NOFOLLOW relative to the directory fd; its
 *           content ("<pid>:<host>") is read with a small bound; released
 *           only if the inode is still the one we created.
 * Stale:    as Dovecot's file-dotlock: a lock naming a pid of this host
 *           that no longer exists (and older than 2 s) is removed; so is a
 *           lock when neither it nor the protected file changed for
 *           stale_secs.  Waits poll every 50 ms up to timeout_secs.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "storage/sidefile_int.h"
#include "storage/storage.h"

#define DOTLOCK_PID_CHECK_SECS 2
#define DOTLOCK_POLL_NSEC (50L * 1000 * 1000)

static void
dotlock_hostname(char *out, size_t size)
{
	if (gethostname(out, size) < 0)
		snprintf(out, size, "localhost");
	out[size - 1] = '\0';
}

/* The pid in a "<pid>:<host>" lock of this host, else 0. */
static pid_t
dotlock_local_pid(int dir_fd, const char *lock)
{
	char buf[320], host[256], *colon, *end;
	long pid;

	if (store_side_read(dir_fd, lock, buf, sizeof(buf) - 1, NULL, NULL) <= 0)
		return 0;
	buf[strcspn(buf, "\n")] = '\0';
	colon = strchr(buf, ':');
	if (colon == NULL)
		return 0;
	*colon = '\0';
	dotlock_hostname(host, sizeof(host));
	if (strcmp(colon + 1, host) != 0)
		return 0;
	errno = 0;
	pid = strtol(buf, &end, 10);
	if (errno != 0 || *end != '\0' || end == buf || pid <= 0 ||
	    pid > 0x3fffffff)
		return 0;
	return (pid_t)pid;
}

/* When a file last changed, as Dovecot's first look at it: its mtime if
 * that is later than its ctime and not in the future, else its ctime. */
static time_t
dotlock_changed_at(const struct stat *st, time_t now)
{
	return st->st_mtime <= now && st->st_mtime > st->st_ctime ?
	       st->st_mtime : st->st_ctime;
}

/* True if the existing lock may be removed. */
static bool
dotlock_is_stale(int dir_fd, const char *lock, const char *file,
		 const struct store_dotlock_set *set, time_t now)
{
	struct stat lst, fst;
	time_t last;
	pid_t pid;

	if (fstatat(dir_fd, lock, &lst, AT_SYMLINK_NOFOLLOW) < 0)
		return false;          /* gone: the next create may work */
	if (lst.st_mtime < now - DOTLOCK_PID_CHECK_SECS) {
		pid = dotlock_local_pid(dir_fd, lock);
		if (pid > 0 && pid != getpid() && kill(pid, 0) < 0 &&
		    errno == ESRCH)
			return true;
		if (pid > 0 && pid == getpid())
			return true;   /* ours from before: recreate */
	}
	if (set->stale_secs == 0)
		return false;
	last = dotlock_changed_at(&lst, now);
	if (fstatat(dir_fd, file, &fst, AT_SYMLINK_NOFOLLOW) == 0 &&
	    dotlock_changed_at(&fst, now) > last)
		last = dotlock_changed_at(&fst, now);
	return now > last + (time_t)set->stale_secs;
}

static int
dotlock_create(int dir_fd, const char *lock, bool write_pid)
{
	char buf[320], host[256];
	int fd, n, saved;

	fd = openat(dir_fd, lock,
		    O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		    store_side_file_mode(dir_fd));
	if (fd < 0 || !write_pid)
		return fd;
	dotlock_hostname(host, sizeof(host));
	n = snprintf(buf, sizeof(buf), "%ld:%s", (long)getpid(), host);
	if (n < 0 || (size_t)n >= sizeof(buf))
		n = 0;
	if (store_side_write_all(fd, buf, (size_t)n) < 0) {
		saved = errno;
		close(fd);
		(void)unlinkat(dir_fd, lock, 0);
		errno = saved;
		return -1;
	}
	return fd;
}

int
store_dotlock_take(int dir_fd, const char *file,
		   const struct store_dotlock_set *set, struct store_dotlock *out)
{
	struct timespec pause = { 0, DOTLOCK_POLL_NSEC };
	struct stat st;
	time_t start = time(NULL), now;
	int n, fd;

	memset(out, 0, sizeof(*out));
	out->fd = -1;
	out->dir_fd = -1;
	n = snprintf(out->lock, sizeof(out->lock), "%s.lock", file);
	if (n < 0 || (size_t)n >= sizeof(out->lock) ||
	    strlen(file) >= sizeof(out->file) || strchr(file, '/') != NULL) {
		errno = ENAMETOOLONG;
		return -1;
	}
	snprintf(out->file, sizeof(out->file), "%s", file);
	for (;;) {
		fd = dotlock_create(dir_fd, out->lock, set->write_pid);
		if (fd >= 0)
			break;
		if (errno != EEXIST)
			return -1;
		now = time(NULL);
		if (dotlock_is_stale(dir_fd, out->lock, file, set, now)) {
			(void)unlinkat(dir_fd, out->lock, 0);
			continue;
		}
		if (now >= start + (time_t)set->timeout_secs) {
			errno = EAGAIN;
			return -1;
		}
		nanosleep(&pause, NULL);
	}
	if (fstat(fd, &st) < 0) {
		n = errno;
		close(fd);
		(void)unlinkat(dir_fd, out->lock, 0);
		errno = n;
		return -1;
	}
	out->dev = st.st_dev;
	out->ino = st.st_ino;
	out->dir_fd = dir_fd;
	if (set->write_pid)
		close(fd);
	else
		out->fd = fd;
	return 0;
}

/* True if the lock file in the directory is still the one we made. */
static bool
dotlock_still_ours(const struct store_dotlock *l)
{
	struct stat st;

	return fstatat(l->dir_fd, l->lock, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	       st.st_dev == l->dev && st.st_ino == l->ino;
}

int
store_dotlock_touch(struct store_dotlock *l)
{
	if (l->dir_fd < 0 || !dotlock_still_ours(l)) {
		errno = ESTALE;
		return -1;
	}
	return utimensat(l->dir_fd, l->lock, NULL, AT_SYMLINK_NOFOLLOW);
}

int
store_dotlock_release(struct store_dotlock *l)
{
	int ret = 0;

	if (l == NULL || l->dir_fd < 0)
		return 0;
	if (l->fd >= 0)
		close(l->fd);
	l->fd = -1;
	if (!dotlock_still_ours(l)) {
		errno = ESTALE;
		ret = -1;
	} else if (unlinkat(l->dir_fd, l->lock, 0) < 0) {
		ret = -1;
	}
	l->dir_fd = -1;
	return ret;
}

int
store_dotlock_replace(struct store_dotlock *l, const void *buf, size_t len)
{
	int ret, fd = l->fd;

	if (l->dir_fd < 0 || fd < 0) {
		errno = EBADF;
		return -1;
	}
	l->fd = -1;
	if (!dotlock_still_ours(l)) {
		close(fd);
		l->dir_fd = -1;
		errno = ESTALE;
		return -1;
	}
	ret = store_side_replace(l->dir_fd, fd, l->lock, l->file, buf, len);
	l->dir_fd = -1;
	return ret;
}

int
store_uidlist_lock(int box_fd, unsigned timeout_secs, struct store_dotlock *out)
{
	struct store_dotlock_set set = {
		.timeout_secs = timeout_secs,
		.stale_secs = STORE_UIDLIST_LOCK_STALE_SECS,
		.write_pid = true,
	};

	return store_dotlock_take(box_fd, STORE_UIDLIST_FILE, &set, out);
}
