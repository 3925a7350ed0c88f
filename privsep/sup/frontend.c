/* SPDX-License-Identifier: MIT */
/*
 * privsep/sup/frontend.c - the LMTP front-end pool: hands client sockets
 * to lmtpd processes, answers their recipient look-ups, turns their
 * deliveries into writer jobs and the writers' results into replies.
 *
 * Runs in:  the supervisor.
 * Trust:    addresses come from lmtpd (untrusted); they are resolved here
 *           with the userdb and the uid rules, again at delivery time.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "privsep/sup/sup_int.h"
#include "lmtpd/lmtpd.h"
#include "storage/storage.h"

struct sup_frontend {
	unsigned sessions;
};

/* One recipient delivery waiting for its writer. */
struct fe_delivery {
	struct sup_child *fe;     /* referenced */
	uint64_t req_id;          /* lmtpd's request id */
	char session[PSEP_SESSION_MAX];
	char address[PSEP_ADDR_MAX];
	char user[PSEP_NAME_MAX];
};

static void fe_ready(struct sup_child *c);
static void fe_message(struct sup_child *c, struct psep_msg *m);
static void fe_exited(struct sup_child *c, int wstatus);

static const struct sup_child_ops fe_ops = {
	.ready = fe_ready,
	.message = fe_message,
	.exited = fe_exited,
};

static void
fe_spawn(struct sup *sup)
{
	struct psep_spawn sp = {
		.role = PSEP_ROLE_LMTPD,
		.creds = sup->run_creds,
		.main = lmtp_main,
		.arg = &sup->set,
	};
	struct sup_frontend *fe = xcalloc(1, sizeof(*fe));

	if (sup_child_spawn(sup, &sp, &fe_ops, fe) == NULL)
		free(fe);
}

void
sup_frontends_start(struct sup *sup)
{
	unsigned n = sup_children_count(sup, PSEP_ROLE_LMTPD, true);

	for (; n < sup->set.lmtp_processes; n++)
		fe_spawn(sup);
}

void
sup_frontends_retire(struct sup *sup)
{
	struct sup_child *c;

	TAILQ_FOREACH(c, &sup->children, link)
		if (c->role == PSEP_ROLE_LMTPD)
			sup_child_retire(c);
}

/* The ready, current front-end with the fewest sessions, or NULL. */
static struct sup_child *
fe_pick(struct sup *sup)
{
	struct sup_child *c, *best = NULL;

	TAILQ_FOREACH(c, &sup->children, link) {
		struct sup_frontend *fe = c->owner;

		if (c->role != PSEP_ROLE_LMTPD || c->retired ||
		    c->state != PSEP_STATE_READY)
			continue;
		if (best == NULL ||
		    fe->sessions < ((struct sup_frontend *)best->owner)->sessions)
			best = c;
	}
	return best;
}

static int
fe_send_client(struct sup_child *c, int fd, const char *listener)
{
	struct psep_client_fd msg;

	memset(&msg, 0, sizeof(msg));
	xstrlcpy(msg.listener, listener, sizeof(msg.listener));
	if (sup_child_send(c, PSEP_CLIENT_FD, 0, &msg, sizeof(msg), fd) < 0)
		return -1;
	((struct sup_frontend *)c->owner)->sessions++;
	return 0;
}

static void
fe_flush_pending(struct sup *sup)
{
	struct sup_pending *p;
	struct sup_child *c;

	while ((p = TAILQ_FIRST(&sup->pending)) != NULL &&
	       (c = fe_pick(sup)) != NULL) {
		TAILQ_REMOVE(&sup->pending, p, link);
		sup->n_pending--;
		(void)fe_send_client(c, p->fd, p->listener);
		close(p->fd);
		free(p);
	}
}

void
sup_frontends_drop_pending(struct sup *sup)
{
	struct sup_pending *p;

	while ((p = TAILQ_FIRST(&sup->pending)) != NULL) {
		TAILQ_REMOVE(&sup->pending, p, link);
		close(p->fd);
		free(p);
	}
	sup->n_pending = 0;
}

