/* pintuan-cli: every pintuan operation from a shell.
 *
 * Exit codes: 0 the daemon answered OK; 1 it answered with another status
 * (a rejected request: SOLD_OUT, LIMIT_EXCEEDED, ...); 64 usage error;
 * 69 the daemon could not be reached or the connection failed. */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sysexits.h>
#include <time.h>

#include "addr.h"
#include "clock.h"
#include "pintuan.h"
#include "print.h"

#define EXIT_REJECTED 1
#define STR(x) #x
#define XSTR(x) STR(x)

static struct {
  const char *addr;
  const char *token;
  int timeout_ms;
  int json;
} g = {.addr = "127.0.0.1:7733", .timeout_ms = 5000};

static void usage(FILE *f) {
  fprintf(f,
    "usage: pintuan-cli [global options] COMMAND [args] [options]\n"
    "\n"
    "global options (before the command):\n"
    "  -a, --address HOST:PORT   daemon address (default 127.0.0.1:7733); a list\n"
    "                            H1:P1,H2:P2 (a primary and its standby) fails over\n"
    "  -j, --json                print each reply as one JSON object\n"
    "  -T, --token TOKEN         admin token (sent in a Hello first)\n"
    "  -t, --timeout MS          per-reply timeout in milliseconds (default 5000)\n"
    "  -h, --help                this text\n"
    "  -V, --version             print the version\n"
    "\n"
    "commands (their options after them):\n"
    "  ping\n"
    "  campaign create ID --stock N [--kind flash|group] [--limit N]\n"
    "                  [--hold DURATION] [--start TIME] [--end TIME]\n"
    "                  [--waitlist [on|off]] [--request-id R]\n"
    "  campaign update ID [--stock N] [--limit N] [--hold DURATION] [--end TIME]\n"
    "                  [--waitlist [on|off]] [--request-id R]\n"
    "  campaign end ID [--request-id R]\n"
    "  campaign get ID\n"
    "  campaign list\n"
    "  reserve CAMPAIGN USER [--qty N] [--request-id R]\n"
    "  confirm CAMPAIGN RESERVATION_ID [--request-id R]\n"
    "  cancel CAMPAIGN RESERVATION_ID [--request-id R]\n"
    "  reservation CAMPAIGN RESERVATION_ID\n"
    "  holdings CAMPAIGN USER\n"
    "  join CAMPAIGN USER [--mode open|join|auto] [--group GROUP_ID] [--old-user]\n"
    "                  [--request-id R]         (default --mode auto)\n"
    "  group get CAMPAIGN GROUP_ID\n"
    "  subscribe [CAMPAIGN...] [--count N]       print events as they arrive\n"
    "\n"
    "group buys: campaign create ID --kind group --stock N --group-size N (2..64)\n"
    "  --group-ttl DURATION [--hold DURATION] [--limit GROUPS] [--new-users-only]\n"
    "  [--simulate-min-paid M] [--match-margin DURATION]\n"
    "\n"
    "DURATION is seconds, or with a unit: 500ms, 30s, 5m, 2h (--hold: default 300).\n"
    "TIME is Unix epoch milliseconds, 'now', or relative: +30s, +5m, +2h, +500ms.\n"
    "--waitlist takes on/off (true/false, yes/no, 1/0) as --waitlist on or\n"
    "--waitlist=on; a bare --waitlist means on. --limit 0: no per-user limit.\n"
    "campaign create/update/end are admin commands: with an admin token on the\n"
    "daemon, give it with -T TOKEN.\n"
    "Without --request-id a random one is made; give your own to retry safely.\n"
    "Exit status: 0 OK, 1 rejected (any other status), 64 usage, 69 unreachable.\n");
}

__attribute__((format(printf, 1, 2))) static int usage_error(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "pintuan-cli: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\nTry 'pintuan-cli --help'.\n");
  va_end(ap);
  return EX_USAGE;
}

/* ---- argument parsing ---- */

static int parse_i64(const char *s, int64_t *out) {
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (errno || end == s || *end) return -1;
  *out = v;
  return 0;
}

static int parse_u64(const char *s, uint64_t *out) {
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno || end == s || *end || s[0] == '-') return -1;
  *out = v;
  return 0;
}

