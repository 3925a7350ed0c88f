/* SPDX-License-Identifier: MIT */
/*
 * storage/repl/subs.c - the user's subscriptions in replication
 * (doc/replication-protocol.md §7.6, §8.13): the replicated SUBSCRIBE and
 * UNSUBSCRIBE change Dovecot's subscriptions file in the Maildir root as
 * Dovecot does (storage/subscriptions.c: under subscriptions.lock, a new
 * file renamed over the old one); change capture compares that file with
 * stowd-subscriptions, the list as stowd last saw it (a header line and
 * one mailbox name per line), and reports what others changed.  stowd's
 * own SUBSCRIBE and UNSUBSCRIBE update stowd-subscriptions in the same
 * locked step, so they are not reported back.
 *
 * Runs in:  a writer, with the user's credentials, under its seccomp list.
 * Trust:    the Maildir is user-controlled: the root is opened by
 *           storage/walk.c (no symlink followed, owner checked);
 *           stowd-subscriptions is opened O_NOFOLLOW, must be a regular
 *           file of the user, is read up to SEEN_FILE_MAX octets and every
 *           line checked (a valid mailbox name): a damaged file counts as
 *           missing (written anew, nothing reported); subscriptions is read
 *           with the bounds of store_subs_read, and a name in it that is
 *           not a valid protocol mailbox name (§4) is neither kept nor
 *           reported.  The lock is waited for SUBS_LOCK_WAIT seconds at
 *           most, so a lock the user holds costs a retry, not a writer.
 * Order:    under flock(LOCK_EX) of stowd-subscriptions: SUBSCRIBE changes
 *           subscriptions under its dot-lock (fsync of the new file,
 *           rename, fsync of the root), then notes the change; capture
 *           reads subscriptions, reports, and rewrites stowd-subscriptions
 *           in place (fdatasync) only once the whole report is out.
 * Syscalls: those of walk.c, storage/subscriptions.c and storage/dotlock.c,
 *           openat, flock, fstat, pread64, pwrite64, ftruncate, fdatasync.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/repl/repl_int.h"

#define SUBS_SEP '.'                /* the Maildir++ hierarchy separator */
#define SUBS_LOCK_WAIT 5            /* seconds for subscriptions.lock */
#define SEEN_FILE "stowd-subscriptions"
#define SEEN_HEADER "stowd-subscriptions 1\n"   /* an empty list is valid */
#define SEEN_FILE_MAX (4u << 20)

/* ---- a set of names ------------------------------------------------------ */

static void
names_free(struct store_subs_names *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
	memset(s, 0, sizeof(*s));
}

static int
names_add(struct store_subs_names *s, const char *name)
{
	char **v;

	if (s->n >= STORE_SUBS_MAX_NAMES) {
		errno = E2BIG;
		return -1;
	}
	if (s->n == s->cap) {
		v = realloc(s->v, (s->cap ? s->cap * 2 : 16) * sizeof(*v));
		if (v == NULL)
			return -1;
		s->v = v;
		s->cap = s->cap ? s->cap * 2 : 16;
	}
	s->v[s->n] = strdup(name);
	if (s->v[s->n] == NULL)
		return -1;
	s->n++;
	return 0;
}

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sort and drop repeats. */
static void
names_sort(struct store_subs_names *s)
{
	size_t i, j;

	if (s->n == 0)
		return;
	qsort(s->v, s->n, sizeof(*s->v), name_cmp);
	for (i = j = 1; i < s->n; i++) {
		if (strcmp(s->v[i], s->v[j - 1]) == 0)
			free(s->v[i]);
		else
			s->v[j++] = s->v[i];
	}
	s->n = j;
}

static bool
names_has(const struct store_subs_names *s, const char *name)
{
	return s->n > 0 &&
	       bsearch(&name, s->v, s->n, sizeof(*s->v), name_cmp) != NULL;
}

/* The protocol name of a subscription ("INBOX" for the inbox) into
 * out[NAME_MAX + 1]; false if it cannot travel (§4). */
static bool
name_canon(const char *name, char out[NAME_MAX + 1])
{
	char dir[NAME_MAX + 1];

	if (store_repl_mailbox_check(name, dir) < 0)
		return false;
	snprintf(out, NAME_MAX + 1, "%s", dir[0] == '\0' ? "INBOX" : name);
	return true;
}

