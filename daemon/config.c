#include "config.h"

#include "addr.h"
#include "engine.h"
#include "mirror/mirror.h"

#include <errno.h>
#include <getopt.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

static void defaults(pt_config *c) {
  memset(c, 0, sizeof(*c));
  snprintf(c->host, sizeof c->host, "127.0.0.1");
  c->port = PT_DEFAULT_PORT;
  c->max_frame = 64 * 1024;
  c->max_clients = 16000;
  c->out_high = 1 << 20;
  c->out_hard = 16 << 20;
  c->frame_timeout_ms = 10000;
  c->reply_deadline_ms = 30000;
  c->first_request_ms = 10000;
  c->idle_timeout_ms = 300000;
  c->output_budget = 512u << 20;
  c->max_requests_in_flight = 4096;
  c->max_clients_per_ip = 1024;
  c->turn_frames = 512;
  c->socket_buffer = 128 << 10;
  c->user_rate = 20, c->user_burst = 40;
  c->tls_client_certs = 1;
  c->max_rated_users = 1 << 20;
  c->idem_window_ms = 15 * 60 * 1000;
  c->max_remembered = 10000000;
  c->max_campaigns = PT_DEFAULT_MAX_CAMPAIGNS;
  c->max_waitlist = PT_DEFAULT_MAX_WAITLIST;
  c->max_users_per_campaign = PT_DEFAULT_MAX_USERS;
  c->campaign_retention_ms = PT_DEFAULT_RETENTION_MS;
  c->due_per_turn = 4096;
  c->log_level = PT_LOG_INFO;
  c->ready_fd = -1;
  c->capture_max_bytes = 1ull << 30;
  snprintf(c->shard, sizeof c->shard, "default");
  c->mirror_mode = -1;
  c->lease_ms = 3000;
  c->snapshot_after = 256ull << 20;
  c->snapshot_growth = 100;
  c->snapshot_chunk = 16u << 20;
  c->snapshot_compress = true;
  c->follow = true;
  c->max_inflight = 64;
  c->max_backlog = 64ull << 20;
  c->events_maxlen = 1000000;
  snprintf(c->admin_host, sizeof c->admin_host, "127.0.0.1");
  c->admin_port = PT_DEFAULT_ADMIN_PORT;
  snprintf(c->admin_listen, sizeof c->admin_listen, "127.0.0.1:%d", PT_DEFAULT_ADMIN_PORT);
  c->max_campaign_metrics = 100;
  c->prefault = -1;
}

/* A word for a Redis key or the lease value: no spaces, no braces. */
static int word(const char *v, char *out, size_t outlen) {
  if (!*v || strlen(v) >= outlen || strpbrk(v, " \t{}\r\n")) return -1;
  snprintf(out, outlen, "%s", v);
  return 0;
}

/* HOST:PORT for listening (a name, an IPv4 address or [IPv6]). */
static int parse_listen(pt_config *c, const char *v) {
  pt_addr a;
  char err[128];
  if (pt_addr_parse(v, -1, &a, err, sizeof err) || strlen(a.host) >= sizeof c->host)
    return -1;
  snprintf(c->host, sizeof c->host, "%s", a.host);
  c->port = a.port;
  return 0;
}

static int parse_size(const char *v, long long min, long long max, long long *out) {
  char *end;
  errno = 0;
  long long n = strtoll(v, &end, 10);
  if (errno || end == v || *end || n < min || n > max) return -1;
  *out = n;
  return 0;
}

