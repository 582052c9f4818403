/* Idempotency: a request id, once decided, is remembered with its answer for
 * the configured window. Records live in a per-campaign FIFO in decision
 * order, so forgetting is popping the head; a shortened window only makes
 * records live a little longer (their forget time is clamped to the tail's). */
#include <string.h>

#include "engine_int.h"
#include "hash.h"

uint32_t idem_fingerprint(int op, uint64_t a, uint64_t b, pt_bytes s) {
  uint64_t h = pt_hash((uint64_t)op * 0x9e3779b97f4a7c15ULL ^ a, s.p, s.len);
  return (uint32_t)pt_mix(h ^ b, 0x9e3779b97f4a7c15ULL);
}

bool idem_replay(pt_engine *e, pt_campaign *c, pt_bytes rid, int op,
                 uint32_t fp, pt_result *r) {
  if (c->idem_count == 0) return false;
  const pt_idem *d = pt_map_get(&c->idem, pt_hash(e->cfg.hash_seed, rid.p, rid.len), rid);
  if (!d) return false;
  memset(r, 0, sizeof(*r));
  r->replay = true;
  if (d->op != op || d->fingerprint != fp) {
    result_set(r, PT_CONFLICT, "request id already used for a different request");
    return true;
  }
  e->st.replays++;
  r->status = (pt_status)d->status;
  r->detail = "replay of an earlier request";
  r->reservation_id = d->reservation_id;
  r->expires_ms = d->expires_ms;
  r->quantity = d->quantity;
  r->position = d->position;
  r->state = (pt_hold_state)d->state;
  r->group_id = d->group_id;
  r->group_state = (pt_group_state)d->group_state;
  r->opened = d->opened;
  return true;
}

void idem_store(pt_engine *e, pt_campaign *c, int64_t now, pt_bytes rid, int op,
                uint32_t fp, const pt_result *r) {
  pt_idem *d = pt_fifo_push(&c->idem_log, sizeof(pt_idem) + rid.len);
  int64_t forget = now + e->cfg.idem_window_ms;
  if (forget < c->idem_tail_forget) forget = c->idem_tail_forget; /* keep order */
  c->idem_tail_forget = forget;
  d->forget_ms = forget;
  d->reservation_id = r->reservation_id;
  d->expires_ms = r->expires_ms;
  d->fingerprint = fp;
  d->quantity = r->quantity;
  d->position = r->position;
  d->status = (uint8_t)r->status;
  d->state = (uint8_t)r->state;
  d->op = (uint8_t)op;
  d->group_id = r->group_id;
  d->group_state = (uint8_t)r->group_state;
  d->opened = r->opened;
  d->klen = (uint8_t)rid.len;
  memcpy(d->key, rid.p, rid.len);
  pt_map_put(&c->idem, pt_hash(e->cfg.hash_seed, rid.p, rid.len), d);
  c->idem_count++;
  e->st.idem_records++;
  emit_mut(e, PT_MUT_IDEM, false, c, rid, r->reservation_id);
}

int64_t idem_next(pt_campaign *c) {
  if (c->idem_count == 0) return PT_NEVER;
  const pt_idem *d = pt_fifo_peek(&c->idem_log);
  return d ? d->forget_ms : PT_NEVER;
}

void idem_expire(pt_engine *e, pt_campaign *c, int64_t now) {
  while (c->idem_count) {
    pt_idem *d = pt_fifo_peek(&c->idem_log);
    if (!d || d->forget_ms > now) break;
    pt_bytes k = pt_key_of(d->klen, d->key);
    pt_map_del(&c->idem, pt_hash(e->cfg.hash_seed, k.p, k.len), k);
    emit_mut(e, PT_MUT_IDEM, true, c, k, 0);
    c->idem_count--;
    e->st.idem_records--;
    pt_fifo_pop(&c->idem_log, sizeof(pt_idem) + d->klen);
  }
}

void idem_free_all(pt_campaign *c) {
  pt_map_destroy(&c->idem);
  pt_fifo_free_all(&c->idem_log);
  c->idem_count = 0;
}
