/* Engine lifecycle, the deadline heap over campaigns, time advance, effect
 * emission and the status table. */
#include <stdlib.h>
#include <string.h>

#include "engine_int.h"
#include "hash.h"
#include "xalloc.h"

pt_engine *pt_engine_new(const pt_engine_config *cfg) {
  pt_engine *e = pt_xcalloc(1, sizeof(*e));
  e->cfg = *cfg;
  if (e->cfg.idem_window_ms <= 0) e->cfg.idem_window_ms = 15 * 60 * 1000;
  if (e->cfg.max_remembered == 0) e->cfg.max_remembered = PT_DEFAULT_MAX_REMEMBERED;
  pt_engine_set_limits(e, &cfg->limits);
  e->free_head = PT_NIL;
  e->due_left = UINT64_MAX;
  for (size_t i = 0; i <= PT_USER_UNITS; i++) e->user_free[i] = PT_NIL;
  pt_store_init(&e->users);
  pt_store_init(&e->camp_store);
  e->camp_store.align8 = 1;
  pt_map_init(&e->camp_map, &e->camp_store, offsetof(pt_campaign, klen));
  pt_opool_init(&e->onodes);
  pt__idem_init(e);
  return e;
}

void pt_engine_free(pt_engine *e) {
  if (!e) return;
  for (uint32_t i = 0; i < e->ncamps; i++) {
    pt_campaign *c = e->camps[i];
    pt_map_destroy(&c->users);
    free(c->buckets);
  }
  pt__idem_free_all(e);
  pt__group_free_all(e);
  pt_opool_free(&e->onodes);
  pt_store_free(&e->users);
  pt_store_free(&e->camp_store);
  for (uint32_t p = 0; p < e->npages; p++) pt_big_free(e->pages[p], PT_HOLD_PAGE_BYTES);
  free(e->pages);
  free(e->camps);
  free(e->heap);
  pt_map_destroy(&e->camp_map);
  free(e);
}

void pt_engine_set_sink(pt_engine *e, const pt_sink *sink) { e->cfg.sink = *sink; }

void pt_engine_set_idem_window(pt_engine *e, int64_t ms) {
  if (ms > 0) e->cfg.idem_window_ms = ms;
}

/* ---- deadline heap: campaigns ordered by their earliest due work ---- */

static void heap_swap(pt_engine *e, uint32_t a, uint32_t b) {
  pt_campaign *t = e->heap[a];
  e->heap[a] = e->heap[b];
  e->heap[b] = t;
  e->heap[a]->heap_pos = a;
  e->heap[b]->heap_pos = b;
}

/* Ties go to the older campaign, so the order due work runs in (and so the
 * events' sequence numbers) does not depend on the heap's history: a
 * rebuilt heap (snapshot restore) runs things in the same order. */
static inline bool before(const pt_campaign *a, const pt_campaign *b) {
  return a->deadline < b->deadline || (a->deadline == b->deadline && a->index < b->index);
}

static void heap_fix(pt_engine *e, uint32_t i) {
  while (i > 0 && before(e->heap[i], e->heap[(i - 1) / 2])) {
    heap_swap(e, i, (i - 1) / 2);
    i = (i - 1) / 2;
  }
  for (;;) {
    uint32_t l = 2 * i + 1, r = l + 1, m = i;
    if (l < e->heap_n && before(e->heap[l], e->heap[m])) m = l;
    if (r < e->heap_n && before(e->heap[r], e->heap[m])) m = r;
    if (m == i) return;
    heap_swap(e, i, m);
    i = m;
  }
}

void pt__camp_heap_add(pt_engine *e, pt_campaign *c) {
  e->heap = pt_xrealloc(e->heap, (e->heap_n + 1) * sizeof(*e->heap));
  c->heap_pos = e->heap_n;
  e->heap[e->heap_n++] = c;
  heap_fix(e, c->heap_pos);
}

/* When c retires: its end plus the retention, once nothing of it is live
 * (holds to pay, a waitlist, open groups: they have deadlines of their
 * own, and it is looked at again after them). */
static int64_t retire_at(const pt_engine *e, const pt_campaign *c) {
  if (c->retired || c->end_ms == PT_NEVER || c->holdq.n || c->waitq.n || c->groupq.n) return PT_NEVER;
  uint64_t t = (uint64_t)c->end_ms + e->cfg.limits.retention_ms;
  return t >= (uint64_t)PT_NEVER ? PT_NEVER : (int64_t)t;
}

void pt__camp_reschedule(pt_engine *e, pt_campaign *c) {
  int64_t d = retire_at(e, c);
  int64_t h = q_head_at(e, &c->holdq);
  if (h < d) d = h;
  int64_t t = q_head_at(e, &c->retireq);
  if (t < d) d = t;
  if (c->waitq.n && c->end_ms < d) d = c->end_ms;
  t = pt__group_next(c);
  if (t < d) d = t;
  if (d != c->deadline) {
    c->deadline = d;
    heap_fix(e, c->heap_pos);
  }
}

void pt__camp_run_due(pt_engine *e, pt_campaign *c, int64_t now) {
  if (c->deadline > now) return;
  if (c->kind == PT_GROUP_BUY)
    pt__group_run_due(e, c, now);
  else
    pt__flash_run_due(e, c, now);
  pt__retire_due(e, c, now);
  if (c->kind == PT_GROUP_BUY) pt__group_retire_due(e, c, now);
  if (e->due_left && retire_at(e, c) <= now) {
    e->due_left--;
    pt__camp_retire(e, c);
  }
  pt__camp_reschedule(e, c);
}

