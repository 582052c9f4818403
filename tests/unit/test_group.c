/* Group-buy unit tests: every join mode and status, seats, completion,
 * expiry, failure, simulated completion, leadership, AUTO matching order
 * and the deadline margin, idempotent joins, events. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "engine.h"

#define T0 1700000000000LL
#define MAX_EV 64

typedef struct fx {
  pt_engine *e;
  pt_event ev[MAX_EV];
  char members[MAX_EV][PT_GROUP_MAX][16]; /* copies: events' strings are transient */
  int nev;
  int keyno;
} fx;

static void on_event(void *ctx, const pt_event *ev) {
  fx *f = ctx;
  if (f->nev >= MAX_EV) return;
  f->ev[f->nev] = *ev;
  for (size_t i = 0; i < ev->n_members && i < PT_GROUP_MAX; i++)
    snprintf(f->members[f->nev][i], 16, "%.*s", (int)ev->members[i].len,
             (const char *)ev->members[i].p);
  f->ev[f->nev].members = NULL;
  f->nev++;
}

static int setup(void **state) {
  static fx f;
  memset(&f, 0, sizeof(f));
  pt_engine_config cfg = {.idem_window_ms = 60000, .hash_seed = 3,
                          .sink = {.event = on_event, .ctx = &f}};
  f.e = pt_engine_new(&cfg);
  *state = &f;
  return 0;
}
static int teardown(void **state) {
  pt_engine_free(((fx *)*state)->e);
  return 0;
}

static pt_bytes S(const char *s) { return (pt_bytes){(const uint8_t *)s, strlen(s)}; }

typedef struct gspec {
  int64_t stock;
  uint32_t size, limit, sim;
  int64_t ttl, hold, margin;
  bool new_only;
} gspec;

static pt_status mkg(fx *f, const char *id, gspec g) {
  pt_campaign_spec s = {.id = S(id), .kind = PT_GROUP_BUY, .start_ms = T0, .end_ms = T0 + 3600000,
                        .stock = g.stock, .per_user_limit = g.limit, .hold_ms = g.hold ? g.hold : 1000,
                        .group_size = g.size, .group_ttl_ms = g.ttl ? g.ttl : 10000,
                        .new_users_only = g.new_only, .simulate_min_paid = g.sim,
                        .match_margin_ms = g.margin};
  pt_result r;
  pt_campaign_create(f->e, T0 - 1000, S(id), &s, &r);
  return r.status;
}

static pt_result join(fx *f, int64_t now, const char *c, const char *u, pt_join_mode m,
                      uint64_t gid) {
  char key[16];
  snprintf(key, sizeof key, "j%d", f->keyno++);
  pt_result r;
  pt_join(f->e, now, S(key), S(c), S(u), m, gid, true, &r);
  return r;
}
static pt_result join_old(fx *f, int64_t now, const char *c, const char *u, pt_join_mode m,
                          uint64_t gid) {
  char key[16];
  snprintf(key, sizeof key, "j%d", f->keyno++);
  pt_result r;
  pt_join(f->e, now, S(key), S(c), S(u), m, gid, false, &r);
  return r;
}
/* pay and leave as the seat's owner (test_seat_reservation_names_group
 * tries another user) */
static pt_bytes owner_of(fx *f, const char *c, uint64_t seat) {
  pt_reservation_info i;
  if (pt_reservation_get(f->e, S(c), seat, (pt_bytes){0}, &i) != PT_OK) return S("nobody");
  return i.user_id;
}
static pt_status pay(fx *f, int64_t now, const char *c, uint64_t seat) {
  char key[16];
  snprintf(key, sizeof key, "p%d", f->keyno++);
  pt_result r;
  pt_confirm(f->e, now, S(key), S(c), seat, owner_of(f, c, seat), &r);
  return r.status;
}
static pt_status leave(fx *f, int64_t now, const char *c, uint64_t seat) {
  char key[16];
  snprintf(key, sizeof key, "x%d", f->keyno++);
  pt_result r;
  pt_cancel(f->e, now, S(key), S(c), seat, owner_of(f, c, seat), &r);
  return r.status;
}
static pt_campaign_info info(fx *f, const char *c) {
  pt_campaign_info i;
  pt_campaign_info_get(f->e, pt_campaign_find(f->e, S(c)), T0, &i);
  assert_int_equal(i.available + i.held + i.sold, i.stock);
  return i;
}
static pt_group_info *ginfo(fx *f, const char *c, uint64_t gid) {
  static pt_group_info g;
  assert_int_equal(pt_group_get(f->e, S(c), gid, &g), PT_OK);
  return &g;
}

