/* SPDX-License-Identifier: MIT */
/*
 * privsep/privsep.h - base runtime shared by every stowd process: logging,
 * fatal errors, allocation, the role table, spawning and privilege drop,
 * seccomp profiles.
 *
 * Runs in:  every process.
 * Trust:    the role table is the only place that grants privileges.
 */
#ifndef STOWD_PRIVSEP_PRIVSEP_H
#define STOWD_PRIVSEP_PRIVSEP_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "privsep/msg.h"

/* ---- logging ---------------------------------------------------------- */

/*
 * Set this process's role name and log destination.  In the supervisor
 * (ipc_fd < 0) lines go to stderr as "stowd[pid]: role: level: text".  In a
 * child (ipc_fd >= 0) they are sent to the supervisor as PSEP_LOG.
 */
void log_init(const char *role, int ipc_fd);
void log_set_debug(bool on);
/* Send the supervisor's log (its own lines and its children's) to syslog
 * (facility mail) instead of stderr. */
void log_set_syslog(bool on);
bool log_debug_enabled(void);
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Rate limit of one kind of log line (a limit that was hit): zero it to
 * start.  log_limited returns true at most once per LOG_LIMIT_SECONDS for
 * rl; *suppressed_out (may be NULL) then gets the lines skipped since. */
#define LOG_LIMIT_SECONDS 10
struct log_limit {
	int64_t last;             /* CLOCK_MONOTONIC seconds + 1, 0 = never */
	unsigned skipped;
};
bool log_limited(struct log_limit *rl, unsigned *suppressed_out);
void log_msgv(enum psep_log_level level, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));
/* Print a line received from a child (supervisor only). */
void log_from_child(const char *role, pid_t pid, enum psep_log_level level,
		    const char *text, size_t len);

