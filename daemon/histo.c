#include "histo.h"

const uint64_t pt_histo_latency_us[18] = {25,     50,     100,     250,     500,     1000,
                                          2500,   5000,   10000,   25000,   50000,   100000,
                                          250000, 500000, 1000000, 2500000, 5000000, 10000000};
const uint64_t pt_histo_batch[9] = {1, 4, 16, 64, 256, 1024, 4096, 16384, 65536};

uint64_t pt_histo_quantile(const pt_histo *h, const pt_histo *was, double q) {
  uint64_t total = h->total - (was ? was->total : 0);
  if (!total || !h->n) return 0;
  uint64_t rank = (uint64_t)(q * (double)total + 0.5), seen = 0;
  if (rank < 1) rank = 1;
  for (unsigned i = 0; i < h->n; i++) {
    seen += h->count[i] - (was ? was->count[i] : 0);
    if (seen >= rank) return h->le[i];
  }
  return h->le[h->n - 1];
}
