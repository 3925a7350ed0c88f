/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/repl-hook/test_sync_run.c - the resync run of repl-hook/sync.c
 * against a fake core: two in-memory servers (here = a.example, the
 * replica = b.example) that answer LIST/SYNC/GUIDS/FETCH and apply
 * SAVE/STORE/EXPUNGE/CREATE; local changes reach the replica at once (a
 * drained journal).  Replies are delivered from a FIFO by the test.
 * With change capture on, a mailbox on one side only waits until this
 * side's folder changes are captured and acknowledged.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include <event2/event.h>

#include "repl-hook/hook_int.h"
#include "repl-hook/proto/proto.h"

#define G1 "0190f3a2b4c8d2a1e5f6a7b8c9d0e1f2"
#define G2 "0190f3a2b4c9000100000000deadbeef"
#define G3 "0190f3a2c0017a3b5e1f00c4a9d2b7e3"
#define G5 "0190f3a2c2bb7a3b0000111122223333"

struct fmsg {
	char guid[33];
	uint32_t uid;
	struct store_stamp st;
	char flags[PSEP_FLAGS_MAX];
	bool tomb;
	char body[64];
};

struct fbox {
	char name[32];
	struct fmsg m[16];
	int n;
	uint64_t h;
	uint32_t uidnext;
};

struct fserver {
	const char *id;
	struct fbox b[4];
	int nb;
};

struct fop {
	bool remote;
	bool users;
	struct psep_repl_cmd cmd;
	int body_fd;
	hook_reply_cb rcb;
	hook_local_cb lcb;
	hook_users_cb ucb;
	void *arg;
};

static struct fserver srv_here, srv_there;
static struct fop queue[64];
static size_t q_head, q_tail;
static void *slot;
static int dirfd_ = -1;
static char dirpath[] = "/tmp/stowd-sync-test-XXXXXX";
static bool connected = true;
static struct hook *const fake_hook = (struct hook *)&srv_here;
static struct hook_replica *const fake_r = (struct hook_replica *)&srv_there;

/* ---- fake core ----------------------------------------------------------- */

/* change capture (watch.c) and the journal, as the test sets them */
static bool capture_on, watch_busy;
static const char *capture_data = "";   /* CAPTURE_BOXES data lines */
static uint64_t folder_unacked;
static uint64_t store_unacked;           /* STOREs of alice's INBOX */
static unsigned n_capture_events, n_sync_due;
static struct event_base *base;

bool
hook_capture_on(const struct hook *h)
{
	(void)h;
	return capture_on;
}

bool
hook_capture_user_busy(const struct hook *h, const char *user)
{
	(void)h;
	(void)user;
	return watch_busy;
}

/* What the watch would journal: one event per line. */
unsigned
hook_capture_boxes_reply(struct hook *h, const char *user, int fd)
{
	char buf[1024];
	ssize_t n;
	unsigned lines = 0;

	(void)h;
	assert_string_equal(user, "alice");
	n = fd >= 0 ? pread(fd, buf, sizeof(buf), 0) : 0;
	for (ssize_t i = 0; i < n; i++)
		lines += buf[i] == '\n';
	n_capture_events += lines;
	return lines;
}

uint64_t
hook_replica_user_folder_unacked(struct hook_replica *r, const char *user)
{
	(void)r;
	(void)user;
	return folder_unacked;
}

uint64_t
hook_replica_mailbox_store_unacked(struct hook_replica *r, const char *user,
				   const char *mailbox)
{
	(void)r;
	return strcmp(user, "alice") == 0 && strcmp(mailbox, "INBOX") == 0 ?
	       store_unacked : 0;
}

void
hook_replica_sync_due(struct hook_replica *r)
{
	(void)r;
	n_sync_due++;
}

struct event_base *
hook_event_base(struct hook *h)
{
	(void)h;
	return base;
}

const char *
hook_replica_name(const struct hook_replica *r)
{
	(void)r;
	return "b";
}

struct hook *
hook_replica_hook(struct hook_replica *r)
{
	(void)r;
	return fake_hook;
}

/* The end of a run: counted, nothing else (stats.c is not under test). */
static unsigned n_sync_ended;

