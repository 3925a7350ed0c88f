/* SPDX-License-Identifier: MIT */
/*
 * policy/settings.c - the one table of stowd settings (name, type, default,
 * description, validator, field) and what works on it: defaults, copy,
 * set by name, cross-field checks, `stowd -a` and `stowd -n` output.
 *
 * Runs in:  the supervisor (and tests).  Children get a read-only copy.
 * Trust:    values come from the admin's config file; each is parsed by
 *           type, range-checked and validated before it is stored.
 */
#include <assert.h>
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

#include "policy/policy_int.h"
#include "privsep/privsep.h"

#define FIELD(f) \
	.offset = offsetof(struct policy_settings, f), \
	.size = sizeof(((struct policy_settings *)NULL)->f)

#define KIB 1024ull
#define MIB (1024ull * 1024)
#define SEC 1000ull
#define HOUR (3600ull * 1000)

_Static_assert(sizeof(unsigned) == sizeof(uint32_t), "unsigned is 32 bits");
_Static_assert(sizeof(enum policy_delivery_mode) == sizeof(uint32_t),
	       "enum stored as 32 bits");
_Static_assert(sizeof(uid_t) == sizeof(uint32_t), "uid_t is 32 bits");
_Static_assert(sizeof(enum policy_on_timeout) == sizeof(uint32_t),
	       "enum stored as 32 bits");
_Static_assert(sizeof(enum policy_lmtp_tls) == sizeof(uint32_t),
	       "enum stored as 32 bits");
_Static_assert(sizeof(enum policy_vanished) == sizeof(uint32_t),
	       "enum stored as 32 bits");

static const char *const delivery_mode_names[] = { "seteuid", "fork", NULL };
static const char *const on_timeout_names[] = { "accept", "tempfail", NULL };
static const char *const log_target_names[] = { "stderr", "syslog", NULL };
_Static_assert(sizeof(enum policy_log_target) == sizeof(uint32_t),
	       "enum stored as 32 bits");
static const char *const lmtp_tls_names[] = { "no", "optional", "required", NULL };
static const char *const vanished_names[] = { "expunge", "repair", NULL };

/* ---- validators -------------------------------------------------------- */

static bool
chars_in(const char *text, const char *extra)
{
	const unsigned char *p;

	for (p = (const unsigned char *)text; *p != '\0'; p++) {
		bool alnum = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			     (*p >= '0' && *p <= '9');

		if (!alnum && strchr(extra, *p) == NULL)
			return false;
	}
	return true;
}

static bool
printable_no_space(const char *text)
{
	const unsigned char *p;

	for (p = (const unsigned char *)text; *p != '\0'; p++)
		if (*p <= 0x20 || *p >= 0x7f)
			return false;
	return true;
}

static bool
printable_or_space(const char *text)
{
	const unsigned char *p;

	for (p = (const unsigned char *)text; *p != '\0'; p++)
		if ((*p < 0x20 && *p != '\t') || *p >= 0x7f)
			return false;
	return true;
}

static int
validate_listen(const struct policy_setting_def *d, const char *text,
		uint64_t num, const char **why_out)
{
	struct policy_listen *v = NULL;
	size_t n = 0;

	(void)d;
	(void)num;
	if (policy_listen_parse(text, &v, &n, why_out) < 0)
		return -1;
	free(v);
	return 0;
}

/* "" (no replication listener) or a listen list. */
static int
validate_opt_listen(const struct policy_setting_def *d, const char *text,
		    uint64_t num, const char **why_out)
{
	if (text[0] == '\0')
		return 0;
	return validate_listen(d, text, num, why_out);
}

static int
account_check(const char *text, const char **why_out)
{
	if (strlen(text) > 32 || text[0] == '-' || !chars_in(text, "_.-")) {
		*why_out = "not a valid user or group name";
		return -1;
	}
	return 0;
}

static int
validate_user(const struct policy_setting_def *d, const char *text,
	      uint64_t num, const char **why_out)
{
	(void)d;
	(void)num;
	if (text[0] == '\0') {
		*why_out = "must not be empty";
		return -1;
	}
	return account_check(text, why_out);
}

/* A group name or number; empty = root's group. */
static int
validate_group(const struct policy_setting_def *d, const char *text,
	       uint64_t num, const char **why_out)
{
	(void)d;
	(void)num;
	if (text[0] == '\0')
		return 0;
	return account_check(text, why_out);
}

static int
validate_hostname(const struct policy_setting_def *d, const char *text,
		  uint64_t num, const char **why_out)
{
	(void)d;
	(void)num;
	if (strlen(text) > 253 || !chars_in(text, ".-")) {
		*why_out = "not a valid host name";
		return -1;
	}
	return 0;
}

