/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/privsep/test_tls.c - replication TLS contexts: files checked
 * at build time with clear errors, and real handshakes over a socketpair
 * (mutual TLS, one CA as the only trust anchor, peer name checks).
 *
 * Runs in:  test executable, as any user.  A CA, a second CA and leaf
 *           certificates are made with the openssl command in a mkdtemp
 *           directory (EC P-256, SAN IP:127.0.0.1 and DNS:replica.example).
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "privsep/privsep.h"
#include "privsep/tls.h"

static const char gen_script[] =
	"set -e\n"
	"cat > ca.cnf <<'X'\n"
	"[req]\n"
	"distinguished_name = dn\n"
	"prompt = no\n"
	"x509_extensions = v3_ca\n"
	"[dn]\n"
	"CN = stowd test CA\n"
	"[v3_ca]\n"
	"basicConstraints = critical,CA:TRUE\n"
	"keyUsage = critical,keyCertSign,cRLSign\n"
	"subjectKeyIdentifier = hash\n"
	"X\n"
	"printf 'subjectAltName = IP:127.0.0.1,DNS:replica.example\\n"
	"basicConstraints = CA:FALSE\\n' > leaf.ext\n"
	"mk_ca() { openssl req -x509 -config ca.cnf -newkey ec "
	"-pkeyopt ec_paramgen_curve:P-256 -nodes -keyout $1.key -out $1.pem "
	"-days 2 -subj \"/CN=$1\"; }\n"
	"mk_leaf() { openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 "
	"-nodes -keyout $1.key -out $1.csr -subj \"/CN=$1\"\n"
	"  openssl x509 -req -in $1.csr -CA $2.pem -CAkey $2.key -CAcreateserial "
	"-out $1.pem -days 2 -extfile leaf.ext; }\n"
	"mk_ca ca; mk_ca other\n"
	"mk_leaf server ca; mk_leaf client ca; mk_leaf rogue other\n";

/* The three PEM paths of one side (owned, freed by fx_clear). */
struct tls_conf {
	char *cert, *key, *ca;
};

/* c's files as the supervisor names them in errors. */
static struct psep_tls_files
conf_files(const struct tls_conf *c)
{
	struct psep_tls_files f = {
		.cert = c->cert, .key = c->key, .ca = c->ca,
		.cert_name = "replication_tls_cert",
		.key_name = "replication_tls_key",
		.ca_name = "replication_tls_ca",
	};

	return f;
}

static void *
server_ctx(const struct tls_conf *c, char *err, size_t errsize)
{
	struct psep_tls_files f = conf_files(c);

	return psep_tls_server_ctx_new(&f, err, errsize);
}

static void *
client_ctx(const struct tls_conf *c, char *err, size_t errsize)
{
	struct psep_tls_files f = conf_files(c);

	return psep_tls_client_ctx_new(&f, err, errsize);
}

struct fx {
	char *dir;
	struct tls_conf server, client;
};

static char *
fx_path(const struct fx *fx, const char *name)
{
	char *p = NULL;

	assert_true(asprintf(&p, "%s/%s", fx->dir, name) > 0);
	return p;
}

/* Point s at <name>.pem / <key>.key / <ca>.pem in the fixture directory. */
static void
fx_set(struct fx *fx, struct tls_conf *s, const char *cert,
       const char *key, const char *ca)
{
	char buf[64];

	free(s->cert);
	free(s->key);
	free(s->ca);
	snprintf(buf, sizeof(buf), "%s.pem", cert);
	s->cert = fx_path(fx, buf);
	snprintf(buf, sizeof(buf), "%s.key", key);
	s->key = fx_path(fx, buf);
	snprintf(buf, sizeof(buf), "%s.pem", ca);
	s->ca = fx_path(fx, buf);
}

static void
fx_clear(struct tls_conf *s)
{
	free(s->cert);
	free(s->key);
	free(s->ca);
	memset(s, 0, sizeof(*s));
}

