/* The server's fairness and its bounds judged after a long turn,
 * in-process over real TCP on 127.0.0.1, turn by turn (a uv_prepare ends
 * each turn with pt_server_flush, as the daemon's does):
 * - a connection flooding frames hands on a bounded share a turn, and
 *   another connection's frame is handed on in the meantime, not after the
 *   flood;
 * - the input a connection keeps stays within one read however long it
 *   floods while its replies are capped (max_inflight);
 * - a turn that outlasts first_frame_ms does not drop, as silent, a
 *   connection whose first frame waits in its socket;
 * - connections waiting for their turn get it though nothing else
 *   happens (the loop does not sleep on them);
 * - a demoted connection (refused for its rate) hands on a few frames a
 *   turn while another floods at its full share;
 * - the recycled buffers are counted (they are given back before any
 *   connection is dropped for output_budget), and past the budget the
 *   connection that holds the most is dropped, the others served. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "frame.h"
#include "net/server.h"

enum { MAXC = 8 };

static uv_loop_t loop;
static uv_prepare_t turn_end;
static pt_server *srv;
static uint64_t turns;

/* frames handed on per connection (in accept order), in all and this turn */
static pt_conn *conns[MAXC];
static unsigned total[MAXC], this_turn[MAXC], most_in_a_turn[MAXC];
static int closes;
static size_t kept_max;
static int spin_fd = -1; /* "spin": sends a frame on this socket, then holds the loop */

static int index_of(pt_conn *c) {
  for (int i = 0; i < MAXC; i++) {
    if (conns[i] == c) return i;
    if (!conns[i]) return conns[i] = c, i;
  }
  fail_msg("more connections than the test made");
  return -1;
}

static void send_all(int fd, const uint8_t *p, size_t n);

static void on_frame(void *ctx, pt_conn *c, const uint8_t *msg, size_t len, const void *note) {
  (void)ctx, (void)note;
  int i = index_of(c);
  total[i]++, this_turn[i]++;
  memcpy(pt_conn_reply_stateless(c, len), msg, len);
  if (len == 1 && msg[0] == 'd') pt_conn_demote(c); /* as the service does for a refused rate */
  if (len == 4 && !memcmp(msg, "spin", 4) && spin_fd >= 0) {
    uint8_t f[5] = {0, 0, 0, 1, 'x'};
    send_all(spin_fd, f, sizeof f);
    /* a long turn: twice first_frame_ms on the loop's clock */
    uv_update_time(&loop);
    uint64_t until = uv_now(&loop) + 200;
    while (uv_now(&loop) < until) uv_update_time(&loop);
  }
}
static void on_protocol_error(void *ctx, pt_conn *c, int status, const char *detail) {
  (void)ctx, (void)c, (void)status, (void)detail;
}
static void on_close(void *ctx, pt_conn *c) { (void)ctx, (void)c, closes++; }
static const pt_server_hooks hooks = {.on_frame = on_frame, .on_protocol_error = on_protocol_error,
                                      .on_close = on_close};

static bool slept_on_waiters; /* a turn ended with connections waiting and the loop free to sleep */

static void on_turn_end(uv_prepare_t *h) {
  (void)h;
  pt_server_flush(srv);
  pt_server_stats st;
  pt_server_stats_get(srv, &st);
  if (st.waiting && uv_backend_timeout(&loop) != 0) slept_on_waiters = true;
  if (st.kept > kept_max) kept_max = st.kept;
  for (int i = 0; i < MAXC; i++) {
    if (this_turn[i] > most_in_a_turn[i]) most_in_a_turn[i] = this_turn[i];
    this_turn[i] = 0;
  }
  turns++;
}

static void start_with(pt_server_config cfg) {
  uv_loop_init(&loop);
  char err[256];
  assert_int_equal(pt_server_resolve(&cfg, "127.0.0.1", 0, err, sizeof err), 0);
  srv = pt_server_start(&loop, &cfg, &hooks, err, sizeof err);
  assert_non_null(srv);
  uv_prepare_init(&loop, &turn_end);
  uv_prepare_start(&turn_end, on_turn_end);
  memset(conns, 0, sizeof conns), memset(total, 0, sizeof total);
  memset(this_turn, 0, sizeof this_turn), memset(most_in_a_turn, 0, sizeof most_in_a_turn);
  closes = 0, kept_max = 0, turns = 0, spin_fd = -1, slept_on_waiters = false;
}