static int
validate_userdb(const struct policy_setting_def *d, const char *text,
		uint64_t num, const char **why_out)
{
	const char *path;

	(void)d;
	(void)num;
	if (strcmp(text, "passwd") == 0)
		return 0;
	if (strncmp(text, "passwd-file:", 12) != 0) {
		*why_out = "expected passwd or passwd-file:/absolute/path";
		return -1;
	}
	path = text + 12;
	if (path[0] != '/' || strlen(path) >= PSEP_PATH_MAX ||
	    !printable_no_space(path)) {
		*why_out = "passwd-file needs an absolute path";
		return -1;
	}
	return 0;
}

static int
validate_mail_location(const struct policy_setting_def *d, const char *text,
		       uint64_t num, const char **why_out)
{
	char base[PSEP_PATH_MAX], rel[PSEP_NAME_MAX];

	(void)d;
	(void)num;
	/* A trial expansion catches the prefix, unknown variables and a
	 * location that names no directory below its base. */
	return policy_mail_location_expand(text, "user@example.com", "/home/user",
					   base, sizeof(base), rel, sizeof(rel),
					   why_out);
}

static int
validate_delimiter(const struct policy_setting_def *d, const char *text,
		   uint64_t num, const char **why_out)
{
	(void)d;
	(void)num;
	if (strlen(text) > 8 || !printable_no_space(text) ||
	    strchr(text, '@') != NULL) {
		*why_out = "at most 8 printable characters, not '@'";
		return -1;
	}
	return 0;
}

static int
validate_server_id(const struct policy_setting_def *d, const char *text,
		   uint64_t num, const char **why_out)
{
	(void)d;
	(void)num;
	if (strlen(text) > 64 || !printable_no_space(text)) {
		*why_out = "at most 64 printable characters, no spaces";
		return -1;
	}
	return 0;
}

/* replication_peers: server ids (as validate_server_id), space-separated. */
static int
validate_peers(const struct policy_setting_def *d, const char *text,
	       uint64_t num, const char **why_out)
{
	const char *p = text;
	size_t n = 0;

	(void)d;
	(void)num;
	while (*p != '\0') {
		size_t len;

		p += strspn(p, " \t");
		len = strcspn(p, " \t");
		if (len == 0)
			break;
		if (len > 64) {
			*why_out = "each peer is a server id of at most 64 characters";
			return -1;
		}
		if (++n > POLICY_MAX_PEERS) {
			*why_out = "too many peers";
			return -1;
		}
		p += len;
	}
	if (!printable_or_space(text)) {
		*why_out = "server ids of printable characters, space-separated";
		return -1;
	}
	return 0;
}

static int
validate_abs_path(const struct policy_setting_def *d, const char *text,
		  uint64_t num, const char **why_out)
{
	(void)d;
	(void)num;
	if (text[0] != '/' || strlen(text) >= PSEP_PATH_MAX ||
	    !printable_no_space(text)) {
		*why_out = "must be an absolute path";
		return -1;
	}
	return 0;
}

/* "" or an absolute path. */
static int
validate_opt_abs_path(const struct policy_setting_def *d, const char *text,
		      uint64_t num, const char **why_out)
{
	if (text[0] == '\0')
		return 0;
	return validate_abs_path(d, text, num, why_out);
}

/* 0 (only at start) or at least a minute. */
static int
validate_sync_interval(const struct policy_setting_def *d, const char *text,
		       uint64_t num, const char **why_out)
{
	(void)d;
	(void)text;
	if (num != 0 && num < SEC) {
		*why_out = "must be 0 (only at start) or at least 1s";
		return -1;
	}
	return 0;
}

/* "" (no control socket) or an absolute path that fits a unix socket
 * address (with room for the private bind directory beside it). */
static int
validate_control_socket(const struct policy_setting_def *d, const char *text,
			uint64_t num, const char **why_out)
{
	if (text[0] == '\0')
		return 0;
	if (validate_abs_path(d, text, num, why_out) < 0)
		return -1;
	if (strlen(text) > 80) {
		*why_out = "too long for a unix socket path (at most 80 octets)";
		return -1;
	}
	return 0;
}

static int
validate_networks(const struct policy_setting_def *d, const char *text,
		  uint64_t num, const char **why_out)
{
	struct policy_net nets[POLICY_MAX_NETWORKS];
	size_t n;

	(void)d;
	(void)num;
	return policy_networks_parse(text, nets, POLICY_MAX_NETWORKS, &n, why_out);
}

/* Dovecot's "<mailbox mask>:<limits>" shape; the limits themselves are
 * parsed by storage/ (store_quota_rule_parse), which the supervisor runs
 * on the loaded value before it uses it. */
static int
validate_quota_rule(const struct policy_setting_def *d, const char *text,
		    uint64_t num, const char **why_out)
{
	const char *colon = strchr(text, ':');

	(void)d;
	(void)num;
	if (text[0] == '\0')
		return 0;
	if (colon == NULL || colon == text || colon[1] == '\0' ||
	    !printable_no_space(text)) {
		*why_out = "expected MASK:LIMITS, e.g. *:storage=1G:messages=50000";
		return -1;
	}
	return 0;
}

