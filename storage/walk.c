/* SPDX-License-Identifier: MIT */
/*
 * storage/walk.c - open a target's Maildir directories without following
 * symlinks, creating what is missing.
 *
 * Runs in:  a writer, with the recipient's credentials (seteuid mode: root
 *           real uid, so this code is what stands between a user who owns
 *           the Maildir and the rest of the file system).
 * Trust:    mail_base is admin-controlled and opened by path (created 0700
 *           with its parents if missing).  Everything below it is
 *           user-controlled: each component is opened alone, relative to the
 *           fd of its parent, with openat2(RESOLVE_NO_SYMLINKS|
 *           RESOLVE_BENEATH|RESOLVE_NO_MAGICLINKS) (or openat O_NOFOLLOW
 *           where openat2 is missing), created with mkdirat(0700) when
 *           missing (which never follows a symlink either), and fstat'ed on
 *           the open fd: it must be a directory owned by the target uid.
 *           cur/ is only checked, with fstatat(AT_SYMLINK_NOFOLLOW), not
 *           opened.  A caller that already walked to the Maildir root
 *           (store_root_open) may hand its fd over (has_root) instead of
 *           the path being walked again.
 *           A symlink gives ELOOP; nothing is created outside.
 * Layout:   base / mail_rel (empty and "." components skipped, ".." refused;
 *           an empty mail_rel makes base itself the Maildir) / mailbox
 *           directory (INBOX: the Maildir; a folder: ".Name" with an empty
 *           maildirfolder file) / tmp, new, cur.
 * Syscalls: openat, openat2, mkdirat, newfstatat/fstat, fcntl
 *           (F_DUPFD_CLOEXEC), close.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "storage/storage_int.h"

#define WALK_DIR_FLAGS (O_DIRECTORY | O_RDONLY | O_CLOEXEC | O_NOFOLLOW)

/* Set once openat2 returned ENOSYS: use openat O_NOFOLLOW from then on. */
static bool walk_no_openat2;

static void
walk_close(int *fd)
{
	int saved = errno;

	if (*fd >= 0)
		close(*fd);
	*fd = -1;
	errno = saved;
}

/* Open the directory name in dirfd, following no symlink.  fd or -1. */
static int
walk_open_dir(int dirfd, const char *name)
{
	struct open_how how = {
		.flags = WALK_DIR_FLAGS,
		.resolve = RESOLVE_NO_SYMLINKS | RESOLVE_BENEATH |
			   RESOLVE_NO_MAGICLINKS,
	};
	struct stat st;
	long fd = -1;

	if (!walk_no_openat2) {
		fd = syscall(SYS_openat2, dirfd, name, &how, sizeof(how));
		if (fd < 0 && errno == ENOSYS)
			walk_no_openat2 = true;
	}
	if (walk_no_openat2)
		fd = openat(dirfd, name, WALK_DIR_FLAGS);
	if (fd >= 0)
		return (int)fd;
	/* O_DIRECTORY|O_NOFOLLOW on a symlink may say ENOTDIR: say ELOOP. */
	if (errno == ENOTDIR) {
		if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    S_ISLNK(st.st_mode))
			errno = ELOOP;
		else
			errno = ENOTDIR;
	}
	return -1;
}

/* st must be a directory owned by uid, else EPERM. */
static int
walk_owned_dir(const struct stat *st, uid_t uid)
{
	if (!S_ISDIR(st->st_mode) || st->st_uid != uid) {
		errno = EPERM;
		return -1;
	}
	return 0;
}

/* The open fd must be a directory owned by uid, else EPERM. */
static int
walk_check_dir(int fd, uid_t uid)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return -1;
	return walk_owned_dir(&st, uid);
}

/*
 * Open (creating 0700 if missing and create) and check name in dirfd;
 * sets *made (may be NULL) when it made the directory.  fd or -1.
 */
static int
walk_step_ex(int dirfd, const char *name, uid_t uid, bool create, bool *made)
{
	int fd;

	fd = walk_open_dir(dirfd, name);
	if (fd < 0 && errno == ENOENT && create) {
		if (mkdirat(dirfd, name, 0700) == 0) {
			if (made != NULL)
				*made = true;
		} else if (errno != EEXIST) {
			return -1;
		}
		fd = walk_open_dir(dirfd, name);
	}
	if (fd < 0)
		return -1;
	if (walk_check_dir(fd, uid) < 0) {
		walk_close(&fd);
		return -1;
	}
	return fd;
}

