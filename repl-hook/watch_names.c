/* SPDX-License-Identifier: MIT */
/*
 * repl-hook/watch_names.c - the file names of one mailbox's change events
 * (doc/replication-protocol.md §7.6), kept while its capture waits, so
 * that the writer reconciles the messages of those names only and the
 * cost of a capture follows the changes, not the size of the mailbox.
 *
 * Runs in:  repl-hook (run_user, no capabilities, seccomp): memory, and
 *           memfd_create, write, fcntl (seals) for the list it passes.
 * Trust:    the names are user-controlled: one is kept only if it has no
 *           '/' and no control byte, does not start with '.' (so is not
 *           "." or "..") or ':', and is 1..NAME_MAX octets; none is ever
 *           opened here.  Bounded: HOOK_WATCH_NAMES_MAX names and
 *           PSEP_CAPTURE_NAMES_MAX octets; past that, or for a name that
 *           is not valid or not known, the set stands for the whole
 *           mailbox (the writer reconciles all of it, as without names).
 * Order:    names are added as the events come; the list is written into a
 *           sealed memfd when the capture is sent.
 * Also:     stowd's own saves (hook_own_saves), whose appearance in new/
 *           needs no capture; a key matches only a name of stowd's form
 *           with the same GUID, in the same user's same mailbox, once;
 *           and the set of users waiting for their watches (watch.c's
 *           queue), so that neither is a linear search.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "privsep/privsep.h"
#include "repl-hook/hook_int.h"

bool
hook_watch_name_ok(const char *name)
{
	size_t n;

	if (name == NULL || name[0] == '.' || name[0] == ':')
		return false;
	n = strnlen(name, NAME_MAX + 1);
	if (n == 0 || n > NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f || name[i] == '/')
			return false;
	return true;
}

/* The index of name in s, or -1. */
static int
names_find(const struct hook_watch_names *s, const char *name, size_t n)
{
	int i = 0;

	for (size_t off = 0; off < s->len; i++) {
		const char *nl = memchr(s->buf + off, '\n', s->len - off);
		size_t l = (size_t)(nl - (s->buf + off));

		if (l == n && memcmp(s->buf + off, name, n) == 0)
			return i;
		off += l + 1;
	}
	return -1;
}

static void
names_all(struct hook_watch_names *s)
{
	free(s->buf);
	s->buf = NULL;
	s->len = 0;
	s->n = 0;
	s->unlinked = 0;
	s->all = true;
}

static void
names_mark(struct hook_watch_names *s, int i, bool unlinked)
{
	if (unlinked)
		s->unlinked |= (uint64_t)1 << i;
	else
		s->unlinked &= ~((uint64_t)1 << i);
}

void
hook_watch_names_add(struct hook_watch_names *s, const char *name, bool unlinked)
{
	size_t n;
	int i;

	if (s->all)
		return;
	if (!hook_watch_name_ok(name)) {
		names_all(s);
		return;
	}
	n = strlen(name);
	if ((i = names_find(s, name, n)) >= 0) {
		names_mark(s, i, unlinked);
		return;
	}
	if (s->n >= HOOK_WATCH_NAMES_MAX || s->len + n + 1 > PSEP_CAPTURE_NAMES_MAX) {
		names_all(s);
		return;
	}
	if (s->buf == NULL)
		s->buf = xmalloc(PSEP_CAPTURE_NAMES_MAX);
	memcpy(s->buf + s->len, name, n);
	s->buf[s->len + n] = '\n';
	s->len += n + 1;
	names_mark(s, (int)s->n, unlinked);
	s->n++;
}

void
hook_watch_names_free(struct hook_watch_names *s)
{
	free(s->buf);
	memset(s, 0, sizeof(*s));
}

/* Append field (its length fl) to out[*len] if it and the rest still
 * fit: rest octets are owed to the names after this field. */
static void
names_field(char *out, size_t *len, const char *field, size_t fl, size_t rest)
{
	if (*len + fl + rest > PSEP_CAPTURE_NAMES_MAX)
		return;
	memcpy(out + *len, field, fl);
	*len += fl;
}