/* ---- the table --------------------------------------------------------- */

const struct policy_setting_def policy_setting_defs[] = {
	{ .name = "lmtp_listen", .type = POLICY_T_STRING,
	  .def = "unix:/run/stowd/lmtp tcp:127.0.0.1:24",
	  .desc = "LMTP listeners, space-separated: unix:/path, tcp:IPv4:PORT, tcp:[IPv6]:PORT",
	  .validate = validate_listen, FIELD(lmtp_listen) },
	{ .name = "lmtp_socket_mode", .type = POLICY_T_MODE, .def = "0666",
	  .desc = "permissions of the LMTP unix sockets (narrow with 0660 and lmtp_socket_group)",
	  FIELD(lmtp_socket_mode), .min = 0, .max = 0777 },
	{ .name = "lmtp_socket_group", .type = POLICY_T_STRING, .def = "",
	  .desc = "group of the LMTP unix sockets, e.g. postfix (empty = root's group)",
	  .validate = validate_group, FIELD(lmtp_socket_group) },
	{ .name = "lmtp_processes", .type = POLICY_T_UINT, .def = "2",
	  .desc = "number of LMTP front-end processes",
	  FIELD(lmtp_processes), .min = 1, .max = 64 },
	{ .name = "lmtp_max_message_size", .type = POLICY_T_SIZE, .def = "50M",
	  .desc = "largest message accepted (552 5.3.4 above it)",
	  FIELD(lmtp_max_message_size), .min = KIB, .max = UINT64_MAX },
	{ .name = "lmtp_max_recipients", .type = POLICY_T_UINT, .def = "1000",
	  .desc = "most RCPT TO accepted in one transaction",
	  FIELD(lmtp_max_recipients), .min = 1, .max = 100000 },
	{ .name = "lmtp_command_timeout", .type = POLICY_T_DURATION, .def = "5m",
	  .desc = "longest wait for a command or the next piece of a body before 421 4.4.2",
	  FIELD(lmtp_command_timeout), .min = SEC, .max = 24 * HOUR },
	{ .name = "lmtp_max_line_length", .type = POLICY_T_SIZE, .def = "64K",
	  .desc = "longest line accepted in a message body",
	  FIELD(lmtp_max_line_length), .min = 1000, .max = 16 * MIB },
	{ .name = "lmtp_max_connections", .type = POLICY_T_UINT, .def = "256",
	  .desc = "most client connections one LMTP front-end process serves (more get 421 4.3.2)",
	  FIELD(lmtp_max_connections), .min = 1, .max = 65536 },
	{ .name = "lmtp_max_connections_per_peer", .type = POLICY_T_UINT, .def = "64",
	  .desc = "most connections of one peer (TCP address, unix uid) per front-end process",
	  FIELD(lmtp_max_connections_per_peer), .min = 1, .max = 65536 },
	{ .name = "lmtp_tls", .type = POLICY_T_ENUM, .def = "no",
	  .desc = "STARTTLS on tcp: LMTP listeners: no, optional (offered) or required (530 5.7.0 before it)",
	  FIELD(lmtp_tls), .names = lmtp_tls_names },
	{ .name = "lmtp_tls_cert", .type = POLICY_T_STRING, .def = "",
	  .desc = "PEM certificate (chain) for LMTP STARTTLS, opened as root, read only by lmtpd",
	  .validate = validate_opt_abs_path, FIELD(lmtp_tls_cert) },
	{ .name = "lmtp_tls_key", .type = POLICY_T_STRING, .def = "",
	  .desc = "PEM private key of lmtp_tls_cert, opened as root, parsed only by lmtpd (may be root-only)",
	  .validate = validate_opt_abs_path, FIELD(lmtp_tls_key) },
	{ .name = "lmtp_allow_networks", .type = POLICY_T_STRING, .def = "",
	  .desc = "client networks allowed on tcp: LMTP listeners, e.g. 127.0.0.1/32 10.0.0.0/8 ::1 (empty = any)",
	  .validate = validate_networks, FIELD(lmtp_allow_networks) },
	{ .name = "lmtp_duplicate_window", .type = POLICY_T_DURATION, .def = "0",
	  .desc = "a message saved again into the same mailbox within this time (same Message-ID and body) gets the stored GUID, not a second copy (0 = off)",
	  FIELD(lmtp_duplicate_window), .min = 0, .max = 30 * 24 * HOUR },
	{ .name = "hostname", .type = POLICY_T_STRING, .def = "",
	  .desc = "host name used in greetings and Received: (empty = gethostname())",
	  .validate = validate_hostname, FIELD(hostname) },
	{ .name = "delivery_mode", .type = POLICY_T_ENUM, .def = "seteuid",
	  .desc = "how writers take the user's identity: seteuid (worker pool) or fork (child per uid)",
	  FIELD(delivery_mode), .names = delivery_mode_names },
	{ .name = "seteuid_workers", .type = POLICY_T_UINT, .def = "8",
	  .desc = "number of writer workers in seteuid mode",
	  FIELD(seteuid_workers), .min = 1, .max = 256 },
	{ .name = "fork_max_children", .type = POLICY_T_UINT, .def = "256",
	  .desc = "most per-uid writer children in fork mode (least recently used evicted)",
	  FIELD(fork_max_children), .min = 1, .max = 4096 },
	{ .name = "fork_idle_timeout", .type = POLICY_T_DURATION, .def = "60s",
	  .desc = "idle time after which a per-uid writer child exits (fork mode)",
	  FIELD(fork_idle_timeout), .min = SEC, .max = 24 * HOUR },
	{ .name = "fork_max_requests", .type = POLICY_T_UINT, .def = "10000",
	  .desc = "writes after which a per-uid writer child is replaced (0 = unlimited)",
	  FIELD(fork_max_requests), .min = 0, .max = UINT32_MAX },
	{ .name = "writer_timeout", .type = POLICY_T_DURATION, .def = "2m",
	  .desc = "longest time one write may take before the writer is killed (451 4.3.0)",
	  FIELD(writer_timeout), .min = SEC, .max = 24 * HOUR },
	{ .name = "delivery_max_workers_per_user", .type = POLICY_T_UINT, .def = "2",
	  .desc = "most seteuid workers busy for one uid at once (the others serve other users)",
	  FIELD(delivery_max_workers_per_user), .min = 1, .max = 256 },
	{ .name = "delivery_max_queued", .type = POLICY_T_UINT, .def = "20000",
	  .desc = "most writes waiting for a writer (more get 451 4.3.2)",
	  FIELD(delivery_max_queued), .min = 1, .max = 1000000 },
	{ .name = "delivery_max_queued_per_user", .type = POLICY_T_UINT, .def = "2000",
	  .desc = "most writes waiting for a writer for one uid (more get 451 4.3.2)",
	  FIELD(delivery_max_queued_per_user), .min = 1, .max = 1000000 },
	{ .name = "index_lock_timeout", .type = POLICY_T_DURATION, .def = "10s",
	  .desc = "longest wait for a mailbox's index lock before a 4xx for that message",
	  FIELD(index_lock_timeout), .min = 10, .max = HOUR },
	{ .name = "index_max_size", .type = POLICY_T_SIZE, .def = "1G",
	  .desc = "largest mailbox index a replication operation reads (larger: an error for that mailbox)",
	  FIELD(index_max_size), .min = MIB, .max = UINT64_MAX },
	{ .name = "index_max_messages", .type = POLICY_T_UINT, .def = "1000000",
	  .desc = "most messages (tombstones included) one mailbox index may name for replication",
	  FIELD(index_max_messages), .min = 1000, .max = UINT32_MAX },
	{ .name = "userdb", .type = POLICY_T_STRING, .def = "passwd",
	  .desc = "user database: passwd (system users) or passwd-file:/path (Dovecot format)",
	  .validate = validate_userdb, FIELD(userdb) },
	{ .name = "mail_location", .type = POLICY_T_STRING, .def = "maildir:~/Maildir",
	  .desc = "Maildir of a user: maildir:~/PATH or maildir:/PATH with %u, %n, %d",
	  .validate = validate_mail_location, FIELD(mail_location) },
	{ .name = "recipient_delimiter", .type = POLICY_T_STRING, .def = "+",
	  .desc = "characters that start an address extension, each one a delimiter (empty = none)",
	  .validate = validate_delimiter, FIELD(recipient_delimiter) },
	{ .name = "quota_rule", .type = POLICY_T_STRING, .def = "",
	  .desc = "default Maildir++ quota as Dovecot's quota_rule, e.g. *:storage=1G:messages=50000 (empty = none; a userdb_quota_rule extra field wins)",
	  .validate = validate_quota_rule, FIELD(quota_rule) },
	{ .name = "quota_full_tempfail", .type = POLICY_T_BOOL, .def = "no",
	  .desc = "a recipient over quota gets 452 4.2.2 (yes) instead of 552 5.2.2 (no)",
	  FIELD(quota_full_tempfail) },
	{ .name = "lmtp_rcpt_check_quota", .type = POLICY_T_BOOL, .def = "no",
	  .desc = "check the quota at RCPT TO too (a writer reads maildirsize), not only when saving",
	  FIELD(lmtp_rcpt_check_quota) },
	{ .name = "lmtp_save_to_detail_mailbox", .type = POLICY_T_BOOL, .def = "no",
	  .desc = "user+folder@domain is saved into the folder named by the detail (else INBOX)",
	  FIELD(lmtp_save_to_detail_mailbox) },
	{ .name = "lda_mailbox_autocreate", .type = POLICY_T_BOOL, .def = "no",
	  .desc = "a missing detail folder is created (yes) or the message goes to INBOX (no)",
	  FIELD(lda_mailbox_autocreate) },
	{ .name = "run_user", .type = POLICY_T_STRING, .def = "stowd",
	  .desc = "unprivileged user of the LMTP front-end and repl-hook processes",
	  .validate = validate_user, FIELD(run_user) },
	{ .name = "first_valid_uid", .type = POLICY_T_UINT, .def = "500",
	  .desc = "lowest uid mail is written as",
	  FIELD(first_valid_uid), .min = 1, .max = UINT32_MAX - 1 },
	{ .name = "last_valid_uid", .type = POLICY_T_UINT, .def = "0",
	  .desc = "highest uid mail is written as (0 = no limit)",
	  FIELD(last_valid_uid), .min = 0, .max = UINT32_MAX - 1 },
	{ .name = "replication_listen", .type = POLICY_T_STRING, .def = "",
	  .desc = "replication listeners: unix:/path (local, SO_PEERCRED), tcp:IPv4:PORT, tcp:[IPv6]:PORT (mutual TLS) (empty = none)",
	  .validate = validate_opt_listen, FIELD(replication_listen) },
	{ .name = "replication_tls_cert", .type = POLICY_T_STRING, .def = "",
	  .desc = "PEM certificate (chain) this server presents on replication TLS, opened as root at start and reload, parsed only by repld and repl-hook",
	  .validate = validate_opt_abs_path, FIELD(replication_tls_cert) },
	{ .name = "replication_tls_key", .type = POLICY_T_STRING, .def = "",
	  .desc = "PEM private key of replication_tls_cert, opened as root at start and reload (may be root-only), parsed only by repld and repl-hook",
	  .validate = validate_opt_abs_path, FIELD(replication_tls_key) },
	{ .name = "replication_tls_ca", .type = POLICY_T_STRING, .def = "",
	  .desc = "PEM CA file: the only trust anchor for replication peers",
	  .validate = validate_opt_abs_path, FIELD(replication_tls_ca) },
	{ .name = "replication_peers", .type = POLICY_T_STRING, .def = "",
	  .desc = "server ids a TLS replication peer may claim in HELLO, space-separated; its certificate must name the id (empty = any id its certificate names)",
	  .validate = validate_peers, FIELD(replication_peers) },
	{ .name = "replication_unix_uids", .type = POLICY_T_UID_LIST, .def = "",
	  .desc = "uids or user names allowed on unix: replication listeners, space-separated (empty = none; root only if listed)",
	  FIELD(repl_unix_uids) },
	{ .name = "replication_max_connections", .type = POLICY_T_UINT, .def = "64",
	  .desc = "most replication connections repld serves (more are closed at once)",
	  FIELD(replication_max_connections), .min = 1, .max = 65536 },
	{ .name = "replication_handshake_timeout", .type = POLICY_T_DURATION, .def = "10s",
	  .desc = "longest time for a replication client's TLS handshake and first command",
	  FIELD(replication_handshake_timeout), .min = 100, .max = HOUR },
	{ .name = "replication_sync_acks", .type = POLICY_T_UINT, .def = "0",
	  .desc = "replica acks an LMTP delivery waits for before its 250 (0 = asynchronous; at most the number of replicas)",
	  FIELD(replication_sync_acks), .min = 0, .max = POLICY_MAX_REPLICAS },
	{ .name = "replication_sync_timeout", .type = POLICY_T_DURATION, .def = "2s",
	  .desc = "longest wait for replication_sync_acks, then replication_on_timeout decides",
	  FIELD(replication_sync_timeout), .min = 100, .max = HOUR },
	{ .name = "replication_on_timeout", .type = POLICY_T_ENUM, .def = "accept",
	  .desc = "when the acks do not come in time: accept (250, the event stays journaled) or tempfail (451 4.4.1, the local copy removed)",
	  FIELD(replication_on_timeout), .names = on_timeout_names },
	{ .name = "replication_quota_exceed", .type = POLICY_T_BOOL, .def = "yes",
	  .desc = "a replica saves a message its master accepted even over quota (no: refuses it, the master's copy stays)",
	  FIELD(replication_quota_exceed) },
	{ .name = "replication_journal_max_size", .type = POLICY_T_SIZE, .def = "1G",
	  .desc = "largest journal per replica under state_dir/replication; past it mailboxes are marked for SYNC",
	  FIELD(replication_journal_max_size), .min = MIB, .max = UINT64_MAX },
	{ .name = "replication_full_sync_interval", .type = POLICY_T_DURATION, .def = "1d",
	  .desc = "full sync with every replica at start and then this often (0 = only at start)",
	  .validate = validate_sync_interval, FIELD(replication_full_sync_interval),
	  .min = 0, .max = 366 * 24 * HOUR },
	{ .name = "replication_vanished", .type = POLICY_T_ENUM, .def = "expunge",
	  .desc = "a message file gone from a Maildir: expunge (removed by an IMAP server or mail client; replicated as EXPUNGE) or repair (a loss in a stowd-only store; restored from a replica)",
	  FIELD(replication_vanished), .names = vanished_names },
	{ .name = "replication_capture_delay", .type = POLICY_T_DURATION, .def = "200ms",
	  .desc = "changes to Maildirs made by others (IMAP server, mail clients) are found by inotify and replicated after this coalescing delay (0 = no inotify: only replication_full_sync_interval finds them)",
	  FIELD(replication_capture_delay), .min = 0, .max = 60 * SEC },
	{ .name = "server_id", .type = POLICY_T_STRING, .def = "",
	  .desc = "this server's id in GUIDs and replication (empty = derived from hostname)",
	  .validate = validate_server_id, FIELD(server_id) },
	{ .name = "state_dir", .type = POLICY_T_STRING, .def = "/var/lib/stowd",
	  .desc = "directory for stowd's own state",
	  .validate = validate_abs_path, FIELD(state_dir) },
	{ .name = "log_debug", .type = POLICY_T_BOOL, .def = "no",
	  .desc = "log debug messages",
	  FIELD(log_debug) },
	{ .name = "log_target", .type = POLICY_T_ENUM, .def = "stderr",
	  .desc = "where the log goes: stderr (the journal under systemd) or syslog (facility mail)",
	  FIELD(log_target), .names = log_target_names },
	{ .name = "control_socket", .type = POLICY_T_STRING, .def = "/run/stowd/control",
	  .desc = "stowctl's unix socket, mode 0600 root (empty = none)",
	  .validate = validate_control_socket, FIELD(control_socket) },
	{ .name = "metrics_listen", .type = POLICY_T_STRING, .def = "",
	  .desc = "Prometheus metrics over HTTP: tcp:IPv4:PORT, tcp:[IPv6]:PORT or unix:/path (empty = none)",
	  .validate = validate_opt_listen, FIELD(metrics_listen) },
};
const size_t policy_n_setting_defs =
	sizeof(policy_setting_defs) / sizeof(policy_setting_defs[0]);

