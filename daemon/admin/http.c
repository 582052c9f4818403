/* The admin port's HTTP: listeners, connections, http-parser, routing.
 * One request per connection (answered with Connection: close), so a
 * connection is either still sending its request, waiting for its answer
 * to be made (a /metrics scrape, a slice per loop turn), being answered,
 * or following /stats/stream. The limits in admin.h keep what a misbehaving
 * client can hold small and bounded; none of it touches the storefront
 * port's connections. */
#include <arpa/inet.h>
#include <http_parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin_int.h"
#include "clock.h"
#include "log.h"
#include "xalloc.h"

#define MAX_HEAD 8192            /* request line and headers */
#define REQUEST_TIMEOUT_MS 10000 /* to send the whole request */
#define ANSWER_TIMEOUT_MS 30000  /* to read the answer (streams excepted) */
#define STREAM_QUEUE_MAX 65536   /* unsent stream bytes past which lines are skipped */
#define STREAM_STUCK_S 60        /* lines skipped in a row before a stream is cut */
#define GENERAL_SLOTS (PT_ADMIN_MAX_CONNS - PT_ADMIN_PROBE_SLOTS)
#define SCRAPE_SLICE 4096        /* campaigns a scrape looks at per loop turn (~0.1-0.5 ms) */

typedef enum { C_READING, C_SCRAPING, C_ANSWERING, C_STREAMING } cstate;

typedef struct aconn {
  uv_tcp_t tcp;
  pt_admin *a;
  struct aconn *prev, *next; /* oldest first */
  http_parser parser;
  cstate state;
  bool closing, loopback;
  bool probe; /* on a probe slot: serves /healthz and /ready only */
  int64_t since_ms; /* accepted */
  size_t head_bytes;
  char url[1024];
  size_t url_len;
  bool url_long;
  char field[16]; /* the header name being read, enough to tell Authorization */
  size_t field_len;
  bool new_field, field_long, in_auth;
  char auth[320];
  size_t auth_len;
  unsigned skipped; /* stream lines skipped in a row */
  admin_scrape *scrape; /* C_SCRAPING: the /metrics answer being made */
} aconn;

struct pt_admin {
  uv_loop_t *loop;
  pt_admin_sources src;
  uv_tcp_t listeners[PT_LISTEN_MAX];
  unsigned nlisten;
  int port;
  aconn *head, *tail;
  unsigned nconns, nprobes, nstreams, open_handles; /* nprobes: of nconns, on probe slots */
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
  if (c->probe) a->nprobes--;
  if (c->state == C_STREAMING) a->nstreams--;
  admin_scrape_free(c->scrape);
  c->scrape = NULL;
  uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
}

static void on_written(uv_write_t *req, int status) {
  wreq *w = (wreq *)req;
  aconn *c = req->data;
  free(w->buf.p);
  free(w);
  if (c->closing) return;
  /* a one-shot answer is complete once written; a failed write ends anything */
  if (status < 0 || (c->state == C_ANSWERING && uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) == 0))
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

static const char *reason(int code) {
  switch (code) {
  case 200: return "OK";
  case 400: return "Bad Request";
  case 401: return "Unauthorized";
  case 404: return "Not Found";
  case 405: return "Method Not Allowed";
  case 408: return "Request Timeout";
  case 414: return "URI Too Long";
  case 431: return "Request Header Fields Too Large";
  case 503: return "Service Unavailable";
  default: return "Error";
  }
}

/* Answers and closes once written. body may be NULL (an empty body). */
static void answer(aconn *c, int code, const char *type, abuf *body, const char *extra) {
  if (c->state == C_ANSWERING || c->closing) return;
  c->state = C_ANSWERING;
  uv_read_stop((uv_stream_t *)&c->tcp);
  bool head_only = c->parser.method == HTTP_HEAD && code < 400;
  abuf out = {0};
  abuf_printf(&out,
              "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
              "Cache-Control: no-store\r\nConnection: close\r\n%s\r\n",
              code, reason(code), type, body ? body->len : 0, extra ? extra : "");
  if (body && body->len && !head_only) abuf_add(&out, body->p, body->len);
  if (body) free(body->p), *body = (abuf){0};
  conn_send(c, &out);
}

