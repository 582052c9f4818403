/* Integration over real TCP against a real pintuand: pipelining, a race of
 * hundreds of clients for the last units, retries, admin auth, and bad
 * input, which must get a clear error, change nothing and leave everyone
 * else served. Every test ends by stopping the daemon and asserting a clean
 * exit (the daemon checks uv_loop_close() == 0 itself). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "frame.h"
#include "harness.h"

#define OK PINTUAN__V1__STATUS__OK

static pt_daemon D;

static int start_plain(void **state) {
  (void)state;
  return daemon_start(&D, NULL);
}
static int stop_clean(void **state) {
  (void)state;
  int rc = daemon_stop(&D);
  if (rc != 0) fprintf(stderr, "daemon exit status %d\n", rc);
  return rc;
}

static int64_t held_of(pintuan_client *c, const char *id) {
  pintuan_response *r;
  int64_t h = get_campaign(c, id, &r)->held;
  pintuan_response_free(r);
  return h;
}

static void assert_ping(void) {
  pintuan_client *c = connect_or_die(&D);
  pintuan_response *r;
  assert_int_equal(pintuan_ping(c, &r), 0);
  assert_int_equal(r->status, OK);
  pintuan_response_free(r);
  pintuan_close(c);
}

/* ---- pipelining ---- */

static void test_pipelining(void **state) {
  (void)state;
  pintuan_client *c = connect_or_die(&D);
  assert_int_equal(create_flash(c, "pipe", 600, 1, 60000, 0), OK);
  enum { N = 1000 };
  static char users[N][16], rids[N][16];
  uint64_t ids[N];
  for (int i = 0; i < N; i++) {
    snprintf(users[i], 16, "u%d", i);
    snprintf(rids[i], 16, "r%d", i);
    pintuan_request q;
    Pintuan__V1__Reserve m;
    pintuan_req_reserve(&q, &m, "pipe", users[i], 1, rids[i]);
    assert_int_equal(pintuan_send(c, &q), 0);
    ids[i] = q.id;
  }
  assert_int_equal(pintuan_flush(c), 0);
  int ok = 0, sold_out = 0;
  for (int i = 0; i < N; i++) {
    pintuan_response *r;
    assert_int_equal(pintuan_recv(c, &r), 0);
    assert_int_equal(r->id, ids[i]); /* replies in request order */
    if (r->status == OK) ok++;
    if (r->status == PINTUAN__V1__STATUS__SOLD_OUT) {
      sold_out++;
      assert_true(i >= 600); /* first come, first served */
    }
    pintuan_response_free(r);
  }
  assert_int_equal(ok, 600);
  assert_int_equal(sold_out, 400);
  assert_int_equal(held_of(c, "pipe"), 600);
  pintuan_close(c);
}

/* ---- the race for the last units ---- */

enum { RACERS = 240, RACE_STOCK = 50, RACE_USERS = 120 };
static pthread_barrier_t race_barrier;
static int race_status[RACERS];
static uint64_t race_res[RACERS];

static void *racer(void *arg) {
  int i = (int)(intptr_t)arg;
  pintuan_client *c = connect_or_die(&D);
  char user[16], rid[16];
  snprintf(user, sizeof user, "user%d", i % RACE_USERS); /* two racers per user */
  snprintf(rid, sizeof rid, "race-%d", i);
  pthread_barrier_wait(&race_barrier);
  pintuan_response *r;
  if (pintuan_reserve(c, "race", user, 1, rid, &r) == 0) {
    race_status[i] = r->status;
    race_res[i] = r->reservation ? r->reservation->reservation_id : 0;
    pintuan_response_free(r);
  } else {
    race_status[i] = -1;
  }
  pintuan_close(c);
  return NULL;
}

static void test_race_for_last_units(void **state) {
  (void)state;
  pintuan_client *c = connect_or_die(&D);
  assert_int_equal(create_flash(c, "race", RACE_STOCK, 1, 60000, 0), OK);
  pthread_t t[RACERS];
  pthread_barrier_init(&race_barrier, NULL, RACERS);
  for (int i = 0; i < RACERS; i++)
    assert_int_equal(pthread_create(&t[i], NULL, racer, (void *)(intptr_t)i), 0);
  for (int i = 0; i < RACERS; i++) pthread_join(t[i], NULL);
  pthread_barrier_destroy(&race_barrier);
  int ok = 0, per_user[RACE_USERS] = {0};
  for (int i = 0; i < RACERS; i++) {
    int s = race_status[i];
    assert_true(s == OK || s == PINTUAN__V1__STATUS__SOLD_OUT ||
                s == PINTUAN__V1__STATUS__LIMIT_EXCEEDED);
    if (s == OK) {
      ok++;
      per_user[i % RACE_USERS]++;
      for (int j = 0; j < i; j++) /* no unit handed out twice */
        if (race_status[j] == OK) assert_int_not_equal(race_res[j], race_res[i]);
    }
  }
  assert_int_equal(ok, RACE_STOCK);
  for (int u = 0; u < RACE_USERS; u++) assert_true(per_user[u] <= 1);
  pintuan_response *r;
  Pintuan__V1__Campaign *cp = get_campaign(c, "race", &r);
  assert_int_equal(cp->held, RACE_STOCK);
  assert_int_equal(cp->available, 0);
  assert_int_equal(cp->available + cp->held + cp->sold, cp->stock);
  pintuan_response_free(r);
  for (int u = 0; u < RACE_USERS; u++) {
    char user[16];
    snprintf(user, sizeof user, "user%d", u);
    assert_int_equal(pintuan_get_holdings(c, "race", user, &r), 0);
    assert_true(r->holdings->held <= 1);
    assert_int_equal(r->holdings->held, (uint32_t)per_user[u]);
    pintuan_response_free(r);
  }
  pintuan_close(c);
}

/* ---- holds belong to their users ---- */

static pintuan_response *cc_call(pintuan_client *c, bool confirm, uint64_t res, const char *user,
                                 int drop_user, const char *rid) {
  pintuan_request q;
  Pintuan__V1__Confirm cf;
  Pintuan__V1__Cancel cn;
  if (confirm) pintuan_req_confirm(&q, &cf, "own", res, user, rid), cf.has_user_id = !drop_user;
  else pintuan_req_cancel(&q, &cn, "own", res, user, rid), cn.has_user_id = !drop_user;
  pintuan_response *r;
  assert_int_equal(pintuan_call(c, &q, &r), 0);
  return r;
}

/* The security review's finding: an anonymous second connection read
 * bob's and carol's reservations, cancelled bob's hold and confirmed
 * carol's without payment. Now a hold answers only to its user: to anyone
 * else it does not exist (NOT_FOUND, as a wrong id), and a request that
 * names no user is refused before it is decided. */
