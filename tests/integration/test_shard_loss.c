/* A Redis that lost data is refused, not served: real pintuand processes and
 * a real redis-server that is restarted empty, or from an older copy of
 * itself (an RDB saved earlier), under running daemons and under restarted
 * ones (their state file). Refused: no lease, every request UNAVAILABLE
 * with the reason, /ready 503, an ERROR line, pintuan_mirror_refused. Then
 * the operator's one command (pintuand --accept-loss): the daemons serve
 * what Redis holds, and every id handed out in the lost part is NOT_FOUND,
 * never another customer's hold. And a shard is created by an explicit step
 * (--init-shard) only. */
#include <inttypes.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"
#include "redis_proc.h"
#include "shard.h"

#define OK PINTUAN__V1__STATUS__OK
#define UNAVAILABLE PINTUAN__V1__STATUS__UNAVAILABLE

static pt_redis_proc R;
static char state_dir[64];

static int redis_up(void **state) {
  (void)state;
  snprintf(state_dir, sizeof state_dir, "/tmp/pt-state-XXXXXX");
  if (!mkdtemp(state_dir)) return -1;
  return redis_start(&R, NULL); /* no AOF: a restart keeps only what a SAVE wrote */
}

static int redis_down(void **state) {
  (void)state;
  shard_reap();
  redis_cleanup(&R);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", state_dir);
  return system(cmd) == 0 ? 0 : -1;
}

/* Each daemon of shard "t" keeps a state file of its own. */
static char state_a[128], state_b[128];
static const char *const *state_args(const char *node) {
  static const char *args[2][3];
  int i = node[0] == 'b';
  char *path = i ? state_b : state_a;
  snprintf(path, 128, "%s/%s.state", state_dir, node);
  args[i][0] = "--state-file", args[i][1] = path, args[i][2] = NULL;
  return args[i];
}

static void launch(pt_daemon *d, const char *node) {
  assert_int_equal(shard_launch(d, R.addr, node, "3000", state_args(node)), 0);
}

static pintuan_client *only(const pt_daemon *d) {
  pintuan_client *c = connect_or_die(d);
  pintuan_set_failover(c, 0, 0);
  return c;
}

static uint64_t reserve_ok(pintuan_client *c, const char *user, const char *rid) {
  pintuan_response *r;
  assert_int_equal(pintuan_reserve(c, "s", user, 1, rid, &r), 0);
  if (r->status != OK) fail_msg("reserve %s: %s %s", rid, pintuan_status_str(r->status), r->detail);
  uint64_t id = r->reservation->reservation_id;
  pintuan_response_free(r);
  return id;
}

/* A primary and a standby of a new shard, and a sale "s" on the primary:
 * the client c talking to the primary only. */
static pintuan_client *pair_with_sale(pt_daemon *a, pt_daemon *b) {
  assert_int_equal(shard_init(R.addr, "t"), 0);
  assert_int_equal(shard_pair(a, b, R.addr, "3000", state_args("a"), state_args("b")), 0);
  pintuan_client *c = only(a);
  assert_int_equal(create_flash(c, "s", 1000, 0, 600000, 0), OK);
  return c;
}

/* n reservations of users PREFIX0.., request ids the same: their ids in ids. */
static void reserve_n(pintuan_client *c, const char *prefix, int n, uint64_t *ids) {
  for (int i = 0; i < n; i++) {
    char rid[16];
    snprintf(rid, sizeof rid, "%s%d", prefix, i);
    ids[i] = reserve_ok(c, rid, rid);
  }
}

/* d refuses its shard for reason: an ERROR line saying why (with says, if
 * given), every request UNAVAILABLE saying so, /ready 503 with it, the
 * metric set. */
