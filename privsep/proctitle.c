/* SPDX-License-Identifier: MIT */
/*
 * privsep/proctitle.c - what ps shows of a stowd process: a short comm
 * (prctl PR_SET_NAME, at most 15 bytes, e.g. "stowd-lmtpd") and a full
 * title in place of the command line ("stowd: writer uid=1001"), so an
 * admin, a log line and a memory or CPU figure can be tied to a role.
 *
 * Runs in:  the supervisor (psep_proctitle_init, once, before anything
 *           reads the environment through pointers kept elsewhere), and
 *           every child after fork (psep_proctitle_set, before its
 *           privileges are dropped).
 * Trust:    the title is written into this process's own argument area;
 *           the environment strings that follow it are copied to the heap
 *           first, so the area may grow over them.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>

#include "privsep/privsep.h"

extern char **environ;

static char *title_area;
static size_t title_size;

void
psep_proctitle_init(int argc, char **argv)
{
	char *end;
	size_t n = 0, i;
	char **env;

	if (argc <= 0 || argv == NULL || argv[0] == NULL)
		return;
	end = argv[0] + strlen(argv[0]) + 1;
	for (i = 1; i < (size_t)argc && argv[i] == end; i++)
		end = argv[i] + strlen(argv[i]) + 1;
	/* the environment strings usually follow the arguments: take them
	 * over too, after moving them to the heap */
	while (environ[n] != NULL)
		n++;
	env = xcalloc(n + 1, sizeof(*env));
	for (i = 0; i < n; i++) {
		if (environ[i] == end)
			end = environ[i] + strlen(environ[i]) + 1;
		env[i] = xstrdup(environ[i]);
	}
	environ = env;
	for (i = 1; i < (size_t)argc; i++)
		argv[i] = NULL;
	title_area = argv[0];
	title_size = (size_t)(end - argv[0]);
}

void
psep_proctitle_set(const char *comm, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (comm != NULL)
		(void)prctl(PR_SET_NAME, comm, 0, 0, 0);
	if (title_area == NULL || title_size < 2)
		return;
	memset(title_area, 0, title_size);
	va_start(ap, fmt);
	n = vsnprintf(title_area, title_size - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		title_area[0] = '\0';
}
