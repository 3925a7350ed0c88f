/* SPDX-License-Identifier: MIT */
/*
 * tests/lib/imapc_cmds.c - the IMAP commands the tests use, on top of
 * imapc_cmd, and the parsers of their untagged responses.
 *
 * Runs in:  test programs only.
 * Trust:    responses are parsed defensively (sscanf with bounds, fixed
 *           fields truncated); a line that does not parse is skipped.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tests/lib/imapc.h"
#include "tests/lib/imapc_int.h"

/* Run a command that takes one mailbox name after verb. */
static int
mailbox_cmd(struct imapc *c, const char *verb, const char *mailbox)
{
	struct imapc_resp r = { 0 };
	char box[IMAPC_QUOTED_MAX];
	int rc;

	if (imapc_quote(mailbox, box, sizeof(box)) < 0)
		return -1;
	rc = imapc_need_ok(&r, imapc_cmd(c, &r, "%s %s", verb, box), verb);
	imapc_resp_free(&r);
	return rc;
}

int
imapc_login(struct imapc *c, const char *user, const char *password)
{
	struct imapc_resp r = { 0 };
	char u[IMAPC_QUOTED_MAX], p[IMAPC_QUOTED_MAX];
	int rc;

	if (imapc_quote(user, u, sizeof(u)) < 0 ||
	    imapc_quote(password, p, sizeof(p)) < 0)
		return -1;
	rc = imapc_need_ok(&r, imapc_cmd(c, &r, "LOGIN %s %s", u, p), "LOGIN");
	imapc_resp_free(&r);
	return rc;
}

int
imapc_logout(struct imapc *c)
{
	struct imapc_resp r = { 0 };
	int rc;

	rc = imapc_need_ok(&r, imapc_cmd(c, &r, "LOGOUT"), "LOGOUT");
	if (rc == 0 && imapc_resp_find(&r, "BYE") == NULL) {
		fprintf(stderr, "imapc: LOGOUT without BYE\n");
		errno = EPROTO;
		rc = -1;
	}
	imapc_resp_free(&r);
	return rc;
}

static void
parse_select(const struct imapc_resp *r, struct imapc_mailbox *mb)
{
	size_t i;
	long v;
	char word[16];

	mb->exists = mb->recent = mb->uidvalidity = mb->uidnext = -1;
	mb->read_only = strncasecmp(r->text, "[READ-ONLY]", 11) == 0;
	for (i = 0; i < r->nlines; i++) {
		const char *l = r->lines[i];

		if (sscanf(l, "%ld %15s", &v, word) == 2) {
			if (strcasecmp(word, "EXISTS") == 0)
				mb->exists = v;
			else if (strcasecmp(word, "RECENT") == 0)
				mb->recent = v;
		} else if (sscanf(l, "OK [UIDVALIDITY %ld]", &v) == 1) {
			mb->uidvalidity = v;
		} else if (sscanf(l, "OK [UIDNEXT %ld]", &v) == 1) {
			mb->uidnext = v;
		}
	}
}

int
imapc_select(struct imapc *c, const char *mailbox, bool read_only,
	     struct imapc_mailbox *mb)
{
	struct imapc_resp r = { 0 };
	char box[IMAPC_QUOTED_MAX];
	const char *verb = read_only ? "EXAMINE" : "SELECT";
	int rc;

	if (imapc_quote(mailbox, box, sizeof(box)) < 0)
		return -1;
	rc = imapc_need_ok(&r, imapc_cmd(c, &r, "%s %s", verb, box), verb);
	if (rc == 0 && mb != NULL)
		parse_select(&r, mb);
	imapc_resp_free(&r);
	return rc;
}

int
imapc_store(struct imapc *c, bool uid, const char *set, const char *op,
	    const char *flags)
{
	struct imapc_resp r = { 0 };
	int rc;

	rc = imapc_cmd(c, &r, "%sSTORE %s %s (%s)", uid ? "UID " : "", set, op, flags);
	rc = imapc_need_ok(&r, rc, "STORE");
	imapc_resp_free(&r);
	return rc;
}

int
imapc_expunge(struct imapc *c, const char *uid_set)
{
	if (uid_set != NULL)
		return imapc_ok(c, "UID EXPUNGE %s", uid_set);
	return imapc_ok(c, "EXPUNGE");
}

static int
copy_move(struct imapc *c, const char *verb, bool uid, const char *set,
	  const char *mailbox)
{
	struct imapc_resp r = { 0 };
	char box[IMAPC_QUOTED_MAX];
	int rc;

	if (imapc_quote(mailbox, box, sizeof(box)) < 0)
		return -1;
	rc = imapc_cmd(c, &r, "%s%s %s %s", uid ? "UID " : "", verb, set, box);
	rc = imapc_need_ok(&r, rc, verb);
	imapc_resp_free(&r);
	return rc;
}

