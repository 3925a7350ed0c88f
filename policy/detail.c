/* SPDX-License-Identifier: MIT */
/*
 * policy/detail.c - the mailbox an address detail names
 * (lmtp_save_to_detail_mailbox): "alice+lists@example.com" saves into the
 * Maildir++ folder "lists".  The detail is checked (no '/', no empty
 * hierarchy level such as "..", no control byte, no IMAP wildcard) and,
 * being UTF-8, turned into the modified UTF-7 of RFC 3501 5.1.3 that
 * Dovecot uses for folder names on disk with the Maildir++ layout.
 *
 * Runs in:  the supervisor (pure code).
 * Trust:    the detail comes from the network through lmtpd: untrusted.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "policy/policy.h"

static const char b64[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

struct out {
	char *p;
	size_t size, len;
	bool full;
};

static void
put(struct out *o, char c)
{
	if (o->len + 1 >= o->size) {
		o->full = true;
		return;
	}
	o->p[o->len++] = c;
	o->p[o->len] = '\0';
}

/* Decode one UTF-8 sequence at s (strict: no overlong form, no surrogate,
 * at most U+10FFFF).  Returns its length and *cp, or 0 if invalid. */
static size_t
utf8_decode(const unsigned char *s, uint32_t *cp)
{
	size_t n, i;
	uint32_t c, min;

	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	}
	if ((s[0] & 0xe0) == 0xc0) {
		n = 2, c = s[0] & 0x1f, min = 0x80;
	} else if ((s[0] & 0xf0) == 0xe0) {
		n = 3, c = s[0] & 0x0f, min = 0x800;
	} else if ((s[0] & 0xf8) == 0xf0) {
		n = 4, c = s[0] & 0x07, min = 0x10000;
	} else {
		return 0;
	}
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = (c << 6) | (s[i] & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return n;
}

/* Encode the non-ASCII run s[0..*used) as "&<base64 of UTF-16BE>-". */
static int
encode_run(const unsigned char *s, size_t *used, struct out *o)
{
	uint32_t bits = 0, cp;
	unsigned nbits = 0;
	size_t i = 0, n;

	put(o, '&');
	while (s[i] >= 0x80) {
		uint16_t u[2];
		size_t k, nu = 1;

		n = utf8_decode(s + i, &cp);
		if (n == 0)
			return -1;
		i += n;
		if (cp >= 0x10000) {
			cp -= 0x10000;
			u[0] = (uint16_t)(0xd800 | (cp >> 10));
			u[1] = (uint16_t)(0xdc00 | (cp & 0x3ff));
			nu = 2;
		} else {
			u[0] = (uint16_t)cp;
		}
		for (k = 0; k < nu; k++) {
			bits = (bits << 16) | u[k];
			nbits += 16;
			while (nbits >= 6) {
				nbits -= 6;
				put(o, b64[(bits >> nbits) & 0x3f]);
			}
		}
	}
	if (nbits > 0)
		put(o, b64[(bits << (6 - nbits)) & 0x3f]);
	put(o, '-');
	*used = i;
	return 0;
}

int
policy_detail_mailbox(const char *detail, char *out, size_t out_size,
		      const char **why_out)
{
	const unsigned char *s = (const unsigned char *)detail;
	struct out o = { .p = out, .size = out_size };
	size_t i = 0, used;

	if (out_size == 0) {
		errno = ENAMETOOLONG;
		*why_out = "no room";
		return -1;
	}
	out[0] = '\0';
	if (detail[0] == '\0' || strcasecmp(detail, "INBOX") == 0) {
		put(&o, 'I'), put(&o, 'N'), put(&o, 'B'), put(&o, 'O'), put(&o, 'X');
		return 0;
	}
	if (detail[0] == '.' || detail[strlen(detail) - 1] == '.' ||
	    strstr(detail, "..") != NULL) {
		*why_out = "empty hierarchy level ('.' at an end, or \"..\")";
		goto bad;
	}
	while (s[i] != '\0') {
		if (s[i] < 0x20 || s[i] == 0x7f || s[i] == '/' || s[i] == '\\' ||
		    s[i] == '*' || s[i] == '%' || s[i] == '~') {
			*why_out = "control byte, '/', '\\', '~' or wildcard in the detail";
			goto bad;
		}
		if (s[i] >= 0x80) {
			if (encode_run(s + i, &used, &o) < 0) {
				*why_out = "detail is not valid UTF-8";
				goto bad;
			}
			i += used;
			continue;
		}
		put(&o, (char)s[i]);
		if (s[i] == '&')
			put(&o, '-');
		i++;
	}
	if (!o.full)
		return 0;
	*why_out = "detail too long for a mailbox name";
bad:
	out[0] = '\0';
	errno = EINVAL;
	return -1;
}
