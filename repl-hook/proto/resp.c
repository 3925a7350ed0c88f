/* SPDX-License-Identifier: MIT */
/*
 * repl-hook/proto/resp.c - the response side of the replication protocol
 * (doc/replication-protocol.md §5, §6.1, §8.9-8.12): greeting, tagged and
 * untagged status lines, data lines and their bodies; and the data lines
 * of change capture's folder answer (§7.6, local only).
 *
 * Runs in:  repl-hook (lines from replicas; capture lines from a writer).
 * Trust:    replica responses are untrusted: every field is bounded and
 *           value-checked; a malformed line is -1, never a crash.
 */
#include <string.h>
#include <strings.h>

#include "repl-hook/proto/proto.h"
#include "repl-hook/proto/proto_int.h"

/* text = *(%x20-7E); we accept an empty text. */
static bool
text_ok(const char *s)
{
	for (; *s != '\0'; s++) {
		if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
			return false;
	}
	return true;
}

/* "[" code-name *(SP code-arg) "]" into code (without brackets). */
static bool
parse_code(struct repl_lex *lx, char code[48])
{
	const unsigned char *s;
	size_t n;

	if (lx->p >= lx->end || *lx->p != '[')
		return false;
	s = ++lx->p;
	while (lx->p < lx->end && ((*lx->p >= 'A' && *lx->p <= 'Z') ||
				   (*lx->p >= '0' && *lx->p <= '9') || *lx->p == '-'))
		lx->p++;
	if (lx->p == s)
		return false;
	while (lx->p < lx->end && *lx->p == ' ') {
		const unsigned char *a = ++lx->p;

		while (lx->p < lx->end && repl_is_atom_char(*lx->p))
			lx->p++;
		if (lx->p == a)
			return false;
	}
	if (lx->p >= lx->end || *lx->p != ']')
		return false;
	n = (size_t)(lx->p - s);
	lx->p++;
	if (n >= 48)
		return false;
	memcpy(code, s, n);
	code[n] = '\0';
	return true;
}

/* [SP [resp-code] [SP] text] after a status word. */
static int
parse_status_tail(struct repl_lex *lx, struct repl_response *out, bool need_code)
{
	if (lx->p == lx->end && !need_code) {
		out->text = (const char *)lx->p;
		return 0;
	}
	if (!repl_lex_sp(lx))
		return -1;
	if (lx->p < lx->end && *lx->p == '[') {
		if (!parse_code(lx, out->code))
			return -1;
		if (lx->p < lx->end && !repl_lex_sp(lx))
			return -1;
	} else if (need_code) {
		return -1;
	}
	out->text = (const char *)lx->p;
	return text_ok(out->text) ? 0 : -1;
}

static int
parse_greeting(struct repl_lex *lx, struct repl_response *out)
{
	uint64_t v, prev = 0;

	out->kind = REPL_R_GREETING;
	if (!repl_lex_word(lx, "STOWD-REPL") || !repl_lex_sp(lx))
		return -1;
	for (;;) {
		if (!repl_lex_number(lx, 65535, &v, "bad version") || v <= prev)
			return -1;
		if (v == REPL_VERSION)
			out->version1 = true;
		prev = v;
		if (lx->p >= lx->end || *lx->p != ',')
			break;
		lx->p++;
	}
	if (!repl_lex_sp(lx) || !repl_lex_server_id(lx, out->server_id) ||
	    !repl_lex_sp(lx) || !repl_lex_word(lx, "MAXLINE=") ||
	    !repl_lex_number(lx, UINT64_MAX, &out->maxline, "") || !repl_lex_sp(lx) ||
	    !repl_lex_word(lx, "MAXLITERAL=") ||
	    !repl_lex_number(lx, UINT64_MAX, &out->maxliteral, "") || !repl_lex_sp(lx) ||
	    !repl_lex_word(lx, "MAXINFLIGHT=") ||
	    !repl_lex_number(lx, UINT64_MAX, &out->maxinflight, ""))
		return -1;
	if (lx->p == lx->end) {
		out->text = (const char *)lx->p;
		return 0;
	}
	if (!repl_lex_sp(lx))
		return -1;
	out->text = (const char *)lx->p;
	return text_ok(out->text) ? 0 : -1;
}