static void test_create_validation(void **state) {
  fx *f = *state;
  assert_int_equal(mkg(f, "g", (gspec){.stock = 10, .size = 3}), PT_OK);
  assert_int_equal(mkg(f, "b1", (gspec){.stock = 10, .size = 1}), PT_INVALID_ARGUMENT);
  assert_int_equal(mkg(f, "b2", (gspec){.stock = 10, .size = 65}), PT_INVALID_ARGUMENT);
  assert_int_equal(mkg(f, "b3", (gspec){.stock = 10, .size = 3, .sim = 3}), PT_INVALID_ARGUMENT);
  assert_int_equal(mkg(f, "b4", (gspec){.stock = 10, .size = 3, .ttl = 100, .margin = 100}),
                   PT_INVALID_ARGUMENT);
  pt_campaign_info i = info(f, "g");
  assert_int_equal(i.kind, PT_GROUP_BUY);
  assert_int_equal(i.group_size, 3);
  /* flash operations do not apply */
  pt_result r;
  pt_reserve(f->e, T0, S("r"), S("g"), S("u"), 1, &r);
  assert_int_equal(r.status, PT_INVALID_ARGUMENT);
}

static void test_open_join_complete(void **state) {
  fx *f = *state;
  mkg(f, "g", (gspec){.stock = 10, .size = 3});
  assert_int_equal(join(f, T0 - 1, "g", "a", PT_JOIN_OPEN, 0).status, PT_NOT_STARTED);
  pt_result a = join(f, T0, "g", "a", PT_JOIN_OPEN, 0);
  assert_int_equal(a.status, PT_OK);
  assert_true(a.opened);
  assert_int_equal(a.state, PT_HELD);
  assert_int_equal(a.expires_ms, T0 + 1000);
  uint64_t gid = a.group_id;
  assert_int_not_equal(gid, 0);
  pt_result b = join(f, T0 + 1, "g", "b", PT_JOIN_GROUP, gid);
  assert_int_equal(b.status, PT_OK);
  assert_false(b.opened);
  assert_int_equal(b.group_id, gid);
  assert_int_equal(join(f, T0 + 1, "g", "b", PT_JOIN_GROUP, gid).status, PT_ALREADY_MEMBER);
  assert_int_equal(join(f, T0 + 1, "g", "z", PT_JOIN_GROUP, gid + 7).status, PT_NOT_FOUND);
  pt_result c = join(f, T0 + 2, "g", "c", PT_JOIN_GROUP, gid);
  assert_int_equal(c.status, PT_OK);
  assert_int_equal(join(f, T0 + 2, "g", "d", PT_JOIN_GROUP, gid).status, PT_GROUP_FULL);
  pt_campaign_info i = info(f, "g");
  assert_int_equal(i.held, 3);
  assert_int_equal(i.available, 7);
  assert_int_equal(pay(f, T0 + 3, "g", a.reservation_id), PT_OK);
  assert_int_equal(pay(f, T0 + 3, "g", a.reservation_id), PT_CONFLICT);
  assert_int_equal(pay(f, T0 + 3, "g", b.reservation_id), PT_OK);
  assert_int_equal(f->nev, 0);
  assert_int_equal(ginfo(f, "g", gid)->paid, 2);
  assert_int_equal(ginfo(f, "g", gid)->state, PT_GS_OPEN);
  assert_int_equal(pay(f, T0 + 4, "g", c.reservation_id), PT_OK); /* 成团 */
  assert_int_equal(f->nev, 1);
  assert_int_equal(f->ev[0].type, PT_EV_GROUP_COMPLETED);
  assert_int_equal(f->ev[0].group_id, gid);
  assert_int_equal(f->ev[0].n_members, 3);
  assert_string_equal(f->members[0][0], "a");
  assert_string_equal(f->members[0][2], "c");
  assert_false(f->ev[0].simulated);
  i = info(f, "g");
  assert_int_equal(i.sold, 3);
  assert_int_equal(i.held, 0);
  pt_group_info *g = ginfo(f, "g", gid);
  assert_int_equal(g->state, PT_GS_COMPLETED);
  assert_int_equal(g->member[0].state, PT_SOLD);
  assert_int_equal(join(f, T0 + 5, "g", "d", PT_JOIN_GROUP, gid).status, PT_GROUP_CLOSED);
  assert_int_equal(leave(f, T0 + 5, "g", a.reservation_id), PT_CONFLICT);
  pt_holdings_info h;
  pt_holdings_get(f->e, S("g"), S("a"), &h);
  assert_int_equal(h.sold, 1);
  /* no group ends twice: its deadline passes quietly */
  pt_engine_advance(f->e, T0 + 20000);
  assert_int_equal(f->nev, 1);
  assert_int_equal(join(f, T0 + 3600000, "g", "e", PT_JOIN_OPEN, 0).status, PT_ENDED);
}

