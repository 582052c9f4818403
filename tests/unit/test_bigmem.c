/* The big-block arena (daemon/engine/bigmem.c) and the prefault thread
 * (daemon/prefault.c): blocks are zeroed whether fresh or reused, freed
 * ranges are reused first-fit and coalesced, the sink hears of the next
 * ranges, and the thread touching memory the engine is writing at the same
 * moment changes none of it. */
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "bigmem.h"
#include "prefault.h"

#define MIB ((size_t)1 << 20)

static void assert_zero(const uint8_t *p, size_t len) {
  for (size_t i = 0; i < len; i += 64) {
    uint64_t w;
    memcpy(&w, p + i, sizeof w);
    if (w) fail_msg("byte %zu of a fresh block is not zero", i);
  }
}

static void test_blocks_zeroed_reused_coalesced(void **state) {
  (void)state;
  uint8_t *a = pt_big_alloc(4 * MIB), *b = pt_big_alloc(2 * MIB), *c = pt_big_alloc(3 * MIB);
  assert_zero(a, 4 * MIB), assert_zero(b, 2 * MIB), assert_zero(c, 3 * MIB);
  memset(a, 0xab, 4 * MIB), memset(b, 0xcd, 2 * MIB), memset(c, 0xef, 3 * MIB);
  size_t live = pt_big_bytes();
  if (!pt_big_in_arena(a)) skip(); /* no reservation here (strict overcommit): mmap per block */
  assert_ptr_equal(b, a + 4 * MIB); /* carved one after the other */
  assert_ptr_equal(c, b + 2 * MIB);
  pt_big_free(b, 2 * MIB);
  assert_int_equal(pt_big_bytes(), live - 2 * MIB);
  uint8_t *b2 = pt_big_alloc(2 * MIB); /* first fit: b's range, zero again */
  assert_ptr_equal(b2, b);
  assert_zero(b2, 2 * MIB);
  memset(b2, 0x11, 2 * MIB);
  pt_big_free(a, 4 * MIB);
  pt_big_free(b2, 2 * MIB); /* joins a's range: 6 MiB free before c */
  uint8_t *d = pt_big_alloc(5 * MIB + 1); /* rounds up to 6 MiB, fits the joined range */
  assert_ptr_equal(d, a);
  assert_zero(d, 6 * MIB);
  for (size_t i = 0; i < 3 * MIB; i += 4096) assert_int_equal(c[i], 0xef); /* c untouched */
  pt_big_free(d, 5 * MIB + 1);
  pt_big_free(c, 3 * MIB);
  assert_int_equal(pt_big_bytes(), live - 10 * MIB); /* c took 4 MiB: whole huge pages */
  void *small = pt_big_alloc(100); /* below PT_BIG_MIN: malloc's */
  assert_false(pt_big_in_arena(small));
  pt_big_free(small, 100);
}

typedef struct { uint8_t *p[64]; size_t len[64]; int n; } heard;

static void record(void *ctx, void *p, size_t len) {
  heard *h = ctx;
  if (h->n < 64) h->p[h->n] = p, h->len[h->n++] = len;
}

