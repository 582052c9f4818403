/* pintuand configuration: defaults < config file (INI) < command-line flags.
 * SIGHUP re-reads the file; only the fields marked "reloadable" change, and a
 * bad file leaves the running configuration as it was. */
#ifndef PT_CONFIG_H
#define PT_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include "log.h"

#define PT_DEFAULT_ADMIN_PORT 7734
#define PT_DEFAULT_CONFIG "/etc/pintuan/pintuan.conf"
#define PT_KEY_NAME_MAX_CFG 64

typedef struct pt_config {
  char config_path[512];  /* empty: no file */
  char host[256];          /* a name or a numeric address, resolved at start */
  int port;
  size_t max_frame;
  unsigned max_clients;
  size_t out_high, out_hard;
  uint64_t frame_timeout_ms;
  /* per client and in all (server.h); 0: no such bound */
  uint64_t reply_deadline_ms, first_request_ms, idle_timeout_ms;
  size_t output_budget;
  unsigned max_requests_in_flight, max_clients_per_ip;
  unsigned turn_frames; /* frames a loop turn hands on, shared out among connections */
  size_t socket_buffer; /* each connection's kernel send and receive buffers (0: the kernel's autotuning) */
  /* [limits]: requests a second (0: none) and bursts */
  uint32_t connection_rate, connection_burst, key_rate, user_rate, user_burst;
  size_t max_rated_users;  /* users whose rate is kept at once */
  int64_t idem_window_ms;  /* reloadable */
  uint64_t max_remembered; /* reloadable: cap on remembered effects */
  uint64_t max_campaigns, max_waitlist, max_users_per_campaign; /* reloadable: the tables' caps (0: default) */
  uint64_t campaign_retention_ms; /* reloadable: an ended campaign retired this long after its end */
  int64_t due_per_turn;    /* due items (expiries...) a loop turn runs at most; 0: all */
  int prefault;            /* a thread faults in the engine's next big blocks (prefault.h):
                              1 on, 0 off, -1 auto (on where page faults take no address-space lock) */
  /* [security] */
  char keys_file[4096];    /* the keys (auth/keys.h), re-read on SIGHUP; empty: none */
  /* [tls]: the storefront port speaks TLS when cert_file is set (net/tls.h) */
  char tls_cert[4096], tls_key[4096], tls_client_ca[4096];
  int tls_client_certs;    /* pt_tls_client_certs */
  bool allow_anonymous;    /* listen beyond loopback without keys: the operator said so */
  char make_key[PT_KEY_NAME_MAX_CFG + 16]; /* --make-key NAME:ROLE: make a key and exit */
  char key_out[4096];      /* --key-out FILE: where --make-key writes the client's key */
  char print_functions[32]; /* --print-functions LIBRARY: print it (for an administrator to load) and exit */
  /* the admin port ([admin]) */
  char admin_listen[PT_HOST_MAX + 8]; /* as written; "off": none */
  char admin_host[PT_HOST_MAX];
  int admin_port;
  bool admin_explicit;     /* set by the file or a flag (else the default: a busy port warns) */
  unsigned max_campaign_metrics; /* campaigns with their own series in /metrics */
  pt_log_level log_level;  /* reloadable */
  int ready_fd;            /* write the bound port here once listening */
  char capture_path[512];  /* record traffic for replay; empty: off */
  uint64_t capture_max_bytes;
  int test_only;           /* -t: check the configuration and exit */
  char test_clock[512];    /* --test-clock FILE: a clock tests move; empty: wall clock */
  /* the Redis mirror ([mirror]) */
  char redis[PT_HOST_MAX + 8]; /* HOST:PORT; empty: none */
  char redis_user[64], redis_password[256];
  char shard[64];             /* keys pintuan:{SHARD}:... */
  int mirror_mode;            /* pt_mirror_mode; -1: durable with redis, else off */
  char node_id[64];           /* empty: HOSTNAME-PORT */
  char advertise[PT_HOST_MAX + 8]; /* HOST:PORT for NOT_LEADER; empty: from listen */
  int64_t lease_ms;
  uint64_t snapshot_after;    /* journal bytes between snapshots, at least */
  unsigned snapshot_growth;   /* ... and at least this % of the last snapshot's size */
  uint64_t snapshot_chunk;    /* state bytes per chunk key */
  bool snapshot_compress;     /* zstd per chunk */
  unsigned max_inflight;
  uint64_t max_backlog, events_maxlen;
  char state_file[4096];      /* what the daemon knew of its shard, across restarts; empty: none */
  bool follow;                /* a standby follows the journal: stale reads, faster takeovers */
  int shard_command;          /* --init-shard (1) or --accept-loss (2): do it and exit */
} pt_config;

/* Returns 0, or -1 after printing why; *exit_now is set for --help/--version. */
int pt_config_load(pt_config *cfg, int argc, char **argv, int *exit_now);

#endif
