/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/fuzz_store.h - oracles shared by the harnesses of the
 * mailbox state (fuzz_index.c, fuzz_ckpt.c): callbacks of the storage and
 * replication reads that abort on what a valid state never gives.
 *
 * Runs in:  fuzz executables only, as a normal user.
 */
#ifndef STOWD_TESTS_FUZZ_FUZZ_STORE_H
#define STOWD_TESTS_FUZZ_FUZZ_STORE_H

#include "storage/repl/repl.h"
#include "storage/storage.h"

/* A record given to a callback: aborts unless store_idx_rec_valid. */
int fuzz_rec_valid_cb(const struct store_rec *rec, void *arg);
/* A GUIDS entry: aborts unless its GUID is valid and its flags are
 * terminated; counts it in *(size_t *)arg when arg is not NULL. */
int fuzz_info_valid_cb(const struct store_msg_info *m, void *arg);

#endif
