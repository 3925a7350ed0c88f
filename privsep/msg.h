/* SPDX-License-Identifier: MIT */
/*
 * privsep/msg.h - every IPC message type of stowd, and the one receive path.
 *
 * Runs in:  every process.
 * Trust:    a message is trusted only after psep_msg_recv() checked its type,
 *           length, sender role, state, fd and fields against the spec table
 *           in privsep/msg.c.  Structs are fixed layout, no pointers; strings
 *           are fixed char[] that must hold a NUL, or a counted tail.
 * Order:    a child sends PSEP_HELLO_REQ first; nothing else is accepted from
 *           it before the supervisor answered PSEP_HELLO_REP.
 */
#ifndef STOWD_PRIVSEP_MSG_H
#define STOWD_PRIVSEP_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define PSEP_PROTO_VERSION 1u

/* Largest datagram on any stowd socketpair (header included). */
#define PSEP_MSG_MAX 16384u

#define PSEP_SESSION_MAX 24   /* session trace id, NUL included */
#define PSEP_ADDR_MAX 512     /* RFC 5321 path (UTF-8 allowed), NUL included */
#define PSEP_GUID_MAX 33      /* 32 hex digits + NUL */
#define PSEP_PATH_MAX 1024
#define PSEP_NAME_MAX 256
#define PSEP_MAX_GROUPS 32
#define PSEP_PREFIX_MAX 4096  /* trace headers prepended to a body */
#define PSEP_LOG_MAX 1024
#define PSEP_ID_MAX 65        /* server id: 1..64 octets %x21-7E + NUL */
#define PSEP_FLAGS_MAX 128    /* canonical flag string or delta list + NUL */
#define PSEP_MSGID_MAX 200    /* Message-ID for the logs, NUL included */
#define PSEP_CAPTURE_NAMES_MAX 16384u  /* CAPTURE: the memfd of file names */

/* Process roles: one row each in privsep/roles.c. */
enum psep_role {
	PSEP_ROLE_SUPERVISOR = 0,
	PSEP_ROLE_LMTPD = 1,
	PSEP_ROLE_WRITER_SETEUID = 2,
	PSEP_ROLE_WRITER_CHILD = 3,
	PSEP_ROLE_REPL_HOOK = 4,
	PSEP_ROLE_REPLD = 5,      /* replication front-end (replica side) */
	PSEP_ROLE_CONTROL = 6,    /* a stowctl client on the control socket
				   * (root, never spawned by stowd) */
	PSEP_ROLE_WRITER_TEMPLATE = 7, /* fork mode: forks the per-uid
					* writer children */
};
#define PSEP_ROLE_COUNT 8

/* Peer states (bit numbers in the spec table's state mask). */
enum psep_state {
	PSEP_STATE_NEW = 0,      /* before HELLO */
	PSEP_STATE_READY = 1,    /* HELLO done */
	PSEP_STATE_STOPPING = 2, /* SHUTDOWN sent / received */
};

