/* Every client bounded (the security review: 40 connections that never read
 * pinned 396 MB; 50 idle sockets held every slot; one connection queued
 * what it liked): requests in flight per connection, a deadline for
 * replies nobody reads, an output budget for all, connections per address,
 * a first request in time, an idle timeout. Real daemons, real TCP on
 * 127.0.0.0/8; every wait is for an event (a reply, a close, a metric). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "frame.h"
#include "harness.h"
#include "shard.h"

#define OK PINTUAN__V1__STATUS__OK

static pt_daemon D;

static void start(const char *const *args) { assert_int_equal(daemon_start(&D, args), 0); }

/* A config file of these [server] lines (what has no flag). */
static const char *conf(const char *lines) {
  static char path[] = "/tmp/pt-limits-XXXXXX";
  strcpy(path, "/tmp/pt-limits-XXXXXX");
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  dprintf(fd, "[server]\n%s", lines);
  close(fd);
  return path;
}
static int stop(void **state) {
  (void)state;
  return daemon_stop(&D);
}

/* A ping frame with a 64-byte payload (its reply is ~80 bytes). */
static size_t ping_frame(uint8_t *buf, uint64_t id) {
  static const uint8_t payload[64] = {0};
  pintuan_request q;
  Pintuan__V1__Ping p;
  pintuan_req_ping(&q, &p);
  p.has_payload = 1, p.payload = (ProtobufCBinaryData){sizeof payload, (uint8_t *)payload};
  q.has_id = 1, q.id = id;
  size_t n = pintuan__v1__request__pack(&q, buf + PT_FRAME_HEADER);
  pt_be32_put(buf, (uint32_t)n);
  return PT_FRAME_HEADER + n;
}

/* A connection from src (127.x.y.z) with a small receive buffer. */
static int connect_from(const char *src, int rcvbuf) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (rcvbuf) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  struct sockaddr_in a = {.sin_family = AF_INET};
  inet_pton(AF_INET, src, &a.sin_addr);
  assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
  a.sin_port = htons((uint16_t)D.port);
  inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
  return fd;
}

/* Sends pings on fd, never reading, until series reads at least min or
 * the daemon closes fd; bounded by PT_WAIT_MS. */
static void flood_until(int fd, const char *series, double min) {
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  uint8_t f[128];
  uint64_t id = 1;
  size_t n = 0, off = 0; /* f[off..n) is still to send */
  char *m;
  for (int rounds = 0; rounds < PT_WAIT_MS / 20; rounds++) {
    for (;;) { /* as much as the socket takes, whole frames only */
      if (off == n) n = ping_frame(f, id++), off = 0;
      ssize_t w = send(fd, f + off, n - off, MSG_NOSIGNAL);
      if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      if (w < 0) return; /* closed by the daemon */
      off += (size_t)w;
    }
    m = admin_get(&D, "/metrics");
    double v = metric_value(m, series);
    free(m);
    if (v >= min) return;
    struct pollfd p = {.fd = fd, .events = POLLOUT};
    poll(&p, 1, 20); /* room again, or the next look at the metric */
  }
  m = admin_get(&D, "/metrics");
  fail_msg("%s never reached %g (%g; paused %g, unsent %g, pauses %g)", series, min, metric_value(m, series),
           metric_value(m, "pintuan_connections_paused"), metric_value(m, "pintuan_unsent_bytes"),
           metric_value(m, "pintuan_backpressure_pauses_total"));
}

static void ping_ok(pintuan_client *c) {
  pintuan_response *r;
  assert_int_equal(pintuan_ping(c, &r), 0);
  assert_int_equal(r->status, OK);
  pintuan_response_free(r);
}

/* At most N replies decided and not written yet, per connection: a
 * pipeline of 2000 is taken N at a time, every one answered in order. */
static void test_requests_in_flight(void **state) {
  (void)state;
  const char *args[] = {"--max-requests-in-flight", "50", NULL};
  start(args);
  int fd = raw_connect(&D);
  enum { N = 2000 };
  uint8_t *buf = malloc(N * 128);
  size_t len = 0;
  for (int i = 0; i < N; i++) len += ping_frame(buf + len, (uint64_t)i + 1);
  assert_int_equal(raw_send(fd, buf, len), 0);
  free(buf);
  for (int i = 0; i < N; i++) {
    int eof;
    pintuan_response *r = raw_recv(fd, PT_WAIT_MS, &eof);
    assert_non_null(r);
    assert_int_equal(r->id, (uint64_t)i + 1);
    pintuan_response_free(r);
  }
  close(fd);
  char *m = admin_get(&D, "/metrics");
  assert_true(metric_value(m, "pintuan_backpressure_pauses_total") >= N / 50 - 1);
  free(m);
}

