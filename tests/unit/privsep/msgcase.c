/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/privsep/msgcase.c - the valid message of every IPC type (the
 * replication family in msgcase_repl.c), the case table and
 * the send/receive/verdict helpers of the decoder tests (see msgcase.h).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "msgcase.h"

#define CHILD_ROLES (R(PSEP_ROLE_LMTPD) | R(PSEP_ROLE_WRITER_SETEUID) | \
		     R(PSEP_ROLE_WRITER_CHILD) | R(PSEP_ROLE_REPL_HOOK) | \
		     R(PSEP_ROLE_REPLD) | R(PSEP_ROLE_WRITER_TEMPLATE))
#define WRITER_ROLES (R(PSEP_ROLE_WRITER_SETEUID) | R(PSEP_ROLE_WRITER_CHILD))
#define RUNNING_STATES (S(PSEP_STATE_READY) | S(PSEP_STATE_STOPPING))

/* ---- the valid message of each type ----------------------------------- */

void
msgcase_set_str(char *field, size_t size, const char *s)
{
	memset(field, 0, size);
	memcpy(field, s, strlen(s) < size ? strlen(s) : size);
}

static void
fill_result(struct dlv_result *r)
{
	r->status = DLV_OK;
	r->code = 250;
	SET_STR(r->enhanced, "2.1.5");
	SET_STR(r->text, "OK");
}

static size_t
fill_hello_req(void *b)
{
	struct psep_hello *h = b;

	h->version = PSEP_PROTO_VERSION;
	h->role = PSEP_ROLE_LMTPD;
	h->generation = 7;
	return sizeof(*h);
}

static size_t
fill_hello_rep(void *b)
{
	struct psep_hello *h = b;

	h->version = PSEP_PROTO_VERSION;
	h->role = PSEP_ROLE_SUPERVISOR;
	h->generation = 7;
	return sizeof(*h);
}

static size_t
fill_log(void *b)
{
	struct psep_log *l = b;

	l->level = PSEP_LOG_INFO;
	l->text_len = 5;
	memcpy(l->text, "hello", 5);
	return sizeof(*l) + 5;
}

static size_t
fill_client_fd(void *b)
{
	struct psep_client_fd *c = b;

	SET_STR(c->listener, "127.0.0.1:24");
	return sizeof(*c);
}

static size_t
fill_shutdown(void *b)
{
	(void)b;
	return 0;
}

static size_t
fill_rcpt_req(void *b)
{
	struct psep_rcpt_req *r = b;

	SET_STR(r->session, "s0001");
	SET_STR(r->address, "user@example.org");
	return sizeof(*r);
}

static size_t
fill_rcpt_rep(void *b)
{
	struct psep_rcpt_rep *r = b;

	fill_result(&r->result);
	return sizeof(*r);
}

static size_t
fill_deliver_req(void *b)
{
	struct psep_deliver_req *r = b;

	SET_STR(r->session, "s0001");
	SET_STR(r->address, "user@example.org");
	r->rcpt_index = 0;
	r->prefix_len = PREFIX_LEN;
	r->body_size = BODY_LEN;
	r->body_vsize = BODY_LEN + BODY_LINES;
	memcpy(r->prefix, TEST_PREFIX, PREFIX_LEN);
	return sizeof(*r) + PREFIX_LEN;
}

static size_t
fill_deliver_rep(void *b)
{
	struct psep_deliver_rep *r = b;

	fill_result(&r->result);
	SET_STR(r->guid, TEST_GUID);
	return sizeof(*r);
}

static size_t
fill_fork_req(void *b)
{
	struct psep_fork_req *r = b;

	r->uid = 1000;
	r->gid = 1000;
	r->ngroups = 2;
	r->groups[0] = 1000;
	r->groups[1] = 1001;
	return sizeof(*r);
}

static size_t
fill_fork_rep(void *b)
{
	struct psep_fork_rep *r = b;

	r->pid = 4242;
	return sizeof(*r);
}

