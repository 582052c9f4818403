/* libpintuan's requests: a builder for every operation
 * (pintuan_req_*: a request filled in place, nothing allocated) and the
 * blocking call of each (builder + pintuan_call). The connection, framing
 * and failover are in client.c. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_int.h"
#include "pintuan.h"

/* ---- request builders ---- */

ProtobufCBinaryData pintuan_bytes(const char *s) {
  return (ProtobufCBinaryData){strlen(s), (uint8_t *)s};
}
#define bin pintuan_bytes

void pintuan_req_hello(pintuan_request *q, Pintuan__V1__Hello *m, const char *key,
                       const char *secret) {
  pintuan__v1__request__init(q);
  pintuan__v1__hello__init(m);
  if (key) m->key = (char *)key;
  if (secret) m->has_token = 1, m->token = bin(secret);
  m->has_protocol_version = 1, m->protocol_version = 1;
  m->client_name = (char *)"libpintuan";
  q->op_case = PINTUAN__V1__REQUEST__OP_HELLO, q->hello = m;
}

void pintuan_req_ping(pintuan_request *q, Pintuan__V1__Ping *m) {
  pintuan__v1__request__init(q);
  pintuan__v1__ping__init(m);
  q->op_case = PINTUAN__V1__REQUEST__OP_PING, q->ping = m;
}

void pintuan_req_create_campaign(pintuan_request *q, Pintuan__V1__CreateCampaign *m,
                                 Pintuan__V1__CampaignSpec *sp, const pintuan_campaign_spec *s,
                                 const char *request_id) {
  pintuan__v1__request__init(q);
  pintuan__v1__create_campaign__init(m);
  pintuan__v1__campaign_spec__init(sp);
  bool group = s->kind == PINTUAN__V1__CAMPAIGN_KIND__GROUP_BUY;
  sp->has_campaign_id = 1, sp->campaign_id = bin(s->campaign_id);
  sp->has_kind = 1;
  sp->kind = s->kind ? (Pintuan__V1__CampaignKind)s->kind : PINTUAN__V1__CAMPAIGN_KIND__FLASH_SALE;
  sp->has_stock = 1, sp->stock = s->stock;
  sp->has_hold_ms = 1, sp->hold_ms = s->hold_ms;
  if (s->start_ms) sp->has_start_ms = 1, sp->start_ms = s->start_ms;
  if (s->end_ms) sp->has_end_ms = 1, sp->end_ms = s->end_ms;
  if (s->per_user_limit) sp->has_per_user_limit = 1, sp->per_user_limit = s->per_user_limit;
  if (s->waitlist) sp->has_waitlist = 1, sp->waitlist = 1;
  if (group || s->group_size) sp->has_group_size = 1, sp->group_size = s->group_size;
  if (group || s->group_ttl_ms) sp->has_group_ttl_ms = 1, sp->group_ttl_ms = s->group_ttl_ms;
  if (s->new_users_only) sp->has_new_users_only = 1, sp->new_users_only = 1;
  if (s->simulate_min_paid)
    sp->has_simulate_min_paid = 1, sp->simulate_min_paid = s->simulate_min_paid;
  if (s->match_margin_ms) sp->has_match_margin_ms = 1, sp->match_margin_ms = s->match_margin_ms;
  m->has_request_id = 1, m->request_id = bin(request_id);
  m->spec = sp;
  q->op_case = PINTUAN__V1__REQUEST__OP_CREATE_CAMPAIGN, q->create_campaign = m;
}

void pintuan_req_update_campaign(pintuan_request *q, Pintuan__V1__UpdateCampaign *m,
                                 const char *campaign, const pintuan_campaign_update *u,
                                 const char *request_id) {
  pintuan__v1__request__init(q);
  pintuan__v1__update_campaign__init(m);
  m->has_request_id = 1, m->request_id = bin(request_id);
  m->has_campaign_id = 1, m->campaign_id = bin(campaign);
  if (u->fields & PINTUAN_UPDATE_STOCK) m->has_stock = 1, m->stock = u->stock;
  if (u->fields & PINTUAN_UPDATE_END) m->has_end_ms = 1, m->end_ms = u->end_ms;
  if (u->fields & PINTUAN_UPDATE_LIMIT)
    m->has_per_user_limit = 1, m->per_user_limit = u->per_user_limit;
  if (u->fields & PINTUAN_UPDATE_HOLD) m->has_hold_ms = 1, m->hold_ms = u->hold_ms;
  if (u->fields & PINTUAN_UPDATE_WAITLIST) m->has_waitlist = 1, m->waitlist = u->waitlist;
  q->op_case = PINTUAN__V1__REQUEST__OP_UPDATE_CAMPAIGN, q->update_campaign = m;
}