/* A client that takes none of its replies is dropped after the deadline;
 * another is served all along. */
static void test_reply_deadline(void **state) {
  (void)state;
  const char *args[] = {"--reply-deadline", "300", "--log-level", "info", "-c", conf("output_high_water = 65536\n"), NULL};
  start(args);
  unlink(args[5]);
  pintuan_client *good = connect_or_die(&D);
  int fd = connect_from("127.0.0.1", 4096);
  flood_until(fd, "pintuan_connections_dropped_total{reason=\"reply_deadline\"}", 1);
  ping_ok(good);
  char line[512];
  assert_int_equal(daemon_log_wait(&D, "took none of its replies", PT_WAIT_MS, line, sizeof line), 0);
  close(fd);
  pintuan_close(good);
}

/* Past the output budget the connections holding the most unsent output
 * go, and what all hold comes back under it. */
static void test_output_budget(void **state) {
  (void)state;
  const char *args[] = {"--output-budget", "1048576", "--reply-deadline", "0", "-c",
                        conf("output_high_water = 8388608\noutput_hard_limit = 16777216\n"), NULL};
  start(args);
  unlink(args[5]);
  pintuan_client *good = connect_or_die(&D);
  int a = connect_from("127.0.0.1", 4096), b = connect_from("127.0.0.1", 4096);
  flood_until(a, "pintuan_unsent_bytes", 600000); /* a holds more than half the budget */
  flood_until(b, "pintuan_connections_dropped_total{reason=\"output_budget\"}", 1);
  char *m = admin_get(&D, "/metrics");
  assert_true(metric_value(m, "pintuan_unsent_bytes") <= 1048576);
  free(m);
  ping_ok(good);
  assert_int_equal(daemon_log_wait(&D, "past output_budget", PT_WAIT_MS, NULL, 0), 0);
  close(a), close(b);
  pintuan_close(good);
}

/* Connections per address: the one over the cap is refused with a
 * reason; another address is not counted with it; a slot freed is free. */
static void test_clients_per_ip(void **state) {
  (void)state;
  const char *args[] = {"--max-clients-per-ip", "3", NULL};
  start(args);
  pintuan_client *c[3];
  for (int i = 0; i < 3; i++) ping_ok(c[i] = connect_or_die(&D));
  int fd = connect_from("127.0.0.1", 0), eof = 0;
  pintuan_response *r = raw_recv(fd, PT_WAIT_MS, &eof);
  assert_non_null(r);
  assert_int_equal(r->status, PINTUAN__V1__STATUS__OVERLOADED);
  assert_string_equal(r->detail, "too many connections from your address");
  pintuan_response_free(r);
  assert_null(raw_recv(fd, PT_WAIT_MS, &eof));
  assert_int_equal(eof, 1);
  close(fd);
  int other = connect_from("127.0.0.2", 0); /* another address: its own count */
  pintuan_request q;
  Pintuan__V1__Ping p;
  pintuan_req_ping(&q, &p);
  q.has_id = 1, q.id = 9;
  assert_int_equal(raw_send_request(other, &q), 0);
  r = raw_recv(other, PT_WAIT_MS, &eof);
  assert_non_null(r);
  assert_int_equal(r->status, OK);
  pintuan_response_free(r);
  pintuan_close(c[0]);
  assert_int_equal(metric_await(&D, "pintuan_connections", 3, NULL), 0); /* c[1], c[2], other */
  ping_ok(c[0] = connect_or_die(&D));
  assert_int_equal(metric_await(&D, "pintuan_connections_refused_total{reason=\"per_ip\"}", 1, NULL), 0);
  for (int i = 0; i < 3; i++) pintuan_close(c[i]);
  close(other);
}

/* A connection that sends no request in time is closed; one that spoke
 * stays. */
static void test_first_request_timeout(void **state) {
  (void)state;
  const char *args[] = {"--first-request-timeout", "300", NULL};
  start(args);
  pintuan_client *spoke = connect_or_die(&D);
  ping_ok(spoke);
  int silent = raw_connect(&D), eof = 0;
  assert_null(raw_recv(silent, PT_WAIT_MS, &eof)); /* closed, nothing said */
  assert_int_equal(eof, 1);
  close(silent);
  ping_ok(spoke);
  assert_int_equal(metric_await(&D, "pintuan_connections_dropped_total{reason=\"silent\"}", 1, NULL), 0);
  pintuan_close(spoke);
}

