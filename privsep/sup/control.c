/* SPDX-License-Identifier: MIT */
/*
 * privsep/sup/control.c - the control socket: stowctl's requests (status,
 * replicas, user, reload, stop, resync) and their answers.
 *
 * Runs in:  the supervisor (root).
 * Trust:    the socket is 0600 root (bound race-free by listen.c) and each
 *           peer is checked with SO_PEERCRED (uid 0 only).  It is a
 *           SOCK_SEQPACKET socket: a request is one fixed-layout
 *           PSEP_CTL_REQ, read only by psep_msg_recv (spec table row,
 *           validator) with the sender role PSEP_ROLE_CONTROL; anything
 *           else closes the connection.  No text is parsed here.  At most
 *           CTL_MAX_CONNS connections, each closed after one answer or
 *           CTL_READ_TIMEOUT_S without a request.
 * Output:   text for people or JSON, written here into a sealed memfd
 *           that goes back with PSEP_CTL_REP.  A LIST answer of the
 *           writer (user command) is copied as it is, never parsed.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "privsep/sup/sup.h"
#include "privsep/sup/sup_int.h"

#define CTL_MAX_CONNS 8u
#define CTL_READ_TIMEOUT_S 5
#define CTL_RESYNC_TIMEOUT_MS (30u * 60u * 1000u)

struct sup_control {
	struct sup *sup;
	int fd;
	struct event *ev;
	char path[108];
	unsigned nconns;
};

struct ctl_conn {
	struct sup_control *ctl;
	int fd;
	struct event *ev;
	struct psep_ctl_req req;
	bool json;
	struct policy_user user;      /* user command */
	uint64_t user_events;
	bool user_events_ok;
	struct event *wait;           /* reload: until the new processes are ready */
	unsigned wait_ticks;
};

/* ---- output ----------------------------------------------------------- */

static void
conn_free(struct ctl_conn *cc)
{
	if (cc->ev != NULL)
		event_free(cc->ev);
	if (cc->wait != NULL)
		event_free(cc->wait);
	close(cc->fd);
	cc->ctl->nconns--;
	free(cc);
}

/* Answer and close: err/text, and out[len] as the output memfd. */
static void
conn_answer(struct ctl_conn *cc, int err, const char *text, const char *out,
	    size_t len)
{
	struct psep_ctl_rep rep;
	int fd = -1;

	memset(&rep, 0, sizeof(rep));
	rep.err = err;
	xstrlcpy(rep.text, text != NULL ? text : "", sizeof(rep.text));
	if (len > 0) {
		fd = memfd_create("stowd-ctl", MFD_CLOEXEC | MFD_ALLOW_SEALING);
		if (fd < 0 || write(fd, out, len) != (ssize_t)len ||
		    fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK |
			  F_SEAL_SEAL) < 0 || lseek(fd, 0, SEEK_SET) < 0) {
			log_err("control: output memfd: %s", strerror(errno));
			if (fd >= 0)
				close(fd);
			fd = -1;
			rep.err = EIO;
			xstrlcpy(rep.text, "cannot pass the output", sizeof(rep.text));
		} else {
			rep.size = len;
		}
	}
	if (psep_msg_send(cc->fd, PSEP_CTL_REP, 0, &rep, sizeof(rep), fd) < 0)
		log_warn("control: cannot answer: %s", strerror(errno));
	if (fd >= 0)
		close(fd);
	conn_free(cc);
}

/* A JSON string (RFC 8259), quoted. */
static void
json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

static const char *
state_name(const struct sup_child *c)
{
	if (c->dead)
		return "exited";
	if (c->retired || c->state == PSEP_STATE_STOPPING)
		return "stopping";
	return c->state == PSEP_STATE_READY ? "ready" : "starting";
}

static const char *
mode_name(const struct sup *sup)
{
	return sup->set.delivery_mode == POLICY_MODE_FORK ? "fork" : "seteuid";
}

static unsigned long long
ull(uint64_t v)
{
	return (unsigned long long)v;
}

