/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/storage/test_name.c - unique Maildir names (format, parse, host
 * escaping, length limits) and the Maildir++ mailbox directory mapping.
 */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "storage/storage_int.h"

#define GUID "0123456789abcdef0123456789abcdef"

static struct store_name_parts
parts(const char *host)
{
	struct store_name_parts p = {
		.sec = 1700000000, .usec = 42, .pid = 1234, .seq = 7,
		.guid = GUID, .host = host, .size = 1000, .vsize = 1020,
	};
	return p;
}

static void
test_name_format_gives_documented_layout(void **state)
{
	struct store_name_parts p = parts("mx1.example.org");
	char out[STORE_MAX_NAME];

	(void)state;
	assert_int_equal(store_name_format(&p, out, sizeof(out)), 0);
	assert_string_equal(out, "1700000000.M000042P1234Q7G" GUID
			    ".mx1.example.org,S=1000,W=1020");
	assert_int_equal(store_name_format_base(&p, out, sizeof(out)), 0);
	assert_string_equal(out, "1700000000.M000042P1234Q7G" GUID
			    ".mx1.example.org");
}

static void
test_name_format_escapes_slash_colon_comma_in_host(void **state)
{
	static const struct {
		const char *host;
		const char *want;
	} cases[] = {
		{ "a/b", "a\\057b" },
		{ "a:b", "a\\072b" },
		{ "a,S=1", "a\\054S=1" },
		{ "/:/", "\\057\\072\\057" },
		{ "plain", "plain" },
	};
	char out[STORE_MAX_NAME], want[STORE_MAX_NAME];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct store_name_parts p = parts(cases[i].host);

		assert_int_equal(store_name_format(&p, out, sizeof(out)), 0);
		snprintf(want, sizeof(want),
			 "1700000000.M000042P1234Q7G" GUID ".%s,S=1000,W=1020",
			 cases[i].want);
		assert_string_equal(out, want);
		assert_null(strchr(out, ':'));
		assert_null(strchr(out, '/'));
	}
}

static void
test_name_format_rejects_bad_parts(void **state)
{
	static const char *bad_hosts[] = { NULL, "", "a\nb", "a\x7f" };
	char out[STORE_MAX_NAME];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad_hosts) / sizeof(bad_hosts[0]); i++) {
		struct store_name_parts p = parts(bad_hosts[i]);

		errno = 0;
		assert_int_equal(store_name_format(&p, out, sizeof(out)), -1);
		assert_int_equal(errno, EINVAL);
	}
	{
		struct store_name_parts p = parts("h");

		p.guid = "xyz";
		assert_int_equal(store_name_format(&p, out, sizeof(out)), -1);
		assert_int_equal(errno, EINVAL);
		p.guid = GUID;
		p.usec = 1000000;
		assert_int_equal(store_name_format(&p, out, sizeof(out)), -1);
		assert_int_equal(errno, EINVAL);
	}
}

static void
test_name_format_too_long_gives_enametoolong(void **state)
{
	char host[300], out[STORE_MAX_NAME], small[40];
	struct store_name_parts p;
	size_t fixed;

	(void)state;
	/* 255 bytes is the limit of a file name, whatever out_size is. */
	memset(host, 'h', sizeof(host) - 1);
	host[sizeof(host) - 1] = '\0';
	p = parts(host);
	assert_int_equal(store_name_format(&p, out, sizeof(out)), -1);
	assert_int_equal(errno, ENAMETOOLONG);

	/* Exactly NAME_MAX fits; one more does not. */
	p = parts("h");
	assert_int_equal(store_name_format(&p, out, sizeof(out)), 0);
	fixed = strlen(out) - 1;
	host[NAME_MAX - fixed] = '\0';
	p = parts(host);
	assert_int_equal(store_name_format(&p, out, sizeof(out)), 0);
	assert_int_equal(strlen(out), NAME_MAX);
	host[NAME_MAX - fixed] = 'h';
	host[NAME_MAX - fixed + 1] = '\0';
	p = parts(host);
	assert_int_equal(store_name_format(&p, out, sizeof(out)), -1);
	assert_int_equal(errno, ENAMETOOLONG);

	/* A small buffer. */
	p = parts("h");
	assert_int_equal(store_name_format(&p, small, sizeof(small)), -1);
	assert_int_equal(errno, ENAMETOOLONG);
}

static void
test_name_parse_round_trips_format(void **state)
{
	struct store_name_parts p = parts("a:b/c,d");
	char out[STORE_MAX_NAME], guid[STORE_GUID_HEX + 1];
	uint64_t size = 0, vsize = 0;

	(void)state;
	p.size = UINT64_MAX;
	p.vsize = 0;
	assert_int_equal(store_name_format(&p, out, sizeof(out)), 0);
	assert_int_equal(store_name_parse(out, &size, &vsize, guid), 0);
	assert_true(size == UINT64_MAX);
	assert_true(vsize == 0);
	assert_string_equal(guid, GUID);
	assert_int_equal(store_name_parse(out, NULL, NULL, NULL), 0);
}

