/* SPDX-License-Identifier: MIT */
/*
 * repl-hook/watch.c - change capture (doc/replication-protocol.md §7.6):
 * one inotify instance for every user's Maildir.  The watches are added by
 * a writer with the user's credentials (PSEP_WATCH_REQ sends the instance
 * through the supervisor); this file reads the events, maps each watch to
 * (user, mailbox), coalesces them for replication_capture_delay, then asks
 * a writer to capture each changed mailbox (PSEP_REPL_CAPTURE: reconcile
 * it, or only the files its events named (watch_names.c), and list what it
 * recorded) and journals the EXPUNGEs and STOREs of
 * the answer for every replica (hook_notify.event_local); what needs a
 * body (a new file) or a folder change marks the user for a dirty resync
 * (§11).  An event at the Maildir root (a folder, or Dovecot's
 * subscriptions file) asks for PSEP_REPL_CAPTURE_BOXES, whose CREATE,
 * DELETE, RENAME, SUBSCRIBE and UNSUBSCRIBE lines are journaled as events.
 *
 * Runs in:  repl-hook (run_user, no capabilities, seccomp), libevent.
 * Trust:    the names in events are user-controlled: they are only
 *           compared (a leading '.', no '/' possible) and passed on to
 *           the writer as a bounded, checked list, never opened here;
 *           mailbox names come from our writer's list, capture lines from
 *           our writer (checked again before use, and by the supervisor).
 *           Memory is bounded: WATCH_MAX watches mapped, WATCH_PENDING_MAX
 *           changed mailboxes waiting, WATCH_INFLIGHT captures at a time
 *           (WATCH_USER_INFLIGHT for one user);
 *           a user with more than WATCH_USER_BOXES changed mailboxes is
 *           one entry (a resync of the user), so a user who floods their
 *           Maildir does not hold the others back.
 * Order:    users are asked for one at a time (one writer job at a time),
 *           after READY; an overflow of the kernel queue (IN_Q_OVERFLOW)
 *           falls back to a full sync; ENOSPC (fs.inotify.max_user_watches)
 *           is logged once and the users without watches are left to
 *           replication_full_sync_interval.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <event2/event.h>

#include "policy/policy.h"
#include "privsep/link.h"
#include "privsep/privsep.h"
#include "repl-hook/core_int.h"
#include "repl-hook/hook_int.h"

#define WATCH_MAX 1000000u        /* watch descriptors mapped */
#define WATCH_PENDING_MAX 4096u   /* users waiting for their sync */
#define WATCH_QUEUE_MAX 100000u   /* users waiting for their watches */
#define WATCH_READ_BUF 65536
#define WATCH_USER_BOXES 16       /* changed mailboxes of one user, then
				   * one resync of the user instead */
#define WATCH_INFLIGHT 8          /* CAPTURE requests at a time */
#define WATCH_USER_INFLIGHT 2     /* ... of them for one user */
#define WATCH_SUBS_FILE "subscriptions"   /* Dovecot's, in the Maildir root */

/* A mailbox (or, mailbox NULL, the Maildir root of a user) that changed. */
struct pend {
	char *user;
	char *mailbox;
	bool due;                     /* its delay is over */
	bool sent;                    /* CAPTURE in flight */
	bool resync;                  /* a flood: resync the user after it */
	struct hook_watch_names names;/* of the events: what to reconcile */
};

/* What a watch descriptor stands for. */
struct wd_ent {
	char *user;                   /* NULL: unused */
	char *mailbox;                /* NULL: the Maildir root */
};

struct hook_watch {
	struct hook *h;
	int ino;
	struct event *ev_read;
	struct event *ev_flush;
	struct event *ev_start;
	struct wd_ent *wd;            /* indexed by wd */
	size_t nwd;
	char **queue;                 /* users to (re)watch, FIFO */
	size_t qhead, qlen, qcap;
	struct hook_hset queued;      /* the users of queue */
	uint64_t inflight_id;         /* WATCH_REQ in flight, 0 if none */
	char inflight_user[PSEP_NAME_MAX];
	char **known;                 /* users with watches, sorted */
	size_t nknown, cknown;
	struct pend **pending;        /* what changed, WATCH_PENDING_MAX */
	size_t npending;
	unsigned inflight;            /* CAPTURE requests sent */
	bool full_due;                /* an overflow: full sync at the flush */
	bool enospc_logged;
	bool started;
	size_t nwatches;              /* watch descriptors mapped */
	uint64_t start_ms;            /* the user list was asked for */
	bool listed, initial_logged;  /* the first pass over the users */
	struct hook_own_saves own;    /* stowd's own saves: no capture */
	struct hook_moved moved;      /* files others removed lately */
};

