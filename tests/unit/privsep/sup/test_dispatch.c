/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/privsep/sup/test_dispatch.c - the supervisor's write
 * dispatch (privsep/sup/dispatch.c): the FIFO job queue, the reply type
 * of each job type, jobs failed when their writer dies (as refused when
 * it was killed for what it sent), idle detection,
 * and the fork-mode child cache (one uid per child for life,
 * fork_max_children, least recently used idle child evicted first, idle
 * timeout).
 *
 * Runs in:  the test process; writers are fake children (--wrap of
 *           sup_child_spawn/send/kill/retire), driven by calling their
 *           ops (ready, message, exited) as children.c would.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include <cmocka.h>

#include "privsep/sup/sup_int.h"

#define MAX_REC 64

struct sent {
	struct sup_child *c;
	uint16_t type;
	uint64_t id;
};

struct done {
	uint64_t id;
	uint16_t rep_type;            /* 0: failed */
	char failure[96];
	bool refused;                 /* job->refused when done */
};

static struct {
	struct sup sup;
	struct sup_child *spawned[MAX_REC];
	uid_t spawn_uid[MAX_REC];
	unsigned n_spawned;
	struct sent sent[MAX_REC];
	unsigned n_sent;
	struct done done[MAX_REC];
	unsigned n_done;
	struct sup_child *killed[MAX_REC];
	unsigned n_killed;
	struct sup_child *retired[MAX_REC];
	unsigned n_retired;
	unsigned n_gone, n_ready_checks, n_stop_checks;
} t;

/* ---- fakes -------------------------------------------------------------- */

/* The counters of stats.c are not under test here. */
void
sup_stats_exit(struct sup *sup, enum psep_role role, int wstatus)
{
	(void)sup;
	(void)role;
	(void)wstatus;
}

void
sup_stats_save(struct sup *sup, uint64_t us)
{
	(void)sup;
	(void)us;
}

struct sup_child *__wrap_sup_child_spawn(struct sup *sup, const struct psep_spawn *sp,
					 const struct sup_child_ops *ops, void *owner);
int __wrap_sup_child_send(struct sup_child *c, uint16_t type, uint64_t id,
			  const void *body, size_t len, int fd);
void __wrap_sup_child_kill(struct sup_child *c, const char *why);
void __wrap_sup_child_retire(struct sup_child *c);

struct sup_child *
__wrap_sup_child_spawn(struct sup *sup, const struct psep_spawn *sp,
		       const struct sup_child_ops *ops, void *owner)
{
	struct sup_child *c = calloc(1, sizeof(*c));

	assert_non_null(c);
	assert_true(t.n_spawned < MAX_REC);
	c->sup = sup;
	c->role = sp->role;
	c->state = PSEP_STATE_NEW;
	c->generation = sup->generation;
	c->ops = ops;
	c->owner = owner;
	c->ipc = -1;
	c->pid = (pid_t)(1000 + t.n_spawned);
	clock_gettime(CLOCK_MONOTONIC, &c->started);
	TAILQ_INSERT_TAIL(&sup->children, c, link);
	t.spawn_uid[t.n_spawned] = sp->creds.uid;
	t.spawned[t.n_spawned++] = c;
	return c;
}

/* The writer template (template.c, tested in test_template.c): ready at
 * once, and its children are fake children like the spawned ones. */
void
sup_template_start(struct sup *sup, const struct sup_template_hooks *h)
{
	(void)sup;
	(void)h;
}

int
sup_template_ready(struct sup *sup, const struct sup_template_hooks *h)
{
	(void)sup;
	(void)h;
	return 1;
}

struct sup_child *
sup_template_fork(struct sup *sup, const struct psep_spawn *sp,
		  const struct sup_child_ops *ops, void *owner)
{
	return __wrap_sup_child_spawn(sup, sp, ops, owner);
}

void
sup_template_retire(struct sup *sup)
{
	(void)sup;
}


int
__wrap_sup_child_send(struct sup_child *c, uint16_t type, uint64_t id,
		      const void *body, size_t len, int fd)
{
	(void)body;
	(void)len;
	(void)fd;
	assert_true(t.n_sent < MAX_REC);
	t.sent[t.n_sent++] = (struct sent){ c, type, id };
	return 0;
}

void
__wrap_sup_child_kill(struct sup_child *c, const char *why)
{
	(void)why;
	assert_true(t.n_killed < MAX_REC);
	t.killed[t.n_killed++] = c;
}