static void
text_replica(FILE *f, const struct psep_replica_stats *r, time_t now)
{
	fprintf(f, "replica %s (%s): %s", r->name,
		r->server_id[0] != '\0' ? r->server_id : "server id not known yet",
		r->connected ? "connected" : "not connected");
	if (!r->connected && r->last_error[0] != '\0')
		fprintf(f, ", last error: %s", r->last_error);
	fprintf(f, "%s\n", r->syncing ? ", sync running" : "");
	fprintf(f, "  events in flight %llu, journal %llu entries %llu bytes, lag %.1fs\n",
		ull(r->inflight), ull(r->journal_entries), ull(r->journal_bytes),
		(double)r->lag_ms / 1000.0);
	fprintf(f, "  sent %llu, acks %llu, timeouts %llu, dirty mailboxes %llu\n",
		ull(r->sent), ull(r->acks), ull(r->timeouts), ull(r->dirty));
	if (r->sync_last == 0)
		fprintf(f, "  last full sync: none yet\n");
	else
		fprintf(f, "  last full sync: %llus ago, took %.3fs, repairs %llu\n",
			ull((uint64_t)(now - (time_t)r->sync_last)),
			(double)r->sync_ms / 1000.0, ull(r->sync_repairs));
}

static void
json_replica(FILE *f, const struct psep_replica_stats *r)
{
	fprintf(f, "{\"name\":");
	json_str(f, r->name);
	fprintf(f, ",\"server_id\":");
	json_str(f, r->server_id);
	fprintf(f, ",\"connected\":%s,\"last_error\":", r->connected ? "true" : "false");
	json_str(f, r->last_error);
	fprintf(f, ",\"syncing\":%s,\"events_in_flight\":%llu,\"journal_entries\":%llu,"
		"\"journal_bytes\":%llu,\"lag_seconds\":%.3f,\"sent\":%llu,\"acks\":%llu,"
		"\"timeouts\":%llu,\"dirty_mailboxes\":%llu,\"last_full_sync\":%llu,"
		"\"last_full_sync_seconds\":%.3f,\"last_full_sync_repairs\":%llu,"
		"\"repairs_total\":%llu}",
		r->syncing ? "true" : "false", ull(r->inflight), ull(r->journal_entries),
		ull(r->journal_bytes), (double)r->lag_ms / 1000.0, ull(r->sent),
		ull(r->acks), ull(r->timeouts), ull(r->dirty), ull(r->sync_last),
		(double)r->sync_ms / 1000.0, ull(r->sync_repairs), ull(r->repairs_total));
}

static void
put_replicas(FILE *f, struct sup *sup, const struct psep_stats_rep *rep, bool json)
{
	time_t now = time(NULL);

	if (json) {
		fprintf(f, "[");
		for (uint32_t i = 0; rep != NULL && i < rep->n; i++) {
			if (i > 0)
				fputc(',', f);
			json_replica(f, &rep->r[i]);
		}
		fprintf(f, "]");
		return;
	}
	if (sup->set.n_replicas == 0) {
		fprintf(f, "replicas: none configured\n");
		return;
	}
	if (rep == NULL) {
		fprintf(f, "replicas: %zu configured; repl-hook is not answering\n",
			sup->set.n_replicas);
		return;
	}
	for (uint32_t i = 0; i < rep->n; i++)
		text_replica(f, &rep->r[i], now);
}

static void
put_processes(FILE *f, struct sup *sup, bool json)
{
	struct sup_child *c;
	bool first = true;

	if (!json)
		fprintf(f, "processes:\n  %-14s %8s %6s %-9s %s\n", "role", "pid", "uid",
			"state", "served");
	else
		fputc('[', f);
	TAILQ_FOREACH(c, &sup->children, link) {
		if (json) {
			fprintf(f, "%s{\"role\":\"%s\",\"pid\":%ld,\"uid\":%u,\"state\":\"%s\","
				"\"served\":%llu,\"generation\":%u}", first ? "" : ",",
				psep_role_name(c->role), (long)c->pid, (unsigned)c->uid,
				state_name(c), ull(c->served), c->generation);
		} else {
			fprintf(f, "  %-14s %8ld %6u %-9s %llu\n", psep_role_name(c->role),
				(long)c->pid, (unsigned)c->uid, state_name(c), ull(c->served));
		}
		first = false;
	}
	if (json)
		fputc(']', f);
}

