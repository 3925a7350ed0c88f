/* SPDX-License-Identifier: MIT */
/*
 * privsep/sup/repl.c - replication operations in the supervisor: a
 * PSEP_REPL_REQ from repld (a peer or a local producer) or from repl-hook
 * (queries and local repairs) becomes a PSEP_REPL_OP_REQ job for a writer
 * with the user's credentials; the writer's facts become the wire reply
 * (doc/replication-protocol.md §5.2); an effective event is journaled by
 * repl-hook (PSEP_EVENT_REQ) before the reply is sent (§9, §10.1).
 *
 * Runs in:  the supervisor.
 * Trust:    commands were parsed by repld (untrusted peer bytes) and are
 *           validated again by psep_msg_recv; the user is resolved here
 *           with the userdb and the uid rules; the writer checks again.
 * Order:    userdb lookup, writer job, (event journaled), reply.  A reply
 *           is sent only to the process that asked, and only if it still
 *           lives.  A writer lost during the job is NO [UNAVAILABLE] (a
 *           retry may work), unless it was killed for what it sent about
 *           this operation: that is NO [NOPERM], permanent, so a master
 *           does not send it again and again (§5.2, §10.3).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "privsep/sup/sup_int.h"
#include "storage/repl/repl.h"

/* One operation in progress. */
struct repl_op {
	struct sup *sup;
	struct psep_repl_cmd cmd;
	int body_fd;                  /* SAVE: kept for the event, or -1 */
	struct psep_repl_rep rep;     /* the reply, once the writer answered */
	int rep_fd;                   /* its data/FETCH fd, or -1 */
	sup_repl_done_fn done;
	void *arg;
};

/* One request from a child, waiting for its reply. */
struct repl_asker {
	struct sup_child *from;       /* referenced */
	uint64_t req_id;
};

static void
rep_set(struct psep_repl_rep *r, enum psep_repl_status st, const char *code,
	const char *text)
{
	r->status = st;
	xstrlcpy(r->code, code, sizeof(r->code));
	xstrlcpy(r->text, text, sizeof(r->text));
}

/* A wire reply: status, response code, text. */
struct rep_row {
	enum psep_repl_status st;
	const char *code;
	const char *text;
};

/* errno of a failed step -> NO/BAD with a code (§5.2); any other errno
 * is SERVERBUG. */
static const struct {
	int err;
	struct rep_row rep;
} errno_rows[] = {
	{ ENOSPC, { PSEP_RS_NO, "OVERQUOTA", "over quota or no space" } },
	{ EDQUOT, { PSEP_RS_NO, "OVERQUOTA", "over quota or no space" } },
	{ EBADMSG, { PSEP_RS_NO, "CORRUPTION", "mailbox index damaged" } },
	{ ELOOP, { PSEP_RS_NO, "NOPERM", "mailbox check failed" } },
	{ EPERM, { PSEP_RS_NO, "NOPERM", "mailbox check failed" } },
	{ EACCES, { PSEP_RS_NO, "NOPERM", "mailbox check failed" } },
	{ ENOTDIR, { PSEP_RS_NO, "NOPERM", "mailbox check failed" } },
	{ EINVAL, { PSEP_RS_BAD, "SYNTAX", "invalid argument" } },
	/* FETCH (writer/fetch.c): the user changed the file while it was
	 * read (try again), or it is larger than any message may be */
	{ ESTALE, { PSEP_RS_NO, "UNAVAILABLE", "message file changed, try again" } },
	{ EFBIG, { PSEP_RS_NO, "LIMIT", "message file larger than MAXLITERAL" } },
	/* a lock another program holds (SUBSCRIBE: subscriptions.lock) */
	{ EAGAIN, { PSEP_RS_NO, "UNAVAILABLE", "mailbox busy, try again" } },
	/* the mailbox's index is over index_max_size or index_max_messages */
	{ E2BIG, { PSEP_RS_NO, "LIMIT", "mailbox index over its size or message limit" } },
};

static void
rep_from_errno(struct psep_repl_rep *r, int err)
{
	static const struct rep_row other = { PSEP_RS_NO, "SERVERBUG", "internal error" };
	const struct rep_row *row = &other;
	size_t i;

	for (i = 0; i < sizeof(errno_rows) / sizeof(errno_rows[0]) && row == &other; i++)
		if (errno_rows[i].err == err)
			row = &errno_rows[i].rep;
	rep_set(r, row->st, row->code, row->text);
}

#define OP_BIT(op) (1u << (op))

