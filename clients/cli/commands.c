/* commands.c: pintuan-cli's commands. Owns the command table (name,
 * subcommand, handler, synopsis, options allowed), the dispatch of a
 * command line through it, each command's handler (its checks of the
 * parsed words, then the request to the daemon through cli.h), and the
 * --help text, generated from the table and the option tables. */
#include "commands.h"
#include "stat.h"

#include <string.h>
#include <sysexits.h>

/* ---- handlers ---- */

static int cmd_ping(cli_ctx *c, const cli_args *a) {
  int rc;
  if ((rc = cli_need_pos(a, 0, "ping"))) return rc;
  pintuan_request q;
  Pintuan__V1__Ping m;
  pintuan_req_ping(&q, &m);
  return cli_call(c, &q);
}

static int cmd_campaign_create(cli_ctx *c, const cli_args *a) {
  int rc;
  if ((rc = cli_need_pos(a, 1, "campaign create ID --stock N"))) return rc;
  if (!(a->seen & BIT(O_STOCK))) return usage_error("campaign create needs --stock N");
  /* what the daemon requires of a group buy, asked for in CLI terms */
  if (a->kind == PINTUAN__V1__CAMPAIGN_KIND__GROUP_BUY) {
    int size = !!(a->seen & BIT(O_GSIZE)), ttl = !!(a->seen & BIT(O_GTTL));
    if (!size || !ttl)
      return usage_error("campaign create --kind group needs %s%s%s", size ? "" : GSIZE_ARG,
                         size || ttl ? "" : " and ", ttl ? "" : GTTL_ARG);
  }
  /* an option not given is 0: what the protocol reads as absent */
  pintuan_campaign_spec spec = {
      .campaign_id = a->pos[0], .kind = a->kind, .stock = a->stock,
      .hold_ms = (a->seen & BIT(O_HOLD)) ? a->hold_ms : 300000,
      .per_user_limit = (uint32_t)a->limit, .start_ms = a->start, .end_ms = a->end,
      .waitlist = a->waitlist == 1, .group_size = (uint32_t)a->gsize, .group_ttl_ms = a->gttl,
      .new_users_only = !!(a->seen & BIT(O_NEWONLY)), .simulate_min_paid = (uint32_t)a->sim,
      .match_margin_ms = a->margin};
  pintuan_request q;
  Pintuan__V1__CreateCampaign m;
  Pintuan__V1__CampaignSpec sp;
  pintuan_req_create_campaign(&q, &m, &sp, &spec, a->rid);
  return cli_call(c, &q);
}

static int cmd_campaign_update(cli_ctx *c, const cli_args *a) {
  int rc;
  if ((rc = cli_need_pos(a, 1, "campaign update ID [options]"))) return rc;
  pintuan_campaign_update u = {
      .stock = a->stock, .per_user_limit = (uint32_t)a->limit, .hold_ms = a->hold_ms,
      .end_ms = a->end, .waitlist = a->waitlist == 1};
  if (a->seen & BIT(O_STOCK)) u.fields |= PINTUAN_UPDATE_STOCK;
  if (a->seen & BIT(O_LIMIT)) u.fields |= PINTUAN_UPDATE_LIMIT;
  if (a->seen & BIT(O_HOLD)) u.fields |= PINTUAN_UPDATE_HOLD;
  if (a->seen & BIT(O_END)) u.fields |= PINTUAN_UPDATE_END;
  if (a->seen & BIT(O_WAITLIST)) u.fields |= PINTUAN_UPDATE_WAITLIST;
  pintuan_request q;
  Pintuan__V1__UpdateCampaign m;
  pintuan_req_update_campaign(&q, &m, a->pos[0], &u, a->rid);
  return cli_call(c, &q);
}

static int cmd_campaign_end(cli_ctx *c, const cli_args *a) {
  int rc;
  if ((rc = cli_need_pos(a, 1, "campaign end ID"))) return rc;
  pintuan_request q;
  Pintuan__V1__EndCampaign m;
  pintuan_req_end_campaign(&q, &m, a->pos[0], a->rid);
  return cli_call(c, &q);
}

