/* The fast path (daemon/service/fast.c) against protobuf-c itself: its
 * replies are byte for byte what protobuf-c packs for the Response
 * svc_reserve, svc_confirm and svc_cancel build, on random results; it reads
 * canonical Reserve, Confirm and Cancel requests as protobuf-c unpacks
 * them, and whatever it accepts among
 * damaged, reordered, duplicated and foreign frames, protobuf-c unpacks to
 * the same fields (so the general path would have decided the same). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fast.h"
#include "pintuan.pb-c.h"

static uint64_t rng = 88172645463325252ull;
static uint64_t rnd(void) {
  rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
  return rng;
}
/* small numbers often, every width sometimes */
static uint64_t rnd_num(void) {
  switch (rnd() % 4) {
  case 0: return 0;
  case 1: return rnd() % 200;
  case 2: return rnd() >> (rnd() % 64);
  default: return rnd();
  }
}

static void test_reply_is_protobuf_c(void **state) {
  (void)state;
  static const char *details[] = {"", "reserved", "sold out", "per-user limit reached",
                                  "a group-buy campaign: use join"};
  uint8_t ids[3][64], want[4096], got[4096];
  for (int iter = 0; iter < 200000; iter++) {
    pt_fast_req q = {.op = (pt_fast_op)(1 + rnd() % 3), .id = rnd_num() | 1};
    bool reserve = q.op == PT_FAST_RESERVE;
    size_t cl = rnd() % 65, ul = rnd() % 65;
    for (size_t i = 0; i < 64; i++) ids[0][i] = (uint8_t)rnd(), ids[1][i] = (uint8_t)rnd();
    q.campaign_id = (pt_bytes){ids[0], cl};
    q.user_id = (pt_bytes){ids[1], ul};
    pt_result r = {
        .status = (pt_status)(rnd() % 21), .replay = rnd() % 2, .detail = details[rnd() % 5],
        .reservation_id = rnd() % 3 ? rnd_num() : 0, .expires_ms = (int64_t)rnd_num(),
        .quantity = (uint32_t)rnd_num(), .position = (uint32_t)rnd_num(),
        .state = (pt_hold_state)(rnd() % 8), .group_id = rnd() % 2 ? rnd_num() : 0,
        .group_state = (pt_group_state)(rnd() % 4), .opened = rnd() % 2};
    /* the Response as dispatch and the operation build it */
    Pintuan__V1__Response m = PINTUAN__V1__RESPONSE__INIT;
    Pintuan__V1__Reservation o = PINTUAN__V1__RESERVATION__INIT;
    m.has_id = 1, m.id = q.id;
    m.has_status = 1, m.status = (Pintuan__V1__Status)r.status, m.detail = (char *)r.detail;
    if (r.replay) m.has_replay = m.replay = 1;
    if (r.reservation_id || (reserve && r.status == PT_OK)) {
      o.has_campaign_id = 1, o.campaign_id = (ProtobufCBinaryData){cl, ids[0]};
      if (r.reservation_id) o.has_reservation_id = 1, o.reservation_id = r.reservation_id;
      if (r.quantity) o.has_quantity = 1, o.quantity = r.quantity;
      if (r.state) o.has_state = 1, o.state = (Pintuan__V1__HoldState)r.state;
      if (r.expires_ms) o.has_expires_ms = 1, o.expires_ms = r.expires_ms;
      if (r.position) o.has_waitlist_position = 1, o.waitlist_position = r.position;
      if (r.group_id) o.has_group_id = 1, o.group_id = r.group_id;
      if (r.group_state) o.has_group_state = 1, o.group_state = (Pintuan__V1__GroupState)r.group_state;
      if (r.opened) o.has_opened = 1, o.opened = 1;
      o.has_user_id = 1, o.user_id = (ProtobufCBinaryData){ul, ids[1]}; /* every op's user */
      m.result_case = PINTUAN__V1__RESPONSE__RESULT_RESERVATION, m.reservation = &o;
    }
    size_t n = pintuan__v1__response__pack(&m, want);
    size_t inner;
    size_t k = pt_fast_reply_size(&q, &r, &inner);
    assert_int_equal(k, n);
    pt_fast_reply(&q, &r, inner, got);
    assert_memory_equal(got, want, n);
  }
}

static bool same(ProtobufCBinaryData a, pt_bytes b) { /* protobuf-c gives NULL for empty */
  return a.len == b.len && (a.len == 0 || !memcmp(a.data, b.p, a.len));
}

/* Does the fast read agree with protobuf-c on these bytes? */
static int agree(const uint8_t *msg, size_t len) {
  pt_fast_req f;
  bool fast = pt_fast_read(msg, len, &f);
  if (!fast) return 0;
  Pintuan__V1__Request *q = pintuan__v1__request__unpack(NULL, len, msg);
  assert_non_null(q); /* accepted by the fast path: protobuf-c must accept it too */
  assert_true(q->has_id && q->id == f.id && f.id != 0);
  if (f.op == PT_FAST_RESERVE) {
    assert_int_equal(q->op_case, PINTUAN__V1__REQUEST__OP_RESERVE);
    Pintuan__V1__Reserve *m = q->reserve;
    assert_true(m->has_request_id && m->has_campaign_id && m->has_user_id && m->has_quantity);
    assert_int_equal(m->quantity, f.quantity);
    assert_true(same(m->request_id, f.request_id) && same(m->campaign_id, f.campaign_id) &&
                same(m->user_id, f.user_id));
  } else {
    bool confirm = f.op == PT_FAST_CONFIRM;
    assert_int_equal(q->op_case, confirm ? PINTUAN__V1__REQUEST__OP_CONFIRM : PINTUAN__V1__REQUEST__OP_CANCEL);
#define SAME_CC(m)                                                                    \
  assert_true((m)->has_request_id && (m)->has_campaign_id && (m)->has_reservation_id && \
              (m)->has_user_id && (m)->user_id.len && same((m)->user_id, f.user_id) &&       \
              (m)->reservation_id == f.reservation_id && same((m)->request_id, f.request_id) && \
              same((m)->campaign_id, f.campaign_id))
    if (confirm) SAME_CC(q->confirm);
    else SAME_CC(q->cancel);
  }
  pintuan__v1__request__free_unpacked(q, NULL);
  return 1;
}

