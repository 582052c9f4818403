/* Group-buy operations: Join (OPEN, JOIN, AUTO) and GetGroup. */
#include "svc.h"

bool svc_join(svc_ctx *x, const Pintuan__V1__Join *m) {
  Pintuan__V1__Response *r = x->r;
  NEED(m, request_id, "request_id");
  NEED(m, campaign_id, "campaign_id");
  NEED(m, user_id, "user_id");
  NEED(m, mode, "mode");
  if (m->mode == PINTUAN__V1__JOIN_MODE__JOIN_GROUP) NEED(m, group_id, "group_id");
  pt_input in = {.kind = PT_IN_JOIN, .request_id = B(m->request_id),
                 .campaign_id = B(m->campaign_id), .user_id = B(m->user_id),
                 .mode = (pt_join_mode)m->mode, .group_id = m->group_id,
                 .new_user = m->has_new_user && m->new_user};
  pt_result res;
  pt_turn_apply(x->s->turn, &in, &res);
  svc_fill_result(r, &res);
  if (res.reservation_id || res.group_id) {
    svc_reply_reservation(x, B(m->campaign_id), &res);
    if (res.reservation_id) x->reservation.has_user_id = 1, x->reservation.user_id = m->user_id;
  }
  return true;
}

bool svc_get_group(svc_ctx *x, const Pintuan__V1__GetGroup *m) {
  Pintuan__V1__Response *r = x->r;
  NEED(m, campaign_id, "campaign_id");
  NEED(m, group_id, "group_id");
  static pt_group_info g;
  pt_status st = pt_group_get(x->s->engine, B(m->campaign_id), m->group_id, &g);
  if (st != PT_OK) {
    svc_set_status(r, st, st == PT_NOT_FOUND ? "no such group" : "campaign_id must be 1..64 bytes");
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
  svc_set_status(r, PT_OK, "group");
  return true;
}