size_t
fill_quota_req(void *b)
{
	struct psep_quota_req *r = b;
	uint32_t i;

	r->uid = 1000;
	r->gid = 1000;
	r->ngroups = 2;
	for (i = 0; i < PSEP_MAX_GROUPS; i++)
		r->groups[i] = 1000 + i;
	r->size = 4096;
	r->quota.on = 1;
	r->quota.enforce = 1;
	r->quota.force = 1;
	r->quota.bytes = 1024 * 1024;
	r->quota.count = 100;
	SET_STR(r->user, "alice");
	SET_STR(r->mail_base, "/var/mail");
	SET_STR(r->mail_rel, "alice/Maildir");
	return sizeof(*r);
}

size_t
fill_quota_rep(void *b)
{
	struct psep_quota_rep *r = b;

	r->fits = 1;
	r->used_bytes = 1000;
	r->used_count = 2;
	r->limit_bytes = 1024 * 1024;
	return sizeof(*r);
}

static size_t
fill_write_req(void *b)
{
	struct psep_write_req *r = b;
	uint32_t i;

	r->uid = 1000;
	r->gid = 1000;
	r->ngroups = 2;
	for (i = 0; i < PSEP_MAX_GROUPS; i++)  /* valid beyond ngroups too */
		r->groups[i] = 1000 + i;
	r->prefix_len = PREFIX_LEN;
	r->body_size = BODY_LEN;
	r->body_vsize = BODY_LEN + BODY_LINES;
	r->received_time = 1700000000;
	SET_STR(r->session, "s0001");
	SET_STR(r->user, "alice");
	SET_STR(r->mail_base, "/var/mail");
	SET_STR(r->mail_rel, "alice/Maildir");
	SET_STR(r->mailbox, "INBOX");
	SET_STR(r->guid, TEST_GUID);
	memcpy(r->prefix, TEST_PREFIX, PREFIX_LEN);
	return sizeof(*r) + PREFIX_LEN;
}

static size_t
fill_write_rep(void *b)
{
	struct psep_write_rep *r = b;

	r->err = 0;
	r->imap_uid = 1;
	r->size = BODY_LEN + PREFIX_LEN;
	SET_STR(r->guid, TEST_GUID);
	SET_STR(r->filename, "1700000000.M1P2.host,S=52");
	return sizeof(*r);
}

static size_t
fill_session_end(void *b)
{
	struct psep_session_end *s = b;

	SET_STR(s->session, "s0001");
	return sizeof(*s);
}

#ifdef STOWD_TEST_HOOKS
static size_t
fill_test_req(void *b)
{
	struct psep_test_req *t = b;

	t->op = PSEP_TEST_FORBIDDEN_SYSCALL;
	return sizeof(*t);
}

static size_t
fill_test_rep(void *b)
{
	struct psep_test_rep *t = b;

	t->result = 0;
	return sizeof(*t);
}
#endif

