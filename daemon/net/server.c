/* Connection life cycle:
 *   accepted -> reading <-> paused (output over the high mark; not read, so
 *                                   exempt from the frame timeout, whose clock
 *                                   restarts on resuming)
 *            -> draining (close_after_flush: no reads, remaining output sent)
 *            (reading <-> yielded: its share of a turn's work taken; read
 *                                  again from the next turn)
 *            -> closing (uv_close issued) -> freed (handle closed and every
 *               write callback returned)
 * A connection's output is the open buffer of the current turn, behind
 * zero or more sealed segments that wait for a release (a durable
 * acknowledgement): pt_server_seal closes the open buffers of the turn under
 * a sequence number, pt_server_release(seq) lets every segment up to seq
 * go, in order. pt_server_flush, once per loop turn from the daemon's
 * turn-end phase, writes what may go: one uv_write per released segment
 * and for the open buffer of a connection with nothing held. No copies.
 *
 * Why one file of ~600 lines: reading, backpressure, held output and the
 * close sequence all turn on the same connection state (paused, writes in
 * flight, seals outstanding); split, they would share it through a header
 * and the life cycle above would have no single place. */
#include "server.h"

#include <linux/sockios.h>
#include <malloc.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "addr.h"
#include "frame.h"
#include "log.h"
#include "xalloc.h"

#define RBUF_SIZE (64 * 1024)
/* A turn's work is bounded and shared out, so that floods cannot hold the
 * loop (and every other client with it): a connection hands on at most its
 * share of frames a turn, turn_frames / (connections that want work), never
 * fewer than SHARE_MIN (more than a well-behaved client keeps in flight,
 * and replies enough to a write: smaller shares cost deep pipelines a
 * third of their throughput in write calls)
 * nor more than turn_frames. One that took its share yields: it is not
 * read, and what it sends meanwhile waits in its socket (TCP's
 * backpressure), not here. The yielded wait in a queue, and each turn end
 * lets as many read again, oldest first, as turn_frames / share: the
 * busiest take turns, and a turn stays about turn_frames frames however
 * many connections flood. A connection that yielded reads HOT_READ bytes at
 * a time, so the input it keeps stays small. */
#define SHARE_MIN 128
/* The share of a connection refused for its rate, or that has not said who
 * it is where keys are required (pt_conn_demote), in the turns that follow:
 * a flood that is refused anyway should not cost the turns the others wait
 * on. 16 frames a turn is still thousands a second, above any rate. */
#define SHARE_DEMOTED 16
#define HOT_READ (8 * 1024)
#define SPARE_MAX 64
#define SPARE_CAP (256 * 1024)

typedef struct pt_buf {
  uint8_t *p;
  size_t len, cap;
} pt_buf;

/* Output sealed under a sequence number, waiting for its release. */
typedef struct pt_seg {
  struct pt_seg *next;
  uint64_t seq;
  bool released;
  unsigned replies; /* frames in buf */
  pt_buf buf;
} pt_seg;

/* One sealed segment, in the server's release order. */
typedef struct seal_ref {
  uint64_t seq;
  pt_conn *c;
} seal_ref;

struct pt_conn {
  uv_tcp_t tcp;
  pt_server *srv;
  uint64_t id;
  pt_conn *prev, *next;             /* every live connection */
  pt_conn *dirty_prev, *dirty_next; /* connections with output this turn */
  bool dirty, paused, draining, closing, handle_closed;
  bool out_state; /* `out` holds a reply decided on state: sealed at the turn's end */
  pt_buf in;       /* input kept, at in.p + in_off (in.len bytes): only while there is some */
  size_t in_off;
  uint64_t in_since; /* srv_now() when the pending incomplete frame began */
  pt_buf out;      /* this turn's replies */
  pt_seg *held, *held_tail; /* sealed output, oldest first */
  size_t held_bytes;
  unsigned seal_refs; /* entries of the server's seal queue naming this connection */
  size_t inflight; /* bytes handed to uv_write and not yet completed */
  size_t mem;      /* bytes of its output buffers (capacity) */
  unsigned writes; /* outstanding uv_write requests */
  uint32_t flags;
  uint64_t linger_until; /* pt_conn_close_after: output held until then (srv_now); 0: none */
  /* the bounds in time: the loop's clock, not a test clock (a test that
   * moves its clock by hours must not find its connections idle) */
  uint64_t opened_ms, last_read_ms, progress_ms; /* progress: the last write done while some wait */
  unsigned outq_seen; /* its socket's unsent bytes when the sweep last looked (SIOCOUTQ) */
  unsigned replies_open, replies_held; /* frames in out, and in held segments: not written yet */
  bool spoke, keep_idle; /* a whole frame came; pushed messages are awaited (a subscriber) */
  bool input_due;        /* resumed with whole frames kept: the resumer hands them on */
  pt_conn *due_next;     /* the server's list of those */
  bool yielded;          /* took its share of this turn: not read until the next */
  pt_conn *yield_prev, *yield_next; /* the server's yielded connections */
  uint64_t turn;         /* the server's turn that turn_frames counts in */
  uint64_t hot_turn;     /* the last turn it yielded in */
  uint64_t yield_turn;   /* the turn it took its share in, staying armed (reads declined) */
  uint64_t demoted_turn; /* the last turn it was demoted in (pt_conn_demote); 0: never */
  unsigned turn_frames;  /* frames handed on in that turn */
  _Alignas(8) uint8_t data[PT_CONN_DATA]; /* the protocol layer's */
  pt_tls_conn *tls;      /* NULL: plaintext */
  bool tls_spoke;        /* TLS bytes came (a plaintext client is told it is on a TLS port) */
  bool ip_counted;       /* counted in the server's connections per address, under ip */
  uint8_t ip[16];
};

typedef struct wreq {
  uv_write_t req;
  pt_conn *c;
  pt_buf buf;  /* released when the write completes */
  size_t len;  /* of it, the bytes this write sends (its tail) */
} wreq;

struct pt_server {
  uv_loop_t *loop;
  pt_server_config cfg;
  pt_server_hooks hooks;
  uv_tcp_t listeners[PT_LISTEN_MAX];
  bool listener_closed[PT_LISTEN_MAX]; /* closed early: its address was skipped */
  unsigned nlisteners;                 /* initialized listeners */
  struct sockaddr_storage bound[PT_LISTEN_MAX]; /* the addresses listened on */
  unsigned nbound;
  seal_ref *seals; /* ring, release order */
  size_t seal_head, seal_n, seal_cap;
  uv_timer_t sweeper; /* closes connections stuck in the middle of a frame */
  uv_timer_t resumer; /* hands on the input kept by connections that resumed */
  pt_conn *conns, *dirty, *yielded, *yield_tail, *due;
  uint64_t turn;      /* pt_server_flush counts turns */
  size_t freed;       /* bytes freed since the last trim */
  uint64_t trimmed_ms;
  unsigned busy;      /* connections that handed on frames this turn */
  unsigned soft;      /* of them, those that took their share and stay armed */
  unsigned share;     /* frames a connection may hand on this turn */
  uint64_t next_id;
  pt_server_stats st;
  pt_buf spare[SPARE_MAX]; /* recycled output buffers, SPARE_CAP or less */
  unsigned nspare;
  unsigned open_handles;
  bool stopping;
  void (*done)(void *);
  void *done_arg;
  int port;
  uint64_t log_sec, log_n, log_suppressed; /* client events logged this second, and not */
  /* connections per address: open addressing on the 16-byte address */
  struct ip_count {
    uint8_t ip[16];
    uint32_t n; /* 0: a free entry */
  } *ips;
  uint32_t ips_cap; /* a power of two, twice max_clients at least */
  uint8_t rbuf[RBUF_SIZE]; /* shared by all reads: libuv reads synchronously */
  uint8_t plain[RBUF_SIZE]; /* TLS: a read's plaintext */
};

