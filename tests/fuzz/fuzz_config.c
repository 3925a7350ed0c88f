/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/fuzz_config.c - the config parser (policy/config.c with the
 * settings table, value parsers and replica blocks of policy/): the input
 * is written as main.conf in a scratch directory and loaded.
 *
 * Input:    a config file.  Next to it are inc.conf (settings and a
 *           replica block) and conf.d/ (two files) for !include.  An input
 *           with an !include line holding a '/' other than in "conf.d/" is
 *           skipped: an include may name any file of the system, and a
 *           FIFO or /dev/stdin would block the harness.
 * Oracle:   the sanitizers and LeakSanitizer (a failed load frees all); a
 *           load gives settings or an error text, never both; settings
 *           that loaded survive a deep copy and printing.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "policy/policy.h"
#include "privsep/privsep.h"
#include "tests/fuzz/fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static char main_path[4096];

static const char inc_text[] =
	"lmtp_max_recipients = 7\n"
	"replication_tls_cert = /etc/stowd/cert.pem\n"
	"replication_tls_key = /etc/stowd/key.pem\n"
	"replication_tls_ca = /etc/stowd/ca.pem\n"
	"replica b {\n"
	"  address = tcp:192.0.2.2:4190\n"
	"}\n";

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *dir = fuzz_scratch();
	char path[4096];

	(void)argc, (void)argv;
	log_init("stowd", -1);
	snprintf(path, sizeof(path), "%s/inc.conf", dir);
	fuzz_write_file(path, inc_text, sizeof(inc_text) - 1);
	snprintf(path, sizeof(path), "%s/conf.d", dir);
	if (mkdir(path, 0700) < 0)
		abort();
	snprintf(path, sizeof(path), "%s/conf.d/10-a.conf", dir);
	fuzz_write_file(path, "hostname = a.example\n", 21);
	snprintf(path, sizeof(path), "%s/conf.d/20-b.conf", dir);
	fuzz_write_file(path, "!include ../inc.conf\n", 21);
	snprintf(main_path, sizeof(main_path), "%s/main.conf", dir);
	return 0;
}

/*
 * True if a line holding "!include" has a '/' that does not end
 * "conf.d/": such an include could reach any file of the system.
 */
static bool
include_unsafe(const char *p, size_t size)
{
	const char *end = p + size, *eol, *q;

	for (; p < end; p = eol + 1) {
		eol = memchr(p, '\n', (size_t)(end - p));
		if (eol == NULL)
			eol = end;
		if (memmem(p, (size_t)(eol - p), "!include", 8) == NULL)
			continue;
		for (q = p; q < eol; q++)
			if (*q == '/' && (q - p < 6 || memcmp(q - 6, "conf.d", 6) != 0))
				return true;
	}
	return false;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct policy_settings s, copy;
	char *err = NULL;
	FILE *devnull;
	int fd0 = fuzz_lowest_free_fd();

	if (include_unsafe((const char *)data, size))
		return 0;
	fuzz_write_file(main_path, data, size);
	if (policy_config_load(main_path, true, &s, &err) < 0) {
		if (err == NULL)
			abort();
		free(err);
		fuzz_check_fds(fd0, "failed load");
		return 0;
	}
	if (err != NULL)
		abort();
	policy_settings_copy(&copy, &s);
	devnull = fopen("/dev/null", "we");
	if (devnull != NULL) {
		policy_settings_print_changed(devnull, &copy);
		fclose(devnull);
	}
	policy_settings_clear(&copy);
	policy_settings_clear(&s);
	fuzz_check_fds(fd0, "load");
	return 0;
}