static void watch_next(struct hook_watch *w);

static uint64_t
queued_key(const char *user)
{
	size_t len = strlen(user);

	return hook_hset_key(&user, &len, 1);
}

/* Ask for user's watches (again: adding a watch twice is harmless). */
static void
watch_enqueue(struct hook_watch *w, const char *user)
{
	char *copy;

	if (w->qlen >= WATCH_QUEUE_MAX || hook_hset_has(&w->queued, queued_key(user), user))
		return;
	if (w->qlen == w->qcap) {
		size_t ncap = w->qcap ? w->qcap * 2 : 64;
		char **q = xcalloc(ncap, sizeof(*q));

		for (size_t i = 0; i < w->qlen; i++)
			q[i] = w->queue[(w->qhead + i) % w->qcap];
		free(w->queue);
		w->queue = q;
		w->qcap = ncap;
		w->qhead = 0;
	}
	copy = xstrdup(user);
	w->queue[(w->qhead + w->qlen) % w->qcap] = copy;
	w->qlen++;
	(void)hook_hset_add(&w->queued, queued_key(copy), copy);
	watch_next(w);
}

static int
known_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool
known_has(const struct hook_watch *w, const char *user)
{
	return w->nknown > 0 &&
	       bsearch(&user, w->known, w->nknown, sizeof(*w->known), known_cmp) != NULL;
}

static void
known_add(struct hook_watch *w, const char *user)
{
	size_t i;

	if (known_has(w, user))
		return;
	if (w->nknown == w->cknown) {
		w->cknown = w->cknown ? w->cknown * 2 : 64;
		w->known = xrealloc(w->known, w->cknown * sizeof(*w->known));
	}
	for (i = w->nknown; i > 0 && strcmp(w->known[i - 1], user) > 0; i--)
		w->known[i] = w->known[i - 1];
	w->known[i] = xstrdup(user);
	w->nknown++;
}

static void
wd_set(struct hook_watch *w, int wd, const char *user, const char *mailbox)
{
	struct wd_ent *e;

	if (wd < 0 || (size_t)wd >= WATCH_MAX)
		return;
	if ((size_t)wd >= w->nwd) {
		size_t n = w->nwd ? w->nwd : 256;

		while (n <= (size_t)wd)
			n *= 2;
		w->wd = xrealloc(w->wd, n * sizeof(*w->wd));
		memset(w->wd + w->nwd, 0, (n - w->nwd) * sizeof(*w->wd));
		w->nwd = n;
	}
	e = &w->wd[wd];
	if (e->user == NULL)
		w->nwatches++;
	free(e->user);
	free(e->mailbox);
	e->user = xstrdup(user);
	e->mailbox = mailbox != NULL ? xstrdup(mailbox) : NULL;
}

static void
wd_clear(struct hook_watch *w, int wd)
{
	if (wd < 0 || (size_t)wd >= w->nwd)
		return;
	if (w->wd[wd].user != NULL)
		w->nwatches--;
	free(w->wd[wd].user);
	free(w->wd[wd].mailbox);
	w->wd[wd].user = w->wd[wd].mailbox = NULL;
}

/* ---- the watches (WATCH_REQ / WATCH_REP) -------------------------------- */

