/* SPDX-License-Identifier: MIT */
/*
 * policy/policy_int.h - internals of policy/: the settings table, typed
 * value parsing and formatting, the config block table, the passwd-file
 * cache.  Never included from another directory.
 *
 * Runs in:  the supervisor (and tests).
 * Trust:    same as policy.h.
 */
#ifndef STOWD_POLICY_POLICY_INT_H
#define STOWD_POLICY_POLICY_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <sys/types.h>

#include "policy/policy.h"

/* ---- settings table (settings.c) ------------------------------------- */

enum policy_type {
	POLICY_T_STRING = 0,
	POLICY_T_BOOL = 1,
	POLICY_T_UINT = 2,      /* decimal */
	POLICY_T_MODE = 3,      /* octal, printed as 0NNN */
	POLICY_T_SIZE = 4,      /* bytes; K, M, G suffixes */
	POLICY_T_DURATION = 5,  /* stored in ms; ms, s, m, h, d; bare = seconds */
	POLICY_T_ENUM = 6,      /* one of names[], stored as unsigned index */
	POLICY_T_UID_LIST = 7,  /* uids or user names; the one row of this type
				 * fills repl_unix_uids[] and n_repl_unix_uids */
};

struct policy_setting_def;

/* Extra check of a parsed value.  text is the value as written, num the
 * parsed number (numeric types) or 0.  Returns 0 or -1 with *why_out. */
typedef int (*policy_validator)(const struct policy_setting_def *d,
				const char *text, uint64_t num,
				const char **why_out);

/* One row per setting of struct policy_settings. */
struct policy_setting_def {
	const char *name;
	enum policy_type type;
	const char *def;               /* default, as text */
	const char *desc;              /* one line, for `stowd -a` */
	policy_validator validate;     /* NULL = type and range only */
	size_t offset;                 /* into struct policy_settings */
	size_t size;                   /* sizeof the field */
	uint64_t min, max;             /* numeric types: inclusive range */
	const char *const *names;      /* POLICY_T_ENUM: NULL-terminated */
};

extern const struct policy_setting_def policy_setting_defs[];
extern const size_t policy_n_setting_defs;

/* Row for name, or NULL. */
const struct policy_setting_def *policy_setting_find(const char *name);

/*
 * Parse value for row d and store it in s (s initialised, e.g. by
 * policy_settings_defaults; an old string is freed).  Returns 0, or -1 with
 * *why_out (static) and errno ERANGE (value outside the row's range or not
 * one of its names: see policy_setting_allowed_text) or EINVAL.
 */
int policy_setting_apply(struct policy_settings *s, const struct policy_setting_def *d,
			 const char *value, const char **why_out);

/* The canonical text of d's value in s (sizes "50M", durations "5m",
 * modes "0666").  Caller frees. */
char *policy_setting_format(const struct policy_settings *s,
			    const struct policy_setting_def *d);

/* "1..64", ">= 1K", "seteuid, fork" or "" (no limit) into buf. */
void policy_setting_allowed_text(const struct policy_setting_def *d, char *buf,
				 size_t size);

/*
 * Cross-field constraints, checked after the whole file was read.  On a
 * violation returns -1 with *why_out and the rows involved in *a_out and
 * *b_out (indexes into policy_setting_defs); the caller blames the one set
 * last.  Returns 0 if all hold.
 */
int policy_settings_check(const struct policy_settings *s, size_t *a_out,
			  size_t *b_out, const char **why_out);

/* ---- typed values (value.c) ------------------------------------------ */

/* Parse text as a value of type t (numeric types and bool) into *num_out.
 * Returns 0 or -1 with errno EINVAL and *why_out. */
int policy_value_parse(enum policy_type t, const char *text, uint64_t *num_out,
		       const char **why_out);
/* Canonical text of num as type t into buf. */
void policy_value_format(enum policy_type t, uint64_t num, char *buf, size_t size);
/* Parse a plain decimal number (digits only) <= max.  0 or -1 (EINVAL,
 * ERANGE). */
