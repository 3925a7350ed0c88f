/* SPDX-License-Identifier: MIT */
/*
 * tests/lib/harness.h - run a real stowd in a temporary tree for the
 * integration tests: test users, passwd-file, stowd.conf, start/stop/
 * reload driven by sd_notify readiness, Maildir and /proc inspection.
 *
 * Runs in:  integration test programs, as root (harness_require_root()
 *           exits 77 = skipped otherwise).
 * Trust:    stowd is the program under test: every wait is bounded, a
 *           stowd that does not become ready, does not stop or leaves
 *           processes behind is reported, and killed at cleanup.
 * Layout:   <tree>/stowd.conf, passwd, lmtp (unix listener), notify
 *           (NOTIFY_SOCKET), stowd.log (stderr and stdout of stowd),
 *           state/, home/uN (mode 0700, owned by uN).
 * Env:      STOWD_BIN (required) the stowd binary; STOWD_DELIVERY_MODE
 *           (default "seteuid") written as delivery_mode; STOWD_KEEP_TREE
 *           keeps the tree; STOWD_SHOW_LOG prints stowd.log after every
 *           test, not only after failed ones; STOWD_TEST_DOMAIN the domain
 *           of test addresses (default "example.org", "" = bare names).
 * Errors:   functions return 0 / -1 (or a count / -1) and print one line
 *           saying what failed to stderr, so an assert on the result is
 *           enough for a readable failure.
 */
#ifndef STOWD_TESTS_HARNESS_H
#define STOWD_TESTS_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "tests/lib/lmtpc.h"

#define HARNESS_MAX_USERS 32
#define HARNESS_UID_BASE 61000u          /* user i (1-based) = base + i */
#define HARNESS_READY_TIMEOUT_MS 20000
#define HARNESS_STOP_TIMEOUT_MS 10000
#define HARNESS_MAX_PROCS 256
#define HARNESS_CAP_SETID 0xc0ull        /* CAP_SETGID | CAP_SETUID */
#define HARNESS_CAP_TEMPLATE 0x1c0ull    /* ... | CAP_SETPCAP (writer template) */

struct harness_user {
	char name[32];             /* "u1" */
	char addr[128];            /* "u1@example.org" (or "u1") */
	uid_t uid;
	gid_t gid;
	char home[128];            /* <tree>/home/u1 */
	char maildir[160];         /* <home>/Maildir */
};

enum harness_listener {
	HARNESS_UNIX = 0,
	HARNESS_TCP4 = 1,
	HARNESS_TCP6 = 2,
};
#define HARNESS_LISTENER_COUNT 3

struct harness_opts {
	unsigned nusers;           /* 0 = 3 */
	/*
	 * Settings over the base config, "key = value" each; a key of the
	 * base is replaced in place, anything else is appended.  NULL-ended
	 * array, may be NULL.
	 */
	const char *const *conf;
	const char *conf_text;     /* more lines appended verbatim, may be NULL */
	/*
	 * Run stowd in a mount namespace of its own whose /dev is a small
	 * tmpfs (null, zero, full, random, urandom, tty, fd) with /dev/log
	 * bound to a datagram socket of the harness, drained at once (as a
	 * syslog daemon would) into <tree>/syslog, one line per datagram:
	 * see harness_syslog_wait.  Needs CAP_SYS_ADMIN.
	 */
	bool syslog;
};

struct harness_drain;

struct harness {
	char tree[64];             /* /tmp/stowd-itest.XXXXXX */
	char conf_path[96];
	char passwd_path[96];
	char log_path[96];
	char notify_path[96];
	char state_dir[96];
	char control_path[96];     /* <tree>/control: the control socket */
	char bin[512];             /* STOWD_BIN */
	char mode[16];             /* delivery mode: "seteuid" or "fork" */
	char domain[64];
	char hostname[64];         /* hostname setting */
	char listen[HARNESS_LISTENER_COUNT][128]; /* "" if unavailable */
	unsigned nusers;
	struct harness_user users[HARNESS_MAX_USERS];   /* users[0] = u1 */
	uid_t run_uid;             /* run_user = nobody */
	gid_t run_gid;
	pid_t pid;                 /* supervisor, 0 when not running */
	pid_t pgrp;                /* its process group (= pid), kept after exit */
	int pidfd;
	int notify_fd;
	int syslog_fd;             /* opts.syslog: <tree>/devlog, else -1 */
	char syslog_path[96];
	char syslog_log[96];       /* <tree>/syslog: what it received */
	struct harness_drain *syslog_drain;
	int exit_status;           /* wait status of the last stop */
	bool passed;               /* set by harness_test_end(h, true) */
	long log_mark;             /* log offset at harness_test_begin */
};

/* A free TCP port on 127.0.0.1 (bound to port 0 and released), 0 if
 * none could be found.  Used for listeners of several instances. */
unsigned harness_pick_port(void);

/* Exit 77 (skipped) unless running as root; exit 1 if STOWD_BIN is unset. */
void harness_require_root(void);