static void
watch_next(struct hook_watch *w)
{
	struct psep_watch_req req;
	char *user;

	if (w->inflight_id != 0 || w->qlen == 0 || w->h->stopping || w->ino < 0)
		return;
	user = w->queue[w->qhead];
	w->qhead = (w->qhead + 1) % w->qcap;
	w->qlen--;
	(void)hook_hset_del(&w->queued, queued_key(user), user);
	memset(&req, 0, sizeof(req));
	if (!xstrlcpy(req.user, user, sizeof(req.user))) {
		free(user);
		watch_next(w);
		return;
	}
	xstrlcpy(w->inflight_user, user, sizeof(w->inflight_user));
	w->inflight_id = ++w->h->next_lreq_id;
	if (psep_link_send(w->h->link, PSEP_WATCH_REQ, w->inflight_id, &req,
			   sizeof(req), w->ino) == -1) {
		log_warn("watch: user=%s request failed: %s", user, strerror(errno));
		w->inflight_id = 0;
	}
	free(user);
}

/* The first pass over the users is over (or cannot go on): say what it
 * cost, once (doc/performance.md quotes this line). */
static void
initial_done(struct hook_watch *w, bool stopped)
{
	if (!w->listed || w->initial_logged || (!stopped && (w->qlen > 0 || w->inflight_id != 0)))
		return;
	w->initial_logged = true;
	log_info("watch: initial watches set: users=%zu watches=%zu in %llu ms%s",
		 w->nknown, w->nwatches, (unsigned long long)(hook_now_ms() - w->start_ms),
		 stopped ? " (stopped at the watch limit)" : "");
}

/* One "<wd> <mailbox>" line of the writer's list. */
static void
watch_line(struct hook_watch *w, const char *user, char *line)
{
	char *sp = strchr(line, ' '), *end;
	long wd;

	if (sp == NULL)
		return;
	*sp = '\0';
	wd = strtol(line, &end, 10);
	if (*end != '\0' || wd < 0 || wd >= (long)WATCH_MAX || sp[1] == '\0' ||
	    strlen(sp + 1) >= PSEP_NAME_MAX)
		return;
	wd_set(w, (int)wd, user, strcmp(sp + 1, "/") == 0 ? NULL : sp + 1);
}

void
hook_watch_reply(struct hook *h, struct psep_msg *m)
{
	struct hook_watch *w = h->watch;
	const struct psep_watch_rep *rep = &m->u.watch_rep;
	char buf[PSEP_LINES_LINE_MAX + 1], user[PSEP_NAME_MAX];
	size_t have = 0;
	ssize_t n;

	if (w == NULL || m->hdr.id != w->inflight_id) {
		log_debug("watch: reply id=%llu matches no request",
			  (unsigned long long)m->hdr.id);
		return;
	}
	w->inflight_id = 0;
	xstrlcpy(user, w->inflight_user, sizeof(user));
	if (rep->count > 0)
		known_add(w, user);
	if (rep->err == ENOSPC && !w->enospc_logged) {
		log_warn("watch: inotify watch limit reached (sysctl "
			 "fs.inotify.max_user_watches): the Maildirs without a "
			 "watch are reconciled by replication_full_sync_interval only");
		w->enospc_logged = true;
	} else if (rep->err != 0 && rep->err != ENOSPC) {
		log_debug("watch: user=%s no watches: %s", user, strerror(rep->err));
	}
	for (off_t off = 0; m->fd >= 0 && user[0] != '\0';) {
		char *nl;

		n = pread(m->fd, buf + have, sizeof(buf) - 1 - have, off);
		if (n <= 0)
			break;
		off += n;
		have += (size_t)n;
		buf[have] = '\0';
		while ((nl = strchr(buf, '\n')) != NULL) {
			*nl = '\0';
			watch_line(w, user, buf);
			have -= (size_t)(nl + 1 - buf);
			memmove(buf, nl + 1, have + 1);
		}
		if (have == sizeof(buf) - 1)
			have = 0;   /* an overlong line: dropped */
	}
	if (rep->err == ENOSPC) {
		initial_done(w, true);
		return;   /* no more watches to be had: stop asking */
	}
	watch_next(w);
	initial_done(w, false);
}

/* ---- events ------------------------------------------------------------ */

static void
flush_arm(struct hook_watch *w)
{
	uint64_t ms = w->h->set->replication_capture_delay;
	struct timeval tv = { (time_t)(ms / 1000u), (suseconds_t)(ms % 1000u) * 1000 };

	if (!evtimer_pending(w->ev_flush, NULL))
		evtimer_add(w->ev_flush, &tv);
}

