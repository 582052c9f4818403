/* replay.c owns the replay of a capture: reading it (requests per captured
 * connection, each paired with the reply recorded for it, in order; events
 * and replies on connections never seen asking are skipped), sending the
 * requests at their recorded offsets scaled by --speed with our own
 * correlation ids and the replayed daemon's reservation and group ids
 * (idmap.h), and comparing each reply with the recorded one. */
#include "replay.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "capture.h"
#include "conns.h"
#include "idmap.h"
#include "scenarios.h"
#include "xalloc.h"

/* Times differ between a capture and its replay: compare the rest. */
static void normalize(Pintuan__V1__Response *r) {
  switch (r->result_case) {
  case PINTUAN__V1__RESPONSE__RESULT_PONG: r->pong->has_now_ms = 0; break;
  case PINTUAN__V1__RESPONSE__RESULT_RESERVATION: r->reservation->has_expires_ms = 0; break;
  case PINTUAN__V1__RESPONSE__RESULT_EVENT: r->event->has_at_ms = 0, r->event->has_expires_ms = 0; break;
  case PINTUAN__V1__RESPONSE__RESULT_GROUP:
    r->group->has_opened_ms = r->group->has_deadline_ms = 0;
    for (size_t i = 0; i < r->group->n_members; i++) r->group->members[i]->has_expires_ms = 0;
    break;
  case PINTUAN__V1__RESPONSE__RESULT_CAMPAIGN: r->campaign->has_ended = 0; break;
  case PINTUAN__V1__RESPONSE__RESULT_CAMPAIGNS:
    for (size_t i = 0; i < r->campaigns->n_campaigns; i++) r->campaigns->campaigns[i]->has_ended = 0;
    break;
  default: break;
  }
}

/* The ids of the recorded reply x and the replayed y, field by field: the
 * replayed ones are learned (the first time), and x's are translated, so
 * that the comparison sees the same ids where the decisions are the same. */
static void translate(idmap *m, Pintuan__V1__Response *x, Pintuan__V1__Response *y) {
  uint64_t *xi[IDMAP_REPLY_MAX], *yi[IDMAP_REPLY_MAX];
  size_t nx = idmap_reply_ids(x, xi, IDMAP_REPLY_MAX), ny = idmap_reply_ids(y, yi, IDMAP_REPLY_MAX);
  for (size_t i = 0; i < nx; i++) {
    idmap_entry *e = idmap_find(m, *xi[i]);
    if (!e) continue;
    if (!e->replayed && i < ny && x->result_case == y->result_case) e->replayed = *yi[i];
    if (e->replayed) *xi[i] = e->replayed;
  }
}

static bool same_reply(idmap *m, const uint8_t *a, size_t alen, const uint8_t *b, size_t blen, int *sa,
                       int *sb) {
  Pintuan__V1__Response *x = pintuan__v1__response__unpack(NULL, alen, a);
  Pintuan__V1__Response *y = pintuan__v1__response__unpack(NULL, blen, b);
  bool same = false;
  *sa = x ? (int)x->status : -1;
  *sb = y ? (int)y->status : -1;
  if (x && y) {
    translate(m, x, y);
    normalize(x);
    normalize(y);
    size_t nx = pintuan__v1__response__get_packed_size(x), ny = pintuan__v1__response__get_packed_size(y);
    if (nx == ny) {
      uint8_t *px = pt_xmalloc(nx + 1), *py = pt_xmalloc(ny + 1);
      pintuan__v1__response__pack(x, px);
      pintuan__v1__response__pack(y, py);
      same = memcmp(px, py, nx) == 0;
      free(px);
      free(py);
    }
  }
  if (x) pintuan__v1__response__free_unpacked(x, NULL);
  if (y) pintuan__v1__response__free_unpacked(y, NULL);
  return same;
}

/* Captured connection id -> replay connection index: open addressing,
 * doubled at half load. */
typedef struct connmap {
  uint64_t *key;
  uint32_t *val;
  size_t cap, n;
} connmap;

static size_t connmap_slot(const connmap *m, uint64_t k) {
  size_t i = (size_t)((k * 0x9e3779b97f4a7c15ULL) >> 17) & (m->cap - 1);
  while (m->key[i] && m->key[i] != k) i = (i + 1) & (m->cap - 1);
  return i;
}

/* The index for k (k + 1 is stored so that 0 marks a free slot). */
static uint32_t connmap_get(connmap *m, uint64_t k, uint32_t next, bool *fresh) {
  k += 1;
  if ((m->n + 1) * 2 > m->cap) {
    connmap old = *m;
    m->cap = m->cap ? m->cap * 2 : 64;
    m->key = pt_xcalloc(m->cap, sizeof(*m->key));
    m->val = pt_xcalloc(m->cap, sizeof(*m->val));
    for (size_t i = 0; i < old.cap; i++)
      if (old.key[i]) {
        size_t j = connmap_slot(m, old.key[i]);
        m->key[j] = old.key[i], m->val[j] = old.val[i];
      }
    free(old.key);
    free(old.val);
  }
  size_t i = connmap_slot(m, k);
  *fresh = !m->key[i];
  if (*fresh) m->key[i] = k, m->val[i] = next, m->n++;
  return m->val[i];
}


