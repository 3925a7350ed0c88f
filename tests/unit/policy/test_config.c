/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/policy/test_config.c - the settings table and the config
 * parser: syntax errors with exact FILE:LINE text, includes, every value
 * type, cross-field rules, `stowd -a` and `stowd -n` output.  Blocks are in
 * test_config_blocks.c.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

#include "policy/policy.h"
#include "policy/policy_int.h"
#include "tests/unit/policy/policy_test.h"
#include "tests/unit/policy/util.h"

/* ---- loading basics ---------------------------------------------------- */

static void
test_missing_optional_config_gives_defaults(void **state)
{
	struct cfx *fx = *state;
	char *p = ptest_path(fx->dir, "none.conf");

	assert_int_equal(policy_config_load(p, false, &fx->s, &fx->err), 0);
	fx->loaded = true;
	assert_null(fx->err);
	assert_string_equal(fx->s.userdb, "passwd");
	assert_int_equal(fx->s.lmtp_processes, 2);
	free(p);
}

static void
test_missing_required_config_is_error(void **state)
{
	struct cfx *fx = *state;
	char *p = ptest_path(fx->dir, "none.conf");

	assert_int_equal(policy_config_load(p, true, &fx->s, &fx->err), -1);
	fx->loaded = true;
	cfx_expect_err(fx, "none.conf: cannot open: No such file or directory");
	/* A failed load leaves nothing allocated. */
	assert_null(fx->s.mail_location);
	free(p);
}

static void
test_directory_as_config_is_error(void **state)
{
	struct cfx *fx = *state;

	ptest_mkdir(fx->dir, "d.conf");
	{
		char *p = ptest_path(fx->dir, "d.conf");

		assert_int_equal(cfx_load_path(fx, p, policy_blocks, NULL), -1);
		free(p);
	}
	cfx_expect_err(fx, "d.conf: not a regular file");
}

static void
test_defaults_have_documented_values(void **state)
{
	struct policy_settings s;

	(void)state;
	policy_settings_defaults(&s);
	assert_string_equal(s.lmtp_listen, "unix:/run/stowd/lmtp tcp:127.0.0.1:24");
	assert_int_equal(s.lmtp_socket_mode, 0666);
	assert_string_equal(s.lmtp_socket_group, "");
	assert_int_equal(s.lmtp_processes, 2);
	assert_int_equal(s.lmtp_max_message_size, 50ull * 1024 * 1024);
	assert_int_equal(s.lmtp_max_recipients, 1000);
	assert_int_equal(s.lmtp_command_timeout, 5 * 60 * 1000);
	assert_int_equal(s.lmtp_max_line_length, 64 * 1024);
	assert_string_equal(s.hostname, "");
	assert_int_equal(s.delivery_mode, POLICY_MODE_SETEUID);
	assert_int_equal(s.seteuid_workers, 8);
	assert_int_equal(s.fork_max_children, 256);
	assert_int_equal(s.fork_idle_timeout, 60 * 1000);
	assert_int_equal(s.fork_max_requests, 10000);
	assert_int_equal(s.writer_timeout, 2 * 60 * 1000);
	assert_string_equal(s.userdb, "passwd");
	assert_string_equal(s.mail_location, "maildir:~/Maildir");
	assert_string_equal(s.recipient_delimiter, "+");
	assert_string_equal(s.run_user, "stowd");
	assert_int_equal(s.first_valid_uid, 500);
	assert_int_equal(s.last_valid_uid, 0);
	assert_string_equal(s.server_id, "");
	assert_string_equal(s.state_dir, "/var/lib/stowd");
	assert_false(s.log_debug);
	assert_string_equal(s.replication_listen, "");
	assert_string_equal(s.replication_tls_cert, "");
	assert_string_equal(s.replication_tls_key, "");
	assert_string_equal(s.replication_tls_ca, "");
	assert_int_equal(s.n_repl_unix_uids, 0);
	assert_int_equal(s.replication_sync_acks, 0);
	assert_int_equal(s.replication_sync_timeout, 2000);
	assert_int_equal(s.replication_on_timeout, POLICY_ON_TIMEOUT_ACCEPT);
	assert_int_equal(s.replication_journal_max_size, 1024ull * 1024 * 1024);
	assert_int_equal(s.replication_full_sync_interval, 24ull * 3600 * 1000);
	assert_int_equal(s.n_replicas, 0);
	policy_settings_clear(&s);
}

