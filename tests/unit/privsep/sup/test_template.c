/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/privsep/sup/test_template.c - fork mode's writer template
 * seen from the supervisor (privsep/sup/template.c): no request before
 * the template is ready, children named in request order, a reply for
 * another request kills the template, a pid that is not the supervisor's
 * child is never signalled, a child reaped before its reply exits when
 * the reply names it, a kill asked before the pid was known
 * reaches the child with the reply, a failed fork fails its child, and a
 * template that dies fails the children it had not named and tells the
 * dispatch whether it died starting.
 *
 * Runs in:  the test process; the template is a fake child (--wrap of
 *           sup_child_spawn/send/kill/retire) driven through its ops;
 *           children.c's table and reaping are the real ones, the
 *           processes killed and reaped are the test's own.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "privsep/sup/sup_int.h"

#define MAX_REC 16

static struct {
	struct sup sup;
	struct sup_child *tmpl;
	int tmpl_peer;                  /* the fake template's end */
	uint64_t req_id[MAX_REC];
	uid_t req_uid[MAX_REC];
	unsigned n_req;
	struct sup_child *killed[MAX_REC];
	unsigned n_killed;
	unsigned n_retired;
	unsigned n_ready, n_gone, n_gone_startup;
	struct sup_child *exited[MAX_REC];
	int exit_status[MAX_REC];
	unsigned n_exited;
} t;

/* ---- fakes -------------------------------------------------------------- */

void
sup_stats_exit(struct sup *sup, enum psep_role role, int wstatus)
{
	(void)sup;
	(void)role;
	(void)wstatus;
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
	int sv[2];

	assert_int_equal(sp->role, PSEP_ROLE_WRITER_TEMPLATE);
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK, 0, sv), 0);
	t.tmpl = sup_child_new(sup, sp->role, 0, sv[0], ops, owner);
	t.tmpl->pid = 999999;           /* never signalled: kill is a fake */
	t.tmpl_peer = sv[1];
	return t.tmpl;
}

int
__wrap_sup_child_send(struct sup_child *c, uint16_t type, uint64_t id,
		      const void *body, size_t len, int fd)
{
	const struct psep_fork_req *r = body;

	assert_ptr_equal(c, t.tmpl);
	assert_int_equal(type, PSEP_FORK_REQ);
	assert_int_equal(len, sizeof(*r));
	assert_true(fd >= 0);
	assert_true(t.n_req < MAX_REC);
	t.req_id[t.n_req] = id;
	t.req_uid[t.n_req++] = r->uid;
	return 0;
}

void
__wrap_sup_child_kill(struct sup_child *c, const char *why)
{
	(void)why;
	c->killed = true;
	t.killed[t.n_killed++] = c;
}

void
__wrap_sup_child_retire(struct sup_child *c)
{
	c->retired = true;
	t.n_retired++;
}

static void
hook_ready(struct sup *sup)
{
	(void)sup;
	t.n_ready++;
}

static void
hook_gone(struct sup *sup, bool in_startup)
{
	(void)sup;
	t.n_gone++;
	t.n_gone_startup += in_startup;
}

static const struct sup_template_hooks hooks = { hook_ready, hook_gone };

static void
top_gone(struct sup_child *c)
{
	(void)c;
}

static const struct sup_top_ops top = { .child_gone = top_gone };

/* The writer children's ops: only their end is looked at. */
static void
wc_exited(struct sup_child *c, int wstatus)
{
	t.exit_status[t.n_exited] = wstatus;
	t.exited[t.n_exited++] = c;
}

static void
wc_message(struct sup_child *c, struct psep_msg *m)
{
	(void)c;
	(void)m;
}

static const struct sup_child_ops wc_ops = { .message = wc_message,
					     .exited = wc_exited };

/* ---- helpers ------------------------------------------------------------ */

static int
setup(void **state)
{
	(void)state;
	memset(&t, 0, sizeof(t));
	t.tmpl_peer = -1;
	t.sup.base = event_base_new();
	assert_non_null(t.sup.base);
	t.sup.top = &top;
	TAILQ_INIT(&t.sup.children);
	t.sup.set.delivery_mode = POLICY_MODE_FORK;
	return 0;
}

static int
teardown(void **state)
{
	struct sup_child *c;

	(void)state;
	/* what is left: out of the table without running its ops */
	while ((c = TAILQ_FIRST(&t.sup.children)) != NULL) {
		TAILQ_REMOVE(&t.sup.children, c, link);
		event_free(c->ev);
		close(c->ipc);
		if (c->role == PSEP_ROLE_WRITER_TEMPLATE)
			free(c->owner);
		free(c);
	}
	if (t.tmpl_peer >= 0)
		close(t.tmpl_peer);
	event_base_free(t.sup.base);
	return 0;
}

