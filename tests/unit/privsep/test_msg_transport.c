/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/privsep/test_msg_transport.c - psep_msg_recv's fd rules (none,
 * socket, sealed memfd; at most one; every received fd closed on error),
 * the transport (oversize datagrams, peer close, EAGAIN) and psep_msg_send.
 *
 * Runs in:  the test process only (no privilege needed).
 * Method:   as test_msg.c (msgcase.c helpers); fd leaks are checked with
 *           /proc/self/fd and fcntl(F_GETFD) before and after each case.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "msgcase.h"

static struct psep_msg rx_msg;

/* ---- fds ---------------------------------------------------------------- */

static void
test_missing_fd_rejected_where_required(void **state)
{
	struct pair *p = *state;
	size_t i;

	for (i = 0; i < msg_ncases; i++) {
		const struct mcase *c = &msg_cases[i];

		if (c->fd == TFD_NONE)
			continue;
		dg_build(c, &p->d);
		send_dgram(p->tx, &p->d, TFD_NONE, 0);
		expect_reject(p->rx, valid_role(c), valid_state(c), c->name);
		assert_no_fd_leak(&p->before, c->name);
	}
}

static void
test_fd_rejected_and_closed_where_none_allowed(void **state)
{
	static const enum fdmake kinds[] = { FM_PIPE, FM_SOCKET, FM_MEMFD_SEALED };
	struct pair *p = *state;
	char what[96];
	size_t i, k;

	for (i = 0; i < msg_ncases; i++) {
		const struct mcase *c = &msg_cases[i];

		if (c->fd != TFD_NONE)
			continue;
		for (k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
			int fd = fd_make(kinds[k]);

			dg_build(c, &p->d);
			send_raw(p->tx, p->d.buf, p->d.len, &fd, 1);
			close(fd);
			snprintf(what, sizeof(what), "%s with an fd (kind %d)", c->name,
				 (int)kinds[k]);
			expect_reject(p->rx, valid_role(c), valid_state(c), what);
			assert_no_fd_leak(&p->before, what);
		}
	}
}

struct fd_case {
	const char *name;
	uint16_t type;
	enum fdmake make;
	bool accept;
};

static const struct fd_case fd_cases[] = {
	{ "CLIENT_FD with a stream socket", PSEP_CLIENT_FD, FM_SOCKET, true },
	{ "CLIENT_FD with a seqpacket socket", PSEP_CLIENT_FD, FM_SEQPACKET, true },
	{ "CLIENT_FD with a pipe", PSEP_CLIENT_FD, FM_PIPE, false },
	{ "CLIENT_FD with a memfd", PSEP_CLIENT_FD, FM_MEMFD_SEALED, false },
	{ "CLIENT_FD with /dev/null", PSEP_CLIENT_FD, FM_DEVNULL, false },
	{ "CLIENT_FD with a directory", PSEP_CLIENT_FD, FM_DIR, false },
	{ "CLIENT_FD with a regular file", PSEP_CLIENT_FD, FM_TMPFILE, false },
};

static const struct fd_case body_fd_cases[] = {
	{ "sealed memfd", 0, FM_MEMFD_SEALED, true },
	{ "memfd sealed without F_SEAL_SEAL", 0, FM_MEMFD_NO_SEAL_SEAL, true },
	{ "unsealed memfd", 0, FM_MEMFD_UNSEALED, false },
	{ "memfd without sealing", 0, FM_MEMFD_NO_SEALING, false },
	{ "memfd sealed without F_SEAL_WRITE", 0, FM_MEMFD_NO_WRITE, false },
	{ "memfd with F_SEAL_FUTURE_WRITE only", 0, FM_MEMFD_FUTURE_WRITE, false },
	{ "memfd sealed without F_SEAL_GROW", 0, FM_MEMFD_NO_GROW, false },
	{ "memfd sealed without F_SEAL_SHRINK", 0, FM_MEMFD_NO_SHRINK, false },
	{ "memfd longer than body_size", 0, FM_MEMFD_LONGER, false },
	{ "memfd shorter than body_size", 0, FM_MEMFD_SHORTER, false },
	{ "empty memfd", 0, FM_MEMFD_EMPTY, false },
	{ "socket", 0, FM_SOCKET, false },
	{ "pipe", 0, FM_PIPE, false },
	{ "/dev/null", 0, FM_DEVNULL, false },
	{ "directory", 0, FM_DIR, false },
	{ "regular file with the right size", 0, FM_TMPFILE, false },
};

