/* SPDX-License-Identifier: MIT */
/*
 * storage/repl/state.c - replication state of a mailbox: stamps, canonical
 * flags, Maildir letters, digests (doc/replication-protocol.md §7) and the
 * replay of an index log into an in-memory mailbox (GUID hash table of
 * present messages, lost messages and tombstones).
 *
 * Runs in:  anywhere; pure code except store_mbox_load, which preads the
 *           (locked) index of a writer.
 * Trust:    flag strings and delta lists come from the network (checked by
 *           repld, checked again here) or from the user-controlled index:
 *           every string is bounded, a bad one is EINVAL, never a crash.
 *           The per-flag stamp map of a message is bounded by STORE_FS_MAX.
 * Cost:     replay is O(records); ~600 bytes per message kept in memory.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "storage/repl/repl_int.h"

#define RS_KW_MAX 64            /* keyword length */
#define RS_TOK_MAX 66           /* a flag + NUL, with room for a sign */
#define RS_FLAGS_N 64           /* flags in a set or a delta list */

static const char *const rs_sys[] = {
	"\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft",
};

/* ---- stamps ----------------------------------------------------------- */

static int
rs_stamp_cmp2(uint64_t ma, const char *oa, uint64_t mb, const char *ob)
{
	size_t la = strlen(oa), lb = strlen(ob);
	int c;

	if (ma != mb)
		return ma > mb ? 1 : -1;
	c = memcmp(oa, ob, la < lb ? la : lb);
	if (c != 0)
		return c;
	return la == lb ? 0 : (la > lb ? 1 : -1);
}

bool
store_origin_valid(const char *s, bool empty_ok)
{
	size_t i, len;

	if (s == NULL)
		return empty_ok;
	len = strnlen(s, STORE_ORIGIN_MAX);
	if (len >= STORE_ORIGIN_MAX || (len == 0 && !empty_ok))
		return false;
	for (i = 0; i < len; i++) {
		if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
			return false;
	}
	return true;
}

int
store_stamp_cmp(const struct store_stamp *a, const struct store_stamp *b)
{
	return rs_stamp_cmp2(a->modseq, a->origin, b->modseq, b->origin);
}

/* ---- flags ------------------------------------------------------------ */

static bool
rs_atom_char(unsigned char c)
{
	return c >= 0x21 && c <= 0x7e && strchr("\"()[\\]{}", c) == NULL;
}

/* Canonical spelling of one flag tok[0..len) into out[RS_TOK_MAX]. */
static int
rs_flag_one(const char *tok, size_t len, char *out)
{
	size_t i;

	if (len == 0)
		goto bad;
	if (tok[0] == '\\') {
		for (i = 0; i < sizeof(rs_sys) / sizeof(rs_sys[0]); i++) {
			if (strlen(rs_sys[i]) == len &&
			    strncasecmp(rs_sys[i], tok, len) == 0) {
				memcpy(out, rs_sys[i], len + 1);
				return 0;
			}
		}
		goto bad;
	}
	if (len > RS_KW_MAX || tok[0] == '+' || tok[0] == '-')
		goto bad;
	for (i = 0; i < len; i++) {
		if (!rs_atom_char((unsigned char)tok[i]))
			goto bad;
	}
	memcpy(out, tok, len);
	out[len] = '\0';
	return 0;
bad:
	errno = EINVAL;
	return -1;
}

static int
rs_cmp_str(const void *a, const void *b)
{
	return strcmp(a, b);   /* unsigned octets, a proper prefix first */
}

/* Sort, drop duplicates and join set[0..n) into out[STORE_FLAGS_MAX]. */
static int
rs_join(char (*set)[RS_TOK_MAX], size_t n, char *out)
{
	size_t i, len = 0, l;

	qsort(set, n, RS_TOK_MAX, rs_cmp_str);
	out[0] = '\0';
	for (i = 0; i < n; i++) {
		if (i > 0 && strcmp(set[i], set[i - 1]) == 0)
			continue;
		l = strlen(set[i]);
		if (len + (len > 0) + l >= STORE_FLAGS_MAX) {
			errno = E2BIG;
			return -1;
		}
		if (len > 0)
			out[len++] = ' ';
		memcpy(out + len, set[i], l + 1);
		len += l;
	}
	return 0;
}

