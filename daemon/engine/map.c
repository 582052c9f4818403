#include "map.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

#define MIN_CAP 16

void pt_map_init(pt_map *m, size_t key_off) {
  memset(m, 0, sizeof(*m));
  m->key_off = (uint32_t)key_off;
}

void pt_map_destroy(pt_map *m) {
  free(m->slots);
  m->slots = NULL;
  m->mask = 0;
  m->count = 0;
}

static bool key_eq(const pt_map *m, const void *rec, pt_bytes key) {
  const uint8_t *k = (const uint8_t *)rec + m->key_off;
  return k[0] == key.len && memcmp(k + 1, key.p, key.len) == 0;
}

/* Robin Hood linear probing: an entry never sits further from its home slot
 * than the entries it passed, so a lookup stops as soon as it meets an
 * entry closer to home than itself. Misses (every new request id) cost
 * about as much as hits, even at high load. */
static inline uint32_t dist(const pt_map *m, uint32_t i, uint64_t h) {
  return (i - (uint32_t)h) & m->mask;
}

void *pt_map_get(const pt_map *m, uint64_t h, pt_bytes key) {
  if (!m->slots) return NULL;
  h = pt_map_fix(h);
  for (uint32_t d = 0, i = (uint32_t)h & m->mask;; d++, i = (i + 1) & m->mask) {
    const pt_map_slot *s = &m->slots[i];
    if (s->hash == 0 || dist(m, i, s->hash) < d) return NULL;
    if (s->hash == h && key_eq(m, s->rec, key)) return s->rec;
  }
}

static void insert_slot(pt_map_slot *slots, uint32_t mask, uint64_t h, void *rec) {
  pt_map_slot cur = {h, rec};
  for (uint32_t d = 0, i = (uint32_t)h & mask;; d++, i = (i + 1) & mask) {
    if (slots[i].hash == 0) {
      slots[i] = cur;
      return;
    }
    uint32_t their = (i - (uint32_t)slots[i].hash) & mask;
    if (their < d) { /* take from the rich: swap and carry theirs on */
      pt_map_slot t = slots[i];
      slots[i] = cur;
      cur = t;
      d = their;
    }
  }
}

static void grow(pt_map *m) {
  uint32_t cap = m->slots ? (m->mask + 1) * 2 : MIN_CAP;
  pt_map_slot *ns = pt_xcalloc(cap, sizeof(*ns));
  if (m->slots) {
    for (uint32_t i = 0; i <= m->mask; i++)
      if (m->slots[i].hash) insert_slot(ns, cap - 1, m->slots[i].hash, m->slots[i].rec);
    free(m->slots);
  }
  m->slots = ns;
  m->mask = cap - 1;
}

void pt_map_put(pt_map *m, uint64_t h, void *rec) {
  /* Keep the load under 7/8: Robin Hood keeps probes short up to there. */
  if (!m->slots || (m->count + 1) * 8 > (m->mask + 1) * 7) grow(m);
  insert_slot(m->slots, m->mask, pt_map_fix(h), rec);
  m->count++;
}

bool pt_map_del(pt_map *m, uint64_t h, pt_bytes key) {
  if (!m->slots) return false;
  h = pt_map_fix(h);
  uint32_t i = (uint32_t)h & m->mask;
  for (uint32_t d = 0;; d++, i = (i + 1) & m->mask) {
    pt_map_slot *s = &m->slots[i];
    if (s->hash == 0 || dist(m, i, s->hash) < d) return false;
    if (s->hash == h && key_eq(m, s->rec, key)) break;
  }
  /* Backward shift: pull the following displaced entries one step home. */
  for (uint32_t j = (i + 1) & m->mask; m->slots[j].hash && dist(m, j, m->slots[j].hash) > 0;
       i = j, j = (j + 1) & m->mask)
    m->slots[i] = m->slots[j];
  m->slots[i].hash = 0;
  m->slots[i].rec = NULL;
  m->count--;
  return true;
}

size_t pt_map_bytes(const pt_map *m) {
  return m->slots ? (size_t)(m->mask + 1) * sizeof(pt_map_slot) : 0;
}