const struct mcase msg_cases[] = {
	{ .name = "HELLO_REQ", .type = PSEP_HELLO_REQ, .senders = CHILD_ROLES,
	  .states = S(PSEP_STATE_NEW), .fd = TFD_NONE, .fill = fill_hello_req },
	{ .name = "HELLO_REP", .type = PSEP_HELLO_REP,
	  .senders = R(PSEP_ROLE_SUPERVISOR), .states = S(PSEP_STATE_NEW),
	  .fd = TFD_NONE, .fill = fill_hello_rep },
	{ .name = "LOG", .type = PSEP_LOG, .senders = CHILD_ROLES,
	  .states = RUNNING_STATES, .fd = TFD_NONE, .fill = fill_log },
	{ .name = "CLIENT_FD", .type = PSEP_CLIENT_FD,
	  .senders = R(PSEP_ROLE_SUPERVISOR), .states = S(PSEP_STATE_READY),
	  .fd = TFD_SOCKET, .fill = fill_client_fd },
	{ .name = "SHUTDOWN", .type = PSEP_SHUTDOWN,
	  .senders = R(PSEP_ROLE_SUPERVISOR), .states = RUNNING_STATES,
	  .fd = TFD_NONE, .fill = fill_shutdown },
	{ .name = "RCPT_REQ", .type = PSEP_RCPT_REQ, .senders = R(PSEP_ROLE_LMTPD),
	  .states = RUNNING_STATES, .fd = TFD_NONE, .fill = fill_rcpt_req },
	{ .name = "RCPT_REP", .type = PSEP_RCPT_REP,
	  .senders = R(PSEP_ROLE_SUPERVISOR), .states = RUNNING_STATES,
	  .fd = TFD_NONE, .fill = fill_rcpt_rep },
	{ .name = "DELIVER_REQ", .type = PSEP_DELIVER_REQ,
	  .senders = R(PSEP_ROLE_LMTPD), .states = RUNNING_STATES,
	  .fd = TFD_MEMFD, .fill = fill_deliver_req },
	{ .name = "DELIVER_REP", .type = PSEP_DELIVER_REP,
	  .senders = R(PSEP_ROLE_SUPERVISOR), .states = RUNNING_STATES,
	  .fd = TFD_NONE, .fill = fill_deliver_rep },
	{ .name = "WRITE_REQ", .type = PSEP_WRITE_REQ,
	  .senders = R(PSEP_ROLE_SUPERVISOR), .states = RUNNING_STATES,
	  .fd = TFD_MEMFD, .fill = fill_write_req },
	{ .name = "WRITE_REP", .type = PSEP_WRITE_REP, .senders = WRITER_ROLES,
	  .states = RUNNING_STATES, .fd = TFD_NONE, .fill = fill_write_rep },
	{ .name = "FORK_REQ", .type = PSEP_FORK_REQ,
	  .senders = R(PSEP_ROLE_SUPERVISOR), .states = S(PSEP_STATE_READY),
	  .fd = TFD_SOCKET, .fill = fill_fork_req },
	{ .name = "FORK_REP", .type = PSEP_FORK_REP,
	  .senders = R(PSEP_ROLE_WRITER_TEMPLATE), .states = RUNNING_STATES,
	  .fd = TFD_NONE, .fill = fill_fork_rep },
	{ .name = "SESSION_END", .type = PSEP_SESSION_END,
	  .senders = R(PSEP_ROLE_LMTPD), .states = RUNNING_STATES,
	  .fd = TFD_NONE, .fill = fill_session_end },
	{ .name = "REPL_REQ", .type = PSEP_REPL_REQ,
	  .senders = R(PSEP_ROLE_REPLD) | R(PSEP_ROLE_REPL_HOOK),
	  .states = RUNNING_STATES, .fd = TFD_MEMFD, .fill = fill_repl_req },
	{ .name = "REPL_REP", .type = PSEP_REPL_REP,
	  .senders = R(PSEP_ROLE_SUPERVISOR), .states = RUNNING_STATES,
	  .fd = TFD_NONE, .fill = fill_repl_rep },
	{ .name = "REPL_OP_REQ", .type = PSEP_REPL_OP_REQ,
	  .senders = R(PSEP_ROLE_SUPERVISOR), .states = RUNNING_STATES,
	  .fd = TFD_MEMFD, .fill = fill_repl_op_req },
	{ .name = "REPL_OP_REP", .type = PSEP_REPL_OP_REP, .senders = WRITER_ROLES,
	  .states = RUNNING_STATES, .fd = TFD_NONE, .fill = fill_repl_op_rep },
	{ .name = "EVENT_REQ", .type = PSEP_EVENT_REQ,
	  .senders = R(PSEP_ROLE_SUPERVISOR), .states = RUNNING_STATES,
	  .fd = TFD_MEMFD, .fill = fill_event_req },
	{ .name = "EVENT_REP", .type = PSEP_EVENT_REP,
	  .senders = R(PSEP_ROLE_REPL_HOOK), .states = RUNNING_STATES,
	  .fd = TFD_NONE, .fill = fill_event_rep },
	{ .name = "USERS_REQ", .type = PSEP_USERS_REQ,
	  .senders = R(PSEP_ROLE_REPL_HOOK), .states = RUNNING_STATES,
	  .fd = TFD_NONE, .fill = fill_users_req },
	{ .name = "USERS_REP", .type = PSEP_USERS_REP,
	  .senders = R(PSEP_ROLE_SUPERVISOR), .states = RUNNING_STATES,
	  .fd = TFD_MEMFD, .fill = fill_users_rep },
	{ .name = "QUOTA_REQ", .type = PSEP_QUOTA_REQ,
	  .senders = R(PSEP_ROLE_SUPERVISOR), .states = RUNNING_STATES,
	  .fd = TFD_NONE, .fill = fill_quota_req },
	{ .name = "QUOTA_REP", .type = PSEP_QUOTA_REP, .senders = WRITER_ROLES,
	  .states = RUNNING_STATES, .fd = TFD_NONE, .fill = fill_quota_rep },
	{ .name = "WRITE_STAMP", .type = PSEP_WRITE_STAMP, .senders = WRITER_ROLES,
	  .states = RUNNING_STATES, .fd = TFD_NONE, .fill = fill_write_stamp },
	{ .name = "CTL_REQ", .type = PSEP_CTL_REQ, .senders = R(PSEP_ROLE_CONTROL),
	  .states = S(PSEP_STATE_READY), .fd = TFD_NONE, .fill = fill_ctl_req },
	{ .name = "CTL_REP", .type = PSEP_CTL_REP, .senders = R(PSEP_ROLE_SUPERVISOR),
	  .states = S(PSEP_STATE_READY), .fd = TFD_NONE, .fill = fill_ctl_rep },
	{ .name = "STATS_REQ", .type = PSEP_STATS_REQ,
	  .senders = R(PSEP_ROLE_SUPERVISOR), .states = RUNNING_STATES,
	  .fd = TFD_NONE, .fill = fill_stats_req },
	{ .name = "STATS_REP", .type = PSEP_STATS_REP,
	  .senders = R(PSEP_ROLE_REPL_HOOK), .states = RUNNING_STATES,
	  .fd = TFD_NONE, .fill = fill_stats_rep },
	{ .name = "METRICS_REQ", .type = PSEP_METRICS_REQ,
	  .senders = R(PSEP_ROLE_LMTPD), .states = RUNNING_STATES,
	  .fd = TFD_NONE, .fill = fill_metrics_req },
	{ .name = "METRICS_REP", .type = PSEP_METRICS_REP,
	  .senders = R(PSEP_ROLE_SUPERVISOR), .states = RUNNING_STATES,
	  .fd = TFD_NONE, .fill = fill_metrics_rep },
	{ .name = "METRICS_CLIENT", .type = PSEP_METRICS_CLIENT,
	  .senders = R(PSEP_ROLE_SUPERVISOR), .states = S(PSEP_STATE_READY),
	  .fd = TFD_SOCKET, .fill = fill_metrics_client },
	{ .name = "RESYNC_REQ", .type = PSEP_RESYNC_REQ,
	  .senders = R(PSEP_ROLE_SUPERVISOR), .states = RUNNING_STATES,
	  .fd = TFD_NONE, .fill = fill_resync_req },
	{ .name = "RESYNC_REP", .type = PSEP_RESYNC_REP,
	  .senders = R(PSEP_ROLE_REPL_HOOK), .states = RUNNING_STATES,
	  .fd = TFD_NONE, .fill = fill_resync_rep },
	{ .name = "WATCH_REQ", .type = PSEP_WATCH_REQ,
	  .senders = R(PSEP_ROLE_REPL_HOOK), .states = RUNNING_STATES,
	  .fd = TFD_INOTIFY, .fill = fill_watch_req },
	{ .name = "WATCH_REP", .type = PSEP_WATCH_REP,
	  .senders = R(PSEP_ROLE_SUPERVISOR), .states = RUNNING_STATES,
	  .fd = TFD_MEMFD, .fill = fill_watch_rep },
	{ .name = "WATCH_OP_REQ", .type = PSEP_WATCH_OP_REQ,
	  .senders = R(PSEP_ROLE_SUPERVISOR), .states = RUNNING_STATES,
	  .fd = TFD_INOTIFY, .fill = fill_watch_op_req },
	{ .name = "WATCH_OP_REP", .type = PSEP_WATCH_OP_REP, .senders = WRITER_ROLES,
	  .states = RUNNING_STATES, .fd = TFD_MEMFD, .fill = fill_watch_rep },
#ifdef STOWD_TEST_HOOKS
	{ .name = "TEST_REQ", .type = PSEP_TEST_REQ,
	  .senders = R(PSEP_ROLE_SUPERVISOR), .states = RUNNING_STATES,
	  .fd = TFD_NONE, .fill = fill_test_req },
	{ .name = "TEST_REP", .type = PSEP_TEST_REP, .senders = WRITER_ROLES,
	  .states = RUNNING_STATES, .fd = TFD_NONE, .fill = fill_test_rep },
#endif
};
const size_t msg_ncases = sizeof(msg_cases) / sizeof(msg_cases[0]);

