/* SPDX-License-Identifier: MIT */
/*
 * storage/name.c - unique Maildir file names and Maildir++ folder names.
 *
 * Runs in:  anywhere; pure string code, no syscalls.
 * Trust:    mailbox names and file names come from outside (IMAP clients via
 *           replication, directory listings): everything is length-checked,
 *           and a mailbox name can never address anything but one direct
 *           child of the Maildir root.
 * Format:   "<sec>.M<usec>P<pid>Q<seq>G<guid>.<host>,S=<size>,W=<vsize>",
 *           usec zero-padded to 6 digits; in host '/' is written \057, ':'
 *           \072 and ',' \054 (',' would end the host field).  A name in
 *           cur/ may carry ":2,<flags>" after that.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "storage/storage_int.h"

/* Append host to out at *pos with '/', ':' and ',' escaped.  -1 if full. */
static int
name_put_host(const char *host, char *out, size_t out_size, size_t *pos)
{
	const char *esc;
	size_t n;

	for (; *host != '\0'; host++) {
		unsigned char c = (unsigned char)*host;

		if (c == '/')
			esc = "\\057";
		else if (c == ':')
			esc = "\\072";
		else if (c == ',')
			esc = "\\054";
		else
			esc = NULL;
		n = esc != NULL ? 4 : 1;
		if (*pos + n >= out_size)
			return -1;
		if (esc != NULL)
			memcpy(out + *pos, esc, 4);
		else
			out[*pos] = (char)c;
		*pos += n;
	}
	out[*pos] = '\0';
	return 0;
}

static bool
name_host_valid(const char *host)
{
	if (host == NULL || *host == '\0')
		return false;
	for (; *host != '\0'; host++) {
		unsigned char c = (unsigned char)*host;

		if (c < 0x20 || c == 0x7f)
			return false;
	}
	return true;
}

int
store_name_format_base(const struct store_name_parts *p, char *out,
		       size_t out_size)
{
	size_t pos, max = out_size;
	int n;

	if (p == NULL || out == NULL || out_size == 0 ||
	    !store_guid_valid(p->guid) || !name_host_valid(p->host) ||
	    p->usec < 0 || p->usec > 999999 || p->sec < 0 || p->pid < 0) {
		errno = EINVAL;
		return -1;
	}
	if (max > NAME_MAX + 1)
		max = NAME_MAX + 1;
	n = snprintf(out, max, "%lld.M%06ldP%ldQ%luG%s.", (long long)p->sec,
		     p->usec, (long)p->pid, p->seq, p->guid);
	if (n < 0 || (size_t)n >= max)
		goto toolong;
	pos = (size_t)n;
	if (name_put_host(p->host, out, max, &pos) < 0)
		goto toolong;
	return 0;
toolong:
	out[0] = '\0';
	errno = ENAMETOOLONG;
	return -1;
}

int
store_name_format(const struct store_name_parts *p, char *out, size_t out_size)
{
	size_t pos, max = out_size;
	int n;

	if (store_name_format_base(p, out, out_size) < 0)
		return -1;
	if (max > NAME_MAX + 1)
		max = NAME_MAX + 1;
	pos = strlen(out);
	n = snprintf(out + pos, max - pos, ",S=%llu,W=%llu",
		     (unsigned long long)p->size, (unsigned long long)p->vsize);
	if (n < 0 || (size_t)n >= max - pos) {
		out[0] = '\0';
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

/* Parse decimal digits [s, end) into *v; false if empty, junk or overflow. */
static bool
name_parse_u64(const char *s, const char *end, uint64_t *v)
{
	uint64_t r = 0;

	if (s == end)
		return false;
	for (; s < end; s++) {
		if (*s < '0' || *s > '9' ||
		    r > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
			return false;
		r = r * 10 + (uint64_t)(*s - '0');
	}
	*v = r;
	return true;
}

/* The G<guid> at the end of the second dot-separated field, or "". */
static void
name_parse_guid(const char *name, const char *end,
		char guid_out[STORE_GUID_HEX + 1])
{
	const char *f = memchr(name, '.', (size_t)(end - name));
	const char *g;

	guid_out[0] = '\0';
	if (f == NULL)
		return;
	f++;
	g = memchr(f, '.', (size_t)(end - f));
	if (g == NULL || g - f < STORE_GUID_HEX + 1 ||
	    g[-STORE_GUID_HEX - 1] != 'G')
		return;
	memcpy(guid_out, g - STORE_GUID_HEX, STORE_GUID_HEX);
	guid_out[STORE_GUID_HEX] = '\0';
	if (!store_guid_valid(guid_out))
		guid_out[0] = '\0';
}

int
store_name_parse(const char *name, uint64_t *size_out, uint64_t *vsize_out,
		 char guid_out[STORE_GUID_HEX + 1])
{
	const char *end, *f, *fe;
	uint64_t size = 0, vsize = 0;
	bool have_s = false, have_w = false;

	if (name == NULL)
		goto bad;
	end = strchr(name, ':');
	if (end == NULL)
		end = name + strlen(name);
	f = memchr(name, ',', (size_t)(end - name));
	while (f != NULL && f < end) {
		f++;
		fe = memchr(f, ',', (size_t)(end - f));
		if (fe == NULL)
			fe = end;
		if (!have_s && fe - f > 2 && strncmp(f, "S=", 2) == 0)
			have_s = name_parse_u64(f + 2, fe, &size);
		else if (!have_w && fe - f > 2 && strncmp(f, "W=", 2) == 0)
			have_w = name_parse_u64(f + 2, fe, &vsize);
		f = fe;
	}
	if (!have_s)
		goto bad;
	if (size_out != NULL)
		*size_out = size;
	if (vsize_out != NULL)
		*vsize_out = have_w ? vsize : 0;
	if (guid_out != NULL)
		name_parse_guid(name, end, guid_out);
	return 0;
bad:
	errno = EINVAL;
	return -1;
}

/* Map one byte of a mailbox name; -1 for a byte never allowed. */
static int
mailbox_map_char(unsigned char c)
{
	if (c < 0x20 || c == 0x7f)
		return -1;
	return c == '/' ? '.' : c;
}

int
store_mailbox_dir(const char *mailbox, char *out, size_t out_size)
{
	size_t len, i;
	int c;

	if (mailbox == NULL || out == NULL || out_size == 0)
		goto bad;
	if (strcasecmp(mailbox, "INBOX") == 0) {
		out[0] = '\0';
		return 0;
	}
	len = strlen(mailbox);
	if (len == 0 || len + 2 > out_size || len + 1 > NAME_MAX ||
	    mailbox[0] == '.' || mailbox[0] == '/' || mailbox[len - 1] == '/' ||
	    mailbox[len - 1] == '.')
		goto bad;
	out[0] = '.';
	for (i = 0; i < len; i++) {
		c = mailbox_map_char((unsigned char)mailbox[i]);
		if (c < 0 || (c == '.' && out[i] == '.'))
			goto bad;
		out[i + 1] = (char)c;
	}
	out[len + 1] = '\0';
	return 0;
bad:
	if (out != NULL && out_size > 0)
		out[0] = '\0';
	errno = EINVAL;
	return -1;
}
