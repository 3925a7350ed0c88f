/* SPDX-License-Identifier: MIT */
/*
 * repl-hook/proto/parse.c - the command parser of the replication protocol
 * (doc/replication-protocol.md §4, §6, §8): one framed line into a
 * struct repl_command, or the BAD / NO code and text to answer with.
 *
 * Runs in:  repld (lines from the network).
 * Trust:    the line is untrusted; nothing is executed before it parsed
 *           completely; every field is bounded and value-checked here
 *           (and again by psep_msg_recv and storage/).
 * Order:    tag, framing flags, command name, arguments left to right,
 *           end of line, literal presence; a NO [LIMIT] only once the
 *           whole line is valid.
 */
#include <string.h>
#include <strings.h>

#include "repl-hook/proto/proto.h"
#include "repl-hook/proto/proto_int.h"

bool
repl_parse_tag(const char *line, char tag[REPL_TAG_MAX])
{
	static const char *const reserved[] = { "OK", "NO", "BAD", "BYE" };
	size_t n = 0, i;

	tag[0] = '\0';
	while (line[n] != '\0' && line[n] != ' ') {
		if (n >= REPL_TAG_MAX - 1 || !repl_is_tag_char((unsigned char)line[n]))
			return false;
		n++;
	}
	if (n == 0 || line[n] != ' ')
		return false;
	for (i = 0; i < sizeof reserved / sizeof reserved[0]; i++) {
		if (strlen(reserved[i]) == n && strncasecmp(line, reserved[i], n) == 0)
			return false;
	}
	memcpy(tag, line, n);
	tag[n] = '\0';
	return true;
}

/* origin SP modseq SP user SP mailbox SP guid */
static bool
parse_stamped(struct repl_lex *lx, struct psep_repl_cmd *c)
{
	return repl_lex_server_id(lx, c->origin) && repl_lex_sp(lx) &&
	       repl_lex_number(lx, REPL_MODSEQ_MAX, &c->modseq, "bad modseq") &&
	       repl_lex_sp(lx) && repl_lex_user(lx, c->user) && repl_lex_sp(lx) &&
	       repl_lex_mailbox(lx, c->mailbox) && repl_lex_sp(lx) &&
	       repl_lex_guid(lx, c->guid);
}

static bool
parse_save(struct repl_lex *lx, struct psep_repl_cmd *c, uint64_t *lit)
{
	uint64_t uid;

	if (!parse_stamped(lx, c) || !repl_lex_sp(lx) ||
	    !repl_lex_number(lx, REPL_UID_MAX, &uid, "bad uid") || !repl_lex_sp(lx) ||
	    !repl_lex_number(lx, REPL_DATE_MAX, &c->date, "bad date") ||
	    !repl_lex_sp(lx) || !repl_lex_flag_list(lx, c->flags) || !repl_lex_sp(lx) ||
	    !repl_lex_literal(lx, lit))
		return false;
	c->uid_hint = (uint32_t)uid;
	return true;
}

static bool
parse_args(struct repl_lex *lx, struct psep_repl_cmd *c, uint64_t *lit)
{
	switch ((enum psep_repl_op)c->op) {
	case PSEP_REPL_SAVE:
		return parse_save(lx, c, lit);
	case PSEP_REPL_STORE:
		return parse_stamped(lx, c) && repl_lex_sp(lx) &&
		       repl_lex_delta_list(lx, c->flags);
	case PSEP_REPL_EXPUNGE:
		return parse_stamped(lx, c);
	case PSEP_REPL_CREATE:
	case PSEP_REPL_DELETE:
	case PSEP_REPL_SUBSCRIBE:
	case PSEP_REPL_UNSUBSCRIBE:
		return repl_lex_server_id(lx, c->origin) && repl_lex_sp(lx) &&
		       repl_lex_user(lx, c->user) && repl_lex_sp(lx) &&
		       repl_lex_mailbox(lx, c->mailbox);
	case PSEP_REPL_RENAME:
		return repl_lex_server_id(lx, c->origin) && repl_lex_sp(lx) &&
		       repl_lex_user(lx, c->user) && repl_lex_sp(lx) &&
		       repl_lex_mailbox(lx, c->mailbox) && repl_lex_sp(lx) &&
		       repl_lex_mailbox(lx, c->mailbox2);
	case PSEP_REPL_LIST:
		return repl_lex_user(lx, c->user);
	case PSEP_REPL_SYNC:
	case PSEP_REPL_GUIDS:
		return repl_lex_user(lx, c->user) && repl_lex_sp(lx) &&
		       repl_lex_mailbox(lx, c->mailbox);
	case PSEP_REPL_FETCH:
		return repl_lex_user(lx, c->user) && repl_lex_sp(lx) &&
		       repl_lex_mailbox(lx, c->mailbox) && repl_lex_sp(lx) &&
		       repl_lex_guid(lx, c->guid);
	case PSEP_REPL_CAPTURE:
	case PSEP_REPL_CAPTURE_BOXES:
		break;   /* local only: no command word maps to it */
	}
	return repl_lex_fail(lx, "UNKNOWN", "unknown command");
}

