/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/privsep/sup/test_repl.c - the replies of the supervisor's
 * replication operations (privsep/sup/repl.c) when the writer gives none:
 * a writer lost during the job is NO [UNAVAILABLE] (a retry may work), a
 * writer killed for what it sent about the operation is NO [NOPERM]
 * (permanent: a master drops the event and resyncs the mailbox instead of
 * killing a writer again and again).
 *
 * Runs in:  the test process; repl.c is compiled in, the dispatch, the
 *           events, the quota and the child table are fakes defined here.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "privsep/sup/sup_int.h"

static struct {
	struct sup sup;
	struct sup_job *job;          /* the last job submitted */
	unsigned n_done;
	struct psep_repl_rep rep;     /* the last reply */
} t;

/* ---- fakes -------------------------------------------------------------- */

void
sup_dispatch_submit(struct sup *sup, struct sup_job *job)
{
	(void)sup;
	assert_null(t.job);
	t.job = job;
}

int
sup_event_send(struct sup *sup, const struct psep_repl_cmd *cmd,
	       const char *prefix, size_t prefix_len, int body_fd,
	       uint32_t want_acks, uint64_t timeout_ms, sup_event_fn cb, void *arg)
{
	(void)sup;
	(void)cmd;
	(void)prefix;
	(void)prefix_len;
	(void)body_fd;
	(void)want_acks;
	(void)timeout_ms;
	(void)cb;
	(void)arg;
	fail_msg("no event is journaled for a failed operation");
	return -1;
}

bool
sup_hook_expected(struct sup *sup)
{
	(void)sup;
	return false;
}

int
sup_quota_for(const struct policy_settings *s, const struct policy_user *u,
	      bool enforce, struct psep_quota *q, const char **why_out)
{
	(void)s;
	(void)u;
	(void)enforce;
	(void)why_out;
	memset(q, 0, sizeof(*q));
	return 0;
}

int
sup_child_send(struct sup_child *c, uint16_t type, uint64_t id,
	       const void *body, size_t len, int fd)
{
	(void)c;
	(void)type;
	(void)id;
	(void)body;
	(void)len;
	(void)fd;
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

/* ---- helpers ------------------------------------------------------------ */

static int
setup(void **state)
{
	(void)state;
	memset(&t, 0, sizeof(t));
	t.sup.set.n_replicas = 1;
	t.sup.set.replication_quota_exceed = true;
	return 0;
}

static void
op_done(struct sup *sup, const struct psep_repl_rep *rep, int fd, void *arg)
{
	(void)sup;
	(void)arg;
	assert_int_equal(fd, -1);
	t.rep = *rep;
	t.n_done++;
}

/* Runs a STORE of alice's INBOX and fails its job as dispatch.c would
 * when the writer is gone: refused or not, with why. */
static void
run_and_lose_the_writer(bool refused, const char *why)
{
	struct policy_user u = { .uid = 1001, .gid = 1001, .ngroups = 1,
				 .groups = { 1001 } };
	struct psep_repl_cmd cmd = { .op = PSEP_REPL_STORE, .modseq = 5 };
	struct sup_job *job;

	snprintf(u.name, sizeof(u.name), "alice");
	snprintf(u.mail_base, sizeof(u.mail_base), "/home/alice");
	snprintf(u.mail_rel, sizeof(u.mail_rel), "Maildir");
	snprintf(cmd.origin, sizeof(cmd.origin), "a.example");
	snprintf(cmd.user, sizeof(cmd.user), "alice");
	snprintf(cmd.mailbox, sizeof(cmd.mailbox), "INBOX");
	snprintf(cmd.guid, sizeof(cmd.guid), "0190f3a2b4c8d2a1e5f6a7b8c9d0e1f2");
	snprintf(cmd.flags, sizeof(cmd.flags), "+\\Seen");
	sup_repl_run(&t.sup, &u, &cmd, -1, op_done, NULL);
	job = t.job;
	assert_non_null(job);
	assert_int_equal(job->type, PSEP_REPL_OP_REQ);
	assert_int_equal(t.n_done, 0);
	job->refused = refused;
	job->done(job, NULL, why);
	t.job = NULL;
	free(job->req);
	free(job);
	assert_int_equal(t.n_done, 1);
}

/* ---- tests -------------------------------------------------------------- */

static void
test_lost_writer_is_unavailable(void **state)
{
	(void)state;
	run_and_lose_the_writer(false, "writer pid 1000 killed by signal 9");
	assert_int_equal(t.rep.status, PSEP_RS_NO);
	assert_string_equal(t.rep.code, "UNAVAILABLE");
	assert_int_equal(t.rep.effective, 0);
}

static void
test_writer_refused_for_its_answer_is_a_permanent_no(void **state)
{
	(void)state;
	run_and_lose_the_writer(true, "writer pid 1000 killed: what it sent was refused");
	assert_int_equal(t.rep.status, PSEP_RS_NO);
	assert_string_equal(t.rep.code, "NOPERM");
	assert_non_null(strstr(t.rep.text, "refused"));
	assert_int_equal(t.rep.effective, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_lost_writer_is_unavailable, setup),
		cmocka_unit_test_setup(test_writer_refused_for_its_answer_is_a_permanent_no,
				       setup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