/* ---- cross-field constraints ------------------------------------------- */

struct cross_check {
	const char *a, *b;
	bool (*ok)(const struct policy_settings *s);
	const char *why;
};

static bool
uid_range_ok(const struct policy_settings *s)
{
	return s->last_valid_uid == 0 || s->last_valid_uid >= s->first_valid_uid;
}

static bool
has_tcp_listener(const struct policy_settings *s)
{
	struct policy_listen *v = NULL;
	const char *why;
	size_t n = 0, i;
	bool tcp = false;

	if (s->replication_listen == NULL || s->replication_listen[0] == '\0' ||
	    policy_listen_parse(s->replication_listen, &v, &n, &why) < 0)
		return false;
	for (i = 0; i < n; i++)
		tcp = tcp || v[i].kind == POLICY_LISTEN_TCP;
	free(v);
	return tcp;
}

static bool
empty(const char *text)
{
	return text == NULL || text[0] == '\0';
}

static bool
tcp_cert_ok(const struct policy_settings *s)
{
	return !empty(s->replication_tls_cert) || !has_tcp_listener(s);
}

static bool
tcp_key_ok(const struct policy_settings *s)
{
	return !empty(s->replication_tls_key) || !has_tcp_listener(s);
}

static bool
tcp_ca_ok(const struct policy_settings *s)
{
	return !empty(s->replication_tls_ca) || !has_tcp_listener(s);
}