int64_t pt_engine_next_deadline(const pt_engine *e) {
  int64_t d = e->heap_n ? e->heap[0]->deadline : PT_NEVER;
  int64_t t = pt__idem_next((pt_engine *)e);
  return t < d ? t : d;
}

void pt_engine_advance(pt_engine *e, int64_t now) { pt_engine_advance_some(e, now, PT_DUE_ALL); }

void pt_engine_advance_some(pt_engine *e, int64_t now, uint64_t budget) {
  now = eng_now(e, now);
  e->due_left = budget;
  /* camp_run_due leaves a campaign with a deadline after now unless the
   * budget ran out in it */
  while (e->due_left && e->heap_n && e->heap[0]->deadline <= now) pt__camp_run_due(e, e->heap[0], now);
  pt__idem_expire(e, now);
}

/* ---- effects ---- */

void pt__emit_mut(pt_engine *e, pt_mut_kind k, bool deleted, const pt_campaign *c,
              pt_bytes key, uint64_t rid) {
  e->changes++;
  if (!e->cfg.sink.mutation) return;
  pt_mutation m = {.kind = k, .deleted = deleted, .campaign = c, .key = key,
                   .reservation_id = rid};
  e->cfg.sink.mutation(e->cfg.sink.ctx, &m);
}

void pt__emit(pt_engine *e, pt_event *ev) {
  e->changes++;
  e->st.events++;
  ev->seq = ++e->event_seq;
  if (e->cfg.sink.event) e->cfg.sink.event(e->cfg.sink.ctx, ev);
}

void pt__emit_event(pt_engine *e, pt_event_type t, int64_t now, const pt_campaign *c,
                const pt_user *u, uint64_t rid, uint32_t qty, int64_t expires) {
  pt_event ev = {.type = t, .at_ms = now, .campaign_id = camp_id(c), .user_id = user_id(u),
                 .reservation_id = rid, .quantity = qty, .expires_ms = expires};
  pt__emit(e, &ev);
}

void pt_engine_prefetch(pt_engine *e, pt_bytes cid, pt_bytes uid, pt_bytes rid) {
  pt_campaign *c = pt_campaign_find(e, cid);
  if (!c) return;
  if (pt_id_valid(uid)) pt_map_prefetch(&c->users, pt_hash(e->cfg.hash_seed, uid.p, uid.len));
  if (pt_id_valid(rid)) pt__idem_prefetch(e, c, rid);
}

uint64_t pt_engine_changes(const pt_engine *e) { return e->changes; }

void pt_engine_stats_get(const pt_engine *e, pt_engine_stats *out) {
  *out = e->st;
  out->campaigns = e->ncamps;
}


const char *pt_status_name(pt_status s) {
  static const char *names[] = {
      [PT_OK] = "OK", [PT_NOT_STARTED] = "NOT_STARTED", [PT_ENDED] = "ENDED",
      [PT_SOLD_OUT] = "SOLD_OUT", [PT_WAITLISTED] = "WAITLISTED",
      [PT_LIMIT_EXCEEDED] = "LIMIT_EXCEEDED", [PT_GROUP_FULL] = "GROUP_FULL",
      [PT_GROUP_CLOSED] = "GROUP_CLOSED", [PT_ALREADY_MEMBER] = "ALREADY_MEMBER",
      [PT_NOT_FOUND] = "NOT_FOUND", [PT_INVALID_ARGUMENT] = "INVALID_ARGUMENT",
      [PT_UNAUTHENTICATED] = "UNAUTHENTICATED", [PT_NOT_LEADER] = "NOT_LEADER",
      [PT_UNAVAILABLE] = "UNAVAILABLE", [PT_OVERLOADED] = "OVERLOADED",
      [PT_EXPIRED] = "EXPIRED", [PT_CONFLICT] = "CONFLICT",
      [PT_ALREADY_EXISTS] = "ALREADY_EXISTS", [PT_NOT_NEW_USER] = "NOT_NEW_USER",
      [PT_INTERNAL] = "INTERNAL", [PT_PERMISSION_DENIED] = "PERMISSION_DENIED",
      [PT_RATE_LIMITED] = "RATE_LIMITED", [PT_RESOURCE_EXHAUSTED] = "RESOURCE_EXHAUSTED",
  };
  if ((unsigned)s < sizeof(names) / sizeof(names[0]) && names[s]) return names[s];
  return "STATUS_UNSPECIFIED";
}

pt_limits pt_limits_defaulted(pt_limits l) {
  if (!l.campaigns) l.campaigns = PT_DEFAULT_MAX_CAMPAIGNS;
  if (!l.waitlist) l.waitlist = PT_DEFAULT_MAX_WAITLIST;
  if (!l.users) l.users = PT_DEFAULT_MAX_USERS;
  if (!l.retention_ms) l.retention_ms = PT_DEFAULT_RETENTION_MS;
  if (l.retention_ms > (uint64_t)PT_TIME_MAX) l.retention_ms = (uint64_t)PT_TIME_MAX;
  return l;
}

void pt_engine_set_limits(pt_engine *e, const pt_limits *l) { e->cfg.limits = pt_limits_defaulted(*l); }

pt_limits pt_engine_limits(const pt_engine *e) { return e->cfg.limits; }
const pt_engine_config *pt_engine_settings(const pt_engine *e) { return &e->cfg; }
