/* SPDX-License-Identifier: MIT */
/*
 * tests/integration/itest_repl.c - stowd instances replicating to each
 * other (see itest_repl.h).
 *
 * Runs in:  integration test programs, as root, against real stowd.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "tests/integration/itest.h"
#include "tests/integration/itest_repl.h"

struct certs irepl_certs;
struct irepl IR[IREPL_MAX];
static bool irepl_passed;

static const char *const irepl_names[IREPL_MAX] = { "a", "b", "c" };

int
irepl_group_setup(void **state)
{
	static const char *const ids[IREPL_MAX] = { "a.test", "b.test", "c.test" };

	(void)state;
	return certs_make(&irepl_certs, ids, IREPL_MAX);
}

int
irepl_group_teardown(void **state)
{
	(void)state;
	certs_remove(&irepl_certs);
	return 0;
}

int
irepl_setup(void **state)
{
	(void)state;
	irepl_passed = false;
	memset(IR, 0, sizeof(IR));
	for (unsigned i = 0; i < IREPL_MAX; i++) {
		snprintf(IR[i].name, sizeof(IR[i].name), "%s", irepl_names[i]);
		snprintf(IR[i].id, sizeof(IR[i].id), "%s.test", irepl_names[i]);
		IR[i].port = harness_pick_port();
		if (IR[i].port == 0)
			return -1;
	}
	return 0;
}

void
irepl_pass(void)
{
	irepl_passed = true;
}

int
irepl_teardown(void **state)
{
	(void)state;
	for (unsigned i = 0; i < IREPL_MAX; i++) {
		if (IR[i].h == NULL)
			continue;
		if (!irepl_passed)
			fprintf(stderr, "==== instance %s (%s) ====\n", IR[i].name,
				IR[i].id);
		harness_test_end(IR[i].h, irepl_passed);
		harness_free(&IR[i].h);
	}
	return 0;
}

static void
add_line(const char **lines, size_t *n, char *buf, size_t size, const char *fmt,
	 ...) __attribute__((format(printf, 5, 6)));

static void
add_line(const char **lines, size_t *n, char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	lines[(*n)++] = buf;
}

int
irepl_make(unsigned i, const struct irepl_conf *conf)
{
	struct irepl *r = &IR[i];
	char l[13][300], blocks[IREPL_MAX * 128 + 1024] = "", cert[160], key[160];
	const char *lines[14];
	struct harness_opts o = { .nusers = 2 };
	size_t n = 0;

	r->h = harness_new(&o);
	if (r->h == NULL) {
		fprintf(stderr, "cannot create the tree of instance %s\n", r->name);
		return -1;
	}
	snprintf(r->sock, sizeof(r->sock), "%s/repl", r->h->tree);
	certs_cert_path(&irepl_certs, r->id, cert, sizeof(cert));
	certs_key_path(&irepl_certs, r->id, key, sizeof(key));
	add_line(lines, &n, l[0], sizeof(l[0]), "server_id = %s", r->id);
	add_line(lines, &n, l[1], sizeof(l[1]),
		 "replication_listen = tcp:127.0.0.1:%u unix:%s", r->port, r->sock);
	add_line(lines, &n, l[2], sizeof(l[2]), "replication_tls_cert = %s", cert);
	add_line(lines, &n, l[3], sizeof(l[3]), "replication_tls_key = %s", key);
	add_line(lines, &n, l[4], sizeof(l[4]), "replication_tls_ca = %s",
		 irepl_certs.ca);
	add_line(lines, &n, l[5], sizeof(l[5]), "replication_unix_uids = 0");
	add_line(lines, &n, l[6], sizeof(l[6]), "replication_sync_acks = %u",
		 conf->async ? 0u : conf->sync_acks ? conf->sync_acks :
		 conf->nreplicas > 0 ? 1u : 0u);
	add_line(lines, &n, l[7], sizeof(l[7]), "replication_sync_timeout = %s",
		 conf->sync_timeout ? conf->sync_timeout : "2s");
	add_line(lines, &n, l[8], sizeof(l[8]), "replication_on_timeout = %s",
		 conf->on_timeout ? conf->on_timeout : "accept");
	add_line(lines, &n, l[9], sizeof(l[9]), "replication_journal_max_size = %s",
		 conf->journal_max ? conf->journal_max : "10M");
	add_line(lines, &n, l[10], sizeof(l[10]), "replication_full_sync_interval = %s",
		 conf->full_sync ? conf->full_sync : "1h");
	if (conf->peers != NULL)
		add_line(lines, &n, l[11], sizeof(l[11]), "replication_peers = %s",
			 conf->peers);
	add_line(lines, &n, l[12], sizeof(l[12]), "replication_vanished = %s",
		 conf->vanished ? conf->vanished : "expunge");
	lines[n] = NULL;
	for (size_t k = 0; k < conf->nreplicas; k++) {
		size_t have = strlen(blocks);

		snprintf(blocks + have, sizeof(blocks) - have,
			 "replica %s {\naddress = tcp:127.0.0.1:%u\n}\n",
			 conf->replicas[k]->name, conf->replicas[k]->port);
	}
	if (conf->extra != NULL) {
		size_t have = strlen(blocks);

		snprintf(blocks + have, sizeof(blocks) - have, "%s\n", conf->extra);
	}
	o.conf = lines;
	o.conf_text = blocks;
	if (harness_write_conf(r->h, &o) < 0) {
		fprintf(stderr, "cannot write the config of instance %s\n", r->name);
		return -1;
	}
	return 0;
}

int
irepl_start(unsigned i)
{
	if (harness_start(IR[i].h) < 0) {
		fprintf(stderr, "instance %s (%s) did not start (see above)\n",
			IR[i].name, IR[i].id);
		return -1;
	}
	return 0;
}

void
irepl_stop(unsigned i)
{
	if (harness_stop(IR[i].h, 0, NULL) < 0)
		fail_msg("instance %s did not stop after SIGTERM", IR[i].name);
}

void
irepl_make_start(unsigned i, const struct irepl_conf *conf)
{
	if (irepl_make(i, conf) < 0 || irepl_start(i) < 0)
		fail_msg("instance %s not started", IR[i].name);
}

void
irepl_start_pair(unsigned from, unsigned to, const struct irepl_conf *conf)
{
	struct irepl_conf cto = { 0 };
	struct irepl_conf cfrom = conf != NULL ? *conf : cto;

	cfrom.replicas[0] = &IR[to];
	cfrom.nreplicas = 1;
	cto.extra = cfrom.extra_to != NULL ? cfrom.extra_to : cfrom.extra;
	cto.vanished = cfrom.vanished;
	irepl_make_start(to, &cto);
	irepl_make_start(from, &cfrom);
	irepl_warm_up(from, to, 0);
}

void
irepl_deliver(unsigned i, unsigned idx, const char *body, size_t len,
	      struct lmtpc_reply *r, char guid[33])
{
	struct lmtpc *c = itest_connect(IR[i].h, HARNESS_UNIX);
	struct lmtpc_reply dr;

	itest_envelope(c);
	itest_cmd(c, 250, NULL, "RCPT TO:<%s>", IR[i].h->users[idx].addr);
	if (lmtpc_data(c, body, len, &dr, r, 1) < 0)
		fail_msg("%s: DATA: %s", IR[i].name, lmtpc_strerror(errno));
	assert_int_equal(dr.code, 354);
	guid[0] = '\0';
	if (r->code == 250)
		(void)harness_reply_guid(r->text, guid);
	lmtpc_free(&c);
}

static int
find_in(const struct harness *h, unsigned idx, const char *sub, const char *guid,
	char *path, size_t size, int *count)
{
	char **names;
	int n = harness_maildir_list(h, idx, sub, &names);

	if (n < 0)
		return -1;
	for (int k = 0; k < n; k++) {
		if (guid != NULL && strcasestr(names[k], guid) == NULL)
			continue;
		(*count)++;
		if (path != NULL)
			snprintf(path, size, "%s/%s/%s", h->users[idx].maildir, sub,
				 names[k]);
	}
	harness_names_free(&names, n);
	return 0;
}

int
irepl_find(unsigned i, unsigned idx, const char *guid, char *path, size_t size)
{
	int count = 0;

	if (find_in(IR[i].h, idx, "new", guid, path, size, &count) < 0 ||
	    find_in(IR[i].h, idx, "cur", guid, path, size, &count) < 0)
		return -1;
	return count;
}

int
irepl_count(unsigned i, unsigned idx)
{
	int n = irepl_find(i, idx, NULL, NULL, 0);

	if (n < 0)
		fail_msg("cannot list the Maildir of %s on %s", IR[i].h->users[idx].name,
			 IR[i].name);
	return n;
}

static int
find_bytes_in(const struct harness *h, unsigned idx, const char *sub,
	      const char *data, size_t len, char *path, size_t size, int *count)
{
	char **names, file[512], *got;
	size_t glen;
	int n = harness_maildir_list(h, idx, sub, &names);

	if (n < 0)
		return -1;
	for (int k = 0; k < n; k++) {
		snprintf(file, sizeof(file), "%s/%s/%s", h->users[idx].maildir, sub,
			 names[k]);
		if (harness_read_file(file, &got, &glen) < 0)
			continue;   /* renamed meanwhile */
		if (glen == len && memcmp(got, data, len) == 0) {
			(*count)++;
			if (path != NULL)
				snprintf(path, size, "%s", file);
		}
		free(got);
	}
	harness_names_free(&names, n);
	return 0;
}

