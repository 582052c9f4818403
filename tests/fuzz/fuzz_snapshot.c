/* libFuzzer target: engine snapshots from any bytes (what a corrupt or
 * foreign snapshot in Redis would be). pt_engine_restore either refuses
 * with a reason or returns an engine that can be snapshotted and freed. */
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
  pt_engine_free(e);
  return 0;
}
