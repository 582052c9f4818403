/* Group buy (拼团): groups, seats, AUTO matching (凑团), completion (成团),
 * failure at the deadline, simulated completion (模拟成团).
 *
 * Accounting: a seat is one unit of the campaign's stock. A HELD or PAID
 * seat of an open group counts as `held`; the seats of a completed group as
 * `sold`; an expired, cancelled or failed seat returns its unit to
 * `available`. So available + held + sold == stock throughout.
 *
 * Per-user limit (每人限参团 N 次): participations in the campaign, i.e. the
 * user's seats in open groups plus those in completed groups. A group that
 * failed, or a seat the user left or let expire, gives its participation
 * back. That is the user's held + sold.
 *
 * AUTO matching is O(log n) in the open groups, whatever the number of the
 * user's own groups: open groups that AUTO may pick sit in one
 * order-statistic tree per member count, and a bitmap says which counts are
 * non-empty. The fullest bucket with a group the user is not in wins; the
 * earliest deadline (then opening order) breaks ties. Groups found too
 * close to their deadline are dropped from matching for good (time only
 * moves forward), so each costs one removal over its whole life. A join
 * moves its group to the next bucket; its members' trees change only for
 * users in more than a few groups (see matching, below). */
#include <stdlib.h>
#include <string.h>

#include "engine_int.h"
#include "hash.h"
#include "xalloc.h"

/* ---- group slots and ids ---- */

/* Keyed ids carry 24 bits of generation (ids.c); the unkeyed ones of
 * before carried 32. */
static uint32_t id_gen(const pt_group *g) { return g->era ? g->gen & 0xffffffu : g->gen; }

uint64_t pt__group_id(pt_engine *e, const pt_group *g) {
  if (!g) return 0;
  return pt__id_seal(e, g->era, (uint64_t)id_gen(g) << 32 | ((uint64_t)g->slot + 1), PT_ID_GROUP);
}

pt_group *pt__group_of(const pt_engine *e, const pt_hold *h) {
  pt_group *g = h->group < e->ngroups ? e->groups[h->group] : NULL;
  return g && g->camp == hold_camp(e, h) ? g : NULL;
}

static pt_group *group_lookup(pt_engine *e, const pt_campaign *c, uint64_t id) {
  uint64_t inner;
  unsigned era4;
  for (unsigned cur = 0; pt__id_next(e, id, &cur, &inner, &era4);) {
    uint64_t s = inner & 0xffffffffu;
    if (s == 0 || s > e->ngroups) continue;
    pt_group *g = e->groups[s - 1];
    if (g && g->era == era4 && id_gen(g) == (uint32_t)(inner >> 32) && g->camp == c) return g;
  }
  return NULL;
}

static pt_group *group_new(pt_engine *e, pt_campaign *c, int64_t now) {
  uint32_t slot;
  if (e->ngroup_free) {
    slot = e->group_free[--e->ngroup_free];
  } else {
    if (e->ngroups == e->groups_cap) {
      e->groups_cap = e->groups_cap ? e->groups_cap * 2 : 64;
      e->groups = pt_xrealloc(e->groups, e->groups_cap * sizeof(*e->groups));
      e->group_gen = pt_xrealloc(e->group_gen, e->groups_cap * sizeof(*e->group_gen));
      e->group_free = pt_xrealloc(e->group_free, e->groups_cap * sizeof(*e->group_free));
    }
    slot = e->ngroups++;
    e->group_gen[slot] = 0;
  }
  pt_group *g = pt_xcalloc(1, sizeof(*g) + c->group_size * sizeof(uint32_t));
  g->camp = c;
  g->slot = slot;
  g->gen = ++e->group_gen[slot];
  if (g->gen == 0) g->gen = e->group_gen[slot] = 1;
  g->era = e->id_era & 15;
  g->opened_ms = now;
  g->deadline_ms = g->at_ms = now + c->group_ttl_ms;
  g->bnode = PT_ONIL;
  g->seq = c->group_seq++;
  g->state = PT_GS_OPEN;
  g->matchable = true;
  e->groups[slot] = g;
  /* same ttl, clock never back: deadlines arrive in order */
  g->prev = c->groupq.tail;
  if (c->groupq.tail) c->groupq.tail->next = g;
  else c->groupq.head = g;
  c->groupq.tail = g;
  c->groupq.n++;
  e->st.open_groups++;
  return g;
}

