/* SPDX-License-Identifier: MIT */
/*
 * storage/repl/box.c - the mailbox operations of the replication protocol
 * on a user's Maildir: CREATE, DELETE, RENAME (with inferiors) and the
 * names of its mailboxes (LIST, with their states, is in query.c)
 * (doc/replication-protocol.md §8.6-8.9).
 *
 * Runs in:  a writer, with the user's credentials, under its seccomp list.
 * Trust:    the Maildir is user-controlled: the root and every mailbox
 *           directory are opened by storage/walk.c (no symlink followed,
 *           owner checked); entries of the root are looked at with
 *           fstatat(AT_SYMLINK_NOFOLLOW); renames use
 *           renameat2(RENAME_NOREPLACE) and never replace anything; the
 *           tree of a deleted mailbox is removed with openat O_NOFOLLOW and
 *           unlinkat, depth-bounded, never leaving it.
 * Order:    CREATE: directories, fsync of them and their parent, the empty
 *           index (fdatasync'ed).  DELETE: rename to
 *           tmp/stowd-deleted-<random>, fsync root and tmp, then removal.
 *           RENAME: check all targets first, then rename, fsync root.
 * Syscalls: those of walk.c and repl/ops.c, plus getdents64, renameat2,
 *           unlinkat (AT_REMOVEDIR), getrandom, fsync.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/repl/repl_int.h"

#define BOX_RM_DEPTH 8
#define BOX_MAX_BOXES 100000

static void
box_close(int *fd)
{
	int saved = errno;

	if (*fd >= 0)
		close(*fd);
	*fd = -1;
	errno = saved;
}

static void
box_what(const char **what_out, int ret, const char *what)
{
	if (what_out != NULL)
		*what_out = ret < 0 ? what : NULL;
}

static bool
box_is_dir(int dirfd, const char *name, unsigned char type)
{
	struct stat st;

	if (type != DT_DIR && type != DT_UNKNOWN)
		return false;
	return fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	       S_ISDIR(st.st_mode);
}

/* A Maildir mailbox directory: owned by uid, with new/ and cur/. */
static bool
box_is_mailbox(int dirfd, const char *name, uid_t uid)
{
	int fd = store_walk_step(dirfd, name, uid, false), n, c;
	bool ok;

	if (fd < 0)
		return false;
	n = store_walk_step(fd, "new", uid, false);
	c = store_walk_step(fd, "cur", uid, false);
	ok = n >= 0 && c >= 0;
	box_close(&n);
	box_close(&c);
	box_close(&fd);
	return ok;
}

/* ---- removal of a deleted tree ------------------------------------------ */

struct box_rm {
	int fd;
	int depth;
	bool removed;
};

static void box_rmtree(int dirfd, const char *name, int depth);

static int
box_rm_cb(const char *name, unsigned char type, void *arg)
{
	struct box_rm *r = arg;

	if (box_is_dir(r->fd, name, type)) {
		if (r->depth < BOX_RM_DEPTH)
			box_rmtree(r->fd, name, r->depth + 1);
	} else if (unlinkat(r->fd, name, 0) == 0) {
		r->removed = true;
	}
	return 0;
}

/* Remove dirfd/name and what is below it, depth-bounded; errors leave
 * the rest (removed at the next start). */
static void
box_rmtree(int dirfd, const char *name, int depth)
{
	struct box_rm r = { .depth = depth };
	int i;

	r.fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
		      O_CLOEXEC);
	if (r.fd < 0)
		return;
	for (i = 0; i < 4; i++) {   /* entries may move while we read */
		r.removed = false;
		if (store_dir_each(r.fd, box_rm_cb, &r) < 0 || !r.removed)
			break;
	}
	box_close(&r.fd);
	(void)unlinkat(dirfd, name, AT_REMOVEDIR);
}

/* ---- CREATE ------------------------------------------------------------ */

int
store_repl_create(const struct store_repl_ctx *c, const char *mailbox,
		  struct store_repl_result *res, const char **what_out)
{
	struct store_target t = { 0 };
	struct store_dirs d = STORE_DIRS_INIT;
	struct store_index_state st;
	const char *what = "check request";
	char dir[NAME_MAX + 1];
	int idx = -1, ret = -1;
	off_t end;

	memset(res, 0, sizeof(*res));
	if (!store_repl_ctx_ok(c) || store_repl_mailbox_check(mailbox, dir) < 0) {
		errno = EINVAL;
		goto out;
	}
	t = (struct store_target){ .mail_base = c->mail_base,
		.mail_rel = c->mail_rel, .mailbox = mailbox, .uid = c->uid };
	what = "open Maildir";
	if (store_dirs_open2(&t, false, &d) == 0) {
		ret = 0;   /* exists: not effective */
		goto out;
	}
	if (errno != ENOENT || store_dirs_open2(&t, true, &d) < 0)
		goto out;
	what = "index";
	if (store_idx_begin(d.box_fd, &idx, &st, &end) < 0)
		goto out;
	what = "fsync";
	if (fsync(d.new_fd) < 0 || fsync(d.cur_fd) < 0 || fsync(d.tmp_fd) < 0 ||
	    fsync(d.box_fd) < 0 || fsync(d.root_fd) < 0)
		goto out;
	res->effective = true;
	ret = 0;
	store_boxes_note(c, "CREATE", mailbox, NULL);
out:
	box_close(&idx);
	store_dirs_close(&d);
	box_what(what_out, ret, what);
	return ret;
}

