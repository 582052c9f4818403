/* Operations on campaigns and the connection: Hello (its key: access.c),
 * Ping, CreateCampaign, UpdateCampaign, EndCampaign, GetCampaign,
 * ListCampaigns. Who may run them is decided before (svc_permitted). */
#include <string.h>

#include "svc.h"

#define LIST_DEFAULT 100
#define LIST_MAX 1000 /* a page is ~1 ms of the loop at most */

bool svc_hello(svc_ctx *x, const Pintuan__V1__Hello *m) {
  Pintuan__V1__Response *r = x->r;
  if (m->has_protocol_version && m->protocol_version != 1)
    return svc_bad(r, "unsupported protocol_version: this daemon speaks 1");
  if (!svc_hello_key(x, m)) return true;
  pintuan__v1__hello_reply__init(&x->hello);
  x->hello.has_protocol_version = 1, x->hello.protocol_version = 1;
  x->hello.server_version = (char *)PT_VERSION;
  pt_key_role role = svc_role(x->s, x->c);
  x->hello.has_admin = 1, x->hello.admin = role == PT_KEY_ADMIN;
  x->hello.key_role = (char *)pt_key_role_name(role);
  if (x->s->about) {
    const char *admin = "", *role = "";
    x->s->about(x->s->refuse_ctx, &admin, &role);
    x->hello.admin_address = (char *)admin;
    x->hello.role = (char *)role;
  }
  r->result_case = PINTUAN__V1__RESPONSE__RESULT_HELLO;
  r->hello = &x->hello;
  svc_set_status(r, PT_OK, "hello");
  return true;
}

bool svc_ping(svc_ctx *x, const Pintuan__V1__Ping *m) {
  Pintuan__V1__Response *r = x->r;
  if (m->has_payload && m->payload.len > 64) return svc_bad(r, "ping payload over 64 bytes");
  pintuan__v1__pong__init(&x->pong);
  if (m->has_payload) x->pong.has_payload = 1, x->pong.payload = m->payload;
  x->pong.has_now_ms = 1, x->pong.now_ms = pt_turn_now(x->s->turn);
  r->result_case = PINTUAN__V1__RESPONSE__RESULT_PONG;
  r->pong = &x->pong;
  svc_set_status(r, PT_OK, "pong");
  return true;
}

static void reply_campaign(svc_ctx *x, pt_bytes id) {
  pt_campaign *c = pt_campaign_find(x->engine, id);
  if (!c) return;
  pt_campaign_info i;
  pt_campaign_info_get(x->engine, c, pt_turn_now(x->s->turn), &i);
  svc_fill_campaign(&x->campaign, &i);
  x->r->result_case = PINTUAN__V1__RESPONSE__RESULT_CAMPAIGN;
  x->r->campaign = &x->campaign;
}

bool svc_create(svc_ctx *x, const Pintuan__V1__CreateCampaign *m) {
  Pintuan__V1__Response *r = x->r;
  NEED(m, request_id, "request_id");
  const Pintuan__V1__CampaignSpec *sp = m->spec;
  if (!sp) return svc_bad(r, "missing field: spec");
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
  pt_input in = {.kind = PT_IN_CREATE, .request_id = B(m->request_id), .campaign_id = spec.id,
                 .spec = spec};
  pt_result res;
  pt_turn_apply(x->s->turn, &in, &res);
  svc_fill_result(r, &res);
  if (res.status == PT_OK) reply_campaign(x, spec.id);
  return true;
}

bool svc_update(svc_ctx *x, const Pintuan__V1__UpdateCampaign *m) {
  Pintuan__V1__Response *r = x->r;
  NEED(m, request_id, "request_id");
  NEED(m, campaign_id, "campaign_id");
  pt_campaign_changes u = {0};
  if (m->has_stock) u.fields |= PT_UPD_STOCK, u.stock = m->stock;
  if (m->has_end_ms) u.fields |= PT_UPD_END, u.end_ms = m->end_ms;
  if (m->has_per_user_limit) u.fields |= PT_UPD_LIMIT, u.per_user_limit = m->per_user_limit;
  if (m->has_hold_ms) u.fields |= PT_UPD_HOLD, u.hold_ms = m->hold_ms;
  if (m->has_waitlist) u.fields |= PT_UPD_WAITLIST, u.waitlist = m->waitlist;
  pt_input in = {.kind = PT_IN_UPDATE, .request_id = B(m->request_id),
                 .campaign_id = B(m->campaign_id), .changes = u};
  pt_result res;
  pt_turn_apply(x->s->turn, &in, &res);
  svc_fill_result(r, &res);
  reply_campaign(x, B(m->campaign_id));
  return true;
}

bool svc_end(svc_ctx *x, const Pintuan__V1__EndCampaign *m) {
  Pintuan__V1__Response *r = x->r;
  NEED(m, request_id, "request_id");
  NEED(m, campaign_id, "campaign_id");
  pt_input in = {.kind = PT_IN_END, .request_id = B(m->request_id),
                 .campaign_id = B(m->campaign_id)};
  pt_result res;
  pt_turn_apply(x->s->turn, &in, &res);
  svc_fill_result(r, &res);
  reply_campaign(x, B(m->campaign_id));
  return true;
}

bool svc_get_campaign(svc_ctx *x, const Pintuan__V1__GetCampaign *m) {
  Pintuan__V1__Response *r = x->r;
  NEED(m, campaign_id, "campaign_id");
  if (!pt_id_valid(B(m->campaign_id))) return svc_bad(r, "campaign_id must be 1..64 bytes");
  reply_campaign(x, B(m->campaign_id));
  if (r->result_case == PINTUAN__V1__RESPONSE__RESULT__NOT_SET)
    svc_set_status(r, PT_NOT_FOUND, "no such campaign");
  else
    svc_set_status(r, PT_OK, "campaign");
  return true;
}

bool svc_list(svc_ctx *x, const Pintuan__V1__ListCampaigns *m) {
  pt_engine *e = x->engine;
  uint64_t at = m->has_cursor ? m->cursor : 0;
  uint32_t limit = m->has_limit && m->limit ? m->limit : LIST_DEFAULT;
  if (limit > LIST_MAX) return svc_bad(x->r, "limit is at most 1000 campaigns a page");
  size_t slots = pt_campaign_count(e);
  pintuan__v1__campaign_list__init(&x->list);
  x->list.campaigns = svc_scratch(limit * sizeof(*x->list.campaigns) + 1);
  Pintuan__V1__Campaign *cs = svc_scratch(limit * sizeof(*cs) + 1); /* never NULL */
  size_t n = 0;
  for (; at < slots && n < limit; at++) {
    pt_campaign *c = pt_campaign_at(e, (size_t)at);
    if (!c) continue; /* a retired campaign's slot */
    pt_campaign_info info;
    pt_campaign_info_get(e, c, pt_turn_now(x->s->turn), &info);
    svc_fill_campaign(&cs[n], &info);
    x->list.campaigns[n] = &cs[n];
    n++;
  }
  while (at < slots && !pt_campaign_at(e, (size_t)at)) at++;
  x->list.n_campaigns = n;
  x->list.has_next_cursor = 1, x->list.next_cursor = at < slots ? at : 0;
  x->r->result_case = PINTUAN__V1__RESPONSE__RESULT_CAMPAIGNS;
  x->r->campaigns = &x->list;
  svc_set_status(x->r, PT_OK, "campaigns");
  return true;
}
