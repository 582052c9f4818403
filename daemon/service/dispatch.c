/* Frames in, replies out: a canonical Reserve, Confirm or Cancel takes the
 * fast path (fast.h);
 * every other request is decoded (into a scratch arena reset after its
 * reply: no malloc per request), answers what is malformed,
 * dispatches the rest to the operation, packs the reply onto the
 * connection, and records both in the capture file when one is open. */
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "fast.h"
#include "peek.h"
#include "svc.h"
#include "xalloc.h"

#define SCRATCH (256 * 1024)

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
    overflow = pt_xrealloc(overflow, cap * sizeof(*overflow)); /* out of memory is fatal */
    cap_overflow = cap;
  }
  void *p = pt_xmalloc(size);
  overflow[n_overflow++] = p;
  return p;
}
static void arena_free(void *data, void *p) { (void)data, (void)p; }
static void arena_reset(void) {
  for (size_t i = 0; i < n_overflow; i++) free(overflow[i]);
  n_overflow = 0;
  scratch_used = 0;
}
static ProtobufCAllocator arena = {arena_alloc, arena_free, NULL};

void *svc_scratch(size_t size) { return arena_alloc(NULL, size); }

static void dispatch(svc_ctx *x, const Pintuan__V1__Request *q) {
  switch (q->op_case) {
  case PINTUAN__V1__REQUEST__OP_HELLO: svc_hello(x, q->hello); break;
  case PINTUAN__V1__REQUEST__OP_PING: svc_ping(x, q->ping); break;
  case PINTUAN__V1__REQUEST__OP_CREATE_CAMPAIGN: svc_create(x, q->create_campaign); break;
  case PINTUAN__V1__REQUEST__OP_UPDATE_CAMPAIGN: svc_update(x, q->update_campaign); break;
  case PINTUAN__V1__REQUEST__OP_END_CAMPAIGN: svc_end(x, q->end_campaign); break;
  case PINTUAN__V1__REQUEST__OP_GET_CAMPAIGN: svc_get_campaign(x, q->get_campaign); break;
  case PINTUAN__V1__REQUEST__OP_LIST_CAMPAIGNS: svc_list(x, q->list_campaigns); break;
  case PINTUAN__V1__REQUEST__OP_RESERVE: svc_reserve(x, q->reserve); break;
  case PINTUAN__V1__REQUEST__OP_CONFIRM: svc_confirm(x, q->confirm); break;
  case PINTUAN__V1__REQUEST__OP_CANCEL: svc_cancel(x, q->cancel); break;
  case PINTUAN__V1__REQUEST__OP_GET_RESERVATION: svc_get_reservation(x, q->get_reservation); break;
  case PINTUAN__V1__REQUEST__OP_GET_HOLDINGS: svc_holdings(x, q->get_holdings); break;
  case PINTUAN__V1__REQUEST__OP_JOIN: svc_join(x, q->join); break;
  case PINTUAN__V1__REQUEST__OP_GET_GROUP: svc_get_group(x, q->get_group); break;
  case PINTUAN__V1__REQUEST__OP_SUBSCRIBE: svc_subscribe(x, q->subscribe); break;
  default: svc_bad(x->r, "missing or unknown op"); break;
  }
}

static bool is_mutation(Pintuan__V1__Request__OpCase op) {
  switch (op) {
  case PINTUAN__V1__REQUEST__OP_CREATE_CAMPAIGN:
  case PINTUAN__V1__REQUEST__OP_UPDATE_CAMPAIGN:
  case PINTUAN__V1__REQUEST__OP_END_CAMPAIGN:
  case PINTUAN__V1__REQUEST__OP_RESERVE:
  case PINTUAN__V1__REQUEST__OP_CONFIRM:
  case PINTUAN__V1__REQUEST__OP_CANCEL:
  case PINTUAN__V1__REQUEST__OP_JOIN: return true;
  default: return false;
  }
}

