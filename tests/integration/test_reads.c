/* Reads answered only by the primary that holds its lease, from state Redis
 * acknowledged: real pintuand processes and a real redis-server, each
 * situation in which an independent run saw a read answered from memory
 * that was not the serving primary's committed state.
 *
 * - a standby whose Redis is gone (role connecting);
 * - a daemon that has not rebuilt yet (Redis paused at its start);
 * - a primary that lost Redis with a record unacknowledged (a dirty read:
 *   the unit Redis never got);
 * - an old primary resumed (SIGCONT) past its lease, with reads already
 *   queued on its socket;
 * - a primary partitioned from Redis (a proxy that stops forwarding): it
 *   stops answering before the next primary can serve, and logs the
 *   appends Redis refused once the partition heals.
 * And the explicit stale read: a standby answers GetCampaign and
 * GetReservation with stale_ok from the journal it followed, saying how old
 * (record, epoch, age), also with its Redis gone; its takeover starts from
 * that state. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"
#include "proxy.h"
#include "redis_proc.h"
#include "shard.h"

#define OK PINTUAN__V1__STATUS__OK
#define NOT_LEADER PINTUAN__V1__STATUS__NOT_LEADER
#define UNAVAILABLE PINTUAN__V1__STATUS__UNAVAILABLE

static pt_redis_proc R;

static int redis_up(void **state) {
  (void)state;
  const char *aof[] = {"--appendonly", "yes", "--appendfsync", "always", NULL};
  return redis_start(&R, aof) || shard_init(R.addr, "t");
}

static int redis_down(void **state) {
  (void)state;
  shard_reap();
  if (R.pid) kill(R.pid, SIGCONT); /* a test that failed while it was paused */
  redis_cleanup(&R);
  return 0;
}

static void start(pt_daemon *d, const char *redis, const char *node, const char *lease, bool primary) {
  assert_int_equal(shard_launch(d, redis, node, lease, NULL), 0);
  if (shard_await(d, primary, NULL, 0)) fail_msg("daemon %s never became %s", node, primary ? "primary" : "standby");
}

/* A client that talks to d only: no failover to hide what d answers. */
static pintuan_client *only(const pt_daemon *d) {
  pintuan_client *c = connect_or_die(d);
  pintuan_set_failover(c, 0, 0);
  return c;
}

/* A reservation made and acknowledged: its id. */
static uint64_t reserve_ok(pintuan_client *c, const char *camp, const char *user, const char *rid) {
  pintuan_response *r;
  assert_int_equal(pintuan_reserve(c, camp, user, 1, rid, &r), 0);
  if (r->status != OK) fail_msg("reserve %s: %s %s", rid, pintuan_status_str(r->status), r->detail);
  uint64_t id = r->reservation->reservation_id;
  pintuan_response_free(r);
  return id;
}

/* A sale "s" of 100 on the primary c talks to, and ann's reservation in
 * it: its id. */
static uint64_t sale(pintuan_client *c) {
  assert_int_equal(create_flash(c, "s", 100, 0, 600000, 0), OK);
  return reserve_ok(c, "s", "ann", "r1");
}

/* The reply to a read that d must refuse: NOT_LEADER naming leader (when
 * leader is given) or UNAVAILABLE; never an answer from its memory. */
static void refused(const pintuan_response *r, const char *what, const char *leader) {
  if (r->status == NOT_LEADER) {
    if (leader && (!r->leader || strcmp(r->leader, leader)))
      fail_msg("%s: NOT_LEADER naming '%s', not %s", what, r->leader ? r->leader : "", leader);
    return;
  }
  if (r->status != UNAVAILABLE)
    fail_msg("%s answered %s (%s): a read from memory that is not the primary's", what,
             pintuan_status_str(r->status), r->detail ? r->detail : "");
}

