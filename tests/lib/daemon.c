/* SPDX-License-Identifier: MIT */
/*
 * tests/lib/daemon.c - the life of one stowd instance under the harness:
 * start, readiness (sd_notify), signals, reload, stop.
 *
 * Runs in:  integration test programs, as root.
 * Trust:    stowd is under test: it runs in its own process group (so
 *           leftovers can be found and killed) and every wait is bounded.
 * Order:    the notify socket exists before stowd is forked (harness_new);
 *           READY=1 is the only start signal, never a delay.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sched.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tests/lib/harness.h"

static int
pidfd_open_compat(pid_t pid)
{
#ifdef SYS_pidfd_open
	return (int)syscall(SYS_pidfd_open, pid, 0);
#else
	(void)pid;
	errno = ENOSYS;
	return -1;
#endif
}

/* opts.syslog, in the child before exec: a mount namespace of its own
 * whose /dev is a tmpfs with the usual nodes and /dev/log bound to the
 * harness's socket at sock.  0 or -1. */
static int
private_dev_log(const char *sock)
{
	static const struct { const char *name; unsigned maj, min; } nodes[] = {
		{ "null", 1, 3 }, { "zero", 1, 5 }, { "full", 1, 7 },
		{ "random", 1, 8 }, { "urandom", 1, 9 }, { "tty", 5, 0 },
	};
	char path[64];
	int fd;

	if (unshare(CLONE_NEWNS) < 0 ||
	    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
	    mount("tmpfs", "/dev", "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755,size=64k") < 0)
		return -1;
	for (size_t i = 0; i < sizeof(nodes) / sizeof(nodes[0]); i++) {
		snprintf(path, sizeof(path), "/dev/%s", nodes[i].name);
		if (mknod(path, S_IFCHR | 0666, makedev(nodes[i].maj, nodes[i].min)) < 0 ||
		    chmod(path, 0666) < 0)
			return -1;
	}
	if (symlink("/proc/self/fd", "/dev/fd") < 0)
		return -1;
	fd = open("/dev/log", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
	if (fd < 0)
		return -1;
	close(fd);
	return mount(sock, "/dev/log", NULL, MS_BIND, NULL);
}

static void
child_exec(const struct harness *h, int logfd)
{
	const char *argv[] = { h->bin, "-F", "-c", h->conf_path, NULL };
	int null;

	if (h->syslog_fd >= 0 && private_dev_log(h->syslog_path) < 0) {
		dprintf(logfd, "harness: private /dev/log: %s\n", strerror(errno));
		_exit(126);
	}
	null = open("/dev/null", O_RDONLY);

	setpgid(0, 0);
	if (null < 0 || dup2(null, 0) < 0 || dup2(logfd, 1) < 0 || dup2(logfd, 2) < 0)
		_exit(127);
	if (syscall(SYS_close_range, 3U, ~0U, 0U) < 0) {
		for (int fd = 3; fd < 1024; fd++)
			close(fd);
	}
	sigset_t all;

	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	signal(SIGPIPE, SIG_DFL);
	setenv("NOTIFY_SOCKET", h->notify_path, 1);
	execv(argv[0], (char *const *)argv);
	fprintf(stderr, "harness: exec %s: %s\n", argv[0], strerror(errno));
	_exit(127);
}

int
harness_start(struct harness *h)
{
	char seen[512] = "";
	int logfd;
	pid_t pid;

	if (h->pid > 0) {
		fprintf(stderr, "harness: stowd already running\n");
		return -1;
	}
	harness_kill_group(h);      /* leftovers of an earlier start */
	harness_drain_notify(h);
	logfd = open(h->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (logfd < 0)
		return -1;
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		close(logfd);
		return -1;
	}
	if (pid == 0)
		child_exec(h, logfd);
	close(logfd);
	setpgid(pid, pid);
	h->pid = pid;
	h->pgrp = pid;
	h->pidfd = pidfd_open_compat(pid);
	if (harness_wait_notify(h, "READY=1", HARNESS_READY_TIMEOUT_MS, seen,
				sizeof(seen)) < 0) {
		fprintf(stderr, "harness: stowd (%s) not ready; notifications: %s\n",
			h->bin, seen[0] ? seen : "none");
		harness_dump_log(h, 0);
		return -1;
	}
	return 0;
}

/* Reap the supervisor if it exited.  true if it did. */
static bool
reap(struct harness *h, int *status_out)
{
	int st;
	pid_t r;

	if (h->pid <= 0)
		return true;
	r = waitpid(h->pid, &st, WNOHANG);
	if (r == 0 || (r < 0 && errno == EINTR))
		return false;
	h->exit_status = r == h->pid ? st : -1;
	if (status_out != NULL)
		*status_out = h->exit_status;
	h->pid = 0;
	if (h->pidfd >= 0)
		close(h->pidfd);
	h->pidfd = -1;
	return true;
}

bool
harness_alive(struct harness *h)
{
	return !reap(h, NULL);
}

int
harness_wait_exit(struct harness *h, int timeout_ms, int *status_out)
{
	int64_t deadline = harness_mono_ms() + timeout_ms;

	for (;;) {
		int64_t left = deadline - harness_mono_ms();

		if (reap(h, status_out))
			return 0;
		if (left <= 0) {
			errno = ETIMEDOUT;
			return -1;
		}
		if (h->pidfd >= 0) {
			struct pollfd p = { .fd = h->pidfd, .events = POLLIN };

			(void)poll(&p, 1, (int)left);
		} else {
			struct timespec ts = { 0, 10 * 1000 * 1000 };

			nanosleep(&ts, NULL);
		}
	}
}

int
harness_signal(struct harness *h, int sig)
{
	if (h->pid <= 0) {
		fprintf(stderr, "harness: stowd is not running\n");
		errno = ESRCH;
		return -1;
	}
	return kill(h->pid, sig);
}

int
harness_stop(struct harness *h, int timeout_ms, int *status_out)
{
	int st = 0;

	if (timeout_ms <= 0)
		timeout_ms = HARNESS_STOP_TIMEOUT_MS;
	if (h->pid <= 0) {
		if (status_out != NULL)
			*status_out = h->exit_status;
		return 0;
	}
	kill(h->pid, SIGTERM);
	if (harness_wait_exit(h, timeout_ms, &st) == 0) {
		if (status_out != NULL)
			*status_out = st;
		return 0;
	}
	fprintf(stderr, "harness: stowd did not exit %d ms after SIGTERM, killing it\n",
		timeout_ms);
	kill(-h->pid, SIGKILL);
	kill(h->pid, SIGKILL);
	harness_wait_exit(h, HARNESS_STOP_TIMEOUT_MS, &st);
	if (status_out != NULL)
		*status_out = st;
	return -1;
}

void
harness_drain_notify(struct harness *h)
{
	char buf[4096];

	while (recv(h->notify_fd, buf, sizeof(buf), MSG_DONTWAIT) >= 0)
		;
}

/* Does datagram d hold the line state?  Appends its lines to seen. */
static bool
notify_has(char *d, const char *state, char *seen, size_t seen_size)
{
	bool found = false;
	char *save = NULL, *l;

	for (l = strtok_r(d, "\n", &save); l != NULL; l = strtok_r(NULL, "\n", &save)) {
		if (seen != NULL && strlen(seen) + strlen(l) + 2 < seen_size) {
			strcat(seen, l);
			strcat(seen, ";");
		}
		if (strcmp(l, state) == 0)
			found = true;
	}
	return found;
}

static int
wait_notify(struct harness *h, const char *state, int timeout_ms, char *seen,
	    size_t seen_size, bool quiet)
{
	int64_t deadline = harness_mono_ms() + timeout_ms;
	char buf[4097];
	ssize_t n;

	for (;;) {
		struct pollfd p[2] = { { .fd = h->notify_fd, .events = POLLIN },
				       { .fd = h->pidfd, .events = POLLIN } };
		int64_t left = deadline - harness_mono_ms();

		n = recv(h->notify_fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);
		if (n >= 0) {
			buf[n] = '\0';
			if (notify_has(buf, state, seen, seen_size))
				return 0;
			continue;
		}
		if (!harness_alive(h)) {
			fprintf(stderr, "harness: stowd exited (wait status 0x%x) "
				"while waiting for %s\n", (unsigned)h->exit_status, state);
			return -1;
		}
		if (left <= 0) {
			if (!quiet)
				fprintf(stderr, "harness: no %s from stowd within %d ms\n",
					state, timeout_ms);
			errno = ETIMEDOUT;
			return -1;
		}
		/* Without a pidfd, wake up now and then to check the pid. */
		(void)poll(p, h->pidfd >= 0 ? 2 : 1,
			   h->pidfd >= 0 ? (int)left : (left > 100 ? 100 : (int)left));
	}
}

int
harness_wait_notify(struct harness *h, const char *state, int timeout_ms,
		    char *seen, size_t seen_size)
{
	return wait_notify(h, state, timeout_ms, seen, seen_size, false);
}

int
harness_poll_notify(struct harness *h, const char *state, int timeout_ms,
		    char *seen, size_t seen_size)
{
	return wait_notify(h, state, timeout_ms, seen, seen_size, true);
}

int
harness_reload(struct harness *h)
{
	char seen[512] = "";

	harness_drain_notify(h);
	if (harness_signal(h, SIGHUP) < 0)
		return -1;
	if (harness_wait_notify(h, "RELOADING=1", HARNESS_READY_TIMEOUT_MS, seen,
				sizeof(seen)) < 0 ||
	    harness_wait_notify(h, "READY=1", HARNESS_READY_TIMEOUT_MS, seen,
				sizeof(seen)) < 0) {
		fprintf(stderr, "harness: reload: notifications seen: %s\n",
			seen[0] ? seen : "none");
		return -1;
	}
	return 0;
}