static void test_limits_stock_new_users(void **state) {
  fx *f = *state;
  mkg(f, "g", (gspec){.stock = 3, .size = 2, .limit = 1, .new_only = true});
  pt_result a = join_old(f, T0, "g", "old", PT_JOIN_OPEN, 0); /* a leader may be anyone */
  assert_int_equal(a.status, PT_OK);
  assert_int_equal(join(f, T0, "g", "old", PT_JOIN_OPEN, 0).status, PT_LIMIT_EXCEEDED);
  assert_int_equal(join_old(f, T0, "g", "old2", PT_JOIN_GROUP, a.group_id).status, PT_NOT_NEW_USER);
  /* an old user's AUTO opens a group of their own */
  pt_result b = join_old(f, T0, "g", "old3", PT_JOIN_AUTO, 0);
  assert_int_equal(b.status, PT_OK);
  assert_true(b.opened);
  pt_result c = join(f, T0, "g", "new1", PT_JOIN_AUTO, 0);
  assert_int_equal(c.status, PT_OK);
  assert_false(c.opened);
  assert_int_equal(join(f, T0, "g", "new2", PT_JOIN_AUTO, 0).status, PT_SOLD_OUT);
  assert_int_equal(info(f, "g").available, 0);
}

static void test_seat_expiry_and_leadership(void **state) {
  fx *f = *state;
  mkg(f, "g", (gspec){.stock = 10, .size = 3, .hold = 500});
  pt_result a = join(f, T0, "g", "a", PT_JOIN_OPEN, 0);
  pt_result b = join(f, T0 + 100, "g", "b", PT_JOIN_GROUP, a.group_id);
  pt_result c = join(f, T0 + 200, "g", "c", PT_JOIN_GROUP, a.group_id);
  assert_int_equal(pay(f, T0 + 300, "g", b.reservation_id), PT_OK);
  /* the leader leaves: the earliest remaining member leads */
  assert_int_equal(leave(f, T0 + 300, "g", a.reservation_id), PT_OK);
  pt_group_info *g = ginfo(f, "g", a.group_id);
  assert_int_equal(g->members, 2);
  assert_memory_equal(g->member[0].user_id.p, "b", 1);
  assert_int_equal(info(f, "g").held, 2);
  /* c never pays: the seat expires and frees its place */
  pt_engine_advance(f->e, T0 + 700);
  assert_int_equal(f->nev, 1);
  assert_int_equal(f->ev[0].type, PT_EV_SEAT_EXPIRED);
  assert_int_equal(f->ev[0].reservation_id, c.reservation_id);
  assert_int_equal(f->ev[0].group_id, a.group_id);
  assert_int_equal(ginfo(f, "g", a.group_id)->members, 1);
  assert_int_equal(info(f, "g").available, 9);
  assert_int_equal(pay(f, T0 + 700, "g", c.reservation_id), PT_EXPIRED);
  /* someone else takes the place */
  assert_int_equal(join(f, T0 + 800, "g", "d", PT_JOIN_GROUP, a.group_id).status, PT_OK);
  /* a paid seat may leave an open group: its unit returns */
  assert_int_equal(leave(f, T0 + 900, "g", b.reservation_id), PT_OK);
  pt_holdings_info h;
  pt_holdings_get(f->e, S("g"), S("b"), &h);
  assert_int_equal(h.held + h.sold, 0);
}