static int
walk_step(int dirfd, const char *name, uid_t uid)
{
	return walk_step_ex(dirfd, name, uid, true, NULL);
}

int
store_walk_step(int dirfd, const char *name, uid_t uid, bool create)
{
	return walk_step_ex(dirfd, name, uid, create, NULL);
}

/* mkdir -p for the admin-controlled base path, mode 0700. */
static int
walk_mkdir_parents(const char *path)
{
	char buf[PATH_MAX];
	size_t len = strlen(path), i;

	if (len >= sizeof(buf)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(buf, path, len + 1);
	for (i = 1; i <= len; i++) {
		if (buf[i] != '/' && buf[i] != '\0')
			continue;
		if (buf[i - 1] == '/')
			continue;
		buf[i] = '\0';
		if (mkdirat(AT_FDCWD, buf, 0700) < 0 && errno != EEXIST)
			return -1;
		buf[i] = path[i];
	}
	return 0;
}

/* Open mail_base (O_PATH), creating it and its parents when missing. */
static int
walk_open_base(const char *base)
{
	int fd;

	if (base == NULL || *base == '\0') {
		errno = EINVAL;
		return -1;
	}
	fd = openat(AT_FDCWD, base, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0 || errno != ENOENT)
		return fd;
	if (walk_mkdir_parents(base) < 0)
		return -1;
	return openat(AT_FDCWD, base, O_PATH | O_DIRECTORY | O_CLOEXEC);
}

/*
 * Walk rel below base_fd one component at a time; returns an O_RDONLY fd
 * of the Maildir root (base itself, reopened, when rel is empty).
 */
static int
walk_rel(int base_fd, const char *rel, uid_t uid, bool create, bool *made)
{
	char comp[NAME_MAX + 1];
	int cur = -1, next;
	size_t len;

	for (; rel != NULL && *rel != '\0'; rel += len) {
		len = strcspn(rel, "/");
		if (len == 0) {
			len = 1;
			continue;
		}
		if (len > NAME_MAX) {
			errno = ENAMETOOLONG;
			goto fail;
		}
		memcpy(comp, rel, len);
		comp[len] = '\0';
		if (strcmp(comp, ".") == 0)
			continue;
		if (strcmp(comp, "..") == 0) {
			errno = EINVAL;
			goto fail;
		}
		next = walk_step_ex(cur >= 0 ? cur : base_fd, comp, uid, create,
				    made);
		walk_close(&cur);
		if (next < 0)
			return -1;
		cur = next;
	}
	if (cur < 0)
		cur = openat(base_fd, ".", WALK_DIR_FLAGS);
	return cur;
fail:
	walk_close(&cur);
	return -1;
}

/* Create the maildirfolder marker in a folder if it is not there. */
static int
walk_folder_marker(int box_fd)
{
	int fd;

	fd = openat(box_fd, "maildirfolder",
		    O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return errno == EEXIST ? 0 : -1;
	close(fd);
	return 0;
}

/*
 * Check, without opening it, that name in dirfd is a directory owned by
 * uid (made 0700 when missing): the errors of walk_step_ex (ELOOP for a
 * symlink, ENOTDIR, EPERM for another owner).  One fstatat in the common
 * case, where an open, fstat and close would take three.
 */
static int
walk_check_sub(int dirfd, const char *name, uid_t uid)
{
	struct stat st;

	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		if (errno != ENOENT)
			return -1;
		if (mkdirat(dirfd, name, 0700) < 0 && errno != EEXIST)
			return -1;
		if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			return -1;
	}
	/* what the open of walk_open_dir would have said */
	if (!S_ISDIR(st.st_mode)) {
		errno = S_ISLNK(st.st_mode) ? ELOOP : ENOTDIR;
		return -1;
	}
	return walk_owned_dir(&st, uid);
}

/* The Maildir root of t: a copy of t->root_fd, or walked from the base. */
static int
walk_target_root(const struct store_target *t)
{
	int base_fd, root_fd;

	if (t->has_root)
		return fcntl(t->root_fd, F_DUPFD_CLOEXEC, 0);
	base_fd = walk_open_base(t->mail_base);
	if (base_fd < 0)
		return -1;
	root_fd = walk_rel(base_fd, t->mail_rel, t->uid, true, NULL);
	walk_close(&base_fd);
	return root_fd;
}

int
store_dirs_open(const struct store_target *t, struct store_dirs *out)
{
	char box[NAME_MAX + 1];
	int root_fd = -1, ret = -1;

	*out = (struct store_dirs)STORE_DIRS_INIT;
	if (t == NULL || store_mailbox_dir(t->mailbox != NULL ? t->mailbox :
					   "INBOX", box, sizeof(box)) < 0) {
		errno = EINVAL;
		goto out;
	}
	root_fd = walk_target_root(t);
	if (root_fd < 0)
		goto out;
	if (box[0] == '\0') {
		out->box_fd = root_fd;
		root_fd = -1;
	} else {
		out->box_fd = walk_step(root_fd, box, t->uid);
		if (out->box_fd < 0 || walk_folder_marker(out->box_fd) < 0)
			goto out;
	}
	out->tmp_fd = walk_step(out->box_fd, "tmp", t->uid);
	if (out->tmp_fd < 0)
		goto out;
	out->new_fd = walk_step(out->box_fd, "new", t->uid);
	if (out->new_fd < 0)
		goto out;
	if (walk_check_sub(out->box_fd, "cur", t->uid) < 0)
		goto out;
	ret = 0;
out:
	walk_close(&root_fd);
	if (ret < 0)
		store_dirs_close(out);
	return ret;
}

void
store_dirs_close(struct store_dirs *d)
{
	if (d == NULL)
		return;
	walk_close(&d->box_fd);
	walk_close(&d->tmp_fd);
	walk_close(&d->new_fd);
	walk_close(&d->cur_fd);
	walk_close(&d->root_fd);
}

int
store_root_open(const char *base, const char *rel, uid_t uid, bool create)
{
	int base_fd, fd;

	if (!create) {
		base_fd = openat(AT_FDCWD, base != NULL ? base : "",
				 O_PATH | O_DIRECTORY | O_CLOEXEC);
	} else {
		base_fd = walk_open_base(base);
	}
	if (base_fd < 0)
		return -1;
	fd = walk_rel(base_fd, rel, uid, create, NULL);
	walk_close(&base_fd);
	return fd;
}

/* tmp, new, cur of an open mailbox directory. */
static int
walk_subdirs(const struct store_target *t, bool create, struct store_dirs *out)
{
	out->tmp_fd = walk_step_ex(out->box_fd, "tmp", t->uid, true,
				   &out->created);
	if (out->tmp_fd < 0)
		return -1;
	out->new_fd = walk_step_ex(out->box_fd, "new", t->uid, create,
				   &out->created);
	if (out->new_fd < 0)
		return -1;
	out->cur_fd = walk_step_ex(out->box_fd, "cur", t->uid, create,
				   &out->created);
	return out->cur_fd < 0 ? -1 : 0;
}

int
store_dirs_open2(const struct store_target *t, bool create,
		 struct store_dirs *out)
{
	char box[NAME_MAX + 1];
	int base_fd = -1, ret = -1;

	*out = (struct store_dirs)STORE_DIRS_INIT;
	if (t == NULL || store_mailbox_dir(t->mailbox != NULL ? t->mailbox :
					   "INBOX", box, sizeof(box)) < 0) {
		errno = EINVAL;
		goto out;
	}
	base_fd = create ? walk_open_base(t->mail_base) :
		  openat(AT_FDCWD, t->mail_base != NULL ? t->mail_base : "",
			 O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (base_fd < 0)
		goto out;
	out->root_fd = walk_rel(base_fd, t->mail_rel, t->uid, create,
				&out->created);
	if (out->root_fd < 0)
		goto out;
	if (box[0] == '\0') {
		out->box_fd = openat(out->root_fd, ".", WALK_DIR_FLAGS);
	} else {
		out->box_fd = walk_step_ex(out->root_fd, box, t->uid, create,
					   &out->created);
		if (out->box_fd >= 0 && walk_folder_marker(out->box_fd) < 0)
			goto out;
	}
	if (out->box_fd < 0 || walk_subdirs(t, create, out) < 0)
		goto out;
	ret = 0;
out:
	walk_close(&base_fd);
	if (ret < 0)
		store_dirs_close(out);
	return ret;
}
