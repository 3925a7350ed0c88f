/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/repl-hook/test_hook.c - the repl-hook core end to end in one
 * process tree: the test plays the supervisor (HELLO, EVENT_REQ, USERS_REQ,
 * SHUTDOWN over a SEQPACKET pair) and a replica (a TLS server thread with
 * a throw-away certificate that answers every command OK, one temporary
 * NO, a temporary NO every time to the STOREs of one user, and leaves one
 * command unanswered); repl_hook_main runs in a forked child.  Checks:
 * ACKED after the replica's OK, the SAVE literal (prefix + body) on the
 * wire, JOURNALED for want_acks 0, a temporary NO resent on a new
 * connection, TIMEOUT, the journal truncated once drained, the replica's
 * server id recorded, exit 0 on SHUTDOWN; an entry that always gets a
 * temporary NO dropped after CONN_TEMP_NO_MAX attempts (with the reconnect
 * backoff between them), its mailbox marked for sync, the entries after
 * it acknowledged.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "policy/policy.h"
#include "privsep/privsep.h"
#include "repl-hook/core_int.h"
#include "repl-hook/hook_int.h"

#define REPLICA_CONNS 8          /* connections the replica serves */
#define REPLY_WAIT_MS 10000      /* longest wait for an EVENT_REP */
#define BACKOFF_MIN_MS 100       /* STOWD_TEST_BACKOFF_MIN_MS: the first
				  * reconnect back-off here (1 s in stowd) */
#define POISON_WAIT_MS 10000     /* longest wait for the CONN_TEMP_NO_MAX
				  * tries of an entry: the backoff between
				  * them is 1 + 2 + 4 + 8 times the first */
#define POISON_BACKOFF_MS (15 * BACKOFF_MIN_MS)   /* that backoff */
#define SHUTDOWN_WAIT_MS 5000    /* longest wait for the hook to go quiet */

static const char greeting[] =
	"* OK STOWD-REPL 1 b.example MAXLINE=8192 MAXLITERAL=2000000 "
	"MAXINFLIGHT=64 ready\r\n";
static const unsigned int all_seals =
	F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL;
static const char *const state_files[] = {
	"r1.journal", "r1.acked", "r1.id", "r1.dirty",
};
#define N_STATE_FILES (sizeof(state_files) / sizeof(state_files[0]))

/* The replica played by a thread of the test. */
struct replica {
	int lsock;                  /* listening TCP socket on 127.0.0.1 */
	SSL_CTX *ctx;               /* server context, throw-away certificate */
	pthread_mutex_t mu;         /* guards seen */
	char seen[65536];           /* "C<conn>: <line>" and "LIT:<literal>" */
	bool temp_no_sent;          /* the one temporary NO was answered */
	unsigned poison_nos;        /* temporary NOs answered to "poison" */
};

/* The test as the supervisor of one repl-hook child. */
struct fx {
	struct replica replica;
	pthread_t thread;
	bool thread_started;
	char dir[32];               /* state_dir */
	char repl_dir[64];          /* <state_dir>/replication */
	struct policy_settings set; /* strings borrowed from fx and literals */
	SSL_CTX *client_ctx;        /* the hook's client context */
	int state_dirfd;
	int sup;                    /* supervisor end of the IPC pair */
	pid_t pid;                  /* the hook, 0 once reaped */
	char logs[16384];           /* the hook's PSEP_LOG lines */
	struct psep_msg m;          /* last message received (last: it ends
				     * in a flexible array) */
};

/* Appends s to the replica's transcript. */
static void
replica_record(struct replica *r, const char *s)
{
	pthread_mutex_lock(&r->mu);
	strncat(r->seen, s, sizeof(r->seen) - strlen(r->seen) - 1);
	pthread_mutex_unlock(&r->mu);
}

/*
 * Reads one line, up to and including its '\n', into buf (NUL-terminated).
 * Returns its length, or -1 when the connection ends first.
 */
static int
replica_read_line(SSL *ssl, char *buf, size_t size)
{
	size_t i = 0;
	char c;

	while (i + 1 < size) {
		if (SSL_read(ssl, &c, 1) != 1)
			return -1;
		buf[i++] = c;
		if (c == '\n')
			break;
	}
	buf[i] = '\0';
	return (int)i;
}

/*
 * If line announces a literal ("... {n}\r\n"), reads its n bytes and the
 * CRLF after them and records them as "LIT:<bytes>".
 */
