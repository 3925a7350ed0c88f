/* SPDX-License-Identifier: MIT */
/*
 * tests/lib/certs.c - test CA and certificates made with the openssl
 * command (see certs.h).
 *
 * Runs in:  integration test programs, once per program.
 * Trust:    the keys are throw-away test keys in a mode 0700 directory;
 *           key files are set to mode 0600.
 */
#include <errno.h>
#include <ftw.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/lib/certs.h"
#include "tests/lib/harness.h"

#define CERTS_PREFIX "/tmp/stowd-certs."
#define OPENSSL_TIMEOUT_MS 30000
#define OPENSSL_BIN "/usr/bin/openssl"

static int
run_openssl(const char *const argv[], const char *what)
{
	char *out = NULL;
	int st = 0;

	if (harness_run_capture(argv, OPENSSL_TIMEOUT_MS, &st, &out) < 0 ||
	    !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		fprintf(stderr, "certs: openssl %s failed (status 0x%x): %s\n", what,
			(unsigned)st, out ? out : "");
		free(out);
		return -1;
	}
	free(out);
	return 0;
}

/* A self-signed CA: <dir>/<name>.pem, <dir>/<name>.key. */
static int
make_ca(const struct certs *c, const char *name, const char *cn)
{
	char key[160], crt[160], subj[128];
	const char *argv[] = {
		OPENSSL_BIN, "req", "-x509", "-newkey", "ec", "-pkeyopt",
		"ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", crt,
		"-days", "3", "-subj", subj,
		"-addext", "basicConstraints=critical,CA:TRUE",
		"-addext", "keyUsage=critical,keyCertSign,cRLSign", NULL
	};

	snprintf(key, sizeof(key), "%s/%s.key", c->dir, name);
	snprintf(crt, sizeof(crt), "%s/%s.pem", c->dir, name);
	snprintf(subj, sizeof(subj), "/CN=%s", cn);
	if (run_openssl(argv, "req -x509") < 0)
		return -1;
	return chmod(key, 0600);
}

/* <dir>/<name>.pem signed by <dir>/<ca>.pem, key <dir>/<name>.key. */
static int
make_leaf(const struct certs *c, const char *ca, const char *name, unsigned serial)
{
	char key[160], csr[160], crt[160], subj[128], cacrt[160], cakey[160];
	char ext[160], ser[16];
	const char *req[] = {
		OPENSSL_BIN, "req", "-new", "-newkey", "ec", "-pkeyopt",
		"ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", csr,
		"-subj", subj, NULL
	};
	const char *sign[] = {
		OPENSSL_BIN, "x509", "-req", "-in", csr, "-CA", cacrt, "-CAkey", cakey,
		"-set_serial", ser, "-days", "3", "-out", crt, "-extfile", ext, NULL
	};
	static const char exts[] =
		"basicConstraints = CA:FALSE\n"
		"keyUsage = critical, digitalSignature, keyEncipherment\n"
		"extendedKeyUsage = serverAuth, clientAuth\n"
		"subjectAltName = IP:127.0.0.1, DNS:localhost\n";

	snprintf(key, sizeof(key), "%s/%s.key", c->dir, name);
	snprintf(csr, sizeof(csr), "%s/%s.csr", c->dir, name);
	snprintf(crt, sizeof(crt), "%s/%s.pem", c->dir, name);
	snprintf(cacrt, sizeof(cacrt), "%s/%s.pem", c->dir, ca);
	snprintf(cakey, sizeof(cakey), "%s/%s.key", c->dir, ca);
	snprintf(ext, sizeof(ext), "%s/leaf.ext", c->dir);
	snprintf(subj, sizeof(subj), "/CN=%s", name);
	snprintf(ser, sizeof(ser), "%u", serial);
	if (harness_write_file(ext, exts, strlen(exts), 0600) < 0 ||
	    run_openssl(req, "req -new") < 0 || run_openssl(sign, "x509 -req") < 0)
		return -1;
	unlink(csr);
	return chmod(key, 0600);
}

int
certs_make(struct certs *c, const char *const *ids, size_t n)
{
	size_t i;

	memset(c, 0, sizeof(*c));
	snprintf(c->dir, sizeof(c->dir), CERTS_PREFIX "XXXXXX");
	if (mkdtemp(c->dir) == NULL) {
		fprintf(stderr, "certs: mkdtemp: %s\n", strerror(errno));
		return -1;
	}
	snprintf(c->ca, sizeof(c->ca), "%s/ca.pem", c->dir);
	snprintf(c->rogue_cert, sizeof(c->rogue_cert), "%s/rogue.pem", c->dir);
	snprintf(c->rogue_key, sizeof(c->rogue_key), "%s/rogue.key", c->dir);
	if (make_ca(c, "ca", "stowd test replication CA") < 0 ||
	    make_ca(c, "rogue-ca", "stowd test rogue CA") < 0 ||
	    make_leaf(c, "rogue-ca", "rogue", 1000) < 0)
		goto fail;
	for (i = 0; i < n && i < CERTS_MAX_IDS; i++)
		if (make_leaf(c, "ca", ids[i], 1 + (unsigned)i) < 0)
			goto fail;
	return 0;
fail:
	certs_remove(c);
	return -1;
}

int
certs_renew(const struct certs *c, const char *id, unsigned serial)
{
	return make_leaf(c, "ca", id, serial);
}

void
certs_cert_path(const struct certs *c, const char *id, char *out, size_t size)
{
	snprintf(out, size, "%s/%s.pem", c->dir, id);
}

void
certs_key_path(const struct certs *c, const char *id, char *out, size_t size)
{
	snprintf(out, size, "%s/%s.key", c->dir, id);
}

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	(void)remove(path);
	return 0;
}

void
certs_remove(struct certs *c)
{
	if (c->dir[0] == '\0')
		return;
	if (getenv("STOWD_KEEP_TREE") != NULL)
		fprintf(stderr, "certs: kept %s\n", c->dir);
	else if (strncmp(c->dir, CERTS_PREFIX, strlen(CERTS_PREFIX)) == 0)
		nftw(c->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	c->dir[0] = '\0';
}
