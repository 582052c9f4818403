/* Two allocators for records with known lifetimes, both without per-object
 * headers:
 * - pt_arena: bump allocation, everything freed at once (per-campaign users).
 * - pt_fifo: records appended and freed strictly in order (request ids kept
 *   for a window); whole chunks are freed as the head passes them. */
#ifndef PT_ARENA_H
#define PT_ARENA_H

#include <stddef.h>
#include <stdint.h>

typedef struct pt_chunk {
  struct pt_chunk *next;
  size_t used, cap;
  _Alignas(8) uint8_t data[];
} pt_chunk;

typedef struct pt_arena {
  pt_chunk *head; /* newest chunk first */
  size_t bytes;
} pt_arena;

void *pt_arena_alloc(pt_arena *a, size_t n);
void pt_arena_free_all(pt_arena *a);

typedef struct pt_fifo {
  pt_chunk *head, *tail; /* oldest, newest */
  size_t head_off;
  size_t bytes;
} pt_fifo;

void *pt_fifo_push(pt_fifo *f, size_t n);
/* Oldest record, or NULL when empty. */
void *pt_fifo_peek(pt_fifo *f);
/* Drops the oldest record, whose size the caller gives (as pushed). */
void pt_fifo_pop(pt_fifo *f, size_t n);
void pt_fifo_free_all(pt_fifo *f);

static inline size_t pt_align8(size_t n) { return (n + 7) & ~(size_t)7; }

#endif
