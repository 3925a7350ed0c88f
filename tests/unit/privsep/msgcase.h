/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/privsep/msgcase.h - shared by the IPC decoder tests
 * (test_msg.c, test_msg_repl.c, test_msg_transport.c), implemented in
 * msgcase.c and msgcase_repl.c: the valid message of every type,
 * raw datagrams, fd makers, fd-leak checks and the verdict helpers.
 *
 * Every helper asserts (cmocka) on broken test infrastructure; a wrong
 * verdict of psep_msg_recv is reported with print_error and returned as
 * false by the bool variants, so a table can report all its wrong rows.
 */
#ifndef STOWD_TESTS_PRIVSEP_MSGCASE_H
#define STOWD_TESTS_PRIVSEP_MSGCASE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <fcntl.h>

#include "privsep/msg.h"

#define HDR_LEN sizeof(struct psep_hdr)
#define MSG_ID 0x1122334455667788ull
#define UID_FIRST 1000u   /* psep_msg_set_uid_range() of the fixture */
#define UID_LAST 60000u
#define ALL_SEALS (F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL)
#define MAX_FDS_CHECKED 128  /* a leaked fd takes the lowest free number */
#define MAX_SEND_FDS 253     /* SCM_MAX_FD */

#define TEST_BODY "Subject: test\n\nhello\n"   /* the memfd body */
#define BODY_LEN (sizeof(TEST_BODY) - 1)
#define BODY_LINES 3u
#define TEST_PREFIX "Received: from client by stowd\n"  /* DELIVER/WRITE tail */
#define PREFIX_LEN (sizeof(TEST_PREFIX) - 1)
#define TEST_GUID "0123456789abcdef0123456789abcdef"

/* ---- the valid message of each type ----------------------------------- */

enum tfd {
	TFD_NONE,    /* no fd allowed */
	TFD_SOCKET,  /* a socket is required */
	TFD_MEMFD,   /* a sealed memfd of BODY_LEN bytes is required */
	TFD_INOTIFY, /* an inotify instance is required */
};

#define R(r) (1u << (r))
#define S(s) (1u << (s))

struct mcase {
	const char *name;
	uint16_t type;
	uint32_t senders;  /* R(role) of each role that may send it (msg.h) */
	uint32_t states;   /* S(state) of each peer state that allows it */
	enum tfd fd;
	size_t (*fill)(void *body);  /* writes a valid body, returns its length */
};

/* One row per type of msg.h (TEST_* only with STOWD_TEST_HOOKS). */
extern const struct mcase msg_cases[];
extern const size_t msg_ncases;

/* A valid SAVE command of the test body (BODY_LEN bytes, sealed memfd). */
void fill_repl_cmd(struct psep_repl_cmd *c);

/* The fill functions of the replication family (msgcase_repl.c): each
 * writes the valid body of its type and returns its length. */
size_t fill_repl_req(void *b);
size_t fill_repl_rep(void *b);
size_t fill_repl_op_req(void *b);
size_t fill_repl_op_rep(void *b);
size_t fill_event_req(void *b);
size_t fill_event_rep(void *b);
size_t fill_users_req(void *b);
size_t fill_users_rep(void *b);
size_t fill_quota_req(void *b);
size_t fill_quota_rep(void *b);
size_t fill_write_stamp(void *b);
/* The operations family (msgcase_ops.c). */
size_t fill_ctl_req(void *b);
size_t fill_ctl_rep(void *b);
size_t fill_stats_req(void *b);
size_t fill_stats_rep(void *b);
size_t fill_metrics_req(void *b);
size_t fill_metrics_rep(void *b);
size_t fill_metrics_client(void *b);
size_t fill_resync_req(void *b);
size_t fill_resync_rep(void *b);
size_t fill_watch_req(void *b);
size_t fill_watch_rep(void *b);
size_t fill_watch_op_req(void *b);

/* The row of type; fails the test if there is none. */
const struct mcase *case_of(uint16_t type);
/* A sender role and a peer state in which the row's message is valid. */
enum psep_role valid_role(const struct mcase *c);
enum psep_state valid_state(const struct mcase *c);

/* ---- datagrams -------------------------------------------------------- */

struct dgram {
	_Alignas(8) unsigned char buf[PSEP_MSG_MAX * 4];
	size_t len;   /* bytes to send */
};

struct psep_hdr *dg_hdr(struct dgram *d);
unsigned char *dg_body(struct dgram *d);
/* The valid datagram of c (id MSG_ID), len field matching. */
void dg_build(const struct mcase *c, struct dgram *d);
/* Resize the datagram, keeping the len field in step. */
void dg_set_len(struct dgram *d, size_t len);

/* ---- fds (all CLOEXEC; the caller closes them) ------------------------ */

/* A memfd holding size bytes of TEST_BODY (repeated), with seals. */
int make_memfd(int seals, size_t size, unsigned flags);
int make_sealed_body(void);
int make_socket(void);        /* one end of a stream socketpair */
int make_pipe(void);          /* the read end of a pipe */
int make_fd_for(enum tfd kind);  /* -1 for TFD_NONE */

