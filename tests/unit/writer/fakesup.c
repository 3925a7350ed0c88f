/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/writer/fakesup.c - a scripted supervisor for the writer
 * tests (see fakesup.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "policy/policy.h"
#include "tests/unit/writer/fakesup.h"
#include "tests/unit/writer/mock.h"

static const char body[] = "Subject: t\r\n\r\nhello\r\n";

void
sup_pair(int sv[2])
{
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
}

void
sup_queue_hello(int fd)
{
	struct psep_hello h = { .version = PSEP_PROTO_VERSION,
				.role = PSEP_ROLE_SUPERVISOR };

	assert_int_equal(psep_msg_send(fd, PSEP_HELLO_REP, 1, &h, sizeof(h), -1), 0);
}

static int
sealed_body(void)
{
	int fd = memfd_create("body", MFD_CLOEXEC | MFD_ALLOW_SEALING);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, body, sizeof(body) - 1), (ssize_t)sizeof(body) - 1);
	assert_int_equal(fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_GROW |
			       F_SEAL_SHRINK | F_SEAL_SEAL), 0);
	return fd;
}

int
sup_queue_write(int fd, uint64_t id, const struct sup_creds *c)
{
	struct psep_write_req *r = calloc(1, sizeof(*r));
	int body_fd = sealed_body(), ret;

	assert_non_null(r);
	r->uid = c->uid;
	r->gid = c->gid;
	r->ngroups = c->ngroups;
	memcpy(r->groups, c->groups, sizeof(c->groups));
	r->body_size = sizeof(body) - 1;
	r->body_vsize = sizeof(body) - 1;
	snprintf(r->session, sizeof(r->session), "s1");
	snprintf(r->user, sizeof(r->user), "u%u", (unsigned)c->uid);
	snprintf(r->mail_base, sizeof(r->mail_base), "/nonexistent/mail");
	snprintf(r->mail_rel, sizeof(r->mail_rel), "u/Maildir");
	snprintf(r->mailbox, sizeof(r->mailbox), "INBOX");
	snprintf(r->guid, sizeof(r->guid), "0123456789abcdef0123456789abcdef");
	ret = psep_msg_send(fd, PSEP_WRITE_REQ, id, r, sizeof(*r), body_fd);
	close(body_fd);
	free(r);
	return ret;
}

void
sup_queue_shutdown(int fd)
{
	assert_int_equal(psep_msg_send(fd, PSEP_SHUTDOWN, 99, NULL, 0, -1), 0);
}

static void
sup_one(const struct psep_msg *m, struct sup_seen *out)
{
	const struct psep_write_rep *w = &m->u.write_rep;

	switch (m->hdr.type) {
	case PSEP_HELLO_REQ:
		out->hello++;
		break;
	case PSEP_LOG:
		out->logs++;
		break;
	case PSEP_WRITE_REP:
		if (out->nreps == SUP_MAX_REPS) {
			out->other++;
			break;
		}
		out->reps[out->nreps].id = m->hdr.id;
		out->reps[out->nreps].err = w->err;
		out->reps[out->nreps].imap_uid = w->imap_uid;
		memcpy(out->reps[out->nreps].what, w->what, sizeof(w->what));
		out->nreps++;
		break;
	default:
		out->other++;
		break;
	}
}

void
sup_collect(int fd, enum psep_role role, struct sup_seen *out)
{
	struct psep_msg *m = calloc(1, sizeof(*m));
	enum psep_state state = PSEP_STATE_NEW;
	const char *why;

	assert_non_null(m);
	memset(out, 0, sizeof(*out));
	assert_int_equal(fcntl(fd, F_SETFL, O_NONBLOCK), 0);
	for (;;) {
		if (psep_msg_recv(fd, role, state, m, &why) < 0) {
			if (errno != EAGAIN)
				out->other++;
			break;
		}
		sup_one(m, out);
		psep_msg_clear(m);
		state = PSEP_STATE_READY;
	}
	free(m);
}

static struct policy_settings settings = {
	.hostname = (char *)"test.example",
	.server_id = (char *)"test",
};

static void
sup_queue_all(int fd, const struct sup_creds *reqs, size_t n)
{
	size_t i;

	sup_queue_hello(fd);
	for (i = 0; i < n; i++)
		assert_int_equal(sup_queue_write(fd, 10 + i, &reqs[i]), 0);
	sup_queue_shutdown(fd);
}

int
sup_run(int (*fn)(void *arg, int ipc), enum psep_role role,
	const struct sup_creds *reqs, size_t n, struct sup_seen *seen)
{
	int sv[2], rc;

	sup_pair(sv);
	sup_queue_all(sv[0], reqs, n);
	rc = fn(&settings, sv[1]);
	sup_collect(sv[0], role, seen);
	close(sv[1]);
	close(sv[0]);
	return rc;
}

int
sup_run_forked(int (*fn)(void *arg, int ipc), enum psep_role role,
	       const struct sup_creds *reqs, size_t n, struct sup_seen *seen,
	       int *saves_out)
{
	char marks[16];
	int sv[2], pipefd[2], status;
	ssize_t got;
	pid_t pid;

	sup_pair(sv);
	assert_int_equal(pipe2(pipefd, O_CLOEXEC), 0);
	sup_queue_all(sv[0], reqs, n);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(sv[0]);
		close(pipefd[0]);
		mock.save_mark_fd = pipefd[1];
		_exit(fn(&settings, sv[1]));
	}
	close(pipefd[1]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	got = read(pipefd[0], marks, sizeof(marks));
	assert_true(got >= 0);
	*saves_out = (int)got;
	close(pipefd[0]);
	sup_collect(sv[0], role, seen);
	close(sv[1]);
	close(sv[0]);
	return status;
}
