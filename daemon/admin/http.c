/* The admin port's transport: listeners, connection slots, reads and
 * writes over libuv, the second tick (stream lines, timeouts) and the
 * slices of long scrapes. What a connection's bytes mean, and its answer,
 * are conn.c's. One request per connection (answered with Connection:
 * close), so a connection is either still sending its request, waiting
 * for its answer to be made (a /metrics scrape, a slice per loop turn),
 * being answered, or following /stats/stream. The limits in admin.h keep
 * what a misbehaving client can hold small and bounded; none of it touches
 * the storefront port's connections. */
#include <arpa/inet.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin_int.h"
#include "clock.h"
#include "log.h"
#include "xalloc.h"

#define REQUEST_TIMEOUT_MS 10000 /* to send the whole request */
#define ANSWER_TIMEOUT_MS 30000  /* to read the answer (streams excepted) */
#define STREAM_QUEUE_MAX 65536   /* unsent stream bytes past which lines are skipped */
#define STREAM_STUCK_S 60        /* lines skipped in a row before a stream is cut */
#define GENERAL_SLOTS (PT_ADMIN_MAX_CONNS - PT_ADMIN_PROBE_SLOTS)
#define READ_CHUNK 8193          /* one more than a head may have */

typedef struct aconn {
  admin_conn req; /* the request and its state (conn.c) */
  uv_tcp_t tcp;
  pt_admin *a;
  struct aconn *prev, *next; /* oldest first */
  bool closing;
  int64_t since_ms; /* accepted */
  unsigned skipped; /* stream lines skipped in a row */
} aconn;

struct pt_admin {
  uv_loop_t *loop;
  pt_admin_sources src;
  uv_tcp_t listeners[PT_LISTEN_MAX];
  unsigned nlisten;
  int port;
  aconn *head, *tail;
  unsigned nconns, nprobes, open_handles; /* nprobes: of nconns, on probe slots */
  uv_timer_t tick; /* every second: stream lines, timeouts */
  uv_idle_t slices; /* active while a scrape is under way: its next slice each loop turn */
  admin_sample last;
  bool stopping;
  void (*done)(void *);
  void *done_arg;
};

typedef struct wreq {
  uv_write_t req;
  abuf buf;
} wreq;

static aconn *of(admin_conn *r) { return (aconn *)((char *)r - offsetof(aconn, req)); }

/* ---- connections ---- */

static void unlink_conn(pt_admin *a, aconn *c) {
  if (c->prev) c->prev->next = c->next;
  else a->head = c->next;
  if (c->next) c->next->prev = c->prev;
  else a->tail = c->prev;
  c->prev = c->next = NULL;
}

static void maybe_done(pt_admin *a) {
  if (a->stopping && a->open_handles == 0) {
    void (*done)(void *) = a->done;
    void *arg = a->done_arg;
    free(a);
    if (done) done(arg);
  }
}

static void on_conn_closed(uv_handle_t *h) {
  aconn *c = h->data;
  pt_admin *a = c->a;
  free(c);
  a->open_handles--;
  maybe_done(a);
}

static void conn_close(aconn *c) {
  if (c->closing) return;
  c->closing = true;
  pt_admin *a = c->a;
  unlink_conn(a, c);
  a->nconns--;
  if (c->req.probe) a->nprobes--;
  admin_conn_free(&c->req);
  uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
}

static void on_written(uv_write_t *req, int status) {
  wreq *w = (wreq *)req;
  aconn *c = req->data;
  free(w->buf.p);
  free(w);
  if (c->closing) return;
  /* a one-shot answer is complete once written; a failed write ends anything */
  if (status < 0 ||
      (c->req.state == C_ANSWERING && uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) == 0))
    conn_close(c);
}

/* Sends b (taking its memory). */
static void conn_send(aconn *c, abuf *b) {
  wreq *w = pt_xmalloc(sizeof *w);
  w->buf = *b;
  *b = (abuf){0};
  w->req.data = c;
  uv_buf_t ub = uv_buf_init(w->buf.p, (unsigned)w->buf.len);
  if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &ub, 1, on_written) < 0) {
    free(w->buf.p);
    free(w);
    conn_close(c);
  }
}

