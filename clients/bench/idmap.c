#include "idmap.h"

#include <stdlib.h>

#include "xalloc.h"

static size_t slot(const idmap *m, uint64_t k) {
  size_t i = (size_t)((k * 0x9e3779b97f4a7c15ULL) >> 17) & (m->cap - 1);
  while (m->e[i].recorded && m->e[i].recorded != k) i = (i + 1) & (m->cap - 1);
  return i;
}

idmap_entry *idmap_find(const idmap *m, uint64_t recorded) {
  if (!m->cap || !recorded) return NULL;
  idmap_entry *e = &m->e[slot(m, recorded)];
  return e->recorded ? e : NULL;
}

void idmap_note(idmap *m, uint64_t recorded, size_t producer) {
  if (!recorded) return;
  if ((m->n + 1) * 2 > m->cap) { /* doubled at half load */
    idmap old = *m;
    m->cap = m->cap ? m->cap * 2 : 256;
    m->e = pt_xcalloc(m->cap, sizeof(*m->e));
    for (size_t i = 0; i < old.cap; i++)
      if (old.e[i].recorded) m->e[slot(m, old.e[i].recorded)] = old.e[i];
    free(old.e);
  }
  idmap_entry *e = &m->e[slot(m, recorded)];
  if (e->recorded) return;
  *e = (idmap_entry){.recorded = recorded, .producer = producer};
  m->n++;
}

void idmap_free(idmap *m) {
  free(m->e);
  *m = (idmap){0};
}

#define ADD(has, field) \
  do { if ((has) && n < max) out[n++] = &(field); } while (0)

size_t idmap_reply_ids(Pintuan__V1__Response *r, uint64_t **out, size_t max) {
  size_t n = 0;
  switch (r->result_case) {
  case PINTUAN__V1__RESPONSE__RESULT_RESERVATION:
    ADD(r->reservation->has_reservation_id, r->reservation->reservation_id);
    ADD(r->reservation->has_group_id, r->reservation->group_id);
    break;
  case PINTUAN__V1__RESPONSE__RESULT_GROUP:
    ADD(r->group->has_group_id, r->group->group_id);
    for (size_t i = 0; i < r->group->n_members; i++)
      ADD(r->group->members[i]->has_seat_id, r->group->members[i]->seat_id);
    break;
  case PINTUAN__V1__RESPONSE__RESULT_EVENT:
    ADD(r->event->has_reservation_id, r->event->reservation_id);
    ADD(r->event->has_group_id, r->event->group_id);
    break;
  default: break;
  }
  return n;
}

size_t idmap_request_ids(Pintuan__V1__Request *q, uint64_t **out, size_t max) {
  size_t n = 0;
  switch (q->op_case) {
  case PINTUAN__V1__REQUEST__OP_CONFIRM: ADD(q->confirm->has_reservation_id, q->confirm->reservation_id); break;
  case PINTUAN__V1__REQUEST__OP_CANCEL: ADD(q->cancel->has_reservation_id, q->cancel->reservation_id); break;
  case PINTUAN__V1__REQUEST__OP_GET_RESERVATION:
    ADD(q->get_reservation->has_reservation_id, q->get_reservation->reservation_id);
    break;
  case PINTUAN__V1__REQUEST__OP_JOIN: ADD(q->join->has_group_id, q->join->group_id); break;
  case PINTUAN__V1__REQUEST__OP_GET_GROUP: ADD(q->get_group->has_group_id, q->get_group->group_id); break;
  default: break;
  }
  return n;
}