/* One setting, from the file ("section.name") or a flag (same names). */
static int apply(pt_config *c, const char *key, const char *v) {
  long long n;
  if (!strcmp(key, "server.listen"))
    return parse_listen(c, v);
  if (!strcmp(key, "server.max_frame")) {
    if (parse_size(v, 64, 16 << 20, &n)) return -1;
    c->max_frame = (size_t)n;
  } else if (!strcmp(key, "server.max_clients")) {
    if (parse_size(v, 1, 1000000, &n)) return -1;
    c->max_clients = (unsigned)n;
  } else if (!strcmp(key, "server.output_high_water")) {
    if (parse_size(v, 4096, 1LL << 32, &n)) return -1;
    c->out_high = (size_t)n;
  } else if (!strcmp(key, "server.output_hard_limit")) {
    if (parse_size(v, 4096, 1LL << 34, &n)) return -1;
    c->out_hard = (size_t)n;
  } else if (!strcmp(key, "server.frame_timeout_ms")) {
    if (parse_size(v, 10, 3600000, &n)) return -1;
    c->frame_timeout_ms = (uint64_t)n;
  } else if (!strcmp(key, "server.reply_deadline_ms")) {
    if (parse_size(v, 0, 3600000, &n)) return -1;
    c->reply_deadline_ms = (uint64_t)n;
  } else if (!strcmp(key, "server.first_request_ms")) {
    if (parse_size(v, 0, 3600000, &n)) return -1;
    c->first_request_ms = (uint64_t)n;
  } else if (!strcmp(key, "server.idle_timeout_ms")) {
    if (parse_size(v, 0, 7LL * 24 * 3600 * 1000, &n)) return -1;
    c->idle_timeout_ms = (uint64_t)n;
  } else if (!strcmp(key, "server.output_budget")) {
    if (parse_size(v, 0, 1LL << 40, &n)) return -1;
    c->output_budget = (size_t)n;
  } else if (!strcmp(key, "server.max_requests_in_flight")) {
    if (parse_size(v, 0, 1 << 24, &n)) return -1;
    c->max_requests_in_flight = (unsigned)n;
  } else if (!strcmp(key, "server.socket_buffer")) {
    if (parse_size(v, 0, 64 << 20, &n)) return -1;
    c->socket_buffer = (size_t)n;
  } else if (!strcmp(key, "server.turn_frames")) {
    if (parse_size(v, 128, 1 << 24, &n)) return -1;
    c->turn_frames = (unsigned)n;
  } else if (!strcmp(key, "server.max_clients_per_ip")) {
    if (parse_size(v, 0, 1000000, &n)) return -1;
    c->max_clients_per_ip = (unsigned)n;
  } else if (!strcmp(key, "limits.connection_rate") || !strcmp(key, "limits.connection_burst") ||
             !strcmp(key, "limits.key_rate") || !strcmp(key, "limits.user_rate") ||
             !strcmp(key, "limits.user_burst")) {
    if (parse_size(v, 0, 10000000, &n)) return -1;
    uint32_t *dst = !strcmp(key, "limits.connection_rate")    ? &c->connection_rate
                    : !strcmp(key, "limits.connection_burst") ? &c->connection_burst
                    : !strcmp(key, "limits.key_rate")         ? &c->key_rate
                    : !strcmp(key, "limits.user_rate")        ? &c->user_rate
                                                              : &c->user_burst;
    *dst = (uint32_t)n;
  } else if (!strcmp(key, "limits.max_rated_users")) {
    if (parse_size(v, 1024, 1 << 28, &n)) return -1;
    c->max_rated_users = (size_t)n;
  } else if (!strcmp(key, "engine.idempotency_window_ms")) {
    if (parse_size(v, 1000, 7LL * 24 * 3600 * 1000, &n)) return -1;
    c->idem_window_ms = n;
  } else if (!strcmp(key, "engine.max_remembered")) {
    if (parse_size(v, 1000, 1000000000, &n)) return -1;
    c->max_remembered = (uint64_t)n;
  } else if (!strcmp(key, "engine.max_campaigns") || !strcmp(key, "engine.max_waitlist") ||
             !strcmp(key, "engine.max_users_per_campaign")) {
    if (parse_size(v, 1, 1LL << 40, &n)) return -1;
    *(!strcmp(key, "engine.max_campaigns") ? &c->max_campaigns
      : !strcmp(key, "engine.max_waitlist") ? &c->max_waitlist : &c->max_users_per_campaign) = (uint64_t)n;
  } else if (!strcmp(key, "engine.campaign_retention_ms")) { /* at least the request-id window's worth */
    if (parse_size(v, 1000, 10LL * 365 * 24 * 3600 * 1000, &n)) return -1;
    c->campaign_retention_ms = (uint64_t)n;
  } else if (!strcmp(key, "engine.due_per_turn")) {
    if (parse_size(v, 0, 1000000000, &n)) return -1;
    c->due_per_turn = n;
  } else if (!strcmp(key, "engine.prefault")) {
    if (!strcmp(v, "on")) c->prefault = 1;
    else if (!strcmp(v, "off")) c->prefault = 0;
    else if (!strcmp(v, "auto")) c->prefault = -1;
    else return -1;
  } else if (!strcmp(key, "security.keys_file")) {
    if (strlen(v) >= sizeof c->keys_file) return -1;
    snprintf(c->keys_file, sizeof c->keys_file, "%s", v);
  } else if (!strcmp(key, "tls.cert_file") || !strcmp(key, "tls.key_file") || !strcmp(key, "tls.client_ca_file")) {
    char *dst = !strcmp(key, "tls.cert_file") ? c->tls_cert : !strcmp(key, "tls.key_file") ? c->tls_key : c->tls_client_ca;
    if (strlen(v) >= sizeof c->tls_cert) return -1;
    snprintf(dst, sizeof c->tls_cert, "%s", v);
  } else if (!strcmp(key, "tls.client_certs")) {
    if (!strcmp(v, "none")) c->tls_client_certs = 0;
    else if (!strcmp(v, "optional")) c->tls_client_certs = 1;
    else if (!strcmp(v, "required")) c->tls_client_certs = 2;
    else return -1;
  } else if (!strcmp(key, "security.allow_anonymous")) {
    if (!strcmp(v, "yes") || !strcmp(v, "true") || !strcmp(v, "on")) c->allow_anonymous = true;
    else if (!strcmp(v, "no") || !strcmp(v, "false") || !strcmp(v, "off")) c->allow_anonymous = false;
    else return -1;
  } else if (!strcmp(key, "security.admin_token")) {
    fprintf(stderr, "pintuand: admin_token is gone: give each client a key (keys_file, see README "
                    "\"Security\")\n");
    return -1;
  } else if (!strcmp(key, "capture.file")) {
    if (strlen(v) >= sizeof c->capture_path) return -1;
    snprintf(c->capture_path, sizeof c->capture_path, "%s", v);
  } else if (!strcmp(key, "capture.max_bytes")) {
    if (parse_size(v, 1 << 16, 1LL << 40, &n)) return -1;
    c->capture_max_bytes = (uint64_t)n;
  } else if (!strcmp(key, "mirror.redis")) {
    pt_addr a;
    char err[128];
    if (*v && pt_addr_parse(v, 6379, &a, err, sizeof err)) return -1;
    if (strlen(v) >= sizeof c->redis) return -1;
    snprintf(c->redis, sizeof c->redis, "%s", v);
  } else if (!strcmp(key, "mirror.redis_user")) {
    if (strlen(v) >= sizeof c->redis_user) return -1;
    snprintf(c->redis_user, sizeof c->redis_user, "%s", v);
  } else if (!strcmp(key, "mirror.redis_password")) {
    if (strlen(v) >= sizeof c->redis_password) return -1;
    snprintf(c->redis_password, sizeof c->redis_password, "%s", v);
  } else if (!strcmp(key, "mirror.redis_password_file")) { /* its first line (a systemd credential) */
    if (!*v) return 0;
    FILE *f = fopen(v, "r");
    if (!f) return -1;
    char line[sizeof c->redis_password + 2] = "";
    bool got = fgets(line, sizeof line, f) != NULL;
    fclose(f);
    line[strcspn(line, "\r\n")] = 0;
    if (!got || !*line || strlen(line) >= sizeof c->redis_password) return -1;
    memcpy(c->redis_password, line, strlen(line) + 1);
    explicit_bzero(line, sizeof line);
  } else if (!strcmp(key, "mirror.shard")) {
    return word(v, c->shard, sizeof c->shard);
  } else if (!strcmp(key, "mirror.mode")) {
    if ((c->mirror_mode = (int)pt_mirror_mode_parse(v)) < 0) return -1;
  } else if (!strcmp(key, "mirror.node_id")) {
    if (!*v) return c->node_id[0] = 0, 0; /* empty: the default */
    return word(v, c->node_id, sizeof c->node_id);
  } else if (!strcmp(key, "mirror.advertise")) {
    if (!*v) return c->advertise[0] = 0, 0; /* empty: the listen address */
    pt_addr a;
    char err[128];
    if (pt_addr_parse(v, -1, &a, err, sizeof err)) return -1;
    return word(v, c->advertise, sizeof c->advertise);
  } else if (!strcmp(key, "mirror.lease_ms")) {
    if (parse_size(v, 100, 600000, &n)) return -1;
    c->lease_ms = n;
  } else if (!strcmp(key, "mirror.snapshot_after_bytes")) {
    if (parse_size(v, 0, 1LL << 40, &n)) return -1;
    c->snapshot_after = (uint64_t)n;
  } else if (!strcmp(key, "mirror.snapshot_chunk_bytes")) {
    if (parse_size(v, 4096, 256LL << 20, &n)) return -1;
    c->snapshot_chunk = (uint64_t)n;
  } else if (!strcmp(key, "mirror.snapshot_compression")) {
    if (strcmp(v, "zstd") && strcmp(v, "none")) return -1;
    c->snapshot_compress = !strcmp(v, "zstd");
  } else if (!strcmp(key, "mirror.snapshot_growth_percent")) {
    if (parse_size(v, 0, 100000, &n)) return -1;
    c->snapshot_growth = (unsigned)n;
  } else if (!strcmp(key, "mirror.max_inflight")) {
    if (parse_size(v, 1, 100000, &n)) return -1;
    c->max_inflight = (unsigned)n;
  } else if (!strcmp(key, "mirror.max_backlog_bytes")) {
    if (parse_size(v, 1 << 16, 1LL << 36, &n)) return -1;
    c->max_backlog = (uint64_t)n;
  } else if (!strcmp(key, "mirror.follow")) {
    if (!strcmp(v, "on")) c->follow = true;
    else if (!strcmp(v, "off")) c->follow = false;
    else return -1;
  } else if (!strcmp(key, "mirror.state_file")) {
    if (strlen(v) >= sizeof c->state_file) return -1;
    snprintf(c->state_file, sizeof c->state_file, "%s", v);
  } else if (!strcmp(key, "mirror.events_maxlen")) {
    if (parse_size(v, 1, 1LL << 40, &n)) return -1;
    c->events_maxlen = (uint64_t)n;
  } else if (!strcmp(key, "admin.listen")) {
    if (strlen(v) >= sizeof c->admin_listen) return -1;
    if (strcmp(v, "off")) {
      pt_addr a;
      char err[128];
      if (pt_addr_parse(v, -1, &a, err, sizeof err)) return -1;
      snprintf(c->admin_host, sizeof c->admin_host, "%s", a.host);
      c->admin_port = a.port;
    }
    snprintf(c->admin_listen, sizeof c->admin_listen, "%s", v);
    c->admin_explicit = true;
  } else if (!strcmp(key, "admin.max_campaign_metrics")) {
    if (parse_size(v, 0, 1000, &n)) return -1;
    c->max_campaign_metrics = (unsigned)n;
  } else if (!strcmp(key, "log.level")) {
    return pt_log_parse_level(v, &c->log_level);
  } else {
    return -2;
  }
  return 0;
}

