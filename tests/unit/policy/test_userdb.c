/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/policy/test_userdb.c - recipient lookup: passwd-file parsing
 * (bad lines, full-address and local-part keys), detail stripping, case,
 * reload on change, unreadable file, uid rules, the system passwd.
 */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "policy/policy.h"
#include "tests/unit/policy/policy_test.h"

/* Line numbers matter: the log test expects them. */
static const char users_text[] =
	"# users of example.com\n"                                            /* 1 */
	"   # indented comment\n"                                             /* 2 */
	"\n"                                                                   /* 3 */
	"alice:{SHA512-CRYPT}$6$secret:1001:1001::/home/alice:/bin/sh\n"     /* 4 */
	"Bob@Example.com:x:1002:100:Bob B:/home/bob:/bin/false:quota=1G\n"   /* 5 */
	"carol@example.org:x:1003:1003\n"                                     /* 6 */
	"root:x:0:0::/root:/bin/sh\n"                                         /* 7 */
	"low:x:999:999::/home/low:\n"                                         /* 8 */
	"norel:x:1004:1004::home/norel:\n"                                    /* 9 */
	"nohome:x:1005:1005:::\n"                                             /* 10 */
	"badline\n"                                                            /* 11 */
	"bad:{PLAIN}hunter2:notanumber:1::/h:\n"                              /* 12 */
	"bad2:x:1:1x::/h:\n"                                                  /* 13 */
	":x:1006:1006::/h:\n"                                                 /* 14 */
	"alice:x:2000:2000::/home/alice2:\n"                                  /* 15 */
	"dave.x@example.com:x:1007:1007::/home/dave:\r\n"                     /* 16 */
	"big:x:4294967295:1::/h:\n"                                           /* 17 */
	"max:x:4294967294:1::/home/max:\n"                                    /* 18 */
	"gidzero:x:1008:0::/home/gz:\n";                                      /* 19 */

struct fx {
	char *dir;
	char *path;
	struct policy_settings s;
	struct policy_userdb *db;
};

static int
fx_setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));
	const char *why = NULL;
	char *v = NULL;

	assert_non_null(fx);
	fx->dir = ptest_mkdtemp();
	fx->path = ptest_write(fx->dir, "users", users_text);
	policy_settings_defaults(&fx->s);
	assert_true(asprintf(&v, "passwd-file:%s", fx->path) > 0);
	assert_int_equal(policy_setting_set(&fx->s, "userdb", v, &why), 0);
	assert_int_equal(policy_setting_set(&fx->s, "first_valid_uid", "1000", &why), 0);
	free(v);
	*state = fx;
	return 0;
}

static int
fx_teardown(void **state)
{
	struct fx *fx = *state;

	policy_userdb_free(&fx->db);
	policy_settings_clear(&fx->s);
	free(fx->path);
	ptest_rmtree(&fx->dir);
	free(fx);
	return 0;
}

static void
fx_open(struct fx *fx)
{
	const char *why = NULL;

	policy_userdb_free(&fx->db);
	if (policy_userdb_open(&fx->s, &fx->db, &why) != 0)
		fail_msg("userdb open failed: %s", why);
}

static void
fx_set(struct fx *fx, const char *name, const char *value)
{
	const char *why = NULL;

	assert_int_equal(policy_setting_set(&fx->s, name, value, &why), 0);
}

struct lookup_case {
	const char *address;
	enum policy_lookup want;
	const char *name;     /* FOUND: matched key; else the why */
	uid_t uid;
	const char *base;
	const char *rel;
};

