/* Idempotency: effects remembered by request id.
 *
 * Only effects are remembered (a hold or waitlist place made, a confirm, a
 * cancel, a seat taken, a campaign created, updated or ended): a request
 * that changed nothing (SOLD_OUT, LIMIT_EXCEEDED, ENDED, NOT_FOUND, a
 * CONFLICT, ...) is simply decided afresh when retried, which can never
 * apply an effect twice. So a stampede of rejected requests costs no memory.
 *
 * One engine-wide FIFO of records in decision order (forgetting is popping
 * the head; a shortened window only makes records live a little longer:
 * forget times are clamped to stay in order) and one table keyed by
 * (campaign, request id). Past max_remembered the oldest record is evicted
 * early and counted. A record is ~30 bytes plus the id, varint-encoded:
 *
 *   klen, key = varint campaign index + request id
 *   fingerprint (4), op, status, state | reservation id's era << 4, flags
 *   varint forget (ms after idem_base)
 *   [varint reservation id] [zigzag expires - forget] [varint quantity]
 *   [varint position] [varint group id, group state | its era << 4]
 *                                                       as flags say
 * Ids are kept as the engine's (generation, slot) and sealed again on a
 * retry (ids.c): a sealed id is 10 bytes of varint, the inside 5. */
#include <stdlib.h>
#include <string.h>

#include "engine_int.h"
#include "hash.h"
#include "xalloc.h"

enum {
  F_RID = 1, F_EXP = 2, F_QTY = 4, F_POS = 8, F_GROUP = 16, F_OPENED = 32,
};

#define KEY_MAX (5 + PT_ID_MAX)
#define REC_MAX (1 + KEY_MAX + 4 + 4 + 10 * 5 + 1)

typedef struct idem_rec {
  uint32_t fp;
  uint8_t op, status, state, flags;
  int64_t forget_ms;
  uint64_t rid, gid;
  int64_t expires_ms;
  uint32_t qty, pos;
  uint8_t group_state;
  size_t len; /* bytes of the encoded record */
} idem_rec;

static size_t put_varint(uint8_t *p, uint64_t v) {
  size_t n = 0;
  while (v >= 0x80) {
    p[n++] = (uint8_t)(v | 0x80);
    v >>= 7;
  }
  p[n++] = (uint8_t)v;
  return n;
}

static size_t get_varint(const uint8_t *p, uint64_t *v) {
  uint64_t x = 0;
  size_t n = 0;
  for (unsigned shift = 0;; shift += 7) {
    uint8_t b = p[n++];
    x |= (uint64_t)(b & 0x7f) << shift;
    if (!(b & 0x80)) break;
  }
  *v = x;
  return n;
}

static inline uint64_t zigzag(int64_t v) { return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63); }
static inline int64_t unzigzag(uint64_t v) { return (int64_t)(v >> 1) ^ -(int64_t)(v & 1); }

/* A varint within [p, end): its length, 0 if it runs past end or 10 bytes. */
static size_t varint_len(const uint8_t *p, const uint8_t *end) {
  for (size_t n = 0; n < 10 && p + n < end; n++)
    if (!(p[n] & 0x80)) return n + 1;
  return 0;
}

/* The length of the record at p if it is whole within [p, end) and names a
 * campaign below ncamps (what decode and pop_oldest will read); else 0. */
static size_t rec_len_within(const uint8_t *p, const uint8_t *end, uint32_t ncamps) {
  if (p >= end || (size_t)(end - p) < 1u + p[0] + 8u) return 0;
  uint64_t ci;
  size_t k = varint_len(p + 1, p + 1 + p[0]);
  if (!k) return 0;
  get_varint(p + 1, &ci);
  if (ci >= ncamps) return 0;
  size_t off = 1 + (size_t)p[0] + 4;
  uint8_t flags = p[off + 3];
  off += 4;
  int fields = 1 + !!(flags & F_RID) + !!(flags & F_EXP) + !!(flags & F_QTY) + !!(flags & F_POS) +
               !!(flags & F_GROUP);
  for (int i = 0; i < fields; i++) {
    size_t n = varint_len(p + off, end);
    if (!n) return 0;
    off += n;
  }
  if (flags & F_GROUP) off++;
  return p + off <= end ? off : 0;
}

