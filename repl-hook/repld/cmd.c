/* SPDX-License-Identifier: MIT */
/*
 * repl-hook/repld/cmd.c - the command pipeline of a replication connection:
 * session rules of HELLO (§6.2), tags in flight (§6.3), the event checks
 * shared by all events (§8 rules 1-3), per-user queues, request ids and
 * the matching of supervisor replies.
 *
 * Runs in:  repld.
 * Trust:    frames come from the peer: nothing is sent to the supervisor
 *           before repl_parse_command accepted the whole command and the
 *           connection's HELLO state allows it.  A TLS peer's HELLO may
 *           claim only a server id that its certificate names and that
 *           replication_peers lists (when set).  Replies come from the
 *           supervisor (validated by psep_msg_recv); a reply whose id is
 *           unknown (its connection is gone) is dropped.
 * Order:    commands of one user on one connection run one at a time in
 *           arrival order: a command is sent only when no earlier command
 *           of the same user is still queued or at the supervisor.  Commands
 *           of different users run concurrently.  Replies are queued for
 *           output in completion order.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "repl-hook/repld/repld_int.h"
#include "policy/policy.h"
#include "privsep/privsep.h"

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static struct rcmd *
rcmd_new(struct repld_conn *c, enum rcmd_kind kind, const char *tag)
{
	struct rcmd *r = xcalloc(1, sizeof(*r));

	r->conn = c;
	r->kind = kind;
	r->body_fd = -1;
	r->rep_fd = -1;
	if (tag != NULL)
		xstrlcpy(r->tag, tag, sizeof(r->tag));
	c->n_cmds++;
	return r;
}

void
repld_cmd_line(struct repld_conn *c, const char *fmt, ...)
{
	struct rcmd *r = rcmd_new(c, RCMD_LINE, NULL);
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(r->line, sizeof(r->line), fmt, ap);
	va_end(ap);
	r->state = RCMD_DONE;
	TAILQ_INSERT_TAIL(&c->outq, r, entry);
}

void
repld_conn_bye(struct repld_conn *c, const char *line)
{
	if (c->bye[0] == '\0')
		xstrlcpy(c->bye, line, sizeof(c->bye));
	c->no_input = true;
}

void
repld_cmd_count_bad(struct repld_conn *c)
{
	if (++c->bads >= REPL_MAX_BADS) {
		log_warn("conn=%u %s too many errors", c->serial, c->name);
		repld_conn_bye(c, "* BYE [PROTOCOL] too many errors");
	}
}

static void
tagged_bad(struct repld_conn *c, const char *tag, const char *code,
	   const char *text)
{
	repld_cmd_line(c, "%s BAD [%s] %s", tag, code, text);
	repld_cmd_count_bad(c);
}

static void
untagged_bad(struct repld_conn *c, const char *code, const char *text)
{
	repld_cmd_line(c, "* BAD [%s] %s", code, text);
	repld_cmd_count_bad(c);
}

/* A tag belongs to a command that has not been answered yet. */
static bool
tag_in_use(const struct repld_conn *c, const char *tag)
{
	const struct rcmd *r;

	TAILQ_FOREACH(r, &c->pipe, entry)
		if (strcmp(r->tag, tag) == 0)
			return true;
	TAILQ_FOREACH(r, &c->outq, entry)
		if (r->kind != RCMD_LINE && strcmp(r->tag, tag) == 0)
			return true;
	return c->logout_tag[0] != '\0' && strcmp(c->logout_tag, tag) == 0;
}

/* ---- completion ------------------------------------------------------- */

static void
unhash(struct repld_server *srv, struct rcmd *r)
{
	if (!r->hashed)
		return;
	LIST_REMOVE(r, hash);
	TAILQ_REMOVE(&srv->sentq, r, by_time);
	r->hashed = false;
	if (TAILQ_EMPTY(&srv->sentq) && LIST_EMPTY(&srv->ghosts) && srv->ev_timer != NULL)
		evtimer_del(srv->ev_timer);
}

/* ---- timed-out commands the supervisor may still run ------------------ */

