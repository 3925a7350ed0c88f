/* SPDX-License-Identifier: MIT */
/*
 * lmtpd/metrics.c - the Prometheus metrics endpoint: a client of
 * metrics_listen (accepted by the supervisor, handed over unread with
 * PSEP_METRICS_CLIENT) gets its HTTP request parsed here, a counter
 * snapshot is asked of the supervisor (PSEP_METRICS_REQ, a fixed struct
 * back), and the text exposition format (version 0.0.4) is written.
 *
 * Runs in:  lmtpd (run_user, no capabilities, seccomp): the request bytes
 *           are parsed only in this unprivileged process.
 * Trust:    the client is untrusted: the request head is at most
 *           METRICS_HEAD_MAX octets and must arrive within
 *           METRICS_READ_TIMEOUT_S; only "GET /metrics" (or "GET /") is
 *           served, anything else gets 4xx and the connection is closed;
 *           at most METRICS_MAX_CONNS clients per process.  Labels are
 *           bounded sets (outcome classes, roles, replica names from the
 *           config): no user name ever appears.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "lmtpd/server_int.h"
#include "privsep/link.h"
#include "privsep/privsep.h"

#define METRICS_HEAD_MAX 4096u
#define METRICS_READ_TIMEOUT_S 5
#define METRICS_WRITE_TIMEOUT_S 10
#define METRICS_MAX_CONNS 16u

struct mconn {
	struct lmtp_metrics *m;
	struct bufferevent *bev;
	uint64_t id;                  /* the METRICS_REQ in flight, 0 if none */
	bool closing;
	LIST_ENTRY(mconn) entry;
};

struct lmtp_metrics {
	struct lmtp_server *srv;
	struct psep_link *link;
	LIST_HEAD(, mconn) conns;
	unsigned n;
	uint64_t next_id;
};

struct lmtp_metrics *
lmtp_metrics_new(struct lmtp_server *srv, struct psep_link *link)
{
	struct lmtp_metrics *m = xcalloc(1, sizeof(*m));

	m->srv = srv;
	m->link = link;
	LIST_INIT(&m->conns);
	return m;
}

static void
mconn_free(struct mconn *c)
{
	LIST_REMOVE(c, entry);
	c->m->n--;
	bufferevent_free(c->bev);
	free(c);
}

void
lmtp_metrics_free(struct lmtp_metrics **mp)
{
	struct lmtp_metrics *m = *mp;

	if (m == NULL)
		return;
	while (!LIST_EMPTY(&m->conns))
		mconn_free(LIST_FIRST(&m->conns));
	free(m);
	*mp = NULL;
}

/* ---- output ----------------------------------------------------------- */

static void
on_written(struct bufferevent *bev, void *arg)
{
	struct mconn *c = arg;

	(void)bev;
	if (c->closing)
		mconn_free(c);
}

/* Send a whole response and close once it is written. */
static void
respond(struct mconn *c, const char *status, const char *body, size_t len)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);

	evbuffer_add_printf(out, "HTTP/1.0 %s\r\nContent-Type: %s\r\n"
			    "Content-Length: %zu\r\nConnection: close\r\n\r\n", status,
			    status[0] == '2' ? "text/plain; version=0.0.4; charset=utf-8" :
			    "text/plain; charset=utf-8", len);
	evbuffer_add(out, body, len);
	c->closing = true;
	bufferevent_disable(c->bev, EV_READ);
	bufferevent_setcb(c->bev, NULL, on_written, NULL, c);
	bufferevent_enable(c->bev, EV_WRITE);
}

static void
respond_text(struct mconn *c, const char *status, const char *text)
{
	respond(c, status, text, strlen(text));
}

