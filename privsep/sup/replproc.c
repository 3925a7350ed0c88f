/* SPDX-License-Identifier: MIT */
/*
 * privsep/sup/replproc.c - the replication processes seen from the
 * supervisor: repld (the replica-side front-end, one process, spawned when
 * replication_listen is set) and repl-hook (replica links and journal, one
 * process, spawned when replicas are configured); the events handed to
 * repl-hook and their answers; the user list repl-hook asks for; the TLS
 * contexts both inherit.
 *
 * Runs in:  the supervisor (root).
 * Trust:    messages from repld and repl-hook are validated by
 *           psep_msg_recv; an EVENT_REP must match an event sent to that
 *           very process.  The key file is read here, as root, before fork.
 * Order:    <state_dir>/replication exists (0700, run_user) before
 *           repl-hook starts; a new repl-hook starts only after the old
 *           one exited (both would write the same journals).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "privsep/sup/sup_int.h"
#include "privsep/tls.h"
#ifdef STOWD_HAVE_REPLD
#include "repl-hook/repld/repld.h"
#endif
#ifdef STOWD_HAVE_REPL_HOOK
#include "repl-hook/hook.h"
#endif

#define SUP_MAX_EVENTS 4096      /* events queued for or at repl-hook */
#define EVENT_GRACE_MS 5000      /* beyond writer_timeout + timeout_ms */

struct sup_event_wait {
	TAILQ_ENTRY(sup_event_wait) link;
	struct sup *sup;
	uint64_t id;
	struct sup_child *hook;       /* sent to (referenced), NULL while queued */
	struct psep_event_req *req;   /* until sent */
	size_t req_len;
	int fd;                       /* until sent, or -1 */
	struct event *timer;
	sup_event_fn cb;
	void *arg;
};

static void proc_ready(struct sup_child *c);
static void proc_message(struct sup_child *c, struct psep_msg *m);
static void proc_exited(struct sup_child *c, int wstatus);

static const struct sup_child_ops proc_ops = {
	.ready = proc_ready,
	.message = proc_message,
	.exited = proc_exited,
};

/* ---- finding the processes -------------------------------------------- */

static struct sup_child *
find_role(struct sup *sup, enum psep_role role, bool ready_only)
{
	struct sup_child *c;

	TAILQ_FOREACH(c, &sup->children, link)
		if (c->role == role && !c->retired && !c->dead &&
		    (!ready_only || c->state == PSEP_STATE_READY))
			return c;
	return NULL;
}

struct sup_child *
sup_hook_current(struct sup *sup)
{
	return find_role(sup, PSEP_ROLE_REPL_HOOK, true);
}

bool
sup_hook_expected(struct sup *sup)
{
	if (sup->set.n_replicas == 0)
		return false;
	return !sup->stopping || find_role(sup, PSEP_ROLE_REPL_HOOK, false) != NULL;
}

static bool
repld_wanted(const struct sup *sup)
{
	return sup->set.replication_listen != NULL && sup->set.replication_listen[0] != '\0';
}

bool
sup_repl_procs_ready(struct sup *sup)
{
	if (repld_wanted(sup) && find_role(sup, PSEP_ROLE_REPLD, true) == NULL)
		return false;
	if (sup->set.n_replicas > 0 && sup_hook_current(sup) == NULL)
		return false;
	return true;
}

/* ---- TLS --------------------------------------------------------------- */

static bool
listen_has_tcp(const char *list)
{
	struct policy_listen *conf = NULL;
	const char *why = NULL;
	size_t n = 0, i;
	bool tcp = false;

	if (list == NULL || list[0] == '\0' ||
	    policy_listen_parse(list, &conf, &n, &why) < 0)
		return false;
	for (i = 0; i < n; i++)
		tcp |= conf[i].kind == POLICY_LISTEN_TCP;
	free(conf);
	return tcp;
}

/* The replication TLS files of s, named by their settings in errors. */
static struct psep_tls_files
tls_files(const struct policy_settings *s)
{
	struct psep_tls_files f = {
		.cert = s->replication_tls_cert,
		.key = s->replication_tls_key,
		.ca = s->replication_tls_ca,
		.cert_name = "replication_tls_cert",
		.key_name = "replication_tls_key",
		.ca_name = "replication_tls_ca",
	};

	return f;
}

