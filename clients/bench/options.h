/* pintuan-bench's options: every flag's value, checked, with its default.
 * bench_options_parse fills a bench_opts from argv and returns -1 when the
 * run is to go on, else the exit status: 0 after --help or --version,
 * EX_USAGE (64) after a one-line message and a pointer to --help on stderr. */
#ifndef PT_BENCH_OPTIONS_H
#define PT_BENCH_OPTIONS_H

#include <stdint.h>

enum { SC_STAMPEDE, SC_GROUP, SC_MIXED, SC_ZIPF, SC_REPLAY };
extern const char *const bench_scenario_names[]; /* indexed by SC_* */

typedef struct bench_opts {
  const char *addr, *key_file, *replay;
  int conns, depth, scenario, json, progress, campaigns;
  int floor; /* --floor: the server is tests/bench/floor_server (no set-up, no verdict) */
  double duration, warmup, rate, zipf_s, pay_ratio, speed;
  int tick_us; /* open loop and replay: sends wake at most this often; 0: busy-poll the clock */
  int64_t stock;
  uint32_t limit, group_size;
  uint64_t users;
  int mix[3]; /* mixed: reserve:confirm:cancel weights */
  char key_name[128], key_secret[256]; /* -k's key ("": none) */
  int tls; /* --tls or --tls-ca (or PINTUAN_TLS_CA) */
  const char *tls_ca, *tls_cert, *tls_key, *tls_server_name;
} bench_opts;

int bench_options_parse(bench_opts *o, int argc, char **argv);

#endif
