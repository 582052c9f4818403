/* One program with the engine (pt_) and the client library (pintuan_):
 * their names no longer clash (pt_reserve is the engine's, pintuan_reserve
 * the client's). Requests made by libpintuan's builders, sent through the
 * wire encoding, are decided by the engine, whose answers read back as
 * the protocol's names. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "addr.h"
#include "engine.h"
#include "pintuan.h"

#define T0 1700000000000LL

static pt_bytes from_wire(ProtobufCBinaryData b) { return (pt_bytes){b.data, b.len}; }

/* The request as the daemon would get it: encoded, then decoded. */
static pintuan_request *over_the_wire(pintuan_request *q, uint8_t *buf, size_t cap) {
  size_t n = pintuan__v1__request__get_packed_size(q);
  assert_true(n <= cap);
  pintuan__v1__request__pack(q, buf);
  pintuan_request *d = pintuan__v1__request__unpack(NULL, n, buf);
  assert_non_null(d);
  return d;
}

static void test_engine_decides_client_requests(void **state) {
  (void)state;
  pt_engine_config cfg = {.idem_window_ms = 60000, .hash_seed = 7};
  pt_engine *e = pt_engine_new(&cfg);
  assert_non_null(e);
  uint8_t buf[1024];
  pt_result r;

  /* create: the client's campaign spec, as the engine's */
  pintuan_campaign_spec spec = {.campaign_id = "flash-1", .stock = 3, .per_user_limit = 2,
                                .hold_ms = 60000};
  pintuan_request q;
  Pintuan__V1__CreateCampaign cm;
  Pintuan__V1__CampaignSpec sp;
  pintuan_req_create_campaign(&q, &cm, &sp, &spec, "create-1");
  pintuan_request *d = over_the_wire(&q, buf, sizeof buf);
  assert_int_equal(d->op_case, PINTUAN__V1__REQUEST__OP_CREATE_CAMPAIGN);
  const Pintuan__V1__CampaignSpec *w = d->create_campaign->spec;
  assert_int_equal(w->kind, PINTUAN__V1__CAMPAIGN_KIND__FLASH_SALE); /* kind 0: a flash sale */
  pt_campaign_spec es = {.id = from_wire(w->campaign_id), .kind = (pt_kind)w->kind,
                         .stock = w->stock, .per_user_limit = w->per_user_limit,
                         .hold_ms = w->hold_ms};
  pt_campaign_create(e, T0, from_wire(d->create_campaign->request_id), &es, &r);
  assert_int_equal(r.status, PT_OK);
  assert_string_equal(pintuan_status_str(r.status), "OK");
  pintuan__v1__request__free_unpacked(d, NULL);

  /* reserve: the engine's pt_reserve with what pintuan_req_reserve built */
  Pintuan__V1__Reserve rm;
  pintuan_req_reserve(&q, &rm, "flash-1", "alice", 2, "order-1");
  d = over_the_wire(&q, buf, sizeof buf);
  const Pintuan__V1__Reserve *rv = d->reserve;
  pt_reserve(e, T0, from_wire(rv->request_id), from_wire(rv->campaign_id), from_wire(rv->user_id),
             rv->quantity, &r);
  assert_int_equal(r.status, PT_OK);
  assert_int_equal(r.quantity, 2);
  assert_int_equal(r.expires_ms, T0 + 60000);
  uint64_t res = r.reservation_id;
  assert_true(res != 0);
  /* the same request again: a replay; one more unit: over alice's limit */
  pt_reserve(e, T0 + 1, from_wire(rv->request_id), from_wire(rv->campaign_id),
             from_wire(rv->user_id), rv->quantity, &r);
  assert_true(r.replay);
  assert_int_equal(r.reservation_id, res);
  pintuan__v1__request__free_unpacked(d, NULL);
  pintuan_req_reserve(&q, &rm, "flash-1", "alice", 1, "order-2");
  d = over_the_wire(&q, buf, sizeof buf);
  pt_reserve(e, T0 + 2, from_wire(d->reserve->request_id), from_wire(d->reserve->campaign_id),
             from_wire(d->reserve->user_id), d->reserve->quantity, &r);
  assert_string_equal(pintuan_status_str(r.status), "LIMIT_EXCEEDED");
  pintuan__v1__request__free_unpacked(d, NULL);

  /* confirm: pintuan_req_confirm with the engine's reservation id */
  Pintuan__V1__Confirm cf;
  pintuan_req_confirm(&q, &cf, "flash-1", res, "alice", "pay-1");
  d = over_the_wire(&q, buf, sizeof buf);
  pt_confirm(e, T0 + 3, from_wire(d->confirm->request_id), from_wire(d->confirm->campaign_id),
             d->confirm->reservation_id, from_wire(d->confirm->user_id), &r);
  assert_int_equal(r.status, PT_OK);
  assert_string_equal(pintuan_hold_state_str(r.state), "SOLD");
  pintuan__v1__request__free_unpacked(d, NULL);

  pt_campaign_info info;
  pt_campaign_info_get(e, pt_campaign_find(e, (pt_bytes){(const uint8_t *)"flash-1", 7}), T0 + 3,
                       &info);
  assert_int_equal(info.sold, 2);
  assert_int_equal(info.available, 1);
  assert_int_equal(info.available + info.held + info.sold, info.stock);
  pt_engine_free(e);
}

/* Both carry pt_common (the engine statically, libpintuan hidden inside
 * it): each uses its own, and they agree. */
static void test_both_parse_addresses(void **state) {
  (void)state;
  pt_addr a;
  char err[256];
  assert_int_equal(pt_addr_parse("[::1]:7001", -1, &a, err, sizeof err), 0);
  assert_string_equal(a.host, "::1");
  assert_int_equal(a.port, 7001);
  assert_null(pintuan_connect("[::1:7001", 1000, err, sizeof err));
  assert_non_null(strstr(err, "no closing ]"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_engine_decides_client_requests),
      cmocka_unit_test(test_both_parse_addresses),
  };
  return cmocka_run_group_tests_name("linkage", tests, NULL, NULL);
}