/* Split in into canonical flags set[*n]; E2BIG past RS_FLAGS_N + 1. */
static int
rs_split(const char *in, char (*set)[RS_TOK_MAX], size_t *n)
{
	size_t len;

	*n = 0;
	while (*in != '\0') {
		len = strcspn(in, " ");
		if (len > 0) {
			if (*n > RS_FLAGS_N) {
				errno = E2BIG;
				return -1;
			}
			if (rs_flag_one(in, len, set[*n]) < 0)
				return -1;
			(*n)++;
		}
		in += len;
		in += *in == ' ';
	}
	return 0;
}

int
store_flags_canon(const char *in, char out[STORE_FLAGS_MAX])
{
	char set[RS_FLAGS_N + 1][RS_TOK_MAX];
	size_t n;

	out[0] = '\0';
	if (in == NULL) {
		errno = EINVAL;
		return -1;
	}
	if (rs_split(in, set, &n) < 0)
		return -1;
	return rs_join(set, n, out);
}

void
store_flags_letters(const char *canon, char out[8])
{
	static const struct { const char *flag; char letter; } map[] = {
		{ "\\Draft", 'D' }, { "\\Flagged", 'F' }, { "\\Answered", 'R' },
		{ "\\Seen", 'S' }, { "\\Deleted", 'T' },
	};
	size_t i, n = 0, len;
	const char *p;

	for (i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
		len = strlen(map[i].flag);
		for (p = canon; p != NULL && *p != '\0';) {
			if (strncmp(p, map[i].flag, len) == 0 &&
			    (p[len] == ' ' || p[len] == '\0')) {
				out[n++] = map[i].letter;
				break;
			}
			p = strchr(p, ' ');
			if (p != NULL)
				p++;
		}
	}
	out[n] = '\0';
}

int
store_flags_letter_deltas(const char *canon, const char *name,
			  char out[STORE_FLAGS_MAX])
{
	static const struct { char letter; const char *flag; } map[] = {
		{ 'D', "\\Draft" }, { 'F', "\\Flagged" }, { 'R', "\\Answered" },
		{ 'S', "\\Seen" }, { 'T', "\\Deleted" },
	};
	const char *colon = strchr(name, ':');
	char old[8];
	size_t i, len = 0;
	int n = 0;
	bool was, is;

	out[0] = '\0';
	if (colon == NULL || strncmp(colon, ":2,", 3) != 0)
		return 0;   /* no info: nothing said about flags */
	store_flags_letters(canon, old);
	for (i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
		was = strchr(old, map[i].letter) != NULL;
		is = strchr(colon + 3, map[i].letter) != NULL;
		if (was == is)
			continue;
		len += (size_t)snprintf(out + len, STORE_FLAGS_MAX - len, "%s%c%s",
					n > 0 ? " " : "", is ? '+' : '-',
					map[i].flag);
		n++;
	}
	return n;
}

/* ---- digests ---------------------------------------------------------- */

static void
rs_sha256(const void *data, size_t len, unsigned char out[STORE_HASH_LEN])
{
	unsigned int olen = STORE_HASH_LEN;

	if (EVP_Digest(data, len, out, &olen, EVP_sha256(), NULL) != 1)
		abort();   /* SHA-256 is always there: a broken library */
}

void
store_digest_guid(const char *guid, unsigned char out[STORE_HASH_LEN])
{
	rs_sha256(guid, strnlen(guid, STORE_GUID_HEX), out);
}

void
store_digest_flags(const char *guid, const char *canon,
		   unsigned char out[STORE_HASH_LEN])
{
	char buf[STORE_GUID_HEX + 1 + STORE_FLAGS_MAX];
	size_t gl = strnlen(guid, STORE_GUID_HEX);
	size_t fl = strnlen(canon, STORE_FLAGS_MAX - 1);

	memcpy(buf, guid, gl);
	buf[gl] = ' ';
	memcpy(buf + gl + 1, canon, fl);
	rs_sha256(buf, gl + 1 + fl, out);
}

static void
rs_xor(unsigned char *acc, const unsigned char *term)
{
	size_t i;

	for (i = 0; i < STORE_HASH_LEN; i++)
		acc[i] ^= term[i];
}

/* XOR the digest terms of a present message into (or out of) m. */
static void
rs_terms(struct store_mbox *m, const struct store_msg *msg)
{
	unsigned char h[STORE_HASH_LEN];

	store_digest_guid(msg->guid, h);
	rs_xor(m->guidhash, h);
	store_digest_flags(msg->guid, msg->flags, h);
	rs_xor(m->flaghash, h);
}

