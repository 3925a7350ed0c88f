/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/policy/test_listen.c - policy_listen_parse: unix and tcp
 * entries, IPv4 and bracketed IPv6, every rejected form.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy.h"
#include "tests/unit/policy/policy_test.h"

static void
test_default_list_parses(void **state)
{
	struct policy_listen *v = NULL;
	const char *why = NULL;
	size_t n = 0;

	(void)state;
	assert_int_equal(policy_listen_parse("unix:/run/stowd/lmtp tcp:127.0.0.1:24",
					     &v, &n, &why), 0);
	assert_int_equal(n, 2);
	assert_int_equal(v[0].kind, POLICY_LISTEN_UNIX);
	assert_string_equal(v[0].path, "/run/stowd/lmtp");
	assert_string_equal(v[0].text, "unix:/run/stowd/lmtp");
	assert_int_equal(v[1].kind, POLICY_LISTEN_TCP);
	assert_string_equal(v[1].host, "127.0.0.1");
	assert_int_equal(v[1].port, 24);
	assert_string_equal(v[1].text, "tcp:127.0.0.1:24");
	free(v);
}

static void
test_ipv6_and_blank_separators(void **state)
{
	struct policy_listen *v = NULL;
	const char *why = NULL;
	size_t n = 0;

	(void)state;
	assert_int_equal(policy_listen_parse("  tcp:[::1]:2424\t tcp:[2001:db8::5]:65535 "
					     "tcp:0.0.0.0:1  ", &v, &n, &why), 0);
	assert_int_equal(n, 3);
	assert_string_equal(v[0].host, "::1");
	assert_int_equal(v[0].port, 2424);
	assert_string_equal(v[0].text, "tcp:[::1]:2424");
	assert_string_equal(v[1].host, "2001:db8::5");
	assert_int_equal(v[1].port, 65535);
	assert_string_equal(v[2].host, "0.0.0.0");
	assert_int_equal(v[2].port, 1);
	free(v);
}

static void
test_sixteen_entries_accepted(void **state)
{
	struct policy_listen *v = NULL;
	const char *why = NULL;
	char list[1024] = "";
	size_t n = 0, i;

	(void)state;
	for (i = 0; i < 16; i++) {
		char e[64];

		snprintf(e, sizeof(e), "tcp:127.0.0.1:%zu ", 100 + i);
		strcat(list, e);
	}
	assert_int_equal(policy_listen_parse(list, &v, &n, &why), 0);
	assert_int_equal(n, 16);
	free(v);
	strcat(list, "tcp:127.0.0.1:99");
	assert_int_equal(policy_listen_parse(list, &v, &n, &why), -1);
	assert_string_equal(why, "too many listeners (max 16)");
}

static void
test_unix_path_length_limit(void **state)
{
	struct policy_listen *v = NULL;
	const char *why = NULL;
	char list[256];
	size_t n = 0;

	(void)state;
	/* 107 bytes of path fit sun_path with its NUL. */
	strcpy(list, "unix:/");
	memset(list + 6, 'a', 106);
	list[112] = '\0';
	assert_int_equal(policy_listen_parse(list, &v, &n, &why), 0);
	assert_int_equal(strlen(v[0].path), 107);
	free(v);
	strcat(list, "b");
	assert_int_equal(policy_listen_parse(list, &v, &n, &why), -1);
	assert_string_equal(why, "unix socket path too long (max 107 bytes)");
}

struct bad_case {
	const char *list;
	const char *why;
};

static const struct bad_case bad_cases[] = {
	{ "", "no listener given" },
	{ "   ", "no listener given" },
	{ "unix:run/lmtp", "unix socket path must be absolute" },
	{ "unix:", "unix socket path must be absolute" },
	{ "inet:127.0.0.1:24", "unknown listener (use unix:/PATH or tcp:ADDRESS:PORT)" },
	{ "/run/lmtp", "unknown listener (use unix:/PATH or tcp:ADDRESS:PORT)" },
	{ "tcp:127.0.0.1", "expected tcp:ADDRESS:PORT" },
	{ "tcp:localhost:24", "invalid IPv4 address" },
	{ "tcp:127.0.0.256:24", "invalid IPv4 address" },
	{ "tcp::24", "invalid address" },
	{ "tcp:127.0.0.1:0", "invalid port (1..65535)" },
	{ "tcp:127.0.0.1:65536", "invalid port (1..65535)" },
	{ "tcp:127.0.0.1:", "invalid port (1..65535)" },
	{ "tcp:127.0.0.1:2x", "invalid port (1..65535)" },
	{ "tcp:127.0.0.1:-1", "invalid port (1..65535)" },
	{ "tcp:::1:24", "IPv6 address must be in brackets: tcp:[ADDR]:PORT" },
	{ "tcp:[::1]", "expected tcp:[IPv6]:PORT" },
	{ "tcp:[::1]24", "expected tcp:[IPv6]:PORT" },
	{ "tcp:[1.2.3.4]:24", "invalid IPv6 address" },
	{ "tcp:[::g]:24", "invalid IPv6 address" },
	{ "tcp:[]:24", "invalid address" },
	{ "unix:/a unix:/a", "duplicate listener" },
	{ "tcp:[::1]:24 tcp:[0::1]:24", "duplicate listener" },
	{ "tcp:127.0.0.1:24 unix:/x tcp:127.0.0.1:24", "duplicate listener" },
};

