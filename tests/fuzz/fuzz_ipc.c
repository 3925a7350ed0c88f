/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/fuzz_ipc.c - the IPC decoder psep_msg_recv (privsep/msg.c):
 * one datagram, with or without an fd, through a SOCK_SEQPACKET
 * socketpair, received as from a peer of the role and in the state the
 * input selects.
 *
 * Input:    octet 0: sender role (mod PSEP_ROLE_COUNT); octet 1: peer
 *           state (mod 3); octet 2: the fds to attach (none, pipe, stream
 *           socket, /dev/null, sealed / unsealed memfd, or two sealed
 *           memfds) and octet 3 the memfds' size; the rest is the
 *           datagram (header and body).
 * Oracle:   the sanitizers; no fd left open whatever the verdict; an
 *           accepted message has the type, length and id of the datagram,
 *           a fd exactly when one was sent (never two), and a type name.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "privsep/privsep.h"
#include "tests/fuzz/fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define SEALS (F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE)

static int sv[2] = { -1, -1 };
static struct psep_msg msg;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	log_init("stowd", -1);
	psep_msg_set_uid_range(1000, 60000);
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0,
		       sv) < 0) {
		perror("socketpair");
		abort();
	}
	return 0;
}

static int
make_memfd(size_t len, bool seal)
{
	static const char text[] = "Subject: fuzz\n\nhello\n";
	int fd = memfd_create("body", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	size_t i;

	if (fd < 0)
		abort();
	for (i = 0; i < len; i++)
		if (write(fd, &text[i % (sizeof(text) - 1)], 1) != 1)
			abort();
	if (lseek(fd, 0, SEEK_SET) != 0)
		abort();
	if (seal && fcntl(fd, F_ADD_SEALS, SEALS) < 0)
		abort();
	return fd;
}

/* The fd for kind, and in *extra one more to close after the send (and
 * to send too if *both). */
static int
make_fd(uint8_t kind, uint8_t len, int *extra, bool *both)
{
	int p[2];

	*extra = -1;
	*both = false;
	switch (kind % 7) {
	case 1:
		if (pipe2(p, O_CLOEXEC) < 0)
			abort();
		*extra = p[1];
		return p[0];
	case 2:
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, p) < 0)
			abort();
		*extra = p[1];
		return p[0];
	case 3:
		return open("/dev/null", O_RDONLY | O_CLOEXEC);
	case 4:
		return make_memfd(len, true);
	case 5:
		return make_memfd(len, false);
	case 6:
		*extra = make_memfd(len, true);
		*both = true;
		return make_memfd(len, true);
	default:
		return -1;
	}
}

static void
send_dgram(const uint8_t *data, size_t size, const int *fds, size_t nfds)
{
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(2 * sizeof(int))];
	} cbuf;
	struct iovec iov = { (void *)data, size };
	struct msghdr mh;
	struct cmsghdr *c;

	memset(&mh, 0, sizeof(mh));
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	if (nfds > 0) {
		memset(&cbuf, 0, sizeof(cbuf));
		mh.msg_control = cbuf.buf;
		mh.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(nfds * sizeof(int));
		memcpy(CMSG_DATA(c), fds, nfds * sizeof(int));
	}
	if (sendmsg(sv[0], &mh, MSG_NOSIGNAL) != (ssize_t)size)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct psep_hdr hdr;
	enum psep_role role;
	enum psep_state state;
	const char *why = NULL;
	uint8_t kind, len;
	int fds[2], fd, extra, r, fd0 = fuzz_lowest_free_fd();
	bool both;

	role = (enum psep_role)(fuzz_take(&data, &size, 1) % PSEP_ROLE_COUNT);
	state = (enum psep_state)(fuzz_take(&data, &size, 1) % 3);
	kind = (uint8_t)fuzz_take(&data, &size, 1);
	len = (uint8_t)fuzz_take(&data, &size, 1);
	if (size == 0 || size > 2 * PSEP_MSG_MAX)
		return 0;      /* SEQPACKET has no empty datagram to read */
	fd = make_fd(kind, len, &extra, &both);
	fds[0] = fd;
	fds[1] = extra;
	send_dgram(data, size, fds, fd < 0 ? 0 : both ? 2 : 1);
	if (fd >= 0)
		close(fd);
	if (extra >= 0)
		close(extra);
	memset(&msg, 0, sizeof(msg));
	msg.fd = -1;
	r = psep_msg_recv(sv[1], role, state, &msg, &why);
	if (r == 0) {
		if (size < sizeof(hdr))
			abort();
		memcpy(&hdr, data, sizeof(hdr));
		if (msg.hdr.type != hdr.type ||
		    msg.hdr.id != hdr.id || msg.hdr.len != size ||
		    msg.body_len != size - sizeof(hdr) ||
		    (msg.fd >= 0) != (fd >= 0) || both ||
		    strcmp(psep_type_name(msg.hdr.type), "?") == 0)
			abort();
		psep_msg_clear(&msg);
	} else if (why == NULL) {
		abort();
	}
	/* nothing may stay queued for the next input */
	if (recv(sv[1], &hdr, sizeof(hdr), MSG_DONTWAIT) >= 0)
		abort();
	fuzz_check_fds(fd0, "psep_msg_recv");
	return 0;
}
