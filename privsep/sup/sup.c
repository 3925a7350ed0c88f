/* SPDX-License-Identifier: MIT */
/*
 * privsep/sup/sup.c - the supervisor: start-up, signals, readiness,
 * reload (SIGHUP) and graceful stop (SIGTERM/SIGINT).
 *
 * Runs in:  the supervisor (root, libevent, one event_base).
 * Order:    config (and replication TLS contexts) -> listeners ->
 *           front-ends + writers (+ repld, repl-hook) -> READY=1.
 *           Reload: a new config is fully checked (parse, userdb, run_user)
 *           before anything changes; a bad one is refused and the old one
 *           stays.  The old generation of children finishes its work and
 *           exits; the new one takes every new connection and write.
 */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "privsep/sup/sup.h"
#include "privsep/sup/sup_int.h"
#include "privsep/tls.h"

static int
resolve_run_user(const struct policy_settings *s, struct psep_creds *out,
		 const char **why_out)
{
	struct passwd *pw = getpwnam(s->run_user);

	if (pw == NULL) {
		*why_out = "run_user does not exist (create it: useradd --system "
			   "--no-create-home --shell /usr/sbin/nologin stowd)";
		return -1;
	}
	if (pw->pw_uid == 0 || pw->pw_gid == 0) {
		*why_out = "run_user must not have uid or gid 0";
		return -1;
	}
	memset(out, 0, sizeof(*out));
	out->uid = pw->pw_uid;
	out->gid = pw->pw_gid;
	out->ngroups = 1;
	out->groups[0] = pw->pw_gid;
	return 0;
}

/* What the supervisor derives from its settings at each load: the
 * hostname and server id, the allowed LMTP client networks (checked when
 * the settings were read, so a failure here leaves none allowed), and
 * RLIMIT_NOFILE for the fd budget (not asked for on every delivery). */
static void
derive_names(struct sup *sup)
{
	const char *why = NULL;

	sup->nofile = sup_nofile();
	sup->n_allow_nets = 0;
	if (sup->set.lmtp_allow_networks != NULL &&
	    policy_networks_parse(sup->set.lmtp_allow_networks, sup->allow_nets,
				  POLICY_MAX_NETWORKS, &sup->n_allow_nets, &why) < 0)
		sup->n_allow_nets = 0;
	policy_settings_resolve_hostname(&sup->set);
	xstrlcpy(sup->hostname, sup->set.hostname, sizeof(sup->hostname));
	xstrlcpy(sup->server_id, sup->set.server_id[0] != '\0' ?
		 sup->set.server_id : sup->hostname, sizeof(sup->server_id));
}

static const char *
mode_name(const struct sup *sup)
{
	return sup->set.delivery_mode == POLICY_MODE_FORK ? "fork" : "seteuid";
}

/* True if a pool has fewer children than the settings ask for. */
static bool
pools_short(struct sup *sup)
{
	return sup_children_count(sup, PSEP_ROLE_LMTPD, true) < sup->set.lmtp_processes ||
	       sup_children_count(sup, PSEP_ROLE_WRITER_SETEUID, true) <
		       sup_writers_expected(sup) ||
	       (sup->set.delivery_mode == POLICY_MODE_FORK && sup->tmpl == NULL);
}

/* Start what the pools miss.  A spawn that failed (EMFILE, EAGAIN, ENOMEM)
 * is tried again after a back-off: 100 ms doubling to 5 s. */
static void
pools_start(struct sup *sup)
{
	sup_frontends_start(sup);
	sup_writers_start(sup);
	sup_repl_procs_start(sup);
	if (sup->stopping || !pools_short(sup)) {
		sup->respawn_ms = 0;
		return;
	}
	sup->respawn_ms = sup->respawn_ms == 0 ? 100 : sup->respawn_ms * 2;
	if (sup->respawn_ms > 5000)
		sup->respawn_ms = 5000;
	if (!evtimer_pending(sup->ev_respawn, NULL)) {
		struct timeval tv = { .tv_sec = sup->respawn_ms / 1000,
				      .tv_usec = (suseconds_t)(sup->respawn_ms % 1000) * 1000 };

		log_warn("a front-end or writer could not be started: trying again "
			 "in %u ms", sup->respawn_ms);
		evtimer_add(sup->ev_respawn, &tv);
	}
}