bool pt__idem_check(const pt_engine *e) {
  const pt_store *s = &e->idem_log;
  if (s->align8) return false;
  /* records from the head, chunk by chunk, as pops will find them; each
   * start marked (bit: chunk from the head, offset) for the table's turn */
  uint64_t *starts = pt_xcalloc((size_t)s->nchunks * (PT_STORE_CHUNK_UNITS / 64) + 1, 8);
  uint64_t n = 0;
  bool ok = true;
  for (uint32_t i = 0; ok && i < s->nchunks; i++) {
    uint32_t no = s->head_no + i, k = no & s->ring_mask;
    uint32_t end = no == s->tail_no ? s->tail_used : s->ring_end[k];
    const uint8_t *base = s->ring[k], *stop = base + (size_t)end * PT_STORE_UNIT;
    for (uint32_t off = i == 0 ? s->head_off : 0; ok && off < end; n++) {
      size_t len = rec_len_within(base + (size_t)off * PT_STORE_UNIT, stop, e->ncamps);
      uint64_t bit = (uint64_t)i * PT_STORE_CHUNK_UNITS + off;
      starts[bit / 64] |= 1ull << (bit % 64);
      ok = len != 0;
      off += (uint32_t)pt_store_units(len);
    }
  }
  ok = ok && n == e->st.idem_records;
  for (size_t i = 0; ok && i < pt_map_positions(&e->idem); i++) { /* every entry: a record's start */
    const pt_map_slot *m = pt_map_entry(&e->idem, i);
    int64_t bit = m ? pt_store_unit_index(s, m->ref) : 0;
    ok = !m || (bit >= 0 && (starts[bit / 64] >> (bit % 64) & 1));
  }
  free(starts);
  return ok;
}

/* The table key of (campaign, request id) into buf; returns its length. */
static size_t make_key(const pt_campaign *c, pt_bytes rid, uint8_t *buf) {
  size_t n = put_varint(buf, c->index);
  memcpy(buf + n, rid.p, rid.len);
  return n + rid.len;
}

static void decode(const uint8_t *p, idem_rec *r, int64_t base) {
  size_t off = 1 + p[0];
  uint64_t v;
  memcpy(&r->fp, p + off, 4);
  off += 4;
  r->op = p[off], r->status = p[off + 1], r->state = p[off + 2], r->flags = p[off + 3];
  off += 4;
  off += get_varint(p + off, &v);
  r->forget_ms = base + (int64_t)v;
  r->rid = r->gid = 0;
  r->expires_ms = 0;
  r->qty = r->pos = 0;
  r->group_state = 0;
  if (r->flags & F_RID) off += get_varint(p + off, &r->rid);
  if (r->flags & F_EXP) {
    off += get_varint(p + off, &v);
    r->expires_ms = r->forget_ms + unzigzag(v);
  }
  if (r->flags & F_QTY) off += get_varint(p + off, &v), r->qty = (uint32_t)v;
  if (r->flags & F_POS) off += get_varint(p + off, &v), r->pos = (uint32_t)v;
  if (r->flags & F_GROUP) {
    off += get_varint(p + off, &r->gid);
    r->group_state = p[off++];
  }
  r->len = off;
}

uint32_t pt__idem_fingerprint(int op, uint64_t a, uint64_t b, pt_bytes s) {
  uint64_t h = pt_hash((uint64_t)op * 0x9e3779b97f4a7c15ULL ^ a, s.p, s.len);
  return (uint32_t)pt_mix(h ^ b, 0x9e3779b97f4a7c15ULL);
}

