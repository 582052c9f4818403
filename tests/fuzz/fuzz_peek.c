/* libFuzzer target: the wire peek (daemon/service/peek.c) on any bytes.
 * It must never read outside its input, and what it returns must lie in it. */
#include <stdlib.h>

#include "service/peek.h"

static void inside(const uint8_t *data, size_t size, pt_bytes b) {
  if (!b.p) return;
  if (b.p < data || b.p + b.len > data + size) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  pt_peek_ids ids;
  if (pt_peek(data, size, &ids)) {
    inside(data, size, ids.request_id);
    inside(data, size, ids.campaign_id);
    inside(data, size, ids.user_id);
  }
  return 0;
}