static unsigned
ready_count(struct sup *sup, enum psep_role role)
{
	struct sup_child *c;
	unsigned n = 0;

	TAILQ_FOREACH(c, &sup->children, link)
		if (c->role == role && !c->retired && c->state == PSEP_STATE_READY &&
		    c->generation == sup->generation)
			n++;
	return n;
}

static void
top_check_ready(struct sup *sup)
{
	if (sup->ready_sent || sup->stopping)
		return;
	if (ready_count(sup, PSEP_ROLE_LMTPD) < sup->set.lmtp_processes ||
	    ready_count(sup, PSEP_ROLE_WRITER_SETEUID) < sup_writers_expected(sup) ||
	    !sup_repl_procs_ready(sup))
		return;
	sup->ready_sent = true;
	log_info("ready generation=%u delivery_mode=%s lmtp_processes=%u",
		 sup->generation, mode_name(sup), sup->set.lmtp_processes);
	sup_notify("READY=1");
}

static void
top_check_stopped(struct sup *sup)
{
	struct sup_child *c;

	if (!sup->stopping)
		return;
	/* Front-ends first; repl-hook once nothing can make an event; the
	 * writers once repl-hook (which may still ask for reads) is gone. */
	if (sup_children_count(sup, PSEP_ROLE_LMTPD, false) == 0 &&
	    sup_children_count(sup, PSEP_ROLE_REPLD, false) == 0 &&
	    sup_dispatch_idle(sup) && sup_events_idle(sup))
		sup_hook_retire(sup);
	if (sup_children_count(sup, PSEP_ROLE_LMTPD, false) == 0 &&
	    sup_children_count(sup, PSEP_ROLE_REPLD, false) == 0 &&
	    sup_children_count(sup, PSEP_ROLE_REPL_HOOK, false) == 0 &&
	    sup_dispatch_idle(sup))
		sup_writers_retire(sup);
	TAILQ_FOREACH(c, &sup->children, link)
		return;
	event_base_loopexit(sup->base, NULL);
}

static void
on_respawn(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	pools_start(arg);
}

static void
top_child_gone(struct sup_child *c)
{
	struct sup *sup = c->sup;

	if (sup->stopping || c->retired || c->generation != sup->generation) {
		/* Jobs still queued need writers, also during a stop. */
		if (!sup_dispatch_idle(sup))
			sup_writers_start(sup);
		/* A retired repl-hook is replaced only once it is gone. */
		sup_repl_procs_start(sup);
		top_check_stopped(sup);
		return;
	}
	if (sup_child_age(c) >= 1.0) {
		pools_start(sup);
	} else {
		struct timeval tv = { .tv_sec = 1, .tv_usec = 0 };

		evtimer_add(sup->ev_respawn, &tv);
	}
}

static int top_reload(struct sup *sup, char *err, size_t errsize);
static void sup_stop(struct sup *sup);

/* How the pools, events and processes below tell this file. */
static const struct sup_top_ops top_ops = {
	.check_ready = top_check_ready,
	.check_stopped = top_check_stopped,
	.child_gone = top_child_gone,
	.reload = top_reload,
	.stop = sup_stop,
};

static void
on_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct sup *sup = arg;
	struct sup_child *c;

	(void)fd;
	(void)what;
	log_warn("graceful stop took too long: killing the remaining children");
	TAILQ_FOREACH(c, &sup->children, link)
		sup_child_kill(c, "stop deadline");
}

static void
sup_stop(struct sup *sup)
{
	uint64_t ms = sup->set.lmtp_command_timeout + sup->set.writer_timeout + 5000;
	struct timeval tv = { .tv_sec = (time_t)(ms / 1000),
			      .tv_usec = (suseconds_t)(ms % 1000) * 1000 };

	if (sup->stopping)
		return;
	log_info("stopping: finishing transactions in progress");
	sup->stopping = true;
	sup_notify("STOPPING=1");
	sup_listeners_close(sup);
	sup_frontends_drop_pending(sup);
	sup_frontends_retire(sup);
	sup_repld_retire(sup);
	sup->ev_deadline = evtimer_new(sup->base, on_deadline, sup);
	evtimer_add(sup->ev_deadline, &tv);
	top_check_stopped(sup);
}