/*
 * The writer's result (enum store_repl_status) -> the reply (§5.2):
 * rep.text NULL is the operation's own text (ok_text); flip_ops are the
 * operations that get the other status (OK <-> NO); code_ops those that
 * get rep.code (the others none), followed by " <uid>" with_uid.
 */
struct result_row {
	struct rep_row rep;
	uint32_t flip_ops, code_ops;
	bool with_uid;
};

static const struct result_row result_rows[] = {
	[STORE_R_OK] = { { PSEP_RS_OK, "UID", NULL }, 0, OP_BIT(PSEP_REPL_SAVE), true },
	[STORE_R_DUPLICATE] = { { PSEP_RS_OK, "DUPLICATE", "already present" }, 0,
				UINT32_MAX, true },
	[STORE_R_EXPUNGED] = { { PSEP_RS_OK, "EXPUNGED", "expunged" },
			       OP_BIT(PSEP_REPL_FETCH), UINT32_MAX, false },
	[STORE_R_NONEXISTENT] = { { PSEP_RS_NO, "NONEXISTENT", "no such message or mailbox" },
				  OP_BIT(PSEP_REPL_STORE) | OP_BIT(PSEP_REPL_EXPUNGE),
				  UINT32_MAX, false },
	[STORE_R_ALREADYEXISTS] = { { PSEP_RS_NO, "ALREADYEXISTS", "target exists" }, 0,
				    UINT32_MAX, false },
	[STORE_R_CANNOT] = { { PSEP_RS_NO, "CANNOT", "not allowed" }, 0, UINT32_MAX, false },
	[STORE_R_LIMIT] = { { PSEP_RS_NO, "LIMIT", "limit exceeded" }, 0, UINT32_MAX, false },
};

static const char *
ok_text(uint32_t op)
{
	static const char *const t[PSEP_REPL_OP_MAX + 1] = {
		[PSEP_REPL_SAVE] = "saved", [PSEP_REPL_STORE] = "stored",
		[PSEP_REPL_EXPUNGE] = "expunged", [PSEP_REPL_CREATE] = "created",
		[PSEP_REPL_DELETE] = "deleted", [PSEP_REPL_RENAME] = "renamed",
		[PSEP_REPL_LIST] = "listed", [PSEP_REPL_SYNC] = "sync",
		[PSEP_REPL_GUIDS] = "guids", [PSEP_REPL_FETCH] = "fetched",
		[PSEP_REPL_CAPTURE] = "captured", [PSEP_REPL_CAPTURE_BOXES] = "captured",
		[PSEP_REPL_SUBSCRIBE] = "subscribed",
		[PSEP_REPL_UNSUBSCRIBE] = "unsubscribed",
	};

	return op <= PSEP_REPL_OP_MAX && t[op] != NULL ? t[op] : "done";
}

void
sup_repl_map(uint32_t op, const struct psep_repl_op_rep *w, struct psep_repl_rep *r)
{
	uint32_t bit = op <= PSEP_REPL_OP_MAX ? OP_BIT(op) : 0;
	char code[sizeof(r->code)];
	enum psep_repl_status st;

	memset(r, 0, sizeof(*r));
	if (w->err != 0) {
		rep_from_errno(r, w->err);
		return;
	}
	r->effective = w->effective;
	r->uid = w->uid;
	r->modseq = w->modseq;
	r->date = w->date;
	r->size = w->size;
	xstrlcpy(r->origin, w->origin, sizeof(r->origin));
	xstrlcpy(r->flags, w->flags, sizeof(r->flags));
	if (w->result < sizeof(result_rows) / sizeof(result_rows[0])) {
		const struct result_row *row = &result_rows[w->result];

		st = row->rep.st;
		if (row->flip_ops & bit)
			st = st == PSEP_RS_OK ? PSEP_RS_NO : PSEP_RS_OK;
		code[0] = '\0';
		if ((row->code_ops & bit) && row->with_uid)
			snprintf(code, sizeof(code), "%s %u", row->rep.code, w->uid);
		else if (row->code_ops & bit)
			xstrlcpy(code, row->rep.code, sizeof(code));
		rep_set(r, st, code, row->rep.text != NULL ? row->rep.text : ok_text(op));
	}
	if (r->status != PSEP_RS_OK)
		r->effective = 0;
}

static void
op_free(struct repl_op **op)
{
	if (*op == NULL)
		return;
	if ((*op)->body_fd >= 0)
		close((*op)->body_fd);
	if ((*op)->rep_fd >= 0)
		close((*op)->rep_fd);
	free(*op);
	*op = NULL;
}

static void
op_finish(struct repl_op *op)
{
	int fd = op->rep_fd;

	op->rep_fd = -1;
	op->done(op->sup, &op->rep, fd, op->arg);
	op_free(&op);
}

