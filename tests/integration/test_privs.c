/* SPDX-License-Identifier: MIT */
/*
 * tests/integration/test_privs.c - the privileges of stowd's children,
 * read from /proc/PID/status of the running processes: lmtpd (and any
 * other run_user child) with no capabilities, NO_NEW_PRIVS and a seccomp
 * filter, as run_user on every uid and gid; writers with exactly
 * CAP_SETUID|CAP_SETGID (seteuid mode: real and saved ids 0, effective
 * and file-system ids those of the last user it wrote for, never 0 again
 * after its first request) or none and the user's ids (fork mode),
 * NO_NEW_PRIVS and a seccomp filter; in fork mode one writer template
 * (ids 0 but file-system ids run_user's, exactly
 * CAP_SETUID|CAP_SETGID|CAP_SETPCAP, bounding set the
 * same, NO_NEW_PRIVS, a filter) whose children are the supervisor's
 * (CLONE_PARENT) and add a second filter; and no child of any other kind.
 * What ps shows names each process's role: /proc/PID/comm and cmdline.
 *
 * Runs in:  the integration suite, as root, one stowd for the program,
 *           in the mode of STOWD_DELIVERY_MODE.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/integration/itest.h"

#define LMTP_PROCESSES 2        /* harness base config */
#define SETEUID_WORKERS 2

static struct harness *H;

static int
group_setup(void **state)
{
	unsigned idx = 0;

	(void)state;
	if (itest_group_start(&H, NULL) < 0)
		return -1;
	/* one delivery so that fork mode has a writer for u1 */
	if (harness_deliver(H, &idx, 1, ITEST_MINI_BODY,
			    strlen(ITEST_MINI_BODY)) < 0)
		return -1;
	return 0;
}

static void
assert_ids(const struct harness_proc *p, uid_t uid, gid_t gid, const char *role)
{
	for (int i = 0; i < 4; i++) {
		if (p->uid[i] != uid || p->gid[i] != gid)
			fail_msg("%s pid %d: Uid %u %u %u %u Gid %u %u %u %u, want all "
				 "%u / %u", role, (int)p->pid, p->uid[0], p->uid[1],
				 p->uid[2], p->uid[3], p->gid[0], p->gid[1], p->gid[2],
				 p->gid[3], (unsigned)uid, (unsigned)gid);
	}
}

static void
assert_sandbox(const struct harness_proc *p, uint64_t caps, const char *role)
{
	if (p->no_new_privs != 1)
		fail_msg("%s pid %d: NoNewPrivs %d, want 1", role, (int)p->pid,
			 p->no_new_privs);
	if (p->seccomp != 2)
		fail_msg("%s pid %d: Seccomp %d, want 2 (filter)", role, (int)p->pid,
			 p->seccomp);
	if (p->cap_eff != caps || p->cap_prm != caps)
		fail_msg("%s pid %d: CapEff %016llx CapPrm %016llx, want %016llx", role,
			 (int)p->pid, (unsigned long long)p->cap_eff,
			 (unsigned long long)p->cap_prm, (unsigned long long)caps);
	if (p->cap_inh != 0 || p->cap_amb != 0)
		fail_msg("%s pid %d: CapInh %016llx CapAmb %016llx, want 0", role,
			 (int)p->pid, (unsigned long long)p->cap_inh,
			 (unsigned long long)p->cap_amb);
}

/* Real and saved uid/gid 0; effective and fs ids equal, 0 or both the
 * same user's (a valid uid, never 0 once switched). */
static void
assert_seteuid_ids(const struct harness_proc *p)
{
	if (p->uid[0] != 0 || p->uid[2] != 0 || p->gid[0] != 0 || p->gid[2] != 0 ||
	    p->uid[1] != p->uid[3] || p->gid[1] != p->gid[3] ||
	    (p->uid[1] == 0) != (p->gid[1] == 0) ||
	    (p->uid[1] != 0 && p->uid[1] != H->users[0].uid))
		fail_msg("writer-seteuid pid %d: Uid %u %u %u %u Gid %u %u %u %u",
			 (int)p->pid, p->uid[0], p->uid[1], p->uid[2], p->uid[3],
			 p->gid[0], p->gid[1], p->gid[2], p->gid[3]);
}