/* Check a new config completely; 0 and *next filled, or -1 (logged). */
static int
reload_prepare(struct sup *sup, struct policy_settings *next,
	       struct policy_userdb **db_out, struct psep_creds *creds_out,
	       struct sup_tls *tls_out, char *rerr, size_t rerrsize)
{
	const char *why = NULL;
	char *err = NULL;
	char tls_err[256];

	if (policy_config_load(sup->config_path, sup->config_required, next, &err) < 0) {
		log_err("reload refused, keeping the running config: %s", err);
		snprintf(rerr, rerrsize, "%s", err);
		free(err);
		return -1;
	}
	if (sup_quota_check_settings(next, &why) < 0 ||
	    resolve_run_user(next, creds_out, &why) < 0 ||
	    policy_userdb_open(next, db_out, &why) < 0) {
		log_err("reload refused, keeping the running config: %s", why);
		snprintf(rerr, rerrsize, "%s", why);
		policy_settings_clear(next);
		return -1;
	}
	policy_settings_resolve_hostname(next);
	if (sup_tls_build(next, tls_out, tls_err, sizeof(tls_err)) < 0) {
		log_err("reload refused, keeping the running config: %s", tls_err);
		snprintf(rerr, rerrsize, "replication TLS: %s", tls_err);
		policy_userdb_free(db_out);
		policy_settings_clear(next);
		return -1;
	}
	return 0;
}

static int
reload_listeners(struct sup *sup, struct policy_settings *old)
{
	const char *why;

	if (sup_listeners_same(old, &sup->set))
		return 0;
	sup_listeners_close(sup);
	if (sup_listeners_open(sup, &why) == 0)
		return 0;
	sup_listeners_close(sup);
	return -1;
}

static int
top_reload(struct sup *sup, char *err, size_t errsize)
{
	struct policy_settings next, old;
	struct policy_userdb *db = NULL;
	struct psep_creds creds;
	struct sup_tls tls;
	const char *why;

	if (sup->stopping) {
		snprintf(err, errsize, "stowd is stopping");
		return -1;
	}
	log_info("reloading %s", sup->config_path);
	sup_notify("RELOADING=1");
	if (reload_prepare(sup, &next, &db, &creds, &tls, err, errsize) < 0) {
		sup_notify("READY=1");
		return -1;
	}
	old = sup->set;
	sup->set = next;
	if (reload_listeners(sup, &old) < 0) {
		log_err("reload refused: new listeners failed; restoring the old ones");
		policy_settings_clear(&sup->set);
		sup->set = old;
		policy_userdb_free(&db);
		psep_tls_close(&tls.fds);
		if (sup_listeners_open(sup, &why) < 0)
			log_err("cannot reopen the old listeners: %s", why);
		sup_notify("READY=1");
		snprintf(err, errsize, "the new listeners could not be opened");
		return -1;
	}
	policy_settings_clear(&old);
	policy_userdb_free(&sup->userdb);
	sup->userdb = db;
	sup->run_creds = creds;
	/* The files are opened again: a replaced certificate or key is
	 * in use once the retired repld and repl-hook are replaced; they
	 * keep their own contexts until then. */
	sup_tls_take(sup, &tls);
	derive_names(sup);
	psep_msg_set_uid_range(sup->set.first_valid_uid, sup->set.last_valid_uid);
	log_set_debug(sup->set.log_debug);
	log_set_syslog(sup->set.log_target == POLICY_LOG_SYSLOG);
	sup->generation++;
	sup->ready_sent = false;
	sup_frontends_retire(sup);
	sup_repld_retire(sup);
	sup_hook_retire(sup);
	sup_writers_retire(sup);
	sup_control_open(sup);
	pools_start(sup);
	top_check_ready(sup);
	return 0;
}

static void
sup_reload(struct sup *sup)
{
	char err[256];

	(void)top_reload(sup, err, sizeof(err));
}

