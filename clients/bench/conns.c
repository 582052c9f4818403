/* conns.c owns the load connections: connecting, the pipeline ring of each,
 * framing requests into its output, one write per connection and loop turn
 * (the flusher: tried at once, handed to libuv only for what the socket did
 * not take, so the output buffer is reused, not allocated per write),
 * reading reply frames with one clock read per read, closing; and their
 * failover, the rules libpintuan keeps: a connection lost (reset, closed,
 * refused) or a NOT_LEADER reply sends every unanswered request again, in
 * order and byte for byte (so with its request id: one effect), to the next
 * address of -a, or to the primary NOT_LEADER names when it is one of them;
 * attempts pause 10 ms doubling to 500 ms (none before following a
 * NOT_LEADER), 16 attempts within 10 s, then the connection gives up and
 * its requests are reported unanswered. What a reply means is run.c's
 * (run_on_reply). */
#include "conns.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "run.h"
#include "xalloc.h"

#define MAX_REPLY (64u << 20) /* a reply frame larger than this ends its connection */
#define RETRY_ATTEMPTS 16
#define RETRY_WINDOW_NS 10000000000LL
/* A daemon that answers UNAVAILABLE (rebuilding, its lease in doubt) or
 * OVERLOADED is there and says "shortly": asked again, paused, for longer
 * than an unreachable one (a takeover can rebuild for seconds). */
#define BUSY_WINDOW_NS 60000000000LL
#define BACKOFF_MIN_MS 10
#define BACKOFF_MAX_MS 500

enum lost_kind { LOST, REDIRECT, BUSY };
static void conn_lost(conn *c, int next_addr, enum lost_kind kind, const char *why);

typedef struct wreq {
  uv_write_t req;
  bench *b;
  uint8_t *buf;
} wreq;

static void ring_grow(conn *c) {
  uint32_t cap = c->cap ? c->cap * 2 : 16;
  inflight *r = pt_xmalloc(cap * sizeof(*r));
  for (uint32_t i = 0; i < c->n; i++) r[i] = c->ring[(c->head + i) % c->cap];
  free(c->ring);
  c->ring = r;
  c->head = 0;
  c->cap = cap;
}

inflight *conn_push(conn *c) {
  if (c->n == c->cap) ring_grow(c);
  return &c->ring[(c->head + c->n++) % c->cap];
}

static void on_written(uv_write_t *req, int status) {
  wreq *w = (wreq *)req;
  if (status < 0) w->b->send_errors++;
  free(w->buf);
  free(w);
}

/* Writes *p (*len bytes) on c: at once what the socket takes, the rest
 * handed to libuv with the buffer (the next output gets another). */
static void put(conn *c, uint8_t **p, size_t *len, size_t *cap) {
  bench *b = c->b;
  /* libuv refuses a try while earlier writes wait, so order holds */
  uv_buf_t buf = uv_buf_init((char *)*p, (unsigned)*len);
  int done = uv_try_write((uv_stream_t *)&c->tcp, &buf, 1);
  if (done == (int)*len) {
    *len = 0;
    return;
  }
  if (done < 0 && done != UV_EAGAIN) { /* the connection is going: failover re-sends */
    *len = 0;
    conn_lost(c, (c->addr + 1) % b->naddrs, LOST, uv_strerror(done));
    return;
  }
  if (done < 0) done = 0;
  wreq *w = pt_xmalloc(sizeof(*w));
  w->b = b;
  w->buf = *p;
  buf = uv_buf_init((char *)*p + done, (unsigned)(*len - (size_t)done));
  *p = NULL;
  *len = *cap = 0;
  if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &buf, 1, on_written) < 0) {
    b->send_errors++;
    free(w->buf);
    free(w);
  }
}

/* --tls: the output (once the handshake is done) through TLS, and the
 * ciphertext TLS left (handshake messages, records) to the socket. */
