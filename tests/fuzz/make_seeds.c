/* Writes the fuzzers' seed corpora (tests/fuzz/corpus/TARGET/): a stream of
 * every kind of request (flash sale, group buy, admin, queries, subscribe,
 * a malformed frame), single Reserve and Join frames, a real engine
 * snapshot, two small captures (the request stream; a session's decisions
 * from a state, as exact replay reads them), admin port requests (each
 * path, HEAD, bad methods and URLs, huge heads, keys, in pieces) and
 * journal records as the mirror writes them, and scripts of clients for
 * the storefront port's sockets. Run by hand when the protocol or the
 * formats change: make_seeds DIR. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <msgpack.h>

#include "capture.h"
#include "engine.h"
#include "input.h"
#include "frame.h"
#include "mirror/record.h"
#include "pintuan.pb-c.h"
#include "record_base.h"

static ProtobufCBinaryData bin(const char *s) {
  return (ProtobufCBinaryData){strlen(s), (uint8_t *)s};
}

static uint8_t stream[1 << 16];
static size_t stream_len;
static uint64_t next_id = 1;

static size_t frame(Pintuan__V1__Request *q, uint8_t *out) {
  q->has_id = 1, q->id = next_id++;
  size_t n = pintuan__v1__request__get_packed_size(q);
  pt_be32_put(out, (uint32_t)n);
  pintuan__v1__request__pack(q, out + PT_FRAME_HEADER);
  return PT_FRAME_HEADER + n;
}

static void add(Pintuan__V1__Request *q) { stream_len += frame(q, stream + stream_len); }

static void put_file(const char *dir, const char *name, const void *p, size_t n) {
  char path[1100];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "wb");
  if (!f || fwrite(p, 1, n, f) != n || fclose(f)) {
    perror(path);
    exit(1);
  }
}

/* An admin port request as fuzz_admin_http reads it: the flags byte, then
 * the request in pieces of `piece` bytes, each after its length byte (512
 * and more as 0xf0 + k: (k + 1) * 512 bytes). */
static void admin_seed(const char *dir, const char *name, uint8_t flags, size_t piece, const char *req,
                       size_t len) {
  static uint8_t out[1 << 16];
  size_t n = 0;
  out[n++] = flags;
  for (size_t off = 0; off < len;) {
    size_t k = len - off < piece ? len - off : piece;
    if (k >= 512) {
      k -= k % 512;
      out[n++] = (uint8_t)(0xef + k / 512);
    } else {
      if (k > 0xef) k = 0xef;
      out[n++] = (uint8_t)k;
    }
    memcpy(out + n, req + off, k);
    n += k, off += k;
  }
  put_file(dir, name, out, n);
}

