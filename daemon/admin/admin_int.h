/* Internals shared by the admin port's files; nothing outside daemon/admin/
 * (but its fuzzer) includes this. http.c is the transport (listeners,
 * connection slots, reads, writes, timers); conn.c turns one connection's
 * bytes into its answer; metrics.c writes /metrics; views.c writes the
 * JSON answers and the stats line; abuf.c is their text buffer. */
#ifndef PT_ADMIN_INT_H
#define PT_ADMIN_INT_H

#include <http_parser.h>
#include <stdarg.h>
#include <stdbool.h>

#include "admin.h"

/* abuf.c: a growable text buffer (out of memory is fatal, as everywhere). */
typedef struct abuf {
  char *p;
  size_t len, cap;
} abuf;

void abuf_printf(abuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void abuf_add(abuf *b, const void *p, size_t n);
/* An id (any bytes) as printable ASCII: bytes outside 0x21..0x7e, and the
 * backslash, become \xHH; so it is valid UTF-8 and a JSON string or a
 * Prometheus label value after their own escaping. */
void abuf_id(abuf *b, pt_bytes id);
/* abuf_id's text with its backslashes doubled: the inside of a JSON string
 * or of a Prometheus label value. */
void abuf_id_escaped(abuf *b, pt_bytes id);
void abuf_i64(abuf *b, int64_t v); /* in decimal */
#define abuf_lit(b, s) abuf_add((b), (s), sizeof(s) - 1) /* a string literal */

/* The counters the stats line takes differences of, at one moment. */
typedef struct admin_sample {
  int64_t mono_ns;
  uint64_t requests, ok, sold_out;
  pt_histo latency;
} admin_sample;

void admin_sample_take(const pt_admin_sources *src, admin_sample *out);

/* metrics.c: a scrape of /metrics. Step it until it says it is ready (a
 * bounded slice each time: budget campaign slots looked at, a few hundred
 * descriptors counted), then write it; the engine may change in between (a
 * failover starts the campaigns over). */
typedef struct admin_scrape admin_scrape;
admin_scrape *admin_scrape_new(void);
void admin_scrape_free(admin_scrape *s);
bool admin_scrape_step(const pt_admin_sources *src, admin_scrape *s, size_t budget);
void admin_scrape_write(const pt_admin_sources *src, const admin_scrape *s, abuf *out);

/* views.c: each appends a JSON document; 0, or 404 for an unknown campaign */
void admin_server_info(const pt_admin_sources *src, abuf *out);
/* Fill out and return the HTTP status: 200, 404 (no such campaign, nothing
 * in out), 503 (not the primary: its role and the primary, as JSON).
 * admin_campaigns writes one page: the campaigns in the slots from cursor
 * on (pt_campaign_at; empty slots skipped, at most ADMIN_PAGE_SCAN slots
 * looked at), at most limit of them, and next_cursor: the slot to go on
 * from, or 0 when the last slot was looked at. As Redis's SCAN, a walk
 * from 0 until next_cursor is 0 sees every campaign that was there from
 * its beginning to its end. */
#define ADMIN_PAGE_DEFAULT 100
#define ADMIN_PAGE_MAX 1000
#define ADMIN_PAGE_SCAN 65536
int admin_campaigns(const pt_admin_sources *src, uint64_t cursor, unsigned limit, abuf *out);
int admin_campaign(const pt_admin_sources *src, pt_bytes id, abuf *out);
/* One line of /stats/stream: the rates between was and now, and gauges. */
void admin_stats_line(const pt_admin_sources *src, const admin_sample *was,
                      const admin_sample *now, abuf *out);

/* conn.c: one connection's request, from its bytes to its answer, with no
 * socket. The transport feeds it what it reads (admin_conn_feed) and
 * provides the admin_io_* calls below, which it answers through: http.c
 * over libuv, the fuzzer (tests/fuzz/fuzz_admin_http.c) in memory. One
 * request per connection: after it, nothing more is read. */
typedef enum {
  C_READING,   /* the request is coming */
  C_SCRAPING,  /* /metrics being made, a slice per loop turn (admin_conn_scrape_step) */
  C_ANSWERING, /* answered: to be closed once all is sent */
  C_STREAMING, /* /stats/stream: its head sent, a line a second (http.c) */
} admin_cstate;

typedef struct admin_conn {
  const pt_admin_sources *src;
  admin_cstate state;
  bool loopback; /* the peer: from loopback no key is asked for */
  bool probe;    /* on a probe slot: /healthz and /ready, else admin_io_promote */
  http_parser parser;
  size_t head_bytes;
  char url[1024];
  size_t url_len;
  bool url_long;
  char field[16]; /* the header name being read, enough to tell Authorization */
  size_t field_len;
  bool new_field, field_long, in_auth;
  char auth[320];
  size_t auth_len;
  admin_scrape *scrape; /* C_SCRAPING: the /metrics answer being made */
} admin_conn;

void admin_conn_init(admin_conn *c, const pt_admin_sources *src, bool loopback, bool probe);
void admin_conn_free(admin_conn *c); /* what it holds */
/* Bytes read from the connection: parsed, and once the request is whole,
 * answered. A head past 8 KiB is answered 431, bad HTTP 400. */
void admin_conn_feed(admin_conn *c, const char *p, size_t n);
/* C_SCRAPING: the scrape's next slice; true once it is answered. */
bool admin_conn_scrape_step(admin_conn *c);
/* C_READING for too long: 408. */
void admin_conn_timeout(admin_conn *c);

/* The transport's side. */
void admin_io_send(admin_conn *c, abuf *b); /* writes b, taking its memory */
void admin_io_stop_reading(admin_conn *c);
void admin_io_scrape_later(admin_conn *c); /* admin_conn_scrape_step on the loop turns to come */
/* A probe slot's connection asks for a general slot for a path other than
 * the probes': true, and c->probe false, if one is free. */
bool admin_io_promote(admin_conn *c);

#endif
