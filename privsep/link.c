/* SPDX-License-Identifier: MIT */
/*
 * privsep/link.c - a child's link to the supervisor on libevent: bounded
 * ordered send queue, batched validated receive, end of link; and the
 * epoll-only event base of the children.
 *
 * Runs in:  lmtpd, repld, repl-hook.
 * Trust:    only psep_msg_recv() reads the link; EOF or a bad message ends
 *           it (logged here once, then on_close), and so does a send that
 *           fails for another reason than a full socket.
 * Order:    a queued message keeps a copy of its body and a duplicate of its
 *           fd until it was sent; later messages wait behind it.  Queued
 *           messages that carry the same file one after the other (the
 *           recipients of one message body) share one duplicate.  A send
 *           refused with ETOOMANYREFS (too many fds in flight: the socket is
 *           writable, yet refuses) is retried on a 20 ms timer, not on
 *           EV_WRITE.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>

#include "privsep/link.h"
#include "privsep/privsep.h"

#define LINK_RETRY_USEC 20000

/* A duplicate of a queued fd, shared by consecutive messages. */
struct link_dup {
	int fd;
	unsigned refs;
};

struct link_out {
	TAILQ_ENTRY(link_out) entry;
	uint16_t type;
	uint64_t id;
	struct link_dup *dup;                   /* or NULL */
	size_t len;
	unsigned char body[];
};

struct psep_link {
	const struct psep_link_ops *ops;
	void *arg;
	int fd;
	bool dead;
	size_t queue_max;
	struct event *ev_read;
	struct event *ev_write;
	struct event *ev_retry;                 /* after ETOOMANYREFS */
	TAILQ_HEAD(link_outq, link_out) outq;
	size_t out_bytes;
	struct psep_msg msg;
};

/* Worth retrying later: a full socket buffer, or too many fds in flight
 * (the supervisor has not taken the earlier ones yet). */
static bool
again(int err)
{
	return err == EAGAIN || err == EWOULDBLOCK || err == ENOBUFS ||
	       err == EINTR || err == ETOOMANYREFS;
}

static void
out_free(struct link_out *o)
{
	if (o->dup != NULL && --o->dup->refs == 0) {
		close(o->dup->fd);
		free(o->dup);
	}
	free(o);
}

/* The duplicate of fd for a message queued behind last: last's if it is
 * the same file, else a new one.  NULL if dup failed. */
static struct link_dup *
dup_for(struct link_out *last, int fd)
{
	struct link_dup *d;
	struct stat a, b;

	if (last != NULL && last->dup != NULL && fstat(fd, &a) == 0 &&
	    fstat(last->dup->fd, &b) == 0 && a.st_dev == b.st_dev &&
	    a.st_ino == b.st_ino) {
		last->dup->refs++;
		return last->dup;
	}
	d = xmalloc(sizeof(*d));
	d->refs = 1;
	if ((d->fd = fcntl(fd, F_DUPFD_CLOEXEC, 3)) == -1) {
		free(d);
		return NULL;
	}
	return d;
}

/* The link ends: stop watching it and tell the owner once. */
static void
link_die(struct psep_link *link, int err)
{
	link->dead = true;
	event_del(link->ev_read);
	event_del(link->ev_write);
	event_del(link->ev_retry);
	link->ops->on_close(link->arg, err);
}

int
psep_link_send(struct psep_link *link, uint16_t type, uint64_t id,
	       const void *body, size_t len, int fd)
{
	struct link_out *o;

	if (link->dead) {
		errno = EPIPE;
		return -1;
	}
	if (TAILQ_EMPTY(&link->outq)) {
		if (psep_msg_send(link->fd, type, id, body, len, fd) == 0)
			return 0;
		if (!again(errno)) {
			log_err("send %s to supervisor: %s", psep_type_name(type),
				strerrordesc_np(errno));
			return -1;
		}
	}
	if (link->out_bytes + len > link->queue_max) {
		log_warn("queue to supervisor full");
		errno = ENOBUFS;
		return -1;
	}
	o = xmalloc(sizeof(*o) + len);
	o->type = type;
	o->id = id;
	o->len = len;
	o->dup = NULL;
	if (fd >= 0 &&
	    (o->dup = dup_for(TAILQ_LAST(&link->outq, link_outq), fd)) == NULL) {
		free(o);
		return -1;
	}
	if (len > 0)
		memcpy(o->body, body, len);
	TAILQ_INSERT_TAIL(&link->outq, o, entry);
	link->out_bytes += len;
	if (!evtimer_pending(link->ev_retry, NULL))
		event_add(link->ev_write, NULL);
	return 0;
}

