#include "bigmem.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "xalloc.h"

typedef struct range { size_t off, len; } range;

static struct {
  bool tried;
  uint8_t *base; /* the reservation; NULL: none */
  size_t size;
  size_t end;   /* carved from base so far */
  size_t ahead; /* announced to the sink, from base */
  range *free;  /* freed ranges below end, by offset, never adjacent */
  size_t nfree, capfree;
  void (*sink)(void *ctx, void *p, size_t len);
  void *ctx;
} A;

static size_t live;

/* The engine runs on one thread, but a recovery restores its next engine on
 * a worker thread while the loop goes on; blocks are 2 MiB or more, so a
 * lock per block costs nothing. It is held across fork, so a snapshot
 * child never inherits it taken; registered before main, so that its child
 * handler runs before any registered later (the prefault thread's calls
 * pt_big_set_prefault in the child). */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static void lock_take(void) { pthread_mutex_lock(&lock); }
static void lock_give(void) { pthread_mutex_unlock(&lock); }
__attribute__((constructor)) static void atfork(void) { pthread_atfork(lock_take, lock_give, lock_give); }

size_t pt_big_bytes(void) {
  lock_take();
  size_t n = live;
  lock_give();
  return n;
}

static void announce_ahead(void);

void pt_big_set_prefault(void (*sink)(void *ctx, void *p, size_t len), void *ctx) {
  lock_take();
  A.sink = sink;
  A.ctx = ctx;
  A.ahead = A.end; /* a new sink hears the next bytes afresh */
  if (A.base) announce_ahead();
  lock_give();
}

static size_t round_up(size_t n) { return (n + PT_BIG_MIN - 1) & ~(PT_BIG_MIN - 1); }

/* Over-maps by one huge page and cuts to a 2 MiB boundary: THP needs
 * aligned ranges. Fresh anonymous memory is zero. */
static uint8_t *map_aligned(size_t len, int flags) {
  uint8_t *raw = mmap(NULL, len + PT_BIG_MIN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | flags, -1, 0);
  if (raw == MAP_FAILED) return NULL;
  uint8_t *p = (uint8_t *)(((uintptr_t)raw + PT_BIG_MIN - 1) & ~(uintptr_t)(PT_BIG_MIN - 1));
  if (p > raw) munmap(raw, (size_t)(p - raw));
  size_t tail = (size_t)(raw + len + PT_BIG_MIN - (p + len));
  if (tail) munmap(p + len, tail);
#ifdef MADV_HUGEPAGE
  (void)madvise(p, len, MADV_HUGEPAGE); /* a hint: EINVAL without THP is fine */
#endif
  return p;
}

/* Address space the size of physical memory, none of it committed
 * (MAP_NORESERVE: under strict overcommit the kernel refuses it, and every
 * block is then its own mapping). */
static void reserve(void) {
  A.tried = true;
  long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);
  if (pages <= 0 || psize <= 0) return;
  size_t size = (size_t)pages * (size_t)psize & ~(PT_BIG_MIN - 1);
  if (size < 4 * PT_BIG_MIN) return;
  A.base = map_aligned(size, MAP_NORESERVE);
  if (A.base) A.size = size;
}

/* Tells the sink about the arena's next bytes past its end. */
static void announce_ahead(void) {
  if (!A.sink) return;
  size_t want = A.end / 8 > PT_BIG_AHEAD ? A.end / 8 : PT_BIG_AHEAD;
  size_t target = A.size - A.end < want ? A.size : A.end + want;
  if (target <= A.ahead) return;
  size_t from = A.ahead > A.end ? A.ahead : A.end;
  A.sink(A.ctx, A.base + from, target - from);
  A.ahead = target;
}

static uint8_t *arena_take(size_t len) {
  for (size_t i = 0; i < A.nfree; i++) { /* first fit: few ranges, and a block is 2 MiB or more */
    range *r = &A.free[i];
    if (r->len < len) continue;
    uint8_t *p = A.base + r->off;
    r->off += len;
    r->len -= len;
    if (!r->len) memmove(r, r + 1, (--A.nfree - i) * sizeof *r);
    return p; /* zero: its pages were dropped when it was freed */
  }
  if (A.size - A.end < len) return NULL;
  uint8_t *p = A.base + A.end;
  A.end += len;
  announce_ahead();
  return p;
}

static void arena_give(uint8_t *p, size_t len) {
  if (madvise(p, len, MADV_DONTNEED)) /* the pages back to the kernel; they read as zero again */
    memset(p, 0, len);                 /* (locked memory refuses): zero as a reused block must be */
  size_t off = (size_t)(p - A.base), i = 0;
  while (i < A.nfree && A.free[i].off < off) i++;
  bool joins_prev = i > 0 && A.free[i - 1].off + A.free[i - 1].len == off;
  bool joins_next = i < A.nfree && off + len == A.free[i].off;
  if (joins_prev && joins_next) {
    A.free[i - 1].len += len + A.free[i].len;
    memmove(&A.free[i], &A.free[i + 1], (--A.nfree - i) * sizeof(range));
  } else if (joins_prev) {
    A.free[i - 1].len += len;
  } else if (joins_next) {
    A.free[i].off = off;
    A.free[i].len += len;
  } else {
    if (A.nfree == A.capfree) {
      A.capfree = A.capfree ? 2 * A.capfree : 16;
      A.free = pt_xrealloc(A.free, A.capfree * sizeof(range));
    }
    memmove(&A.free[i + 1], &A.free[i], (A.nfree - i) * sizeof(range));
    A.free[i] = (range){off, len};
    A.nfree++;
  }
  range *last = &A.free[A.nfree - 1];
  if (last->off + last->len == A.end) { /* the arena's end moves back over it */
    A.end = last->off;
    A.nfree--;
  }
  if (A.sink) A.sink(A.ctx, p, len); /* likely handed out again soon */
}

bool pt_big_in_arena(const void *p) {
  return A.base && (const uint8_t *)p >= A.base && (const uint8_t *)p < A.base + A.size;
}

void *pt_big_alloc(size_t n) {
  if (n < PT_BIG_MIN) return pt_xcalloc(1, n ? n : 1);
  size_t len = round_up(n);
  lock_take();
  if (!A.tried) reserve();
  uint8_t *p = A.base ? arena_take(len) : NULL;
  if (!p && !(p = map_aligned(len, 0))) pt_fatal("out of memory (mmap)");
  live += len;
  lock_give();
  return p;
}

void pt_big_free(void *p, size_t n) {
  if (!p) return;
  if (n < PT_BIG_MIN) {
    free(p);
    return;
  }
  size_t len = round_up(n);
  lock_take();
  live -= len;
  if (pt_big_in_arena(p)) arena_give(p, len);
  else munmap(p, len);
  lock_give();
}
