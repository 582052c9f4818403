/* The hiredis-on-libuv attachment against a real redis-server: a refused
 * connect reaches the connect callback (Debian's adapter loses it), a
 * command round-trips, a Redis that stops is noticed as a disconnect, and a
 * restarted one is reached again; output is written at pt_redis_flush, or
 * before the loop blocks without it, and a command larger than the socket
 * takes goes out whole. Every test ends with uv_loop_close() == 0: nothing
 * leaks. */
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mirror/redis_uv.h"
#include "redis_proc.h"

static uv_loop_t loop;
static int connected, connect_failed, disconnected, replies;
static char last_reply[64];
static long long last_int;

static void on_connect(const redisAsyncContext *ac, int status) {
  (void)ac;
  if (status == REDIS_OK) connected++;
  else connect_failed++;
}
static void on_disconnect(const redisAsyncContext *ac, int status) {
  (void)ac, (void)status;
  disconnected++;
}
static void on_reply(redisAsyncContext *ac, void *r, void *priv) {
  (void)ac, (void)priv;
  redisReply *rep = r;
  replies++;
  last_int = rep ? rep->integer : -1;
  snprintf(last_reply, sizeof last_reply, "%.*s", rep ? (int)rep->len : 0, rep ? rep->str : "");
}

static redisAsyncContext *connect_to(int port) {
  redisAsyncContext *ac = redisAsyncConnect("127.0.0.1", port);
  assert_non_null(ac);
  assert_int_equal(ac->err, 0);
  assert_int_equal(pt_redis_attach(ac, &loop), REDIS_OK);
  redisAsyncSetConnectCallback(ac, on_connect);
  redisAsyncSetDisconnectCallback(ac, on_disconnect);
  return ac;
}

static int setup(void **state) {
  (void)state;
  connected = connect_failed = disconnected = replies = 0;
  return uv_loop_init(&loop);
}
static int teardown(void **state) {
  (void)state;
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&loop), 0);
  return 0;
}

static void test_refused_connect_is_reported(void **state) {
  (void)state;
  pt_redis_proc r;
  assert_int_equal(redis_start(&r, NULL), 0);
  int port = r.port;
  redis_cleanup(&r); /* nothing listens there now */
  connect_to(port);
  while (!connect_failed) uv_run(&loop, UV_RUN_ONCE); /* hangs here with Debian's adapter */
  assert_int_equal(connected, 0);
}

static void test_command_then_redis_stops_then_returns(void **state) {
  (void)state;
  pt_redis_proc r;
  assert_int_equal(redis_start(&r, NULL), 0);
  redisAsyncContext *ac = connect_to(r.port);
  assert_int_equal(redisAsyncCommand(ac, on_reply, NULL, "PING"), REDIS_OK);
  while (!replies) uv_run(&loop, UV_RUN_ONCE);
  assert_int_equal(connected, 1);
  assert_string_equal(last_reply, "PONG");
  assert_int_equal(redis_stop(&r), 0);
  while (!disconnected) uv_run(&loop, UV_RUN_ONCE);
  assert_int_equal(redis_restart(&r), 0);
  ac = connect_to(r.port);
  assert_int_equal(redisAsyncCommand(ac, on_reply, NULL, "ECHO %s", "again"), REDIS_OK);
  while (replies < 2) uv_run(&loop, UV_RUN_ONCE);
  assert_string_equal(last_reply, "again");
  redisAsyncDisconnect(ac);
  while (disconnected < 2) uv_run(&loop, UV_RUN_ONCE);
  redis_cleanup(&r);
}

static size_t obuf_len(const redisAsyncContext *ac) { return sdslen(ac->c.obuf); }

static void test_output_leaves_at_flush_or_before_the_loop_blocks(void **state) {
  (void)state;
  pt_redis_proc r;
  assert_int_equal(redis_start(&r, NULL), 0);
  redisAsyncContext *ac = connect_to(r.port);
  while (!connected) uv_run(&loop, UV_RUN_ONCE);
  /* queued outside a callback: still in hiredis' buffer until the flush */
  assert_int_equal(redisAsyncCommand(ac, on_reply, NULL, "ECHO %s", "flushed"), REDIS_OK);
  assert_true(obuf_len(ac) > 0);
  pt_redis_flush(ac);
  assert_int_equal(obuf_len(ac), 0);
  while (replies < 1) uv_run(&loop, UV_RUN_ONCE);
  assert_string_equal(last_reply, "flushed");
  /* no flush: the loop writes it before it would block (else this hangs) */
  assert_int_equal(redisAsyncCommand(ac, on_reply, NULL, "ECHO %s", "unflushed"), REDIS_OK);
  while (replies < 2) uv_run(&loop, UV_RUN_ONCE);
  assert_string_equal(last_reply, "unflushed");
  /* 16 MiB: more than a loopback socket takes at once, so the rest waits
   * for writability; the value must arrive whole */
  size_t big = 16u << 20;
  char *v = malloc(big);
  assert_non_null(v);
  memset(v, 'x', big);
  assert_int_equal(redisAsyncCommand(ac, on_reply, NULL, "SET big %b", v, big), REDIS_OK);
  free(v);
  pt_redis_flush(ac);
  assert_true(obuf_len(ac) > 0); /* the socket took part of it */
  assert_int_equal(redisAsyncCommand(ac, on_reply, NULL, "STRLEN big"), REDIS_OK);
  while (replies < 4) uv_run(&loop, UV_RUN_ONCE);
  assert_int_equal(last_int, (long long)big);
  redisAsyncDisconnect(ac);
  while (!disconnected) uv_run(&loop, UV_RUN_ONCE);
  redis_cleanup(&r);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_refused_connect_is_reported, setup, teardown),
      cmocka_unit_test_setup_teardown(test_command_then_redis_stops_then_returns, setup, teardown),
      cmocka_unit_test_setup_teardown(test_output_leaves_at_flush_or_before_the_loop_blocks, setup,
                                      teardown),
  };
  return cmocka_run_group_tests_name("redis_uv", tests, NULL, NULL);
}
