/* SPDX-License-Identifier: MIT */
/*
 * lmtpd/parse.c - LMTP command verbs, MAIL/RCPT/BDAT/LHLO arguments and
 * RFC 5321/6531 paths.
 *
 * Runs in:  lmtpd.
 * Trust:    every input is client-controlled.  Functions are pure: they
 *           read a NUL-terminated line and write bounded output buffers.
 */
#include <errno.h>
#include <string.h>
#include <strings.h>

#include "lmtpd/lmtpd_int.h"

static const struct {
	const char *name;
	enum lmtp_verb verb;
} verbs[] = {
	{ "LHLO", LMTP_VERB_LHLO }, { "HELO", LMTP_VERB_HELO },
	{ "EHLO", LMTP_VERB_EHLO }, { "MAIL", LMTP_VERB_MAIL },
	{ "RCPT", LMTP_VERB_RCPT }, { "DATA", LMTP_VERB_DATA },
	{ "BDAT", LMTP_VERB_BDAT }, { "RSET", LMTP_VERB_RSET },
	{ "NOOP", LMTP_VERB_NOOP }, { "QUIT", LMTP_VERB_QUIT },
	{ "VRFY", LMTP_VERB_VRFY },
};

static bool
is_blank(char c)
{
	return c == ' ' || c == '\t';
}

static const char *
skip_blanks(const char *p)
{
	while (is_blank(*p))
		p++;
	return p;
}

static bool
is_alnum(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9');
}

/* RFC 5322 atext, plus any byte of a UTF-8 sequence (checked later). */
static bool
is_atext(unsigned char c)
{
	return is_alnum(c) || c >= 0x80 || (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c));
}

