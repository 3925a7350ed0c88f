/* SPDX-License-Identifier: MIT */
/*
 * storage/repl/ops.c - the message operations of the replication protocol
 * on one Maildir mailbox: SAVE, STORE, EXPUNGE (doc/replication-protocol.md
 * §7, §8.1-8.3, §13).
 *
 * Reconciliation and the queries are in storage/repl/query.c.
 *
 * Runs in:  a writer, with the user's credentials, under its seccomp list.
 * Trust:    the Maildir and its index are user-controlled: directories are
 *           opened by storage/walk.c (no symlink, owner checked), files
 *           O_NOFOLLOW and fstat'ed, names placed with
 *           renameat2(RENAME_NOREPLACE); arguments are checked again here.
 * Order:    open the mailbox, take the index lock (store_idx_begin), replay
 *           the index (store_mbox_load), decide, change the Maildir (file
 *           write + fsync, rename/unlink + directory fsync), append the
 *           transaction and fdatasync it, drop the lock.
 * Syscalls: besides those of store_save: futimens (utimensat), getdents64,
 *           fdatasync on every transaction, fstatat/newfstatat on files,
 *           getrandom (fresh GUIDs for hand-added files).
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
#include <time.h>
#include <unistd.h>

#include "storage/repl/repl.h"
#include "storage/repl/repl_int.h"

#define ROP_COPY_BUF 65536
#define ROP_DENTS_BUF 32768
#define ROP_MODSEQ_MAX 9223372036854775807ull

/* ---- open, commit, close ---------------------------------------------- */

int
store_repl_mailbox_check(const char *mailbox, char dir[NAME_MAX + 1])
{
	size_t len, i;

	if (mailbox == NULL)
		goto bad;
	len = strnlen(mailbox, 256);
	if (len == 0 || len > 254)
		goto bad;
	for (i = 0; i < len; i++) {
		if (mailbox[i] < 0x20 || mailbox[i] > 0x7e || mailbox[i] == '/')
			goto bad;
	}
	return store_mailbox_dir(mailbox, dir, NAME_MAX + 1);
bad:
	errno = EINVAL;
	return -1;
}

bool
store_repl_ctx_ok(const struct store_repl_ctx *c)
{
	return c != NULL && c->mail_base != NULL &&
	       store_origin_valid(c->server_id, false) &&
	       (c->host == NULL || strlen(c->host) < 128);
}

int
store_rop_open(struct store_rop *o, const struct store_repl_ctx *c,
	       const char *mailbox, bool create)
{
	return store_rop_open_want(o, c, mailbox, create, NULL);
}

int
store_rop_open_want(struct store_rop *o, const struct store_repl_ctx *c,
		    const char *mailbox, bool create,
		    const struct store_capture_names *want)
{
	char dir[NAME_MAX + 1];

	memset(o, 0, sizeof(*o));
	o->ck.fd = -1;
	o->want = want;
	o->c = c;
	o->d = (struct store_dirs)STORE_DIRS_INIT;
	o->idx_fd = -1;
	o->what = "check request";
	if (!store_repl_ctx_ok(c) || store_repl_mailbox_check(mailbox, dir) < 0) {
		errno = EINVAL;
		return -1;
	}
	o->t.mail_base = c->mail_base;
	o->t.mail_rel = c->mail_rel;
	o->t.mailbox = mailbox;
	o->t.uid = c->uid;
	o->what = "open Maildir";
	if (store_dirs_open2(&o->t, create, &o->d) < 0)
		return !create && errno == ENOENT ? 1 : -1;
	if (o->d.created) {
		o->what = "fsync";
		if (fsync(o->d.new_fd) < 0 || fsync(o->d.cur_fd) < 0 ||
		    fsync(o->d.tmp_fd) < 0 || fsync(o->d.box_fd) < 0 ||
		    fsync(o->d.root_fd) < 0)
			return -1;
	}
	o->what = "index";
	if (store_idx_begin(o->d.box_fd, &o->idx_fd, &o->logged, &o->end) < 0 ||
	    store_rop_load(o, &o->logged) < 0)
		return -1;
	return 0;
}

void
store_rop_close(struct store_rop *o)
{
	int saved = errno;

	if (o->idx_fd >= 0)
		close(o->idx_fd);   /* drops the lock */
	o->idx_fd = -1;
	store_ckpt_close(&o->ck);
	store_dirs_close(&o->d);
	store_mbox_free(&o->m);
	free(o->kw);
	o->kw = NULL;
	free(o->pending);
	o->pending = NULL;
	o->npending = o->cap = 0;
	errno = saved;
}

/* Apply rec to the in-memory state and queue it for the transaction. */
int
store_rop_apply(struct store_rop *o, const struct store_rec *rec)
{
	struct store_rec *p;

	if (o->npending == o->cap) {
		p = realloc(o->pending, (o->cap ? o->cap * 2 : 8) * sizeof(*p));
		if (p == NULL)
			return -1;
		o->pending = p;
		o->cap = o->cap ? o->cap * 2 : 8;
	}
	if (store_mbox_apply(&o->m, rec) < 0)
		return -1;
	o->pending[o->npending++] = *rec;
	return 0;
}

