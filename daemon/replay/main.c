/* pintuan-replay: re-decides a capture exactly (exact.h) and reports the
 * first divergence with both answers, then the counts by operation and by
 * (recorded status -> new status); with --set, what a rule change would
 * have decided; --list shows the capture's campaigns. Exit: 0 the same (or
 * a what-if replayed), 1 divergences, 2 the file could not be read to its
 * end, 3 a --set names a campaign the capture does not have, 64 usage. */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "exact.h"
#include "xalloc.h"

static void usage(FILE *f) {
  fprintf(f,
          "usage: pintuan-replay [options] CAPTURE\n"
          "Feeds a capture's decisions (pintuand --capture) through this build's engine in the\n"
          "recorded order at the recorded engine times, and compares every answer field by field.\n"
          "  --set C.FIELD=V          what-if: change campaign C before replaying (repeatable);\n"
          "                           FIELD: stock, per_user_limit, hold_ms, waitlist, group_size,\n"
          "                           group_ttl_ms, simulate_min_paid, new_users_only\n"
          "  --list                   list the capture's campaigns (id, kind, stock) and exit\n"
          "  --max-divergences N      stop after N divergences\n"
          "  --json                   one JSON object on stdout\n"
          "  --progress, --no-progress  a progress line a second on stderr (default: when a tty)\n"
          "  -h, --help, -V, --version\n"
          "exit: 0 every answer the same (or a what-if replayed), 1 divergences, 2 unreadable capture,\n"
          "      3 a --set names a campaign the capture does not have, 64 usage\n");
}

static void put_json_str(const char *s) {
  putchar('"');
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (*p == '"' || *p == '\\') printf("\\%c", *p);
    else if (*p < 0x20 || *p >= 0x7f) printf("\\u%04x", *p);
    else putchar(*p);
  }
  putchar('"');
}

static void answer_text(const pt_input_answer *a, char *out, size_t n) {
  snprintf(out, n, "%s%s reservation %" PRIu64 " quantity %u expires %" PRId64 " state %d group %" PRIu64
           " group_state %d position %u opened %d events %" PRIu64,
           pt_status_name(a->status), a->replay ? " (replay)" : "", a->reservation_id, a->quantity,
           a->expires_ms, (int)a->state, a->group_id, (int)a->group_state, a->position, (int)a->opened,
           a->events);
}

static void answer_json(const pt_input_answer *a) {
  printf("{\"status\":\"%s\",\"replay\":%s,\"reservation_id\":%" PRIu64 ",\"quantity\":%u,\"expires_ms\":%" PRId64
         ",\"state\":%d,\"group_id\":%" PRIu64 ",\"group_state\":%d,\"position\":%u,\"opened\":%s,\"events\":%" PRIu64 "}",
         pt_status_name(a->status), a->replay ? "true" : "false", a->reservation_id, a->quantity,
         a->expires_ms, (int)a->state, a->group_id, (int)a->group_state, a->position,
         a->opened ? "true" : "false", a->events);
}

static void report_text(const char *path, const pt_exact_opts *o, const pt_exact_report *r) {
  double rate = r->seconds > 0 ? (double)r->decisions / r->seconds : 0;
  printf("%s (capture version %u): %" PRIu64 " decisions (%" PRIu64 " requests, %" PRIu64
         " advances; %" PRIu64 " events), %" PRIu64 " states, in %.2f s (%.0f decisions/s)\n",
         path, r->version, r->decisions, r->requests, r->advances, r->events, r->states, r->seconds, rate);
  printf("divergences: %" PRIu64 "%s\n", r->divergences, r->stopped ? " (stopped at --max-divergences)" : "");
  if (r->divergences) {
    const pt_exact_decision *d = &r->first;
    char rec[256], got[256];
    answer_text(&d->recorded, rec, sizeof rec);
    answer_text(&d->got, got, sizeof got);
    if (d->request)
      printf("first: request %" PRIu64 " (connection %" PRIu64 ", %s, campaign %s, user %s, request id %s",
             d->request, d->conn, pt_input_kind_name(d->kind), d->campaign_id, d->user_id, d->request_id);
    else
      printf("first: %s (the timer", pt_input_kind_name(d->kind));
    if (d->reservation_id) printf(", reservation %" PRIu64, d->reservation_id);
    printf(", engine time %" PRId64 " ms, byte %" PRIu64 "): %s differs\n", d->now, d->offset, d->field);
    printf("  recorded: %s\n  got:      %s\n", rec, got);
    printf("by operation:");
    for (int k = 0; k < PT_EXACT_KINDS; k++)
      if (r->by_kind[k]) printf(" %s %" PRIu64, pt_input_kind_name((pt_input_kind)k), r->by_kind[k]);
    printf("\nby status (recorded -> got):");
    for (int a = 0; a < PT_EXACT_STATUSES; a++)
      for (int b = 0; b < PT_EXACT_STATUSES; b++)
        if (r->by_status[a][b])
          printf(" %s->%s %" PRIu64, pt_status_name((pt_status)a), pt_status_name((pt_status)b), r->by_status[a][b]);
    printf("\n");
  }
  if (o->nsets)
    printf("what-if: %" PRIu64 " of %zu settings applied; %" PRIu64 " users would have got a unit "
           "they did not get, %" PRIu64 " would not have got one they got\n",
           r->sets_applied, o->nsets, r->users_gained, r->users_lost);
  if (r->error[0]) printf("error: %s\n", r->error);
}

