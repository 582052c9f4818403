/* The one replayer of journaled inputs, for both of its callers: the
 * mirror's recovery (a new primary rebuilding from Redis) and exact replay
 * of a capture. Inputs as pt_input_pack wrote them are applied in order,
 * each answer checked against the digest it was recorded with; the next
 * few are unpacked ahead and their lookups prefetched (pt_engine_prefetch),
 * as the live service does with the frames it has read. */
#ifndef PT_REPLAY_H
#define PT_REPLAY_H

#include <stddef.h>
#include <stdint.h>

#include "engine.h"

#pragma GCC visibility push(default)

/* Applies every input in p[off, n) to e. *count grows by the inputs applied.
 * 0, or -1 with the reason in err (an undecodable input, with its byte
 * offset; or a request answered differently than recorded: its index in
 * *count terms, and both answers); inputs before the failing one are
 * applied. */
int pt_replay_inputs(pt_engine *e, const void *p, size_t n, size_t off, uint64_t *count, char *err,
                     size_t errlen);

#pragma GCC visibility pop

#endif