static void
check_lookup(struct policy_userdb *db, const struct lookup_case *c)
{
	struct policy_user u;
	const char *why = NULL;
	enum policy_lookup l;

	l = policy_userdb_lookup(db, c->address, &u, &why);
	if (l != c->want)
		fail_msg("'%s': expected %d, got %d (%s)", c->address, c->want, l,
			 why != NULL ? why : "");
	if (l != POLICY_USER_FOUND) {
		if (c->name != NULL && (why == NULL || strcmp(why, c->name) != 0))
			fail_msg("'%s': expected why \"%s\", got \"%s\"", c->address,
				 c->name, why != NULL ? why : "(null)");
		assert_int_equal(u.uid, 0);
		assert_string_equal(u.mail_base, "");
		return;
	}
	if (strcmp(u.name, c->name) != 0 || u.uid != c->uid ||
	    strcmp(u.mail_base, c->base) != 0 || strcmp(u.mail_rel, c->rel) != 0)
		fail_msg("'%s': got name=%s uid=%u base=%s rel=%s", c->address, u.name,
			 (unsigned)u.uid, u.mail_base, u.mail_rel);
}

static const char no_home[] = "user has no home directory for ~/ in mail_location";
static const char rel_home[] = "user's home directory is not an absolute path";

static const struct lookup_case file_cases[] = {
	{ "alice", POLICY_USER_FOUND, "alice", 1001, "/home/alice", "Maildir" },
	{ "alice@example.com", POLICY_USER_FOUND, "alice", 1001, "/home/alice", "Maildir" },
	{ "ALICE@EXAMPLE.COM", POLICY_USER_FOUND, "alice", 1001, "/home/alice", "Maildir" },
	{ "alice+tag@example.com", POLICY_USER_FOUND, "alice", 1001, "/home/alice", "Maildir" },
	{ "alice+a+b", POLICY_USER_FOUND, "alice", 1001, "/home/alice", "Maildir" },
	{ "bob@example.com", POLICY_USER_FOUND, "bob@example.com", 1002, "/home/bob",
	  "Maildir" },
	{ "Bob+Lists@EXAMPLE.com", POLICY_USER_FOUND, "bob@example.com", 1002,
	  "/home/bob", "Maildir" },
	{ "bob", POLICY_USER_UNKNOWN, "user unknown", 0, NULL, NULL },
	{ "bob@example.org", POLICY_USER_UNKNOWN, "user unknown", 0, NULL, NULL },
	{ "dave.x@example.com", POLICY_USER_FOUND, "dave.x@example.com", 1007,
	  "/home/dave", "Maildir" },
	{ "+tag@example.com", POLICY_USER_UNKNOWN, "user unknown", 0, NULL, NULL },
	{ "j\xc3\xb6rg@example.com", POLICY_USER_UNKNOWN, "user unknown", 0, NULL, NULL },
	{ "max", POLICY_USER_FOUND, "max", 4294967294u, "/home/max", "Maildir" },
	/* found, but refused */
	{ "root", POLICY_USER_BADUID, "uid 0 not allowed", 0, NULL, NULL },
	{ "root@example.com", POLICY_USER_BADUID, "uid 0 not allowed", 0, NULL, NULL },
	{ "low", POLICY_USER_BADUID, "uid 999 not allowed", 0, NULL, NULL },
	{ "gidzero", POLICY_USER_BADUID, "gid 0 not allowed", 0, NULL, NULL },
	{ "carol@example.org", POLICY_USER_TEMPFAIL, no_home, 0, NULL, NULL },
	{ "norel", POLICY_USER_TEMPFAIL, rel_home, 0, NULL, NULL },
	{ "nohome", POLICY_USER_TEMPFAIL, no_home, 0, NULL, NULL },
	/* skipped lines */
	{ "badline", POLICY_USER_UNKNOWN, NULL, 0, NULL, NULL },
	{ "bad", POLICY_USER_UNKNOWN, NULL, 0, NULL, NULL },
	{ "bad2", POLICY_USER_UNKNOWN, NULL, 0, NULL, NULL },
	{ "big", POLICY_USER_UNKNOWN, NULL, 0, NULL, NULL },
	/* bad addresses */
	{ "", POLICY_USER_BADADDR, "empty address", 0, NULL, NULL },
	{ "@example.com", POLICY_USER_BADADDR, "no local part", 0, NULL, NULL },
	{ "alice@", POLICY_USER_BADADDR, "empty domain", 0, NULL, NULL },
	{ "al\x01ice", POLICY_USER_BADADDR, "control character in address", 0, NULL, NULL },
	{ "alice\r\n@example.com", POLICY_USER_BADADDR, "control character in address", 0,
	  NULL, NULL },
	{ "al\x7fice", POLICY_USER_BADADDR, "control character in address", 0, NULL, NULL },
};