static bool
ghost_user(const struct repld_server *srv, const char *user)
{
	const struct repld_ghost *g;

	LIST_FOREACH(g, &srv->ghosts, link)
		if (strcmp(g->user, user) == 0)
			return true;
	return false;
}

static void
ghost_add(struct repld_server *srv, const struct rcmd *r)
{
	struct repld_ghost *g = xcalloc(1, sizeof(*g));

	g->id = r->id;
	g->deadline_ms = now_ms() + srv->cfg->reply_timeout_ms;
	memcpy(g->user, r->cmd.user, sizeof(g->user));
	LIST_INSERT_HEAD(&srv->ghosts, g, link);
}

void
repld_cmd_ghosts_free(struct repld_server *srv)
{
	struct repld_ghost *g;

	while ((g = LIST_FIRST(&srv->ghosts)) != NULL) {
		LIST_REMOVE(g, link);
		free(g);
	}
}

/* Move r from the pipe to the output queue with its reply set. */
static void
complete(struct rcmd *r)
{
	struct repld_conn *c = r->conn;

	unhash(c->srv, r);
	TAILQ_REMOVE(&c->pipe, r, entry);
	r->state = RCMD_DONE;
	TAILQ_INSERT_TAIL(&c->outq, r, entry);
	if (r->rep.status == PSEP_RS_BAD)
		repld_cmd_count_bad(c);
}

static void
complete_with(struct rcmd *r, enum psep_repl_status st, const char *code,
	      const char *text)
{
	memset(&r->rep, 0, sizeof(r->rep));
	r->rep.status = st;
	xstrlcpy(r->rep.code, code, sizeof(r->rep.code));
	xstrlcpy(r->rep.text, text, sizeof(r->rep.text));
	complete(r);
}

/* True if an earlier command in the pipe has the same user. */
static bool
user_busy(const struct repld_conn *c, const struct rcmd *r)
{
	const struct rcmd *p;

	TAILQ_FOREACH(p, &c->pipe, entry) {
		if (p == r)
			break;
		if (strcmp(p->cmd.user, r->cmd.user) == 0)
			return true;
	}
	return ghost_user(c->srv, r->cmd.user);
}

/* Start r: answer a loop at once, else send it.  Returns true if r
 * completed synchronously (the pipe changed). */
static bool
start(struct repld_conn *c, struct rcmd *r)
{
	struct repld_server *srv = c->srv;
	struct timeval sec = { 1, 0 };
	int fd = r->body_fd;

	if (r->kind == RCMD_LOOP) {
		complete_with(r, PSEP_RS_OK, "LOOP", "own event ignored");
		return true;
	}
	r->body_fd = -1;
	r->id = ++srv->next_id;
	r->state = RCMD_SENT;
	r->deadline_ms = now_ms() + srv->cfg->reply_timeout_ms;
	LIST_INSERT_HEAD(&srv->buckets[r->id % REPLD_BUCKETS], r, hash);
	TAILQ_INSERT_TAIL(&srv->sentq, r, by_time);
	r->hashed = true;
	if (srv->ev_timer != NULL && !evtimer_pending(srv->ev_timer, NULL))
		evtimer_add(srv->ev_timer, &sec);
	if (srv->backend->submit(srv->backend_ctx, r->id, &r->cmd, fd) == -1) {
		log_err("conn=%u tag=%s cannot reach the supervisor: %s", c->serial,
			r->tag, strerrordesc_np(errno));
		complete_with(r, PSEP_RS_NO, "UNAVAILABLE", "server busy, try again");
		return true;
	}
	return false;
}

/* Start every command whose user has nothing earlier in the pipe. */
static void
pipe_run(struct repld_conn *c)
{
	struct rcmd *r;

again:
	TAILQ_FOREACH(r, &c->pipe, entry) {
		if (r->state != RCMD_QUEUED || user_busy(c, r))
			continue;
		if (start(c, r))
			goto again;
	}
}

/* ---- commands --------------------------------------------------------- */

/*
 * A TLS peer may claim server id id only if replication_peers allows it
 * and its certificate names it: a DNS subjectAltName or the subject CN
 * equal to id (no wildcard).  Any CA-signed certificate gets through the
 * handshake; this binds it to the one server it was issued for.
 */
