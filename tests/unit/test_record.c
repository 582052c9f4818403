/* Journal records (daemon/mirror/record.c) as recovery applies them: made
 * as the mirror makes them, then applied, skipped as a gap, or refused in
 * the words recovery logs (the follower tells a gap from damage by them,
 * and the operator reads them). The pure engine, no Redis. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "engine.h"
#include "input.h"
#include "mirror/record.h"

#define T0 1700000000000LL
#define S(s) ((pt_bytes){(const uint8_t *)(s), strlen(s)})

static pt_engine *fresh(void) {
  pt_engine_config cfg = {.idem_window_ms = 600000, .hash_seed = 7};
  return pt_engine_new(&cfg);
}

/* A record of seq 1 from a new engine: a flash sale created, a reserve. */
static void make(msgpack_sbuffer *sb, uint64_t epoch, uint64_t seq) {
  static const char room[PT_RECORD_HEAD];
  msgpack_sbuffer_init(sb);
  msgpack_sbuffer_write(sb, room, sizeof room);
  msgpack_packer pk;
  msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
  pt_engine *e = fresh();
  pt_input in[] = {
      {.kind = PT_IN_CREATE, .now = T0, .request_id = S("mk"),
       .spec = {.id = S("c1"), .kind = PT_FLASH_SALE, .stock = 2, .hold_ms = 1000}},
      {.kind = PT_IN_RESERVE, .now = T0, .request_id = S("r1"), .campaign_id = S("c1"),
       .user_id = S("ann"), .quantity = 1},
  };
  for (size_t i = 0; i < 2; i++) {
    pt_result r;
    pt_input_apply(e, &in[i], &r);
    assert_int_equal(r.status, PT_OK);
    pt_input_pack(&pk, &in[i], &r);
  }
  pt_engine_free(e);
  pt_record_head((uint8_t *)sb->data, epoch, seq);
}

static void test_applied_then_gap(void **state) {
  (void)state;
  msgpack_sbuffer sb;
  make(&sb, 4, 1);
  pt_engine *e = fresh();
  pt_record_head_info h;
  uint64_t inputs = 10; /* the caller's running count */
  char err[256] = "";
  assert_int_equal(pt_record_apply(e, sb.data, sb.size, 0, &h, &inputs, err, sizeof err), PT_RECORD_APPLIED);
  assert_true(h.seq == 1 && h.epoch == 4 && h.has_epoch);
  assert_int_equal(inputs, 12);
  assert_int_equal(pt_campaign_count(e), 1);
  /* the same record again: behind, and nothing applied */
  uint64_t changes = pt_engine_changes(e);
  assert_int_equal(pt_record_apply(e, sb.data, sb.size, 1, &h, &inputs, err, sizeof err), PT_RECORD_GAP);
  assert_string_equal(err, "journal record 1 follows 1: a gap");
  assert_true(h.seq == 1 && inputs == 12 && pt_engine_changes(e) == changes);
  pt_engine_free(e);
  /* ahead: a standby's engine the journal was trimmed past */
  e = fresh();
  pt_record_head((uint8_t *)sb.data, 4, 9);
  assert_int_equal(pt_record_apply(e, sb.data, sb.size, 0, &h, &inputs, err, sizeof err), PT_RECORD_GAP);
  assert_string_equal(err, "journal record 9 follows 0: a gap");
  assert_int_equal(h.seq, 9);
  assert_int_equal(pt_campaign_count(e), 0);
  pt_engine_free(e);
  msgpack_sbuffer_destroy(&sb);
}