static void
test_passwd_file_lookups(void **state)
{
	struct fx *fx = *state;
	size_t i;

	fx_open(fx);
	for (i = 0; i < sizeof(file_cases) / sizeof(file_cases[0]); i++)
		check_lookup(fx->db, &file_cases[i]);
}

static void
test_found_user_has_ids_groups_and_home(void **state)
{
	struct fx *fx = *state;
	struct policy_user u;
	const char *why = NULL;

	fx_open(fx);
	assert_int_equal(policy_userdb_lookup(fx->db, "bob@example.com", &u, &why),
			 POLICY_USER_FOUND);
	assert_int_equal(u.uid, 1002);
	assert_int_equal(u.gid, 100);
	assert_int_equal(u.ngroups, 1);
	assert_int_equal(u.groups[0], 100);
	assert_string_equal(u.home, "/home/bob");
}

static void
test_address_length_limit(void **state)
{
	struct fx *fx = *state;
	struct policy_user u;
	const char *why = NULL;
	char addr[PSEP_ADDR_MAX + 10];

	fx_open(fx);
	memset(addr, 'a', sizeof(addr) - 1);
	addr[sizeof(addr) - 1] = '\0';
	assert_int_equal(policy_userdb_lookup(fx->db, addr, &u, &why), POLICY_USER_BADADDR);
	assert_string_equal(why, "address too long");
	addr[PSEP_ADDR_MAX - 1] = '\0';
	assert_int_equal(policy_userdb_lookup(fx->db, addr, &u, &why), POLICY_USER_UNKNOWN);
}

static void
test_delimiter_setting(void **state)
{
	struct fx *fx = *state;
	static const struct lookup_case multi[] = {
		{ "alice-foo", POLICY_USER_FOUND, "alice", 1001, "/home/alice", "Maildir" },
		{ "alice+foo-bar", POLICY_USER_FOUND, "alice", 1001, "/home/alice", "Maildir" },
		{ "dave.x@example.com", POLICY_USER_FOUND, "dave.x@example.com", 1007,
		  "/home/dave", "Maildir" },
	};
	static const struct lookup_case none[] = {
		{ "alice+tag", POLICY_USER_UNKNOWN, "user unknown", 0, NULL, NULL },
		{ "alice", POLICY_USER_FOUND, "alice", 1001, "/home/alice", "Maildir" },
	};
	static const struct lookup_case dot = {
		"dave.x@example.com", POLICY_USER_UNKNOWN, "user unknown", 0, NULL, NULL };
	size_t i;

	fx_set(fx, "recipient_delimiter", "+-");
	fx_open(fx);
	for (i = 0; i < sizeof(multi) / sizeof(multi[0]); i++)
		check_lookup(fx->db, &multi[i]);
	fx_set(fx, "recipient_delimiter", "");
	fx_open(fx);
	for (i = 0; i < sizeof(none) / sizeof(none[0]); i++)
		check_lookup(fx->db, &none[i]);
	/* dave@example.com does not exist: the full address is tried first,
	 * then the local part "dave". */
	fx_set(fx, "recipient_delimiter", ".");
	fx_open(fx);
	check_lookup(fx->db, &dot);
}

static void
test_absolute_mail_location_uses_key(void **state)
{
	struct fx *fx = *state;
	static const struct lookup_case cases[] = {
		{ "Bob+x@example.com", POLICY_USER_FOUND, "bob@example.com", 1002,
		  "/var/vmail", "example.com/bob" },
		/* matched by local part: the key has no domain */
		{ "alice@example.com", POLICY_USER_TEMPFAIL,
		  "user has no usable domain for %d", 0, NULL, NULL },
		/* the home is not needed */
		{ "carol@example.org", POLICY_USER_FOUND, "carol@example.org", 1003,
		  "/var/vmail", "example.org/carol" },
	};
	size_t i;

	fx_set(fx, "mail_location", "maildir:/var/vmail/%d/%n");
	fx_open(fx);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		check_lookup(fx->db, &cases[i]);
}