/* ---- delta lists and the merge rule ------------------------------------ */

struct rs_delta {
	char sign;
	char flag[RS_TOK_MAX];
};

/*
 * Parse "+\Seen -\Flagged" into d[*n]; duplicates dropped, one flag with
 * both signs EINVAL.  lenient (old index records): a token without a
 * sign counts as "+".
 */
static int
rs_deltas(const char *in, bool lenient, struct rs_delta *d, size_t *n)
{
	size_t len, i;
	char sign;

	*n = 0;
	if (strlen(in) >= STORE_FLAGS_MAX) {
		errno = E2BIG;
		return -1;
	}
	for (; *in != '\0'; in += len, in += *in == ' ') {
		len = strcspn(in, " ");
		if (len == 0)
			continue;
		sign = in[0];
		if (sign != '+' && sign != '-' && !lenient)
			goto bad;
		if (sign != '+' && sign != '-') {
			sign = '+';
			if (rs_flag_one(in, len, d[*n].flag) < 0)
				return -1;
		} else if (rs_flag_one(in + 1, len - 1, d[*n].flag) < 0) {
			return -1;
		}
		d[*n].sign = sign;
		for (i = 0; i < *n; i++) {
			if (strcmp(d[i].flag, d[*n].flag) != 0)
				continue;
			if (d[i].sign != sign)
				goto bad;
			break;
		}
		if (i == *n && ++*n >= RS_FLAGS_N)
			goto big;
	}
	if (*n == 0 && !lenient)
		goto bad;
	return 0;
big:
	errno = E2BIG;
	return -1;
bad:
	errno = EINVAL;
	return -1;
}

static struct store_flag_stamp *
rs_fs_find(const struct store_msg *msg, const char *flag)
{
	size_t i;

	for (i = 0; i < msg->nfs; i++) {
		if (strcmp(msg->fs[i].flag, flag) == 0)
			return &msg->fs[i];
	}
	return NULL;
}

/* Whether stamp s beats stamp(flag) of msg. */
static bool
rs_wins(const struct store_msg *msg, const char *flag, uint64_t modseq,
	const char *origin)
{
	const struct store_flag_stamp *fs = rs_fs_find(msg, flag);

	if (fs != NULL)
		return rs_stamp_cmp2(modseq, origin, fs->modseq, fs->origin) > 0;
	return rs_stamp_cmp2(modseq, origin, msg->base_modseq,
			     msg->base_origin) > 0;
}

/* F after the deltas d[0..n) that won (won_mask bit i). */
static int
rs_new_flags(const struct store_msg *msg, const struct rs_delta *d, size_t n,
	     const bool *won, char *out)
{
	char set[2 * RS_FLAGS_N + 2][RS_TOK_MAX];
	size_t cnt = 0, i, j, k;

	if (rs_split(msg->flags, set, &cnt) < 0)
		return -1;
	for (i = 0; i < n; i++) {
		if (!won[i])
			continue;
		for (j = 0, k = 0; j < cnt; j++) {
			if (strcmp(set[j], d[i].flag) != 0)
				memcpy(set[k++], set[j], RS_TOK_MAX);
		}
		cnt = k;
		if (d[i].sign == '+')
			memcpy(set[cnt++], d[i].flag, RS_TOK_MAX);
	}
	return rs_join(set, cnt, out);
}

static int
rs_merge(const struct store_msg *msg, const char *deltas, bool lenient,
	 uint64_t modseq, const char *origin, char *won_out, char *new_flags)
{
	struct rs_delta d[RS_FLAGS_N];
	bool won[RS_FLAGS_N];
	size_t n, i, len = 0, l, nfs = msg->nfs;

	won_out[0] = '\0';
	if (rs_deltas(deltas, lenient, d, &n) < 0)
		return -1;
	for (i = 0; i < n; i++) {
		won[i] = rs_wins(msg, d[i].flag, modseq, origin);
		if (!won[i])
			continue;
		nfs += rs_fs_find(msg, d[i].flag) == NULL;
		l = strlen(d[i].flag) + 1;
		if (len + (len > 0) + l >= STORE_FLAGS_MAX) {
			errno = E2BIG;
			return -1;
		}
		if (len > 0)
			won_out[len++] = ' ';
		won_out[len++] = d[i].sign;
		memcpy(won_out + len, d[i].flag, l);
		len += l - 1;
	}
	if (nfs > STORE_FS_MAX) {
		errno = E2BIG;
		return -1;
	}
	return rs_new_flags(msg, d, n, won, new_flags);
}

