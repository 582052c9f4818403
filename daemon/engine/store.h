/* Record storage addressed by 32-bit references instead of pointers, so that
 * a hash-table slot (32-bit hash + 32-bit reference) is 8 bytes, and a hold
 * names its user in 4.
 *
 * Records live in chunks growing from 1 KiB to 2 MiB (so a campaign with ten
 * users does not cost 2 MiB, and a big store sits on huge pages: bigmem.h);
 * a reference is the chunk number (13 bits) and the offset in 4-byte units
 * (19 bits). Records never move. Two uses:
 * - arena: records appended, all freed together (users);
 * - FIFO: records appended and dropped oldest first (remembered request
 *   ids); chunks are freed as the head passes them, the last one kept as a
 *   spare for the tail. Chunk numbers wrap, which is safe while fewer than
 *   2^13 chunks (16 GiB) are live at once.
 * A record is at most PT_STORE_MAX bytes and never spans chunks. */
#ifndef PT_STORE_H
#define PT_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PT_STORE_UNIT 4u
#define PT_STORE_OFF_BITS 19u
#define PT_STORE_CHUNK_UNITS (1u << PT_STORE_OFF_BITS) /* 2 MiB */
#define PT_STORE_MAX 1024u

typedef struct pt_store {
  uint8_t **ring;     /* chunk n at ring[n & ring_mask] */
  uint32_t *ring_cap; /* units in each chunk */
  uint32_t *ring_end; /* units used in each chunk (closed chunks) */
  uint32_t ring_mask;
  uint32_t head_no, tail_no; /* oldest and newest live chunk; tail_no+1 == head_no: none */
  uint32_t head_off;         /* FIFO: units of the head chunk already dropped */
  uint32_t tail_used;        /* units used in the tail chunk */
  uint32_t nchunks;
  uint8_t *spare;            /* a full-size chunk the head left, for the tail */
  size_t bytes;              /* chunk memory held, spare included */
  int align8;                /* records start on 8-byte boundaries */
} pt_store;

void pt_store_init(pt_store *s);
void pt_store_free(pt_store *s);
/* Space for n bytes (n <= PT_STORE_MAX), 4-byte aligned; *ref names it. */
void *pt_store_alloc(pt_store *s, size_t n, uint32_t *ref);
/* Memory for a chunk of units (snapshot restore fills ring[] with these). */
uint8_t *pt_store_chunk_alloc(uint32_t units);

static inline void *pt_store_at(const pt_store *s, uint32_t ref) {
  return s->ring[(ref >> PT_STORE_OFF_BITS) & s->ring_mask] +
         (size_t)(ref & (PT_STORE_CHUNK_UNITS - 1)) * PT_STORE_UNIT;
}

/* Does [ref, ref + n bytes) lie in what the store has handed out (and, FIFO,
 * not dropped)? For checking references read from outside (a snapshot). */
bool pt_store_holds(const pt_store *s, uint32_t ref, size_t n);
/* The end of what is handed out in ref's chunk; NULL if ref is not in it. */
const uint8_t *pt_store_used_end(const pt_store *s, uint32_t ref);
/* ref as (chunks from the head) * PT_STORE_CHUNK_UNITS + offset; -1 if it is
 * not in what is handed out. */
int64_t pt_store_unit_index(const pt_store *s, uint32_t ref);

/* FIFO use: the oldest record (NULL when empty) and its reference. */
void *pt_store_head(pt_store *s, uint32_t *ref);
/* Drops the oldest record, of n bytes as allocated. */
void pt_store_pop(pt_store *s, size_t n);

static inline size_t pt_store_units(size_t n) {
  return (n + PT_STORE_UNIT - 1) / PT_STORE_UNIT;
}

#endif