/* res: a reservation of user's */
static void reads_refused(pintuan_client *c, uint64_t res, const char *user, const char *leader) {
  pintuan_response *r;
  assert_int_equal(pintuan_get_campaign(c, "s", &r), 0);
  refused(r, "GetCampaign", leader);
  pintuan_response_free(r);
  assert_int_equal(pintuan_get_reservation(c, "s", res, user, &r), 0);
  refused(r, "GetReservation", leader);
  pintuan_response_free(r);
  assert_int_equal(pintuan_list_campaigns(c, 0, 0, &r), 0);
  refused(r, "ListCampaigns", leader);
  pintuan_response_free(r);
  assert_int_equal(pintuan_get_holdings(c, "s", "ann", &r), 0);
  refused(r, "GetHoldings", leader);
  pintuan_response_free(r);
}

/* A standby whose Redis went away answers no read: before, it answered
 * NOT_FOUND from its empty engine. With the primary known, NOT_LEADER. */
static void test_standby_without_redis(void **state) {
  (void)state;
  pt_daemon a, b;
  assert_int_equal(shard_pair(&a, &b, R.addr, "5000", NULL, NULL), 0);
  pintuan_client *ca = only(&a), *cb = only(&b);
  uint64_t res = sale(ca);
  reads_refused(cb, res, "ann", a.addr); /* a standby: NOT_LEADER, a's address */
  kill(R.pid, SIGKILL);
  waitpid(R.pid, NULL, 0);
  R.pid = 0;
  assert_int_equal(daemon_log_wait(&b, "mirror role=connecting", PT_WAIT_MS, NULL, 0), 0);
  reads_refused(cb, res, "ann", a.addr);
  /* the primary lost Redis too: nothing is answered from its memory */
  assert_int_equal(daemon_log_wait(&a, "mirror role=unavailable", PT_WAIT_MS, NULL, 0), 0);
  reads_refused(ca, res, "ann", NULL);
  pintuan_close(cb);
  assert_int_equal(daemon_stop(&b), 0); /* a, alone, is the next primary */
  assert_int_equal(redis_restart(&R), 0);
  assert_int_equal(daemon_log_wait(&a, "mirror role=primary", PT_WAIT_MS, NULL, 0), 0);
  pintuan_response *r;
  assert_int_equal(pintuan_get_reservation(ca, "s", res, "ann", &r), 0);
  assert_int_equal(r->status, OK); /* acknowledged, kept by Redis' AOF, served again */
  pintuan_response_free(r);
  pintuan_close(ca);
  assert_int_equal(daemon_stop(&a), 0);
}

/* A daemon that has not rebuilt from Redis answers no read (before: its
 * empty engine said NOT_FOUND for an order acknowledged long before). */
static void test_starting_daemon(void **state) {
  (void)state;
  pt_daemon a;
  start(&a, R.addr, "a", "5000", true);
  pintuan_client *c = only(&a);
  uint64_t res = sale(c);
  pintuan_close(c);
  assert_int_equal(daemon_stop(&a), 0);
  kill(R.pid, SIGSTOP); /* the next start cannot rebuild until Redis runs again */
  assert_int_equal(shard_launch(&a, R.addr, "a", "5000", NULL), 0);
  c = only(&a);
  reads_refused(c, res, "ann", NULL);
  kill(R.pid, SIGCONT);
  assert_int_equal(shard_await(&a, true, NULL, 0), 0);
  pintuan_response *r;
  assert_int_equal(pintuan_get_reservation(c, "s", res, "ann", &r), 0);
  assert_int_equal(r->status, OK);
  pintuan_response_free(r);
  pintuan_close(c);
  assert_int_equal(daemon_stop(&a), 0);
}

/* A dirty read: the primary decided a reserve that Redis never got (Redis
 * paused, then killed); the reads of that moment wait with it and are
 * dropped with it, and after the doubt the unit is never shown. */
