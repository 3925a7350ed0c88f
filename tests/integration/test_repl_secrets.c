/* SPDX-License-Identifier: MIT */
/*
 * tests/integration/test_repl_secrets.c - who holds the replication TLS
 * private key, and what a certificate of the group may claim:
 *  - a scan of the readable memory of every stowd process (supervisor and
 *    all its children, /proc/PID/maps and /proc/PID/mem) finds the key's
 *    private scalar in repld and repl-hook and in no other process; the
 *    PEM text of the key file is in none of them;
 *  - a peer with a certificate the CA signed is refused at HELLO when it
 *    claims a server id its certificate does not name, or one that
 *    replication_peers does not list;
 *  - a reload with a certificate and key that do not match is refused
 *    (stowd keeps running); a reload with a new valid pair replaces the
 *    key in repld and repl-hook, and replication goes on with it.
 *
 * Runs in:  the integration suite, as root (reading another process's
 *           memory needs it), real stowd instances (itest_repl.h).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "tests/integration/itest.h"
#include "tests/integration/itest_repl.h"

#define A 0
#define B 1
#define SCAN_CHUNK (1 << 20)
#define SCAN_MAX_RANGE (1ull << 30)  /* sanitizer shadow: not data */
#define SCAN_PROCS 64
#define SCAN_TIMEOUT_MS 20000

enum {
	M_SCALAR_BE = 1,        /* the private scalar, big-endian */
	M_SCALAR_LE = 2,        /* the same bytes reversed (BIGNUM limbs) */
	M_PEM = 4,              /* a base64 line of the key file */
};

/* What identifies one private key in memory. */
struct marker {
	unsigned char be[32];
	unsigned char le[32];
	char pem[65];
};

/* The markers of the EC P-256 key in the PEM file at path. */
static void
key_marker(const char *path, struct marker *m)
{
	char *text = NULL, *line;
	size_t len = 0;
	EVP_PKEY *pkey;
	BIGNUM *bn = NULL;
	FILE *f;

	memset(m, 0, sizeof(*m));
	f = fopen(path, "re");
	if (f == NULL)
		fail_msg("%s: %s", path, strerror(errno));
	pkey = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	if (pkey == NULL ||
	    EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_PRIV_KEY, &bn) != 1 ||
	    BN_bn2binpad(bn, m->be, sizeof(m->be)) != (int)sizeof(m->be))
		fail_msg("%s: not a P-256 private key", path);
	for (size_t i = 0; i < sizeof(m->be); i++)
		m->le[i] = m->be[sizeof(m->be) - 1 - i];
	BN_clear_free(bn);
	EVP_PKEY_free(pkey);
	/* the second base64 line: the first one is mostly the algorithm */
	if (harness_read_file(path, &text, &len) < 0)
		fail_msg("%s: unreadable", path);
	line = strchr(text, '\n');
	line = line != NULL ? strchr(line + 1, '\n') : NULL;
	if (line == NULL || strlen(line + 1) < 64)
		fail_msg("%s: too short for a marker", path);
	memcpy(m->pem, line + 1, 64);
	free(text);
}

/* Markers of m found in buf[len]. */
static int
find_markers(const unsigned char *buf, size_t len, const struct marker *m)
{
	int found = 0;

	if (memmem(buf, len, m->be, sizeof(m->be)) != NULL)
		found |= M_SCALAR_BE;
	if (memmem(buf, len, m->le, sizeof(m->le)) != NULL)
		found |= M_SCALAR_LE;
	if (memmem(buf, len, m->pem, strlen(m->pem)) != NULL)
		found |= M_PEM;
	return found;
}

/* Scan one range [start, end) of mem in chunks that overlap by a marker. */
static int
scan_range(int mem, uint64_t start, uint64_t end, unsigned char *buf,
	   const struct marker *m)
{
	const size_t overlap = 64;
	uint64_t at = start;
	int found = 0;

	while (at < end) {
		size_t want = end - at > SCAN_CHUNK ? SCAN_CHUNK : (size_t)(end - at);
		ssize_t n = pread(mem, buf, want, (off_t)at);

		if (n <= 0)
			break;  /* [vvar], guard pages: not readable */
		found |= find_markers(buf, (size_t)n, m);
		if ((size_t)n < want || at + (uint64_t)n >= end)
			break;
		at += (uint64_t)n - overlap;
	}
	return found;
}

