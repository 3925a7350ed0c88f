/* SPDX-License-Identifier: MIT */
/*
 * repl-hook/sync_plan.c - GUID sets of one mailbox per side and the repair
 * table of doc/replication-protocol.md §11 step 4.
 *
 * Runs in:  repl-hook (pure code).
 * Trust:    entries are untrusted replica data already parsed; each set is
 *           an open-addressing hash table of 40-octet entries (binary GUID,
 *           uid, modseq, indexes into a per-side string pool for origins
 *           and flag strings), bounded by SYNC_SIDE_MAX and SYNC_STR_MAX.
 * Order:    fill both sets completely, then iterate with sync_plan_next.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "privsep/privsep.h"
#include "repl-hook/sync_plan.h"

#define GUID_BIN 16
#define FLAGS_TOK_MAX 64       /* 127 octets hold at most 64 one-octet flags */

enum ent_state {
	ENT_EMPTY = 0,
	ENT_PRESENT = 1,
	ENT_TOMB = 2,
};

struct sync_ent {
	unsigned char g[GUID_BIN];
	uint64_t modseq;
	uint32_t uid;
	uint32_t origin;       /* string pool index */
	uint32_t flags;        /* string pool index */
	uint8_t state;         /* enum ent_state */
};

struct str_pool {
	char **v;
	size_t n, cap;
	uint32_t *idx;         /* hash slots: pool index + 1, 0 = empty */
	size_t icap;           /* power of two */
};

struct sync_side {
	struct sync_ent *t;
	size_t cap;            /* power of two */
	size_t n;
	struct str_pool pool;
};

static uint64_t
mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	x ^= x >> 31;
	return x;
}

static uint64_t
hash_bytes(const unsigned char *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < n; i++) {
		h ^= p[i];
		h *= 0x100000001b3ull;
	}
	return mix64(h);
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

static int
guid_to_bin(const char *s, unsigned char out[GUID_BIN])
{
	for (size_t i = 0; i < GUID_BIN; i++) {
		int hi = hexval(s[2 * i]), lo;

		if (hi < 0)
			return -1;
		lo = hexval(s[2 * i + 1]);
		if (lo < 0)
			return -1;
		out[i] = (unsigned char)(hi << 4 | lo);
	}
	return s[2 * GUID_BIN] == '\0' ? 0 : -1;
}

static void
guid_to_hex(const unsigned char g[GUID_BIN], char out[STORE_GUID_HEX + 1])
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < GUID_BIN; i++) {
		out[2 * i] = digits[g[i] >> 4];
		out[2 * i + 1] = digits[g[i] & 15];
	}
	out[STORE_GUID_HEX] = '\0';
}

/* ---- string pool ------------------------------------------------------- */

static void
pool_rehash(struct str_pool *p, size_t icap)
{
	uint32_t *idx = xcalloc(icap, sizeof(*idx));

	for (size_t i = 0; i < p->n; i++) {
		size_t h = (size_t)hash_bytes((const unsigned char *)p->v[i],
					      strlen(p->v[i])) & (icap - 1);

		while (idx[h] != 0)
			h = (h + 1) & (icap - 1);
		idx[h] = (uint32_t)(i + 1);
	}
	free(p->idx);
	p->idx = idx;
	p->icap = icap;
}

/* Index of s in the pool, added if new; -1 with E2BIG when full. */
static int
pool_intern(struct str_pool *p, const char *s, uint32_t *out)
{
	size_t len = strlen(s), h;

	if (p->icap == 0)
		pool_rehash(p, 64);
	h = (size_t)hash_bytes((const unsigned char *)s, len) & (p->icap - 1);
	while (p->idx[h] != 0) {
		if (strcmp(p->v[p->idx[h] - 1], s) == 0) {
			*out = p->idx[h] - 1;
			return 0;
		}
		h = (h + 1) & (p->icap - 1);
	}
	if (p->n >= SYNC_STR_MAX) {
		errno = E2BIG;
		return -1;
	}
	if (p->n == p->cap) {
		p->cap = p->cap ? 2 * p->cap : 16;
		p->v = xrealloc(p->v, p->cap * sizeof(*p->v));
	}
	p->v[p->n] = xstrdup(s);
	p->idx[h] = (uint32_t)(p->n + 1);
	*out = (uint32_t)p->n++;
	if (2 * p->n > p->icap)
		pool_rehash(p, 2 * p->icap);
	return 0;
}

static void
pool_free(struct str_pool *p)
{
	for (size_t i = 0; i < p->n; i++)
		free(p->v[i]);
	free(p->v);
	free(p->idx);
	memset(p, 0, sizeof(*p));
}

/* ---- sets -------------------------------------------------------------- */

struct sync_side *
sync_side_new(void)
{
	struct sync_side *s = xcalloc(1, sizeof(*s));

	s->cap = 1024;
	s->t = xcalloc(s->cap, sizeof(*s->t));
	return s;
}

