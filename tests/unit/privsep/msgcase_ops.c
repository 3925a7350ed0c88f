/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/privsep/msgcase_ops.c - the valid message of each operations
 * type (stowctl, repl-hook stats and resync, metrics; msg.h 180..219).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "msgcase.h"

size_t
fill_ctl_req(void *b)
{
	struct psep_ctl_req *r = b;

	r->cmd = PSEP_CTL_USER;
	r->flags = PSEP_CTL_F_JSON;
	SET_STR(r->user, "alice");
	return sizeof(*r);
}

size_t
fill_ctl_rep(void *b)
{
	struct psep_ctl_rep *r = b;

	r->err = 0;
	r->size = 0;
	SET_STR(r->text, "");
	return sizeof(*r);
}

size_t
fill_stats_req(void *b)
{
	struct psep_stats_req *r = b;

	SET_STR(r->user, "alice");
	return sizeof(*r);
}

static void
fill_replica(struct psep_replica_stats *s)
{
	SET_STR(s->name, "b");
	SET_STR(s->server_id, "b.test");
	s->connected = 1;
	SET_STR(s->last_error, "");
	for (unsigned i = 0; i < PSEP_LAT_BUCKETS; i++)
		s->ack_buckets[i] = i < 3 ? 1 : 2;
	s->ack_count = 2;
}

size_t
fill_stats_rep(void *b)
{
	struct psep_stats_rep *r = b;

	r->n = 2;
	fill_replica(&r->r[0]);
	fill_replica(&r->r[1]);
	SET_STR(r->r[1].name, "c");
	return sizeof(*r);
}

size_t
fill_metrics_req(void *b)
{
	(void)b;
	return sizeof(struct psep_metrics_req);
}

size_t
fill_metrics_rep(void *b)
{
	struct psep_metrics_rep *r = b;

	psep_histogram_add(&r->c.lmtp, 1200);
	psep_histogram_add(&r->c.save, 300);
	r->c.replica_stats_ok = 1;
	(void)fill_stats_rep(&r->repl);
	return sizeof(*r);
}

size_t
fill_metrics_client(void *b)
{
	struct psep_client_fd *c = b;

	SET_STR(c->listener, "tcp:127.0.0.1:9246");
	return sizeof(*c);
}

size_t
fill_resync_req(void *b)
{
	struct psep_resync_req *r = b;

	r->all = 0;
	SET_STR(r->user, "alice");
	SET_STR(r->mailbox, "INBOX");
	SET_STR(r->replica, "b");
	return sizeof(*r);
}

size_t
fill_resync_rep(void *b)
{
	struct psep_resync_rep *r = b;

	r->mailboxes = 3;
	r->repairs = 1;
	SET_STR(r->text, "");
	return sizeof(*r);
}