static void refusing(pt_daemon *d, const char *reason, const char *says) {
  char line[1024];
  assert_int_equal(daemon_log_wait(d, "ERROR mirror shard t refused", PT_WAIT_MS, line, sizeof line), 0);
  if (says && !strstr(line, says)) fail_msg("the refusal does not say '%s': %s", says, line);
  assert_int_equal(daemon_log_wait(d, "mirror role=refused", PT_WAIT_MS, NULL, 0), 0);
  pintuan_client *c = only(d);
  pintuan_response *r;
  assert_int_equal(pintuan_reserve(c, "s", "late", 1, "late", &r), 0);
  assert_int_equal(r->status, UNAVAILABLE);
  if (!strstr(r->detail, "refused")) fail_msg("detail '%s' does not say the shard is refused", r->detail);
  pintuan_response_free(r);
  assert_int_equal(pintuan_get_campaign(c, "s", &r), 0);
  assert_int_equal(r->status, UNAVAILABLE);
  pintuan_response_free(r);
  pintuan_close(c);
  char *ready = admin_get(d, "/ready");
  assert_non_null(ready);
  if (!strstr(ready, " 503 ") || !strstr(ready, "refused")) fail_msg("/ready says:\n%s", ready);
  free(ready);
  char series[64];
  snprintf(series, sizeof series, "pintuan_mirror_refused{reason=\"%s\"}", reason);
  assert_int_equal(metric_await(d, series, 1, NULL), 0);
}

static int accept_loss(void) {
  const char *args[] = {"--accept-loss", NULL};
  char out[1024];
  int rc = shard_run(R.addr, "t", args, out, sizeof out);
  if (rc == 0 && !strstr(out, "loss is accepted")) fail_msg("--accept-loss printed: %s", out);
  return rc;
}

/* A daemon never creates a shard by itself: against an empty Redis it waits,
 * refusing, until --init-shard (which says so again when run twice). */
static void test_created_explicitly(void **state) {
  (void)state;
  pt_daemon a;
  launch(&a, "a");
  refusing(&a, "NOSHARD", "create it once with pintuand --init-shard");
  const char *init[] = {"--init-shard", NULL};
  char out[512];
  assert_int_equal(shard_run(R.addr, "t", init, out, sizeof out), 0);
  assert_non_null(strstr(out, "created"));
  assert_int_equal(shard_run(R.addr, "t", init, out, sizeof out), 0);
  assert_non_null(strstr(out, "already exists"));
  assert_int_equal(shard_await(&a, true, NULL, 0), 0);
  assert_int_equal(daemon_stop(&a), 0);
  const char *none[] = {"--init-shard", "--redis", "", "--mirror", "off", NULL};
  assert_int_equal(shard_run(R.addr, "t", none, NULL, 0), 78); /* EX_CONFIG: no Redis to do it in */
}

/* After the loss was accepted: none of the ids handed out before names a
 * hold, while the campaign is made again and reserved from (the same users
 * and request ids: decided afresh, the loss being accepted); none of the
 * new ids is one of before. */
static void lost_ids_name_nothing(pintuan_client *c, const uint64_t *lost, int n, bool recreate) {
  pintuan_response *r;
  if (recreate) assert_int_equal(create_flash(c, "s", 1000, 0, 600000, 0), OK);
  for (int i = 0; i < n; i++) {
    char rid[16];
    snprintf(rid, sizeof rid, "o%d", i);
    uint64_t id = reserve_ok(c, rid, rid); /* the same users and request ids as the lost ones */
    for (int j = 0; j < n; j++)
      if (id == lost[j]) fail_msg("a new reservation got the id %" PRIu64 " of a lost one", id);
  }
  for (int j = 0; j < n; j++) {
    char user[16]; /* its user: reserve_n's "o" */
    snprintf(user, sizeof user, "o%d", j);
    assert_int_equal(pintuan_get_reservation(c, "s", lost[j], user, &r), 0);
    if (r->status != PINTUAN__V1__STATUS__NOT_FOUND)
      fail_msg("lost reservation %" PRIu64 " answered %s", lost[j], pintuan_status_str(r->status));
    pintuan_response_free(r);
    assert_int_equal(pintuan_confirm(c, "s", lost[j], user, "pay-lost", &r), 0);
    assert_int_equal(r->status, PINTUAN__V1__STATUS__NOT_FOUND); /* never someone else's hold */
    pintuan_response_free(r);
  }
}

/* Redis comes back empty under a running pair: both refuse (before: the
 * primary took the lease again at epoch 1, served an empty shard, gave out
 * the same reservation ids again, an old order confirmed another user's
 * hold). Accepted, the shard serves again from nothing. */
