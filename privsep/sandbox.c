/* SPDX-License-Identifier: MIT */
/*
 * privsep/sandbox.c - the seccomp allow-lists of every sandboxed role, in
 * one place, syscall by syscall.  Default action: kill the process.
 *
 * Runs in:  a child, after its privilege drop, before it reads a request.
 * Trust:    nothing that executes programs, traces other processes,
 *           mounts, loads BPF or changes ids is on any list, except
 *           setresuid/setresgid/setgroups in the seteuid writer, where an
 *           argument filter refuses any id 0 and any change of the real
 *           or saved id (so the worker cannot become euid 0 again).  Only
 *           repl-hook creates sockets, and only AF_INET, AF_INET6 and
 *           AF_UNIX ones.  Arguments are filtered where the value is in
 *           a register (seccomp cannot read memory): fcntl commands,
 *           ioctl requests, socket domains, no PROT_EXEC mappings outside
 *           repl-hook, openat flags and creation modes, mkdirat modes.
 *           doc/security.md explains each list.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <sched.h>
#include <signal.h>

#include <seccomp.h>

#include "privsep/privsep.h"

/* Needed by every sandboxed process: memory, time, exit, IPC. */
static const int sc_base[] = {
	SCMP_SYS(read), SCMP_SYS(write),        /* IPC and logging */
	SCMP_SYS(readv), SCMP_SYS(writev),
	SCMP_SYS(recvmsg), SCMP_SYS(sendmsg),   /* messages and fds from/to the supervisor */
	SCMP_SYS(close),
	SCMP_SYS(fstat), SCMP_SYS(newfstatat),  /* fstat() of received fds */
	SCMP_SYS(lseek),
	/* fcntl: see allow_fcntl; mmap, mprotect: see allow_mmap */
	SCMP_SYS(brk),                          /* malloc */
	SCMP_SYS(munmap), SCMP_SYS(mremap),
	SCMP_SYS(madvise),                      /* malloc arenas */
	SCMP_SYS(futex),                        /* libc locks */
	SCMP_SYS(clock_gettime), SCMP_SYS(gettimeofday), SCMP_SYS(time),
	SCMP_SYS(clock_nanosleep), SCMP_SYS(nanosleep),
	SCMP_SYS(getrandom),                    /* GUIDs, session ids */
	SCMP_SYS(getpid), SCMP_SYS(gettid),
	SCMP_SYS(rt_sigreturn), SCMP_SYS(rt_sigprocmask),
	SCMP_SYS(restart_syscall),
	SCMP_SYS(exit), SCMP_SYS(exit_group),
};

/* lmtpd: event loop on sockets it was given; spools bodies to memfds. */
static const int sc_lmtpd[] = {
	SCMP_SYS(epoll_create1), SCMP_SYS(epoll_ctl),   /* libevent */
	SCMP_SYS(epoll_wait), SCMP_SYS(epoll_pwait),
	SCMP_SYS(recvfrom), SCMP_SYS(sendto),           /* client I/O */
	SCMP_SYS(shutdown),
	SCMP_SYS(getsockname), SCMP_SYS(getpeername),   /* Received: header */
	SCMP_SYS(setsockopt), SCMP_SYS(getsockopt),
	SCMP_SYS(memfd_create),                         /* body spool */
	SCMP_SYS(ftruncate), SCMP_SYS(pwrite64), SCMP_SYS(pread64),
	SCMP_SYS(pipe2),                                /* event_base_new's signal pipe */
	SCMP_SYS(getuid), SCMP_SYS(geteuid),            /* event_base_new's environment check */
	SCMP_SYS(getgid), SCMP_SYS(getegid),
};

/* repld: lmtpd's list plus what a TLS front-end of the replication
 * protocol needs to pass literals and files on. */
static const int sc_repld[] = {
	SCMP_SYS(sendfile), SCMP_SYS(splice),   /* file/memfd data to a socket */
	SCMP_SYS(statx),                        /* fstat of received fds */
};

/* repl-hook: lmtpd's list plus outgoing connections (socket: see
 * allow_socket) and its journal under state_dir/replication. */
