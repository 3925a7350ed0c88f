/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/privsep/sup/test_events.c - events waiting for repl-hook
 * (privsep/sup/events.c): while it is not ready, at most SUP_MAX_EVENT_FDS
 * of them hold a copy of their body fd (the copies are part of the
 * supervisor's fd budget); events without a body still queue; once
 * repl-hook is ready the copies go with the events and are closed here.
 *
 * Runs in:  the unit suite, as any user.  No process is started: the child
 *           table is faked.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "privsep/sup/sup_int.h"

static struct sup_child fake_hook;
static bool hook_ready;
static unsigned sent, sent_with_fd;

struct sup_child *
sup_child_find(struct sup *sup, enum psep_role role, bool ready_only)
{
	(void)sup;
	assert_int_equal(role, PSEP_ROLE_REPL_HOOK);
	return hook_ready || !ready_only ? &fake_hook : NULL;
}

int
sup_child_send(struct sup_child *c, uint16_t type, uint64_t id, const void *body,
	       size_t len, int fd)
{
	(void)id;
	(void)body;
	(void)len;
	assert_ptr_equal(c, &fake_hook);
	assert_int_equal(type, PSEP_EVENT_REQ);
	sent++;
	sent_with_fd += fd >= 0;
	return 0;
}

void
sup_child_ref(struct sup_child *c)
{
	(void)c;
}

void
sup_child_unref(struct sup_child **c)
{
	*c = NULL;
}

static void
top_nothing(struct sup *sup)
{
	(void)sup;
}

static const struct sup_top_ops top = {
	.check_stopped = top_nothing,
};

static unsigned ended;

static void
event_cb(struct sup *sup, enum psep_event_status st, uint32_t acks, void *arg)
{
	(void)sup;
	(void)st;
	(void)acks;
	(void)arg;
	ended++;
}

/* Descriptors open in this process. */
static unsigned
open_fds(void)
{
	unsigned n = 0;

	for (int fd = 0; fd < 4096; fd++)
		n += fcntl(fd, F_GETFD) != -1;
	return n;
}

static void
test_queued_events_hold_at_most_the_fd_cap(void **state)
{
	struct sup sup;
	struct psep_repl_cmd save, store;
	int body = memfd_create("body", MFD_CLOEXEC);
	unsigned base_fds, i;

	(void)state;
	assert_true(body >= 0);
	memset(&sup, 0, sizeof(sup));
	sup.base = event_base_new();
	assert_non_null(sup.base);
	sup.top = &top;
	sup.set.n_replicas = 1;
	TAILQ_INIT(&sup.events);
	memset(&save, 0, sizeof(save));
	save.op = PSEP_REPL_SAVE;
	strcpy(save.user, "alice");
	store = save;
	store.op = PSEP_REPL_STORE;
	hook_ready = false;
	base_fds = open_fds();
	for (i = 0; i < SUP_MAX_EVENT_FDS; i++)
		assert_int_equal(sup_event_send(&sup, &save, NULL, 0, body, 0, 1000,
						event_cb, NULL), 0);
	assert_int_equal(open_fds(), base_fds + SUP_MAX_EVENT_FDS);
	/* one more with a body fails; one without a body still queues */
	assert_int_equal(sup_event_send(&sup, &save, NULL, 0, body, 0, 1000, event_cb,
					NULL), -1);
	assert_int_equal(sup_event_send(&sup, &store, NULL, 0, -1, 0, 1000, event_cb,
					NULL), 0);
	assert_int_equal(open_fds(), base_fds + SUP_MAX_EVENT_FDS);
	assert_int_equal(sent, 0);
	/* repl-hook ready: every event goes, each body with it, the copies
	 * are closed, and new events with a body are taken again */
	hook_ready = true;
	sup_events_hook_ready(&sup);
	assert_int_equal(sent, SUP_MAX_EVENT_FDS + 1);
	assert_int_equal(sent_with_fd, SUP_MAX_EVENT_FDS);
	assert_int_equal(open_fds(), base_fds);
	assert_int_equal(sup_event_send(&sup, &save, NULL, 0, body, 0, 1000, event_cb,
					NULL), 0);
	assert_int_equal(open_fds(), base_fds);   /* sent at once */
	/* repl-hook gone: every event ends, once */
	sup_events_hook_gone(&sup, &fake_hook);
	assert_int_equal(ended, SUP_MAX_EVENT_FDS + 2);
	assert_true(sup_events_idle(&sup));
	close(body);
	event_base_free(sup.base);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_queued_events_hold_at_most_the_fd_cap),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
