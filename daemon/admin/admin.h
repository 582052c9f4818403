/* The admin port: read-only HTTP/1.1 for operators, on the daemon's own
 * loop (no thread), parsed by http-parser.
 *
 *   /metrics        Prometheus text exposition 0.0.4
 *   /healthz        200 while the loop answers
 *   /ready          200 when this daemon decides (primary, state rebuilt,
 *                   mirror healthy; or memory-only), else 503 and why
 *   /server_info    JSON: version, role, epoch, node, uptime, configuration
 *                   (without secrets)
 *   /campaigns, /campaigns/ID   JSON views of the engine
 *   /stats/stream   one JSON line per second for as long as the client stays
 *
 * Everything is read when asked (nothing is copied on the hot path). Each
 * connection answers one request and closes. Bounded: a request head past
 * 8 KiB gets 431, one not complete within 10 s is cut, at most 64
 * connections are open (a new one evicts the oldest still sending its
 * request; 8 of the 64 are kept for /healthz and /ready), /campaigns is
 * paged (?cursor=&limit=, at most 1000 a page), and a stream whose reader
 * falls behind skips lines instead of queueing them. Only GET (and HEAD)
 * are served. From a non-loopback peer every path but /healthz and /ready
 * needs "Authorization: Bearer TOKEN" (the admin token; the daemon refuses
 * to listen beyond loopback without one). */
#ifndef PT_ADMIN_H
#define PT_ADMIN_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "config.h"
#include "engine.h"
#include "histo.h"
#include "mirror/mirror.h"
#include "net/server.h"
#include "service/service.h"
#include "turn.h"

/* What the admin port reads. The pointers to pointers are the daemon's own
 * fields: the engine is replaced on failover, the server and mirror become
 * NULL while stopping. */
typedef struct pt_admin_sources {
  pt_engine *const *engine;
  pt_server *const *server;
  pt_mirror *const *mirror; /* *mirror NULL: memory-only (or stopped) */
  const pt_service *svc;
  const pt_histo *latency;  /* request latency inside the daemon, µs */
  const pt_histo *loop_busy; /* each loop turn's busy time, µs */
  const pt_config *cfg;
  pt_turn *turn;            /* the daemon's clock (a test clock in tests) */
  pt_mirror_mode mode;
  const char *node_id;      /* "" when memory-only */
  int64_t started_ms;       /* wall clock */
} pt_admin_sources;

/* Connections open at once, and of them the probe slots: kept for
 * /healthz and /ready, used only when the other slots are all being
 * answered or streamed to (then any other path gets 503, "admin port
 * busy"), so a load balancer's probe is answered even then. */
#define PT_ADMIN_MAX_CONNS 64
#define PT_ADMIN_PROBE_SLOTS 8

typedef struct pt_admin pt_admin;

/* Listens on every address of listen[]; NULL with the reason in err. */
pt_admin *pt_admin_start(uv_loop_t *loop, const struct sockaddr_storage *listen, unsigned nlisten,
                         const pt_admin_sources *src, char *err, size_t errlen);
int pt_admin_port(const pt_admin *a);
/* Closes the listeners and every connection; done(arg) once all is freed. */
void pt_admin_stop(pt_admin *a, void (*done)(void *arg), void *arg);

/* Why this daemon is not ready to decide, or NULL when it is (/ready). */
const char *pt_admin_unready(const pt_admin_sources *src);

#endif
