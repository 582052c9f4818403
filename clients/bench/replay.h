/* --replay: a capture of pintuand --capture loaded as requests, each with
 * the reply recorded for it; sent again over as many connections as the
 * capture had, at its original pace scaled by --speed; every reply compared
 * with the recorded one (times aside), the first divergence described. */
#ifndef PT_BENCH_REPLAY_H
#define PT_BENCH_REPLAY_H

#include "bench.h"

/* Loads path into b->rreqs and b->replay_conns; 0, or -1 after a message. */
int replay_load(bench *b, const char *path);
/* Sends every captured request due by now. */
void replay_send_due(bench *b, int64_t now);
bool replay_all_sent(const bench *b);
/* When the next captured request is due (INT64_MAX: all were sent). */
int64_t replay_next_planned(const bench *b);
/* The reply (msg, len, decoded as r) to replayed request f. */
void replay_on_reply(bench *b, const inflight *f, const uint8_t *msg, size_t len,
                     const Pintuan__V1__Response *r);
void replay_free(bench *b);

#endif