static void test_no_dirty_read(void **state) {
  (void)state;
  pt_daemon a;
  start(&a, R.addr, "a", "5000", true);
  pintuan_client *c = only(&a);
  uint64_t res = sale(c);
  kill(R.pid, SIGSTOP);
  /* a reserve the daemon decides and Redis never gets, then a read on the
   * same connection: decided after it, on a state that holds bob's unit */
  pintuan_request q;
  Pintuan__V1__Reserve m;
  pintuan_req_reserve(&q, &m, "s", "bob", 1, "never");
  assert_int_equal(pintuan_send(c, &q), 0);
  Pintuan__V1__GetCampaign g;
  pintuan_req_get_campaign(&q, &g, "s");
  assert_int_equal(pintuan_send(c, &q), 0);
  assert_int_equal(pintuan_flush(c), 0);
  kill(R.pid, SIGKILL); /* the record is lost with Redis */
  waitpid(R.pid, NULL, 0);
  R.pid = 0;
  assert_int_equal(daemon_log_wait(&a, "mirror in doubt", PT_WAIT_MS, NULL, 0), 0);
  /* both wait for the record, so both are dropped with the connection;
   * one decided after the doubt is refused: nothing shows bob's unit */
  pintuan_response *r = NULL;
  while (pintuan_recv(c, &r) == 0) {
    if (r->status == OK) fail_msg("a reply left for a decision Redis never acknowledged");
    pintuan_response_free(r);
  }
  pintuan_client *late = only(&a);
  reads_refused(late, res, "ann", NULL); /* before: held 2, a unit Redis never had */
  assert_int_equal(redis_restart(&R), 0);
  assert_int_equal(daemon_log_wait(&a, "mirror role=primary", PT_WAIT_MS, NULL, 0), 0);
  Pintuan__V1__Campaign *cp = get_campaign(late, "s", &r);
  assert_int_equal(cp->held, 1); /* what Redis acknowledged, exactly */
  pintuan_response_free(r);
  pintuan_close(c), pintuan_close(late);
  assert_int_equal(daemon_stop(&a), 0);
}

/* An old primary resumed past its lease: reads queued on its socket while
 * it was stopped are refused, not answered from its frozen memory (before:
 * 1-2.5 ms of NOT_FOUND for reservations the new primary had made). */
static void test_resumed_primary(void **state) {
  (void)state;
  pt_daemon a, b;
  assert_int_equal(shard_pair(&a, &b, R.addr, "1500", NULL, NULL), 0);
  pintuan_client *ca = only(&a);
  sale(ca);
  int fd = raw_connect(&a);
  assert_true(fd >= 0);
  kill(a.pid, SIGSTOP);
  assert_int_equal(daemon_log_wait(&b, "mirror role=primary", PT_WAIT_MS, NULL, 0), 0);
  pintuan_client *cb = only(&b);
  uint64_t res = reserve_ok(cb, "s", "bob", "r2"); /* acknowledged by the new primary */
  Pintuan__V1__Request q = PINTUAN__V1__REQUEST__INIT;
  Pintuan__V1__GetReservation gr = PINTUAN__V1__GET_RESERVATION__INIT;
  Pintuan__V1__GetCampaign gc = PINTUAN__V1__GET_CAMPAIGN__INIT;
  gr.has_campaign_id = gc.has_campaign_id = 1;
  gr.campaign_id = gc.campaign_id = (ProtobufCBinaryData){1, (uint8_t *)"s"};
  gr.has_reservation_id = 1, gr.reservation_id = res;
  for (int i = 0; i < 20; i++) { /* queued in a's socket while it sleeps */
    q.has_id = 1, q.id = (uint64_t)i + 1;
    if (i % 2) q.op_case = PINTUAN__V1__REQUEST__OP_GET_CAMPAIGN, q.get_campaign = &gc;
    else q.op_case = PINTUAN__V1__REQUEST__OP_GET_RESERVATION, q.get_reservation = &gr;
    assert_int_equal(raw_send_request(fd, &q), 0);
  }
  kill(a.pid, SIGCONT);
  for (int i = 0; i < 20; i++) {
    int eof = 0;
    pintuan_response *r = raw_recv(fd, PT_WAIT_MS, &eof);
    if (!r) fail_msg("reply %d never came (eof %d)", i + 1, eof);
    assert_int_equal(r->id, i + 1);
    refused(r, i % 2 ? "GetCampaign" : "GetReservation", NULL);
    pintuan_response_free(r);
  }
  close(fd);
  assert_int_equal(daemon_log_wait(&a, "mirror role=standby", PT_WAIT_MS, NULL, 0), 0);
  reads_refused(ca, res, "bob", b.addr);
  pintuan_close(ca), pintuan_close(cb);
  assert_int_equal(daemon_stop(&a), 0);
  assert_int_equal(daemon_stop(&b), 0);
}