static void
pend_free(struct pend *p)
{
	hook_watch_names_free(&p->names);
	free(p->user);
	free(p->mailbox);
	free(p);
}

static void
pend_remove(struct hook_watch *w, size_t i)
{
	pend_free(w->pending[i]);
	w->pending[i] = w->pending[--w->npending];
}

/* Drop the user's mailbox entries not yet sent. */
static void
pending_drop_boxes(struct hook_watch *w, const char *user)
{
	for (size_t i = 0; i < w->npending;) {
		struct pend *p = w->pending[i];

		if (!p->sent && p->mailbox != NULL && strcmp(p->user, user) == 0)
			pend_remove(w, i);
		else
			i++;
	}
}

/*
 * (user, mailbox) changed, the file name (NULL: not known) in new/ or
 * cur/; mailbox NULL: something at the Maildir root (a folder, the
 * subscriptions), captured with CAPTURE_BOXES beside the user's mailbox
 * entries.  One entry per pair not yet sent, with the names of its
 * events; a user with more than WATCH_USER_BOXES changed mailboxes
 * becomes one root entry that resyncs the user after its capture, so a
 * flood costs one entry.
 */
static void
pending_add(struct hook_watch *w, const char *user, const char *mailbox,
	    const char *name, bool unlinked)
{
	struct pend *root = NULL, *p;
	size_t i, n = 0;
	bool flood = false;

	for (i = 0; i < w->npending; i++) {
		p = w->pending[i];
		if (p->sent || strcmp(p->user, user) != 0)
			continue;
		if (p->mailbox == NULL)
			root = p;
		else if (mailbox != NULL && strcmp(p->mailbox, mailbox) == 0) {
			hook_watch_names_add(&p->names, name, unlinked);
			return;
		} else
			n++;
	}
	if (root != NULL && (mailbox == NULL || root->resync))
		return;   /* waiting already, or the user's resync covers it */
	if (mailbox != NULL && n >= WATCH_USER_BOXES) {
		pending_drop_boxes(w, user);
		if (root != NULL) {
			root->resync = true;
			return;
		}
		mailbox = NULL;
		flood = true;
	}
	if (w->npending >= WATCH_PENDING_MAX) {
		w->full_due = true;   /* too many at once: one full sync */
		flush_arm(w);
		return;
	}
	if (w->pending == NULL)
		w->pending = xcalloc(WATCH_PENDING_MAX, sizeof(*w->pending));
	p = xcalloc(1, sizeof(*p));
	p->user = xstrdup(user);
	p->mailbox = mailbox != NULL ? xstrdup(mailbox) : NULL;
	p->resync = flood;
	if (mailbox != NULL)
		hook_watch_names_add(&p->names, name, unlinked);
	w->pending[w->npending++] = p;
	flush_arm(w);
}

/* The user's mailboxes to resync with every replica. */
static void
resync_user(struct hook *h, const char *user, const char *mailbox)
{
	for (size_t k = 0; k < h->n_replicas; k++) {
		hook_sync_mark_dirty(&h->replicas[k], user,
				     mailbox != NULL ? mailbox : "INBOX");
		hook_conn_dirty_due(&h->replicas[k]);
	}
}

/* One data line of a CAPTURE reply: a STORE or EXPUNGE to journal;
 * returns true if the line asks for a resync (SAVE, LOST, unknown). */
