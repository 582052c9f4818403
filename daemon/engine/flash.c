/* Flash sale (秒杀): reserve, confirm, cancel, hold expiry and the waitlist.
 * Every unit is in exactly one of available / held / sold, and moves only
 * here, so `available + held + sold == stock` holds by construction. */
#include <string.h>

#include "engine_int.h"
#include "hash.h"

pt_user *pt__user_find(pt_campaign *c, pt_bytes uid, uint64_t h, uint32_t *ref) {
  return pt_map_lookup(&c->users, h, uid, ref);
}

/* The user arena's records are freed one by one when their campaign
 * retires, and reused by size: a retired sale's users make room for the
 * next sale's without the arena growing. */
pt_user *pt__user_get(pt_engine *e, pt_campaign *c, pt_bytes uid, uint64_t h, uint32_t *ref) {
  size_t units = pt_store_units(PT_USER_SIZE(uid.len));
  pt_user *u;
  if (e->user_free[units] != PT_NIL) {
    *ref = e->user_free[units];
    u = pt_store_at(&e->users, *ref);
    memcpy(&e->user_free[units], u, sizeof(uint32_t)); /* the next free one */
  } else {
    u = pt_store_alloc(&e->users, PT_USER_SIZE(uid.len), ref);
  }
  u->refs = u->held = u->sold = 0;
  u->waiting = 0;
  if (c->kind == PT_GROUP_BUY) u->groups = PT_ONIL;
  u->klen = (uint8_t)uid.len;
  memcpy(u->key, uid.p, uid.len);
  pt_map_put(&c->users, h, *ref);
  return u;
}

void pt__user_free(pt_engine *e, uint32_t ref) {
  pt_user *u = pt_store_at(&e->users, ref);
  size_t units = pt_store_units(PT_USER_SIZE(u->klen));
  memcpy(u, &e->user_free[units], sizeof(uint32_t));
  e->user_free[units] = ref;
}

void pt__user_unref(pt_engine *e, pt_campaign *c, uint32_t ref) {
  pt_user *u = pt_store_at(&e->users, ref);
  if (--u->refs || u->held || u->sold || (c->kind == PT_GROUP_BUY ? u->groups != PT_ONIL : u->waiting != 0))
    return;
  pt_map_del_ref(&c->users, pt_hash(e->cfg.hash_seed, u->key, u->klen), ref);
  pt__user_free(e, ref);
}

static void hold_out(pt_engine *e, uint32_t slot, pt_result *r) {
  pt_hold *h = hold_at(e, slot);
  r->reservation_id = hold_rid(e, slot, h);
  r->quantity = h->qty;
  r->state = hold_state(h);
}

/* Serves the waitlist head first, in order, while stock allows. */
void pt__flash_grant_waitlist(pt_engine *e, pt_campaign *c, int64_t now) {
  while (c->waitq.n && !camp_ended(c, now)) {
    uint32_t slot = c->waitq.head;
    pt_hold *h = hold_at(e, slot);
    if ((int64_t)h->qty > c->available) break;
    pt__q_remove(e, &c->waitq, slot);
    pt_user *u = hold_user(e, h);
    c->waiting_units -= h->qty;
    c->available -= h->qty;
    c->held += h->qty;
    u->waiting -= h->qty;
    u->held += h->qty;
    hold_set_state(h, PT_HELD);
    h->at_ms = now + c->hold_ms;
    pt__q_push_sorted(e, &c->holdq, slot);
    e->st.waiting--;
    e->st.live_holds++;
    uint64_t rid = hold_rid(e, slot, h);
    pt__emit_mut(e, PT_MUT_HOLD, false, c, user_id(u), rid);
    pt__emit_mut(e, PT_MUT_USER, false, c, user_id(u), 0);
    pt__emit_event(e, PT_EV_WAITLIST_GRANTED, now, c, u, rid, h->qty, h->at_ms);
  }
}