static void
test_last_valid_uid_limits(void **state)
{
	struct fx *fx = *state;
	static const struct lookup_case cases[] = {
		{ "alice", POLICY_USER_FOUND, "alice", 1001, "/home/alice", "Maildir" },
		{ "bob@example.com", POLICY_USER_BADUID, "uid 1002 not allowed", 0, NULL, NULL },
	};
	size_t i;

	fx_set(fx, "last_valid_uid", "1001");
	fx_open(fx);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		check_lookup(fx->db, &cases[i]);
}

static void
expect_uid(struct fx *fx, const char *address, uid_t uid)
{
	struct policy_user u;
	const char *why = NULL;

	assert_int_equal(policy_userdb_lookup(fx->db, address, &u, &why),
			 POLICY_USER_FOUND);
	assert_int_equal(u.uid, uid);
}

/* Extra fields: userdb_quota_rule= (or quota_rule=) is kept with its
 * colons, the last one wins; other fields are ignored; the setting is the
 * fallback (policy_user_quota_rule). */
static void
test_quota_rule_extra_field(void **state)
{
	static const struct { const char *line, *user, *want; } t[] = {
		{ "q1:x:1101:1101::/h:/bin/sh:userdb_quota_rule=*:storage=1G:messages=50000\n",
		  "q1", "*:storage=1G:messages=50000" },
		{ "q2:x:1102:1102::/h::home=/x userdb_quota_rule=*:bytes=100 mail=y\n",
		  "q2", "*:bytes=100" },
		{ "q3:x:1103:1103::/h::quota_rule=?:messages=5 userdb_quota_rule=*:messages=7\n",
		  "q3", "*:messages=7" },
		{ "q4:x:1104:1104::/h::userdb_other=1\n", "q4", "*:messages=9" },
		{ "q5:x:1105:1105::/h:\n", "q5", "*:messages=9" },
	};
	struct fx *fx = *state;
	struct policy_user u;
	const char *why = NULL;
	char text[1024] = "";
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		strcat(text, t[i].line);
	free(ptest_write(fx->dir, "users", text));
	fx_set(fx, "quota_rule", "*:messages=9");
	fx_open(fx);
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		assert_int_equal(policy_userdb_lookup(fx->db, t[i].user, &u, &why),
				 POLICY_USER_FOUND);
		assert_string_equal(policy_user_quota_rule(&fx->s, &u), t[i].want);
	}
	/* an empty rule makes the line invalid, not a user without quota */
	free(ptest_write(fx->dir, "users", "q6:x:1106:1106::/h::userdb_quota_rule=\n"));
	assert_int_equal(policy_userdb_lookup(fx->db, "q6", &u, &why),
			 POLICY_USER_UNKNOWN);
}

static void
test_file_is_reread_when_it_changes(void **state)
{
	struct fx *fx = *state;
	char *tmp;

	fx_open(fx);
	expect_uid(fx, "alice", 1001);
	/* In place, new size. */
	free(ptest_write(fx->dir, "users", "alice:x:1100:1100::/home/alice:\n"));
	expect_uid(fx, "alice", 1100);
	/* Same size, new inode (an editor's rename). */
	tmp = ptest_write(fx->dir, "users.new", "alice:x:1200:1100::/home/alice:\n");
	assert_int_equal(rename(tmp, fx->path), 0);
	free(tmp);
	expect_uid(fx, "alice", 1200);
	expect_uid(fx, "alice", 1200);
}

