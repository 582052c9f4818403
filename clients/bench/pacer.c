#include "pacer.h"

void pt_pacer_init(pt_pacer *p, int64_t start_ns, double rate) {
  p->start_ns = start_ns;
  p->rate = rate;
  p->sent = 0;
}

int64_t pt_pacer_planned(const pt_pacer *p, uint64_t i) {
  if (p->rate <= 0) return p->start_ns;
  return p->start_ns + (int64_t)((double)i * 1e9 / p->rate);
}

uint64_t pt_pacer_due(const pt_pacer *p, int64_t now_ns) {
  if (now_ns < p->start_ns || p->rate <= 0) return 0;
  /* requests 0..n-1 are due when start + i/rate <= now */
  uint64_t n = (uint64_t)((double)(now_ns - p->start_ns) * p->rate / 1e9) + 1;
  while (n > 0 && pt_pacer_planned(p, n - 1) > now_ns) n--; /* float edge */
  while (pt_pacer_planned(p, n) <= now_ns) n++;
  return n > p->sent ? n - p->sent : 0;
}
