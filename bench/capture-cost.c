/* SPDX-License-Identifier: MIT */
/*
 * bench/capture-cost.c - what one change capture costs in a large mailbox
 * (doc/replication-protocol.md §7.6), without the rest of stowd: a Maildir
 * of N messages (default 10000) whose index knows them all; then, R times
 * (default 20), another program changes the flags of one message
 * (cur/NAME:2,S renamed to cur/NAME:2,FS) and the change is captured with
 * the names of its events (what repl-hook sends), then the same for
 * another message captured as the whole mailbox (the fallback, and what
 * every capture cost before the names); then the same for the removal of
 * a message (an IMAP expunge), its name marked unlinked (what repl-hook
 * sends for an IN_DELETE) and not marked.  Prints the median
 * and the largest wall and CPU time of one capture, with the mailbox's
 * state kept between operations (as a writer keeps it) and replayed from
 * the index each time (-c: cold; with -k, without checkpoints: the whole
 * index replayed, as before them).
 *
 *   capture-cost [-c [-k]] [messages [rounds]]
 *
 * Runs in:  a benchmark client, any user; everything lives in
 *           $TMPDIR/capture-cost.XXXXXX, removed at the end.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "storage/repl/repl.h"
#include "storage/storage.h"

#define ROUNDS_MAX 1000

struct sample {
	double wall_ms, cpu_ms;
};

static double
now_ms(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int
count_cb(const struct store_rec *rec, void *arg)
{
	(void)rec;
	(*(unsigned *)arg)++;
	return 0;
}

static int
rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void
die(const char *what)
{
	fprintf(stderr, "capture-cost: %s: %s\n", what, strerror(errno));
	exit(1);
}

/* A Maildir of n messages in cur/ ("...:2,S"), reconciled into the index. */
static void
fill(const struct store_repl_ctx *c, const char *md, unsigned n)
{
	char path[4096];
	bool changed;
	const char *what = NULL;

	if (mkdir(md, 0700) < 0)
		die("mkdir");
	snprintf(path, sizeof(path), "%.2000s/new", md);
	if (mkdir(path, 0700) < 0)
		die("mkdir new");
	snprintf(path, sizeof(path), "%.2000s/cur", md);
	if (mkdir(path, 0700) < 0)
		die("mkdir cur");
	snprintf(path, sizeof(path), "%.2000s/tmp", md);
	if (mkdir(path, 0700) < 0)
		die("mkdir tmp");
	for (unsigned i = 0; i < n; i++) {
		int fd;

		snprintf(path, sizeof(path), "%.2000s/cur/17000%05u.M%uP1.bench,S=3:2,S", md, i, i);
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0 || write(fd, "abc", 3) != 3 || close(fd) < 0)
			die("write message");
	}
	if (store_repl_reconcile(c, "INBOX", &changed, &what) < 0)
		die(what != NULL ? what : "reconcile");
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void
report(const char *label, struct sample *s, unsigned r)
{
	double w[ROUNDS_MAX], cpu[ROUNDS_MAX];

	for (unsigned i = 0; i < r; i++) {
		w[i] = s[i].wall_ms;
		cpu[i] = s[i].cpu_ms;
	}
	qsort(w, r, sizeof(*w), cmp_double);
	qsort(cpu, r, sizeof(*cpu), cmp_double);
	printf("%-28s wall median %8.3f ms  max %8.3f ms   cpu median %8.3f ms  max %8.3f ms\n",
	       label, w[r / 2], w[r - 1], cpu[r / 2], cpu[r - 1]);
}

/* One flag change (remove: a removal) of message k by another program,
 * then one capture. */
