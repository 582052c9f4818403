/* Campaigns: create, update, end, look up, describe. */
#include <stdlib.h>
#include <string.h>

#include "engine_int.h"
#include "hash.h"
#include "xalloc.h"

#define MAX_HOLD_MS (INT64_C(7) * 24 * 3600 * 1000)

/* A sale day's traffic is mostly one campaign: the last one found is
 * checked before hashing (a campaign's record is never removed, a retired
 * one's neither, so it stays valid). */
pt_campaign *pt_campaign_find(pt_engine *e, pt_bytes id) {
  if (!pt_id_valid(id)) return NULL;
  pt_campaign *c = e->last_camp;
  if (c && c->klen == id.len && memcmp(c->key, id.p, id.len) == 0) return c;
  c = pt_map_get(&e->camp_map, pt_hash(e->cfg.hash_seed, id.p, id.len), id);
  if (c) e->last_camp = c;
  return c;
}

size_t pt_campaign_count(const pt_engine *e) { return e->ncamps; }
size_t pt_campaigns_retired(const pt_engine *e) { return e->nretired; }
pt_campaign *pt_campaign_at(pt_engine *e, size_t i) {
  return i < e->ncamps ? e->camps[i] : NULL;
}

static uint32_t spec_fingerprint(const pt_campaign_spec *s) {
  uint64_t a = (uint64_t)s->stock * 31 + (uint64_t)s->per_user_limit * 7 +
               (uint64_t)s->kind * 3 + (s->waitlist ? 1 : 0);
  uint64_t b = (uint64_t)s->start_ms * 31 + (uint64_t)s->end_ms * 7 + (uint64_t)s->hold_ms;
  a = a * 131 + s->group_size * 17 + s->simulate_min_paid * 5 + (s->new_users_only ? 2 : 0);
  b = b * 131 + (uint64_t)s->group_ttl_ms * 3 + (uint64_t)s->match_margin_ms;
  return pt__idem_fingerprint(OP_CREATE, a, b, s->id);
}

static const char *spec_invalid(const pt_campaign_spec *s) {
  if (!pt_id_valid(s->id)) return "campaign_id must be 1..64 bytes";
  if (s->kind != PT_FLASH_SALE && s->kind != PT_GROUP_BUY) return "kind must be FLASH_SALE or GROUP_BUY";
  if (s->kind == PT_GROUP_BUY) {
    if (s->group_size < 2 || s->group_size > PT_GROUP_MAX) return "group_size must be 2..64";
    if (s->group_ttl_ms <= 0 || s->group_ttl_ms > MAX_HOLD_MS) return "group_ttl_ms must be 1..7 days";
    if (s->simulate_min_paid >= s->group_size) return "simulate_min_paid must be below group_size";
    if (s->match_margin_ms < 0 || s->match_margin_ms >= s->group_ttl_ms)
      return "match_margin_ms must be 0..group_ttl_ms";
    if (s->waitlist) return "a group buy has no waitlist";
  } else if (s->group_size || s->group_ttl_ms || s->new_users_only || s->simulate_min_paid ||
             s->match_margin_ms) {
    return "group settings are for GROUP_BUY campaigns";
  }
  if (s->stock < 0 || s->stock > PT_MAX_STOCK) return "stock must be 0..2^40";
  if (s->hold_ms <= 0 || s->hold_ms > MAX_HOLD_MS) return "hold_ms must be 1..7 days";
  if (s->start_ms < 0 || s->end_ms < 0) return "times must be >= 0";
  if (s->end_ms && s->end_ms <= s->start_ms) return "end_ms must be after start_ms";
  return NULL;
}

