/* Reservation and group ids as clients see them.
 *
 * Inside the engine a hold or a group is a slot, a generation (bumped each
 * time the slot is reused) and an era. Outside, its id is
 *   Speck64/128_key(era:8 | generation:24 | slot+1:32)
 * under the key of its era: a 64-bit block cipher, so ids are distinct
 * within an era, carry no order a stranger could walk, and a guess hits a
 * live hold about once in 2^56 / live holds tries.
 *
 * An era begins with each incarnation of a shard (pt_engine_set_id_key: a
 * fresh random key, journaled as an input so that a replay seals the same
 * ids). Holds and groups remember their era (4 bits), the engine the keys
 * of the last 15 eras, so the ids of holds made before a new era stay
 * valid, and an id handed out by an incarnation Redis lost, sealed under
 * another key, opens to nothing here: NOT_FOUND, never another customer's
 * hold. Era numbers skip multiples of 16: era 0 is the unkeyed layout of
 * engines before keys (generation << 32 | slot + 1), still read for state
 * written then. */
#include <string.h>

#include "engine_int.h"

static inline uint32_t ror32(uint32_t x, int r) { return (x >> r) | (x << (32 - r)); }
static inline uint32_t rol32(uint32_t x, int r) { return (x << r) | (x >> (32 - r)); }

static uint32_t le32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

void pt__speck_schedule(const uint8_t key[16], uint32_t rk[PT_SPECK_ROUNDS]) {
  uint32_t l[3] = {le32(key + 4), le32(key + 8), le32(key + 12)};
  rk[0] = le32(key);
  for (uint32_t i = 0; i + 1 < PT_SPECK_ROUNDS; i++) {
    l[i % 3] = (rk[i] + ror32(l[i % 3], 8)) ^ i;
    rk[i + 1] = rol32(rk[i], 3) ^ l[i % 3];
  }
}

uint64_t pt__speck_encrypt(const uint32_t rk[PT_SPECK_ROUNDS], uint64_t v) {
  uint32_t x = (uint32_t)(v >> 32), y = (uint32_t)v;
  for (int i = 0; i < PT_SPECK_ROUNDS; i++) {
    x = (ror32(x, 8) + y) ^ rk[i];
    y = rol32(y, 3) ^ x;
  }
  return (uint64_t)x << 32 | y;
}

uint64_t pt__speck_decrypt(const uint32_t rk[PT_SPECK_ROUNDS], uint64_t v) {
  uint32_t x = (uint32_t)(v >> 32), y = (uint32_t)v;
  for (int i = PT_SPECK_ROUNDS - 1; i >= 0; i--) {
    y = ror32(y ^ x, 3);
    x = rol32((x ^ rk[i]) - y, 8);
  }
  return (uint64_t)x << 32 | y;
}

void pt_engine_set_id_key(pt_engine *e, const uint8_t key[16], uint64_t tag) {
  unsigned era = e->id_era + 1u;
  if ((era & 15) == 0) era++;
  if (era > 255) era = 1;
  pt_id_key *k = &e->id_keys[era & 15];
  k->era = (uint8_t)era;
  memcpy(k->raw, key, 16);
  pt__speck_schedule(key, k->rk);
  e->id_era = (uint8_t)era;
  e->id_tag = tag;
  memset(e->sealed, 0, sizeof e->sealed); /* an entry's era may have had another key */
  pt__id_order(e);
  e->changes++;
}

void pt__id_order(pt_engine *e) {
  unsigned now = e->id_era & 15;
  e->id_nkeys = 0;
  for (unsigned step = 0; step < 16; step++) {
    unsigned k = (now + 16 - step) & 15;
    if (k && e->id_keys[k].era) e->id_order[e->id_nkeys++] = (uint8_t)k;
  }
}

uint64_t pt_engine_id_tag(const pt_engine *e) { return e->id_tag; }

uint64_t pt__id_seal(pt_engine *e, unsigned era4, uint64_t inner, int kind) {
  if (!era4) return inner;
  pt_sealed *s = &e->sealed[kind];
  if (s->id && s->inner == inner && s->era4 == era4) return s->id; /* a reply, then its mutation */
  const pt_id_key *k = &e->id_keys[era4];
  uint64_t id = pt__speck_encrypt(k->rk, (uint64_t)k->era << 56 | inner);
  *s = (pt_sealed){id, inner, (uint8_t)era4};
  return id;
}

bool pt__id_next(const pt_engine *e, uint64_t id, unsigned *cur, uint64_t *inner, unsigned *era4) {
  /* the current era first (almost every id), then the others newest first */
  while (*cur < e->id_nkeys) {
    unsigned k = e->id_order[(*cur)++];
    const pt_id_key *key = &e->id_keys[k];
    uint64_t p = pt__speck_decrypt(key->rk, id);
    if (p >> 56 != key->era) continue; /* not sealed under this key */
    *inner = p & ((UINT64_C(1) << 56) - 1);
    *era4 = k;
    return true;
  }
  if (*cur == e->id_nkeys) { /* last: the unkeyed layout, whose top byte is 0 */
    (*cur)++;
    if (!(id >> 56)) {
      *inner = id;
      *era4 = 0;
      return true;
    }
  }
  return false;
}

void pt__id_inner(const pt_engine *e, uint64_t id, int kind, uint64_t *inner, unsigned *era4) {
  const pt_sealed *s = &e->sealed[kind];
  if (id && s->id == id) { /* sealed a moment ago: no decryption */
    *inner = s->inner;
    *era4 = s->era4;
  } else { /* era 0 seals as itself: the id as it is, only longer to keep */
    *inner = id;
    *era4 = 0;
  }
}
