/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/fuzz_lmtp_parse.c - the LMTP command parser (lmtpd/parse.c):
 * one command line (NUL-free, no CRLF, as session.c hands it over) split
 * into verb and arguments, the arguments parsed by the parser of that
 * verb, and the path and UTF-8 checks on their own.
 *
 * Input:    one command line; bytes after the first NUL are ignored.
 * Oracle:   the sanitizers, and the outputs: NUL-terminated within their
 *           buffers, an address flagged utf8 exactly when it holds
 *           non-ASCII, a parsed path that is valid UTF-8.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lmtpd/lmtpd_int.h"
#include "privsep/privsep.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool
has_high(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s >= 0x80)
			return true;
	return false;
}

static void
check_address(const char *addr, size_t cap, bool utf8)
{
	size_t n = strnlen(addr, cap);

	if (n == cap || utf8 != has_high(addr) ||
	    !lmtp_utf8_valid((const unsigned char *)addr, n))
		abort();
}

static void
parse_args(enum lmtp_verb verb, const char *args)
{
	struct lmtp_mail_args mail;
	struct lmtp_rcpt_args rcpt;
	const char *reply = NULL;
	char lhlo[LMTP_LHLO_MAX];
	uint64_t bdat_size;
	bool last;

	switch (verb) {
	case LMTP_VERB_MAIL:
		if (lmtp_parse_mail(args, &mail, &reply) == 0)
			check_address(mail.address, sizeof(mail.address), mail.utf8);
		else if (reply == NULL)
			abort();
		break;
	case LMTP_VERB_RCPT:
		if (lmtp_parse_rcpt(args, &rcpt, &reply) == 0)
			check_address(rcpt.address, sizeof(rcpt.address), rcpt.utf8);
		else if (reply == NULL)
			abort();
		break;
	case LMTP_VERB_BDAT:
		(void)lmtp_parse_bdat(args, &bdat_size, &last);
		break;
	case LMTP_VERB_LHLO:
	case LMTP_VERB_HELO:
	case LMTP_VERB_EHLO:
		if (lmtp_parse_lhlo(args, lhlo, sizeof(lhlo)) == 0 &&
		    strnlen(lhlo, sizeof(lhlo)) == sizeof(lhlo))
			abort();
		break;
	case LMTP_VERB_UNKNOWN:
	case LMTP_VERB_DATA:
	case LMTP_VERB_RSET:
	case LMTP_VERB_NOOP:
	case LMTP_VERB_QUIT:
	case LMTP_VERB_VRFY:
	case LMTP_VERB_STARTTLS:
	default:
		break;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char addr[PSEP_ADDR_MAX], small[8];
	const char *args, *p;
	enum lmtp_verb verb;
	char *line;
	bool utf8;

	if (size > LMTP_CMD_MAX)
		return 0;
	line = xmalloc(size + 1);
	memcpy(line, data, size);
	line[size] = '\0';

	verb = lmtp_parse_verb(line, &args);
	if (args < line || args > line + strlen(line))
		abort();
	parse_args(verb, args);

	/* The path parser alone, with a roomy and a tiny output. */
	p = line;
	if (lmtp_parse_path(&p, addr, sizeof(addr), &utf8) == 0) {
		check_address(addr, sizeof(addr), utf8);
		if (p <= line || p > line + strlen(line) || p[-1] != '>')
			abort();
	}
	p = line;
	if (lmtp_parse_path(&p, small, sizeof(small), &utf8) == 0)
		check_address(small, sizeof(small), utf8);

	(void)lmtp_utf8_valid(data, size);
	free(line);
	return 0;
}
