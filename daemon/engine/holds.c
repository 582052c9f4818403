/* The reservation pool (pages of 64k fixed-size slots, a free list, ids that
 * carry a generation so a stale id never names a reused slot) and the
 * intrusive queues holds sit in. */
#include <string.h>

#include "engine_int.h"
#include "xalloc.h"

uint32_t pt__hold_alloc(pt_engine *e) {
  uint32_t slot;
  if (e->free_head != PT_NIL) { /* a slot used before: its generation moved on */
    slot = e->free_head;
    e->free_head = hold_at(e, slot)->next;
  } else {
    if (e->hold_hwm == e->nslots) {
      /* Grow by a page; pages never move, so pointers into them stay valid.
       * Zeroed; on a huge page where the kernel offers one (bigmem.h). */
      uint32_t p = e->npages++;
      e->pages = pt_xrealloc(e->pages, e->npages * sizeof(*e->pages));
      e->pages[p] = pt_big_alloc(PT_HOLD_PAGE_BYTES);
      e->nslots += PT_HOLD_PAGE;
    }
    slot = e->hold_hwm++; /* never used: generation 1 */
    hold_at(e, slot)->gen_state = 1u << 8;
  }
  pt_hold *h = hold_at(e, slot);
  h->gen_state |= (uint32_t)(e->id_era & 15) << 4; /* its id's era (ids.c) */
  h->prev = h->next = PT_NIL;
  return slot;
}

void pt__hold_free(pt_engine *e, uint32_t slot) {
  pt_hold *h = hold_at(e, slot);
  uint32_t gen = (h->gen_state >> 8) + 1;
  if (gen >= (1u << 24)) gen = 1; /* ids stay non-zero when it wraps */
  h->gen_state = gen << 8;
  h->user = 0;
  h->camp = 0;
  h->qty = 0;
  h->prev = PT_NIL;
  h->next = e->free_head;
  e->free_head = slot;
}

pt_hold *pt__hold_lookup(pt_engine *e, const pt_campaign *c, uint64_t rid, pt_bytes uid, uint32_t *slot) {
  uint64_t inner;
  unsigned era4;
  for (unsigned cur = 0; pt__id_next(e, rid, &cur, &inner, &era4);) {
    uint64_t s = inner & 0xffffffffu;
    if (s == 0 || s > e->hold_hwm) continue;
    pt_hold *h = hold_at(e, (uint32_t)(s - 1));
    if (hold_state(h) == PT_HOLD_FREE || (h->gen_state >> 8) != (inner >> 32) ||
        hold_era(h) != era4 || h->camp != c->index)
      continue;
    if (uid.len) { /* another user's hold is no hold of this one */
      pt_bytes owner = user_id(hold_user(e, h));
      if (owner.len != uid.len || memcmp(owner.p, uid.p, uid.len)) return NULL;
    }
    *slot = (uint32_t)(s - 1);
    return h;
  }
  return NULL;
}

void pt__q_push_back(pt_engine *e, pt_queue *q, uint32_t slot) {
  pt_hold *h = hold_at(e, slot);
  h->next = PT_NIL;
  h->prev = q->tail;
  if (q->tail != PT_NIL)
    hold_at(e, q->tail)->next = slot;
  else
    q->head = slot;
  q->tail = slot;
  q->n++;
}

/* Deadlines of one campaign's holds almost always arrive in order (same
 * window, clock never goes back), so this is O(1) but for a window that was
 * shortened, when it walks back from the tail. */
void pt__q_push_sorted(pt_engine *e, pt_queue *q, uint32_t slot) {
  pt_hold *h = hold_at(e, slot);
  uint32_t after = q->tail;
  while (after != PT_NIL && hold_at(e, after)->at_ms > h->at_ms)
    after = hold_at(e, after)->prev;
  if (after == q->tail) {
    pt__q_push_back(e, q, slot);
    return;
  }
  uint32_t before = after == PT_NIL ? q->head : hold_at(e, after)->next;
  h->prev = after;
  h->next = before;
  hold_at(e, before)->prev = slot;
  if (after != PT_NIL)
    hold_at(e, after)->next = slot;
  else
    q->head = slot;
  q->n++;
}

void pt__q_remove(pt_engine *e, pt_queue *q, uint32_t slot) {
  pt_hold *h = hold_at(e, slot);
  if (h->prev != PT_NIL)
    hold_at(e, h->prev)->next = h->next;
  else
    q->head = h->next;
  if (h->next != PT_NIL)
    hold_at(e, h->next)->prev = h->prev;
  else
    q->tail = h->prev;
  h->prev = h->next = PT_NIL;
  q->n--;
}

/* A finished hold stays queryable (and its id unreusable) for the request-id
 * window, then its slot is recycled. */
void pt__hold_retire(pt_engine *e, pt_campaign *c, int64_t now, uint32_t slot) {
  pt_hold *h = hold_at(e, slot);
  h->at_ms = now + e->cfg.idem_window_ms;
  pt__q_push_sorted(e, &c->retireq, slot);
}
