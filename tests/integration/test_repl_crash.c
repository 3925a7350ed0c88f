/* SPDX-License-Identifier: MIT */
/*
 * tests/integration/test_repl_crash.c - crash consistency of a replicated
 * pair (replication_sync_acks = 1, replication_on_timeout = tempfail):
 *
 * - a writer that dies right after its early stamp (test hook: SIGPWR
 *   makes the writer of the next LMTP save exit once its WRITE_STAMP is
 *   out, before its fsyncs) costs a 451, and within seconds neither server
 *   holds the GUID and both indexes have its tombstone; the MTA's retry
 *   leaves exactly one copy on each;
 * - the whole sender crashes while a writer holds a stamped save in tmp/
 *   (test hook SIGURG: the writer stalls after its stamp); after the
 *   restart the save is an orphan, tombstoned on both servers within
 *   seconds;
 * - the kill storm: deliveries to a (two LMTP clients) on a pair a -> b
 *   while random stowd processes of both (writers, front-ends,
 *   repl-hook, repld, now and then a supervisor, which the test starts
 *   again) are SIGKILLed every 0.2-0.8 s (STOWD_KILL_DEBUG=1 lists
 *   them); then every message answered 250 is whole on both servers
 *   exactly once, no file is partial, no message is there twice, and the
 *   two servers hold the same messages within a bounded time.  The seed
 *   is fixed (STOWD_KILL_SEED overrides it) and printed with the figures.
 *   Skipped in sanitizer builds (STOWD_SANITIZER): too slow there for the
 *   time bound.
 *
 * Runs in:  the integration suite, as root, real stowd instances.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "storage/storage.h"
#include "tests/integration/itest.h"
#include "tests/integration/itest_repl.h"

enum { A = 0, B = 1 };

#define CONVERGE_MS 60000        /* longest wait for the pair to agree */
#define UNDO_MS 15000            /* longest wait for a dead save's undo */

static const struct irepl_conf tempfail_conf = {
	.sync_acks = 1,
	.sync_timeout = "3s",
	.on_timeout = "tempfail",
};

#ifdef STOWD_TEST_HOOKS
/* ---- index records ----------------------------------------------------- */

struct recs {
	const char *guid;            /* count records of this GUID only, or NULL */
	int saves, expunges;
	char last_expunged[33];
};

static int
recs_cb(const struct store_rec *rec, void *arg)
{
	struct recs *r = arg;

	if (r->guid != NULL && strcmp(rec->guid, r->guid) != 0)
		return 0;
	if (rec->op == STORE_REC_SAVE)
		r->saves++;
	if (rec->op == STORE_REC_EXPUNGE) {
		r->expunges++;
		memcpy(r->last_expunged, rec->guid, 33);
	}
	return 0;
}

/* The records of user idx's INBOX index on instance i (of guid, or all). */
static void
read_recs(unsigned i, unsigned idx, const char *guid, struct recs *r)
{
	struct store_index_state st;
	int fd = open(IR[i].h->users[idx].maildir, O_RDONLY | O_DIRECTORY);

	memset(r, 0, sizeof(*r));
	r->guid = guid;
	assert_true(fd >= 0);
	assert_int_equal(store_index_read(fd, recs_cb, r, &st), 0);
	close(fd);
}

/* Files in tmp/ of user idx on instance i whose name holds guid. */
static int
tmp_count(unsigned i, unsigned idx, const char *guid)
{
	char **names;
	int n = harness_maildir_list(IR[i].h, idx, "tmp", &names), k = 0;

	for (int j = 0; j < n; j++)
		k += strstr(names[j], guid) != NULL;
	harness_names_free(&names, n);
	return k;
}