void pintuan_req_end_campaign(pintuan_request *q, Pintuan__V1__EndCampaign *m,
                              const char *campaign, const char *request_id) {
  pintuan__v1__request__init(q);
  pintuan__v1__end_campaign__init(m);
  m->has_request_id = 1, m->request_id = bin(request_id);
  m->has_campaign_id = 1, m->campaign_id = bin(campaign);
  q->op_case = PINTUAN__V1__REQUEST__OP_END_CAMPAIGN, q->end_campaign = m;
}

void pintuan_req_get_campaign(pintuan_request *q, Pintuan__V1__GetCampaign *m,
                              const char *campaign) {
  pintuan__v1__request__init(q);
  pintuan__v1__get_campaign__init(m);
  m->has_campaign_id = 1, m->campaign_id = bin(campaign);
  q->op_case = PINTUAN__V1__REQUEST__OP_GET_CAMPAIGN, q->get_campaign = m;
}

void pintuan_req_list_campaigns(pintuan_request *q, Pintuan__V1__ListCampaigns *m, uint64_t cursor,
                                uint32_t limit) {
  pintuan__v1__request__init(q);
  pintuan__v1__list_campaigns__init(m);
  if (cursor) m->has_cursor = 1, m->cursor = cursor;
  if (limit) m->has_limit = 1, m->limit = limit;
  q->op_case = PINTUAN__V1__REQUEST__OP_LIST_CAMPAIGNS, q->list_campaigns = m;
}

void pintuan_req_reserve(pintuan_request *q, Pintuan__V1__Reserve *m, const char *campaign,
                         const char *user, int32_t qty, const char *request_id) {
  pintuan__v1__request__init(q);
  pintuan__v1__reserve__init(m);
  m->has_campaign_id = 1, m->campaign_id = bin(campaign);
  m->has_user_id = 1, m->user_id = bin(user);
  m->has_quantity = 1, m->quantity = qty;
  m->has_request_id = 1, m->request_id = bin(request_id);
  q->op_case = PINTUAN__V1__REQUEST__OP_RESERVE, q->reserve = m;
}

void pintuan_req_confirm(pintuan_request *q, Pintuan__V1__Confirm *m, const char *campaign,
                         uint64_t reservation_id, const char *user, const char *request_id) {
  pintuan__v1__request__init(q);
  pintuan__v1__confirm__init(m);
  m->has_campaign_id = 1, m->campaign_id = bin(campaign);
  m->has_reservation_id = 1, m->reservation_id = reservation_id;
  m->has_user_id = 1, m->user_id = bin(user);
  m->has_request_id = 1, m->request_id = bin(request_id);
  q->op_case = PINTUAN__V1__REQUEST__OP_CONFIRM, q->confirm = m;
}

void pintuan_req_cancel(pintuan_request *q, Pintuan__V1__Cancel *m, const char *campaign,
                        uint64_t reservation_id, const char *user, const char *request_id) {
  pintuan__v1__request__init(q);
  pintuan__v1__cancel__init(m);
  m->has_campaign_id = 1, m->campaign_id = bin(campaign);
  m->has_reservation_id = 1, m->reservation_id = reservation_id;
  m->has_user_id = 1, m->user_id = bin(user);
  m->has_request_id = 1, m->request_id = bin(request_id);
  q->op_case = PINTUAN__V1__REQUEST__OP_CANCEL, q->cancel = m;
}

void pintuan_req_get_reservation(pintuan_request *q, Pintuan__V1__GetReservation *m,
                                 const char *campaign, uint64_t reservation_id, const char *user) {
  pintuan__v1__request__init(q);
  pintuan__v1__get_reservation__init(m);
  m->has_campaign_id = 1, m->campaign_id = bin(campaign);
  m->has_reservation_id = 1, m->reservation_id = reservation_id;
  m->has_user_id = 1, m->user_id = bin(user);
  q->op_case = PINTUAN__V1__REQUEST__OP_GET_RESERVATION, q->get_reservation = m;
}