static void conn_close(pt_conn *c);
static void conn_resume(pt_conn *c);
static void on_resume_input(uv_timer_t *t);
static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b);
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b);
static void read_on(pt_conn *c);
static bool frame_kept(const pt_conn *c);
static void maybe_finish_stop(pt_server *s);

static size_t pending(const pt_conn *c) { return c->out.len + c->held_bytes + c->inflight; }
/* What the budget counts of c: the memory of its output (unsent replies
 * in buffers that grew by doubling) and of the input it keeps. */
static size_t weight(const pt_conn *c) { return c->mem + c->in.cap; }
/* All the budget counts: besides output and kept input, each live
 * connection's own state and the recycled buffers (a cache: given back
 * first when over). */
static size_t budget_used(const pt_server *s) {
  return s->st.out_mem + s->st.kept + s->st.spare_mem + (size_t)s->st.clients * sizeof(pt_conn);
}
static bool over(const pt_server *s) { return s->cfg.out_budget && budget_used(s) > s->cfg.out_budget; }
/* c's kept input changes capacity (only live connections count) */
static void kept_cap(pt_conn *c, size_t cap) {
  if (!c->closing) c->srv->st.kept += cap - c->in.cap;
  c->in.cap = cap;
}
/* Stop reading it: too much output unsent, or too many replies unwritten. */
static bool too_full(const pt_conn *c) {
  const pt_server_config *k = &c->srv->cfg;
  return pending(c) > k->out_high || (k->max_inflight && c->replies_open + c->replies_held >= k->max_inflight);
}
/* Read it again: both back under half. */
static bool drained(const pt_conn *c) {
  const pt_server_config *k = &c->srv->cfg;
  return pending(c) <= k->out_high / 2 &&
         (!k->max_inflight || c->replies_open + c->replies_held <= k->max_inflight / 2);
}

/* A client cut, dropped or refused: one line with the reason. A burst
 * (thousands dropped at once when the mirror steps down) is capped at
 * LOG_BURST lines a second; the next line says how many were not logged. */
#define LOG_BURST 20
static void log_client(pt_conn *c, pt_log_level level, const char *event, const char *reason) {
  pt_server *s = c->srv;
  uint64_t sec = uv_now(s->loop) / 1000;
  if (sec != s->log_sec) s->log_sec = sec, s->log_n = 0;
  if (s->log_n++ >= LOG_BURST) {
    s->log_suppressed++;
    return;
  }
  struct sockaddr_storage ss;
  int len = sizeof ss;
  char peer[64] = "?", more[48] = "";
  if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0) pt_sockaddr_str(&ss, peer, sizeof peer);
  if (s->log_suppressed)
    snprintf(more, sizeof more, " suppressed=%llu", (unsigned long long)s->log_suppressed);
  s->log_suppressed = 0;
  pt_log(level, "%s client=%llu peer=%s reason=\"%s\"%s", event, (unsigned long long)c->id, peer,
         reason, more);
}

/* The clock of frame timeouts. */
static uint64_t srv_now(pt_server *s) {
  return s->hooks.now_ms ? s->hooks.now_ms(s->hooks.ctx) : uv_now(s->loop);
}

/* Output buffers are recycled rather than freed: a buffer lives one flush
 * (a few hundred bytes of replies, written at once), and handing it back to
 * malloc each time made glibc trim and regrow the heap top with brk, each a
 * TLB shootdown across CPUs (5 % of the daemon under load). */
/* c's output buffers hold cap more bytes (or fewer): what the budget
 * counts is the memory, and only of live connections. */
static void mem_add(pt_conn *c, ssize_t cap) {
  c->mem += (size_t)cap;
  if (!c->closing) c->srv->st.out_mem += (size_t)cap;
}

/* b, one of c's output buffers, holds need bytes at least. */
static void buf_reserve(pt_conn *c, pt_buf *b, size_t need) {
  pt_server *s = c->srv;
  if (b->cap >= need) return;
  size_t had = b->cap;
  if (!b->p && s->nspare) {
    *b = s->spare[--s->nspare];
    s->st.spare_mem -= b->cap;
    mem_add(c, (ssize_t)b->cap);
    if (b->cap >= need) return;
    had = b->cap;
  }
  size_t cap = b->cap ? b->cap : 4096;
  while (cap < need) cap *= 2;
  b->p = pt_xrealloc(b->p, cap);
  b->cap = cap;
  mem_add(c, (ssize_t)(cap - had));
}

static void buf_release(pt_conn *c, pt_buf *b) {
  pt_server *s = c->srv;
  mem_add(c, -(ssize_t)b->cap);
  if (b->p && b->cap <= SPARE_CAP && s->nspare < SPARE_MAX) {
    s->spare[s->nspare++] = (pt_buf){.p = b->p, .cap = b->cap};
    s->st.spare_mem += b->cap;
  } else {
    free(b->p);
    s->freed += b->cap;
  }
  *b = (pt_buf){0};
}

/* Memory given back to malloc stays with the process: after a burst of
 * connections dropped with their buffers (an attack, a stampede's end),
 * glibc's heap keeps its pages (an abuse run: 157 MB of heap, 10 MB in
 * use). Big buffers are mapped on their own (main.c sets the threshold);
 * the rest is trimmed here, at most once a second, once TRIM_AFTER bytes
 * have been freed since the last trim. */
#define TRIM_AFTER (16u << 20)
static void maybe_trim(pt_server *s, uint64_t now) {
#ifdef __GLIBC__
  if (s->freed < TRIM_AFTER || now - s->trimmed_ms < 1000) return;
  s->freed = 0;
  s->trimmed_ms = now;
  s->st.trims++;
  malloc_trim(0);
#else
  (void)s, (void)now;
#endif
}

static void dirty_add(pt_conn *c) {
  if (c->dirty) return;
  pt_server *s = c->srv;
  c->dirty = true;
  c->dirty_prev = NULL;
  c->dirty_next = s->dirty;
  if (s->dirty) s->dirty->dirty_prev = c;
  s->dirty = c;
}

/* The yielded queue: oldest at its head. */
static void yield_add(pt_conn *c) {
  pt_server *s = c->srv;
  c->yielded = true;
  c->yield_next = NULL;
  c->yield_prev = s->yield_tail;
  if (s->yield_tail)
    s->yield_tail->yield_next = c;
  else
    s->yielded = c;
  s->yield_tail = c;
  s->st.waiting++;
}