uint32_t pt__fp_hold(int op, uint64_t resid, pt_bytes uid, pt_bytes cid) {
  /* no user: the fingerprint of before owners, so old journals replay */
  return pt__idem_fingerprint(op, resid, uid.len ? pt_hash(0x6f776e6572ULL, uid.p, uid.len) | 1 : 0, cid);
}

void pt__idem_init(pt_engine *e) {
  pt_store_init(&e->idem_log);
  pt_map_init(&e->idem, &e->idem_log, 0);
}

void pt__idem_free_all(pt_engine *e) {
  pt_map_destroy(&e->idem);
  pt_store_free(&e->idem_log);
}

void pt__idem_key(const pt_engine *e, const pt_campaign *c, pt_bytes rid, pt_idem_key *k) {
  _Static_assert(sizeof(k->b) == KEY_MAX, "key room");
  size_t n = make_key(c, rid, k->b);
  k->len = (uint8_t)n;
  k->off = (uint8_t)(n - rid.len);
  k->hash = pt_hash(e->cfg.hash_seed, k->b, n);
}

void pt__idem_prefetch(pt_engine *e, const pt_campaign *c, pt_bytes rid) {
  pt_idem_key k;
  pt__idem_key(e, c, rid, &k);
  pt_map_prefetch(&e->idem, k.hash);
}

bool pt__idem_replay(pt_engine *e, pt_campaign *c, int64_t now, const pt_idem_key *k, int op,
                     uint32_t fp, pt_result *r) {
  if (c->idem_count == 0) return false;
  uint32_t ref;
  const uint8_t *p = pt_map_lookup(&e->idem, k->hash, (pt_bytes){k->b, k->len}, &ref);
  if (!p) return false;
  idem_rec d;
  decode(p, &d, e->idem_base);
  if (d.forget_ms <= now) { /* due: forgotten now; its record pops in its turn */
    pt_map_del_ref(&e->idem, k->hash, ref);
    pt__emit_mut(e, PT_MUT_IDEM, true, c, (pt_bytes){k->b + k->off, (size_t)(k->len - k->off)}, 0);
    return false;
  }
  memset(r, 0, sizeof(*r));
  r->replay = true;
  if (d.op != op || d.fp != fp) {
    result_set(r, PT_CONFLICT, "request id already used for a different request");
    return true;
  }
  e->st.replays++;
  r->status = (pt_status)d.status;
  r->detail = "replay of an earlier request";
  r->reservation_id = d.rid ? pt__id_seal(e, d.state >> 4, d.rid, PT_ID_HOLD) : 0;
  r->expires_ms = d.expires_ms;
  r->quantity = d.qty;
  r->position = d.pos;
  r->state = (pt_hold_state)(d.state & 0xf);
  r->group_id = d.gid ? pt__id_seal(e, d.group_state >> 4, d.gid, PT_ID_GROUP) : 0;
  r->group_state = (pt_group_state)(d.group_state & 0xf);
  r->opened = (d.flags & F_OPENED) != 0;
  return true;
}

static bool is_effect(int op, pt_status s) {
  return s == PT_OK || (op == OP_RESERVE && s == PT_WAITLISTED);
}

/* Drops the oldest record (at ref) from the log, and from the table unless
 * a retry past its window already forgot it there (pt__idem_replay). */
static void pop_oldest(pt_engine *e, const uint8_t *p, uint32_t ref, const idem_rec *d) {
  uint64_t ci;
  size_t n = get_varint(p + 1, &ci);
  pt_campaign *c = e->camps[ci];
  pt_bytes key = {p + 1, p[0]};
  pt_bytes rid = {p + 1 + n, p[0] - n};
  if (pt_map_del_ref(&e->idem, pt_hash(e->cfg.hash_seed, key.p, key.len), ref))
    pt__emit_mut(e, PT_MUT_IDEM, true, c, rid, 0);
  c->idem_count--;
  e->st.idem_records--;
  pt_store_pop(&e->idem_log, d->len);
}

