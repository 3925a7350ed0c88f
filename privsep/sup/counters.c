/* SPDX-License-Identifier: MIT */
/*
 * privsep/sup/counters.c - the supervisor's counters: deliveries by
 * outcome class (a bounded set: no user names), latency histograms,
 * bytes stored, children killed by a signal.  The fork cache counters are
 * counted where the cache decides (dispatch.c).
 *
 * Runs in:  the supervisor.  Calls nothing in the supervisor: the lowest
 *           files count here.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "privsep/sup/sup_int.h"

static enum psep_outcome
outcome_of(const struct dlv_result *r)
{
	if (r->code < 400)
		return PSEP_OUT_OK;
	if (r->code < 500) {
		if (strcmp(r->enhanced, "4.3.0") == 0 || strcmp(r->enhanced, "4.4.3") == 0)
			return PSEP_OUT_TEMP_USERDB;
		if (strncmp(r->enhanced, "4.2.", 4) == 0 || strcmp(r->enhanced, "4.3.1") == 0)
			return PSEP_OUT_TEMP_QUOTA;
		if (strcmp(r->enhanced, "4.4.1") == 0)
			return PSEP_OUT_TEMP_REPLICATION;
		if (strcmp(r->enhanced, "4.3.2") == 0 || strcmp(r->enhanced, "4.4.7") == 0 ||
		    strcmp(r->enhanced, "4.3.5") == 0)
			return PSEP_OUT_TEMP_WRITER;
		return PSEP_OUT_TEMP_OTHER;
	}
	if (strcmp(r->enhanced, "5.1.1") == 0)
		return PSEP_OUT_PERM_NOUSER;
	if (strncmp(r->enhanced, "5.2.", 4) == 0 || strcmp(r->enhanced, "5.3.4") == 0)
		return PSEP_OUT_PERM_QUOTA;
	return PSEP_OUT_PERM_OTHER;
}

void
sup_stats_delivery(struct sup *sup, const struct dlv_result *r, uint64_t lmtp_us,
		   uint64_t bytes)
{
	sup->ctr.deliveries[outcome_of(r)]++;
	if (r->status == DLV_OK)
		sup->ctr.bytes_stored += bytes;
	psep_histogram_add(&sup->ctr.lmtp, lmtp_us);
}

void
sup_stats_save(struct sup *sup, uint64_t us)
{
	psep_histogram_add(&sup->ctr.save, us);
}

void
sup_stats_exit(struct sup *sup, enum psep_role role, int wstatus)
{
	int sig;

	if (!WIFSIGNALED(wstatus))
		return;
	sig = WTERMSIG(wstatus);
	if (sig == SIGSYS)
		sup->ctr.seccomp_kills++;
	if (role == PSEP_ROLE_WRITER_SETEUID || role == PSEP_ROLE_WRITER_CHILD)
		sup->ctr.writer_deaths[sig > 0 && sig < 32 ? sig : 0]++;
}

/* ---- the last delivery of each user (stowctl user) ---------------------- */

#define LASTDLV_MAX 1024u           /* users remembered; the oldest goes */

struct sup_lastdlv {
	char user[PSEP_NAME_MAX];
	char guid[PSEP_GUID_MAX];
	unsigned code;
	time_t when;
};

void
sup_stats_note_delivery(struct sup *sup, const char *user, const char *guid,
			unsigned code)
{
	struct sup_lastdlv *e, *oldest = NULL;
	size_t i;

	if (user == NULL || user[0] == '\0')
		return;
	if (sup->lastdlv == NULL)
		sup->lastdlv = xcalloc(LASTDLV_MAX, sizeof(*sup->lastdlv));
	for (i = 0; i < LASTDLV_MAX; i++) {
		e = &sup->lastdlv[i];
		if (e->when == 0 || strcmp(e->user, user) == 0)
			break;
		if (oldest == NULL || e->when < oldest->when)
			oldest = e;
	}
	if (i == LASTDLV_MAX)
		e = oldest;
	xstrlcpy(e->user, user, sizeof(e->user));
	xstrlcpy(e->guid, guid != NULL ? guid : "", sizeof(e->guid));
	e->code = code;
	e->when = time(NULL);
}

bool
sup_stats_last_delivery(const struct sup *sup, const char *user, time_t *when_out,
			char guid_out[PSEP_GUID_MAX], unsigned *code_out)
{
	for (size_t i = 0; sup->lastdlv != NULL && i < LASTDLV_MAX; i++) {
		const struct sup_lastdlv *e = &sup->lastdlv[i];

		if (e->when != 0 && strcmp(e->user, user) == 0) {
			*when_out = e->when;
			memcpy(guid_out, e->guid, PSEP_GUID_MAX);
			*code_out = e->code;
			return true;
		}
	}
	return false;
}
