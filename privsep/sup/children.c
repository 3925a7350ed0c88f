/* SPDX-License-Identifier: MIT */
/*
 * privsep/sup/children.c - the supervisor's table of child processes:
 * spawn, HELLO, receive (validated), send, kill, reap.
 *
 * Runs in:  the supervisor.
 * Trust:    a child that sends a message the spec table rejects, that
 *           closes its socket, or cannot take a message, is killed.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "privsep/sup/sup_int.h"

static void child_free(struct sup_child **cp);

double
sup_child_age(const struct sup_child *c)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - c->started.tv_sec) +
	       (double)(now.tv_nsec - c->started.tv_nsec) / 1e9;
}

void
sup_child_kill(struct sup_child *c, const char *why)
{
	if (c->dead)
		return;
	log_warn("killing child role=%s pid=%ld: %s", psep_role_name(c->role),
		 (long)c->pid, why);
	c->killed = true;
	/* a child the template has not yet named is killed when it is
	 * (template.c); pid 0 would be the supervisor's process group */
	if (c->pid > 0)
		kill(c->pid, SIGKILL);
	if (c->ev != NULL)
		event_del(c->ev);
}

int
sup_child_send(struct sup_child *c, uint16_t type, uint64_t id, const void *body,
	       size_t len, int fd)
{
	if (c->dead) {
		errno = EPIPE;
		return -1;
	}
	if (psep_msg_send(c->ipc, type, id, body, len, fd) < 0) {
		int saved = errno;

		sup_child_kill(c, saved == EAGAIN ? "IPC queue full" : "IPC send failed");
		errno = saved;
		return -1;
	}
	return 0;
}

void
sup_child_retire(struct sup_child *c)
{
	c->retired = true;
	if (c->state == PSEP_STATE_READY) {
		c->state = PSEP_STATE_STOPPING;
		(void)sup_child_send(c, PSEP_SHUTDOWN, 0, NULL, 0, -1);
	} else if (c->state == PSEP_STATE_NEW) {
		sup_child_kill(c, "retired before it was ready");
	}
}

static void
child_hello(struct sup_child *c, struct psep_msg *m)
{
	struct psep_hello rep = { .version = PSEP_PROTO_VERSION,
				  .role = PSEP_ROLE_SUPERVISOR,
				  .generation = c->generation };

	if (m->u.hello.role != (uint32_t)c->role) {
		sup_child_kill(c, "HELLO with the wrong role");
		return;
	}
	if (sup_child_send(c, PSEP_HELLO_REP, m->hdr.id, &rep, sizeof(rep), -1) < 0)
		return;
	c->state = PSEP_STATE_READY;
	log_debug("child ready role=%s pid=%ld", psep_role_name(c->role), (long)c->pid);
	if (c->ops->ready != NULL)
		c->ops->ready(c);
}

static void
child_read(evutil_socket_t fd, short what, void *arg)
{
	struct sup_child *c = arg;
	struct psep_msg m;
	const char *why;
	int i;

	(void)fd;
	(void)what;
	/* A bounded batch per wake-up keeps one child from starving others. */
	/* Nothing more is read from a child once it was killed (a protocol
	 * violation): what it queued after it is not trusted. */
	for (i = 0; i < 64 && !c->dead && !c->killed; i++) {
		if (psep_msg_recv(c->ipc, c->role, c->state, &m, &why) < 0) {
			if (errno == EAGAIN)
				return;
			if (errno == ECONNRESET) {
				event_del(c->ev);
				return;
			}
			c->refused = true;
			sup_child_kill(c, why);
			return;
		}
		switch (m.hdr.type) {
		case PSEP_HELLO_REQ:
			child_hello(c, &m);
			break;
		case PSEP_LOG:
			log_from_child(psep_role_name(c->role), c->pid,
				       (enum psep_log_level)m.u.log.level,
				       m.u.log.text, m.u.log.text_len);
			break;
		default:
			/* a request done: an answer, or a front-end's request
			 * (not the one-way notes) */
			if (m.hdr.type != PSEP_SESSION_END &&
			    m.hdr.type != PSEP_WRITE_STAMP)
				c->served++;
			c->ops->message(c, &m);
			break;
		}
		psep_msg_clear(&m);
	}
}

struct sup_child *
sup_child_new(struct sup *sup, enum psep_role role, uid_t uid, int ipc,
	      const struct sup_child_ops *ops, void *owner)
{
	struct sup_child *c = xcalloc(1, sizeof(*c));

	c->sup = sup;
	c->role = role;
	c->state = PSEP_STATE_NEW;
	c->generation = sup->generation;
	c->ops = ops;
	c->owner = owner;
	clock_gettime(CLOCK_MONOTONIC, &c->started);
	c->uid = psep_role_get(role)->uid_kind == PSEP_UID_ROOT ? 0 : uid;
	c->ipc = ipc;
	c->ev = event_new(sup->base, c->ipc, EV_READ | EV_PERSIST, child_read, c);
	if (c->ev == NULL || event_add(c->ev, NULL) < 0)
		fatalx("event_add for child");
	TAILQ_INSERT_TAIL(&sup->children, c, link);
	return c;
}

