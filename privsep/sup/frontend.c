/* SPDX-License-Identifier: MIT */
/*
 * privsep/sup/frontend.c - the LMTP front-end pool: hands client sockets
 * to lmtpd processes (or queues them in pending.c while none is ready),
 * answers their recipient look-ups, turns their
 * deliveries into writer jobs and the writers' results into replies.
 * With replicas configured a saved message is handed to repl-hook
 * (PSEP_EVENT_REQ) and the reply waits for it: journaled (and acked by
 * replication_sync_acks replicas), or replication_on_timeout decides.
 *
 * Runs in:  the supervisor.
 * Trust:    addresses come from lmtpd (untrusted); they are resolved here
 *           with the userdb and the uid rules, again at delivery time.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include "privsep/sup/sup_int.h"
#include "storage/storage.h"

struct sup_frontend {
	unsigned sessions;
};

/* One recipient delivery waiting for its writer (and, with replicas, for
 * repl-hook). */
struct fe_delivery {
	struct sup *sup;
	struct sup_child *fe;     /* referenced */
	uint64_t req_id;          /* lmtpd's request id */
	char session[PSEP_SESSION_MAX];
	char address[PSEP_ADDR_MAX];
	char user[PSEP_NAME_MAX];
	char guid[PSEP_GUID_MAX];
	char mailbox[PSEP_NAME_MAX]; /* where it goes ("INBOX" after the
				      * writer's in_inbox) */
	/* With replicas the event leaves on the writer's early stamp and runs
	 * while the writer syncs; the reply waits for both outcomes. */
	bool ev_early;            /* the event went out on the stamp */
	bool ev_done;             /* repl-hook answered it (ev_st, ev_acks) */
	enum psep_event_status ev_st;
	uint32_t ev_acks;
	bool wr_done;             /* the writer answered, or its job failed */
	bool wr_failed;           /* ... without saving: wr_result */
	uint64_t undo_modseq;     /* ... and nothing is left: the EXPUNGE that
				   * undid the stamp here goes to the replicas */
	bool wr_dead;             /* ... because its writer died holding it:
				   * the state of the save is unknown */
	struct dlv_result wr_result;
	struct timespec t0;       /* DELIVER_REQ received */
	uint64_t size;            /* body octets */
	char msgid[PSEP_MSGID_MAX];
	char job_guid[PSEP_GUID_MAX]; /* the GUID the job saves under */
	uint64_t save_modseq;     /* the stamp of the SAVE event (ev_early) */
	unsigned tomb_tries;      /* tombstone jobs run for it (fe_tombstone) */
	uint32_t imap_uid;        /* saved: for the delivery line */
	char file[PSEP_NAME_MAX]; /* saved: base name in new/, or "" */
};

#define FE_TOMB_TRIES 3           /* a tombstone whose writer dies is retried */

static void fe_ready(struct sup_child *c);
static void fe_message(struct sup_child *c, struct psep_msg *m);
static void fe_exited(struct sup_child *c, int wstatus);

static const struct sup_child_ops fe_ops = {
	.ready = fe_ready,
	.message = fe_message,
	.exited = fe_exited,
};

/*
 * With lmtp_tls, open the certificate and key as root for the new
 * front-end: they stay open in it only (its spawn keeps them; every other
 * child's closes them), it parses them after its privilege drop, and the
 * supervisor never reads them.  A reload spawns new front-ends, so new
 * files take effect then.  fds[0..2) or -1.
 */