static bool
lmtp_tls_cert_ok(const struct policy_settings *s)
{
	return s->lmtp_tls == POLICY_TLS_NO ||
	       (s->lmtp_tls_cert != NULL && s->lmtp_tls_cert[0] != '\0');
}

static bool
lmtp_tls_key_ok(const struct policy_settings *s)
{
	return s->lmtp_tls == POLICY_TLS_NO ||
	       (s->lmtp_tls_key != NULL && s->lmtp_tls_key[0] != '\0');
}

static const struct cross_check cross_checks[] = {
	{ "first_valid_uid", "last_valid_uid", uid_range_ok,
	  "last_valid_uid must be 0 or >= first_valid_uid" },
	{ "replication_listen", "replication_tls_cert", tcp_cert_ok,
	  "a tcp: replication listener needs replication_tls_cert" },
	{ "replication_listen", "replication_tls_key", tcp_key_ok,
	  "a tcp: replication listener needs replication_tls_key" },
	{ "replication_listen", "replication_tls_ca", tcp_ca_ok,
	  "a tcp: replication listener needs replication_tls_ca" },
	{ "lmtp_tls", "lmtp_tls_cert", lmtp_tls_cert_ok,
	  "lmtp_tls needs lmtp_tls_cert" },
	{ "lmtp_tls", "lmtp_tls_key", lmtp_tls_key_ok,
	  "lmtp_tls needs lmtp_tls_key" },
};