static void test_holds_belong_to_users(void **state) {
  (void)state;
  pintuan_client *shop = connect_or_die(&D), *stranger = connect_or_die(&D);
  assert_int_equal(create_flash(shop, "own", 10, 0, 60000, 0), OK);
  uint64_t bob, carol;
  pintuan_response *r;
  assert_int_equal(pintuan_reserve(shop, "own", "bob", 1, "o-bob", &r), 0);
  bob = r->reservation->reservation_id;
  pintuan_response_free(r);
  assert_int_equal(pintuan_reserve(shop, "own", "carol", 2, "o-carol", &r), 0);
  carol = r->reservation->reservation_id;
  pintuan_response_free(r);
  /* the stranger, naming someone else, finds nothing */
  const uint64_t ids[] = {bob, carol};
  for (int i = 0; i < 2; i++) {
    assert_int_equal(pintuan_get_reservation(stranger, "own", ids[i], "mallory", &r), 0);
    assert_int_equal(r->status, PINTUAN__V1__STATUS__NOT_FOUND);
    assert_null(r->reservation);
    pintuan_response_free(r);
  }
  r = cc_call(stranger, false, bob, "mallory", 0, "x-1"); /* the fast path's request */
  assert_int_equal(r->status, PINTUAN__V1__STATUS__NOT_FOUND);
  pintuan_response_free(r);
  r = cc_call(stranger, true, carol, "bob", 0, "p-1"); /* another customer: still not his */
  assert_int_equal(r->status, PINTUAN__V1__STATUS__NOT_FOUND);
  pintuan_response_free(r);
  /* naming no user, or an empty one: refused, whichever path reads it */
  r = cc_call(stranger, true, carol, "carol", 1, "p-2");
  assert_int_equal(r->status, PINTUAN__V1__STATUS__INVALID_ARGUMENT);
  assert_non_null(strstr(r->detail, "missing field: user_id"));
  pintuan_response_free(r);
  r = cc_call(stranger, false, bob, "", 0, "x-2");
  assert_int_equal(r->status, PINTUAN__V1__STATUS__INVALID_ARGUMENT);
  assert_non_null(strstr(r->detail, "user_id"));
  pintuan_response_free(r);
  pintuan_request q;
  Pintuan__V1__GetReservation g;
  pintuan_req_get_reservation(&q, &g, "own", bob, "bob");
  g.has_user_id = 0;
  assert_int_equal(pintuan_call(stranger, &q, &r), 0);
  assert_int_equal(r->status, PINTUAN__V1__STATUS__INVALID_ARGUMENT);
  pintuan_response_free(r);
  Pintuan__V1__Campaign *cp = get_campaign(shop, "own", &r);
  assert_int_equal(cp->held, 3); /* nothing changed */
  assert_int_equal(cp->sold, 0);
  pintuan_response_free(r);
  /* the owners: their holds, answered with their names */
  r = cc_call(shop, false, bob, "bob", 0, "x-3");
  assert_int_equal(r->status, OK);
  assert_memory_equal(r->reservation->user_id.data, "bob", 3);
  pintuan_response_free(r);
  r = cc_call(shop, true, carol, "carol", 0, "p-3");
  assert_int_equal(r->status, OK);
  assert_int_equal(r->reservation->state, PINTUAN__V1__HOLD_STATE__SOLD);
  pintuan_response_free(r);
  r = cc_call(stranger, true, carol, "mallory", 0, "p-3"); /* its request id, another user */
  assert_int_equal(r->status, PINTUAN__V1__STATUS__CONFLICT);
  pintuan_response_free(r);
  assert_int_equal(pintuan_get_reservation(shop, "own", carol, "carol", &r), 0);
  assert_int_equal(r->status, OK);
  assert_memory_equal(r->reservation->user_id.data, "carol", 5);
  pintuan_response_free(r);
  pintuan_close(stranger);
  pintuan_close(shop);
}

/* ListCampaigns pages (the review: 100,000 campaigns were one 26 MB answer
 * that held the loop for a second): at most 1000 a page, a cursor to the
 * next, and a walk that sees each campaign once. */
static void test_list_campaigns_pages(void **state) {
  (void)state;
  pintuan_client *c = connect_or_die(&D);
  enum { N = 250 };
  for (int i = 0; i < N; i++) {
    char id[16];
    snprintf(id, sizeof id, "pg-%d", i);
    assert_int_equal(create_flash(c, id, 1, 0, 60000, 0), OK);
  }
  static bool seen[N];
  uint64_t cursor = 0;
  int pages = 0, total = 0;
  pintuan_response *r;
  do {
    assert_int_equal(pintuan_list_campaigns(c, cursor, 100, &r), 0);
    assert_int_equal(r->status, OK);
    assert_true(r->campaigns->n_campaigns <= 100);
    for (size_t i = 0; i < r->campaigns->n_campaigns; i++) {
      ProtobufCBinaryData id = r->campaigns->campaigns[i]->campaign_id;
      char text[16];
      snprintf(text, sizeof text, "%.*s", (int)id.len, (const char *)id.data);
      int k = atoi(text + 3);
      assert_false(seen[k]);
      seen[k] = true, total++;
    }
    cursor = r->campaigns->next_cursor;
    pintuan_response_free(r);
    pages++;
  } while (cursor);
  assert_int_equal(total, N);
  assert_int_equal(pages, 3);
  assert_int_equal(pintuan_list_campaigns(c, 0, 0, &r), 0); /* the default page */
  assert_int_equal(r->campaigns->n_campaigns, 100);
  pintuan_response_free(r);
  assert_int_equal(pintuan_list_campaigns(c, 0, 1001, &r), 0);
  assert_int_equal(r->status, PINTUAN__V1__STATUS__INVALID_ARGUMENT);
  pintuan_response_free(r);
  assert_int_equal(pintuan_list_campaigns(c, 1u << 30, 10, &r), 0); /* past the end: an empty last page */
  assert_int_equal(r->status, OK);
  assert_int_equal(r->campaigns->n_campaigns, 0);
  assert_int_equal(r->campaigns->next_cursor, 0);
  pintuan_response_free(r);
  pintuan_close(c);
}

/* ---- retries ---- */