enum psep_type {
	PSEP_HELLO_REQ = 2,     /* child -> supervisor */
	PSEP_HELLO_REP = 3,
	PSEP_LOG = 4,           /* child -> supervisor, one way */
	PSEP_CLIENT_FD = 6,     /* supervisor -> lmtpd, one way, fd: socket */
	PSEP_SHUTDOWN = 8,      /* supervisor -> child, one way */
	PSEP_RCPT_REQ = 10,     /* lmtpd -> supervisor */
	PSEP_RCPT_REP = 11,
	PSEP_DELIVER_REQ = 12,  /* lmtpd -> supervisor, fd: sealed memfd */
	PSEP_DELIVER_REP = 13,
	PSEP_WRITE_REQ = 14,    /* supervisor -> writer, fd: sealed memfd */
	PSEP_WRITE_REP = 15,
	PSEP_SESSION_END = 16,  /* lmtpd -> supervisor, one way */
	PSEP_TEST_REQ = 18,     /* supervisor -> writer; only with test hooks */
	PSEP_TEST_REP = 19,
	PSEP_REPL_REQ = 20,     /* repld or repl-hook -> supervisor; fd: sealed
				 * memfd for SAVE, none otherwise */
	PSEP_REPL_REP = 21,     /* fd: LIST/SYNC/GUIDS data memfd, FETCH file */
	PSEP_REPL_OP_REQ = 22,  /* supervisor -> writer; fd as REPL_REQ */
	PSEP_REPL_OP_REP = 23,  /* fd as REPL_REP */
	PSEP_EVENT_REQ = 24,    /* supervisor -> repl-hook; fd: body memfd (SAVE) */
	PSEP_EVENT_REP = 25,
	PSEP_USERS_REQ = 26,    /* repl-hook -> supervisor */
	PSEP_USERS_REP = 27,    /* fd: memfd, one user name per line */
	PSEP_WRITE_STAMP = 28,  /* writer -> supervisor, one way, before the
				 * WRITE_REP of a WRITE_REQ with early_stamp */
	PSEP_FORK_REQ = 30,     /* supervisor -> writer template; fd: the new
				 * child's end of its IPC socketpair */
	PSEP_FORK_REP = 31,
	/* change capture (doc/replication-protocol.md §7.6): repl-hook's
	 * inotify instance travels to a writer, which adds the watches of one
	 * user's Maildir with that user's credentials */
	PSEP_WATCH_REQ = 100,   /* repl-hook -> supervisor; fd: the inotify
				 * instance */
	PSEP_WATCH_REP = 101,   /* fd: memfd of "<wd> <mailbox>" lines */
	PSEP_WATCH_OP_REQ = 102,/* supervisor -> writer; fd: the inotify
				 * instance */
	PSEP_WATCH_OP_REP = 103,/* fd as WATCH_REP */
	/* operations (stowctl, metrics): 180..219 */
	PSEP_CTL_REQ = 180,     /* stowctl -> supervisor (control socket) */
	PSEP_CTL_REP = 181,     /* fd: sealed memfd, the command's output */
	PSEP_STATS_REQ = 182,   /* supervisor -> repl-hook */
	PSEP_STATS_REP = 183,
	PSEP_METRICS_REQ = 184, /* lmtpd -> supervisor (a metrics scrape) */
	PSEP_METRICS_REP = 185,
	PSEP_METRICS_CLIENT = 186, /* supervisor -> lmtpd, one way, fd: a
				    * client of metrics_listen */
	PSEP_RESYNC_REQ = 188,  /* supervisor -> repl-hook */
	PSEP_RESYNC_REP = 189,
	/* 220..259: delivery features (quota, detail, duplicates, TLS) */
	PSEP_QUOTA_REQ = 220,   /* supervisor -> writer: does a message fit? */
	PSEP_QUOTA_REP = 221,
};
#define PSEP_TYPE_MAX 221

struct psep_hdr {
	uint16_t type;
	uint16_t flags;
	uint32_t len;  /* whole datagram, header included */
	uint64_t id;   /* request id; a reply copies it */
};

/* Outcome of one recipient delivery.  Mapped from errno in policy/. */
enum dlv_status {
	DLV_OK = 0,
	DLV_TEMPFAIL = 1,
	DLV_PERMFAIL = 2,
};

struct dlv_result {
	uint32_t status;      /* enum dlv_status */
	uint32_t code;        /* SMTP reply code: 2xx, 4xx or 5xx */
	char enhanced[16];    /* RFC 3463 "x.y.z" */
	char text[200];       /* human text, no CR/LF */
};

struct psep_hello {
	uint32_t version;     /* PSEP_PROTO_VERSION */
	uint32_t role;        /* enum psep_role of the sender */
	uint32_t generation;  /* config generation the child runs with */
	uint32_t pad;
};

enum psep_log_level {
	PSEP_LOG_DEBUG = 0,
	PSEP_LOG_INFO = 1,
	PSEP_LOG_WARN = 2,
	PSEP_LOG_ERR = 3,
};

struct psep_log {
	uint32_t level;       /* enum psep_log_level */
	uint32_t text_len;    /* bytes in text[], no NUL, <= PSEP_LOG_MAX */
	char text[];
};

struct psep_client_fd {
	char listener[64];    /* the lmtp_listen entry that accepted */
};

struct psep_rcpt_req {
	char session[PSEP_SESSION_MAX];
	char address[PSEP_ADDR_MAX];  /* as given in RCPT TO, without <> */
};

struct psep_rcpt_rep {
	struct dlv_result result;
};

