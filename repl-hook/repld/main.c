/* SPDX-License-Identifier: MIT */
/*
 * repl-hook/repld/main.c - entry point of the replication front-end
 * (PSEP_ROLE_REPLD): HELLO, logging to the supervisor, the event loop,
 * the server context and graceful shutdown.
 *
 * Runs in:  repld, as run_user with no capabilities and under the REPLD
 *           seccomp profile: no file is opened, no socket created, no fork
 *           or exec.  Sockets arrive from the supervisor; the TLS server
 *           context (certificate, key, CA) was loaded by the supervisor
 *           before the fork.  SIGPIPE is already ignored (privsep/spawn.c).
 * Trust:    see repld/conn.c (peers) and repld/ipc.c (supervisor).
 * Order:    hello, log_init, event base, ipc watch, loop; on SHUTDOWN the
 *           connections finish their in-flight commands and say BYE; the
 *           loop ends when the last one is gone and the queue to the
 *           supervisor is empty.  EOF on ipc ends it at once.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "repl-hook/repld/repld.h"
#include "repl-hook/repld/repld_int.h"
#include "policy/policy.h"
#include "privsep/link.h"
#include "privsep/privsep.h"

void
repld_server_stop(struct repld_server *srv, int status)
{
	srv->status = status;
	srv->stopped = true;
	event_base_loopbreak(srv->base);
}

void
repld_server_maybe_exit(struct repld_server *srv)
{
	if (srv->shutting_down && srv->n_conns == 0 &&
	    (srv->backend->idle == NULL || srv->backend->idle(srv->backend_ctx)))
		repld_server_stop(srv, 0);
}

void
repld_server_shutdown(struct repld_server *srv)
{
	if (srv->shutting_down)
		return;
	log_info("shutdown requested connections=%zu", srv->n_conns);
	srv->shutting_down = true;
	repld_server_shutdown_conns(srv);
	repld_server_maybe_exit(srv);
}

static void
timer_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	repld_cmd_expire(arg);
}

void
repld_server_init(struct repld_server *srv, const struct repld_config *cfg,
		  struct event_base *base, const struct repld_backend_ops *ops,
		  void *ctx)
{
	size_t i;

	memset(srv, 0, sizeof(*srv));
	srv->cfg = cfg;
	srv->base = base;
	srv->backend = ops;
	srv->backend_ctx = ctx;
	TAILQ_INIT(&srv->conns);
	TAILQ_INIT(&srv->sentq);
	for (i = 0; i < REPLD_BUCKETS; i++)
		LIST_INIT(&srv->buckets[i]);
	srv->frame = xcalloc(1, sizeof(*srv->frame));
	srv->frame->literal_fd = -1;
	srv->ev_timer = event_new(base, -1, EV_PERSIST, timer_cb, srv);
	if (srv->ev_timer == NULL)
		fatalx("cannot create the reply timer");
}

void
repld_server_fini(struct repld_server *srv)
{
	repld_conn_free_all(srv);
	if (srv->ev_timer != NULL)
		event_free(srv->ev_timer);
	srv->ev_timer = NULL;
	free(srv->frame);
	srv->frame = NULL;
}

static void
config_from_settings(const struct repld_args *a, struct repld_config *cfg)
{
	const struct policy_settings *set = a->set;
	const char *id = set->server_id;

	memset(cfg, 0, sizeof(*cfg));
	if (id == NULL || id[0] == '\0')
		id = set->hostname != NULL && set->hostname[0] != '\0' ?
		     set->hostname : "localhost";
	if (!xstrlcpy(cfg->server_id, id, sizeof(cfg->server_id)))
		fatalx("server_id too long");
	cfg->maxliteral = set->lmtp_max_message_size + REPL_LITERAL_EXTRA;
	cfg->command_timeout_ms = set->lmtp_command_timeout;
	cfg->reply_timeout_ms = set->writer_timeout + set->lmtp_command_timeout;
	if (cfg->reply_timeout_ms == 0)
		cfg->reply_timeout_ms = 420000;
	cfg->set = set;
	cfg->tls_ctx = a->tls_server_ctx;
}

int
repld_main(void *arg, int ipc)
{
	const struct repld_args *a = arg;
	struct repld_config cfg;
	struct repld_server srv;
	struct repld_ipc *link;
	struct event_base *base;

	if (psep_child_hello(ipc, PSEP_ROLE_REPLD, 0) == -1)
		return 1;
	log_init("repld", ipc);
	log_set_debug(a->set->log_debug);
	config_from_settings(a, &cfg);
	base = psep_event_base_new();
	repld_server_init(&srv, &cfg, base, &repld_ipc_backend, NULL);
	link = repld_ipc_new(&srv, ipc);
	srv.backend_ctx = link;
	log_info("ready server_id=%s maxliteral=%llu tls=%s method=%s", cfg.server_id,
		 (unsigned long long)cfg.maxliteral, cfg.tls_ctx != NULL ? "yes" : "no",
		 event_base_get_method(base));
	if (event_base_dispatch(base) == -1) {
		log_err("event loop failed");
		srv.status = 1;
	}
	repld_server_fini(&srv);
	repld_ipc_free(&link);
	event_base_free(base);
	return srv.status;
}