static void test_last_member_closes(void **state) {
  fx *f = *state;
  mkg(f, "g", (gspec){.stock = 10, .size = 2});
  pt_result a = join(f, T0, "g", "a", PT_JOIN_OPEN, 0);
  assert_int_equal(leave(f, T0, "g", a.reservation_id), PT_OK);
  assert_int_equal(ginfo(f, "g", a.group_id)->state, PT_GS_CLOSED);
  assert_int_equal(info(f, "g").open_groups, 0);
  assert_int_equal(join(f, T0, "g", "b", PT_JOIN_GROUP, a.group_id).status, PT_GROUP_CLOSED);
  assert_int_equal(info(f, "g").available, 10);
  pt_engine_advance(f->e, T0 + 20000);
  assert_int_equal(f->nev, 0); /* a closed group does not fail later */
}

static void test_deadline_failure_returns_stock(void **state) {
  fx *f = *state;
  mkg(f, "g", (gspec){.stock = 5, .size = 3, .ttl = 2000, .hold = 5000});
  pt_result a = join(f, T0, "g", "a", PT_JOIN_OPEN, 0);
  pt_result b = join(f, T0, "g", "b", PT_JOIN_GROUP, a.group_id);
  assert_int_equal(pay(f, T0 + 10, "g", a.reservation_id), PT_OK);
  assert_int_equal(pt_engine_next_deadline(f->e), T0 + 2000);
  pt_engine_advance(f->e, T0 + 1999);
  assert_int_equal(f->nev, 0);
  pt_engine_advance(f->e, T0 + 2000);
  assert_int_equal(f->nev, 1);
  assert_int_equal(f->ev[0].type, PT_EV_GROUP_FAILED);
  assert_int_equal(f->ev[0].n_members, 2);
  pt_campaign_info i = info(f, "g");
  assert_int_equal(i.available, 5); /* paid and unpaid units alike */
  assert_int_equal(i.held, 0);
  assert_int_equal(ginfo(f, "g", a.group_id)->state, PT_GS_FAILED);
  assert_int_equal(ginfo(f, "g", a.group_id)->member[0].state, PT_SEAT_FAILED);
  assert_int_equal(pay(f, T0 + 2001, "g", b.reservation_id), PT_GROUP_CLOSED);
  pt_holdings_info h;
  pt_holdings_get(f->e, S("g"), S("a"), &h);
  assert_int_equal(h.held + h.sold, 0);
}

static void test_simulated_completion(void **state) {
  fx *f = *state;
  mkg(f, "g", (gspec){.stock = 5, .size = 4, .ttl = 2000, .hold = 5000, .sim = 2});
  pt_result a = join(f, T0, "g", "a", PT_JOIN_OPEN, 0);
  pt_result b = join(f, T0, "g", "b", PT_JOIN_GROUP, a.group_id);
  pt_result c = join(f, T0, "g", "c", PT_JOIN_GROUP, a.group_id);
  assert_int_equal(pay(f, T0, "g", a.reservation_id), PT_OK);
  assert_int_equal(pay(f, T0, "g", c.reservation_id), PT_OK);
  /* a second group with only one payer fails */
  pt_result d = join(f, T0, "g", "d", PT_JOIN_OPEN, 0);
  assert_int_equal(pay(f, T0, "g", d.reservation_id), PT_OK);
  pt_engine_advance(f->e, T0 + 2000);
  assert_int_equal(f->nev, 2);
  assert_int_equal(f->ev[0].type, PT_EV_GROUP_COMPLETED);
  assert_true(f->ev[0].simulated);
  assert_int_equal(f->ev[0].n_members, 2); /* the paid ones */
  assert_string_equal(f->members[0][0], "a");
  assert_string_equal(f->members[0][1], "c");
  assert_int_equal(f->ev[1].type, PT_EV_GROUP_FAILED);
  pt_campaign_info i = info(f, "g");
  assert_int_equal(i.sold, 2);
  assert_int_equal(i.available, 3);
  assert_true(ginfo(f, "g", a.group_id)->simulated);
  assert_int_equal(pay(f, T0 + 2001, "g", b.reservation_id), PT_EXPIRED);
}

