/* pintuan-bench: load generator for pintuand in the spirit of wrk2.
 *
 * One libuv loop drives every connection. Open loop (-R): request i is
 * planned for start + i/R and its latency is measured from that planned
 * time (coordinated-omission corrected); the latency from the actual send
 * is kept beside it. Every request planned before the end is sent, late
 * when the daemon fell behind, and the run ends when all were answered:
 * rate R for D seconds measures exactly R*D requests, whatever the
 * scheduler did. Closed loop (no -R): each connection keeps -p requests
 * in flight. A warm-up is excluded from the figures. Every run ends with the
 * verdict: the campaigns' invariants, queried from the daemon.
 * --replay FILE sends a capture made by `pintuand --capture` with its
 * original spacing scaled by --speed, and compares each reply with the
 * recorded one (times aside), reporting the first divergence. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "addr.h"
#include "capture.h"
#include "clock.h"
#include "frame.h"
#include "histogram.h"
#include "pacer.h"
#include "pintuan.h"
#include "verdict.h"
#include "xalloc.h"

#include "options.h"
#define SC_NAMES bench_scenario_names
static bench_opts o;
enum { OP_RESERVE = 1, OP_CONFIRM, OP_CANCEL, OP_JOIN, OP_REPLAYED };

/* ---- time and randomness ---- */

static int64_t now_ns(void) { return (int64_t)uv_hrtime(); }
static int64_t wall_ms(void) { return pt_wall_ms(); }
static uint64_t rng = 0x9e3779b97f4a7c15ULL;
static uint64_t rnd(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}
static double rnd01(void) { return (double)(rnd() >> 11) / 9007199254740992.0; }

/* ---- campaigns and what the run learned about them ---- */

typedef struct campaign {
  char id[72];
} campaign;
static campaign *camps;
static size_t ncamps;
static double *zipf_cdf;

typedef struct okuser {
  uint32_t campaign;
  char user[24];
} okuser;
static okuser *oks; /* users who got a unit: the verdict checks their holdings */
static size_t noks, cap_oks;

static size_t campaign_index(ProtobufCBinaryData id) {
  for (size_t i = 0; i < ncamps; i++)
    if (strlen(camps[i].id) == id.len && memcmp(camps[i].id, id.data, id.len) == 0) return i;
  if (id.len == 0 || id.len > 64) return SIZE_MAX;
  camps = pt_xrealloc(camps, (ncamps + 1) * sizeof(*camps));
  memcpy(camps[ncamps].id, id.data, id.len);
  camps[ncamps].id[id.len] = 0;
  return ncamps++;
}

static void note_ok(size_t campaign, const uint8_t *user, size_t len) {
  if (campaign == SIZE_MAX || len >= sizeof oks->user || noks >= 500000) return;
  if (noks == cap_oks) {
    cap_oks = cap_oks ? cap_oks * 2 : 4096;
    oks = pt_xrealloc(oks, cap_oks * sizeof(*oks));
  }
  oks[noks].campaign = (uint32_t)campaign;
  memcpy(oks[noks].user, user, len);
  oks[noks].user[len] = 0;
  noks++;
}

/* Ids that confirm/cancel/pay work on: filled from OK replies. */
static uint64_t *pool;
static size_t pool_n, pool_cap = 1 << 20;
static void pool_push(uint64_t id) {
  if (pool_n < pool_cap) pool[pool_n++] = id;
}
static uint64_t pool_take(void) {
  if (!pool_n) return 0;
  size_t i = rnd() % pool_n;
  uint64_t v = pool[i];
  pool[i] = pool[--pool_n];
  return v;
}

/* ---- connections ---- */

#define MAX_REPLY (64u << 20) /* a reply frame larger than this ends its connection */

typedef struct inflight {
  int64_t planned, sent;
  uint32_t req; /* replay: request index */
  uint8_t op;
  uint32_t campaign;
  char user[24];
} inflight;

typedef struct conn {
  uv_tcp_t tcp;
  uv_connect_t creq;
  int idx;
  bool up, dirty;
  uint8_t *out;
  size_t out_len, out_cap;
  uint8_t *in;
  size_t in_len, in_cap;
  inflight *ring;
  uint32_t head, n, cap;
  uint64_t next_id, seq;
  struct conn *next_dirty;
} conn;

typedef struct wreq {
  uv_write_t req;
  uint8_t *buf;
} wreq;

static uv_loop_t *loop;
static conn *conns;
static int connected, conn_failed, conns_closed;
static conn *dirty;
static uv_idle_t idler;
static uv_prepare_t flusher;
static uv_timer_t ticker;
static pt_pacer pacer;
static int64_t t_start, t_measure, t_end;
static bool stopping;
/* open loop: requests 0 .. planned_total-1 are the ones planned before
 * t_end, the measured ones from planned_first on; every one is sent, those
 * still unsent at t_end as soon as a pipeline slot frees (sent_late) */
static uint64_t planned_first, planned_total, sent_late;
static int64_t last_reply;    /* when the last reply arrived */
static int64_t last_measured; /* when the last measured reply arrived */
#define STALL_NS 5000000000LL /* after t_end, this long without a reply ends the run */
static unsigned run_id;

/* results */
static pt_hist lat, lat_raw, sec_hist;
static uint64_t status_count[32], completed, measured, sent_total, send_errors;
static uint64_t sec_done;
static int *freeq; /* open loop: connections with a free pipeline slot */
static size_t freeq_head, freeq_n, freeq_cap;

