/* The run's schedule and figures: open loop (-R, the pacer plans every
 * request and the latency counts from the plan), closed loop (-p requests in
 * flight per connection) or replay; the warm-up, the measured part, the
 * drain after it and the end; a progress line a second; every reply counted. */
#ifndef PT_BENCH_RUN_H
#define PT_BENCH_RUN_H

#include "bench.h"

/* Readies the timers on b->loop and the histograms (before conns_open). */
void run_init(bench *b);
/* Every connection is up: the clock starts, sending begins. */
void run_start(bench *b);
/* One reply frame on c, read at t. */
void run_on_reply(bench *b, conn *c, const uint8_t *msg, size_t len, int64_t t);
/* Stops sending, closes every handle: uv_run returns. */
void run_finish(bench *b);
/* Requests sent or planned that got no reply: reported, never hidden. */
uint64_t run_unanswered(const bench *b);
void run_free(bench *b);

#endif