int
store_merge_deltas(const struct store_msg *msg, const char *deltas,
		   uint64_t modseq, const char *origin, char *won,
		   char *new_flags)
{
	return rs_merge(msg, deltas, false, modseq, origin, won, new_flags);
}

/* Record the per-flag stamps of the deltas in won (all won). */
static int
rs_set_stamps(struct store_msg *msg, const char *won, uint64_t modseq,
	      const char *origin)
{
	struct rs_delta d[RS_FLAGS_N];
	struct store_flag_stamp *fs, *nfs;
	size_t n, i;

	if (rs_deltas(won, true, d, &n) < 0)
		return -1;
	for (i = 0; i < n; i++) {
		fs = rs_fs_find(msg, d[i].flag);
		if (fs == NULL) {
			nfs = realloc(msg->fs, (msg->nfs + 1) * sizeof(*nfs));
			if (nfs == NULL)
				return -1;
			msg->fs = nfs;
			fs = &msg->fs[msg->nfs++];
			memcpy(fs->flag, d[i].flag, sizeof(fs->flag));
		}
		fs->modseq = modseq;
		snprintf(fs->origin, sizeof(fs->origin), "%s", origin);
	}
	return 0;
}

void
store_msg_stamp(const struct store_msg *msg, uint64_t *modseq_out,
		const char **origin_out)
{
	size_t i;

	*modseq_out = msg->base_modseq;
	*origin_out = msg->base_origin;
	for (i = 0; i < msg->nfs; i++) {
		if (rs_stamp_cmp2(msg->fs[i].modseq, msg->fs[i].origin,
				  *modseq_out, *origin_out) > 0) {
			*modseq_out = msg->fs[i].modseq;
			*origin_out = msg->fs[i].origin;
		}
	}
}

/* ---- the GUID hash table ---------------------------------------------- */

static size_t
rs_hash(const char *guid)
{
	uint64_t h = 1469598103934665603ull;
	size_t i;

	for (i = 0; i < STORE_GUID_HEX && guid[i] != '\0'; i++) {
		h ^= (unsigned char)(guid[i] | 0x20);
		h *= 1099511628211ull;
	}
	return (size_t)(h ^ (h >> 29));
}

struct store_msg *
store_mbox_find(const struct store_mbox *m, const char *guid)
{
	size_t i, mask;
	uint32_t s;

	if (m->nslots == 0)
		return NULL;
	mask = m->nslots - 1;
	for (i = rs_hash(guid) & mask; (s = m->slots[i]) != 0; i = (i + 1) & mask) {
		if (strcasecmp(m->msgs[s - 1].guid, guid) == 0)
			return &m->msgs[s - 1];
	}
	return NULL;
}

static int
rs_rehash(struct store_mbox *m, size_t nslots)
{
	uint32_t *slots = calloc(nslots, sizeof(*slots));
	size_t i, j;

	if (slots == NULL)
		return -1;
	for (i = 0; i < m->nmsgs; i++) {
		for (j = rs_hash(m->msgs[i].guid) & (nslots - 1); slots[j] != 0;
		     j = (j + 1) & (nslots - 1))
			;
		slots[j] = (uint32_t)(i + 1);
	}
	free(m->slots);
	m->slots = slots;
	m->nslots = nslots;
	return 0;
}

/* A new entry for guid (lower-cased); pointers into m->msgs move. */
/* Limits of one mailbox's replay (store_repl_set_limits): the index log
 * is the user's file, so its size and the messages (tombstones included)
 * it makes the writer hold are bounded; over them the mailbox fails with
 * E2BIG instead of the writer running out of memory. */
static uint64_t max_index_size = 1ull << 30;
static uint32_t max_messages = 1000000;

void
store_repl_set_limits(uint64_t index_size, uint32_t messages)
{
	max_index_size = index_size;
	max_messages = messages;
}

