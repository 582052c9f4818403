/* The admin port over real TCP, against real daemons (and a real
 * redis-server for readiness):
 * - /metrics passes `promtool check metrics`, and its counters move with
 *   the traffic sent (exact counts: the test sent every request); its
 *   per-campaign series are the newest running campaigns' however many
 *   ended ones are newer (found over several loop turns);
 * - /ready: 200 on a primary, 503 with the reason when Redis stops, 200
 *   again when it is back; 503 on a standby;
 * - /server_info, /campaigns, /campaigns/ID say what the engine holds;
 *   /campaigns in pages, walked with a cursor;
 * - /stats/stream delivers lines that count the traffic, survives a reader
 *   that stops reading and one that vanishes;
 * - with every other slot taken by streams, /healthz and /ready still
 *   answer on the slots kept for them;
 * - the token: asked of a peer beyond loopback (this host's own address),
 *   never shown;
 * - bad HTTP (garbage, oversized head, unknown path, POST) gets its 4xx,
 *   1,000 half-open admin connections cost nothing: /healthz still
 *   answers, and the storefront port serves a full run of requests.
 * - what the views cost the loop is printed (BENCHMARKS.md), not asserted.
 * Waits are for events (a reply, a state the daemon reports); polling an
 * endpoint until it changes is bounded by PT_WAIT_MS, never a fixed sleep. */
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "clock.h"
#include "harness.h"
#include "redis_proc.h"
#include "shard.h"

#define OK PINTUAN__V1__STATUS__OK
#define PT_ADMIN_TIMEOUT_SLOTS 64 /* the admin port's connection cap */

static pt_daemon D;

static struct in_addr admin_ip; /* where admin_connect goes: 127.0.0.1 unless a test says */

static int start_plain(void **state) {
  (void)state;
  admin_ip.s_addr = htonl(INADDR_LOOPBACK);
  /* room for the tests of large daemons: ended campaigns count against
   * max_campaigns until they are retired */
  const char *args[] = {"--max-campaigns", "1000000", NULL};
  return daemon_start(&D, args);
}
static int stop_clean(void **state) {
  (void)state;
  return daemon_stop(&D) == 0 ? 0 : -1;
}

/* ---- a small HTTP client: one request per connection, as the port serves ---- */

static int admin_connect(const pt_daemon *d) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  assert_true(fd >= 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)d->admin_port)};
  a.sin_addr = admin_ip;
  assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
  return fd;
}

static void send_all(int fd, const char *p, size_t n) {
  while (n) {
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    assert_true(w > 0);
    p += w, n -= (size_t)w;
  }
}

static char *read_all(int fd, size_t *len) {
  char *buf = read_until_close(fd, len);
  if (!buf) fail_msg("no answer from the admin port");
  return buf;
}

typedef struct answer {
  int code;
  char *raw, *body;
} answer;

static answer raw_http(const pt_daemon *d, const char *request, size_t n) {
  int fd = admin_connect(d);
  send_all(fd, request, n);
  answer a = {0};
  a.raw = read_all(fd, NULL);
  close(fd);
  if (sscanf(a.raw, "HTTP/1.1 %d", &a.code) != 1) fail_msg("not an HTTP answer: %.80s", a.raw);
  char *sep = strstr(a.raw, "\r\n\r\n");
  a.body = sep ? sep + 4 : a.raw + strlen(a.raw);
  return a;
}

static answer http_get(const pt_daemon *d, const char *path) {
  char req[512];
  int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", path);
  return raw_http(d, req, (size_t)n);
}

static void answer_free(answer *a) { free(a->raw); }

static char *metrics_text(const pt_daemon *d) {
  answer a = http_get(d, "/metrics");
  assert_int_equal(a.code, 200);
  assert_non_null(strstr(a.raw, "Content-Type: text/plain; version=0.0.4"));
  char *body = strdup(a.body);
  answer_free(&a);
  return body;
}

/* promtool (Debian: prometheus) reads the exposition from stdin. */
static void promtool_check(const char *text) {
  char path[] = "/tmp/pt-metrics-XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
  close(fd);
  char cmd[256];
  snprintf(cmd, sizeof cmd, "promtool check metrics < %s 2>&1", path);
  FILE *p = popen(cmd, "r");
  assert_non_null(p);
  char out[4096] = "";
  size_t got = fread(out, 1, sizeof out - 1, p);
  out[got] = 0;
  int rc = pclose(p);
  unlink(path);
  if (WIFEXITED(rc) && WEXITSTATUS(rc) == 127)
    fail_msg("promtool not found: install the prometheus package (deploy/install-deps.sh)");
  if (rc != 0 || got) fail_msg("promtool check metrics: %s", out);
  /* every value in its shortest form: 0.009, not 0.0089999999999999993 */
  for (const char *line = text; *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : "") {
    const char *end = strchr(line, '\n');
    size_t n = end ? (size_t)(end - line) : strlen(line);
    const char *sp = NULL;
    for (size_t i = 0; i < n; i++) if (line[i] == ' ') sp = line + i; /* the last space */
    if (line[0] == '#' || !sp) continue;
    char value[64], shorter[64];
    snprintf(value, sizeof value, "%.*s", (int)(line + n - sp - 1), sp + 1);
    snprintf(shorter, sizeof shorter, "%.15g", strtod(value, NULL));
    if (strlen(value) > strlen(shorter) && strtod(shorter, NULL) == strtod(value, NULL))
      fail_msg("a value not in its shortest form: %.*s", (int)n, line);
  }
}

/* ---- /metrics ---- */

