/* SPDX-License-Identifier: MIT */
/*
 * privsep/spawn.c - fork a child for a role, drop its privileges as the
 * role row says, verify the drop, sandbox it, run its main.
 *
 * Runs in:  the supervisor (parent side) and the new child.
 * Trust:    every set*id, capng and prctl failure is fatal, and the result
 *           is checked afterwards (getresuid/getresgid, capability sets,
 *           setuid(0) must fail for unprivileged roles).
 * Order:    close fds, reset signals, groups + gid + uid, capabilities
 *           (incl. bounding and ambient sets; the seteuid worker sets and
 *           locks its securebits first), NO_NEW_PRIVS, not dumpable,
 *           verify, seccomp, main.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/securebits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sched.h>
#include <sys/fsuid.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cap-ng.h>

#include "privsep/privsep.h"

static int
int_cmp(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;

	return (x > y) - (x < y);
}

void
psep_close_fds_except(const int *keep, size_t n)
{
	int sorted[PSEP_SPAWN_MAX_KEEP + 1];
	unsigned int next = 3;
	size_t i;

	if (n > sizeof(sorted) / sizeof(sorted[0]))
		fatalx("too many fds to keep");
	memcpy(sorted, keep, n * sizeof(int));
	qsort(sorted, n, sizeof(int), int_cmp);
	for (i = 0; i < n; i++) {
		if (sorted[i] < (int)next)
			continue;
		if ((unsigned int)sorted[i] > next)
			if (close_range(next, (unsigned int)sorted[i] - 1, 0) < 0)
				fatal("close_range");
		next = (unsigned int)sorted[i] + 1;
	}
	if (close_range(next, ~0U, 0) < 0)
		fatal("close_range");
}

/*
 * A child stops when the supervisor tells it (SHUTDOWN) or goes away (EOF on
 * its IPC socket), never on a signal meant for the service: systemd sends
 * SIGTERM to every process of the unit at once, and a graceful stop needs
 * the children to finish what they hold.  SIGKILL still works.
 */
static void
reset_signals(void)
{
	static const int ignored[] = { SIGTERM, SIGINT, SIGHUP, SIGPIPE, SIGUSR1,
				       SIGUSR2 };
	static const int dfl[] = { SIGCHLD, SIGALRM, SIGQUIT };
	sigset_t all;
	size_t i;

	for (i = 0; i < sizeof(ignored) / sizeof(ignored[0]); i++)
		signal(ignored[i], SIG_IGN);
	for (i = 0; i < sizeof(dfl) / sizeof(dfl[0]); i++)
		signal(dfl[i], SIG_DFL);
	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
}

/* True if exactly the capabilities in want (bit mask) are in set. */
static bool
caps_exactly(capng_type_t set, uint64_t want)
{
	unsigned cap;

	for (cap = 0; cap <= CAP_LAST_CAP; cap++) {
		bool have = capng_have_capability(set, cap) != 0;
		bool should = (want >> cap) & 1;

		if (have != should)
			return false;
	}
	return true;
}

static void
verify_ids(uid_t uid, gid_t gid)
{
	uid_t r, e, s;
	gid_t rg, eg, sg;

	if (getresuid(&r, &e, &s) < 0 || getresgid(&rg, &eg, &sg) < 0)
		fatal("getresuid");
	if (r != uid || e != uid || s != uid)
		fatalx("privilege drop failed: uids %u/%u/%u, want %u",
		       (unsigned)r, (unsigned)e, (unsigned)s, (unsigned)uid);
	if (rg != gid || eg != gid || sg != gid)
		fatalx("privilege drop failed: gids %u/%u/%u, want %u",
		       (unsigned)rg, (unsigned)eg, (unsigned)sg, (unsigned)gid);
}

