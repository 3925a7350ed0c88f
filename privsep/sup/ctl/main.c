/* SPDX-License-Identifier: MIT */
/*
 * privsep/sup/ctl/main.c - stowctl, the admin's client of stowd's control socket:
 * status, replicas, user, resync, reload, stop (text or -j JSON).
 *
 * Runs in:  the admin's shell, as root (the socket is 0600 root, and stowd
 *           checks the peer's uid).
 * Trust:    it reads stowd.conf only to find control_socket; it sends one
 *           fixed-layout PSEP_CTL_REQ and reads one PSEP_CTL_REP through
 *           psep_msg_recv, then copies the output memfd to stdout.
 * Exit:     0 done; 1 the command failed (config refused, unknown user,
 *           ...); 2 usage; 3 stowd is not running; 4 permission denied.
 */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "policy/policy.h"
#include "privsep/msg.h"
#include "privsep/privsep.h"

#define CTL_DEFAULT_SOCKET "/run/stowd/control"

enum {
	EXIT_FAILED = 1,
	EXIT_USAGE = 2,
	EXIT_NOT_RUNNING = 3,
	EXIT_DENIED = 4,
};

static void
usage(int status)
{
	fprintf(status ? stderr : stdout,
		"usage: stowctl [-j] [-c FILE] [-s SOCKET] COMMAND\n"
		"commands:\n"
		"  status                       processes, queues, fork cache, replicas\n"
		"  replicas                     replication state of each replica\n"
		"  user USER                    mailboxes, pending replication events\n"
		"  resync USER [MAILBOX] [--replica NAME]\n"
		"  resync --all [--replica NAME]\n"
		"                               run SYNC now and report the repairs\n"
		"  reload                       reload the config; fails with its error\n"
		"  stop                         graceful stop\n"
		"options:\n"
		"  -c FILE    stowd's configuration (default " POLICY_DEFAULT_CONFIG ")\n"
		"  -s SOCKET  the control socket (default: control_socket of the config)\n"
		"  -j         JSON output\n");
	exit(status ? EXIT_USAGE : 0);
}

static bool
copy_arg(char *dst, size_t size, const char *src, const char *what)
{
	if (strlen(src) >= size) {
		fprintf(stderr, "stowctl: %s too long\n", what);
		return false;
	}
	memcpy(dst, src, strlen(src) + 1);
	return true;
}

/* argv[0..argc) after the options -> req; false on a usage error. */
static bool
parse_command(int argc, char **argv, struct psep_ctl_req *req)
{
	const char *cmd;
	int i, pos = 0;

	if (argc < 1)
		return false;
	cmd = argv[0];
	if (strcmp(cmd, "status") == 0)
		req->cmd = PSEP_CTL_STATUS;
	else if (strcmp(cmd, "replicas") == 0)
		req->cmd = PSEP_CTL_REPLICAS;
	else if (strcmp(cmd, "reload") == 0)
		req->cmd = PSEP_CTL_RELOAD;
	else if (strcmp(cmd, "stop") == 0)
		req->cmd = PSEP_CTL_STOP;
	else if (strcmp(cmd, "user") == 0)
		req->cmd = PSEP_CTL_USER;
	else if (strcmp(cmd, "resync") == 0)
		req->cmd = PSEP_CTL_RESYNC;
	else
		return false;
	if (req->cmd == PSEP_CTL_USER)
		return argc == 2 && copy_arg(req->user, sizeof(req->user), argv[1], "user");
	if (req->cmd != PSEP_CTL_RESYNC)
		return argc == 1;
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--all") == 0) {
			req->flags |= PSEP_CTL_F_ALL;
		} else if (strcmp(argv[i], "--replica") == 0 && i + 1 < argc) {
			if (!copy_arg(req->replica, sizeof(req->replica), argv[++i], "replica"))
				return false;
		} else if (argv[i][0] == '-') {
			return false;
		} else if (pos == 0) {
			if (!copy_arg(req->user, sizeof(req->user), argv[i], "user"))
				return false;
			pos++;
		} else if (pos == 1) {
			if (!copy_arg(req->mailbox, sizeof(req->mailbox), argv[i], "mailbox"))
				return false;
			pos++;
		} else {
			return false;
		}
	}
	return ((req->flags & PSEP_CTL_F_ALL) != 0) != (pos > 0);
}

static const char *
socket_path(const char *sock, const char *conf, bool conf_given, char **own)
{
	struct policy_settings set;
	char *err = NULL;

	if (sock != NULL)
		return sock;
	if (policy_config_load(conf, conf_given, &set, &err) < 0) {
		fprintf(stderr, "stowctl: %s (using %s)\n", err, CTL_DEFAULT_SOCKET);
		free(err);
		return CTL_DEFAULT_SOCKET;
	}
	*own = xstrdup(set.control_socket != NULL ? set.control_socket : "");
	policy_settings_clear(&set);
	if ((*own)[0] == '\0') {
		fprintf(stderr, "stowctl: control_socket is empty in %s: stowd has no "
			"control socket\n", conf);
		exit(EXIT_NOT_RUNNING);
	}
	return *own;
}