int
sup_tls_build(const struct policy_settings *s, void **server_out, void **client_out,
	      char *err, size_t errsize)
{
	struct psep_tls_files f = tls_files(s);

	*server_out = NULL;
	*client_out = NULL;
	if (listen_has_tcp(s->replication_listen)) {
		*server_out = psep_tls_server_ctx_new(&f, err, errsize);
		if (*server_out == NULL)
			return -1;
	}
	if (s->n_replicas > 0) {
		*client_out = psep_tls_client_ctx_new(&f, err, errsize);
		if (*client_out == NULL) {
			psep_tls_ctx_free(*server_out);
			*server_out = NULL;
			return -1;
		}
	}
	return 0;
}

void
sup_tls_free(struct sup *sup)
{
	psep_tls_ctx_free(sup->tls_server_ctx);
	psep_tls_ctx_free(sup->tls_client_ctx);
	sup->tls_server_ctx = NULL;
	sup->tls_client_ctx = NULL;
}

/* ---- state directory --------------------------------------------------- */

/* <state_dir>/replication: a real directory (no symlink), mode 0700, owned
 * by run_user.  state_dir itself is created (0755, root) if missing; its
 * mode is the admin's: repl-hook never walks it, it inherits the open
 * replication/ directory.  Returns that fd (the caller closes it) or -1. */
static int
state_dir_prepare(struct sup *sup)
{
	int dfd = -1, rfd = -1, ret = -1;
	struct stat st;

	if (mkdir(sup->set.state_dir, 0755) < 0 && errno != EEXIST)
		goto out;
	dfd = open(sup->set.state_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0)
		goto out;
	if (mkdirat(dfd, "replication", 0700) < 0 && errno != EEXIST)
		goto out;
	rfd = openat(dfd, "replication", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (rfd < 0 || fstat(rfd, &st) < 0)
		goto out;
	if (!S_ISDIR(st.st_mode)) {
		errno = ENOTDIR;
		goto out;
	}
	if (fchown(rfd, sup->run_creds.uid, sup->run_creds.gid) < 0 ||
	    fchmod(rfd, 0700) < 0)
		goto out;
	ret = rfd;
	rfd = -1;
out:
	if (ret < 0)
		log_err("state directory %s/replication: %s", sup->set.state_dir,
			strerror(errno));
	if (rfd >= 0)
		close(rfd);
	if (dfd >= 0)
		close(dfd);
	return ret;
}

/* ---- spawning ---------------------------------------------------------- */

#ifdef STOWD_HAVE_REPLD
static struct repld_args repld_args;
#endif
#ifdef STOWD_HAVE_REPL_HOOK
static struct hook_args hook_args;
#endif

/* Fill sp for repld; 0, or -1 (logged) if this stowd has none. */
static int
repld_setup(struct sup *sup, struct psep_spawn *sp, int *dirfd)
{
	(void)dirfd;
#ifdef STOWD_HAVE_REPLD
	/* The child gets a copy of this memory at fork. */
	repld_args.set = &sup->set;
	repld_args.tls_server_ctx = sup->tls_server_ctx;
	sp->main = repld_main;
	sp->arg = &repld_args;
	return 0;
#else
	log_err("replication_listen is set but this stowd has no repld");
	(void)sup;
	(void)sp;
	return -1;
#endif
}

/* Fill sp for repl-hook, with the replication directory open in *dirfd
 * (kept by the child); 0, or -1 (logged). */
static int
hook_setup(struct sup *sup, struct psep_spawn *sp, int *dirfd)
{
#ifdef STOWD_HAVE_REPL_HOOK
	*dirfd = state_dir_prepare(sup);
	if (*dirfd < 0)
		return -1;
	hook_args.set = &sup->set;
	hook_args.tls_client_ctx = sup->tls_client_ctx;
	hook_args.state_dirfd = *dirfd;
	sp->main = repl_hook_main;
	sp->arg = &hook_args;
	sp->keep_fds = dirfd;
	sp->n_keep_fds = 1;
	return 0;
#else
	(void)state_dir_prepare;
	log_err("replicas are configured but this stowd has no repl-hook");
	(void)sup;
	(void)sp;
	(void)dirfd;
	return -1;
#endif
}

/* Spawn repld or repl-hook (role) as run_user. */
static void
proc_spawn(struct sup *sup, enum psep_role role)
{
	struct psep_spawn sp = { .role = role, .creds = sup->run_creds };
	int dirfd = -1;
	int ret = role == PSEP_ROLE_REPLD ? repld_setup(sup, &sp, &dirfd)
					  : hook_setup(sup, &sp, &dirfd);

	if (ret == 0)
		(void)sup_child_spawn(sup, &sp, &proc_ops, NULL);
	if (dirfd >= 0)
		close(dirfd);
}

void
sup_repl_procs_start(struct sup *sup)
{
	if (sup->stopping)
		return;
	if (repld_wanted(sup) && find_role(sup, PSEP_ROLE_REPLD, false) == NULL)
		proc_spawn(sup, PSEP_ROLE_REPLD);
	/* Not while an old repl-hook still runs: one writer per journal. */
	if (sup->set.n_replicas > 0 &&
	    sup_children_count(sup, PSEP_ROLE_REPL_HOOK, false) == 0)
		proc_spawn(sup, PSEP_ROLE_REPL_HOOK);
}

static void
retire_role(struct sup *sup, enum psep_role role)
{
	struct sup_child *c;

	TAILQ_FOREACH(c, &sup->children, link)
		if (c->role == role && !c->retired)
			sup_child_retire(c);
}

void
sup_repld_retire(struct sup *sup)
{
	retire_role(sup, PSEP_ROLE_REPLD);
	if (sup->stopping)
		sup_pending_drop(&sup->repl_pending, &sup->n_repl_pending);
}

void
sup_hook_retire(struct sup *sup)
{
	retire_role(sup, PSEP_ROLE_REPL_HOOK);
}

/* ---- replication clients ----------------------------------------------- */

static void
repld_send(struct sup_child *c, int fd, const char *listener)
{
	(void)sup_client_send(c, fd, listener);
	close(fd);
}

void
sup_repld_hand(struct sup *sup, int fd, const char *listener)
{
	struct sup_child *c = find_role(sup, PSEP_ROLE_REPLD, true);

	if (c == NULL) {
		sup_pending_push(&sup->repl_pending, &sup->n_repl_pending, fd, listener,
				 "replication");
		return;
	}
	repld_send(c, fd, listener);
}

static void
repld_flush(struct sup *sup, struct sup_child *c)
{
	char listener[SUP_LISTENER_MAX];
	int fd;

	while (!c->dead &&
	       (fd = sup_pending_take(&sup->repl_pending, &sup->n_repl_pending,
				      listener)) >= 0)
		repld_send(c, fd, listener);
}

/* ---- events ------------------------------------------------------------ */

static void
ev_end(struct sup_event_wait *w, enum psep_event_status st, uint32_t acks)
{
	struct sup *sup = w->sup;

	TAILQ_REMOVE(&sup->events, w, link);
	sup->n_events--;
	event_free(w->timer);
	if (w->fd >= 0)
		close(w->fd);
	free(w->req);
	sup_child_unref(&w->hook);
	w->cb(sup, st, acks, w->arg);
	free(w);
	sup_check_stopped(sup);
}

static void
ev_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct sup_event_wait *w = arg;

	(void)fd;
	(void)what;
	log_warn("repl-hook did not answer event id=%016llx user=%s guid=%s in time",
		 (unsigned long long)w->id, w->req != NULL ? w->req->cmd.user : "-",
		 w->req != NULL ? w->req->cmd.guid : "-");
	ev_end(w, PSEP_EV_FAILED, 0);
}