struct psep_deliver_req {
	char session[PSEP_SESSION_MAX];
	char address[PSEP_ADDR_MAX];  /* the recipient, as accepted by RCPT */
	uint32_t rcpt_index;          /* position in RCPT order (for logs) */
	uint32_t prefix_len;          /* bytes of prefix[], <= PSEP_PREFIX_MAX */
	uint64_t body_size;           /* st_size of the memfd */
	uint64_t body_vsize;          /* size with CRLF line ends */
	char msgid[PSEP_MSGID_MAX];   /* the Message-ID (logs only), "" if none */
	char prefix[];                /* trace headers, LF line ends */
};

struct psep_deliver_rep {
	struct dlv_result result;
	char guid[PSEP_GUID_MAX];
	char pad[7];
};

/* A Maildir++ quota to apply (Dovecot's quota_rule, parsed by the
 * supervisor): limits 0 = unlimited; force as store_quota_conf. */
struct psep_quota {
	uint64_t bytes;
	uint64_t count;
	uint8_t on;                   /* 0: no quota, 1: account and enforce */
	uint8_t force;                /* 0 or 1 */
	uint8_t enforce;              /* on: 1 refuse what does not fit, 0 only
				       * account (a replica over quota) */
	char pad[5];
};

struct psep_write_req {
	uint32_t uid;
	uint32_t gid;
	uint32_t ngroups;
	uint32_t groups[PSEP_MAX_GROUPS];
	uint32_t prefix_len;          /* bytes of prefix[], <= PSEP_PREFIX_MAX */
	uint64_t body_size;
	uint64_t body_vsize;
	uint64_t received_time;       /* seconds since the epoch */
	struct psep_quota quota;      /* checked before, updated after the save */
	char session[PSEP_SESSION_MAX];
	char user[PSEP_NAME_MAX];     /* for logs */
	char mail_base[PSEP_PATH_MAX];/* trusted directory, opened normally */
	char mail_rel[PSEP_PATH_MAX]; /* below base: never through a symlink */
	char mailbox[PSEP_NAME_MAX];  /* "INBOX" or a Maildir++ folder name */
	char guid[PSEP_GUID_MAX];     /* 32 hex digits */
	uint8_t early_stamp;          /* 1: send PSEP_WRITE_STAMP as soon as the
				       * index holds the save, before the
				       * fsyncs (replication runs meanwhile) */
	uint8_t mailbox_create;       /* a folder mailbox that does not exist:
				       * 1 create it, 0 save into INBOX */
	char pad[5];
	char prefix[];
};

/* The writer reports facts; the supervisor maps them to a dlv_result
 * (policy_result_from_errno).  PSEP_WRITE_STAMP has the same body with
 * err 0: the uid, modseq, size and final name the save will have once its
 * fsyncs are done (the WRITE_REP that follows says whether they were). */
struct psep_write_rep {
	int32_t err;                  /* 0 = saved durably, else an errno */
	uint32_t imap_uid;
	uint64_t size;                /* bytes written to the file */
	uint64_t modseq;              /* the save's stamp modseq (origin: this
				       * server), 0 if the index failed; with
				       * err after a WRITE_STAMP: the modseq of
				       * the EXPUNGE that undid the stamp (0:
				       * none could be written) */
	char what[64];                /* failed step, "" on success */
	char guid[PSEP_GUID_MAX];
	uint8_t in_inbox;             /* 1: the request's folder did not exist
				       * (mailbox_create 0): saved into INBOX */
	uint8_t duplicate;            /* 1: the message was saved within
				       * lmtp_duplicate_window: not saved
				       * again, guid is the stored one,
				       * filename "" */
	char pad[5];
	char filename[PSEP_NAME_MAX]; /* base name in new/ */
};

struct psep_session_end {
	char session[PSEP_SESSION_MAX];
};

enum psep_test_op {
	PSEP_TEST_FORBIDDEN_SYSCALL = 1, /* writer calls socket(): must die */
	PSEP_TEST_STALL = 2,             /* writer blocks until killed */
	PSEP_TEST_BOGUS_STAMP = 3,       /* writer sends a WRITE_STAMP for a
					  * request it does not hold: must be
					  * killed */
	PSEP_TEST_DIE_AFTER_STAMP = 4,   /* writer exits right after its next
					  * WRITE_STAMP, before its fsyncs */
	PSEP_TEST_STALL_AFTER_STAMP = 5, /* writer blocks right after its next
					  * WRITE_STAMP until killed */
	PSEP_TEST_DIE_AFTER_SAVE = 6,    /* writer exits right after its next
					  * save, complete, before its reply */
};

