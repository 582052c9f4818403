/* libFuzzer target: the admin port's HTTP, one connection's bytes to its
 * answer (daemon/admin/conn.c, the core http.c feeds what it reads), over
 * real engines and a real storefront listener's stats. The connection is
 * in memory: what it would write lands in a buffer and is checked. (Over
 * loopback TCP, with the port started on a libuv loop, the same inputs ran
 * at under 400 a second, three quarters of it in the kernel's TCP: the
 * core alone runs thousands of times faster.)
 *
 * The input:
 *   byte 0   flags: 1 the peer is on loopback; 2 it came on a probe slot;
 *            4 a general slot is free when it asks for one; 8 no keys
 *            file (else the key "fuzz", secret "fuzz-secret"); 16 the
 *            engine with 5,000 campaigns (a /metrics scrape takes slices);
 *            32 the daemon is stopping (no storefront: /ready 503);
 *            64 the request timeout passes at the end
 *   then     pieces, each a length byte and that many bytes (0xf0 and up:
 *            (b - 0xef) * 512 bytes), fed as reads are: at most 8,193
 *            bytes each, stopping once the connection stops reading.
 *
 * Checked after every input: at most one write, and only once reading
 * stopped; an answer is one well-formed "HTTP/1.1 NNN Reason" head with
 * Content-Length and Connection: close, then exactly that body (none for a
 * HEAD's success); a JSON answer parses; a stream's head is the stream's;
 * on a probe slot not given a general one, nothing but /healthz and
 * /ready succeeds; beyond loopback with keys, nothing but those succeeds
 * without the key's secret in the request; a scrape ends; what the
 * connection held is freed (the leak check after each input).
 * Seeds: make_seeds writes tests/fuzz/corpus/admin_http/. To see what an
 * input is answered: PT_FUZZ_SHOW=1 fuzz_admin_http FILE. */
#include <arpa/inet.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "admin/admin_int.h"
#include "auth/keys.h"

#define T0 1700000000000LL
#define READ_CHUNK 8193 /* http.c's read buffer */
#define SECRET "fuzz-secret"

static uv_loop_t loop;
static pt_engine *small, *big; /* a few campaigns; 5,000 (a scrape in slices) */
static pt_engine *engine;      /* the one the port reads */
static pt_server *storefront, *server;
static pt_mirror *mirror; /* none: memory-only */
static pt_keys *keys;
static pt_service svc;
static pt_turn turn;
static pt_histo latency;
static pt_config cfg;
static pt_admin_sources src;

/* ---- set up once ---- */

static void add_campaign(pt_engine *e, const char *id, pt_kind kind, int64_t stock, int64_t end_ms) {
  pt_campaign_spec s = {.id = {(const uint8_t *)id, strlen(id)}, .kind = kind, .stock = stock,
                        .hold_ms = 60000, .end_ms = end_ms, .waitlist = kind == PT_FLASH_SALE};
  if (kind == PT_GROUP_BUY) s.group_size = 3, s.group_ttl_ms = 60000;
  char rid[80];
  snprintf(rid, sizeof rid, "create-%s", id);
  pt_result r;
  pt_campaign_create(e, T0, (pt_bytes){(const uint8_t *)rid, strlen(rid)}, &s, &r);
  if (r.status != PT_OK) abort();
}