static void glist_remove(pt_glist *l, pt_group *g) {
  if (g->prev) g->prev->next = g->next;
  else l->head = g->next;
  if (g->next) g->next->prev = g->prev;
  else l->tail = g->prev;
  g->prev = g->next = NULL;
  l->n--;
}

int64_t pt__group_next(const pt_campaign *c) {
  int64_t d = c->groupq.head ? c->groupq.head->at_ms : PT_NEVER;
  if (c->gretireq.head && c->gretireq.head->at_ms < d) d = c->gretireq.head->at_ms;
  return d;
}

void pt__group_free_all(pt_engine *e) {
  for (uint32_t i = 0; i < e->ngroups; i++) free(e->groups[i]);
  free(e->groups);
  free(e->group_gen);
  free(e->group_free);
}

/* ---- matching ----
 * Bucket k holds the open groups with k members that AUTO may pick, as a
 * tree keyed by opening order (= deadline order: one ttl per campaign, a
 * clock that never goes back). A group is in a bucket exactly when it is
 * open, matchable and neither empty nor full.
 *
 * Each user has a tree of the bucketed groups they sit in. Most users sit
 * in one or two: while a user's tree holds at most LIGHT_MAX groups it is
 * keyed by opening order alone, so a group changing bucket leaves its
 * members' trees alone, and AUTO walks bucket k from its front past the few
 * groups the user is in. Past LIGHT_MAX it is keyed (k, opening order):
 * the user's groups of one bucket are a contiguous run of it, and in bucket
 * k the answer is the first group whose rank differs from its place in the
 * user's run, a binary search however many groups the user sits in. A tree
 * changes keying as it crosses LIGHT_MAX: O(LIGHT_MAX log) once. A user
 * in exactly one such group, the usual case, has no tree: the root field
 * names the group (ONE | slot), which costs no node to make or free. */

#define LIGHT_MAX 8
#define SEQ_BITS 48
#define SEQ_MASK ((UINT64_C(1) << SEQ_BITS) - 1)
static inline uint64_t mkey(uint32_t k, uint64_t seq) { return (uint64_t)k << SEQ_BITS | seq; }
#define ONE 0x80000000u /* node indices and group slots stay below it */
_Static_assert(LIGHT_MAX >= 2, "a tree holds two groups or more");
static inline uint32_t ngroups(const pt_opool *p, const pt_user *u) {
  return u->groups == PT_ONIL ? 0 : (u->groups & ONE) ? 1 : p->v[u->groups].size;
}
static inline bool heavy(const pt_opool *p, const pt_user *u) { return ngroups(p, u) > LIGHT_MAX; }
/* Does light u sit in the group of bucket node b? */
static inline bool light_sits(const pt_opool *p, const pt_user *u, const pt_onode *b) {
  return (u->groups & ONE) ? (u->groups & ~ONE) == b->val : pt_otree_has(p, u->groups, b->key);
}

/* Re-keys u's tree for the other keying; each node names its group, whose
 * count of heavy members changes with it. */
static void user_rekey(pt_engine *e, pt_user *u, bool to_heavy) {
  pt_opool *p = &e->onodes;
  uint32_t nodes[LIGHT_MAX + 1], n = pt_otree_size(p, u->groups);
  for (uint32_t i = 0; i < n; i++) nodes[i] = pt_otree_select(p, u->groups, i);
  u->groups = PT_ONIL;
  for (uint32_t i = 0; i < n; i++) {
    pt_onode *o = &p->v[nodes[i]];
    pt_group *g = e->groups[o->val];
    g->nheavy = (uint8_t)(g->nheavy + (to_heavy ? 1 : -1));
    o->l = o->r = PT_ONIL;
    o->size = 1;
    o->key = to_heavy ? mkey(g->members, g->seq) : g->seq;
    pt_otree_insert(p, &u->groups, nodes[i]);
  }
}

/* u now sits in bucketed group g (in the bucket of its member count). */
static void user_add(pt_engine *e, pt_user *u, pt_group *g) {
  pt_opool *p = &e->onodes;
  uint32_t n = ngroups(p, u);
  if (n == 0) {
    u->groups = ONE | g->slot;
    return;
  }
  if (u->groups & ONE) { /* its one group gets a node */
    const pt_group *o = e->groups[u->groups & ~ONE];
    u->groups = PT_ONIL;
    pt_otree_insert(p, &u->groups, pt_onode_new(p, o->seq, o->slot));
  }
  if (n == LIGHT_MAX) user_rekey(e, u, true);
  uint32_t node = pt_onode_new(p, n >= LIGHT_MAX ? mkey(g->members, g->seq) : g->seq, g->slot);
  pt_otree_insert(p, &u->groups, node);
  if (n >= LIGHT_MAX) g->nheavy++;
}