static bool
capture_line(struct hook *h, const struct pend *p, char *line)
{
	struct psep_repl_cmd c;
	char *f[4] = { line, NULL, NULL, NULL };
	unsigned long long modseq;
	char *end;
	int n = 1;

	/* "OP guid [modseq [deltas]]": the deltas are the rest of the line */
	while (n < 4 && (end = strchr(f[n - 1], ' ')) != NULL) {
		*end = '\0';
		f[n++] = end + 1;
	}
	if (n < 2)
		return false;
	if (strcmp(f[0], "SAVE") == 0 || strcmp(f[0], "LOST") == 0 || n < 3)
		return true;
	modseq = strtoull(f[2], &end, 10);
	if (*end != '\0' || modseq == 0)
		return true;
	memset(&c, 0, sizeof(c));
	c.modseq = modseq;
	if (!xstrlcpy(c.origin, hook_server_id(h), sizeof(c.origin)) ||
	    !xstrlcpy(c.user, p->user, sizeof(c.user)) ||
	    !xstrlcpy(c.mailbox, p->mailbox, sizeof(c.mailbox)) ||
	    !xstrlcpy(c.guid, f[1], sizeof(c.guid)))
		return true;
	if (strcmp(f[0], "EXPUNGE") == 0) {
		c.op = PSEP_REPL_EXPUNGE;
	} else if (strcmp(f[0], "STORE") == 0 && f[3] != NULL && f[3][0] != '\0' &&
		   xstrlcpy(c.flags, f[3], sizeof(c.flags))) {
		c.op = PSEP_REPL_STORE;
	} else {
		return true;
	}
	h->notify->event_local(h, &c);
	return false;
}

/* One data line of a CAPTURE_BOXES reply: a folder or subscription event
 * to journal; true if the user's mailboxes need a resync (a folder
 * created, with what it may already hold). */
static bool
boxes_line(struct hook *h, const char *user, const char *line, unsigned *events)
{
	struct psep_repl_cmd c;

	memset(&c, 0, sizeof(c));
	if (repl_parse_boxes_data(line, &c.op, c.mailbox, c.mailbox2) < 0 ||
	    !xstrlcpy(c.origin, hook_server_id(h), sizeof(c.origin)) ||
	    !xstrlcpy(c.user, user, sizeof(c.user)))
		return true;
	log_info("watch: user=%s %s", user, line);
	h->notify->event_local(h, &c);
	(*events)++;
	if ((c.op == PSEP_REPL_CREATE || c.op == PSEP_REPL_RENAME) && h->watch != NULL)
		watch_enqueue(h->watch, user);   /* its new/, cur/ are there now */
	return c.op == PSEP_REPL_CREATE;
}

static void pump(struct hook_watch *w);

/* The data lines of a CAPTURE (mailbox) or CAPTURE_BOXES (mailbox NULL)
 * answer in fd, journaled; the number of folder events in *events.  true
 * if the user needs a resync. */
static bool
reply_lines(struct hook *h, const char *user, const struct pend *p, int fd,
	    unsigned *events)
{
	char buf[PSEP_LINES_LINE_MAX + 1];
	bool resync = false;
	size_t have = 0;
	off_t off = 0;
	ssize_t n;

	while (fd >= 0 && (n = pread(fd, buf + have, sizeof(buf) - 1 - have, off)) > 0) {
		char *nl;

		off += n;
		have += (size_t)n;
		buf[have] = '\0';
		while ((nl = strchr(buf, '\n')) != NULL) {
			*nl = '\0';
			if (p == NULL || p->mailbox == NULL)
				resync |= boxes_line(h, user, buf, events);
			else
				resync |= capture_line(h, p, buf);
			have -= (size_t)(nl + 1 - buf);
			memmove(buf, nl + 1, have + 1);
		}
		if (have == sizeof(buf) - 1) {
			have = 0;
			resync = true;
		}
	}
	return resync;
}

/* The writer's CAPTURE answer: journal what it recorded; a resync where a
 * change cannot travel as a STORE or EXPUNGE (a new file: its body) or
 * the mailbox went. */
static void
capture_cb(struct hook *h, const struct psep_repl_rep *rep, int fd, void *arg)
{
	struct pend *p = arg;
	struct hook_watch *w = h->watch;
	unsigned events = 0;
	bool resync = rep == NULL || rep->status != PSEP_RS_OK;

	resync |= reply_lines(h, p->user, p, fd, &events);
	if (fd >= 0)
		close(fd);
	/* a created folder: the journaled CREATE first, then a resync of the
	 * user for what it holds (the resync waits for the journal to drain);
	 * a rename or delete carries everything itself; a flood: the resync
	 * of the user brings what its mailboxes' captures would have */
	if (rep != NULL && (resync || p->resync))
		resync_user(h, p->user, p->mailbox);
	if (w == NULL) {
		pend_free(p);
		return;
	}
	for (size_t i = 0; i < w->npending; i++) {
		if (w->pending[i] == p) {
			pend_remove(w, i);
			break;
		}
	}
	w->inflight--;
	pump(w);
}

