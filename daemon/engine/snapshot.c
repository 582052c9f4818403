/* Engine snapshots: the whole state as one msgpack stream, and back.
 *
 * A restored engine is the same engine: the same reservation and group ids
 * will be handed out next, the same due work runs in the same order, the
 * same request ids are remembered until the same instants. So a journal of
 * inputs replayed after the snapshot decides exactly as the original did.
 * That is why most of it is an image rather than a list of entities: hold
 * pages (free list included), the record stores and the hash tables are
 * copied as they are (the hash seed travels with them); only what holds
 * pointers (campaigns, groups) is written field by field.
 *
 * AUTO matching's trees are not written: they follow from the groups, and
 * are built anew on restore (pt__match_rebuild).
 *
 * The format is tied to this engine's layout (PT_SNAPSHOT_FORMAT): a daemon
 * refuses a snapshot of another format instead of misreading it, except the
 * two before, which it converts, so that an upgraded standby can take over
 * from Redis what the old primary wrote there. */
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_int.h"
#include "hash.h"
#include "xalloc.h"

#define MAGIC "pintuan-engine"

/* Format 2: record-store chunks of at most 64 KiB, a reference being the
 * chunk number (18 bits) and the offset in units (14 bits); a chunk's size
 * 0 meant 2^14 units. Format 3 has 2 MiB chunks (13 + 19 bits). Formats 2
 * and 3 carry the matching trees (node pool, each campaign's buckets, each
 * group's bucket node), keyed as the engine of their day kept them; format
 * 4 leaves them out. Format 5 adds the ids' eras and keys (ids.c), 6 the
 * tables' caps, 7 campaigns retired: the retention, the user records freed
 * (lists by size) and each campaign's flag. Format 8's user records begin
 * with their count of holds (recounted on restore, whatever it says). */
#define FORMAT_2 2
#define FORMAT_3 3
#define FORMAT_4 4 /* before ids had eras and keys (ids.c): every id unkeyed */
#define FORMAT_5 5 /* before the tables' caps (pt_limits): the defaults */
#define FORMAT_6 6 /* before campaigns retired: no retention, freed users or retired flags */
#define FORMAT_7 7 /* before user records counted their holds */
#define FORMAT_8 8
#define PREV_OFF_BITS 14u

/* A format-2 reference in format 3: the same chunk (its number modulo what
 * the ring can hold, as a format-3 reference keeps it) and offset. */
static uint32_t ref_from_prev(uint32_t ref) {
  uint32_t chunk = (ref >> PREV_OFF_BITS) & ((1u << (32 - PT_STORE_OFF_BITS)) - 1);
  return chunk << PT_STORE_OFF_BITS | (ref & ((1u << PREV_OFF_BITS) - 1));
}

static void map_refs_from_prev(pt_map *m) {
  for (size_t i = 0; i < pt_map_positions(m); i++) {
    pt_map_slot *s = pt_map_entry(m, i);
    if (s) s->ref = ref_from_prev(s->ref);
  }
}

/* A user record before format 8: no count of holds in front. */
typedef struct user7 {
  uint32_t held, sold, waiting;
  uint8_t klen;
  uint8_t key[];
} user7;

/* ---- writing ---- */

typedef struct wr {
  msgpack_packer pk;
  pt_snapshot_write out;
  void *ctx;
  int err;
} wr;

static int wr_cb(void *data, const char *buf, size_t len) {
  wr *w = data;
  if (!w->err && w->out(w->ctx, buf, len) != 0) w->err = -1;
  return w->err;
}

static void put_u(wr *w, uint64_t v) { msgpack_pack_uint64(&w->pk, v); }
static void put_i(wr *w, int64_t v) { msgpack_pack_int64(&w->pk, v); }
static void put_bin(wr *w, const void *p, size_t n) {
  msgpack_pack_bin(&w->pk, n);
  if (n) msgpack_pack_bin_body(&w->pk, p, n); /* p may be NULL then: never hand that on */
}

static void put_store(wr *w, const pt_store *s) {
  put_u(w, s->nchunks);
  put_u(w, s->ring_mask);
  put_u(w, s->head_no);
  put_u(w, s->head_off);
  put_u(w, s->align8);
  for (uint32_t i = 0; i < s->nchunks; i++) {
    uint32_t n = s->head_no + i, k = n & s->ring_mask;
    uint32_t end = n == s->tail_no ? s->tail_used : s->ring_end[k];
    put_u(w, s->ring_cap[k]);
    put_bin(w, s->ring[k], (size_t)end * PT_STORE_UNIT);
  }
}

static void put_tab(wr *w, const pt_map_tab *t) {
  put_u(w, t->slots ? (uint64_t)t->mask + 1 : 0);
  put_u(w, t->count);
  if (t->slots) put_bin(w, t->slots, ((size_t)t->mask + 1) * sizeof(pt_map_slot));
}

static void put_map(wr *w, const pt_map *m) {
  put_tab(w, &m->cur);
  put_tab(w, &m->old);
  put_u(w, m->move_pos);
  put_u(w, m->count);
}

static void put_glist(wr *w, const pt_glist *l) {
  put_u(w, l->n);
  for (const pt_group *g = l->head; g; g = g->next) put_u(w, g->slot);
}