static void
status_text(FILE *f, struct sup *sup, const struct psep_counters *k,
	    const struct psep_stats_rep *rep)
{
	fprintf(f, "stowd %s server_id=%s up %llus generation %u delivery_mode %s\n",
		STOWD_VERSION, sup->server_id, ull((uint64_t)(time(NULL) - sup->started)),
		sup->generation, mode_name(sup));
	put_processes(f, sup, false);
	fprintf(f, "queues: writer jobs waiting %llu, running %llu; LMTP clients "
		"waiting %u; replication clients waiting %u; events in flight %u\n",
		ull(k->queue_depth), ull(k->jobs_running), sup->n_pending,
		sup->n_repl_pending, sup->n_events);
	fprintf(f, "fork cache: size %llu, hits %llu, misses %llu, evictions %llu\n",
		ull(k->fork_cache_size), ull(k->fork_hits), ull(k->fork_misses),
		ull(k->fork_evictions));
	fprintf(f, "deliveries: ok %llu, tempfail %llu, permfail %llu, duplicates %llu, "
		"bytes stored %llu\n",
		ull(k->deliveries[PSEP_OUT_OK]),
		ull(k->deliveries[PSEP_OUT_TEMP_USERDB] + k->deliveries[PSEP_OUT_TEMP_WRITER] +
		    k->deliveries[PSEP_OUT_TEMP_QUOTA] +
		    k->deliveries[PSEP_OUT_TEMP_REPLICATION] +
		    k->deliveries[PSEP_OUT_TEMP_OTHER]),
		ull(k->deliveries[PSEP_OUT_PERM_NOUSER] + k->deliveries[PSEP_OUT_PERM_QUOTA] +
		    k->deliveries[PSEP_OUT_PERM_OTHER]),
		ull(k->duplicates), ull(k->bytes_stored));
	put_replicas(f, sup, rep, false);
}

static void
status_json(FILE *f, struct sup *sup, const struct psep_counters *k,
	    const struct psep_stats_rep *rep)
{
	fprintf(f, "{\"version\":\"%s\",\"server_id\":", STOWD_VERSION);
	json_str(f, sup->server_id);
	fprintf(f, ",\"uptime_seconds\":%llu,\"generation\":%u,\"delivery_mode\":\"%s\","
		"\"processes\":", ull((uint64_t)(time(NULL) - sup->started)),
		sup->generation, mode_name(sup));
	put_processes(f, sup, true);
	fprintf(f, ",\"queues\":{\"writer_jobs_waiting\":%llu,\"writer_jobs_running\":%llu,"
		"\"lmtp_clients_waiting\":%u,\"replication_clients_waiting\":%u,"
		"\"events_in_flight\":%u},\"fork_cache\":{\"size\":%llu,\"hits\":%llu,"
		"\"misses\":%llu,\"evictions\":%llu},\"deliveries\":{\"ok\":%llu,"
		"\"duplicates\":%llu,\"bytes_stored\":%llu},\"replicas\":",
		ull(k->queue_depth), ull(k->jobs_running), sup->n_pending,
		sup->n_repl_pending, sup->n_events, ull(k->fork_cache_size),
		ull(k->fork_hits), ull(k->fork_misses), ull(k->fork_evictions),
		ull(k->deliveries[PSEP_OUT_OK]), ull(k->duplicates), ull(k->bytes_stored));
	put_replicas(f, sup, rep, true);
	fprintf(f, "}\n");
}

/* Finish the stream into an answer. */
static void
answer_stream(struct ctl_conn *cc, FILE *f, char **buf, size_t *len)
{
	if (fclose(f) != 0) {
		free(*buf);
		conn_answer(cc, EIO, "cannot format the output", NULL, 0);
		return;
	}
	conn_answer(cc, 0, NULL, *buf, *len);
	free(*buf);
}

static void
status_done(struct sup *sup, const struct psep_stats_rep *rep, void *arg)
{
	struct ctl_conn *cc = arg;
	struct psep_counters k;
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (f == NULL) {
		conn_answer(cc, ENOMEM, "out of memory", NULL, 0);
		return;
	}
	sup_stats_fill(sup, &k);
	if (cc->req.cmd == PSEP_CTL_REPLICAS) {
		put_replicas(f, sup, rep, cc->json);
		if (cc->json)
			fputc('\n', f);
	} else if (cc->json) {
		status_json(f, sup, &k, rep);
	} else {
		status_text(f, sup, &k, rep);
	}
	answer_stream(cc, f, &buf, &len);
}

/* ---- user ------------------------------------------------------------- */

