/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/policy/test_replication.c - replication settings: values of
 * every replication_* setting, the `replica NAME { address = ... }` block
 * with its errors (exact FILE:LINE text), the load-time cross-checks,
 * `stowd -a` / `stowd -n` output, copy/clear, server_id resolution and
 * policy_repl_unix_uid_allowed.
 */
#include <errno.h>
#include <pwd.h>
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

#define TLS "replication_tls_cert = /etc/stowd/repl.pem\n" \
	    "replication_tls_key = /etc/stowd/repl.key\n" \
	    "replication_tls_ca = /etc/stowd/repl-ca.pem\n"

/* ---- values ------------------------------------------------------------ */

static const struct cfx_value_case value_cases[] = {
	{ "replication_listen", "", true, "" },
	{ "replication_listen", "unix:/run/stowd/repl", true, "unix:/run/stowd/repl" },
	{ "replication_listen", "tcp:0.0.0.0:4810 tcp:[::]:4810", true,
	  "tcp:0.0.0.0:4810 tcp:[::]:4810" },
	{ "replication_listen", "tcp:repl.example:4810", false, NULL },
	{ "replication_listen", "udp:1.2.3.4:1", false, NULL },
	{ "replication_listen", "unix:relative", false, NULL },
	{ "replication_listen", "tcp:127.0.0.1:1 tcp:127.0.0.1:1", false, NULL },
	{ "replication_tls_cert", "", true, "" },
	{ "replication_tls_cert", "/etc/stowd/a.pem", true, "/etc/stowd/a.pem" },
	{ "replication_tls_cert", "a.pem", false, NULL },
	{ "replication_tls_key", "/etc/stowd/a b.key", false, NULL },
	{ "replication_tls_key", "/etc/stowd/a.key", true, "/etc/stowd/a.key" },
	{ "replication_tls_ca", "/etc/stowd/ca.pem", true, "/etc/stowd/ca.pem" },
	{ "replication_tls_ca", "ca.pem", false, NULL },
	{ "replication_peers", "", true, "" },
	{ "replication_peers", "a.test b.test", true, "a.test b.test" },
	{ "replication_peers", "a.test\x01", false, NULL },
	{ "replication_unix_uids", "", true, "" },
	{ "replication_unix_uids", "0", true, "0" },
	{ "replication_unix_uids", "root", true, "0" },
	{ "replication_unix_uids", "  1000\t root  5 ", true, "1000 0 5" },
	{ "replication_unix_uids", "4294967294", true, "4294967294" },
	{ "replication_unix_uids", "4294967295", false, NULL },
	{ "replication_unix_uids", "0 root", false, NULL },
	{ "replication_unix_uids", "no-such-user-stowd", false, NULL },
	{ "replication_unix_uids", "-1", false, NULL },
	{ "replication_unix_uids", "1x", false, NULL },
	{ "replication_unix_uids", "a/b", false, NULL },
	{ "replication_unix_uids", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false, NULL },
	{ "replication_sync_acks", "0", true, "0" },
	{ "replication_sync_acks", "16", true, "16" },
	{ "replication_sync_acks", "17", false, NULL },
	{ "replication_sync_acks", "one", false, NULL },
	{ "replication_sync_timeout", "2s", true, "2s" },
	{ "replication_sync_timeout", "500ms", true, "500ms" },
	{ "replication_sync_timeout", "100ms", true, "100ms" },
	{ "replication_sync_timeout", "99ms", false, NULL },
	{ "replication_sync_timeout", "60m", true, "1h" },
	{ "replication_sync_timeout", "61m", false, NULL },
	{ "replication_on_timeout", "accept", true, "accept" },
	{ "replication_on_timeout", "tempfail", true, "tempfail" },
	{ "replication_on_timeout", "Accept", false, NULL },
	{ "replication_on_timeout", "", false, NULL },
	{ "replication_journal_max_size", "1G", true, "1G" },
	{ "replication_journal_max_size", "1M", true, "1M" },
	{ "replication_journal_max_size", "1023K", false, NULL },
	{ "replication_journal_max_size", "100G", true, "100G" },
	{ "replication_full_sync_interval", "1d", true, "24h" },
	{ "replication_full_sync_interval", "7 days", true, "168h" },
	{ "replication_full_sync_interval", "0", true, "0s" },
	{ "replication_full_sync_interval", "1m", true, "1m" },
	{ "replication_full_sync_interval", "2s", true, "2s" },
	{ "replication_full_sync_interval", "999ms", false, NULL },
	{ "replication_full_sync_interval", "367d", false, NULL },
	{ "replication_full_sync_interval", "1w", false, NULL },
};