static int
connect_to(const char *path)
{
	struct sockaddr_un sun;
	int fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		fprintf(stderr, "stowctl: %s: path too long\n", path);
		exit(EXIT_USAGE);
	}
	memcpy(sun.sun_path, path, strlen(path));
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		fprintf(stderr, "stowctl: socket: %s\n", strerror(errno));
		exit(EXIT_FAILED);
	}
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0)
		return fd;
	if (errno == EACCES || errno == EPERM) {
		fprintf(stderr, "stowctl: %s: permission denied (the control socket is "
			"root's)\n", path);
		exit(EXIT_DENIED);
	}
	if (errno == ENOENT || errno == ECONNREFUSED) {
		fprintf(stderr, "stowctl: stowd is not running (no server on %s)\n", path);
		exit(EXIT_NOT_RUNNING);
	}
	fprintf(stderr, "stowctl: connect %s: %s\n", path, strerror(errno));
	exit(EXIT_FAILED);
}

/* One "  MAILBOX <name> MESSAGES n GUIDHASH h FLAGHASH h HIGHESTMODSEQ n
 * UIDVALIDITY n UIDNEXT n" line of "stowctl user" as a table row; the
 * name is an astring (it may be quoted and hold spaces), so the state is
 * found from the end.  Other lines as they are. */
static void
put_user_line(const char *line, bool *header)
{
	char name[512];
	unsigned long long msgs, modseq, uidv, uidnext;
	const char *st = NULL, *p;

	if (strncmp(line, "  MAILBOX ", 10) == 0)
		for (p = line + 10; (p = strstr(p, " MESSAGES ")) != NULL; p++)
			st = p;
	if (st == NULL || (size_t)(st - line - 10) >= sizeof(name) ||
	    sscanf(st, " MESSAGES %llu GUIDHASH %*64[0-9a-f] FLAGHASH %*64[0-9a-f] "
		   "HIGHESTMODSEQ %llu UIDVALIDITY %llu UIDNEXT %llu", &msgs, &modseq,
		   &uidv, &uidnext) != 4) {
		printf("%s\n", line);
		return;
	}
	snprintf(name, sizeof(name), "%.*s", (int)(st - line - 10), line + 10);
	if (!*header) {
		printf("  %-30s %9s %9s %14s %11s\n", "MAILBOX", "MESSAGES", "UIDNEXT",
		       "HIGHESTMODSEQ", "UIDVALIDITY");
		*header = true;
	}
	printf("  %-30s %9llu %9llu %14llu %11llu\n", name, msgs, uidnext, modseq, uidv);
}

/* "stowctl user" in text: the writer's LIST lines as a table. */
static int
copy_user(int fd)
{
	FILE *in = fdopen(dup(fd), "r");
	char line[8192];
	bool header = false;

	if (in == NULL)
		return -1;
	while (fgets(line, sizeof(line), in) != NULL) {
		line[strcspn(line, "\n")] = '\0';
		put_user_line(line, &header);
	}
	fclose(in);
	return fflush(stdout);
}

static int
copy_out(int fd)
{
	char buf[8192];
	ssize_t n;

	while ((n = read(fd, buf, sizeof(buf))) > 0)
		if (fwrite(buf, 1, (size_t)n, stdout) != (size_t)n)
			return -1;
	return n < 0 ? -1 : fflush(stdout);
}

int
main(int argc, char **argv)
{
	const char *conf = POLICY_DEFAULT_CONFIG, *sock = NULL, *why = NULL, *path;
	bool conf_given = false;
	struct psep_ctl_req req;
	struct psep_msg *m;
	char *own = NULL;
	int ch, fd, rc = 0;

	memset(&req, 0, sizeof(req));
	while ((ch = getopt(argc, argv, "+c:s:jh")) != -1) {
		switch (ch) {
		case 'c':
			conf = optarg;
			conf_given = true;
			break;
		case 's':
			sock = optarg;
			break;
		case 'j':
			req.flags |= PSEP_CTL_F_JSON;
			break;
		case 'h':
			usage(0);
			break;
		default:
			usage(1);
		}
	}
	if (!parse_command(argc - optind, argv + optind, &req))
		usage(1);
	log_init("stowctl", -1);
	path = socket_path(sock, conf, conf_given, &own);
	fd = connect_to(path);
	if (psep_msg_send(fd, PSEP_CTL_REQ, 1, &req, sizeof(req), -1) < 0) {
		fprintf(stderr, "stowctl: send: %s\n", strerror(errno));
		return EXIT_FAILED;
	}
	m = xcalloc(1, sizeof(*m));
	if (psep_msg_recv(fd, PSEP_ROLE_SUPERVISOR, PSEP_STATE_READY, m, &why) < 0) {
		fprintf(stderr, "stowctl: no answer from stowd: %s\n",
			errno == ECONNRESET ? "connection closed" : why);
		return EXIT_FAILED;
	}
	if (m->fd >= 0 && (req.cmd == PSEP_CTL_USER && !(req.flags & PSEP_CTL_F_JSON) ?
			   copy_user(m->fd) : copy_out(m->fd)) < 0) {
		fprintf(stderr, "stowctl: output: %s\n", strerror(errno));
		rc = EXIT_FAILED;
	}
	if (m->u.ctl_rep.err != 0) {
		fprintf(stderr, "stowctl: %s\n", m->u.ctl_rep.text[0] != '\0' ?
			m->u.ctl_rep.text : strerror(m->u.ctl_rep.err));
		rc = m->u.ctl_rep.err == EACCES ? EXIT_DENIED : EXIT_FAILED;
	}
	psep_msg_clear(m);
	free(m);
	free(own);
	close(fd);
	return rc;
}
