#include "store.h"

#include <stdlib.h>
#include <string.h>

#include "bigmem.h"
#include "xalloc.h"

#define FIRST_UNITS 256u /* 1 KiB */
#define MAX_CHUNKS (1u << (32 - PT_STORE_OFF_BITS))

void pt_store_init(pt_store *s) { memset(s, 0, sizeof(*s)); }

uint8_t *pt_store_chunk_alloc(uint32_t units) {
  return pt_big_alloc((size_t)units * PT_STORE_UNIT);
}

static void chunk_release(uint8_t *p, uint32_t units) { pt_big_free(p, (size_t)units * PT_STORE_UNIT); }

void pt_store_free(pt_store *s) {
  for (uint32_t i = 0; i < s->nchunks; i++) {
    uint32_t k = (s->head_no + i) & s->ring_mask;
    chunk_release(s->ring[k], s->ring_cap[k]);
  }
  if (s->spare) chunk_release(s->spare, PT_STORE_CHUNK_UNITS);
  free(s->ring);
  free(s->ring_cap);
  free(s->ring_end);
  memset(s, 0, sizeof(*s));
}

static void ring_grow(pt_store *s) {
  uint32_t cap = s->ring ? (s->ring_mask + 1) * 2 : 16;
  if (cap > MAX_CHUNKS) pt_fatal("record store over 16 GiB");
  uint8_t **ring = pt_xcalloc(cap, sizeof(*ring));
  uint32_t *rcap = pt_xcalloc(cap, sizeof(*rcap)), *rend = pt_xcalloc(cap, sizeof(*rend));
  for (uint32_t i = 0; i < s->nchunks; i++) {
    uint32_t n = s->head_no + i, from = n & s->ring_mask, to = n & (cap - 1);
    ring[to] = s->ring[from];
    rcap[to] = s->ring_cap[from];
    rend[to] = s->ring_end[from];
  }
  free(s->ring);
  free(s->ring_cap);
  free(s->ring_end);
  s->ring = ring;
  s->ring_cap = rcap;
  s->ring_end = rend;
  s->ring_mask = cap - 1;
}

static inline uint32_t cap_of(const pt_store *s, uint32_t n) { return s->ring_cap[n & s->ring_mask]; }

static void chunk_open(pt_store *s) {
  uint32_t units = FIRST_UNITS;
  if (s->nchunks) {
    uint32_t t = s->tail_no & s->ring_mask;
    s->ring_end[t] = s->tail_used; /* closed */
    units = cap_of(s, s->tail_no) * 2u;
    if (units > PT_STORE_CHUNK_UNITS) units = PT_STORE_CHUNK_UNITS;
  }
  if (!s->ring || s->nchunks > s->ring_mask) ring_grow(s);
  uint32_t n = s->nchunks ? s->tail_no + 1 : s->head_no;
  uint32_t i = n & s->ring_mask;
  if (units == PT_STORE_CHUNK_UNITS && s->spare) { /* FIFO steady state: no new memory */
    s->ring[i] = s->spare;
    s->spare = NULL;
  } else {
    s->ring[i] = pt_store_chunk_alloc(units);
    s->bytes += (size_t)units * PT_STORE_UNIT;
  }
  s->ring_cap[i] = units;
  s->ring_end[i] = 0;
  s->tail_no = n;
  s->tail_used = 0;
  if (!s->nchunks) s->head_off = 0;
  s->nchunks++;
}

void *pt_store_alloc(pt_store *s, size_t n, uint32_t *ref) {
  uint32_t units = (uint32_t)pt_store_units(n);
  if (s->align8 && (s->tail_used & 1) && s->nchunks) s->tail_used++;
  if (!s->nchunks || cap_of(s, s->tail_no) < s->tail_used + units) {
    chunk_open(s);
    while (cap_of(s, s->tail_no) < units) chunk_open(s); /* small first chunks */
  }
  *ref = ((s->tail_no & (MAX_CHUNKS - 1)) << PT_STORE_OFF_BITS) | s->tail_used;
  void *p = s->ring[s->tail_no & s->ring_mask] + (size_t)s->tail_used * PT_STORE_UNIT;
  s->tail_used += units;
  return p;
}

const uint8_t *pt_store_used_end(const pt_store *s, uint32_t ref) {
  uint32_t i = ((ref >> PT_STORE_OFF_BITS) - s->head_no) & (MAX_CHUNKS - 1); /* chunks from the head */
  if (i >= s->nchunks) return NULL;
  uint32_t no = s->head_no + i, off = ref & (PT_STORE_CHUNK_UNITS - 1);
  uint32_t end = no == s->tail_no ? s->tail_used : s->ring_end[no & s->ring_mask];
  if (off < (i == 0 ? s->head_off : 0) || off >= end) return NULL;
  return s->ring[no & s->ring_mask] + (size_t)end * PT_STORE_UNIT;
}

int64_t pt_store_unit_index(const pt_store *s, uint32_t ref) {
  if (!pt_store_used_end(s, ref)) return -1;
  uint32_t i = ((ref >> PT_STORE_OFF_BITS) - s->head_no) & (MAX_CHUNKS - 1);
  return (int64_t)i * PT_STORE_CHUNK_UNITS + (ref & (PT_STORE_CHUNK_UNITS - 1));
}

bool pt_store_holds(const pt_store *s, uint32_t ref, size_t n) {
  const uint8_t *end = pt_store_used_end(s, ref);
  return end && (size_t)(end - (const uint8_t *)pt_store_at(s, ref)) >= n;
}

void *pt_store_head(pt_store *s, uint32_t *ref) {
  while (s->nchunks) {
    uint32_t i = s->head_no & s->ring_mask;
    uint32_t end = s->head_no == s->tail_no ? s->tail_used : s->ring_end[i];
    if (s->head_off < end) {
      *ref = ((s->head_no & (MAX_CHUNKS - 1)) << PT_STORE_OFF_BITS) | s->head_off;
      return s->ring[i] + (size_t)s->head_off * PT_STORE_UNIT;
    }
    if (s->head_no == s->tail_no) { /* empty: reuse the last chunk from its start */
      s->head_off = s->tail_used = 0;
      return NULL;
    }
    uint32_t cap = cap_of(s, s->head_no);
    if (cap == PT_STORE_CHUNK_UNITS && !s->spare) {
      s->spare = s->ring[i];
    } else {
      s->bytes -= (size_t)cap * PT_STORE_UNIT;
      chunk_release(s->ring[i], cap);
    }
    s->ring[i] = NULL;
    s->head_no++;
    s->head_off = 0;
    s->nchunks--;
  }
  return NULL;
}

void pt_store_pop(pt_store *s, size_t n) { s->head_off += (uint32_t)pt_store_units(n); }