static void
replica_read_literal(struct replica *r, SSL *ssl, const char *line)
{
	const char *brace = strrchr(line, '{');
	long want;
	long got = 0;
	char *buf;

	if (brace == NULL || strstr(line, "}\r\n") == NULL)
		return;
	want = atol(brace + 1) + 2;
	buf = xmalloc((size_t)want + 1);
	while (got < want) {
		int n = SSL_read(ssl, buf + got, (int)(want - got));

		if (n <= 0)
			break;
		got += n;
	}
	buf[got] = '\0';
	replica_record(r, "LIT:");
	replica_record(r, buf);
	free(buf);
}

/* Writes the tagged reply "<tag> <text>\r\n". */
static void
replica_reply(SSL *ssl, const char *tag, const char *text)
{
	char out[256];
	int len = snprintf(out, sizeof(out), "%s %s\r\n", tag, text);

	SSL_write(ssl, out, len);
}

/*
 * Answers one command line: no answer to "noreply" commands, one
 * temporary NO to the first STORE of "tempfail", a temporary NO to every
 * STORE of user "poison" (the connection stays open, as repld keeps it),
 * OK to the rest.  Returns false when the replica closes the connection
 * (LOGOUT, the one temporary NO).
 */
static bool
replica_answer(struct replica *r, SSL *ssl, const char *line)
{
	char tag[64] = "";

	if (sscanf(line, "%63s", tag) != 1)
		tag[0] = '\0';
	if (strstr(line, " LOGOUT") != NULL)
		return false;
	if (strstr(line, "noreply") != NULL)
		return true;
	if (strstr(line, "STORE") != NULL && strstr(line, "tempfail") != NULL &&
	    !r->temp_no_sent) {
		r->temp_no_sent = true;
		replica_reply(ssl, tag, "NO [UNAVAILABLE] try later");
		return false;
	}
	if (strstr(line, " STORE a.example ") != NULL &&
	    strstr(line, " poison INBOX ") != NULL) {
		r->poison_nos++;
		replica_reply(ssl, tag, "NO [UNAVAILABLE] writer unavailable");
		return true;
	}
	replica_reply(ssl, tag, "OK done");
	return true;
}

/* Serves one accepted connection (takes fd); conn numbers its lines. */
static void
replica_serve(struct replica *r, int fd, int conn)
{
	SSL *ssl = SSL_new(r->ctx);
	char line[9000];
	char rec[9100];

	SSL_set_fd(ssl, fd);
	if (SSL_accept(ssl) != 1) {
		fprintf(stderr, "# replica: TLS accept failed\n");
		goto out;
	}
	SSL_write(ssl, greeting, (int)strlen(greeting));
	while (replica_read_line(ssl, line, sizeof(line)) > 0) {
		snprintf(rec, sizeof(rec), "C%d: %s", conn, line);
		replica_record(r, rec);
		replica_read_literal(r, ssl, line);
		if (!replica_answer(r, ssl, line))
			break;
	}
	SSL_shutdown(ssl);
out:
	SSL_free(ssl);
	close(fd);
}

/* Thread body: serves REPLICA_CONNS connections one after the other, or
 * fewer if the listening socket is shut down. */
static void *
replica_thread(void *arg)
{
	struct replica *r = arg;

	for (int conn = 0; conn < REPLICA_CONNS; conn++) {
		int fd = accept4(r->lsock, NULL, NULL, SOCK_CLOEXEC);

		if (fd < 0)
			break;
		replica_serve(r, fd, conn);
	}
	return NULL;
}

/*
 * Makes a TLS server context with a self-signed P-256 certificate for
 * CN=b, valid for one hour.  Caller frees with SSL_CTX_free.
 */
static SSL_CTX *
replica_tls_ctx(void)
{
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	X509_NAME *name;
	SSL_CTX *ctx;

	assert_non_null(key);
	assert_non_null(x);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, key);
	name = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
				   (const unsigned char *)"b", -1, -1, 0);
	X509_set_issuer_name(x, name);
	X509_sign(x, key, EVP_sha256());
	ctx = SSL_CTX_new(TLS_server_method());
	assert_non_null(ctx);
	assert_int_equal(SSL_CTX_use_certificate(ctx, x), 1);
	assert_int_equal(SSL_CTX_use_PrivateKey(ctx, key), 1);
	X509_free(x);
	EVP_PKEY_free(key);
	return ctx;
}

/* Opens the replica's listener on an ephemeral loopback port; returns
 * the port. */
