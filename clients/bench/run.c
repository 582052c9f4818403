/* run.c owns the schedule of a run and its figures. Open loop (-R): request
 * i is planned for start + i/R and its latency is measured from that
 * planned time (coordinated-omission corrected), the latency from the
 * actual send kept beside it; every request planned before the end is
 * sent, late when the daemon fell behind, and the run ends when all were
 * answered. Closed loop: each connection keeps -p requests in flight.
 * Replay: replay.c says what is due. */
#include "run.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "conns.h"
#include "replay.h"
#include "scenarios.h"
#include "wire.h"
#include "xalloc.h"

#define STALL_NS 5000000000LL /* after t_end, this long without a reply ends the run */
#define END_POLL_NS 1000000LL  /* after t_end (or a replay's last send), how often the end is checked */

static void send_due(bench *b, int64_t t);

static void freeq_push(bench *b, int c) {
  b->freeq[(b->freeq_head + b->freeq_n++) % b->freeq_cap] = c;
}

static int freeq_pop(bench *b) {
  int c = b->freeq[b->freeq_head];
  b->freeq_head = (b->freeq_head + 1) % b->freeq_cap;
  b->freeq_n--;
  return c;
}

void run_init(bench *b) {
  pt_hist_reset(&b->lat);
  pt_hist_reset(&b->lat_raw);
  pt_hist_reset(&b->sec_hist);
  uv_idle_init(b->loop, &b->idler);
  uv_timer_init(b->loop, &b->ticker);
  b->idler.data = b->ticker.data = b->pace.data = b;
  b->pace_fd = -1;
}

/* Only a replayed request's reply is decoded whole (it is compared); the
 * others are read for the few fields the scenarios use (wire.c). */
void run_on_reply(bench *b, conn *c, const uint8_t *msg, size_t len, int64_t t) {
  bw_reply r;
  if (bw_reply_get(msg, len, &r)) {
    b->status_count[0]++;
    return;
  }
  if (r.id == 0 && r.result == BW_RESULT_EVENT) return;
  if (c->n == 0) { /* nothing in flight: an unsolicited error */
    b->status_count[r.status < 32 ? r.status : 0]++;
    return;
  }
  if (r.status == PINTUAN__V1__STATUS__NOT_LEADER) { /* not an answer: to the primary, all of it again */
    Pintuan__V1__Response *full = pintuan__v1__response__unpack(NULL, len, msg);
    conn_redirect(c, full ? full->leader : NULL);
    pintuan__v1__response__free_unpacked(full, NULL);
    return;
  }
  if ((r.status == PINTUAN__V1__STATUS__UNAVAILABLE || r.status == PINTUAN__V1__STATUS__OVERLOADED) &&
      b->o.scenario != SC_REPLAY) { /* "shortly": back off, then all of it again (a replay compares it) */
    conn_busy(c);
    return;
  }
  inflight f = c->ring[c->head];
  c->head = (c->head + 1) % c->cap;
  c->n--;
  conn_answered(c, f.frame_len);
  b->completed++;
  b->last_reply = t;
  pt_hist_record(&b->sec_hist, (uint64_t)(t - f.planned)); /* the progress line: warm-up too */
  if (f.planned >= b->t_measure && f.planned < b->t_end) { /* the figures: the measured part */
    b->measured++;
    b->last_measured = t;
    b->status_count[r.status < 32 ? r.status : 0]++;
    pt_hist_record(&b->lat, (uint64_t)(t - f.planned));
    pt_hist_record(&b->lat_raw, (uint64_t)(t - f.sent));
  }
  if (f.op == OP_REPLAYED) {
    Pintuan__V1__Response *full = pintuan__v1__response__unpack(NULL, len, msg);
    if (full) replay_on_reply(b, &f, msg, len, full);
    pintuan__v1__response__free_unpacked(full, NULL);
  } else {
    scenario_on_reply(b, &f, &r);
  }
  if (b->o.scenario != SC_REPLAY) {
    if (b->o.rate > 0) {
      freeq_push(b, c->idx);
      send_due(b, t); /* a request kept waiting for this slot goes now */
    } else if (!b->stopping) {
      scenario_send(b, c, t, t);
    }
  }
}

