/* floor_server: the least a server on this framing can do, to measure the
 * floor pintuand is compared with. It reads 4-byte length-prefixed frames
 * on a libuv loop and answers each with one fixed Response (a reservation
 * reply the size of pintuand's, status OK) carrying the request's id, all
 * replies to one read batched into one write: no decoding beyond the id,
 * no engine, no allocation per request. Whatever pintuand spends beyond
 * this is what it spends deciding.
 *
 * usage: floor_server [--listen HOST:PORT] [--ready-fd N]
 * (default 127.0.0.1:0; the port it got is written to the ready fd, or to
 * stdout, followed by a newline). It runs until SIGTERM or SIGINT. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "addr.h"
#include "frame.h"
#include "pintuan.pb-c.h"
#include "wire.h"
#include "xalloc.h"

#define MAX_FRAME (1u << 20)
#define IN_CAP (256u << 10)

typedef struct fconn {
  uv_tcp_t tcp;
  uint8_t *in;
  size_t in_len;
  uint8_t *out; /* this read's replies; a write that cannot finish at once keeps it */
  size_t out_cap;
} fconn;

typedef struct wreq {
  uv_write_t req;
  uint8_t *buf;
} wreq;

static uint8_t tail[128]; /* the fixed reply after its id field */
static size_t tail_len;

/* A reservation reply as pintuand sends it to a bench reserve. */
static void make_tail(void) {
  Pintuan__V1__Reservation rv = PINTUAN__V1__RESERVATION__INIT;
  rv.campaign_id = (ProtobufCBinaryData){13, (uint8_t *)"bench-floor-0"};
  rv.has_reservation_id = rv.has_quantity = rv.has_state = rv.has_expires_ms = 1;
  rv.reservation_id = 1234567;
  rv.user_id = (ProtobufCBinaryData){7, (uint8_t *)"u123456"};
  rv.quantity = 1;
  rv.state = PINTUAN__V1__HOLD_STATE__HELD;
  rv.expires_ms = 1795000000000;
  Pintuan__V1__Response r = PINTUAN__V1__RESPONSE__INIT;
  r.has_status = 1;
  r.status = PINTUAN__V1__STATUS__OK;
  r.result_case = PINTUAN__V1__RESPONSE__RESULT_RESERVATION;
  r.reservation = &rv;
  if (pintuan__v1__response__get_packed_size(&r) > sizeof tail) abort();
  tail_len = pintuan__v1__response__pack(&r, tail);
}


static size_t put_reply(uint8_t *o, uint64_t id) {
  size_t k = 4;
  if (id) {
    o[k++] = 0x08;
    do {
      o[k++] = (uint8_t)((id & 0x7f) | (id > 0x7f ? 0x80 : 0));
      id >>= 7;
    } while (id);
  }
  memcpy(o + k, tail, tail_len);
  k += tail_len;
  pt_be32_put(o, (uint32_t)(k - 4));
  return k;
}

static void on_closed(uv_handle_t *h) {
  fconn *c = h->data;
  free(c->in);
  free(c->out);
  free(c);
}

static void on_alloc(uv_handle_t *h, size_t sug, uv_buf_t *b) {
  (void)sug;
  fconn *c = h->data;
  b->base = (char *)c->in + c->in_len;
  b->len = IN_CAP - c->in_len;
}