static void
verify_caps(uint64_t want)
{
	capng_clear(CAPNG_SELECT_ALL);
	if (capng_get_caps_process() != 0)
		fatalx("capng_get_caps_process failed");
	if (!caps_exactly(CAPNG_EFFECTIVE, want) ||
	    !caps_exactly(CAPNG_PERMITTED, want) ||
	    !caps_exactly(CAPNG_INHERITABLE, 0) ||
	    !caps_exactly(CAPNG_BOUNDING_SET, want))
		fatalx("privilege drop failed: unexpected capabilities");
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, CAP_SETUID, 0, 0) == 1)
		fatalx("privilege drop failed: ambient capabilities remain");
}

static void
drop_to_user(const struct psep_creds *c)
{
	if (c->uid == 0 || c->gid == 0)
		fatalx("refusing to run an unprivileged role as uid/gid 0");
	if (setgroups(c->ngroups, c->groups) < 0)
		fatal("setgroups");
	capng_clear(CAPNG_SELECT_ALL);
	if (capng_change_id((int)c->uid, (int)c->gid,
			    CAPNG_CLEAR_BOUNDING | CAPNG_CLEAR_AMBIENT) != 0)
		fatalx("capng_change_id(%u, %u) failed", (unsigned)c->uid,
		       (unsigned)c->gid);
	verify_ids(c->uid, c->gid);
	verify_caps(0);
	if (setuid(0) == 0 || seteuid(0) == 0)
		fatalx("privilege drop failed: setuid(0) succeeded");
}

/* uid 0 keeps CAP_SETUID and CAP_SETGID (and CAP_SETPCAP if setpcap) in
 * its effective, permitted and bounding sets, nothing else, with
 * securebits bits (set while CAP_SETPCAP is still there); no groups. */
static uint64_t
keep_root_caps(int bits, bool setpcap)
{
	uint64_t want = (1ull << CAP_SETUID) | (1ull << CAP_SETGID);

	if (prctl(PR_SET_SECUREBITS, bits, 0, 0, 0) < 0)
		fatal("PR_SET_SECUREBITS");
	if (prctl(PR_GET_SECUREBITS, 0, 0, 0, 0) != bits)
		fatalx("privilege drop failed: securebits not set");
	capng_clear(CAPNG_SELECT_ALL);
	if (capng_updatev(CAPNG_ADD, CAPNG_EFFECTIVE | CAPNG_PERMITTED |
			  CAPNG_BOUNDING_SET, CAP_SETUID, CAP_SETGID, -1) != 0 ||
	    (setpcap && capng_update(CAPNG_ADD, CAPNG_EFFECTIVE | CAPNG_PERMITTED |
				     CAPNG_BOUNDING_SET, CAP_SETPCAP) != 0))
		fatalx("capng_updatev failed");
	if (capng_apply(CAPNG_SELECT_ALL) != 0)
		fatalx("capng_apply failed");
	if (setgroups(0, NULL) < 0)
		fatal("setgroups");
	return setpcap ? want | (1ull << CAP_SETPCAP) : want;
}

/*
 * seteuid worker: real, effective and saved uid 0 for now, only
 * CAP_SETUID/CAP_SETGID (effective, permitted, bounding).  Securebits,
 * set while CAP_SETPCAP is still there and locked: NO_SETUID_FIXUP keeps
 * the two capabilities effective when the worker's euid leaves 0, so it
 * switches from one user to the next without a way back to root (which
 * its seccomp profile refuses); NOROOT keeps uid 0 from meaning "all
 * capabilities" (there is no exec, and this says so to the kernel too).
 */
static void
keep_setid_caps(void)
{
	uint64_t want = keep_root_caps(SECBIT_NO_SETUID_FIXUP |
				       SECBIT_NO_SETUID_FIXUP_LOCKED |
				       SECBIT_NOROOT | SECBIT_NOROOT_LOCKED |
				       SECBIT_KEEP_CAPS_LOCKED |
				       SECBIT_NO_CAP_AMBIENT_RAISE |
				       SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED, false);

	verify_ids(0, 0);
	verify_caps(want);
}