/* Files in new/ and cur/ of user idx on instance i holding marker. */
static int
marker_count(unsigned i, unsigned idx, const char *marker)
{
	static const char *const subs[2] = { "new", "cur" };
	int k = 0;

	for (int s = 0; s < 2; s++) {
		char **names, path[700], *data;
		size_t dlen;
		int n = harness_maildir_list(IR[i].h, idx, subs[s], &names);

		for (int j = 0; j < n; j++) {
			snprintf(path, sizeof(path), "%s/%s/%s",
				 IR[i].h->users[idx].maildir, subs[s], names[j]);
			if (harness_read_file(path, &data, &dlen) < 0)
				continue;
			k += memmem(data, dlen, marker, strlen(marker)) != NULL;
			free(data);
		}
		harness_names_free(&names, n);
	}
	return k;
}

/* Bounded poll: instance i's index holds an EXPUNGE of guid. */
static int
wait_tombstone(unsigned i, unsigned idx, const char *guid, int timeout_ms)
{
	int64_t end = harness_mono_ms() + timeout_ms;
	struct recs r;

	for (;;) {
		read_recs(i, idx, guid, &r);
		if (r.expunges > 0)
			return 0;
		if (harness_mono_ms() > end)
			return -1;
		harness_sleep_ms(50);
	}
}

/*
 * The writer of a replicated save dies right after its early stamp: the
 * event is out (the replica may have saved it), the file is in tmp/ on a.
 * stowd answers 451 and tombstones the GUID on a, whose EXPUNGE reaches b:
 * within seconds no copy is left anywhere and both indexes hold the
 * tombstone.  The MTA's retry then leaves exactly one copy on each.
 */
static void
test_writer_killed_after_its_stamp_is_expunged_everywhere(void **state)
{
	struct lmtpc_reply r;
	struct recs before, after;
	static const char marker[] = "Subject: dead-after-stamp-4242";
	char guid[33], lost[33];
	size_t len, blen;
	char *b = itest_body(5000, 4242, &blen);
	char *body = malloc(sizeof(marker) + 2 + blen);

	assert_non_null(body);
	len = (size_t)sprintf(body, "%s\r\n", marker);
	memcpy(body + len, b, blen + 1);
	len += blen;
	free(b);

	(void)state;
	irepl_start_pair(A, B, &tempfail_conf);
	/* a's first full sync (which reconciles its mailboxes) is over: what
	 * undoes the dead save below is not a sync that happens to run */
	if (irepl_wait_log(A, "full sync done", 0, IREPL_POLL_MS) < 0)
		fail_msg("a's first full sync with b did not end");
	read_recs(A, 0, NULL, &before);
	if (harness_test_hook(IR[A].h, SIGPWR) < 0)
		fail_msg("a did not take the test hook");
	irepl_deliver(A, 0, body, len, &r, guid);
	if (r.code != 451)
		fail_msg("expected 451 from a writer dead after its stamp, got %d \"%s\"",
			 r.code, r.text);
	/* the dead save's GUID: the one SAVE a has more than before */
	read_recs(A, 0, NULL, &after);
	assert_int_equal(after.saves, before.saves + 1);
	if (after.expunges != before.expunges + 1)
		fail_msg("a did not tombstone the save of its dead writer "
			 "(EXPUNGE records %d -> %d)", before.expunges, after.expunges);
	memcpy(lost, after.last_expunged, sizeof(lost));
	if (wait_tombstone(B, 0, lost, UNDO_MS) < 0)
		fail_msg("b has no tombstone for guid=%s after %d ms", lost, UNDO_MS);
	assert_int_equal(irepl_find(A, 0, lost, NULL, 0), 0);
	assert_int_equal(irepl_find(B, 0, lost, NULL, 0), 0);
	assert_int_equal(tmp_count(A, 0, lost), 0);
	assert_int_equal(marker_count(A, 0, marker), 0);
	assert_int_equal(marker_count(B, 0, marker), 0);

	/* the MTA tries again: one copy on each server */
	irepl_deliver(A, 0, body, len, &r, guid);
	if (r.code != 250)
		fail_msg("the retry was answered %d \"%s\"", r.code, r.text);
	if (irepl_wait_guid(B, 0, guid, IREPL_POLL_MS, NULL, 0) < 0)
		fail_msg("the retried message guid=%s is not on b exactly once", guid);
	assert_int_equal(marker_count(A, 0, marker), 1);
	assert_int_equal(marker_count(B, 0, marker), 1);
	free(body);
	irepl_pass();
}

