/* Exact replay (exact.h). Input records are decoded into a ring of
 * PT_REPLAY_AHEAD + 1 slots (the replayer applies an input that many
 * pushes after it), each slot holding what the check needs to compare and
 * report; their byte strings point into the mapped file, or into a copy in
 * the slot when the file could not be mapped. */
#include "exact.h"

#include <errno.h>
#include <inttypes.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "capture.h"
#include "replay.h"
#include "xalloc.h"

#define SLOTS (PT_REPLAY_AHEAD + 1)

const char *const pt_whatif_fields[] = {"stock",         "per_user_limit", "hold_ms",
                                        "waitlist",      "group_size",     "group_ttl_ms",
                                        "simulate_min_paid", "new_users_only", NULL};

int pt_whatif_parse(const char *s, pt_whatif *w, char *err, size_t errlen) {
  memset(w, 0, sizeof(*w));
  const char *eq = strchr(s, '=');
  const char *dot = NULL;
  for (const char *p = s; eq && p < eq; p++)
    if (*p == '.') dot = p; /* the last dot: campaign ids may hold dots */
  if (!eq || !dot || dot == s) {
    snprintf(err, errlen, "--set %s: want CAMPAIGN.FIELD=VALUE", s);
    return -1;
  }
  w->campaign_len = (size_t)(dot - s);
  if (w->campaign_len > PT_ID_MAX) {
    snprintf(err, errlen, "--set %s: a campaign id is 1..%d bytes", s, PT_ID_MAX);
    return -1;
  }
  memcpy(w->campaign, s, w->campaign_len);
  size_t flen = (size_t)(eq - dot - 1);
  for (int i = 0; pt_whatif_fields[i]; i++)
    if (strlen(pt_whatif_fields[i]) == flen && !memcmp(pt_whatif_fields[i], dot + 1, flen))
      w->field = pt_whatif_fields[i];
  if (!w->field) {
    snprintf(err, errlen, "--set %s: unknown field %.*s (stock, per_user_limit, hold_ms, waitlist, "
             "group_size, group_ttl_ms, simulate_min_paid, new_users_only)", s, (int)flen, dot + 1);
    return -1;
  }
  char *end;
  errno = 0;
  long long v = strtoll(eq + 1, &end, 10);
  if (errno || end == eq + 1 || *end || v < 0) {
    snprintf(err, errlen, "--set %s: the value must be a non-negative integer", s);
    return -1;
  }
  w->value = v;
  return 0;
}

/* ---- what-if: who got a unit in which run ---- */

typedef struct pair_set {
  uint64_t *hash; /* 0: empty */
  uint8_t *got;   /* bit 0 recorded, bit 1 replayed */
  size_t cap, n;
} pair_set;

static uint64_t pair_hash(pt_bytes c, pt_bytes u) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < c.len; i++) h = (h ^ c.p[i]) * 1099511628211ull;
  h = (h ^ 0xff) * 1099511628211ull;
  for (size_t i = 0; i < u.len; i++) h = (h ^ u.p[i]) * 1099511628211ull;
  return h ? h : 1;
}

/* Pairs are told apart by a 64-bit hash: a collision among a day's users
 * is far below one in a million and would only blur a what-if count. */
static void pair_mark(pair_set *s, pt_bytes c, pt_bytes u, uint8_t bit) {
  if ((s->n + 1) * 2 > s->cap) {
    size_t cap = s->cap ? s->cap * 2 : 1024;
    uint64_t *h = pt_xcalloc(cap, sizeof *h);
    uint8_t *g = pt_xcalloc(cap, 1);
    for (size_t i = 0; i < s->cap; i++) {
      if (!s->hash[i]) continue;
      size_t j = s->hash[i] & (cap - 1);
      while (h[j]) j = (j + 1) & (cap - 1);
      h[j] = s->hash[i], g[j] = s->got[i];
    }
    free(s->hash), free(s->got);
    s->hash = h, s->got = g, s->cap = cap;
  }
  uint64_t k = pair_hash(c, u);
  size_t j = k & (s->cap - 1);
  while (s->hash[j] && s->hash[j] != k) j = (j + 1) & (s->cap - 1);
  if (!s->hash[j]) s->hash[j] = k, s->n++;
  s->got[j] |= bit;
}