static void answer_text(aconn *c, int code, const char *text, const char *extra) {
  abuf b = {0};
  abuf_printf(&b, "%s\n", text);
  answer(c, code, "text/plain; charset=utf-8", &b, extra);
}

/* ---- requests ---- */

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

/* Authorization: Bearer NAME:SECRET, of any key (a reader's is enough). */
static bool key_ok(const aconn *c, const pt_keys *keys) {
  static const char bearer[] = "Bearer ";
  const size_t bl = sizeof bearer - 1;
  if (c->auth_len <= bl || c->auth_len >= sizeof c->auth || strncmp(c->auth, bearer, bl)) return false;
  const char *cred = c->auth + bl, *colon = memchr(cred, ':', c->auth_len - bl);
  if (!colon) return false;
  uint32_t index;
  pt_key_role role;
  return pt_keys_check(keys, (const uint8_t *)cred, (size_t)(colon - cred), (const uint8_t *)colon + 1,
                       c->auth_len - bl - (size_t)(colon - cred) - 1, &index, &role) == PT_KEY_OK;
}

static int unhex(int ch) {
  if (ch >= '0' && ch <= '9') return ch - '0';
  if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
  if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
  return -1;
}

/* Percent-decodes p[0..n) into out; returns the length, or -1 if malformed. */
static int pct_decode(const char *p, size_t n, uint8_t *out, size_t cap) {
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    if (o == cap) return -1;
    if (p[i] == '%') {
      int h, l;
      if (i + 2 >= n || (h = unhex(p[i + 1])) < 0 || (l = unhex(p[i + 2])) < 0) return -1;
      out[o++] = (uint8_t)(h * 16 + l);
      i += 2;
    } else {
      out[o++] = (uint8_t)p[i];
    }
  }
  return (int)o;
}

/* /campaigns?cursor=C&limit=N (either may be left out; other parameters
 * are ignored): NULL, or why the query is refused. */
static const char *page_query(const char *q, size_t n, uint64_t *cursor, unsigned *limit) {
  *cursor = 0;
  *limit = ADMIN_PAGE_DEFAULT;
  for (size_t i = 0; i < n;) {
    const char *p = q + i, *amp = memchr(p, '&', n - i);
    size_t len = amp ? (size_t)(amp - p) : n - i;
    i += len + 1;
    bool is_cursor = len >= 7 && !memcmp(p, "cursor=", 7), is_limit = len >= 6 && !memcmp(p, "limit=", 6);
    if (!is_cursor && !is_limit) continue;
    size_t k = is_cursor ? 7 : 6;
    uint64_t v = 0;
    if (k == len) return is_cursor ? "cursor: a number is missing" : "limit: a number is missing";
    for (; k < len; k++) {
      if (p[k] < '0' || p[k] > '9' || v > (UINT64_C(1) << 53)) /* JSON's exact integers */
        return is_cursor ? "cursor must be a next_cursor of an earlier page (0: the first)"
                         : "limit must be a number from 1 to 1000";
      v = v * 10 + (uint64_t)(p[k] - '0');
    }
    if (is_cursor) *cursor = v;
    else if (v < 1 || v > ADMIN_PAGE_MAX) return "limit must be a number from 1 to 1000";
    else *limit = (unsigned)v;
  }
  return NULL;
}

static void start_stream(aconn *c) {
  c->state = C_STREAMING;
  c->a->nstreams++;
  uv_read_stop((uv_stream_t *)&c->tcp);
  abuf out = {0};
  abuf_printf(&out, "HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\n"
                    "Cache-Control: no-store\r\nConnection: close\r\n\r\n");
  conn_send(c, &out);
}

/* ---- /metrics, a slice per loop turn ---- */

static void scrape_answer(aconn *c) {
  abuf body = {0};
  admin_scrape_write(&c->a->src, c->scrape, &body);
  admin_scrape_free(c->scrape);
  c->scrape = NULL;
  answer(c, 200, "text/plain; version=0.0.4; charset=utf-8", &body, NULL);
}

/* Each loop turn the oldest scrape under way gets its next slice. */
static void on_slice(uv_idle_t *h) {
  pt_admin *a = h->data;
  for (aconn *c = a->head; c; c = c->next)
    if (c->state == C_SCRAPING) {
      if (admin_scrape_step(&a->src, c->scrape, SCRAPE_SLICE)) scrape_answer(c);
      return;
    }
  uv_idle_stop(h); /* none left */
}

