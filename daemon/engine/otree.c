#include "otree.h"

#include <stdlib.h>

#include "xalloc.h"

void pt_opool_init(pt_opool *p) {
  p->v = NULL;
  p->n = p->cap = 0;
  p->free_head = PT_ONIL;
  p->rng = 0x9e3779b9u;
}

void pt_opool_free(pt_opool *p) {
  free(p->v);
  p->v = NULL;
  p->n = p->cap = 0;
  p->free_head = PT_ONIL;
}

uint32_t pt_onode_new(pt_opool *p, uint64_t key, uint32_t val) {
  uint32_t i;
  if (p->free_head != PT_ONIL) {
    i = p->free_head;
    p->free_head = p->v[i].l;
  } else {
    if (p->n == p->cap) {
      p->cap = p->cap ? p->cap * 2 : 256;
      p->v = pt_xrealloc(p->v, (size_t)p->cap * sizeof(*p->v));
    }
    i = p->n++;
  }
  p->rng ^= p->rng << 13; /* xorshift32: priorities need no quality, only spread */
  p->rng ^= p->rng >> 17;
  p->rng ^= p->rng << 5;
  p->v[i] = (pt_onode){.l = PT_ONIL, .r = PT_ONIL, .size = 1, .prio = p->rng, .key = key, .val = val};
  return i;
}

void pt_onode_release(pt_opool *p, uint32_t i) {
  p->v[i].l = p->free_head;
  p->free_head = i;
}

static inline uint32_t sz(const pt_opool *p, uint32_t t) { return t == PT_ONIL ? 0 : p->v[t].size; }
static inline void pull(pt_opool *p, uint32_t t) {
  p->v[t].size = 1 + sz(p, p->v[t].l) + sz(p, p->v[t].r);
}

/* Splits t into keys < key (*a) and keys >= key (*b). */
static void split(pt_opool *p, uint32_t t, uint64_t key, uint32_t *a, uint32_t *b) {
  if (t == PT_ONIL) {
    *a = *b = PT_ONIL;
  } else if (p->v[t].key < key) {
    uint32_t r;
    split(p, p->v[t].r, key, &r, b);
    p->v[t].r = r;
    pull(p, t);
    *a = t;
  } else {
    uint32_t l;
    split(p, p->v[t].l, key, a, &l);
    p->v[t].l = l;
    pull(p, t);
    *b = t;
  }
}

/* Every key of a is below every key of b. */
static uint32_t merge(pt_opool *p, uint32_t a, uint32_t b) {
  if (a == PT_ONIL) return b;
  if (b == PT_ONIL) return a;
  if (p->v[a].prio > p->v[b].prio) {
    uint32_t r = merge(p, p->v[a].r, b);
    p->v[a].r = r;
    pull(p, a);
    return a;
  }
  uint32_t l = merge(p, a, p->v[b].l);
  p->v[b].l = l;
  pull(p, b);
  return b;
}

void pt_otree_insert(pt_opool *p, uint32_t *root, uint32_t node) {
  uint32_t a, b;
  split(p, *root, p->v[node].key, &a, &b);
  *root = merge(p, merge(p, a, node), b);
}

static uint32_t remove_rec(pt_opool *p, uint32_t t, uint64_t key, uint32_t *out) {
  if (t == PT_ONIL) return PT_ONIL;
  if (p->v[t].key == key) {
    *out = t;
    uint32_t m = merge(p, p->v[t].l, p->v[t].r);
    p->v[t].l = p->v[t].r = PT_ONIL;
    p->v[t].size = 1;
    return m;
  }
  if (key < p->v[t].key) {
    uint32_t l = remove_rec(p, p->v[t].l, key, out);
    p->v[t].l = l;
  } else {
    uint32_t r = remove_rec(p, p->v[t].r, key, out);
    p->v[t].r = r;
  }
  pull(p, t);
  return t;
}

uint32_t pt_otree_remove(pt_opool *p, uint32_t *root, uint64_t key) {
  uint32_t out = PT_ONIL;
  *root = remove_rec(p, *root, key, &out);
  return out;
}

uint32_t pt_otree_rank(const pt_opool *p, uint32_t t, uint64_t key) {
  uint32_t rank = 0;
  while (t != PT_ONIL) {
    if (p->v[t].key < key) {
      rank += 1 + sz(p, p->v[t].l);
      t = p->v[t].r;
    } else {
      t = p->v[t].l;
    }
  }
  return rank;
}

bool pt_otree_has(const pt_opool *p, uint32_t t, uint64_t key) {
  while (t != PT_ONIL && p->v[t].key != key) t = key < p->v[t].key ? p->v[t].l : p->v[t].r;
  return t != PT_ONIL;
}

uint32_t pt_otree_select(const pt_opool *p, uint32_t t, uint32_t i) {
  while (t != PT_ONIL) {
    uint32_t ls = sz(p, p->v[t].l);
    if (i < ls) {
      t = p->v[t].l;
    } else if (i == ls) {
      return t;
    } else {
      i -= ls + 1;
      t = p->v[t].r;
    }
  }
  return PT_ONIL;
}