static void
run_fd_case(struct pair *p, uint16_t type, enum fdmake make, bool accept,
	    const char *what)
{
	const struct mcase *c = case_of(type);
	int fd = fd_make(make);

	dg_build(c, &p->d);
	send_raw(p->tx, p->d.buf, p->d.len, &fd, 1);
	close(fd);
	if (accept)
		expect_accept(p->rx, valid_role(c), valid_state(c), &p->d, c->fd, what);
	else
		expect_reject(p->rx, valid_role(c), valid_state(c), what);
	assert_no_fd_leak(&p->before, what);
}

static void
test_client_fd_kind_checked(void **state)
{
	size_t i;

	for (i = 0; i < sizeof(fd_cases) / sizeof(fd_cases[0]); i++)
		run_fd_case(*state, fd_cases[i].type, fd_cases[i].make,
			    fd_cases[i].accept, fd_cases[i].name);
}

static void
test_body_fd_kind_seals_and_size_checked(void **state)
{
	static const uint16_t types[] = { PSEP_DELIVER_REQ, PSEP_WRITE_REQ };
	char what[128];
	size_t i, k;

	for (k = 0; k < sizeof(types) / sizeof(types[0]); k++) {
		for (i = 0; i < sizeof(body_fd_cases) / sizeof(body_fd_cases[0]); i++) {
			snprintf(what, sizeof(what), "%s with %s",
				 psep_type_name(types[k]), body_fd_cases[i].name);
			run_fd_case(*state, types[k], body_fd_cases[i].make,
				    body_fd_cases[i].accept, what);
		}
	}
}

/* An empty body is consistent when body_size and vsize say 0. */
static void
test_empty_body_with_size_zero_accepted(void **state)
{
	static const uint16_t types[] = { PSEP_DELIVER_REQ, PSEP_WRITE_REQ };
	struct pair *p = *state;
	size_t k;

	for (k = 0; k < sizeof(types) / sizeof(types[0]); k++) {
		const struct mcase *c = case_of(types[k]);
		int fd = fd_make(FM_MEMFD_EMPTY);
		uint64_t zero = 0;
		size_t off_size = types[k] == PSEP_DELIVER_REQ ?
			offsetof(struct psep_deliver_req, body_size) :
			offsetof(struct psep_write_req, body_size);
		size_t off_vsize = types[k] == PSEP_DELIVER_REQ ?
			offsetof(struct psep_deliver_req, body_vsize) :
			offsetof(struct psep_write_req, body_vsize);

		dg_build(c, &p->d);
		memcpy(dg_body(&p->d) + off_size, &zero, 8);
		memcpy(dg_body(&p->d) + off_vsize, &zero, 8);
		send_raw(p->tx, p->d.buf, p->d.len, &fd, 1);
		close(fd);
		expect_accept(p->rx, valid_role(c), valid_state(c), &p->d, c->fd, c->name);
		assert_no_fd_leak(&p->before, c->name);
	}
}

static void
test_two_or_more_fds_rejected_and_all_closed(void **state)
{
	static const size_t counts[] = { 2, 3, 4, 5, 8, MAX_SEND_FDS };
	struct pair *p = *state;
	int fds[MAX_SEND_FDS];
	char what[96];
	size_t i, k, j;

	for (i = 0; i < msg_ncases; i++) {
		const struct mcase *c = &msg_cases[i];

		for (k = 0; k < sizeof(counts) / sizeof(counts[0]); k++) {
			for (j = 0; j < counts[k]; j++)
				/* pipes stand in for inotify instances, which
				 * fs.inotify.max_user_instances (128) bounds */
				fds[j] = c->fd == TFD_NONE || c->fd == TFD_INOTIFY ?
					 make_pipe() : make_fd_for(c->fd);
			dg_build(c, &p->d);
			send_raw(p->tx, p->d.buf, p->d.len, fds, counts[k]);
			for (j = 0; j < counts[k]; j++)
				close(fds[j]);
			snprintf(what, sizeof(what), "%s with %zu fds", c->name, counts[k]);
			expect_reject(p->rx, valid_role(c), valid_state(c), what);
			assert_no_fd_leak(&p->before, what);
		}
	}
}

/* ---- transport ---------------------------------------------------------- */

static void
test_datagram_larger_than_msg_max_rejected(void **state)
{
	static const size_t sizes[] = { PSEP_MSG_MAX + 1, PSEP_MSG_MAX + 8,
					2 * PSEP_MSG_MAX, 4 * PSEP_MSG_MAX };
	struct pair *p = *state;
	char what[96];
	size_t i;

	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		int fd = make_sealed_body();

		/* A LOG whose fields agree with the full datagram: only the
		 * size is wrong. */
		dg_build(case_of(PSEP_LOG), &p->d);
		((struct psep_log *)(void *)dg_body(&p->d))->text_len =
			(uint32_t)(sizes[i] - HDR_LEN - sizeof(struct psep_log));
		dg_set_len(&p->d, sizes[i]);
		send_raw(p->tx, p->d.buf, p->d.len, &fd, 1);
		close(fd);
		snprintf(what, sizeof(what), "%zu-byte datagram with an fd", sizes[i]);
		expect_reject(p->rx, PSEP_ROLE_LMTPD, PSEP_STATE_READY, what);
		assert_queue_empty(p);
		assert_no_fd_leak(&p->before, what);
	}
}