static void start_scrape(aconn *c) {
  c->scrape = admin_scrape_new();
  if (admin_scrape_step(&c->a->src, c->scrape, SCRAPE_SLICE)) { /* most often: all at once */
    scrape_answer(c);
    return;
  }
  c->state = C_SCRAPING;
  uv_read_stop((uv_stream_t *)&c->tcp);
  uv_idle_start(&c->a->slices, on_slice);
}

static void route(aconn *c) {
  pt_admin *a = c->a;
  if (c->parser.method != HTTP_GET && c->parser.method != HTTP_HEAD) {
    answer_text(c, 405, "only GET and HEAD are served: the admin port is read-only", "Allow: GET, HEAD\r\n");
    return;
  }
  struct http_parser_url u;
  http_parser_url_init(&u);
  if (c->url_long) {
    answer_text(c, 414, "the URL is too long", NULL);
    return;
  }
  if (http_parser_parse_url(c->url, c->url_len, 0, &u) || !(u.field_set & (1 << UF_PATH))) {
    answer_text(c, 400, "bad URL", NULL);
    return;
  }
  const char *path = c->url + u.field_data[UF_PATH].off;
  size_t plen = u.field_data[UF_PATH].len;
#define IS(lit) (plen == sizeof(lit) - 1 && !memcmp(path, lit, plen))
  const pt_admin_sources *src = &a->src;
  if (IS("/healthz")) {
    answer_text(c, 200, "ok", NULL);
    return;
  }
  if (IS("/ready")) {
    const char *why = pt_admin_unready(src);
    char text[200];
    snprintf(text, sizeof text, "not ready: %s", why ? why : "");
    answer_text(c, why ? 503 : 200, why ? text : "ready", NULL);
    return;
  }
  if (c->probe) { /* anything else takes a general slot, if one is free by now */
    if (a->nconns - a->nprobes >= GENERAL_SLOTS) {
      answer_text(c, 503,
                  "admin port busy: every connection slot is taken (streams, answers being read); "
                  "/healthz and /ready are still answered",
                  "Retry-After: 1\r\n");
      return;
    }
    c->probe = false;
    a->nprobes--;
  }
  if (src->svc->keys && !c->loopback && !key_ok(c, src->svc->keys)) {
    answer_text(c, 401, "this path needs Authorization: Bearer NAME:SECRET (a key of the keys file)",
                "WWW-Authenticate: Bearer realm=\"pintuan\"\r\n");
    return;
  }
  abuf body = {0};
  if (IS("/metrics")) {
    start_scrape(c);
  } else if (IS("/server_info")) {
    admin_server_info(src, &body);
    answer(c, 200, "application/json", &body, NULL);
  } else if (IS("/campaigns") || IS("/campaigns/")) {
    uint64_t cursor;
    unsigned limit;
    const char *why = page_query(c->url + u.field_data[UF_QUERY].off,
                                 u.field_set & (1 << UF_QUERY) ? u.field_data[UF_QUERY].len : 0, &cursor, &limit);
    if (why) {
      answer_text(c, 400, why, NULL);
    } else {
      int st = admin_campaigns(src, cursor, limit, &body);
      answer(c, st, "application/json", &body, NULL);
    }
  } else if (plen > 11 && !memcmp(path, "/campaigns/", 11)) {
    uint8_t id[PT_ID_MAX];
    int n = pct_decode(path + 11, plen - 11, id, sizeof id), st;
    if (n <= 0) {
      answer_text(c, 400, "bad campaign id in the URL (1 to 64 bytes, percent-encoded)", NULL);
    } else if ((st = admin_campaign(src, (pt_bytes){id, (size_t)n}, &body)) == 404) {
      answer_text(c, 404, "no such campaign", NULL);
    } else {
      answer(c, st, "application/json", &body, NULL);
    }
  } else if (IS("/stats/stream")) {
    if (c->parser.method == HTTP_HEAD) answer(c, 200, "application/x-ndjson", NULL, NULL);
    else start_stream(c);
  } else {
    answer_text(c, 404,
                "not found; paths: /metrics /healthz /ready /server_info /campaigns "
                "/campaigns/ID /stats/stream",
                NULL);
  }
#undef IS
}

