#include "map.h"

#include <stdlib.h>
#include <string.h>

#include "bigmem.h"

#define MIN_CAP 16

#define MOVE_BUDGET 64 /* old slots visited per put/delete while growing */

void pt_map_init(pt_map *m, const pt_store *store, size_t key_off) {
  memset(m, 0, sizeof(*m));
  m->key_off = (uint32_t)key_off;
  m->store = store;
}

void pt_map_tab_alloc(pt_map_tab *t, size_t cap) {
  t->slots = pt_big_alloc(cap * sizeof(pt_map_slot));
  t->mask = (uint32_t)(cap - 1);
  t->count = 0;
}

static void tab_free(pt_map_tab *t) {
  if (t->slots) pt_big_free(t->slots, ((size_t)t->mask + 1) * sizeof(pt_map_slot));
  memset(t, 0, sizeof(*t));
}

void pt_map_destroy(pt_map *m) {
  tab_free(&m->cur);
  tab_free(&m->old);
  m->count = 0;
}

static inline void *rec_of(const pt_map *m, uint32_t ref) { return pt_store_at(m->store, ref); }

static bool key_eq(const pt_map *m, const void *rec, pt_bytes key) {
  const uint8_t *k = (const uint8_t *)rec + m->key_off;
  return k[0] == key.len && memcmp(k + 1, key.p, key.len) == 0;
}

/* Robin Hood linear probing: an entry never sits further from its home slot
 * than the entries it passed, so a lookup stops as soon as it meets an
 * entry closer to home than itself. Misses (every new request id) cost
 * about as much as hits, even at high load. */
static inline uint32_t dist(uint32_t mask, uint32_t i, uint32_t h) { return (i - h) & mask; }

static void *tab_get(const pt_map *m, const pt_map_tab *t, uint32_t h, pt_bytes key,
                     uint32_t *ref) {
  if (!t->slots) return NULL;
  for (uint32_t d = 0, i = h & t->mask;; d++, i = (i + 1) & t->mask) {
    const pt_map_slot *s = &t->slots[i];
    if (s->hash == 0 || dist(t->mask, i, s->hash) < d) return NULL;
    if (s->hash == h) {
      void *rec = rec_of(m, s->ref);
      if (key_eq(m, rec, key)) {
        if (ref) *ref = s->ref;
        return rec;
      }
    }
  }
}

static void tab_insert(pt_map_tab *t, uint32_t h, uint32_t ref) {
  pt_map_slot cur = {h, ref};
  for (uint32_t d = 0, i = h & t->mask;; d++, i = (i + 1) & t->mask) {
    if (t->slots[i].hash == 0) {
      t->slots[i] = cur;
      t->count++;
      return;
    }
    uint32_t their = dist(t->mask, i, t->slots[i].hash);
    if (their < d) { /* take from the rich: swap and carry theirs on */
      pt_map_slot x = t->slots[i];
      t->slots[i] = cur;
      cur = x;
      d = their;
    }
  }
}

/* Deletes the entry of key (key.p), or else the entry that refers to ref. */
static bool tab_del(const pt_map *m, pt_map_tab *t, uint32_t h, pt_bytes key, uint32_t ref) {
  if (!t->slots) return false;
  uint32_t i = h & t->mask;
  for (uint32_t d = 0;; d++, i = (i + 1) & t->mask) {
    pt_map_slot *s = &t->slots[i];
    if (s->hash == 0 || dist(t->mask, i, s->hash) < d) return false;
    if (s->hash == h && (key.p ? key_eq(m, rec_of(m, s->ref), key) : s->ref == ref)) break;
  }
  /* Backward shift: pull the following displaced entries one step home. */
  for (uint32_t j = (i + 1) & t->mask; t->slots[j].hash && dist(t->mask, j, t->slots[j].hash) > 0;
       i = j, j = (j + 1) & t->mask)
    t->slots[i] = t->slots[j];
  t->slots[i].hash = 0;
  t->slots[i].ref = 0;
  t->count--;
  return true;
}

/* Moves whole clusters from old to cur: a cluster is self-contained (no
 * probe crosses an empty slot), so the rest of old stays searchable. */
static void move_some(pt_map *m, uint32_t budget) {
  pt_map_tab *o = &m->old;
  while (o->count && budget) {
    uint32_t i = m->move_pos;
    if (o->slots[i].hash == 0) {
      m->move_pos = (i + 1) & o->mask;
      budget--;
      continue;
    }
    while (o->slots[i].hash) {
      tab_insert(&m->cur, o->slots[i].hash, o->slots[i].ref);
      o->slots[i].hash = 0;
      o->slots[i].ref = 0;
      o->count--;
      i = (i + 1) & o->mask;
      if (budget) budget--;
    }
    m->move_pos = i;
  }
  if (o->count == 0 && o->slots) tab_free(o);
}

static void grow(pt_map *m) {
  if (m->old.slots) move_some(m, UINT32_MAX); /* growth outran the moving */
  uint32_t cap = m->cur.slots ? (m->cur.mask + 1) * 2 : MIN_CAP;
  m->old = m->cur;
  pt_map_tab_alloc(&m->cur, cap);
  m->move_pos = 0;
  if (m->old.slots) /* start at an empty slot: then always at a cluster start */
    while (m->old.slots[m->move_pos].hash) m->move_pos = (m->move_pos + 1) & m->old.mask;
  else
    memset(&m->old, 0, sizeof m->old);
}

void *pt_map_lookup(const pt_map *m, uint64_t hash, pt_bytes key, uint32_t *ref) {
  uint32_t h = pt_map_fix(hash);
  void *r = tab_get(m, &m->cur, h, key, ref);
  return r || !m->old.count ? r : tab_get(m, &m->old, h, key, ref);
}

void pt_map_put(pt_map *m, uint64_t hash, uint32_t ref) {
  /* Keep the load under 7/8: Robin Hood keeps probes short up to there. */
  if (!m->cur.slots || ((uint64_t)m->cur.count + 1) * 8 > ((uint64_t)m->cur.mask + 1) * 7) grow(m);
  tab_insert(&m->cur, pt_map_fix(hash), ref);
  m->count++;
  if (m->old.count) move_some(m, MOVE_BUDGET);
}

static bool del(pt_map *m, uint64_t hash, pt_bytes key, uint32_t ref) {
  uint32_t h = pt_map_fix(hash);
  bool found = tab_del(m, &m->cur, h, key, ref) || (m->old.count && tab_del(m, &m->old, h, key, ref));
  if (found) m->count--;
  if (m->old.count) move_some(m, MOVE_BUDGET);
  return found;
}

bool pt_map_del(pt_map *m, uint64_t hash, pt_bytes key) {
  static const uint8_t none[1];
  return del(m, hash, key.p ? key : (pt_bytes){none, 0}, 0);
}

bool pt_map_del_ref(pt_map *m, uint64_t hash, uint32_t ref) { return del(m, hash, (pt_bytes){0}, ref); }
