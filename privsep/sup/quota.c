/* SPDX-License-Identifier: MIT */
/*
 * privsep/sup/quota.c - Maildir++ quota in the supervisor: the rule that
 * applies to a user (userdb_quota_rule, else quota_rule) parsed into the
 * limits a writer enforces, and the RCPT-time check
 * (lmtp_rcpt_check_quota) as a writer job: the supervisor never reads a
 * user's maildirsize, a writer does with the user's credentials.
 *
 * Runs in:  the supervisor.
 * Trust:    rules come from the admin (config, passwd-file); the writer's
 *           answer was validated by psep_msg_recv.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "privsep/sup/sup_int.h"
#include "storage/storage.h"

int
sup_quota_check_settings(const struct policy_settings *s, const char **why_out)
{
	struct store_quota_rule rule;

	if (s->quota_rule == NULL || s->quota_rule[0] == '\0')
		return 0;
	if (store_quota_rule_parse(s->quota_rule, &rule, why_out) < 0)
		return -1;
	if (!rule.is_default) {
		*why_out = "only the default rule (mask * or ?) is supported";
		return -1;
	}
	return 0;
}

int
sup_quota_for(const struct policy_settings *s, const struct policy_user *u,
	      bool enforce, struct psep_quota *q, const char **why_out)
{
	const char *text = policy_user_quota_rule(s, u);
	struct store_quota_rule rule;

	memset(q, 0, sizeof(*q));
	if (text[0] == '\0')
		return 0;
	if (store_quota_rule_parse(text, &rule, why_out) < 0)
		return -1;
	if (!rule.is_default) {
		*why_out = "only the default quota rule (mask * or ?) is supported";
		errno = EINVAL;
		return -1;
	}
	if (rule.ignore || (rule.bytes <= 0 && rule.count <= 0))
		return 0;   /* unlimited (NOQUOTA, 0): Dovecot keeps no file */
	q->on = 1;
	q->bytes = rule.bytes > 0 ? (uint64_t)rule.bytes : 0;
	q->count = rule.count > 0 ? (uint64_t)rule.count : 0;
	q->force = rule.force ? 1 : 0;
	q->enforce = enforce ? 1 : 0;
	return 0;
}

struct quota_check {
	sup_quota_done_fn done;
	void *arg;
};

static void
check_done(struct sup_job *job, struct psep_msg *m, const char *failure)
{
	struct quota_check *qc = job->arg;
	const struct psep_quota_req *r = job->req;
	enum sup_quota_verdict v = SUP_QUOTA_UNKNOWN;

	if (m == NULL)
		log_warn("user=%s quota check failed: %s", r->user, failure);
	else if (m->u.quota_rep.err != 0)
		log_warn("user=%s quota check failed: %s: %s", r->user,
			 m->u.quota_rep.what, strerror(m->u.quota_rep.err));
	else
		v = m->u.quota_rep.fits ? SUP_QUOTA_FITS : SUP_QUOTA_FULL;
	job->arg = NULL;
	qc->done(v, qc->arg);
	free(qc);
}

void
sup_quota_check(struct sup *sup, const struct policy_user *u,
		const struct psep_quota *q, uint64_t size, sup_quota_done_fn done,
		void *arg)
{
	struct sup_job *job = xcalloc(1, sizeof(*job));
	struct psep_quota_req *r = xcalloc(1, sizeof(*r));
	struct quota_check *qc = xcalloc(1, sizeof(*qc));
	size_t i, n = u->ngroups < PSEP_MAX_GROUPS ? u->ngroups : PSEP_MAX_GROUPS;

	r->uid = (uint32_t)u->uid;
	r->gid = (uint32_t)u->gid;
	r->ngroups = (uint32_t)n;
	for (i = 0; i < n; i++)
		r->groups[i] = (uint32_t)u->groups[i];
	r->size = size;
	r->quota = *q;
	xstrlcpy(r->user, u->name, sizeof(r->user));
	xstrlcpy(r->mail_base, u->mail_base, sizeof(r->mail_base));
	xstrlcpy(r->mail_rel, u->mail_rel, sizeof(r->mail_rel));
	qc->done = done;
	qc->arg = arg;
	job->type = PSEP_QUOTA_REQ;
	job->req = r;
	job->req_len = sizeof(*r);
	job->uid = u->uid;
	job->creds.uid = u->uid;
	job->creds.gid = u->gid;
	job->creds.ngroups = n;
	memcpy(job->creds.groups, u->groups, n * sizeof(gid_t));
	job->memfd = -1;
	job->id = ++sup->next_id;
	job->done = check_done;
	job->arg = qc;
	sup_dispatch_submit(sup, job);
}