typedef struct { pt_config *c; int bad; } ini_ctx;

static int on_ini(void *user, const char *section, const char *name, const char *value) {
  ini_ctx *x = user;
  char key[128];
  snprintf(key, sizeof key, "%s.%s", section, name);
  int rc = apply(x->c, key, value);
  if (rc == -2) fprintf(stderr, "pintuand: %s: unknown setting [%s] %s\n", x->c->config_path, section, name);
  else if (rc) fprintf(stderr, "pintuand: %s: bad value for [%s] %s: %s\n", x->c->config_path, section, name, value);
  if (rc) x->bad = 1;
  return 1;
}

static void usage(FILE *f) {
  fprintf(f,
    "usage: pintuand [options]\n"
    "  -c, --config FILE           INI configuration file (default " PT_DEFAULT_CONFIG " if it exists)\n"
    "  -l, --listen HOST:PORT      address to serve (default 127.0.0.1:%d); HOST is a name\n"
    "                              (every address it resolves to at start), an IPv4 address\n"
    "                              or [IPv6]\n"
    "      --keys FILE             the clients' keys (NAME ROLE sha256:HEX a line; re-read on\n"
    "                              SIGHUP): every connection then says Hello with one first\n"
    "      --allow-anonymous       listen beyond loopback without keys (else refused)\n"
    "      --tls-cert FILE         speak TLS on the storefront port: the certificate chain (PEM)\n"
    "      --tls-key FILE          ... and its private key\n"
    "      --tls-client-ca FILE    verify clients' certificates against this CA; a verified\n"
    "                              certificate's CN naming a key gives that key's role\n"
    "      --tls-client-certs none|optional|required  (default optional with a CA)\n"
    "      --make-key NAME:ROLE    make a key (ROLE admin, storefront or reader): its secret to\n"
    "                              --key-out FILE (mode 0600), its keys-file line to stdout\n"
    "      --print-functions LIB   print the Redis functions library LIB (pintuan or\n"
    "                              pintuan_shard) for an administrator to load, and exit\n"
    "                              (a Redis user limited to its shard may not: deploy/redis-acl.sh)\n"
    "      --admin-listen HOST:PORT  the admin HTTP port: /metrics, /ready, /stats/stream, ...\n"
    "                              (default 127.0.0.1:%d; off: none; beyond loopback its\n"
    "                              clients send Authorization: Bearer NAME:SECRET)\n"
    "      --idempotency-window MS how long effects are remembered by request id (default 900000)\n"
    "      --max-remembered N      hard cap on remembered effects, oldest evicted first\n"
    "                              (default 10000000, ~0.5 GB)\n"
    "      --prefault auto|on|off  an idle-priority thread faults in the memory the engine\n"
    "                              takes next, so a fresh huge page rarely stalls a request;\n"
    "                              auto (default): on with Linux 6.4 or later\n"
    "      --max-frame BYTES       largest request frame (default 65536)\n"
    "      --max-clients N         connections served at once (default 16000)\n"
    "      --log-level LEVEL       debug, info, warn, error (default info)\n"
    "      --ready-fd FD           write the bound port to FD once listening, then close it\n"
    "      --frame-timeout MS      close a client whose frame stays incomplete this long (default 10000)\n"
    "      --reply-deadline MS     drop a client that takes none of its replies this long (default\n"
    "                              30000; 0: never)\n"
    "      --first-request-timeout MS  drop a client that sends no request this long after\n"
    "                              connecting (default 10000; 0: never)\n"
    "      --idle-timeout MS       drop a client idle this long, subscribers aside (default 300000)\n"
    "      --output-budget BYTES   replies unsent by all clients together; past it the clients\n"
    "                              holding the most are dropped (default 512 MiB; 0: none)\n"
    "      --max-requests-in-flight N  replies of one client not written yet before it is not\n"
    "                              read (default 4096; 0: no cap)\n"
    "      --max-clients-per-ip N  connections from one address (default 1024; 0: no cap)\n"
    "      --turn-frames N         requests a loop turn decides, shared out among the busy\n"
    "                              connections (default 512; 128..16777216): bounds a turn\n"
    "      --socket-buffer BYTES   each client socket's kernel send and receive buffers\n"
    "                              (default 128 KiB; 0: the kernel's autotuning, up to MBs)\n"
    "      --max-campaigns N       live campaigns (default 10000); --max-waitlist N a flash\n"
    "                              sale's waitlist (default 100000); --max-users-per-campaign N\n"
    "                              (default 10000000): past each, RESOURCE_EXHAUSTED\n"
    "      --campaign-retention MS an ended campaign's holds, groups and users kept this long\n"
    "                              after its end, then freed, its final counters kept\n"
    "                              (default 604800000: 7 days)\n"
    "      --user-rate N[:BURST]   requests a second naming one user (default 20:40; 0: none)\n"
    "      --connection-rate N[:BURST]  requests a second on one connection (default 0: none)\n"
    "      --key-rate N            requests a second of one key's connections, burst 2 N\n"
    "                              (default 0: none; a key's rate=N in the keys file first)\n"
    "      --capture FILE          record requests, replies and decisions (pintuan-replay,\n"
    "                              pintuan-bench --replay)\n"
    "      --capture-max-bytes N   rotate the capture to FILE.1 past N bytes (default 1 GiB)\n"
    "      --redis HOST:PORT       mirror every decision to this Redis (7 or later); a standby\n"
    "                              takes over from it (see README, Redis mirror)\n"
    "      --shard NAME            the shard's name: keys pintuan:{NAME}:... (default default)\n"
    "      --mirror MODE           durable (default with --redis): replies wait for Redis;\n"
    "                              async: they do not; off: memory-only, a restart loses all\n"
    "      --node-id ID            this daemon's name in the lease (default HOSTNAME-PORT)\n"
    "      --advertise HOST:PORT   where clients reach this daemon (told by a standby)\n"
    "      --lease-ms MS           the primary's lease, renewed every third (default 3000)\n"
    "      --snapshot-after BYTES  journal bytes between snapshots (default 256 MiB; 0: never)\n"
    "      --state-file FILE       what this daemon knew of its shard (incarnation, epoch, last\n"
    "                              record), kept across restarts: a Redis that comes back\n"
    "                              older than that is refused (default: none)\n"
    "      --init-shard            create the shard in Redis (once, before the first start;\n"
    "                              a daemon never creates one by itself) and exit\n"
    "      --accept-loss           after Redis lost data: make a new incarnation of the shard\n"
    "                              from what Redis holds, so the daemons serve again, and exit\n"
    "  -t, --test-config           check everything a start checks (the address resolves,\n"
    "                              the capture file is writable, ...), bind nothing, exit\n"
    "      --test-clock FILE       testing aid: read the time (epoch ms) from FILE, not the wall clock\n"
    "  -h, --help                  this text\n"
    "  -V, --version               print the version\n", PT_DEFAULT_PORT, PT_DEFAULT_ADMIN_PORT);
}

