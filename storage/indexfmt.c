/* SPDX-License-Identifier: MIT */
/*
 * storage/indexfmt.c - on-disk format of the per-mailbox index log: frames,
 * CRC-32, header and transaction payloads (layout in storage_int.h).
 *
 * Runs in:  anywhere; pure byte code, no syscalls.
 * Trust:    the log lives in a user-controlled directory: every length is
 *           bounded (a frame holds at most STORE_IDX_MAX_PAYLOAD bytes), the
 *           CRC covers the length and the payload, and a transaction is
 *           checked completely before any record is handed out.
 */
#include <errno.h>
#include <string.h>

#include "storage/storage_int.h"

static const char fmt_magic[8] = { 'S', 'T', 'O', 'W', 'D', 'I', 'D', 'X' };

/*
 * Slicing-by-8 tables of the reflected polynomial 0xEDB88320, built before
 * main() (no lazy initialisation, no race); the whole log is CRC'd on every
 * scan, so this matters.
 */
static uint32_t fmt_crc_tab[8][256];

__attribute__((constructor)) static void fmt_crc_init(void)
{
	uint32_t c;
	int i, j;

	for (i = 0; i < 256; i++) {
		c = (uint32_t)i;
		for (j = 0; j < 8; j++)
			c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
		fmt_crc_tab[0][i] = c;
	}
	for (i = 0; i < 256; i++) {
		c = fmt_crc_tab[0][i];
		for (j = 1; j < 8; j++) {
			c = (c >> 8) ^ fmt_crc_tab[0][c & 0xff];
			fmt_crc_tab[j][i] = c;
		}
	}
}

uint32_t
store_crc32(uint32_t crc, const void *buf, size_t len)
{
	const unsigned char *p = buf;
	uint32_t lo, hi;

	crc = ~crc;
	for (; len >= 8; len -= 8, p += 8) {
		lo = crc ^ store_get_le32(p);
		hi = store_get_le32(p + 4);
		crc = fmt_crc_tab[7][lo & 0xff] ^ fmt_crc_tab[6][(lo >> 8) & 0xff] ^
		      fmt_crc_tab[5][(lo >> 16) & 0xff] ^ fmt_crc_tab[4][lo >> 24] ^
		      fmt_crc_tab[3][hi & 0xff] ^ fmt_crc_tab[2][(hi >> 8) & 0xff] ^
		      fmt_crc_tab[1][(hi >> 16) & 0xff] ^ fmt_crc_tab[0][hi >> 24];
	}
	while (len-- > 0)
		crc = (crc >> 8) ^ fmt_crc_tab[0][(crc ^ *p++) & 0xff];
	return ~crc;
}

static unsigned char *
fmt_put(unsigned char *p, uint64_t v, size_t bytes)
{
	size_t i;

	for (i = 0; i < bytes; i++) {
		p[i] = (unsigned char)(v & 0xff);
		v >>= 8;
	}
	return p + bytes;
}

static uint64_t
fmt_get(const unsigned char *p, size_t bytes)
{
	uint64_t v = 0;

	while (bytes > 0) {
		bytes--;
		v = v << 8 | p[bytes];
	}
	return v;
}

/* Fill in the lengths and CRC around a payload already at frame + 8. */
static void
fmt_seal(unsigned char *frame, size_t payload_len)
{
	uint32_t crc;

	fmt_put(frame, payload_len, 4);
	fmt_put(frame + 8 + payload_len, payload_len, 4);
	crc = store_crc32(0, frame, 4);
	crc = store_crc32(crc, frame + 8, payload_len);
	fmt_put(frame + 4, crc, 4);
}

void
store_idx_encode_header(uint32_t uidvalidity,
			unsigned char out[STORE_IDX_HDR_FRAME])
{
	unsigned char *p = out + 8;

	memset(out, 0, STORE_IDX_HDR_FRAME);
	p[0] = STORE_IDX_KIND_HEADER;
	memcpy(p + 4, fmt_magic, sizeof(fmt_magic));
	fmt_put(p + 12, STORE_IDX_VERSION, 4);
	fmt_put(p + 16, uidvalidity, 4);
	fmt_seal(out, STORE_IDX_HDR_PAYLOAD);
}

bool
store_idx_rec_valid(const struct store_rec *rec)
{
	size_t ol, i;

	switch (rec->op) {
	case STORE_REC_SAVE:
	case STORE_REC_EXPUNGE:
	case STORE_REC_FLAGS:
	case STORE_REC_LOST:
		break;
	default:
		return false;
	}
	ol = strnlen(rec->origin, sizeof(rec->origin));
	if (ol >= sizeof(rec->origin))
		return false;
	for (i = 0; i < ol; i++) {
		if ((unsigned char)rec->origin[i] < 0x21 ||
		    (unsigned char)rec->origin[i] > 0x7e)
			return false;
	}
	return store_guid_valid(rec->guid) &&
	       strnlen(rec->flags, sizeof(rec->flags)) < sizeof(rec->flags) &&
	       strnlen(rec->name, sizeof(rec->name)) < sizeof(rec->name);
}

