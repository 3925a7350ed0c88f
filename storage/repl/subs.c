/* SPDX-License-Identifier: MIT */
/*
 * storage/repl/subs.c - the subscription operations of the replication
 * protocol (doc/replication-protocol.md §8.13): SUBSCRIBE and UNSUBSCRIBE
 * change Dovecot's subscriptions file in the Maildir root as Dovecot does
 * (storage/subscriptions.c: under subscriptions.lock, a new file renamed
 * over the old one).
 *
 * Runs in:  a writer, with the user's credentials, under its seccomp list.
 * Trust:    the Maildir is user-controlled: the root is opened by
 *           storage/walk.c (no symlink followed, owner checked); the
 *           subscriptions file is read with the bounds of store_subs_read;
 *           the lock is waited for SUBS_LOCK_WAIT seconds at most, so a
 *           lock the user holds costs a retry, not a writer.
 * Order:    the change under subscriptions.lock (fsync of the new file,
 *           rename), then fsync of the root.
 * Syscalls: those of walk.c, storage/subscriptions.c and storage/dotlock.c.
 */
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>

#include "storage/repl/repl_int.h"

#define SUBS_SEP '.'                /* the Maildir++ hierarchy separator */
#define SUBS_LOCK_WAIT 5            /* seconds for subscriptions.lock */

int
store_repl_subscribe(const struct store_repl_ctx *c, const char *mailbox,
		     bool subscribe, struct store_repl_result *res,
		     const char **what_out)
{
	const char *what = "check request", *name = mailbox;
	char dir[NAME_MAX + 1];
	bool changed = false;
	int root = -1, ret = -1, saved;

	memset(res, 0, sizeof(*res));
	if (!store_repl_ctx_ok(c) || store_repl_mailbox_check(mailbox, dir) < 0) {
		errno = EINVAL;
		goto out;
	}
	if (dir[0] == '\0')
		name = "INBOX";
	what = "open Maildir";
	root = store_root_open(c->mail_base, c->mail_rel, c->uid, subscribe);
	if (root < 0) {
		ret = errno == ENOENT ? 0 : -1;   /* nothing to unsubscribe */
		goto out;
	}
	what = "subscriptions";
	if (store_subs_set_wait(root, SUBS_SEP, name, subscribe, SUBS_LOCK_WAIT,
				&changed) < 0)
		goto out;
	what = "fsync";
	if (changed && fsync(root) < 0)
		goto out;
	res->effective = changed;
	ret = 0;
out:
	saved = errno;
	if (root >= 0)
		close(root);
	errno = saved;
	if (what_out != NULL)
		*what_out = ret < 0 ? what : NULL;
	return ret;
}
