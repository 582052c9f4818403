#include "latency.h"

#include "clock.h"

void pt_latency_init(pt_latency *l) {
  l->head = l->len = 0;
  pt_histo_init_latency(&l->hist);
  pt_histo_init_latency(&l->busy);
  l->turn_ns = l->idle_ns = 0;
}

int64_t pt_latency_loop(pt_latency *l, int64_t now_ns, int64_t idle_ns) {
  int64_t us = 0;
  if (l->turn_ns) {
    int64_t busy = (now_ns - l->turn_ns) - (idle_ns - l->idle_ns);
    us = busy > 0 ? busy / 1000 : 0;
    pt_histo_add(&l->busy, (uint64_t)us, 1);
  }
  l->turn_ns = now_ns, l->idle_ns = idle_ns;
  return us;
}

static void observe(pt_latency *l, uint64_t n, int64_t t0_ns, int64_t now_ns) {
  pt_histo_add(&l->hist, now_ns > t0_ns ? (uint64_t)(now_ns - t0_ns) / 1000 : 0, n);
}

void pt_latency_turn(pt_latency *l, uint64_t n, int64_t t0_ns, uint64_t seq) {
  if (!n) return;
  if (!seq) {
    observe(l, n, t0_ns, pt_mono_ns());
    return;
  }
  if (l->len == PT_LATENCY_RING) { /* the newest absorbs it */
    unsigned last = (l->head + l->len - 1) % PT_LATENCY_RING;
    l->ring[last].n += n;
    if (seq > l->ring[last].seq) l->ring[last].seq = seq;
    return;
  }
  unsigned at = (l->head + l->len++) % PT_LATENCY_RING;
  l->ring[at].seq = seq, l->ring[at].n = n, l->ring[at].t0_ns = t0_ns;
}

void pt_latency_release(pt_latency *l, uint64_t seq) {
  int64_t now = 0;
  while (l->len && l->ring[l->head].seq <= seq) {
    if (!now) now = pt_mono_ns();
    observe(l, l->ring[l->head].n, l->ring[l->head].t0_ns, now);
    l->head = (l->head + 1) % PT_LATENCY_RING;
    l->len--;
  }
}

void pt_latency_drop(pt_latency *l) { l->head = l->len = 0; }
