/* SPDX-License-Identifier: MIT */
/*
 * tests/lib/harness.c - temporary tree, test users, passwd-file,
 * stowd.conf, the notify socket; LMTP and log helpers.  Starting and
 * stopping stowd is in daemon.c.
 *
 * Runs in:  integration test programs, as root.
 * Trust:    this process becomes a child subreaper so stowd's orphans come
 *           back to it instead of escaping to init; the tree is removed
 *           only if it has our mkdtemp prefix.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "tests/lib/harness.h"

#define TREE_PREFIX "/tmp/stowd-itest."

void
harness_require_root(void)
{
	if (geteuid() != 0) {
		fprintf(stderr, "SKIP: integration tests need root\n");
		exit(77);
	}
	if (getenv("STOWD_BIN") == NULL || getenv("STOWD_BIN")[0] == '\0') {
		fprintf(stderr, "FAIL: STOWD_BIN is not set (run through meson test)\n");
		exit(1);
	}
	if (access(getenv("STOWD_BIN"), X_OK) < 0) {
		fprintf(stderr, "FAIL: STOWD_BIN=%s: %s\n", getenv("STOWD_BIN"),
			strerror(errno));
		exit(1);
	}
}

/* Bind PORT (0: any) on a loopback address; return the port bound, or 0. */
static unsigned
bind_port(int family, unsigned want)
{
	struct sockaddr_storage ss = { 0 };
	socklen_t sl;
	unsigned port = 0;
	int fd;

	if (family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)&ss;

		in->sin_family = AF_INET;
		in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		in->sin_port = htons((uint16_t)want);
		sl = sizeof(*in);
	} else {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;

		in6->sin6_family = AF_INET6;
		in6->sin6_addr = in6addr_loopback;
		in6->sin6_port = htons((uint16_t)want);
		sl = sizeof(*in6);
	}
	fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return 0;
	if (bind(fd, (struct sockaddr *)&ss, sl) == 0 &&
	    getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
		port = ntohs(family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
				: ((struct sockaddr_in6 *)&ss)->sin6_port);
	close(fd);
	return port;
}

/*
 * The next port of a sequence shared by every test process on the
 * machine (a counter in PORT_SEQ_FILE, under an flock), or 0.  Integration
 * tests run two at a time: a port found by binding port 0 and released is
 * free until its server binds it, so the kernel could hand it to another
 * test in between (an LMTP and a replication listener of one test once got
 * the same one), or to an outgoing connection.  The sequence runs below the
 * kernel's ephemeral range, which outgoing connections use.
 */
#define PORT_SEQ_FILE "/tmp/stowd-test-ports"
#define PORT_SEQ_LOW 20000u
#define PORT_SEQ_SPAN 12000u

