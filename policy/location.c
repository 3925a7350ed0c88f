/* SPDX-License-Identifier: MIT */
/*
 * policy/location.c - expand mail_location for one user into a trusted
 * base directory and a relative path below it.
 *
 * Runs in:  the supervisor (userdb lookup, config check).
 * Trust:    the template is admin-controlled; the user name comes from the
 *           userdb key (derived from an untrusted address) and the home
 *           from the userdb.  The base is the part the admin controls (the
 *           home for ~/, else the leading components without variables);
 *           everything the user may control is in rel, which the writer
 *           walks without following symlinks.  rel never starts with '/',
 *           never holds '.', '..' or empty components.
 */
#include <errno.h>
#include <string.h>

#include "policy/policy_int.h"

struct loc_vars {
	const char *u, *n, *d;
	size_t u_len, n_len, d_len;
};

struct loc_buf {
	char *p;
	size_t size, len;
};

static const char why_too_long[] = "mail location too long";
static const char why_not_below[] = "mail_location must name a directory below the base";

static int
buf_add(struct loc_buf *b, const char *s, size_t n)
{
	if (b->len + n >= b->size)
		return -1;
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
	return 0;
}

/* A value substituted for a variable must be one path component. */
static bool
value_ok(const char *v, size_t len)
{
	if (len == 0 || memchr(v, '/', len) != NULL)
		return false;
	return !(len == 1 && v[0] == '.') && !(len == 2 && v[0] == '.' && v[1] == '.');
}

/* The value of variable c into *val_out, *len_out; -1 if c is none. */
static int
var_value(const struct loc_vars *v, char c, const char **val_out, size_t *len_out)
{
	switch (c) {
	case '%':
		*val_out = "%";
		*len_out = 1;
		return 0;
	case 'u':
		*val_out = v->u;
		*len_out = v->u_len;
		return 0;
	case 'n':
		*val_out = v->n;
		*len_out = v->n_len;
		return 0;
	case 'd':
		*val_out = v->d;
		*len_out = v->d_len;
		return 0;
	default:
		return -1;
	}
}

/* Expand one template component into out; *had_var_out tells if it used
 * a variable. */
static int
expand_component(const char *t, size_t tlen, const struct loc_vars *v,
		 struct loc_buf *out, bool *had_var_out, const char **why_out)
{
	const char *val;
	size_t i, len;

	*had_var_out = false;
	for (i = 0; i < tlen; i++) {
		if (t[i] != '%') {
			if (buf_add(out, &t[i], 1) < 0)
				break;
			continue;
		}
		if (++i == tlen || var_value(v, t[i], &val, &len) < 0) {
			*why_out = "unknown variable in mail_location (use %u, %n, %d or %%)";
			return -1;
		}
		if (t[i] != '%' && !value_ok(val, len)) {
			*why_out = t[i] == 'd' ? "user has no usable domain for %d"
					       : "user name not usable as a directory name";
			return -1;
		}
		*had_var_out |= t[i] != '%';
		if (buf_add(out, val, len) < 0)
			break;
	}
	if (i < tlen) {
		*why_out = why_too_long;
		return -1;
	}
	return 0;
}

/* Base from a home directory: absolute, duplicate and trailing slashes
 * removed. */
static int
base_from_home(const char *home, struct loc_buf *base, const char **why_out)
{
	const char *p;

	if (home == NULL || home[0] == '\0') {
		*why_out = "user has no home directory for ~/ in mail_location";
		return -1;
	}
	if (home[0] != '/') {
		*why_out = "user's home directory is not an absolute path";
		return -1;
	}
	for (p = home; *p != '\0'; p++) {
		if (*p == '/' && (p[1] == '/' || p[1] == '\0'))
			continue;
		if (buf_add(base, p, 1) < 0) {
			*why_out = why_too_long;
			return -1;
		}
	}
	if (base->len == 0 && buf_add(base, "/", 1) < 0) {
		*why_out = why_too_long;
		return -1;
	}
	return 0;
}

/*
 * Walk the template's components: leading ones without variables go to
 * base (absolute templates only), the rest to rel.
 */
static int
split_components(const char *t, bool to_base, const struct loc_vars *v,
		 struct loc_buf *base, struct loc_buf *rel, const char **why_out)
{
	char comp_buf[PSEP_NAME_MAX];
	struct loc_buf comp = { comp_buf, sizeof(comp_buf), 0 };
	struct loc_buf *dst;
	bool had_var;
	size_t n;

	for (; *t != '\0'; t += n) {
		t += strspn(t, "/");
		n = strcspn(t, "/");
		if (n == 0 || (n == 1 && t[0] == '.'))
			continue;
		comp.len = 0;
		comp.p[0] = '\0';
		if (expand_component(t, n, v, &comp, &had_var, why_out) < 0)
			return -1;
		if (strcmp(comp.p, "..") == 0) {
			*why_out = why_not_below;
			return -1;
		}
		to_base = to_base && !had_var;
		dst = to_base ? base : rel;
		if ((dst->len > 0 && dst->p[dst->len - 1] != '/' &&
		     buf_add(dst, "/", 1) < 0) ||
		    buf_add(dst, comp.p, comp.len) < 0) {
			*why_out = why_too_long;
			return -1;
		}
	}
	return 0;
}

static void
vars_from_user(const char *user, struct loc_vars *v)
{
	const char *at = strrchr(user, '@');

	v->u = user;
	v->u_len = strlen(user);
	v->n = user;
	v->n_len = at != NULL ? (size_t)(at - user) : v->u_len;
	v->d = at != NULL ? at + 1 : "";
	v->d_len = strlen(v->d);
}

static int
check_template(const char *location, const char **why_out)
{
	const char *path;

	if (strncmp(location, "maildir:", 8) != 0) {
		*why_out = "mail_location must start with maildir:";
		return -1;
	}
	path = location + 8;
	if (path[0] != '/' && strncmp(path, "~/", 2) != 0) {
		*why_out = "mail_location path must start with ~/ or /";
		return -1;
	}
	if (strchr(path, ':') != NULL) {
		*why_out = "mail_location options (:KEY=VALUE) are not supported";
		return -1;
	}
	return 0;
}

int
policy_mail_location_expand(const char *location, const char *user,
			    const char *home, char *base_out, size_t base_size,
			    char *rel_out, size_t rel_size, const char **why_out)
{
	struct loc_buf base = { base_out, base_size, 0 };
	struct loc_buf rel = { rel_out, rel_size, 0 };
	struct loc_vars v;
	const char *path;
	bool absolute;
	int ret = -1;

	if (base_size < 2 || rel_size < 2) {
		*why_out = why_too_long;
		goto out;
	}
	base_out[0] = rel_out[0] = '\0';
	if (check_template(location, why_out) < 0)
		goto out;
	path = location + 8;
	absolute = path[0] == '/';
	vars_from_user(user, &v);
	if (absolute)
		(void)buf_add(&base, "/", 1);
	else if (base_from_home(home, &base, why_out) < 0)
		goto out;
	if (split_components(absolute ? path : path + 2, absolute, &v, &base, &rel,
			     why_out) < 0)
		goto out;
	if (rel.len == 0) {
		*why_out = why_not_below;
		goto out;
	}
	ret = 0;
out:
	if (ret < 0) {
		if (base_size > 0)
			base_out[0] = '\0';
		if (rel_size > 0)
			rel_out[0] = '\0';
		errno = EINVAL;
	}
	return ret;
}