static void freeq_push(int c) {
  freeq[(freeq_head + freeq_n++) % freeq_cap] = c;
}
static int freeq_pop(void) {
  int c = freeq[freeq_head];
  freeq_head = (freeq_head + 1) % freeq_cap;
  freeq_n--;
  return c;
}

static void ring_grow(conn *c) {
  uint32_t cap = c->cap ? c->cap * 2 : 16;
  inflight *r = pt_xmalloc(cap * sizeof(*r));
  for (uint32_t i = 0; i < c->n; i++) r[i] = c->ring[(c->head + i) % c->cap];
  free(c->ring);
  c->ring = r;
  c->head = 0;
  c->cap = cap;
}

static inflight *ring_push(conn *c) {
  if (c->n == c->cap) ring_grow(c);
  return &c->ring[(c->head + c->n++) % c->cap];
}

static void on_written(uv_write_t *req, int status) {
  wreq *w = (wreq *)req;
  if (status < 0) send_errors++;
  free(w->buf);
  free(w);
}

static void flush_all(uv_prepare_t *h) {
  (void)h;
  while (dirty) {
    conn *c = dirty;
    dirty = c->next_dirty;
    c->dirty = false;
    if (!c->out_len || !c->up) continue;
    wreq *w = pt_xmalloc(sizeof(*w));
    w->buf = c->out;
    uv_buf_t b = uv_buf_init((char *)c->out, (unsigned)c->out_len);
    c->out = NULL;
    c->out_len = c->out_cap = 0;
    if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_written) < 0) {
      send_errors++;
      free(w->buf);
      free(w);
    }
  }
}

/* Room for one frame of n bytes at the end of c's output (prefix written). */
static uint8_t *frame_append(conn *c, size_t n) {
  if (c->out_len + n + 4 > c->out_cap) {
    c->out_cap = (c->out_len + n + 4) * 2 + 4096;
    c->out = pt_xrealloc(c->out, c->out_cap);
  }
  uint8_t *p = c->out + c->out_len;
  pt_be32_put(p, (uint32_t)n);
  c->out_len += n + 4;
  if (!c->dirty) {
    c->dirty = true;
    c->next_dirty = dirty;
    dirty = c;
  }
  sent_total++;
  return p + 4;
}

static void queue_frame(conn *c, Pintuan__V1__Request *q) {
  q->has_id = 1;
  q->id = ++c->next_id;
  size_t n = pintuan__v1__request__get_packed_size(q);
  pintuan__v1__request__pack(q, frame_append(c, n));
}

static void queue_raw(conn *c, const uint8_t *msg, size_t n) {
  memcpy(frame_append(c, n), msg, n);
}

/* ---- synthetic requests ---- */