static void
test_replication_values(void **state)
{
	(void)state;
	cfx_check_values(value_cases, sizeof(value_cases) / sizeof(value_cases[0]));
}

static void
test_uid_list_limits_and_lookup(void **state)
{
	struct policy_settings s;
	const char *why = NULL;
	char list[33 * 8];
	size_t i, len = 0;

	(void)state;
	policy_settings_defaults(&s);
	for (i = 0; i < POLICY_MAX_REPL_UIDS; i++)
		len += (size_t)snprintf(list + len, sizeof(list) - len, "%zu ", 1000 + i);
	assert_int_equal(policy_setting_set(&s, "replication_unix_uids", list, &why), 0);
	assert_int_equal(s.n_repl_unix_uids, POLICY_MAX_REPL_UIDS);
	assert_true(policy_repl_unix_uid_allowed(&s, 1000));
	assert_true(policy_repl_unix_uid_allowed(&s, 1031));
	assert_false(policy_repl_unix_uid_allowed(&s, 1032));
	assert_false(policy_repl_unix_uid_allowed(&s, 0));
	snprintf(list + len, sizeof(list) - len, "2000");
	assert_int_equal(policy_setting_set(&s, "replication_unix_uids", list, &why), -1);
	assert_string_equal(why, "too many uids (max 32)");
	/* A failed set keeps the old list. */
	assert_int_equal(s.n_repl_unix_uids, POLICY_MAX_REPL_UIDS);
	assert_int_equal(policy_setting_set(&s, "replication_unix_uids", "0 root", &why), -1);
	assert_string_equal(why, "uid listed twice");
	assert_int_equal(policy_setting_set(&s, "replication_unix_uids",
					    "no-such-user-stowd", &why), -1);
	assert_string_equal(why, "unknown user");
	/* Defaults: nobody, not even root. */
	assert_int_equal(policy_setting_set(&s, "replication_unix_uids", "", &why), 0);
	assert_int_equal(s.n_repl_unix_uids, 0);
	assert_false(policy_repl_unix_uid_allowed(&s, 0));
	assert_int_equal(policy_setting_set(&s, "replication_unix_uids", "root", &why), 0);
	assert_true(policy_repl_unix_uid_allowed(&s, 0));
	policy_settings_clear(&s);
}

static void
test_peer_list_limits_and_lookup(void **state)
{
	struct policy_settings s;
	const char *why = NULL;
	char list[(POLICY_MAX_PEERS + 1) * 8], longid[80];
	size_t i, len = 0;

	(void)state;
	policy_settings_defaults(&s);
	/* Default: any id (the certificate check is repld's). */
	assert_true(policy_repl_peer_listed(&s, "a.test"));
	assert_int_equal(policy_setting_set(&s, "replication_peers",
					    " a.test\tb.test  ", &why), 0);
	assert_true(policy_repl_peer_listed(&s, "a.test"));
	assert_true(policy_repl_peer_listed(&s, "b.test"));
	assert_false(policy_repl_peer_listed(&s, "c.test"));
	assert_false(policy_repl_peer_listed(&s, "a.tes"));
	assert_false(policy_repl_peer_listed(&s, "a.test b.test"));
	assert_false(policy_repl_peer_listed(&s, ""));
	for (i = 0; i < POLICY_MAX_PEERS; i++)
		len += (size_t)snprintf(list + len, sizeof(list) - len, "p%zu ", i);
	assert_int_equal(policy_setting_set(&s, "replication_peers", list, &why), 0);
	snprintf(list + len, sizeof(list) - len, "p999");
	assert_int_equal(policy_setting_set(&s, "replication_peers", list, &why), -1);
	assert_string_equal(why, "too many peers");
	memset(longid, 'x', 65);
	longid[65] = '\0';
	assert_int_equal(policy_setting_set(&s, "replication_peers", longid, &why), -1);
	policy_settings_clear(&s);
}

/* ---- replica blocks ---------------------------------------------------- */