static void yield_remove(pt_conn *c) {
  if (!c->yielded) return;
  pt_server *s = c->srv;
  if (c->yield_prev)
    c->yield_prev->yield_next = c->yield_next;
  else
    s->yielded = c->yield_next;
  if (c->yield_next)
    c->yield_next->yield_prev = c->yield_prev;
  else
    s->yield_tail = c->yield_prev;
  c->yielded = false;
  s->st.waiting--;
}

static void dirty_remove(pt_conn *c) {
  if (!c->dirty) return;
  if (c->dirty_prev)
    c->dirty_prev->dirty_next = c->dirty_next;
  else
    c->srv->dirty = c->dirty_next;
  if (c->dirty_next) c->dirty_next->dirty_prev = c->dirty_prev;
  c->dirty = false;
}

static uint8_t *reply(pt_conn *c, size_t len);
static void over_budget(pt_server *s);

uint8_t *pt_conn_reply(pt_conn *c, size_t len) {
  c->out_state = true;
  return reply(c, len);
}

uint8_t *pt_conn_reply_stateless(pt_conn *c, size_t len) { return reply(c, len); }

static uint8_t *reply(pt_conn *c, size_t len) {
  pt_server *s = c->srv;
  buf_reserve(c, &c->out, c->out.len + PT_FRAME_HEADER + len);
  uint8_t *p = c->out.p + c->out.len;
  pt_be32_put(p, (uint32_t)len);
  c->out.len += PT_FRAME_HEADER + len;
  if (c->closing) return p + 4;
  s->st.unsent += PT_FRAME_HEADER + len;
  c->replies_open++;
  dirty_add(c);
  if (over(s)) over_budget(s);
  if (c->closing) return p + PT_FRAME_HEADER; /* dropped for the budget: the buffer lives until its close */
  if (pending(c) > s->cfg.out_hard) { /* a reader that stopped reading */
    s->st.dropped_slow++;
    char why[128];
    snprintf(why, sizeof why, "%zu bytes of replies unread, past output_hard_limit %zu", pending(c),
             s->cfg.out_hard);
    log_client(c, PT_LOG_INFO, "client_dropped", why);
    conn_close(c); /* the buffer stays valid until the close callback */
  }
  return p + PT_FRAME_HEADER;
}

uint32_t *pt_conn_flags(pt_conn *c) { return &c->flags; }
uint64_t pt_conn_id(const pt_conn *c) { return c->id; }
void pt_conn_keep_when_idle(pt_conn *c) { c->keep_idle = true; }
void *pt_conn_data(pt_conn *c) { return c->data; }

/* The unsent output and kept input of every connection together is past
 * the budget: the ones holding the most go, until it is back under (theirs
 * stops counting when they close). O(connections) a drop: only when over. */
static void over_budget(pt_server *s) {
  while (over(s) && s->nspare) { /* the cache first */
    pt_buf *b = &s->spare[--s->nspare];
    s->st.spare_mem -= b->cap;
    s->freed += b->cap;
    free(b->p);
  }
  while (over(s)) {
    pt_conn *big = NULL;
    for (pt_conn *c = s->conns; c; c = c->next)
      if (!c->closing && (!big || weight(c) > weight(big))) big = c;
    if (!big || !weight(big)) return;
    s->st.dropped_budget++;
    char why[200];
    snprintf(why, sizeof why, "%zu bytes of replies unsent (%zu of buffers) and %zu of input kept, the most of any while all held %zu, past output_budget %zu",
             pending(big), big->mem, big->in.cap, budget_used(s), s->cfg.out_budget);
    log_client(big, PT_LOG_WARN, "client_dropped", why);
    conn_close(big);
  }
}

/* ---- connections per address ---- */

static void ip_key(const struct sockaddr_storage *ss, uint8_t k[16]) {
  memset(k, 0, 16);
  if (ss->ss_family == AF_INET6) {
    memcpy(k, &((const struct sockaddr_in6 *)ss)->sin6_addr, 16);
  } else if (ss->ss_family == AF_INET) { /* as v4-mapped: one key per address either way */
    k[10] = k[11] = 0xff;
    memcpy(k + 12, &((const struct sockaddr_in *)ss)->sin_addr, 4);
  }
}

static uint32_t ip_hash(const uint8_t k[16]) {
  uint64_t a, b;
  memcpy(&a, k, 8), memcpy(&b, k + 8, 8);
  uint64_t h = (a ^ (b * 0x9e3779b97f4a7c15ULL)) * 0xbf58476d1ce4e5b9ULL;
  return (uint32_t)(h >> 32);
}

/* k's entry, or the free one where it would go. The table is never full
 * (twice max_clients). */
static uint32_t ip_find(const pt_server *s, const uint8_t k[16]) {
  uint32_t mask = s->ips_cap - 1, i = ip_hash(k) & mask;
  while (s->ips[i].n && memcmp(s->ips[i].ip, k, 16)) i = (i + 1) & mask;
  return i;
}

/* One more connection from k; false when k has max_per_ip already. */
static bool ip_take(pt_server *s, const uint8_t k[16]) {
  uint32_t i = ip_find(s, k);
  if (s->ips[i].n >= s->cfg.max_per_ip) return false;
  if (!s->ips[i].n) memcpy(s->ips[i].ip, k, 16);
  s->ips[i].n++;
  return true;
}

/* One connection less from k; an entry that falls to 0 is removed by
 * shifting back the entries its place had displaced (no tombstones). */
static void ip_give(pt_server *s, const uint8_t k[16]) {
  uint32_t mask = s->ips_cap - 1, i = ip_find(s, k);
  if (!s->ips[i].n || --s->ips[i].n) return;
  for (uint32_t j = (i + 1) & mask; s->ips[j].n; j = (j + 1) & mask) {
    uint32_t home = ip_hash(s->ips[j].ip) & mask;
    if (((j - home) & mask) >= ((j - i) & mask)) { /* its home is not in (i, j]: it may fill i */
      s->ips[i] = s->ips[j];
      s->ips[j].n = 0;
      i = j;
    }
  }
}

static void conn_free(pt_conn *c) {
  pt_server *s = c->srv;
  dirty_remove(c);
  if (c->input_due) /* its kept frames were never handed on: off the resumer's list (short) */
    for (pt_conn **p = &s->due; *p; p = &(*p)->due_next)
      if (*p == c) {
        *p = c->due_next;
        break;
      }
  while (c->held) {
    pt_seg *g = c->held;
    c->held = g->next;
    buf_release(c, &g->buf);
    free(g);
  }
  if (c->prev)
    c->prev->next = c->next;
  else
    s->conns = c->next;
  if (c->next) c->next->prev = c->prev;
  buf_release(c, &c->out);
  free(c->in.p);
  s->freed += c->in.cap;
  if (c->ip_counted) ip_give(s, c->ip);
  pt_tls_conn_free(c->tls);
  free(c);
  s->st.closed++;
  s->st.clients--;
  s->open_handles--;
  maybe_finish_stop(s);
}

static void on_conn_closed(uv_handle_t *h) {
  pt_conn *c = h->data;
  c->handle_closed = true;
  if (c->srv->hooks.on_close) c->srv->hooks.on_close(c->srv->hooks.ctx, c);
  if (c->writes == 0 && c->seal_refs == 0) conn_free(c);
}