static void
round_one(const struct store_repl_ctx *c, const char *md, unsigned k, bool names,
	  bool cold, bool remove, bool marked, struct sample *s)
{
	char from[4096], to[4096], a[256], b[256];
	const char *v[2] = { a, b };
	const bool gone[2] = { true, false };
	struct store_capture_names nm = { .v = v, .unlinked = marked ? gone : NULL, .n = 2 };
	struct store_repl_result res;
	const char *what = NULL;
	unsigned recs = 0;
	double w0, c0;

	snprintf(a, sizeof(a), "17000%05u.M%uP1.bench,S=3:2,S", k, k);
	snprintf(b, sizeof(b), "17000%05u.M%uP1.bench,S=3:2,FS", k, k);
	snprintf(from, sizeof(from), "%.2000s/cur/%s", md, a);
	snprintf(to, sizeof(to), "%.2000s/cur/%s", md, b);
	nm.n = remove ? 1 : 2;
	if (remove ? unlink(from) < 0 : rename(from, to) < 0)
		die(remove ? "unlink" : "rename");
	if (cold)
		store_repl_cache_clear();
	w0 = now_ms(CLOCK_MONOTONIC);
	c0 = now_ms(CLOCK_PROCESS_CPUTIME_ID);
	if (store_repl_capture(c, "INBOX", names ? &nm : NULL, count_cb, &recs, &res,
			       &what) < 0)
		die(what != NULL ? what : "capture");
	s->wall_ms = now_ms(CLOCK_MONOTONIC) - w0;
	s->cpu_ms = now_ms(CLOCK_PROCESS_CPUTIME_ID) - c0;
	if (recs != 1) {
		fprintf(stderr, "capture-cost: %u records, want 1\n", recs);
		exit(1);
	}
}

int
main(int argc, char **argv)
{
	static struct sample named[ROUNDS_MAX], whole[ROUNDS_MAX];
	static struct sample named_rm[ROUNDS_MAX], whole_rm[ROUNDS_MAX], marked_rm[ROUNDS_MAX];
	char base[1024], md[1100];
	const char *tmp = getenv("TMPDIR");
	struct store_repl_ctx c;
	unsigned n = 10000, r = 20;
	bool cold = false, no_ckpt = false;
	int ai = 1;

	if (ai < argc && strcmp(argv[ai], "-c") == 0) {
		cold = true;
		ai++;
	}
	if (cold && ai < argc && strcmp(argv[ai], "-k") == 0) {
		no_ckpt = true;
		store_repl_ckpt_every(SIZE_MAX - 1);   /* none written */
		ai++;
	}
	if (ai < argc)
		n = (unsigned)strtoul(argv[ai++], NULL, 10);
	if (ai < argc)
		r = (unsigned)strtoul(argv[ai++], NULL, 10);
	if (n == 0 || n > 99999 || r == 0 || r > ROUNDS_MAX || 5 * r > n) {
		fprintf(stderr, "usage: capture-cost [-c [-k]] [messages (1..99999) "
			"[rounds (1..%d, at most messages / 5)]]\n", ROUNDS_MAX);
		return 2;
	}
	snprintf(base, sizeof(base), "%.900s/capture-cost.XXXXXX", tmp != NULL ? tmp : "/tmp");
	if (mkdtemp(base) == NULL)
		die("mkdtemp");
	snprintf(md, sizeof(md), "%.1000s/Maildir", base);
	memset(&c, 0, sizeof(c));
	c.mail_base = base;
	c.mail_rel = "Maildir";
	c.uid = geteuid();
	c.server_id = "a.example";
	c.host = "bench";
	fill(&c, md, n);
	for (unsigned i = 0; i < r; i++) {
		round_one(&c, md, 2 * i, true, cold, false, false, &named[i]);
		round_one(&c, md, 2 * i + 1, false, cold, false, false, &whole[i]);
		round_one(&c, md, n - 1 - 3 * i, true, cold, true, true, &marked_rm[i]);
		round_one(&c, md, n - 2 - 3 * i, true, cold, true, false, &named_rm[i]);
		round_one(&c, md, n - 3 - 3 * i, false, cold, true, false, &whole_rm[i]);
	}
	printf("one flag change in a mailbox of %u messages, %u rounds%s:\n", n, r,
	       !cold ? "" : no_ckpt ? " (state replayed from the whole index each time)" :
	       " (state read from the checkpoint and the index since, each time)");
	report("capture with the names", named, r);
	report("capture of the mailbox", whole, r);
	printf("one removal (an IMAP expunge):\n");
	report("with the name, unlinked", marked_rm, r);
	report("with the name, not marked", named_rm, r);
	report("capture of the mailbox", whole_rm, r);
	nftw(base, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}
