/* SPDX-License-Identifier: MIT */
/*
 * storage/repl/query.c - reconciliation of a mailbox's index with its
 * Maildir files, whole or (change capture, §7.6) for the files named by
 * the change events only, and the queries LIST, SYNC, GUIDS, FETCH
 * (doc/replication-protocol.md §8.9-8.12, §11, §13).
 *
 * Runs in:  a writer, with the user's credentials, under its seccomp list.
 * Trust:    file names in new/ and cur/ are user-controlled: only regular
 *           files (fstatat AT_SYMLINK_NOFOLLOW) are looked at, names are
 *           bounded, a G<guid> part is used only if valid and unused; a
 *           message file is opened O_NOFOLLOW and fstat'ed (regular, owned
 *           by the user).  Names from change events are user-controlled
 *           too: looked up only if store_capture_name_ok (no '/', not
 *           hidden, no control byte), at most STORE_CAPTURE_NAMES_MAX.
 * Order:    under the index lock (storage/repl/ops.c store_rop_open): scan
 *           new/ then cur/ (a capture of names: look the names up, new/
 *           first, then search the directories' names for a message not
 *           found), move damaged files aside (fsync), then one
 *           fdatasync'ed transaction per ROP_BATCH records.
 * Syscalls: those of repl/ops.c, plus getdents64, getrandom.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "storage/repl/repl_int.h"

#define ROP_BATCH 2000          /* records per reconcile transaction */

/* ---- reconcile -------------------------------------------------------- */

/* A present message by the base name (before ':') of its file. */
struct rop_base {
	char *name;                 /* owned copy: m.msgs moves on inserts */
	size_t len;
	size_t idx;                 /* into m.msgs */
	bool seen;
	bool unlinked;              /* a capture's name of it was unlinked:
				     * not searched for */
};

struct rop_rec_ctx {
	struct store_rop *o;
	struct rop_base *bases;
	size_t nbases;
	char **added;               /* base names of files added by this run */
	size_t nadded;
	struct store_stamp stamp;   /* of added messages */
	bool changed;
	bool recheck;               /* a later pass: only look for the unseen */
	bool in_cur;                /* scanning cur/ */
	const struct store_capture_names *nm;   /* a capture of names, or NULL */
	struct {                    /* per name of nm: its source's answer */
		bool done;
		char guid[STORE_GUID_HEX + 1];
	} src[STORE_CAPTURE_NAMES_MAX];
	unsigned copy_probes;       /* folders looked at for copies */
	bool boxes_listed;          /* boxes: the user's folders, for copies */
	char (*boxes)[NAME_MAX + 1];
	size_t nboxes;
};

#define ROP_COPY_PROBES 1024   /* folders looked at for copies, per run */

/* Passes over new/ and cur/: a file that an IMAP server renames while
 * one pass reads the directories may be missed by it (readdir gives no
 * guarantee for entries that move meanwhile), so a message is taken for
 * gone only if every pass missed it. */
#define ROP_PASSES 3

static int
rop_str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* In the scan of cur/: was the base name added from new/ (sorted)? */
static bool
rop_added(const struct rop_rec_ctx *r, const char *name, size_t len)
{
	char key[STORE_MAX_NAME];
	const char *k = key;

	if (!r->in_cur || r->nadded == 0 || len >= sizeof(key))
		return false;
	memcpy(key, name, len);
	key[len] = '\0';
	return bsearch(&k, r->added, r->nadded, sizeof(*r->added), rop_str_cmp) != NULL;
}

static size_t
rop_base_len(const char *name)
{
	const char *colon = strchr(name, ':');

	return colon != NULL ? (size_t)(colon - name) : strlen(name);
}

static int
rop_base_cmp(const void *a, const void *b)
{
	const struct rop_base *x = a, *y = b;
	size_t n = x->len < y->len ? x->len : y->len;
	int c = memcmp(x->name, y->name, n);

	if (c != 0)
		return c;
	return x->len == y->len ? 0 : (x->len < y->len ? -1 : 1);
}

/* Is the base name (name, len) one of want (sorted; NULL: all)? */
static bool
rop_wanted(const struct rop_base *want, size_t nwant, const char *name, size_t len)
{
	struct rop_base key = { .name = (char *)name, .len = len };

	return want == NULL ||
	       bsearch(&key, want, nwant, sizeof(*want), rop_base_cmp) != NULL;
}

/* r->bases: the present messages (only those whose base name is in want,
 * unless want is NULL), sorted by base name. */