static void
test_unreadable_file_is_tempfail(void **state)
{
	struct fx *fx = *state;
	struct policy_user u;
	const char *why = NULL;

	fx_open(fx);
	assert_int_equal(unlink(fx->path), 0);
	assert_int_equal(policy_userdb_lookup(fx->db, "alice", &u, &why),
			 POLICY_USER_TEMPFAIL);
	assert_string_equal(why, "cannot read passwd-file");
	/* A directory in its place cannot be read either. */
	assert_int_equal(mkdir(fx->path, 0700), 0);
	assert_int_equal(policy_userdb_lookup(fx->db, "alice", &u, &why),
			 POLICY_USER_TEMPFAIL);
	assert_int_equal(rmdir(fx->path), 0);
	/* Back again: served again. */
	free(ptest_write(fx->dir, "users", users_text));
	expect_uid(fx, "alice", 1001);
	/* Without read permission (only meaningful when not root). */
	if (geteuid() != 0) {
		struct timespec epoch[2] = { { 0, 0 }, { 0, 0 } };

		assert_int_equal(chmod(fx->path, 0), 0);
		/* A new mtime makes the next lookup re-read. */
		assert_int_equal(utimensat(AT_FDCWD, fx->path, epoch, 0), 0);
		assert_int_equal(policy_userdb_lookup(fx->db, "alice", &u, &why),
				 POLICY_USER_TEMPFAIL);
		assert_int_equal(chmod(fx->path, 0600), 0);
	}
}

static void
test_open_fails_without_file(void **state)
{
	struct fx *fx = *state;
	const char *why = NULL;

	assert_int_equal(unlink(fx->path), 0);
	assert_int_equal(policy_userdb_open(&fx->s, &fx->db, &why), -1);
	assert_null(fx->db);
	assert_string_equal(why, "cannot read passwd-file");
}

static void
test_invalid_lines_logged_once_without_secrets(void **state)
{
	struct fx *fx = *state;
	char *logpath = ptest_path(fx->dir, "log"), buf[8192], *p, want[512];
	int saved = dup(STDERR_FILENO), fd, count = 0;
	ssize_t n;
	static const unsigned bad_lines[] = { 11, 12, 13, 14, 17 };
	size_t i;

	fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(saved >= 0 && fd >= 0);
	assert_int_equal(dup2(fd, STDERR_FILENO), STDERR_FILENO);
	close(fd);
	fx_open(fx);
	expect_uid(fx, "alice", 1001);
	expect_uid(fx, "alice", 1001);
	assert_int_equal(dup2(saved, STDERR_FILENO), STDERR_FILENO);
	close(saved);
	fd = open(logpath, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	assert_true(n > 0);
	buf[n] = '\0';
	for (p = buf; (p = strstr(p, "invalid line skipped")) != NULL; p++)
		count++;
	assert_int_equal(count, 5);
	for (i = 0; i < sizeof(bad_lines) / sizeof(bad_lines[0]); i++) {
		snprintf(want, sizeof(want), "%s:%u: invalid line skipped", fx->path,
			 bad_lines[i]);
		assert_non_null(strstr(buf, want));
	}
	snprintf(want, sizeof(want), "%s:15: duplicate user 'alice'", fx->path);
	assert_non_null(strstr(buf, want));
	assert_null(strstr(buf, "hunter2"));
	assert_null(strstr(buf, "secret"));
	free(logpath);
}

static void
test_uid_rules(void **state)
{
	struct policy_settings s;
	static const struct {
		const char *first, *last;
		uid_t uid;
		bool ok;
	} cases[] = {
		{ "500", "0", 0, false },
		{ "500", "0", 499, false },
		{ "500", "0", 500, true },
		{ "500", "0", 4294967294u, true },
		{ "500", "0", (uid_t)-1, false },
		{ "500", "1000", 1000, true },
		{ "500", "1000", 1001, false },
		{ "1", "0", 1, true },
		{ "1", "0", 0, false },
		{ "1000", "1000", 1000, true },
	};
	const char *why;
	size_t i;

	(void)state;
	policy_settings_defaults(&s);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(policy_setting_set(&s, "first_valid_uid", cases[i].first,
						    &why), 0);
		assert_int_equal(policy_setting_set(&s, "last_valid_uid", cases[i].last,
						    &why), 0);
		if (policy_uid_allowed(&s, cases[i].uid) != cases[i].ok)
			fail_msg("first=%s last=%s uid=%u: expected %d", cases[i].first,
				 cases[i].last, (unsigned)cases[i].uid, cases[i].ok);
	}
	policy_settings_clear(&s);
}

/* --wrap=getgrouplist: the real list, plus group 0 when asked. */
static bool add_root_group;

