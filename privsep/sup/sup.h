/* SPDX-License-Identifier: MIT */
/*
 * privsep/sup/sup.h - the supervisor's entry point.
 *
 * Runs in:  the supervisor (root).
 */
#ifndef STOWD_SUP_SUP_H
#define STOWD_SUP_SUP_H

#include <stdbool.h>

#include "policy/policy.h"

#define STOWD_VERSION "0.1.0"

/*
 * What `stowd -t` checks beyond the syntax: run_user exists (and is not
 * root), the userdb can be opened.  Prints "stowd: ..." to stderr and
 * returns -1 on a problem, else 0.
 */
int sup_check_config(const struct policy_settings *set);

/*
 * Run the supervisor until a graceful stop completes.  Takes the contents
 * of *set (left zeroed).  config_path (borrowed for the whole run) is
 * re-read on SIGHUP.  Returns the exit status; start-up errors are fatal.
 */
int sup_run(struct policy_settings *set, const char *config_path, bool required);

#endif
