/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/writer/fakesup.h - the supervisor's end of a writer's
 * socketpair: queue the HELLO reply and requests before the writer runs,
 * collect what it sent once it returned.
 */
#ifndef STOWD_TESTS_UNIT_WRITER_FAKESUP_H
#define STOWD_TESTS_UNIT_WRITER_FAKESUP_H

#include <stddef.h>
#include <stdint.h>

#include "privsep/privsep.h"

#define SUP_MAX_REPS 8

/* The credentials of one PSEP_WRITE_REQ. */
struct sup_creds {
	uint32_t uid, gid, ngroups;
	uint32_t groups[4];
};

/* What a writer sent back. */
struct sup_seen {
	int hello;                  /* PSEP_HELLO_REQ received */
	int logs;                   /* PSEP_LOG lines */
	size_t nreps;
	struct {
		uint64_t id;
		int32_t err;
		uint32_t imap_uid;
		char what[64];
	} reps[SUP_MAX_REPS];
	int other;                  /* anything else, or an invalid message */
};

/* SOCK_SEQPACKET pair: sv[0] the supervisor's end, sv[1] the writer's. */
void sup_pair(int sv[2]);
/* Queue PSEP_HELLO_REP (id 1) as the answer to the writer's HELLO. */
void sup_queue_hello(int fd);
/* Queue a valid PSEP_WRITE_REQ with c's credentials and a sealed body;
 * returns psep_msg_send's result. */
int sup_queue_write(int fd, uint64_t id, const struct sup_creds *c);
/* Queue PSEP_SHUTDOWN. */
void sup_queue_shutdown(int fd);
/*
 * Read everything a writer of role sent on fd and is queued (fd is made
 * non-blocking).  The caller keeps the writer's end open until then: a
 * socket closed with unread requests would give ECONNRESET first.
 */
void sup_collect(int fd, enum psep_role role, struct sup_seen *out);

/*
 * Queue HELLO, a PSEP_WRITE_REQ for each of reqs[0..n) (ids 10, 11, ...)
 * and SHUTDOWN, run the writer entry fn (writer_seteuid_main,
 * writer_child_main) as role in this process, then collect what it sent
 * into *seen.  Returns fn's exit status.
 */
int sup_run(int (*fn)(void *arg, int ipc), enum psep_role role,
	    const struct sup_creds *reqs, size_t n, struct sup_seen *seen);

/*
 * The same with fn in a child process (for paths that end the process),
 * collecting once it ended: returns the child's wait status; *saves_out is the number of store_save
 * calls the child made (through mock.save_mark_fd).
 */
int sup_run_forked(int (*fn)(void *arg, int ipc), enum psep_role role,
		   const struct sup_creds *reqs, size_t n, struct sup_seen *seen,
		   int *saves_out);

#endif
