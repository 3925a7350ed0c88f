/* SPDX-License-Identifier: MIT */
/*
 * lmtpd/main.c - entry point of a front-end process (PSEP_ROLE_LMTPD):
 * HELLO, logging to the supervisor, the event loop, graceful shutdown.
 *
 * Runs in:  lmtpd, already as run_user with no capabilities and under the
 *           LMTPD seccomp profile: no file is opened, no socket created,
 *           no fork or exec.  libevent uses epoll; no signal events (the
 *           supervisor sends PSEP_SHUTDOWN).  SIGPIPE is already ignored
 *           (privsep/spawn.c resets signals before the drop), so a vanished
 *           client is a write error, not a death; nothing here calls
 *           rt_sigaction.  libevent's event_base_new itself needs pipe2
 *           (its signal pipe) and get[e]uid/get[e]gid (its getenv check).
 * Order:    hello, log_init, event base, ipc watch, loop; on SHUTDOWN the
 *           sessions wind down and the loop ends when the last one is gone
 *           and the queue to the supervisor is empty.  EOF on ipc ends it
 *           at once.
 */
#include <malloc.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "lmtpd/lmtpd.h"
#include "lmtpd/server_int.h"
#include "policy/policy.h"
#include "privsep/link.h"
#include "privsep/privsep.h"

void
lmtp_server_stop(struct lmtp_server *srv, int status)
{
	srv->status = status;
	event_base_loopbreak(srv->base);
}

void
lmtp_server_maybe_exit(struct lmtp_server *srv)
{
	if (srv->shutting_down && srv->n_conns == 0 && srv->ipc != NULL &&
	    lmtp_ipc_idle(srv->ipc))
		lmtp_server_stop(srv, 0);
}

void
lmtp_server_shutdown(struct lmtp_server *srv)
{
	if (srv->shutting_down)
		return;
	log_info("shutdown requested sessions=%zu", srv->n_conns);
	srv->shutting_down = true;
	lmtp_conn_shutdown_all(srv);
	lmtp_server_maybe_exit(srv);
}

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
}

int
lmtp_main(void *arg, int ipc)
{
	const struct policy_settings *set = arg;
	struct lmtp_config cfg;
	struct lmtp_server srv;

	if (psep_child_hello(ipc, PSEP_ROLE_LMTPD, 0) == -1)
		return 1;
	log_init("lmtpd", ipc);
	log_set_debug(set->log_debug);
	config_from_settings(set, &cfg);

	/* Every DATA takes a LMTP_SPOOL_BUF buffer and gives it back: without
	 * this, glibc returned the top of the heap to the kernel (brk) after
	 * most messages and faulted it in again for the next. */
	if (mallopt(M_TRIM_THRESHOLD, (int)LMTP_HEAP_KEEP) != 1)
		log_warn("mallopt(M_TRIM_THRESHOLD) failed");

	memset(&srv, 0, sizeof(srv));
	TAILQ_INIT(&srv.conns);
	srv.cfg = &cfg;
	srv.base = psep_event_base_new();
	srv.ipc = lmtp_ipc_new(&srv, ipc);
	log_info("ready host=%s method=%s", cfg.host, event_base_get_method(srv.base));
	if (event_base_dispatch(srv.base) == -1) {
		log_err("event loop failed");
		srv.status = 1;
	}
	lmtp_conn_free_all(&srv);
	lmtp_ipc_free(&srv.ipc);
	event_base_free(srv.base);
	return srv.status;
}
