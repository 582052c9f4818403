/* Reservation and group ids (daemon/engine/ids.c): sealed with the era's
 * key, unguessable, valid across eras, and never naming a hold of another
 * era: in particular, ids an incarnation handed out and Redis then lost
 * (the engine restored from older state, a new era begun) open to nothing.
 * The pure engine, a hand-driven clock. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "engine_int.h"
#include "input.h"

#define T0 1700000000000LL
#define S(s) ((pt_bytes){(const uint8_t *)(s), strlen(s)})

static pt_engine *fresh(void) {
  pt_engine_config cfg = {.idem_window_ms = 600000, .hash_seed = 7};
  return pt_engine_new(&cfg);
}

static void key_of(uint8_t key[16], int n) {
  for (int i = 0; i < 16; i++) key[i] = (uint8_t)(n * 31 + i * 7 + 1);
}

static void set_key(pt_engine *e, int n, uint64_t tag) {
  uint8_t k[16];
  key_of(k, n);
  pt_engine_set_id_key(e, k, tag);
}

static void flash(pt_engine *e, const char *id, int64_t stock) {
  pt_campaign_spec s = {.id = S(id), .kind = PT_FLASH_SALE, .stock = stock, .hold_ms = 600000};
  pt_result r;
  char rid[64];
  snprintf(rid, sizeof rid, "mk-%s", id);
  pt_campaign_create(e, T0, S(rid), &s, &r);
  assert_int_equal(r.status, PT_OK);
}

static uint64_t reserve(pt_engine *e, const char *camp, const char *user, const char *rid) {
  pt_result r;
  pt_reserve(e, T0, S(rid), S(camp), S(user), 1, &r);
  assert_int_equal(r.status, PT_OK);
  return r.reservation_id;
}

static pt_status get(pt_engine *e, const char *camp, uint64_t id, pt_bytes *user) {
  pt_reservation_info i;
  pt_status st = pt_reservation_get(e, S(camp), id, (pt_bytes){0}, &i); /* whoever's */
  if (user && st == PT_OK) *user = i.user_id;
  return st;
}

/* Speck64/128's published test vector (Beaulieu et al., 2013). */
static void test_speck_vector(void **state) {
  (void)state;
  const uint8_t key[16] = {0x00, 0x01, 0x02, 0x03, 0x08, 0x09, 0x0a, 0x0b,
                           0x10, 0x11, 0x12, 0x13, 0x18, 0x19, 0x1a, 0x1b};
  uint32_t rk[PT_SPECK_ROUNDS];
  pt__speck_schedule(key, rk);
  uint64_t pt = 0x3b7265747475432dULL, ct = 0x8c6fa548454e028bULL;
  assert_int_equal(pt__speck_encrypt(rk, pt), ct);
  assert_int_equal(pt__speck_decrypt(rk, ct), pt);
}

/* Without a key: the ids of before (generation << 32 | slot + 1), so state
 * and captures written before keys decide the same ids. */
static void test_unkeyed_as_before(void **state) {
  (void)state;
  pt_engine *e = fresh();
  flash(e, "c", 10);
  assert_int_equal(reserve(e, "c", "u1", "r1"), (1ULL << 32) | 1);
  assert_int_equal(reserve(e, "c", "u2", "r2"), (1ULL << 32) | 2);
  assert_int_equal(pt_engine_id_tag(e), 0);
  pt_engine_free(e);
}

/* Keyed: no order to walk, every id opens to its own hold, near misses to
 * nothing. */
static void test_keyed_ids(void **state) {
  (void)state;
  pt_engine *e = fresh();
  set_key(e, 1, 99);
  assert_int_equal(pt_engine_id_tag(e), 99);
  flash(e, "c", 1000);
  enum { N = 500 };
  uint64_t ids[N];
  char rid[32], user[32];
  for (int i = 0; i < N; i++) {
    snprintf(rid, sizeof rid, "r%d", i), snprintf(user, sizeof user, "u%d", i);
    ids[i] = reserve(e, "c", user, rid);
    assert_true(ids[i] >> 56 != 0 || ids[i] >> 32 != 1); /* not the unkeyed layout */
  }
  int ascending = 0;
  for (int i = 1; i < N; i++) ascending += ids[i] > ids[i - 1];
  assert_true(ascending > N / 4 && ascending < 3 * N / 4); /* no order: about half */
  for (int i = 0; i < N; i++) {
    pt_bytes u;
    assert_int_equal(get(e, "c", ids[i], &u), PT_OK);
    snprintf(user, sizeof user, "u%d", i);
    assert_memory_equal(u.p, user, u.len);
    assert_int_equal(get(e, "c", ids[i] ^ 1, NULL), PT_NOT_FOUND);
    assert_int_equal(get(e, "c", ids[i] + 1, NULL), PT_NOT_FOUND);
    assert_int_equal(get(e, "c", (ids[i] & 0xffffffff00000000ULL) | ((ids[i] + 1) & 0xffffffff), NULL),
                     PT_NOT_FOUND);
  }
  /* a stranger's guesses: random ids, and the unkeyed layout's sequence */
  uint64_t x = 0x9e3779b97f4a7c15ULL;
  for (int i = 0; i < 100000; i++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    assert_int_equal(get(e, "c", x, NULL), PT_NOT_FOUND);
    assert_int_equal(get(e, "c", (1ULL << 32) | (uint64_t)(i % 600 + 1), NULL), PT_NOT_FOUND);
  }
  pt_engine_free(e);
}