/*
 * The whole of a dies (supervisor and every child) while a writer holds a
 * stamped save in tmp/ (test hook: SIGURG makes the writer of the next
 * LMTP save stall after its WRITE_STAMP); b has stored the message.  After
 * a's restart its first full sync reconciles the mailbox: nobody holds the
 * tmp file's lock any more, so the save is an orphan, tombstoned on a (not
 * left "in flight" for an hour, then lost and fetched back), and the sync
 * expunges it on b.  Within seconds no copy is left and both indexes hold
 * the tombstone.
 */
static void
test_orphan_of_a_crashed_sender_is_expunged_after_restart(void **state)
{
	static const char marker[] = "Subject: orphan-of-a-crash-777";
	struct lmtpc_reply r;
	struct lmtpc *c;
	struct recs before, after;
	char guid[33];
	size_t len, blen;
	char *b = itest_body(7000, 777, &blen);
	char *body = malloc(sizeof(marker) + 2 + blen);
	int64_t end;

	(void)state;
	assert_non_null(body);
	len = (size_t)sprintf(body, "%s\r\n", marker);
	memcpy(body + len, b, blen + 1);
	len += blen;
	free(b);
	irepl_start_pair(A, B, &tempfail_conf);
	if (irepl_wait_log(A, "full sync done", 0, IREPL_POLL_MS) < 0)
		fail_msg("a's first full sync with b did not end");
	read_recs(A, 0, NULL, &before);
	if (harness_test_hook(IR[A].h, SIGURG) < 0)
		fail_msg("a did not take the test hook");
	/* the delivery: no reply will come */
	c = itest_connect(IR[A].h, HARNESS_UNIX);
	itest_envelope(c);
	itest_cmd(c, 250, NULL, "RCPT TO:<%s>", IR[A].h->users[0].addr);
	itest_cmd(c, 354, NULL, "DATA");
	{
		size_t slen;
		char *stuffed = lmtpc_dot_stuff(body, len, &slen);

		assert_int_equal(lmtpc_send(c, stuffed, slen), 0);
		free(stuffed);
	}
	/* the stamped SAVE is in a's index, and b stores the message */
	end = harness_mono_ms() + IREPL_POLL_MS;
	do {
		if (harness_mono_ms() > end)
			fail_msg("a's index did not get the SAVE");
		harness_sleep_ms(20);
		read_recs(A, 0, NULL, &after);
	} while (after.saves == before.saves);
	end = harness_mono_ms() + IREPL_POLL_MS;
	while (marker_count(B, 0, marker) != 1) {
		if (harness_mono_ms() > end)
			fail_msg("b did not store the stamped save");
		harness_sleep_ms(20);
	}
	/* a crashes as a whole: the supervisor first, then what is left */
	kill(IR[A].h->pid, SIGKILL);
	assert_int_equal(harness_wait_exit(IR[A].h, 10000, NULL), 0);
	harness_kill_group(IR[A].h);
	if (lmtpc_read_reply(c, &r) == 0 && r.code == 250)
		fail_msg("a crashed sender answered 250");
	lmtpc_free(&c);
	guid[0] = '\0';
	{
		/* the GUID: the one file in a's tmp/ */
		char **names;
		int n = harness_maildir_list(IR[A].h, 0, "tmp", &names);
		const char *g;

		for (int j = 0; j < n; j++)
			if ((g = strchr(names[j], 'G')) != NULL && strlen(g) > 32) {
				memcpy(guid, g + 1, 32);
				guid[32] = '\0';
			}
		harness_names_free(&names, n);
	}
	if (guid[0] == '\0')
		fail_msg("the stalled save is not in a's tmp/");
	assert_int_equal(irepl_start(A), 0);
	if (wait_tombstone(A, 0, guid, UNDO_MS) < 0)
		fail_msg("a did not tombstone the orphan guid=%s after its restart", guid);
	if (wait_tombstone(B, 0, guid, UNDO_MS) < 0)
		fail_msg("b has no tombstone for the orphan guid=%s", guid);
	end = harness_mono_ms() + UNDO_MS;
	while (marker_count(B, 0, marker) != 0) {
		if (harness_mono_ms() > end)
			fail_msg("b still holds the orphan guid=%s", guid);
		harness_sleep_ms(50);
	}
	assert_int_equal(marker_count(A, 0, marker), 0);
	assert_int_equal(tmp_count(A, 0, guid), 0);
	free(body);
	irepl_pass();
}
#endif