static void
test_table_rows_are_consistent(void **state)
{
	struct policy_settings s;
	size_t i, j;

	(void)state;
	policy_settings_defaults(&s);
	for (i = 0; i < policy_n_setting_defs; i++) {
		const struct policy_setting_def *d = &policy_setting_defs[i];
		const char *why = NULL;

		assert_non_null(d->desc);
		assert_true(d->desc[0] != '\0' && strchr(d->desc, '\n') == NULL);
		assert_true(d->offset + d->size <= sizeof(struct policy_settings));
		if (d->type == POLICY_T_STRING)
			assert_int_equal(d->size, sizeof(char *));
		else if (d->type == POLICY_T_BOOL)
			assert_int_equal(d->size, sizeof(bool));
		else if (d->type == POLICY_T_UID_LIST)
			assert_int_equal(d->size, sizeof(uid_t) * POLICY_MAX_REPL_UIDS);
		else
			assert_true(d->size == 4 || d->size == 8);
		assert_ptr_equal(policy_setting_find(d->name), d);
		assert_int_equal(policy_setting_set(&s, d->name, d->def, &why), 0);
		for (j = i + 1; j < policy_n_setting_defs; j++)
			assert_string_not_equal(d->name, policy_setting_defs[j].name);
	}
	policy_settings_clear(&s);
}

static void
test_copy_is_deep(void **state)
{
	struct policy_settings a, b;
	const char *why;

	(void)state;
	policy_settings_defaults(&a);
	assert_int_equal(policy_setting_set(&a, "userdb", "passwd-file:/etc/u", &why), 0);
	policy_settings_copy(&b, &a);
	assert_ptr_not_equal(a.userdb, b.userdb);
	policy_settings_clear(&a);
	assert_string_equal(b.userdb, "passwd-file:/etc/u");
	assert_null(a.userdb);
	policy_settings_clear(&b);
}

/* ---- syntax ------------------------------------------------------------ */

static const struct cfx_err_case err_cases[] = {
	{ "unknown setting", "foo = 1\n", "main.conf:1: unknown setting 'foo'" },
	{ "bad size on line 3", "# comment\n\nlmtp_max_message_size = 10X\n",
	  "main.conf:3: invalid value for 'lmtp_max_message_size': unknown unit (use K, M or G)" },
	{ "missing =", "lmtp_processes\n", "main.conf:1: missing '='" },
	{ "missing = with value", "lmtp_processes 4\n", "main.conf:1: missing '='" },
	{ "missing name", "= 4\n", "main.conf:1: missing setting name" },
	{ "lone brace", "{\n", "main.conf:1: syntax error" },
	{ "unmatched }", "lmtp_processes = 3\n}\n", "main.conf:2: unmatched '}'" },
	{ "unknown block", "mirror b {\n address = x\n}\n",
	  "main.conf:1: unknown block 'mirror'" },
	{ "unknown block, no label", "foo {\n}\n", "main.conf:1: unknown block 'foo'" },
	{ "include without file", "!include\n", "main.conf:1: !include needs a file name" },
	{ "unknown directive", "!frobnicate x\n",
	  "main.conf:1: unknown directive '!frobnicate'" },
	{ "missing include", "\n!include nope.conf\n",
	  "main.conf:2: cannot open include 'nope.conf': No such file or directory" },
	{ "uint out of range", "lmtp_processes = 65\n",
	  "main.conf:1: invalid value for 'lmtp_processes': out of range (allowed: 1..64)" },
	{ "size below minimum", "lmtp_max_message_size = 1023\n",
	  "main.conf:1: invalid value for 'lmtp_max_message_size': out of range (allowed: >= 1K)" },
	{ "mode above 0777", "lmtp_socket_mode = 01777\n",
	  "main.conf:1: invalid value for 'lmtp_socket_mode': out of range (allowed: <= 0777)" },
	{ "duration range", "lmtp_command_timeout = 0\n",
	  "main.conf:1: invalid value for 'lmtp_command_timeout': out of range (allowed: 1s..24h)" },
	{ "unknown enum value", "delivery_mode = thread\n",
	  "main.conf:1: invalid value for 'delivery_mode': unknown value (allowed: seteuid, fork)" },
	{ "bad bool", "log_debug = true\n",
	  "main.conf:1: invalid value for 'log_debug': expected yes or no" },
	{ "bad listener", "lmtp_listen = tcp:localhost:24\n",
	  "main.conf:1: invalid value for 'lmtp_listen': invalid IPv4 address" },
	{ "bad userdb", "userdb = ldap\n",
	  "main.conf:1: invalid value for 'userdb': expected passwd or passwd-file:/absolute/path" },
	{ "overflow", "lmtp_max_recipients = 99999999999999999999999\n",
	  "main.conf:1: invalid value for 'lmtp_max_recipients': number too large" },
	{ "last_valid_uid below first", "last_valid_uid = 100\n",
	  "main.conf:1: last_valid_uid must be 0 or >= first_valid_uid "
	  "(first_valid_uid = 500, last_valid_uid = 100)" },
	{ "cross-field blames the later line",
	  "last_valid_uid = 1000\nlog_debug = yes\nfirst_valid_uid = 2000\n",
	  "main.conf:3: last_valid_uid must be 0 or >= first_valid_uid "
	  "(first_valid_uid = 2000, last_valid_uid = 1000)" },
	{ "error after good lines", "lmtp_processes = 4\nseteuid_workers = 0\n",
	  "main.conf:2: invalid value for 'seteuid_workers': out of range (allowed: 1..256)" },
	{ "comment does not hide the error", "foo = 1 # bar\n",
	  "main.conf:1: unknown setting 'foo'" },
};

