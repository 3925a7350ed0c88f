/* SPDX-License-Identifier: MIT */
/*
 * tests/integration/itest.c - cmocka glue shared by the integration
 * programs (see itest.h).
 *
 * Runs in:  integration test programs, as root, against a real stowd.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tests/integration/itest.h"

struct harness *
itest_start(const struct harness_opts *o)
{
	struct harness *h = harness_new(o);

	if (h == NULL)
		fail_msg("cannot create the test tree");
	if (harness_start(h) < 0) {
		harness_free(&h);
		fail_msg("stowd did not start (see above)");
	}
	return h;
}

void
itest_begin(struct harness *h)
{
	if (h != NULL)
		harness_test_begin(h);
}

void
itest_pass(struct harness *h)
{
	h->passed = true;
}

void
itest_end(struct harness *h)
{
	if (h != NULL)
		harness_test_end(h, h->passed);
}

struct lmtpc *
itest_connect(struct harness *h, enum harness_listener which)
{
	struct lmtpc *c = NULL;

	if (harness_connect(h, which, &c) < 0)
		fail_msg("cannot connect to %s", h->listen[which]);
	return c;
}

void
itest_cmd(struct lmtpc *c, int code, struct lmtpc_reply *r, const char *fmt, ...)
{
	struct lmtpc_reply local;
	char cmd[1024];
	va_list ap;

	if (r == NULL)
		r = &local;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	if (lmtpc_cmd(c, r, "%s", cmd) < 0)
		fail_msg("%s: %s %s", cmd, lmtpc_strerror(errno), r->text);
	if (r->code != code)
		fail_msg("%s: expected %d, got \"%s\"", cmd, code, r->text);
}

void
itest_envelope(struct lmtpc *c)
{
	itest_cmd(c, 250, NULL, "LHLO client.example");
	itest_cmd(c, 250, NULL, "MAIL FROM:<%s>", ITEST_SENDER);
}

char *
itest_body(size_t size, unsigned seed, size_t *len_out)
{
	static const char alphabet[] =
		"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,;:-";
	size_t cap = size + 512, len;
	char *b = malloc(cap);
	unsigned x = seed * 2654435761u + 1, line = 0;

	assert_non_null(b);
	len = (size_t)snprintf(b, cap, "From: <%s>\r\nTo: <test@example.org>\r\n"
			       "Subject: stowd integration test %u\r\n"
			       "Message-ID: <%u.itest@example.net>\r\n\r\n",
			       ITEST_SENDER, seed, seed);
	while (len < size) {
		size_t n, i;

		x = x * 1103515245u + 12345u;
		n = (x >> 16) % 77;
		if (line == 2 || line == 3) {
			/* a "." and a ".." line: DATA must stuff both */
			const char *dots = line == 2 ? ".\r\n" : "..\r\n";

			memcpy(b + len, dots, strlen(dots));
			len += strlen(dots);
		} else {
			if (line % 5 == 4)
				b[len++] = '.';
			for (i = 0; i < n && len + 3 < cap; i++) {
				x = x * 1103515245u + 12345u;
				b[len++] = alphabet[(x >> 16) % (sizeof(alphabet) - 1)];
			}
			b[len++] = '\r';
			b[len++] = '\n';
		}
		line++;
		if (len + 90 >= cap)
			break;
	}
	b[len] = '\0';
	*len_out = len;
	return b;
}

/* ",S=<n>" of a Maildir name, or -1. */
static long long
name_size(const char *path)
{
	const char *s = strstr(strrchr(path, '/'), ",S=");

	return s != NULL ? atoll(s + 3) : -1;
}

static void
assert_dirs(const struct harness *h, unsigned idx)
{
	static const char *const subs[] = { "", "/tmp", "/new", "/cur" };
	const struct harness_user *u = &h->users[idx];
	char path[512], why[512];

	for (size_t i = 0; i < 4; i++) {
		snprintf(path, sizeof(path), "%s%s", u->maildir, subs[i]);
		if (harness_check_owner_mode(path, u->uid, u->gid, 0700, why,
					     sizeof(why)) != 0)
			fail_msg("%s", why);
	}
}

void
itest_assert_saved(struct harness *h, unsigned idx, const struct lmtpc_reply *reply,
		   const char *body, size_t len, char *path_out, size_t path_size)
{
	const struct harness_user *u = &h->users[idx];
	char guid[33], path[512], why[512];
	char *data;
	size_t dlen;
	struct stat st;

	if (reply->code != 250 || strcmp(reply->enhanced, "2.0.0") != 0)
		fail_msg("%s: expected 250 2.0.0, got \"%s\"", u->addr, reply->text);
	if (strstr(reply->text, u->addr) == NULL)
		fail_msg("reply \"%s\" does not name %s", reply->text, u->addr);
	if (harness_reply_guid(reply->text, guid) < 0)
		fail_msg("reply \"%s\" has no \"Saved as <guid>\"", reply->text);
	if (harness_find_guid(h, idx, guid, path, sizeof(path)) < 0)
		fail_msg("%s: 250 with GUID %s but no file with it in %s/new",
			 u->addr, guid, u->maildir);
	assert_dirs(h, idx);
	if (harness_check_owner_mode(path, u->uid, u->gid, 0600, why, sizeof(why)) != 0)
		fail_msg("%s", why);
	if (harness_read_file(path, &data, &dlen) < 0)
		fail_msg("read %s: %s", path, strerror(errno));
	if (harness_check_stored(data, dlen, u->addr, body, len, why, sizeof(why)) != 0) {
		free(data);
		fail_msg("%s: %s", path, why);
	}
	free(data);
	assert_int_equal(stat(path, &st), 0);
	if (name_size(path) >= 0 && name_size(path) != (long long)st.st_size)
		fail_msg("%s: S= says %lld, file has %lld bytes", path, name_size(path),
			 (long long)st.st_size);
	if (path_out != NULL)
		snprintf(path_out, path_size, "%s", path);
}

void
itest_assert_refused(const struct lmtpc_reply *r, const char *what)
{
	if (r->code < 400 || r->code > 599)
		fail_msg("%s: expected a 4xx or 5xx, got \"%s\"", what, r->text);
}

int
itest_count_new(struct harness *h, unsigned idx)
{
	int n = harness_count_new(h, idx);

	if (n < 0)
		fail_msg("cannot list %s/new", h->users[idx].maildir);
	return n;
}

static struct harness **itest_registered;

void
itest_use(struct harness **h)
{
	itest_registered = h;
}

int
itest_group_start(struct harness **h, const struct harness_opts *o)
{
	itest_use(h);
	*h = harness_new(o);
	if (*h == NULL || harness_start(*h) < 0) {
		harness_free(h);
		return -1;
	}
	return 0;
}

int
itest_group_teardown(void **state)
{
	(void)state;
	harness_free(itest_registered);
	return 0;
}

int
itest_setup(void **state)
{
	(void)state;
	itest_begin(*itest_registered);
	return 0;
}

int
itest_teardown(void **state)
{
	(void)state;
	itest_end(*itest_registered);
	return 0;
}

int
itest_test_start(struct harness **h, const struct harness_opts *o)
{
	if (itest_group_start(h, o) < 0)
		return -1;
	itest_begin(*h);
	return 0;
}

int
itest_test_teardown(void **state)
{
	(void)state;
	itest_end(*itest_registered);
	harness_free(itest_registered);
	return 0;
}