static void admin_seeds(const char *dir) {
  enum { LOOPBACK = 1, PROBE_SLOT = 2, SLOT_FREE = 4, NO_KEYS = 8, BIG = 16, STOPPING = 32, TIMEOUT = 64 };
  static const struct {
    const char *name;
    uint8_t flags;
    size_t piece;
    const char *req;
  } seeds[] = {
      {"get-metrics", LOOPBACK, 4096, "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:7734\r\nAccept: */*\r\n\r\n"},
      {"get-metrics-slices", LOOPBACK | BIG, 7, "GET /metrics HTTP/1.1\r\n\r\n"},
      {"head-metrics", LOOPBACK, 4096, "HEAD /metrics HTTP/1.1\r\n\r\n"},
      {"get-campaigns", LOOPBACK, 4096, "GET /campaigns HTTP/1.1\r\n\r\n"},
      {"get-campaigns-cursor", LOOPBACK, 4096, "GET /campaigns?cursor=2&limit=1 HTTP/1.1\r\n\r\n"},
      {"get-campaigns-cursor-big", LOOPBACK | BIG, 4096,
       "GET /campaigns/?limit=1000&cursor=4000&x=1 HTTP/1.1\r\n\r\n"},
      {"get-campaigns-bad-limit", LOOPBACK, 4096, "GET /campaigns?limit=0&cursor=-1 HTTP/1.1\r\n\r\n"},
      {"get-campaign-id", LOOPBACK, 4096, "GET /campaigns/a%22b%5Cc%FF HTTP/1.1\r\n\r\n"},
      {"get-campaign-bad-id", LOOPBACK, 4096, "GET /campaigns/%zz HTTP/1.1\r\n\r\n"},
      {"get-server-info", LOOPBACK, 4096, "GET /server_info?pretty=no HTTP/1.1\r\n\r\n"},
      {"get-stream", LOOPBACK, 4096, "GET /stats/stream HTTP/1.1\r\n\r\n"},
      {"head-stream", LOOPBACK, 4096, "HEAD /stats/stream HTTP/1.1\r\n\r\n"},
      {"get-healthz", 0, 4096, "GET /healthz HTTP/1.1\r\n\r\n"},
      {"get-ready-stopping", STOPPING, 4096, "GET /ready HTTP/1.0\r\n\r\n"},
      {"probe-slot-ready", PROBE_SLOT, 4096, "GET /ready HTTP/1.1\r\n\r\n"},
      {"probe-slot-metrics", LOOPBACK | PROBE_SLOT, 4096, "GET /metrics HTTP/1.1\r\n\r\n"},
      {"probe-slot-promoted", LOOPBACK | PROBE_SLOT | SLOT_FREE, 4096, "GET /campaigns HTTP/1.1\r\n\r\n"},
      {"remote-key", 0, 5,
       "GET /server_info HTTP/1.1\r\nAuthorization: Bearer fuzz:fuzz-secret\r\n\r\n"},
      {"remote-key-lowercase", 0, 4096,
       "GET /metrics HTTP/1.1\r\nauthorization: Bearer fuzz:fuzz-secret\r\nHost: x\r\n\r\n"},
      {"remote-wrong-key", 0, 4096, "GET /metrics HTTP/1.1\r\nAuthorization: Bearer fuzz:fuzz-secreT\r\n\r\n"},
      {"remote-basic", 0, 4096, "GET /campaigns HTTP/1.1\r\nAuthorization: Basic Zm9vOmJhcg==\r\n\r\n"},
      {"remote-no-key", 0, 4096, "GET /stats/stream HTTP/1.1\r\n\r\n"},
      {"remote-no-keys-file", NO_KEYS, 4096, "GET /server_info HTTP/1.1\r\n\r\n"},
      {"post", LOOPBACK, 4096, "POST /metrics HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}"},
      {"delete", LOOPBACK, 4096, "DELETE /campaigns/c1 HTTP/1.1\r\n\r\n"},
      {"options-star", LOOPBACK, 4096, "OPTIONS * HTTP/1.1\r\n\r\n"},
      {"absolute-url", LOOPBACK, 4096, "GET http://127.0.0.1:7734/metrics HTTP/1.1\r\n\r\n"},
      {"not-found", LOOPBACK, 4096, "GET /no/such/path HTTP/1.1\r\n\r\n"},
      {"garbage", LOOPBACK, 4096, "\x16\x03\x01 this is not HTTP\r\n\r\n"},
      {"pipelined", LOOPBACK, 4096, "GET /healthz HTTP/1.1\r\n\r\nGET /metrics HTTP/1.1\r\n\r\n"},
      {"one-byte-pieces", LOOPBACK, 1,
       "GET /campaigns/g1 HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer x:y\r\nX-A: b\r\n\r\n"},
      {"incomplete-timeout", LOOPBACK | TIMEOUT, 4096, "GET /metr"},
      {"chunked-get", LOOPBACK, 4096,
       "GET /healthz HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"},
  };
  for (size_t i = 0; i < sizeof seeds / sizeof *seeds; i++)
    admin_seed(dir, seeds[i].name, seeds[i].flags, seeds[i].piece, seeds[i].req, strlen(seeds[i].req));
  /* heads too long: a 16 KiB header (431), a 2,000-byte URL (414) */
  static char big[20000];
  int n = snprintf(big, sizeof big, "GET /metrics HTTP/1.1\r\nX-Pad: ");
  memset(big + n, 'a', 16384);
  memcpy(big + n + 16384, "\r\n\r\n", 4);
  admin_seed(dir, "huge-header", LOOPBACK, 4096, big, (size_t)n + 16388);
  n = snprintf(big, sizeof big, "GET /campaigns/");
  memset(big + n, 'x', 2000);
  n += 2000;
  n += snprintf(big + n, sizeof big - (size_t)n, " HTTP/1.1\r\n\r\n");
  admin_seed(dir, "long-url", LOOPBACK, 1000, big, (size_t)n);
  n = snprintf(big, sizeof big, "GET /metrics HTTP/1.1\r\nAuthorization: Bearer ");
  memset(big + n, 'k', 400);
  n += 400;
  n += snprintf(big + n, sizeof big - (size_t)n, "\r\n\r\n");
  admin_seed(dir, "long-authorization", 0, 100, big, (size_t)n);
}

static int to_file(void *ctx, const void *p, size_t n) { return fwrite(p, 1, n, ctx) == n ? 0 : -1; }

/* ---- journal records (fuzz_record) ---- */

#define B(s) ((pt_bytes){(const uint8_t *)(s), sizeof(s) - 1})

/* A record as the mirror builds one (mirror.c): room for the header, the
 * inputs packed as they are applied to the live engine (each with the
 * digest of its answer), the header written last. */
typedef struct rec {
  msgpack_sbuffer sb;
  msgpack_packer pk;
} rec;

static void rec_open(rec *k) {
  static const char room[PT_RECORD_HEAD];
  msgpack_sbuffer_init(&k->sb);
  msgpack_sbuffer_write(&k->sb, room, sizeof room);
  msgpack_packer_init(&k->pk, &k->sb, msgpack_sbuffer_write);
}

static pt_result rec_apply(rec *k, pt_engine *e, const pt_input *in) {
  pt_result r;
  pt_input_apply(e, in, &r);
  pt_input_pack(&k->pk, in, pt_input_is_request(in->kind) ? &r : NULL);
  return r;
}

/* Three records of one journal from the fuzzer's base (record_base.h):
 * an era's id key, creates, reserves (held, over the limit, waitlisted,
 * a retry), confirms and cancels naming their users, a group opened and
 * joined by its link, settings, advances with and without budgets. The
 * seeds: the journal, one record alone, a gap skipped, and a record
 * applied out of place (its answers differ from those recorded). */