static void test_sink_hears_what_comes_next(void **state) {
  (void)state;
  heard h = {0};
  uint8_t *probe = pt_big_alloc(2 * MIB);
  bool arena = pt_big_in_arena(probe);
  pt_big_free(probe, 2 * MIB); /* at the arena's end: the end moves back */
  if (!arena) skip();
  /* a new sink hears at once the arena's next bytes, from its end on */
  pt_big_set_prefault(record, &h);
  assert_int_equal(h.n, 1);
  assert_true(h.len[0] >= PT_BIG_AHEAD);
  /* each block carved moves the announced window on: the ranges follow
   * one another, and the window reaches PT_BIG_AHEAD past every block */
  uint8_t *a = pt_big_alloc(2 * MIB), *b = pt_big_alloc(6 * MIB), *c = pt_big_alloc(2 * MIB);
  assert_ptr_equal(a, h.p[0]);
  assert_ptr_equal(b, a + 2 * MIB);
  assert_ptr_equal(c, b + 6 * MIB);
  assert_int_equal(h.n, 4);
  for (int i = 1; i < h.n; i++) assert_ptr_equal(h.p[i], h.p[i - 1] + h.len[i - 1]);
  assert_true(h.p[3] + h.len[3] >= c + 2 * MIB + PT_BIG_AHEAD);
  size_t rest = 2 * MIB;
  /* a freed range is announced as it is (it is handed out again first) */
  pt_big_free(b, 6 * MIB);
  assert_int_equal(h.n, 5);
  assert_ptr_equal(h.p[4], b);
  assert_int_equal(h.len[4], 6 * MIB);
  assert_ptr_equal(pt_big_alloc(4 * MIB), b); /* first fit, in the freed range */
  pt_big_set_prefault(NULL, NULL);
  pt_big_free(a, 2 * MIB);
  pt_big_free(b, 4 * MIB);
  pt_big_free(c, rest);
  assert_int_equal(h.n, 5); /* no sink, nothing heard */
  /* every block freed, the arena's end is back where it was */
  uint8_t *again = pt_big_alloc(2 * MIB);
  assert_ptr_equal(again, a);
  pt_big_free(again, 2 * MIB);
}

static uint64_t rnd(uint64_t *s) {
  *s ^= *s << 13, *s ^= *s >> 7, *s ^= *s << 17;
  return *s;
}

/* The thread touches the first word of every 4 KiB page of what the engine
 * takes next; the engine writes exactly those words the moment it has the
 * block. Whatever the interleaving, every block must read back what was
 * written, and every fresh one zero. */
static void test_thread_never_changes_what_the_engine_wrote(void **state) {
  (void)state;
  assert_int_equal(pt_prefault_start(), 0);
  uint64_t touched = 0, dropped = 0, seed = 0x9e3779b97f4a7c15ULL;
  enum { SLOTS = 24, ROUNDS = 400 };
  uint8_t *blk[SLOTS] = {0};
  size_t len[SLOTS] = {0};
  uint64_t tag[SLOTS] = {0};
  for (int r = 0; r < ROUNDS; r++) {
    int i = (int)(rnd(&seed) % SLOTS);
    if (blk[i]) { /* check, then free */
      for (size_t off = 0; off < len[i]; off += 4096) {
        uint64_t w;
        memcpy(&w, blk[i] + off, sizeof w);
        if (w != tag[i] + off) fail_msg("round %d: word at %zu of a live block changed", r, off);
      }
      pt_big_free(blk[i], len[i]);
      blk[i] = NULL;
    }
    len[i] = (1 + rnd(&seed) % 4) * PT_BIG_MIN;
    blk[i] = pt_big_alloc(len[i]);
    tag[i] = rnd(&seed) | 1;
    for (size_t off = 0; off < len[i]; off += 4096) {
      uint64_t w;
      memcpy(&w, blk[i] + off, sizeof w);
      if (w) fail_msg("round %d: a fresh block's word at %zu is not zero", r, off);
      w = tag[i] + off;
      memcpy(blk[i] + off, &w, sizeof w);
    }
    if (r == ROUNDS / 2) { /* let the idle-priority thread run: wait until it has touched something */
      for (int t = 0; t < 6000 && !touched; t++) {
        nanosleep(&(struct timespec){.tv_nsec = 10000000}, NULL);
        pt_prefault_stats(&touched, &dropped);
      }
      assert_true(touched > 0);
    }
  }
  for (int i = 0; i < SLOTS; i++)
    if (blk[i]) {
      for (size_t off = 0; off < len[i]; off += 4096) {
        uint64_t w;
        memcpy(&w, blk[i] + off, sizeof w);
        if (w != tag[i] + off) fail_msg("at the end: word at %zu of a live block changed", off);
      }
      pt_big_free(blk[i], len[i]);
    }
  pt_prefault_stop();
  pt_prefault_stats(&touched, &dropped);
  printf("# prefault thread touched %llu MiB, dropped %llu ranges\n", (unsigned long long)(touched >> 20),
         (unsigned long long)dropped);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_blocks_zeroed_reused_coalesced),
      cmocka_unit_test(test_sink_hears_what_comes_next),
      cmocka_unit_test(test_thread_never_changes_what_the_engine_wrote),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
