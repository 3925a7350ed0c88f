/* SPDX-License-Identifier: MIT */
/*
 * privsep/sup/replproc.c - the replication processes seen from the
 * supervisor: repld (the replica-side front-end, one process, spawned when
 * replication_listen is set) and repl-hook (replica links and journal, one
 * process, spawned when replicas are configured); the user list repl-hook
 * asks for; the TLS files only these two inherit.  The events handed to
 * repl-hook are in events.c.
 *
 * Runs in:  the supervisor (root).
 * Trust:    messages from repld and repl-hook are validated by
 *           psep_msg_recv (EVENT_REP: see events.c).  The TLS files are
 *           opened here, as root, and never read: the fds go to repld and
 *           repl-hook only (keep_fds of their spawn), which build their
 *           own contexts; a check child parses them at start and reload.
 * Order:    <state_dir>/replication exists (0700, run_user) before
 *           repl-hook starts; a new repl-hook starts only after the old
 *           one exited (both would write the same journals).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "privsep/sup/sup_int.h"
#include "privsep/tls.h"

static void proc_ready(struct sup_child *c);
static void proc_message(struct sup_child *c, struct psep_msg *m);
static void proc_exited(struct sup_child *c, int wstatus);

static const struct sup_child_ops proc_ops = {
	.ready = proc_ready,
	.message = proc_message,
	.exited = proc_exited,
};

/* ---- finding the processes -------------------------------------------- */

static bool
repld_wanted(const struct sup *sup)
{
	return sup->set.replication_listen != NULL && sup->set.replication_listen[0] != '\0';
}

bool
sup_repl_procs_ready(struct sup *sup)
{
	if (repld_wanted(sup) && sup_child_find(sup, PSEP_ROLE_REPLD, true) == NULL)
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
sup_tls_build(const struct policy_settings *s, struct sup_tls *out, char *err,
	      size_t errsize)
{
	struct psep_tls_files f = tls_files(s);

	psep_tls_fds_init(&out->fds);
	out->server = listen_has_tcp(s->replication_listen);
	out->client = s->n_replicas > 0;
	if (!out->server && !out->client)
		return 0;
	if (psep_tls_open(&f, &out->fds, err, errsize) < 0)
		return -1;
	if (psep_tls_check(&out->fds, &f, out->server, out->client, err, errsize) < 0) {
		psep_tls_close(&out->fds);
		return -1;
	}
	return 0;
}

void
sup_tls_free(struct sup *sup)
{
	psep_tls_close(&sup->tls_fds);
	sup->tls_server = false;
	sup->tls_client = false;
}

void
sup_tls_take(struct sup *sup, struct sup_tls *t)
{
	sup_tls_free(sup);
	sup->tls_fds = t->fds;
	sup->tls_server = t->server;
	sup->tls_client = t->client;
	psep_tls_fds_init(&t->fds);
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

/* Spawn repld or repl-hook (role) as run_user; repl-hook keeps the
 * replication directory open (its entry argument names it); the one that
 * needs a TLS context keeps the three TLS files open (the entry argument
 * names them too). */
static void
proc_spawn(struct sup *sup, enum psep_role role)
{
	struct psep_spawn sp = { .role = role, .creds = sup->run_creds };
	bool tls = role == PSEP_ROLE_REPLD ? sup->tls_server : sup->tls_client;
	int keep[4], n = 0;
	int dirfd = -1;

	if (role == PSEP_ROLE_REPL_HOOK) {
		dirfd = state_dir_prepare(sup);
		if (dirfd < 0)
			return;
		keep[n++] = dirfd;
	}
	if (tls && sup->tls_fds.key >= 0) {
		keep[n++] = sup->tls_fds.cert;
		keep[n++] = sup->tls_fds.key;
		keep[n++] = sup->tls_fds.ca;
	}
	sp.keep_fds = keep;
	sp.n_keep_fds = (size_t)n;
	(void)sup_child_spawn(sup, &sp, &proc_ops, NULL);
	if (dirfd >= 0)
		close(dirfd);
}

void
sup_repl_procs_start(struct sup *sup)
{
	if (sup->stopping)
		return;
	if (repld_wanted(sup) && sup_child_find(sup, PSEP_ROLE_REPLD, false) == NULL)
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
	struct sup_child *c = sup_child_find(sup, PSEP_ROLE_REPLD, true);

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
	case PSEP_STATS_REP:
	case PSEP_RESYNC_REP:
		if (hook) {
			sup_stats_hook_reply(c->sup, m);
			return;
		}
		break;
	case PSEP_WATCH_REQ:
		if (hook) {
			sup_repl_watch(c, m);
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
	if (c->role == PSEP_ROLE_REPL_HOOK) {
		sup_events_hook_gone(c->sup, c);
		sup_stats_hook_gone(c->sup);
	}
	sup_child_gone(c);
}
