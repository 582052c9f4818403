/* libFuzzer target: engine snapshots from any bytes (what a corrupt or
 * foreign snapshot in Redis would be). pt_engine_restore either refuses
 * with a reason or returns an engine that can be snapshotted, run through
 * its due work and freed. */
#include <stdlib.h>

#include "engine.h"

static int sink(void *ctx, const void *p, size_t n) { (void)ctx, (void)p, (void)n; return 0; }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  pt_engine_config cfg = {0};
  char err[128];
  pt_engine *e = pt_engine_restore(&cfg, data, size, err, sizeof err);
  if (!e) {
    if (!err[0]) abort(); /* refused without a reason */
    return 0;
  }
  if (pt_engine_snapshot(e, sink, NULL) != 0) abort();
  /* what a standby taking over does next: the timers run (every hold, seat,
   * group and remembered effect that falls due), in steps */
  for (int i = 0; i < 64; i++) {
    int64_t d = pt_engine_next_deadline(e);
    if (d == PT_NEVER || d > INT64_C(1) << 50) break;
    pt_engine_advance(e, d);
  }
  if (pt_engine_snapshot(e, sink, NULL) != 0) abort();
  pt_engine_free(e);
  return 0;
}
