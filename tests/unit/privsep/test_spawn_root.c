/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/privsep/test_spawn_root.c - the privilege drop done by
 * psep_spawn_child(), seen from outside in /proc/<pid>/status, and its
 * self-check: a drop that did not take (ids, capabilities, setuid(0),
 * NO_NEW_PRIVS, dumpable), injected through mocks, kills the child before
 * main runs.
 *
 * Runs in:  root only.  Without root the whole program is skipped with the
 *           TAP plan "1..0 # SKIP" (cmocka 1.1.5 prints a skip() as
 *           "not ok N # SKIP", which meson counts as a failure).
 * Mocks:    getresuid, getresgid, capng_have_capability, setuid, prctl
 *           (--wrap): lie on demand, else pass through.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cap-ng.h>
#include <cmocka.h>

#include "spawnutil.h"

/* ---- mocks -------------------------------------------------------------- */

enum lie {
	LIE_NONE,
	LIE_SAVED_UID,      /* getresuid: saved uid not what was set */
	LIE_SAVED_GID,      /* getresgid: saved gid not what was set */
	LIE_CAP_EFFECTIVE,  /* CAP_SYS_ADMIN still effective */
	LIE_CAP_BOUNDING,   /* CAP_SYS_ADMIN still in the bounding set */
	LIE_CAP_MISSING,    /* CAP_SETUID not effective */
	LIE_SETUID0_WORKS,  /* setuid(0) succeeds after the drop */
	LIE_NNP_FAILS,      /* PR_SET_NO_NEW_PRIVS fails */
	LIE_NNP_UNSET,      /* PR_GET_NO_NEW_PRIVS reads 0 */
	LIE_AMBIENT,        /* PR_CAP_AMBIENT_IS_SET reads 1 */
	LIE_DUMPABLE_FAILS, /* PR_SET_DUMPABLE fails */
};

/* Set in the parent around one spawn; the forked child inherits it. */
static enum lie lie;

int __real_getresuid(uid_t *r, uid_t *e, uid_t *s);
int __wrap_getresuid(uid_t *r, uid_t *e, uid_t *s);
int __real_getresgid(gid_t *r, gid_t *e, gid_t *s);
int __wrap_getresgid(gid_t *r, gid_t *e, gid_t *s);
int __real_capng_have_capability(capng_type_t which, unsigned int cap);
int __wrap_capng_have_capability(capng_type_t which, unsigned int cap);
int __real_setuid(uid_t uid);
int __wrap_setuid(uid_t uid);
int __real_prctl(int option, ...);
int __wrap_prctl(int option, ...);

int
__wrap_getresuid(uid_t *r, uid_t *e, uid_t *s)
{
	int rc = __real_getresuid(r, e, s);

	if (rc == 0 && lie == LIE_SAVED_UID)
		*s = *s == 0 ? 1 : 0;
	return rc;
}

int
__wrap_getresgid(gid_t *r, gid_t *e, gid_t *s)
{
	int rc = __real_getresgid(r, e, s);

	if (rc == 0 && lie == LIE_SAVED_GID)
		*s = *s == 0 ? 1 : 0;
	return rc;
}

int
__wrap_capng_have_capability(capng_type_t which, unsigned int cap)
{
	if (lie == LIE_CAP_EFFECTIVE && which == CAPNG_EFFECTIVE && cap == CAP_SYS_ADMIN)
		return 1;
	if (lie == LIE_CAP_BOUNDING && which == CAPNG_BOUNDING_SET &&
	    cap == CAP_SYS_ADMIN)
		return 1;
	if (lie == LIE_CAP_MISSING && which == CAPNG_EFFECTIVE && cap == CAP_SETUID)
		return 0;
	return __real_capng_have_capability(which, cap);
}

int
__wrap_setuid(uid_t uid)
{
	if (lie == LIE_SETUID0_WORKS && uid == 0)
		return 0;
	return __real_setuid(uid);
}

