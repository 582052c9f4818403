/* pintuand: wiring, and the loop's phases. Config, the engine, the TCP
 * server, signals for shutdown (SIGINT/SIGTERM) and reload (SIGHUP).
 *
 * A loop turn: I/O callbacks hand frames to the service, which decides
 * them at the turn's time (turn.h); then, right before the loop would
 * block, one callback owned here (a uv_prepare, like Redis' beforeSleep)
 * ends the turn in order:
 *   1. run what is due (expiries, failed groups, forgotten ids), at most
 *      engine.due_per_turn of it, none while Redis is behind: the rest in
 *      the next turns;
 *   2. hand the turn's changes to the Redis mirror: one journal record
 *      for the turn, and (durable mode) seal the turn's replies and events
 *      until Redis acknowledged it;
 *   3. flush the replies and pushed events that may go;
 *   4. point the one timer at the engine's next deadline.
 * The timer only wakes the loop: the turn end does the work. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sysexits.h>
#include <unistd.h>
#include <uv.h>

#include "addr.h"
#include "admin/admin.h"
#include "clock.h"
#include "config.h"
#include "engine.h"
#include "latency.h"
#include "log.h"
#include "net/server.h"
#include "mirror/functions.h"
#include "mirror/mirror.h"
#include "mirror/shard.h"
#include "notify.h"
#include "prefault.h"
#include "service/service.h"
#include "turn.h"

typedef struct daemon {
  uv_loop_t loop;
  pt_config cfg;
  pt_mirror_config mcfg; /* when cfg.redis is set and the mirror is not off */
  int argc;
  char **argv;
  pt_engine *engine;
  pt_service svc;
  pt_server *server;
  pt_mirror *mirror; /* NULL: memory-only */
  pt_admin *admin;   /* NULL: none */
  pt_admin_sources admin_src;
  struct sockaddr_storage admin_at[PT_LISTEN_MAX]; /* resolved by preflight */
  unsigned nadmin;
  pt_latency latency;
  pt_turn turn;
  uv_prepare_t turn_end;
  uv_timer_t timer;
  int64_t armed; /* deadline the timer is set for, PT_NEVER if stopped */
  uv_signal_t sig_int, sig_term, sig_hup;
  int stopping;
  uint64_t evictions_logged; /* remembered effects evicted by the cap, as last logged */
  pt_server_stats turn_was;  /* the server's counters at the last turn's end (long_turn) */
  int64_t long_logged_ms;    /* when a long turn was last logged */
  pt_keys *keys; /* read by preflight, then the service's */
  pt_tls *tls;   /* the storefront port's TLS (preflight), NULL: plaintext */
  char admin_address[PT_HOST_MAX + 16]; /* HOST:PORT the admin port listens on, as told by Hello */
} daemon_t;

static void on_event(void *ctx, const pt_event *ev) {
  daemon_t *d = ctx;
  pt_service_on_event(&d->svc, ev);
  if (d->mirror) pt_mirror_event(d->mirror, ev);
  pt_debug("event seq=%llu type=%d campaign=%.*s user=%.*s reservation=%llu qty=%u",
           (unsigned long long)ev->seq, ev->type, (int)ev->campaign_id.len,
           (const char *)ev->campaign_id.p, (int)ev->user_id.len, (const char *)ev->user_id.p,
           (unsigned long long)ev->reservation_id, ev->quantity);
}

static void on_timer(uv_timer_t *t) {
  daemon_t *d = t->data;
  d->armed = PT_NEVER; /* woken: the turn end runs what is due */
}

static void log_evictions_once(daemon_t *d) {
  pt_engine_stats st;
  pt_engine_stats_get(d->engine, &st);
  if (st.idem_evictions && !d->evictions_logged) { /* once: then it is a counter */
    pt_warn("max_remembered (%llu) reached: the oldest remembered effects are forgotten early; "
            "a retry of one of them is decided afresh. Raise max_remembered or shorten "
            "idempotency_window_ms",
            (unsigned long long)d->cfg.max_remembered);
    d->evictions_logged = st.idem_evictions;
  }
}

/* A turn that kept the loop busy LONG_TURN_US or more: one line (at most
 * a second) with what it did, so that an operator sees what the clients
 * waited for (pintuan_loop_busy_seconds counts them all). */
#define LONG_TURN_US 20000
static void long_turn(daemon_t *d, int64_t busy_us, uint64_t requests) {
  pt_server_stats st;
  pt_server_stats_get(d->server, &st);
  const pt_server_stats *was = &d->turn_was;
  int64_t now = (int64_t)uv_now(&d->loop);
  if (busy_us >= LONG_TURN_US && now - d->long_logged_ms >= 1000) {
    d->long_logged_ms = now;
    pt_info("long_turn busy_ms=%lld requests=%llu frames=%llu accepted=%llu closed=%llu trims=%llu "
            "clients=%u waiting=%u",
            (long long)busy_us / 1000, (unsigned long long)requests,
            (unsigned long long)(st.frames_in - was->frames_in), (unsigned long long)(st.accepted - was->accepted),
            (unsigned long long)(st.closed - was->closed), (unsigned long long)(st.trims - was->trims),
            st.clients, st.waiting);
  }
  d->turn_was = st;
}