/* g, which was in bucket k, no longer counts for u. */
static void user_del(pt_engine *e, pt_user *u, pt_group *g, uint32_t k) {
  pt_opool *p = &e->onodes;
  if (u->groups & ONE) { /* g was its one group */
    u->groups = PT_ONIL;
    return;
  }
  bool hv = heavy(p, u);
  pt_onode_release(p, pt_otree_remove(p, &u->groups, hv ? mkey(k, g->seq) : g->seq));
  if (hv) g->nheavy--;
  if (hv && !heavy(p, u)) user_rekey(e, u, false);
}

/* g went from bucket `from` to bucket `to`. */
static void user_move(pt_engine *e, pt_user *u, const pt_group *g, uint32_t from, uint32_t to) {
  pt_opool *p = &e->onodes;
  if (!heavy(p, u)) return;
  uint32_t node = pt_otree_remove(p, &u->groups, mkey(from, g->seq));
  p->v[node].key = mkey(to, g->seq);
  pt_otree_insert(p, &u->groups, node);
}

/* Takes g out of its bucket, leaving its members' trees as they are for
 * match_settle; returns the bucket, 0 if g was in none. */
static uint32_t match_unbucket(pt_engine *e, pt_campaign *c, pt_group *g) {
  if (g->bnode == PT_ONIL) return 0;
  pt_opool *p = &e->onodes;
  uint32_t k = g->members;
  pt_onode_release(p, pt_otree_remove(p, &c->buckets[k], g->seq));
  g->bnode = PT_ONIL;
  if (c->buckets[k] == PT_ONIL) c->bucket_bits &= ~(1ull << k);
  return k;
}

static void match_bucket(pt_engine *e, pt_campaign *c, pt_group *g) {
  pt_opool *p = &e->onodes;
  uint32_t k = g->members;
  g->bnode = pt_onode_new(p, g->seq, g->slot);
  pt_otree_insert(p, &c->buckets[k], g->bnode);
  c->bucket_bits |= 1ull << k;
}

/* g into its bucket and its members' trees, no questions asked. */
static void match_enter(pt_engine *e, pt_campaign *c, pt_group *g) {
  match_bucket(e, c, g);
  g->nheavy = 0;
  for (uint32_t i = 0; i < g->members; i++) user_add(e, hold_user(e, hold_at(e, g->seats[i])), g);
}

/* g's members out of their trees (g was in bucket `was`); `except` has no node. */
static void members_del(pt_engine *e, pt_group *g, uint32_t was, const pt_user *except) {
  for (uint32_t i = 0; i < g->members; i++) {
    pt_user *u = hold_user(e, hold_at(e, g->seats[i]));
    if (u != except) user_del(e, u, g, was);
  }
}

/* g out of matching altogether. */
static void match_remove(pt_engine *e, pt_campaign *c, pt_group *g) {
  uint32_t was = match_unbucket(e, c, g);
  if (was) members_del(e, g, was, NULL);
}

/* May AUTO pick g as it is now? A group too close to its deadline drops out
 * for good. */
static bool match_eligible(const pt_campaign *c, pt_group *g, int64_t now) {
  if (g->state != PT_GS_OPEN || !g->matchable || g->members == 0 || g->members >= c->group_size)
    return false;
  if (g->deadline_ms < now + c->match_margin_ms) {
    g->matchable = false;
    return false;
  }
  return true;
}

/* After g's seats changed by one (`joined` took a seat, or `left` gave one
 * up), g having been taken out of bucket `was` (0: none): g where it now
 * belongs, and its members' trees to match. */
static void match_settle(pt_engine *e, pt_campaign *c, pt_group *g, int64_t now, uint32_t was,
                         pt_user *joined, pt_user *left) {
  bool in = match_eligible(c, g, now);
  if (left && was) user_del(e, left, g, was);
  if (!was) {
    if (in) match_enter(e, c, g);
    return;
  }
  if (!in) return members_del(e, g, was, joined);
  match_bucket(e, c, g);
  for (uint32_t i = 0; g->nheavy && i < g->members; i++) { /* only heavy trees know the bucket */
    pt_user *u = hold_user(e, hold_at(e, g->seats[i]));
    if (u != joined) user_move(e, u, g, was, g->members);
  }
  if (joined) user_add(e, joined, g);
}