static pt_keys *keys_file(void) {
  char dir[] = "/tmp/pt-fuzz-adminXXXXXX", path[64], err[256];
  if (!mkdtemp(dir)) abort();
  snprintf(path, sizeof path, "%s/keys", dir);
  FILE *f = fopen(path, "w");
  if (!f) abort();
  /* sha256 of "fuzz-secret" */
  fprintf(f, "fuzz reader sha256:eaab94e20269e8e0bb400fcfd40103905395519f6e1fc441e60faa69c63512d8\n");
  fclose(f);
  pt_keys *k = pt_keys_load(path, err, sizeof err);
  if (!k) fprintf(stderr, "keys: %s\n", err), abort();
  unlink(path);
  rmdir(dir);
  return k;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  signal(SIGPIPE, SIG_IGN);
  pt_engine_config ec = {.idem_window_ms = 60000, .max_remembered = 1000, .hash_seed = 1};
  small = pt_engine_new(&ec);
  add_campaign(small, "c1", PT_FLASH_SALE, 10, 0);
  add_campaign(small, "g1", PT_GROUP_BUY, 30, 0);
  add_campaign(small, "a\"b\\c\xff", PT_FLASH_SALE, 3, 0);
  add_campaign(small, "ended", PT_FLASH_SALE, 1, T0 + 1);
  big = pt_engine_new(&ec);
  add_campaign(big, "running", PT_GROUP_BUY, 5, 0);
  for (int i = 0; i < 5000; i++) { /* ended: a scrape looks through them all */
    char id[16];
    snprintf(id, sizeof id, "e%d", i);
    add_campaign(big, id, PT_FLASH_SALE, i, T0 + 1);
  }
  keys = keys_file();
  cfg.max_campaign_metrics = 100;
  /* a storefront listener (never run), so the daemon is ready and has stats */
  uv_loop_init(&loop);
  pt_server_config sc = {.nlisten = 1, .max_frame = 65536, .out_high = 1 << 20, .out_hard = 16 << 20,
                         .max_clients = 16, .frame_timeout_ms = 10000};
  struct sockaddr_in *lo = (struct sockaddr_in *)&sc.listen[0];
  lo->sin_family = AF_INET;
  lo->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  static const pt_server_hooks hooks = {0};
  char err[256];
  storefront = pt_server_start(&loop, &sc, &hooks, err, sizeof err);
  if (!storefront) fprintf(stderr, "storefront: %s\n", err), abort();
  src = (pt_admin_sources){.engine = &engine, .server = &server, .mirror = &mirror, .svc = &svc,
                           .latency = &latency, .loop_busy = &latency, .cfg = &cfg, .turn = &turn, .mode = PT_MIRROR_OFF,
                           .node_id = "", .started_ms = T0};
  return 0;
}

/* ---- the transport, in memory ---- */

typedef struct fake_io {
  bool reading, scrape_later, promote_ok;
  unsigned writes;
  abuf out;
} fake_io;
static fake_io io;

void admin_io_send(admin_conn *c, abuf *b) {
  if (io.reading || c->state == C_READING || io.writes++) abort(); /* once, after reading stopped */
  io.out = *b;
  *b = (abuf){0};
}

void admin_io_stop_reading(admin_conn *c) {
  (void)c;
  io.reading = false;
}

void admin_io_scrape_later(admin_conn *c) {
  if (c->state != C_SCRAPING || io.scrape_later) abort();
  io.scrape_later = true;
}

bool admin_io_promote(admin_conn *c) {
  if (!c->probe || !io.promote_ok) return false;
  c->probe = false;
  return true;
}

/* ---- the checks ---- */

static void fail(const char *why) {
  fprintf(stderr, "%s\n---\n%.*s\n---\n", why, (int)(io.out.len < 600 ? io.out.len : 600),
          io.out.p ? io.out.p : "");
  abort();
}

