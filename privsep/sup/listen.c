/* SPDX-License-Identifier: MIT */
/*
 * privsep/sup/listen.c - the lmtp_listen, replication_listen and
 * metrics_listen sockets (unix, TCP IPv4/IPv6), and the bind of the
 * control socket.  Accepted client sockets are handed unread to an LMTP
 * front-end (LMTP, metrics) or to repld.
 *
 * Runs in:  the supervisor (root): it binds, never reads a client byte.
 * Trust:    an LMTP unix socket gets lmtp_socket_mode / lmtp_socket_group;
 *           a replication unix socket is 0600 root (repld checks the peer
 *           with SO_PEERCRED); a metrics unix socket is 0666 (the metrics
 *           carry no user names); the control socket is 0600 root; a socket path held by a running server is
 *           never taken over.  Group and mode are set while the socket is
 *           in a fresh root-only directory beside its path, and only then
 *           is it renamed into place: no chmod or chown ever acts on a
 *           name that someone else can swap (a symlink planted in a
 *           directory others may write would otherwise turn them into a
 *           chmod of any file).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <grp.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/listener.h>

#include "privsep/sup/sup_int.h"

enum listen_kind {
	LK_LMTP = 0,
	LK_REPL = 1,              /* replication_listen: clients go to repld */
	LK_METRICS = 2,           /* metrics_listen: clients go to a front-end */
	LK_CONTROL = 3,           /* the control socket (bind only) */
};

struct sup_listener {
	struct sup *sup;
	struct evconnlistener *ev;
	struct policy_listen conf;
	enum listen_kind kind;
	struct event *resume;     /* accept paused by a full fd table */
	unsigned pause_ms;        /* its back-off, 0 while accepting */
	struct log_limit rl;
};

#define ACCEPT_PAUSE_MIN_MS 50u
#define ACCEPT_PAUSE_MAX_MS 2000u

static int
fail(const char **why_out, const char *why, int fd)
{
	int saved = errno;

	if (fd >= 0)
		close(fd);
	*why_out = why;
	errno = saved;
	return -1;
}

/* Remove a stale socket at path; refuse if a server answers on it. */
static int
unix_take_path(const struct sockaddr_un *sun, const char **why_out)
{
	struct stat st;
	int fd;

	if (lstat(sun->sun_path, &st) < 0)
		return errno == ENOENT ? 0 : fail(why_out, "cannot stat socket path", -1);
	if (!S_ISSOCK(st.st_mode)) {
		errno = EEXIST;
		return fail(why_out, "socket path exists and is not a socket", -1);
	}
	/* A stream or a seqpacket (control) server: either one is alive. */
	for (int type = SOCK_STREAM; ; type = SOCK_SEQPACKET) {
		fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return fail(why_out, "socket", -1);
		if (connect(fd, (const struct sockaddr *)sun, sizeof(*sun)) == 0) {
			errno = EADDRINUSE;
			return fail(why_out, "another server is listening on the socket path", fd);
		}
		close(fd);
		if (errno != EPROTOTYPE || type == SOCK_SEQPACKET)
			break;
	}
	if (unlink(sun->sun_path) < 0 && errno != ENOENT)
		return fail(why_out, "cannot remove stale socket", -1);
	return 0;
}

static int
unix_perms(const struct policy_settings *s, const char *path, enum listen_kind kind,
	   const char **why_out)
{
	bool repl = kind == LK_REPL;

	if (kind == LK_CONTROL || kind == LK_METRICS) {
		if (chmod(path, kind == LK_CONTROL ? 0600 : 0666) < 0)
			return fail(why_out, "chmod of socket failed", -1);
		return 0;
	}
	/* Replication: repld decides who may talk by SO_PEERCRED (root and
	 * replication_unix_uids).  Without replication_unix_uids only root
	 * may connect at all (0600); with them anyone may connect and repld
	 * refuses the others (* BYE [AUTHFAILED]). */
	if (repl) {
		if (chmod(path, s->n_repl_unix_uids > 0 ? 0666 : 0600) < 0)
			return fail(why_out, "chmod of socket failed", -1);
		return 0;
	}
	if (s->lmtp_socket_group[0] != '\0') {
		struct group *gr = getgrnam(s->lmtp_socket_group);

		if (gr == NULL) {
			errno = ENOENT;
			return fail(why_out, "lmtp_socket_group does not exist", -1);
		}
		if (chown(path, (uid_t)-1, gr->gr_gid) < 0)
			return fail(why_out, "chown of socket failed", -1);
	}
	if (chmod(path, (mode_t)s->lmtp_socket_mode) < 0)
		return fail(why_out, "chmod of socket failed", -1);
	return 0;
}

