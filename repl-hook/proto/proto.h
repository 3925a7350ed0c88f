/* SPDX-License-Identifier: MIT */
/*
 * repl-hook/proto/proto.h - the replication protocol codec shared by both ends
 * (doc/replication-protocol.md): framing of lines and counted literals,
 * the command parser (server side), the response parser (client side),
 * and the formatters for commands, data lines and states.
 *
 * Runs in:  repld (parses commands from the network: untrusted input),
 *           repl-hook (parses replica responses: untrusted input), and the
 *           writer (formats LIST/SYNC/GUIDS data).  Pure code apart from
 *           the framer, which reads an evbuffer and writes literals into
 *           memfds.
 * Trust:    every length is bounded by REPL_MAXLINE / the framer's
 *           maxliteral; nothing is executed before it parsed completely.
 */
#ifndef STOWD_REPL_PROTO_H
#define STOWD_REPL_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/buffer.h>

#include "privsep/msg.h"
#include "storage/repl/repl.h"

#define REPL_VERSION 1u
#define REPL_MAXLINE 8192u            /* whole line incl. CRLF */
#define REPL_MAXINFLIGHT 64u
#define REPL_MAX_BADS 20u             /* then * BYE [PROTOCOL] */
#define REPL_TAG_MAX 33               /* 1..32 + NUL */
#define REPL_LITERAL_EXTRA 65536u     /* MAXLITERAL = lmtp_max_message_size + this */

/* ---- framing ------------------------------------------------------------ */

/* One line, and its literal if the line ended in {N}. */
struct repl_frame {
	char line[REPL_MAXLINE + 1];  /* without CRLF; NUL-terminated */
	size_t len;
	bool toolong;                 /* over MAXLINE: line holds only its first
				       * octets (enough for the tag) */
	bool bad_eol;                 /* bare LF, a CR not before LF, or a NUL
				       * inside the line */
	bool has_literal;
	uint64_t literal_size;
	bool literal_toobig;          /* N > maxliteral: the data was read and
				       * discarded, literal_fd is -1 */
	int literal_fd;               /* sealed memfd (F_SEAL_SHRINK|GROW|WRITE|
				       * SEAL) with the N octets, or -1; the
				       * caller owns it */
};

struct repl_framer;

/* maxliteral: the largest literal kept; larger ones are discarded. */
struct repl_framer *repl_framer_new(uint64_t maxliteral);
void repl_framer_free(struct repl_framer **f);

enum repl_frame_result {
	REPL_F_FATAL = -1,            /* framing lost (* BYE [FRAMING]): *why set */
	REPL_F_MORE = 0,              /* need more input; in was consumed */
	REPL_F_FRAME = 1,             /* *out holds one frame */
};

/*
 * Take octets from in.  Lines are split at LF; a line over REPL_MAXLINE is
 * discarded up to its LF (toolong), and its literal, if it announced one,
 * too.  A literal marker whose digits do not form a number <= 2^63-1 is
 * fatal; so are two octets after the literal that are not CRLF.  Literal
 * data goes into a memfd as it arrives (memory stays bounded).  Returns a
 * frame at a time; call again until REPL_F_MORE.
 */
enum repl_frame_result repl_framer_next(struct repl_framer *f, struct evbuffer *in,
					struct repl_frame *out, const char **why);

/* What repl_framer_read does with the frames of one connection. */
struct repl_frame_sink {
	/* True while the reader may take another frame (window, liveness). */
	bool (*more)(void *arg);
	/* One frame (its literal_fd is the callee's to close or keep). */
	void (*frame)(void *arg, struct repl_frame *f);
	void *arg;
};

/*
 * The read loop both ends of a replication connection share: take frames
 * from in into *out, each handed to sink->frame, while sink->more allows.
 * Returns REPL_F_MORE (input used up), REPL_F_FATAL (framing lost, *why
 * set) or REPL_F_FRAME (stopped by sink->more; input may be left).
 */
enum repl_frame_result repl_framer_read(struct repl_framer *f, struct evbuffer *in,
					struct repl_frame *out,
					const struct repl_frame_sink *sink,
					const char **why);

/* True while a line or literal is partly read (for the stalled-input
 * timeout). */
bool repl_framer_busy(const struct repl_framer *f);

/* ---- commands (server side) -------------------------------------------- */

enum repl_cmd_name {
	REPL_CMD_HELLO = 1,
	REPL_CMD_NOOP,
	REPL_CMD_LOGOUT,
	REPL_CMD_OP,                  /* one of the psep_repl_op in cmd */
};

struct repl_command {
	char tag[REPL_TAG_MAX];
	enum repl_cmd_name name;
	uint32_t version;             /* HELLO */
	char server_id[PSEP_ID_MAX];  /* HELLO */
	struct psep_repl_cmd cmd;     /* REPL_CMD_OP: op, origin, modseq, user,
				       * mailbox(2), guid, uid_hint, date,
				       * flags (canonical for SAVE, the delta
				       * list without parentheses for STORE),
				       * body_size = literal size; peer "" */
};

enum repl_parse_result {
	REPL_P_OK = 0,
	REPL_P_BAD = 1,               /* tag BAD [code] text (tag valid) */
	REPL_P_BADTAG = 2,            /* * BAD [BADTAG] invalid tag */
	REPL_P_NO = 3,                /* tag NO [code] text (e.g. LIMIT) */
};

/*
 * Parse one frame's line (f->toolong and f->bad_eol are handled by the
 * caller: TOOLONG / SYNTAX with the tag from repl_parse_tag).  The literal
 * must be present exactly for SAVE (and its size is put in body_size).
 * Checks the whole grammar and value rules of §4 and §8.  On REPL_P_BAD /
 * REPL_P_NO, *code ("SYNTAX", "BADNAME", "UNKNOWN", "LIMIT") and *text are
 * static strings and out->tag is set.
 */
