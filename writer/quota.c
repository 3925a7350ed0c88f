/* SPDX-License-Identifier: MIT */
/*
 * writer/quota.c - Maildir++ quota of one user as Dovecot's "quota =
 * maildir" and Courier keep it: read maildirsize (recalculated when
 * missing, invalid or stale), test whether a message fits, and append the
 * usage line of a save or an expunge.  Answers PSEP_QUOTA_REQ (the RCPT
 * check, lmtp_rcpt_check_quota).
 *
 * Runs in:  writer-seteuid and writer-child, with the user's credentials
 *           (the caller entered them).
 * Trust:    maildirsize is user-writable: storage/quota.c bounds and
 *           validates what it reads; a bad file is recalculated.
 * Order:    the check and the update are not atomic (Maildir++ has no
 *           lock): two saves racing may both fit and exceed by one message,
 *           as with Dovecot and Courier.
 */
#include <errno.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "privsep/privsep.h"
#include "storage/storage.h"
#include "writer/writer_int.h"

#define RECALC_TRIES 3

int
writer_quota_read(int root_fd, const struct psep_quota *pq, struct store_quota *q,
		  const char **what_out)
{
	struct store_quota_conf conf = {
		.limits = { .bytes = pq->bytes, .count = pq->count },
		.force = pq->force != 0,
	};
	struct store_quota_limits lim;
	int tries;

	for (tries = 0;; tries++) {
		memset(q, 0, sizeof(*q));
		if (store_quota_read(root_fd, &conf, q) < 0) {
			if (errno != ELOOP && errno != EINVAL) {
				*what_out = "read maildirsize";
				return -1;
			}
			/* a symlink or a directory: recalculation replaces it */
			memset(q, 0, sizeof(*q));
			q->limit_bytes = conf.limits.bytes;
			q->limit_count = conf.limits.count;
		} else if (!store_quota_need_recalc(q, &conf, time(NULL))) {
			return 0;
		}
		lim.bytes = q->limit_bytes;
		lim.count = q->limit_count;
		if (store_quota_recalc(root_fd, &lim, NULL, 0, q) == 0)
			return 0;
		if (errno != EAGAIN || tries + 1 == RECALC_TRIES) {
			*what_out = "recalculate maildirsize";
			return -1;
		}
	}
}

void
writer_quota_account(int root_fd, int64_t bytes, int64_t count, const char *user)
{
	if (store_quota_update(root_fd, bytes, count) == 0 || errno == ENOENT)
		return;
	/* the next reader sees a stale or missing total and recalculates */
	log_warn("user=%s maildirsize not updated: %s", user, strerror(errno));
}

void
writer_quota_one(int ipc, const struct psep_msg *m, const struct writer_creds_ops *ops)
{
	const struct psep_quota_req *r = &m->u.quota_req;
	struct psep_quota_rep rep;
	struct store_quota q;
	const char *what = "switch to user";
	int root = -1;

	memset(&rep, 0, sizeof(rep));
	if (ops->enter(r->uid, r->gid, r->ngroups, r->groups) < 0) {
		rep.err = errno;
		goto out;
	}
	root = store_root_open(r->mail_base, r->mail_rel, (uid_t)r->uid, false);
	if (root < 0 && errno == ENOENT) {
		rep.fits = 1;   /* no Maildir yet: nothing used */
	} else if (root < 0) {
		rep.err = errno;
		what = "open Maildir";
	} else if (writer_quota_read(root, &r->quota, &q, &what) < 0) {
		rep.err = errno ? errno : EIO;
	} else {
		rep.fits = store_quota_fits(&q, r->size) ? 1 : 0;
		rep.used_bytes = q.used_bytes > 0 ? (uint64_t)q.used_bytes : 0;
		rep.used_count = q.used_count > 0 ? (uint64_t)q.used_count : 0;
		rep.limit_bytes = q.limit_bytes;
		rep.limit_count = q.limit_count;
	}
	if (root >= 0)
		close(root);
	ops->leave();
out:
	if (rep.err != 0)
		xstrlcpy(rep.what, what, sizeof(rep.what));
	if (psep_msg_send(ipc, PSEP_QUOTA_REP, m->hdr.id, &rep, sizeof(rep), -1) < 0)
		fatal("send QUOTA_REP");
}
