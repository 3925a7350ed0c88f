/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/fuzz_repl_response.c - what repl-hook reads from a replica:
 * the framer (repl-hook/proto_frame.c), the response parser and the data
 * parsers (proto_resp.c with the lexer proto_lex.c): greeting, tagged
 * replies, untagged BYE/BAD, MAILBOX / SYNC / GUID / EXPUNGED / FETCH
 * data.
 *
 * Input:    1 octet of settings (maxliteral, seed of the piece sizes),
 *           then the byte stream of a replica.
 * Oracle:   the sanitizers; no fd left open; pointers of a parsed
 *           response inside the line; a parsed data body formats back
 *           (repl_fmt_*) to a body that parses to the same value.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "privsep/privsep.h"
#include "repl-hook/proto/proto.h"
#include "tests/fuzz/fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static struct repl_frame frame;
static char buf[REPL_MAXLINE + 1];

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	log_init("repl-hook", -1);
	return 0;
}

static bool
within(const char *p, const char *line, size_t len)
{
	return p != NULL && p >= line && p <= line + len;
}

static void
check_state_data(const char *body, bool sync)
{
	char name[PSEP_NAME_MAX], name2[PSEP_NAME_MAX];
	struct store_mbox_state st, st2;
	int r;

	memset(&st, 0, sizeof(st));
	r = sync ? repl_parse_sync_data(body, name, &st) :
		   repl_parse_mailbox_data(body, name, &st);
	if (r < 0)
		return;
	if ((sync ? repl_fmt_sync_data(buf, sizeof(buf), name, &st) :
		    repl_fmt_mailbox_data(buf, sizeof(buf), name, &st)) == 0)
		abort();
	memset(&st2, 0, sizeof(st2));
	r = sync ? repl_parse_sync_data(buf, name2, &st2) :
		   repl_parse_mailbox_data(buf, name2, &st2);
	if (r < 0 || strcmp(name, name2) != 0 || memcmp(&st, &st2, sizeof(st)) != 0)
		abort();
}

static void
check_guid_data(const char *body)
{
	struct store_msg_info m, m2;

	memset(&m, 0, sizeof(m));
	if (repl_parse_guid_data(body, &m) < 0)
		return;
	if (repl_fmt_guid_data(buf, sizeof(buf), &m) == 0)
		abort();
	memset(&m2, 0, sizeof(m2));
	if (repl_parse_guid_data(buf, &m2) < 0 || memcmp(&m, &m2, sizeof(m)) != 0)
		abort();
}

static void
check_fetch_data(const char *body)
{
	struct store_msg_info m, m2;
	uint64_t n, n2;

	memset(&m, 0, sizeof(m));
	if (repl_parse_fetch_data(body, &m, &n) < 0)
		return;
	if (repl_fmt_fetch_data(buf, sizeof(buf), &m, n) == 0)
		abort();
	memset(&m2, 0, sizeof(m2));
	if (repl_parse_fetch_data(buf, &m2, &n2) < 0 || n != n2 ||
	    memcmp(&m, &m2, sizeof(m)) != 0)
		abort();
}

static void
handle(const struct repl_frame *f)
{
	struct repl_response rp;

	if (f->toolong || f->bad_eol)
		return;
	memset(&rp, 0, sizeof(rp));
	if (repl_parse_response(f->line, &rp) < 0)
		return;
	if (memchr(rp.tag, '\0', sizeof(rp.tag)) == NULL ||
	    memchr(rp.code, '\0', sizeof(rp.code)) == NULL ||
	    memchr(rp.server_id, '\0', sizeof(rp.server_id)) == NULL)
		abort();
	if ((rp.kind == REPL_R_TAGGED || rp.kind == REPL_R_UNTAGGED) &&
	    !within(rp.text, f->line, f->len))
		abort();
	if (rp.kind != REPL_R_DATA)
		return;
	if (!within(rp.body, f->line, f->len))
		abort();
	check_state_data(rp.body, false);
	check_state_data(rp.body, true);
	check_guid_data(rp.body);
	check_fetch_data(rp.body);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint64_t maxlits[] = { 1u << 20, 0, 16, 4096 };
	struct repl_framer *fw;
	struct evbuffer *in = evbuffer_new();
	struct fuzz_rng rng;
	enum repl_frame_result r = REPL_F_MORE;
	const char *why;
	uint8_t ctl;
	size_t n;
	int fd0 = fuzz_lowest_free_fd();

	ctl = (uint8_t)fuzz_take(&data, &size, 1);
	fuzz_rng_seed(&rng, ctl >> 2);
	fw = repl_framer_new(maxlits[ctl & 3]);
	while (size > 0 && r != REPL_F_FATAL) {
		n = (ctl >> 2) == 0 ? size :
		    1 + fuzz_rng_below(&rng, size < 300 ? size : 300);
		evbuffer_add(in, data, n);
		data += n;
		size -= n;
		while ((r = repl_framer_next(fw, in, &frame, &why)) == REPL_F_FRAME) {
			handle(&frame);
			if (frame.literal_fd >= 0)
				close(frame.literal_fd);
		}
	}
	repl_framer_free(&fw);
	evbuffer_free(in);
	fuzz_check_fds(fd0, "framer");
	return 0;
}