/* The answer: returns its status, with its body in *body. */
static int check_answer(const admin_conn *c, const char **body, size_t *body_len) {
  const char *p = io.out.p, *end = p + io.out.len;
  if (io.out.len < 17 || memcmp(p, "HTTP/1.1 ", 9) || p[9] < '1' || p[9] > '5' || p[10] < '0' ||
      p[10] > '9' || p[11] < '0' || p[11] > '9' || p[12] != ' ')
    fail("not an HTTP/1.1 status line");
  int code = atoi(p + 9);
  const char *eol = strstr(p, "\r\n");
  if (!eol || eol == p + 13) fail("a status line without its reason");
  for (const char *q = p + 13; q < eol; q++)
    if (*q < 0x20 || *q > 0x7e) fail("a reason phrase that is not text");
  const char *sep = strstr(p, "\r\n\r\n");
  if (!sep) fail("a head without its end");
  *body = sep + 4;
  *body_len = (size_t)(end - *body);
  /* each header a "Name: value" line */
  for (const char *line = eol + 2; line < sep + 2;) {
    const char *next = strstr(line, "\r\n"), *colon = memchr(line, ':', (size_t)(next - line));
    if (!colon || colon == line || colon[1] != ' ') fail("a malformed header");
    line = next + 2;
  }
  if (c->state == C_STREAMING) {
    if (code != 200 || c->parser.method != HTTP_GET || *body_len ||
        !strstr(p, "\r\nContent-Type: application/x-ndjson\r\n") || strstr(p, "Content-Length"))
      fail("a stream's head is not one");
    return code;
  }
  const char *cl = strstr(p, "\r\nContent-Length: ");
  if (!cl || cl > sep || !strstr(p, "\r\nConnection: close\r\n")) fail("no Content-Length or Connection: close");
  size_t want = strtoul(cl + 18, NULL, 10);
  bool head_only = c->parser.method == HTTP_HEAD && code < 400;
  if (head_only ? *body_len != 0 : *body_len != want) fail("the body is not the length said");
  if (!head_only && strstr(p, "Content-Type: application/json")) {
    json_error_t je;
    json_t *j = json_loadb(*body, *body_len, 0, &je);
    if (!j) fail("a JSON answer that does not parse");
    json_decref(j);
  }
  return code;
}

/* The request was for /healthz or /ready. */
static bool probe_path(const admin_conn *c) {
  struct http_parser_url u;
  http_parser_url_init(&u);
  if (http_parser_parse_url(c->url, c->url_len, 0, &u) || !(u.field_set & (1 << UF_PATH))) return false;
  const char *p = c->url + u.field_data[UF_PATH].off;
  size_t n = u.field_data[UF_PATH].len;
  return (n == 8 && !memcmp(p, "/healthz", 8)) || (n == 6 && !memcmp(p, "/ready", 6));
}

static bool contains(const abuf *b, const char *s) {
  size_t n = strlen(s);
  for (size_t i = 0; i + n <= b->len; i++)
    if (!memcmp(b->p + i, s, n)) return true;
  return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  uint8_t flags = data[0];
  engine = flags & 16 ? big : small;
  server = flags & 32 ? NULL : storefront;
  svc.keys = flags & 8 ? NULL : keys;
  io = (fake_io){.reading = true, .promote_ok = flags & 4};
  admin_conn c;
  bool probe = flags & 2, loopback = flags & 1;
  admin_conn_init(&c, &src, loopback, probe);
  abuf sent = {0}; /* what reached the parser */
  for (size_t i = 1; i < size && io.reading;) {
    uint8_t b = data[i++];
    size_t n = b < 0xf0 ? b : (size_t)(b - 0xef) * 512;
    if (n > size - i) n = size - i;
    for (size_t off = 0; off < n && io.reading;) { /* as reads come: at most READ_CHUNK */
      size_t k = n - off < READ_CHUNK ? n - off : READ_CHUNK;
      abuf_add(&sent, data + i + off, k);
      admin_conn_feed(&c, (const char *)data + i + off, k);
      off += k;
    }
    i += n;
  }
  for (int turns = 0; c.state == C_SCRAPING; turns++) { /* the loop turns to come */
    if (!io.scrape_later || turns > 100) abort();
    admin_conn_scrape_step(&c);
  }
  if ((flags & 64) && c.state == C_READING) admin_conn_timeout(&c);

  if (getenv("PT_FUZZ_SHOW"))
    fprintf(stderr, "%s: %.*s\n", c.state == C_READING ? "reading" : "answered",
            (int)(io.out.len < 300 ? io.out.len : 300), io.out.p ? io.out.p : "");
  if (c.state == C_READING) {
    if (io.writes || !io.reading) abort(); /* nothing said, still listening */
  } else {
    if (io.writes != 1 || io.reading) abort();
    const char *body;
    size_t body_len;
    int code = check_answer(&c, &body, &body_len);
    if (code == 200 && !probe_path(&c)) {
      if (c.probe) fail("a probe slot served more than the probes");
      if (svc.keys && !loopback && !contains(&sent, SECRET)) fail("served beyond loopback without the key");
    }
  }
  admin_conn_free(&c);
  free(io.out.p);
  free(sent.p);
  return 0;
}