/* The writer's LIST answer: copied line by line, never parsed. */
static void
user_list_done(struct sup *sup, const struct psep_repl_rep *rep, int fd, void *arg)
{
	struct ctl_conn *cc = arg;
	char *buf = NULL, line[PSEP_LINES_LINE_MAX + 2];
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len), *in = NULL;
	bool first = true, last;
	char guid[PSEP_GUID_MAX];
	unsigned code = 0;
	time_t when = 0;

	if (f == NULL) {
		if (fd >= 0)
			close(fd);
		conn_answer(cc, ENOMEM, "out of memory", NULL, 0);
		return;
	}
	last = sup_stats_last_delivery(sup, cc->user.name, &when, guid, &code);
	if (cc->json) {
		fprintf(f, "{\"user\":");
		json_str(f, cc->user.name);
		fprintf(f, ",\"uid\":%u,\"home\":", (unsigned)cc->user.uid);
		json_str(f, cc->user.home);
		if (last) {
			fprintf(f, ",\"last_delivery\":{\"time\":%lld,\"code\":%u,\"guid\":",
				(long long)when, code);
			json_str(f, guid);
			fputc('}', f);
		} else {
			fprintf(f, ",\"last_delivery\":null");
		}
		fprintf(f, ",\"pending_replication_events\":");
		if (cc->user_events_ok)
			fprintf(f, "%llu", ull(cc->user_events));
		else
			fprintf(f, "null");
		fprintf(f, ",\"list_status\":\"%s\",\"mailboxes\":[",
			rep != NULL && rep->status == PSEP_RS_OK ? "ok" : "failed");
	} else {
		fprintf(f, "user %s uid %u home %s\n", cc->user.name,
			(unsigned)cc->user.uid, cc->user.home);
		if (last)
			fprintf(f, "last delivery: %llds ago, %u, guid %s\n",
				(long long)(time(NULL) - when), code, guid[0] ? guid : "-");
		else
			fprintf(f, "last delivery: none since stowd started\n");
		if (cc->user_events_ok)
			fprintf(f, "pending replication events: %llu\n", ull(cc->user_events));
		if (rep == NULL || rep->status != PSEP_RS_OK)
			fprintf(f, "mailboxes: cannot list (%s)\n",
				rep != NULL ? rep->text : "no answer");
		else
			fprintf(f, "mailboxes:\n");
	}
	if (fd >= 0 && rep != NULL && rep->status == PSEP_RS_OK &&
	    (in = fdopen(fd, "r")) != NULL) {
		fd = -1;
		while (fgets(line, sizeof(line), in) != NULL) {
			line[strcspn(line, "\n")] = '\0';
			if (cc->json) {
				fprintf(f, "%s", first ? "" : ",");
				json_str(f, line);
			} else {
				fprintf(f, "  %s\n", line);
			}
			first = false;
		}
		fclose(in);
	}
	if (fd >= 0)
		close(fd);
	if (cc->json)
		fprintf(f, "]}\n");
	answer_stream(cc, f, &buf, &len);
}

static void
user_stats_done(struct sup *sup, const struct psep_stats_rep *rep, void *arg)
{
	struct ctl_conn *cc = arg;
	struct psep_repl_cmd cmd;

	if (rep != NULL) {
		cc->user_events = rep->user_events;
		cc->user_events_ok = true;
	}
	memset(&cmd, 0, sizeof(cmd));
	cmd.op = PSEP_REPL_LIST;
	xstrlcpy(cmd.user, cc->user.name, sizeof(cmd.user));
	sup_repl_run(sup, &cc->user, &cmd, -1, user_list_done, cc);
}

static void
do_user(struct ctl_conn *cc)
{
	struct sup *sup = cc->ctl->sup;
	const char *why = NULL;
	char text[256];
	enum policy_lookup l = policy_userdb_lookup(sup->userdb, cc->req.user,
						    &cc->user, &why);

	if (l != POLICY_USER_FOUND) {
		snprintf(text, sizeof(text), "%s: %.200s", l == POLICY_USER_UNKNOWN ?
			 "unknown user" : "user look-up failed", why ? why : cc->req.user);
		conn_answer(cc, l == POLICY_USER_UNKNOWN ? ENOENT : EAGAIN, text, NULL, 0);
		return;
	}
	if (sup->set.n_replicas > 0)
		sup_stats_ask(sup, cc->user.name, user_stats_done, cc);
	else
		user_stats_done(sup, NULL, cc);
}

/* ---- resync ----------------------------------------------------------- */