int
policy_settings_check(const struct policy_settings *s, size_t *a_out,
		      size_t *b_out, const char **why_out)
{
	size_t i;

	for (i = 0; i < sizeof(cross_checks) / sizeof(cross_checks[0]); i++) {
		if (cross_checks[i].ok(s))
			continue;
		*a_out = (size_t)(policy_setting_find(cross_checks[i].a) -
				  policy_setting_defs);
		*b_out = (size_t)(policy_setting_find(cross_checks[i].b) -
				  policy_setting_defs);
		*why_out = cross_checks[i].why;
		errno = EINVAL;
		return -1;
	}
	return 0;
}

/* ---- storing and reading values ---------------------------------------- */

static void
store_num(struct policy_settings *s, const struct policy_setting_def *d, uint64_t v)
{
	unsigned char *p = (unsigned char *)s + d->offset;
	uint32_t v32 = (uint32_t)v;
	bool b = v != 0;

	if (d->type == POLICY_T_BOOL) {
		assert(d->size == sizeof(bool));
		memcpy(p, &b, sizeof(b));
	} else if (d->size == sizeof(uint64_t)) {
		memcpy(p, &v, sizeof(v));
	} else {
		assert(d->size == sizeof(uint32_t) && v <= UINT32_MAX);
		memcpy(p, &v32, sizeof(v32));
	}
}