static int
parse_untagged(const char *line, struct repl_lex *lx, struct repl_response *out)
{
	const unsigned char *tok;
	size_t n = repl_lex_token(lx, &tok);

	if (n == 2 && strncasecmp((const char *)tok, "OK", 2) == 0) {
		if (!repl_lex_sp(lx))
			return -1;
		return parse_greeting(lx, out);
	}
	if ((n == 3 && strncasecmp((const char *)tok, "BAD", 3) == 0) ||
	    (n == 3 && strncasecmp((const char *)tok, "BYE", 3) == 0)) {
		out->kind = REPL_R_UNTAGGED;
		out->bye = (tok[1] | 0x20) == 'y';
		out->status = out->bye ? PSEP_RS_NO : PSEP_RS_BAD;
		return parse_status_tail(lx, out, true);
	}
	if (!repl_parse_tag(line + 2, out->tag))
		return -1;
	if (!repl_lex_sp(lx) || lx->p >= lx->end)
		return -1;
	out->kind = REPL_R_DATA;
	out->body = (const char *)lx->p;
	return 0;
}

int
repl_parse_response(const char *line, struct repl_response *out)
{
	struct repl_lex lx;
	const unsigned char *tok;
	size_t n;

	memset(out, 0, sizeof *out);
	if (strlen(line) >= REPL_MAXLINE)
		return -1;
	repl_lex_init(&lx, line, strlen(line));
	if (line[0] == '*' && line[1] == ' ') {
		lx.p += 2;
		return parse_untagged(line, &lx, out);
	}
	if (!repl_parse_tag(line, out->tag))
		return -1;
	lx.p += strlen(out->tag) + 1;
	n = repl_lex_token(&lx, &tok);
	out->kind = REPL_R_TAGGED;
	if (n == 2 && strncasecmp((const char *)tok, "OK", 2) == 0)
		out->status = PSEP_RS_OK;
	else if (n == 2 && strncasecmp((const char *)tok, "NO", 2) == 0)
		out->status = PSEP_RS_NO;
	else if (n == 3 && strncasecmp((const char *)tok, "BAD", 3) == 0)
		out->status = PSEP_RS_BAD;
	else
		return -1;
	return parse_status_tail(&lx, out, false);
}

/* ---- data bodies ---------------------------------------------------------- */

static bool
parse_state(struct repl_lex *lx, struct store_mbox_state *st)
{
	uint64_t messages, uidvalidity, uidnext;

	memset(st, 0, sizeof *st);
	if (!repl_lex_word(lx, "MESSAGES ") ||
	    !repl_lex_number(lx, REPL_UID_MAX, &messages, "") ||
	    !repl_lex_sp(lx) || !repl_lex_word(lx, "GUIDHASH ") ||
	    !repl_lex_hash(lx, st->guidhash) || !repl_lex_sp(lx) ||
	    !repl_lex_word(lx, "FLAGHASH ") || !repl_lex_hash(lx, st->flaghash) ||
	    !repl_lex_sp(lx) || !repl_lex_word(lx, "HIGHESTMODSEQ ") ||
	    !repl_lex_number(lx, REPL_MODSEQ_MAX, &st->highestmodseq, "") ||
	    !repl_lex_sp(lx) || !repl_lex_word(lx, "UIDVALIDITY ") ||
	    !repl_lex_number(lx, REPL_UID_MAX, &uidvalidity, "") || !repl_lex_sp(lx) ||
	    !repl_lex_word(lx, "UIDNEXT ") ||
	    !repl_lex_number(lx, REPL_UID_MAX, &uidnext, "") || !repl_lex_eol(lx))
		return false;
	st->messages = (uint32_t)messages;
	st->uidvalidity = (uint32_t)uidvalidity;
	st->uidnext = (uint32_t)uidnext;
	return true;
}

static int
parse_name_state(const char *body, const char *word, char mailbox[PSEP_NAME_MAX],
		 struct store_mbox_state *st)
{
	struct repl_lex lx;

	repl_lex_init(&lx, body, strlen(body));
	if (!repl_lex_word(&lx, word) || !repl_lex_sp(&lx) ||
	    !repl_lex_mailbox(&lx, mailbox) || !repl_lex_sp(&lx) || !parse_state(&lx, st))
		return -1;
	return 0;
}

int
repl_parse_mailbox_data(const char *body, char mailbox[PSEP_NAME_MAX],
			struct store_mbox_state *st)
{
	return parse_name_state(body, "MAILBOX", mailbox, st);
}