static void conn_close(pt_conn *c) {
  if (c->closing) return;
  c->closing = true;
  c->srv->st.unsent -= pending(c); /* the live connections' output only */
  c->srv->st.kept -= c->in.cap;
  c->srv->st.out_mem -= c->mem;
  yield_remove(c);
  if (c->paused) c->srv->st.paused--;
  c->paused = false;
  dirty_remove(c);
  uv_read_stop((uv_stream_t *)&c->tcp);
  uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
}

static void on_write(uv_write_t *req, int status) {
  wreq *w = (wreq *)req;
  pt_conn *c = w->c;
  pt_server *s = c->srv;
  c->writes--;
  c->inflight -= w->len;
  if (!c->closing) s->st.unsent -= w->len;
  c->progress_ms = uv_now(s->loop);
  s->st.bytes_out += status == 0 ? w->len : 0;
  buf_release(c, &w->buf);
  free(w);
  if (c->handle_closed) {
    if (c->writes == 0 && c->seal_refs == 0) conn_free(c);
    return;
  }
  if (c->closing) return;
  if (status < 0) {
    conn_close(c);
    return;
  }
  if (c->draining && pending(c) == 0) {
    conn_close(c);
    return;
  }
  conn_resume(c);
}

/* Sends b as it is: written at once when the socket takes it all (most
 * turns), and whatever it did not take handed to uv_write, b with it until
 * the callback. The try comes first because libuv re-arms epoll after every
 * queued write that drains (an epoll_ctl per reply batch, a third of the
 * syscalls under load); it is only made with no write queued, so order
 * holds (libuv refuses it then anyway). */
static void write_raw(pt_conn *c, pt_buf *b) {
  size_t done = 0;
  if (c->writes == 0) {
    uv_buf_t ub = uv_buf_init((char *)b->p, (unsigned)b->len);
    int n = uv_try_write((uv_stream_t *)&c->tcp, &ub, 1);
    if (n < 0 && n != UV_EAGAIN) {
      c->srv->st.unsent -= b->len;
      buf_release(c, b);
      conn_close(c);
      return;
    }
    done = n > 0 ? (size_t)n : 0;
    c->srv->st.unsent -= done;
    c->srv->st.bytes_out += done;
    if (done == b->len) {
      buf_release(c, b);
      conn_resume(c); /* what on_write does for a queued write */
      return;
    }
  }
  wreq *w = pt_xmalloc(sizeof(*w));
  w->c = c;
  w->buf = *b;
  w->len = b->len - done;
  *b = (pt_buf){0};
  uv_buf_t ub = uv_buf_init((char *)w->buf.p + done, (unsigned)w->len);
  if (c->writes++ == 0) c->progress_ms = uv_now(c->srv->loop); /* the client's turn to read from now */
  c->inflight += w->len;
  int rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, &ub, 1, on_write);
  if (rc < 0) { /* no callback will come */
    c->writes--;
    c->inflight -= w->len;
    c->srv->st.unsent -= w->len;
    buf_release(c, &w->buf);
    free(w);
    conn_close(c);
  }
}

/* The ciphertext TLS left (handshake messages, records): to the socket,
 * in the order it left it. It counts in the unsent output as the write
 * paths take it back out. */
static void tls_push(pt_conn *c) {
  size_t n = c->tls && !c->closing ? pt_tls_pending(c->tls) : 0;
  if (!n) return;
  pt_buf b = {0};
  buf_reserve(c, &b, n);
  b.len = pt_tls_take(c->tls, b.p, n);
  c->srv->st.unsent += b.len;
  write_raw(c, &b);
}

/* Sends the plaintext b: as it is, or through TLS. */
static void write_buf(pt_conn *c, pt_buf *b) {
  if (!c->tls) return write_raw(c, b);
  pt_server *s = c->srv;
  s->st.unsent -= b->len; /* its ciphertext counts instead (tls_push) */
  int rc = pt_tls_established(c->tls) ? pt_tls_write(c->tls, b->p, b->len) : -1;
  buf_release(c, b);
  if (rc) { /* before the handshake (a refusal at accept) or a broken one: nothing to send it by */
    conn_close(c);
    return;
  }
  tls_push(c);
}

static void flush_conn(pt_conn *c) {
  if (c->linger_until) return; /* the sweep lets it go */
  while (c->held && c->held->released && !c->closing) {
    pt_seg *g = c->held;
    c->held = g->next;
    if (!c->held) c->held_tail = NULL;
    c->held_bytes -= g->buf.len;
    c->replies_held -= g->replies;
    write_buf(c, &g->buf);
    free(g);
  }
  if (!c->held && c->out.len && !c->closing) {
    c->replies_open = 0;
    write_buf(c, &c->out);
    c->out_state = false;
  }
  /* paused for its count of replies, which went out with this flush (not
   * for bytes, which only a write's end gives back) */
  if (c->paused && !c->closing) conn_resume(c);
}

void pt_server_flush(pt_server *s) {
  while (s->dirty) {
    pt_conn *c = s->dirty;
    dirty_remove(c);
    flush_conn(c);
    if (!c->closing && c->draining && pending(c) == 0) conn_close(c);
  }
  /* the next turn: its share, and which of the connections that took
   * theirs read on (the ones that waited longest) */
  unsigned want = s->busy + s->st.waiting, turn = s->cfg.turn_frames;
  unsigned share = turn / (want ? want : 1);
  s->share = share < SHARE_MIN ? SHARE_MIN : share;
  unsigned soft = s->soft;
  s->busy = s->soft = 0;
  s->turn++;
  for (unsigned n = turn / s->share > soft ? turn / s->share - soft : 0; n && s->yielded; n--) {
    pt_conn *c = s->yielded;
    yield_remove(c);
    read_on(c);
  }
  /* kept frames to hand on, or connections still waiting their turn (the
   * others may have nothing more to say): the next turn comes at once */
  if ((s->due || s->yielded) && !uv_is_active((uv_handle_t *)&s->resumer))
    uv_timer_start(&s->resumer, on_resume_input, 0, 0);
}

void pt_server_seal(pt_server *s, uint64_t seq) {
  for (pt_conn *c = s->dirty; c; c = c->dirty_next) {
    if (c->closing || c->out.len == 0 || !c->out_state) continue;
    pt_seg *g = pt_xmalloc(sizeof(*g));
    *g = (pt_seg){.seq = seq, .buf = c->out, .replies = c->replies_open};
    c->replies_held += c->replies_open;
    c->replies_open = 0;
    c->out = (pt_buf){0};
    c->out_state = false;
    if (c->held_tail) c->held_tail->next = g;
    else c->held = g;
    c->held_tail = g;
    c->held_bytes += g->buf.len;
    if (s->seal_n == s->seal_cap) { /* grow the ring, keeping its order */
      size_t cap = s->seal_cap ? s->seal_cap * 2 : 256;
      seal_ref *v = pt_xmalloc(cap * sizeof(*v));
      for (size_t i = 0; i < s->seal_n; i++) v[i] = s->seals[(s->seal_head + i) % s->seal_cap];
      free(s->seals);
      s->seals = v;
      s->seal_cap = cap;
      s->seal_head = 0;
    }
    s->seals[(s->seal_head + s->seal_n++) % s->seal_cap] = (seal_ref){seq, c};
    c->seal_refs++;
  }
  /* a connection whose oldest held segment waits for its release has
   * nothing to write now; one released earlier in this turn stays dirty */
  for (pt_conn *c = s->dirty, *n; c; c = n) {
    n = c->dirty_next;
    if (c->held && !c->held->released && !c->closing) dirty_remove(c);
  }
}