void
__wrap_sup_child_retire(struct sup_child *c)
{
	if (c->retired && c->state == PSEP_STATE_STOPPING)
		return;
	c->retired = true;
	c->state = PSEP_STATE_STOPPING;
	assert_true(t.n_retired < MAX_REC);
	t.retired[t.n_retired++] = c;
}

static void
top_ready(struct sup *sup)
{
	(void)sup;
	t.n_ready_checks++;
}

static void
top_stopped(struct sup *sup)
{
	(void)sup;
	t.n_stop_checks++;
}

static void
top_gone(struct sup_child *c)
{
	(void)c;
	t.n_gone++;
}

static const struct sup_top_ops top = {
	.check_ready = top_ready,
	.check_stopped = top_stopped,
	.child_gone = top_gone,
};

/* ---- helpers ------------------------------------------------------------ */

static int
setup(void **state)
{
	(void)state;
	memset(&t, 0, sizeof(t));
	t.sup.base = event_base_new();
	assert_non_null(t.sup.base);
	t.sup.top = &top;
	TAILQ_INIT(&t.sup.children);
	TAILQ_INIT(&t.sup.queue);
	t.sup.set.writer_timeout = 60000;
	t.sup.set.fork_idle_timeout = 60000;
	t.sup.set.seteuid_workers = 1;
	t.sup.set.fork_max_children = 4;
	return 0;
}

/* The child is reaped, in the order of sup_children_reap: out of the
 * table, dead, then its pool hears of it. */
static void
child_exit(struct sup_child *c, int wstatus)
{
	TAILQ_REMOVE(&t.sup.children, c, link);
	c->dead = true;
	c->ops->exited(c, wstatus);
	free(c);
}

static int
teardown(void **state)
{
	struct sup_child *c;

	struct sup_uid_load *l;
	struct sup_job *job;

	(void)state;
	while ((c = TAILQ_FIRST(&t.sup.children)) != NULL)
		child_exit(c, 0);
	/* jobs a test left waiting, and their per-uid counts */
	while ((job = TAILQ_FIRST(&t.sup.queue)) != NULL) {
		TAILQ_REMOVE(&t.sup.queue, job, link);
		sup_job_free(&job);
	}
	while ((l = LIST_FIRST(&t.sup.loads)) != NULL) {
		LIST_REMOVE(l, link);
		free(l);
	}
	event_base_free(t.sup.base);
	return 0;
}

static void
job_done(struct sup_job *job, struct psep_msg *rep, const char *failure)
{
	struct done *d = &t.done[t.n_done++];

	d->id = job->id;
	d->rep_type = rep != NULL ? rep->hdr.type : 0;
	d->refused = job->refused;
	if (failure != NULL)
		snprintf(d->failure, sizeof(d->failure), "%s", failure);
}

static void
submit(uint64_t id, uid_t uid, uint16_t type)
{
	struct sup_job *job = calloc(1, sizeof(*job));

	assert_non_null(job);
	job->id = id;
	job->uid = uid;
	job->type = type;
	job->req_len = type == PSEP_WRITE_REQ ? sizeof(struct psep_write_req)
					      : sizeof(struct psep_repl_op_req);
	job->req = calloc(1, job->req_len);
	assert_non_null(job->req);
	job->creds.uid = uid;
	job->memfd = -1;
	job->done = job_done;
	sup_dispatch_submit(&t.sup, job);
}

static void
child_ready(struct sup_child *c)
{
	c->state = PSEP_STATE_READY;
	c->ops->ready(c);
}

/* c answers request id with a message of type. */
static void
reply(struct sup_child *c, uint16_t type, uint64_t id)
{
	struct psep_msg *m = calloc(1, sizeof(*m));

	assert_non_null(m);
	m->hdr.type = type;
	m->hdr.id = id;
	m->fd = -1;
	c->ops->message(c, m);
	free(m);
}

static void
assert_sent(unsigned i, struct sup_child *c, uint16_t type, uint64_t id)
{
	assert_true(i < t.n_sent);
	assert_ptr_equal(t.sent[i].c, c);
	assert_int_equal(t.sent[i].type, type);
	assert_int_equal(t.sent[i].id, id);
}

static bool
was_retired(const struct sup_child *c)
{
	unsigned i;

	for (i = 0; i < t.n_retired; i++)
		if (t.retired[i] == c)
			return true;
	return false;
}