static void arm_timer(daemon_t *d, int64_t now) {
  int64_t next = pt_engine_next_deadline(d->engine);
  /* overdue work that may not run now (Redis behind, or not the primary):
   * look again shortly instead of spinning; an acknowledgement or a role
   * change ends a turn sooner anyway */
  if (next <= now && (d->turn.frozen || d->turn.due_budget < 0)) next = now + 5;
  if (next == d->armed) return;
  d->armed = next;
  if (next == PT_NEVER) {
    uv_timer_stop(&d->timer);
    return;
  }
  int rc = uv_timer_start(&d->timer, on_timer, next > now ? (uint64_t)(next - now) : 0, 0);
  if (rc < 0) pt_error("the deadline timer could not be armed: %s", uv_strerror(rc)); /* EINVAL only */
}

/* systemd (notify.h): READY=1 once the mirror has a role to serve in (the
 * primary after its recovery, or a standby following one), and the STATUS
 * at every change of role. A role changes only in the mirror's callbacks,
 * and a turn end follows each: checking there misses none. */
static void notify_role(daemon_t *d) {
  static pt_role told; /* 0: nothing told yet */
  pt_role role = pt_mirror_role(d->mirror);
  if (role == told) return;
  told = role;
  pt_mirror_stats st;
  pt_mirror_stats_get(d->mirror, &st);
  const char *leader = pt_mirror_leader(d->mirror);
  char status[1024];
  if (role == PT_ROLE_PRIMARY)
    snprintf(status, sizeof status, "primary of shard %s (node %s, epoch %llu), serving on %s",
             d->mcfg.shard, d->mcfg.node_id, (unsigned long long)st.epoch, d->mcfg.advertise);
  else if (role == PT_ROLE_STANDBY)
    snprintf(status, sizeof status, "standby of shard %s (node %s), primary at %s", d->mcfg.shard,
             d->mcfg.node_id, leader[0] ? leader : "(unknown)");
  else
    snprintf(status, sizeof status, "%s: shard %s (node %s), Redis %s:%d", pt_role_name(role),
             d->mcfg.shard, d->mcfg.node_id, d->mcfg.redis.host, d->mcfg.redis.port);
  if (role == PT_ROLE_PRIMARY || role == PT_ROLE_STANDBY) pt_notify_ready(status);
  else pt_notify_status("%s", status);
}

/* The end of every loop turn, in this order (see the top of this file). */
static void on_turn_end(uv_prepare_t *h) {
  daemon_t *d = h->data;
  if (d->stopping) return;
  int64_t now = pt_turn_end(&d->turn); /* 1. what is due */
  log_evictions_once(d);
  uint64_t seq = 0;
  if (d->mirror) { /* 2. */
    seq = pt_mirror_end_turn(d->mirror);
    if (seq) pt_server_seal(d->server, seq);
    /* only the primary decides; elsewhere time moves nothing */
    d->turn.frozen = pt_mirror_role(d->mirror) != PT_ROLE_PRIMARY;
    /* due work waits while Redis is behind (an advance that runs none is
     * journaled all the same: a replay must hold it back too) */
    d->turn.due_budget = pt_mirror_backlogged(d->mirror) ? -1 : d->cfg.due_per_turn;
    notify_role(d);
  }
  pt_server_flush(d->server); /* 3. */
  pt_latency_turn(&d->latency, d->svc.turn_requests, d->svc.turn_t0_ns, seq);
  int64_t busy = pt_latency_loop(&d->latency, pt_mono_ns(), (int64_t)uv_metrics_idle_time(&d->loop));
  if (d->server) long_turn(d, busy, d->svc.turn_requests);
  d->svc.turn_requests = 0;
  arm_timer(d, now);          /* 4. */
}

/* ---- the mirror ---- */

static void record_input(void *ctx, const pt_input *in, const pt_result *r) {
  daemon_t *d = ctx;
  if (d->mirror) pt_mirror_record(d->mirror, in, r);
}

static const char *refuse(void *ctx, bool mutation, pt_status *st, const char **leader) {
  daemon_t *d = ctx;
  return d->mirror ? pt_mirror_refuses(d->mirror, mutation, st, leader) : NULL;
}

/* A new era of ids (engine.h) with a fresh random key: for an engine that
 * was not sealing ids for this incarnation of the shard (a new shard, one
 * kept before keys, or a new incarnation after a loss), so that no id it
 * hands out from now on can be one handed out before. Journaled and
 * captured like any input. */
static void new_id_era(daemon_t *d, uint64_t tag) {
  pt_input in = {.kind = PT_IN_ID_KEY, .id_tag = tag};
  if (getrandom(in.id_key, sizeof in.id_key, 0) != (ssize_t)sizeof in.id_key) abort(); /* Linux >= 3.17 */
  pt_turn_apply(&d->turn, &in, NULL);
  pt_info("ids: a new era of reservation and group ids (tag %016llx)", (unsigned long long)tag);
}

static void about(void *ctx, const char **admin_address, const char **role) {
  daemon_t *d = ctx;
  *admin_address = d->admin ? d->admin_address : "";
  *role = d->mirror ? pt_role_name(pt_mirror_role(d->mirror)) : "memory-only";
}

static pt_engine *stale_engine(void *ctx, uint64_t *record, uint64_t *epoch, int64_t *age_ms) {
  daemon_t *d = ctx;
  pt_staleness s;
  pt_engine *e = d->mirror ? pt_mirror_stale(d->mirror, &s) : NULL;
  if (e) *record = s.record, *epoch = s.epoch, *age_ms = s.age_ms;
  return e;
}