/* The matching trees anew from the groups (a restored snapshot). */
void pt__match_rebuild(pt_engine *e) {
  pt_opool_free(&e->onodes);
  pt_opool_init(&e->onodes);
  for (uint32_t i = 0; i < e->ncamps; i++) { /* every user of a group buy: in no tree yet */
    pt_campaign *c = e->camps[i];
    if (c->kind != PT_GROUP_BUY) continue;
    for (uint32_t k = 0; k <= c->group_size; k++) c->buckets[k] = PT_ONIL;
    c->bucket_bits = 0;
    for (size_t j = 0; j < pt_map_positions(&c->users); j++) {
      const pt_map_slot *s = pt_map_entry(&c->users, j);
      if (s) ((pt_user *)pt_store_at(&e->users, s->ref))->groups = PT_ONIL;
    }
  }
  for (uint32_t s = 0; s < e->ngroups; s++)
    if (e->groups[s]) e->groups[s]->bnode = PT_ONIL;
  for (uint32_t s = 0; s < e->ngroups; s++) {
    pt_group *g = e->groups[s];
    if (g && g->state == PT_GS_OPEN && g->matchable && g->members > 0 &&
        g->members < g->camp->group_size)
      match_enter(e, g->camp, g);
  }
}

static bool is_member(const pt_engine *e, const pt_group *g, bool known, uint32_t uref) {
  if (!known) return false;
  for (uint32_t i = 0; i < g->members; i++)
    if (hold_at(e, g->seats[i])->user == uref) return true;
  return false;
}

/* The open group closest to completion that u may join, or NULL. */
static pt_group *match_auto(pt_engine *e, pt_campaign *c, const pt_user *u, int64_t now) {
  pt_opool *p = &e->onodes;
  for (uint64_t bits = c->bucket_bits; bits;) {
    uint32_t k = 63u - (uint32_t)__builtin_clzll(bits);
    bits &= ~(1ull << k);
    for (;;) { /* groups about to expire leave matching, for good */
      uint32_t first = pt_otree_select(p, c->buckets[k], 0);
      if (first == PT_ONIL) break;
      pt_group *g = e->groups[p->v[first].val];
      if (g->deadline_ms >= now + c->match_margin_ms) break;
      match_remove(e, c, g);
      g->matchable = false;
    }
    uint32_t root = c->buckets[k], n = pt_otree_size(p, root);
    if (n == 0) continue;
    uint32_t j = 0; /* rank in bucket k of the first group u is not in */
    if (u && u->groups != PT_ONIL && !heavy(p, u)) {
      while (j < n && light_sits(p, u, &p->v[pt_otree_select(p, root, j)])) j++;
      if (j == n) continue; /* u sits in every group of this bucket */
    } else if (u && u->groups != PT_ONIL) {
      uint32_t lo = pt_otree_rank(p, u->groups, mkey(k, 0));
      uint32_t m = pt_otree_rank(p, u->groups, mkey(k + 1, 0)) - lo;
      if (m >= n) continue; /* u sits in every group of this bucket */
      uint32_t a = 0, b = m;
      while (a < b) { /* u's i-th group here has rank i until the first gap */
        uint32_t mid = a + (b - a) / 2;
        uint64_t seq = p->v[pt_otree_select(p, u->groups, lo + mid)].key & SEQ_MASK;
        if (pt_otree_rank(p, root, seq) > mid)
          b = mid;
        else
          a = mid + 1;
      }
      j = a;
    }
    return e->groups[p->v[pt_otree_select(p, root, j)].val];
  }
  return NULL;
}

/* ---- seats ---- */

static void seat_retire(pt_engine *e, pt_campaign *c, int64_t now, uint32_t slot,
                        pt_hold_state to) {
  pt_hold *h = hold_at(e, slot);
  pt_bytes uid = user_id(hold_user(e, h));
  hold_set_state(h, to);
  pt__hold_retire(e, c, now, slot);
  pt__emit_mut(e, PT_MUT_HOLD, false, c, uid, hold_rid(e, slot, h));
  pt__emit_mut(e, PT_MUT_USER, false, c, uid, 0);
}

