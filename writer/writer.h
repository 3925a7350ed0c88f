/* SPDX-License-Identifier: MIT */
/*
 * writer/writer.h - the mailbox writer: receives PSEP_WRITE_REQ, saves the
 * message with the target user's credentials, answers PSEP_WRITE_REP.
 *
 * Runs in:  writer-seteuid (real and saved uid 0, only CAP_SETUID/
 *           CAP_SETGID, euid switched from user to user per request, never
 *           back to 0) or writer-child (one uid for life).
 * Trust:    requests come from the supervisor and are validated again here
 *           (uid range); the Maildir is user-controlled (see storage/).
 */
#ifndef STOWD_WRITER_WRITER_H
#define STOWD_WRITER_WRITER_H

/* Entry of a seteuid worker.  arg: borrowed const struct policy_settings *. */
int writer_seteuid_main(void *arg, int ipc);

/* Entry of a fork-mode child: its uid/gid/groups are the target user's for
 * life; it serves only requests for that uid. */
int writer_child_main(void *arg, int ipc);

#endif