static void drop(pt_conn *c) {
  c->srv->st.dropped_held++;
  log_client(c, PT_LOG_INFO, "client_dropped",
             "its replies waited for a Redis acknowledgement now in doubt; the client retries");
  conn_close(c); /* its replies' fate is unknown: the client retries */
}

void pt_server_drop_held(pt_server *s) {
  for (; s->seal_n; s->seal_n--, s->seal_head = (s->seal_head + 1) % s->seal_cap) {
    pt_conn *c = s->seals[s->seal_head].c;
    c->seal_refs--;
    if (c->handle_closed) {
      if (c->writes == 0 && c->seal_refs == 0) conn_free(c);
    } else if (!c->closing) {
      drop(c);
    }
  }
  for (pt_conn *c = s->dirty, *n; c; c = n) { /* this turn's, not sealed yet */
    n = c->dirty_next; /* closing takes c off the list */
    if (!c->closing && c->out.len && c->out_state) drop(c);
  }
}

void pt_server_release(pt_server *s, uint64_t seq) {
  while (s->seal_n && s->seals[s->seal_head].seq <= seq) {
    pt_conn *c = s->seals[s->seal_head].c;
    s->seal_head = (s->seal_head + 1) % s->seal_cap;
    s->seal_n--;
    c->seal_refs--;
    pt_seg *g = c->held;
    while (g && g->released) g = g->next;
    if (g) g->released = true; /* a connection's segments go in seal order */
    if (c->handle_closed) {
      if (c->writes == 0 && c->seal_refs == 0) conn_free(c);
    } else if (!c->closing) {
      dirty_add(c);
    }
  }
}

void pt_conn_close_after(pt_conn *c, uint64_t ms) {
  if (c->closing || c->draining) return;
  c->linger_until = srv_now(c->srv) + (ms ? ms : 1);
  if (c->paused) c->srv->st.paused--;
  c->paused = false;
  c->draining = true; /* never read again */
  uv_read_stop((uv_stream_t *)&c->tcp);
}

const char *pt_conn_peer(pt_conn *c, char *buf, size_t size) {
  struct sockaddr_storage ss;
  int len = sizeof ss;
  if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len)) return snprintf(buf, size, "?"), buf;
  return pt_sockaddr_str(&ss, buf, size);
}

void pt_server_each(pt_server *s, void (*fn)(void *ctx, pt_conn *c), void *ctx) {
  for (pt_conn *c = s->conns, *n; c; c = n) {
    n = c->next; /* closing keeps c listed until its handle closes */
    if (!c->closing) fn(ctx, c);
  }
}

void pt_conn_close_after_flush(pt_conn *c) {
  if (c->closing || c->draining) return;
  c->draining = true;
  if (c->paused) c->srv->st.paused--; /* draining now: never read again */
  c->paused = false;
  uv_read_stop((uv_stream_t *)&c->tcp);
  if (pending(c) == 0) conn_close(c);
}

/* Hands each complete frame in p[0..n) to the protocol layer; returns how
 * many bytes were consumed. */
#define LOOKAHEAD 4 /* frames whose lookups are started ahead of their turn */

/* Frames c may hand on this turn: the turn's share, or SHARE_DEMOTED in
 * the turn it was demoted in and the next. */
static unsigned share_of(const pt_conn *c) {
  const pt_server *s = c->srv;
  return c->demoted_turn && c->demoted_turn + 1 >= s->turn && s->share > SHARE_DEMOTED ? SHARE_DEMOTED : s->share;
}

void pt_conn_demote(pt_conn *c) {
  if (c->demoted_turn == c->srv->turn) return;
  c->demoted_turn = c->srv->turn;
  c->srv->st.demoted++;
}

static size_t parse_frames(pt_conn *c, const uint8_t *p, size_t n) {
  pt_server *s = c->srv;
  size_t off = 0;
  size_t ahead = 0;       /* bytes before this offset have been looked ahead at */
  uint32_t la = 0, k = 0; /* frames looked ahead at, frames handed on (in this call) */
  /* a note per frame looked ahead at and not yet handed on */
  _Alignas(16) uint8_t notes[LOOKAHEAD + 1][PT_FRAME_NOTE];
  const uint8_t *msg;
  size_t len;
  /* too full, or its share of the turn taken: the rest waits in c->in */
  while (!c->closing && !c->draining && !too_full(c) && c->turn_frames < share_of(c)) {
    if (s->hooks.on_lookahead) {
      if (ahead < off) ahead = off, la = k;
      while (la - k < LOOKAHEAD &&
             pt_frame_next(p + ahead, n - ahead, s->cfg.max_frame, &msg, &len) == PT_FRAME_OK) {
        s->hooks.on_lookahead(s->hooks.ctx, msg, len, notes[la % (LOOKAHEAD + 1)]);
        ahead += PT_FRAME_HEADER + len;
        la++;
      }
    }
    pt_frame_status fs = pt_frame_next(p + off, n - off, s->cfg.max_frame, &msg, &len);
    if (fs == PT_FRAME_MORE) break;
    if (fs == PT_FRAME_TOO_BIG) {
      char detail[96];
      snprintf(detail, sizeof detail, "frame of %zu bytes exceeds the limit of %zu", len,
               s->cfg.max_frame);
      s->st.protocol_errors++;
      s->st.oversize++;
      log_client(c, PT_LOG_INFO, "client_cut", detail);
      s->hooks.on_protocol_error(s->hooks.ctx, c, 11 /* INVALID_ARGUMENT */, detail);
      pt_conn_close_after_flush(c);
      return n;
    }
    s->st.frames_in++;
    c->turn_frames++;
    c->spoke = true;
    s->hooks.on_frame(s->hooks.ctx, c, msg, len, k < la ? notes[k % (LOOKAHEAD + 1)] : NULL);
    k++;
    off += PT_FRAME_HEADER + len;
  }
  return off;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b) {
  (void)suggested;
  pt_conn *c = h->data;
  pt_server *s = c->srv;
  b->base = (char *)s->rbuf;
  /* declined (UV_ENOBUFS, the socket keeps it): its share of this turn is
   * taken, or whole frames it sent wait to be handed on first */
  if (c->yield_turn == s->turn || frame_kept(c)) b->len = 0;
  else b->len = c->hot_turn && c->hot_turn + 1 >= s->turn ? HOT_READ : RBUF_SIZE;
}

/* Stops reading c while it is too full (too_full); conn_resume reads on. */
static void maybe_pause(pt_conn *c) {
  pt_server *s = c->srv;
  if (c->closing || c->paused || c->draining || !too_full(c)) return;
  c->paused = true;
  s->st.paused++;
  s->st.pauses++;
  uv_read_stop((uv_stream_t *)&c->tcp);
  pt_debug("client %llu paused: %zu reply bytes unsent, %u replies unwritten, %zu bytes of input held",
           (unsigned long long)c->id, pending(c), c->replies_open + c->replies_held, c->in.len);
}