int
__wrap_prctl(int option, ...)
{
	unsigned long a2, a3, a4, a5;
	va_list ap;

	va_start(ap, option);
	a2 = va_arg(ap, unsigned long);
	a3 = va_arg(ap, unsigned long);
	a4 = va_arg(ap, unsigned long);
	a5 = va_arg(ap, unsigned long);
	va_end(ap);
	if ((lie == LIE_NNP_FAILS && option == PR_SET_NO_NEW_PRIVS) ||
	    (lie == LIE_DUMPABLE_FAILS && option == PR_SET_DUMPABLE)) {
		errno = EPERM;
		return -1;
	}
	if (lie == LIE_NNP_UNSET && option == PR_GET_NO_NEW_PRIVS)
		return 0;
	if (lie == LIE_AMBIENT && option == PR_CAP_AMBIENT && a2 == PR_CAP_AMBIENT_IS_SET)
		return 1;
	return __real_prctl(option, a2, a3, a4, a5);
}

/* ---- what the drop leaves ------------------------------------------------ */

struct priv_case {
	const char *name;
	enum psep_role role;
	struct psep_creds creds;
	const char *ids_uid, *ids_gid, *groups;
	const char *caps;  /* CapPrm, CapEff, CapBnd */
};

static const struct priv_case priv_cases[] = {
	{ .name = "lmtpd as nobody", .role = PSEP_ROLE_LMTPD,
	  .creds = { .uid = 65534, .gid = 65534, .ngroups = 0 },
	  .ids_uid = "65534\t65534\t65534\t65534", .ids_gid = "65534\t65534\t65534\t65534",
	  .groups = "", .caps = NO_CAPS },
	{ .name = "lmtpd with a supplementary group", .role = PSEP_ROLE_LMTPD,
	  .creds = { .uid = 65534, .gid = 65534, .ngroups = 1, .groups = { 4242 } },
	  .ids_uid = "65534\t65534\t65534\t65534", .ids_gid = "65534\t65534\t65534\t65534",
	  .groups = "4242", .caps = NO_CAPS },
	{ .name = "repl-hook as nobody", .role = PSEP_ROLE_REPL_HOOK,
	  .creds = { .uid = 65534, .gid = 65534, .ngroups = 0 },
	  .ids_uid = "65534\t65534\t65534\t65534", .ids_gid = "65534\t65534\t65534\t65534",
	  .groups = "", .caps = NO_CAPS },
	{ .name = "writer-child as 1000", .role = PSEP_ROLE_WRITER_CHILD,
	  .creds = { .uid = 1000, .gid = 1001, .ngroups = 2, .groups = { 1001, 100 } },
	  .ids_uid = "1000\t1000\t1000\t1000", .ids_gid = "1001\t1001\t1001\t1001",
	  .groups = "100 1001", .caps = NO_CAPS },
	{ .name = "writer-seteuid", .role = PSEP_ROLE_WRITER_SETEUID,
	  .creds = { .uid = 0, .gid = 0, .ngroups = 0 },
	  .ids_uid = "0\t0\t0\t0", .ids_gid = "0\t0\t0\t0",
	  .groups = "", .caps = SETID_CAPS },
};

static void
test_spawn_drops_privileges_as_the_role_row_says(void **state)
{
	struct extra_fds x;
	struct seen *s;
	size_t i;
	int st;

	(void)state;
	s = malloc(sizeof(*s));
	assert_non_null(s);
	for (i = 0; i < sizeof(priv_cases) / sizeof(priv_cases[0]); i++) {
		const struct priv_case *c = &priv_cases[i];
		struct psep_spawn sp = { .role = c->role, .creds = c->creds,
					 .main = main_ready_then_wait,
					 .keep_fds = &x.keep, .n_keep_fds = 1 };

		extra_open(&x);
		st = spawn_and_look(&sp, s, c->name);
		extra_close(&x);
		assert_exited(st, 0, c->name);
		expect_field(s->status, "Uid", c->ids_uid, c->name);
		expect_field(s->status, "Gid", c->ids_gid, c->name);
		expect_field(s->status, "Groups", c->groups, c->name);
		expect_field(s->status, "CapInh", NO_CAPS, c->name);
		expect_field(s->status, "CapPrm", c->caps, c->name);
		expect_field(s->status, "CapEff", c->caps, c->name);
		expect_field(s->status, "CapBnd", c->caps, c->name);
		expect_field(s->status, "CapAmb", NO_CAPS, c->name);
		expect_field(s->status, "NoNewPrivs", "1", c->name);
		expect_field(s->status, "Seccomp", "2", c->name);
		expect_child_fds(s, &x, c->name);
	}
	free(s);
}