static void
fe_ready(struct sup_child *c)
{
	fe_flush_pending(c->sup);
	sup_check_ready(c->sup);
}

void
sup_frontends_hand(struct sup *sup, int fd, const char *listener)
{
	struct sup_child *c = fe_pick(sup);
	struct sup_pending *p;

	if (c != NULL) {
		(void)fe_send_client(c, fd, listener);
		close(fd);
		return;
	}
	if (sup->n_pending >= SUP_MAX_PENDING) {
		log_warn("no LMTP front-end ready and %u clients waiting: closing "
			 "connection listener=%s", sup->n_pending, listener);
		close(fd);
		return;
	}
	p = xcalloc(1, sizeof(*p));
	p->fd = fd;
	xstrlcpy(p->listener, listener, sizeof(p->listener));
	TAILQ_INSERT_TAIL(&sup->pending, p, link);
	sup->n_pending++;
}

static void
fe_rcpt(struct sup_child *c, const struct psep_msg *m)
{
	struct psep_rcpt_rep rep;
	struct policy_user user;
	const char *why = NULL;
	enum policy_lookup l;

	memset(&rep, 0, sizeof(rep));
	l = policy_userdb_lookup(c->sup->userdb, m->u.rcpt_req.address, &user, &why);
	policy_result_from_lookup(&rep.result, l, why);
	if (l != POLICY_USER_FOUND)
		log_info("session=%s rcpt=<%s> rejected: %s", m->u.rcpt_req.session,
			 m->u.rcpt_req.address, why ? why : rep.result.text);
	(void)sup_child_send(c, PSEP_RCPT_REP, m->hdr.id, &rep, sizeof(rep), -1);
}

static void
fe_reply(struct sup_child *fe, uint64_t id, const struct dlv_result *r,
	 const char *guid)
{
	struct psep_deliver_rep rep;

	memset(&rep, 0, sizeof(rep));
	rep.result = *r;
	if (guid != NULL)
		xstrlcpy(rep.guid, guid, sizeof(rep.guid));
	(void)sup_child_send(fe, PSEP_DELIVER_REP, id, &rep, sizeof(rep), -1);
}

static void
fe_job_done(struct sup_job *job, const struct psep_write_rep *rep,
	    const char *failure)
{
	struct fe_delivery *d = job->arg;
	struct dlv_result r;

	if (rep == NULL) {
		policy_result_set(&r, DLV_TEMPFAIL, 451, "4.3.0",
				  "internal error: %s (id=%016llx)", failure,
				  (unsigned long long)job->id);
		log_err("session=%s rcpt=<%s> user=%s uid=%u guid=%s failed: %s",
			d->session, d->address, d->user, (unsigned)job->uid,
			job->req->guid, failure);
	} else if (rep->err != 0) {
		policy_result_from_errno(&r, rep->err, rep->what);
		log_warn("session=%s rcpt=<%s> user=%s uid=%u guid=%s failed: %u %s",
			 d->session, d->address, d->user, (unsigned)job->uid,
			 job->req->guid, r.code, r.text);
	} else {
		policy_result_set(&r, DLV_OK, 250, "2.0.0", "Saved");
		log_info("session=%s rcpt=<%s> user=%s guid=%s imap_uid=%u saved file=%s",
			 d->session, d->address, d->user, rep->guid, rep->imap_uid,
			 rep->filename);
	}
	if (!d->fe->dead)
		fe_reply(d->fe, d->req_id, &r, rep != NULL && rep->err == 0 ?
			 rep->guid : NULL);
	sup_child_unref(&d->fe);
	free(d);
	job->arg = NULL;
}

