#include "arena.h"

#include <stdlib.h>

#include "util.h"

#define CHUNK (64 * 1024 - 64)

static pt_chunk *chunk_new(size_t need) {
  size_t cap = need > CHUNK ? need : CHUNK;
  pt_chunk *c = pt_xmalloc(sizeof(pt_chunk) + cap);
  c->next = NULL;
  c->used = 0;
  c->cap = cap;
  return c;
}

void *pt_arena_alloc(pt_arena *a, size_t n) {
  n = pt_align8(n);
  if (!a->head || a->head->cap - a->head->used < n) {
    pt_chunk *c = chunk_new(n);
    c->next = a->head;
    a->head = c;
    a->bytes += sizeof(pt_chunk) + c->cap;
  }
  void *p = a->head->data + a->head->used;
  a->head->used += n;
  return p;
}

void pt_arena_free_all(pt_arena *a) {
  for (pt_chunk *c = a->head, *n; c; c = n) {
    n = c->next;
    free(c);
  }
  a->head = NULL;
  a->bytes = 0;
}

void *pt_fifo_push(pt_fifo *f, size_t n) {
  n = pt_align8(n);
  if (!f->tail || f->tail->cap - f->tail->used < n) {
    pt_chunk *c = chunk_new(n);
    if (f->tail)
      f->tail->next = c;
    else {
      f->head = c;
      f->head_off = 0;
    }
    f->tail = c;
    f->bytes += sizeof(pt_chunk) + c->cap;
  }
  void *p = f->tail->data + f->tail->used;
  f->tail->used += n;
  return p;
}

void *pt_fifo_peek(pt_fifo *f) {
  while (f->head && f->head_off == f->head->used) {
    if (f->head == f->tail) { /* empty: rewind the last chunk, keep it */
      f->head->used = 0;
      f->head_off = 0;
      return NULL;
    }
    pt_chunk *c = f->head;
    f->head = c->next;
    f->head_off = 0;
    f->bytes -= sizeof(pt_chunk) + c->cap;
    free(c);
  }
  return f->head ? f->head->data + f->head_off : NULL;
}

void pt_fifo_pop(pt_fifo *f, size_t n) { f->head_off += pt_align8(n); }

void pt_fifo_free_all(pt_fifo *f) {
  for (pt_chunk *c = f->head, *n; c; c = n) {
    n = c->next;
    free(c);
  }
  f->head = f->tail = NULL;
  f->head_off = 0;
  f->bytes = 0;
}
