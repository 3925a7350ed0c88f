/* SPDX-License-Identifier: MIT */
/*
 * policy/policy.h - settings (one declared table, the config parser),
 * userdb (passwd, passwd-file), uid rules, and the mapping of errors to
 * delivery results.
 *
 * Runs in:  the supervisor (parser, userdb); settings are inherited by
 *           children as a read-only copy.
 * Trust:    the config file and passwd-file are admin-controlled; addresses
 *           come from the network through lmtpd and are untrusted.
 */
#ifndef STOWD_POLICY_POLICY_H
#define STOWD_POLICY_POLICY_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "privsep/msg.h"

#define POLICY_DEFAULT_CONFIG "/etc/stowd/stowd.conf"

enum policy_delivery_mode {
	POLICY_MODE_SETEUID = 0,
	POLICY_MODE_FORK = 1,
};

enum policy_on_timeout {
	POLICY_ON_TIMEOUT_ACCEPT = 0,   /* 250, the event stays journaled */
	POLICY_ON_TIMEOUT_TEMPFAIL = 1, /* 451 4.4.1, the local copy removed */
};

enum policy_lmtp_tls {
	POLICY_TLS_NO = 0,              /* no STARTTLS */
	POLICY_TLS_OPTIONAL = 1,        /* offered on tcp: listeners */
	POLICY_TLS_REQUIRED = 2,        /* tcp: clients must STARTTLS first */
};

#define POLICY_MAX_NETWORKS 64

/* One network of lmtp_allow_networks. */
struct policy_net {
	int family;                     /* AF_INET or AF_INET6 */
	unsigned char addr[16];
	unsigned bits;
};

/* What reconciliation makes of a message whose file vanished from the
 * Maildir (replication_vanished). */
enum policy_vanished {
	POLICY_VANISHED_EXPUNGE = 0,    /* someone expunged it: tombstone */
	POLICY_VANISHED_REPAIR = 1,     /* a loss: restore it from a replica */
};

#define POLICY_MAX_REPLICAS 16
#define POLICY_MAX_REPL_UIDS 32
#define POLICY_MAX_PEERS 64        /* replication_peers */

/* One `replica NAME { address = tcp:HOST:PORT }` block. */
struct policy_replica {
	char name[64];                  /* NAME: letters, digits, - _ . */
	char address[192];              /* as written */
	char host[128];                 /* host name or IP literal (no brackets) */
	uint16_t port;
};

enum policy_log_target {
	POLICY_LOG_STDERR = 0,
	POLICY_LOG_SYSLOG = 1,
};

/*
 * All settings.  Strings are owned by the struct (policy_settings_free).
 * Durations are in milliseconds, sizes in bytes.
 */
struct policy_settings {
	/* LMTP front-end */
	char *lmtp_listen;              /* "unix:/run/stowd/lmtp tcp:127.0.0.1:24" */
	unsigned lmtp_socket_mode;      /* 0666 */
	char *lmtp_socket_group;        /* "" = root's group */
	unsigned lmtp_processes;        /* front-end processes */
	uint64_t lmtp_max_message_size; /* 50M */
	unsigned lmtp_max_recipients;   /* 1000 */
	uint64_t lmtp_command_timeout;  /* 5m */
	unsigned lmtp_max_line_length;  /* data line limit, 64K */
	unsigned lmtp_max_connections;  /* per front-end process, 256 */
	unsigned lmtp_max_connections_per_peer; /* per process: address or uid, 64 */
	uint64_t lmtp_duplicate_window; /* 0 = off; per mailbox, by Message-ID
					 * and body digest */
	enum policy_lmtp_tls lmtp_tls;  /* no */
	char *lmtp_tls_cert;            /* PEM paths, opened by the supervisor,
					 * parsed only in lmtpd */
	char *lmtp_tls_key;
	char *lmtp_allow_networks;      /* "" = any client of tcp: listeners */
	char *hostname;                 /* "" = node name, see
					 * policy_settings_resolve_hostname */