/* ---- DELETE ------------------------------------------------------------ */

static int
box_delete(const struct store_repl_ctx *c, int root, const char *dir,
	   struct store_repl_result *res, const char **what)
{
	unsigned char rnd[8];
	char name[64];
	int box, tmp = -1, ret = -1;

	*what = "open mailbox";
	box = store_walk_step(root, dir, c->uid, false);
	if (box < 0)
		return errno == ENOENT ? 0 : -1;
	box_close(&box);
	*what = "open tmp";
	tmp = store_walk_step(root, "tmp", c->uid, true);
	if (tmp < 0)
		return -1;
	*what = "random";
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		goto out;
	snprintf(name, sizeof(name),
		 "stowd-deleted-%02x%02x%02x%02x%02x%02x%02x%02x", rnd[0],
		 rnd[1], rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
	*what = "rename";
	if (renameat2(root, dir, tmp, name, RENAME_NOREPLACE) < 0)
		goto out;
	*what = "fsync";
	if (fsync(root) < 0 || fsync(tmp) < 0)
		goto out;
	res->effective = true;
	box_rmtree(tmp, name, 0);
	ret = 0;
out:
	box_close(&tmp);
	return ret;
}

int
store_repl_delete(const struct store_repl_ctx *c, const char *mailbox,
		  struct store_repl_result *res, const char **what_out)
{
	const char *what = "check request";
	char dir[NAME_MAX + 1];
	int root = -1, ret = -1;