/* Gives a seat's unit back to stock; the seat leaves its holds queue. */
static void seat_release_unit(pt_engine *e, pt_campaign *c, uint32_t slot) {
  pt_hold *h = hold_at(e, slot);
  if (hold_state(h) == PT_HELD) {
    pt__q_remove(e, &c->holdq, slot);
    e->st.live_holds--;
  }
  c->held--;
  c->available++;
  hold_user(e, h)->held--;
}

static void group_end(pt_engine *e, pt_campaign *c, pt_group *g, int64_t now, pt_group_state st) {
  match_remove(e, c, g);
  glist_remove(&c->groupq, g);
  g->state = (uint8_t)st;
  int64_t at = now + e->cfg.idem_window_ms;
  if (c->gretireq.tail && c->gretireq.tail->at_ms > at) at = c->gretireq.tail->at_ms;
  g->at_ms = at;
  g->prev = c->gretireq.tail;
  if (c->gretireq.tail) c->gretireq.tail->next = g;
  else c->gretireq.head = g;
  c->gretireq.tail = g;
  c->gretireq.n++;
  e->st.open_groups--;
  pt__emit_mut(e, PT_MUT_CAMPAIGN, false, c, camp_id(c), 0);
}

static void emit_group_event(pt_engine *e, pt_event_type t, int64_t now, pt_campaign *c,
                             pt_group *g, const uint32_t *seats, uint32_t n) {
  pt_bytes members[PT_GROUP_MAX];
  for (uint32_t i = 0; i < n; i++) members[i] = user_id(hold_user(e, hold_at(e, seats[i])));
  pt_event ev = {.type = t, .at_ms = now, .campaign_id = camp_id(c),
                 .user_id = n ? members[0] : (pt_bytes){0}, /* the leader */
                 .quantity = n, .group_id = pt__group_id(e, g), .simulated = g->simulated,
                 .n_members = n, .members = members};
  pt__emit(e, &ev);
}

/* 成团: paid seats become sold; unpaid ones (simulated completion only)
 * give their unit back. */
static void group_complete(pt_engine *e, pt_campaign *c, pt_group *g, int64_t now, bool simulated) {
  uint32_t paid[PT_GROUP_MAX], np = 0;
  g->simulated = simulated;
  for (uint32_t i = 0; i < g->members; i++) {
    uint32_t slot = g->seats[i];
    pt_hold *h = hold_at(e, slot);
    if (hold_state(h) == PT_PAID) {
      pt_user *u = hold_user(e, h);
      c->held--;
      c->sold++;
      u->held--;
      u->sold++;
      seat_retire(e, c, now, slot, PT_SOLD);
      paid[np++] = slot;
    } else {
      seat_release_unit(e, c, slot);
      seat_retire(e, c, now, slot, PT_EXPIRED_HOLD);
    }
  }
  group_end(e, c, g, now, PT_GS_COMPLETED);
  e->st.groups_completed++;
  emit_group_event(e, PT_EV_GROUP_COMPLETED, now, c, g, paid, np);
}

static void group_fail(pt_engine *e, pt_campaign *c, pt_group *g, int64_t now) {
  for (uint32_t i = 0; i < g->members; i++) {
    seat_release_unit(e, c, g->seats[i]);
    seat_retire(e, c, now, g->seats[i], PT_SEAT_FAILED);
  }
  group_end(e, c, g, now, PT_GS_FAILED);
  e->st.groups_failed++;
  emit_group_event(e, PT_EV_GROUP_FAILED, now, c, g, g->seats, g->members);
}

/* A seat leaves an open group (cancel or expiry): its place and unit are
 * freed; the earliest remaining member leads; an empty group is closed. */
static void seat_leave(pt_engine *e, pt_campaign *c, pt_group *g, uint32_t slot, int64_t now,
                       pt_hold_state to) {
  uint32_t was = match_unbucket(e, c, g);
  uint32_t i = 0;
  while (i < g->members && g->seats[i] != slot) i++;
  memmove(&g->seats[i], &g->seats[i + 1], (g->members - i - 1) * sizeof(uint32_t));
  g->members--;
  match_settle(e, c, g, now, was, NULL, hold_user(e, hold_at(e, slot)));
  if (hold_state(hold_at(e, slot)) == PT_PAID) g->paid--;
  seat_release_unit(e, c, slot);
  seat_retire(e, c, now, slot, to);
  if (g->members == 0) group_end(e, c, g, now, PT_GS_CLOSED);
}

