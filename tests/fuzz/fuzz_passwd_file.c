/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/fuzz_passwd_file.c - the passwd-file userdb
 * (policy/passwd_file.c, policy/userdb.c, mail_location expansion in
 * policy/location.c): the input is written as the passwd-file, read, and
 * every user found is looked up as the supervisor does for RCPT.
 *
 * Input:    a passwd-file (user:password:uid:gid:gecos:home:shell[:extra]).
 * Oracle:   the sanitizers and LeakSanitizer; the table is sorted by key,
 *           keys unique and ASCII lower-case, each found by
 *           policy_pwf_find; a user found by lookup has a uid allowed by
 *           the rules and NUL-terminated paths.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy.h"
#include "policy/policy_int.h"
#include "privsep/privsep.h"
#include "tests/fuzz/fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define MAX_LOOKUPS 16

static char path[4096];
static struct policy_settings settings;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *why = NULL;
	char v[4200];

	(void)argc, (void)argv;
	log_init("stowd", -1);
	snprintf(path, sizeof(path), "%s/users", fuzz_scratch());
	snprintf(v, sizeof(v), "passwd-file:%s", path);
	policy_settings_defaults(&settings);
	if (policy_setting_set(&settings, "userdb", v, &why) < 0 ||
	    policy_setting_set(&settings, "first_valid_uid", "1000", &why) < 0 ||
	    policy_setting_set(&settings, "mail_location", "maildir:~/Maildir", &why) < 0) {
		fprintf(stderr, "settings: %s\n", why);
		abort();
	}
	return 0;
}

static void
check_table(struct policy_pwf *pwf)
{
	const char *k;
	size_t i;

	for (i = 0; i < pwf->n; i++) {
		if (i > 0 && strcmp(pwf->v[i - 1].key, pwf->v[i].key) >= 0)
			abort();
		for (k = pwf->v[i].key; *k != '\0'; k++)
			if (*k >= 'A' && *k <= 'Z')
				abort();
		if (policy_pwf_find(pwf, pwf->v[i].key) != &pwf->v[i])
			abort();
	}
}

static void
lookups(const struct policy_pwf *pwf)
{
	struct policy_userdb *db = NULL;
	struct policy_user user;
	const char *why = NULL;
	char addr[PSEP_ADDR_MAX];
	size_t i;

	if (policy_userdb_open(&settings, &db, &why) < 0)
		return;
	for (i = 0; i < pwf->n && i < MAX_LOOKUPS; i++) {
		snprintf(addr, sizeof(addr), "%s%s", pwf->v[i].key,
			 strchr(pwf->v[i].key, '@') != NULL ? "" : "@example.com");
		memset(&user, 0, sizeof(user));
		if (policy_userdb_lookup(db, addr, &user, &why) != POLICY_USER_FOUND)
			continue;
		if (user.uid < 1000 || user.gid == 0 ||
		    memchr(user.home, '\0', sizeof(user.home)) == NULL ||
		    memchr(user.mail_base, '\0', sizeof(user.mail_base)) == NULL ||
		    memchr(user.mail_rel, '\0', sizeof(user.mail_rel)) == NULL)
			abort();
	}
	policy_userdb_free(&db);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct policy_pwf pwf;
	int fd0 = fuzz_lowest_free_fd();

	fuzz_write_file(path, data, size);
	memset(&pwf, 0, sizeof(pwf));
	pwf.path = xstrdup(path);
	if (policy_pwf_refresh(&pwf) == 0) {
		check_table(&pwf);
		lookups(&pwf);
	}
	policy_pwf_clear(&pwf);
	fuzz_check_fds(fd0, "passwd-file");
	return 0;
}
