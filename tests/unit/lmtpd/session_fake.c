/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/lmtpd/session_fake.c - fake transport and backend for the
 * session tests (see session_fake.h).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/buffer.h>

#include "session_fake.h"

int
__wrap_psep_msg_send(int sock, uint16_t type, uint64_t id, const void *body,
		     size_t body_len, int fd)
{
	(void)sock, (void)type, (void)id, (void)body, (void)body_len, (void)fd;
	errno = EPIPE;
	return -1;
}

static void
fake_want_input(void *ctx, bool on)
{
	((struct fake *)ctx)->reading = on;
}

static void
fake_close(void *ctx)
{
	((struct fake *)ctx)->closes++;
}

static void
fake_deadline(void *ctx, uint64_t ms)
{
	struct fake *f = ctx;

	f->deadline_ms = ms;
	if (ms != 0)
		f->deadline_sets++;
}

static int
fake_rcpt(void *ctx, struct lmtp_session *s, uint32_t cookie, const char *address)
{
	struct fake *f = ctx;

	assert_ptr_equal(s, f->s);
	if (f->fail_rcpt)
		return -1;
	assert_true(f->n_rcpt < MAXREQ);
	f->rcpt_cookie[f->n_rcpt] = cookie;
	snprintf(f->rcpt_addr[f->n_rcpt], PSEP_ADDR_MAX, "%s", address);
	f->n_rcpt++;
	return 0;
}

static int
fake_deliver(void *ctx, struct lmtp_session *s, const struct lmtp_delivery *d)
{
	struct fake *f = ctx;
	struct fake_dlv *v;

	assert_ptr_equal(s, f->s);
	assert_string_equal(d->session, lmtp_session_id(s));
	if (f->fail_deliver)
		return -1;
	assert_true(f->n_dlv < MAXREQ);
	v = &f->dlv[f->n_dlv++];
	snprintf(v->address, sizeof(v->address), "%s", d->address);
	v->rcpt_index = d->rcpt_index;
	v->size = d->body_size;
	v->vsize = d->body_vsize;
	assert_true(d->prefix_len <= PSEP_PREFIX_MAX);
	memcpy(v->prefix, d->prefix, d->prefix_len);
	v->prefix[d->prefix_len] = '\0';
	v->body = lmtp_fdref_get(d->body);
	return 0;
}

static void
fake_end(void *ctx, struct lmtp_session *s)
{
	struct fake *f = ctx;

	assert_ptr_equal(s, f->s);
	f->ends++;
}

static const struct lmtp_io_ops fake_io = {
	.want_input = fake_want_input,
	.close = fake_close,
	.deadline = fake_deadline,
};

static const struct lmtp_backend_ops fake_backend = {
	.rcpt = fake_rcpt,
	.deliver = fake_deliver,
	.end = fake_end,
};

int
setup(void **state)
{
	struct fake *f = calloc(1, sizeof(*f));

	snprintf(f->cfg.host, sizeof(f->cfg.host), "test.example");
	f->cfg.max_message_size = 1000000;
	f->cfg.max_recipients = 100;
	f->cfg.max_line_length = 1000;
	f->cfg.command_timeout_ms = 300000;
	f->in = evbuffer_new();
	f->out = evbuffer_new();
	*state = f;
	return 0;
}

int
teardown(void **state)
{
	struct fake *f = *state;
	size_t i;

	if (f->s != NULL) {
		lmtp_session_free(&f->s);
		assert_int_equal(f->ends, 1);
	}
	for (i = 0; i < f->n_dlv; i++)
		lmtp_fdref_put(&f->dlv[i].body);
	evbuffer_free(f->in);
	evbuffer_free(f->out);
	free(f);
	return 0;
}

/* All output so far (then forgotten), NUL-terminated. */
const char *
out(struct fake *f)
{
	size_t n = evbuffer_get_length(f->out);

	assert_true(n < sizeof(f->text));
	evbuffer_remove(f->out, f->text, n);
	f->text[n] = '\0';
	return f->text;
}