static void test_retry_same_request_id(void **state) {
  (void)state;
  pintuan_client *c = connect_or_die(&D);
  assert_int_equal(create_flash(c, "retry", 5, 2, 60000, 0), OK);
  pintuan_response *a, *b, *x;
  assert_int_equal(pintuan_reserve(c, "retry", "alice", 2, "order-1", &a), 0);
  assert_int_equal(a->status, OK);
  assert_false(a->replay);
  pintuan_close(c);
  c = connect_or_die(&D); /* a retry after a reconnect */
  assert_int_equal(pintuan_reserve(c, "retry", "alice", 2, "order-1", &b), 0);
  assert_int_equal(b->status, OK);
  assert_true(b->has_replay && b->replay);
  assert_int_equal(b->reservation->reservation_id, a->reservation->reservation_id);
  assert_int_equal(b->reservation->expires_ms, a->reservation->expires_ms);
  assert_int_equal(held_of(c, "retry"), 2);
  /* confirm, retried: same answer, sold once */
  assert_int_equal(pintuan_confirm(c, "retry", a->reservation->reservation_id, "alice", "pay-1", &x), 0);
  assert_int_equal(x->status, OK);
  pintuan_response_free(x);
  assert_int_equal(pintuan_confirm(c, "retry", a->reservation->reservation_id, "alice", "pay-1", &x), 0);
  assert_int_equal(x->status, OK);
  assert_true(x->replay);
  pintuan_response_free(x);
  pintuan_response *cr;
  Pintuan__V1__Campaign *cp = get_campaign(c, "retry", &cr);
  assert_int_equal(cp->sold, 2);
  assert_int_equal(cp->held, 0);
  pintuan_response_free(cr);
  /* the same id for a different request is refused, nothing changes */
  assert_int_equal(pintuan_reserve(c, "retry", "alice", 1, "order-1", &x), 0);
  assert_int_equal(x->status, PINTUAN__V1__STATUS__CONFLICT);
  pintuan_response_free(x);
  pintuan_response_free(a);
  pintuan_response_free(b);
  pintuan_close(c);
}

/* ---- remembered effects: only effects, under a hard cap ---- */

/* SOLD_OUT answers are not remembered: the same request id retried after
 * stock came back is decided afresh (and then remembered as the effect). */
static void test_rejections_are_not_remembered(void **state) {
  (void)state;
  pintuan_client *c = connect_or_die(&D);
  assert_int_equal(create_flash(c, "none", 0, 0, 60000, 0), OK);
  pintuan_response *r;
  assert_int_equal(pintuan_reserve(c, "none", "bob", 1, "o-1", &r), 0);
  assert_int_equal(r->status, PINTUAN__V1__STATUS__SOLD_OUT);
  pintuan_response_free(r);
  pintuan_campaign_update up = {.fields = PINTUAN_UPDATE_STOCK, .stock = 1};
  assert_int_equal(pintuan_update_campaign(c, "none", &up, "restock", &r), 0);
  assert_int_equal(r->status, OK);
  pintuan_response_free(r);
  assert_int_equal(pintuan_reserve(c, "none", "bob", 1, "o-1", &r), 0);
  assert_int_equal(r->status, OK);
  assert_false(r->has_replay && r->replay);
  pintuan_response_free(r);
  assert_int_equal(pintuan_reserve(c, "none", "bob", 1, "o-1", &r), 0);
  assert_true(r->has_replay && r->replay);
  pintuan_response_free(r);
  pintuan_close(c);
}

/* Past max_remembered the oldest effects are forgotten (logged once); the
 * newest are still answered as replays. */
static void test_max_remembered_evicts_oldest(void **state) {
  (void)state;
  assert_int_equal(daemon_stop(&D), 0);
  const char *args[] = {"--max-remembered", "1000", NULL};
  assert_int_equal(daemon_start(&D, args), 0);
  pintuan_client *c = connect_or_die(&D);
  assert_int_equal(create_flash(c, "cap", 100000, 0, 600000, 0), OK);
  enum { N = 1500 };
  for (int i = 0; i < N; i++) { /* pipelined */
    static pintuan_request q[N];
    static Pintuan__V1__Reserve b[N];
    static char user[N][16], rid[N][16];
    snprintf(user[i], 16, "u%d", i);
    snprintf(rid[i], 16, "o%d", i);
    pintuan_req_reserve(&q[i], &b[i], "cap", user[i], 1, rid[i]);
    assert_int_equal(pintuan_send(c, &q[i]), 0);
  }
  assert_int_equal(pintuan_flush(c), 0);
  for (int i = 0; i < N; i++) {
    pintuan_response *r;
    assert_int_equal(pintuan_recv(c, &r), 0);
    assert_int_equal(r->status, OK);
    pintuan_response_free(r);
  }
  assert_int_equal(daemon_log_wait(&D, "max_remembered (1000) reached", PT_WAIT_MS, NULL, 0), 0);
  pintuan_response *r;
  assert_int_equal(pintuan_reserve(c, "cap", "u1499", 1, "o1499", &r), 0); /* the newest: a replay */
  assert_true(r->has_replay && r->replay);
  pintuan_response_free(r);
  assert_int_equal(pintuan_reserve(c, "cap", "u0", 1, "o0", &r), 0); /* the oldest: forgotten */
  assert_int_equal(r->status, OK);
  assert_false(r->has_replay && r->replay);
  pintuan_response_free(r);
  assert_int_equal(held_of(c, "cap"), N + 1);
  /* logged once only: the eviction is a counter from then on */
  assert_int_equal(daemon_log_wait(&D, "max_remembered (1000) reached", 200, NULL, 0), -1);
  pintuan_close(c);
}

/* ---- hold expiry, on the daemon's test clock ---- */

static void test_hold_expires(void **state) {
  (void)state;
  pintuan_client *c = connect_or_die(&D);
  assert_int_equal(create_flash(c, "exp", 1, 1, 300, 0), OK);
  const char *only_exp[] = {"exp", NULL};
  pintuan_client *sub = connect_or_die(&D);
  pintuan_response *a, *r;
  assert_int_equal(pintuan_subscribe(sub, only_exp, &r), 0);
  assert_int_equal(r->status, OK);
  pintuan_response_free(r);
  assert_int_equal(pintuan_reserve(c, "exp", "bob", 1, "e-1", &a), 0);
  assert_int_equal(a->status, OK);
  int64_t expires = a->reservation->expires_ms;
  assert_int_equal(expires, D.now + 300);
  /* a millisecond before the deadline a request still finds it held */
  advance_time(&D, c, 299);
  assert_int_equal(held_of(c, "exp"), 1);
  /* at the deadline, with no request at all, the daemon's own timer expires
   * it: await the event */
  set_time(&D, expires);
  assert_int_equal(pintuan_recv(sub, &r), 0);
  assert_int_equal(r->id, 0);
  assert_int_equal(r->result_case, PINTUAN__V1__RESPONSE__RESULT_EVENT);
  assert_int_equal(r->event->type, PINTUAN__V1__EVENT_TYPE__HOLD_EXPIRED);
  assert_int_equal(r->event->reservation_id, a->reservation->reservation_id);
  assert_int_equal(r->event->at_ms, expires);
  pintuan_response_free(r);
  assert_int_equal(held_of(c, "exp"), 0);
  assert_int_equal(pintuan_confirm(c, "exp", a->reservation->reservation_id, "bob", "e-pay", &r), 0);
  assert_int_equal(r->status, PINTUAN__V1__STATUS__EXPIRED);
  pintuan_response_free(r);
  pintuan_response_free(a);
  pintuan_close(sub);
  pintuan_close(c);
}