/* Dovecot's subscriptions of root, the names that can travel, sorted. */
static int
subs_now(int root, struct store_subs_names *now)
{
	struct store_subs s;
	char name[NAME_MAX + 1];
	int ret = 0;

	if (store_subs_read(root, SUBS_SEP, &s) < 0)
		return -1;
	for (size_t i = 0; i < s.count && ret == 0; i++)
		if (name_canon(s.names[i], name))
			ret = names_add(now, name);
	store_subs_free(&s);
	names_sort(now);
	return ret;
}

/* ---- stowd-subscriptions -------------------------------------------------- */

/* Parse the file's content (after the header) into s; false if damaged. */
static bool
seen_parse(char *buf, size_t len, struct store_subs_names *s)
{
	char *p = buf, *end = buf + len, *nl;
	char name[NAME_MAX + 1];

	while (p < end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		if (nl == NULL)
			return false;
		*nl = '\0';
		if (!name_canon(p, name) || strcmp(name, p) != 0 || names_add(s, p) < 0)
			return false;
		p = nl + 1;
	}
	names_sort(s);
	return true;
}

/* Open (create) and lock the file in root; read it into l->seen.
 * l->valid false if it was missing or damaged.  0 or -1 with errno. */
static int
seen_open(int root, uid_t uid, struct store_subs_look *l)
{
	struct stat st;
	char *buf;
	ssize_t n;

	l->valid = false;
	l->fd = openat(root, SEEN_FILE, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC |
		       O_NONBLOCK, 0600);
	if (l->fd < 0)
		return -1;
	if (fstat(l->fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != uid) {
		close(l->fd);
		l->fd = -1;
		errno = EPERM;
		return -1;
	}
	if (flock(l->fd, LOCK_EX) < 0 || fstat(l->fd, &st) < 0) {
		close(l->fd);
		l->fd = -1;
		return -1;
	}
	if (st.st_size == 0 || (uint64_t)st.st_size > SEEN_FILE_MAX)
		return 0;   /* new (empty: no header) or too big: not valid */
	buf = malloc((size_t)st.st_size + 1);
	if (buf == NULL)
		return 0;
	n = pread(l->fd, buf, (size_t)st.st_size, 0);
	if (n == st.st_size && (size_t)n >= sizeof(SEEN_HEADER) - 1 &&
	    memcmp(buf, SEEN_HEADER, sizeof(SEEN_HEADER) - 1) == 0)
		l->valid = seen_parse(buf + sizeof(SEEN_HEADER) - 1,
				      (size_t)n - (sizeof(SEEN_HEADER) - 1), &l->seen);
	if (!l->valid)
		names_free(&l->seen);
	free(buf);
	return 0;
}

static int
seen_write(int fd, const struct store_subs_names *s)
{
	off_t off = (off_t)(sizeof(SEEN_HEADER) - 1);
	char line[NAME_MAX + 2];
	int n;

	if (ftruncate(fd, 0) < 0 ||
	    pwrite(fd, SEEN_HEADER, sizeof(SEEN_HEADER) - 1, 0) !=
	    (ssize_t)(sizeof(SEEN_HEADER) - 1))
		return -1;
	for (size_t i = 0; i < s->n; i++) {
		n = snprintf(line, sizeof(line), "%s\n", s->v[i]);
		if (n < 0 || (size_t)n >= sizeof(line)) {
			errno = ENAMETOOLONG;
			return -1;
		}
		if (pwrite(fd, line, (size_t)n, off) != n)
			return -1;
		off += n;
	}
	return fdatasync(fd);
}

/* ---- capture -------------------------------------------------------------- */

int
store_subs_look(const struct store_repl_ctx *c, int root,
		int (*cb)(const char *op, const char *a, const char *b, void *arg),
		void *arg, struct store_subs_look *l)
{
	size_t i;

	memset(l, 0, sizeof(*l));
	l->fd = -1;
	/* a Maildir whose files cannot be read has nothing to report now;
	 * with nothing written, the next look reports what this one missed */
	if (seen_open(root, c->uid, l) < 0)
		return 0;
	if (subs_now(root, &l->now) < 0) {
		store_subs_look_end(l, false);
		return 0;
	}
	if (!l->valid)
		return 0;
	for (i = 0; i < l->seen.n; i++)
		if (!names_has(&l->now, l->seen.v[i]) &&
		    cb("UNSUBSCRIBE", l->seen.v[i], NULL, arg) != 0)
			return -1;
	for (i = 0; i < l->now.n; i++)
		if (!names_has(&l->seen, l->now.v[i]) &&
		    cb("SUBSCRIBE", l->now.v[i], NULL, arg) != 0)
			return -1;
	return 0;
}

void
store_subs_look_end(struct store_subs_look *l, bool write)
{
	int saved = errno;

	if (l->fd >= 0) {
		if (write)
			(void)seen_write(l->fd, &l->now);
		close(l->fd);
	}
	l->fd = -1;
	names_free(&l->seen);
	names_free(&l->now);
	errno = saved;
}

void
store_subs_first_look(const struct store_repl_ctx *c)
{
	struct store_subs_look l = { .fd = -1 };
	int saved = errno, root;

	root = store_root_open(c->mail_base, c->mail_rel, c->uid, false);
	if (root < 0)
		goto out;
	if (seen_open(root, c->uid, &l) == 0 && !l.valid &&
	    subs_now(root, &l.now) == 0)
		(void)seen_write(l.fd, &l.now);
	store_subs_look_end(&l, false);
	close(root);
out:
	errno = saved;
}

/* ---- SUBSCRIBE, UNSUBSCRIBE ----------------------------------------------- */

/* Tell stowd-subscriptions (l, locked) about stowd's own change of name,
 * so that capture does not report it; a missing or damaged file gets the
 * list as it is now (the first look).  Errors are ignored: a failed note
 * costs one event sent back, which the origin finds not effective. */
static void
seen_note(int root, struct store_subs_look *l, const char *name, bool subscribe)
{
	struct store_subs_names keep = { 0 };

	if (l->fd < 0)
		return;
	if (!l->valid) {
		if (subs_now(root, &l->now) == 0)
			(void)seen_write(l->fd, &l->now);
		return;
	}
	for (size_t i = 0; i < l->seen.n; i++)
		if (strcmp(l->seen.v[i], name) != 0 && names_add(&keep, l->seen.v[i]) < 0)
			goto out;
	if (subscribe && names_add(&keep, name) < 0)
		goto out;
	names_sort(&keep);
	(void)seen_write(l->fd, &keep);
out:
	names_free(&keep);
}

int
store_repl_subscribe(const struct store_repl_ctx *c, const char *mailbox,
		     bool subscribe, struct store_repl_result *res,
		     const char **what_out)
{
	const char *what = "check request", *name = mailbox;
	struct store_subs_look l = { .fd = -1 };
	char dir[NAME_MAX + 1];
	bool changed = false;
	int root = -1, ret = -1, saved;

	memset(res, 0, sizeof(*res));
	if (!store_repl_ctx_ok(c) || store_repl_mailbox_check(mailbox, dir) < 0) {
		errno = EINVAL;
		goto out;
	}
	if (dir[0] == '\0')
		name = "INBOX";
	what = "open Maildir";
	root = store_root_open(c->mail_base, c->mail_rel, c->uid, subscribe);
	if (root < 0) {
		ret = errno == ENOENT ? 0 : -1;   /* nothing to unsubscribe */
		goto out;
	}
	if (seen_open(root, c->uid, &l) < 0)
		l.fd = -1;   /* a hint only: the change goes on without it */
	what = "subscriptions";
	if (store_subs_set_wait(root, SUBS_SEP, name, subscribe, SUBS_LOCK_WAIT,
				&changed) < 0)
		goto out;
	what = "fsync";
	if (changed && fsync(root) < 0)
		goto out;
	if (changed || !l.valid)
		seen_note(root, &l, name, subscribe);
	res->effective = changed;
	ret = 0;
out:
	saved = errno;
	store_subs_look_end(&l, false);
	if (root >= 0)
		close(root);
	errno = saved;
	if (what_out != NULL)
		*what_out = ret < 0 ? what : NULL;
	return ret;
}