/* ---- the kill storm ---------------------------------------------------- */

#define STORM_MS 20000           /* deliveries under kills */
#define STORM_MAX_MSGS 8000
#define STORM_USERS 2
#define STORM_SUP_KILLS 2        /* supervisor kills at most, per run */

#define STORM_CLIENTS 2          /* concurrent LMTP clients */

struct storm {
	pthread_mutex_t lock;        /* the harness structs of a and b, and
				      * everything below */
	unsigned seed;
	volatile bool stop;
	int sup_kill;                /* -1, or the instance whose supervisor a
				      * delivery thread must kill */
	unsigned kills, sup_kills, restarts;
	int64_t t0;
	unsigned next_msg;           /* the next message number to send */
	unsigned n250, n4xx, nlost;
	unsigned char answered[STORM_MAX_MSGS];
	int bad_code;                /* a 5xx seen (bad_msg), or 0 */
	unsigned bad_msg;
	bool start_failed;           /* an instance did not start again */
};

static struct storm S = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* SIGKILL one random child process of instance i; 1 if one was killed. */
static int
kill_random_child(unsigned i, unsigned *seedp)
{
	struct harness_proc p[HARNESS_MAX_PROCS];
	int n;

	if (!harness_alive(IR[i].h))
		return 0;
	n = harness_find_role(IR[i].h, HARNESS_ROLE_ANY, p, HARNESS_MAX_PROCS);
	if (n <= 0)
		return 0;
	n = (int)(rand_r(seedp) % (unsigned)n);
	if (p[n].pid == IR[i].h->pid)
		return 0;
	if (getenv("STOWD_KILL_DEBUG") != NULL)
		fprintf(stderr, "kill %s pid=%d comm=%s\n", IR[i].name, (int)p[n].pid,
			p[n].comm);
	return kill(p[n].pid, SIGKILL) == 0;
}

static void *
killer(void *arg)
{
	unsigned seed = S.seed;

	(void)arg;
	while (!S.stop) {
		unsigned r;

		harness_sleep_ms(200 + (long)(rand_r(&seed) % 601));
		if (S.stop)
			break;
		r = rand_r(&seed) % 20;
		pthread_mutex_lock(&S.lock);
		if (r == 0 && S.sup_kills < STORM_SUP_KILLS && S.sup_kill < 0) {
			/* done by the delivery loop, which restarts it */
			S.sup_kill = (int)(rand_r(&seed) % 2);
			S.sup_kills++;
		} else {
			/* a's processes twice as often as b's */
			S.kills += (unsigned)kill_random_child(r % 3 == 0 ? B : A, &seed);
		}
		pthread_mutex_unlock(&S.lock);
	}
	return NULL;
}

/* Start instance i again if its supervisor is gone (killed); with
 * S.lock held. */
