/* Internals shared by the service's files; nothing outside daemon/service/
 * includes this. */
#ifndef PT_SVC_H
#define PT_SVC_H

#include <stdbool.h>

#include "pintuan.pb-c.h"
#include "service.h"

#define CONN_SUB 2u /* flags of pt_conn_flags (access.c keeps the key's above) */

/* A connection that asked for events, and for which campaigns. */
struct pt_sub {
  pt_conn *conn;
  struct pt_sub *next;
  uint32_t n;       /* 0: every campaign */
  pt_bytes ids[64]; /* point into store */
  uint8_t store[64 * 64];
};

static inline pt_bytes B(ProtobufCBinaryData d) { return (pt_bytes){d.data, d.len}; }
static inline ProtobufCBinaryData PB(pt_bytes b) {
  return (ProtobufCBinaryData){b.len, (uint8_t *)b.p};
}

/* One request being answered. */
typedef struct svc_ctx {
  pt_service *s;
  pt_conn *c;
  Pintuan__V1__Response *r;
  pt_engine *engine; /* what reads look at: the served engine, or a standby's followed one */
  Pintuan__V1__Staleness staleness;
  /* result storage that must outlive the handler until the reply is packed */
  Pintuan__V1__HelloReply hello;
  Pintuan__V1__Pong pong;
  Pintuan__V1__Campaign campaign;
  Pintuan__V1__Reservation reservation;
  Pintuan__V1__Holdings holdings;
  Pintuan__V1__CampaignList list;
  Pintuan__V1__Group group;
  Pintuan__V1__Member members[PT_GROUP_MAX];
  Pintuan__V1__Member *member_ptrs[PT_GROUP_MAX];
} svc_ctx;


/* encode.c */
/* Packs r onto c. `decided` says r was decided on the engine's state (so
 * it waits with the turn for Redis' acknowledgement); a refusal, a
 * malformed request or a protocol error says nothing of the state and is
 * not held for it. */
void svc_send_response(pt_service *s, pt_conn *c, Pintuan__V1__Response *r, bool decided);
/* A reply of status packed at p[0, n) on c: counted, and captured. */
void svc_reply_sent(pt_service *s, pt_conn *c, int status, const uint8_t *p, size_t n);
void svc_set_status(Pintuan__V1__Response *r, pt_status st, const char *detail);
bool svc_bad(Pintuan__V1__Response *r, const char *detail); /* INVALID_ARGUMENT */
void svc_fill_result(Pintuan__V1__Response *r, const pt_result *res);
void svc_fill_reservation(Pintuan__V1__Reservation *o, pt_bytes cid, const pt_result *res);
void svc_fill_campaign(Pintuan__V1__Campaign *o, const pt_campaign_info *i);
/* The event as a daemon-initiated Response frame, packed into buf (or a
 * malloc'd buffer when it does not fit: free it if != buf). */
uint8_t *svc_pack_event(const pt_event *ev, uint8_t *buf, size_t cap, size_t *len);

/* Request fields that must be present, named in the error. */
#define NEED(msg, field, name) \
  do { if (!(msg)->has_##field) return svc_bad(r, "missing field: " name); } while (0)

/* the operations: each fills x->r and returns true */
bool svc_hello(svc_ctx *x, const Pintuan__V1__Hello *m);
bool svc_ping(svc_ctx *x, const Pintuan__V1__Ping *m);
bool svc_create(svc_ctx *x, const Pintuan__V1__CreateCampaign *m);
bool svc_update(svc_ctx *x, const Pintuan__V1__UpdateCampaign *m);
bool svc_end(svc_ctx *x, const Pintuan__V1__EndCampaign *m);
bool svc_get_campaign(svc_ctx *x, const Pintuan__V1__GetCampaign *m);
bool svc_list(svc_ctx *x, const Pintuan__V1__ListCampaigns *m);
bool svc_reserve(svc_ctx *x, const Pintuan__V1__Reserve *m);
bool svc_confirm(svc_ctx *x, const Pintuan__V1__Confirm *m);
bool svc_cancel(svc_ctx *x, const Pintuan__V1__Cancel *m);
bool svc_get_reservation(svc_ctx *x, const Pintuan__V1__GetReservation *m);
bool svc_holdings(svc_ctx *x, const Pintuan__V1__GetHoldings *m);
bool svc_join(svc_ctx *x, const Pintuan__V1__Join *m);
bool svc_get_group(svc_ctx *x, const Pintuan__V1__GetGroup *m);
bool svc_subscribe(svc_ctx *x, const Pintuan__V1__Subscribe *m);
/* The reply's result: a Reservation for the request's campaign (ops_sale.c). */
void svc_reply_reservation(svc_ctx *x, pt_bytes cid, const pt_result *res);

/* access.c: the connection's role (admin when there are no keys); may it
 * run op (a Request op number)? If not, x->r says why (UNAUTHENTICATED
 * before a Hello, PERMISSION_DENIED for the role). */
pt_key_role svc_role(const pt_service *s, pt_conn *c);
bool svc_permitted(svc_ctx *x, unsigned op);
/* Hello's key checked (nothing to check without keys): true, the
 * connection has the key's role; false, x->r says UNAUTHENTICATED and the
 * connection closes after a pause. */
bool svc_hello_key(svc_ctx *x, const Pintuan__V1__Hello *m);
/* A token of each rate this request is under (the connection's, its key's,
 * its user's, when it names one): true, or false with x->r RATE_LIMITED. */
bool svc_rate_ok(pt_service *s, pt_conn *c, pt_bytes user, Pintuan__V1__Response *r);
/* The same: NULL (the tokens taken), or why not (counted, logged). */
const char *svc_rate_limited(pt_service *s, pt_conn *c, pt_bytes user);
/* The user a request names (empty when none): what its rate is kept by. */
pt_bytes svc_request_user(const Pintuan__V1__Request *q);

/* dispatch.c: scratch memory for one request, reset after its reply */
void *svc_scratch(size_t size);

#endif