void
sendn(struct fake *f, const char *p, size_t n)
{
	evbuffer_add(f->in, p, n);
	lmtp_session_input(f->s);
}

void
sends(struct fake *f, const char *p)
{
	sendn(f, p, strlen(p));
}

void
start_with(struct fake *f, bool shutting_down)
{
	struct lmtp_session_args a = {
		.cfg = &f->cfg, .in = f->in, .out = f->out,
		.io = &fake_io, .io_ctx = f,
		.backend = &fake_backend, .backend_ctx = f,
		.peer = "local", .shutting_down = shutting_down,
	};

	f->s = lmtp_session_new(&a);
	assert_non_null(f->s);
}

/* Start a session, LHLO, MAIL FROM:<s@x.example>. */
void
start_mail(struct fake *f, const char *mail_params)
{
	char want[512];

	start_with(f, false);
	assert_string_equal(out(f), "220 test.example LMTP stowd ready\r\n");
	assert_true(f->reading);
	sends(f, "LHLO client.example\r\n");
	snprintf(want, sizeof(want), LHLO_REPLY, (unsigned long long)f->cfg.max_message_size);
	assert_string_equal(out(f), want);
	snprintf(want, sizeof(want), "MAIL FROM:<s@x.example>%s\r\n", mail_params);
	sends(f, want);
	assert_string_equal(out(f), "250 2.1.0 Ok\r\n");
}

struct dlv_result
result(unsigned code, const char *enhanced, const char *text)
{
	struct dlv_result r;

	memset(&r, 0, sizeof(r));
	r.status = code / 100 == 2 ? DLV_OK : code / 100 == 4 ? DLV_TEMPFAIL : DLV_PERMFAIL;
	r.code = code;
	snprintf(r.enhanced, sizeof(r.enhanced), "%s", enhanced);
	snprintf(r.text, sizeof(r.text), "%s", text);
	return r;
}

/* Answer look-up i. */
void
rcpt_reply(struct fake *f, size_t i, unsigned code, const char *enhanced)
{
	struct dlv_result r = result(code, enhanced, code < 300 ? "Ok" : "Refused");

	assert_true(i < f->n_rcpt);
	lmtp_session_rcpt_done(f->s, f->rcpt_cookie[i], &r);
}

/* RCPT TO:<addr>, answered with code. */
void
rcpt(struct fake *f, const char *addr, unsigned code, const char *enhanced)
{
	char line[600];
	size_t n = f->n_rcpt;

	snprintf(line, sizeof(line), "RCPT TO:<%s>\r\n", addr);
	sends(f, line);
	assert_int_equal(f->n_rcpt, n + 1);
	assert_string_equal(f->rcpt_addr[n], addr);
	/* waiting for the look-up: input is buffered, nothing is answered */
	assert_true(f->reading);
	assert_string_equal(out(f), "");
	rcpt_reply(f, n, code, enhanced);
	snprintf(line, sizeof(line), "%u %s %s\r\n", code, enhanced,
		 code < 300 ? "Ok" : "Refused");
	assert_string_equal(out(f), line);
}

void
dlv_reply(struct fake *f, size_t i, unsigned code, const char *enhanced,
	  const char *guid)
{
	struct dlv_result r = result(code, enhanced, code < 300 ? "Ok" : "Mailbox full");

	assert_true(i < f->n_dlv);
	lmtp_session_deliver_done(f->s, f->dlv[i].rcpt_index, &r, guid);
}

/* Body of delivery i. */
const char *
body(struct fake *f, size_t i)
{
	static char buf[4096];
	ssize_t n;

	n = pread(f->dlv[i].body->fd, buf, sizeof(buf) - 1, 0);
	assert_true(n >= 0);
	buf[n] = '\0';
	assert_true((uint64_t)n == f->dlv[i].size);
	return buf;
}

const char *
fmt(const char *format, ...)
{
	static char buf[4][2048];
	static int k;
	va_list ap;

	k = (k + 1) % 4;
	va_start(ap, format);
	vsnprintf(buf[k], sizeof(buf[k]), format, ap);
	va_end(ap);
	return buf[k];
}