/* Write the queued records as one transaction; fdatasync it if sync. */
static int
rop_flush(struct store_rop *o, bool sync)
{
	o->what = "index";
	if (o->npending == 0)
		return 0;
	if (store_idx_commit(o->idx_fd, &o->end, &o->m.st, o->pending,
			     o->npending, sync) < 0)
		return -1;
	o->npending = 0;
	return 0;
}

/* Write the queued records as one transaction and fdatasync it. */
int
store_rop_flush(struct store_rop *o)
{
	return rop_flush(o, true);
}

/* The stamp to apply: a local change (modseq 0) gets (H+1, server_id). */
static int
rop_stamp(const struct store_rop *o, const struct store_stamp *in,
	  struct store_stamp *out)
{
	if (in == NULL || in->modseq > ROP_MODSEQ_MAX ||
	    !store_origin_valid(in->origin, in->modseq == 0)) {
		errno = EINVAL;
		return -1;
	}
	if (in->modseq != 0) {
		*out = *in;
		return 0;
	}
	out->modseq = o->m.st.highestmodseq + 1;
	snprintf(out->origin, sizeof(out->origin), "%s", o->c->server_id);
	return 0;
}

void
store_rop_rec(struct store_rec *r, enum store_rec_op op, const char *guid,
	      const struct store_stamp *s)
{
	memset(r, 0, sizeof(*r));
	r->op = op;
	memcpy(r->guid, guid, STORE_GUID_HEX);
	if (s != NULL) {
		r->modseq = s->modseq;
		memcpy(r->origin, s->origin, sizeof(r->origin));
	}
}

/* Where the file name of a message is: its directory fd, or -1 (ENOENT). */
int
store_rop_locate(const struct store_rop *o, const char *name,
		 struct stat *st_out)
{
	int dirs[2], i;

	dirs[0] = strchr(name, ':') != NULL ? o->d.cur_fd : o->d.new_fd;
	dirs[1] = dirs[0] == o->d.cur_fd ? o->d.new_fd : o->d.cur_fd;
	for (i = 0; i < 2 && name[0] != '\0'; i++) {
		if (fstatat(dirs[i], name, st_out, AT_SYMLINK_NOFOLLOW) == 0 &&
		    S_ISREG(st_out->st_mode))
			return dirs[i];
	}
	errno = ENOENT;
	return -1;
}

/* base[STORE_MAX_NAME] = name up to its first ',' or ':' (the name the
 * file had in tmp/); false if that is empty or too long. */
static bool
rop_tmp_base(const char *name, char base[STORE_MAX_NAME])
{
	size_t n = strcspn(name, ",:");

	/* name is one plain entry (repl/state.c takes no other from the
	 * index), so base is one entry of tmp/ */
	if (n == 0 || n >= STORE_MAX_NAME)
		return false;
	memcpy(base, name, n);
	base[n] = '\0';
	return true;
}

enum store_rop_tmp
store_rop_tmp_state(const struct store_rop *o, const char *name)
{
	char base[STORE_MAX_NAME];
	enum store_rop_tmp ret = STORE_ROP_TMP_NONE;
	struct stat st;
	int fd;

	if (!rop_tmp_base(name, base))
		return ret;
	/* O_NONBLOCK: a FIFO put there by the user does not hang us */
	fd = openat(o->d.tmp_fd, base, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return ret;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode))
		ret = flock(fd, LOCK_EX | LOCK_NB) < 0 && errno == EWOULDBLOCK ?
		      STORE_ROP_TMP_IN_FLIGHT : STORE_ROP_TMP_ORPHAN;
	close(fd);
	return ret;
}

int
store_rop_tmp_remove(const struct store_rop *o, const char *name)
{
	char base[STORE_MAX_NAME];
	struct stat st;

	if (!rop_tmp_base(name, base) ||
	    fstatat(o->d.tmp_fd, base, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
	    !S_ISREG(st.st_mode))
		return 0;
	if (unlinkat(o->d.tmp_fd, base, 0) < 0 && errno != ENOENT)
		return -1;
	return 0;
}

int
store_rop_tmp_place(struct store_rop *o, const char *name)
{
	char base[STORE_MAX_NAME];
	int dirfd = strchr(name, ':') != NULL ? o->d.cur_fd : o->d.new_fd;

	if (!rop_tmp_base(name, base)) {
		errno = EINVAL;
		return -1;
	}
	o->what = "place file left in tmp";
	if (renameat2(o->d.tmp_fd, base, dirfd, name, RENAME_NOREPLACE) < 0)
		return -1;
	o->what = "fsync new";
	return fsync(dirfd);
}

void
store_rop_done(struct store_rop *o, int ret, const char **what_out)
{
	if (what_out != NULL)
		*what_out = ret < 0 ? o->what : NULL;
	if (ret == 0)
		store_rop_keep(o);
	store_rop_close(o);
}

bool
store_rop_open_existing(struct store_rop *o, const struct store_repl_ctx *c,
			const char *mailbox, struct store_repl_result *res,
			int *ret_out)
{
	return store_rop_open_existing_want(o, c, mailbox, NULL, res, ret_out);
}

bool
store_rop_open_existing_want(struct store_rop *o, const struct store_repl_ctx *c,
			     const char *mailbox,
			     const struct store_capture_names *want,
			     struct store_repl_result *res, int *ret_out)
{
	int r = store_rop_open_want(o, c, mailbox, false, want);

	*ret_out = r == 1 ? 0 : -1;
	if (r == 1 && res != NULL)
		res->status = STORE_R_NONEXISTENT;
	return r == 0;
}

int
store_rop_bad_request(const char **what_out)
{
	if (what_out != NULL)
		*what_out = "check request";
	errno = EINVAL;
	return -1;
}

/* ---- directory listing (box.c, query.c) ------------------------------ */

int
store_dir_each(int dirfd,
	       int (*cb)(const char *name, unsigned char type, void *arg),
	       void *arg)
{
	char *buf = malloc(ROP_DENTS_BUF);
	struct dirent64 *de;
	ssize_t n, pos;
	int fd, saved, ret = -1;

	fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || buf == NULL)
		goto out;
	while ((n = getdents64(fd, buf, ROP_DENTS_BUF)) > 0) {
		for (pos = 0; pos < n; pos += de->d_reclen) {
			de = (struct dirent64 *)(void *)(buf + pos);
			if (strcmp(de->d_name, ".") == 0 ||
			    strcmp(de->d_name, "..") == 0)
				continue;
			ret = cb(de->d_name, de->d_type, arg);
			if (ret != 0)
				goto out;
		}
	}
	ret = n < 0 ? -1 : 0;
out:
	if (fd >= 0) {
		saved = errno;
		close(fd);
		errno = saved;
	}
	free(buf);
	return ret;
}

