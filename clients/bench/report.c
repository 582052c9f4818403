/* report.c owns what a run prints at its end: the human report, or the
 * JSON summary: one object on one line, with the fields tests and scripts
 * read: scenario, connections, pipeline, rate, duration_s, requests, sent,
 * throughput_rps, [planned, planned_rps, sent_late,] unanswered,
 * latency_us, uncorrected_latency_us, status, [replay,] failover, verdict. */
#include "report.h"

#include <stdio.h>
#include <stdlib.h>

#include "run.h"

static const double PS[] = {50, 90, 99, 99.9, 99.99, 100};
static const char *const PN[] = {"50", "90", "99", "99.9", "99.99", "max"};

/* What the report says of the run, worked out once for both forms. */
typedef struct figures {
  double secs, tput;
  bool open;
  uint64_t planned, lost;
} figures;

static figures work_out(const bench *b) {
  const bench_opts *o = &b->o;
  figures f = {.secs = o->scenario == SC_REPLAY ? (double)(now_ns() - b->t_start) / 1e9 : o->duration};
  f.open = o->rate > 0 && o->scenario != SC_REPLAY;
  /* open loop: a daemon that fell behind answered the measured requests
   * over longer than -d; throughput is over the time they really took */
  if (f.open && b->last_measured > b->t_measure && (double)(b->last_measured - b->t_measure) / 1e9 > f.secs)
    f.secs = (double)(b->last_measured - b->t_measure) / 1e9;
  f.tput = (double)b->measured / f.secs;
  f.planned = f.open ? b->planned_total - b->planned_first : 0;
  f.lost = run_unanswered(b);
  return f;
}

static const char *status_name(int s) { return s ? pintuan_status_str(s) : "UNDECODABLE"; }

/* ---- JSON ---- */

static void print_json(const bench *b, const figures *f, const pt_verdict *v) {
  const bench_opts *o = &b->o;
  printf("{\"scenario\":\"%s\",\"connections\":%d,\"pipeline\":%d,\"rate\":%.0f,\"duration_s\":%.3f,"
         "\"requests\":%llu,\"sent\":%llu,\"throughput_rps\":%.1f,",
         bench_scenario_names[o->scenario], o->conns, o->depth, o->rate, f->secs, (unsigned long long)b->measured,
         (unsigned long long)b->sent_total, f->tput);
  if (f->open)
    printf("\"planned\":%llu,\"planned_rps\":%.1f,\"sent_late\":%llu,", (unsigned long long)f->planned,
           (double)f->planned / o->duration, (unsigned long long)b->sent_late);
  printf("\"unanswered\":%llu,", (unsigned long long)f->lost);
  for (int k = 0; k < 2; k++) {
    const pt_hist *h = k ? &b->lat_raw : &b->lat;
    printf("\"%s\":{", k ? "uncorrected_latency_us" : "latency_us");
    for (int i = 0; i < 6; i++)
      printf("%s\"%s\":%.1f", i ? "," : "", PN[i], (double)pt_hist_percentile(h, PS[i]) / 1e3);
    printf(",\"mean\":%.1f},", pt_hist_mean(h) / 1e3);
  }
  printf("\"status\":{");
  int first = 1;
  for (int s = 0; s < 32; s++)
    if (b->status_count[s]) printf("%s\"%s\":%llu", first ? "" : ",", s ? pintuan_status_str(s) : "UNDECODABLE",
                                (unsigned long long)b->status_count[s]), first = 0;
  printf("},");
  if (o->scenario == SC_REPLAY) {
    printf("\"replay\":{\"requests\":%zu,\"compared\":%llu,\"divergences\":%llu", b->nrreqs,
           (unsigned long long)b->compared, (unsigned long long)b->divergences);
    if (b->first_div != SIZE_MAX) printf(",\"first_divergence\":{\"request\":%zu,\"text\":\"%s\"}", b->first_div + 1, b->first_div_text);
    printf("},");
  }
  printf("\"failover\":{\"reconnects\":%llu,\"redirects\":%llu,\"resent\":%llu},",
         (unsigned long long)b->failover.reconnects, (unsigned long long)b->failover.redirects,
         (unsigned long long)b->failover.resent);
  printf("\"verdict\":{\"oversold\":%lld,\"users_over_limit\":%zu,\"stock_conserved\":%s,"
         "\"campaigns\":%zu,\"users\":%zu,\"pass\":%s}}\n",
         (long long)v->oversold, v->users_over_limit, v->not_conserved ? "false" : "true", v->campaigns,
         v->users, v->pass ? "true" : "false");
}

/* ---- for people ---- */

static void print_human(const bench *b, const figures *f, const pt_verdict *v) {
  const bench_opts *o = &b->o;
  printf("scenario %s: %d connections, pipeline %d, %s, %.1f s measured after %.1f s warm-up\n",
         bench_scenario_names[o->scenario], o->conns, o->depth, o->rate > 0 ? "open loop" : "closed loop", f->secs,
         o->scenario == SC_REPLAY ? 0 : o->warmup);
  if (f->open) {
    printf("  target rate %.0f req/s: %llu requests planned in the measured %.1f s\n", o->rate,
           (unsigned long long)f->planned, o->duration);
    if (b->sent_late)
      printf("  sending fell behind: %llu requests were sent after the planned end, late\n",
             (unsigned long long)b->sent_late);
  }
  printf("  %llu requests measured (%llu sent in all, warm-up included), %.0f req/s\n",
         (unsigned long long)b->measured, (unsigned long long)b->sent_total, f->tput);
  printf("  latency (ms)   %10s %10s\n", "corrected", "uncorrected");
  for (int i = 0; i < 6; i++)
    printf("  %-12s   %10.3f %10.3f\n", PN[i], (double)pt_hist_percentile(&b->lat, PS[i]) / 1e6,
           (double)pt_hist_percentile(&b->lat_raw, PS[i]) / 1e6);
  if (f->lost)
    printf("  %llu requests got no reply (connection lost or daemon stalled)\n", (unsigned long long)f->lost);
  printf("  status:");
  for (int s = 0; s < 32; s++)
    if (b->status_count[s]) printf(" %s %llu", status_name(s), (unsigned long long)b->status_count[s]);
  printf("\n");
  if (o->scenario == SC_REPLAY) {
    printf("  replay: %zu requests, %llu replies compared, %llu divergences\n", b->nrreqs,
           (unsigned long long)b->compared, (unsigned long long)b->divergences);
    if (b->first_div != SIZE_MAX) printf("  first divergence: %s\n", b->first_div_text);
  }
  if (b->failover.reconnects || b->failover.redirects)
    printf("  failover (set-up and verdict connection): %llu reconnects, %llu redirects, %llu requests sent again\n",
           (unsigned long long)b->failover.reconnects, (unsigned long long)b->failover.redirects,
           (unsigned long long)b->failover.resent);
  pt_verdict_print(stdout, v);
}

void report_print(const bench *b, const pt_verdict *v) {
  figures f = work_out(b);
  if (b->o.json) print_json(b, &f, v);
  else print_human(b, &f, v);
}
