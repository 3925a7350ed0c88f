/* SPDX-License-Identifier: MIT */
/*
 * tests/integration/itest_ops.c - see itest_ops.h.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "privsep/msg.h"
#include "tests/integration/itest_ops.h"

#define CTL_TIMEOUT_MS 60000
#define ARGS_MAX 16

static int
run(const char *const argv[], uid_t uid, gid_t gid, char **out)
{
	int pfd[2], st = 0;
	size_t len = 0, cap = 4096;
	char *buf = malloc(cap);
	pid_t pid;

	assert_non_null(buf);
	assert_int_equal(pipe2(pfd, O_CLOEXEC), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(pfd[1], 1);
		dup2(pfd[1], 2);
		if (uid != 0 && (setgroups(0, NULL) < 0 || setgid(gid) < 0 || setuid(uid) < 0))
			_exit(126);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(pfd[1]);
	for (;;) {
		struct pollfd p = { .fd = pfd[0], .events = POLLIN };
		ssize_t n;

		if (poll(&p, 1, CTL_TIMEOUT_MS) <= 0) {
			kill(pid, SIGKILL);
			break;
		}
		if (len + 1024 > cap) {
			cap *= 2;
			buf = realloc(buf, cap);
			assert_non_null(buf);
		}
		n = read(pfd[0], buf + len, cap - len - 1);
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	close(pfd[0]);
	buf[len] = '\0';
	waitpid(pid, &st, 0);
	*out = buf;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int
vctl(struct harness *h, bool sock, uid_t uid, gid_t gid, char **out, va_list ap)
{
	const char *argv[ARGS_MAX + 4];
	const char *bin = getenv("STOWCTL_BIN"), *a;
	size_t n = 0;

	if (bin == NULL)
		fail_msg("STOWCTL_BIN is not set");
	argv[n++] = bin;
	argv[n++] = sock ? "-s" : "-c";
	argv[n++] = sock ? h->control_path : h->conf_path;
	while ((a = va_arg(ap, const char *)) != NULL && n < ARGS_MAX)
		argv[n++] = a;
	argv[n] = NULL;
	return run(argv, uid, gid, out);
}

int
iops_ctl(struct harness *h, char **out, ...)
{
	va_list ap;
	int rc;

	va_start(ap, out);
	rc = vctl(h, false, 0, 0, out, ap);
	va_end(ap);
	return rc;
}

int
iops_ctl_sock(struct harness *h, char **out, ...)
{
	va_list ap;
	int rc;

	va_start(ap, out);
	rc = vctl(h, true, 0, 0, out, ap);
	va_end(ap);
	return rc;
}

int
iops_ctl_as(struct harness *h, uid_t uid, gid_t gid, char **out, ...)
{
	va_list ap;
	int rc;

	va_start(ap, out);
	rc = vctl(h, true, uid, gid, out, ap);
	va_end(ap);
	return rc;
}

void
iops_json_check(const char *text, const char *what)
{
	char path[] = "/tmp/stowd-json.XXXXXX";
	const char *argv[] = { "/usr/bin/python3", "-c",
			       "import json,sys; json.load(open(sys.argv[1]))", path, NULL };
	char *out = NULL;
	int fd = mkstemp(path), rc;

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	rc = run(argv, 0, 0, &out);
	unlink(path);
	if (rc != 0)
		fail_msg("%s: not JSON: %s\n%s", what, out, text);
	free(out);
}

static int
ctl_connect(const char *path, int type)
{
	struct sockaddr_un sun;
	int fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Wait until the peer closes fd (answer or not); true if it did in time. */
static bool
closed_by_peer(int fd, int timeout_ms)
{
	char buf[PSEP_MSG_MAX];

	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t n;

		if (poll(&p, 1, timeout_ms) <= 0)
			return false;
		n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno != EAGAIN))
			return true;
	}
}