static uint64_t
load_num(const struct policy_settings *s, const struct policy_setting_def *d)
{
	const unsigned char *p = (const unsigned char *)s + d->offset;
	uint64_t v;
	uint32_t v32;
	bool b;

	if (d->type == POLICY_T_BOOL) {
		memcpy(&b, p, sizeof(b));
		return b;
	}
	if (d->size == sizeof(uint64_t)) {
		memcpy(&v, p, sizeof(v));
		return v;
	}
	memcpy(&v32, p, sizeof(v32));
	return v32;
}

static char **
string_field(struct policy_settings *s, const struct policy_setting_def *d)
{
	return (char **)(void *)((unsigned char *)s + d->offset);
}

static int
parse_enum(const struct policy_setting_def *d, const char *value, uint64_t *num_out,
	   const char **why_out)
{
	uint64_t i;

	for (i = 0; d->names[i] != NULL; i++) {
		if (strcmp(d->names[i], value) == 0) {
			*num_out = i;
			return 0;
		}
	}
	*why_out = "unknown value";
	errno = ERANGE;
	return -1;
}

int
policy_setting_apply(struct policy_settings *s, const struct policy_setting_def *d,
		     const char *value, const char **why_out)
{
	uid_t uids[POLICY_MAX_REPL_UIDS];
	char **sp;
	uint64_t num = 0;
	size_t n = 0;

	if (d->type == POLICY_T_UID_LIST) {
		/* The one list row: repl_unix_uids, counted by n_repl_unix_uids. */
		if (policy_uid_list_parse(value, uids, &n, why_out) < 0)
			return -1;
		memcpy(s->repl_unix_uids, uids, n * sizeof(uids[0]));
		s->n_repl_unix_uids = n;
		return 0;
	}
	if (d->type == POLICY_T_ENUM) {
		if (parse_enum(d, value, &num, why_out) < 0)
			return -1;
	} else if (d->type != POLICY_T_STRING) {
		if (policy_value_parse(d->type, value, &num, why_out) < 0)
			return -1;
		if (d->type != POLICY_T_BOOL && (num < d->min || num > d->max)) {
			*why_out = "out of range";
			errno = ERANGE;
			return -1;
		}
	}
	if (d->validate != NULL && d->validate(d, value, num, why_out) < 0) {
		errno = EINVAL;
		return -1;
	}
	if (d->type != POLICY_T_STRING) {
		store_num(s, d, num);
		return 0;
	}
	sp = string_field(s, d);
	free(*sp);
	*sp = xstrdup(value);
	return 0;
}

char *
policy_setting_format(const struct policy_settings *s, const struct policy_setting_def *d)
{
	char buf[64];
	char *const *sp;
	uint64_t num;

	if (d->type == POLICY_T_STRING) {
		sp = (char *const *)(const void *)((const unsigned char *)s + d->offset);
		return xstrdup(*sp != NULL ? *sp : "");
	}
	if (d->type == POLICY_T_UID_LIST)
		return policy_uid_list_format(s->repl_unix_uids,
					      s->n_repl_unix_uids);
	num = load_num(s, d);
	if (d->type == POLICY_T_ENUM) {
		size_t n = 0;

		while (d->names[n] != NULL)
			n++;
		return xstrdup(num < n ? d->names[num] : "?");
	}
	policy_value_format(d->type, num, buf, sizeof(buf));
	return xstrdup(buf);
}