static void report_json(const char *path, const pt_exact_opts *o, const pt_exact_report *r) {
  printf("{\"file\":");
  put_json_str(path);
  printf(",\"version\":%u,\"decisions\":%" PRIu64 ",\"requests\":%" PRIu64 ",\"advances\":%" PRIu64
         ",\"events\":%" PRIu64 ",\"states\":%" PRIu64
         ",\"seconds\":%.3f,\"decisions_per_s\":%.0f,\"divergences\":%" PRIu64 ",\"stopped\":%s,\"first\":",
         r->version, r->decisions, r->requests, r->advances, r->events, r->states, r->seconds,
         r->seconds > 0 ? (double)r->decisions / r->seconds : 0, r->divergences, r->stopped ? "true" : "false");
  if (r->divergences) {
    const pt_exact_decision *d = &r->first;
    printf("{\"request\":%" PRIu64 ",\"offset\":%" PRIu64 ",\"connection\":%" PRIu64 ",\"now\":%" PRId64
           ",\"operation\":\"%s\",\"campaign_id\":",
           d->request, d->offset, d->conn, d->now, pt_input_kind_name(d->kind));
    put_json_str(d->campaign_id);
    printf(",\"user_id\":");
    put_json_str(d->user_id);
    printf(",\"request_id\":");
    put_json_str(d->request_id);
    printf(",\"field\":\"%s\",\"recorded\":", d->field);
    answer_json(&d->recorded);
    printf(",\"got\":");
    answer_json(&d->got);
    printf("}");
  } else {
    printf("null");
  }
  printf(",\"by_operation\":{");
  const char *sep = "";
  for (int k = 0; k < PT_EXACT_KINDS; k++)
    if (r->by_kind[k]) printf("%s\"%s\":%" PRIu64, sep, pt_input_kind_name((pt_input_kind)k), r->by_kind[k]), sep = ",";
  printf("},\"by_status\":{");
  sep = "";
  for (int a = 0; a < PT_EXACT_STATUSES; a++)
    for (int b = 0; b < PT_EXACT_STATUSES; b++)
      if (r->by_status[a][b])
        printf("%s\"%s->%s\":%" PRIu64, sep, pt_status_name((pt_status)a), pt_status_name((pt_status)b),
               r->by_status[a][b]), sep = ",";
  printf("},\"what_if\":");
  if (o->nsets)
    printf("{\"sets\":%zu,\"applied\":%" PRIu64 ",\"users_gained\":%" PRIu64 ",\"users_lost\":%" PRIu64 "}",
           o->nsets, r->sets_applied, r->users_gained, r->users_lost);
  else
    printf("null");
  printf(",\"error\":");
  if (r->error[0]) put_json_str(r->error);
  else printf("null");
  printf("}\n");
}

/* --list: one line per campaign (or a JSON object). */
typedef struct listing {
  bool json;
  size_t n;
} listing;

static bool list_one(void *ctx, pt_bytes id, pt_kind kind, int64_t stock, bool created) {
  listing *l = ctx;
  char name[PT_ID_MAX * 4 + 1];
  size_t k = 0;
  for (size_t i = 0; i < id.len; i++) /* ids are bytes: shown printable */
    k += (size_t)snprintf(name + k, sizeof name - k, id.p[i] >= 0x20 && id.p[i] < 0x7f && id.p[i] != '\\' &&
                          id.p[i] != '"' ? "%c" : "\\x%02x", id.p[i]);
  const char *kn = kind == PT_GROUP_BUY ? "GROUP_BUY" : "FLASH_SALE";
  if (l->json)
    printf("%s{\"campaign_id\":\"%s\",\"kind\":\"%s\",\"stock\":%" PRId64 ",\"created_in_capture\":%s}",
           l->n ? "," : "", name, kn, stock, created ? "true" : "false");
  else
    printf("%s\t%s\tstock %" PRId64 "%s\n", name, kn, stock, created ? "\t(created in the capture)" : "");
  l->n++;
  return true;
}

