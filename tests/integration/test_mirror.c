/* The Redis mirror with real processes: redis-server started by the test on
 * a free loopback port, pintuand processes killed (-9), stopped (SIGSTOP)
 * and restarted, Redis stopped and started again.
 *
 * - restart: every campaign, reservation, waitlist place, group, seat,
 *   holding and remembered effect is equal, byte for byte in its reply,
 *   after kill -9 and after a clean stop (through snapshots too);
 * - kill -9 during a stampede from many clients: every acknowledged
 *   reservation is there, no oversell, limits held, every request id
 *   answered with its original answer;
 * - two daemons, kill -9 of the primary under load: the standby serves, and
 *   every request, retried by the client library, has exactly one effect;
 * - SIGSTOP the primary past its lease: the standby takes over; the old
 *   one, continued, writes nothing and answers NOT_LEADER;
 * - Redis stopped mid-traffic: mutations and reads UNAVAILABLE;
 *   Redis back: writes resume without a restart, nothing acknowledged lost;
 * - Redis stalled: the turns after the append in flight join one record,
 *   acknowledged (and there after a restart) once Redis is back;
 * - a turn too big for one record goes to Redis in parts, all there after a
 *   restart. */
#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>

#include "clock.h"
#include "harness.h"
#include "redis_proc.h"
#include "shard.h"

#define OK PINTUAN__V1__STATUS__OK

static pt_redis_proc R;

/* A lease long enough that a loaded machine (ASan, CPU hogs beside the
 * suite) never loses it by being slow; tests of a takeover shorten it. */
static const char *lease_ms;

static int redis_up(void **state) {
  (void)state;
  lease_ms = "5000";
  return redis_start(&R, NULL) || shard_init(R.addr, "t");
}
static int redis_down(void **state) {
  (void)state;
  shard_reap();
  redis_cleanup(&R);
  return 0;
}

static char last_recovery[256]; /* the log line of the last recovery start() saw */

/* A daemon of shard "t" against R, started and not waited for. */
static void launch(pt_daemon *d, const char *node, const char *const *more) {
  assert_int_equal(shard_launch(d, R.addr, node, lease_ms, more), 0);
}

/* launch, then wait until it says it is primary (or, with want_primary
 * false, a standby). */
static void start(pt_daemon *d, const char *node, bool want_primary, const char *const *more) {
  launch(d, node, more);
  if (shard_await(d, want_primary, last_recovery, sizeof last_recovery))
    fail_msg("daemon %s never became %s", node, want_primary ? "primary" : "standby");
}

