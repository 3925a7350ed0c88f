/* SPDX-License-Identifier: MIT */
/*
 * privsep/sup/main.c - the stowd command: options, config check, start.
 *
 * Runs in:  the supervisor (root).
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "policy/policy.h"
#include "privsep/privsep.h"
#include "privsep/sup/sup.h"

static void __attribute__((noreturn))
usage(int status)
{
	fprintf(status ? stderr : stdout,
		"usage: stowd [-F] [-c FILE] [-t | -n | -a | -V]\n"
		"  -c FILE  configuration file (default " POLICY_DEFAULT_CONFIG ")\n"
		"  -F       run in the foreground (stowd never forks into the\n"
		"           background; accepted for service managers)\n"
		"  -t       check the configuration and exit\n"
		"  -n       print settings that differ from their defaults\n"
		"  -a       print every setting with its default and description\n"
		"  -V       print the version\n");
	exit(status);
}

int
main(int argc, char **argv)
{
	const char *path = POLICY_DEFAULT_CONFIG;
	bool required = false, check = false, changed = false;
	struct policy_settings set;
	char *err = NULL, *own_path;
	int ch, rc;

	while ((ch = getopt(argc, argv, "c:Ftnah?V")) != -1) {
		switch (ch) {
		case 'c':
			path = optarg;
			required = true;
			break;
		case 'F':
			break;
		case 't':
			check = true;
			break;
		case 'n':
			changed = true;
			break;
		case 'a':
			policy_settings_print_all(stdout);
			return 0;
		case 'V':
			printf("stowd %s\n", STOWD_VERSION);
			return 0;
		case 'h':
			usage(0);
		default:
			usage(1);
		}
	}
	if (optind != argc)
		usage(1);
	log_init("supervisor", -1);
	if (policy_config_load(path, required, &set, &err) < 0) {
		fprintf(stderr, "stowd: %s\n", err);
		free(err);
		return 1;
	}
	if (changed)
		policy_settings_print_changed(stdout, &set);
	if (check && sup_check_config(&set) < 0) {
		policy_settings_clear(&set);
		return 1;
	}
	if (check || changed) {
		policy_settings_clear(&set);
		return 0;
	}
	if (geteuid() != 0)
		fatalx("stowd must be started as root (it drops privileges itself)");
	/* the title takes over argv's memory, where optarg points */
	own_path = xstrdup(path);
	psep_proctitle_init(argc, argv);
	psep_proctitle_set(psep_role_get(PSEP_ROLE_SUPERVISOR)->comm, "stowd: %s -c %s",
			   psep_role_get(PSEP_ROLE_SUPERVISOR)->title, own_path);
	rc = sup_run(&set, own_path, required);
	free(own_path);
	return rc;
}