static int
setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));
	const char *base = getenv("TMPDIR");
	char *script, *cmd;
	FILE *f;

	assert_non_null(fx);
	if (base == NULL || base[0] == '\0')
		base = "/tmp";
	assert_true(asprintf(&fx->dir, "%s/stowd-tls-XXXXXX", base) > 0);
	assert_non_null(mkdtemp(fx->dir));
	script = fx_path(fx, "gen.sh");
	f = fopen(script, "w");
	assert_non_null(f);
	assert_int_equal(fputs(gen_script, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
	assert_true(asprintf(&cmd, "cd '%s' && sh ./gen.sh >gen.log 2>&1", fx->dir) > 0);
	/* The certificates are the fixture: without them nothing is tested. */
	assert_int_equal(system(cmd), 0);
	free(cmd);
	free(script);
	fx_set(fx, &fx->server, "server", "server", "ca");
	fx_set(fx, &fx->client, "client", "client", "ca");
	/* as the supervisor does before it forks (sandboxed children) */
	psep_tls_preinit();
	*state = fx;
	return 0;
}

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int
teardown(void **state)
{
	struct fx *fx = *state;

	fx_clear(&fx->server);
	fx_clear(&fx->client);
	(void)nftw(fx->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(fx->dir);
	free(fx);
	return 0;
}

/* ---- contexts ---------------------------------------------------------- */

static void
test_good_files_give_contexts(void **state)
{
	struct fx *fx = *state;
	char err[512] = "";
	void *sctx, *cctx;

	sctx = server_ctx(&fx->server, err, sizeof(err));
	assert_non_null(sctx);
	cctx = client_ctx(&fx->client, err, sizeof(err));
	assert_non_null(cctx);
	assert_int_equal(SSL_CTX_get_min_proto_version(sctx), TLS1_2_VERSION);
	assert_int_equal(SSL_CTX_get_min_proto_version(cctx), TLS1_2_VERSION);
	assert_int_equal(SSL_CTX_get_verify_mode(sctx),
			 SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT);
	assert_int_equal(SSL_CTX_get_verify_mode(cctx), SSL_VERIFY_PEER);
	assert_int_equal(sk_X509_NAME_num(SSL_CTX_get_client_CA_list(sctx)), 1);
	psep_tls_ctx_free(sctx);
	psep_tls_ctx_free(cctx);
	psep_tls_ctx_free(NULL);
}

static void
expect_err(const struct tls_conf *s, bool server, const char *part1,
	   const char *part2)
{
	char err[512] = "";
	void *ctx;

	ctx = server ? server_ctx(s, err, sizeof(err))
		     : client_ctx(s, err, sizeof(err));
	if (ctx != NULL || strstr(err, part1) == NULL ||
	    (part2 != NULL && strstr(err, part2) == NULL))
		fail_msg("expected an error with '%s' and '%s', got %s '%s'", part1,
			 part2 != NULL ? part2 : "", ctx != NULL ? "a context" : "",
			 err);
}

static void
test_missing_files_name_file_and_reason(void **state)
{
	struct fx *fx = *state;
	struct tls_conf s = { 0 };

	fx_set(fx, &s, "server", "nokey", "ca");
	expect_err(&s, true, "replication_tls_key", "nokey.key: No such file or directory");
	fx_set(fx, &s, "nocert", "server", "ca");
	expect_err(&s, false, "replication_tls_cert", "nocert.pem: No such file or directory");
	fx_set(fx, &s, "server", "server", "noca");
	expect_err(&s, true, "replication_tls_ca", "noca.pem: No such file or directory");
	free(s.ca);
	s.ca = strdup("");
	expect_err(&s, true, "replication_tls_ca is not set", NULL);
	fx_clear(&s);
}

static void
test_mismatched_or_bad_pem_is_error(void **state)
{
	struct fx *fx = *state;
	struct tls_conf s = { 0 };

	fx_set(fx, &s, "server", "client", "ca");
	expect_err(&s, true, "replication_tls_key", "mismatch");
	expect_err(&s, false, "replication_tls_key", "mismatch");
	/* A key where the certificate belongs, a CSR where the CA belongs. */
	fx_set(fx, &s, "server", "server", "ca");
	free(s.cert);
	s.cert = fx_path(fx, "server.key");
	expect_err(&s, true, "replication_tls_cert", "server.key: ");
	free(s.cert);
	s.cert = fx_path(fx, "server.pem");
	free(s.ca);
	s.ca = fx_path(fx, "gen.sh");
	expect_err(&s, false, "replication_tls_ca", "gen.sh: ");
	fx_clear(&s);
}

/* ---- handshakes -------------------------------------------------------- */

struct hs_result {
	bool server_ok, client_ok;
	long client_verify;   /* X509_V_OK or the client's verify error */
};

/* Both ends of a handshake over a non-blocking socketpair. */
struct hs_pair {
	SSL *ss, *cs;
	int sv[2];
};

/* A server end made from sctx and a client end from cctx (the contexts
 * stay the caller's); close with hs_pair_close. */
static void
hs_pair_open(struct hs_pair *p, SSL_CTX *sctx, SSL_CTX *cctx)
{
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
				    0, p->sv), 0);
	p->ss = SSL_new(sctx);
	p->cs = SSL_new(cctx);
	assert_non_null(p->ss);
	assert_non_null(p->cs);
	assert_int_equal(SSL_set_fd(p->ss, p->sv[0]), 1);
	assert_int_equal(SSL_set_fd(p->cs, p->sv[1]), 1);
	SSL_set_accept_state(p->ss);
	SSL_set_connect_state(p->cs);
}