/* ---- bad input ---- */

static void test_frame_over_limit(void **state) {
  (void)state;
  pintuan_client *c = connect_or_die(&D);
  assert_int_equal(create_flash(c, "bad", 10, 0, 60000, 0), OK);
  int fd = raw_connect(&D);
  uint8_t prefix[4] = {0x00, 0x10, 0x00, 0x01}; /* 1 MiB + 1 */
  assert_int_equal(raw_send(fd, prefix, 4), 0);
  int eof;
  pintuan_response *r = raw_recv(fd, PT_WAIT_MS, &eof);
  assert_non_null(r);
  assert_int_equal(r->id, 0);
  assert_int_equal(r->status, PINTUAN__V1__STATUS__INVALID_ARGUMENT);
  assert_non_null(strstr(r->detail, "exceeds the limit"));
  pintuan_response_free(r);
  assert_null(raw_recv(fd, PT_WAIT_MS, &eof));
  assert_int_equal(eof, 1); /* and the stream is closed */
  close(fd);
  assert_int_equal(held_of(c, "bad"), 0);
  assert_ping();
  pintuan_close(c);
}

static void test_garbage_and_missing_fields(void **state) {
  (void)state;
  pintuan_client *c = connect_or_die(&D);
  assert_int_equal(create_flash(c, "bad2", 10, 0, 60000, 0), OK);
  int fd = raw_connect(&D);
  /* a well-framed message that is not a Request */
  uint8_t garbage[] = {0, 0, 0, 6, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
  assert_int_equal(raw_send(fd, garbage, sizeof garbage), 0);
  int eof;
  pintuan_response *r = raw_recv(fd, PT_WAIT_MS, &eof);
  assert_non_null(r);
  assert_int_equal(r->status, PINTUAN__V1__STATUS__INVALID_ARGUMENT);
  assert_non_null(strstr(r->detail, "malformed"));
  pintuan_response_free(r);

  struct { const char *what; int qty; int no_user; int no_id; const char *campaign; int want; const char *detail; } cases[] = {
      {"missing user_id", 1, 1, 0, "bad2", PINTUAN__V1__STATUS__INVALID_ARGUMENT, "missing field: user_id"},
      {"negative quantity", -3, 0, 0, "bad2", PINTUAN__V1__STATUS__INVALID_ARGUMENT, "quantity"},
      {"zero quantity", 0, 0, 0, "bad2", PINTUAN__V1__STATUS__INVALID_ARGUMENT, "quantity"},
      {"missing correlation id", 1, 0, 1, "bad2", PINTUAN__V1__STATUS__INVALID_ARGUMENT, "missing field: id"},
      {"unknown campaign", 1, 0, 0, "nope", PINTUAN__V1__STATUS__NOT_FOUND, "no such campaign"},
      {"campaign id too long", 1, 0, 0,
       "0123456789012345678901234567890123456789012345678901234567890123456789",
       PINTUAN__V1__STATUS__INVALID_ARGUMENT, "1..64"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    pintuan_request q;
    Pintuan__V1__Reserve m;
    pintuan_req_reserve(&q, &m, cases[i].campaign, "u1", cases[i].qty, "rq");
    if (cases[i].no_user) m.has_user_id = 0;
    q.has_id = !cases[i].no_id;
    q.id = 100 + i;
    assert_int_equal(raw_send_request(fd, &q), 0);
    r = raw_recv(fd, PT_WAIT_MS, &eof);
    assert_non_null(r);
    if ((int)r->status != cases[i].want || !strstr(r->detail, cases[i].detail))
      fail_msg("%s: got %s \"%s\"", cases[i].what, pintuan_status_str(r->status), r->detail);
    pintuan_response_free(r);
  }
  /* a request with no op at all */
  Pintuan__V1__Request empty = PINTUAN__V1__REQUEST__INIT;
  empty.has_id = 1, empty.id = 7;
  assert_int_equal(raw_send_request(fd, &empty), 0);
  r = raw_recv(fd, PT_WAIT_MS, &eof);
  assert_int_equal(r->status, PINTUAN__V1__STATUS__INVALID_ARGUMENT);
  assert_int_equal(r->id, 7);
  pintuan_response_free(r);
  /* nothing changed, and this very connection still works */
  assert_int_equal(held_of(c, "bad2"), 0);
  pintuan_request q;
  Pintuan__V1__Reserve m;
  pintuan_req_reserve(&q, &m, "bad2", "u1", 1, "good");
  q.has_id = 1, q.id = 99;
  assert_int_equal(raw_send_request(fd, &q), 0);
  r = raw_recv(fd, PT_WAIT_MS, &eof);
  assert_int_equal(r->status, OK);
  pintuan_response_free(r);
  close(fd);
  assert_int_equal(held_of(c, "bad2"), 1);
  pintuan_close(c);
}

static void test_truncated_frame(void **state) {
  (void)state;
  pintuan_client *c = connect_or_die(&D);
  assert_int_equal(create_flash(c, "trunc", 10, 0, 60000, 0), OK);
  pintuan_request q;
  Pintuan__V1__Reserve m;
  pintuan_req_reserve(&q, &m, "trunc", "u1", 1, "t-1");
  q.has_id = 1, q.id = 1;
  size_t n = pintuan__v1__request__get_packed_size(&q);
  uint8_t buf[256];
  pt_be32_put(buf, (uint32_t)n);
  pintuan__v1__request__pack(&q, buf + 4);
  int fd = raw_connect(&D);
  assert_int_equal(raw_send(fd, buf, 4 + n / 2), 0); /* half a frame, then hang up */
  int other = raw_connect(&D); /* meanwhile another client is served */
  pintuan_close(c);
  c = connect_or_die(&D);
  assert_ping();
  close(fd);
  close(other);
  assert_int_equal(held_of(c, "trunc"), 0);
  /* the same request, whole, is new: the partial one decided nothing */
  pintuan_response *r;
  assert_int_equal(pintuan_reserve(c, "trunc", "u1", 1, "t-1", &r), 0);
  assert_int_equal(r->status, OK);
  assert_false(r->replay);
  pintuan_response_free(r);
  pintuan_close(c);
}

/* Moves the test clock past the frame timeout until fd gets the daemon's
 * verdict on its incomplete frame. (The frame's age counts from when the
 * daemon read its first bytes, which the test cannot see: so the clock
 * moves again each time a sweep has had its chance, 100 ms, without one.) */
static pintuan_response *await_frame_verdict(int fd, int64_t timeout_ms) {
  for (int64_t waited = 0; waited < PT_WAIT_MS; waited += 100) {
    set_time(&D, D.now + timeout_ms + 1);
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, 100) > 0) {
      int eof;
      return raw_recv(fd, PT_WAIT_MS, &eof);
    }
  }
  return NULL;
}