static void
seteuid_pool(unsigned n)
{
	unsigned i;

	t.sup.set.delivery_mode = POLICY_MODE_SETEUID;
	t.sup.set.seteuid_workers = n;
	sup_writers_start(&t.sup);
	assert_int_equal(t.n_spawned, n);
	for (i = 0; i < n; i++)
		child_ready(t.spawned[i]);
}

/* ---- the queue ---------------------------------------------------------- */

static void
test_jobs_are_served_in_fifo_order(void **state)
{
	struct sup_child *w;

	(void)state;
	t.sup.set.delivery_mode = POLICY_MODE_SETEUID;
	sup_writers_start(&t.sup);
	assert_int_equal(t.n_spawned, 1);
	w = t.spawned[0];
	submit(11, 1001, PSEP_WRITE_REQ);
	submit(12, 1002, PSEP_WRITE_REQ);
	submit(13, 1001, PSEP_REPL_OP_REQ);
	/* nothing goes to a writer before its HELLO */
	assert_int_equal(t.n_sent, 0);
	child_ready(w);
	assert_int_equal(t.n_sent, 1);
	assert_sent(0, w, PSEP_WRITE_REQ, 11);
	reply(w, PSEP_WRITE_REP, 11);
	assert_sent(1, w, PSEP_WRITE_REQ, 12);
	reply(w, PSEP_WRITE_REP, 12);
	assert_sent(2, w, PSEP_REPL_OP_REQ, 13);
	reply(w, PSEP_REPL_OP_REP, 13);
	assert_int_equal(t.n_done, 3);
	assert_int_equal(t.done[0].id, 11);
	assert_int_equal(t.done[1].id, 12);
	assert_int_equal(t.done[2].id, 13);
	assert_int_equal(t.n_sent, 3);
}

/* One uid gets at most delivery_max_workers_per_user writers: a later
 * job of another uid goes to a free writer at once, however many jobs of
 * the first wait before it. */
static void
test_one_uid_cannot_take_every_writer(void **state)
{
	unsigned i;

	(void)state;
	t.sup.set.delivery_max_workers_per_user = 2;
	seteuid_pool(4);
	for (i = 0; i < 10; i++)
		submit(100 + i, 1001, PSEP_WRITE_REQ);
	submit(200, 1002, PSEP_WRITE_REQ);
	assert_int_equal(t.n_sent, 3);
	assert_int_equal(t.sent[0].id, 100);
	assert_int_equal(t.sent[1].id, 101);
	assert_int_equal(t.sent[2].id, 200);
	/* 1002 done: its writer stays idle, 1001 still has its two */
	reply(t.sent[2].c, PSEP_WRITE_REP, 200);
	assert_int_equal(t.n_sent, 3);
	/* one of 1001 done: the next of 1001 starts */
	reply(t.sent[0].c, PSEP_WRITE_REP, 100);
	assert_int_equal(t.n_sent, 4);
	assert_int_equal(t.sent[3].id, 102);
}

/* delivery_max_queued and delivery_max_queued_per_user bound the queue. */
static void
test_queue_limits(void **state)
{
	const char *why = NULL;
	unsigned i;

	(void)state;
	t.sup.set.delivery_mode = POLICY_MODE_SETEUID;
	t.sup.set.delivery_max_queued = 5;
	t.sup.set.delivery_max_queued_per_user = 3;
	sup_writers_start(&t.sup);     /* never ready: everything waits */
	for (i = 0; i < 3; i++) {
		assert_int_equal(sup_dispatch_room(&t.sup, 1001, &why), 0);
		submit(10 + i, 1001, PSEP_WRITE_REQ);
	}
	assert_int_equal(sup_dispatch_room(&t.sup, 1001, &why), -1);
	assert_string_equal(why, "delivery_max_queued_per_user");
	assert_int_equal(sup_dispatch_room(&t.sup, 1002, &why), 0);
	submit(20, 1002, PSEP_WRITE_REQ);
	submit(21, 1002, PSEP_WRITE_REQ);
	assert_int_equal(sup_dispatch_room(&t.sup, 1003, &why), -1);
	assert_string_equal(why, "delivery_max_queued");
}

/* Each job type is completed only by its own reply type; any other
 * answer is a protocol violation that kills the writer. */