static bool
tls_peer_may_claim(const struct repld_conn *c, const char *id, const char **why)
{
	const unsigned flags = X509_CHECK_FLAG_ALWAYS_CHECK_SUBJECT |
			       X509_CHECK_FLAG_NO_WILDCARDS;

	if (!policy_repl_peer_listed(c->srv->cfg->set, id)) {
		*why = "server id not in replication_peers";
		return false;
	}
	if (c->peer_cert == NULL ||
	    X509_check_host(c->peer_cert, id, strlen(id), flags, NULL) != 1) {
		ERR_clear_error();
		*why = "certificate does not name this server id";
		return false;
	}
	return true;
}

static void
do_hello(struct repld_conn *c, const struct repl_command *rc)
{
	const char *why = NULL;
	const char *own = c->srv->cfg->server_id;
	char id[PSEP_ID_MAX + 2];

	if (c->hello) {
		tagged_bad(c, rc->tag, "PROTOCOL", "HELLO already done");
		return;
	}
	if (rc->version != REPL_VERSION) {
		repld_cmd_line(c, "%s NO [VERSION] supported versions: 1", rc->tag);
		return;
	}
	if (strcmp(rc->server_id, own) == 0) {
		if (c->auth != REPLD_AUTH_UNIX) {
			repld_cmd_line(c, "%s NO [SELF] connected to itself", rc->tag);
			return;
		}
		c->local = true;
		c->peer[0] = '\0';
	} else if (c->auth == REPLD_AUTH_TLS &&
		   !tls_peer_may_claim(c, rc->server_id, &why)) {
		log_warn("conn=%u %s hello peer=%s refused: %s", c->serial, c->name,
			 rc->server_id, why);
		repld_cmd_line(c, "%s NO [AUTHFAILED] %s", rc->tag, why);
		repld_conn_bye(c, "* BYE [AUTHFAILED] server id not allowed");
		return;
	} else {
		xstrlcpy(c->peer, rc->server_id, sizeof(c->peer));
	}
	c->hello = true;
	if (repl_fmt_astring(id, sizeof(id), rc->server_id) == 0)
		xstrlcpy(id, "peer", sizeof(id));
	log_info("conn=%u %s hello peer=%s%s", c->serial, c->name, rc->server_id,
		 c->local ? " local-producer" : "");
	repld_cmd_line(c, "%s OK hello %s", rc->tag, id);
}

static bool
has_modseq(uint32_t op)
{
	return op == PSEP_REPL_SAVE || op == PSEP_REPL_STORE ||
	       op == PSEP_REPL_EXPUNGE;
}

/* §8 rules 1-3.  Returns the kind to run, or RCMD_LINE after a BAD. */
static enum rcmd_kind
event_kind(struct repld_conn *c, const struct repl_command *rc)
{
	const struct psep_repl_cmd *cmd = &rc->cmd;
	bool own = strcmp(cmd->origin, c->srv->cfg->server_id) == 0;

	if (!psep_repl_op_is_event(cmd->op))
		return RCMD_OP;
	if (c->local) {
		if (!own) {
			tagged_bad(c, rc->tag, "SYNTAX",
				   "origin must be this server on a local-producer connection");
			return RCMD_LINE;
		}
		if (has_modseq(cmd->op) && cmd->modseq != 0) {
			tagged_bad(c, rc->tag, "SYNTAX", "modseq must be 0 from a local producer");
			return RCMD_LINE;
		}
		return RCMD_OP;
	}
	if (own)
		return RCMD_LOOP;
	if (has_modseq(cmd->op) && cmd->modseq == 0) {
		tagged_bad(c, rc->tag, "SYNTAX", "modseq 0 only from a local producer");
		return RCMD_LINE;
	}
	return RCMD_OP;
}