static const int sc_repl_hook[] = {
	SCMP_SYS(connect),                      /* the address is behind a
						 * pointer: not checkable */
	/* openat (journal files, resolver files): see allow_hook_openat;
	 * no mkdirat, no getdents64: the supervisor creates the directory
	 * and repl-hook opens its files by name */
	SCMP_SYS(renameat), SCMP_SYS(renameat2),
	SCMP_SYS(unlinkat),
	SCMP_SYS(fsync), SCMP_SYS(fdatasync),   /* journal durability */
	SCMP_SYS(flock),                        /* one repl-hook per journal */
	SCMP_SYS(inotify_init1),                /* change capture (watch.c); the
						 * watches are added by writers */
	SCMP_SYS(statx),
	SCMP_SYS(sendfile), SCMP_SYS(splice),
	/* getaddrinfo of a replica host name: /etc/hosts and nsswitch
	 * (openat), nscd (AF_UNIX connect), DNS (UDP/TCP to the resolver,
	 * parallel A/AAAA queries, poll for replies, uname for the default
	 * search domain). */
	SCMP_SYS(poll), SCMP_SYS(ppoll),
	SCMP_SYS(sendmmsg),
	SCMP_SYS(uname),
};

/* Writers: Maildir I/O below an fd, never a socket, never exec. */
static const int sc_writer[] = {
	/* openat, mkdirat: see allow_writer_files */
	SCMP_SYS(openat2),                      /* safe walk, RESOLVE_* (the
						 * how struct is behind a
						 * pointer: not checkable) */
	SCMP_SYS(renameat2), SCMP_SYS(renameat),/* tmp -> new, no replace */
	SCMP_SYS(linkat), SCMP_SYS(unlinkat),
	SCMP_SYS(fsync), SCMP_SYS(fdatasync),   /* durability */
	SCMP_SYS(sendfile),                     /* memfd -> file */
	SCMP_SYS(copy_file_range),
	SCMP_SYS(pread64), SCMP_SYS(pwrite64),
	SCMP_SYS(flock),                        /* index lock */
	SCMP_SYS(inotify_add_watch),            /* change capture, on repl-hook's
						 * instance (storage/repl/watch.c) */
	SCMP_SYS(ftruncate),                    /* torn index tail */
	SCMP_SYS(statx),
	SCMP_SYS(getdents64),
	SCMP_SYS(getuid), SCMP_SYS(geteuid),    /* checks of the own ids */
	SCMP_SYS(getgid), SCMP_SYS(getegid),
	SCMP_SYS(getresuid), SCMP_SYS(getresgid),
	/* replication operations (storage/repl/repl.h) */
	SCMP_SYS(utimensat),                    /* futimens: mtime of a copy */
	SCMP_SYS(memfd_create),                 /* LIST/SYNC/GUIDS reply data */
};


#ifdef STOWD_SANITIZER
/* AddressSanitizer/UBSan runtime at work in a sandboxed process. */
static const int sc_sanitizer[] = {
	SCMP_SYS(sigaltstack), SCMP_SYS(rt_sigaction), SCMP_SYS(prctl),
	SCMP_SYS(sched_yield), SCMP_SYS(sched_getaffinity),
	SCMP_SYS(prlimit64), SCMP_SYS(getrlimit),
	SCMP_SYS(getppid), SCMP_SYS(kill), SCMP_SYS(tgkill),
};
#endif

static void
allow_list(scmp_filter_ctx ctx, const int *list, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		int rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, list[i], 0);

		if (rc < 0 && rc != -EEXIST)
			fatalx("seccomp_rule_add(%d): %d", list[i], rc);
	}
}

#define ALLOW(ctx, list) allow_list(ctx, list, sizeof(list) / sizeof(list[0]))

/* socket: only AF_INET, AF_INET6 and AF_UNIX (repl-hook). */
static void
allow_socket(scmp_filter_ctx ctx)
{
	static const int domains[] = { AF_INET, AF_INET6, AF_UNIX };
	size_t i;

	for (i = 0; i < sizeof(domains) / sizeof(domains[0]); i++)
		if (seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1,
				     SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)domains[i])) < 0)
			fatalx("seccomp_rule_add(socket)");
}

/* fcntl: the commands stowd, libevent and libc use.  Refused, among
 * others: F_SETOWN/F_SETOWN_EX/F_SETSIG (signals to other processes),
 * F_SETLEASE, F_NOTIFY, F_SETPIPE_SZ, F_DUPFD (fd number games). */
