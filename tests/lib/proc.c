/* SPDX-License-Identifier: MIT */
/*
 * tests/lib/proc.c - stowd's processes seen from outside: /proc/N/stat and
 * /proc/N/status, descendants of the supervisor, their roles; and running
 * helper programs (as a user, or with captured output).
 *
 * Runs in:  integration test programs, as root.
 * Trust:    processes come and go while we read: a vanished pid is skipped,
 *           never an error.  Roles are guessed from the Uid: line only
 *           (children are forked, not exec'd, so cmdline says nothing).
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tests/lib/harness.h"

struct pid_pair {
	pid_t pid;
	pid_t ppid;
	pid_t pgrp;
	char state;
};

int64_t
harness_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
harness_sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

ssize_t
harness_proc_file(pid_t pid, const char *name, char *buf, size_t size)
{
	char path[64];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%ld/%s", (long)pid, name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, size - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	return n;
}

/* Parse /proc/PID/stat: comm, state, ppid, pgrp. */
static int
read_stat(pid_t pid, struct harness_proc *p)
{
	char buf[1024], *open_paren, *close_paren;
	size_t cl;

	if (harness_proc_file(pid, "stat", buf, sizeof(buf)) < 0)
		return -1;
	open_paren = strchr(buf, '(');
	close_paren = strrchr(buf, ')');
	if (open_paren == NULL || close_paren == NULL || close_paren < open_paren)
		return -1;
	cl = (size_t)(close_paren - open_paren - 1);
	if (cl >= sizeof(p->comm))
		cl = sizeof(p->comm) - 1;
	memcpy(p->comm, open_paren + 1, cl);
	p->comm[cl] = '\0';
	int ppid, pgrp;

	if (sscanf(close_paren + 1, " %c %d %d", &p->state, &ppid, &pgrp) != 3)
		return -1;
	p->pid = pid;
	p->ppid = ppid;
	p->pgrp = pgrp;
	return 0;
}

static uint64_t
hex64(const char *s)
{
	return strtoull(s, NULL, 16);
}

static void
status_line(struct harness_proc *p, char *line)
{
	char *v = strchr(line, ':');
	unsigned a[4];

	if (v == NULL)
		return;
	*v++ = '\0';
	while (*v == ' ' || *v == '\t')
		v++;
	if (strcmp(line, "Uid") == 0 &&
	    sscanf(v, "%u %u %u %u", &a[0], &a[1], &a[2], &a[3]) == 4)
		for (int i = 0; i < 4; i++)
			p->uid[i] = a[i];
	else if (strcmp(line, "Gid") == 0 &&
		 sscanf(v, "%u %u %u %u", &a[0], &a[1], &a[2], &a[3]) == 4)
		for (int i = 0; i < 4; i++)
			p->gid[i] = a[i];
	else if (strcmp(line, "Groups") == 0)
		snprintf(p->groups, sizeof(p->groups), "%s", v);
	else if (strcmp(line, "CapInh") == 0)
		p->cap_inh = hex64(v);
	else if (strcmp(line, "CapPrm") == 0)
		p->cap_prm = hex64(v);
	else if (strcmp(line, "CapEff") == 0)
		p->cap_eff = hex64(v);
	else if (strcmp(line, "CapBnd") == 0)
		p->cap_bnd = hex64(v);
	else if (strcmp(line, "CapAmb") == 0)
		p->cap_amb = hex64(v);
	else if (strcmp(line, "NoNewPrivs") == 0)
		p->no_new_privs = atoi(v);
	else if (strcmp(line, "Seccomp") == 0)
		p->seccomp = atoi(v);
}

int
harness_proc_read(pid_t pid, struct harness_proc *p)
{
	char path[64], line[512];
	FILE *f;

	memset(p, 0, sizeof(*p));
	p->no_new_privs = -1;
	p->seccomp = -1;
	if (read_stat(pid, p) < 0)
		return -1;
	snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
	f = fopen(path, "re");
	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL) {
		size_t n = strlen(line);

		while (n > 0 && isspace((unsigned char)line[n - 1]))
			line[--n] = '\0';
		status_line(p, line);
	}
	fclose(f);
	return 0;
}