static void test_redis_back_empty(void **state) {
  (void)state;
  pt_daemon a, b;
  pintuan_client *c = pair_with_sale(&a, &b);
  enum { N = 50 };
  uint64_t before[N];
  reserve_n(c, "o", N, before);
  pintuan_close(c);
  redis_kill(&R); /* no AOF, no RDB: it comes back empty */
  assert_int_equal(redis_restart(&R), 0);
  refusing(&a, "GONE", "Redis lost its data");
  refusing(&b, "GONE", "Redis lost its data");
  assert_int_equal(daemon_stop(&b), 0); /* back later, from its state file */
  assert_int_equal(accept_loss(), 0);
  assert_int_equal(daemon_log_wait(&a, "adopting incarnation", PT_WAIT_MS, NULL, 0), 0);
  assert_int_equal(daemon_log_wait(&a, "mirror role=primary", PT_WAIT_MS, NULL, 0), 0);
  c = only(&a);
  lost_ids_name_nothing(c, before, N, true);
  pintuan_close(c);
  launch(&b, "b"); /* its state file names the old incarnation: it adopts the newer one */
  assert_int_equal(daemon_log_wait(&b, "adopting incarnation", PT_WAIT_MS, NULL, 0), 0);
  assert_int_equal(shard_await(&b, false, NULL, 0), 0);
  assert_int_equal(daemon_stop(&a), 0);
  assert_int_equal(daemon_stop(&b), 0);
}

/* Redis comes back from an older copy of itself (an RDB saved earlier):
 * a running primary notices the journal went back, so does its standby
 * (it learned how far the journal went), and so does a daemon restarted
 * with its state file (before: "recovered records=0..7272" without a word,
 * 2,167 acknowledged reservations gone). Accepted, the shard serves what
 * the copy holds: reservations from before the copy are there, the ones
 * after it are NOT_FOUND, and no new id is one of those. */
static void test_redis_back_older(void **state) {
  (void)state;
  pt_daemon a, b;
  pintuan_client *c = pair_with_sale(&a, &b);
  enum { KEPT = 20, N = 50 };
  uint64_t kept[KEPT], lost[N];
  reserve_n(c, "k", KEPT, kept);
  char reply[64];
  assert_int_equal(redis_cmd(&R, reply, sizeof reply, "SAVE"), 0); /* the older copy */
  reserve_n(c, "o", N, lost);
  pintuan_close(c);
  char seq[32], series[64];
  assert_int_equal(redis_cmd(&R, seq, sizeof seq, "GET pintuan:{t}:seq"), 0);
  /* the standby learns how far the journal went at its next lease attempt */
  snprintf(series, sizeof series, "pintuan_mirror_known_record");
  assert_int_equal(metric_await(&b, series, strtod(seq, NULL), NULL), 0);
  redis_kill(&R);
  assert_int_equal(redis_restart(&R), 0); /* loads the RDB: the journal as it was at the SAVE */
  refusing(&a, "SEQ", "the journal went back from record");
  refusing(&b, "SEQ", "the journal went back from record");
  /* a restart does not forget: the state file says what was seen */
  assert_int_equal(shard_kill9(&a), 0);
  launch(&a, "a");
  refusing(&a, "SEQ", "the journal went back from record");
  assert_int_equal(daemon_stop(&b), 0);
  assert_int_equal(accept_loss(), 0);
  assert_int_equal(daemon_log_wait(&a, "mirror role=primary", PT_WAIT_MS, NULL, 0), 0);
  c = only(&a);
  pintuan_response *r;
  for (int i = 0; i < KEPT; i++) { /* what the copy holds is served */
    char user[16];
    snprintf(user, sizeof user, "k%d", i);
    assert_int_equal(pintuan_get_reservation(c, "s", kept[i], user, &r), 0);
    assert_int_equal(r->status, OK);
    pintuan_response_free(r);
  }
  lost_ids_name_nothing(c, lost, N, false);
  pintuan_close(c);
  assert_int_equal(daemon_stop(&a), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_created_explicitly, redis_up, redis_down),
      cmocka_unit_test_setup_teardown(test_redis_back_empty, redis_up, redis_down),
      cmocka_unit_test_setup_teardown(test_redis_back_older, redis_up, redis_down),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
