/* SPDX-License-Identifier: MIT */
/*
 * repl-hook/proto/fmt.c - formatters of the replication protocol
 * (doc/replication-protocol.md §4, §5.1, §8): astrings, mailbox states,
 * data lines, command lines, hex.
 *
 * Runs in:  repld, repl-hook, writer (pure code).
 * Trust:    the values come from this server (index, journal) but are
 *           checked anyway: a value that cannot be sent as an astring, or
 *           a line that does not fit, gives 0 and nothing usable.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "privsep/privsep.h"
#include "repl-hook/proto/proto.h"
#include "repl-hook/proto/proto_int.h"

/* An output buffer; ok turns false once anything did not fit. */
struct outbuf {
	char *p;
	size_t size;
	size_t n;
	bool ok;
};

static void
ob_init(struct outbuf *o, char *p, size_t size)
{
	o->p = p;
	o->size = size;
	o->n = 0;
	o->ok = size > 0;
	if (size > 0)
		p[0] = '\0';
}

static void __attribute__((format(printf, 2, 3)))
ob_printf(struct outbuf *o, const char *fmt, ...)
{
	va_list ap;
	int r;

	if (!o->ok)
		return;
	va_start(ap, fmt);
	r = vsnprintf(o->p + o->n, o->size - o->n, fmt, ap);
	va_end(ap);
	if (r < 0 || (size_t)r >= o->size - o->n) {
		o->ok = false;
		return;
	}
	o->n += (size_t)r;
}

static void
ob_astring(struct outbuf *o, const char *v)
{
	size_t r;

	if (!o->ok)
		return;
	r = repl_fmt_astring(o->p + o->n, o->size - o->n, v);
	if (r == 0) {
		o->ok = false;
		return;
	}
	o->n += r;
}

static size_t
ob_fail(struct outbuf *o)
{
	o->ok = false;
	if (o->size > 0)
		o->p[0] = '\0';
	return 0;
}

static size_t
ob_done(struct outbuf *o)
{
	if (!o->ok) {
		if (o->size > 0)
			o->p[0] = '\0';
		return 0;
	}
	return o->n;
}

size_t
repl_fmt_astring(char *out, size_t size, const char *v)
{
	const unsigned char *s = (const unsigned char *)v;
	bool atom = *s != '\0';
	size_t n = 0, i;

	for (i = 0; s[i] != '\0'; i++) {
		if (s[i] < 0x20 || s[i] == 0x7f)
			goto fail;
		if (!repl_is_atom_char(s[i]))
			atom = false;
	}
	if (atom) {
		if (i + 1 > size)
			goto fail;
		memcpy(out, v, i + 1);
		return i;
	}
	if (size < 3)
		goto fail;
	out[n++] = '"';
	for (i = 0; s[i] != '\0'; i++) {
		bool esc = s[i] == '"' || s[i] == '\\';

		if (n + esc + 1 + 2 > size)
			goto fail;
		if (esc)
			out[n++] = '\\';
		out[n++] = (char)s[i];
	}
	out[n++] = '"';
	out[n] = '\0';
	return n;
fail:
	if (size > 0)
		out[0] = '\0';
	return 0;
}

void
repl_hex(const unsigned char *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 0x0f];
	}
	out[2 * n] = '\0';
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