/* Hands the frames of c's input to the protocol layer: what c->in holds,
 * then data[0..n). What is left (a partial frame, or whole ones while c is
 * too full or has had its share of the turn) is kept in c->in, only while
 * there is some. */
static void take_input(pt_conn *c, const uint8_t *data, size_t n) {
  pt_server *s = c->srv;
  if (c->turn != s->turn) { /* its first input this turn */
    c->turn = s->turn;
    c->turn_frames = 0;
    s->busy++;
  }
  if (c->in.len == 0) {
    size_t used = n ? parse_frames(c, data, n) : 0;
    if (used < n && !c->closing && !c->draining) {
      c->in_since = srv_now(s);
      c->in.p = pt_xmalloc(n - used);
      kept_cap(c, n - used);
      memcpy(c->in.p, data + used, n - used);
      c->in.len = n - used;
      c->in_off = 0;
      if (over(s)) over_budget(s);
    }
    return;
  }
  if (n) { /* appended after what is kept: compacted first (a partial frame: we read only then) */
    if (c->in_off + c->in.len + n > c->in.cap) {
      memmove(c->in.p, c->in.p + c->in_off, c->in.len);
      c->in_off = 0;
    }
    if (c->in.cap < c->in.len + n) {
      c->in.p = pt_xrealloc(c->in.p, c->in.len + n);
      kept_cap(c, c->in.len + n);
    }
    memcpy(c->in.p + c->in_off + c->in.len, data, n);
    c->in.len += n;
  }
  size_t used = parse_frames(c, c->in.p + c->in_off, c->in.len);
  c->in.len -= used;
  c->in_off += used;
  if (c->in.len == 0 || c->closing || c->draining) {
    free(c->in.p); /* idle connections hold no input buffer */
    kept_cap(c, 0);
    c->in = (pt_buf){0};
    c->in_off = 0;
  } else if (used) {
    c->in_since = srv_now(s); /* a new frame began */
  }
  if (over(s)) over_budget(s);
}

/* A whole frame (or one too big, which is an answer too) is kept. */
static bool frame_kept(const pt_conn *c) {
  const uint8_t *msg;
  size_t len;
  return c->in.len &&
         pt_frame_next(c->in.p + c->in_off, c->in.len, c->srv->cfg.max_frame, &msg, &len) != PT_FRAME_MORE;
}

/* After input was handed on: c took its share of the turn, so it is not
 * read again until the next one (pt_server_flush). */
/* c's kept frames are handed on by the resumer, a timer the turn's end
 * starts (pt_server_flush): at the next turn, never in this one. (Not
 * started here: libuv 1.44 runs a timer started at 0 from its own callback
 * again in the same pass, for ever.) */
static void due_add(pt_conn *c) {
  pt_server *s = c->srv;
  if (c->input_due) return;
  c->input_due = true;
  c->due_next = s->due;
  s->due = c;
}

/* As many as the next turn can serve (turn_frames / share) only skip the
 * rest of this turn: they stay armed (on_alloc declines their reads until
 * the turn ends), which costs no system call. Past that, a yield is a stop
 * and a place in the queue. */
static void maybe_yield(pt_conn *c) {
  pt_server *s = c->srv;
  if (c->closing || c->draining || c->yielded || c->yield_turn == s->turn || c->turn_frames < share_of(c)) return;
  s->st.yields++;
  c->hot_turn = s->turn;
  if (s->soft < s->cfg.turn_frames / s->share) {
    s->soft++;
    c->yield_turn = s->turn;
    if (frame_kept(c)) due_add(c); /* handed on next turn, by the resumer */
    return;
  }
  uv_read_stop((uv_stream_t *)&c->tcp);
  yield_add(c);
}

/* Reads c again (neither paused, yielded, draining nor closing): the whole
 * frames it keeps first, by the resumer (what is decided must be decided
 * within a turn: its record, then its replies; a resume can come from a
 * write at a turn's end), and only then its socket, so the input it keeps
 * never grows past one read. */
