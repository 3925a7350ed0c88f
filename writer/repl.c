/* SPDX-License-Identifier: MIT */
/*
 * writer/repl.c - one replication operation (PSEP_REPL_OP_REQ): SAVE,
 * STORE, EXPUNGE, CREATE, DELETE, RENAME, LIST, SYNC, GUIDS, FETCH on the
 * user's Maildir through storage/repl/repl.h, answered with the facts in
 * PSEP_REPL_OP_REP.  The supervisor decides what they mean on the wire.
 *
 * Runs in:  writer-seteuid and writer-child, under seccomp.
 * Trust:    the request was validated by psep_msg_recv (uid range, paths,
 *           op, names, GUID, sealed body of the announced size); storage/
 *           checks names, GUIDs and flags once more and never follows a
 *           symlink in the Maildir.
 * Order:    enter the user's credentials, run the operation (data lines of
 *           LIST/SYNC/GUIDS go to a memfd), seal the memfd, reply, sweep
 *           the Maildir's tmp/ when due (writer/sweep.c), leave the
 *           credentials.  The FETCH file is opened as the user and passed
 *           read-only.
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
	}
	errno = EINVAL;
	*what = "unknown operation";
	return -1;
}

static bool
op_has_data(uint32_t op)
{
	return op == PSEP_REPL_LIST || op == PSEP_REPL_SYNC || op == PSEP_REPL_GUIDS;
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
		rep->size = (uint64_t)st.st_size;
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
		if (op_run(&ctx, m, &o, &what) < 0)
			rep.err = errno ? errno : EIO;
	}
	if (rep.err == 0 && o.data.fd >= 0 && psep_lines_seal(&o.data) < 0) {
		rep.err = errno;
		what = "seal data memfd";
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