static int write_records(const char *dir) {
  pt_engine *e = rb_engine();
  rec k[3];
  for (int i = 0; i < 3; i++) rec_open(&k[i]);
  int64_t t = RB_T0 + 1;
  pt_input key = {.kind = PT_IN_ID_KEY, .now = t, .id_tag = 7,
                  .id_key = {2, 7, 1, 8, 2, 8, 1, 8, 2, 8, 4, 5, 9, 0, 4, 5}};
  rec_apply(&k[0], e, &key);
  pt_input c2 = {.kind = PT_IN_CREATE, .now = t, .request_id = B("mk"),
                 .spec = {.id = B("c2"), .kind = PT_FLASH_SALE, .stock = 2, .per_user_limit = 1,
                          .hold_ms = 500}};
  c2.campaign_id = c2.spec.id;
  rec_apply(&k[0], e, &c2);
  pt_input rv = {.kind = PT_IN_RESERVE, .now = t, .request_id = B("r1"), .campaign_id = B("c1"),
                 .user_id = B("ann"), .quantity = 1};
  uint64_t ann = rec_apply(&k[0], e, &rv).reservation_id;
  rv.request_id = B("r2"), rv.user_id = B("bob"), rv.quantity = 2;
  uint64_t bob = rec_apply(&k[0], e, &rv).reservation_id;
  rv.request_id = B("r3"), rv.user_id = B("cat"), rv.quantity = 1; /* sold out: waitlisted */
  rec_apply(&k[0], e, &rv);
  rv.request_id = B("r4"), rv.campaign_id = B("c2"), rv.user_id = B("ann"), rv.quantity = 2;
  rec_apply(&k[0], e, &rv); /* over c2's limit */
  t += 100;
  pt_input cf = {.kind = PT_IN_CONFIRM, .now = t, .request_id = B("p1"), .campaign_id = B("c1"),
                 .reservation_id = ann, .user_id = B("ann")};
  rec_apply(&k[1], e, &cf);
  pt_input cn = {.kind = PT_IN_CANCEL, .now = t, .request_id = B("x1"), .campaign_id = B("c1"),
                 .reservation_id = bob, .user_id = B("bob")};
  rec_apply(&k[1], e, &cn); /* cat's wait is granted */
  pt_input jn = {.kind = PT_IN_JOIN, .now = t, .request_id = B("j1"), .campaign_id = B("g1"),
                 .user_id = B("ann"), .mode = PT_JOIN_OPEN, .new_user = true};
  pt_result lead = rec_apply(&k[1], e, &jn);
  jn.request_id = B("j2"), jn.user_id = B("bob"), jn.mode = PT_JOIN_GROUP, jn.group_id = lead.group_id;
  rec_apply(&k[1], e, &jn);
  cf.request_id = B("p2"), cf.campaign_id = B("g1"), cf.reservation_id = lead.reservation_id;
  rec_apply(&k[1], e, &cf); /* ann's seat paid, bob's not yet */
  rv.request_id = B("r1"), rv.campaign_id = B("c1"), rv.user_id = B("ann"), rv.quantity = 1, rv.now = t;
  rec_apply(&k[1], e, &rv); /* a retry: the original answer */
  t += 1500; /* past the holds' payment window */
  pt_input adv = {.kind = PT_IN_ADVANCE, .now = t, .value = 1};
  rec_apply(&k[2], e, &adv);
  adv.value = -1;
  rec_apply(&k[2], e, &adv);
  adv.value = 0;
  rec_apply(&k[2], e, &adv);
  pt_input up = {.kind = PT_IN_UPDATE, .now = t, .request_id = B("u1"), .campaign_id = B("c1"),
                 .changes = {.fields = PT_UPD_STOCK | PT_UPD_LIMIT, .stock = 5, .per_user_limit = 3}};
  rec_apply(&k[2], e, &up);
  pt_input en = {.kind = PT_IN_END, .now = t, .request_id = B("e1"), .campaign_id = B("c2")};
  rec_apply(&k[2], e, &en);
  pt_input set = {.kind = PT_IN_WINDOW, .now = t, .value = 30000};
  rec_apply(&k[2], e, &set);
  set.kind = PT_IN_MAX_REMEMBERED, set.value = 500;
  rec_apply(&k[2], e, &set);
  adv.now = t + 60000;
  rec_apply(&k[2], e, &adv);
  pt_engine_free(e);
  for (int i = 0; i < 3; i++) pt_record_head((uint8_t *)k[i].sb.data, 3, (uint64_t)i + 1);

  /* each file: records joined by the fuzzer's separator */
  msgpack_sbuffer f;
  msgpack_sbuffer_init(&f);
  struct { const char *name; int order[3]; } seeds[] = {
      {"journal", {0, 1, 2}}, {"one-record", {0, -1, -1}}, {"gap-skipped", {0, 2, 1}},
  };
  for (size_t s = 0; s < sizeof seeds / sizeof seeds[0]; s++) {
    f.size = 0;
    for (int i = 0; i < 3 && seeds[s].order[i] >= 0; i++) {
      if (i) msgpack_sbuffer_write(&f, RB_SEP, RB_SEP_LEN);
      msgpack_sbuffer_write(&f, k[seeds[s].order[i]].sb.data, k[seeds[s].order[i]].sb.size);
    }
    put_file(dir, seeds[s].name, f.data, f.size);
  }
  f.size = 0;
  msgpack_sbuffer_write(&f, k[1].sb.data, k[1].sb.size);
  pt_record_head((uint8_t *)f.data, 3, 1); /* the second record first: its confirm finds no hold */
  put_file(dir, "out-of-place", f.data, f.size);
  msgpack_sbuffer_destroy(&f);

  /* they replay as recorded (else the fuzzer starts from refusals only) */
  e = rb_engine();
  uint64_t n = 0;
  char err[256];
  pt_record_head_info h;
  int rc = 0;
  for (int i = 0; i < 3 && !rc; i++)
    if (pt_record_apply(e, k[i].sb.data, k[i].sb.size, (uint64_t)i, &h, &n, err, sizeof err)) {
      fprintf(stderr, "record %d does not replay: %s\n", i + 1, err);
      rc = 1;
    }
  pt_engine_free(e);
  for (int i = 0; i < 3; i++) msgpack_sbuffer_destroy(&k[i].sb);
  return rc;
}

/* ---- scripts of clients for fuzz_server (its header says the format) ---- */

enum { S_CONNECT, S_SEND, S_SEND_RUN, S_SHUT, S_CLOSE, S_READ, S_RUN, S_CTRL };
enum { C_RELEASE, C_RELEASE_ALL, C_DROP_HELD, C_SEALING, C_PUSH, C_CLOSE_ODD, C_TICK, C_SWEEP, C_SLEEP };
/* frame actions: the first byte & 7 */
enum { A_ECHO = 0, A_REFUSAL = 3, A_FAT = 4, A_CLOSE = 5, A_LINGER = 6, A_KEEP = 7 };

