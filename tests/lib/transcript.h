/* SPDX-License-Identifier: MIT */
/*
 * tests/lib/transcript.h - run an LMTP transcript (a .lmtp file of
 * tests/integration/cases) against a server through tests/lib/lmtpc.
 *
 * Runs in:  test programs only.
 *
 * Format, one item per line (a trailing CR of a line is ignored):
 *
 *   # text        comment; blank lines are ignored too
 *   C: text       send text + CRLF ("C:" alone sends an empty line)
 *   C+ text       send text, no CRLF
 *   C* N text     send text N times, no CRLF (bodies, long lines)
 *   S: text       the next reply's first line starts with text
 *   S~ regex      the next reply matches the POSIX extended regex; the
 *                 reply's lines are joined with "\n" and matched with
 *                 REG_NEWLINE, so ^ and $ anchor at every line
 *   !timeout MS   read timeout for the following S lines
 *   !close        the server closes the connection (EOF) before the timeout
 *   !config K = V a setting this case needs (read by the program that picks
 *                 the stowd instance, see transcript_config; ignored here)
 *   !anything     handed to ctx->directive (e.g. checks on disk)
 *
 * In C lines: \r \n \t \\ \0 and \xNN are escapes.  In every line ${NAME}
 * is replaced by the value of variable NAME (in S~ lines with regex
 * metacharacters escaped); an unknown variable is an error.  S: lines have
 * no escapes; "S: 250 " and "S: 250" differ by the space.
 *
 * Pipelining: consecutive C lines form one block that is sent with a
 * single write before the next S or ! line is processed.  Each S line
 * consumes exactly one reply (all lines of a multi-line reply).
 */
#ifndef STOWD_TESTS_TRANSCRIPT_H
#define STOWD_TESTS_TRANSCRIPT_H

#include <stddef.h>

#include "tests/lib/lmtpc.h"

#define TRANSCRIPT_ERR_MAX 1024
#define TRANSCRIPT_SEND_MAX (16u << 20)   /* largest C block, bytes */

struct transcript_var {
	const char *name;
	const char *value;
};

struct transcript_ctx;

/*
 * Handler for "!" directives the runner does not know.  line is the
 * directive with variables substituted ("!new-messages 1 0").  Returns 0,
 * or -1 after writing a message to err (errsize bytes).  It may replace
 * ctx->conn (e.g. a reconnect); the runner reads ctx->conn again.
 */
typedef int (*transcript_directive_fn)(struct transcript_ctx *ctx,
				       const char *line, char *err,
				       size_t errsize);

struct transcript_ctx {
	struct lmtpc *conn;                  /* borrowed */
	const struct transcript_var *vars;   /* borrowed, nvars entries */
	size_t nvars;
	transcript_directive_fn directive;   /* NULL: unknown directive = error */
	void *arg;                           /* for directive */
};

/*
 * Run the transcript in text (name is used in messages, e.g. the file
 * name).  Returns 0 if every line passed; -1 with the first failure in
 * err as "NAME:LINE: expected ..., got ..." (errsize bytes).
 */
int transcript_run_text(struct transcript_ctx *ctx, const char *name,
			const char *text, char *err, size_t errsize);

/* Read path and run it like transcript_run_text. */
int transcript_run_file(struct transcript_ctx *ctx, const char *path,
			char *err, size_t errsize);

/*
 * Check a transcript without a server (ctx->conn unused, may be NULL):
 * line syntax, escapes, variables, regexes, C block sizes.  Directives
 * other than !timeout are not interpreted.  Same returns as running it.
 */
int transcript_lint_text(struct transcript_ctx *ctx, const char *name,
			 const char *text, char *err, size_t errsize);
int transcript_lint_file(struct transcript_ctx *ctx, const char *path,
			 char *err, size_t errsize);

/*
 * The "!config" lines of a transcript file as one string of "K = V\n"
 * lines ("" if none), in *out (caller frees).  Returns 0 or -1 with errno.
 */
int transcript_config(const char *path, char **out);

/* Read a whole file into a NUL-terminated malloc'd buffer (caller frees);
 * *len_out (may be NULL) gets its size.  Returns 0 or -1 with errno. */
int transcript_read_file(const char *path, char **out, size_t *len_out);

#endif
