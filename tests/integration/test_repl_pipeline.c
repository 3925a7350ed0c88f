/* SPDX-License-Identifier: MIT */
/*
 * tests/integration/test_repl_pipeline.c - how a replicated delivery is
 * pipelined, seen from the outside: the save's event leaves before the
 * local fsyncs, so a save that fails afterwards must be undone on the
 * replica (both indexes, no copy anywhere, the MTA gets the failure); and
 * both ends of a replication TCP connection have TCP_NODELAY (read from the
 * sockets themselves through pidfd_getfd).
 *
 * Runs in:  the integration suite, as root, linked into itest_repl.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "storage/storage.h"
#include "tests/integration/itest.h"
#include "tests/integration/itest_repl.h"
#include "tests/integration/test_repl.h"

enum { A = 0, B = 1 };

/* GUIDs of an index with a SAVE and a later EXPUNGE record. */
struct undone {
	char saved[16][33];
	size_t nsaved;
	char undone[33];
	size_t nundone;
};

static int
undone_rec(const struct store_rec *rec, void *arg)
{
	struct undone *u = arg;

	if (rec->op == STORE_REC_SAVE && u->nsaved < 16)
		memcpy(u->saved[u->nsaved++], rec->guid, 33);
	if (rec->op != STORE_REC_EXPUNGE)
		return 0;
	for (size_t k = 0; k < u->nsaved; k++) {
		if (strcmp(u->saved[k], rec->guid) == 0) {
			memcpy(u->undone, rec->guid, 33);
			u->nundone++;
		}
	}
	return 0;
}

/* The index of user idx's INBOX on instance i: the GUIDs saved and then
 * expunged (one expected) in u. */
static void
read_undone(unsigned i, unsigned idx, struct undone *u)
{
	struct store_index_state st;
	int fd = open(IR[i].h->users[idx].maildir, O_RDONLY | O_DIRECTORY);

	memset(u, 0, sizeof(*u));
	assert_true(fd >= 0);
	assert_int_equal(store_index_read(fd, undone_rec, u, &st), 0);
	close(fd);
}

/*
 * With a replica, the writer reports the save's stamp before its fsyncs
 * and the event leaves at once.  A save that fails after that (here the
 * rename: new/ is not writable for the user) is expunged again locally,
 * the EXPUNGE follows the SAVE to the replica, and the MTA gets the
 * failure: no copy anywhere, and both indexes record the save undone.
 */
void
test_save_failing_after_its_event_is_undone_on_the_replica(void **state)
{
	struct lmtpc_reply r;
	struct undone ua, ub;
	char guid[33], newdir[600];
	int na, nb;
	size_t len;
	char *body = itest_body(6000, 555, &len);

	(void)state;
	irepl_start_pair(A, B, NULL);
	na = irepl_count(A, 0);
	nb = irepl_count(B, 0);
	snprintf(newdir, sizeof(newdir), "%s/new", IR[A].h->users[0].maildir);
	assert_int_equal(chmod(newdir, 0500), 0);
	irepl_deliver(A, 0, body, len, &r, guid);
	assert_int_equal(chmod(newdir, 0700), 0);
	if (r.code != 450 || strcmp(r.enhanced, "4.2.0") != 0)
		fail_msg("expected 450 4.2.0 for an unwritable new/, got %d \"%s\"",
			 r.code, r.text);
	if (irepl_wait_journal_empty(A, "b", IREPL_POLL_MS) < 0)
		fail_msg("a's journal for b did not drain");
	assert_int_equal(irepl_count(A, 0), na);
	assert_int_equal(irepl_count(B, 0), nb);
	assert_int_equal(irepl_find_bytes(B, 0, body, len, NULL, 0), 0);
	read_undone(A, 0, &ua);
	read_undone(B, 0, &ub);
	assert_int_equal(ua.nundone, 1);
	assert_int_equal(ub.nundone, 1);
	assert_string_equal(ua.undone, ub.undone);
	free(body);
	irepl_pass();
}

/* Inodes of the established IPv4 TCP sockets whose local (local_side) or
 * remote port is port, from /proc/net/tcp; their count. */
static int
tcp_inodes(unsigned port, bool local_side, unsigned long *inodes, int max)
{
	FILE *f = fopen("/proc/net/tcp", "r");
	char line[512];
	int n = 0;

	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL && n < max) {
		unsigned lport, rport, st;
		unsigned long ino;

		if (sscanf(line, " %*d: %*x:%x %*x:%x %x %*x:%*x %*x:%*x %*x %*u %*u %lu",
			   &lport, &rport, &st, &ino) != 4 || st != 1)
			continue;
		if ((local_side ? lport : rport) == port)
			inodes[n++] = ino;
	}
	fclose(f);
	return n;
}

/* Through pidfd_getfd, the TCP_NODELAY value of every socket of the
 * descendants of h's supervisor whose inode is in inodes[n]; the number of
 * sockets found with it set, -1 if one has it clear. */
static int
nodelay_sockets(const struct harness *h, const unsigned long *inodes, int n)
{
	struct harness_proc procs[64];
	int np = harness_find_role(h, HARNESS_ROLE_ANY, procs, 64), found = 0;

	assert_true(np > 0);
	for (int i = 0; i < np; i++) {
		char dir[64], link[400], target[64];
		struct dirent *e;
		DIR *d;
		int pidfd;

		snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)procs[i].pid);
		if ((d = opendir(dir)) == NULL)
			continue;
		pidfd = (int)syscall(SYS_pidfd_open, procs[i].pid, 0);
		while (pidfd >= 0 && (e = readdir(d)) != NULL) {
			unsigned long ino;
			ssize_t len;
			int k, fd, on = 0;
			socklen_t ol = sizeof(on);

			snprintf(link, sizeof(link), "%s/%s", dir, e->d_name);
			len = readlink(link, target, sizeof(target) - 1);
			if (len <= 0)
				continue;
			target[len] = '\0';
			if (sscanf(target, "socket:[%lu]", &ino) != 1)
				continue;
			for (k = 0; k < n && inodes[k] != ino; k++)
				;
			if (k == n)
				continue;
			fd = (int)syscall(SYS_pidfd_getfd, pidfd, atoi(e->d_name), 0);
			assert_true(fd >= 0);
			assert_int_equal(getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, &ol), 0);
			close(fd);
			if (!on) {
				found = -1;
				break;
			}
			found++;
		}
		if (pidfd >= 0)
			close(pidfd);
		closedir(d);
		if (found < 0)
			return -1;
	}
	return found;
}

/*
 * Both ends of a replication TCP connection (repl-hook on a, repld on b)
 * have TCP_NODELAY: small commands and replies are not held back for the
 * peer's delayed ACK (about 40 ms on loopback).  Read from the outside,
 * from the sockets themselves.
 */
void
test_replication_tcp_sockets_have_nodelay(void **state)
{
	unsigned long in_a[16], in_b[16];
	int na, nb;

	(void)state;
	irepl_start_pair(A, B, NULL);
	na = tcp_inodes(IR[B].port, false, in_a, 16);
	nb = tcp_inodes(IR[B].port, true, in_b, 16);
	assert_true(na >= 1);
	assert_true(nb >= 1);
	assert_int_equal(nodelay_sockets(IR[A].h, in_a, na), na);
	assert_int_equal(nodelay_sockets(IR[B].h, in_b, nb), nb);
	irepl_pass();
}
