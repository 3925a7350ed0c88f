/* SPDX-License-Identifier: MIT */
/*
 * storage/quota.c - the Maildir++ quota file "maildirsize" as Dovecot 2.3
 * ("quota = maildir") and Courier read and write it, and Dovecot's
 * quota_rule syntax.
 *
 * Runs in:  a writer, with the recipient's credentials (parsers anywhere).
 * Trust:    maildirsize and the folders are user-writable: at most 5120
 *           octets are read (a larger file is recalculated, as Dovecot),
 *           sums are overflow-checked, nothing is followed (O_NOFOLLOW,
 *           fstatat AT_SYMLINK_NOFOLLOW), the scan is bounded in folders.
 * Format:   "<bytes>S,<count>C\n" (0 or absent = unlimited), then
 *           "<bytes> <count>\n" lines whose sum is the usage.
 * Order:    recalculation writes a temp file created O_EXCL in the root,
 *           fsyncs, renames it over maildirsize; updates append one line
 *           with O_APPEND in one write().
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/sidefile_int.h"
#include "storage/storage.h"

#define QUOTA_LIMIT_MAX ((uint64_t)INT64_MAX)

/* Parse an unsigned decimal at *p; advances *p.  -1 if none or overflow. */
static int
quota_parse_u64(const char **p, const char *end, uint64_t *out)
{
	uint64_t v = 0;
	const char *s = *p;

	if (s >= end || *s < '0' || *s > '9')
		return -1;
	for (; s < end && *s >= '0' && *s <= '9'; s++) {
		if (v > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
			return -1;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*p = s;
	*out = v;
	return 0;
}

/* Optionally signed decimal within [-INT64_MAX, INT64_MAX]. */
static int
quota_parse_i64(const char **p, const char *end, int64_t *out)
{
	bool neg = false;
	uint64_t v;

	if (*p < end && **p == '-') {
		neg = true;
		(*p)++;
	}
	if (quota_parse_u64(p, end, &v) < 0 || v > (uint64_t)INT64_MAX)
		return -1;
	*out = neg ? -(int64_t)v : (int64_t)v;
	return 0;
}

/* "<n>S,<n>C" in any order, either absent; bad parts count as 0, as
 * Dovecot's maildir_parse_limit (which keeps going).  Returns false if any
 * part was bad. */
static bool
quota_parse_limits(const char *s, const char *end, uint64_t *bytes,
		   uint64_t *count)
{
	bool ok = true;
	uint64_t v;
	const char *p;

	*bytes = 0;
	*count = 0;
	while (s <= end) {
		p = s;
		if (quota_parse_u64(&p, end, &v) < 0 || p + 1 > end ||
		    (p + 1 < end && p[1] != ',') || (*p != 'S' && *p != 'C')) {
			ok = false;
		} else if (*p == 'S') {
			*bytes = v > QUOTA_LIMIT_MAX ? QUOTA_LIMIT_MAX : v;
		} else {
			*count = v > QUOTA_LIMIT_MAX ? QUOTA_LIMIT_MAX : v;
		}
		p = memchr(s, ',', (size_t)(end - s));
		if (p == NULL)
			break;
		s = p + 1;
	}
	return ok;
}

/* "<bytes> <count>" exactly; count within int, as Dovecot's %d. */
static int
quota_parse_line(const char *s, const char *end, int64_t *bytes, int64_t *count)
{
	if (quota_parse_i64(&s, end, bytes) < 0 || s >= end || *s != ' ')
		return -1;
	s++;
	if (quota_parse_i64(&s, end, count) < 0 || s != end)
		return -1;
	if (*count > INT32_MAX || *count < -(int64_t)INT32_MAX)
		return -1;
	return 0;
}

int
store_quota_parse(const char *buf, size_t len, struct store_quota *out)
{
	const char *p, *end, *nl;
	int64_t b, c;

	out->limit_bytes = out->limit_count = 0;
	out->used_bytes = out->used_count = 0;
	out->lines = 0;
	out->valid = false;
	out->file_size = len;
	/* only complete lines count; a NUL anywhere in them is corruption */
	while (len > 0 && buf[len - 1] != '\n')
		len--;
	if (len == 0 || memchr(buf, '\0', len) != NULL)
		return 0;
	end = buf + len;
	nl = memchr(buf, '\n', len);
	(void)quota_parse_limits(buf, nl, &out->limit_bytes, &out->limit_count);
	for (p = nl + 1; p < end; p = nl + 1) {
		nl = memchr(p, '\n', (size_t)(end - p));
		if (quota_parse_line(p, nl, &b, &c) < 0 ||
		    __builtin_add_overflow(out->used_bytes, b, &out->used_bytes) ||
		    __builtin_add_overflow(out->used_count, c, &out->used_count))
			return 0;
		out->lines++;
	}
	out->valid = out->used_bytes >= 0 && out->used_count >= 0;
	return 0;
}

int
store_quota_read(int root_fd, const struct store_quota_conf *conf,
		 struct store_quota *out)
{
	char buf[STORE_QUOTA_MAX_READ + 1];
	struct stat st;
	ssize_t n;
	bool more;

	memset(out, 0, sizeof(*out));
	out->limit_bytes = conf->limits.bytes;
	out->limit_count = conf->limits.count;
	n = store_side_read(root_fd, STORE_QUOTA_FILE, buf, STORE_QUOTA_MAX_READ,
			    &more, &st);
	if (n < 0)
		return errno == ENOENT ? 0 : -1;
	store_quota_parse(buf, (size_t)n, out);
	out->exists = true;
	out->mtime = st.st_mtime;
	out->too_big = (size_t)n >= STORE_QUOTA_MAX_READ;
	out->limits_differ = out->limit_bytes != conf->limits.bytes ||
			     out->limit_count != conf->limits.count;
	if (conf->force) {
		out->limit_bytes = conf->limits.bytes;
		out->limit_count = conf->limits.count;
	}
	return 0;
}

static bool
quota_over(const struct store_quota *q)
{
	return (q->limit_bytes != 0 && q->used_bytes >= 0 &&
		(uint64_t)q->used_bytes > q->limit_bytes) ||
	       (q->limit_count != 0 && q->used_count >= 0 &&
		(uint64_t)q->used_count > q->limit_count);
}

bool
store_quota_need_recalc(const struct store_quota *q,
			const struct store_quota_conf *conf, time_t now)
{
	if (!q->exists || !q->valid || q->too_big) {
		/* Dovecot: with no limit at all and no forced rule there is
		 * nothing to enforce and the file is left alone */
		return conf->force || conf->limits.bytes != 0 ||
		       conf->limits.count != 0 || q->limit_bytes != 0 ||
		       q->limit_count != 0;
	}
	if (conf->force && q->limits_differ)
		return true;
	if (quota_over(q))
		return q->lines > 1 || q->mtime < now - STORE_QUOTA_STALE_SECS;
	return false;
}

bool
store_quota_fits(const struct store_quota *q, uint64_t size)
{
	uint64_t used = q->used_bytes > 0 ? (uint64_t)q->used_bytes : 0;
	uint64_t count = q->used_count > 0 ? (uint64_t)q->used_count : 0;

	if (q->limit_bytes != 0 &&
	    (size > q->limit_bytes || used > q->limit_bytes - size))
		return false;
	if (q->limit_count != 0 && count >= q->limit_count)
		return false;
	return true;
}

int
store_quota_update(int root_fd, int64_t bytes, int64_t count)
{
	char line[64];
	struct stat st = { 0 };
	ssize_t w;
	int fd, n, saved;

	if (bytes == 0 && count == 0)
		return 0;
	if (count > INT32_MAX || count < -(int64_t)INT32_MAX ||
	    bytes == INT64_MIN) {
		errno = ERANGE;
		return -1;
	}
	n = snprintf(line, sizeof(line), "%" PRId64 " %" PRId64 "\n", bytes,
		     count);
	fd = openat(root_fd, STORE_QUOTA_FILE,
		    O_WRONLY | O_APPEND | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return -1;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		saved = S_ISREG(st.st_mode) ? errno : EINVAL;
		close(fd);
		errno = saved;
		return -1;
	}
	do
		w = write(fd, line, (size_t)n);
	while (w < 0 && errno == EINTR);
	saved = w < 0 ? errno : EIO;
	if (close(fd) < 0 && w == n)
		return -1;
	if (w != n) {
		errno = saved;
		return -1;
	}
	return 0;
}

/* ---- recalculation ---------------------------------------------------- */

struct quota_scan {
	uint64_t bytes;
	uint64_t count;
	time_t newest;          /* latest mtime of a scanned new/ or cur/ */
	size_t folders;
};

/* The size in ",S=<digits>" ending at ':', ',' or the end, as Dovecot's
 * maildir_sum_dir; false if the name has none in that form. */
static bool
quota_name_size(const char *name, uint64_t *size_out)
{
	const char *p = strstr(name, ",S=");
	uint64_t v = 0;

	if (p == NULL)
		return false;
	for (p += 3; *p >= '0' && *p <= '9'; p++) {
		if (v > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
			return false;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	if (*p != ':' && *p != ',' && *p != '\0')
		return false;
	*size_out = v;
	return true;
}

/* Sum one new/ or cur/ below box_fd; a missing one counts as empty. */
static int
quota_sum_dir(int box_fd, const char *sub, struct quota_scan *sc)
{
	struct dirent *de;
	struct stat st;
	uint64_t size;
	DIR *dir;
	int fd, ret = 0;

	fd = openat(box_fd, sub, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT || errno == ENOTDIR || errno == ELOOP ?
		       0 : -1;
	if (fstat(fd, &st) == 0 && st.st_mtime > sc->newest)
		sc->newest = st.st_mtime;
	dir = fdopendir(fd);
	if (dir == NULL) {
		close(fd);
		return -1;
	}
	while ((de = readdir(dir)) != NULL) {
		if (de->d_name[0] == '.' &&
		    (de->d_name[1] == '\0' || de->d_name[1] == '.'))
			continue;
		if (!quota_name_size(de->d_name, &size)) {
			if (fstatat(dirfd(dir), de->d_name, &st,
				    AT_SYMLINK_NOFOLLOW) < 0) {
				if (errno == ENOENT)
					continue;
				ret = -1;
				break;
			}
			size = (uint64_t)st.st_size;
		}
		if (__builtin_add_overflow(sc->bytes, size, &sc->bytes))
			sc->bytes = UINT64_MAX;
		sc->count++;
	}
	closedir(dir);
	return ret;
}

static int
quota_sum_box(int box_fd, struct quota_scan *sc)
{
	if (quota_sum_dir(box_fd, "new", sc) < 0 ||
	    quota_sum_dir(box_fd, "cur", sc) < 0)
		return -1;
	return 0;
}

static bool
quota_ignored(const char *dname, const char *const *ignore, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (ignore[i] != NULL && strcmp(dname + 1, ignore[i]) == 0)
			return true;
	return false;
}

/* A Maildir++ folder directory: ".Name", not "." / ".." / "..X" (Dovecot's
 * trash names). */
static bool
quota_is_folder(const char *d)
{
	return d[0] == '.' && d[1] != '\0' && d[1] != '.';
}

typedef int (*quota_box_fn)(int box_fd, struct quota_scan *sc);

/* Call fn for the root and every folder not ignored. */
static int
quota_each_box(int root_fd, const char *const *ignore, size_t n_ignore,
	       quota_box_fn fn, struct quota_scan *sc)
{
	struct dirent *de;
	DIR *dir;
	int fd, box, ret = 0;

	if (!quota_ignored(".INBOX", ignore, n_ignore) && fn(root_fd, sc) < 0)
		return -1;
	fd = openat(root_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || (dir = fdopendir(fd)) == NULL) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	while (ret == 0 && (de = readdir(dir)) != NULL) {
		if (!quota_is_folder(de->d_name) ||
		    quota_ignored(de->d_name, ignore, n_ignore))
			continue;
		if (++sc->folders > STORE_QUOTA_MAX_FOLDERS) {
			errno = E2BIG;
			ret = -1;
			break;
		}
		box = openat(dirfd(dir), de->d_name,
			     O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (box < 0) {
			if (errno != ENOENT && errno != ENOTDIR && errno != ELOOP)
				ret = -1;
			continue;
		}
		ret = fn(box, sc);
		close(box);
	}
	closedir(dir);
	return ret;
}

static int
quota_changed_dir(int box_fd, const char *sub, time_t newest)
{
	struct stat st;

	if (fstatat(box_fd, sub, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    S_ISDIR(st.st_mode) && st.st_mtime > newest) {
		errno = EAGAIN;
		return -1;
	}
	return 0;
}

static int
quota_changed_box(int box_fd, struct quota_scan *sc)
{
	if (quota_changed_dir(box_fd, "new", sc->newest) < 0 ||
	    quota_changed_dir(box_fd, "cur", sc->newest) < 0)
		return -1;
	return 0;
}

/* "<limits>\n<bytes> <count>\n" as Dovecot writes it: "0S" when there is
 * no limit at all. */
static int
quota_format(char *out, size_t size, const struct store_quota_limits *l,
	     uint64_t bytes, uint64_t count)
{
	int n = 0, m;

	if (l->bytes != 0 || l->count == 0)
		n = snprintf(out, size, "%" PRIu64 "S", l->bytes);
	if (l->count != 0)
		n += snprintf(out + n, size - (size_t)n, "%s%" PRIu64 "C",
			      n > 0 ? "," : "", l->count);
	m = snprintf(out + n, size - (size_t)n, "\n%" PRIu64 " %" PRIu64 "\n",
		     bytes, count);
	return n + m;
}

/* Temp file "maildirsize<host>.<pid>.<rand>" created O_EXCL in root_fd. */
static int
quota_tmp_create(int root_fd, char *name, size_t size)
{
	char host[64];
	uint64_t rnd;
	int i, fd;

	if (gethostname(host, sizeof(host)) < 0)
		snprintf(host, sizeof(host), "localhost");
	host[sizeof(host) - 1] = '\0';
	host[strcspn(host, "/")] = '\0';
	for (i = 0; i < 10; i++) {
		if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd))
			rnd = (uint64_t)time(NULL) ^ (uint64_t)i;
		snprintf(name, size, "%s%s.%ld.%" PRIx64, STORE_QUOTA_FILE, host,
			 (long)getpid(), rnd);
		fd = openat(root_fd, name,
			    O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
			    store_side_file_mode(root_fd));
		if (fd >= 0 || errno != EEXIST)
			return fd;
	}
	return -1;
}

int
store_quota_recalc(int root_fd, const struct store_quota_limits *limits,
		   const char *const *ignore, size_t n_ignore,
		   struct store_quota *out)
{
	struct quota_scan sc = { 0 };
	char tmp[160], buf[128];
	int fd, n;

	if (quota_each_box(root_fd, ignore, n_ignore, quota_sum_box, &sc) < 0)
		return -1;
	if (sc.bytes > (uint64_t)INT64_MAX || sc.count > (uint64_t)INT32_MAX) {
		errno = EOVERFLOW;
		return -1;
	}
	sc.folders = 0;
	if (quota_each_box(root_fd, ignore, n_ignore, quota_changed_box, &sc) < 0)
		return -1;
	n = quota_format(buf, sizeof(buf), limits, sc.bytes, sc.count);
	fd = quota_tmp_create(root_fd, tmp, sizeof(tmp));
	if (fd < 0 || store_side_replace(root_fd, fd, tmp, STORE_QUOTA_FILE,
					 buf, (size_t)n) < 0)
		return -1;
	if (out != NULL) {
		memset(out, 0, sizeof(*out));
		out->limit_bytes = limits->bytes;
		out->limit_count = limits->count;
		out->used_bytes = (int64_t)sc.bytes;
		out->used_count = (int64_t)sc.count;
		out->file_size = (size_t)n;
		out->lines = 1;
		out->mtime = time(NULL);
		out->exists = true;
		out->valid = true;
	}
	return 0;
}

/* ---- quota_rule ------------------------------------------------------- */

static int
quota_rule_fail(const char **why_out, const char *why, int err)
{
	if (why_out != NULL)
		*why_out = why;
	errno = err;
	return -1;
}

/* "[+-]<int>[unit]" of one limit; storage= defaults to KiB. */
static int
quota_rule_value(const char *v, bool relative, uint64_t mul, int64_t *out,
		 const char **why_out)
{
	bool neg = false;
	const char *p;
	uint64_t n;

	if (*v == '+' || *v == '-') {
		if (!relative)
			return quota_rule_fail(why_out, *v == '+' ?
				"a default rule limit cannot have '+'" :
				"a default rule limit cannot be negative",
				EINVAL);
		neg = *v == '-';
		v++;
	}
	p = v;
	if (quota_parse_u64(&p, p + strlen(p), &n) < 0)
		return quota_rule_fail(why_out, "invalid limit number", EINVAL);
	switch (*p) {
	case '\0': break;
	case 'b': case 'B': mul = 1; break;
	case 'k': case 'K': mul = 1024; break;
	case 'm': case 'M': mul = 1024 * 1024; break;
	case 'g': case 'G': mul = 1024 * 1024 * 1024; break;
	case 't': case 'T': mul = 1024ULL * 1024 * 1024 * 1024; break;
	case '%':
		return quota_rule_fail(why_out,
			"percentage limits are not supported", EINVAL);
	default:
		return quota_rule_fail(why_out, "unknown unit", EINVAL);
	}
	if (*p != '\0' && p[1] != '\0')
		return quota_rule_fail(why_out, "unknown unit", EINVAL);
	if (n > (uint64_t)INT64_MAX / mul)
		return quota_rule_fail(why_out, "limit too large", ERANGE);
	*out = neg ? -(int64_t)(n * mul) : (int64_t)(n * mul);
	return 0;
}

/* "key=value[:key=value...]" into r. */
static int
quota_rule_limits(const char *s, struct store_quota_rule *r,
		  const char **why_out)
{
	char part[128], *val;
	const char *next;
	size_t len;
	int64_t *lim;
	uint64_t mul;

	for (; s != NULL; s = next) {
		next = strchr(s, ':');
		len = next != NULL ? (size_t)(next - s) : strlen(s);
		if (next != NULL)
			next++;
		if (len >= sizeof(part))
			return quota_rule_fail(why_out, "limit too long", EINVAL);
		memcpy(part, s, len);
		part[len] = '\0';
		val = strchr(part, '=');
		if (val == NULL)
			val = part + len;
		else
			*val++ = '\0';
		mul = 1;
		if (strcmp(part, "storage") == 0) {
			lim = &r->bytes;
			mul = 1024;
		} else if (strcmp(part, "bytes") == 0) {
			lim = &r->bytes;
		} else if (strcmp(part, "messages") == 0) {
			lim = &r->count;
		} else {
			return quota_rule_fail(why_out,
					       "unknown rule limit name", EINVAL);
		}
		if (quota_rule_value(val, !r->is_default, mul, lim, why_out) < 0)
			return -1;
	}
	return 0;
}

/* "backend=" value: Maildir++ limits "<n>S,<n>C" or NOQUOTA. */
static int
quota_rule_backend(const char *v, struct store_quota_rule *r,
		   const char **why_out)
{
	uint64_t b, c;

	if (strcmp(v, "NOQUOTA") == 0) {
		r->bytes = r->count = 0;
		return 0;
	}
	if (*v == '\0' || !quota_parse_limits(v, v + strlen(v), &b, &c))
		return quota_rule_fail(why_out,
				       "invalid Maildir++ quota rule", EINVAL);
	r->bytes = (int64_t)b;
	r->count = (int64_t)c;
	return 0;
}

int
store_quota_rule_parse(const char *rule, struct store_quota_rule *out,
		       const char **why_out)
{
	const char *colon = strchr(rule, ':'), *rest;
	size_t mlen;

	memset(out, 0, sizeof(*out));
	if (why_out != NULL)
		*why_out = NULL;
	if (colon == NULL)
		return quota_rule_fail(why_out, "invalid rule (no ':')", EINVAL);
	mlen = (size_t)(colon - rule);
	if (mlen == 0 || mlen >= sizeof(out->mask))
		return quota_rule_fail(why_out, "invalid mailbox mask", EINVAL);
	memcpy(out->mask, rule, mlen);
	if (strcasecmp(out->mask, "INBOX") == 0)
		memcpy(out->mask, "INBOX", 6);
	out->is_default = strcmp(out->mask, "*") == 0 ||
			  strcmp(out->mask, "?") == 0;
	/* Dovecot: "*" is the forced default rule, "?" the one that yields
	 * to the limits found in maildirsize */
	out->force = strcmp(out->mask, "*") == 0;
	rest = colon + 1;
	if (strcmp(rest, "ignore") == 0) {
		out->ignore = true;
		return 0;
	}
	if (strncmp(rest, "backend=", 8) == 0)
		return quota_rule_backend(rest + 8, out, why_out);
	if (*rest == '\0')
		return quota_rule_fail(why_out, "no limits", EINVAL);
	return quota_rule_limits(rest, out, why_out);
}
