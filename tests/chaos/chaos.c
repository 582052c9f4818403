/* pintuan-chaos: kill -9 the primary of a pair of daemons under load, over
 * and over, and check after every cycle that nothing the clients were told
 * was lost or doubled.
 *
 * One redis-server and two pintuand (one shard, a short lease) are started
 * on free loopback ports. Each cycle: a new flash sale with a small stock
 * and a per-user limit; client threads (libpintuan, both addresses,
 * failover on) reserve with unique request ids, and pintuan-bench (when
 * given) stampedes beside them; once enough answers came, the primary is
 * killed with SIGKILL; the standby takes over; the load goes on through the
 * takeover; then the threads stop and the verdict is taken on the new
 * primary:
 *   - acknowledged lost: an OK answer whose reservation is gone, or whose
 *     retry (same request id) is not answered with the same reservation;
 *   - duplicate effects: units held != the units of the requests whose
 *     answer is OK (every request counted once, however often it was sent);
 *   - oversold: held + sold beyond stock, available + held + sold != stock,
 *     or a user above the limit.
 * The killed daemon is started again as the standby for the next cycle.
 * Takeover time (the kill to the standby's "role=primary") is reported as
 * percentiles. Exit 0 when every cycle passed.
 *
 * usage: pintuan-chaos [--cycles N] [--lease-ms MS] [--threads N]
 *                      [--bench PATH] [--bench-conns N] [--bench-depth N]
 *                      [--bench-stock N] [--kill-in-parts] [--snapshot-after BYTES]
 *                      [--snapshot-growth PCT] [--kill-in-snapshot] [--json]
 * --bench-conns, --bench-depth: the bench's connections and requests in
 * flight on each (default 4 and 8); with enough in flight, a turn's
 * journal record goes to Redis in parts, which the kill then cuts anywhere.
 * --kill-in-parts: the kill also waits until the primary has sent a part
 * (its /metrics), so that every cycle's kill lands among them.
 * --bench-stock: the bench's campaign stock per cycle (default 5000).
 * --snapshot-after, --snapshot-growth: the daemons' --snapshot-after and
 * snapshot_growth_percent (default theirs; 0 keeps a child writing nearly
 * all the time, as --kill-in-snapshot wants over many cycles).
 * --kill-in-snapshot: the kill waits until the primary's snapshot child
 * is writing, so that it lands while a snapshot goes to Redis (the child
 * dies with it); each cycle says whether it did (in_snapshot).
 * Environment: PINTUAND (the daemon binary), as for the other tests. */
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clock.h"
#include "harness.h"
#include "redis_proc.h"
#include "shard.h"

#define OK PINTUAN__V1__STATUS__OK
#define STOCK 1000
#define LIMIT 2
#define USERS 800
#define BEFORE_KILL 500 /* answers in the cycle before the kill */
#define AFTER_TAKEOVER 500 /* answers after the standby took over */

typedef struct req {
  char rid[32], user[12];
  int qty;
  int status; /* -1: the client gave up (not acknowledged) */
  uint64_t res;
} req;

typedef struct worker {
  pthread_t t;
  int id, cycle;
  const char *addrs, *campaign;
  atomic_bool *stop;
  atomic_long *answers;
  atomic_int *live; /* workers still sending */
  req *reqs;
  size_t n, cap;
} worker;

/* The pair, whichever answers; during a takeover neither may for a while:
 * tried again until the cycle stops, at most PT_WAIT_MS. */
static pintuan_client *connect_any(worker *w) {
  char err[256];
  for (int waited = 0; !atomic_load(w->stop) && waited < PT_WAIT_MS; waited += 50) {
    pintuan_client *c = pintuan_connect(w->addrs, PT_WAIT_MS, err, sizeof err);
    if (c) return c;
    usleep(50000); /* a pause between attempts, not a synchronisation */
  }
  fprintf(stderr, "chaos: worker %d gives up connecting: %s\n", w->id, err);
  atomic_fetch_sub(w->live, 1);
  return NULL;
}