static int64_t now_ms(void) { return pt_wall_ms(); }

/* "+30s" / "+5m" / "+2h" / "+500ms" / "now" / epoch ms */
static int parse_time(const char *s, int64_t *out) {
  if (!strcmp(s, "now")) return *out = now_ms(), 0;
  if (s[0] != '+') return parse_i64(s, out);
  char *end;
  errno = 0;
  double v = strtod(s + 1, &end);
  if (errno || end == s + 1 || v < 0) return -1;
  double mult;
  if (!strcmp(end, "ms")) mult = 1;
  else if (!strcmp(end, "s") || !*end) mult = 1000;
  else if (!strcmp(end, "m")) mult = 60000;
  else if (!strcmp(end, "h")) mult = 3600000;
  else return -1;
  if (!(v * mult < 1e15)) return -1; /* NaN, inf, beyond 30 000 years */
  *out = now_ms() + (int64_t)(v * mult);
  return 0;
}

/* seconds, or with a unit: 300, 300s, 5m, 500ms */
static int parse_duration_ms(const char *s, int64_t *out) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (errno || end == s || v < 0) return -1;
  double mult;
  if (!*end || !strcmp(end, "s")) mult = 1000;
  else if (!strcmp(end, "ms")) mult = 1;
  else if (!strcmp(end, "m")) mult = 60000;
  else if (!strcmp(end, "h")) mult = 3600000;
  else return -1;
  if (!(v * mult < 1e15)) return -1; /* NaN, inf, beyond 30 000 years */
  *out = (int64_t)(v * mult);
  return 0;
}

static const char *random_request_id(void) {
  static char buf[40];
  uint64_t r = 0;
  if (getrandom(&r, sizeof r, 0) != sizeof r) r = (uint64_t)now_ms() ^ (uint64_t)clock();
  snprintf(buf, sizeof buf, "cli-%016llx", (unsigned long long)r);
  return buf;
}

static int show(pintuan_response *r) {
  if (g.json) cli_print_json(r);
  else cli_print_human(r);
  fflush(stdout);
  if (r->status == PINTUAN__V1__STATUS__UNAUTHENTICATED)
    fprintf(stderr, g.token ? "pintuan-cli: (the daemon did not take the admin token given with -T)\n"
                            : "pintuan-cli: (admin operations need the daemon's admin token: "
                              "pintuan-cli -T TOKEN ...)\n");
  return r->status == PINTUAN__V1__STATUS__OK ? 0 : EXIT_REJECTED;
}

/* ---- commands ---- */

static pintuan_client *cli;

/* Connects (and says Hello with -T's token) once the command's arguments
 * were found good: a usage error never needs the daemon. 0, or the exit
 * status. */
static int connect_daemon(void) {
  if (cli) return 0;
  char err[256];
  cli = pintuan_connect(g.addr, g.timeout_ms, err, sizeof err);
  if (!cli) {
    fprintf(stderr, "pintuan-cli: %s\n", err);
    return EX_UNAVAILABLE;
  }
  if (g.token) {
    pintuan_response *r;
    if (pintuan_hello(cli, g.token, &r)) {
      fprintf(stderr, "pintuan-cli: %s: %s\n", g.addr, pintuan_error(cli));
      return EX_UNAVAILABLE;
    }
    if (r->status != PINTUAN__V1__STATUS__OK) {
      int rc = show(r);
      pintuan_response_free(r);
      return rc;
    }
    pintuan_response_free(r);
  }
  return 0;
}

/* The exit status of one request: what the daemon answered, or 69 when the
 * call failed. `failed` is a libpintuan call's return value; the reply is
 * read through r only after that call has returned. */
static int answer(int failed, pintuan_response **r) {
  if (failed) {
    fprintf(stderr, "pintuan-cli: %s: %s\n", g.addr, pintuan_error(cli));
    return EX_UNAVAILABLE;
  }
  int rc = show(*r);
  pintuan_response_free(*r);
  return rc;
}

static int call(pintuan_request *q) {
  int rc;
  if ((rc = connect_daemon())) return rc;
  pintuan_response *r;
  return answer(pintuan_call(cli, q, &r), &r);
}

