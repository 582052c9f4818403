/* options.h: the words on pintuan-cli's command line, turned into values.
 *
 * Owns the two option tables (the global options before the command, and
 * the options a command takes after it, with the metavariables --help
 * shows), the value parsers (numbers, durations, times, on/off), the parse
 * of a command's words into cli_args, and every usage-error message about
 * an option: each one line naming the flag and the value, then a pointer to
 * --help (exit status 64). */
#ifndef PT_CLI_OPTIONS_H
#define PT_CLI_OPTIONS_H

#include <getopt.h>
#include <stdint.h>
#include <stdio.h>

#define STR(x) #x
#define XSTR(x) STR(x)

/* ---- global options (before the command) ---- */

typedef struct cli_global_opt {
  struct option opt; /* getopt_long's entry; opt.val is the short letter */
  const char *metavar; /* NULL: takes no value */
  const char *help;    /* for --help; may hold '\n' for more lines */
} cli_global_opt;

/* ends with an entry of opt.name NULL */
extern const cli_global_opt cli_global_opts[];
/* getopt_long's short option string for cli_global_opts */
#define CLI_GLOBAL_SHORTOPTS "+:a:jk:t:hVTC:E:K:N:"

/* The global option word getopt could not take (o is '?' or ':'): says why.
 * Returns EX_USAGE. */
int cli_bad_global_option(const struct option *opts, const char *word, int o);

/* ---- a command's options (after the command) ---- */

enum { O_STOCK = 256, O_KIND, O_LIMIT, O_HOLD, O_START, O_END, O_WAITLIST, O_GSIZE, O_GTTL,
       O_NEWONLY, O_SIM, O_MARGIN, O_QTY, O_MODE, O_GROUP, O_OLD, O_COUNT, O_RID, O_ADMIN, O_STALE,
       O_USER, O_CURSOR };
#define BIT(o) (1u << ((o) - O_STOCK))

typedef struct cli_opt {
  struct option opt;   /* opt.val is one of O_* */
  const char *metavar; /* for --help; NULL: takes no value */
} cli_opt;

/* in the order --help lists them; ends with an entry of opt.name NULL */
extern const cli_opt cli_opts[];

#define CLI_MAX_POS 4 /* positional words a command can take */

/* A command's words after parsing: what each option gave (0 when not
 * given, but qty 1), which ones were given, and the positional words. */
typedef struct cli_args {
  unsigned seen; /* BIT(O_...) of each option given */
  int64_t stock, limit, hold_ms, start, end, qty;
  int64_t gsize, gttl, sim, margin, count;
  uint64_t group, cursor;
  int waitlist, mode, kind;
  const char *rid; /* --request-id, or a random one */
  const char *admin; /* --admin HOST:PORT (stat) */
  const char *user;  /* --user U: the hold's owner (confirm, cancel, reservation) */
  char *pos[CLI_MAX_POS];
  int npos;
} cli_args;

#define GROUP_MIN 2 /* the daemon's range for a group size */
#define GROUP_MAX 64
#define GSIZE_ARG "--group-size N (" XSTR(GROUP_MIN) ".." XSTR(GROUP_MAX) ")"
#define GTTL_ARG "--group-ttl DURATION (e.g. 24h)"

/* The words after a command word (argv[0] is that word; cmd, e.g.
 * "campaign get", names it in errors); only the options in `allowed` are
 * taken, as "--flag value" or "--flag=value". 0, or EX_USAGE after saying
 * why. */
int cli_parse_args(const char *cmd, int argc, char **argv, cli_args *a, unsigned allowed);

/* Exactly n positional words, else a usage error naming `what` is
 * expected. 0 or EX_USAGE. */
int cli_need_pos(const cli_args *a, int n, const char *what);

/* ---- values ---- */

int cli_parse_i64(const char *s, int64_t *out);
int cli_parse_u64(const char *s, uint64_t *out);

/* "pintuan-cli: MESSAGE" and "Try 'pintuan-cli --help'." on stderr;
 * returns EX_USAGE. */
__attribute__((format(printf, 1, 2))) int usage_error(const char *fmt, ...);

#endif