static unsigned
port_seq_next(void)
{
	char buf[32];
	unsigned long n = 0;
	ssize_t r;
	int fd, len;
	unsigned port = 0;

	fd = open(PORT_SEQ_FILE, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return 0;
	if (flock(fd, LOCK_EX) == 0) {
		r = pread(fd, buf, sizeof(buf) - 1, 0);
		if (r > 0) {
			buf[r] = '\0';
			n = strtoul(buf, NULL, 10);
		}
		n = (n + 1) % PORT_SEQ_SPAN;
		len = snprintf(buf, sizeof(buf), "%lu\n", n);
		if (ftruncate(fd, 0) == 0 && pwrite(fd, buf, (size_t)len, 0) == len)
			port = PORT_SEQ_LOW + (unsigned)n;
	}
	close(fd);
	return port;
}

/* A loopback port free now and handed to no other test lately (above);
 * bound on the kernel's choice if the sequence cannot be used. */
static unsigned
pick_port(int family)
{
	for (int tries = 0; tries < 64; tries++) {
		unsigned port = port_seq_next();

		if (port == 0)
			break;
		if (bind_port(family, port) == port)
			return port;
	}
	return bind_port(family, 0);
}

unsigned
harness_pick_port(void)
{
	return pick_port(AF_INET);
}

static int
make_dir(const char *path, mode_t mode, uid_t uid, gid_t gid)
{
	if (mkdir(path, mode) < 0 || chown(path, uid, gid) < 0 ||
	    chmod(path, mode) < 0) {
		fprintf(stderr, "harness: mkdir %s: %s\n", path, strerror(errno));
		return -1;
	}
	return 0;
}

/* A datagram socket bound at path (non-blocking, close-on-exec). */
static int
bind_dgram(const char *path)
{
	struct sockaddr_un un = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

	if (fd < 0)
		return -1;
	snprintf(un.sun_path, sizeof(un.sun_path), "%s", path);
	if (bind(fd, (struct sockaddr *)&un, sizeof(un)) < 0) {
		fprintf(stderr, "harness: bind %s: %s\n", path, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

static int
open_notify(struct harness *h)
{
	h->notify_fd = bind_dgram(h->notify_path);
	return h->notify_fd < 0 ? -1 : 0;
}

/* opts.syslog: the socket stowd's /dev/log is bound to (daemon.c); any
 * local user may send to it, as to /dev/log.  A thread drains it at once
 * (a datagram socket holds only net.unix.max_dgram_qlen datagrams; a
 * sender blocks beyond). */
struct harness_drain {
	pthread_t thread;
	int fd, out;
	atomic_bool stop;
};

static void *
drain_main(void *arg)
{
	struct harness_drain *d = arg;
	char buf[8192];
	ssize_t n;

	while (!atomic_load(&d->stop)) {
		struct pollfd p = { .fd = d->fd, .events = POLLIN };

		if (poll(&p, 1, 100) <= 0)
			continue;
		while ((n = recv(d->fd, buf, sizeof(buf) - 1, MSG_DONTWAIT)) >= 0) {
			for (ssize_t i = 0; i < n; i++)
				if (buf[i] == '\n' || buf[i] == '\0')
					buf[i] = ' ';
			buf[n++] = '\n';
			(void)!write(d->out, buf, (size_t)n);
		}
	}
	return NULL;
}

static int
open_syslog(struct harness *h)
{
	struct harness_drain *d = calloc(1, sizeof(*d));

	if (d == NULL)
		return -1;
	snprintf(h->syslog_path, sizeof(h->syslog_path), "%s/devlog", h->tree);
	snprintf(h->syslog_log, sizeof(h->syslog_log), "%s/syslog", h->tree);
	d->out = open(h->syslog_log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	h->syslog_fd = d->fd = bind_dgram(h->syslog_path);
	atomic_init(&d->stop, false);
	if (d->out < 0 || d->fd < 0 || chmod(h->syslog_path, 0666) < 0 ||
	    pthread_create(&d->thread, NULL, drain_main, d) != 0) {
		if (d->out >= 0)
			close(d->out);
		free(d);
		return -1;
	}
	h->syslog_drain = d;
	return 0;
}

static void
close_syslog(struct harness *h)
{
	struct harness_drain *d = h->syslog_drain;

	if (d != NULL) {
		atomic_store(&d->stop, true);
		pthread_join(d->thread, NULL);
		close(d->out);
		free(d);
		h->syslog_drain = NULL;
	}
	if (h->syslog_fd >= 0)
		close(h->syslog_fd);
	h->syslog_fd = -1;
}

int
harness_syslog_wait(struct harness *h, const char *text, char *buf, size_t size,
		    int timeout_ms)
{
	int64_t deadline = harness_mono_ms() + timeout_ms;

	if (h->syslog_drain == NULL || size == 0)
		return -1;
	for (;;) {
		char *log = NULL, *hit, *end;

		if (harness_read_file(h->syslog_log, &log, NULL) == 0 &&
		    (hit = strstr(log, text)) != NULL) {
			while (hit > log && hit[-1] != '\n')
				hit--;
			end = strchr(hit, '\n');
			snprintf(buf, size, "%.*s", end != NULL ? (int)(end - hit) :
				 (int)strlen(hit), hit);
			free(log);
			return 0;
		}
		free(log);
		if (harness_mono_ms() > deadline)
			return -1;
		harness_sleep_ms(20);
	}
}

static int
make_users(struct harness *h)
{
	char path[300], line[512], name[16], home[128];
	char tree[sizeof(h->tree)], dom[sizeof(h->domain)];
	FILE *f;
	unsigned i;

	/* local copies: no snprintf reads from the struct it writes to */
	memcpy(tree, h->tree, sizeof(tree));
	memcpy(dom, h->domain, sizeof(dom));
	for (i = 0; i < h->nusers; i++) {
		struct harness_user *u = &h->users[i];

		snprintf(name, sizeof(name), "u%u", i + 1);
		snprintf(home, sizeof(home), "%s/home/%s", tree, name);
		snprintf(u->name, sizeof(u->name), "%s", name);
		snprintf(u->addr, sizeof(u->addr), "%s%s%s", name, dom[0] ? "@" : "", dom);
		snprintf(u->home, sizeof(u->home), "%s", home);
		snprintf(u->maildir, sizeof(u->maildir), "%s/Maildir", home);
		u->uid = HARNESS_UID_BASE + i + 1;
		u->gid = u->uid;
		if (make_dir(u->home, 0700, u->uid, u->gid) < 0)
			return -1;
	}
	f = fopen(h->passwd_path, "we");
	if (f == NULL)
		return -1;
	for (i = 0; i < h->nusers; i++) {
		const struct harness_user *u = &h->users[i];

		snprintf(line, sizeof(line), "%s:x:%u:%u:test user %u:%s:/bin/false\n",
			 u->name, (unsigned)u->uid, (unsigned)u->gid, i + 1, u->home);
		fputs(line, f);
	}
	snprintf(path, sizeof(path), "%s", h->passwd_path);
	if (fclose(f) != 0 || chmod(path, 0600) < 0)
		return -1;
	return 0;
}

static int
init_paths(struct harness *h, const struct harness_opts *opts)
{
	const char *mode = getenv("STOWD_DELIVERY_MODE");
	const char *dom = getenv("STOWD_TEST_DOMAIN");
	const char *bin = getenv("STOWD_BIN");
	struct passwd *pw = getpwnam("nobody");

	if (pw == NULL) {
		fprintf(stderr, "harness: no user nobody in /etc/passwd\n");
		return -1;
	}
	h->run_uid = pw->pw_uid;
	h->run_gid = pw->pw_gid;
	snprintf(h->bin, sizeof(h->bin), "%s", bin ? bin : "stowd");
	snprintf(h->mode, sizeof(h->mode), "%s", mode && *mode ? mode : "seteuid");
	snprintf(h->domain, sizeof(h->domain), "%s", dom ? dom : "example.org");
	snprintf(h->hostname, sizeof(h->hostname), "stowd-test.example");
	h->nusers = opts && opts->nusers ? opts->nusers : 3;
	if (h->nusers > HARNESS_MAX_USERS)
		h->nusers = HARNESS_MAX_USERS;
	snprintf(h->conf_path, sizeof(h->conf_path), "%s/stowd.conf", h->tree);
	snprintf(h->passwd_path, sizeof(h->passwd_path), "%s/passwd", h->tree);
	snprintf(h->log_path, sizeof(h->log_path), "%s/stowd.log", h->tree);
	snprintf(h->notify_path, sizeof(h->notify_path), "%s/notify", h->tree);
	snprintf(h->state_dir, sizeof(h->state_dir), "%s/state", h->tree);
	snprintf(h->control_path, sizeof(h->control_path), "%s/control", h->tree);
	return 0;
}

static void
init_listeners(struct harness *h)
{
	unsigned p4 = pick_port(AF_INET), p6 = pick_port(AF_INET6);

	snprintf(h->listen[HARNESS_UNIX], sizeof(h->listen[0]), "unix:%s/lmtp", h->tree);
	if (p4 != 0)
		snprintf(h->listen[HARNESS_TCP4], sizeof(h->listen[0]),
			 "tcp:127.0.0.1:%u", p4);
	if (p6 != 0)
		snprintf(h->listen[HARNESS_TCP6], sizeof(h->listen[0]),
			 "tcp:[::1]:%u", p6);
	else
		fprintf(stderr, "harness: no IPv6 loopback, no tcp6 listener\n");
}

struct harness *
harness_new(const struct harness_opts *opts)
{
	struct harness *h = calloc(1, sizeof(*h));
	char path[300];

	if (h == NULL)
		return NULL;
	h->pidfd = -1;
	h->notify_fd = -1;
	h->syslog_fd = -1;
	(void)prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
	snprintf(h->tree, sizeof(h->tree), TREE_PREFIX "XXXXXX");
	if (mkdtemp(h->tree) == NULL) {
		fprintf(stderr, "harness: mkdtemp: %s\n", strerror(errno));
		free(h);
		return NULL;
	}
	if (chmod(h->tree, 0755) < 0 || init_paths(h, opts) < 0)
		goto fail;
	snprintf(path, sizeof(path), "%s/home", h->tree);
	if (make_dir(path, 0755, 0, 0) < 0 || make_dir(h->state_dir, 0700, 0, 0) < 0)
		goto fail;
	if (make_users(h) < 0 || open_notify(h) < 0)
		goto fail;
	if (opts != NULL && opts->syslog && open_syslog(h) < 0)
		goto fail;
	init_listeners(h);
	if (harness_write_conf(h, opts) < 0)
		goto fail;
	return h;
fail:
	fprintf(stderr, "harness: cannot set up %s\n", h->tree);
	harness_free(&h);
	return NULL;
}

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	if (remove(path) < 0 && errno != ENOENT)
		fprintf(stderr, "harness: remove %s: %s\n", path, strerror(errno));
	return 0;
}

void
harness_free(struct harness **hp)
{
	struct harness *h;

	if (hp == NULL || *hp == NULL)
		return;
	h = *hp;
	if (h->pid > 0)
		harness_stop(h, 0, NULL);
	harness_kill_group(h);
	if (h->notify_fd >= 0)
		close(h->notify_fd);
	close_syslog(h);
	if (h->pidfd >= 0)
		close(h->pidfd);
	if (getenv("STOWD_KEEP_TREE") != NULL)
		fprintf(stderr, "harness: kept %s\n", h->tree);
	else if (strncmp(h->tree, TREE_PREFIX, strlen(TREE_PREFIX)) == 0)
		nftw(h->tree, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(h);
	*hp = NULL;
}

/* ---- stowd.conf ------------------------------------------------------- */

#define CONF_MAX_LINES 64

struct conf_line {
	char key[64];
	char line[640];
};

static void
conf_key(const char *line, char *key, size_t size)
{
	size_t n = strcspn(line, "=");

	while (n > 0 && (line[n - 1] == ' ' || line[n - 1] == '\t'))
		n--;
	if (line[strcspn(line, "=")] == '\0' || n >= size)
		n = 0;
	memcpy(key, line, n);
	key[n] = '\0';
}

static void
conf_set(struct conf_line *c, size_t *n, const char *line)
{
	char key[64];
	size_t i;

	conf_key(line, key, sizeof(key));
	for (i = 0; key[0] != '\0' && i < *n; i++) {
		if (strcmp(c[i].key, key) == 0) {
			snprintf(c[i].line, sizeof(c[i].line), "%s", line);
			return;
		}
	}
	if (*n == CONF_MAX_LINES)
		return;
	snprintf(c[*n].key, sizeof(c[*n].key), "%s", key);
	snprintf(c[*n].line, sizeof(c[*n].line), "%s", line);
	(*n)++;
}

static void
conf_base(const struct harness *h, struct conf_line *c, size_t *n)
{
	char line[640];
	size_t l;

	snprintf(line, sizeof(line), "lmtp_listen =");
	for (l = 0; l < HARNESS_LISTENER_COUNT; l++) {
		size_t have = strlen(line);

		if (h->listen[l][0] != '\0')
			snprintf(line + have, sizeof(line) - have, " %s", h->listen[l]);
	}
	conf_set(c, n, line);
	snprintf(line, sizeof(line), "userdb = passwd-file:%s", h->passwd_path);
	conf_set(c, n, line);
	conf_set(c, n, "mail_location = maildir:~/Maildir");
	conf_set(c, n, "run_user = nobody");
	snprintf(line, sizeof(line), "first_valid_uid = %u", HARNESS_UID_BASE);
	conf_set(c, n, line);
	snprintf(line, sizeof(line), "last_valid_uid = %u", HARNESS_UID_BASE + 999);
	conf_set(c, n, line);
	snprintf(line, sizeof(line), "delivery_mode = %s", h->mode);
	conf_set(c, n, line);
	conf_set(c, n, "seteuid_workers = 2");
	conf_set(c, n, "lmtp_processes = 2");
	conf_set(c, n, "lmtp_max_message_size = 100K");
	conf_set(c, n, "lmtp_max_recipients = 5");
	conf_set(c, n, "lmtp_command_timeout = 10s");
	conf_set(c, n, "lmtp_max_line_length = 1000");
	snprintf(line, sizeof(line), "hostname = %s", h->hostname);
	conf_set(c, n, line);
	snprintf(line, sizeof(line), "state_dir = %s", h->state_dir);
	conf_set(c, n, line);
	snprintf(line, sizeof(line), "control_socket = %s", h->control_path);
	conf_set(c, n, line);
	conf_set(c, n, "log_debug = yes");
}

int
harness_write_conf(struct harness *h, const struct harness_opts *opts)
{
	struct conf_line *c = calloc(CONF_MAX_LINES, sizeof(*c));
	size_t n = 0, i;
	FILE *f;
	int rc = -1;

	if (c == NULL)
		return -1;
	conf_base(h, c, &n);
	for (i = 0; opts != NULL && opts->conf != NULL && opts->conf[i] != NULL; i++)
		conf_set(c, &n, opts->conf[i]);
	f = fopen(h->conf_path, "we");
	if (f == NULL)
		goto out;
	fprintf(f, "# stowd.conf written by tests/lib/harness.c\n");
	for (i = 0; i < n; i++)
		fprintf(f, "%s\n", c[i].line);
	if (opts != NULL && opts->conf_text != NULL)
		fputs(opts->conf_text, f);
	if (fclose(f) == 0)
		rc = 0;
out:
	if (rc < 0)
		fprintf(stderr, "harness: write %s: %s\n", h->conf_path, strerror(errno));
	free(c);
	return rc;
}

int
harness_write_conf_raw(struct harness *h, const char *text)
{
	return harness_write_file(h->conf_path, text, strlen(text), 0644);
}

int
harness_conf_line(const struct harness *h, const char *prefix)
{
	char *text, *p;
	int line = 1, found = -1;

	if (harness_read_file(h->conf_path, &text, NULL) < 0)
		return -1;
	for (p = text; *p != '\0'; line++) {
		if (strncmp(p, prefix, strlen(prefix)) == 0) {
			found = line;
			break;
		}
		p += strcspn(p, "\n");
		if (*p == '\n')
			p++;
	}
	free(text);
	return found;
}

/* ---- LMTP ------------------------------------------------------------ */

int
harness_connect(struct harness *h, enum harness_listener which, struct lmtpc **out)
{
	struct lmtpc_reply r;
	const char *addr = h->listen[which];

	if (addr[0] == '\0') {
		fprintf(stderr, "harness: listener %d not configured\n", (int)which);
		errno = ENOTSUP;
		return -1;
	}
	if (lmtpc_connect(addr, 0, out) < 0) {
		fprintf(stderr, "harness: connect %s: %s\n", addr, lmtpc_strerror(errno));
		return -1;
	}
	if (lmtpc_greeting(*out, &r) < 0 || r.code != 220) {
		fprintf(stderr, "harness: %s: greeting: %s\n", addr,
			r.code ? r.text : lmtpc_strerror(errno));
		lmtpc_free(out);
		return -1;
	}
	return 0;
}

static bool
reply_ok(const char *what, int rc, const struct lmtpc_reply *r, int want)
{
	if (rc == 0 && r->code / 100 == want / 100)
		return true;
	fprintf(stderr, "harness: %s: %s\n", what,
		rc == 0 || r->text[0] ? r->text : lmtpc_strerror(errno));
	return false;
}

int
harness_deliver(struct harness *h, const unsigned *idx, size_t n,
		const char *body, size_t len)
{
	struct lmtpc *c = NULL;
	struct lmtpc_reply r, dr, rr[HARNESS_MAX_USERS];
	size_t i;
	int rc = -1;

	if (n > HARNESS_MAX_USERS || harness_connect(h, HARNESS_UNIX, &c) < 0)
		return -1;
	if (!reply_ok("LHLO", lmtpc_lhlo(c, "client.example", &r), &r, 250) ||
	    !reply_ok("MAIL", lmtpc_mail(c, "sender@example.net", &r), &r, 250))
		goto out;
	for (i = 0; i < n; i++)
		if (!reply_ok("RCPT", lmtpc_rcpt(c, h->users[idx[i]].addr, &r), &r, 250))
			goto out;
	if (!reply_ok("DATA", lmtpc_data(c, body, len, &dr, rr, n), &dr, 354))
		goto out;
	for (i = 0; i < n; i++)
		if (!reply_ok("end of DATA", 0, &rr[i], 250))
			goto out;
	rc = 0;
out:
	lmtpc_free(&c);
	return rc;
}

/* ---- log -------------------------------------------------------------- */

void
harness_dump_log(const struct harness *h, long offset)
{
	char *text;
	size_t len;

	if (harness_read_file(h->log_path, &text, &len) < 0)
		return;
	if (offset < 0 || (size_t)offset > len)
		offset = 0;
	fprintf(stderr, "---- %s (from byte %ld) ----\n%s---- end of log ----\n",
		h->log_path, offset, text + offset);
	free(text);
}

bool
harness_log_contains(const struct harness *h, const char *text)
{
	char *log;
	bool found;

	if (harness_read_file(h->log_path, &log, NULL) < 0)
		return false;
	found = strstr(log, text) != NULL;
	free(log);
	return found;
}

int
harness_log_count(const struct harness *h, const char *text)
{
	char *data, *p, *nl;
	int n = 0;

	if (harness_read_file(h->log_path, &data, NULL) < 0)
		return 0;
	for (p = data; (p = strstr(p, text)) != NULL; p = nl + 1) {
		n++;
		if ((nl = strchr(p, '\n')) == NULL)
			break;
	}
	free(data);
	return n;
}

int
harness_test_hook(struct harness *h, int sig)
{
	int n = harness_log_count(h, "test hook:");
	int64_t deadline = harness_mono_ms() + 10000;

	if (harness_signal(h, sig) < 0)
		return -1;
	while (harness_log_count(h, "test hook:") <= n) {
		if (harness_mono_ms() > deadline) {
			fprintf(stderr, "harness: signal %d: no \"test hook:\" line in "
				"the log\n", sig);
			return -1;
		}
		harness_sleep_ms(5);
	}
	return 0;
}

void
harness_test_begin(struct harness *h)
{
	struct stat st;

	h->passed = false;
	h->log_mark = stat(h->log_path, &st) == 0 ? (long)st.st_size : 0;
}

void
harness_test_end(struct harness *h, bool passed)
{
	if (h == NULL)
		return;
	h->passed = passed;
	if (!passed || getenv("STOWD_SHOW_LOG") != NULL)
		harness_dump_log(h, h->log_mark);
}