/* Sub-options of a command: getopt_long over the words after the command. */
enum { O_STOCK = 256, O_KIND, O_LIMIT, O_HOLD, O_START, O_END, O_WAITLIST, O_RID, O_QTY,
       O_GSIZE, O_GTTL, O_NEWONLY, O_SIM, O_MARGIN, O_MODE, O_GROUP, O_OLD, O_COUNT };
static const struct option sub_opts[] = {
    {"stock", required_argument, 0, O_STOCK}, {"kind", required_argument, 0, O_KIND},
    {"limit", required_argument, 0, O_LIMIT}, {"hold", required_argument, 0, O_HOLD},
    {"start", required_argument, 0, O_START}, {"end", required_argument, 0, O_END},
    {"waitlist", optional_argument, 0, O_WAITLIST}, {"request-id", required_argument, 0, O_RID},
    {"qty", required_argument, 0, O_QTY}, {"group-size", required_argument, 0, O_GSIZE},
    {"group-ttl", required_argument, 0, O_GTTL}, {"new-users-only", no_argument, 0, O_NEWONLY},
    {"simulate-min-paid", required_argument, 0, O_SIM},
    {"match-margin", required_argument, 0, O_MARGIN}, {"mode", required_argument, 0, O_MODE},
    {"group", required_argument, 0, O_GROUP}, {"old-user", no_argument, 0, O_OLD},
    {"count", required_argument, 0, O_COUNT}, {0, 0, 0, 0}};

/* on/true/yes/1 -> 1, off/false/no/0 -> 0, anything else -> -1 */
static int parse_bool(const char *s) {
  static const char *const on[] = {"on", "true", "yes", "1"}, *const off[] = {"off", "false", "no", "0"};
  for (size_t i = 0; i < sizeof on / sizeof *on; i++) {
    if (!strcmp(s, on[i])) return 1;
    if (!strcmp(s, off[i])) return 0;
  }
  return -1;
}

/* An option with an optional value takes it as "--opt=VALUE", and also as
 * "--opt VALUE" when the next word is one of its values ("--waitlist on");
 * any other next word is left alone (an argument, or the next option). */
static int optional_value_ok(int o, const char *word) {
  switch (o) {
  case O_WAITLIST: return parse_bool(word) >= 0;
  default: return 0;
  }
}

typedef struct sub {
  unsigned seen; /* bit per option */
  int64_t stock, limit, hold_ms, start, end, qty;
  int64_t gsize, gttl, sim, margin, count;
  uint64_t group;
  int waitlist, mode, kind;
  const char *rid;
  char *pos[4];
  int npos;
} sub;

#define BIT(o) (1u << ((o) - O_STOCK))
#define GROUP_MIN 2  /* the daemon's range for a group size */
#define GROUP_MAX 64
#define GSIZE_ARG "--group-size N (" XSTR(GROUP_MIN) ".." XSTR(GROUP_MAX) ")"
#define GTTL_ARG "--group-ttl DURATION (e.g. 24h)"

static const char *opt_name(int val) {
  for (const struct option *p = sub_opts; p->name; p++)
    if (p->val == val) return p->name;
  return "?";
}

/* The option word getopt could not take (o is '?' or ':'): say why. */
static int bad_option(const char *cmd, const char *word, int o, unsigned allowed) {
  if (strncmp(word, "--", 2)) {
    if (o == ':') return usage_error("option '-%c' needs a value", optopt);
    return usage_error("unknown option '-%c' for '%s'", optopt, cmd);
  }
  const char *name = word + 2;
  size_t len = strcspn(name, "=");
  if (o == ':') return usage_error("--%.*s needs a value", (int)len, name);
  if (optopt) return usage_error("--%.*s takes no value", (int)len, name);
  static const char *const global[] = {"address", "json", "token", "timeout", "help", "version"};
  for (size_t i = 0; i < sizeof global / sizeof *global; i++)
    if (len && !strncmp(global[i], name, len) && !global[i][len])
      return usage_error("--%s is a global option: put it before the command "
                         "(pintuan-cli --%s %s ...)", global[i], global[i], cmd);
  /* an option of another command (its exact name, or the only one with
   * that prefix); else a prefix of several of this command's options */
  const struct option *other = NULL;
  int others = 0, mine = 0;
  for (const struct option *p = sub_opts; p->name; p++) {
    if (strncmp(p->name, name, len)) continue;
    if (!p->name[len] && !(allowed & BIT(p->val))) return usage_error("--%s is not valid for '%s'", p->name, cmd);
    if (allowed & BIT(p->val)) mine++;
    else other = p, others++;
  }
  if (mine > 1) return usage_error("ambiguous option '--%.*s' for '%s'", (int)len, name, cmd);
  if (!mine && others == 1) return usage_error("--%s is not valid for '%s'", other->name, cmd);
  return usage_error("unknown option '--%.*s' for '%s'", (int)len, name, cmd);
}