static int cmd_campaign_get(cli_ctx *c, const cli_args *a) {
  int rc;
  if ((rc = cli_need_pos(a, 1, "campaign get ID"))) return rc;
  pintuan_request q;
  Pintuan__V1__GetCampaign m;
  pintuan_req_get_campaign(&q, &m, a->pos[0]);
  m.has_stale_ok = m.stale_ok = !!(a->seen & BIT(O_STALE)); /* a standby may answer */
  return cli_call(c, &q);
}

static int cmd_campaign_list(cli_ctx *c, const cli_args *a) {
  int rc;
  if ((rc = cli_need_pos(a, 0, "campaign list"))) return rc;
  if (a->limit > 1000) return usage_error("campaign list --limit: at most 1000 campaigns a page");
  pintuan_request q;
  Pintuan__V1__ListCampaigns m;
  pintuan_req_list_campaigns(&q, &m, a->cursor, (uint32_t)a->limit);
  return cli_call(c, &q);
}

static int cmd_reserve(cli_ctx *c, const cli_args *a) {
  int rc;
  if ((rc = cli_need_pos(a, 2, "reserve CAMPAIGN USER [--qty N] [--request-id R]"))) return rc;
  pintuan_request q;
  Pintuan__V1__Reserve m;
  pintuan_req_reserve(&q, &m, a->pos[0], a->pos[1], (int32_t)a->qty, a->rid);
  return cli_call(c, &q);
}

/* A reservation id, the second positional word: 0, or EX_USAGE. */
static int reservation_id(const cli_args *a, uint64_t *res) {
  if (cli_parse_u64(a->pos[1], res))
    return usage_error("bad reservation id '%s' (give the reservation_id reserve printed)", a->pos[1]);
  return 0;
}

/* --user: the hold is its user's, and the daemon asks who that is */
static int need_user(const cli_args *a, const char *cmd) {
  if (!a->user) return usage_error("%s needs --user USER (the user that reserved)", cmd);
  return 0;
}

static int confirm_cancel(cli_ctx *c, const cli_args *a, int confirm) {
  int rc;
  if ((rc = cli_need_pos(a, 2, "confirm|cancel CAMPAIGN RESERVATION_ID --user USER [--request-id R]")))
    return rc;
  uint64_t res;
  if ((rc = reservation_id(a, &res)) || (rc = need_user(a, confirm ? "confirm" : "cancel")) ||
      (rc = cli_connect(c)))
    return rc;
  pintuan_response *r;
  return cli_answer(c, confirm ? pintuan_confirm(c->client, a->pos[0], res, a->user, a->rid, &r)
                               : pintuan_cancel(c->client, a->pos[0], res, a->user, a->rid, &r), &r);
}
static int cmd_confirm(cli_ctx *c, const cli_args *a) { return confirm_cancel(c, a, 1); }
static int cmd_cancel(cli_ctx *c, const cli_args *a) { return confirm_cancel(c, a, 0); }

static int cmd_reservation(cli_ctx *c, const cli_args *a) {
  int rc;
  if ((rc = cli_need_pos(a, 2, "reservation CAMPAIGN RESERVATION_ID --user USER"))) return rc;
  uint64_t res;
  if ((rc = reservation_id(a, &res)) || (rc = need_user(a, "reservation"))) return rc;
  pintuan_request q;
  Pintuan__V1__GetReservation m;
  pintuan_req_get_reservation(&q, &m, a->pos[0], res, a->user);
  m.has_stale_ok = m.stale_ok = !!(a->seen & BIT(O_STALE));
  return cli_call(c, &q);
}

static int cmd_holdings(cli_ctx *c, const cli_args *a) {
  int rc;
  if ((rc = cli_need_pos(a, 2, "holdings CAMPAIGN USER"))) return rc;
  pintuan_request q;
  Pintuan__V1__GetHoldings m;
  pintuan_req_get_holdings(&q, &m, a->pos[0], a->pos[1]);
  return cli_call(c, &q);
}