static bool stale_ok(const Pintuan__V1__Request *q) {
  switch (q->op_case) {
  case PINTUAN__V1__REQUEST__OP_GET_CAMPAIGN: return q->get_campaign->has_stale_ok && q->get_campaign->stale_ok;
  case PINTUAN__V1__REQUEST__OP_GET_RESERVATION:
    return q->get_reservation->has_stale_ok && q->get_reservation->stale_ok;
  default: return false;
  }
}

/* The daemon's role may forbid deciding (a standby, Redis unreachable, a
 * full backlog): then r says so and the request changes nothing. A read
 * that accepts staleness goes to a standby's followed engine instead, when
 * there is one (x->engine, with r->staleness saying how old). */
static bool refused(pt_service *s, const Pintuan__V1__Request *q, svc_ctx *x) {
  Pintuan__V1__Response *r = x->r;
  if (!s->refuse || q->op_case == PINTUAN__V1__REQUEST__OP_HELLO ||
      q->op_case == PINTUAN__V1__REQUEST__OP_PING)
    return false;
  pt_status st;
  const char *leader = NULL;
  const char *why = s->refuse(s->refuse_ctx, is_mutation(q->op_case), &st, &leader);
  if (!why) return false;
  Pintuan__V1__Staleness *age = &x->staleness;
  pintuan__v1__staleness__init(age);
  if (stale_ok(q) && s->stale &&
      (x->engine = s->stale(s->refuse_ctx, &age->record, &age->epoch, &age->age_ms))) {
    age->has_record = age->has_epoch = age->has_age_ms = 1;
    r->staleness = age;
    return false;
  }
  x->engine = s->engine;
  svc_set_status(r, st, why);
  if (leader && *leader) r->leader = (char *)leader;
  return true;
}

/* A canonical Reserve, Confirm or Cancel (fast.h): decided and answered
 * without protobuf-c, exactly as dispatch and its operation would. False
 * when the daemon may not decide now: the general path answers the refusal. */
static bool fast_path(pt_service *s, pt_conn *c, const pt_fast_req *q) {
  pt_status st;
  const char *leader = NULL;
  if (s->keys && svc_role(s, c) < PT_KEY_STOREFRONT) return false; /* the general path says why */
  if (s->refuse && s->refuse(s->refuse_ctx, true, &st, &leader)) return false;
  static const pt_input_kind kinds[] = {[PT_FAST_RESERVE] = PT_IN_RESERVE,
                                        [PT_FAST_CONFIRM] = PT_IN_CONFIRM, [PT_FAST_CANCEL] = PT_IN_CANCEL};
  static const unsigned ops[] = {[PT_FAST_RESERVE] = PINTUAN__V1__REQUEST__OP_RESERVE,
                                 [PT_FAST_CONFIRM] = PINTUAN__V1__REQUEST__OP_CONFIRM,
                                 [PT_FAST_CANCEL] = PINTUAN__V1__REQUEST__OP_CANCEL};
  s->op = ops[q->op];
  const char *why = svc_rate_limited(s, c, q->user_id);
  if (why) { /* refused as cheaply as it can be: a flood is refused by the million */
    pt_result no = {.status = PT_RATE_LIMITED, .detail = why};
    size_t inner, n = pt_fast_reply_size(q, &no, &inner);
    uint8_t *p = pt_conn_reply_stateless(c, n);
    pt_fast_reply(q, &no, inner, p);
    svc_reply_sent(s, c, no.status, p, n);
    s->op = 0;
    return true;
  }
  pt_input in = {.kind = kinds[q->op], .request_id = q->request_id, .campaign_id = q->campaign_id,
                 .user_id = q->user_id, .quantity = q->quantity, .reservation_id = q->reservation_id};
  pt_result res;
  s->deciding = c;
  pt_turn_apply(s->turn, &in, &res);
  s->deciding = NULL;
  size_t inner;
  size_t n = pt_fast_reply_size(q, &res, &inner);
  uint8_t *p = pt_conn_reply(c, n);
  pt_fast_reply(q, &res, inner, p);
  svc_reply_sent(s, c, res.status, p, n);
  s->op = 0;
  return true;
}

