/* SPDX-License-Identifier: MIT */
/*
 * storage/repl/watch.c - the inotify watches of change capture on one
 * user's Maildir (doc/replication-protocol.md §7.6): the Maildir root
 * (folders appear, go, are renamed) and new/ and cur/ of every mailbox
 * (message files appear, go, are renamed for flags).
 *
 * Runs in:  a writer, with the user's credentials (the watches are added
 *           as the user: the kernel checks the user's read permission),
 *           under its seccomp list.  The inotify instance belongs to
 *           repl-hook, which reads the events; this code only adds
 *           watches to it.
 * Trust:    the Maildir is user-controlled: every directory is opened by
 *           storage/walk.c (no symlink followed, owner checked) and the
 *           watch is added to that very open directory through
 *           /proc/self/fd/N, so no path in the user's tree is resolved by
 *           inotify_add_watch; IN_ONLYDIR as well.
 * Syscalls: those of walk.c, getdents64, inotify_add_watch.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/repl/repl_int.h"

/* new/ and cur/: message files appear (renamed or linked in), go and are
 * renamed for flags.  IN_CREATE in new/ is left out: a file is complete
 * only when renamed into new/ (Maildir rule). */
#define WATCH_NEW (IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE | IN_ONLYDIR | \
		   IN_EXCL_UNLINK)
#define WATCH_CUR (WATCH_NEW | IN_CREATE)
/* The root: folders (directories) appear, go and are renamed; files
 * such as subscriptions are replaced by rename. */
#define WATCH_ROOT (IN_CREATE | IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE | \
		    IN_ONLYDIR | IN_EXCL_UNLINK)

struct watch_run {
	int ino;
	uid_t uid;
	int root;
	int (*cb)(int wd, const char *mailbox, void *arg);
	void *arg;
	int err;                     /* the first error that stops the run */
};

/* A watch on the open directory fd. */
static int
watch_fd(struct watch_run *w, int fd, uint32_t mask, const char *mailbox)
{
	char path[64];
	int wd;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	wd = inotify_add_watch(w->ino, path, mask);
	if (wd < 0) {
		w->err = errno;
		return -1;
	}
	if (w->cb(wd, mailbox, w->arg) != 0) {
		w->err = errno != 0 ? errno : EIO;
		return -1;
	}
	return 0;
}

/* new/ and cur/ of the mailbox directory name of the root ("." for
 * INBOX).  A directory that is not a mailbox is skipped. */
static int
watch_mailbox(struct watch_run *w, const char *name, const char *mailbox)
{
	int dir, n = -1, c = -1, ret = 0;

	dir = strcmp(name, ".") == 0 ? w->root : store_walk_step(w->root, name, w->uid, false);
	if (dir < 0)
		return 0;
	n = store_walk_step(dir, "new", w->uid, false);
	c = store_walk_step(dir, "cur", w->uid, false);
	if (n >= 0 && c >= 0)
		ret = watch_fd(w, n, WATCH_NEW, mailbox) < 0 ||
		      watch_fd(w, c, WATCH_CUR, mailbox) < 0 ? -1 : 0;
	if (n >= 0)
		close(n);
	if (c >= 0)
		close(c);
	if (dir != w->root)
		close(dir);
	return ret;
}

static int
watch_each_cb(const char *name, unsigned char type, void *arg)
{
	struct watch_run *w = arg;
	char dir[NAME_MAX + 1];
	struct stat st;

	if (name[0] != '.' || name[1] == '\0' || name[1] == '.' ||
	    (type != DT_DIR && type != DT_UNKNOWN))
		return 0;
	if (fstatat(w->root, name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(st.st_mode))
		return 0;
	if (store_repl_mailbox_check(name + 1, dir) < 0 || strcmp(dir, name) != 0 ||
	    strcasecmp(name + 1, "INBOX") == 0)
		return 0;
	return watch_mailbox(w, name, name + 1) < 0 ? 1 : 0;
}

int
store_repl_watch(const struct store_repl_ctx *c, int ino,
		 int (*cb)(int wd, const char *mailbox, void *arg), void *arg,
		 const char **what_out)
{
	struct watch_run w = { .ino = ino, .uid = c->uid, .cb = cb, .arg = arg };
	int ret = -1;

	*what_out = "open Maildir";
	w.root = store_root_open(c->mail_base, c->mail_rel, c->uid, false);
	if (w.root < 0)
		return errno == ENOENT ? 0 : -1;
	*what_out = "add watch";
	if (watch_fd(&w, w.root, WATCH_ROOT, NULL) < 0 ||
	    watch_mailbox(&w, ".", "INBOX") < 0)
		goto out;
	*what_out = "read Maildir";
	if (store_dir_each(w.root, watch_each_cb, &w) != 0) {
		if (w.err == 0)
			w.err = errno;
		else
			*what_out = "add watch";
		goto out;
	}
	*what_out = NULL;
	ret = 0;
	store_boxes_note(c, NULL, NULL, NULL);   /* the first look, for capture */
	store_subs_first_look(c);
out:
	close(w.root);
	if (ret < 0)
		errno = w.err != 0 ? w.err : errno;
	return ret;
}