/*
 * Writer template: uid 0 with only CAP_SETUID, CAP_SETGID and CAP_SETPCAP
 * (effective, permitted, bounding).  No NO_SETUID_FIXUP here: when a
 * forked child changes its uids to the user's, the kernel clears its
 * capabilities as for any process, and drop_to_user checks that it did.
 * CAP_SETPCAP is what lets the child clear its bounding set first.  Its
 * file-system ids are fs's (run_user): uid 0 never opens a file here,
 * and its filter has no setfsuid/setfsgid to take that back (a child's
 * setresuid/setresgid set its own).
 */
static void
keep_drop_caps(const struct psep_creds *fs)
{
	uint64_t want;

	if (fs->uid == 0 || fs->gid == 0)
		fatalx("refusing file-system ids 0 for the writer template");
	want = keep_root_caps(SECBIT_NOROOT | SECBIT_NOROOT_LOCKED |
			      SECBIT_NO_CAP_AMBIENT_RAISE |
			      SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED, true);
	(void)setfsgid(fs->gid);
	(void)setfsuid(fs->uid);
	/* setfs*id(-1) fails and returns the current id */
	if ((uid_t)setfsuid((uid_t)-1) != fs->uid || (gid_t)setfsgid((gid_t)-1) != fs->gid)
		fatalx("privilege drop failed: file-system ids not set");
	verify_ids(0, 0);
	verify_caps(want);
}

void
psep_drop_privileges(const struct psep_role_def *role, const struct psep_creds *creds)
{
	switch (role->uid_kind) {
	case PSEP_UID_ROOT:
		if (role->keep_setid_caps)
			keep_setid_caps();
		else if (role->keep_drop_caps)
			keep_drop_caps(creds);
		break;
	case PSEP_UID_RUN_USER:
	case PSEP_UID_TARGET:
		drop_to_user(creds);
		break;
	}
	if (role->no_new_privs) {
		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
			fatal("PR_SET_NO_NEW_PRIVS");
		if (prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1)
			fatalx("NO_NEW_PRIVS not set");
	}
	if (role->uid_kind != PSEP_UID_ROOT || role->keep_setid_caps ||
	    role->keep_drop_caps) {
		if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
			fatal("PR_SET_DUMPABLE");
	}
}

/* A child reads nothing from stdin and writes nothing to stdout; stderr
 * stays for a sanitizer report or a failure before logging works. */
static void
stdio_to_null(void)
{
	int fd = open("/dev/null", O_RDWR | O_CLOEXEC);

	if (fd < 0)
		fatal("open /dev/null");
	if (dup2(fd, STDIN_FILENO) < 0 || dup2(fd, STDOUT_FILENO) < 0)
		fatal("dup2");
	if (fd > STDERR_FILENO)
		close(fd);
}

/* The common tail of every child: title, drop, verify, sandbox, main. */
static void __attribute__((noreturn))
child_enter(const struct psep_spawn *sp, int ipc)
{
	const struct psep_role_def *role = psep_role_get(sp->role);
	int rc;

	log_init(role->name, -1);
	if (role->uid_kind == PSEP_UID_TARGET)
		psep_proctitle_set(role->comm, "stowd: %s uid=%u", role->title,
				   (unsigned)sp->creds.uid);
	else
		psep_proctitle_set(role->comm, "stowd: %s", role->title);
	psep_drop_privileges(role, &sp->creds);
	psep_sandbox_apply(role->profile);
	rc = sp->main(sp->arg, ipc);
	_exit(rc);
}

static void __attribute__((noreturn))
child_run(const struct psep_spawn *sp, int ipc)
{
	int keep[PSEP_SPAWN_MAX_KEEP + 1];
	size_t n = 0, i;

	keep[n++] = ipc;
	for (i = 0; i < sp->n_keep_fds; i++)
		keep[n++] = sp->keep_fds[i];
	psep_close_fds_except(keep, n);
	stdio_to_null();
	reset_signals();
	child_enter(sp, ipc);
}

/* Move fd above stderr (a supervisor started with 0-2 closed would
 * otherwise hand a child its IPC end as stdin).  Returns the fd or -1. */
