/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/repl-hook/proto/test_proto_parse.h - shared by test_proto_parse.c and
 * test_proto_values.c, the two files of the repl_proto_parse program: test
 * GUIDs, the parse helpers and the tests of test_proto_values.c.
 */
#ifndef STOWD_TESTS_REPL_TEST_PROTO_PARSE_H
#define STOWD_TESTS_REPL_TEST_PROTO_PARSE_H

#include "repl-hook/proto/proto.h"

#define G1 "0190f3a2b4c8d2a1e5f6a7b8c9d0e1f2"
#define G2 "0190f3a2b4c9000100000000deadbeef"
#define G3 "0190f3a2c0017a3b5e1f00c4a9d2b7e3"
#define GS "0190f3a2c1aa7a3b77e0c1d2e3f40516"

/* Parse line (with a literal of size lit if lit >= 0). */
enum repl_parse_result parse(const char *line, long long lit,
			     struct repl_command *c, const char **code,
			     const char **text);
/* Fails the test unless line parses OK into c. */
void expect_ok(const char *line, long long lit, struct repl_command *c);

/* the tests of test_proto_values.c */
void test_mailbox_names(void **state);
void test_users_and_server_ids(void **state);
void test_numbers_and_guids(void **state);
void test_flag_lists(void **state);
void test_delta_lists(void **state);
void test_fmt_command_roundtrip(void **state);
void test_fmt_command_examples_and_limits(void **state);
void test_random_lines_never_crash(void **state);

#endif