static int stop(void **state) {
  (void)state;
  uv_close((uv_handle_t *)&turn_end, NULL);
  pt_server_stop(srv, NULL, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&loop), 0);
  return 0;
}

static int client(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  int big = 4 << 20; /* the floods fit in the send buffer (capped at net.core.wmem_max: 208 KiB at least) */
  setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)pt_server_port(srv)),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
  return fd;
}

/* Blocking: the kernel's buffers hold what the tests send. */
static void send_all(int fd, const uint8_t *p, size_t n) {
  while (n) {
    ssize_t k = send(fd, p, n, 0);
    assert_true(k > 0);
    p += k, n -= (size_t)k;
  }
}

/* n frames of one byte each, back to back */
static uint8_t *pings(size_t n) {
  uint8_t *b = malloc(n * 5);
  for (size_t i = 0; i < n; i++) pt_be32_put(b + 5 * i, 1), b[5 * i + 4] = 'p';
  return b;
}

/* Reads what is there (the replies), without waiting. */
static size_t drain(int fd) {
  static uint8_t sink[1 << 16];
  size_t got = 0;
  ssize_t k;
  while ((k = recv(fd, sink, sizeof sink, MSG_DONTWAIT)) > 0) got += (size_t)k;
  assert_true(k == 0 || errno == EAGAIN || errno == EWOULDBLOCK);
  return got;
}

/* A flood of 16,000 frames in one connection's socket, then one frame on
 * another: the other is handed on while most of the flood still waits, and
 * no turn hands on more than a turn's frames (512) of the flood. */
static void test_flood_takes_turns(void **state) {
  (void)state;
  start_with((pt_server_config){.max_frame = 1024, .out_high = 64 << 20, .out_hard = 128 << 20,
                                .max_clients = 10, .frame_timeout_ms = 10000});
  enum { N = 16000 };
  int a = client();
  uint8_t one[5] = {0, 0, 0, 1, 'a'};
  send_all(a, one, sizeof one);
  while (total[0] < 1) uv_run(&loop, UV_RUN_ONCE); /* a is connection 0 */
  int b = client();
  uint8_t *flood = pings(N);
  send_all(a, flood, N * 5); /* all in a's socket before b's frame is sent */
  uint8_t mine[5] = {0, 0, 0, 1, 'b'};
  send_all(b, mine, sizeof mine);
  while (total[1] < 1) {
    uv_run(&loop, UV_RUN_ONCE);
    drain(a);
  }
  print_message("b handed on after %u of a's %d frames, turn %llu\n", total[0] - 1, N,
                (unsigned long long)turns);
  assert_true(total[0] - 1 < N / 2);
  while (total[0] < N + 1) {
    uv_run(&loop, UV_RUN_ONCE);
    drain(a);
  }
  assert_true(most_in_a_turn[0] <= 512); /* turn_frames' default */
  assert_true(most_in_a_turn[0] >= 128); /* the least share */
  pt_server_stats st;
  pt_server_stats_get(srv, &st);
  assert_true(st.yields > 0);
  free(flood);
  close(a), close(b);
}

/* Replies capped at 8 unwritten (max_inflight): a flood of 16,000 frames,
 * replies read as they come, never makes the server keep more than one
 * read's worth of input (64 KiB), however many times it pauses and resumes. */
static void test_kept_input_bounded(void **state) {
  (void)state;
  start_with((pt_server_config){.max_frame = 1024, .out_high = 1 << 20, .out_hard = 16 << 20,
                                .max_clients = 10, .frame_timeout_ms = 10000, .max_inflight = 8});
  enum { N = 16000 };
  int a = client();
  uint8_t *flood = pings(N);
  send_all(a, flood, N * 5);
  while (total[0] < N) {
    uv_run(&loop, UV_RUN_ONCE);
    drain(a);
  }
  print_message("most input kept: %zu bytes over %llu turns\n", kept_max, (unsigned long long)turns);
  assert_true(kept_max <= 64 * 1024);
  pt_server_stats st;
  pt_server_stats_get(srv, &st);
  assert_int_equal(st.kept, 0);
  assert_true(st.pauses > 0);
  free(flood);
  close(a);
}