#define DURATION_FORMS "give seconds, or 500ms, 30s, 5m, 2h"
#define TIME_FORMS "give epoch ms, now, or +30s, +5m, +2h, +500ms"

/* The options after a command word (cmd, e.g. "campaign get", names it in
 * errors); only the options in `allowed` are taken. Every error names the
 * option and the value. */
static int parse_sub(const char *cmd, int argc, char **argv, sub *s, unsigned allowed) {
  memset(s, 0, sizeof(*s));
  s->qty = 1;
  /* only this command's options: a prefix is matched among them alone */
  struct option opts[sizeof sub_opts / sizeof *sub_opts];
  size_t n = 0;
  for (const struct option *p = sub_opts; p->name; p++)
    if (allowed & BIT(p->val)) opts[n++] = *p;
  opts[n] = (struct option){0, 0, 0, 0};
  optind = 1;
  opterr = 0;
  for (;;) {
    int word = optind, li = -1;
    int o = getopt_long(argc, argv, "+:", opts, &li);
    if (o == -1) {
      if (optind >= argc) break;
      /* a positional word; keep parsing after it */
      if (s->npos == 4) return usage_error("unexpected argument '%s' for '%s'", argv[optind], cmd);
      s->pos[s->npos++] = argv[optind++];
      continue;
    }
    if (o == '?' || o == ':') return bad_option(cmd, argv[word], o, allowed);
    s->seen |= BIT(o);
    const char *v = optarg;
    if (li >= 0 && opts[li].has_arg == optional_argument && !v && optind < argc &&
        optional_value_ok(o, argv[optind]))
      v = argv[optind++];
    const char *what = "number", *hint = NULL;
    int bad = 0;
    switch (o) {
    case O_STOCK: bad = parse_i64(v, &s->stock) || s->stock < 0, hint = "give units, 0 or more"; break;
    case O_LIMIT: bad = parse_i64(v, &s->limit) || s->limit < 0 || s->limit > UINT32_MAX,
                  hint = "give 0 for no limit, or N"; break;
    case O_QTY: bad = parse_i64(v, &s->qty) || s->qty < INT32_MIN || s->qty > INT32_MAX,
                hint = "give a whole number of units"; break;
    case O_HOLD: bad = parse_duration_ms(v, &s->hold_ms), what = "duration", hint = DURATION_FORMS; break;
    case O_GTTL: bad = parse_duration_ms(v, &s->gttl), what = "duration", hint = DURATION_FORMS; break;
    case O_MARGIN: bad = parse_duration_ms(v, &s->margin), what = "duration", hint = DURATION_FORMS; break;
    case O_START: bad = parse_time(v, &s->start), what = "time", hint = TIME_FORMS; break;
    case O_END: bad = parse_time(v, &s->end), what = "time", hint = TIME_FORMS; break;
    case O_KIND:
      if (!strcmp(v, "flash") || !strcmp(v, "flash_sale")) s->kind = PINTUAN__V1__CAMPAIGN_KIND__FLASH_SALE;
      else if (!strcmp(v, "group") || !strcmp(v, "group_buy")) s->kind = PINTUAN__V1__CAMPAIGN_KIND__GROUP_BUY;
      else return usage_error("--kind: unknown kind '%s' (give flash or group)", v);
      break;
    case O_GSIZE:
      bad = parse_i64(v, &s->gsize) || s->gsize < GROUP_MIN || s->gsize > GROUP_MAX;
      what = "group size", hint = "give " XSTR(GROUP_MIN) ".." XSTR(GROUP_MAX);
      break;
    case O_SIM: bad = parse_i64(v, &s->sim) || s->sim < 0 || s->sim > UINT32_MAX,
                hint = "give a number of paid seats"; break;
    case O_COUNT: bad = parse_i64(v, &s->count) || s->count < 1, what = "count", hint = "give 1 or more"; break;
    case O_NEWONLY: case O_OLD: break;
    case O_GROUP: bad = parse_u64(v, &s->group), what = "group id", hint = "give the group_id join printed"; break;
    case O_MODE:
      if (!strcmp(v, "open")) s->mode = PINTUAN__V1__JOIN_MODE__JOIN_OPEN;
      else if (!strcmp(v, "join")) s->mode = PINTUAN__V1__JOIN_MODE__JOIN_GROUP;
      else if (!strcmp(v, "auto")) s->mode = PINTUAN__V1__JOIN_MODE__JOIN_AUTO;
      else return usage_error("--mode: unknown mode '%s' (give open, join or auto)", v);
      break;
    case O_RID: s->rid = v; break;
    case O_WAITLIST: /* a bare --waitlist means on */
      s->waitlist = v ? parse_bool(v) : 1;
      bad = s->waitlist < 0, what = "value", hint = "give on or off";
      break;
    }
    if (bad)
      return usage_error("--%s: bad %s '%s'%s%s%s", opt_name(o), what, v, hint ? " (" : "",
                         hint ? hint : "", hint ? ")" : "");
  }
  if (!s->rid) s->rid = random_request_id();
  return 0;
}

