/* The server's listening sockets, in-process: a name's several addresses
 * share one port; an address this host cannot have is skipped while another
 * listens, and fails the start when it is the only one; every handle is
 * closed (uv_loop_close() == 0). */
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "addr.h"
#include "net/server.h"

static void on_frame(void *ctx, pt_conn *c, const uint8_t *msg, size_t len, const void *note) {
  (void)note;
  (void)ctx, (void)c, (void)msg, (void)len;
}
static void on_protocol_error(void *ctx, pt_conn *c, int status, const char *detail) {
  (void)ctx, (void)c, (void)status, (void)detail;
}
static const pt_server_hooks hooks = {.on_frame = on_frame, .on_protocol_error = on_protocol_error};

static int stopped;
static void on_stopped(void *arg) { (void)arg, stopped++; }

static pt_server_config config(const char *const *hosts) {
  pt_server_config cfg = {.max_frame = 65536, .out_high = 1 << 20, .out_hard = 16 << 20,
                          .max_clients = 10, .frame_timeout_ms = 10000};
  char err[256];
  for (int i = 0; hosts[i]; i++) { /* one numeric address each, port 0 */
    pt_server_config one;
    assert_int_equal(pt_server_resolve(&one, hosts[i], 0, err, sizeof err), 0);
    assert_int_equal(one.nlisten, 1);
    cfg.listen[cfg.nlisten++] = one.listen[0];
  }
  return cfg;
}

static int has_ipv6_loopback(void) {
  int fd = socket(AF_INET6, SOCK_STREAM, 0);
  struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
  int ok = fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0;
  if (fd >= 0) close(fd);
  return ok;
}

static void test_several_addresses_share_a_port(void **state) {
  (void)state;
  if (!has_ipv6_loopback()) skip();
  uv_loop_t loop;
  uv_loop_init(&loop);
  const char *hosts[] = {"127.0.0.1", "::1", NULL};
  pt_server_config cfg = config(hosts);
  char err[256];
  pt_server *s = pt_server_start(&loop, &cfg, &hooks, err, sizeof err);
  assert_non_null(s);
  struct sockaddr_storage bound[PT_LISTEN_MAX];
  assert_int_equal(pt_server_addrs(s, bound, PT_LISTEN_MAX), 2);
  char a[64], b[64];
  pt_sockaddr_str(&bound[0], a, sizeof a);
  pt_sockaddr_str(&bound[1], b, sizeof b);
  int port = pt_server_port(s);
  assert_true(port > 0);
  char want[64];
  snprintf(want, sizeof want, "127.0.0.1:%d", port);
  assert_string_equal(a, want);
  snprintf(want, sizeof want, "[::1]:%d", port);
  assert_string_equal(b, want);
  stopped = 0;
  pt_server_stop(s, on_stopped, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(stopped, 1);
  assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_an_address_not_ours_is_skipped(void **state) {
  (void)state;
  uv_loop_t loop;
  uv_loop_init(&loop);
  /* 203.0.113.1 (TEST-NET-3) is no address of this host */
  const char *hosts[] = {"203.0.113.1", "127.0.0.1", NULL};
  pt_server_config cfg = config(hosts);
  char err[256];
  pt_server *s = pt_server_start(&loop, &cfg, &hooks, err, sizeof err);
  assert_non_null(s);
  struct sockaddr_storage bound[PT_LISTEN_MAX];
  assert_int_equal(pt_server_addrs(s, bound, PT_LISTEN_MAX), 1);
  char a[64];
  assert_non_null(strstr(pt_sockaddr_str(&bound[0], a, sizeof a), "127.0.0.1:"));
  stopped = 0;
  pt_server_stop(s, on_stopped, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(stopped, 1);
  assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_only_an_address_not_ours_fails(void **state) {
  (void)state;
  uv_loop_t loop;
  uv_loop_init(&loop);
  const char *hosts[] = {"203.0.113.1", NULL};
  pt_server_config cfg = config(hosts);
  char err[256] = "";
  assert_null(pt_server_start(&loop, &cfg, &hooks, err, sizeof err));
  assert_non_null(strstr(err, "listen on 203.0.113.1:0"));
  uv_run(&loop, UV_RUN_DEFAULT); /* the failed start's handles close */
  assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_resolve(void **state) {
  (void)state;
  pt_server_config cfg;
  char err[256], a[64];
  assert_int_equal(pt_server_resolve(&cfg, "localhost", 7799, err, sizeof err), 0);
  assert_true(cfg.nlisten >= 1);
  for (unsigned i = 0; i < cfg.nlisten; i++) {
    pt_sockaddr_str(&cfg.listen[i], a, sizeof a);
    assert_true(!strcmp(a, "127.0.0.1:7799") || !strcmp(a, "[::1]:7799"));
  }
  assert_int_equal(pt_server_resolve(&cfg, "no-such-host.invalid", 7799, err, sizeof err), -1);
  assert_non_null(strstr(err, "no-such-host.invalid"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_several_addresses_share_a_port),
      cmocka_unit_test(test_an_address_not_ours_is_skipped),
      cmocka_unit_test(test_only_an_address_not_ours_fails),
      cmocka_unit_test(test_resolve),
  };
  return cmocka_run_group_tests_name("listen", tests, NULL, NULL);
}