int __real_getgrouplist(const char *user, gid_t group, gid_t *groups, int *ngroups);
int __wrap_getgrouplist(const char *user, gid_t group, gid_t *groups, int *ngroups);

int
__wrap_getgrouplist(const char *user, gid_t group, gid_t *groups, int *ngroups)
{
	int room = *ngroups, rc = __real_getgrouplist(user, group, groups, ngroups);

	if (!add_root_group || rc < 0)
		return rc;
	if (*ngroups >= room) {
		*ngroups = *ngroups + 1;
		return -1;
	}
	groups[(*ngroups)++] = 0;
	return *ngroups;
}

/* A system user with the supplementary group 0 is refused at RCPT (a
 * writer would refuse every delivery to it). */
static void
test_supplementary_group_zero_refused(void **state)
{
	struct fx *fx = *state;
	struct policy_user u;
	const char *why = NULL;
	struct passwd *pw = getpwuid(1);

	if (pw == NULL || pw->pw_gid == 0 || pw->pw_dir[0] != '/')
		skip();
	fx_set(fx, "userdb", "passwd");
	fx_set(fx, "first_valid_uid", "1");
	fx_open(fx);
	add_root_group = true;
	assert_int_equal(policy_userdb_lookup(fx->db, pw->pw_name, &u, &why),
			 POLICY_USER_BADUID);
	add_root_group = false;
	assert_string_equal(why, "supplementary group 0 (root) not allowed");
	assert_int_equal(policy_userdb_lookup(fx->db, pw->pw_name, &u, &why),
			 POLICY_USER_FOUND);
}

static void
test_system_passwd(void **state)
{
	struct fx *fx = *state;
	static const struct lookup_case cases[] = {
		{ "root", POLICY_USER_BADUID, "uid 0 not allowed", 0, NULL, NULL },
		{ "ROOT@localhost", POLICY_USER_BADUID, "uid 0 not allowed", 0, NULL, NULL },
		{ "root+tag@example.com", POLICY_USER_BADUID, "uid 0 not allowed", 0, NULL,
		  NULL },
		{ "no-such-user-stowd-test", POLICY_USER_UNKNOWN, "user unknown", 0, NULL,
		  NULL },
		{ "", POLICY_USER_BADADDR, "empty address", 0, NULL, NULL },
	};
	struct passwd *pw;
	struct policy_user u;
	const char *why = NULL;
	size_t i;

	fx_set(fx, "userdb", "passwd");
	fx_open(fx);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		check_lookup(fx->db, &cases[i]);
	/* A real non-root user, when the system has one (daemon is uid 1 on
	 * Debian): found once the uid rules allow it. */
	pw = getpwuid(1);
	if (pw == NULL || strlen(pw->pw_dir) < 1 || pw->pw_dir[0] != '/')
		return;
	fx_set(fx, "first_valid_uid", "1");
	fx_open(fx);
	assert_int_equal(policy_userdb_lookup(fx->db, pw->pw_name, &u, &why),
			 POLICY_USER_FOUND);
	assert_int_equal(u.uid, 1);
	assert_int_equal(u.gid, pw->pw_gid);
	assert_true(u.ngroups >= 1);
	assert_int_equal(u.groups[0], pw->pw_gid);
	assert_string_equal(u.name, pw->pw_name);
	assert_string_equal(u.mail_rel, "Maildir");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_passwd_file_lookups, fx_setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(test_supplementary_group_zero_refused,
						fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_found_user_has_ids_groups_and_home,
						fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_address_length_limit, fx_setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(test_delimiter_setting, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_absolute_mail_location_uses_key,
						fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_last_valid_uid_limits, fx_setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(test_quota_rule_extra_field, fx_setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(test_file_is_reread_when_it_changes,
						fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_unreadable_file_is_tempfail, fx_setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(test_open_fails_without_file, fx_setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(test_invalid_lines_logged_once_without_secrets,
						fx_setup, fx_teardown),
		cmocka_unit_test(test_uid_rules),
		cmocka_unit_test_setup_teardown(test_system_passwd, fx_setup, fx_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
