/* SPDX-License-Identifier: MIT */
/*
 * policy/userdb.c - resolve a recipient address to a user: address checks,
 * detail stripping, lookup in the system passwd or a passwd-file, uid
 * rules, expansion of mail_location.
 *
 * Runs in:  the supervisor (root), once per RCPT.
 * Trust:    the address comes from the network through lmtpd: it is
 *           length-checked, control bytes are refused, only a lower-cased
 *           copy is used as a key.  A found user is only returned if its uid
 *           passes the uid rules (never 0) and its Maildir expands to a
 *           trusted base plus a relative path.
 */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "policy/policy_int.h"
#include "privsep/privsep.h"

#define PW_BUF_MAX (1024 * 1024)

struct policy_userdb {
	struct policy_settings set;
	bool is_file;
	bool failing;                  /* passwd-file unreadable, logged */
	struct policy_pwf pwf;
	char why[64];                  /* a why_out built at lookup time */
};

/* The lookup key: address without detail, ASCII lower-cased. */
struct addr_key {
	char key[PSEP_ADDR_MAX];
	size_t local_len;              /* bytes of key before '@' */
	char detail[PSEP_NAME_MAX];    /* after the delimiter, "" if none or
					* too long */
};

bool
policy_uid_allowed(const struct policy_settings *s, uid_t uid)
{
	if (uid == 0 || uid == (uid_t)-1 || uid < s->first_valid_uid)
		return false;
	return s->last_valid_uid == 0 || uid <= s->last_valid_uid;
}

int
policy_userdb_open(const struct policy_settings *s, struct policy_userdb **out,
		   const char **why_out)
{
	struct policy_userdb *db = xcalloc(1, sizeof(*db));
	int ret = -1;

	policy_settings_copy(&db->set, s);
	if (strcmp(s->userdb, "passwd") == 0) {
		ret = 0;
		goto out;
	}
	if (strncmp(s->userdb, "passwd-file:", 12) != 0 || s->userdb[12] != '/') {
		*why_out = "unknown userdb (use passwd or passwd-file:/path)";
		errno = EINVAL;
		goto out;
	}
	db->is_file = true;
	db->pwf.path = xstrdup(s->userdb + 12);
	if (policy_pwf_refresh(&db->pwf) < 0) {
		log_err("userdb: cannot read %s: %s", db->pwf.path, strerror(errno));
		*why_out = "cannot read passwd-file";
		goto out;
	}
	ret = 0;
out:
	if (ret < 0)
		policy_userdb_free(&db);
	*out = db;
	return ret;
}

void
policy_userdb_free(struct policy_userdb **db)
{
	if (db == NULL || *db == NULL)
		return;
	policy_pwf_clear(&(*db)->pwf);
	policy_settings_clear(&(*db)->set);
	free(*db);
	*db = NULL;
}

/* ---- address ----------------------------------------------------------- */

/* Position of the detail delimiter in local[0..len), or len.  A delimiter
 * in the first byte does not count (the user part would be empty). */
static size_t
detail_start(const char *local, size_t len, const char *delims)
{
	size_t i;

	if (delims == NULL || delims[0] == '\0')
		return len;
	for (i = 1; i < len; i++)
		if (strchr(delims, local[i]) != NULL)
			return i;
	return len;
}

static int
addr_to_key(const char *address, const char *delims, struct addr_key *k,
	    const char **why_out)
{
	size_t len = address != NULL ? strnlen(address, PSEP_ADDR_MAX) : 0;
	size_t i, local_len, cut;
	const char *at;

	if (len == 0 || len >= PSEP_ADDR_MAX) {
		*why_out = len == 0 ? "empty address" : "address too long";
		return -1;
	}
	for (i = 0; i < len; i++) {
		if ((unsigned char)address[i] < 0x20 || address[i] == 0x7f) {
			*why_out = "control character in address";
			return -1;
		}
	}
	at = strrchr(address, '@');
	local_len = at != NULL ? (size_t)(at - address) : len;
	if (local_len == 0 || (at != NULL && at[1] == '\0')) {
		*why_out = local_len == 0 ? "no local part" : "empty domain";
		return -1;
	}
	cut = detail_start(address, local_len, delims);
	k->detail[0] = '\0';
	if (cut + 1 < local_len && local_len - cut - 1 < sizeof(k->detail)) {
		memcpy(k->detail, address + cut + 1, local_len - cut - 1);
		k->detail[local_len - cut - 1] = '\0';
	}
	memcpy(k->key, address, cut);
	k->key[cut] = '\0';
	if (at != NULL)
		memcpy(k->key + cut, at, strlen(at) + 1);
	k->local_len = cut;
	for (i = 0; k->key[i] != '\0'; i++)
		if (k->key[i] >= 'A' && k->key[i] <= 'Z')
			k->key[i] = (char)(k->key[i] - 'A' + 'a');
	return 0;
}

