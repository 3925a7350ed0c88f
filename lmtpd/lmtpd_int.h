/* SPDX-License-Identifier: MIT */
/*
 * lmtpd/lmtpd_int.h - internal interfaces of the LMTP front-end: command
 * and argument parsing, the body decoder, the memfd spool, the session
 * state machine with its I/O and backend interfaces, and the process glue.
 *
 * Runs in:  lmtpd (and the unit tests, which drive the session without
 *           sockets through struct lmtp_io_ops / struct lmtp_backend_ops).
 * Trust:    everything a parser here reads comes from the client.
 */
#ifndef STOWD_LMTPD_LMTPD_INT_H
#define STOWD_LMTPD_LMTPD_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "privsep/msg.h"

struct evbuffer;

/* A command line may hold at most this many octets, CRLF included. */
#define LMTP_CMD_MAX 2048u
/* Longest LHLO name kept. */
#define LMTP_LHLO_MAX 256u
/* Largest host name used in replies and trace headers (NUL included). */
#define LMTP_HOST_MAX 256u
/* Octets of a body's start kept for its Message-ID (lmtp_spool_msgid). */
#define LMTP_SPOOL_HEAD 16384u
/* Write buffer of the body spool. */
#define LMTP_SPOOL_BUF (64u * 1024u)
/* Free heap lmtpd keeps instead of trimming it (room for 32 spool buffers) */
#define LMTP_HEAP_KEEP (32u * LMTP_SPOOL_BUF)
/* Stop processing input while this much output is waiting for the client. */
#define LMTP_OUT_MAX (64u * 1024u)

/* ---- configuration (filled from struct policy_settings) --------------- */

struct lmtp_config {
	char host[LMTP_HOST_MAX];     /* in greeting, replies, Received: */
	uint64_t max_message_size;    /* bytes, with CRLF line ends */
	unsigned max_recipients;      /* accepted recipients per transaction */
	unsigned max_line_length;     /* body line, terminator excluded; 0 = none */
	uint64_t command_timeout_ms;  /* client idle limit */
	uint64_t rcpt_timeout_ms;     /* longest wait for a PSEP_RCPT_REP */
	uint64_t deliver_timeout_ms;  /* longest wait for a PSEP_DELIVER_REP */
	unsigned max_connections;     /* per process (lowered to fit the fd
				       * limit); more get 421 4.3.2 */
	unsigned max_connections_per_peer; /* TCP address or unix uid */
};

/* ---- parse.c: commands and their arguments (pure) --------------------- */

enum lmtp_verb {
	LMTP_VERB_UNKNOWN = 0,
	LMTP_VERB_LHLO,
	LMTP_VERB_HELO,
	LMTP_VERB_EHLO,
	LMTP_VERB_MAIL,
	LMTP_VERB_RCPT,
	LMTP_VERB_DATA,
	LMTP_VERB_BDAT,
	LMTP_VERB_RSET,
	LMTP_VERB_NOOP,
	LMTP_VERB_QUIT,
	LMTP_VERB_VRFY,
	LMTP_VERB_STARTTLS,
};

enum lmtp_body_type {
	LMTP_BODY_NONE = 0,   /* no BODY= parameter */
	LMTP_BODY_7BIT,
	LMTP_BODY_8BITMIME,
};

struct lmtp_mail_args {
	char address[PSEP_ADDR_MAX];  /* "" for the null sender */
	bool utf8;                    /* address holds non-ASCII */
	bool has_size;
	uint64_t size;
	enum lmtp_body_type body;
	bool smtputf8;
};

struct lmtp_rcpt_args {
	char address[PSEP_ADDR_MAX];
	bool utf8;
};

/*
 * Split a command line (NUL-terminated, terminator removed) into its verb
 * (case-insensitive) and arguments.  *args_out points into line, after the
 * blanks that follow the verb ("" if none).
 */
enum lmtp_verb lmtp_parse_verb(const char *line, const char **args_out);

/*
 * Parse a path "<...>" at *pp: optional source route (dropped), then a
 * dot-string or quoted local part with an optional @domain or address
 * literal; UTF-8 allowed (validated).  "<>" gives "".  Writes the address
 * without <> to out and advances *pp past '>'.  *utf8_out tells if it holds
 * non-ASCII.  Returns 0, or -1 with errno EINVAL (syntax) or ENAMETOOLONG.
 */