size_t
store_idx_txn_size(const struct store_rec *recs, size_t n)
{
	size_t size = STORE_IDX_TXN_FIXED, i;

	for (i = 0; i < n; i++) {
		size += STORE_IDX_REC_FIXED +
			strnlen(recs[i].origin, sizeof(recs[i].origin)) +
			strnlen(recs[i].flags, sizeof(recs[i].flags)) +
			strnlen(recs[i].name, sizeof(recs[i].name));
		if (size > STORE_IDX_MAX_PAYLOAD) {
			errno = E2BIG;
			return 0;
		}
	}
	return size + STORE_IDX_OVERHEAD;
}

/* noinline: inlined into the loop of store_idx_encode_txn, gcc 12 with
 * -fsanitize=undefined misjudges the size of *r (-Wstringop-overread). */
__attribute__((noinline)) static unsigned char *
fmt_put_rec(unsigned char *p, const struct store_rec *r)
{
	size_t fl = strnlen(r->flags, sizeof(r->flags));
	size_t nl = strnlen(r->name, sizeof(r->name));
	size_t ol = strnlen(r->origin, sizeof(r->origin));

	p = fmt_put(p, (uint64_t)r->op, 1);
	p = fmt_put(p, fl, 1);
	p = fmt_put(p, nl, 2);
	p = fmt_put(p, r->uid, 4);
	p = fmt_put(p, r->modseq, 8);
	memcpy(p, r->guid, STORE_GUID_HEX);
	p += STORE_GUID_HEX;
	p = fmt_put(p, (uint64_t)r->date, 8);
	p = fmt_put(p, ol, 4);
	memcpy(p, r->origin, ol);
	p += ol;
	memcpy(p, r->flags, fl);
	p += fl;
	memcpy(p, r->name, nl);
	return p + nl;
}

void
store_idx_encode_txn(const struct store_index_state *st,
		     const struct store_rec *recs, size_t n, unsigned char *out,
		     size_t out_size)
{
	unsigned char *p = out + 8;
	size_t i;

	memset(p, 0, 4);
	p[0] = STORE_IDX_KIND_TXN2;
	p = fmt_put(p + 4, st->uidvalidity, 4);
	p = fmt_put(p, st->uidnext, 4);
	p = fmt_put(p, st->messages, 4);
	p = fmt_put(p, st->highestmodseq, 8);
	p = fmt_put(p, n, 4);
	for (i = 0; i < n; i++)
		p = fmt_put_rec(p, &recs[i]);
	fmt_seal(out, out_size - STORE_IDX_OVERHEAD);
}

bool
store_idx_frame_valid(const unsigned char *frame, size_t frame_len)
{
	uint32_t len, crc;

	if (frame_len < STORE_IDX_OVERHEAD)
		return false;
	len = store_get_le32(frame);
	if (len > STORE_IDX_MAX_PAYLOAD || len + STORE_IDX_OVERHEAD != frame_len ||
	    store_get_le32(frame + 8 + len) != len)
		return false;
	crc = store_crc32(0, frame, 4);
	crc = store_crc32(crc, frame + 8, len);
	return crc == store_get_le32(frame + 4);
}

int
store_idx_decode_header(const unsigned char *payload, size_t len,
			uint32_t *uidvalidity_out)
{
	if (len != STORE_IDX_HDR_PAYLOAD || payload[0] != STORE_IDX_KIND_HEADER ||
	    payload[1] != 0 || payload[2] != 0 || payload[3] != 0 ||
	    memcmp(payload + 4, fmt_magic, sizeof(fmt_magic)) != 0)
		goto bad;
	if (store_get_le32(payload + 12) != 1u &&
	    store_get_le32(payload + 12) != STORE_IDX_VERSION) {
		errno = EPROTONOSUPPORT;
		return -1;
	}
	*uidvalidity_out = store_get_le32(payload + 16);
	if (*uidvalidity_out == 0)
		goto bad;
	return 0;
bad:
	errno = EBADMSG;
	return -1;
}

/* True if p[0..32) are hex digits. */
static bool
fmt_guid_ok(const unsigned char *p)
{
	size_t i;

	for (i = 0; i < STORE_GUID_HEX; i++) {
		if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f') ||
		      (p[i] >= 'A' && p[i] <= 'F')))
			return false;
	}
	return true;
}

/* The variable parts of a record: lengths and where they start. */
struct fmt_var {
	size_t fixed, ol, fl, nl;
};

