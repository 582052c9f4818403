/* Open-loop pacing, as in wrk2: request i is planned for
 * start + i / rate, whatever happened to earlier ones, so latency measured
 * from the planned time includes the queueing a stalled server causes
 * (coordinated-omission correction). */
#ifndef PT_PACER_H
#define PT_PACER_H

#include <stdint.h>

typedef struct pt_pacer {
  int64_t start_ns;
  double rate; /* requests per second; <= 0: unpaced */
  uint64_t sent; /* requests released so far */
} pt_pacer;

void pt_pacer_init(pt_pacer *p, int64_t start_ns, double rate);
/* Planned send time of request i. */
int64_t pt_pacer_planned(const pt_pacer *p, uint64_t i);
/* How many requests are due by now and not yet released. */
uint64_t pt_pacer_due(const pt_pacer *p, int64_t now_ns);

#endif
