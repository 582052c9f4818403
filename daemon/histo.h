/* A fixed-bucket histogram for metrics: the bucket bounds are chosen once
 * (Prometheus `le`), an observation is a short scan and two adds, so the
 * loop can keep several without a cost worth measuring. Latencies are kept
 * in µs; the admin port prints them in seconds. */
#ifndef PT_HISTO_H
#define PT_HISTO_H

#include <stdint.h>

#define PT_HISTO_MAX 20 /* bounds; the +Inf bucket is one more */

typedef struct pt_histo {
  const uint64_t *le; /* ascending upper bounds, n of them */
  unsigned n;
  uint64_t count[PT_HISTO_MAX + 1]; /* per bucket (not cumulative); [n]: above the last */
  uint64_t total, sum;
} pt_histo;

/* Loop-turn and Redis round-trip latencies, µs: 25 µs .. 10 s. */
extern const uint64_t pt_histo_latency_us[18];
/* Requests per journal record: 1 .. 65536, powers of 4. */
extern const uint64_t pt_histo_batch[9];

static inline void pt_histo_init(pt_histo *h, const uint64_t *le, unsigned n) {
  *h = (pt_histo){.le = le, .n = n};
}

static inline void pt_histo_init_latency(pt_histo *h) {
  pt_histo_init(h, pt_histo_latency_us, sizeof pt_histo_latency_us / sizeof pt_histo_latency_us[0]);
}
static inline void pt_histo_init_batch(pt_histo *h) {
  pt_histo_init(h, pt_histo_batch, sizeof pt_histo_batch / sizeof pt_histo_batch[0]);
}

/* weight observations of v (a loop turn's requests share one latency) */
static inline void pt_histo_add(pt_histo *h, uint64_t v, uint64_t weight) {
  unsigned i = 0;
  while (i < h->n && v > h->le[i]) i++;
  h->count[i] += weight;
  h->total += weight;
  h->sum += v * weight;
}

/* The q-quantile (0..1) of what was observed between `was` (an earlier copy
 * of h) and h, as the upper bound of its bucket (the last bound when it lies
 * above all of them); 0 when nothing was observed. */
uint64_t pt_histo_quantile(const pt_histo *h, const pt_histo *was, double q);

#endif