static int need_pos(const sub *s, int n, const char *what) {
  if (s->npos > n) return usage_error("unexpected argument '%s'; expected: %s", s->pos[n], what);
  if (s->npos < n) return usage_error("missing arguments; expected: %s", what);
  return 0;
}

static int cmd_campaign(int argc, char **argv) {
  if (argc < 2) return usage_error("campaign needs a subcommand: create, update, end, get or list");
  const char *what = argv[1];
  sub s;
  pintuan_request q;
  int rc;
  if (!strcmp(what, "create")) {
    if ((rc = parse_sub("campaign create", argc - 1, argv + 1, &s,
                        BIT(O_STOCK) | BIT(O_KIND) | BIT(O_LIMIT) | BIT(O_HOLD) | BIT(O_START) |
                            BIT(O_END) | BIT(O_WAITLIST) | BIT(O_RID) | BIT(O_GSIZE) |
                            BIT(O_GTTL) | BIT(O_NEWONLY) | BIT(O_SIM) | BIT(O_MARGIN))))
      return rc;
    if ((rc = need_pos(&s, 1, "campaign create ID --stock N"))) return rc;
    if (!(s.seen & BIT(O_STOCK))) return usage_error("campaign create needs --stock N");
    /* what the daemon requires of a group buy, asked for in CLI terms */
    if (s.kind == PINTUAN__V1__CAMPAIGN_KIND__GROUP_BUY) {
      int size = !!(s.seen & BIT(O_GSIZE)), ttl = !!(s.seen & BIT(O_GTTL));
      if (!size || !ttl)
        return usage_error("campaign create --kind group needs %s%s%s", size ? "" : GSIZE_ARG,
                           size || ttl ? "" : " and ", ttl ? "" : GTTL_ARG);
    }
    /* an option not given is 0: what the protocol reads as absent */
    pintuan_campaign_spec spec = {
        .campaign_id = s.pos[0], .kind = s.kind, .stock = s.stock,
        .hold_ms = (s.seen & BIT(O_HOLD)) ? s.hold_ms : 300000,
        .per_user_limit = (uint32_t)s.limit, .start_ms = s.start, .end_ms = s.end,
        .waitlist = s.waitlist == 1, .group_size = (uint32_t)s.gsize, .group_ttl_ms = s.gttl,
        .new_users_only = !!(s.seen & BIT(O_NEWONLY)), .simulate_min_paid = (uint32_t)s.sim,
        .match_margin_ms = s.margin};
    Pintuan__V1__CreateCampaign m;
    Pintuan__V1__CampaignSpec sp;
    pintuan_req_create_campaign(&q, &m, &sp, &spec, s.rid);
    return call(&q);
  }
  if (!strcmp(what, "update")) {
    if ((rc = parse_sub("campaign update", argc - 1, argv + 1, &s,
                        BIT(O_STOCK) | BIT(O_LIMIT) | BIT(O_HOLD) | BIT(O_END) | BIT(O_WAITLIST) |
                            BIT(O_RID))))
      return rc;
    if ((rc = need_pos(&s, 1, "campaign update ID [options]"))) return rc;
    pintuan_campaign_update u = {
        .stock = s.stock, .per_user_limit = (uint32_t)s.limit, .hold_ms = s.hold_ms,
        .end_ms = s.end, .waitlist = s.waitlist == 1};
    if (s.seen & BIT(O_STOCK)) u.fields |= PINTUAN_UPDATE_STOCK;
    if (s.seen & BIT(O_LIMIT)) u.fields |= PINTUAN_UPDATE_LIMIT;
    if (s.seen & BIT(O_HOLD)) u.fields |= PINTUAN_UPDATE_HOLD;
    if (s.seen & BIT(O_END)) u.fields |= PINTUAN_UPDATE_END;
    if (s.seen & BIT(O_WAITLIST)) u.fields |= PINTUAN_UPDATE_WAITLIST;
    Pintuan__V1__UpdateCampaign m;
    pintuan_req_update_campaign(&q, &m, s.pos[0], &u, s.rid);
    return call(&q);
  }
  if (!strcmp(what, "end")) {
    if ((rc = parse_sub("campaign end", argc - 1, argv + 1, &s, BIT(O_RID)))) return rc;
    if ((rc = need_pos(&s, 1, "campaign end ID"))) return rc;
    Pintuan__V1__EndCampaign m;
    pintuan_req_end_campaign(&q, &m, s.pos[0], s.rid);
    return call(&q);
  }
  if (!strcmp(what, "get")) {
    if ((rc = parse_sub("campaign get", argc - 1, argv + 1, &s, 0))) return rc;
    if ((rc = need_pos(&s, 1, "campaign get ID"))) return rc;
    Pintuan__V1__GetCampaign m;
    pintuan_req_get_campaign(&q, &m, s.pos[0]);
    return call(&q);
  }
  if (!strcmp(what, "list")) {
    if ((rc = parse_sub("campaign list", argc - 1, argv + 1, &s, 0))) return rc;
    if ((rc = need_pos(&s, 0, "campaign list"))) return rc;
    Pintuan__V1__ListCampaigns m;
    pintuan_req_list_campaigns(&q, &m);
    return call(&q);
  }
  return usage_error("unknown campaign subcommand '%s' (give create, update, end, get or list)", what);
}