static void tls_flush(conn *c) {
  if (c->out_len && pt_tls_established(c->tls)) {
    if (pt_tls_write(c->tls, c->out, c->out_len)) {
      c->out_len = 0;
      conn_lost(c, (c->addr + 1) % c->b->naddrs, LOST, pt_tls_error(c->tls));
      return;
    }
    c->out_len = 0;
  }
  size_t n = pt_tls_pending(c->tls);
  if (!n) return;
  if (c->wire_cap < n) {
    c->wire_cap = n + 4096;
    free(c->wire);
    c->wire = pt_xmalloc(c->wire_cap);
  }
  c->wire_len = pt_tls_take(c->tls, c->wire, n);
  put(c, &c->wire, &c->wire_len, &c->wire_cap);
}

static void mark_dirty(conn *c) {
  if (c->dirty) return;
  c->dirty = true;
  c->next_dirty = c->b->dirty;
  c->b->dirty = c;
}

static void flush_all(uv_prepare_t *h) {
  bench *b = h->data;
  while (b->dirty) {
    conn *c = b->dirty;
    b->dirty = c->next_dirty;
    c->dirty = false;
    if (!c->up) continue;
    if (c->tls) tls_flush(c);
    else if (c->out_len) put(c, &c->out, &c->out_len, &c->out_cap);
  }
}

/* Room for a message of at most max bytes at the end of c's output, after
 * its length prefix; frame_commit says how long it came out. */
static uint8_t *frame_room(conn *c, size_t max) {
  if (c->out_len + max + PT_FRAME_HEADER > c->out_cap) {
    c->out_cap = (c->out_len + max + PT_FRAME_HEADER) * 2 + 4096;
    c->out = pt_xrealloc(c->out, c->out_cap);
  }
  return c->out + c->out_len + PT_FRAME_HEADER;
}

/* The frame just built at the end of c's output is also kept in its
 * unanswered log until its reply comes; its length goes with the request
 * last pushed (conn_push), whose frame it is. */
static void frame_commit(conn *c, size_t n) {
  pt_be32_put(c->out + c->out_len, (uint32_t)n);
  size_t total = n + PT_FRAME_HEADER;
  if (c->un_len + total > c->un_cap) {
    if (c->un_off > c->un_len / 2) { /* reclaim what was answered */
      memmove(c->unanswered, c->unanswered + c->un_off, c->un_len - c->un_off);
      c->un_len -= c->un_off;
      c->un_off = 0;
    }
    if (c->un_len + total > c->un_cap) {
      c->un_cap = (c->un_len + total) * 2 + 4096;
      c->unanswered = pt_xrealloc(c->unanswered, c->un_cap);
    }
  }
  memcpy(c->unanswered + c->un_len, c->out + c->out_len, total);
  c->un_len += total;
  if (c->n) c->ring[(c->head + c->n - 1) % c->cap].frame_len = (uint32_t)total;
  c->out_len += total;
  mark_dirty(c);
  c->b->sent_total++;
}

void conn_queue_request(conn *c, Pintuan__V1__Request *q) {
  q->has_id = 1;
  q->id = ++c->next_id;
  size_t n = pintuan__v1__request__get_packed_size(q);
  pintuan__v1__request__pack(q, frame_room(c, n));
  frame_commit(c, n);
}

void conn_queue_op(conn *c, const bw_request *q) {
  frame_commit(c, bw_request_put(frame_room(c, bw_request_bound(q)), ++c->next_id, q));
}

void conn_queue_raw(conn *c, const uint8_t *msg, size_t n) {
  memcpy(frame_room(c, n), msg, n);
  frame_commit(c, n);
}

static uint8_t cipher_in[65536]; /* --tls: a read's ciphertext (libuv reads one at a time) */

static void in_room(conn *c) {
  if (c->in_cap - c->in_len < 65536) {
    c->in_cap = c->in_cap ? c->in_cap * 2 : 131072;
    c->in = pt_xrealloc(c->in, c->in_cap);
  }
}

static void on_alloc(uv_handle_t *h, size_t sug, uv_buf_t *buf) {
  (void)sug;
  conn *c = h->data;
  if (c->tls) {
    *buf = uv_buf_init((char *)cipher_in, sizeof cipher_in);
    return;
  }
  in_room(c);
  buf->base = (char *)c->in + c->in_len;
  buf->len = c->in_cap - c->in_len;
}

void conn_answered(conn *c, uint32_t frame_len) {
  c->un_off += frame_len;
  if (c->un_off == c->un_len) c->un_off = c->un_len = 0;
  c->attempts = c->busy = 0; /* answered: a later failure starts a new count (a redirect loop does not) */
  c->down_since = c->busy_since = 0;
}

