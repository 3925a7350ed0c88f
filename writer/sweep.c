/* SPDX-License-Identifier: MIT */
/*
 * writer/sweep.c - when to sweep a Maildir's tmp/ (storage/sweep.c): the
 * first time this writer touches a Maildir after it started, then at most
 * once a day per Maildir, and at most one sweep per second in this process
 * (a Maildir skipped for that is swept when it is next touched).  Runs
 * after the request's reply is sent, so a sweep never holds back a reply
 * (nor READY: writers answer HELLO before any request).
 *
 * Runs in:  writer-seteuid and writer-child, under seccomp, with the
 *           user's credentials (still in force after the request, before
 *           its ops->leave).
 * Trust:    the Maildir is user-controlled: see storage/sweep.c.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "privsep/privsep.h"
#include "storage/storage.h"
#include "writer/writer_int.h"

#define SWEEP_SLOTS 64               /* Maildirs remembered */
#define SWEEP_EVERY_SEC (24 * 3600)  /* per Maildir */
#define SWEEP_GAP_MS 1000            /* between two sweeps of this process */
#define SWEEP_MAX_REMOVALS 2000      /* entries one sweep may remove */

struct sweep_slot {
	uint64_t key;                /* 0: free */
	int64_t at_ms;               /* monotonic time of its last sweep */
};

static struct sweep_slot slots[SWEEP_SLOTS];
static int64_t last_sweep_ms = INT64_MIN / 2;

static int64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* FNV-1a of uid, base and rel; never 0. */
static uint64_t
sweep_key(uint32_t uid, const char *base, const char *rel)
{
	uint64_t h = 1469598103934665603ull;
	const char *parts[2] = { base, rel };

	h = (h ^ uid) * 1099511628211ull;
	for (int i = 0; i < 2; i++) {
		for (const char *p = parts[i]; *p != '\0'; p++)
			h = (h ^ (unsigned char)*p) * 1099511628211ull;
		h = (h ^ '/') * 1099511628211ull;
	}
	return h != 0 ? h : 1;
}

/* The slot of key (or the least recently swept one, cleared); *due says
 * whether its Maildir is to be swept now. */
static struct sweep_slot *
sweep_slot(uint64_t key, int64_t now, bool *due)
{
	struct sweep_slot *old = &slots[0];

	for (size_t i = 0; i < SWEEP_SLOTS; i++) {
		if (slots[i].key == key) {
			*due = now - slots[i].at_ms >= (int64_t)SWEEP_EVERY_SEC * 1000;
			return &slots[i];
		}
		if (slots[i].key == 0 || slots[i].at_ms < old->at_ms)
			old = &slots[i];
	}
	old->key = 0;
	*due = true;
	return old;
}

void
writer_sweep_maybe(const struct writer_sweep_who *w)
{
	uint64_t key = sweep_key(w->uid, w->mail_base, w->mail_rel);
	int64_t now = mono_ms();
	struct store_sweep_stats st;
	struct sweep_slot *slot;
	bool due;

	slot = sweep_slot(key, now, &due);
	if (!due || now - last_sweep_ms < SWEEP_GAP_MS)
		return;
	last_sweep_ms = now;
	slot->key = key;
	slot->at_ms = now;
	if (store_sweep(w->mail_base, w->mail_rel, (uid_t)w->uid, time(NULL),
			SWEEP_MAX_REMOVALS, &st) < 0)
		log_warn("uid=%u sweep of tmp/ failed: %s", (unsigned)w->uid,
			 strerror(errno));
	else if (st.files > 0 || st.trees > 0)
		log_info("uid=%u swept tmp/: stale files=%u stowd-deleted trees=%u",
			 (unsigned)w->uid, st.files, st.trees);
}