int
irepl_find_bytes(unsigned i, unsigned idx, const char *data, size_t len,
		 char *path, size_t size)
{
	int count = 0;

	if (find_bytes_in(IR[i].h, idx, "new", data, len, path, size, &count) < 0 ||
	    find_bytes_in(IR[i].h, idx, "cur", data, len, path, size, &count) < 0)
		return -1;
	return count;
}

int
irepl_wait_bytes(unsigned i, unsigned idx, const char *data, size_t len,
		 int timeout_ms, char *path, size_t size)
{
	int64_t deadline = harness_mono_ms() + timeout_ms;
	int n;

	for (;;) {
		n = irepl_find_bytes(i, idx, data, len, path, size);
		if (n == 1)
			return 0;
		if (n > 1) {
			fprintf(stderr, "%s: %d files with the same %zu bytes\n",
				IR[i].name, n, len);
			return -1;
		}
		if (harness_mono_ms() > deadline) {
			fprintf(stderr, "%s: no file with those %zu bytes after %d ms\n",
				IR[i].name, len, timeout_ms);
			return -1;
		}
		harness_sleep_ms(50);
	}
}

int
irepl_wait_guid(unsigned i, unsigned idx, const char *guid, int timeout_ms,
		char *path, size_t size)
{
	int64_t deadline = harness_mono_ms() + timeout_ms;
	int n;

	for (;;) {
		n = irepl_find(i, idx, guid, path, size);
		if (n == 1)
			return 0;
		if (n > 1) {
			fprintf(stderr, "%s: %d files with GUID %s\n", IR[i].name, n, guid);
			return -1;
		}
		if (harness_mono_ms() > deadline) {
			fprintf(stderr, "%s: no file with GUID %s after %d ms\n",
				IR[i].name, guid, timeout_ms);
			return -1;
		}
		harness_sleep_ms(50);
	}
}

