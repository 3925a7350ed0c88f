/* SPDX-License-Identifier: MIT */
/*
 * bench/durable-limit.c - the disk's physical limit for stowd's durable-save
 * pattern, without stowd: W writer threads each repeat
 *   open tmp/NAME O_CREAT|O_EXCL|O_NOFOLLOW 0600, write B bytes, fsync,
 *   renameat2(tmp/NAME, new/NAME, RENAME_NOREPLACE), fsync new/
 * for T seconds, in per-writer Maildir-like directories (or shared ones with
 * -S), and prints saves/s per writer count.  Everything it creates lives in
 * DIR/durable-limit.PID/ and is removed after each measurement, unless -k
 * keeps it: on ext4 without a journal the inode allocator slows down next
 * to inodes deleted in the last minutes, so a series of measurements
 * (bench/compare) keeps its files and deletes them all at the very end.
 *
 * Runs in:  a benchmark client, any user with write access to DIR.
 * Order:    the same as storage/maildir.c, so the numbers are the ceiling
 *           stowd can reach on that disk.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

#define BENCH_MAX_WRITERS 256u
#define BENCH_MAX_BYTES (64ul * 1024 * 1024)
#define BENCH_MAX_SAVES 100000000ul
#define BENCH_MAX_CLEAN 200000000ul

struct bench_round {
	unsigned writers;
	size_t bytes;
	unsigned seconds;
	bool shared;
	bool keep;                 /* -k: leave the files */
	const char *root;          /* DIR/durable-limit.PID */
	const char *buf;           /* bytes of payload */
	pthread_barrier_t start;
};

struct bench_writer {
	struct bench_round *round;
	unsigned id;               /* writer number, part of file names */
	unsigned dir_id;           /* directory set (0 for all with -S) */
	pthread_t thread;
	int tmp_fd, new_fd;
	unsigned long saves;
	double secs, lat_max;
	int err;
	const char *err_what;
};

static double
ts_diff(const struct timespec *a, const struct timespec *b)
{
	return (double)(b->tv_sec - a->tv_sec) +
	       (double)(b->tv_nsec - a->tv_nsec) / 1e9;
}

static int
write_all(int fd, const char *buf, size_t len)
{
	size_t off = 0;
	unsigned guard;

	for (guard = 0; off < len && guard < 1000000u; guard++) {
		ssize_t r = write(fd, buf + off, len - off);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		off += (size_t)r;
	}
	return off == len ? 0 : -1;
}

/* One durable save; on failure sets w->err_what and returns -1. */
static int
bench_save(struct bench_writer *w, const char *name)
{
	int fd;

	fd = openat(w->tmp_fd, name,
		    O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		w->err_what = "open tmp";
		return -1;
	}
	if (write_all(fd, w->round->buf, w->round->bytes) < 0 || fsync(fd) < 0) {
		int saved = errno;

		w->err_what = "write/fsync";
		close(fd);
		errno = saved;
		return -1;
	}
	if (close(fd) < 0) {
		w->err_what = "close";
		return -1;
	}
	if (renameat2(w->tmp_fd, name, w->new_fd, name, RENAME_NOREPLACE) < 0) {
		w->err_what = "renameat2";
		return -1;
	}
	if (fsync(w->new_fd) < 0) {
		w->err_what = "fsync new/";
		return -1;
	}
	return 0;
}

static void *
bench_writer_main(void *arg)
{
	struct bench_writer *w = arg;
	struct timespec t0, a, b;
	double end;
	char name[96];
	unsigned long i;

	pthread_barrier_wait(&w->round->start);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	end = (double)w->round->seconds;
	b = t0;
	for (i = 0; i < BENCH_MAX_SAVES && ts_diff(&t0, &b) < end; i++) {
		a = b;
		snprintf(name, sizeof(name), "%ld.W%uN%lu.durable-limit",
			 (long)t0.tv_sec, w->id, i);
		if (bench_save(w, name) < 0) {
			w->err = errno;
			break;
		}
		clock_gettime(CLOCK_MONOTONIC, &b);
		if (ts_diff(&a, &b) > w->lat_max)
			w->lat_max = ts_diff(&a, &b);
		w->saves++;
	}
	clock_gettime(CLOCK_MONOTONIC, &b);
	w->secs = ts_diff(&t0, &b);
	return NULL;
}

