/* SPDX-License-Identifier: MIT */
/*
 * privsep/msg.c - the IPC spec table, sending, and the one receive path.
 *
 * Runs in:  every process.
 * Trust:    psep_msg_recv() is the only way a message reaches a handler.
 *           Before that it rejects truncated datagrams, a length that does
 *           not match the bytes read or the row, a sender role or state the
 *           row does not allow, a missing/extra/wrong-kind fd, and fields
 *           that fail the row's validator.  On failure every received fd is
 *           closed and the caller drops the peer.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "privsep/msg.h"

/* Largest store_repl_status value (storage/repl/repl.h, STORE_R_LIMIT). */
#define PSEP_REPL_RESULT_MAX 6u
/* Largest number of replicas (policy/policy.h, POLICY_MAX_REPLICAS). */
#define PSEP_MAX_REPLICAS 16u

enum psep_fd_rule {
	PSEP_FD_NONE,     /* no fd allowed */
	PSEP_FD_SOCKET,   /* a socket is required */
	PSEP_FD_MEMFD,    /* a sealed regular file is required */
	PSEP_FD_OPT_MEMFD,/* none, or a sealed regular file; the validator
			   * decides which the fields call for */
	PSEP_FD_OPT_FILE, /* none, or a regular file that is sealed (a memfd)
			   * or opened read-only */
	PSEP_FD_INOTIFY,  /* an anonymous inode (no file type: an inotify
			   * instance is one); its receiver only ever calls
			   * inotify_add_watch on it, which refuses any other */
};

struct psep_spec {
	uint16_t type;
	const char *name;
	uint32_t min_body, max_body;  /* bytes after the header */
	enum psep_fd_rule fd_rule;
	uint32_t senders;             /* bit per enum psep_role */
	uint32_t states;              /* bit per enum psep_state */
	int (*validate)(const struct psep_msg *m, const struct stat *fd_st,
			const char **why);
};

#define ROLE_BIT(r) (1u << (r))
#define STATE_BIT(s) (1u << (s))
#define CHILDREN (ROLE_BIT(PSEP_ROLE_LMTPD) | ROLE_BIT(PSEP_ROLE_WRITER_SETEUID) | \
		  ROLE_BIT(PSEP_ROLE_WRITER_CHILD) | ROLE_BIT(PSEP_ROLE_REPL_HOOK) | \
		  ROLE_BIT(PSEP_ROLE_REPLD) | ROLE_BIT(PSEP_ROLE_WRITER_TEMPLATE))
#define WRITERS (ROLE_BIT(PSEP_ROLE_WRITER_SETEUID) | ROLE_BIT(PSEP_ROLE_WRITER_CHILD))
#define SUP ROLE_BIT(PSEP_ROLE_SUPERVISOR)
#define LMTPD ROLE_BIT(PSEP_ROLE_LMTPD)
#define REPL_HOOK ROLE_BIT(PSEP_ROLE_REPL_HOOK)
#define REPLD ROLE_BIT(PSEP_ROLE_REPLD)
#define CONTROL ROLE_BIT(PSEP_ROLE_CONTROL)
#define TEMPLATE ROLE_BIT(PSEP_ROLE_WRITER_TEMPLATE)
#define RUNNING (STATE_BIT(PSEP_STATE_READY) | STATE_BIT(PSEP_STATE_STOPPING))

static uint32_t uid_first = 500, uid_last;

void
psep_msg_set_uid_range(uint32_t first, uint32_t last)
{
	uid_first = first;
	uid_last = last;
}

bool
psep_uid_allowed(uint32_t uid)
{
	if (uid == 0 || uid == (uint32_t)-1 || uid < uid_first)
		return false;
	return uid_last == 0 || uid <= uid_last;
}

bool
psep_str_ok(const char *s, size_t size)
{
	return memchr(s, '\0', size) != NULL;
}