static void release_held(pt_engine *e, pt_campaign *c, int64_t now, uint32_t slot,
                         pt_hold_state to) {
  pt_hold *h = hold_at(e, slot);
  pt_user *u = hold_user(e, h);
  pt__q_remove(e, &c->holdq, slot);
  c->held -= h->qty;
  c->available += h->qty;
  u->held -= h->qty;
  hold_set_state(h, to);
  e->st.live_holds--;
  pt__hold_retire(e, c, now, slot);
  pt__emit_mut(e, PT_MUT_HOLD, false, c, user_id(u), hold_rid(e, slot, h));
  pt__emit_mut(e, PT_MUT_USER, false, c, user_id(u), 0);
}

static void expire_hold(pt_engine *e, pt_campaign *c, int64_t now, uint32_t slot) {
  pt_hold *h = hold_at(e, slot);
  int64_t deadline = h->at_ms;
  release_held(e, c, now, slot, PT_EXPIRED_HOLD);
  e->st.expiries++;
  pt__emit_event(e, PT_EV_HOLD_EXPIRED, now, c, hold_user(e, h), hold_rid(e, slot, h), h->qty, deadline);
}

static void drop_waiting(pt_engine *e, pt_campaign *c, int64_t now, uint32_t slot,
                         pt_hold_state to) {
  pt_hold *h = hold_at(e, slot);
  pt_user *u = hold_user(e, h);
  pt__q_remove(e, &c->waitq, slot);
  c->waiting_units -= h->qty;
  u->waiting -= h->qty;
  hold_set_state(h, to);
  e->st.waiting--;
  pt__hold_retire(e, c, now, slot);
  pt__emit_mut(e, PT_MUT_HOLD, false, c, user_id(u), hold_rid(e, slot, h));
  pt__emit_mut(e, PT_MUT_USER, false, c, user_id(u), 0);
}

/* A hold past its deadline that a bounded advance has not reached yet
 * (pt_engine_advance_some): expired now, as that advance would have. */
static void expire_if_overdue(pt_engine *e, pt_campaign *c, int64_t now, uint32_t slot) {
  pt_hold *h = hold_at(e, slot);
  if (hold_state(h) != PT_HELD || h->at_ms > now) return;
  expire_hold(e, c, now, slot);
  pt__flash_grant_waitlist(e, c, now);
  pt__emit_mut(e, PT_MUT_CAMPAIGN, false, c, camp_id(c), 0);
}

void pt__flash_run_due(pt_engine *e, pt_campaign *c, int64_t now) {
  bool released = false;
  while (e->due_left && c->holdq.head != PT_NIL && hold_at(e, c->holdq.head)->at_ms <= now) {
    expire_hold(e, c, now, c->holdq.head);
    e->due_left--;
    released = true;
  }
  if (released) {
    pt__flash_grant_waitlist(e, c, now);
    pt__emit_mut(e, PT_MUT_CAMPAIGN, false, c, camp_id(c), 0);
  }
  if (c->waitq.n && camp_ended(c, now)) {
    while (c->waitq.head != PT_NIL) {
      uint32_t slot = c->waitq.head;
      pt_hold *h = hold_at(e, slot);
      drop_waiting(e, c, now, slot, PT_EXPIRED_HOLD);
      pt__emit_event(e, PT_EV_WAITLIST_DROPPED, now, c, hold_user(e, h), hold_rid(e, slot, h), h->qty, 0);
    }
  }
}

void pt__retire_due(pt_engine *e, pt_campaign *c, int64_t now) {
  for (; e->due_left && c->retireq.head != PT_NIL && hold_at(e, c->retireq.head)->at_ms <= now;
       e->due_left--) {
    uint32_t slot = c->retireq.head;
    pt_hold *h = hold_at(e, slot);
    pt__q_remove(e, &c->retireq, slot);
    pt__emit_mut(e, PT_MUT_HOLD, true, c, user_id(hold_user(e, h)), hold_rid(e, slot, h));
    uint32_t user = h->user;
    pt__hold_free(e, slot);
    pt__user_unref(e, c, user);
  }
}

/* Shared preamble of reserve/confirm/cancel. Returns the campaign, or NULL
 * when r already holds the final answer (bad argument, unknown campaign,
 * replay). Bad arguments and unknown campaigns are not remembered: nothing
 * was decided. */