static void test_metrics_move_with_traffic(void **state) {
  (void)state;
  char *before = metrics_text(&D);
  promtool_check(before);
  assert_int_equal(metric_value(before, "pintuan_build_info{version=\"" PT_VERSION "\"}"), 1);
  assert_int_equal(metric_value(before, "pintuan_role{role=\"memory-only\"}"), 1);
  assert_int_equal(metric_value(before, "pintuan_requests_total{op=\"reserve\",status=\"OK\"}"), -1);
  double accepted0 = metric_value(before, "pintuan_connections_accepted_total");
  double in0 = metric_value(before, "pintuan_received_bytes_total");
  double lat0 = metric_value(before, "pintuan_request_duration_seconds_count");
  double busy0 = metric_value(before, "pintuan_loop_busy_seconds_count");
  assert_true(accepted0 >= 0 && in0 >= 0 && lat0 >= 0 && busy0 >= 0);
  assert_true(metric_value(before, "process_resident_memory_bytes") > 0);
  assert_true(metric_value(before, "process_open_fds") > 0);
  assert_true(metric_value(before, "pintuan_prefault_bytes_total") >= 0); /* present, 0 or more */
  assert_true(metric_value(before, "pintuan_prefault_dropped_total") >= 0);

  pintuan_client *c = connect_or_die(&D);
  assert_int_equal(create_flash(c, "m1", 5, 0, 60000, 0), OK);
  pintuan_response *r;
  for (int i = 0; i < 8; i++) { /* 5 sold, 3 sold out */
    char user[16];
    snprintf(user, sizeof user, "u%d", i);
    assert_int_equal(pintuan_reserve(c, "m1", user, 1, user, &r), 0);
    assert_int_equal(r->status, i < 5 ? OK : PINTUAN__V1__STATUS__SOLD_OUT);
    pintuan_response_free(r);
  }
  int fd = raw_connect(&D), eof; /* a frame that is not a Request */
  uint8_t junk[] = {0, 0, 0, 3, 0xff, 0xff, 0xff};
  assert_int_equal(raw_send(fd, junk, sizeof junk), 0);
  r = raw_recv(fd, PT_WAIT_MS, &eof);
  assert_non_null(r);
  assert_int_equal(r->status, PINTUAN__V1__STATUS__INVALID_ARGUMENT);
  pintuan_response_free(r);
  close(fd);

  char *after = metrics_text(&D);
  promtool_check(after);
  assert_int_equal(metric_value(after, "pintuan_requests_total{op=\"create_campaign\",status=\"OK\"}"), 1);
  assert_int_equal(metric_value(after, "pintuan_requests_total{op=\"reserve\",status=\"OK\"}"), 5);
  assert_int_equal(metric_value(after, "pintuan_requests_total{op=\"reserve\",status=\"SOLD_OUT\"}"), 3);
  assert_int_equal(metric_value(after, "pintuan_requests_total{op=\"none\",status=\"INVALID_ARGUMENT\"}"), 1);
  assert_int_equal(metric_value(after, "pintuan_frame_errors_total{class=\"malformed\"}"), 1);
  assert_int_equal(metric_value(after, "pintuan_connections_accepted_total"), accepted0 + 2);
  assert_true(metric_value(after, "pintuan_received_bytes_total") > in0);
  /* every request went through a turn whose latency was recorded */
  assert_true(metric_value(after, "pintuan_request_duration_seconds_count") >= lat0 + 10);
  /* each request read ended a loop turn, each counted once */
  assert_true(metric_value(after, "pintuan_loop_busy_seconds_count") >= busy0 + 10);
  assert_true(metric_value(after, "pintuan_loop_busy_seconds_bucket{le=\"+Inf\"}") ==
              metric_value(after, "pintuan_loop_busy_seconds_count"));
  assert_int_equal(metric_value(after, "pintuan_holds"), 5);
  assert_int_equal(metric_value(after, "pintuan_campaign_held{campaign=\"m1\"}"), 5);
  assert_int_equal(metric_value(after, "pintuan_campaign_available{campaign=\"m1\"}"), 0);
  assert_int_equal(metric_value(after, "pintuan_campaign_stock{campaign=\"m1\"}"), 5);
  assert_int_equal(metric_value(after, "pintuan_remembered_effects"), 6); /* the create and 5 holds */
  free(before);
  free(after);
  pintuan_close(c);
}

/* The per-campaign series are for the newest campaigns that have not
 * ended. With 10,000 ended campaigns newer than the three still running,
 * finding those three takes several loop turns (a slice of the campaigns
 * each): the answer is the same, for two scrapes at once too. */
static void test_metrics_many_campaigns(void **state) {
  (void)state;
  enum { ENDED = 10000 };
  pintuan_client *c = connect_or_die(&D);
  for (int i = 0; i < 3; i++) {
    char id[16];
    snprintf(id, sizeof id, "old%d", i);
    assert_int_equal(create_flash(c, id, 10 + i, 0, 60000, 0), OK);
  }
  for (int i = 0; i < ENDED; i++) {
    char id[16], rq[24];
    snprintf(id, sizeof id, "e%d", i);
    snprintf(rq, sizeof rq, "end-%d", i);
    assert_int_equal(create_flash(c, id, 1, 0, 60000, 0), OK);
    pintuan_response *r;
    assert_int_equal(pintuan_end_campaign(c, id, rq, &r), 0);
    assert_int_equal(r->status, OK);
    pintuan_response_free(r);
  }
  int fds[2];
  static const char req[] = "GET /metrics HTTP/1.1\r\n\r\n";
  for (int k = 0; k < 2; k++) { /* two scrapes under way at once */
    fds[k] = admin_connect(&D);
    send_all(fds[k], req, sizeof req - 1);
  }
  for (int k = 0; k < 2; k++) {
    char *raw = read_all(fds[k], NULL);
    close(fds[k]);
    if (strncmp(raw, "HTTP/1.1 200", 12)) fail_msg("scrape %d: %.200s", k, raw);
    char *text = strstr(raw, "\r\n\r\n") + 4;
    promtool_check(text);
    assert_int_equal(metric_value(text, "pintuan_campaigns"), ENDED + 3);
    assert_int_equal(metric_value(text, "pintuan_campaign_metrics_omitted"), ENDED);
    for (int i = 0; i < 3; i++) {
      char series[64];
      snprintf(series, sizeof series, "pintuan_campaign_stock{campaign=\"old%d\"}", i);
      assert_int_equal(metric_value(text, series), 10 + i);
    }
    assert_null(strstr(text, "campaign=\"e"));
    assert_true(metric_value(text, "process_open_fds") > 0);
    free(raw);
  }
  pintuan_close(c);
}

/* Campaign ids are bytes: one with a quote, a backslash and a high byte
 * still makes a valid exposition and valid JSON. */