/* A turn of 200 ms (another client's request) with first_frame_ms 50: the
 * connection whose first frame arrived during that turn is not dropped as
 * silent by the sweep that runs before the next read; its frame is handed
 * on. */
static void test_long_turn_spares_waiting_first_frame(void **state) {
  (void)state;
  start_with((pt_server_config){.max_frame = 1024, .out_high = 1 << 20, .out_hard = 16 << 20,
                                .max_clients = 10, .frame_timeout_ms = 10000, .first_frame_ms = 50});
  int y = client();
  uint8_t hello[5] = {0, 0, 0, 1, 'y'};
  send_all(y, hello, sizeof hello);
  while (total[0] < 1) uv_run(&loop, UV_RUN_ONCE); /* y is connection 0 */
  int x = client();
  pt_server_stats st;
  do {
    uv_run(&loop, UV_RUN_ONCE);
    pt_server_stats_get(srv, &st);
  } while (st.accepted < 2); /* x accepted, silent so far */
  spin_fd = x; /* y's "spin" makes x send its first frame, then holds the loop 200 ms */
  uint8_t spin[8] = {0, 0, 0, 4, 's', 'p', 'i', 'n'};
  send_all(y, spin, sizeof spin);
  while (total[0] < 2) uv_run(&loop, UV_RUN_ONCE);
  while (!conns[1] && closes == 0) uv_run(&loop, UV_RUN_ONCE);
  pt_server_stats_get(srv, &st);
  assert_int_equal(st.closed_silent, 0);
  assert_int_equal(closes, 0);
  assert_non_null(conns[1]);
  assert_int_equal(total[1], 1);
  close(x), close(y);
}

/* turn_frames 256: a share of 128 (the least), two connections let read
 * again a turn. Six connections send 128 frames, then 128 more each, in
 * order: each takes its share, two stay armed for the next turn and four
 * wait in the queue. Then only the four send 8 more: the two let read have
 * nothing to say, and the four must still get their turns without anything
 * else waking the loop: no turn ends with connections waiting and the loop
 * free to sleep (else they would wait for the next timer, the sweep's, up
 * to a second each). (A watchdog of 30 s ends a loop that slept for good.) */
static bool stalled;
static void on_watchdog(uv_timer_t *t) {
  stalled = true;
  uv_stop(t->loop);
}
static unsigned handed_on(void) {
  unsigned all = 0;
  for (int i = 0; i < MAXC; i++) all += total[i];
  return all;
}
static void test_waiting_connections_get_their_turn(void **state) {
  (void)state;
  start_with((pt_server_config){.max_frame = 1024, .out_high = 1 << 20, .out_hard = 16 << 20,
                                .max_clients = 10, .frame_timeout_ms = 10000, .turn_frames = 256});
  enum { K = 6, F = 128 };
  int fd[K];
  uint8_t *burst = pings(F);
  for (int i = 0; i < K; i++) fd[i] = client();
  static uv_timer_t dog; /* closed by stop()'s loop run, after this returns */
  uv_timer_init(&loop, &dog);
  uv_timer_start(&dog, on_watchdog, 30000, 0);
  stalled = false;
  for (int round = 1; round <= 2; round++) {
    for (int i = 0; i < K; i++) send_all(fd[i], burst, F * 5);
    while (handed_on() < (unsigned)(round * K * F) && !stalled) {
      uv_run(&loop, UV_RUN_ONCE);
      for (int i = 0; i < K; i++) drain(fd[i]);
    }
  }
  pt_server_stats st;
  pt_server_stats_get(srv, &st);
  assert_true(st.yields >= K);
  for (int i = 2; i < K; i++) send_all(fd[i], burst, 8 * 5);
  while (handed_on() < K * 2 * F + (K - 2) * 8 && !stalled) {
    uv_run(&loop, UV_RUN_ONCE);
    for (int i = 0; i < K; i++) drain(fd[i]);
  }
  uv_close((uv_handle_t *)&dog, NULL);
  assert_false(stalled);
  assert_false(slept_on_waiters);
  for (int i = 0; i < K; i++) assert_true(most_in_a_turn[i] <= F);
  free(burst);
  for (int i = 0; i < K; i++) close(fd[i]);
}

