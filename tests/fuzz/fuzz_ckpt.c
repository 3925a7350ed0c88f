/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/fuzz_ckpt.c - the checkpoint of a mailbox's state
 * (storage/repl/ckpt.c): the input is the body of the stowd-index.ckpt of
 * an INBOX whose index and files are fixed (8 messages), under a header
 * that names that index, so that the decoders are reached: the records
 * (length, CRC, GUID, kind, stamps, flags, name, per-flag stamps) and the
 * two sorted tables (keys, record offsets).
 *
 * Input:    octet 0: bit 0 set = give every record its correct CRC first
 *           (walking the records by their length fields); octets 1-2 and
 *           3-4: the entries of the GUID and the name table (little-
 *           endian); the rest: the records, then the tables.  The header
 *           gets the counts, lengths and CRCs that match.
 * Steps:    a capture of two names (a partial load: table look-ups, record
 *           reads, the index since), SYNC (a whole load), GUIDS.  The index
 *           is put back in place (same inode) before each input.
 * Oracle:   the sanitizers and LeakSanitizer; no fd left open; every record
 *           a capture reports is valid (store_idx_rec_valid); every GUIDS
 *           entry has a valid GUID and terminated flags.
 *
 * FUZZ_CKPT_SEED=PATH (environment) writes the input that gives the good
 * checkpoint to PATH at start (the seed corpus comes from it).
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "privsep/privsep.h"
#include "storage/repl/repl_int.h"
#include "storage/storage_int.h"
#include "tests/fuzz/fuzz_store.h"
#include "tests/fuzz/fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define NMSG 8

static char base[4096], maildir[4096], idx_path[4200], ckpt_path[4200];
static struct store_repl_ctx ctx;
static unsigned char *good_idx, good_hdr[CKPT_HDR];
static size_t good_idx_len;

static void
die(const char *what)
{
	perror(what);
	abort();
}

/* The whole file at path (malloc'd), its length in *len. */
static unsigned char *
slurp(const char *path, size_t *len)
{
	struct stat st;
	unsigned char *p;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0 || fstat(fd, &st) < 0)
		die(path);
	p = xmalloc((size_t)st.st_size + 1);
	if (read(fd, p, (size_t)st.st_size) != st.st_size)
		die(path);
	close(fd);
	*len = (size_t)st.st_size;
	return p;
}

static void
put32(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 4; i++, v >>= 8)
		p[i] = (unsigned char)v;
}

static void
put64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++, v >>= 8)
		p[i] = (unsigned char)v;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char p[4300];
	const char *seed = getenv("FUZZ_CKPT_SEED");
	struct store_mbox_state st;
	struct store_repl_result res;
	const char *what = NULL;
	unsigned char *ck;
	size_t cklen;

	(void)argc, (void)argv;
	log_init("writer", -1);
	snprintf(base, sizeof(base), "%s/base", fuzz_scratch());
	snprintf(maildir, sizeof(maildir), "%s/Maildir", base);
	snprintf(idx_path, sizeof(idx_path), "%s/" STORE_INDEX_FILE, maildir);
	snprintf(ckpt_path, sizeof(ckpt_path), "%s/" STORE_CKPT_FILE, maildir);
	if (mkdir(base, 0700) < 0 || mkdir(maildir, 0700) < 0)
		die("mkdir");
	for (int i = 0; i < 3; i++) {
		snprintf(p, sizeof(p), "%s/%s", maildir, (const char *[]){ "tmp", "new", "cur" }[i]);
		if (mkdir(p, 0700) < 0)
			die(p);
	}
	for (int i = 0; i < NMSG; i++) {
		snprintf(p, sizeof(p), "%s/cur/170000000%d.M%dP1.fuzz,S=3:2,%s", maildir, i, i,
			 i % 2 ? "S" : "FS");
		fuzz_write_file(p, "abc", 3);
	}
	ctx.mail_base = base;
	ctx.mail_rel = "Maildir";
	ctx.uid = getuid();
	ctx.server_id = "fuzz.example";
	ctx.host = "fuzz";
	store_index_lock_timeout_ms = 1000;
	/* the index of the 8 messages and its checkpoint */
	store_repl_cache_limit(0, 0);
	store_repl_ckpt_every(0);
	if (store_repl_sync(&ctx, "INBOX", &st, &res, &what) < 0 || st.messages != NMSG)
		die("sync");
	store_repl_ckpt_every(SIZE_MAX - 1);   /* the inputs are not replaced */
	good_idx = slurp(idx_path, &good_idx_len);
	ck = slurp(ckpt_path, &cklen);
	memcpy(good_hdr, ck, CKPT_HDR);
	if (seed != NULL) {
		unsigned char *in = xmalloc(cklen - CKPT_HDR + 5);

		in[0] = 0;
		in[1] = ck[H_NREC];
		in[2] = ck[H_NREC + 1];
		in[3] = ck[H_NNAME];
		in[4] = ck[H_NNAME + 1];
		memcpy(in + 5, ck + CKPT_HDR, cklen - CKPT_HDR);
		fuzz_write_file(seed, in, cklen - CKPT_HDR + 5);
		free(in);
	}
	free(ck);
	return 0;
}