	/* delivery */
	enum policy_delivery_mode delivery_mode;
	unsigned seteuid_workers;       /* 8 */
	unsigned fork_max_children;     /* 256 */
	uint64_t fork_idle_timeout;     /* 60s */
	unsigned fork_max_requests;     /* 10000 */
	uint64_t writer_timeout;        /* 2m: longest one write may take */
	unsigned delivery_max_workers_per_user; /* 2: writers busy for one uid */
	unsigned delivery_max_queued;   /* 20000 jobs waiting for writers */
	unsigned delivery_max_queued_per_user;  /* 2000 of them for one uid */
	uint64_t index_lock_timeout;    /* 10s: wait for a user's index lock */
	uint64_t index_max_size;        /* 1G: largest index log replayed */
	unsigned index_max_messages;    /* 1000000 GUIDs in one mailbox's index */

	/* users and mailboxes */
	char *userdb;                   /* "passwd" or "passwd-file:PATH" */
	char *mail_location;            /* "maildir:~/Maildir" */
	char *recipient_delimiter;      /* "+" ("" = none) */
	char *quota_rule;               /* default Dovecot quota_rule ("" = no
					 * quota unless the userdb gives one) */
	bool quota_full_tempfail;       /* no: 552 5.2.2; yes: 452 4.2.2 */
	bool lmtp_rcpt_check_quota;     /* no: check at save time only */
	bool lmtp_save_to_detail_mailbox; /* no: user+detail goes to INBOX */
	bool lda_mailbox_autocreate;    /* no: a missing detail folder means
					 * INBOX; yes: it is created */
	char *run_user;                 /* "stowd" */
	unsigned first_valid_uid;       /* 500 */
	unsigned last_valid_uid;        /* 0 = no limit */

	/* replication */
	char *replication_listen;       /* "" = accept no replication */
	char *replication_tls_cert;     /* PEM paths, opened by the supervisor,
					 * parsed by repld and repl-hook */
	char *replication_tls_key;
	char *replication_tls_ca;
	char *replication_peers;        /* server ids a TLS peer may claim,
					 * space-separated ("" = any id its
					 * certificate names) */
	size_t n_repl_unix_uids;        /* replication_unix_uids, parsed */
	uid_t repl_unix_uids[POLICY_MAX_REPL_UIDS];
	unsigned replication_sync_acks; /* 0 = asynchronous */
	uint64_t replication_sync_timeout;      /* 2s */
	enum policy_on_timeout replication_on_timeout; /* accept */
	bool replication_quota_exceed;  /* yes: a replica saves what the
					 * master accepted even over quota */
	uint64_t replication_journal_max_size;  /* 1G */
	uint64_t replication_full_sync_interval;/* 1d; 0 = only at start */
	unsigned replication_max_connections;   /* repld, 64 */
	uint64_t replication_handshake_timeout; /* 10s: TLS + first command */
	enum policy_vanished replication_vanished;      /* expunge */
	uint64_t replication_capture_delay;     /* 200ms; 0 = no inotify */
	size_t n_replicas;
	struct policy_replica replicas[POLICY_MAX_REPLICAS];

	/* runtime */
	char *server_id;                /* "" = the hostname (resolved once by
					 * policy_settings_resolve_hostname) */
	char *state_dir;                /* "/var/lib/stowd" */
	bool log_debug;                 /* no */
	enum policy_log_target log_target; /* stderr */

	/* operations */
	char *control_socket;           /* "/run/stowd/control" ("" = none) */
	char *metrics_listen;           /* "" = no metrics listener */
};

/* ---- settings --------------------------------------------------------- */

/* Fill s with built-in defaults.  Caller frees strings with
 * policy_settings_clear. */
void policy_settings_defaults(struct policy_settings *s);
/* Free the strings of s and zero it. */
void policy_settings_clear(struct policy_settings *s);
/* An empty hostname becomes the system's node name ("localhost" if that
 * fails), and an empty server_id becomes the hostname (its first 64
 * octets), so every process uses one name.  The supervisor calls this once
 * on each loaded config; children inherit the result. */
void policy_settings_resolve_hostname(struct policy_settings *s);

/* Deep copy. */
void policy_settings_copy(struct policy_settings *dst, const struct policy_settings *src);