typedef struct script {
  uint8_t b[4096];
  size_t n;
} script;

static script *s_new(uint8_t b0, uint8_t b1, uint8_t b2) {
  static script s;
  s.n = 0;
  s.b[s.n++] = b0, s.b[s.n++] = b1, s.b[s.n++] = b2;
  return &s;
}
static void s_op(script *s, int kind, int slot, int arg) { s->b[s->n++] = (uint8_t)(kind << 5 | slot << 3 | arg); }
static void s_ctrl(script *s, int sub) { s_op(s, S_CTRL, sub >> 3, sub & 7); }
static void s_send(script *s, int slot, bool run, const uint8_t *p, size_t n) {
  if (n >= 1 && n <= 7) {
    s_op(s, run ? S_SEND_RUN : S_SEND, slot, (int)n - 1);
  } else {
    s_op(s, run ? S_SEND_RUN : S_SEND, slot, 7);
    s->b[s->n++] = (uint8_t)n;
  }
  memcpy(s->b + s->n, p, n);
  s->n += n;
}
/* one frame: its length, the action byte, then text */
static size_t s_frame(uint8_t *out, uint8_t action, const char *text) {
  size_t n = 1 + strlen(text);
  pt_be32_put(out, (uint32_t)n);
  out[PT_FRAME_HEADER] = action;
  memcpy(out + PT_FRAME_HEADER + 1, text, n - 1);
  return PT_FRAME_HEADER + n;
}

