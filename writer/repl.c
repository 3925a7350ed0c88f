/* SPDX-License-Identifier: MIT */
/*
 * writer/repl.c - one replication operation (PSEP_REPL_OP_REQ): SAVE,
 * STORE, EXPUNGE, CREATE, DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE, LIST,
 * SYNC, GUIDS, FETCH on the user's Maildir through storage/repl/repl.h,
 * answered with the facts in PSEP_REPL_OP_REP.  The supervisor decides
 * what they mean on the wire.
 *
 * Runs in:  writer-seteuid and writer-child, under seccomp.
 * Trust:    the request was validated by psep_msg_recv (uid range, paths,
 *           op, names, GUID, sealed body of the announced size); storage/
 *           checks names, GUIDs and flags once more and never follows a
 *           symlink in the Maildir.
 * Order:    enter the user's credentials, run the operation (data lines of
 *           LIST/SYNC/GUIDS go to a memfd), seal the memfd, reply, sweep
 *           the Maildir's tmp/ when due (writer/sweep.c), leave the
 *           credentials.  The FETCH file is opened as the user and copied
 *           into a sealed memfd (fetch.c): what is passed on cannot change,
 *           and a file the user changes meanwhile is an error for that
 *           message only.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "policy/policy.h"
#include "privsep/privsep.h"
#include "repl-hook/proto/proto.h"
#include "storage/repl/repl.h"
#include "storage/storage.h"
#include "writer/writer_int.h"

static int
list_cb(const char *mailbox, const struct store_mbox_state *st, void *arg)
{
	char line[PSEP_LINES_LINE_MAX];
	size_t n = repl_fmt_mailbox_data(line, sizeof(line), mailbox, st);

	if (n == 0) {
		errno = EOVERFLOW;
		return -1;
	}
	return psep_lines_add(arg, line, n);
}

static int
guids_cb(const struct store_msg_info *m, void *arg)
{
	char line[PSEP_LINES_LINE_MAX];
	size_t n = repl_fmt_guid_data(line, sizeof(line), m);

	if (n == 0) {
		errno = EOVERFLOW;
		return -1;
	}
	return psep_lines_add(arg, line, n);
}

/* A change reconciliation recorded, as a CAPTURE data line. */
static int
capture_cb(const struct store_rec *rec, void *arg)
{
	char line[PSEP_LINES_LINE_MAX];
	int n = 0;

	switch (rec->op) {
	case STORE_REC_EXPUNGE:
		n = snprintf(line, sizeof(line), "EXPUNGE %s %llu", rec->guid,
			     (unsigned long long)rec->modseq);
		break;
	case STORE_REC_FLAGS:
		if (rec->flags[0] == '\0' || rec->modseq == 0)
			return 0;   /* a rename only */
		n = snprintf(line, sizeof(line), "STORE %s %llu %s", rec->guid,
			     (unsigned long long)rec->modseq, rec->flags);
		break;
	case STORE_REC_SAVE:
		n = snprintf(line, sizeof(line), "SAVE %s", rec->guid);
		break;
	case STORE_REC_LOST:
		n = snprintf(line, sizeof(line), "LOST %s", rec->guid);
		break;
	}
	if (n <= 0 || (size_t)n >= sizeof(line)) {
		errno = EOVERFLOW;
		return -1;
	}
	return psep_lines_add(arg, line, (size_t)n);
}

/* A folder change of others, as a CAPTURE_BOXES data line (names as
 * astrings: a name may hold spaces). */
static int
boxes_cb(const char *op, const char *a, const char *b, void *arg)
{
	char line[PSEP_LINES_LINE_MAX];
	size_t n = repl_fmt_boxes_data(line, sizeof(line), op, a, b);

	if (n == 0) {
		errno = EOVERFLOW;
		return -1;
	}
	return psep_lines_add(arg, line, n);
}

/* What one operation produced besides the result. */
struct op_out {
	struct store_repl_result res;
	struct store_msg_info info;  /* FETCH */
	struct psep_lines data;        /* LIST/SYNC/GUIDS; fd -1 otherwise */
	int file_fd;                 /* FETCH */
};

static int
op_sync(const struct store_repl_ctx *ctx, const struct psep_repl_cmd *c,
	struct op_out *o, const char **what)
{
	struct store_mbox_state st;
	char line[PSEP_LINES_LINE_MAX];
	size_t n;

	memset(&st, 0, sizeof(st));
	if (store_repl_sync(ctx, c->mailbox, &st, &o->res, what) < 0)
		return -1;
	if (o->res.status != STORE_R_OK)
		return 0;
	n = repl_fmt_sync_data(line, sizeof(line), c->mailbox, &st);
	if (n == 0) {
		errno = EOVERFLOW;
		*what = "format SYNC data";
		return -1;
	}
	if (psep_lines_add(&o->data, line, n) < 0) {
		*what = "write SYNC data";
		return -1;
	}
	return 0;
}

