/* One admin connection's request, from its bytes to its answer, with no
 * socket (admin_int.h): http-parser reads the request, route() picks the
 * answer, answer() writes it with admin_io_send. The transport (http.c)
 * feeds it what it reads; the fuzzer (tests/fuzz/fuzz_admin_http.c)
 * drives it in memory. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin_int.h"

#define MAX_HEAD 8192     /* request line and headers */
#define SCRAPE_SLICE 4096 /* campaigns a scrape looks at per loop turn (~0.1-0.5 ms) */

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
static void answer(admin_conn *c, int code, const char *type, abuf *body, const char *extra) {
  if (c->state == C_ANSWERING) return;
  c->state = C_ANSWERING;
  admin_io_stop_reading(c);
  bool head_only = c->parser.method == HTTP_HEAD && code < 400;
  abuf out = {0};
  abuf_printf(&out,
              "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
              "Cache-Control: no-store\r\nConnection: close\r\n%s\r\n",
              code, reason(code), type, body ? body->len : 0, extra ? extra : "");
  if (body && body->len && !head_only) abuf_add(&out, body->p, body->len);
  if (body) free(body->p), *body = (abuf){0};
  admin_io_send(c, &out);
}

static void answer_text(admin_conn *c, int code, const char *text, const char *extra) {
  abuf b = {0};
  abuf_printf(&b, "%s\n", text);
  answer(c, code, "text/plain; charset=utf-8", &b, extra);
}

/* ---- requests ---- */

/* Authorization: Bearer NAME:SECRET, of any key (a reader's is enough). */
static bool key_ok(const admin_conn *c, const pt_keys *keys) {
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

static void start_stream(admin_conn *c) {
  c->state = C_STREAMING;
  admin_io_stop_reading(c);
  abuf out = {0};
  abuf_printf(&out, "HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\n"
                    "Cache-Control: no-store\r\nConnection: close\r\n\r\n");
  admin_io_send(c, &out);
}

/* ---- /metrics: made a slice per loop turn when it is long ---- */

static void scrape_answer(admin_conn *c) {
  abuf body = {0};
  admin_scrape_write(c->src, c->scrape, &body);
  admin_scrape_free(c->scrape);
  c->scrape = NULL;
  answer(c, 200, "text/plain; version=0.0.4; charset=utf-8", &body, NULL);
}

static void start_scrape(admin_conn *c) {
  c->scrape = admin_scrape_new();
  if (admin_scrape_step(c->src, c->scrape, SCRAPE_SLICE)) { /* most often: all at once */
    scrape_answer(c);
    return;
  }
  c->state = C_SCRAPING;
  admin_io_stop_reading(c);
  admin_io_scrape_later(c);
}

static void route(admin_conn *c) {
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
  const pt_admin_sources *src = c->src;
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
  if (c->probe && !admin_io_promote(c)) { /* anything else needs a general slot */
    answer_text(c, 503,
                "admin port busy: every connection slot is taken (streams, answers being read); "
                "/healthz and /ready are still answered",
                "Retry-After: 1\r\n");
    return;
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
  admin_conn *c = p->data;
  if (c->url_len + n >= sizeof c->url) c->url_long = true;
  else memcpy(c->url + c->url_len, at, n), c->url_len += n, c->url[c->url_len] = 0;
  return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t n) {
  admin_conn *c = p->data; /* a name may come in pieces */
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
  admin_conn *c = p->data; /* so may a value */
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
  admin_conn *c = p->data;
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

/* ---- what the transport calls ---- */

void admin_conn_init(admin_conn *c, const pt_admin_sources *src, bool loopback, bool probe) {
  memset(c, 0, sizeof *c);
  c->src = src;
  c->loopback = loopback;
  c->probe = probe;
  c->new_field = true;
  http_parser_init(&c->parser, HTTP_REQUEST);
  c->parser.data = c;
}

void admin_conn_free(admin_conn *c) {
  admin_scrape_free(c->scrape);
  c->scrape = NULL;
}

void admin_conn_feed(admin_conn *c, const char *p, size_t len) {
  if (c->state != C_READING) return;
  if (c->head_bytes + len > MAX_HEAD) {
    answer_text(c, 431, "request head over 8 KiB", NULL);
    return;
  }
  c->head_bytes += len;
  http_parser_execute(&c->parser, &settings, p, len);
  enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
  if (e != HPE_OK && e != HPE_PAUSED && c->state == C_READING) {
    char text[160];
    snprintf(text, sizeof text, "bad HTTP request: %s", http_errno_description(e));
    answer_text(c, 400, text, NULL);
  }
}

bool admin_conn_scrape_step(admin_conn *c) {
  if (c->state != C_SCRAPING || !admin_scrape_step(c->src, c->scrape, SCRAPE_SLICE)) return false;
  scrape_answer(c);
  return true;
}

void admin_conn_timeout(admin_conn *c) { answer_text(c, 408, "the request took too long", NULL); }