enum fdmake {
	FM_SOCKET,
	FM_SEQPACKET,
	FM_PIPE,
	FM_DEVNULL,
	FM_DIR,
	FM_TMPFILE,             /* a regular file, not a memfd */
	FM_MEMFD_SEALED,        /* WRITE|GROW|SHRINK|SEAL, BODY_LEN bytes */
	FM_MEMFD_NO_SEAL_SEAL,  /* WRITE|GROW|SHRINK */
	FM_MEMFD_UNSEALED,
	FM_MEMFD_NO_SEALING,    /* created without MFD_ALLOW_SEALING */
	FM_MEMFD_NO_WRITE,      /* GROW|SHRINK|SEAL */
	FM_MEMFD_FUTURE_WRITE,  /* FUTURE_WRITE|GROW|SHRINK|SEAL */
	FM_MEMFD_NO_GROW,       /* WRITE|SHRINK|SEAL */
	FM_MEMFD_NO_SHRINK,     /* WRITE|GROW|SEAL */
	FM_MEMFD_LONGER,        /* sealed, BODY_LEN + 1 bytes */
	FM_MEMFD_SHORTER,       /* sealed, BODY_LEN - 1 bytes */
	FM_MEMFD_EMPTY,         /* sealed, 0 bytes */
};

int fd_make(enum fdmake m);

/* Open fds: count from /proc/self/fd, and which of 0..MAX_FDS_CHECKED-1
 * are open per fcntl(F_GETFD). */
struct fdsnap {
	int count;
	unsigned char open[MAX_FDS_CHECKED];
};

void fd_snap(struct fdsnap *s);
/* Fails the test if an fd is open now that was not in before. */
void assert_no_fd_leak(const struct fdsnap *before, const char *what);

/* ---- send and receive ------------------------------------------------- */

/* One datagram of len bytes with nfds fds (SCM_RIGHTS). */
void send_raw(int sock, const void *buf, size_t len, const int *fds, size_t nfds);
/* d with nfds (<= 4) new fds of kind, closed after sending. */
void send_dgram(int sock, const struct dgram *d, enum tfd kind, size_t nfds);

/* psep_msg_recv rejects: -1, EPROTO, a reason, fd -1. */
bool rejected(int sock, enum psep_role role, enum psep_state state, const char *what);
void expect_reject(int sock, enum psep_role role, enum psep_state state,
		   const char *what);
/* psep_msg_recv accepts d (sent with an fd of kind): header, body copy,
 * fd kind and CLOEXEC checked, then the fd is closed. */
bool accepted(int sock, enum psep_role role, enum psep_state state,
	      const struct dgram *d, enum tfd kind, const char *what);
void expect_accept(int sock, enum psep_role role, enum psep_state state,
		   const struct dgram *d, enum tfd kind, const char *what);

/* ---- fixture ---------------------------------------------------------- */

struct pair {
	int rx;  /* psep_msg_recv() side, non-blocking: a test never hangs */
	int tx;  /* raw sender */
	struct fdsnap before;
	struct dgram d;
};

/* cmocka setup/teardown: a SOCK_SEQPACKET pair, uid range
 * UID_FIRST..UID_LAST, fd snapshot. */
int pair_setup(void **state);
int pair_teardown(void **state);
/* Nothing may be left queued on p->rx. */
void assert_queue_empty(struct pair *p);

/* Send d (of case c, with the fd c needs), get psep_msg_recv's verdict
 * as role/state would see it; no fd may leak.  True if it is accept. */
bool verdict_is(struct pair *p, const struct mcase *c, const struct dgram *d,
		enum psep_role role, enum psep_state state, bool accept,
		const char *what);
void check_verdict(struct pair *p, const struct mcase *c, const struct dgram *d,
		   enum psep_role role, enum psep_state state, bool accept,
		   const char *what);

/* ---- field patches ---------------------------------------------------- */

enum pkind {
	P_NUM,    /* store num in a size-byte (1, 4 or 8) field */
	P_STR,    /* store str, NUL-padded (str may fill the field exactly) */
	P_NONUL,  /* fill the field with 'a' (after str, if any): no NUL */
};

struct patch {
	const char *name;
	uint16_t type;
	size_t off, size;  /* field in the body */
	enum pkind kind;
	uint64_t num;
	const char *str;
	bool accept;
};

#define FLD(st, f) offsetof(struct st, f), sizeof(((struct st *)0)->f)
#define NUM(n, ty, st, f, v, ok) \
	{ .name = (n), .type = (ty), FLD(st, f), .kind = P_NUM, .num = (v), .accept = (ok) }
#define STR(n, ty, st, f, s, ok) \
	{ .name = (n), .type = (ty), FLD(st, f), .kind = P_STR, .str = (s), .accept = (ok) }
#define NONUL(n, ty, st, f, lead) \
	{ .name = (n), .type = (ty), FLD(st, f), .kind = P_NONUL, .str = (lead), \
	  .accept = false }

void apply_patch(struct dgram *d, const struct patch *pt);
/* For each row: the unpatched message is accepted (control), the patched
 * one must get the row's verdict; fails after reporting every wrong row. */
void run_patches(struct pair *p, const struct patch *t, size_t n);
#define RUN_PATCHES(p, t) run_patches((p), (t), sizeof(t) / sizeof((t)[0]))

/* Fill a fixed char[] field with s, NUL-padded (truncated if too long). */
void msgcase_set_str(char *field, size_t size, const char *s);
#define SET_STR(field, s) msgcase_set_str((field), sizeof(field), (s))

#endif
