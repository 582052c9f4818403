#include "bigmem.h"

#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "xalloc.h"

static size_t mapped; /* the engine runs on one thread */

size_t pt_big_bytes(void) { return mapped; }

static size_t round_up(size_t n) { return (n + PT_BIG_MIN - 1) & ~(PT_BIG_MIN - 1); }

void *pt_big_alloc(size_t n) {
  if (n < PT_BIG_MIN) return pt_xcalloc(1, n ? n : 1);
  size_t len = round_up(n);
  /* Over-map by one huge page and cut to a 2 MiB boundary: THP needs
   * aligned ranges. Fresh anonymous memory is zero. */
  uint8_t *raw = mmap(NULL, len + PT_BIG_MIN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                      -1, 0);
  if (raw == MAP_FAILED) pt_fatal("out of memory (mmap)");
  uint8_t *p = (uint8_t *)(((uintptr_t)raw + PT_BIG_MIN - 1) & ~(uintptr_t)(PT_BIG_MIN - 1));
  if (p > raw) munmap(raw, (size_t)(p - raw));
  size_t tail = (size_t)(raw + len + PT_BIG_MIN - (p + len));
  if (tail) munmap(p + len, tail);
#ifdef MADV_HUGEPAGE
  (void)madvise(p, len, MADV_HUGEPAGE); /* a hint: EINVAL without THP is fine */
#endif
  mapped += len;
  return p;
}

void pt_big_free(void *p, size_t n) {
  if (!p) return;
  if (n < PT_BIG_MIN) {
    free(p);
    return;
  }
  munmap(p, round_up(n));
  mapped -= round_up(n);
}