static void
test_lmtpd_runs_as_run_user_without_caps(void **state)
{
	struct harness_proc p[HARNESS_MAX_PROCS];
	int n = harness_find_role(H, HARNESS_ROLE_LMTPD, p, HARNESS_MAX_PROCS);

	(void)state;
	if (n < LMTP_PROCESSES)
		fail_msg("%d run_user children, want at least lmtp_processes = %d", n,
			 LMTP_PROCESSES);
	for (int i = 0; i < n; i++) {
		assert_ids(&p[i], H->run_uid, H->run_gid, "lmtpd");
		assert_sandbox(&p[i], 0, "lmtpd");
	}
	itest_pass(H);
}

static void
test_writers_keep_only_what_their_mode_needs(void **state)
{
	struct harness_proc p[HARNESS_MAX_PROCS];
	int n = harness_find_role(H, HARNESS_ROLE_WRITER, p, HARNESS_MAX_PROCS);
	bool fork_mode = strcmp(H->mode, "fork") == 0;
	int used = 0;

	(void)state;
	if (n < 1 || (!fork_mode && n != SETEUID_WORKERS))
		fail_msg("%d writers, want %s", n, fork_mode ? "at least 1" :
			 "seteuid_workers = 2");
	for (int i = 0; i < n; i++) {
		if (fork_mode) {
			/* u1's child: the user's ids for life, no caps */
			assert_ids(&p[i], p[i].uid[0], p[i].uid[0], "writer-child");
			assert_sandbox(&p[i], 0, "writer-child");
		} else {
			/* seteuid worker: real and saved ids root, effective
			 * ids root only before its first request, then a
			 * user's; CAP_SETUID|CAP_SETGID only, effective all
			 * along (SECBIT_NO_SETUID_FIXUP) */
			assert_seteuid_ids(&p[i]);
			assert_sandbox(&p[i], HARNESS_CAP_SETID, "writer-seteuid");
			used += p[i].uid[1] != 0;
		}
	}
	/* the delivery to u1 left one worker as u1, not as root */
	if (!fork_mode && used != 1)
		fail_msg("%d seteuid workers with a user's euid, want 1", used);
	itest_pass(H);
}

/* Fork mode: one writer template, root with only the three capabilities
 * a drop to a user needs; the writer children it forked are the
 * supervisor's, with the template's filter and their own stacked.
 * seteuid mode: no template. */
static void
test_writer_template_in_fork_mode_only(void **state)
{
	struct harness_proc t[HARNESS_MAX_PROCS], w[HARNESS_MAX_PROCS];
	int nt = harness_find_role(H, HARNESS_ROLE_TEMPLATE, t, HARNESS_MAX_PROCS);
	int nw = harness_find_role(H, HARNESS_ROLE_WRITER, w, HARNESS_MAX_PROCS);
	char buf[4096];

	(void)state;
	if (strcmp(H->mode, "fork") != 0) {
		assert_int_equal(nt, 0);
		itest_pass(H);
		return;
	}
	if (nt != 1)
		fail_msg("%d writer templates, want 1", nt);
	/* ids 0, but file-system ids run_user's: root opens no file there */
	if (t[0].uid[0] != 0 || t[0].uid[1] != 0 || t[0].uid[2] != 0 ||
	    t[0].gid[0] != 0 || t[0].gid[1] != 0 || t[0].gid[2] != 0 ||
	    t[0].uid[3] != H->run_uid || t[0].gid[3] != H->run_gid)
		fail_msg("writer-template: Uid %u %u %u %u Gid %u %u %u %u, want 0 and "
			 "run_user's file-system ids %u / %u", t[0].uid[0], t[0].uid[1],
			 t[0].uid[2], t[0].uid[3], t[0].gid[0], t[0].gid[1], t[0].gid[2],
			 t[0].gid[3], (unsigned)H->run_uid, (unsigned)H->run_gid);
	assert_sandbox(&t[0], HARNESS_CAP_TEMPLATE, "writer-template");
	assert_int_equal(t[0].cap_bnd, HARNESS_CAP_TEMPLATE);
	assert_int_equal(t[0].ppid, H->pid);
	assert_true(nw >= 1);
	for (int i = 0; i < nw; i++) {
		if (w[i].ppid != H->pid)
			fail_msg("writer-child pid %d: PPid %d, want the supervisor %d",
				 (int)w[i].pid, (int)w[i].ppid, (int)H->pid);
		assert_int_equal(w[i].cap_bnd, 0);
		assert_true(harness_proc_file(w[i].pid, "status", buf, sizeof(buf)) > 0);
		if (strstr(buf, "Seccomp_filters:\t2\n") == NULL)
			fail_msg("writer-child pid %d: want two stacked filters", (int)w[i].pid);
	}
	itest_pass(H);
}

