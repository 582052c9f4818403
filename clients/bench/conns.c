/* conns.c owns the load connections: connecting, the pipeline ring of each,
 * framing requests into its output, one write per connection and loop turn
 * (the flusher: tried at once, handed to libuv only for what the socket did
 * not take, so the output buffer is reused, not allocated per write),
 * reading reply frames with one clock read per read, closing. What a reply
 * means is run.c's (run_on_reply). */
#include "conns.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "run.h"
#include "xalloc.h"

#define MAX_REPLY (64u << 20) /* a reply frame larger than this ends its connection */

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

static void flush_all(uv_prepare_t *h) {
  bench *b = h->data;
  while (b->dirty) {
    conn *c = b->dirty;
    b->dirty = c->next_dirty;
    c->dirty = false;
    if (!c->out_len || !c->up) continue;
    /* libuv refuses a try while earlier writes wait, so order holds */
    uv_buf_t buf = uv_buf_init((char *)c->out, (unsigned)c->out_len);
    int done = uv_try_write((uv_stream_t *)&c->tcp, &buf, 1);
    if (done == (int)c->out_len) {
      c->out_len = 0;
      continue;
    }
    if (done < 0 && done != UV_EAGAIN) {
      b->send_errors++;
      c->out_len = 0;
      continue;
    }
    if (done < 0) done = 0;
    /* the rest goes to libuv, with the buffer: the next output gets another */
    wreq *w = pt_xmalloc(sizeof(*w));
    w->b = b;
    w->buf = c->out;
    buf = uv_buf_init((char *)c->out + done, (unsigned)(c->out_len - (size_t)done));
    c->out = NULL;
    c->out_len = c->out_cap = 0;
    if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &buf, 1, on_written) < 0) {
      b->send_errors++;
      free(w->buf);
      free(w);
    }
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

static void frame_commit(conn *c, size_t n) {
  pt_be32_put(c->out + c->out_len, (uint32_t)n);
  c->out_len += n + PT_FRAME_HEADER;
  if (!c->dirty) {
    c->dirty = true;
    c->next_dirty = c->b->dirty;
    c->b->dirty = c;
  }
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

static void on_alloc(uv_handle_t *h, size_t sug, uv_buf_t *buf) {
  (void)sug;
  conn *c = h->data;
  if (c->in_cap - c->in_len < 65536) {
    c->in_cap = c->in_cap ? c->in_cap * 2 : 131072;
    c->in = pt_xrealloc(c->in, c->in_cap);
  }
  buf->base = (char *)c->in + c->in_len;
  buf->len = c->in_cap - c->in_len;
}

static void on_closed(uv_handle_t *h) {
  conn *c = h->data;
  c->b->conns_closed++;
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  (void)buf;
  conn *c = s->data;
  if (n < 0) {
    if (c->up) {
      c->up = false;
      if (!c->b->stopping)
        fprintf(stderr, "pintuan-bench: connection %d closed: %s\n", c->idx, uv_strerror((int)n));
      uv_close((uv_handle_t *)&c->tcp, on_closed);
    }
    return;
  }
  c->in_len += (size_t)n;
  int64_t t = now_ns(); /* when this read's replies arrived */
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
    run_on_reply(c->b, c, msg, len, t);
    off += PT_FRAME_HEADER + len;
  }
  memmove(c->in, c->in + off, c->in_len - off);
  c->in_len -= off;
}

static void on_connect(uv_connect_t *req, int status) {
  conn *c = req->data;
  bench *b = c->b;
  if (status < 0) {
    b->conn_failed++;
    fprintf(stderr, "pintuan-bench: connect %d: %s\n", c->idx, uv_strerror(status));
    uv_close((uv_handle_t *)&c->tcp, on_closed);
  } else {
    c->up = true;
    uv_tcp_nodelay(&c->tcp, 1);
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
  }
  if (++b->connected == b->o.conns) {
    if (b->conn_failed) {
      run_finish(b);
      return;
    }
    run_start(b);
  }
}

int conns_open(bench *b, const struct sockaddr *sa) {
  b->conns = pt_xcalloc((size_t)b->o.conns, sizeof(*b->conns));
  uv_prepare_init(b->loop, &b->flusher);
  b->flusher.data = b;
  uv_prepare_start(&b->flusher, flush_all);
  for (int i = 0; i < b->o.conns; i++) {
    conn *k = &b->conns[i];
    k->b = b;
    k->idx = i;
    uv_tcp_init(b->loop, &k->tcp);
    k->tcp.data = k;
    k->creq.data = k;
    if (uv_tcp_connect(&k->creq, &k->tcp, sa, on_connect) < 0) {
      fprintf(stderr, "pintuan-bench: cannot start connection %d\n", i);
      return -1;
    }
  }
  return 0;
}

void conns_close(bench *b) {
  for (int i = 0; i < b->o.conns; i++)
    if (b->conns[i].up) {
      b->conns[i].up = false;
      uv_close((uv_handle_t *)&b->conns[i].tcp, on_closed);
    }
  uv_close((uv_handle_t *)&b->flusher, NULL);
}

size_t conns_in_flight(const bench *b) {
  size_t n = 0;
  for (int i = 0; i < b->o.conns; i++)
    if (b->conns[i].up) n += b->conns[i].n;
  return n;
}

void conns_free(bench *b) {
  if (!b->conns) return;
  for (int i = 0; i < b->o.conns; i++) {
    free(b->conns[i].out);
    free(b->conns[i].in);
    free(b->conns[i].ring);
  }
  free(b->conns);
  b->conns = NULL;
}