/* A primary cut off from Redis (it runs, clients reach it) stops answering
 * before the next primary may serve: by its own clock, its lease less a
 * margin, not at its next check. Before: it answered from memory for 1.3-3 s
 * after the new primary's first OK, and NOT_FOUND for that OK's order. */
static void test_partitioned_primary(void **state) {
  (void)state;
  pt_proxy *px = proxy_start(R.port);
  assert_non_null(px);
  char via[32];
  snprintf(via, sizeof via, "127.0.0.1:%d", proxy_port(px));
  pt_daemon a, b;
  start(&a, via, "a", "1500", true);
  start(&b, R.addr, "b", "1500", false);
  pintuan_client *ca = only(&a), *writer = only(&a);
  sale(ca);
  proxy_cut(px, true);
  /* a write a decides and cannot get acknowledged: its append waits in
   * the partition, fenced once it arrives */
  pintuan_request q;
  Pintuan__V1__Reserve m;
  pintuan_req_reserve(&q, &m, "s", "cut", 1, "during-cut");
  assert_int_equal(pintuan_send(writer, &q), 0);
  assert_int_equal(pintuan_flush(writer), 0);
  assert_int_equal(daemon_log_wait(&b, "mirror role=primary", PT_WAIT_MS, NULL, 0), 0);
  pintuan_client *cb = only(&b);
  uint64_t res = reserve_ok(cb, "s", "bob", "r2");
  reads_refused(ca, res, "bob", NULL); /* a cannot know who serves: UNAVAILABLE, or NOT_LEADER */
  assert_int_equal(daemon_log_wait(&a, "lease expired by this daemon's clock", PT_WAIT_MS, NULL, 0), 0);
  proxy_cut(px, false);
  /* the held append reaches Redis, which refuses it; a says so (as its
   * doubt's reason, or after a doubt for its lease) */
  char line[512];
  assert_int_equal(daemon_log_wait(&a, "FENCED the lease is not held", PT_WAIT_MS, line, sizeof line), 0);
  assert_non_null(strstr(line, "append of record"));
  assert_int_equal(daemon_log_wait(&a, "mirror role=standby", PT_WAIT_MS, NULL, 0), 0);
  reads_refused(ca, res, "bob", b.addr);
  pintuan_response *r;
  assert_int_equal(pintuan_get_reservation(cb, "s", res, "bob", &r), 0);
  assert_int_equal(r->status, OK);
  pintuan_response_free(r);
  Pintuan__V1__Campaign *cp = get_campaign(cb, "s", &r);
  assert_int_equal(cp->held, 2); /* ann's and bob's: a's write during the cut had no effect */
  pintuan_response_free(r);
  pintuan_close(ca), pintuan_close(cb), pintuan_close(writer);
  assert_int_equal(daemon_stop(&a), 0);
  assert_int_equal(daemon_stop(&b), 0);
  proxy_stop(px);
}

static double metric(const pt_daemon *d, const char *series) {
  char *m = admin_get(d, "/metrics");
  double v = m ? metric_value(m, series) : -1;
  free(m);
  return v;
}