void
policy_setting_allowed_text(const struct policy_setting_def *d, char *buf, size_t size)
{
	char lo[32], hi[32];
	size_t i, len = 0;

	buf[0] = '\0';
	if (d->type == POLICY_T_ENUM) {
		for (i = 0; d->names[i] != NULL && len < size; i++)
			len += (size_t)snprintf(buf + len, size - len, "%s%s",
						i > 0 ? ", " : "", d->names[i]);
		return;
	}
	if (d->type == POLICY_T_STRING || d->type == POLICY_T_BOOL ||
	    d->type == POLICY_T_UID_LIST)
		return;
	policy_value_format(d->type, d->min, lo, sizeof(lo));
	policy_value_format(d->type, d->max, hi, sizeof(hi));
	if (d->max == UINT64_MAX && d->min > 0)
		snprintf(buf, size, ">= %s", lo);
	else if (d->min == 0 && d->max != UINT64_MAX)
		snprintf(buf, size, "<= %s", hi);
	else if (d->max != UINT64_MAX)
		snprintf(buf, size, "%s..%s", lo, hi);
}

/* ---- public API --------------------------------------------------------- */

const struct policy_setting_def *
policy_setting_find(const char *name)
{
	size_t i;

	for (i = 0; i < policy_n_setting_defs; i++)
		if (strcmp(policy_setting_defs[i].name, name) == 0)
			return &policy_setting_defs[i];
	return NULL;
}

void
policy_settings_defaults(struct policy_settings *s)
{
	const char *why = NULL;
	size_t i;

	memset(s, 0, sizeof(*s));
	for (i = 0; i < policy_n_setting_defs; i++)
		if (policy_setting_apply(s, &policy_setting_defs[i],
					 policy_setting_defs[i].def, &why) < 0)
			fatalx("built-in default of %s is invalid: %s",
			       policy_setting_defs[i].name, why);
}

void
policy_settings_clear(struct policy_settings *s)
{
	size_t i;

	for (i = 0; i < policy_n_setting_defs; i++) {
		if (policy_setting_defs[i].type != POLICY_T_STRING)
			continue;
		free(*string_field(s, &policy_setting_defs[i]));
	}
	memset(s, 0, sizeof(*s));
}

void
policy_settings_copy(struct policy_settings *dst, const struct policy_settings *src)
{
	char **sp;
	size_t i;

	if (dst == src)
		return;
	memcpy(dst, src, sizeof(*dst));
	for (i = 0; i < policy_n_setting_defs; i++) {
		if (policy_setting_defs[i].type != POLICY_T_STRING)
			continue;
		sp = string_field(dst, &policy_setting_defs[i]);
		if (*sp != NULL)
			*sp = xstrdup(*sp);
	}
}

int
policy_setting_set(struct policy_settings *s, const char *name, const char *value,
		   const char **why_out)
{
	const struct policy_setting_def *d = policy_setting_find(name);

	if (d == NULL) {
		*why_out = "unknown setting";
		errno = ENOENT;
		return -1;
	}
	return policy_setting_apply(s, d, value, why_out);
}

static void
print_line(FILE *f, const char *name, const char *value)
{
	if (value[0] == '\0')
		fprintf(f, "%s =\n", name);
	else
		fprintf(f, "%s = %s\n", name, value);
}

void
policy_settings_print_all(FILE *f)
{
	size_t i;

	for (i = 0; i < policy_n_setting_defs; i++) {
		if (i > 0)
			fputc('\n', f);
		fprintf(f, "# %s\n", policy_setting_defs[i].desc);
		print_line(f, policy_setting_defs[i].name, policy_setting_defs[i].def);
	}
	fprintf(f, "\n# a server this one replicates to (repeatable, at most %d; "
		"HOST: DNS name, IPv4 or [IPv6]; no default)\n"
		"#replica NAME {\n#  address = tcp:HOST:PORT\n#}\n",
		POLICY_MAX_REPLICAS);
}

void
policy_settings_print_changed(FILE *f, const struct policy_settings *s)
{
	struct policy_settings def;
	char *a, *b;
	size_t i;

	policy_settings_defaults(&def);
	for (i = 0; i < policy_n_setting_defs; i++) {
		a = policy_setting_format(s, &policy_setting_defs[i]);
		b = policy_setting_format(&def, &policy_setting_defs[i]);
		if (strcmp(a, b) != 0)
			print_line(f, policy_setting_defs[i].name, a);
		free(a);
		free(b);
	}
	policy_settings_clear(&def);
	for (i = 0; i < s->n_replicas && i < POLICY_MAX_REPLICAS; i++)
		fprintf(f, "replica %s {\n  address = %s\n}\n", s->replicas[i].name,
			s->replicas[i].address);
}

void
policy_settings_resolve_hostname(struct policy_settings *s)
{
	struct utsname u;

	char id[65];

	if (s->hostname == NULL || s->hostname[0] == '\0') {
		free(s->hostname);
		s->hostname = xstrdup(uname(&u) == 0 && u.nodename[0] != '\0' ?
				      u.nodename : "localhost");
	}
	if (s->server_id == NULL || s->server_id[0] == '\0') {
		/* A server id is at most 64 octets; a host name may be longer. */
		(void)xstrlcpy(id, s->hostname, sizeof(id));
		free(s->server_id);
		s->server_id = xstrdup(id);
	}
}