/* A new era: holds made before it keep their ids; a slot reused under it
 * gets an id the old one never opens to; a retry answers the original id. */
static void test_eras(void **state) {
  (void)state;
  pt_engine *e = fresh();
  set_key(e, 1, 11);
  flash(e, "c", 10);
  uint64_t a = reserve(e, "c", "ann", "ra"), b = reserve(e, "c", "bob", "rb");
  set_key(e, 2, 22);
  uint64_t c = reserve(e, "c", "cat", "rc");
  assert_int_equal(get(e, "c", a, NULL), PT_OK);
  assert_int_equal(get(e, "c", c, NULL), PT_OK);
  pt_result r;
  pt_reserve(e, T0, S("rb"), S("c"), S("bob"), 1, &r); /* a retry, across the era */
  assert_true(r.replay);
  assert_int_equal(r.reservation_id, b);
  pt_cancel(e, T0, S("xa"), S("c"), a, S("ann"), &r);
  assert_int_equal(r.status, PT_OK);
  pt_engine_advance(e, T0 + 600001); /* ann's retired hold is forgotten: its slot free */
  uint64_t d = reserve(e, "c", "dan", "rd"); /* reuses a's slot, new era */
  assert_true(d != a);
  assert_int_equal(get(e, "c", a, NULL), PT_NOT_FOUND);
  assert_int_equal(get(e, "c", d, NULL), PT_OK);
  assert_int_equal(get(e, "c", b, NULL), PT_OK);
  pt_engine_free(e);
}

static int to_buf(void *ctx, const void *p, size_t n) {
  struct { uint8_t *p; size_t n, cap; } *b = ctx;
  if (b->n + n > b->cap) {
    b->cap = (b->n + n) * 2;
    b->p = realloc(b->p, b->cap);
  }
  memcpy(b->p + b->n, p, n);
  b->n += n;
  return 0;
}

/* What "Redis lost the tail" means to ids: the engine is restored from a
 * state older than what it had handed out, and a new era begins (the
 * operator accepted the loss). Every id of the lost part then opens to
 * nothing, however the slots are reused; the older ones still name their
 * holds. And a shard rebuilt from nothing (a new engine, a new key) too. */
static void test_lost_ids_never_name_another_hold(void **state) {
  (void)state;
  pt_engine *e = fresh();
  set_key(e, 1, 11);
  flash(e, "c", 100000);
  enum { KEEP = 200, LOST = 2000 };
  uint64_t kept[KEEP], lost[LOST];
  char rid[32], user[32];
  for (int i = 0; i < KEEP; i++) {
    snprintf(rid, sizeof rid, "k%d", i), snprintf(user, sizeof user, "k%d", i);
    kept[i] = reserve(e, "c", user, rid);
  }
  struct { uint8_t *p; size_t n, cap; } snap = {0};
  assert_int_equal(pt_engine_snapshot(e, to_buf, &snap), 0);
  /* the part Redis will lose: holds made, some cancelled and the slots
   * made again, so generations moved on too */
  for (int i = 0; i < LOST; i++) {
    snprintf(rid, sizeof rid, "l%d", i), snprintf(user, sizeof user, "l%d", i);
    lost[i] = reserve(e, "c", user, rid);
    if (i % 3 == 0) {
      pt_result r;
      snprintf(rid, sizeof rid, "x%d", i);
      pt_cancel(e, T0, S(rid), S("c"), lost[i], S(user), &r);
      assert_int_equal(r.status, PT_OK);
    }
  }
  pt_engine_free(e);
  pt_engine_config cfg = {.idem_window_ms = 600000, .hash_seed = 7};
  char err[200];
  pt_engine *back = pt_engine_restore(&cfg, snap.p, snap.n, err, sizeof err);
  assert_non_null(back);
  set_key(back, 2, 22); /* the new incarnation's era */
  pt_engine *empty = fresh(); /* ... or a shard started over from nothing */
  set_key(empty, 3, 33);
  flash(empty, "c", 100000);
  for (int i = 0; i < 3 * LOST; i++) { /* the same slots handed out again, and more */
    snprintf(rid, sizeof rid, "n%d", i), snprintf(user, sizeof user, "n%d", i);
    uint64_t n1 = reserve(back, "c", user, rid), n2 = reserve(empty, "c", user, rid);
    for (int j = 0; j < LOST; j++) assert_true(n1 != lost[j] && n2 != lost[j]);
  }
  for (int j = 0; j < LOST; j++) {
    assert_int_equal(get(back, "c", lost[j], NULL), PT_NOT_FOUND);
    assert_int_equal(get(empty, "c", lost[j], NULL), PT_NOT_FOUND);
  }
  for (int i = 0; i < KEEP; i++) assert_int_equal(get(back, "c", kept[i], NULL), PT_OK);
  /* and the restored engine's own snapshot keeps both eras' keys */
  snap.n = 0;
  assert_int_equal(pt_engine_snapshot(back, to_buf, &snap), 0);
  pt_engine *again = pt_engine_restore(&cfg, snap.p, snap.n, err, sizeof err);
  assert_non_null(again);
  for (int i = 0; i < KEEP; i++) assert_int_equal(get(again, "c", kept[i], NULL), PT_OK);
  for (int j = 0; j < LOST; j++) assert_int_equal(get(again, "c", lost[j], NULL), PT_NOT_FOUND);
  assert_int_equal(pt_engine_id_tag(again), 22);
  free(snap.p);
  pt_engine_free(back), pt_engine_free(empty), pt_engine_free(again);
}