/*
 * Load path into *s (which is first set to defaults).  If path does not
 * exist and !required, *s keeps the defaults and 0 is returned.  On error
 * returns -1 and sets *err_out to "FILE:LINE: message" (caller frees).
 * Supports `key = value`, `# comments`, `replica NAME { address = ... }`
 * blocks (any other block is an error) and `!include FILE` (relative to
 * the including file's directory).  Cross-checks: replication_listen with
 * tcp: or any replica needs replication_tls_cert/key/ca; sync_acks <=
 * the number of replicas; replica names unique.
 */
int policy_config_load(const char *path, bool required, struct policy_settings *s,
		       char **err_out);

/* Set one setting by name from text (used by the parser and by tests).
 * Returns 0 or -1 with *why_out (static text). */
int policy_setting_set(struct policy_settings *s, const char *name,
		       const char *value, const char **why_out);

/* `stowd -a`: every setting with its default and description. */
void policy_settings_print_all(FILE *f);
/* `stowd -n`: settings whose value differs from the default. */
void policy_settings_print_changed(FILE *f, const struct policy_settings *s);

/* ---- listeners -------------------------------------------------------- */

enum policy_listen_kind {
	POLICY_LISTEN_UNIX = 0,
	POLICY_LISTEN_TCP = 1,
};

struct policy_listen {
	enum policy_listen_kind kind;
	char path[108];   /* unix: socket path */
	char host[64];    /* tcp: numeric IPv4 or IPv6 address (no brackets) */
	uint16_t port;    /* tcp */
	char text[192];   /* the entry as written */
};

/*
 * Parse a listen list ("unix:/run/stowd/lmtp tcp:127.0.0.1:24 tcp:[::1]:24").
 * On success *out is a malloc'd array (caller frees) of *n_out entries.
 * Returns 0 or -1 with *why_out.
 */
int policy_listen_parse(const char *list, struct policy_listen **out, size_t *n_out,
			const char **why_out);

/*
 * Parse a blank- or comma-separated list of networks ("10.0.0.0/8 ::1")
 * into out[0..*n_out), at most max.  Returns 0 or -1 with errno EINVAL and
 * *why_out.
 */
int policy_networks_parse(const char *text, struct policy_net *out, size_t max,
			  size_t *n_out, const char **why_out);

/* True if the address of sa (AF_INET or AF_INET6; a v4-mapped IPv6
 * address counts as IPv4) is in one of nets[0..n). */
struct sockaddr;
bool policy_networks_match(const struct policy_net *nets, size_t n,
			   const struct sockaddr *sa);

/* ---- users ------------------------------------------------------------ */

struct policy_user {
	char name[PSEP_NAME_MAX];       /* the userdb key that matched */
	uid_t uid;
	gid_t gid;
	size_t ngroups;
	gid_t groups[PSEP_MAX_GROUPS];  /* supplementary groups, gid first */
	char home[PSEP_PATH_MAX];
	char mail_base[PSEP_PATH_MAX];  /* trusted directory (opened normally) */
	char mail_rel[PSEP_PATH_MAX];   /* below base, walked with no symlinks */
	char detail[PSEP_NAME_MAX];     /* the address detail after the
					 * recipient_delimiter, as given ("" =
					 * none, or too long) */
	char quota_rule[PSEP_NAME_MAX]; /* passwd-file extra field
					 * userdb_quota_rule=, "" = none (the
					 * quota_rule setting applies) */
};

enum policy_lookup {
	POLICY_USER_FOUND = 0,
	POLICY_USER_UNKNOWN = 1,        /* 550 5.1.1 */
	POLICY_USER_TEMPFAIL = 2,       /* 451 4.3.0 */
	POLICY_USER_BADUID = 3,         /* 550 5.7.1 */
	POLICY_USER_BADADDR = 4,        /* 501 5.1.3 */
};

struct policy_userdb;

/* Open the userdb named by s->userdb.  passwd-file is read now (and re-read
 * when it changes).  Returns 0 or -1 with *why_out. Caller frees with
 * policy_userdb_free. s is copied as needed, not borrowed. */
int policy_userdb_open(const struct policy_settings *s, struct policy_userdb **out,
		       const char **why_out);
void policy_userdb_free(struct policy_userdb **db);

