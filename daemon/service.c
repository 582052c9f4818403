#include "service.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "pintuan.pb-c.h"

#define CONN_ADMIN 1u
#define CONN_SUB 2u
#define SCRATCH (256 * 1024)
#define MAX_LIST 10000

_Static_assert((int)PT_NOT_LEADER == (int)PINTUAN__V1__STATUS__NOT_LEADER, "status values");
_Static_assert((int)PT_INTERNAL == (int)PINTUAN__V1__STATUS__INTERNAL, "status values");
_Static_assert((int)PT_WAITING == (int)PINTUAN__V1__HOLD_STATE__WAITING, "hold states");
_Static_assert((int)PT_EXPIRED_HOLD == (int)PINTUAN__V1__HOLD_STATE__EXPIRED_HOLD, "hold states");
_Static_assert((int)PT_SEAT_FAILED == (int)PINTUAN__V1__HOLD_STATE__SEAT_FAILED, "hold states");
_Static_assert((int)PT_GS_CLOSED == (int)PINTUAN__V1__GROUP_STATE__GROUP_STATE_CLOSED, "group states");
_Static_assert((int)PT_JOIN_AUTO == (int)PINTUAN__V1__JOIN_MODE__JOIN_AUTO, "join modes");
_Static_assert((int)PT_EV_SEAT_EXPIRED == (int)PINTUAN__V1__EVENT_TYPE__SEAT_EXPIRED, "events");

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

int pt_service_read_clock(const char *path, int64_t *ms, char *err, size_t errlen) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    snprintf(err, errlen, "test clock %s: %s", path, strerror(errno));
    return -1;
  }
  char buf[32];
  ssize_t n = read(fd, buf, sizeof buf - 1);
  int e = errno;
  close(fd);
  if (n < 0) {
    snprintf(err, errlen, "test clock %s: %s", path, strerror(e));
    return -1;
  }
  buf[n] = 0;
  char *end;
  errno = 0;
  long long v = strtoll(buf, &end, 10);
  while (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r') end++;
  if (errno || end == buf || *end || v < 0) {
    snprintf(err, errlen, "test clock %s: want epoch milliseconds, found \"%.20s\"", path, buf);
    return -1;
  }
  *ms = v;
  return 0;
}

int64_t pt_service_now(pt_service *s) {
  int64_t now;
  if (s->test_clock) {
    /* A testing aid: the file is rewritten (atomically, by rename) by the
     * test that owns the daemon; unreadable, the clock stands still. */
    char err[160];
    if (pt_service_read_clock(s->test_clock, &now, err, sizeof err)) {
      pt_warn("%s", err);
      now = s->last_now;
    }
  } else {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
  }
  if (now < s->last_now) now = s->last_now; /* the clock stepped back */
  s->last_now = now;
  return now;
}

static pt_bytes B(ProtobufCBinaryData d) { return (pt_bytes){d.data, d.len}; }
static ProtobufCBinaryData PB(pt_bytes b) {
  return (ProtobufCBinaryData){b.len, (uint8_t *)b.p};
}