uint64_t run_unanswered(const bench *b) {
  uint64_t n = 0;
  for (int i = 0; i < b->o.conns; i++) n += b->conns[i].n;
  if (b->o.rate > 0 && b->o.scenario != SC_REPLAY && b->pacer.sent < b->planned_total)
    n += b->planned_total - b->pacer.sent;
  return n;
}

/* How many requests the pacer plans before t: the i with planned(i) < t. */
static uint64_t planned_before(const pt_pacer *p, int64_t t) {
  if (t <= p->start_ns) return 0;
  uint64_t n = (uint64_t)((double)(t - p->start_ns) * p->rate / 1e9);
  while (n > 0 && pt_pacer_planned(p, n - 1) >= t) n--;
  while (pt_pacer_planned(p, n) < t) n++;
  return n;
}

void run_finish(bench *b) {
  b->stopping = true;
  uv_idle_stop(&b->idler);
  uv_timer_stop(&b->ticker);
  if (b->pace_fd >= 0) {
    uv_poll_stop(&b->pace);
    uv_close((uv_handle_t *)&b->pace, NULL);
    close(b->pace_fd);
    b->pace_fd = -1;
  }
  conns_close(b);
  uv_close((uv_handle_t *)&b->idler, NULL);
  uv_close((uv_handle_t *)&b->ticker, NULL);
}

/* Open loop: sends what the pacer says is due by t, as far as pipeline
 * slots allow; from t_end on, whatever of the plan is left. */
static void send_due(bench *b, int64_t t) {
  if (b->o.scenario == SC_REPLAY) return;
  uint64_t due = t < b->t_end ? pt_pacer_due(&b->pacer, t) : b->planned_total - b->pacer.sent;
  while (due > 0 && b->freeq_n) {
    int ci = freeq_pop(b);
    if (b->conns[ci].dead) continue; /* one reconnecting sends it with the rest, once back */
    scenario_send(b, &b->conns[ci], pt_pacer_planned(&b->pacer, b->pacer.sent), t);
    b->pacer.sent++;
    due--;
    if (t >= b->t_end) b->sent_late++;
  }
}

/* From t_end on: the run ends once everything it was to send (open loop:
 * every request planned before t_end; closed loop: nothing more) was sent
 * and answered, not at a clock instant, so a late machine changes the
 * latencies, never the count. A daemon silent for STALL_NS, or no
 * connection left, ends it anyway; what was not answered is reported. */
static void end_check(bench *b, int64_t t) {
  bool all_sent = b->o.rate <= 0 || b->pacer.sent >= b->planned_total;
  if (all_sent) b->stopping = true;
  int64_t since = b->last_reply > b->t_end ? b->last_reply : b->t_end;
  bool stalled = t - since >= STALL_NS && !conns_reconnecting(b); /* a failover is no stall */
  if ((all_sent && conns_in_flight(b) == 0) || !conns_alive(b) || stalled) run_finish(b);
}

static void pace_step(bench *b, int64_t t) {
  if (b->o.scenario == SC_REPLAY) {
    replay_send_due(b, t);
    if (replay_all_sent(b) && conns_in_flight(b) == 0) run_finish(b);
    return;
  }
  send_due(b, t);
  if (t >= b->t_end) end_check(b, t);
}

static void on_idle(uv_idle_t *h) { pace_step(h->data, now_ns()); }

/* --tick-us N: the sender sleeps until its next request is due, but wakes
 * at most every N µs (a wake-up per request would cost more syscalls than
 * the requests), so sends go in small batches up to N µs late; their
 * latency still counts from the planned time. A reply that frees a
 * pipeline slot sends what waited for one at once (run_on_reply). */
static int64_t next_wake(bench *b, int64_t t) {
  int64_t at;
  if (b->o.scenario == SC_REPLAY)
    at = replay_all_sent(b) ? t + END_POLL_NS : replay_next_planned(b);
  else if (t >= b->t_end)
    at = t + END_POLL_NS;
  else {
    at = b->pacer.sent < b->planned_total ? pt_pacer_planned(&b->pacer, b->pacer.sent) : b->t_end;
    if (at > b->t_end) at = b->t_end;
  }
  int64_t soonest = t + (int64_t)b->o.tick_us * 1000;
  return at < soonest ? soonest : at;
}

