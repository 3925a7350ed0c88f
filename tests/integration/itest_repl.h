/* SPDX-License-Identifier: MIT */
/*
 * tests/integration/itest_repl.h - several stowd instances replicating to
 * each other for the replication tests: certificates, per-instance
 * replication settings (server_id, listeners, TLS files, replica blocks),
 * LMTP delivery, messages looked up by GUID, journal sizes and bounded
 * polls for what another instance is expected to write.
 *
 * Runs in:  integration test programs (root, real stowd processes).
 * Use:      group setup irepl_group_setup (certificates once per program),
 *           group teardown irepl_group_teardown; tests use irepl_setup /
 *           irepl_teardown, which free every instance the test made
 *           (printing the logs of a test that did not end in irepl_pass).
 */
#ifndef STOWD_TESTS_ITEST_REPL_H
#define STOWD_TESTS_ITEST_REPL_H

#include <stdbool.h>
#include <stddef.h>

#include "tests/lib/certs.h"
#include "tests/lib/harness.h"
#include "tests/lib/lmtpc.h"
#include "tests/lib/replc.h"

#define IREPL_MAX 3
#define IREPL_POLL_MS 30000         /* longest wait for another instance */

/* One instance: "a" has server id "a.test" and is "replica a" elsewhere. */
struct irepl {
	struct harness *h;
	char name[8];               /* "a" */
	char id[16];                /* "a.test" */
	unsigned port;              /* replication TCP port on 127.0.0.1 */
	char sock[128];             /* <tree>/repl, the UNIX listener */
};

/* Settings of one instance; NULL / 0 fields take the defaults shown. */
struct irepl_conf {
	const struct irepl *replicas[IREPL_MAX]; /* replica blocks */
	size_t nreplicas;
	unsigned sync_acks;           /* 1 if there is a replica, else 0 */
	const char *sync_timeout;     /* "2s" */
	const char *on_timeout;       /* "accept" */
	const char *journal_max;      /* "10M" */
	const char *full_sync;        /* "1h" */
	bool async;                   /* replication_sync_acks = 0 even with
				       * replicas (sync_acks is then ignored) */
	const char *peers;            /* replication_peers (none) */
	const char *extra;            /* more "key = value\n" lines, or NULL */
	const char *extra_to;         /* in a pair: the replica's extra lines
				       * (NULL: the same as extra) */
	const char *vanished;         /* replication_vanished: "expunge";
				       * irepl_start_pair gives both
				       * instances this one */
};

extern struct certs irepl_certs;
extern struct irepl IR[IREPL_MAX];  /* IR[0] = a, IR[1] = b, IR[2] = c */

/* Certificates for a.test, b.test, c.test (0 or -1). */

int irepl_group_setup(void **state);
int irepl_group_teardown(void **state);
/* Names, ids and free ports of IR[] (no tree yet). */
int irepl_setup(void **state);
int irepl_teardown(void **state);
/* The test passed: its logs are not printed. */
void irepl_pass(void);

/* Create the tree of instance i (name, id and port were set by
 * irepl_setup) and write its config; not started.  0 or -1. */
int irepl_make(unsigned i, const struct irepl_conf *conf);
/* Start instance i (0 or -1); stop it (asserts). */
int irepl_start(unsigned i);
void irepl_stop(unsigned i);
/* irepl_make and irepl_start, failing the test if either fails. */
void irepl_make_start(unsigned i, const struct irepl_conf *conf);
/*
 * Start instance to (no replicas), then instance from with conf (NULL:
 * defaults) and to as its only replica, and warm the link from -> to up
 * for user 0 (asserts).
 */
void irepl_start_pair(unsigned from, unsigned to, const struct irepl_conf *conf);

/*
 * Deliver body over LMTP to user idx of instance i; the reply to the
 * recipient in *r, its GUID (if it is a 250 with "Saved as") in guid[33].
 * Asserts the envelope is accepted; the final reply is the caller's.
 */
void irepl_deliver(unsigned i, unsigned idx, const char *body, size_t len,
		   struct lmtpc_reply *r, char guid[33]);

/* Files of user idx's INBOX (new/ and cur/) whose name holds guid; the
 * last one's full path in path (may be NULL).  -1 if unreadable. */
int irepl_find(unsigned i, unsigned idx, const char *guid, char *path,
	       size_t size);
/* All files in new/ and cur/ of user idx. */
int irepl_count(unsigned i, unsigned idx);

/* Files of user idx's INBOX (new/ and cur/) whose bytes are data[len];
 * the last one's full path in path (may be NULL).  -1 if unreadable. */
int irepl_find_bytes(unsigned i, unsigned idx, const char *data, size_t len,
		     char *path, size_t size);
/* Bounded poll until exactly one file of new/ and cur/ has the bytes of
 * data[len]; its path in path.  0, or -1 (not in time, or more than one). */
int irepl_wait_bytes(unsigned i, unsigned idx, const char *data, size_t len,
		     int timeout_ms, char *path, size_t size);

/* Bounded poll (timeout_ms) until exactly one file with guid exists; its
 * path in path.  0, or -1 (not there in time, or more than one). */
int irepl_wait_guid(unsigned i, unsigned idx, const char *guid, int timeout_ms,
		    char *path, size_t size);

/* Lines of instance i's log holding text (0 if there is no log yet). */
int irepl_log_count(unsigned i, const char *text);
/* Bounded poll until more than n lines of the log hold text; 0 or -1.
 * stowd logs "sync: replica=R full sync done" once every mailbox of a full
 * sync with R is in step and acknowledged: the signal to wait for. */
int irepl_wait_log(unsigned i, const char *text, int n, int timeout_ms);

/* Size of <state_dir>/replication/<replica>.journal on instance i; 0 if
 * missing. */
long long irepl_journal_size(unsigned i, const char *replica);
/* Bounded poll until that journal is empty; 0 or -1. */
int irepl_wait_journal_empty(unsigned i, const char *replica, int timeout_ms);

/* <state_dir>/replication/<replica>.dirty of instance i into buf[size]
 * (NUL-terminated); its length, 0 if missing, -1 if unreadable or longer
 * than size - 1. */
long irepl_dirty_read(unsigned i, const char *replica, char *buf, size_t size);
/* Bounded poll until that dirty file is empty or gone; 0 or -1. */
int irepl_wait_dirty_empty(unsigned i, const char *replica, int timeout_ms);

/*
 * Put data[len] into user idx's INBOX of instance i by hand, as a mail
 * program would: written in tmp/, owned by the user, mode 0600, renamed
 * into new/ under the Maildir unique name
 * "<sec>.M<usec>P<pid>Q<seq>[G<guid>].<host>,S=<size>,W=<vsize>" (no G
 * part if guid is NULL).  The name in name[size] (asserts).
 */
void irepl_put_by_hand(unsigned i, unsigned idx, const char *data, size_t len,
		       const char *guid, char *name, size_t size);

/* Assert the two files have the same bytes, and that b is owned by user
 * idx of instance ib with mode 0600. */
void irepl_assert_same_file(const char *a, unsigned ib, unsigned idx,
			    const char *b);

/* A connection to the UNIX replication socket of instance i, greeting
 * read and "HELLO 1 id" answered OK (asserts). */
struct replc *irepl_unix(unsigned i, const char *id);

/* A replicated warm-up delivery from instance from to instance to: deliver
 * to user idx on from and wait for it on to, so the link is up (asserts). */
void irepl_warm_up(unsigned from, unsigned to, unsigned idx);

#endif