static void put_campaign(wr *w, const pt_campaign *c) {
  put_bin(w, c->key, c->klen);
  put_u(w, (uint64_t)c->kind);
  put_i(w, c->start_ms);
  put_i(w, c->end_ms);
  put_i(w, c->stock);
  put_i(w, c->available);
  put_i(w, c->held);
  put_i(w, c->sold);
  put_u(w, c->per_user_limit);
  put_i(w, c->hold_ms);
  put_u(w, c->waitlist);
  put_u(w, c->waiting_units);
  const pt_queue *qs[] = {&c->holdq, &c->waitq, &c->retireq};
  for (int i = 0; i < 3; i++) {
    put_u(w, qs[i]->head);
    put_u(w, qs[i]->tail);
    put_u(w, qs[i]->n);
  }
  put_u(w, c->group_size);
  put_u(w, c->simulate_min_paid);
  put_i(w, c->group_ttl_ms);
  put_i(w, c->match_margin_ms);
  put_u(w, c->new_users_only);
  put_glist(w, &c->groupq);
  put_glist(w, &c->gretireq);
  put_u(w, c->group_seq);
  put_u(w, c->idem_count);
  put_map(w, &c->users);
  put_u(w, c->retired);
}

static void put_group(wr *w, const pt_group *g) {
  put_u(w, g->slot);
  put_u(w, g->gen);
  put_u(w, g->camp->index);
  put_i(w, g->opened_ms);
  put_i(w, g->at_ms);
  put_i(w, g->deadline_ms);
  put_u(w, g->seq);
  put_u(w, g->state);
  put_u(w, g->members);
  put_u(w, g->paid);
  put_u(w, g->simulated);
  put_u(w, g->matchable);
  put_u(w, g->era);
  put_bin(w, g->seats, g->camp->group_size * sizeof(uint32_t));
}

int pt_engine_snapshot(const pt_engine *e, pt_snapshot_write out, void *ctx) {
  wr w = {.out = out, .ctx = ctx};
  msgpack_packer_init(&w.pk, &w, wr_cb);
  msgpack_pack_str(&w.pk, sizeof MAGIC - 1);
  msgpack_pack_str_body(&w.pk, MAGIC, sizeof MAGIC - 1);
  put_u(&w, PT_SNAPSHOT_FORMAT);
  put_u(&w, e->cfg.hash_seed);
  put_i(&w, e->cfg.idem_window_ms);
  put_u(&w, e->cfg.max_remembered);
  put_u(&w, e->cfg.limits.campaigns);
  put_u(&w, e->cfg.limits.waitlist);
  put_u(&w, e->cfg.limits.users);
  put_u(&w, e->cfg.limits.retention_ms);
  put_i(&w, e->now);
  put_u(&w, e->event_seq);
  put_bin(&w, &e->st, sizeof e->st);
  /* the ids' eras (ids.c): the current one, its tag, and every era's key */
  put_u(&w, e->id_era);
  put_u(&w, e->id_tag);
  uint8_t keys[16 * 17];
  for (int i = 0; i < 16; i++) {
    keys[17 * i] = e->id_keys[i].era;
    memcpy(keys + 17 * i + 1, e->id_keys[i].raw, 16);
  }
  put_bin(&w, keys, sizeof keys);
  /* holds: the pages up to the high-water mark, free slots and the free
   * list included; slots above it are zero (never used) */
  put_u(&w, e->npages);
  put_u(&w, e->free_head);
  put_u(&w, e->hold_hwm);
  for (uint32_t p = 0; p < e->npages; p++) {
    uint64_t base = (uint64_t)p * PT_HOLD_PAGE;
    uint64_t n = e->hold_hwm <= base ? 0 : e->hold_hwm - base;
    put_bin(&w, e->pages[p], (n < PT_HOLD_PAGE ? n : PT_HOLD_PAGE) * sizeof(pt_hold));
  }
  put_store(&w, &e->users);
  put_bin(&w, e->user_free, sizeof e->user_free);
  /* remembered effects */
  put_store(&w, &e->idem_log);
  put_map(&w, &e->idem);
  put_i(&w, e->idem_base);
  put_i(&w, e->idem_tail_forget);
  /* campaigns, then groups (which name their campaign) */
  put_u(&w, e->ncamps);
  for (uint32_t i = 0; i < e->ncamps; i++) put_campaign(&w, e->camps[i]);
  put_u(&w, e->ngroups);
  put_bin(&w, e->group_gen, (size_t)e->ngroups * sizeof(uint32_t));
  put_bin(&w, e->group_free, (size_t)e->ngroup_free * sizeof(uint32_t));
  uint32_t live = 0;
  for (uint32_t i = 0; i < e->ngroups; i++) live += e->groups[i] != NULL;
  put_u(&w, live);
  for (uint32_t i = 0; i < e->ngroups; i++)
    if (e->groups[i]) put_group(&w, e->groups[i]);
  msgpack_pack_str(&w.pk, 3);
  msgpack_pack_str_body(&w.pk, "end", 3);
  return w.err;
}

/* ---- reading ---- */

typedef struct rd {
  const char *buf;
  size_t len, off;
  msgpack_unpacked u;
  const char *err;
  unsigned fmt; /* the snapshot's format version */
} rd;

/* msgpack's unpacker allocates for an array or map header before reading
 * its items (a forged header asks for gigabytes); a snapshot has none. */
static bool scalar_next(const rd *r) {
  if (r->off >= r->len) return true; /* msgpack says truncated */
  uint8_t b = (uint8_t)r->buf[r->off];
  return !((b >= 0x80 && b <= 0x9f) || (b >= 0xdc && b <= 0xdf));
}