static void
test_name_parse_table(void **state)
{
	static const struct {
		const char *name;
		int ret;
		uint64_t size, vsize;
		const char *guid;
	} cases[] = {
		{ "1.M1P1Q1G" GUID ".h,S=10,W=12", 0, 10, 12, GUID },
		{ "1.M1P1Q1G" GUID ".h,S=10,W=12:2,RS", 0, 10, 12, GUID },
		{ "1.M1P1.h,W=12,S=10", 0, 10, 12, "" },
		{ "1.M1P1.h,S=10", 0, 10, 0, "" },
		{ "1.M1P1.h,S=10:2,S=99", 0, 10, 0, "" },
		{ "1.M1P1.h", -1, 0, 0, "" },
		{ "1.M1P1.h,S=", -1, 0, 0, "" },
		{ "1.M1P1.h,S=1x", -1, 0, 0, "" },
		{ "1.M1P1.h,S=99999999999999999999", -1, 0, 0, "" },
		{ "1.M1P1.h,S=18446744073709551616", -1, 0, 0, "" },
		{ "1.M1P1.h,S=18446744073709551615", 0, UINT64_MAX, 0, "" },
		{ "1.M1P1.h:2,,S=5", -1, 0, 0, "" },
		{ "1.M1P1QG" GUID "x.h,S=1", 0, 1, 0, "" },
	};
	char guid[STORE_GUID_HEX + 1];
	uint64_t size, vsize;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size = vsize = 777;
		strcpy(guid, "junk");
		errno = 0;
		assert_int_equal(store_name_parse(cases[i].name, &size, &vsize,
						  guid), cases[i].ret);
		if (cases[i].ret < 0) {
			assert_int_equal(errno, EINVAL);
			continue;
		}
		assert_true(size == cases[i].size);
		assert_true(vsize == cases[i].vsize);
		assert_string_equal(guid, cases[i].guid);
	}
}

static void
test_mailbox_dir_mapping_table(void **state)
{
	static const struct {
		const char *mailbox;
		const char *dir;   /* NULL: rejected with EINVAL */
	} cases[] = {
		{ "INBOX", "" },
		{ "inbox", "" },
		{ "Sent", ".Sent" },
		{ "a/b", ".a.b" },
		{ "a.b", ".a.b" },
		{ "a/b/c", ".a.b.c" },
		{ "Entw&APw-rfe", ".Entw&APw-rfe" },
		{ "INBOX/x", ".INBOX.x" },
		{ "", NULL },
		{ ".", NULL },
		{ "..", NULL },
		{ ".Sent", NULL },
		{ "a..b", NULL },
		{ "a//b", NULL },
		{ "a/.b", NULL },
		{ "a./b", NULL },
		{ "/a", NULL },
		{ "a/", NULL },
		{ "a.", NULL },
		{ "a\nb", NULL },
		{ "a\tb", NULL },
		{ "a\x7f", NULL },
		{ "../../etc", NULL },
	};
	char out[STORE_MAX_NAME];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		errno = 0;
		if (cases[i].dir == NULL) {
			assert_int_equal(store_mailbox_dir(cases[i].mailbox, out,
							   sizeof(out)), -1);
			assert_int_equal(errno, EINVAL);
		} else {
			assert_int_equal(store_mailbox_dir(cases[i].mailbox, out,
							   sizeof(out)), 0);
			assert_string_equal(out, cases[i].dir);
		}
	}
}

static void
test_mailbox_dir_too_long_or_null_is_rejected(void **state)
{
	char name[400], out[STORE_MAX_NAME], small[4];

	(void)state;
	memset(name, 'a', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	assert_int_equal(store_mailbox_dir(name, out, sizeof(out)), -1);
	assert_int_equal(errno, EINVAL);
	name[NAME_MAX - 1] = '\0';   /* ".aaa...": exactly NAME_MAX */
	assert_int_equal(store_mailbox_dir(name, out, sizeof(out)), 0);
	assert_int_equal(strlen(out), NAME_MAX);
	assert_int_equal(store_mailbox_dir("Sent", small, sizeof(small)), -1);
	assert_int_equal(store_mailbox_dir(NULL, out, sizeof(out)), -1);
	assert_int_equal(errno, EINVAL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_name_format_gives_documented_layout),
		cmocka_unit_test(test_name_format_escapes_slash_colon_comma_in_host),
		cmocka_unit_test(test_name_format_rejects_bad_parts),
		cmocka_unit_test(test_name_format_too_long_gives_enametoolong),
		cmocka_unit_test(test_name_parse_round_trips_format),
		cmocka_unit_test(test_name_parse_table),
		cmocka_unit_test(test_mailbox_dir_mapping_table),
		cmocka_unit_test(test_mailbox_dir_too_long_or_null_is_rejected),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