/*
 * Bind fd to path with its final group and mode already set: bind in a
 * new 0700 directory that mkdtemp makes beside path (only root can enter
 * it, so nobody can swap the name there), chown/chmod there, rename into
 * place (rename replaces the name at path, never follows it), remove the
 * directory.  0, or -1 with *why_out (nothing left behind).
 */
static int
bind_private(int fd, const struct policy_settings *s, const char *path,
	     enum listen_kind kind, const char **why_out)
{
	struct sockaddr_un sun;
	char stage[sizeof(sun.sun_path)];
	const char *slash = strrchr(path, '/');
	int n, rc = -1;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (slash == NULL)
		n = snprintf(stage, sizeof(stage), ".stowd-bind.XXXXXX");
	else
		n = snprintf(stage, sizeof(stage), "%.*s/.stowd-bind.XXXXXX",
			     (int)(slash - path), path);
	if (n < 0 || (size_t)n + 3 > sizeof(sun.sun_path)) {
		errno = ENAMETOOLONG;
		return fail(why_out, "socket directory name too long for a private bind", -1);
	}
	if (mkdtemp(stage) == NULL)
		return fail(why_out, "cannot create a private directory beside the socket", -1);
	memcpy(sun.sun_path, stage, (size_t)n);
	memcpy(sun.sun_path + n, "/s", 3);
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0)
		fail(why_out, "bind", -1);
	else if (unix_perms(s, sun.sun_path, kind, why_out) == 0) {
		if (rename(sun.sun_path, path) == 0)
			rc = 0;
		else
			fail(why_out, "cannot move the socket into place", -1);
	}
	n = errno;
	if (rc < 0)
		unlink(sun.sun_path);
	rmdir(stage);
	errno = n;
	return rc;
}

static int
open_unix(const struct policy_settings *s, const struct policy_listen *l,
	  enum listen_kind kind, const char **why_out)
{
	struct sockaddr_un sun;
	char dir[sizeof(sun.sun_path)];
	char *slash;
	int fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	xstrlcpy(sun.sun_path, l->path, sizeof(sun.sun_path));
	xstrlcpy(dir, l->path, sizeof(dir));
	slash = strrchr(dir, '/');
	if (slash != NULL && slash != dir) {
		*slash = '\0';
		if (mkdir(dir, 0755) < 0 && errno != EEXIST)
			return fail(why_out, "cannot create socket directory", -1);
	}
	if (unix_take_path(&sun, why_out) < 0)
		return -1;
	fd = socket(AF_UNIX, (kind == LK_CONTROL ? SOCK_SEQPACKET : SOCK_STREAM) |
		    SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return fail(why_out, "socket", -1);
	if (bind_private(fd, s, l->path, kind, why_out) < 0)
		return fail(why_out, *why_out, fd);
	if (listen(fd, SOMAXCONN) < 0) {
		unlink(l->path);
		return fail(why_out, "listen", fd);
	}
	return fd;
}

static int
open_tcp(const struct policy_listen *l, const char **why_out)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd, one = 1;

	memset(&ss, 0, sizeof(ss));
	if (strchr(l->host, ':') != NULL) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;

		a->sin6_family = AF_INET6;
		a->sin6_port = htons(l->port);
		if (inet_pton(AF_INET6, l->host, &a->sin6_addr) != 1)
			return fail(why_out, "bad IPv6 address", -1);
		len = sizeof(*a);
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;