int policy_parse_decimal(const char *text, uint64_t max, uint64_t *num_out);

/* ---- config blocks (config.c) ---------------------------------------- */

enum policy_block_label {
	POLICY_LABEL_NONE = 0,      /* `name {` */
	POLICY_LABEL_REQUIRED = 1,  /* `name LABEL {` */
	POLICY_LABEL_OPTIONAL = 2,
};

/*
 * One kind of `name [label] { key = value ... }` block.  Callbacks return 0
 * or -1 with *why_out; set() returns -1 with errno ENOENT for an unknown key.
 * arg is the pointer given to policy_config_load_blocks.  Blocks do not
 * nest.  A table ends with a row whose name is NULL.
 */
struct policy_block_def {
	const char *name;
	enum policy_block_label label;
	int (*open)(struct policy_settings *s, void *arg, const char *label,
		    const char **why_out);
	int (*set)(struct policy_settings *s, void *arg, const char *key,
		   const char *value, const char **why_out);
	int (*close)(struct policy_settings *s, void *arg, const char **why_out);
};

/* The block kinds of stowd.conf: `replica NAME { address = ... }`. */
extern const struct policy_block_def policy_blocks[];

/* Maximum nesting of !include. */
#define POLICY_INCLUDE_MAX 8
/* Longest config line accepted. */
#define POLICY_LINE_MAX 65536

/* policy_config_load with another block table (tests, future callers). */
int policy_config_load_blocks(const char *path, bool required,
			      struct policy_settings *s,
			      const struct policy_block_def *blocks, void *arg,
			      char **err_out);

/* ---- replication values (replication.c) ------------------------------ */

/*
 * Parse a blank-separated list of uids and user names (resolved now with
 * getpwnam) into uids[0..*n_out), at most POLICY_MAX_REPL_UIDS, no
 * duplicates, never uid 4294967295.  "" is the empty list.  Returns 0 or -1
 * with errno EINVAL and *why_out.
 */
int policy_uid_list_parse(const char *text, uid_t uids[POLICY_MAX_REPL_UIDS],
			  size_t *n_out, const char **why_out);
/* The list as decimal uids separated by single spaces.  Caller frees. */
char *policy_uid_list_format(const uid_t *uids, size_t n);

/*
 * Parse a replica address "tcp:HOST:PORT" (HOST a DNS name, an IPv4
 * literal or [IPv6]) into r->address, r->host (no brackets) and r->port.
 * Returns 0 or -1 with errno EINVAL and *why_out.
 */
int policy_replica_address_parse(const char *text, struct policy_replica *r,
				 const char **why_out);

/* The `replica` block callbacks (rows of policy_blocks). */
int policy_replica_open(struct policy_settings *s, void *arg, const char *label,
			const char **why_out);
int policy_replica_set(struct policy_settings *s, void *arg, const char *key,
		       const char *value, const char **why_out);
int policy_replica_close(struct policy_settings *s, void *arg,
			 const char **why_out);

/* ---- passwd-file (passwd_file.c) ------------------------------------- */

struct policy_pwf_entry {
	char *key;        /* user field, ASCII lower-cased */
	char *home;
	char *quota_rule; /* extra field userdb_quota_rule=, or NULL */
	uid_t uid;
	gid_t gid;
	unsigned line;
};

/* The parsed file and the identity of what was read. */
struct policy_pwf {
	char *path;
	struct policy_pwf_entry *v;  /* sorted by key, unique */
	size_t n;
	bool loaded;
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime;
};

/* (Re)read pwf->path if it is not loaded or changed since.  Returns 0, or
 * -1 with errno if the file cannot be read (the old contents are dropped). */
int policy_pwf_refresh(struct policy_pwf *pwf);
/* Entry for key (already lower-cased), or NULL.  Borrowed, valid until the
 * next refresh. */
const struct policy_pwf_entry *policy_pwf_find(const struct policy_pwf *pwf,
					      const char *key);
/* Free the entries and the path. */
void policy_pwf_clear(struct policy_pwf *pwf);

#endif