static void
resync_done(struct sup *sup, const struct psep_resync_rep *rep, void *arg)
{
	struct ctl_conn *cc = arg;
	char *buf = NULL;
	size_t len = 0;
	FILE *f;

	(void)sup;
	if (rep == NULL) {
		conn_answer(cc, ETIMEDOUT, "repl-hook did not finish the resync", NULL, 0);
		return;
	}
	if (rep->err != 0) {
		conn_answer(cc, rep->err, rep->text, NULL, 0);
		return;
	}
	f = open_memstream(&buf, &len);
	if (f == NULL) {
		conn_answer(cc, ENOMEM, "out of memory", NULL, 0);
		return;
	}
	if (cc->json) {
		fprintf(f, "{\"mailboxes\":%llu,\"repairs\":%llu,\"seconds\":%.3f,\"detail\":",
			ull(rep->mailboxes), ull(rep->repairs), (double)rep->ms / 1000.0);
		json_str(f, rep->text);
		fprintf(f, "}\n");
	} else {
		fprintf(f, "resync done: %llu mailboxes compared, %llu repairs, %.3fs%s%s\n",
			ull(rep->mailboxes), ull(rep->repairs), (double)rep->ms / 1000.0,
			rep->text[0] != '\0' ? "\n" : "", rep->text);
	}
	answer_stream(cc, f, &buf, &len);
}

static void
do_resync(struct ctl_conn *cc)
{
	struct sup *sup = cc->ctl->sup;
	struct psep_resync_req req;
	struct policy_user u;
	const char *why = NULL;

	if (sup->set.n_replicas == 0) {
		conn_answer(cc, ENOENT, "no replicas configured", NULL, 0);
		return;
	}
	if (cc->req.user[0] != '\0' &&
	    policy_userdb_lookup(sup->userdb, cc->req.user, &u, &why) != POLICY_USER_FOUND) {
		conn_answer(cc, ENOENT, "unknown user", NULL, 0);
		return;
	}
	memset(&req, 0, sizeof(req));
	req.all = (cc->req.flags & PSEP_CTL_F_ALL) ? 1 : 0;
	if (!req.all)
		xstrlcpy(req.user, u.name, sizeof(req.user));
	xstrlcpy(req.mailbox, cc->req.mailbox, sizeof(req.mailbox));
	xstrlcpy(req.replica, cc->req.replica, sizeof(req.replica));
	sup_resync_ask(sup, &req, CTL_RESYNC_TIMEOUT_MS, resync_done, cc);
}

/* ---- reload ----------------------------------------------------------- */

#define RELOAD_WAIT_TICKS 600u      /* of 100 ms */

/* The new config is in force: answer once its processes are ready. */
static void
reload_tick(evutil_socket_t fd, short what, void *arg)
{
	struct ctl_conn *cc = arg;
	struct sup *sup = cc->ctl->sup;
	char text[96];
	int n;

	(void)fd;
	(void)what;
	if (!sup->ready_sent && !sup->stopping && ++cc->wait_ticks < RELOAD_WAIT_TICKS)
		return;
	n = snprintf(text, sizeof(text), "%s generation %u\n", sup->ready_sent ?
		     "reloaded, ready:" : "reloaded, not ready yet:", sup->generation);
	if (cc->json)
		n = snprintf(text, sizeof(text), "{\"generation\":%u,\"ready\":%s}\n",
			     sup->generation, sup->ready_sent ? "true" : "false");
	conn_answer(cc, 0, NULL, text, n > 0 ? (size_t)n : 0);
}

static void
reload_wait(struct ctl_conn *cc)
{
	struct timeval tv = { .tv_sec = 0, .tv_usec = 100000 };

	cc->wait = event_new(cc->ctl->sup->base, -1, EV_PERSIST, reload_tick, cc);
	if (cc->wait == NULL || event_add(cc->wait, &tv) < 0)
		fatalx("cannot wait for the reload");
}

/* ---- requests --------------------------------------------------------- */