static void
send_and_expect_close(const char *path, const void *data, size_t len, int fd_to_pass)
{
	int fd = ctl_connect(path, SOCK_SEQPACKET);
	struct iovec iov = { .iov_base = (void *)(uintptr_t)data, .iov_len = len };
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int))];
	} cbuf;
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

	assert_true(fd >= 0);
	if (fd_to_pass >= 0) {
		struct cmsghdr *c;

		memset(&cbuf, 0, sizeof(cbuf));
		mh.msg_control = cbuf.buf;
		mh.msg_controllen = sizeof(cbuf.buf);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd_to_pass, sizeof(int));
	}
	(void)sendmsg(fd, &mh, MSG_NOSIGNAL);
	if (!closed_by_peer(fd, 10000))
		fail_msg("the control socket kept a connection after %zu bad octets", len);
	close(fd);
}

void
iops_hostile_control(const char *path)
{
	static unsigned char big[PSEP_MSG_MAX + 512];
	struct {
		struct psep_hdr hdr;
		struct psep_ctl_req req;
	} m;
	int idle[3], fd, i;

	/* idle clients: they hold a slot each but do not stop the others */
	for (i = 0; i < 3; i++)
		assert_true((idle[i] = ctl_connect(path, SOCK_SEQPACKET)) >= 0);
	memset(big, 'A', sizeof(big));
	send_and_expect_close(path, "status\n", 7, -1);
	send_and_expect_close(path, big, sizeof(big), -1);
	send_and_expect_close(path, big, 100, -1);
	memset(&m, 0, sizeof(m));
	m.hdr.type = PSEP_CTL_REQ;
	m.hdr.len = sizeof(m);
	m.req.cmd = PSEP_CTL_STOP;
	m.req.flags = 0x80;                           /* unknown flag */
	send_and_expect_close(path, &m, sizeof(m), -1);
	m.req.flags = 0;
	m.req.cmd = 99;                               /* unknown command */
	send_and_expect_close(path, &m, sizeof(m), -1);
	m.req.cmd = PSEP_CTL_USER;
	memset(m.req.user, 'u', sizeof(m.req.user));  /* no NUL */
	send_and_expect_close(path, &m, sizeof(m), -1);
	memset(m.req.user, 0, sizeof(m.req.user));
	m.req.cmd = PSEP_CTL_STOP;
	send_and_expect_close(path, &m, sizeof(m) - 1, -1);  /* truncated */
	m.hdr.type = PSEP_CTL_REP;                    /* a reply type from a client */
	send_and_expect_close(path, &m, sizeof(m), -1);
	m.hdr.type = PSEP_CTL_REQ;                    /* a valid stop, with an fd */
	send_and_expect_close(path, &m, sizeof(m), 0);
	fd = ctl_connect(path, SOCK_STREAM);          /* the wrong socket type */
	if (fd >= 0)
		fail_msg("a stream socket connected to the control socket");
	for (i = 0; i < 3; i++)
		close(idle[i]);
}

/* Send a GET on the connected fd and read the whole answer. */
static int
http_get_fd(int fd, const char *path, char **out)
{
	char req[256];
	size_t len = 0, cap = 65536;
	char *buf;

	snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: localhost\r\n"
		 "Connection: close\r\n\r\n", path);
	if (write(fd, req, strlen(req)) != (ssize_t)strlen(req)) {
		close(fd);
		return -1;
	}
	buf = malloc(cap);
	assert_non_null(buf);
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t n;

		if (poll(&p, 1, 10000) <= 0)
			break;
		if (len + 4096 > cap) {
			cap *= 2;
			buf = realloc(buf, cap);
			assert_non_null(buf);
		}
		n = read(fd, buf + len, cap - len - 1);
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	buf[len] = '\0';
	*out = buf;
	return len > 0 ? 0 : -1;
}

int
iops_http_get(unsigned port, const char *path, char **out)
{
	struct sockaddr_in sin;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
		close(fd);
		return -1;
	}
	return http_get_fd(fd, path, out);
}

int
iops_http_get_unix(const char *sock, const char *path, char **out)
{
	int fd = ctl_connect(sock, SOCK_STREAM);

	return fd < 0 ? -1 : http_get_fd(fd, path, out);
}
