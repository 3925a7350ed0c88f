/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/fuzz_util.c - helpers shared by the libFuzzer harnesses (see
 * fuzz_util.h).
 *
 * Runs in:  fuzz executables only, as a normal user.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/fuzz/fuzz_util.h"

static char scratch[PATH_MAX];

static int
rm_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st, (void)ftw;
	return type == FTW_DP ? rmdir(path) : unlink(path);
}

int
fuzz_rmtree(const char *path)
{
	if (access(path, F_OK) < 0 && errno == ENOENT)
		return 0;
	return nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void
scratch_remove(void)
{
	if (scratch[0] != '\0')
		fuzz_rmtree(scratch);
}

const char *
fuzz_scratch(void)
{
	const char *tmp = getenv("TMPDIR");

	if (scratch[0] != '\0')
		return scratch;
	/* tmpfs if there is one: the index harness fsyncs */
	if (tmp == NULL || tmp[0] == '\0')
		tmp = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
	if ((size_t)snprintf(scratch, sizeof(scratch), "%s/stowd-fuzz.XXXXXX",
			     tmp) >= sizeof(scratch) || mkdtemp(scratch) == NULL) {
		perror("fuzz: scratch directory");
		abort();
	}
	atexit(scratch_remove);
	return scratch;
}

void
fuzz_write_file(const char *path, const void *data, size_t len)
{
	const char *p = data;
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
		      0600);
	ssize_t n;

	if (fd < 0) {
		perror(path);
		abort();
	}
	while (len > 0) {
		n = write(fd, p, len);
		if (n <= 0) {
			perror(path);
			abort();
		}
		p += n;
		len -= (size_t)n;
	}
	close(fd);
}

uint64_t
fuzz_take(const uint8_t **data, size_t *size, size_t n)
{
	uint64_t v = 0;
	size_t i;

	for (i = 0; i < n && i < 8; i++) {
		if (*size == 0)
			break;
		v |= (uint64_t)**data << (8 * i);
		(*data)++;
		(*size)--;
	}
	return v;
}

void
fuzz_rng_seed(struct fuzz_rng *r, uint64_t seed)
{
	r->s = seed ^ 0x9e3779b97f4a7c15ull;
	if (r->s == 0)
		r->s = 1;
}

uint64_t
fuzz_rng_next(struct fuzz_rng *r)
{
	r->s ^= r->s << 13;
	r->s ^= r->s >> 7;
	r->s ^= r->s << 17;
	return r->s;
}

size_t
fuzz_rng_below(struct fuzz_rng *r, size_t n)
{
	return (size_t)(fuzz_rng_next(r) % n);
}

int
fuzz_lowest_free_fd(void)
{
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		perror("/dev/null");
		abort();
	}
	close(fd);
	return fd;
}

void
fuzz_check_fds(int want, const char *what)
{
	int now = fuzz_lowest_free_fd();

	if (now != want) {
		fprintf(stderr, "fuzz: %s: lowest free fd %d, was %d: fd leak\n",
			what, now, want);
		abort();
	}
}