/* A ready template. */
static void
template_up(void)
{
	assert_int_equal(sup_template_ready(&t.sup, &hooks), 0);   /* starting */
	assert_non_null(t.tmpl);
	t.tmpl->state = PSEP_STATE_READY;
	t.tmpl->ops->ready(t.tmpl);
	assert_int_equal(t.n_ready, 1);
	assert_int_equal(sup_template_ready(&t.sup, &hooks), 1);
}

static struct sup_child *
ask(uid_t uid)
{
	struct psep_spawn sp = { .role = PSEP_ROLE_WRITER_CHILD };
	struct sup_child *c;

	sp.creds.uid = uid;
	sp.creds.gid = uid;
	c = sup_template_fork(&t.sup, &sp, &wc_ops, NULL);
	assert_non_null(c);
	assert_int_equal(c->pid, 0);
	assert_int_equal(c->state, PSEP_STATE_NEW);
	return c;
}

static void
reply(uint64_t id, pid_t pid, int err)
{
	struct psep_msg m;

	memset(&m, 0, sizeof(m));
	m.hdr.type = PSEP_FORK_REP;
	m.hdr.id = id;
	m.fd = -1;
	m.u.fork_rep.pid = pid;
	m.u.fork_rep.err = err;
	t.tmpl->ops->message(t.tmpl, &m);
}

/* A process of the test's own that sleeps until killed. */
static pid_t
sleeper(void)
{
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		pause();
		_exit(0);
	}
	return pid;
}

/* End a sleeper and reap it. */
static void
sleeper_end(pid_t pid)
{
	kill(pid, SIGKILL);
	assert_int_equal(waitpid(pid, NULL, 0), pid);
}

/* ---- tests -------------------------------------------------------------- */

static void
test_no_request_before_ready(void **state)
{
	struct psep_spawn sp = { .role = PSEP_ROLE_WRITER_CHILD };

	(void)state;
	sp.creds.uid = 1001;
	assert_int_equal(sup_template_ready(&t.sup, &hooks), 0);
	assert_null(sup_template_fork(&t.sup, &sp, &wc_ops, NULL));
	assert_int_equal(t.n_req, 0);
	/* fork mode only */
	t.sup.set.delivery_mode = POLICY_MODE_SETEUID;
	sup_template_retire(&t.sup);
	assert_int_equal(t.n_retired, 1);
	assert_null(t.sup.tmpl);
	assert_int_equal(sup_template_ready(&t.sup, &hooks), -1);
}

static void
test_replies_name_children_in_order(void **state)
{
	struct sup_child *a, *b;
	pid_t pa = sleeper(), pb = sleeper();

	(void)state;
	template_up();
	a = ask(1001);
	b = ask(1002);
	assert_int_equal(t.n_req, 2);
	assert_int_equal(t.req_uid[0], 1001);
	assert_int_equal(t.req_uid[1], 1002);
	reply(t.req_id[0], pa, 0);
	assert_int_equal(a->pid, pa);
	assert_int_equal(b->pid, 0);
	reply(t.req_id[1], pb, 0);
	assert_int_equal(b->pid, pb);
	assert_int_equal(t.n_killed, 0);
	assert_int_equal(t.n_exited, 0);
	sleeper_end(pa);
	sleeper_end(pb);
}

/* A pid that is not the supervisor's child is never signalled: the entry
 * is gone, the process untouched. */
static void
test_reply_naming_a_foreign_pid_signals_nothing(void **state)
{
	struct sup_child *a;
	pid_t foreign = getppid();   /* alive, and not a child of this one */
	int st;

	(void)state;
	template_up();
	a = ask(1001);
	sup_child_kill(a, "test");   /* a kill waiting for the pid */
	t.n_killed = 0;
	reply(t.req_id[0], foreign, 0);
	assert_int_equal(t.n_exited, 1);
	assert_ptr_equal(t.exited[0], a);
	assert_int_equal(t.n_killed, 0);
	assert_int_equal(kill(foreign, 0), 0);
	/* the same for a child reaped already but no longer an orphan */
	a = ask(1002);
	{
		pid_t gone = fork();

		assert_true(gone >= 0);
		if (gone == 0)
			_exit(0);
		assert_int_equal(waitpid(gone, &st, 0), gone);
		reply(t.req_id[1], gone, 0);
	}
	assert_int_equal(t.n_exited, 2);
	assert_ptr_equal(t.exited[1], a);
}