static void *work(void *arg) {
  worker *w = arg;
  pintuan_client *c = connect_any(w);
  if (!c) return NULL;
  unsigned seed = (unsigned)(w->id * 7919 + w->cycle * 104729);
  for (size_t i = 0; !atomic_load(w->stop); i++) {
    if (w->n == w->cap) {
      w->cap = w->cap ? w->cap * 2 : 1024;
      w->reqs = realloc(w->reqs, w->cap * sizeof *w->reqs);
      if (!w->reqs) abort();
    }
    req *q = &w->reqs[w->n++];
    snprintf(q->rid, sizeof q->rid, "k%d-%d-%zu", w->cycle, w->id, i);
    snprintf(q->user, sizeof q->user, "u%d", (int)(rand_r(&seed) % USERS));
    q->qty = 1 + (int)(rand_r(&seed) % 2);
    pintuan_response *r = NULL;
    if (pintuan_reserve(c, w->campaign, q->user, q->qty, q->rid, &r)) {
      q->status = -1; /* not acknowledged; the verdict retries it */
      pintuan_close(c);
      if (!(c = connect_any(w))) break;
      continue;
    }
    q->status = r->status;
    q->res = r->reservation && r->reservation->has_reservation_id ? r->reservation->reservation_id : 0;
    pintuan_response_free(r);
    atomic_fetch_add(w->answers, 1);
  }
  if (c) { /* else connect_any counted the worker out */
    pintuan_close(c);
    atomic_fetch_sub(w->live, 1);
  }
  return NULL;
}

typedef struct verdict {
  long acked, lost, duplicates, oversold, retried, campaigns;
} verdict;

/* A call to the new primary that may still step down and rebuild once
 * more (its lease lost during a long recovery): UNAVAILABLE is no answer,
 * the same call goes again (the same request id), pausing 10 ms doubling
 * to 500 ms, for PT_WAIT_MS at most. rc: the call's (0: *r holds the answer). */
#define SETTLED(call, r)                                                                   \
  ({                                                                                       \
    int rc_, pause_ = 10;                                                                  \
    for (int64_t end_ = pt_mono_ns() + (int64_t)PT_WAIT_MS * 1000000;;) {                   \
      rc_ = (call);                                                                        \
      if (rc_ || (*(r))->status != PINTUAN__V1__STATUS__UNAVAILABLE || pt_mono_ns() > end_) \
        break;                                                                             \
      pintuan_response_free(*(r));                                                         \
      usleep((useconds_t)pause_ * 1000); /* a rebuild has no event a client can await */   \
      pause_ = pause_ < 250 ? pause_ * 2 : 500;                                            \
    }                                                                                      \
    rc_;                                                                                   \
  })