static void read_on(pt_conn *c) {
  pt_server *s = c->srv;
  if (c->closing || c->draining || c->paused || c->yielded) return;
  if (frame_kept(c)) due_add(c); /* reads are declined meanwhile (on_alloc) */
  else if (c->in.len) c->in_since = srv_now(s); /* its partial frame waited on us: its timeout starts over */
  uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

/* Ciphertext read: through TLS into plaintext frames; what TLS answers
 * (the handshake) goes out at once. */
static void tls_input(pt_conn *c, const uint8_t *p, size_t n) {
  pt_server *s = c->srv;
  bool was = pt_tls_established(c->tls);
  if (!was && !c->tls_spoke && n && p[0] != 0x16) {
    /* not a TLS handshake record: a plaintext pintuan client (a frame's
     * length begins 0x00). It is told so in its own protocol, then closed:
     * nothing it sent is read. */
    const char *detail = "this port speaks TLS: connect with TLS (libpintuan pintuan_connect_tls, "
                         "pintuan-cli --tls-ca FILE)";
    s->st.tls_failed++;
    pt_tls_conn_free(c->tls);
    c->tls = NULL;
    log_client(c, PT_LOG_INFO, "client_cut", "a plaintext client on the TLS port");
    s->hooks.on_protocol_error(s->hooks.ctx, c, 11 /* INVALID_ARGUMENT */, detail);
    pt_conn_close_after_flush(c);
    return;
  }
  c->tls_spoke = true;
  pt_tls_feed(c->tls, p, n);
  for (;;) {
    ssize_t k = pt_tls_read(c->tls, s->plain, sizeof s->plain);
    if (!was && pt_tls_established(c->tls)) {
      was = true;
      const char *peer = pt_tls_peer_name(c->tls);
      if (peer && s->hooks.on_secure) s->hooks.on_secure(s->hooks.ctx, c, peer);
    }
    if (k < 0) {
      s->st.tls_failed++;
      tls_push(c); /* the alert saying why, if it can be sent */
      log_client(c, PT_LOG_INFO, "client_cut", pt_tls_error(c->tls));
      conn_close(c);
      return;
    }
    if (k == 0) break;
    take_input(c, s->plain, (size_t)k);
    if (c->closing || c->draining) break;
  }
  tls_push(c);
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b) {
  pt_conn *c = st->data;
  pt_server *s = c->srv;
  if (n == UV_ENOBUFS) return; /* declined by on_alloc: read in a later turn */
  if (n < 0) { /* EOF or error: an incomplete frame is simply dropped */
    conn_close(c);
    return;
  }
  if (n == 0) return;
  s->st.bytes_in += (uint64_t)n;
  c->last_read_ms = uv_now(s->loop);
  if (c->tls) {
    tls_input(c, (const uint8_t *)b->base, (size_t)n);
    if (c->closing) return;
  } else {
    take_input(c, (const uint8_t *)b->base, (size_t)n);
  }
  maybe_pause(c);
  maybe_yield(c);
  if (!c->closing && !c->paused && !c->yielded && frame_kept(c)) read_on(c); /* kept frames first */
}

static void conn_resume(pt_conn *c) {
  if (c->paused && drained(c)) {
    c->paused = false;
    c->srv->st.paused--;
    pt_debug("client %llu resumed: %zu reply bytes unsent", (unsigned long long)c->id, pending(c));
    read_on(c);
  }
}

static void on_resume_input(uv_timer_t *t) {
  pt_server *s = t->data;
  pt_conn *list = s->due;
  s->due = NULL;
  for (pt_conn *c = list, *next; c; c = next) {
    next = c->due_next;
    c->input_due = false;
    if (c->closing || c->paused || c->draining || c->yielded) continue;
    take_input(c, NULL, 0);
    maybe_pause(c);
    maybe_yield(c);
    read_on(c);
  }
}

/* Bytes that wait in c's socket, unread: the client did send. */
static bool bytes_waiting(pt_conn *c) {
  uv_os_fd_t fd;
  int n = 0;
  return uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0 && ioctl(fd, FIONREAD, &n) == 0 && n > 0;
}

/* The client took some of what its socket held since we last looked: a
 * write that has not completed yet because the loop was busy. */
static bool socket_drained(pt_conn *c) {
  uv_os_fd_t fd;
  int n = 0;
  if (uv_fileno((uv_handle_t *)&c->tcp, &fd) != 0 || ioctl(fd, SIOCOUTQ, &n) != 0) return false;
  bool moved = (unsigned)n != c->outq_seen;
  c->outq_seen = (unsigned)n;
  return moved;
}

/* The bounds in time, for c at now: true when c was closed for one. They
 * are judged at a timer, before the turn reads: a connection whose bytes
 * wait unread (or whose reader took some of what its socket held) is not
 * silent, idle or stuck, however long the last turn was. */
static bool timed_out(pt_server *s, pt_conn *c, uint64_t now) {
  const pt_server_config *k = &s->cfg;
  char why[128];
  if (c->closing || c->linger_until) return false;
  if (k->reply_deadline_ms && c->writes && now - c->progress_ms > k->reply_deadline_ms) {
    if (socket_drained(c)) {
      c->progress_ms = now;
      return false;
    }
    s->st.dropped_deadline++;
    snprintf(why, sizeof why, "took none of its replies for %llu ms (%zu bytes waiting)",
             (unsigned long long)(now - c->progress_ms), pending(c));
  } else if (k->first_frame_ms && !c->spoke && !c->draining && now - c->opened_ms > k->first_frame_ms) {
    if (c->in.len || bytes_waiting(c)) return false; /* it spoke: judged on the frame's timeout */
    s->st.closed_silent++;
    snprintf(why, sizeof why, "no request within %llu ms of connecting", (unsigned long long)k->first_frame_ms);
  } else if (k->idle_ms && !c->keep_idle && !c->draining && !pending(c) && !c->in.len &&
             now - c->last_read_ms > k->idle_ms) {
    if (bytes_waiting(c)) return false;
    s->st.closed_idle++;
    snprintf(why, sizeof why, "idle for %llu ms", (unsigned long long)(now - c->last_read_ms));
  } else {
    return false;
  }
  log_client(c, PT_LOG_INFO, "client_dropped", why);
  conn_close(c);
  return true;
}

static void on_sweep(uv_timer_t *t) {
  pt_server *s = t->data;
  uint64_t now = srv_now(s), loop_now = uv_now(s->loop);
  for (pt_conn *c = s->conns, *next; c; c = next) {
    next = c->next;
    if (c->linger_until && now >= c->linger_until && !c->closing) { /* its pause is over */
      c->linger_until = 0;
      if (pending(c)) dirty_add(c); /* written at the next flush, then closed */
      else conn_close(c);
      continue;
    }
    if (timed_out(s, c, loop_now)) continue;
    /* A client not read (paused, its share taken, whole frames kept) waits
     * on us, not we on it. */
    if (c->closing || c->draining || c->paused || c->yielded || c->input_due || c->in.len == 0 ||
        now - c->in_since < s->cfg.frame_timeout_ms || frame_kept(c) || bytes_waiting(c))
      continue;
    char detail[96];
    snprintf(detail, sizeof detail, "incomplete frame for over %llu ms",
             (unsigned long long)s->cfg.frame_timeout_ms);
    s->st.protocol_errors++;
    s->st.frame_timeouts++;
    log_client(c, PT_LOG_INFO, "client_cut", detail);
    s->hooks.on_protocol_error(s->hooks.ctx, c, 11 /* INVALID_ARGUMENT */, detail);
    pt_conn_close_after_flush(c);
  }
  maybe_trim(s, loop_now);
}

static void on_connection(uv_stream_t *l, int status) {
  pt_server *s = l->data;
  if (status < 0 || s->stopping) return;
  pt_conn *c = pt_xcalloc(1, sizeof(*c));
  c->srv = s;
  c->id = ++s->next_id;
  c->tcp.data = c;
  uv_tcp_init(s->loop, &c->tcp);
  s->open_handles++;
  s->st.clients++;
  c->next = s->conns;
  if (s->conns) s->conns->prev = c;
  s->conns = c;
  if (uv_accept(l, (uv_stream_t *)&c->tcp) < 0) {
    conn_close(c);
    return;
  }
  s->st.accepted++;
  uv_tcp_nodelay(&c->tcp, 1);
  if (s->cfg.socket_buffer) {
    /* Bounded: the kernel would otherwise grow a socket's buffers to MBs
     * (tcp_wmem, tcp_rmem), and what a never-reader leaves unread or a
     * flood leaves unsent while it waits its turn would sit there: a
     * thousand such clients took loopback TCP to its memory pressure
     * threshold (1.5 GB), slowing every socket of the host. */
    int n = (int)s->cfg.socket_buffer;
    uv_send_buffer_size((uv_handle_t *)&c->tcp, &n);
    n = (int)s->cfg.socket_buffer;
    uv_recv_buffer_size((uv_handle_t *)&c->tcp, &n);
  }
  c->opened_ms = c->last_read_ms = uv_now(s->loop);
  if (s->cfg.tls) c->tls = pt_tls_accept(s->cfg.tls);
  if (s->cfg.max_per_ip && s->st.clients <= s->cfg.max_clients) {
    struct sockaddr_storage ss;
    int len = sizeof ss;
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0) {
      ip_key(&ss, c->ip);
      if (!(c->ip_counted = ip_take(s, c->ip))) {
        s->st.refused_ip++;
        char why[64];
        snprintf(why, sizeof why, "max_clients_per_ip %u reached", s->cfg.max_per_ip);
        log_client(c, PT_LOG_INFO, "client_refused", why);
        s->hooks.on_protocol_error(s->hooks.ctx, c, 15 /* OVERLOADED */, "too many connections from your address");
        pt_conn_close_after_flush(c);
        return;
      }
    }
  }
  if (s->st.clients > s->cfg.max_clients) {
    s->st.refused++;
    char why[64];
    snprintf(why, sizeof why, "max_clients %u reached", s->cfg.max_clients);
    log_client(c, PT_LOG_INFO, "client_refused", why);
    s->hooks.on_protocol_error(s->hooks.ctx, c, 15 /* OVERLOADED */, "too many clients");
    pt_conn_close_after_flush(c);
    return;
  }
  uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

int pt_server_resolve(pt_server_config *cfg, const char *host, int port, char *err, size_t errlen) {
  pt_addr a = {.port = port};
  snprintf(a.host, sizeof a.host, "%s", host);
  int n = pt_addr_resolve(&a, true, cfg->listen, PT_LISTEN_MAX, err, errlen);
  cfg->nlisten = n > 0 ? (unsigned)n : 0;
  return n > 0 ? 0 : -1;
}

static int addr_port(const struct sockaddr_storage *a) {
  return ntohs(a->ss_family == AF_INET6 ? ((const struct sockaddr_in6 *)a)->sin6_port
                                        : ((const struct sockaddr_in *)a)->sin_port);
}

static void set_port(struct sockaddr_storage *a, int port) {
  if (a->ss_family == AF_INET6)
    ((struct sockaddr_in6 *)a)->sin6_port = htons((uint16_t)port);
  else
    ((struct sockaddr_in *)a)->sin_port = htons((uint16_t)port);
}

static void on_server_handle_closed(uv_handle_t *h);

/* Binds and listens on a; 0 or a libuv error. */
static int listen_on(pt_server *s, struct sockaddr_storage *a, bool several) {
  unsigned i = s->nlisteners++;
  uv_tcp_t *l = &s->listeners[i];
  uv_tcp_init(s->loop, l);
  l->data = s;
  s->open_handles++;
  /* several addresses: an IPv6 wildcard must not also claim the IPv4 ones */
  unsigned flags = several && a->ss_family == AF_INET6 ? UV_TCP_IPV6ONLY : 0;
  int rc = uv_tcp_bind(l, (const struct sockaddr *)a, flags);
  if (rc == 0) rc = uv_listen((uv_stream_t *)l, 4096, on_connection);
  if (rc == 0) {
    int blen = sizeof s->bound[0];
    uv_tcp_getsockname(l, (struct sockaddr *)&s->bound[s->nbound], &blen);
    s->nbound++;
  }
  return rc;
}

pt_server *pt_server_start(uv_loop_t *loop, const pt_server_config *cfg,
                           const pt_server_hooks *hooks, char *err, size_t errlen) {
  pt_server *s = pt_xcalloc(1, sizeof(*s));
  s->loop = loop;
  s->cfg = *cfg;
  s->hooks = *hooks;
  bool several = cfg->nlisten > 1;
  int rc = 0;
  char name[INET6_ADDRSTRLEN + 16];
  for (unsigned i = 0; i < cfg->nlisten && i < PT_LISTEN_MAX; i++) {
    struct sockaddr_storage a = cfg->listen[i];
    if (s->nbound) set_port(&a, addr_port(&s->bound[0])); /* port 0: the same one everywhere */
    rc = listen_on(s, &a, several);
    if (rc == 0) continue;
    snprintf(err, errlen, "listen on %s: %s", pt_sockaddr_str(&a, name, sizeof name),
             uv_strerror(rc));
    if (!several || (rc != UV_EADDRNOTAVAIL && rc != UV_EAFNOSUPPORT)) break;
    pt_warn("%s: skipped, this host cannot have that address", err);
    s->listener_closed[s->nlisteners - 1] = true;
    uv_close((uv_handle_t *)&s->listeners[s->nlisteners - 1], on_server_handle_closed);
    rc = 0;
  }
  if (rc == 0 && s->nbound == 0) {
    if (cfg->nlisten == 0) snprintf(err, errlen, "no address to listen on");
    rc = -1; /* every address skipped: err says why */
  }
  if (rc != 0) {
    /* closed and freed by the caller's loop run via pt_server_stop */
    s->stopping = true;
    pt_server_stop(s, NULL, NULL);
    return NULL;
  }
  s->port = addr_port(&s->bound[0]);
  uv_timer_init(loop, &s->sweeper);
  s->sweeper.data = s;
  s->open_handles++;
  uv_timer_init(loop, &s->resumer);
  s->resumer.data = s;
  s->open_handles++;
  if (!s->cfg.frame_timeout_ms) s->cfg.frame_timeout_ms = 10000;
  if (!s->cfg.turn_frames) s->cfg.turn_frames = 512;
  if (s->cfg.turn_frames < SHARE_MIN) s->cfg.turn_frames = SHARE_MIN;
  s->share = s->cfg.turn_frames;
  s->turn = 1; /* a connection's turn 0: none yet */
  if (s->cfg.max_per_ip) {
    for (s->ips_cap = 64; s->ips_cap < 2 * (uint64_t)s->cfg.max_clients + 2;) s->ips_cap *= 2;
    s->ips = pt_xcalloc(s->ips_cap, sizeof *s->ips);
  }
  /* the sweep sees every time bound a quarter of its length late at most,
   * and a second late at most (a failed Hello's pause) */
  uint64_t shortest = s->cfg.frame_timeout_ms;
  const uint64_t bounds[] = {s->cfg.reply_deadline_ms, s->cfg.first_frame_ms, s->cfg.idle_ms};
  for (int i = 0; i < 3; i++)
    if (bounds[i] && bounds[i] < shortest) shortest = bounds[i];
  uint64_t every = shortest / 4 < 1 ? 1 : shortest / 4 > 1000 ? 1000 : shortest / 4;
  uv_timer_start(&s->sweeper, on_sweep, every, every);
  return s;
}

int pt_server_port(const pt_server *s) { return s->port; }

unsigned pt_server_addrs(const pt_server *s, struct sockaddr_storage *out, unsigned max) {
  unsigned n = s->nbound < max ? s->nbound : max;
  memcpy(out, s->bound, n * sizeof *out);
  return n;
}

void pt_server_stats_get(const pt_server *s, pt_server_stats *out) { *out = s->st; }

static void maybe_finish_stop(pt_server *s) {
  if (!s->stopping || s->open_handles) return;
  for (unsigned i = 0; i < s->nspare; i++) free(s->spare[i].p);
  free(s->seals);
  free(s->ips);
  void (*done)(void *) = s->done;
  void *arg = s->done_arg;
  free(s);
  if (done) done(arg);
}

static void on_server_handle_closed(uv_handle_t *h) {
  pt_server *s = h->data;
  s->open_handles--;
  maybe_finish_stop(s);
}

void pt_server_stop(pt_server *s, void (*done)(void *), void *arg) {
  s->stopping = true;
  s->done = done;
  s->done_arg = arg;
  /* held output is never sent now: forget the seals, close everyone */
  for (; s->seal_n; s->seal_n--, s->seal_head = (s->seal_head + 1) % s->seal_cap) {
    pt_conn *c = s->seals[s->seal_head].c;
    c->seal_refs--;
    /* a client gone while its replies were held: its handle closed
     * already, it was kept only for its seals, and no release will come
     * to free it now (nor would done be called). The listeners and timers
     * are still open, so this cannot finish the stop under us. */
    if (c->handle_closed && c->writes == 0 && c->seal_refs == 0) conn_free(c);
  }
  for (pt_conn *c = s->conns; c; c = c->next) conn_close(c);
  for (unsigned i = 0; i < s->nlisteners; i++)
    if (!s->listener_closed[i]) uv_close((uv_handle_t *)&s->listeners[i], on_server_handle_closed);
  if (s->sweeper.data == s) { /* initialized: the listen succeeded */
    uv_close((uv_handle_t *)&s->sweeper, on_server_handle_closed);
    uv_close((uv_handle_t *)&s->resumer, on_server_handle_closed);
  }
}