static void apply_settings(daemon_t *d);

static void became_primary(void *ctx, pt_engine *e) {
  daemon_t *d = ctx;
  pt_engine *old = d->engine;
  d->engine = d->turn.engine = d->svc.engine = e;
  pt_engine_free(old);
  pt_service_capture_state(&d->svc); /* the capture's later decisions apply to this engine */
  d->armed = PT_NEVER - 1; /* the timer follows the new engine */
  d->turn.frozen = false;
  uint64_t tag = pt_mirror_id_tag(d->mirror);
  if (tag && pt_engine_id_tag(e) != tag) new_id_era(d, tag);
  apply_settings(d);
}

static void stepped_down(void *ctx, const char *why) {
  daemon_t *d = ctx;
  (void)why;
  d->turn.frozen = true;
  if (d->server) pt_server_drop_held(d->server);
  pt_latency_drop(&d->latency);
}

static void release(void *ctx, uint64_t seq) {
  daemon_t *d = ctx;
  if (d->server) pt_server_release(d->server, seq);
  pt_latency_release(&d->latency, seq);
}

static pt_engine *serving_engine(void *ctx) { return ((daemon_t *)ctx)->engine; }

static void on_mirror_stopped(void *arg) {
  daemon_t *d = arg;
  d->mirror = NULL;
}

static void on_frame(void *ctx, pt_conn *c, const uint8_t *msg, size_t len, const void *note) {
  pt_service_on_frame(&((daemon_t *)ctx)->svc, c, msg, len, note);
}
static void on_lookahead(void *ctx, const uint8_t *msg, size_t len, void *note) {
  pt_service_lookahead(&((daemon_t *)ctx)->svc, msg, len, note);
}
static void on_protocol_error(void *ctx, pt_conn *c, int status, const char *detail) {
  pt_service_on_protocol_error(&((daemon_t *)ctx)->svc, c, status, detail);
}

static uint64_t frame_clock(void *ctx) { /* --test-clock: frame timeouts follow it too */
  return (uint64_t)pt_turn_clock(&((daemon_t *)ctx)->turn);
}

static void on_conn_close(void *ctx, pt_conn *c) {
  pt_service_on_close(&((daemon_t *)ctx)->svc, c);
}
static void on_secure(void *ctx, pt_conn *c, const char *peer) {
  pt_service_on_secure(&((daemon_t *)ctx)->svc, c, peer);
}

static void on_server_stopped(void *arg) {
  daemon_t *d = arg;
  d->server = NULL;
  pt_info("all connections closed");
}

static void on_admin_stopped(void *arg) { ((daemon_t *)arg)->admin = NULL; }

static void shutdown_daemon(daemon_t *d, const char *why) {
  if (d->stopping) return;
  d->stopping = 1;
  pt_info("shutting down (%s)", why);
  if (d->admin) pt_admin_stop(d->admin, on_admin_stopped, d);
  if (d->server) pt_server_stop(d->server, on_server_stopped, d);
  if (d->mirror) pt_mirror_stop(d->mirror, on_mirror_stopped, d); /* releases the lease */
  uv_close((uv_handle_t *)&d->turn_end, NULL);
  uv_close((uv_handle_t *)&d->timer, NULL);
  uv_close((uv_handle_t *)&d->sig_int, NULL);
  uv_close((uv_handle_t *)&d->sig_term, NULL);
  uv_close((uv_handle_t *)&d->sig_hup, NULL);
  pt_notify_stopping();
  pt_notify_watchdog_stop(); /* its timer is a handle on the loop too */
}

/* SIGHUP: the keys file read again; the connections of keys revoked or
 * changed are dropped. A bad file leaves the keys as they were. */
static void reload_keys(daemon_t *d, const pt_config *n) {
  if (strcmp(n->keys_file, d->cfg.keys_file)) {
    pt_warn("reload: keys_file changed (%s): a restart takes it", n->keys_file[0] ? n->keys_file : "none");
    return;
  }
  if (!d->cfg.keys_file[0]) return;
  char err[600];
  pt_keys *k = pt_keys_load(d->cfg.keys_file, err, sizeof err);
  if (!k) {
    pt_error("reload: %s; keeping the keys as they were", err);
    return;
  }
  uint32_t n_keys = pt_keys_count(k);
  unsigned dropped = pt_service_set_keys(&d->svc, d->server, k);
  pt_info("keys reloaded from %s: %u keys, %u connections dropped (their key revoked or changed)",
          d->cfg.keys_file, n_keys, dropped);
}

/* The engine's settings as this daemon's configuration says, each changed
 * one an input (journaled: a standby and a replay see it too). At a reload,
 * and when this daemon becomes the primary of an engine another wrote. */
