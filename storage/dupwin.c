/* SPDX-License-Identifier: MIT */
/*
 * storage/dupwin.c - the duplicate window of a mailbox
 * (lmtp_duplicate_window): the keys (Message-ID and a digest of the body)
 * of the messages saved in the last window seconds, with their GUIDs, in
 * the file "stowd-duplicates" of the mailbox directory, so that an MTA
 * retrying a message whose 250 it lost gets the GUID already stored
 * instead of a second copy.
 *
 * Runs in:  a writer, with the user's credentials.
 * Trust:    the file is user-writable: opened O_NOFOLLOW, required to be a
 *           regular file, read up to STORE_DUP_MAX_FILE octets; malformed
 *           lines are ignored.  A user who damages it only gets duplicates
 *           of their own mail.
 * Order:    store_dup_open takes an exclusive flock (bounded wait) that is
 *           held over the look-up, the save and the record, so that two
 *           copies of one message arriving together are saved once.  The
 *           file is compacted in place (its lock stays valid): a crash in
 *           the middle costs at most entries, i.e. duplicates.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "storage/storage.h"

#define HDR_MAX (64 * 1024)        /* Message-ID is looked for in these */
#define CHUNK (64 * 1024)
#define LOCK_TRIES 40              /* 40 x 50 ms */
#define LINE_MAX_LEN 128

/* Copy the unfolded, trimmed value of the header field starting at h[i]
 * (after its name and colon) up to eol and its continuation lines into
 * out; returns the end of the field. */
static size_t
field_value(const char *h, size_t n, size_t i, size_t eol, char *out, size_t size)
{
	size_t o = 0;

	for (;;) {
		for (; i < eol; i++)
			if (h[i] != '\r' && o + 1 < size &&
			    !((h[i] == ' ' || h[i] == '\t') && o == 0))
				out[o++] = h[i];
		if (eol + 1 >= n || (h[eol + 1] != ' ' && h[eol + 1] != '\t'))
			break;
		i = eol + 1;
		for (eol = i; eol < n && h[eol] != '\n'; eol++)
			;
	}
	while (o > 0 && (out[o - 1] == ' ' || out[o - 1] == '\t'))
		o--;
	out[o] = '\0';
	return eol;
}

/* Scan the header block h[0..n): the first Message-ID value into out
 * ("" if none) and the offset of the body after the empty line into
 * *body_off (0 if the header does not end within n octets). */
static void
scan_header(const char *h, size_t n, char *out, size_t size, size_t *body_off)
{
	size_t i = 0;

	out[0] = '\0';
	*body_off = 0;
	while (i < n) {
		size_t eol = i;

		while (eol < n && h[eol] != '\n')
			eol++;
		if (eol == n)
			return;                 /* cut off: no end of header seen */
		if (eol == i || (eol == i + 1 && h[i] == '\r')) {
			*body_off = eol + 1;
			return;
		}
		if (out[0] == '\0' && eol - i >= 11 &&
		    strncasecmp(h + i, "message-id:", 11) == 0)
			eol = field_value(h, n, i + 11, eol, out, size);
		i = eol + 1;
	}
}

int
store_dup_key(int body_fd, uint64_t body_size, char key[STORE_DUP_KEY_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	char *buf = malloc(CHUNK), id[1000];
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0, i;
	EVP_MD_CTX *ctx = NULL;
	uint64_t off = 0;
	size_t hdr_end = 0;
	ssize_t n;
	int ret = -1;

	if (buf == NULL)
		return -1;
	n = pread(body_fd, buf, body_size < HDR_MAX ? (size_t)body_size : HDR_MAX, 0);
	if (n < 0)
		goto out;
	scan_header(buf, (size_t)n, id, sizeof(id), &hdr_end);
	if (id[0] == '\0') {
		errno = ENOENT;
		goto out;
	}
	/* the text after the header: the same for the message as received
	 * and as stored with trace headers (a replicated SAVE) */
	off = hdr_end;
	ctx = EVP_MD_CTX_new();
	if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1 ||
	    EVP_DigestUpdate(ctx, id, strlen(id) + 1) != 1) {
		errno = ENOMEM;
		goto out;
	}
	while (off < body_size) {
		n = pread(body_fd, buf, CHUNK, (off_t)off);
		if (n <= 0) {
			if (n == 0)
				errno = EIO;
			goto out;
		}
		if (EVP_DigestUpdate(ctx, buf, (size_t)n) != 1) {
			errno = ENOMEM;
			goto out;
		}
		off += (uint64_t)n;
	}
	if (EVP_DigestFinal_ex(ctx, md, &mdlen) != 1 || mdlen * 2 != STORE_DUP_KEY_LEN) {
		errno = EINVAL;
		goto out;
	}
	for (i = 0; i < mdlen; i++) {
		key[2 * i] = hex[md[i] >> 4];
		key[2 * i + 1] = hex[md[i] & 15];
	}
	key[STORE_DUP_KEY_LEN] = '\0';
	ret = 0;
out:
	EVP_MD_CTX_free(ctx);
	free(buf);
	return ret;
}

