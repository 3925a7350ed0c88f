/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/fuzz_lmtp_session.c - one LMTP session (lmtpd/session.c,
 * command.c, body.c with the parser, decoder and memfd spool) driven
 * without sockets, like the unit tests do: the client's bytes arrive in
 * pieces, a fake supervisor answers RCPT look-ups and deliveries later,
 * in any order, with any result, and may time out or shut down.
 *
 * Input:    4 octets of settings (limits, shutdown at start, failing
 *           requests; seed of the harness's decisions), then the client's
 *           byte stream (an LMTP transcript).
 * Oracle:   the sanitizers; the backend contract (every request answered
 *           at most once, a delivered body is a sealed memfd of the size
 *           announced); every reply line is "NNN" + SP/-/end, with no
 *           CR, LF or NUL inside.
 * Mimics:   lmtpd/conn.c (input only while reading is on, output drained
 *           then output_drained(), close deferred to after the call) and
 *           lmtpd/ipc.c (a late reply for a closed session is still
 *           delivered until the session is freed).
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <event2/buffer.h>

#include "lmtpd/lmtpd_int.h"
#include "privsep/privsep.h"
#include "tests/fuzz/fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define MAX_STEPS 20000
#define SEALS (F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE)

struct req {
	bool deliver;
	uint32_t cookie;             /* rcpt: the cookie; deliver: rcpt_index */
	struct lmtp_fdref *body;     /* deliver: a reference */
};

struct fz {
	struct lmtp_config cfg;
	struct evbuffer *in, *out;
	struct lmtp_session *s;
	struct fuzz_rng rng;
	bool reading, closing, fail_some;
	struct req *reqs;
	size_t n_reqs, cap_reqs;
};

static const struct {
	unsigned code;
	const char *enhanced, *text;
} results[] = {
	{ 250, "2.1.5", "Ok" },
	{ 250, "2.0.0", "Saved" },
	{ 550, "5.1.1", "User unknown" },
	{ 451, "4.3.0", "Temporary failure" },
	{ 452, "4.2.2", "Mailbox full" },
	{ 552, "5.2.2", "Quota exceeded" },
	{ 0, "", "" },
	{ 999, "9.9.9", "odd\r\n250 injected\x01" },
	{ 250, "2.1.5\r\n", "" },
};

static const char *const guids[] = {
	NULL, "", "0190f3a2b4c8d2a1e5f6a7b8c9d0e1f2", "../x\r\n250 y",
};

static void
check_output(struct fz *f)
{
	size_t n = evbuffer_get_length(f->out), i, start = 0;
	unsigned char *p;

	if (n == 0)
		return;
	p = evbuffer_pullup(f->out, -1);
	if (n < 2 || p[n - 2] != '\r' || p[n - 1] != '\n')
		abort();
	for (i = 0; i + 1 < n; i++) {
		if (p[i] == '\r' && p[i + 1] == '\n') {
			size_t len = i - start;
			const unsigned char *l = p + start;

			if (len < 3 || l[0] < '2' || l[0] > '5' || l[1] < '0' ||
			    l[1] > '9' || l[2] < '0' || l[2] > '9' ||
			    (len > 3 && l[3] != ' ' && l[3] != '-'))
				abort();
			start = i + 2;
			i++;
			continue;
		}
		if (p[i] == '\r' || p[i] == '\n' || p[i] == '\0')
			abort();
	}
	evbuffer_drain(f->out, n);
}

static void
add_req(struct fz *f, const struct req *r)
{
	if (f->n_reqs == f->cap_reqs) {
		f->cap_reqs = f->cap_reqs ? 2 * f->cap_reqs : 16;
		f->reqs = xrealloc(f->reqs, f->cap_reqs * sizeof(*f->reqs));
	}
	f->reqs[f->n_reqs++] = *r;
}

static void
fz_want_input(void *ctx, bool on)
{
	((struct fz *)ctx)->reading = on;
}

static void
fz_close(void *ctx)
{
	((struct fz *)ctx)->closing = true;
}

static int
fz_rcpt(void *ctx, struct lmtp_session *s, uint32_t cookie, const char *address)
{
	struct fz *f = ctx;
	struct req r = { false, cookie, NULL };
	size_t i;

	if (s != f->s || strlen(address) >= PSEP_ADDR_MAX)
		abort();
	for (i = 0; i < f->n_reqs; i++)
		if (!f->reqs[i].deliver)
			abort();     /* one look-up at a time */
	if (f->fail_some && fuzz_rng_below(&f->rng, 8) == 0)
		return -1;
	add_req(f, &r);
	return 0;
}

static int
fz_deliver(void *ctx, struct lmtp_session *s, const struct lmtp_delivery *d)
{
	struct fz *f = ctx;
	struct req r = { true, d->rcpt_index, NULL };
	struct stat st;
	size_t i;

	if (s != f->s || strlen(d->address) >= PSEP_ADDR_MAX ||
	    d->prefix_len > PSEP_PREFIX_MAX || d->body == NULL)
		abort();
	if (fstat(d->body->fd, &st) < 0 || (uint64_t)st.st_size != d->body_size ||
	    fcntl(d->body->fd, F_GET_SEALS) != SEALS || d->body_vsize < d->body_size)
		abort();
	for (i = 0; i < f->n_reqs; i++)
		if (f->reqs[i].deliver && f->reqs[i].cookie == d->rcpt_index)
			abort();     /* one delivery per recipient */
	if (f->fail_some && fuzz_rng_below(&f->rng, 8) == 0)
		return -1;
	r.body = lmtp_fdref_get(d->body);
	add_req(f, &r);
	return 0;
}

static void
drop_reqs(struct fz *f)
{
	size_t i;

	for (i = 0; i < f->n_reqs; i++)
		lmtp_fdref_put(&f->reqs[i].body);
	f->n_reqs = 0;
}

static void
fz_end(void *ctx, struct lmtp_session *s)
{
	struct fz *f = ctx;

	if (s != f->s)
		abort();
	drop_reqs(f);
}

static const struct lmtp_io_ops fz_io = {
	.want_input = fz_want_input,
	.close = fz_close,
};

static const struct lmtp_backend_ops fz_backend = {
	.rcpt = fz_rcpt,
	.deliver = fz_deliver,
	.end = fz_end,
};

/* Answer one pending request (chosen by the generator). */
static void
answer(struct fz *f)
{
	size_t k = fuzz_rng_below(&f->rng, f->n_reqs);
	size_t ri = fuzz_rng_below(&f->rng, sizeof(results) / sizeof(results[0]));
	struct req r = f->reqs[k];
	struct dlv_result res;

	memset(&res, 0, sizeof(res));
	res.code = results[ri].code;
	res.status = res.code / 100 == 2 ? DLV_OK :
		     res.code / 100 == 4 ? DLV_TEMPFAIL : DLV_PERMFAIL;
	xstrlcpy(res.enhanced, results[ri].enhanced, sizeof(res.enhanced));
	xstrlcpy(res.text, results[ri].text, sizeof(res.text));
	f->reqs[k] = f->reqs[--f->n_reqs];
	if (r.deliver)
		lmtp_session_deliver_done(f->s, r.cookie, &res,
					  guids[fuzz_rng_below(&f->rng, 4)]);
	else
		lmtp_session_rcpt_done(f->s, r.cookie, &res);
	lmtp_fdref_put(&r.body);
}

static void
config(struct fz *f, uint8_t ctl)
{
	static const uint64_t sizes[] = { 1000000, 200, 20000, 1u << 20 };
	static const unsigned rcpts[] = { 100, 1, 3, 1000 };
	static const unsigned lines[] = { 1000, 0, 78, 2 };

	xstrlcpy(f->cfg.host, "fuzz.example", sizeof(f->cfg.host));
	f->cfg.max_message_size = sizes[(ctl >> 1) & 3];
	f->cfg.max_recipients = rcpts[(ctl >> 3) & 3];
	f->cfg.max_line_length = lines[(ctl >> 5) & 3];
	f->cfg.command_timeout_ms = 300000;
	f->cfg.rcpt_timeout_ms = 30000;
	f->cfg.deliver_timeout_ms = 30000;
	f->fail_some = (ctl & 0x80) != 0;
}

/* One event of the loop; false when the session is over. */
static bool
step(struct fz *f, const uint8_t **data, size_t *size, bool *eof_sent)
{
	size_t pick = fuzz_rng_below(&f->rng, 256), n;

	if (f->closing) {
		/* conn.c frees after the call; a reply may come first */
		if (f->n_reqs > 0 && pick < 64)
			answer(f);
		return false;
	}
	if (pick == 0) {
		lmtp_session_timeout(f->s);
	} else if (pick == 1) {
		lmtp_session_shutdown(f->s);
	} else if (f->n_reqs > 0 && (pick < 128 || !f->reading || *size == 0)) {
		answer(f);
	} else if (*size > 0 && f->reading) {
		n = 1 + fuzz_rng_below(&f->rng, *size < 512 ? *size : 512);
		evbuffer_add(f->in, *data, n);
		*data += n;
		*size -= n;
		lmtp_session_input(f->s);
	} else if (!*eof_sent && *size == 0) {
		*eof_sent = true;
		lmtp_session_eof(f->s);
	} else if (!f->reading) {
		lmtp_session_output_drained(f->s);
		if (!f->reading && f->n_reqs == 0)
			return false;   /* stuck: conn.c's timeout would end it */
	} else {
		return false;
	}
	check_output(f);
	lmtp_session_output_drained(f->s);
	return true;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	log_init("lmtpd", -1);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz f;
	struct lmtp_session_args a;
	bool eof_sent = false;
	uint8_t ctl;
	int i, fd0 = fuzz_lowest_free_fd();

	memset(&f, 0, sizeof(f));
	ctl = (uint8_t)fuzz_take(&data, &size, 1);
	config(&f, ctl);
	fuzz_rng_seed(&f.rng, fuzz_take(&data, &size, 3));
	f.in = evbuffer_new();
	f.out = evbuffer_new();
	memset(&a, 0, sizeof(a));
	a.cfg = &f.cfg;
	a.in = f.in;
	a.out = f.out;
	a.io = &fz_io;
	a.io_ctx = &f;
	a.backend = &fz_backend;
	a.backend_ctx = &f;
	a.peer = "[192.0.2.1]";
	a.shutting_down = (ctl & 1) && (ctl & 0x40);
	f.s = lmtp_session_new(&a);
	check_output(&f);
	for (i = 0; i < MAX_STEPS && step(&f, &data, &size, &eof_sent); i++)
		;
	check_output(&f);
	lmtp_session_free(&f.s);
	if (f.n_reqs != 0)
		abort();         /* end() must have dropped them */
	free(f.reqs);
	evbuffer_free(f.in);
	evbuffer_free(f.out);
	fuzz_check_fds(fd0, "session");
	return 0;
}