/* Every process as (pid, ppid, pgrp, state); *n_out entries, malloc'd. */
static int
all_pids(struct pid_pair **out, size_t *n_out)
{
	struct pid_pair *v = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	DIR *d = opendir("/proc");

	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL) {
		struct harness_proc p;
		char *end;
		long pid = strtol(de->d_name, &end, 10);

		if (*end != '\0' || pid <= 0 || read_stat((pid_t)pid, &p) < 0)
			continue;
		if (n == cap) {
			struct pid_pair *nv;

			cap = cap ? cap * 2 : 256;
			nv = realloc(v, cap * sizeof(*v));
			if (nv == NULL) {
				free(v);
				closedir(d);
				return -1;
			}
			v = nv;
		}
		v[n].pid = p.pid;
		v[n].ppid = p.ppid;
		v[n].pgrp = p.pgrp;
		v[n].state = p.state;
		n++;
	}
	closedir(d);
	*out = v;
	*n_out = n;
	return 0;
}

int
harness_descendants(pid_t root, struct harness_proc *out, size_t max)
{
	struct pid_pair *v;
	pid_t *queue;
	size_t n, qn = 1, qi, i, found = 0;

	if (all_pids(&v, &n) < 0)
		return -1;
	queue = calloc(n + 1, sizeof(*queue));
	if (queue == NULL) {
		free(v);
		return -1;
	}
	queue[0] = root;
	for (qi = 0; qi < qn; qi++) {
		for (i = 0; i < n; i++) {
			if (v[i].ppid != queue[qi] || qn > n)
				continue;
			queue[qn++] = v[i].pid;
			if (v[i].state == 'Z' || found == max)
				continue;
			if (harness_proc_read(v[i].pid, &out[found]) == 0 &&
			    out[found].state != 'Z')
				found++;
		}
	}
	free(queue);
	free(v);
	return (int)found;
}

enum harness_role
harness_proc_role(const struct harness *h, const struct harness_proc *p)
{
	uid_t ruid = p->uid[0];

	if (ruid == h->run_uid)
		return HARNESS_ROLE_LMTPD;
	if (strcmp(h->mode, "fork") == 0) {
		if (ruid > HARNESS_UID_BASE && ruid <= HARNESS_UID_BASE + HARNESS_MAX_USERS)
			return HARNESS_ROLE_WRITER;
		if (ruid == 0 && strcmp(p->comm, "stowd-template") == 0)
			return HARNESS_ROLE_TEMPLATE;
		return HARNESS_ROLE_OTHER;
	}
	return ruid == 0 ? HARNESS_ROLE_WRITER : HARNESS_ROLE_OTHER;
}

int
harness_find_role(const struct harness *h, enum harness_role role,
		  struct harness_proc *out, size_t max)
{
	struct harness_proc *all = calloc(HARNESS_MAX_PROCS, sizeof(*all));
	int n, i, k = 0;

	if (all == NULL || h->pid <= 0) {
		free(all);
		return -1;
	}
	n = harness_descendants(h->pid, all, HARNESS_MAX_PROCS);
	for (i = 0; i < n && (size_t)k < max; i++)
		if (role == HARNESS_ROLE_ANY || harness_proc_role(h, &all[i]) == role)
			out[k++] = all[i];
	free(all);
	return n < 0 ? -1 : k;
}

int
harness_wait_role(const struct harness *h, enum harness_role role, size_t min,
		  const pid_t *not_pids, size_t n_not, int timeout_ms)
{
	struct harness_proc *p = calloc(HARNESS_MAX_PROCS, sizeof(*p));
	int64_t deadline = harness_mono_ms() + timeout_ms;
	int n = -1;

	if (p == NULL)
		return -1;
	for (;;) {
		bool stale = false;

		n = harness_find_role(h, role, p, HARNESS_MAX_PROCS);
		for (int i = 0; i < n && !stale; i++)
			for (size_t j = 0; j < n_not; j++)
				if (p[i].pid == not_pids[j])
					stale = true;
		if (n >= 0 && (size_t)n >= min && !stale)
			break;
		if (harness_mono_ms() >= deadline) {
			fprintf(stderr, "harness: after %d ms: %d processes of role %d "
				"(want %zu new ones)\n", timeout_ms, n, (int)role, min);
			n = -1;
			break;
		}
		harness_sleep_ms(20);   /* bounded poll for a condition, not a sync */
	}
	free(p);
	return n;
}