/* One handshake step of ssl: whether that end is done, and in *ok_out
 * whether it succeeded. */
static bool
hs_step(SSL *ssl, bool *ok_out)
{
	int r = SSL_do_handshake(ssl);

	*ok_out = r == 1;
	return r == 1 || SSL_get_error(ssl, r) != SSL_ERROR_WANT_READ;
}

/* Step both ends until each one finished or failed (no waiting: every
 * step either moves or asks for more data that the other end then
 * produces); each end's success in res. */
static void
hs_pair_run(struct hs_pair *p, struct hs_result *res)
{
	bool sdone = false, cdone = false;

	for (int i = 0; i < 200 && !(sdone && cdone); i++) {
		if (!cdone)
			cdone = hs_step(p->cs, &res->client_ok);
		if (!sdone)
			sdone = hs_step(p->ss, &res->server_ok);
	}
	assert_true(sdone && cdone);
}

static void
hs_pair_close(struct hs_pair *p)
{
	ERR_clear_error();
	SSL_free(p->ss);
	SSL_free(p->cs);
	close(p->sv[0]);
	close(p->sv[1]);
}

/* A handshake between contexts made from srv and cli, the client
 * checking the server against peer_name. */
static struct hs_result
handshake(struct fx *fx, const struct tls_conf *srv,
	  const struct tls_conf *cli, const char *peer_name)
{
	struct hs_result res = { false, false, X509_V_OK };
	char err[512] = "";
	SSL_CTX *sctx, *cctx;
	struct hs_pair p;
	unsigned char byte = 0;
	int r;

	(void)fx;
	sctx = server_ctx(srv, err, sizeof(err));
	if (sctx == NULL)
		fail_msg("server ctx: %s", err);
	cctx = client_ctx(cli, err, sizeof(err));
	if (cctx == NULL)
		fail_msg("client ctx: %s", err);
	hs_pair_open(&p, sctx, cctx);
	assert_int_equal(psep_tls_set_peer_name(p.cs, peer_name), 0);
	hs_pair_run(&p, &res);
	res.client_verify = SSL_get_verify_result(p.cs);
	/* In TLS 1.3 the client finishes before the server has judged its
	 * certificate: a rejected client learns it on its first read. */
	if (res.client_ok && !res.server_ok) {
		r = SSL_read(p.cs, &byte, 1);
		assert_true(r <= 0);
		assert_int_not_equal(SSL_get_error(p.cs, r), SSL_ERROR_WANT_READ);
	}
	hs_pair_close(&p);
	psep_tls_ctx_free(sctx);
	psep_tls_ctx_free(cctx);
	return res;
}

