/* SPDX-License-Identifier: MIT */
/*
 * tests/integration/test_transcripts.c - run every cases/NAME.lmtp
 * transcript (format in tests/lib/transcript.h) against a real stowd, one
 * cmocka test per file.
 *
 * Runs in:  the integration suite, as root.
 * Config:   cases run on the harness base config (tests/lib/harness.c:
 *           lmtp_max_message_size = 100K, lmtp_max_recipients = 5,
 *           lmtp_max_line_length = 1000, lmtp_command_timeout = 10s,
 *           hostname = stowd-test.example) plus their "!config" lines.
 *           Cases are sorted by config so each distinct config starts one
 *           stowd.  Every case gets a new connection (greeting not read).
 * Vars:     USER1..USER6 (addresses of u1..u6), USER1_TAGGED (u1+lists
 *           at the domain), UNKNOWN (an address with no user), DOMAIN,
 *           HOSTNAME.
 * Env:      STOWD_CASE=text runs only the cases whose file name contains
 *           text; STOWD_CASES_DIR overrides the compiled-in cases dir.
 * Extra directives:
 *           !new-messages N K   user uN got exactly K messages in new/
 *                               since the case started
 *           !reconnect          close and open a new connection
 *           !stowd-alive        the supervisor is still running
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/integration/itest.h"
#include "tests/lib/transcript.h"

#define NUSERS 6
#define MAX_CASES 128

struct tcase {
	char path[1024];
	char name[256];
	char *config;                 /* "!config" lines, "" if none */
};

static struct harness *H;
static char *h_config;            /* config of the running H */
static int before[NUSERS];        /* new/ counts at the start of a case */

/* "K = V\n..." lines into a NULL-ended array of lines (in place). */
static const char **
config_lines(char *text)
{
	const char **v = calloc(64, sizeof(*v));
	size_t n = 0;
	char *save = NULL, *l;

	assert_non_null(v);
	for (l = strtok_r(text, "\n", &save); l != NULL && n < 63;
	     l = strtok_r(NULL, "\n", &save))
		v[n++] = l;
	return v;
}

static void
use_config(const char *config)
{
	struct harness_opts o = { .nusers = NUSERS };
	char *copy;

	if (H != NULL && strcmp(h_config, config) == 0)
		return;
	harness_free(&H);
	free(h_config);
	h_config = strdup(config);
	copy = strdup(config);
	assert_non_null(h_config);
	assert_non_null(copy);
	o.conf = config_lines(copy);
	H = harness_new(&o);
	free((void *)o.conf);
	free(copy);
	assert_non_null(H);
	if (harness_start(H) < 0) {
		harness_free(&H);
		fail_msg("stowd did not start with config:\n%s", config);
	}
}

static int
directive(struct transcript_ctx *ctx, const char *line, char *err, size_t errsize)
{
	unsigned user, want;
	int got;

	if (sscanf(line, "!new-messages %u %u", &user, &want) == 2) {
		if (user < 1 || user > NUSERS) {
			snprintf(err, errsize, "no user %u", user);
			return -1;
		}
		got = harness_count_new(H, user - 1);
		if (got < 0 || (unsigned)(got - before[user - 1]) != want) {
			snprintf(err, errsize, "u%u got %d new messages", user,
				 got - before[user - 1]);
			return -1;
		}
		return 0;
	}
	if (strcmp(line, "!reconnect") == 0) {
		lmtpc_free(&ctx->conn);
		if (lmtpc_connect(H->listen[HARNESS_UNIX], 0, &ctx->conn) < 0) {
			snprintf(err, errsize, "%s", lmtpc_strerror(errno));
			return -1;
		}
		return 0;
	}
	if (strcmp(line, "!stowd-alive") == 0) {
		if (harness_alive(H))
			return 0;
		snprintf(err, errsize, "stowd exited, wait status 0x%x",
			 (unsigned)H->exit_status);
		return -1;
	}
	snprintf(err, errsize, "unknown directive");
	return -1;
}

