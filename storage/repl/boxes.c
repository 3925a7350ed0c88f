/* SPDX-License-Identifier: MIT */
/*
 * storage/repl/boxes.c - the folders of a Maildir as stowd last saw them,
 * so that change capture (doc/replication-protocol.md §7.6) can tell a
 * folder created, deleted or renamed by someone else (an IMAP server)
 * from one that exists on a replica only.  The file stowd-mailboxes in
 * the Maildir root holds a header line and one "<inode> <mailbox>\n" line
 * per folder (the inode of its directory, which a rename keeps).  The
 * same capture looks at the subscriptions (repl/subs.c).
 *
 * Runs in:  a writer, with the user's credentials, under its seccomp list.
 * Trust:    the file and the directory entries are user-controlled: the
 *           file is opened O_NOFOLLOW, must be a regular file of the user,
 *           is read up to BOXES_FILE_MAX octets, and every line is checked
 *           (a number, a valid mailbox name); a damaged file counts as
 *           missing: it is written anew and nothing is reported.  The
 *           folders are found as LIST finds them (storage/walk.c).
 * Order:    under flock(LOCK_EX) of the file: read, compare, truncate and
 *           rewrite in place, fdatasync.
 * Syscalls: those of walk.c, openat, flock, pread64, pwrite64, ftruncate,
 *           fdatasync, getdents64.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/repl/repl_int.h"

#define BOXES_FILE "stowd-mailboxes"
#define BOXES_FILE_MAX (4u << 20)
#define BOXES_HEADER "stowd-mailboxes 1\n"   /* an empty list is valid */
#define BOXES_MAX 100000u

struct box_ent {
	unsigned long long ino;
	char name[NAME_MAX + 1];      /* mailbox name ("a.b") */
};

struct box_set {
	struct box_ent *v;
	size_t n, cap;
};

static int
set_add(struct box_set *s, unsigned long long ino, const char *name)
{
	if (s->n >= BOXES_MAX) {
		errno = E2BIG;
		return -1;
	}
	if (s->n == s->cap) {
		size_t ncap = s->cap ? s->cap * 2 : 32;
		struct box_ent *v = realloc(s->v, ncap * sizeof(*v));

		if (v == NULL)
			return -1;
		s->v = v;
		s->cap = ncap;
	}
	s->v[s->n].ino = ino;
	snprintf(s->v[s->n].name, sizeof(s->v[s->n].name), "%s", name);
	s->n++;
	return 0;
}

static const struct box_ent *
set_by_ino(const struct box_set *s, unsigned long long ino)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->v[i].ino == ino)
			return &s->v[i];
	return NULL;
}

/* ---- the folders on disk ------------------------------------------------ */

struct scan {
	int root;
	uid_t uid;
	struct box_set *set;
};

static int
scan_cb(const char *name, unsigned char type, void *arg)
{
	struct scan *sc = arg;
	char dir[NAME_MAX + 1];
	struct stat st;
	int fd, n;

	if (name[0] != '.' || name[1] == '\0' || name[1] == '.' ||
	    (type != DT_DIR && type != DT_UNKNOWN))
		return 0;
	if (store_repl_mailbox_check(name + 1, dir) < 0 || strcmp(dir, name) != 0 ||
	    strcasecmp(name + 1, "INBOX") == 0)
		return 0;
	/* a folder directory, even before its new/ and cur/ are made (an
	 * IMAP server makes them right after; the event of the folder comes
	 * first and is the only one at the root) */
	fd = store_walk_step(sc->root, name, sc->uid, false);
	if (fd < 0)
		return 0;
	n = fstat(fd, &st) == 0 ?
	    set_add(sc->set, (unsigned long long)st.st_ino, name + 1) : 0;
	close(fd);
	return n;
}

/* ---- the file ------------------------------------------------------------- */

/* Parse the file's content into s; false if it is damaged. */
static bool
file_parse(char *buf, size_t len, struct box_set *s)
{
	char *p = buf, *end = buf + len, *nl, *sp, *num_end;
	char dir[NAME_MAX + 1];
	unsigned long long ino;

	while (p < end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		if (nl == NULL)
			return false;
		*nl = '\0';
		sp = strchr(p, ' ');
		if (sp == NULL)
			return false;
		*sp = '\0';
		errno = 0;
		ino = strtoull(p, &num_end, 10);
		if (*num_end != '\0' || errno != 0 ||
		    store_repl_mailbox_check(sp + 1, dir) < 0 || dir[0] == '\0' ||
		    set_add(s, ino, sp + 1) < 0)
			return false;
		p = nl + 1;
	}
	return true;
}

