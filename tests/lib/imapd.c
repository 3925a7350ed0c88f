/* SPDX-License-Identifier: MIT */
/*
 * tests/lib/imapd.c - start, probe and stop a private Dovecot IMAP server
 * for the integration tests; run doveadm against it.
 *
 * Runs in:  integration test programs, as root.
 * Trust:    Dovecot runs as a child in its own process group; readiness is
 *           the IMAP greeting on its port, exit is watched through a pidfd;
 *           the directory is removed only if it has our mkdtemp prefix.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/lib/harness.h"
#include "tests/lib/imapc.h"
#include "tests/lib/imapd.h"

#define IMAPD_PREFIX "/tmp/stowd-imapd."
#define IMAPD_PORT_TRIES 3
#define IMAPD_PROBE_TIMEOUT_MS 500
#define IMAPD_PROBE_STEP_MS 5
#define IMAPD_MAX_ARGS 32

bool
imapd_installed(void)
{
	return access(IMAPD_BIN, X_OK) == 0 && access(IMAPD_DOVEADM_BIN, X_OK) == 0;
}

int
imapd_passwd_write(const char *path, const struct imapd_user *u, size_t n)
{
	FILE *f = fopen(path, "we");
	size_t i;

	if (f == NULL)
		goto fail;
	for (i = 0; i < n; i++)
		fprintf(f, "%s:{PLAIN}%s:%u:%u::%s::%s\n", u[i].name, u[i].password,
			(unsigned)u[i].uid, (unsigned)u[i].gid, u[i].home,
			u[i].extra != NULL ? u[i].extra : "");
	if (fclose(f) != 0 || chmod(path, 0644) < 0)
		goto fail;
	return 0;
fail:
	fprintf(stderr, "imapd: write %s: %s\n", path, strerror(errno));
	return -1;
}

/* ---- dovecot.conf ---------------------------------------------------- */

static void
conf_core(FILE *f, const struct imapd *d, const struct imapd_opts *o)
{
	fprintf(f,
		"# dovecot.conf written by tests/lib/imapd.c\n"
		"instance_name = %s\n"
		"base_dir = %s\n"
		"state_dir = %s\n"
		"log_path = %s\n"
		"info_log_path = %s\n"
		"protocols = imap\n"
		"listen = 127.0.0.1\n"
		"ssl = no\n"
		"disable_plaintext_auth = no\n"
		"auth_mechanisms = plain login\n"
		"default_login_user = dovenull\n"
		"default_internal_user = dovecot\n"
		"first_valid_uid = %u\n"
		"mail_location = %s\n"
		/* a file changed behind Dovecot's back is seen at the next sync */
		"maildir_very_dirty_syncs = no\n"
		/* fsync only where Dovecot's crash safety needs it: tests look
		 * at files through the same kernel, never after a power loss */
		"mail_fsync = optimized\n"
		"namespace inbox {\n"
		"  inbox = yes\n"
		"}\n"
		"passdb {\n"
		"  driver = passwd-file\n"
		"  args = scheme=PLAIN %s\n"
		"}\n"
		"userdb {\n"
		"  driver = passwd-file\n"
		"  args = %s\n"
		"}\n"
		"service imap-login {\n"
		"  inet_listener imap {\n"
		"    address = 127.0.0.1\n"
		"    port = %u\n"
		"  }\n"
		"  inet_listener imaps {\n"
		"    port = 0\n"
		"  }\n"
		"}\n",
		d->instance, d->base_dir, d->state_dir, d->log_path, d->log_path,
		IMAPD_FIRST_VALID_UID,
		o->mail_location != NULL ? o->mail_location : IMAPD_DEFAULT_MAIL_LOCATION,
		o->passwd_path, o->passwd_path, d->port);
}

static void
conf_quota(FILE *f, const struct imapd_opts *o)
{
	fprintf(f,
		"mail_plugins = $mail_plugins quota\n"
		"protocol imap {\n"
		"  mail_plugins = $mail_plugins imap_quota\n"
		"}\n"
		"plugin {\n"
		"  quota = maildir:User quota\n");
	if (o->quota_rule != NULL)
		fprintf(f, "  quota_rule = %s\n", o->quota_rule);
	fprintf(f, "}\n");
}

static int
write_conf(const struct imapd *d, const struct imapd_opts *o)
{
	FILE *f = fopen(d->conf_path, "we");

	if (f == NULL)
		goto fail;
	conf_core(f, d, o);
	if (o->flags & IMAPD_QUOTA)
		conf_quota(f, o);
	if (o->conf_text != NULL)
		fputs(o->conf_text, f);
	if (fclose(f) != 0)
		goto fail;
	return 0;
fail:
	fprintf(stderr, "imapd: write %s: %s\n", d->conf_path, strerror(errno));
	return -1;
}

static bool
file_contains(const char *path, const char *text)
{
	char *data;
	bool found;

	if (harness_read_file(path, &data, NULL) < 0)
		return false;
	found = strstr(data, text) != NULL;
	free(data);
	return found;
}

/* ---- the master process --------------------------------------------- */

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