void
hook_replica_sync_ended(struct hook_replica *r, bool ok, bool full, uint64_t start_ms,
			uint64_t mailboxes, uint64_t repairs)
{
	(void)r;
	(void)ok;
	(void)full;
	(void)start_ms;
	(void)mailboxes;
	(void)repairs;
	n_sync_ended++;
}

void **
hook_replica_sync_slot(struct hook_replica *r)
{
	(void)r;
	return &slot;
}

int
hook_state_dirfd(const struct hook *h)
{
	(void)h;
	return dirfd_;
}

const char *
hook_server_id(const struct hook *h)
{
	(void)h;
	return "a.example";
}

static struct fop *
q_push(void)
{
	assert_true(q_tail - q_head < 64);
	struct fop *o = &queue[q_tail++ % 64];

	memset(o, 0, sizeof(*o));
	o->body_fd = -1;
	return o;
}

int
hook_replica_send(struct hook_replica *r, const struct psep_repl_cmd *cmd,
		  int body_fd, uint64_t body_size, hook_reply_cb cb, void *arg)
{
	struct fop *o;

	(void)r;
	(void)body_size;
	if (!connected)
		return -1;
	o = q_push();
	o->remote = true;
	o->cmd = *cmd;
	o->body_fd = body_fd >= 0 ? fcntl(body_fd, F_DUPFD_CLOEXEC, 3) : -1;
	o->rcb = cb;
	o->arg = arg;
	return 0;
}

int
hook_local_send(struct hook *h, const struct psep_repl_cmd *cmd, int memfd,
		hook_local_cb cb, void *arg)
{
	struct fop *o = q_push();

	(void)h;
	o->cmd = *cmd;
	o->body_fd = memfd >= 0 ? fcntl(memfd, F_DUPFD_CLOEXEC, 3) : -1;
	o->lcb = cb;
	o->arg = arg;
	return 0;
}

int
hook_users_request(struct hook *h, hook_users_cb cb, void *arg)
{
	struct fop *o = q_push();

	(void)h;
	o->users = true;
	o->ucb = cb;
	o->arg = arg;
	return 0;
}

/* ---- fake servers ----------------------------------------------------------- */

static struct fbox *
box_get(struct fserver *s, const char *name, bool create)
{
	for (int i = 0; i < s->nb; i++) {
		if (strcmp(s->b[i].name, name) == 0)
			return &s->b[i];
	}
	if (!create)
		return NULL;
	assert_true(s->nb < 4);
	memset(&s->b[s->nb], 0, sizeof(s->b[0]));
	strcpy(s->b[s->nb].name, name);
	s->b[s->nb].uidnext = 1;
	return &s->b[s->nb++];
}

static struct fmsg *
msg_get(struct fbox *b, const char *guid)
{
	for (int i = 0; i < b->n; i++) {
		if (strcmp(b->m[i].guid, guid) == 0)
			return &b->m[i];
	}
	return NULL;
}

static void
put_msg(struct fserver *s, const char *box, const char *guid, uint32_t uid,
	uint64_t modseq, const char *origin, const char *flags, bool tomb)
{
	struct fbox *b = box_get(s, box, true);
	struct fmsg *m = &b->m[b->n++];

	memset(m, 0, sizeof(*m));
	strcpy(m->guid, guid);
	m->uid = uid;
	m->st.modseq = modseq;
	strcpy(m->st.origin, origin);
	strcpy(m->flags, flags);
	m->tomb = tomb;
	snprintf(m->body, sizeof(m->body), "Subject: %s\r\n\r\nbody\r\n", guid);
	if (uid >= b->uidnext)
		b->uidnext = uid + 1;
	if (modseq > b->h)
		b->h = modseq;
}

static void
box_state(const struct fbox *b, struct store_mbox_state *st)
{
	memset(st, 0, sizeof(*st));
	st->uidvalidity = 1;
	st->uidnext = b->uidnext;
	st->highestmodseq = b->h;
	for (int i = 0; i < b->n; i++) {
		unsigned char g[STORE_HASH_LEN], f[STORE_HASH_LEN];

		if (b->m[i].tomb)
			continue;
		st->messages++;
		store_digest_guid(b->m[i].guid, g);
		store_digest_flags(b->m[i].guid, b->m[i].flags, f);
		for (int k = 0; k < STORE_HASH_LEN; k++) {
			st->guidhash[k] ^= g[k];
			st->flaghash[k] ^= f[k];
		}
	}
}