static void
test_replica_blocks_are_parsed(void **state)
{
	struct cfx *fx = *state;

	assert_int_equal(cfx_load(fx,
		TLS
		"replication_sync_acks = 2\n"
		"replica b-1 {\n"
		"  address = tcp:repl-b.example.org:4810   # comment\n"
		"}\n"
		"replica c_2.x {\n"
		"  address = \"tcp:[2001:db8::2]:4810\"\n"
		"}\n"
		"replica d {\n address = tcp:192.0.2.4:1\n}\n"), 0);
	assert_int_equal(fx->s.n_replicas, 3);
	assert_int_equal(fx->s.replication_sync_acks, 2);
	assert_string_equal(fx->s.replicas[0].name, "b-1");
	assert_string_equal(fx->s.replicas[0].address, "tcp:repl-b.example.org:4810");
	assert_string_equal(fx->s.replicas[0].host, "repl-b.example.org");
	assert_int_equal(fx->s.replicas[0].port, 4810);
	assert_string_equal(fx->s.replicas[1].name, "c_2.x");
	assert_string_equal(fx->s.replicas[1].host, "2001:db8::2");
	assert_string_equal(fx->s.replicas[1].address, "tcp:[2001:db8::2]:4810");
	assert_string_equal(fx->s.replicas[2].host, "192.0.2.4");
	assert_int_equal(fx->s.replicas[2].port, 1);
}

static void
test_replica_block_may_come_from_include(void **state)
{
	struct cfx *fx = *state;

	free(ptest_write(fx->dir, "replicas.conf",
			 "replica x {\naddress = tcp:x.example:4810.\n}\n"));
	cfx_expect(fx, "bad port in include", TLS "!include replicas.conf\n",
		   "replicas.conf:2: invalid value for 'address' in block 'replica': "
		  "invalid port (1..65535)");
	free(ptest_write(fx->dir, "replicas.conf",
			 "replica x {\naddress = tcp:x.example.:4810\n}\n"));
	assert_int_equal(cfx_load(fx, TLS "!include replicas.conf\n"), 0);
	assert_int_equal(fx->s.n_replicas, 1);
	assert_string_equal(fx->s.replicas[0].host, "x.example.");
}

#define ADDR_ERR(line, why) \
	"main.conf:" #line ": invalid value for 'address' in block 'replica': " why

static const struct cfx_err_case block_errors[] = {
	{ "no name", TLS "replica {\n}\n",
	  "main.conf:4: block 'replica' needs a name: replica NAME {" },
	{ "bad name", TLS "replica a/b {\naddress = tcp:h:1\n}\n",
	  "main.conf:4: block 'replica': invalid name (letters, digits, '-', '_', '.'; "
	  "at most 63)" },
	{ "long name", TLS "replica "
	  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa {\n}\n",
	  "main.conf:4: block 'replica': invalid name (letters, digits, '-', '_', '.'; "
	  "at most 63)" },
	{ "duplicate name", TLS "replica a {\naddress = tcp:h:1\n}\n"
	  "\nreplica a {\naddress = tcp:h:2\n}\n",
	  "main.conf:8: block 'replica': duplicate replica name" },
	{ "address missing", TLS "replica a {\n\n}\n",
	  "main.conf:6: block 'replica': address missing (address = tcp:HOST:PORT)" },
	{ "address twice", TLS "replica a {\naddress = tcp:h:1\naddress = tcp:h:2\n}\n",
	  ADDR_ERR(6, "address given twice") },
	{ "unknown key", TLS "replica a {\nport = 1\n}\n",
	  "main.conf:5: unknown setting 'port' in block 'replica'" },
	{ "global key in block", TLS "replica a {\nreplication_sync_acks = 1\n}\n",
	  "main.conf:5: unknown setting 'replication_sync_acks' in block 'replica'" },
	{ "unterminated", TLS "replica a {\naddress = tcp:h:1\n",
	  "main.conf:4: unterminated block 'replica'" },
	{ "not tcp", TLS "replica a {\naddress = unix:/run/x\n}\n",
	  ADDR_ERR(5, "expected tcp:HOST:PORT") },
	{ "no port", TLS "replica a {\naddress = tcp:h\n}\n",
	  ADDR_ERR(5, "expected tcp:HOST:PORT") },
	{ "port 0", TLS "replica a {\naddress = tcp:h:0\n}\n",
	  ADDR_ERR(5, "invalid port (1..65535)") },
	{ "port too big", TLS "replica a {\naddress = tcp:h:65536\n}\n",
	  ADDR_ERR(5, "invalid port (1..65535)") },
	{ "empty host", TLS "replica a {\naddress = tcp::1\n}\n",
	  ADDR_ERR(5, "invalid host") },
	{ "host with dash", TLS "replica a {\naddress = tcp:-h.example:1\n}\n",
	  ADDR_ERR(5, "invalid host name") },
	{ "host with underscore", TLS "replica a {\naddress = tcp:a_b.example:1\n}\n",
	  ADDR_ERR(5, "invalid host name") },
	{ "empty label", TLS "replica a {\naddress = tcp:a..example:1\n}\n",
	  ADDR_ERR(5, "invalid host name") },
	{ "bad IPv4", TLS "replica a {\naddress = tcp:192.0.2.256:1\n}\n",
	  ADDR_ERR(5, "invalid IPv4 address") },
	{ "IPv6 without brackets", TLS "replica a {\naddress = tcp:2001:db8::1:1\n}\n",
	  ADDR_ERR(5, "IPv6 address must be in brackets: tcp:[ADDR]:PORT") },
	{ "bad IPv6", TLS "replica a {\naddress = tcp:[2001:zz::1]:1\n}\n",
	  ADDR_ERR(5, "invalid IPv6 address") },
	{ "unclosed bracket", TLS "replica a {\naddress = tcp:[::1:1\n}\n",
	  ADDR_ERR(5, "expected tcp:[IPv6]:PORT") },
	{ "address too long", TLS "replica a {\naddress = tcp:"
	  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa."
	  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa."
	  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa."
	  "example:1\n}\n",
	  ADDR_ERR(5, "address too long") },
	{ "host too long", TLS "replica a {\naddress = tcp:"
	  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa."
	  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa."
	  "aaaaaaaaaaaaa:1\n}\n",
	  ADDR_ERR(5, "invalid host") },
};