/* What the lookahead leaves for a frame's turn (the server's note): the
 * frame read for the fast path, so it is walked once. */
typedef struct frame_note {
  bool fast;
  pt_fast_req q;
} frame_note;
_Static_assert(sizeof(frame_note) <= PT_FRAME_NOTE, "a frame note fits the server's");

void pt_service_on_frame(void *vs, pt_conn *c, const uint8_t *msg, size_t len, const void *note) {
  pt_service *s = vs;
  s->st.requests++;
  if (!s->turn_requests++) s->turn_t0_ns = pt_mono_ns();
  if (s->capture) pt_service_capture_request(s, c, msg, len);
  const frame_note *fn = note;
  pt_fast_req fq;
  if (fn ? fn->fast && fast_path(s, c, &fn->q) : pt_fast_read(msg, len, &fq) && fast_path(s, c, &fq))
    return;
  Pintuan__V1__Response r = PINTUAN__V1__RESPONSE__INIT;
  r.has_id = 1;
  Pintuan__V1__Request *q = pintuan__v1__request__unpack(&arena, len, msg);
  s->op = q && (unsigned)q->op_case < PT_SVC_OPS ? (unsigned)q->op_case : 0;
  /* anything but a Hello from who has not said who it is, where keys are
   * required: a few frames a turn (a Ping flood, say) */
  if (s->keys && s->op != PINTUAN__V1__REQUEST__OP_HELLO && svc_role(s, c) == PT_KEY_NONE) pt_conn_demote(c);
  /* Result storage is big (a group's 64 members) and each part is
   * initialized where it is used: static, not zeroed per request. */
  static svc_ctx x;
  x.s = s, x.c = c, x.r = &r, x.engine = s->engine;
  bool decided = false;
  if (!q) {
    /* The frame boundary is intact, so the stream is still usable. */
    s->st.malformed++;
    r.id = 0;
    svc_set_status(&r, PT_INVALID_ARGUMENT, "malformed message: not a pintuan.v1.Request");
  } else if (!q->has_id || q->id == 0) {
    s->st.missing_id++;
    r.id = 0;
    svc_set_status(&r, PT_INVALID_ARGUMENT, "missing field: id (a non-zero correlation id)");
  } else {
    r.id = q->id;
    if (svc_permitted(&x, (unsigned)q->op_case) && svc_rate_ok(s, c, svc_request_user(q), &r) &&
        !refused(s, q, &x)) {
      s->deciding = c;
      dispatch(&x, q), decided = !r.staleness; /* a stale answer waits for nothing */
      s->deciding = NULL;
    }
  }
  svc_send_response(s, c, &r, decided);
  s->op = 0;
  arena_reset();
}

void pt_service_lookahead(void *vs, const uint8_t *msg, size_t len, void *note) {
  pt_service *s = vs;
  frame_note *fn = note;
  fn->fast = pt_fast_read(msg, len, &fn->q);
  if (fn->fast) {
    pt_engine_prefetch(s->engine, fn->q.campaign_id, fn->q.user_id, fn->q.request_id);
    return;
  }
  pt_peek_ids ids; /* a Join, or a frame the fast path does not take */
  if (pt_peek(msg, len, &ids)) pt_engine_prefetch(s->engine, ids.campaign_id, ids.user_id, ids.request_id);
}

void pt_service_on_protocol_error(void *vs, pt_conn *c, int status, const char *detail) {
  pt_service *s = vs;
  Pintuan__V1__Response r = PINTUAN__V1__RESPONSE__INIT;
  r.has_id = 1;
  r.id = 0;
  svc_set_status(&r, (pt_status)status, detail);
  svc_send_response(s, c, &r, false); /* the server logs why */
}