static void
test_handshake_with_cert_from_the_ca_succeeds(void **state)
{
	struct fx *fx = *state;
	struct hs_result r;

	r = handshake(fx, &fx->server, &fx->client, "127.0.0.1");
	assert_true(r.server_ok);
	assert_true(r.client_ok);
	assert_int_equal(r.client_verify, X509_V_OK);
	r = handshake(fx, &fx->server, &fx->client, "replica.example");
	assert_true(r.server_ok && r.client_ok);
}

/* A handshake with 127.0.0.1 where one side (the server if
 * rogue_is_server) trusts the right CA but has a certificate from
 * another one. */
static struct hs_result
handshake_with_rogue(struct fx *fx, bool rogue_is_server)
{
	struct tls_conf rogue = { 0 };
	struct hs_result r;

	fx_set(fx, &rogue, "rogue", "rogue", "ca");
	if (rogue_is_server)
		r = handshake(fx, &rogue, &fx->client, "127.0.0.1");
	else
		r = handshake(fx, &fx->server, &rogue, "127.0.0.1");
	fx_clear(&rogue);
	return r;
}

static void
test_client_cert_from_other_ca_fails(void **state)
{
	struct hs_result r = handshake_with_rogue(*state, false);

	assert_false(r.server_ok);
}

static void
test_client_without_cert_fails(void **state)
{
	struct fx *fx = *state;
	struct hs_result res = { false, false, X509_V_OK };
	char err[512] = "";
	SSL_CTX *sctx, *cctx;
	struct hs_pair p;

	sctx = server_ctx(&fx->server, err, sizeof(err));
	assert_non_null(sctx);
	/* A plain client context: trusts the CA, presents nothing. */
	cctx = SSL_CTX_new(TLS_client_method());
	assert_non_null(cctx);
	assert_int_equal(SSL_CTX_load_verify_locations(cctx, fx->server.ca,
						       NULL), 1);
	hs_pair_open(&p, sctx, cctx);
	hs_pair_run(&p, &res);
	assert_false(res.server_ok);
	hs_pair_close(&p);
	SSL_CTX_free(cctx);
	psep_tls_ctx_free(sctx);
}

static void
test_server_name_mismatch_fails_on_client(void **state)
{
	struct fx *fx = *state;
	struct hs_result r;

	r = handshake(fx, &fx->server, &fx->client, "other.example");
	assert_false(r.client_ok);
	assert_int_equal(r.client_verify, X509_V_ERR_HOSTNAME_MISMATCH);
	r = handshake(fx, &fx->server, &fx->client, "127.0.0.2");
	assert_false(r.client_ok);
	assert_int_equal(r.client_verify, X509_V_ERR_IP_ADDRESS_MISMATCH);
}

static void
test_server_cert_from_other_ca_fails_on_client(void **state)
{
	struct hs_result r = handshake_with_rogue(*state, true);

	assert_false(r.client_ok);
	assert_int_not_equal(r.client_verify, X509_V_OK);
}

/* ---- TLS inside the seccomp profiles ---------------------------------- */

/* A blocking handshake on ssl, then byte c sent one way and back (the
 * server writes first).  Returns 0, or the step that failed: 4 the
 * handshake, 5 the first byte, 6 the second. */
static int
tls_exchange(SSL *ssl, bool server, char c)
{
	if ((server ? SSL_accept(ssl) : SSL_connect(ssl)) != 1)
		return 4;
	if (server ? SSL_write(ssl, &c, 1) != 1 : SSL_read(ssl, &c, 1) != 1)
		return 5;
	if (server ? SSL_read(ssl, &c, 1) != 1 : SSL_write(ssl, &c, 1) != 1)
		return 6;
	return 0;
}