/* A new file from the template path (its XXXXXX filled in), holding text. */
static void write_temp(char *path, const char *text) {
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  assert_true(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
  close(fd);
}

/* A new test-clock file (--test-clock) from the template path, at ms. */
static void write_clock(char *path, int64_t ms) {
  char text[32];
  snprintf(text, sizeof text, "%lld\n", (long long)ms);
  write_temp(path, text);
}

static void kill9(pt_daemon *d) { assert_int_equal(shard_kill9(d), 0); }

/* Sends n reserves of one unit to camp, pipelined, and flushes: request ids
 * PREFIX0..PREFIX(n-1), each by its own user. The caller reads the replies. */
static void send_reserves(pintuan_client *c, const char *camp, const char *prefix, int n) {
  for (int i = 0; i < n; i++) {
    char rid[72], user[80];
    snprintf(rid, sizeof rid, "%s%d", prefix, i), snprintf(user, sizeof user, "u-%s", rid);
    pintuan_request q;
    Pintuan__V1__Reserve m;
    pintuan_req_reserve(&q, &m, camp, user, 1, rid);
    assert_int_equal(pintuan_send(c, &q), 0);
  }
  assert_int_equal(pintuan_flush(c), 0);
}

/* Reads n replies, each OK. */
static void recv_ok(pintuan_client *c, int n) {
  for (int i = 0; i < n; i++) {
    pintuan_response *r;
    assert_int_equal(pintuan_recv(c, &r), 0);
    assert_int_equal(r->status, OK);
    pintuan_response_free(r);
  }
}

/* ---- a view of everything a client can see, as packed reply bytes ---- */

typedef struct view {
  char *text; /* one line per item: its name and the reply's result, hex */
  size_t len, cap;
} view;

static void vadd(view *v, const char *name, const pintuan_response *r) {
  uint8_t buf[16384];
  /* the result only: status and detail aside (detail may say "replay") */
  pintuan_response copy = *r;
  copy.detail = NULL, copy.has_id = 0, copy.has_replay = 0;
  size_t n = pintuan__v1__response__pack(&copy, buf);
  size_t need = strlen(name) + 2 * n + 3;
  if (v->len + need > v->cap) {
    v->cap = (v->len + need) * 2;
    v->text = realloc(v->text, v->cap);
  }
  v->len += (size_t)sprintf(v->text + v->len, "%s ", name);
  for (size_t i = 0; i < n; i++) v->len += (size_t)sprintf(v->text + v->len, "%02x", buf[i]);
  v->text[v->len++] = '\n';
  v->text[v->len] = 0;
}

#define MAXIDS 64
typedef struct world {
  uint64_t res[MAXIDS]; /* reservation and seat ids seen, and whose */
  char resuser[MAXIDS][8];
  int nres;
  uint64_t groups[MAXIDS];
  int ngroups;
  /* effects: request id, and the reply to compare a retry with */
  char rid[MAXIDS][16];
  char kind[MAXIDS]; /* 'r' reserve, 'c' confirm, 'x' cancel, 'j' join */
  char camp[MAXIDS][4], user[MAXIDS][8];
  uint64_t arg[MAXIDS];
  int qty[MAXIDS], mode[MAXIDS];
  uint64_t got[MAXIDS]; /* the reservation id answered */
  int neff;
} world;

static void seen(world *w, const pintuan_response *r) {
  if (!r->reservation) return;
  if (r->reservation->has_reservation_id && w->nres < MAXIDS) {
    snprintf(w->resuser[w->nres], sizeof w->resuser[w->nres], "%.*s", (int)r->reservation->user_id.len,
             (const char *)r->reservation->user_id.data);
    w->res[w->nres++] = r->reservation->reservation_id;
  }
  if (r->reservation->has_group_id) {
    bool known = false;
    for (int i = 0; i < w->ngroups; i++) known |= w->groups[i] == r->reservation->group_id;
    if (!known) w->groups[w->ngroups++] = r->reservation->group_id;
  }
}

static int effect(pintuan_client *c, world *w, char kind, const char *camp, const char *user,
                  uint64_t arg, int qty, int mode) {
  int i = w->neff++;
  snprintf(w->rid[i], sizeof w->rid[i], "e%d", i);
  snprintf(w->camp[i], sizeof w->camp[i], "%s", camp);
  snprintf(w->user[i], sizeof w->user[i], "%s", user);
  w->kind[i] = kind, w->arg[i] = arg, w->qty[i] = qty, w->mode[i] = mode;
  pintuan_response *r = NULL;
  switch (kind) {
  case 'r': assert_int_equal(pintuan_reserve(c, camp, user, qty, w->rid[i], &r), 0); break;
  case 'c': assert_int_equal(pintuan_confirm(c, camp, arg, user, w->rid[i], &r), 0); break;
  case 'x': assert_int_equal(pintuan_cancel(c, camp, arg, user, w->rid[i], &r), 0); break;
  default: assert_int_equal(pintuan_join(c, camp, user, mode, arg, true, w->rid[i], &r), 0); break;
  }
  int st = r->status;
  w->got[i] = r->reservation && r->reservation->has_reservation_id ? r->reservation->reservation_id : 0;
  seen(w, r);
  pintuan_response_free(r);
  return st;
}

/* Retries every effect: the original answer, marked a replay. */
static void retry_all(pintuan_client *c, const world *w) {
  for (int i = 0; i < w->neff; i++) {
    pintuan_response *r = NULL;
    switch (w->kind[i]) {
    case 'r': assert_int_equal(pintuan_reserve(c, w->camp[i], w->user[i], w->qty[i], w->rid[i], &r), 0); break;
    case 'c': assert_int_equal(pintuan_confirm(c, w->camp[i], w->arg[i], w->user[i], w->rid[i], &r), 0); break;
    case 'x': assert_int_equal(pintuan_cancel(c, w->camp[i], w->arg[i], w->user[i], w->rid[i], &r), 0); break;
    default:
      assert_int_equal(pintuan_join(c, w->camp[i], w->user[i], w->mode[i], w->arg[i], true, w->rid[i], &r), 0);
      break;
    }
    if (!(r->has_replay && r->replay)) fail_msg("effect %s was not remembered: %s", w->rid[i], r->detail);
    uint64_t got = r->reservation && r->reservation->has_reservation_id ? r->reservation->reservation_id : 0;
    assert_int_equal(got, w->got[i]);
    pintuan_response_free(r);
  }
}

static view look(pintuan_client *c, const world *w) {
  view v = {0};
  pintuan_response *r;
  char name[64];
  const char *camps[] = {"f", "g"};
  for (int k = 0; k < 2; k++) {
    assert_int_equal(pintuan_get_campaign(c, camps[k], &r), 0);
    assert_int_equal(r->status, OK);
    vadd(&v, camps[k], r);
    pintuan_response_free(r);
    for (int u = 0; u < 8; u++) {
      snprintf(name, sizeof name, "u%d", u);
      assert_int_equal(pintuan_get_holdings(c, camps[k], name, &r), 0);
      snprintf(name, sizeof name, "holdings %s u%d", camps[k], u);
      vadd(&v, name, r);
      pintuan_response_free(r);
    }
    for (int i = 0; i < w->nres; i++) {
      assert_int_equal(pintuan_get_reservation(c, camps[k], w->res[i], w->resuser[i], &r), 0);
      snprintf(name, sizeof name, "reservation %s %" PRIu64 " %s", camps[k], w->res[i],
               pintuan_status_str(r->status));
      vadd(&v, name, r);
      pintuan_response_free(r);
    }
  }
  for (int i = 0; i < w->ngroups; i++) {
    assert_int_equal(pintuan_get_group(c, "g", w->groups[i], &r), 0);
    snprintf(name, sizeof name, "group %" PRIu64, w->groups[i]);
    vadd(&v, name, r);
    pintuan_response_free(r);
  }
  return v;
}

/* Campaigns with every kind of state in them. */
static void make_world(pintuan_client *c, world *w) {
  pintuan_campaign_spec f = {.campaign_id = "f", .kind = PINTUAN__V1__CAMPAIGN_KIND__FLASH_SALE,
                             .stock = 5, .per_user_limit = 2, .hold_ms = 60000, .waitlist = true};
  pintuan_campaign_spec g = {.campaign_id = "g", .kind = PINTUAN__V1__CAMPAIGN_KIND__GROUP_BUY,
                             .stock = 20, .hold_ms = 60000, .group_size = 3, .group_ttl_ms = 600000};
  pintuan_response *r;
  assert_int_equal(pintuan_create_campaign(c, &f, "mk-f", &r), 0);
  assert_int_equal(r->status, OK);
  pintuan_response_free(r);
  assert_int_equal(pintuan_create_campaign(c, &g, "mk-g", &r), 0);
  assert_int_equal(r->status, OK);
  pintuan_response_free(r);
  assert_int_equal(effect(c, w, 'r', "f", "u1", 0, 1, 0), OK);
  assert_int_equal(effect(c, w, 'r', "f", "u2", 0, 2, 0), OK);
  assert_int_equal(effect(c, w, 'r', "f", "u3", 0, 2, 0), OK);
  assert_int_equal(effect(c, w, 'r', "f", "u4", 0, 1, 0), PINTUAN__V1__STATUS__WAITLISTED);
  assert_int_equal(effect(c, w, 'r', "f", "u5", 0, 1, 0), PINTUAN__V1__STATUS__WAITLISTED);
  assert_int_equal(effect(c, w, 'r', "f", "u6", 0, 2, 0), PINTUAN__V1__STATUS__WAITLISTED);
  assert_int_equal(effect(c, w, 'c', "f", "u1", w->got[0], 0, 0), OK); /* u1 pays */
  assert_int_equal(effect(c, w, 'x', "f", "u2", w->got[1], 0, 0), OK); /* u2 leaves: u4, u5 get holds */
  assert_int_equal(effect(c, w, 'j', "g", "u1", 0, 0, PINTUAN__V1__JOIN_MODE__JOIN_OPEN), OK);
  assert_int_equal(effect(c, w, 'j', "g", "u2", 0, 0, PINTUAN__V1__JOIN_MODE__JOIN_AUTO), OK);
  assert_int_equal(effect(c, w, 'j', "g", "u3", 0, 0, PINTUAN__V1__JOIN_MODE__JOIN_AUTO), OK);
  assert_int_equal(effect(c, w, 'c', "g", "u1", w->got[8], 0, 0), OK);
  assert_int_equal(effect(c, w, 'c', "g", "u2", w->got[9], 0, 0), OK);
  assert_int_equal(effect(c, w, 'j', "g", "u4", 0, 0, PINTUAN__V1__JOIN_MODE__JOIN_OPEN), OK);
  assert_int_equal(effect(c, w, 'j', "g", "u5", 0, 0, PINTUAN__V1__JOIN_MODE__JOIN_AUTO), OK);
  assert_int_equal(effect(c, w, 'x', "g", "u5", w->got[14], 0, 0), OK); /* u5 leaves */
}

/* A primary "a" with the world made in it, once it logged `logged` if
 * given; what a client sees of it. */
static view start_world(pt_daemon *d, const char *const *more, world *w, const char *logged) {
  start(d, "a", true, more);
  pintuan_client *c = connect_or_die(d);
  make_world(c, w);
  view v = look(c, w);
  pintuan_close(c);
  if (logged && daemon_log_wait(d, logged, PT_WAIT_MS, NULL, 0) != 0)
    fail_msg("the daemon never logged \"%s\"", logged);
  return v;
}

/* The world, a restart (kill -9 or a clean stop, once the daemon logged
 * `before_stop` if given), and the same world after it; `recovered` gets
 * the restarted daemon's recovery line. */
static void check_restart(bool hard, const char *const *more, const char *before_stop,
                          char *recovered, size_t recovered_len) {
  pt_daemon d;
  world w = {0};
  view before = start_world(&d, more, &w, before_stop);
  if (hard)
    kill9(&d);
  else
    assert_int_equal(daemon_stop(&d), 0);
  start(&d, "a", true, more);
  if (recovered) snprintf(recovered, recovered_len, "%s", last_recovery);
  pintuan_client *c = connect_or_die(&d);
  view after = look(c, &w);
  if (strcmp(before.text, after.text)) {
    fprintf(stderr, "--- before\n%s--- after\n%s", before.text, after.text);
    fail_msg("the state after the restart differs");
  }
  retry_all(c, &w);
  view again = look(c, &w); /* the retries changed nothing */
  assert_string_equal(before.text, again.text);
  pintuan_close(c);
  assert_int_equal(daemon_stop(&d), 0);
  free(before.text), free(after.text), free(again.text);
}

static void test_restart_after_kill9(void **state) {
  (void)state;
  check_restart(true, NULL, NULL, NULL, 0);
}

static void test_restart_through_snapshots(void **state) {
  (void)state;
  const char *more[] = {"--snapshot-after", "300", NULL}; /* a snapshot every few records */
  char line[256];
  check_restart(false, more, "mirror snapshot committed", line, sizeof line);
  char out[64];
  assert_int_equal(redis_cmd(&R, out, sizeof out, "HGET pintuan:{t}:snapshot seq"), 0);
  assert_true(atoi(out) > 0); /* snapshots were written, and recovery went through one */
  const char *from = strstr(line, "records=");
  assert_non_null(from);
  if (atoi(from + 8) == 0) fail_msg("recovery did not start from a snapshot: %s", line);
}

/* Four bytes of a Redis string at off: read into was (4 bytes), then
 * replaced by put (binary-safe, unlike redis_cmd's text). */
static void swap_bytes(const char *key, long off, char *was, const char *put) {
  redisContext *rc = redisConnect("127.0.0.1", R.port);
  assert_true(rc && !rc->err);
  redisReply *r = redisCommand(rc, "GETRANGE %s %ld %ld", key, off, off + 3);
  assert_true(r && r->type == REDIS_REPLY_STRING && r->len == 4);
  memcpy(was, r->str, 4);
  freeReplyObject(r);
  r = redisCommand(rc, "SETRANGE %s %ld %b", key, off, put, (size_t)4);
  assert_true(r && r->type == REDIS_REPLY_INTEGER);
  freeReplyObject(r);
  redisFree(rc);
}

/* A snapshot damaged in Redis (four bytes of its first chunk overwritten):
 * the next daemon refuses it with the reason, stays up answering
 * UNAVAILABLE, and restores nothing. Put back, it restores as before. */
static void test_damaged_snapshot_refused(void **state) {
  (void)state;
  const char *more[] = {"--snapshot-after", "300", NULL};
  pt_daemon d;
  world w = {0};
  view before = start_world(&d, more, &w, "mirror snapshot committed");
  assert_int_equal(daemon_stop(&d), 0);
  char prefix[200], sum[64], chunk[220], orig[4], now[4];
  assert_int_equal(redis_cmd(&R, prefix, sizeof prefix, "HGET pintuan:{t}:snapshot prefix"), 0);
  assert_int_equal(redis_cmd(&R, sum, sizeof sum, "HGET pintuan:{t}:snapshot sum"), 0);
  assert_true(strlen(sum) > 0);
  snprintf(chunk, sizeof chunk, "%s:0", prefix);
  swap_bytes(chunk, 40, orig, "ZZZZ"); /* in the hold pages, past the header */
  if (!memcmp(orig, "ZZZZ", 4)) fail_msg("those bytes were ZZZZ already: pick others");

  launch(&d, "a", more);
  char line[512];
  if (daemon_log_wait(&d, "is damaged", PT_WAIT_MS, line, sizeof line) != 0)
    fail_msg("the damaged snapshot was not refused");
  assert_non_null(strstr(line, prefix));
  pintuan_client *c = connect_or_die(&d); /* up, and saying why it does not serve */
  pintuan_response *r;
  assert_int_equal(pintuan_reserve(c, "f", "u9", 1, "after-damage", &r), 0);
  assert_int_equal(r->status, PINTUAN__V1__STATUS__UNAVAILABLE);
  assert_non_null(strstr(r->detail, "damaged snapshot"));
  pintuan_response_free(r);
  pintuan_close(c);
  assert_int_equal(daemon_stop(&d), 0);

  swap_bytes(chunk, 40, now, orig); /* put back */
  assert_memory_equal(now, "ZZZZ", 4);
  start(&d, "a", true, more);
  c = connect_or_die(&d);
  view after = look(c, &w);
  assert_string_equal(before.text, after.text);
  pintuan_close(c);
  assert_int_equal(daemon_stop(&d), 0);
  free(before.text), free(after.text);
}

/* A snapshot of a record the journal does not hold yet is refused by the
 * commit (the daemon's child retries until it does): committed, it would
 * trim the journal past what Redis holds and leave the next append no
 * sequence to follow. Called here as the child would, with the lease's
 * node and epoch. */
static void test_snapshot_commit_waits_for_its_journal(void **state) {
  (void)state;
  pt_daemon d;
  world w = {0};
  view before = start_world(&d, NULL, &w, NULL);
  char lease[128], seq[32], len[32], out[256], epoch[32];
  assert_int_equal(redis_cmd(&R, lease, sizeof lease, "GET pintuan:{t}:lease"), 0);
  assert_int_equal(sscanf(lease, "%31s", epoch), 1);
  assert_int_equal(redis_cmd(&R, seq, sizeof seq, "GET pintuan:{t}:seq"), 0);
  assert_int_equal(redis_cmd(&R, len, sizeof len, "XLEN pintuan:{t}:journal"), 0);
  assert_true(atoi(seq) > 0);
  const char *call = "FCALL pintuan_snapshot_commit 4 pintuan:{t}:lease pintuan:{t}:snapshot "
                     "pintuan:{t}:journal pintuan:{t}:seq a %s %d 1 10 3 pintuan:{t}:snap:x 0";
  assert_int_equal(redis_cmd(&R, out, sizeof out, call, epoch, atoi(seq) + 1), -1);
  if (strncmp(out, "BEHIND", 6)) fail_msg("a snapshot ahead of the journal was answered: %s", out);
  assert_int_equal(redis_cmd(&R, out, sizeof out, "EXISTS pintuan:{t}:snapshot"), 0);
  assert_string_equal(out, "0"); /* nothing described */
  assert_int_equal(redis_cmd(&R, out, sizeof out, "XLEN pintuan:{t}:journal"), 0);
  assert_string_equal(out, len); /* nothing trimmed */
  assert_int_equal(daemon_stop(&d), 0);
  start(&d, "a", true, NULL); /* and the shard restarts as it was */
  pintuan_client *c = connect_or_die(&d);
  view after = look(c, &w);
  assert_string_equal(before.text, after.text);
  pintuan_close(c);
  assert_int_equal(daemon_stop(&d), 0);
  free(before.text), free(after.text);
}

/* A restore longer than the lease (~270 MB of state, ~2 s to restore,
 * against a 1 s lease; a 300 ms lease made the test fail under load, a
 * renewal late by 0.3 s): it runs beside the loop, which
 * keeps renewing, so the daemon rebuilds once and serves. On the loop it
 * held the renewals back: the lease lapsed during every attempt. */
static void test_long_restore_keeps_the_lease(void **state) {
  (void)state;
  char conf[] = "/tmp/pt-mirror-conf-XXXXXX";
  write_temp(conf, "[mirror]\nsnapshot_growth_percent = 0\n");
  const char *more[] = {"-c", conf, "--snapshot-after", "1", NULL};
  pt_daemon d;
  start(&d, "a", true, more);
  char cmd[512];
  snprintf(cmd, sizeof cmd,
           "%s -a %s -s mixed --mix 100:0:0 --users 100000000 --limit 0 -c 16 -p 1000 -w 0 -d 2 "
           "--stock 100000000 --no-progress >/dev/null 2>&1",
           getenv("PINTUAN_BENCH") ? getenv("PINTUAN_BENCH") : "./clients/pintuan-bench", d.addr);
  assert_int_equal(system(cmd), 0);
  /* one record at a time until a snapshot covers the journal's last: the
   * restart then restores and has next to nothing to replay */
  pintuan_client *c = connect_or_die(&d);
  for (int i = 0;; i++) {
    if (i == 20) fail_msg("no snapshot reached the journal's last record");
    char id[16], line[256], seq[32];
    snprintf(id, sizeof id, "last%d", i);
    assert_int_equal(create_flash(c, id, 1, 0, 600000, 0), OK);
    if (daemon_log_wait(&d, "mirror snapshot committed", PT_WAIT_MS, line, sizeof line) != 0)
      fail_msg("no snapshot was committed");
    assert_int_equal(redis_cmd(&R, seq, sizeof seq, "GET pintuan:{t}:seq"), 0);
    const char *at = strstr(line, "seq=");
    if (at && strtoull(at + 4, NULL, 10) == strtoull(seq, NULL, 10)) break;
  }
  pintuan_close(c);
  assert_int_equal(daemon_stop(&d), 0);
  lease_ms = "1000";
  start(&d, "a", true, more);
  const char *from = strstr(last_recovery, "records=");
  assert_non_null(from);
  if (atoi(from + 8) == 0) fail_msg("recovery did not start from a snapshot: %s", last_recovery);
  char *m = admin_get(&d, "/metrics");
  assert_non_null(m);
  double downs = metric_value(m, "pintuan_mirror_step_downs_total");
  double recoveries = metric_value(m, "pintuan_mirror_recoveries_total");
  free(m);
  assert_true(downs == 0); /* never lost the lease */
  assert_true(recoveries == 1);
  assert_int_equal(daemon_stop(&d), 0);
  unlink(conf);
}

/* The first bytes of a Redis string (binary-safe). */
static void first_bytes(const char *key, uint8_t *out, size_t n) {
  redisContext *rc = redisConnect("127.0.0.1", R.port);
  assert_true(rc && !rc->err);
  redisReply *r = redisCommand(rc, "GETRANGE %s 0 %d", key, (int)n - 1);
  assert_true(r && r->type == REDIS_REPLY_STRING && (size_t)r->len == n);
  memcpy(out, r->str, n);
  freeReplyObject(r);
  redisFree(rc);
}

/* The state bytes of the next snapshot the daemon commits. */
static unsigned long long next_snapshot_state(pt_daemon *d) {
  char line[512];
  if (daemon_log_wait(d, "mirror snapshot committed", PT_WAIT_MS, line, sizeof line) != 0)
    fail_msg("no snapshot was committed");
  const char *st = strstr(line, "state=");
  assert_non_null(st);
  return strtoull(st + 6, NULL, 10);
}

/* The snapshot Redis describes (read with no daemon running: no later one
 * replaces it meanwhile): chunks, bytes stored, whether chunk 0 is a zstd
 * frame. */
typedef struct described {
  int chunks;
  unsigned long long bytes;
  bool zstd;
} described;

static described describe_snapshot(void) {
  char prefix[200], out[32], key[220];
  described k = {0};
  assert_int_equal(redis_cmd(&R, prefix, sizeof prefix, "HGET pintuan:{t}:snapshot prefix"), 0);
  assert_int_equal(redis_cmd(&R, out, sizeof out, "HGET pintuan:{t}:snapshot chunks"), 0);
  k.chunks = atoi(out);
  assert_int_equal(redis_cmd(&R, out, sizeof out, "HGET pintuan:{t}:snapshot bytes"), 0);
  k.bytes = strtoull(out, NULL, 10);
  snprintf(key, sizeof key, "%s:0", prefix);
  uint8_t b[4];
  first_bytes(key, b, 4);
  k.zstd = b[0] == 0x28 && b[1] == 0xb5 && b[2] == 0x2f && b[3] == 0xfd; /* zstd's frame magic */
  return k;
}

/* Reserves one unit each for new users of campaign "h" (which the world's
 * view does not read) until a snapshot of at least `state` bytes is
 * committed. */
static void grow_until_snapshot(pt_daemon *d, pintuan_client *c, const char *tag, unsigned long long state) {
  unsigned long long got = 0;
  for (int i = 0; got < state; i++) {
    if (i >= 4000) fail_msg("no snapshot of %llu bytes after 4000 reserves (last: %llu)", state, got);
    char u[16], rid[24];
    snprintf(u, sizeof u, "%s%d", tag, i), snprintf(rid, sizeof rid, "%s-%d", tag, i);
    pintuan_response *r;
    assert_int_equal(pintuan_reserve(c, "h", u, 1, rid, &r), 0);
    assert_int_equal(r->status, OK);
    pintuan_response_free(r);
    /* a snapshot started (they start as the journal grows): await its commit */
    if (i % 50 == 49 && daemon_log_wait(d, "mirror snapshot started", 0, NULL, 0) == 0)
      got = next_snapshot_state(d);
  }
}

/* Snapshots in chunks of 4 KiB, stored as they are by one daemon and
 * compressed by the next: each daemon restores what the other wrote,
 * whatever its own setting, through several chunks (written pipelined). */
static void test_snapshot_chunks_raw_and_compressed(void **state) {
  (void)state;
  char raw_conf[] = "/tmp/pt-mirror-conf-XXXXXX", z_conf[] = "/tmp/pt-mirror-conf-XXXXXX";
  write_temp(raw_conf, "[mirror]\nsnapshot_compression = none\nsnapshot_chunk_bytes = 4096\n");
  write_temp(z_conf, "[mirror]\nsnapshot_compression = zstd\nsnapshot_chunk_bytes = 4096\n");
  const char *raw[] = {"-c", raw_conf, "--snapshot-after", "300", NULL};
  const char *z[] = {"-c", z_conf, "--snapshot-after", "300", NULL};
  pt_daemon d;
  world w = {0};
  start(&d, "a", true, raw);
  pintuan_client *c = connect_or_die(&d);
  make_world(c, &w);
  view before = look(c, &w);
  assert_int_equal(create_flash(c, "h", 1000000, 0, 600000, 0), OK);
  grow_until_snapshot(&d, c, "h", 3 * 4096);
  pintuan_close(c);
  assert_int_equal(daemon_stop(&d), 0);
  described k = describe_snapshot();
  assert_false(k.zstd);
  assert_true(k.chunks >= 3 && k.bytes > (k.chunks - 1) * 4096ull && k.bytes <= k.chunks * 4096ull);

  start(&d, "a", true, z); /* restores the raw chunks */
  c = connect_or_die(&d);
  view after = look(c, &w);
  assert_string_equal(before.text, after.text);
  grow_until_snapshot(&d, c, "z", 4 * 4096); /* its own snapshot, compressed */
  pintuan_close(c);
  assert_int_equal(daemon_stop(&d), 0);
  k = describe_snapshot();
  if (!k.zstd) fail_msg("the zstd daemon's snapshot is not compressed");
  /* each chunk holds 4 KiB of state but the last: ids and counters compress well */
  assert_true(k.chunks >= 4 && k.bytes < (k.chunks - 1) * 4096ull / 2);

  start(&d, "a", true, raw); /* restores the compressed chunks */
  const char *from = strstr(last_recovery, "records=");
  assert_non_null(from);
  if (atoi(from + 8) == 0) fail_msg("recovery did not start from a snapshot: %s", last_recovery);
  c = connect_or_die(&d);
  view again = look(c, &w);
  assert_string_equal(before.text, again.text);
  pintuan_response *r; /* and what the second daemon decided is there too */
  assert_int_equal(pintuan_get_holdings(c, "h", "z0", &r), 0);
  assert_int_equal(r->status, OK);
  assert_int_equal(r->result_case, PINTUAN__V1__RESPONSE__RESULT_HOLDINGS);
  assert_int_equal(r->holdings->held, 1);
  pintuan_response_free(r);
  pintuan_close(c);
  assert_int_equal(daemon_stop(&d), 0);
  unlink(raw_conf), unlink(z_conf);
  free(before.text), free(after.text), free(again.text);
}

/* ---- load from many clients ---- */

#define CLIENTS 6
#define PER_CLIENT 400

/* Load threads count their answers; the test waits for a number of them. */
static pthread_mutex_t progress_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t progress_cv = PTHREAD_COND_INITIALIZER;

static void count_answer(atomic_int *n) {
  pthread_mutex_lock(&progress_mu);
  atomic_fetch_add(n, 1);
  pthread_cond_broadcast(&progress_cv);
  pthread_mutex_unlock(&progress_mu);
}

static void await_answers(atomic_int *n, int want) {
  pthread_mutex_lock(&progress_mu);
  while (atomic_load(n) < want) pthread_cond_wait(&progress_cv, &progress_mu);
  pthread_mutex_unlock(&progress_mu);
}

typedef struct load {
  const char *addrs;
  const char *campaign;
  int id, users, failover;
  atomic_int *acked;
  /* per request: 0 not answered, else the status; the reservation */
  int status[PER_CLIENT];
  uint64_t res[PER_CLIENT];
  int qty[PER_CLIENT];
  char user[PER_CLIENT][16];
} load;

static void *run_load(void *arg) {
  load *l = arg;
  char err[256];
  pintuan_client *c = pintuan_connect(l->addrs, PT_WAIT_MS, err, sizeof err);
  if (!c) return NULL;
  if (!l->failover) pintuan_set_failover(c, 0, 0);
  for (int i = 0; i < PER_CLIENT; i++) {
    char rid[24];
    snprintf(rid, sizeof rid, "c%d-%d", l->id, i);
    snprintf(l->user[i], sizeof l->user[i], "u%d", (l->id * 7919 + i * 31) % l->users);
    l->qty[i] = 1 + i % 2;
    pintuan_response *r;
    if (pintuan_reserve(c, l->campaign, l->user[i], l->qty[i], rid, &r)) break; /* the daemon died */
    l->status[i] = r->status;
    if (r->reservation && r->reservation->has_reservation_id) l->res[i] = r->reservation->reservation_id;
    pintuan_response_free(r);
    count_answer(l->acked);
  }
  pintuan_close(c);
  count_answer(l->acked); /* so a waiter never waits on a thread that is done */
  return NULL;
}

static void test_kill9_during_stampede(void **state) {
  (void)state;
  pt_daemon d;
  start(&d, "a", true, NULL);
  pintuan_client *c = connect_or_die(&d);
  assert_int_equal(create_flash(c, "s", 500, 3, 600000, 0), OK);
  pintuan_close(c);
  static load L[CLIENTS];
  pthread_t t[CLIENTS];
  atomic_int acked = 0;
  for (int i = 0; i < CLIENTS; i++) {
    memset(&L[i], 0, sizeof L[i]);
    L[i] = (load){.addrs = d.addr, .campaign = "s", .id = i, .users = 300, .acked = &acked};
    pthread_create(&t[i], NULL, run_load, &L[i]);
  }
  await_answers(&acked, 300); /* kill in the middle of the traffic */
  kill9(&d);
  for (int i = 0; i < CLIENTS; i++) pthread_join(t[i], NULL);
  start(&d, "a", true, NULL);
  c = connect_or_die(&d);
  int64_t units = 0, acked_ok = 0;
  for (int i = 0; i < CLIENTS; i++) {
    for (int k = 0; k < PER_CLIENT; k++) {
      char rid[24];
      snprintf(rid, sizeof rid, "c%d-%d", i, k);
      if (!L[i].user[k][0]) continue; /* never sent */
      pintuan_response *r;
      assert_int_equal(pintuan_reserve(c, "s", L[i].user[k], L[i].qty[k], rid, &r), 0);
      if (L[i].status[k] == OK) { /* acknowledged: there, and answered as before */
        acked_ok++;
        if (r->status != OK || !r->replay || r->reservation->reservation_id != L[i].res[k])
          fail_msg("acknowledged %s lost after kill -9: %s %s", rid, pintuan_status_str(r->status),
                   r->detail);
        pintuan_response *g;
        assert_int_equal(pintuan_get_reservation(c, "s", L[i].res[k], L[i].user[k], &g), 0);
        assert_int_equal(g->status, OK);
        pintuan_response_free(g);
      }
      if (r->status == OK) units += L[i].qty[k];
      pintuan_response_free(r);
    }
  }
  assert_true(acked_ok > 0);
  pintuan_response *r;
  Pintuan__V1__Campaign *cp = get_campaign(c, "s", &r);
  assert_int_equal(cp->available + cp->held + cp->sold, cp->stock);
  assert_int_equal(cp->held, units); /* every unit held is one request's one effect */
  pintuan_response_free(r);
  for (int u = 0; u < 300; u++) { /* limits held */
    char user[12];
    snprintf(user, sizeof user, "u%d", u);
    assert_int_equal(pintuan_get_holdings(c, "s", user, &r), 0);
    assert_true(r->holdings->held + r->holdings->sold <= 3);
    pintuan_response_free(r);
  }
  pintuan_close(c);
  assert_int_equal(daemon_stop(&d), 0);
}

static void test_failover_under_load(void **state) {
  (void)state;
  lease_ms = "1500";
  pt_daemon a, b;
  start(&a, "a", true, NULL);
  start(&b, "b", false, NULL);
  pintuan_client *c = connect_or_die(&a);
  assert_int_equal(create_flash(c, "s", 1000000, 0, 600000, 0), OK);
  pintuan_close(c);
  char addrs[128];
  snprintf(addrs, sizeof addrs, "%s,%s", a.addr, b.addr);
  static load L[CLIENTS];
  pthread_t t[CLIENTS];
  atomic_int acked = 0;
  for (int i = 0; i < CLIENTS; i++) {
    memset(&L[i], 0, sizeof L[i]);
    L[i] = (load){.addrs = addrs, .campaign = "s", .id = i, .users = 1000000, .failover = 1,
                  .acked = &acked};
    pthread_create(&t[i], NULL, run_load, &L[i]);
  }
  await_answers(&acked, 400);
  int64_t killed = pt_mono_ns() / 1000000;
  kill9(&a);
  assert_int_equal(daemon_log_wait(&b, "mirror role=primary", PT_WAIT_MS, NULL, 0), 0);
  fprintf(stderr, "# the standby served %lld ms after the kill (lease %s ms)\n",
          (long long)(pt_mono_ns() / 1000000 - killed), lease_ms);
  for (int i = 0; i < CLIENTS; i++) pthread_join(t[i], NULL);
  c = connect_or_die(&b);
  int64_t units = 0;
  for (int i = 0; i < CLIENTS; i++)
    for (int k = 0; k < PER_CLIENT; k++) {
      if (L[i].status[k] != OK) fail_msg("request c%d-%d was not answered OK through the failover", i, k);
      units += L[i].qty[k];
      char rid[24];
      snprintf(rid, sizeof rid, "c%d-%d", i, k);
      pintuan_response *r;
      assert_int_equal(pintuan_reserve(c, "s", L[i].user[k], L[i].qty[k], rid, &r), 0);
      assert_true(r->replay);
      assert_int_equal(r->reservation->reservation_id, L[i].res[k]);
      pintuan_response_free(r);
    }
  pintuan_response *r;
  Pintuan__V1__Campaign *cp = get_campaign(c, "s", &r);
  assert_int_equal(cp->held, units); /* exactly one effect per request */
  pintuan_response_free(r);
  pintuan_close(c);
  assert_int_equal(daemon_stop(&b), 0);
}

static void test_sigstop_primary_is_deposed(void **state) {
  (void)state;
  lease_ms = "1500";
  pt_daemon a, b;
  start(&a, "a", true, NULL);
  start(&b, "b", false, NULL);
  pintuan_client *ca = connect_or_die(&a);
  pintuan_set_failover(ca, 0, 0); /* this client talks to a only */
  assert_int_equal(create_flash(ca, "s", 100, 0, 600000, 0), OK);
  kill(a.pid, SIGSTOP);
  assert_int_equal(daemon_log_wait(&b, "mirror role=primary", PT_WAIT_MS, NULL, 0), 0);
  pintuan_client *cb = connect_or_die(&b);
  pintuan_response *r;
  assert_int_equal(pintuan_reserve(cb, "s", "bob", 1, "after", &r), 0);
  assert_int_equal(r->status, OK);
  pintuan_response_free(r);
  char epoch_b[32];
  assert_int_equal(redis_cmd(&R, epoch_b, sizeof epoch_b, "GET pintuan:{t}:epoch"), 0);
  kill(a.pid, SIGCONT);
  /* a learns it lost the lease (its renewal, or an append, is refused) */
  assert_int_equal(daemon_log_wait(&a, "mirror role=standby", PT_WAIT_MS, NULL, 0), 0);
  /* deposed, it may not know the new primary yet (UNAVAILABLE, nothing
   * decided) until its next look at the lease names it */
  for (int waited = 0;; waited += 10) {
    assert_int_equal(pintuan_reserve(ca, "s", "ann", 1, "late", &r), 0);
    if (r->status != PINTUAN__V1__STATUS__UNAVAILABLE || waited >= PT_WAIT_MS) break;
    pintuan_response_free(r);
    usleep(10000);
  }
  assert_int_equal(r->status, PINTUAN__V1__STATUS__NOT_LEADER);
  assert_string_equal(r->leader, b.addr);
  pintuan_response_free(r);
  /* every journal entry since b took over carries b's epoch: a wrote nothing */
  char entries[8192];
  assert_int_equal(redis_cmd(&R, entries, sizeof entries, "XRANGE pintuan:{t}:journal - +"), 0);
  bool since_b = false;
  for (char *line = strtok(entries, "\n"); line; line = strtok(NULL, "\n")) {
    if (strcmp(line, "e") != 0) continue;
    char *epoch = strtok(NULL, "\n");
    if (epoch && !strcmp(epoch, epoch_b)) since_b = true;
    else if (since_b) fail_msg("an entry of epoch %s after the takeover", epoch);
  }
  assert_true(since_b);
  pintuan_close(ca);
  pintuan_close(cb);
  assert_int_equal(daemon_stop(&a), 0);
  assert_int_equal(daemon_stop(&b), 0);
}

static void test_redis_outage(void **state) {
  (void)state;
  redis_cleanup(&R); /* this test's Redis keeps what it acknowledged across its restart */
  const char *aof[] = {"--appendonly", "yes", "--appendfsync", "always", NULL};
  assert_int_equal(redis_start(&R, aof), 0);
  assert_int_equal(shard_init(R.addr, "t"), 0);
  pt_daemon d;
  start(&d, "a", true, NULL);
  pintuan_client *c = connect_or_die(&d);
  pintuan_set_failover(c, 0, 0);
  assert_int_equal(create_flash(c, "s", 100, 0, 600000, 0), OK);
  uint64_t held[20];
  for (int i = 0; i < 20; i++) {
    char rid[16], user[16];
    snprintf(rid, sizeof rid, "r%d", i), snprintf(user, sizeof user, "u%d", i);
    pintuan_response *r;
    assert_int_equal(pintuan_reserve(c, "s", user, 1, rid, &r), 0);
    assert_int_equal(r->status, OK);
    held[i] = r->reservation->reservation_id;
    pintuan_response_free(r);
  }
  assert_int_equal(redis_stop(&R), 0);
  assert_int_equal(daemon_log_wait(&d, "connection to Redis", PT_WAIT_MS, NULL, 0), 0);
  pintuan_response *r;
  assert_int_equal(pintuan_reserve(c, "s", "x", 1, "during", &r), 0);
  assert_int_equal(r->status, PINTUAN__V1__STATUS__UNAVAILABLE);
  pintuan_response_free(r);
  assert_int_equal(pintuan_get_campaign(c, "s", &r), 0); /* nor reads: this is no primary now */
  assert_int_equal(r->status, PINTUAN__V1__STATUS__UNAVAILABLE);
  pintuan_response_free(r);
  assert_int_equal(redis_restart(&R), 0);
  assert_int_equal(daemon_log_wait(&d, "mirror role=primary", PT_WAIT_MS, NULL, 0), 0);
  assert_int_equal(pintuan_reserve(c, "s", "x", 1, "after", &r), 0);
  assert_int_equal(r->status, OK);
  pintuan_response_free(r);
  for (int i = 0; i < 20; i++) {
    char user[16];
    snprintf(user, sizeof user, "u%d", i);
    assert_int_equal(pintuan_get_reservation(c, "s", held[i], user, &r), 0);
    assert_int_equal(r->status, OK);
    pintuan_response_free(r);
  }
  pintuan_close(c);
  assert_int_equal(daemon_stop(&d), 0);
}

/* Count of the lines "type", TYPE in an XRANGE reply flattened to lines. */
static int count_events(const char *entries, const char *type) {
  char needle[64];
  snprintf(needle, sizeof needle, "\ntype\n%s\n", type);
  int n = 0;
  for (const char *p = entries; (p = strstr(p, needle)); p++) n++;
  return n;
}

/* Events reach the stream pintuan:{t}:events with their fields; a hold whose
 * deadline passed while no daemon ran expires when the next one loads, its
 * event emitted once, and not again by a later recovery. */
static void test_events_stream_and_expiry_on_load(void **state) {
  (void)state;
  pt_daemon d;
  start(&d, "a", true, NULL);
  pintuan_client *c = connect_or_die(&d);
  assert_int_equal(create_flash(c, "e", 3, 0, 1000, 1), OK);
  pintuan_response *r;
  assert_int_equal(pintuan_reserve(c, "e", "u1", 3, "first", &r), 0);
  assert_int_equal(r->status, OK);
  uint64_t held = r->reservation->reservation_id;
  pintuan_response_free(r);
  assert_int_equal(pintuan_reserve(c, "e", "u2", 1, "waits", &r), 0);
  assert_int_equal(r->status, PINTUAN__V1__STATUS__WAITLISTED);
  pintuan_response_free(r);
  pintuan_close(c);
  kill9(&d);
  /* the next daemon starts 5 s later: the 1 s hold is past its deadline */
  char later[] = "/tmp/pt-mirror-clock-XXXXXX";
  write_clock(later, PT_TEST_EPOCH_MS + 5000);
  const char *clock[] = {"--test-clock", later, NULL};
  start(&d, "a", true, clock);
  c = connect_or_die(&d);
  Pintuan__V1__Campaign *cp = get_campaign(c, "e", &r);
  assert_int_equal(cp->held, 1); /* u2's unit from the waitlist */
  assert_int_equal(cp->available, 2);
  pintuan_response_free(r);
  static char entries[65536];
  assert_int_equal(redis_cmd(&R, entries, sizeof entries, "XRANGE pintuan:{t}:events - +"), 0);
  assert_int_equal(count_events(entries, "HOLD_EXPIRED"), 1);
  assert_int_equal(count_events(entries, "WAITLIST_GRANTED"), 1);
  char want[160];
  /* at_ms: when it was decided (the load); expires_ms: the deadline it met */
  snprintf(want, sizeof want, "\ntype\nHOLD_EXPIRED\nat_ms\n%lld\ncampaign\ne\nuser\nu1\n"
           "reservation\n%" PRIu64 "\nquantity\n3\nexpires_ms\n%lld\n", PT_TEST_EPOCH_MS + 5000,
           held, PT_TEST_EPOCH_MS + 1000);
  if (!strstr(entries, want)) fail_msg("no entry %s in\n%s", want, entries);
  pintuan_close(c);
  kill9(&d); /* a later recovery replays the expiry: no second event */
  start(&d, "a", true, clock);
  assert_int_equal(redis_cmd(&R, entries, sizeof entries, "XRANGE pintuan:{t}:events - +"), 0);
  assert_int_equal(count_events(entries, "HOLD_EXPIRED"), 1);
  assert_int_equal(count_events(entries, "WAITLIST_GRANTED"), 1);
  assert_int_equal(daemon_stop(&d), 0);
  unlink(later);
}

/* Redis stops answering (SIGSTOP) under pipelined traffic: the records
 * toward it are bounded; past max_backlog_bytes new mutations get
 * OVERLOADED at once (reads are answered), the ones accepted wait for their
 * acknowledgement; Redis continued, they are all answered OK and held. */
static void test_backlog_bounded_while_redis_stalls(void **state) {
  (void)state;
  lease_ms = "60000"; /* the stall must not cost the lease: this test is about the backlog */
  char conf[] = "/tmp/pt-mirror-conf-XXXXXX";
  write_temp(conf, "[mirror]\nmax_backlog_bytes = 65536\nmax_inflight = 1\n");
  const char *more[] = {"-c", conf, NULL};
  pt_daemon d;
  start(&d, "a", true, more);
  pintuan_client *c = connect_or_die(&d);
  pintuan_set_failover(c, 0, 0);
  assert_int_equal(create_flash(c, "s", 1000000, 0, 600000, 0), OK);
  kill(R.pid, SIGSTOP);
  enum { N = 4000 };
  send_reserves(c, "s", "p", N);
  assert_int_equal(daemon_log_wait(&d, "mirror backlog full", PT_WAIT_MS, NULL, 0), 0);
  /* another client, meanwhile: its mutation is refused OVERLOADED at once
   * (a refusal says nothing of the state, so it does not wait for Redis) */
  pintuan_client *o = connect_or_die(&d);
  pintuan_set_failover(o, 0, 0);
  pintuan_response *r;
  if (pintuan_reserve(o, "s", "other", 1, "other", &r)) fail_msg("reserve: %s", pintuan_error(o));
  assert_int_equal(r->status, PINTUAN__V1__STATUS__OVERLOADED);
  pintuan_response_free(r);
  assert_int_equal(daemon_log_wait(&d, "mirror backlog full", 0, NULL, 0), -1); /* logged once */
  kill(R.pid, SIGCONT);
  /* the pipelined requests: those decided before the backlog filled are
   * acknowledged and answered OK, those after it OVERLOADED */
  int ok = 0;
  for (int i = 0; i < N; i++) {
    assert_int_equal(pintuan_recv(c, &r), 0);
    if (r->status == OK) ok++;
    else if (r->status != PINTUAN__V1__STATUS__OVERLOADED)
      fail_msg("reply %d: %s", i, pintuan_status_str(r->status));
    pintuan_response_free(r);
  }
  assert_true(ok > 0);
  Pintuan__V1__Campaign *cp = get_campaign(o, "s", &r);
  assert_int_equal(cp->held, ok); /* every OK holds its unit, nothing else does */
  pintuan_response_free(r);
  assert_int_equal(daemon_log_wait(&d, "mirror backlog drained", PT_WAIT_MS, NULL, 0), 0);
  assert_int_equal(pintuan_reserve(o, "s", "other", 1, "other-again", &r), 0);
  assert_int_equal(r->status, OK);
  pintuan_response_free(r);
  pintuan_close(c);
  pintuan_close(o);
  assert_int_equal(daemon_stop(&d), 0);
  unlink(conf);
}

static void await_metric(const pt_daemon *d, const char *series, double want) {
  double got;
  if (metric_await(d, series, want, &got)) fail_msg("%s stayed %g, not %g", series, got, want);
}

/* With one append in flight (max_inflight 1) and Redis stopped, five
 * reserves decided in five turns make two journal records, not five: the
 * one in flight, and one that the four later turns joined. Redis back, all
 * five are answered OK, and a restart finds all five. */
static void test_turns_join_one_record_while_redis_stalls(void **state) {
  (void)state;
  lease_ms = "60000"; /* the stall must not cost the lease */
  char conf[] = "/tmp/pt-mirror-conf-XXXXXX";
  write_temp(conf, "[mirror]\nmax_inflight = 1\n");
  const char *more[] = {"-c", conf, NULL};
  pt_daemon d;
  start(&d, "a", true, more);
  pintuan_client *o = connect_or_die(&d);
  assert_int_equal(create_flash(o, "j", 100, 0, 600000, 0), OK);
  char out[64];
  assert_int_equal(redis_cmd(&R, out, sizeof out, "XLEN pintuan:{t}:journal"), 0);
  long long records = atoll(out);
  kill(R.pid, SIGSTOP);
  enum { N = 5 };
  pintuan_client *c[N];
  for (int k = 0; k < N; k++) {
    char rid[16], user[16];
    snprintf(rid, sizeof rid, "j%d", k), snprintf(user, sizeof user, "u%d", k);
    c[k] = connect_or_die(&d);
    pintuan_set_failover(c[k], 0, 0);
    pintuan_request q;
    Pintuan__V1__Reserve m;
    pintuan_req_reserve(&q, &m, "j", user, 1, rid);
    assert_int_equal(pintuan_send(c[k], &q), 0);
    assert_int_equal(pintuan_flush(c[k]), 0);
    /* decided (its reply held) before the next one is sent: turns of their own */
    await_metric(&d, "pintuan_requests_total{op=\"reserve\",status=\"OK\"}", k + 1);
  }
  await_metric(&d, "pintuan_mirror_records_in_flight", 1);
  await_metric(&d, "pintuan_mirror_unacknowledged_records", 2);
  kill(R.pid, SIGCONT);
  for (int k = 0; k < N; k++) {
    pintuan_response *r;
    assert_int_equal(pintuan_recv(c[k], &r), 0);
    assert_int_equal(r->status, OK);
    pintuan_response_free(r);
    pintuan_close(c[k]);
  }
  assert_int_equal(redis_cmd(&R, out, sizeof out, "XLEN pintuan:{t}:journal"), 0);
  assert_int_equal(atoll(out), records + 2);
  pintuan_close(o);
  kill9(&d);
  start(&d, "a", true, more);
  o = connect_or_die(&d);
  pintuan_response *r;
  Pintuan__V1__Campaign *cp = get_campaign(o, "j", &r);
  assert_int_equal(cp->held, N);
  pintuan_response_free(r);
  pintuan_close(o);
  assert_int_equal(daemon_stop(&d), 0);
  unlink(conf);
}

/* The daemon (its turns unbounded: --turn-frames as high as it goes) stopped
 * while 8 clients pipeline 2,000 reserves each, with ids near their 64-byte
 * limit: once continued, its first turn takes what it reads of each (a
 * record of a MB or more). The record goes to Redis in parts of at most
 * 256 KiB, every reserve is answered OK, and a restart finds them all. */
#define BIG_CAMPAIGN "big-campaign-with-a-long-id-0123456789abcdefghijklmnopqr" /* "create-" and it: 63 bytes */
static void test_big_turn_goes_in_parts(void **state) {
  (void)state;
  pt_daemon d;
  const char *unbounded[] = {"--turn-frames", "16777216", NULL};
  start(&d, "a", true, unbounded);
  pintuan_client *o = connect_or_die(&d);
  assert_int_equal(create_flash(o, BIG_CAMPAIGN, 1000000, 0, 600000, 0), OK);
  enum { C = 8, N = 2000 };
  pintuan_client *c[C];
  for (int k = 0; k < C; k++) c[k] = connect_or_die(&d);
  kill(d.pid, SIGSTOP);
  for (int k = 0; k < C; k++) {
    char prefix[64];
    snprintf(prefix, sizeof prefix, "b%d.request-id-padded-towards-the-limit-0123456789.", k);
    send_reserves(c[k], BIG_CAMPAIGN, prefix, N); /* into the stopped daemon's socket */
  }
  kill(d.pid, SIGCONT);
  for (int k = 0; k < C; k++) {
    for (int i = 0; i < N; i++) {
      pintuan_response *r;
      assert_int_equal(pintuan_recv(c[k], &r), 0);
      if (r->status != OK) fail_msg("reply %d.%d: %s", k, i, pintuan_status_str(r->status));
      pintuan_response_free(r);
    }
    pintuan_close(c[k]);
  }
  char *text = admin_get(&d, "/metrics");
  assert_non_null(text);
  assert_true(metric_value(text, "pintuan_mirror_record_parts_total") >= 2);
  free(text);
  /* the journal's records: none over a part (256 KiB) and one input */
  redisContext *rc = redisConnect("127.0.0.1", R.port);
  assert_true(rc && !rc->err);
  redisReply *j = redisCommand(rc, "XRANGE pintuan:{t}:journal - +");
  assert_true(j && j->type == REDIS_REPLY_ARRAY);
  size_t biggest = 0, total = 0;
  for (size_t i = 0; i < j->elements; i++) {
    redisReply *f = j->element[i]->element[1];
    for (size_t k = 0; k + 1 < f->elements; k += 2)
      if (!strcmp(f->element[k]->str, "r")) {
        total += f->element[k + 1]->len;
        if (f->element[k + 1]->len > biggest) biggest = f->element[k + 1]->len;
      }
  }
  freeReplyObject(j);
  redisFree(rc);
  if (total < (512u << 10)) fail_msg("%zu bytes of records: not 2 parts' worth", total);
  if (biggest > (256u << 10) + 256) fail_msg("a record of %zu bytes", biggest);
  pintuan_close(o);
  kill9(&d);
  start(&d, "a", true, NULL);
  o = connect_or_die(&d);
  pintuan_response *r;
  Pintuan__V1__Campaign *cp = get_campaign(o, BIG_CAMPAIGN, &r);
  assert_int_equal(cp->held, C * N);
  pintuan_response_free(r);
  pintuan_close(o);
  assert_int_equal(daemon_stop(&d), 0);
}

/* A stampede's holds all falling due at once (a sale's do, hold_ms after
 * its first seconds) expire in slices of engine.due_per_turn, the loop
 * serving between them: the daemon stays the primary (before, the whole
 * expiry ran in one turn and one record, and past a few million holds the
 * renewal queued behind it lost the lease, again after every recovery),
 * every hold expires once with one event, and a restart finds the same. */
static void test_mass_expiry_in_slices(void **state) {
  (void)state;
  char conf[] = "/tmp/pt-mirror-conf-XXXXXX";
  write_temp(conf, "[engine]\ndue_per_turn = 100\n");
  const char *more[] = {"-c", conf, NULL};
  pt_daemon d;
  start(&d, "a", true, more);
  pintuan_client *c = connect_or_die(&d);
  enum { N = 5000, SLICE = 100 };
  assert_int_equal(create_flash(c, "m", N, 0, 1000, 0), OK);
  send_reserves(c, "m", "x", N);
  recv_ok(c, N);
  pintuan_response *r;
  set_time(&d, PT_TEST_EPOCH_MS + 5000); /* every hold is past its deadline */
  /* served while it drains: each answer adds up, whatever slice it sees */
  Pintuan__V1__Campaign *cp = get_campaign(c, "m", &r);
  assert_int_equal(cp->available + cp->held + cp->sold, N);
  pintuan_response_free(r);
  await_metric(&d, "pintuan_holds_expired_total", N);
  char *text = admin_get(&d, "/metrics");
  assert_non_null(text);
  double deferred = metric_value(text, "pintuan_due_deferred_turns_total");
  if (deferred < N / SLICE - 1) fail_msg("%g turns left due work: not slices of %d", deferred, SLICE);
  assert_true(metric_value(text, "pintuan_mirror_step_downs_total") == 0);
  free(text);
  cp = get_campaign(c, "m", &r);
  assert_int_equal(cp->available, N);
  assert_int_equal(cp->held, 0);
  pintuan_response_free(r);
  static char entries[4 << 20];
  assert_int_equal(redis_cmd(&R, entries, sizeof entries, "XRANGE pintuan:{t}:events - +"), 0);
  assert_int_equal(count_events(entries, "HOLD_EXPIRED"), N);
  pintuan_close(c);
  kill9(&d); /* the journal holds the slices: a recovery decides them again, no event twice */
  char later[] = "/tmp/pt-mirror-clock-XXXXXX";
  write_clock(later, PT_TEST_EPOCH_MS + 5000);
  const char *again[] = {"-c", conf, "--test-clock", later, NULL};
  start(&d, "a", true, again);
  c = connect_or_die(&d);
  cp = get_campaign(c, "m", &r);
  assert_int_equal(cp->available, N);
  assert_int_equal(cp->held, 0);
  pintuan_response_free(r);
  assert_int_equal(redis_cmd(&R, entries, sizeof entries, "XRANGE pintuan:{t}:events - +"), 0);
  assert_int_equal(count_events(entries, "HOLD_EXPIRED"), N);
  pintuan_close(c);
  assert_int_equal(daemon_stop(&d), 0);
  unlink(conf);
  unlink(later);
}

/* The primary killed in the middle of a mass expiry, with Redis stopped so
 * that the drain cannot finish first (due work waits while records wait for
 * Redis): the next primary goes on from what Redis holds, and every hold
 * ends expired with exactly one HOLD_EXPIRED entry. */
static void test_mass_expiry_killed_midway(void **state) {
  (void)state;
  char conf[] = "/tmp/pt-mirror-conf-XXXXXX";
  write_temp(conf, "[engine]\ndue_per_turn = 100\n[mirror]\nmax_backlog_bytes = 65536\n");
  const char *more[] = {"-c", conf, NULL};
  pt_daemon d;
  start(&d, "a", true, more);
  pintuan_client *c = connect_or_die(&d);
  enum { N = 3000 };
  assert_int_equal(create_flash(c, "k", N, 0, 1000, 0), OK);
  for (int i = 0; i < N; i += 200) { /* rounds that stay inside the small backlog */
    char prefix[16];
    snprintf(prefix, sizeof prefix, "k%d.", i);
    send_reserves(c, "k", prefix, 200);
    recv_ok(c, 200);
  }
  pintuan_response *r;
  pintuan_close(c);
  kill(R.pid, SIGSTOP);
  set_time(&d, PT_TEST_EPOCH_MS + 5000);
  /* the admin port's answers are not held for Redis: each request ends a
   * turn, which runs a slice, until the records waiting hold the rest back */
  double expired = 0;
  for (int64_t end = pt_mono_ns() / 1000000 + PT_WAIT_MS; expired < 100 && pt_mono_ns() / 1000000 < end;) {
    char *text = admin_get(&d, "/metrics");
    expired = text ? metric_value(text, "pintuan_holds_expired_total") : 0;
    free(text);
  }
  if (expired < 100 || expired >= N) fail_msg("%g holds expired: not midway", expired);
  kill9(&d);
  kill(R.pid, SIGCONT);
  char later[] = "/tmp/pt-mirror-clock-XXXXXX";
  write_clock(later, PT_TEST_EPOCH_MS + 5000);
  const char *again[] = {"-c", conf, "--test-clock", later, NULL};
  start(&d, "a", true, again);
  await_metric(&d, "pintuan_holds", 0);
  c = connect_or_die(&d);
  Pintuan__V1__Campaign *cp = get_campaign(c, "k", &r);
  assert_int_equal(cp->available, N);
  assert_int_equal(cp->held, 0);
  pintuan_response_free(r);
  static char entries[4 << 20];
  assert_int_equal(redis_cmd(&R, entries, sizeof entries, "XRANGE pintuan:{t}:events - +"), 0);
  assert_int_equal(count_events(entries, "HOLD_EXPIRED"), N);
  pintuan_close(c);
  assert_int_equal(daemon_stop(&d), 0);
  unlink(conf);
  unlink(later);
}

/* A campaign retired by a primary is retired for the one that recovers
 * after a kill -9, from the journal alone and through a snapshot: its final
 * counters, its holds forgotten; the limits record carries the retention. */
static void test_retired_campaign_survives_restart(void **state) {
  (void)state;
  const char *more[] = {"--campaign-retention", "1000", NULL};
  pt_daemon d;
  start(&d, "a", true, more);
  pintuan_client *c = connect_or_die(&d);
  assert_int_equal(create_flash(c, "old", 10, 0, 600000, 0), OK);
  assert_int_equal(create_flash(c, "new", 10, 0, 600000, 0), OK);
  pintuan_response *r;
  assert_int_equal(pintuan_reserve(c, "old", "ann", 3, "r1", &r), 0);
  assert_int_equal(r->status, OK);
  uint64_t res = r->reservation->reservation_id;
  pintuan_response_free(r);
  assert_int_equal(pintuan_confirm(c, "old", res, "ann", "p1", &r), 0);
  assert_int_equal(r->status, OK);
  pintuan_response_free(r);
  assert_int_equal(pintuan_end_campaign(c, "old", "end-old", &r), 0);
  pintuan_response_free(r);
  advance_time(&d, c, 2000);
  Pintuan__V1__Campaign *cp = get_campaign(c, "old", &r);
  assert_true(cp->retired);
  assert_int_equal(cp->sold, 3);
  pintuan_response_free(r);
  await_metric(&d, "pintuan_campaigns_retired", 1);
  pintuan_close(c);
  for (int round = 0; round < 2; round++) { /* from the journal; then from a snapshot */
    int64_t now = d.now;
    kill9(&d);
    char later[] = "/tmp/pt-mirror-clock-XXXXXX";
    write_clock(later, now);
    const char *again[] = {"--campaign-retention", "1000", "--test-clock", later, "--snapshot-after", "1", NULL};
    start(&d, "a", true, again);
    d.now = now;
    c = connect_or_die(&d);
    cp = get_campaign(c, "old", &r);
    assert_true(cp->retired);
    assert_int_equal(cp->sold, 3), assert_int_equal(cp->available, 7);
    pintuan_response_free(r);
    assert_int_equal(pintuan_get_reservation(c, "old", res, "ann", &r), 0);
    assert_int_equal(r->status, PINTUAN__V1__STATUS__NOT_FOUND);
    pintuan_response_free(r);
    await_metric(&d, "pintuan_campaigns_retired", 1);
    if (round == 0) { /* a record past --snapshot-after 1: the next recovery starts from a snapshot */
      assert_int_equal(create_flash(c, "newer", 10, 0, 600000, 0), OK);
      char out[64] = "0";
      for (int waited = 0; atoi(out) != 1 && waited < PT_WAIT_MS; waited += 10) {
        assert_int_equal(redis_cmd(&R, out, sizeof out, "EXISTS pintuan:{t}:snapshot"), 0);
        if (atoi(out) != 1) usleep(10000);
      }
      assert_int_equal(atoi(out), 1);
    }
    pintuan_close(c);
    unlink(later);
  }
  assert_int_equal(daemon_stop(&d), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_retired_campaign_survives_restart, redis_up, redis_down),
      cmocka_unit_test_setup_teardown(test_restart_after_kill9, redis_up, redis_down),
      cmocka_unit_test_setup_teardown(test_restart_through_snapshots, redis_up, redis_down),
      cmocka_unit_test_setup_teardown(test_damaged_snapshot_refused, redis_up, redis_down),
      cmocka_unit_test_setup_teardown(test_snapshot_chunks_raw_and_compressed, redis_up, redis_down),
      cmocka_unit_test_setup_teardown(test_snapshot_commit_waits_for_its_journal, redis_up, redis_down),
      cmocka_unit_test_setup_teardown(test_long_restore_keeps_the_lease, redis_up, redis_down),
      cmocka_unit_test_setup_teardown(test_kill9_during_stampede, redis_up, redis_down),
      cmocka_unit_test_setup_teardown(test_failover_under_load, redis_up, redis_down),
      cmocka_unit_test_setup_teardown(test_sigstop_primary_is_deposed, redis_up, redis_down),
      cmocka_unit_test_setup_teardown(test_redis_outage, redis_up, redis_down),
      cmocka_unit_test_setup_teardown(test_events_stream_and_expiry_on_load, redis_up, redis_down),
      cmocka_unit_test_setup_teardown(test_backlog_bounded_while_redis_stalls, redis_up, redis_down),
      cmocka_unit_test_setup_teardown(test_turns_join_one_record_while_redis_stalls, redis_up,
                                      redis_down),
      cmocka_unit_test_setup_teardown(test_big_turn_goes_in_parts, redis_up, redis_down),
      cmocka_unit_test_setup_teardown(test_mass_expiry_in_slices, redis_up, redis_down),
      cmocka_unit_test_setup_teardown(test_mass_expiry_killed_midway, redis_up, redis_down),
  };
  if (getenv("PT_TEST_FILTER")) cmocka_set_test_filter(getenv("PT_TEST_FILTER"));
  return cmocka_run_group_tests_name("mirror", tests, NULL, NULL);
}
