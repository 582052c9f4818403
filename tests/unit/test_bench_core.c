/* pintuan-bench's measuring parts against known inputs: the histogram's
 * percentiles and error bound, the open-loop pacer's schedule, the verdict
 * on campaign states that break each invariant, and its hand-written wire
 * against protobuf-c (the same bytes out, the same fields read back). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "histogram.h"
#include "pacer.h"
#include "pintuan.pb-c.h"
#include "verdict.h"
#include "wire.h"

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
  /* the invariants hold, but requests went unanswered: the run cannot pass */
  pt_verdict_check(&ok, 1, users, 2, &v);
  pt_verdict_unanswered(&v, 0);
  assert_true(v.pass);
  pt_verdict_unanswered(&v, 13999);
  assert_false(v.pass);
  char text[512];
  FILE *f = fmemopen(text, sizeof text, "w");
  pt_verdict_print(f, &v);
  fclose(f);
  assert_non_null(strstr(text, "unanswered 13999: FAIL"));
}

static uint64_t rng = 88172645463325252ULL;
static uint64_t rnd(void) {
  rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
  return rng;
}

/* A value of a random width: 0, small, or up to 64 bits. */
static uint64_t rnd_width(void) { return rnd() >> (rnd() % 64); }

static void rnd_str(uint8_t *s, size_t *len, size_t max) {
  *len = rnd() % (max + 1);
  for (size_t i = 0; i < *len; i++) s[i] = (uint8_t)rnd();
}

static void test_wire_requests_as_protobuf_c(void **state) {
  (void)state;
  static const int ops[] = {BW_RESERVE, BW_CONFIRM, BW_CANCEL, BW_JOIN};
  for (int round = 0; round < 20000; round++) {
    uint8_t rid[300], camp[200], user[150];
    bw_request q = {.op = ops[round % 4], .rid = rid, .campaign = camp, .user = user};
    rnd_str(rid, &q.rid_len, round % 50 == 0 ? sizeof rid : 40);
    rnd_str(camp, &q.campaign_len, round % 70 == 0 ? sizeof camp : 72);
    rnd_str(user, &q.user_len, round % 90 == 0 ? sizeof user : 24);
    q.reservation_id = rnd_width();
    q.quantity = round % 13 == 0 ? (uint32_t)-(int32_t)(rnd() % 5) : (uint32_t)(rnd() % 1000);
    q.join_mode = (int)(rnd() % 3);
    q.new_user = (int)(rnd() % 2);
    uint64_t id = rnd_width();
    ProtobufCBinaryData brid = {q.rid_len, rid}, bcamp = {q.campaign_len, camp}, buser = {q.user_len, user};
    Pintuan__V1__Request r = PINTUAN__V1__REQUEST__INIT;
    Pintuan__V1__Reserve rs = PINTUAN__V1__RESERVE__INIT;
    Pintuan__V1__Confirm cf = PINTUAN__V1__CONFIRM__INIT;
    Pintuan__V1__Cancel cn = PINTUAN__V1__CANCEL__INIT;
    Pintuan__V1__Join jn = PINTUAN__V1__JOIN__INIT;
    r.has_id = 1, r.id = id;
    switch (q.op) {
    case BW_RESERVE:
      rs.has_request_id = rs.has_campaign_id = rs.has_user_id = rs.has_quantity = 1;
      rs.request_id = brid, rs.campaign_id = bcamp, rs.user_id = buser, rs.quantity = (int32_t)q.quantity;
      r.op_case = PINTUAN__V1__REQUEST__OP_RESERVE, r.reserve = &rs;
      break;
    case BW_CONFIRM:
      cf.has_request_id = cf.has_campaign_id = cf.has_reservation_id = cf.has_user_id = 1;
      cf.request_id = brid, cf.campaign_id = bcamp, cf.reservation_id = q.reservation_id;
      cf.user_id = buser;
      r.op_case = PINTUAN__V1__REQUEST__OP_CONFIRM, r.confirm = &cf;
      break;
    case BW_CANCEL:
      cn.has_request_id = cn.has_campaign_id = cn.has_reservation_id = cn.has_user_id = 1;
      cn.request_id = brid, cn.campaign_id = bcamp, cn.reservation_id = q.reservation_id;
      cn.user_id = buser;
      r.op_case = PINTUAN__V1__REQUEST__OP_CANCEL, r.cancel = &cn;
      break;
    default:
      jn.has_request_id = jn.has_campaign_id = jn.has_user_id = jn.has_mode = jn.has_new_user = 1;
      jn.request_id = brid, jn.campaign_id = bcamp, jn.user_id = buser;
      jn.mode = (Pintuan__V1__JoinMode)q.join_mode, jn.new_user = q.new_user;
      r.op_case = PINTUAN__V1__REQUEST__OP_JOIN, r.join = &jn;
    }
    uint8_t want[1024], got[1024];
    size_t wn = pintuan__v1__request__pack(&r, want);
    assert_true(bw_request_bound(&q) + 16 >= wn);
    size_t gn = bw_request_put(got, id, &q);
    assert_int_equal(gn, wn);
    assert_memory_equal(got, want, wn);
    assert_true(bw_first_id(got, gn) == id || id == 0);
  }
}