		a->sin_family = AF_INET;
		a->sin_port = htons(l->port);
		if (inet_pton(AF_INET, l->host, &a->sin_addr) != 1)
			return fail(why_out, "bad IPv4 address", -1);
		len = sizeof(*a);
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return fail(why_out, "socket", -1);
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ss.ss_family == AF_INET6)
		(void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, len) < 0)
		return fail(why_out, "bind", fd);
	if (listen(fd, SOMAXCONN) < 0)
		return fail(why_out, "listen", fd);
	return fd;
}

/* lmtp_allow_networks (empty: any client). */
static bool
lmtp_client_allowed(const struct sup_listener *l, const struct sockaddr *sa)
{
	const char *text = l->sup->set.lmtp_allow_networks;
	char addr[INET6_ADDRSTRLEN] = "?";

	if (text == NULL || text[0] == '\0')
		return true;
	if (policy_networks_match(l->sup->allow_nets, l->sup->n_allow_nets, sa))
		return true;
	if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, addr,
			  sizeof(addr));
	else if (sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, addr,
			  sizeof(addr));
	log_warn("listener=%s client=%s refused: not in lmtp_allow_networks",
		 l->conf.text, addr);
	return false;
}

static void
on_accept(struct evconnlistener *ev, evutil_socket_t fd, struct sockaddr *sa,
	  int socklen, void *arg)
{
	struct sup_listener *l = arg;

	(void)ev;
	(void)socklen;
	l->pause_ms = 0;
	if (l->sup->stopping) {
		close(fd);
		return;
	}
	switch (l->kind) {
	case LK_REPL:
		sup_repld_hand(l->sup, fd, l->conf.text);
		break;
	case LK_METRICS:
		sup_frontends_hand_metrics(l->sup, fd, l->conf.text);
		break;
	case LK_LMTP:
		if (l->conf.kind == POLICY_LISTEN_TCP && !lmtp_client_allowed(l, sa)) {
			close(fd);
			break;
		}
		sup_frontends_hand(l->sup, fd, l->conf.text);
		break;
	case LK_CONTROL:
		sup_frontends_hand(l->sup, fd, l->conf.text);
		break;
	}
}

static void
on_resume(evutil_socket_t fd, short what, void *arg)
{
	struct sup_listener *l = arg;

	(void)fd;
	(void)what;
	evconnlistener_enable(l->ev);
}

/*
 * accept failed.  Out of fds (or memory) the pending connection stays in
 * the backlog and the socket stays readable: accepting again at once
 * would spin.  Pause this listener with a back-off (50 ms doubling to
 * 2 s, reset by the next accepted client) instead.
 */
static void
on_accept_error(struct evconnlistener *ev, void *arg)
{
	struct sup_listener *l = arg;
	int err = errno;
	struct timeval tv;
	unsigned skipped = 0;

	if (err != EMFILE && err != ENFILE && err != ENOBUFS && err != ENOMEM) {
		if (log_limited(&l->rl, &skipped))
			log_err("accept on %s: %s", l->conf.text, strerror(err));
		return;
	}
	l->pause_ms = l->pause_ms == 0 ? ACCEPT_PAUSE_MIN_MS : l->pause_ms * 2;
	if (l->pause_ms > ACCEPT_PAUSE_MAX_MS)
		l->pause_ms = ACCEPT_PAUSE_MAX_MS;
	if (log_limited(&l->rl, &skipped))
		log_err("accept on %s: %s: pausing accepts for %u ms (bodies=%u "
			"budget=%u): raise LimitNOFILE (RLIMIT_NOFILE) (%u more "
			"since the last line)", l->conf.text, strerror(err), l->pause_ms,
			l->sup->n_bodies, sup_body_budget(l->sup), skipped);
	evconnlistener_disable(ev);
	tv.tv_sec = l->pause_ms / 1000;
	tv.tv_usec = (suseconds_t)(l->pause_ms % 1000) * 1000;
	evtimer_add(l->resume, &tv);
}

/* Open the entries of one list into sup->listeners (allocated for both
 * lists by the caller: the listeners' addresses are callback arguments). */