enum lmtp_verb
lmtp_parse_verb(const char *line, const char **args_out)
{
	size_t len = 0, i;

	while (line[len] != '\0' && !is_blank(line[len]))
		len++;
	*args_out = skip_blanks(line + len);
	if (len == 8 && strncasecmp(line, "STARTTLS", 8) == 0)
		return LMTP_VERB_STARTTLS;
	if (len != 4)
		return LMTP_VERB_UNKNOWN;
	for (i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		if (strncasecmp(line, verbs[i].name, 4) == 0)
			return verbs[i].verb;
	return LMTP_VERB_UNKNOWN;
}

/* Length of a well-formed UTF-8 sequence at s (at most n bytes), 0 if bad. */
static size_t
utf8_seq(const unsigned char *s, size_t n)
{
	size_t len, i;
	uint32_t cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		len = 2;
		cp = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		len = 3;
		cp = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		len = 4;
		cp = s[0] & 0x07;
	} else {
		return 0;
	}
	if (len > n)
		return 0;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
	    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

bool
lmtp_utf8_valid(const unsigned char *s, size_t len)
{
	size_t i = 0, n;

	while (i < len) {
		n = utf8_seq(s + i, len - i);
		if (n == 0)
			return false;
		i += n;
	}
	return true;
}

/* Domain or address literal at p; returns the end or NULL. */
static const char *
scan_domain(const char *p)
{
	const char *label;

	if (*p == '[') {
		for (p++; *p != ']'; p++)
			if ((unsigned char)*p < 33 || (unsigned char)*p > 126 ||
			    *p == '[' || *p == '\\')
				return NULL;
		return p + 1;
	}
	for (;;) {
		label = p;
		while (is_alnum((unsigned char)*p) || *p == '-' || *p == '_' ||
		       (unsigned char)*p >= 0x80)
			p++;
		if (p == label)
			return NULL;
		if (*p != '.')
			return p;
		p++;
	}
}

/* Source route "@a,@b:" at p; returns the end (after ':') or NULL. */
static const char *
scan_route(const char *p)
{
	for (;;) {
		if (*p != '@' || (p = scan_domain(p + 1)) == NULL)
			return NULL;
		if (*p == ':')
			return p + 1;
		if (*p != ',')
			return NULL;
		p++;
	}
}

/* Local part (dot-string or quoted string) at p; returns the end or NULL. */
static const char *
scan_local(const char *p)
{
	const char *start = p;

	if (*p != '"') {
		while (is_atext((unsigned char)*p) || *p == '.')
			p++;
		return p == start ? NULL : p;
	}
	for (p++; *p != '"'; p++) {
		if (*p == '\\') {
			p++;
			if ((unsigned char)*p < 32 || (unsigned char)*p > 126)
				return NULL;
		} else if ((unsigned char)*p < 32 || *p == 127) {
			return NULL;
		}
	}
	return p + 1;
}

int
lmtp_parse_path(const char **pp, char *out, size_t size, bool *utf8_out)
{
	const char *p = *pp, *addr, *end;
	size_t len;

	if (*p++ != '<')
		goto inval;
	if (*p == '@' && (p = scan_route(p)) == NULL)
		goto inval;
	addr = p;
	if (*p != '>') {
		if ((end = scan_local(p)) == NULL)
			goto inval;
		if (*end == '@' && (end = scan_domain(end + 1)) == NULL)
			goto inval;
		p = end;
	} else if (addr != *pp + 1) {
		goto inval;  /* a source route before nothing */
	}
	if (*p != '>')
		goto inval;
	len = (size_t)(p - addr);
	if (len >= size) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if (!lmtp_utf8_valid((const unsigned char *)addr, len))
		goto inval;
	memcpy(out, addr, len);
	out[len] = '\0';
	*utf8_out = false;
	for (end = addr; end < p; end++)
		if ((unsigned char)*end >= 0x80)
			*utf8_out = true;
	*pp = p + 1;
	return 0;
inval:
	errno = EINVAL;
	return -1;
}

/* Match "FROM:" / "TO:" and skip blanks after it. */
static const char *
skip_keyword(const char *args, const char *kw)
{
	size_t n = strlen(kw);

	if (strncasecmp(args, kw, n) != 0)
		return NULL;
	return skip_blanks(args + n);
}

/* Next "KEY[=VALUE]" parameter at *pp into key/value.  Returns 1 if one
 * was found, 0 at the end, -1 on a syntax error. */
static int
next_param(const char **pp, char *key, size_t ksize, char *val, size_t vsize)
{
	const char *p = skip_blanks(*pp);
	size_t k = 0, v = 0;

	if (*p == '\0')
		return 0;
	if (!is_alnum((unsigned char)*p))
		return -1;
	while (is_alnum((unsigned char)*p) || *p == '-') {
		if (k + 1 >= ksize)
			return -1;
		key[k++] = *p++;
	}
	key[k] = '\0';
	val[0] = '\0';
	if (*p == '=') {
		for (p++; (unsigned char)*p > 32 && (unsigned char)*p < 127 && *p != '='; p++) {
			if (v + 1 >= vsize)
				return -1;
			val[v++] = *p;
		}
		if (v == 0)
			return -1;
		val[v] = '\0';
	}
	if (*p != '\0' && !is_blank(*p))
		return -1;
	*pp = p;
	return 1;
}

static int
parse_size(const char *s, uint64_t *out)
{
	uint64_t n = 0;

	if (*s == '\0' || strlen(s) > 20)
		return -1;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9' ||
		    n > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
			return -1;
		n = n * 10 + (uint64_t)(*s - '0');
	}
	*out = n;
	return 0;
}

/* Apply one MAIL parameter; 0 or -1 with *reply_out. */
static int
mail_param(struct lmtp_mail_args *m, const char *key, const char *val,
	   const char **reply_out)
{
	if (strcasecmp(key, "SIZE") == 0) {
		if (m->has_size || parse_size(val, &m->size) == -1)
			goto syntax;
		m->has_size = true;
	} else if (strcasecmp(key, "BODY") == 0) {
		if (m->body != LMTP_BODY_NONE)
			goto syntax;
		if (strcasecmp(val, "7BIT") == 0)
			m->body = LMTP_BODY_7BIT;
		else if (strcasecmp(val, "8BITMIME") == 0)
			m->body = LMTP_BODY_8BITMIME;
		else
			goto unsupported;
	} else if (strcasecmp(key, "SMTPUTF8") == 0) {
		if (m->smtputf8 || val[0] != '\0')
			goto syntax;
		m->smtputf8 = true;
	} else {
		goto unsupported;
	}
	return 0;
syntax:
	*reply_out = "501 5.5.4 Syntax error in MAIL parameters";
	return -1;
unsupported:
	*reply_out = "555 5.5.4 Unsupported MAIL parameter";
	return -1;
}