static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct sup *sup = arg;

	(void)what;
	switch (sig) {
	case SIGTERM:
	case SIGINT:
		sup_stop(sup);
		break;
	case SIGHUP:
		sup_reload(sup);
		break;
	case SIGCHLD:
		sup_children_reap(sup);
		break;
#ifdef STOWD_TEST_HOOKS
	case SIGUSR1:
		sup->test_op = PSEP_TEST_FORBIDDEN_SYSCALL;
		log_info("test hook: the writer of the next job makes a forbidden "
			 "system call");
		break;
	case SIGUSR2:
		sup->test_op = PSEP_TEST_STALL;
		log_info("test hook: the writer of the next job stalls");
		break;
	case SIGWINCH:
		sup->test_op = PSEP_TEST_BOGUS_STAMP;
		log_info("test hook: the writer of the next job sends a stamp for "
			 "a request it does not hold");
		break;
	case SIGPWR:
		sup->test_op = PSEP_TEST_DIE_AFTER_STAMP;
		log_info("test hook: the writer of the next LMTP save dies after "
			 "its stamp");
		break;
	case SIGURG:
		sup->test_op = PSEP_TEST_STALL_AFTER_STAMP;
		log_info("test hook: the writer of the next LMTP save stalls after "
			 "its stamp");
		break;
	case SIGVTALRM:
		sup->test_op = PSEP_TEST_DIE_AFTER_SAVE;
		log_info("test hook: the writer of the next LMTP save dies after "
			 "the save, before its reply");
		break;
#endif
	default:
		break;
	}
}

static void
signals_setup(struct sup *sup)
{
	static const int sigs[] = { SIGTERM, SIGINT, SIGHUP, SIGCHLD,
#ifdef STOWD_TEST_HOOKS
		/* test builds: make the writer of the next job fail; each
		 * logs "test hook: ..." (tests wait for it) */
		SIGUSR1, SIGUSR2, SIGWINCH, SIGPWR, SIGURG, SIGVTALRM,
#endif
	};
	size_t i;

	_Static_assert(sizeof(sigs) / sizeof(sigs[0]) <=
		       sizeof(sup->ev_sig) / sizeof(sup->ev_sig[0]),
		       "one event per handled signal");
	signal(SIGPIPE, SIG_IGN);
	for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
		sup->ev_sig[i] = evsignal_new(sup->base, sigs[i], on_signal, sup);
		if (sup->ev_sig[i] == NULL || evsignal_add(sup->ev_sig[i], NULL) < 0)
			fatalx("cannot watch signal %d", sigs[i]);
	}
}

/* ---- systemd watchdog and STATUS= ------------------------------------- */

static double
mono_since(const struct timespec *t, const struct timespec *now)
{
	return (double)(now->tv_sec - t->tv_sec) + (double)(now->tv_nsec - t->tv_nsec) / 1e9;
}

/* The roles that must have a process now (or one being restarted). */
static bool
role_needed(struct sup *sup, enum psep_role role)
{
	switch (role) {
	case PSEP_ROLE_LMTPD:
		return true;
	case PSEP_ROLE_WRITER_SETEUID:
		return sup->set.delivery_mode == POLICY_MODE_SETEUID;
	case PSEP_ROLE_WRITER_TEMPLATE:
		return sup->set.delivery_mode == POLICY_MODE_FORK;
	case PSEP_ROLE_REPL_HOOK:
		return sup->set.n_replicas > 0;
	case PSEP_ROLE_REPLD:
		return sup->set.replication_listen != NULL &&
		       sup->set.replication_listen[0] != '\0';
	case PSEP_ROLE_SUPERVISOR:
	case PSEP_ROLE_WRITER_CHILD:
	case PSEP_ROLE_CONTROL:
		return false;
	}
	return false;
}

/* Every needed role has a live process, or lost it less than the respawn
 * back-off (1 s) plus a start-up allowance ago. */
static bool
roles_healthy(struct sup *sup, const struct timespec *now, const char **why_out)
{
	static const double allowance_s = 10.0;
	int r;

	for (r = 0; r < PSEP_ROLE_COUNT; r++) {
		struct timespec *ms = &sup->missing_since[r];

		if (!role_needed(sup, (enum psep_role)r) ||
		    sup_children_count(sup, (enum psep_role)r, true) > 0) {
			ms->tv_sec = 0;
			ms->tv_nsec = 0;
			continue;
		}
		if (ms->tv_sec == 0 && ms->tv_nsec == 0)
			*ms = *now;
		if (mono_since(ms, now) > allowance_s) {
			*why_out = psep_role_name((enum psep_role)r);
			return false;
		}
	}
	return true;
}