static void
revive_locked(unsigned i)
{
	if (S.start_failed || harness_alive(IR[i].h))
		return;
	harness_kill_group(IR[i].h);
	if (harness_start(IR[i].h) < 0)
		S.start_failed = true;
	else
		S.restarts++;
}

static void
revive(unsigned i)
{
	pthread_mutex_lock(&S.lock);
	revive_locked(i);
	pthread_mutex_unlock(&S.lock);
}

static void
storm_sup_kill(void)
{
	int i;

	pthread_mutex_lock(&S.lock);
	i = S.sup_kill;
	S.sup_kill = -1;
	if (i >= 0 && harness_alive(IR[i].h)) {
		kill(IR[i].h->pid, SIGKILL);
		(void)harness_wait_exit(IR[i].h, 10000, NULL);
		S.kills++;
	}
	if (i >= 0)
		revive_locked((unsigned)i);
	pthread_mutex_unlock(&S.lock);
}

/* Message n: a header naming it, then a body of 2000..12000 bytes. */
static char *
storm_body(unsigned n, size_t *len)
{
	char head[64];
	size_t blen, hlen = (size_t)snprintf(head, sizeof(head),
					     "Subject: storm-%05u\r\n", n);
	char *b = itest_body(2000 + (n * 7919u) % 10000, n + 1, &blen);
	char *out = malloc(hlen + blen + 1);

	assert_non_null(out);
	memcpy(out, head, hlen);
	memcpy(out + hlen, b, blen + 1);
	free(b);
	*len = hlen + blen;
	return out;
}

/* One delivery of message n to user idx of a; its final reply code, 0 if
 * the connection failed. */
static int
storm_deliver(unsigned n, unsigned idx)
{
	struct lmtpc_reply r, dr;
	struct lmtpc *c = NULL;
	size_t len;
	char *body = storm_body(n, &len);
	int code = 0;

	if (lmtpc_connect(IR[A].h->listen[HARNESS_UNIX], 5000, &c) < 0)
		goto out;
	lmtpc_set_timeout(c, 15000);
	if (lmtpc_greeting(c, &r) < 0 || r.code != 220 ||
	    lmtpc_lhlo(c, "storm", &r) < 0 || r.code != 250 ||
	    lmtpc_mail(c, "sender@example.net", &r) < 0 || r.code != 250 ||
	    lmtpc_rcpt(c, IR[A].h->users[idx].addr, &r) < 0 || r.code != 250)
		goto out;
	if (lmtpc_data(c, body, len, &dr, &r, 1) == 0 && dr.code == 354)
		code = r.code;
out:
	lmtpc_free(&c);
	free(body);
	return code;
}

/* What one server holds of the storm for user idx: copies of each
 * message (by its Subject), with a check that each file is whole. */
struct holding {
	unsigned char copies[STORM_MAX_MSGS];
	char guids[2 * STORM_MAX_MSGS][33];
	int nguids;
	int bad;                     /* partial or foreign files */
	char why[1300];
};

static void
hold_scan_dir(unsigned i, unsigned idx, const char *sub, struct holding *h)
{
	char **names, path[700], why[512], *data;
	size_t dlen;
	int n = harness_maildir_list(IR[i].h, idx, sub, &names);

	for (int j = 0; j < n; j++) {
		unsigned m;
		const char *s, *g;
		char *body;
		size_t blen;

		snprintf(path, sizeof(path), "%s/%s/%s", IR[i].h->users[idx].maildir, sub,
			 names[j]);
		if (harness_read_file(path, &data, &dlen) < 0)
			continue;   /* renamed or expunged meanwhile */
		g = strstr(names[j], "G");
		s = strstr(data, "Subject: storm-");
		if (s != NULL && sscanf(s, "Subject: storm-%05u", &m) == 1 &&
		    m < STORM_MAX_MSGS) {
			body = storm_body(m, &blen);
			if (harness_check_stored(data, dlen, IR[i].h->users[idx].addr, body,
						 blen, why, sizeof(why)) != 0) {
				h->bad++;
				snprintf(h->why, sizeof(h->why), "%s: %s", path, why);
			} else if (h->copies[m] < 255) {
				h->copies[m]++;
			}
			free(body);
		} else if (strstr(data, "storm-") != NULL) {
			h->bad++;
			snprintf(h->why, sizeof(h->why), "%s: unreadable header", path);
		}
		if (g != NULL && strlen(g) > 32 && h->nguids < 2 * STORM_MAX_MSGS) {
			memcpy(h->guids[h->nguids], g + 1, 32);
			h->guids[h->nguids++][32] = '\0';
		}
		free(data);
	}
	harness_names_free(&names, n);
}