	memset(res, 0, sizeof(*res));
	if (!store_repl_ctx_ok(c) || store_repl_mailbox_check(mailbox, dir) < 0) {
		errno = EINVAL;
		goto out;
	}
	if (dir[0] == '\0') {
		res->status = STORE_R_CANNOT;
		ret = 0;
		goto out;
	}
	what = "open Maildir";
	root = store_root_open(c->mail_base, c->mail_rel, c->uid, false);
	if (root < 0) {
		ret = errno == ENOENT ? 0 : -1;
		goto out;
	}
	ret = box_delete(c, root, dir, res, &what);
	if (ret == 0 && res->effective)
		store_boxes_note(c, "DELETE", mailbox, NULL);
out:
	box_close(&root);
	box_what(what_out, ret, what);
	return ret;
}

/* ---- RENAME ------------------------------------------------------------ */

/* Append name to the array *names (*n used, *cap allocated; at most
 * BOX_MAX_BOXES, then E2BIG).  0 or -1 with errno. */
static int
box_names_add(char (**names)[NAME_MAX + 1], size_t *n, size_t *cap,
	      const char *name)
{
	char (*nn)[NAME_MAX + 1];

	if (*n == *cap) {
		if (*cap >= BOX_MAX_BOXES) {
			errno = E2BIG;
			return -1;
		}
		nn = realloc(*names, (*cap ? *cap * 2 : 8) * sizeof(*nn));
		if (nn == NULL)
			return -1;
		*names = nn;
		*cap = *cap ? *cap * 2 : 8;
	}
	snprintf((*names)[(*n)++], NAME_MAX + 1, "%s", name);
	return 0;
}

struct box_ren {
	const char *from_dir;       /* ".from" */
	size_t from_len;
	char (*names)[NAME_MAX + 1];/* existing ".from" and ".from.*" */
	size_t n, cap;
	int root;
};

static int
box_ren_cb(const char *name, unsigned char type, void *arg)
{
	struct box_ren *r = arg;

	if (strncmp(name, r->from_dir, r->from_len) != 0 ||
	    (name[r->from_len] != '\0' && name[r->from_len] != '.') ||
	    !box_is_dir(r->root, name, type))
		return 0;
	return box_names_add(&r->names, &r->n, &r->cap, name);
}

static int
box_len_cmp(const void *a, const void *b)
{
	size_t la = strlen(a), lb = strlen(b);

	return la == lb ? 0 : (la < lb ? -1 : 1);
}

/* The new directory of old entry x: to_dir + the rest after from_dir. */
static int
box_new_name(const struct box_ren *r, const char *x, const char *to_dir,
	     char *out)
{
	char check[NAME_MAX + 1];
	int n;

	n = snprintf(out, NAME_MAX + 1, "%s%s", to_dir, x + r->from_len);
	if (n < 0 || n > NAME_MAX) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return store_repl_mailbox_check(out + 1, check);
}

static int
box_rename(const struct store_repl_ctx *c, struct box_ren *r,
	   const char *to_dir, struct store_repl_result *res, const char **what)
{
	char nn[NAME_MAX + 1];
	struct stat st;
	size_t i;
	int fd;

	*what = "read Maildir";
	if (store_dir_each(r->root, box_ren_cb, r) < 0)
		return -1;
	for (i = 0; i < r->n; i++) {
		*what = "check names";
		if (box_new_name(r, r->names[i], to_dir, nn) < 0)
			return -1;
		if (fstatat(r->root, nn, &st, AT_SYMLINK_NOFOLLOW) == 0) {
			res->status = STORE_R_ALREADYEXISTS;
			return 0;
		}
		fd = store_walk_step(r->root, r->names[i], c->uid, false);
		if (fd < 0)
			return -1;   /* a symlink or someone else's */
		box_close(&fd);
	}
	if (r->n == 0) {
		if (fstatat(r->root, to_dir, &st, AT_SYMLINK_NOFOLLOW) != 0)
			res->status = STORE_R_NONEXISTENT;
		return 0;
	}
	qsort(r->names, r->n, sizeof(*r->names), box_len_cmp);
	*what = "rename";
	for (i = 0; i < r->n; i++) {
		if (box_new_name(r, r->names[i], to_dir, nn) < 0 ||
		    renameat2(r->root, r->names[i], r->root, nn,
			      RENAME_NOREPLACE) < 0)
			return -1;
	}
	res->effective = true;
	*what = "fsync";
	return fsync(r->root);
}

int
store_repl_rename(const struct store_repl_ctx *c, const char *from,
		  const char *to, struct store_repl_result *res,
		  const char **what_out)
{
	char fdir[NAME_MAX + 1], tdir[NAME_MAX + 1];
	struct box_ren r = { .root = -1 };
	const char *what = "check request";
	size_t fl;
	int ret = -1;

	memset(res, 0, sizeof(*res));
	if (!store_repl_ctx_ok(c) || store_repl_mailbox_check(from, fdir) < 0 ||
	    store_repl_mailbox_check(to, tdir) < 0) {
		errno = EINVAL;
		goto out;
	}
	fl = strlen(fdir);
	if (fdir[0] == '\0' || tdir[0] == '\0' || strcmp(fdir, tdir) == 0 ||
	    (strncmp(tdir, fdir, fl) == 0 && tdir[fl] == '.')) {
		res->status = STORE_R_CANNOT;
		ret = 0;
		goto out;
	}
	r.from_dir = fdir;
	r.from_len = fl;
	what = "open Maildir";
	r.root = store_root_open(c->mail_base, c->mail_rel, c->uid, false);
	if (r.root < 0) {
		if (errno == ENOENT) {
			res->status = STORE_R_NONEXISTENT;
			ret = 0;
		}
		goto out;
	}
	ret = box_rename(c, &r, tdir, res, &what);
	if (ret == 0 && res->effective)
		store_boxes_note(c, "RENAME", from, to);
out:
	box_close(&r.root);
	free(r.names);
	box_what(what_out, ret, what);
	return ret;
}

/* ---- LIST --------------------------------------------------------------- */

struct box_list {
	int root;
	uid_t uid;
	char (*names)[NAME_MAX + 1];  /* mailbox names */
	size_t n, cap;
};

static int
box_list_cb(const char *name, unsigned char type, void *arg)
{
	struct box_list *l = arg;
	char dir[NAME_MAX + 1];

	if (name[0] != '.' || name[1] == '\0' || !box_is_dir(l->root, name, type))
		return 0;
	if (store_repl_mailbox_check(name + 1, dir) < 0 ||
	    strcmp(dir, name) != 0 || strcasecmp(name + 1, "INBOX") == 0 ||
	    !box_is_mailbox(l->root, name, l->uid))
		return 0;
	return box_names_add(&l->names, &l->n, &l->cap, name + 1);
}

int
store_box_names(const struct store_repl_ctx *c, char (**names_out)[NAME_MAX + 1],
		size_t *n_out, const char **what_out)
{
	struct box_list l = { .root = -1, .uid = c->uid };
	int ret = -1;

	*names_out = NULL;
	*n_out = 0;
	*what_out = "open Maildir";
	l.root = store_root_open(c->mail_base, c->mail_rel, c->uid, false);
	if (l.root < 0)
		return errno == ENOENT ? 0 : -1;
	*what_out = "read Maildir";
	if ((!box_is_mailbox(l.root, ".", c->uid) ||
	     box_names_add(&l.names, &l.n, &l.cap, "INBOX") == 0) &&
	    store_dir_each(l.root, box_list_cb, &l) == 0)
		ret = 0;
	box_close(&l.root);
	if (ret < 0) {
		free(l.names);
		return -1;
	}
	*names_out = l.names;
	*n_out = l.n;
	return 0;
}