/* ---- passwd-file ------------------------------------------------------- */

static enum policy_lookup
lookup_file(struct policy_userdb *db, struct addr_key *k, struct policy_user *u,
	    const char **why_out)
{
	const struct policy_pwf_entry *e;

	if (policy_pwf_refresh(&db->pwf) < 0) {
		if (!db->failing)
			log_err("userdb: cannot read %s: %s", db->pwf.path,
				strerror(errno));
		db->failing = true;
		*why_out = "cannot read passwd-file";
		return POLICY_USER_TEMPFAIL;
	}
	if (db->failing)
		log_info("userdb: %s readable again", db->pwf.path);
	db->failing = false;
	e = policy_pwf_find(&db->pwf, k->key);
	if (e == NULL && k->key[k->local_len] == '@') {
		k->key[k->local_len] = '\0';
		e = policy_pwf_find(&db->pwf, k->key);
	}
	if (e == NULL) {
		*why_out = "user unknown";
		return POLICY_USER_UNKNOWN;
	}
	(void)xstrlcpy(u->name, e->key, sizeof(u->name));
	(void)xstrlcpy(u->home, e->home, sizeof(u->home));
	if (e->quota_rule != NULL)
		(void)xstrlcpy(u->quota_rule, e->quota_rule, sizeof(u->quota_rule));
	u->uid = e->uid;
	u->gid = e->gid;
	u->groups[0] = e->gid;
	u->ngroups = 1;
	return POLICY_USER_FOUND;
}

/* ---- system passwd ----------------------------------------------------- */

/* Supplementary groups of name, gid first, capped at PSEP_MAX_GROUPS. */
static void
passwd_groups(const char *name, gid_t gid, struct policy_user *u)
{
	int n = PSEP_MAX_GROUPS * 2, i, tries;
	gid_t *g = xcalloc((size_t)n, sizeof(*g));
	size_t j;
	bool dup;

	u->groups[0] = gid;
	u->ngroups = 1;
	for (tries = 0; getgrouplist(name, gid, g, &n) < 0; tries++) {
		if (tries == 3 || n <= 0) {
			n = 0;
			break;
		}
		g = xrealloc(g, (size_t)n * sizeof(*g));
	}
	for (i = 0; i < n; i++) {
		for (dup = false, j = 0; j < u->ngroups; j++)
			dup |= u->groups[j] == g[i];
		if (dup)
			continue;
		if (u->ngroups == PSEP_MAX_GROUPS) {
			log_warn("userdb: user=%s is in more than %d groups; the rest are ignored",
				 name, PSEP_MAX_GROUPS);
			break;
		}
		u->groups[u->ngroups++] = g[i];
	}
	free(g);
}