static void apply_settings(daemon_t *d) {
  const pt_engine_config *now = pt_engine_settings(d->engine);
  pt_limits want = {d->cfg.max_campaigns, d->cfg.max_waitlist, d->cfg.max_users_per_campaign,
                    d->cfg.campaign_retention_ms};
  if (now->idem_window_ms != d->cfg.idem_window_ms)
    pt_turn_apply(&d->turn, &(pt_input){.kind = PT_IN_WINDOW, .value = d->cfg.idem_window_ms}, NULL);
  if (now->max_remembered != d->cfg.max_remembered)
    pt_turn_apply(&d->turn,
                  &(pt_input){.kind = PT_IN_MAX_REMEMBERED, .value = (int64_t)d->cfg.max_remembered}, NULL);
  pt_limits w = pt_limits_defaulted(want), have = pt_engine_limits(d->engine);
  if (memcmp(&w, &have, sizeof w)) pt_turn_apply(&d->turn, &(pt_input){.kind = PT_IN_LIMITS, .limits = w}, NULL);
}

static void reload(daemon_t *d) {
  pt_config n;
  int exit_now;
  if (pt_config_load(&n, d->argc, d->argv, &exit_now) != 0) {
    pt_error("reload: configuration is bad, keeping the running one");
    return;
  }
  d->cfg.log_level = n.log_level;
  d->cfg.idem_window_ms = n.idem_window_ms;
  d->cfg.max_remembered = n.max_remembered;
  d->cfg.max_campaigns = n.max_campaigns, d->cfg.max_waitlist = n.max_waitlist;
  d->cfg.max_users_per_campaign = n.max_users_per_campaign;
  pt_log_set_level(d->cfg.log_level);
  reload_keys(d, &n);
  if (!d->turn.frozen) apply_settings(d); /* a standby's engine follows the primary's */
  pt_info("reloaded %s", d->cfg.config_path[0] ? d->cfg.config_path : "(flags only)");
}

static void on_signal(uv_signal_t *h, int signum) {
  daemon_t *d = h->data;
  if (signum == SIGHUP) {
    pt_notify_reloading(); /* systemd's protocol: RELOADING=1, then READY=1 when done */
    reload(d);
    pt_notify_reloaded();
  } else {
    shutdown_daemon(d, signum == SIGINT ? "SIGINT" : "SIGTERM");
  }
}

/* Descriptors the daemon holds besides one per client, for the open-file
 * limit check: it needs max_clients + FD_STDIO + one per listening address
 * + FD_LIBUV + the capture file + the admin port's listeners and its
 * PT_ADMIN_MAX_CONNS connections + FD_SPARE (27 without the admin port,
 * 92 with it on its default address).
 *   FD_STDIO  stdin, stdout, stderr
 *   FD_LIBUV  epoll; the async wakeup eventfd; the signal lock pipe and the
 *             loop's signal pipe (2 each); the spare descriptor libuv keeps
 *             to shed connections when accept hits EMFILE
 *   FD_SPARE  descriptors inherited from whoever started us (a ready fd, a
 *             supervisor's), and files opened for a moment: the config on
 *             SIGHUP, name service and time zone files */
#define FD_STDIO 3
#define FD_LIBUV 7
#define FD_SPARE 16

/* Exists and can be written (not truncated), or can be created (and is
 * removed again): what opening it for the capture needs, without
 * disturbing a running daemon's file. 0, or -1 with errno. */
static int can_write(const char *path) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT) {
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd >= 0) unlink(path);
  }
  if (fd < 0) return -1;
  close(fd);
  return 0;
}

static pt_mirror_mode mirror_mode(const pt_config *c) {
  if (c->mirror_mode >= 0) return (pt_mirror_mode)c->mirror_mode;
  return c->redis[0] ? PT_MIRROR_DURABLE : PT_MIRROR_OFF;
}

/* The Redis address as a numeric one (hiredis resolves synchronously). */
static int resolve_redis(daemon_t *d, char *err, size_t errlen) {
  pt_addr a;
  struct sockaddr_storage ss;
  if (pt_addr_parse(d->cfg.redis, 6379, &a, err, errlen) ||
      pt_addr_resolve(&a, false, &ss, 1, err, errlen) < 0)
    return -1;
  d->mcfg.redis.port = a.port;
  const void *ip = ss.ss_family == AF_INET6 ? (const void *)&((struct sockaddr_in6 *)&ss)->sin6_addr
                                           : (const void *)&((struct sockaddr_in *)&ss)->sin_addr;
  inet_ntop(ss.ss_family, ip, d->mcfg.redis.host, sizeof d->mcfg.redis.host);
  return 0;
}

static bool is_loopback(const struct sockaddr_storage *a) {
  if (a->ss_family == AF_INET) return (ntohl(((const struct sockaddr_in *)a)->sin_addr.s_addr) >> 24) == 127;
  return a->ss_family == AF_INET6 && IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)a)->sin6_addr);
}

/* Everything a start checks before it binds: run by -t as well, so that
 * "configuration ok" means the start gets past these. Fills scfg's
 * addresses. Returns EX_OK or the exit status the start fails with. */
