/* SPDX-License-Identifier: MIT */
/*
 * repl-hook/proto/lex.c - the lexical grammar and value rules of the
 * replication protocol (doc/replication-protocol.md §4): numbers,
 * astrings, server ids, users, mailbox names, GUIDs, hashes, flag lists
 * and delta lists in canonical form.
 *
 * Runs in:  repld, repl-hook, writer (pure code).
 * Trust:    untrusted octets; every read stops at lx->end, every write at
 *           the size of its buffer; flag sets hold at most 64 entries
 *           (more cannot fit in 127 octets).
 * Order:    grammar errors (BAD) are recorded first; a NO [LIMIT] is only
 *           a flag the caller reports once the whole line parsed.
 */
#include <string.h>
#include <strings.h>

#include "repl-hook/proto/proto_int.h"

void
repl_lex_init(struct repl_lex *lx, const char *s, size_t len)
{
	memset(lx, 0, sizeof *lx);
	lx->p = (const unsigned char *)s;
	lx->end = lx->p + len;
}

bool
repl_lex_fail(struct repl_lex *lx, const char *code, const char *text)
{
	if (lx->code == NULL) {
		lx->code = code;
		lx->text = text;
	}
	return false;
}

static bool
syntax(struct repl_lex *lx, const char *text)
{
	return repl_lex_fail(lx, "SYNTAX", text);
}

bool
repl_lex_sp(struct repl_lex *lx)
{
	if (lx->p >= lx->end || *lx->p != ' ')
		return syntax(lx, "expected a single space");
	lx->p++;
	return true;
}

bool
repl_lex_eol(struct repl_lex *lx)
{
	if (lx->p != lx->end)
		return syntax(lx, "unexpected text at end of line");
	return true;
}

bool
repl_lex_word(struct repl_lex *lx, const char *word)
{
	size_t n = strlen(word);

	if ((size_t)(lx->end - lx->p) < n ||
	    strncasecmp((const char *)lx->p, word, n) != 0)
		return syntax(lx, "syntax error");
	lx->p += n;
	return true;
}

size_t
repl_lex_token(struct repl_lex *lx, const unsigned char **tok_out)
{
	const unsigned char *s = lx->p;

	while (lx->p < lx->end && *lx->p != ' ')
		lx->p++;
	*tok_out = s;
	return (size_t)(lx->p - s);
}

bool
repl_lex_number(struct repl_lex *lx, uint64_t max, uint64_t *out, const char *what)
{
	const unsigned char *s = lx->p;
	uint64_t v = 0;
	size_t n = 0;

	while (lx->p < lx->end && *lx->p >= '0' && *lx->p <= '9') {
		unsigned d = (unsigned)(*lx->p - '0');

		if (n >= 20 || v > (max - d) / 10)
			return syntax(lx, what);
		v = v * 10 + d;
		n++;
		lx->p++;
	}
	if (n == 0 || (n > 1 && s[0] == '0'))
		return syntax(lx, what);
	*out = v;
	return true;
}

bool
repl_is_atom_char(unsigned char c)
{
	if (c < 0x21 || c > 0x7e)
		return false;
	return strchr("\"()[\\]{}", c) == NULL;
}

bool
repl_is_tag_char(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_';
}

static void
put(char *out, size_t size, size_t *n, unsigned char c)
{
	if (*n + 1 < size)
		out[*n] = (char)c;
	(*n)++;
}

static bool
lex_quoted(struct repl_lex *lx, char *out, size_t size, size_t *len_out)
{
	size_t n = 0;

	lx->p++;                      /* DQUOTE */
	for (;;) {
		unsigned char c;

		if (lx->p >= lx->end)
			return syntax(lx, "unterminated quoted string");
		c = *lx->p++;
		if (c == '"')
			break;
		if (c == '\\') {
			if (lx->p >= lx->end || (*lx->p != '"' && *lx->p != '\\'))
				return syntax(lx, "bad escape in quoted string");
			c = *lx->p++;
		} else if (c < 0x20 || c == 0x7f) {
			return syntax(lx, "bad octet in quoted string");
		}
		put(out, size, &n, c);
	}
	if (size > 0)
		out[n < size ? n : size - 1] = '\0';
	*len_out = n;
	return true;
}

bool
repl_lex_astring(struct repl_lex *lx, char *out, size_t size, size_t *len_out)
{
	size_t n = 0;

	if (lx->p < lx->end && *lx->p == '"')
		return lex_quoted(lx, out, size, len_out);
	while (lx->p < lx->end && repl_is_atom_char(*lx->p))
		put(out, size, &n, *lx->p++);
	if (n == 0)
		return syntax(lx, "expected an atom or a quoted string");
	if (size > 0)
		out[n < size ? n : size - 1] = '\0';
	*len_out = n;
	return true;
}

