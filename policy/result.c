/* SPDX-License-Identifier: MIT */
/*
 * policy/result.c - delivery results: the one place where an errno from a
 * mailbox write, or a failed userdb lookup, becomes an SMTP reply code,
 * an enhanced status code and a line of text.
 *
 * Runs in:  the supervisor (and anyone who builds a struct dlv_result).
 * Trust:    the text goes to the MTA: it never holds CR, LF or other
 *           control bytes, and always fits dlv_result.text.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "policy/policy.h"
#include "privsep/privsep.h"

struct errno_map {
	int err;
	enum dlv_status status;
	unsigned code;
	const char *enhanced;
	const char *label;
};

static const char not_writable_type[] =
	"mailbox not writable: symlink or unexpected file type in Maildir";
static const char not_writable_perm[] =
	"mailbox not writable: permission denied or not owned by user";
static const char resources[] = "insufficient local resources";
static const char bad_path[] = "invalid mailbox path";

static const struct errno_map errno_map[] = {
	{ EDQUOT, DLV_PERMFAIL, 552, "5.2.2", "mailbox full" },
	{ ENOSPC, DLV_TEMPFAIL, 452, "4.2.2", "insufficient disk space" },
	{ ELOOP, DLV_TEMPFAIL, 450, "4.2.0", not_writable_type },
	{ ENOTDIR, DLV_TEMPFAIL, 450, "4.2.0", not_writable_type },
	{ EXDEV, DLV_TEMPFAIL, 450, "4.2.0", not_writable_type },
	{ EPERM, DLV_TEMPFAIL, 450, "4.2.0", not_writable_perm },
	{ EACCES, DLV_TEMPFAIL, 450, "4.2.0", not_writable_perm },
	{ ENOENT, DLV_TEMPFAIL, 450, "4.2.0", "mailbox not available: directory missing" },
	{ EROFS, DLV_TEMPFAIL, 451, "4.3.0", "read-only file system" },
	{ EIO, DLV_TEMPFAIL, 451, "4.3.0", "I/O error" },
	{ EMFILE, DLV_TEMPFAIL, 451, "4.3.0", resources },
	{ ENFILE, DLV_TEMPFAIL, 451, "4.3.0", resources },
	{ ENOMEM, DLV_TEMPFAIL, 451, "4.3.0", resources },
	{ ETIMEDOUT, DLV_TEMPFAIL, 451, "4.3.0", "timeout" },
	{ ENAMETOOLONG, DLV_TEMPFAIL, 451, "4.3.0", bad_path },
	{ EINVAL, DLV_TEMPFAIL, 451, "4.3.0", bad_path },
};

void
policy_result_set(struct dlv_result *r, enum dlv_status status, unsigned code,
		  const char *enhanced, const char *fmt, ...)
{
	va_list ap;
	char *p;

	memset(r, 0, sizeof(*r));
	r->status = status;
	r->code = code;
	(void)xstrlcpy(r->enhanced, enhanced, sizeof(r->enhanced));
	va_start(ap, fmt);
	(void)vsnprintf(r->text, sizeof(r->text), fmt, ap);
	va_end(ap);
	for (p = r->text; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = ' ';
}

void
policy_result_from_errno(struct dlv_result *r, int err, const char *what)
{
	const char *name;
	size_t i;

	if (what == NULL || what[0] == '\0')
		what = "write";
	if (err == 0) {
		policy_result_set(r, DLV_OK, 250, "2.0.0", "OK");
		return;
	}
	for (i = 0; i < sizeof(errno_map) / sizeof(errno_map[0]); i++) {
		if (errno_map[i].err != err)
			continue;
		policy_result_set(r, errno_map[i].status, errno_map[i].code,
				  errno_map[i].enhanced, "%s (%s: %s)",
				  errno_map[i].label, what, strerror(err));
		return;
	}
	name = strerrorname_np(err);
	if (name != NULL)
		policy_result_set(r, DLV_TEMPFAIL, 451, "4.3.0",
				  "internal error %s (%s: %s)", name, what,
				  strerror(err));
	else
		policy_result_set(r, DLV_TEMPFAIL, 451, "4.3.0",
				  "internal error errno %d (%s: %s)", err, what,
				  strerror(err));
}

const char *
policy_user_quota_rule(const struct policy_settings *s, const struct policy_user *u)
{
	if (u->quota_rule[0] != '\0')
		return u->quota_rule;
	return s->quota_rule != NULL ? s->quota_rule : "";
}

void
policy_result_quota(struct dlv_result *r, const struct policy_settings *s)
{
	if (s->quota_full_tempfail)
		policy_result_set(r, DLV_TEMPFAIL, 452, "4.2.2",
				  "Mailbox is full (quota exceeded)");
	else
		policy_result_set(r, DLV_PERMFAIL, 552, "5.2.2",
				  "Mailbox is full (quota exceeded)");
}

void
policy_result_from_lookup(struct dlv_result *r, enum policy_lookup l, const char *why)
{
	enum dlv_status status = DLV_TEMPFAIL;
	const char *enhanced = "4.3.0", *label = "userdb unavailable";
	unsigned code = 451;

	switch (l) {
	case POLICY_USER_FOUND:
		policy_result_set(r, DLV_OK, 250, "2.1.5", "OK");
		return;
	case POLICY_USER_UNKNOWN:
		status = DLV_PERMFAIL;
		code = 550;
		enhanced = "5.1.1";
		label = "user unknown";
		break;
	case POLICY_USER_TEMPFAIL:
		break;
	case POLICY_USER_BADUID:
		status = DLV_PERMFAIL;
		code = 550;
		enhanced = "5.7.1";
		label = "delivery to this user not allowed";
		break;
	case POLICY_USER_BADADDR:
		status = DLV_PERMFAIL;
		code = 501;
		enhanced = "5.1.3";
		label = "bad recipient address syntax";
		break;
	}
	if (why == NULL || why[0] == '\0' || strcmp(why, label) == 0)
		policy_result_set(r, status, code, enhanced, "%s", label);
	else
		policy_result_set(r, status, code, enhanced, "%s (%s)", label, why);
}