static void
test_each_job_type_takes_only_its_reply(void **state)
{
	static const struct {
		uint16_t req, good, bad;
	} cases[] = {
		{ PSEP_WRITE_REQ, PSEP_WRITE_REP, PSEP_REPL_OP_REP },
		{ PSEP_REPL_OP_REQ, PSEP_REPL_OP_REP, PSEP_WRITE_REP },
	};
	size_t i;

	(void)state;
	seteuid_pool(1);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct sup_child *w = t.spawned[0];
		uint64_t id = 100 + i;

		submit(id, 1001, cases[i].req);
		assert_sent(t.n_sent - 1, w, cases[i].req, id);
		reply(w, cases[i].bad, id);
		assert_int_equal(t.n_killed, 2 * i + 1);
		assert_ptr_equal(t.killed[2 * i], w);
		assert_int_equal(t.n_done, i);
		/* a reply for another id is no answer either */
		reply(w, cases[i].good, id + 50);
		assert_int_equal(t.n_killed, 2 * i + 2);
		assert_int_equal(t.n_done, i);
		reply(w, cases[i].good, id);
		assert_int_equal(t.n_done, i + 1);
		assert_int_equal(t.done[i].id, id);
		assert_int_equal(t.done[i].rep_type, cases[i].good);
	}
	/* a stamp for a replication job is a violation too */
	submit(200, 1001, PSEP_REPL_OP_REQ);
	reply(t.spawned[0], PSEP_WRITE_STAMP, 200);
	assert_int_equal(t.n_killed, 5);
	assert_ptr_equal(t.killed[4], t.spawned[0]);
}

static void
test_writer_death_fails_only_its_job(void **state)
{
	struct sup_child *a, *b;

	(void)state;
	seteuid_pool(2);
	a = t.spawned[0];
	b = t.spawned[1];
	submit(1, 1001, PSEP_WRITE_REQ);
	submit(2, 1002, PSEP_WRITE_REQ);
	assert_sent(0, a, PSEP_WRITE_REQ, 1);
	assert_sent(1, b, PSEP_WRITE_REQ, 2);
	child_exit(a, SIGKILL);       /* wstatus of a SIGKILL death */
	assert_int_equal(t.n_done, 1);
	assert_int_equal(t.done[0].id, 1);
	assert_int_equal(t.done[0].rep_type, 0);
	assert_string_equal(t.done[0].failure, "writer pid 1000 killed by signal 9");
	assert_false(t.done[0].refused);
	assert_int_equal(t.n_gone, 1);
	assert_false(sup_dispatch_idle(&t.sup));
	reply(b, PSEP_WRITE_REP, 2);
	assert_int_equal(t.n_done, 2);
	assert_int_equal(t.done[1].id, 2);
	assert_int_equal(t.done[1].rep_type, PSEP_WRITE_REP);
	/* an exit (not a signal) says so */
	submit(3, 1003, PSEP_WRITE_REQ);
	assert_sent(2, b, PSEP_WRITE_REQ, 3);
	child_exit(b, 3 << 8);
	assert_string_equal(t.done[2].failure, "writer pid 1001 exited");
	assert_false(t.done[2].refused);
	assert_true(sup_dispatch_idle(&t.sup));
}

/*
 * A writer killed for what it sent while it held a job fails that job as
 * refused (a retry would only repeat it; repl.c answers NO [NOPERM]): a
 * reply of the wrong type, a reply or a stamp for another request, a
 * message no writer sends.  A message the spec table refuses sets the
 * same flag in children.c.
 */
static void
test_writer_killed_for_what_it_sent_fails_its_job_as_refused(void **state)
{
	static const struct {
		uint16_t type;
		uint64_t id;                  /* 0: the job's */
	} bad[] = {
		{ PSEP_WRITE_REP, 0 },
		{ PSEP_REPL_OP_REP, 77 },
		{ PSEP_WRITE_STAMP, 0 },
		{ PSEP_EVENT_REQ, 0 },
	};
	char why[96];
	size_t i;

	(void)state;
	t.sup.set.delivery_mode = POLICY_MODE_SETEUID;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct sup_child *w;
		uint64_t id = 300 + i;

		sup_writers_start(&t.sup);
		assert_int_equal(t.n_spawned, i + 1);
		w = t.spawned[i];
		child_ready(w);
		submit(id, 1001, PSEP_REPL_OP_REQ);
		assert_sent(t.n_sent - 1, w, PSEP_REPL_OP_REQ, id);
		reply(w, bad[i].type, bad[i].id != 0 ? bad[i].id : id);
		assert_int_equal(t.n_killed, i + 1);
		assert_ptr_equal(t.killed[i], w);
		assert_true(w->refused);
		assert_int_equal(t.n_done, i);
		child_exit(w, SIGKILL);
		assert_int_equal(t.n_done, i + 1);
		assert_int_equal(t.done[i].id, id);
		assert_int_equal(t.done[i].rep_type, 0);
		assert_true(t.done[i].refused);
		snprintf(why, sizeof(why), "writer pid %u killed: what it sent was refused",
			 1000u + (unsigned)i);
		assert_string_equal(t.done[i].failure, why);
	}
}