/* Walk the records by their length fields and set each CRC. */
static void
fix_crcs(unsigned char *p, size_t len)
{
	size_t off = 0, rl;

	while (len - off >= 8) {
		rl = store_get_le32(p + off);
		if (rl < 8 || rl > len - off)
			break;
		put32(p + off + 4, store_crc32(0, p + off + 8, rl - 8));
		off += rl;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const names[] = { "1700000003.M3P1.fuzz,S=3:2,S",
					     "1700000004.M4P1.fuzz,S=3:2,FS" };
	struct store_capture_names nm = { .v = names, .n = 2 };
	struct store_mbox_state st;
	struct store_repl_result res;
	const char *what = NULL;
	unsigned char *file;
	size_t nrec, nname, tables;
	uint8_t mode;
	int fd, fd0 = fuzz_lowest_free_fd();

	mode = (uint8_t)fuzz_take(&data, &size, 1);
	nrec = (size_t)fuzz_take(&data, &size, 2);
	nname = (size_t)fuzz_take(&data, &size, 2);
	tables = (nrec + nname) * CKPT_ENT;
	if (tables > size)
		nrec = nname = tables = 0;
	/* the index as it was, in place */
	fd = open(idx_path, O_WRONLY | O_TRUNC | O_CLOEXEC);
	if (fd < 0 || write(fd, good_idx, good_idx_len) != (ssize_t)good_idx_len)
		die("index");
	close(fd);
	file = xmalloc(CKPT_HDR + size + 1);
	memcpy(file, good_hdr, CKPT_HDR);
	memcpy(file + CKPT_HDR, data, size);
	if (mode & 1)
		fix_crcs(file + CKPT_HDR, size - tables);
	put32(file + H_NREC, nrec);
	put32(file + H_NNAME, nname);
	put64(file + H_RECS_LEN, size - tables);
	put32(file + H_BODY_CRC, store_crc32(0, file + CKPT_HDR, size));
	put32(file + H_CRC, 0);
	put32(file + H_CRC, store_crc32(0, file, CKPT_HDR));
	unlink(ckpt_path);
	fuzz_write_file(ckpt_path, file, CKPT_HDR + size);
	free(file);
	store_repl_cache_clear();
	(void)store_repl_capture(&ctx, "INBOX", &nm, fuzz_rec_valid_cb, NULL, &res, &what);
	store_repl_cache_clear();
	(void)store_repl_sync(&ctx, "INBOX", &st, &res, &what);
	store_repl_cache_clear();
	(void)store_repl_guids(&ctx, "INBOX", fuzz_info_valid_cb, NULL, &res, &what);
	fuzz_check_fds(fd0, "ckpt");
	return 0;
}