/* ---- the run ---- */

typedef struct slot {
  uint8_t *buf;
  size_t cap;
  pt_input_answer recorded;
  uint64_t offset, conn, request;
  bool synthetic; /* a what-if update: not compared */
} slot;

typedef struct run {
  const pt_exact_opts *o;
  pt_exact_report *rep;
  pt_engine *engine;
  pt_replayer rp;
  bool mapped; /* the reader's records stay valid to the end */
  slot slots[SLOTS];
  uint64_t pushed, events;
  bool *set_done;    /* per what-if: applied */
  bool update_due;   /* a state was loaded: apply the what-ifs it holds */
  pair_set pairs;
  uint64_t next_progress_ns, t0_ns;
} run;

static uint64_t mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}


static void id_copy(char *dst, pt_bytes b) {
  size_t n = b.len <= PT_ID_MAX ? b.len : PT_ID_MAX;
  if (n) memcpy(dst, b.p, n);
  dst[n] = 0;
}

static bool got_unit(pt_input_kind k, const pt_input_answer *a) {
  return (k == PT_IN_RESERVE || k == PT_IN_JOIN) && a->status == PT_OK && !a->replay;
}

static int check(void *ctx, const pt_input *in, const pt_result *r, uintptr_t tag) {
  run *x = ctx;
  pt_exact_report *rep = x->rep;
  const slot *s = &x->slots[tag];
  pt_engine_stats st;
  pt_engine_stats_get(x->engine, &st);
  pt_input_answer got;
  pt_input_answer_of(r, st.events - x->events, &got);
  x->events = st.events;
  if (s->synthetic) return 0;
  rep->events += s->recorded.events;
  if (x->o->nsets && pt_input_is_request(in->kind)) {
    uint8_t bits = (uint8_t)((got_unit(in->kind, &s->recorded) ? 1 : 0) | (got_unit(in->kind, &got) ? 2 : 0));
    if (bits) pair_mark(&x->pairs, in->campaign_id, in->user_id, bits);
  }
  const char *field = pt_input_answer_diff(&s->recorded, &got);
  if (!field) return 0;
  if (rep->divergences++ == 0) {
    pt_exact_decision *d = &rep->first;
    d->request = s->request, d->offset = s->offset, d->conn = s->conn, d->now = in->now;
    d->kind = in->kind;
    id_copy(d->campaign_id, in->campaign_id);
    id_copy(d->user_id, in->user_id);
    id_copy(d->request_id, in->request_id);
    d->reservation_id = in->reservation_id;
    d->recorded = s->recorded, d->got = got, d->field = field;
  }
  rep->by_kind[in->kind < PT_EXACT_KINDS ? in->kind : 0]++;
  if (r) rep->by_status[s->recorded.status % PT_EXACT_STATUSES][got.status % PT_EXACT_STATUSES]++;
  if (x->o->max_divergences && rep->divergences >= x->o->max_divergences) {
    rep->stopped = true;
    return 1;
  }
  return 0;
}

static bool names(const pt_whatif *w, pt_bytes id) {
  return id.len == w->campaign_len && !memcmp(id.p, w->campaign, id.len);
}

static void set_spec(pt_campaign_spec *sp, const pt_whatif *w) {
  const char *f = w->field;
  if (!strcmp(f, "stock")) sp->stock = w->value;
  else if (!strcmp(f, "per_user_limit")) sp->per_user_limit = (uint32_t)w->value;
  else if (!strcmp(f, "hold_ms")) sp->hold_ms = w->value;
  else if (!strcmp(f, "waitlist")) sp->waitlist = w->value != 0;
  else if (!strcmp(f, "group_size")) sp->group_size = (uint32_t)w->value;
  else if (!strcmp(f, "group_ttl_ms")) sp->group_ttl_ms = w->value;
  else if (!strcmp(f, "simulate_min_paid")) sp->simulate_min_paid = (uint32_t)w->value;
  else if (!strcmp(f, "new_users_only")) sp->new_users_only = w->value != 0;
}

