/* SPDX-License-Identifier: MIT */
/*
 * tests/integration/test_repl.h - the replication tests of
 * test_repl_pipeline.c, registered in test_repl.c's main.
 */
#ifndef STOWD_TESTS_INTEGRATION_TEST_REPL_H
#define STOWD_TESTS_INTEGRATION_TEST_REPL_H

void test_save_failing_after_its_event_is_undone_on_the_replica(void **state);
void test_replication_tcp_sockets_have_nodelay(void **state);

#endif