static void
fe_tls_open(const struct policy_settings *s, int fds[2])
{
	const char *paths[2] = { s->lmtp_tls_cert, s->lmtp_tls_key };
	static bool preinit;
	int i;

	fds[0] = fds[1] = -1;
	if (s->lmtp_tls == POLICY_TLS_NO)
		return;
	if (!preinit) {
		/* OpenSSL's config, strings and providers are loaded here, before
		 * the fork: lmtpd's sandbox opens no file */
		SSL_CTX *ctx;

		OPENSSL_init_ssl(OPENSSL_INIT_LOAD_CONFIG | OPENSSL_INIT_LOAD_SSL_STRINGS |
				 OPENSSL_INIT_LOAD_CRYPTO_STRINGS, NULL);
		ctx = SSL_CTX_new(TLS_server_method());
		SSL_CTX_free(ctx);
		preinit = true;
	}
	for (i = 0; i < 2; i++) {
		fds[i] = open(paths[i], O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
		if (fds[i] < 0)
			log_err("lmtp_tls_%s %s: %s", i == 0 ? "cert" : "key", paths[i],
				strerror(errno));
	}
}

static void
fe_spawn(struct sup *sup)
{
	struct psep_spawn sp = {
		.role = PSEP_ROLE_LMTPD,
		.creds = sup->run_creds,
	};
	struct sup_frontend *fe = xcalloc(1, sizeof(*fe));
	int fds[2];

	fe_tls_open(&sup->set, fds);
	if (fds[0] >= 0 && fds[1] >= 0) {
		sp.keep_fds = fds;
		sp.n_keep_fds = 2;
	}
	if (sup_child_spawn(sup, &sp, &fe_ops, fe) == NULL)
		free(fe);
	for (int i = 0; i < 2; i++)
		if (fds[i] >= 0)
			close(fds[i]);
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
	if (sup_client_send(c, fd, listener) < 0)
		return -1;
	((struct sup_frontend *)c->owner)->sessions++;
	return 0;
}

static void
fe_flush_pending(struct sup *sup)
{
	char listener[SUP_LISTENER_MAX];
	struct sup_child *c;
	int fd;

	while ((c = fe_pick(sup)) != NULL &&
	       (fd = sup_pending_take(&sup->pending, &sup->n_pending, listener)) >= 0) {
		(void)fe_send_client(c, fd, listener);
		close(fd);
	}
}

void
sup_frontends_drop_pending(struct sup *sup)
{
	sup_pending_drop(&sup->pending, &sup->n_pending);
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

	if (c == NULL) {
		sup_pending_push(&sup->pending, &sup->n_pending, fd, listener, "LMTP");
		return;
	}
	(void)fe_send_client(c, fd, listener);
	close(fd);
}

void
sup_frontends_hand_metrics(struct sup *sup, int fd, const char *listener)
{
	struct sup_child *c = fe_pick(sup);
	struct psep_client_fd msg;

	memset(&msg, 0, sizeof(msg));
	xstrlcpy(msg.listener, listener, sizeof(msg.listener));
	if (c == NULL)
		log_warn("metrics client on %s: no front-end ready, closed", listener);
	else
		(void)sup_child_send(c, PSEP_METRICS_CLIENT, 0, &msg, sizeof(msg), fd);
	close(fd);
}

/* A RCPT waiting for its quota check (lmtp_rcpt_check_quota). */
struct fe_rcpt_wait {
	struct sup *sup;
	struct sup_child *fe;     /* referenced */
	uint64_t req_id;
	char session[PSEP_SESSION_MAX];
	char address[PSEP_ADDR_MAX];
};

static void
fe_rcpt_quota_done(enum sup_quota_verdict v, void *arg)
{
	struct fe_rcpt_wait *w = arg;
	struct psep_rcpt_rep rep;

	memset(&rep, 0, sizeof(rep));
	if (v == SUP_QUOTA_FULL) {
		policy_result_quota(&rep.result, &w->sup->set);
		log_info("session=%s rcpt=<%s> rejected: over quota", w->session,
			 w->address);
	} else {
		/* unknown: the save checks again with the real size */
		policy_result_from_lookup(&rep.result, POLICY_USER_FOUND, NULL);
	}
	if (!w->fe->dead)
		(void)sup_child_send(w->fe, PSEP_RCPT_REP, w->req_id, &rep,
				     sizeof(rep), -1);
	sup_child_unref(&w->fe);
	free(w);
}

/* With lmtp_rcpt_check_quota and a quota for u: ask a writer.  True if
 * the reply is left to the check. */
static bool
fe_rcpt_quota(struct sup_child *c, const struct psep_msg *m,
	      const struct policy_user *u)
{
	struct fe_rcpt_wait *w;
	struct psep_quota q;
	const char *why = NULL;

	if (!c->sup->set.lmtp_rcpt_check_quota ||
	    sup_quota_for(&c->sup->set, u, true, &q, &why) < 0 || !q.on)
		return false;
	w = xcalloc(1, sizeof(*w));
	w->sup = c->sup;
	w->fe = c;
	sup_child_ref(c);
	w->req_id = m->hdr.id;
	memcpy(w->session, m->u.rcpt_req.session, sizeof(w->session));
	memcpy(w->address, m->u.rcpt_req.address, sizeof(w->address));
	sup_quota_check(c->sup, u, &q, 0, fe_rcpt_quota_done, w);
	return true;
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
	if (l == POLICY_USER_FOUND && fe_rcpt_quota(c, m, &user))
		return;
	policy_result_from_lookup(&rep.result, l, why);
	if (l != POLICY_USER_FOUND) {
		log_info("session=%s rcpt=<%s> rejected: %s", m->u.rcpt_req.session,
			 m->u.rcpt_req.address, why ? why : rep.result.text);
		c->sup->ctr.deliveries[rep.result.code < 500 ? PSEP_OUT_TEMP_USERDB :
				       PSEP_OUT_PERM_NOUSER]++;
	}
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

/* Answer lmtpd and free d. */
static void
fe_finish(struct fe_delivery *d, const struct dlv_result *r, const char *guid)
{
	struct timespec now;
	char uid[16] = "";
	uint64_t us;

	clock_gettime(CLOCK_MONOTONIC, &now);
	us = (uint64_t)((now.tv_sec - d->t0.tv_sec) * 1000000 +
			(now.tv_nsec - d->t0.tv_nsec) / 1000);
	sup_stats_delivery(d->sup, r, us, d->size);
	sup_stats_note_delivery(d->sup, d->user, guid, r->code);
	if (d->file[0] != '\0')
		snprintf(uid, sizeof(uid), "%u", (unsigned)d->imap_uid);
	/* The one delivery line (Dovecot-like fields, key=value); a saved
	 * message's IMAP uid and file name follow its GUID. */
	log_info("delivery session=%s outcome=%s code=%u status=%s user=%s mailbox=%s "
		 "guid=%s%s%s%s%s msgid=%s size=%llu time=%.3fs rcpt=<%s>%s%s",
		 d->session, r->status == DLV_OK ? "ok" : r->status == DLV_TEMPFAIL ?
		 "tempfail" : "permfail", r->code, r->enhanced, d->user,
		 d->mailbox[0] != '\0' ? d->mailbox : "INBOX",
		 guid != NULL && guid[0] != '\0' ? guid : "-",
		 uid[0] != '\0' ? " imap_uid=" : "", uid,
		 uid[0] != '\0' ? " file=" : "", d->file,
		 d->msgid[0] != '\0' ? d->msgid : "-", (unsigned long long)d->size,
		 (double)us / 1e6, d->address, r->status == DLV_OK ? "" : " reason=",
		 r->status == DLV_OK ? "" : r->text);
	if (!d->fe->dead)
		fe_reply(d->fe, d->req_id, r, guid);
	sup_child_unref(&d->fe);
	free(d);
}

static void fe_tombstone(struct fe_delivery *d, const struct dlv_result *r);

static void
fe_saved(struct fe_delivery *d)
{
	struct dlv_result r;

	if (d->fe->dead) {
		/* Nobody can tell the MTA: it will retry, so this copy must
		 * go (everywhere) or the retry makes a second one. */
		log_warn("session=%s rcpt=<%s> user=%s guid=%s saved, but its "
			 "front-end is gone: expunging it again", d->session,
			 d->address, d->user, d->guid);
		policy_result_set(&r, DLV_TEMPFAIL, 451, "4.3.0",
				  "front-end gone, try again later");
		fe_tombstone(d, &r);
		return;
	}
	policy_result_set(&r, DLV_OK, 250, "2.0.0", "Saved");
	fe_finish(d, &r, d->guid);
}

/* The local copy of a delivery whose replication timed out is gone (or
 * could not be removed): the MTA tries again later. */
static void
fe_expunge_done(struct sup *sup, const struct psep_repl_rep *rep, int fd, void *arg)
{
	struct fe_delivery *d = arg;
	struct dlv_result r;

	(void)sup;
	if (fd >= 0)
		close(fd);
	if (rep->status != PSEP_RS_OK)
		log_err("session=%s rcpt=<%s> user=%s guid=%s replication timeout: "
			"removing the local copy failed: %s %s", d->session, d->address,
			d->user, d->guid, rep->code, rep->text);
	policy_result_set(&r, DLV_TEMPFAIL, 451, "4.4.1",
			  "replication timeout, try again later");
	fe_finish(d, &r, NULL);
}

static void fe_tombstone_run(struct fe_delivery *d);
static void fe_undo_done(struct sup *sup, enum psep_event_status st, uint32_t acks,
			 void *arg);

/* Journal, behind the SAVE of d, the EXPUNGE (stamp modseq) that undid it
 * here. */
static void
fe_undo_send(struct fe_delivery *d, uint64_t modseq)
{
	struct psep_repl_cmd cmd;

	memset(&cmd, 0, sizeof(cmd));
	cmd.op = PSEP_REPL_EXPUNGE;
	cmd.modseq = modseq;
	xstrlcpy(cmd.origin, d->sup->server_id, sizeof(cmd.origin));
	xstrlcpy(cmd.user, d->user, sizeof(cmd.user));
	xstrlcpy(cmd.mailbox, d->mailbox, sizeof(cmd.mailbox));
	xstrlcpy(cmd.guid, d->job_guid, sizeof(cmd.guid));
	if (sup_event_send(d->sup, &cmd, NULL, 0, -1, 0, 0, fe_undo_done, NULL) < 0)
		fe_undo_done(d->sup, PSEP_EV_FAILED, 0, NULL);
}

static void
fe_tombstone_done(struct sup *sup, const struct psep_repl_rep *rep, int fd, void *arg)
{
	struct fe_delivery *d = arg;

	(void)sup;
	if (fd >= 0)
		close(fd);
	/* a +detail folder that does not exist: the writer (with no stamp
	 * to say so) put the message into INBOX; expunge it there */
	if (rep->status == PSEP_RS_OK && strcmp(rep->code, "NONEXISTENT") == 0 &&
	    strcmp(d->mailbox, "INBOX") != 0) {
		xstrlcpy(d->mailbox, "INBOX", sizeof(d->mailbox));
		d->tomb_tries = 0;
		fe_tombstone_run(d);
		return;
	}
	if (rep->status != PSEP_RS_OK && d->tomb_tries < FE_TOMB_TRIES) {
		fe_tombstone_run(d);
		return;
	}
	if (rep->status != PSEP_RS_OK)
		log_err("session=%s rcpt=<%s> user=%s guid=%s expunging an "
			"unanswered save failed: %s %s; the next sync of the mailbox "
			"decides", d->session, d->address, d->user, d->job_guid,
			rep->code, rep->text);
	else
		log_info("session=%s rcpt=<%s> user=%s guid=%s unanswered save "
			 "expunged%s", d->session, d->address, d->user, d->job_guid,
			 rep->effective ? "" : " (already)");
	/* Tombstoned here already (a reconciliation found the writer gone
	 * first): that EXPUNGE was not journaled, but the SAVE was; the
	 * replicas get one behind it, with the SAVE's stamp. */
	if (rep->status == PSEP_RS_OK && !rep->effective && d->ev_early)
		fe_undo_send(d, d->save_modseq);
	fe_finish(d, &d->wr_result, NULL);
}

static void
fe_tombstone_run(struct fe_delivery *d)
{
	struct psep_repl_cmd cmd;
	struct policy_user u;
	const char *why = NULL;

	d->tomb_tries++;
	if (policy_userdb_lookup(d->sup->userdb, d->user, &u, &why) != POLICY_USER_FOUND) {
		struct psep_repl_rep rep = { .status = PSEP_RS_NO };

		d->tomb_tries = FE_TOMB_TRIES;
		xstrlcpy(rep.text, why ? why : "user lookup failed", sizeof(rep.text));
		fe_tombstone_done(d->sup, &rep, -1, d);
		return;
	}
	memset(&cmd, 0, sizeof(cmd));
	cmd.op = PSEP_REPL_EXPUNGE;
	xstrlcpy(cmd.origin, d->sup->server_id, sizeof(cmd.origin));
	xstrlcpy(cmd.user, u.name, sizeof(cmd.user));
	xstrlcpy(cmd.mailbox, d->mailbox, sizeof(cmd.mailbox));
	xstrlcpy(cmd.guid, d->job_guid, sizeof(cmd.guid));
	sup_repl_run(d->sup, &u, &cmd, -1, fe_tombstone_done, d);
}

/*
 * A save that will not be answered 250 (its writer died holding it, or
 * its front-end is gone) and whose state here is unknown: tombstone its
 * GUID (the file removed from new/, cur/ or tmp/ if it is there) and
 * journal that EXPUNGE for the replicas, so that no copy survives
 * anywhere and the MTA's retry leaves exactly one.  Then answer r.
 */
static void
fe_tombstone(struct fe_delivery *d, const struct dlv_result *r)
{
	d->wr_result = *r;
	fe_tombstone_run(d);
}

static void
fe_undo_done(struct sup *sup, enum psep_event_status st, uint32_t acks, void *arg)
{
	(void)sup;
	(void)acks;
	(void)arg;
	if (st == PSEP_EV_FAILED)
		log_warn("an EXPUNGE for a failed save could not be journaled: "
			 "the next sync of that mailbox removes the replica's copy");
}

/* The save failed after its event went out: the replica is told to expunge
 * the GUID again with the EXPUNGE the writer recorded here (if the writer
 * died, or could not record it, the GUID is tombstoned here by a writer
 * job, whose EXPUNGE goes to the replicas: fe_tombstone), and the MTA
 * gets the failure. */
static void
fe_write_failed(struct fe_delivery *d)
{
	if (d->wr_dead || d->undo_modseq == 0) {
		fe_tombstone(d, &d->wr_result);
		return;
	}
	fe_undo_send(d, d->undo_modseq);
	fe_finish(d, &d->wr_result, NULL);
}

static void fe_event_outcome(struct sup *sup, struct fe_delivery *d,
			     enum psep_event_status st, uint32_t acks);

static void
fe_event_done(struct sup *sup, enum psep_event_status st, uint32_t acks, void *arg)
{
	struct fe_delivery *d = arg;

	if (d->ev_early && !d->wr_done) {
		d->ev_done = true;
		d->ev_st = st;
		d->ev_acks = acks;
	} else if (d->ev_early && d->wr_failed) {
		fe_write_failed(d);
	} else {
		fe_event_outcome(sup, d, st, acks);
	}
}

/* The save is durable and its event has its outcome. */
static void
fe_event_outcome(struct sup *sup, struct fe_delivery *d, enum psep_event_status st,
		 uint32_t acks)
{
	struct psep_repl_cmd cmd;
	struct policy_user u;
	const char *why = NULL;

	if (st == PSEP_EV_JOURNALED || st == PSEP_EV_ACKED) {
		fe_saved(d);
		return;
	}
	if (sup->set.replication_on_timeout == POLICY_ON_TIMEOUT_ACCEPT) {
		log_warn("session=%s rcpt=<%s> user=%s guid=%s replication %s "
			 "(acks=%u): accepted", d->session, d->address, d->user, d->guid,
			 st == PSEP_EV_TIMEOUT ? "timeout" : "failed", acks);
		fe_saved(d);
		return;
	}
	log_warn("session=%s rcpt=<%s> user=%s guid=%s replication %s (acks=%u): "
		 "removing the local copy", d->session, d->address, d->user, d->guid,
		 st == PSEP_EV_TIMEOUT ? "timeout" : "failed", acks);
	if (policy_userdb_lookup(sup->userdb, d->user, &u, &why) != POLICY_USER_FOUND) {
		struct psep_repl_rep rep = { .status = PSEP_RS_NO };

		xstrlcpy(rep.text, why ? why : "user lookup failed", sizeof(rep.text));
		fe_expunge_done(sup, &rep, -1, d);
		return;
	}
	memset(&cmd, 0, sizeof(cmd));
	cmd.op = PSEP_REPL_EXPUNGE;
	xstrlcpy(cmd.origin, sup->server_id, sizeof(cmd.origin));
	xstrlcpy(cmd.user, u.name, sizeof(cmd.user));
	xstrlcpy(cmd.mailbox, d->mailbox, sizeof(cmd.mailbox));
	xstrlcpy(cmd.guid, d->guid, sizeof(cmd.guid));
	sup_repl_run(sup, &u, &cmd, -1, fe_expunge_done, d);
}

/* Hand the saved message to repl-hook; the 250 waits for its answer. */
static void
fe_replicate(struct sup *sup, struct fe_delivery *d, const struct sup_job *job,
	     const struct psep_write_rep *rep)
{
	const struct psep_write_req *w = job->req;
	struct psep_repl_cmd cmd;

	memset(&cmd, 0, sizeof(cmd));
	cmd.op = PSEP_REPL_SAVE;
	cmd.uid_hint = rep->imap_uid;
	cmd.modseq = rep->modseq;
	cmd.date = w->received_time;
	cmd.body_size = w->body_size;
	xstrlcpy(cmd.origin, sup->server_id, sizeof(cmd.origin));
	xstrlcpy(cmd.user, d->user, sizeof(cmd.user));
	xstrlcpy(cmd.mailbox, d->mailbox, sizeof(cmd.mailbox));
	xstrlcpy(cmd.guid, rep->guid, sizeof(cmd.guid));
	if (sup_event_send(sup, &cmd, w->prefix, w->prefix_len, sup_job_fd(job),
			   sup->set.replication_sync_acks,
			   sup->set.replication_sync_timeout, fe_event_done, d) < 0)
		fe_event_done(sup, PSEP_EV_FAILED, 0, d);
}

static void
fe_job_done(struct sup_job *job, struct psep_msg *m, const char *failure)
{
	struct fe_delivery *d = job->arg;
	const struct psep_write_req *w = job->req;
	const struct psep_write_rep *rep = m != NULL ? &m->u.write_rep : NULL;
	struct dlv_result r;

	job->arg = NULL;
	d->wr_done = true;
	if (rep == NULL) {
		policy_result_set(&r, DLV_TEMPFAIL, 451, "4.3.0",
				  "internal error: %s (id=%016llx)", failure,
				  (unsigned long long)job->id);
		log_err("session=%s rcpt=<%s> user=%s uid=%u guid=%s failed: %s",
			d->session, d->address, d->user, (unsigned)job->uid,
			w->guid, failure);
	} else if (rep->duplicate) {
		/* saved before within lmtp_duplicate_window (and replicated
		 * then): the MTA lost our 250, it gets it again */
		log_info("session=%s rcpt=<%s> user=%s guid=%s duplicate: already saved",
			 d->session, d->address, d->user, rep->guid);
		d->sup->ctr.duplicates++;
		xstrlcpy(d->guid, rep->guid, sizeof(d->guid));
		fe_saved(d);
		return;
	} else if (rep->err == EDQUOT) {
		policy_result_quota(&r, &d->sup->set);
		log_info("session=%s rcpt=<%s> user=%s uid=%u guid=%s refused: over quota",
			 d->session, d->address, d->user, (unsigned)job->uid, w->guid);
	} else if (rep->err != 0) {
		policy_result_from_errno(&r, rep->err, rep->what);
		log_warn("session=%s rcpt=<%s> user=%s uid=%u guid=%s failed: %u %s",
			 d->session, d->address, d->user, (unsigned)job->uid,
			 w->guid, r.code, r.text);
	} else {
		/* the delivery line names the file (fe_finish) */
		d->imap_uid = rep->imap_uid;
		xstrlcpy(d->file, rep->filename, sizeof(d->file));
		if (rep->imap_uid == 0 && log_limited(&d->sup->rl_index, NULL))
			log_warn("user=%s guid=%s saved without its index record: the "
				 "index lock was not had within index_lock_timeout (the user "
				 "may hold it) or the index is unusable; raise "
				 "index_lock_timeout if the lock is only slow", d->user,
				 rep->guid);
		xstrlcpy(d->guid, rep->guid, sizeof(d->guid));
		if (rep->in_inbox)
			xstrlcpy(d->mailbox, "INBOX", sizeof(d->mailbox));
		if (d->ev_early) {
			/* the event went out on the stamp; if it is still
			 * running, fe_event_done finishes */
			if (d->ev_done)
				fe_event_outcome(d->sup, d, d->ev_st, d->ev_acks);
		} else if (d->sup->set.n_replicas > 0) {
			fe_replicate(d->sup, d, job, rep);
		} else {
			fe_saved(d);
		}
		return;
	}
	if (d->ev_early) {
		d->wr_failed = true;
		d->wr_dead = rep == NULL;
		d->undo_modseq = rep != NULL ? rep->modseq : 0;
		d->wr_result = r;
		if (d->ev_done)
			fe_write_failed(d);
		return;
	}
	if (rep == NULL && job->started) {
		/* the writer died holding the job: it may have saved (in
		 * part or in full) before it could answer */
		fe_tombstone(d, &r);
		return;
	}
	fe_finish(d, &r, NULL);
}

/* The writer's early stamp (PSEP_WRITE_STAMP): the event leaves now. */
static void
fe_job_stamped(struct sup_job *job, const struct psep_write_rep *stamp)
{
	struct fe_delivery *d = job->arg;

	if (d == NULL)
		return;
	xstrlcpy(d->guid, stamp->guid, sizeof(d->guid));
	if (stamp->in_inbox)
		xstrlcpy(d->mailbox, "INBOX", sizeof(d->mailbox));
	d->ev_early = true;
	d->save_modseq = stamp->modseq;
	fe_replicate(d->sup, d, job, stamp);
}

static struct sup_job *
job_new(struct sup *sup, const struct psep_deliver_req *dr,
	const struct policy_user *u, const struct psep_quota *q, const char *mailbox,
	struct sup_body *body)
{
	struct sup_job *job = xcalloc(1, sizeof(*job));
	struct psep_write_req *w;
	size_t i;

	job->type = PSEP_WRITE_REQ;
	job->req_len = sizeof(*w) + dr->prefix_len;
	w = xcalloc(1, job->req_len);
	job->req = w;
	w->uid = (uint32_t)u->uid;
	w->gid = (uint32_t)u->gid;
	w->ngroups = (uint32_t)u->ngroups;
	for (i = 0; i < u->ngroups && i < PSEP_MAX_GROUPS; i++)
		w->groups[i] = (uint32_t)u->groups[i];
	job->creds.uid = u->uid;
	job->creds.gid = u->gid;
	job->creds.ngroups = u->ngroups < PSEP_MAX_GROUPS ? u->ngroups : PSEP_MAX_GROUPS;
	memcpy(job->creds.groups, u->groups, job->creds.ngroups * sizeof(gid_t));
	w->prefix_len = dr->prefix_len;
	w->body_size = dr->body_size;
	w->body_vsize = dr->body_vsize;
	w->received_time = (uint64_t)time(NULL);
	w->quota = *q;
	memcpy(w->session, dr->session, sizeof(w->session));
	xstrlcpy(w->user, u->name, sizeof(w->user));
	xstrlcpy(w->mail_base, u->mail_base, sizeof(w->mail_base));
	xstrlcpy(w->mail_rel, u->mail_rel, sizeof(w->mail_rel));
	xstrlcpy(w->mailbox, mailbox, sizeof(w->mailbox));
	w->mailbox_create = sup->set.lda_mailbox_autocreate ? 1 : 0;
	if (store_guid_new(sup->server_id, w->guid) < 0)
		fatal("store_guid_new");
	memcpy(w->prefix, dr->prefix, dr->prefix_len);
	job->uid = u->uid;
	job->memfd = -1;
	job->body = body;
	job->id = ++sup->next_id;
	return job;
}

/* A limit refuses this recipient: 451 4.3.2 for it alone, one log line
 * (rate-limited) naming the limit, the user and what to raise. */
static void
fe_refuse(struct sup_child *c, const struct psep_msg *m, const char *user,
	  const char *limit, const char *raise, struct log_limit *rl)
{
	struct dlv_result r;
	unsigned skipped = 0;

	if (log_limited(rl, &skipped))
		log_warn("session=%s rcpt=<%s> user=%s lmtpd=%ld refused: %s reached "
			 "(queued=%u bodies=%u budget=%u): raise %s (%u more refused "
			 "since the last line)", m->u.deliver_req.session,
			 m->u.deliver_req.address, user, (long)c->pid, limit,
			 c->sup->n_queued, c->sup->n_bodies, sup_body_budget(c->sup),
			 raise, skipped);
	policy_result_set(&r, DLV_TEMPFAIL, 451, "4.3.2",
			  "too busy (%s), try again later", limit);
	fe_reply(c, m->hdr.id, &r, NULL);
}

/* INBOX, or with lmtp_save_to_detail_mailbox the folder the address
 * detail names (an invalid one: INBOX, logged). */
static void
fe_mailbox(struct sup *sup, const struct psep_deliver_req *dr,
	   const struct policy_user *u, char *out, size_t size)
{
	const char *why = NULL;

	xstrlcpy(out, "INBOX", size);
	if (!sup->set.lmtp_save_to_detail_mailbox || u->detail[0] == '\0')
		return;
	if (policy_detail_mailbox(u->detail, out, size, &why) < 0) {
		log_info("session=%s rcpt=<%s> user=%s detail not usable as a "
			 "mailbox (%s): saving into INBOX", dr->session, dr->address,
			 u->name, why);
		xstrlcpy(out, "INBOX", size);
	}
}

static void
fe_deliver(struct sup_child *c, struct psep_msg *m)
{
	const struct psep_deliver_req *dr = &m->u.deliver_req;
	struct policy_user user;
	struct fe_delivery *d;
	struct sup_body *body;
	struct sup_job *job;
	struct dlv_result r;
	struct psep_quota q;
	const char *why = NULL;
	enum policy_lookup l;

	l = policy_userdb_lookup(c->sup->userdb, dr->address, &user, &why);
	if (l != POLICY_USER_FOUND) {
		policy_result_from_lookup(&r, l, why);
		sup_stats_delivery(c->sup, &r, 0, 0);
		fe_reply(c, m->hdr.id, &r, NULL);
		return;
	}
	if (sup_quota_for(&c->sup->set, &user, true, &q, &why) < 0) {
		log_err("session=%s rcpt=<%s> user=%s invalid quota rule: %s",
			dr->session, dr->address, user.name, why);
		policy_result_set(&r, DLV_TEMPFAIL, 451, "4.3.0",
				  "invalid quota rule for this user");
		fe_reply(c, m->hdr.id, &r, NULL);
		return;
	}
	if (sup_dispatch_room(c->sup, user.uid, &why) < 0) {
		fe_refuse(c, m, user.name, why, why, &c->sup->rl_queue);
		return;
	}
	body = sup_body_adopt(c->sup, m->fd, m->fd_dev, m->fd_ino, c, &why);
	m->fd = -1;
	if (body == NULL) {
		fe_refuse(c, m, user.name, why, "LimitNOFILE (RLIMIT_NOFILE) or "
			  "lower lmtp_max_connections", &c->sup->rl_budget);
		return;
	}
	d = xcalloc(1, sizeof(*d));
	clock_gettime(CLOCK_MONOTONIC, &d->t0);
	d->size = dr->body_size;
	memcpy(d->msgid, dr->msgid, sizeof(d->msgid));
	d->sup = c->sup;
	d->fe = c;
	sup_child_ref(c);
	d->req_id = m->hdr.id;
	memcpy(d->session, dr->session, sizeof(d->session));
	memcpy(d->address, dr->address, sizeof(d->address));
	xstrlcpy(d->user, user.name, sizeof(d->user));
	fe_mailbox(c->sup, dr, &user, d->mailbox, sizeof(d->mailbox));
	job = job_new(c->sup, dr, &user, &q, d->mailbox, body);
	xstrlcpy(d->job_guid, ((struct psep_write_req *)job->req)->guid,
		 sizeof(d->job_guid));
	job->done = fe_job_done;
	job->arg = d;
	if (c->sup->set.n_replicas > 0) {
		((struct psep_write_req *)job->req)->early_stamp = 1;
		job->stamped = fe_job_stamped;
	}
	sup_dispatch_submit(c->sup, job);
}

static void
fe_message(struct sup_child *c, struct psep_msg *m)
{
	struct sup_frontend *fe = c->owner;

	switch (m->hdr.type) {
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
	case PSEP_METRICS_REQ:
		sup_metrics_request(c, m);
		break;
	default:
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