/* Everything the cycle's clients were told, checked on the new primary. */
static int check(pintuan_client *c, const char *campaign, worker *ws, int nw, verdict *v) {
  int64_t units = 0;
  for (int i = 0; i < nw; i++)
    for (size_t k = 0; k < ws[i].n; k++) {
      req *q = &ws[i].reqs[k];
      pintuan_response *r;
      if (SETTLED(pintuan_reserve(c, campaign, q->user, q->qty, q->rid, &r), &r)) return -1;
      if (q->status == -1) { /* never answered: its answer now is its one answer */
        v->retried++;
        if (r->status == OK) units += q->qty;
        pintuan_response_free(r);
        continue;
      }
      if (q->status == OK) {
        v->acked++;
        units += q->qty;
        uint64_t got = r->reservation && r->reservation->has_reservation_id ? r->reservation->reservation_id : 0;
        if (r->status != OK || got != q->res) {
          v->lost++;
          fprintf(stderr, "chaos: acknowledged %s (reservation %" PRIu64 ") answered %s on retry\n",
                  q->rid, q->res, pintuan_status_str(r->status));
        }
        pintuan_response *g;
        if (SETTLED(pintuan_get_reservation(c, campaign, q->res, q->user, &g), &g)) return -1;
        if (g->status != OK) v->lost++;
        pintuan_response_free(g);
      } else if (r->status == OK) { /* refusals are not remembered: decided afresh */
        units += q->qty;
      }
      pintuan_response_free(r);
    }
  pintuan_response *r;
  /* every campaign (pintuan-bench's stampedes too) still adds up */
  uint64_t cursor = 0;
  do { /* page by page */
    if (SETTLED(pintuan_list_campaigns(c, cursor, 1000, &r), &r) || r->status != OK || !r->campaigns) return -1;
    cursor = r->campaigns->next_cursor;
    for (size_t i = 0; i < r->campaigns->n_campaigns; i++) {
      const Pintuan__V1__Campaign *k = r->campaigns->campaigns[i];
      if (k->held + k->sold > k->stock || k->available + k->held + k->sold != k->stock ||
          k->available < 0 || k->held < 0) {
        v->oversold++;
        fprintf(stderr, "chaos: campaign %.*s: stock %" PRId64 " available %" PRId64 " held %" PRId64
                " sold %" PRId64 "\n", (int)k->campaign_id.len, (const char *)k->campaign_id.data,
                (int64_t)k->stock, (int64_t)k->available, (int64_t)k->held, (int64_t)k->sold);
      }
    }
    v->campaigns += (long)r->campaigns->n_campaigns;
    pintuan_response_free(r);
  } while (cursor);
  if (SETTLED(pintuan_get_campaign(c, campaign, &r), &r) || r->status != OK) return -1;
  const Pintuan__V1__Campaign *cp = r->campaign;
  if (cp->held != units) {
    v->duplicates += llabs((long long)(cp->held - units));
    fprintf(stderr, "chaos: %s holds %" PRId64 " units, the answers account for %" PRId64 "\n",
            campaign, (int64_t)cp->held, units);
  }
  if (cp->held + cp->sold > cp->stock || cp->available + cp->held + cp->sold != cp->stock)
    v->oversold++;
  pintuan_response_free(r);
  for (int u = 0; u < USERS; u++) {
    char user[12];
    snprintf(user, sizeof user, "u%d", u);
    if (SETTLED(pintuan_get_holdings(c, campaign, user, &r), &r)) return -1;
    if (r->status == OK && r->holdings->held + r->holdings->sold > LIMIT) v->oversold++;
    pintuan_response_free(r);
  }
  return 0;
}

static pt_redis_proc R;
static char lease_arg[16];
static pt_daemon d[2];

/* However the run ends, no daemon or redis-server is left behind. */
static char conf_path[64]; /* a config file with --snapshot-growth, if given */

static void cleanup(void) {
  if (conf_path[0]) unlink(conf_path);
  for (int i = 0; i < 2; i++)
    if (d[i].pid > 0 && waitpid(d[i].pid, NULL, WNOHANG) == 0) {
      kill(d[i].pid, SIGKILL);
      waitpid(d[i].pid, NULL, 0);
    }
  redis_cleanup(&R);
}

static char snapshot_arg[24]; /* --snapshot-after, if given */
static bool in_parts; /* --kill-in-parts: the daemons' turns unbounded, so records go in parts */

static int start(pt_daemon *d, const char *node, bool primary) {
  const char *args[] = {"--redis", R.addr, "--shard", "chaos", "--node-id", node, "--lease-ms",
                        lease_arg, "--log-level", "info", NULL, NULL, NULL, NULL, NULL, NULL, NULL};
  int n = 10;
  if (snapshot_arg[0]) args[n++] = "--snapshot-after", args[n++] = snapshot_arg;
  if (conf_path[0]) args[n++] = "-c", args[n++] = conf_path;
  if (in_parts) args[n++] = "--turn-frames", args[n++] = "16777216";
  if (daemon_start(d, args)) return -1;
  return daemon_log_wait(d, primary ? "mirror role=primary" : "mirror role=standby", PT_WAIT_MS,
                         NULL, 0);
}