static void on_closed(uv_handle_t *h) {
  conn *c = h->data;
  c->b->conns_closed++;
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);

/* With a key, a connection's output begins with its Hello; the reply to it
 * comes first, and is not a request's (on_read takes it). */
static void begin_output(conn *c) {
  bench *b = c->b;
  c->out_len = 0;
  c->hello_wait = false;
  if (!b->hello) return;
  if (c->out_cap < b->hello_len) {
    c->out_cap = b->hello_len + 4096;
    c->out = pt_xrealloc(c->out, c->out_cap);
  }
  memcpy(c->out, b->hello, b->hello_len);
  c->out_len = b->hello_len;
  c->hello_wait = true;
  mark_dirty(c);
}

/* A connection up: with --tls its session begins (the ClientHello goes out
 * at the next flush), then its output. */
static void conn_up(conn *c) {
  bench *b = c->b;
  c->up = true;
  uv_tcp_nodelay(&c->tcp, 1);
  uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
  if (b->tls) {
    pt_tls_conn_free(c->tls);
    c->tls = pt_tls_connect(b->tls, b->addr_host[c->addr]);
    mark_dirty(c);
  }
  begin_output(c);
}

/* A new connection up: what was not answered goes again, then the rest. */
static void on_reconnect(uv_connect_t *req, int status) {
  conn *c = req->data;
  bench *b = c->b;
  if (status < 0) {
    conn_lost(c, (c->addr + 1) % b->naddrs, LOST, uv_strerror(status));
    return;
  }
  c->reconnecting = false;
  c->in_len = 0;
  b->load_reconnects++;
  b->load_resent += c->n;
  conn_up(c);
  if (c->un_len > c->un_off) { /* the unanswered frames are the output now */
    size_t n = c->un_len - c->un_off;
    if (c->out_cap < c->out_len + n) {
      c->out_cap = c->out_len + n + 4096;
      c->out = pt_xrealloc(c->out, c->out_cap);
    }
    memcpy(c->out + c->out_len, c->unanswered + c->un_off, n);
    c->out_len += n;
    mark_dirty(c);
  }
}

static void on_retry(uv_timer_t *t) {
  conn *c = t->data;
  bench *b = c->b;
  if (b->stopping) return;
  uv_tcp_init(b->loop, &c->tcp);
  c->tcp.data = c;
  c->creq.data = c;
  if (uv_tcp_connect(&c->creq, &c->tcp, (const struct sockaddr *)&b->addrs[c->addr], on_reconnect) < 0)
    conn_lost(c, (c->addr + 1) % b->naddrs, LOST, "connect could not start");
}

static void on_closed_for_retry(uv_handle_t *h) {
  conn *c = h->data;
  bench *b = c->b;
  if (b->stopping) {
    c->reconnecting = false;
    b->conns_closed++;
    return;
  }
  uv_timer_start(&c->retry, on_retry, (uint64_t)c->pause_ms, 0);
}

/* 10 ms doubling to 500 ms: the pause before the n-th attempt in a row. */
static int64_t backoff_ms(unsigned n) {
  int64_t ms = BACKOFF_MIN_MS;
  for (unsigned i = 1; i < n && ms < BACKOFF_MAX_MS; i++) ms *= 2;
  return ms > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : ms;
}

/* c's connection is lost (LOST), must go elsewhere (REDIRECT: a
 * NOT_LEADER names where, at once), or its daemon asked to be asked again
 * (BUSY): every unanswered request goes again on a new connection to
 * next_addr, after a pause (none before the first attempt after an answer,
 * nor before following NOT_LEADER). Past its attempts or its window, c
 * gives up. */