static void
test_peer_close_returns_econnreset(void **state)
{
	struct pair *p = *state;
	const char *why = NULL;

	close(p->tx);
	p->tx = -1;
	fd_snap(&p->before);
	errno = 0;
	assert_int_equal(psep_msg_recv(p->rx, PSEP_ROLE_LMTPD, PSEP_STATE_READY,
				       &rx_msg, &why), -1);
	assert_int_equal(errno, ECONNRESET);
	assert_non_null(why);
	assert_string_equal(why, "peer closed");
	assert_int_equal(rx_msg.fd, -1);
	assert_no_fd_leak(&p->before, "peer close");
}

static void
test_queued_message_delivered_before_econnreset(void **state)
{
	struct pair *p = *state;
	const struct mcase *c = case_of(PSEP_DELIVER_REQ);
	const char *why = NULL;

	dg_build(c, &p->d);
	send_dgram(p->tx, &p->d, c->fd, 1);
	close(p->tx);
	p->tx = -1;
	fd_snap(&p->before);
	expect_accept(p->rx, PSEP_ROLE_LMTPD, PSEP_STATE_READY, &p->d, c->fd, c->name);
	assert_int_equal(psep_msg_recv(p->rx, PSEP_ROLE_LMTPD, PSEP_STATE_READY,
				       &rx_msg, &why), -1);
	assert_int_equal(errno, ECONNRESET);
	assert_no_fd_leak(&p->before, "message then close");
}

static void
test_nothing_queued_returns_eagain(void **state)
{
	struct pair *p = *state;
	const char *why = NULL;

	errno = 0;
	assert_int_equal(psep_msg_recv(p->rx, PSEP_ROLE_LMTPD, PSEP_STATE_READY,
				       &rx_msg, &why), -1);
	assert_int_equal(errno, EAGAIN);
	assert_int_equal(rx_msg.fd, -1);
}

/* After a rejected message the next valid one is read intact. */
static void
test_rejection_does_not_desynchronise_the_stream(void **state)
{
	struct pair *p = *state;
	const struct mcase *c = case_of(PSEP_RCPT_REQ);
	struct dgram *bad = malloc(sizeof(*bad));

	assert_non_null(bad);
	dg_build(c, bad);
	dg_set_len(bad, PSEP_MSG_MAX + 100);
	send_dgram(p->tx, bad, TFD_NONE, 0);
	free(bad);
	dg_build(c, &p->d);
	send_dgram(p->tx, &p->d, TFD_NONE, 0);
	expect_reject(p->rx, PSEP_ROLE_LMTPD, PSEP_STATE_READY, "oversize");
	expect_accept(p->rx, PSEP_ROLE_LMTPD, PSEP_STATE_READY, &p->d, TFD_NONE,
		      "after oversize");
}

/* ---- psep_msg_send ------------------------------------------------------ */

static void
test_send_then_recv_every_type_round_trip(void **state)
{
	struct pair *p = *state;
	size_t i;

	for (i = 0; i < msg_ncases; i++) {
		const struct mcase *c = &msg_cases[i];
		int fd = make_fd_for(c->fd);

		dg_build(c, &p->d);
		assert_int_equal(psep_msg_send(p->tx, c->type, MSG_ID, dg_body(&p->d),
					       p->d.len - HDR_LEN, fd), 0);
		if (fd >= 0) {
			/* Not consumed: the caller still owns it. */
			assert_true(fcntl(fd, F_GETFD) >= 0);
			close(fd);
		}
		expect_accept(p->rx, valid_role(c), valid_state(c), &p->d, c->fd, c->name);
		assert_no_fd_leak(&p->before, c->name);
	}
}

