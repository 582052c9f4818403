#include "histogram.h"

#include <string.h>

void pt_hist_reset(pt_hist *h) {
  memset(h, 0, sizeof(*h));
  h->min = UINT64_MAX;
}

int pt_hist_index(uint64_t v) {
  if (v < PT_HIST_SUB) return (int)v;
  int msb = 63 - __builtin_clzll(v);
  int shift = msb - PT_HIST_SUB_BITS;
  return (shift + 1) * PT_HIST_SUB + (int)((v >> shift) - PT_HIST_SUB);
}

uint64_t pt_hist_bucket_high(int idx) {
  if (idx < PT_HIST_SUB) return (uint64_t)idx;
  int shift = idx / PT_HIST_SUB - 1;
  uint64_t sub = (uint64_t)(idx % PT_HIST_SUB) + PT_HIST_SUB;
  return ((sub + 1) << shift) - 1;
}

void pt_hist_record(pt_hist *h, uint64_t v) {
  h->b[pt_hist_index(v)]++;
  h->count++;
  h->sum += (double)v;
  if (v < h->min) h->min = v;
  if (v > h->max) h->max = v;
}

void pt_hist_merge(pt_hist *into, const pt_hist *from) {
  for (int i = 0; i < PT_HIST_BUCKETS; i++) into->b[i] += from->b[i];
  into->count += from->count;
  into->sum += from->sum;
  if (from->min < into->min) into->min = from->min;
  if (from->max > into->max) into->max = from->max;
}

uint64_t pt_hist_percentile(const pt_hist *h, double p) {
  if (h->count == 0) return 0;
  if (p >= 100) return h->max;
  uint64_t want = (uint64_t)(p / 100.0 * (double)h->count + 0.9999999);
  if (want < 1) want = 1;
  uint64_t seen = 0;
  for (int i = 0; i < PT_HIST_BUCKETS; i++) {
    seen += h->b[i];
    if (seen >= want) {
      uint64_t v = pt_hist_bucket_high(i);
      return v > h->max ? h->max : v;
    }
  }
  return h->max;
}

double pt_hist_mean(const pt_hist *h) { return h->count ? h->sum / (double)h->count : 0; }