static void server_seeds(const char *dir) {
  enum { MF6 = 0, MF24 = 1, MF100 = 2, MF1000 = 3, SEAL = 4, TLS = 8, CERTS = 16, AHEAD = 32 };
  enum { CLIENTS1 = 0 << 6, CLIENTS2 = 1 << 6, CLIENTS3 = 2 << 6, CLIENTS16 = 3 << 6 };
  /* byte 1: out_high 16 << 6 = 1 KiB, out_hard x 4096, no inflight bound, no budget */
  const uint8_t roomy = 6 | 3 << 3;
  uint8_t f[1200];
  size_t n;
  script *s;

  /* a frame split at every byte, the loop run between; a second one too */
  s = s_new(MF100 | CLIENTS16, roomy, 0);
  s_op(s, S_CONNECT, 0, 0);
  n = s_frame(f, A_ECHO, "split at every byte");
  n += s_frame(f + n, A_REFUSAL, "and this");
  for (size_t i = 0; i < n; i++) s_send(s, 0, true, f + i, 1);
  s_op(s, S_READ, 0, 0);
  put_file(dir, "split-every-byte", s->b, s->n);

  /* several frames in one send, each action once (a lookahead hook) */
  s = s_new(MF100 | AHEAD | CLIENTS16, roomy, 0);
  s_op(s, S_CONNECT, 0, 0);
  n = s_frame(f, A_ECHO, "one");
  n += s_frame(f + n, A_REFUSAL, "two");
  n += s_frame(f + n, A_FAT, "three");
  n += s_frame(f + n, A_KEEP, "four");
  n += s_frame(f + n, 1, "five");
  n += s_frame(f + n, A_ECHO, "");
  s_send(s, 0, true, f, n);
  s_op(s, S_RUN, 0, 1);
  s_op(s, S_READ, 0, 0);
  put_file(dir, "several-in-one-send", s->b, s->n);

  /* closes in the middle of a frame: RST, an orderly close, a shutdown */
  s = s_new(MF100 | CLIENTS16, roomy, 0);
  for (int c = 0; c < 3; c++) {
    s_op(s, S_CONNECT, c, 0);
    n = s_frame(f, A_ECHO, "whole");
    n += s_frame(f + n, A_ECHO, "cut in the middle");
    s_send(s, c, true, f, n - 6);
  }
  s_op(s, S_RUN, 0, 0);
  s_op(s, S_CLOSE, 0, 0);
  s_op(s, S_CLOSE, 1, 1);
  s_op(s, S_SHUT, 2, 0);
  s_op(s, S_RUN, 0, 2);
  s_op(s, S_READ, 2, 0);
  put_file(dir, "close-mid-frame", s->b, s->n);

  /* a frame over max_frame (24): the error, then the close; its length
   * alone, and with a body */
  s = s_new(MF24 | CLIENTS16, roomy, 0);
  s_op(s, S_CONNECT, 0, 0);
  s_op(s, S_CONNECT, 1, 0);
  n = s_frame(f, A_ECHO, "fits");
  memset(f + n, 'x', 40);
  pt_be32_put(f + n, 36);
  s_send(s, 0, true, f, n + 40);
  s_send(s, 1, true, f, n + 4);
  s_op(s, S_RUN, 0, 2);
  s_op(s, S_READ, 0, 0);
  put_file(dir, "oversize", s->b, s->n);

  /* held output: sealed turns released one by one, a drop of what is held */
  s = s_new(MF100 | SEAL | CLIENTS16, roomy, 0);
  s_op(s, S_CONNECT, 0, 0);
  s_op(s, S_CONNECT, 1, 0);
  for (int i = 0; i < 3; i++) {
    n = s_frame(f, i == 1 ? A_REFUSAL : A_ECHO, "held");
    s_send(s, 0, true, f, n);
    s_op(s, S_RUN, 0, 0);
  }
  s_ctrl(s, C_RELEASE);
  s_op(s, S_RUN, 0, 0);
  s_op(s, S_READ, 0, 0);
  n = s_frame(f, A_ECHO, "dropped");
  s_send(s, 1, true, f, n);
  s_op(s, S_RUN, 0, 0);
  s_ctrl(s, C_DROP_HELD);
  s_op(s, S_RUN, 0, 1);
  put_file(dir, "held-release-drop", s->b, s->n);

  /* replies counted in flight (max_inflight 1): reading stops, the frames
   * kept are handed on once the held replies go */
  s = s_new(MF100 | SEAL | CLIENTS16, roomy | 1 << 5, 0);
  s_op(s, S_CONNECT, 0, 0);
  n = 0;
  for (int i = 0; i < 5; i++) n += s_frame(f + n, A_ECHO, "queued");
  s_send(s, 0, true, f, n);
  for (int i = 0; i < 4; i++) {
    s_op(s, S_RUN, 0, 1);
    s_ctrl(s, C_RELEASE_ALL);
  }
  s_op(s, S_READ, 0, 0);
  put_file(dir, "paused-inflight", s->b, s->n);

  /* large replies to a client with a small receive buffer: writes queue */
  s = s_new(MF100 | CLIENTS16, 7 | 3 << 3, 0);
  s_op(s, S_CONNECT, 0, 2);
  n = s_frame(f, A_FAT | 3 << 3, "fat");
  n += s_frame(f + n, A_FAT | 2 << 3, "fat");
  s_send(s, 0, true, f, n);
  s_op(s, S_RUN, 0, 3);
  s_op(s, S_READ, 0, 0);
  s_op(s, S_RUN, 0, 3);
  put_file(dir, "large-replies-small-buffer", s->b, s->n);

  /* past out_hard, past the budget: dropped */
  s = s_new(MF100 | CLIENTS16, 2 | 1 << 3 | 1 << 7, 0);
  s_op(s, S_CONNECT, 0, 0);
  s_op(s, S_CONNECT, 1, 0);
  n = s_frame(f, A_ECHO, "0123456789012345678901234567890123456789");
  s_send(s, 0, true, f, n);
  s_send(s, 1, true, f, n);
  n = s_frame(f, A_FAT, "fat");
  s_send(s, 1, true, f, n);
  s_op(s, S_RUN, 0, 2);
  put_file(dir, "dropped-hard-budget", s->b, s->n);

  /* an incomplete frame past frame_timeout_ms; close after a pause */
  s = s_new(MF100 | CLIENTS16, roomy, 1 << 3);
  s_op(s, S_CONNECT, 0, 0);
  s_op(s, S_CONNECT, 1, 0);
  n = s_frame(f, A_ECHO, "incomplete");
  s_send(s, 0, true, f, n - 3);
  n = s_frame(f, A_LINGER | 2 << 3, "pause, then close");
  s_send(s, 1, true, f, n);
  s_ctrl(s, C_TICK);
  s_ctrl(s, C_SWEEP);
  s_op(s, S_READ, 0, 0);
  s_op(s, S_READ, 1, 0);
  put_file(dir, "frame-timeout-linger", s->b, s->n);

  /* max_clients 2, then max_per_ip 1 from 127.0.0.1 and 127.0.0.2 */
  s = s_new(MF100 | CLIENTS2, roomy, 0);
  for (int c = 0; c < 3; c++) s_op(s, S_CONNECT, c, 0);
  s_op(s, S_RUN, 0, 1);
  s_op(s, S_READ, 2, 0);
  put_file(dir, "refused-max-clients", s->b, s->n);
  s = s_new(MF100 | CLIENTS16, roomy, 1);
  s_op(s, S_CONNECT, 0, 0);
  s_op(s, S_CONNECT, 1, 4);
  s_op(s, S_CONNECT, 2, 0);
  s_op(s, S_RUN, 0, 1);
  s_op(s, S_READ, 2, 0);
  put_file(dir, "refused-per-ip", s->b, s->n);

  /* pushes to clients that spoke; the rekey closing the odd ones */
  s = s_new(MF100 | SEAL | CLIENTS16, roomy, 0);
  s_op(s, S_CONNECT, 0, 0);
  s_op(s, S_CONNECT, 1, 0);
  s_op(s, S_CONNECT, 2, 0);
  n = s_frame(f, A_ECHO, "subscribe");
  s_send(s, 0, true, f, n);
  n = s_frame(f, 1, "odd");
  s_send(s, 1, true, f, n);
  s_op(s, S_RUN, 0, 0);
  s_ctrl(s, C_PUSH);
  s_ctrl(s, C_CLOSE_ODD);
  s_op(s, S_RUN, 0, 1);
  s_ctrl(s, C_RELEASE_ALL);
  s_op(s, S_RUN, 0, 1);
  s_op(s, S_READ, 0, 0);
  put_file(dir, "push-rekey", s->b, s->n);

  /* TLS: frames split at record and byte boundaries, a client
   * certificate, a plaintext client told so, one sending a 0x16 */
  s = s_new(MF100 | TLS | CERTS | CLIENTS16, roomy, 0);
  s_op(s, S_CONNECT, 0, 1);
  s_op(s, S_CONNECT, 1, 3);
  s_op(s, S_CONNECT, 2, 0);
  s_op(s, S_CONNECT, 3, 0);
  n = s_frame(f, A_ECHO, "over TLS");
  n += s_frame(f + n, A_FAT, "fat");
  for (size_t i = 0; i < n; i++) s_send(s, 0, true, f + i, 1);
  s_send(s, 1, true, f, n);
  s_send(s, 2, true, f, n);
  s_send(s, 3, true, (const uint8_t *)"\x16\x03\x01\x00\x05hello", 10);
  s_op(s, S_RUN, 0, 2);
  for (int c = 0; c < 4; c++) s_op(s, S_READ, c, 0);
  n = s_frame(f, A_CLOSE, "bye");
  s_send(s, 1, true, f, n);
  put_file(dir, "tls", s->b, s->n);

  /* the real-time bounds (idle, first frame, reply deadline) */
  s = s_new(MF100 | CLIENTS16, roomy, 0xe0);
  s_op(s, S_CONNECT, 0, 0);
  s_op(s, S_CONNECT, 1, 2);
  n = s_frame(f, A_FAT | 3 << 3, "fat");
  s_send(s, 1, true, f, n);
  s_ctrl(s, C_SLEEP);
  s_ctrl(s, C_SLEEP);
  s_ctrl(s, C_SLEEP);
  put_file(dir, "time-bounds", s->b, s->n);

  /* the server stopped with clients open and output held */
  s = s_new(MF100 | SEAL | CLIENTS16, roomy, 4);
  s_op(s, S_CONNECT, 0, 0);
  s_op(s, S_CONNECT, 1, 1);
  n = s_frame(f, A_ECHO, "held at the stop");
  s_send(s, 0, true, f, n);
  s_send(s, 1, true, f, n);
  s_op(s, S_RUN, 0, 1);
  put_file(dir, "stop-with-held", s->b, s->n);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: make_seeds DIR\n");
    return 64;
  }
  char d[7][512];
  const char *names[] = {"frames", "peek", "snapshot", "capture", "admin_http", "record", "server"};
  for (int i = 0; i < 7; i++) {
    snprintf(d[i], sizeof d[i], "%s/%s", argv[1], names[i]);
    mkdir(argv[1], 0755);
    mkdir(d[i], 0755);
  }
  Pintuan__V1__Request q = PINTUAN__V1__REQUEST__INIT;
  /* hello, ping */
  Pintuan__V1__Hello hello = PINTUAN__V1__HELLO__INIT;
  hello.has_protocol_version = 1, hello.protocol_version = 1;
  q.op_case = PINTUAN__V1__REQUEST__OP_HELLO, q.hello = &hello;
  add(&q);
  Pintuan__V1__Ping ping = PINTUAN__V1__PING__INIT;
  ping.has_payload = 1, ping.payload = bin("x");
  q.op_case = PINTUAN__V1__REQUEST__OP_PING, q.ping = &ping;
  add(&q);
  /* a flash sale with a waitlist, and a group buy */
  Pintuan__V1__CampaignSpec fs = PINTUAN__V1__CAMPAIGN_SPEC__INIT, gs = PINTUAN__V1__CAMPAIGN_SPEC__INIT;
  fs.has_campaign_id = 1, fs.campaign_id = bin("c1");
  fs.has_kind = 1, fs.kind = PINTUAN__V1__CAMPAIGN_KIND__FLASH_SALE;
  fs.has_stock = 1, fs.stock = 2;
  fs.has_hold_ms = 1, fs.hold_ms = 1000;
  fs.has_per_user_limit = 1, fs.per_user_limit = 2;
  fs.has_waitlist = 1, fs.waitlist = 1;
  Pintuan__V1__CreateCampaign cc = PINTUAN__V1__CREATE_CAMPAIGN__INIT;
  cc.has_request_id = 1, cc.request_id = bin("mk1"), cc.spec = &fs;
  q.op_case = PINTUAN__V1__REQUEST__OP_CREATE_CAMPAIGN, q.create_campaign = &cc;
  add(&q);
  gs.has_campaign_id = 1, gs.campaign_id = bin("g1");
  gs.has_kind = 1, gs.kind = PINTUAN__V1__CAMPAIGN_KIND__GROUP_BUY;
  gs.has_stock = 1, gs.stock = 10;
  gs.has_hold_ms = 1, gs.hold_ms = 5000;
  gs.has_group_size = 1, gs.group_size = 2;
  gs.has_group_ttl_ms = 1, gs.group_ttl_ms = 20000;
  Pintuan__V1__CreateCampaign cg = PINTUAN__V1__CREATE_CAMPAIGN__INIT;
  cg.has_request_id = 1, cg.request_id = bin("mk2"), cg.spec = &gs;
  q.create_campaign = &cg;
  add(&q);
  Pintuan__V1__Subscribe sub = PINTUAN__V1__SUBSCRIBE__INIT;
  q.op_case = PINTUAN__V1__REQUEST__OP_SUBSCRIBE, q.subscribe = &sub;
  add(&q);
  /* reserves: held, held, waitlisted, limit */
  const char *users[] = {"ann", "bob", "cat", "ann"};
  const char *rids[] = {"o1", "o2", "o3", "o4"};
  for (int i = 0; i < 4; i++) {
    Pintuan__V1__Reserve r = PINTUAN__V1__RESERVE__INIT;
    r.has_request_id = 1, r.request_id = bin(rids[i]);
    r.has_campaign_id = 1, r.campaign_id = bin("c1");
    r.has_user_id = 1, r.user_id = bin(users[i]);
    r.has_quantity = 1, r.quantity = 1;
    q.op_case = PINTUAN__V1__REQUEST__OP_RESERVE, q.reserve = &r;
    uint8_t one[256];
    size_t n = frame(&q, one);
    memcpy(stream + stream_len, one, n);
    stream_len += n;
    if (i == 0) put_file(d[1], "reserve", one + PT_FRAME_HEADER, n - PT_FRAME_HEADER);
  }
  /* confirm and cancel the first two holds (ids of a fresh engine: slot+1, gen 1) */
  Pintuan__V1__Confirm cf = PINTUAN__V1__CONFIRM__INIT;
  cf.has_request_id = 1, cf.request_id = bin("p1");
  cf.has_campaign_id = 1, cf.campaign_id = bin("c1");
  cf.has_reservation_id = 1, cf.reservation_id = (1ull << 32) | 1;
  q.op_case = PINTUAN__V1__REQUEST__OP_CONFIRM, q.confirm = &cf;
  add(&q);
  Pintuan__V1__Cancel cn = PINTUAN__V1__CANCEL__INIT;
  cn.has_request_id = 1, cn.request_id = bin("x1");
  cn.has_campaign_id = 1, cn.campaign_id = bin("c1");
  cn.has_reservation_id = 1, cn.reservation_id = (1ull << 32) | 2;
  q.op_case = PINTUAN__V1__REQUEST__OP_CANCEL, q.cancel = &cn;
  add(&q);
  /* group: open, auto, get */
  for (int i = 0; i < 2; i++) {
    Pintuan__V1__Join j = PINTUAN__V1__JOIN__INIT;
    j.has_request_id = 1, j.request_id = bin(i ? "j2" : "j1");
    j.has_campaign_id = 1, j.campaign_id = bin("g1");
    j.has_user_id = 1, j.user_id = bin(i ? "bob" : "ann");
    j.has_mode = 1, j.mode = i ? PINTUAN__V1__JOIN_MODE__JOIN_AUTO : PINTUAN__V1__JOIN_MODE__JOIN_OPEN;
    q.op_case = PINTUAN__V1__REQUEST__OP_JOIN, q.join = &j;
    uint8_t one[256];
    size_t n = frame(&q, one);
    memcpy(stream + stream_len, one, n);
    stream_len += n;
    if (i == 1) put_file(d[1], "join", one + PT_FRAME_HEADER, n - PT_FRAME_HEADER);
  }
  Pintuan__V1__GetGroup gg = PINTUAN__V1__GET_GROUP__INIT;
  gg.has_campaign_id = 1, gg.campaign_id = bin("g1");
  gg.has_group_id = 1, gg.group_id = (1ull << 32) | 1;
  q.op_case = PINTUAN__V1__REQUEST__OP_GET_GROUP, q.get_group = &gg;
  add(&q);
  /* queries and admin changes */
  Pintuan__V1__GetCampaign gc = PINTUAN__V1__GET_CAMPAIGN__INIT;
  gc.has_campaign_id = 1, gc.campaign_id = bin("c1");
  q.op_case = PINTUAN__V1__REQUEST__OP_GET_CAMPAIGN, q.get_campaign = &gc;
  add(&q);
  Pintuan__V1__ListCampaigns lc = PINTUAN__V1__LIST_CAMPAIGNS__INIT;
  q.op_case = PINTUAN__V1__REQUEST__OP_LIST_CAMPAIGNS, q.list_campaigns = &lc;
  add(&q);
  Pintuan__V1__GetReservation gr = PINTUAN__V1__GET_RESERVATION__INIT;
  gr.has_campaign_id = 1, gr.campaign_id = bin("c1");
  gr.has_reservation_id = 1, gr.reservation_id = (1ull << 32) | 3;
  q.op_case = PINTUAN__V1__REQUEST__OP_GET_RESERVATION, q.get_reservation = &gr;
  add(&q);
  Pintuan__V1__GetHoldings gh = PINTUAN__V1__GET_HOLDINGS__INIT;
  gh.has_campaign_id = 1, gh.campaign_id = bin("c1");
  gh.has_user_id = 1, gh.user_id = bin("ann");
  q.op_case = PINTUAN__V1__REQUEST__OP_GET_HOLDINGS, q.get_holdings = &gh;
  add(&q);
  Pintuan__V1__UpdateCampaign uc = PINTUAN__V1__UPDATE_CAMPAIGN__INIT;
  uc.has_request_id = 1, uc.request_id = bin("u1");
  uc.has_campaign_id = 1, uc.campaign_id = bin("c1");
  uc.has_stock = 1, uc.stock = 5;
  q.op_case = PINTUAN__V1__REQUEST__OP_UPDATE_CAMPAIGN, q.update_campaign = &uc;
  add(&q);
  Pintuan__V1__EndCampaign ec = PINTUAN__V1__END_CAMPAIGN__INIT;
  ec.has_request_id = 1, ec.request_id = bin("e1");
  ec.has_campaign_id = 1, ec.campaign_id = bin("c1");
  q.op_case = PINTUAN__V1__REQUEST__OP_END_CAMPAIGN, q.end_campaign = &ec;
  add(&q);
  /* a frame that is not a Request */
  static const uint8_t junk[] = {0, 0, 0, 3, 0xff, 0xff, 0xff};
  memcpy(stream + stream_len, junk, sizeof junk);
  stream_len += sizeof junk;
  put_file(d[0], "all-operations", stream, stream_len);

  /* a snapshot of an engine with holds, a waitlist, groups and remembered ids */
  pt_engine_config cfg = {.idem_window_ms = 60000, .hash_seed = 5};
  pt_engine *e = pt_engine_new(&cfg);
  static const uint8_t key[16] = {7, 1, 4, 2, 8, 5, 7, 1, 4, 2, 8, 5, 7, 1, 4, 2};
  pt_engine_set_id_key(e, key, 99); /* sealed ids, as a daemon's (ids.c) */
  pt_result r;
  pt_campaign_spec s1 = {.id = {(const uint8_t *)"c1", 2}, .kind = PT_FLASH_SALE, .stock = 2,
                         .hold_ms = 1000, .waitlist = true};
  pt_campaign_spec s2 = {.id = {(const uint8_t *)"g1", 2}, .kind = PT_GROUP_BUY, .stock = 9,
                         .hold_ms = 1000, .group_size = 3, .group_ttl_ms = 9000};
  pt_campaign_create(e, 1000, (pt_bytes){(const uint8_t *)"a", 1}, &s1, &r);
  pt_campaign_create(e, 1000, (pt_bytes){(const uint8_t *)"b", 1}, &s2, &r);
  for (int i = 0; i < 3; i++) {
    char u[8], k[8];
    snprintf(u, sizeof u, "u%d", i);
    snprintf(k, sizeof k, "k%d", i);
    pt_reserve(e, 1001, (pt_bytes){(const uint8_t *)k, strlen(k)}, s1.id,
               (pt_bytes){(const uint8_t *)u, strlen(u)}, 1, &r);
    snprintf(k, sizeof k, "j%d", i);
    pt_join(e, 1002, (pt_bytes){(const uint8_t *)k, strlen(k)}, s2.id,
            (pt_bytes){(const uint8_t *)u, strlen(u)}, PT_JOIN_AUTO, 0, true, &r);
  }
  char path[600];
  snprintf(path, sizeof path, "%s/engine", d[2]);
  FILE *f = fopen(path, "wb");
  if (!f || pt_engine_snapshot(e, to_file, f) || fclose(f)) return 1;
  pt_engine_free(e);

  /* a capture of the request stream and one reply */
  snprintf(path, sizeof path, "%s/requests", d[3]);
  pt_capture *cap = pt_capture_open(path, 1 << 20);
  if (!cap) return 1;
  size_t off = 0;
  const uint8_t *m;
  size_t n;
  while (pt_frame_next(stream + off, stream_len - off, 1 << 16, &m, &n) == PT_FRAME_OK) {
    pt_capture_write(cap, PT_CAP_REQUEST, 1, 1000 + (int64_t)off, m, n);
    off += PT_FRAME_HEADER + n;
  }
  pt_capture_write(cap, PT_CAP_CLOSE, 1, 5000, NULL, 0);
  pt_capture_close(cap);

  /* a capture's decisions: a state, then inputs with their answers */
  snprintf(path, sizeof path, "%s/decisions", d[3]);
  cap = pt_capture_open(path, 1 << 20);
  if (!cap) return 1;
  e = pt_engine_new(&cfg);
  msgpack_sbuffer sb;
  msgpack_sbuffer_init(&sb);
  if (pt_engine_snapshot(e, (pt_snapshot_write)msgpack_sbuffer_write, &sb)) return 1;
  pt_capture_state(cap, 1000, sb.data, sb.size);
  msgpack_packer pk;
  msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
  pt_input ins[] = {
      {.kind = PT_IN_ID_KEY, .now = 1000, .id_tag = 99, .id_key = {3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9, 3}},
      {.kind = PT_IN_CREATE, .now = 1000, .request_id = {(const uint8_t *)"a", 1}, .spec = s1},
      {.kind = PT_IN_CREATE, .now = 1000, .request_id = {(const uint8_t *)"b", 1}, .spec = s2},
      {.kind = PT_IN_RESERVE, .now = 1001, .request_id = {(const uint8_t *)"k1", 2}, .campaign_id = s1.id,
       .user_id = {(const uint8_t *)"u1", 2}, .quantity = 1},
      {.kind = PT_IN_RESERVE, .now = 1001, .request_id = {(const uint8_t *)"k2", 2}, .campaign_id = s1.id,
       .user_id = {(const uint8_t *)"u2", 2}, .quantity = 1},
      {.kind = PT_IN_RESERVE, .now = 1002, .request_id = {(const uint8_t *)"k3", 2}, .campaign_id = s1.id,
       .user_id = {(const uint8_t *)"u3", 2}, .quantity = 1},
      {.kind = PT_IN_CONFIRM, .now = 1003, .request_id = {(const uint8_t *)"p1", 2}, .campaign_id = s1.id,
       .reservation_id = 1},
      {.kind = PT_IN_JOIN, .now = 1004, .request_id = {(const uint8_t *)"j1", 2}, .campaign_id = s2.id,
       .user_id = {(const uint8_t *)"u1", 2}, .mode = PT_JOIN_AUTO, .new_user = true},
      {.kind = PT_IN_JOIN, .now = 1004, .request_id = {(const uint8_t *)"j2", 2}, .campaign_id = s2.id,
       .user_id = {(const uint8_t *)"u2", 2}, .mode = PT_JOIN_AUTO, .new_user = true},
      {.kind = PT_IN_ADVANCE, .now = 5000, .value = 1}, /* a slice of one due item */
      {.kind = PT_IN_ADVANCE, .now = 5000, .value = -1}, /* time only */
      {.kind = PT_IN_ADVANCE, .now = 5000},
      {.kind = PT_IN_ADVANCE, .now = 20000},
  };
  for (size_t i = 0; i < sizeof ins / sizeof ins[0]; i++) {
    pt_input_apply(e, &ins[i], &r);
    ins[i].campaign_id = ins[i].kind == PT_IN_CREATE ? ins[i].spec.id : ins[i].campaign_id;
    bool req = pt_input_is_request(ins[i].kind);
    pt_engine_stats st;
    pt_engine_stats_get(e, &st);
    static uint64_t seen;
    pt_input_answer a;
    pt_input_answer_of(req ? &r : NULL, st.events - seen, &a);
    seen = st.events;
    sb.size = 0;
    pt_input_pack(&pk, &ins[i], req ? &r : NULL);
    pt_input_pack_answer(&pk, &a);
    pt_capture_write(cap, PT_CAP_INPUT, req ? 1 : 0, 1000 + (int64_t)i, (const uint8_t *)sb.data, sb.size);
  }
  msgpack_sbuffer_destroy(&sb);
  pt_engine_free(e);
  pt_capture_close(cap);
  admin_seeds(d[4]);
  if (write_records(d[5])) return 1;
  server_seeds(d[6]);
  printf("seeds written under %s\n", argv[1]);
  return 0;
}