/* With the quota enforced (replication_quota_exceed = no), a SAVE that
 * does not fit is refused with EDQUOT before anything is written.  0 or
 * -1 with errno. */
static int
quota_pre(const struct psep_repl_op_req *r, const char **what)
{
	struct store_quota q;
	int root, ret = 0;

	if (r->cmd.op != PSEP_REPL_SAVE || !r->quota.on || !r->quota.enforce)
		return 0;
	root = store_root_open(r->mail_base, r->mail_rel, (uid_t)r->uid, true);
	if (root < 0) {
		*what = "open Maildir";
		return -1;
	}
	if (writer_quota_read(root, &r->quota, &q, what) < 0) {
		ret = -1;
	} else if (!store_quota_fits(&q, r->cmd.body_size)) {
		errno = EDQUOT;
		*what = "quota";
		ret = -1;
	}
	close(root);
	return ret;
}

/* An effective SAVE or EXPUNGE changes what maildirsize counts. */
static void
quota_post(const struct psep_repl_op_req *r, const struct store_repl_result *res)
{
	int64_t sign;
	int root;

	if (res->status != STORE_R_OK || !res->effective || res->size == 0)
		return;
	if (r->cmd.op == PSEP_REPL_SAVE)
		sign = 1;
	else if (r->cmd.op == PSEP_REPL_EXPUNGE)
		sign = -1;
	else
		return;
	root = store_root_open(r->mail_base, r->mail_rel, (uid_t)r->uid, false);
	if (root < 0)
		return;
	writer_quota_account(root, sign * (int64_t)res->size, sign, r->cmd.user);
	close(root);
}

/* An effective SAVE goes into the mailbox's duplicate window too, so an
 * LMTP retry that reaches this server after a failover is not saved
 * twice. */
static void
dup_post(const struct psep_msg *m, const struct policy_settings *s,
	 const struct store_repl_result *res)
{
	const struct psep_repl_op_req *r = &m->u.repl_op_req;
	struct writer_dup_req dq = {
		.root_fd = -1, .mailbox = r->cmd.mailbox, .uid = (uid_t)r->uid,
		.body_fd = m->fd, .body_size = r->cmd.body_size, .user = r->cmd.user,
		.window_secs = s->lmtp_duplicate_window / 1000,
	};
	struct writer_dup dup;

	if (dq.window_secs == 0 || r->cmd.op != PSEP_REPL_SAVE || m->fd < 0 ||
	    res->status != STORE_R_OK || !res->effective)
		return;
	dq.root_fd = store_root_open(r->mail_base, r->mail_rel, (uid_t)r->uid, false);
	if (dq.root_fd < 0)
		return;
	writer_dup_init(&dup);
	writer_dup_record(&dup, &dq, r->cmd.guid);
	writer_dup_done(&dup);
	close(dq.root_fd);
}

/* CAPTURE: the file names of the change events, a line each: the name,
 * then "\tfrom=FOLDER" for a file moved in from another folder and
 * "\tunlinked" for a name whose file was removed, in the request's sealed
 * memfd (validated: at most PSEP_CAPTURE_NAMES_MAX bytes); storage checks
 * each name and folder again.  None, or a list that does not parse: the
 * whole mailbox. */
static int
op_capture(const struct store_repl_ctx *ctx, const struct psep_msg *m,
	   struct op_out *o, const char **what)
{
	static char buf[PSEP_CAPTURE_NAMES_MAX + 1];
	const struct psep_repl_cmd *c = &m->u.repl_op_req.cmd;
	const char *v[STORE_CAPTURE_NAMES_MAX], *from[STORE_CAPTURE_NAMES_MAX];
	bool unlinked[STORE_CAPTURE_NAMES_MAX];
	struct store_capture_names nm = { .v = v, .from = from, .unlinked = unlinked };
	const struct store_capture_names *names = NULL;
	size_t len = (size_t)c->body_size;
	char *p, *nl;

	if (m->fd >= 0 && len > 0 && len <= PSEP_CAPTURE_NAMES_MAX &&
	    pread(m->fd, buf, len, 0) == (ssize_t)len && memchr(buf, '\0', len) == NULL &&
	    buf[len - 1] == '\n') {
		buf[len] = '\0';
		names = &nm;
		for (p = buf; *p != '\0' && names != NULL; p = nl + 1) {
			char *f = p, *tab;

			nl = strchr(p, '\n');
			*nl = '\0';
			if (nm.n == STORE_CAPTURE_NAMES_MAX) {
				names = NULL;
				break;
			}
			from[nm.n] = NULL;
			unlinked[nm.n] = false;
			v[nm.n] = p;
			while ((tab = strchr(f, '\t')) != NULL) {
				*tab = '\0';
				f = tab + 1;
				if (strncmp(f, "from=", 5) == 0)
					from[nm.n] = f + 5;
				else if (strncmp(f, "unlinked", 8) == 0 && (f[8] == '\0' || f[8] == '\t'))
					unlinked[nm.n] = true;
				else
					names = NULL;   /* not ours: the whole mailbox */
			}
			nm.n++;
		}
	}
	return store_repl_capture(ctx, c->mailbox, names, capture_cb, &o->data, &o->res,
				  what);
}