static void
ev_transmit(struct sup_event_wait *w, struct sup_child *hook)
{
	w->hook = hook;
	sup_child_ref(hook);
	/* A failed send kills the hook; its exit fails this wait. */
	(void)sup_child_send(hook, PSEP_EVENT_REQ, w->id, w->req, w->req_len, w->fd);
	if (w->fd >= 0)
		close(w->fd);
	w->fd = -1;
}

int
sup_event_send(struct sup *sup, const struct psep_repl_cmd *cmd, const char *prefix,
	       size_t prefix_len, int body_fd, uint32_t want_acks, uint64_t timeout_ms,
	       sup_event_fn cb, void *arg)
{
	struct sup_event_wait *w;
	struct sup_child *hook;
	uint64_t ms = sup->set.writer_timeout + timeout_ms + EVENT_GRACE_MS;
	struct timeval tv = { .tv_sec = (time_t)(ms / 1000),
			      .tv_usec = (suseconds_t)(ms % 1000) * 1000 };

	if (!sup_hook_expected(sup) || sup->n_events >= SUP_MAX_EVENTS ||
	    prefix_len > PSEP_PREFIX_MAX)
		return -1;
	w = xcalloc(1, sizeof(*w));
	w->fd = -1;
	if (body_fd >= 0 && cmd->op == PSEP_REPL_SAVE) {
		w->fd = fcntl(body_fd, F_DUPFD_CLOEXEC, 3);
		if (w->fd < 0) {
			free(w);
			return -1;
		}
	}
	w->sup = sup;
	w->id = ++sup->next_id;
	w->cb = cb;
	w->arg = arg;
	w->req_len = sizeof(*w->req) + prefix_len;
	w->req = xcalloc(1, w->req_len);
	w->req->cmd = *cmd;
	w->req->want_acks = want_acks;
	w->req->timeout_ms = timeout_ms;
	w->req->prefix_len = (uint32_t)prefix_len;
	if (prefix_len > 0)
		memcpy(w->req->prefix, prefix, prefix_len);
	w->timer = evtimer_new(sup->base, ev_timeout, w);
	if (w->timer == NULL)
		fatalx("evtimer_new");
	evtimer_add(w->timer, &tv);
	TAILQ_INSERT_TAIL(&sup->events, w, link);
	sup->n_events++;
	hook = sup_hook_current(sup);
	if (hook != NULL)
		ev_transmit(w, hook);
	return 0;
}