const struct mcase *
case_of(uint16_t type)
{
	size_t i;

	for (i = 0; i < msg_ncases; i++)
		if (msg_cases[i].type == type)
			return &msg_cases[i];
	fail_msg("no test case for type %u", (unsigned)type);
	return NULL;
}

enum psep_role
valid_role(const struct mcase *c)
{
	return (enum psep_role)__builtin_ctz(c->senders);
}

enum psep_state
valid_state(const struct mcase *c)
{
	return (enum psep_state)__builtin_ctz(c->states);
}

/* ---- datagrams -------------------------------------------------------- */

struct psep_hdr *
dg_hdr(struct dgram *d)
{
	return (struct psep_hdr *)(void *)d->buf;
}

unsigned char *
dg_body(struct dgram *d)
{
	return d->buf + HDR_LEN;
}

/* The valid datagram of c, len field matching. */
void
dg_build(const struct mcase *c, struct dgram *d)
{
	struct psep_hdr *h = dg_hdr(d);

	memset(d->buf, 0, sizeof(d->buf));
	d->len = HDR_LEN + c->fill(dg_body(d));
	h->type = c->type;
	h->flags = 0;
	h->id = MSG_ID;
	h->len = (uint32_t)d->len;
}

/* Resize the datagram (tail types), keeping the len field in step. */
void
dg_set_len(struct dgram *d, size_t len)
{
	d->len = len;
	dg_hdr(d)->len = (uint32_t)len;
}

