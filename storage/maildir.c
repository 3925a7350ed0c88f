/* SPDX-License-Identifier: MIT */
/*
 * storage/maildir.c - durable save of one message into a Maildir.
 *
 * Runs in:  writer, with the recipient's credentials, under the writer's
 *           seccomp allow-list (plain syscalls only, no stdio on this path).
 * Trust:    the Maildir is user-controlled: directories are opened by
 *           storage/walk.c (no symlink followed, owner checked on the fd),
 *           the tmp file is created O_CREAT|O_EXCL|O_NOFOLLOW mode 0600, the
 *           final name is placed with renameat2(RENAME_NOREPLACE) (or linkat
 *           where the file system lacks it), which never follows a symlink
 *           and never replaces anything.
 * Order:    duplicate check in the index; tmp/<name> create, write prefix,
 *           copy body (sendfile), size check, fsync; rename into
 *           new/<name>,S=,W=; fsync new/; only then "saved".  Any failure
 *           before that removes what was created (tmp, and new/ if the rename
 *           happened), so nothing partial or undurable is ever reported.
 *           Then one SAVE record is appended to the index; if that fails the
 *           save still counts (imap_uid 0): the file is durable and carries
 *           its GUID in its name, so the index can be rebuilt from new/ cur/.
 *           With req->stamped (replication), the SAVE record is appended
 *           right after the size check and announced before the fsync, so
 *           the replica saves while this one syncs; a later failure
 *           appends an EXPUNGE for the GUID.  A crash in between leaves a
 *           record whose file is in tmp/ or nowhere.  The writer holds an
 *           flock on the tmp file from its creation until it has left
 *           tmp/: reconciliation skips the record while the lock is held,
 *           tombstones it (removing the tmp file) once nobody holds it
 *           (the writer is gone: an orphan), and records it lost when the
 *           file is nowhere (storage/repl/query.c).
 * Syscalls: those of storage/walk.c, index.c and append.c, plus openat,
 *           write, sendfile (pread64 + write as fallback), fstat/newfstatat,
 *           flock, fsync, renameat2 (linkat + unlinkat as fallback), unlinkat,
 *           clock_gettime, getpid, close.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "storage/storage_int.h"

#define SAVE_SENDFILE_MAX ((size_t)1 << 30)
#define SAVE_COPY_BUF 65536
#define SAVE_FLAGS_MAX sizeof(((struct store_rec *)0)->flags)
#define SAVE_ORIGIN_MAX sizeof(((struct store_rec *)0)->origin)

struct save_ctx {
	const struct store_save_req *req;
	struct store_dirs dirs;
	int fd;                        /* the tmp file, -1 when closed */
	struct store_name_parts parts;
	char tmpname[STORE_MAX_NAME];
	char newname[STORE_MAX_NAME];
	bool in_tmp;                   /* tmpname exists in tmp/ */
	bool stamped;                  /* SAVE record appended before the fsyncs */
	bool in_new;                   /* newname is in new/, not yet durable */
	const char *what;
};

/* Sequence number for unique names, per process. */
static unsigned long save_seq;

unsigned long
store_name_seq_next(void)
{
	return ++save_seq;
}

static bool
save_req_valid(const struct store_save_req *req)
{
	if (req == NULL || req->target == NULL || req->body_fd < 0 ||
	    !store_guid_valid(req->guid))
		return false;
	if (req->prefix == NULL && req->prefix_len > 0)
		return false;
	if (req->flags != NULL &&
	    strnlen(req->flags, SAVE_FLAGS_MAX) >= SAVE_FLAGS_MAX)
		return false;
	if (req->origin != NULL &&
	    strnlen(req->origin, SAVE_ORIGIN_MAX) >= SAVE_ORIGIN_MAX)
		return false;
	return true;
}

int
store_tmp_create(int tmp_fd, const char *guid, const char *host,
		 struct store_name_parts *parts, char name[STORE_MAX_NAME])
{
	struct timespec ts;
	int i, fd;

	if (clock_gettime(CLOCK_REALTIME, &ts) < 0)
		return -1;
	parts->sec = ts.tv_sec;
	parts->usec = ts.tv_nsec / 1000;
	parts->pid = getpid();
	parts->guid = guid;
	parts->host = host != NULL && *host != '\0' ? host : "localhost";
	for (i = 0; i < STORE_TMP_TRIES; i++) {
		parts->seq = store_name_seq_next();
		if (store_name_format_base(parts, name, STORE_MAX_NAME) < 0)
			return -1;
		fd = openat(tmp_fd, name, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW |
			    O_CLOEXEC, 0600);
		if (fd >= 0 || errno != EEXIST)
			return fd;
	}
	return -1;
}

