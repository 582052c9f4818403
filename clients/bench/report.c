/* report.c owns what a run prints at its end: the human report, or the
 * JSON summary built with jansson (every string escaped), one object on one
 * line with the fields tests and scripts read: scenario, connections,
 * pipeline, rate, duration_s, requests, sent, throughput_rps, [planned,
 * planned_rps, sent_late,] unanswered, latency_us, uncorrected_latency_us,
 * status, [replay,] failover, verdict (null with --floor, beside "floor": true). */
#include "report.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "run.h"
#include "xalloc.h"

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

static json_t *must(json_t *j) {
  if (!j) pt_fatal("cannot build the JSON summary");
  return j;
}

static void set(json_t *obj, const char *key, json_t *val) {
  if (json_object_set_new(obj, key, must(val))) pt_fatal("cannot build the JSON summary");
}

static json_t *jcount(uint64_t n) { return json_integer((json_int_t)n); }

/* v as printf's "%.*f" would write it: the nearest double to that decimal,
 * which JSON_REAL_PRECISION(15) below writes back as those digits (a
 * whole one with ".0" after it). */
static json_t *jfixed(double v, int decimals) {
  if (!isfinite(v)) return json_null(); /* no number of JSON's */
  char s[64];
  snprintf(s, sizeof s, "%.*f", decimals, v);
  return json_real(strtod(s, NULL));
}

static json_t *jlatency(const pt_hist *h) {
  json_t *o = must(json_object());
  for (int i = 0; i < 6; i++) set(o, PN[i], jfixed((double)pt_hist_percentile(h, PS[i]) / 1e3, 1));
  set(o, "mean", jfixed(pt_hist_mean(h) / 1e3, 1));
  return o;
}

static json_t *jverdict(const pt_verdict *v) {
  json_t *vd = must(json_object());
  set(vd, "oversold", json_integer(v->oversold));
  set(vd, "users_over_limit", jcount(v->users_over_limit));
  set(vd, "stock_conserved", json_boolean(!v->not_conserved));
  set(vd, "campaigns", jcount(v->campaigns));
  set(vd, "users", jcount(v->users));
  set(vd, "unanswered", jcount(v->unanswered));
  set(vd, "pass", json_boolean(v->pass));
  return vd;
}

static void print_json(const bench *b, const figures *f, const pt_verdict *v) {
  const bench_opts *o = &b->o;
  json_t *j = must(json_object());
  set(j, "scenario", json_string(bench_scenario_names[o->scenario]));
  set(j, "connections", json_integer(o->conns));
  set(j, "pipeline", json_integer(o->depth));
  set(j, "rate", json_integer((json_int_t)nearbyint(o->rate)));
  set(j, "duration_s", jfixed(f->secs, 3));
  set(j, "requests", jcount(b->measured));
  set(j, "sent", jcount(b->sent_total));
  set(j, "throughput_rps", jfixed(f->tput, 1));
  if (f->open) {
    set(j, "planned", jcount(f->planned));
    set(j, "planned_rps", jfixed((double)f->planned / o->duration, 1));
    set(j, "sent_late", jcount(b->sent_late));
  }
  set(j, "unanswered", jcount(f->lost));
  set(j, "latency_us", jlatency(&b->lat));
  set(j, "uncorrected_latency_us", jlatency(&b->lat_raw));
  json_t *st = must(json_object());
  for (int s = 0; s < 32; s++)
    if (b->status_count[s]) set(st, status_name(s), jcount(b->status_count[s]));
  set(j, "status", st);
  if (o->scenario == SC_REPLAY) {
    json_t *rp = must(json_object());
    set(rp, "requests", jcount(b->nrreqs));
    set(rp, "compared", jcount(b->compared));
    set(rp, "divergences", jcount(b->divergences));
    if (b->first_div != SIZE_MAX) {
      json_t *d = must(json_object());
      set(d, "request", jcount(b->first_div + 1));
      set(d, "text", json_string(b->first_div_text));
      set(rp, "first_divergence", d);
    }
    set(j, "replay", rp);
  }
  json_t *fo = must(json_object());
  set(fo, "reconnects", jcount(b->failover.reconnects));
  set(fo, "redirects", jcount(b->failover.redirects));
  set(fo, "resent", jcount(b->failover.resent));
  set(j, "failover", fo);
  json_t *lf = must(json_object()); /* the load connections' (conns.c) */
  set(lf, "reconnects", jcount(b->load_reconnects));
  set(lf, "redirects", jcount(b->load_redirects));
  set(lf, "resent", jcount(b->load_resent));
  set(lf, "gave_up", jcount(b->load_gave_up));
  set(lf, "busy_retries", jcount(b->load_busy_retries));
  set(j, "load_failover", lf);
  if (v) {
    set(j, "verdict", jverdict(v));
  } else { /* --floor */
    set(j, "floor", json_true());
    set(j, "verdict", json_null());
  }
  char *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15));
  if (!s) pt_fatal("cannot write the JSON summary");
  printf("%s\n", s);
  free(s);
  json_decref(j);
}

/* ---- for people ---- */

static void print_human(const bench *b, const figures *f, const pt_verdict *v) {
  const bench_opts *o = &b->o;
  char how[64];
  if (o->scenario == SC_REPLAY && o->speed > 0) snprintf(how, sizeof how, "replay at %gx the recorded pace", o->speed);
  else if (o->scenario == SC_REPLAY) snprintf(how, sizeof how, "replay as fast as possible");
  else snprintf(how, sizeof how, "%s", o->rate > 0 ? "open loop" : "closed loop");
  printf("scenario %s: %d connections, pipeline %d, %s, %.1f s measured after %.1f s warm-up\n",
         bench_scenario_names[o->scenario], o->conns, o->depth, how, f->secs,
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
  printf("  status (of the measured requests):");
  for (int s = 0; s < 32; s++)
    if (b->status_count[s]) printf(" %s %llu", status_name(s), (unsigned long long)b->status_count[s]);
  printf("\n");
  if (o->scenario == SC_REPLAY) {
    printf("  replay: %zu requests, %llu replies compared, %llu divergences\n", b->nrreqs,
           (unsigned long long)b->compared, (unsigned long long)b->divergences);
    if (b->first_div != SIZE_MAX) printf("  first divergence: %s\n", b->first_div_text);
    if (b->divergences && b->replay_conns > 1)
      printf("  (across %d connections the order is only approximate: pintuan-replay FILE compares "
             "the decisions exactly)\n", b->replay_conns);
  }
  if (b->failover.reconnects || b->failover.redirects)
    printf("  failover (set-up and verdict connection): %llu reconnects, %llu redirects, %llu requests sent again\n",
           (unsigned long long)b->failover.reconnects, (unsigned long long)b->failover.redirects,
           (unsigned long long)b->failover.resent);
  if (b->load_reconnects || b->load_redirects || b->load_gave_up)
    printf("  failover (load connections): %llu reconnects, %llu redirects, %llu UNAVAILABLE or OVERLOADED "
           "backed off, %llu requests sent again, %llu connections gave up\n",
           (unsigned long long)b->load_reconnects, (unsigned long long)b->load_redirects,
           (unsigned long long)b->load_busy_retries, (unsigned long long)b->load_resent,
           (unsigned long long)b->load_gave_up);
  if (v) pt_verdict_print(stdout, v);
  else printf("verdict: none (--floor: the floor server keeps no state)\n");
}

void report_print(const bench *b, const pt_verdict *v) {
  figures f = work_out(b);
  if (b->o.json) print_json(b, &f, v);
  else print_human(b, &f, v);
}