pt_campaign *pt__op_begin(pt_engine *e, int64_t now, pt_bytes rid, pt_bytes cid, int op,
                          uint32_t fp, pt_result *r, pt_idem_key *k) {
  memset(r, 0, sizeof(*r));
  if (!pt_id_valid(rid)) {
    result_set(r, PT_INVALID_ARGUMENT, "request_id must be 1..64 bytes");
    return NULL;
  }
  if (!pt_id_valid(cid)) {
    result_set(r, PT_INVALID_ARGUMENT, "campaign_id must be 1..64 bytes");
    return NULL;
  }
  pt_campaign *c = pt_campaign_find(e, cid);
  if (!c) {
    result_set(r, PT_NOT_FOUND, "no such campaign");
    return NULL;
  }
  pt__camp_run_due(e, c, now);
  pt__idem_key(e, c, rid, k);
  if (pt__idem_replay(e, c, now, k, op, fp, r)) return NULL;
  return c;
}

void pt__op_end(pt_engine *e, pt_campaign *c, int64_t now, const pt_idem_key *k, int op,
                uint32_t fp, pt_result *r) {
  pt__idem_store(e, c, now, k, op, fp, r);
  pt__camp_reschedule(e, c);
}

void pt_reserve(pt_engine *e, int64_t now, pt_bytes rid, pt_bytes cid, pt_bytes uid,
                int64_t qty, pt_result *r) {
  now = eng_now(e, now);
  e->st.reserves++;
  uint32_t fp = pt__idem_fingerprint(OP_RESERVE, (uint64_t)qty, 0, uid);
  pt_idem_key k;
  pt_campaign *c = pt__op_begin(e, now, rid, cid, OP_RESERVE, fp, r, &k);
  if (!c) return;
  if (c->kind != PT_FLASH_SALE)
    return result_set(r, PT_INVALID_ARGUMENT, "a group-buy campaign: use join");
  if (!pt_id_valid(uid)) return result_set(r, PT_INVALID_ARGUMENT, "user_id must be 1..64 bytes");
  if (qty < 1 || qty > PT_MAX_QTY)
    return result_set(r, PT_INVALID_ARGUMENT, "quantity must be 1..1000000");
  /* Too early is not remembered: the same request may succeed at start. */
  if (now < c->start_ms) return result_set(r, PT_NOT_STARTED, "campaign has not started");
  r->quantity = (uint32_t)qty;
  uint64_t uh = pt_hash(e->cfg.hash_seed, uid.p, uid.len);
  if (camp_ended(c, now)) {
    result_set(r, PT_ENDED, "campaign has ended");
    return pt__op_end(e, c, now, &k, OP_RESERVE, fp, r);
  }
  uint32_t uref = 0;
  pt_user *u = pt__user_find(c, uid, uh, &uref);
  uint64_t mine = u ? (uint64_t)u->held + u->sold + u->waiting : 0;
  if (c->per_user_limit && mine + (uint64_t)qty > c->per_user_limit) {
    result_set(r, PT_LIMIT_EXCEEDED, "per-user limit reached");
    return pt__op_end(e, c, now, &k, OP_RESERVE, fp, r);
  }
  if (!u && c->users.count >= e->cfg.limits.users) {
    result_set(r, PT_RESOURCE_EXHAUSTED, "the campaign has as many users as it may (max_users_per_campaign)");
    return pt__op_end(e, c, now, &k, OP_RESERVE, fp, r);
  }
  /* First come, first served: nobody overtakes a waiting user. */
  bool fits = c->waitq.n == 0 && c->available >= qty;
  if (!fits && !c->waitlist) {
    result_set(r, PT_SOLD_OUT, "sold out");
    return pt__op_end(e, c, now, &k, OP_RESERVE, fp, r);
  }
  if (!fits && c->waitq.n >= e->cfg.limits.waitlist) {
    result_set(r, PT_RESOURCE_EXHAUSTED, "sold out, and the waitlist is as long as it may be (max_waitlist)");
    return pt__op_end(e, c, now, &k, OP_RESERVE, fp, r);
  }
  if (!u) u = pt__user_get(e, c, uid, uh, &uref);
  uint32_t slot = pt__hold_alloc(e);
  pt_hold *h = hold_at(e, slot);
  h->user = uref;
  u->refs++;
  h->camp = c->index;
  h->qty = (uint32_t)qty;
  if (fits) {
    hold_set_state(h, PT_HELD);
    h->at_ms = now + c->hold_ms;
    pt__q_push_sorted(e, &c->holdq, slot);
    c->available -= qty;
    c->held += qty;
    u->held += (uint32_t)qty;
    e->st.live_holds++;
    result_set(r, PT_OK, "held");
    r->expires_ms = h->at_ms;
  } else {
    hold_set_state(h, PT_WAITING);
    h->at_ms = 0;
    pt__q_push_back(e, &c->waitq, slot);
    c->waiting_units += (uint64_t)qty;
    u->waiting += (uint32_t)qty;
    e->st.waiting++;
    result_set(r, PT_WAITLISTED, "sold out: on the waitlist");
    r->position = c->waitq.n;
  }
  hold_out(e, slot, r);
  pt__emit_mut(e, PT_MUT_HOLD, false, c, uid, r->reservation_id);
  pt__emit_mut(e, PT_MUT_USER, false, c, uid, 0);
  pt__emit_mut(e, PT_MUT_CAMPAIGN, false, c, cid, 0);
  pt__op_end(e, c, now, &k, OP_RESERVE, fp, r);
}