static void test_odd_campaign_ids(void **state) {
  (void)state;
  pintuan_client *c = connect_or_die(&D);
  assert_int_equal(create_flash(c, "a\"b\\c\xff", 3, 0, 60000, 0), OK);
  char *text = metrics_text(&D);
  promtool_check(text);
  assert_int_equal(metric_value(text, "pintuan_campaign_stock{campaign=\"a\\\\x22b\\\\x5cc\\\\xff\"}"), 3);
  free(text);
  answer a = http_get(&D, "/campaigns");
  assert_int_equal(a.code, 200);
  json_error_t je;
  json_t *j = json_loads(a.body, 0, &je);
  if (!j) fail_msg("/campaigns is not JSON: %s", je.text);
  json_t *first = json_array_get(json_object_get(j, "campaigns"), 0);
  assert_string_equal(json_string_value(json_object_get(first, "campaign_id")), "a\\x22b\\x5cc\\xff");
  json_decref(j);
  answer_free(&a);
  a = http_get(&D, "/campaigns/a%22b%5Cc%FF"); /* percent-encoded bytes find it */
  assert_int_equal(a.code, 200);
  assert_non_null(strstr(a.body, "\"stock\":3"));
  answer_free(&a);
  pintuan_close(c);
}

/* ---- the JSON views ---- */

static void test_views(void **state) {
  (void)state;
  pintuan_client *c = connect_or_die(&D);
  assert_int_equal(create_flash(c, "v1", 10, 0, 60000, 1), OK);
  assert_int_equal(create_group(c, "g1", 20, 3, 60000, 60000, 0), OK);
  pintuan_response *r;
  assert_int_equal(pintuan_reserve(c, "v1", "u1", 2, "rq2", &r), 0);
  assert_int_equal(r->status, OK);
  pintuan_response_free(r);
  assert_int_equal(pintuan_join(c, "g1", "u1", PINTUAN__V1__JOIN_MODE__JOIN_AUTO, 0, false, "jq1", &r), 0);
  assert_int_equal(r->status, OK);
  pintuan_response_free(r);

  answer a = http_get(&D, "/campaigns/v1");
  assert_int_equal(a.code, 200);
  assert_non_null(strstr(a.raw, "Content-Type: application/json"));
  json_t *j = json_loads(a.body, 0, NULL);
  assert_non_null(j);
  assert_int_equal(json_integer_value(json_object_get(j, "stock")), 10);
  assert_int_equal(json_integer_value(json_object_get(j, "held")), 2);
  assert_int_equal(json_integer_value(json_object_get(j, "available")), 8);
  assert_true(json_is_true(json_object_get(j, "waitlist")));
  json_decref(j);
  answer_free(&a);

  a = http_get(&D, "/campaigns/g1");
  j = json_loads(a.body, 0, NULL);
  assert_non_null(j);
  assert_string_equal(json_string_value(json_object_get(j, "kind")), "GROUP_BUY");
  assert_int_equal(json_integer_value(json_object_get(j, "open_groups")), 1);
  assert_int_equal(json_integer_value(json_object_get(j, "group_size")), 3);
  json_decref(j);
  answer_free(&a);

  a = http_get(&D, "/campaigns");
  j = json_loads(a.body, 0, NULL);
  assert_int_equal(json_array_size(json_object_get(j, "campaigns")), 2);
  json_decref(j);
  answer_free(&a);

  a = http_get(&D, "/campaigns/nosuch");
  assert_int_equal(a.code, 404);
  answer_free(&a);

  a = http_get(&D, "/server_info?pretty=no"); /* a query string is ignored */
  assert_int_equal(a.code, 200);
  j = json_loads(a.body, 0, NULL);
  assert_non_null(j);
  assert_string_equal(json_string_value(json_object_get(j, "version")), PT_VERSION);
  assert_string_equal(json_string_value(json_object_get(j, "role")), "memory-only");
  assert_true(json_is_true(json_object_get(j, "ready")));
  assert_int_equal(json_integer_value(json_object_get(j, "port")), D.port);
  json_t *cfg = json_object_get(j, "config");
  assert_int_equal(json_integer_value(json_object_get(cfg, "max_clients")), 16000);
  assert_null(json_object_get(cfg, "admin_token")); /* secrets stay out */
  json_decref(j);
  answer_free(&a);

  a = http_get(&D, "/healthz");
  assert_int_equal(a.code, 200);
  answer_free(&a);
  a = http_get(&D, "/ready");
  assert_int_equal(a.code, 200); /* memory-only decides at once */
  answer_free(&a);
  pintuan_close(c);
}

/* /campaigns is paged with a cursor (Redis SCAN's way): a walk from
 * cursor 0 until next_cursor is 0 sees every campaign once, at most limit
 * a page (100 when not given, 1000 at most); a bad query is a 400 that
 * says why. */
static json_t *campaigns_page(const char *query, size_t *next) {
  char path[128];
  snprintf(path, sizeof path, "/campaigns%s", query);
  answer a = http_get(&D, path);
  if (a.code != 200) fail_msg("%s: %d %s", path, a.code, a.body);
  json_error_t je;
  json_t *j = json_loads(a.body, 0, &je);
  if (!j) fail_msg("%s is not JSON: %s", path, je.text);
  answer_free(&a);
  json_t *nc = json_object_get(j, "next_cursor");
  assert_true(json_is_integer(nc));
  *next = (size_t)json_integer_value(nc);
  return j;
}