/* ---- SAVE ------------------------------------------------------------- */

#ifdef STOWD_TEST_HOOKS
void (*store_repl_test_mid_save)(int dest_fd, const char *name);
#endif

struct rop_save {
	struct store_rop *o;
	const char *guid;
	const char *flags;          /* canonical */
	time_t date;
	int body_fd;
	uint64_t body_size;
	const char *prefix;
	size_t prefix_len;
	struct store_name_parts parts;
	char tmpname[STORE_MAX_NAME];
	char name[STORE_MAX_NAME];
	int fd, dest_fd;            /* fd: the tmp file, locked while open */
	bool in_tmp, in_dest;
	bool recorded;              /* the SAVE record is written */
	char last;                  /* last octet written, for W= */
};

/* Write buf and count its LFs not preceded by CR into vsize. */
static int
rop_write_counted(struct rop_save *s, const char *buf, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		if (buf[i] == '\n' && (i > 0 ? buf[i - 1] : s->last) != '\r')
			s->parts.vsize++;
	}
	if (len > 0)
		s->last = buf[len - 1];
	s->parts.vsize += len;
	return store_write_all(s->fd, buf, len);
}

static int
rop_copy_body(struct rop_save *s)
{
	char *buf = malloc(ROP_COPY_BUF);
	uint64_t left = s->body_size;
	off_t off = 0;
	ssize_t n;
	int ret = -1;

	if (buf == NULL)
		return -1;
	while (left > 0) {
		n = pread(s->body_fd, buf, left < ROP_COPY_BUF ? left : ROP_COPY_BUF,
			  off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = EIO;   /* body shorter than its size */
			goto out;
		}
		if (rop_write_counted(s, buf, (size_t)n) < 0)
			goto out;
		off += n;
		left -= (uint64_t)n;
	}
	ret = 0;
out:
	free(buf);
	return ret;
}

static int
rop_create_tmp(struct rop_save *s)
{
	s->fd = store_tmp_create(s->o->d.tmp_fd, s->guid, s->o->c->host, &s->parts,
				 s->tmpname);
	if (s->fd < 0)
		return -1;
	s->in_tmp = true;
	/* held until the file has left tmp/: while it is, the SAVE record
	 * may name a file still in tmp/, and the lock says it is in flight */
	return flock(s->fd, LOCK_EX | LOCK_NB);
}

/* tmp file: prefix, body, size check, mtime, fsync. */
static int
rop_write_tmp(struct rop_save *s)
{
	struct timespec times[2];
	struct stat st;

	s->o->what = "create tmp file";
	if (rop_create_tmp(s) < 0)
		return -1;
	s->o->what = "write";
	s->last = '\0';
	if (rop_write_counted(s, s->prefix, s->prefix_len) < 0)
		return -1;
	s->o->what = "copy body";
	if (rop_copy_body(s) < 0)
		return -1;
	s->o->what = "write";
	if (fstat(s->fd, &st) < 0)
		return -1;
	if ((uint64_t)st.st_size != s->prefix_len + s->body_size) {
		errno = EIO;
		return -1;
	}
	s->parts.size = (uint64_t)st.st_size;
	times[0].tv_sec = times[1].tv_sec = s->date;
	times[0].tv_nsec = times[1].tv_nsec = 0;
	s->o->what = "set date";
	if (futimens(s->fd, times) < 0)
		return -1;
	s->o->what = "fsync";
	return fsync(s->fd);
}

/* The file's name in new/ (NAME) or cur/ (NAME:2,LETTERS), and that
 * directory. */
static int
rop_dest(struct rop_save *s)
{
	char letters[8], kwl[27];
	size_t len;

	store_flags_letters(s->flags, letters);
	store_rop_kw_letters(s->o, s->flags, kwl, NULL);
	s->o->what = "rename into new";
	if (store_name_format(&s->parts, s->name, sizeof(s->name)) < 0)
		return -1;
	s->dest_fd = s->o->d.new_fd;
	if (letters[0] != '\0' || kwl[0] != '\0') {
		len = strlen(s->name);
		if (len + 3 + strlen(letters) + strlen(kwl) >= sizeof(s->name)) {
			errno = ENAMETOOLONG;
			return -1;
		}
		snprintf(s->name + len, sizeof(s->name) - len, ":2,%s%s", letters, kwl);
		s->dest_fd = s->o->d.cur_fd;
	}
	return 0;
}

