/* The replayer (replay.h): a ring of AHEAD inputs unpacked before their
 * turn, so that each one's campaign, user and request-id lookups are in
 * cache when it is applied. Unpacked inputs stay valid while they wait:
 * their byte strings point into the journal buffer, not into msgpack's
 * zone (which the next unpack frees). */
#include "replay.h"

#include <inttypes.h>
#include <msgpack.h>
#include <stdio.h>

#include "input.h"

#define AHEAD 8

static bool is_request(pt_input_kind k) { return k >= PT_IN_CREATE && k <= PT_IN_JOIN; }

int pt_replay_inputs(pt_engine *e, const void *p, size_t n, size_t off, uint64_t *count, char *err,
                     size_t errlen) {
  msgpack_unpacked u;
  msgpack_unpacked_init(&u);
  pt_input ring[AHEAD];
  pt_input_digest dig[AHEAD];
  size_t head = 0, queued = 0;
  int rc = 0;
  for (;;) {
    while (queued < AHEAD && off < n) {
      size_t at = off;
      if (msgpack_unpack_next(&u, p, n, &off) != MSGPACK_UNPACK_SUCCESS) {
        snprintf(err, errlen, "undecodable input at byte %zu", at);
        rc = -1;
        goto out;
      }
      size_t k = (head + queued) % AHEAD;
      char why[128];
      if (pt_input_unpack(&u.data, &ring[k], &dig[k], why, sizeof why)) {
        snprintf(err, errlen, "input at byte %zu: %s", at, why);
        rc = -1;
        goto out;
      }
      if (is_request(ring[k].kind))
        pt_engine_prefetch(e, ring[k].campaign_id, ring[k].user_id, ring[k].request_id);
      queued++;
    }
    if (queued == 0) break;
    const pt_input *in = &ring[head];
    pt_result r;
    pt_input_apply(e, in, &r);
    ++*count;
    if (is_request(in->kind) && !pt_input_same(&dig[head], &r)) {
      snprintf(err, errlen,
               "input %" PRIu64 " replayed as %s reservation %" PRIu64 " group %" PRIu64
               ", recorded as %s reservation %" PRIu64 " group %" PRIu64,
               *count, pt_status_name(r.status), r.reservation_id, r.group_id,
               pt_status_name(dig[head].status), dig[head].reservation_id, dig[head].group_id);
      rc = -1;
      goto out;
    }
    head = (head + 1) % AHEAD;
    queued--;
  }
out:
  msgpack_unpacked_destroy(&u);
  return rc;
}
