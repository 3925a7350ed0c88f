/* SPDX-License-Identifier: MIT */
/*
 * tests/lib/imapd.h - a private Dovecot IMAP server (Debian's dovecot-imapd,
 * Dovecot 2.3) on the Maildirs stowd writes, for the integration tests.
 *
 * Runs in:  integration test programs, as root (Dovecot's master must be
 *           root to switch to the users of its passwd-file).
 * Trust:    Dovecot is a second program touching the same Maildirs: every
 *           wait is bounded, a server that does not greet in time or does
 *           not stop is reported and its process group killed.
 * Layout:   <dir>/dovecot.conf, dovecot.log (log_path), dovecot.out (its
 *           stdout and stderr), run/ (base_dir: sockets, master.pid),
 *           state/ (state_dir).  <dir> is /tmp/stowd-imapd.XXXXXX, 0755.
 *           Nothing of the system instance (/etc/dovecot, /run/dovecot,
 *           /var/lib/dovecot) is used; a system dovecot may run beside it.
 * Listener: imap on 127.0.0.1:<port>, a free port picked at start (picked
 *           again if Dovecot could not bind it); no TLS, plaintext LOGIN.
 * Env:      STOWD_KEEP_TREE keeps <dir>; STOWD_SHOW_LOG prints the log at
 *           imapd_free.
 * Errors:   functions return 0 / -1 (or a count / -1) and print one line
 *           saying what failed to stderr.
 */
#ifndef STOWD_TESTS_IMAPD_H
#define STOWD_TESTS_IMAPD_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define IMAPD_BIN "/usr/sbin/dovecot"
#define IMAPD_DOVEADM_BIN "/usr/bin/doveadm"
#define IMAPD_READY_TIMEOUT_MS 10000
#define IMAPD_STOP_TIMEOUT_MS 10000
#define IMAPD_DOVEADM_TIMEOUT_MS 10000
#define IMAPD_FIRST_VALID_UID 100
#define IMAPD_DEFAULT_MAIL_LOCATION "maildir:~/Maildir"

/* One line of a Dovecot passwd-file. */
struct imapd_user {
	const char *name;          /* login name */
	const char *password;      /* plain text, stored as {PLAIN} */
	uid_t uid;
	gid_t gid;
	const char *home;          /* absolute; "~" of mail_location */
	/*
	 * Extra fields, space-separated, NULL or "" for none; userdb fields
	 * take the "userdb_" prefix, e.g. "userdb_quota_rule=*:storage=1M".
	 */
	const char *extra;
};

enum imapd_flag {
	/*
	 * The quota plugin with a Maildir++ quota ("quota = maildir:User
	 * quota", the maildirsize file) and imap_quota (GETQUOTAROOT).
	 * Limits come from the userdb (the user's extra fields) or from
	 * opts->quota_rule.
	 */
	IMAPD_QUOTA = 1u << 0,
};

struct imapd_opts {
	const char *passwd_path;   /* Dovecot passwd-file; required */
	const char *mail_location; /* NULL = IMAPD_DEFAULT_MAIL_LOCATION */
	unsigned flags;            /* enum imapd_flag */
	/* plugin quota_rule for users without their own, e.g.
	 * "*:storage=10M"; NULL = none (no limit).  Needs IMAPD_QUOTA. */
	const char *quota_rule;
	const char *conf_text;     /* appended verbatim to dovecot.conf; may be NULL */
};

struct imapd {
	char dir[64];              /* /tmp/stowd-imapd.XXXXXX */
	char conf_path[96];
	char log_path[96];
	char out_path[96];
	char base_dir[96];
	char state_dir[96];
	char instance[32];         /* instance_name, "stowd-<dir suffix>" */
	char addr[64];             /* "tcp:127.0.0.1:<port>" for imapc_connect */
	unsigned port;
	pid_t pid;                 /* master, 0 when not running */
	int exit_status;           /* wait status of the master after a stop */
};

/* True if Debian's dovecot and doveadm binaries are installed. */
bool imapd_installed(void);

/*
 * Write a Dovecot passwd-file at path (mode 0644: Dovecot's auth process
 * reads it as its own user; test passwords are no secrets) with the users
 * u[0..n): "name:{PLAIN}password:uid:gid::home::extra".
 */
int imapd_passwd_write(const char *path, const struct imapd_user *u, size_t n);

/*
 * Create the private directory and dovecot.conf, start "dovecot -F -c
 * <conf>" as a child in its own process group and wait (up to
 * IMAPD_READY_TIMEOUT_MS) until a connection to the port gets the
 * "* OK" greeting.  Returns a running server (caller frees with
 * imapd_free) or NULL.
 */
struct imapd *imapd_start(const struct imapd_opts *opts);

/*
 * SIGTERM to the master, wait up to timeout_ms (<= 0: the default) for it
 * to exit, SIGKILL its process group on timeout or if children are left.
 * Returns 0 if Dovecot stopped by itself in time.  No-op when not running.
 */
int imapd_stop(struct imapd *d, int timeout_ms);

/* Stop if running, remove the directory (unless STOWD_KEEP_TREE), free.
 * Accepts NULL; sets *d to NULL. */
void imapd_free(struct imapd **d);

/*
 * Run "doveadm -c <conf> args..." (args NULL-ended, e.g. "force-resync",
 * "-u", "u1", "INBOX"), bounded by IMAPD_DOVEADM_TIMEOUT_MS.  Its stdout
 * and stderr go to *output (malloc'd, caller frees; output may be NULL).
 * Returns 0 if it exited with status 0.
 */
int imapd_doveadm(const struct imapd *d, char **output, const char *arg, ...)
	__attribute__((sentinel));

/* Print dovecot.log and dovecot.out to stderr. */
void imapd_dump_log(const struct imapd *d);

/* True if dovecot.log contains text. */
bool imapd_log_contains(const struct imapd *d, const char *text);

#endif