static void test_auto_matching_order(void **state) {
  fx *f = *state;
  mkg(f, "g", (gspec){.stock = 100, .size = 4, .ttl = 10000, .margin = 3000, .hold = 60000});
  /* g1: 1 member (oldest), g2: 2 members, g3: 2 members (younger), g4: 3
   * members but within the margin by the time we match */
  pt_result g4 = join(f, T0, "g", "u40", PT_JOIN_OPEN, 0);
  join(f, T0, "g", "u41", PT_JOIN_GROUP, g4.group_id);
  join(f, T0, "g", "u42", PT_JOIN_GROUP, g4.group_id);
  pt_result g1 = join(f, T0 + 4000, "g", "u10", PT_JOIN_OPEN, 0);
  pt_result g2 = join(f, T0 + 4100, "g", "u20", PT_JOIN_OPEN, 0);
  join(f, T0 + 4100, "g", "u21", PT_JOIN_GROUP, g2.group_id);
  pt_result g3 = join(f, T0 + 4200, "g", "u30", PT_JOIN_OPEN, 0);
  join(f, T0 + 4200, "g", "u31", PT_JOIN_GROUP, g3.group_id);
  int64_t now = T0 + 7500; /* g4's deadline T0+10000 is within the 3000 margin */
  /* fullest eligible: g2 and g3 (2 members); g2's deadline is earlier */
  pt_result r = join(f, now, "g", "x1", PT_JOIN_AUTO, 0);
  assert_int_equal(r.group_id, g2.group_id);
  /* now g2 has 3: it is the fullest */
  r = join(f, now, "g", "x2", PT_JOIN_AUTO, 0);
  assert_int_equal(r.group_id, g2.group_id);
  /* g2 is full; g3 is next, but u30 sits in it: u30 goes to g1 */
  r = join(f, now, "g", "u30", PT_JOIN_AUTO, 0);
  assert_int_equal(r.group_id, g1.group_id);
  /* g1 and g3 both have 2 now: g1's deadline is earlier */
  r = join(f, now, "g", "x3", PT_JOIN_AUTO, 0);
  assert_int_equal(r.group_id, g1.group_id);
  /* g4 stays joinable by its link though AUTO skips it */
  assert_int_equal(join(f, now, "g", "x4", PT_JOIN_GROUP, g4.group_id).status, PT_OK);
  r = join(f, now, "g", "u31", PT_JOIN_AUTO, 0); /* g1 (3) before g3 (2) */
  assert_int_equal(r.group_id, g1.group_id);
  r = join(f, now, "g", "u10", PT_JOIN_AUTO, 0); /* g1 is full now: g3 */
  assert_int_equal(r.group_id, g3.group_id);
  r = join(f, now, "g", "u10", PT_JOIN_AUTO, 0); /* nothing fits: a new group */
  assert_true(r.opened);
}

/* The rule holds for a user in any number of groups (a skip list of 64 in
 * an earlier version lost it past 64). */
static void test_auto_user_in_many_groups(void **state) {
  fx *f = *state;
  enum { SOLO = 20, PAIRS = 200, MINE = 150 };
  mkg(f, "g", (gspec){.stock = 10000, .size = 4, .ttl = 3600000, .hold = 3600000});
  uint64_t solo[SOLO], pair[PAIRS];
  char u[16];
  for (int i = 0; i < SOLO; i++) { /* the oldest groups: one member each */
    snprintf(u, sizeof u, "s%d", i);
    solo[i] = join(f, T0, "g", u, PT_JOIN_OPEN, 0).group_id;
  }
  for (int i = 0; i < PAIRS; i++) { /* then two-member groups; hog sits in the first 150 */
    snprintf(u, sizeof u, "p%d", i);
    pair[i] = join(f, T0 + 1 + i, "g", u, PT_JOIN_OPEN, 0).group_id;
    if (i < MINE) {
      assert_int_equal(join(f, T0 + 1 + i, "g", "hog", PT_JOIN_GROUP, pair[i]).status, PT_OK);
    } else {
      snprintf(u, sizeof u, "q%d", i);
      assert_int_equal(join(f, T0 + 1 + i, "g", u, PT_JOIN_GROUP, pair[i]).status, PT_OK);
    }
  }
  int64_t now = T0 + 1000;
  /* each AUTO join takes the oldest two-member group hog is not in */
  for (int i = MINE; i < PAIRS; i++) {
    pt_result r = join(f, now, "g", "hog", PT_JOIN_AUTO, 0);
    assert_int_equal(r.status, PT_OK);
    assert_false(r.opened);
    assert_int_equal(r.group_id, pair[i]);
  }
  /* every group of 3 has hog; of the groups of 2, all are hog's: the
   * oldest one-member group is next */
  pt_result r = join(f, now, "g", "hog", PT_JOIN_AUTO, 0);
  assert_int_equal(r.group_id, solo[0]);
  /* another user goes to the fullest: the oldest group of 3 */
  r = join(f, now, "g", "other", PT_JOIN_AUTO, 0);
  assert_int_equal(r.group_id, pair[MINE]);
  /* hog leaves a group of 3: it drops to 2 members and hog may return to it */
  pt_group_info *gi = ginfo(f, "g", pair[MINE + 1]);
  uint64_t seat = 0;
  for (uint32_t i = 0; i < gi->members; i++)
    if (gi->member[i].user_id.len == 3 && !memcmp(gi->member[i].user_id.p, "hog", 3))
      seat = gi->member[i].seat_id;
  assert_int_equal(leave(f, now, "g", seat), PT_OK);
  r = join(f, now, "g", "hog", PT_JOIN_AUTO, 0); /* groups of 3 without hog: just that one */
  assert_int_equal(r.group_id, pair[MINE + 1]);
  assert_int_equal(info(f, "g").held, 20 + 2 * PAIRS + (PAIRS - MINE) + 1 + 1);
}