static int
rop_bases(struct rop_rec_ctx *r, const struct rop_base *want, size_t nwant)
{
	const struct store_mbox *m = &r->o->m;
	size_t i, n = 0;

	for (i = 0; i < m->nmsgs; i++)
		n += m->msgs[i].kind == STORE_MSG_PRESENT &&
		     rop_wanted(want, nwant, m->msgs[i].name, rop_base_len(m->msgs[i].name));
	r->bases = calloc(n + 1, sizeof(*r->bases));
	if (r->bases == NULL)
		return -1;
	for (i = 0; i < m->nmsgs && r->nbases < n; i++) {
		if (m->msgs[i].kind != STORE_MSG_PRESENT ||
		    !rop_wanted(want, nwant, m->msgs[i].name, rop_base_len(m->msgs[i].name)))
			continue;
		r->bases[r->nbases].name = strdup(m->msgs[i].name);
		if (r->bases[r->nbases].name == NULL)
			return -1;
		r->bases[r->nbases].len = rop_base_len(m->msgs[i].name);
		r->bases[r->nbases++].idx = i;
	}
	if (r->nbases > 1)
		qsort(r->bases, r->nbases, sizeof(*r->bases), rop_base_cmp);
	return 0;
}

static int
rop_queue(struct rop_rec_ctx *r, const struct store_rec *rec)
{
	r->changed = true;
	if (store_rop_apply(r->o, rec) < 0)
		return -1;
	if (r->o->capture != NULL && r->o->capture(rec, r->o->capture_arg) != 0) {
		r->o->what = "capture";
		return -1;
	}
	return r->o->npending >= ROP_BATCH ? store_rop_flush(r->o) : 0;
}

/* Move a damaged file aside to tmp/stowd-damaged-NAME. */
static int
rop_damaged(struct store_rop *o, int dirfd, const char *name)
{
	char aside[STORE_MAX_NAME + 16];

	snprintf(aside, sizeof(aside), "stowd-damaged-%s", name);
	o->what = "move damaged file";
	if (renameat2(dirfd, name, o->d.tmp_fd, aside, RENAME_NOREPLACE) < 0 &&
	    unlinkat(dirfd, name, 0) < 0)
		return -1;
	return fsync(dirfd) < 0 || fsync(o->d.tmp_fd) < 0 ? -1 : 0;
}

/* Flags from the info letters of a name ("...:2,FS"). */
static void
rop_letters_flags(const char *name, char *canon)
{
	static const char *const map[] = { "D\\Draft", "F\\Flagged",
		"R\\Answered", "S\\Seen", "T\\Deleted" };
	const char *colon = strchr(name, ':');
	char buf[STORE_FLAGS_MAX] = "";
	size_t i;

	canon[0] = '\0';
	if (colon == NULL || strncmp(colon, ":2,", 3) != 0)
		return;
	for (i = 0; i < 5; i++) {
		if (strchr(colon + 3, map[i][0]) != NULL) {
			strcat(buf, " ");
			strcat(buf, map[i] + 1);
		}
	}
	if (store_flags_canon(buf, canon) < 0)
		canon[0] = '\0';
}

/* Fill f from folder (not this mailbox): its checkpoint and the log
 * since, or (none usable, a name not in it) its whole index log, read
 * once without its lock. */
static void
rop_read_bases(const struct rop_rec_ctx *r, const char *folder, struct store_ckpt_bases *f)
{
	struct store_dirs d = STORE_DIRS_INIT;
	struct store_index_state st;
	struct store_target t = r->o->t;
	char dir[NAME_MAX + 1];

	if (strcmp(folder, r->o->t.mailbox) == 0 || store_repl_mailbox_check(folder, dir) < 0)
		return;
	t.mailbox = folder;
	if (store_dirs_open2(&t, false, &d) == 0 &&
	    store_ckpt_read_bases(d.box_fd, r->o->c->uid, f) != 0) {
		for (size_t i = 0; i < f->n; i++)
			f->guid[i][0] = '\0';
		if (store_index_read(d.box_fd, store_ckpt_bases_cb, f, &st) < 0)
			for (size_t i = 0; i < f->n; i++)
				f->guid[i][0] = '\0';
	}
	store_dirs_close(&d);
}

/* guid[] := the GUID that name's source folder (a move the capture names)
 * holds for its base name.  The first look-up of a folder reads its index
 * once for every name of the capture that came from it.  false if none. */