/* A failed SAVE: its files removed; a record already written is followed
 * by LOST (the message is not here, a SYNC or the SAVE sent again brings
 * it; a file that vanished without it would be taken for an expunge). */
static void
rop_save_cleanup(struct rop_save *s, bool failed)
{
	int saved = errno;

	if (s->in_tmp)
		unlinkat(s->o->d.tmp_fd, s->tmpname, 0);
	if (failed && s->in_dest)
		unlinkat(s->dest_fd, s->name, 0);
	if (s->fd >= 0)
		close(s->fd);   /* after the unlink: the lock held until then */
	if (failed && s->recorded) {
		const char *what = s->o->what;
		struct store_rec rec;

		store_rop_rec(&rec, STORE_REC_LOST, s->guid, NULL);
		if (store_rop_apply(s->o, &rec) == 0)
			(void)rop_flush(s->o, true);
		s->o->what = what;
	}
	errno = saved;
}

/* Duplicate, tombstone and UID checks; *uid_out or a status.  A duplicate
 * whose file a killed SAVE left in tmp/ is placed now. */
static int
rop_save_check(struct store_rop *o, const char *guid, uint32_t hint,
	       struct store_repl_result *res, uint32_t *uid_out)
{
	const struct store_msg *msg = store_mbox_find(&o->m, guid);
	uint32_t next = o->m.st.uidnext;
	struct stat sb;

	if (msg != NULL && msg->kind == STORE_MSG_PRESENT) {
		if (store_rop_locate(o, msg->name, &sb) < 0 &&
		    store_rop_tmp_state(o, msg->name) == STORE_ROP_TMP_ORPHAN &&
		    store_rop_tmp_place(o, msg->name) < 0)
			return -1;
		res->status = STORE_R_DUPLICATE;
		res->uid = msg->uid;
		snprintf(res->filename, sizeof(res->filename), "%s", msg->name);
		return 0;
	}
	if (msg != NULL && msg->kind == STORE_MSG_TOMBSTONE) {
		res->status = STORE_R_EXPUNGED;
		return 0;
	}
	*uid_out = hint >= 1 && hint >= next ? hint : next;
	if (*uid_out == UINT32_MAX || *uid_out == 0)
		res->status = STORE_R_LIMIT;
	return 0;
}

static int
rop_save_write(struct rop_save *s, const struct store_stamp *stamp,
	       uint32_t uid, struct store_repl_result *res)
{
	struct store_rec rec;

	if (rop_write_tmp(s) < 0 || rop_dest(s) < 0)
		return -1;
	store_rop_rec(&rec, STORE_REC_SAVE, s->guid, stamp);
	rec.uid = uid;
	rec.date = (int64_t)s->date;
	memcpy(rec.flags, s->flags, strlen(s->flags) + 1);
	memcpy(rec.name, s->name, strlen(s->name) + 1);
	/*
	 * The index transaction is written before the file leaves tmp/, so no
	 * moment exists in which new/ or cur/ holds a file of this GUID that
	 * the index does not know (a writer killed there left one that a
	 * later EXPUNGE of the GUID did not remove and a SAVE sent again
	 * doubled).  Killed between the two, the record names a file still
	 * in tmp/, complete and synced, whose lock nobody holds: the SAVE
	 * sent again, an EXPUNGE and a reconcile find it there
	 * (store_rop_tmp_state) and place or remove it.  The transaction is
	 * synced after the directory: on a file system that commits metadata
	 * in order (ext4 data=ordered), the directory's fsync makes the
	 * rename and the appended transaction durable in one journal commit
	 * and the index's fdatasync finds nothing left to do.
	 */
	if (store_rop_apply(s->o, &rec) < 0 || rop_flush(s->o, false) < 0)
		return -1;
	s->recorded = true;
#ifdef STOWD_TEST_HOOKS
	if (store_repl_test_mid_save != NULL)
		store_repl_test_mid_save(s->dest_fd, s->name);
#endif
	s->o->what = "rename into new";
	if (renameat2(s->o->d.tmp_fd, s->tmpname, s->dest_fd, s->name,
		      RENAME_NOREPLACE) < 0)
		return -1;
	s->in_tmp = false;
	s->in_dest = true;
	s->o->what = "fsync new";
	if (fsync(s->dest_fd) < 0)
		return -1;
	s->o->what = "index";
	if (fdatasync(s->o->idx_fd) < 0)
		return -1;
	res->effective = true;
	res->uid = uid;
	res->stamp = *stamp;
	res->size = s->parts.size;
	memcpy(res->filename, s->name, sizeof(res->filename));
	return 0;
}

int
store_repl_save(const struct store_repl_ctx *c, const char *mailbox,
		const char *guid, const struct store_stamp *stamp,
		uint32_t uid_hint, time_t date, const char *flags, int body_fd,
		uint64_t body_size, const char *prefix, size_t prefix_len,
		struct store_repl_result *res, const char **what_out)
{
	struct store_rop o;
	struct rop_save s = { .o = &o, .guid = guid, .date = date,
			      .body_fd = body_fd, .body_size = body_size,
			      .prefix = prefix != NULL ? prefix : "",
			      .prefix_len = prefix_len, .fd = -1, .dest_fd = -1 };
	struct store_stamp st;
	char canon[STORE_FLAGS_MAX];
	uint32_t uid = 0;
	int ret = -1;