bool
hook_watch_on(const struct hook *h)
{
	return h->watch != NULL;
}

bool
hook_watch_user_busy(const struct hook *h, const char *user)
{
	const struct hook_watch *w = h->watch;

	if (w == NULL)
		return false;
	for (size_t i = 0; i < w->npending; i++)
		if (strcmp(w->pending[i]->user, user) == 0)
			return true;
	return false;
}

unsigned
hook_watch_boxes_reply(struct hook *h, const char *user, int fd)
{
	unsigned events = 0;

	if (reply_lines(h, user, NULL, fd, &events))
		resync_user(h, user, NULL);
	return events;
}

static unsigned
user_inflight(const struct hook_watch *w, const char *user)
{
	unsigned n = 0;

	for (size_t i = 0; i < w->npending; i++)
		n += w->pending[i]->sent && strcmp(w->pending[i]->user, user) == 0;
	return n;
}

/* The source folder of a name in a pending capture: a file of that base
 * name another folder of the user lost lately (a move by the IMAP
 * server). */
struct moved_ctx {
	const struct hook_watch *w;
	const struct pend *p;
};

static const char *
moved_from(const char *name, void *arg)
{
	const struct moved_ctx *mc = arg;

	return hook_moved_from(&mc->w->moved, mc->p->user, mc->p->mailbox, name);
}

/* A capture of p's mailbox is running (sent, not answered).  The writer
 * takes an unlinked name's message for gone without looking for it
 * under another name only when no earlier capture of the mailbox, which
 * may hold the event of a link made before the unlink, can run after it. */
static bool
capture_running(const struct hook_watch *w, const struct pend *p)
{
	for (size_t i = 0; i < w->npending; i++) {
		const struct pend *q = w->pending[i];

		if (q != p && q->sent && q->mailbox != NULL &&
		    strcmp(q->user, p->user) == 0 && strcmp(q->mailbox, p->mailbox) == 0)
			return true;
	}
	return false;
}

/* Send what is due, at most WATCH_INFLIGHT writer jobs at a time, at most
 * WATCH_USER_INFLIGHT of them for one user. */
static void
pump(struct hook_watch *w)
{
	struct hook *h = w->h;
	struct psep_repl_cmd c;

	for (size_t i = 0; i < w->npending && w->inflight < WATCH_INFLIGHT;) {
		struct pend *p = w->pending[i];
		int fd = -1, sent;

		if (!p->due || p->sent || user_inflight(w, p->user) >= WATCH_USER_INFLIGHT) {
			i++;
			continue;
		}
		memset(&c, 0, sizeof(c));
		c.op = p->mailbox != NULL ? PSEP_REPL_CAPTURE : PSEP_REPL_CAPTURE_BOXES;
		/* the names of its events: the writer looks at those only */
		if (p->mailbox != NULL) {
			struct moved_ctx mc = { .w = w, .p = p };
			struct hook_names_out o = {
				.from = moved_from, .arg = &mc,
				.unlinked = !capture_running(w, p),
			};

			fd = hook_watch_names_memfd(&p->names, &o, &c.body_size);
		}
		sent = xstrlcpy(c.user, p->user, sizeof(c.user)) &&
		       (p->mailbox == NULL ||
			xstrlcpy(c.mailbox, p->mailbox, sizeof(c.mailbox))) ?
		       hook_local_send(h, &c, fd, capture_cb, p) : -1;
		if (fd >= 0)
			close(fd);
		if (sent < 0) {
			resync_user(h, p->user, NULL);
			pend_remove(w, i);
			continue;
		}
		p->sent = true;
		w->inflight++;
		i++;
	}
}

static void
flush_cb(evutil_socket_t fd, short what, void *arg)
{
	struct hook_watch *w = arg;
	struct hook *h = w->h;

	(void)fd;
	(void)what;
	if (w->full_due) {
		for (size_t k = 0; k < h->n_replicas; k++)
			hook_conn_full_due(&h->replicas[k]);
		w->full_due = false;
	}
	for (size_t i = 0; i < w->npending; i++)
		w->pending[i]->due = true;
	pump(w);
}