/*
 * Resolve a recipient address (local@domain or local, detail after the
 * recipient_delimiter stripped, local part lower-cased for system users).
 * Fills *user on POLICY_USER_FOUND.  Applies the uid rules and expands
 * mail_location.  Otherwise *why_out gets a short reason (static, or held
 * by db: valid until the next lookup on db).  A uid outside the rules or a
 * primary gid 0 gives POLICY_USER_BADUID.
 */
enum policy_lookup policy_userdb_lookup(struct policy_userdb *db, const char *address,
					struct policy_user *user, const char **why_out);

/*
 * Call cb(name, arg) for each user of the userdb: passwd: every system
 * user (setpwent/getpwent) whose uid passes the uid rules; passwd-file:
 * every entry (its key).  name is borrowed for the call.  A non-zero
 * return of cb stops the walk and is returned.  Returns 0, cb's value, or
 * -1 with errno (passwd-file unreadable).  Runs in the supervisor.
 */
int policy_userdb_foreach(struct policy_userdb *db,
			  int (*cb)(const char *name, void *arg), void *arg);

/*
 * True if a TLS replication peer may claim server id id in HELLO as far as
 * the list goes: replication_peers is empty or lists id (exact match).
 * The certificate check (the certificate must name id) is the caller's.
 */
bool policy_repl_peer_listed(const struct policy_settings *s, const char *id);

/* True if uid is in replication_unix_uids. */
bool policy_repl_unix_uid_allowed(const struct policy_settings *s, uid_t uid);

/* uid rules: not 0, >= first_valid_uid, <= last_valid_uid (if non-zero). */
bool policy_uid_allowed(const struct policy_settings *s, uid_t uid);

/*
 * Split mail_location ("maildir:~/Maildir", "maildir:/var/vmail/%d/%n") for
 * one user into a trusted base and a relative part.  ~/ = home.  Variables:
 * %u full user, %n local part, %d domain, %% a percent.  The base is the
 * longest leading part without variables (the home for ~/).  Returns 0 or
 * -1 with *why_out.
 */
int policy_mail_location_expand(const char *location, const char *user,
				const char *home, char *base_out, size_t base_size,
				char *rel_out, size_t rel_size, const char **why_out);

/*
 * The mailbox named by an address detail (lmtp_save_to_detail_mailbox):
 * "" or "inbox" (any case) is "INBOX"; otherwise the detail with '.' as
 * the hierarchy separator, checked (no '/', '\\', '~', '*', '%', control
 * byte, '.' at an end or "..") and converted from UTF-8 to modified UTF-7
 * (RFC 3501 5.1.3, as Dovecot names Maildir++ folders on disk) into
 * out[out_size].  Returns 0, or -1 with errno EINVAL and *why_out (static
 * text): the caller saves into INBOX.
 */
int policy_detail_mailbox(const char *detail, char *out, size_t out_size,
			  const char **why_out);

/* ---- delivery results ------------------------------------------------- */

/* Fill r.  text is printf-formatted, CR/LF replaced by spaces. */
void policy_result_set(struct dlv_result *r, enum dlv_status status, unsigned code,
		       const char *enhanced, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

/*
 * Map an errno from a mailbox write to a result (the one place this is
 * decided): EDQUOT -> 552 5.2.2 "mailbox full", ENOSPC -> 452 4.2.2, ELOOP /
 * ENOTDIR / EXDEV (symlink or foreign object in the Maildir) -> 450 4.2.0
 * "mailbox not writable", EACCES/EPERM -> 450 4.2.0, EROFS -> 451 4.3.0 ...
 * what names the step ("create tmp file") and appears in the text.
 */
void policy_result_from_errno(struct dlv_result *r, int err, const char *what);

/* The quota rule that applies to u: its userdb rule, else s->quota_rule;
 * "" for none.  Borrowed from u or s. */
const char *policy_user_quota_rule(const struct policy_settings *s,
				   const struct policy_user *u);

/* Result for a recipient over quota: 552 5.2.2, or 452 4.2.2 with
 * quota_full_tempfail (Dovecot's codes). */
void policy_result_quota(struct dlv_result *r, const struct policy_settings *s);

/* Result for a failed lookup. */
void policy_result_from_lookup(struct dlv_result *r, enum policy_lookup l,
			       const char *why);

#endif
