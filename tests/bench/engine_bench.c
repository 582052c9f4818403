/* Engine micro-benchmark, one core, no I/O. Prints figures; asserts nothing
 * about speed (machines here are noisy: medians of several runs).
 *
 *   reserve+confirm  cycles with unique request ids (both idempotency records
 *                    kept for a 1 s window of simulated time)
 *   reserve+expire   holds that run out and are reaped by the timer
 *   memory           bytes per live hold with 1M holds (1M users, 1M
 *                    request ids), from malloc's own accounting
 *
 *   auto joins       AUTO group-buy joins against 1k/10k/100k open groups
 *   recovery         rebuilding 1M live holds as a new primary does: from a
 *                    journal (msgpack inputs, unpacked, applied, each answer
 *                    checked against its digest) and from a snapshot
 *                    (pt_engine_restore); CPU time of this process, so that
 *                    other load on the machine does not count
 *
 * Usage: engine_bench [RUNS] [OPS] [flash|group|memory|recovery]
 *        (default 5 runs of 2M operations, every part; ids sealed as a
 *        daemon's are, PT_BENCH_UNKEYED=1 for the unkeyed ids of before) */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bigmem.h"
#include "engine.h"
#include "input.h"
#include "replay.h"

#define T0 1700000000000LL

static double secs(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_secs(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* Ids made up front so the timing is the engine's alone. */
typedef struct ids {
  char *buf;
  pt_bytes *v;
  size_t n;
} ids;

static ids make_ids(const char *prefix, size_t n) {
  ids x = {malloc(n * 24), malloc(n * sizeof(pt_bytes)), n};
  for (size_t i = 0; i < n; i++) {
    int len = snprintf(x.buf + i * 24, 24, "%s%zu", prefix, i);
    x.v[i] = (pt_bytes){(const uint8_t *)x.buf + i * 24, (size_t)len};
  }
  return x;
}
static void free_ids(ids *x) {
  free(x->buf);
  free(x->v);
}

/* Sealed ids, as a daemon's engine has them (ids.c); PT_BENCH_UNKEYED=1
 * measures the unkeyed ids of before, side by side. */
static pt_engine *mk_engine(int64_t window) {
  pt_engine_config cfg = {.idem_window_ms = window, .hash_seed = 7};
  pt_engine *e = pt_engine_new(&cfg);
  const char *unkeyed = getenv("PT_BENCH_UNKEYED");
  if (!unkeyed || strcmp(unkeyed, "1")) {
    static const uint8_t key[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    pt_engine_set_id_key(e, key, 1);
  }
  return e;
}

static void mk_campaign(pt_engine *e, const char *id, int64_t stock, uint32_t limit, int64_t hold) {
  pt_campaign_spec s = {.id = {(const uint8_t *)id, strlen(id)}, .kind = PT_FLASH_SALE,
                        .stock = stock, .per_user_limit = limit, .hold_ms = hold};
  pt_result r;
  pt_campaign_create(e, T0, (pt_bytes){(const uint8_t *)"mk", 2}, &s, &r);
  if (r.status != PT_OK) abort();
}

static const pt_bytes CID = {(const uint8_t *)"sku", 3};

/* A working set: how many users take part, and how many request ids are
 * live at once (the idempotency window, in operations). Simulated time runs
 * at 64 operations per millisecond. */
typedef struct scenario {
  const char *name;
  size_t users, live_ids;
} scenario;

#define OPS_PER_MS 64

static int64_t window_ms(const scenario *sc) { return (int64_t)(sc->live_ids / OPS_PER_MS) + 1; }

/* ops/s for reserve+confirm in steady state: every reserve and every
 * confirm is one op; a warm-up of two windows runs first, untimed. */
static double run_reserve_confirm(const scenario *sc, size_t cycles, ids *users, ids *rids) {
  pt_engine *e = mk_engine(window_ms(sc));
  mk_campaign(e, "sku", INT64_C(1) << 40, 0, 60000);
  int64_t now = T0;
  size_t warm = sc->live_ids, k = 0, nids = rids->n / 2;
  double t = 0;
  for (size_t i = 0; i < warm + cycles; i++, k = (k + 1) % nids) {
    if (i == warm) t = secs();
    if (i % (OPS_PER_MS / 2) == 0) pt_engine_advance(e, ++now);
    pt_result r;
    pt_reserve(e, now, rids->v[2 * k], CID, users->v[i % sc->users], 1, &r);
    pt_confirm(e, now, rids->v[2 * k + 1], CID, r.reservation_id, users->v[i % sc->users], &r);
    if (r.status != PT_OK) abort();
  }
  double dt = secs() - t;
  pt_engine_free(e);
  return 2.0 * (double)cycles / dt;
}

/* ops/s for reserve+expire in steady state: every reserve and every expiry
 * is one op (holds last 50 ms of simulated time). */
static double run_reserve_expire(const scenario *sc, size_t n, ids *users, ids *rids) {
  pt_engine *e = mk_engine(window_ms(sc));
  mk_campaign(e, "sku", INT64_C(1) << 40, 0, 50);
  int64_t now = T0;
  size_t warm = sc->live_ids, k = 0;
  double t = 0;
  pt_engine_stats st0 = {0}, st;
  for (size_t i = 0; i < warm + n; i++, k = (k + 1) % rids->n) {
    if (i == warm) {
      t = secs();
      pt_engine_stats_get(e, &st0);
    }
    if (i % OPS_PER_MS == 0) pt_engine_advance(e, ++now);
    pt_result r;
    pt_reserve(e, now, rids->v[k], CID, users->v[i % sc->users], 1, &r);
    if (r.status != PT_OK) abort();
  }
  double dt = secs() - t;
  pt_engine_stats_get(e, &st);
  pt_engine_free(e);
  return (double)(n + st.expiries - st0.expiries) / dt;
}

/* AUTO joins/s with `groups` open groups of random fill (group size 10):
 * each join picks the fullest group the user is not in, O(log groups).
 * look > 0: the table slots of the join `look` places ahead are prefetched
 * first (pt_engine_prefetch), as the daemon does for pipelined requests. */
static double run_auto_joins(size_t groups, size_t joins, ids *users, ids *rids, size_t look) {
  pt_engine *e = mk_engine(60000);
  pt_campaign_spec s = {.id = CID, .kind = PT_GROUP_BUY, .stock = INT64_C(1) << 40,
                        .hold_ms = 600000, .group_size = 10, .group_ttl_ms = 3600000};
  pt_result r;
  pt_campaign_create(e, T0, (pt_bytes){(const uint8_t *)"mk", 2}, &s, &r);
  if (r.status != PT_OK) abort();
  uint64_t x = 88172645463325252ULL;
  size_t k = 0, u = 0;
  for (size_t g = 0; g < groups; g++) { /* untimed: the open groups */
    pt_join(e, T0, rids->v[k++], CID, users->v[u++ % users->n], PT_JOIN_OPEN, 0, true, &r);
    uint64_t gid = r.group_id;
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    for (size_t m = x % 8; m > 0; m--)
      pt_join(e, T0, rids->v[k++], CID, users->v[u++ % users->n], PT_JOIN_GROUP, gid, true, &r);
  }
  pt_engine_stats st0, st1;
  pt_engine_stats_get(e, &st0);
  double t = secs();
  for (size_t j = 0; j < joins; j++) {
    if (look)
      pt_engine_prefetch(e, CID, users->v[(u + look) % users->n], rids->v[(k + look) % rids->n]);
    pt_join(e, T0, rids->v[k++ % rids->n], CID, users->v[u++ % users->n], PT_JOIN_AUTO, 0, true, &r);
    if (r.status != PT_OK) abort();
  }
  double dt = secs() - t;
  pt_engine_stats_get(e, &st1);
  if (st1.open_groups < groups / 2) abort(); /* still measuring against many groups */
  pt_engine_free(e);
  return (double)joins / dt;
}

/* malloc's bytes in use and the engine's huge-page blocks (bigmem.h) */
static size_t heap_in_use(void) {
  struct mallinfo2 m = mallinfo2();
  return m.uordblks + m.hblkhd + pt_big_bytes();
}

static double bytes_per_hold(size_t n, ids *users, ids *rids) {
  size_t before = heap_in_use();
  pt_engine *e = mk_engine(15 * 60 * 1000);
  mk_campaign(e, "sku", INT64_C(1) << 40, 1, 15 * 60 * 1000);
  for (size_t i = 0; i < n; i++) {
    pt_result r;
    pt_reserve(e, T0, rids->v[i], CID, users->v[i], 1, &r);
    if (r.status != PT_OK) abort();
  }
  size_t after = heap_in_use();
  pt_engine_free(e);
  return (double)(after - before) / (double)n;
}

/* Bytes per remembered effect: n confirms, each with a new request id, of
 * holds made before the measurement (a confirm allocates nothing else). */
static double bytes_per_effect(size_t n, ids *users, ids *rids, size_t *idlen) {
  pt_engine *e = mk_engine(15 * 60 * 1000);
  mk_campaign(e, "sku", INT64_C(1) << 40, 0, 15 * 60 * 1000);
  uint64_t *res = malloc(n * sizeof(*res));
  for (size_t i = 0; i < n; i++) {
    pt_result r;
    pt_reserve(e, T0, rids->v[i], CID, users->v[i % users->n], 1, &r);
    if (r.status != PT_OK) abort();
    res[i] = r.reservation_id;
  }
  size_t before = heap_in_use(), len = 0;
  for (size_t i = 0; i < n; i++) {
    pt_result r;
    pt_confirm(e, T0, rids->v[n + i], CID, res[i], users->v[i % users->n], &r);
    if (r.status != PT_OK) abort();
    len += rids->v[n + i].len;
  }
  size_t after = heap_in_use();
  pt_engine_free(e);
  free(res);
  *idlen = len / n;
  return (double)(after - before) / (double)n;
}

/* Heap growth over n SOLD_OUT requests, each with its own request id and
 * user: nothing is remembered for a request that changed nothing. */
static double stampede_growth(size_t n, ids *users, ids *rids) {
  pt_engine *e = mk_engine(15 * 60 * 1000);
  mk_campaign(e, "sku", 0, 1, 60000);
  size_t before = heap_in_use();
  for (size_t i = 0; i < n; i++) {
    pt_result r;
    pt_reserve(e, T0 + (int64_t)(i / 1000), rids->v[i % rids->n], CID, users->v[i % users->n], 1, &r);
    if (r.status != PT_SOLD_OUT) abort();
  }
  size_t after = heap_in_use();
  pt_engine_free(e);
  return (double)after - (double)before;
}

/* ---- recovery ---- */

#define PER_RECORD 100 /* inputs per journal record, about a loop turn's worth */

typedef struct journal {
  msgpack_sbuffer buf;
  size_t *rec_end; /* where each record ends in buf */
  size_t nrec;
} journal;

static int sbuf_snap(void *ctx, const void *p, size_t n) {
  msgpack_sbuffer_write(ctx, p, n);
  return 0;
}

/* The journal of n reserves that each made a hold (every record its
 * inputs, as the daemon appends them), and the live engine's snapshot. */
static pt_engine *make_journal(size_t n, ids *users, ids *rids, journal *j) {
  pt_engine *e = mk_engine(15 * 60 * 1000);
  msgpack_sbuffer_init(&j->buf);
  msgpack_packer pk;
  msgpack_packer_init(&pk, &j->buf, msgpack_sbuffer_write);
  j->nrec = n / PER_RECORD + 2;
  j->rec_end = malloc(j->nrec * sizeof(size_t));
  pt_campaign_spec spec = {.id = CID, .kind = PT_FLASH_SALE, .stock = (int64_t)n,
                           .per_user_limit = 1, .hold_ms = 15 * 60 * 1000};
  pt_input in = {.kind = PT_IN_CREATE, .now = T0, .request_id = {(const uint8_t *)"mk", 2},
                 .campaign_id = CID, .spec = spec};
  pt_result r;
  pt_input_apply(e, &in, &r);
  pt_input_pack(&pk, &in, &r);
  size_t k = 0;
  j->rec_end[k++] = j->buf.size;
  for (size_t i = 0; i < n; i++) {
    in = (pt_input){.kind = PT_IN_RESERVE, .now = T0 + (int64_t)(i / 64), .request_id = rids->v[i],
                    .campaign_id = CID, .user_id = users->v[i], .quantity = 1};
    pt_input_apply(e, &in, &r);
    if (r.status != PT_OK) abort();
    pt_input_pack(&pk, &in, &r);
    if ((i + 1) % PER_RECORD == 0 || i + 1 == n) j->rec_end[k++] = j->buf.size;
  }
  j->nrec = k;
  return e;
}

/* Replays the journal into a new engine as recovery does (pt_replay_inputs,
 * lookups prefetched ahead); CPU seconds. */
static double replay_journal(const journal *j, size_t n) {
  double t = cpu_secs();
  pt_engine *e = mk_engine(15 * 60 * 1000);
  uint64_t inputs = 0;
  char err[256];
  for (size_t k = 0, start = 0; k < j->nrec; start = j->rec_end[k++])
    if (pt_replay_inputs(e, j->buf.data, j->rec_end[k], start, &inputs, err, sizeof err)) {
      fprintf(stderr, "replay: %s\n", err);
      abort();
    }
  t = cpu_secs() - t;
  if (inputs != n + 1) abort();
  pt_engine_free(e);
  return t;
}

/* The same, one input at a time with no lookahead: the baseline. */
static double replay_journal_plain(const journal *j, size_t n) {
  double t = cpu_secs();
  pt_engine *e = mk_engine(15 * 60 * 1000);
  msgpack_unpacked u;
  msgpack_unpacked_init(&u);
  size_t off = 0, inputs = 0;
  char err[128];
  for (size_t k = 0; k < j->nrec; k++) {
    while (off < j->rec_end[k] &&
           msgpack_unpack_next(&u, j->buf.data, j->rec_end[k], &off) == MSGPACK_UNPACK_SUCCESS) {
      pt_input in;
      pt_input_digest d;
      if (pt_input_unpack(&u.data, &in, &d, err, sizeof err)) abort();
      pt_result r;
      pt_input_apply(e, &in, &r);
      if (!pt_input_same(&d, &r)) abort();
      inputs++;
    }
  }
  msgpack_unpacked_destroy(&u);
  t = cpu_secs() - t;
  if (inputs != n + 1) abort();
  pt_engine_free(e);
  return t;
}

static double restore_snapshot(const msgpack_sbuffer *snap) {
  double t = cpu_secs();
  pt_engine_config cfg = {.idem_window_ms = 15 * 60 * 1000, .hash_seed = 7};
  char err[128];
  pt_engine *e = pt_engine_restore(&cfg, snap->data, snap->size, err, sizeof err);
  if (!e) {
    fprintf(stderr, "restore: %s\n", err);
    abort();
  }
  t = cpu_secs() - t;
  pt_engine_free(e);
  return t;
}

int main(int argc, char **argv) {
  int runs = argc > 1 ? atoi(argv[1]) : 5;
  size_t ops = argc > 2 ? (size_t)atol(argv[2]) : 2000000;
  if (runs < 1) runs = 1;
  size_t cycles = ops / 2;
  const char *only = argc > 3 ? argv[3] : "";
#define PART(name) (!*only || !strcmp(only, name))
  /* Request ids are reused only after far more than a window has passed. */
  ids users = make_ids("user-", 1000000);
  ids rids = make_ids("order-", 8000000);
  static const scenario scs[] = {
      {"hot  (10k users, 16k live request ids)", 10000, 16384},
      {"sale (1M users, 2M live request ids)", 1000000, 2000000},
  };
  if (runs > 64) runs = 64;
  printf("engine micro-benchmark: %d runs of %zu ops each, one core, steady state\n", runs, ops);
  for (size_t s = 0; PART("flash") && s < sizeof scs / sizeof scs[0]; s++) {
    double rc[64], re[64];
    for (int i = 0; i < runs; i++) {
      rc[i] = run_reserve_confirm(&scs[s], cycles, &users, &rids);
      re[i] = run_reserve_expire(&scs[s], cycles, &users, &rids);
    }
    qsort(rc, (size_t)runs, sizeof(double), cmp_d);
    qsort(re, (size_t)runs, sizeof(double), cmp_d);
    printf("%s\n", scs[s].name);
    printf("  reserve+confirm  %6.2f M ops/s median  (min %.2f, max %.2f)\n", rc[runs / 2] / 1e6,
           rc[0] / 1e6, rc[runs - 1] / 1e6);
    printf("  reserve+expire   %6.2f M ops/s median  (min %.2f, max %.2f)\n", re[runs / 2] / 1e6,
           re[0] / 1e6, re[runs - 1] / 1e6);
  }
  static const size_t ngroups[] = {1000, 10000, 100000};
  printf("group buy: AUTO joins, group size 10, groups of random fill (joins per run: %zu)\n",
         cycles / 5);
  for (size_t gi = 0; PART("group") && gi < 3; gi++) {
    double aj[64], al[64]; /* one by one; with a lookahead of 8 (alternating runs) */
    for (int i = 0; i < runs; i++) {
      aj[i] = run_auto_joins(ngroups[gi], cycles / 5, &users, &rids, 0);
      al[i] = run_auto_joins(ngroups[gi], cycles / 5, &users, &rids, 8);
    }
    qsort(aj, (size_t)runs, sizeof(double), cmp_d);
    qsort(al, (size_t)runs, sizeof(double), cmp_d);
    printf("  %6zu open groups  %6.2f M joins/s median  (min %.2f, max %.2f);  lookahead 8: %.2f M (%.2f-%.2f)\n",
           ngroups[gi], aj[runs / 2] / 1e6, aj[0] / 1e6, aj[runs - 1] / 1e6, al[runs / 2] / 1e6,
           al[0] / 1e6, al[runs - 1] / 1e6);
  }
  if (PART("memory")) { /* sizes follow OPS: 2M (the default) gives 1M holds */
    size_t nh = ops / 2 > 1000000 ? 1000000 : ops / 2;
    printf("memory           %6.1f bytes per live hold (%zu holds, each with its user and request id)\n",
           bytes_per_hold(nh, &users, &rids), nh);
    size_t idlen;
    double be = bytes_per_effect(nh, &users, &rids, &idlen);
    printf("memory           %6.1f bytes per remembered effect (%zu confirms; ids of %zu bytes: %.1f + the id)\n",
           be, nh, idlen, be - (double)idlen);
    printf("memory           %6.1f MB heap growth over %.1fM SOLD_OUT requests (each its own request id)\n",
           stampede_growth(nh * 10, &users, &rids) / 1e6, (double)nh * 10 / 1e6);
  }
  if (PART("recovery")) { /* 2M ops (the default): 1M holds */
    size_t nh = ops / 2 > 1000000 ? 1000000 : ops / 2;
    journal j;
    pt_engine *live = make_journal(nh, &users, &rids, &j);
    msgpack_sbuffer snap;
    msgpack_sbuffer_init(&snap);
    if (pt_engine_snapshot(live, sbuf_snap, &snap)) abort();
    pt_engine_free(live);
    double rj[64], rp[64], rs[64];
    for (int i = 0; i < runs; i++) {
      rp[i] = replay_journal_plain(&j, nh);
      rj[i] = replay_journal(&j, nh);
      rs[i] = restore_snapshot(&snap);
    }
    qsort(rj, (size_t)runs, sizeof(double), cmp_d);
    qsort(rp, (size_t)runs, sizeof(double), cmp_d);
    qsort(rs, (size_t)runs, sizeof(double), cmp_d);
    printf("recovery of %zu live holds (CPU time; journal %.1f MB in %zu records, snapshot %.1f MB)\n",
           nh, (double)j.buf.size / 1e6, j.nrec, (double)snap.size / 1e6);
    printf("  journal, one at a time    %6.3f s median  (min %.3f, max %.3f)  %.2f M inputs/s\n",
           rp[runs / 2], rp[0], rp[runs - 1], (double)nh / rp[runs / 2] / 1e6);
    printf("  journal, pt_replay_inputs %6.3f s median  (min %.3f, max %.3f)  %.2f M inputs/s\n",
           rj[runs / 2], rj[0], rj[runs - 1], (double)nh / rj[runs / 2] / 1e6);
    printf("  snapshot restore          %6.3f s median  (min %.3f, max %.3f)\n", rs[runs / 2], rs[0],
           rs[runs - 1]);
    msgpack_sbuffer_destroy(&snap);
    msgpack_sbuffer_destroy(&j.buf);
    free(j.rec_end);
  }
  free_ids(&users);
  free_ids(&rids);
  return 0;
}