void pintuan_req_get_holdings(pintuan_request *q, Pintuan__V1__GetHoldings *m,
                              const char *campaign, const char *user) {
  pintuan__v1__request__init(q);
  pintuan__v1__get_holdings__init(m);
  m->has_campaign_id = 1, m->campaign_id = bin(campaign);
  m->has_user_id = 1, m->user_id = bin(user);
  q->op_case = PINTUAN__V1__REQUEST__OP_GET_HOLDINGS, q->get_holdings = m;
}

void pintuan_req_join(pintuan_request *q, Pintuan__V1__Join *m, const char *campaign,
                      const char *user, int mode, uint64_t group_id, bool new_user,
                      const char *request_id) {
  pintuan__v1__request__init(q);
  pintuan__v1__join__init(m);
  m->has_campaign_id = 1, m->campaign_id = bin(campaign);
  m->has_user_id = 1, m->user_id = bin(user);
  m->has_mode = 1, m->mode = (Pintuan__V1__JoinMode)mode;
  if (group_id) m->has_group_id = 1, m->group_id = group_id;
  m->has_new_user = 1, m->new_user = new_user;
  m->has_request_id = 1, m->request_id = bin(request_id);
  q->op_case = PINTUAN__V1__REQUEST__OP_JOIN, q->join = m;
}

void pintuan_req_get_group(pintuan_request *q, Pintuan__V1__GetGroup *m, const char *campaign,
                           uint64_t group_id) {
  pintuan__v1__request__init(q);
  pintuan__v1__get_group__init(m);
  m->has_campaign_id = 1, m->campaign_id = bin(campaign);
  m->has_group_id = 1, m->group_id = group_id;
  q->op_case = PINTUAN__V1__REQUEST__OP_GET_GROUP, q->get_group = m;
}

void pintuan_req_subscribe(pintuan_request *q, Pintuan__V1__Subscribe *m,
                           ProtobufCBinaryData *ids, const char *const *campaigns, size_t n) {
  pintuan__v1__request__init(q);
  pintuan__v1__subscribe__init(m);
  for (size_t i = 0; i < n; i++) ids[i] = bin(campaigns[i]);
  m->n_campaign_ids = n;
  m->campaign_ids = n ? ids : NULL;
  q->op_case = PINTUAN__V1__REQUEST__OP_SUBSCRIBE, q->subscribe = m;
}

/* ---- blocking calls ---- */

/* A builder's request and body on the stack, then the call. */
#define CALL(Body, build, ...)                                                                    \
  do {                                                                                            \
    pintuan_request q_;                                                                           \
    Body m_;                                                                                      \
    build(&q_, &m_, __VA_ARGS__);                                                                 \
    return pintuan_call(c, &q_, out);                                                             \
  } while (0)

int pintuan_hello(pintuan_client *c, const char *key, const char *secret, pintuan_response **out) {
  CALL(Pintuan__V1__Hello, pintuan_req_hello, key, secret);
}

int pintuan_read_key_file(const char *path, char *name, size_t name_size, char *secret,
                          size_t secret_size, char *err, size_t errlen) {
  FILE *f = fopen(path, "r");
  if (!f) {
    snprintf(err, errlen, "key file %s: %s", path, strerror(errno));
    return -1;
  }
  char line[512], n[128], s[256], more[8];
  bool got = fgets(line, sizeof line, f) != NULL;
  fclose(f);
  if (!got || sscanf(line, "%127s %255s %7s", n, s, more) != 2) {
    snprintf(err, errlen, "key file %s: want one line NAME SECRET (as pintuand --make-key writes)", path);
    return -1;
  }
  if (strlen(n) >= name_size || strlen(s) >= secret_size) {
    snprintf(err, errlen, "key file %s: name or secret too long", path);
    return -1;
  }
  snprintf(name, name_size, "%s", n);
  snprintf(secret, secret_size, "%s", s);
  return 0;
}

int pintuan_ping(pintuan_client *c, pintuan_response **out) {
  pintuan_request q;
  Pintuan__V1__Ping m;
  pintuan_req_ping(&q, &m);
  return pintuan_call(c, &q, out);
}

int pintuan_create_campaign(pintuan_client *c, const pintuan_campaign_spec *spec,
                            const char *request_id, pintuan_response **out) {
  Pintuan__V1__CampaignSpec sp;
  CALL(Pintuan__V1__CreateCampaign, pintuan_req_create_campaign, &sp, spec, request_id);
}