static void
op_event_done(struct sup *sup, enum psep_event_status st, uint32_t acks, void *arg)
{
	struct repl_op *op = arg;

	(void)sup;
	(void)acks;
	if (st != PSEP_EV_JOURNALED && st != PSEP_EV_ACKED) {
		log_err("user=%s mailbox=%s guid=%s applied but not journaled for "
			"the replicas", op->cmd.user, op->cmd.mailbox, op->cmd.guid);
		memset(&op->rep, 0, sizeof(op->rep));
		rep_set(&op->rep, PSEP_RS_NO, "UNAVAILABLE", "replication journal failed");
		if (op->rep_fd >= 0)
			close(op->rep_fd);
		op->rep_fd = -1;
	}
	op_finish(op);
}

/* Journal an effective event for the replicas; the reply waits. */
static void
op_forward(struct repl_op *op)
{
	struct sup *sup = op->sup;
	struct psep_repl_cmd ev = op->cmd;

	if (op->cmd.op == PSEP_REPL_SAVE || op->cmd.op == PSEP_REPL_STORE ||
	    op->cmd.op == PSEP_REPL_EXPUNGE) {
		ev.modseq = op->rep.modseq;
		if (op->rep.origin[0] != '\0')
			xstrlcpy(ev.origin, op->rep.origin, sizeof(ev.origin));
	}
	if (op->cmd.op == PSEP_REPL_SAVE)
		ev.uid_hint = op->rep.uid;
	if (sup_event_send(sup, &ev, NULL, 0, op->body_fd, 0, 0, op_event_done, op) < 0)
		op_event_done(sup, PSEP_EV_FAILED, 0, op);
}

static void
op_job_done(struct sup_job *job, struct psep_msg *m, const char *failure)
{
	struct repl_op *op = job->arg;

	job->arg = NULL;
	if (m == NULL) {
		log_err("user=%s mailbox=%s guid=%s op=%u id=%016llx failed: %s",
			op->cmd.user, op->cmd.mailbox, op->cmd.guid, op->cmd.op,
			(unsigned long long)job->id, failure);
		/* killed for its answer to this operation: this operation's
		 * data is at fault and a retry would kill a writer again */
		if (job->refused)
			rep_set(&op->rep, PSEP_RS_NO, "NOPERM",
				"the writer's answer for this mailbox was refused");
		else
			rep_set(&op->rep, PSEP_RS_NO, "UNAVAILABLE", "writer unavailable");
		op_finish(op);
		return;
	}
	sup_repl_map(op->cmd.op, &m->u.repl_op_rep, &op->rep);
	if (m->u.repl_op_rep.err != 0)
		log_warn("user=%s mailbox=%s guid=%s op=%u failed: %s: %s", op->cmd.user,
			 op->cmd.mailbox, op->cmd.guid, op->cmd.op,
			 m->u.repl_op_rep.what, strerror(m->u.repl_op_rep.err));
	op->rep_fd = m->fd;
	m->fd = -1;
	if (psep_repl_op_is_event(op->cmd.op) && op->rep.effective &&
	    op->sup->set.n_replicas > 0) {
		op_forward(op);
		return;
	}
	op_finish(op);
}

static struct sup_job *
op_job_new(struct sup *sup, const struct policy_user *u,
	   const struct psep_repl_cmd *cmd, int memfd)
{
	struct sup_job *job = xcalloc(1, sizeof(*job));
	struct psep_repl_op_req *r = xcalloc(1, sizeof(*r));
	size_t i, n = u->ngroups < PSEP_MAX_GROUPS ? u->ngroups : PSEP_MAX_GROUPS;
	const char *why = NULL;

	r->uid = (uint32_t)u->uid;
	r->gid = (uint32_t)u->gid;
	r->ngroups = (uint32_t)n;
	for (i = 0; i < n; i++)
		r->groups[i] = (uint32_t)u->groups[i];
	xstrlcpy(r->mail_base, u->mail_base, sizeof(r->mail_base));
	xstrlcpy(r->mail_rel, u->mail_rel, sizeof(r->mail_rel));
	r->cmd = *cmd;
	/* a SAVE the master accepted is kept over quota unless the admin
	 * said otherwise; maildirsize is kept right either way */
	if (cmd->op == PSEP_REPL_SAVE && !sup->set.replication_quota_exceed &&
	    sup_quota_for(&sup->set, u, true, &r->quota, &why) < 0)
		log_warn("user=%s invalid quota rule (not enforced): %s", u->name, why);
	job->type = PSEP_REPL_OP_REQ;
	job->req = r;
	job->req_len = sizeof(*r);
	job->uid = u->uid;
	job->creds.uid = u->uid;
	job->creds.gid = u->gid;
	job->creds.ngroups = n;
	memcpy(job->creds.groups, u->groups, n * sizeof(gid_t));
	job->memfd = memfd;
	job->id = ++sup->next_id;
	return job;
}

