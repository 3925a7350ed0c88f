/* SPDX-License-Identifier: MIT */
/*
 * tests/lib/imapc_int.h - what imapc.c shares with imapc_cmds.c.
 */
#ifndef STOWD_TESTS_IMAPC_INT_H
#define STOWD_TESTS_IMAPC_INT_H

#include <stddef.h>

#include "tests/lib/imapc.h"

#define IMAPC_QUOTED_MAX 1024

/*
 * 0 if rc == 0 and r completed with OK; otherwise print the failure
 * (naming what) to stderr and return -1 with errno (EACCES for NO, EINVAL
 * for BAD, else the errno of the failed read).
 */
int imapc_need_ok(const struct imapc_resp *r, int rc, const char *what);

/* s as an IMAP quoted string into out (NUL-terminated).  -1 with EINVAL
 * for CR or LF in s, EMSGSIZE if it does not fit. */
int imapc_quote(const char *s, char *out, size_t size);

#endif