/* Markers of m in the readable memory of pid; -1 if it is gone. */
static int
scan_pid(pid_t pid, const struct marker *m)
{
	char path[64], line[512], perms[8];
	unsigned long long start, end;
	unsigned char *buf = malloc(SCAN_CHUNK);
	int mem, found = 0;
	FILE *maps;

	if (buf == NULL)
		abort();
	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	maps = fopen(path, "re");
	snprintf(path, sizeof(path), "/proc/%d/mem", (int)pid);
	mem = open(path, O_RDONLY | O_CLOEXEC);
	if (maps == NULL || mem < 0) {
		if (maps != NULL)
			fclose(maps);
		free(buf);
		return -1;
	}
	while (fgets(line, sizeof(line), maps) != NULL) {
		if (sscanf(line, "%llx-%llx %7s", &start, &end, perms) != 3 ||
		    perms[0] != 'r' || end - start > SCAN_MAX_RANGE)
			continue;
		found |= scan_range(mem, start, end, buf, m);
	}
	fclose(maps);
	close(mem);
	free(buf);
	return found;
}

/* What the scan of one instance saw. */
struct scan {
	int tls_procs;          /* repld and repl-hook processes */
	int tls_with_key;       /* ... whose memory holds the parsed key */
	int others;             /* every other process, the supervisor too */
	char leak[256];         /* the first process that should not have
				 * it, or a marker where none may be */
};

static bool
is_tls_role(const char *comm)
{
	return strcmp(comm, "stowd-repld") == 0 || strcmp(comm, "stowd-hook") == 0;
}

/* Scan the supervisor of instance i and all its descendants for m. */
static void
scan_instance(unsigned i, const struct marker *m, struct scan *s)
{
	struct harness_proc p[SCAN_PROCS + 1];
	int n = harness_descendants(IR[i].h->pid, p + 1, SCAN_PROCS);

	memset(s, 0, sizeof(*s));
	assert_true(n >= 0);
	assert_int_equal(harness_proc_read(IR[i].h->pid, &p[0]), 0);
	for (int k = 0; k <= n; k++) {
		int found = scan_pid(p[k].pid, m);

		if (found < 0)
			continue;       /* gone meanwhile */
		if (k > 0 && is_tls_role(p[k].comm)) {
			s->tls_procs++;
			if (found & (M_SCALAR_BE | M_SCALAR_LE))
				s->tls_with_key++;
		} else {
			s->others++;
		}
		if (s->leak[0] == '\0' &&
		    (((k == 0 || !is_tls_role(p[k].comm)) && found != 0) ||
		     (found & M_PEM)))
			snprintf(s->leak, sizeof(s->leak),
				 "pid %d (%s) holds markers %#x of the key",
				 (int)p[k].pid, k == 0 ? "supervisor" : p[k].comm, found);
	}
}

/* True if pid has path open (one of its /proc/PID/fd links). */
static bool
file_open_in(pid_t pid, const char *path)
{
	char dir[64], link[PATH_MAX + 80], target[PATH_MAX];
	struct dirent *de;
	bool found = false;
	DIR *d;

	snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)pid);
	d = opendir(dir);
	if (d == NULL)
		return false;
	while (!found && (de = readdir(d)) != NULL) {
		ssize_t len;

		if (de->d_name[0] == '.')
			continue;
		snprintf(link, sizeof(link), "%s/%s", dir, de->d_name);
		len = readlink(link, target, sizeof(target) - 1);
		if (len <= 0)
			continue;
		target[len] = '\0';
		found = strcmp(target, path) == 0;
	}
	closedir(d);
	return found;
}