static bool
boxes_equal(const char *name)
{
	struct store_mbox_state a, b;

	box_state(box_get(&srv_here, name, false), &a);
	box_state(box_get(&srv_there, name, false), &b);
	return a.messages == b.messages && memcmp(a.guidhash, b.guidhash, 32) == 0 &&
	       memcmp(a.flaghash, b.flaghash, 32) == 0;
}

/* Apply "+f -g" deltas to a flag string (kept sorted: the test uses
 * system flags only, in canonical order). */
static void
apply_deltas(char *flags, const char *deltas)
{
	static const char *const order[] = { "\\Answered", "\\Deleted", "\\Draft",
					     "\\Flagged", "\\Seen" };
	bool on[5];
	char out[PSEP_FLAGS_MAX] = "";

	for (int i = 0; i < 5; i++)
		on[i] = strstr(flags, order[i]) != NULL;
	for (int i = 0; i < 5; i++) {
		char plus[16], minus[16];

		snprintf(plus, sizeof(plus), "+%s", order[i]);
		snprintf(minus, sizeof(minus), "-%s", order[i]);
		if (strstr(deltas, plus) != NULL)
			on[i] = true;
		if (strstr(deltas, minus) != NULL)
			on[i] = false;
	}
	for (int i = 0; i < 5; i++) {
		if (!on[i])
			continue;
		if (out[0] != '\0')
			strcat(out, " ");
		strcat(out, order[i]);
	}
	strcpy(flags, out);
}

static int
memfd_with(const char *data, size_t len)
{
	int fd = memfd_create("t", MFD_CLOEXEC | MFD_ALLOW_SEALING);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	return fd;
}

struct result {
	enum psep_repl_status status;
	char code[47];
	char data[8192];
	size_t len;
	int fd;                 /* FETCH body */
	struct store_msg_info fetched;
	bool effective;
	struct store_stamp applied;
};

static void
add_line(struct result *res, const char *line)
{
	size_t n = strlen(line);

	assert_true(res->len + n + 1 < sizeof(res->data));
	memcpy(res->data + res->len, line, n);
	res->data[res->len + n] = '\n';
	res->len += n + 1;
}

static void
stamp_for(struct fserver *s, struct fbox *b, const struct psep_repl_cmd *c,
	  struct store_stamp *st)
{
	if (c->modseq == 0) {
		st->modseq = b->h + 1;
		strcpy(st->origin, s->id);
	} else {
		st->modseq = c->modseq;
		strcpy(st->origin, c->origin);
	}
	if (st->modseq > b->h)
		b->h = st->modseq;
}

static void
exec_save(struct fserver *s, const struct psep_repl_cmd *c, int body,
	  struct result *res)
{
	struct fbox *b = box_get(s, c->mailbox, true);
	struct fmsg *m = msg_get(b, c->guid);
	ssize_t n;

	if (m != NULL)
		return;
	m = &b->m[b->n++];
	memset(m, 0, sizeof(*m));
	strcpy(m->guid, c->guid);
	m->uid = c->uid_hint >= b->uidnext ? c->uid_hint : b->uidnext;
	b->uidnext = m->uid + 1;
	strcpy(m->flags, c->flags);
	assert_true(body >= 0);
	n = pread(body, m->body, sizeof(m->body) - 1, 0);
	assert_true(n > 0);
	assert_int_equal((uint64_t)n, c->body_size);
	stamp_for(s, b, c, &m->st);
	res->effective = true;
	res->applied = m->st;
}

static void
exec_event(struct fserver *s, const struct psep_repl_cmd *c, int body,
	   struct result *res)
{
	struct fbox *b = box_get(s, c->mailbox, c->op == PSEP_REPL_CREATE);
	struct fmsg *m;
	struct store_stamp st;

