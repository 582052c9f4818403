/* scenarios.c owns the synthetic workloads: the campaigns a run made or met,
 * the request each scenario sends next (stampede: reserve on one flash sale;
 * group: join a group buy or pay a seat; mixed: reserve, confirm or cancel
 * by --mix; zipf: reserve across campaigns of zipf popularity), and what an
 * OK reply teaches (a user to check in the verdict, an id to confirm or
 * cancel). */
#include "scenarios.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conns.h"
#include "xalloc.h"

#define MAX_OKS 500000 /* users checked by the verdict, at most */

void scenarios_init(bench *b) {
  b->pool_cap = 1 << 20;
  b->pool = pt_xmalloc(b->pool_cap * sizeof(*b->pool));
}

void scenarios_make_campaigns(bench *b, size_t n) {
  b->camps = pt_xcalloc(n, sizeof(*b->camps));
  b->ncamps = n;
  for (size_t i = 0; i < n; i++)
    snprintf(b->camps[i].id, sizeof b->camps[i].id, "bench-%u-%s-%zu", b->run_id,
             bench_scenario_names[b->o.scenario], i);
}

void scenarios_zipf_weights(bench *b) {
  size_t n = b->ncamps;
  b->zipf_cdf = pt_xmalloc(n * sizeof(double));
  double sum = 0;
  for (size_t i = 0; i < n; i++) sum += 1.0 / pow((double)(i + 1), b->o.zipf_s);
  double acc = 0;
  for (size_t i = 0; i < n; i++) {
    acc += 1.0 / pow((double)(i + 1), b->o.zipf_s) / sum;
    b->zipf_cdf[i] = acc;
  }
  b->zipf_cdf[n - 1] = 1.0;
}

size_t scenarios_campaign_index(bench *b, ProtobufCBinaryData id) {
  for (size_t i = 0; i < b->ncamps; i++)
    if (strlen(b->camps[i].id) == id.len && memcmp(b->camps[i].id, id.data, id.len) == 0) return i;
  if (id.len == 0 || id.len > 64) return SIZE_MAX;
  b->camps = pt_xrealloc(b->camps, (b->ncamps + 1) * sizeof(*b->camps));
  memcpy(b->camps[b->ncamps].id, id.data, id.len);
  b->camps[b->ncamps].id[id.len] = 0;
  return b->ncamps++;
}

void scenarios_note_ok(bench *b, size_t campaign, const uint8_t *user, size_t len) {
  if (campaign == SIZE_MAX || len >= sizeof b->oks->user || b->noks >= MAX_OKS) return;
  if (b->noks == b->cap_oks) {
    b->cap_oks = b->cap_oks ? b->cap_oks * 2 : 4096;
    b->oks = pt_xrealloc(b->oks, b->cap_oks * sizeof(*b->oks));
  }
  okuser *u = &b->oks[b->noks++];
  u->campaign = (uint32_t)campaign;
  memcpy(u->user, user, len);
  u->user[len] = 0;
}

static void pool_push(bench *b, uint64_t id, const char *user) {
  if (b->pool_n < b->pool_cap) b->pool[b->pool_n++] = (pooled){id, strtoull(user + 1, NULL, 10)};
}

static pooled pool_take(bench *b) {
  size_t i = bench_rnd(b) % b->pool_n;
  pooled v = b->pool[i];
  b->pool[i] = b->pool[--b->pool_n];
  return v;
}

static size_t pick_campaign(bench *b) {
  if (b->o.scenario != SC_ZIPF) return 0;
  double u = bench_rnd01(b);
  size_t lo = 0, hi = b->ncamps - 1;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (b->zipf_cdf[mid] < u) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/* Request ids are "b<run>-<connection>-<seq>", users "u<n>": written
 * without printf, which cost the bench more than the daemon's decision. */
void scenario_send(bench *b, conn *c, int64_t planned, int64_t now) {
  const bench_opts *o = &b->o;
  inflight *f = conn_push(c);
  f->planned = planned;
  f->sent = now;
  f->campaign = (uint32_t)pick_campaign(b);
  f->user[0] = 'u';
  f->user[1 + bw_u64_dec(f->user + 1, bench_rnd(b) % o->users)] = 0;
  if (!c->rid_prefix_len)
    c->rid_prefix_len = (uint8_t)snprintf(c->rid, sizeof c->rid, "b%u-%d-", b->run_id, c->idx);
  size_t rid_len = c->rid_prefix_len + bw_u64_dec(c->rid + c->rid_prefix_len, ++c->seq);
  const campaign *cp = &b->camps[f->campaign];
  bw_request q = {.op = BW_RESERVE, .rid = (const uint8_t *)c->rid, .rid_len = rid_len,
                  .campaign = (const uint8_t *)cp->id, .campaign_len = strlen(cp->id),
                  .user = (const uint8_t *)f->user, .user_len = strlen(f->user), .quantity = 1};
  int op = OP_RESERVE;
  if (o->scenario == SC_MIXED) {
    int roll = (int)(bench_rnd(b) % (uint64_t)(o->mix[0] + o->mix[1] + o->mix[2]));
    if (roll >= o->mix[0] && b->pool_n) op = roll < o->mix[0] + o->mix[1] ? OP_CONFIRM : OP_CANCEL;
  } else if (o->scenario == SC_GROUP) {
    op = b->pool_n && bench_rnd01(b) < o->pay_ratio ? OP_CONFIRM : OP_JOIN;
  }
  f->op = (uint8_t)op;
  if (op == OP_CONFIRM || op == OP_CANCEL) { /* as the hold's owner */
    pooled h = pool_take(b);
    q.op = op == OP_CONFIRM ? BW_CONFIRM : BW_CANCEL, q.reservation_id = h.id;
    f->user[1 + bw_u64_dec(f->user + 1, h.user)] = 0;
    q.user_len = strlen(f->user);
  }
  switch (op) {
  case OP_RESERVE: case OP_CONFIRM: case OP_CANCEL: break;
  default: q.op = BW_JOIN, q.join_mode = PINTUAN__V1__JOIN_MODE__JOIN_AUTO, q.new_user = 1; break;
  }
  conn_queue_op(c, &q);
}

void scenario_on_reply(bench *b, const inflight *f, const bw_reply *r) {
  if (r->status != PINTUAN__V1__STATUS__OK || r->result != BW_RESULT_RESERVATION) return;
  if (f->op == OP_RESERVE || f->op == OP_JOIN) {
    scenarios_note_ok(b, f->campaign, (const uint8_t *)f->user, strlen(f->user));
    if (b->o.scenario == SC_MIXED || b->o.scenario == SC_GROUP) pool_push(b, r->reservation_id, f->user);
  }
}

void scenarios_free(bench *b) {
  free(b->camps);
  free(b->zipf_cdf);
  free(b->oks);
  free(b->pool);
  b->camps = NULL, b->zipf_cdf = NULL, b->oks = NULL, b->pool = NULL;
}