/* Per captured connection, the requests still waiting for their recorded
 * reply: appended, taken from the front. */
typedef struct pending {
  size_t head, len, cap;
  size_t *q;
} pending;

static void add_request(bench *b, uint32_t ci, pending *p, const pt_cap_record *rec, int64_t t0) {
  if (b->nrreqs == b->cap_rreqs) {
    b->cap_rreqs = b->cap_rreqs ? b->cap_rreqs * 2 : 256;
    b->rreqs = pt_xrealloc(b->rreqs, b->cap_rreqs * sizeof(*b->rreqs));
  }
  rreq *r = &b->rreqs[b->nrreqs];
  r->conn = ci;
  r->offset_ns = (rec->time_us - t0) * 1000;
  r->msg = pt_xmalloc(rec->len + 1);
  memcpy(r->msg, rec->data, rec->len);
  r->len = rec->len;
  r->want = NULL;
  r->want_len = 0;
  if (p->len == p->cap) {
    p->cap = p->cap ? p->cap * 2 : 64;
    p->q = pt_xrealloc(p->q, p->cap * sizeof(*p->q));
  }
  p->q[p->len++] = b->nrreqs++;
}

/* Replies come in request order; a daemon-initiated one (id 0) is not an
 * answer. */
static void add_reply(bench *b, pending *p, const pt_cap_record *rec) {
  if (p->head == p->len) return;
  Pintuan__V1__Response *x = pintuan__v1__response__unpack(NULL, rec->len, rec->data);
  bool answer = x && x->id != 0;
  if (x) pintuan__v1__response__free_unpacked(x, NULL);
  if (!answer) return;
  rreq *r = &b->rreqs[p->q[p->head++]];
  r->want = pt_xmalloc(rec->len + 1);
  memcpy(r->want, rec->data, rec->len);
  r->want_len = rec->len;
}

int replay_load(bench *b, const char *path) {
  pt_cap_reader rd;
  char err[256];
  if (pt_cap_reader_open(&rd, path, err, sizeof err)) {
    fprintf(stderr, "pintuan-bench: %s\n", err);
    return -1;
  }
  connmap conns_by_id = {0}; /* capture connection id -> replay connection */
  pending *pend = NULL;
  size_t nids = 0, cap = 0;
  int64_t t0 = 0;
  pt_cap_record rec;
  int rc;
  while ((rc = pt_cap_read(&rd, &rec, err, sizeof err)) == 1) {
    if (rec.kind != PT_CAP_REQUEST && rec.kind != PT_CAP_REPLY) continue; /* closes, decisions, states */
    bool fresh;
    if (rec.kind != PT_CAP_REQUEST) { /* a reply on a connection never seen asking: skip */
      size_t i = conns_by_id.cap ? connmap_slot(&conns_by_id, rec.conn + 1) : 0;
      if (!conns_by_id.cap || !conns_by_id.key[i]) continue;
    }
    uint32_t ci = connmap_get(&conns_by_id, rec.conn, (uint32_t)nids, &fresh);
    if (fresh) {
      if (nids == cap) {
        cap = cap ? cap * 2 : 64;
        pend = pt_xrealloc(pend, cap * sizeof(*pend));
      }
      pend[nids++] = (pending){0};
    }
    if (rec.kind == PT_CAP_REQUEST) {
      if (b->nrreqs == 0) t0 = rec.time_us;
      add_request(b, ci, &pend[ci], &rec, t0);
    } else if (rec.kind == PT_CAP_REPLY) {
      add_reply(b, &pend[ci], &rec);
    }
  }
  for (size_t i = 0; i < nids; i++) free(pend[i].q);
  free(pend);
  free(conns_by_id.key), free(conns_by_id.val);
  pt_cap_reader_close(&rd);
  b->ids = pt_xcalloc(1, sizeof(*b->ids)); /* which reply brings each recorded id */
  for (size_t i = 0; i < b->nrreqs; i++) {
    if (!b->rreqs[i].want) continue;
    Pintuan__V1__Response *x = pintuan__v1__response__unpack(NULL, b->rreqs[i].want_len, b->rreqs[i].want);
    if (!x) continue;
    uint64_t *ids[IDMAP_REPLY_MAX];
    size_t n = idmap_reply_ids(x, ids, IDMAP_REPLY_MAX);
    for (size_t k = 0; k < n; k++) idmap_note(b->ids, *ids[k], i);
    pintuan__v1__response__free_unpacked(x, NULL);
  }
  if (rc < 0) {
    fprintf(stderr, "pintuan-bench: %s: %s\n", path, err);
    return -1;
  }
  b->replay_conns = (int)nids;
  return 0;
}