/* Run the command's store_repl_* operation.  0 or -1 with errno. */
static int
op_run(const struct store_repl_ctx *ctx, const struct psep_msg *m,
       struct op_out *o, const char **what)
{
	const struct psep_repl_cmd *c = &m->u.repl_op_req.cmd;
	struct store_stamp stamp;

	memset(&stamp, 0, sizeof(stamp));
	stamp.modseq = c->modseq;
	xstrlcpy(stamp.origin, c->origin, sizeof(stamp.origin));
	switch ((enum psep_repl_op)c->op) {
	case PSEP_REPL_SAVE:
		return store_repl_save(ctx, c->mailbox, c->guid, &stamp, c->uid_hint,
				       (time_t)c->date, c->flags, m->fd, c->body_size,
				       NULL, 0, &o->res, what);
	case PSEP_REPL_STORE:
		return store_repl_store(ctx, c->mailbox, c->guid, &stamp, c->flags,
					&o->res, what);
	case PSEP_REPL_EXPUNGE:
		return store_repl_expunge(ctx, c->mailbox, c->guid, &stamp, &o->res,
					  what);
	case PSEP_REPL_CREATE:
		return store_repl_create(ctx, c->mailbox, &o->res, what);
	case PSEP_REPL_DELETE:
		return store_repl_delete(ctx, c->mailbox, &o->res, what);
	case PSEP_REPL_RENAME:
		return store_repl_rename(ctx, c->mailbox, c->mailbox2, &o->res, what);
	case PSEP_REPL_LIST:
		o->res.status = STORE_R_OK;
		return store_repl_list(ctx, list_cb, &o->data, what);
	case PSEP_REPL_SYNC:
		return op_sync(ctx, c, o, what);
	case PSEP_REPL_GUIDS:
		return store_repl_guids(ctx, c->mailbox, guids_cb, &o->data, &o->res,
					what);
	case PSEP_REPL_FETCH:
		return store_repl_fetch(ctx, c->mailbox, c->guid, &o->file_fd, &o->info,
					&o->res, what);
	case PSEP_REPL_CAPTURE:
		return op_capture(ctx, m, o, what);
	case PSEP_REPL_CAPTURE_BOXES:
		o->res.status = STORE_R_OK;
		return store_repl_capture_boxes(ctx, boxes_cb, &o->data, what);
	case PSEP_REPL_SUBSCRIBE:
	case PSEP_REPL_UNSUBSCRIBE:
		return store_repl_subscribe(ctx, c->mailbox,
					    c->op == PSEP_REPL_SUBSCRIBE, &o->res, what);
	}
	errno = EINVAL;
	*what = "unknown operation";
	return -1;
}

static bool
op_has_data(uint32_t op)
{
	return op == PSEP_REPL_LIST || op == PSEP_REPL_SYNC || op == PSEP_REPL_GUIDS ||
	       op == PSEP_REPL_CAPTURE || op == PSEP_REPL_CAPTURE_BOXES;
}

/* The facts of a finished operation into rep; *fd_out the fd to pass. */
static void
op_reply(const struct psep_repl_cmd *c, struct op_out *o, struct psep_repl_op_rep *rep,
	 int *fd_out)
{
	struct stat st;

	rep->result = (uint32_t)o->res.status;
	rep->effective = o->res.effective ? 1 : 0;
	rep->uid = o->res.uid;
	rep->modseq = o->res.stamp.modseq;
	xstrlcpy(rep->origin, o->res.stamp.origin, sizeof(rep->origin));
	xstrlcpy(rep->filename, o->res.filename, sizeof(rep->filename));
	if (o->res.status != STORE_R_OK)
		return;
	if (op_has_data(c->op)) {
		rep->size = o->data.size;
		*fd_out = o->data.fd;
	} else if (c->op == PSEP_REPL_FETCH && o->file_fd >= 0 &&
		   fstat(o->file_fd, &st) == 0) {
		rep->uid = o->info.uid;
		rep->date = (uint64_t)o->info.date;
		rep->size = (uint64_t)st.st_size;   /* the sealed copy's */
		xstrlcpy(rep->flags, o->info.flags, sizeof(rep->flags));
		*fd_out = o->file_fd;
	}
}