static void test_wire_replies_as_protobuf_c(void **state) {
  (void)state;
  for (int round = 0; round < 20000; round++) {
    Pintuan__V1__Response r = PINTUAN__V1__RESPONSE__INIT;
    Pintuan__V1__Reservation rv = PINTUAN__V1__RESERVATION__INIT;
    Pintuan__V1__Pong pong = PINTUAN__V1__PONG__INIT;
    Pintuan__V1__Event ev = PINTUAN__V1__EVENT__INIT;
    uint8_t det[100], camp[80];
    size_t dl, cl;
    rnd_str(det, &dl, 99);
    det[dl] = 0;
    for (size_t i = 0; i < dl; i++) det[i] = (uint8_t)('a' + det[i] % 26);
    rnd_str(camp, &cl, 72);
    if (rnd() % 2) r.has_id = 1, r.id = rnd_width();
    if (rnd() % 4) r.has_status = 1, r.status = (Pintuan__V1__Status)(rnd() % 14);
    if (rnd() % 3 == 0) r.detail = (char *)det;
    if (rnd() % 5 == 0) r.has_replay = 1, r.replay = 1;
    switch (rnd() % 4) {
    case 0:
      rv.has_campaign_id = 1, rv.campaign_id = (ProtobufCBinaryData){cl, camp};
      if (rnd() % 4) rv.has_reservation_id = 1, rv.reservation_id = rnd_width();
      rv.has_expires_ms = 1, rv.expires_ms = -(int64_t)(rnd() % 3);
      rv.has_group_id = 1, rv.group_id = rnd_width();
      r.result_case = PINTUAN__V1__RESPONSE__RESULT_RESERVATION, r.reservation = &rv;
      break;
    case 1: r.result_case = PINTUAN__V1__RESPONSE__RESULT_PONG, r.pong = &pong; break;
    case 2: r.result_case = PINTUAN__V1__RESPONSE__RESULT_EVENT, r.event = &ev; break;
    default: break;
    }
    uint8_t buf[1024];
    size_t n = pintuan__v1__response__pack(&r, buf);
    bw_reply got;
    assert_int_equal(bw_reply_get(buf, n, &got), 0);
    assert_true(got.id == r.id);
    assert_int_equal(got.status, (uint32_t)r.status);
    assert_int_equal(got.result, r.result_case == PINTUAN__V1__RESPONSE__RESULT__NOT_SET ? 0 : (int)r.result_case);
    assert_true(got.reservation_id == (r.reservation ? rv.reservation_id : 0));
    /* cut anywhere inside: refused, or read as a shorter valid message, as protobuf-c does */
    size_t cut = n ? rnd() % n : 0;
    Pintuan__V1__Response *pc = pintuan__v1__response__unpack(NULL, cut, buf);
    assert_int_equal(bw_reply_get(buf, cut, &got) == 0, pc != NULL);
    if (pc) pintuan__v1__response__free_unpacked(pc, NULL);
  }
  bw_reply got;
  static const uint8_t bad[][4] = {{0x00}, {0x0b, 0x01}, {0x08, 0x80}, {0x72, 0x05, 0x10}};
  static const size_t bad_len[] = {1, 2, 2, 3};
  for (size_t i = 0; i < 4; i++) assert_int_equal(bw_reply_get(bad[i], bad_len[i], &got), -1);
}

static void test_wire_decimal(void **state) {
  (void)state;
  char got[24], want[24];
  uint64_t cases[] = {0, 9, 10, 99, 100, 12345, UINT64_MAX};
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    size_t n = bw_u64_dec(got, cases[i]);
    got[n] = 0;
    snprintf(want, sizeof want, "%llu", (unsigned long long)cases[i]);
    assert_string_equal(got, want);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_histogram_known_values),
      cmocka_unit_test(test_histogram_buckets),
      cmocka_unit_test(test_pacer_schedule),
      cmocka_unit_test(test_verdict),
      cmocka_unit_test(test_wire_requests_as_protobuf_c),
      cmocka_unit_test(test_wire_replies_as_protobuf_c),
      cmocka_unit_test(test_wire_decimal),
  };
  return cmocka_run_group_tests_name("bench_core", tests, NULL, NULL);
}