static bool next(rd *r, msgpack_object_type t) {
  if (r->err) return false;
  if (!scalar_next(r)) {
    r->err = "unexpected field type";
    return false;
  }
  if (msgpack_unpack_next(&r->u, r->buf, r->len, &r->off) != MSGPACK_UNPACK_SUCCESS) {
    r->err = "truncated or malformed";
    return false;
  }
  msgpack_object_type got = r->u.data.type;
  if (t == MSGPACK_OBJECT_POSITIVE_INTEGER && got == MSGPACK_OBJECT_NEGATIVE_INTEGER) return true;
  if (got != t) {
    r->err = "unexpected field type";
    return false;
  }
  return true;
}

static uint64_t get_u(rd *r) {
  if (!next(r, MSGPACK_OBJECT_POSITIVE_INTEGER)) return 0;
  return r->u.data.via.u64;
}
static int64_t get_i(rd *r) {
  if (!next(r, MSGPACK_OBJECT_POSITIVE_INTEGER)) return 0;
  return r->u.data.via.i64; /* the union reads the same bits either way */
}
static uint32_t get_u32(rd *r, uint64_t max) {
  uint64_t v = get_u(r);
  if (v > max && !r->err) r->err = "value out of range";
  return (uint32_t)v;
}
/* A count of items still to read: each takes at least a byte, so a count
 * over the bytes left is a lie, refused before anything is allocated. */
static uint32_t get_count(rd *r) {
  uint64_t n = get_u(r);
  if (!r->err && n > r->len - r->off) r->err = "a count larger than the snapshot";
  return (uint32_t)n;
}

/* Bytes of a bin field; exactly n of them unless n is SIZE_MAX. */
static const void *get_bin(rd *r, size_t n, size_t *got) {
  if (!next(r, MSGPACK_OBJECT_BIN)) return NULL;
  size_t have = r->u.data.via.bin.size;
  if (got) *got = have;
  if (n != SIZE_MAX && have != n) {
    r->err = "field of the wrong size";
    return NULL;
  }
  return r->u.data.via.bin.ptr;
}

static void get_store(rd *r, pt_store *s) {
  uint32_t n = get_count(r), mask = get_u32(r, (1u << (32 - PT_STORE_OFF_BITS)) - 1);
  if (r->err) return;
  if (n > (uint64_t)mask + 1 || (mask & (mask + 1))) {
    r->err = "bad store ring";
    return;
  }
  s->head_no = get_u32(r, UINT32_MAX);
  s->head_off = get_u32(r, r->fmt == FORMAT_2 ? 1u << PREV_OFF_BITS : PT_STORE_CHUNK_UNITS);
  s->align8 = (int)get_u32(r, 1);
  if (r->err || n == 0) return;
  s->ring_mask = mask;
  s->ring = pt_xcalloc((size_t)mask + 1, sizeof(*s->ring));
  s->ring_cap = pt_xcalloc((size_t)mask + 1, sizeof(*s->ring_cap));
  s->ring_end = pt_xcalloc((size_t)mask + 1, sizeof(*s->ring_end));
  for (uint32_t i = 0; i < n && !r->err; i++) {
    uint32_t no = s->head_no + i, k = no & mask;
    uint32_t units = get_u32(r, r->fmt == FORMAT_2 ? UINT16_MAX : PT_STORE_CHUNK_UNITS);
    if (r->fmt == FORMAT_2 && units == 0) units = 1u << PREV_OFF_BITS;
    size_t bytes = 0;
    const void *p = get_bin(r, SIZE_MAX, &bytes);
    if (r->err) break;
    if (units == 0 || bytes % PT_STORE_UNIT || bytes > (size_t)units * PT_STORE_UNIT) {
      r->err = "bad store chunk";
      break;
    }
    s->ring[k] = pt_store_chunk_alloc(units);
    memcpy(s->ring[k], p, bytes);
    s->ring_cap[k] = units;
    s->ring_end[k] = (uint32_t)(bytes / PT_STORE_UNIT);
    s->bytes += (size_t)units * PT_STORE_UNIT;
    s->nchunks++;
    s->tail_no = no;
    s->tail_used = (uint32_t)(bytes / PT_STORE_UNIT);
  }
}

static void get_tab(rd *r, pt_map_tab *t) {
  uint64_t cap = get_u(r);
  uint32_t count = get_u32(r, UINT32_MAX);
  if (r->err || cap == 0) return;
  if (cap & (cap - 1) || cap > (1ull << 32)) {
    r->err = "bad table size";
    return;
  }
  const void *p = get_bin(r, cap * sizeof(pt_map_slot), NULL);
  if (!p) return;
  pt_map_tab_alloc(t, cap);
  memcpy(t->slots, p, cap * sizeof(pt_map_slot));
  t->count = count;
}

static void get_map(rd *r, pt_map *m) {
  get_tab(r, &m->cur);
  get_tab(r, &m->old);
  m->move_pos = get_u32(r, UINT32_MAX);
  m->count = get_u32(r, UINT32_MAX);
  if (!r->err && m->old.slots && m->move_pos > m->old.mask) r->err = "bad table position";
}

/* A list of group slots, linked once the groups exist. */
typedef struct slots {
  uint32_t n, *v;
} slots;

