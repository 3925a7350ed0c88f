/* SPDX-License-Identifier: MIT */
/*
 * repl-hook/proto/proto_int.h - the lexer shared by the command parser, the
 * response parser and the data-line parsers of the replication protocol
 * (doc/replication-protocol.md §4).  Internal to repl-hook/proto*.c.
 *
 * Runs in:  repld, repl-hook, writer (pure code).
 * Trust:    the input is untrusted; every reader is bounded by lx->end and
 *           every output by its buffer size.
 */
#ifndef STOWD_REPL_PROTO_INT_H
#define STOWD_REPL_PROTO_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define REPL_MODSEQ_MAX 9223372036854775807ull
#define REPL_DATE_MAX 253402300799ull
#define REPL_UID_MAX 4294967295ull
#define REPL_FLAGTEXT_MAX 127u       /* canonical flag string, delta list */
#define REPL_KEYWORD_MAX 64u
#define REPL_SERVER_ID_MAX 64u
#define REPL_USER_MAX 255u
#define REPL_MAILBOX_MAX 254u

/*
 * A cursor over one line.  The first error wins: code ("SYNTAX",
 * "BADNAME") and text are static strings.  limit records a NO [LIMIT]
 * condition, reported only when the whole line is otherwise valid.
 */
struct repl_lex {
	const unsigned char *p;
	const unsigned char *end;
	const char *code;
	const char *text;
	bool limit;
	const char *limit_text;
};

void repl_lex_init(struct repl_lex *lx, const char *s, size_t len);
/* Record an error (the first one is kept); always returns false. */
bool repl_lex_fail(struct repl_lex *lx, const char *code, const char *text);
/* Exactly one SP. */
bool repl_lex_sp(struct repl_lex *lx);
/* At the end of the line. */
bool repl_lex_eol(struct repl_lex *lx);
/* word, matched case-insensitively; no delimiter check. */
bool repl_lex_word(struct repl_lex *lx, const char *word);
/* The next octets up to SP or the end, as a token (no copy). */
size_t repl_lex_token(struct repl_lex *lx, const unsigned char **tok_out);
/* number (§4) in 0..max; what names the field in the error text. */
bool repl_lex_number(struct repl_lex *lx, uint64_t max, uint64_t *out,
		     const char *what);
/* astring: value into out[size] (NUL-terminated); *len_out = the full value
 * length, which may be >= size (then out holds only its start). */
bool repl_lex_astring(struct repl_lex *lx, char *out, size_t size, size_t *len_out);
/* Value-checked astrings. */
bool repl_lex_server_id(struct repl_lex *lx, char out[65]);
bool repl_lex_user(struct repl_lex *lx, char out[256]);
bool repl_lex_mailbox(struct repl_lex *lx, char out[256]);
bool repl_lex_guid(struct repl_lex *lx, char out[33]);
bool repl_lex_hash(struct repl_lex *lx, unsigned char out[32]);
/* flag-list into its canonical string out[128]; over 127 octets sets limit. */
bool repl_lex_flag_list(struct repl_lex *lx, char out[128]);
/* delta-list into "+f -g" (canonical order, no parentheses) out[128]. */
bool repl_lex_delta_list(struct repl_lex *lx, char out[128]);
/* "{" number "}" at the end of the line. */
bool repl_lex_literal(struct repl_lex *lx, uint64_t *size_out);

/* Mailbox-name rules of §4 on a value of len octets; canonicalises INBOX
 * in place (name must be NUL-terminated). */
bool repl_mailbox_check(char *name, size_t len);
/* Character classes of §4. */
bool repl_is_atom_char(unsigned char c);
bool repl_is_tag_char(unsigned char c);

#endif