/* Removes every entry of dir (bounded), then dir itself. */
static void
bench_rmdir_all(const char *dir)
{
	struct dirent *de;
	unsigned long i;
	DIR *d = opendir(dir);

	if (d != NULL) {
		for (i = 0; i < BENCH_MAX_CLEAN && (de = readdir(d)) != NULL; i++) {
			if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
				continue;
			if (unlinkat(dirfd(d), de->d_name, 0) < 0)
				fprintf(stderr, "durable-limit: unlink %s/%s: %s\n", dir,
					de->d_name, strerror(errno));
		}
		closedir(d);
	}
	if (rmdir(dir) < 0 && errno != ENOENT)
		fprintf(stderr, "durable-limit: rmdir %s: %s\n", dir, strerror(errno));
}

static void
bench_dir_name(const struct bench_round *r, unsigned id, const char *sub,
	       char *out, size_t outlen)
{
	/* kept files of an earlier writer count must not meet the next one's */
	if (r->shared)
		snprintf(out, outlen, "%s/shared.%u%s%s", r->root, r->writers,
			 sub[0] ? "/" : "", sub);
	else
		snprintf(out, outlen, "%s/w%u.%u%s%s", r->root, id, r->writers,
			 sub[0] ? "/" : "", sub);
}

static int
bench_open_dirs(struct bench_writer *w)
{
	char top[4200], tmp[4200], new[4200];

	bench_dir_name(w->round, w->dir_id, "", top, sizeof(top));
	bench_dir_name(w->round, w->dir_id, "tmp", tmp, sizeof(tmp));
	bench_dir_name(w->round, w->dir_id, "new", new, sizeof(new));
	if ((mkdir(top, 0700) < 0 && errno != EEXIST) ||
	    (mkdir(tmp, 0700) < 0 && errno != EEXIST) ||
	    (mkdir(new, 0700) < 0 && errno != EEXIST))
		return -1;
	w->tmp_fd = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	w->new_fd = open(new, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	return w->tmp_fd < 0 || w->new_fd < 0 ? -1 : 0;
}

static void
bench_clean_dirs(const struct bench_round *r)
{
	char path[4200];
	unsigned i, n = r->shared ? 1 : r->writers;

	for (i = 0; i < n; i++) {
		bench_dir_name(r, i, "new", path, sizeof(path));
		bench_rmdir_all(path);
		bench_dir_name(r, i, "tmp", path, sizeof(path));
		bench_rmdir_all(path);
		bench_dir_name(r, i, "", path, sizeof(path));
		bench_rmdir_all(path);
	}
}

static void
bench_print(const struct bench_round *r, const struct bench_writer *ws)
{
	unsigned long saves = 0;
	double secs = 0, lat_max = 0;
	unsigned i;

	for (i = 0; i < r->writers; i++) {
		saves += ws[i].saves;
		if (ws[i].secs > secs)
			secs = ws[i].secs;
		if (ws[i].lat_max > lat_max)
			lat_max = ws[i].lat_max;
	}
	printf("writers: %u  saves: %lu  saves/s: %.1f  per_writer/s: %.1f  "
	       "avg_ms: %.3f  max_ms: %.3f\n", r->writers, saves,
	       secs > 0 ? (double)saves / secs : 0,
	       secs > 0 ? (double)saves / secs / r->writers : 0,
	       saves > 0 ? 1000.0 * secs * r->writers / (double)saves : 0,
	       1000.0 * lat_max);
	fflush(stdout);
}

/* One measurement with r->writers threads.  Returns 0 / -1. */
static int
bench_round_run(struct bench_round *r)
{
	struct bench_writer *ws = calloc(r->writers, sizeof(*ws));
	unsigned i, started = 0;
	int rc = -1;

	if (ws == NULL || pthread_barrier_init(&r->start, NULL, r->writers) != 0) {
		free(ws);
		return -1;
	}
	for (i = 0; i < r->writers; i++) {
		ws[i] = (struct bench_writer){ .round = r, .id = i,
					       .dir_id = r->shared ? 0 : i, .tmp_fd = -1, .new_fd = -1 };
		if (bench_open_dirs(&ws[i]) < 0) {
			fprintf(stderr, "durable-limit: directories: %s\n",
				strerror(errno));
			goto out;
		}
	}
	for (i = 0; i < r->writers; i++, started++)
		if (pthread_create(&ws[i].thread, NULL, bench_writer_main, &ws[i]) != 0)
			break;
	if (started != r->writers) {
		/* threads already waiting on the barrier can never pass it */
		fprintf(stderr, "durable-limit: cannot start %u threads\n", r->writers);
		exit(1);
	}
	for (i = 0; i < started; i++)
		pthread_join(ws[i].thread, NULL);
	rc = 0;
	for (i = 0; i < r->writers; i++) {
		if (ws[i].err_what != NULL) {
			fprintf(stderr, "durable-limit: writer %u: %s: %s\n", i,
				ws[i].err_what, strerror(ws[i].err));
			rc = -1;
		}
	}
	bench_print(r, ws);
out:
	for (i = 0; i < r->writers; i++) {
		if (ws[i].tmp_fd >= 0)
			close(ws[i].tmp_fd);
		if (ws[i].new_fd >= 0)
			close(ws[i].new_fd);
	}
	if (!r->keep)
		bench_clean_dirs(r);
	pthread_barrier_destroy(&r->start);
	free(ws);
	return rc;
}

static const char *
fs_name(long type)
{
	switch (type) {
	case 0xEF53: return "ext2/3/4";
	case 0x58465342: return "xfs";
	case 0x9123683E: return "btrfs";
	case 0x01021994: return "tmpfs (fsync is free: not a disk)";
	case 0x794c7630: return "overlayfs";
	case 0x2FC12FC1: return "zfs";
	case 0xF2F52010: return "f2fs";
	default: return "other";
	}
}

static void
usage(void)
{
	fprintf(stderr,
"usage: durable-limit [-S] [-k] [-w WRITERS] [-b BYTES] [-d DIR] [-t SECONDS]\n"
"  -w N  writer threads (default: run 1, 2 and 8)\n"
"  -b N  bytes per message (default 4096)\n"
"  -d D  directory on the disk to test (default .)\n"
"  -t S  seconds per measurement (default 5)\n"
"  -S    all writers share one tmp/ and new/ (default: one Maildir each)\n"
"  -k    keep the files (default: remove them after each measurement)\n");
	exit(2);
}

static unsigned long
num(const char *text, unsigned long min, unsigned long max)
{
	char *end = NULL;
	unsigned long v;

	errno = 0;
	v = strtoul(text, &end, 10);
	if (errno != 0 || end == text || *end != '\0' || text[0] == '-' ||
	    v < min || v > max)
		usage();
	return v;
}

int
main(int argc, char **argv)
{
	static const unsigned default_counts[] = { 1, 2, 8 };
	struct bench_round r = { .bytes = 4096, .seconds = 5 };
	const char *dir = ".";
	unsigned counts[3], ncounts = 3, i;
	char root[4096];
	struct statfs sfs;
	char *buf;
	int c, rc = 0;

	memcpy(counts, default_counts, sizeof(counts));
	while ((c = getopt(argc, argv, "w:b:d:t:Sk")) != -1) {
		switch (c) {
		case 'w': counts[0] = (unsigned)num(optarg, 1, BENCH_MAX_WRITERS);
			ncounts = 1; break;
		case 'b': r.bytes = num(optarg, 0, BENCH_MAX_BYTES); break;
		case 'd': dir = optarg; break;
		case 't': r.seconds = (unsigned)num(optarg, 1, 3600); break;
		case 'S': r.shared = true; break;
		case 'k': r.keep = true; break;
		default: usage();
		}
	}
	if (optind != argc)
		usage();
	if ((size_t)snprintf(root, sizeof(root), "%s/durable-limit.%ld", dir,
			     (long)getpid()) >= sizeof(root) - 64 ||
	    mkdir(root, 0700) < 0) {
		fprintf(stderr, "durable-limit: mkdir %s: %s\n", root, strerror(errno));
		return 1;
	}
	buf = malloc(r.bytes + 1);
	if (buf == NULL)
		return 1;
	for (i = 0; i < r.bytes; i++)
		buf[i] = (i % 79 == 78) ? '\n' : (char)('a' + i % 26);
	r.buf = buf;
	r.root = root;
	printf("dir: %s\nfilesystem: %s\nbytes: %zu\nseconds: %u\ndirs: %s\n", dir,
	       statfs(root, &sfs) == 0 ? fs_name((long)sfs.f_type) : "unknown",
	       r.bytes, r.seconds, r.shared ? "shared" : "per-writer");
	for (i = 0; i < ncounts; i++) {
		r.writers = counts[i];
		if (bench_round_run(&r) < 0)
			rc = 1;
	}
	if (!r.keep && rmdir(root) < 0)
		fprintf(stderr, "durable-limit: rmdir %s: %s\n", root, strerror(errno));
	free(buf);
	return rc;
}