static void get_slots(rd *r, slots *s) {
  s->n = get_count(r);
  if (r->err) return;
  s->v = pt_xmalloc((size_t)s->n * sizeof(uint32_t) + 1);
  for (uint32_t i = 0; i < s->n && !r->err; i++) s->v[i] = get_u32(r, UINT32_MAX);
}

static pt_campaign *get_campaign(rd *r, pt_engine *e, slots *lists) {
  size_t klen = 0;
  const uint8_t *key = get_bin(r, SIZE_MAX, &klen);
  if (r->err) return NULL;
  if (klen < 1 || klen > PT_ID_MAX) {
    r->err = "bad campaign id";
    return NULL;
  }
  uint32_t cref;
  pt_campaign *c = pt_store_alloc(&e->camp_store, sizeof(*c) + klen, &cref);
  memset(c, 0, sizeof(*c));
  c->klen = (uint8_t)klen;
  memcpy(c->key, key, klen);
  c->index = e->ncamps;
  pt_map_init(&c->users, &e->users, offsetof(pt_user, klen));
  if (e->ncamps == e->camps_cap) { /* registered now: pt_engine_free frees what it holds */
    e->camps_cap = e->camps_cap ? e->camps_cap * 2 : 16;
    e->camps = pt_xrealloc(e->camps, e->camps_cap * sizeof(*e->camps));
  }
  e->camps[e->ncamps++] = c;
  c->kind = (pt_kind)get_u32(r, PT_GROUP_BUY);
  c->start_ms = get_i(r);
  c->end_ms = get_i(r);
  c->stock = get_i(r);
  c->available = get_i(r);
  c->held = get_i(r);
  c->sold = get_i(r);
  c->per_user_limit = get_u32(r, UINT32_MAX);
  c->hold_ms = get_i(r);
  c->waitlist = get_u32(r, 1);
  c->waiting_units = get_u(r);
  pt_queue *qs[] = {&c->holdq, &c->waitq, &c->retireq};
  for (int i = 0; i < 3; i++) {
    qs[i]->head = get_u32(r, UINT32_MAX);
    qs[i]->tail = get_u32(r, UINT32_MAX);
    qs[i]->n = get_u32(r, UINT32_MAX);
  }
  c->group_size = get_u32(r, PT_GROUP_MAX);
  c->simulate_min_paid = get_u32(r, PT_GROUP_MAX);
  c->group_ttl_ms = get_i(r);
  c->match_margin_ms = get_i(r);
  c->new_users_only = get_u32(r, 1);
  get_slots(r, &lists[0]);
  get_slots(r, &lists[1]);
  if (r->err) return c;
  if (c->kind == PT_GROUP_BUY) {
    if (c->group_size < 2) {
      r->err = "bad group size";
      return c;
    }
    c->buckets = pt_xmalloc((c->group_size + 1) * sizeof(uint32_t)); /* pt__match_rebuild fills */
    if (r->fmt <= FORMAT_3 && !get_bin(r, (c->group_size + 1) * sizeof(uint32_t), NULL)) return c;
  }
  if (r->fmt <= FORMAT_3) get_u(r); /* the buckets' bitmap */
  c->group_seq = get_u(r);
  c->idem_count = get_u(r);
  get_map(r, &c->users);
  if (r->fmt >= FORMAT_7 && (c->retired = get_u32(r, 1))) e->nretired++;
  c->key_hash = pt_hash(e->cfg.hash_seed, c->key, c->klen);
  c->deadline = PT_NEVER;
  if (r->err) return c;
  pt_map_put(&e->camp_map, c->key_hash, cref);
  pt__camp_heap_add(e, c);
  return c;
}

static void get_group(rd *r, pt_engine *e) {
  uint32_t slot = get_u32(r, UINT32_MAX), gen = get_u32(r, UINT32_MAX);
  uint32_t ci = get_u32(r, UINT32_MAX);
  if (r->err) return;
  if (slot >= e->ngroups || e->groups[slot] || ci >= e->ncamps ||
      e->camps[ci]->kind != PT_GROUP_BUY) {
    r->err = "bad group";
    return;
  }
  pt_campaign *c = e->camps[ci];
  pt_group *g = pt_xcalloc(1, sizeof(*g) + c->group_size * sizeof(uint32_t));
  e->groups[slot] = g;
  g->camp = c;
  g->slot = slot;
  g->gen = gen;
  g->opened_ms = get_i(r);
  g->at_ms = get_i(r);
  g->deadline_ms = get_i(r);
  g->seq = get_u(r);
  g->bnode = PT_ONIL;
  if (r->fmt <= FORMAT_3) get_u32(r, UINT32_MAX);
  g->state = (uint8_t)get_u32(r, PT_GS_CLOSED);
  g->members = (uint8_t)get_u32(r, c->group_size);
  g->paid = (uint8_t)get_u32(r, c->group_size);
  g->simulated = get_u32(r, 1);
  g->matchable = get_u32(r, 1);
  if (r->fmt >= FORMAT_5) g->era = (uint8_t)get_u32(r, 15);
  if (!r->err && g->era && !e->id_keys[g->era].era) r->err = "a group of an era without a key";
  const void *seats = get_bin(r, c->group_size * sizeof(uint32_t), NULL);
  if (seats) memcpy(g->seats, seats, c->group_size * sizeof(uint32_t));
}

/* A campaign's open groups (open: true) or ended ones, each group in one
 * list once (linked[] marks them): a group listed twice would make a cycle. */