static void
test_syntax_errors_report_file_and_line(void **state)
{
	struct cfx *fx = *state;
	size_t i;

	for (i = 0; i < sizeof(err_cases) / sizeof(err_cases[0]); i++) {
		cfx_expect(fx, err_cases[i].name, err_cases[i].text,
			   err_cases[i].err);
		/* Nothing half-applied, nothing left to free. */
		assert_int_equal(fx->s.lmtp_processes, 0);
		assert_null(fx->s.lmtp_listen);
	}
}

static void
test_nul_byte_is_error(void **state)
{
	struct cfx *fx = *state;
	static const char text[] = "log_debug = yes\nhostname = a\0b\n";
	char *p = ptest_write_len(fx->dir, "main.conf", text, sizeof(text) - 1);

	assert_int_equal(cfx_load_path(fx, p, policy_blocks, NULL), -1);
	cfx_expect_err(fx, "main.conf:2: NUL byte in line");
	free(p);
}

static void
test_overlong_line_is_error(void **state)
{
	struct cfx *fx = *state;
	size_t n = POLICY_LINE_MAX + 100;
	char *text = malloc(n + 1);

	assert_non_null(text);
	memcpy(text, "hostname = ", 11);
	memset(text + 11, 'a', n - 12);
	text[n - 1] = '\n';
	text[n] = '\0';
	assert_int_equal(cfx_load(fx, text), -1);
	cfx_expect_err(fx, "main.conf:1: line too long");
	free(text);
}

static void
test_accepted_syntax_variants(void **state)
{
	struct cfx *fx = *state;

	assert_int_equal(cfx_load(fx,
		"# whole-line comment\n"
		"   # indented comment\n"
		"\n"
		"lmtp_processes=3\n"
		"\tseteuid_workers   =\t5   # trailing comment\n"
		"hostname =\n"
		"recipient_delimiter = \"\"\n"
		"server_id = a#b\n"
		"fork_max_children = 10\r\n"
		"lmtp_max_recipients = 10\n"
		"lmtp_max_recipients = 20\n"), 0);
	assert_int_equal(fx->s.lmtp_processes, 3);
	assert_int_equal(fx->s.seteuid_workers, 5);
	assert_string_equal(fx->s.hostname, "");
	assert_string_equal(fx->s.recipient_delimiter, "");
	assert_string_equal(fx->s.server_id, "a#b");
	assert_int_equal(fx->s.fork_max_children, 10);
	/* A duplicate within one file: the last one wins. */
	assert_int_equal(fx->s.lmtp_max_recipients, 20);
}

static void
test_empty_file_gives_defaults(void **state)
{
	struct cfx *fx = *state;

	assert_int_equal(cfx_load(fx, ""), 0);
	assert_int_equal(fx->s.seteuid_workers, 8);
}

/* ---- includes ---------------------------------------------------------- */