static void seat_expire(pt_engine *e, pt_campaign *c, uint32_t slot, int64_t now) {
  pt_hold *h = hold_at(e, slot);
  pt_group *g = pt__group_of(e, h);
  int64_t deadline = h->at_ms;
  seat_leave(e, c, g, slot, now, PT_EXPIRED_HOLD);
  e->st.expiries++;
  pt_event ev = {.type = PT_EV_SEAT_EXPIRED, .at_ms = now, .campaign_id = camp_id(c),
                 .user_id = user_id(hold_user(e, h)), .reservation_id = hold_rid(e, slot, h),
                 .quantity = 1, .expires_ms = deadline, .group_id = pt__group_id(e, g)};
  pt__emit(e, &ev);
}

static void group_deadline(pt_engine *e, pt_campaign *c, pt_group *g, int64_t now) {
  if (c->simulate_min_paid && g->paid >= c->simulate_min_paid)
    group_complete(e, c, g, now, true);
  else
    group_fail(e, c, g, now);
}

/* What a bounded advance (pt_engine_advance_some) left due for g and, if
 * slot is not PT_NIL, for that seat of it: run now, in run_due's order, so
 * that a decision about them sees them as their deadlines left them. */
static void settle_overdue(pt_engine *e, pt_campaign *c, pt_group *g, uint32_t slot, int64_t now) {
  for (; g;) {
    pt_hold *h = slot != PT_NIL ? hold_at(e, slot) : NULL;
    bool gd = g->state == PT_GS_OPEN && g->at_ms <= now; /* an open group's at_ms: its deadline */
    bool sd = h && hold_state(h) == PT_HELD && h->at_ms <= now;
    if (!gd && !sd) return;
    if (gd && (!sd || g->at_ms <= h->at_ms))
      group_deadline(e, c, g, now);
    else
      seat_expire(e, c, slot, now);
  }
}

void pt__group_run_due(pt_engine *e, pt_campaign *c, int64_t now) {
  /* seat expiries and group deadlines, in time order */
  for (; e->due_left; e->due_left--) {
    int64_t ts = q_head_at(e, &c->holdq);
    int64_t tg = c->groupq.head ? c->groupq.head->at_ms : PT_NEVER;
    if (ts > now && tg > now) break;
    if (tg <= ts)
      group_deadline(e, c, c->groupq.head, now);
    else
      seat_expire(e, c, c->holdq.head, now);
  }
}

void pt__group_retire_all(pt_engine *e, pt_campaign *c) {
  while (c->gretireq.head) {
    pt_group *g = c->gretireq.head;
    glist_remove(&c->gretireq, g);
    e->groups[g->slot] = NULL;
    e->group_free[e->ngroup_free++] = g->slot;
    free(g);
  }
}

void pt__group_retire_due(pt_engine *e, pt_campaign *c, int64_t now) {
  for (; e->due_left && c->gretireq.head && c->gretireq.head->at_ms <= now; e->due_left--) {
    pt_group *g = c->gretireq.head;
    glist_remove(&c->gretireq, g);
    e->groups[g->slot] = NULL;
    e->group_free[e->ngroup_free++] = g->slot;
    free(g);
  }
}

/* ---- operations ---- */

static void seat_out(pt_engine *e, const pt_group *g, uint32_t slot, pt_result *r) {
  pt_hold *h = hold_at(e, slot);
  r->reservation_id = hold_rid(e, slot, h);
  r->quantity = 1;
  r->state = hold_state(h);
  r->expires_ms = r->state == PT_HELD ? h->at_ms : 0;
  r->group_id = pt__group_id(e, g);
  if (g) r->group_state = (pt_group_state)g->state; /* else: a finished seat outlived its group */
}