static void
test_every_child_is_lmtpd_or_writer(void **state)
{
	struct harness_proc p[HARNESS_MAX_PROCS];
	int n = harness_find_role(H, HARNESS_ROLE_ANY, p, HARNESS_MAX_PROCS);

	(void)state;
	assert_true(n >= LMTP_PROCESSES + 1);
	for (int i = 0; i < n; i++) {
		enum harness_role role = harness_proc_role(H, &p[i]);

		if (role != HARNESS_ROLE_LMTPD && role != HARNESS_ROLE_WRITER &&
		    role != HARNESS_ROLE_TEMPLATE)
			fail_msg("child pid %d (%s, Uid %u %u) is neither lmtpd nor a "
				 "writer (or the writer template)", (int)p[i].pid, p[i].comm, p[i].uid[0],
				 p[i].uid[1]);
		/* no child is a plain root process: all of them are sandboxed */
		assert_int_equal(p[i].seccomp, 2);
		assert_int_equal(p[i].no_new_privs, 1);
	}
	itest_pass(H);
}

/* The process's /proc/PID/comm and its command line (NULs between
 * arguments made spaces) must be comm and start with title. */
static void
assert_names(pid_t pid, const char *comm, const char *title)
{
	char buf[256];
	ssize_t n;

	n = harness_proc_file(pid, "comm", buf, sizeof(buf));
	assert_true(n > 0);
	buf[strcspn(buf, "\n")] = '\0';
	if (strcmp(buf, comm) != 0)
		fail_msg("pid %d: comm \"%s\", want \"%s\"", (int)pid, buf, comm);
	n = harness_proc_file(pid, "cmdline", buf, sizeof(buf));
	assert_true(n > 0);
	for (ssize_t i = 0; i + 1 < n; i++)
		if (buf[i] == '\0')
			buf[i] = ' ';
	if (strncmp(buf, title, strlen(title)) != 0)
		fail_msg("pid %d: cmdline \"%s\", want it to start with \"%s\"",
			 (int)pid, buf, title);
}

static void
test_ps_names_every_role(void **state)
{
	struct harness_proc p[HARNESS_MAX_PROCS];
	int n = harness_find_role(H, HARNESS_ROLE_ANY, p, HARNESS_MAX_PROCS);
	bool fork_mode = strcmp(H->mode, "fork") == 0;
	char title[64];

	(void)state;
	assert_names(H->pid, "stowd-sup", "stowd: supervisor -c ");
	assert_true(n >= LMTP_PROCESSES + 1);
	for (int i = 0; i < n; i++) {
		switch (harness_proc_role(H, &p[i])) {
		case HARNESS_ROLE_LMTPD:
			assert_names(p[i].pid, "stowd-lmtpd", "stowd: lmtpd");
			break;
		case HARNESS_ROLE_WRITER:
			if (fork_mode)
				snprintf(title, sizeof(title), "stowd: writer uid=%u",
					 p[i].uid[0]);
			else
				snprintf(title, sizeof(title), "stowd: writer seteuid");
			assert_names(p[i].pid, "stowd-writer", title);
			break;
		case HARNESS_ROLE_TEMPLATE:
			assert_names(p[i].pid, "stowd-template", "stowd: writer template");
			break;
		case HARNESS_ROLE_ANY:
		case HARNESS_ROLE_OTHER:
			fail_msg("child pid %d has no role", (int)p[i].pid);
		}
	}
	itest_pass(H);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_lmtpd_runs_as_run_user_without_caps,
						itest_setup, itest_teardown),
		cmocka_unit_test_setup_teardown(test_writers_keep_only_what_their_mode_needs,
						itest_setup, itest_teardown),
		cmocka_unit_test_setup_teardown(test_writer_template_in_fork_mode_only,
						itest_setup, itest_teardown),
		cmocka_unit_test_setup_teardown(test_every_child_is_lmtpd_or_writer,
						itest_setup, itest_teardown),
		cmocka_unit_test_setup_teardown(test_ps_names_every_role,
						itest_setup, itest_teardown),
	};

	harness_require_root();
	return cmocka_run_group_tests(tests, group_setup, itest_group_teardown);
}
