/* SPDX-License-Identifier: MIT */
/*
 * policy/passwd_file.c - a Dovecot-style passwd-file as a userdb:
 * `user:password:uid:gid:gecos:home:shell[:extra...]`, kept in memory as a
 * sorted table and re-read when the file changes.  Of the extra fields
 * (everything after the seventh colon, blank-separated, as Dovecot) only
 * `userdb_quota_rule=` (or `quota_rule=`) is kept; the others are ignored.
 *
 * Runs in:  the supervisor.
 * Trust:    the file is admin-controlled; it may hold password hashes, so
 *           no line content other than the user field is ever logged and the
 *           password field is never stored.  Invalid lines are logged once
 *           per read (FILE:LINE and the reason) and skipped; for a duplicate
 *           user the first line wins.
 * Order:    stat on every lookup; a changed inode, size or mtime re-reads
 *           the file.  A file that cannot be read drops the table, so
 *           lookups fail (tempfail) instead of using stale data.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "policy/policy_int.h"
#include "privsep/privsep.h"

#define PWF_LINE_MAX 8192
#define PWF_FIELDS 7

struct pwf_table {
	struct policy_pwf_entry *v;
	size_t n, cap;
};

static void
table_free(struct policy_pwf_entry *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		free(v[i].key);
		free(v[i].home);
		free(v[i].quota_rule);
	}
	free(v);
}

static bool
field_clean(const char *p, bool allow_space)
{
	for (; *p != '\0'; p++) {
		unsigned char c = (unsigned char)*p;

		if (c < 0x20 || c == 0x7f || (c == ' ' && !allow_space))
			return false;
	}
	return true;
}

static int
parse_id(const char *text, uint32_t *id_out)
{
	uint64_t n;

	if (policy_parse_decimal(text, UINT32_MAX - 1, &n) < 0)
		return -1;
	*id_out = (uint32_t)n;
	return 0;
}

/* The quota rule among the extra fields extra (blank-separated), or
 * NULL.  The last one given wins, as in Dovecot. */
