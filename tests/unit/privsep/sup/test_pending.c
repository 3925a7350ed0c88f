/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/privsep/sup/test_pending.c - the queues of clients waiting
 * for a front-end (privsep/sup/pending.c): FIFO, bounded by
 * SUP_MAX_PENDING and by an eighth of RLIMIT_NOFILE, the excess closed.
 *
 * Runs in:  the unit suite, as any user.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "privsep/sup/sup_int.h"

/* pending.c's sup_client_send needs it; not used here. */
int
sup_child_send(struct sup_child *c, uint16_t type, uint64_t id, const void *body,
	       size_t len, int fd)
{
	(void)c;
	(void)type;
	(void)id;
	(void)body;
	(void)len;
	(void)fd;
	return 0;
}

static void
test_queue_is_fifo_and_bounded_by_the_fd_limit(void **state)
{
	struct sup_pending_list q = TAILQ_HEAD_INITIALIZER(q);
	char listener[SUP_LISTENER_MAX];
	struct rlimit old, rl;
	unsigned n = 0, i;
	int fds[20], fd;

	(void)state;
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
	rl = old;
	rl.rlim_cur = 128;            /* at most 16 wait */
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
	for (i = 0; i < 20; i++) {
		fds[i] = open("/dev/null", O_RDONLY | O_CLOEXEC);
		assert_true(fds[i] >= 0);
		sup_pending_push(&q, &n, fds[i], "unix:/x", "LMTP");
	}
	assert_int_equal(n, 16);
	/* the four over the limit were closed */
	for (i = 16; i < 20; i++)
		assert_int_equal(fcntl(fds[i], F_GETFD), -1);
	for (i = 0; i < 16; i++) {
		fd = sup_pending_take(&q, &n, listener);
		assert_int_equal(fd, fds[i]);
		assert_string_equal(listener, "unix:/x");
		close(fd);
	}
	assert_int_equal(sup_pending_take(&q, &n, listener), -1);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_queue_is_fifo_and_bounded_by_the_fd_limit),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