int lmtp_parse_path(const char **pp, char *out, size_t size, bool *utf8_out);

/*
 * Parse the arguments of MAIL ("FROM:<addr> [SIZE=n] [BODY=..] [SMTPUTF8]").
 * Returns 0, or -1 with *reply_out set to the complete error reply (static,
 * no CRLF).  Limits (SIZE against the maximum) are the caller's business.
 */
int lmtp_parse_mail(const char *args, struct lmtp_mail_args *out,
		    const char **reply_out);

/* Same for RCPT ("TO:<addr>"; no parameter is supported; <> refused). */
int lmtp_parse_rcpt(const char *args, struct lmtp_rcpt_args *out,
		    const char **reply_out);

/*
 * Parse "n [LAST]" of BDAT.  Returns 0 or -1 (EINVAL) if the syntax is
 * wrong, in which case the chunk size is unknown.
 */
int lmtp_parse_bdat(const char *args, uint64_t *size_out, bool *last_out);

/* Take the LHLO name (first word, printable ASCII or UTF-8) into out.
 * Returns 0 or -1 (EINVAL, empty or invalid). */
int lmtp_parse_lhlo(const char *args, char *out, size_t size);

/* True if s[0..len) is well-formed UTF-8 (no overlongs, no surrogates). */
bool lmtp_utf8_valid(const unsigned char *s, size_t len);

/* ---- decode.c: DATA / BDAT body decoder (pure) ------------------------ */

enum lmtp_dec_mode {
	LMTP_DEC_DATA = 0,    /* dot-stuffed, ends at CRLF.CRLF */
	LMTP_DEC_BDAT = 1,    /* raw chunks, ended by the caller */
};

enum lmtp_body_err {
	LMTP_BODY_OK = 0,
	LMTP_BODY_TOO_BIG,    /* 552 5.3.4 */
	LMTP_BODY_LONG_LINE,  /* 554 5.6.0 */
	LMTP_BODY_NUL,        /* 554 5.6.0 */
};

/* Receives decoded body bytes (LF line ends).  Never called after an
 * error was detected: the rest of the body is discarded. */
struct lmtp_sink {
	void (*write)(void *ctx, const char *p, size_t n);
	void *ctx;
};

struct lmtp_dec {
	enum lmtp_dec_mode mode;
	uint64_t max_size;        /* 0 = no limit */
	uint64_t max_line;        /* 0 = no limit */
	uint64_t size;            /* decoded bytes passed to the sink */
	uint64_t lfs;             /* LF in them */
	uint64_t line_len;        /* octets of the current line */
	enum lmtp_body_err err;   /* first error seen */
	bool bol;                 /* at the start of a line */
	bool bol_crlf;            /* ...that followed CRLF (or the start) */
	bool dot;                 /* the line so far is one stuffed '.'
				   (only at a CRLF line start) */
	bool cr;                  /* a CR is held back */
	bool done;                /* end of data seen */
};

void lmtp_dec_init(struct lmtp_dec *d, enum lmtp_dec_mode mode, uint64_t max_size,
		   uint64_t max_line);

/*
 * Decode len bytes of in into sink: CRLF -> LF, bare LF kept, bare CR
 * kept, in DATA mode dot-unstuffing and end detection.  Returns the bytes
 * consumed: len, or less in DATA mode when the end was reached (d->done;
 * the rest of in is the next command).
 */
size_t lmtp_dec_feed(struct lmtp_dec *d, const char *in, size_t len,
		     const struct lmtp_sink *sink);

/* End of a BDAT body (LAST): a held-back CR is passed on as a bare CR. */
void lmtp_dec_finish(struct lmtp_dec *d, const struct lmtp_sink *sink);

/* Size with CRLF line ends. */
static inline uint64_t
lmtp_dec_vsize(const struct lmtp_dec *d)
{
	return d->size + d->lfs;
}

/* ---- spool.c: sealed memfd bodies ------------------------------------- */