/* ---- what conn.c answers through ---- */

void admin_io_send(admin_conn *r, abuf *b) { conn_send(of(r), b); }

void admin_io_stop_reading(admin_conn *r) { uv_read_stop((uv_stream_t *)&of(r)->tcp); }

/* Each loop turn the oldest scrape under way gets its next slice. */
static void on_slice(uv_idle_t *h) {
  pt_admin *a = h->data;
  for (aconn *c = a->head; c; c = c->next)
    if (c->req.state == C_SCRAPING) {
      admin_conn_scrape_step(&c->req);
      return;
    }
  uv_idle_stop(h); /* none left */
}

void admin_io_scrape_later(admin_conn *r) { uv_idle_start(&of(r)->a->slices, on_slice); }

bool admin_io_promote(admin_conn *r) {
  pt_admin *a = of(r)->a;
  if (a->nconns - a->nprobes >= GENERAL_SLOTS) return false;
  r->probe = false;
  a->nprobes--;
  return true;
}

/* ---- reading ---- */

static bool peer_loopback(uv_tcp_t *t) {
  struct sockaddr_storage ss;
  int len = sizeof ss;
  if (uv_tcp_getpeername(t, (struct sockaddr *)&ss, &len)) return false;
  if (ss.ss_family == AF_INET)
    return (ntohl(((struct sockaddr_in *)&ss)->sin_addr.s_addr) >> 24) == 127;
  if (ss.ss_family == AF_INET6) {
    const struct in6_addr *a6 = &((struct sockaddr_in6 *)&ss)->sin6_addr;
    if (IN6_IS_ADDR_LOOPBACK(a6)) return true;
    return IN6_IS_ADDR_V4MAPPED(a6) && a6->s6_addr[12] == 127;
  }
  return false;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)h, (void)suggested;
  static char chunk[READ_CHUNK]; /* parsed at once in on_read: one buffer serves all */
  *buf = uv_buf_init(chunk, sizeof chunk);
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf) {
  aconn *c = st->data;
  if (n == 0 || c->closing) return;
  if (n < 0) {
    conn_close(c);
    return;
  }
  admin_conn_feed(&c->req, buf->base, (size_t)n);
}

/* Closes the oldest connection of the kind (a probe slot's or not) still
 * sending its request; false if there is none. */
static bool evict_one(pt_admin *a, bool probe) {
  for (aconn *c = a->head; c; c = c->next)
    if (c->req.state == C_READING && c->req.probe == probe) {
      conn_close(c);
      return true;
    }
  return false;
}

/* A new connection takes a general slot: a free one, else the one of the
 * oldest connection still sending its request (so half-open connections
 * cannot lock anyone out). When every general slot is being answered or
 * streamed to, it takes a probe slot the same way, and is served /healthz
 * and /ready only. Failing both it is closed at once. */