/* Reap the master if it exited.  True if it is gone. */
static bool
reap(struct imapd *d)
{
	int st;
	pid_t r;

	if (d->pid <= 0)
		return true;
	r = waitpid(d->pid, &st, WNOHANG);
	if (r == 0 || (r < 0 && errno == EINTR))
		return false;
	d->exit_status = r > 0 ? st : 0;
	d->pid = 0;
	return true;
}

/*
 * Wait up to timeout_ms for the master to exit: poll its pidfd, or step
 * through short polls where pidfds are missing.  0 once reaped.
 */
static int
wait_exit(struct imapd *d, int timeout_ms)
{
	int64_t deadline = harness_mono_ms() + timeout_ms;
	int pfd = d->pid > 0 ? pidfd_open_compat(d->pid) : -1;
	int rc = 0;

	while (!reap(d)) {
		int64_t left = deadline - harness_mono_ms();
		struct pollfd p = { .fd = pfd, .events = POLLIN };

		if (left <= 0) {
			errno = ETIMEDOUT;
			rc = -1;
			break;
		}
		if (pfd >= 0)
			(void)poll(&p, 1, (int)left);
		else
			harness_sleep_ms(IMAPD_PROBE_STEP_MS);
	}
	if (pfd >= 0)
		close(pfd);
	return rc;
}

static void
child_exec(const struct imapd *d)
{
	int fd = open(d->out_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);

	setpgid(0, 0);
	if (fd >= 0) {
		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
	}
	execl(IMAPD_BIN, IMAPD_BIN, "-F", "-c", d->conf_path, (char *)NULL);
	fprintf(stderr, "imapd: exec %s: %s\n", IMAPD_BIN, strerror(errno));
	_exit(127);
}

/*
 * Wait for the greeting: connect, read "* OK", LOGOUT.  A refused connect
 * means the listener is not there yet: probe again after a short step,
 * until the master exits or timeout_ms pass.
 */
static int
wait_ready(struct imapd *d, int timeout_ms)
{
	int64_t deadline = harness_mono_ms() + timeout_ms;
	struct imapc *c = NULL;

	for (;;) {
		if (imapc_connect(d->addr, IMAPD_PROBE_TIMEOUT_MS, &c) == 0) {
			(void)imapc_logout(c);
			imapc_free(&c);
			return 0;
		}
		if (reap(d)) {
			errno = ECHILD;
			return -1;
		}
		if (harness_mono_ms() >= deadline) {
			errno = ETIMEDOUT;
			return -1;
		}
		harness_sleep_ms(IMAPD_PROBE_STEP_MS);
	}
}

/* Start once on a freshly picked port.  0 when greeting, -1 otherwise
 * (*retry_out set when Dovecot exited because the port was taken). */
static int
start_once(struct imapd *d, const struct imapd_opts *o, bool *retry_out)
{
	pid_t pid;

	*retry_out = false;
	d->port = harness_pick_port();
	if (d->port == 0) {
		fprintf(stderr, "imapd: no free port on 127.0.0.1\n");
		return -1;
	}
	snprintf(d->addr, sizeof(d->addr), "tcp:127.0.0.1:%u", d->port);
	if (write_conf(d, o) < 0)
		return -1;
	(void)unlink(d->log_path);
	(void)unlink(d->out_path);
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		fprintf(stderr, "imapd: fork: %s\n", strerror(errno));
		return -1;
	}
	if (pid == 0)
		child_exec(d);
	setpgid(pid, pid);
	d->pid = pid;
	if (wait_ready(d, IMAPD_READY_TIMEOUT_MS) == 0)
		return 0;
	if (d->pid == 0 && (file_contains(d->log_path, "Address already in use") ||
			    file_contains(d->out_path, "Address already in use"))) {
		*retry_out = true;
		return -1;
	}
	fprintf(stderr, "imapd: dovecot on %s not ready: %s\n", d->addr,
		d->pid == 0 ? "it exited" : "no greeting in time");
	imapd_dump_log(d);
	return -1;
}

static int
make_dirs(struct imapd *d)
{
	const char *suffix;

	snprintf(d->dir, sizeof(d->dir), IMAPD_PREFIX "XXXXXX");
	if (mkdtemp(d->dir) == NULL) {
		fprintf(stderr, "imapd: mkdtemp: %s\n", strerror(errno));
		d->dir[0] = '\0';
		return -1;
	}
	suffix = d->dir + strlen(IMAPD_PREFIX);
	snprintf(d->instance, sizeof(d->instance), "stowd-%s", suffix);
	snprintf(d->conf_path, sizeof(d->conf_path), "%s/dovecot.conf", d->dir);
	snprintf(d->log_path, sizeof(d->log_path), "%s/dovecot.log", d->dir);
	snprintf(d->out_path, sizeof(d->out_path), "%s/dovecot.out", d->dir);
	snprintf(d->base_dir, sizeof(d->base_dir), "%s/run", d->dir);
	snprintf(d->state_dir, sizeof(d->state_dir), "%s/state", d->dir);
	if (chmod(d->dir, 0755) < 0 || mkdir(d->base_dir, 0755) < 0 ||
	    mkdir(d->state_dir, 0755) < 0) {
		fprintf(stderr, "imapd: set up %s: %s\n", d->dir, strerror(errno));
		return -1;
	}
	return 0;
}