/* Fork mode: the writer template forks a child that drops to these
 * credentials for life and talks to the supervisor over the socket that
 * came with the request (privsep/template.c). */
struct psep_fork_req {
	uint32_t uid;
	uint32_t gid;
	uint32_t ngroups;
	uint32_t groups[PSEP_MAX_GROUPS];
};

struct psep_fork_rep {
	int32_t pid;                  /* the child (a child of the supervisor:
				       * CLONE_PARENT), or 0 */
	int32_t err;                  /* errno of a failed fork, or 0 */
};

struct psep_test_req {
	uint32_t op;                  /* enum psep_test_op */
	uint32_t pad;
};

struct psep_test_rep {
	int32_t result;
	uint32_t pad;
};

/* ---- replication ------------------------------------------------------ */

/* One replication-protocol operation (doc/replication-protocol.md §8),
 * already parsed and checked by repld's parser (or built by repl-hook);
 * every field is checked again by psep_msg_recv and by storage/. */
enum psep_repl_op {
	PSEP_REPL_SAVE = 1,
	PSEP_REPL_STORE = 2,
	PSEP_REPL_EXPUNGE = 3,
	PSEP_REPL_CREATE = 4,
	PSEP_REPL_DELETE = 5,
	PSEP_REPL_RENAME = 6,
	PSEP_REPL_LIST = 7,
	PSEP_REPL_SYNC = 8,
	PSEP_REPL_GUIDS = 9,
	PSEP_REPL_FETCH = 10,
	/* local only, from repl-hook, never on the wire: reconcile one
	 * mailbox and list, as data lines, the changes of others it recorded
	 * (doc/replication-protocol.md §7.6): "EXPUNGE <guid> <modseq>",
	 * "STORE <guid> <modseq> <deltas>", "SAVE <guid>"; the request may
	 * carry a sealed memfd (body_size bytes, at most
	 * PSEP_CAPTURE_NAMES_MAX) of the file names of the change events, a
	 * line each: the name, then "\tfrom=FOLDER" for a file moved in from
	 * that folder and "\tunlinked" for a removed file: then only the
	 * messages of those names are reconciled */
	PSEP_REPL_CAPTURE = 11,
	/* local only, the same for the folders of a user (no mailbox):
	 * "CREATE <mailbox>", "DELETE <mailbox>", "RENAME <from> <to>", and
	 * for the subscriptions file "SUBSCRIBE <mailbox>",
	 * "UNSUBSCRIBE <mailbox>"; names as astrings (repl_fmt_boxes_data) */
	PSEP_REPL_CAPTURE_BOXES = 12,
	PSEP_REPL_SUBSCRIBE = 13,
	PSEP_REPL_UNSUBSCRIBE = 14,
};
#define PSEP_REPL_OP_MAX 14

/* The events (journaled and forwarded, §9): SAVE, STORE, EXPUNGE, CREATE,
 * DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE; the others are queries or local
 * commands. */
static inline bool
psep_repl_op_is_event(uint32_t op)
{
	return (op >= PSEP_REPL_SAVE && op <= PSEP_REPL_RENAME) ||
	       op == PSEP_REPL_SUBSCRIBE || op == PSEP_REPL_UNSUBSCRIBE;
}

struct psep_repl_cmd {
	uint32_t op;                  /* enum psep_repl_op */
	uint32_t uid_hint;            /* SAVE: UID hint, 0 = none */
	uint64_t modseq;              /* events: stamp modseq; 0 = a local
				       * change, the writer takes (H+1, own id) */
	uint64_t date;                /* SAVE: internal date, epoch seconds */
	uint64_t body_size;           /* SAVE, CAPTURE: size of the memfd */
	char origin[PSEP_ID_MAX];     /* events: stamp origin ("" for queries) */
	char peer[PSEP_ID_MAX];       /* server id of the peer it came from;
				       * "" = local (LMTP, local producer,
				       * repl-hook repair) */
	char user[PSEP_NAME_MAX];
	char mailbox[PSEP_NAME_MAX];  /* canonical ("INBOX" for the inbox) */
	char mailbox2[PSEP_NAME_MAX]; /* RENAME: the new name */
	char guid[PSEP_GUID_MAX];     /* SAVE/STORE/EXPUNGE/FETCH */
	char flags[PSEP_FLAGS_MAX];   /* SAVE: canonical flag string;
				       * STORE: deltas "+\Seen -\Flagged" */
	char pad[7];
};