/* 每人限参团 N 次: the limit counts participations (open seats and completed
 * groups); a failed group or a seat left gives its participation back. */
static void test_group_limit_counts_participations(void **state) {
  fx *f = *state;
  mkg(f, "g", (gspec){.stock = 100, .size = 2, .limit = 2, .ttl = 10000, .hold = 60000});
  pt_result a = join(f, T0, "g", "ann", PT_JOIN_OPEN, 0);
  pt_result b = join(f, T0, "g", "ann", PT_JOIN_OPEN, 0);
  assert_int_equal(join(f, T0, "g", "ann", PT_JOIN_OPEN, 0).status, PT_LIMIT_EXCEEDED);
  /* leaving gives the participation back */
  assert_int_equal(leave(f, T0 + 1, "g", b.reservation_id), PT_OK);
  pt_result c = join(f, T0 + 2, "g", "ann", PT_JOIN_OPEN, 0);
  assert_int_equal(c.status, PT_OK);
  /* a completed group still counts */
  pt_result bob = join(f, T0 + 3, "g", "bob", PT_JOIN_GROUP, a.group_id);
  assert_int_equal(pay(f, T0 + 4, "g", a.reservation_id), PT_OK);
  assert_int_equal(pay(f, T0 + 4, "g", bob.reservation_id), PT_OK);
  assert_int_equal(ginfo(f, "g", a.group_id)->state, PT_GS_COMPLETED);
  assert_int_equal(join(f, T0 + 5, "g", "ann", PT_JOIN_OPEN, 0).status, PT_LIMIT_EXCEEDED);
  /* c fails at its deadline: that participation comes back */
  pt_engine_advance(f->e, T0 + 2 + 10000);
  assert_int_equal(ginfo(f, "g", c.group_id)->state, PT_GS_FAILED);
  assert_int_equal(join(f, T0 + 2 + 10000, "g", "ann", PT_JOIN_OPEN, 0).status, PT_OK);
  assert_int_equal(join(f, T0 + 2 + 10000, "g", "ann", PT_JOIN_OPEN, 0).status, PT_LIMIT_EXCEEDED);
}