static void
link_write_cb(evutil_socket_t fd, short what, void *arg)
{
	struct psep_link *link = arg;
	struct timeval tv = { 0, LINK_RETRY_USEC };
	struct link_out *o;

	(void)fd;
	(void)what;
	while ((o = TAILQ_FIRST(&link->outq)) != NULL) {
		if (psep_msg_send(link->fd, o->type, o->id, o->body, o->len,
				  o->dup != NULL ? o->dup->fd : -1) == -1) {
			if (errno == ETOOMANYREFS) {
				event_del(link->ev_write);
				evtimer_add(link->ev_retry, &tv);
				return;
			}
			if (again(errno))
				return;
			log_err("send %s to supervisor: %s", psep_type_name(o->type),
				strerrordesc_np(errno));
			link_die(link, errno);
			return;
		}
		TAILQ_REMOVE(&link->outq, o, entry);
		link->out_bytes -= o->len;
		out_free(o);
	}
	event_del(link->ev_write);
	if (link->ops->drained != NULL)
		link->ops->drained(link->arg);
}

/* Read one message into link->msg; false when nothing more is to be read
 * now (or the link just died). */
static bool
link_recv_one(struct psep_link *link)
{
	const char *why = NULL;
	int err;

	if (psep_msg_recv(link->fd, PSEP_ROLE_SUPERVISOR, PSEP_STATE_READY,
			  &link->msg, &why) == 0)
		return true;
	err = errno;
	if (err == EAGAIN || err == EWOULDBLOCK || err == EINTR)
		return false;
	if (err == ECONNRESET) {
		log_info("supervisor closed the link, exiting");
		link_die(link, 0);
	} else {
		log_err("bad message from supervisor: %s",
			why ? why : strerrordesc_np(err));
		link_die(link, err);
	}
	return false;
}

static void
link_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct psep_link *link = arg;
	int i;

	(void)fd;
	(void)what;
	if (link->dead)
		return;
	for (i = 0; i < PSEP_LINK_READ_BATCH && !link->dead && link_recv_one(link);
	     i++) {
		link->ops->dispatch(link->arg, &link->msg);
		psep_msg_clear(&link->msg);
	}
	if (link->ops->batch_end != NULL)
		link->ops->batch_end(link->arg);
}

struct psep_link *
psep_link_new(struct event_base *base, int fd, size_t queue_max,
	      const struct psep_link_ops *ops, void *arg)
{
	struct psep_link *link = xcalloc(1, sizeof(*link));
	int fl;

	fl = fcntl(fd, F_GETFL);
	if (fl == -1 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) == -1)
		fatal("fcntl(ipc, O_NONBLOCK)");
	link->ops = ops;
	link->arg = arg;
	link->fd = fd;
	link->queue_max = queue_max;
	link->msg.fd = -1;
	TAILQ_INIT(&link->outq);
	link->ev_read = event_new(base, fd, EV_READ | EV_PERSIST, link_read_cb, link);
	link->ev_write = event_new(base, fd, EV_WRITE | EV_PERSIST, link_write_cb, link);
	link->ev_retry = event_new(base, -1, 0, link_write_cb, link);
	if (link->ev_read == NULL || link->ev_write == NULL ||
	    link->ev_retry == NULL || event_add(link->ev_read, NULL) == -1)
		fatalx("cannot watch the supervisor link");
	return link;
}

void
psep_link_free(struct psep_link **linkp)
{
	struct psep_link *link = *linkp;
	struct link_out *o;

	if (link == NULL)
		return;
	while ((o = TAILQ_FIRST(&link->outq)) != NULL) {
		TAILQ_REMOVE(&link->outq, o, entry);
		out_free(o);
	}
	event_free(link->ev_read);
	event_free(link->ev_write);
	event_free(link->ev_retry);
	psep_msg_clear(&link->msg);
	free(link);
	*linkp = NULL;
}

bool
psep_link_idle(const struct psep_link *link)
{
	return TAILQ_EMPTY(&link->outq);
}

bool
psep_link_dead(const struct psep_link *link)
{
	return link->dead;
}

struct event_base *
psep_event_base_new(void)
{
	struct event_config *ec = event_config_new();
	struct event_base *base;

	if (ec == NULL)
		fatalx("event_config_new");
	event_config_avoid_method(ec, "select");
	event_config_avoid_method(ec, "poll");
	event_config_set_flag(ec, EVENT_BASE_FLAG_NOLOCK | EVENT_BASE_FLAG_IGNORE_ENV);
	base = event_base_new_with_config(ec);
	event_config_free(ec);
	if (base == NULL)
		fatalx("no epoll event base");
	return base;
}