static void
allow_fcntl(scmp_filter_ctx ctx)
{
	static const int cmds[] = {
		F_GETFD, F_SETFD,               /* FD_CLOEXEC (libevent) */
		F_GETFL, F_SETFL,               /* O_NONBLOCK */
		F_DUPFD_CLOEXEC,
		F_ADD_SEALS, F_GET_SEALS,       /* body memfds */
	};
	size_t i;

	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(fcntl), 1,
				     SCMP_A1(SCMP_CMP_EQ, (scmp_datum_t)cmds[i])) < 0)
			fatalx("seccomp_rule_add(fcntl)");
}

/* mmap, mprotect: no executable mapping (the code is mapped before the
 * filter is loaded), unless exec is true (repl-hook: the resolver loads
 * its NSS modules on the first lookup). */
static void
allow_mmap(scmp_filter_ctx ctx, bool exec)
{
	if (exec) {
		if (seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mmap), 0) < 0 ||
		    seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mprotect), 0) < 0)
			fatalx("seccomp_rule_add(mmap)");
		return;
	}
	if (seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mmap), 1,
			     SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0)) < 0 ||
	    seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mprotect), 1,
			     SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0)) < 0)
		fatalx("seccomp_rule_add(mmap)");
}

/*
 * repl-hook's openat: the flags its journal and state files and the
 * resolver's files use, nothing else (no O_PATH, O_TMPFILE, O_DIRECT,
 * O_NOATIME, ...), and a creation mode of at most 0600.  The path is
 * behind a pointer, so where the file is cannot be checked here: the
 * process's uid (run_user, owner of state_dir/replication only) bounds it.
 */
static void
allow_hook_openat(scmp_filter_ctx ctx)
{
	const uint64_t flags = O_ACCMODE | O_CREAT | O_EXCL | O_TRUNC | O_APPEND |
			       O_CLOEXEC | O_NOFOLLOW | O_DIRECTORY | O_NONBLOCK |
			       O_NOCTTY | 0100000 /* O_LARGEFILE, kernel value */;

	if (seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(openat), 2,
			     SCMP_A2(SCMP_CMP_MASKED_EQ, ~flags, 0),
			     SCMP_A3(SCMP_CMP_MASKED_EQ, ~(uint64_t)0600, 0)) < 0)
		fatalx("seccomp_rule_add(openat)");
}

/*
 * Writers' openat: the flags of the safe walk, the Maildir files and the
 * index (O_PATH for the base directory), a creation mode of at most 0600;
 * mkdirat with a mode of at most 0700 (Maildir, tmp, new, cur, folders).
 */
static void
allow_writer_files(scmp_filter_ctx ctx)
{
	const uint64_t flags = O_ACCMODE | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC |
			       O_NOFOLLOW | O_DIRECTORY | O_NONBLOCK | O_NOCTTY |
			       O_PATH | 0100000 /* O_LARGEFILE, kernel value */;

	if (seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(openat), 2,
			     SCMP_A2(SCMP_CMP_MASKED_EQ, ~flags, 0),
			     SCMP_A3(SCMP_CMP_MASKED_EQ, ~(uint64_t)0600, 0)) < 0 ||
	    seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mkdirat), 1,
			     SCMP_A2(SCMP_CMP_MASKED_EQ, ~(uint64_t)0700, 0)) < 0)
		fatalx("seccomp_rule_add(writer openat)");
}

/*
 * seteuid writer: setresuid(-1, uid, -1) and setresgid(-1, gid, -1) with
 * uid, gid != 0, and setgroups of at most PSEP_MAX_GROUPS groups.  The
 * kernel reads each id as 32 bits, so the comparisons look at the low 32
 * bits only: a 0 there kills the process (SIGSYS), whatever the high bits
 * say; a real or saved id other than -1 (unchanged) matches no rule and
 * is killed by the default action.  What setgroups sets is behind a
 * pointer: that residual risk is in doc/security.md.
 */