bool
psep_text_ok(const char *s, size_t size)
{
	size_t i;

	for (i = 0; i < size && s[i] != '\0'; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
	return i < size;
}

static bool
guid_ok(const char *s)
{
	size_t i;

	for (i = 0; i < 32; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return s[32] == '\0';
}

/* A relative path of plain components: no "..", no "." components, no
 * empty component, no leading '/', no control bytes. */
static bool
rel_path_ok(const char *s, size_t size)
{
	const char *p = s;

	if (!psep_text_ok(s, size) || *s == '\0' || *s == '/')
		return false;
	while (*p != '\0') {
		size_t n = strcspn(p, "/");

		if (n == 0 || (n == 1 && p[0] == '.') ||
		    (n == 2 && p[0] == '.' && p[1] == '.'))
			return false;
		p += n;
		if (*p == '/')
			p++;
		if (*p == '\0' && p[-1] == '/')
			return false;
	}
	return true;
}

static bool
mailbox_ok(const char *s, size_t size)
{
	if (!psep_text_ok(s, size) || *s == '\0' || *s == '.' || strchr(s, '/') != NULL)
		return false;
	return strstr(s, "..") == NULL && strstr(s, "//") == NULL &&
	       s[strlen(s) - 1] != '/';
}

static int
fail(const char **why, const char *text)
{
	*why = text;
	return -1;
}

static int
v_hello(const struct psep_msg *m, const struct stat *st, const char **why)
{
	(void)st;
	if (m->u.hello.version != PSEP_PROTO_VERSION)
		return fail(why, "protocol version mismatch");
	if (m->u.hello.role >= PSEP_ROLE_COUNT)
		return fail(why, "bad role");
	return 0;
}

static int
v_log(const struct psep_msg *m, const struct stat *st, const char **why)
{
	(void)st;
	if (m->u.log.level > PSEP_LOG_ERR)
		return fail(why, "bad log level");
	if (m->u.log.text_len != m->body_len - sizeof(struct psep_log))
		return fail(why, "log text length mismatch");
	return 0;
}

static int
v_client_fd(const struct psep_msg *m, const struct stat *st, const char **why)
{
	(void)st;
	if (!psep_text_ok(m->u.client_fd.listener, sizeof(m->u.client_fd.listener)))
		return fail(why, "bad listener name");
	return 0;
}

static int
v_empty(const struct psep_msg *m, const struct stat *st, const char **why)
{
	(void)m;
	(void)st;
	(void)why;
	return 0;
}

static int
v_rcpt_req(const struct psep_msg *m, const struct stat *st, const char **why)
{
	const struct psep_rcpt_req *r = &m->u.rcpt_req;

	(void)st;
	if (!psep_text_ok(r->session, sizeof(r->session)))
		return fail(why, "bad session id");
	if (!psep_text_ok(r->address, sizeof(r->address)))
		return fail(why, "bad address");
	return 0;
}

static int
result_check(const struct dlv_result *r, const char **why)
{
	if (r->status > DLV_PERMFAIL)
		return fail(why, "bad result status");
	if (r->code < 200 || r->code > 599)
		return fail(why, "bad reply code");
	if (!psep_text_ok(r->enhanced, sizeof(r->enhanced)) ||
	    !psep_text_ok(r->text, sizeof(r->text)))
		return fail(why, "bad result text");
	return 0;
}

static int
v_rcpt_rep(const struct psep_msg *m, const struct stat *st, const char **why)
{
	(void)st;
	return result_check(&m->u.rcpt_rep.result, why);
}

static int
body_check(uint64_t size, uint64_t vsize, const struct stat *st, const char **why)
{
	if ((uint64_t)st->st_size != size)
		return fail(why, "body size does not match the memfd");
	if (vsize < size || vsize > 2 * size)
		return fail(why, "bad body vsize");
	return 0;
}

static int
v_deliver_req(const struct psep_msg *m, const struct stat *st, const char **why)
{
	const struct psep_deliver_req *r = &m->u.deliver_req;

	if (!psep_text_ok(r->session, sizeof(r->session)) ||
	    !psep_text_ok(r->address, sizeof(r->address)))
		return fail(why, "bad session or address");
	if (!psep_text_ok(r->msgid, sizeof(r->msgid)) || strchr(r->msgid, ' ') != NULL)
		return fail(why, "bad message id");
	if (r->prefix_len != m->body_len - sizeof(*r))
		return fail(why, "prefix length mismatch");
	return body_check(r->body_size, r->body_vsize, st, why);
}

static int
v_deliver_rep(const struct psep_msg *m, const struct stat *st, const char **why)
{
	const struct psep_deliver_rep *r = &m->u.deliver_rep;

	(void)st;
	if (r->guid[0] != '\0' && !guid_ok(r->guid))
		return fail(why, "bad guid");
	return result_check(&r->result, why);
}

static int
quota_check(const struct psep_quota *q, const char **why)
{
	if (q->on > 1 || q->force > 1 || q->enforce > 1)
		return fail(why, "bad quota flags");
	if (!q->on && (q->bytes != 0 || q->count != 0 || q->force || q->enforce))
		return fail(why, "quota limits without quota");
	return 0;
}

/* A user's Maildir as the supervisor resolved it: an absolute base and a
 * relative path without "..", both NUL-terminated text. */
static int
maildir_check(const char *base, size_t base_size, const char *rel, size_t rel_size,
	      const char **why)
{
	if (!psep_text_ok(base, base_size) || base[0] != '/')
		return fail(why, "bad mail base");
	if (!rel_path_ok(rel, rel_size))
		return fail(why, "bad mail path");
	return 0;
}

static int
v_write_req(const struct psep_msg *m, const struct stat *st, const char **why)
{
	const struct psep_write_req *r = &m->u.write_req;

	if (!psep_uid_allowed(r->uid))
		return fail(why, "uid not allowed");
	if (r->gid == 0 || r->gid == (uint32_t)-1 || r->ngroups > PSEP_MAX_GROUPS)
		return fail(why, "bad gid or group count");
	for (uint32_t i = 0; i < r->ngroups; i++)
		if (r->groups[i] == 0 || r->groups[i] == (uint32_t)-1)
			return fail(why, "bad supplementary group");
	if (r->prefix_len != m->body_len - sizeof(*r))
		return fail(why, "prefix length mismatch");
	if (!psep_text_ok(r->session, sizeof(r->session)) ||
	    !psep_text_ok(r->user, sizeof(r->user)))
		return fail(why, "bad session or user");
	if (maildir_check(r->mail_base, sizeof(r->mail_base), r->mail_rel,
			  sizeof(r->mail_rel), why) < 0)
		return -1;
	if (!mailbox_ok(r->mailbox, sizeof(r->mailbox)))
		return fail(why, "bad mailbox name");
	if (!guid_ok(r->guid))
		return fail(why, "bad guid");
	if (r->early_stamp > 1 || r->mailbox_create > 1)
		return fail(why, "bad early_stamp or mailbox_create");
	if (quota_check(&r->quota, why) < 0)
		return -1;
	return body_check(r->body_size, r->body_vsize, st, why);
}

static int
v_write_rep(const struct psep_msg *m, const struct stat *st, const char **why)
{
	const struct psep_write_rep *r = &m->u.write_rep;

	(void)st;
	if (r->err < 0 || r->in_inbox > 1 || r->duplicate > 1 ||
	    (r->duplicate && r->err != 0))
		return fail(why, "bad errno, in_inbox or duplicate");
	if (!psep_text_ok(r->what, sizeof(r->what)) ||
	    !psep_text_ok(r->filename, sizeof(r->filename)) ||
	    !psep_str_ok(r->guid, sizeof(r->guid)))
		return fail(why, "bad write reply text");
	if (r->err == 0 && (!guid_ok(r->guid) ||
			    (r->filename[0] == '\0' && !r->duplicate) ||
			    r->filename[0] == '.' || strchr(r->filename, '/') != NULL))
		return fail(why, "bad guid or file name");
	return 0;
}

static int
v_write_stamp(const struct psep_msg *m, const struct stat *st, const char **why)
{
	const struct psep_write_rep *r = &m->u.write_rep;

	if (r->err != 0 || r->imap_uid == 0 || r->modseq == 0 || r->duplicate)
		return fail(why, "a stamp needs err 0, a uid and a modseq");
	return v_write_rep(m, st, why);
}

static int
v_session_end(const struct psep_msg *m, const struct stat *st, const char **why)
{
	(void)st;
	if (!psep_text_ok(m->u.session_end.session, sizeof(m->u.session_end.session)))
		return fail(why, "bad session id");
	return 0;
}

#ifdef STOWD_TEST_HOOKS
static int
v_test_req(const struct psep_msg *m, const struct stat *st, const char **why)
{
	(void)st;
	if (m->u.test_req.op != PSEP_TEST_FORBIDDEN_SYSCALL &&
	    m->u.test_req.op != PSEP_TEST_STALL &&
	    m->u.test_req.op != PSEP_TEST_BOGUS_STAMP &&
	    m->u.test_req.op != PSEP_TEST_DIE_AFTER_STAMP &&
	    m->u.test_req.op != PSEP_TEST_STALL_AFTER_STAMP &&
	    m->u.test_req.op != PSEP_TEST_DIE_AFTER_SAVE)
		return fail(why, "bad test op");
	return 0;
}
#endif

/* ---- replication ------------------------------------------------------ */

bool
psep_server_id_ok(const char *s, size_t size)
{
	size_t i;

	for (i = 0; i < size && s[i] != '\0'; i++)
		if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
			return false;
	return i > 0 && i < size;
}

static bool
op_has_guid(uint32_t op)
{
	return op == PSEP_REPL_SAVE || op == PSEP_REPL_STORE ||
	       op == PSEP_REPL_EXPUNGE || op == PSEP_REPL_FETCH;
}

static int
cmd_strings_check(const struct psep_repl_cmd *c, const char **why)
{
	if (!psep_str_ok(c->origin, sizeof(c->origin)) ||
	    !psep_str_ok(c->peer, sizeof(c->peer)) ||
	    !psep_str_ok(c->user, sizeof(c->user)) ||
	    !psep_str_ok(c->mailbox, sizeof(c->mailbox)) ||
	    !psep_str_ok(c->mailbox2, sizeof(c->mailbox2)) ||
	    !psep_str_ok(c->guid, sizeof(c->guid)) ||
	    !psep_str_ok(c->flags, sizeof(c->flags)))
		return fail(why, "replication field without NUL");
	if (!psep_text_ok(c->user, sizeof(c->user)) || c->user[0] == '\0')
		return fail(why, "bad user");
	if (!psep_text_ok(c->flags, sizeof(c->flags)))
		return fail(why, "bad flags");
	if (c->peer[0] != '\0' && !psep_server_id_ok(c->peer, sizeof(c->peer)))
		return fail(why, "bad peer id");
	return 0;
}

/* The fields of one replication command; fd/st: the message's fd (SAVE:
 * the sealed body of exactly body_size bytes; CAPTURE: none, or the
 * sealed names of exactly body_size bytes, at most PSEP_CAPTURE_NAMES_MAX;
 * otherwise none). */
static int
cmd_check(const struct psep_repl_cmd *c, int fd, const struct stat *st,
	  const char **why)
{
	if (c->op < PSEP_REPL_SAVE || c->op > PSEP_REPL_OP_MAX)
		return fail(why, "bad replication op");
	if (cmd_strings_check(c, why) < 0)
		return -1;
	if (psep_repl_op_is_event(c->op) ? !psep_server_id_ok(c->origin, sizeof(c->origin))
			       : c->origin[0] != '\0')
		return fail(why, "bad origin");
	if (!psep_repl_op_is_event(c->op) && c->modseq != 0)
		return fail(why, "modseq on a query");
	if (c->op == PSEP_REPL_LIST || c->op == PSEP_REPL_CAPTURE_BOXES ?
	    c->mailbox[0] != '\0'
				    : !mailbox_ok(c->mailbox, sizeof(c->mailbox)))
		return fail(why, "bad mailbox name");
	if (c->op == PSEP_REPL_RENAME ? !mailbox_ok(c->mailbox2, sizeof(c->mailbox2))
				      : c->mailbox2[0] != '\0')
		return fail(why, "bad second mailbox name");
	if (op_has_guid(c->op) ? !guid_ok(c->guid) : c->guid[0] != '\0')
		return fail(why, "bad guid");
	if (c->op != PSEP_REPL_SAVE && c->op != PSEP_REPL_STORE && c->flags[0] != '\0')
		return fail(why, "flags on a command without flags");
	if (c->op == PSEP_REPL_CAPTURE && fd >= 0)
		return c->body_size > 0 && c->body_size <= PSEP_CAPTURE_NAMES_MAX &&
		       (uint64_t)st->st_size == c->body_size ? 0 :
		       fail(why, "bad CAPTURE names memfd");
	if (c->op != PSEP_REPL_SAVE)
		return fd < 0 && c->body_size == 0 ? 0 :
		       fail(why, "body on a command other than SAVE or CAPTURE");
	if (fd < 0)
		return fail(why, "SAVE without a body");
	if ((uint64_t)st->st_size != c->body_size)
		return fail(why, "body size does not match the memfd");
	return 0;
}

static int
v_repl_req(const struct psep_msg *m, const struct stat *st, const char **why)
{
	return cmd_check(&m->u.repl_req.cmd, m->fd, st, why);
}

/* A reply fd: its size is announced in the reply. */
static int
reply_fd_check(int fd, uint64_t size, const struct stat *st, const char **why)
{
	if (fd >= 0 && (uint64_t)st->st_size != size)
		return fail(why, "reply size does not match the fd");
	return 0;
}

static int
v_repl_rep(const struct psep_msg *m, const struct stat *st, const char **why)
{
	const struct psep_repl_rep *r = &m->u.repl_rep;

	if (r->status > PSEP_RS_BAD || r->effective > 1)
		return fail(why, "bad replication status");
	if (!psep_str_ok(r->origin, sizeof(r->origin)) ||
	    (r->origin[0] != '\0' && !psep_server_id_ok(r->origin, sizeof(r->origin))))
		return fail(why, "bad origin");
	if (!psep_text_ok(r->code, sizeof(r->code)) || !psep_text_ok(r->text, sizeof(r->text)) ||
	    !psep_text_ok(r->flags, sizeof(r->flags)))
		return fail(why, "bad replication reply text");
	return reply_fd_check(m->fd, r->size, st, why);
}

static int
creds_check(uint32_t uid, uint32_t gid, uint32_t ngroups, const uint32_t *groups,
	    const char **why)
{
	if (!psep_uid_allowed(uid))
		return fail(why, "uid not allowed");
	if (gid == 0 || gid == (uint32_t)-1 || ngroups > PSEP_MAX_GROUPS)
		return fail(why, "bad gid or group count");
	for (uint32_t i = 0; i < ngroups; i++)
		if (groups[i] == 0 || groups[i] == (uint32_t)-1)
			return fail(why, "bad supplementary group");
	return 0;
}

static int
v_fork_req(const struct psep_msg *m, const struct stat *st, const char **why)
{
	const struct psep_fork_req *r = &m->u.fork_req;

	(void)st;
	return creds_check(r->uid, r->gid, r->ngroups, r->groups, why);
}

static int
v_fork_rep(const struct psep_msg *m, const struct stat *st, const char **why)
{
	const struct psep_fork_rep *r = &m->u.fork_rep;

	(void)st;
	if ((r->pid > 1 && r->err == 0) || (r->pid == 0 && r->err > 0))
		return 0;
	return fail(why, "bad fork result");
}

static int
v_repl_op_req(const struct psep_msg *m, const struct stat *st, const char **why)
{
	const struct psep_repl_op_req *r = &m->u.repl_op_req;

	if (creds_check(r->uid, r->gid, r->ngroups, r->groups, why) < 0)
		return -1;
	if (maildir_check(r->mail_base, sizeof(r->mail_base), r->mail_rel,
			  sizeof(r->mail_rel), why) < 0)
		return -1;
	if (quota_check(&r->quota, why) < 0)
		return -1;
	return cmd_check(&r->cmd, m->fd, st, why);
}

static int
v_quota_req(const struct psep_msg *m, const struct stat *st, const char **why)
{
	const struct psep_quota_req *r = &m->u.quota_req;

	(void)st;
	if (creds_check(r->uid, r->gid, r->ngroups, r->groups, why) < 0)
		return -1;
	if (!psep_text_ok(r->user, sizeof(r->user)))
		return fail(why, "bad user");
	if (maildir_check(r->mail_base, sizeof(r->mail_base), r->mail_rel,
			  sizeof(r->mail_rel), why) < 0)
		return -1;
	if (quota_check(&r->quota, why) < 0)
		return -1;
	if (!r->quota.on)
		return fail(why, "quota request without quota");
	return 0;
}

static int
v_quota_rep(const struct psep_msg *m, const struct stat *st, const char **why)
{
	const struct psep_quota_rep *r = &m->u.quota_rep;

	(void)st;
	if (r->err < 0 || r->fits > 1 || (r->err != 0 && r->fits != 0))
		return fail(why, "bad errno or fits");
	if (!psep_text_ok(r->what, sizeof(r->what)))
		return fail(why, "bad quota reply text");
	return 0;
}

static int
v_repl_op_rep(const struct psep_msg *m, const struct stat *st, const char **why)
{
	const struct psep_repl_op_rep *r = &m->u.repl_op_rep;

	if (r->err < 0)
		return fail(why, "bad errno");
	if (r->result > PSEP_REPL_RESULT_MAX || r->effective > 1)
		return fail(why, "bad replication result");
	if (!psep_str_ok(r->origin, sizeof(r->origin)) ||
	    (r->origin[0] != '\0' && !psep_server_id_ok(r->origin, sizeof(r->origin))))
		return fail(why, "bad origin");
	if (!psep_text_ok(r->what, sizeof(r->what)) || !psep_text_ok(r->flags, sizeof(r->flags)) ||
	    !psep_text_ok(r->filename, sizeof(r->filename)))
		return fail(why, "bad replication reply text");
	if (r->filename[0] == '.' || strchr(r->filename, '/') != NULL)
		return fail(why, "bad file name");
	if (r->err != 0 && m->fd >= 0)
		return fail(why, "fd with a failed operation");
	return reply_fd_check(m->fd, r->size, st, why);
}

static int
v_event_req(const struct psep_msg *m, const struct stat *st, const char **why)
{
	const struct psep_event_req *r = &m->u.event_req;

	if (!psep_repl_op_is_event(r->cmd.op))
		return fail(why, "event of a query op");
	if (r->want_acks > PSEP_MAX_REPLICAS)
		return fail(why, "bad want_acks");
	if (r->prefix_len != m->body_len - sizeof(*r))
		return fail(why, "prefix length mismatch");
	if (r->cmd.op != PSEP_REPL_SAVE && r->prefix_len != 0)
		return fail(why, "prefix on an event other than SAVE");
	return cmd_check(&r->cmd, m->fd, st, why);
}

static int
v_event_rep(const struct psep_msg *m, const struct stat *st, const char **why)
{
	(void)st;
	if (m->u.event_rep.status > PSEP_EV_FAILED)
		return fail(why, "bad event status");
	if (m->u.event_rep.acks > PSEP_MAX_REPLICAS)
		return fail(why, "bad ack count");
	return 0;
}

static int
v_users_rep(const struct psep_msg *m, const struct stat *st, const char **why)
{
	const struct psep_users_rep *r = &m->u.users_rep;

	(void)st;
	if (r->err < 0)
		return fail(why, "bad errno");
	if ((r->err == 0) != (m->fd >= 0))
		return fail(why, "users list fd missing or unexpected");
	return 0;
}

/* ---- operations ------------------------------------------------------- */

static int
v_ctl_req(const struct psep_msg *m, const struct stat *st, const char **why)
{
	const struct psep_ctl_req *r = &m->u.ctl_req;

	(void)st;
	if (r->cmd < PSEP_CTL_STATUS || r->cmd > PSEP_CTL_CMD_MAX)
		return fail(why, "bad control command");
	if (r->flags & ~PSEP_CTL_FLAGS)
		return fail(why, "bad control flags");
	if (!psep_text_ok(r->user, sizeof(r->user)) ||
	    !psep_text_ok(r->mailbox, sizeof(r->mailbox)) ||
	    !psep_text_ok(r->replica, sizeof(r->replica)))
		return fail(why, "bad control argument");
	if (r->mailbox[0] != '\0' && !mailbox_ok(r->mailbox, sizeof(r->mailbox)))
		return fail(why, "bad mailbox name");
	if (r->cmd == PSEP_CTL_USER && r->user[0] == '\0')
		return fail(why, "user command without a user");
	if (r->cmd == PSEP_CTL_RESYNC &&
	    (r->user[0] == '\0') != ((r->flags & PSEP_CTL_F_ALL) != 0))
		return fail(why, "resync needs a user or --all, not both");
	if (r->cmd != PSEP_CTL_RESYNC && (r->flags & PSEP_CTL_F_ALL))
		return fail(why, "--all on a command other than resync");
	if (r->cmd != PSEP_CTL_RESYNC && r->cmd != PSEP_CTL_USER && r->user[0] != '\0')
		return fail(why, "user on a command without a user");
	if (r->cmd != PSEP_CTL_RESYNC &&
	    (r->mailbox[0] != '\0' || r->replica[0] != '\0'))
		return fail(why, "mailbox or replica on a command other than resync");
	if (r->user[0] == '\0' && r->mailbox[0] != '\0')
		return fail(why, "mailbox without a user");
	return 0;
}

static int
v_ctl_rep(const struct psep_msg *m, const struct stat *st, const char **why)
{
	const struct psep_ctl_rep *r = &m->u.ctl_rep;

	if (r->err < 0)
		return fail(why, "bad errno");
	if (!psep_text_ok(r->text, sizeof(r->text)))
		return fail(why, "bad control reply text");
	if (m->fd < 0 && r->size != 0)
		return fail(why, "output size without output");
	return reply_fd_check(m->fd, r->size, st, why);
}

static int
v_stats_req(const struct psep_msg *m, const struct stat *st, const char **why)
{
	(void)st;
	if (!psep_text_ok(m->u.stats_req.user, sizeof(m->u.stats_req.user)))
		return fail(why, "bad user");
	return 0;
}

static int
v_watch_req(const struct psep_msg *m, const struct stat *st, const char **why)
{
	const struct psep_watch_req *r = &m->u.watch_req;

	(void)st;
	if (!psep_str_ok(r->user, sizeof(r->user)) || r->user[0] == '\0' ||
	    !psep_text_ok(r->user, sizeof(r->user)))
		return fail(why, "bad user");
	return 0;
}

static int
replica_stats_check(const struct psep_replica_stats *r, const char **why)
{
	if (!psep_text_ok(r->name, sizeof(r->name)) || r->name[0] == '\0')
		return fail(why, "bad replica name");
	if (!psep_str_ok(r->server_id, sizeof(r->server_id)) ||
	    (r->server_id[0] != '\0' && !psep_server_id_ok(r->server_id, sizeof(r->server_id))))
		return fail(why, "bad replica server id");
	if (r->connected > 1 || r->syncing > 1)
		return fail(why, "bad replica state");
	if (!psep_text_ok(r->last_error, sizeof(r->last_error)))
		return fail(why, "bad replica error text");
	for (size_t i = 1; i < PSEP_LAT_BUCKETS; i++)
		if (r->ack_buckets[i] < r->ack_buckets[i - 1])
			return fail(why, "histogram not cumulative");
	if (r->ack_buckets[PSEP_LAT_BUCKETS - 1] != r->ack_count)
		return fail(why, "histogram count mismatch");
	return 0;
}

static int
stats_check(const struct psep_stats_rep *r, const char **why)
{
	if (r->n > PSEP_MAX_REPLICAS)
		return fail(why, "bad replica count");
	for (uint32_t i = 0; i < r->n; i++)
		if (replica_stats_check(&r->r[i], why) < 0)
			return -1;
	return 0;
}

static int
v_stats_rep(const struct psep_msg *m, const struct stat *st, const char **why)
{
	(void)st;
	return stats_check(&m->u.stats_rep, why);
}

static int
histogram_check(const struct psep_histogram *h, const char **why)
{
	for (size_t i = 1; i < PSEP_LAT_BUCKETS; i++)
		if (h->buckets[i] < h->buckets[i - 1])
			return fail(why, "histogram not cumulative");
	if (h->buckets[PSEP_LAT_BUCKETS - 1] != h->count)
		return fail(why, "histogram count mismatch");
	return 0;
}

static int
v_metrics_rep(const struct psep_msg *m, const struct stat *st, const char **why)
{
	const struct psep_metrics_rep *r = &m->u.metrics_rep;

	(void)st;
	if (histogram_check(&r->c.lmtp, why) < 0 || histogram_check(&r->c.save, why) < 0)
		return -1;
	if (r->c.replica_stats_ok > 1)
		return fail(why, "bad replica stats flag");
	return stats_check(&r->repl, why);
}

static int
v_resync_req(const struct psep_msg *m, const struct stat *st, const char **why)
{
	const struct psep_resync_req *r = &m->u.resync_req;

	(void)st;
	if (r->all > 1)
		return fail(why, "bad all flag");
	if (!psep_text_ok(r->user, sizeof(r->user)) ||
	    !psep_text_ok(r->replica, sizeof(r->replica)) ||
	    !psep_text_ok(r->mailbox, sizeof(r->mailbox)))
		return fail(why, "bad resync argument");
	if ((r->user[0] == '\0') != (r->all == 1))
		return fail(why, "resync needs a user or all, not both");
	if (r->mailbox[0] != '\0' &&
	    (r->all || !mailbox_ok(r->mailbox, sizeof(r->mailbox))))
		return fail(why, "bad mailbox name");
	return 0;
}

static int
v_resync_rep(const struct psep_msg *m, const struct stat *st, const char **why)
{
	(void)st;
	if (m->u.resync_rep.err < 0)
		return fail(why, "bad errno");
	if (!psep_text_ok(m->u.resync_rep.text, sizeof(m->u.resync_rep.text)))
		return fail(why, "bad resync text");
	return 0;
}

/* WATCH_REP and WATCH_OP_REP: the memfd with err 0, maybe with ENOSPC. */
static int
v_watch_rep(const struct psep_msg *m, const struct stat *st, const char **why)
{
	const struct psep_watch_rep *r = &m->u.watch_rep;

	(void)st;
	if (r->err < 0)
		return fail(why, "bad errno");
	if (r->err == 0 && m->fd < 0)
		return fail(why, "watch list fd missing");
	if (r->err != 0 && r->err != ENOSPC && m->fd >= 0)
		return fail(why, "fd with a failed watch request");
	return 0;
}

static int
v_watch_op_req(const struct psep_msg *m, const struct stat *st, const char **why)
{
	const struct psep_watch_op_req *r = &m->u.watch_op_req;

	(void)st;
	if (creds_check(r->uid, r->gid, r->ngroups, r->groups, why) < 0)
		return -1;
	if (maildir_check(r->mail_base, sizeof(r->mail_base), r->mail_rel,
			  sizeof(r->mail_rel), why) < 0)
		return -1;
	if (!psep_str_ok(r->user, sizeof(r->user)) || !psep_text_ok(r->user, sizeof(r->user)))
		return fail(why, "bad user");
	return 0;
}

#define FIXED(s) sizeof(struct s), sizeof(struct s)
#define TAIL(s, max) sizeof(struct s), sizeof(struct s) + (max)

static const struct psep_spec specs[] = {
	{ PSEP_HELLO_REQ, "HELLO_REQ", FIXED(psep_hello), PSEP_FD_NONE, CHILDREN,
	  STATE_BIT(PSEP_STATE_NEW), v_hello },
	{ PSEP_HELLO_REP, "HELLO_REP", FIXED(psep_hello), PSEP_FD_NONE, SUP,
	  STATE_BIT(PSEP_STATE_NEW), v_hello },
	{ PSEP_LOG, "LOG", TAIL(psep_log, PSEP_LOG_MAX), PSEP_FD_NONE, CHILDREN,
	  RUNNING, v_log },
	{ PSEP_CLIENT_FD, "CLIENT_FD", FIXED(psep_client_fd), PSEP_FD_SOCKET, SUP,
	  STATE_BIT(PSEP_STATE_READY), v_client_fd },
	{ PSEP_SHUTDOWN, "SHUTDOWN", 0, 0, PSEP_FD_NONE, SUP, RUNNING, v_empty },
	{ PSEP_RCPT_REQ, "RCPT_REQ", FIXED(psep_rcpt_req), PSEP_FD_NONE, LMTPD,
	  RUNNING, v_rcpt_req },
	{ PSEP_RCPT_REP, "RCPT_REP", FIXED(psep_rcpt_rep), PSEP_FD_NONE, SUP,
	  RUNNING, v_rcpt_rep },
	{ PSEP_DELIVER_REQ, "DELIVER_REQ", TAIL(psep_deliver_req, PSEP_PREFIX_MAX),
	  PSEP_FD_MEMFD, LMTPD, RUNNING, v_deliver_req },
	{ PSEP_DELIVER_REP, "DELIVER_REP", FIXED(psep_deliver_rep), PSEP_FD_NONE, SUP,
	  RUNNING, v_deliver_rep },
	{ PSEP_WRITE_REQ, "WRITE_REQ", TAIL(psep_write_req, PSEP_PREFIX_MAX),
	  PSEP_FD_MEMFD, SUP, RUNNING, v_write_req },
	{ PSEP_WRITE_REP, "WRITE_REP", FIXED(psep_write_rep), PSEP_FD_NONE, WRITERS,
	  RUNNING, v_write_rep },
	{ PSEP_WRITE_STAMP, "WRITE_STAMP", FIXED(psep_write_rep), PSEP_FD_NONE,
	  WRITERS, RUNNING, v_write_stamp },
	{ PSEP_FORK_REQ, "FORK_REQ", FIXED(psep_fork_req), PSEP_FD_SOCKET, SUP,
	  STATE_BIT(PSEP_STATE_READY), v_fork_req },
	{ PSEP_FORK_REP, "FORK_REP", FIXED(psep_fork_rep), PSEP_FD_NONE, TEMPLATE,
	  RUNNING, v_fork_rep },
	{ PSEP_SESSION_END, "SESSION_END", FIXED(psep_session_end), PSEP_FD_NONE,
	  LMTPD, RUNNING, v_session_end },
	{ PSEP_REPL_REQ, "REPL_REQ", FIXED(psep_repl_req), PSEP_FD_OPT_MEMFD,
	  REPLD | REPL_HOOK, RUNNING, v_repl_req },
	{ PSEP_REPL_REP, "REPL_REP", FIXED(psep_repl_rep), PSEP_FD_OPT_FILE, SUP,
	  RUNNING, v_repl_rep },
	{ PSEP_REPL_OP_REQ, "REPL_OP_REQ", FIXED(psep_repl_op_req), PSEP_FD_OPT_MEMFD,
	  SUP, RUNNING, v_repl_op_req },
	{ PSEP_REPL_OP_REP, "REPL_OP_REP", FIXED(psep_repl_op_rep), PSEP_FD_OPT_FILE,
	  WRITERS, RUNNING, v_repl_op_rep },
	{ PSEP_EVENT_REQ, "EVENT_REQ", TAIL(psep_event_req, PSEP_PREFIX_MAX),
	  PSEP_FD_OPT_MEMFD, SUP, RUNNING, v_event_req },
	{ PSEP_EVENT_REP, "EVENT_REP", FIXED(psep_event_rep), PSEP_FD_NONE, REPL_HOOK,
	  RUNNING, v_event_rep },
	{ PSEP_USERS_REQ, "USERS_REQ", FIXED(psep_users_req), PSEP_FD_NONE, REPL_HOOK,
	  RUNNING, v_empty },
	{ PSEP_USERS_REP, "USERS_REP", FIXED(psep_users_rep), PSEP_FD_OPT_MEMFD, SUP,
	  RUNNING, v_users_rep },
	{ PSEP_CTL_REQ, "CTL_REQ", FIXED(psep_ctl_req), PSEP_FD_NONE, CONTROL,
	  STATE_BIT(PSEP_STATE_READY), v_ctl_req },
	{ PSEP_CTL_REP, "CTL_REP", FIXED(psep_ctl_rep), PSEP_FD_OPT_MEMFD, SUP,
	  STATE_BIT(PSEP_STATE_READY), v_ctl_rep },
	{ PSEP_STATS_REQ, "STATS_REQ", FIXED(psep_stats_req), PSEP_FD_NONE, SUP,
	  RUNNING, v_stats_req },
	{ PSEP_STATS_REP, "STATS_REP", FIXED(psep_stats_rep), PSEP_FD_NONE, REPL_HOOK,
	  RUNNING, v_stats_rep },
	{ PSEP_METRICS_REQ, "METRICS_REQ", FIXED(psep_metrics_req), PSEP_FD_NONE,
	  LMTPD, RUNNING, v_empty },
	{ PSEP_METRICS_REP, "METRICS_REP", FIXED(psep_metrics_rep), PSEP_FD_NONE, SUP,
	  RUNNING, v_metrics_rep },
	{ PSEP_METRICS_CLIENT, "METRICS_CLIENT", FIXED(psep_client_fd), PSEP_FD_SOCKET,
	  SUP, STATE_BIT(PSEP_STATE_READY), v_client_fd },
	{ PSEP_RESYNC_REQ, "RESYNC_REQ", FIXED(psep_resync_req), PSEP_FD_NONE, SUP,
	  RUNNING, v_resync_req },
	{ PSEP_RESYNC_REP, "RESYNC_REP", FIXED(psep_resync_rep), PSEP_FD_NONE,
	  REPL_HOOK, RUNNING, v_resync_rep },
	{ PSEP_QUOTA_REQ, "QUOTA_REQ", FIXED(psep_quota_req), PSEP_FD_NONE, SUP,
	  RUNNING, v_quota_req },
	{ PSEP_QUOTA_REP, "QUOTA_REP", FIXED(psep_quota_rep), PSEP_FD_NONE, WRITERS,
	  RUNNING, v_quota_rep },
	{ PSEP_WATCH_REQ, "WATCH_REQ", FIXED(psep_watch_req), PSEP_FD_INOTIFY,
	  REPL_HOOK, RUNNING, v_watch_req },
	{ PSEP_WATCH_REP, "WATCH_REP", FIXED(psep_watch_rep), PSEP_FD_OPT_MEMFD, SUP,
	  RUNNING, v_watch_rep },
	{ PSEP_WATCH_OP_REQ, "WATCH_OP_REQ", FIXED(psep_watch_op_req), PSEP_FD_INOTIFY,
	  SUP, RUNNING, v_watch_op_req },
	{ PSEP_WATCH_OP_REP, "WATCH_OP_REP", FIXED(psep_watch_rep), PSEP_FD_OPT_MEMFD,
	  WRITERS, RUNNING, v_watch_rep },
#ifdef STOWD_TEST_HOOKS
	{ PSEP_TEST_REQ, "TEST_REQ", FIXED(psep_test_req), PSEP_FD_NONE, SUP,
	  RUNNING, v_test_req },
	{ PSEP_TEST_REP, "TEST_REP", FIXED(psep_test_rep), PSEP_FD_NONE, WRITERS,
	  RUNNING, v_empty },
#endif
};

static const struct psep_spec *
spec_find(uint16_t type)
{
	size_t i;

	for (i = 0; i < sizeof(specs) / sizeof(specs[0]); i++)
		if (specs[i].type == type)
			return &specs[i];
	return NULL;
}

const char *
psep_type_name(uint16_t type)
{
	const struct psep_spec *s = spec_find(type);

	return s ? s->name : "?";
}

int
psep_msg_send(int sock, uint16_t type, uint64_t id, const void *body,
	      size_t body_len, int fd)
{
	struct psep_hdr hdr = { .type = type, .flags = 0, .id = id };
	struct iovec iov[2];
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int))];
	} cbuf;
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = body_len ? 2 : 1 };
	ssize_t n;

	if (body_len > PSEP_MSG_MAX - sizeof(hdr)) {
		errno = EMSGSIZE;
		return -1;
	}
	hdr.len = (uint32_t)(sizeof(hdr) + body_len);
	iov[0].iov_base = &hdr;
	iov[0].iov_len = sizeof(hdr);
	iov[1].iov_base = (void *)(uintptr_t)body;
	iov[1].iov_len = body_len;
	if (fd >= 0) {
		struct cmsghdr *c;

		memset(&cbuf, 0, sizeof(cbuf));
		mh.msg_control = cbuf.buf;
		mh.msg_controllen = sizeof(cbuf.buf);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	do {
		n = sendmsg(sock, &mh, MSG_NOSIGNAL);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return -1;
	if ((size_t)n != hdr.len) {
		errno = EMSGSIZE;
		return -1;
	}
	return 0;
}

void
psep_msg_clear(struct psep_msg *msg)
{
	if (msg->fd >= 0)
		close(msg->fd);
	msg->fd = -1;
}

/* Collect SCM_RIGHTS fds: the first goes to *fd_out, every fd beyond one
 * is closed and counted in *extra_out. */
static void
take_fds(struct msghdr *mh, int *fd_out, unsigned *extra_out)
{
	struct cmsghdr *c;

	for (c = CMSG_FIRSTHDR(mh); c != NULL; c = CMSG_NXTHDR(mh, c)) {
		size_t nfds, i;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		nfds = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (i = 0; i < nfds; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (*fd_out < 0) {
				*fd_out = fd;
			} else {
				close(fd);
				(*extra_out)++;
			}
		}
	}
}

static int
check_fd(const struct psep_spec *spec, int fd, struct stat *st, const char **why)
{
	int seals;
	const int need = F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK;

	if (spec->fd_rule == PSEP_FD_NONE)
		return fd < 0 ? 0 : fail(why, "unexpected fd");
	if (fd < 0 && (spec->fd_rule == PSEP_FD_OPT_MEMFD ||
		       spec->fd_rule == PSEP_FD_OPT_FILE))
		return 0;
	if (fd < 0)
		return fail(why, "missing fd");
	if (fstat(fd, st) < 0)
		return fail(why, "fstat on received fd failed");
	if (spec->fd_rule == PSEP_FD_SOCKET)
		return S_ISSOCK(st->st_mode) ? 0 : fail(why, "fd is not a socket");
	if (spec->fd_rule == PSEP_FD_INOTIFY)
		return (st->st_mode & S_IFMT) == 0 ? 0 :
		       fail(why, "fd is not an inotify instance");
	if (!S_ISREG(st->st_mode))
		return fail(why, "body fd is not a regular file");
	seals = fcntl(fd, F_GET_SEALS);
	if (spec->fd_rule == PSEP_FD_OPT_FILE) {
		int fl = fcntl(fd, F_GETFL);

		if ((seals >= 0 && (seals & need) == need) ||
		    (fl >= 0 && (fl & O_ACCMODE) == O_RDONLY))
			return 0;
		return fail(why, "file fd is neither sealed nor read-only");
	}
	if (seals < 0 || (seals & need) != need)
		return fail(why, "body memfd is not sealed");
	return 0;
}

static int
check_msg(struct psep_msg *m, size_t n, enum psep_role peer_role,
	  enum psep_state peer_state, const char **why)
{
	const struct psep_spec *spec;
	struct stat st;

	memset(&st, 0, sizeof(st));
	if (n < sizeof(struct psep_hdr))
		return fail(why, "short message");
	if (m->hdr.len != n)
		return fail(why, "length field does not match datagram");
	spec = spec_find(m->hdr.type);
	if (spec == NULL)
		return fail(why, "unknown message type");
	m->body_len = n - sizeof(struct psep_hdr);
	if (m->body_len < spec->min_body || m->body_len > spec->max_body)
		return fail(why, "bad length for message type");
	if (peer_role >= PSEP_ROLE_COUNT || !(spec->senders & ROLE_BIT(peer_role)))
		return fail(why, "message type not allowed from this sender");
	if (peer_state > PSEP_STATE_STOPPING || !(spec->states & STATE_BIT(peer_state)))
		return fail(why, "message type not allowed in this state");
	if (m->hdr.flags != 0)
		return fail(why, "unknown flags");
	if (check_fd(spec, m->fd, &st, why) < 0)
		return -1;
	m->fd_dev = st.st_dev;
	m->fd_ino = st.st_ino;
	return spec->validate(m, &st, why);
}

int
psep_msg_recv(int sock, enum psep_role peer_role, enum psep_state peer_state,
	      struct psep_msg *msg, const char **why_out)
{
	struct iovec iov[2];
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * 4)];
	} cbuf;
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = 2,
			     .msg_control = cbuf.buf,
			     .msg_controllen = sizeof(cbuf.buf) };
	unsigned extra = 0;
	ssize_t n;
	const char *why = NULL;

	msg->fd = -1;
	msg->body_len = 0;
	iov[0].iov_base = &msg->hdr;
	iov[0].iov_len = sizeof(msg->hdr);
	iov[1].iov_base = msg->u.raw;
	iov[1].iov_len = sizeof(msg->u.raw) - sizeof(msg->hdr);
	do {
		n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
	} while (n < 0 && errno == EINTR);
	if (n < 0) {
		*why_out = "recvmsg failed";
		return -1;
	}
	take_fds(&mh, &msg->fd, &extra);
	if (n == 0) {
		char c;
		struct iovec piov = { .iov_base = &c, .iov_len = 1 };
		struct msghdr pmh = { .msg_iov = &piov, .msg_iovlen = 1 };

		psep_msg_clear(msg);
		if (recvmsg(sock, &pmh, MSG_PEEK | MSG_DONTWAIT) == 0) {
			*why_out = "peer closed";
			errno = ECONNRESET;
			return -1;
		}
		*why_out = "empty datagram";
		errno = EPROTO;
		return -1;
	}
	if (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC))
		why = "truncated message or control data";
	else if (extra > 0)
		why = "more than one fd";
	else
		(void)check_msg(msg, (size_t)n, peer_role, peer_state, &why);
	if (why != NULL) {
		psep_msg_clear(msg);
		*why_out = why;
		errno = EPROTO;
		return -1;
	}
	return 0;
}
