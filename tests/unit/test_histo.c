/* The metric histograms (daemon/histo.c) and the per-turn latency ring
 * (daemon/latency.c): buckets, quantiles between two copies, turns held
 * for Redis released in order, a full ring absorbing turns, a drop. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "clock.h"
#include "histo.h"
#include "latency.h"

static void test_buckets_and_quantiles(void **state) {
  (void)state;
  pt_histo h;
  pt_histo_init_latency(&h);
  pt_histo_add(&h, 10, 1);       /* <= 25 µs */
  pt_histo_add(&h, 25, 1);       /* the bound itself is in its bucket */
  pt_histo_add(&h, 26, 1);       /* <= 50 */
  pt_histo_add(&h, 20000000, 1); /* past the last bound: +Inf */
  assert_int_equal(h.count[0], 2);
  assert_int_equal(h.count[1], 1);
  assert_int_equal(h.count[h.n], 1);
  assert_int_equal(h.total, 4);
  assert_int_equal(h.sum, 10 + 25 + 26 + 20000000);
  pt_histo was = h;
  pt_histo_add(&h, 900, 98); /* <= 1000 */
  pt_histo_add(&h, 4000, 2); /* <= 5000 */
  /* between was and h: 100 observations, 98 at <= 1 ms */
  assert_int_equal(pt_histo_quantile(&h, &was, 0.5), 1000);
  assert_int_equal(pt_histo_quantile(&h, &was, 0.98), 1000);
  assert_int_equal(pt_histo_quantile(&h, &was, 0.99), 5000);
  assert_int_equal(pt_histo_quantile(&was, &was, 0.99), 0); /* nothing between */
  assert_int_equal(pt_histo_quantile(&h, NULL, 0.01), 25);
}

static void test_weights(void **state) {
  (void)state;
  pt_histo h;
  pt_histo_init_batch(&h);
  pt_histo_add(&h, 3, 10); /* a turn of 10 requests, one value */
  assert_int_equal(h.count[1], 10);
  assert_int_equal(h.total, 10);
  assert_int_equal(h.sum, 30);
}

static void test_latency_ring(void **state) {
  (void)state;
  static pt_latency l;
  pt_latency_init(&l);
  int64_t t0 = pt_mono_ns();
  pt_latency_turn(&l, 5, t0, 0); /* written at once */
  assert_int_equal(l.hist.total, 5);
  pt_latency_turn(&l, 3, t0, 1); /* held for records 1, 2, 3 */
  pt_latency_turn(&l, 4, t0, 2);
  pt_latency_turn(&l, 6, t0, 3);
  assert_int_equal(l.hist.total, 5);
  pt_latency_release(&l, 2); /* in order, up to 2 */
  assert_int_equal(l.hist.total, 12);
  assert_int_equal(l.len, 1);
  pt_latency_drop(&l); /* record 3's replies were dropped: not counted */
  pt_latency_release(&l, 3);
  assert_int_equal(l.hist.total, 12);
  /* a full ring: the newest entry absorbs further turns, nothing is lost */
  for (uint64_t s = 1; s <= PT_LATENCY_RING + 10; s++) pt_latency_turn(&l, 1, t0, 100 + s);
  assert_int_equal(l.len, PT_LATENCY_RING);
  pt_latency_release(&l, 100 + PT_LATENCY_RING + 9); /* not yet the absorbed tail */
  assert_int_equal(l.hist.total, 12 + PT_LATENCY_RING - 1);
  pt_latency_release(&l, 100 + PT_LATENCY_RING + 10);
  assert_int_equal(l.hist.total, 12 + PT_LATENCY_RING + 10);
  assert_int_equal(l.len, 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_buckets_and_quantiles),
      cmocka_unit_test(test_weights),
      cmocka_unit_test(test_latency_ring),
  };
  return cmocka_run_group_tests_name("histo", tests, NULL, NULL);
}