static int preflight(daemon_t *d, pt_server_config *scfg) {
  char err[640];
  if (d->cfg.test_clock[0]) {
    int64_t t;
    if (pt_read_test_clock(d->cfg.test_clock, &t, err, sizeof err)) {
      pt_error("%s", err);
      return EX_NOINPUT;
    }
  }
  if (pt_server_resolve(scfg, d->cfg.host, d->cfg.port, err, sizeof err)) {
    pt_error("%s", err);
    return EX_NOHOST;
  }
  if (d->cfg.keys_file[0] && !(d->keys = pt_keys_load(d->cfg.keys_file, err, sizeof err))) {
    pt_error("%s", err);
    return EX_CONFIG;
  }
  if (d->cfg.tls_cert[0] || d->cfg.tls_key[0]) {
    if (!d->cfg.tls_cert[0] || !d->cfg.tls_key[0]) {
      pt_error("TLS needs both tls cert_file and key_file (--tls-cert, --tls-key)");
      return EX_CONFIG;
    }
    if (!(d->tls = scfg->tls = pt_tls_new(d->cfg.tls_cert, d->cfg.tls_key, d->cfg.tls_client_ca,
                                          (pt_tls_client_certs)d->cfg.tls_client_certs, err, sizeof err))) {
      pt_error("%s", err);
      return EX_CONFIG;
    }
  }
  for (unsigned i = 0; i < scfg->nlisten && !d->keys && !d->cfg.allow_anonymous; i++)
    if (!is_loopback(&scfg->listen[i])) {
      char where[64];
      pt_error("%s is not a loopback address: anyone who reaches it could create campaigns and "
               "take stock. Give the clients keys (keys_file, see README \"Security\"), listen on "
               "127.0.0.1, or say allow_anonymous = yes ([security]) / --allow-anonymous",
               pt_sockaddr_str(&scfg->listen[i], where, sizeof where));
      return EX_CONFIG;
    }
  if (d->cfg.redis[0] && mirror_mode(&d->cfg) != PT_MIRROR_OFF && resolve_redis(d, err, sizeof err)) {
    pt_error("redis: %s", err);
    return EX_NOHOST;
  }
  if (d->cfg.state_file[0] && mirror_mode(&d->cfg) != PT_MIRROR_OFF) {
    pt_shard_known k;
    if (pt_shard_state_read(d->cfg.state_file, d->cfg.shard, &k, err, sizeof err)) {
      pt_error("%s", err);
      return EX_CONFIG;
    }
  }
  if (strcmp(d->cfg.admin_listen, "off")) {
    pt_server_config acfg = {0};
    if (pt_server_resolve(&acfg, d->cfg.admin_host, d->cfg.admin_port, err, sizeof err)) {
      pt_error("admin port: %s", err);
      return EX_NOHOST;
    }
    memcpy(d->admin_at, acfg.listen, sizeof d->admin_at);
    d->nadmin = acfg.nlisten;
    for (unsigned i = 0; i < d->nadmin; i++)
      if (!is_loopback(&d->admin_at[i]) && !d->keys && !d->cfg.allow_anonymous) {
        char where[64];
        pt_error("admin port: %s is not a loopback address: give the clients keys (keys_file; they "
                 "then send Authorization: Bearer NAME:SECRET), listen on 127.0.0.1, or say "
                 "allow_anonymous",
                 pt_sockaddr_str(&d->admin_at[i], where, sizeof where));
        return EX_CONFIG;
      }
  }
  if (d->cfg.capture_path[0] && can_write(d->cfg.capture_path)) {
    pt_error("cannot open capture file %s: %s", d->cfg.capture_path, strerror(errno));
    return EX_CANTCREAT;
  }
  /* every client is a descriptor: take the soft limit up to the hard one */
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  unsigned admin = d->nadmin ? d->nadmin + PT_ADMIN_MAX_CONNS : 0;
  unsigned own = FD_STDIO + scfg->nlisten + FD_LIBUV + (d->cfg.capture_path[0] ? 1 : 0) + admin +
                 FD_SPARE;
  unsigned long long need = (unsigned long long)d->cfg.max_clients + own;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need) {
    char parts[160];
    snprintf(parts, sizeof parts, "%d stdio, %u listening, %d libuv, %s", FD_STDIO, scfg->nlisten,
             FD_LIBUV, d->cfg.capture_path[0] ? "1 capture, " : "");
    if (admin)
      snprintf(parts + strlen(parts), sizeof parts - strlen(parts), "%u admin port, ", admin);
    pt_warn("open-file limit %llu is below the %llu descriptors needed (max_clients %u + %u of "
            "the daemon's own: %s%d spare): clients past the limit are dropped without a "
            "reply; raise it (LimitNOFILE=, ulimit -n) or lower max_clients",
            (unsigned long long)rl.rlim_cur, need, d->cfg.max_clients, own, parts, FD_SPARE);
  }
  return EX_OK;
}

/* This daemon's name in the lease: the configured one, or HOSTNAME-PORT. */
static void node_name(const daemon_t *d, int port, char *out, size_t n) {
  char host[256] = "localhost";
  gethostname(host, sizeof host - 1);
  if (d->cfg.node_id[0]) snprintf(out, n, "%s", d->cfg.node_id);
  else snprintf(out, n, "%.50s-%d", host, port);
}

/* pintuand --init-shard / --accept-loss: against the configured Redis, then exit. */
static int shard_command(daemon_t *d) {
  if (!d->cfg.redis[0] || mirror_mode(&d->cfg) == PT_MIRROR_OFF) {
    pt_error("%s needs the Redis mirror (--redis HOST:PORT, [mirror] redis)",
             d->cfg.shard_command == 1 ? "--init-shard" : "--accept-loss");
    return EX_CONFIG;
  }
  pt_mirror_config *mc = &d->mcfg;
  snprintf(mc->redis_user, sizeof mc->redis_user, "%s", d->cfg.redis_user);
  snprintf(mc->redis_password, sizeof mc->redis_password, "%s", d->cfg.redis_password);
  snprintf(mc->shard, sizeof mc->shard, "%s", d->cfg.shard);
  node_name(d, d->cfg.port, mc->node_id, sizeof mc->node_id);
  return pt_shard_command(mc, d->cfg.state_file, d->cfg.shard_command == 2);
}