static struct sup_job *
job_new(struct sup *sup, const struct psep_deliver_req *dr,
	const struct policy_user *u, int memfd)
{
	struct sup_job *job = xcalloc(1, sizeof(*job));
	struct psep_write_req *w;
	size_t i;

	job->req_len = sizeof(*w) + dr->prefix_len;
	w = job->req = xcalloc(1, job->req_len);
	w->uid = (uint32_t)u->uid;
	w->gid = (uint32_t)u->gid;
	w->ngroups = (uint32_t)u->ngroups;
	for (i = 0; i < u->ngroups && i < PSEP_MAX_GROUPS; i++)
		w->groups[i] = (uint32_t)u->groups[i];
	w->prefix_len = dr->prefix_len;
	w->body_size = dr->body_size;
	w->body_vsize = dr->body_vsize;
	w->received_time = (uint64_t)time(NULL);
	memcpy(w->session, dr->session, sizeof(w->session));
	xstrlcpy(w->user, u->name, sizeof(w->user));
	xstrlcpy(w->mail_base, u->mail_base, sizeof(w->mail_base));
	xstrlcpy(w->mail_rel, u->mail_rel, sizeof(w->mail_rel));
	xstrlcpy(w->mailbox, "INBOX", sizeof(w->mailbox));
	if (store_guid_new(sup->server_id, w->guid) < 0)
		fatal("store_guid_new");
	memcpy(w->prefix, dr->prefix, dr->prefix_len);
	job->uid = u->uid;
	job->memfd = memfd;
	job->id = ++sup->next_id;
	return job;
}

static void
fe_deliver(struct sup_child *c, struct psep_msg *m)
{
	const struct psep_deliver_req *dr = &m->u.deliver_req;
	struct policy_user user;
	struct fe_delivery *d;
	struct sup_job *job;
	struct dlv_result r;
	const char *why = NULL;
	enum policy_lookup l;

	l = policy_userdb_lookup(c->sup->userdb, dr->address, &user, &why);
	if (l != POLICY_USER_FOUND) {
		policy_result_from_lookup(&r, l, why);
		fe_reply(c, m->hdr.id, &r, NULL);
		return;
	}
	d = xcalloc(1, sizeof(*d));
	d->fe = c;
	sup_child_ref(c);
	d->req_id = m->hdr.id;
	memcpy(d->session, dr->session, sizeof(d->session));
	memcpy(d->address, dr->address, sizeof(d->address));
	xstrlcpy(d->user, user.name, sizeof(d->user));
	job = job_new(c->sup, dr, &user, m->fd);
	m->fd = -1;
	job->done = fe_job_done;
	job->arg = d;
	sup_dispatch_submit(c->sup, job);
}

static void
fe_message(struct sup_child *c, struct psep_msg *m)
{
	struct sup_frontend *fe = c->owner;

	switch ((enum psep_type)m->hdr.type) {
	case PSEP_RCPT_REQ:
		fe_rcpt(c, m);
		break;
	case PSEP_DELIVER_REQ:
		fe_deliver(c, m);
		break;
	case PSEP_SESSION_END:
		if (fe->sessions > 0)
			fe->sessions--;
		break;
	case PSEP_HELLO_REQ:
	case PSEP_HELLO_REP:
	case PSEP_LOG:
	case PSEP_CLIENT_FD:
	case PSEP_SHUTDOWN:
	case PSEP_RCPT_REP:
	case PSEP_DELIVER_REP:
	case PSEP_WRITE_REQ:
	case PSEP_WRITE_REP:
	case PSEP_TEST_REQ:
	case PSEP_TEST_REP:
	case PSEP_REPL_REQ:
	case PSEP_REPL_REP:
	case PSEP_REPL_OP_REQ:
	case PSEP_REPL_OP_REP:
	case PSEP_EVENT_REQ:
	case PSEP_EVENT_REP:
	case PSEP_USERS_REQ:
	case PSEP_USERS_REP:
		sup_child_kill(c, "unexpected message type");
		break;
	}
}

static void
fe_exited(struct sup_child *c, int wstatus)
{
	(void)wstatus;
	free(c->owner);
	c->owner = NULL;
	sup_child_gone(c);
}