/* Processes (not zombies) in stowd's process group. */
static int
group_members(pid_t pgrp, bool kill_them)
{
	struct pid_pair *v;
	size_t n, i;
	int left = 0;

	if (pgrp <= 0 || all_pids(&v, &n) < 0)
		return -1;
	for (i = 0; i < n; i++) {
		if (v[i].pgrp != pgrp)
			continue;
		if (kill_them)
			kill(v[i].pid, SIGKILL);
		/* Reap what was reparented to us (we are a subreaper). */
		if (v[i].ppid == getpid())
			(void)waitpid(v[i].pid, NULL, WNOHANG);
		if (v[i].state != 'Z')
			left++;
	}
	free(v);
	return left;
}

int
harness_group_left(const struct harness *h, int timeout_ms)
{
	int64_t deadline = harness_mono_ms() + timeout_ms;
	int left;

	if (h->pgrp <= 0)
		return 0;       /* never started, or already emptied */
	for (;;) {
		left = group_members(h->pgrp, false);
		if (left <= 0 || harness_mono_ms() >= deadline)
			return left;
		harness_sleep_ms(20);
	}
}

void
harness_kill_group(struct harness *h)
{
	int64_t deadline = harness_mono_ms() + 5000;
	pid_t pgrp = h->pgrp;

	if (pgrp <= 0)
		return;
	while (group_members(pgrp, true) > 0 && harness_mono_ms() < deadline)
		harness_sleep_ms(10);
	/* Forget an empty group: its id may be reused by someone else. */
	if (group_members(pgrp, false) == 0)
		h->pgrp = 0;
}

/* ---- helper programs ------------------------------------------------- */

int
harness_run_as(uid_t uid, gid_t gid, int (*fn)(void *arg), void *arg)
{
	pid_t pid;
	int st;

	fflush(NULL);
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		if (setgroups(0, NULL) < 0 || setresgid(gid, gid, gid) < 0 ||
		    setresuid(uid, uid, uid) < 0)
			_exit(126);
		_exit(fn(arg) == 0 ? 0 : 1);
	}
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		fprintf(stderr, "harness: helper as uid %u failed (wait status 0x%x)\n",
			(unsigned)uid, (unsigned)st);
		return -1;
	}
	return 0;
}

static void
capture_child(const char *const argv[], int out)
{
	int null = open("/dev/null", O_RDONLY);

	if (null < 0 || dup2(null, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0)
		_exit(127);
	if (syscall(SYS_close_range, 3U, ~0U, 0U) < 0)
		for (int fd = 3; fd < 1024; fd++)
			close(fd);
	execv(argv[0], (char *const *)argv);
	fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
	_exit(127);
}

int
harness_run_capture(const char *const argv[], int timeout_ms, int *status_out,
		    char **output)
{
	int64_t deadline = harness_mono_ms() + timeout_ms;
	char *buf = NULL;
	size_t len = 0;
	int p[2], st = 0, rc = 0;
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) < 0)
		return -1;
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		close(p[0]);
		close(p[1]);
		return -1;
	}
	if (pid == 0)
		capture_child(argv, p[1]);
	close(p[1]);
	for (;;) {
		struct pollfd pf = { .fd = p[0], .events = POLLIN };
		int64_t left = deadline - harness_mono_ms();
		char chunk[4096];
		ssize_t n;

		if (left <= 0 || poll(&pf, 1, (int)left) == 0) {
			fprintf(stderr, "harness: %s did not finish in %d ms\n",
				argv[0], timeout_ms);
			kill(pid, SIGKILL);
			rc = -1;
			break;
		}
		n = read(p[0], chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		char *nb = realloc(buf, len + (size_t)n + 1);

		if (nb == NULL)
			break;
		buf = nb;
		memcpy(buf + len, chunk, (size_t)n);
		len += (size_t)n;
		buf[len] = '\0';
	}
	close(p[0]);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (status_out != NULL)
		*status_out = st;
	if (output != NULL)
		*output = buf ? buf : strdup("");
	else
		free(buf);
	return rc;
}