/* A shared, reference-counted fd: closed when the last reference goes. */
struct lmtp_fdref {
	int fd;
	unsigned refs;
};

/* Adopt fd (one reference).  Caller drops it with lmtp_fdref_put. */
struct lmtp_fdref *lmtp_fdref_new(int fd);
/* Take one more reference; returns r. */
struct lmtp_fdref *lmtp_fdref_get(struct lmtp_fdref *r);
/* Drop one reference (NULL ok) and clear *r; closes the fd on the last. */
void lmtp_fdref_put(struct lmtp_fdref **r);

struct lmtp_spool;

/* Create a spool on a new memfd.  Caller frees with lmtp_spool_free.
 * Returns 0 or -1 with errno (EMFILE, ENOMEM ...). */
int lmtp_spool_open(struct lmtp_spool **out);
/* Append bytes (buffered).  A write error is remembered, see _error. */
void lmtp_spool_write(struct lmtp_spool *sp, const void *p, size_t n);
/* errno of the first failed write, or 0. */
int lmtp_spool_error(const struct lmtp_spool *sp);
/* The Message-ID of the header spooled so far (found within the first
 * LMTP_SPOOL_HEAD octets; folded lines joined; only visible ASCII kept)
 * into out[size], "" if none. */
void lmtp_spool_msgid(const struct lmtp_spool *sp, char *out, size_t size);
/* Sink that writes into sp. */
struct lmtp_sink lmtp_spool_sink(struct lmtp_spool *sp);
/*
 * Flush, rewind and seal the memfd (F_SEAL_SEAL|SHRINK|GROW|WRITE); on
 * success *out holds it (one reference, caller puts it) and *size_out its
 * size.  Returns 0 or -1 with errno.  The spool is empty afterwards.
 */
int lmtp_spool_finish(struct lmtp_spool *sp, struct lmtp_fdref **out,
		      uint64_t *size_out);
/* Free (NULL ok), closing an unfinished memfd, and clear *sp. */
void lmtp_spool_free(struct lmtp_spool **sp);

/* ---- session.c: one LMTP session -------------------------------------- */

struct lmtp_session;

/*
 * How a session talks to its client.  The session reads from and writes
 * to the two evbuffers given to lmtp_session_new; these callbacks only
 * steer the transport.  Neither may free the session.
 */
struct lmtp_io_ops {
	/* Reading from the client should be on or off.  Off while the session
	 * waits for the supervisor or for its output to drain. */
	void (*want_input)(void *ctx, bool on);
	/* The session is over: flush the output, then lmtp_session_free. */
	void (*close)(void *ctx);
	/* Optional: the deadline of the command being read; ms from now, 0 =
	 * none.  When it passes the transport calls lmtp_session_timeout. */
	void (*deadline)(void *ctx, uint64_t ms);
	/* STARTTLS (may be NULL: never offered): from now on the client's
	 * bytes go through TLS; the replies already queued leave in clear
	 * first.  The transport calls lmtp_session_set_buffers with its new
	 * buffers.  0, or -1: nothing changed (the session closes). */
	int (*starttls)(void *ctx);
};

/* One delivery request, all fields borrowed for the call. */
struct lmtp_delivery {
	const char *session;
	const char *address;
	uint32_t rcpt_index;
	uint64_t body_size;
	uint64_t body_vsize;
	const char *prefix;           /* trace headers, LF line ends */
	size_t prefix_len;
	struct lmtp_fdref *body;      /* sealed memfd: take a ref to keep it */
	const char *msgid;            /* the Message-ID for the logs, "" if none */
};

/*
 * How a session reaches the supervisor.  A request that returns 0 must be
 * completed later, exactly once, with lmtp_session_rcpt_done or
 * lmtp_session_deliver_done (never from inside the call), unless end()
 * ran first.  Returning -1 means the request could not be sent: the
 * session answers a 4xx itself.
 */
struct lmtp_backend_ops {
	int (*rcpt)(void *ctx, struct lmtp_session *s, uint32_t cookie,
		    const char *address);
	int (*deliver)(void *ctx, struct lmtp_session *s,
		       const struct lmtp_delivery *d);
	/* The session goes away: forget its pending requests (their replies
	 * are dropped) and tell the supervisor. */
	void (*end)(void *ctx, struct lmtp_session *s);
};

