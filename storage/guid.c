/* SPDX-License-Identifier: MIT */
/*
 * storage/guid.c - 128-bit message GUIDs.
 *
 * Runs in:  anywhere (a writer, for replication a front-end); syscalls:
 *           clock_gettime, getrandom.
 * Trust:    none needed; store_guid_valid checks strings from outside.
 * Layout:   48 bits of milliseconds since the epoch, 32 bits FNV-1a of the
 *           server id, 48 random bits; printed as 32 lower-case hex digits,
 *           so GUIDs of one server sort by creation time.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "storage/storage.h"

/* 32-bit FNV-1a of s ("" for NULL). */
static uint32_t
guid_fnv1a(const char *s)
{
	uint32_t h = 2166136261u;

	if (s == NULL)
		return h;
	for (; *s != '\0'; s++) {
		h ^= (unsigned char)*s;
		h *= 16777619u;
	}
	return h;
}

/* Fill buf[0..len) from getrandom, retrying on EINTR and short reads. */
static int
guid_random(unsigned char *buf, size_t len)
{
	size_t got = 0;
	ssize_t n;

	while (got < len) {
		n = getrandom(buf + got, len - got, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		got += (size_t)n;
	}
	return 0;
}

static void
guid_put_be(unsigned char *p, uint64_t v, size_t bytes)
{
	while (bytes > 0) {
		bytes--;
		p[bytes] = (unsigned char)(v & 0xff);
		v >>= 8;
	}
}

int
store_guid_new(const char *server_id, char out[STORE_GUID_HEX + 1])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char raw[16];
	struct timespec ts;
	uint64_t ms;
	size_t i;

	if (clock_gettime(CLOCK_REALTIME, &ts) < 0)
		return -1;
	ms = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
	guid_put_be(raw, ms & 0xffffffffffffull, 6);
	guid_put_be(raw + 6, guid_fnv1a(server_id), 4);
	if (guid_random(raw + 10, 6) < 0)
		return -1;
	for (i = 0; i < sizeof(raw); i++) {
		out[2 * i] = hex[raw[i] >> 4];
		out[2 * i + 1] = hex[raw[i] & 0x0f];
	}
	out[STORE_GUID_HEX] = '\0';
	return 0;
}

bool
store_guid_valid(const char *s)
{
	size_t i;

	if (s == NULL)
		return false;
	for (i = 0; i < STORE_GUID_HEX; i++) {
		char c = s[i];

		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
		      (c >= 'A' && c <= 'F')))
			return false;
	}
	return s[STORE_GUID_HEX] == '\0';
}