/* Group ids: sealed the same way; JOIN by a near miss finds no group. */
static void test_group_ids(void **state) {
  (void)state;
  pt_engine *e = fresh();
  set_key(e, 5, 55);
  pt_campaign_spec s = {.id = S("g"), .kind = PT_GROUP_BUY, .stock = 100, .hold_ms = 60000,
                        .group_size = 3, .group_ttl_ms = 600000};
  pt_result r;
  pt_campaign_create(e, T0, S("mk"), &s, &r);
  assert_int_equal(r.status, PT_OK);
  pt_join(e, T0, S("j1"), S("g"), S("ann"), PT_JOIN_OPEN, 0, false, &r);
  assert_int_equal(r.status, PT_OK);
  uint64_t g = r.group_id;
  assert_true(g >> 32 != 1);
  pt_join(e, T0, S("j2"), S("g"), S("bob"), PT_JOIN_GROUP, g ^ 4, false, &r);
  assert_int_equal(r.status, PT_NOT_FOUND);
  pt_join(e, T0, S("j3"), S("g"), S("bob"), PT_JOIN_GROUP, g, false, &r);
  assert_int_equal(r.status, PT_OK);
  assert_int_equal(r.group_id, g);
  set_key(e, 6, 66);
  pt_join(e, T0, S("j4"), S("g"), S("cat"), PT_JOIN_GROUP, g, false, &r); /* an older era's link */
  assert_int_equal(r.status, PT_OK);
  pt_group_info gi;
  assert_int_equal(pt_group_get(e, S("g"), g, &gi), PT_OK);
  assert_int_equal(gi.members, 3);
  pt_join(e, T0, S("j3"), S("g"), S("bob"), PT_JOIN_GROUP, g, false, &r); /* a retry */
  assert_true(r.replay);
  assert_int_equal(r.group_id, g);
  pt_engine_free(e);
}

/* The key is an input: journaled, and read back the same. */
static void test_key_input(void **state) {
  (void)state;
  pt_input in = {.kind = PT_IN_ID_KEY, .now = T0, .id_tag = 77};
  key_of(in.id_key, 9);
  msgpack_sbuffer sb;
  msgpack_sbuffer_init(&sb);
  msgpack_packer pk;
  msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
  pt_input_pack(&pk, &in, NULL);
  msgpack_unpacked u;
  msgpack_unpacked_init(&u);
  assert_int_equal(msgpack_unpack_next(&u, sb.data, sb.size, NULL), MSGPACK_UNPACK_SUCCESS);
  pt_input out;
  pt_input_digest d;
  char err[100];
  assert_int_equal(pt_input_unpack(&u.data, &out, &d, err, sizeof err), 0);
  assert_int_equal(out.kind, PT_IN_ID_KEY);
  assert_int_equal(out.id_tag, 77);
  assert_memory_equal(out.id_key, in.id_key, 16);
  pt_engine *a = fresh(), *b = fresh();
  pt_input_apply(a, &in, NULL);
  pt_input_apply(b, &out, NULL);
  flash(a, "c", 5), flash(b, "c", 5);
  assert_int_equal(reserve(a, "c", "u", "r"), reserve(b, "c", "u", "r"));
  msgpack_unpacked_destroy(&u);
  msgpack_sbuffer_destroy(&sb);
  pt_engine_free(a), pt_engine_free(b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_speck_vector),
      cmocka_unit_test(test_unkeyed_as_before),
      cmocka_unit_test(test_keyed_ids),
      cmocka_unit_test(test_eras),
      cmocka_unit_test(test_lost_ids_never_name_another_hold),
      cmocka_unit_test(test_group_ids),
      cmocka_unit_test(test_key_input),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
