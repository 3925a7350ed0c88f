/* SPDX-License-Identifier: MIT */
/*
 * tests/lib/fake_notifyd.c - a stand-in for stowd's process life only, for
 * the self-test of tests/lib/harness.c: sd_notify READY/RELOADING/STOPPING,
 * one child that drops to nobody (looks like lmtpd) and one that stays
 * root (looks like a seteuid writer).  It serves no LMTP.
 *
 * Runs in:  the unit suite, started by harness_start() as "-F -c FILE".
 * Env:      FAKE_NOTIFYD_EXIT=N exit N before READY; FAKE_NOTIFYD_LINGER
 *           leaves the children running on SIGTERM; FAKE_NOTIFYD_IGNORE_TERM
 *           ignores SIGTERM.
 */
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

static void
notify(const char *text)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un un = { .sun_family = AF_UNIX };
	int fd;

	if (path == NULL)
		return;
	snprintf(un.sun_path, sizeof(un.sun_path), "%s", path);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	(void)sendto(fd, text, strlen(text), 0, (struct sockaddr *)&un, sizeof(un));
	close(fd);
}

/* A child that drops (or not) and then says so on the pipe: READY=1
 * comes only after both children are set up, as stowd promises. */
static pid_t
child(int drop)
{
	int p[2];
	pid_t pid;
	sigset_t none;
	char c;

	if (pipe(p) < 0)
		exit(1);
	pid = fork();
	if (pid != 0) {
		close(p[1]);
		if (read(p[0], &c, 1) != 1)
			exit(1);
		close(p[0]);
		return pid;
	}
	close(p[0]);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (drop && (setgroups(0, NULL) < 0 || setresgid(65534, 65534, 65534) < 0 ||
		     setresuid(65534, 65534, 65534) < 0))
		_exit(1);
	if (write(p[1], "x", 1) != 1)
		_exit(1);
	close(p[1]);
	for (;;)
		pause();
}

int
main(void)
{
	const char *ex = getenv("FAKE_NOTIFYD_EXIT");
	pid_t kids[2];
	sigset_t set;
	int sig;

	if (ex != NULL)
		return atoi(ex);
	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigprocmask(SIG_BLOCK, &set, NULL);
	kids[0] = child(1);
	kids[1] = child(0);
	fprintf(stderr, "fake_notifyd: children %d %d\n", (int)kids[0], (int)kids[1]);
	notify("STATUS=starting\nREADY=1");
	for (;;) {
		if (sigwait(&set, &sig) != 0)
			continue;
		if (sig == SIGHUP) {
			notify("RELOADING=1\nMONOTONIC_USEC=1");
			notify("READY=1");
			continue;
		}
		if (getenv("FAKE_NOTIFYD_IGNORE_TERM") != NULL)
			continue;
		notify("STOPPING=1");
		if (getenv("FAKE_NOTIFYD_LINGER") == NULL) {
			for (int i = 0; i < 2; i++) {
				kill(kids[i], SIGTERM);
				waitpid(kids[i], NULL, 0);
			}
		}
		return 0;
	}
}