static void test_read_is_protobuf_c(void **state) {
  (void)state;
  uint8_t ids[3][70], buf[512];
  int canonical = 0, accepted = 0;
  for (int iter = 0; iter < 200000; iter++) {
    Pintuan__V1__Request q = PINTUAN__V1__REQUEST__INIT;
    Pintuan__V1__Reserve m = PINTUAN__V1__RESERVE__INIT;
    Pintuan__V1__Confirm cf = PINTUAN__V1__CONFIRM__INIT;
    Pintuan__V1__Cancel cn = PINTUAN__V1__CANCEL__INIT;
    for (int i = 0; i < 3; i++)
      for (int j = 0; j < 70; j++) ids[i][j] = (uint8_t)rnd();
    q.has_id = rnd() % 16 != 0, q.id = rnd() % 16 ? rnd_num() : 0;
    bool complete = q.has_id && q.id;
    int op = (int)(rnd() % 3);
    if (op == 0) {
      m.has_request_id = rnd() % 16 != 0, m.request_id = (ProtobufCBinaryData){rnd() % 70, ids[0]};
      m.has_campaign_id = rnd() % 16 != 0, m.campaign_id = (ProtobufCBinaryData){rnd() % 70, ids[1]};
      m.has_user_id = rnd() % 16 != 0, m.user_id = (ProtobufCBinaryData){rnd() % 70, ids[2]};
      m.has_quantity = rnd() % 16 != 0, m.quantity = (int32_t)rnd_num();
      q.op_case = PINTUAN__V1__REQUEST__OP_RESERVE, q.reserve = &m;
      complete = complete && m.has_request_id && m.has_campaign_id && m.has_user_id && m.has_quantity;
    } else {
#define FILL_CC(c)                                                                       \
  ((c)->has_request_id = rnd() % 16 != 0, (c)->request_id = (ProtobufCBinaryData){rnd() % 70, ids[0]}, \
   (c)->has_campaign_id = rnd() % 16 != 0, (c)->campaign_id = (ProtobufCBinaryData){rnd() % 70, ids[1]}, \
   (c)->has_reservation_id = rnd() % 16 != 0, (c)->reservation_id = rnd_num(),                 \
   (c)->has_user_id = rnd() % 16 != 0, (c)->user_id = (ProtobufCBinaryData){rnd() % 70, ids[2]}, \
   (c)->has_request_id && (c)->has_campaign_id && (c)->has_reservation_id && (c)->has_user_id && \
   (c)->user_id.len) /* without a user: the general path's, which refuses it */
      bool all = op == 1 ? FILL_CC(&cf) : FILL_CC(&cn);
      if (op == 1) q.op_case = PINTUAN__V1__REQUEST__OP_CONFIRM, q.confirm = &cf;
      else q.op_case = PINTUAN__V1__REQUEST__OP_CANCEL, q.cancel = &cn;
      complete = complete && all;
    }
    size_t n = pintuan__v1__request__pack(&q, buf);
    int a = agree(buf, n);
    assert_int_equal(a, complete); /* every complete canonical one is taken, nothing else */
    canonical += a;
    /* damaged: a byte changed, cut short, a field appended (a duplicate or
     * an unknown one), or the two halves swapped */
    uint8_t d[600];
    memcpy(d, buf, n);
    size_t dn = n;
    switch (rnd() % 4) {
    case 0: if (n) d[rnd() % n] ^= (uint8_t)(1 + rnd() % 255); break;
    case 1: dn = n ? rnd() % n : 0; break;
    case 2: {
      static const uint8_t extra[][3] = {{0x08, 0x05, 0}, {0x58, 0x00, 0}, {0x9a, 0x01, 0x00}, {0x20, 0x01, 0}};
      int e = (int)(rnd() % 4);
      memcpy(d + n, extra[e], 3);
      dn = n + (e == 0 || e == 1 || e == 3 ? 2 : 3);
      break;
    }
    default:
      if (n > 2 && buf[0] == 0x08) { /* the id field moved after the reserve */
        size_t t = 1;
        while (t < n && buf[t] & 0x80) t++;
        t++; /* the id field's bytes: tag and varint */
        if (t <= n) {
          memcpy(d, buf + t, n - t);
          memcpy(d + n - t, buf, t);
        }
      }
    }
    accepted += agree(d, dn);
  }
  print_message("canonical taken: %d; damaged variants taken (and agreeing): %d\n", canonical, accepted);
  assert_true(canonical > 50000);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_reply_is_protobuf_c),
      cmocka_unit_test(test_read_is_protobuf_c),
  };
  return cmocka_run_group_tests_name("fast", tests, NULL, NULL);
}