void
sync_side_free(struct sync_side **s)
{
	if (s == NULL || *s == NULL)
		return;
	pool_free(&(*s)->pool);
	free((*s)->t);
	free(*s);
	*s = NULL;
}

size_t
sync_side_count(const struct sync_side *s)
{
	return s->n;
}

static struct sync_ent *
slot_for(struct sync_ent *t, size_t cap,
	 const unsigned char g[GUID_BIN])
{
	size_t h = (size_t)hash_bytes(g, GUID_BIN) & (cap - 1);

	while (t[h].state != ENT_EMPTY && memcmp(t[h].g, g, GUID_BIN) != 0)
		h = (h + 1) & (cap - 1);
	return &t[h];
}

static void
side_grow(struct sync_side *s)
{
	size_t cap = 2 * s->cap;
	struct sync_ent *t = xcalloc(cap, sizeof(*t));

	for (size_t i = 0; i < s->cap; i++) {
		if (s->t[i].state != ENT_EMPTY)
			*slot_for(t, cap, s->t[i].g) = s->t[i];
	}
	free(s->t);
	s->t = t;
	s->cap = cap;
}

static const struct sync_ent *
side_find(const struct sync_side *s,
	  const unsigned char g[GUID_BIN])
{
	const struct sync_ent *e = slot_for(s->t, s->cap, g);

	return e->state == ENT_EMPTY ? NULL : e;
}

int
sync_side_add(struct sync_side *s, const struct store_msg_info *m)
{
	unsigned char g[GUID_BIN];
	struct sync_ent *e, ne;

	if (guid_to_bin(m->guid, g) < 0) {
		errno = EINVAL;
		return -1;
	}
	memset(&ne, 0, sizeof(ne));
	memcpy(ne.g, g, GUID_BIN);
	ne.state = m->expunged ? ENT_TOMB : ENT_PRESENT;
	if (!m->expunged) {
		ne.uid = m->uid;
		ne.modseq = m->stamp.modseq;
		if (pool_intern(&s->pool, m->stamp.origin, &ne.origin) < 0 ||
		    pool_intern(&s->pool, m->flags, &ne.flags) < 0)
			return -1;
	}
	e = slot_for(s->t, s->cap, g);
	if (e->state == ENT_TOMB)
		return 0;               /* expunge is final */
	if (e->state == ENT_EMPTY) {
		if (s->n >= SYNC_SIDE_MAX) {
			errno = E2BIG;
			return -1;
		}
		s->n++;
	}
	*e = ne;
	if (4 * s->n > 3 * s->cap)
		side_grow(s);
	return 0;
}

/* ---- flags ------------------------------------------------------------- */

struct flag_toks {
	const char *p[FLAGS_TOK_MAX];
	size_t len[FLAGS_TOK_MAX];
	size_t n;
};

static int
flags_split(const char *s, struct flag_toks *t)
{
	t->n = 0;
	while (*s != '\0') {
		size_t len = strcspn(s, " ");

		if (len > 0) {
			if (t->n == FLAGS_TOK_MAX)
				return -1;
			t->p[t->n] = s;
			t->len[t->n++] = len;
		}
		s += len;
		while (*s == ' ')
			s++;
	}
	return 0;
}

static bool
toks_have(const struct flag_toks *t, const char *p, size_t len)
{
	for (size_t i = 0; i < t->n; i++) {
		if (t->len[i] == len && memcmp(t->p[i], p, len) == 0)
			return true;
	}
	return false;
}

/* Same set of flags (order and repeated spaces ignored). */
static bool
flags_equal(const char *a, const char *b)
{
	struct flag_toks ta, tb;

	if (strcmp(a, b) == 0)
		return true;
	if (flags_split(a, &ta) < 0 || flags_split(b, &tb) < 0)
		return false;
	for (size_t i = 0; i < ta.n; i++) {
		if (!toks_have(&tb, ta.p[i], ta.len[i]))
			return false;
	}
	for (size_t i = 0; i < tb.n; i++) {
		if (!toks_have(&ta, tb.p[i], tb.len[i]))
			return false;
	}
	return true;
}

/* Append " <sign>flag" (no space first) to out; false if it does not fit. */
static bool
delta_add(char *out, size_t *used, char sign, const char *p, size_t len)
{
	size_t need = (*used > 0 ? 1 : 0) + 1 + len;

	if (*used + need >= PSEP_FLAGS_MAX)
		return false;
	if (*used > 0)
		out[(*used)++] = ' ';
	out[(*used)++] = sign;
	memcpy(out + *used, p, len);
	*used += len;
	out[*used] = '\0';
	return true;
}