static int
guid_cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

static void
hold_scan(unsigned i, unsigned idx, struct holding *h)
{
	memset(h, 0, sizeof(*h));
	hold_scan_dir(i, idx, "new", h);
	hold_scan_dir(i, idx, "cur", h);
	qsort(h->guids, (size_t)h->nguids, sizeof(h->guids[0]), guid_cmp);
}

static bool
hold_same(const struct holding *a, const struct holding *b)
{
	return a->nguids == b->nguids &&
	       memcmp(a->guids, b->guids, (size_t)a->nguids * sizeof(a->guids[0])) == 0;
}

/* One LMTP client of the storm: messages S.next_msg++ until the storm
 * ends; the outcomes into S. */
static void *
deliverer(void *arg)
{
	(void)arg;
	for (;;) {
		unsigned n;
		int code;

		pthread_mutex_lock(&S.lock);
		n = S.next_msg;
		if (S.stop || S.start_failed || n >= STORM_MAX_MSGS ||
		    harness_mono_ms() - S.t0 >= STORM_MS) {
			pthread_mutex_unlock(&S.lock);
			return NULL;
		}
		S.next_msg++;
		pthread_mutex_unlock(&S.lock);
		storm_sup_kill();
		code = storm_deliver(n, n % STORM_USERS);
		pthread_mutex_lock(&S.lock);
		S.answered[n] = code == 250;
		S.n250 += code == 250;
		S.n4xx += code / 100 == 4;
		S.nlost += code == 0;
		if (code / 100 == 5 && S.bad_code == 0) {
			S.bad_code = code;
			S.bad_msg = n;
		}
		pthread_mutex_unlock(&S.lock);
		if (code == 0) {
			revive(A);
			revive(B);
		}
	}
}