static void
do_op(struct repld_conn *c, const struct repl_command *rc, int *lit)
{
	enum rcmd_kind kind = event_kind(c, rc);
	struct rcmd *r;

	if (kind == RCMD_LINE)
		return;
	if (rc->cmd.op == PSEP_REPL_SAVE && *lit < 0 && kind == RCMD_OP) {
		tagged_bad(c, rc->tag, "SYNTAX", "SAVE needs a literal");
		return;
	}
	r = rcmd_new(c, kind, rc->tag);
	r->cmd = rc->cmd;
	xstrlcpy(r->cmd.peer, c->local ? "" : c->peer, sizeof(r->cmd.peer));
	if (rc->cmd.op == PSEP_REPL_SAVE && kind == RCMD_OP) {
		r->body_fd = *lit;
		*lit = -1;
	}
	r->state = RCMD_QUEUED;
	TAILQ_INSERT_TAIL(&c->pipe, r, entry);
	pipe_run(c);
}

static void
run_command(struct repld_conn *c, const struct repl_command *rc, int *lit)
{
	if (rc->name != REPL_CMD_HELLO && !c->hello) {
		tagged_bad(c, rc->tag, "NOHELLO", "HELLO first");
		return;
	}
	switch (rc->name) {
	case REPL_CMD_HELLO:
		do_hello(c, rc);
		break;
	case REPL_CMD_NOOP:
		repld_cmd_line(c, "%s OK noop", rc->tag);
		break;
	case REPL_CMD_LOGOUT:
		xstrlcpy(c->logout_tag, rc->tag, sizeof(c->logout_tag));
		repld_conn_bye(c, "* BYE [LOGOUT] bye");
		break;
	case REPL_CMD_OP:
		do_op(c, rc, lit);
		break;
	default:
		tagged_bad(c, rc->tag, "UNKNOWN", "unknown command");
		break;
	}
}

void
repld_cmd_frame(struct repld_conn *c, struct repl_frame *f)
{
	static struct repl_command rc;
	char tag[REPL_TAG_MAX];
	const char *code = NULL, *text = NULL;
	bool tagged = repl_parse_tag(f->line, tag);
	int lit = f->literal_fd;

	f->literal_fd = -1;
	if (tagged && tag_in_use(c, tag)) {
		tagged_bad(c, tag, "TAGINUSE", "tag in use");
	} else if (f->toolong) {
		if (tagged)
			tagged_bad(c, tag, "TOOLONG", "line too long");
		else
			untagged_bad(c, "TOOLONG", "line too long");
	} else if (!tagged) {
		untagged_bad(c, "BADTAG", "invalid tag");
	} else if (f->bad_eol) {
		tagged_bad(c, tag, "SYNTAX", "line must end with CRLF");
	} else if (f->literal_toobig) {
		tagged_bad(c, tag, "TOOBIG", "literal exceeds MAXLITERAL");
	} else {
		memset(&rc, 0, sizeof(rc));
		switch (repl_parse_command(f, &rc, &code, &text)) {
		case REPL_P_OK:
			run_command(c, &rc, &lit);
			break;
		case REPL_P_BAD:
			tagged_bad(c, tag, code ? code : "SYNTAX", text ? text : "syntax error");
			break;
		case REPL_P_NO:
			repld_cmd_line(c, "%s NO [%s] %s", tag, code ? code : "LIMIT",
				       text ? text : "refused");
			break;
		case REPL_P_BADTAG:
		default:
			untagged_bad(c, "BADTAG", "invalid tag");
			break;
		}
	}
	if (lit >= 0)
		close(lit);
}

/* ---- replies from the supervisor -------------------------------------- */

static struct rcmd *
find_sent(struct repld_server *srv, uint64_t id)
{
	struct rcmd *r;

	LIST_FOREACH(r, &srv->buckets[id % REPLD_BUCKETS], hash)
		if (r->id == id)
			return r;
	return NULL;
}

static bool
op_has_data(uint32_t op)
{
	return op == PSEP_REPL_LIST || op == PSEP_REPL_SYNC ||
	       op == PSEP_REPL_GUIDS || op == PSEP_REPL_FETCH;
}

/* Keep fd for a data or FETCH reply, close it otherwise; a FETCH OK
 * without its file becomes NO [SERVERBUG]. */
