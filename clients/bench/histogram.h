/* Log-bucketed latency histogram (HdrHistogram's layout, written small):
 * 128 linear sub-buckets per power of two, so any recorded value is
 * reported within 1/128 (< 0.8 %) of itself. Values are nanoseconds.
 * Fixed memory (~60 KiB), O(1) record, O(buckets) percentile. */
#ifndef PT_HISTOGRAM_H
#define PT_HISTOGRAM_H

#include <stdint.h>

#define PT_HIST_SUB_BITS 7
#define PT_HIST_SUB (1 << PT_HIST_SUB_BITS)
#define PT_HIST_BUCKETS ((64 - PT_HIST_SUB_BITS + 1) * PT_HIST_SUB)

typedef struct pt_hist {
  uint64_t count, min, max;
  double sum;
  uint64_t b[PT_HIST_BUCKETS];
} pt_hist;

void pt_hist_reset(pt_hist *h);
void pt_hist_record(pt_hist *h, uint64_t v);
void pt_hist_merge(pt_hist *into, const pt_hist *from);
/* The value at percentile p (0..100]: the highest value equivalent to the
 * bucket holding it, never above the largest value recorded. */
uint64_t pt_hist_percentile(const pt_hist *h, double p);
double pt_hist_mean(const pt_hist *h);
/* Bucket index and its value range, exposed for tests. */
int pt_hist_index(uint64_t v);
uint64_t pt_hist_bucket_high(int idx);

#endif