/* Open (create) and lock the file; read it into *s.  *valid false if it
 * was missing or damaged.  Returns the fd or -1. */
static int
file_open(int root, uid_t uid, struct box_set *s, bool *valid)
{
	struct stat st;
	char *buf;
	ssize_t n;
	int fd;

	*valid = false;
	fd = openat(root, BOXES_FILE, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC |
		    O_NONBLOCK, 0600);
	if (fd < 0)
		return -1;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != uid) {
		close(fd);
		errno = EPERM;
		return -1;
	}
	if (flock(fd, LOCK_EX) < 0) {
		close(fd);
		return -1;
	}
	if (fstat(fd, &st) < 0 || st.st_size == 0 || (uint64_t)st.st_size > BOXES_FILE_MAX)
		return fd;   /* new (empty: no header) or too big: not valid */
	buf = malloc((size_t)st.st_size + 1);
	if (buf == NULL) {
		close(fd);
		return -1;
	}
	n = pread(fd, buf, (size_t)st.st_size, 0);
	if (n == st.st_size && (size_t)n >= sizeof(BOXES_HEADER) - 1 &&
	    memcmp(buf, BOXES_HEADER, sizeof(BOXES_HEADER) - 1) == 0) {
		*valid = file_parse(buf + sizeof(BOXES_HEADER) - 1,
				    (size_t)n - (sizeof(BOXES_HEADER) - 1), s);
		if (!*valid)
			s->n = 0;
	}
	free(buf);
	return fd;
}

static int
file_write(int fd, const struct box_set *s)
{
	char line[NAME_MAX + 32];
	off_t off = 0;
	int n;

	if (ftruncate(fd, 0) < 0 ||
	    pwrite(fd, BOXES_HEADER, sizeof(BOXES_HEADER) - 1, 0) !=
	    (ssize_t)(sizeof(BOXES_HEADER) - 1))
		return -1;
	off = (off_t)(sizeof(BOXES_HEADER) - 1);
	for (size_t i = 0; i < s->n; i++) {
		n = snprintf(line, sizeof(line), "%llu %s\n", s->v[i].ino, s->v[i].name);
		if (pwrite(fd, line, (size_t)n, off) != n)
			return -1;
		off += n;
	}
	return fdatasync(fd);
}

/* ---- capture ---------------------------------------------------------------- */

/* A rename (from, to) implied by an earlier one of a parent: from =
 * P.rest and to = Q.rest for a reported rename P -> Q. */
static bool
rename_implied(const struct box_set *done_from, const struct box_set *done_to,
	       const char *from, const char *to)
{
	for (size_t i = 0; i < done_from->n; i++) {
		size_t pl = strlen(done_from->v[i].name), ql = strlen(done_to->v[i].name);

		if (strncmp(from, done_from->v[i].name, pl) == 0 && from[pl] == '.' &&
		    strncmp(to, done_to->v[i].name, ql) == 0 && to[ql] == '.' &&
		    strcmp(from + pl, to + ql) == 0)
			return true;
	}
	return false;
}

static int
by_name_len(const void *a, const void *b)
{
	const struct box_ent *x = a, *y = b;
	size_t lx = strlen(x->name), ly = strlen(y->name);

	return lx != ly ? (lx < ly ? -1 : 1) : strcmp(x->name, y->name);
}

/* Compare what was (old) with what is (now) and report. */
static int
report(const struct box_set *old, struct box_set *now,
       int (*cb)(const char *op, const char *a, const char *b, void *arg),
       void *arg)
{
	struct box_set rf = { 0 }, rt = { 0 };
	const struct box_ent *o;
	int ret = -1;
	size_t i;

	if (now->n > 1)   /* parents first (v is NULL when there are none) */
		qsort(now->v, now->n, sizeof(*now->v), by_name_len);
	for (i = 0; i < now->n; i++) {
		o = set_by_ino(old, now->v[i].ino);
		if (o == NULL || strcmp(o->name, now->v[i].name) == 0)
			continue;
		if (!rename_implied(&rf, &rt, o->name, now->v[i].name) &&
		    cb("RENAME", o->name, now->v[i].name, arg) != 0)
			goto out;
		if (set_add(&rf, 0, o->name) < 0 || set_add(&rt, 0, now->v[i].name) < 0)
			goto out;
	}
	for (i = 0; i < old->n; i++) {
		if (set_by_ino(now, old->v[i].ino) == NULL &&
		    cb("DELETE", old->v[i].name, NULL, arg) != 0)
			goto out;
	}
	for (i = 0; i < now->n; i++) {
		o = set_by_ino(old, now->v[i].ino);
		if (o == NULL && cb("CREATE", now->v[i].name, NULL, arg) != 0)
			goto out;
	}
	ret = 0;
out:
	free(rf.v);
	free(rt.v);
	return ret;
}