	if (c->op == PSEP_REPL_SAVE) {
		exec_save(s, c, body, res);
		return;
	}
	if (c->op == PSEP_REPL_CREATE || b == NULL)
		return;
	m = msg_get(b, c->guid);
	if (c->op == PSEP_REPL_EXPUNGE) {
		if (m == NULL) {
			m = &b->m[b->n++];
			memset(m, 0, sizeof(*m));
			strcpy(m->guid, c->guid);
		}
		stamp_for(s, b, c, &st);
		m->tomb = true;
		res->effective = true;
		res->applied = st;
		return;
	}
	assert_int_equal(c->op, PSEP_REPL_STORE);
	if (m == NULL || m->tomb)
		return;
	stamp_for(s, b, c, &st);
	if (store_stamp_cmp(&st, &m->st) > 0) {
		apply_deltas(m->flags, c->flags);
		m->st = st;
		res->effective = true;
		res->applied = st;
	}
}

static void
exec_query(struct fserver *s, const struct psep_repl_cmd *c,
	   struct result *res)
{
	struct fbox *b = box_get(s, c->mailbox, false);
	struct store_mbox_state st;
	char line[1024];

	if (c->op == PSEP_REPL_CAPTURE_BOXES) {
		assert_true(s == &srv_here);   /* never sent to a replica */
		if (capture_data[0] != '\0') {
			memcpy(res->data, capture_data, strlen(capture_data));
			res->len = strlen(capture_data);
		} else {
			res->len = 0;
		}
		return;
	}
	if (c->op == PSEP_REPL_LIST) {
		for (int i = 0; i < s->nb; i++) {
			box_state(&s->b[i], &st);
			assert_true(repl_fmt_mailbox_data(line, sizeof(line), s->b[i].name, &st) > 0);
			add_line(res, line);
		}
		return;
	}
	if (b == NULL) {
		res->status = PSEP_RS_NO;
		strcpy(res->code, "NONEXISTENT");
		return;
	}
	if (c->op == PSEP_REPL_SYNC) {
		box_state(b, &st);
		assert_true(repl_fmt_sync_data(line, sizeof(line), b->name, &st) > 0);
		add_line(res, line);
		return;
	}
	if (c->op == PSEP_REPL_GUIDS) {
		for (int i = 0; i < b->n; i++) {
			struct store_msg_info mi;

			if (b->m[i].guid[0] == 'X') {   /* malformed on purpose */
				add_line(res, "GUID not-a-guid 1 5 b.example ()");
				continue;
			}
			memset(&mi, 0, sizeof(mi));
			strcpy(mi.guid, b->m[i].guid);
			mi.expunged = b->m[i].tomb;
			mi.uid = b->m[i].uid;
			mi.stamp = b->m[i].st;
			strcpy(mi.flags, b->m[i].flags);
			assert_true(repl_fmt_guid_data(line, sizeof(line), &mi) > 0);
			add_line(res, line);
		}
		return;
	}
	assert_int_equal(c->op, PSEP_REPL_FETCH);
	struct fmsg *m = msg_get(b, c->guid);

	if (m == NULL || m->tomb) {
		res->status = PSEP_RS_NO;
		strcpy(res->code, m == NULL ? "NONEXISTENT" : "EXPUNGED");
		return;
	}
	memset(&res->fetched, 0, sizeof(res->fetched));
	strcpy(res->fetched.guid, m->guid);
	res->fetched.uid = m->uid;
	res->fetched.date = 1718000000;
	strcpy(res->fetched.flags, m->flags);
	res->fetched.size = strlen(m->body);
	res->fd = memfd_with(m->body, strlen(m->body));
}

static void
exec(struct fserver *s, const struct psep_repl_cmd *c, int body,
     struct result *res)
{
	memset(res, 0, sizeof(*res));
	res->fd = -1;
	if (c->op >= PSEP_REPL_LIST) {
		exec_query(s, c, res);
		return;
	}
	exec_event(s, c, body, res);
	/* a local effective event goes to the replica through the journal */
	if (s == &srv_here && res->effective && connected) {
		struct psep_repl_cmd fw = *c;
		struct result r2;

		fw.modseq = res->applied.modseq;
		strcpy(fw.origin, res->applied.origin);
		memset(&r2, 0, sizeof(r2));
		r2.fd = -1;
		exec_event(&srv_there, &fw, body, &r2);
	}
}