static void
adopt_reply_fd(struct rcmd *r, int fd)
{
	struct stat st;

	if (fd >= 0 && (r->rep.status != PSEP_RS_OK || !op_has_data(r->cmd.op))) {
		close(fd);
		fd = -1;
	}
	if (fd >= 0 && fstat(fd, &st) == -1) {
		log_err("conn=%u tag=%s reply fd: fstat: %s", r->conn->serial, r->tag,
			strerrordesc_np(errno));
		close(fd);
		fd = -1;
	} else if (fd >= 0) {
		r->rep_size = (uint64_t)st.st_size;
	}
	r->rep_fd = fd;
	if (r->cmd.op == PSEP_REPL_FETCH && r->rep.status == PSEP_RS_OK && fd < 0) {
		log_err("conn=%u tag=%s FETCH reply without its file", r->conn->serial,
			r->tag);
		r->rep.status = PSEP_RS_NO;
		xstrlcpy(r->rep.code, "SERVERBUG", sizeof(r->rep.code));
		xstrlcpy(r->rep.text, "internal error", sizeof(r->rep.text));
	}
}

/* End the ghost of request id (its late reply came), or, with id 0,
 * those past their deadline; then start what waited for them. */
static void
ghosts_end(struct repld_server *srv, uint64_t id, uint64_t now)
{
	struct repld_ghost *g, *next;
	struct repld_conn *c;
	bool ended = false;

	for (g = LIST_FIRST(&srv->ghosts); g != NULL; g = next) {
		next = LIST_NEXT(g, link);
		if (id != 0 ? g->id != id : g->deadline_ms > now)
			continue;
		if (id == 0)
			log_warn("id=%llu user=%s still no reply from the supervisor: "
				 "the user's commands go on", (unsigned long long)g->id,
				 g->user);
		LIST_REMOVE(g, link);
		free(g);
		ended = true;
	}
	if (!ended)
		return;
	TAILQ_FOREACH(c, &srv->conns, entry) {
		pipe_run(c);
		srv->kick(c);
	}
}

void
repld_cmd_reply(struct repld_server *srv, uint64_t id,
		const struct psep_repl_rep *rep, int fd)
{
	struct rcmd *r = find_sent(srv, id);
	struct repld_conn *c;

	if (r == NULL) {
		log_debug("REPL_REP id=%llu matches no command", (unsigned long long)id);
		if (fd >= 0)
			close(fd);
		ghosts_end(srv, id, 0);
		return;
	}
	c = r->conn;
	r->rep = *rep;
	r->rep.code[sizeof(r->rep.code) - 1] = '\0';
	r->rep.text[sizeof(r->rep.text) - 1] = '\0';
	r->rep.flags[sizeof(r->rep.flags) - 1] = '\0';
	adopt_reply_fd(r, fd);
	complete(r);
	pipe_run(c);
	c->srv->kick(c);
}

void
repld_cmd_expire(struct repld_server *srv)
{
	uint64_t now = now_ms();
	struct repld_conn *c;
	struct rcmd *r;

	ghosts_end(srv, 0, now);
	while ((r = TAILQ_FIRST(&srv->sentq)) != NULL && r->deadline_ms <= now) {
		c = r->conn;
		log_warn("conn=%u tag=%s id=%llu user=%s no reply from the supervisor: "
			 "answered NO, the user's next command waits for it", c->serial,
			 r->tag, (unsigned long long)r->id, r->cmd.user);
		ghost_add(srv, r);
		complete_with(r, PSEP_RS_NO, "UNAVAILABLE", "timeout inside the server, try again");
		pipe_run(c);
		c->srv->kick(c);
	}
	if (TAILQ_EMPTY(&srv->sentq) && LIST_EMPTY(&srv->ghosts) && srv->ev_timer != NULL)
		evtimer_del(srv->ev_timer);
}

void
repld_cmd_drop_all(struct repld_conn *c)
{
	struct rcmd *r;

	while ((r = TAILQ_FIRST(&c->pipe)) != NULL) {
		unhash(c->srv, r);
		TAILQ_REMOVE(&c->pipe, r, entry);
		repld_rcmd_free(&r);
	}
	while ((r = TAILQ_FIRST(&c->outq)) != NULL) {
		TAILQ_REMOVE(&c->outq, r, entry);
		repld_rcmd_free(&r);
	}
	c->n_cmds = 0;
}