static bool
rop_guid_from_move(struct rop_rec_ctx *r, const char *name, char guid[STORE_GUID_HEX + 1])
{
	const struct store_capture_names *nm = r->nm;
	const char *names[STORE_CAPTURE_NAMES_MAX];
	char (*found)[STORE_GUID_HEX + 1];
	size_t i, k, n = 0, at[STORE_CAPTURE_NAMES_MAX];

	if (nm == NULL || nm->from == NULL)
		return false;
	for (i = 0; i < nm->n && (nm->from[i] == NULL || strcmp(nm->v[i], name) != 0); i++)
		;
	if (i == nm->n)
		return false;
	if (!r->src[i].done) {
		for (k = 0; k < nm->n; k++)
			if (nm->from[k] != NULL && !r->src[k].done &&
			    strcmp(nm->from[k], nm->from[i]) == 0) {
				at[n] = k;
				names[n++] = nm->v[k];
			}
		found = calloc(n, sizeof(*found));
		if (found == NULL)
			return false;
		rop_read_bases(r, nm->from[i], &(struct store_ckpt_bases){ names, n, found });
		for (k = 0; k < n; k++) {
			r->src[at[k]].done = true;
			memcpy(r->src[at[k]].guid, found[k], sizeof(found[k]));
		}
		free(found);
	}
	if (r->src[i].guid[0] == '\0')
		return false;
	memcpy(guid, r->src[i].guid, STORE_GUID_HEX + 1);
	return true;
}

/* guid[] := for a file with a second link (a COPY hard-links it under the
 * same name), the GUID its base name has in the other folder of the user
 * whose new/ or cur/ holds that link (same name and inode).  Each folder
 * looked at costs a path walk and two fstatat: at most ROP_COPY_PROBES of
 * them per reconciliation.  false if none. */
static bool
rop_guid_from_copy(struct rop_rec_ctx *r, const char *name, const struct stat *sb,
		   char guid[STORE_GUID_HEX + 1])
{
	char (*names)[NAME_MAX + 1], found[1][STORE_GUID_HEX + 1] = { "" };
	const char *what;
	bool ok = false;

	if (sb->st_nlink < 2 || r->copy_probes >= ROP_COPY_PROBES)
		return false;
	/* the user's folders, listed once per reconciliation */
	if (!r->boxes_listed) {
		r->boxes_listed = true;
		if (store_box_names(r->o->c, &r->boxes, &r->nboxes, &what) < 0)
			r->nboxes = 0;
	}
	names = r->boxes;
	for (size_t i = 0; i < r->nboxes && !ok && r->copy_probes < ROP_COPY_PROBES; i++) {
		struct store_dirs d = STORE_DIRS_INIT;
		struct store_target t = r->o->t;
		struct stat o;

		if (strcmp(names[i], r->o->t.mailbox) == 0)
			continue;
		r->copy_probes++;
		t.mailbox = names[i];
		if (store_dirs_open2(&t, false, &d) == 0)
			ok = (fstatat(d.cur_fd, name, &o, AT_SYMLINK_NOFOLLOW) == 0 ||
			      fstatat(d.new_fd, name, &o, AT_SYMLINK_NOFOLLOW) == 0) &&
			     S_ISREG(o.st_mode) && o.st_ino == sb->st_ino && o.st_dev == sb->st_dev;
		store_dirs_close(&d);
		if (ok)
			rop_read_bases(r, names[i], &(struct store_ckpt_bases){ &name, 1, found });
	}
	if (found[0][0] == '\0')
		return false;
	memcpy(guid, found[0], sizeof(found[0]));
	return true;
}

/* A file the index does not know: add it with a stamp of this server. */
static int
rop_add_file(struct rop_rec_ctx *r, const char *name, const struct stat *st)
{
	struct store_rop *o = r->o;
	const struct store_msg *msg;
	char guid[STORE_GUID_HEX + 1];
	struct store_rec rec;
	size_t i;

	if (o->m.st.uidnext == UINT32_MAX)
		return 0;   /* UID space used up: leave it out */
	guid[0] = '\0';
	if ((store_name_parse(name, NULL, NULL, guid) < 0 || !store_guid_valid(guid)) &&
	    !rop_guid_from_move(r, name, guid) && !rop_guid_from_copy(r, name, st, guid))
		guid[0] = '\0';
	for (i = 0; i < STORE_GUID_HEX && guid[0] != '\0'; i++)
		guid[i] = (char)(guid[i] | (guid[i] >= 'A' ? 0x20 : 0));
	o->what = "checkpoint";
	if (guid[0] != '\0' && store_ckpt_want_guid(o, guid) < 0)
		return -1;
	msg = guid[0] != '\0' ? store_mbox_find(&o->m, guid) : NULL;
	if (guid[0] == '\0' || (msg != NULL && msg->kind != STORE_MSG_LOST)) {
		o->what = "new GUID";
		if (store_guid_new(o->c->server_id, guid) < 0)
			return -1;
	}
	store_rop_rec(&rec, STORE_REC_SAVE, guid, &r->stamp);
	rec.uid = o->m.st.uidnext;
	rec.date = (int64_t)st->st_mtime;
	snprintf(rec.name, sizeof(rec.name), "%s", name);
	rop_letters_flags(name, rec.flags);
	return rop_queue(r, &rec);
}