static void
allow_setid(scmp_filter_ctx ctx)
{
	static const int sys[] = { SCMP_SYS(setresuid), SCMP_SYS(setresgid) };
	const scmp_datum_t lo = 0xffffffffu;
	size_t i;

	for (i = 0; i < sizeof(sys) / sizeof(sys[0]); i++) {
		if (seccomp_rule_add(ctx, SCMP_ACT_KILL_THREAD, sys[i], 1,
				     SCMP_A1(SCMP_CMP_MASKED_EQ, lo, 0)) < 0 ||
		    seccomp_rule_add(ctx, SCMP_ACT_ALLOW, sys[i], 2,
				     SCMP_A0(SCMP_CMP_MASKED_EQ, lo, lo),
				     SCMP_A2(SCMP_CMP_MASKED_EQ, lo, lo)) < 0)
			fatalx("seccomp_rule_add(set*id)");
	}
	if (seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(setgroups), 1,
			     SCMP_A0(SCMP_CMP_LE, PSEP_MAX_GROUPS)) < 0)
		fatalx("seccomp_rule_add(setgroups)");
}

/*
 * Writer template: the fork of a child (clone with exactly CLONE_PARENT
 * and SIGCHLD: no thread, no namespace, no shared memory) and what the
 * child does before its own filter: close the template's fds, name
 * itself, drop its bounding set, groups, ids and capabilities (capget,
 * capset, /proc/self/status through the writers' openat), set
 * NO_NEW_PRIVS and attach the writer-child filter.  No id 0 is accepted
 * by any set*id call (EPERM: the drop's own check that setuid(0) fails
 * ends there); setuid and setgid are never used to change ids.
 */
static void
allow_template(scmp_filter_ctx ctx)
{
	static const int prctl_ops[] = {
		PR_SET_NAME, PR_SET_KEEPCAPS, PR_CAPBSET_DROP, PR_CAPBSET_READ,
		PR_CAP_AMBIENT, PR_SET_NO_NEW_PRIVS, PR_GET_NO_NEW_PRIVS,
		PR_SET_DUMPABLE, PR_GET_SECUREBITS,
	};
	static const int sys[] = { SCMP_SYS(setresuid), SCMP_SYS(setresgid) };
	const scmp_datum_t lo = 0xffffffffu;
	size_t i;

	if (seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
			     SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)(CLONE_PARENT | SIGCHLD))) < 0 ||
	    seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(seccomp), 1,
			     SCMP_A0(SCMP_CMP_EQ, SECCOMP_SET_MODE_FILTER)) < 0 ||
	    seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(close_range), 0) < 0 ||
	    seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(capget), 0) < 0 ||
	    seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(capset), 0) < 0 ||
	    seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(setgroups), 1,
			     SCMP_A0(SCMP_CMP_LE, PSEP_MAX_GROUPS)) < 0 ||
	    seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(setuid), 0) < 0 ||
	    seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(setgid), 0) < 0)
		fatalx("seccomp_rule_add(template)");
	for (i = 0; i < sizeof(prctl_ops) / sizeof(prctl_ops[0]); i++)
		if (seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(prctl), 1,
				     SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)prctl_ops[i])) < 0)
			fatalx("seccomp_rule_add(template prctl)");
	for (i = 0; i < sizeof(sys) / sizeof(sys[0]); i++) {
		if (seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), sys[i], 1,
				     SCMP_A0(SCMP_CMP_MASKED_EQ, lo, 0)) < 0 ||
		    seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), sys[i], 1,
				     SCMP_A1(SCMP_CMP_MASKED_EQ, lo, 0)) < 0 ||
		    seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), sys[i], 1,
				     SCMP_A2(SCMP_CMP_MASKED_EQ, lo, 0)) < 0 ||
		    /* always true, but a condition on the first argument:
		     * libseccomp then tests it after the EPERM ones (an
		     * unconditional rule, or one on a later argument, is
		     * tested first and would allow id 0; the sandbox test
		     * checks the order) */
		    seccomp_rule_add(ctx, SCMP_ACT_ALLOW, sys[i], 1,
				     SCMP_A0(SCMP_CMP_LE, ~(scmp_datum_t)0)) < 0)
			fatalx("seccomp_rule_add(template set*id)");
	}
}

/* ioctl: only FIONBIO and FIONREAD (libevent). */
static void
allow_ioctl(scmp_filter_ctx ctx)
{
	if (seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
			     SCMP_A1(SCMP_CMP_EQ, FIONBIO)) < 0 ||
	    seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
			     SCMP_A1(SCMP_CMP_EQ, FIONREAD)) < 0)
		fatalx("seccomp_rule_add(ioctl)");
}

