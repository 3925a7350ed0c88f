/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/privsep/sup/test_listen.c - the unix listeners of
 * privsep/sup/listen.c: group and mode are set before the socket is
 * reachable at its path, never through a name in a directory that others
 * may write (chmod and chown are wrapped and look at the directory of
 * each path they are given), a planted symlink is refused, not followed.
 *
 * Runs in:  the unit suite, as any user (the group set is the caller's).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "privsep/sup/sup_int.h"

static unsigned n_perm_calls, n_unsafe_calls;

int __real_chmod(const char *path, mode_t mode);
int __real_chown(const char *path, uid_t uid, gid_t gid);
int __wrap_chmod(const char *path, mode_t mode);
int __wrap_chown(const char *path, uid_t uid, gid_t gid);

/* True if path's directory is ours, mode 0700: nobody else can swap a
 * name in it. */
static bool
in_private_dir(const char *path)
{
	char copy[256];
	struct stat st;

	snprintf(copy, sizeof(copy), "%s", path);
	if (lstat(dirname(copy), &st) < 0)
		return false;
	return S_ISDIR(st.st_mode) && (st.st_mode & 07777) == 0700 &&
	       st.st_uid == geteuid();
}

int
__wrap_chmod(const char *path, mode_t mode)
{
	n_perm_calls++;
	if (!in_private_dir(path))
		n_unsafe_calls++;
	return __real_chmod(path, mode);
}

int
__wrap_chown(const char *path, uid_t uid, gid_t gid)
{
	n_perm_calls++;
	if (!in_private_dir(path))
		n_unsafe_calls++;
	return __real_chown(path, uid, gid);
}

static unsigned n_handed;

/* listen.c hands accepted clients on: counted and closed. */
void
sup_frontends_hand(struct sup *sup, int fd, const char *listener)
{
	(void)sup;
	(void)listener;
	n_handed++;
	close(fd);
}

void
sup_repld_hand(struct sup *sup, int fd, const char *listener)
{
	(void)sup;
	(void)listener;
	close(fd);
}

void
sup_frontends_hand_metrics(struct sup *sup, int fd, const char *listener)
{
	(void)sup;
	(void)listener;
	close(fd);
}

struct env {
	char dir[64];            /* mode 1777, like /tmp or a careless /run */
	char path[96];
	char repl_path[96];
	struct sup sup;
};

static int
setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));
	struct group *gr = getgrgid(getegid());

	snprintf(e->dir, sizeof(e->dir), "/tmp/stowd-listen.XXXXXX");
	if (e == NULL || mkdtemp(e->dir) == NULL || __real_chmod(e->dir, 01777) < 0)
		return -1;
	snprintf(e->path, sizeof(e->path), "%s/lmtp", e->dir);
	snprintf(e->repl_path, sizeof(e->repl_path), "%s/repl", e->dir);
	policy_settings_defaults(&e->sup.set);
	free(e->sup.set.lmtp_listen);
	free(e->sup.set.lmtp_socket_group);
	free(e->sup.set.replication_listen);
	xasprintf(&e->sup.set.lmtp_listen, "unix:%s", e->path);
	e->sup.set.lmtp_socket_group = xstrdup(gr != NULL ? gr->gr_name : "");
	e->sup.set.lmtp_socket_mode = 0660;
	xasprintf(&e->sup.set.replication_listen, "unix:%s", e->repl_path);
	e->sup.base = event_base_new();
	n_perm_calls = n_unsafe_calls = 0;
	*state = e;
	return e->sup.base != NULL ? 0 : -1;
}

static int
teardown(void **state)
{
	struct env *e = *state;
	char cmd[128];

	sup_listeners_close(&e->sup);
	free(e->sup.listeners);
	policy_settings_clear(&e->sup.set);
	event_base_free(e->sup.base);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", e->dir);
	if (system(cmd) != 0)
		return -1;
	free(e);
	return 0;
}

/* Entries of dir other than the ones named. */
static unsigned
leftovers(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	unsigned n = 0;

	assert_non_null(d);
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0 &&
		    strcmp(de->d_name, "lmtp") != 0 && strcmp(de->d_name, "repl") != 0 &&
		    strcmp(de->d_name, "victim") != 0)
			n++;
	closedir(d);
	return n;
}

static void
test_unix_sockets_get_group_and_mode_before_they_are_reachable(void **state)
{
	struct env *e = *state;
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	const char *why = NULL;
	struct stat st;
	int c;

	assert_int_equal(sup_listeners_open(&e->sup, &why), 0);
	assert_true(n_perm_calls >= 3);     /* lmtp chown + chmod, repl chmod */
	assert_int_equal(n_unsafe_calls, 0);
	assert_int_equal(lstat(e->path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0660);
	assert_int_equal(st.st_gid, getegid());
	assert_int_equal(lstat(e->repl_path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(leftovers(e->dir), 0);
	/* the listener is the socket at its final path */
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", e->path);
	c = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(c >= 0);
	assert_int_equal(connect(c, (struct sockaddr *)&sun, sizeof(sun)), 0);
	close(c);
}

static void
test_planted_symlink_is_refused_and_its_target_untouched(void **state)
{
	struct env *e = *state;
	char victim[128];
	const char *why = NULL;
	struct stat st;
	int fd;

	snprintf(victim, sizeof(victim), "%s/victim", e->dir);
	fd = open(victim, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(symlink(victim, e->path), 0);
	assert_int_equal(sup_listeners_open(&e->sup, &why), -1);
	assert_non_null(why);
	assert_int_equal(n_unsafe_calls, 0);
	assert_int_equal(stat(victim, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(lstat(e->path, &st), 0);
	assert_true(S_ISLNK(st.st_mode));
	assert_int_equal(leftovers(e->dir), 0);
}

static double
cpu_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
run_loop_ms(struct event_base *base, int ms)
{
	struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };

	event_base_loopexit(base, &tv);
	event_base_dispatch(base);
}

/* accept failing with EMFILE pauses the listener instead of spinning on
 * the client that stays in the backlog; once fds are free it is taken. */
static void
test_accept_out_of_fds_backs_off(void **state)
{
	struct env *e = *state;
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct rlimit old, rl;
	const char *why = NULL;
	int fill[256], nfill = 0, c, i;
	double cpu;

	assert_int_equal(sup_listeners_open(&e->sup, &why), 0);
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", e->path);
	c = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(c >= 0);
	assert_int_equal(connect(c, (struct sockaddr *)&sun, sizeof(sun)), 0);
	/* no fd left for accept */
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
	rl = old;
	rl.rlim_cur = 64;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
	while (nfill < 256 && (fill[nfill] = open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0)
		nfill++;
	assert_int_equal(errno, EMFILE);
	n_handed = 0;
	cpu = cpu_seconds();
	run_loop_ms(e->sup.base, 400);
	cpu = cpu_seconds() - cpu;
	for (i = 0; i < nfill; i++)
		close(fill[i]);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
	assert_int_equal(n_handed, 0);
	assert_true(cpu < 0.15);
	/* fds are back: the paused listener resumes and takes the client */
	for (i = 0; i < 60 && n_handed == 0; i++)
		run_loop_ms(e->sup.base, 50);
	assert_int_equal(n_handed, 1);
	close(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_accept_out_of_fds_backs_off, setup,
						teardown),
		cmocka_unit_test_setup_teardown(
			test_unix_sockets_get_group_and_mode_before_they_are_reachable,
			setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_planted_symlink_is_refused_and_its_target_untouched,
			setup, teardown),
	};

	log_init("test", -1);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