static void test_stuck_frame_times_out(void **state) {
  (void)state;
  assert_int_equal(daemon_stop(&D), 0);
  const char *args[] = {"--frame-timeout", "300", NULL};
  assert_int_equal(daemon_start(&D, args), 0);
  int fd = raw_connect(&D);
  uint8_t half[] = {0, 0, 0, 40, 0x08, 0x01}; /* 40 bytes announced, 2 sent */
  assert_int_equal(raw_send(fd, half, sizeof half), 0);
  int idle = raw_connect(&D); /* an idle client with nothing pending stays */
  pintuan_response *r = await_frame_verdict(fd, 300);
  assert_non_null(r);
  assert_int_equal(r->status, PINTUAN__V1__STATUS__INVALID_ARGUMENT);
  assert_non_null(strstr(r->detail, "incomplete frame"));
  pintuan_response_free(r);
  int eof;
  assert_null(raw_recv(fd, PT_WAIT_MS, &eof));
  assert_int_equal(eof, 1);
  close(fd);
  pintuan_request q;
  Pintuan__V1__Ping p;
  pintuan_req_ping(&q, &p);
  q.has_id = 1, q.id = 5;
  assert_int_equal(raw_send_request(idle, &q), 0);
  r = raw_recv(idle, PT_WAIT_MS, &eof);
  assert_non_null(r);
  assert_int_equal(r->id, 5);
  pintuan_response_free(r);
  close(idle);
}

/* Ping frames of exactly PING_FRAME bytes (an odd size, so that the
 * daemon's 64 KiB reads seldom end on a frame boundary), ids first_id, ... */
enum { PING_FRAME = 77 };
static void ping_frames(uint8_t *out, size_t count, uint32_t first_id) {
  pintuan_request q;
  Pintuan__V1__Ping p;
  pintuan_req_ping(&q, &p);
  uint8_t payload[64];
  memset(payload, 'x', sizeof payload);
  p.has_payload = 1, p.payload = (ProtobufCBinaryData){sizeof payload, payload};
  q.has_id = 1, q.id = 1u << 21; /* ids 2^21 .. 2^28-1 are 4-byte varints */
  uint8_t t[PING_FRAME];
  size_t n = pintuan__v1__request__get_packed_size(&q);
  assert_int_equal(n + 4, PING_FRAME);
  pt_be32_put(t, (uint32_t)n);
  pintuan__v1__request__pack(&q, t + 4);
  assert_int_equal(t[4], 0x08); /* field 1, varint: the id's bytes follow */
  for (size_t i = 0; i < count; i++) {
    uint8_t *f = out + i * PING_FRAME;
    uint32_t v = (1u << 21) + first_id + (uint32_t)i;
    memcpy(f, t, PING_FRAME);
    f[5] = (uint8_t)(v | 0x80), f[6] = (uint8_t)(v >> 7 | 0x80);
    f[7] = (uint8_t)(v >> 14 | 0x80), f[8] = (uint8_t)(v >> 21 & 0x7f);
  }
}
static uint64_t ping_id(uint32_t i) { return (1u << 21) + i; }

/* Pipelines Pings on the non-blocking fd, never reading, until the daemon
 * logs that it paused this client (it stopped reading: output over the high
 * mark). buf holds cap bytes of frames; returns how many were sent (the
 * last frame may be partly sent). The daemon must log at debug level. */
static size_t send_until_paused(int fd, const uint8_t *buf, size_t cap, char *line, size_t linelen) {
  size_t sent = 0;
  while (sent < cap) {
    ssize_t w = send(fd, buf + sent, cap - sent > 65536 ? 65536 : cap - sent, MSG_NOSIGNAL);
    if (w > 0) {
      sent += (size_t)w;
      continue;
    }
    if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
      fail_msg("send: %s", strerror(errno));
    /* the kernel buffers are full: because the daemon paused us, or only
     * because it has not caught up yet; its log says which */
    if (daemon_log_wait(&D, "paused:", 20, line, linelen) == 0) return sent;
  }
  fail_msg("sent %zu bytes and the daemon never paused", sent);
  return 0;
}

static void test_slow_reader_is_bounded(void **state) {
  (void)state;
  assert_int_equal(daemon_stop(&D), 0);
  const char *args[] = {"--log-level", "debug", NULL};
  assert_int_equal(daemon_start(&D, args), 0);
  long rss0 = daemon_rss_kb(&D);
  /* A client that pipelines pings and never reads its replies. */
  int fd = raw_connect(&D);
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  size_t cap = (size_t)(128u << 20) / PING_FRAME * PING_FRAME;
  uint8_t *buf = malloc(cap);
  ping_frames(buf, cap / PING_FRAME, 0);
  char line[512];
  size_t sent = send_until_paused(fd, buf, cap, line, sizeof line);
  print_message("slow reader: %zu bytes sent before the daemon stopped reading: %s", sent, line);
  assert_true(sent < cap); /* backpressure stopped us well before 128 MiB */
  assert_ping();           /* everyone else is still served */
  long rss1 = daemon_rss_kb(&D);
  assert_true(rss1 - rss0 < 64 * 1024); /* the daemon did not buffer it all */
  close(fd);
  free(buf);
}

/* A client that pipelines so much that the daemon pauses it (stops reading
 * it: output over the high mark), then reads nothing for many frame
 * timeouts. The frame left incomplete in the daemon's buffer is incomplete
 * only because the daemon stopped reading: the client must not be cut off;
 * once it reads, it gets every reply. */
enum { TIMEOUT = 100 };

/* One attempt on a fresh daemon (its first client is "client 1"): 0 done,
 * 1 void — the daemon drained our replies into the kernel's buffers and
 * resumed reading us before the sweep, so the frame timeout applied to our
 * partial frame, as it should; a loaded machine's TCP buffers decide that. */
