/* SPDX-License-Identifier: MIT */
/*
 * repl-hook/repld/main.c - entry point of the replication front-end
 * (PSEP_ROLE_REPLD): its settings and the role's callbacks for the
 * privsep/child.h skeleton (which does HELLO, logging, the loop and the
 * exit).
 *
 * Runs in:  repld, as run_user with no capabilities and under the REPLD
 *           seccomp profile: no file is opened, no socket created, no fork
 *           or exec.  Sockets arrive from the supervisor; the TLS server
 *           context (certificate, key, CA) is built here, in proc_setup,
 *           from the files the supervisor opened (fds kept across the
 *           fork), which are closed at once: the key is in no other
 *           process.  SIGPIPE is already ignored (privsep/spawn.c).
 * Trust:    see repld/conn.c (peers) and repld/ipc.c (supervisor).
 * Order:    hello, log_init, event base, link (privsep/child.c), then
 *           proc_setup, loop; on SHUTDOWN the
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
#include "privsep/child.h"
#include "privsep/privsep.h"
#include "privsep/tls.h"

/* fds one connection may need: its socket, a literal memfd, a reply fd;
 * and what the process keeps for itself. */
#define CONN_FDS 3u
#define PROC_FDS 32u

/* Lower max_connections to what RLIMIT_NOFILE allows: a full fd table
 * must never end the process. */
static void
fit_fd_limit(struct repld_config *cfg)
{
	psep_fd_fit_connections(&cfg->max_connections, CONN_FDS, PROC_FDS,
				"replication_max_connections");
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
	cfg->max_connections = set->replication_max_connections;
	cfg->handshake_timeout_ms = set->replication_handshake_timeout;
	fit_fd_limit(cfg);
	cfg->set = set;
	cfg->tls_ctx = a->tls_server_ctx;
}

/* The server context from the supervisor's fds (then closed), if any. */
static void *
tls_from_fds(const struct repld_args *a)
{
	struct psep_tls_fds fds = a->tls_fds;
	struct psep_tls_files f = {
		.cert = "", .key = "", .ca = "",
		.cert_name = "replication_tls_cert",
		.key_name = "replication_tls_key",
		.ca_name = "replication_tls_ca",
	};
	char err[256];
	void *ctx;

	if (fds.key < 0)
		return NULL;
	ctx = psep_tls_server_ctx_from_fds(&fds, &f, err, sizeof(err));
	psep_tls_close(&fds);
	if (ctx == NULL)
		fatalx("TLS server context: %s", err);
	return ctx;
}

/* Everything repld_main's skeleton callbacks need. */
struct repld_proc {
	const struct repld_args *args;
	struct repld_config cfg;
	struct repld_server srv;
	struct repld_ipc *ipc;
	void *own_tls;          /* the context built here, freed at teardown */
};

static void
proc_setup(void *arg, struct psep_child *ch)
{
	struct repld_proc *p = arg;
	struct event_base *base = psep_child_base(ch);

	config_from_settings(p->args, &p->cfg);
	p->own_tls = tls_from_fds(p->args);
	if (p->own_tls != NULL)
		p->cfg.tls_ctx = p->own_tls;
	repld_server_init(&p->srv, &p->cfg, base, &repld_ipc_backend, NULL);
	p->ipc = repld_ipc_new(&p->srv, psep_child_link(ch));
	p->srv.backend_ctx = p->ipc;
	log_info("ready server_id=%s maxliteral=%llu tls=%s method=%s",
		 p->cfg.server_id, (unsigned long long)p->cfg.maxliteral,
		 p->cfg.tls_ctx != NULL ? "yes" : "no", event_base_get_method(base));
}

static void
proc_dispatch(void *arg, struct psep_msg *m)
{
	struct repld_proc *p = arg;

	repld_ipc_dispatch(p->ipc, m);
}

static bool
proc_idle(void *arg)
{
	struct repld_proc *p = arg;

	return p->srv.n_conns == 0;
}

static void
proc_shutdown(void *arg)
{
	struct repld_proc *p = arg;

	repld_server_shutdown(&p->srv);
}

static void
proc_teardown(void *arg)
{
	struct repld_proc *p = arg;

	repld_server_fini(&p->srv);
	repld_ipc_free(&p->ipc);
	psep_tls_ctx_free(p->own_tls);
	p->own_tls = NULL;
}

static const struct psep_child_ops proc_ops = {
	.setup = proc_setup,
	.dispatch = proc_dispatch,
	.idle = proc_idle,
	.shutdown = proc_shutdown,
	.teardown = proc_teardown,
};

int
repld_main(void *arg, int ipc)
{
	const struct repld_args *ra = arg;
	struct repld_proc p = { .args = ra };
	const struct psep_child_args a = {
		.role = PSEP_ROLE_REPLD, .name = "repld", .debug = ra->set->log_debug,
		.queue_max = REPLD_IPC_OUT_MAX, .ops = &proc_ops, .arg = &p,
	};

	return psep_child_run(&a, ipc);
}
