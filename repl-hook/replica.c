/* SPDX-License-Identifier: MIT */
/*
 * repl-hook/replica.c - the bottom of repl-hook: the accessors of struct
 * hook and struct hook_replica that the connection and sync layers use, the
 * clock, and each replica's recorded server id (<NAME>.id).
 *
 * Runs in:  repl-hook.  Files: openat/read/write/fsync/renameat under the
 *           replication state directory (an fd from the supervisor).
 * Trust:    <NAME>.id is ours but checked on load (psep_server_id_ok); an
 *           invalid one is ignored (logged), the next greeting rewrites it.
 * Order:    a new id is written to <NAME>.id.tmp, fsynced, renamed over
 *           <NAME>.id, then the directory is fsynced.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "privsep/privsep.h"
#include "repl-hook/core_int.h"

#define REPLICA_SCAN_MAX 100000u   /* journal entries read per question */

uint64_t
hook_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

const char *
hook_replica_name(const struct hook_replica *r)
{
	return r->cfg->name;
}

const char *
hook_replica_server_id(const struct hook_replica *r)
{
	return r->server_id;
}

struct hook *
hook_replica_hook(struct hook_replica *r)
{
	return r->h;
}

void **
hook_replica_sync_slot(struct hook_replica *r)
{
	return &r->sync_slot;
}

int
hook_state_dirfd(const struct hook *h)
{
	return h->dirfd;
}

const char *
hook_server_id(const struct hook *h)
{
	return h->server_id;
}

const struct policy_settings *
hook_settings(const struct hook *h)
{
	return h->set;
}

struct event_base *
hook_event_base(struct hook *h)
{
	return h->base;
}

/* ---- <NAME>.id --------------------------------------------------------- */

void
hook_replica_load_server_id(struct hook_replica *r)
{
	char path[96], buf[PSEP_ID_MAX + 2];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s.id", r->cfg->name);
	fd = openat(r->h->dirfd, path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd == -1)
		return;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n > 0 && buf[n - 1] == '\n')
		n--;
	if (n > 0)
		buf[n] = '\0';
	if (n <= 0 || memchr(buf, '\0', (size_t)n) != NULL ||
	    !psep_server_id_ok(buf, PSEP_ID_MAX)) {
		log_warn("replica=%s ignoring an invalid %s", r->cfg->name, path);
		return;
	}
	memcpy(r->server_id, buf, (size_t)n);
	r->server_id[n] = '\0';
}

void
hook_replica_set_server_id(struct hook_replica *r, const char *id)
{
	char tmp[96], path[96], buf[PSEP_ID_MAX + 1];
	int fd, n;

	if (strcmp(r->server_id, id) == 0)
		return;
	if (r->server_id[0] != '\0')
		log_warn("replica=%s server id changed from %s to %s", r->cfg->name,
			 r->server_id, id);
	xstrlcpy(r->server_id, id, sizeof(r->server_id));
	snprintf(path, sizeof(path), "%s.id", r->cfg->name);
	snprintf(tmp, sizeof(tmp), "%s.id.tmp", r->cfg->name);
	n = snprintf(buf, sizeof(buf), "%s\n", id);
	fd = openat(r->h->dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC |
		    O_NOFOLLOW, 0600);
	if (fd == -1 || write(fd, buf, (size_t)n) != n || fsync(fd) == -1 ||
	    renameat(r->h->dirfd, tmp, r->h->dirfd, path) == -1 ||
	    fsync(r->h->dirfd) == -1)
		log_err("replica=%s cannot record its server id in %s: %s",
			r->cfg->name, path, strerrordesc_np(errno));
	if (fd != -1)
		close(fd);
}

void
hook_replica_sync_ended(struct hook_replica *r, bool ok, bool full, uint64_t start_ms,
			uint64_t mailboxes, uint64_t repairs)
{
	if (ok && full) {
		r->sync_last = (uint64_t)time(NULL);
		r->sync_ms = hook_now_ms() - start_ms;
		r->sync_repairs = repairs;
	}
	r->repairs_total += repairs;
	r->h->notify->sync_done(r, ok, mailboxes, repairs);
}

uint64_t
hook_replica_unacked_each(struct hook_replica *r,
			  void (*cb)(const struct journal_entry *e, void *arg), void *arg)
{
	struct journal_entry *e = xcalloc(1, sizeof(*e));
	uint64_t off = journal_acked(r->j), n = 0;

	while (n < REPLICA_SCAN_MAX && journal_read(r->j, off, e) == 0) {
		n++;
		cb(e, arg);
		off = e->next_off;
	}
	free(e);
	return n;
}

struct folder_unacked {
	const char *user;
	uint64_t n;
};

static void
folder_unacked_cb(const struct journal_entry *e, void *arg)
{
	struct folder_unacked *f = arg;

	if (strcmp(e->user, f->user) == 0 &&
	    (strncmp(e->line, "CREATE ", 7) == 0 || strncmp(e->line, "DELETE ", 7) == 0 ||
	     strncmp(e->line, "RENAME ", 7) == 0))
		f->n++;
}

uint64_t
hook_replica_user_folder_unacked(struct hook_replica *r, const char *user)
{
	struct folder_unacked f = { .user = user };

	(void)hook_replica_unacked_each(r, folder_unacked_cb, &f);
	return f.n;
}

struct store_unacked {
	const char *user, *mailbox;
	uint64_t n;
};

static void
store_unacked_cb(const struct journal_entry *e, void *arg)
{
	struct store_unacked *f = arg;

	if (strncmp(e->line, "STORE ", 6) == 0 && strcmp(e->user, f->user) == 0 &&
	    strcmp(e->mailbox, f->mailbox) == 0)
		f->n++;
}

uint64_t
hook_replica_mailbox_store_unacked(struct hook_replica *r, const char *user,
				   const char *mailbox)
{
	struct store_unacked f = { .user = user, .mailbox = mailbox };

	(void)hook_replica_unacked_each(r, store_unacked_cb, &f);
	return f.n;
}