int
store_repl_capture_boxes(const struct store_repl_ctx *c,
			 int (*cb)(const char *op, const char *a, const char *b,
				   void *arg),
			 void *arg, const char **what_out)
{
	struct box_set old = { 0 }, now = { 0 };
	struct scan sc = { .root = -1, .uid = c->uid, .set = &now };
	struct store_subs_look subs = { .fd = -1 };
	bool valid;
	int fd = -1, ret = -1;

	*what_out = "open Maildir";
	sc.root = store_root_open(c->mail_base, c->mail_rel, c->uid, false);
	if (sc.root < 0) {
		ret = errno == ENOENT ? 0 : -1;
		goto out;
	}
	*what_out = "open " BOXES_FILE;
	fd = file_open(sc.root, c->uid, &old, &valid);
	if (fd < 0)
		goto out;
	*what_out = "read Maildir";
	if (store_dir_each(sc.root, scan_cb, &sc) != 0)
		goto out;
	*what_out = "capture";
	if (valid && report(&old, &now, cb, arg) < 0)
		goto out;
	*what_out = "capture subscriptions";
	if (store_subs_look(c, sc.root, cb, arg, &subs) < 0)
		goto out;
	/* both files once everything is reported: a failed report is made
	 * again by the next look */
	*what_out = "write " BOXES_FILE;
	if (file_write(fd, &now) < 0)
		goto out;
	store_subs_look_end(&subs, true);
	*what_out = NULL;
	ret = 0;
out:
	store_subs_look_end(&subs, false);
	if (fd >= 0)
		close(fd);
	if (sc.root >= 0)
		close(sc.root);
	free(old.v);
	free(now.v);
	return ret;
}

/* Apply stowd's own folder operation to the list (names only). */
static void
note_apply(struct box_set *s, int root, const char *op, const char *a, const char *b)
{
	char dir[NAME_MAX + 1], name[NAME_MAX + 1];
	size_t al = strlen(a), i;
	struct stat st;

	if (strcmp(op, "CREATE") == 0) {
		for (i = 0; i < s->n; i++)
			if (strcmp(s->v[i].name, a) == 0)
				return;
		if (store_repl_mailbox_check(a, dir) == 0 && dir[0] != '\0' &&
		    fstatat(root, dir, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode))
			(void)set_add(s, (unsigned long long)st.st_ino, a);
		return;
	}
	for (i = 0; i < s->n;) {
		struct box_ent *e = &s->v[i];
		bool hit = strcmp(e->name, a) == 0;

		if (strcmp(op, "DELETE") == 0 && hit) {
			*e = s->v[--s->n];
			continue;
		}
		if (strcmp(op, "RENAME") == 0 && (hit || (strncmp(e->name, a, al) == 0 &&
							 e->name[al] == '.'))) {
			snprintf(name, sizeof(name), "%s%s", b, e->name + al);
			snprintf(e->name, sizeof(e->name), "%s", name);
		}
		i++;
	}
}

void
store_boxes_note(const struct store_repl_ctx *c, const char *op, const char *a,
		 const char *b)
{
	struct box_set old = { 0 }, now = { 0 };
	struct scan sc = { .root = -1, .uid = c->uid, .set = &now };
	int saved = errno, fd = -1;
	bool valid;

	sc.root = store_root_open(c->mail_base, c->mail_rel, c->uid, false);
	if (sc.root < 0)
		goto out;
	fd = file_open(sc.root, c->uid, &old, &valid);
	if (fd < 0)
		goto out;
	if (valid && op == NULL)
		goto out;   /* there, and only the first look was asked for */
	if (valid) {
		note_apply(&old, sc.root, op, a, b);
		(void)file_write(fd, &old);
	} else if (store_dir_each(sc.root, scan_cb, &sc) == 0) {
		(void)file_write(fd, &now);
	}
out:
	if (fd >= 0)
		close(fd);
	if (sc.root >= 0)
		close(sc.root);
	free(old.v);
	free(now.v);
	errno = saved;
}