static const struct option opts[] = {
    {"config", required_argument, 0, 'c'}, {"listen", required_argument, 0, 'l'},
    {"keys", required_argument, 0, 1}, {"idempotency-window", required_argument, 0, 2},
    {"max-frame", required_argument, 0, 3}, {"max-clients", required_argument, 0, 4},
    {"log-level", required_argument, 0, 5}, {"ready-fd", required_argument, 0, 6},
    {"capture", required_argument, 0, 7}, {"capture-max-bytes", required_argument, 0, 8},
    {"frame-timeout", required_argument, 0, 9}, {"test-clock", required_argument, 0, 10},
    {"max-remembered", required_argument, 0, 11},
    {"redis", required_argument, 0, 12}, {"shard", required_argument, 0, 13},
    {"mirror", required_argument, 0, 14}, {"node-id", required_argument, 0, 15},
    {"advertise", required_argument, 0, 16}, {"lease-ms", required_argument, 0, 17},
    {"snapshot-after", required_argument, 0, 18}, {"admin-listen", required_argument, 0, 19},
    {"prefault", required_argument, 0, 20}, {"state-file", required_argument, 0, 21},
    {"init-shard", no_argument, 0, 22}, {"accept-loss", no_argument, 0, 23},
    {"allow-anonymous", no_argument, 0, 24}, {"make-key", required_argument, 0, 25},
    {"key-out", required_argument, 0, 26},
    {"reply-deadline", required_argument, 0, 27}, {"first-request-timeout", required_argument, 0, 28},
    {"idle-timeout", required_argument, 0, 29}, {"output-budget", required_argument, 0, 30},
    {"max-requests-in-flight", required_argument, 0, 31}, {"max-clients-per-ip", required_argument, 0, 32},
    {"user-rate", required_argument, 0, 33}, {"connection-rate", required_argument, 0, 34},
    {"key-rate", required_argument, 0, 35}, {"max-campaigns", required_argument, 0, 36},
    {"max-waitlist", required_argument, 0, 37}, {"max-users-per-campaign", required_argument, 0, 38},
    {"tls-cert", required_argument, 0, 39}, {"tls-key", required_argument, 0, 40},
    {"tls-client-ca", required_argument, 0, 41}, {"tls-client-certs", required_argument, 0, 42},
    {"print-functions", required_argument, 0, 43}, {"campaign-retention", required_argument, 0, 44},
    {"turn-frames", required_argument, 0, 45}, {"socket-buffer", required_argument, 0, 46},
    {"test-config", no_argument, 0, 't'}, {"help", no_argument, 0, 'h'},
    {"version", no_argument, 0, 'V'}, {0, 0, 0, 0}};