static void
conn_request(struct ctl_conn *cc)
{
	struct sup *sup = cc->ctl->sup;
	char err[256];

	cc->json = (cc->req.flags & PSEP_CTL_F_JSON) != 0;
	switch ((enum psep_ctl_cmd)cc->req.cmd) {
	case PSEP_CTL_STATUS:
	case PSEP_CTL_REPLICAS:
		if (sup->set.n_replicas > 0)
			sup_stats_ask(sup, "", status_done, cc);
		else
			status_done(sup, NULL, cc);
		return;
	case PSEP_CTL_USER:
		do_user(cc);
		return;
	case PSEP_CTL_RELOAD:
		log_info("control: reload requested");
		if (sup->top->reload(sup, err, sizeof(err)) < 0)
			conn_answer(cc, EINVAL, err, NULL, 0);
		else
			reload_wait(cc);
		return;
	case PSEP_CTL_STOP:
		log_info("control: stop requested");
		conn_answer(cc, 0, NULL, NULL, 0);
		sup->top->stop(sup);
		return;
	case PSEP_CTL_RESYNC:
		do_resync(cc);
		return;
	}
	conn_answer(cc, EINVAL, "unknown command", NULL, 0);
}

static void
conn_read(evutil_socket_t fd, short what, void *arg)
{
	struct ctl_conn *cc = arg;
	struct psep_msg *m;
	const char *why = NULL;

	(void)fd;
	if (what & EV_TIMEOUT) {
		log_info("control: no request in %ds, closed", CTL_READ_TIMEOUT_S);
		conn_free(cc);
		return;
	}
	m = xcalloc(1, sizeof(*m));
	if (psep_msg_recv(cc->fd, PSEP_ROLE_CONTROL, PSEP_STATE_READY, m, &why) < 0) {
		if (errno != EAGAIN) {
			if (errno != ECONNRESET)
				log_warn("control: bad request: %s", why);
			conn_free(cc);
		}
		free(m);
		return;
	}
	cc->req = m->u.ctl_req;
	psep_msg_clear(m);
	free(m);
	event_free(cc->ev);
	cc->ev = NULL;
	conn_request(cc);
}

static void
ctl_accept(evutil_socket_t fd, short what, void *arg)
{
	struct sup_control *ctl = arg;
	struct timeval tv = { .tv_sec = CTL_READ_TIMEOUT_S, .tv_usec = 0 };
	struct ucred cred;
	socklen_t clen = sizeof(cred);
	struct ctl_conn *cc;
	int cfd;

	(void)what;
	cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (cfd < 0)
		return;
	if (ctl->nconns >= CTL_MAX_CONNS || ctl->sup->stopping) {
		close(cfd);
		return;
	}
	cc = xcalloc(1, sizeof(*cc));
	cc->ctl = ctl;
	cc->fd = cfd;
	ctl->nconns++;
	if (getsockopt(cfd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) < 0 || cred.uid != 0) {
		log_warn("control: peer uid %ld refused", clen == sizeof(cred) ?
			 (long)cred.uid : -1L);
		conn_answer(cc, EACCES, "permission denied: the control socket is root's",
			    NULL, 0);
		return;
	}
	cc->ev = event_new(ctl->sup->base, cfd, EV_READ | EV_PERSIST, conn_read, cc);
	if (cc->ev == NULL || event_add(cc->ev, &tv) < 0)
		fatalx("event_add for a control client");
}

void
sup_control_open(struct sup *sup)
{
	struct sup_control *ctl = sup->control;
	const char *path = sup->set.control_socket, *why = NULL;
	int fd;

	if (path == NULL)
		path = "";
	if (ctl != NULL && ctl->fd >= 0 && strcmp(ctl->path, path) == 0)
		return;
	sup_control_close(sup);
	if (path[0] == '\0')
		return;
	fd = sup_listen_private_seqpacket(path, &why);
	if (fd < 0) {
		log_err("control_socket %s: %s: %s; running without one", path, why,
			strerror(errno));
		return;
	}
	/* The struct lives as long as the supervisor: connections in
	 * progress point to it across a reload that moves the socket. */
	if (ctl == NULL) {
		ctl = xcalloc(1, sizeof(*ctl));
		ctl->sup = sup;
		sup->control = ctl;
	}
	ctl->fd = fd;
	xstrlcpy(ctl->path, path, sizeof(ctl->path));
	ctl->ev = event_new(sup->base, fd, EV_READ | EV_PERSIST, ctl_accept, ctl);
	if (ctl->ev == NULL || event_add(ctl->ev, NULL) < 0)
		fatalx("event_add for the control socket");
	log_info("control socket %s", path);
}

void
sup_control_close(struct sup *sup)
{
	struct sup_control *ctl = sup->control;

	if (ctl == NULL || ctl->fd < 0)
		return;
	event_free(ctl->ev);
	ctl->ev = NULL;
	close(ctl->fd);
	ctl->fd = -1;
	unlink(ctl->path);
}