static const char *
extra_quota_rule(char *extra, const char **why_out)
{
	static const char *const keys[] = { "userdb_quota_rule=", "quota_rule=" };
	const char *rule = NULL;
	char *tok, *save = NULL;
	size_t k;

	for (tok = strtok_r(extra, " \t", &save); tok != NULL;
	     tok = strtok_r(NULL, " \t", &save))
		for (k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
			if (strncmp(tok, keys[k], strlen(keys[k])) == 0)
				rule = tok + strlen(keys[k]);
	if (rule != NULL && (rule[0] == '\0' || strlen(rule) >= PSEP_NAME_MAX)) {
		*why_out = "empty or too long quota_rule extra field";
		return NULL;
	}
	return rule;
}

/* Split line in place and fill e (key, home and quota_rule are malloc'd). */
static int
parse_line(char *line, struct policy_pwf_entry *e, const char **why_out)
{
	char *f[PWF_FIELDS] = { NULL }, *p = line, *k;
	const char *rule = NULL, *rwhy = NULL;
	uint32_t uid, gid;
	size_t n = 0;

	if (!field_clean(line, true)) {
		*why_out = "control character in line";
		return -1;
	}
	while (n < PWF_FIELDS) {
		f[n++] = p;
		p = strchr(p, ':');
		if (p == NULL)
			break;
		*p++ = '\0';
	}
	if (n < 4) {
		*why_out = "fewer than 4 fields (user:password:uid:gid)";
		return -1;
	}
	if (f[0][0] == '\0' || strlen(f[0]) >= PSEP_NAME_MAX || !field_clean(f[0], false)) {
		*why_out = "invalid user field";
		return -1;
	}
	if (parse_id(f[2], &uid) < 0 || parse_id(f[3], &gid) < 0) {
		*why_out = "uid or gid is not a number";
		return -1;
	}
	if (n >= 6 && strlen(f[5]) >= PSEP_PATH_MAX) {
		*why_out = "home directory too long";
		return -1;
	}
	if (n == PWF_FIELDS && p != NULL) {
		rule = extra_quota_rule(p, &rwhy);
		if (rwhy != NULL) {
			*why_out = rwhy;
			return -1;
		}
	}
	e->key = xstrdup(f[0]);
	for (k = e->key; *k != '\0'; k++)
		if (*k >= 'A' && *k <= 'Z')
			*k = (char)(*k - 'A' + 'a');
	e->home = xstrdup(n >= 6 ? f[5] : "");
	e->quota_rule = rule != NULL ? xstrdup(rule) : NULL;
	e->uid = uid;
	e->gid = gid;
	return 0;
}

static int
entry_cmp(const void *a, const void *b)
{
	const struct policy_pwf_entry *x = a, *y = b;
	int r = strcmp(x->key, y->key);

	if (r != 0)
		return r;
	return x->line < y->line ? -1 : x->line > y->line;
}

/* Sort and drop later duplicates (logged). */
static void
table_finish(struct pwf_table *t, const char *path)
{
	size_t i, out = 0;

	if (t->n > 1)
		qsort(t->v, t->n, sizeof(*t->v), entry_cmp);
	for (i = 0; i < t->n; i++) {
		if (out > 0 && strcmp(t->v[out - 1].key, t->v[i].key) == 0) {
			log_warn("userdb: %s:%u: duplicate user '%s' skipped (first at line %u)",
				 path, t->v[i].line, t->v[i].key, t->v[out - 1].line);
			free(t->v[i].key);
			free(t->v[i].home);
			free(t->v[i].quota_rule);
			continue;
		}
		t->v[out++] = t->v[i];
	}
	t->n = out;
}

static void
table_add_line(struct pwf_table *t, char *line, unsigned lineno, const char *path,
	       unsigned *bad_out)
{
	struct policy_pwf_entry e = { .line = lineno };
	const char *why = "invalid line";
	char *p = line + strspn(line, " \t");

	line[strcspn(line, "\r\n")] = '\0';
	if (*p == '\0' || *p == '#')
		return;
	if (strlen(line) > PWF_LINE_MAX)
		why = "line too long";
	if (strlen(line) > PWF_LINE_MAX || parse_line(line, &e, &why) < 0) {
		log_warn("userdb: %s:%u: invalid line skipped: %s", path, lineno, why);
		(*bad_out)++;
		return;
	}
	if (t->n == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 64;
		t->v = xrealloc(t->v, t->cap * sizeof(*t->v));
	}
	t->v[t->n++] = e;
}

static int
read_table(FILE *f, const char *path, struct pwf_table *t)
{
	char *buf = NULL;
	size_t cap = 0;
	unsigned lineno = 0, bad = 0;
	int ret = -1;

	while (getline(&buf, &cap, f) >= 0)
		table_add_line(t, buf, ++lineno, path, &bad);
	if (ferror(f))
		goto out;
	table_finish(t, path);
	log_info("userdb: read %s: %zu users, %u invalid lines", path, t->n, bad);
	ret = 0;
out:
	free(buf);
	return ret;
}

static void
pwf_drop(struct policy_pwf *pwf)
{
	table_free(pwf->v, pwf->n);
	pwf->v = NULL;
	pwf->n = 0;
	pwf->loaded = false;
}

static int
pwf_load(struct policy_pwf *pwf)
{
	struct pwf_table t = { NULL, 0, 0 };
	struct stat st;
	FILE *f = NULL;
	int fd, ret = -1, saved;

	pwf_drop(pwf);
	fd = open(pwf->path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		goto out;
	if (fstat(fd, &st) < 0) {
		close(fd);
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		errno = EISDIR;
		goto out;
	}
	f = fdopen(fd, "r");
	if (f == NULL) {
		close(fd);
		goto out;
	}
	if (read_table(f, pwf->path, &t) < 0)
		goto out;
	pwf->v = t.v;
	pwf->n = t.n;
	t.v = NULL;
	t.n = 0;
	pwf->dev = st.st_dev;
	pwf->ino = st.st_ino;
	pwf->size = st.st_size;
	pwf->mtime = st.st_mtim;
	pwf->loaded = true;
	ret = 0;
out:
	saved = errno;
	if (f != NULL)
		fclose(f);
	table_free(t.v, t.n);
	errno = saved;
	return ret;
}

int
policy_pwf_refresh(struct policy_pwf *pwf)
{
	struct stat st;

	if (stat(pwf->path, &st) < 0) {
		pwf_drop(pwf);
		return -1;
	}
	if (pwf->loaded && st.st_dev == pwf->dev && st.st_ino == pwf->ino &&
	    st.st_size == pwf->size && st.st_mtim.tv_sec == pwf->mtime.tv_sec &&
	    st.st_mtim.tv_nsec == pwf->mtime.tv_nsec)
		return 0;
	return pwf_load(pwf);
}

static int
key_cmp(const void *key, const void *elem)
{
	const struct policy_pwf_entry *e = elem;

	return strcmp(key, e->key);
}

const struct policy_pwf_entry *
policy_pwf_find(const struct policy_pwf *pwf, const char *key)
{
	if (!pwf->loaded || pwf->n == 0)
		return NULL;
	return bsearch(key, pwf->v, pwf->n, sizeof(*pwf->v), key_cmp);
}

void
policy_pwf_clear(struct policy_pwf *pwf)
{
	pwf_drop(pwf);
	free(pwf->path);
	memset(pwf, 0, sizeof(*pwf));
}
