/* The protocol adapter: decodes a pintuan.v1.Request, checks its fields,
 * calls the engine at the turn's time, encodes the Response onto the
 * connection; pushes engine events to subscribed connections. Nothing here
 * decides who gets stock; the engine does.
 *
 * Files: dispatch.c (frames in, replies out, the decoder's arena), fast.c
 * (the reserve fast path),
 * ops_campaign.c, ops_sale.c, ops_group.c (one function per operation),
 * encode.c (engine results to protobuf), subs.c (subscriptions, events),
 * peek.c (the wire peek for prefetching), capture.c (the capture file's
 * decisions and states). */
#ifndef PT_SERVICE_H
#define PT_SERVICE_H

#include <stdbool.h>
#include <stdint.h>

#include "auth/keys.h"
#include "capture.h"
#include "rate.h"
#include "engine.h"
#include "net/server.h"
#include "turn.h"

#define PT_SVC_OPS 25     /* pintuan.v1.Request's op numbers; 0: none (malformed) */
#define PT_SVC_STATUSES 32

typedef struct pt_service_stats {
  uint64_t requests, malformed, missing_id;
  uint64_t auth_failed; /* Hellos with an unknown key or a wrong secret */
  uint64_t no_hello;    /* requests before a Hello, with keys configured */
  uint64_t denied;      /* requests the key's role does not allow */
  uint64_t revoked;     /* connections dropped when their key was revoked */
  uint64_t limited[3];  /* RATE_LIMITED answers: by a connection's, a key's, a user's rate */
  uint64_t replies[PT_SVC_OPS][PT_SVC_STATUSES]; /* by operation and status */
} pt_service_stats;

typedef struct pt_sub pt_sub;

typedef struct pt_service {
  pt_engine *engine;
  pt_turn *turn;           /* the time every request of a turn is decided at */
  pt_sub *subs;
  uint64_t events_pushed;
  pt_keys *keys;           /* NULL: no keys, every connection may do everything */
  uint64_t auth_log_sec, auth_log_n, auth_log_suppressed;
  /* rates (rate.h): requests a second and bursts; 0: none */
  uint32_t conn_rate, conn_burst, key_rate, user_rate, user_burst;
  pt_bucket *key_buckets;  /* one per key (reset when the keys are) */
  pt_user_rates *users;    /* NULL until the first user's request */
  size_t max_rated_users;
  pt_capture *capture;     /* --capture: requests, replies, decisions to a file */
  pt_conn *deciding;       /* the connection whose request is being decided, or NULL */
  uint64_t capture_events; /* the engine's event count at the last decision recorded */
  /* Optional: may a request be decided now? NULL: yes. Else the reason,
   * with the status to answer (and, for NOT_LEADER, the primary's address
   * in *leader). Hello and Ping are always answered. */
  const char *(*refuse)(void *ctx, bool mutation, pt_status *st, const char **leader);
  void *refuse_ctx;
  /* Optional: for a refused read that accepts staleness (stale_ok), the
   * engine a standby followed the journal into, and how old it is (the
   * last record, its epoch, ms since nothing newer was found); NULL: none. */
  pt_engine *(*stale)(void *ctx, uint64_t *record, uint64_t *epoch, int64_t *age_ms);
  /* Optional: for HelloReply, the admin port's address ("" when off) and
   * the daemon's role now. */
  void (*about)(void *ctx, const char **admin_address, const char **role);
  pt_service_stats st;
  unsigned op;             /* the request being answered (its op number), 0 between */
  /* This loop turn's requests and when the first arrived (monotonic ns):
   * the daemon's latency is measured per turn (main reads and resets). */
  uint64_t turn_requests;
  int64_t turn_t0_ns;
} pt_service;

/* pt_server_hooks callbacks (ctx is the pt_service). */
/* note: what pt_service_lookahead left for this frame, or NULL. */
void pt_service_on_frame(void *ctx, pt_conn *c, const uint8_t *msg, size_t len, const void *note);
/* A frame coming soon: peek at a Reserve's or Join's ids (no decoding, no
 * allocation) and have the engine start loading what it will look up. */
void pt_service_lookahead(void *ctx, const uint8_t *msg, size_t len, void *note);
void pt_service_on_protocol_error(void *ctx, pt_conn *c, int status, const char *detail);
void pt_service_on_close(pt_service *s, pt_conn *c);
/* An engine event: pushed to every subscriber that wants its campaign. */
void pt_service_on_event(pt_service *s, const pt_event *ev);
void pt_service_free(pt_service *s);
/* Keys from now on (owned by the service; NULL: none), the old ones freed.
 * Connections whose key is gone or changed (role, secret), and with keys
 * where there were none every connection, are closed: their number. */
unsigned pt_service_set_keys(pt_service *s, pt_server *srv, pt_keys *keys);
/* A TLS client certificate, verified, names a key (its subject CN): the
 * connection has that key's role, as after a Hello with it. */
void pt_service_on_secure(pt_service *s, pt_conn *c, const char *peer_name);

/* --capture: opens the file; from then on every decision (pt_turn's
 * trace) is recorded with its answer, and every file begins with the
 * engine's state. -1 with errno on failure. */
int pt_service_capture_open(pt_service *s, const char *path, uint64_t max_bytes);
/* The engine was replaced (this daemon became the primary and rebuilt):
 * records its state, which the decisions after it apply to. */
void pt_service_capture_state(pt_service *s);
/* A request frame into the capture (a Hello without its secret). */
void pt_service_capture_request(pt_service *s, pt_conn *c, const uint8_t *msg, size_t len);

#endif