/* A campaign that exists in a loaded state: the what-if as an update at
 * the time of the first input after it (uncompared). */
static int push_updates(run *x, int64_t now) {
  x->update_due = false;
  for (size_t i = 0; i < x->o->nsets; i++) {
    const pt_whatif *w = &x->o->sets[i];
    if (x->set_done[i] || !pt_campaign_find(x->engine, (pt_bytes){(const uint8_t *)w->campaign, w->campaign_len}))
      continue;
    pt_input u = {.kind = PT_IN_UPDATE, .now = now,
                  .request_id = {(const uint8_t *)"pintuan-replay:what-if", 22},
                  .campaign_id = {(const uint8_t *)w->campaign, w->campaign_len}};
    const char *f = w->field;
    if (!strcmp(f, "stock")) u.changes.fields = PT_UPD_STOCK, u.changes.stock = w->value;
    else if (!strcmp(f, "per_user_limit")) u.changes.fields = PT_UPD_LIMIT, u.changes.per_user_limit = (uint32_t)w->value;
    else if (!strcmp(f, "hold_ms")) u.changes.fields = PT_UPD_HOLD, u.changes.hold_ms = w->value;
    else if (!strcmp(f, "waitlist")) u.changes.fields = PT_UPD_WAITLIST, u.changes.waitlist = w->value != 0;
    else {
      snprintf(x->rep->error, sizeof x->rep->error,
               "--set %.*s.%s: the campaign exists before the capture's decisions begin, and %s "
               "can only be set where the capture creates it", (int)w->campaign_len, w->campaign, f, f);
      return -1;
    }
    slot *s = &x->slots[x->pushed % SLOTS];
    s->synthetic = true;
    x->set_done[i] = true;
    x->rep->sets_applied++;
    int rc = pt_replayer_push(&x->rp, &u, x->pushed++ % SLOTS);
    if (rc) return rc;
  }
  return 0;
}

static int load_state(run *x, const pt_cap_record *rec, uint64_t offset) {
  int rc = pt_replayer_flush(&x->rp);
  if (rc) return rc;
  char err[256];
  const uint8_t *snap;
  size_t n;
  if (pt_cap_state(rec, &snap, &n)) {
    snprintf(x->rep->error, sizeof x->rep->error,
             "at byte %" PRIu64 ": the state record is damaged (its checksum does not match)", offset);
    return -1;
  }
  pt_engine_config cfg = {0};
  pt_engine *e = pt_engine_restore(&cfg, snap, n, err, sizeof err);
  if (!e) {
    snprintf(x->rep->error, sizeof x->rep->error, "at byte %" PRIu64 ": the state record: %s", offset, err);
    return -1;
  }
  pt_engine_free(x->engine);
  x->engine = e;
  pt_replayer_init(&x->rp, e, check, x);
  pt_engine_stats st;
  pt_engine_stats_get(e, &st);
  x->events = st.events;
  x->rep->states++;
  x->update_due = x->o->nsets > 0;
  return 0;
}

/* Decodes an input record into slot s (its bytes copied there, in's byte
 * strings pointing into them). 0, or -1 with the reason in rep->error. */
static int decode(run *x, const pt_cap_record *rec, uint64_t offset, slot *s, pt_input *in) {
  const uint8_t *data = rec->data; /* a mapped file's records stay put: no copy */
  if (!x->mapped) {
    if (rec->len > s->cap) {
      s->buf = pt_xrealloc(s->buf, rec->len);
      s->cap = rec->len;
    }
    if (rec->len) memcpy(s->buf, rec->data, rec->len);
    data = s->buf;
  }
  size_t off = 0;
  pt_input_digest dig;
  char why[160] = "";
  msgpack_object o, items[PT_INPUT_FLAT_MAX];
  if (!pt_input_read_flat(data, rec->len, &off, &o, items))
    snprintf(why, sizeof why, "undecodable input");
  else if (pt_input_unpack(&o, in, &dig, why, sizeof why)) {
  } else if (!pt_input_read_flat(data, rec->len, &off, &o, items))
    snprintf(why, sizeof why, "undecodable answer");
  else if (pt_input_unpack_answer(&o, &s->recorded, why, sizeof why)) {
  } else if (off != rec->len)
    snprintf(why, sizeof why, "%zu bytes after the answer", rec->len - off);
  if (why[0]) {
    snprintf(x->rep->error, sizeof x->rep->error, "at byte %" PRIu64 ": the input record: %s", offset, why);
    return -1;
  }
  s->offset = offset, s->conn = rec->conn, s->synthetic = false;
  return 0;
}