struct imapd *
imapd_start(const struct imapd_opts *opts)
{
	struct imapd *d;
	bool retry = true;
	int i;

	if (opts == NULL || opts->passwd_path == NULL) {
		fprintf(stderr, "imapd: no passwd-file given\n");
		return NULL;
	}
	if (!imapd_installed()) {
		fprintf(stderr, "imapd: %s not installed (scripts/install-deps)\n",
			IMAPD_BIN);
		return NULL;
	}
	d = calloc(1, sizeof(*d));
	if (d == NULL)
		return NULL;
	if (make_dirs(d) < 0)
		goto fail;
	for (i = 0; retry && i < IMAPD_PORT_TRIES; i++) {
		if (start_once(d, opts, &retry) == 0)
			return d;
		imapd_stop(d, 0);
	}
fail:
	imapd_free(&d);
	return NULL;
}

/*
 * Wait up to timeout_ms for the process group to empty after the master
 * exited: its children leave on their own, and those reparented to us
 * (a subreaper, as the harness makes us) are reaped here.  No exit signal
 * exists for a whole group, so this steps through short polls.
 */
static bool
group_gone(pid_t pgrp, int timeout_ms)
{
	int64_t deadline = harness_mono_ms() + timeout_ms;
	int st;

	for (;;) {
		while (waitpid(-pgrp, &st, WNOHANG) > 0)
			;
		if (kill(-pgrp, 0) < 0 && errno == ESRCH)
			return true;
		if (harness_mono_ms() >= deadline)
			return false;
		harness_sleep_ms(IMAPD_PROBE_STEP_MS);
	}
}

int
imapd_stop(struct imapd *d, int timeout_ms)
{
	pid_t pgrp;
	int rc = 0;

	if (d == NULL || d->pid <= 0)
		return 0;
	pgrp = d->pid;
	if (timeout_ms <= 0)
		timeout_ms = IMAPD_STOP_TIMEOUT_MS;
	if (kill(d->pid, SIGTERM) < 0 && errno != ESRCH)
		rc = -1;
	if (wait_exit(d, timeout_ms) < 0) {
		fprintf(stderr, "imapd: dovecot did not stop in %d ms, killed\n",
			timeout_ms);
		rc = -1;
	}
	if (!group_gone(pgrp, rc == 0 ? timeout_ms : 0)) {
		if (rc == 0)
			fprintf(stderr, "imapd: processes left in group %d, killed\n",
				(int)pgrp);
		(void)kill(-pgrp, SIGKILL);
		(void)group_gone(pgrp, timeout_ms);
		rc = -1;
	}
	if (d->pid > 0 && wait_exit(d, timeout_ms) < 0)
		rc = -1;
	return rc;
}

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	if (remove(path) < 0 && errno != ENOENT)
		fprintf(stderr, "imapd: remove %s: %s\n", path, strerror(errno));
	return 0;
}

void
imapd_free(struct imapd **dp)
{
	struct imapd *d;

	if (dp == NULL || *dp == NULL)
		return;
	d = *dp;
	imapd_stop(d, 0);
	if (getenv("STOWD_SHOW_LOG") != NULL && d->dir[0] != '\0')
		imapd_dump_log(d);
	if (getenv("STOWD_KEEP_TREE") != NULL)
		fprintf(stderr, "imapd: kept %s\n", d->dir);
	else if (strncmp(d->dir, IMAPD_PREFIX, strlen(IMAPD_PREFIX)) == 0)
		nftw(d->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(d);
	*dp = NULL;
}

int
imapd_doveadm(const struct imapd *d, char **output, const char *arg, ...)
{
	const char *argv[IMAPD_MAX_ARGS];
	size_t n = 0;
	va_list ap;
	int st = 0;

	argv[n++] = IMAPD_DOVEADM_BIN;
	argv[n++] = "-c";
	argv[n++] = d->conf_path;
	va_start(ap, arg);
	for (; arg != NULL && n < IMAPD_MAX_ARGS - 1; arg = va_arg(ap, const char *))
		argv[n++] = arg;
	va_end(ap);
	argv[n] = NULL;
	if (output != NULL)
		*output = NULL;
	if (harness_run_capture(argv, IMAPD_DOVEADM_TIMEOUT_MS, &st, output) < 0)
		return -1;
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		fprintf(stderr, "imapd: doveadm %s: wait status 0x%x\n", argv[3],
			(unsigned)st);
		return -1;
	}
	return 0;
}

static void
dump_file(const char *path)
{
	char *text;

	if (harness_read_file(path, &text, NULL) < 0)
		return;
	fprintf(stderr, "---- %s ----\n%s---- end of %s ----\n", path, text, path);
	free(text);
}

void
imapd_dump_log(const struct imapd *d)
{
	dump_file(d->log_path);
	dump_file(d->out_path);
}

bool
imapd_log_contains(const struct imapd *d, const char *text)
{
	return file_contains(d->log_path, text);
}