static const char *const outcome_label[PSEP_OUT_COUNT][2] = {
	[PSEP_OUT_OK] = { "2xx", "ok" },
	[PSEP_OUT_TEMP_USERDB] = { "4xx", "userdb" },
	[PSEP_OUT_TEMP_WRITER] = { "4xx", "writer" },
	[PSEP_OUT_TEMP_QUOTA] = { "4xx", "quota" },
	[PSEP_OUT_TEMP_REPLICATION] = { "4xx", "replication" },
	[PSEP_OUT_TEMP_OTHER] = { "4xx", "other" },
	[PSEP_OUT_PERM_NOUSER] = { "5xx", "unknown_user" },
	[PSEP_OUT_PERM_QUOTA] = { "5xx", "quota" },
	[PSEP_OUT_PERM_OTHER] = { "5xx", "other" },
};

static void
head(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A histogram in seconds from microsecond buckets; labels "" or
 * "replica=\"b\"," style (with the trailing comma). */
static void
histogram(FILE *f, const char *name, const char *labels, const uint64_t *buckets,
	  uint64_t count, uint64_t sum_us)
{
	for (unsigned i = 0; i < PSEP_LAT_BUCKETS; i++) {
		uint64_t b = psep_lat_bound_us(i);

		if (b == UINT64_MAX)
			fprintf(f, "%s_bucket{%sle=\"+Inf\"} %llu\n", name, labels,
				(unsigned long long)buckets[i]);
		else
			fprintf(f, "%s_bucket{%sle=\"%g\"} %llu\n", name, labels,
				(double)b / 1e6, (unsigned long long)buckets[i]);
	}
	if (labels[0] != '\0') {
		char l[160];
		size_t n = strlen(labels);

		snprintf(l, sizeof(l), "%.*s", (int)(n - 1), labels);
		fprintf(f, "%s_sum{%s} %.6f\n%s_count{%s} %llu\n", name, l,
			(double)sum_us / 1e6, name, l, (unsigned long long)count);
	} else {
		fprintf(f, "%s_sum %.6f\n%s_count %llu\n", name, (double)sum_us / 1e6,
			name, (unsigned long long)count);
	}
}

static void
put_supervisor(FILE *f, const struct psep_counters *k)
{
	head(f, "stowd_start_time_seconds", "gauge", "Start time of the supervisor (epoch).");
	fprintf(f, "stowd_start_time_seconds %llu\n", (unsigned long long)k->start_time);
	head(f, "stowd_config_generation", "gauge", "Config generation (reloads since start).");
	fprintf(f, "stowd_config_generation %llu\n", (unsigned long long)k->generation);
	head(f, "stowd_deliveries_total", "counter",
	     "Recipients answered, by reply class and reason.");
	for (unsigned i = 0; i < PSEP_OUT_COUNT; i++)
		fprintf(f, "stowd_deliveries_total{code=\"%s\",reason=\"%s\"} %llu\n",
			outcome_label[i][0], outcome_label[i][1],
			(unsigned long long)k->deliveries[i]);
	head(f, "stowd_stored_bytes_total", "counter", "Message bytes stored by deliveries.");
	fprintf(f, "stowd_stored_bytes_total %llu\n", (unsigned long long)k->bytes_stored);
	head(f, "stowd_duplicates_suppressed_total", "counter",
	     "Recipients answered 250 without a save: the message was already saved "
	     "within lmtp_duplicate_window.");
	fprintf(f, "stowd_duplicates_suppressed_total %llu\n",
		(unsigned long long)k->duplicates);
	head(f, "stowd_lmtp_reply_seconds", "histogram",
	     "From the end of the data to the recipient's reply.");
	histogram(f, "stowd_lmtp_reply_seconds", "", k->lmtp.buckets, k->lmtp.count,
		  k->lmtp.sum_us);
	head(f, "stowd_save_seconds", "histogram",
	     "Durable save by a writer (write, fsync, rename, fsync of the directory).");
	histogram(f, "stowd_save_seconds", "", k->save.buckets, k->save.count,
		  k->save.sum_us);
	head(f, "stowd_queue_depth", "gauge", "Writer jobs waiting for a writer.");
	fprintf(f, "stowd_queue_depth %llu\n", (unsigned long long)k->queue_depth);
	head(f, "stowd_writer_jobs_running", "gauge", "Writer jobs in progress.");
	fprintf(f, "stowd_writer_jobs_running %llu\n", (unsigned long long)k->jobs_running);
	head(f, "stowd_writer_deaths_total", "counter", "Writers killed by a signal.");
	for (int s = 1; s < 32; s++)
		if (k->writer_deaths[s] != 0 || s == 9 || s == 31)
			fprintf(f, "stowd_writer_deaths_total{signal=\"%s\"} %llu\n",
				sigabbrev_np(s) != NULL ? sigabbrev_np(s) : "?",
				(unsigned long long)k->writer_deaths[s]);
	head(f, "stowd_seccomp_kills_total", "counter",
	     "Children killed by SIGSYS (a forbidden system call).");
	fprintf(f, "stowd_seccomp_kills_total %llu\n", (unsigned long long)k->seccomp_kills);
	head(f, "stowd_fork_cache_hits_total", "counter", "Fork mode: jobs given to a cached child.");
	fprintf(f, "stowd_fork_cache_hits_total %llu\n", (unsigned long long)k->fork_hits);
	head(f, "stowd_fork_cache_misses_total", "counter", "Fork mode: children forked for a job.");
	fprintf(f, "stowd_fork_cache_misses_total %llu\n", (unsigned long long)k->fork_misses);
	head(f, "stowd_fork_cache_evictions_total", "counter",
	     "Fork mode: idle children stopped to make room.");
	fprintf(f, "stowd_fork_cache_evictions_total %llu\n",
		(unsigned long long)k->fork_evictions);
	head(f, "stowd_fork_cache_size", "gauge", "Fork mode: cached children.");
	fprintf(f, "stowd_fork_cache_size %llu\n", (unsigned long long)k->fork_cache_size);
}

/* A replica name as a label value: the config allows only [A-Za-z0-9._-]
 * there, but escape anyway. */
static void
label_value(char *out, size_t size, const char *s)
{
	size_t n = 0;

	for (; *s != '\0' && n + 3 < size; s++) {
		if (*s == '\\' || *s == '"') {
			out[n++] = '\\';
			out[n++] = *s;
		} else if ((unsigned char)*s >= 0x20 && *s != 0x7f) {
			out[n++] = *s;
		}
	}
	out[n] = '\0';
}

/* A per-replica gauge of the uint64_t field at offset off. */
static void
replica_gauge(FILE *f, const char *name, const char *help, const struct psep_stats_rep *r,
	      char names[][PSEP_REPLICA_NAME_MAX * 2], size_t off)
{
	head(f, name, "gauge", help);
	for (uint32_t i = 0; i < r->n; i++) {
		uint64_t v;

		memcpy(&v, (const char *)&r->r[i] + off, sizeof(v));
		fprintf(f, "%s{replica=\"%s\"} %llu\n", name, names[i], (unsigned long long)v);
	}
}

static void
put_replicas(FILE *f, const struct psep_stats_rep *r, bool ok)
{
	char names[16][PSEP_REPLICA_NAME_MAX * 2];

	head(f, "stowd_replication_stats_up", "gauge",
	     "1 if repl-hook answered for this scrape.");
	fprintf(f, "stowd_replication_stats_up %d\n", ok ? 1 : 0);
	if (!ok)
		return;
	for (uint32_t i = 0; i < r->n; i++)
		label_value(names[i], sizeof(names[i]), r->r[i].name);
	head(f, "stowd_replica_connected", "gauge", "1 while the connection is up.");
	for (uint32_t i = 0; i < r->n; i++)
		fprintf(f, "stowd_replica_connected{replica=\"%s\"} %u\n", names[i],
			r->r[i].connected);
	head(f, "stowd_replica_events_sent_total", "counter", "Journal entries sent.");
	for (uint32_t i = 0; i < r->n; i++)
		fprintf(f, "stowd_replica_events_sent_total{replica=\"%s\"} %llu\n", names[i],
			(unsigned long long)r->r[i].sent);
	head(f, "stowd_replica_events_acked_total", "counter", "Journal entries acknowledged.");
	for (uint32_t i = 0; i < r->n; i++)
		fprintf(f, "stowd_replica_events_acked_total{replica=\"%s\"} %llu\n", names[i],
			(unsigned long long)r->r[i].acks);
	head(f, "stowd_replica_ack_timeouts_total", "counter",
	     "Synchronous acknowledgements that timed out.");
	for (uint32_t i = 0; i < r->n; i++)
		fprintf(f, "stowd_replica_ack_timeouts_total{replica=\"%s\"} %llu\n", names[i],
			(unsigned long long)r->r[i].timeouts);
	head(f, "stowd_replica_sync_repairs_total", "counter", "Changes made by resyncs.");
	for (uint32_t i = 0; i < r->n; i++)
		fprintf(f, "stowd_replica_sync_repairs_total{replica=\"%s\"} %llu\n", names[i],
			(unsigned long long)r->r[i].repairs_total);
	replica_gauge(f, "stowd_replica_journal_bytes", "Journal bytes not acknowledged.",
		      r, names, offsetof(struct psep_replica_stats, journal_bytes));
	replica_gauge(f, "stowd_replica_journal_entries", "Journal entries not acknowledged.",
		      r, names, offsetof(struct psep_replica_stats, journal_entries));
	replica_gauge(f, "stowd_replica_events_in_flight", "Entries sent, not answered.",
		      r, names, offsetof(struct psep_replica_stats, inflight));
	replica_gauge(f, "stowd_replica_dirty_mailboxes", "Mailboxes marked for SYNC.",
		      r, names, offsetof(struct psep_replica_stats, dirty));
	head(f, "stowd_replica_lag_seconds", "gauge",
	     "Age of the oldest unacknowledged journal entry.");
	for (uint32_t i = 0; i < r->n; i++)
		fprintf(f, "stowd_replica_lag_seconds{replica=\"%s\"} %.3f\n", names[i],
			(double)r->r[i].lag_ms / 1000.0);
	head(f, "stowd_replica_ack_seconds", "histogram",
	     "From sending a journal entry to its acknowledgement.");
	for (uint32_t i = 0; i < r->n; i++) {
		char l[160];

		snprintf(l, sizeof(l), "replica=\"%s\",", names[i]);
		histogram(f, "stowd_replica_ack_seconds", l, r->r[i].ack_buckets,
			  r->r[i].ack_count, r->r[i].ack_sum_us);
	}
}

void
lmtp_metrics_reply(struct lmtp_metrics *m, const struct psep_msg *msg)
{
	const struct psep_metrics_rep *rep = &msg->u.metrics_rep;
	struct mconn *c;
	char *buf = NULL;
	size_t len = 0;
	FILE *f;

	LIST_FOREACH(c, &m->conns, entry)
		if (c->id == msg->hdr.id)
			break;
	if (c == NULL)
		return;
	c->id = 0;
	f = open_memstream(&buf, &len);
	if (f == NULL) {
		respond_text(c, "500 Internal Server Error", "out of memory\n");
		return;
	}
	put_supervisor(f, &rep->c);
	put_replicas(f, &rep->repl, rep->c.replica_stats_ok == 1);
	if (fclose(f) != 0) {
		free(buf);
		respond_text(c, "500 Internal Server Error", "cannot format\n");
		return;
	}
	respond(c, "200 OK", buf, len);
	free(buf);
}

/* ---- input ------------------------------------------------------------ */

/* The request line of a complete head in line[]: 0 if it asks for the
 * metrics, else the status to answer. */
static const char *
check_request(const char *line)
{
	const char *path, *ver;

	if (strncmp(line, "GET ", 4) != 0)
		return strncmp(line, "HEAD ", 5) == 0 || strncmp(line, "POST ", 5) == 0 ?
		       "405 Method Not Allowed" : "400 Bad Request";
	path = line + 4;
	ver = strchr(path, ' ');
	if (ver == NULL || strncmp(ver + 1, "HTTP/1.", 7) != 0)
		return "400 Bad Request";
	if ((size_t)(ver - path) == 8 && strncmp(path, "/metrics", 8) == 0)
		return NULL;
	if ((ver - path == 1 && path[0] == '/') || strncmp(path, "/metrics?", 9) == 0)
		return NULL;
	return "404 Not Found";
}

static void
on_read(struct bufferevent *bev, void *arg)
{
	struct mconn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	struct evbuffer_ptr end = evbuffer_search(in, "\r\n\r\n", 4, NULL);
	size_t n = evbuffer_get_length(in);
	struct timeval tv = { .tv_sec = METRICS_READ_TIMEOUT_S, .tv_usec = 0 };
	struct psep_metrics_req req;
	char line[256];
	const char *bad;
	size_t ll;

	if (c->closing || c->id != 0)
		return;
	if (end.pos < 0)
		end = evbuffer_search(in, "\n\n", 2, NULL);
	if (end.pos < 0) {
		if (n > METRICS_HEAD_MAX)
			respond_text(c, "431 Request Header Fields Too Large", "too long\n");
		return;
	}
	ll = evbuffer_copyout(in, line, sizeof(line) - 1 < n ? sizeof(line) - 1 : n);
	line[ll] = '\0';
	line[strcspn(line, "\r\n")] = '\0';
	bad = check_request(line);
	if (bad != NULL) {
		respond_text(c, bad, "only GET /metrics is served here\n");
		return;
	}
	evbuffer_drain(in, n);
	bufferevent_disable(bev, EV_READ);
	memset(&req, 0, sizeof(req));
	c->id = ++c->m->next_id;
	if (psep_link_send(c->m->link, PSEP_METRICS_REQ, c->id, &req, sizeof(req), -1) < 0) {
		c->id = 0;
		respond_text(c, "503 Service Unavailable", "no supervisor\n");
		return;
	}
	/* the answer must come in time too: the read timeout runs on (a
	 * client that sends more is not read until it has its answer) */
	bufferevent_set_timeouts(bev, &tv, NULL);
	bufferevent_enable(bev, EV_READ);
}

static void
on_event(struct bufferevent *bev, short what, void *arg)
{
	struct mconn *c = arg;

	(void)bev;
	if ((what & BEV_EVENT_TIMEOUT) && c->id != 0 && !c->closing) {
		c->id = 0;
		respond_text(c, "503 Service Unavailable", "no answer from stowd\n");
		return;
	}
	mconn_free(c);
}

void
lmtp_metrics_client(struct lmtp_metrics *m, int fd)
{
	struct timeval rt = { .tv_sec = METRICS_READ_TIMEOUT_S, .tv_usec = 0 };
	struct timeval wt = { .tv_sec = METRICS_WRITE_TIMEOUT_S, .tv_usec = 0 };
	struct mconn *c;

	if (m->n >= METRICS_MAX_CONNS || m->srv->shutting_down) {
		close(fd);
		return;
	}
	c = xcalloc(1, sizeof(*c));
	c->m = m;
	c->bev = bufferevent_socket_new(m->srv->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL) {
		close(fd);
		free(c);
		return;
	}
	LIST_INSERT_HEAD(&m->conns, c, entry);
	m->n++;
	bufferevent_setwatermark(c->bev, EV_READ, 0, METRICS_HEAD_MAX + 1);
	bufferevent_setcb(c->bev, on_read, NULL, on_event, c);
	bufferevent_set_timeouts(c->bev, &rt, &wt);
	bufferevent_enable(c->bev, EV_READ);
}