static int paused_reader_attempt(void) {
  int fd = raw_connect(&D);
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  size_t cap = (size_t)(128u << 20) / PING_FRAME * PING_FRAME;
  uint8_t *buf = malloc(cap);
  ping_frames(buf, cap / PING_FRAME, 0);
  enum { RCAP = 1 << 20 };
  uint8_t *rb = malloc(RCAP);
  size_t sent = 0, got = 0;
  /* The case that matters is a pause with part of a frame held; a pause
   * right at a frame boundary is rare, and then another round is made. */
  int held = 0;
  for (int round = 0; !held; round++) {
    if (round == 10) fail_msg("10 pauses, none with a partial frame held");
    char line[512];
    sent += send_until_paused(fd, buf + sent, cap - sent, line, sizeof line);
    const char *p = strstr(line, "unsent, ");
    size_t partial = 0;
    assert_non_null(p);
    assert_int_equal(sscanf(p, "unsent, %zu bytes of a partial frame held", &partial), 1);
    held = partial > 0;
    print_message("round %d: %zu bytes sent; %s", round, sent, line);
    /* Not reading for well over the frame timeout: each verdict on a control
     * connection's incomplete frame proves a sweep ran with the clock past
     * its timeout, and this client's frame had been pending longer. */
    for (int i = 0; i < 2; i++) {
      int ctl = raw_connect(&D);
      uint8_t half[] = {0, 0, 0, 40, 0x08};
      assert_int_equal(raw_send(ctl, half, sizeof half), 0);
      pintuan_response *v = await_frame_verdict(ctl, TIMEOUT * 10);
      assert_non_null(v);
      assert_non_null(strstr(v->detail, "incomplete frame"));
      pintuan_response_free(v);
      close(ctl);
    }
    bool resumed = daemon_log_wait(&D, "client 1 resumed", 0, NULL, 0) == 0;
    /* Now read: every reply arrives, in order, and nothing else; the frame
     * sent in part is completed on the way. */
    size_t target = (sent + PING_FRAME - 1) / PING_FRAME * PING_FRAME, rlen = 0;
    while (got < target / PING_FRAME) {
      struct pollfd pf = {.fd = fd, .events = (short)(POLLIN | (sent < target ? POLLOUT : 0))};
      int n = poll(&pf, 1, PT_WAIT_MS);
      if (n <= 0) fail_msg("no progress for %d ms after %zu replies", PT_WAIT_MS, got);
      if (pf.revents & POLLOUT) {
        ssize_t w = send(fd, buf + sent, target - sent, MSG_NOSIGNAL);
        if (w > 0) sent += (size_t)w;
      }
      if (!(pf.revents & (POLLIN | POLLHUP | POLLERR))) continue;
      ssize_t r = recv(fd, rb + rlen, RCAP - rlen, 0);
      if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
      if (r <= 0 && resumed) { /* read again before the sweep: the timeout applied */
        close(fd);
        free(rb);
        free(buf);
        return 1;
      }
      if (r <= 0) fail_msg("closed by the daemon after %zu of %zu replies", got, target / PING_FRAME);
      rlen += (size_t)r;
      size_t off = 0;
      const uint8_t *msg;
      size_t len;
      while (pt_frame_next(rb + off, rlen - off, RCAP, &msg, &len) == PT_FRAME_OK) {
        pintuan_response *reply = pintuan__v1__response__unpack(NULL, len, msg);
        assert_non_null(reply);
        if (reply->id != ping_id((uint32_t)got) || reply->status != OK)
          fail_msg("reply %zu: id %llu status %s (%s)", got, (unsigned long long)reply->id,
                   pintuan_status_str(reply->status), reply->detail ? reply->detail : "");
        pintuan_response_free(reply);
        got++;
        off += PT_FRAME_HEADER + len;
      }
      memmove(rb, rb + off, rlen - off);
      rlen -= off;
    }
    assert_int_equal(rlen, 0);
    while (daemon_log_wait(&D, "paused:", 0, NULL, 0) == 0) { /* pauses while catching up */
    }
  }
  print_message("%zu replies, all received\n", got);
  /* and the connection is still served */
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  pintuan_request q;
  Pintuan__V1__Ping pg;
  pintuan_req_ping(&q, &pg);
  q.has_id = 1, q.id = 7;
  assert_int_equal(raw_send_request(fd, &q), 0);
  int eof;
  pintuan_response *r = raw_recv(fd, PT_WAIT_MS, &eof);
  assert_non_null(r);
  assert_int_equal(r->id, 7);
  pintuan_response_free(r);
  close(fd);
  free(rb);
  free(buf);
  return 0;
}

static void test_paused_reader_outlives_frame_timeout(void **state) {
  (void)state;
  const char *args[] = {"--frame-timeout", "100", "--log-level", "debug", NULL};
  for (int attempt = 0; attempt < 10; attempt++) {
    assert_int_equal(daemon_stop(&D), 0);
    assert_int_equal(daemon_start(&D, args), 0);
    if (paused_reader_attempt() == 0) return;
    print_message("attempt %d void: the daemon resumed reading us before the sweep\n", attempt);
  }
  fail_msg("10 attempts, and in each the daemon resumed reading before the sweep");
}

/* Mutation fuzzing over the wire: valid requests of every kind, bit-flipped,
 * truncated or spliced, pipelined in bursts. Every frame gets exactly one
 * reply, the daemon keeps serving, and the stock is still conserved. */
static void test_mutated_frames(void **state) {
  (void)state;
  pintuan_client *c = connect_or_die(&D);
  assert_int_equal(create_flash(c, "fz", 100, 2, 60000, 1), OK);
  assert_int_equal(create_group(c, "fg", 100, 3, 60000, 60000, 2), OK);
  int fd = raw_connect(&D);
  uint64_t x = 0x1234567;
  enum { ROUNDS = 40, BURST = 100 };
  static uint8_t burst[BURST * 600];
  for (int round = 0; round < ROUNDS; round++) {
    size_t off = 0;
    for (int k = 0; k < BURST; k++) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      uint8_t body[512];
      char rid[16], user[16];
      snprintf(rid, sizeof rid, "f%llu", (unsigned long long)(x % 5000));
      snprintf(user, sizeof user, "u%llu", (unsigned long long)(x % 50));
      pintuan_request q;
      Pintuan__V1__Reserve rs;
      Pintuan__V1__Join jn;
      Pintuan__V1__Confirm cf;
      Pintuan__V1__GetGroup gg;
      switch (x % 4) {
      case 0: pintuan_req_reserve(&q, &rs, "fz", user, (int32_t)(x % 3), rid); break;
      case 1: /* modes 0 and 4 are invalid: the daemon must say so */
        pintuan_req_join(&q, &jn, "fg", user, (int)(x % 5), x % 8 + (1ull << 32), true, rid);
        break;
      case 2:
        pintuan_req_confirm(&q, &cf, x % 2 ? "fz" : "fg", (x % 64) + (1ull << 32), user, rid);
        break;
      default: pintuan_req_get_group(&q, &gg, "fg", x % 8 + (1ull << 32));
      }
      q.has_id = 1, q.id = (uint64_t)round * BURST + (uint64_t)k + 1;
      size_t n = pintuan__v1__request__pack(&q, body);
      switch ((x >> 8) % 4) { /* mutate */
      case 0: body[(x >> 16) % n] ^= (uint8_t)(1u << ((x >> 24) % 8)); break;
      case 1: n = (x >> 16) % (n + 1); break;
      case 2: body[(x >> 16) % n] = (uint8_t)(x >> 32); body[(x >> 40) % n] = (uint8_t)(x >> 48); break;
      default: break; /* some stay valid */
      }
      pt_be32_put(burst + off, (uint32_t)n);
      memcpy(burst + off + 4, body, n);
      off += 4 + n;
    }
    assert_int_equal(raw_send(fd, burst, off), 0);
    for (int k = 0; k < BURST; k++) {
      int eof;
      pintuan_response *r = raw_recv(fd, PT_WAIT_MS, &eof);
      if (!r) fail_msg("round %d frame %d: no reply (eof %d)", round, k, eof);
      assert_true(r->status >= PINTUAN__V1__STATUS__OK && r->status <= PINTUAN__V1__STATUS__RESOURCE_EXHAUSTED);
      assert_int_not_equal(r->status, PINTUAN__V1__STATUS__INTERNAL);
      pintuan_response_free(r);
    }
  }
  close(fd);
  assert_ping();
  pintuan_response *r;
  const char *ids[] = {"fz", "fg"};
  for (int i = 0; i < 2; i++) {
    Pintuan__V1__Campaign *cp = get_campaign(c, ids[i], &r);
    assert_int_equal(cp->available + cp->held + cp->sold, cp->stock);
    assert_true(cp->available >= 0 && cp->held >= 0);
    pintuan_response_free(r);
  }
  pintuan_close(c);
}