static void
deliver_remote(struct fop *o, const struct result *res)
{
	struct repl_response resp;
	struct repl_frame *frame = calloc(1, sizeof(*frame));
	char line[REPL_MAXLINE];
	size_t start = 0;

	assert_non_null(frame);
	frame->literal_fd = -1;
	while (start < res->len) {
		char *nl = memchr(res->data + start, '\n', res->len - start);

		memset(&resp, 0, sizeof(resp));
		resp.kind = REPL_R_DATA;
		memcpy(line, res->data + start, (size_t)(nl - res->data) - start);
		line[(size_t)(nl - res->data) - start] = '\0';
		resp.body = line;
		o->rcb(fake_r, &resp, frame, o->arg);
		start = (size_t)(nl - res->data) + 1;
	}
	if (res->fd >= 0) {
		memset(&resp, 0, sizeof(resp));
		resp.kind = REPL_R_DATA;
		assert_true(repl_fmt_fetch_data(line, sizeof(line), &res->fetched,
						res->fetched.size) > 0);
		resp.body = line;
		frame->has_literal = true;
		frame->literal_size = res->fetched.size;
		frame->literal_fd = res->fd;
		o->rcb(fake_r, &resp, frame, o->arg);
		if (frame->literal_fd >= 0)
			close(frame->literal_fd);
	}
	memset(&resp, 0, sizeof(resp));
	resp.kind = REPL_R_TAGGED;
	resp.status = res->status;
	strcpy(resp.code, res->code);
	resp.text = "done";
	o->rcb(fake_r, &resp, NULL, o->arg);
	free(frame);
}

static void
deliver_local(struct fop *o, const struct result *res)
{
	struct psep_repl_rep rep;
	int fd = -1;

	memset(&rep, 0, sizeof(rep));
	rep.status = res->status;
	strcpy(rep.code, res->code);
	rep.effective = res->effective;
	if (o->cmd.op == PSEP_REPL_FETCH && res->fd >= 0) {
		fd = res->fd;
		rep.uid = res->fetched.uid;
		rep.date = (uint64_t)res->fetched.date;
		rep.size = res->fetched.size;
		strcpy(rep.flags, res->fetched.flags);
	} else if (o->cmd.op >= PSEP_REPL_LIST && res->status == PSEP_RS_OK) {
		fd = res->len > 0 ? memfd_with(res->data, res->len) : memfd_with("", 0);
	}
	o->lcb(fake_hook, &rep, fd, o->arg);
}

/* Deliver one queued reply; false if none. */
static bool
step(void)
{
	struct fop o;
	struct result res;

	if (q_head == q_tail)
		return false;
	o = queue[q_head++ % 64];
	if (o.users) {
		static const char users[] = "alice\n";

		o.ucb(fake_hook, 0, memfd_with(users, sizeof(users) - 1), o.arg);
		return true;
	}
	exec(o.remote ? &srv_there : &srv_here, &o.cmd, o.body_fd, &res);
	if (o.remote)
		deliver_remote(&o, &res);
	else
		deliver_local(&o, &res);
	if (o.body_fd >= 0)
		close(o.body_fd);
	return true;
}

static void
run_all(void)
{
	for (int i = 0; i < 10000 && step(); i++)
		;
	assert_true(q_head == q_tail);
}

/* The replies of every queued request never come (link lost). */
static void
drop_all_with_null(void)
{
	while (q_head != q_tail) {
		struct fop o = queue[q_head++ % 64];

		if (o.users)
			o.ucb(fake_hook, EPIPE, -1, o.arg);
		else if (o.remote)
			o.rcb(fake_r, NULL, NULL, o.arg);
		else
			o.lcb(fake_hook, NULL, -1, o.arg);
		if (o.body_fd >= 0)
			close(o.body_fd);
	}
}

/* ---- fixtures ------------------------------------------------------------------ */

