/* SPDX-License-Identifier: MIT */
/*
 * tests/lib/fake_lmtpd.c - a tiny scripted LMTP server for the self-tests
 * of tests/lib (see fake_lmtpd.h for its commands).
 *
 * Runs in:  a forked process per self-test, one child per connection;
 *           blocking I/O, it only has to talk to our own client.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/lib/fake_lmtpd.h"

#define MAX_RCPT 16
#define LINE_MAX_FAKE 70000

struct conn {
	int fd;
	char buf[8192];
	size_t off, len;
	char rcpt[MAX_RCPT][256];
	size_t nrcpt;
	char *body;
	size_t blen;
};

uint32_t
fake_lmtpd_hash(const void *data, size_t len)
{
	const unsigned char *p = data;
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 16777619u;
	}
	return h;
}

static void
out(struct conn *c, const char *s)
{
	size_t len = strlen(s);

	while (len > 0) {
		ssize_t n = write(c->fd, s, len);

		if (n <= 0)
			_exit(0);
		s += n;
		len -= (size_t)n;
	}
}

static int
getbyte(struct conn *c)
{
	if (c->off == c->len) {
		ssize_t n = read(c->fd, c->buf, sizeof(c->buf));

		if (n <= 0)
			return -1;
		c->off = 0;
		c->len = (size_t)n;
	}
	return (unsigned char)c->buf[c->off++];
}

/* One line with its LF (and CR); *len_out bytes.  -1 on EOF. */
static int
getline_raw(struct conn *c, char *line, size_t size, size_t *len_out)
{
	size_t n = 0;
	int ch;

	while ((ch = getbyte(c)) >= 0) {
		if (n + 1 < size)
			line[n++] = (char)ch;
		if (ch == '\n') {
			line[n] = '\0';
			*len_out = n;
			return 0;
		}
	}
	return -1;
}

static void
add_body(struct conn *c, const char *p, size_t n)
{
	c->body = realloc(c->body, c->blen + n + 1);
	if (c->body == NULL)
		_exit(1);
	memcpy(c->body + c->blen, p, n);
	c->blen += n;
}

static void
per_rcpt_replies(struct conn *c)
{
	char line[512];

	for (size_t i = 0; i < c->nrcpt; i++) {
		snprintf(line, sizeof(line), "250 2.0.0 <%s> len=%zu hash=%08x\r\n",
			 c->rcpt[i], c->blen,
			 (unsigned)fake_lmtpd_hash(c->body ? c->body : "", c->blen));
		out(c, line);
	}
	free(c->body);
	c->body = NULL;
	c->blen = 0;
	c->nrcpt = 0;
}

static void
do_data(struct conn *c)
{
	static char line[LINE_MAX_FAKE];
	size_t n;

	out(c, "354 go ahead\r\n");
	while (getline_raw(c, line, sizeof(line), &n) == 0) {
		if (strcmp(line, ".\r\n") == 0) {
			per_rcpt_replies(c);
			return;
		}
		add_body(c, line[0] == '.' ? line + 1 : line, line[0] == '.' ? n - 1 : n);
	}
	_exit(0);
}

static void
do_bdat(struct conn *c, const char *args)
{
	unsigned long n = strtoul(args, NULL, 10);
	bool last = strstr(args, "LAST") != NULL;

	for (unsigned long i = 0; i < n; i++) {
		int ch = getbyte(c);
		char b = (char)ch;

		if (ch < 0)
			_exit(0);
		add_body(c, &b, 1);
	}
	if (last)
		per_rcpt_replies(c);
	else
		out(c, "250 2.0.0 chunk ok\r\n");
}

static void
do_echo(struct conn *c, const char *text, size_t len)
{
	char reply[2048];
	size_t o = 0;

	o += (size_t)snprintf(reply, sizeof(reply), "250 ");
	for (size_t i = 0; i < len && o + 8 < sizeof(reply); i++) {
		unsigned char ch = (unsigned char)text[i];

		if (ch < 0x20 || ch == 0x7f || ch == '\\')
			o += (size_t)snprintf(reply + o, sizeof(reply) - o, "\\x%02x", ch);
		else
			reply[o++] = (char)ch;
	}
	memcpy(reply + o, "\r\n", 3);
	out(c, reply);
}