static void test_max_clients(void **state) {
  (void)state;
  assert_int_equal(daemon_stop(&D), 0);
  const char *args[] = {"--max-clients", "2", NULL};
  assert_int_equal(daemon_start(&D, args), 0);
  pintuan_client *a = connect_or_die(&D), *b = connect_or_die(&D);
  pintuan_response *r;
  assert_int_equal(pintuan_ping(a, &r), 0);
  pintuan_response_free(r);
  assert_int_equal(pintuan_ping(b, &r), 0);
  pintuan_response_free(r);
  int fd = raw_connect(&D), eof;
  r = raw_recv(fd, PT_WAIT_MS, &eof);
  assert_non_null(r);
  assert_int_equal(r->status, PINTUAN__V1__STATUS__OVERLOADED);
  pintuan_response_free(r);
  assert_null(raw_recv(fd, PT_WAIT_MS, &eof));
  assert_int_equal(eof, 1);
  close(fd);
  assert_int_equal(pintuan_ping(a, &r), 0); /* existing clients unaffected */
  assert_int_equal(r->status, OK);
  pintuan_response_free(r);
  pintuan_close(a);
  pintuan_close(b);
}

/* A Hello the daemon must refuse: answered only once its clock passed the
 * pause, UNAUTHENTICATED saying nothing of what was wrong, then closed. */
static void hello_refused(const char *key, const char *secret) {
  int fd = raw_connect(&D);
  pintuan_request q;
  Pintuan__V1__Hello h;
  pintuan_req_hello(&q, &h, key, secret);
  q.has_id = 1, q.id = 1;
  assert_int_equal(raw_send_request(fd, &q), 0);
  struct pollfd p = {.fd = fd, .events = POLLIN};
  assert_int_equal(poll(&p, 1, 300), 0); /* not answered while the clock stands */
  set_time(&D, D.now + 1000);
  int eof = 0;
  pintuan_response *r = raw_recv(fd, PT_WAIT_MS, &eof);
  assert_non_null(r);
  assert_int_equal(r->status, PINTUAN__V1__STATUS__UNAUTHENTICATED);
  assert_string_equal(r->detail, "unknown key or wrong secret");
  pintuan_response_free(r);
  assert_null(raw_recv(fd, PT_WAIT_MS, &eof));
  assert_int_equal(eof, 1);
  close(fd);
}

static int status_of(pintuan_client *c, pintuan_request *q) {
  pintuan_response *r;
  assert_int_equal(pintuan_call(c, q, &r), 0);
  int st = r->status;
  pintuan_response_free(r);
  return st;
}

static int reserve_status(pintuan_client *c, const char *rid) {
  pintuan_request q;
  Pintuan__V1__Reserve m;
  pintuan_req_reserve(&q, &m, "k", "u1", 1, rid);
  return status_of(c, &q);
}

/* Keys and roles (the security review's first finding: any connection
 * created campaigns, and confirm or cancel checked nobody). With a keys
 * file a connection says Hello with a key before anything but Ping; the
 * key's role opens what it may do; a wrong key is answered late and the
 * connection closed; a reload drops the connections of a revoked key. */