int
irepl_log_count(unsigned i, const char *text)
{
	return harness_log_count(IR[i].h, text);
}

int
irepl_wait_log(unsigned i, const char *text, int n, int timeout_ms)
{
	int64_t deadline = harness_mono_ms() + timeout_ms;

	while (irepl_log_count(i, text) <= n) {
		if (harness_mono_ms() > deadline) {
			fprintf(stderr, "%s: no new \"%s\" in the log after %d ms\n",
				IR[i].name, text, timeout_ms);
			return -1;
		}
		harness_sleep_ms(50);
	}
	return 0;
}

long long
irepl_journal_size(unsigned i, const char *replica)
{
	char path[300];
	struct stat st;

	snprintf(path, sizeof(path), "%s/replication/%s.journal", IR[i].h->state_dir,
		 replica);
	if (stat(path, &st) < 0)
		return 0;
	return (long long)st.st_size;
}

int
irepl_wait_journal_empty(unsigned i, const char *replica, int timeout_ms)
{
	int64_t deadline = harness_mono_ms() + timeout_ms;

	while (irepl_journal_size(i, replica) != 0) {
		if (harness_mono_ms() > deadline) {
			fprintf(stderr, "%s: journal for %s still %lld bytes after %d ms\n",
				IR[i].name, replica, irepl_journal_size(i, replica),
				timeout_ms);
			return -1;
		}
		harness_sleep_ms(50);
	}
	return 0;
}