void
sup_repl_run(struct sup *sup, const struct policy_user *u,
	     const struct psep_repl_cmd *cmd, int memfd, sup_repl_done_fn done,
	     void *arg)
{
	struct repl_op *op = xcalloc(1, sizeof(*op));
	struct sup_job *job;

	op->sup = sup;
	op->cmd = *cmd;
	op->body_fd = -1;
	op->rep_fd = -1;
	op->done = done;
	op->arg = arg;
	if (memfd >= 0 && cmd->op == PSEP_REPL_SAVE && sup->set.n_replicas > 0) {
		op->body_fd = fcntl(memfd, F_DUPFD_CLOEXEC, 3);
		if (op->body_fd < 0) {
			log_err("user=%s: dup of the body: %s", cmd->user, strerror(errno));
			rep_set(&op->rep, PSEP_RS_NO, "UNAVAILABLE", "out of resources");
			close(memfd);
			op_finish(op);
			return;
		}
	}
	job = op_job_new(sup, u, cmd, memfd);
	job->done = op_job_done;
	job->arg = op;
	sup_dispatch_submit(sup, job);
}

/* ---- requests from repld and repl-hook -------------------------------- */

static void
asker_reply(struct sup *sup, const struct psep_repl_rep *rep, int fd, void *arg)
{
	struct repl_asker *a = arg;

	(void)sup;
	if (!a->from->dead)
		(void)sup_child_send(a->from, PSEP_REPL_REP, a->req_id, rep,
				     sizeof(*rep), fd);
	if (fd >= 0)
		close(fd);
	sup_child_unref(&a->from);
	free(a);
}

static void
reply_now(struct sup_child *c, uint64_t id, enum psep_repl_status st,
	  const char *code, const char *text)
{
	struct psep_repl_rep rep;

	memset(&rep, 0, sizeof(rep));
	rep_set(&rep, st, code, text);
	(void)sup_child_send(c, PSEP_REPL_REP, id, &rep, sizeof(rep), -1);
}

/* Checks of §8 that do not need the mailbox: loop, origin and modseq
 * rules.  Returns true if a reply was sent. */
static bool
early_reply(struct sup_child *c, const struct psep_msg *m)
{
	const struct psep_repl_cmd *cmd = &m->u.repl_req.cmd;
	bool own = strcmp(cmd->origin, c->sup->server_id) == 0;
	bool stamped = cmd->op == PSEP_REPL_SAVE || cmd->op == PSEP_REPL_STORE ||
		       cmd->op == PSEP_REPL_EXPUNGE;

	if (!psep_repl_op_is_event(cmd->op))
		return false;
	if (cmd->peer[0] != '\0' && own) {
		reply_now(c, m->hdr.id, PSEP_RS_OK, "LOOP", "own event");
		return true;
	}
	if (cmd->peer[0] == '\0' && (!own || (stamped && cmd->modseq != 0))) {
		reply_now(c, m->hdr.id, PSEP_RS_BAD, "SYNTAX",
			  "local change needs own origin and modseq 0");
		return true;
	}
	if (cmd->peer[0] != '\0' && stamped && cmd->modseq == 0) {
		reply_now(c, m->hdr.id, PSEP_RS_BAD, "SYNTAX", "modseq 0 from a peer");
		return true;
	}
	return false;
}

