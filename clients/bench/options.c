/* options.c owns pintuan-bench's command line: the defaults, the parsing
 * (getopt_long, the flag named as it was typed in every message), the check
 * of every value and the usage text. Nothing here connects or allocates. */
#include "options.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "addr.h"
#include "pintuan.h"

const char *const bench_scenario_names[] = {"stampede", "group", "mixed", "zipf", "replay"};

__attribute__((format(printf, 1, 2))) static int usage_error(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "pintuan-bench: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\nTry 'pintuan-bench --help'.\n");
  va_end(ap);
  return EX_USAGE;
}

static int bad_value(const char *flag, const char *what, const char *val, const char *hint) {
  return usage_error("%s: bad %s '%s' (%s)", flag, what, val, hint);
}

/* A whole number in lo..hi, all of s; 0, or -1. */
static int get_int(const char *s, int64_t lo, int64_t hi, int64_t *out) {
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (errno || end == s || *end || v < lo || v > hi) return -1;
  *out = v;
  return 0;
}

/* A finite number, more than lo (lo_open) or at least lo, at most hi. */
static int get_real(const char *s, double lo, double hi, bool lo_open, double *out) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (errno || end == s || *end || !isfinite(v) || v < lo || (lo_open && v == lo) || v > hi) return -1;
  *out = v;
  return 0;
}

static void usage(FILE *f) {
  fprintf(f,
    "usage: pintuan-bench [options]\n"
    "  -a, --address HOST:PORT  daemon (default 127.0.0.1:7733); a list H1:P1,H2:P2\n"
    "                           (a primary and its standby): the first that answers\n"
    "  -c, --connections N      connections (default 50)\n"
    "  -d, --duration SECONDS   measured time (default 10)\n"
    "  -w, --warmup SECONDS     excluded warm-up before it (default 1)\n"
    "  -p, --pipeline N         requests in flight per connection (default 1)\n"
    "  -R, --rate N             open loop at N requests/s, exactly N x SECONDS of them measured\n"
    "                           (default: closed loop, as fast as replies come)\n"
    "  -s, --scenario NAME      stampede | group | mixed | zipf (default stampede)\n"
    "      --stock N            units per campaign (default 100000)\n"
    "      --limit N            per-user limit, 0 for none (default 1)\n"
    "      --users N            distinct users (default 1000000)\n"
    "      --campaigns N        zipf: campaigns (default 100)\n"
    "      --zipf S             zipf exponent (default 1.0)\n"
    "      --mix R:C:X          mixed: reserve:confirm:cancel weights (default 60:30:10)\n"
    "      --group-size N       group: group size, 2..64 (default 5)\n"
    "      --pay-ratio F        group: share of requests that pay a seat, 0..1 (default 0.5)\n"
    "      --replay FILE        replay a capture of pintuand --capture, comparing replies\n"
    "      --speed X            replay at X times the original pace (0: as fast as possible)\n"
    "      --tick-us N          open loop and replay: sleep between sends, waking at most every\n"
    "                           N us to send what is due (default 50); 0 busy-polls the clock\n"
    "                           (exact send times, but a whole core spent polling)\n"
    "      --floor              the server is tests/bench/floor_server, which answers every\n"
    "                           frame with one fixed reply: no set-up, no verdict; measures\n"
    "                           the bench's own ceiling\n"
    "  -k, --key-file FILE      a key (NAME SECRET, as pintuand --make-key writes): every\n"
    "                           connection says Hello with it (default $PINTUAN_KEY_FILE);\n"
    "                           an admin key creates the campaigns\n"
    "      --tls                speak TLS, verifying the daemon against the system's CAs\n"
    "      --tls-ca FILE        speak TLS, verifying the daemon against this CA (PEM)\n"
    "                           (default $PINTUAN_TLS_CA)\n"
    "      --tls-cert FILE, --tls-key FILE   a client certificate and its key\n"
    "      --tls-server-name N  the name the daemon's certificate carries (default: the host)\n"
    "  -j, --json               a JSON summary on stdout\n"
    "      --progress / --no-progress   a line a second on stderr (default: when stderr is a tty)\n"
    "  -h, --help, -V, --version\n"
    "SECONDS may be fractional (0.5). Every value is checked: a bad one exits 64.\n"
    "Exit status: 0 the verdict passed (and a replay did not diverge), 1 it did not,\n"
    "64 usage error, 65 unreadable capture, 69 daemon unreachable.\n");
}