static int
above_stdio(int fd)
{
	int moved;

	if (fd > STDERR_FILENO)
		return fd;
	moved = fcntl(fd, F_DUPFD_CLOEXEC, STDERR_FILENO + 1);
	close(fd);
	return moved;
}

/* The IPC socketpair: large buffers, both ends above stdio, the parent's
 * end non-blocking.  Returns 0 or -1 with errno (nothing left open). */
int
psep_ipc_pair(int sv[2])
{
	int big = 4 << 20, i;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return -1;
	for (i = 0; i < 2; i++) {
		(void)setsockopt(sv[i], SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof(big));
		(void)setsockopt(sv[i], SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big));
		sv[i] = above_stdio(sv[i]);
	}
	if (sv[0] >= 0 && sv[1] >= 0 && fcntl(sv[0], F_SETFL, O_NONBLOCK) == 0)
		return 0;
	i = errno;
	if (sv[0] >= 0)
		close(sv[0]);
	if (sv[1] >= 0)
		close(sv[1]);
	errno = i;
	return -1;
}

pid_t
psep_spawn_child(const struct psep_spawn *sp, int *ipc_out)
{
	int sv[2];
	pid_t pid;

	if (sp->n_keep_fds > PSEP_SPAWN_MAX_KEEP) {
		errno = EINVAL;
		return -1;
	}
	if (psep_ipc_pair(sv) < 0)
		return -1;
	pid = fork();
	if (pid < 0) {
		int saved = errno;

		close(sv[0]);
		close(sv[1]);
		errno = saved;
		return -1;
	}
	if (pid == 0) {
		close(sv[0]);
		child_run(sp, sv[1]);
	}
	close(sv[1]);
	*ipc_out = sv[0];
	return pid;
}

pid_t
psep_spawn_forked(const struct psep_spawn *sp, int ipc)
{
	pid_t pid;

	if (sp->n_keep_fds != 0) {
		errno = EINVAL;
		return -1;
	}
	/* fork() without glibc's wrapper: CLONE_PARENT makes the child the
	 * supervisor's, which reaps it, signals it and sees it in its child
	 * table like any other; the caller is single-threaded, so no lock
	 * of another thread is copied held. */
	pid = (pid_t)syscall(SYS_clone, (unsigned long)(CLONE_PARENT | SIGCHLD),
			     0UL, NULL, NULL, 0UL);
	if (pid != 0)
		return pid;
	{
		int keep[1] = { ipc };

		/* libcap-ng learns a new pid from its atfork handler, which a
		 * raw clone does not run: without this its capset would name
		 * the template */
		capng_setpid((int)getpid());

		/* stdio and signals are already the template's (child_run) */
		psep_close_fds_except(keep, 1);
		child_enter(sp, ipc);
	}
}

int
psep_child_hello(int ipc, enum psep_role role, unsigned generation)
{
	struct psep_hello h = { .version = PSEP_PROTO_VERSION, .role = role,
				.generation = generation };
	struct psep_msg m;
	const char *why;

	if (psep_msg_send(ipc, PSEP_HELLO_REQ, 1, &h, sizeof(h), -1) < 0)
		return -1;
	if (psep_msg_recv(ipc, PSEP_ROLE_SUPERVISOR, PSEP_STATE_NEW, &m, &why) < 0) {
		log_err("hello: %s", why);
		return -1;
	}
	if (m.hdr.type != PSEP_HELLO_REP || m.hdr.id != 1) {
		psep_msg_clear(&m);
		log_err("hello: unexpected %s", psep_type_name(m.hdr.type));
		return -1;
	}
	return 0;
}

int
psep_child_next(int ipc, struct psep_msg *m)
{
	const char *why;

	if (psep_msg_recv(ipc, PSEP_ROLE_SUPERVISOR, PSEP_STATE_READY, m, &why) == 0)
		return 1;
	if (errno == ECONNRESET)
		return 0;
	log_err("bad request from supervisor: %s", why);
	return -1;
}