int
hook_watch_names_memfd(const struct hook_watch_names *s, const struct hook_names_out *o,
		       uint64_t *size_out)
{
	char *out;
	size_t off = 0, len = 0;
	unsigned i = 0;
	int fd, ret = -1;

	*size_out = 0;
	if (s->all || s->n == 0)
		return -1;
	out = xmalloc(PSEP_CAPTURE_NAMES_MAX);
	for (size_t p = 0; p < s->len; i++) {
		const char *nl = memchr(s->buf + p, '\n', s->len - p);
		size_t l = (size_t)(nl - (s->buf + p));
		/* this name's '\n' and the names after it (they fit by
		 * construction) */
		size_t rest = s->len - p - l;
		char name[NAME_MAX + 1], field[PSEP_NAME_MAX + 8];
		const char *src;

		memcpy(name, s->buf + p, l);   /* l <= NAME_MAX: hook_watch_name_ok */
		name[l] = '\0';
		memcpy(out + len, name, l);
		len += l;
		src = o != NULL && o->from != NULL ? o->from(name, o->arg) : NULL;
		if (src != NULL && strlen(src) < PSEP_NAME_MAX) {
			int fl = snprintf(field, sizeof(field), "\tfrom=%s", src);

			names_field(out, &len, field, (size_t)fl, rest);
		}
		if (o != NULL && o->unlinked && (s->unlinked >> i & 1))
			names_field(out, &len, "\tunlinked", 9, rest);
		out[len++] = '\n';
		p += l + 1;
	}
	fd = memfd_create("stowd-capture-names", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0) {
		free(out);
		return -1;
	}
	while (off < len) {
		ssize_t w = write(fd, out + off, len - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			goto out;
		off += (size_t)w;
	}
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK |
		  F_SEAL_SEAL) < 0 || lseek(fd, 0, SEEK_SET) < 0)
		goto out;
	*size_out = len;
	ret = fd;
out:
	free(out);
	if (ret < 0)
		close(fd);
	return ret;
}

/* ---- files removed lately (moves) ---------------------------------------- */

/* stowd's names: "<time>.<unique>G<32 hex>.<host>...": the G<guid> part
 * (NULL if name is not of that form). */
static const char *
stowd_guid_of(const char *name)
{
	const char *f, *g;

	if (name == NULL || (f = strchr(name, '.')) == NULL ||
	    (g = strchr(f + 1, '.')) == NULL || g - f - 1 < 33 || g[-33] != 'G')
		return NULL;
	for (int i = 32; i > 0; i--)
		if (!((g[-i] >= '0' && g[-i] <= '9') || (g[-i] >= 'a' && g[-i] <= 'f')))
			return NULL;
	return g - 32;
}

static size_t
base_len(const char *name)
{
	return strcspn(name, ":");
}

void
hook_moved_note(struct hook_moved *m, const char *user, const char *mailbox,
		const char *name)
{
	size_t i = m->next++ % HOOK_MOVED_MAX;

	if (!hook_watch_name_ok(name) || stowd_guid_of(name) != NULL)
		return;
	free(m->user[i]);
	free(m->mailbox[i]);
	free(m->base[i]);
	m->user[i] = xstrdup(user);
	m->mailbox[i] = xstrdup(mailbox);
	m->base[i] = xmalloc(base_len(name) + 1);
	memcpy(m->base[i], name, base_len(name));
	m->base[i][base_len(name)] = '\0';
}

const char *
hook_moved_from(const struct hook_moved *m, const char *user, const char *mailbox,
		const char *name)
{
	size_t len = base_len(name);

	if (stowd_guid_of(name) != NULL)
		return NULL;
	for (size_t k = 1; k <= HOOK_MOVED_MAX; k++) {   /* the latest first */
		size_t i = (m->next - k) % HOOK_MOVED_MAX;

		if (m->user[i] != NULL && strlen(m->base[i]) == len &&
		    memcmp(m->base[i], name, len) == 0 && strcmp(m->user[i], user) == 0 &&
		    strcmp(m->mailbox[i], mailbox) != 0)
			return m->mailbox[i];
	}
	return NULL;
}

void
hook_moved_free(struct hook_moved *m)
{
	for (size_t i = 0; i < HOOK_MOVED_MAX; i++) {
		free(m->user[i]);
		free(m->mailbox[i]);
		free(m->base[i]);
	}
	memset(m, 0, sizeof(*m));
}

/* ---- a hash set of (key, name) ------------------------------------------ */

