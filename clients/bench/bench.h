/* struct bench: the whole state of one pintuan-bench run (options,
 * campaigns, connections, the schedule, the replay, the figures), one of it
 * per process, passed to every part instead of globals. Each group of
 * fields is owned by the file named beside it; others only read it. */
#ifndef PT_BENCH_H
#define PT_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "histogram.h"
#include "options.h"
#include "pacer.h"
#include "addr.h"
#include "pintuan.h"
#include "tls.h"

enum { OP_RESERVE = 1, OP_CONFIRM, OP_CANCEL, OP_JOIN, OP_REPLAYED };

/* One request awaiting its reply on a connection. */
typedef struct inflight {
  int64_t planned, sent;
  uint32_t frame_len; /* its frame's bytes in the connection's unanswered log */
  uint32_t req; /* replay: request index */
  uint8_t op;   /* OP_* */
  uint32_t campaign;
  char user[24];
} inflight;

typedef struct bench bench;

/* a hold the bench made, and its owner (user "u<user>") */
typedef struct pooled {
  uint64_t id, user;
} pooled;

typedef struct conn {
  uv_tcp_t tcp;
  uv_connect_t creq;
  bench *b;
  int idx;
  bool up, dirty;
  uint8_t *out;
  size_t out_len, out_cap;
  uint8_t *in;
  size_t in_len, in_cap;
  inflight *ring; /* in flight, in request order */
  uint32_t head, n, cap;
  uint64_t next_id, seq;
  char rid[48]; /* this connection's request ids: a fixed prefix, then seq */
  uint8_t rid_prefix_len;
  struct conn *next_dirty;
  /* failover, as libpintuan's (conns.c): every frame sent and not answered,
   * in order, sent again byte for byte (the same request ids) on the next
   * connection, to the next address of -a or to the primary NOT_LEADER names */
  uint8_t *unanswered;
  size_t un_len, un_off, un_cap;
  int addr;                /* index in bench.addrs */
  unsigned attempts;       /* connection attempts since it was last up */
  int64_t down_since;      /* when it went down (ns); 0: up */
  bool reconnecting, dead; /* dead: gave up (its requests stay unanswered) */
  unsigned busy;           /* UNAVAILABLE/OVERLOADED answers in a row: each pauses longer */
  int64_t busy_since;      /* when the first of them came (ns); 0: none */
  int64_t pause_ms;        /* before the next attempt */
  uv_timer_t retry;
  bool hello_wait;         /* a Hello (-k) went first on this connection: its reply comes first */
  pt_tls_conn *tls;        /* --tls: this connection's session (NULL: plaintext) */
  uint8_t *wire;           /* --tls: ciphertext to write */
  size_t wire_len, wire_cap;
} conn;

#define PT_BENCH_ADDRS 8

typedef struct campaign {
  char id[72];
} campaign;

typedef struct okuser {
  uint32_t campaign;
  char user[24];
} okuser;

/* A captured request and the reply recorded for it. */
typedef struct rreq {
  uint32_t conn;      /* replay connection */
  int64_t offset_ns;  /* from the first request, unscaled */
  uint8_t *msg;
  size_t len;
  uint8_t *want;      /* the recorded reply, NULL if none */
  size_t want_len;
} rreq;

struct bench {
  bench_opts o;
  unsigned run_id;
  uint64_t rng;

  /* scenarios.c: the campaigns and what the run learned about them */
  campaign *camps;
  size_t ncamps;
  double *zipf_cdf;
  okuser *oks; /* users who got a unit: the verdict checks their holdings */
  size_t noks, cap_oks;
  pooled *pool; /* holds that confirm/cancel work on, from OK replies */
  size_t pool_n, pool_cap;

  /* conns.c: the load connections */
  uv_loop_t *loop;
  conn *conns;
  int connected, conn_failed, conns_closed;
  conn *dirty; /* connections with output to write this loop turn */
  uv_prepare_t flusher;
  uint8_t *hello; /* -k: the Hello frame every load connection begins with; NULL: none */
  size_t hello_len;
  uint64_t hello_refused;
  pt_tls *tls;    /* --tls: the load connections' TLS (NULL: plaintext) */
  uint64_t tls_failed;

  /* run.c: the schedule. Open loop: requests 0 .. planned_total-1 are the
   * ones planned before t_end, the measured ones from planned_first on;
   * every one is sent, those still unsent at t_end as soon as a pipeline
   * slot frees (sent_late). */
  uv_idle_t idler;     /* --tick-us 0: the clock polled every loop turn */
  uv_poll_t pace;      /* else a timerfd wakes the sender when something is due */
  int pace_fd;         /* -1: none */
  uv_timer_t ticker;
  pt_pacer pacer;
  int64_t t_start, t_measure, t_end;
  bool stopping;
  uint64_t planned_first, planned_total, sent_late;
  int64_t last_reply;    /* when the last reply arrived */
  int64_t last_measured; /* when the last measured reply arrived */
  int *freeq;            /* open loop: connections with a free pipeline slot */
  size_t freeq_head, freeq_n, freeq_cap;

  /* run.c: the figures */
  pt_hist lat, lat_raw, sec_hist;
  uint64_t status_count[32], completed, measured, sent_total, send_errors, sec_done;

  /* replay.c */
  struct idmap *ids;   /* recorded reservation and group ids -> replayed ones (idmap.h) */
  bool replay_blocked; /* the next request names an id whose reply has not come */
  rreq *rreqs;
  size_t nrreqs, cap_rreqs, next_rreq;
  int replay_conns;
  uint64_t divergences, compared;
  size_t first_div; /* SIZE_MAX: none */
  char first_div_text[512];

  /* main.c: what failover did on the set-up and verdict connection
   * (libpintuan's counters) */
  pintuan_stats failover;
  /* conns.c: the addresses of -a, and what failover did on the load
   * connections */
  struct sockaddr_storage addrs[PT_BENCH_ADDRS];
  char addr_text[PT_BENCH_ADDRS][PT_HOST_MAX + 8];
  char addr_host[PT_BENCH_ADDRS][PT_HOST_MAX]; /* the name TLS checks (--tls-server-name, else the host) */
  int naddrs;
  uint64_t load_reconnects, load_redirects, load_resent, load_gave_up, load_busy_retries;
};

static inline int64_t now_ns(void) { return (int64_t)uv_hrtime(); }

/* xorshift64, seeded from the run id */
static inline uint64_t bench_rnd(bench *b) {
  b->rng ^= b->rng << 13;
  b->rng ^= b->rng >> 7;
  b->rng ^= b->rng << 17;
  return b->rng;
}
static inline double bench_rnd01(bench *b) { return (double)(bench_rnd(b) >> 11) / 9007199254740992.0; }

#endif
