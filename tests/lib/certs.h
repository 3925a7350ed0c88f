/* SPDX-License-Identifier: MIT */
/*
 * tests/lib/certs.h - test certificates for the replication tests, made
 * with the openssl command in a temporary directory: one CA for the
 * replication group, one certificate per server id (used as both server
 * and client certificate: CN = the id, subjectAltName IP:127.0.0.1 and
 * DNS:localhost, extendedKeyUsage serverAuth, clientAuth), and a rogue CA
 * with a certificate of its own that the group must refuse.
 *
 * Runs in:  integration test programs (once per program, in the group
 *           setup: making keys is the slow part).
 * Files:    <dir>/ca.pem, <dir>/<id>.pem, <dir>/<id>.key (mode 0600),
 *           <dir>/rogue-ca.pem, <dir>/rogue.pem, <dir>/rogue.key.
 * Errors:   0 / -1 with one line on stderr saying which step failed.
 */
#ifndef STOWD_TESTS_CERTS_H
#define STOWD_TESTS_CERTS_H

#include <stddef.h>

#define CERTS_MAX_IDS 8

struct certs {
	char dir[64];              /* /tmp/stowd-certs.XXXXXX */
	char ca[128];              /* the group's CA certificate */
	char rogue_cert[128];      /* signed by the rogue CA */
	char rogue_key[128];
};

/*
 * Make the CA, one certificate per ids[0..n) and the rogue pair.
 * Returns 0 with c filled, or -1 (the directory is removed).
 */
int certs_make(struct certs *c, const char *const *ids, size_t n);

/*
 * Replace id's certificate and key with a new pair (a new key, signed by
 * the same CA, serial number serial), written over the same files.
 * 0 or -1.
 */
int certs_renew(const struct certs *c, const char *id, unsigned serial);

/* Paths of id's certificate and key ("<dir>/<id>.pem", ".key"). */
void certs_cert_path(const struct certs *c, const char *id, char *out, size_t size);
void certs_key_path(const struct certs *c, const char *id, char *out, size_t size);

/* Remove the directory (kept with STOWD_KEEP_TREE). */
void certs_remove(struct certs *c);

#endif