int
repl_parse_sync_data(const char *body, char mailbox[PSEP_NAME_MAX],
		     struct store_mbox_state *st)
{
	return parse_name_state(body, "SYNC", mailbox, st);
}

int
repl_parse_guid_data(const char *body, struct store_msg_info *m)
{
	struct repl_lex lx;
	uint64_t uid;

	memset(m, 0, sizeof *m);
	repl_lex_init(&lx, body, strlen(body));
	if (repl_lex_word(&lx, "EXPUNGED ")) {
		m->expunged = true;
		return repl_lex_guid(&lx, m->guid) && repl_lex_eol(&lx) ? 0 : -1;
	}
	repl_lex_init(&lx, body, strlen(body));
	if (!repl_lex_word(&lx, "GUID ") || !repl_lex_guid(&lx, m->guid) ||
	    !repl_lex_sp(&lx) || !repl_lex_number(&lx, REPL_UID_MAX, &uid, "") ||
	    !repl_lex_sp(&lx) ||
	    !repl_lex_number(&lx, REPL_MODSEQ_MAX, &m->stamp.modseq, "") ||
	    !repl_lex_sp(&lx) || !repl_lex_server_id(&lx, m->stamp.origin) ||
	    !repl_lex_sp(&lx) || !repl_lex_flag_list(&lx, m->flags) ||
	    !repl_lex_eol(&lx) || lx.limit)
		return -1;
	m->uid = (uint32_t)uid;
	return 0;
}

int
repl_parse_fetch_data(const char *body, struct store_msg_info *m,
		      uint64_t *literal_size)
{
	struct repl_lex lx;
	uint64_t uid, date;

	memset(m, 0, sizeof *m);
	repl_lex_init(&lx, body, strlen(body));
	if (!repl_lex_word(&lx, "FETCH ") || !repl_lex_guid(&lx, m->guid) ||
	    !repl_lex_sp(&lx) || !repl_lex_number(&lx, REPL_UID_MAX, &uid, "") ||
	    !repl_lex_sp(&lx) || !repl_lex_number(&lx, REPL_DATE_MAX, &date, "") ||
	    !repl_lex_sp(&lx) || !repl_lex_flag_list(&lx, m->flags) ||
	    !repl_lex_sp(&lx) || !repl_lex_literal(&lx, literal_size) ||
	    !repl_lex_eol(&lx) || lx.limit)
		return -1;
	m->uid = (uint32_t)uid;
	m->date = (time_t)date;
	m->size = *literal_size;
	return 0;
}

/* The words of change capture's folder answer; two: a second name. */
static const struct {
	const char *word;
	enum psep_repl_op op;
	bool two;
} boxes_words[] = {
	{ "CREATE", PSEP_REPL_CREATE, false },
	{ "DELETE", PSEP_REPL_DELETE, false },
	{ "RENAME", PSEP_REPL_RENAME, true },
	{ "SUBSCRIBE", PSEP_REPL_SUBSCRIBE, false },
	{ "UNSUBSCRIBE", PSEP_REPL_UNSUBSCRIBE, false },
};

int
repl_parse_boxes_data(const char *body, uint32_t *op_out,
		      char mailbox[PSEP_NAME_MAX], char mailbox2[PSEP_NAME_MAX])
{
	const unsigned char *tok;
	struct repl_lex lx;
	size_t n, i;

	*op_out = 0;
	mailbox[0] = mailbox2[0] = '\0';
	repl_lex_init(&lx, body, strlen(body));
	n = repl_lex_token(&lx, &tok);
	for (i = 0; i < sizeof boxes_words / sizeof boxes_words[0]; i++) {
		if (strlen(boxes_words[i].word) == n &&
		    strncasecmp((const char *)tok, boxes_words[i].word, n) == 0)
			break;
	}
	if (i == sizeof boxes_words / sizeof boxes_words[0] || !repl_lex_sp(&lx) ||
	    !repl_lex_mailbox(&lx, mailbox))
		return -1;
	if (boxes_words[i].two && (!repl_lex_sp(&lx) || !repl_lex_mailbox(&lx, mailbox2)))
		return -1;
	if (!repl_lex_eol(&lx) || lx.limit)
		return -1;
	*op_out = (uint32_t)boxes_words[i].op;
	return 0;
}