/*
 * Create a tree with opts->nusers users, passwd-file and stowd.conf (not
 * started).  opts may be NULL.  Returns a new harness (caller frees with
 * harness_free) or NULL.
 */
struct harness *harness_new(const struct harness_opts *opts);

/* Stop stowd if running, kill leftovers, remove the tree (unless
 * STOWD_KEEP_TREE), free.  Accepts NULL; sets *h to NULL. */
void harness_free(struct harness **h);

/* Wait up to timeout_ms for a line stowd sent to syslog that contains
 * text; the whole line in buf (NUL-ended, cut to size).  0 or -1
 * (timeout, or no opts.syslog). */
int harness_syslog_wait(struct harness *h, const char *text, char *buf, size_t size,
			int timeout_ms);

/* Rewrite stowd.conf from the base plus opts->conf / conf_text. */
int harness_write_conf(struct harness *h, const struct harness_opts *opts);
/* Write text as the whole stowd.conf. */
int harness_write_conf_raw(struct harness *h, const char *text);
/* 1-based line of stowd.conf that starts with prefix, -1 if none. */
int harness_conf_line(const struct harness *h, const char *prefix);

/* ---- stowd's life (tests/lib/daemon.c) --------------------------------- */

/*
 * Start "$STOWD_BIN -F -c <conf>" with NOTIFY_SOCKET and wait up to
 * HARNESS_READY_TIMEOUT_MS for READY=1.  Fails early if stowd exits.
 */
int harness_start(struct harness *h);

/*
 * SIGTERM, wait for exit (bounded), SIGKILL the process group on timeout.
 * *status_out (may be NULL) gets the wait status.  Returns 0 if stowd
 * exited by itself within timeout_ms (<= 0: the default).
 */
int harness_stop(struct harness *h, int timeout_ms, int *status_out);

/* Send sig to the supervisor. */
int harness_signal(struct harness *h, int sig);
/* Send sig, a test hook of a test build, to the supervisor and wait until
 * its log says it took it (one more "test hook:" line; at most 10 s): the
 * next job after that is the one the hook acts on.  0 or -1. */
int harness_test_hook(struct harness *h, int sig);

/* Wait up to timeout_ms for the supervisor to exit; wait status in
 * *status_out.  Returns 0, or -1 (ETIMEDOUT) if still running. */
int harness_wait_exit(struct harness *h, int timeout_ms, int *status_out);

/* True while the supervisor runs (reaps it if it exited). */
bool harness_alive(struct harness *h);

/* SIGHUP; wait for RELOADING=1 and then READY=1. */
int harness_reload(struct harness *h);

/*
 * Wait up to timeout_ms for a datagram holding the line state
 * ("READY=1"); datagrams already queued count (see harness_drain_notify).
 * Lines seen on the way are appended to seen (may be NULL) as "A;B;".
 * Returns 0, or -1 (timeout: ETIMEDOUT, or stowd exited) after printing
 * why.  harness_poll_notify is the same without the message on timeout.
 */
int harness_wait_notify(struct harness *h, const char *state, int timeout_ms,
			char *seen, size_t seen_size);
int harness_poll_notify(struct harness *h, const char *state, int timeout_ms,
			char *seen, size_t seen_size);
/* Discard pending notifications. */
void harness_drain_notify(struct harness *h);

/* ---- LMTP and log (tests/lib/harness.c) ------------------------------- */

/* Connect to one listener and read the greeting (must be 220). */
int harness_connect(struct harness *h, enum harness_listener which,
		    struct lmtpc **out);

/*
 * Deliver one message to users idx[0..n) (0-based) through a new
 * connection on the unix listener: LHLO, MAIL, RCPT each, DATA body.
 * Succeeds if every reply is 2xx/354.
 */
int harness_deliver(struct harness *h, const unsigned *idx, size_t n,
		    const char *body, size_t len);

/* Mark the start of a test (remembers the log offset) and its end: unless
 * passed (or STOWD_SHOW_LOG), print the log written since the start. */
void harness_test_begin(struct harness *h);
void harness_test_end(struct harness *h, bool passed);
/* Print stowd.log from offset (0 = all) to stderr. */
void harness_dump_log(const struct harness *h, long offset);
/* True if stowd.log contains text. */
bool harness_log_contains(const struct harness *h, const char *text);
/* Lines of stowd.log that contain text (0 if there is no log yet). */
int harness_log_count(const struct harness *h, const char *text);

/* ---- Maildir inspection (tests/lib/maildir.c) ------------------------ */

/*
 * Names in <maildir of user idx>/<sub> ("new", "tmp", "cur"; "" for the
 * Maildir itself), sorted, without "." and "..".  A missing directory is
 * an empty list.  *names_out is malloc'd (harness_names_free).  Returns
 * the count or -1.
 */
int harness_maildir_list(const struct harness *h, unsigned idx, const char *sub,
			 char ***names_out);
int harness_dir_list(const char *dir, char ***names_out);
void harness_names_free(char ***names, int n);