/* ---- the drop checks itself ------------------------------------------- */

static void
test_spawn_drop_that_did_not_take_exits_1_before_main(void **state)
{
	static const struct {
		const char *name;
		enum psep_role role;
		enum lie lie;
		int exit_code;
	} t[] = {
		{ "lmtpd: nothing injected", PSEP_ROLE_LMTPD, LIE_NONE, 0 },
		{ "lmtpd: saved uid", PSEP_ROLE_LMTPD, LIE_SAVED_UID, 1 },
		{ "lmtpd: saved gid", PSEP_ROLE_LMTPD, LIE_SAVED_GID, 1 },
		{ "lmtpd: effective capability", PSEP_ROLE_LMTPD, LIE_CAP_EFFECTIVE, 1 },
		{ "lmtpd: bounding capability", PSEP_ROLE_LMTPD, LIE_CAP_BOUNDING, 1 },
		{ "lmtpd: setuid(0) works", PSEP_ROLE_LMTPD, LIE_SETUID0_WORKS, 1 },
		{ "lmtpd: ambient capability", PSEP_ROLE_LMTPD, LIE_AMBIENT, 1 },
		{ "lmtpd: NO_NEW_PRIVS fails", PSEP_ROLE_LMTPD, LIE_NNP_FAILS, 1 },
		{ "lmtpd: NO_NEW_PRIVS unset", PSEP_ROLE_LMTPD, LIE_NNP_UNSET, 1 },
		{ "lmtpd: PR_SET_DUMPABLE fails", PSEP_ROLE_LMTPD, LIE_DUMPABLE_FAILS, 1 },
		{ "writer-child: saved uid", PSEP_ROLE_WRITER_CHILD, LIE_SAVED_UID, 1 },
		{ "writer-child: setuid(0) works", PSEP_ROLE_WRITER_CHILD,
		  LIE_SETUID0_WORKS, 1 },
		{ "writer-seteuid: nothing injected", PSEP_ROLE_WRITER_SETEUID, LIE_NONE, 0 },
		{ "writer-seteuid: saved uid", PSEP_ROLE_WRITER_SETEUID, LIE_SAVED_UID, 1 },
		{ "writer-seteuid: saved gid", PSEP_ROLE_WRITER_SETEUID, LIE_SAVED_GID, 1 },
		{ "writer-seteuid: effective capability", PSEP_ROLE_WRITER_SETEUID,
		  LIE_CAP_EFFECTIVE, 1 },
		{ "writer-seteuid: bounding capability", PSEP_ROLE_WRITER_SETEUID,
		  LIE_CAP_BOUNDING, 1 },
		{ "writer-seteuid: CAP_SETUID missing", PSEP_ROLE_WRITER_SETEUID,
		  LIE_CAP_MISSING, 1 },
		{ "writer-seteuid: ambient capability", PSEP_ROLE_WRITER_SETEUID,
		  LIE_AMBIENT, 1 },
		{ "writer-seteuid: NO_NEW_PRIVS fails", PSEP_ROLE_WRITER_SETEUID,
		  LIE_NNP_FAILS, 1 },
	};
	char what[96];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct psep_spawn sp = { .role = t[i].role,
					 .creds = { .uid = 65534, .gid = 65534 },
					 .main = main_mark };
		pid_t pid;
		int ipc;
		char got;

		lie = t[i].lie;
		pid = spawn(&sp, &ipc);
		lie = LIE_NONE;
		assert_true(pid > 0);
		got = wait_byte(ipc);
		snprintf(what, sizeof(what), "%s (main %s)", t[i].name,
			 got == 'm' ? "ran" : "did not run");
		assert_exited(finish(pid, ipc), t[i].exit_code, what);
		assert_int_equal(got == 'm', t[i].exit_code == 0);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_spawn_drops_privileges_as_the_role_row_says),
		cmocka_unit_test(test_spawn_drop_that_did_not_take_exits_1_before_main),
	};

	if (geteuid() != 0) {
		printf("1..0 # SKIP needs root\n");
		return 0;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