int
imapc_copy(struct imapc *c, bool uid, const char *set, const char *mailbox)
{
	return copy_move(c, "COPY", uid, set, mailbox);
}

int
imapc_move(struct imapc *c, bool uid, const char *set, const char *mailbox)
{
	return copy_move(c, "MOVE", uid, set, mailbox);
}

int
imapc_create(struct imapc *c, const char *mailbox)
{
	return mailbox_cmd(c, "CREATE", mailbox);
}

int
imapc_delete(struct imapc *c, const char *mailbox)
{
	return mailbox_cmd(c, "DELETE", mailbox);
}

int
imapc_subscribe(struct imapc *c, const char *mailbox)
{
	return mailbox_cmd(c, "SUBSCRIBE", mailbox);
}

int
imapc_unsubscribe(struct imapc *c, const char *mailbox)
{
	return mailbox_cmd(c, "UNSUBSCRIBE", mailbox);
}

int
imapc_rename(struct imapc *c, const char *from, const char *to)
{
	struct imapc_resp r = { 0 };
	char f[IMAPC_QUOTED_MAX], t[IMAPC_QUOTED_MAX];
	int rc;

	if (imapc_quote(from, f, sizeof(f)) < 0 || imapc_quote(to, t, sizeof(t)) < 0)
		return -1;
	rc = imapc_need_ok(&r, imapc_cmd(c, &r, "RENAME %s %s", f, t), "RENAME");
	imapc_resp_free(&r);
	return rc;
}

/*
 * One IMAP string at *p (quoted, a literal inlined as "{n}\r\n<bytes>",
 * NIL or an atom) into out; *p moves past it.  -1 if malformed.
 */
static int
parse_string(const char **p, char *out, size_t size)
{
	const char *s = *p;
	size_t o = 0;
	unsigned long n;
	char *end;

	if (*s == '"') {
		for (s++; *s != '\0' && *s != '"'; s++) {
			if (*s == '\\' && s[1] != '\0')
				s++;
			if (o + 1 < size)
				out[o++] = *s;
		}
		if (*s != '"')
			return -1;
		s++;
	} else if (*s == '{') {
		n = strtoul(s + 1, &end, 10);
		if (strncmp(end, "}\r\n", 3) != 0 || strlen(end + 3) < n)
			return -1;
		s = end + 3;
		o = n < size ? n : size - 1;
		memcpy(out, s, o);
		s += n;
	} else {
		while (*s != '\0' && *s != ' ' && *s != ')' && o + 1 < size)
			out[o++] = *s++;
		while (*s != '\0' && *s != ' ' && *s != ')')
			s++;
	}
	out[o] = '\0';
	*p = s;
	return 0;
}

/* "LIST (attrs) sep name" after the verb into it. */
static int
parse_list(const char *l, struct imapc_list_item *it)
{
	const char *close;
	char sep[8];
	size_t n;

	memset(it, 0, sizeof(*it));
	if (*l != '(' || (close = strchr(l, ')')) == NULL || close[1] != ' ')
		return -1;
	n = (size_t)(close - l - 1);
	if (n >= sizeof(it->attrs))
		n = sizeof(it->attrs) - 1;
	memcpy(it->attrs, l + 1, n);
	l = close + 2;
	if (parse_string(&l, sep, sizeof(sep)) < 0 || *l != ' ')
		return -1;
	it->sep = strcasecmp(sep, "NIL") == 0 ? '\0' : sep[0];
	l++;
	return parse_string(&l, it->name, sizeof(it->name));
}

int
imapc_list(struct imapc *c, bool lsub, const char *pattern,
	   struct imapc_list_item **items_out)
{
	struct imapc_resp r = { 0 };
	struct imapc_list_item *items = NULL;
	const char *verb = lsub ? "LSUB" : "LIST";
	char pat[IMAPC_QUOTED_MAX];
	size_t i, vl = strlen(verb);
	int rc, n = 0;

	*items_out = NULL;
	if (imapc_quote(pattern, pat, sizeof(pat)) < 0)
		return -1;
	rc = imapc_need_ok(&r, imapc_cmd(c, &r, "%s \"\" %s", verb, pat), verb);
	if (rc == 0 && r.nlines > 0 && (items = calloc(r.nlines, sizeof(*items))) == NULL)
		rc = -1;
	for (i = 0; rc == 0 && i < r.nlines; i++) {
		const char *l = r.lines[i];

		if (strncasecmp(l, verb, vl) == 0 && l[vl] == ' ' &&
		    parse_list(l + vl + 1, &items[n]) == 0)
			n++;
	}
	imapc_resp_free(&r);
	if (rc < 0) {
		free(items);
		return -1;
	}
	*items_out = items;
	return n;
}