/* ---- fds -------------------------------------------------------------- */

/* A memfd holding size bytes of TEST_BODY (repeated), with the given seals. */
int
make_memfd(int seals, size_t size, unsigned flags)
{
	int fd = memfd_create("stowd-test-body", MFD_CLOEXEC | flags);
	size_t off;

	assert_true(fd >= 0);
	for (off = 0; off < size; ) {
		size_t n = size - off < BODY_LEN ? size - off : BODY_LEN;

		assert_int_equal(write(fd, TEST_BODY, n), (ssize_t)n);
		off += n;
	}
	if (seals != 0)
		assert_int_equal(fcntl(fd, F_ADD_SEALS, seals), 0);
	return fd;
}

int
make_sealed_body(void)
{
	return make_memfd(ALL_SEALS, BODY_LEN, MFD_ALLOW_SEALING);
}

/* One end of a fresh socketpair (the other end is closed). */
int
make_socket(void)
{
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	close(sv[1]);
	return sv[0];
}

/* The read end of a fresh pipe (the write end is closed). */
int
make_pipe(void)
{
	int p[2];

	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	close(p[1]);
	return p[0];
}

int
make_fd_for(enum tfd kind)
{
	switch (kind) {
	case TFD_SOCKET:
		return make_socket();
	case TFD_MEMFD:
		return make_sealed_body();
	case TFD_INOTIFY:
		return inotify_init1(IN_CLOEXEC);
	case TFD_NONE:
		break;
	}
	return -1;
}