long
irepl_dirty_read(unsigned i, const char *replica, char *buf, size_t size)
{
	char path[300], *data;
	size_t len;

	buf[0] = '\0';
	snprintf(path, sizeof(path), "%s/replication/%s.dirty", IR[i].h->state_dir,
		 replica);
	if (harness_read_file(path, &data, &len) < 0)
		return errno == ENOENT ? 0 : -1;
	if (len >= size) {
		free(data);
		return -1;
	}
	memcpy(buf, data, len + 1);
	free(data);
	return (long)len;
}

int
irepl_wait_dirty_empty(unsigned i, const char *replica, int timeout_ms)
{
	int64_t deadline = harness_mono_ms() + timeout_ms;
	char buf[4096];
	long n;

	while ((n = irepl_dirty_read(i, replica, buf, sizeof(buf))) != 0) {
		if (harness_mono_ms() > deadline) {
			fprintf(stderr, "%s: dirty set for %s after %d ms: %ld \"%s\"\n",
				IR[i].name, replica, timeout_ms, n, buf);
			return -1;
		}
		harness_sleep_ms(50);
	}
	return 0;
}

void
irepl_put_by_hand(unsigned i, unsigned idx, const char *data, size_t len,
		  const char *guid, char *name, size_t size)
{
	static unsigned seq;
	const struct harness_user *u = &IR[i].h->users[idx];
	char tmp[512], dst[512];
	size_t lines = 0;
	struct timeval tv;

	for (size_t k = 0; k < len; k++)
		lines += data[k] == '\n';
	gettimeofday(&tv, NULL);
	snprintf(name, size, "%lld.M%06ldP%dQ%u%s%s.byhand.test,S=%zu,W=%zu",
		 (long long)tv.tv_sec, (long)tv.tv_usec, (int)getpid(), ++seq,
		 guid != NULL ? "G" : "", guid != NULL ? guid : "", len, len + lines);
	snprintf(tmp, sizeof(tmp), "%s/tmp/%s", u->maildir, name);
	snprintf(dst, sizeof(dst), "%s/new/%s", u->maildir, name);
	if (harness_write_file(tmp, data, len, 0600) < 0 ||
	    chown(tmp, u->uid, u->gid) < 0 || chmod(tmp, 0600) < 0 ||
	    rename(tmp, dst) < 0)
		fail_msg("put %s by hand: %s", dst, strerror(errno));
}

void
irepl_assert_same_file(const char *a, unsigned ib, unsigned idx, const char *b)
{
	const struct harness_user *u = &IR[ib].h->users[idx];
	char *da, *db, why[512];
	size_t la, lb;

	if (harness_read_file(a, &da, &la) < 0)
		fail_msg("read %s: %s", a, strerror(errno));
	if (harness_read_file(b, &db, &lb) < 0) {
		free(da);
		fail_msg("read %s: %s", b, strerror(errno));
	}
	if (la != lb || memcmp(da, db, la) != 0) {
		free(da);
		free(db);
		fail_msg("%s (%zu bytes) and %s (%zu bytes) differ", a, la, b, lb);
	}
	free(da);
	free(db);
	if (harness_check_owner_mode(b, u->uid, u->gid, 0600, why, sizeof(why)) != 0)
		fail_msg("%s", why);
}

struct replc *
irepl_unix(unsigned i, const char *id)
{
	struct replc *c = NULL;

	if (replc_connect_unix(IR[i].sock, &c) < 0)
		fail_msg("connect %s: %s", IR[i].sock, strerror(errno));
	if (replc_start(c, id) < 0) {
		replc_free(&c);
		fail_msg("%s: no greeting or HELLO 1 %s refused", IR[i].sock, id);
	}
	return c;
}

void
irepl_warm_up(unsigned from, unsigned to, unsigned idx)
{
	struct lmtpc_reply r;
	char guid[33];

	irepl_deliver(from, idx, ITEST_MINI_BODY, strlen(ITEST_MINI_BODY), &r, guid);
	if (r.code != 250 || guid[0] == '\0')
		fail_msg("warm-up delivery on %s: \"%s\"", IR[from].name, r.text);
	if (irepl_wait_guid(to, idx, guid, IREPL_POLL_MS, NULL, 0) < 0)
		fail_msg("warm-up message %s from %s never reached %s", guid,
			 IR[from].name, IR[to].name);
}