/* One side of a blocking handshake plus a byte each way; the exit code
 * names the step that failed (2 and 3: setting up ssl, else as
 * tls_exchange). */
static int
tls_side(SSL_CTX *ctx, int fd, bool server, enum psep_profile profile)
{
	SSL *ssl;
	int ret;

	/* The contexts were built before fork, as the supervisor does. */
	psep_sandbox_apply(profile);
	ssl = SSL_new(ctx);
	if (ssl == NULL || SSL_set_fd(ssl, fd) != 1)
		return 2;
	if (!server && psep_tls_set_peer_name(ssl, "127.0.0.1") < 0)
		return 3;
	ret = tls_exchange(ssl, server, 's');
	SSL_free(ssl);
	return ret;
}

/* The unsandboxed side: 0 if the handshake and the byte exchange worked. */
static int
tls_peer(SSL_CTX *ctx, int fd, bool server)
{
	SSL *ssl = SSL_new(ctx);
	int ret;

	assert_non_null(ssl);
	assert_int_equal(SSL_set_fd(ssl, fd), 1);
	if (!server)
		assert_int_equal(psep_tls_set_peer_name(ssl, "127.0.0.1"), 0);
	ret = tls_exchange(ssl, server, 'p') == 0 ? 0 : -1;
	SSL_free(ssl);
	return ret;
}

/* Child: the sandboxed side; parent: the other side, unsandboxed. */
static void
sandboxed_handshake(struct fx *fx, bool child_is_server, enum psep_profile profile,
		    const char *name)
{
	char err[512] = "";
	SSL_CTX *sctx, *cctx;
	int sv[2], st, r;
	pid_t pid;

	sctx = server_ctx(&fx->server, err, sizeof(err));
	cctx = client_ctx(&fx->client, err, sizeof(err));
	assert_non_null(sctx);
	assert_non_null(cctx);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(sv[0]);
		_exit(tls_side(child_is_server ? sctx : cctx, sv[1], child_is_server,
			       profile));
	}
	close(sv[1]);
	r = tls_peer(child_is_server ? cctx : sctx, sv[0], !child_is_server);
	close(sv[0]);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0 || r != 0)
		fail_msg("%s: sandboxed side %s %d, other side %s", name,
			 WIFSIGNALED(st) ? "killed by signal" : "exited",
			 WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st),
			 r == 0 ? "ok" : "failed");
	ERR_clear_error();
	psep_tls_ctx_free(sctx);
	psep_tls_ctx_free(cctx);
}

static void
test_tls_works_inside_repld_and_repl_hook_profiles(void **state)
{
	struct fx *fx = *state;

	sandboxed_handshake(fx, true, PSEP_PROFILE_REPLD, "repld server");
	sandboxed_handshake(fx, false, PSEP_PROFILE_REPL_HOOK, "repl-hook client");
}

static struct psep_tls_files
fds_names(const struct tls_conf *c)
{
	return conf_files(c);
}

/* Build a context from the open files of c in a child under profile;
 * its exit status (0: built, 1: not built). */
static int
build_from_fds_sandboxed(const struct tls_conf *c, bool server,
			 enum psep_profile profile)
{
	struct psep_tls_files f = fds_names(c);
	struct psep_tls_fds fds;
	char err[512];
	pid_t pid;
	int st = 0;

	if (psep_tls_open(&f, &fds, err, sizeof(err)) < 0)
		fail_msg("open: %s", err);
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		void *ctx;

		signal(SIGSYS, SIG_DFL);
		if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
			_exit(3);
		psep_sandbox_apply(profile);
		ctx = server ? psep_tls_server_ctx_from_fds(&fds, &f, err, sizeof(err))
			     : psep_tls_client_ctx_from_fds(&fds, &f, err, sizeof(err));
		psep_tls_close(&fds);
		_exit(ctx != NULL ? 0 : 1);
	}
	psep_tls_close(&fds);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	return st;
}