/* Create tmp/<unique name>. */
static int
save_create_tmp(struct save_ctx *c)
{
	c->fd = store_tmp_create(c->dirs.tmp_fd, c->req->guid, c->req->host, &c->parts,
				 c->tmpname);
	if (c->fd < 0)
		return -1;
	c->in_tmp = true;
	c->what = "lock tmp file";
	/* The lock says "a live writer holds this file" until it leaves
	 * tmp/ (the fd stays open until then): a reconciliation that can
	 * take it knows the writer is gone (repl/ops.c). */
	if (c->req->stamped != NULL && flock(c->fd, LOCK_EX | LOCK_NB) < 0)
		return -1;
	return 0;
}

int
store_write_all(int fd, const void *data, size_t len)
{
	const char *buf = data;
	ssize_t n;

	while (len > 0) {
		n = write(fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0) {
			errno = ENOSPC;
			return -1;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Copy up to len bytes at *off of in to out with pread/write. */
static ssize_t
save_copy_chunk(int out, int in, off_t *off, size_t len)
{
	char buf[SAVE_COPY_BUF];
	ssize_t n;

	n = pread(in, buf, len < sizeof(buf) ? len : sizeof(buf), *off);
	if (n <= 0)
		return n;
	if (store_write_all(out, buf, (size_t)n) < 0)
		return -1;
	*off += n;
	return n;
}

/* Copy exactly body_size bytes from offset 0 of body_fd to the tmp file. */
static int
save_copy_body(struct save_ctx *c)
{
	uint64_t left = c->req->body_size;
	bool use_sendfile = true;
	off_t off = 0;
	size_t chunk;
	ssize_t n;

	while (left > 0) {
		chunk = left > SAVE_SENDFILE_MAX ? SAVE_SENDFILE_MAX : (size_t)left;
		if (use_sendfile) {
			n = sendfile(c->fd, c->req->body_fd, &off, chunk);
			if (n < 0 && (errno == EINVAL || errno == ENOSYS)) {
				use_sendfile = false;
				continue;
			}
		} else {
			n = save_copy_chunk(c->fd, c->req->body_fd, &off, chunk);
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0) {   /* body shorter than body_size */
			errno = EIO;
			return -1;
		}
		left -= (uint64_t)n;
	}
	return 0;
}

/* Write the tmp file completely and make it durable. */
static int
save_write(struct save_ctx *c)
{
	const struct store_save_req *req = c->req;
	struct stat st;

	c->what = "create tmp file";
	if (save_create_tmp(c) < 0)
		return -1;
	c->what = "write";
	if (req->prefix_len > 0 &&
	    store_write_all(c->fd, req->prefix, req->prefix_len) < 0)
		return -1;
	c->what = "copy body";
	if (save_copy_body(c) < 0)
		return -1;
	c->what = "write";
	if (fstat(c->fd, &st) < 0)
		return -1;
	if ((uint64_t)st.st_size != req->prefix_len + req->body_size) {
		errno = EIO;
		return -1;
	}
	return 0;
}

/* Make the tmp file durable (it stays open, and locked, until store_save
 * ends). */
static int
save_sync_tmp(struct save_ctx *c)
{
	c->what = "fsync";
	return fsync(c->fd);
}

/* The final name (and the sizes in it). */
static int
save_name(struct save_ctx *c)
{
	const struct store_save_req *req = c->req;
	size_t i, lfs = 0;

	for (i = 0; i < req->prefix_len; i++)
		lfs += req->prefix[i] == '\n';
	c->parts.size = req->prefix_len + req->body_size;
	c->parts.vsize = req->body_vsize + req->prefix_len + lfs;
	c->what = "rename into new";
	return store_name_format(&c->parts, c->newname, sizeof(c->newname));
}

/* Move the tmp file into new/ under its final name; fsync new/. */
static int
save_commit(struct save_ctx *c)
{
	c->what = "rename into new";
	if (renameat2(c->dirs.tmp_fd, c->tmpname, c->dirs.new_fd, c->newname,
		      RENAME_NOREPLACE) == 0) {
		c->in_tmp = false;
		c->in_new = true;
	} else if (errno == EINVAL) {   /* no RENAME_NOREPLACE here */
		if (linkat(c->dirs.tmp_fd, c->tmpname, c->dirs.new_fd,
			   c->newname, 0) < 0)
			return -1;
		c->in_new = true;
		if (unlinkat(c->dirs.tmp_fd, c->tmpname, 0) == 0)
			c->in_tmp = false;
	} else {
		return -1;
	}
	c->what = "fsync new";
	if (fsync(c->dirs.new_fd) < 0)
		return -1;
	c->in_new = false;   /* durable: it stays */
	return 0;
}

/* Append the SAVE record; failure only costs the uid (rebuildable). */
static void
save_index(struct save_ctx *c, struct store_save_result *out)
{
	struct store_index_state st;
	struct store_rec rec;
	int saved = errno;

	memset(&rec, 0, sizeof(rec));
	rec.op = STORE_REC_SAVE;
	memcpy(rec.guid, c->req->guid, STORE_GUID_HEX);
	if (c->req->flags != NULL)
		memcpy(rec.flags, c->req->flags, strlen(c->req->flags));
	memcpy(rec.name, c->newname, strlen(c->newname));
	if (c->req->origin != NULL)
		memcpy(rec.origin, c->req->origin, strlen(c->req->origin));
	rec.date = (int64_t)c->parts.sec;
	if (store_index_append(c->dirs.box_fd, &rec, 1, &st) == 0) {
		out->imap_uid = rec.uid;
		out->modseq = rec.modseq;
	}
	errno = saved;
}

/* The save failed after its SAVE record was appended: expunge the GUID
 * again (if this fails too, reconciliation finds the file missing).  The
 * EXPUNGE's modseq in out->modseq, 0 if it could not be appended. */
static void
save_unstamp(struct save_ctx *c, struct store_save_result *out)
{
	struct store_index_state st;
	struct store_rec rec;

	memset(&rec, 0, sizeof(rec));
	rec.op = STORE_REC_EXPUNGE;
	memcpy(rec.guid, c->req->guid, STORE_GUID_HEX);
	if (c->req->origin != NULL)
		memcpy(rec.origin, c->req->origin, strlen(c->req->origin));
	out->modseq = store_index_append(c->dirs.box_fd, &rec, 1, &st) == 0 ?
		      rec.modseq : 0;
}

/* A GUID already saved (and not expunged): report the existing copy. */
static bool
save_is_duplicate(struct save_ctx *c, struct store_save_result *out)
{
	struct store_rec prev;
	bool found = false;
	int saved = errno;

	/* An unreadable index does not block delivery: a duplicate is
	 * better than a loss. */
	if (store_index_find_guid(c->dirs.box_fd, c->req->guid, &found,
				  &prev) < 0 || !found) {
		errno = saved;
		return false;
	}
	out->duplicate = true;
	out->imap_uid = prev.uid;
	memcpy(out->filename, prev.name, sizeof(out->filename));
	if (store_name_parse(prev.name, &out->size, NULL, NULL) < 0)
		out->size = 0;
	errno = saved;
	return true;
}

int
store_save(const struct store_save_req *req, struct store_save_result *out,
	   const char **what_out)
{
	struct save_ctx c = { .req = req, .fd = -1, .what = "check request",
			      .dirs = STORE_DIRS_INIT };
	int ret = -1, saved;

	memset(out, 0, sizeof(*out));
	if (!save_req_valid(req)) {
		errno = EINVAL;
		goto out;
	}
	c.what = "open Maildir";
	if (store_dirs_open(req->target, &c.dirs) < 0)
		goto out;
	if (req->check_duplicate && save_is_duplicate(&c, out)) {
		ret = 0;
		goto out;
	}
	if (save_write(&c) < 0 || save_name(&c) < 0)
		goto out;
	memcpy(out->filename, c.newname, sizeof(out->filename));
	out->size = c.parts.size;
	if (req->stamped != NULL) {
		save_index(&c, out);
		c.stamped = out->imap_uid != 0;
		if (c.stamped)
			req->stamped(req->stamped_arg, out);
	}
	if (save_sync_tmp(&c) < 0 || save_commit(&c) < 0)
		goto out;
	if (!c.stamped)
		save_index(&c, out);
	ret = 0;
out:
	saved = errno;
	if (ret < 0 && c.stamped)
		save_unstamp(&c, out);
	if (c.fd >= 0)
		close(c.fd);
	if (ret < 0 && c.in_new)
		unlinkat(c.dirs.new_fd, c.newname, 0);
	if (c.in_tmp)   /* also after linkat if unlinking tmp failed once */
		unlinkat(c.dirs.tmp_fd, c.tmpname, 0);
	store_dirs_close(&c.dirs);
	if (what_out != NULL)
		*what_out = ret < 0 ? c.what : NULL;
	errno = saved;
	return ret;
}