static int64_t now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void send_response(pt_service *s, pt_conn *c, Pintuan__V1__Response *r) {
  s->st.by_status[r->status < 32 ? r->status : 0]++;
  size_t n = pintuan__v1__response__get_packed_size(r);
  uint8_t *p = pt_conn_reply(c, n);
  pintuan__v1__response__pack(r, p);
  if (s->capture) pt_capture_write(s->capture, PT_CAP_REPLY, pt_conn_id(c), now_us(), p, n);
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
  if (res->group_id) o->has_group_id = 1, o->group_id = res->group_id;
  if (res->group_state) o->has_group_state = 1, o->group_state = (Pintuan__V1__GroupState)res->group_state;
  if (res->opened) o->has_opened = 1, o->opened = 1;
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
  if (i->kind == PT_GROUP_BUY) {
    o->has_group_size = 1, o->group_size = i->group_size;
    o->has_group_ttl_ms = 1, o->group_ttl_ms = i->group_ttl_ms;
    o->has_new_users_only = 1, o->new_users_only = i->new_users_only;
    o->has_simulate_min_paid = 1, o->simulate_min_paid = i->simulate_min_paid;
    o->has_match_margin_ms = 1, o->match_margin_ms = i->match_margin_ms;
    o->has_open_groups = 1, o->open_groups = i->open_groups;
  }
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
  Pintuan__V1__Group group;
  Pintuan__V1__Member members[PT_GROUP_MAX];
  Pintuan__V1__Member *member_ptrs[PT_GROUP_MAX];
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
      .waitlist = sp->has_waitlist && sp->waitlist, .group_size = sp->group_size,
      .group_ttl_ms = sp->group_ttl_ms, .new_users_only = sp->has_new_users_only && sp->new_users_only,
      .simulate_min_paid = sp->simulate_min_paid, .match_margin_ms = sp->match_margin_ms};
  if (spec.kind == PT_GROUP_BUY) {
    NEED(sp, group_size, "spec.group_size");
    NEED(sp, group_ttl_ms, "spec.group_ttl_ms");
  }
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
                   .state = i.state, .expires_ms = i.expires_ms, .group_id = i.group_id,
                   .group_state = i.group_state};
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

static bool op_join(ctx *x, const Pintuan__V1__Join *m) {
  Pintuan__V1__Response *r = x->r;
  NEED(m, request_id, "request_id");
  NEED(m, campaign_id, "campaign_id");
  NEED(m, user_id, "user_id");
  NEED(m, mode, "mode");
  if (m->mode == PINTUAN__V1__JOIN_MODE__JOIN_GROUP) NEED(m, group_id, "group_id");
  pt_result res;
  pt_join(x->s->engine, x->now, B(m->request_id), B(m->campaign_id), B(m->user_id),
          (pt_join_mode)m->mode, m->group_id, m->has_new_user && m->new_user, &res);
  fill_result(r, &res);
  if (res.reservation_id || res.group_id) {
    reply_reservation(x, B(m->campaign_id), &res);
    if (res.reservation_id) x->reservation.has_user_id = 1, x->reservation.user_id = m->user_id;
  }
  return true;
}

static bool op_get_group(ctx *x, const Pintuan__V1__GetGroup *m) {
  Pintuan__V1__Response *r = x->r;
  NEED(m, campaign_id, "campaign_id");
  NEED(m, group_id, "group_id");
  static pt_group_info g;
  pt_status st = pt_group_get(x->s->engine, B(m->campaign_id), m->group_id, &g);
  if (st != PT_OK) {
    set_status(r, st, st == PT_NOT_FOUND ? "no such group" : "campaign_id must be 1..64 bytes");
    return true;
  }
  Pintuan__V1__Group *o = &x->group;
  pintuan__v1__group__init(o);
  o->has_campaign_id = 1, o->campaign_id = m->campaign_id;
  o->has_group_id = 1, o->group_id = g.group_id;
  o->has_state = 1, o->state = (Pintuan__V1__GroupState)g.state;
  o->has_size = 1, o->size = g.size;
  o->has_paid = 1, o->paid = g.paid;
  o->has_opened_ms = 1, o->opened_ms = g.opened_ms;
  o->has_deadline_ms = 1, o->deadline_ms = g.deadline_ms;
  o->has_simulated = 1, o->simulated = g.simulated;
  for (uint32_t i = 0; i < g.members; i++) {
    Pintuan__V1__Member *mb = &x->members[i];
    pintuan__v1__member__init(mb);
    mb->has_user_id = 1, mb->user_id = PB(g.member[i].user_id);
    mb->has_seat_id = 1, mb->seat_id = g.member[i].seat_id;
    mb->has_state = 1, mb->state = (Pintuan__V1__HoldState)g.member[i].state;
    if (g.member[i].expires_ms) mb->has_expires_ms = 1, mb->expires_ms = g.member[i].expires_ms;
    x->member_ptrs[i] = mb;
  }
  o->n_members = g.members;
  o->members = x->member_ptrs;
  r->result_case = PINTUAN__V1__RESPONSE__RESULT_GROUP;
  r->group = o;
  set_status(r, PT_OK, "group");
  return true;
}

