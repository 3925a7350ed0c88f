/* SPDX-License-Identifier: MIT */
/*
 * lmtpd/session_int.h - the inside of struct lmtp_session, shared by
 * session.c (life cycle, input loop, replies), command.c (commands) and
 * body.c (DATA/BDAT bodies, deliveries and their replies).
 *
 * Runs in:  lmtpd.
 * State:    phase says what the session waits for.  Only CMD, DATA and BDAT
 *           read input; WAIT_RCPT and WAIT_DELIVER leave pipelined input
 *           buffered until the supervisor answered, so replies go out in
 *           command order.
 */
#ifndef STOWD_LMTPD_SESSION_INT_H
#define STOWD_LMTPD_SESSION_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "lmtpd/lmtpd_int.h"
#include "privsep/msg.h"

enum lmtp_phase {
	LMTP_PHASE_CMD = 0,        /* reading command lines */
	LMTP_PHASE_DATA,           /* reading a DATA body */
	LMTP_PHASE_BDAT,           /* reading a BDAT chunk */
	LMTP_PHASE_WAIT_RCPT,      /* a RCPT look-up is out */
	LMTP_PHASE_WAIT_DELIVER,   /* delivery results are out */
	LMTP_PHASE_CLOSED,         /* close requested, nothing more is done */
};

struct lmtp_rcpt {
	char *address;             /* owned, without <> */
	struct dlv_result result;  /* valid when done */
	char guid[PSEP_GUID_MAX];
	bool done;
};

struct lmtp_session {
	const struct lmtp_config *cfg;
	char id[PSEP_SESSION_MAX];
	char peer[64];
	char lhlo[LMTP_LHLO_MAX];
	struct evbuffer *in;
	struct evbuffer *out;
	const struct lmtp_io_ops *io;
	void *io_ctx;
	const struct lmtp_backend_ops *be;
	void *be_ctx;
	void *be_data;

	enum lmtp_phase phase;
	bool lhlo_done;
	bool shutdown;             /* 421 once no transaction is open */
	bool eof;                  /* the client closed its side */
	bool in_run;               /* inside session_run: no recursion */
	bool reading;              /* last want_input() value */
	bool out_full;             /* waiting for output to drain */
	bool discard_line;         /* skipping the rest of a long line */
	bool cmd_deadline;         /* a command line is awaited with a deadline */
	bool tls_offer;            /* STARTTLS may be used */
	bool tls_required;         /* ... and must be, before other commands */
	bool tls_active;           /* STARTTLS done */
	unsigned transactions;     /* for the log */

	/* transaction (MAIL .. end of body) */
	bool have_mail;
	bool smtputf8;
	bool used_bdat;            /* a BDAT chunk was accepted */
	char *sender;              /* owned, "" = null sender */
	struct lmtp_rcpt *rcpts;   /* accepted, in RCPT order */
	size_t n_rcpts;
	size_t cap_rcpts;
	uint32_t rcpt_cookie;      /* of the look-up in flight */
	char pending_rcpt[PSEP_ADDR_MAX];
	struct lmtp_dec dec;
	struct lmtp_spool *spool;  /* NULL until DATA/first BDAT */
	uint64_t bdat_size;        /* octets of the current chunk */
	uint64_t bdat_left;        /* ...still to read */
	bool bdat_last;
	const char *bdat_reply;    /* error reply for the chunk, or NULL */
	bool bdat_reset;           /* reset the transaction after the chunk */
	size_t next_reply;         /* first recipient not answered yet */
};

/* session.c */
void lmtp_session_run(struct lmtp_session *s);
void lmtp_session_close(struct lmtp_session *s);
void lmtp_reply(struct lmtp_session *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* command.c */
void lmtp_cmd_line(struct lmtp_session *s, const char *line);
void lmtp_tx_reset(struct lmtp_session *s);

/* body.c */
/* Feed buffered input to the body; returns true if the phase changed. */
bool lmtp_body_input(struct lmtp_session *s);
/* A supervisor result made safe to print (code range, no control bytes). */
void lmtp_result_norm(const struct dlv_result *in, struct dlv_result *out);

#endif