void pt_confirm(pt_engine *e, int64_t now, pt_bytes rid, pt_bytes cid, uint64_t resid, pt_bytes uid,
                pt_result *r) {
  now = eng_now(e, now);
  e->st.confirms++;
  uint32_t fp = pt__fp_hold(OP_CONFIRM, resid, uid, cid);
  pt_idem_key k;
  pt_campaign *c = pt__op_begin(e, now, rid, cid, OP_CONFIRM, fp, r, &k);
  if (!c) return;
  if (uid.len > PT_ID_MAX) {
    result_set(r, PT_INVALID_ARGUMENT, "user_id must be 1..64 bytes");
    return pt__op_end(e, c, now, &k, OP_CONFIRM, fp, r);
  }
  if (c->kind == PT_GROUP_BUY) {
    pt__group_confirm(e, c, now, resid, uid, r);
    return pt__op_end(e, c, now, &k, OP_CONFIRM, fp, r);
  }
  uint32_t slot;
  pt_hold *h = pt__hold_lookup(e, c, resid, uid, &slot);
  if (!h) {
    result_set(r, PT_NOT_FOUND, "no such reservation");
    return pt__op_end(e, c, now, &k, OP_CONFIRM, fp, r);
  }
  expire_if_overdue(e, c, now, slot);
  hold_out(e, slot, r);
  switch (hold_state(h)) {
  case PT_HELD: {
    pt_user *u = hold_user(e, h);
    pt__q_remove(e, &c->holdq, slot);
    c->held -= h->qty;
    c->sold += h->qty;
    u->held -= h->qty;
    u->sold += h->qty;
    hold_set_state(h, PT_SOLD);
    e->st.live_holds--;
    pt__hold_retire(e, c, now, slot);
    pt__emit_mut(e, PT_MUT_HOLD, false, c, user_id(u), resid);
    pt__emit_mut(e, PT_MUT_USER, false, c, user_id(u), 0);
    pt__emit_mut(e, PT_MUT_CAMPAIGN, false, c, cid, 0);
    result_set(r, PT_OK, "sold");
    r->state = PT_SOLD;
    break;
  }
  case PT_SOLD: result_set(r, PT_CONFLICT, "reservation is already sold"); break;
  case PT_RELEASED: result_set(r, PT_CONFLICT, "reservation was cancelled"); break;
  case PT_EXPIRED_HOLD: result_set(r, PT_EXPIRED, "reservation expired"); break;
  case PT_WAITING: result_set(r, PT_CONFLICT, "reservation is still on the waitlist"); break;
  default: result_set(r, PT_INTERNAL, "reservation in unknown state"); break;
  }
  pt__op_end(e, c, now, &k, OP_CONFIRM, fp, r);
}