static int cmd_reserve(int argc, char **argv) {
  sub s;
  int rc;
  if ((rc = parse_sub("reserve", argc, argv, &s, BIT(O_QTY) | BIT(O_RID)))) return rc;
  if ((rc = need_pos(&s, 2, "reserve CAMPAIGN USER [--qty N] [--request-id R]"))) return rc;
  pintuan_request q;
  Pintuan__V1__Reserve m;
  pintuan_req_reserve(&q, &m, s.pos[0], s.pos[1], (int32_t)s.qty, s.rid);
  return call(&q);
}

static int cmd_confirm_cancel(int argc, char **argv, int confirm) {
  sub s;
  int rc;
  if ((rc = parse_sub(confirm ? "confirm" : "cancel", argc, argv, &s, BIT(O_RID)))) return rc;
  if ((rc = need_pos(&s, 2, "confirm|cancel CAMPAIGN RESERVATION_ID [--request-id R]"))) return rc;
  uint64_t res;
  if (parse_u64(s.pos[1], &res))
    return usage_error("bad reservation id '%s' (give the reservation_id reserve printed)", s.pos[1]);
  if ((rc = connect_daemon())) return rc;
  pintuan_response *r;
  return answer(confirm ? pintuan_confirm(cli, s.pos[0], res, s.rid, &r)
                        : pintuan_cancel(cli, s.pos[0], res, s.rid, &r), &r);
}

static int cmd_reservation(int argc, char **argv) {
  sub s;
  int rc;
  if ((rc = parse_sub("reservation", argc, argv, &s, 0))) return rc;
  if ((rc = need_pos(&s, 2, "reservation CAMPAIGN RESERVATION_ID"))) return rc;
  uint64_t res;
  if (parse_u64(s.pos[1], &res))
    return usage_error("bad reservation id '%s' (give the reservation_id reserve printed)", s.pos[1]);
  pintuan_request q;
  Pintuan__V1__GetReservation m;
  pintuan_req_get_reservation(&q, &m, s.pos[0], res);
  return call(&q);
}