int
imapc_status(struct imapc *c, const char *mailbox, const char *item,
	     long *value_out)
{
	struct imapc_resp r = { 0 };
	char box[IMAPC_QUOTED_MAX];
	const char *l, *p;
	int rc;

	if (imapc_quote(mailbox, box, sizeof(box)) < 0)
		return -1;
	rc = imapc_need_ok(&r, imapc_cmd(c, &r, "STATUS %s (%s)", box, item), "STATUS");
	l = rc == 0 ? imapc_resp_find(&r, "STATUS ") : NULL;
	p = l != NULL ? strrchr(l, '(') : NULL;
	for (; p != NULL; p = strchr(p, ' ')) {
		p++;
		if (strncasecmp(p, item, strlen(item)) == 0 && p[strlen(item)] == ' ')
			break;
	}
	if (rc == 0 && (p == NULL || sscanf(p + strlen(item), " %ld", value_out) != 1)) {
		fprintf(stderr, "imapc: STATUS: no %s in %s\n", item, l ? l : "(none)");
		errno = EPROTO;
		rc = -1;
	}
	imapc_resp_free(&r);
	return rc;
}

/* "<seq> FETCH (... UID n ... FLAGS (...) ...)" into m.  -1 if not one. */
static int
parse_fetch(const char *l, struct imapc_msg *m)
{
	const char *u, *f, *close;
	size_t n;

	memset(m, 0, sizeof(*m));
	if (sscanf(l, "%u FETCH (", &m->seq) != 1 || strstr(l, " FETCH (") == NULL)
		return -1;
	u = strstr(l, "UID ");
	if (u != NULL)
		m->uid = (unsigned)strtoul(u + 4, NULL, 10);
	f = strstr(l, "FLAGS (");
	if (f == NULL || (close = strchr(f + 7, ')')) == NULL)
		return -1;
	n = (size_t)(close - (f + 7));
	if (n >= sizeof(m->flags))
		n = sizeof(m->flags) - 1;
	memcpy(m->flags, f + 7, n);
	return 0;
}

int
imapc_fetch_flags(struct imapc *c, bool uid, const char *set,
		  struct imapc_msg **msgs_out)
{
	struct imapc_resp r = { 0 };
	struct imapc_msg *msgs = NULL;
	size_t i;
	int rc, n = 0;

	*msgs_out = NULL;
	rc = imapc_cmd(c, &r, "%sFETCH %s (UID FLAGS)", uid ? "UID " : "", set);
	rc = imapc_need_ok(&r, rc, "FETCH");
	if (rc == 0 && r.nlines > 0 && (msgs = calloc(r.nlines, sizeof(*msgs))) == NULL)
		rc = -1;
	for (i = 0; rc == 0 && i < r.nlines; i++)
		if (parse_fetch(r.lines[i], &msgs[n]) == 0)
			n++;
	imapc_resp_free(&r);
	if (rc < 0) {
		free(msgs);
		return -1;
	}
	*msgs_out = msgs;
	return n;
}

/* "QUOTA root (STORAGE u l MESSAGE u l)" into q (the first QUOTA line). */
static void
parse_quota(const char *l, struct imapc_quota *q)
{
	const char *p = l + strlen("QUOTA ");
	char res[32];
	long used, limit;
	int off;

	if (parse_string(&p, q->root, sizeof(q->root)) < 0 || strncmp(p, " (", 2) != 0)
		return;
	p += 2;
	while (sscanf(p, "%31s %ld %ld%n", res, &used, &limit, &off) == 3) {
		if (strcasecmp(res, "STORAGE") == 0) {
			q->storage_used = used;
			q->storage_limit = limit;
		} else if (strcasecmp(res, "MESSAGE") == 0) {
			q->message_used = used;
			q->message_limit = limit;
		}
		p += off;
		while (*p == ' ')
			p++;
	}
}

int
imapc_getquotaroot(struct imapc *c, const char *mailbox, struct imapc_quota *q)
{
	struct imapc_resp r = { 0 };
	char box[IMAPC_QUOTED_MAX];
	const char *l;
	int rc;

	memset(q, 0, sizeof(*q));
	q->storage_used = q->storage_limit = -1;
	q->message_used = q->message_limit = -1;
	if (imapc_quote(mailbox, box, sizeof(box)) < 0)
		return -1;
	rc = imapc_cmd(c, &r, "GETQUOTAROOT %s", box);
	rc = imapc_need_ok(&r, rc, "GETQUOTAROOT");
	l = rc == 0 ? imapc_resp_find(&r, "QUOTA ") : NULL;
	if (l != NULL)
		parse_quota(l, q);
	imapc_resp_free(&r);
	return rc;
}