static void test_campaigns_paged(void **state) {
  (void)state;
  enum { N = 2345 };
  pintuan_client *c = connect_or_die(&D);
  for (int i = 0; i < N; i++) {
    char id[16];
    snprintf(id, sizeof id, "p%d", i);
    assert_int_equal(create_flash(c, id, i, 0, 60000, 0), OK);
  }
  static const char *limits[] = {"", "&limit=1000", "&limit=7", "&limit=1"};
  for (size_t l = 0; l < sizeof limits / sizeof *limits; l++) {
    static bool seen[N];
    memset(seen, 0, sizeof seen);
    size_t cursor = 0, total = 0, pages = 0, max = l == 0 ? 100 : (size_t)atoi(limits[l] + 7);
    do {
      char q[64];
      snprintf(q, sizeof q, "?cursor=%zu%s", cursor, limits[l]);
      json_t *j = campaigns_page(q, &cursor);
      json_t *list = json_object_get(j, "campaigns");
      assert_string_equal(json_string_value(json_object_get(j, "role")), "memory-only");
      assert_true(json_array_size(list) <= max);
      for (size_t k = 0; k < json_array_size(list); k++) {
        json_t *one = json_array_get(list, k);
        int i = atoi(json_string_value(json_object_get(one, "campaign_id")) + 1);
        assert_true(i >= 0 && i < N);
        if (seen[i]) fail_msg("campaign p%d listed twice (limit%s)", i, limits[l]);
        seen[i] = true;
        assert_int_equal(json_integer_value(json_object_get(one, "stock")), i);
        total++;
      }
      json_decref(j);
      if (++pages > N + 1) fail_msg("the walk never ends (limit%s)", limits[l]);
    } while (cursor != 0);
    assert_int_equal(total, N);
    assert_int_equal(pages, (N + max - 1) / max);
  }
  /* no query: the first page of 100, and where to go on */
  size_t next;
  json_t *j = campaigns_page("", &next);
  assert_int_equal(json_array_size(json_object_get(j, "campaigns")), 100);
  assert_int_equal(next, 100);
  json_decref(j);
  /* a cursor past the end: nothing, and done; other parameters are ignored */
  j = campaigns_page("?cursor=999999&pretty=1", &next);
  assert_int_equal(json_array_size(json_object_get(j, "campaigns")), 0);
  assert_int_equal(next, 0);
  json_decref(j);

  static const struct { const char *query, *says; } bad[] = {
      {"?limit=0", "limit must be a number from 1 to 1000"},
      {"?limit=1001", "limit must be a number from 1 to 1000"},
      {"?limit=ten", "limit must be a number from 1 to 1000"},
      {"?limit=", "limit: a number is missing"},
      {"?cursor=-1", "cursor must be a next_cursor of an earlier page"},
      {"?cursor=1e3&limit=5", "cursor must be a next_cursor of an earlier page"},
      {"?cursor=99999999999999999999999", "cursor must be a next_cursor of an earlier page"},
      {"?cursor=&limit=5", "cursor: a number is missing"},
  };
  for (size_t b = 0; b < sizeof bad / sizeof *bad; b++) {
    char path[128];
    snprintf(path, sizeof path, "/campaigns%s", bad[b].query);
    answer a = http_get(&D, path);
    if (a.code != 400 || !strstr(a.body, bad[b].says))
      fail_msg("%s: %d %s (wanted 400 saying \"%s\")", path, a.code, a.body, bad[b].says);
    answer_free(&a);
  }
  pintuan_close(c);
}

/* Beyond loopback the admin port asks for a key (a secret never shows:
 * test_token_stays_secret). This host's own
 * non-loopback address stands in for a remote peer (the connection never
 * leaves the host); skipped on a host that has none. */
static void test_token_beyond_loopback(void **state) {
  (void)state;
  struct ifaddrs *ifs, *i;
  char ip[INET_ADDRSTRLEN] = "";
  assert_int_equal(getifaddrs(&ifs), 0);
  for (i = ifs; i && !ip[0]; i = i->ifa_next)
    if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET && !(i->ifa_flags & IFF_LOOPBACK) &&
        (i->ifa_flags & IFF_UP)) {
      admin_ip = ((struct sockaddr_in *)i->ifa_addr)->sin_addr;
      inet_ntop(AF_INET, &admin_ip, ip, sizeof ip);
    }
  freeifaddrs(ifs);
  if (!ip[0]) {
    printf("# no non-loopback IPv4 address here: skipped\n");
    skip();
  }
  assert_int_equal(daemon_stop(&D), 0);
  char where[64];
  snprintf(where, sizeof where, "%s:0", ip);
  char dir[] = "/tmp/pt-akeys-XXXXXX", keys[64], secret[64];
  assert_non_null(mkdtemp(dir));
  assert_int_equal(make_key(dir, "prom", "reader", secret), 0);
  snprintf(keys, sizeof keys, "%s/keys", dir);
  const char *args[] = {"--admin-listen", where, "--keys", keys, NULL};
  assert_int_equal(daemon_start(&D, args), 0);
  answer a = http_get(&D, "/metrics");
  assert_int_equal(a.code, 401);
  assert_non_null(strstr(a.raw, "WWW-Authenticate: Bearer"));
  answer_free(&a);
  char req[512];
  int n = snprintf(req, sizeof req, "GET /metrics HTTP/1.1\r\nAuthorization: Bearer prom:%sx\r\n\r\n", secret);
  a = raw_http(&D, req, (size_t)n);
  assert_int_equal(a.code, 401);
  answer_free(&a);
  n = snprintf(req, sizeof req, "GET /metrics HTTP/1.1\r\nAuthorization: Bearer nobody:%s\r\n\r\n", secret);
  a = raw_http(&D, req, (size_t)n);
  assert_int_equal(a.code, 401);
  answer_free(&a);
  n = snprintf(req, sizeof req, "GET /metrics HTTP/1.1\r\nauthorization: Bearer prom:%s\r\n\r\n", secret);
  a = raw_http(&D, req, (size_t)n);
  assert_int_equal(a.code, 200);
  assert_non_null(strstr(a.body, "pintuan_build_info"));
  answer_free(&a);
  a = http_get(&D, "/healthz"); /* probes need no token */
  assert_int_equal(a.code, 200);
  answer_free(&a);
  a = http_get(&D, "/ready");
  assert_int_equal(a.code, 200);
  answer_free(&a);
  admin_ip.s_addr = htonl(INADDR_LOOPBACK);
  char cmd[96];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  assert_int_equal(system(cmd), 0);
}

static void test_token_stays_secret(void **state) {
  (void)state;
  assert_int_equal(daemon_stop(&D), 0);
  char dir[] = "/tmp/pt-akeys-XXXXXX", keys[64], secret[64];
  assert_non_null(mkdtemp(dir));
  assert_int_equal(make_key(dir, "ops", "admin", secret), 0);
  snprintf(keys, sizeof keys, "%s/keys", dir);
  const char *args[] = {"--keys", keys, NULL};
  assert_int_equal(daemon_start(&D, args), 0);
  pintuan_client *c = connect_as(&D, "ops", secret);
  answer a = http_get(&D, "/server_info");
  assert_int_equal(a.code, 200);
  assert_null(strstr(a.raw, secret));
  assert_non_null(strstr(a.body, "\"keys\":1"));
  answer_free(&a);
  char *m = metrics_text(&D);
  assert_null(strstr(m, secret));
  free(m);
  pintuan_close(c);
  char cmd[96];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  assert_int_equal(system(cmd), 0);
}