/* Outcome classes of a replication command, as on the wire. */
enum psep_repl_status {
	PSEP_RS_OK = 0,
	PSEP_RS_NO = 1,
	PSEP_RS_BAD = 2,
};

/* repld / repl-hook -> supervisor. */
struct psep_repl_req {
	struct psep_repl_cmd cmd;
};

/* supervisor -> repld / repl-hook: the tagged reply without the tag. */
struct psep_repl_rep {
	uint32_t status;              /* enum psep_repl_status */
	uint32_t effective;           /* events: 1 if it changed state here */
	uint32_t uid;                 /* SAVE: UID here; FETCH: UID */
	uint32_t pad;
	uint64_t modseq;              /* events: the stamp applied (SAVE/STORE/
				       * EXPUNGE; a local change gets a fresh one) */
	uint64_t date;                /* FETCH: internal date */
	uint64_t size;                /* FETCH: bytes of the file fd */
	char origin[PSEP_ID_MAX];     /* the stamp's origin */
	char code[47];                /* response code without brackets ("UID 42",
				       * "NOUSER"), "" for none */
	char text[160];               /* human text, no CR/LF */
	char flags[PSEP_FLAGS_MAX];   /* FETCH: canonical flags */
};

/* supervisor -> writer. */
struct psep_repl_op_req {
	uint32_t uid;
	uint32_t gid;
	uint32_t ngroups;
	uint32_t groups[PSEP_MAX_GROUPS];
	uint32_t pad;
	char mail_base[PSEP_PATH_MAX];
	char mail_rel[PSEP_PATH_MAX];
	struct psep_repl_cmd cmd;
	struct psep_quota quota;      /* SAVE/EXPUNGE keep maildirsize right;
				       * SAVE with enforce refuses (EDQUOT) */
};

/* writer -> supervisor: facts; the supervisor maps them to a reply. */
struct psep_repl_op_rep {
	int32_t err;                  /* 0, or the errno of a failed step */
	uint32_t result;              /* enum store_repl_status (err == 0) */
	uint32_t effective;
	uint32_t uid;
	uint64_t modseq;
	uint64_t date;
	uint64_t size;
	char origin[PSEP_ID_MAX];
	char what[64];                /* failed step, "" on success */
	char flags[PSEP_FLAGS_MAX];   /* FETCH: canonical flags */
	char filename[PSEP_NAME_MAX]; /* SAVE: base name written */
	char pad[7];
};

/* supervisor -> repl-hook: one effective event to journal for every
 * replica except the one named cmd.origin and cmd.peer. */
struct psep_event_req {
	struct psep_repl_cmd cmd;     /* the event as applied here: stamp in
				       * origin/modseq, SAVE: uid_hint = UID
				       * here, body = prefix + memfd */
	uint32_t want_acks;           /* answer once this many replicas acked
				       * (0: once journaled) */
	uint32_t prefix_len;          /* <= PSEP_PREFIX_MAX */
	uint64_t timeout_ms;          /* want_acks > 0: longest wait */
	char prefix[];
};

enum psep_event_status {
	PSEP_EV_JOURNALED = 0,        /* fsynced in every journal (want_acks 0) */
	PSEP_EV_ACKED = 1,            /* want_acks replicas acknowledged */
	PSEP_EV_TIMEOUT = 2,          /* journaled, fewer acks than wanted */
	PSEP_EV_FAILED = 3,           /* could not be journaled */
};

struct psep_event_rep {
	uint32_t status;              /* enum psep_event_status */
	uint32_t acks;
};

/* repl-hook -> supervisor: the users to run a full SYNC for. */
struct psep_users_req {
	uint32_t pad;
	uint32_t pad2;
};

struct psep_users_rep {
	int32_t err;                  /* 0, or errno (the fd is then absent) */
	uint32_t count;               /* lines in the memfd */
};

/* ---- operations: stowctl and metrics ---------------------------------- */

/* Upper bounds of the latency histogram buckets, in microseconds; the
 * last bucket (index PSEP_LAT_BUCKETS - 1) is +Inf. */