int pintuan_update_campaign(pintuan_client *c, const char *campaign,
                            const pintuan_campaign_update *update, const char *request_id,
                            pintuan_response **out) {
  CALL(Pintuan__V1__UpdateCampaign, pintuan_req_update_campaign, campaign, update, request_id);
}

int pintuan_end_campaign(pintuan_client *c, const char *campaign, const char *request_id,
                         pintuan_response **out) {
  CALL(Pintuan__V1__EndCampaign, pintuan_req_end_campaign, campaign, request_id);
}

int pintuan_get_campaign(pintuan_client *c, const char *campaign, pintuan_response **out) {
  CALL(Pintuan__V1__GetCampaign, pintuan_req_get_campaign, campaign);
}

int pintuan_list_campaigns(pintuan_client *c, uint64_t cursor, uint32_t limit, pintuan_response **out) {
  pintuan_request q;
  Pintuan__V1__ListCampaigns m;
  pintuan_req_list_campaigns(&q, &m, cursor, limit);
  return pintuan_call(c, &q, out);
}

int pintuan_reserve(pintuan_client *c, const char *campaign, const char *user, int32_t qty,
                    const char *request_id, pintuan_response **out) {
  CALL(Pintuan__V1__Reserve, pintuan_req_reserve, campaign, user, qty, request_id);
}

int pintuan_confirm(pintuan_client *c, const char *campaign, uint64_t reservation_id,
                    const char *user, const char *request_id, pintuan_response **out) {
  CALL(Pintuan__V1__Confirm, pintuan_req_confirm, campaign, reservation_id, user, request_id);
}

int pintuan_cancel(pintuan_client *c, const char *campaign, uint64_t reservation_id,
                   const char *user, const char *request_id, pintuan_response **out) {
  CALL(Pintuan__V1__Cancel, pintuan_req_cancel, campaign, reservation_id, user, request_id);
}

int pintuan_get_reservation(pintuan_client *c, const char *campaign, uint64_t reservation_id,
                            const char *user, pintuan_response **out) {
  CALL(Pintuan__V1__GetReservation, pintuan_req_get_reservation, campaign, reservation_id, user);
}

int pintuan_get_campaign_stale(pintuan_client *c, const char *campaign, pintuan_response **out) {
  pintuan_request q;
  Pintuan__V1__GetCampaign m;
  pintuan_req_get_campaign(&q, &m, campaign);
  m.has_stale_ok = 1, m.stale_ok = 1;
  return pintuan_call(c, &q, out);
}

int pintuan_get_reservation_stale(pintuan_client *c, const char *campaign, uint64_t reservation_id,
                                  const char *user, pintuan_response **out) {
  pintuan_request q;
  Pintuan__V1__GetReservation m;
  pintuan_req_get_reservation(&q, &m, campaign, reservation_id, user);
  m.has_stale_ok = 1, m.stale_ok = 1;
  return pintuan_call(c, &q, out);
}

int pintuan_get_holdings(pintuan_client *c, const char *campaign, const char *user,
                         pintuan_response **out) {
  CALL(Pintuan__V1__GetHoldings, pintuan_req_get_holdings, campaign, user);
}

int pintuan_join(pintuan_client *c, const char *campaign, const char *user, int mode,
                 uint64_t group_id, bool new_user, const char *request_id,
                 pintuan_response **out) {
  CALL(Pintuan__V1__Join, pintuan_req_join, campaign, user, mode, group_id, new_user, request_id);
}

int pintuan_get_group(pintuan_client *c, const char *campaign, uint64_t group_id,
                      pintuan_response **out) {
  CALL(Pintuan__V1__GetGroup, pintuan_req_get_group, campaign, group_id);
}

int pintuan_subscribe(pintuan_client *c, const char *const *campaigns, pintuan_response **out) {
  size_t n = 0;
  while (campaigns && campaigns[n]) n++;
  ProtobufCBinaryData few[64], *ids = n <= 64 ? few : malloc(n * sizeof(*ids));
  if (!ids) return *out = NULL, pintuan__fail(c, "out of memory");
  pintuan_request q;
  Pintuan__V1__Subscribe m;
  pintuan_req_subscribe(&q, &m, ids, campaigns, n);
  int rc = pintuan_call(c, &q, out);
  if (ids != few) free(ids);
  return rc;
}