static int push_input(run *x, const pt_cap_record *rec, uint64_t offset) {
  pt_exact_report *rep = x->rep;
  if (!x->engine) {
    snprintf(rep->error, sizeof rep->error, "at byte %" PRIu64 ": a decision before any state record", offset);
    return -1;
  }
  pt_input in;
  if (x->update_due) { /* the what-ifs go in at this input's time, ahead of it */
    slot peek = {0};
    int bad = decode(x, rec, offset, &peek, &in);
    free(peek.buf);
    if (bad) return -1;
    int rc = push_updates(x, in.now);
    if (rc) return rc;
  }
  slot *s = &x->slots[x->pushed % SLOTS];
  if (decode(x, rec, offset, s, &in)) return -1;
  rep->decisions++;
  s->request = pt_input_is_request(in.kind) ? ++rep->requests : 0;
  rep->advances += in.kind == PT_IN_ADVANCE;
  if (in.kind == PT_IN_CREATE)
    for (size_t i = 0; i < x->o->nsets; i++)
      if (names(&x->o->sets[i], in.spec.id)) {
        set_spec(&in.spec, &x->o->sets[i]);
        if (!x->set_done[i]) x->set_done[i] = true, rep->sets_applied++;
      }
  return pt_replayer_push(&x->rp, &in, x->pushed++ % SLOTS);
}

static void progress(run *x, uint64_t offset, uint64_t size) {
  uint64_t now = mono_ns();
  if (now < x->next_progress_ns) return;
  x->next_progress_ns = now + 1000000000u;
  double secs = (double)(now - x->t0_ns) / 1e9;
  fprintf(stderr, "pintuan-replay: %.0f%% (byte %" PRIu64 "), %" PRIu64 " decisions, %" PRIu64
          " divergences, %.0f decisions/s\n",
          size && size != UINT64_MAX ? 100.0 * (double)offset / (double)size : 0.0, offset,
          x->rep->decisions, x->rep->divergences, secs > 0 ? (double)x->rep->decisions / secs : 0);
}

int pt_exact_run(const char *path, const pt_exact_opts *o, pt_exact_report *rep) {
  memset(rep, 0, sizeof(*rep));
  run x = {.o = o, .rep = rep};
  x.set_done = pt_xcalloc(o->nsets + 1, sizeof *x.set_done);
  x.t0_ns = mono_ns();
  x.next_progress_ns = x.t0_ns + 1000000000u;
  pt_replayer_init(&x.rp, NULL, check, &x);
  pt_cap_reader rd;
  int rc = -1;
  if (pt_cap_reader_open(&rd, path, rep->error, sizeof rep->error)) goto out_free;
  rep->version = rd.version;
  x.mapped = rd.map != NULL;
  if (rd.version < 2) {
    snprintf(rep->error, sizeof rep->error,
             "%s: a version %u capture records requests and replies but not the decisions (engine "
             "times, timer advances, starting state) that exact replay needs; capture again with this "
             "pintuand (version 2), or replay this file over the network: pintuan-bench --replay",
             path, rd.version);
    goto out;
  }
  pt_cap_record rec;
  int r;
  rc = 0;
  while (rc == 0 && (r = pt_cap_read(&rd, &rec, rep->error, sizeof rep->error)) == 1) {
    rep->records++;
    if (rec.kind == PT_CAP_STATE) rc = load_state(&x, &rec, rd.at);
    else if (rec.kind == PT_CAP_INPUT) rc = push_input(&x, &rec, rd.at);
    if (o->progress && (rep->records & 0xffff) == 0) progress(&x, rd.offset, rd.size);
  }
  if (rc == 0 && r == -1) rc = -1; /* the reader's reason is in rep->error */
  if (rc == 0) rc = pt_replayer_flush(&x.rp);
  if (rc == 1) rc = 0; /* stopped at max_divergences */
  if (rc == 0 && !rep->error[0])
    for (size_t i = 0; i < o->nsets; i++)
      if (!x.set_done[i]) {
        snprintf(rep->error, sizeof rep->error, "--set %.*s.%s: no such campaign in this capture",
                 (int)o->sets[i].campaign_len, o->sets[i].campaign, o->sets[i].field);
        rc = -1;
        break;
      }
  if (rc && !rep->error[0]) snprintf(rep->error, sizeof rep->error, "replay stopped");
  for (size_t i = 0; i < x.pairs.cap; i++) {
    if (x.pairs.got[i] == 2) rep->users_gained++;
    if (x.pairs.got[i] == 1) rep->users_lost++;
  }
out:
  pt_cap_reader_close(&rd);
out_free:
  rep->seconds = (double)(mono_ns() - x.t0_ns) / 1e9;
  pt_engine_free(x.engine);
  for (int i = 0; i < SLOTS; i++) free(x.slots[i].buf);
  free(x.pairs.hash);
  free(x.pairs.got);
  free(x.set_done);
  return rc ? -1 : 0;
}

