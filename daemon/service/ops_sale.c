/* Flash-sale operations: Reserve, Confirm, Cancel (also of group seats),
 * GetReservation, GetHoldings. */
#include "svc.h"

void svc_reply_reservation(svc_ctx *x, pt_bytes cid, const pt_result *res) {
  pintuan__v1__reservation__init(&x->reservation);
  svc_fill_reservation(&x->reservation, cid, res);
  x->r->result_case = PINTUAN__V1__RESPONSE__RESULT_RESERVATION;
  x->r->reservation = &x->reservation;
}

bool svc_reserve(svc_ctx *x, const Pintuan__V1__Reserve *m) {
  Pintuan__V1__Response *r = x->r;
  NEED(m, request_id, "request_id");
  NEED(m, campaign_id, "campaign_id");
  NEED(m, user_id, "user_id");
  NEED(m, quantity, "quantity");
  pt_input in = {.kind = PT_IN_RESERVE, .request_id = B(m->request_id),
                 .campaign_id = B(m->campaign_id), .user_id = B(m->user_id), .quantity = m->quantity};
  pt_result res;
  pt_turn_apply(x->s->turn, &in, &res);
  svc_fill_result(r, &res);
  if (res.reservation_id || res.status == PT_OK) {
    svc_reply_reservation(x, B(m->campaign_id), &res);
    x->reservation.has_user_id = 1, x->reservation.user_id = m->user_id;
  }
  return true;
}

static bool op_confirm_cancel(svc_ctx *x, ProtobufCBinaryData rid, bool has_rid,
                              ProtobufCBinaryData cid, bool has_cid, uint64_t resid,
                              bool has_resid, ProtobufCBinaryData uid, bool has_uid, bool confirm) {
  Pintuan__V1__Response *r = x->r;
  if (!has_rid) return svc_bad(r, "missing field: request_id");
  if (!has_cid) return svc_bad(r, "missing field: campaign_id");
  if (!has_resid) return svc_bad(r, "missing field: reservation_id");
  if (!has_uid) return svc_bad(r, "missing field: user_id");
  if (!pt_id_valid(B(uid))) return svc_bad(r, "user_id must be 1..64 bytes"); /* empty: nobody's check */
  pt_input in = {.kind = confirm ? PT_IN_CONFIRM : PT_IN_CANCEL, .request_id = B(rid),
                 .campaign_id = B(cid), .reservation_id = resid, .user_id = B(uid)};
  pt_result res;
  pt_turn_apply(x->s->turn, &in, &res);
  svc_fill_result(r, &res);
  if (res.reservation_id) {
    svc_reply_reservation(x, B(cid), &res);
    x->reservation.has_user_id = 1, x->reservation.user_id = uid;
  }
  return true;
}

bool svc_get_reservation(svc_ctx *x, const Pintuan__V1__GetReservation *m) {
  Pintuan__V1__Response *r = x->r;
  NEED(m, campaign_id, "campaign_id");
  NEED(m, reservation_id, "reservation_id");
  NEED(m, user_id, "user_id");
  if (!pt_id_valid(B(m->user_id))) return svc_bad(r, "user_id must be 1..64 bytes");
  pt_reservation_info i;
  pt_status st = pt_reservation_get(x->engine, B(m->campaign_id), m->reservation_id, B(m->user_id), &i);
  if (st != PT_OK) {
    svc_set_status(r, st, st == PT_NOT_FOUND ? "no such reservation" : "ids must be 1..64 bytes");
    return true;
  }
  pt_result res = {.reservation_id = i.reservation_id, .quantity = i.quantity,
                   .state = i.state, .expires_ms = i.expires_ms, .group_id = i.group_id,
                   .group_state = i.group_state};
  svc_reply_reservation(x, B(m->campaign_id), &res);
  x->reservation.has_user_id = 1, x->reservation.user_id = PB(i.user_id);
  svc_set_status(r, PT_OK, "reservation");
  return true;
}

bool svc_holdings(svc_ctx *x, const Pintuan__V1__GetHoldings *m) {
  Pintuan__V1__Response *r = x->r;
  NEED(m, campaign_id, "campaign_id");
  NEED(m, user_id, "user_id");
  pt_holdings_info h;
  pt_status st = pt_holdings_get(x->s->engine, B(m->campaign_id), B(m->user_id), &h);
  if (st != PT_OK) {
    svc_set_status(r, st, st == PT_NOT_FOUND ? "no such campaign" : "ids must be 1..64 bytes");
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
  svc_set_status(r, PT_OK, "holdings");
  return true;
}

bool svc_confirm(svc_ctx *x, const Pintuan__V1__Confirm *m) {
  return op_confirm_cancel(x, m->request_id, m->has_request_id, m->campaign_id, m->has_campaign_id,
                           m->reservation_id, m->has_reservation_id, m->user_id, m->has_user_id, true);
}

bool svc_cancel(svc_ctx *x, const Pintuan__V1__Cancel *m) {
  return op_confirm_cancel(x, m->request_id, m->has_request_id, m->campaign_id, m->has_campaign_id,
                           m->reservation_id, m->has_reservation_id, m->user_id, m->has_user_id, false);
}