/* An idle connection is closed; a subscriber, idle as long, waits on. */
static void test_idle_timeout(void **state) {
  (void)state;
  const char *args[] = {"--idle-timeout", "400", NULL};
  start(args);
  pintuan_client *sub = connect_or_die(&D);
  pintuan_request q;
  Pintuan__V1__Subscribe s;
  pintuan_req_subscribe(&q, &s, NULL, NULL, 0);
  pintuan_response *r;
  assert_int_equal(pintuan_call(sub, &q, &r), 0);
  assert_int_equal(r->status, OK);
  pintuan_response_free(r);
  int idle = raw_connect(&D), eof = 0; /* idle since after the subscriber */
  pintuan_request pq;
  Pintuan__V1__Ping p;
  pintuan_req_ping(&pq, &p);
  pq.has_id = 1, pq.id = 1;
  assert_int_equal(raw_send_request(idle, &pq), 0);
  r = raw_recv(idle, PT_WAIT_MS, &eof);
  assert_non_null(r);
  pintuan_response_free(r);
  assert_null(raw_recv(idle, PT_WAIT_MS, &eof)); /* then closed */
  assert_int_equal(eof, 1);
  close(idle);
  pintuan_set_failover(sub, 0, 0); /* its own connection, not a new one */
  ping_ok(sub);
  assert_int_equal(metric_await(&D, "pintuan_connections_dropped_total{reason=\"idle\"}", 1, NULL), 0);
  pintuan_close(sub);
}

static int reserve_st(pintuan_client *c, const char *user, int i) {
  char rid[32];
  snprintf(rid, sizeof rid, "%s-%d", user, i);
  pintuan_response *r;
  assert_int_equal(pintuan_reserve(c, "rl", user, 1, rid, &r), 0);
  int st = r->status;
  if (st == PINTUAN__V1__STATUS__RATE_LIMITED) assert_non_null(strstr(r->detail, "rate of"));
  pintuan_response_free(r);
  return st;
}

/* A user's rate (the review: one connection sustained 84k reserves/s):
 * its burst, then RATE_LIMITED until the daemon's clock refills it; other
 * users are not held back; the fast path's reserves and the general
 * path's reads count alike. */
static void test_user_rate(void **state) {
  (void)state;
  const char *args[] = {"--user-rate", "5:10", NULL};
  start(args);
  pintuan_client *c = connect_or_die(&D);
  assert_int_equal(create_flash(c, "rl", 1000, 0, 600000, 0), OK);
  for (int i = 0; i < 9; i++) assert_int_equal(reserve_st(c, "scalper", i), OK);
  pintuan_response *r;
  assert_int_equal(pintuan_get_holdings(c, "rl", "scalper", &r), 0); /* the 10th: a read */
  assert_int_equal(r->status, OK);
  pintuan_response_free(r);
  assert_int_equal(reserve_st(c, "scalper", 10), PINTUAN__V1__STATUS__RATE_LIMITED);
  assert_int_equal(pintuan_get_holdings(c, "rl", "scalper", &r), 0);
  assert_int_equal(r->status, PINTUAN__V1__STATUS__RATE_LIMITED);
  pintuan_response_free(r);
  assert_int_equal(reserve_st(c, "shopper", 0), OK);
  advance_time(&D, c, 1000); /* 5 tokens back */
  for (int i = 11; i < 16; i++) assert_int_equal(reserve_st(c, "scalper", i), OK);
  assert_int_equal(reserve_st(c, "scalper", 16), PINTUAN__V1__STATUS__RATE_LIMITED);
  Pintuan__V1__Campaign *cp = get_campaign(c, "rl", &r);
  assert_int_equal(cp->held, 9 + 1 + 5); /* what was refused changed nothing */
  pintuan_response_free(r);
  assert_int_equal(metric_await(&D, "pintuan_rate_limited_total{scope=\"user\"}", 3, NULL), 0);
  /* a shopper over the user rate does not slow the connection that carries it */
  char *m = admin_get(&D, "/metrics");
  assert_int_equal(metric_value(m, "pintuan_demotions_total"), 0);
  free(m);
  pintuan_close(c);
}

