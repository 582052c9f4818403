/* options.c: the words on pintuan-cli's command line, turned into values.
 *
 * Owns the option tables (global and per command), the value parsers, the
 * parse of a command's words (getopt_long: "--flag value" and
 * "--flag=value") and the usage errors about options, each one line naming
 * the flag and the value. */
#include "options.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sysexits.h>
#include <time.h>

#include "clock.h"
#include "pintuan.h"

const cli_global_opt cli_global_opts[] = {
    {{"address", required_argument, 0, 'a'}, "HOST:PORT",
     "daemon address (default 127.0.0.1:7733); a list\n"
     "H1:P1,H2:P2 (a primary and its standby) fails over"},
    {{"json", no_argument, 0, 'j'}, NULL, "print each reply as one JSON object"},
    {{"key-file", required_argument, 0, 'k'}, "FILE",
     "the key to say Hello with: a file NAME SECRET, as pintuand\n"
     "--make-key writes it (default: $PINTUAN_KEY_FILE)"},
    {{"tls", no_argument, 0, 'T'}, NULL,
     "speak TLS, verifying the daemon against the system's CAs"},
    {{"tls-ca", required_argument, 0, 'C'}, "FILE",
     "speak TLS, verifying the daemon against this CA (PEM)\n"
     "(default: $PINTUAN_TLS_CA)"},
    {{"tls-cert", required_argument, 0, 'E'}, "FILE",
     "a client certificate (PEM) to show the daemon"},
    {{"tls-key", required_argument, 0, 'K'}, "FILE", "...and its private key"},
    {{"tls-server-name", required_argument, 0, 'N'}, "NAME",
     "the name the daemon's certificate carries (default: the\n"
     "address's host)"},
    {{"timeout", required_argument, 0, 't'}, "MS",
     "per-reply timeout in milliseconds (default 5000)"},
    {{"help", no_argument, 0, 'h'}, NULL, "this text"},
    {{"version", no_argument, 0, 'V'}, NULL, "print the version"},
    {{0, 0, 0, 0}, NULL, NULL}};

const cli_opt cli_opts[] = {
    {{"stock", required_argument, 0, O_STOCK}, "N"},
    {{"kind", required_argument, 0, O_KIND}, "flash|group"},
    {{"limit", required_argument, 0, O_LIMIT}, "N"},
    {{"hold", required_argument, 0, O_HOLD}, "DURATION"},
    {{"start", required_argument, 0, O_START}, "TIME"},
    {{"end", required_argument, 0, O_END}, "TIME"},
    {{"waitlist", optional_argument, 0, O_WAITLIST}, "[on|off]"},
    {{"group-size", required_argument, 0, O_GSIZE}, "N"},
    {{"group-ttl", required_argument, 0, O_GTTL}, "DURATION"},
    {{"new-users-only", no_argument, 0, O_NEWONLY}, NULL},
    {{"simulate-min-paid", required_argument, 0, O_SIM}, "M"},
    {{"match-margin", required_argument, 0, O_MARGIN}, "DURATION"},
    {{"qty", required_argument, 0, O_QTY}, "N"},
    {{"mode", required_argument, 0, O_MODE}, "open|join|auto"},
    {{"group", required_argument, 0, O_GROUP}, "GROUP_ID"},
    {{"old-user", no_argument, 0, O_OLD}, NULL},
    {{"count", required_argument, 0, O_COUNT}, "N"},
    {{"request-id", required_argument, 0, O_RID}, "R"},
    {{"admin", required_argument, 0, O_ADMIN}, "HOST:PORT"},
    {{"stale", no_argument, 0, O_STALE}, NULL},
    {{"user", required_argument, 0, O_USER}, "USER"},
    {{"cursor", required_argument, 0, O_CURSOR}, "C"},
    {{0, 0, 0, 0}, NULL}};
#define N_OPTS (sizeof cli_opts / sizeof *cli_opts - 1)

int usage_error(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "pintuan-cli: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\nTry 'pintuan-cli --help'.\n");
  va_end(ap);
  return EX_USAGE;
}

/* ---- values ---- */

int cli_parse_i64(const char *s, int64_t *out) {
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (errno || end == s || *end) return -1;
  *out = v;
  return 0;
}

int cli_parse_u64(const char *s, uint64_t *out) {
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno || end == s || *end || s[0] == '-') return -1;
  *out = v;
  return 0;
}