int bench_options_parse(bench_opts *o, int argc, char **argv) {
  *o = (bench_opts){.addr = "127.0.0.1:7733", .conns = 50, .depth = 1, .duration = 10, .warmup = 1,
                    .stock = 100000, .limit = 1, .users = 1000000, .campaigns = 100, .zipf_s = 1.0,
                    .group_size = 5, .pay_ratio = 0.5, .speed = 1.0, .tick_us = 50, .mix = {60, 30, 10}, .progress = -1};
  enum { O_STOCK = 256, O_LIMIT, O_USERS, O_CAMPS, O_ZIPF, O_MIX, O_GSIZE, O_PAY, O_REPLAY, O_SPEED,
         O_PROGRESS, O_NOPROGRESS, O_FLOOR, O_TICK, O_TLS, O_TLS_CA, O_TLS_CERT, O_TLS_KEY, O_TLS_NAME };
  static const struct option opts[] = {
      {"address", required_argument, 0, 'a'}, {"connections", required_argument, 0, 'c'},
      {"duration", required_argument, 0, 'd'}, {"warmup", required_argument, 0, 'w'},
      {"pipeline", required_argument, 0, 'p'}, {"rate", required_argument, 0, 'R'},
      {"scenario", required_argument, 0, 's'}, {"key-file", required_argument, 0, 'k'},
      {"json", no_argument, 0, 'j'}, {"help", no_argument, 0, 'h'}, {"version", no_argument, 0, 'V'},
      {"stock", required_argument, 0, O_STOCK}, {"limit", required_argument, 0, O_LIMIT},
      {"users", required_argument, 0, O_USERS}, {"campaigns", required_argument, 0, O_CAMPS},
      {"zipf", required_argument, 0, O_ZIPF}, {"mix", required_argument, 0, O_MIX},
      {"group-size", required_argument, 0, O_GSIZE}, {"pay-ratio", required_argument, 0, O_PAY},
      {"replay", required_argument, 0, O_REPLAY}, {"speed", required_argument, 0, O_SPEED},
      {"progress", no_argument, 0, O_PROGRESS}, {"floor", no_argument, 0, O_FLOOR}, {"no-progress", no_argument, 0, O_NOPROGRESS},
      {"tick-us", required_argument, 0, O_TICK}, {"tls", no_argument, 0, O_TLS},
      {"tls-ca", required_argument, 0, O_TLS_CA}, {"tls-cert", required_argument, 0, O_TLS_CERT},
      {"tls-key", required_argument, 0, O_TLS_KEY}, {"tls-server-name", required_argument, 0, O_TLS_NAME},
      {0, 0, 0, 0}};
  pt_addr addr[PINTUAN_MAX_ADDRS];
  char err[512];
  opterr = 0; /* our own messages: one line, then a pointer to --help */
  for (;;) {
    int word = optind; /* "+": no permutation, so argv[word] is the option being read */
    int c = getopt_long(argc, argv, "+:a:c:d:w:p:R:s:k:jhV", opts, NULL);
    if (c == -1) break;
    /* the flag as it was typed: -R or --rate */
    char flag[40];
    if (!strncmp(argv[word], "--", 2)) {
      const char *name = "?";
      for (const struct option *p = opts; p->name; p++)
        if (p->val == c) name = p->name;
      snprintf(flag, sizeof flag, "--%s", name);
    } else {
      snprintf(flag, sizeof flag, "-%c", c);
    }
    const char *v = optarg;
    int64_t i64;
    switch (c) {
    case 'a':
      if (pt_addr_parse_list(v, PINTUAN_DEFAULT_PORT, addr, PINTUAN_MAX_ADDRS, err, sizeof err) < 0)
        return usage_error("%s: %s (give HOST:PORT or H1:P1,H2:P2)", flag, err);
      o->addr = v;
      break;
    case 'c':
      if (get_int(v, 1, 100000, &i64)) return bad_value(flag, "number of connections", v, "give 1..100000");
      o->conns = (int)i64;
      break;
    case 'p':
      if (get_int(v, 1, 1000, &i64)) return bad_value(flag, "pipeline depth", v, "give 1..1000 requests in flight per connection");
      o->depth = (int)i64;
      break;
    case 'd':
      if (get_real(v, 0, 1e6, true, &o->duration)) return bad_value(flag, "duration", v, "give seconds, more than 0, e.g. 10 or 0.5");
      break;
    case 'w':
      if (get_real(v, 0, 1e6, false, &o->warmup)) return bad_value(flag, "warm-up", v, "give seconds, 0 or more");
      break;
    case 'R':
      if (get_real(v, 0, 1e9, true, &o->rate))
        return bad_value(flag, "rate", v, "give requests per second, 0 < R <= 1e9; without -R the run is a closed loop");
      break;
    case 's':
      o->scenario = -1;
      for (int i = 0; i < SC_REPLAY; i++)
        if (!strcmp(v, bench_scenario_names[i])) o->scenario = i;
      if (o->scenario < 0) {
        char list[128] = "";
        for (int i = 0; i < SC_REPLAY; i++)
          snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "", bench_scenario_names[i]);
        return usage_error("unknown scenario '%s'; scenarios: %s%s", v, list,
                           strcmp(v, "replay") ? "" : " (a capture: --replay FILE)");
      }
      break;
    case 'k': o->key_file = v; break;
    case O_TLS: o->tls = 1; break;
    case O_TLS_CA: o->tls = 1, o->tls_ca = v; break;
    case O_TLS_CERT: o->tls_cert = v; break;
    case O_TLS_KEY: o->tls_key = v; break;
    case O_TLS_NAME: o->tls_server_name = v; break;
    case 'j': o->json = 1; break;
    case 'h': usage(stdout); return 0;
    case 'V': printf("pintuan-bench %s\n", PT_VERSION); return 0;
    case O_STOCK:
      if (get_int(v, 0, INT64_MAX, &o->stock)) return bad_value(flag, "stock", v, "give units per campaign, 0 or more");
      break;
    case O_LIMIT:
      if (get_int(v, 0, UINT32_MAX, &i64)) return bad_value(flag, "limit", v, "give 0 for none, or N per user");
      o->limit = (uint32_t)i64;
      break;
    case O_USERS:
      if (get_int(v, 1, INT64_MAX, &i64)) return bad_value(flag, "number of users", v, "give 1 or more");
      o->users = (uint64_t)i64;
      break;
    case O_CAMPS:
      if (get_int(v, 1, 100000, &i64)) return bad_value(flag, "number of campaigns", v, "give 1..100000");
      o->campaigns = (int)i64;
      break;
    case O_ZIPF:
      if (get_real(v, 0, 100, false, &o->zipf_s)) return bad_value(flag, "exponent", v, "give 0 or more, e.g. 1.1");
      break;
    case O_MIX: {
      int n = 0;
      if (sscanf(v, "%d:%d:%d%n", &o->mix[0], &o->mix[1], &o->mix[2], &n) != 3 || v[n] || o->mix[0] < 1 ||
          o->mix[1] < 0 || o->mix[2] < 0 || o->mix[0] > 1000000 || o->mix[1] > 1000000 || o->mix[2] > 1000000)
        return bad_value(flag, "mix", v, "give reserve:confirm:cancel weights, reserve at least 1, e.g. 60:30:10");
      break;
    }
    case O_GSIZE:
      if (get_int(v, 2, 64, &i64)) return bad_value(flag, "group size", v, "give 2..64");
      o->group_size = (uint32_t)i64;
      break;
    case O_PAY:
      if (get_real(v, 0, 1, false, &o->pay_ratio)) return bad_value(flag, "ratio", v, "give 0..1, e.g. 0.5");
      break;
    case O_REPLAY: o->replay = v, o->scenario = SC_REPLAY; break;
    case O_SPEED:
      if (get_real(v, 0, 1e6, false, &o->speed)) return bad_value(flag, "speed", v, "give a factor, 0 (as fast as possible) or more");
      break;
    case O_PROGRESS: o->progress = 1; break;
    case O_NOPROGRESS: o->progress = 0; break;
    case O_FLOOR: o->floor = 1; break;
    case O_TICK:
      if (get_int(v, 0, 1000000, &i64)) return bad_value(flag, "tick", v, "give microseconds, 0..1000000");
      o->tick_us = (int)i64;
      break;
    case ':': return usage_error("%s needs a value", argv[word]);
    default: /* '?' */
      if (strncmp(argv[word], "--", 2)) return usage_error("unknown option '-%c'", optopt);
      if (optopt) return usage_error("--%.*s takes no value", (int)strcspn(argv[word] + 2, "="), argv[word] + 2);
      {
        const char *name = argv[word] + 2;
        int len = (int)strcspn(name, "="), matches = 0;
        for (const struct option *p = opts; p->name; p++) matches += !strncmp(p->name, name, (size_t)len);
        return usage_error("%s option '--%.*s'", matches > 1 ? "ambiguous" : "unknown", len, name);
      }
    }
  }
  if (optind < argc) return usage_error("unexpected argument '%s'", argv[optind]);
  if (o->floor && o->scenario == SC_REPLAY) return usage_error("--floor and --replay: a floor server has no replies to compare");
  if (o->progress < 0) o->progress = isatty(2);
  if (!o->tls && getenv("PINTUAN_TLS_CA") && *getenv("PINTUAN_TLS_CA")) o->tls = 1, o->tls_ca = getenv("PINTUAN_TLS_CA");
  if (!o->tls && (o->tls_cert || o->tls_key || o->tls_server_name))
    return usage_error("--tls-cert, --tls-key and --tls-server-name go with --tls or --tls-ca");
  if (!o->tls_cert != !o->tls_key) return usage_error("--tls-cert and --tls-key go together");
  if (!o->key_file && getenv("PINTUAN_KEY_FILE") && *getenv("PINTUAN_KEY_FILE")) o->key_file = getenv("PINTUAN_KEY_FILE");
  if (o->key_file && pintuan_read_key_file(o->key_file, o->key_name, sizeof o->key_name, o->key_secret,
                                           sizeof o->key_secret, err, sizeof err)) {
    fprintf(stderr, "pintuan-bench: %s\n", err);
    return EX_NOINPUT;
  }
  return -1;
}
