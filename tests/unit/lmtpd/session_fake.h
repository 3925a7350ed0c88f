/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/lmtpd/session_fake.h - a fake transport (two evbuffers) and
 * a fake backend (records RCPT look-ups and deliveries, completed by the
 * test) for driving struct lmtp_session without sockets.
 */
#ifndef STOWD_TESTS_LMTPD_SESSION_FAKE_H
#define STOWD_TESTS_LMTPD_SESSION_FAKE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lmtpd/lmtpd_int.h"

struct evbuffer;

#define MAXREQ 16

struct fake_dlv {
	char address[PSEP_ADDR_MAX];
	uint32_t rcpt_index;
	uint64_t size;
	uint64_t vsize;
	char prefix[PSEP_PREFIX_MAX + 1];
	struct lmtp_fdref *body;
};

struct fake {
	struct lmtp_config cfg;
	struct evbuffer *in;
	struct evbuffer *out;
	struct lmtp_session *s;
	bool reading;
	int closes;
	uint64_t deadline_ms;      /* the armed command deadline, 0 = none */
	int deadline_sets;         /* times a deadline was armed */
	int ends;
	bool fail_rcpt;
	bool fail_deliver;
	uint32_t rcpt_cookie[MAXREQ];
	char rcpt_addr[MAXREQ][PSEP_ADDR_MAX];
	size_t n_rcpt;
	struct fake_dlv dlv[MAXREQ];
	size_t n_dlv;
	char text[512 * 1024];
};

#define LHLO_REPLY \
	"250-test.example\r\n250-PIPELINING\r\n250-ENHANCEDSTATUSCODES\r\n" \
	"250-8BITMIME\r\n250-SMTPUTF8\r\n250-SIZE %llu\r\n250 CHUNKING\r\n"

/* log.c refers to psep_msg_send; tests never log over IPC. */
int __wrap_psep_msg_send(int sock, uint16_t type, uint64_t id, const void *body,
			 size_t body_len, int fd);

/* cmocka fixtures: a struct fake in *state, default limits; teardown
 * frees the session and checks backend end() ran once. */
int setup(void **state);
int teardown(void **state);
/* All output so far (then forgotten), NUL-terminated. */
const char *out(struct fake *f);
/* Append to the input and let the session run. */
void sendn(struct fake *f, const char *p, size_t n);
void sends(struct fake *f, const char *p);
/* Create the session. */
void start_with(struct fake *f, bool shutting_down);
/* Session, greeting, LHLO, MAIL FROM:<s@x.example><mail_params>. */
void start_mail(struct fake *f, const char *mail_params);
/* A result with the status that fits code. */
struct dlv_result result(unsigned code, const char *enhanced, const char *text);
/* Complete look-up i. */
void rcpt_reply(struct fake *f, size_t i, unsigned code, const char *enhanced);
/* RCPT TO:<addr>, answered with code; checks the reply. */
void rcpt(struct fake *f, const char *addr, unsigned code, const char *enhanced);
/* Complete delivery i. */
void dlv_reply(struct fake *f, size_t i, unsigned code, const char *enhanced,
	       const char *guid);
/* Body of delivery i, read from its memfd. */
const char *body(struct fake *f, size_t i);
/* printf into one of a few rotating static buffers. */
const char *fmt(const char *format, ...) __attribute__((format(printf, 1, 2)));

#endif