static void
test_send_with_fd_delivers_the_same_file(void **state)
{
	struct pair *p = *state;
	const struct mcase *c = case_of(PSEP_WRITE_REQ);
	int fd = make_sealed_body();
	const char *why = NULL;
	struct stat a, b;
	char buf[64];

	dg_build(c, &p->d);
	assert_int_equal(psep_msg_send(p->tx, PSEP_WRITE_REQ, 42, dg_body(&p->d),
				       p->d.len - HDR_LEN, fd), 0);
	assert_int_equal(psep_msg_recv(p->rx, PSEP_ROLE_SUPERVISOR, PSEP_STATE_READY,
				       &rx_msg, &why), 0);
	assert_int_equal(rx_msg.hdr.id, 42);
	assert_int_equal(rx_msg.hdr.flags, 0);
	assert_int_equal(rx_msg.u.write_req.uid, 1000);
	assert_memory_equal(rx_msg.u.write_req.prefix, TEST_PREFIX, PREFIX_LEN);
	assert_int_equal(fstat(fd, &a), 0);
	assert_int_equal(fstat(rx_msg.fd, &b), 0);
	assert_int_equal(a.st_ino, b.st_ino);
	assert_int_equal(a.st_dev, b.st_dev);
	assert_int_equal(pread(rx_msg.fd, buf, sizeof(buf), 0), (ssize_t)BODY_LEN);
	assert_memory_equal(buf, TEST_BODY, BODY_LEN);
	assert_int_not_equal(rx_msg.fd, fd);
	psep_msg_clear(&rx_msg);
	close(fd);
	assert_no_fd_leak(&p->before, "send with fd");
}

static void
test_send_body_of_max_size_sent_whole(void **state)
{
	struct pair *p = *state;
	static unsigned char body[PSEP_MSG_MAX];
	static unsigned char got[PSEP_MSG_MAX + 16];

	memset(body, 'x', sizeof(body));
	assert_int_equal(psep_msg_send(p->tx, PSEP_LOG, 1, body, PSEP_MSG_MAX - HDR_LEN,
				       -1), 0);
	assert_int_equal(recv(p->rx, got, sizeof(got), 0), (ssize_t)PSEP_MSG_MAX);
	assert_int_equal(((struct psep_hdr *)(void *)got)->len, PSEP_MSG_MAX);
}

static void
test_send_oversize_body_returns_emsgsize_and_sends_nothing(void **state)
{
	struct pair *p = *state;
	static unsigned char body[PSEP_MSG_MAX * 2];
	static const size_t lens[] = { PSEP_MSG_MAX - HDR_LEN + 1, PSEP_MSG_MAX,
				       sizeof(body) };
	size_t i;

	for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		errno = 0;
		assert_int_equal(psep_msg_send(p->tx, PSEP_LOG, 1, body, lens[i], -1), -1);
		assert_int_equal(errno, EMSGSIZE);
		assert_queue_empty(p);
	}
}

/* A body_len near SIZE_MAX must not wrap the size check. */
static void
test_send_huge_body_len_returns_emsgsize(void **state)
{
	struct pair *p = *state;
	static unsigned char body[64];
	static const size_t lens[] = { SIZE_MAX, SIZE_MAX - HDR_LEN + 1,
				       SIZE_MAX - HDR_LEN + 8 };
	size_t i;

	for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		errno = 0;
		assert_int_equal(psep_msg_send(p->tx, PSEP_LOG, 1, body, lens[i], -1), -1);
		if (errno != EMSGSIZE)
			fail_msg("body_len %zu: errno %d (%s), want EMSGSIZE", lens[i],
				 errno, strerror(errno));
		assert_queue_empty(p);
	}
}

static void
test_send_on_closed_peer_returns_epipe_without_signal(void **state)
{
	struct pair *p = *state;

	close(p->rx);
	p->rx = -1;
	errno = 0;
	assert_int_equal(psep_msg_send(p->tx, PSEP_SHUTDOWN, 1, NULL, 0, -1), -1);
	assert_int_equal(errno, EPIPE);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, pair_setup, pair_teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_missing_fd_rejected_where_required),
		T(test_fd_rejected_and_closed_where_none_allowed),
		T(test_client_fd_kind_checked),
		T(test_body_fd_kind_seals_and_size_checked),
		T(test_empty_body_with_size_zero_accepted),
		T(test_two_or_more_fds_rejected_and_all_closed),
		T(test_datagram_larger_than_msg_max_rejected),
		T(test_peer_close_returns_econnreset),
		T(test_queued_message_delivered_before_econnreset),
		T(test_nothing_queued_returns_eagain),
		T(test_rejection_does_not_desynchronise_the_stream),
		T(test_send_then_recv_every_type_round_trip),
		T(test_send_with_fd_delivers_the_same_file),
		T(test_send_body_of_max_size_sent_whole),
		T(test_send_oversize_body_returns_emsgsize_and_sends_nothing),
		T(test_send_huge_body_len_returns_emsgsize),
		T(test_send_on_closed_peer_returns_epipe_without_signal),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