void pt__idem_store(pt_engine *e, pt_campaign *c, int64_t now, const pt_idem_key *k, int op,
                    uint32_t fp, const pt_result *r) {
  if (!is_effect(op, r->status)) return;
  if (e->st.idem_records == 0 && e->idem_tail_forget == 0) e->idem_base = now;
  int64_t forget = now + e->cfg.idem_window_ms;
  if (forget < e->idem_tail_forget) forget = e->idem_tail_forget; /* keep order */
  e->idem_tail_forget = forget;

  uint8_t buf[REC_MAX];
  buf[0] = k->len;
  memcpy(buf + 1, k->b, k->len);
  size_t n = 1 + (size_t)k->len;
  memcpy(buf + n, &fp, 4);
  n += 4;
  uint8_t flags = (r->reservation_id ? F_RID : 0) | (r->expires_ms ? F_EXP : 0) |
                  (r->quantity ? F_QTY : 0) | (r->position ? F_POS : 0) |
                  (r->group_id ? F_GROUP : 0) | (r->opened ? F_OPENED : 0);
  uint64_t rid = 0, gid = 0;
  unsigned rera = 0, gera = 0;
  if (flags & F_RID) pt__id_inner(e, r->reservation_id, PT_ID_HOLD, &rid, &rera);
  if (flags & F_GROUP) pt__id_inner(e, r->group_id, PT_ID_GROUP, &gid, &gera);
  buf[n++] = (uint8_t)op;
  buf[n++] = (uint8_t)r->status;
  buf[n++] = (uint8_t)(r->state | rera << 4);
  buf[n++] = flags;
  n += put_varint(buf + n, (uint64_t)(forget - e->idem_base));
  if (flags & F_RID) n += put_varint(buf + n, rid);
  if (flags & F_EXP) n += put_varint(buf + n, zigzag(r->expires_ms - forget));
  if (flags & F_QTY) n += put_varint(buf + n, r->quantity);
  if (flags & F_POS) n += put_varint(buf + n, r->position);
  if (flags & F_GROUP) {
    n += put_varint(buf + n, gid);
    buf[n++] = (uint8_t)(r->group_state | gera << 4);
  }
  uint32_t ref;
  memcpy(pt_store_alloc(&e->idem_log, n, &ref), buf, n);
  pt_map_put(&e->idem, k->hash, ref);
  c->idem_count++;
  e->st.idem_records++;
  pt__emit_mut(e, PT_MUT_IDEM, false, c, (pt_bytes){k->b + k->off, (size_t)(k->len - k->off)},
               r->reservation_id);

  while (e->st.idem_records > e->cfg.max_remembered) { /* the hard cap */
    uint32_t hr;
    const uint8_t *p = pt_store_head(&e->idem_log, &hr);
    idem_rec d;
    decode(p, &d, e->idem_base);
    pop_oldest(e, p, hr, &d);
    e->st.idem_evictions++;
  }
}

int64_t pt__idem_next(pt_engine *e) {
  if (e->st.idem_records == 0) return PT_NEVER;
  uint32_t ref;
  const uint8_t *p = pt_store_head(&e->idem_log, &ref);
  if (!p) return PT_NEVER;
  idem_rec d;
  decode(p, &d, e->idem_base);
  return d.forget_ms;
}

void pt__idem_expire(pt_engine *e, int64_t now) {
  for (; e->due_left && e->st.idem_records; e->due_left--) {
    uint32_t ref;
    const uint8_t *p = pt_store_head(&e->idem_log, &ref);
    idem_rec d;
    decode(p, &d, e->idem_base);
    if (d.forget_ms > now) break;
    pop_oldest(e, p, ref, &d);
  }
}

void pt_engine_set_max_remembered(pt_engine *e, uint64_t n) {
  e->cfg.max_remembered = n ? n : PT_DEFAULT_MAX_REMEMBERED;
}
