/* SPDX-License-Identifier: MIT */
/*
 * writer/loop.c - the synchronous writer loop: receive a validated
 * PSEP_WRITE_REQ, switch to the user's credentials, save durably, switch
 * back, answer PSEP_WRITE_REP with the facts (errno and step on failure).
 * With early_stamp, PSEP_WRITE_STAMP goes first, once the index holds the
 * save and before its fsyncs.  With a quota the message must fit the
 * user's maildirsize first (EDQUOT otherwise); every save is added to an
 * existing maildirsize (writer/quota.c).

 * After the reply, still as the user, the Maildir's tmp/ is swept when
 * due (writer/sweep.c); then the switch back.
 * PSEP_REPL_OP_REQ goes the same way through writer/repl.c, PSEP_QUOTA_REQ
 * through writer/quota.c.
 *
 * Runs in:  writer-seteuid and writer-child, under seccomp.
 * Trust:    the request was validated by psep_msg_recv (uid range, paths,
 *           sealed memfd of the announced size); the credential switch
 *           checks the uid range once more.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "policy/policy.h"
#include "privsep/privsep.h"
#include "storage/repl/repl.h"
#include "storage/storage.h"
#include "writer/writer_int.h"

/* One LMTP save as the writer runs it. */
struct save_job {
	const struct psep_write_req *r;
	const struct policy_settings *s;
	struct store_save_req *sr;
	struct store_target *t;
	struct store_save_result *res;
	int body_fd;
	bool in_inbox;          /* the folder was missing: saved into INBOX */
	bool duplicate;         /* within the duplicate window: not saved */
	char dup_guid[STORE_GUID_HEX + 1];
};

/* The save's facts as the supervisor gets them (WRITE_STAMP, WRITE_REP). */
static void
rep_fill(struct psep_write_rep *rep, const struct psep_write_req *r,
	 const struct store_save_result *res)
{
	rep->imap_uid = res->imap_uid;
	rep->size = res->size;
	rep->modseq = res->modseq;
	xstrlcpy(rep->guid, r->guid, sizeof(rep->guid));
	xstrlcpy(rep->filename, res->filename, sizeof(rep->filename));
}

/* With mailbox_create 0, a folder that does not exist means INBOX (a
 * missing Maildir too).  root is the Maildir root or -1. */
static void
pick_mailbox(const struct psep_write_req *r, int root, struct store_target *t,
	     bool *in_inbox)
{
	char dir[STORE_MAX_NAME];
	int fd;

	if (r->mailbox_create || strcmp(r->mailbox, "INBOX") == 0 ||
	    store_mailbox_dir(r->mailbox, dir, sizeof(dir)) < 0)
		return;
	fd = root >= 0 ? store_walk_step(root, dir, (uid_t)r->uid, false) : -1;
	if (fd >= 0) {
		close(fd);
		return;
	}
	if (root >= 0 && errno != ENOENT)
		return;   /* the save meets the same problem and says so */
	t->mailbox = "INBOX";
	*in_inbox = true;
}

struct stamp_ctx {
	int ipc;
	const struct psep_msg *m;
	const struct save_job *job;
};

#ifdef STOWD_TEST_HOOKS
static bool test_die_after_stamp;   /* PSEP_TEST_DIE_AFTER_STAMP */
static bool test_stall_after_stamp; /* PSEP_TEST_STALL_AFTER_STAMP */
static bool test_die_after_save;    /* PSEP_TEST_DIE_AFTER_SAVE */
#endif

/* store_save's early stamp: tell the supervisor before the fsyncs. */
static void
send_stamp(void *arg, const struct store_save_result *res)
{
	const struct stamp_ctx *sc = arg;
	struct psep_write_rep rep;

	memset(&rep, 0, sizeof(rep));
	rep_fill(&rep, &sc->m->u.write_req, res);
	rep.in_inbox = sc->job->in_inbox ? 1 : 0;
	if (psep_msg_send(sc->ipc, PSEP_WRITE_STAMP, sc->m->hdr.id, &rep, sizeof(rep),
			  -1) < 0)
		fatal("send WRITE_STAMP");
#ifdef STOWD_TEST_HOOKS
	if (test_die_after_stamp)
		_exit(1);   /* as if killed: the file is in tmp/, not synced */
	while (test_stall_after_stamp) {
		/* until killed, holding the tmp file (and its lock) */
		struct timespec ts = { .tv_sec = 1, .tv_nsec = 0 };

		nanosleep(&ts, NULL);
	}
#endif
}