/* Check the fixed part of a record at p (avail bytes) of kind. */
static int
fmt_rec_lens(const unsigned char *p, size_t avail, unsigned int kind,
	     struct fmt_var *v)
{
	unsigned int op;

	v->fixed = kind == STORE_IDX_KIND_TXN ? STORE_IDX_REC_FIXED_V1 :
		   STORE_IDX_REC_FIXED;
	if (avail < v->fixed)
		return -1;
	op = p[0];
	v->fl = p[1];
	v->nl = (size_t)fmt_get(p + 2, 2);
	v->ol = 0;
	if (kind == STORE_IDX_KIND_TXN2) {
		v->ol = (size_t)fmt_get(p + 56, 4);
		if (v->ol >= sizeof(((struct store_rec *)0)->origin))
			return -1;
	} else if (op > STORE_REC_FLAGS) {
		return -1;
	}
	if (op < STORE_REC_SAVE || op > STORE_REC_LOST ||
	    v->fl >= sizeof(((struct store_rec *)0)->flags) ||
	    v->nl >= sizeof(((struct store_rec *)0)->name) ||
	    avail - v->fixed < v->ol + v->fl + v->nl || !fmt_guid_ok(p + 16) ||
	    memchr(p + v->fixed, '\0', v->ol + v->fl + v->nl) != NULL)
		return -1;
	return 0;
}

/* True if origin[0..len) is %x21-7E only. */
static bool
fmt_origin_ok(const unsigned char *o, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		if (o[i] < 0x21 || o[i] > 0x7e)
			return false;
	}
	return true;
}

/*
 * Check the record at *pos of payload[0..len) of a transaction of kind
 * and advance *pos; if r is not NULL also decode it into *r.
 */
static int
fmt_get_rec(const unsigned char *payload, size_t len, size_t *pos,
	    unsigned int kind, struct store_rec *r)
{
	const unsigned char *p = payload + *pos;
	struct fmt_var v;

	if (fmt_rec_lens(p, len - *pos, kind, &v) < 0 ||
	    !fmt_origin_ok(p + v.fixed, v.ol))
		return -1;
	*pos += v.fixed + v.ol + v.fl + v.nl;
	if (r == NULL)
		return 0;
	memset(r, 0, sizeof(*r));
	r->op = (enum store_rec_op)p[0];
	r->uid = (uint32_t)fmt_get(p + 4, 4);
	r->modseq = fmt_get(p + 8, 8);
	memcpy(r->guid, p + 16, STORE_GUID_HEX);
	if (kind == STORE_IDX_KIND_TXN2)
		r->date = (int64_t)fmt_get(p + 48, 8);
	p += v.fixed;
	memcpy(r->origin, p, v.ol);
	memcpy(r->flags, p + v.ol, v.fl);
	memcpy(r->name, p + v.ol + v.fl, v.nl);
	return 0;
}

/* Walk the records after the fixed part; call cb (if set) for each. */
static int
fmt_walk_recs(const unsigned char *payload, size_t len, uint32_t nrecs,
	      int (*cb)(const struct store_rec *rec, void *arg), void *arg)
{
	struct store_rec rec;
	size_t pos = STORE_IDX_TXN_FIXED;
	uint32_t i;

	for (i = 0; i < nrecs; i++) {
		if (fmt_get_rec(payload, len, &pos, payload[0],
				cb != NULL ? &rec : NULL) < 0) {
			errno = EBADMSG;
			return -1;
		}
		if (cb != NULL && cb(&rec, arg) != 0)
			return -1;
	}
	if (pos != len) {
		errno = EBADMSG;
		return -1;
	}
	return 0;
}

int
store_idx_decode_txn(const unsigned char *payload, size_t len,
		     struct store_index_state *st_out,
		     int (*rec_cb)(const struct store_rec *rec, void *arg),
		     void *arg)
{
	struct store_index_state st;
	uint32_t nrecs;

	if (len < STORE_IDX_TXN_FIXED ||
	    (payload[0] != STORE_IDX_KIND_TXN &&
	     payload[0] != STORE_IDX_KIND_TXN2) ||
	    payload[1] != 0 || payload[2] != 0 || payload[3] != 0) {
		errno = EBADMSG;
		return -1;
	}
	st.uidvalidity = store_get_le32(payload + 4);
	st.uidnext = store_get_le32(payload + 8);
	st.messages = store_get_le32(payload + 12);
	st.highestmodseq = fmt_get(payload + 16, 8);
	nrecs = store_get_le32(payload + 24);
	if (fmt_walk_recs(payload, len, nrecs, NULL, NULL) < 0)
		return -1;
	if (rec_cb != NULL && fmt_walk_recs(payload, len, nrecs, rec_cb, arg) < 0)
		return -1;
	*st_out = st;
	return 0;
}