static void
test_kill_storm_pair_converges(void **state)
{
	static struct holding ha[STORM_USERS], hb[STORM_USERS];
	const unsigned char *answered = S.answered;
	unsigned nmsgs, survivors = 0;
	const char *env = getenv("STOWD_KILL_SEED");
	pthread_t th, cl[STORM_CLIENTS];
	int64_t t_end, t_conv;
	bool same = false;

	(void)state;
#ifdef STOWD_SANITIZER
	skip();
#endif
	S.seed = env != NULL ? (unsigned)strtoul(env, NULL, 10) : 20261206u;
	S.stop = false;
	S.sup_kill = -1;
	S.kills = S.sup_kills = S.restarts = 0;
	S.next_msg = S.n250 = S.n4xx = S.nlost = 0;
	S.bad_code = 0;
	S.start_failed = false;
	memset(S.answered, 0, sizeof(S.answered));
	irepl_start_pair(A, B, &tempfail_conf);
	/* the warm-up message of user 0 is not part of the storm */
	S.t0 = harness_mono_ms();
	assert_int_equal(pthread_create(&th, NULL, killer, NULL), 0);
	for (int k = 0; k < STORM_CLIENTS; k++)
		assert_int_equal(pthread_create(&cl[k], NULL, deliverer, NULL), 0);
	for (int k = 0; k < STORM_CLIENTS; k++)
		pthread_join(cl[k], NULL);
	S.stop = true;
	pthread_join(th, NULL);
	nmsgs = S.next_msg;
	if (S.bad_code != 0)
		fail_msg("seed=%u: message %u answered %d", S.seed, S.bad_msg, S.bad_code);
	revive(A);
	revive(B);
	if (S.start_failed)
		fail_msg("seed=%u: an instance did not start again", S.seed);
	t_end = harness_mono_ms();
	/* converged: the same GUIDs in both INBOXes, journal drained */
	while (!same && harness_mono_ms() - t_end < CONVERGE_MS) {
		same = irepl_journal_size(A, "b") == 0;
		for (unsigned u = 0; same && u < STORM_USERS; u++) {
			hold_scan(A, u, &ha[u]);
			hold_scan(B, u, &hb[u]);
			same = hold_same(&ha[u], &hb[u]);
		}
		if (!same)
			harness_sleep_ms(100);
	}
	t_conv = harness_mono_ms();
	print_message("kill storm (%s): seed=%u messages=%u answered250=%u 4xx=%u "
		      "no-reply=%u kills=%u supervisor-kills=%u restarts=%u "
		      "converged=%s after %lld ms\n", IR[A].h->mode, S.seed, nmsgs, S.n250,
		      S.n4xx, S.nlost, S.kills, S.sup_kills, S.restarts, same ? "yes" : "NO",
		      (long long)(t_conv - t_end));
	if (!same) {
		for (unsigned u = 0; u < STORM_USERS; u++)
			print_message("user %u: a holds %d, b holds %d, a's journal "
				      "for b %lld bytes\n", u, ha[u].nguids, hb[u].nguids,
				      (long long)irepl_journal_size(A, "b"));
		fail_msg("seed=%u: a and b hold different messages %d ms after the "
			 "storm", S.seed, CONVERGE_MS);
	}
	for (unsigned u = 0; u < STORM_USERS; u++) {
		if (ha[u].bad > 0 || hb[u].bad > 0)
			fail_msg("seed=%u: partial file: %s%s", S.seed, ha[u].why, hb[u].why);
		for (int k = 1; k < ha[u].nguids; k++)
			if (strcmp(ha[u].guids[k - 1], ha[u].guids[k]) == 0)
				fail_msg("seed=%u: guid=%s twice on a", S.seed, ha[u].guids[k]);
	}
	for (unsigned m = 0; m < nmsgs; m++) {
		unsigned u = m % STORM_USERS;

		if (ha[u].copies[m] > 1 || hb[u].copies[m] > 1)
			fail_msg("seed=%u: message %u stored %u times on a, %u on b",
				 S.seed, m, ha[u].copies[m], hb[u].copies[m]);
		if (answered[m] && (ha[u].copies[m] != 1 || hb[u].copies[m] != 1))
			fail_msg("seed=%u: message %u was answered 250 but a has %u "
				 "copies, b %u", S.seed, m, ha[u].copies[m], hb[u].copies[m]);
		survivors += !answered[m] && ha[u].copies[m] == 1;
	}
	print_message("kill storm (%s): unanswered saves tombstoned by a: %d; "
		      "unanswered but kept (reply lost with a killed supervisor or "
		      "front-end): %u\n", IR[A].h->mode,
		      irepl_log_count(A, "unanswered save expunged"), survivors);
	irepl_pass();
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#ifdef STOWD_TEST_HOOKS
		cmocka_unit_test_setup_teardown(
			test_writer_killed_after_its_stamp_is_expunged_everywhere,
			irepl_setup, irepl_teardown),
		cmocka_unit_test_setup_teardown(
			test_orphan_of_a_crashed_sender_is_expunged_after_restart,
			irepl_setup, irepl_teardown),
#endif
		cmocka_unit_test_setup_teardown(test_kill_storm_pair_converges,
						irepl_setup, irepl_teardown),
	};

	harness_require_root();
	return cmocka_run_group_tests(tests, irepl_group_setup, irepl_group_teardown);
}