static void
test_include_is_relative_to_including_file(void **state)
{
	struct cfx *fx = *state;
	char *p;

	ptest_mkdir(fx->dir, "conf.d");
	free(ptest_write(fx->dir, "conf.d/a.conf",
			 "lmtp_processes = 5\n!include b.conf\n"));
	free(ptest_write(fx->dir, "conf.d/b.conf", "seteuid_workers = 3\n"));
	p = ptest_path(fx->dir, "conf.d/b.conf");
	{
		char *text = NULL;

		assert_true(asprintf(&text, "!include conf.d/a.conf\nlog_debug = yes\n"
				     "!include %s\n", p) > 0);
		assert_int_equal(cfx_load(fx, text), 0);
		free(text);
	}
	assert_int_equal(fx->s.lmtp_processes, 5);
	assert_int_equal(fx->s.seteuid_workers, 3);
	assert_true(fx->s.log_debug);
	free(p);
}

static void
test_error_in_include_names_included_file(void **state)
{
	struct cfx *fx = *state;

	ptest_mkdir(fx->dir, "conf.d");
	free(ptest_write(fx->dir, "conf.d/a.conf", "# x\nbogus = 1\n"));
	assert_int_equal(cfx_load(fx, "log_debug = yes\n!include conf.d/a.conf\n"), -1);
	cfx_expect_err(fx, "conf.d/a.conf:2: unknown setting 'bogus'");
}

static void
test_cross_field_error_names_included_file(void **state)
{
	struct cfx *fx = *state;

	free(ptest_write(fx->dir, "uids.conf", "\nfirst_valid_uid = 1000\n"));
	assert_int_equal(cfx_load(fx, "last_valid_uid = 900\n!include uids.conf\n"), -1);
	cfx_expect_err(fx, "uids.conf:2: last_valid_uid must be 0 or >= first_valid_uid "
		      "(first_valid_uid = 1000, last_valid_uid = 900)");
}

static void
test_include_loop_is_error(void **state)
{
	struct cfx *fx = *state;

	free(ptest_write(fx->dir, "b.conf", "log_debug = yes\n!include main.conf\n"));
	assert_int_equal(cfx_load(fx, "!include b.conf\n"), -1);
	cfx_expect_err(fx, "b.conf:2: include loop: 'main.conf'");
}

static void
test_self_include_is_error(void **state)
{
	struct cfx *fx = *state;

	assert_int_equal(cfx_load(fx, "!include main.conf\n"), -1);
	cfx_expect_err(fx, "main.conf:1: include loop: 'main.conf'");
}

/* main includes f1, f1 includes f2, ... up to f<levels>. */
static void
write_chain(struct cfx *fx, int levels)
{
	char name[32], text[64];
	int i;

	for (i = 1; i <= levels; i++) {
		snprintf(name, sizeof(name), "f%d.conf", i);
		if (i < levels)
			snprintf(text, sizeof(text), "!include f%d.conf\n", i + 1);
		else
			snprintf(text, sizeof(text), "lmtp_processes = 7\n");
		free(ptest_write(fx->dir, name, text));
	}
}

static void
test_include_depth_limit(void **state)
{
	struct cfx *fx = *state;

	write_chain(fx, POLICY_INCLUDE_MAX);
	assert_int_equal(cfx_load(fx, "!include f1.conf\n"), 0);
	assert_int_equal(fx->s.lmtp_processes, 7);
	write_chain(fx, POLICY_INCLUDE_MAX + 1);
	assert_int_equal(cfx_load(fx, "!include f1.conf\n"), -1);
	cfx_expect_err(fx, "f8.conf:1: includes nested too deeply (max 8)");
}

static void
test_include_glob_reads_matches_in_order(void **state)
{
	struct cfx *fx = *state;

	ptest_mkdir(fx->dir, "conf.d");
	free(ptest_write(fx->dir, "conf.d/10-a.conf", "lmtp_processes = 3\n"));
	free(ptest_write(fx->dir, "conf.d/20-b.conf", "lmtp_processes = 4\n"));
	free(ptest_write(fx->dir, "conf.d/x.txt", "bogus = 1\n"));
	assert_int_equal(cfx_load(fx, "!include conf.d/*.conf\n!include none.d/*.conf\n"), 0);
	assert_int_equal(fx->s.lmtp_processes, 4);
}

/* ---- values of every type --------------------------------------------- */