void
writer_repl_one(int ipc, const struct psep_msg *m, const struct policy_settings *s,
		const struct writer_creds_ops *ops)
{
	const struct psep_repl_op_req *r = &m->u.repl_op_req;
	struct store_repl_ctx ctx = {
		.mail_base = r->mail_base, .mail_rel = r->mail_rel,
		.uid = (uid_t)r->uid, .server_id = s->server_id, .host = s->hostname,
		.vanished_repair = s->replication_vanished == POLICY_VANISHED_REPAIR,
	};
	struct psep_repl_op_rep rep;
	struct op_out o;
	const char *what = "switch to user";
	bool entered = false;
	int fd = -1;

	memset(&rep, 0, sizeof(rep));
	memset(&o, 0, sizeof(o));
	o.data.fd = -1;
	o.file_fd = -1;
	if (op_has_data(r->cmd.op) && psep_lines_open(&o.data, "stowd-repl-data") < 0) {
		rep.err = errno;
		what = "create data memfd";
	} else if (ops->enter(r->uid, r->gid, r->ngroups, r->groups) < 0) {
		rep.err = errno;
	} else {
		entered = true;
		if (quota_pre(r, &what) < 0 || op_run(&ctx, m, &o, &what) < 0)
			rep.err = errno ? errno : EIO;
		else {
			quota_post(r, &o.res);
			dup_post(m, s, &o.res);
		}
	}
	if (rep.err == 0 && o.data.fd >= 0 && psep_lines_seal(&o.data) < 0) {
		rep.err = errno;
		what = "seal data memfd";
	}
	if (rep.err == 0 && r->cmd.op == PSEP_REPL_FETCH && o.file_fd >= 0) {
		int copy = -1;
		uint64_t size = 0;

		if (writer_fetch_seal(o.file_fd, s->lmtp_max_message_size +
				      REPL_LITERAL_EXTRA, &copy, &size, &what) < 0)
			rep.err = errno;
		close(o.file_fd);
		o.file_fd = copy;
	}
	if (rep.err != 0)
		xstrlcpy(rep.what, what, sizeof(rep.what));
	else
		op_reply(&r->cmd, &o, &rep, &fd);
	if (psep_msg_send(ipc, PSEP_REPL_OP_REP, m->hdr.id, &rep, sizeof(rep), fd) < 0)
		fatal("send REPL_OP_REP");
	if (o.data.fd >= 0)
		close(o.data.fd);
	if (o.file_fd >= 0)
		close(o.file_fd);
	if (entered) {
		writer_sweep_maybe(&(const struct writer_sweep_who){
			.uid = r->uid, .mail_base = r->mail_base, .mail_rel = r->mail_rel });
		ops->leave();
	}
}

/* ---- change capture: watches (PSEP_WATCH_OP_REQ) ------------------------ */

static int
watch_line(int wd, const char *mailbox, void *arg)
{
	char line[PSEP_LINES_LINE_MAX];
	int n = snprintf(line, sizeof(line), "%d %s", wd, mailbox != NULL ? mailbox : "/");

	if (n < 0 || (size_t)n >= sizeof(line)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return psep_lines_add(arg, line, (size_t)n);
}

void
writer_watch_one(int ipc, const struct psep_msg *m, const struct policy_settings *s,
		 const struct writer_creds_ops *ops)
{
	const struct psep_watch_op_req *r = &m->u.watch_op_req;
	struct store_repl_ctx ctx = {
		.mail_base = r->mail_base, .mail_rel = r->mail_rel,
		.uid = (uid_t)r->uid, .server_id = s->server_id, .host = s->hostname,
	};
	struct psep_watch_rep rep = { .err = 0 };
	struct psep_lines l = { .fd = -1 };
	const char *what = "create list memfd";

	if (psep_lines_open(&l, "stowd-watches") < 0) {
		rep.err = errno;
	} else if (ops->enter(r->uid, r->gid, r->ngroups, r->groups) < 0) {
		rep.err = errno;
		what = "switch to user";
	} else {
		if (store_repl_watch(&ctx, m->fd, watch_line, &l, &what) < 0)
			rep.err = errno != 0 ? errno : EIO;
		ops->leave();
	}
	if ((rep.err == 0 || rep.err == ENOSPC) && psep_lines_seal(&l) < 0) {
		rep.err = errno;
		what = "seal list memfd";
	}
	if (rep.err != 0 && rep.err != ENOSPC) {
		log_warn("user=%s watches: %s: %s", r->user, what, strerror(rep.err));
		if (l.fd >= 0)
			close(l.fd);
		l.fd = -1;
	}
	rep.count = l.fd >= 0 ? l.lines : 0;
	if (psep_msg_send(ipc, PSEP_WATCH_OP_REP, m->hdr.id, &rep, sizeof(rep), l.fd) < 0)
		fatal("send WATCH_OP_REP");
	if (l.fd >= 0)
		close(l.fd);
}