static int cmp_ms(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

static pid_t spawn_bench(const char *bench, const char *addrs, int conns, int depth, long stock) {
  if (!bench) return 0;
  char cs[16], p[16], st[24];
  snprintf(cs, sizeof cs, "%d", conns), snprintf(p, sizeof p, "%d", depth);
  snprintf(st, sizeof st, "%ld", stock);
  pid_t pid = fork();
  if (pid == 0) {
    int null = open("/dev/null", O_WRONLY);
    if (null >= 0) dup2(null, 1), dup2(null, 2);
    /* mixed (reserve, confirm, cancel): its sale is open at once (a
     * stampede's opens at a wall-clock instant, which the daemons' test
     * clock never reaches) */
    execl(bench, bench, "-a", addrs, "-s", "mixed", "-c", cs, "-p", p, "-d", "30", "-w", "0",
          "--stock", st, "--limit", "2", "--no-progress", (char *)NULL);
    _exit(127);
  }
  return pid;
}

/* Whether a process runs (not gone, not a zombie waiting for its parent's
 * reap). */
static bool running(pid_t pid) {
  char path[40], st[256];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  FILE *f = fopen(path, "r");
  if (!f) return false;
  size_t n = fread(st, 1, sizeof st - 1, f);
  fclose(f);
  st[n] = 0;
  const char *p = strrchr(st, ')'); /* "PID (COMM) STATE ..." */
  return p && p[1] == ' ' && p[2] != 'Z' && p[2] != 'X';
}

/* Waits for the primary's next snapshot whose child is still writing (its
 * log names the child's pid); returns that pid, or -1 if none came. */
static pid_t snapshot_writing(pt_daemon *p, int cy) {
  for (int64_t end = pt_mono_ns() + (int64_t)PT_WAIT_MS * 1000000; pt_mono_ns() < end;) {
    char line[256];
    if (daemon_log_wait(p, "mirror snapshot started", 100, line, sizeof line)) continue;
    const char *at = strstr(line, " pid=");
    pid_t child = at ? (pid_t)atoi(at + 5) : 0;
    if (child > 0 && running(child)) return child;
  }
  fprintf(stderr, "chaos: cycle %d: no snapshot was being written (--kill-in-snapshot)\n", cy);
  return -1;
}

int main(int argc, char **argv) {
  int cycles = 5, nthreads = 4, lease_ms = 600, conns = 4, depth = 8;
  long bench_stock = 5000;
  bool in_snapshot = false;
  int growth = -1;
  const char *bench = NULL;
  bool json = false;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--cycles") && i + 1 < argc) cycles = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--threads") && i + 1 < argc) nthreads = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--lease-ms") && i + 1 < argc) lease_ms = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--bench") && i + 1 < argc) bench = argv[++i];
    else if (!strcmp(argv[i], "--bench-conns") && i + 1 < argc) conns = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--bench-depth") && i + 1 < argc) depth = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--bench-stock") && i + 1 < argc) bench_stock = atol(argv[++i]);
    else if (!strcmp(argv[i], "--kill-in-parts")) in_parts = true;
    else if (!strcmp(argv[i], "--kill-in-snapshot")) in_snapshot = true;
    else if (!strcmp(argv[i], "--snapshot-after") && i + 1 < argc)
      snprintf(snapshot_arg, sizeof snapshot_arg, "%s", argv[++i]);
    else if (!strcmp(argv[i], "--snapshot-growth") && i + 1 < argc)
      growth = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--json")) json = true;
    else {
      fprintf(stderr, "usage: pintuan-chaos [--cycles N] [--threads N] [--lease-ms MS] "
                      "[--bench PATH] [--bench-conns N] [--bench-depth N] [--bench-stock N] "
                      "[--kill-in-parts] [--snapshot-after BYTES] [--snapshot-growth PCT] "
                      "[--kill-in-snapshot] [--json]\n");
      return 64;
    }
  }
  if (cycles < 1 || nthreads < 1 || nthreads > 64 || lease_ms < 100 || conns < 1 || conns > 1000 ||
      depth < 1 || depth > 1000 || bench_stock < 1) {
    fprintf(stderr, "pintuan-chaos: --cycles >= 1, --threads 1..64, --lease-ms >= 100, "
                    "--bench-conns 1..1000, --bench-depth 1..1000, --bench-stock >= 1\n");
    return 64;
  }
  signal(SIGPIPE, SIG_IGN);
  snprintf(lease_arg, sizeof lease_arg, "%d", lease_ms);
  if (growth >= 0) { /* the daemons' snapshot_growth_percent, in a config file of their own */
    snprintf(conf_path, sizeof conf_path, "/tmp/pt-chaos-conf-XXXXXX");
    int fd = mkstemp(conf_path);
    char text[80];
    int len = snprintf(text, sizeof text, "[mirror]\nsnapshot_growth_percent = %d\n", growth);
    if (fd < 0 || write(fd, text, (size_t)len) != len) return 1;
    close(fd);
  }
  if (redis_start(&R, NULL) || shard_init(R.addr, "chaos")) return 1;
  atexit(cleanup);
  if (start(&d[0], "n0", true) || start(&d[1], "n1", false)) return 1;
  int primary = 0, nodes = 2;
  int64_t *takeover = calloc((size_t)cycles, sizeof *takeover);
  verdict total = {0};
  int failed = 0;
  long parts = 0; /* journal records sent mid-turn by the primaries killed */
  int in_snap = 0; /* kills that landed while a snapshot child wrote */
  for (int cy = 0; cy < cycles; cy++) {
    pt_daemon *p = &d[primary], *s = &d[1 - primary];
    char addrs[160], campaign[32];
    snprintf(addrs, sizeof addrs, "%s,%s", p->addr, s->addr);
    snprintf(campaign, sizeof campaign, "hot%d", cy);
    pintuan_client *c = connect_or_die(p);
    if (create_flash(c, campaign, STOCK, LIMIT, 3600000, 0) != OK) {
      fprintf(stderr, "chaos: cannot create %s\n", campaign);
      return 1;
    }
    pintuan_close(c);
    pid_t bpid = spawn_bench(bench, addrs, conns, depth, bench_stock);
    atomic_bool stop = false;
    atomic_long answers = 0;
    atomic_int live = nthreads;
    worker *ws = calloc((size_t)nthreads, sizeof *ws);
    for (int i = 0; i < nthreads; i++) {
      ws[i] = (worker){.id = i, .cycle = cy, .addrs = addrs, .campaign = campaign, .stop = &stop,
                       .answers = &answers, .live = &live};
      pthread_create(&ws[i].t, NULL, work, &ws[i]);
    }
    /* polls a counter, with no deadline: the load decides when */
    while (atomic_load(&answers) < BEFORE_KILL && atomic_load(&live) > 0) usleep(1000);
    if (bpid > 0 && waitpid(bpid, NULL, WNOHANG) != 0) { /* its load is part of the cycle */
      fprintf(stderr, "chaos: cycle %d: pintuan-bench exited before the kill\n", cy);
      return 1;
    }
    double cut = -1; /* the record parts this primary sent: what the kill cuts into */
    for (int64_t end = pt_mono_ns() + (int64_t)PT_WAIT_MS * 1000000;;) {
      char *text = admin_get(p, "/metrics");
      cut = text ? metric_value(text, "pintuan_mirror_record_parts_total") : -1;
      free(text);
      if (!in_parts || cut > 0) break;
      if (pt_mono_ns() > end) {
        fprintf(stderr, "chaos: cycle %d: no record was sent in parts (--kill-in-parts)\n", cy);
        return 1;
      }
      usleep(1000);
    }
    long cut_parts = cut > 0 ? (long)cut : 0;
    parts += cut_parts;
    pid_t child = in_snapshot ? snapshot_writing(p, cy) : 0;
    if (child < 0) return 1;
    bool cut_snapshot = child > 0 && running(child); /* still writing as its parent dies */
    in_snap += cut_snapshot;
    int64_t t0 = pt_mono_ns();
    kill(p->pid, SIGKILL);
    if (daemon_log_wait(s, "mirror role=primary", PT_WAIT_MS, NULL, 0)) {
      fprintf(stderr, "chaos: cycle %d: the standby never took over; its log:\n", cy);
      daemon_stop(s); /* copies its log to stderr */
      s->pid = 0;
      return 1;
    }
    takeover[cy] = (pt_mono_ns() - t0) / 1000000;
    long at = atomic_load(&answers);
    while (atomic_load(&answers) < at + AFTER_TAKEOVER && atomic_load(&live) > 0) usleep(1000);
    atomic_store(&stop, true);
    for (int i = 0; i < nthreads; i++) pthread_join(ws[i].t, NULL);
    if (bpid > 0) {
      kill(bpid, SIGTERM);
      waitpid(bpid, NULL, 0);
    }
    int st;
    waitpid(p->pid, &st, 0);
    close(p->life_fd);
    /* the dead one's directory goes; it comes back as the next standby */
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", p->dir);
    if (system(cmd)) return 1;
    char node[16];
    snprintf(node, sizeof node, "n%d", nodes++);
    if (start(p, node, false)) {
      fprintf(stderr, "chaos: cycle %d: the restarted daemon did not become a standby\n", cy);
      return 1;
    }
    verdict v = {0};
    c = connect_or_die(s);
    long sent = 0;
    for (int i = 0; i < nthreads; i++) sent += (long)ws[i].n;
    if (check(c, campaign, ws, nthreads, &v)) {
      fprintf(stderr, "chaos: cycle %d: the verdict could not be read\n", cy);
      return 1;
    }
    pintuan_close(c);
    bool pass = v.lost == 0 && v.duplicates == 0 && v.oversold == 0 && v.acked > 0;
    failed += !pass;
    printf("cycle %d: %s requests=%ld acknowledged=%ld unanswered=%ld lost=%ld duplicates=%ld "
           "oversold=%ld campaigns_checked=%ld takeover_ms=%" PRId64 " record_parts=%ld in_snapshot=%d\n",
           cy + 1, pass ? "PASS" : "FAIL", sent, v.acked, v.retried, v.lost, v.duplicates,
           v.oversold, v.campaigns, takeover[cy], cut_parts, cut_snapshot);
    fflush(stdout);
    total.acked += v.acked, total.lost += v.lost, total.duplicates += v.duplicates;
    total.oversold += v.oversold, total.retried += v.retried;
    for (int i = 0; i < nthreads; i++) free(ws[i].reqs);
    free(ws);
    primary = 1 - primary;
  }
  qsort(takeover, (size_t)cycles, sizeof *takeover, cmp_ms);