/* ---- bad HTTP ---- */

static void test_bad_http(void **state) {
  (void)state;
  static const char garbage[] = "\x16\x03\x01 this is not HTTP\r\n\r\n";
  answer a = raw_http(&D, garbage, sizeof garbage - 1);
  assert_int_equal(a.code, 400);
  answer_free(&a);

  size_t big = 16384;
  char *head = malloc(big + 64);
  int n = snprintf(head, 64, "GET /metrics HTTP/1.1\r\nX-Pad: ");
  memset(head + n, 'a', big);
  memcpy(head + n + big, "\r\n\r\n", 4);
  a = raw_http(&D, head, (size_t)n + big + 4);
  assert_int_equal(a.code, 431);
  answer_free(&a);
  free(head);

  a = http_get(&D, "/no/such/path");
  assert_int_equal(a.code, 404);
  answer_free(&a);
  static const char post[] = "POST /metrics HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}";
  a = raw_http(&D, post, sizeof post - 1);
  assert_int_equal(a.code, 405);
  assert_non_null(strstr(a.raw, "Allow: GET, HEAD"));
  answer_free(&a);
  static const char del[] = "DELETE /campaigns/x HTTP/1.1\r\n\r\n";
  a = raw_http(&D, del, sizeof del - 1);
  assert_int_equal(a.code, 405);
  answer_free(&a);
  static const char head_req[] = "HEAD /metrics HTTP/1.1\r\n\r\n";
  a = raw_http(&D, head_req, sizeof head_req - 1);
  assert_int_equal(a.code, 200);
  assert_string_equal(a.body, ""); /* the head only */
  answer_free(&a);

  /* and the daemon serves as before */
  pintuan_client *c = connect_or_die(&D);
  pintuan_response *r;
  assert_int_equal(pintuan_ping(c, &r), 0);
  assert_int_equal(r->status, OK);
  pintuan_response_free(r);
  pintuan_close(c);
}

static void test_half_open_flood(void **state) {
  (void)state;
  struct rlimit rl;
  getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = rl.rlim_max;
  setrlimit(RLIMIT_NOFILE, &rl);
  enum { FLOOD = 1000 };
  static int fds[FLOOD];
  for (int i = 0; i < FLOOD; i++) { /* each starts a request and stops */
    fds[i] = admin_connect(&D);
    send_all(fds[i], "GET /metr", 9);
  }
  /* a new admin client is still answered: the oldest half-open is evicted */
  answer a = http_get(&D, "/healthz");
  assert_int_equal(a.code, 200);
  answer_free(&a);
  char *m = metrics_text(&D);
  promtool_check(m);
  free(m);
  /* the storefront port serves a full run meanwhile */
  pintuan_client *c = connect_or_die(&D);
  assert_int_equal(create_flash(c, "f", 1000, 0, 60000, 0), OK);
  int64_t t0 = pt_mono_ns();
  for (int i = 0; i < 1000; i++) {
    pintuan_response *r;
    char user[16];
    snprintf(user, sizeof user, "u%d", i);
    assert_int_equal(pintuan_reserve(c, "f", user, 1, user, &r), 0);
    assert_int_equal(r->status, OK);
    pintuan_response_free(r);
  }
  printf("# 1000 reservations beside 1000 half-open admin connections: %.1f ms\n",
         (double)(pt_mono_ns() - t0) / 1e6);
  pintuan_close(c);
  /* every one of them is closed by the daemon: evicted by a newer one, or
   * (the last 64) answered 408 when the request timeout passes */
  int64_t end = pt_mono_ns() / 1000000 + PT_WAIT_MS;
  int timed_out = 0;
  for (int i = 0; i < FLOOD; i++) {
    char b[512];
    ssize_t r;
    size_t got = 0;
    for (;;) {
      struct pollfd p = {.fd = fds[i], .events = POLLIN};
      int left = (int)(end - pt_mono_ns() / 1000000);
      if (left <= 0 || poll(&p, 1, left) <= 0) fail_msg("half-open admin connection %d never closed", i);
      r = recv(fds[i], b + got, sizeof b - 1 - got, 0);
      if (r <= 0) break;
      got += (size_t)r;
      if (got == sizeof b - 1) break;
    }
    b[got] = 0;
    if (strstr(b, "HTTP/1.1 408")) timed_out++;
    close(fds[i]);
  }
  printf("# all %d half-open connections closed: %d evicted, %d after the request timeout\n",
         FLOOD, FLOOD - timed_out, timed_out);
  assert_true(timed_out <= PT_ADMIN_TIMEOUT_SLOTS);
}

/* ---- /stats/stream ---- */

/* Reads one line from a stream connection (buffered in *acc); NULL at EOF. */
static json_t *stream_line(int fd, char *acc, size_t *have, size_t cap) {
  int64_t end = pt_mono_ns() / 1000000 + PT_WAIT_MS;
  for (;;) {
    char *nl = memchr(acc, '\n', *have);
    if (nl) {
      *nl = 0;
      json_t *j = json_loads(acc, 0, NULL);
      size_t used = (size_t)(nl + 1 - acc);
      memmove(acc, nl + 1, *have - used);
      *have -= used;
      if (!j) fail_msg("a stream line is not JSON");
      return j;
    }
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int left = (int)(end - pt_mono_ns() / 1000000);
    if (left <= 0 || poll(&p, 1, left) <= 0) fail_msg("no stream line");
    assert_true(*have < cap);
    ssize_t r = recv(fd, acc + *have, cap - *have, 0);
    if (r <= 0) return NULL;
    *have += (size_t)r;
  }
}

static int stream_open(void) {
  int fd = admin_connect(&D);
  static const char req[] = "GET /stats/stream HTTP/1.1\r\n\r\n";
  send_all(fd, req, sizeof req - 1);
  return fd;
}