static size_t pick_campaign(void) {
  if (o.scenario != SC_ZIPF) return 0;
  double u = rnd01();
  size_t lo = 0, hi = ncamps - 1;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (zipf_cdf[mid] < u) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

static void send_one(conn *c, int64_t planned) {
  inflight *f = ring_push(c);
  f->planned = planned;
  f->sent = now_ns();
  f->campaign = (uint32_t)pick_campaign();
  snprintf(f->user, sizeof f->user, "u%llu", (unsigned long long)(rnd() % o.users));
  char rid[48];
  snprintf(rid, sizeof rid, "b%u-%d-%llu", run_id, c->idx, (unsigned long long)++c->seq);
  const char *cid = camps[f->campaign].id;
  pintuan_request q;
  Pintuan__V1__Reserve rs;
  Pintuan__V1__Confirm cf;
  Pintuan__V1__Cancel cn;
  Pintuan__V1__Join jn;
  int op = OP_RESERVE;
  if (o.scenario == SC_MIXED) {
    int roll = (int)(rnd() % (uint64_t)(o.mix[0] + o.mix[1] + o.mix[2]));
    if (roll >= o.mix[0] && pool_n) op = roll < o.mix[0] + o.mix[1] ? OP_CONFIRM : OP_CANCEL;
  } else if (o.scenario == SC_GROUP) {
    op = pool_n && rnd01() < o.pay_ratio ? OP_CONFIRM : OP_JOIN;
  }
  f->op = (uint8_t)op;
  switch (op) {
  case OP_RESERVE: pintuan_req_reserve(&q, &rs, cid, f->user, 1, rid); break;
  case OP_CONFIRM: pintuan_req_confirm(&q, &cf, cid, pool_take(), rid); break;
  case OP_CANCEL: pintuan_req_cancel(&q, &cn, cid, pool_take(), rid); break;
  default: pintuan_req_join(&q, &jn, cid, f->user, PINTUAN__V1__JOIN_MODE__JOIN_AUTO, 0, true, rid); break;
  }
  queue_frame(c, &q);
}

/* ---- replay ---- */

typedef struct rreq {
  uint32_t conn;      /* replay connection */
  int64_t offset_ns;  /* from the first request, unscaled */
  uint8_t *msg;
  size_t len;
  uint8_t *want;      /* the recorded reply, NULL if none */
  size_t want_len;
} rreq;
static rreq *rreqs;
static size_t nrreqs, next_rreq;
static int replay_conns;
static uint64_t divergences, compared;
static size_t first_div = SIZE_MAX;
static char first_div_text[512];

/* Times differ between a capture and its replay: compare the rest. */
static void normalize(Pintuan__V1__Response *r) {
  switch (r->result_case) {
  case PINTUAN__V1__RESPONSE__RESULT_PONG: r->pong->has_now_ms = 0; break;
  case PINTUAN__V1__RESPONSE__RESULT_RESERVATION: r->reservation->has_expires_ms = 0; break;
  case PINTUAN__V1__RESPONSE__RESULT_EVENT: r->event->has_at_ms = 0, r->event->has_expires_ms = 0; break;
  case PINTUAN__V1__RESPONSE__RESULT_GROUP:
    r->group->has_opened_ms = r->group->has_deadline_ms = 0;
    for (size_t i = 0; i < r->group->n_members; i++) r->group->members[i]->has_expires_ms = 0;
    break;
  case PINTUAN__V1__RESPONSE__RESULT_CAMPAIGN: r->campaign->has_ended = 0; break;
  case PINTUAN__V1__RESPONSE__RESULT_CAMPAIGNS:
    for (size_t i = 0; i < r->campaigns->n_campaigns; i++) r->campaigns->campaigns[i]->has_ended = 0;
    break;
  default: break;
  }
}

static bool same_reply(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen, int *sa, int *sb) {
  Pintuan__V1__Response *x = pintuan__v1__response__unpack(NULL, alen, a);
  Pintuan__V1__Response *y = pintuan__v1__response__unpack(NULL, blen, b);
  bool same = false;
  *sa = x ? (int)x->status : -1;
  *sb = y ? (int)y->status : -1;
  if (x && y) {
    normalize(x);
    normalize(y);
    size_t nx = pintuan__v1__response__get_packed_size(x), ny = pintuan__v1__response__get_packed_size(y);
    if (nx == ny) {
      uint8_t *px = pt_xmalloc(nx + 1), *py = pt_xmalloc(ny + 1);
      pintuan__v1__response__pack(x, px);
      pintuan__v1__response__pack(y, py);
      same = memcmp(px, py, nx) == 0;
      free(px);
      free(py);
    }
  }
  if (x) pintuan__v1__response__free_unpacked(x, NULL);
  if (y) pintuan__v1__response__free_unpacked(y, NULL);
  return same;
}

/* Captured connection id -> replay connection index: open addressing,
 * doubled at half load. */
typedef struct connmap {
  uint64_t *key;
  uint32_t *val;
  size_t cap, n;
} connmap;

static size_t connmap_slot(const connmap *m, uint64_t k) {
  size_t i = (size_t)((k * 0x9e3779b97f4a7c15ULL) >> 17) & (m->cap - 1);
  while (m->key[i] && m->key[i] != k) i = (i + 1) & (m->cap - 1);
  return i;
}

/* The index for k (k + 1 is stored so that 0 marks a free slot). */
static uint32_t connmap_get(connmap *m, uint64_t k, uint32_t next, bool *fresh) {
  k += 1;
  if ((m->n + 1) * 2 > m->cap) {
    connmap old = *m;
    m->cap = m->cap ? m->cap * 2 : 64;
    m->key = pt_xcalloc(m->cap, sizeof(*m->key));
    m->val = pt_xcalloc(m->cap, sizeof(*m->val));
    for (size_t i = 0; i < old.cap; i++)
      if (old.key[i]) {
        size_t j = connmap_slot(m, old.key[i]);
        m->key[j] = old.key[i], m->val[j] = old.val[i];
      }
    free(old.key);
    free(old.val);
  }
  size_t i = connmap_slot(m, k);
  *fresh = !m->key[i];
  if (*fresh) m->key[i] = k, m->val[i] = next, m->n++;
  return m->val[i];
}

static int load_replay(const char *path) {
  pt_cap_reader rd;
  char err[256];
  if (pt_cap_reader_open(&rd, path, err, sizeof err)) {
    fprintf(stderr, "pintuan-bench: %s\n", err);
    return -1;
  }
  /* capture connection id -> replay connection; per connection, the
   * requests still waiting for their recorded reply (append, pop front) */
  connmap conns_by_id = {0};
  size_t nids = 0, cap = 0;
  size_t *phead = NULL, *plen = NULL, *pcap = NULL;
  size_t **pq = NULL;
  int64_t t0 = 0;
  pt_cap_record rec;
  int rc;
  while ((rc = pt_cap_read(&rd, &rec, err, sizeof err)) == 1) {
    if (rec.kind == PT_CAP_CLOSE) continue;
    bool fresh;
    if (rec.kind != PT_CAP_REQUEST) { /* a reply on a connection never seen asking: skip */
      size_t i = conns_by_id.cap ? connmap_slot(&conns_by_id, rec.conn + 1) : 0;
      if (!conns_by_id.cap || !conns_by_id.key[i]) continue;
    }
    size_t ci = connmap_get(&conns_by_id, rec.conn, (uint32_t)nids, &fresh);
    if (fresh) {
      if (nids == cap) {
        cap = cap ? cap * 2 : 64;
        phead = pt_xrealloc(phead, cap * sizeof(*phead));
        plen = pt_xrealloc(plen, cap * sizeof(*plen));
        pcap = pt_xrealloc(pcap, cap * sizeof(*pcap));
        pq = pt_xrealloc(pq, cap * sizeof(*pq));
      }
      phead[nids] = plen[nids] = pcap[nids] = 0;
      pq[nids] = NULL;
      nids++;
    }
    if (rec.kind == PT_CAP_REQUEST) {
      if (nrreqs == 0) t0 = rec.time_us;
      rreqs = pt_xrealloc(rreqs, (nrreqs + 1) * sizeof(*rreqs));
      rreq *r = &rreqs[nrreqs];
      r->conn = (uint32_t)ci;
      r->offset_ns = (rec.time_us - t0) * 1000;
      r->msg = pt_xmalloc(rec.len + 1);
      memcpy(r->msg, rec.data, rec.len);
      r->len = rec.len;
      r->want = NULL;
      r->want_len = 0;
      if (plen[ci] == pcap[ci]) {
        pcap[ci] = pcap[ci] ? pcap[ci] * 2 : 64;
        pq[ci] = pt_xrealloc(pq[ci], pcap[ci] * sizeof(**pq));
      }
      pq[ci][plen[ci]++] = nrreqs;
      nrreqs++;
    } else if (rec.kind == PT_CAP_REPLY && phead[ci] < plen[ci]) {
      /* replies come in request order; a daemon-initiated one (id 0) is
       * not an answer */
      Pintuan__V1__Response *x = pintuan__v1__response__unpack(NULL, rec.len, rec.data);
      bool answer = x && x->id != 0;
      if (x) pintuan__v1__response__free_unpacked(x, NULL);
      if (!answer) continue;
      size_t ri = pq[ci][phead[ci]++];
      rreqs[ri].want = pt_xmalloc(rec.len + 1);
      memcpy(rreqs[ri].want, rec.data, rec.len);
      rreqs[ri].want_len = rec.len;
    }
  }
  for (size_t i = 0; i < nids; i++) free(pq[i]);
  free(pq), free(phead), free(plen), free(pcap);
  free(conns_by_id.key), free(conns_by_id.val);
  pt_cap_reader_close(&rd);
  if (rc < 0) {
    fprintf(stderr, "pintuan-bench: %s: %s\n", path, err);
    return -1;
  }
  replay_conns = (int)nids;
  return 0;
}

static void send_replayed(int64_t now) {
  while (next_rreq < nrreqs) {
    rreq *r = &rreqs[next_rreq];
    int64_t planned = t_start + (o.speed > 0 ? (int64_t)((double)r->offset_ns / o.speed) : 0);
    if (planned > now) break;
    conn *c = &conns[r->conn];
    inflight *f = ring_push(c);
    f->planned = planned;
    f->sent = now;
    f->op = OP_REPLAYED;
    f->req = (uint32_t)next_rreq;
    /* our own correlation ids: rewrite the captured request's id */
    Pintuan__V1__Request *q = pintuan__v1__request__unpack(NULL, r->len, r->msg);
    if (q) {
      queue_frame(c, q);
      pintuan__v1__request__free_unpacked(q, NULL);
    } else {
      queue_raw(c, r->msg, r->len); /* replay garbage as garbage */
    }
    next_rreq++;
  }
}

/* ---- replies ---- */

static void handle_reply(conn *c, const uint8_t *msg, size_t len) {
  Pintuan__V1__Response *r = pintuan__v1__response__unpack(NULL, len, msg);
  if (!r) {
    status_count[0]++;
    return;
  }
  if (r->id == 0 && r->result_case == PINTUAN__V1__RESPONSE__RESULT_EVENT) {
    pintuan__v1__response__free_unpacked(r, NULL);
    return;
  }
  if (c->n == 0) { /* nothing in flight: an unsolicited error */
    status_count[r->status < 32 ? r->status : 0]++;
    pintuan__v1__response__free_unpacked(r, NULL);
    return;
  }
  inflight *f = &c->ring[c->head];
  c->head = (c->head + 1) % c->cap;
  c->n--;
  int64_t t = now_ns();
  completed++;
  status_count[r->status < 32 ? r->status : 0]++;
  last_reply = t;
  if (f->planned >= t_measure && f->planned < t_end) {
    measured++;
    last_measured = t;
    pt_hist_record(&lat, (uint64_t)(t - f->planned));
    pt_hist_record(&lat_raw, (uint64_t)(t - f->sent));
    pt_hist_record(&sec_hist, (uint64_t)(t - f->planned));
  }
  bool ok = r->status == PINTUAN__V1__STATUS__OK;
  if (f->op == OP_REPLAYED) {
    rreq *rq = &rreqs[f->req];
    if (rq->want) {
      int sa, sb;
      compared++;
      if (!same_reply(rq->want, rq->want_len, msg, len, &sa, &sb)) {
        divergences++;
        if (f->req < first_div) {
          first_div = f->req;
          Pintuan__V1__Request *q = pintuan__v1__request__unpack(NULL, rq->len, rq->msg);
          const char *opname = "?";
          if (q) {
            const ProtobufCFieldDescriptor *fd =
                protobuf_c_message_descriptor_get_field(&pintuan__v1__request__descriptor, q->op_case);
            opname = fd ? fd->name : "unknown";
          }
          snprintf(first_div_text, sizeof first_div_text,
                   "request %zu (connection %u, %s): recorded %s, got %s%s", (size_t)f->req + 1,
                   rq->conn + 1, opname, pintuan_status_str(sa), pintuan_status_str(sb),
                   sa == sb ? " (fields differ)" : "");
          if (q) pintuan__v1__request__free_unpacked(q, NULL);
        }
      }
    }
    if (ok && r->result_case == PINTUAN__V1__RESPONSE__RESULT_RESERVATION && r->reservation->has_user_id &&
        r->reservation->reservation_id)
      note_ok(campaign_index(r->reservation->campaign_id), r->reservation->user_id.data,
              r->reservation->user_id.len);
    if (ok && r->result_case == PINTUAN__V1__RESPONSE__RESULT_CAMPAIGN)
      campaign_index(r->campaign->campaign_id);
  } else if (ok && r->result_case == PINTUAN__V1__RESPONSE__RESULT_RESERVATION) {
    uint64_t id = r->reservation->reservation_id;
    if (f->op == OP_RESERVE || f->op == OP_JOIN) {
      note_ok(f->campaign, (const uint8_t *)f->user, strlen(f->user));
      if (o.scenario == SC_MIXED || o.scenario == SC_GROUP) pool_push(id);
    }
  }
  pintuan__v1__response__free_unpacked(r, NULL);
  if (o.scenario != SC_REPLAY) {
    if (o.rate > 0) freeq_push(c->idx); /* the pacer decides whether to use it */
    else if (!stopping) send_one(c, now_ns());
  }
}

static void on_alloc(uv_handle_t *h, size_t sug, uv_buf_t *b) {
  (void)sug;
  conn *c = h->data;
  if (c->in_cap - c->in_len < 65536) {
    c->in_cap = c->in_cap ? c->in_cap * 2 : 131072;
    c->in = pt_xrealloc(c->in, c->in_cap);
  }
  b->base = (char *)c->in + c->in_len;
  b->len = c->in_cap - c->in_len;
}

static void on_closed(uv_handle_t *h) {
  (void)h;
  conns_closed++;
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  (void)b;
  conn *c = s->data;
  if (n < 0) {
    if (c->up) {
      c->up = false;
      if (!stopping) fprintf(stderr, "pintuan-bench: connection %d closed: %s\n", c->idx, uv_strerror((int)n));
      uv_close((uv_handle_t *)&c->tcp, on_closed);
    }
    return;
  }
  c->in_len += (size_t)n;
  size_t off = 0;
  for (;;) {
    const uint8_t *msg;
    size_t len;
    pt_frame_status st = pt_frame_next(c->in + off, c->in_len - off, MAX_REPLY, &msg, &len);
    if (st == PT_FRAME_TOO_BIG) {
      fprintf(stderr, "pintuan-bench: connection %d: a reply frame of %zu bytes: closing it\n", c->idx, len);
      c->up = false;
      uv_close((uv_handle_t *)&c->tcp, on_closed);
      return;
    }
    if (st == PT_FRAME_MORE) {
      if (c->in_len - off >= PT_FRAME_HEADER) { /* room for the whole frame */
        size_t need = PT_FRAME_HEADER + pt_be32_get(c->in + off);
        if (c->in_cap < need) {
          c->in_cap = need + 65536;
          memmove(c->in, c->in + off, c->in_len - off);
          c->in_len -= off;
          off = 0;
          c->in = pt_xrealloc(c->in, c->in_cap);
        }
      }
      break;
    }
    handle_reply(c, msg, len);
    off += PT_FRAME_HEADER + len;
  }
  memmove(c->in, c->in + off, c->in_len - off);
  c->in_len -= off;
}

/* ---- the run ---- */

/* Requests awaiting a reply on open connections (a closed one's never come). */
static size_t in_flight(void) {
  size_t n = 0;
  for (int i = 0; i < o.conns; i++)
    if (conns[i].up) n += conns[i].n;
  return n;
}

/* Requests sent or planned that got no reply: reported, never hidden. */
static uint64_t unanswered(void) {
  uint64_t n = 0;
  for (int i = 0; i < o.conns; i++) n += conns[i].n;
  if (o.rate > 0 && o.scenario != SC_REPLAY && pacer.sent < planned_total) n += planned_total - pacer.sent;
  return n;
}

/* How many requests the pacer plans before t: the i with planned(i) < t. */
static uint64_t planned_before(int64_t t) {
  if (t <= pacer.start_ns) return 0;
  uint64_t n = (uint64_t)((double)(t - pacer.start_ns) * pacer.rate / 1e9);
  while (n > 0 && pt_pacer_planned(&pacer, n - 1) >= t) n--;
  while (pt_pacer_planned(&pacer, n) < t) n++;
  return n;
}

static void finish(void) {
  stopping = true;
  uv_idle_stop(&idler);
  uv_timer_stop(&ticker);
  for (int i = 0; i < o.conns; i++)
    if (conns[i].up) {
      conns[i].up = false;
      uv_close((uv_handle_t *)&conns[i].tcp, on_closed);
    }
  uv_close((uv_handle_t *)&idler, NULL);
  uv_close((uv_handle_t *)&ticker, NULL);
  uv_close((uv_handle_t *)&flusher, NULL);
}

/* From t_end on: the run ends once everything it was to send (open loop:
 * every request planned before t_end; closed loop: nothing more) was sent
 * and answered, not at a clock instant, so a late machine changes the
 * latencies, never the count. A daemon silent for STALL_NS, or no
 * connection left, ends it anyway; what was not answered is reported. */
static void end_check(int64_t t) {
  bool all_sent = o.rate <= 0 || pacer.sent >= planned_total;
  if (all_sent) stopping = true;
  int up = 0;
  for (int i = 0; i < o.conns && !up; i++) up = conns[i].up;
  int64_t since = last_reply > t_end ? last_reply : t_end;
  if ((all_sent && in_flight() == 0) || !up || t - since >= STALL_NS) finish();
}

static void on_idle(uv_idle_t *h) {
  (void)h;
  int64_t t = now_ns();
  if (o.scenario == SC_REPLAY) {
    send_replayed(t);
    if (next_rreq == nrreqs && in_flight() == 0) finish();
    return;
  }
  /* what is due by now; from t_end on, whatever of the plan is left */
  uint64_t due = t < t_end ? pt_pacer_due(&pacer, t) : planned_total - pacer.sent;
  while (due > 0 && freeq_n) {
    int ci = freeq_pop();
    if (!conns[ci].up) continue;
    send_one(&conns[ci], pt_pacer_planned(&pacer, pacer.sent));
    pacer.sent++;
    due--;
    if (t >= t_end) sent_late++;
  }
  if (t >= t_end) end_check(t);
}

static void on_tick(uv_timer_t *h) {
  (void)h;
  int64_t t = now_ns();
  if (o.scenario != SC_REPLAY && o.rate <= 0 && t >= t_end) end_check(t); /* closed loop */
  if (!o.progress) return;
  double el = (double)(t - t_start) / 1e9;
  uint64_t done = completed - sec_done;
  sec_done = completed;
  fprintf(stderr, "[%5.1fs] %s %9llu req/s  p99 %8.3f ms  in flight %zu\n", el,
          t < t_measure ? "warm-up" : t < t_end ? "measure" : "drain  ", (unsigned long long)done,
          (double)pt_hist_percentile(&sec_hist, 99) / 1e6, in_flight());
  pt_hist_reset(&sec_hist);
}

static void start_sending(void) {
  t_start = now_ns();
  t_measure = t_start + (int64_t)(o.warmup * 1e9);
  t_end = t_measure + (int64_t)(o.duration * 1e9);
  if (o.scenario == SC_REPLAY) {
    t_measure = t_start;
    t_end = INT64_MAX;
  }
  /* open loop and replay poll the clock without sleeping, for exact send
   * times; a closed loop is driven by replies alone */
  if (o.rate > 0 || o.scenario == SC_REPLAY) uv_idle_start(&idler, on_idle);
  uv_timer_start(&ticker, on_tick, 1000, 1000);
  if (o.scenario == SC_REPLAY) return;
  if (o.rate > 0) {
    pt_pacer_init(&pacer, t_start, o.rate);
    planned_first = planned_before(t_measure);
    planned_total = planned_before(t_end);
    freeq_cap = (size_t)o.conns * (size_t)o.depth;
    freeq = pt_xmalloc(freeq_cap * sizeof(*freeq));
    for (int d = 0; d < o.depth; d++)
      for (int i = 0; i < o.conns; i++) freeq_push(i);
  } else {
    for (int i = 0; i < o.conns; i++)
      for (int d = 0; d < o.depth; d++) send_one(&conns[i], now_ns());
  }
}

static void on_connect(uv_connect_t *req, int status) {
  conn *c = req->data;
  if (status < 0) {
    conn_failed++;
    fprintf(stderr, "pintuan-bench: connect %d: %s\n", c->idx, uv_strerror(status));
    uv_close((uv_handle_t *)&c->tcp, on_closed);
  } else {
    c->up = true;
    uv_tcp_nodelay(&c->tcp, 1);
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
  }
  if (++connected == o.conns) {
    if (conn_failed) {
      finish();
      return;
    }
    start_sending();
  }
}

/* ---- set-up and verdict with the blocking client ---- */

static pintuan_client *admin_client(void) {
  char err[256];
  pintuan_client *c = pintuan_connect(o.addr, 10000, err, sizeof err);
  if (!c) {
    fprintf(stderr, "pintuan-bench: %s\n", err);
    return NULL;
  }
  if (o.token) {
    pintuan_response *r;
    if (pintuan_hello(c, o.token, &r) || r->status != PINTUAN__V1__STATUS__OK) {
      fprintf(stderr, "pintuan-bench: admin token refused\n");
      pintuan_response_free(r);
      pintuan_close(c);
      return NULL;
    }
    pintuan_response_free(r);
  }
  return c;
}

static int create_campaigns(pintuan_client *c) {
  int n = o.scenario == SC_ZIPF ? o.campaigns : 1;
  camps = pt_xcalloc((size_t)n, sizeof(*camps));
  ncamps = (size_t)n;
  for (int i = 0; i < n; i++) {
    snprintf(camps[i].id, sizeof camps[i].id, "bench-%u-%s-%d", run_id, SC_NAMES[o.scenario], i);
    pintuan_campaign_spec s = {
        .campaign_id = camps[i].id, .stock = o.stock, .per_user_limit = o.limit, .hold_ms = 600000,
        .kind = o.scenario == SC_GROUP ? PINTUAN__V1__CAMPAIGN_KIND__GROUP_BUY
                                       : PINTUAN__V1__CAMPAIGN_KIND__FLASH_SALE};
    if (o.scenario == SC_STAMPEDE) /* the sale opens as the measurement starts */
      s.start_ms = wall_ms() + (int64_t)(o.warmup * 1000) + 200;
    if (o.scenario == SC_GROUP) s.group_size = o.group_size, s.group_ttl_ms = 3600000;
    pintuan_response *r;
    if (pintuan_create_campaign(c, &s, camps[i].id, &r) || r->status != PINTUAN__V1__STATUS__OK) {
      fprintf(stderr, "pintuan-bench: cannot create campaign %s: %s\n", camps[i].id,
                r ? r->detail : pintuan_error(c));
      pintuan_response_free(r);
      return -1;
    }
    pintuan_response_free(r);
  }
  if (o.scenario == SC_ZIPF) {
    zipf_cdf = pt_xmalloc(ncamps * sizeof(double));
    double sum = 0;
    for (size_t i = 0; i < ncamps; i++) sum += 1.0 / pow((double)(i + 1), o.zipf_s);
    double acc = 0;
    for (size_t i = 0; i < ncamps; i++) {
      acc += 1.0 / pow((double)(i + 1), o.zipf_s) / sum;
      zipf_cdf[i] = acc;
    }
    zipf_cdf[ncamps - 1] = 1.0;
  }
  /* the stampede waits for its start instant during the warm-up */
  return 0;
}

static int cmp_ok(const void *a, const void *b) {
  const okuser *x = a, *y = b;
  if (x->campaign != y->campaign) return x->campaign < y->campaign ? -1 : 1;
  return strcmp(x->user, y->user);
}

static int run_verdict(pintuan_client *c, pt_verdict *v) {
  pt_vcampaign *vc = pt_xcalloc(ncamps + 1, sizeof(*vc));
  pintuan_response **keep = pt_xcalloc(ncamps + 1, sizeof(*keep));
  for (size_t i = 0; i < ncamps; i++) {
    if (pintuan_get_campaign(c, camps[i].id, &keep[i])) return -1;
    pintuan_response *r = keep[i];
    vc[i].id = camps[i].id;
    if (r->result_case == PINTUAN__V1__RESPONSE__RESULT_CAMPAIGN) {
      vc[i].stock = r->campaign->stock, vc[i].available = r->campaign->available;
      vc[i].held = r->campaign->held, vc[i].sold = r->campaign->sold;
      vc[i].per_user_limit = r->campaign->per_user_limit;
    }
  }
  qsort(oks, noks, sizeof(*oks), cmp_ok);
  size_t nu = 0;
  for (size_t i = 0; i < noks; i++)
    if (i == 0 || cmp_ok(&oks[i], &oks[i - 1])) oks[nu++] = oks[i];
  pt_vuser *vu = pt_xcalloc(nu + 1, sizeof(*vu));
  /* pipelined: every query sent, then every reply read */
  for (size_t i = 0; i < nu; i++) {
    pintuan_request q;
    Pintuan__V1__GetHoldings m;
    pintuan_req_get_holdings(&q, &m, camps[oks[i].campaign].id, oks[i].user);
    if (pintuan_send(c, &q)) return -1;
    if (i % 1000 == 999 || i + 1 == nu) {
      if (pintuan_flush(c)) return -1;
      for (size_t k = i - i % 1000; k <= i; k++) {
        pintuan_response *r;
        if (pintuan_recv(c, &r)) return -1;
        vu[k].campaign = oks[k].campaign;
        vu[k].user = oks[k].user;
        if (r->result_case == PINTUAN__V1__RESPONSE__RESULT_HOLDINGS)
          vu[k].held = r->holdings->held, vu[k].sold = r->holdings->sold, vu[k].waiting = r->holdings->waiting;
        pintuan_response_free(r);
      }
    }
  }
  pt_verdict_check(vc, ncamps, vu, nu, v);
  for (size_t i = 0; i < ncamps; i++) pintuan_response_free(keep[i]);
  free(keep);
  free(vc);
  free(vu);
  return 0;
}

/* ---- output ---- */

/* What failover did on the set-up and verdict connection (libpintuan's
 * counters); the load connections do not fail over. */
static pintuan_stats failover;

static void print_report(const pt_verdict *v) {
  double secs = o.scenario == SC_REPLAY ? (double)(now_ns() - t_start) / 1e9 : o.duration;
  bool open = o.rate > 0 && o.scenario != SC_REPLAY;
  /* open loop: a daemon that fell behind answered the measured requests
   * over longer than -d; throughput is over the time they really took */
  if (open && last_measured > t_measure && (double)(last_measured - t_measure) / 1e9 > secs)
    secs = (double)(last_measured - t_measure) / 1e9;
  double tput = (double)measured / secs;
  uint64_t planned = open ? planned_total - planned_first : 0, lost = unanswered();
  static const double ps[] = {50, 90, 99, 99.9, 99.99, 100};
  static const char *pn[] = {"50", "90", "99", "99.9", "99.99", "max"};
  if (o.json) {
    printf("{\"scenario\":\"%s\",\"connections\":%d,\"pipeline\":%d,\"rate\":%.0f,\"duration_s\":%.3f,"
           "\"requests\":%llu,\"sent\":%llu,\"throughput_rps\":%.1f,",
           SC_NAMES[o.scenario], o.conns, o.depth, o.rate, secs, (unsigned long long)measured,
           (unsigned long long)sent_total, tput);
    if (open)
      printf("\"planned\":%llu,\"planned_rps\":%.1f,\"sent_late\":%llu,", (unsigned long long)planned,
             (double)planned / o.duration, (unsigned long long)sent_late);
    printf("\"unanswered\":%llu,", (unsigned long long)lost);
    for (int k = 0; k < 2; k++) {
      const pt_hist *h = k ? &lat_raw : &lat;
      printf("\"%s\":{", k ? "uncorrected_latency_us" : "latency_us");
      for (int i = 0; i < 6; i++)
        printf("%s\"%s\":%.1f", i ? "," : "", pn[i], (double)pt_hist_percentile(h, ps[i]) / 1e3);
      printf(",\"mean\":%.1f},", pt_hist_mean(h) / 1e3);
    }
    printf("\"status\":{");
    int first = 1;
    for (int s = 0; s < 32; s++)
      if (status_count[s]) printf("%s\"%s\":%llu", first ? "" : ",", s ? pintuan_status_str(s) : "UNDECODABLE",
                                  (unsigned long long)status_count[s]), first = 0;
    printf("},");
    if (o.scenario == SC_REPLAY) {
      printf("\"replay\":{\"requests\":%zu,\"compared\":%llu,\"divergences\":%llu", nrreqs,
             (unsigned long long)compared, (unsigned long long)divergences);
      if (first_div != SIZE_MAX) printf(",\"first_divergence\":{\"request\":%zu,\"text\":\"%s\"}", first_div + 1, first_div_text);
      printf("},");
    }
    printf("\"failover\":{\"reconnects\":%llu,\"redirects\":%llu,\"resent\":%llu},",
           (unsigned long long)failover.reconnects, (unsigned long long)failover.redirects,
           (unsigned long long)failover.resent);
    printf("\"verdict\":{\"oversold\":%lld,\"users_over_limit\":%zu,\"stock_conserved\":%s,"
           "\"campaigns\":%zu,\"users\":%zu,\"pass\":%s}}\n",
           (long long)v->oversold, v->users_over_limit, v->not_conserved ? "false" : "true", v->campaigns,
           v->users, v->pass ? "true" : "false");
    return;
  }
  printf("scenario %s: %d connections, pipeline %d, %s, %.1f s measured after %.1f s warm-up\n",
         SC_NAMES[o.scenario], o.conns, o.depth, o.rate > 0 ? "open loop" : "closed loop", secs,
         o.scenario == SC_REPLAY ? 0 : o.warmup);
  if (open) {
    printf("  target rate %.0f req/s: %llu requests planned in the measured %.1f s\n", o.rate,
           (unsigned long long)planned, o.duration);
    if (sent_late)
      printf("  sending fell behind: %llu requests were sent after the planned end, late\n",
             (unsigned long long)sent_late);
  }
  printf("  %llu requests measured (%llu sent in all, warm-up included), %.0f req/s\n",
         (unsigned long long)measured, (unsigned long long)sent_total, tput);
  printf("  latency (ms)   %10s %10s\n", "corrected", "uncorrected");
  for (int i = 0; i < 6; i++)
    printf("  %-12s   %10.3f %10.3f\n", pn[i], (double)pt_hist_percentile(&lat, ps[i]) / 1e6,
           (double)pt_hist_percentile(&lat_raw, ps[i]) / 1e6);
  if (lost) printf("  %llu requests got no reply (connection lost or daemon stalled)\n", (unsigned long long)lost);
  printf("  status:");
  for (int s = 0; s < 32; s++)
    if (status_count[s]) printf(" %s %llu", s ? pintuan_status_str(s) : "UNDECODABLE", (unsigned long long)status_count[s]);
  printf("\n");
  if (o.scenario == SC_REPLAY) {
    printf("  replay: %zu requests, %llu replies compared, %llu divergences\n", nrreqs,
           (unsigned long long)compared, (unsigned long long)divergences);
    if (first_div != SIZE_MAX) printf("  first divergence: %s\n", first_div_text);
  }
  if (failover.reconnects || failover.redirects)
    printf("  failover (set-up and verdict connection): %llu reconnects, %llu redirects, %llu requests sent again\n",
           (unsigned long long)failover.reconnects, (unsigned long long)failover.redirects,
           (unsigned long long)failover.resent);
  pt_verdict_print(stdout, v);
}

int main(int argc, char **argv) {
  pt_addr addr[1];
  char err[512];
  int prc = bench_options_parse(&o, argc, argv);
  if (prc >= 0) return prc;
  /* 10k connections need more descriptors than the usual soft limit */
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  run_id = (unsigned)(wall_ms() % 100000000) ^ ((unsigned)getpid() << 8);
  rng ^= (uint64_t)run_id * 0x2545F4914F6CDD1DULL;
  pool = pt_xmalloc(pool_cap * sizeof(*pool));
  pt_hist_reset(&lat);
  pt_hist_reset(&lat_raw);
  pt_hist_reset(&sec_hist);

  if (o.scenario == SC_REPLAY) {
    if (load_replay(o.replay)) return EX_DATAERR;
    o.conns = replay_conns ? replay_conns : 1;
  }
  pintuan_client *admin = admin_client();
  if (!admin) return EX_UNAVAILABLE;
  if (o.scenario != SC_REPLAY && create_campaigns(admin)) {
    pintuan_close(admin);
    return 1;
  }

  loop = uv_default_loop();
  /* the load goes where the set-up connection went: the first address of
   * -a that answered */
  struct sockaddr_storage sa;
  if (pt_addr_parse(pintuan_peer(admin), -1, &addr[0], err, sizeof err) ||
      pt_addr_resolve(&addr[0], false, &sa, 1, err, sizeof err) < 0) {
    fprintf(stderr, "pintuan-bench: %s\n", err);
    pintuan_close(admin);
    return EX_UNAVAILABLE;
  }
  conns = pt_xcalloc((size_t)o.conns, sizeof(*conns));
  uv_idle_init(loop, &idler);
  uv_timer_init(loop, &ticker);
  uv_prepare_init(loop, &flusher);
  uv_prepare_start(&flusher, flush_all);
  for (int i = 0; i < o.conns; i++) {
    conn *k = &conns[i];
    k->idx = i;
    uv_tcp_init(loop, &k->tcp);
    k->tcp.data = k;
    k->creq.data = k;
    if (uv_tcp_connect(&k->creq, &k->tcp, (struct sockaddr *)&sa, on_connect) < 0) {
      fprintf(stderr, "pintuan-bench: cannot start connection %d\n", i);
      pintuan_close(admin);
      return EX_UNAVAILABLE;
    }
  }
  uv_run(loop, UV_RUN_DEFAULT);
  if (conn_failed) {
    fprintf(stderr, "pintuan-bench: %d of %d connections failed\n", conn_failed, o.conns);
    pintuan_close(admin);
    return EX_UNAVAILABLE;
  }
  pt_verdict v;
  if (run_verdict(admin, &v)) {
    fprintf(stderr, "pintuan-bench: verdict queries failed: %s\n", pintuan_error(admin));
    pintuan_close(admin);
    return EX_UNAVAILABLE;
  }
  pintuan_get_stats(admin, &failover);
  print_report(&v);
  pintuan_close(admin);
  bool ok = v.pass && divergences == 0 && send_errors == 0;
  return ok ? 0 : 1;
}