static int cmd_holdings(int argc, char **argv) {
  sub s;
  int rc;
  if ((rc = parse_sub("holdings", argc, argv, &s, 0))) return rc;
  if ((rc = need_pos(&s, 2, "holdings CAMPAIGN USER"))) return rc;
  pintuan_request q;
  Pintuan__V1__GetHoldings m;
  pintuan_req_get_holdings(&q, &m, s.pos[0], s.pos[1]);
  return call(&q);
}

static int cmd_join(int argc, char **argv) {
  sub s;
  int rc;
  if ((rc = parse_sub("join", argc, argv, &s, BIT(O_MODE) | BIT(O_GROUP) | BIT(O_OLD) | BIT(O_RID)))) return rc;
  if ((rc = need_pos(&s, 2, "join CAMPAIGN USER [--mode open|join|auto] [--group ID]"))) return rc;
  int mode = s.mode ? s.mode : PINTUAN__V1__JOIN_MODE__JOIN_AUTO;
  if ((s.seen & BIT(O_GROUP)) && !(s.seen & BIT(O_MODE))) mode = PINTUAN__V1__JOIN_MODE__JOIN_GROUP;
  if (mode == PINTUAN__V1__JOIN_MODE__JOIN_GROUP && !(s.seen & BIT(O_GROUP)))
    return usage_error("--mode join needs --group GROUP_ID");
  if ((rc = connect_daemon())) return rc;
  pintuan_response *r;
  return answer(pintuan_join(cli, s.pos[0], s.pos[1], mode, s.group, !(s.seen & BIT(O_OLD)), s.rid, &r), &r);
}

static int cmd_group(int argc, char **argv) {
  if (argc < 2 || strcmp(argv[1], "get")) return usage_error("expected: group get CAMPAIGN GROUP_ID");
  sub s;
  int rc;
  if ((rc = parse_sub("group get", argc - 1, argv + 1, &s, 0))) return rc;
  if ((rc = need_pos(&s, 2, "group get CAMPAIGN GROUP_ID"))) return rc;
  uint64_t gid;
  if (parse_u64(s.pos[1], &gid))
    return usage_error("bad group id '%s' (give the group_id join printed)", s.pos[1]);
  if ((rc = connect_daemon())) return rc;
  pintuan_response *r;
  return answer(pintuan_get_group(cli, s.pos[0], gid, &r), &r);
}

/* Prints events until --count of them arrived (or forever). */
static int cmd_subscribe(int argc, char **argv) {
  sub s;
  int rc;
  if ((rc = parse_sub("subscribe", argc, argv, &s, BIT(O_COUNT)))) return rc;
  const char *ids[5] = {0};
  for (int i = 0; i < s.npos; i++) ids[i] = s.pos[i];
  if ((rc = connect_daemon())) return rc;
  pintuan_response *r;
  /* the acknowledgement is printed first: then events follow */
  if ((rc = answer(pintuan_subscribe(cli, ids, &r), &r))) return rc;
  pintuan_set_timeout(cli, -1);
  for (int64_t n = 0; !s.count || n < s.count;) {
    if (pintuan_recv(cli, &r)) {
      fprintf(stderr, "pintuan-cli: %s: %s\n", g.addr, pintuan_error(cli));
      return EX_UNAVAILABLE;
    }
    if (r->result_case == PINTUAN__V1__RESPONSE__RESULT_EVENT) {
      show(r);
      n++;
    }
    pintuan_response_free(r);
  }
  return 0;
}

static int cmd_ping(int argc, char **argv) {
  sub s;
  int rc;
  if ((rc = parse_sub("ping", argc, argv, &s, 0))) return rc;
  if ((rc = need_pos(&s, 0, "ping"))) return rc;
  pintuan_request q;
  Pintuan__V1__Ping m;
  pintuan_req_ping(&q, &m);
  return call(&q);
}

