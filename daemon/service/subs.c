/* Subscriptions: connections that asked for events (of chosen campaigns
 * or all), and the push of each engine event to them, packed once. */
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "svc.h"
#include "xalloc.h"

static pt_sub **sub_find(pt_service *s, pt_conn *c) {
  pt_sub **p = &s->subs;
  while (*p && (*p)->conn != c) p = &(*p)->next;
  return p;
}

bool svc_subscribe(svc_ctx *x, const Pintuan__V1__Subscribe *m) {
  Pintuan__V1__Response *r = x->r;
  if (m->n_campaign_ids > 64) return svc_bad(r, "at most 64 campaign_ids");
  for (size_t i = 0; i < m->n_campaign_ids; i++) {
    if (!pt_id_valid(B(m->campaign_ids[i]))) return svc_bad(r, "campaign_ids must be 1..64 bytes");
    if (!pt_campaign_find(x->s->engine, B(m->campaign_ids[i]))) {
      svc_set_status(r, PT_NOT_FOUND, "no such campaign: subscribe to campaigns that exist");
      return true;
    }
  }
  pt_sub **p = sub_find(x->s, x->c), *sub = *p;
  if (!sub) {
    sub = pt_xcalloc(1, sizeof(*sub));
    sub->conn = x->c;
    sub->next = x->s->subs;
    x->s->subs = sub;
    *pt_conn_flags(x->c) |= CONN_SUB;
    pt_conn_keep_when_idle(x->c); /* it waits for events: never idle */
  }
  sub->n = (uint32_t)m->n_campaign_ids;
  for (size_t i = 0; i < m->n_campaign_ids; i++) {
    memcpy(sub->store + 64 * i, m->campaign_ids[i].data, m->campaign_ids[i].len);
    sub->ids[i] = (pt_bytes){sub->store + 64 * i, m->campaign_ids[i].len};
  }
  svc_set_status(r, PT_OK, sub->n ? "subscribed to the given campaigns" : "subscribed to every campaign");
  return true;
}

void pt_service_on_close(pt_service *s, pt_conn *c) {
  if (s->capture) pt_capture_write(s->capture, PT_CAP_CLOSE, pt_conn_id(c), pt_wall_us(), NULL, 0);
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
  pt_keys_free(s->keys);
  s->keys = NULL;
  free(s->key_buckets);
  s->key_buckets = NULL;
  pt_user_rates_free(s->users);
  s->users = NULL;
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
  uint8_t local[8192];
  size_t n;
  uint8_t *frame = svc_pack_event(ev, local, sizeof local, &n);
  for (pt_sub *sub = s->subs; sub; sub = sub->next) {
    if (!sub_wants(sub, ev->campaign_id)) continue;
    memcpy(pt_conn_reply(sub->conn, n), frame, n);
    s->events_pushed++;
  }
  if (frame != local) free(frame);
}
