/* SPDX-License-Identifier: MIT */
/*
 * tests/lib/replc.h - a small blocking client of the stowd replication
 * protocol (doc/replication-protocol.md) for the integration tests: UNIX
 * socket (optionally connected by a child with another uid, to test the
 * SO_PEERCRED check) or TCP with mutual TLS; raw sends, line and literal
 * reads with a timeout, and "send a command, collect its data lines until
 * the tagged reply".
 *
 * Runs in:  test programs only.
 * Trust:    the server under test may hang, close or send garbage: every
 *           read is bounded by a timeout; nothing here aborts.
 * Errors:   0 or -1 with errno: ETIMEDOUT, ECONNRESET (closed by the
 *           server, or a TLS alert/EOF), EPROTO (TLS handshake failed, a
 *           reply that does not fit), EMSGSIZE (line over REPLC_LINE_MAX).
 */
#ifndef STOWD_TESTS_REPLC_H
#define STOWD_TESTS_REPLC_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define REPLC_LINE_MAX 8192
#define REPLC_MAX_DATA 32
#define REPLC_TIMEOUT_MS 10000

struct replc;

/* Connect to a UNIX socket as this process.  Reads nothing. */
int replc_connect_unix(const char *path, struct replc **out);

/* Connect to a UNIX socket from a child running as uid/gid (the socket
 * is handed back, so the server sees that uid in SO_PEERCRED). */
int replc_connect_unix_as(const char *path, uid_t uid, gid_t gid,
			  struct replc **out);

/*
 * TCP to 127.0.0.1:port, TLS handshake with cert/key as client
 * certificate (both NULL: none), verifying the server against ca and the
 * IP 127.0.0.1.  Reads nothing after the handshake.  -1 with EPROTO if
 * the handshake fails (the OpenSSL error goes to stderr).
 */
int replc_connect_tls(unsigned port, const char *cert, const char *key,
		      const char *ca, struct replc **out);

/* Close (TLS close_notify first) and free; accepts NULL, clears *c. */
void replc_free(struct replc **c);

/* Timeout of later reads (default REPLC_TIMEOUT_MS). */
void replc_set_timeout(struct replc *c, int timeout_ms);

/* Send len raw bytes / a printf-formatted text (no CRLF added). */
int replc_send(struct replc *c, const void *data, size_t len);
int replc_sendf(struct replc *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* One line without its CRLF into line[size] (NUL-terminated). */
int replc_line(struct replc *c, char *line, size_t size);

/* Exactly n octets (malloc'd, NUL added) and then the CRLF after them. */
int replc_literal(struct replc *c, size_t n, char **data_out);

/* Wait up to timeout_ms for the server to close; 0 if it did (EOF or
 * reset), -1 (ETIMEDOUT) if it is still open.  Data still arriving is
 * discarded. */
int replc_wait_closed(struct replc *c, int timeout_ms);

/*
 * Read the greeting into line (may be NULL) and check that it starts
 * with "* OK STOWD-REPL "; *maxliteral_out (may be NULL) gets its
 * MAXLITERAL.  -1 with EPROTO if the first line is anything else (it is
 * still copied to line).
 */
int replc_greeting(struct replc *c, char *line, size_t size,
		   unsigned long long *maxliteral_out);

/* Greeting, then "h0 HELLO 1 <id>"; 0 if answered "h0 OK ...". */
int replc_start(struct replc *c, const char *id);

/* The lines of one command. */
struct replc_resp {
	char tagged[REPLC_LINE_MAX];       /* "tag OK [..] text", "" if none */
	size_t ndata;                      /* untagged lines before it */
	char data[REPLC_MAX_DATA][1024];   /* "* tag ..." and "* BAD/BYE" lines */
	char *literal;                     /* last data literal (malloc'd) */
	size_t literal_len;
};

/*
 * Send "<tag> <fmt...>\r\n" (plus len bytes of literal and CRLF when
 * literal is not NULL: fmt must end in "{len}") and read lines until the
 * one starting with "<tag> "; data lines ending in "{N}" have their
 * literal read.  -1 if the connection ends first (r->data holds what came,
 * e.g. a "* BYE").  Free r->literal with replc_resp_clear.
 */
int replc_cmd(struct replc *c, struct replc_resp *r, const char *tag,
	      const void *literal, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));

/* Read lines until one starts with "<tag> " (for commands already sent). */
int replc_collect(struct replc *c, struct replc_resp *r, const char *tag);

void replc_resp_clear(struct replc_resp *r);

/* True if the tagged reply is "<tag> <status>[ <code>]..." where code
 * (may be NULL) is the start of the response code, e.g. "[UID". */
bool replc_tagged_is(const struct replc_resp *r, const char *status,
		     const char *code);

#endif