int
store_dup_open(int box_fd)
{
	struct timespec ts = { .tv_sec = 0, .tv_nsec = 50L * 1000 * 1000 };
	struct stat st;
	int fd, i, saved;

	fd = openat(box_fd, STORE_DUP_FILE,
		    O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	if (fstat(fd, &st) < 0)
		goto fail;
	if (!S_ISREG(st.st_mode)) {
		errno = EINVAL;
		goto fail;
	}
	for (i = 0; flock(fd, LOCK_EX | LOCK_NB) < 0; i++) {
		if (errno != EWOULDBLOCK || i == LOCK_TRIES)
			goto fail;
		nanosleep(&ts, NULL);
	}
	return fd;
fail:
	saved = errno;
	close(fd);
	errno = saved;
	return -1;
}

/* The whole file (at most STORE_DUP_MAX_FILE octets) in a NUL-terminated
 * malloc'd buffer; *len_out its length. */
static char *
read_all(int fd, size_t *len_out)
{
	struct stat st;
	char *buf;
	size_t len;
	ssize_t n;

	if (fstat(fd, &st) < 0)
		return NULL;
	len = (size_t)st.st_size < STORE_DUP_MAX_FILE ? (size_t)st.st_size
						     : STORE_DUP_MAX_FILE;
	buf = malloc(len + 1);
	if (buf == NULL)
		return NULL;
	n = pread(fd, buf, len, 0);
	if (n < 0) {
		free(buf);
		return NULL;
	}
	buf[n] = '\0';
	*len_out = (size_t)n;
	return buf;
}

/* Parse "<key> <time> <guid>" at line (up to '\n'); false if malformed. */
static bool
parse_line(const char *line, char *key, int64_t *t, char *guid)
{
	char k[STORE_DUP_KEY_LEN + 2], g[STORE_GUID_HEX + 2];
	long long tt;

	if (sscanf(line, "%65s %lld %33s", k, &tt, g) != 3 ||
	    strlen(k) != STORE_DUP_KEY_LEN || !store_guid_valid(g))
		return false;
	memcpy(key, k, STORE_DUP_KEY_LEN + 1);
	memcpy(guid, g, STORE_GUID_HEX + 1);
	*t = tt;
	return true;
}

int
store_dup_find(int fd, const char *key, time_t now, uint64_t window_secs,
	       char guid_out[STORE_GUID_HEX + 1])
{
	char k[STORE_DUP_KEY_LEN + 1], g[STORE_GUID_HEX + 1], *buf, *p, *nl;
	size_t len = 0;
	int64_t t;
	int ret = 0;

	buf = read_all(fd, &len);
	if (buf == NULL)
		return -1;
	for (p = buf; p < buf + len; p = nl + 1) {
		nl = memchr(p, '\n', (size_t)(buf + len - p));
		if (nl == NULL)
			break;              /* a torn last line */
		*nl = '\0';            /* a NUL inside ends the line early */
		if (parse_line(p, k, &t, g) && strcmp(k, key) == 0 &&
		    t <= (int64_t)now && (uint64_t)(now - t) <= window_secs) {
			memcpy(guid_out, g, sizeof(g));
			ret = 1;            /* the newest match wins: keep going */
		}
	}
	free(buf);
	return ret;
}

/* Rewrite the file in place with the entries still in the window, the
 * newest STORE_DUP_MAX / 2 at most. */
static int
compact(int fd, time_t now, uint64_t window_secs)
{
	char k[STORE_DUP_KEY_LEN + 1], g[STORE_GUID_HEX + 1], *buf, *out, *p, *nl;
	size_t len = 0, olen = 0, nlines = 0, skip, i = 0;
	int64_t t;
	int ret = -1;

	buf = read_all(fd, &len);
	if (buf == NULL)
		return -1;
	out = malloc(len + 1);
	if (out == NULL)
		goto done;
	for (p = buf; p < buf + len && (nl = memchr(p, '\n', (size_t)(buf + len - p)));
	     p = nl + 1)
		nlines++;
	skip = nlines > STORE_DUP_MAX / 2 ? nlines - STORE_DUP_MAX / 2 : 0;
	for (p = buf; p < buf + len && (nl = memchr(p, '\n', (size_t)(buf + len - p)));
	     p = nl + 1, i++) {
		size_t l = (size_t)(nl - p) + 1;

		*nl = '\0';
		if (memchr(p, '\0', l - 1) != NULL)
			continue;
		if (i < skip || !parse_line(p, k, &t, g) || t > (int64_t)now ||
		    (uint64_t)(now - t) > window_secs)
			continue;
		memcpy(out + olen, p, l - 1);
		out[olen + l - 1] = '\n';
		olen += l;
	}
	if (pwrite(fd, out, olen, 0) == (ssize_t)olen && ftruncate(fd, (off_t)olen) == 0)
		ret = 0;
	else if (errno == 0)
		errno = EIO;
done:
	free(out);
	free(buf);
	return ret;
}

int
store_dup_record(int fd, const char *key, const char *guid, time_t now,
		 uint64_t window_secs)
{
	char line[LINE_MAX_LEN], last;
	struct stat st;
	int n;

	if (fstat(fd, &st) < 0)
		return -1;
	if ((uint64_t)st.st_size + LINE_MAX_LEN > STORE_DUP_MAX_FILE &&
	    compact(fd, now, window_secs) < 0)
		return -1;
	if (fstat(fd, &st) < 0)
		return -1;
	/* after a torn last line (a crash), start a line of our own */
	last = '\n';
	if (st.st_size > 0 && pread(fd, &last, 1, st.st_size - 1) != 1)
		return -1;
	n = snprintf(line, sizeof(line), "%s%s %lld %s\n", last == '\n' ? "" : "\n",
		     key, (long long)now, guid);
	if (n <= 0 || (size_t)n >= sizeof(line)) {
		errno = EINVAL;
		return -1;
	}
	if (pwrite(fd, line, (size_t)n, st.st_size) != n) {
		if (errno == 0)
			errno = EIO;
		return -1;
	}
	return 0;
}