static void link_list(rd *r, pt_engine *e, pt_campaign *c, pt_glist *l, const slots *s, bool open,
                      uint8_t *linked) {
  for (uint32_t i = 0; i < s->n && !r->err; i++) {
    pt_group *g = s->v[i] < e->ngroups ? e->groups[s->v[i]] : NULL;
    if (!g || g->camp != c || (g->state == PT_GS_OPEN) != open) {
      r->err = "a campaign lists a group it does not have";
      return;
    }
    if (linked[s->v[i]]++) {
      r->err = "a group is listed twice";
      return;
    }
    g->prev = l->tail;
    g->next = NULL;
    if (l->tail) l->tail->next = g;
    else l->head = g;
    l->tail = g;
    l->n++;
  }
}

/* A user record the store holds, whole. */
static bool user_ok(const pt_engine *e, uint32_t ref) {
  if (!pt_store_holds(&e->users, ref, offsetof(pt_user, key))) return false;
  const pt_user *u = pt_store_at(&e->users, ref);
  return u->klen >= 1 && u->klen <= PT_ID_MAX && pt_store_holds(&e->users, ref, PT_USER_SIZE(u->klen));
}

/* Each entry a user record, no record in two entries or two campaigns
 * (seen: a bit per unit of the user store). */
static bool map_users_ok(const pt_engine *e, const pt_map *m, uint64_t *seen) {
  for (size_t i = 0; i < pt_map_positions(m); i++) {
    const pt_map_slot *s = pt_map_entry(m, i);
    if (!s) continue;
    if (!user_ok(e, s->ref)) return false;
    int64_t bit = pt_store_unit_index(&e->users, s->ref);
    if (seen[bit / 64] >> (bit % 64) & 1) return false;
    seen[bit / 64] |= 1ull << (bit % 64);
  }
  return true;
}

/* The hold's user record is one of its campaign's (a flash sale's counts
 * and a group buy's matching index share its bytes). */
static bool owner_ok(const pt_engine *e, const pt_hold *h) {
  const pt_user *u = pt_store_at(&e->users, h->user);
  uint32_t ref;
  return pt_map_lookup(&e->camps[h->camp]->users, pt_hash(e->cfg.hash_seed, u->key, u->klen), user_id(u),
                       &ref) && ref == h->user;
}

/* A seat of an open group of its campaign, as a HELD or PAID seat is, by
 * one of its users (matching keeps an index in the record). */
static bool seat_ok(const pt_engine *e, uint32_t slot, const pt_hold *h) {
  const pt_group *g = pt__group_of(e, h);
  if (!g || g->state != PT_GS_OPEN || !owner_ok(e, h)) return false;
  for (uint32_t i = 0; i < g->members; i++)
    if (g->seats[i] == slot) return true;
  return false;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* Before format 8: each campaign's user records copied into a new store in
 * today's layout, the tables and the holds pointed at the copies (old to new
 * found in a sorted list); freed records are not carried over. */
static void users_from_prev(rd *r, pt_engine *e) {
  if (r->err) return;
  pt_store old = e->users;
  pt_store_init(&e->users);
  memset(e->user_free, 0xff, sizeof e->user_free); /* PT_NIL: no freed records */
  size_t n = 0, cap = 0;
  uint64_t *moved = NULL; /* old ref << 32 | new ref */
  for (uint32_t i = 0; i < e->ncamps && !r->err; i++) {
    pt_map *m = &e->camps[i]->users;
    for (size_t j = 0; j < pt_map_positions(m); j++) {
      pt_map_slot *sl = pt_map_entry(m, j);
      if (!sl) continue;
      const user7 *o = pt_store_holds(&old, sl->ref, offsetof(user7, key)) ? pt_store_at(&old, sl->ref) : NULL;
      if (!o || o->klen < 1 || o->klen > PT_ID_MAX || !pt_store_holds(&old, sl->ref, offsetof(user7, key) + o->klen)) {
        r->err = "a campaign's users are not user records of its own";
        break;
      }
      uint32_t ref;
      pt_user *u = pt_store_alloc(&e->users, PT_USER_SIZE(o->klen), &ref);
      u->refs = 0, u->held = o->held, u->sold = o->sold, u->waiting = o->waiting;
      u->klen = o->klen;
      memcpy(u->key, o->key, o->klen);
      if (n == cap) moved = pt_xrealloc(moved, (cap = cap ? 2 * cap : 1024) * sizeof *moved);
      moved[n++] = (uint64_t)sl->ref << 32 | ref;
      sl->ref = ref;
    }
  }
  if (n) qsort(moved, n, sizeof *moved, cmp_u64);
  for (uint32_t s = 0; s < e->hold_hwm && !r->err; s++) {
    pt_hold *h = hold_at(e, s);
    if (hold_state(h) == PT_HOLD_FREE) continue;
    size_t lo = 0, hi = n; /* the first entry at or past the old ref */
    while (lo < hi) {
      size_t mid = (lo + hi) / 2;
      if (moved[mid] >> 32 < h->user) lo = mid + 1;
      else hi = mid;
    }
    if (lo == n || moved[lo] >> 32 != h->user) r->err = "a hold of no campaign or user";
    else h->user = (uint32_t)moved[lo];
  }
  free(moved);
  pt_store_free(&old);
}

/* Each user's count of the holds that name it (check_holds passed): every
 * used hold must name a user of its own campaign's table, or freeing the
 * user with its last hold would free another campaign's record. */