/* ---- http-parser callbacks ---- */

static int on_url(http_parser *p, const char *at, size_t n) {
  aconn *c = p->data;
  if (c->url_len + n >= sizeof c->url) c->url_long = true;
  else memcpy(c->url + c->url_len, at, n), c->url_len += n, c->url[c->url_len] = 0;
  return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t n) {
  aconn *c = p->data; /* a name may come in pieces */
  if (c->new_field) c->field_len = 0, c->field_long = c->new_field = c->in_auth = false;
  for (size_t i = 0; i < n; i++) {
    if (c->field_len == sizeof c->field) {
      c->field_long = true;
      break;
    }
    char ch = at[i];
    c->field[c->field_len++] = (char)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
  }
  return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t n) {
  aconn *c = p->data; /* so may a value */
  if (!c->new_field) {
    c->new_field = true;
    c->in_auth = !c->field_long && c->field_len == 13 && !memcmp(c->field, "authorization", 13);
    if (c->in_auth) c->auth_len = 0;
  }
  if (!c->in_auth) return 0;
  if (c->auth_len + n < sizeof c->auth) memcpy(c->auth + c->auth_len, at, n), c->auth_len += n;
  else c->auth_len = sizeof c->auth; /* too long to be the token */
  return 0;
}

static int on_message_complete(http_parser *p) {
  aconn *c = p->data;
  route(c);
  http_parser_pause(p, 1); /* one request per connection: ignore what follows */
  return 0;
}

static const http_parser_settings settings = {
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_message_complete = on_message_complete,
};

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)h, (void)suggested;
  static char chunk[MAX_HEAD + 1]; /* parsed at once in on_read: one buffer serves all */
  *buf = uv_buf_init(chunk, sizeof chunk);
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf) {
  aconn *c = st->data;
  if (n == 0 || c->closing) return;
  if (n < 0) {
    conn_close(c);
    return;
  }
  if (c->state != C_READING) return;
  size_t len = (size_t)n;
  if (c->head_bytes + len > MAX_HEAD) {
    answer_text(c, 431, "request head over 8 KiB", NULL);
    return;
  }
  c->head_bytes += len;
  http_parser_execute(&c->parser, &settings, buf->base, len);
  enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
  if (e != HPE_OK && e != HPE_PAUSED && c->state == C_READING) {
    char text[160];
    snprintf(text, sizeof text, "bad HTTP request: %s", http_errno_description(e));
    answer_text(c, 400, text, NULL);
  }
}

/* Closes the oldest connection of the kind (a probe slot's or not) still
 * sending its request; false if there is none. */
static bool evict_one(pt_admin *a, bool probe) {
  for (aconn *c = a->head; c; c = c->next)
    if (c->state == C_READING && c->probe == probe) {
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
  uv_tcp_init(a->loop, &c->tcp);
  a->open_handles++;
  if (a->tail) a->tail->next = c, c->prev = a->tail;
  else a->head = c;
  a->tail = c;
  a->nconns++;
  c->probe = probe;
  a->nprobes += probe;
  if (uv_accept(l, (uv_stream_t *)&c->tcp) < 0 || !room) {
    conn_close(c);
    return;
  }
  c->since_ms = (int64_t)uv_now(a->loop);
  c->loopback = peer_loopback(&c->tcp);
  c->new_field = true;
  http_parser_init(&c->parser, HTTP_REQUEST);
  c->parser.data = c;
  uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

/* ---- the second tick ---- */

static void on_tick(uv_timer_t *t) {
  pt_admin *a = t->data;
  admin_sample now;
  admin_sample_take(&a->src, &now);
  abuf line = {0};
  if (a->nstreams) admin_stats_line(&a->src, &a->last, &now, &line);
  a->last = now;
  int64_t ms = (int64_t)uv_now(a->loop);
  for (aconn *c = a->head, *next; c; c = next) {
    next = c->next;
    if (c->state == C_READING && ms - c->since_ms > REQUEST_TIMEOUT_MS) {
      answer_text(c, 408, "the request took too long", NULL);
    } else if ((c->state == C_ANSWERING || c->state == C_SCRAPING) && ms - c->since_ms > ANSWER_TIMEOUT_MS) {
      conn_close(c); /* not reading its answer */
    } else if (c->state == C_STREAMING) {
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
