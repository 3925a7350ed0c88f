/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/privsep/test_sandbox_allowed.c - the calls each seccomp
 * profile must allow, the filter as /proc shows it, and PSEP_PROFILE_NONE
 * (the second half of the sandbox test program; see test_sandbox.c).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <linux/openat2.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/random.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/utsname.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "privsep/privsep.h"
#include "pstatus.h"
#include "sandbox_test.h"

/* ---- allowed calls ---------------------------------------------------- */

/* Every sandboxed process: memory, time, pipes, IPC with the supervisor. */
static int
common_ok(const struct sb_env *e)
{
	struct psep_msg m;
	const struct psep_log hdr = { .level = PSEP_LOG_INFO, .text_len = 2 };
	unsigned char log[sizeof(struct psep_log) + 2];
	const char *why;
	const struct timespec zero = { 0, 0 };
	struct timespec ts;
	unsigned char rnd[16];
	struct stat st;
	char c = 'x', *big, *small;

	if (getpid() <= 0 || syscall(SYS_gettid) <= 0)
		return 1;
	if (clock_gettime(CLOCK_MONOTONIC, &ts) < 0 || time(NULL) == (time_t)-1)
		return 2;
	if (nanosleep(&zero, NULL) < 0)
		return 3;
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		return 4;
	big = malloc(4 << 20);
	small = malloc(64);
	if (big == NULL || small == NULL)
		return 5;
	memset(big, 1, 4 << 20);
	big = realloc(big, 8 << 20);
	if (big == NULL)
		return 6;
	free(big);
	free(small);
	if (write(e->pipe[1], &c, 1) != 1 || read(e->pipe[0], &c, 1) != 1)
		return 7;
	if (fstat(e->ipc[1], &st) < 0 || fcntl(e->ipc[1], F_GETFL) < 0)
		return 8;
	if (lseek(e->body, 0, SEEK_SET) != 0)
		return 9;
	/* The parent queued a SHUTDOWN; answer with a LOG. */
	if (psep_msg_recv(e->ipc[1], PSEP_ROLE_SUPERVISOR, PSEP_STATE_READY, &m, &why) < 0 ||
	    m.hdr.type != PSEP_SHUTDOWN)
		return 10;
	memcpy(log, &hdr, sizeof(hdr));
	memcpy(log + sizeof(hdr), "ok", 2);
	if (psep_msg_send(e->ipc[1], PSEP_LOG, 5, log, sizeof(log), -1) < 0)
		return 11;
	if (close(e->pipe[1]) < 0)
		return 12;
	return 0;
}

/* lmtpd and repl-hook: body spool in a sealed memfd, client socket I/O,
 * libevent's epoll and ioctls. */
static int
lmtpd_ok(const struct sb_env *e)
{
	struct psep_deliver_req r;
	struct epoll_event ev = { .events = EPOLLIN };
	struct sockaddr_storage sa;
	socklen_t salen = sizeof(sa);
	char buf[64];
	int fd, ep, n = 0, one = 1;

	fd = memfd_create("body", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return 20;
	if (write(fd, BODY, 4) != 4 || pwrite(fd, &BODY[4], BODY_LEN - 4, 4) !=
	    (ssize_t)(BODY_LEN - 4))
		return 21;
	if (ftruncate(fd, BODY_LEN) < 0 || fcntl(fd, F_ADD_SEALS, ALL_SEALS) < 0 ||
	    fcntl(fd, F_GET_SEALS) != ALL_SEALS)
		return 22;
	if (pread(fd, buf, BODY_LEN, 0) != (ssize_t)BODY_LEN)
		return 23;
	/* The spooled body passes the supervisor's decoder (parent checks). */
	memset(&r, 0, sizeof(r));
	strcpy(r.session, "s1");
	strcpy(r.address, "user@example.org");
	r.body_size = BODY_LEN;
	r.body_vsize = BODY_LEN;
	if (psep_msg_send(e->ipc[1], PSEP_DELIVER_REQ, 6, &r, sizeof(r), fd) < 0)
		return 24;
	close(fd);
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, e->stream[1], &ev) < 0)
		return 25;
	if (send(e->stream[0], "hi", 2, MSG_DONTWAIT | MSG_NOSIGNAL) != 2)
		return 26;
	if (epoll_wait(ep, &ev, 1, 0) != 1)
		return 27;
	if (ioctl(e->stream[1], FIONREAD, &n) < 0 || n != 2 ||
	    ioctl(e->stream[1], FIONBIO, &one) < 0)
		return 28;
	if (recv(e->stream[1], buf, sizeof(buf), 0) != 2)
		return 29;
	if (getsockname(e->stream[1], (struct sockaddr *)&sa, &salen) < 0 ||
	    getpeername(e->stream[1], (struct sockaddr *)&sa, &salen) < 0)
		return 30;
	if (setsockopt(e->stream[1], SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one)) < 0 ||
	    getsockopt(e->stream[1], SOL_SOCKET, SO_ERROR, &n, &salen) < 0)
		return 31;
	if (shutdown(e->stream[0], SHUT_WR) < 0)
		return 32;
	close(ep);
	return 0;
}

