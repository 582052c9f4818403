/* The synthetic workloads: which request each scenario sends next
 * (stampede, group, mixed, zipf) and what its replies teach the run. Owns
 * the campaigns (their ids and the zipf weights), the users who got a unit
 * (for the verdict) and the pool of ids that confirm and cancel work on. */
#ifndef PT_BENCH_SCENARIOS_H
#define PT_BENCH_SCENARIOS_H

#include "bench.h"
#include "wire.h"

void scenarios_init(bench *b);
/* n campaigns, named after the run and the scenario (ids filled in). */
void scenarios_make_campaigns(bench *b, size_t n);
/* The zipf scenario's cumulative weights over the campaigns. */
void scenarios_zipf_weights(bench *b);
/* The index of campaign id, learned if new; SIZE_MAX for a bad id. */
size_t scenarios_campaign_index(bench *b, ProtobufCBinaryData id);
/* user got a unit of campaign: the verdict will check its holdings. */
void scenarios_note_ok(bench *b, size_t campaign, const uint8_t *user, size_t len);
/* Queues the scenario's next request on c, planned for planned, sent now. */
void scenario_send(bench *b, conn *c, int64_t planned, int64_t now);
/* The reply r to a synthetic request f. */
void scenario_on_reply(bench *b, const inflight *f, const bw_reply *r);
void scenarios_free(bench *b);

#endif