/* What repld and repl-hook do after their drop: the context from the
 * supervisor's fds, under their own filter (no open, no new syscall). */
static void
test_context_from_fds_builds_under_the_tls_profiles(void **state)
{
	struct fx *fx = *state;
	int st;

	st = build_from_fds_sandboxed(&fx->server, true, PSEP_PROFILE_REPLD);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		fail_msg("server context in the repld profile: status %#x", (unsigned)st);
	st = build_from_fds_sandboxed(&fx->client, false, PSEP_PROFILE_REPL_HOOK);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		fail_msg("client context in the repl-hook profile: status %#x",
			 (unsigned)st);
}

/* The supervisor's check: built in a child, only the verdict comes back. */
static void
test_check_in_a_child_reports_bad_files(void **state)
{
	struct fx *fx = *state;
	struct tls_conf s = { 0 };
	struct psep_tls_files f;
	struct psep_tls_fds fds;
	char err[512] = "";

	f = fds_names(&fx->server);
	assert_int_equal(psep_tls_open(&f, &fds, err, sizeof(err)), 0);
	assert_int_equal(psep_tls_check(&fds, &f, true, true, err, sizeof(err)), 0);
	psep_tls_close(&fds);
	assert_int_equal(fds.key, -1);
	fx_set(fx, &s, "server", "client", "ca");
	f = fds_names(&s);
	assert_int_equal(psep_tls_open(&f, &fds, err, sizeof(err)), 0);
	assert_int_equal(psep_tls_check(&fds, &f, false, true, err, sizeof(err)), -1);
	if (strstr(err, "replication_tls_key") == NULL || strstr(err, "mismatch") == NULL)
		fail_msg("check of a mismatched key: '%s'", err);
	/* nothing wanted: nothing built */
	assert_int_equal(psep_tls_check(&fds, &f, false, false, err, sizeof(err)), 0);
	psep_tls_close(&fds);
	fx_clear(&s);
}

static void
test_set_peer_name_rejects_bad_input(void **state)
{
	struct fx *fx = *state;
	char err[512], longname[300];
	SSL_CTX *cctx;
	SSL *cs;

	cctx = client_ctx(&fx->client, err, sizeof(err));
	assert_non_null(cctx);
	cs = SSL_new(cctx);
	assert_non_null(cs);
	errno = 0;
	assert_int_equal(psep_tls_set_peer_name(cs, ""), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(psep_tls_set_peer_name(cs, NULL), -1);
	assert_int_equal(psep_tls_set_peer_name(NULL, "a.example"), -1);
	assert_int_equal(psep_tls_set_peer_name(cs, "[::1]"), -1);
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	assert_int_equal(psep_tls_set_peer_name(cs, longname), -1);
	assert_int_equal(psep_tls_set_peer_name(cs, "::1"), 0);
	SSL_free(cs);
	psep_tls_ctx_free(cctx);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good_files_give_contexts),
		cmocka_unit_test(test_missing_files_name_file_and_reason),
		cmocka_unit_test(test_mismatched_or_bad_pem_is_error),
		cmocka_unit_test(test_handshake_with_cert_from_the_ca_succeeds),
		cmocka_unit_test(test_client_cert_from_other_ca_fails),
		cmocka_unit_test(test_client_without_cert_fails),
		cmocka_unit_test(test_server_name_mismatch_fails_on_client),
		cmocka_unit_test(test_server_cert_from_other_ca_fails_on_client),
		cmocka_unit_test(test_set_peer_name_rejects_bad_input),
		cmocka_unit_test(test_tls_works_inside_repld_and_repl_hook_profiles),
		cmocka_unit_test(test_context_from_fds_builds_under_the_tls_profiles),
		cmocka_unit_test(test_check_in_a_child_reports_bad_files),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
