/* SPDX-License-Identifier: MIT */
/*
 * policy/value.c - typed setting values: parse and print numbers, octal
 * modes, sizes (K/M/G) and durations (ms/s/m/h/d; printed without d),
 * booleans.
 *
 * Runs in:  the supervisor (config parser), tests.
 * Trust:    text comes from the admin's config file; every number is
 *           checked for overflow, nothing else is accepted.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "policy/policy_int.h"

struct unit {
	const char *name;
	uint64_t mult;
};

/* Accepted suffixes; a suffix must match whole (after optional blanks). */
static const struct unit size_units[] = {
	{ "", 1 },
	{ "b", 1 },
	{ "k", 1024 }, { "kb", 1024 },
	{ "m", 1024 * 1024 }, { "mb", 1024 * 1024 },
	{ "g", 1024 * 1024 * 1024 }, { "gb", 1024 * 1024 * 1024 },
	{ NULL, 0 },
};

static const struct unit duration_units[] = {
	{ "", 1000 },
	{ "ms", 1 }, { "msec", 1 }, { "msecs", 1 },
	{ "s", 1000 }, { "sec", 1000 }, { "secs", 1000 },
	{ "m", 60 * 1000 }, { "min", 60 * 1000 }, { "mins", 60 * 1000 },
	{ "h", 3600 * 1000 }, { "hour", 3600 * 1000 }, { "hours", 3600 * 1000 },
	{ "d", 86400 * 1000 }, { "day", 86400 * 1000 }, { "days", 86400 * 1000 },
	{ NULL, 0 },
};

/* Canonical output: the largest unit that divides the value exactly. */
static const struct unit size_out[] = {
	{ "G", 1024 * 1024 * 1024 }, { "M", 1024 * 1024 }, { "K", 1024 }, { "", 1 },
};
static const struct unit duration_out[] = {
	{ "h", 3600 * 1000 }, { "m", 60 * 1000 }, { "s", 1000 }, { "ms", 1 },
};

/* Leading digits of text in base (8 or 10) into *num_out; *end_out points
 * after them.  -1 with EINVAL (no digit) or ERANGE (overflow). */
static int
parse_digits(const char *text, unsigned base, uint64_t *num_out, const char **end_out)
{
	const char *p = text;
	uint64_t n = 0;

	while (*p >= '0' && *p < (char)('0' + base)) {
		unsigned digit = (unsigned)(*p - '0');

		if (n > (UINT64_MAX - digit) / base) {
			errno = ERANGE;
			return -1;
		}
		n = n * base + digit;
		p++;
	}
	if (p == text) {
		errno = EINVAL;
		return -1;
	}
	*num_out = n;
	*end_out = p;
	return 0;
}

int
policy_parse_decimal(const char *text, uint64_t max, uint64_t *num_out)
{
	const char *end;
	uint64_t n;

	if (parse_digits(text, 10, &n, &end) < 0)
		return -1;
	if (*end != '\0') {
		errno = EINVAL;
		return -1;
	}
	if (n > max) {
		errno = ERANGE;
		return -1;
	}
	*num_out = n;
	return 0;
}

static int
parse_with_unit(const char *text, const struct unit *units, uint64_t *num_out,
		const char **why_out)
{
	const char *p;
	uint64_t n;
	size_t i;

	if (parse_digits(text, 10, &n, &p) < 0) {
		*why_out = errno == ERANGE ? "number too large" : "not a number";
		errno = EINVAL;
		return -1;
	}
	while (*p == ' ' || *p == '\t')
		p++;
	for (i = 0; units[i].name != NULL; i++) {
		bool same = units == size_units ? strcasecmp(p, units[i].name) == 0
						: strcmp(p, units[i].name) == 0;

		if (!same)
			continue;
		if (n > UINT64_MAX / units[i].mult) {
			*why_out = "number too large";
			errno = EINVAL;
			return -1;
		}
		*num_out = n * units[i].mult;
		return 0;
	}
	*why_out = units == size_units ? "unknown unit (use K, M or G)"
				       : "unknown unit (use ms, s, m, h or d)";
	errno = EINVAL;
	return -1;
}

static int
parse_plain(const char *text, unsigned base, uint64_t *num_out, const char **why_out)
{
	const char *end;

	if (parse_digits(text, base, num_out, &end) < 0) {
		if (errno == ERANGE)
			*why_out = "number too large";
		else
			*why_out = base == 8 ? "not an octal mode" : "not a number";
		errno = EINVAL;
		return -1;
	}
	if (*end != '\0') {
		*why_out = base == 8 ? "not an octal mode" : "not a number";
		errno = EINVAL;
		return -1;
	}
	return 0;
}

int
policy_value_parse(enum policy_type t, const char *text, uint64_t *num_out,
		   const char **why_out)
{
	switch (t) {
	case POLICY_T_BOOL:
		if (strcmp(text, "yes") == 0 || strcmp(text, "no") == 0) {
			*num_out = text[0] == 'y';
			return 0;
		}
		*why_out = "expected yes or no";
		errno = EINVAL;
		return -1;
	case POLICY_T_UINT:
		return parse_plain(text, 10, num_out, why_out);
	case POLICY_T_MODE:
		return parse_plain(text, 8, num_out, why_out);
	case POLICY_T_SIZE:
		/* Size units in any case; duration units in lower case only
		 * ("M" is a megabyte, never a minute). */
		return parse_with_unit(text, size_units, num_out, why_out);
	case POLICY_T_DURATION:
		return parse_with_unit(text, duration_units, num_out, why_out);
	case POLICY_T_STRING:
	case POLICY_T_ENUM:
	case POLICY_T_UID_LIST:
		break;
	}
	*why_out = "not a numeric setting";
	errno = EINVAL;
	return -1;
}

static void
format_units(const struct unit *units, size_t n_units, uint64_t num, char *buf,
	     size_t size)
{
	size_t i;

	for (i = 0; i + 1 < n_units; i++)
		if (num != 0 && num % units[i].mult == 0)
			break;
	snprintf(buf, size, "%" PRIu64 "%s", num / units[i].mult, units[i].name);
}

void
policy_value_format(enum policy_type t, uint64_t num, char *buf, size_t size)
{
	switch (t) {
	case POLICY_T_BOOL:
		snprintf(buf, size, "%s", num ? "yes" : "no");
		return;
	case POLICY_T_MODE:
		snprintf(buf, size, "%04" PRIo64, num);
		return;
	case POLICY_T_SIZE:
		format_units(size_out, sizeof(size_out) / sizeof(size_out[0]), num,
			     buf, size);
		return;
	case POLICY_T_DURATION:
		format_units(duration_out,
			     sizeof(duration_out) / sizeof(duration_out[0]), num,
			     buf, size);
		if (num == 0)
			snprintf(buf, size, "0s");
		return;
	case POLICY_T_UINT:
	case POLICY_T_STRING:
	case POLICY_T_ENUM:
	case POLICY_T_UID_LIST:
		break;
	}
	snprintf(buf, size, "%" PRIu64, num);
}
