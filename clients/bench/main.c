/* pintuan-bench: load generator for pintuand in the spirit of wrk2.
 *
 * One libuv loop drives every connection. Open loop (-R): request i is
 * planned for start + i/R and its latency is measured from that planned
 * time (coordinated-omission corrected); the latency from the actual send
 * is kept beside it. Every request planned before the end is sent, late
 * when the daemon fell behind, and the run ends when all were answered:
 * rate R for D seconds measures exactly R*D requests, whatever the
 * scheduler did. Closed loop (no -R): each connection keeps -p requests
 * in flight. A warm-up is excluded from the figures. Every run ends with the
 * verdict: the campaigns' invariants, queried from the daemon.
 * --replay FILE sends a capture made by `pintuand --capture` with its
 * original spacing scaled by --speed, and compares each reply with the
 * recorded one (times aside), reporting the first divergence.
 *
 * main.c only wires the parts together, in the order of a run: options.c
 * (the command line), replay.c (loading a capture), admin.c (set-up and
 * verdict on a blocking connection), conns.c (the load connections), run.c
 * (the schedule and the figures), scenarios.c (what is sent), report.c
 * (what is printed). The whole state is one struct bench (bench.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sysexits.h>
#include <unistd.h>

#include "addr.h"
#include "admin.h"
#include "bench.h"
#include "clock.h"
#include "conns.h"
#include "replay.h"
#include "report.h"
#include "run.h"
#include "scenarios.h"

static bench B; /* ~200 KiB of histograms: not on the stack */

/* 10k connections need more descriptors than the usual soft limit */
static void raise_fd_limit(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

/* The addresses of -a, resolved once, for the load connections and their
 * failover; the load starts where the set-up connection went (peer: the
 * first address that answered), else at the first. Returns the index to
 * start at, or -1 after a message. */
static int load_addresses(bench *b, const char *peer) {
  pt_addr list[PT_BENCH_ADDRS];
  char err[512];
  int n = pt_addr_parse_list(b->o.addr, PT_DEFAULT_PORT, list, PT_BENCH_ADDRS, err, sizeof err);
  if (n < 0) {
    fprintf(stderr, "pintuan-bench: %s\n", err);
    return -1;
  }
  int first = 0;
  for (int i = 0; i < n; i++) {
    if (pt_addr_resolve(&list[i], false, &b->addrs[i], 1, err, sizeof err) < 0) {
      fprintf(stderr, "pintuan-bench: %s\n", err);
      return -1;
    }
    pt_addr_str(&list[i], b->addr_text[i], sizeof b->addr_text[i]);
    const char *name = b->o.tls_server_name ? b->o.tls_server_name : list[i].host;
    if (strlen(name) >= sizeof b->addr_host[i]) {
      fprintf(stderr, "pintuan-bench: --tls-server-name: too long\n");
      return -1;
    }
    memcpy(b->addr_host[i], name, strlen(name) + 1);
    if (peer && !strcmp(peer, b->addr_text[i])) first = i;
  }
  b->naddrs = n;
  return first;
}

/* The load from the first connection to the last reply; 0, or -1. */
static int run_load(bench *b, int first) {
  if (b->o.tls && !b->tls) {
    char err[1024];
    if (!(b->tls = pt_tls_new_client(b->o.tls_ca, b->o.tls_cert, b->o.tls_key, err, sizeof err))) {
      fprintf(stderr, "pintuan-bench: %s\n", err);
      return -1;
    }
  }
  b->loop = uv_default_loop();
  run_init(b);
  if (conns_open(b, first)) return -1;
  uv_run(b->loop, UV_RUN_DEFAULT);
  if (b->conn_failed) {
    fprintf(stderr, "pintuan-bench: %d of %d connections failed\n", b->conn_failed, b->o.conns);
    return -1;
  }
  return 0;
}

/* The run from the set-up to the report; its exit status. */
static int bench_run(bench *b, pintuan_client *admin) {
  if (b->o.scenario != SC_REPLAY && admin_create_campaigns(b, admin)) return 1;
  int first = load_addresses(b, pintuan_peer(admin));
  if (first < 0) return EX_UNAVAILABLE;
  if (run_load(b, first)) return EX_UNAVAILABLE;
  pt_verdict v;
  if (admin_verdict(b, admin, &v)) {
    fprintf(stderr, "pintuan-bench: verdict queries failed: %s\n", pintuan_error(admin));
    return EX_UNAVAILABLE;
  }
  pt_verdict_unanswered(&v, run_unanswered(b));
  pintuan_get_stats(admin, &b->failover);
  report_print(b, &v);
  bool ok = v.pass && b->divergences == 0 && b->send_errors == 0;
  return ok ? 0 : 1;
}

/* --floor: the load alone, against a server that keeps no state, so no
 * set-up and no verdict; what is left is the bench's own cost. */
static int floor_run(bench *b) {
  int first = load_addresses(b, NULL);
  if (first < 0) return EX_UNAVAILABLE;
  scenarios_make_campaigns(b, b->o.scenario == SC_ZIPF ? (size_t)b->o.campaigns : 1);
  if (b->o.scenario == SC_ZIPF) scenarios_zipf_weights(b);
  if (run_load(b, first)) return EX_UNAVAILABLE;
  report_print(b, NULL);
  return b->send_errors == 0 && run_unanswered(b) == 0 ? 0 : 1;
}

static void bench_free(bench *b) {
  conns_free(b);
  run_free(b);
  replay_free(b);
  scenarios_free(b);
}

int main(int argc, char **argv) {
  bench *b = &B;
  int rc = bench_options_parse(&b->o, argc, argv);
  if (rc >= 0) return rc;
  raise_fd_limit();
  b->run_id = (unsigned)(pt_wall_ms() % 100000000) ^ ((unsigned)getpid() << 8);
  b->rng = 0x9e3779b97f4a7c15ULL ^ (uint64_t)b->run_id * 0x2545F4914F6CDD1DULL;
  b->first_div = SIZE_MAX;
  scenarios_init(b);
  if (b->o.scenario == SC_REPLAY) {
    if (replay_load(b, b->o.replay)) {
      bench_free(b);
      return EX_DATAERR;
    }
    b->o.conns = b->replay_conns ? b->replay_conns : 1;
  }
  pintuan_client *admin = b->o.floor ? NULL : admin_connect(b);
  if (b->o.floor) {
    rc = floor_run(b);
  } else if (!admin) {
    rc = EX_UNAVAILABLE;
  } else {
    rc = bench_run(b, admin);
    pintuan_close(admin);
  }
  bench_free(b);
  return rc;
}