/* GetReservation of a seat names its group and the group's state, now. */
static void test_seat_reservation_names_group(void **state) {
  fx *f = *state;
  mkg(f, "g", (gspec){.stock = 10, .size = 2, .ttl = 10000, .hold = 60000});
  pt_result a = join(f, T0, "g", "ann", PT_JOIN_OPEN, 0);
  pt_result b = join(f, T0, "g", "bob", PT_JOIN_AUTO, 0);
  pt_result c = join(f, T0, "g", "cat", PT_JOIN_OPEN, 0);
  pt_reservation_info ri;
  assert_int_equal(pt_reservation_get(f->e, S("g"), b.reservation_id, S("bob"), &ri), PT_OK);
  assert_int_equal(ri.group_id, a.group_id);
  assert_int_equal(ri.group_state, PT_GS_OPEN);
  /* a seat is its user's: to ann, bob's seat is no seat, and stays his */
  assert_int_equal(pt_reservation_get(f->e, S("g"), b.reservation_id, S("ann"), &ri), PT_NOT_FOUND);
  pt_result r;
  pt_cancel(f->e, T0 + 1, S("ann-x"), S("g"), b.reservation_id, S("ann"), &r);
  assert_int_equal(r.status, PT_NOT_FOUND);
  pt_confirm(f->e, T0 + 1, S("ann-p"), S("g"), b.reservation_id, S("ann"), &r);
  assert_int_equal(r.status, PT_NOT_FOUND);
  assert_int_equal(pt_reservation_get(f->e, S("g"), b.reservation_id, S("bob"), &ri), PT_OK);
  assert_int_equal(ri.state, PT_HELD);
  pay(f, T0 + 1, "g", a.reservation_id);
  pay(f, T0 + 1, "g", b.reservation_id);
  assert_int_equal(pt_reservation_get(f->e, S("g"), a.reservation_id, S("ann"), &ri), PT_OK);
  assert_int_equal(ri.group_id, a.group_id);
  assert_int_equal(ri.group_state, PT_GS_COMPLETED);
  assert_int_equal(ri.state, PT_SOLD);
  pt_engine_advance(f->e, T0 + 10000);
  assert_int_equal(pt_reservation_get(f->e, S("g"), c.reservation_id, S("cat"), &ri), PT_OK);
  assert_int_equal(ri.group_id, c.group_id);
  assert_int_equal(ri.group_state, PT_GS_FAILED);
  assert_int_equal(ri.state, PT_SEAT_FAILED);
}

static void test_idempotent_join(void **state) {
  fx *f = *state;
  mkg(f, "g", (gspec){.stock = 10, .size = 2});
  pt_result a, b, c;
  pt_join(f->e, T0, S("k1"), S("g"), S("a"), PT_JOIN_AUTO, 0, true, &a);
  pt_join(f->e, T0 + 5, S("k1"), S("g"), S("a"), PT_JOIN_AUTO, 0, true, &b);
  assert_true(b.replay);
  assert_int_equal(b.status, PT_OK);
  assert_int_equal(b.reservation_id, a.reservation_id);
  assert_int_equal(b.group_id, a.group_id);
  assert_true(b.opened);
  assert_int_equal(info(f, "g").held, 1);
  pt_join(f->e, T0 + 5, S("k1"), S("g"), S("b"), PT_JOIN_AUTO, 0, true, &c);
  assert_int_equal(c.status, PT_CONFLICT);
  assert_int_equal(info(f, "g").held, 1);
}

/* A bounded advance leaves group deadlines due past its budget; a join
 * naming such a group, or a seat's confirm or cancel, runs that group's
 * deadline (and the seat's expiry) first; every group fails once. */
static void test_bounded_advance_groups(void **state) {
  fx *f = *state;
  /* long seat windows: only the groups' 10 s deadlines fall due */
  mkg(f, "g", (gspec){.stock = 100, .size = 3, .hold = 60000});
  uint64_t gid[4], seat[4];
  for (int i = 0; i < 4; i++) {
    char u[8];
    snprintf(u, sizeof u, "u%d", i);
    pt_result r = join(f, T0 + i, "g", u, PT_JOIN_OPEN, 0);
    assert_int_equal(r.status, PT_OK);
    gid[i] = r.group_id, seat[i] = r.reservation_id;
  }
  int64_t t = T0 + 20000; /* every group past its deadline */
  pt_engine_advance_some(f->e, t, 1);
  assert_int_equal(f->nev, 1);
  assert_int_equal(f->ev[0].type, PT_EV_GROUP_FAILED);
  assert_int_equal(f->ev[0].group_id, gid[0]);
  assert_true(pt_engine_next_deadline(f->e) <= t);
  assert_int_equal(ginfo(f, "g", gid[3])->state, PT_GS_OPEN); /* not reached yet */
  /* a join naming group 3: its deadline runs first */
  pt_result r = join(f, t, "g", "v", PT_JOIN_GROUP, gid[3]);
  assert_int_equal(r.status, PT_GROUP_CLOSED);
  assert_int_equal(ginfo(f, "g", gid[3])->state, PT_GS_FAILED);
  /* paying a seat of group 2: the group failed at its deadline */
  assert_int_equal(pay(f, t, "g", seat[2]), PT_GROUP_CLOSED);
  /* AUTO does not pick group 1 (past its deadline): it opens a new one */
  r = join(f, t, "g", "w", PT_JOIN_AUTO, 0);
  assert_int_equal(r.status, PT_OK);
  assert_true(r.opened);
  pt_engine_advance_some(f->e, t, 0); /* time only */
  assert_int_equal(ginfo(f, "g", gid[1])->state, PT_GS_OPEN);
  pt_engine_advance_some(f->e, t, PT_DUE_ALL);
  int failed[4] = {0};
  for (int i = 0; i < f->nev; i++)
    for (int k = 0; k < 4; k++)
      if (f->ev[i].type == PT_EV_GROUP_FAILED && f->ev[i].group_id == gid[k]) failed[k]++;
  for (int k = 0; k < 4; k++) assert_int_equal(failed[k], 1);
  pt_campaign_info i = info(f, "g");
  assert_int_equal(i.held, 1); /* w's seat in the new group */
  assert_int_equal(i.available, 99);
}