enum hook_watch_verdict
hook_watch_classify(uint32_t mask, const char *name, bool root)
{
	if (mask & IN_Q_OVERFLOW)
		return HOOK_WATCH_OVERFLOW;
	if (mask & IN_IGNORED)
		return HOOK_WATCH_GONE;
	if (name == NULL || name[0] == '\0')
		return HOOK_WATCH_NOTHING;
	if (root) {
		/* Dovecot's subscriptions file, replaced by rename (written
		 * as subscriptions.lock first) or removed: captured with the
		 * folders */
		if (!(mask & IN_ISDIR) && strcmp(name, WATCH_SUBS_FILE) == 0)
			return mask & (IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE) ?
			       HOOK_WATCH_CHANGE : HOOK_WATCH_NOTHING;
		/* the root: folders (".Name") appear, go, are renamed;
		 * "..DOVECOT-TRASHED", Dovecot's other files, maildirsize
		 * and the like are not folders */
		if (!(mask & IN_ISDIR) || name[0] != '.' || name[1] == '.' ||
		    name[1] == '\0')
			return HOOK_WATCH_NOTHING;
		return mask & (IN_CREATE | IN_MOVED_TO) ? HOOK_WATCH_NEW_FOLDER :
		       HOOK_WATCH_CHANGE;
	}
	/* new/ and cur/: a message file; hidden names are no messages */
	if (name[0] == '.' || (mask & IN_ISDIR))
		return HOOK_WATCH_NOTHING;
	return HOOK_WATCH_CHANGE;
}

static void
watch_event(struct hook_watch *w, const struct inotify_event *ev)
{
	const struct wd_ent *e = NULL;

	if (ev->wd >= 0 && (size_t)ev->wd < w->nwd && w->wd[ev->wd].user != NULL)
		e = &w->wd[ev->wd];
	switch (hook_watch_classify(ev->mask, ev->len > 0 ? ev->name : NULL,
				    e != NULL && e->mailbox == NULL)) {
	case HOOK_WATCH_OVERFLOW:
		log_warn("watch: inotify queue overflow: full sync");
		for (size_t i = 0; i < w->npending; i++)
			hook_watch_names_add(&w->pending[i]->names, NULL, false);
		w->full_due = true;
		flush_arm(w);
		break;
	case HOOK_WATCH_GONE:
		if (e != NULL)
			wd_clear(w, ev->wd);
		break;
	case HOOK_WATCH_NEW_FOLDER:
		if (e != NULL) {
			watch_enqueue(w, e->user);
			pending_add(w, e->user, NULL, NULL, false);
		}
		break;
	case HOOK_WATCH_CHANGE:
		/* the rename that put stowd's own save into new/: the index
		 * holds it, a capture would find nothing */
		if (e != NULL && e->mailbox != NULL && (ev->mask & (IN_MOVED_TO | IN_CREATE)) &&
		    hook_own_saves_take(&w->own, e->user, e->mailbox, ev->name))
			break;
		if (e != NULL && e->mailbox != NULL && (ev->mask & (IN_MOVED_FROM | IN_DELETE)))
			hook_moved_note(&w->moved, e->user, e->mailbox, ev->name);
		if (e != NULL)
			pending_add(w, e->user, e->mailbox, ev->name,
				    (ev->mask & IN_DELETE) != 0);
		break;
	case HOOK_WATCH_NOTHING:
		break;
	}
}

static void
read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct hook_watch *w = arg;
	_Alignas(struct inotify_event) char buf[WATCH_READ_BUF];
	ssize_t n;

	(void)what;
	for (int rounds = 0; rounds < 16; rounds++) {
		n = read(fd, buf, sizeof(buf));
		if (n <= 0)
			return;
		for (ssize_t off = 0; off + (ssize_t)sizeof(struct inotify_event) <= n;) {
			const struct inotify_event *ev = (const void *)(buf + off);

			if (off + (ssize_t)sizeof(*ev) + (ssize_t)ev->len > n)
				break;
			watch_event(w, ev);
			off += (ssize_t)sizeof(*ev) + ev->len;
		}
	}
}

