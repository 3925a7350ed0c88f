/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/lmtpd/test_msgid.c - the Message-ID the spool finds in a
 * body's header for the delivery log line (lmtp_spool_msgid): case of the
 * name, folding, CRLF and LF, the end of the header, the head limit,
 * control bytes and blanks dropped, the output size.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lmtpd/lmtpd_int.h"

int __wrap_psep_msg_send(int sock, uint16_t type, uint64_t id, const void *body,
			 size_t body_len, int fd);

int
__wrap_psep_msg_send(int sock, uint16_t type, uint64_t id, const void *body,
		     size_t body_len, int fd)
{
	(void)sock, (void)type, (void)id, (void)body, (void)body_len, (void)fd;
	errno = EPIPE;
	return -1;
}

static void
check(const char *body, size_t len, size_t outsize, const char *want)
{
	struct lmtp_spool *sp = NULL;
	char out[PSEP_MSGID_MAX];

	assert_int_equal(lmtp_spool_open(&sp), 0);
	/* in small pieces, as the decoder hands them over */
	for (size_t off = 0; off < len; off += 7)
		lmtp_spool_write(sp, body + off, len - off < 7 ? len - off : 7);
	memset(out, 'X', sizeof(out));
	lmtp_spool_msgid(sp, out, outsize);
	assert_string_equal(out, want);
	lmtp_spool_free(&sp);
}

#define CHECK(b, want) check((b), strlen(b), PSEP_MSGID_MAX, (want))

static void
test_msgid_found_in_its_forms(void **state)
{
	(void)state;
	CHECK("Message-ID: <a@b>\n\nbody\n", "<a@b>");
	CHECK("Subject: x\r\nMESSAGE-id:   <a@b>  \r\n\r\n", "<a@b>");
	CHECK("Message-Id:\n <folded@x>\nTo: y\n\n", "<folded@x>");
	CHECK("Message-ID: <a\n\t@b>\n\n", "<a@b>");
	CHECK("X-Message-ID: <no@x>\nMessage-ID: <yes@x>\n\n", "<yes@x>");
}

static void
test_msgid_absent_or_outside_the_header(void **state)
{
	(void)state;
	CHECK("Subject: x\n\nMessage-ID: <in-body@x>\n", "");
	CHECK("", "");
	CHECK("Message-ID: <cut-off-without-newline@x>", "");
	CHECK(" Message-ID: <continuation@x>\n\n", "");
}

static void
test_msgid_cleaned_and_bounded(void **state)
{
	char big[LMTP_SPOOL_HEAD + 200];

	(void)state;
	CHECK("Message-ID: <a\x01\x7f" "b c@d>\n\n", "<abc@d>");
	check("Message-ID: <0123456789@x>\n\n", 27, 6, "<0123");
	/* a header past the kept head is not seen */
	memset(big, 'a', sizeof(big));
	memcpy(big, "X: ", 3);
	big[LMTP_SPOOL_HEAD - 5] = '\n';
	memcpy(big + LMTP_SPOOL_HEAD - 4, "Message-ID: <late@x>\n\n", 22);
	check(big, LMTP_SPOOL_HEAD + 18, PSEP_MSGID_MAX, "");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_msgid_found_in_its_forms),
		cmocka_unit_test(test_msgid_absent_or_outside_the_header),
		cmocka_unit_test(test_msgid_cleaned_and_bounded),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