void
fd_snap(struct fdsnap *s)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int i;

	assert_non_null(d);
	s->count = 0;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.' && atoi(e->d_name) != dirfd(d))
			s->count++;
	closedir(d);
	for (i = 0; i < MAX_FDS_CHECKED; i++)
		s->open[i] = fcntl(i, F_GETFD) >= 0;
}

void
assert_no_fd_leak(const struct fdsnap *before, const char *what)
{
	struct fdsnap now;
	int i;

	fd_snap(&now);
	for (i = 0; i < MAX_FDS_CHECKED; i++)
		if (!before->open[i] && now.open[i])
			fail_msg("%s: fd %d leaked", what, i);
	if (now.count != before->count)
		fail_msg("%s: %d fds open, %d before", what, now.count, before->count);
}

/* ---- send and receive ------------------------------------------------- */

void
send_raw(int sock, const void *buf, size_t len, const int *fds, size_t nfds)
{
	struct iovec iov = { .iov_base = (void *)(uintptr_t)buf, .iov_len = len };
	union {
		struct cmsghdr align;
		char b[CMSG_SPACE(sizeof(int) * MAX_SEND_FDS)];
	} cbuf;
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t n;

	assert_true(nfds <= MAX_SEND_FDS);
	if (nfds > 0) {
		struct cmsghdr *c;

		memset(&cbuf, 0, sizeof(cbuf));
		mh.msg_control = cbuf.b;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	}
	n = sendmsg(sock, &mh, MSG_NOSIGNAL);
	if (n < 0)
		fail_msg("sendmsg(%zu bytes, %zu fds): %s", len, nfds, strerror(errno));
	assert_int_equal((size_t)n, len);
}

/* Send d with nfds fds of kind (created here, closed after sending). */
void
send_dgram(int sock, const struct dgram *d, enum tfd kind, size_t nfds)
{
	int fds[4];
	size_t i;

	assert_true(nfds <= 4);
	for (i = 0; i < nfds; i++)
		fds[i] = make_fd_for(kind);
	send_raw(sock, d->buf, d->len, fds, nfds);
	for (i = 0; i < nfds; i++)
		close(fds[i]);
}

static struct psep_msg rx_msg;

/* psep_msg_recv must reject: -1, EPROTO, a reason, fd -1.  A wrong
 * verdict is reported and returns false; broken invariants fail at once. */
bool
rejected(int sock, enum psep_role role, enum psep_state state, const char *what)
{
	const char *why = NULL;
	int rc;

	errno = 0;
	rc = psep_msg_recv(sock, role, state, &rx_msg, &why);
	if (rc == 0) {
		psep_msg_clear(&rx_msg);
		print_error("%s: accepted, must be rejected\n", what);
		return false;
	}
	if (errno != EPROTO) {
		print_error("%s: errno %d (%s), want EPROTO\n", what, errno, strerror(errno));
		return false;
	}
	if (why == NULL || why[0] == '\0')
		fail_msg("%s: no reason given", what);
	assert_int_equal(rx_msg.fd, -1);
	return true;
}

void
expect_reject(int sock, enum psep_role role, enum psep_state state, const char *what)
{
	if (!rejected(sock, role, state, what))
		fail_msg("%s: wrong verdict", what);
}