static void
on_watchdog(evutil_socket_t fd, short what, void *arg)
{
	struct sup *sup = arg;
	struct timespec now;
	struct psep_counters k;
	const char *why = NULL;
	double late;
	char msg[512];

	(void)fd;
	(void)what;
	clock_gettime(CLOCK_MONOTONIC, &now);
	late = mono_since(&sup->watchdog_last, &now);
	sup->watchdog_last = now;
	sup_stats_fill(sup, &k);
	if (late > (double)sup->watchdog_us / 2e6) {
		log_warn("watchdog: the loop turned after %.3fs, more than half the "
			 "interval: no WATCHDOG=1", late);
		return;
	}
	if (!sup->stopping && !roles_healthy(sup, &now, &why)) {
		log_warn("watchdog: no %s process for too long: no WATCHDOG=1", why);
		snprintf(msg, sizeof(msg), "STATUS=unhealthy: no %s process", why);
		sup_notify(msg);
		return;
	}
	snprintf(msg, sizeof(msg), "WATCHDOG=1\nSTATUS=%s generation %u, %s mode; "
		 "delivered %llu, tempfail %llu, permfail %llu; queue %llu",
		 sup->stopping ? "stopping" : sup->ready_sent ? "ready" : "starting",
		 sup->generation,
		 sup->set.delivery_mode == POLICY_MODE_FORK ? "fork" : "seteuid",
		 (unsigned long long)k.deliveries[PSEP_OUT_OK],
		 (unsigned long long)(k.deliveries[PSEP_OUT_TEMP_USERDB] +
				      k.deliveries[PSEP_OUT_TEMP_WRITER] +
				      k.deliveries[PSEP_OUT_TEMP_QUOTA] +
				      k.deliveries[PSEP_OUT_TEMP_REPLICATION] +
				      k.deliveries[PSEP_OUT_TEMP_OTHER]),
		 (unsigned long long)(k.deliveries[PSEP_OUT_PERM_NOUSER] +
				      k.deliveries[PSEP_OUT_PERM_QUOTA] +
				      k.deliveries[PSEP_OUT_PERM_OTHER]),
		 (unsigned long long)k.queue_depth);
	sup_notify(msg);
}

/* WATCHDOG_USEC (and WATCHDOG_PID, if set, naming this process) turn the
 * watchdog on: a tick every quarter of the interval sends WATCHDOG=1
 * only while the loop keeps its pace and every role has a process. */
static void
watchdog_setup(struct sup *sup)
{
	const char *usec = getenv("WATCHDOG_USEC"), *pid = getenv("WATCHDOG_PID");
	unsigned long long us;
	struct timeval tv;
	char *end;

	if (usec == NULL || usec[0] == '\0')
		return;
	if (pid != NULL && pid[0] != '\0' && strtol(pid, NULL, 10) != (long)getpid())
		return;
	errno = 0;
	us = strtoull(usec, &end, 10);
	if (errno != 0 || *end != '\0' || us < 20000) {
		log_warn("watchdog: bad WATCHDOG_USEC=%s, no watchdog", usec);
		return;
	}
	sup->watchdog_us = us;
	tv.tv_sec = (time_t)(us / 4 / 1000000);
	tv.tv_usec = (suseconds_t)(us / 4 % 1000000);
	sup->ev_watchdog = event_new(sup->base, -1, EV_PERSIST, on_watchdog, sup);
	if (sup->ev_watchdog == NULL || event_add(sup->ev_watchdog, &tv) < 0)
		fatalx("cannot start the watchdog timer");
	clock_gettime(CLOCK_MONOTONIC, &sup->watchdog_last);
	log_info("watchdog every %llums", us / 4000);
}

static void
sup_free(struct sup *sup)
{
	size_t i;

	sup_listeners_close(sup);
	sup_control_close(sup);
	free(sup->control);
	free(sup->lastdlv);
	sup_frontends_drop_pending(sup);
	for (i = 0; i < sizeof(sup->ev_sig) / sizeof(sup->ev_sig[0]); i++)
		if (sup->ev_sig[i] != NULL)
			event_free(sup->ev_sig[i]);
	if (sup->ev_deadline != NULL)
		event_free(sup->ev_deadline);
	event_free(sup->ev_respawn);
	if (sup->ev_watchdog != NULL)
		event_free(sup->ev_watchdog);
	policy_userdb_free(&sup->userdb);
	sup_tls_free(sup);
	policy_settings_clear(&sup->set);
	event_base_free(sup->base);
}