void pt_join(pt_engine *e, int64_t now, pt_bytes rid, pt_bytes cid, pt_bytes uid,
             pt_join_mode mode, uint64_t gid, bool new_user, pt_result *r) {
  now = eng_now(e, now);
  e->st.joins++;
  uint64_t a = (uint64_t)mode << 1 | (new_user ? 1 : 0);
  uint32_t fp = pt__idem_fingerprint(OP_JOIN, a, mode == PT_JOIN_GROUP ? gid : 0, uid);
  pt_idem_key k;
  pt_campaign *c = pt__op_begin(e, now, rid, cid, OP_JOIN, fp, r, &k);
  if (!c) return;
  if (c->kind != PT_GROUP_BUY)
    return result_set(r, PT_INVALID_ARGUMENT, "a flash-sale campaign: use reserve");
  if (!pt_id_valid(uid)) return result_set(r, PT_INVALID_ARGUMENT, "user_id must be 1..64 bytes");
  if (mode != PT_JOIN_OPEN && mode != PT_JOIN_GROUP && mode != PT_JOIN_AUTO)
    return result_set(r, PT_INVALID_ARGUMENT, "mode must be OPEN, JOIN or AUTO");
  if (now < c->start_ms) return result_set(r, PT_NOT_STARTED, "campaign has not started");
  pt_status st = PT_OK;
  const char *why = NULL;
  uint64_t uh = pt_hash(e->cfg.hash_seed, uid.p, uid.len);
  uint32_t uref = 0;
  pt_user *u = pt__user_find(c, uid, uh, &uref);
  pt_group *g = NULL;
  if (camp_ended(c, now)) {
    st = PT_ENDED, why = "campaign has ended";
  } else if (c->per_user_limit && u && u->held + u->sold + 1 > c->per_user_limit) {
    st = PT_LIMIT_EXCEEDED, why = "per-user group limit reached";
  } else if (mode == PT_JOIN_GROUP) {
    g = group_lookup(e, c, gid);
    if (g) settle_overdue(e, c, g, PT_NIL, now);
    if (!g) st = PT_NOT_FOUND, why = "no such group";
    else if (g->state != PT_GS_OPEN) st = PT_GROUP_CLOSED, why = "group is no longer open";
    else if (g->members >= c->group_size) st = PT_GROUP_FULL, why = "group is full";
    else if (is_member(e, g, u != NULL, uref)) st = PT_ALREADY_MEMBER, why = "already in this group";
    else if (c->new_users_only && !new_user)
      st = PT_NOT_NEW_USER, why = "this group buy admits new users only";
  } else if (mode == PT_JOIN_AUTO && (!c->new_users_only || new_user)) {
    g = match_auto(e, c, u, now); /* NULL: open a new one */
  }
  if (st == PT_OK && c->available < 1) st = PT_SOLD_OUT, why = "sold out";
  if (st == PT_OK && !u && c->users.count >= e->cfg.limits.users)
    st = PT_RESOURCE_EXHAUSTED, why = "the campaign has as many users as it may (max_users_per_campaign)";
  if (st != PT_OK) {
    result_set(r, st, why);
    if (st == PT_ALREADY_MEMBER || st == PT_GROUP_FULL || st == PT_GROUP_CLOSED)
      r->group_id = gid;
    return pt__op_end(e, c, now, &k, OP_JOIN, fp, r);
  }
  if (!g) {
    g = group_new(e, c, now);
    r->opened = true;
  }
  uint32_t was = match_unbucket(e, c, g);
  if (!u) u = pt__user_get(e, c, uid, uh, &uref);
  uint32_t slot = pt__hold_alloc(e);
  pt_hold *h = hold_at(e, slot);
  h->user = uref;
  u->refs++;
  h->camp = c->index;
  h->group = g->slot;
  hold_set_state(h, PT_HELD);
  h->at_ms = now + c->hold_ms;
  pt__q_push_sorted(e, &c->holdq, slot);
  g->seats[g->members++] = slot;
  c->available--;
  c->held++;
  u->held++;
  e->st.live_holds++;
  match_settle(e, c, g, now, was, u, NULL);
  result_set(r, PT_OK, r->opened ? "seated: opened a new group" : "seated");
  seat_out(e, g, slot, r);
  pt__emit_mut(e, PT_MUT_HOLD, false, c, uid, r->reservation_id);
  pt__emit_mut(e, PT_MUT_USER, false, c, uid, 0);
  pt__emit_mut(e, PT_MUT_CAMPAIGN, false, c, cid, 0);
  pt__op_end(e, c, now, &k, OP_JOIN, fp, r);
}