void pt_campaign_create(pt_engine *e, int64_t now, pt_bytes rid,
                        const pt_campaign_spec *s, pt_result *r) {
  now = eng_now(e, now);
  memset(r, 0, sizeof(*r));
  const char *bad = spec_invalid(s);
  if (!bad && !pt_id_valid(rid)) bad = "request_id must be 1..64 bytes";
  if (bad) return result_set(r, PT_INVALID_ARGUMENT, bad);
  uint32_t fp = spec_fingerprint(s);
  pt_campaign *c = pt_campaign_find(e, s->id);
  pt_idem_key k;
  if (c) {
    pt__camp_run_due(e, c, now);
    pt__idem_key(e, c, rid, &k);
    if (!pt__idem_replay(e, c, now, &k, OP_CREATE, fp, r))
      result_set(r, PT_ALREADY_EXISTS, "campaign id already exists");
    return;
  }
  if (e->ncamps - e->nretired >= e->cfg.limits.campaigns)
    return result_set(r, PT_RESOURCE_EXHAUSTED, "this daemon holds as many campaigns as it may (max_campaigns)");
  uint32_t cref;
  c = pt_store_alloc(&e->camp_store, sizeof(*c) + s->id.len, &cref);
  memset(c, 0, sizeof(*c));
  c->klen = (uint8_t)s->id.len;
  memcpy(c->key, s->id.p, s->id.len);
  c->key_hash = pt_hash(e->cfg.hash_seed, s->id.p, s->id.len);
  c->kind = s->kind;
  c->start_ms = s->start_ms;
  c->end_ms = s->end_ms ? s->end_ms : PT_NEVER;
  c->stock = c->available = s->stock;
  c->per_user_limit = s->per_user_limit;
  c->hold_ms = s->hold_ms;
  c->waitlist = s->waitlist;
  if (s->kind == PT_GROUP_BUY) {
    c->group_size = s->group_size;
    c->group_ttl_ms = s->group_ttl_ms;
    c->new_users_only = s->new_users_only;
    c->simulate_min_paid = s->simulate_min_paid;
    c->match_margin_ms = s->match_margin_ms;
    c->buckets = pt_xmalloc((s->group_size + 1) * sizeof(*c->buckets));
    for (uint32_t k = 0; k <= s->group_size; k++) c->buckets[k] = PT_ONIL;
  }
  c->holdq = c->waitq = c->retireq = (pt_queue){PT_NIL, PT_NIL, 0};
  c->deadline = PT_NEVER;
  pt_map_init(&c->users, &e->users, offsetof(pt_user, klen));
  if (e->ncamps == e->camps_cap) {
    e->camps_cap = e->camps_cap ? e->camps_cap * 2 : 16;
    e->camps = pt_xrealloc(e->camps, e->camps_cap * sizeof(*e->camps));
  }
  c->index = e->ncamps;
  e->camps[e->ncamps++] = c;
  pt_map_put(&e->camp_map, c->key_hash, cref);
  pt__camp_heap_add(e, c);
  result_set(r, PT_OK, "campaign created");
  pt__emit_mut(e, PT_MUT_CAMPAIGN, false, c, camp_id(c), 0);
  pt__idem_key(e, c, rid, &k);
  pt__idem_store(e, c, now, &k, OP_CREATE, fp, r);
  pt__camp_reschedule(e, c);
}

void pt_campaign_update(pt_engine *e, int64_t now, pt_bytes rid, pt_bytes cid,
                        const pt_campaign_changes *u, pt_result *r) {
  now = eng_now(e, now);
  uint64_t a = (uint64_t)u->fields << 56 ^ (uint64_t)u->stock * 31 ^ u->per_user_limit ^
               (u->waitlist ? 1ull << 50 : 0);
  uint64_t b = (uint64_t)u->end_ms * 31 + (uint64_t)u->hold_ms;
  uint32_t fp = pt__idem_fingerprint(OP_UPDATE, a, b, cid);
  pt_idem_key k;
  pt_campaign *c = pt__op_begin(e, now, rid, cid, OP_UPDATE, fp, r, &k);
  if (!c) return;
  const char *bad = NULL;
  if ((u->fields & PT_UPD_STOCK) && (u->stock < 0 || u->stock > PT_MAX_STOCK))
    bad = "stock must be 0..2^40";
  else if ((u->fields & PT_UPD_HOLD) && (u->hold_ms <= 0 || u->hold_ms > MAX_HOLD_MS))
    bad = "hold_ms must be 1..7 days";
  else if ((u->fields & PT_UPD_WAITLIST) && u->waitlist && c->kind == PT_GROUP_BUY)
    bad = "a group buy has no waitlist";
  else if ((u->fields & PT_UPD_END) && u->end_ms < 0)
    bad = "end_ms must be >= 0";
  else if ((u->fields & PT_UPD_END) && u->end_ms && u->end_ms <= c->start_ms)
    bad = "end_ms must be after start_ms";
  else if (u->fields == 0)
    bad = "nothing to update";
  else if (c->retired)
    bad = "the campaign was retired (it ended more than the retention ago)";
  if (bad) return result_set(r, PT_INVALID_ARGUMENT, bad); /* not remembered */
  if ((u->fields & PT_UPD_STOCK) && u->stock < c->held + c->sold) {
    result_set(r, PT_CONFLICT, "stock cannot drop below held + sold");
  } else {
    if (u->fields & PT_UPD_STOCK) {
      c->available += u->stock - c->stock;
      c->stock = u->stock;
    }
    if (u->fields & PT_UPD_END) c->end_ms = u->end_ms ? u->end_ms : PT_NEVER;
    if (u->fields & PT_UPD_LIMIT) c->per_user_limit = u->per_user_limit;
    if (u->fields & PT_UPD_HOLD) c->hold_ms = u->hold_ms;
    if (u->fields & PT_UPD_WAITLIST) c->waitlist = u->waitlist;
    result_set(r, PT_OK, "campaign updated");
    pt__emit_mut(e, PT_MUT_CAMPAIGN, false, c, camp_id(c), 0);
    pt__flash_grant_waitlist(e, c, now); /* more stock may serve waiters */
  }
  pt__idem_store(e, c, now, &k, OP_UPDATE, fp, r);
  pt__camp_run_due(e, c, now); /* an end in the past drops the waitlist now */
  pt__camp_reschedule(e, c);
}