/* Processes of instance i, the supervisor aside, that have path open. */
static int
others_with_file_open(unsigned i, const char *path)
{
	struct harness_proc p[SCAN_PROCS];
	int n = harness_descendants(IR[i].h->pid, p, SCAN_PROCS), count = 0;

	assert_true(n >= 0);
	for (int k = 0; k < n; k++) {
		if (!file_open_in(p[k].pid, path))
			continue;
		fprintf(stderr, "pid %d (%s) has %s open\n", (int)p[k].pid, p[k].comm,
			path);
		count++;
	}
	return count;
}

static void
key_path(const char *id, char *out, size_t size)
{
	certs_key_path(&irepl_certs, id, out, size);
}

/* ---- the private key ---------------------------------------------------- */

static void
test_private_key_is_only_in_repld_and_repl_hook(void **state)
{
	char key[160];
	struct marker ma, mb;
	struct scan sa, sb;

	(void)state;
	/* A: repld (tcp: listener) and repl-hook (replica B), writers after
	 * a delivery; B: repld only */
	irepl_start_pair(A, B, NULL);
	key_path(IR[A].id, key, sizeof(key));
	key_marker(key, &ma);
	key_path(IR[B].id, key, sizeof(key));
	key_marker(key, &mb);
	scan_instance(A, &ma, &sa);
	scan_instance(B, &mb, &sb);
	if (sa.leak[0] != '\0')
		fail_msg("instance a: %s", sa.leak);
	if (sb.leak[0] != '\0')
		fail_msg("instance b: %s", sb.leak);
	/* the scan finds the key where it must be: it works */
	assert_int_equal(sa.tls_procs, 2);
	assert_int_equal(sa.tls_with_key, 2);
	assert_int_equal(sb.tls_procs, 1);
	assert_int_equal(sb.tls_with_key, 1);
	/* supervisor, lmtpd processes, writers */
	assert_true(sa.others >= 4);
	assert_true(sb.others >= 3);
	/* the key file is open in the supervisor only: repld and repl-hook
	 * closed it once their contexts were built, no other child has it */
	key_path(IR[A].id, key, sizeof(key));
	assert_true(file_open_in(IR[A].h->pid, key));
	assert_int_equal(others_with_file_open(A, key), 0);
	key_path(IR[B].id, key, sizeof(key));
	assert_int_equal(others_with_file_open(B, key), 0);
	irepl_pass();
}

/* ---- what a certificate may claim --------------------------------------- */

/* TLS with id's certificate, greeting, HELLO as claim: the reply line. */
static void
hello_as(const char *cert_id, const char *claim, char *line, size_t size)
{
	char cert[160], key[160];
	struct replc *c = NULL;

	certs_cert_path(&irepl_certs, cert_id, cert, sizeof(cert));
	key_path(cert_id, key, sizeof(key));
	if (replc_connect_tls(IR[A].port, cert, key, irepl_certs.ca, &c) < 0)
		fail_msg("TLS with %s's certificate failed", cert_id);
	if (replc_greeting(c, line, size, NULL) < 0)
		fail_msg("no greeting for %s: \"%s\"", cert_id, line);
	assert_int_equal(replc_sendf(c, "h0 HELLO 1 %s\r\n", claim), 0);
	if (replc_line(c, line, size) < 0)
		fail_msg("%s as %s: no HELLO reply: %s", cert_id, claim, strerror(errno));
	if (strncmp(line, "h0 OK", 5) != 0 &&
	    replc_wait_closed(c, 5000) != 0)
		fail_msg("%s as %s: refused but not closed", cert_id, claim);
	replc_free(&c);
}