static void
test_replica_block_errors(void **state)
{
	struct cfx *fx = *state;
	size_t i;

	for (i = 0; i < sizeof(block_errors) / sizeof(block_errors[0]); i++)
		cfx_expect(fx, block_errors[i].name, block_errors[i].text,
			   block_errors[i].err);
}

static void
test_too_many_replicas(void **state)
{
	struct cfx *fx = *state;
	char *text = NULL, *p;
	size_t cap = 0;
	FILE *f = open_memstream(&text, &cap);
	int i;

	assert_non_null(f);
	fputs(TLS, f);
	for (i = 0; i <= POLICY_MAX_REPLICAS; i++)
		fprintf(f, "replica r%d {\naddress = tcp:10.0.0.%d:4810\n}\n", i, i + 1);
	assert_int_equal(fclose(f), 0);
	/* Block 17 opens on line 3 + 16 * 3 + 1. */
	cfx_expect(fx, "17 replicas", text,
		   "main.conf:52: block 'replica': too many replicas (max 16)");
	/* 16 are fine. */
	p = strstr(text, "replica r16 {");
	assert_non_null(p);
	*p = '\0';
	assert_int_equal(cfx_load(fx, text), 0);
	assert_int_equal(fx->s.n_replicas, POLICY_MAX_REPLICAS);
	free(text);
}

/* ---- cross-checks ------------------------------------------------------ */

static const struct cfx_err_case cross_errors[] = {
	{ "tcp listener without cert",
	  "replication_tls_key = /k\nreplication_tls_ca = /ca\n"
	  "replication_listen = unix:/run/r tcp:0.0.0.0:4810\n",
	  "main.conf:3: a tcp: replication listener needs replication_tls_cert "
	  "(replication_listen = unix:/run/r tcp:0.0.0.0:4810, replication_tls_cert = )" },
	{ "tcp listener, cert set later is blamed",
	  "replication_listen = tcp:[::]:4810\nreplication_tls_cert = /c\n"
	  "replication_tls_key = /k\n",
	  "main.conf:1: a tcp: replication listener needs replication_tls_ca "
	  "(replication_listen = tcp:[::]:4810, replication_tls_ca = )" },
	{ "tcp listener, key emptied later",
	  TLS "replication_listen = tcp:[::]:4810\nreplication_tls_key =\n",
	  "main.conf:5: a tcp: replication listener needs replication_tls_key "
	  "(replication_listen = tcp:[::]:4810, replication_tls_key = )" },
	{ "replica without TLS files",
	  "replication_tls_cert = /c\n\nreplica a {\naddress = tcp:h:1\n}\n",
	  "main.conf:3: replica 'a' needs replication_tls_cert, replication_tls_key "
	  "and replication_tls_ca" },
	{ "sync acks without replicas", "\nreplication_sync_acks = 1\n",
	  "main.conf:2: replication_sync_acks = 1 but only 0 replica blocks" },
	{ "sync acks above replicas",
	  TLS "replication_sync_acks = 2\nreplica a {\naddress = tcp:h:1\n}\n",
	  "main.conf:4: replication_sync_acks = 2 but only 1 replica block" },
};