#define PCT(q) takeover[(size_t)((double)(cycles - 1) * (q) + 0.5)]
  printf("%d cycles, %d failed: acknowledged=%ld lost=%ld duplicates=%ld oversold=%ld; takeover ms "
         "p50=%" PRId64 " p90=%" PRId64 " p99=%" PRId64 " max=%" PRId64 " (lease %d ms); record "
         "parts sent by the killed primaries: %ld; kills while a snapshot was written: %d\n",
         cycles, failed, total.acked, total.lost, total.duplicates, total.oversold, PCT(0.5),
         PCT(0.9), PCT(0.99), takeover[cycles - 1], lease_ms, parts, in_snap);
  if (json)
    printf("{\"cycles\":%d,\"failed\":%d,\"acknowledged\":%ld,\"lost\":%ld,\"duplicates\":%ld,"
           "\"oversold\":%ld,\"takeover_ms\":{\"p50\":%" PRId64 ",\"p90\":%" PRId64
           ",\"p99\":%" PRId64 ",\"max\":%" PRId64 "},\"lease_ms\":%d,\"record_parts\":%ld,"
           "\"in_snapshot\":%d}\n",
           cycles, failed, total.acked, total.lost, total.duplicates, total.oversold, PCT(0.5),
           PCT(0.9), PCT(0.99), takeover[cycles - 1], lease_ms, parts, in_snap);
  free(takeover);
  for (int i = 0; i < 2; i++) {
    daemon_stop(&d[i]);
    d[i].pid = 0;
  }
  return failed ? 1 : 0;
}