/* A connection's rate, and a key's shared by its connections. */
static void test_connection_and_key_rates(void **state) {
  (void)state;
  char dir[] = "/tmp/pt-rate-XXXXXX", keys[64], ops[64], shop[64], cmd[256];
  assert_non_null(mkdtemp(dir));
  assert_int_equal(make_key(dir, "ops", "admin", ops), 0);
  assert_int_equal(make_key(dir, "shop", "storefront", shop), 0);
  snprintf(keys, sizeof keys, "%s/keys", dir);
  snprintf(cmd, sizeof cmd, "sed -i 's/^shop .*/& rate=2/' '%s'", keys);
  assert_int_equal(system(cmd), 0);
  const char *args[] = {"--keys", keys, "--user-rate", "0", "--connection-rate", "4:4", NULL};
  start(args);
  pintuan_client *admin = connect_as(&D, "ops", ops);
  assert_int_equal(create_flash(admin, "rl", 1000, 0, 600000, 0), OK); /* its 2nd, after the Hello */
  assert_int_equal(reserve_st(admin, "a", 0), OK);
  assert_int_equal(reserve_st(admin, "b", 0), OK);
  assert_int_equal(reserve_st(admin, "c", 0), PINTUAN__V1__STATUS__RATE_LIMITED); /* the connection's */
  pintuan_client *s1 = connect_as(&D, "shop", shop), *s2 = connect_as(&D, "shop", shop);
  assert_int_equal(reserve_st(s1, "d", 0), OK); /* the key: rate 2, burst 4, both connections */
  assert_int_equal(reserve_st(s2, "e", 0), OK);
  assert_int_equal(reserve_st(s1, "f", 0), OK);
  assert_int_equal(reserve_st(s2, "g", 0), OK);
  assert_int_equal(reserve_st(s1, "h", 0), PINTUAN__V1__STATUS__RATE_LIMITED);
  assert_int_equal(reserve_st(s2, "i", 0), PINTUAN__V1__STATUS__RATE_LIMITED);
  advance_time(&D, s2, 1000); /* the key: 2 tokens back (advance_time pings: s2's 4th) */
  assert_int_equal(reserve_st(s1, "j", 0), OK);
  double got = 0;
  if (metric_await(&D, "pintuan_rate_limited_total{scope=\"key\"}", 2, &got)) fail_msg("key limited %g", got);
  assert_int_equal(metric_await(&D, "pintuan_rate_limited_total{scope=\"connection\"}", 1, NULL), 0);
  /* the connection or key over its rate: held to a few requests a turn */
  assert_int_equal(metric_at_least(&D, "pintuan_demotions_total", 3), 0); /* the admin once, the shop connections once each */
  pintuan_close(admin), pintuan_close(s1), pintuan_close(s2);
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  assert_int_equal(system(cmd), 0);
}

/* The tables' caps from the daemon's configuration: a clear status, and
 * nothing changed. */
static void test_table_caps(void **state) {
  (void)state;
  const char *args[] = {"--max-campaigns", "2", "--max-waitlist", "1", "--user-rate", "0", NULL};
  start(args);
  pintuan_client *c = connect_or_die(&D);
  assert_int_equal(create_flash(c, "rl", 1, 0, 600000, 1), OK);
  assert_int_equal(create_flash(c, "two", 1, 0, 600000, 0), OK);
  assert_int_equal(create_flash(c, "three", 1, 0, 600000, 0), PINTUAN__V1__STATUS__RESOURCE_EXHAUSTED);
  assert_int_equal(reserve_st(c, "a", 0), OK);
  assert_int_equal(reserve_st(c, "b", 0), PINTUAN__V1__STATUS__WAITLISTED);
  assert_int_equal(reserve_st(c, "c", 0), PINTUAN__V1__STATUS__RESOURCE_EXHAUSTED);
  pintuan_response *r;
  assert_int_equal(pintuan_get_campaign(c, "three", &r), 0);
  assert_int_equal(r->status, PINTUAN__V1__STATUS__NOT_FOUND);
  pintuan_response_free(r);
  pintuan_close(c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_teardown(test_requests_in_flight, stop),
      cmocka_unit_test_teardown(test_reply_deadline, stop),
      cmocka_unit_test_teardown(test_output_budget, stop),
      cmocka_unit_test_teardown(test_clients_per_ip, stop),
      cmocka_unit_test_teardown(test_first_request_timeout, stop),
      cmocka_unit_test_teardown(test_idle_timeout, stop),
      cmocka_unit_test_teardown(test_user_rate, stop),
      cmocka_unit_test_teardown(test_connection_and_key_rates, stop),
      cmocka_unit_test_teardown(test_table_caps, stop),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
