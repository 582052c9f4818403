/* The replayer (replay.h): a ring of queued inputs whose lookups were
 * started when they were pushed, so that each is in cache when applied. */
#include "replay.h"

#include <inttypes.h>
#include <msgpack.h>
#include <stdio.h>
#include <string.h>


void pt_replayer_init(pt_replayer *rp, pt_engine *e, pt_replay_check check, void *ctx) {
  memset(rp, 0, sizeof(*rp));
  rp->engine = e;
  rp->check = check;
  rp->ctx = ctx;
}

static int apply_oldest(pt_replayer *rp) {
  const pt_input *in = &rp->ring[rp->head];
  uintptr_t tag = rp->tags[rp->head];
  rp->head = (rp->head + 1) % PT_REPLAY_AHEAD;
  rp->queued--;
  pt_result r;
  pt_input_apply(rp->engine, in, &r);
  rp->applied++;
  bool answers = pt_input_is_request(in->kind);
  return rp->check ? rp->check(rp->ctx, in, answers ? &r : NULL, tag) : 0;
}

int pt_replayer_push(pt_replayer *rp, const pt_input *in, uintptr_t tag) {
  int rc = rp->queued == PT_REPLAY_AHEAD ? apply_oldest(rp) : 0;
  if (rc) return rc;
  uint32_t k = (rp->head + rp->queued) % PT_REPLAY_AHEAD;
  rp->ring[k] = *in;
  rp->tags[k] = tag;
  rp->queued++;
  if (pt_input_is_request(in->kind)) pt_engine_prefetch(rp->engine, in->campaign_id, in->user_id, in->request_id);
  return 0;
}

int pt_replayer_flush(pt_replayer *rp) {
  while (rp->queued) {
    int rc = apply_oldest(rp);
    if (rc) return rc;
  }
  return 0;
}

/* ---- the journal's caller ---- */

typedef struct journal {
  pt_input_digest dig[PT_REPLAY_AHEAD + 1]; /* by push count: free again once applied */
  uint64_t *count;
  char *err;
  size_t errlen;
} journal;

static int check_digest(void *ctx, const pt_input *in, const pt_result *r, uintptr_t tag) {
  journal *j = ctx;
  const pt_input_digest *d = &j->dig[tag];
  ++*j->count;
  if (r && !pt_input_same(d, r)) {
    snprintf(j->err, j->errlen,
             "input %" PRIu64 " (%s) replayed as %s reservation %" PRIu64 " group %" PRIu64
             ", recorded as %s reservation %" PRIu64 " group %" PRIu64,
             *j->count, pt_input_kind_name(in->kind), pt_status_name(r->status), r->reservation_id,
             r->group_id, pt_status_name(d->status), d->reservation_id, d->group_id);
    return -1;
  }
  return 0;
}

int pt_replay_inputs(pt_engine *e, const void *p, size_t n, size_t off, uint64_t *count, char *err,
                     size_t errlen) {
  journal j = {.count = count, .err = err, .errlen = errlen};
  pt_replayer rp;
  pt_replayer_init(&rp, e, check_digest, &j);
  int rc = 0;
  char why[128] = "";
  size_t bad_at = 0;
  for (uint64_t pushed = 0; off < n && rc == 0; pushed++) {
    size_t at = off;
    msgpack_object o, items[PT_INPUT_FLAT_MAX];
    if (!pt_input_read_flat(p, n, &off, &o, items)) {
      snprintf(why, sizeof why, "undecodable");
      bad_at = at;
      break;
    }
    /* Decoded inputs stay valid while they wait: their byte strings point
     * into the journal buffer. */
    uintptr_t slot = pushed % (PT_REPLAY_AHEAD + 1);
    pt_input in;
    if (pt_input_unpack(&o, &in, &j.dig[slot], why, sizeof why)) {
      bad_at = at;
      break;
    }
    rc = pt_replayer_push(&rp, &in, slot);
  }
  /* what came before a bad input is applied; a mismatch there came first */
  if (rc == 0) rc = pt_replayer_flush(&rp);
  if (rc == 0 && why[0]) {
    if (!strcmp(why, "undecodable")) snprintf(err, errlen, "undecodable input at byte %zu", bad_at);
    else snprintf(err, errlen, "input at byte %zu: %s", bad_at, why);
    rc = -1;
  }
  return rc;
}