/* ---- start, users, the end ---------------------------------------------- */

static void
users_cb(struct hook *h, int err, int fd, void *arg)
{
	struct hook_watch *w = arg;
	char buf[PSEP_NAME_MAX + 1];
	size_t have = 0;
	off_t off = 0;
	ssize_t n;

	(void)h;
	if (err != 0 || fd < 0) {
		log_warn("watch: no user list: %s", strerror(err));
		if (fd >= 0)
			close(fd);
		return;
	}
	while ((n = pread(fd, buf + have, sizeof(buf) - 1 - have, off)) > 0) {
		char *nl;

		off += n;
		have += (size_t)n;
		buf[have] = '\0';
		while ((nl = strchr(buf, '\n')) != NULL) {
			*nl = '\0';
			if (buf[0] != '\0')
				watch_enqueue(w, buf);
			have -= (size_t)(nl + 1 - buf);
			memmove(buf, nl + 1, have + 1);
		}
		if (have == sizeof(buf) - 1)
			have = 0;
	}
	close(fd);
	w->listed = true;
	initial_done(w, false);
}

static void
start_cb(evutil_socket_t fd, short what, void *arg)
{
	struct hook_watch *w = arg;

	(void)fd;
	(void)what;
	w->start_ms = hook_now_ms();
	if (hook_users_request(w->h, users_cb, w) < 0)
		log_warn("watch: cannot ask for the user list");
}

void
hook_watch_start(struct hook *h)
{
	static const struct timeval zero = { 0, 0 };
	struct hook_watch *w;

	if (h->n_replicas == 0 || h->set->replication_capture_delay == 0)
		return;
	w = xcalloc(1, sizeof(*w));
	w->h = h;
	w->ino = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (w->ino < 0) {
		log_warn("watch: inotify_init1: %s: changes by others are found by "
			 "replication_full_sync_interval only", strerror(errno));
		free(w);
		return;
	}
	w->ev_read = event_new(h->base, w->ino, EV_READ | EV_PERSIST, read_cb, w);
	w->ev_flush = evtimer_new(h->base, flush_cb, w);
	w->ev_start = evtimer_new(h->base, start_cb, w);
	if (w->ev_read == NULL || w->ev_flush == NULL || w->ev_start == NULL ||
	    event_add(w->ev_read, NULL) == -1 || evtimer_add(w->ev_start, &zero) == -1)
		fatalx("cannot set up the inotify events");
	h->watch = w;
}

void
hook_watch_event_seen(struct hook *h, const struct psep_repl_cmd *cmd)
{
	if (h->watch != NULL && cmd->op == PSEP_REPL_SAVE)
		hook_own_saves_note(&h->watch->own, cmd->user, cmd->mailbox, cmd->guid);
}

void
hook_watch_user_seen(struct hook *h, const char *user)
{
	struct hook_watch *w = h->watch;

	if (w == NULL || user[0] == '\0' || known_has(w, user))
		return;
	watch_enqueue(w, user);
}

void
hook_watch_free(struct hook *h)
{
	struct hook_watch *w = h->watch;

	if (w == NULL)
		return;
	event_free(w->ev_read);
	event_free(w->ev_flush);
	event_free(w->ev_start);
	close(w->ino);
	for (size_t i = 0; i < w->nwd; i++)
		wd_clear(w, (int)i);
	free(w->wd);
	hook_hset_free(&w->queued);
	for (size_t i = 0; i < w->qlen; i++)
		free(w->queue[(w->qhead + i) % w->qcap]);
	free(w->queue);
	hook_own_saves_free(&w->own);
	hook_moved_free(&w->moved);
	for (size_t i = 0; i < w->npending; i++) {
		if (w->pending[i]->sent)
			w->pending[i]->sent = false;   /* capture_cb frees it */
		else
			pend_free(w->pending[i]);
	}
	free(w->pending);
	for (size_t i = 0; i < w->nknown; i++)
		free(w->known[i]);
	free(w->known);
	free(w);
	h->watch = NULL;
}
