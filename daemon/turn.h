/* A loop turn: its time, and the engine inputs decided in it.
 *
 * The daemon reads its clock once per turn, at the first moment the turn
 * needs it, and at that moment brings the engine up to it (expiries, failed
 * groups, forgotten ids, at most due_budget of them: a mass expiry takes
 * several turns), so every answer of the turn is decided at one instant
 * (pt_engine_advance_some says what a decision sees of work left due).
 * Every state change goes through
 * pt_turn_apply (engine inputs, input.h); an input that changed something
 * is handed to the recorder (the mirror's journal of the turn).
 * main's turn-end phase calls pt_turn_end, which does the same for a turn
 * that had no request (a timer woke the loop) and starts the next turn.
 * The clock never goes back; with a test clock it is a number in a file
 * that the tests move (pintuand --test-clock). */
#ifndef PT_TURN_H
#define PT_TURN_H

#include <stddef.h>
#include <stdint.h>

#include "engine.h"
#include "input.h"

typedef struct pt_turn {
  pt_engine *engine;
  /* Optional: an input that changed state, with its answer (NULL for
   * advance and settings). */
  void (*record)(void *ctx, const pt_input *in, const pt_result *r);
  void *record_ctx;
  /* Optional: every decision, changed or not (each request's input, and
   * an advance or setting that changed something), with its answer: what
   * the capture needs to re-decide exactly. */
  void (*trace)(void *ctx, const pt_input *in, const pt_result *r);
  void *trace_ctx;
  const char *test_clock; /* NULL: the wall clock */
  bool frozen;            /* may not decide (a standby, Redis away): time moves nothing */
  /* Due items the turn's advance may run, as pt_input's value for an
   * advance (0: all; n > 0: at most n; -1: none): what is left runs in the
   * next turns, the loop serving I/O in between. */
  int64_t due_budget;
  uint64_t deferred;      /* turns whose advance left due work for later */
  int64_t now;            /* this turn's time; 0 until read */
  int64_t last;           /* the latest time read: never goes back */
} pt_turn;

/* The time of this turn (reading the clock and advancing the engine the
 * first time it is asked in a turn). An advance is recorded when it changed
 * something or left due work for later: either way the engine's budget for
 * the turn's decisions is part of what a replay must reproduce. */
int64_t pt_turn_now(pt_turn *t);
/* Ends the turn: runs what is due by now; the next pt_turn_now reads the
 * clock afresh. Returns the turn's time. */
int64_t pt_turn_end(pt_turn *t);
/* Decides an input at the turn's time (in->now is set here). */
void pt_turn_apply(pt_turn *t, pt_input *in, pt_result *r);
/* The clock itself, without a turn: for timers and frame timeouts. */
int64_t pt_turn_clock(pt_turn *t);

/* Reads a test clock file: decimal epoch ms, optional trailing whitespace.
 * 0, or -1 with the reason in err. */
int pt_read_test_clock(const char *path, int64_t *ms, char *err, size_t errlen);

#endif