static void test_stale_reads_from_standby(void **state) {
  (void)state;
  pt_daemon a, b;
  assert_int_equal(shard_pair(&a, &b, R.addr, "1500", NULL, NULL), 0);
  pintuan_client *ca = only(&a), *cb = only(&b);
  assert_int_equal(create_flash(ca, "s", 100, 0, 600000, 0), OK);
  enum { N = 30 };
  uint64_t res[N];
  for (int i = 0; i < N; i++) {
    char rid[16], user[16];
    snprintf(rid, sizeof rid, "r%d", i), snprintf(user, sizeof user, "u%d", i);
    res[i] = reserve_ok(ca, "s", user, rid);
  }
  char seq[32];
  assert_int_equal(redis_cmd(&R, seq, sizeof seq, "GET pintuan:{t}:seq"), 0);
  /* the standby follows the journal at each lease tick: up to the last record */
  assert_int_equal(metric_await(&b, "pintuan_mirror_follow_record", strtod(seq, NULL), NULL), 0);
  pintuan_response *r;
  assert_int_equal(pintuan_get_campaign(cb, "s", &r), 0); /* an ordinary read: the primary's */
  assert_int_equal(r->status, NOT_LEADER);
  pintuan_response_free(r);
  assert_int_equal(pintuan_get_campaign_stale(cb, "s", &r), 0);
  assert_int_equal(r->status, OK);
  assert_int_equal(r->campaign->held, N);
  assert_non_null(r->staleness);
  assert_int_equal(r->staleness->record, strtoull(seq, NULL, 10));
  assert_int_equal(r->staleness->epoch, metric(&a, "pintuan_mirror_epoch"));
  assert_true(r->staleness->age_ms >= 0);
  pintuan_response_free(r);
  assert_int_equal(pintuan_get_reservation_stale(cb, "s", res[N - 1], "u29", &r), 0);
  assert_int_equal(r->status, OK);
  assert_memory_equal(r->reservation->user_id.data, "u29", 3);
  pintuan_response_free(r);
  assert_int_equal(pintuan_get_campaign_stale(ca, "s", &r), 0); /* the primary: fresh, no staleness */
  assert_int_equal(r->status, OK);
  assert_null(r->staleness);
  pintuan_response_free(r);
  /* Redis gone: the standby still answers stale reads, from the same
   * record, older by the time that passed */
  redis_kill(&R);
  assert_int_equal(daemon_log_wait(&b, "mirror role=connecting", PT_WAIT_MS, NULL, 0), 0);
  assert_int_equal(pintuan_get_campaign_stale(cb, "s", &r), 0);
  assert_int_equal(r->status, OK);
  assert_int_equal(r->campaign->held, N);
  assert_int_equal(r->staleness->record, strtoull(seq, NULL, 10));
  pintuan_response_free(r);
  /* the primary dies; Redis back, the standby's takeover reads only what
   * came after its followed state (nothing), and everything is there */
  pintuan_close(ca);
  assert_int_equal(shard_kill9(&a), 0);
  assert_int_equal(redis_restart(&R), 0);
  assert_int_equal(daemon_log_wait(&b, "recovery starts from the followed state", PT_WAIT_MS, NULL, 0), 0);
  assert_int_equal(daemon_log_wait(&b, "mirror role=primary", PT_WAIT_MS, NULL, 0), 0);
  for (int i = 0; i < N; i++) {
    char user[16];
    snprintf(user, sizeof user, "u%d", i);
    assert_int_equal(pintuan_get_reservation(cb, "s", res[i], user, &r), 0);
    assert_int_equal(r->status, OK);
    pintuan_response_free(r);
  }
  Pintuan__V1__Campaign *cp = get_campaign(cb, "s", &r);
  assert_int_equal(cp->held, N);
  pintuan_response_free(r);
  reserve_ok(cb, "s", "after", "after"); /* and it decides */
  pintuan_close(cb);
  assert_int_equal(daemon_stop(&b), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_standby_without_redis, redis_up, redis_down),
      cmocka_unit_test_setup_teardown(test_starting_daemon, redis_up, redis_down),
      cmocka_unit_test_setup_teardown(test_no_dirty_read, redis_up, redis_down),
      cmocka_unit_test_setup_teardown(test_resumed_primary, redis_up, redis_down),
      cmocka_unit_test_setup_teardown(test_partitioned_primary, redis_up, redis_down),
      cmocka_unit_test_setup_teardown(test_stale_reads_from_standby, redis_up, redis_down),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