static uint16_t
replica_listen(struct replica *r)
{
	struct sockaddr_in a = {
		.sin_family = AF_INET,
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK),
	};
	socklen_t alen = sizeof(a);

	r->lsock = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(r->lsock >= 0);
	assert_int_equal(bind(r->lsock, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(r->lsock, 4), 0);
	assert_int_equal(getsockname(r->lsock, (struct sockaddr *)&a, &alen), 0);
	return ntohs(a.sin_port);
}

/* Returns a sealed memfd holding data (may be ""); caller closes it. */
static int
sealed_memfd(const char *name, const char *data)
{
	int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
	ssize_t len = (ssize_t)strlen(data);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, (size_t)len), len);
	assert_int_equal(fcntl(fd, F_ADD_SEALS, all_seals), 0);
	return fd;
}

/* Answers a USERS_REQ with no users (an empty sealed memfd). */
static void
sup_answer_users(struct fx *f)
{
	struct psep_users_rep rep = { 0 };
	int fd = sealed_memfd("users", "");

	assert_int_equal(psep_msg_send(f->sup, PSEP_USERS_REP, f->m.hdr.id,
				       &rep, sizeof(rep), fd), 0);
	close(fd);
}

/* Answers a REPL_REQ (a resync read) with NO [NONEXISTENT]. */
static void
sup_answer_repl(struct fx *f)
{
	struct psep_repl_rep rep = { .status = PSEP_RS_NO };

	snprintf(rep.code, sizeof(rep.code), "NONEXISTENT");
	assert_int_equal(psep_msg_send(f->sup, PSEP_REPL_REP, f->m.hdr.id,
				       &rep, sizeof(rep), -1), 0);
}

/*
 * Handles f->m if it is not for the test: prints a PSEP_LOG line, answers
 * a USERS_REQ or a REPL_REQ.  Returns whether it did.
 */
static bool
sup_handle_aside(struct fx *f)
{
	if (f->m.hdr.type == PSEP_LOG) {
		size_t have = strlen(f->logs);

		fprintf(stderr, "#   hook: %.*s\n", (int)f->m.u.log.text_len,
			f->m.u.log.text);
		snprintf(f->logs + have, sizeof(f->logs) - have, "%.*s\n",
			 (int)f->m.u.log.text_len, f->m.u.log.text);
	} else if (f->m.hdr.type == PSEP_USERS_REQ)
		sup_answer_users(f);
	else if (f->m.hdr.type == PSEP_REPL_REQ)
		sup_answer_repl(f);
	else
		return false;
	return true;
}

/*
 * Receives the next message for the test into f->m, within timeout_ms;
 * what sup_handle_aside handles is consumed on the way.  Returns 0, or -1
 * on timeout or when the hook closed or misbehaved.
 */
static int
sup_recv(struct fx *f, int timeout_ms)
{
	const char *why = NULL;
	struct pollfd p = { .fd = f->sup, .events = POLLIN };

	for (;;) {
		if (poll(&p, 1, timeout_ms) <= 0)
			return -1;
		if (psep_msg_recv(f->sup, PSEP_ROLE_REPL_HOOK, PSEP_STATE_READY,
				  &f->m, &why) == -1) {
			fprintf(stderr, "# recv: %s\n", why ? why : strerror(errno));
			return -1;
		}
		if (!sup_handle_aside(f))
			return 0;
		psep_msg_clear(&f->m);
	}
}

/* Answers the hook's HELLO_REQ as the supervisor. */
static void
sup_hello(struct fx *f)
{
	struct psep_hello hello = {
		.version = PSEP_PROTO_VERSION,
		.role = PSEP_ROLE_SUPERVISOR,
	};
	const char *why = NULL;

	assert_int_equal(psep_msg_recv(f->sup, PSEP_ROLE_REPL_HOOK,
				       PSEP_STATE_NEW, &f->m, &why), 0);
	assert_int_equal(f->m.hdr.type, PSEP_HELLO_REQ);
	assert_int_equal(psep_msg_send(f->sup, PSEP_HELLO_REP, f->m.hdr.id,
				       &hello, sizeof(hello), -1), 0);
	psep_msg_clear(&f->m);
}

/* One event sent to the hook. */
struct event {
	uint64_t id;
	uint32_t op;                /* enum psep_repl_op */
	const char *flags;
	const char *body;           /* SAVE: the message, else NULL */
	uint32_t want_acks;
	uint64_t timeout_ms;
	const char *user;           /* NULL: alice */
};