/* Log, append strerror(errno), exit(1).  For startup and privilege errors. */
void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
/* Log and exit(1), no errno. */
void fatalx(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* ---- allocation: abort on failure ------------------------------------- */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
int xasprintf(char **out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Copy src into dst of size dstsize; returns false (dst truncated) if too long. */
bool xstrlcpy(char *dst, const char *src, size_t dstsize);

/* ---- a sealed memfd of text lines (lines.c) ---------------------------- */

#define PSEP_LINES_LINE_MAX 1024

struct psep_lines {
	int fd;               /* -1 when not open; the caller closes it */
	uint64_t size;
	uint32_t lines;
};

/* Create the memfd.  0 or -1 with errno. */
int psep_lines_open(struct psep_lines *l, const char *name);
/* Append line (n octets, no newline, n < PSEP_LINES_LINE_MAX) and "\n".
 * 0, or -1 with errno (EOVERFLOW for a bad line). */
int psep_lines_add(struct psep_lines *l, const char *line, size_t n);
/* Seal it and rewind it: ready to pass.  0 or -1 with errno. */
int psep_lines_seal(struct psep_lines *l);

/* ---- what ps shows (proctitle.c) ---------------------------------------- */

/* Take over the argument area (and the environment strings after it,
 * which move to the heap) for process titles.  Once, in main, before
 * the first fork. */
void psep_proctitle_init(int argc, char **argv);
/* Set comm (prctl PR_SET_NAME, at most 15 bytes; NULL: unchanged) and the
 * command line that ps shows (printf format; cut to the argument area).
 * A no-op for the title before psep_proctitle_init. */
void psep_proctitle_set(const char *comm, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* ---- roles ------------------------------------------------------------ */

enum psep_uid_kind {
	PSEP_UID_ROOT,        /* stays root */
	PSEP_UID_RUN_USER,    /* run_user for life */
	PSEP_UID_TARGET,      /* the target user for life (fork mode) */
};

enum psep_profile {
	PSEP_PROFILE_NONE,
	PSEP_PROFILE_LMTPD,
	PSEP_PROFILE_WRITER_SETEUID,
	PSEP_PROFILE_WRITER_CHILD,
	PSEP_PROFILE_REPL_HOOK,
	PSEP_PROFILE_REPLD,   /* the lmtpd profile plus replication I/O */
	PSEP_PROFILE_WRITER_TEMPLATE, /* the writer-child profile plus what
				       * a fork and a drop to a user need */
};

struct psep_role_def {
	enum psep_role role;
	const char *name;
	const char *comm;      /* what ps -o comm shows (at most 15 bytes) */
	const char *title;     /* the command line ps shows: "stowd: TITLE" */
	enum psep_uid_kind uid_kind;
	bool keep_setid_caps;  /* permitted+effective: CAP_SETUID, CAP_SETGID only */
	bool keep_drop_caps;   /* permitted+effective: CAP_SETUID, CAP_SETGID,
				* CAP_SETPCAP only, normal uid-change rules:
				* what dropping a forked child to a user takes */
	bool no_new_privs;
	enum psep_profile profile;
};

/* The row for role; never NULL for a valid role. */
const struct psep_role_def *psep_role_get(enum psep_role role);
const char *psep_role_name(enum psep_role role);

/* ---- spawning --------------------------------------------------------- */

struct psep_creds {
	uid_t uid;
	gid_t gid;
	size_t ngroups;
	gid_t groups[PSEP_MAX_GROUPS];
};

/* Entry point of a child role; ipc is its end of the socketpair.  Returns
 * the exit status. */
typedef int (*psep_child_main)(void *arg, int ipc);

#define PSEP_SPAWN_MAX_KEEP 15

struct psep_spawn {
	enum psep_role role;
	struct psep_creds creds;  /* for PSEP_UID_RUN_USER and PSEP_UID_TARGET */
	psep_child_main main;
	void *arg;
	const int *keep_fds;      /* extra fds the child keeps open (at most
				   * PSEP_SPAWN_MAX_KEEP; more: EINVAL) */
	size_t n_keep_fds;
};

/*
 * Fork a child for spawn->role.  The child closes every fd but its IPC end,
 * stdin/stdout/stderr and keep_fds, drops privileges as the role row says,
 * verifies the drop (dies if it differs), installs the role's seccomp
 * profile, then calls main() and _exit()s with its result.  The parent gets
 * the child's pid and its own IPC end in *ipc_out (non-blocking, CLOEXEC).
 * Returns the pid or -1 with errno.
 */
pid_t psep_spawn_child(const struct psep_spawn *spawn, int *ipc_out);

/*
 * Writer template only: fork a child for spawn->role (no keep_fds) that
 * talks over ipc and is a child of the caller's parent (CLONE_PARENT);
 * the child closes every other fd >= 3 and goes on as psep_spawn_child's
 * does (drop, verify, sandbox, main).  Returns the pid (the caller closes
 * ipc) or -1 with errno.
 */
pid_t psep_spawn_forked(const struct psep_spawn *spawn, int ipc);

/* The writer template's main (privsep/template.c): the entry and argument
 * of the children it forks. */
struct psep_template_args {
	psep_child_main child_main;
	void *child_arg;
};
int psep_template_main(void *arg, int ipc);

/* The IPC socketpair of a child: SOCK_SEQPACKET, large buffers, both ends
 * above stdio and CLOEXEC, sv[0] (the supervisor's) non-blocking.
 * Returns 0 or -1 with errno (nothing left open). */
int psep_ipc_pair(int sv[2]);

/*
 * Drop to role's privileges in the calling process (used by spawn; public
 * for tests).  Fatal on any failure.
 */
void psep_drop_privileges(const struct psep_role_def *role,
			  const struct psep_creds *creds);

/* Compile every profile's seccomp filter once (the supervisor, at start),
 * so children inherit ready BPF programs.  Fatal on failure. */
void psep_sandbox_prepare(void);

/* Install profile's seccomp filter (default action: kill the process),
 * setting NO_NEW_PRIVS first.  Fatal on failure.  PSEP_PROFILE_NONE does
 * nothing. */
void psep_sandbox_apply(enum psep_profile profile);

/* Close every fd >= 3 except keep[0..n), n <= PSEP_SPAWN_MAX_KEEP + 1.
 * Fatal on failure. */
void psep_close_fds_except(const int *keep, size_t n);

/* Child side of HELLO: send HELLO_REQ, wait for a valid HELLO_REP.
 * Returns 0 or -1 (the child should exit). */
int psep_child_hello(int ipc, enum psep_role role, unsigned generation);

/* A blocking child's next request from the supervisor (after HELLO):
 * 1 and *m, 0 when the supervisor closed the link, -1 for a message
 * psep_msg_recv refused (logged; the child should exit 1). */
int psep_child_next(int ipc, struct psep_msg *m);

#endif