static void
test_idle_only_when_every_job_is_done(void **state)
{
	struct sup_child *w;

	(void)state;
	assert_true(sup_dispatch_idle(&t.sup));
	t.sup.set.delivery_mode = POLICY_MODE_SETEUID;
	sup_writers_start(&t.sup);
	w = t.spawned[0];
	submit(1, 1001, PSEP_WRITE_REQ);
	assert_false(sup_dispatch_idle(&t.sup));      /* queued */
	child_ready(w);
	assert_false(sup_dispatch_idle(&t.sup));      /* at the writer */
	t.n_stop_checks = 0;
	reply(w, PSEP_WRITE_REP, 1);
	assert_true(sup_dispatch_idle(&t.sup));
	/* the end of a job is reported to the top (a stop may complete) */
	assert_true(t.n_stop_checks >= 1);
	assert_int_equal(sup_writers_expected(&t.sup), 1);
	t.sup.set.delivery_mode = POLICY_MODE_FORK;
	assert_int_equal(sup_writers_expected(&t.sup), 0);
}

/* ---- the fork-mode cache ------------------------------------------------ */

static void
fork_mode(unsigned max_children)
{
	t.sup.set.delivery_mode = POLICY_MODE_FORK;
	t.sup.set.fork_max_children = max_children;
	sup_writers_start(&t.sup);
	assert_int_equal(t.n_spawned, 0);
}

static void
test_fork_child_serves_one_uid_only(void **state)
{
	struct sup_child *c1, *c2;

	(void)state;
	fork_mode(4);
	submit(1, 1001, PSEP_WRITE_REQ);
	submit(2, 1002, PSEP_WRITE_REQ);
	submit(3, 1001, PSEP_WRITE_REQ);
	/* one child per uid, forked with that uid's credentials */
	assert_int_equal(t.n_spawned, 2);
	assert_int_equal(t.spawn_uid[0], 1001);
	assert_int_equal(t.spawn_uid[1], 1002);
	c1 = t.spawned[0];
	c2 = t.spawned[1];
	assert_int_equal(c1->role, PSEP_ROLE_WRITER_CHILD);
	child_ready(c2);
	child_ready(c1);
	assert_int_equal(t.n_sent, 2);
	assert_sent(0, c2, PSEP_WRITE_REQ, 2);
	assert_sent(1, c1, PSEP_WRITE_REQ, 1);
	/* c2 is idle now, but job 3 is for uid 1001: it waits for c1 */
	reply(c2, PSEP_WRITE_REP, 2);
	assert_int_equal(t.n_sent, 2);
	reply(c1, PSEP_WRITE_REP, 1);
	assert_int_equal(t.n_sent, 3);
	assert_sent(2, c1, PSEP_WRITE_REQ, 3);
	assert_int_equal(t.n_spawned, 2);
	assert_int_equal(t.n_retired, 0);
}

/* Finish one job of uid on a fresh child: spawn, ready, reply. */
static struct sup_child *
fork_use(uint64_t id, uid_t uid)
{
	struct sup_child *c;

	submit(id, uid, PSEP_WRITE_REQ);
	c = t.spawned[t.n_spawned - 1];
	assert_int_equal(t.spawn_uid[t.n_spawned - 1], uid);
	child_ready(c);
	reply(c, PSEP_WRITE_REP, id);
	return c;
}

static void
test_fork_limit_evicts_least_recently_used(void **state)
{
	struct sup_child *a, *b, *c;
	struct timespec pause = { 0, 2000000 };

	(void)state;
	fork_mode(3);
	a = fork_use(1, 1001);
	nanosleep(&pause, NULL);
	b = fork_use(2, 1002);
	nanosleep(&pause, NULL);
	c = fork_use(3, 1003);
	nanosleep(&pause, NULL);
	/* a is used again: b is now the least recently used */
	submit(4, 1001, PSEP_WRITE_REQ);
	reply(a, PSEP_WRITE_REP, 4);
	assert_int_equal(t.n_spawned, 3);
	/* a fourth uid: no fork beyond the limit, b is evicted */
	submit(5, 1004, PSEP_WRITE_REQ);
	assert_int_equal(t.n_spawned, 3);
	assert_int_equal(t.n_retired, 1);
	assert_ptr_equal(t.retired[0], b);
	assert_false(was_retired(a));
	assert_false(was_retired(c));
	/* only once b is gone is the new child forked, for uid 1004 */
	child_exit(b, 0);
	assert_int_equal(t.n_spawned, 4);
	assert_int_equal(t.spawn_uid[3], 1004);
	child_ready(t.spawned[3]);
	assert_sent(t.n_sent - 1, t.spawned[3], PSEP_WRITE_REQ, 5);
}

