/* SPDX-License-Identifier: MIT */
/*
 * tests/lib/lmtpc.h - a small LMTP client for the integration tests.
 *
 * Runs in:  test programs only.
 * Trust:    the server under test may hang, send garbage or close at any
 *           time: every read and write is bounded by the connection's
 *           timeout (poll), so a hung server fails a test instead of
 *           hanging it.  Nothing here aborts; errors are returned.
 * Errors:   functions return 0 or -1 with errno: ETIMEDOUT (timeout),
 *           ECONNRESET (the server closed the connection or reset it),
 *           EPROTO (a reply line that is not "NNN-text" / "NNN text", or a
 *           multi-line reply whose codes differ), EMSGSIZE (a line longer
 *           than LMTPC_LINE_MAX), EINVAL (bad address), or a socket errno.
 */
#ifndef STOWD_TESTS_LMTPC_H
#define STOWD_TESTS_LMTPC_H

#include <stdbool.h>
#include <stddef.h>

#define LMTPC_LINE_MAX 4096          /* longest reply line accepted */
#define LMTPC_REPLY_MAX 8192         /* reply text kept (truncated past it) */
#define LMTPC_DEFAULT_TIMEOUT_MS 10000

struct lmtpc;

/* One reply, possibly multi-line ("250-a" ... "250 z"). */
struct lmtpc_reply {
	int code;                    /* 3-digit code, 0 if none was read */
	char enhanced[16];           /* "x.y.z" of the first line, "" if none */
	char text[LMTPC_REPLY_MAX];  /* all lines without CRLF, joined by "\n" */
	size_t nlines;
};

/*
 * Connect to addr: "unix:/path", "tcp:127.0.0.1:24", "tcp:[::1]:24" or
 * "tcp:host:24" (numeric hosts only).  timeout_ms bounds the connect and
 * is then the default for every read and write (<= 0: the default).
 * Does not read the greeting.  On success *out is a new client, caller
 * frees with lmtpc_free.
 */
int lmtpc_connect(const char *addr, int timeout_ms, struct lmtpc **out);

/* Close and free; accepts NULL and sets *c to NULL. */
void lmtpc_free(struct lmtpc **c);

/* Change the timeout of later reads and writes. */
void lmtpc_set_timeout(struct lmtpc *c, int timeout_ms);
int lmtpc_timeout(const struct lmtpc *c);

/* The socket, borrowed (e.g. to shutdown(SHUT_WR) or poll). */
int lmtpc_fd(const struct lmtpc *c);

/* Send len raw bytes in one write() where the kernel allows it. */
int lmtpc_send(struct lmtpc *c, const void *buf, size_t len);

/* Send a printf-formatted text, raw (no CRLF added). */
int lmtpc_sendf(struct lmtpc *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * Read one line.  The line without its line end (CRLF or a bare LF) is
 * copied NUL-terminated to line (at most size - 1 bytes, the rest of a
 * longer line is dropped); *len_out (may be NULL) gets its full length.
 */
int lmtpc_read_line(struct lmtpc *c, char *line, size_t size, size_t *len_out);

/* Read one complete reply.  On EPROTO r->text holds the offending line. */
int lmtpc_read_reply(struct lmtpc *c, struct lmtpc_reply *r);

/* Read n replies into r[0..n). */
int lmtpc_read_replies(struct lmtpc *c, struct lmtpc_reply *r, size_t n);

/* Send a formatted command line plus CRLF and read its reply. */
int lmtpc_cmd(struct lmtpc *c, struct lmtpc_reply *r, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Read the 220 greeting (any reply; the caller checks the code). */
int lmtpc_greeting(struct lmtpc *c, struct lmtpc_reply *r);
/* "LHLO name" */
int lmtpc_lhlo(struct lmtpc *c, const char *name, struct lmtpc_reply *r);
/* "MAIL FROM:<from>" (from may be "" for the null sender) */
int lmtpc_mail(struct lmtpc *c, const char *from, struct lmtpc_reply *r);
/* "RCPT TO:<to>" */
int lmtpc_rcpt(struct lmtpc *c, const char *to, struct lmtpc_reply *r);

/*
 * Dot-stuff body for DATA: a '.' at the start of the body or after any LF
 * is doubled; if the body does not end with CRLF one is added; ".\r\n" is
 * appended.  Returns a malloc'd buffer (caller frees) and its size in
 * *len_out, or NULL with errno ENOMEM.
 */
char *lmtpc_dot_stuff(const void *body, size_t len, size_t *len_out);

/*
 * DATA: send "DATA", read the reply into *data_reply; if it is 354, send
 * the dot-stuffed body (lmtpc_dot_stuff) and read n replies into r[0..n)
 * (n = number of accepted recipients).  Returns 0 when every expected
 * reply was read, whatever their codes.
 */
int lmtpc_data(struct lmtpc *c, const void *body, size_t len,
	       struct lmtpc_reply *data_reply, struct lmtpc_reply *r, size_t n);

/*
 * BDAT: send "BDAT <len>[ LAST]" and the chunk in one write, then read
 * n replies into r[0..n) (1 for a chunk that is not the last, the number
 * of accepted recipients for LAST).
 */
int lmtpc_bdat(struct lmtpc *c, const void *chunk, size_t len, bool last,
	       struct lmtpc_reply *r, size_t n);

/*
 * Wait until the server closes the connection (EOF or reset).  Returns 0
 * once closed; -1 with ETIMEDOUT if it is still open after timeout_ms, or
 * EPROTO if the server sent more bytes instead (they are kept for the next
 * read).
 */
int lmtpc_wait_closed(struct lmtpc *c, int timeout_ms);

/* Text for a failed call: "timeout", "connection closed", strerror. */
const char *lmtpc_strerror(int err);

#endif
