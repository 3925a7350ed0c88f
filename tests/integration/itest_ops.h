/* SPDX-License-Identifier: MIT */
/*
 * tests/integration/itest_ops.h - helpers of the operations tests: run
 * stowctl ($STOWCTL_BIN) against a harness, check JSON with python3, send
 * hostile input to the control socket, scrape and parse metrics.
 *
 * Runs in:  integration test programs (root, real stowd processes).
 */
#ifndef STOWD_TESTS_ITEST_OPS_H
#define STOWD_TESTS_ITEST_OPS_H

#include <sys/types.h>

#include "tests/lib/harness.h"

/*
 * Run "stowctl -c <conf> ARGS..." (NULL-ended); its stdout and stderr in
 * *out (malloc'd).  Returns its exit status, -1 if it did not exit.
 * iops_ctl_sock uses "-s <control socket>" instead of -c; iops_ctl_as
 * runs it with uid/gid (no groups).
 */
int iops_ctl(struct harness *h, char **out, ...);
int iops_ctl_sock(struct harness *h, char **out, ...);
int iops_ctl_as(struct harness *h, uid_t uid, gid_t gid, char **out, ...);

/* Assert text is one JSON document (python3 json). */
void iops_json_check(const char *text, const char *what);

/* Garbage, an overlong datagram, wrong types, an fd, a stream socket and
 * idle clients on the control socket at path; returns when each was
 * answered or closed (asserts nothing about stowd). */
void iops_hostile_control(const char *path);

/* GET path over HTTP from 127.0.0.1:port; the whole response in *out
 * (malloc'd).  0 or -1. */
int iops_http_get(unsigned port, const char *path, char **out);
/* The same over the unix socket at sock. */
int iops_http_get_unix(const char *sock, const char *path, char **out);

#endif