struct sup_child *
sup_child_spawn(struct sup *sup, const struct psep_spawn *sp,
		const struct sup_child_ops *ops, void *owner)
{
	const struct sup_entry *e = &sup->entries[sp->role];
	struct psep_spawn full = *sp;
	struct sup_child *c;
	pid_t pid;
	int ipc;

	if (e->main == NULL) {
		log_err("this stowd has no entry for role=%s", psep_role_name(sp->role));
		return NULL;
	}
	full.main = e->main;
	full.arg = e->arg(sup, sp);
	pid = psep_spawn_child(&full, &ipc);
	if (pid < 0) {
		log_err("fork for role=%s failed: %s", psep_role_name(sp->role),
			strerror(errno));
		return NULL;
	}
	c = sup_child_new(sup, sp->role, sp->creds.uid, ipc, ops, owner);
	c->pid = pid;
	log_debug("spawned role=%s pid=%ld generation=%u", psep_role_name(c->role),
		  (long)c->pid, c->generation);
	return c;
}

void
sup_child_ref(struct sup_child *c)
{
	c->refs++;
}

void
sup_child_unref(struct sup_child **cp)
{
	struct sup_child *c = *cp;

	if (c == NULL)
		return;
	*cp = NULL;
	if (--c->refs < 0)
		child_free(&c);
}

static void
child_free(struct sup_child **cp)
{
	struct sup_child *c = *cp;

	if (c == NULL)
		return;
	*cp = NULL;
	if (c->ev != NULL)
		event_free(c->ev);
	if (c->ipc >= 0)
		close(c->ipc);
	free(c);
}

static void
log_exit(const struct sup_child *c, int wstatus)
{
	if (WIFSIGNALED(wstatus))
		log_warn("child died role=%s pid=%ld signal=%d (%s)%s",
			 psep_role_name(c->role), (long)c->pid, WTERMSIG(wstatus),
			 strsignal(WTERMSIG(wstatus)),
			 WTERMSIG(wstatus) == SIGSYS ? " forbidden syscall" : "");
	else if (WEXITSTATUS(wstatus) != 0 || !c->retired)
		log_warn("child exited role=%s pid=%ld status=%d",
			 psep_role_name(c->role), (long)c->pid, WEXITSTATUS(wstatus));
	else
		log_debug("child exited role=%s pid=%ld", psep_role_name(c->role),
			  (long)c->pid);
}

void
sup_child_exit(struct sup_child *c, int wstatus)
{
	struct sup *sup = c->sup;

	TAILQ_REMOVE(&sup->children, c, link);
	c->dead = true;
	event_del(c->ev);
	log_exit(c, wstatus);
	sup_stats_exit(sup, c->role, wstatus);
	c->ops->exited(c, wstatus);
	c->refs--;
	if (c->refs < 0)
		child_free(&c);
}

/* A reaped process in no entry: a writer child whose pid the template has
 * not told yet (template.c takes it when it does); the oldest is
 * overwritten. */
static void
orphan_put(struct sup *sup, pid_t pid, int wstatus)
{
	unsigned i = sup->orphan_next++ % SUP_ORPHANS;

	sup->orphans[i].pid = pid;
	sup->orphans[i].wstatus = wstatus;
}

void
sup_children_reap(struct sup *sup)
{
	int wstatus;
	pid_t pid;

	while ((pid = waitpid(-1, &wstatus, WNOHANG)) > 0) {
		struct sup_child *c;

		TAILQ_FOREACH(c, &sup->children, link)
			if (c->pid == pid)
				break;
		if (c == NULL)
			orphan_put(sup, pid, wstatus);
		else
			sup_child_exit(c, wstatus);
	}
}

bool
sup_child_orphan_take(struct sup *sup, pid_t pid, int *wstatus)
{
	for (size_t i = 0; i < SUP_ORPHANS; i++)
		if (sup->orphans[i].pid == pid) {
			*wstatus = sup->orphans[i].wstatus;
			sup->orphans[i].pid = 0;
			return true;
		}
	return false;
}

unsigned
sup_children_count(struct sup *sup, enum psep_role role, bool live_only)
{
	struct sup_child *c;
	unsigned n = 0;

	TAILQ_FOREACH(c, &sup->children, link)
		if (c->role == role && (!live_only || !c->retired))
			n++;
	return n;
}

struct sup_child *
sup_child_find(struct sup *sup, enum psep_role role, bool ready_only)
{
	struct sup_child *c;

	TAILQ_FOREACH(c, &sup->children, link)
		if (c->role == role && !c->retired && !c->dead &&
		    (!ready_only || c->state == PSEP_STATE_READY))
			return c;
	return NULL;
}