uint64_t
hook_hset_key(const char *const *parts, const size_t *lens, int n)
{
	uint64_t h = 14695981039346656037ull;

	for (int k = 0; k < n; k++) {
		for (size_t i = 0; i < lens[k]; i++) {
			h ^= (unsigned char)parts[k][i];
			h *= 1099511628211ull;
		}
		h ^= 0xff;             /* a separator no name holds */
		h *= 1099511628211ull;
	}
	return h != 0 ? h : 1;
}

static bool
hset_same(const struct hook_hset_ent *e, uint64_t key, const char *name)
{
	return e->key == key &&
	       (e->name == NULL ? name == NULL : name != NULL && strcmp(e->name, name) == 0);
}

/* The slot of (key, name), or the empty slot where it would go. */
static size_t
hset_find(const struct hook_hset *s, uint64_t key, const char *name)
{
	size_t i = (size_t)key & (s->cap - 1);

	while (s->slot[i].key != 0 && !hset_same(&s->slot[i], key, name))
		i = (i + 1) & (s->cap - 1);
	return i;
}

bool
hook_hset_has(const struct hook_hset *s, uint64_t key, const char *name)
{
	return s->cap != 0 && s->slot[hset_find(s, key, name)].key != 0;
}

bool
hook_hset_add(struct hook_hset *s, uint64_t key, const char *name)
{
	size_t i;

	if (hook_hset_has(s, key, name))
		return false;
	if (2 * (s->n + 1) > s->cap) {
		struct hook_hset t = { .cap = s->cap != 0 ? 2 * s->cap : 64, .n = s->n };

		t.slot = xcalloc(t.cap, sizeof(*t.slot));
		for (size_t j = 0; j < s->cap; j++)
			if (s->slot[j].key != 0)
				t.slot[hset_find(&t, s->slot[j].key, s->slot[j].name)] = s->slot[j];
		free(s->slot);
		*s = t;
	}
	i = hset_find(s, key, name);
	s->slot[i].key = key;
	s->slot[i].name = name;
	s->n++;
	return true;
}

bool
hook_hset_del(struct hook_hset *s, uint64_t key, const char *name)
{
	size_t i, j, home, mask = s->cap - 1;

	if (s->cap == 0 || s->slot[i = hset_find(s, key, name)].key == 0)
		return false;
	s->n--;
	/* backward-shift deletion: an entry after the hole moves into it
	 * unless its home slot lies cyclically in (hole, entry] */
	for (j = i;;) {
		s->slot[i].key = 0;
		s->slot[i].name = NULL;
		do {
			j = (j + 1) & mask;
			if (s->slot[j].key == 0)
				return true;
			home = (size_t)s->slot[j].key & mask;
		} while (i <= j ? (home > i && home <= j) : (home > i || home <= j));
		s->slot[i] = s->slot[j];
		i = j;
	}
}

void
hook_hset_free(struct hook_hset *s)
{
	free(s->slot);
	memset(s, 0, sizeof(*s));
}

/* ---- stowd's own saves --------------------------------------------------- */

static uint64_t
own_key(const char *user, const char *mailbox, const char *guid, size_t glen)
{
	const char *parts[3] = { user, mailbox, guid };
	size_t lens[3] = { strlen(user), strlen(mailbox), glen };

	return hook_hset_key(parts, lens, 3);
}

void
hook_own_saves_note(struct hook_own_saves *o, const char *user,
		    const char *mailbox, const char *guid)
{
	uint64_t k = own_key(user, mailbox, guid, strlen(guid));
	uint64_t *ring = &o->key[o->next++ % HOOK_OWN_SAVES];

	if (*ring != 0)
		(void)hook_hset_del(&o->set, *ring, NULL);   /* the oldest goes */
	/* a key noted already (a replayed event) stays where it is */
	*ring = hook_hset_add(&o->set, k, NULL) ? k : 0;
}

bool
hook_own_saves_take(struct hook_own_saves *o, const char *user,
		    const char *mailbox, const char *name)
{
	const char *g = stowd_guid_of(name);

	/* not renamed into cur/ since: no ':' */
	if (g == NULL || strchr(name, ':') != NULL)
		return false;
	/* its ring entry stays: deleting it later finds nothing */
	return hook_hset_del(&o->set, own_key(user, mailbox, g, 32), NULL);
}

void
hook_own_saves_free(struct hook_own_saves *o)
{
	hook_hset_free(&o->set);
}