static pt_hold *seat_lookup(pt_engine *e, pt_campaign *c, uint64_t resid, pt_bytes uid, uint32_t *slot,
                            pt_group **g, pt_result *r) {
  pt_hold *h = pt__hold_lookup(e, c, resid, uid, slot);
  if (!h) {
    result_set(r, PT_NOT_FOUND, "no such seat");
    return NULL;
  }
  *g = pt__group_of(e, h);
  seat_out(e, *g, *slot, r);
  return h;
}

/* Answers for seats past the point of no return. */
static void seat_final_state(pt_hold *h, bool confirm, pt_result *r) {
  switch (hold_state(h)) {
  case PT_PAID: result_set(r, PT_CONFLICT, confirm ? "seat is already paid" : "seat is paid: the group is not complete yet"); break;
  case PT_SOLD: result_set(r, PT_CONFLICT, "group is complete: the seat is sold"); break;
  case PT_RELEASED: result_set(r, PT_CONFLICT, "seat was cancelled"); break;
  case PT_EXPIRED_HOLD: result_set(r, PT_EXPIRED, "seat expired"); break;
  case PT_SEAT_FAILED: result_set(r, PT_GROUP_CLOSED, "group failed"); break;
  default: result_set(r, PT_INTERNAL, "seat in unknown state"); break;
  }
}

void pt__group_confirm(pt_engine *e, pt_campaign *c, int64_t now, uint64_t resid, pt_bytes uid,
                       pt_result *r) {
  uint32_t slot;
  pt_group *g;
  pt_hold *h = seat_lookup(e, c, resid, uid, &slot, &g, r);
  if (!h) return;
  settle_overdue(e, c, g, slot, now);
  seat_out(e, g, slot, r);
  if (!g || hold_state(h) != PT_HELD) return seat_final_state(h, true, r);
  pt__q_remove(e, &c->holdq, slot);
  e->st.live_holds--;
  hold_set_state(h, PT_PAID);
  g->paid++;
  pt__emit_mut(e, PT_MUT_HOLD, false, c, user_id(hold_user(e, h)), resid);
  if (g->paid == c->group_size) /* 成团 the moment the last seat is paid */
    group_complete(e, c, g, now, false);
  result_set(r, PT_OK, g->state == PT_GS_COMPLETED ? "paid: the group is complete" : "paid");
  seat_out(e, g, slot, r);
}

void pt__group_cancel(pt_engine *e, pt_campaign *c, int64_t now, uint64_t resid, pt_bytes uid,
                      pt_result *r) {
  uint32_t slot;
  pt_group *g;
  pt_hold *h = seat_lookup(e, c, resid, uid, &slot, &g, r);
  if (!h) return;
  settle_overdue(e, c, g, slot, now);
  seat_out(e, g, slot, r);
  pt_hold_state s = hold_state(h);
  if ((s != PT_HELD && s != PT_PAID) || !g || g->state != PT_GS_OPEN)
    return seat_final_state(h, false, r);
  seat_leave(e, c, g, slot, now, PT_RELEASED);
  result_set(r, PT_OK, g->state == PT_GS_CLOSED ? "left: the group is closed" : "left the group");
  seat_out(e, g, slot, r);
}

pt_status pt_group_get(pt_engine *e, pt_bytes cid, uint64_t gid, pt_group_info *o) {
  memset(o, 0, sizeof(*o));
  pt_campaign *c = pt_campaign_find(e, cid);
  if (!c) return pt_id_valid(cid) ? PT_NOT_FOUND : PT_INVALID_ARGUMENT;
  pt_group *g = group_lookup(e, c, gid);
  if (!g) return PT_NOT_FOUND;
  o->group_id = gid;
  o->campaign_id = camp_id(c);
  o->state = (pt_group_state)g->state;
  o->size = c->group_size;
  o->members = g->members;
  o->paid = g->paid;
  o->opened_ms = g->opened_ms;
  o->deadline_ms = g->deadline_ms;
  o->simulated = g->simulated;
  uint32_t n = 0;
  for (uint32_t i = 0; i < g->members; i++) {
    pt_hold *h = hold_at(e, g->seats[i]);
    if (hold_state(h) == PT_HOLD_FREE || pt__group_of(e, h) != g) continue; /* forgotten */
    o->member[n++] = (pt_member_info){.user_id = user_id(hold_user(e, h)), .seat_id = hold_rid(e, g->seats[i], h),
                                    .state = hold_state(h),
                                    .expires_ms = hold_state(h) == PT_HELD ? h->at_ms : 0};
  }
  o->members = n;
  return PT_OK;
}