static struct store_msg *
rs_insert(struct store_mbox *m, const char *guid)
{
	struct store_msg *msgs, *msg;
	size_t i;

	if (m->nmsgs >= UINT32_MAX - 1) {
		errno = EOVERFLOW;
		return NULL;
	}
	if (max_messages != 0 && m->nmsgs >= max_messages) {
		errno = E2BIG;
		return NULL;
	}
	if (m->nmsgs == m->cap) {
		msgs = realloc(m->msgs, (m->cap ? m->cap * 2 : 64) * sizeof(*msgs));
		if (msgs == NULL)
			return NULL;
		m->msgs = msgs;
		m->cap = m->cap ? m->cap * 2 : 64;
	}
	msg = &m->msgs[m->nmsgs++];
	memset(msg, 0, sizeof(*msg));
	for (i = 0; i < STORE_GUID_HEX; i++)
		msg->guid[i] = (char)(guid[i] | (guid[i] >= 'A' ? 0x20 : 0));
	if ((m->nmsgs + 1) * 4 > m->nslots * 3) {
		if (rs_rehash(m, m->nslots ? m->nslots * 2 : 128) < 0) {
			m->nmsgs--;
			return NULL;
		}
	} else {
		for (i = rs_hash(msg->guid) & (m->nslots - 1); m->slots[i] != 0;
		     i = (i + 1) & (m->nslots - 1))
			;
		m->slots[i] = (uint32_t)m->nmsgs;
	}
	return msg;
}

void
store_mbox_free(struct store_mbox *m)
{
	size_t i;

	if (m == NULL)
		return;
	for (i = 0; i < m->nmsgs; i++)
		free(m->msgs[i].fs);
	free(m->msgs);
	free(m->slots);
	memset(m, 0, sizeof(*m));
}

/* ---- applying records ------------------------------------------------- */

/* Present -> not present (tombstone or lost). */
static void
rs_remove(struct store_mbox *m, struct store_msg *msg, enum store_msg_kind kind)
{
	if (msg->kind == STORE_MSG_PRESENT) {
		rs_terms(m, msg);
		if (m->st.messages > 0)
			m->st.messages--;
	}
	free(msg->fs);
	msg->fs = NULL;
	msg->nfs = 0;
	msg->kind = kind;
	msg->flags[0] = msg->name[0] = '\0';
}

/* The file name of a record: the index is user-writable, so only a plain
 * entry of new/ or cur/ is taken; anything else leaves the message without
 * a file (reconciliation then records it lost). */
static void
rs_set_name(struct store_msg *msg, const char *name)
{
	size_t i;

	/* The index is the user's file: a name with a control byte would be
	 * echoed in replies (a duplicate SAVE) that the supervisor rightly
	 * refuses, killing the writer each time. */
	for (i = 0; i < sizeof(msg->name) && name[i] != '\0'; i++) {
		if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f) {
			msg->name[0] = '\0';
			return;
		}
	}
	if (i == sizeof(msg->name) || name[0] == '.' || strchr(name, '/') != NULL) {
		msg->name[0] = '\0';
		return;
	}
	memcpy(msg->name, name, sizeof(msg->name));
}

static void
rs_save(struct store_mbox *m, struct store_msg *msg,
	const struct store_rec *rec)
{
	if (msg->kind == STORE_MSG_PRESENT || msg->kind == STORE_MSG_TOMBSTONE)
		return;   /* a duplicate, or expunged for good */
	msg->kind = STORE_MSG_PRESENT;
	msg->uid = rec->uid;
	msg->base_modseq = rec->modseq;
	memcpy(msg->base_origin, rec->origin, sizeof(msg->base_origin));
	if (store_flags_canon(rec->flags, msg->flags) < 0)
		msg->flags[0] = '\0';   /* an old record's odd flags */
	rs_set_name(msg, rec->name);
	msg->date = rec->date;
	rs_terms(m, msg);
	m->st.messages++;
}

static int
rs_flags(struct store_mbox *m, struct store_msg *msg,
	 const struct store_rec *rec)
{
	char won[STORE_FLAGS_MAX], nf[STORE_FLAGS_MAX];

	if (msg->kind != STORE_MSG_PRESENT)
		return 0;
	if (rec->name[0] != '\0')
		rs_set_name(msg, rec->name);
	if (rec->flags[0] == '\0')
		return 0;
	if (rs_merge(msg, rec->flags, true, rec->modseq, rec->origin, won,
		     nf) < 0)
		return errno == ENOMEM ? -1 : 0;   /* skip a bad old record */
	if (won[0] == '\0')
		return 0;
	if (rs_set_stamps(msg, won, rec->modseq, rec->origin) < 0)
		return -1;
	rs_terms(m, msg);
	memcpy(msg->flags, nf, sizeof(msg->flags));
	rs_terms(m, msg);
	return 0;
}