static void test_refusals(void **state) {
  (void)state;
  msgpack_sbuffer sb;
  make(&sb, 4, 1);
  pt_record_head_info h;
  uint64_t inputs = 0;
  char err[256];
  pt_engine *e = fresh();
  /* another format */
  ((uint8_t *)sb.data)[1] = 2;
  assert_int_equal(pt_record_apply(e, sb.data, sb.size, 0, &h, &inputs, err, sizeof err), PT_RECORD_BAD);
  assert_string_equal(err, "journal record after 0: not a record of format 1");
  ((uint8_t *)sb.data)[1] = PT_RECORD_FORMAT;
  /* a header announcing 4G items: refused before anything is allocated */
  static const uint8_t forged[] = {0xdd, 0xff, 0xff, 0xff, 0xff, 1, 1, 1};
  assert_int_equal(pt_record_apply(e, forged, sizeof forged, 0, &h, &inputs, err, sizeof err), PT_RECORD_BAD);
  assert_string_equal(err, "journal record after 0: not a record of format 1");
  assert_int_equal(pt_record_apply(e, "", 0, 0, &h, &inputs, err, sizeof err), PT_RECORD_BAD);
  /* cut short in its last input: the create before it is applied */
  assert_int_equal(pt_record_apply(e, sb.data, sb.size - 1, 0, &h, &inputs, err, sizeof err), PT_RECORD_BAD);
  assert_non_null(strstr(err, "journal record 1: undecodable input at byte "));
  assert_int_equal(inputs, 1);
  pt_engine_free(e);
  /* onto an engine whose c1 was made by another request: answered otherwise
   * (the same record again would not do: its requests get their answers back) */
  e = fresh();
  pt_campaign_spec c1 = {.id = S("c1"), .kind = PT_FLASH_SALE, .stock = 1, .hold_ms = 1000};
  pt_result r;
  pt_campaign_create(e, T0, S("other"), &c1, &r);
  inputs = 7;
  assert_int_equal(pt_record_apply(e, sb.data, sb.size, 0, &h, &inputs, err, sizeof err), PT_RECORD_BAD);
  assert_non_null(strstr(err, "journal record 1: input 8 (create) replayed as ALREADY_EXISTS"));
  pt_engine_free(e);
  msgpack_sbuffer_destroy(&sb);
}

/* A header alone is a record with nothing in it; an epoch that is not an
 * unsigned integer is not reported (older writers), the record applies. */
static void test_header_only(void **state) {
  (void)state;
  static const uint8_t rec[] = {0x93, PT_RECORD_FORMAT, 0xc0, 0x01};
  pt_engine *e = fresh();
  pt_record_head_info h;
  uint64_t inputs = 0;
  char err[256];
  assert_int_equal(pt_record_apply(e, rec, sizeof rec, 0, &h, &inputs, err, sizeof err), PT_RECORD_APPLIED);
  assert_true(h.seq == 1 && !h.has_epoch && inputs == 0);
  pt_engine_free(e);
}

/* Values no daemon journals, which the engine would overflow on (found
 * with fuzz_record's build, tests/fuzz/corpus/record/regress-*): an
 * advance to a time no clock gives, a window past what the config allows.
 * Refused before they are applied, whatever follows them. */
static void test_beyond_any_clock(void **state) {
  (void)state;
  static const uint8_t head[] = {0x93, PT_RECORD_FORMAT, 0x03, 0x01};
  static const uint8_t late[] = {0x92, 0x01, 0xd3, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xf0};
  static const uint8_t wide[] = {0x93, 0x09, 0x00, 0xd3, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
  static const uint8_t neg[] = {0x93, 0x09, 0xff, 0xcd, 0x75, 0x30}; /* now -1 */
  struct {
    const uint8_t *in;
    size_t n;
    const char *why;
  } cases[] = {
      {late, sizeof late, "journal record 1: input at byte 4: input kind 1: now out of range"},
      {wide, sizeof wide, "journal record 1: input at byte 4: input kind 9: a window must be 1 ms..7 days"},
      {neg, sizeof neg, "journal record 1: input at byte 4: input kind 9: now out of range"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    uint8_t rec[64];
    memcpy(rec, head, sizeof head);
    memcpy(rec + sizeof head, cases[i].in, cases[i].n);
    pt_engine *e = fresh();
    uint64_t changes = pt_engine_changes(e), inputs = 0;
    pt_record_head_info h;
    char err[256];
    assert_int_equal(pt_record_apply(e, rec, sizeof head + cases[i].n, 0, &h, &inputs, err, sizeof err),
                     PT_RECORD_BAD);
    assert_string_equal(err, cases[i].why);
    assert_true(inputs == 0 && pt_engine_changes(e) == changes);
    pt_engine_free(e);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_applied_then_gap),
      cmocka_unit_test(test_refusals),
      cmocka_unit_test(test_header_only),
      cmocka_unit_test(test_beyond_any_clock),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