/*
 * Sends ev as an EVENT_REQ for the INBOX of its user, stamp a.example 5; a
 * body goes in a sealed memfd after the prefix "X-P: 1\r\n", with uid_hint
 * 7.
 */
static void
sup_send_event(struct fx *f, const struct event *ev)
{
	static union {
		struct psep_event_req e;
		unsigned char raw[PSEP_MSG_MAX];
	} u;
	struct psep_repl_cmd *cmd = &u.e.cmd;
	size_t len = sizeof(u.e);
	int fd = -1;

	memset(&u, 0, sizeof(u));
	cmd->op = ev->op;
	cmd->modseq = 5;
	cmd->date = 1718000000;
	snprintf(cmd->origin, sizeof(cmd->origin), "a.example");
	snprintf(cmd->user, sizeof(cmd->user), "%s",
		 ev->user != NULL ? ev->user : "alice");
	snprintf(cmd->mailbox, sizeof(cmd->mailbox), "INBOX");
	snprintf(cmd->guid, sizeof(cmd->guid), "0190f3a2b4c8d2a1e5f6a7b8c9d0e1f2");
	snprintf(cmd->flags, sizeof(cmd->flags), "%s", ev->flags);
	u.e.want_acks = ev->want_acks;
	u.e.timeout_ms = ev->timeout_ms;
	if (ev->body != NULL) {
		fd = sealed_memfd("body", ev->body);
		cmd->body_size = strlen(ev->body);
		cmd->uid_hint = 7;
		memcpy(u.e.prefix, "X-P: 1\r\n", 8);
		u.e.prefix_len = 8;
		len += 8;
	}
	assert_int_equal(psep_msg_send(f->sup, PSEP_EVENT_REQ, ev->id, &u, len, fd), 0);
	if (fd >= 0)
		close(fd);
}

/* Asserts that the next message, within wait_ms, is the EVENT_REP for id
 * with status. */
static void
sup_expect_reply_within(struct fx *f, uint64_t id, uint32_t status, int wait_ms)
{
	assert_int_equal(sup_recv(f, wait_ms), 0);
	assert_int_equal(f->m.hdr.type, PSEP_EVENT_REP);
	assert_int_equal(f->m.hdr.id, id);
	assert_int_equal(f->m.u.event_rep.status, status);
	psep_msg_clear(&f->m);
}

/* The same within REPLY_WAIT_MS. */
static void
sup_expect_reply(struct fx *f, uint64_t id, uint32_t status)
{
	sup_expect_reply_within(f, id, status, REPLY_WAIT_MS);
}

/* Fills f->set: server a.example, one replica r1 at 127.0.0.1:port. */
static void
fx_settings(struct fx *f, uint16_t port)
{
	struct policy_settings *set = &f->set;

	set->server_id = "a.example";
	set->hostname = "a";
	set->state_dir = f->dir;
	set->replication_journal_max_size = 1 << 20;
	set->replication_sync_timeout = 2000;
	set->lmtp_max_message_size = 1 << 20;
	set->n_replicas = 1;
	snprintf(set->replicas[0].name, sizeof(set->replicas[0].name), "r1");
	snprintf(set->replicas[0].host, sizeof(set->replicas[0].host), "127.0.0.1");
	set->replicas[0].port = port;
}

/* Forks repl_hook_main on one end of a SEQPACKET pair; keeps the other. */
static void
fx_spawn_hook(struct fx *f)
{
	struct hook_args args = {
		.set = &f->set,
		.tls_fds = { .cert = -1, .key = -1, .ca = -1 },
		.tls_client_ctx = f->client_ctx,
		.state_dirfd = f->state_dirfd,
	};
	int sp[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp), 0);
	f->pid = fork();
	assert_true(f->pid >= 0);
	if (f->pid == 0) {
		close(sp[0]);
		close(f->replica.lsock);
		_exit(repl_hook_main(&args, sp[1]));
	}
	close(sp[1]);
	f->sup = sp[0];
}

/* Creates the state tree and the replica, starts the hook and the
 * replica thread, and answers HELLO. */