/* One file of new/ or cur/. */
static int
rop_check_file(struct rop_rec_ctx *r, int dirfd, const char *name)
{
	struct rop_base key = { .name = (char *)name, .len = rop_base_len(name) };
	struct rop_base *b;
	struct store_msg *msg;
	struct store_rec rec;
	struct stat st;
	uint64_t size;

	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
	    !S_ISREG(st.st_mode) || strlen(name) >= STORE_MAX_NAME)
		return 0;
	b = bsearch(&key, r->bases, r->nbases, sizeof(*r->bases), rop_base_cmp);
	if (b != NULL && b->seen)
		return 0;   /* a second file with the same base name */
	if (b == NULL && (r->recheck || rop_added(r, name, key.len)))
		return 0;   /* added already (moved new/ -> cur/ meanwhile) */
	if (store_name_parse(name, &size, NULL, NULL) == 0 &&
	    size != (uint64_t)st.st_size) {
		if (rop_damaged(r->o, dirfd, name) < 0)
			return -1;
		if (b == NULL)
			return 0;
		b->seen = true;
		msg = &r->o->m.msgs[b->idx];
		store_rop_rec(&rec, STORE_REC_LOST, msg->guid, NULL);
		return rop_queue(r, &rec);
	}
	if (b == NULL && !r->in_cur) {
		char **a = realloc(r->added, (r->nadded + 1) * sizeof(*a));

		if (a == NULL)
			return -1;
		r->added = a;
		a[r->nadded] = strndup(name, key.len);
		if (a[r->nadded] == NULL)
			return -1;
		r->nadded++;
	}
	if (b == NULL)
		return rop_add_file(r, name, &st);
	b->seen = true;
	msg = &r->o->m.msgs[b->idx];
	if (strcmp(msg->name, name) == 0)
		return 0;
	/* follow a rename; changed info letters are a STORE of this server */
	store_rop_rec(&rec, STORE_REC_FLAGS, msg->guid, NULL);
	if (store_flags_letter_deltas(msg->flags, name, rec.flags) +
	    store_rop_kw_deltas(r->o, msg->name, name, rec.flags) > 0) {
		rec.modseq = r->stamp.modseq;
		memcpy(rec.origin, r->stamp.origin, sizeof(rec.origin));
	}
	snprintf(rec.name, sizeof(rec.name), "%s", name);
	return rop_queue(r, &rec);
}

struct rop_scan {
	struct rop_rec_ctx *r;
	int dirfd;
};

static int
rop_scan_cb(const char *name, unsigned char type, void *arg)
{
	struct rop_scan *sc = arg;

	if (name[0] == '.' || (type != DT_REG && type != DT_UNKNOWN))
		return 0;
	return rop_check_file(sc->r, sc->dirfd, name) < 0 ? -1 : 0;
}

/* Every regular file of the directory dirfd (a fresh fd is read). */
static int
rop_scan_dir(struct rop_rec_ctx *r, int dirfd)
{
	struct rop_scan sc = { .r = r, .dirfd = dirfd };

	return store_dir_each(dirfd, rop_scan_cb, &sc);
}

/* A SAVE record appended before its file left tmp/ whose file is still
 * in tmp/ under the base name (up to the first ',' or ':'): while its
 * writer holds the file's lock the save is in flight and left alone.
 * Once nobody holds it the writer died between the record and the
 * rename.  A save of this server (store_save with stamped: a delivery,
 * stamp origin server_id) was not answered (no 250 was given), so it is
 * undone for good: the tmp file is removed and the GUID tombstoned (stamp
 * (H+1, server_id)), and a SYNC carries the EXPUNGE to the replicas
 * (doc/replication-protocol.md §9); so is one of a version-1 record (no
 * origin).  A replicated SAVE (another origin) holds a message its master
 * has: the complete, synced file is put in place.  Returns 1 if the
 * record was handled (in flight, tombstoned or placed), 0 if it is not in
 * tmp/, -1 on error. */