static void
test_rejected_lists(void **state)
{
	struct policy_listen *v = NULL;
	const char *why;
	size_t n, i;

	(void)state;
	for (i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		why = NULL;
		v = NULL;
		n = 0;
		if (policy_listen_parse(bad_cases[i].list, &v, &n, &why) != -1)
			fail_msg("'%s' accepted", bad_cases[i].list);
		if (why == NULL || strcmp(why, bad_cases[i].why) != 0)
			fail_msg("'%s': expected \"%s\", got \"%s\"", bad_cases[i].list,
				 bad_cases[i].why, why != NULL ? why : "(null)");
		assert_null(v);
		assert_int_equal(n, 0);
	}
}

static void
test_same_port_on_other_address_is_not_duplicate(void **state)
{
	struct policy_listen *v = NULL;
	const char *why = NULL;
	size_t n = 0;

	(void)state;
	assert_int_equal(policy_listen_parse("tcp:127.0.0.1:24 tcp:[::1]:24 "
					     "tcp:127.0.0.2:24 tcp:127.0.0.1:25",
					     &v, &n, &why), 0);
	assert_int_equal(n, 4);
	free(v);
}

/* lmtp_allow_networks: parse and match (policy/networks.c). */
static void
test_networks_parse_and_match(void **state)
{
	static const struct { const char *addr; int family; bool in; } t[] = {
		{ "10.1.2.3", AF_INET, true },
		{ "11.0.0.1", AF_INET, false },
		{ "192.168.1.7", AF_INET, true },
		{ "192.168.1.8", AF_INET, false },
		{ "2001:db8:1::5", AF_INET6, true },
		{ "2001:db9::5", AF_INET6, false },
		{ "::ffff:10.9.9.9", AF_INET6, true },   /* v4-mapped */
		{ "::1", AF_INET6, true },
	};
	struct policy_net nets[POLICY_MAX_NETWORKS];
	const char *why = NULL;
	size_t n = 0, i;

	(void)state;
	assert_int_equal(policy_networks_parse("10.0.0.0/8, 192.168.1.7 2001:db8::/33 ::1",
					       nets, POLICY_MAX_NETWORKS, &n, &why), 0);
	assert_int_equal(n, 4);
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct sockaddr_storage ss;

		memset(&ss, 0, sizeof(ss));
		ss.ss_family = (sa_family_t)t[i].family;
		if (t[i].family == AF_INET)
			assert_int_equal(inet_pton(AF_INET, t[i].addr,
				&((struct sockaddr_in *)&ss)->sin_addr), 1);
		else
			assert_int_equal(inet_pton(AF_INET6, t[i].addr,
				&((struct sockaddr_in6 *)&ss)->sin6_addr), 1);
		if (policy_networks_match(nets, n, (struct sockaddr *)&ss) != t[i].in)
			fail_msg("%s: want %s", t[i].addr, t[i].in ? "in" : "out");
	}
	assert_int_equal(policy_networks_parse("", nets, POLICY_MAX_NETWORKS, &n, &why), 0);
	assert_int_equal(n, 0);
	assert_int_equal(policy_networks_parse("10.0.0.0/33", nets, 4, &n, &why), -1);
	assert_int_equal(policy_networks_parse("::/129", nets, 4, &n, &why), -1);
	assert_int_equal(policy_networks_parse("10.0.0.0/", nets, 4, &n, &why), -1);
	assert_int_equal(policy_networks_parse("host.example", nets, 4, &n, &why), -1);
	assert_int_equal(policy_networks_parse("1.1.1.1 2.2.2.2", nets, 1, &n, &why), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_default_list_parses),
		cmocka_unit_test(test_networks_parse_and_match),
		cmocka_unit_test(test_ipv6_and_blank_separators),
		cmocka_unit_test(test_sixteen_entries_accepted),
		cmocka_unit_test(test_unix_path_length_limit),
		cmocka_unit_test(test_rejected_lists),
		cmocka_unit_test(test_same_port_on_other_address_is_not_duplicate),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