static int
setup(void **state)
{
	struct fx *f = xcalloc(1, sizeof(*f));
	uint16_t port;

	f->sup = -1;
	f->state_dirfd = -1;
	f->replica.lsock = -1;
	f->m.fd = -1;
	pthread_mutex_init(&f->replica.mu, NULL);
	*state = f;
	signal(SIGPIPE, SIG_IGN);
	snprintf(f->dir, sizeof(f->dir), "/tmp/stowd-hook-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->repl_dir, sizeof(f->repl_dir), "%s/replication", f->dir);
	assert_int_equal(mkdir(f->repl_dir, 0700), 0);
	f->state_dirfd = open(f->repl_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(f->state_dirfd >= 0);
	f->replica.ctx = replica_tls_ctx();
	port = replica_listen(&f->replica);
	fx_settings(f, port);
	f->client_ctx = SSL_CTX_new(TLS_client_method());
	assert_non_null(f->client_ctx);
	fx_spawn_hook(f);
	assert_int_equal(pthread_create(&f->thread, NULL, replica_thread,
					&f->replica), 0);
	f->thread_started = true;
	sup_hello(f);
	return 0;
}

/* Stops the hook if it still runs, stops the replica thread, frees
 * everything and removes the state tree. */
static int
teardown(void **state)
{
	struct fx *f = *state;

	if (f->pid > 0) {
		kill(f->pid, SIGKILL);
		waitpid(f->pid, NULL, 0);
	}
	if (f->sup >= 0)
		close(f->sup);
	psep_msg_clear(&f->m);
	if (f->replica.lsock >= 0) {
		shutdown(f->replica.lsock, SHUT_RDWR);
		close(f->replica.lsock);
	}
	if (f->thread_started)
		pthread_join(f->thread, NULL);
	SSL_CTX_free(f->client_ctx);
	SSL_CTX_free(f->replica.ctx);
	pthread_mutex_destroy(&f->replica.mu);
	if (f->state_dirfd >= 0) {
		for (size_t i = 0; i < N_STATE_FILES; i++)
			(void)unlinkat(f->state_dirfd, state_files[i], 0);
		close(f->state_dirfd);
	}
	rmdir(f->repl_dir);
	rmdir(f->dir);
	free(f);
	return 0;
}

/* Sends SHUTDOWN, drains what the hook still says and reaps it. */
static void
fx_shutdown_hook(struct fx *f)
{
	int st;

	assert_int_equal(psep_msg_send(f->sup, PSEP_SHUTDOWN, 999, NULL, 0, -1), 0);
	while (sup_recv(f, SHUTDOWN_WAIT_MS) == 0)
		psep_msg_clear(&f->m);
	assert_int_equal(waitpid(f->pid, &st, 0), f->pid);
	f->pid = 0;
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

/* Reads the replication state file name of the test's replica into buf
 * (NUL-terminated, at most size - 1 bytes). */
static void
read_state_file(struct fx *f, const char *name, char *buf, size_t size)
{
	int fd = openat(f->state_dirfd, name, O_RDONLY | O_CLOEXEC);

	assert_true(fd >= 0);
	memset(buf, 0, size);
	assert_true(read(fd, buf, size - 1) > 0);
	close(fd);
}

static void
test_hook_events_end_to_end(void **state)
{
	static const struct event events[] = {
		{ 100, PSEP_REPL_STORE, "+\\Seen", NULL, 1, 5000 },
		{ 101, PSEP_REPL_SAVE, "\\Seen", "Subject: hi\r\n\r\nbody\r\n", 1, 5000 },
		{ 102, PSEP_REPL_STORE, "+\\Flagged", NULL, 0, 0 },
		/* temporary NO: the connection is closed, the entry resent on
		 * the next one (after the first backoff), then acknowledged */
		{ 103, PSEP_REPL_STORE, "+tempfail", NULL, 1, 10000 },
		/* no reply at all: TIMEOUT after timeout_ms, the entry stays */
		{ 104, PSEP_REPL_STORE, "+noreply", NULL, 1, 300 },
	};
	static const uint32_t statuses[] = {
		PSEP_EV_ACKED, PSEP_EV_ACKED, PSEP_EV_JOURNALED, PSEP_EV_ACKED,
		PSEP_EV_TIMEOUT,
	};
	struct fx *f = *state;
	struct stat sb;
	char id[64];

	for (size_t i = 0; i < sizeof(events) / sizeof(events[0]); i++) {
		sup_send_event(f, &events[i]);
		sup_expect_reply(f, events[i].id, statuses[i]);
	}
	assert_int_equal(fstatat(f->state_dirfd, "r1.journal", &sb, 0), 0);
	assert_true(sb.st_size > 0);               /* 104 is not acknowledged */
	fx_shutdown_hook(f);

	pthread_mutex_lock(&f->replica.mu);
	assert_non_null(strstr(f->replica.seen, "C0: h1 HELLO 1 a.example\r\n"));
	assert_non_null(strstr(f->replica.seen,
			       "C0: j2 SAVE a.example 5 alice INBOX "
			       "0190f3a2b4c8d2a1e5f6a7b8c9d0e1f2 7 1718000000 (\\Seen) {29}\r\n"
			       "LIT:X-P: 1\r\nSubject: hi\r\n\r\nbody\r\n\r\n"));
	assert_non_null(strstr(f->replica.seen, "C0: j4 STORE"));
	assert_non_null(strstr(f->replica.seen, "C1: j4 STORE"));   /* resent */
	assert_non_null(strstr(f->replica.seen, "C1: j5 STORE"));
	pthread_mutex_unlock(&f->replica.mu);

	read_state_file(f, "r1.id", id, sizeof(id));
	assert_string_equal(id, "b.example\n");
}

/* Counts the occurrences of needle in the replica's transcript. */
static unsigned
replica_count(struct fx *f, const char *needle)
{
	unsigned n = 0;

	pthread_mutex_lock(&f->replica.mu);
	for (const char *p = f->replica.seen; (p = strstr(p, needle)) != NULL; p++)
		n++;
	pthread_mutex_unlock(&f->replica.mu);
	return n;
}

static void
test_hook_poisoned_entry_dropped(void **state)
{
	/* j1 gets NO [UNAVAILABLE] every time; j2 waits behind it */
	static const struct event poisoned = {
		200, PSEP_REPL_STORE, "+\\Seen", NULL, 0, 0, "poison",
	};
	static const struct event behind = {
		201, PSEP_REPL_STORE, "+\\Flagged", NULL, 1, POISON_WAIT_MS, NULL,
	};
	static const struct event after = {
		202, PSEP_REPL_STORE, "+\\Answered", NULL, 1, 5000, NULL,
	};
	struct fx *f = *state;
	struct timespec t0, t1;
	char dirty[256], line[256];
	uint64_t ms;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	sup_send_event(f, &poisoned);
	sup_expect_reply(f, poisoned.id, PSEP_EV_JOURNALED);
	sup_send_event(f, &behind);
	/* acknowledged once j1 is dropped, on the connection of its last try */
	sup_expect_reply_within(f, behind.id, PSEP_EV_ACKED, POISON_WAIT_MS);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ms = (uint64_t)(t1.tv_sec - t0.tv_sec) * 1000u +
	     (uint64_t)(t1.tv_nsec / 1000000) - (uint64_t)(t0.tv_nsec / 1000000);
	assert_true(ms + 500 >= POISON_BACKOFF_MS);   /* the backoff was kept */
	/* the journal flows: a new entry is acknowledged at once */
	sup_send_event(f, &after);
	sup_expect_reply(f, after.id, PSEP_EV_ACKED);

	read_state_file(f, "r1.dirty", dirty, sizeof(dirty));
	assert_non_null(strstr(dirty, "poison\tINBOX\n"));
	fx_shutdown_hook(f);

	/* tried CONN_TEMP_NO_MAX times, one connection each, then not again */
	assert_int_equal(f->replica.poison_nos, CONN_TEMP_NO_MAX);
	assert_int_equal(replica_count(f, " j1 STORE a.example 5 poison INBOX "),
			 CONN_TEMP_NO_MAX);
	assert_int_equal(replica_count(f, "C4: j1 STORE"), 1);
	assert_int_equal(replica_count(f, "C4: j2 STORE"), 1);
	assert_int_equal(replica_count(f, "C4: j3 STORE"), 1);
	snprintf(line, sizeof(line), "replica=r1 user=poison mailbox=INBOX seq=1 "
		 "NO [UNAVAILABLE] writer unavailable: dropped after %u temporary "
		 "failures, mailbox marked for sync", CONN_TEMP_NO_MAX);
	assert_non_null(strstr(f->logs, line));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_hook_events_end_to_end,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_hook_poisoned_entry_dropped,
						setup, teardown),
	};
	char ms[16];

	/* the back-offs of a test build, shortened: read by repl-hook */
	snprintf(ms, sizeof(ms), "%u", BACKOFF_MIN_MS);
	setenv("STOWD_TEST_BACKOFF_MIN_MS", ms, 1);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
