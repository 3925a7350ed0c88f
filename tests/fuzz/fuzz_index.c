/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/fuzz_index.c - the per-mailbox index log and its replay
 * (storage/index.c, indexfmt.c, append.c, repl_state.c, repl_cache.c,
 * repl_query.c): the input is the stowd-index.log of an INBOX Maildir in a
 * scratch directory, read the ways a writer reads it.
 *
 * Input:    octet 0: bit 0 set = give every frame its correct CRC first (so
 *           that mutations reach the payload decoders); then an index log
 *           (header frame, transaction frames, CRC-checked).
 * Steps:    store_index_read, store_index_has_guid, then SYNC and GUIDS
 *           (which lock the log, cut a torn tail, replay it into the
 *           mailbox state and reconcile it with the empty Maildir: every
 *           present message becomes LOST), and finally one LMTP-style
 *           index append on what is left.
 * Oracle:   the sanitizers and LeakSanitizer; no fd left open; every record
 *           given to a callback is valid (store_idx_rec_valid); the state
 *           after a GUIDS pass is the one SYNC reported.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "privsep/privsep.h"
#include "storage/repl/repl.h"
#include "storage/storage_int.h"
#include "tests/fuzz/fuzz_store.h"
#include "tests/fuzz/fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define GUID_A "0190f3a2b4c8d2a1e5f6a7b8c9d0e1f2"

static char base[4096], maildir[4096], log_path[4096];
static struct store_repl_ctx ctx;

static void
mkdir_or_die(const char *p)
{
	if (mkdir(p, 0700) < 0) {
		perror(p);
		abort();
	}
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char p[4200];

	(void)argc, (void)argv;
	log_init("writer", -1);
	snprintf(base, sizeof(base), "%s/base", fuzz_scratch());
	snprintf(maildir, sizeof(maildir), "%s/Maildir", base);
	snprintf(log_path, sizeof(log_path), "%s/" STORE_INDEX_FILE, maildir);
	mkdir_or_die(base);
	mkdir_or_die(maildir);
	snprintf(p, sizeof(p), "%s/tmp", maildir);
	mkdir_or_die(p);
	snprintf(p, sizeof(p), "%s/new", maildir);
	mkdir_or_die(p);
	snprintf(p, sizeof(p), "%s/cur", maildir);
	mkdir_or_die(p);
	ctx.mail_base = base;
	ctx.mail_rel = "Maildir";
	ctx.uid = getuid();
	ctx.server_id = "fuzz.example";
	ctx.host = "fuzz";
	/* every iteration replays its own log from the start */
	store_repl_cache_limit(0, 0);
	store_index_lock_timeout_ms = 1000;
	return 0;
}

static void
replay(void)
{
	struct store_mbox_state st, st2;
	struct store_repl_result res;
	const char *what = NULL;
	size_t n = 0;

	memset(&st, 0, sizeof(st));
	if (store_repl_sync(&ctx, "INBOX", &st, &res, &what) < 0 ||
	    res.status != STORE_R_OK)
		return;
	if (store_repl_guids(&ctx, "INBOX", fuzz_info_valid_cb, &n, &res, &what) < 0 ||
	    res.status != STORE_R_OK)
		return;
	memset(&st2, 0, sizeof(st2));
	if (store_repl_sync(&ctx, "INBOX", &st2, &res, &what) < 0)
		return;
	if (memcmp(&st, &st2, sizeof(st)) != 0)
		abort();        /* a read-only pass changed the state */
}

static void
append_one(int dirfd)
{
	struct store_index_state st;
	struct store_rec rec;

	memset(&rec, 0, sizeof(rec));
	rec.op = STORE_REC_SAVE;
	memcpy(rec.guid, GUID_A, sizeof(rec.guid));
	snprintf(rec.name, sizeof(rec.name), "1.M1P1Q1G%s.fuzz,S=1,W=1", GUID_A);
	(void)store_index_append(dirfd, &rec, 1, &st);
}

/* Walk the frames by their length fields and set each CRC. */
static void
fix_crcs(unsigned char *p, size_t size)
{
	size_t off = 0, len;
	uint32_t crc;

	while (off + STORE_IDX_OVERHEAD <= size) {
		len = store_get_le32(p + off);
		if (len > STORE_IDX_MAX_PAYLOAD || len > size - off - STORE_IDX_OVERHEAD)
			break;
		crc = store_crc32(store_crc32(0, p + off, 4), p + off + 8, len);
		p[off + 4] = (unsigned char)crc;
		p[off + 5] = (unsigned char)(crc >> 8);
		p[off + 6] = (unsigned char)(crc >> 16);
		p[off + 7] = (unsigned char)(crc >> 24);
		off += STORE_IDX_OVERHEAD + len;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct store_index_state st;
	unsigned char *copy;
	uint8_t mode;
	bool found;
	int dirfd, fd0 = fuzz_lowest_free_fd();

	mode = (uint8_t)fuzz_take(&data, &size, 1);
	copy = xmalloc(size + 1);
	memcpy(copy, data, size);
	if (mode & 1)
		fix_crcs(copy, size);
	fuzz_write_file(log_path, copy, size);
	free(copy);
	dirfd = open(maildir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0)
		abort();
	(void)store_index_read(dirfd, fuzz_rec_valid_cb, NULL, &st);
	(void)store_index_has_guid(dirfd, GUID_A, &found);
	replay();
	append_one(dirfd);
	(void)store_index_read(dirfd, fuzz_rec_valid_cb, NULL, &st);
	close(dirfd);
	fuzz_check_fds(fd0, "index");
	return 0;
}