	memset(res, 0, sizeof(*res));
	memset(&o, 0, sizeof(o));
	o.idx_fd = -1;
	o.d = (struct store_dirs)STORE_DIRS_INIT;
	o.what = "check request";
	if (guid == NULL || !store_guid_valid(guid) || body_fd < 0 ||
	    (prefix == NULL && prefix_len > 0) || date < 0 || flags == NULL) {
		errno = EINVAL;
		goto out;
	}
	if (store_flags_canon(flags, canon) < 0) {
		if (errno != E2BIG)
			goto out;
		res->status = STORE_R_LIMIT;
		ret = 0;
		goto out;
	}
	s.flags = canon;
	if (store_rop_open(&o, c, mailbox, true) != 0 ||
	    rop_stamp(&o, stamp, &st) < 0)
		goto out;
	if (rop_save_check(&o, guid, uid_hint, res, &uid) < 0 ||
	    (res->status == STORE_R_OK && rop_save_write(&s, &st, uid, res) < 0))
		goto out;
	ret = 0;
out:
	rop_save_cleanup(&s, ret < 0);
	store_rop_done(&o, ret, what_out);
	return ret;
}

/* ---- STORE ------------------------------------------------------------ */

/* ---- Dovecot keywords -------------------------------------------------- */

static const struct store_keywords *
rop_kw(struct store_rop *o)
{
	if (o->kw == NULL) {
		o->kw = calloc(1, sizeof(*o->kw));
		if (o->kw == NULL)
			return NULL;
		if (store_keywords_read(o->d.box_fd, o->kw) < 0)
			memset(o->kw, 0, sizeof(*o->kw));   /* none usable */
	}
	return o->kw;
}

/* Calls fn for each keyword (a flag not starting with '\\') of canon. */
static void
kw_each(const char *canon, void (*fn)(const char *kw, void *arg), void *arg)
{
	char tok[STORE_FLAGS_MAX];
	const char *p = canon;

	while (p != NULL && *p != '\0') {
		size_t n = strcspn(p, " ");

		if (n > 0 && n < sizeof(tok) && p[0] != '\\') {
			memcpy(tok, p, n);
			tok[n] = '\0';
			fn(tok, arg);
		}
		p += n;
		p += strspn(p, " ");
	}
}

struct kw_walk {
	struct store_rop *o;
	int lock;                     /* 1 held, 0 not yet, -1 not to be had */
	char letters[27];
};

#define KW_UIDLIST_LOCK "dovecot-uidlist.lock"
#define KW_LOCK_TRIES 20              /* 50 ms apart */

/* Dovecot's mailbox lock (dovecot-uidlist.lock, O_EXCL, "<pid>:<host>"),
 * which serialises writers of dovecot-keywords.  A lock that is there is
 * waited for, never taken over: after a second, no new keyword. */
static int
kw_lock(struct store_rop *o)
{
	static const struct timespec pause = { 0, 50 * 1000 * 1000 };
	char buf[96];
	int fd, n, i;

	for (i = 0; i < KW_LOCK_TRIES; i++) {
		fd = openat(o->d.box_fd, KW_UIDLIST_LOCK, O_WRONLY | O_CREAT | O_EXCL |
			    O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd >= 0) {
			n = snprintf(buf, sizeof(buf), "%ld:%s", (long)getpid(), o->c->host);
			if (write(fd, buf, (size_t)n) != n || close(fd) < 0) {
				(void)unlinkat(o->d.box_fd, KW_UIDLIST_LOCK, 0);
				return -1;
			}
			return 1;
		}
		if (errno != EEXIST)
			return -1;
		nanosleep(&pause, NULL);
	}
	return -1;
}

static void
kw_letter_of(const char *kw, void *arg)
{
	struct kw_walk *w = arg;
	const struct store_keywords *set = rop_kw(w->o);
	int l = set != NULL ? store_keywords_letter(set, kw) : -1;
	size_t n = strlen(w->letters);
	char canon[STORE_FLAGS_MAX];

	/* a keyword without a letter gets one, as Dovecot gives it */
	if (l < 0 && set != NULL && w->lock >= 0 && store_keyword_valid(kw) &&
	    store_flags_canon(kw, canon) == 0) {
		if (w->lock == 0)
			w->lock = kw_lock(w->o);
		if (w->lock > 0)
			l = store_keywords_add(w->o->d.box_fd, kw, w->o->kw);
	}

	if (l >= 'a' && l <= 'z' && strchr(w->letters, l) == NULL && n < 26) {
		w->letters[n] = (char)l;
		w->letters[n + 1] = '\0';
	}
}

static void
sort_letters(char *s)
{
	size_t n = strlen(s), i, j;
	char c;

	for (i = 1; i < n; i++) {   /* insertion sort: ASCII order */
		c = s[i];
		for (j = i; j > 0 && s[j - 1] > c; j--)
			s[j] = s[j - 1];
		s[j] = c;
	}
}

