/* SPDX-License-Identifier: MIT */
/*
 * storage/sweep.c - the sweep of a Maildir's tmp/ directories: files left
 * there longer than STORE_SWEEP_TMP_AGE (36 hours, the age after which
 * Maildir readers such as Dovecot consider them abandoned) and the
 * stowd-deleted-* trees that a mailbox DELETE left behind when it was
 * interrupted (storage/repl/box.c renames the mailbox there, then removes
 * it).
 *
 * Runs in:  writer, with the user's credentials, after a request was
 *           answered (writer/loop.c rate-limits it per Maildir).
 * Trust:    the Maildir is user-controlled: directories are opened by
 *           storage/walk.c (no symlink, owner checked) or with
 *           O_NOFOLLOW|O_DIRECTORY; only regular files (lstat) are
 *           unlinked, a symlink is never followed (nor removed); the work
 *           is bounded (entries removed, folders visited, tree depth).
 * Syscalls: openat, getdents64, newfstatat, unlinkat, close.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/storage_int.h"

#define SWEEP_DENTS_BUF 32768
#define SWEEP_MAX_FOLDERS 512     /* folders whose tmp/ is swept, per run */
#define SWEEP_TREE_DEPTH 16       /* below a stowd-deleted-* directory */
#define SWEEP_DELETED_PREFIX "stowd-deleted-"

struct sweep {
	time_t before;                /* files last changed before this go */
	unsigned budget;              /* entries that may still be removed */
	struct store_sweep_stats *st;
};

/* cb(name, d_type, arg) for each entry of dirfd but . and .. (read
 * through a fresh fd); a non-zero return stops.  0, or -1 with errno. */
static int
sweep_each(int dirfd, int (*cb)(int dirfd, const char *name, unsigned char type,
				void *arg), void *arg)
{
	char *buf = malloc(SWEEP_DENTS_BUF);
	struct dirent64 *de;
	ssize_t n, pos;
	int fd, ret = -1;

	fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || buf == NULL)
		goto out;
	while ((n = getdents64(fd, buf, SWEEP_DENTS_BUF)) > 0) {
		for (pos = 0; pos < n; pos += de->d_reclen) {
			de = (struct dirent64 *)(void *)(buf + pos);
			if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
				continue;
			if (cb(dirfd, de->d_name, de->d_type, arg) != 0) {
				ret = 0;
				goto out;
			}
		}
	}
	ret = n < 0 ? -1 : 0;
out:
	if (fd >= 0)
		close(fd);
	free(buf);
	return ret;
}

struct rm_tree {
	struct sweep *s;
	int depth;
};

static void sweep_rmtree(struct sweep *s, int dirfd, const char *name, int depth);

static int
rm_cb(int dirfd, const char *name, unsigned char type, void *arg)
{
	struct rm_tree *r = arg;
	struct stat st;

	(void)type;
	if (r->s->budget == 0)
		return 1;
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return 0;
	if (S_ISDIR(st.st_mode)) {
		if (r->depth < SWEEP_TREE_DEPTH)
			sweep_rmtree(r->s, dirfd, name, r->depth + 1);
		return 0;
	}
	/* a file, or a symlink: unlinkat removes the name, never a target */
	if (unlinkat(dirfd, name, 0) == 0)
		r->s->budget--;
	return 0;
}

/* Remove dirfd/name and what is below it (bounded by depth and budget);
 * what is left waits for the next sweep. */
static void
sweep_rmtree(struct sweep *s, int dirfd, const char *name, int depth)
{
	struct rm_tree r = { .s = s, .depth = depth };
	int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0)
		return;
	(void)sweep_each(fd, rm_cb, &r);
	close(fd);
	if (s->budget > 0 && unlinkat(dirfd, name, AT_REMOVEDIR) == 0)
		s->budget--;
}

static int
tmp_cb(int dirfd, const char *name, unsigned char type, void *arg)
{
	struct sweep *s = arg;
	struct stat st;

	(void)type;
	if (s->budget == 0)
		return 1;
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return 0;
	if (S_ISDIR(st.st_mode) &&
	    strncmp(name, SWEEP_DELETED_PREFIX, strlen(SWEEP_DELETED_PREFIX)) == 0) {
		sweep_rmtree(s, dirfd, name, 0);
		s->st->trees++;
		return 0;
	}
	if (S_ISREG(st.st_mode) && st.st_mtime < s->before &&
	    unlinkat(dirfd, name, 0) == 0) {
		s->budget--;
		s->st->files++;
	}
	return 0;
}

/* Sweep dirfd/tmp if it is a directory owned by uid. */
static void
sweep_tmp_of(struct sweep *s, int dirfd, uid_t uid)
{
	int tmp = store_walk_step(dirfd, "tmp", uid, false);

	if (tmp < 0)
		return;
	(void)sweep_each(tmp, tmp_cb, s);
	close(tmp);
}

struct folders {
	struct sweep *s;
	uid_t uid;
	unsigned left;
};

static int
folder_cb(int dirfd, const char *name, unsigned char type, void *arg)
{
	struct folders *f = arg;
	int fd;

	if (name[0] != '.' || (type != DT_DIR && type != DT_UNKNOWN))
		return 0;
	if (f->left == 0 || f->s->budget == 0)
		return 1;
	f->left--;
	fd = store_walk_step(dirfd, name, f->uid, false);
	if (fd < 0)
		return 0;
	sweep_tmp_of(f->s, fd, f->uid);
	close(fd);
	return 0;
}

int
store_sweep(const char *mail_base, const char *mail_rel, uid_t uid, time_t now,
	    unsigned max_removals, struct store_sweep_stats *out)
{
	struct sweep s = { .before = now - STORE_SWEEP_TMP_AGE, .budget = max_removals,
			   .st = out };
	struct folders f = { .s = &s, .uid = uid, .left = SWEEP_MAX_FOLDERS };
	int root;

	memset(out, 0, sizeof(*out));
	root = store_root_open(mail_base, mail_rel, uid, false);
	if (root < 0)
		return errno == ENOENT ? 0 : -1;
	sweep_tmp_of(&s, root, uid);
	(void)sweep_each(root, folder_cb, &f);
	close(root);
	return 0;
}