static void
test_reply_for_another_request_kills_template(void **state)
{
	(void)state;
	template_up();
	(void)ask(1001);
	(void)ask(1002);
	reply(t.req_id[1], 4002, 0);
	assert_int_equal(t.n_killed, 1);
	assert_ptr_equal(t.killed[0], t.tmpl);
	assert_true(t.tmpl->refused);
	/* a reply nobody asked for, too */
	t.n_killed = 0;
	t.tmpl->refused = false;
	t.tmpl->killed = false;
	reply(t.req_id[1] + 7, 4003, 0);
	assert_int_equal(t.n_killed, 1);
}

static void
test_child_reaped_before_its_reply_exits_with_it(void **state)
{
	struct sup_child *a;
	pid_t pid;
	int st;

	(void)state;
	template_up();
	a = ask(1001);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(7);
	/* reaped while no entry has its pid: kept as an orphan (bounded
	 * poll for the exit) */
	for (int i = 0; i < 5000 && t.sup.orphan_next == 0; i++) {
		sup_children_reap(&t.sup);
		if (t.sup.orphan_next == 0)
			usleep(1000);
	}
	assert_int_equal(t.sup.orphan_next, 1);
	assert_int_equal(a->pid, 0);
	reply(t.req_id[0], pid, 0);
	assert_int_equal(t.n_exited, 1);
	assert_ptr_equal(t.exited[0], a);
	assert_true(WIFEXITED(t.exit_status[0]) && WEXITSTATUS(t.exit_status[0]) == 7);
	assert_false(sup_child_orphan_take(&t.sup, pid, &st));
}

static void
test_kill_before_pid_known_is_sent_with_reply(void **state)
{
	struct sup_child *a;
	pid_t pid = sleeper();
	int st;

	(void)state;
	template_up();
	a = ask(1001);
	sup_child_kill(a, "test");      /* pid 0: nothing signalled yet */
	assert_true(a->killed);
	reply(t.req_id[0], pid, 0);
	assert_int_equal(a->pid, pid);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
}

static void
test_failed_fork_fails_its_child(void **state)
{
	(void)state;
	template_up();
	(void)ask(1001);
	reply(t.req_id[0], 0, EAGAIN);
	assert_int_equal(t.n_exited, 1);
	assert_true(WIFEXITED(t.exit_status[0]) && WEXITSTATUS(t.exit_status[0]) == 1);
	assert_int_equal(t.n_killed, 0);
}

static void
test_template_death_fails_unnamed_children(void **state)
{
	struct sup_child *a, *b, *c;
	pid_t pa = sleeper(), pb = sleeper();

	(void)state;
	template_up();
	a = ask(1001);
	b = ask(1002);
	c = ask(1003);
	reply(t.req_id[0], pa, 0);
	/* its last reply still waits in its socket when it is reaped */
	{
		char buf[sizeof(struct psep_hdr) + sizeof(struct psep_fork_rep)];
		struct psep_hdr *h = (struct psep_hdr *)buf;
		struct psep_fork_rep *r = (struct psep_fork_rep *)(h + 1);

		memset(buf, 0, sizeof(buf));
		h->type = PSEP_FORK_REP;
		h->len = sizeof(buf);
		h->id = t.req_id[1];
		r->pid = pb;
		assert_int_equal(send(t.tmpl_peer, buf, sizeof(buf), 0), (ssize_t)sizeof(buf));
	}
	sup_child_exit(t.tmpl, W_EXITCODE(0, SIGKILL));
	t.tmpl = NULL;
	assert_null(t.sup.tmpl);
	assert_int_equal(a->pid, pa);
	assert_int_equal(b->pid, pb);
	/* c was never named: gone */
	assert_int_equal(t.n_exited, 1);
	assert_ptr_equal(t.exited[0], c);
	assert_int_equal(t.n_gone, 1);
	assert_int_equal(t.n_gone_startup, 0);
	sleeper_end(pa);
	sleeper_end(pb);
}

static void
test_template_dying_in_startup_says_so(void **state)
{
	(void)state;
	assert_int_equal(sup_template_ready(&t.sup, &hooks), 0);
	sup_child_exit(t.tmpl, W_EXITCODE(1, 0));
	t.tmpl = NULL;
	assert_int_equal(t.n_gone, 1);
	assert_int_equal(t.n_gone_startup, 1);
	assert_int_equal(t.n_ready, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_no_request_before_ready, setup, teardown),
		cmocka_unit_test_setup_teardown(test_replies_name_children_in_order, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_reply_naming_a_foreign_pid_signals_nothing,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_reply_for_another_request_kills_template,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_child_reaped_before_its_reply_exits_with_it,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_kill_before_pid_known_is_sent_with_reply,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_failed_fork_fails_its_child, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_template_death_fails_unnamed_children,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_template_dying_in_startup_says_so, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
