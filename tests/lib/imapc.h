/* SPDX-License-Identifier: MIT */
/*
 * tests/lib/imapc.h - a tiny synchronous IMAP client for the integration
 * tests (plain TCP on loopback, against tests/lib/imapd.h's Dovecot).
 *
 * Runs in:  test programs only.
 * Trust:    the server may hang or close at any time: every read and write
 *           is bounded by the connection's timeout (poll), so a hung server
 *           fails a test instead of hanging it.  Nothing here aborts.
 * Model:    one command at a time: send "<tag> <command>", collect every
 *           untagged line ("* ...", literals inlined) up to the tagged
 *           completion.  Mailbox names given to the helpers are sent as
 *           quoted strings; sets ("1:*", "2,4") and flag lists as given.
 * Errors:   functions return 0 or -1 with errno: ETIMEDOUT (timeout),
 *           ECONNRESET (closed by the server), EPROTO (a line that is not
 *           IMAP, a BYE, or a completion other than OK where the helper
 *           needs OK: EACCES for a NO, EINVAL for a BAD), EMSGSIZE (a line
 *           or literal past IMAPC_LINE_MAX), or a socket errno.  The
 *           helpers that need OK print the failed completion to stderr.
 */
#ifndef STOWD_TESTS_IMAPC_H
#define STOWD_TESTS_IMAPC_H

#include <stdbool.h>
#include <stddef.h>

#define IMAPC_LINE_MAX (1024 * 1024)  /* longest response line, literals included */
#define IMAPC_DEFAULT_TIMEOUT_MS 10000
#define IMAPC_FLAGS_MAX 256

struct imapc;

enum imapc_status {
	IMAPC_NONE = 0,            /* no completion read */
	IMAPC_OK,
	IMAPC_NO,
	IMAPC_BAD,
};

/*
 * The response to one command.  Zero it before the first use; every
 * command frees what it held before filling it; imapc_resp_free at the end.
 */
struct imapc_resp {
	enum imapc_status status;
	char text[1024];           /* tagged line after "<tag> OK " (truncated) */
	char **lines;              /* untagged lines, "* " and CRLF removed */
	size_t nlines;
};

/* After SELECT / EXAMINE; -1 for a value the server did not send. */
struct imapc_mailbox {
	long exists;
	long recent;
	long uidvalidity;
	long uidnext;
	bool read_only;            /* [READ-ONLY] */
};

/* One message of FETCH (UID FLAGS). */
struct imapc_msg {
	unsigned seq;
	unsigned uid;
	char flags[IMAPC_FLAGS_MAX];   /* inside the parentheses, as sent */
};

/* One line of LIST. */
struct imapc_list_item {
	char attrs[128];           /* "\HasNoChildren" ... */
	char sep;                  /* hierarchy separator, '\0' for NIL */
	char name[256];            /* unquoted */
};

/* GETQUOTAROOT: the first quota root's resources, -1 when absent. */
struct imapc_quota {
	char root[128];
	long storage_used;         /* KiB, as IMAP counts */
	long storage_limit;
	long message_used;
	long message_limit;
};

/*
 * Connect to addr ("tcp:127.0.0.1:143", or "unix:/path"), read the
 * greeting and require "* OK" or "* PREAUTH".  timeout_ms bounds the
 * connect and is then the default for every read and write (<= 0: the
 * default).  On success *out is a new client (caller frees, imapc_free).
 */
int imapc_connect(const char *addr, int timeout_ms, struct imapc **out);

/* Close and free; accepts NULL and sets *c to NULL. */
void imapc_free(struct imapc **c);

void imapc_set_timeout(struct imapc *c, int timeout_ms);

/* The greeting line without "* " (borrowed, valid until imapc_free). */
const char *imapc_greeting(const struct imapc *c);

/* Free the lines of r and zero it. */
void imapc_resp_free(struct imapc_resp *r);

/* The first untagged line of r starting with prefix, NULL if none. */
const char *imapc_resp_find(const struct imapc_resp *r, const char *prefix);

/*
 * Send "<tag> " + the formatted command + CRLF and read the response into
 * *r (any status).  Returns 0 when a tagged completion was read.
 */
int imapc_cmd(struct imapc *c, struct imapc_resp *r, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* imapc_cmd, requiring OK; the response is dropped. */
int imapc_ok(struct imapc *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* LOGIN with quoted user and password; LOGOUT (expects the BYE). */
int imapc_login(struct imapc *c, const char *user, const char *password);
int imapc_logout(struct imapc *c);

/* SELECT (or EXAMINE if read_only); *mb may be NULL. */
int imapc_select(struct imapc *c, const char *mailbox, bool read_only,
		 struct imapc_mailbox *mb);

/*
 * [UID] STORE set op (flags): op "FLAGS", "+FLAGS", "-FLAGS" (".SILENT"
 * allowed); flags like "\\Seen \\Flagged $Important".
 */
int imapc_store(struct imapc *c, bool uid, const char *set, const char *op,
		const char *flags);

/* EXPUNGE; UID EXPUNGE set (UIDPLUS) when set is not NULL. */
int imapc_expunge(struct imapc *c, const char *uid_set);

/* [UID] COPY / MOVE set mailbox. */
int imapc_copy(struct imapc *c, bool uid, const char *set, const char *mailbox);
int imapc_move(struct imapc *c, bool uid, const char *set, const char *mailbox);

int imapc_create(struct imapc *c, const char *mailbox);
int imapc_delete(struct imapc *c, const char *mailbox);
int imapc_rename(struct imapc *c, const char *from, const char *to);
int imapc_subscribe(struct imapc *c, const char *mailbox);
int imapc_unsubscribe(struct imapc *c, const char *mailbox);

/*
 * LIST "" pattern (lsub: LSUB).  *items_out is malloc'd (caller frees with
 * free()).  Returns the count or -1.
 */
int imapc_list(struct imapc *c, bool lsub, const char *pattern,
	       struct imapc_list_item **items_out);

/* STATUS mailbox (item): item "MESSAGES", "UIDNEXT", "UNSEEN", ... */
int imapc_status(struct imapc *c, const char *mailbox, const char *item,
		 long *value_out);

/*
 * [UID] FETCH set (UID FLAGS), in the order received.  *msgs_out is
 * malloc'd (caller frees with free()).  Returns the count or -1.
 */
int imapc_fetch_flags(struct imapc *c, bool uid, const char *set,
		      struct imapc_msg **msgs_out);

/* GETQUOTAROOT mailbox: the STORAGE and MESSAGE resources. */
int imapc_getquotaroot(struct imapc *c, const char *mailbox, struct imapc_quota *q);

/*
 * APPEND mailbox [(flags)] {len} with a synchronizing literal: waits for
 * the "+" continuation before sending msg.  flags may be NULL.
 * *uid_out (may be NULL) gets the APPENDUID uid, 0 if none was sent.
 */
int imapc_append(struct imapc *c, const char *mailbox, const char *flags,
		 const void *msg, size_t len, unsigned *uid_out);

#endif