int pt_config_load(pt_config *c, int argc, char **argv, int *exit_now) {
  *exit_now = 0;
  defaults(c);
  /* pass 1: where is the file, and the one-shot flags */
  const char *path = NULL;
  int o;
  optind = 1;
  opterr = 1;
  while ((o = getopt_long(argc, argv, "c:l:thV", opts, NULL)) != -1) {
    switch (o) {
    case 'c': path = optarg; break;
    case 't': c->test_only = 1; break;
    case 'h': usage(stdout); *exit_now = EX_OK + 1; return 0;
    case 'V': printf("pintuand %s\n", PT_VERSION); *exit_now = EX_OK + 1; return 0;
    case '?': usage(stderr); return -1;
    default: break;
    }
  }
  if (optind < argc) {
    fprintf(stderr, "pintuand: unexpected argument: %s\n", argv[optind]);
    return -1;
  }
  FILE *f = NULL;
  if (path) {
    f = fopen(path, "r");
    if (!f) {
      fprintf(stderr, "pintuand: cannot open %s: %s\n", path, strerror(errno));
      return -1;
    }
  } else if ((f = fopen(PT_DEFAULT_CONFIG, "r"))) {
    path = PT_DEFAULT_CONFIG;
  }
  if (f) {
    snprintf(c->config_path, sizeof c->config_path, "%s", path);
    ini_ctx x = {c, 0};
    int line = ini_parse_file(f, on_ini, &x);
    fclose(f);
    if (line > 0) fprintf(stderr, "pintuand: %s:%d: syntax error\n", path, line);
    if (line || x.bad) return -1;
  }
  /* pass 2: flags override the file */
  optind = 1;
  opterr = 0;
  static const char *keys[] = {[1] = "security.keys_file", [2] = "engine.idempotency_window_ms",
                               [3] = "server.max_frame", [4] = "server.max_clients",
                               [5] = "log.level", [7] = "capture.file",
                               [8] = "capture.max_bytes", [9] = "server.frame_timeout_ms",
                               [11] = "engine.max_remembered", [12] = "mirror.redis",
                               [13] = "mirror.shard", [14] = "mirror.mode",
                               [15] = "mirror.node_id", [16] = "mirror.advertise",
                               [17] = "mirror.lease_ms", [18] = "mirror.snapshot_after_bytes",
                               [19] = "admin.listen", [20] = "engine.prefault",
                               [21] = "mirror.state_file", [27] = "server.reply_deadline_ms",
                               [28] = "server.first_request_ms", [29] = "server.idle_timeout_ms",
                               [30] = "server.output_budget", [31] = "server.max_requests_in_flight",
                               [32] = "server.max_clients_per_ip", [35] = "limits.key_rate",
                               [36] = "engine.max_campaigns", [37] = "engine.max_waitlist",
                               [38] = "engine.max_users_per_campaign", [39] = "tls.cert_file",
                               [40] = "tls.key_file", [41] = "tls.client_ca_file", [42] = "tls.client_certs",
                               [44] = "engine.campaign_retention_ms", [45] = "server.turn_frames",
                               [46] = "server.socket_buffer"};
  while ((o = getopt_long(argc, argv, "c:l:thV", opts, NULL)) != -1) {
    const char *key = NULL;
    if (o == 'l') key = "server.listen";
    else if ((o >= 1 && o <= 5) || (o >= 7 && o <= 9) || (o >= 11 && o <= 21) || (o >= 27 && o <= 32) || (o >= 35 && o <= 42) || o == 44 || o == 45 || o == 46)
      key = keys[o];
    else if (o == 33 || o == 34) { /* N[:BURST] */
      char rate[32], *colon;
      snprintf(rate, sizeof rate, "%s", optarg);
      if ((colon = strchr(rate, ':'))) *colon = 0;
      const char *rk = o == 33 ? "limits.user_rate" : "limits.connection_rate";
      const char *bk = o == 33 ? "limits.user_burst" : "limits.connection_burst";
      if (apply(c, rk, rate) || apply(c, bk, colon ? colon + 1 : "0") ||
          (o == 33 && !colon && apply(c, bk, "0"))) {
        fprintf(stderr, "pintuand: bad value for --%s: %s (give N or N:BURST)\n", opts[o + 1].name, optarg);
        return -1;
      }
    }
    else if (o == 22 || o == 23) {
      if (c->shard_command && c->shard_command != o - 21) {
        fprintf(stderr, "pintuand: --init-shard and --accept-loss do not go together\n");
        return -1;
      }
      c->shard_command = o - 21;
    } else if (o == 24) {
      c->allow_anonymous = true;
    } else if (o == 43) {
      if (strcmp(optarg, "pintuan") && strcmp(optarg, "pintuan_shard")) {
        fprintf(stderr, "pintuand: --print-functions pintuan or pintuan_shard (the two libraries)\n");
        return -1;
      }
      snprintf(c->print_functions, sizeof c->print_functions, "%s", optarg);
    } else if (o == 25 || o == 26) {
      char *dst = o == 25 ? c->make_key : c->key_out;
      size_t cap = o == 25 ? sizeof c->make_key : sizeof c->key_out;
      if (!*optarg || strlen(optarg) >= cap) {
        fprintf(stderr, "pintuand: bad --%s: %s\n", o == 25 ? "make-key" : "key-out", optarg);
        return -1;
      }
      snprintf(dst, cap, "%s", optarg);
    }
    else if (o == 6) {
      long long fd;
      if (parse_size(optarg, 0, 1 << 20, &fd)) {
        fprintf(stderr, "pintuand: bad --ready-fd: %s\n", optarg);
        return -1;
      }
      c->ready_fd = (int)fd;
    } else if (o == 10) {
      if (!*optarg || strlen(optarg) >= sizeof c->test_clock) {
        fprintf(stderr, "pintuand: bad --test-clock: %s\n", optarg);
        return -1;
      }
      snprintf(c->test_clock, sizeof c->test_clock, "%s", optarg);
    }
    if (key && apply(c, key, optarg)) {
      fprintf(stderr, "pintuand: bad value for --%s: %s\n", o == 'l' ? "listen" : opts[o + 1].name, optarg);
      return -1;
    }
  }
  if (c->out_hard < c->out_high) {
    fprintf(stderr, "pintuand: output_hard_limit must be >= output_high_water\n");
    return -1;
  }
  return 0;
}