static void start_mirror(daemon_t *d, const pt_engine_config *ecfg, pt_mirror_mode mode) {
  pt_mirror_config *mc = &d->mcfg;
  char host[256] = "localhost";
  gethostname(host, sizeof host - 1);
  int port = pt_server_port(d->server);
  snprintf(mc->redis_user, sizeof mc->redis_user, "%s", d->cfg.redis_user);
  snprintf(mc->redis_password, sizeof mc->redis_password, "%s", d->cfg.redis_password);
  snprintf(mc->shard, sizeof mc->shard, "%s", d->cfg.shard);
  node_name(d, port, mc->node_id, sizeof mc->node_id);
  bool wildcard = !strcmp(d->cfg.host, "0.0.0.0") || !strcmp(d->cfg.host, "::");
  if (d->cfg.advertise[0]) snprintf(mc->advertise, sizeof mc->advertise, "%s", d->cfg.advertise);
  else if (strchr(d->cfg.host, ':')) snprintf(mc->advertise, sizeof mc->advertise, "[%s]:%d", d->cfg.host, port);
  else snprintf(mc->advertise, sizeof mc->advertise, "%s:%d", wildcard ? host : d->cfg.host, port);
  mc->mode = mode;
  mc->lease_ms = d->cfg.lease_ms;
  mc->max_inflight = d->cfg.max_inflight;
  mc->max_backlog = d->cfg.max_backlog;
  mc->snapshot_after = d->cfg.snapshot_after;
  mc->snapshot_growth = d->cfg.snapshot_growth;
  mc->snapshot_chunk = d->cfg.snapshot_chunk;
  mc->snapshot_compress = d->cfg.snapshot_compress;
  mc->events_maxlen = d->cfg.events_maxlen;
  snprintf(mc->state_file, sizeof mc->state_file, "%s", d->cfg.state_file);
  mc->follow = d->cfg.follow;
  mc->engine = *ecfg;
  pt_mirror_hooks mh = {.became_primary = became_primary, .stepped_down = stepped_down,
                        .release = release, .engine = serving_engine, .ctx = d};
  d->turn.frozen = true; /* nothing is decided before this daemon is the primary */
  d->mirror = pt_mirror_start(&d->loop, mc, &mh);
  pt_info("mirror %s to Redis %s:%d shard=%s node=%s advertise=%s lease_ms=%lld",
          pt_mirror_mode_name(mode), mc->redis.host, mc->redis.port, mc->shard, mc->node_id,
          mc->advertise, (long long)mc->lease_ms);
}

/* pintuand --make-key NAME:ROLE --key-out FILE: the client's key (its
 * name and secret) into FILE, made 0600 and never overwritten; the line
 * for the daemon's keys file on stdout. */
static int make_key(const pt_config *c) {
  char name[PT_KEY_NAME_MAX + 1], secret[64], line[200], err[160];
  const char *colon = strrchr(c->make_key, ':');
  if (!colon || colon == c->make_key || (size_t)(colon - c->make_key) > PT_KEY_NAME_MAX) {
    fprintf(stderr, "pintuand: --make-key NAME:ROLE (ROLE admin, storefront or reader)\n");
    return EX_USAGE;
  }
  snprintf(name, sizeof name, "%.*s", (int)(colon - c->make_key), c->make_key);
  if (!c->key_out[0]) {
    fprintf(stderr, "pintuand: --make-key needs --key-out FILE: where the client's key goes\n");
    return EX_USAGE;
  }
  if (pt_keys_make(name, colon + 1, secret, sizeof secret, line, sizeof line, err, sizeof err)) {
    fprintf(stderr, "pintuand: %s\n", err);
    return EX_USAGE;
  }
  int fd = open(c->key_out, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    fprintf(stderr, "pintuand: %s: %s\n", c->key_out, strerror(errno));
    return EX_CANTCREAT;
  }
  char body[PT_KEY_NAME_MAX + 80];
  int n = snprintf(body, sizeof body, "%s %s\n", name, secret);
  if (write(fd, body, (size_t)n) != n || close(fd)) {
    fprintf(stderr, "pintuand: %s: %s\n", c->key_out, strerror(errno));
    unlink(c->key_out);
    return EX_IOERR;
  }
  printf("%s\n", line);
  return EX_OK;
}