static int
open_list(struct sup *sup, const char *list, enum listen_kind kind, const char **why_out)
{
	static const char *const names[] = { "lmtp_listen", "replication_listen",
					      "metrics_listen", "control_socket" };
	const char *name = names[kind];
	struct policy_listen *conf = NULL;
	size_t n = 0, i;

	if (list == NULL || list[0] == '\0')
		return 0;
	if (policy_listen_parse(list, &conf, &n, why_out) < 0)
		return -1;
	for (i = 0; i < n; i++) {
		struct sup_listener *l = &sup->listeners[sup->n_listeners];
		int fd = conf[i].kind == POLICY_LISTEN_UNIX ?
			 open_unix(&sup->set, &conf[i], kind, why_out) :
			 open_tcp(&conf[i], why_out);

		if (fd < 0) {
			log_err("%s %s: %s: %s", name, conf[i].text, *why_out,
				strerror(errno));
			free(conf);
			return -1;
		}
		memset(l, 0, sizeof(*l));
		l->sup = sup;
		l->conf = conf[i];
		l->kind = kind;
		l->ev = evconnlistener_new(sup->base, on_accept, l,
					   LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC,
					   0, fd);
		if (l->ev == NULL)
			fatalx("evconnlistener_new");
		evconnlistener_set_error_cb(l->ev, on_accept_error);
		l->resume = evtimer_new(sup->base, on_resume, l);
		if (l->resume == NULL)
			fatalx("evtimer_new");
		sup->n_listeners++;
		log_info("listening on %s%s", conf[i].text, kind == LK_REPL ? " (replication)" :
			 kind == LK_METRICS ? " (metrics)" : "");
	}
	free(conf);
	return 0;
}

static size_t
list_count(const char *list)
{
	struct policy_listen *conf = NULL;
	const char *why = NULL;
	size_t n = 0;

	if (list == NULL || list[0] == '\0' ||
	    policy_listen_parse(list, &conf, &n, &why) < 0)
		return 0;
	free(conf);
	return n;
}

int
sup_listeners_open(struct sup *sup, const char **why_out)
{
	size_t total = list_count(sup->set.lmtp_listen) +
		       list_count(sup->set.replication_listen) +
		       list_count(sup->set.metrics_listen);

	*why_out = NULL;
	sup->listeners = xcalloc(total + 1, sizeof(*sup->listeners));
	sup->n_listeners = 0;
	if (open_list(sup, sup->set.lmtp_listen, LK_LMTP, why_out) < 0 ||
	    open_list(sup, sup->set.replication_listen, LK_REPL, why_out) < 0 ||
	    open_list(sup, sup->set.metrics_listen, LK_METRICS, why_out) < 0)
		return -1;
	return 0;
}

void
sup_listeners_close(struct sup *sup)
{
	size_t i;

	for (i = 0; i < sup->n_listeners; i++) {
		struct sup_listener *l = &sup->listeners[i];

		evconnlistener_free(l->ev);
		if (l->resume != NULL)
			event_free(l->resume);
		if (l->conf.kind == POLICY_LISTEN_UNIX)
			unlink(l->conf.path);
	}
	free(sup->listeners);
	sup->listeners = NULL;
	sup->n_listeners = 0;
}

bool
sup_listeners_same(const struct policy_settings *a, const struct policy_settings *b)
{
	const char *ra = a->replication_listen ? a->replication_listen : "";
	const char *rb = b->replication_listen ? b->replication_listen : "";
	const char *ma = a->metrics_listen ? a->metrics_listen : "";
	const char *mb = b->metrics_listen ? b->metrics_listen : "";

	return strcmp(a->lmtp_listen, b->lmtp_listen) == 0 && strcmp(ra, rb) == 0 &&
	       strcmp(ma, mb) == 0 &&
	       a->lmtp_socket_mode == b->lmtp_socket_mode &&
	       strcmp(a->lmtp_socket_group, b->lmtp_socket_group) == 0;
}

int
sup_listen_private_seqpacket(const char *path, const char **why_out)
{
	struct policy_listen l;
	struct policy_settings none;

	memset(&l, 0, sizeof(l));
	memset(&none, 0, sizeof(none));
	l.kind = POLICY_LISTEN_UNIX;
	if (!xstrlcpy(l.path, path, sizeof(l.path))) {
		*why_out = "control socket path too long";
		errno = ENAMETOOLONG;
		return -1;
	}
	return open_unix(&none, &l, LK_CONTROL, why_out);
}