static const struct cfx_value_case value_cases[] = {
	/* size */
	{ "lmtp_max_message_size", "50M", true, "50M" },
	{ "lmtp_max_message_size", "1024", true, "1K" },
	{ "lmtp_max_message_size", "1025", true, "1025" },
	{ "lmtp_max_message_size", "1k", true, "1K" },
	{ "lmtp_max_message_size", "1536K", true, "1536K" },
	{ "lmtp_max_message_size", "2048M", true, "2G" },
	{ "lmtp_max_message_size", "3g", true, "3G" },
	{ "lmtp_max_message_size", "100 M", true, "100M" },
	{ "lmtp_max_message_size", "5MB", true, "5M" },
	{ "lmtp_max_message_size", "18446744073709551615", true, "18446744073709551615" },
	{ "lmtp_max_message_size", "18446744073709551616", false, NULL },
	{ "lmtp_max_message_size", "17179869184G", false, NULL },
	{ "lmtp_max_message_size", "1.5M", false, NULL },
	{ "lmtp_max_message_size", "10X", false, NULL },
	{ "lmtp_max_message_size", "-1", false, NULL },
	{ "lmtp_max_message_size", "", false, NULL },
	{ "lmtp_max_message_size", "1023", false, NULL },
	{ "lmtp_max_line_length", "1000", true, "1000" },
	{ "lmtp_max_line_length", "16M", true, "16M" },
	{ "lmtp_max_line_length", "999", false, NULL },
	{ "lmtp_max_line_length", "16385K", false, NULL },
	/* duration */
	{ "lmtp_command_timeout", "5m", true, "5m" },
	{ "lmtp_command_timeout", "300", true, "5m" },
	{ "lmtp_command_timeout", "300s", true, "5m" },
	{ "lmtp_command_timeout", "90s", true, "90s" },
	{ "lmtp_command_timeout", "1500ms", true, "1500ms" },
	{ "lmtp_command_timeout", "2h", true, "2h" },
	{ "lmtp_command_timeout", "2 hours", true, "2h" },
	{ "lmtp_command_timeout", "24h", true, "24h" },
	{ "lmtp_command_timeout", "25h", false, NULL },
	{ "lmtp_command_timeout", "999ms", false, NULL },
	{ "lmtp_command_timeout", "5M", false, NULL },
	{ "lmtp_command_timeout", "1d", true, "24h" },
	{ "lmtp_command_timeout", "2d", false, NULL },
	{ "lmtp_command_timeout", "s", false, NULL },
	{ "lmtp_command_timeout", "99999999999999999999s", false, NULL },
	{ "lmtp_command_timeout", "9999999999999999h", false, NULL },
	{ "fork_idle_timeout", "60s", true, "1m" },
	{ "writer_timeout", "2m", true, "2m" },
	/* octal mode */
	{ "lmtp_socket_mode", "0660", true, "0660" },
	{ "lmtp_socket_mode", "660", true, "0660" },
	{ "lmtp_socket_mode", "0777", true, "0777" },
	{ "lmtp_socket_mode", "0", true, "0000" },
	{ "lmtp_socket_mode", "01000", false, NULL },
	{ "lmtp_socket_mode", "0668", false, NULL },
	{ "lmtp_socket_mode", "rw", false, NULL },
	/* bool */
	{ "log_debug", "yes", true, "yes" },
	{ "log_debug", "no", true, "no" },
	{ "log_debug", "Yes", false, NULL },
	{ "log_debug", "1", false, NULL },
	{ "log_debug", "", false, NULL },
	/* uint */
	{ "lmtp_processes", "1", true, "1" },
	{ "lmtp_processes", "64", true, "64" },
	{ "lmtp_processes", "0", false, NULL },
	{ "lmtp_processes", "65", false, NULL },
	{ "lmtp_processes", "+5", false, NULL },
	{ "lmtp_processes", " 5", false, NULL },
	{ "lmtp_processes", "4294967296", false, NULL },
	{ "lmtp_max_recipients", "100000", true, "100000" },
	{ "lmtp_max_recipients", "100001", false, NULL },
	{ "seteuid_workers", "256", true, "256" },
	{ "seteuid_workers", "257", false, NULL },
	{ "fork_max_children", "4096", true, "4096" },
	{ "fork_max_children", "4097", false, NULL },
	{ "fork_max_requests", "0", true, "0" },
	{ "fork_max_requests", "4294967295", true, "4294967295" },
	{ "fork_max_requests", "4294967296", false, NULL },
	{ "first_valid_uid", "1", true, "1" },
	{ "first_valid_uid", "0", false, NULL },
	{ "last_valid_uid", "0", true, "0" },
	{ "last_valid_uid", "4294967294", true, "4294967294" },
	{ "last_valid_uid", "4294967295", false, NULL },
	/* enum */
	{ "delivery_mode", "fork", true, "fork" },
	{ "delivery_mode", "seteuid", true, "seteuid" },
	{ "delivery_mode", "FORK", false, NULL },
	/* strings with validators */
	{ "lmtp_listen", "unix:/run/x tcp:[::1]:24", true, "unix:/run/x tcp:[::1]:24" },
	{ "lmtp_listen", "", false, NULL },
	{ "lmtp_socket_group", "postfix", true, "postfix" },
	{ "lmtp_socket_group", "", true, "" },
	{ "lmtp_socket_group", "a:b", false, NULL },
	{ "run_user", "mail", true, "mail" },
	{ "run_user", "", false, NULL },
	{ "hostname", "mx1.example.com", true, "mx1.example.com" },
	{ "hostname", "bad host", false, NULL },
	{ "userdb", "passwd", true, "passwd" },
	{ "userdb", "passwd-file:/etc/stowd/users", true, "passwd-file:/etc/stowd/users" },
	{ "userdb", "passwd-file:users", false, NULL },
	{ "userdb", "passwd-file:", false, NULL },
	{ "userdb", "ldap", false, NULL },
	{ "mail_location", "maildir:/var/vmail/%d/%n", true, "maildir:/var/vmail/%d/%n" },
	{ "mail_location", "maildir:~/Mail/inbox", true, "maildir:~/Mail/inbox" },
	{ "mail_location", "mbox:~/mail", false, NULL },
	{ "mail_location", "maildir:Maildir", false, NULL },
	{ "mail_location", "maildir:~/", false, NULL },
	{ "mail_location", "maildir:/var/vmail", false, NULL },
	{ "mail_location", "maildir:/var/vmail/%x", false, NULL },
	{ "mail_location", "maildir:~/../x", false, NULL },
	{ "recipient_delimiter", "", true, "" },
	{ "recipient_delimiter", "+-", true, "+-" },
	{ "recipient_delimiter", "12345678", true, "12345678" },
	{ "recipient_delimiter", "123456789", false, NULL },
	{ "recipient_delimiter", "@", false, NULL },
	{ "recipient_delimiter", "+ ", false, NULL },
	{ "server_id", "mx1", true, "mx1" },
	{ "server_id", "a b", false, NULL },
	{ "server_id", "0123456789012345678901234567890123456789012345678901234567890123",
	  true, "0123456789012345678901234567890123456789012345678901234567890123" },
	{ "server_id", "01234567890123456789012345678901234567890123456789012345678901234",
	  false, NULL },
	{ "state_dir", "/srv/stowd", true, "/srv/stowd" },
	{ "state_dir", "var/lib/stowd", false, NULL },
	{ "state_dir", "", false, NULL },
};

