/* SPDX-License-Identifier: MIT */
/*
 * privsep/sandbox.c - the seccomp allow-lists of every sandboxed role, in
 * one place, syscall by syscall.  Default action: kill the process.
 *
 * Runs in:  a child, after its privilege drop, before it reads a request.
 * Trust:    nothing that executes programs, traces other processes,
 *           mounts, loads BPF or changes ids (except set*id in the seteuid
 *           writer) is on any list.  Only repl-hook creates sockets, and
 *           only AF_INET, AF_INET6 and AF_UNIX ones.
 */
#include <errno.h>
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
	SCMP_SYS(fcntl),                        /* O_NONBLOCK, seals check */
	SCMP_SYS(brk), SCMP_SYS(mmap),          /* malloc */
	SCMP_SYS(munmap), SCMP_SYS(mremap),
	SCMP_SYS(madvise), SCMP_SYS(mprotect),  /* malloc arenas */
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
	SCMP_SYS(connect),
	SCMP_SYS(openat),                       /* journal files */
	SCMP_SYS(mkdirat), SCMP_SYS(getdents64),
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
	SCMP_SYS(openat), SCMP_SYS(openat2),    /* safe walk, O_NOFOLLOW/RESOLVE_* */
	SCMP_SYS(mkdirat),                      /* Maildir, tmp, new, cur */
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
	SCMP_SYS(fchmod),
	SCMP_SYS(memfd_create),                 /* LIST/SYNC/GUIDS reply data */
};

/* seteuid writer only: switch euid/egid/groups per request. */
static const int sc_setid[] = {
	SCMP_SYS(setresuid), SCMP_SYS(setresgid),
	SCMP_SYS(setgroups),
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
		allow_socket(ctx);
		allow_ioctl(ctx);
		break;
	case PSEP_PROFILE_WRITER_SETEUID:
		ALLOW(ctx, sc_writer);
		ALLOW(ctx, sc_setid);
		break;
	case PSEP_PROFILE_WRITER_CHILD:
		ALLOW(ctx, sc_writer);
		break;
	case PSEP_PROFILE_NONE:
		break;
	}
	return ctx;
}

/* BPF programs compiled once (psep_sandbox_prepare) and inherited by every
 * child, so a fork-mode child does not compile its filter again. */
#define PROFILE_LAST PSEP_PROFILE_REPLD
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
