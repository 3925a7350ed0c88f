/* SPDX-License-Identifier: MIT */
/*
 * writer/loop.c - the synchronous writer loop: receive a validated
 * PSEP_WRITE_REQ, switch to the user's credentials, save durably, switch
 * back, answer PSEP_WRITE_REP with the facts (errno and step on failure).
 * With early_stamp, PSEP_WRITE_STAMP goes first, once the index holds the
 * save and before its fsyncs.  After the reply, still as the user, the
 * Maildir's tmp/ is swept when due (writer/sweep.c); then the switch back.
 * PSEP_REPL_OP_REQ goes the same way through writer/repl.c.
 *
 * Runs in:  writer-seteuid and writer-child, under seccomp.
 * Trust:    the request was validated by psep_msg_recv (uid range, paths,
 *           sealed memfd of the announced size); the credential switch
 *           checks the uid range once more.
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "policy/policy.h"
#include "privsep/privsep.h"
#include "storage/storage.h"
#include "writer/writer_int.h"

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

struct stamp_ctx {
	int ipc;
	const struct psep_msg *m;
};

#ifdef STOWD_TEST_HOOKS
static bool test_die_after_stamp;   /* PSEP_TEST_DIE_AFTER_STAMP */
static bool test_stall_after_stamp; /* PSEP_TEST_STALL_AFTER_STAMP */
#endif

/* store_save's early stamp: tell the supervisor before the fsyncs. */
static void
send_stamp(void *arg, const struct store_save_result *res)
{
	const struct stamp_ctx *sc = arg;
	struct psep_write_rep rep;

	memset(&rep, 0, sizeof(rep));
	rep_fill(&rep, &sc->m->u.write_req, res);
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
	struct stamp_ctx sc = { .ipc = ipc, .m = m };
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
		if (store_save(&sr, &res, &what) < 0)
			rep.err = errno ? errno : EIO;
	}
	/* The supervisor logs the outcome: it decides what it means. */
	if (rep.err != 0) {
		xstrlcpy(rep.what, what, sizeof(rep.what));
		rep.modseq = res.modseq;   /* after a stamp: its EXPUNGE */
	} else {
		rep_fill(&rep, r, &res);
	}
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
	}
	(void)psep_msg_send(ipc, PSEP_TEST_REP, m->hdr.id, &rep, sizeof(rep), -1);
}
#endif

int
writer_loop(int ipc, enum psep_role role, const struct policy_settings *s,
	    const struct writer_creds_ops *ops)
{
	struct psep_msg m;
	const char *why;

	if (psep_child_hello(ipc, role, 0) < 0)
		return 1;
	log_init(psep_role_name(role), ipc);
	for (;;) {
		if (psep_msg_recv(ipc, PSEP_ROLE_SUPERVISOR, PSEP_STATE_READY, &m,
				  &why) < 0) {
			if (errno == ECONNRESET)
				return 0;
			log_err("bad request from supervisor: %s", why);
			return 1;
		}
		switch (m.hdr.type) {
		case PSEP_WRITE_REQ:
			write_one(ipc, &m, s, ops);
			break;
		case PSEP_REPL_OP_REQ:
			writer_repl_one(ipc, &m, s, ops);
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