int
store_mbox_apply(struct store_mbox *m, const struct store_rec *rec)
{
	struct store_msg *msg;

	if (!store_guid_valid(rec->guid)) {
		errno = EINVAL;
		return -1;
	}
	msg = store_mbox_find(m, rec->guid);
	if (msg == NULL && (rec->op == STORE_REC_SAVE ||
			    rec->op == STORE_REC_EXPUNGE)) {
		msg = rs_insert(m, rec->guid);
		if (msg == NULL)
			return -1;
	}
	if (rec->modseq > m->st.highestmodseq)
		m->st.highestmodseq = rec->modseq;
	if (msg == NULL)
		return 0;
	switch (rec->op) {
	case STORE_REC_SAVE:
		if (rec->uid != UINT32_MAX && rec->uid >= m->st.uidnext)
			m->st.uidnext = rec->uid + 1;
		rs_save(m, msg, rec);
		break;
	case STORE_REC_EXPUNGE:
		rs_remove(m, msg, STORE_MSG_TOMBSTONE);
		break;
	case STORE_REC_LOST:
		if (msg->kind == STORE_MSG_PRESENT)
			rs_remove(m, msg, STORE_MSG_LOST);
		break;
	case STORE_REC_FLAGS:
		return rs_flags(m, msg, rec);
	}
	return 0;
}

int
store_mbox_put(struct store_mbox *m, const struct store_msg *msg)
{
	char canon[STORE_FLAGS_MAX], tok[RS_TOK_MAX];
	struct store_msg *e;
	size_t i;

	if (!store_guid_valid(msg->guid) || msg->kind < STORE_MSG_PRESENT ||
	    msg->kind > STORE_MSG_LOST || !store_origin_valid(msg->base_origin, true) ||
	    store_flags_canon(msg->flags, canon) < 0 || strcmp(canon, msg->flags) != 0 ||
	    msg->nfs > STORE_FS_MAX || (msg->nfs > 0 && msg->fs == NULL))
		goto bad;
	for (i = 0; i < msg->nfs; i++) {
		size_t len = strnlen(msg->fs[i].flag, sizeof(msg->fs[i].flag));

		if (len == sizeof(msg->fs[i].flag) || rs_flag_one(msg->fs[i].flag, len, tok) < 0 ||
		    strcmp(tok, msg->fs[i].flag) != 0 ||
		    !store_origin_valid(msg->fs[i].origin, true))
			goto bad;
	}
	if (store_mbox_find(m, msg->guid) != NULL) {
		errno = EEXIST;
		return -1;
	}
	if ((e = rs_insert(m, msg->guid)) == NULL)
		return -1;
	e->kind = msg->kind;
	e->uid = msg->uid;
	e->base_modseq = msg->base_modseq;
	memcpy(e->base_origin, msg->base_origin, sizeof(e->base_origin));
	memcpy(e->flags, msg->flags, sizeof(e->flags));
	rs_set_name(e, msg->name);
	e->date = msg->date;
	e->nfs = msg->nfs;
	e->fs = msg->fs;
	return 0;
bad:
	errno = EBADMSG;
	return -1;
}

static int
rs_load_cb(const struct store_rec *rec, void *arg)
{
	return store_mbox_apply(arg, rec);
}

int
store_mbox_load(int fd, struct store_mbox *m)
{
	struct store_idx_reader r;
	struct store_index_state st;
	uint32_t messages;
	off_t good_end;
	int ret = -1;

	memset(m, 0, sizeof(*m));
	m->st = store_idx_empty;
	if (store_idx_reader_init(&r, fd) < 0)
		return -1;
	if (max_index_size != 0 && (uint64_t)r.size > max_index_size) {
		errno = E2BIG;
		goto out;
	}
	if (store_idx_scan(&r, rs_load_cb, m, &st, &good_end) < 0)
		goto out;
	if (good_end < r.size) {
		errno = EBADMSG;
		goto out;
	}
	messages = m->st.messages;
	m->st = st;                 /* H, UIDNEXT, UIDVALIDITY as logged */
	m->st.messages = messages;  /* present messages, as the digests */
	ret = 0;
out:
	store_idx_reader_release(&r);
	if (ret < 0)
		store_mbox_free(m);
	return ret;
}