struct lmtp_session_args {
	const struct lmtp_config *cfg;        /* borrowed, outlives the session */
	struct evbuffer *in;                  /* borrowed: bytes from the client */
	struct evbuffer *out;                 /* borrowed: bytes to the client */
	const struct lmtp_io_ops *io;
	void *io_ctx;
	const struct lmtp_backend_ops *backend;
	void *backend_ctx;
	const char *peer;                     /* "[192.0.2.1]" or "local" */
	bool shutting_down;                   /* answer 421 instead of 220 */
	bool tls_offer;                       /* STARTTLS may be used (a tcp:
					       * listener, lmtp_tls, a context) */
	bool tls_required;                    /* lmtp_tls = required: 530
					       * before STARTTLS */
};

/* Create a session (a fresh trace id) and queue the greeting.  Caller
 * frees with lmtp_session_free. */
struct lmtp_session *lmtp_session_new(const struct lmtp_session_args *a);
/* Call backend end() and free everything (NULL ok); clears *s. */
void lmtp_session_free(struct lmtp_session **s);

/* The transport's buffers changed (STARTTLS): borrowed as in
 * lmtp_session_args; empty at the call. */
void lmtp_session_set_buffers(struct lmtp_session *s, struct evbuffer *in,
			      struct evbuffer *out);

/* Trace id, borrowed for the session's life. */
const char *lmtp_session_id(const struct lmtp_session *s);
/* Opaque per-session slot for the backend. */
void *lmtp_session_backend_data(const struct lmtp_session *s);
void lmtp_session_set_backend_data(struct lmtp_session *s, void *data);

/* Input arrived: process as much of it as possible. */
void lmtp_session_input(struct lmtp_session *s);
/* The client closed its side: finish what is buffered, then close. */
void lmtp_session_eof(struct lmtp_session *s);
/* Output fell below LMTP_OUT_MAX again. */
void lmtp_session_output_drained(struct lmtp_session *s);
/* No input within the command timeout: 421 4.4.2 and close. */
void lmtp_session_timeout(struct lmtp_session *s);
/* Graceful stop: 421 now if idle, else after the current transaction. */
void lmtp_session_shutdown(struct lmtp_session *s);
/* True once the session asked to be closed. */
bool lmtp_session_closed(const struct lmtp_session *s);
/*
 * True while the replies queued may wait: a RCPT look-up is out, so the
 * session reads nothing more and its reply follows the queued ones.  A
 * pipelined MAIL, RCPT, DATA then gets its three replies in one write
 * (RFC 2920 lets a server answer a group together; it must not wait for
 * more input, which this does not).
 */
bool lmtp_session_output_may_wait(const struct lmtp_session *s);

/* Completion of backend rcpt() (cookie as given). */
void lmtp_session_rcpt_done(struct lmtp_session *s, uint32_t cookie,
			    const struct dlv_result *r);
/* Completion of backend deliver() for d->rcpt_index; guid may be NULL. */
void lmtp_session_deliver_done(struct lmtp_session *s, uint32_t rcpt_index,
			       const struct dlv_result *r, const char *guid);

/* ---- trace.c: trace id, dates, trace headers (pure) -------------------- */

/* Fill out (>= 17 bytes) with 16 base32 characters from getrandom(2). */
void lmtp_trace_id(char *out, size_t size);
/* RFC 5322 date of t in UTC ("Tue, 05 Mar 2024 10:11:12 +0000"), no
 * time zone files needed.  Returns out. */
char *lmtp_rfc5322_date(int64_t t, char *out, size_t size);

struct lmtp_trace {
	const char *sender;           /* "" = null sender */
	const char *rcpt;
	const char *lhlo;
	const char *peer;
	const char *host;
	const char *session;
	bool smtputf8;
	int64_t time;                 /* seconds since the epoch */
};

/* Build the Return-Path:/Delivered-To:/Received: prefix into out.
 * Returns its length, or -1 (ENOSPC) if it does not fit. */
int lmtp_trace_prefix(const struct lmtp_trace *t, char *out, size_t size);

#endif