static inline uint64_t
psep_lat_bound_us(unsigned i)
{
	static const uint64_t b[] = { 1000, 2500, 5000, 10000, 25000, 50000,
				      100000, 250000, 500000, 1000000, 2500000 };

	return i < sizeof(b) / sizeof(b[0]) ? b[i] : UINT64_MAX;
}

enum psep_ctl_cmd {
	PSEP_CTL_STATUS = 1,
	PSEP_CTL_REPLICAS = 2,
	PSEP_CTL_USER = 3,
	PSEP_CTL_RELOAD = 4,
	PSEP_CTL_STOP = 5,
	PSEP_CTL_RESYNC = 6,
};
#define PSEP_CTL_CMD_MAX 6

#define PSEP_CTL_F_JSON 0x1u   /* output as JSON, else text for people */
#define PSEP_CTL_F_ALL 0x2u    /* resync: every user */
#define PSEP_CTL_FLAGS 0x3u

#define PSEP_REPLICA_NAME_MAX 64
/* Latency histograms: buckets per histogram (bounds in privsep/stats.h). */
#define PSEP_LAT_BUCKETS 12

/* stowctl -> supervisor: one request per connection. */
struct psep_ctl_req {
	uint32_t cmd;                 /* enum psep_ctl_cmd */
	uint32_t flags;               /* PSEP_CTL_F_* */
	char user[PSEP_NAME_MAX];     /* USER, RESYNC ("" with F_ALL) */
	char mailbox[PSEP_NAME_MAX];  /* RESYNC: "" = every mailbox */
	char replica[PSEP_REPLICA_NAME_MAX]; /* RESYNC: "" = every replica */
};

/* supervisor -> stowctl: the outcome; the output text (or JSON) in a
 * sealed memfd of size bytes, or no fd and size 0. */
struct psep_ctl_rep {
	int32_t err;                  /* 0, or an errno (ENOENT: unknown user,
				       * EINVAL: config refused, ...) */
	uint32_t pad;
	uint64_t size;
	char text[256];               /* the error, one line ("" if none) */
};

/* One replica as repl-hook sees it (PSEP_STATS_REP). */
struct psep_replica_stats {
	char name[PSEP_REPLICA_NAME_MAX];
	char server_id[PSEP_ID_MAX];
	uint8_t connected;
	uint8_t syncing;
	char pad[6];
	char last_error[128];         /* "" if none */
	uint64_t inflight;            /* journal entries sent, not answered */
	uint64_t journal_entries;     /* not acknowledged */
	uint64_t journal_bytes;       /* not acknowledged */
	uint64_t lag_ms;              /* age of the oldest unacknowledged
				       * entry (0 when drained) */
	uint64_t sent, acks, timeouts;/* since repl-hook started */
	uint64_t dirty;               /* mailboxes marked for SYNC */
	uint64_t sync_last;           /* end of the last full sync, epoch s; 0 */
	uint64_t sync_ms;             /* how long it took */
	uint64_t sync_repairs;        /* changes it made */
	uint64_t repairs_total;       /* changes every sync made */
	uint64_t ack_buckets[PSEP_LAT_BUCKETS]; /* ack latency, cumulative */
	uint64_t ack_count;
	uint64_t ack_sum_us;
};

/* supervisor -> repl-hook: fill a PSEP_STATS_REP; user != "": also count
 * the journal entries of that user (user_events). */
struct psep_stats_req {
	char user[PSEP_NAME_MAX];
};

struct psep_stats_rep {
	uint32_t n;                   /* entries of r[] in use */
	uint32_t pad;
	uint64_t user_events;         /* journal entries of the asked user */
	struct psep_replica_stats r[16];
};

/* lmtpd -> supervisor: a snapshot of the counters for one scrape. */
struct psep_metrics_req {
	uint32_t pad;
	uint32_t pad2;
};

/* Delivery outcome classes of the metrics (bounded label set). */
enum psep_outcome {
	PSEP_OUT_OK = 0,              /* 2xx */
	PSEP_OUT_TEMP_USERDB = 1,     /* 4xx, by reason */
	PSEP_OUT_TEMP_WRITER = 2,
	PSEP_OUT_TEMP_QUOTA = 3,
	PSEP_OUT_TEMP_REPLICATION = 4,
	PSEP_OUT_TEMP_OTHER = 5,
	PSEP_OUT_PERM_NOUSER = 6,     /* 5xx, by reason */
	PSEP_OUT_PERM_QUOTA = 7,
	PSEP_OUT_PERM_OTHER = 8,
};
#define PSEP_OUT_COUNT 9