static void on_connection(uv_stream_t *l, int status) {
  pt_admin *a = l->data;
  if (status < 0 || a->stopping) return;
  bool probe = false, room = true;
  if (a->nconns - a->nprobes >= GENERAL_SLOTS && !evict_one(a, false)) {
    probe = true;
    room = a->nprobes < PT_ADMIN_PROBE_SLOTS || evict_one(a, true);
  }
  aconn *c = pt_xcalloc(1, sizeof *c);
  c->a = a;
  c->tcp.data = c;
  admin_conn_init(&c->req, &a->src, false, probe);
  uv_tcp_init(a->loop, &c->tcp);
  a->open_handles++;
  if (a->tail) a->tail->next = c, c->prev = a->tail;
  else a->head = c;
  a->tail = c;
  a->nconns++;
  a->nprobes += probe;
  if (uv_accept(l, (uv_stream_t *)&c->tcp) < 0 || !room) {
    conn_close(c);
    return;
  }
  c->since_ms = (int64_t)uv_now(a->loop);
  c->req.loopback = peer_loopback(&c->tcp);
  uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

/* ---- the second tick ---- */

static void on_tick(uv_timer_t *t) {
  pt_admin *a = t->data;
  admin_sample now;
  admin_sample_take(&a->src, &now);
  abuf line = {0};
  bool streams = false;
  for (aconn *c = a->head; c && !streams; c = c->next) streams = c->req.state == C_STREAMING;
  if (streams) admin_stats_line(&a->src, &a->last, &now, &line);
  a->last = now;
  int64_t ms = (int64_t)uv_now(a->loop);
  for (aconn *c = a->head, *next; c; c = next) {
    next = c->next;
    admin_cstate st = c->req.state;
    if (st == C_READING && ms - c->since_ms > REQUEST_TIMEOUT_MS) {
      admin_conn_timeout(&c->req);
    } else if ((st == C_ANSWERING || st == C_SCRAPING) && ms - c->since_ms > ANSWER_TIMEOUT_MS) {
      conn_close(c); /* not reading its answer */
    } else if (st == C_STREAMING) {
      if (uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) > STREAM_QUEUE_MAX) {
        if (++c->skipped >= STREAM_STUCK_S) conn_close(c);
        continue; /* a reader behind gets the next line it has room for */
      }
      c->skipped = 0;
      abuf copy = {0};
      abuf_add(&copy, line.p, line.len);
      conn_send(c, &copy);
    }
  }
  free(line.p);
}

/* ---- start, stop ---- */

static void on_handle_closed(uv_handle_t *h) {
  pt_admin *a = h->data;
  a->open_handles--;
  maybe_done(a);
}

pt_admin *pt_admin_start(uv_loop_t *loop, const struct sockaddr_storage *listen, unsigned nlisten,
                         const pt_admin_sources *src, char *err, size_t errlen) {
  pt_admin *a = pt_xcalloc(1, sizeof *a);
  a->loop = loop;
  a->src = *src;
  uv_timer_init(loop, &a->tick);
  a->tick.data = a;
  uv_idle_init(loop, &a->slices);
  a->slices.data = a;
  a->open_handles = 2;
  int rc = 0;
  for (unsigned i = 0; i < nlisten && i < PT_LISTEN_MAX && !rc; i++) {
    uv_tcp_t *l = &a->listeners[a->nlisten++];
    uv_tcp_init(loop, l);
    l->data = a;
    a->open_handles++;
    struct sockaddr_storage at = listen[i];
    if (a->port) { /* port 0: the same free port on every address */
      if (at.ss_family == AF_INET) ((struct sockaddr_in *)&at)->sin_port = htons((uint16_t)a->port);
      else ((struct sockaddr_in6 *)&at)->sin6_port = htons((uint16_t)a->port);
    }
    char where[64];
    if ((rc = uv_tcp_bind(l, (const struct sockaddr *)&at, 0)) ||
        (rc = uv_listen((uv_stream_t *)l, 128, on_connection))) {
      snprintf(err, errlen, "admin port: cannot listen on %s: %s",
               pt_sockaddr_str(&at, where, sizeof where), uv_strerror(rc));
      break;
    }
    struct sockaddr_storage bound;
    int blen = sizeof bound;
    uv_tcp_getsockname(l, (struct sockaddr *)&bound, &blen);
    a->port = ntohs(bound.ss_family == AF_INET ? ((struct sockaddr_in *)&bound)->sin_port
                                               : ((struct sockaddr_in6 *)&bound)->sin6_port);
  }
  if (rc) {
    pt_admin_stop(a, NULL, NULL);
    return NULL;
  }
  admin_sample_take(&a->src, &a->last);
  uv_timer_start(&a->tick, on_tick, 1000, 1000);
  return a;
}

int pt_admin_port(const pt_admin *a) { return a->port; }

void pt_admin_stop(pt_admin *a, void (*done)(void *arg), void *arg) {
  a->stopping = true;
  a->done = done;
  a->done_arg = arg;
  while (a->head) conn_close(a->head);
  for (unsigned i = 0; i < a->nlisten; i++) uv_close((uv_handle_t *)&a->listeners[i], on_handle_closed);
  uv_close((uv_handle_t *)&a->tick, on_handle_closed);
  uv_close((uv_handle_t *)&a->slices, on_handle_closed);
}