/* Writers: a Maildir delivery below a directory fd. */
static int
writer_ok(const struct sb_env *e)
{
	struct open_how how = { .flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC,
				.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS };
	struct statx sx;
	struct stat st;
	uid_t ru, eu, su;
	gid_t rg, eg, sg;
	int md, tmp, new, fd, d2;
	DIR *dir;
	off_t off = 0;

	if (mkdirat(e->dir, "Maildir", 0700) < 0)
		return 40;
	md = (int)syscall(SYS_openat2, e->dir, "Maildir", &how, sizeof(how));
	if (md < 0 && errno != ENOSYS)
		return 41;
	if (md < 0)
		md = openat(e->dir, "Maildir", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (md < 0 || mkdirat(md, "tmp", 0700) < 0 || mkdirat(md, "new", 0700) < 0 ||
	    mkdirat(md, "cur", 0700) < 0)
		return 42;
	tmp = openat(md, "tmp", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	new = openat(md, "new", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (tmp < 0 || new < 0)
		return 43;
	fd = openat(tmp, "1.x", O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return 44;
	if (sendfile(fd, e->body, &off, BODY_LEN) != (ssize_t)BODY_LEN)
		return 45;
	off = 0;
	if (copy_file_range(e->body, &off, fd, NULL, BODY_LEN, 0) < 0 && errno != EXDEV)
		return 46;
	if (pwrite(fd, "X", 1, 0) != 1 || ftruncate(fd, BODY_LEN) < 0)
		return 47;
	if (flock(fd, LOCK_EX) < 0 || fsync(fd) < 0 || fdatasync(fd) < 0)
		return 48;
	if (fstat(fd, &st) < 0 || st.st_size != (off_t)BODY_LEN || close(fd) < 0)
		return 49;
	if (linkat(tmp, "1.x", new, "1.x", 0) < 0 || unlinkat(tmp, "1.x", 0) < 0)
		return 50;
	if (renameat2(new, "1.x", new, "2.x", RENAME_NOREPLACE) < 0 ||
	    renameat(new, "2.x", new, "3.x") < 0)
		return 51;
	if (fstatat(new, "3.x", &st, AT_SYMLINK_NOFOLLOW) < 0 ||
	    statx(new, "3.x", AT_SYMLINK_NOFOLLOW, STATX_SIZE, &sx) < 0 ||
	    sx.stx_size != BODY_LEN)
		return 52;
	if (fsync(new) < 0)
		return 53;
	d2 = openat(md, "new", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	dir = d2 < 0 ? NULL : fdopendir(d2);
	if (dir == NULL || readdir(dir) == NULL || closedir(dir) < 0)
		return 54;
	if (getresuid(&ru, &eu, &su) < 0 || getresgid(&rg, &eg, &sg) < 0 ||
	    getuid() != ru || geteuid() != eu || getgid() != rg || getegid() != eg)
		return 55;
	close(tmp);
	close(new);
	close(md);
	return 0;
}

/* Writers: what storage's replication operations add (reply memfds,
 * times and modes of copied messages). */
static int
writer_repl_ok(const struct sb_env *e)
{
	const struct timespec times[2] = { { 1, 0 }, { 2, 0 } };
	struct stat st;
	int fd;

	fd = openat(e->dir, "m", O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0 || futimens(fd, times) < 0)
		return 70;
	if (utimensat(e->dir, "m", times, AT_SYMLINK_NOFOLLOW) < 0 ||
	    fstat(fd, &st) < 0 || st.st_mtime != 2 || (st.st_mode & 07777) != 0600)
		return 71;
	close(fd);
	fd = memfd_create("reply", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0 || ftruncate(fd, 4) < 0 || pwrite(fd, "list", 4, 0) != 4 ||
	    fcntl(fd, F_ADD_SEALS, ALL_SEALS) < 0 || fcntl(fd, F_GET_SEALS) != ALL_SEALS)
		return 72;
	close(fd);
	if (unlinkat(e->dir, "m", 0) < 0)
		return 73;
	return 0;
}

/* repld: literals from a sealed memfd to the peer, file data through a
 * pipe. */
static int
repld_ok(const struct sb_env *e)
{
	char buf[64];
	off_t off = 0;
	loff_t loff = 0;

	if (fcntl(e->body, F_GET_SEALS) != ALL_SEALS)
		return 80;
	if (sendfile(e->stream[1], e->body, &off, BODY_LEN) != (ssize_t)BODY_LEN ||
	    recv(e->stream[0], buf, sizeof(buf), 0) != (ssize_t)BODY_LEN)
		return 81;
	if (splice(e->body, &loff, e->pipe[1], NULL, BODY_LEN, 0) != (ssize_t)BODY_LEN ||
	    read(e->pipe[0], buf, sizeof(buf)) != (ssize_t)BODY_LEN)
		return 82;
	return 0;
}

/* repl-hook: outgoing TCP, numeric getaddrinfo, its journal files. */
static int
repl_hook_ok(const struct sb_env *e)
{
	const struct addrinfo hints = { .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV,
					.ai_family = AF_UNSPEC,
					.ai_socktype = SOCK_STREAM };
	struct addrinfo *ai = NULL;
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = 0,
				   .sin_addr = { htonl(INADDR_LOOPBACK) } };
	socklen_t len = sizeof(int);
	int fd, err = 0, jfd;

	if (getaddrinfo("127.0.0.1", "2525", &hints, &ai) != 0 || ai == NULL)
		return 90;
	freeaddrinfo(ai);
	if (getaddrinfo("::1", "2525", &hints, &ai) != 0 || ai == NULL)
		return 91;
	freeaddrinfo(ai);
	/* A host name through nsswitch (files: /etc/hosts, nscd probe);
	 * found or not, the call must return. */
	{
		struct addrinfo named = hints;

		named.ai_flags = AI_NUMERICSERV;
		struct utsname u;

		if (getaddrinfo("localhost", "2525", &named, &ai) == 0)
			freeaddrinfo(ai);
		/* what a DNS look-up adds */
		if (uname(&u) < 0 || poll(NULL, 0, 0) < 0)
			return 101;
	}
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return 92;
	/* Port 0 is never listening: refused or in progress, both returned. */
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0)
		return 93;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		return 94;
	close(fd);
	fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0)
		close(fd);
	else if (errno != EAFNOSUPPORT)
		return 95;
	/* the journal directory is the supervisor's (e->dir here) */
	jfd = openat(e->dir, "j.tmp",
		     O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (jfd < 0 || flock(jfd, LOCK_EX | LOCK_NB) < 0 ||
	    pwrite(jfd, "e1\n", 3, 0) != 3 || fdatasync(jfd) < 0 || fsync(jfd) < 0 ||
	    ftruncate(jfd, 2) < 0)
		return 97;
	close(jfd);
	if (renameat(e->dir, "j.tmp", e->dir, "j") < 0 ||
	    renameat2(e->dir, "j", e->dir, "k", RENAME_NOREPLACE) < 0)
		return 98;
	jfd = openat(e->dir, "k", O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (jfd < 0 || close(jfd) < 0)
		return 99;
	if (unlinkat(e->dir, "k", 0) < 0)
		return 100;
	return 0;
}

/* The seteuid writer switches ids per request. */
static int
setid_ok(const struct sb_env *e)
{
	(void)e;
	if (setresuid((uid_t)-1, (uid_t)-1, (uid_t)-1) < 0 ||
	    setresgid((gid_t)-1, (gid_t)-1, (gid_t)-1) < 0)
		return 60;
	/* Permitted by the filter; EPERM without CAP_SETGID. */
	if (setgroups(0, NULL) < 0 && errno != EPERM)
		return 61;
	/* From one user to the next: only the effective id changes. */
	if ((setresgid((gid_t)-1, 65534, (gid_t)-1) < 0 && errno != EPERM) ||
	    (setresuid((uid_t)-1, 65534, (uid_t)-1) < 0 && errno != EPERM))
		return 62;
	return 0;
}

struct allowed {
	const char *name;
	int (*fn)(const struct sb_env *);
	unsigned profiles;
};

static const struct allowed allowed[] = {
	{ "memory, time, pipes, IPC", common_ok, ALL_PROFILES },
	{ "memfd spool, client socket, epoll", lmtpd_ok, LMTPD_LIKE },
	{ "Maildir I/O below a directory fd", writer_ok, WRITERS },
	{ "replication operations in a writer", writer_repl_ok, WRITERS },
	{ "repld: sendfile, splice of literals", repld_ok, PB(PSEP_PROFILE_REPLD) },
	{ "repl-hook: TCP out, getaddrinfo, journal", repl_hook_ok,
	  PB(PSEP_PROFILE_REPL_HOOK) },
	{ "setresuid/setresgid/setgroups", setid_ok, PB(PSEP_PROFILE_WRITER_SETEUID) },
};

/* What the parent must find on the IPC socket after a child ran fn. */
static void
check_child_messages(const struct sb_env *e, int (*fn)(const struct sb_env *))
{
	struct psep_msg m;
	const char *why = "";

	if (fn == common_ok) {
		if (psep_msg_recv(e->ipc[0], PSEP_ROLE_LMTPD, PSEP_STATE_READY, &m, &why) < 0)
			fail_msg("LOG from the sandboxed child rejected: %s", why);
		assert_int_equal(m.hdr.type, PSEP_LOG);
		assert_int_equal(m.u.log.text_len, 2);
		assert_memory_equal(m.u.log.text, "ok", 2);
	} else if (fn == lmtpd_ok) {
		if (psep_msg_recv(e->ipc[0], PSEP_ROLE_LMTPD, PSEP_STATE_READY, &m, &why) < 0)
			fail_msg("DELIVER_REQ from the sandboxed child rejected: %s", why);
		assert_int_equal(m.hdr.type, PSEP_DELIVER_REQ);
		assert_true(m.fd >= 0);
		psep_msg_clear(&m);
	}
}

void
test_allowed_calls_work_every_profile(void **state)
{
	char desc[96];
	size_t i, k;
	int st;

	(void)state;
	for (i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++) {
		for (k = 0; k < NPROFILES; k++) {
			struct sb_env e;

			if (!(allowed[i].profiles & PB(profiles[k].profile)))
				continue;
			env_open(&e);
			assert_int_equal(psep_msg_send(e.ipc[0], PSEP_SHUTDOWN, 1, NULL, 0, -1), 0);
			st = run_sandboxed(profiles[k].profile, allowed[i].fn, &e);
			if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
				env_close(&e);
				fail_msg("profile %s: %s: %s", profiles[k].name, allowed[i].name,
					 describe(st, desc, sizeof(desc)));
			}
			check_child_messages(&e, allowed[i].fn);
			env_close(&e);
		}
	}
}

/* ---- /proc/<pid>/status of a sandboxed child -------------------------- */

struct sync_env {
	int ready[2];  /* child writes one byte once the filter is in */
	int go[2];     /* parent writes one byte to let the child exit */
};

static void
status_child(enum psep_profile profile, const struct sync_env *s)
{
	char c = 'r';

	child_prepare();
	psep_sandbox_apply(profile);
	if (write(s->ready[1], &c, 1) != 1 || read(s->go[0], &c, 1) != 1)
		_exit(2);
	_exit(0);
}

static void
check_status_while_paused(enum psep_profile profile, const char *name,
			  const char *want_seccomp)
{
	struct sync_env s;
	char status[PSTATUS_MAX], v[64], c, desc[96];
	pid_t pid;
	int st;

	assert_int_equal(pipe2(s.ready, O_CLOEXEC), 0);
	assert_int_equal(pipe2(s.go, O_CLOEXEC), 0);
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		status_child(profile, &s);
	close(s.ready[1]);
	close(s.go[0]);
	if (read(s.ready[0], &c, 1) != 1) {
		assert_int_equal(waitpid(pid, &st, 0), pid);
		fail_msg("%s: child did not reach its pause: %s", name,
			 describe(st, desc, sizeof(desc)));
	}
	assert_int_equal(pstatus_read(pid, status, sizeof(status)), 0);
	assert_int_equal(write(s.go[1], "g", 1), 1);
	close(s.go[1]);
	close(s.ready[0]);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		fail_msg("%s: %s", name, describe(st, desc, sizeof(desc)));
	assert_non_null(pstatus_field(status, "Seccomp", v, sizeof(v)));
	if (strcmp(v, want_seccomp) != 0)
		fail_msg("%s: Seccomp: %s, want %s", name, v, want_seccomp);
	assert_non_null(pstatus_field(status, "NoNewPrivs", v, sizeof(v)));
	if (strcmp(v, "1") != 0)
		fail_msg("%s: NoNewPrivs: %s, want 1", name, v);
}

void
test_proc_status_shows_filter_mode_and_no_new_privs_every_profile(void **state)
{
	size_t k;

	(void)state;
	for (k = 0; k < NPROFILES; k++)
		check_status_while_paused(profiles[k].profile, profiles[k].name, "2");
}

void
test_profile_none_installs_no_filter(void **state)
{
	(void)state;
	check_status_while_paused(PSEP_PROFILE_NONE, "none", "0");
}