/* Messages in new/ of user idx, -1 on error. */
int harness_count_new(const struct harness *h, unsigned idx);
/* Regular files anywhere below dir (recursively, symlinks not followed). */
int harness_count_files(const char *dir);

/* Whole file in a malloc'd buffer (NUL added, not counted). */
int harness_read_file(const char *path, char **data_out, size_t *len_out);
int harness_write_file(const char *path, const void *data, size_t len, mode_t mode);

/* lstat(path): not a symlink, owner uid:gid, permission bits == mode. */
int harness_check_owner_mode(const char *path, uid_t uid, gid_t gid, mode_t mode,
			     char *why, size_t why_size);

/* body with every CRLF turned into LF; malloc'd, size in *len_out. */
char *harness_crlf_to_lf(const char *body, size_t len, size_t *len_out);

/*
 * Check a stored message: it is "headers + expected body", where expected
 * = body with CRLF -> LF, the headers are exactly one Return-Path:, one
 * Delivered-To: (naming rcpt, if not NULL), one or more Received: lines,
 * each possibly continued by lines starting with TAB or space, and
 * nothing else.  Returns 0 or -1 with *why.
 */
int harness_check_stored(const char *msg, size_t len, const char *rcpt,
			 const char *body, size_t blen, char *why, size_t why_size);

/*
 * The file in new/ of user idx whose name contains guid (the "Saved as"
 * of the 250 reply; the name carries G<guid>), full path in path_out.
 * Returns 0 if found, -1 if not.
 */
int harness_find_guid(const struct harness *h, unsigned idx, const char *guid,
		      char *path_out, size_t path_size);

/* "Saved as <32 hex>" of a reply into guid_out[33]; 0 or -1. */
int harness_reply_guid(const char *reply_text, char guid_out[33]);

/* Fork, switch to uid/gid (no groups) and run fn(arg); 0 if it returned 0. */
int harness_run_as(uid_t uid, gid_t gid, int (*fn)(void *arg), void *arg);

/*
 * Run argv[0] with argv (NULL-ended), stdout+stderr collected in *output
 * (malloc'd, NUL-terminated; may be NULL), killed after timeout_ms.
 * *status_out gets the wait status.  Returns 0 if it ran to its end.
 */
int harness_run_capture(const char *const argv[], int timeout_ms,
			int *status_out, char **output);

/* ---- processes (tests/lib/proc.c) ------------------------------------ */

enum harness_role {
	HARNESS_ROLE_ANY = 0,
	HARNESS_ROLE_LMTPD,        /* real uid = run_user (lmtpd; also repl-hook) */
	HARNESS_ROLE_WRITER,       /* seteuid: real uid 0; fork: a test user's uid */
	HARNESS_ROLE_TEMPLATE,     /* fork: the writer template (uid 0,
				    * comm stowd-template) */
	HARNESS_ROLE_OTHER,
};

struct harness_proc {
	pid_t pid;
	pid_t ppid;
	pid_t pgrp;
	char state;                /* 'R', 'S', 'Z', ... */
	char comm[32];
	uid_t uid[4];              /* real, effective, saved, fs */
	gid_t gid[4];
	char groups[256];          /* the Groups: line, trimmed */
	uint64_t cap_inh, cap_prm, cap_eff, cap_bnd, cap_amb;
	int no_new_privs;          /* -1 if the line is missing */
	int seccomp;               /* -1 if the line is missing */
};

/* Monotonic clock in milliseconds, and one step of a bounded poll. */
int64_t harness_mono_ms(void);
void harness_sleep_ms(long ms);

/* /proc/PID/<name> into buf (NUL-terminated); its length, or -1 if the
 * process is gone or the file is empty. */
ssize_t harness_proc_file(pid_t pid, const char *name, char *buf, size_t size);

/* Read /proc/PID/stat and status.  -1 if the process is gone. */
int harness_proc_read(pid_t pid, struct harness_proc *p);

/*
 * Live (not zombie) descendants of root, found through the ppid field of
 * /proc/N/stat.  Returns the count (at most max) or -1.
 */
int harness_descendants(pid_t root, struct harness_proc *out, size_t max);

/* The role of a stowd child, from its Uid: line. */
enum harness_role harness_proc_role(const struct harness *h,
				    const struct harness_proc *p);

/* Descendants of the supervisor with that role (ANY = all). */
int harness_find_role(const struct harness *h, enum harness_role role,
		      struct harness_proc *out, size_t max);

/*
 * Bounded poll (up to timeout_ms) until at least min descendants have
 * role and none of them is in not_pids[0..n_not).  Returns the count or -1.
 */
int harness_wait_role(const struct harness *h, enum harness_role role,
		      size_t min, const pid_t *not_pids, size_t n_not,
		      int timeout_ms);

/* Processes still in stowd's process group, waiting up to timeout_ms for
 * it to empty (after a stop).  Returns the count left, -1 on error. */
int harness_group_left(const struct harness *h, int timeout_ms);

/* SIGKILL everything left in the process group and reap what is ours. */
void harness_kill_group(struct harness *h);

#endif