struct psep_histogram {
	uint64_t buckets[PSEP_LAT_BUCKETS]; /* cumulative counts per bound */
	uint64_t count;
	uint64_t sum_us;
};

/* Count one observation of us microseconds in h (cumulative buckets). */
static inline void
psep_histogram_add(struct psep_histogram *h, uint64_t us)
{
	for (unsigned i = 0; i < PSEP_LAT_BUCKETS; i++)
		if (us <= psep_lat_bound_us(i))
			h->buckets[i]++;
	h->count++;
	h->sum_us += us;
}

/* The supervisor's counters (since start) and gauges. */
struct psep_counters {
	uint64_t start_time;          /* epoch seconds */
	uint64_t deliveries[PSEP_OUT_COUNT];
	uint64_t bytes_stored;
	uint64_t duplicates;          /* answered 250 without a save: already
				       * saved within lmtp_duplicate_window */
	struct psep_histogram lmtp;   /* end of data to the recipient's reply */
	struct psep_histogram save;   /* the writer's save, dispatch to reply */
	uint64_t queue_depth;         /* jobs waiting for a writer */
	uint64_t jobs_running;
	uint64_t writer_deaths[32];   /* by signal number (0: other exits) */
	uint64_t seccomp_kills;       /* children killed by SIGSYS */
	uint64_t fork_hits, fork_misses, fork_evictions;
	uint64_t fork_cache_size;
	uint64_t generation;
	uint64_t replica_stats_ok;    /* 1: repl below is fresh */
};

/* supervisor -> lmtpd. */
struct psep_metrics_rep {
	struct psep_counters c;
	struct psep_stats_rep repl;
};

/* supervisor -> repl-hook: run SYNC now (user "" and F_ALL: everyone). */
struct psep_resync_req {
	uint32_t all;
	uint32_t pad;
	char user[PSEP_NAME_MAX];
	char mailbox[PSEP_NAME_MAX];
	char replica[PSEP_REPLICA_NAME_MAX];
};

struct psep_resync_rep {
	int32_t err;                  /* 0, ENOENT (no such replica), ENOTCONN */
	uint32_t pad;
	uint64_t mailboxes;           /* compared */
	uint64_t repairs;             /* changes made */
	uint64_t ms;
	char text[256];
};

/* ---- change capture (100..139) --------------------------------------- */

/*
 * repl-hook -> supervisor: add the watches of user's Maildir to the inotify
 * instance sent along.  The answer (WATCH_REP) lists them in a memfd, one
 * "<wd> <mailbox>\n" per watched directory: <mailbox> is the protocol name
 * ("INBOX", "a.b") for its new/ and cur/, "/" for the Maildir root (where
 * folders appear and go).  err ENOSPC: the watch limit was reached
 * (fs.inotify.max_user_watches); the memfd then lists the watches added
 * before.  Another err: no memfd.
 */
struct psep_watch_req {
	char user[PSEP_NAME_MAX];
};

struct psep_watch_rep {
	int32_t err;                  /* 0, or errno */
	uint32_t count;               /* lines in the memfd */
};

/* supervisor -> writer: the same for one resolved user; the reply is a
 * struct psep_watch_rep (WATCH_OP_REP) with the same memfd. */
struct psep_watch_op_req {
	uint32_t uid;
	uint32_t gid;
	uint32_t ngroups;
	uint32_t groups[PSEP_MAX_GROUPS];
	uint32_t pad;
	char mail_base[PSEP_PATH_MAX];
	char mail_rel[PSEP_PATH_MAX];
	char user[PSEP_NAME_MAX];     /* for logs */
};


/* ---- delivery features (220..259) ------------------------------------ */

/* supervisor -> writer: would a message of size octets fit the user's
 * quota now?  (lmtp_rcpt_check_quota; maildirsize is read, and
 * recalculated when missing or stale, with the user's credentials.) */
struct psep_quota_req {
	uint32_t uid;
	uint32_t gid;
	uint32_t ngroups;
	uint32_t groups[PSEP_MAX_GROUPS];
	uint32_t pad;
	uint64_t size;
	struct psep_quota quota;      /* on must be 1 */
	char user[PSEP_NAME_MAX];     /* for logs */
	char mail_base[PSEP_PATH_MAX];
	char mail_rel[PSEP_PATH_MAX];
};