static int
rop_in_tmp(struct rop_rec_ctx *r, const struct store_msg *msg)
{
	struct store_rec rec;

	switch (store_rop_tmp_state(r->o, msg->name)) {
	case STORE_ROP_TMP_NONE:
		return 0;
	case STORE_ROP_TMP_IN_FLIGHT:
		return 1;
	case STORE_ROP_TMP_ORPHAN:
		break;
	}
	if (msg->base_origin[0] != '\0' &&
	    strcmp(msg->base_origin, r->o->c->server_id) != 0)
		return store_rop_tmp_place(r->o, msg->name) < 0 ? -1 : 1;
	r->o->what = "remove orphaned tmp file";
	if (store_rop_tmp_remove(r->o, msg->name) < 0)
		return -1;
	store_rop_rec(&rec, STORE_REC_EXPUNGE, msg->guid, &r->stamp);
	return rop_queue(r, &rec) < 0 ? -1 : 1;
}

/* The present messages of r->bases no pass saw: in flight in tmp/, or
 * gone (EXPUNGE, or LOST with vanished_repair). */
static int
rop_vanished(struct rop_rec_ctx *r)
{
	struct store_rop *o = r->o;
	struct store_rec rec;
	struct store_msg msg;

	for (size_t i = 0; i < r->nbases; i++) {
		int t;

		if (r->bases[i].seen)
			continue;
		/* a copy: o->m.msgs may move while records are applied */
		msg = o->m.msgs[r->bases[i].idx];
		t = rop_in_tmp(r, &msg);
		if (t < 0)
			return -1;
		if (t > 0)
			continue;
		/* gone: expunged by someone else, or (vanished_repair, or an
		 * index entry without a usable name) a loss to repair */
		if (o->c->vanished_repair || r->bases[i].len == 0)
			store_rop_rec(&rec, STORE_REC_LOST, msg.guid, NULL);
		else
			store_rop_rec(&rec, STORE_REC_EXPUNGE, msg.guid, &r->stamp);
		if (rop_queue(r, &rec) < 0)
			return -1;
	}
	return 0;
}

static void
rop_rec_free(struct rop_rec_ctx *r)
{
	size_t i;

	for (i = 0; r->bases != NULL && i < r->nbases; i++)
		free(r->bases[i].name);
	free(r->bases);
	for (i = 0; i < r->nadded; i++)
		free(r->added[i]);
	free(r->added);
	free(r->boxes);
}

/* Under the lock, with o open: the reconciliation of repl.h. */
int
store_rop_reconcile(struct store_rop *o, bool *changed_out)
{
	struct rop_rec_ctx r = { .o = o };
	size_t i;
	int ret = -1;

	r.stamp.modseq = o->m.st.highestmodseq + 1;
	snprintf(r.stamp.origin, sizeof(r.stamp.origin), "%s", o->c->server_id);
	o->what = "read Maildir";
	if (rop_bases(&r, NULL, 0) < 0)
		goto out;
	for (int pass = 0; pass < ROP_PASSES; pass++) {
		bool unseen = false;

		r.in_cur = false;
		if (rop_scan_dir(&r, o->d.new_fd) < 0)
			goto out;
		if (pass == 0 && r.nadded > 1)
			qsort(r.added, r.nadded, sizeof(*r.added), rop_str_cmp);
		r.in_cur = true;
		if (rop_scan_dir(&r, o->d.cur_fd) < 0)
			goto out;
		for (i = 0; i < r.nbases && !unseen; i++)
			unseen = !r.bases[i].seen;
		if (!unseen)
			break;
		r.recheck = true;
	}
	if (rop_vanished(&r) < 0 || store_rop_flush(o) < 0)
		goto out;
	ret = 0;
out:
	if (changed_out != NULL)
		*changed_out = r.changed;
	rop_rec_free(&r);
	return ret;
}

/* ---- capture of named files -------------------------------------------- */

/* A file a capture of named files looks at: a name of the list, or the
 * name the index holds for a message one of them shares its base with. */
struct rop_cand {
	const char *name;           /* borrowed: the list or r->bases */
	size_t len;                 /* of its base name */
	int dirfd;                  /* new/ or cur/ holding it; -1: neither */
};

bool
store_capture_name_ok(const char *name)
{
	size_t n = strnlen(name, STORE_MAX_NAME);

	if (n == 0 || n >= STORE_MAX_NAME || name[0] == '.' || rop_base_len(name) == 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f || name[i] == '/')
			return false;
	return true;
}

/* Add name to the candidates unless it is there already. */
static void
rop_cand_add(struct rop_cand *cand, size_t *ncand, const char *name)
{
	for (size_t i = 0; i < *ncand; i++)
		if (strcmp(cand[i].name, name) == 0)
			return;
	cand[*ncand].name = name;
	cand[*ncand].len = rop_base_len(name);
	cand[*ncand].dirfd = -1;
	(*ncand)++;
}

