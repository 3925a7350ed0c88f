/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/fuzz_store.c - oracles shared by the harnesses of the mailbox
 * state (see fuzz_store.h).
 *
 * Runs in:  fuzz executables only, as a normal user.
 */
#include <stdlib.h>
#include <string.h>

#include "storage/storage_int.h"
#include "tests/fuzz/fuzz_store.h"

int
fuzz_rec_valid_cb(const struct store_rec *rec, void *arg)
{
	(void)arg;
	if (!store_idx_rec_valid(rec))
		abort();
	return 0;
}

int
fuzz_info_valid_cb(const struct store_msg_info *m, void *arg)
{
	if (!store_guid_valid(m->guid) || memchr(m->flags, '\0', sizeof(m->flags)) == NULL)
		abort();
	if (arg != NULL)
		(*(size_t *)arg)++;
	return 0;
}