static void skip_head(int fd, char *acc, size_t *have, size_t cap) {
  int64_t end = pt_mono_ns() / 1000000 + PT_WAIT_MS;
  char *sep;
  for (;;) {
    acc[*have] = 0; /* the head is text */
    if ((sep = strstr(acc, "\r\n\r\n"))) break;
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int left = (int)(end - pt_mono_ns() / 1000000);
    if (left <= 0 || poll(&p, 1, left) <= 0) fail_msg("no stream head");
    ssize_t r = recv(fd, acc + *have, cap - 1 - *have, 0);
    assert_true(r > 0);
    *have += (size_t)r;
  }
  assert_int_equal(strncmp(acc, "HTTP/1.1 200", 12), 0);
  size_t used = (size_t)(sep + 4 - acc);
  memmove(acc, sep + 4, *have - used);
  *have -= used;
}

static void test_stats_stream(void **state) {
  (void)state;
  int stalled = stream_open(); /* asks, then never reads a byte */
  int fd = stream_open();
  static char acc[1 << 16];
  size_t have = 0;
  skip_head(fd, acc, &have, sizeof acc);
  json_t *j = stream_line(fd, acc, &have, sizeof acc);
  assert_non_null(j);
  static const char *keys[] = {"t", "role", "req_s", "ok_s", "sold_out_s", "p99_ms", "conns", "holds"};
  for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++)
    if (!json_object_get(j, keys[k])) fail_msg("stream line without %s", keys[k]);
  json_decref(j);

  /* traffic: some line reports it (the one covering the second it fell in) */
  pintuan_client *c = connect_or_die(&D);
  assert_int_equal(create_flash(c, "s1", 3, 0, 60000, 0), OK);
  for (int i = 0; i < 6; i++) {
    pintuan_response *r;
    char user[16];
    snprintf(user, sizeof user, "u%d", i);
    assert_int_equal(pintuan_reserve(c, "s1", user, 1, user, &r), 0);
    pintuan_response_free(r);
  }
  long req = 0, ok = 0, sold_out = 0;
  int lines = 0;
  while (ok < 4 || sold_out < 3) { /* the rates of 7 requests, spread over lines */
    j = stream_line(fd, acc, &have, sizeof acc);
    assert_non_null(j);
    req += (long)json_integer_value(json_object_get(j, "req_s"));
    ok += (long)json_integer_value(json_object_get(j, "ok_s"));
    sold_out += (long)json_integer_value(json_object_get(j, "sold_out_s"));
    if (json_integer_value(json_object_get(j, "holds")) == 3 && ok >= 4) {
      json_decref(j);
      break;
    }
    json_decref(j);
    if (++lines > 600) fail_msg("the stream never counted the traffic");
  }
  assert_true(req >= 7);
  assert_int_equal(ok, 4);
  assert_int_equal(sold_out, 3);

  /* a reader that vanishes: the others keep their stream, shoppers their port */
  close(fd);
  close(stalled);
  fd = stream_open();
  have = 0;
  skip_head(fd, acc, &have, sizeof acc);
  j = stream_line(fd, acc, &have, sizeof acc);
  assert_non_null(j);
  json_decref(j);
  close(fd);
  pintuan_response *r;
  assert_int_equal(pintuan_ping(c, &r), 0);
  assert_int_equal(r->status, OK);
  pintuan_response_free(r);
  pintuan_close(c);
}

/* The cap's last PT_ADMIN_PROBE_SLOTS slots are the probes': with every
 * other slot following /stats/stream, /healthz and /ready still answer
 * (anything else is told the port is busy), half-open connections on the
 * probe slots are evicted as on the others, and a slot a stream gives
 * back serves everything again. */
static void test_probes_keep_their_slots(void **state) {
  (void)state;
  enum { PROBE_SLOTS = 8, GENERAL = PT_ADMIN_TIMEOUT_SLOTS - PROBE_SLOTS };
  static int streams[PT_ADMIN_TIMEOUT_SLOTS];
  static char acc[4096];
  int open_streams = 0, busy = 0;
  for (int i = 0; i < PT_ADMIN_TIMEOUT_SLOTS; i++) { /* as many streams as the cap, one by one */
    int fd = stream_open();
    size_t have = 0;
    int64_t end = pt_mono_ns() / 1000000 + PT_WAIT_MS;
    for (acc[0] = 0; !strstr(acc, "\r\n\r\n"); acc[have] = 0) { /* its answer's head */
      struct pollfd p = {.fd = fd, .events = POLLIN};
      int left = (int)(end - pt_mono_ns() / 1000000);
      if (left <= 0 || poll(&p, 1, left) <= 0) fail_msg("stream %d: no answer", i);
      ssize_t r = recv(fd, acc + have, sizeof acc - 1 - have, 0);
      if (r <= 0) fail_msg("stream %d: closed without an answer", i);
      have += (size_t)r;
    }
    if (!strncmp(acc, "HTTP/1.1 200", 12)) {
      streams[open_streams++] = fd;
    } else {
      if (strncmp(acc, "HTTP/1.1 503", 12) || !strstr(acc, "admin port busy") || !strstr(acc, "Retry-After: 1"))
        fail_msg("stream %d: %s", i, acc);
      busy++;
      close(fd);
    }
  }
  printf("# %d connections asked for /stats/stream: %d streams, %d told the port is busy\n",
         PT_ADMIN_TIMEOUT_SLOTS, open_streams, busy);
  assert_int_equal(open_streams, GENERAL);
  assert_int_equal(busy, PROBE_SLOTS);

  answer a = http_get(&D, "/healthz");
  assert_int_equal(a.code, 200);
  answer_free(&a);
  a = http_get(&D, "/ready");
  assert_int_equal(a.code, 200);
  assert_string_equal(a.body, "ready\n");
  answer_free(&a);
  static const char head_ready[] = "HEAD /ready HTTP/1.1\r\n\r\n";
  a = raw_http(&D, head_ready, sizeof head_ready - 1);
  assert_int_equal(a.code, 200);
  answer_free(&a);
  a = http_get(&D, "/metrics");
  assert_int_equal(a.code, 503);
  assert_non_null(strstr(a.body, "admin port busy"));
  answer_free(&a);

  /* half-open connections on the probe slots: the oldest makes room */
  enum { HALF = 3 * PROBE_SLOTS };
  int half[HALF];
  for (int i = 0; i < HALF; i++) {
    half[i] = admin_connect(&D);
    send_all(half[i], "GET /hea", 8);
  }
  a = http_get(&D, "/healthz");
  assert_int_equal(a.code, 200);
  answer_free(&a);
  a = http_get(&D, "/ready");
  assert_int_equal(a.code, 200);
  answer_free(&a);
  for (int i = 0; i < HALF; i++) close(half[i]);

  /* a stream that leaves gives its slot back (the daemon sees it at its
   * next line, within a second or two): then /metrics is served again */
  close(streams[--open_streams]);
  int64_t end = pt_mono_ns() / 1000000 + PT_WAIT_MS;
  for (;;) {
    a = http_get(&D, "/metrics");
    int code = a.code;
    answer_free(&a);
    if (code == 200) break;
    assert_int_equal(code, 503);
    if (pt_mono_ns() / 1000000 > end) fail_msg("/metrics never served again");
    usleep(20000); /* a poll interval, not a wait for an outcome */
  }
  /* the storefront port was never affected */
  pintuan_client *c = connect_or_die(&D);
  pintuan_response *r;
  assert_int_equal(pintuan_ping(c, &r), 0);
  assert_int_equal(r->status, OK);
  pintuan_response_free(r);
  pintuan_close(c);
  while (open_streams) close(streams[--open_streams]);
}