/* The global option word getopt could not take (o is '?' or ':'). */
static int bad_global_option(const struct option *opts, const char *word, int o) {
  if (strncmp(word, "--", 2)) {
    if (o == ':') return usage_error("option '-%c' needs a value", optopt);
    return usage_error("unknown option '-%c'", optopt);
  }
  const char *name = word + 2;
  int len = (int)strcspn(name, "=");
  if (o == ':') return usage_error("--%.*s needs a value", len, name);
  if (optopt) return usage_error("--%.*s takes no value", len, name);
  for (const struct option *p = sub_opts; p->name; p++)
    if (!strncmp(p->name, name, (size_t)len) && !p->name[len])
      return usage_error("--%s is an option of a command: put it after the command", p->name);
  int matches = 0;
  for (const struct option *p = opts; p->name; p++) matches += !strncmp(p->name, name, (size_t)len);
  if (matches > 1) return usage_error("ambiguous option '--%.*s'", len, name);
  return usage_error("unknown option '--%.*s'", len, name);
}

int main(int argc, char **argv) {
  static const struct option opts[] = {
      {"address", required_argument, 0, 'a'}, {"json", no_argument, 0, 'j'},
      {"token", required_argument, 0, 'T'},   {"timeout", required_argument, 0, 't'},
      {"help", no_argument, 0, 'h'},          {"version", no_argument, 0, 'V'},
      {0, 0, 0, 0}};
  opterr = 0; /* our own messages: one line, then a pointer to --help */
  for (;;) {
    int word = optind;
    /* "+": stop at the command word; what follows belongs to the command */
    int o = getopt_long(argc, argv, "+:a:jT:t:hV", opts, NULL);
    if (o == -1) break;
    switch (o) {
    case 'a': { /* checked here: a usage error never needs the daemon */
      pt_addr list[PINTUAN_MAX_ADDRS];
      char err[512];
      if (pt_addr_parse_list(optarg, PINTUAN_DEFAULT_PORT, list, PINTUAN_MAX_ADDRS, err, sizeof err) < 0)
        return usage_error("--address: %s (give HOST:PORT or H1:P1,H2:P2)", err);
      g.addr = optarg;
      break;
    }
    case 'j': g.json = 1; break;
    case 'T': g.token = optarg; break;
    case 't': {
      int64_t t;
      if (parse_i64(optarg, &t) || t < 1 || t > 3600000)
        return usage_error("--timeout: bad value '%s' (give milliseconds, 1..3600000)", optarg);
      g.timeout_ms = (int)t;
      break;
    }
    case 'h': usage(stdout); return EX_OK;
    case 'V': printf("pintuan-cli %s\n", PT_VERSION); return EX_OK;
    default: return bad_global_option(opts, argv[word], o);
    }
  }
  if (optind >= argc) return usage_error("no command given");
  char **cargv = argv + optind;
  int cargc = argc - optind;
  const char *cmd = cargv[0];
  static const char *known[] = {"ping", "campaign", "reserve", "confirm", "cancel", "reservation",
                                "holdings", "join", "group", "subscribe", NULL};
  int ok = 0;
  for (int i = 0; known[i]; i++) ok |= !strcmp(cmd, known[i]);
  if (!ok) return usage_error("unknown command '%s'", cmd);

  int rc;
  if (!strcmp(cmd, "ping")) rc = cmd_ping(cargc, cargv);
  else if (!strcmp(cmd, "campaign")) rc = cmd_campaign(cargc, cargv);
  else if (!strcmp(cmd, "reserve")) rc = cmd_reserve(cargc, cargv);
  else if (!strcmp(cmd, "confirm")) rc = cmd_confirm_cancel(cargc, cargv, 1);
  else if (!strcmp(cmd, "cancel")) rc = cmd_confirm_cancel(cargc, cargv, 0);
  else if (!strcmp(cmd, "reservation")) rc = cmd_reservation(cargc, cargv);
  else if (!strcmp(cmd, "join")) rc = cmd_join(cargc, cargv);
  else if (!strcmp(cmd, "group")) rc = cmd_group(cargc, cargv);
  else if (!strcmp(cmd, "subscribe")) rc = cmd_subscribe(cargc, cargv);
  else rc = cmd_holdings(cargc, cargv);
  if (cli) pintuan_close(cli);
  return rc;
}