static void conn_lost(conn *c, int next_addr, enum lost_kind kind, const char *why) {
  bench *b = c->b;
  if (c->dead || (c->reconnecting && uv_is_closing((uv_handle_t *)&c->tcp))) return; /* already going */
  int64_t t = now_ns();
  bool over;
  if (kind == BUSY) {
    if (!c->busy_since) c->busy_since = t;
    c->pause_ms = backoff_ms(++c->busy);
    over = t - c->busy_since > BUSY_WINDOW_NS;
  } else {
    if (!c->down_since) c->down_since = t;
    c->attempts++;
    c->pause_ms = kind == REDIRECT || c->attempts == 1 ? 0 : backoff_ms(c->attempts - 1);
    over = c->attempts > RETRY_ATTEMPTS || t - c->down_since > RETRY_WINDOW_NS;
  }
  bool was_up = c->up;
  c->up = false;
  c->out_len = 0; /* rebuilt from the unanswered log on the next connection */
  if (!b->stopping && was_up && kind != BUSY)
    fprintf(stderr, "pintuan-bench: connection %d to %s: %s; %zu requests to send again to %s\n", c->idx,
            b->addr_text[c->addr], why, (size_t)c->n, b->addr_text[next_addr]);
  c->addr = next_addr;
  if (b->stopping || over) {
    if (!b->stopping) {
      fprintf(stderr, "pintuan-bench: connection %d gave up after %u attempts: %zu requests unanswered\n",
              c->idx, c->attempts - 1, (size_t)c->n);
      b->load_gave_up++;
    }
    c->dead = true;
    c->reconnecting = false;
    if (!uv_is_closing((uv_handle_t *)&c->tcp)) uv_close((uv_handle_t *)&c->tcp, on_closed);
    return;
  }
  c->reconnecting = true;
  b->load_busy_retries += kind == BUSY;
  if (!uv_is_closing((uv_handle_t *)&c->tcp)) uv_close((uv_handle_t *)&c->tcp, on_closed_for_retry);
  else on_closed_for_retry((uv_handle_t *)&c->tcp);
}

void conn_redirect(conn *c, const char *leader) {
  bench *b = c->b;
  int next = (c->addr + 1) % b->naddrs;
  if (leader && *leader) /* only to an address we were given: never elsewhere */
    for (int i = 0; i < b->naddrs; i++)
      if (!strcmp(b->addr_text[i], leader)) next = i;
  b->load_redirects++;
  char why[PT_HOST_MAX + 32];
  snprintf(why, sizeof why, "NOT_LEADER (primary %s)", leader && *leader ? leader : "unknown");
  conn_lost(c, next, REDIRECT, why);
}

void conn_busy(conn *c) { conn_lost(c, c->addr, BUSY, "UNAVAILABLE or OVERLOADED"); }

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  conn *c = s->data;
  if (n < 0) {
    if (c->up) conn_lost(c, (c->addr + 1) % c->b->naddrs, LOST, uv_strerror((int)n));
    return;
  }
  if (c->tls) {
    pt_tls_feed(c->tls, (const uint8_t *)buf->base, (size_t)n);
    bool was = pt_tls_established(c->tls);
    for (;;) {
      in_room(c);
      ssize_t k = pt_tls_read(c->tls, c->in + c->in_len, c->in_cap - c->in_len);
      if (k < 0) {
        fprintf(stderr, "pintuan-bench: connection %d: %s\n", c->idx, pt_tls_error(c->tls));
        c->b->tls_failed++;
        conn_lost(c, (c->addr + 1) % c->b->naddrs, LOST, pt_tls_error(c->tls));
        return;
      }
      if (k == 0) break;
      c->in_len += (size_t)k;
    }
    if (pt_tls_pending(c->tls) || (!was && pt_tls_established(c->tls))) mark_dirty(c);
  } else {
    c->in_len += (size_t)n;
  }
  int64_t t = now_ns(); /* when this read's replies arrived */
  size_t off = 0;
  for (;;) {
    const uint8_t *msg;
    size_t len;
    pt_frame_status st = pt_frame_next(c->in + off, c->in_len - off, MAX_REPLY, &msg, &len);
    if (st == PT_FRAME_TOO_BIG) {
      fprintf(stderr, "pintuan-bench: connection %d: a reply frame of %zu bytes: closing it\n", c->idx, len);
      c->up = false;
      c->dead = true;
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
    if (c->hello_wait) { /* the Hello's reply */
      bw_reply r;
      c->hello_wait = false;
      if (bw_reply_get(msg, len, &r) || r.status != PINTUAN__V1__STATUS__OK) {
        fprintf(stderr, "pintuan-bench: connection %d: the key %s was refused (status %u)\n", c->idx,
                c->b->o.key_name, r.status);
        c->b->hello_refused++;
        c->up = false;
        c->dead = true;
        uv_close((uv_handle_t *)&c->tcp, on_closed);
        return;
      }
      off += PT_FRAME_HEADER + len;
      continue;
    }
    run_on_reply(c->b, c, msg, len, t);
    off += PT_FRAME_HEADER + len;
    if (!c->up) return; /* a NOT_LEADER sent it elsewhere: the rest of this read is moot */
  }
  memmove(c->in, c->in + off, c->in_len - off);
  c->in_len -= off;
}