/* ---- what the views cost the loop (printed, never asserted) ---- */

/* A storefront client pinging as fast as it is answered, in its own
 * thread: how long the daemon's loop was held shows in its round trips. */
typedef struct pinger {
  const pt_daemon *d;
  volatile int stop;
  double *rtt_ms; /* every round trip */
  size_t n, cap;
  pthread_mutex_t mu;
} pinger;

static void *ping_loop(void *arg) {
  pinger *p = arg;
  pintuan_client *c = connect_or_die(p->d);
  while (!p->stop) {
    int64_t t0 = pt_mono_ns();
    pintuan_response *r;
    if (pintuan_ping(c, &r) != 0) break;
    pintuan_response_free(r);
    pthread_mutex_lock(&p->mu);
    if (p->n < p->cap) p->rtt_ms[p->n++] = (double)(pt_mono_ns() - t0) / 1e6;
    pthread_mutex_unlock(&p->mu);
  }
  pintuan_close(c);
  return NULL;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* Asks path one request at a time, at least 31 times and for at least two
 * seconds, beside the pinger: prints the medians of the time to the
 * answer's first byte and to its end, and the pings' p50, p99 and maximum
 * meanwhile. */
static void view_cost(const char *label, const char *path, pinger *pg) {
  enum { MAX_ROUNDS = 100000 };
  static double first[MAX_ROUNDS], all[MAX_ROUNDS];
  size_t bytes = 0;
  pthread_mutex_lock(&pg->mu);
  pg->n = 0;
  pthread_mutex_unlock(&pg->mu);
  int rounds = 0;
  for (int64_t end = pt_mono_ns() + 2000000000; rounds < MAX_ROUNDS && (rounds < 31 || pt_mono_ns() < end);) {
    int i = rounds++;
    char req[256];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\n\r\n", path);
    int fd = admin_connect(&D);
    int64_t t0 = pt_mono_ns();
    send_all(fd, req, (size_t)n);
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, PT_WAIT_MS) != 1) fail_msg("%s: no answer", path);
    first[i] = (double)(pt_mono_ns() - t0) / 1e6;
    char *raw = read_all(fd, &bytes);
    all[i] = (double)(pt_mono_ns() - t0) / 1e6;
    if (strncmp(raw, "HTTP/1.1 200", 12)) fail_msg("%s: %.100s", path, raw);
    free(raw);
    close(fd);
  }
  pthread_mutex_lock(&pg->mu);
  size_t np = pg->n;
  qsort(pg->rtt_ms, np, sizeof *pg->rtt_ms, cmp_double);
  double p50 = np ? pg->rtt_ms[np / 2] : 0, p99 = np ? pg->rtt_ms[np * 99 / 100] : 0,
         max = np ? pg->rtt_ms[np - 1] : 0;
  pg->n = 0;
  pthread_mutex_unlock(&pg->mu);
  qsort(first, (size_t)rounds, sizeof *first, cmp_double);
  qsort(all, (size_t)rounds, sizeof *all, cmp_double);
  printf("#   %-36s %9zu B, %5d times: first byte %7.3f ms, whole %7.3f ms | %6zu pings: p50 %.3f, p99 %.3f, "
         "max %.3f ms\n",
         label, bytes, rounds, first[rounds / 2], all[rounds / 2], np, p50, p99, max);
}

/* The admin views' cost to the loop, measured from outside (medians of 31
 * or more; BENCHMARKS.md keeps the figures): PT_ADMIN_COST_CAMPAIGNS campaigns
 * (1,000 unless set), all but the oldest 100 ended, so /metrics must look
 * through every one to find its series. Run against another build with
 * PINTUAND=that/pintuand (an older daemon ignores ?cursor and &limit):
 *   PT_TEST_FILTER=test_view_costs PT_ADMIN_COST_CAMPAIGNS=102000 build/tests/test_admin */
static void test_view_costs(void **state) {
  (void)state;
  const char *env = getenv("PT_ADMIN_COST_CAMPAIGNS");
  int n = env ? atoi(env) : 1000, live = n < 100 ? n : 100;
  pintuan_client *c = connect_or_die(&D);
  for (int i = 0; i < n; i++) {
    char id[16], rq[24];
    snprintf(id, sizeof id, "k%d", i);
    assert_int_equal(create_flash(c, id, i, 0, 60000, 0), OK);
    if (i < live) continue;
    snprintf(rq, sizeof rq, "end-%d", i);
    pintuan_response *r;
    assert_int_equal(pintuan_end_campaign(c, id, rq, &r), 0);
    assert_int_equal(r->status, OK);
    pintuan_response_free(r);
  }
  pintuan_close(c);
  static double samples[1 << 20];
  pinger pg = {.d = &D, .rtt_ms = samples, .cap = sizeof samples / sizeof *samples};
  pthread_mutex_init(&pg.mu, NULL);
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, ping_loop, &pg), 0);
  printf("# the admin views with %d campaigns (%d ended), beside a storefront client pinging:\n", n, n - live);
  view_cost("/healthz", "/healthz", &pg);
  view_cost("/campaigns (a page of 100)", "/campaigns", &pg);
  view_cost("/campaigns?limit=1000", "/campaigns?cursor=0&limit=1000", &pg);
  view_cost("/metrics (max_campaign_metrics 100)", "/metrics", &pg);
  pg.stop = 1;
  pthread_join(t, NULL);
  pthread_mutex_destroy(&pg.mu);
}

