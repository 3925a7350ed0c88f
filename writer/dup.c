/* SPDX-License-Identifier: MIT */
/*
 * writer/dup.c - the duplicate window of LMTP and replicated saves
 * (lmtp_duplicate_window): before an LMTP save the window of the target
 * mailbox is locked and looked up; a message saved there within the window
 * (same Message-ID and body digest) is not saved again, its GUID is
 * answered.  Every save, LMTP or replicated, is recorded.
 *
 * Runs in:  writer-seteuid and writer-child, with the user's credentials.
 * Trust:    the window file is the user's (storage/dupwin.c); any failure
 *           here only turns suppression off for that message (a duplicate
 *           is better than a loss).
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "privsep/privsep.h"
#include "storage/storage.h"
#include "writer/writer_int.h"

/* The directory of mailbox below root_fd (INBOX: a new fd of the root),
 * or -1 with errno. */
static int
box_open(int root_fd, const char *mailbox, uid_t uid)
{
	char dir[STORE_MAX_NAME];

	if (strcmp(mailbox, "INBOX") == 0)
		return fcntl(root_fd, F_DUPFD_CLOEXEC, 3);
	if (store_mailbox_dir(mailbox, dir, sizeof(dir)) < 0)
		return -1;
	return store_walk_step(root_fd, dir, uid, false);
}

void
writer_dup_init(struct writer_dup *d)
{
	memset(d, 0, sizeof(*d));
	d->fd = -1;
}

int
writer_dup_check(struct writer_dup *d, const struct writer_dup_req *q,
		 char guid_out[STORE_GUID_HEX + 1])
{
	int box, found;

	if (q->window_secs == 0 || q->root_fd < 0)
		return 0;
	if (store_dup_key(q->body_fd, q->body_size, d->key) < 0)
		return 0;   /* no Message-ID (or unreadable): never suppressed */
	d->have_key = true;
	box = box_open(q->root_fd, q->mailbox, q->uid);
	if (box < 0)
		return 0;   /* no mailbox yet: nothing to find, record later */
	d->fd = store_dup_open(box);
	close(box);
	if (d->fd < 0) {
		log_warn("user=%s duplicate window not usable: %s", q->user,
			 strerror(errno));
		return 0;
	}
	found = store_dup_find(d->fd, d->key, time(NULL), q->window_secs, guid_out);
	return found == 1 ? 1 : 0;
}

void
writer_dup_record(struct writer_dup *d, const struct writer_dup_req *q,
		  const char *guid)
{
	int box;

	if (q->window_secs == 0)
		return;
	if (!d->have_key) {
		if (store_dup_key(q->body_fd, q->body_size, d->key) < 0)
			return;
		d->have_key = true;
	}
	if (d->fd < 0) {
		box = q->root_fd >= 0 ? box_open(q->root_fd, q->mailbox, q->uid) : -1;
		if (box < 0)
			return;
		d->fd = store_dup_open(box);
		close(box);
		if (d->fd < 0)
			return;
	}
	if (store_dup_record(d->fd, d->key, guid, time(NULL), q->window_secs) < 0)
		log_warn("user=%s duplicate window not updated: %s", q->user,
			 strerror(errno));
}

void
writer_dup_done(struct writer_dup *d)
{
	if (d->fd >= 0)
		close(d->fd);
	d->fd = -1;
}
