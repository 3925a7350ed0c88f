/* SPDX-License-Identifier: MIT */
/*
 * repl-hook/sync_dirty.c - the durable set of mailboxes to resync with one
 * replica: <state_dir>/replication/<NAME>.dirty, one "user\tmailbox\n" per
 * pair.
 *
 * Runs in:  repl-hook (run_user, seccomp).
 * Trust:    the file is ours (directory 0700, run_user), but its content is
 *           still bounded and checked line by line when loaded.
 * Order:    a new pair is appended and fdatasynced before the caller goes
 *           on; done pairs are dropped by writing <NAME>.dirty.tmp,
 *           fdatasync, renameat over <NAME>.dirty, fsync of the directory.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "privsep/privsep.h"
#include "repl-hook/sync_int.h"

#define DIRTY_LINE_MAX (2 * PSEP_NAME_MAX + 2)
#define DIRTY_BUF 65536

bool
sync_dirty_name_ok(const char *s)
{
	size_t len = strnlen(s, PSEP_NAME_MAX);

	return len > 0 && len < PSEP_NAME_MAX && strpbrk(s, "\t\r\n") == NULL;
}

/* "<NAME>.dirty" or "<NAME>.dirty.tmp"; -1 if the name cannot be used. */
static int
dirty_path(struct hook_replica *r, const char *suffix, char *out,
	   size_t size)
{
	const char *name = hook_replica_name(r);
	int n;

	if (name[0] == '\0' || name[0] == '.' || strchr(name, '/') != NULL) {
		errno = EINVAL;
		return -1;
	}
	n = snprintf(out, size, "%s.dirty%s", name, suffix);
	if (n < 0 || (size_t)n >= size) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

static int
write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static void
dirty_push(struct dirty_set *d, const char *user, const char *mailbox)
{
	if (d->n == d->cap) {
		d->cap = d->cap ? 2 * d->cap : 16;
		d->v = xrealloc(d->v, d->cap * sizeof(*d->v));
	}
	d->v[d->n].user = xstrdup(user);
	d->v[d->n].mailbox = xstrdup(mailbox);
	d->v[d->n].mark = ++d->mark_seq;
	d->n++;
}

/* One line of the file; false if malformed. */
static bool
dirty_line(struct dirty_set *d, char *line)
{
	char *tab = strchr(line, '\t');

	if (tab == NULL)
		return false;
	*tab = '\0';
	if (!sync_dirty_name_ok(line) || !sync_dirty_name_ok(tab + 1))
		return false;
	if (d->n >= SYNC_DIRTY_MAX) {
		d->overflow = true;
		return true;
	}
	if (sync_dirty_find(d, line, tab + 1) < 0)
		dirty_push(d, line, tab + 1);
	return true;
}

/* Split buf[0..*len) into lines; keeps an unfinished tail.  Returns the
 * number of malformed lines. */
static size_t
dirty_parse(struct dirty_set *d, char *buf, size_t *len, bool eof)
{
	size_t start = 0, bad = 0;

	for (;;) {
		char *nl = memchr(buf + start, '\n', *len - start);

		if (nl == NULL)
			break;
		*nl = '\0';
		if (!dirty_line(d, buf + start))
			bad++;
		start = (size_t)(nl - buf) + 1;
	}
	if (*len - start >= DIRTY_LINE_MAX || (eof && *len > start)) {
		bad++;                  /* over-long or unterminated */
		start = *len;
	}
	memmove(buf, buf + start, *len - start);
	*len -= start;
	return bad;
}

void
sync_dirty_load(struct dirty_set *d, struct hook_replica *r)
{
	char path[PSEP_NAME_MAX + 16];
	char *buf;
	size_t len = 0, bad = 0;
	int fd;

	if (d->loaded)
		return;
	d->loaded = true;
	if (dirty_path(r, "", path, sizeof(path)) < 0)
		return;
	fd = openat(hook_state_dirfd(hook_replica_hook(r)), path,
		    O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		if (errno != ENOENT)
			log_err("sync: replica=%s cannot open %s: %s",
				hook_replica_name(r), path, strerror(errno));
		return;
	}
	buf = xmalloc(DIRTY_BUF + 1);
	for (;;) {
		ssize_t n = read(fd, buf + len, DIRTY_BUF - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			log_err("sync: replica=%s read %s: %s", hook_replica_name(r),
				path, strerror(errno));
			break;
		}
		len += (size_t)n;
		bad += dirty_parse(d, buf, &len, n == 0);
		if (n == 0)
			break;
	}
	if (bad > 0)
		log_warn("sync: replica=%s %s: %zu bad lines skipped",
			 hook_replica_name(r), path, bad);
	if (d->overflow)
		log_warn("sync: replica=%s %s: over %u entries, a full sync will run",
			 hook_replica_name(r), path, SYNC_DIRTY_MAX);
	free(buf);
	close(fd);
}

long
sync_dirty_find(const struct dirty_set *d, const char *user,
		const char *mailbox)
{
	for (size_t i = 0; i < d->n; i++) {
		if (strcmp(d->v[i].user, user) == 0 &&
		    strcmp(d->v[i].mailbox, mailbox) == 0)
			return (long)i;
	}
	return -1;
}

static int
dirty_append(struct hook_replica *r, const char *user,
	     const char *mailbox)
{
	char path[PSEP_NAME_MAX + 16], line[DIRTY_LINE_MAX + 1];
	int fd, n, rc = -1;

	if (dirty_path(r, "", path, sizeof(path)) < 0)
		return -1;
	n = snprintf(line, sizeof(line), "%s\t%s\n", user, mailbox);
	if (n < 0 || (size_t)n >= sizeof(line)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	fd = openat(hook_state_dirfd(hook_replica_hook(r)), path,
		    O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -1;
	if (write_all(fd, line, (size_t)n) < 0 || fdatasync(fd) < 0)
		goto out;
	rc = 0;
out:
	close(fd);
	return rc;
}

int
sync_dirty_add(struct dirty_set *d, struct hook_replica *r, const char *user,
	       const char *mailbox)
{
	long i = sync_dirty_find(d, user, mailbox);

	if (i >= 0) {
		d->v[i].mark = ++d->mark_seq;
		return 0;
	}
	if (d->n >= SYNC_DIRTY_MAX) {
		if (!d->overflow)
			log_warn("sync: replica=%s dirty set full (%u): a full sync will run",
				 hook_replica_name(r), SYNC_DIRTY_MAX);
		d->overflow = true;
		return -1;
	}
	dirty_push(d, user, mailbox);
	if (dirty_append(r, user, mailbox) < 0)
		log_err("sync: replica=%s user=%s mailbox=%s cannot record dirty mailbox: %s",
			hook_replica_name(r), user, mailbox, strerror(errno));
	return 0;
}

void
sync_dirty_remove(struct dirty_set *d, size_t i)
{
	free(d->v[i].user);
	free(d->v[i].mailbox);
	d->v[i] = d->v[d->n - 1];
	d->n--;
}

/* Write every entry to fd through a bounded buffer. */
static int
dirty_write(const struct dirty_set *d, int fd)
{
	char *buf = xmalloc(DIRTY_BUF);
	size_t len = 0;
	int rc = -1;

	for (size_t i = 0; i < d->n; i++) {
		int n;

		if (DIRTY_BUF - len <= DIRTY_LINE_MAX) {
			if (write_all(fd, buf, len) < 0)
				goto out;
			len = 0;
		}
		n = snprintf(buf + len, DIRTY_BUF - len, "%s\t%s\n",
			     d->v[i].user, d->v[i].mailbox);
		if (n < 0 || (size_t)n >= DIRTY_BUF - len)
			goto out;
		len += (size_t)n;
	}
	if (write_all(fd, buf, len) < 0)
		goto out;
	rc = 0;
out:
	free(buf);
	return rc;
}

int
sync_dirty_rewrite(const struct dirty_set *d, struct hook_replica *r)
{
	char path[PSEP_NAME_MAX + 16], tmp[PSEP_NAME_MAX + 16];
	int dirfd = hook_state_dirfd(hook_replica_hook(r));
	const char *what = "name";
	int fd = -1, rc = -1;

	if (dirty_path(r, "", path, sizeof(path)) < 0 ||
	    dirty_path(r, ".tmp", tmp, sizeof(tmp)) < 0)
		goto out;
	what = "open";
	fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
		    0600);
	if (fd < 0)
		goto out;
	what = "write";
	if (dirty_write(d, fd) < 0)
		goto out;
	what = "fdatasync";
	if (fdatasync(fd) < 0)
		goto out;
	what = "rename";
	if (renameat(dirfd, tmp, dirfd, path) < 0)
		goto out;
	what = "fsync directory";
	if (fsync(dirfd) < 0)
		goto out;
	rc = 0;
out:
	if (rc < 0)
		log_err("sync: replica=%s cannot rewrite dirty set: %s: %s",
			hook_replica_name(r), what, strerror(errno));
	if (fd >= 0)
		close(fd);
	return rc;
}

void
sync_dirty_clear(struct dirty_set *d)
{
	for (size_t i = 0; i < d->n; i++) {
		free(d->v[i].user);
		free(d->v[i].mailbox);
	}
	free(d->v);
	d->v = NULL;
	d->n = d->cap = 0;
}