static int
setup(void **state)
{
	(void)state;
	memset(&srv_here, 0, sizeof(srv_here));
	memset(&srv_there, 0, sizeof(srv_there));
	srv_here.id = "a.example";
	srv_there.id = "b.example";
	q_head = q_tail = 0;
	connected = true;
	capture_on = watch_busy = false;
	capture_data = "";
	folder_unacked = store_unacked = 0;
	n_capture_events = n_sync_due = 0;
	base = event_base_new();
	assert_non_null(base);
	assert_non_null(mkdtemp(strcpy(dirpath, "/tmp/stowd-sync-test-XXXXXX")));
	dirfd_ = open(dirpath, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(dirfd_ >= 0);
	return 0;
}

static int
teardown(void **state)
{
	char cmd[128];

	(void)state;
	hook_sync_free(fake_r);
	assert_null(slot);
	event_base_free(base);
	base = NULL;
	close(dirfd_);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dirpath);
	assert_int_equal(system(cmd), 0);
	return 0;
}

/* The §11.1 example, plus a mailbox only here and one only there. */
static void
load_example(void)
{
	put_msg(&srv_here, "INBOX", G1, 1, 14, "a.example", "\\Seen", false);
	put_msg(&srv_here, "INBOX", G2, 2, 0, "", "", true);
	put_msg(&srv_here, "INBOX", G3, 3, 15, "a.example", "", false);
	put_msg(&srv_there, "INBOX", G1, 1, 9, "a.example", "", false);
	put_msg(&srv_there, "INBOX", G2, 2, 10, "a.example", "", false);
	put_msg(&srv_there, "INBOX", G5, 3, 11, "b.example", "\\Flagged", false);
	put_msg(&srv_here, "Sent", G3, 1, 3, "a.example", "\\Seen", false);
	box_get(&srv_there, "Trash", true);
}