int
repl_unhex(const char *in, unsigned char *out, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		int hi, lo;

		if (in[2 * i] == '\0')
			return -1;
		hi = hexval(in[2 * i]);
		lo = hexval(in[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		out[i] = (unsigned char)(hi << 4 | lo);
	}
	return in[2 * n] == '\0' ? 0 : -1;
}

static void
ob_state(struct outbuf *o, const struct store_mbox_state *st)
{
	char gh[2 * STORE_HASH_LEN + 1], fh[2 * STORE_HASH_LEN + 1];

	repl_hex(st->guidhash, STORE_HASH_LEN, gh);
	repl_hex(st->flaghash, STORE_HASH_LEN, fh);
	ob_printf(o, "MESSAGES %" PRIu32 " GUIDHASH %s FLAGHASH %s HIGHESTMODSEQ %" PRIu64
		  " UIDVALIDITY %" PRIu32 " UIDNEXT %" PRIu32, st->messages, gh, fh,
		  st->highestmodseq, st->uidvalidity, st->uidnext);
}

size_t
repl_fmt_state(char *out, size_t size, const struct store_mbox_state *st)
{
	struct outbuf o;

	ob_init(&o, out, size);
	ob_state(&o, st);
	return ob_done(&o);
}

static size_t
fmt_name_state(char *out, size_t size, const char *word, const char *mailbox,
	       const struct store_mbox_state *st)
{
	struct outbuf o;
	char check[PSEP_NAME_MAX];
	struct store_mbox_state back;

	ob_init(&o, out, size);
	ob_printf(&o, "%s ", word);
	ob_astring(&o, mailbox);
	ob_printf(&o, " ");
	ob_state(&o, st);
	if (o.ok && (strcmp(word, "SYNC") == 0 ? repl_parse_sync_data(out, check, &back) :
		     repl_parse_mailbox_data(out, check, &back)) != 0)
		return ob_fail(&o);
	return ob_done(&o);
}

size_t
repl_fmt_mailbox_data(char *out, size_t size, const char *mailbox,
		      const struct store_mbox_state *st)
{
	return fmt_name_state(out, size, "MAILBOX", mailbox, st);
}

size_t
repl_fmt_sync_data(char *out, size_t size, const char *mailbox,
		   const struct store_mbox_state *st)
{
	return fmt_name_state(out, size, "SYNC", mailbox, st);
}

size_t
repl_fmt_guid_data(char *out, size_t size, const struct store_msg_info *m)
{
	struct store_msg_info back;
	struct outbuf o;

	ob_init(&o, out, size);
	if (m->expunged) {
		ob_printf(&o, "EXPUNGED %.32s", m->guid);
		if (o.ok && repl_parse_guid_data(out, &back) != 0)
			return ob_fail(&o);
		return ob_done(&o);
	}
	ob_printf(&o, "GUID %.32s %" PRIu32 " %" PRIu64 " ", m->guid, m->uid,
		  m->stamp.modseq);
	ob_astring(&o, m->stamp.origin);
	ob_printf(&o, " (%.127s)", m->flags);
	if (o.ok && repl_parse_guid_data(out, &back) != 0)
		return ob_fail(&o);
	return ob_done(&o);
}

size_t
repl_fmt_fetch_data(char *out, size_t size, const struct store_msg_info *m,
		    uint64_t literal_size)
{
	struct store_msg_info back;
	uint64_t lit;
	struct outbuf o;

	ob_init(&o, out, size);
	ob_printf(&o, "FETCH %.32s %" PRIu32 " %" PRIu64 " (%.127s) {%" PRIu64 "}", m->guid,
		  m->uid, (uint64_t)m->date, m->flags, literal_size);
	if (o.ok && repl_parse_fetch_data(out, &back, &lit) != 0)
		return ob_fail(&o);
	return ob_done(&o);
}

size_t
repl_fmt_boxes_data(char *out, size_t size, const char *word, const char *a,
		    const char *b)
{
	char m[PSEP_NAME_MAX], m2[PSEP_NAME_MAX];
	struct outbuf o;
	uint32_t op;

	ob_init(&o, out, size);
	ob_printf(&o, "%s ", word);
	ob_astring(&o, a);
	if (b != NULL) {
		ob_printf(&o, " ");
		ob_astring(&o, b);
	}
	if (o.ok && (repl_parse_boxes_data(out, &op, m, m2) != 0 ||
		     (op == PSEP_REPL_RENAME) != (b != NULL)))
		return ob_fail(&o);
	return ob_done(&o);
}

static const char *
op_name(enum psep_repl_op op)
{
	switch (op) {
	case PSEP_REPL_SAVE: return "SAVE";
	case PSEP_REPL_STORE: return "STORE";
	case PSEP_REPL_EXPUNGE: return "EXPUNGE";
	case PSEP_REPL_CREATE: return "CREATE";
	case PSEP_REPL_DELETE: return "DELETE";
	case PSEP_REPL_RENAME: return "RENAME";
	case PSEP_REPL_LIST: return "LIST";
	case PSEP_REPL_SYNC: return "SYNC";
	case PSEP_REPL_GUIDS: return "GUIDS";
	case PSEP_REPL_FETCH: return "FETCH";
	case PSEP_REPL_CAPTURE: return NULL;   /* local only */
	case PSEP_REPL_CAPTURE_BOXES: return NULL;
	case PSEP_REPL_SUBSCRIBE: return "SUBSCRIBE";
	case PSEP_REPL_UNSUBSCRIBE: return "UNSUBSCRIBE";
	}
	return NULL;
}

/* " user mailbox", with the leading SP. */
static void
ob_user_mailbox(struct outbuf *o, const struct psep_repl_cmd *c)
{
	ob_printf(o, " ");
	ob_astring(o, c->user);
	ob_printf(o, " ");
	ob_astring(o, c->mailbox);
}

static void
ob_stamped(struct outbuf *o, const struct psep_repl_cmd *c)
{
	ob_printf(o, " ");
	ob_astring(o, c->origin);
	ob_printf(o, " %" PRIu64, c->modseq);
	ob_user_mailbox(o, c);
	ob_printf(o, " %s", c->guid);
}

/* The formatted line is one the parser accepts (never send what a peer
 * would refuse as BAD or NO [LIMIT]). */
static bool
command_parses(const char *line, size_t n, bool literal, uint64_t literal_size)
{
	struct repl_frame *f;
	struct repl_command c;
	const char *code, *text;
	bool ok;

	if (n + REPL_TAG_MAX + 2 > REPL_MAXLINE)
		return false;
	f = xcalloc(1, sizeof *f);
	memcpy(f->line, "x ", 2);
	memcpy(f->line + 2, line, n + 1);
	f->len = n + 2;
	f->has_literal = literal;
	f->literal_size = literal ? literal_size : 0;
	f->literal_fd = -1;
	ok = repl_parse_command(f, &c, &code, &text) == REPL_P_OK;
	free(f);
	return ok;
}

size_t
repl_fmt_command(char *out, size_t size, const struct psep_repl_cmd *cmd,
		 uint64_t literal_size)
{
	const char *name = op_name((enum psep_repl_op)cmd->op);
	struct outbuf o;

	ob_init(&o, out, size);
	if (name == NULL || memchr(cmd->flags, '\0', sizeof cmd->flags) == NULL ||
	    memchr(cmd->guid, '\0', sizeof cmd->guid) == NULL)
		o.ok = false;
	if (o.ok)
		ob_printf(&o, "%s", name);
	switch ((enum psep_repl_op)cmd->op) {
	case PSEP_REPL_SAVE:
		ob_stamped(&o, cmd);
		ob_printf(&o, " %" PRIu32 " %" PRIu64 " (%s) {%" PRIu64 "}", cmd->uid_hint,
			  cmd->date, cmd->flags, literal_size);
		break;
	case PSEP_REPL_STORE:
		ob_stamped(&o, cmd);
		ob_printf(&o, " (%s)", cmd->flags);
		break;
	case PSEP_REPL_EXPUNGE:
		ob_stamped(&o, cmd);
		break;
	case PSEP_REPL_CREATE:
	case PSEP_REPL_DELETE:
	case PSEP_REPL_RENAME:
	case PSEP_REPL_SUBSCRIBE:
	case PSEP_REPL_UNSUBSCRIBE:
		ob_printf(&o, " ");
		ob_astring(&o, cmd->origin);
		ob_user_mailbox(&o, cmd);
		if (cmd->op == PSEP_REPL_RENAME) {
			ob_printf(&o, " ");
			ob_astring(&o, cmd->mailbox2);
		}
		break;
	case PSEP_REPL_LIST:
		ob_printf(&o, " ");
		ob_astring(&o, cmd->user);
		break;
	case PSEP_REPL_SYNC:
	case PSEP_REPL_GUIDS:
		ob_user_mailbox(&o, cmd);
		break;
	case PSEP_REPL_FETCH:
		ob_user_mailbox(&o, cmd);
		ob_printf(&o, " %s", cmd->guid);
		break;
	case PSEP_REPL_CAPTURE:
	case PSEP_REPL_CAPTURE_BOXES:
		o.ok = false;   /* local only: op_name gave no name */
		break;
	}
	if (o.ok && !command_parses(out, o.n, cmd->op == PSEP_REPL_SAVE, literal_size))
		return ob_fail(&o);
	return ob_done(&o);
}
