#include "service.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "pintuan.pb-c.h"

#define CONN_ADMIN 1u
#define SCRATCH (256 * 1024)
#define MAX_LIST 10000

_Static_assert((int)PT_NOT_LEADER == (int)PINTUAN__V1__STATUS__NOT_LEADER, "status values");
_Static_assert((int)PT_INTERNAL == (int)PINTUAN__V1__STATUS__INTERNAL, "status values");
_Static_assert((int)PT_WAITING == (int)PINTUAN__V1__HOLD_STATE__WAITING, "hold states");
_Static_assert((int)PT_EXPIRED_HOLD == (int)PINTUAN__V1__HOLD_STATE__EXPIRED_HOLD, "hold states");

/* ---- decoding without malloc: a bump arena reset after every request ---- */

static _Alignas(16) uint8_t scratch[SCRATCH];
static size_t scratch_used;
static void **overflow; /* allocations that did not fit the arena */
static size_t n_overflow, cap_overflow;

static void *arena_alloc(void *data, size_t size) {
  (void)data;
  size = (size + 15) & ~(size_t)15;
  if (SCRATCH - scratch_used >= size) {
    void *p = scratch + scratch_used;
    scratch_used += size;
    return p;
  }
  if (n_overflow == cap_overflow) {
    size_t cap = cap_overflow ? cap_overflow * 2 : 16;
    void **o = realloc(overflow, cap * sizeof(*o));
    if (!o) return NULL;
    overflow = o;
    cap_overflow = cap;
  }
  void *p = malloc(size);
  if (p) overflow[n_overflow++] = p;
  return p;
}
static void arena_free(void *data, void *p) { (void)data, (void)p; }
static void arena_reset(void) {
  for (size_t i = 0; i < n_overflow; i++) free(overflow[i]);
  n_overflow = 0;
  scratch_used = 0;
}
static ProtobufCAllocator arena = {arena_alloc, arena_free, NULL};

/* ---- helpers ---- */

int64_t pt_service_now(pt_service *s) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  int64_t now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
  if (now < s->last_now) now = s->last_now; /* the wall clock stepped back */
  s->last_now = now;
  return now;
}

static pt_bytes B(ProtobufCBinaryData d) { return (pt_bytes){d.data, d.len}; }
static ProtobufCBinaryData PB(pt_bytes b) {
  return (ProtobufCBinaryData){b.len, (uint8_t *)b.p};
}

static void send_response(pt_service *s, pt_conn *c, Pintuan__V1__Response *r) {
  s->st.by_status[r->status < 32 ? r->status : 0]++;
  size_t n = pintuan__v1__response__get_packed_size(r);
  pintuan__v1__response__pack(r, pt_conn_reply(c, n));
}

static void set_status(Pintuan__V1__Response *r, pt_status st, const char *detail) {
  r->has_status = 1;
  r->status = (Pintuan__V1__Status)st;
  r->detail = (char *)detail;
}

static bool bad(Pintuan__V1__Response *r, const char *detail) {
  set_status(r, PT_INVALID_ARGUMENT, detail);
  return true;
}