static void
test_cross_checks(void **state)
{
	struct cfx *fx = *state;
	size_t i;

	for (i = 0; i < sizeof(cross_errors) / sizeof(cross_errors[0]); i++)
		cfx_expect(fx, cross_errors[i].name, cross_errors[i].text,
			   cross_errors[i].err);
	/* A unix listener needs no TLS; sync acks equal to the replicas. */
	assert_int_equal(cfx_load(fx, "replication_listen = unix:/run/stowd/repl\n"), 0);
	assert_int_equal(cfx_load(fx, TLS "replication_listen = tcp:0.0.0.0:4810\n"
				 "replication_sync_acks = 1\n"
				 "replica a {\naddress = tcp:h:1\n}\n"), 0);
	assert_int_equal(fx->s.replication_sync_acks, 1);
}

static void
test_failed_load_leaves_nothing(void **state)
{
	struct cfx *fx = *state;

	cfx_expect(fx, "late error", TLS "replica a {\naddress = tcp:h:1\n}\nbogus = 1\n",
		   "main.conf:7: unknown setting 'bogus'");
	assert_int_equal(fx->s.n_replicas, 0);
	assert_null(fx->s.replication_tls_cert);
}

/* ---- output, copy, resolution ------------------------------------------ */

static void
test_print_all_describes_replication(void **state)
{
	char *out = cfx_capture(NULL, NULL);

	(void)state;
	assert_non_null(strstr(out, "\nreplication_listen =\n"));
	assert_non_null(strstr(out, "\nreplication_unix_uids =\n"));
	assert_non_null(strstr(out, "\nreplication_sync_acks = 0\n"));
	assert_non_null(strstr(out, "\nreplication_sync_timeout = 2s\n"));
	assert_non_null(strstr(out, "\nreplication_on_timeout = accept\n"));
	assert_non_null(strstr(out, "\nreplication_journal_max_size = 1G\n"));
	assert_non_null(strstr(out, "\nreplication_full_sync_interval = 1d\n"));
	assert_non_null(strstr(out, "#replica NAME {\n#  address = tcp:HOST:PORT\n#}\n"));
	free(out);
}

static void
test_print_changed_shows_settings_and_replicas(void **state)
{
	struct cfx *fx = *state;
	char *out;

	assert_int_equal(cfx_load(fx,
		TLS
		"replication_listen = tcp:0.0.0.0:4810\n"
		"replication_unix_uids = root\n"
		"replication_sync_acks = 1\n"
		"replication_sync_timeout = 2000ms\n"      /* = default */
		"replication_on_timeout = tempfail\n"
		"replication_full_sync_interval = 24h\n"   /* = default 1d */
		"replication_journal_max_size = 2048M\n"
		"replica b {\n  address = tcp:[::1]:4810\n}\n"
		"replica c {\naddress=tcp:c.example:1\n}\n"), 0);
	out = cfx_capture(policy_settings_print_changed, &fx->s);
	assert_string_equal(out,
		"replication_listen = tcp:0.0.0.0:4810\n"
		"replication_tls_cert = /etc/stowd/repl.pem\n"
		"replication_tls_key = /etc/stowd/repl.key\n"
		"replication_tls_ca = /etc/stowd/repl-ca.pem\n"
		"replication_unix_uids = 0\n"
		"replication_sync_acks = 1\n"
		"replication_on_timeout = tempfail\n"
		"replication_journal_max_size = 2G\n"
		"replica b {\n  address = tcp:[::1]:4810\n}\n"
		"replica c {\n  address = tcp:c.example:1\n}\n");
	/* The output loads back to the same settings. */
	assert_int_equal(cfx_load(fx, out), 0);
	assert_int_equal(fx->s.n_replicas, 2);
	assert_string_equal(fx->s.replicas[1].host, "c.example");
	assert_int_equal(fx->s.replication_on_timeout, POLICY_ON_TIMEOUT_TEMPFAIL);
	free(out);
}

