/* SPDX-License-Identifier: MIT */
/*
 * privsep/log.c - log lines and fatal errors.
 *
 * Runs in:  every process.  The supervisor writes lines to stderr (the
 *           journal under systemd); a child sends each line to the
 *           supervisor as PSEP_LOG, so sandboxed processes need no log fd.
 * Format:   "stowd[pid]: role: level: text", text as key=value ids first.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "privsep/privsep.h"

static const char *log_role = "stowd";
static int log_ipc = -1;
static bool log_dbg;
static bool log_syslog;             /* the supervisor only (log_set_syslog) */

/* This process's pid, asked for once per process: a log line used to cost
 * a getpid() (two per delivery in the supervisor).  A fork resets it. */
static pid_t log_pid;

static void
log_pid_forget(void)
{
	log_pid = 0;
}

__attribute__((constructor)) static void
log_pid_setup(void)
{
	(void)pthread_atfork(NULL, NULL, log_pid_forget);
}

static pid_t
log_self(void)
{
	if (log_pid == 0)
		log_pid = getpid();
	return log_pid;
}

static const char *const level_names[] = {
	[PSEP_LOG_DEBUG] = "debug",
	[PSEP_LOG_INFO] = "info",
	[PSEP_LOG_WARN] = "warning",
	[PSEP_LOG_ERR] = "error",
};

void
log_init(const char *role, int ipc_fd)
{
	log_pid = 0;   /* a new process (a raw clone runs no atfork handler) */
	log_role = role;
	log_ipc = ipc_fd;
	if (ipc_fd >= 0 && log_syslog) {
		/* a child logs through the supervisor; its last-resort lines
		 * go to stderr (its sandbox has no socket() for syslog) */
		log_syslog = false;
	}
}

void
log_set_syslog(bool on)
{
	if (on && !log_syslog)
		openlog("stowd", LOG_PID | LOG_NDELAY, LOG_MAIL);
	else if (!on && log_syslog)
		closelog();
	log_syslog = on;
}

void
log_set_debug(bool on)
{
	log_dbg = on;
}

bool
log_debug_enabled(void)
{
	return log_dbg;
}

static void
log_write_line(const char *role, pid_t pid, enum psep_log_level level,
	       const char *text, size_t len)
{
	char line[PSEP_LOG_MAX + 128];
	int n;
	size_t i;

	if (level > PSEP_LOG_ERR)
		level = PSEP_LOG_ERR;
	if (log_syslog) {
		static const int prio[] = {
			[PSEP_LOG_DEBUG] = LOG_DEBUG, [PSEP_LOG_INFO] = LOG_INFO,
			[PSEP_LOG_WARN] = LOG_WARNING, [PSEP_LOG_ERR] = LOG_ERR,
		};
		char clean[PSEP_LOG_MAX + 1];

		n = snprintf(clean, sizeof(clean), "%.*s", (int)len, text);
		for (i = 0; n > 0 && i < (size_t)n && i < sizeof(clean); i++)
			if ((unsigned char)clean[i] < 0x20)
				clean[i] = '?';
		if (pid == log_self())
			syslog(prio[level], "%s: %s", role, clean);
		else
			syslog(prio[level], "%s[%ld]: %s", role, (long)pid, clean);
		return;
	}
	n = snprintf(line, sizeof(line), "stowd[%ld]: %s: %s: %.*s\n", (long)pid,
		     role, level_names[level], (int)len, text);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line))
		n = sizeof(line) - 1;
	/* No control bytes from a child reach the log but the final LF. */
	for (i = 0; i + 1 < (size_t)n; i++)
		if ((unsigned char)line[i] < 0x20 && line[i] != '\t')
			line[i] = '?';
	line[n - 1] = '\n';
	(void)!write(STDERR_FILENO, line, (size_t)n);
}

void
log_from_child(const char *role, pid_t pid, enum psep_log_level level,
	       const char *text, size_t len)
{
	log_write_line(role, pid, level, text, len);
}

void
log_msgv(enum psep_log_level level, const char *fmt, va_list ap)
{
	char text[PSEP_LOG_MAX + 1];
	int n;

	if (level == PSEP_LOG_DEBUG && !log_dbg)
		return;
	n = vsnprintf(text, sizeof(text), fmt, ap);
	if (n < 0)
		return;
	if ((size_t)n > PSEP_LOG_MAX)
		n = PSEP_LOG_MAX;
	if (log_ipc >= 0) {
		const struct psep_log hdr = {
			.level = level, .text_len = (uint32_t)n,
		};
		unsigned char m[sizeof(struct psep_log) + PSEP_LOG_MAX];
		int saved = errno;

		memcpy(m, &hdr, sizeof(hdr));
		memcpy(m + sizeof(hdr), text, (size_t)n);
		if (psep_msg_send(log_ipc, PSEP_LOG, 0, m,
				  sizeof(hdr) + (size_t)n, -1) == 0) {
			errno = saved;
			return;
		}
		errno = saved;
	}
	log_write_line(log_role, log_self(), level, text, (size_t)n);
}

void
log_debug(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_msgv(PSEP_LOG_DEBUG, fmt, ap);
	va_end(ap);
}

void
log_info(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_msgv(PSEP_LOG_INFO, fmt, ap);
	va_end(ap);
}

void
log_warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_msgv(PSEP_LOG_WARN, fmt, ap);
	va_end(ap);
}

void
log_err(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_msgv(PSEP_LOG_ERR, fmt, ap);
	va_end(ap);
}

void
fatal(const char *fmt, ...)
{
	char text[PSEP_LOG_MAX];
	int saved = errno;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	log_err("fatal: %s: %s", text, strerror(saved));
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	char text[PSEP_LOG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	log_err("fatal: %s", text);
	exit(1);
}

bool
log_limited(struct log_limit *rl, unsigned *suppressed_out)
{
	struct timespec ts;
	int64_t now;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	now = (int64_t)ts.tv_sec + 1;
	if (rl->last != 0 && now - rl->last < LOG_LIMIT_SECONDS) {
		rl->skipped++;
		return false;
	}
	rl->last = now;
	if (suppressed_out != NULL)
		*suppressed_out = rl->skipped;
	rl->skipped = 0;
	return true;
}