/* The quota check before the save.  0 or -1 with errno and *what. */
static int
quota_check(const struct psep_write_req *r, int root, const char **what)
{
	struct store_quota q;

	if (!r->quota.on || !r->quota.enforce)
		return 0;
	if (writer_quota_read(root, &r->quota, &q, what) < 0)
		return -1;
	if (!store_quota_fits(&q, (uint64_t)r->prefix_len + r->body_size)) {
		errno = EDQUOT;
		*what = "quota";
		return -1;
	}
	return 0;
}

/* As the user: the mailbox (a missing folder may mean INBOX), the
 * duplicate window, the quota check, the save, the maildirsize line and
 * the window's record.  Returns 0 or -1 with errno and *what. */
static int
save_counted(struct save_job *j, const char **what)
{
	const struct psep_write_req *r = j->r;
	struct writer_dup_req dq = {
		.root_fd = -1, .uid = (uid_t)r->uid, .body_fd = j->body_fd,
		.body_size = r->body_size, .user = r->user,
		.window_secs = j->s->lmtp_duplicate_window / 1000,
	};
	struct writer_dup dup;
	int root, ret = -1, saved;

	writer_dup_init(&dup);
	root = store_root_open(r->mail_base, r->mail_rel, (uid_t)r->uid, r->quota.on);
	if (root < 0 && (r->quota.on || errno != ENOENT)) {
		*what = "open Maildir";
		return -1;
	}
	pick_mailbox(r, root, j->t, &j->in_inbox);
	if (root >= 0) {
		/* the save starts from this root: no second walk of the path */
		j->t->has_root = true;
		j->t->root_fd = root;
	}
	dq.root_fd = root;
	dq.mailbox = j->t->mailbox;
	if (writer_dup_check(&dup, &dq, j->dup_guid) == 1) {
		j->duplicate = true;
		ret = 0;
		goto out;
	}
	if (quota_check(r, root, what) < 0 || store_save(j->sr, j->res, what) < 0)
		goto out;
	if (root < 0)
		root = store_root_open(r->mail_base, r->mail_rel, (uid_t)r->uid, false);
	if (root >= 0)
		writer_quota_account(root, (int64_t)j->res->size, 1, r->user);
	dq.root_fd = root;
	writer_dup_record(&dup, &dq, r->guid);
	ret = 0;
out:
	saved = errno;
	writer_dup_done(&dup);
	j->t->has_root = false;
	if (root >= 0)
		close(root);
	errno = saved;
	return ret;
}

static void
write_one(int ipc, const struct psep_msg *m, const struct policy_settings *s,
	  const struct writer_creds_ops *ops)
{
	const struct psep_write_req *r = &m->u.write_req;
	struct store_target t = {
		.mail_base = r->mail_base, .mail_rel = r->mail_rel,
		.mailbox = r->mailbox, .uid = r->uid,
	};
	struct store_save_req sr = {
		.target = &t, .body_fd = m->fd, .body_size = r->body_size,
		.body_vsize = r->body_vsize, .prefix = r->prefix,
		.prefix_len = r->prefix_len, .guid = r->guid, .host = s->hostname,
		.flags = "", .origin = s->server_id,
	};
	struct store_save_result res;
	struct psep_write_rep rep;
	struct save_job j = {
		.r = r, .s = s, .sr = &sr, .t = &t, .res = &res, .body_fd = m->fd,
	};
	struct stamp_ctx sc = { .ipc = ipc, .m = m, .job = &j };
	const char *what = "switch to user";
	bool entered = false;

	if (r->early_stamp) {
		sr.stamped = send_stamp;
		sr.stamped_arg = &sc;
	}
	memset(&rep, 0, sizeof(rep));
	memset(&res, 0, sizeof(res));
	if (ops->enter(r->uid, r->gid, r->ngroups, r->groups) < 0) {
		rep.err = errno;
	} else {
		entered = true;
		if (save_counted(&j, &what) < 0)
			rep.err = errno ? errno : EIO;
	}
	/* The supervisor logs the outcome: it decides what it means. */
	if (rep.err != 0) {
		xstrlcpy(rep.what, what, sizeof(rep.what));
		rep.modseq = res.modseq;   /* after a stamp: its EXPUNGE */
	} else if (j.duplicate) {
		rep.duplicate = 1;
		xstrlcpy(rep.guid, j.dup_guid, sizeof(rep.guid));
		rep.in_inbox = j.in_inbox ? 1 : 0;
	} else {
		rep_fill(&rep, r, &res);
		rep.in_inbox = j.in_inbox ? 1 : 0;
	}
#ifdef STOWD_TEST_HOOKS
	if (test_die_after_save && rep.err == 0 && !j.duplicate)
		_exit(1);   /* as if killed: saved and synced, not answered */
#endif
	if (psep_msg_send(ipc, PSEP_WRITE_REP, m->hdr.id, &rep, sizeof(rep), -1) < 0)
		fatal("send WRITE_REP");
	if (entered) {
		writer_sweep_maybe(&(const struct writer_sweep_who){
			.uid = r->uid, .mail_base = r->mail_base, .mail_rel = r->mail_rel });
		ops->leave();
	}
}

