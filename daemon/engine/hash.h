/* Seeded 64-bit hash for ids (up to PT_ID_MAX bytes). Seeded so that ids a
 * client picks cannot be aimed at one hash bucket. */
#ifndef PT_HASH_H
#define PT_HASH_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline uint64_t pt_mix(uint64_t a, uint64_t b) {
  __uint128_t r = (__uint128_t)a * b;
  return (uint64_t)r ^ (uint64_t)(r >> 64);
}

static inline uint64_t pt_hash(uint64_t seed, const uint8_t *p, size_t n) {
  const uint64_t k0 = 0xa0761d6478bd642fULL, k1 = 0xe7037ed1a0b428dbULL;
  uint64_t h = seed ^ k0 ^ (n * k1);
  while (n >= 8) {
    uint64_t w;
    memcpy(&w, p, 8);
    h = pt_mix(h ^ w, k1);
    p += 8;
    n -= 8;
  }
  uint64_t w = 0;
  if (n) memcpy(&w, p, n); /* an empty id may come with no pointer at all */
  return pt_mix(h ^ w ^ k0, k1 ^ n);
}

#endif
