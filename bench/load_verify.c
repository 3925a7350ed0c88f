/* SPDX-License-Identifier: MIT */
/*
 * bench/load_verify.c - after a run, checks each user's Maildir new/
 * against what the generator knows it delivered: files before the run plus
 * successful deliveries must equal the files found; files carrying this
 * run's token must match the deliveries one to one and end with the exact
 * body that was sent (line endings normalised), which also proves the
 * server's dot-unstuffing.
 *
 * Runs in:  the benchmark client, usually as root (reads users' Maildirs).
 * Trust:    file contents are only compared, never interpreted; reads are
 *           bounded in size and entries per directory are bounded in count.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench/load_int.h"

#define MAX_DIR_ENTRIES 50000000ul
#define HEADER_SLACK (256u * 1024)

struct user_scan {
	unsigned long files;
	unsigned long ours;
	unsigned long bad;
};

static int
new_dir(const struct bench_run *run, unsigned u, char *out, size_t outlen)
{
	char base[4096];

	if (bench_expand(run->opts->verify, u + 1, base, sizeof(base)) < 0)
		return -1;
	if ((size_t)snprintf(out, outlen, "%s/new", base) >= outlen) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

/* Removes '\r' in place; returns the new length. */
static size_t
strip_cr(char *buf, size_t n)
{
	size_t i, o = 0;

	for (i = 0; i < n; i++)
		if (buf[i] != '\r')
			buf[o++] = buf[i];
	return o;
}

/* Reads one file; counts it as ours if it carries the run token and
 * checks its body.  buf has cap bytes. */
static void
check_file(const struct bench_run *run, int dfd, const char *name, char *buf,
	   size_t cap, struct user_scan *us)
{
	const struct bench_tmpl *t = &run->tmpl;
	char needle[BENCH_TOKEN_LEN + 3];
	size_t n = 0;
	ssize_t r;
	int fd;

	fd = openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return;
	while (n < cap) {
		r = read(fd, buf + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	snprintf(needle, sizeof(needle), "<%s.", t->token);
	if (memmem(buf, n, needle, strlen(needle)) == NULL)
		return;
	us->ours++;
	n = strip_cr(buf, n);
	if (n == cap || n < t->body_lf_len ||
	    memcmp(buf + n - t->body_lf_len, t->body_lf, t->body_lf_len) != 0)
		us->bad++;
}

/* Scans one user's new/.  with_bodies = false only counts entries.
 * A missing directory counts as empty.  Returns 0 / -1. */
static int
scan_user(const struct bench_run *run, unsigned u, bool with_bodies,
	  struct user_scan *us)
{
	size_t cap = run->tmpl.body_len * 2 + HEADER_SLACK;
	char path[4200];
	char *buf = NULL;
	struct dirent *de;
	unsigned long i;
	DIR *d;

	memset(us, 0, sizeof(*us));
	if (new_dir(run, u, path, sizeof(path)) < 0)
		return -1;
	d = opendir(path);
	if (d == NULL)
		return errno == ENOENT ? 0 : -1;
	if (with_bodies && (buf = malloc(cap)) == NULL) {
		closedir(d);
		return -1;
	}
	for (i = 0; i < MAX_DIR_ENTRIES && (de = readdir(d)) != NULL; i++) {
		if (de->d_name[0] == '.')
			continue;
		us->files++;
		if (with_bodies)
			check_file(run, dirfd(d), de->d_name, buf, cap, us);
	}
	free(buf);
	closedir(d);
	return 0;
}

int
bench_verify_before(const struct bench_run *run, struct bench_verify *v)
{
	struct user_scan us;
	unsigned u;

	memset(v, 0, sizeof(*v));
	v->before = calloc(run->opts->users, sizeof(*v->before));
	if (v->before == NULL)
		return -1;
	for (u = 0; u < run->opts->users; u++) {
		if (scan_user(run, u, false, &us) < 0)
			return -1;
		v->before[u] = us.files;
	}
	return 0;
}

static void
note_bad(struct bench_verify *v, unsigned u, const struct user_scan *us,
	 unsigned long want, unsigned long delivered)
{
	v->users_bad++;
	if (v->first_bad[0] != '\0')
		return;
	snprintf(v->first_bad, sizeof(v->first_bad),
		 "user %u: expected %lu files (%lu before + %lu delivered), "
		 "found %lu, %lu of this run, %lu bad bodies",
		 u + 1, want, v->before[u], delivered, us->files, us->ours,
		 us->bad);
}

int
bench_verify_after(const struct bench_run *run, struct bench_verify *v)
{
	struct user_scan us;
	unsigned u;
	int rc = 0;

	for (u = 0; u < run->opts->users; u++) {
		unsigned long delivered = run->user_ok[u];
		unsigned long want = v->before[u] + delivered;

		if (scan_user(run, u, true, &us) < 0) {
			snprintf(v->first_bad, sizeof(v->first_bad),
				 "user %u: cannot read new/: %s", u + 1,
				 strerror(errno));
			v->users_bad++;
			rc = -1;
			continue;
		}
		v->expected += want;
		v->found += us.files;
		v->ours += us.ours;
		v->bad_bodies += us.bad;
		if (us.files != want || us.ours != delivered || us.bad != 0) {
			note_bad(v, u, &us, want, delivered);
			rc = -1;
		}
	}
	return rc;
}

void
bench_verify_fini(struct bench_verify *v)
{
	free(v->before);
	v->before = NULL;
}