static pt_sub **sub_find(pt_service *s, pt_conn *c) {
  pt_sub **p = &s->subs;
  while (*p && (*p)->conn != c) p = &(*p)->next;
  return p;
}

static bool op_subscribe(ctx *x, const Pintuan__V1__Subscribe *m) {
  Pintuan__V1__Response *r = x->r;
  if (m->n_campaign_ids > 64) return bad(r, "at most 64 campaign_ids");
  for (size_t i = 0; i < m->n_campaign_ids; i++) {
    if (!pt_id_valid(B(m->campaign_ids[i]))) return bad(r, "campaign_ids must be 1..64 bytes");
    if (!pt_campaign_find(x->s->engine, B(m->campaign_ids[i]))) {
      set_status(r, PT_NOT_FOUND, "no such campaign: subscribe to campaigns that exist");
      return true;
    }
  }
  pt_sub **p = sub_find(x->s, x->c), *sub = *p;
  if (!sub) {
    sub = calloc(1, sizeof(*sub));
    if (!sub) {
      set_status(r, PT_INTERNAL, "out of memory");
      return true;
    }
    sub->conn = x->c;
    sub->next = x->s->subs;
    x->s->subs = sub;
    *pt_conn_flags(x->c) |= CONN_SUB;
  }
  sub->n = (uint32_t)m->n_campaign_ids;
  for (size_t i = 0; i < m->n_campaign_ids; i++) {
    memcpy(sub->store + 64 * i, m->campaign_ids[i].data, m->campaign_ids[i].len);
    sub->ids[i] = (pt_bytes){sub->store + 64 * i, m->campaign_ids[i].len};
  }
  set_status(r, PT_OK, sub->n ? "subscribed to the given campaigns" : "subscribed to every campaign");
  return true;
}

void pt_service_on_close(pt_service *s, pt_conn *c) {
  if (s->capture) pt_capture_write(s->capture, PT_CAP_CLOSE, pt_conn_id(c), now_us(), NULL, 0);
  if (!(*pt_conn_flags(c) & CONN_SUB)) return;
  pt_sub **p = sub_find(s, c);
  if (*p) {
    pt_sub *dead = *p;
    *p = dead->next;
    free(dead);
  }
}

void pt_service_free(pt_service *s) {
  pt_capture_close(s->capture);
  s->capture = NULL;
  while (s->subs) {
    pt_sub *n = s->subs->next;
    free(s->subs);
    s->subs = n;
  }
}

static bool sub_wants(const pt_sub *sub, pt_bytes cid) {
  if (sub->n == 0) return true;
  for (uint32_t i = 0; i < sub->n; i++)
    if (sub->ids[i].len == cid.len && memcmp(sub->ids[i].p, cid.p, cid.len) == 0) return true;
  return false;
}

void pt_service_on_event(pt_service *s, const pt_event *ev) {
  if (!s->subs) return;
  Pintuan__V1__Event e = PINTUAN__V1__EVENT__INIT;
  ProtobufCBinaryData members[PT_GROUP_MAX];
  e.has_seq = 1, e.seq = ev->seq;
  e.has_type = 1, e.type = (Pintuan__V1__EventType)ev->type;
  e.has_at_ms = 1, e.at_ms = ev->at_ms;
  e.has_campaign_id = 1, e.campaign_id = PB(ev->campaign_id);
  if (ev->user_id.len) e.has_user_id = 1, e.user_id = PB(ev->user_id);
  if (ev->reservation_id) e.has_reservation_id = 1, e.reservation_id = ev->reservation_id;
  if (ev->quantity) e.has_quantity = 1, e.quantity = ev->quantity;
  if (ev->expires_ms) e.has_expires_ms = 1, e.expires_ms = ev->expires_ms;
  if (ev->group_id) e.has_group_id = 1, e.group_id = ev->group_id;
  if (ev->simulated) e.has_simulated = 1, e.simulated = 1;
  for (size_t i = 0; i < ev->n_members && i < PT_GROUP_MAX; i++) members[i] = PB(ev->members[i]);
  e.n_members = ev->n_members < PT_GROUP_MAX ? ev->n_members : PT_GROUP_MAX;
  e.members = members;
  Pintuan__V1__Response r = PINTUAN__V1__RESPONSE__INIT;
  r.has_id = 1, r.id = 0;
  set_status(&r, PT_OK, "event");
  r.result_case = PINTUAN__V1__RESPONSE__RESULT_EVENT;
  r.event = &e;
  /* packed once, copied to each subscriber */
  size_t n = pintuan__v1__response__get_packed_size(&r);
  uint8_t local[8192], *frame = n <= sizeof local ? local : malloc(n);
  if (!frame) return;
  pintuan__v1__response__pack(&r, frame);
  for (pt_sub *sub = s->subs; sub; sub = sub->next) {
    if (!sub_wants(sub, ev->campaign_id)) continue;
    memcpy(pt_conn_reply(sub->conn, n), frame, n);
    s->events_pushed++;
  }
  if (frame != local) free(frame);
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
  case PINTUAN__V1__REQUEST__OP_JOIN: op_join(x, q->join); break;
  case PINTUAN__V1__REQUEST__OP_GET_GROUP: op_get_group(x, q->get_group); break;
  case PINTUAN__V1__REQUEST__OP_SUBSCRIBE: op_subscribe(x, q->subscribe); break;
  default: bad(x->r, "missing or unknown op"); break;
  }
}