/* A seat that left its group keeps the idempotency window of its day; the
 * window shortened since (SIGHUP), the group it left can be freed first.
 * Asking about that seat then answers from the seat alone (before: a NULL
 * group, and the daemon crashed on the request). */
static void test_seat_outlives_its_group(void **state) {
  fx *f = *state;
  mkg(f, "g", (gspec){.stock = 10, .size = 3, .ttl = 10000});
  pt_result a = join(f, T0, "g", "a", PT_JOIN_OPEN, 0);
  pt_result b = join(f, T0, "g", "b", PT_JOIN_GROUP, a.group_id);
  assert_int_equal(b.status, PT_OK);
  assert_int_equal(leave(f, T0 + 1, "g", b.reservation_id), PT_OK); /* retires at T0 + 1 + 60 s */
  pt_engine_set_idem_window(f->e, 1000);
  pt_engine_advance(f->e, T0 + 12000); /* a's seat expires: the group, empty, closes */
  pt_engine_advance(f->e, T0 + 14000); /* and is freed a second later */
  assert_int_equal(pt_group_get(f->e, S("g"), a.group_id, &(pt_group_info){0}), PT_NOT_FOUND);
  char key[] = "late";
  pt_result r;
  pt_confirm(f->e, T0 + 14000, S(key), S("g"), b.reservation_id, S("b"), &r);
  assert_int_equal(r.status, PT_CONFLICT); /* the seat was cancelled */
  assert_int_equal(r.group_id, 0);
  pt_cancel(f->e, T0 + 14000, S("late2"), S("g"), b.reservation_id, S("b"), &r);
  assert_int_equal(r.status, PT_CONFLICT);
  pt_reservation_info ri;
  assert_int_equal(pt_reservation_get(f->e, S("g"), b.reservation_id, S("b"), &ri), PT_OK);
  assert_int_equal(ri.state, PT_RELEASED);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_create_validation, setup, teardown),
      cmocka_unit_test_setup_teardown(test_open_join_complete, setup, teardown),
      cmocka_unit_test_setup_teardown(test_limits_stock_new_users, setup, teardown),
      cmocka_unit_test_setup_teardown(test_seat_expiry_and_leadership, setup, teardown),
      cmocka_unit_test_setup_teardown(test_last_member_closes, setup, teardown),
      cmocka_unit_test_setup_teardown(test_deadline_failure_returns_stock, setup, teardown),
      cmocka_unit_test_setup_teardown(test_simulated_completion, setup, teardown),
      cmocka_unit_test_setup_teardown(test_auto_matching_order, setup, teardown),
      cmocka_unit_test_setup_teardown(test_idempotent_join, setup, teardown),
      cmocka_unit_test_setup_teardown(test_auto_user_in_many_groups, setup, teardown),
      cmocka_unit_test_setup_teardown(test_group_limit_counts_participations, setup, teardown),
      cmocka_unit_test_setup_teardown(test_seat_reservation_names_group, setup, teardown),
      cmocka_unit_test_setup_teardown(test_bounded_advance_groups, setup, teardown),
      cmocka_unit_test_setup_teardown(test_seat_outlives_its_group, setup, teardown),
  };
  return cmocka_run_group_tests_name("group", tests, NULL, NULL);
}