/* psep_msg_recv must accept d (sent with an fd of kind); checks the copy. */
bool
accepted(int sock, enum psep_role role, enum psep_state state,
	 const struct dgram *d, enum tfd kind, const char *what)
{
	const char *why = "(none)";
	struct stat st;

	if (psep_msg_recv(sock, role, state, &rx_msg, &why) < 0) {
		print_error("%s: rejected (%s, errno %d), must be accepted\n", what, why,
			    errno);
		return false;
	}
	assert_int_equal(rx_msg.hdr.type, ((const struct psep_hdr *)(const void *)d->buf)->type);
	assert_int_equal(rx_msg.hdr.id, MSG_ID);
	assert_int_equal(rx_msg.hdr.len, d->len);
	assert_int_equal(rx_msg.body_len, d->len - HDR_LEN);
	assert_memory_equal(rx_msg.u.raw, d->buf + HDR_LEN, d->len - HDR_LEN);
	switch (kind) {
	case TFD_NONE:
		assert_int_equal(rx_msg.fd, -1);
		break;
	case TFD_SOCKET:
		assert_true(rx_msg.fd >= 0);
		assert_int_equal(fstat(rx_msg.fd, &st), 0);
		assert_true(S_ISSOCK(st.st_mode));
		break;
	case TFD_MEMFD:
		assert_true(rx_msg.fd >= 0);
		assert_int_equal(fstat(rx_msg.fd, &st), 0);
		assert_true(S_ISREG(st.st_mode));
		break;
	case TFD_INOTIFY:
		assert_true(rx_msg.fd >= 0);
		assert_int_equal(fstat(rx_msg.fd, &st), 0);
		assert_int_equal(st.st_mode & S_IFMT, 0);
		break;
	}
	if (rx_msg.fd >= 0)
		assert_true(fcntl(rx_msg.fd, F_GETFD) & FD_CLOEXEC);
	psep_msg_clear(&rx_msg);
	assert_int_equal(rx_msg.fd, -1);
	return true;
}

void
expect_accept(int sock, enum psep_role role, enum psep_state state,
	      const struct dgram *d, enum tfd kind, const char *what)
{
	if (!accepted(sock, role, state, d, kind, what))
		fail_msg("%s: wrong verdict", what);
}

/* ---- fixture ---------------------------------------------------------- */

int
pair_setup(void **state)
{
	struct pair *p = calloc(1, sizeof(*p));
	int sv[2];

	if (p == NULL ||
	    socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) < 0) {
		free(p);
		return -1;
	}
	p->rx = sv[0];
	p->tx = sv[1];
	psep_msg_set_uid_range(UID_FIRST, UID_LAST);
	fd_snap(&p->before);
	*state = p;
	return 0;
}

int
pair_teardown(void **state)
{
	struct pair *p = *state;

	if (p->rx >= 0)
		close(p->rx);
	if (p->tx >= 0)
		close(p->tx);
	free(p);
	return 0;
}

/* Nothing may be left in the queue after a test step. */
void
assert_queue_empty(struct pair *p)
{
	char c;

	assert_int_equal(recv(p->rx, &c, 1, MSG_DONTWAIT), -1);
	assert_int_equal(errno, EAGAIN);
}

/* Send d (of case c, with the fd c needs) and get the verdict (accept or
 * EPROTO) psep_msg_recv gives as role/state would see it; checks no fd
 * leaked.  Returns whether the verdict was the wanted one. */
bool
verdict_is(struct pair *p, const struct mcase *c, const struct dgram *d,
	   enum psep_role role, enum psep_state state, bool accept,
	   const char *what)
{
	bool ok;

	send_dgram(p->tx, d, c->fd, c->fd == TFD_NONE ? 0 : 1);
	if (accept)
		ok = accepted(p->rx, role, state, d, c->fd, what);
	else
		ok = rejected(p->rx, role, state, what);
	assert_queue_empty(p);
	assert_no_fd_leak(&p->before, what);
	return ok;
}

void
check_verdict(struct pair *p, const struct mcase *c, const struct dgram *d,
	      enum psep_role role, enum psep_state state, bool accept,
	      const char *what)
{
	if (!verdict_is(p, c, d, role, state, accept, what))
		fail_msg("%s: wrong verdict", what);
}

/* ---- field patches ---------------------------------------------------- */