static const struct {
	const char *name;
	enum repl_cmd_name kind;
	enum psep_repl_op op;
} commands[] = {
	{ "HELLO", REPL_CMD_HELLO, 0 },
	{ "NOOP", REPL_CMD_NOOP, 0 },
	{ "LOGOUT", REPL_CMD_LOGOUT, 0 },
	{ "SAVE", REPL_CMD_OP, PSEP_REPL_SAVE },
	{ "STORE", REPL_CMD_OP, PSEP_REPL_STORE },
	{ "EXPUNGE", REPL_CMD_OP, PSEP_REPL_EXPUNGE },
	{ "CREATE", REPL_CMD_OP, PSEP_REPL_CREATE },
	{ "DELETE", REPL_CMD_OP, PSEP_REPL_DELETE },
	{ "RENAME", REPL_CMD_OP, PSEP_REPL_RENAME },
	{ "LIST", REPL_CMD_OP, PSEP_REPL_LIST },
	{ "SYNC", REPL_CMD_OP, PSEP_REPL_SYNC },
	{ "GUIDS", REPL_CMD_OP, PSEP_REPL_GUIDS },
	{ "FETCH", REPL_CMD_OP, PSEP_REPL_FETCH },
	{ "SUBSCRIBE", REPL_CMD_OP, PSEP_REPL_SUBSCRIBE },
	{ "UNSUBSCRIBE", REPL_CMD_OP, PSEP_REPL_UNSUBSCRIBE },
};

/* The command name and its arguments, up to the end of the line. */
static bool
parse_body(struct repl_lex *lx, const struct repl_frame *f, struct repl_command *out)
{
	const unsigned char *tok;
	size_t n = repl_lex_token(lx, &tok), i;
	uint64_t v, lit = 0;

	if (n == 0)
		return repl_lex_fail(lx, "SYNTAX", "missing command name");
	for (i = 0; i < sizeof commands / sizeof commands[0]; i++) {
		if (strlen(commands[i].name) == n &&
		    strncasecmp((const char *)tok, commands[i].name, n) == 0)
			break;
	}
	if (i == sizeof commands / sizeof commands[0])
		return repl_lex_fail(lx, "UNKNOWN", "unknown command");
	out->name = commands[i].kind;
	out->cmd.op = (uint32_t)commands[i].op;
	if (out->name == REPL_CMD_HELLO) {
		if (!repl_lex_sp(lx) || !repl_lex_number(lx, 65535, &v, "bad version") ||
		    !repl_lex_sp(lx) || !repl_lex_server_id(lx, out->server_id))
			return false;
		if (v == 0)
			return repl_lex_fail(lx, "SYNTAX", "bad version");
		out->version = (uint32_t)v;
	} else if (out->name == REPL_CMD_OP) {
		if (!repl_lex_sp(lx) || !parse_args(lx, &out->cmd, &lit))
			return false;
	}
	if (!repl_lex_eol(lx))
		return false;
	if (out->cmd.op == PSEP_REPL_SAVE) {
		if (!f->has_literal || f->literal_size != lit)
			return repl_lex_fail(lx, "SYNTAX", "SAVE needs its literal");
		out->cmd.body_size = lit;
	} else if (f->has_literal) {
		return repl_lex_fail(lx, "SYNTAX", "unexpected literal");
	}
	return true;
}

enum repl_parse_result
repl_parse_command(const struct repl_frame *f, struct repl_command *out,
		   const char **code, const char **text)
{
	struct repl_lex lx;
	size_t len, taglen;

	memset(out, 0, sizeof *out);
	*code = "";
	*text = "";
	if (!repl_parse_tag(f->line, out->tag)) {
		*code = "BADTAG";
		*text = "invalid tag";
		return REPL_P_BADTAG;
	}
	if (f->toolong) {
		*code = "TOOLONG";
		*text = "line too long";
		return REPL_P_BAD;
	}
	if (f->literal_toobig) {
		*code = "TOOBIG";
		*text = "literal exceeds MAXLITERAL";
		return REPL_P_BAD;
	}
	if (f->bad_eol) {
		*code = "SYNTAX";
		*text = "line must end in CRLF and contain no NUL";
		return REPL_P_BAD;
	}
	len = f->len < REPL_MAXLINE ? f->len : REPL_MAXLINE;
	taglen = strlen(out->tag) + 1;
	if (len < taglen) {
		*code = "SYNTAX";
		*text = "missing command name";
		return REPL_P_BAD;
	}
	repl_lex_init(&lx, f->line + taglen, len - taglen);
	if (!parse_body(&lx, f, out)) {
		*code = lx.code;
		*text = lx.text;
		return REPL_P_BAD;
	}
	if (lx.limit) {
		*code = "LIMIT";
		*text = lx.limit_text;
		return REPL_P_NO;
	}
	return REPL_P_OK;
}
