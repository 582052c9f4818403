/* Open-addressing hash table (Robin Hood linear probing, backward-shift
 * deletion) from byte-string keys to records in a pt_store. A slot is 8
 * bytes: 32 bits of the key's hash (0 marks an empty slot) and the record's
 * store reference. A record carries its key as `uint8_t klen; uint8_t key[]`
 * at key_off. The hash decides the home slot and filters probes; the key is
 * compared only on a hash match.
 *
 * Growing is incremental, as in Redis' dict: a doubled table takes new
 * entries while each put or delete moves a few whole clusters from the old
 * one, so no single call pays for rehashing millions of entries (a 240 ms
 * stall at 200k requests/s before this). Lookups look in both. */
#ifndef PT_MAP_H
#define PT_MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine.h"
#include "store.h"

typedef struct pt_map_slot {
  uint32_t hash; /* 0: empty; real hashes are forced non-zero */
  uint32_t ref;
} pt_map_slot;

typedef struct pt_map_tab {
  pt_map_slot *slots;
  uint32_t mask; /* capacity - 1, capacity a power of two */
  uint32_t count;
} pt_map_tab;

typedef struct pt_map {
  pt_map_tab cur; /* takes every insert */
  pt_map_tab old; /* being drained into cur; empty when not growing */
  uint32_t move_pos; /* in old: an empty slot or the start of a cluster */
  uint32_t count;
  uint32_t key_off;
  const pt_store *store;
} pt_map;

void pt_map_init(pt_map *m, const pt_store *store, size_t key_off);
void pt_map_destroy(pt_map *m);
/* An empty table of cap slots (a power of two) into t (bigmem.h). */
void pt_map_tab_alloc(pt_map_tab *t, size_t cap);
static inline uint32_t pt_map_fix(uint64_t h) { return (uint32_t)h ? (uint32_t)h : 1; }
/* The record with this key, or NULL; *ref (if ref) is its reference. */
void *pt_map_lookup(const pt_map *m, uint64_t h, pt_bytes key, uint32_t *ref);
static inline void *pt_map_get(const pt_map *m, uint64_t h, pt_bytes key) {
  return pt_map_lookup(m, h, key, NULL);
}
/* The key (of the record at ref) must be absent. */
void pt_map_put(pt_map *m, uint64_t h, uint32_t ref);
bool pt_map_del(pt_map *m, uint64_t h, pt_bytes key);
/* Deletes the entry that refers to ref (its key's hash h), if there is one:
 * a record may have been superseded under its key by a newer one. */
bool pt_map_del_ref(pt_map *m, uint64_t h, uint32_t ref);

/* Whole-table walks (restore's checks, format conversion): every position
 * of both tables, i < pt_map_positions(m); pt_map_entry is NULL where no
 * entry sits. */
static inline size_t pt_map_positions(const pt_map *m) {
  return (m->cur.slots ? (size_t)m->cur.mask + 1 : 0) + (m->old.slots ? (size_t)m->old.mask + 1 : 0);
}
static inline pt_map_slot *pt_map_entry(const pt_map *m, size_t i) {
  size_t nc = m->cur.slots ? (size_t)m->cur.mask + 1 : 0;
  pt_map_slot *s = i < nc ? &m->cur.slots[i] : &m->old.slots[i - nc];
  return s->hash ? s : NULL;
}

/* A hint: start loading the slot a lookup of h will read first. */
static inline void pt_map_prefetch(const pt_map *m, uint64_t h) {
  if (m->cur.slots) __builtin_prefetch(&m->cur.slots[pt_map_fix(h) & m->cur.mask]);
}

#endif