static void count_refs(rd *r, pt_engine *e) {
  size_t units = (size_t)e->users.nchunks * PT_STORE_CHUNK_UNITS + 1;
  uint32_t *camp = pt_xcalloc(units, sizeof *camp); /* per store unit: its user's campaign + 1 */
  for (uint32_t i = 0; i < e->ncamps; i++)
    for (size_t j = 0; j < pt_map_positions(&e->camps[i]->users); j++) {
      const pt_map_slot *sl = pt_map_entry(&e->camps[i]->users, j);
      if (!sl) continue;
      ((pt_user *)pt_store_at(&e->users, sl->ref))->refs = 0;
      camp[pt_store_unit_index(&e->users, sl->ref)] = i + 1;
    }
  for (uint32_t s = 0; s < e->hold_hwm && !r->err; s++) {
    const pt_hold *h = hold_at(e, s);
    if (hold_state(h) == PT_HOLD_FREE) continue;
    if (camp[pt_store_unit_index(&e->users, h->user)] != h->camp + 1) r->err = "a hold of another campaign's user";
    else ((pt_user *)pt_store_at(&e->users, h->user))->refs++;
  }
  free(camp);
}

#define ST(s) (1u << (s))
/* Holds: each used slot of a campaign, naming a user record; each queue a
 * list (links both ways, as long as counted, ending at its tail) of its
 * campaign's holds in the states it keeps; no slot in two lists; the free
 * list likewise. What the timers walk once the engine runs. */
static void check_holds(rd *r, pt_engine *e) {
  uint32_t hwm = e->hold_hwm;
  uint64_t *useen = pt_xcalloc((size_t)e->users.nchunks * (PT_STORE_CHUNK_UNITS / 64) + 1, 8);
  for (uint32_t i = 0; i < e->ncamps && !r->err; i++) /* first: owner_ok looks users up */
    if (!map_users_ok(e, &e->camps[i]->users, useen)) r->err = "a campaign's users are not user records of its own";
  /* the freed records: whole, of their list's size, in no table, once */
  for (size_t k = 0; k <= PT_USER_UNITS && !r->err; k++)
    for (uint32_t ref = e->user_free[k]; ref != PT_NIL && !r->err;) {
      int64_t bit = pt_store_unit_index(&e->users, ref);
      if (k < pt_store_units(PT_USER_SIZE(1)) || !pt_store_holds(&e->users, ref, k * PT_STORE_UNIT) ||
          bit < 0 || (useen[bit / 64] >> (bit % 64) & 1)) {
        r->err = "bad list of freed user records";
        break;
      }
      useen[bit / 64] |= 1ull << (bit % 64);
      memcpy(&ref, pt_store_at(&e->users, ref), sizeof ref);
    }
  free(useen);
  uint8_t *seen = pt_xcalloc((size_t)hwm + 1, 1);
  for (uint32_t s = 0; s < hwm && !r->err; s++) {
    const pt_hold *h = hold_at(e, s);
    pt_hold_state st = hold_state(h);
    if (st == PT_HOLD_FREE) continue;
    if (st > PT_SEAT_FAILED || h->camp >= e->ncamps || !user_ok(e, h->user))
      r->err = "a hold of no campaign or user";
    else if (hold_era(h) && !e->id_keys[hold_era(h)].era)
      r->err = "a hold of an era without a key";
    else if (st == PT_WAITING && !owner_ok(e, h)) /* the waitlist counts in the user record */
      r->err = "a hold of another campaign's user";
    else if (e->camps[h->camp]->kind == PT_GROUP_BUY && (st == PT_HELD || st == PT_PAID) && !seat_ok(e, s, h))
      r->err = "a seat outside its group";
  }
  const uint32_t retired = ST(PT_SOLD) | ST(PT_RELEASED) | ST(PT_EXPIRED_HOLD) | ST(PT_SEAT_FAILED);
  for (uint32_t i = 0; i < e->ncamps && !r->err; i++) {
    pt_campaign *c = e->camps[i];
    const pt_queue *qs[] = {&c->holdq, &c->waitq, &c->retireq};
    const uint32_t states[] = {ST(PT_HELD), ST(PT_WAITING), retired};
    for (int q = 0; q < 3 && !r->err; q++) {
      uint32_t prev = PT_NIL, n = 0;
      for (uint32_t s = qs[q]->head; s != PT_NIL; prev = s, s = hold_at(e, s)->next, n++) {
        const pt_hold *h = s < hwm ? hold_at(e, s) : NULL;
        if (!h || seen[s] || n >= qs[q]->n || h->prev != prev || h->camp != c->index ||
            !(states[q] & ST(hold_state(h)))) {
          r->err = "a queue is not a list of its campaign's holds";
          break;
        }
        seen[s] = 1;
      }
      if (!r->err && (prev != qs[q]->tail || n != qs[q]->n)) r->err = "a queue's count or tail is wrong";
    }
  }
  for (uint32_t s = e->free_head; s != PT_NIL && !r->err; s = hold_at(e, s)->next) {
    if (s >= hwm || seen[s] || hold_state(hold_at(e, s)) != PT_HOLD_FREE) r->err = "bad free list";
    else seen[s] = 1;
  }
  free(seen);
}
#undef ST

/* Cheap consistency checks: what a corrupt or foreign snapshot would break
 * first. A snapshot that passes them was written by an engine like this one. */