/* ---- the campaigns a capture knows ---- */

typedef struct seen_ids {
  char (*id)[PT_ID_MAX];
  uint8_t *len;
  size_t n, cap;
} seen_ids;

/* Whether id is new (then remembered). A capture has few campaigns: a
 * linear look is enough. */
static bool first_sight(seen_ids *s, pt_bytes id) {
  for (size_t i = 0; i < s->n; i++)
    if (s->len[i] == id.len && !memcmp(s->id[i], id.p, id.len)) return false;
  if (s->n == s->cap) {
    s->cap = s->cap ? s->cap * 2 : 16;
    s->id = pt_xrealloc(s->id, s->cap * sizeof *s->id);
    s->len = pt_xrealloc(s->len, s->cap);
  }
  memcpy(s->id[s->n], id.p, id.len);
  s->len[s->n++] = (uint8_t)id.len;
  return true;
}

int pt_exact_campaigns(const char *path, bool (*each)(void *ctx, pt_bytes id, pt_kind kind, int64_t stock,
                                                      bool created),
                       void *ctx, char *err, size_t errlen) {
  pt_cap_reader rd;
  if (pt_cap_reader_open(&rd, path, err, errlen)) return -1;
  seen_ids seen = {0};
  pt_cap_record rec;
  int r, rc = 0;
  bool more = true;
  while (more && (r = pt_cap_read(&rd, &rec, err, errlen)) == 1) {
    if (rec.kind == PT_CAP_STATE) {
      const uint8_t *snap;
      size_t n;
      char why[256];
      pt_engine_config cfg = {0};
      pt_engine *e = pt_cap_state(&rec, &snap, &n) ? NULL : pt_engine_restore(&cfg, snap, n, why, sizeof why);
      if (!e) {
        snprintf(err, errlen, "at byte %" PRIu64 ": an unreadable state record", rd.at);
        rc = -1;
        break;
      }
      for (size_t i = 0; more && i < pt_campaign_count(e); i++) {
        pt_campaign_info ci;
        pt_campaign_info_get(e, pt_campaign_at(e, i), 0, &ci);
        if (first_sight(&seen, ci.id)) more = each(ctx, ci.id, ci.kind, ci.stock, false);
      }
      pt_engine_free(e);
    } else if (rec.kind == PT_CAP_INPUT) {
      size_t off = 0;
      pt_input in;
      pt_input_digest dig;
      char why[160];
      msgpack_object o, items[PT_INPUT_FLAT_MAX];
      if (pt_input_read_flat(rec.data, rec.len, &off, &o, items) &&
          !pt_input_unpack(&o, &in, &dig, why, sizeof why) && in.kind == PT_IN_CREATE &&
          first_sight(&seen, in.spec.id))
        more = each(ctx, in.spec.id, in.spec.kind, in.spec.stock, true);
    }
  }
  if (more && r == -1) rc = -1;
  free(seen.id);
  free(seen.len);
  pt_cap_reader_close(&rd);
  return rc;
}