int
sup_check_config(const struct policy_settings *set)
{
	struct policy_userdb *db = NULL;
	struct policy_settings copy;
	struct psep_creds creds;
	struct sup_tls tls;
	char tls_err[256];
	const char *why = NULL;
	int ret;

	if (resolve_run_user(set, &creds, &why) < 0) {
		fprintf(stderr, "stowd: run_user %s: %s\n", set->run_user, why);
		return -1;
	}
	if (sup_quota_check_settings(set, &why) < 0) {
		fprintf(stderr, "stowd: quota_rule %s: %s\n", set->quota_rule, why);
		return -1;
	}
	if (set->lmtp_tls != POLICY_TLS_NO) {
		/* opened as at start; only lmtpd parses them */
		const char *paths[2] = { set->lmtp_tls_cert, set->lmtp_tls_key };

		for (int i = 0; i < 2; i++) {
			int fd = open(paths[i], O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);

			if (fd < 0) {
				fprintf(stderr, "stowd: lmtp_tls_%s %s: %s\n",
					i == 0 ? "cert" : "key", paths[i], strerror(errno));
				return -1;
			}
			close(fd);
		}
	}
	if (policy_userdb_open(set, &db, &why) < 0) {
		fprintf(stderr, "stowd: userdb %s: %s\n", set->userdb, why);
		return -1;
	}
	policy_userdb_free(&db);
	policy_settings_copy(&copy, set);
	policy_settings_resolve_hostname(&copy);
	psep_tls_preinit();
	ret = sup_tls_build(&copy, &tls, tls_err, sizeof(tls_err));
	if (ret < 0)
		fprintf(stderr, "stowd: replication TLS: %s\n", tls_err);
	else
		psep_tls_close(&tls.fds);
	policy_settings_clear(&copy);
	return ret;
}

int
sup_run(struct policy_settings *set, const char *config_path, bool required)
{
	struct sup sup;
	const char *why = NULL;

	memset(&sup, 0, sizeof(sup));
	sup.set = *set;
	memset(set, 0, sizeof(*set));
	sup.config_path = (char *)config_path;
	sup.config_required = required;
	sup.top = &top_ops;
	sup.entries = sup_entries;
	TAILQ_INIT(&sup.children);
	TAILQ_INIT(&sup.queue);
	TAILQ_INIT(&sup.pending);
	TAILQ_INIT(&sup.events);
	TAILQ_INIT(&sup.repl_pending);
	TAILQ_INIT(&sup.hookq);
	sup.started = time(NULL);
	log_set_debug(sup.set.log_debug);
	log_set_syslog(sup.set.log_target == POLICY_LOG_SYSLOG);
	derive_names(&sup);
	psep_msg_set_uid_range(sup.set.first_valid_uid, sup.set.last_valid_uid);
	if (resolve_run_user(&sup.set, &sup.run_creds, &why) < 0)
		fatalx("run_user %s: %s", sup.set.run_user, why);
	if (policy_userdb_open(&sup.set, &sup.userdb, &why) < 0)
		fatalx("userdb %s: %s", sup.set.userdb, why);
	psep_tls_fds_init(&sup.tls_fds);
	psep_tls_preinit();
	if (sup_quota_check_settings(&sup.set, &why) < 0)
		fatalx("quota_rule %s: %s", sup.set.quota_rule, why);
	{
		char tls_err[256];
		struct sup_tls tls;

		if (sup_tls_build(&sup.set, &tls, tls_err, sizeof(tls_err)) < 0)
			fatalx("replication TLS: %s", tls_err);
		sup_tls_take(&sup, &tls);
	}
	psep_sandbox_prepare();
	sup.base = event_base_new();
	if (sup.base == NULL)
		fatalx("event_base_new");
	sup.ev_respawn = evtimer_new(sup.base, on_respawn, &sup);
	signals_setup(&sup);
	if (sup_listeners_open(&sup, &why) < 0)
		fatalx("cannot open listeners: %s", why);
	sup_control_open(&sup);
	watchdog_setup(&sup);
	pools_start(&sup);
	log_info("started version=%s server_id=%s delivery_mode=%s", STOWD_VERSION,
		 sup.server_id, mode_name(&sup));
	event_base_dispatch(sup.base);
	log_info("stopped");
	sup_free(&sup);
	return 0;
}