enum repl_parse_result repl_parse_command(const struct repl_frame *f,
					  struct repl_command *out,
					  const char **code, const char **text);

/* The tag at the start of line (up to SP) into tag[REPL_TAG_MAX]: true if
 * it is a valid tag (§4) followed by SP. */
bool repl_parse_tag(const char *line, char tag[REPL_TAG_MAX]);

/* ---- responses (client side) ------------------------------------------- */

enum repl_resp_kind {
	REPL_R_GREETING = 1,          /* * OK STOWD-REPL ... */
	REPL_R_TAGGED,                /* tag OK|NO|BAD [code] text */
	REPL_R_DATA,                  /* * tag BODY */
	REPL_R_UNTAGGED,              /* * BAD|BYE [code] text */
};

struct repl_response {
	enum repl_resp_kind kind;
	char tag[REPL_TAG_MAX];       /* TAGGED, DATA */
	enum psep_repl_status status; /* TAGGED; UNTAGGED: BAD, or NO for BYE */
	bool bye;                     /* UNTAGGED BYE */
	char code[48];                /* "UID 42", "" if none */
	const char *text;             /* points into the line */
	const char *body;             /* DATA: after "* tag " */
	/* GREETING */
	bool version1;                /* version 1 offered */
	char server_id[PSEP_ID_MAX];
	uint64_t maxline, maxliteral, maxinflight;
};

/* Parse one response line (no CRLF); pointers refer into line.  Returns 0,
 * or -1 if it is not a valid response. */
int repl_parse_response(const char *line, struct repl_response *out);

/* Data bodies.  Each returns 0, or -1 if malformed. */
/* "MAILBOX name state" */
int repl_parse_mailbox_data(const char *body, char mailbox[PSEP_NAME_MAX],
			    struct store_mbox_state *st);
/* "SYNC name state" */
int repl_parse_sync_data(const char *body, char mailbox[PSEP_NAME_MAX],
			 struct store_mbox_state *st);
/* "GUID g uid modseq origin (flags)" or "EXPUNGED g" */
int repl_parse_guid_data(const char *body, struct store_msg_info *m);
/* "FETCH g uid date (flags) {N}": the literal follows in the frame */
int repl_parse_fetch_data(const char *body, struct store_msg_info *m,
			  uint64_t *literal_size);

/*
 * A data line of change capture's folder answer (PSEP_REPL_CAPTURE_BOXES,
 * local only): "CREATE name", "DELETE name", "RENAME from to",
 * "SUBSCRIBE name", "UNSUBSCRIBE name", names as astrings (§4).
 * *op_out gets the event (PSEP_REPL_CREATE ...), mailbox
 * the name, mailbox2 the new name of a RENAME ("" otherwise).  Returns 0,
 * or -1 if malformed (an unknown word, a bad name).
 */
int repl_parse_boxes_data(const char *body, uint32_t *op_out,
			  char mailbox[PSEP_NAME_MAX], char mailbox2[PSEP_NAME_MAX]);

/* ---- formatting -------------------------------------------------------- */

/* v as an atom if it is one, else as a quoted string.  Returns the length
 * written (NUL added), or 0 if it does not fit. */
size_t repl_fmt_astring(char *out, size_t size, const char *v);

/* "MESSAGES n GUIDHASH h FLAGHASH h HIGHESTMODSEQ n UIDVALIDITY n UIDNEXT n" */
size_t repl_fmt_state(char *out, size_t size, const struct store_mbox_state *st);

/* Data bodies (no "* tag ", no CRLF): "MAILBOX name state", "SYNC name
 * state", "GUID ..." / "EXPUNGED g", "FETCH g uid date (flags) {N}". */
size_t repl_fmt_mailbox_data(char *out, size_t size, const char *mailbox,
			     const struct store_mbox_state *st);
size_t repl_fmt_sync_data(char *out, size_t size, const char *mailbox,
			  const struct store_mbox_state *st);
size_t repl_fmt_guid_data(char *out, size_t size, const struct store_msg_info *m);
size_t repl_fmt_fetch_data(char *out, size_t size, const struct store_msg_info *m,
			   uint64_t literal_size);

/* A data line of change capture's folder answer (see
 * repl_parse_boxes_data): word ("CREATE", "RENAME", "SUBSCRIBE" ...), then a and,
 * for RENAME, b as astrings.  Returns the length, or 0 if it does not fit
 * or would not parse back. */
size_t repl_fmt_boxes_data(char *out, size_t size, const char *word, const char *a,
			   const char *b);

/*
 * An event or query as a command line without tag and CRLF, from cmd
 * ("SAVE origin modseq user mailbox guid uid date (flags) {N}" with N =
 * literal_size, "STORE origin modseq user mailbox guid (deltas)",
 * "EXPUNGE ...", "CREATE origin user mailbox", "DELETE ...",
 * "RENAME origin user old new", "SUBSCRIBE origin user mailbox",
 * "UNSUBSCRIBE ...", "LIST user", "SYNC user mailbox",
 * "GUIDS user mailbox", "FETCH user mailbox guid").  Returns the length or
 * 0 if it does not fit.
 */
size_t repl_fmt_command(char *out, size_t size, const struct psep_repl_cmd *cmd,
			uint64_t literal_size);

/* Lower-case hex of n octets into out (2n+1 bytes); parse back: 0 / -1. */
void repl_hex(const unsigned char *in, size_t n, char *out);
int repl_unhex(const char *in, unsigned char *out, size_t n);

#endif
