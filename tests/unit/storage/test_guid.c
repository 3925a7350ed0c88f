/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/storage/test_guid.c - GUID layout (time, server hash, random)
 * and validation.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "storage/storage.h"

static uint64_t
hex_field(const char *guid, size_t off, size_t len)
{
	char buf[17];

	memcpy(buf, guid + off, len);
	buf[len] = '\0';
	return strtoull(buf, NULL, 16);
}

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void
test_guid_new_is_32_lower_hex_and_valid(void **state)
{
	char g[STORE_GUID_HEX + 1];
	size_t i;

	(void)state;
	assert_int_equal(store_guid_new("mx1", g), 0);
	assert_int_equal(strlen(g), STORE_GUID_HEX);
	for (i = 0; i < STORE_GUID_HEX; i++)
		assert_non_null(strchr("0123456789abcdef", g[i]));
	assert_true(store_guid_valid(g));
}

static void
test_guid_new_starts_with_milliseconds(void **state)
{
	char g[STORE_GUID_HEX + 1];
	uint64_t before, after, ms;

	(void)state;
	before = now_ms() & 0xffffffffffffull;
	assert_int_equal(store_guid_new("mx1", g), 0);
	after = now_ms() & 0xffffffffffffull;
	ms = hex_field(g, 0, 12);
	assert_true(ms >= before && ms <= after);
}

static void
test_guid_new_hashes_server_id_fnv1a(void **state)
{
	char a[STORE_GUID_HEX + 1], b[STORE_GUID_HEX + 1];

	(void)state;
	assert_int_equal(store_guid_new("a", a), 0);
	/* FNV-1a 32 of "a" is 0xe40c292c; of "" the offset basis. */
	assert_true(hex_field(a, 12, 8) == 0xe40c292cu);
	assert_int_equal(store_guid_new("", b), 0);
	assert_true(hex_field(b, 12, 8) == 0x811c9dc5u);
	assert_int_equal(store_guid_new(NULL, b), 0);
	assert_true(hex_field(b, 12, 8) == 0x811c9dc5u);
}

static void
test_guid_new_random_part_differs(void **state)
{
	char a[STORE_GUID_HEX + 1], b[STORE_GUID_HEX + 1];

	(void)state;
	assert_int_equal(store_guid_new("x", a), 0);
	assert_int_equal(store_guid_new("x", b), 0);
	assert_string_not_equal(a, b);
	assert_memory_not_equal(a + 20, b + 20, 12);
}

static void
test_guid_valid_table(void **state)
{
	static const struct {
		const char *s;
		bool valid;
	} cases[] = {
		{ "0123456789abcdef0123456789abcdef", true },
		{ "0123456789ABCDEF0123456789ABCDEF", true },
		{ "0123456789abcdef0123456789abcde", false },
		{ "0123456789abcdef0123456789abcdef0", false },
		{ "0123456789abcdef0123456789abcdeg", false },
		{ "0123456789abcdef 123456789abcdef", false },
		{ "", false },
		{ NULL, false },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_int_equal(store_guid_valid(cases[i].s), cases[i].valid);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_guid_new_is_32_lower_hex_and_valid),
		cmocka_unit_test(test_guid_new_starts_with_milliseconds),
		cmocka_unit_test(test_guid_new_hashes_server_id_fnv1a),
		cmocka_unit_test(test_guid_new_random_part_differs),
		cmocka_unit_test(test_guid_valid_table),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
