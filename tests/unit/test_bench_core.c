/* pintuan-bench's measuring parts against known inputs: the histogram's
 * percentiles and error bound, the open-loop pacer's schedule, and the
 * verdict on campaign states that break each invariant. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "histogram.h"
#include "pacer.h"
#include "verdict.h"

static void test_histogram_known_values(void **state) {
  (void)state;
  static pt_hist h;
  pt_hist_reset(&h);
  for (uint64_t v = 1; v <= 10000; v++) pt_hist_record(&h, v * 1000); /* 1..10000 µs */
  assert_int_equal(h.count, 10000);
  assert_int_equal(h.min, 1000);
  assert_int_equal(h.max, 10000000);
  struct { double p; uint64_t exact; } cases[] = {
      {50, 5000000}, {90, 9000000}, {99, 9900000}, {99.9, 9990000}, {99.99, 9999000}, {100, 10000000}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    uint64_t got = pt_hist_percentile(&h, cases[i].p);
    /* within the bucket width: never below, at most 1/128 above */
    assert_true(got >= cases[i].exact);
    assert_true((double)got <= (double)cases[i].exact * (1.0 + 1.0 / 128) + 1);
  }
  assert_true(pt_hist_mean(&h) > 5000000 - 1 && pt_hist_mean(&h) < 5000500 + 1);
}

static void test_histogram_buckets(void **state) {
  (void)state;
  /* exact below 128, then every value lands in a bucket that contains it */
  for (uint64_t v = 0; v < 128; v++) assert_int_equal(pt_hist_bucket_high(pt_hist_index(v)), v);
  uint64_t x = 12345;
  for (int i = 0; i < 100000; i++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    uint64_t v = x >> (x % 40);
    int idx = pt_hist_index(v);
    assert_true(idx >= 0 && idx < PT_HIST_BUCKETS);
    uint64_t hi = pt_hist_bucket_high(idx);
    assert_true(hi >= v);
    assert_true(v >= 128 ? (double)(hi - v) <= (double)v / 128 : hi == v);
  }
  static pt_hist a, b;
  pt_hist_reset(&a);
  pt_hist_reset(&b);
  pt_hist_record(&a, 10);
  pt_hist_record(&b, 1000000);
  pt_hist_merge(&a, &b);
  assert_int_equal(a.count, 2);
  assert_int_equal(pt_hist_percentile(&a, 50), 10);
  assert_int_equal(pt_hist_percentile(&a, 100), 1000000);
  pt_hist_reset(&b);
  assert_int_equal(pt_hist_percentile(&b, 99), 0);
}

static void test_pacer_schedule(void **state) {
  (void)state;
  pt_pacer p;
  pt_pacer_init(&p, 1000000000, 1000); /* 1000/s from t = 1 s */
  assert_int_equal(pt_pacer_planned(&p, 0), 1000000000);
  assert_int_equal(pt_pacer_planned(&p, 1), 1001000000);
  assert_int_equal(pt_pacer_planned(&p, 1000), 2000000000);
  assert_int_equal(pt_pacer_due(&p, 999999999), 0);
  assert_int_equal(pt_pacer_due(&p, 1000000000), 1);
  assert_int_equal(pt_pacer_due(&p, 1000999999), 1);
  assert_int_equal(pt_pacer_due(&p, 1001000000), 2);
  assert_int_equal(pt_pacer_due(&p, 2000000000), 1001);
  p.sent = 1001;
  assert_int_equal(pt_pacer_due(&p, 2000000000), 0);
  /* a stall does not lose requests: they are all due at once */
  assert_int_equal(pt_pacer_due(&p, 3000000000), 1000);
  pt_pacer_init(&p, 0, 200000); /* 200k/s: one every 5 µs */
  assert_int_equal(pt_pacer_due(&p, 1000000000 - 1), 200000);
}

static void test_verdict(void **state) {
  (void)state;
  pt_vcampaign ok = {"a", 10, 2, 5, 3, 1};
  pt_vuser users[] = {{0, "u1", 1, 0, 0}, {0, "u2", 0, 1, 0}};
  pt_verdict v;
  pt_verdict_check(&ok, 1, users, 2, &v);
  assert_true(v.pass);
  pt_vcampaign over = {"b", 10, 0, 6, 6, 0}; /* 12 out of 10, and not conserved */
  pt_verdict_check(&over, 1, NULL, 0, &v);
  assert_false(v.pass);
  assert_int_equal(v.oversold, 2);
  assert_int_equal(v.not_conserved, 1);
  pt_vcampaign lost = {"c", 10, 1, 5, 3, 0}; /* one unit vanished */
  pt_verdict_check(&lost, 1, NULL, 0, &v);
  assert_false(v.pass);
  assert_int_equal(v.oversold, 0);
  assert_int_equal(v.not_conserved, 1);
  pt_vcampaign neg = {"d", 10, -1, 11, 0, 0};
  pt_verdict_check(&neg, 1, NULL, 0, &v);
  assert_false(v.pass);
  assert_int_equal(v.negative, 1);
  pt_vuser greedy[] = {{0, "u1", 1, 1, 0}}; /* 2 units, limit 1 */
  pt_verdict_check(&ok, 1, greedy, 1, &v);
  assert_false(v.pass);
  assert_int_equal(v.users_over_limit, 1);
  pt_vuser waiting[] = {{0, "u1", 1, 0, 1}};
  pt_verdict_check(&ok, 1, waiting, 1, &v);
  assert_int_equal(v.users_over_limit, 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_histogram_known_values),
      cmocka_unit_test(test_histogram_buckets),
      cmocka_unit_test(test_pacer_schedule),
      cmocka_unit_test(test_verdict),
  };
  return cmocka_run_group_tests_name("bench_core", tests, NULL, NULL);
}