void pt_campaign_end(pt_engine *e, int64_t now, pt_bytes rid, pt_bytes cid, pt_result *r) {
  now = eng_now(e, now);
  uint32_t fp = pt__idem_fingerprint(OP_END, 0, 0, cid);
  pt_idem_key k;
  pt_campaign *c = pt__op_begin(e, now, rid, cid, OP_END, fp, r, &k);
  if (!c) return;
  if (camp_ended(c, now)) {
    result_set(r, PT_OK, "campaign had already ended");
  } else {
    c->end_ms = now;
    result_set(r, PT_OK, "campaign ended");
    pt__emit_mut(e, PT_MUT_CAMPAIGN, false, c, camp_id(c), 0);
  }
  pt__idem_store(e, c, now, &k, OP_END, fp, r);
  pt__camp_reschedule(e, c);
  pt__camp_run_due(e, c, now);
}

void pt__camp_retire(pt_engine *e, pt_campaign *c) {
  while (c->retireq.head != PT_NIL) { /* finished holds: their ids are forgotten now */
    uint32_t slot = c->retireq.head;
    pt__q_remove(e, &c->retireq, slot);
    pt__hold_free(e, slot);
  }
  if (c->kind == PT_GROUP_BUY) pt__group_retire_all(e, c);
  for (size_t j = 0; j < pt_map_positions(&c->users); j++) {
    const pt_map_slot *s = pt_map_entry(&c->users, j);
    if (s) pt__user_free(e, s->ref);
  }
  pt_map_destroy(&c->users);
  pt_map_init(&c->users, &e->users, offsetof(pt_user, klen));
  c->retired = true;
  e->nretired++;
  pt__emit_mut(e, PT_MUT_CAMPAIGN, false, c, camp_id(c), 0);
}

void pt_campaign_info_get(const pt_engine *e, const pt_campaign *c, int64_t now,
                          pt_campaign_info *o) {
  (void)e;
  memset(o, 0, sizeof(*o));
  o->id = camp_id(c);
  o->kind = c->kind;
  o->start_ms = c->start_ms;
  o->end_ms = c->end_ms == PT_NEVER ? 0 : c->end_ms;
  o->stock = c->stock;
  o->available = c->available;
  o->held = c->held;
  o->sold = c->sold;
  o->per_user_limit = c->per_user_limit;
  o->hold_ms = c->hold_ms;
  o->waitlist = c->waitlist;
  o->waitlist_length = c->waitq.n;
  o->ended = camp_ended(c, now);
  o->retired = c->retired;
  o->group_size = c->group_size;
  o->group_ttl_ms = c->group_ttl_ms;
  o->new_users_only = c->new_users_only;
  o->simulate_min_paid = c->simulate_min_paid;
  o->match_margin_ms = c->match_margin_ms;
  o->open_groups = c->groupq.n;
}