void
store_rop_kw_letters(struct store_rop *o, const char *canon, char letters[27],
		     char mapped[27])
{
	struct kw_walk w = { .o = o };
	const struct store_keywords *set;
	size_t n = 0;
	int saved = errno;

	kw_each(canon, kw_letter_of, &w);
	if (w.lock > 0)
		(void)unlinkat(o->d.box_fd, KW_UIDLIST_LOCK, 0);
	sort_letters(w.letters);
	memcpy(letters, w.letters, sizeof(w.letters));
	set = rop_kw(o);
	for (int i = 0; mapped != NULL && i < STORE_KEYWORDS_MAX; i++)
		if (set != NULL && set->names[i][0] != '\0')
			mapped[n++] = (char)('a' + i);
	if (mapped != NULL)
		mapped[n] = '\0';
	errno = saved;
}

static bool
kw_in(const char *canon, const char *kw)
{
	size_t n = strlen(kw);
	const char *p = canon;

	while ((p = strstr(p, kw)) != NULL) {
		if ((p == canon || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0'))
			return true;
		p += n;
	}
	return false;
}

int
store_rop_kw_deltas(struct store_rop *o, const char *old_name, const char *name,
		    char deltas[STORE_FLAGS_MAX])
{
	const char *colon = strchr(name, ':'), *ocolon = strchr(old_name, ':');
	const char *info, *oinfo = "";
	const struct store_keywords *set;
	char canon[STORE_FLAGS_MAX];
	size_t len;
	int n = 0;

	if (colon == NULL || strncmp(colon, ":2,", 3) != 0 || (set = rop_kw(o)) == NULL)
		return 0;
	info = colon + 3;
	if (ocolon != NULL && strncmp(ocolon, ":2,", 3) == 0)
		oinfo = ocolon + 3;
	for (int i = 0; i < STORE_KEYWORDS_MAX; i++) {
		const char *kw = set->names[i];
		bool had = strchr(oinfo, 'a' + i) != NULL, has = strchr(info, 'a' + i) != NULL;

		len = strlen(deltas);
		if (kw[0] == '\0' || had == has || store_flags_canon(kw, canon) < 0 ||
		    strcmp(canon, kw) != 0 || len + strlen(kw) + 3 >= STORE_FLAGS_MAX)
			continue;   /* unchanged, or no keyword stowd can keep */
		snprintf(deltas + len, STORE_FLAGS_MAX - len, "%s%c%s", len > 0 ? " " : "",
			 has ? '+' : '-', kw);
		n++;
	}
	return n;
}

/* The Maildir name of a message with the flags of canon: base + ":2," +
 * system letters + the keyword letters kwl + the letters of the old name
 * that are neither system letters nor keyword letters of the mailbox
 * (mapped), in ASCII order. */
static int
rop_flag_name(const char *name, const char *canon, const char *kwl,
	      const char *mapped, char *out)
{
	char letters[8], info[64];
	const char *colon = strchr(name, ':');
	size_t blen = colon != NULL ? (size_t)(colon - name) : strlen(name);
	size_t n = 0, i, j;
	int c;

	store_flags_letters(canon, letters);
	snprintf(info, sizeof(info), "%s%s", letters, kwl);
	n = strlen(info);
	if (colon != NULL && strncmp(colon, ":2,", 3) == 0) {
		for (i = 3; colon[i] != '\0' && n + 1 < sizeof(info); i++) {
			if (strchr("DFRST", colon[i]) == NULL &&
			    strchr(mapped, colon[i]) == NULL &&
			    strchr(info, colon[i]) == NULL)
				info[n++] = colon[i];
		}
		info[n] = '\0';
	}
	for (i = 1; i < n; i++) {   /* insertion sort: ASCII order */
		c = info[i];
		for (j = i; j > 0 && info[j - 1] > c; j--)
			info[j] = info[j - 1];
		info[j] = (char)c;
	}
	if (blen + 3 + n >= STORE_MAX_NAME) {
		errno = ENAMETOOLONG;
		return -1;
	}
	snprintf(out, STORE_MAX_NAME, "%.*s:2,%s", (int)blen, name, info);
	return 0;
}

/* The canonical system flags the info letters of name say (D F R S T),
 * with the won deltas ("+\\Seen -\\Flagged") applied, into out. */
static void
rop_name_flags_won(const char *name, const char *won, char *out)
{
	static const struct { char letter; const char *flag; } map[] = {
		{ 'D', "\\Draft" }, { 'F', "\\Flagged" }, { 'R', "\\Answered" },
		{ 'S', "\\Seen" }, { 'T', "\\Deleted" },
	};
	const char *colon = strchr(name, ':');
	bool on[5];
	char buf[STORE_FLAGS_MAX] = "";
	size_t i, len = 0, fl;
	const char *p;

	for (i = 0; i < 5; i++)
		on[i] = colon != NULL && strncmp(colon, ":2,", 3) == 0 &&
			strchr(colon + 3, map[i].letter) != NULL;
	for (p = won; *p != '\0';) {
		size_t n = strcspn(p, " ");

		for (i = 0; i < 5 && n > 1; i++) {
			fl = strlen(map[i].flag);
			if (n - 1 == fl && strncasecmp(p + 1, map[i].flag, fl) == 0)
				on[i] = p[0] == '+';
		}
		p += n;
		p += strspn(p, " ");
	}
	for (i = 0; i < 5; i++)
		if (on[i])
			len += (size_t)snprintf(buf + len, sizeof(buf) - len, " %s",
						map[i].flag);
	if (store_flags_canon(buf, out) < 0)
		out[0] = '\0';
}

/* The keywords the letters of name say, with the won keyword deltas
 * applied, space separated, into out[STORE_FLAGS_MAX]. */
static void
rop_kw_theirs(struct store_rop *o, const char *name, const char *won, char *out)
{
	const struct store_keywords *set = rop_kw(o);
	const char *colon = strchr(name, ':'), *names[STORE_KEYWORDS_MAX], *p;
	char tok[STORE_FLAGS_MAX], buf[STORE_FLAGS_MAX * 2] = "";
	size_t n = 0, i, len = 0;

	out[0] = '\0';
	if (set != NULL && colon != NULL && strncmp(colon, ":2,", 3) == 0)
		n = store_keywords_names(set, colon + 3, names, STORE_KEYWORDS_MAX);
	for (i = 0; i < n; i++) {
		if (kw_in(won, names[i]) || len + strlen(names[i]) + 2 >= sizeof(buf))
			continue;   /* "-kw" or "+kw" in won decides below */
		len += (size_t)snprintf(buf + len, sizeof(buf) - len, " %s", names[i]);
	}
	for (p = won; *p != '\0';) {
		size_t t = strcspn(p, " ");

		if (t > 1 && t < sizeof(tok) && p[0] == '+' && p[1] != '\\' &&
		    len + t + 1 < sizeof(buf)) {
			memcpy(tok, p + 1, t - 1);
			tok[t - 1] = '\0';
			len += (size_t)snprintf(buf + len, sizeof(buf) - len, " %s", tok);
		}
		p += t;
		p += strspn(p, " ");
	}
	p = buf[0] == ' ' ? buf + 1 : buf;
	len = strlen(p);
	if (len >= STORE_FLAGS_MAX)
		len = 0;   /* too many: none (the index keeps them) */
	memcpy(out, p, len);
	out[len] = '\0';
}

/*
 * The file of a message whose file name in the index is gone: the regular
 * file of new/ or cur/ with the same base name (up to ':'), renamed by
 * someone else (an IMAP server changing its flags) and not reconciled
 * yet.  Its directory fd and name in actual[STORE_MAX_NAME]; -1 if none.
 */
static int
rop_locate_renamed(const struct store_rop *o, const char *name, char *actual)
{
	size_t blen = strcspn(name, ":");
	int dirs[2] = { o->d.cur_fd, o->d.new_fd };
	struct dirent *de;
	struct stat st;
	int i, fd, found = -1;
	DIR *d;

	for (i = 0; i < 2 && found < 0 && blen > 0; i++) {
		fd = openat(dirs[i], ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0 || (d = fdopendir(fd)) == NULL) {
			if (fd >= 0)
				close(fd);
			continue;
		}
		while ((de = readdir(d)) != NULL) {
			if (strncmp(de->d_name, name, blen) != 0 ||
			    (de->d_name[blen] != ':' && de->d_name[blen] != '\0') ||
			    strlen(de->d_name) >= STORE_MAX_NAME ||
			    fstatat(dirs[i], de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
			    !S_ISREG(st.st_mode))
				continue;
			snprintf(actual, STORE_MAX_NAME, "%s", de->d_name);
			found = dirs[i];
			break;
		}
		closedir(d);
	}
	if (found < 0)
		errno = ENOENT;
	return found;
}

/*
 * Rename the file of msg to match canon (§7.3); new name or "" in out.
 * A file someone else renamed (other info letters, not reconciled yet)
 * keeps its letters with only the won deltas applied, and the index keeps
 * the old name (out ""), so reconciliation still records that someone
 * else's change with its own stamp (§7.6).
 */
static int
rop_rename_flags(struct store_rop *o, const struct store_msg *msg,
		 const char *canon, const char *won, char *out)
{
	char letters[8], actual[STORE_MAX_NAME], theirs[STORE_FLAGS_MAX];
	char target[STORE_MAX_NAME], kwl[27], mapped[27], kws[STORE_FLAGS_MAX];
	struct stat st;
	int from;

	out[0] = '\0';
	from = store_rop_locate(o, msg->name, &st);
	if (from < 0) {
		from = rop_locate_renamed(o, msg->name, actual);
		if (from < 0)
			return 0;   /* gone: reconciliation records it */
		rop_name_flags_won(actual, won, theirs);
		rop_kw_theirs(o, actual, won, kws);
		store_rop_kw_letters(o, kws, kwl, mapped);
		o->what = "rename";
		if (rop_flag_name(actual, theirs, kwl, mapped, target) < 0)
			return -1;
		if (strcmp(target, actual) == 0)
			return 0;
		if (renameat2(from, actual, o->d.cur_fd, target, RENAME_NOREPLACE) < 0)
			return -1;
		o->what = "fsync";
		return fsync(o->d.cur_fd) < 0 ||
		       (from != o->d.cur_fd && fsync(from) < 0) ? -1 : 0;
	}
	store_flags_letters(canon, letters);
	store_rop_kw_letters(o, canon, kwl, mapped);
	if (from == o->d.new_fd && letters[0] == '\0' && kwl[0] == '\0')
		return 0;
	o->what = "rename";
	if (rop_flag_name(msg->name, canon, kwl, mapped, out) < 0)
		return -1;
	if (strcmp(out, msg->name) == 0 && from == o->d.cur_fd) {
		out[0] = '\0';
		return 0;
	}
	if (renameat2(from, msg->name, o->d.cur_fd, out, RENAME_NOREPLACE) < 0)
		return -1;
	o->what = "fsync";
	if (fsync(o->d.cur_fd) < 0 || (from != o->d.cur_fd && fsync(from) < 0))
		return -1;
	return 0;
}

static int
rop_store_apply(struct store_rop *o, const char *guid,
		const struct store_stamp *st, const char *deltas,
		struct store_repl_result *res)
{
	const struct store_msg *msg = store_mbox_find(&o->m, guid);
	char won[STORE_FLAGS_MAX], nf[STORE_FLAGS_MAX];
	struct store_rec rec;

	if (msg == NULL || msg->kind == STORE_MSG_LOST) {
		res->status = STORE_R_NONEXISTENT;
		return 0;
	}
	if (msg->kind == STORE_MSG_TOMBSTONE) {
		res->status = STORE_R_EXPUNGED;
		return 0;
	}
	o->what = "check request";
	if (store_merge_deltas(msg, deltas, st->modseq, st->origin, won, nf) < 0) {
		if (errno != E2BIG)
			return -1;
		res->status = STORE_R_LIMIT;
		return 0;
	}
	if (won[0] == '\0')
		return 0;   /* every delta lost or tied: not effective */
	store_rop_rec(&rec, STORE_REC_FLAGS, guid, st);
	memcpy(rec.flags, won, sizeof(rec.flags));
	if (rop_rename_flags(o, msg, nf, won, rec.name) < 0 || store_rop_apply(o, &rec) < 0 ||
	    store_rop_flush(o) < 0)
		return -1;
	res->effective = true;
	res->stamp = *st;
	return 0;
}

int
store_repl_store(const struct store_repl_ctx *c, const char *mailbox,
		 const char *guid, const struct store_stamp *stamp,
		 const char *deltas, struct store_repl_result *res,
		 const char **what_out)
{
	struct store_rop o;
	struct store_stamp st;
	int ret;

	memset(res, 0, sizeof(*res));
	if (guid == NULL || !store_guid_valid(guid) || deltas == NULL)
		return store_rop_bad_request(what_out);
	if (strlen(deltas) >= STORE_FLAGS_MAX) {
		res->status = STORE_R_LIMIT;
		return 0;
	}
	if (store_rop_open_existing(&o, c, mailbox, res, &ret) &&
	    rop_stamp(&o, stamp, &st) == 0 &&
	    rop_store_apply(&o, guid, &st, deltas, res) == 0)
		ret = 0;
	store_rop_done(&o, ret, what_out);
	return ret;
}

/* ---- EXPUNGE ---------------------------------------------------------- */

static int
rop_expunge_apply(struct store_rop *o, const char *guid,
		  const struct store_stamp *st, struct store_repl_result *res)
{
	const struct store_msg *msg = store_mbox_find(&o->m, guid);
	struct store_rec rec;
	struct stat sb;
	int dirfd;

	if (msg != NULL && msg->kind == STORE_MSG_TOMBSTONE)
		return 0;   /* a replay: not effective */
	if (msg != NULL && msg->kind == STORE_MSG_PRESENT) {
		char actual[STORE_MAX_NAME];

		snprintf(actual, sizeof(actual), "%s", msg->name);
		dirfd = store_rop_locate(o, msg->name, &sb);
		if (dirfd < 0)   /* renamed by someone else since */
			dirfd = rop_locate_renamed(o, msg->name, actual);
		o->what = "unlink";
		if (dirfd >= 0 &&
		    fstatat(dirfd, actual, &sb, AT_SYMLINK_NOFOLLOW) == 0 &&
		    unlinkat(dirfd, actual, 0) == 0)
			res->size = (uint64_t)sb.st_size;  /* for maildirsize */
		else if (dirfd >= 0 && errno != ENOENT)
			return -1;
		/* a save whose writer died before the file left tmp/ */
		if (dirfd < 0 && store_rop_tmp_state(o, msg->name) == STORE_ROP_TMP_ORPHAN &&
		    store_rop_tmp_remove(o, msg->name) < 0)
			return -1;
		o->what = "fsync";
		if (dirfd >= 0 && fsync(dirfd) < 0)
			return -1;
	}
	store_rop_rec(&rec, STORE_REC_EXPUNGE, guid, st);
	if (store_rop_apply(o, &rec) < 0 || store_rop_flush(o) < 0)
		return -1;
	res->effective = true;
	res->stamp = *st;
	return 0;
}

int
store_repl_expunge(const struct store_repl_ctx *c, const char *mailbox,
		   const char *guid, const struct store_stamp *stamp,
		   struct store_repl_result *res, const char **what_out)
{
	struct store_rop o;
	struct store_stamp st;
	int ret;

	memset(res, 0, sizeof(*res));
	if (guid == NULL || !store_guid_valid(guid))
		return store_rop_bad_request(what_out);
	if (store_rop_open_existing(&o, c, mailbox, res, &ret) &&
	    rop_stamp(&o, stamp, &st) == 0 &&
	    rop_expunge_apply(&o, guid, &st, res) == 0)
		ret = 0;
	store_rop_done(&o, ret, what_out);
	return ret;
}