bool
repl_lex_server_id(struct repl_lex *lx, char out[65])
{
	size_t len, i;

	if (!repl_lex_astring(lx, out, 65, &len))
		return false;
	if (len < 1 || len > REPL_SERVER_ID_MAX)
		return syntax(lx, "server id must have 1 to 64 octets");
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)out[i];

		if (c < 0x21 || c > 0x7e)
			return syntax(lx, "bad octet in server id");
	}
	return true;
}

bool
repl_lex_user(struct repl_lex *lx, char out[256])
{
	size_t len, i;

	if (!repl_lex_astring(lx, out, 256, &len))
		return false;
	if (len < 1 || len > REPL_USER_MAX)
		return syntax(lx, "user must have 1 to 255 octets");
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)out[i];

		if (c < 0x21 || c == 0x7f)
			return syntax(lx, "bad octet in user");
	}
	return true;
}

bool
repl_mailbox_check(char *name, size_t len)
{
	size_t i;

	if (len < 1 || len > REPL_MAILBOX_MAX || strlen(name) != len)
		return false;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];

		if (c < 0x20 || c > 0x7e || c == '/')
			return false;
	}
	if (name[0] == '.' || name[len - 1] == '.' || strstr(name, "..") != NULL)
		return false;
	if (strcasecmp(name, "INBOX") == 0)
		memcpy(name, "INBOX", 6);
	return true;
}

bool
repl_lex_mailbox(struct repl_lex *lx, char out[256])
{
	size_t len;

	if (!repl_lex_astring(lx, out, 256, &len))
		return false;
	if (!repl_mailbox_check(out, len))
		return repl_lex_fail(lx, "BADNAME", "invalid mailbox name");
	return true;
}

static bool
lex_hexlc(struct repl_lex *lx, size_t digits, char *out)
{
	const unsigned char *tok;
	size_t n, i;

	n = 0;
	tok = lx->p;
	while (lx->p < lx->end && *lx->p != ' ' && *lx->p != ')')
		lx->p++;
	n = (size_t)(lx->p - tok);
	if (n != digits)
		return false;
	for (i = 0; i < n; i++) {
		if (!((tok[i] >= '0' && tok[i] <= '9') || (tok[i] >= 'a' && tok[i] <= 'f')))
			return false;
	}
	memcpy(out, tok, n);
	out[n] = '\0';
	return true;
}

bool
repl_lex_guid(struct repl_lex *lx, char out[33])
{
	if (!lex_hexlc(lx, 32, out))
		return syntax(lx, "GUID must be 32 lower-case hex digits");
	return true;
}

bool
repl_lex_hash(struct repl_lex *lx, unsigned char out[32])
{
	char hex[65];
	size_t i;

	if (!lex_hexlc(lx, 64, hex))
		return syntax(lx, "hash must be 64 lower-case hex digits");
	for (i = 0; i < 32; i++) {
		unsigned hi = (unsigned)(hex[2 * i] <= '9' ? hex[2 * i] - '0' : hex[2 * i] - 'a' + 10);
		unsigned lo = (unsigned)(hex[2 * i + 1] <= '9' ? hex[2 * i + 1] - '0' :
					 hex[2 * i + 1] - 'a' + 10);

		out[i] = (unsigned char)(hi << 4 | lo);
	}
	return true;
}

/* ---- flags -------------------------------------------------------------- */

#define FLAGSET_MAX 64

struct flag_ent {
	const char *s;
	size_t len;
	char sign;                    /* '+', '-', or 0 in a flag-list */
};

struct flagset {
	struct flag_ent e[FLAGSET_MAX];
	unsigned n;
	bool full;                    /* a distinct flag did not fit */
};

static const char *const sys_flags[] = {
	"\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft",
};

static int
flag_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
	int r = memcmp(a, b, alen < blen ? alen : blen);

	if (r != 0)
		return r;
	return alen < blen ? -1 : alen > blen;
}

/* Insert keeping memcmp order; false with a SYNTAX error on +f and -f. */
static bool
flagset_add(struct repl_lex *lx, struct flagset *fs, const char *s, size_t len, char sign)
{
	unsigned i;

	for (i = 0; i < fs->n; i++) {
		int r = flag_cmp(s, len, fs->e[i].s, fs->e[i].len);

		if (r == 0) {
			if (fs->e[i].sign != sign)
				return syntax(lx, "flag both added and removed");
			return true;
		}
		if (r < 0)
			break;
	}
	if (fs->n == FLAGSET_MAX) {
		fs->full = true;
		return true;
	}
	memmove(&fs->e[i + 1], &fs->e[i], (fs->n - i) * sizeof fs->e[0]);
	fs->e[i] = (struct flag_ent){ .s = s, .len = len, .sign = sign };
	fs->n++;
	return true;
}