int
lmtp_parse_mail(const char *args, struct lmtp_mail_args *out,
		const char **reply_out)
{
	const char *p;
	char key[32], val[64];
	int r;

	memset(out, 0, sizeof(*out));
	if ((p = skip_keyword(args, "FROM:")) == NULL || *p != '<') {
		*reply_out = "501 5.5.4 Syntax: MAIL FROM:<address>";
		return -1;
	}
	if (lmtp_parse_path(&p, out->address, sizeof(out->address), &out->utf8) == -1) {
		*reply_out = "501 5.1.7 Bad sender address syntax";
		return -1;
	}
	if (*p != '\0' && !is_blank(*p)) {
		*reply_out = "501 5.1.7 Bad sender address syntax";
		return -1;
	}
	while ((r = next_param(&p, key, sizeof(key), val, sizeof(val))) == 1)
		if (mail_param(out, key, val, reply_out) == -1)
			return -1;
	if (r == -1) {
		*reply_out = "501 5.5.4 Syntax error in MAIL parameters";
		return -1;
	}
	return 0;
}

int
lmtp_parse_rcpt(const char *args, struct lmtp_rcpt_args *out,
		const char **reply_out)
{
	const char *p;
	char key[32], val[64];
	int r;

	memset(out, 0, sizeof(*out));
	if ((p = skip_keyword(args, "TO:")) == NULL || *p != '<') {
		*reply_out = "501 5.5.4 Syntax: RCPT TO:<address>";
		return -1;
	}
	if (lmtp_parse_path(&p, out->address, sizeof(out->address), &out->utf8) == -1 ||
	    (*p != '\0' && !is_blank(*p))) {
		*reply_out = "501 5.1.3 Bad recipient address syntax";
		return -1;
	}
	if (out->address[0] == '\0') {
		*reply_out = "501 5.1.3 Empty recipient address";
		return -1;
	}
	r = next_param(&p, key, sizeof(key), val, sizeof(val));
	if (r == -1) {
		*reply_out = "501 5.5.4 Syntax error in RCPT parameters";
		return -1;
	}
	if (r == 1) {
		*reply_out = "555 5.5.4 Unsupported RCPT parameter";
		return -1;
	}
	return 0;
}

int
lmtp_parse_bdat(const char *args, uint64_t *size_out, bool *last_out)
{
	char num[24];
	size_t n = 0;
	const char *p = args;

	while (*p >= '0' && *p <= '9') {
		if (n + 1 >= sizeof(num))
			goto inval;
		num[n++] = *p++;
	}
	num[n] = '\0';
	if (n == 0 || parse_size(num, size_out) == -1)
		goto inval;
	*last_out = false;
	if (*p != '\0') {
		if (!is_blank(*p))
			goto inval;
		p = skip_blanks(p);
		if (strncasecmp(p, "LAST", 4) != 0)
			goto inval;
		p = skip_blanks(p + 4);
		if (*p != '\0')
			goto inval;
		*last_out = true;
	}
	return 0;
inval:
	errno = EINVAL;
	return -1;
}

int
lmtp_parse_lhlo(const char *args, char *out, size_t size)
{
	size_t len = 0;

	while (args[len] != '\0' && !is_blank(args[len])) {
		if ((unsigned char)args[len] < 33 || args[len] == 127)
			goto inval;
		len++;
	}
	if (len == 0 || len >= size ||
	    !lmtp_utf8_valid((const unsigned char *)args, len))
		goto inval;
	memcpy(out, args, len);
	out[len] = '\0';
	return 0;
inval:
	errno = EINVAL;
	return -1;
}