static char *
read_dirty(void)
{
	static char buf[4096];
	int fd = openat(dirfd_, "b.dirty", O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return NULL;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	assert_true(n >= 0);
	buf[n] = '\0';
	return buf;
}

static void
test_full_sync_repairs_worked_example(void **state)
{
	struct fmsg *m;

	(void)state;
	load_example();
	hook_sync_start(fake_r, true);
	assert_true(hook_sync_running(fake_r));
	run_all();
	assert_false(hook_sync_running(fake_r));

	assert_true(boxes_equal("INBOX"));
	assert_true(boxes_equal("Sent"));
	assert_true(boxes_equal("Trash"));
	/* G2 expunged on the replica with a fresh stamp above both H */
	m = msg_get(box_get(&srv_there, "INBOX", false), G2);
	assert_true(m->tomb);
	/* G3 saved there with the UID hint 3 moved to 4 (3 is G5) */
	m = msg_get(box_get(&srv_there, "INBOX", false), G3);
	assert_non_null(m);
	assert_int_equal(m->uid, 4);
	assert_string_equal(m->st.origin, "a.example");
	assert_true(m->st.modseq > 15);
	assert_string_equal(m->body, msg_get(box_get(&srv_here, "INBOX", false), G3)->body);
	/* G5 fetched and saved here with its flags */
	m = msg_get(box_get(&srv_here, "INBOX", false), G5);
	assert_non_null(m);
	assert_string_equal(m->flags, "\\Flagged");
	assert_int_equal(m->uid, 4);
	/* G1: here won */
	assert_string_equal(msg_get(box_get(&srv_there, "INBOX", false), G1)->flags,
			    "\\Seen");
}

/* A flag change of this side made after the run began (a STORE of the
 * mailbox in the journal, not yet acknowledged): the mailbox is not
 * repaired now, which would stamp the other side's flags above that
 * change and undo it, but left marked, and repaired by the run after the
 * drain; the other mailboxes are repaired at once. */
static void
test_flag_repair_waits_for_this_sides_stores(void **state)
{
	char *d;

	(void)state;
	put_msg(&srv_here, "INBOX", G1, 1, 14, "a.example", "\\Seen", false);
	put_msg(&srv_there, "INBOX", G1, 1, 20, "b.example", "\\Flagged", false);
	put_msg(&srv_here, "Sent", G3, 1, 3, "a.example", "\\Seen", false);
	store_unacked = 1;
	hook_sync_start(fake_r, true);
	run_all();
	assert_false(hook_sync_running(fake_r));
	assert_string_equal(msg_get(box_get(&srv_here, "INBOX", false), G1)->flags, "\\Seen");
	assert_string_equal(msg_get(box_get(&srv_there, "INBOX", false), G1)->flags,
			    "\\Flagged");
	assert_true(boxes_equal("Sent"));
	d = read_dirty();
	assert_non_null(d);
	assert_string_equal(d, "alice\tINBOX\n");
	/* drained: the next (dirty) run repairs it, there won */
	store_unacked = 0;
	hook_sync_start(fake_r, false);
	assert_true(hook_sync_running(fake_r));
	run_all();
	assert_true(boxes_equal("INBOX"));
	assert_string_equal(msg_get(box_get(&srv_here, "INBOX", false), G1)->flags, "\\Flagged");
	d = read_dirty();
	assert_non_null(d);
	assert_string_equal(d, "");
}

static void
test_dirty_set_is_durable_and_cleared(void **state)
{
	char *d;

	(void)state;
	load_example();
	hook_sync_mark_dirty(fake_r, "alice", "INBOX");
	hook_sync_mark_dirty(fake_r, "alice", "INBOX");
	hook_sync_mark_dirty(fake_r, "alice", "Gone");
	hook_sync_mark_dirty(fake_r, "bad\tuser", "INBOX");
	d = read_dirty();
	assert_non_null(d);
	assert_string_equal(d, "alice\tINBOX\nalice\tGone\n");

	/* a fresh state (after a restart) loads the file */
	hook_sync_free(fake_r);
	hook_sync_start(fake_r, false);
	assert_true(hook_sync_running(fake_r));
	run_all();
	assert_false(hook_sync_running(fake_r));
	assert_true(boxes_equal("INBOX"));
	assert_true(boxes_equal("Sent"));
	d = read_dirty();
	assert_non_null(d);
	assert_string_equal(d, "");

	/* nothing dirty: nothing runs */
	hook_sync_start(fake_r, false);
	assert_false(hook_sync_running(fake_r));
	assert_true(q_head == q_tail);
}

static void
test_abort_keeps_dirty_and_ignores_late_replies(void **state)
{
	(void)state;
	load_example();
	hook_sync_mark_dirty(fake_r, "alice", "INBOX");
	hook_sync_start(fake_r, false);
	/* the LISTs and the first GUIDS go out, then the link drops */
	for (int i = 0; i < 4; i++)
		assert_true(step());
	assert_true(hook_sync_running(fake_r));
	hook_sync_abort(fake_r);
	assert_false(hook_sync_running(fake_r));
	connected = false;
	drop_all_with_null();
	assert_string_equal(read_dirty(), "alice\tINBOX\n");

	/* reconnected: the run starts again and finishes */
	connected = true;
	hook_sync_start(fake_r, false);
	run_all();
	assert_true(boxes_equal("INBOX"));
	assert_string_equal(read_dirty(), "");
}

static void
test_lost_link_mid_repair_stops_run(void **state)
{
	(void)state;
	load_example();
	hook_sync_mark_dirty(fake_r, "alice", "INBOX");
	hook_sync_start(fake_r, false);
	for (int i = 0; i < 7; i++)
		assert_true(step());
	/* the core fails every direct command before calling abort */
	connected = false;
	drop_all_with_null();
	hook_sync_abort(fake_r);
	assert_false(hook_sync_running(fake_r));
	assert_string_equal(read_dirty(), "alice\tINBOX\n");
	/* free with nothing outstanding, then again (NULL slot) */
	hook_sync_free(fake_r);
	hook_sync_free(fake_r);
}

static void
test_free_with_requests_in_flight(void **state)
{
	(void)state;
	load_example();
	hook_sync_start(fake_r, true);
	assert_true(step());            /* users */
	assert_true(step());            /* remote LIST */
	hook_sync_free(fake_r);
	assert_null(slot);
	/* the remaining replies arrive after free */
	run_all();
	assert_null(slot);
}

static void
test_bad_replica_data_fails_mailbox(void **state)
{
	(void)state;
	/* a GUID line with a bad GUID on the replica */
	put_msg(&srv_here, "INBOX", G1, 1, 5, "a.example", "", false);
	put_msg(&srv_there, "INBOX", "X190f3a2b4c8d2a1e5f6a7b8c9d0e1f2", 1, 5,
		"b.example", "", false);
	hook_sync_mark_dirty(fake_r, "alice", "INBOX");
	hook_sync_start(fake_r, false);
	run_all();
	assert_false(hook_sync_running(fake_r));
	assert_string_equal(read_dirty(), "alice\tINBOX\n");
}

/* Work renamed to Archive here (Dovecot), the replica still has Work:
 * the run must not make Work here nor Archive there before the rename has
 * travelled; the user stays marked and is tried again. */
static void
test_one_sided_mailbox_waits_for_this_sides_folder_change(void **state)
{
	(void)state;
	capture_on = true;
	put_msg(&srv_here, "Archive", G1, 1, 5, "a.example", "", false);
	put_msg(&srv_there, "Work", G1, 1, 5, "a.example", "", false);
	box_get(&srv_here, "INBOX", true);
	box_get(&srv_there, "INBOX", true);
	capture_data = "RENAME Work Archive\n";
	hook_sync_start(fake_r, true);
	run_all();
	assert_false(hook_sync_running(fake_r));
	assert_int_equal(n_capture_events, 1);
	assert_null(box_get(&srv_here, "Work", false));
	assert_null(box_get(&srv_there, "Archive", false));
	assert_string_equal(read_dirty(), "alice\tINBOX\n");
	/* tried again a little later */
	assert_int_equal(event_base_loop(base, EVLOOP_ONCE), 0);
	assert_int_equal(n_sync_due, 1);

	/* the rename is captured but not yet acknowledged: still later */
	capture_data = "";
	folder_unacked = 1;
	hook_sync_start(fake_r, false);
	run_all();
	assert_null(box_get(&srv_here, "Work", false));
	assert_string_equal(read_dirty(), "alice\tINBOX\n");

	/* a capture of the user waiting in the watch: not even asked */
	folder_unacked = 0;
	watch_busy = true;
	hook_sync_start(fake_r, false);
	run_all();
	assert_null(box_get(&srv_here, "Work", false));
	assert_string_equal(read_dirty(), "alice\tINBOX\n");

	/* the replica renamed it too: nothing one-sided, the run completes */
	watch_busy = false;
	strcpy(box_get(&srv_there, "Work", false)->name, "Archive");
	hook_sync_start(fake_r, false);
	run_all();
	assert_true(boxes_equal("Archive"));
	assert_null(box_get(&srv_here, "Work", false));
	assert_null(box_get(&srv_there, "Work", false));
	assert_string_equal(read_dirty(), "");
	assert_int_equal(n_capture_events, 1);
}

/* Settled (nothing captured, nothing unacknowledged): a mailbox on one
 * side only is created on the other, as with capture off. */
static void
test_one_sided_mailbox_created_once_settled(void **state)
{
	(void)state;
	capture_on = true;
	put_msg(&srv_there, "Trash", G1, 1, 5, "b.example", "", false);
	box_get(&srv_here, "INBOX", true);
	box_get(&srv_there, "INBOX", true);
	hook_sync_start(fake_r, true);
	run_all();
	assert_false(hook_sync_running(fake_r));
	assert_true(boxes_equal("Trash"));
	assert_int_equal(n_capture_events, 0);
	assert_int_equal(event_base_loop(base, EVLOOP_NONBLOCK), 1);   /* no retry */
	assert_int_equal(n_sync_due, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_full_sync_repairs_worked_example,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_flag_repair_waits_for_this_sides_stores,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_dirty_set_is_durable_and_cleared,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_abort_keeps_dirty_and_ignores_late_replies,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_lost_link_mid_repair_stops_run,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_free_with_requests_in_flight,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_replica_data_fails_mailbox,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_one_sided_mailbox_waits_for_this_sides_folder_change,
			setup, teardown),
		cmocka_unit_test_setup_teardown(test_one_sided_mailbox_created_once_settled,
						setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