/* One flag (§4): a system flag in its canonical spelling, or a keyword. */
static bool
lex_flag(struct repl_lex *lx, const char **s_out, size_t *len_out)
{
	const unsigned char *s = lx->p;
	size_t n, i;

	if (lx->p < lx->end && *lx->p == '\\') {
		lx->p++;
		while (lx->p < lx->end && repl_is_atom_char(*lx->p))
			lx->p++;
		n = (size_t)(lx->p - s);
		for (i = 0; i < sizeof sys_flags / sizeof sys_flags[0]; i++) {
			if (strlen(sys_flags[i]) == n &&
			    strncasecmp((const char *)s, sys_flags[i], n) == 0) {
				*s_out = sys_flags[i];
				*len_out = n;
				return true;
			}
		}
		return syntax(lx, "unknown system flag");
	}
	if (lx->p >= lx->end || !repl_is_atom_char(*lx->p) || *lx->p == '+' || *lx->p == '-')
		return syntax(lx, "bad flag");
	while (lx->p < lx->end && repl_is_atom_char(*lx->p))
		lx->p++;
	n = (size_t)(lx->p - s);
	if (n > REPL_KEYWORD_MAX)
		return syntax(lx, "keyword longer than 64 octets");
	*s_out = (const char *)s;
	*len_out = n;
	return true;
}

/* Join the set into out; false if it needs more than 127 octets. */
static bool
flagset_join(const struct flagset *fs, char out[128])
{
	size_t n = 0;
	unsigned i;

	out[0] = '\0';
	if (fs->full)
		return false;
	for (i = 0; i < fs->n; i++) {
		size_t need = fs->e[i].len + (i > 0) + (fs->e[i].sign != 0);

		if (n + need > REPL_FLAGTEXT_MAX) {
			out[0] = '\0';
			return false;
		}
		if (i > 0)
			out[n++] = ' ';
		if (fs->e[i].sign != 0)
			out[n++] = fs->e[i].sign;
		memcpy(out + n, fs->e[i].s, fs->e[i].len);
		n += fs->e[i].len;
	}
	out[n] = '\0';
	return true;
}

static bool
lex_list(struct repl_lex *lx, struct flagset *fs, bool deltas)
{
	if (lx->p >= lx->end || *lx->p != '(')
		return syntax(lx, deltas ? "expected a delta list" : "expected a flag list");
	lx->p++;
	if (lx->p < lx->end && *lx->p == ')') {
		lx->p++;
		if (deltas)
			return syntax(lx, "empty delta list");
		return true;
	}
	for (;;) {
		const char *s = NULL;
		size_t len = 0;
		char sign = 0;

		if (deltas) {
			if (lx->p >= lx->end || (*lx->p != '+' && *lx->p != '-'))
				return syntax(lx, "delta must start with + or -");
			sign = (char)*lx->p++;
		}
		if (!lex_flag(lx, &s, &len) || !flagset_add(lx, fs, s, len, sign))
			return false;
		if (lx->p < lx->end && *lx->p == ')') {
			lx->p++;
			return true;
		}
		if (!repl_lex_sp(lx))
			return false;
	}
}

bool
repl_lex_flag_list(struct repl_lex *lx, char out[128])
{
	struct flagset fs;

	fs.n = 0;
	fs.full = false;
	out[0] = '\0';
	if (!lex_list(lx, &fs, false))
		return false;
	if (!flagset_join(&fs, out)) {
		lx->limit = true;
		lx->limit_text = "flag string exceeds 127 octets";
	}
	return true;
}

bool
repl_lex_delta_list(struct repl_lex *lx, char out[128])
{
	struct flagset fs;
	const unsigned char *start = lx->p;
	size_t raw;

	fs.n = 0;
	fs.full = false;
	out[0] = '\0';
	if (!lex_list(lx, &fs, true))
		return false;
	raw = (size_t)(lx->p - start) - 2;
	if (raw > REPL_FLAGTEXT_MAX || !flagset_join(&fs, out)) {
		out[0] = '\0';
		lx->limit = true;
		lx->limit_text = "delta list exceeds 127 octets";
	}
	return true;
}

bool
repl_lex_literal(struct repl_lex *lx, uint64_t *size_out)
{
	if (lx->p >= lx->end || *lx->p != '{')
		return syntax(lx, "expected a literal");
	lx->p++;
	if (!repl_lex_number(lx, REPL_MODSEQ_MAX, size_out, "bad literal size"))
		return false;
	if (lx->p >= lx->end || *lx->p != '}')
		return syntax(lx, "bad literal marker");
	lx->p++;
	return true;
}