static void
test_copy_and_clear_cover_replication(void **state)
{
	struct policy_settings a, b;
	const char *why;

	(void)state;
	policy_settings_defaults(&a);
	assert_int_equal(policy_setting_set(&a, "replication_tls_cert", "/c", &why), 0);
	assert_int_equal(policy_setting_set(&a, "replication_listen", "unix:/r", &why), 0);
	assert_int_equal(policy_setting_set(&a, "replication_unix_uids", "7 8", &why), 0);
	assert_int_equal(policy_replica_open(&a, NULL, "x", &why), 0);
	assert_int_equal(policy_replica_set(&a, NULL, "address", "tcp:x:1", &why), 0);
	assert_int_equal(policy_replica_close(&a, NULL, &why), 0);
	policy_settings_copy(&b, &a);
	assert_ptr_not_equal(a.replication_tls_cert, b.replication_tls_cert);
	assert_ptr_not_equal(a.replication_listen, b.replication_listen);
	policy_settings_clear(&a);
	assert_null(a.replication_tls_cert);
	assert_int_equal(a.n_replicas, 0);
	assert_int_equal(a.n_repl_unix_uids, 0);
	assert_string_equal(b.replication_tls_cert, "/c");
	assert_string_equal(b.replication_listen, "unix:/r");
	assert_int_equal(b.n_repl_unix_uids, 2);
	assert_true(policy_repl_unix_uid_allowed(&b, 8));
	assert_int_equal(b.n_replicas, 1);
	assert_string_equal(b.replicas[0].host, "x");
	policy_settings_clear(&b);
}

static void
test_replica_set_rejects_unknown_key_with_enoent(void **state)
{
	struct policy_settings s;
	const char *why = NULL;

	(void)state;
	policy_settings_defaults(&s);
	assert_int_equal(policy_replica_open(&s, NULL, "x", &why), 0);
	errno = 0;
	assert_int_equal(policy_replica_set(&s, NULL, "host", "x", &why), -1);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(policy_replica_close(&s, NULL, &why), -1);
	assert_int_equal(s.n_replicas, 0);
	policy_settings_clear(&s);
}

static void
test_server_id_defaults_to_hostname(void **state)
{
	struct policy_settings s;
	struct utsname u;
	const char *why = NULL;
	char longname[200];

	(void)state;
	assert_int_equal(uname(&u), 0);
	policy_settings_defaults(&s);
	policy_settings_resolve_hostname(&s);
	assert_string_equal(s.server_id, s.hostname);
	assert_string_equal(s.hostname, u.nodename);
	policy_settings_clear(&s);

	policy_settings_defaults(&s);
	assert_int_equal(policy_setting_set(&s, "hostname", "mx.example.org", &why), 0);
	policy_settings_resolve_hostname(&s);
	assert_string_equal(s.server_id, "mx.example.org");
	policy_settings_clear(&s);

	policy_settings_defaults(&s);
	assert_int_equal(policy_setting_set(&s, "server_id", "node-a", &why), 0);
	policy_settings_resolve_hostname(&s);
	assert_string_equal(s.server_id, "node-a");
	policy_settings_clear(&s);

	/* A server id is at most 64 octets. */
	memset(longname, 'h', 100);
	longname[100] = '\0';
	policy_settings_defaults(&s);
	assert_int_equal(policy_setting_set(&s, "hostname", longname, &why), 0);
	policy_settings_resolve_hostname(&s);
	assert_int_equal(strlen(s.server_id), 64);
	assert_memory_equal(s.server_id, longname, 64);
	policy_settings_clear(&s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_replication_values),
		cmocka_unit_test(test_uid_list_limits_and_lookup),
		cmocka_unit_test(test_peer_list_limits_and_lookup),
		cmocka_unit_test_setup_teardown(test_replica_blocks_are_parsed, cfx_setup,
						cfx_teardown),
		cmocka_unit_test_setup_teardown(test_replica_block_may_come_from_include,
						cfx_setup, cfx_teardown),
		cmocka_unit_test_setup_teardown(test_replica_block_errors, cfx_setup,
						cfx_teardown),
		cmocka_unit_test_setup_teardown(test_too_many_replicas, cfx_setup,
						cfx_teardown),
		cmocka_unit_test_setup_teardown(test_cross_checks, cfx_setup, cfx_teardown),
		cmocka_unit_test_setup_teardown(test_failed_load_leaves_nothing, cfx_setup,
						cfx_teardown),
		cmocka_unit_test(test_print_all_describes_replication),
		cmocka_unit_test_setup_teardown(test_print_changed_shows_settings_and_replicas,
						cfx_setup, cfx_teardown),
		cmocka_unit_test(test_copy_and_clear_cover_replication),
		cmocka_unit_test(test_replica_set_rejects_unknown_key_with_enoent),
		cmocka_unit_test(test_server_id_defaults_to_hostname),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