static void pace_arm(bench *b, int64_t t) {
  int64_t at = next_wake(b, t); /* uv_hrtime is CLOCK_MONOTONIC, as is the timerfd */
  struct itimerspec its = {.it_value = {.tv_sec = at / 1000000000, .tv_nsec = at % 1000000000}};
  if (timerfd_settime(b->pace_fd, TFD_TIMER_ABSTIME, &its, NULL) < 0) {
    fprintf(stderr, "pintuan-bench: timerfd_settime: %s\n", strerror(errno));
    exit(1);
  }
}

static void on_pace(uv_poll_t *h, int status, int events) {
  (void)status, (void)events;
  bench *b = h->data;
  uint64_t fired;
  if (read(b->pace_fd, &fired, sizeof fired) < 0) {} /* EAGAIN: woken with nothing fired; the clock decides */
  int64_t t = now_ns();
  pace_step(b, t);
  if (b->pace_fd >= 0) pace_arm(b, t); /* run_finish closed it */
}

static void on_tick(uv_timer_t *h) {
  bench *b = h->data;
  int64_t t = now_ns();
  if (b->o.scenario != SC_REPLAY && b->o.rate <= 0 && t >= b->t_end) end_check(b, t); /* closed loop */
  if (!b->o.progress) return;
  double el = (double)(t - b->t_start) / 1e9;
  uint64_t done = b->completed - b->sec_done;
  b->sec_done = b->completed;
  fprintf(stderr, "[%5.1fs] %s %9llu req/s  p99 %8.3f ms  in flight %zu\n", el,
          t < b->t_measure ? "warm-up" : t < b->t_end ? "measure" : "drain  ", (unsigned long long)done,
          (double)pt_hist_percentile(&b->sec_hist, 99) / 1e6, conns_in_flight(b));
  pt_hist_reset(&b->sec_hist);
}

/* Open loop and replay are driven by the clock: polled every loop turn
 * (--tick-us 0, exact send times, a core spent), or a timerfd. A closed
 * loop is driven by replies alone. */
static void pace_start(bench *b) {
  if (b->o.tick_us > 0) {
    b->pace_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (b->pace_fd >= 0 && uv_poll_init(b->loop, &b->pace, b->pace_fd) == 0 &&
        uv_poll_start(&b->pace, UV_READABLE, on_pace) == 0) {
      pace_arm(b, now_ns());
      return;
    }
    fprintf(stderr, "pintuan-bench: no timerfd (%s): polling the clock instead\n", strerror(errno));
    if (b->pace_fd >= 0) close(b->pace_fd);
    b->pace_fd = -1;
  }
  uv_idle_start(&b->idler, on_idle);
}

void run_start(bench *b) {
  const bench_opts *o = &b->o;
  b->t_start = now_ns();
  b->t_measure = b->t_start + (int64_t)(o->warmup * 1e9);
  b->t_end = b->t_measure + (int64_t)(o->duration * 1e9);
  if (o->scenario == SC_REPLAY) {
    b->t_measure = b->t_start;
    b->t_end = INT64_MAX;
  }
  uv_timer_start(&b->ticker, on_tick, 1000, 1000);
  if (o->scenario == SC_REPLAY) {
    pace_start(b);
  } else if (o->rate > 0) {
    pt_pacer_init(&b->pacer, b->t_start, o->rate);
    b->planned_first = planned_before(&b->pacer, b->t_measure);
    b->planned_total = planned_before(&b->pacer, b->t_end);
    b->freeq_cap = (size_t)o->conns * (size_t)o->depth;
    b->freeq = pt_xmalloc(b->freeq_cap * sizeof(*b->freeq));
    for (int d = 0; d < o->depth; d++)
      for (int i = 0; i < o->conns; i++) freeq_push(b, i);
    pace_start(b);
  } else {
    for (int i = 0; i < o->conns; i++)
      for (int d = 0; d < o->depth; d++) scenario_send(b, &b->conns[i], b->t_start, b->t_start);
  }
}

void run_free(bench *b) {
  free(b->freeq);
  b->freeq = NULL;
}
