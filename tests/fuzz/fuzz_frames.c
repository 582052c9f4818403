/* libFuzzer target: a byte stream as one connection would send it, cut
 * into frames by the wire's framing (pt_frame_next), each frame decoded and
 * dispatched by the service against a real engine, as pintuand does. Every
 * reply must be a well-formed Response, and every campaign's stock must add
 * up after each frame. The connection is in memory (replies go to a buffer):
 * what is fuzzed is framing, decoding, validation and the engine, not TCP.
 *
 * Build: meson setup build-fuzz -Dfuzz=true (clang); run: tests/fuzz/run.sh */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "frame.h"
#include "net/server.h"
#include "pintuan.pb-c.h"
#include "service/service.h"
#include "turn.h"

#define T0 1700000000000LL
#define MAX_FRAME (64 * 1024)

/* ---- the connection: replies land in a buffer and are checked ---- */

struct pt_conn {
  uint8_t *buf;
  size_t cap, len, start; /* start: the reply being written */
  uint32_t flags;
  _Alignas(16) uint8_t data[PT_CONN_DATA];
};

static void check_reply(pt_conn *c) {
  if (!c->len) return;
  Pintuan__V1__Response *r = pintuan__v1__response__unpack(NULL, c->len - c->start, c->buf + c->start);
  if (!r || !r->has_status) abort(); /* the daemon wrote something that is not a Response */
  pintuan__v1__response__free_unpacked(r, NULL);
}

uint8_t *pt_conn_reply(pt_conn *c, size_t len) {
  check_reply(c); /* the previous one is complete now */
  if (len > c->cap) {
    c->cap = len * 2;
    c->buf = realloc(c->buf, c->cap);
    if (!c->buf) abort();
  }
  c->start = 0;
  c->len = len;
  return c->buf;
}
uint8_t *pt_conn_reply_stateless(pt_conn *c, size_t len) { return pt_conn_reply(c, len); }
uint32_t *pt_conn_flags(pt_conn *c) { return &c->flags; }
uint64_t pt_conn_id(const pt_conn *c) { (void)c; return 1; }
void pt_conn_close_after_flush(pt_conn *c) { (void)c; }
void pt_conn_demote(pt_conn *c) { (void)c; }
void pt_conn_close_after(pt_conn *c, uint64_t ms) { (void)c, (void)ms; }
void pt_conn_keep_when_idle(pt_conn *c) { (void)c; }
const char *pt_conn_peer(pt_conn *c, char *buf, size_t size) {
  (void)c;
  snprintf(buf, size, "127.0.0.1:1");
  return buf;
}
void *pt_conn_data(pt_conn *c) { return c->data; }
void pt_server_each(pt_server *s, void (*fn)(void *ctx, pt_conn *c), void *ctx) { (void)s, (void)fn, (void)ctx; }

static pt_service svc;
static void on_event(void *ctx, const pt_event *ev) { (void)ctx, pt_service_on_event(&svc, ev); }

static void check_stock(pt_engine *e) {
  for (size_t i = 0; i < pt_campaign_count(e); i++) {
    pt_campaign_info ci;
    pt_campaign_info_get(e, pt_campaign_at(e, i), T0, &ci);
    if (ci.available + ci.held + ci.sold != ci.stock || ci.available < 0 || ci.held < 0) abort();
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  pt_engine_config cfg = {.idem_window_ms = 60000, .max_remembered = 1000, .hash_seed = 1,
                          .sink = {.event = on_event}};
  pt_engine *e = pt_engine_new(&cfg);
  pt_turn turn = {.engine = e};
  svc = (pt_service){.engine = e, .turn = &turn};
  pt_conn conn = {0};
  int64_t now = T0;
  size_t off = 0;
  const uint8_t *msg;
  size_t len;
  while (pt_frame_next(data + off, size - off, MAX_FRAME, &msg, &len) == PT_FRAME_OK) {
    turn.now = now; /* one turn per frame, the clock moving by the frame's length */
    /* with the lookahead's note (alternately), and without one */
    _Alignas(16) uint8_t note[PT_FRAME_NOTE];
    bool noted = (off / 7) % 2;
    if (noted) pt_service_lookahead(&svc, msg, len, note);
    pt_service_on_frame(&svc, &conn, msg, len, noted ? note : NULL);
    check_reply(&conn);
    conn.len = 0;
    pt_engine_advance(e, now);
    check_stock(e);
    now += (int64_t)len * 97;
    off += PT_FRAME_HEADER + len;
  }
  pt_service_on_close(&svc, &conn);
  pt_service_free(&svc);
  pt_engine_free(e);
  free(conn.buf);
  return 0;
}