static int cmd_join(cli_ctx *c, const cli_args *a) {
  int rc;
  if ((rc = cli_need_pos(a, 2, "join CAMPAIGN USER [--mode open|join|auto] [--group ID]"))) return rc;
  int mode = a->mode ? a->mode : PINTUAN__V1__JOIN_MODE__JOIN_AUTO;
  if ((a->seen & BIT(O_GROUP)) && !(a->seen & BIT(O_MODE))) mode = PINTUAN__V1__JOIN_MODE__JOIN_GROUP;
  if (mode == PINTUAN__V1__JOIN_MODE__JOIN_GROUP && !(a->seen & BIT(O_GROUP)))
    return usage_error("--mode join needs --group GROUP_ID");
  if ((rc = cli_connect(c))) return rc;
  pintuan_response *r;
  return cli_answer(c, pintuan_join(c->client, a->pos[0], a->pos[1], mode, a->group,
                                    !(a->seen & BIT(O_OLD)), a->rid, &r), &r);
}

static int cmd_group_get(cli_ctx *c, const cli_args *a) {
  int rc;
  if ((rc = cli_need_pos(a, 2, "group get CAMPAIGN GROUP_ID"))) return rc;
  uint64_t gid;
  if (cli_parse_u64(a->pos[1], &gid))
    return usage_error("bad group id '%s' (give the group_id join printed)", a->pos[1]);
  if ((rc = cli_connect(c))) return rc;
  pintuan_response *r;
  return cli_answer(c, pintuan_get_group(c->client, a->pos[0], gid, &r), &r);
}

/* Prints events until --count of them arrived (or forever). */
static int cmd_subscribe(cli_ctx *c, const cli_args *a) {
  int rc;
  const char *ids[CLI_MAX_POS + 1] = {0};
  for (int i = 0; i < a->npos; i++) ids[i] = a->pos[i];
  if ((rc = cli_connect(c))) return rc;
  pintuan_response *r;
  /* the acknowledgement is printed first: then events follow */
  if ((rc = cli_answer(c, pintuan_subscribe(c->client, ids, &r), &r))) return rc;
  pintuan_set_timeout(c->client, -1);
  for (int64_t n = 0; !a->count || n < a->count;) {
    if (pintuan_recv(c->client, &r)) {
      fprintf(stderr, "pintuan-cli: %s: %s\n", c->addr, pintuan_error(c->client));
      return EX_UNAVAILABLE;
    }
    if (r->result_case == PINTUAN__V1__RESPONSE__RESULT_EVENT) {
      cli_show(c, r);
      n++;
    }
    pintuan_response_free(r);
  }
  return 0;
}

static int cmd_stat(cli_ctx *c, const cli_args *a) {
  int rc;
  if ((rc = cli_need_pos(a, 0, "stat"))) return rc;
  return cli_stat(c, a->admin, a->count);
}

/* ---- the table ---- */

#define CAMPAIGN_OPTS (BIT(O_STOCK) | BIT(O_LIMIT) | BIT(O_HOLD) | BIT(O_END) | BIT(O_WAITLIST))
#define GROUP_BUY_OPTS (BIT(O_GSIZE) | BIT(O_GTTL) | BIT(O_NEWONLY) | BIT(O_SIM) | BIT(O_MARGIN))