void
apply_patch(struct dgram *d, const struct patch *pt)
{
	unsigned char *f = dg_body(d) + pt->off;

	switch (pt->kind) {
	case P_NUM:
		if (pt->size == 1) {
			uint8_t v = (uint8_t)pt->num;

			memcpy(f, &v, 1);
		} else if (pt->size == 4) {
			uint32_t v = (uint32_t)pt->num;

			memcpy(f, &v, 4);
		} else {
			assert_int_equal(pt->size, 8);
			memcpy(f, &pt->num, 8);
		}
		break;
	case P_STR:
		assert_true(strlen(pt->str) <= pt->size);
		memset(f, 0, pt->size);
		memcpy(f, pt->str, strlen(pt->str));
		break;
	case P_NONUL:
		memset(f, 'a', pt->size);
		if (pt->str != NULL)
			memcpy(f, pt->str, strlen(pt->str));
		break;
	}
}

/* For each row: the unpatched message is accepted (control), the patched
 * one gets the row's verdict. */
void
run_patches(struct pair *p, const struct patch *t, size_t n)
{
	size_t i, wrong = 0;

	for (i = 0; i < n; i++) {
		const struct mcase *c = case_of(t[i].type);

		dg_build(c, &p->d);
		check_verdict(p, c, &p->d, valid_role(c), valid_state(c), true,
			      "control");
		apply_patch(&p->d, &t[i]);
		if (!verdict_is(p, c, &p->d, valid_role(c), valid_state(c),
				t[i].accept, t[i].name))
			wrong++;
	}
	if (wrong > 0)
		fail_msg("%zu of %zu cases got the wrong verdict", wrong, n);
}

int
fd_make(enum fdmake m)
{
	int fd = -1, sv[2];
	char path[] = "/tmp/stowd-test-XXXXXX";

	switch (m) {
	case FM_SOCKET:
		return make_socket();
	case FM_SEQPACKET:
		assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
		close(sv[1]);
		return sv[0];
	case FM_PIPE:
		return make_pipe();
	case FM_DEVNULL:
		fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
		break;
	case FM_DIR:
		fd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		break;
	case FM_TMPFILE:
		fd = mkostemp(path, O_CLOEXEC);
		assert_true(fd >= 0);
		unlink(path);
		assert_int_equal(write(fd, TEST_BODY, BODY_LEN), (ssize_t)BODY_LEN);
		break;
	case FM_MEMFD_SEALED:
		return make_sealed_body();
	case FM_MEMFD_NO_SEAL_SEAL:
		return make_memfd(F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK, BODY_LEN,
				  MFD_ALLOW_SEALING);
	case FM_MEMFD_UNSEALED:
		return make_memfd(0, BODY_LEN, MFD_ALLOW_SEALING);
	case FM_MEMFD_NO_SEALING:
		return make_memfd(0, BODY_LEN, 0);
	case FM_MEMFD_NO_WRITE:
		return make_memfd(F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL, BODY_LEN,
				  MFD_ALLOW_SEALING);
	case FM_MEMFD_FUTURE_WRITE:
		return make_memfd(F_SEAL_FUTURE_WRITE | F_SEAL_GROW | F_SEAL_SHRINK |
				  F_SEAL_SEAL, BODY_LEN, MFD_ALLOW_SEALING);
	case FM_MEMFD_NO_GROW:
		return make_memfd(F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_SEAL, BODY_LEN,
				  MFD_ALLOW_SEALING);
	case FM_MEMFD_NO_SHRINK:
		return make_memfd(F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SEAL, BODY_LEN,
				  MFD_ALLOW_SEALING);
	case FM_MEMFD_LONGER:
		return make_memfd(ALL_SEALS, BODY_LEN + 1, MFD_ALLOW_SEALING);
	case FM_MEMFD_SHORTER:
		return make_memfd(ALL_SEALS, BODY_LEN - 1, MFD_ALLOW_SEALING);
	case FM_MEMFD_EMPTY:
		return make_memfd(ALL_SEALS, 0, MFD_ALLOW_SEALING);
	}
	assert_true(fd >= 0);
	return fd;
}