/* all: list every winner flag (else only those other lacks). */
static bool
delta_build(const struct flag_toks *w, const struct flag_toks *o,
	    bool all, char out[PSEP_FLAGS_MAX])
{
	size_t used = 0;

	out[0] = '\0';
	for (size_t i = 0; i < w->n; i++) {
		if (!all && toks_have(o, w->p[i], w->len[i]))
			continue;
		if (!delta_add(out, &used, '+', w->p[i], w->len[i]))
			return false;
	}
	for (size_t i = 0; i < o->n; i++) {
		if (toks_have(w, o->p[i], o->len[i]))
			continue;
		if (!delta_add(out, &used, '-', o->p[i], o->len[i]))
			return false;
	}
	return true;
}

int
sync_flags_delta(const char *winner, const char *other,
		 char out[PSEP_FLAGS_MAX])
{
	struct flag_toks w, o;

	out[0] = '\0';
	if (flags_split(winner, &w) < 0 || flags_split(other, &o) < 0) {
		errno = EINVAL;
		return -1;
	}
	if (flags_equal(winner, other)) {
		errno = EINVAL;
		return -1;
	}
	if (delta_build(&w, &o, true, out) || delta_build(&w, &o, false, out))
		return 0;
	out[0] = '\0';
	errno = E2BIG;
	return -1;
}

/* ---- the plan ---------------------------------------------------------- */

void
sync_cursor_init(struct sync_cursor *c)
{
	c->phase = 0;
	c->pos = 0;
	c->skipped = 0;
}

/* The message stamp of e (an entry of s). */
static void
ent_stamp(const struct sync_side *s, const struct sync_ent *e,
	  struct store_stamp *out)
{
	out->modseq = e->modseq;
	xstrlcpy(out->origin, s->pool.v[e->origin], sizeof(out->origin));
}

static void
fill_msg(struct sync_action *a, const struct sync_side *s,
	 const struct sync_ent *e)
{
	a->uid = e->uid;
	ent_stamp(s, e, &a->stamp);
	xstrlcpy(a->flags, s->pool.v[e->flags], sizeof(a->flags));
}

/* g is present on both sides: 1 with the local STORE if the flags differ,
 * 0 if they are equal, -1 if no delta list can express the difference. */
static int
plan_store(const struct sync_side *l, const struct sync_ent *le,
	    const struct sync_side *r, const struct sync_ent *re,
	    struct sync_action *out)
{
	const char *lf = l->pool.v[le->flags], *rf = r->pool.v[re->flags];
	struct store_stamp ls, rs;
	bool rwins;

	if (flags_equal(lf, rf))
		return 0;
	ent_stamp(l, le, &ls);
	ent_stamp(r, re, &rs);
	rwins = store_stamp_cmp(&rs, &ls) > 0;
	out->kind = SYNC_A_STORE_LOCAL;
	out->remote_wins = rwins;
	out->uid = le->uid;
	out->stamp = rwins ? rs : ls;
	return sync_flags_delta(rwins ? rf : lf, rwins ? lf : rf, out->flags) == 0 ? 1 : -1;
}

/* The actions of an entry present on one side: the other side lacks it
 * (SAVE there / FETCH from there), or has it tombstoned (EXPUNGE it). */
static const struct {
	enum sync_action_kind missing, tomb;
} plan_kinds[2] = {
	{ SYNC_A_SAVE_REMOTE, SYNC_A_EXPUNGE_LOCAL },    /* phase 0: local */
	{ SYNC_A_FETCH_REMOTE, SYNC_A_EXPUNGE_REMOTE },  /* phase 1: remote */
};

/* Entry e of phase's side (0: local, 1: remote); 1 if it gives an action,
 * 0 if not, -1 if its flag difference cannot be expressed (present on
 * both sides: the local entry's phase decides the flags). */
static int
plan_entry(int phase, const struct sync_side *l,
	   const struct sync_side *r, const struct sync_ent *e,
	   struct sync_action *out)
{
	const struct sync_side *s = phase == 0 ? l : r;
	const struct sync_ent *oe;

	if (e->state != ENT_PRESENT)
		return 0;
	oe = side_find(phase == 0 ? r : l, e->g);
	if (oe == NULL) {
		out->kind = plan_kinds[phase].missing;
		fill_msg(out, s, e);
		return 1;
	}
	if (oe->state == ENT_TOMB) {
		out->kind = plan_kinds[phase].tomb;
		out->uid = e->uid;
		return 1;
	}
	return phase == 0 ? plan_store(l, e, r, oe, out) : 0;
}

bool
sync_plan_next(const struct sync_side *local, const struct sync_side *remote,
	       struct sync_cursor *c, struct sync_action *out)
{
	while (c->phase < 2) {
		const struct sync_side *s = c->phase == 0 ? local : remote;

		while (c->pos < s->cap) {
			const struct sync_ent *e = &s->t[c->pos++];
			int hit;

			if (e->state == ENT_EMPTY)
				continue;
			memset(out, 0, sizeof(*out));
			hit = plan_entry(c->phase, local, remote, e, out);
			if (hit > 0) {
				guid_to_hex(e->g, out->guid);
				return true;
			}
			if (hit < 0)
				c->skipped++;
		}
		c->phase++;
		c->pos = 0;
	}
	return false;
}
