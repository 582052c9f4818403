/* The protocol adapter: decodes a pintuan.v1.Request, checks its fields,
 * calls the engine with the daemon's clock, encodes the Response onto the
 * connection. Nothing here decides who gets stock; the engine does. */
#ifndef PT_SERVICE_H
#define PT_SERVICE_H

#include <stdint.h>

#include "capture.h"
#include "engine.h"
#include "net/server.h"

typedef struct pt_service_stats {
  uint64_t requests, malformed, by_status[32];
} pt_service_stats;

/* A connection that asked for events, and for which campaigns. */
typedef struct pt_sub {
  pt_conn *conn;
  struct pt_sub *next;
  uint32_t n;         /* 0: every campaign */
  pt_bytes ids[64];   /* point into store */
  uint8_t store[64 * 64];
} pt_sub;

typedef struct pt_service {
  pt_engine *engine;
  pt_sub *subs;
  uint64_t events_pushed;
  const char *admin_token; /* NULL or "": admin operations open to all */
  int64_t last_now;        /* the clock fed to the engine never goes back */
  const char *test_clock;  /* --test-clock FILE: now is read from FILE (tests only) */
  pt_capture *capture;     /* --capture: requests and replies to a file */
  pt_service_stats st;
} pt_service;

/* The daemon's clock, epoch ms, never going back: the wall clock, or with
 * test_clock set, the number in that file (a clock the tests move). */
int64_t pt_service_now(pt_service *s);
/* Reads a test clock file: decimal epoch ms, optional trailing whitespace.
 * 0, or -1 with the reason in err. */
int pt_service_read_clock(const char *path, int64_t *ms, char *err, size_t errlen);
void pt_service_on_frame(void *ctx, pt_conn *c, const uint8_t *msg, size_t len);
/* A frame coming soon: peek at a Reserve's or Join's ids (no decoding, no
 * allocation) and have the engine start loading what it will look up. */
void pt_service_lookahead(void *ctx, const uint8_t *msg, size_t len);
void pt_service_on_protocol_error(void *ctx, pt_conn *c, int status, const char *detail);
/* An engine event: pushed to every subscriber that wants its campaign. */
void pt_service_on_event(pt_service *s, const pt_event *ev);
void pt_service_on_close(pt_service *s, pt_conn *c);
void pt_service_free(pt_service *s);

#endif