/* "+30s" / "+5m" / "+2h" / "+500ms" / "now" / epoch ms */
static int parse_time(const char *s, int64_t *out) {
  if (!strcmp(s, "now")) return *out = pt_wall_ms(), 0;
  if (s[0] != '+') return cli_parse_i64(s, out);
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
  *out = pt_wall_ms() + (int64_t)(v * mult);
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

/* on/true/yes/1 -> 1, off/false/no/0 -> 0, anything else -> -1 */
static int parse_bool(const char *s) {
  static const char *const on[] = {"on", "true", "yes", "1"}, *const off[] = {"off", "false", "no", "0"};
  for (size_t i = 0; i < sizeof on / sizeof *on; i++) {
    if (!strcmp(s, on[i])) return 1;
    if (!strcmp(s, off[i])) return 0;
  }
  return -1;
}

static const char *random_request_id(void) {
  static char buf[40];
  uint64_t r = 0;
  if (getrandom(&r, sizeof r, 0) != sizeof r) r = (uint64_t)pt_wall_ms() ^ (uint64_t)clock();
  snprintf(buf, sizeof buf, "cli-%016llx", (unsigned long long)r);
  return buf;
}

/* ---- errors about options ---- */

static const char *opt_name(int val) {
  for (const cli_opt *p = cli_opts; p->opt.name; p++)
    if (p->opt.val == val) return p->opt.name;
  return "?";
}

int cli_bad_global_option(const struct option *opts, const char *word, int o) {
  if (strncmp(word, "--", 2)) {
    if (o == ':') return usage_error("option '-%c' needs a value", optopt);
    return usage_error("unknown option '-%c'", optopt);
  }
  const char *name = word + 2;
  int len = (int)strcspn(name, "=");
  if (o == ':') return usage_error("--%.*s needs a value", len, name);
  if (optopt) return usage_error("--%.*s takes no value", len, name);
  for (const cli_opt *p = cli_opts; p->opt.name; p++)
    if (!strncmp(p->opt.name, name, (size_t)len) && !p->opt.name[len])
      return usage_error("--%s is an option of a command: put it after the command", p->opt.name);
  int matches = 0;
  for (const struct option *p = opts; p->name; p++) matches += !strncmp(p->name, name, (size_t)len);
  if (matches > 1) return usage_error("ambiguous option '--%.*s'", len, name);
  return usage_error("unknown option '--%.*s'", len, name);
}

/* The option word of a command getopt could not take (o is '?' or ':'):
 * say why. */
static int bad_option(const char *cmd, const char *word, int o, unsigned allowed) {
  if (strncmp(word, "--", 2)) {
    if (o == ':') return usage_error("option '-%c' needs a value", optopt);
    return usage_error("unknown option '-%c' for '%s'", optopt, cmd);
  }
  const char *name = word + 2;
  size_t len = strcspn(name, "=");
  if (o == ':') return usage_error("--%.*s needs a value", (int)len, name);
  if (optopt) return usage_error("--%.*s takes no value", (int)len, name);
  for (const cli_global_opt *p = cli_global_opts; p->opt.name; p++)
    if (len && !strncmp(p->opt.name, name, len) && !p->opt.name[len])
      return usage_error("--%s is a global option: put it before the command "
                         "(pintuan-cli --%s %s ...)", p->opt.name, p->opt.name, cmd);
  /* an option of another command (its exact name, or the only one with
   * that prefix); else a prefix of several of this command's options */
  const char *other = NULL;
  int others = 0, mine = 0;
  for (const cli_opt *p = cli_opts; p->opt.name; p++) {
    if (strncmp(p->opt.name, name, len)) continue;
    int ok = !!(allowed & BIT(p->opt.val));
    if (!p->opt.name[len] && !ok) return usage_error("--%s is not valid for '%s'", p->opt.name, cmd);
    if (ok) mine++;
    else other = p->opt.name, others++;
  }
  if (mine > 1) return usage_error("ambiguous option '--%.*s' for '%s'", (int)len, name, cmd);
  if (!mine && others == 1) return usage_error("--%s is not valid for '%s'", other, cmd);
  return usage_error("unknown option '--%.*s' for '%s'", (int)len, name, cmd);
}

/* ---- a command's words ---- */

/* An option with an optional value takes it as "--opt=VALUE", and also as
 * "--opt VALUE" when the next word is one of its values ("--waitlist on");
 * any other next word is left alone (an argument, or the next option). */
static int optional_value_ok(int o, const char *word) {
  switch (o) {
  case O_WAITLIST: return parse_bool(word) >= 0;
  default: return 0;
  }
}

#define DURATION_FORMS "give seconds, or 500ms, 30s, 5m, 2h"
#define TIME_FORMS "give epoch ms, now, or +30s, +5m, +2h, +500ms"

/* One option o with its value v (NULL for none) into a. 0, or EX_USAGE. */
static int take_option(cli_args *a, int o, const char *v) {
  const char *what = "number", *hint = NULL;
  int bad = 0;
  switch (o) {
  case O_STOCK: bad = cli_parse_i64(v, &a->stock) || a->stock < 0, hint = "give units, 0 or more"; break;
  case O_LIMIT: bad = cli_parse_i64(v, &a->limit) || a->limit < 0 || a->limit > UINT32_MAX,
                hint = "give 0 for no limit, or N"; break;
  case O_QTY: bad = cli_parse_i64(v, &a->qty) || a->qty < 1 || a->qty > INT32_MAX,
              hint = "give 1 or more units"; break;
  case O_HOLD: bad = parse_duration_ms(v, &a->hold_ms), what = "duration", hint = DURATION_FORMS; break;
  case O_GTTL: bad = parse_duration_ms(v, &a->gttl), what = "duration", hint = DURATION_FORMS; break;
  case O_MARGIN: bad = parse_duration_ms(v, &a->margin), what = "duration", hint = DURATION_FORMS; break;
  case O_START: bad = parse_time(v, &a->start), what = "time", hint = TIME_FORMS; break;
  case O_END: bad = parse_time(v, &a->end), what = "time", hint = TIME_FORMS; break;
  case O_KIND:
    if (!strcmp(v, "flash") || !strcmp(v, "flash_sale")) a->kind = PINTUAN__V1__CAMPAIGN_KIND__FLASH_SALE;
    else if (!strcmp(v, "group") || !strcmp(v, "group_buy")) a->kind = PINTUAN__V1__CAMPAIGN_KIND__GROUP_BUY;
    else return usage_error("--kind: unknown kind '%s' (give flash or group)", v);
    break;
  case O_GSIZE:
    bad = cli_parse_i64(v, &a->gsize) || a->gsize < GROUP_MIN || a->gsize > GROUP_MAX;
    what = "group size", hint = "give " XSTR(GROUP_MIN) ".." XSTR(GROUP_MAX);
    break;
  case O_SIM: bad = cli_parse_i64(v, &a->sim) || a->sim < 0 || a->sim > UINT32_MAX,
              hint = "give a number of paid seats"; break;
  case O_COUNT: bad = cli_parse_i64(v, &a->count) || a->count < 1, what = "count", hint = "give 1 or more"; break;
  case O_NEWONLY: case O_OLD: case O_STALE: break;
  case O_GROUP: bad = cli_parse_u64(v, &a->group), what = "group id", hint = "give the group_id join printed"; break;
  case O_CURSOR: bad = cli_parse_u64(v, &a->cursor), what = "cursor", hint = "give the next_cursor a page printed"; break;
  case O_MODE:
    if (!strcmp(v, "open")) a->mode = PINTUAN__V1__JOIN_MODE__JOIN_OPEN;
    else if (!strcmp(v, "join")) a->mode = PINTUAN__V1__JOIN_MODE__JOIN_GROUP;
    else if (!strcmp(v, "auto")) a->mode = PINTUAN__V1__JOIN_MODE__JOIN_AUTO;
    else return usage_error("--mode: unknown mode '%s' (give open, join or auto)", v);
    break;
  case O_RID: a->rid = v; break;
  case O_ADMIN: a->admin = v; break;
  case O_USER: a->user = v, bad = !*v || strlen(v) > 64, what = "user", hint = "give the user id, 1..64 bytes"; break;
  case O_WAITLIST: /* a bare --waitlist means on */
    a->waitlist = v ? parse_bool(v) : 1;
    bad = a->waitlist < 0, what = "value", hint = "give on or off";
    break;
  }
  if (bad)
    return usage_error("--%s: bad %s '%s'%s%s%s", opt_name(o), what, v, hint ? " (" : "",
                       hint ? hint : "", hint ? ")" : "");
  return 0;
}

int cli_parse_args(const char *cmd, int argc, char **argv, cli_args *a, unsigned allowed) {
  memset(a, 0, sizeof(*a));
  a->qty = 1;
  /* only this command's options: a prefix is matched among them alone */
  struct option opts[N_OPTS + 1];
  size_t n = 0;
  for (const cli_opt *p = cli_opts; p->opt.name; p++)
    if (allowed & BIT(p->opt.val)) opts[n++] = p->opt;
  opts[n] = (struct option){0, 0, 0, 0};
  optind = 1;
  opterr = 0;
  for (;;) {
    int word = optind, li = -1;
    int o = getopt_long(argc, argv, "+:", opts, &li);
    if (o == -1) {
      if (optind >= argc) break;
      /* a positional word; keep parsing after it */
      if (a->npos == CLI_MAX_POS) return usage_error("unexpected argument '%s' for '%s'", argv[optind], cmd);
      a->pos[a->npos++] = argv[optind++];
      continue;
    }
    if (o == '?' || o == ':') return bad_option(cmd, argv[word], o, allowed);
    a->seen |= BIT(o);
    const char *v = optarg;
    if (li >= 0 && opts[li].has_arg == optional_argument && !v && optind < argc &&
        optional_value_ok(o, argv[optind]))
      v = argv[optind++];
    int rc = take_option(a, o, v);
    if (rc) return rc;
  }
  if (!a->rid) a->rid = random_request_id();
  return 0;
}

int cli_need_pos(const cli_args *a, int n, const char *what) {
  if (a->npos > n) return usage_error("unexpected argument '%s'; expected: %s", a->pos[n], what);
  if (a->npos < n) return usage_error("missing arguments; expected: %s", what);
  return 0;
}