void pt_cancel(pt_engine *e, int64_t now, pt_bytes rid, pt_bytes cid, uint64_t resid, pt_bytes uid,
               pt_result *r) {
  now = eng_now(e, now);
  e->st.cancels++;
  uint32_t fp = pt__fp_hold(OP_CANCEL, resid, uid, cid);
  pt_idem_key k;
  pt_campaign *c = pt__op_begin(e, now, rid, cid, OP_CANCEL, fp, r, &k);
  if (!c) return;
  if (uid.len > PT_ID_MAX) {
    result_set(r, PT_INVALID_ARGUMENT, "user_id must be 1..64 bytes");
    return pt__op_end(e, c, now, &k, OP_CANCEL, fp, r);
  }
  if (c->kind == PT_GROUP_BUY) {
    pt__group_cancel(e, c, now, resid, uid, r);
    return pt__op_end(e, c, now, &k, OP_CANCEL, fp, r);
  }
  uint32_t slot;
  pt_hold *h = pt__hold_lookup(e, c, resid, uid, &slot);
  if (!h) {
    result_set(r, PT_NOT_FOUND, "no such reservation");
    return pt__op_end(e, c, now, &k, OP_CANCEL, fp, r);
  }
  expire_if_overdue(e, c, now, slot);
  hold_out(e, slot, r);
  switch (hold_state(h)) {
  case PT_HELD:
    release_held(e, c, now, slot, PT_RELEASED);
    pt__flash_grant_waitlist(e, c, now);
    pt__emit_mut(e, PT_MUT_CAMPAIGN, false, c, cid, 0);
    result_set(r, PT_OK, "released");
    r->state = PT_RELEASED;
    break;
  case PT_WAITING:
    drop_waiting(e, c, now, slot, PT_RELEASED);
    pt__flash_grant_waitlist(e, c, now); /* the next waiter may fit now */
    result_set(r, PT_OK, "left the waitlist");
    r->state = PT_RELEASED;
    break;
  case PT_SOLD: result_set(r, PT_CONFLICT, "reservation is sold: refunds are the storefront's"); break;
  case PT_RELEASED: result_set(r, PT_CONFLICT, "reservation was already cancelled"); break;
  case PT_EXPIRED_HOLD: result_set(r, PT_EXPIRED, "reservation expired"); break;
  default: result_set(r, PT_INTERNAL, "reservation in unknown state"); break;
  }
  pt__op_end(e, c, now, &k, OP_CANCEL, fp, r);
}

pt_status pt_reservation_get(pt_engine *e, pt_bytes cid, uint64_t resid, pt_bytes uid,
                             pt_reservation_info *o) {
  memset(o, 0, sizeof(*o));
  if (uid.len > PT_ID_MAX) return PT_INVALID_ARGUMENT;
  pt_campaign *c = pt_campaign_find(e, cid);
  if (!c) return pt_id_valid(cid) ? PT_NOT_FOUND : PT_INVALID_ARGUMENT;
  uint32_t slot;
  pt_hold *h = pt__hold_lookup(e, c, resid, uid, &slot);
  if (!h) return PT_NOT_FOUND;
  o->reservation_id = resid;
  o->campaign_id = camp_id(c);
  o->user_id = user_id(hold_user(e, h));
  o->quantity = c->kind == PT_GROUP_BUY ? 1 : h->qty;
  o->state = hold_state(h);
  o->expires_ms = o->state == PT_HELD ? h->at_ms : 0;
  if (c->kind == PT_GROUP_BUY) {
    pt_group *g = pt__group_of(e, h);
    o->group_id = pt__group_id(e, g);
    if (g) o->group_state = (pt_group_state)g->state;
  }
  return PT_OK;
}

pt_status pt_holdings_get(pt_engine *e, pt_bytes cid, pt_bytes uid, pt_holdings_info *o) {
  memset(o, 0, sizeof(*o));
  if (!pt_id_valid(cid) || !pt_id_valid(uid)) return PT_INVALID_ARGUMENT;
  pt_campaign *c = pt_campaign_find(e, cid);
  if (!c) return PT_NOT_FOUND;
  o->per_user_limit = c->per_user_limit;
  pt_user *u = pt__user_find(c, uid, pt_hash(e->cfg.hash_seed, uid.p, uid.len), NULL);
  if (u) {
    o->held = u->held;
    o->sold = u->sold;
    o->waiting = c->kind == PT_FLASH_SALE ? u->waiting : 0;
  }
  return PT_OK;
}