void
sup_repl_request(struct sup_child *c, struct psep_msg *m)
{
	const struct psep_repl_cmd *cmd = &m->u.repl_req.cmd;
	struct policy_user u;
	struct repl_asker *a;
	const char *why = NULL;
	enum policy_lookup l;

	if (early_reply(c, m))
		return;
	if ((cmd->op == PSEP_REPL_CAPTURE || cmd->op == PSEP_REPL_CAPTURE_BOXES) &&
	    c->role != PSEP_ROLE_REPL_HOOK) {
		reply_now(c, m->hdr.id, PSEP_RS_BAD, "SYNTAX", "local command");
		return;
	}
	l = policy_userdb_lookup(c->sup->userdb, cmd->user, &u, &why);
	switch (l) {
	case POLICY_USER_FOUND:
		break;
	case POLICY_USER_UNKNOWN:
	case POLICY_USER_BADADDR:
		reply_now(c, m->hdr.id, PSEP_RS_NO, "NOUSER", "unknown user");
		return;
	case POLICY_USER_BADUID:
		reply_now(c, m->hdr.id, PSEP_RS_NO, "NOPERM", "user not allowed");
		return;
	case POLICY_USER_TEMPFAIL:
		reply_now(c, m->hdr.id, PSEP_RS_NO, "UNAVAILABLE", "userdb unavailable");
		return;
	}
	if (psep_repl_op_is_event(cmd->op) && c->sup->set.n_replicas > 0 &&
	    !sup_hook_expected(c->sup)) {
		reply_now(c, m->hdr.id, PSEP_RS_NO, "UNAVAILABLE",
			  "replication journal unavailable");
		return;
	}
	a = xcalloc(1, sizeof(*a));
	a->from = c;
	sup_child_ref(c);
	a->req_id = m->hdr.id;
	sup_repl_run(c->sup, &u, cmd, m->fd, asker_reply, a);
	m->fd = -1;
}

/* ---- watches of change capture (PSEP_WATCH_REQ from repl-hook) ----------- */

/* The repl-hook that asked, and its request id. */
struct watch_asker {
	struct sup_child *from;       /* referenced */
	uint64_t req_id;
	char user[PSEP_NAME_MAX];
};

static void
watch_reply(struct watch_asker *a, int32_t err, uint32_t count, int fd)
{
	struct psep_watch_rep rep = { .err = err, .count = count };

	if (!a->from->dead)
		(void)sup_child_send(a->from, PSEP_WATCH_REP, a->req_id, &rep,
				     sizeof(rep), fd);
	sup_child_unref(&a->from);
	free(a);
}

static void
watch_job_done(struct sup_job *job, struct psep_msg *m, const char *failure)
{
	struct watch_asker *a = job->arg;

	job->arg = NULL;
	if (m == NULL) {
		log_err("user=%s watches: %s", a->user, failure);
		watch_reply(a, EIO, 0, -1);
		return;
	}
	if (m->u.watch_rep.err != 0 && m->u.watch_rep.err != ENOSPC)
		log_warn("user=%s watches: %s", a->user, strerror(m->u.watch_rep.err));
	watch_reply(a, m->u.watch_rep.err, m->u.watch_rep.count, m->fd);
}

void
sup_repl_watch(struct sup_child *c, struct psep_msg *m)
{
	struct psep_watch_op_req *r;
	struct watch_asker *a;
	struct sup_job *job;
	struct policy_user u;
	const char *why = NULL;
	size_t i, n;

	a = xcalloc(1, sizeof(*a));
	a->from = c;
	sup_child_ref(c);
	a->req_id = m->hdr.id;
	xstrlcpy(a->user, m->u.watch_req.user, sizeof(a->user));
	switch (policy_userdb_lookup(c->sup->userdb, a->user, &u, &why)) {
	case POLICY_USER_FOUND:
		break;
	case POLICY_USER_UNKNOWN:
	case POLICY_USER_BADADDR:
	case POLICY_USER_BADUID:
		watch_reply(a, ENOENT, 0, -1);
		return;
	case POLICY_USER_TEMPFAIL:
		watch_reply(a, EAGAIN, 0, -1);
		return;
	}
	r = xcalloc(1, sizeof(*r));
	n = u.ngroups < PSEP_MAX_GROUPS ? u.ngroups : PSEP_MAX_GROUPS;
	r->uid = (uint32_t)u.uid;
	r->gid = (uint32_t)u.gid;
	r->ngroups = (uint32_t)n;
	for (i = 0; i < n; i++)
		r->groups[i] = (uint32_t)u.groups[i];
	xstrlcpy(r->mail_base, u.mail_base, sizeof(r->mail_base));
	xstrlcpy(r->mail_rel, u.mail_rel, sizeof(r->mail_rel));
	xstrlcpy(r->user, a->user, sizeof(r->user));
	job = xcalloc(1, sizeof(*job));
	job->type = PSEP_WATCH_OP_REQ;
	job->req = r;
	job->req_len = sizeof(*r);
	job->uid = u.uid;
	job->creds.uid = u.uid;
	job->creds.gid = u.gid;
	job->creds.ngroups = n;
	memcpy(job->creds.groups, u.groups, n * sizeof(gid_t));
	job->memfd = m->fd;           /* the inotify instance, passed on */
	m->fd = -1;
	job->id = ++c->sup->next_id;
	job->done = watch_job_done;
	job->arg = a;
	sup_dispatch_submit(c->sup, job);
}
