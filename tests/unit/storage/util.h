/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/storage/util.h - small file system helpers for the storage
 * unit tests: temporary trees (and fixtures built on one), directory
 * listings, whole-file reads.
 */
#ifndef STOWD_TESTS_UNIT_STORAGE_UTIL_H
#define STOWD_TESTS_UNIT_STORAGE_UTIL_H

#include <limits.h>
#include <stddef.h>
#include <sys/types.h>

/* A test's temporary tree, the first member of its fixture. */
struct tu_tree {
	char root[PATH_MAX];        /* a fresh directory (tu_mkdtemp) */
	char base[PATH_MAX];        /* <root>/base, not created */
};

/* A zeroed fixture of size octets (>= sizeof(struct tu_tree)) whose first
 * member is a struct tu_tree, filled in; aborts on failure.  Free with
 * tu_tree_teardown. */
void *tu_tree_new(size_t size);
/* cmocka teardown for such a fixture: rm -rf root, free it. */
int tu_tree_teardown(void **state);

/* mkdtemp under $TMPDIR, else /dev/shm, else /tmp, into out[PATH_MAX];
 * aborts on failure. */
void tu_mkdtemp(char *out);
/* rm -rf path (no symlink followed).  Returns 0 or -1. */
int tu_rmtree(const char *path);
/* Number of entries in directory path other than . and .., -1 on error. */
int tu_count_entries(const char *path);
/* Name of the only entry in directory path into out[256]; -1 if not one. */
int tu_only_entry(const char *path, char *out);
/* Read the whole file path; caller frees *buf_out.  Size or -1. */
ssize_t tu_read_file(const char *path, char **buf_out);
/* Write buf[0..len) as the whole content of path (created 0600). */
int tu_write_file(const char *path, const void *buf, size_t len);
/* snprintf into one of 16 static rotating buffers: for paths used at
 * once, never kept. */
const char *tu_path(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