static void
run_case(void **state)
{
	const struct tcase *tc = *state;
	char names[NUSERS][16], vals[NUSERS][128], unknown[128], tagged[160];
	struct transcript_var vars[NUSERS + 4];
	struct transcript_ctx ctx = { .directive = directive };
	char err[TRANSCRIPT_ERR_MAX];
	size_t n = 0;
	int rc;

	for (unsigned i = 0; i < NUSERS; i++) {
		snprintf(names[i], sizeof(names[i]), "USER%u", i + 1);
		snprintf(vals[i], sizeof(vals[i]), "%s", H->users[i].addr);
		vars[n++] = (struct transcript_var){ names[i], vals[i] };
		before[i] = itest_count_new(H, i);
	}
	snprintf(unknown, sizeof(unknown), "nosuchuser%s%s", H->domain[0] ? "@" : "",
		 H->domain);
	vars[n++] = (struct transcript_var){ "UNKNOWN", unknown };
	snprintf(tagged, sizeof(tagged), "%s+lists%s%s", H->users[0].name,
		 H->domain[0] ? "@" : "", H->domain);
	vars[n++] = (struct transcript_var){ "USER1_TAGGED", tagged };
	vars[n++] = (struct transcript_var){ "DOMAIN", H->domain };
	vars[n++] = (struct transcript_var){ "HOSTNAME", H->hostname };
	ctx.vars = vars;
	ctx.nvars = n;
	if (lmtpc_connect(H->listen[HARNESS_UNIX], 0, &ctx.conn) < 0)
		fail_msg("connect %s: %s", H->listen[HARNESS_UNIX], lmtpc_strerror(errno));
	rc = transcript_run_file(&ctx, tc->path, err, sizeof(err));
	lmtpc_free(&ctx.conn);
	if (rc != 0)
		fail_msg("%s", err);
	if (!harness_alive(H))
		fail_msg("stowd died during %s", tc->name);
	itest_pass(H);
}

static int
case_setup(void **state)
{
	const struct tcase *tc = *state;

	use_config(tc->config);
	itest_begin(H);
	return 0;
}

static int
case_teardown(void **state)
{
	(void)state;
	itest_end(H);
	return 0;
}

static int
cmp_case(const void *a, const void *b)
{
	const struct tcase *x = a, *y = b;
	int c = strcmp(x->config, y->config);

	return c != 0 ? c : strcmp(x->name, y->name);
}

static size_t
load_cases(const char *dir, struct tcase *cases)
{
	struct dirent *de;
	DIR *d = opendir(dir);
	size_t n = 0;

	if (d == NULL) {
		fprintf(stderr, "cannot open %s: %s\n", dir, strerror(errno));
		exit(1);
	}
	while ((de = readdir(d)) != NULL && n < MAX_CASES) {
		size_t l = strlen(de->d_name);

		if (l < 6 || strcmp(de->d_name + l - 5, ".lmtp") != 0)
			continue;
		snprintf(cases[n].path, sizeof(cases[n].path), "%s/%s", dir, de->d_name);
		snprintf(cases[n].name, sizeof(cases[n].name), "%s", de->d_name);
		if (transcript_config(cases[n].path, &cases[n].config) < 0) {
			fprintf(stderr, "%s: %s\n", cases[n].path, strerror(errno));
			exit(1);
		}
		n++;
	}
	closedir(d);
	qsort(cases, n, sizeof(*cases), cmp_case);
	return n;
}

static int
group_teardown(void **state)
{
	(void)state;
	harness_free(&H);
	free(h_config);
	h_config = NULL;
	return 0;
}

int
main(void)
{
	static struct tcase cases[MAX_CASES];
	static struct CMUnitTest tests[MAX_CASES];
	const char *dir = getenv("STOWD_CASES_DIR");
	const char *only = getenv("STOWD_CASE");
	size_t n, k = 0;
	int rc;

	harness_require_root();
	n = load_cases(dir ? dir : STOWD_CASES_DIR, cases);
	for (size_t i = 0; i < n; i++) {
		if (only != NULL && strstr(cases[i].name, only) == NULL)
			continue;
		tests[k++] = (struct CMUnitTest){
			.name = cases[i].name, .test_func = run_case,
			.setup_func = case_setup, .teardown_func = case_teardown,
			.initial_state = &cases[i] };
	}
	if (k == 0) {
		fprintf(stderr, "no .lmtp cases found\n");
		return 1;
	}
	rc = _cmocka_run_group_tests("transcripts", tests, k, NULL, group_teardown);
	for (size_t i = 0; i < n; i++)
		free(cases[i].config);
	return rc;
}