static void on_connect(uv_connect_t *req, int status) {
  conn *c = req->data;
  bench *b = c->b;
  if (status < 0) {
    b->conn_failed++;
    c->dead = true;
    fprintf(stderr, "pintuan-bench: connect %d: %s\n", c->idx, uv_strerror(status));
    uv_close((uv_handle_t *)&c->tcp, on_closed);
  } else {
    conn_up(c);
  }
  if (++b->connected == b->o.conns) {
    if (b->conn_failed) {
      run_finish(b);
      return;
    }
    run_start(b);
  }
}

int conns_open(bench *b, int first) {
  b->conns = pt_xcalloc((size_t)b->o.conns, sizeof(*b->conns));
  if (b->o.key_name[0] && !b->hello) {
    pintuan_request q;
    Pintuan__V1__Hello h;
    pintuan_req_hello(&q, &h, b->o.key_name, b->o.key_secret);
    h.client_name = (char *)"pintuan-bench";
    q.has_id = 1, q.id = UINT64_MAX; /* no request's: replies are matched in order */
    size_t n = pintuan__v1__request__get_packed_size(&q);
    b->hello = pt_xmalloc(PT_FRAME_HEADER + n);
    pt_be32_put(b->hello, (uint32_t)n);
    pintuan__v1__request__pack(&q, b->hello + PT_FRAME_HEADER);
    b->hello_len = PT_FRAME_HEADER + n;
  }
  uv_prepare_init(b->loop, &b->flusher);
  b->flusher.data = b;
  uv_prepare_start(&b->flusher, flush_all);
  for (int i = 0; i < b->o.conns; i++) {
    conn *k = &b->conns[i];
    k->b = b;
    k->idx = i;
    k->addr = first;
    uv_tcp_init(b->loop, &k->tcp);
    uv_timer_init(b->loop, &k->retry);
    k->retry.data = k;
    k->tcp.data = k;
    k->creq.data = k;
    if (uv_tcp_connect(&k->creq, &k->tcp, (const struct sockaddr *)&b->addrs[first], on_connect) < 0) {
      fprintf(stderr, "pintuan-bench: cannot start connection %d\n", i);
      return -1;
    }
  }
  return 0;
}

void conns_close(bench *b) {
  for (int i = 0; i < b->o.conns; i++) {
    conn *c = &b->conns[i];
    uv_timer_stop(&c->retry);
    uv_close((uv_handle_t *)&c->retry, NULL);
    if (c->up) {
      c->up = false;
      uv_close((uv_handle_t *)&c->tcp, on_closed);
    }
  }
  uv_close((uv_handle_t *)&b->flusher, NULL);
}

size_t conns_in_flight(const bench *b) {
  size_t n = 0;
  for (int i = 0; i < b->o.conns; i++)
    if (!b->conns[i].dead) n += b->conns[i].n; /* reconnecting ones' too: they are sent again */
  return n;
}

bool conns_reconnecting(const bench *b) {
  for (int i = 0; i < b->o.conns; i++)
    if (b->conns[i].reconnecting) return true;
  return false;
}

bool conns_alive(const bench *b) {
  for (int i = 0; i < b->o.conns; i++)
    if (!b->conns[i].dead) return true;
  return false;
}

void conns_free(bench *b) {
  if (!b->conns) return;
  for (int i = 0; i < b->o.conns; i++) {
    free(b->conns[i].out);
    free(b->conns[i].in);
    free(b->conns[i].ring);
    free(b->conns[i].unanswered);
    free(b->conns[i].wire);
    pt_tls_conn_free(b->conns[i].tls);
  }
  free(b->conns);
  b->conns = NULL;
}