/* A --set's campaign, looked for before the replay (which would only say
 * at its end that it was never applied). */
typedef struct wanted {
  const pt_whatif *sets;
  size_t n, found;
  bool *hit;
} wanted;

static bool find_one(void *ctx, pt_bytes id, pt_kind kind, int64_t stock, bool created) {
  (void)kind, (void)stock, (void)created;
  wanted *w = ctx;
  for (size_t i = 0; i < w->n; i++)
    if (!w->hit[i] && w->sets[i].campaign_len == id.len && !memcmp(w->sets[i].campaign, id.p, id.len))
      w->hit[i] = true, w->found++;
  return w->found < w->n;
}

int main(int argc, char **argv) {
  static const struct option opts[] = {{"set", required_argument, 0, 's'},
                                       {"max-divergences", required_argument, 0, 'm'},
                                       {"json", no_argument, 0, 'j'},
                                       {"list", no_argument, 0, 'l'},
                                       {"no-progress", no_argument, 0, 'q'},
                                       {"progress", no_argument, 0, 'P'},
                                       {"help", no_argument, 0, 'h'},
                                       {"version", no_argument, 0, 'V'},
                                       {0, 0, 0, 0}};
  pt_whatif *sets = NULL;
  pt_exact_opts o = {.progress = isatty(2)};
  bool json = false, list = false;
  int ch;
  char err[256];
  while ((ch = getopt_long(argc, argv, "hV", opts, NULL)) != -1) {
    switch (ch) {
    case 's':
      sets = pt_xrealloc(sets, (o.nsets + 1) * sizeof *sets);
      if (pt_whatif_parse(optarg, &sets[o.nsets], err, sizeof err)) {
        fprintf(stderr, "pintuan-replay: %s\n", err);
        free(sets);
        return 64;
      }
      o.nsets++;
      break;
    case 'm': {
      char *end;
      unsigned long long v = strtoull(optarg, &end, 10);
      if (!*optarg || *end || optarg[0] == '-') {
        fprintf(stderr, "pintuan-replay: --max-divergences wants a number, got %s\n", optarg);
        free(sets);
        return 64;
      }
      o.max_divergences = v;
      break;
    }
    case 'j': json = true; break;
    case 'l': list = true; break;
    case 'q': o.progress = false; break;
    case 'P': o.progress = true; break;
    case 'h': usage(stdout); free(sets); return 0;
    case 'V': printf("pintuan-replay %s\n", PT_VERSION); free(sets); return 0;
    default: usage(stderr); free(sets); return 64;
    }
  }
  if (optind != argc - 1) {
    usage(stderr);
    free(sets);
    return 64;
  }
  o.sets = sets;
  const char *path = argv[optind];
  if (list) {
    listing l = {.json = json};
    if (json) printf("{\"campaigns\":[");
    int rc = pt_exact_campaigns(path, list_one, &l, err, sizeof err);
    if (json) printf("]}\n");
    if (rc) fprintf(stderr, "pintuan-replay: %s\n", err);
    free(sets);
    return rc ? 2 : 0;
  }
  if (o.nsets) {
    wanted w = {.sets = sets, .n = o.nsets, .hit = pt_xcalloc(o.nsets, 1)};
    int rc = pt_exact_campaigns(path, find_one, &w, err, sizeof err);
    size_t missing = o.nsets;
    for (size_t i = 0; i < o.nsets && !rc; i++)
      if (!w.hit[i]) missing = i;
    free(w.hit);
    if (rc) {
      fprintf(stderr, "pintuan-replay: %s\n", err);
      free(sets);
      return 2;
    }
    if (missing < o.nsets) {
      fprintf(stderr, "pintuan-replay: --set %.*s.%s: no campaign %.*s in this capture (pintuan-replay "
              "--list %s shows its campaigns)\n", (int)sets[missing].campaign_len, sets[missing].campaign,
              sets[missing].field, (int)sets[missing].campaign_len, sets[missing].campaign, path);
      free(sets);
      return 3;
    }
  }
  pt_exact_report *r = pt_xmalloc(sizeof *r);
  int rc = pt_exact_run(path, &o, r);
  if (json) report_json(path, &o, r);
  else report_text(path, &o, r);
  if (rc) fprintf(stderr, "pintuan-replay: %s\n", r->error);
  int code = rc ? 2 : (r->divergences && !o.nsets) ? 1 : 0;
  free(r);
  free(sets);
  return code;
}