int main(int argc, char **argv) {
  static daemon_t d;
  int exit_now;
  d.argc = argc;
  d.argv = argv;
  if (pt_config_load(&d.cfg, argc, argv, &exit_now) != 0) return EX_CONFIG;
  if (exit_now) return EX_OK;
  if (d.cfg.make_key[0]) return make_key(&d.cfg);
  if (d.cfg.print_functions[0]) {
    fputs(strcmp(d.cfg.print_functions, "pintuan") ? pt_redis_shard_functions : pt_redis_functions, stdout);
    return EX_OK;
  }
  pt_log_set_level(d.cfg.log_level);
#ifdef M_MMAP_THRESHOLD
  /* A buffer past 256 KiB (a big reply, a client's output) gets its own
   * mapping, returned whole when freed. Fixed, because glibc's sliding
   * threshold would otherwise climb after the first such free and keep
   * them in the heap, which a burst of dropped connections leaves full of
   * free pages (the server trims what remains, server.c). */
  mallopt(M_MMAP_THRESHOLD, 256 * 1024);
#endif
  pt_server_config scfg = {.max_frame = d.cfg.max_frame, .out_high = d.cfg.out_high,
                           .out_hard = d.cfg.out_hard, .max_clients = d.cfg.max_clients,
                           .frame_timeout_ms = d.cfg.frame_timeout_ms,
                           .reply_deadline_ms = d.cfg.reply_deadline_ms,
                           .out_budget = d.cfg.output_budget,
                           .max_inflight = d.cfg.max_requests_in_flight,
                           .max_per_ip = d.cfg.max_clients_per_ip,
                           .turn_frames = d.cfg.turn_frames,
                           .socket_buffer = d.cfg.socket_buffer,
                           .first_frame_ms = d.cfg.first_request_ms,
                           .idle_ms = d.cfg.idle_timeout_ms};
  int rc = preflight(&d, &scfg);
  if (rc != EX_OK) return rc;
  if (d.cfg.shard_command) return shard_command(&d);
  if (d.cfg.test_only) {
    printf("configuration ok\n");
    return EX_OK;
  }
  signal(SIGPIPE, SIG_IGN);

  /* before the engine takes its first big block */
  bool old_kernel = pt_prefault_fault_locks_mm();
  if (d.cfg.prefault == 1 || (d.cfg.prefault < 0 && !old_kernel)) {
    if (pt_prefault_start() == 0) pt_info("prefault: on (an idle-priority thread faults in the engine's next memory)");
  } else {
    pt_info("prefault: off (%s)", d.cfg.prefault == 0 ? "configured" : "auto: this kernel's page faults lock the address space, Linux < 6.4");
  }
  uint64_t seed = 0;
  if (getrandom(&seed, sizeof seed, 0) != sizeof seed) seed = (uint64_t)getpid() * 0x9e3779b97f4a7c15ULL;
  pt_engine_config ecfg = {.idem_window_ms = d.cfg.idem_window_ms,
                           .max_remembered = d.cfg.max_remembered, .hash_seed = seed,
                           .limits = {d.cfg.max_campaigns, d.cfg.max_waitlist, d.cfg.max_users_per_campaign,
                                      d.cfg.campaign_retention_ms},
                           .sink = {.event = on_event, .ctx = &d}};
  d.engine = pt_engine_new(&ecfg);
  d.turn.engine = d.engine;
  d.svc.engine = d.engine;
  d.svc.turn = &d.turn;
  pt_service_set_keys(&d.svc, NULL, d.keys); /* the service owns them from here */
  d.keys = NULL;
  d.svc.conn_rate = d.cfg.connection_rate, d.svc.conn_burst = d.cfg.connection_burst;
  d.svc.key_rate = d.cfg.key_rate;
  d.svc.user_rate = d.cfg.user_rate, d.svc.user_burst = d.cfg.user_burst;
  d.svc.max_rated_users = d.cfg.max_rated_users;
  d.svc.refuse = refuse;
  d.svc.stale = stale_engine;
  d.svc.about = about;
  d.svc.refuse_ctx = &d;
  d.turn.due_budget = d.cfg.due_per_turn;
  d.turn.record = record_input;
  d.turn.record_ctx = &d;
  if (d.cfg.test_clock[0]) {
    d.turn.test_clock = d.cfg.test_clock;
    pt_warn("the time comes from the test clock %s (a testing aid, not for production)",
            d.cfg.test_clock);
  }
  if (d.cfg.capture_path[0]) {
    if (pt_service_capture_open(&d.svc, d.cfg.capture_path, d.cfg.capture_max_bytes)) {
      pt_error("cannot open capture file %s: %s", d.cfg.capture_path, strerror(errno));
      pt_engine_free(d.engine);
      return EX_CANTCREAT;
    }
    pt_info("capturing traffic to %s", d.cfg.capture_path);
  }
  d.armed = PT_NEVER;
  pt_latency_init(&d.latency);
  int64_t started_ms = pt_wall_ms();

  int uvrc = uv_loop_init(&d.loop);
  if (!uvrc) uvrc = uv_loop_configure(&d.loop, UV_METRICS_IDLE_TIME); /* pintuan_loop_busy_seconds */
  if (uvrc) {
    pt_error("event loop: %s", uv_strerror(uvrc));
    pt_service_free(&d.svc);
    pt_engine_free(d.engine);
    return EX_OSERR;
  }
  pt_server_hooks hooks = {.on_frame = on_frame, .on_lookahead = on_lookahead,
                           .on_protocol_error = on_protocol_error,
                           .on_close = on_conn_close, .on_secure = on_secure,
                           .now_ms = d.cfg.test_clock[0] ? frame_clock : NULL, .ctx = &d};
  char err[256];
  d.server = pt_server_start(&d.loop, &scfg, &hooks, err, sizeof err);
  if (!d.server) {
    pt_error("%s", err);
    uv_run(&d.loop, UV_RUN_DEFAULT); /* let the failed listener close */
    rc = EX_UNAVAILABLE;
    goto out_engine;
  }
  /* These cannot fail on Linux once the loop exists (they only fill in
   * structs, and the signal pipe was made by uv_loop_init); a failure
   * would be a broken libuv: stop rather than run without them. */
  d.turn_end.data = d.timer.data = &d;
  d.sig_int.data = d.sig_term.data = d.sig_hup.data = &d;
  if ((uvrc = uv_prepare_init(&d.loop, &d.turn_end)) || (uvrc = uv_prepare_start(&d.turn_end, on_turn_end)) ||
      (uvrc = uv_timer_init(&d.loop, &d.timer)) || (uvrc = uv_signal_init(&d.loop, &d.sig_int)) ||
      (uvrc = uv_signal_init(&d.loop, &d.sig_term)) || (uvrc = uv_signal_init(&d.loop, &d.sig_hup)) ||
      (uvrc = uv_signal_start(&d.sig_int, on_signal, SIGINT)) ||
      (uvrc = uv_signal_start(&d.sig_term, on_signal, SIGTERM)) ||
      (uvrc = uv_signal_start(&d.sig_hup, on_signal, SIGHUP))) {
    pt_error("event loop setup: %s", uv_strerror(uvrc));
    abort();
  }
  if ((uvrc = pt_notify_watchdog_start(&d.loop))) /* systemd restarts us without the pings */
    pt_error("systemd watchdog: %s", uv_strerror(uvrc));

  struct sockaddr_storage bound[PT_LISTEN_MAX];
  unsigned nbound = pt_server_addrs(d.server, bound, PT_LISTEN_MAX);
  char addrs[PT_LISTEN_MAX * 56] = "";
  for (unsigned i = 0; i < nbound; i++) {
    char one[56];
    size_t used = strlen(addrs);
    snprintf(addrs + used, sizeof addrs - used, "%s%s", i ? ", " : "",
             pt_sockaddr_str(&bound[i], one, sizeof one));
  }
  unsigned char num[sizeof(struct in6_addr)];
  bool named = inet_pton(AF_INET, d.cfg.host, num) != 1 && inet_pton(AF_INET6, d.cfg.host, num) != 1;
  pt_mirror_mode mode = mirror_mode(&d.cfg);
  pt_info("pintuand %s listening on %s%s%s (mirror %s)", PT_VERSION, addrs,
          named ? ", resolved from " : "", named ? d.cfg.host : "", pt_mirror_mode_name(mode));
  if (mode == PT_MIRROR_OFF) {
    pt_warn("MEMORY-ONLY: no Redis mirror (--redis HOST:PORT): a restart or a crash loses every "
            "campaign, hold and group");
    uint64_t tag;
    if (getrandom(&tag, sizeof tag, 0) != (ssize_t)sizeof tag) abort();
    new_id_era(&d, tag | 1); /* each start its own: ids of a lost run name nothing */
  } else {
    start_mirror(&d, &ecfg, mode);
  }
  if (d.nadmin) {
    d.admin_src = (pt_admin_sources){
        .engine = &d.engine, .server = &d.server, .mirror = &d.mirror, .svc = &d.svc,
        .latency = &d.latency.hist, .loop_busy = &d.latency.busy, .cfg = &d.cfg, .turn = &d.turn, .mode = mode,
        .node_id = d.mirror ? d.mcfg.node_id : "", .started_ms = started_ms};
    d.admin = pt_admin_start(&d.loop, d.admin_at, d.nadmin, &d.admin_src, err, sizeof err);
    if (d.admin) {
      pt_info("admin port listening on %s:%d", d.cfg.admin_host, pt_admin_port(d.admin));
      snprintf(d.admin_address, sizeof d.admin_address, strchr(d.cfg.admin_host, ':') ? "[%s]:%d" : "%s:%d",
               d.cfg.admin_host, pt_admin_port(d.admin));
    } else if (d.cfg.admin_explicit) {
      pt_error("%s", err);
      shutdown_daemon(&d, "the admin port could not listen");
      uv_run(&d.loop, UV_RUN_DEFAULT);
      rc = EX_UNAVAILABLE;
      goto out_engine;
    } else { /* the default address: serving shoppers matters more than metrics */
      pt_warn("%s: running without the admin port (set admin listen, or --admin-listen, to "
              "make this fatal)", err);
    }
  }
  if (d.cfg.ready_fd >= 0) { /* the port; then the admin port, when there is one */
    if (d.admin) dprintf(d.cfg.ready_fd, "%d\n%d\n", pt_server_port(d.server), pt_admin_port(d.admin));
    else dprintf(d.cfg.ready_fd, "%d\n", pt_server_port(d.server));
    close(d.cfg.ready_fd);
  }
  if (mode == PT_MIRROR_OFF) { /* serving; with a mirror, once it has a role (notify_role) */
    char status[sizeof addrs + 32];
    snprintf(status, sizeof status, "serving on %s (memory-only)", addrs);
    pt_notify_ready(status);
  }
  uv_run(&d.loop, UV_RUN_DEFAULT);

out_engine:
  pt_service_free(&d.svc);
  pt_prefault_stop(); /* first: the engine's freed blocks need no faulting in now */
  pt_engine_free(d.engine);
  pt_tls_free(d.tls);
  if (uv_loop_close(&d.loop) != 0) {
    pt_error("event loop still had open handles at exit");
    return EX_SOFTWARE;
  }
  if (rc == EX_OK) pt_info("stopped cleanly");
  return rc;
}