/* ---- /ready with a real Redis ---- */

static pt_redis_proc R;

/* Polls /ready until its code is want and its body has `says` (bounded by
 * PT_WAIT_MS); returns the body. */
static char *await_ready(const pt_daemon *d, int want, const char *says) {
  int64_t end = pt_mono_ns() / 1000000 + PT_WAIT_MS;
  for (;;) {
    answer a = http_get(d, "/ready");
    if (a.code == want && strstr(a.body, says)) {
      char *body = strdup(a.body);
      answer_free(&a);
      return body;
    }
    answer_free(&a);
    if (pt_mono_ns() / 1000000 > end) fail_msg("/ready never answered %d", want);
    usleep(20000); /* a poll interval, not a wait for an outcome */
  }
}

static pt_daemon A, B; /* test_ready_follows_redis's: the teardown kills what a failure left */

static int kill_leftovers(void **state) {
  (void)state;
  pt_daemon *ds[] = {&A, &B};
  for (int i = 0; i < 2; i++)
    if (ds[i]->pid > 0 && waitpid(ds[i]->pid, NULL, WNOHANG) == 0) {
      kill(ds[i]->pid, SIGKILL);
      waitpid(ds[i]->pid, NULL, 0);
    }
  redis_cleanup(&R);
  return 0;
}

static void test_ready_follows_redis(void **state) {
  (void)state;
  /* Redis keeps what it acknowledged across its own restart */
  const char *aof[] = {"--appendonly", "yes", "--appendfsync", "always", NULL};
  assert_int_equal(redis_start(&R, aof), 0);
  assert_int_equal(shard_init(R.addr, "adm"), 0);
  pt_daemon *a = &A, *b = &B;
  const char *args_a[] = {"--redis", R.addr, "--shard", "adm", "--node-id", "a", "--lease-ms", "5000", NULL};
  assert_int_equal(daemon_start(a, args_a), 0);
  free(await_ready(a, 200, "ready"));
  char *m = metrics_text(a);
  promtool_check(m);
  assert_int_equal(metric_value(m, "pintuan_role{role=\"primary\"}"), 1);
  assert_true(metric_value(m, "pintuan_mirror_epoch") >= 1);
  free(m);

  /* a standby of the same shard is not ready, and says why */
  const char *args_b[] = {"--redis", R.addr, "--shard", "adm", "--node-id", "b", "--lease-ms", "5000", NULL};
  assert_int_equal(daemon_start(b, args_b), 0);
  free(await_ready(b, 503, "not ready: standby"));
  /* its campaign views say it is not the primary, and name it: never an
   * empty list that reads like an empty primary */
  char *cv = admin_get(b, "/campaigns");
  assert_non_null(cv);
  if (!strstr(cv, " 503 ") || !strstr(cv, "\"role\":\"standby\"") || !strstr(cv, a->addr))
    fail_msg("a standby's /campaigns:\n%s", cv);
  free(cv);
  cv = admin_get(a, "/campaigns");
  assert_non_null(strstr(cv, " 200 "));
  assert_non_null(strstr(cv, "\"role\":\"primary\""));
  free(cv);
  assert_int_equal(daemon_stop(b), 0);

  /* mutations go through the mirror: its counters move */
  pintuan_client *c = connect_or_die(a);
  assert_int_equal(create_flash(c, "r1", 5, 0, 60000, 0), OK);
  m = metrics_text(a);
  assert_true(metric_value(m, "pintuan_mirror_records_acknowledged_total") >= 1);
  assert_true(metric_value(m, "pintuan_mirror_append_duration_seconds_count") >= 1);
  assert_true(metric_value(m, "pintuan_mirror_batch_requests_count") >= 1);
  free(m);

  assert_int_equal(redis_stop(&R), 0);
  char *why = await_ready(a, 503, "not ready: ");
  printf("# with Redis stopped, /ready says: %s", why);
  free(why);
  assert_int_equal(redis_restart(&R), 0);
  free(await_ready(a, 200, "ready"));
  pintuan_response *r;
  assert_int_equal(pintuan_reserve(c, "r1", "u1", 1, "rq5", &r), 0);
  assert_int_equal(r->status, OK);
  pintuan_response_free(r);
  m = metrics_text(a);
  assert_true(metric_value(m, "pintuan_mirror_reconnects_total") >= 1);
  free(m);
  pintuan_close(c);
  assert_int_equal(daemon_stop(a), 0);
  A.pid = B.pid = 0;
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  admin_ip.s_addr = htonl(INADDR_LOOPBACK);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_metrics_move_with_traffic, start_plain, stop_clean),
      cmocka_unit_test_setup_teardown(test_metrics_many_campaigns, start_plain, stop_clean),
      cmocka_unit_test_setup_teardown(test_odd_campaign_ids, start_plain, stop_clean),
      cmocka_unit_test_setup_teardown(test_views, start_plain, stop_clean),
      cmocka_unit_test_setup_teardown(test_campaigns_paged, start_plain, stop_clean),
      cmocka_unit_test_setup_teardown(test_token_stays_secret, start_plain, stop_clean),
      cmocka_unit_test_setup_teardown(test_token_beyond_loopback, start_plain, stop_clean),
      cmocka_unit_test_setup_teardown(test_bad_http, start_plain, stop_clean),
      cmocka_unit_test_setup_teardown(test_half_open_flood, start_plain, stop_clean),
      cmocka_unit_test_setup_teardown(test_stats_stream, start_plain, stop_clean),
      cmocka_unit_test_setup_teardown(test_probes_keep_their_slots, start_plain, stop_clean),
      cmocka_unit_test_setup_teardown(test_view_costs, start_plain, stop_clean),
      cmocka_unit_test_teardown(test_ready_follows_redis, kill_leftovers),
  };
  if (getenv("PT_TEST_FILTER")) cmocka_set_test_filter(getenv("PT_TEST_FILTER")); /* test_view_costs, say */
  return cmocka_run_group_tests_name("admin", tests, NULL, NULL);
}
