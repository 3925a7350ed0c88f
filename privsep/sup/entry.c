/* SPDX-License-Identifier: MIT */
/*
 * privsep/sup/entry.c - the one role -> entry table: which function each
 * child role runs after its privilege drop, and the argument it gets.
 * The only supervisor file that knows the other modules' entry points
 * (lmtpd/, writer/, repl-hook/); every spawn site names a role and
 * children.c looks the entry up here (through sup->entries).
 *
 * Runs in:  the supervisor (root), just before fork: the argument is
 *           static storage filled from the running settings, and the
 *           child gets a copy of it at fork.  No context or key is
 *           passed: repld and repl-hook get the TLS files' fds.
 */
#include "privsep/child.h"
#include "privsep/sup/sup_int.h"
#include "lmtpd/lmtpd.h"
#include "writer/writer.h"
#include "repl-hook/hook.h"
#include "repl-hook/repld/repld.h"

/* lmtpd: the settings and the STARTTLS files its spawn keeps open (the
 * first two kept fds: certificate, key). */
static struct lmtp_args lmtp_args;

static void *
lmtp_arg(struct sup *sup, const struct psep_spawn *sp)
{
	psep_fd_limit_note();
	lmtp_args.set = &sup->set;
	lmtp_args.tls_cert_fd = sp->n_keep_fds >= 2 ? sp->keep_fds[0] : -1;
	lmtp_args.tls_key_fd = sp->n_keep_fds >= 2 ? sp->keep_fds[1] : -1;
	return &lmtp_args;
}

/* Both writer modes read the settings. */
static void *
settings_arg(struct sup *sup, const struct psep_spawn *sp)
{
	(void)sp;
	psep_fd_limit_note();
	return &sup->set;
}

/* The writer template forks writer children with the settings it was
 * forked with. */
static struct psep_template_args template_args;

static void *
template_arg(struct sup *sup, const struct psep_spawn *sp)
{
	template_args.child_main = writer_child_main;
	template_args.child_arg = settings_arg(sup, sp);
	return &template_args;
}

static struct repld_args repld_args;

static void *
repld_arg(struct sup *sup, const struct psep_spawn *sp)
{
	(void)sp;
	psep_fd_limit_note();
	repld_args.set = &sup->set;
	repld_args.tls_server_ctx = NULL;
	if (sup->tls_server)
		repld_args.tls_fds = sup->tls_fds;
	else
		psep_tls_fds_init(&repld_args.tls_fds);
	return &repld_args;
}

static struct hook_args hook_args;

/* The replication directory is the first kept fd of the spawn; the TLS
 * files (kept by the spawn, replproc.c) are the supervisor's fds. */
static void *
hook_arg(struct sup *sup, const struct psep_spawn *sp)
{
	hook_args.set = &sup->set;
	hook_args.tls_client_ctx = NULL;
	if (sup->tls_client)
		hook_args.tls_fds = sup->tls_fds;
	else
		psep_tls_fds_init(&hook_args.tls_fds);
	hook_args.state_dirfd = sp->n_keep_fds > 0 ? sp->keep_fds[0] : -1;
	return &hook_args;
}

const struct sup_entry sup_entries[PSEP_ROLE_COUNT] = {
	[PSEP_ROLE_SUPERVISOR] = { NULL, NULL },
	[PSEP_ROLE_LMTPD] = { lmtp_main, lmtp_arg },
	[PSEP_ROLE_WRITER_SETEUID] = { writer_seteuid_main, settings_arg },
	[PSEP_ROLE_WRITER_CHILD] = { writer_child_main, settings_arg },
	[PSEP_ROLE_REPL_HOOK] = { repl_hook_main, hook_arg },
	[PSEP_ROLE_REPLD] = { repld_main, repld_arg },
	[PSEP_ROLE_CONTROL] = { NULL, NULL },   /* stowctl: never spawned */
	[PSEP_ROLE_WRITER_TEMPLATE] = { psep_template_main, template_arg },
};