static scmp_filter_ctx
profile_build(enum psep_profile profile)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_KILL_PROCESS);

	if (ctx == NULL)
		fatalx("seccomp_init failed");
	/* A binary tree of syscall numbers instead of a linear list: fewer
	 * comparisons per system call, and the kernel's per-syscall action
	 * cache, computed by emulating the filter for every syscall number
	 * when a child attaches it, is built several times faster (that
	 * attach is part of every fork-mode cache miss). */
	if (seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2) < 0)
		fatalx("seccomp_attr_set(SCMP_FLTATR_CTL_OPTIMIZE)");
	ALLOW(ctx, sc_base);
	allow_fcntl(ctx);
	allow_mmap(ctx, profile == PSEP_PROFILE_REPL_HOOK);
#ifdef STOWD_SANITIZER
	ALLOW(ctx, sc_sanitizer);
#endif
	switch (profile) {
	case PSEP_PROFILE_LMTPD:
		ALLOW(ctx, sc_lmtpd);
		allow_ioctl(ctx);
		break;
	case PSEP_PROFILE_REPLD:
		ALLOW(ctx, sc_lmtpd);
		ALLOW(ctx, sc_repld);
		allow_ioctl(ctx);
		break;
	case PSEP_PROFILE_REPL_HOOK:
		ALLOW(ctx, sc_lmtpd);
		ALLOW(ctx, sc_repl_hook);
		allow_hook_openat(ctx);
		allow_socket(ctx);
		allow_ioctl(ctx);
		break;
	case PSEP_PROFILE_WRITER_SETEUID:
		ALLOW(ctx, sc_writer);
		allow_writer_files(ctx);
		allow_setid(ctx);
		break;
	case PSEP_PROFILE_WRITER_CHILD:
		ALLOW(ctx, sc_writer);
		allow_writer_files(ctx);
		break;
	case PSEP_PROFILE_WRITER_TEMPLATE:
		ALLOW(ctx, sc_writer);
		allow_writer_files(ctx);
		allow_template(ctx);
		break;
	case PSEP_PROFILE_NONE:
		break;
	}
	return ctx;
}

/* BPF programs compiled once (psep_sandbox_prepare) and inherited by every
 * child, so a fork-mode child does not compile its filter again. */
#define PROFILE_LAST PSEP_PROFILE_WRITER_TEMPLATE
static struct sock_fprog compiled[PROFILE_LAST + 1];

static void
profile_compile(enum psep_profile profile)
{
	scmp_filter_ctx ctx = profile_build(profile);
	struct stat st;
	int fd = memfd_create("stowd-bpf", MFD_CLOEXEC);

	if (fd < 0)
		fatal("memfd_create");
	if (seccomp_export_bpf(ctx, fd) < 0 || fstat(fd, &st) < 0 ||
	    st.st_size <= 0 || st.st_size % (off_t)sizeof(struct sock_filter) != 0 ||
	    st.st_size / (off_t)sizeof(struct sock_filter) > BPF_MAXINSNS)
		fatalx("cannot export the seccomp filter of profile %d", (int)profile);
	compiled[profile].filter = xmalloc((size_t)st.st_size);
	if (pread(fd, compiled[profile].filter, (size_t)st.st_size, 0) != st.st_size)
		fatal("read back the seccomp filter");
	compiled[profile].len = (unsigned short)(st.st_size / (off_t)sizeof(struct sock_filter));
	close(fd);
	seccomp_release(ctx);
}

void
psep_sandbox_prepare(void)
{
	enum psep_profile p;

	for (p = PSEP_PROFILE_LMTPD; p <= PROFILE_LAST; p++)
		if (compiled[p].filter == NULL)
			profile_compile(p);
}

void
psep_sandbox_apply(enum psep_profile profile)
{
	if (profile == PSEP_PROFILE_NONE)
		return;
	if (compiled[profile].filter == NULL)
		profile_compile(profile);
	/* Without CAP_SYS_ADMIN the kernel wants NO_NEW_PRIVS first. */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		fatal("PR_SET_NO_NEW_PRIVS");
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &compiled[profile]) < 0)
		fatal("seccomp(SECCOMP_SET_MODE_FILTER)");
}