static void test_keys_and_roles(void **state) {
  (void)state;
  assert_int_equal(daemon_stop(&D), 0);
  char dir[] = "/tmp/pt-keys-XXXXXX", keys[64], ops[64], shop[64], dash[64];
  assert_non_null(mkdtemp(dir));
  assert_int_equal(make_key(dir, "ops", "admin", ops), 0);
  assert_int_equal(make_key(dir, "shop", "storefront", shop), 0);
  assert_int_equal(make_key(dir, "dash", "reader", dash), 0);
  snprintf(keys, sizeof keys, "%s/keys", dir);
  const char *args[] = {"--keys", keys, "--frame-timeout", "400", "--log-level", "info", NULL}; /* sweeps every 100 ms */
  assert_int_equal(daemon_start(&D, args), 0);

  /* no Hello: Ping, and nothing else */
  pintuan_client *anon = connect_or_die(&D);
  pintuan_response *r;
  assert_int_equal(pintuan_ping(anon, &r), 0);
  assert_int_equal(r->status, OK);
  pintuan_response_free(r);
  assert_int_equal(create_flash(anon, "k", 5, 0, 60000, 0), PINTUAN__V1__STATUS__UNAUTHENTICATED);
  assert_int_equal(pintuan_get_campaign(anon, "k", &r), 0);
  assert_int_equal(r->status, PINTUAN__V1__STATUS__UNAUTHENTICATED);
  assert_non_null(strstr(r->detail, "Hello"));
  pintuan_response_free(r);
  assert_int_equal(reserve_status(anon, "a-1"), PINTUAN__V1__STATUS__UNAUTHENTICATED); /* the fast path's */

  /* each role, what it may and may not */
  pintuan_client *admin = connect_as(&D, "ops", ops), *store = connect_as(&D, "shop", shop),
                 *reader = connect_as(&D, "dash", dash);
  assert_int_equal(create_flash(store, "k", 5, 0, 60000, 0), PINTUAN__V1__STATUS__PERMISSION_DENIED);
  assert_int_equal(create_flash(reader, "k", 5, 0, 60000, 0), PINTUAN__V1__STATUS__PERMISSION_DENIED);
  assert_int_equal(create_flash(admin, "k", 5, 0, 60000, 0), OK);
  assert_int_equal(reserve_status(reader, "r-1"), PINTUAN__V1__STATUS__PERMISSION_DENIED);
  assert_int_equal(reserve_status(store, "s-1"), OK);
  assert_int_equal(reserve_status(admin, "o-1"), OK); /* roles nest */
  Pintuan__V1__Campaign *cp = get_campaign(reader, "k", &r);
  assert_int_equal(cp->held, 2); /* the reader's was refused, and changed nothing */
  pintuan_response_free(r);
  assert_int_equal(pintuan_hello(reader, "dash", dash, &r), 0);
  assert_string_equal(r->hello->key_role, "reader");
  assert_false(r->hello->admin);
  pintuan_response_free(r);

  /* a wrong secret, an unknown key: the same answer, after a pause (the
   * daemon's clock), then the connection closes */
  hello_refused("ops", shop);
  hello_refused("nobody", ops);
  hello_refused("", "");
  char line[512];
  assert_int_equal(daemon_log_wait(&D, "auth_failed", PT_WAIT_MS, line, sizeof line), 0);
  assert_non_null(strstr(line, "wrong secret for key ops"));
  assert_null(strstr(line, shop)); /* no secret in the log */

  /* the shop's key revoked: a reload drops its connection; the others stay */
  char cmd[512];
  snprintf(cmd, sizeof cmd, "grep -v '^shop ' '%s' > '%s.new' && mv '%s.new' '%s'", keys, keys, keys, keys);
  assert_int_equal(system(cmd), 0);
  kill(D.pid, SIGHUP);
  assert_int_equal(daemon_log_wait(&D, "keys reloaded", PT_WAIT_MS, line, sizeof line), 0);
  assert_non_null(strstr(line, "2 keys, 1 connections dropped"));
  pintuan_set_failover(store, 0, 0);
  assert_int_equal(pintuan_ping(store, &r), -1); /* closed */
  assert_int_equal(reserve_status(admin, "o-2"), OK);
  assert_int_equal(pintuan_ping(reader, &r), 0);
  pintuan_response_free(r);
  hello_refused("shop", shop);
  char *m = admin_get(&D, "/metrics");
  assert_non_null(m);
  assert_int_equal(metric_value(m, "pintuan_auth_refused_total{reason=\"bad_key\"}"), 4);
  assert_int_equal(metric_value(m, "pintuan_auth_refused_total{reason=\"no_hello\"}"), 3);
  assert_int_equal(metric_value(m, "pintuan_auth_refused_total{reason=\"role\"}"), 3);
  assert_int_equal(metric_value(m, "pintuan_keys_revoked_connections_total"), 1);
  free(m);

  pintuan_close(anon), pintuan_close(admin), pintuan_close(store), pintuan_close(reader);
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  assert_int_equal(system(cmd), 0);
}

/* Cuts, drops and refusals are logged, one line each, with the client, its
 * address and the reason. */
static void test_client_events_logged(void **state) {
  (void)state;
  assert_int_equal(daemon_stop(&D), 0);
  const char *args[] = {"--log-level", "info", "--max-clients", "1", NULL};
  assert_int_equal(daemon_start(&D, args), 0);
  int fd = raw_connect(&D), eof; /* the one client: answered, so surely accepted */
  Pintuan__V1__Request ping = PINTUAN__V1__REQUEST__INIT;
  Pintuan__V1__Ping pm = PINTUAN__V1__PING__INIT;
  ping.has_id = 1, ping.id = 1, ping.op_case = PINTUAN__V1__REQUEST__OP_PING, ping.ping = &pm;
  assert_int_equal(raw_send_request(fd, &ping), 0);
  pintuan_response *r = raw_recv(fd, PT_WAIT_MS, &eof);
  assert_non_null(r);
  pintuan_response_free(r);
  char line[512];
  int second = raw_connect(&D); /* one too many */
  r = raw_recv(second, PT_WAIT_MS, &eof);
  assert_non_null(r);
  assert_int_equal(r->status, PINTUAN__V1__STATUS__OVERLOADED);
  pintuan_response_free(r);
  assert_int_equal(daemon_log_wait(&D, "client_refused client=", PT_WAIT_MS, line, sizeof line), 0);
  assert_non_null(strstr(line, " INFO "));
  assert_non_null(strstr(line, "peer=127.0.0.1:"));
  assert_non_null(strstr(line, "reason=\"max_clients 1 reached\""));
  uint8_t prefix[4] = {0x00, 0x10, 0x00, 0x01}; /* 1 MiB + 1 */
  assert_int_equal(raw_send(fd, prefix, 4), 0);
  r = raw_recv(fd, PT_WAIT_MS, &eof);
  assert_non_null(r);
  pintuan_response_free(r);
  assert_int_equal(daemon_log_wait(&D, "client_cut client=", PT_WAIT_MS, line, sizeof line), 0);
  assert_non_null(strstr(line, "reason=\"frame of 1048577 bytes exceeds the limit of 65536\""));
  close(second);
  close(fd);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_pipelining, start_plain, stop_clean),
      cmocka_unit_test_setup_teardown(test_race_for_last_units, start_plain, stop_clean),
      cmocka_unit_test_setup_teardown(test_retry_same_request_id, start_plain, stop_clean),
      cmocka_unit_test_setup_teardown(test_holds_belong_to_users, start_plain, stop_clean),
      cmocka_unit_test_setup_teardown(test_list_campaigns_pages, start_plain, stop_clean),
      cmocka_unit_test_setup_teardown(test_hold_expires, start_plain, stop_clean),
      cmocka_unit_test_setup_teardown(test_frame_over_limit, start_plain, stop_clean),
      cmocka_unit_test_setup_teardown(test_garbage_and_missing_fields, start_plain, stop_clean),
      cmocka_unit_test_setup_teardown(test_truncated_frame, start_plain, stop_clean),
      cmocka_unit_test_setup_teardown(test_slow_reader_is_bounded, start_plain, stop_clean),
      cmocka_unit_test_setup_teardown(test_paused_reader_outlives_frame_timeout, start_plain,
                                      stop_clean),
      cmocka_unit_test_setup_teardown(test_mutated_frames, start_plain, stop_clean),
      cmocka_unit_test_setup_teardown(test_stuck_frame_times_out, start_plain, stop_clean),
      cmocka_unit_test_setup_teardown(test_max_clients, start_plain, stop_clean),
      cmocka_unit_test_setup_teardown(test_keys_and_roles, start_plain, stop_clean),
      cmocka_unit_test_setup_teardown(test_client_events_logged, start_plain, stop_clean),
      cmocka_unit_test_setup_teardown(test_rejections_are_not_remembered, start_plain, stop_clean),
      cmocka_unit_test_setup_teardown(test_max_remembered_evicts_oldest, start_plain, stop_clean),
  };
  return cmocka_run_group_tests_name("net", tests, NULL, NULL);
}