static void on_written(uv_write_t *req, int status) {
  (void)status;
  wreq *w = (wreq *)req;
  free(w->buf);
  free(w);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  (void)b;
  fconn *c = s->data;
  if (n < 0) {
    uv_close((uv_handle_t *)s, on_closed);
    return;
  }
  c->in_len += (size_t)n;
  /* the most replies this read can make: one per 5 bytes of request */
  size_t need = (c->in_len / 5 + 1) * (tail_len + 15);
  if (need > c->out_cap) {
    free(c->out);
    c->out_cap = need;
    c->out = pt_xmalloc(need);
  }
  size_t off = 0, olen = 0;
  for (;;) {
    const uint8_t *msg;
    size_t len;
    pt_frame_status st = pt_frame_next(c->in + off, c->in_len - off, MAX_FRAME, &msg, &len);
    if (st == PT_FRAME_TOO_BIG) {
      uv_close((uv_handle_t *)s, on_closed);
      return;
    }
    if (st == PT_FRAME_MORE) break;
    olen += put_reply(c->out + olen, bw_first_id(msg, len));
    off += PT_FRAME_HEADER + len;
  }
  memmove(c->in, c->in + off, c->in_len - off);
  c->in_len -= off;
  if (!olen) return;
  uv_buf_t ob = uv_buf_init((char *)c->out, (unsigned)olen);
  int w = uv_try_write(s, &ob, 1);
  if (w == (int)olen) return;
  if (w < 0 && w != UV_EAGAIN) {
    uv_close((uv_handle_t *)s, on_closed);
    return;
  }
  size_t done = w > 0 ? (size_t)w : 0;
  wreq *q = pt_xmalloc(sizeof *q);
  q->buf = c->out; /* the rest goes out later: the buffer goes with it */
  c->out = NULL;
  c->out_cap = 0;
  ob = uv_buf_init((char *)q->buf + done, (unsigned)(olen - done));
  if (uv_write(&q->req, s, &ob, 1, on_written) < 0) {
    free(q->buf);
    free(q);
    uv_close((uv_handle_t *)s, on_closed);
  }
}

static void on_conn(uv_stream_t *srv, int status) {
  if (status < 0) return;
  fconn *c = pt_xcalloc(1, sizeof *c);
  c->in = pt_xmalloc(IN_CAP);
  uv_tcp_init(srv->loop, &c->tcp);
  c->tcp.data = c;
  if (uv_accept(srv, (uv_stream_t *)&c->tcp) < 0) {
    uv_close((uv_handle_t *)&c->tcp, on_closed);
    return;
  }
  uv_tcp_nodelay(&c->tcp, 1);
  uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

static void on_signal(uv_signal_t *h, int sig) {
  (void)sig;
  uv_stop(h->loop);
}

int main(int argc, char **argv) {
  const char *listen = "127.0.0.1:0";
  int ready_fd = -1;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--listen") && i + 1 < argc) listen = argv[++i];
    else if (!strcmp(argv[i], "--ready-fd") && i + 1 < argc) ready_fd = atoi(argv[++i]);
    else {
      fprintf(stderr, "usage: floor_server [--listen HOST:PORT] [--ready-fd N]\n");
      return 64;
    }
  }
  make_tail();
  pt_addr a;
  struct sockaddr_storage ss;
  char err[256];
  if (pt_addr_parse(listen, 0, &a, err, sizeof err) || pt_addr_resolve(&a, true, &ss, 1, err, sizeof err) < 0) {
    fprintf(stderr, "floor_server: %s\n", err);
    return 64;
  }
  uv_loop_t *loop = uv_default_loop();
  uv_tcp_t srv;
  uv_tcp_init(loop, &srv);
  int rc = uv_tcp_bind(&srv, (const struct sockaddr *)&ss, 0);
  if (!rc) rc = uv_listen((uv_stream_t *)&srv, 1024, on_conn);
  if (rc) {
    fprintf(stderr, "floor_server: %s: %s\n", listen, uv_strerror(rc));
    return 69;
  }
  struct sockaddr_storage got;
  int glen = sizeof got;
  uv_tcp_getsockname(&srv, (struct sockaddr *)&got, &glen);
  int port = ntohs(((struct sockaddr_in *)&got)->sin_port);
  if (ready_fd >= 0) {
    dprintf(ready_fd, "%d\n", port);
    close(ready_fd);
  } else {
    printf("%d\n", port);
    fflush(stdout);
  }
  signal(SIGPIPE, SIG_IGN);
  uv_signal_t sterm, sint;
  uv_signal_init(loop, &sterm);
  uv_signal_init(loop, &sint);
  uv_signal_start(&sterm, on_signal, SIGTERM);
  uv_signal_start(&sint, on_signal, SIGINT);
  uv_run(loop, UV_RUN_DEFAULT);
  return 0;
}