struct psep_quota_rep {
	int32_t err;                  /* 0, or the errno of a failed step */
	uint32_t fits;                /* err == 0: 1 if it fits */
	uint64_t used_bytes;
	uint64_t used_count;
	uint64_t limit_bytes;         /* effective limits, 0 = unlimited */
	uint64_t limit_count;
	char what[64];                /* failed step, "" on success */
};

/* A received, validated message.  Owns fd (or -1) and data. */
struct psep_msg {
	struct psep_hdr hdr;
	int fd;
	dev_t fd_dev;                 /* fd's fstat (psep_msg_recv checked it) */
	ino_t fd_ino;
	size_t body_len;              /* bytes after the header */
	union {
		unsigned char raw[PSEP_MSG_MAX];
		struct psep_hello hello;
		struct psep_log log;
		struct psep_client_fd client_fd;
		struct psep_rcpt_req rcpt_req;
		struct psep_rcpt_rep rcpt_rep;
		struct psep_deliver_req deliver_req;
		struct psep_deliver_rep deliver_rep;
		struct psep_write_req write_req;
		struct psep_write_rep write_rep;
		struct psep_session_end session_end;
		struct psep_test_req test_req;
		struct psep_fork_req fork_req;
		struct psep_fork_rep fork_rep;
		struct psep_test_rep test_rep;
		struct psep_repl_req repl_req;
		struct psep_repl_rep repl_rep;
		struct psep_repl_op_req repl_op_req;
		struct psep_repl_op_rep repl_op_rep;
		struct psep_event_req event_req;
		struct psep_event_rep event_rep;
		struct psep_users_req users_req;
		struct psep_users_rep users_rep;
		struct psep_ctl_req ctl_req;
		struct psep_ctl_rep ctl_rep;
		struct psep_stats_req stats_req;
		struct psep_stats_rep stats_rep;
		struct psep_metrics_req metrics_req;
		struct psep_metrics_rep metrics_rep;
		struct psep_resync_req resync_req;
		struct psep_resync_rep resync_rep;
		struct psep_quota_req quota_req;
		struct psep_quota_rep quota_rep;
		struct psep_watch_req watch_req;
		struct psep_watch_rep watch_rep;
		struct psep_watch_op_req watch_op_req;
	} u;
};

/*
 * The uid range writers may serve.  Set once at start (and at reload) in
 * the supervisor before any child is spawned; children inherit it.
 * last == 0 means no upper bound.  uid 0 is never valid.
 */
void psep_msg_set_uid_range(uint32_t first, uint32_t last);
bool psep_uid_allowed(uint32_t uid);

/*
 * Send one message: header (type, id; len is filled in) plus body_len bytes
 * of body, and fd if fd >= 0 (not consumed: the caller still owns it).
 * Blocks if the socket is blocking.  Returns 0, or -1 with errno
 * (EMSGSIZE if too large, EAGAIN on a full non-blocking socket).
 */
int psep_msg_send(int sock, uint16_t type, uint64_t id, const void *body,
		  size_t body_len, int fd);

/*
 * Receive and validate one message from a peer of role peer_role in state
 * peer_state (enum psep_state).  On success returns 0 and fills *msg (the
 * caller owns msg->fd and closes it, see psep_msg_clear).  Returns -1 with
 * errno: EAGAIN (nothing to read on a non-blocking socket), ECONNRESET (peer
 * closed: *why_out = "peer closed"), EPROTO (invalid message: *why_out says
 * why; any received fd is already closed; drop the peer).
 */
int psep_msg_recv(int sock, enum psep_role peer_role, enum psep_state peer_state,
		  struct psep_msg *msg, const char **why_out);

/* Close msg->fd if open and set it to -1. */
void psep_msg_clear(struct psep_msg *msg);

/* Name of a message type for logs ("?" if unknown). */
const char *psep_type_name(uint16_t type);

/* True if s holds a NUL within size bytes. */
bool psep_str_ok(const char *s, size_t size);
/* s[0..size) holds a NUL and no control byte before it (UTF-8 bytes >= 0x80
 * pass). */
bool psep_text_ok(const char *s, size_t size);
/* s[0..size) holds a server id: 1..size-1 octets %x21-7E, then a NUL. */
bool psep_server_id_ok(const char *s, size_t size);

#endif