/* Where each candidate is now (a regular file of new/ or cur/).  false if
 * that is ambiguous: a name in both, or two files with one base name
 * (which of them a reconciliation follows depends on readdir). */
static bool
rop_cand_locate(const struct store_rop *o, struct rop_cand *cand, size_t ncand)
{
	const int dirs[2] = { o->d.new_fd, o->d.cur_fd };
	struct stat st;

	for (size_t i = 0; i < ncand; i++) {
		for (int d = 0; d < 2; d++) {
			if (fstatat(dirs[d], cand[i].name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
			    !S_ISREG(st.st_mode))
				continue;
			if (cand[i].dirfd >= 0)
				return false;
			cand[i].dirfd = dirs[d];
		}
		for (size_t j = 0; j < i && cand[i].dirfd >= 0; j++)
			if (cand[j].dirfd >= 0 && cand[j].len == cand[i].len &&
			    memcmp(cand[j].name, cand[i].name, cand[i].len) == 0)
				return false;
	}
	return true;
}

/* A known message of the names not found yet that may be elsewhere. */
static bool
rop_unseen(const struct rop_rec_ctx *r)
{
	for (size_t i = 0; i < r->nbases; i++)
		if (!r->bases[i].seen && !r->bases[i].unlinked)
			return true;
	return false;
}

/* The unseen messages with a name that was unlinked: gone, no search. */
static void
rop_mark_unlinked(struct rop_rec_ctx *r, const struct store_capture_names *nm)
{
	for (size_t i = 0; nm->unlinked != NULL && i < nm->n; i++) {
		struct rop_base key = { .name = (char *)nm->v[i], .len = rop_base_len(nm->v[i]) };
		struct rop_base *b;

		if (!nm->unlinked[i])
			continue;
		b = bsearch(&key, r->bases, r->nbases, sizeof(*r->bases), rop_base_cmp);
		if (b != NULL && !b->seen)
			b->unlinked = true;
	}
}

/* The search for a message whose file is under none of the names: the
 * names of the directory are compared, only a match is looked at. */
static int
rop_search_cb(const char *name, unsigned char type, void *arg)
{
	struct rop_scan *sc = arg;
	struct rop_base key = { .name = (char *)name, .len = rop_base_len(name) };
	const struct rop_base *b;

	if (name[0] == '.' || (type != DT_REG && type != DT_UNKNOWN))
		return 0;
	b = bsearch(&key, sc->r->bases, sc->r->nbases, sizeof(*sc->r->bases), rop_base_cmp);
	if (b == NULL || b->seen)
		return 0;
	return rop_check_file(sc->r, sc->dirfd, name) < 0 ? -1 : 0;
}

/*
 * Reconcile the files of names only, as store_rop_reconcile would them:
 * the candidates are checked where they are, new/ first; a known message
 * found under none of them is searched for by name in new/ and cur/ (up
 * to ROP_PASSES times) before it is taken for gone.  Returns 0; 1 when
 * the whole mailbox has to be reconciled instead (a name not valid, too
 * many, an ambiguous base name), with nothing recorded; -1 on error.
 */
static int
rop_reconcile_names(struct rop_rec_ctx *r, const struct store_capture_names *nm)
{
	struct rop_base want[STORE_CAPTURE_NAMES_MAX];
	struct rop_cand cand[2 * STORE_CAPTURE_NAMES_MAX];
	struct store_rop *o = r->o;
	size_t i, ncand = 0;

	if (nm->n == 0 || nm->n > STORE_CAPTURE_NAMES_MAX)
		return 1;
	r->nm = nm;
	for (i = 0; i < nm->n; i++) {
		if (!store_capture_name_ok(nm->v[i]))
			return 1;
		want[i].name = (char *)nm->v[i];
		want[i].len = rop_base_len(nm->v[i]);
	}
	qsort(want, nm->n, sizeof(*want), rop_base_cmp);
	if (rop_bases(r, want, nm->n) < 0)
		return -1;
	if (r->nbases > STORE_CAPTURE_NAMES_MAX)
		return 1;
	for (i = 0; i < nm->n; i++)
		rop_cand_add(cand, &ncand, nm->v[i]);
	for (i = 0; i < r->nbases; i++)
		if (store_capture_name_ok(r->bases[i].name))
			rop_cand_add(cand, &ncand, r->bases[i].name);
	if (!rop_cand_locate(o, cand, ncand))
		return 1;
	for (i = 0; i < ncand; i++)
		if (cand[i].dirfd == o->d.new_fd && rop_check_file(r, o->d.new_fd, cand[i].name) < 0)
			return -1;
	if (r->nadded > 1)
		qsort(r->added, r->nadded, sizeof(*r->added), rop_str_cmp);
	r->in_cur = true;
	for (i = 0; i < ncand; i++)
		if (cand[i].dirfd == o->d.cur_fd && rop_check_file(r, o->d.cur_fd, cand[i].name) < 0)
			return -1;
	r->recheck = true;
	rop_mark_unlinked(r, nm);
	for (int pass = 0; pass < ROP_PASSES && rop_unseen(r); pass++) {
		struct rop_scan sn = { .r = r, .dirfd = o->d.new_fd };
		struct rop_scan sc = { .r = r, .dirfd = o->d.cur_fd };

		r->in_cur = false;
		if (store_dir_each(o->d.new_fd, rop_search_cb, &sn) != 0)
			return -1;
		r->in_cur = true;
		if (store_dir_each(o->d.cur_fd, rop_search_cb, &sc) != 0)
			return -1;
	}
	return 0;
}

/* Under the lock, with o open: capture the files of nm only; 1 when the
 * whole mailbox has to be reconciled instead (nothing recorded). */
static int
rop_capture_names(struct store_rop *o, const struct store_capture_names *nm)
{
	struct rop_rec_ctx r = { .o = o };
	int ret;

	r.stamp.modseq = o->m.st.highestmodseq + 1;
	snprintf(r.stamp.origin, sizeof(r.stamp.origin), "%s", o->c->server_id);
	o->what = "read Maildir";
	ret = rop_reconcile_names(&r, nm);
	if (ret == 0 && (rop_vanished(&r) < 0 || store_rop_flush(o) < 0))
		ret = -1;
	rop_rec_free(&r);
	return ret;
}

int
store_repl_reconcile(const struct store_repl_ctx *c, const char *mailbox,
		     bool *changed_out, const char **what_out)
{
	struct store_rop o;
	int ret;

	if (changed_out != NULL)
		*changed_out = false;
	if (store_rop_open_existing(&o, c, mailbox, NULL, &ret) &&
	    store_rop_reconcile(&o, changed_out) == 0)
		ret = 0;
	store_rop_done(&o, ret, what_out);
	return ret;
}

int
store_repl_capture(const struct store_repl_ctx *c, const char *mailbox,
		   const struct store_capture_names *names,
		   int (*cb)(const struct store_rec *rec, void *arg), void *arg,
		   struct store_repl_result *res, const char **what_out)
{
	struct store_rop o;
	int ret, t = 1;

	memset(res, 0, sizeof(*res));
	if (store_rop_open_existing_want(&o, c, mailbox, names, res, &ret)) {
		o.capture = cb;
		o.capture_arg = arg;
		if (names != NULL)
			t = rop_capture_names(&o, names);
		if (t > 0) {
			/* the whole mailbox: the whole state */
			o.what = "index";
			t = store_rop_load_whole(&o) < 0 ? -1 :
			    store_rop_reconcile(&o, NULL);
		}
		if (t == 0)
			ret = 0;
	}
	store_rop_done(&o, ret, what_out);
	return ret;
}

/* ---- LIST --------------------------------------------------------------- */

int
store_repl_list(const struct store_repl_ctx *c,
		int (*cb)(const char *mailbox, const struct store_mbox_state *st, void *arg),
		void *arg, const char **what_out)
{
	char (*names)[NAME_MAX + 1] = NULL;
	struct store_repl_result res;
	struct store_mbox_state st;
	const char *what = "check request";
	size_t i, n = 0;
	int ret = -1;

	if (!store_repl_ctx_ok(c) || cb == NULL) {
		errno = EINVAL;
		goto out;
	}
	if (store_box_names(c, &names, &n, &what) < 0)
		goto out;
	for (i = 0, ret = 0; i < n && ret == 0; i++) {
		if (store_repl_sync(c, names[i], &st, &res, &what) < 0) {
			ret = -1;
			break;
		}
		if (res.status == STORE_R_OK)
			ret = cb(names[i], &st, arg);
		what = "callback";
	}
out:
	free(names);
	if (what_out != NULL)
		*what_out = ret < 0 ? what : NULL;
	return ret;
}

/* ---- SYNC, GUIDS, FETCH ----------------------------------------------- */

static void
rop_state(const struct store_rop *o, struct store_mbox_state *st)
{
	memset(st, 0, sizeof(*st));
	st->messages = o->m.st.messages;
	st->uidvalidity = o->m.st.uidvalidity;
	st->uidnext = o->m.st.uidnext;
	st->highestmodseq = o->m.st.highestmodseq;
	memcpy(st->guidhash, o->m.guidhash, STORE_HASH_LEN);
	memcpy(st->flaghash, o->m.flaghash, STORE_HASH_LEN);
}

int
store_repl_sync(const struct store_repl_ctx *c, const char *mailbox,
		struct store_mbox_state *st, struct store_repl_result *res,
		const char **what_out)
{
	struct store_rop o;
	int ret;

	memset(res, 0, sizeof(*res));
	memset(st, 0, sizeof(*st));
	if (store_rop_open_existing(&o, c, mailbox, res, &ret) &&
	    store_rop_reconcile(&o, NULL) == 0) {
		rop_state(&o, st);
		ret = 0;
	}
	store_rop_done(&o, ret, what_out);
	return ret;
}

static void
rop_info(const struct store_msg *msg, struct store_msg_info *m)
{
	const char *origin;

	memset(m, 0, sizeof(*m));
	memcpy(m->guid, msg->guid, sizeof(m->guid));
	m->expunged = msg->kind == STORE_MSG_TOMBSTONE;
	if (m->expunged)
		return;
	m->uid = msg->uid;
	store_msg_stamp(msg, &m->stamp.modseq, &origin);
	snprintf(m->stamp.origin, sizeof(m->stamp.origin), "%s", origin);
	memcpy(m->flags, msg->flags, sizeof(m->flags));
	m->date = (time_t)msg->date;
	if (store_name_parse(msg->name, &m->size, NULL, NULL) < 0)
		m->size = 0;
}

int
store_repl_guids(const struct store_repl_ctx *c, const char *mailbox,
		 int (*cb)(const struct store_msg_info *m, void *arg),
		 void *arg, struct store_repl_result *res,
		 const char **what_out)
{
	struct store_msg_info info;
	struct store_rop o;
	size_t i;
	int ret;

	memset(res, 0, sizeof(*res));
	if (store_rop_open_existing(&o, c, mailbox, res, &ret) &&
	    store_rop_reconcile(&o, NULL) == 0) {
		ret = 0;
		for (i = 0; i < o.m.nmsgs && ret == 0; i++) {
			if (o.m.msgs[i].kind == STORE_MSG_LOST)
				continue;
			rop_info(&o.m.msgs[i], &info);
			ret = cb(&info, arg);
		}
		o.what = "callback";
	}
	store_rop_done(&o, ret, what_out);
	return ret;
}

static int
rop_fetch_open(struct store_rop *o, const char *guid, int *fd_out,
	       struct store_msg_info *info, struct store_repl_result *res)
{
	const struct store_msg *msg = store_mbox_find(&o->m, guid);
	struct stat st;
	int dirfd;

	if (msg == NULL || msg->kind != STORE_MSG_PRESENT) {
		res->status = msg != NULL && msg->kind == STORE_MSG_TOMBSTONE ?
			      STORE_R_EXPUNGED : STORE_R_NONEXISTENT;
		return 0;
	}
	dirfd = store_rop_locate(o, msg->name, &st);
	o->what = "open message";
	if (dirfd >= 0)
		*fd_out = openat(dirfd, msg->name, O_RDONLY | O_NOFOLLOW |
				 O_NONBLOCK | O_CLOEXEC);
	if (*fd_out < 0) {
		if (errno != ENOENT)
			return -1;
		res->status = STORE_R_NONEXISTENT;
		return 0;
	}
	if (fstat(*fd_out, &st) < 0 || !S_ISREG(st.st_mode) ||
	    st.st_uid != o->c->uid) {
		close(*fd_out);
		*fd_out = -1;
		errno = EPERM;
		return -1;
	}
	rop_info(msg, info);
	info->date = st.st_mtime;
	info->size = (uint64_t)st.st_size;
	res->uid = msg->uid;
	res->size = info->size;
	return 0;
}

int
store_repl_fetch(const struct store_repl_ctx *c, const char *mailbox,
		 const char *guid, int *fd_out, struct store_msg_info *info,
		 struct store_repl_result *res, const char **what_out)
{
	struct store_rop o;
	int ret;

	*fd_out = -1;
	memset(res, 0, sizeof(*res));
	memset(info, 0, sizeof(*info));
	if (guid == NULL || !store_guid_valid(guid))
		return store_rop_bad_request(what_out);
	if (store_rop_open_existing(&o, c, mailbox, res, &ret) &&
	    rop_fetch_open(&o, guid, fd_out, info, res) == 0)
		ret = 0;
	store_rop_done(&o, ret, what_out);
	return ret;
}
