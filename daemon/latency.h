/* The daemon's request latency, measured per loop turn: a turn's requests
 * are read (the first one's time is noted), decided, and leave when the
 * turn's output is written: at once, or in durable mode once Redis has
 * acknowledged the turn's record. Every request of the turn is counted with
 * the turn's latency. One clock read per turn, none per request.
 * Turns waiting for Redis are kept in a ring; when it is full the newest
 * entry absorbs the next turn (its earliest start is kept, so the merged
 * requests are counted as slower, never faster). */
#ifndef PT_LATENCY_H
#define PT_LATENCY_H

#include <stdint.h>

#include "histo.h"

#define PT_LATENCY_RING 1024

typedef struct pt_latency {
  pt_histo hist; /* µs */
  /* How long each loop turn kept the loop busy (from the wait's end to the
   * next wait): what a request that arrives during a turn waits at most
   * before it is read. µs. */
  pt_histo busy;
  int64_t turn_ns, idle_ns; /* the last turn's end, the loop's idle time then */
  struct { uint64_t seq, n; int64_t t0_ns; } ring[PT_LATENCY_RING];
  unsigned head, len;
} pt_latency;

void pt_latency_init(pt_latency *l);
/* A turn of n requests, the first read at t0_ns (monotonic), whose output
 * was sealed with seq (0: written now). */
void pt_latency_turn(pt_latency *l, uint64_t n, int64_t t0_ns, uint64_t seq);
/* Output sealed up to seq was released now. */
void pt_latency_release(pt_latency *l, uint64_t seq);
/* A loop turn ends now (monotonic), the loop's idle time so far idle_ns
 * (uv_metrics_idle_time). */
int64_t pt_latency_loop(pt_latency *l, int64_t now_ns, int64_t idle_ns); /* the turn's busy µs */
/* Held output was dropped (its connections closed): not counted. */
void pt_latency_drop(pt_latency *l);

#endif