static void
test_fork_limit_with_all_busy_makes_jobs_wait(void **state)
{
	struct sup_child *a;

	(void)state;
	fork_mode(1);
	submit(1, 1001, PSEP_WRITE_REQ);
	a = t.spawned[0];
	child_ready(a);
	submit(2, 1002, PSEP_WRITE_REQ);
	/* a is busy: nothing to evict, nothing forked */
	assert_int_equal(t.n_spawned, 1);
	assert_int_equal(t.n_retired, 0);
	reply(a, PSEP_WRITE_REP, 1);
	/* idle now: evicted for the waiting uid */
	assert_int_equal(t.n_retired, 1);
	assert_ptr_equal(t.retired[0], a);
	assert_int_equal(t.n_spawned, 1);
	child_exit(a, 0);
	assert_int_equal(t.n_spawned, 2);
	assert_int_equal(t.spawn_uid[1], 1002);
	assert_int_equal(t.n_done, 1);
	assert_false(sup_dispatch_idle(&t.sup));
}

static void
test_fork_idle_timeout_stops_child(void **state)
{
	struct sup_child *a;
	struct timeval limit = { 2, 0 };

	(void)state;
	t.sup.set.fork_idle_timeout = 20;
	fork_mode(4);
	a = fork_use(1, 1001);
	assert_false(was_retired(a));
	assert_int_equal(event_base_loopexit(t.sup.base, &limit), 0);
	while (!was_retired(a) && !event_base_got_exit(t.sup.base))
		assert_true(event_base_loop(t.sup.base, EVLOOP_ONCE) >= 0);
	assert_true(was_retired(a));
	assert_int_equal(t.n_retired, 1);
}

static void
test_fork_busy_child_not_stopped_by_idle_timer(void **state)
{
	struct sup_child *a;
	struct timeval wait = { 0, 100000 };

	(void)state;
	t.sup.set.fork_idle_timeout = 20;
	fork_mode(4);
	a = fork_use(1, 1001);
	submit(2, 1001, PSEP_WRITE_REQ);   /* busy again: the timer stops */
	assert_sent(t.n_sent - 1, a, PSEP_WRITE_REQ, 2);
	assert_int_equal(event_base_loopexit(t.sup.base, &wait), 0);
	assert_true(event_base_dispatch(t.sup.base) >= 0);
	assert_false(was_retired(a));
}

static void
test_fork_child_dying_in_startup_fails_its_uid(void **state)
{
	(void)state;
	fork_mode(4);
	submit(1, 1001, PSEP_WRITE_REQ);
	submit(2, 1002, PSEP_WRITE_REQ);
	submit(3, 1001, PSEP_WRITE_REQ);
	assert_int_equal(t.n_spawned, 2);
	child_exit(t.spawned[0], 1 << 8);  /* before its HELLO */
	assert_int_equal(t.n_done, 2);
	assert_int_equal(t.done[0].id, 1);
	assert_string_equal(t.done[0].failure, "writer child died during start-up");
	assert_int_equal(t.done[1].id, 3);
	/* uid 1002 is untouched, no fork loop for uid 1001 */
	assert_int_equal(t.n_spawned, 2);
	child_ready(t.spawned[1]);
	assert_sent(0, t.spawned[1], PSEP_WRITE_REQ, 2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_jobs_are_served_in_fifo_order,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_one_uid_cannot_take_every_writer,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_queue_limits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_each_job_type_takes_only_its_reply,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_writer_death_fails_only_its_job,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_writer_killed_for_what_it_sent_fails_its_job_as_refused,
			setup, teardown),
		cmocka_unit_test_setup_teardown(test_idle_only_when_every_job_is_done,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_fork_child_serves_one_uid_only,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_fork_limit_evicts_least_recently_used,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_fork_limit_with_all_busy_makes_jobs_wait,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_fork_idle_timeout_stops_child,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_fork_busy_child_not_stopped_by_idle_timer,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_fork_child_dying_in_startup_fails_its_uid,
						setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