static enum policy_lookup
lookup_passwd(struct addr_key *k, struct policy_user *u, const char **why_out)
{
	enum policy_lookup ret = POLICY_USER_TEMPFAIL;
	struct passwd pw, *res = NULL;
	size_t size = 4096;
	char *buf = NULL;
	int r;

	k->key[k->local_len] = '\0';
	*why_out = "user unknown";
	if (k->local_len >= sizeof(u->name))
		return POLICY_USER_UNKNOWN;
	do {
		buf = xrealloc(buf, size);
		r = getpwnam_r(k->key, &pw, buf, size, &res);
		size *= 2;
	} while (r == ERANGE && size <= PW_BUF_MAX);
	if (res == NULL) {
		if (r == 0 || r == ENOENT || r == ESRCH) {
			ret = POLICY_USER_UNKNOWN;
			goto out;
		}
		log_err("userdb: getpwnam: %s", strerror(r));
		*why_out = "system user database unavailable";
		goto out;
	}
	if (!xstrlcpy(u->name, pw.pw_name, sizeof(u->name)) ||
	    !xstrlcpy(u->home, pw.pw_dir, sizeof(u->home))) {
		*why_out = "user name or home directory too long";
		goto out;
	}
	u->uid = pw.pw_uid;
	u->gid = pw.pw_gid;
	passwd_groups(pw.pw_name, pw.pw_gid, u);
	ret = POLICY_USER_FOUND;
out:
	free(buf);
	return ret;
}

/* ---- lookup ------------------------------------------------------------ */

enum policy_lookup
policy_userdb_lookup(struct policy_userdb *db, const char *address,
		     struct policy_user *user, const char **why_out)
{
	struct addr_key k;
	enum policy_lookup l;

	memset(user, 0, sizeof(*user));
	if (addr_to_key(address, db->set.recipient_delimiter, &k, why_out) < 0)
		return POLICY_USER_BADADDR;
	l = db->is_file ? lookup_file(db, &k, user, why_out)
			: lookup_passwd(&k, user, why_out);
	if (l != POLICY_USER_FOUND)
		goto out;
	if (!policy_uid_allowed(&db->set, user->uid)) {
		snprintf(db->why, sizeof(db->why), "uid %lu not allowed",
			 (unsigned long)user->uid);
		*why_out = db->why;
		l = POLICY_USER_BADUID;
		goto out;
	}
	if (user->gid == 0) {
		*why_out = "gid 0 not allowed";
		l = POLICY_USER_BADUID;
		goto out;
	}
	/* A writer refuses to act with group 0 among the groups (every
	 * delivery would kill it and answer 451): refuse at RCPT instead. */
	for (size_t i = 0; i < user->ngroups; i++) {
		if (user->groups[i] == 0) {
			*why_out = "supplementary group 0 (root) not allowed";
			l = POLICY_USER_BADUID;
			goto out;
		}
	}
	memcpy(user->detail, k.detail, sizeof(user->detail));
	if (policy_mail_location_expand(db->set.mail_location, user->name,
					user->home, user->mail_base,
					sizeof(user->mail_base), user->mail_rel,
					sizeof(user->mail_rel), why_out) < 0)
		l = POLICY_USER_TEMPFAIL;
out:
	if (l != POLICY_USER_FOUND)
		memset(user, 0, sizeof(*user));
	return l;
}

/* ---- enumeration ------------------------------------------------------- */

static int
foreach_passwd(struct policy_userdb *db, int (*cb)(const char *name, void *arg),
	       void *arg)
{
	struct passwd *pw;
	int ret = 0;

	setpwent();
	for (;;) {
		errno = 0;
		pw = getpwent();
		if (pw == NULL)
			break;
		if (!policy_uid_allowed(&db->set, pw->pw_uid) || pw->pw_gid == 0 ||
		    strnlen(pw->pw_name, PSEP_NAME_MAX) >= PSEP_NAME_MAX)
			continue;
		ret = cb(pw->pw_name, arg);
		if (ret != 0)
			break;
	}
	endpwent();
	return ret;
}

int
policy_userdb_foreach(struct policy_userdb *db,
		      int (*cb)(const char *name, void *arg), void *arg)
{
	size_t i;
	int ret;

	if (!db->is_file)
		return foreach_passwd(db, cb, arg);
	if (policy_pwf_refresh(&db->pwf) < 0) {
		int saved = errno;

		log_err("userdb: cannot read %s: %s", db->pwf.path, strerror(saved));
		errno = saved;
		return -1;
	}
	for (i = 0; i < db->pwf.n; i++) {
		ret = cb(db->pwf.v[i].key, arg);
		if (ret != 0)
			return ret;
	}
	return 0;
}