static void
test_hello_claims_only_a_listed_id_the_certificate_names(void **state)
{
	struct irepl_conf conf = { .peers = "b.test" };
	char line[REPLC_LINE_MAX];

	(void)state;
	irepl_make_start(A, &conf);
	/* a certificate of the group (c.test) speaking for b.test */
	hello_as("c.test", "b.test", line, sizeof(line));
	if (strncmp(line, "h0 NO [AUTHFAILED]", 18) != 0)
		fail_msg("c.test claiming b.test: \"%s\"", line);
	/* its own name, but not in replication_peers */
	hello_as("c.test", "c.test", line, sizeof(line));
	if (strncmp(line, "h0 NO [AUTHFAILED]", 18) != 0)
		fail_msg("c.test claiming c.test: \"%s\"", line);
	/* a listed peer with its own certificate */
	hello_as("b.test", "b.test", line, sizeof(line));
	if (strncmp(line, "h0 OK", 5) != 0)
		fail_msg("b.test claiming b.test: \"%s\"", line);
	assert_true(irepl_log_count(A, "refused: certificate does not name") >= 1);
	assert_true(irepl_log_count(A, "refused: server id not in replication_peers") >= 1);
	assert_true(harness_alive(IR[A].h));
	irepl_pass();
}

/* ---- replacing the key by a reload -------------------------------------- */

/* Bounded poll until A's repld and repl-hook hold m and nothing of A
 * holds old. */
static void
wait_key_replaced(const struct marker *m, const struct marker *old)
{
	int64_t deadline = harness_mono_ms() + SCAN_TIMEOUT_MS;
	struct scan s, so;

	for (;;) {
		scan_instance(A, m, &s);
		scan_instance(A, old, &so);
		if (s.leak[0] == '\0' && s.tls_procs == 2 && s.tls_with_key == 2 &&
		    so.tls_with_key == 0 && so.leak[0] == '\0')
			return;
		if (harness_mono_ms() >= deadline)
			fail_msg("after the reload: %d/%d TLS processes with the new key "
				 "(%s), %d with the old one (%s)", s.tls_with_key,
				 s.tls_procs, s.leak, so.tls_with_key, so.leak);
		harness_sleep_ms(100);
	}
}

static void
test_reload_replaces_certificate_and_key(void **state)
{
	char key[160], cert[160], saved[192], other[160];
	static const char body[] = "Subject: after the new key\r\n\r\nsigned anew\r\n";
	struct marker old, now;
	struct lmtpc_reply r;
	char guid[33];

	(void)state;
	irepl_start_pair(A, B, NULL);
	key_path(IR[A].id, key, sizeof(key));
	certs_cert_path(&irepl_certs, IR[A].id, cert, sizeof(cert));
	key_marker(key, &old);
	/* a key that does not match the certificate: refused, A runs on */
	snprintf(saved, sizeof(saved), "%s.saved", key);
	key_path("c.test", other, sizeof(other));
	assert_int_equal(rename(key, saved), 0);
	assert_int_equal(link(other, key), 0);
	assert_int_equal(harness_reload(IR[A].h), 0);
	assert_true(irepl_log_count(A, "reload refused") >= 1);
	assert_int_equal(unlink(key), 0);
	assert_int_equal(rename(saved, key), 0);
	assert_true(harness_alive(IR[A].h));
	/* a new pair for a.test: in use without a restart */
	assert_int_equal(certs_renew(&irepl_certs, IR[A].id, 77), 0);
	key_marker(key, &now);
	assert_true(memcmp(now.be, old.be, sizeof(old.be)) != 0);
	assert_int_equal(harness_reload(IR[A].h), 0);
	wait_key_replaced(&now, &old);
	/* the new client certificate gets through to B */
	irepl_deliver(A, 0, body, strlen(body), &r, guid);
	assert_int_equal(r.code, 250);
	assert_int_equal(irepl_wait_guid(B, 0, guid, IREPL_POLL_MS, NULL, 0), 0);
	irepl_pass();
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_private_key_is_only_in_repld_and_repl_hook,
						irepl_setup, irepl_teardown),
		cmocka_unit_test_setup_teardown(test_hello_claims_only_a_listed_id_the_certificate_names,
						irepl_setup, irepl_teardown),
		/* last: it replaces a.test's certificate and key */
		cmocka_unit_test_setup_teardown(test_reload_replaces_certificate_and_key,
						irepl_setup, irepl_teardown),
	};

	harness_require_root();
	return cmocka_run_group_tests(tests, irepl_group_setup, irepl_group_teardown);
}