static void check(rd *r, pt_engine *e) {
  if (r->err) return;
  uint32_t slots_n = e->npages * PT_HOLD_PAGE;
  if (e->free_head != PT_NIL && e->free_head >= slots_n) r->err = "bad free list";
  for (uint32_t i = 0; i < e->ncamps && !r->err; i++) {
    pt_campaign *c = e->camps[i];
    int64_t sum;
    if (__builtin_add_overflow(c->available, c->held, &sum) || __builtin_add_overflow(sum, c->sold, &sum) ||
        sum != c->stock)
      r->err = "a campaign's stock does not add up";
    if (c->retired && (c->holdq.n || c->waitq.n || c->retireq.n || c->groupq.n || c->gretireq.n ||
                       c->users.count))
      r->err = "a retired campaign that keeps something";
    const pt_queue *qs[] = {&c->holdq, &c->waitq, &c->retireq};
    for (int q = 0; q < 3; q++)
      if ((qs[q]->head != PT_NIL && qs[q]->head >= slots_n) ||
          (qs[q]->tail != PT_NIL && qs[q]->tail >= slots_n))
        r->err = "a queue points outside the holds";
  }
  for (uint32_t i = 0; i < e->ngroup_free && !r->err; i++)
    if (e->group_free[i] >= e->ngroups || e->groups[e->group_free[i]]) r->err = "bad group free list";
  for (uint32_t s = 0; s < e->ngroups && !r->err; s++) { /* an open group's seats: its live holds */
    const pt_group *g = e->groups[s];
    if (!g || g->state != PT_GS_OPEN) continue; /* an ended group's may be forgotten */
    for (uint32_t i = 0; i < g->members && !r->err; i++) {
      const pt_hold *h = g->seats[i] < e->hold_hwm ? hold_at(e, g->seats[i]) : NULL;
      if (!h || h->group != s || h->camp != g->camp->index ||
          (hold_state(h) != PT_HELD && hold_state(h) != PT_PAID)) /* check_holds checks its user */
        r->err = "a group's seat is not one of its holds";
    }
  }
}