static void
test_values_of_every_type(void **state)
{
	(void)state;
	cfx_check_values(value_cases, sizeof(value_cases) / sizeof(value_cases[0]));
}

static void
test_set_unknown_setting_fails(void **state)
{
	struct policy_settings s;
	const char *why = NULL;

	(void)state;
	policy_settings_defaults(&s);
	assert_int_equal(policy_setting_set(&s, "nope", "1", &why), -1);
	assert_int_equal(errno, ENOENT);
	assert_string_equal(why, "unknown setting");
	policy_settings_clear(&s);
}

/* ---- printing ---------------------------------------------------------- */

static void
test_print_all_lists_every_setting(void **state)
{
	struct cfx *fx = *state;
	char *out = cfx_capture(NULL, NULL), *line, *p, *changed;
	size_t i;

	for (i = 0; i < policy_n_setting_defs; i++) {
		const struct policy_setting_def *d = &policy_setting_defs[i];

		if (d->def[0] != '\0')
			assert_true(asprintf(&line, "# %s\n%s = %s\n", d->desc, d->name,
					     d->def) > 0);
		else
			assert_true(asprintf(&line, "# %s\n%s =\n", d->desc, d->name) > 0);
		assert_non_null(strstr(out, line));
		free(line);
	}
	/* The output is itself a valid config that changes nothing. */
	p = ptest_write(fx->dir, "all.conf", out);
	assert_int_equal(cfx_load_path(fx, p, policy_blocks, NULL), 0);
	changed = cfx_capture(policy_settings_print_changed, &fx->s);
	assert_string_equal(changed, "");
	free(changed);
	free(p);
	free(out);
}

