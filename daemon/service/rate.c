#include "rate.h"

#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "xalloc.h"

bool pt_bucket_has(pt_bucket *b, uint32_t rate, uint32_t burst, int64_t now_ms) {
  if (!rate) return true;
  int64_t cap = (int64_t)(burst ? burst : rate) * 1000;
  if (!b->at_ms) {
    b->milli = cap, b->at_ms = now_ms;
  } else if (now_ms > b->at_ms) { /* rate tokens a second: rate milli-tokens a ms */
    int64_t gain = (now_ms - b->at_ms) * (int64_t)rate;
    b->milli = gain >= cap - b->milli ? cap : b->milli + gain;
    b->at_ms = now_ms;
  }
  return b->milli >= 1000;
}

void pt_bucket_take(pt_bucket *b, uint32_t rate) {
  if (rate) b->milli -= 1000;
}

#define PROBE 8 /* slots looked at for a user: the table's bound on work */

typedef struct slot {
  uint64_t key; /* the user's keyed hash, | 1; 0: free */
  pt_bucket b;
} slot;

struct pt_user_rates {
  slot *v;
  size_t mask, used;
  uint64_t seed;
};

pt_user_rates *pt_user_rates_new(size_t max_users, uint64_t seed) {
  pt_user_rates *t = pt_xcalloc(1, sizeof *t);
  size_t cap = 1024;
  while (cap < max_users) cap *= 2;
  t->v = pt_xcalloc(cap, sizeof *t->v);
  t->mask = cap - 1;
  t->seed = seed;
  return t;
}

void pt_user_rates_free(pt_user_rates *t) {
  if (!t) return;
  free(t->v);
  free(t);
}

size_t pt_user_rates_used(const pt_user_rates *t) { return t->used; }

/* Full again by now: it says nothing a fresh bucket would not. */
static bool refilled(const slot *s, uint32_t rate, uint32_t burst, int64_t now_ms) {
  int64_t cap = (int64_t)(burst ? burst : rate) * 1000;
  return (now_ms - s->b.at_ms) * (int64_t)rate >= cap - s->b.milli;
}

pt_bucket *pt_user_rates_bucket(pt_user_rates *t, pt_bytes user, uint32_t rate, uint32_t burst, int64_t now_ms) {
  uint64_t key = pt_hash(t->seed, user.p, user.len) | 1;
  size_t at = key & t->mask, take = SIZE_MAX, oldest = at;
  for (size_t i = 0; i < PROBE; i++) {
    size_t j = (at + i) & t->mask;
    slot *s = &t->v[j];
    if (s->key == key) return &s->b;
    if (take == SIZE_MAX && (!s->key || refilled(s, rate, burst, now_ms))) take = j;
    if (s->b.at_ms < t->v[oldest].b.at_ms) oldest = j;
  }
  if (take == SIZE_MAX) take = oldest; /* full here: the longest idle is forgotten */
  slot *s = &t->v[take];
  if (!s->key) t->used++;
  *s = (slot){.key = key};
  return &s->b;
}