/* Request fields that must be present, named in the error. */
#define NEED(msg, field, name) \
  do { if (!(msg)->has_##field) return bad(r, "missing field: " name); } while (0)

static void fill_result(Pintuan__V1__Response *r, const pt_result *res) {
  set_status(r, res->status, res->detail);
  if (res->replay) r->has_replay = r->replay = 1;
}

static void fill_reservation(Pintuan__V1__Reservation *o, pt_bytes cid, const pt_result *res) {
  o->has_campaign_id = 1;
  o->campaign_id = PB(cid);
  if (res->reservation_id) o->has_reservation_id = 1, o->reservation_id = res->reservation_id;
  if (res->quantity) o->has_quantity = 1, o->quantity = res->quantity;
  if (res->state) o->has_state = 1, o->state = (Pintuan__V1__HoldState)res->state;
  if (res->expires_ms) o->has_expires_ms = 1, o->expires_ms = res->expires_ms;
  if (res->position) o->has_waitlist_position = 1, o->waitlist_position = res->position;
}

static void fill_campaign(Pintuan__V1__Campaign *o, const pt_campaign_info *i) {
  pintuan__v1__campaign__init(o);
  o->has_campaign_id = 1, o->campaign_id = PB(i->id);
  o->has_kind = 1, o->kind = (Pintuan__V1__CampaignKind)i->kind;
  o->has_start_ms = 1, o->start_ms = i->start_ms;
  o->has_end_ms = 1, o->end_ms = i->end_ms;
  o->has_stock = 1, o->stock = i->stock;
  o->has_available = 1, o->available = i->available;
  o->has_held = 1, o->held = i->held;
  o->has_sold = 1, o->sold = i->sold;
  o->has_per_user_limit = 1, o->per_user_limit = i->per_user_limit;
  o->has_hold_ms = 1, o->hold_ms = i->hold_ms;
  o->has_waitlist = 1, o->waitlist = i->waitlist;
  o->has_waitlist_length = 1, o->waitlist_length = i->waitlist_length;
  o->has_ended = 1, o->ended = i->ended;
}

static bool is_admin(pt_service *s, pt_conn *c) {
  return !s->admin_token || !*s->admin_token || (*pt_conn_flags(c) & CONN_ADMIN);
}

static bool token_ok(const char *want, ProtobufCBinaryData got) {
  size_t n = strlen(want);
  unsigned diff = (unsigned)(n ^ got.len);
  for (size_t i = 0; i < n; i++) /* constant time in the token */
    diff |= (unsigned)want[i] ^ (i < got.len ? got.data[i] : 0u);
  return diff == 0;
}

/* ---- operations: each fills r and returns true when done ---- */

typedef struct ctx {
  pt_service *s;
  pt_conn *c;
  int64_t now;
  Pintuan__V1__Response *r;
  /* result storage that must outlive the handler until the reply is packed */
  Pintuan__V1__HelloReply hello;
  Pintuan__V1__Pong pong;
  Pintuan__V1__Campaign campaign;
  Pintuan__V1__Reservation reservation;
  Pintuan__V1__Holdings holdings;
  Pintuan__V1__CampaignList list;
} ctx;

static bool op_hello(ctx *x, const Pintuan__V1__Hello *m) {
  Pintuan__V1__Response *r = x->r;
  if (m->has_protocol_version && m->protocol_version != 1)
    return bad(r, "unsupported protocol_version: this daemon speaks 1");
  const char *tok = x->s->admin_token;
  if (tok && *tok && m->has_token) {
    if (!token_ok(tok, m->token)) {
      set_status(r, PT_UNAUTHENTICATED, "wrong admin token");
      return true;
    }
    *pt_conn_flags(x->c) |= CONN_ADMIN;
  }
  pintuan__v1__hello_reply__init(&x->hello);
  x->hello.has_protocol_version = 1, x->hello.protocol_version = 1;
  x->hello.server_version = (char *)PT_VERSION;
  x->hello.has_admin = 1, x->hello.admin = is_admin(x->s, x->c);
  r->result_case = PINTUAN__V1__RESPONSE__RESULT_HELLO;
  r->hello = &x->hello;
  set_status(r, PT_OK, "hello");
  return true;
}

static bool op_ping(ctx *x, const Pintuan__V1__Ping *m) {
  Pintuan__V1__Response *r = x->r;
  if (m->has_payload && m->payload.len > 64) return bad(r, "ping payload over 64 bytes");
  pintuan__v1__pong__init(&x->pong);
  if (m->has_payload) x->pong.has_payload = 1, x->pong.payload = m->payload;
  x->pong.has_now_ms = 1, x->pong.now_ms = x->now;
  r->result_case = PINTUAN__V1__RESPONSE__RESULT_PONG;
  r->pong = &x->pong;
  set_status(r, PT_OK, "pong");
  return true;
}

static bool need_admin(ctx *x) {
  if (is_admin(x->s, x->c)) return false;
  set_status(x->r, PT_UNAUTHENTICATED, "admin operations need Hello with the admin token");
  return true;
}

static void reply_campaign(ctx *x, pt_bytes id) {
  pt_campaign *c = pt_campaign_find(x->s->engine, id);
  if (!c) return;
  pt_campaign_info i;
  pt_campaign_info_get(x->s->engine, c, x->now, &i);
  fill_campaign(&x->campaign, &i);
  x->r->result_case = PINTUAN__V1__RESPONSE__RESULT_CAMPAIGN;
  x->r->campaign = &x->campaign;
}

static bool op_create(ctx *x, const Pintuan__V1__CreateCampaign *m) {
  Pintuan__V1__Response *r = x->r;
  if (need_admin(x)) return true;
  NEED(m, request_id, "request_id");
  const Pintuan__V1__CampaignSpec *sp = m->spec;
  if (!sp) return bad(r, "missing field: spec");
  NEED(sp, campaign_id, "spec.campaign_id");
  NEED(sp, kind, "spec.kind");
  NEED(sp, stock, "spec.stock");
  NEED(sp, hold_ms, "spec.hold_ms");
  pt_campaign_spec spec = {
      .id = B(sp->campaign_id), .kind = (pt_kind)sp->kind,
      .start_ms = sp->has_start_ms ? sp->start_ms : 0, .end_ms = sp->has_end_ms ? sp->end_ms : 0,
      .stock = sp->stock, .per_user_limit = sp->per_user_limit, .hold_ms = sp->hold_ms,
      .waitlist = sp->has_waitlist && sp->waitlist};
  pt_result res;
  pt_campaign_create(x->s->engine, x->now, B(m->request_id), &spec, &res);
  fill_result(r, &res);
  if (res.status == PT_OK) reply_campaign(x, spec.id);
  return true;
}

static bool op_update(ctx *x, const Pintuan__V1__UpdateCampaign *m) {
  Pintuan__V1__Response *r = x->r;
  if (need_admin(x)) return true;
  NEED(m, request_id, "request_id");
  NEED(m, campaign_id, "campaign_id");
  pt_campaign_changes u = {0};
  if (m->has_stock) u.fields |= PT_UPD_STOCK, u.stock = m->stock;
  if (m->has_end_ms) u.fields |= PT_UPD_END, u.end_ms = m->end_ms;
  if (m->has_per_user_limit) u.fields |= PT_UPD_LIMIT, u.per_user_limit = m->per_user_limit;
  if (m->has_hold_ms) u.fields |= PT_UPD_HOLD, u.hold_ms = m->hold_ms;
  if (m->has_waitlist) u.fields |= PT_UPD_WAITLIST, u.waitlist = m->waitlist;
  pt_result res;
  pt_campaign_update(x->s->engine, x->now, B(m->request_id), B(m->campaign_id), &u, &res);
  fill_result(r, &res);
  reply_campaign(x, B(m->campaign_id));
  return true;
}

static bool op_end(ctx *x, const Pintuan__V1__EndCampaign *m) {
  Pintuan__V1__Response *r = x->r;
  if (need_admin(x)) return true;
  NEED(m, request_id, "request_id");
  NEED(m, campaign_id, "campaign_id");
  pt_result res;
  pt_campaign_end(x->s->engine, x->now, B(m->request_id), B(m->campaign_id), &res);
  fill_result(r, &res);
  reply_campaign(x, B(m->campaign_id));
  return true;
}

static bool op_get_campaign(ctx *x, const Pintuan__V1__GetCampaign *m) {
  Pintuan__V1__Response *r = x->r;
  NEED(m, campaign_id, "campaign_id");
  if (!pt_id_valid(B(m->campaign_id))) return bad(r, "campaign_id must be 1..64 bytes");
  reply_campaign(x, B(m->campaign_id));
  if (r->result_case == PINTUAN__V1__RESPONSE__RESULT__NOT_SET)
    set_status(r, PT_NOT_FOUND, "no such campaign");
  else
    set_status(r, PT_OK, "campaign");
  return true;
}

static bool op_list(ctx *x) {
  pt_engine *e = x->s->engine;
  size_t n = pt_campaign_count(e);
  if (n > MAX_LIST) n = MAX_LIST;
  pintuan__v1__campaign_list__init(&x->list);
  x->list.campaigns = arena_alloc(NULL, n * sizeof(*x->list.campaigns) + 1);
  Pintuan__V1__Campaign *cs = arena_alloc(NULL, n * sizeof(*cs) + 1);
  if (!x->list.campaigns || !cs) {
    set_status(x->r, PT_INTERNAL, "out of memory");
    return true;
  }
  for (size_t i = 0; i < n; i++) {
    pt_campaign_info info;
    pt_campaign_info_get(e, pt_campaign_at(e, i), x->now, &info);
    fill_campaign(&cs[i], &info);
    x->list.campaigns[i] = &cs[i];
  }
  x->list.n_campaigns = n;
  x->r->result_case = PINTUAN__V1__RESPONSE__RESULT_CAMPAIGNS;
  x->r->campaigns = &x->list;
  set_status(x->r, PT_OK, n < pt_campaign_count(e) ? "campaigns (truncated)" : "campaigns");
  return true;
}

static void reply_reservation(ctx *x, pt_bytes cid, const pt_result *res) {
  pintuan__v1__reservation__init(&x->reservation);
  fill_reservation(&x->reservation, cid, res);
  x->r->result_case = PINTUAN__V1__RESPONSE__RESULT_RESERVATION;
  x->r->reservation = &x->reservation;
}

static bool op_reserve(ctx *x, const Pintuan__V1__Reserve *m) {
  Pintuan__V1__Response *r = x->r;
  NEED(m, request_id, "request_id");
  NEED(m, campaign_id, "campaign_id");
  NEED(m, user_id, "user_id");
  NEED(m, quantity, "quantity");
  pt_result res;
  pt_reserve(x->s->engine, x->now, B(m->request_id), B(m->campaign_id), B(m->user_id),
             m->quantity, &res);
  fill_result(r, &res);
  if (res.reservation_id || res.status == PT_OK) {
    reply_reservation(x, B(m->campaign_id), &res);
    x->reservation.has_user_id = 1, x->reservation.user_id = m->user_id;
  }
  return true;
}

static bool op_confirm_cancel(ctx *x, ProtobufCBinaryData rid, bool has_rid,
                              ProtobufCBinaryData cid, bool has_cid, uint64_t resid,
                              bool has_resid, bool confirm) {
  Pintuan__V1__Response *r = x->r;
  if (!has_rid) return bad(r, "missing field: request_id");
  if (!has_cid) return bad(r, "missing field: campaign_id");
  if (!has_resid) return bad(r, "missing field: reservation_id");
  pt_result res;
  if (confirm)
    pt_confirm(x->s->engine, x->now, B(rid), B(cid), resid, &res);
  else
    pt_cancel(x->s->engine, x->now, B(rid), B(cid), resid, &res);
  fill_result(r, &res);
  if (res.reservation_id) reply_reservation(x, B(cid), &res);
  return true;
}

static bool op_get_reservation(ctx *x, const Pintuan__V1__GetReservation *m) {
  Pintuan__V1__Response *r = x->r;
  NEED(m, campaign_id, "campaign_id");
  NEED(m, reservation_id, "reservation_id");
  pt_reservation_info i;
  pt_status st = pt_reservation_get(x->s->engine, B(m->campaign_id), m->reservation_id, &i);
  if (st != PT_OK) {
    set_status(r, st, st == PT_NOT_FOUND ? "no such reservation" : "campaign_id must be 1..64 bytes");
    return true;
  }
  pt_result res = {.reservation_id = i.reservation_id, .quantity = i.quantity,
                   .state = i.state, .expires_ms = i.expires_ms};
  reply_reservation(x, B(m->campaign_id), &res);
  x->reservation.has_user_id = 1, x->reservation.user_id = PB(i.user_id);
  set_status(r, PT_OK, "reservation");
  return true;
}

static bool op_holdings(ctx *x, const Pintuan__V1__GetHoldings *m) {
  Pintuan__V1__Response *r = x->r;
  NEED(m, campaign_id, "campaign_id");
  NEED(m, user_id, "user_id");
  pt_holdings_info h;
  pt_status st = pt_holdings_get(x->s->engine, B(m->campaign_id), B(m->user_id), &h);
  if (st != PT_OK) {
    set_status(r, st, st == PT_NOT_FOUND ? "no such campaign" : "ids must be 1..64 bytes");
    return true;
  }
  pintuan__v1__holdings__init(&x->holdings);
  x->holdings.has_campaign_id = 1, x->holdings.campaign_id = m->campaign_id;
  x->holdings.has_user_id = 1, x->holdings.user_id = m->user_id;
  x->holdings.has_held = 1, x->holdings.held = h.held;
  x->holdings.has_sold = 1, x->holdings.sold = h.sold;
  x->holdings.has_waiting = 1, x->holdings.waiting = h.waiting;
  x->holdings.has_per_user_limit = 1, x->holdings.per_user_limit = h.per_user_limit;
  r->result_case = PINTUAN__V1__RESPONSE__RESULT_HOLDINGS;
  r->holdings = &x->holdings;
  set_status(r, PT_OK, "holdings");
  return true;
}

static void dispatch(ctx *x, const Pintuan__V1__Request *q) {
  switch (q->op_case) {
  case PINTUAN__V1__REQUEST__OP_HELLO: op_hello(x, q->hello); break;
  case PINTUAN__V1__REQUEST__OP_PING: op_ping(x, q->ping); break;
  case PINTUAN__V1__REQUEST__OP_CREATE_CAMPAIGN: op_create(x, q->create_campaign); break;
  case PINTUAN__V1__REQUEST__OP_UPDATE_CAMPAIGN: op_update(x, q->update_campaign); break;
  case PINTUAN__V1__REQUEST__OP_END_CAMPAIGN: op_end(x, q->end_campaign); break;
  case PINTUAN__V1__REQUEST__OP_GET_CAMPAIGN: op_get_campaign(x, q->get_campaign); break;
  case PINTUAN__V1__REQUEST__OP_LIST_CAMPAIGNS: op_list(x); break;
  case PINTUAN__V1__REQUEST__OP_RESERVE: op_reserve(x, q->reserve); break;
  case PINTUAN__V1__REQUEST__OP_CONFIRM: {
    const Pintuan__V1__Confirm *m = q->confirm;
    op_confirm_cancel(x, m->request_id, m->has_request_id, m->campaign_id, m->has_campaign_id,
                      m->reservation_id, m->has_reservation_id, true);
    break;
  }
  case PINTUAN__V1__REQUEST__OP_CANCEL: {
    const Pintuan__V1__Cancel *m = q->cancel;
    op_confirm_cancel(x, m->request_id, m->has_request_id, m->campaign_id, m->has_campaign_id,
                      m->reservation_id, m->has_reservation_id, false);
    break;
  }
  case PINTUAN__V1__REQUEST__OP_GET_RESERVATION: op_get_reservation(x, q->get_reservation); break;
  case PINTUAN__V1__REQUEST__OP_GET_HOLDINGS: op_holdings(x, q->get_holdings); break;
  default: bad(x->r, "missing or unknown op"); break;
  }
}

void pt_service_on_frame(void *vs, pt_conn *c, const uint8_t *msg, size_t len) {
  pt_service *s = vs;
  s->st.requests++;
  Pintuan__V1__Response r = PINTUAN__V1__RESPONSE__INIT;
  r.has_id = 1;
  Pintuan__V1__Request *q = pintuan__v1__request__unpack(&arena, len, msg);
  ctx x = {.s = s, .c = c, .r = &r};
  if (!q) {
    /* The frame boundary is intact, so the stream is still usable. */
    s->st.malformed++;
    r.id = 0;
    set_status(&r, PT_INVALID_ARGUMENT, "malformed message: not a pintuan.v1.Request");
  } else if (!q->has_id || q->id == 0) {
    r.id = 0;
    set_status(&r, PT_INVALID_ARGUMENT, "missing field: id (a non-zero correlation id)");
  } else {
    r.id = q->id;
    x.now = pt_service_now(s);
    pt_engine_advance(s->engine, x.now); /* answers reflect every due expiry */
    dispatch(&x, q);
  }
  send_response(s, c, &r);
  arena_reset();
}

void pt_service_on_protocol_error(void *vs, pt_conn *c, int status, const char *detail) {
  pt_service *s = vs;
  Pintuan__V1__Response r = PINTUAN__V1__RESPONSE__INIT;
  r.has_id = 1;
  r.id = 0;
  set_status(&r, (pt_status)status, detail);
  send_response(s, c, &r);
  pt_info("client %llu: %s", (unsigned long long)pt_conn_id(c), detail);
}