bool
sup_events_idle(const struct sup *sup)
{
	return sup->n_events == 0;
}

void
sup_events_hook_ready(struct sup *sup)
{
	struct sup_child *hook = sup_hook_current(sup);
	struct sup_event_wait *w;

	if (hook == NULL)
		return;
	TAILQ_FOREACH(w, &sup->events, link)
		if (w->hook == NULL)
			ev_transmit(w, hook);
}

void
sup_events_hook_gone(struct sup *sup, struct sup_child *hook)
{
	struct sup_event_wait *w, *next;
	bool none = !sup_hook_expected(sup);

	for (w = TAILQ_FIRST(&sup->events); w != NULL; w = next) {
		next = TAILQ_NEXT(w, link);
		if (w->hook == hook || (none && w->hook == NULL))
			ev_end(w, PSEP_EV_FAILED, 0);
	}
}

void
sup_events_reply(struct sup *sup, struct sup_child *hook, const struct psep_msg *m)
{
	struct sup_event_wait *w;

	TAILQ_FOREACH(w, &sup->events, link) {
		if (w->id == m->hdr.id && w->hook == hook) {
			ev_end(w, (enum psep_event_status)m->u.event_rep.status,
			       m->u.event_rep.acks);
			return;
		}
	}
	log_debug("late answer from repl-hook for event id=%016llx",
		  (unsigned long long)m->hdr.id);
}

/* ---- users ------------------------------------------------------------- */

/* One user name per line; names the protocol cannot carry are left out. */
static int
users_line(const char *name, void *arg)
{
	size_t n = strlen(name), i;

	for (i = 0; i < n; i++)
		if ((unsigned char)name[i] <= 0x20 || name[i] == 0x7f)
			return 0;
	if (n == 0 || n >= PSEP_NAME_MAX)
		return 0;
	return psep_lines_add(arg, name, n);
}

static void
users_request(struct sup_child *c, const struct psep_msg *m)
{
	struct psep_users_rep rep = { .err = 0 };
	struct psep_lines u = { .fd = -1 };

	if (psep_lines_open(&u, "stowd-users") < 0 ||
	    policy_userdb_foreach(c->sup->userdb, users_line, &u) != 0 ||
	    psep_lines_seal(&u) < 0) {
		rep.err = errno != 0 ? errno : EIO;
		log_err("user list for repl-hook: %s", strerror(rep.err));
		if (u.fd >= 0)
			close(u.fd);
		u.fd = -1;
	}
	rep.count = rep.err == 0 ? u.lines : 0;
	(void)sup_child_send(c, PSEP_USERS_REP, m->hdr.id, &rep, sizeof(rep), u.fd);
	if (u.fd >= 0)
		close(u.fd);
}

/* ---- child callbacks --------------------------------------------------- */

static void
proc_ready(struct sup_child *c)
{
	if (c->role == PSEP_ROLE_REPLD)
		repld_flush(c->sup, c);
	else
		sup_events_hook_ready(c->sup);
	sup_check_ready(c->sup);
}

static void
proc_message(struct sup_child *c, struct psep_msg *m)
{
	bool hook = c->role == PSEP_ROLE_REPL_HOOK;

	switch (m->hdr.type) {
	case PSEP_REPL_REQ:
		sup_repl_request(c, m);
		return;
	case PSEP_EVENT_REP:
		if (hook) {
			sup_events_reply(c->sup, c, m);
			return;
		}
		break;
	case PSEP_USERS_REQ:
		if (hook) {
			users_request(c, m);
			return;
		}
		break;
	default:
		break;
	}
	sup_child_kill(c, "unexpected message type");
}

static void
proc_exited(struct sup_child *c, int wstatus)
{
	(void)wstatus;
	if (c->role == PSEP_ROLE_REPL_HOOK)
		sup_events_hook_gone(c->sup, c);
	sup_child_gone(c);
}