#ifdef STOWD_TEST_HOOKS
static void
test_hook(int ipc, const struct psep_msg *m)
{
	struct psep_test_rep rep = { .result = 0 };
	struct timespec ts = { .tv_sec = 1, .tv_nsec = 0 };

	switch ((enum psep_test_op)m->u.test_req.op) {
	case PSEP_TEST_FORBIDDEN_SYSCALL:
		/* Not on any writer allow-list: the kernel kills us here. */
		rep.result = socket(AF_INET, SOCK_STREAM, 0);
		break;
	case PSEP_TEST_STALL:
		for (;;)
			nanosleep(&ts, NULL);
	case PSEP_TEST_BOGUS_STAMP: {
		/* well-formed, but for no request this writer holds */
		struct psep_write_rep stamp = { .imap_uid = 1, .modseq = 1, .size = 1 };

		xstrlcpy(stamp.guid, "00000000000000000000000000000001", sizeof(stamp.guid));
		xstrlcpy(stamp.filename, "bogus", sizeof(stamp.filename));
		(void)psep_msg_send(ipc, PSEP_WRITE_STAMP, m->hdr.id, &stamp,
				    sizeof(stamp), -1);
		break;
	}
	case PSEP_TEST_DIE_AFTER_STAMP:
		test_die_after_stamp = true;
		break;
	case PSEP_TEST_STALL_AFTER_STAMP:
		test_stall_after_stamp = true;
		break;
	case PSEP_TEST_DIE_AFTER_SAVE:
		test_die_after_save = true;
		break;
	}
	(void)psep_msg_send(ipc, PSEP_TEST_REP, m->hdr.id, &rep, sizeof(rep), -1);
}
#endif

int
writer_loop(int ipc, enum psep_role role, const struct policy_settings *s,
	    const struct writer_creds_ops *ops)
{
	struct psep_msg m;
	int rc;

	if (psep_child_hello(ipc, role, 0) < 0)
		return 1;
	log_init(psep_role_name(role), ipc);
	if (s->index_lock_timeout != 0)
		store_index_set_lock_timeout(s->index_lock_timeout > UINT32_MAX ?
					     UINT32_MAX : (unsigned int)s->index_lock_timeout);
	store_repl_set_limits(s->index_max_size, s->index_max_messages);
	store_side_host_set(s->hostname);   /* no uname() in the sandbox */
#ifdef STOWD_TEST_HOOKS
	/* STOWD_TEST_CKPT set: a checkpoint after every change and no kept
	 * states, so every replication operation loads its mailbox from a
	 * checkpoint (a capture of names: a partial state) */
	if (getenv("STOWD_TEST_CKPT") != NULL) {
		store_repl_cache_limit(0, 0);
		store_repl_ckpt_every(0);
	}
#endif
	for (;;) {
		if ((rc = psep_child_next(ipc, &m)) <= 0)
			return rc < 0;
		switch (m.hdr.type) {
		case PSEP_WRITE_REQ:
			write_one(ipc, &m, s, ops);
			break;
		case PSEP_REPL_OP_REQ:
			writer_repl_one(ipc, &m, s, ops);
			break;
		case PSEP_QUOTA_REQ:
			writer_quota_one(ipc, &m, ops);
			break;
		case PSEP_WATCH_OP_REQ:
			writer_watch_one(ipc, &m, s, ops);
			break;
		case PSEP_SHUTDOWN:
			psep_msg_clear(&m);
			return 0;
#ifdef STOWD_TEST_HOOKS
		case PSEP_TEST_REQ:
			test_hook(ipc, &m);
			break;
#endif
		default:
			log_err("unexpected %s from supervisor", psep_type_name(m.hdr.type));
			psep_msg_clear(&m);
			return 1;
		}
		psep_msg_clear(&m);
	}
}
