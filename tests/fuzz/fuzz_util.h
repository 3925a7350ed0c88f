/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/fuzz_util.h - helpers shared by the libFuzzer harnesses: a
 * per-process scratch directory, whole-file writes, a tree removal, a
 * small deterministic generator driven by the input, and an fd-leak probe.
 *
 * Runs in:  fuzz executables only, as a normal user.
 */
#ifndef STOWD_TESTS_FUZZ_FUZZ_UTIL_H
#define STOWD_TESTS_FUZZ_FUZZ_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A directory private to this process (created on the first call in
 * $TMPDIR, else /dev/shm, else /tmp; removed at exit).  Borrowed, valid
 * for the life of the process. */
const char *fuzz_scratch(void);

/* Write data[0..len) as the whole content of path (created 0600,
 * truncated).  Aborts on failure: a broken harness, not a finding. */
void fuzz_write_file(const char *path, const void *data, size_t len);

/* rm -rf path without following symlinks.  Returns 0 or -1. */
int fuzz_rmtree(const char *path);

/* Take n (<= 8) octets from the front of *data as a little-endian number
 * (missing octets count as 0) and advance. */
uint64_t fuzz_take(const uint8_t **data, size_t *size, size_t n);

/* xorshift64 state for harness decisions (chunk sizes, results). */
struct fuzz_rng {
	uint64_t s;
};

void fuzz_rng_seed(struct fuzz_rng *r, uint64_t seed);
uint64_t fuzz_rng_next(struct fuzz_rng *r);
/* 0..n-1 (n > 0). */
size_t fuzz_rng_below(struct fuzz_rng *r, size_t n);

/* The lowest free fd number now (to compare before and after a call:
 * a difference is an fd leak of the code under test). */
int fuzz_lowest_free_fd(void);
/* Abort (a finding) if the lowest free fd is not want. */
void fuzz_check_fds(int want, const char *what);

#endif