/* A reader's exchange leaves recycled buffers (counted in the budget);
 * then a client that never reads (small kernel buffers: its replies stay
 * in the server) passes the 1 MiB budget: it is dropped, once, and the
 * reader is still served. */
static void test_output_budget_counts_buffers(void **state) {
  (void)state;
  start_with((pt_server_config){.max_frame = 1024, .out_high = 64 << 20, .out_hard = 128 << 20,
                                .max_clients = 10, .frame_timeout_ms = 10000, .out_budget = 1 << 20,
                                .socket_buffer = 4096});
  enum { N = 4000 };
  int a = client();
  uint8_t *burst = pings(N);
  send_all(a, burst, N * 5);
  while (total[0] < N) {
    uv_run(&loop, UV_RUN_ONCE);
    drain(a);
  }
  pt_server_stats st;
  for (int i = 0; i < 100 && (pt_server_stats_get(srv, &st), st.unsent); i++) {
    uv_run(&loop, UV_RUN_NOWAIT); /* its last replies' writes complete */
    drain(a);
  }
  pt_server_stats_get(srv, &st);
  print_message("recycled buffers after the exchange: %zu bytes\n", st.spare_mem);
  assert_true(st.spare_mem > 0);

  int b = socket(AF_INET, SOCK_STREAM, 0), small = 4096;
  setsockopt(b, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)pt_server_port(srv)),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  assert_int_equal(connect(b, (struct sockaddr *)&addr, sizeof addr), 0);
  size_t off = 0;
  while (closes == 0) { /* b sends and never reads, until it is dropped */
    ssize_t k = send(b, burst + off, N * 5 - off, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (k > 0) off = (off + (size_t)k) % (N * 5);
    uv_run(&loop, UV_RUN_NOWAIT);
    drain(a);
  }
  pt_server_stats_get(srv, &st);
  assert_int_equal(st.dropped_budget, 1);
  assert_int_equal(closes, 1);
  unsigned had = total[0];
  send_all(a, burst, 5);
  while (total[0] == had) uv_run(&loop, UV_RUN_ONCE);
  assert_int_equal(closes, 1); /* a served; b was the one dropped */
  free(burst);
  close(a), close(b);
}

/* Two floods of 4,000 frames each: a's frames demote it (as a refused rate
 * does), b's do not. a hands on at most 16 frames a turn, b its share. */
static void test_demoted_connection_takes_little(void **state) {
  (void)state;
  start_with((pt_server_config){.max_frame = 1024, .out_high = 64 << 20, .out_hard = 128 << 20,
                                .max_clients = 10, .frame_timeout_ms = 10000});
  enum { N = 4000 };
  int a = client();
  uint8_t one[5] = {0, 0, 0, 1, 'd'};
  send_all(a, one, sizeof one);
  while (total[0] < 1) uv_run(&loop, UV_RUN_ONCE); /* a is connection 0 */
  int b = client();
  uint8_t *da = pings(N), *pb = pings(N);
  for (size_t i = 0; i < N; i++) da[5 * i + 4] = 'd';
  send_all(a, da, N * 5);
  send_all(b, pb, N * 5);
  while (total[0] < N + 1 || total[1] < N) {
    uv_run(&loop, UV_RUN_ONCE);
    drain(a), drain(b);
  }
  print_message("most in a turn: demoted %u, other %u\n", most_in_a_turn[0], most_in_a_turn[1]);
  assert_true(most_in_a_turn[0] <= 16);
  assert_true(most_in_a_turn[1] >= 128);
  free(da), free(pb);
  close(a), close(b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_teardown(test_flood_takes_turns, stop),
      cmocka_unit_test_teardown(test_kept_input_bounded, stop),
      cmocka_unit_test_teardown(test_long_turn_spares_waiting_first_frame, stop),
      cmocka_unit_test_teardown(test_waiting_connections_get_their_turn, stop),
      cmocka_unit_test_teardown(test_demoted_connection_takes_little, stop),
      cmocka_unit_test_teardown(test_output_budget_counts_buffers, stop),
  };
  return cmocka_run_group_tests_name("server_fair", tests, NULL, NULL);
}