void pt_service_on_frame(void *vs, pt_conn *c, const uint8_t *msg, size_t len) {
  pt_service *s = vs;
  s->st.requests++;
  if (s->capture) pt_capture_write(s->capture, PT_CAP_REQUEST, pt_conn_id(c), now_us(), msg, len);
  Pintuan__V1__Response r = PINTUAN__V1__RESPONSE__INIT;
  r.has_id = 1;
  Pintuan__V1__Request *q = pintuan__v1__request__unpack(&arena, len, msg);
  /* Result storage is big (a group's 64 members) and each part is
   * initialized where it is used: static, not zeroed per request. */
  static ctx x;
  x.s = s, x.c = c, x.r = &r, x.now = 0;
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

/* ---- lookahead: a bounds-checked walk of the protobuf wire format ---- */

static bool wire_varint(const uint8_t **p, const uint8_t *end, uint64_t *v) {
  *v = 0;
  for (int shift = 0; *p < end && shift < 64; shift += 7) {
    uint8_t b = *(*p)++;
    *v |= (uint64_t)(b & 0x7f) << shift;
    if (!(b & 0x80)) return true;
  }
  return false;
}

/* Finds length-delimited fields of one message level: for each field number
 * in want[0..n), its bytes (left untouched when absent). False on bad input. */
static bool wire_fields(const uint8_t *p, const uint8_t *end, const uint32_t *want,
                        pt_bytes *out, int n) {
  while (p < end) {
    uint64_t key, v;
    if (!wire_varint(&p, end, &key)) return false;
    switch (key & 7) {
    case 0: if (!wire_varint(&p, end, &v)) return false; break;
    case 1: if (end - p < 8) return false; p += 8; break;
    case 5: if (end - p < 4) return false; p += 4; break;
    case 2:
      if (!wire_varint(&p, end, &v) || v > (uint64_t)(end - p)) return false;
      for (int i = 0; i < n; i++)
        if ((key >> 3) == want[i]) out[i] = (pt_bytes){p, (size_t)v};
      p += v;
      break;
    default: return false;
    }
  }
  return true;
}

void pt_service_lookahead(void *vs, const uint8_t *msg, size_t len) {
  pt_service *s = vs;
  /* Request.reserve (17) and Request.join (22) carry request_id (1),
   * campaign_id (2) and user_id (3) */
  static const uint32_t ops[] = {17, 22}, ids[] = {1, 2, 3};
  pt_bytes body[2] = {{0}}, f[3] = {{0}};
  if (!wire_fields(msg, msg + len, ops, body, 2)) return;
  const pt_bytes *b = body[0].p ? &body[0] : body[1].p ? &body[1] : NULL;
  if (!b || !wire_fields(b->p, b->p + b->len, ids, f, 3)) return;
  pt_engine_prefetch(s->engine, f[1], f[2], f[0]);
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