const cli_command cli_commands[] = {
    {"ping", NULL, cmd_ping, "", NULL, 0},
    {"campaign", "create", cmd_campaign_create, "ID --stock N", NULL,
     CAMPAIGN_OPTS | BIT(O_KIND) | BIT(O_START) | GROUP_BUY_OPTS | BIT(O_RID)},
    {"campaign", "update", cmd_campaign_update, "ID", NULL, CAMPAIGN_OPTS | BIT(O_RID)},
    {"campaign", "end", cmd_campaign_end, "ID", NULL, BIT(O_RID)},
    {"campaign", "get", cmd_campaign_get, "ID", "(--stale: a standby may answer, saying how old)",
     BIT(O_STALE)},
    {"campaign", "list", cmd_campaign_list, "", "(a page: next_cursor goes to --cursor for the next)",
     BIT(O_CURSOR) | BIT(O_LIMIT)},
    {"reserve", NULL, cmd_reserve, "CAMPAIGN USER", NULL, BIT(O_QTY) | BIT(O_RID)},
    {"confirm", NULL, cmd_confirm, "CAMPAIGN RESERVATION_ID --user USER", NULL, BIT(O_USER) | BIT(O_RID)},
    {"cancel", NULL, cmd_cancel, "CAMPAIGN RESERVATION_ID --user USER", NULL, BIT(O_USER) | BIT(O_RID)},
    {"reservation", NULL, cmd_reservation, "CAMPAIGN RESERVATION_ID --user USER", NULL,
     BIT(O_USER) | BIT(O_STALE)},
    {"holdings", NULL, cmd_holdings, "CAMPAIGN USER", NULL, 0},
    {"join", NULL, cmd_join, "CAMPAIGN USER", "(default --mode auto)",
     BIT(O_MODE) | BIT(O_GROUP) | BIT(O_OLD) | BIT(O_RID)},
    {"group", "get", cmd_group_get, "CAMPAIGN GROUP_ID", NULL, 0},
    {"subscribe", NULL, cmd_subscribe, "[CAMPAIGN...]", "(prints events as they arrive)",
     BIT(O_COUNT)},
    {"stat", NULL, cmd_stat, "",
     "(the daemon's admin port, default -a's host port 7734: a line a second)",
     BIT(O_ADMIN) | BIT(O_COUNT)},
    {NULL, NULL, NULL, NULL, NULL, 0}};

/* ---- dispatch ---- */

/* "create, update, end, get or list": the subcommands of command `name` */
static void sub_list(const char *name, char *buf, size_t size) {
  int n = 0, k = 0;
  for (const cli_command *p = cli_commands; p->name; p++) n += !strcmp(p->name, name);
  buf[0] = 0;
  for (const cli_command *p = cli_commands; p->name; p++) {
    if (strcmp(p->name, name)) continue;
    size_t len = strlen(buf);
    snprintf(buf + len, size - len, "%s%s", k == 0 ? "" : k == n - 1 ? " or " : ", ", p->sub);
    k++;
  }
}

int cli_run_command(cli_ctx *c, int argc, char **argv) {
  const char *word = argv[0];
  const cli_command *cmd = NULL, *first = NULL;
  int subs = 0;
  for (const cli_command *p = cli_commands; p->name; p++) {
    if (strcmp(p->name, word)) continue;
    if (!first) first = p;
    if (p->sub) subs++;
    else cmd = p;
  }
  if (!first) return usage_error("unknown command '%s'", word);
  char label[128];
  snprintf(label, sizeof label, "%s", word);
  if (subs) {
    const char *sub = argc >= 2 ? argv[1] : NULL;
    for (const cli_command *p = first; sub && p->name; p++)
      if (!strcmp(p->name, word) && p->sub && !strcmp(p->sub, sub)) cmd = p;
    if (!cmd && subs == 1)
      return usage_error("expected: %s %s %s", first->name, first->sub, first->synopsis);
    if (!cmd) {
      char list[256];
      sub_list(word, list, sizeof list);
      if (!sub) return usage_error("%s needs a subcommand: %s", word, list);
      return usage_error("unknown %s subcommand '%s' (give %s)", word, sub, list);
    }
    snprintf(label, sizeof label, "%s %s", word, sub);
    argc--, argv++;
  }
  cli_args a;
  int rc = cli_parse_args(label, argc, argv, &a, cmd->allowed);
  return rc ? rc : cmd->run(c, &a);
}

/* ---- --help ---- */

