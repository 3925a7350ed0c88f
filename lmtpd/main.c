/* SPDX-License-Identifier: MIT */
/*
 * lmtpd/main.c - entry point of a front-end process (PSEP_ROLE_LMTPD): the
 * role's callbacks for the privsep/child.h skeleton (which does HELLO,
 * logging, the loop and the exit): set-up, messages, idle, shutdown.
 *
 * Runs in:  lmtpd, already as run_user with no capabilities and under the
 *           LMTPD seccomp profile: no file is opened, no socket created,
 *           no fork or exec.  libevent uses epoll; no signal events (the
 *           supervisor sends PSEP_SHUTDOWN).  SIGPIPE is already ignored
 *           (privsep/spawn.c resets signals before the drop), so a vanished
 *           client is a write error, not a death; nothing here calls
 *           rt_sigaction.  libevent's event_base_new itself needs pipe2
 *           (its signal pipe) and get[e]uid/get[e]gid (its getenv check).
 * Order:    hello, log_init, event base, link (privsep/child.c), then
 *           proc_setup, loop; on SHUTDOWN the
 *           sessions wind down and the loop ends when the last one is gone
 *           and the queue to the supervisor is empty.  EOF on ipc ends it
 *           at once.
 */
#include <malloc.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "lmtpd/lmtpd.h"
#include "lmtpd/server_int.h"
#include "policy/policy.h"
#include "privsep/child.h"
#include "privsep/privsep.h"

static void
config_from_settings(const struct policy_settings *set, struct lmtp_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	/* resolved by the supervisor (policy_settings_resolve_hostname) */
	xstrlcpy(cfg->host, set->hostname != NULL && set->hostname[0] != '\0' ?
		 set->hostname : "localhost", sizeof(cfg->host));
	cfg->max_message_size = set->lmtp_max_message_size;
	cfg->max_recipients = set->lmtp_max_recipients;
	cfg->max_line_length = set->lmtp_max_line_length;
	cfg->command_timeout_ms = set->lmtp_command_timeout;
	cfg->rcpt_timeout_ms = set->lmtp_command_timeout;
	cfg->deliver_timeout_ms = set->writer_timeout + set->lmtp_command_timeout;
	if (cfg->rcpt_timeout_ms == 0)
		cfg->rcpt_timeout_ms = 300000;
	if (cfg->deliver_timeout_ms == 0)
		cfg->deliver_timeout_ms = 420000;
	cfg->max_connections = set->lmtp_max_connections;
	cfg->max_connections_per_peer = set->lmtp_max_connections_per_peer;
}

/* fds one connection may need: its socket, a body memfd, and the
 * duplicate of that memfd while its DELIVER_REQs wait in the link queue. */
#define CONN_FDS 3u
/* fds kept for the link, logging and the event base. */
#define PROC_FDS 32u

/* Lower max_connections to what RLIMIT_NOFILE allows: a full fd table
 * must never end the process. */
static void
fit_fd_limit(struct lmtp_config *cfg)
{
	psep_fd_fit_connections(&cfg->max_connections, CONN_FDS, PROC_FDS,
				"lmtp_max_connections");
}

/* Everything lmtp_main's skeleton callbacks need. */
struct lmtp_proc {
	const struct policy_settings *set;
	int tls_fds[2];               /* cert, key; -1 when not given */
	struct lmtp_config cfg;
	struct lmtp_server srv;
};

/* The STARTTLS context, from the files the supervisor opened; the fds
 * are closed either way.  Without it STARTTLS is not offered (and with
 * lmtp_tls = required, tcp: clients can do nothing). */
static void
proc_tls(struct lmtp_proc *p)
{
	char err[256];

	p->srv.tls_required = p->set->lmtp_tls == POLICY_TLS_REQUIRED;
	if (p->set->lmtp_tls != POLICY_TLS_NO && p->tls_fds[0] >= 0 &&
	    p->tls_fds[1] >= 0) {
		p->srv.tls_ctx = lmtp_tls_ctx_from_fds(p->tls_fds[0], p->tls_fds[1],
						       err, sizeof(err));
		if (p->srv.tls_ctx == NULL)
			log_err("STARTTLS disabled: %s", err);
	} else if (p->set->lmtp_tls != POLICY_TLS_NO) {
		log_err("STARTTLS disabled: lmtp_tls_cert or lmtp_tls_key not open");
	}
	for (int i = 0; i < 2; i++)
		if (p->tls_fds[i] >= 0)
			close(p->tls_fds[i]);
}

static void
proc_setup(void *arg, struct psep_child *ch)
{
	struct lmtp_proc *p = arg;
	struct lmtp_server *srv = &p->srv;

	config_from_settings(p->set, &p->cfg);
	fit_fd_limit(&p->cfg);
	/* Every DATA takes a LMTP_SPOOL_BUF buffer and gives it back: without
	 * this, glibc returned the top of the heap to the kernel (brk) after
	 * most messages and faulted it in again for the next. */
	if (mallopt(M_TRIM_THRESHOLD, (int)LMTP_HEAP_KEEP) != 1)
		log_warn("mallopt(M_TRIM_THRESHOLD) failed");
	memset(srv, 0, sizeof(*srv));
	TAILQ_INIT(&srv->conns);
	LIST_INIT(&srv->peers);
	srv->cfg = &p->cfg;
	srv->child = ch;
	srv->base = psep_child_base(ch);
	srv->ipc = lmtp_ipc_new(srv, psep_child_link(ch));
	srv->metrics = lmtp_metrics_new(srv, psep_child_link(ch));
	srv->backend = &lmtp_ipc_backend;
	srv->backend_ctx = srv->ipc;
	proc_tls(p);
	log_info("ready host=%s method=%s", p->cfg.host,
		 event_base_get_method(srv->base));
}

static void
proc_dispatch(void *arg, struct psep_msg *m)
{
	struct lmtp_proc *p = arg;

	lmtp_ipc_dispatch(p->srv.ipc, m);
}

static bool
proc_idle(void *arg)
{
	struct lmtp_proc *p = arg;

	return p->srv.n_conns == 0;
}

/* PSEP_SHUTDOWN: stop sessions gracefully; the skeleton exits when the
 * last is gone. */
static void
proc_shutdown(void *arg)
{
	struct lmtp_proc *p = arg;

	log_info("shutdown requested sessions=%zu", p->srv.n_conns);
	p->srv.shutting_down = true;
	lmtp_conn_shutdown_all(&p->srv);
}

static void
proc_teardown(void *arg)
{
	struct lmtp_proc *p = arg;

	lmtp_conn_free_all(&p->srv);
	lmtp_metrics_free(&p->srv.metrics);
	lmtp_ipc_free(&p->srv.ipc);
	lmtp_tls_ctx_free(p->srv.tls_ctx);
	p->srv.tls_ctx = NULL;
}

static const struct psep_child_ops proc_ops = {
	.setup = proc_setup,
	.dispatch = proc_dispatch,
	.idle = proc_idle,
	.shutdown = proc_shutdown,
	.teardown = proc_teardown,
};

int
lmtp_main(void *arg, int ipc)
{
	const struct lmtp_args *args = arg;
	const struct policy_settings *set = args->set;
	struct lmtp_proc p = {
		.set = set, .tls_fds = { args->tls_cert_fd, args->tls_key_fd },
	};
	const struct psep_child_args a = {
		.role = PSEP_ROLE_LMTPD, .name = "lmtpd", .debug = set->log_debug,
		.queue_max = LMTP_IPC_OUT_MAX, .ops = &proc_ops, .arg = &p,
	};

	return psep_child_run(&a, ipc);
}