/* Returns false to close the connection. */
static bool
command(struct conn *c, char *line, size_t n)
{
	char big[5010];

	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';
	if (strncmp(line, "LHLO ", 5) == 0)
		out(c, "250-fake.example\r\n250-PIPELINING\r\n250-CHUNKING\r\n"
		       "250 ENHANCEDSTATUSCODES\r\n");
	else if (strncmp(line, "MAIL FROM:", 10) == 0)
		out(c, "250 2.1.0 Ok\r\n");
	else if (strncmp(line, "RCPT TO:<", 9) == 0) {
		char *a = line + 9, *e = strchr(a, '>');

		if (e != NULL)
			*e = '\0';
		if (strncmp(a, "unknown", 7) == 0) {
			out(c, "550 5.1.1 <");
			out(c, a);
			out(c, "> User doesn't exist\r\n");
		} else if (c->nrcpt < MAX_RCPT && strlen(a) < sizeof(c->rcpt[0])) {
			memcpy(c->rcpt[c->nrcpt++], a, strlen(a) + 1);
			out(c, "250 2.1.5 Ok\r\n");
		} else {
			out(c, "452 4.5.3 Too many recipients\r\n");
		}
	} else if (strcmp(line, "DATA") == 0)
		do_data(c);
	else if (strncmp(line, "BDAT ", 5) == 0)
		do_bdat(c, line + 5);
	else if (strcmp(line, "RSET") == 0 || strcmp(line, "NOOP") == 0)
		out(c, "250 2.0.0 Ok\r\n");
	else if (strcmp(line, "QUIT") == 0) {
		out(c, "221 2.0.0 Bye\r\n");
		return false;
	} else if (strcmp(line, "STALL") == 0)
		;
	else if (strcmp(line, "GARBAGE") == 0)
		out(c, "hello there\r\n");
	else if (strcmp(line, "MIXED") == 0)
		out(c, "250-first\r\n251 second\r\n");
	else if (strcmp(line, "LONGLINE") == 0) {
		memset(big, 'x', 5004);
		memcpy(big, "250 ", 4);
		memcpy(big + 5004, "\r\n", 3);
		out(c, big);
	} else if (strcmp(line, "CLOSE") == 0)
		return false;
	else if (strncmp(line, "ECHO ", 5) == 0)
		do_echo(c, line + 5, n - 5);
	else
		out(c, "500 5.5.1 Unknown command\r\n");
	return true;
}

static void
serve(int fd)
{
	static char line[LINE_MAX_FAKE];
	struct conn c = { .fd = fd };
	size_t n;

	out(&c, "220 fake.example LMTP ready\r\n");
	while (getline_raw(&c, line, sizeof(line), &n) == 0)
		if (!command(&c, line, n))
			break;
	close(fd);
	_exit(0);
}

static void
server_loop(int *ls, int nls)
{
	struct pollfd p[3];

	signal(SIGCHLD, SIG_IGN);
	for (int i = 0; i < nls; i++)
		p[i] = (struct pollfd){ .fd = ls[i], .events = POLLIN };
	for (;;) {
		if (poll(p, (nfds_t)nls, -1) < 0)
			continue;
		for (int i = 0; i < nls; i++) {
			int fd;

			if (!(p[i].revents & POLLIN))
				continue;
			fd = accept(ls[i], NULL, NULL);
			if (fd < 0)
				continue;
			if (fork() == 0)
				serve(fd);
			close(fd);
		}
	}
}

static int
listen_inet(int family, char *addr, size_t size)
{
	struct sockaddr_storage ss = { 0 };
	socklen_t sl;
	int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	if (family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)&ss;

		in->sin_family = AF_INET;
		in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		sl = sizeof(*in);
	} else {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;

		in6->sin6_family = AF_INET6;
		in6->sin6_addr = in6addr_loopback;
		sl = sizeof(*in6);
	}
	if (bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, 16) < 0 ||
	    getsockname(fd, (struct sockaddr *)&ss, &sl) < 0) {
		close(fd);
		return -1;
	}
	if (family == AF_INET)
		snprintf(addr, size, "tcp:127.0.0.1:%u",
			 ntohs(((struct sockaddr_in *)&ss)->sin_port));
	else
		snprintf(addr, size, "tcp:[::1]:%u",
			 ntohs(((struct sockaddr_in6 *)&ss)->sin6_port));
	return fd;
}

static int
listen_unix(struct fake_lmtpd *f)
{
	struct sockaddr_un un = { .sun_family = AF_UNIX };
	int fd;

	snprintf(f->dir, sizeof(f->dir), "/tmp/fake-lmtpd.XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	snprintf(un.sun_path, sizeof(un.sun_path), "%s/s", f->dir);
	snprintf(f->unix_addr, sizeof(f->unix_addr), "unix:%s", un.sun_path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (bind(fd, (struct sockaddr *)&un, sizeof(un)) < 0 || listen(fd, 16) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

int
fake_lmtpd_start(struct fake_lmtpd *f)
{
	int ls[3], n = 0;

	memset(f, 0, sizeof(*f));
	ls[n] = listen_unix(f);
	if (ls[n++] < 0)
		return -1;
	ls[n] = listen_inet(AF_INET, f->tcp4_addr, sizeof(f->tcp4_addr));
	if (ls[n++] < 0)
		return -1;
	ls[n] = listen_inet(AF_INET6, f->tcp6_addr, sizeof(f->tcp6_addr));
	if (ls[n] >= 0)
		n++;
	fflush(NULL);
	f->pid = fork();
	if (f->pid < 0)
		return -1;
	if (f->pid == 0) {
		setpgid(0, 0);
		server_loop(ls, n);
	}
	setpgid(f->pid, f->pid);
	for (int i = 0; i < n; i++)
		close(ls[i]);
	return 0;
}

void
fake_lmtpd_stop(struct fake_lmtpd *f)
{
	char path[160];

	if (f->pid > 0) {
		kill(-f->pid, SIGKILL);
		kill(f->pid, SIGKILL);
		waitpid(f->pid, NULL, 0);
		f->pid = 0;
	}
	if (f->dir[0] != '\0') {
		snprintf(path, sizeof(path), "%s/s", f->dir);
		unlink(path);
		rmdir(f->dir);
		f->dir[0] = '\0';
	}
}