#define WIDTH 79       /* a synopsis wraps before this column */
#define CONT_INDENT 18 /* and goes on here */
#define OPT_COLUMN 28  /* a global option's help starts here */

/* Prints word (after a space, unless at the start) at column *col,
 * wrapping first when it would pass WIDTH. */
static void put_word(FILE *f, int *col, const char *word) {
  int len = (int)strlen(word);
  if (*col > CONT_INDENT && *col + 1 + len > WIDTH) {
    fprintf(f, "\n%*s", CONT_INDENT, "");
    *col = CONT_INDENT;
  } else if (*col > 2) {
    fputc(' ', f);
    (*col)++;
  }
  fputs(word, f);
  *col += len;
}

/* whether the synopsis already names option `name` ("--stock N") */
static int names_option(const char *synopsis, const char *name) {
  size_t len = strlen(name);
  for (const char *s = synopsis; (s = strstr(s, "--")); s += 2)
    if (!strncmp(s + 2, name, len) && (!s[2 + len] || s[2 + len] == ' ')) return 1;
  return 0;
}

static void command_usage(FILE *f, const cli_command *p) {
  char word[128];
  int col = 2;
  fputs("  ", f);
  snprintf(word, sizeof word, "%s%s%s", p->name, p->sub ? " " : "", p->sub ? p->sub : "");
  put_word(f, &col, word);
  if (*p->synopsis) put_word(f, &col, p->synopsis);
  for (const cli_opt *o = cli_opts; o->opt.name; o++) {
    if (!(p->allowed & BIT(o->opt.val)) || names_option(p->synopsis, o->opt.name)) continue;
    snprintf(word, sizeof word, "[--%s%s%s]", o->opt.name, o->metavar ? " " : "",
             o->metavar ? o->metavar : "");
    put_word(f, &col, word);
  }
  if (p->note) put_word(f, &col, p->note);
  fputc('\n', f);
}

static void global_usage(FILE *f) {
  for (const cli_global_opt *o = cli_global_opts; o->opt.name; o++) {
    char left[64];
    snprintf(left, sizeof left, "-%c, --%s%s%s", o->opt.val, o->opt.name, o->metavar ? " " : "",
             o->metavar ? o->metavar : "");
    fprintf(f, "  %-*s ", OPT_COLUMN - 3, left);
    for (const char *h = o->help; *h;) {
      size_t n = strcspn(h, "\n");
      if (h != o->help) fprintf(f, "%*s", OPT_COLUMN, "");
      fprintf(f, "%.*s\n", (int)n, h);
      h += n + (h[n] == '\n');
    }
  }
}

void cli_usage(FILE *f) {
  fprintf(f, "usage: pintuan-cli [global options] COMMAND [args] [options]\n"
             "\n"
             "global options (before the command):\n");
  global_usage(f);
  fprintf(f, "\ncommands (their options after them):\n");
  for (const cli_command *p = cli_commands; p->name; p++) command_usage(f, p);
  fprintf(f,
    "\n"
    "group buys (campaign create --kind group) need " GSIZE_ARG "\n"
    "and --group-ttl DURATION; --limit then counts groups.\n"
    "\n"
    "DURATION is seconds, or with a unit: 500ms, 30s, 5m, 2h (--hold: default 300).\n"
    "TIME is Unix epoch milliseconds, 'now', or relative: +30s, +5m, +2h, +500ms.\n"
    "--waitlist takes on/off (true/false, yes/no, 1/0) as --waitlist on or\n"
    "--waitlist=on; a bare --waitlist means on. --limit 0: no per-user limit.\n"
    "With keys on the daemon, give yours with -k KEY_FILE: campaign create/update/end\n"
    "need an admin key; reserve, confirm, cancel and join a storefront's (or admin's).\n"
    "Without --request-id a random one is made; give your own to retry safely.\n"
    "Exit status: 0 OK, 1 rejected (any other status), 64 usage, 69 unreachable.\n");
}