static void
test_print_changed_lists_only_changes(void **state)
{
	struct cfx *fx = *state;
	char *out;

	assert_int_equal(cfx_load(fx,
		"delivery_mode = fork\n"
		"lmtp_max_message_size = 10240K\n"
		"lmtp_command_timeout = 300s\n"   /* = default 5m */
		"fork_idle_timeout = 1m\n"        /* = default 60s */
		"lmtp_socket_mode = 660\n"
		"lmtp_socket_group = postfix\n"
		"hostname =\n"), 0);
	out = cfx_capture(policy_settings_print_changed, &fx->s);
	assert_string_equal(out,
		"lmtp_socket_mode = 0660\n"
		"lmtp_socket_group = postfix\n"
		"lmtp_max_message_size = 10M\n"
		"delivery_mode = fork\n");
	free(out);
	assert_int_equal(cfx_load(fx, "recipient_delimiter =\n"), 0);
	out = cfx_capture(policy_settings_print_changed, &fx->s);
	assert_string_equal(out, "recipient_delimiter =\n");
	free(out);
}

static void
test_empty_hostname_resolves_to_node_name_once(void **state)
{
	struct policy_settings s;
	struct utsname u;
	const char *why = NULL;

	(void)state;
	assert_int_equal(uname(&u), 0);
	policy_settings_defaults(&s);
	assert_string_equal(s.hostname, "");
	policy_settings_resolve_hostname(&s);
	assert_string_equal(s.hostname, u.nodename);
	policy_settings_clear(&s);

	policy_settings_defaults(&s);
	assert_int_equal(policy_setting_set(&s, "hostname", "mx.example.org", &why), 0);
	policy_settings_resolve_hostname(&s);
	assert_string_equal(s.hostname, "mx.example.org");
	policy_settings_clear(&s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_missing_optional_config_gives_defaults,
						cfx_setup, cfx_teardown),
		cmocka_unit_test_setup_teardown(test_missing_required_config_is_error,
						cfx_setup, cfx_teardown),
		cmocka_unit_test_setup_teardown(test_directory_as_config_is_error,
						cfx_setup, cfx_teardown),
		cmocka_unit_test(test_defaults_have_documented_values),
		cmocka_unit_test(test_table_rows_are_consistent),
		cmocka_unit_test(test_copy_is_deep),
		cmocka_unit_test(test_empty_hostname_resolves_to_node_name_once),
		cmocka_unit_test_setup_teardown(test_syntax_errors_report_file_and_line,
						cfx_setup, cfx_teardown),
		cmocka_unit_test_setup_teardown(test_nul_byte_is_error, cfx_setup, cfx_teardown),
		cmocka_unit_test_setup_teardown(test_overlong_line_is_error,
						cfx_setup, cfx_teardown),
		cmocka_unit_test_setup_teardown(test_accepted_syntax_variants,
						cfx_setup, cfx_teardown),
		cmocka_unit_test_setup_teardown(test_empty_file_gives_defaults,
						cfx_setup, cfx_teardown),
		cmocka_unit_test_setup_teardown(test_include_is_relative_to_including_file,
						cfx_setup, cfx_teardown),
		cmocka_unit_test_setup_teardown(test_error_in_include_names_included_file,
						cfx_setup, cfx_teardown),
		cmocka_unit_test_setup_teardown(test_cross_field_error_names_included_file,
						cfx_setup, cfx_teardown),
		cmocka_unit_test_setup_teardown(test_include_loop_is_error,
						cfx_setup, cfx_teardown),
		cmocka_unit_test_setup_teardown(test_self_include_is_error,
						cfx_setup, cfx_teardown),
		cmocka_unit_test_setup_teardown(test_include_depth_limit,
						cfx_setup, cfx_teardown),
		cmocka_unit_test_setup_teardown(test_include_glob_reads_matches_in_order,
						cfx_setup, cfx_teardown),
		cmocka_unit_test(test_values_of_every_type),
		cmocka_unit_test(test_set_unknown_setting_fails),
		cmocka_unit_test_setup_teardown(test_print_all_lists_every_setting,
						cfx_setup, cfx_teardown),
		cmocka_unit_test_setup_teardown(test_print_changed_lists_only_changes,
						cfx_setup, cfx_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