pt_engine *pt_engine_restore(const pt_engine_config *cfg, const void *buf, size_t len,
                             char *err, size_t errlen) {
  rd r = {.buf = buf, .len = len};
  msgpack_unpacked_init(&r.u);
  pt_engine *e = NULL;
  slots *lists = NULL;
  size_t nlists = 0;
  if (!next(&r, MSGPACK_OBJECT_STR) || r.u.data.via.str.size != sizeof MAGIC - 1 ||
      memcmp(r.u.data.via.str.ptr, MAGIC, sizeof MAGIC - 1)) {
    r.err = r.err ? r.err : "not an engine snapshot";
    goto out;
  }
  r.fmt = (unsigned)get_u(&r);
  if (r.fmt != PT_SNAPSHOT_FORMAT && r.fmt != FORMAT_7 && r.fmt != FORMAT_6 && r.fmt != FORMAT_5 && r.fmt != FORMAT_4 &&
      r.fmt != FORMAT_3 && r.fmt != FORMAT_2) {
    r.err = r.err ? r.err : "snapshot of another format version";
    goto out;
  }
  pt_engine_config c2 = *cfg;
  c2.hash_seed = get_u(&r); /* the tables were hashed with it */
  c2.idem_window_ms = get_i(&r);
  c2.max_remembered = get_u(&r);
  c2.limits = (pt_limits){0};
  if (r.fmt >= FORMAT_6) {
    c2.limits.campaigns = get_u(&r);
    c2.limits.waitlist = get_u(&r);
    c2.limits.users = get_u(&r);
  }
  if (r.fmt >= FORMAT_7) c2.limits.retention_ms = get_u(&r);
  if (r.err) goto out;
  e = pt_engine_new(&c2);
  e->now = get_i(&r);
  e->event_seq = get_u(&r);
  const void *st = get_bin(&r, sizeof e->st, NULL);
  if (st) memcpy(&e->st, st, sizeof e->st);
  if (r.fmt >= FORMAT_5) {
    e->id_era = (uint8_t)get_u32(&r, 255);
    e->id_tag = get_u(&r);
    const uint8_t *keys = get_bin(&r, 16 * 17, NULL);
    for (int i = 0; keys && i < 16; i++) {
      uint8_t era = keys[17 * i];
      if (era && ((era & 15) != i || i == 0)) r.err = "an id key in the wrong place";
      if (!era) continue;
      e->id_keys[i].era = era;
      memcpy(e->id_keys[i].raw, keys + 17 * i + 1, 16);
      pt__speck_schedule(e->id_keys[i].raw, e->id_keys[i].rk);
    }
    if (!r.err && e->id_era && e->id_keys[e->id_era & 15].era != e->id_era) r.err = "the current era has no key";
    pt__id_order(e);
  }
  uint32_t npages = get_u32(&r, (1u << 16));
  e->free_head = get_u32(&r, UINT32_MAX);
  e->hold_hwm = get_u32(&r, (uint64_t)npages * PT_HOLD_PAGE);
  if (!r.err && npages != (e->hold_hwm + (uint64_t)PT_HOLD_PAGE - 1) / PT_HOLD_PAGE)
    r.err = "hold pages do not match the holds used";
  if (r.err) goto out;
  e->pages = pt_xcalloc(npages ? npages : 1, sizeof(*e->pages));
  for (uint32_t p = 0; p < npages && !r.err; p++) {
    uint64_t base = (uint64_t)p * PT_HOLD_PAGE;
    uint64_t used = e->hold_hwm <= base ? 0 : e->hold_hwm - base;
    if (used > PT_HOLD_PAGE) used = PT_HOLD_PAGE;
    const void *page = get_bin(&r, used * sizeof(pt_hold), NULL);
    if (!page) break;
    e->pages[p] = pt_big_alloc(PT_HOLD_PAGE_BYTES);
    e->npages = p + 1; /* what pt_engine_free will free */
    memcpy(e->pages[p], page, used * sizeof(pt_hold));
  }
  e->nslots = e->npages * PT_HOLD_PAGE;
  get_store(&r, &e->users);
  if (r.fmt == FORMAT_7) { /* lists by the old records' sizes: the records are copied (users_from_prev) */
    get_bin(&r, ((offsetof(user7, key) + PT_ID_MAX + 3) / 4 + 1) * sizeof(uint32_t), NULL);
  } else if (r.fmt >= FORMAT_8) {
    const void *fl = get_bin(&r, sizeof e->user_free, NULL);
    if (fl) memcpy(e->user_free, fl, sizeof e->user_free); /* check_holds checks them */
  }
  get_store(&r, &e->idem_log);
  get_map(&r, &e->idem);
  e->idem_base = get_i(&r);
  e->idem_tail_forget = get_i(&r);
  if (r.fmt <= FORMAT_3) { /* the matching trees' node pool */
    uint32_t nodes = get_u32(&r, UINT32_MAX);
    get_u(&r);
    get_u(&r);
    get_bin(&r, (size_t)nodes * sizeof(pt_onode), NULL);
  }
  uint32_t ncamps = get_count(&r);
  if (r.err) goto out;
  nlists = 2 * (size_t)ncamps;
  lists = pt_xcalloc(nlists + 1, sizeof(*lists));
  for (uint32_t i = 0; i < ncamps && !r.err; i++) get_campaign(&r, e, &lists[2 * i]);
  if (r.err) goto out;
  if (r.fmt == FORMAT_2) { /* every store reference: holds' users and the tables */
    for (uint32_t s = 0; s < e->hold_hwm; s++) hold_at(e, s)->user = ref_from_prev(hold_at(e, s)->user);
    map_refs_from_prev(&e->idem);
    for (uint32_t i = 0; i < e->ncamps; i++) map_refs_from_prev(&e->camps[i]->users);
  }
  if (r.fmt < FORMAT_8) users_from_prev(&r, e);
  uint32_t ngroups = get_u32(&r, UINT32_MAX);
  size_t nfree = 0;
  const void *gen = get_bin(&r, (size_t)ngroups * sizeof(uint32_t), NULL);
  const void *gfree = get_bin(&r, SIZE_MAX, &nfree);
  if (r.err) goto out;
  if (nfree % sizeof(uint32_t) || nfree / sizeof(uint32_t) > ngroups) {
    r.err = "bad group free list";
    goto out;
  }
  size_t cap = ngroups ? ngroups : 1;
  e->groups = pt_xcalloc(cap, sizeof(*e->groups));
  e->group_gen = pt_xmalloc(cap * sizeof(uint32_t));
  e->group_free = pt_xmalloc(cap * sizeof(uint32_t));
  e->ngroups = e->groups_cap = ngroups; /* only now: pt_engine_free walks them */
  memcpy(e->group_gen, gen, (size_t)ngroups * sizeof(uint32_t));
  memcpy(e->group_free, gfree, nfree);
  e->ngroup_free = (uint32_t)(nfree / sizeof(uint32_t));
  if (!ngroups) e->groups_cap = 0;
  uint32_t live = get_u32(&r, e->ngroups);
  if (!r.err && live > r.len - r.off) r.err = "a count larger than the snapshot";
  for (uint32_t i = 0; i < live && !r.err; i++) get_group(&r, e);
  uint8_t *linked = pt_xcalloc(cap, 1);
  for (uint32_t i = 0; i < e->ncamps && !r.err; i++) {
    link_list(&r, e, e->camps[i], &e->camps[i]->groupq, &lists[2 * i], true, linked);
    link_list(&r, e, e->camps[i], &e->camps[i]->gretireq, &lists[2 * i + 1], false, linked);
  }
  free(linked);
  if (!r.err && (!next(&r, MSGPACK_OBJECT_STR) || r.u.data.via.str.size != 3 ||
                 memcmp(r.u.data.via.str.ptr, "end", 3)))
    r.err = r.err ? r.err : "missing end mark";
  if (!r.err && r.off != len) r.err = "bytes after the end mark";
  check(&r, e);
  check_holds(&r, e);
  if (!r.err) count_refs(&r, e);
  if (!r.err && !pt__idem_check(e)) r.err = "the remembered effects are not whole records";
  if (!r.err) pt__match_rebuild(e);
  for (uint32_t i = 0; !r.err && i < e->ncamps; i++) pt__camp_reschedule(e, e->camps[i]);
out:
  if (lists) {
    for (size_t i = 0; i < nlists; i++) free(lists[i].v);
    free(lists);
  }
  msgpack_unpacked_destroy(&r.u);
  if (r.err) {
    snprintf(err, errlen, "snapshot: %s (at byte %zu)", r.err, r.off);
    pt_engine_free(e);
    return NULL;
  }
  return e;
}