/* Request i's ids, translated: false if one of them is brought by an
 * earlier request's reply that has not come (and may still: requests are
 * in flight), so i must wait, as the storefront waited for it. */
static bool translate_request(bench *b, size_t i, Pintuan__V1__Request *q) {
  uint64_t *ids[4];
  size_t n = idmap_request_ids(q, ids, 4);
  for (size_t k = 0; k < n; k++) {
    idmap_entry *e = idmap_find(b->ids, *ids[k]);
    if (!e || e->producer >= i) continue; /* no reply brought it: sent as recorded */
    if (e->replayed) *ids[k] = e->replayed;
    else if (conns_in_flight(b)) return false;
  }
  return true;
}

int64_t replay_next_planned(const bench *b) {
  if (b->next_rreq >= b->nrreqs) return INT64_MAX;
  if (b->replay_blocked) return (int64_t)uv_hrtime() + 1000000; /* a reply unblocks it; else look again */
  const rreq *r = &b->rreqs[b->next_rreq];
  return b->t_start + (b->o.speed > 0 ? (int64_t)((double)r->offset_ns / b->o.speed) : 0);
}

void replay_send_due(bench *b, int64_t now) {
  while (b->next_rreq < b->nrreqs) {
    rreq *r = &b->rreqs[b->next_rreq];
    b->replay_blocked = false;
    int64_t planned = replay_next_planned(b);
    if (planned > now) break;
    Pintuan__V1__Request *q = pintuan__v1__request__unpack(NULL, r->len, r->msg);
    if (q && !translate_request(b, b->next_rreq, q)) {
      pintuan__v1__request__free_unpacked(q, NULL);
      b->replay_blocked = true;
      break;
    }
    conn *c = &b->conns[r->conn];
    inflight *f = conn_push(c);
    f->planned = planned;
    f->sent = now;
    f->op = OP_REPLAYED;
    f->req = (uint32_t)b->next_rreq;
    /* our own correlation ids: rewrite the captured request's id */
    if (q) {
      conn_queue_request(c, q);
      pintuan__v1__request__free_unpacked(q, NULL);
    } else {
      conn_queue_raw(c, r->msg, r->len); /* replay garbage as garbage */
    }
    b->next_rreq++;
  }
}

bool replay_all_sent(const bench *b) { return b->next_rreq == b->nrreqs; }

/* The first divergence, for the report: which request, its operation, the
 * statuses recorded and got. */
static void describe_divergence(bench *b, uint32_t req, int sa, int sb) {
  const rreq *rq = &b->rreqs[req];
  Pintuan__V1__Request *q = pintuan__v1__request__unpack(NULL, rq->len, rq->msg);
  const char *opname = "?";
  if (q) {
    const ProtobufCFieldDescriptor *fd =
        protobuf_c_message_descriptor_get_field(&pintuan__v1__request__descriptor, q->op_case);
    opname = fd ? fd->name : "unknown";
  }
  snprintf(b->first_div_text, sizeof b->first_div_text, "request %zu (connection %u, %s): recorded %s, got %s%s",
           (size_t)req + 1, rq->conn + 1, opname, pintuan_status_str(sa), pintuan_status_str(sb),
           sa == sb ? " (fields differ)" : "");
  if (q) pintuan__v1__request__free_unpacked(q, NULL);
}

void replay_on_reply(bench *b, const inflight *f, const uint8_t *msg, size_t len,
                     const Pintuan__V1__Response *r) {
  const rreq *rq = &b->rreqs[f->req];
  if (rq->want) {
    int sa, sb;
    b->compared++;
    if (!same_reply(b->ids, rq->want, rq->want_len, msg, len, &sa, &sb)) {
      b->divergences++;
      if (f->req < b->first_div) {
        b->first_div = f->req;
        describe_divergence(b, f->req, sa, sb);
      }
    }
  }
  if (b->replay_blocked) replay_send_due(b, (int64_t)uv_hrtime()); /* it may bring the awaited id */
  if (r->status != PINTUAN__V1__STATUS__OK) return;
  if (r->result_case == PINTUAN__V1__RESPONSE__RESULT_RESERVATION && r->reservation->has_user_id &&
      r->reservation->reservation_id)
    scenarios_note_ok(b, scenarios_campaign_index(b, r->reservation->campaign_id), r->reservation->user_id.data,
                      r->reservation->user_id.len);
  if (r->result_case == PINTUAN__V1__RESPONSE__RESULT_CAMPAIGN)
    scenarios_campaign_index(b, r->campaign->campaign_id);
}

void replay_free(bench *b) {
  for (size_t i = 0; i < b->nrreqs; i++) {
    free(b->rreqs[i].msg);
    free(b->rreqs[i].want);
  }
  free(b->rreqs);
  b->rreqs = NULL;
  if (b->ids) idmap_free(b->ids);
  free(b->ids);
  b->ids = NULL;
  b->nrreqs = b->cap_rreqs = 0;
}
