/* Engine results and events as pintuan.v1 protobuf messages, and the one
 * place a Response is packed onto a connection. */
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "svc.h"
#include "xalloc.h"

void svc_reply_sent(pt_service *s, pt_conn *c, int status, const uint8_t *p, size_t n) {
  s->st.replies[s->op][(unsigned)status < PT_SVC_STATUSES ? (unsigned)status : 0]++;
  if (s->capture) pt_capture_write(s->capture, PT_CAP_REPLY, pt_conn_id(c), pt_wall_us(), p, n);
}

void svc_send_response(pt_service *s, pt_conn *c, Pintuan__V1__Response *r, bool decided) {
  size_t n = pintuan__v1__response__get_packed_size(r);
  uint8_t *p = decided ? pt_conn_reply(c, n) : pt_conn_reply_stateless(c, n);
  pintuan__v1__response__pack(r, p);
  svc_reply_sent(s, c, r->status, p, n);
}

void svc_set_status(Pintuan__V1__Response *r, pt_status st, const char *detail) {
  r->has_status = 1;
  r->status = (Pintuan__V1__Status)st;
  r->detail = (char *)detail;
}

bool svc_bad(Pintuan__V1__Response *r, const char *detail) {
  svc_set_status(r, PT_INVALID_ARGUMENT, detail);
  return true;
}


void svc_fill_result(Pintuan__V1__Response *r, const pt_result *res) {
  svc_set_status(r, res->status, res->detail);
  if (res->replay) r->has_replay = r->replay = 1;
}

void svc_fill_reservation(Pintuan__V1__Reservation *o, pt_bytes cid, const pt_result *res) {
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

void svc_fill_campaign(Pintuan__V1__Campaign *o, const pt_campaign_info *i) {
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
  if (i->retired) o->has_retired = 1, o->retired = 1;
  if (i->kind == PT_GROUP_BUY) {
    o->has_group_size = 1, o->group_size = i->group_size;
    o->has_group_ttl_ms = 1, o->group_ttl_ms = i->group_ttl_ms;
    o->has_new_users_only = 1, o->new_users_only = i->new_users_only;
    o->has_simulate_min_paid = 1, o->simulate_min_paid = i->simulate_min_paid;
    o->has_match_margin_ms = 1, o->match_margin_ms = i->match_margin_ms;
    o->has_open_groups = 1, o->open_groups = i->open_groups;
  }
}

uint8_t *svc_pack_event(const pt_event *ev, uint8_t *buf, size_t cap, size_t *len) {
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
  svc_set_status(&r, PT_OK, "event");
  r.result_case = PINTUAN__V1__RESPONSE__RESULT_EVENT;
  r.event = &e;
  *len = pintuan__v1__response__get_packed_size(&r);
  uint8_t *out = *len <= cap ? buf : pt_xmalloc(*len); /* out of memory is fatal: see engine.h */
  pintuan__v1__response__pack(&r, out);
  return out;
}
