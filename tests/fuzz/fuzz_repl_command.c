/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/fuzz_repl_command.c - what repld reads from a replication
 * peer: the framer (repl-hook/proto_frame.c: lines, counted literals into
 * sealed memfds), the tag and the command parser (proto_parse.c with the
 * lexer proto_lex.c).
 *
 * Input:    1 octet of settings (maxliteral, seed of the piece sizes),
 *           then the byte stream of a peer (command lines and literals).
 * Oracle:   the sanitizers; no fd left open; and what repld does next
 *           with an accepted command: the PSEP_REPL_REQ it would send
 *           (with the literal of a SAVE) must pass psep_msg_recv in the
 *           supervisor, or one peer could get repld killed; formatting the
 *           command (repl_fmt_command) and parsing that gives it back.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "privsep/privsep.h"
#include "repl-hook/proto/proto.h"
#include "tests/fuzz/fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define PEER_ID "peer.example"

static int sv[2] = { -1, -1 };
static struct repl_frame frame, frame2;
static struct repl_command cmd, cmd2;
static struct psep_msg msg;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	log_init("repld", -1);
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0,
		       sv) < 0) {
		perror("socketpair");
		abort();
	}
	return 0;
}

static bool
has_modseq(uint32_t op)
{
	return op == PSEP_REPL_SAVE || op == PSEP_REPL_STORE ||
	       op == PSEP_REPL_EXPUNGE;
}

/* repld_cmd.c's do_op and repld_ipc.c's ipc_submit for a remote peer,
 * then the supervisor's receive. */
static void
check_ipc(const struct repl_command *rc, int lit)
{
	struct psep_repl_req req;
	const char *why = NULL;

	if (rc->name != REPL_CMD_OP)
		return;
	if (has_modseq(rc->cmd.op) && rc->cmd.modseq == 0)
		return;          /* refused by repld (only a local producer) */
	if (rc->cmd.op == PSEP_REPL_SAVE && lit < 0)
		return;          /* refused by repld */
	memset(&req, 0, sizeof(req));
	req.cmd = rc->cmd;
	xstrlcpy(req.cmd.peer, PEER_ID, sizeof(req.cmd.peer));
	if (psep_msg_send(sv[0], PSEP_REPL_REQ, 1, &req, sizeof(req),
			  rc->cmd.op == PSEP_REPL_SAVE ? lit : -1) < 0) {
		perror("psep_msg_send");
		abort();
	}
	if (psep_msg_recv(sv[1], PSEP_ROLE_REPLD, PSEP_STATE_READY, &msg, &why) < 0) {
		fprintf(stderr, "accepted command refused by the supervisor: %s\n",
			why != NULL ? why : "?");
		abort();
	}
	psep_msg_clear(&msg);
}

/* Format the command and parse it again: the same command. */
static void
check_roundtrip(const struct repl_command *rc)
{
	const char *code, *text;
	size_t n;

	if (rc->name != REPL_CMD_OP)
		return;
	memcpy(frame2.line, rc->tag, strlen(rc->tag));
	frame2.line[strlen(rc->tag)] = ' ';
	n = strlen(rc->tag) + 1;
	n += repl_fmt_command(frame2.line + n, sizeof(frame2.line) - n, &rc->cmd,
			      rc->cmd.body_size);
	if (n == strlen(rc->tag) + 1)
		abort();         /* a parsed command always fits */
	frame2.len = n;
	frame2.has_literal = rc->cmd.op == PSEP_REPL_SAVE;
	frame2.literal_size = rc->cmd.body_size;
	frame2.literal_fd = -1;
	memset(&cmd2, 0, sizeof(cmd2));
	if (repl_parse_command(&frame2, &cmd2, &code, &text) != REPL_P_OK ||
	    memcmp(&cmd2, rc, sizeof(cmd2)) != 0) {
		fprintf(stderr, "round trip differs: %s\n", frame2.line);
		abort();
	}
}

static void
handle(const struct repl_frame *f)
{
	char tag[REPL_TAG_MAX];
	const char *code = NULL, *text = NULL;
	bool tagged = repl_parse_tag(f->line, tag);

	if (f->len > REPL_MAXLINE || f->line[f->len] != '\0')
		abort();
	if (!tagged || f->toolong || f->bad_eol || f->literal_toobig)
		return;
	memset(&cmd, 0, sizeof(cmd));
	switch (repl_parse_command(f, &cmd, &code, &text)) {
	case REPL_P_OK:
		if (strcmp(cmd.tag, tag) != 0)
			abort();
		check_ipc(&cmd, f->literal_fd);
		check_roundtrip(&cmd);
		break;
	case REPL_P_BAD:
	case REPL_P_NO:
		if (code == NULL || text == NULL || strcmp(cmd.tag, tag) != 0)
			abort();
		break;
	case REPL_P_BADTAG:
	default:
		break;
	}
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
		if (r == REPL_F_FATAL && why == NULL)
			abort();
		if (r == REPL_F_MORE && evbuffer_get_length(in) != 0)
			abort();
	}
	(void)repl_framer_busy(fw);
	repl_framer_free(&fw);
	evbuffer_free(in);
	fuzz_check_fds(fd0, "framer");
	return 0;
}
