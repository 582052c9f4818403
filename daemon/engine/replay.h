/* The one replayer of recorded inputs, for both of its callers: the
 * mirror's recovery (a new primary rebuilding from its Redis journal) and
 * exact replay of a capture (pintuan-replay). Inputs are pushed in their
 * recorded order and applied PT_REPLAY_AHEAD pushes later, their lookups
 * prefetched at the push (pt_engine_prefetch), as the live service does
 * with the frames it has read; each answer goes to the caller's check. */
#ifndef PT_REPLAY_H
#define PT_REPLAY_H

#include <stddef.h>
#include <stdint.h>

#include "engine.h"
#include "input.h"

#pragma GCC visibility push(default)

#define PT_REPLAY_AHEAD 8

/* Called right after an input is applied, with its answer (r NULL for an
 * advance or a setting) and the tag it was pushed with. Non-zero stops the
 * replay: the push or flush that applied it returns that value. */
typedef int (*pt_replay_check)(void *ctx, const pt_input *in, const pt_result *r, uintptr_t tag);

typedef struct pt_replayer {
  pt_engine *engine;
  pt_replay_check check; /* optional */
  void *ctx;
  pt_input ring[PT_REPLAY_AHEAD];
  uintptr_t tags[PT_REPLAY_AHEAD];
  uint32_t head, queued;
  uint64_t applied;
} pt_replayer;

void pt_replayer_init(pt_replayer *rp, pt_engine *e, pt_replay_check check, void *ctx);
/* Queues in (copied; the bytes it points to must stay valid until it is
 * applied: PT_REPLAY_AHEAD pushes later, or at the flush), applying the
 * oldest queued input when the queue is full. 0, or check's refusal. */
int pt_replayer_push(pt_replayer *rp, const pt_input *in, uintptr_t tag);
/* Applies everything queued. 0, or check's refusal (the rest stays queued:
 * a stopped replay is not resumed). */
int pt_replayer_flush(pt_replayer *rp);

/* The journal's caller: applies every input in p[off, n) (pt_input_pack's
 * encoding) to e, each answer checked against its recorded digest. *count
 * grows by the inputs applied. 0, or -1 with the reason in err (an
 * undecodable input, with its byte offset; or a request answered
 * differently than recorded: its index in *count terms, and both answers);
 * inputs before the failing one are applied. */
int pt_replay_inputs(pt_engine *e, const void *p, size_t n, size_t off, uint64_t *count, char *err,
                     size_t errlen);

#pragma GCC visibility pop

#endif
