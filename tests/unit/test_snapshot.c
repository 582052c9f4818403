/* Engine snapshots and the journal: an engine restored from a snapshot is
 * the same engine, and one restored and then fed the journal of the inputs
 * that changed something (rejected requests are not journaled) ends equal
 * to the original.
 * Random traffic (flash sales with and without a waitlist, a group buy,
 * retries, clock jumps) runs on one engine; at random points it is
 * snapshotted and restored, and from then on the original and the restored
 * engine get the same inputs: every answer, every event and every query
 * must agree, field by field, reservation and group ids included. Bad
 * snapshots (truncated, foreign, of another format) are refused with a
 * reason and nothing crashes.
 *
 * Usage: test_snapshot [SEEDS [STEPS]] */
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "input.h"
#include "replay.h"

#define T0 1700000000000LL
#define NU 12
#define MAXK 20000

static unsigned seed_now;
static long step_now;

#define CHECK(cond, ...)                                                      \
  do {                                                                        \
    if (!(cond)) {                                                            \
      fprintf(stderr, "seed %u step %ld: %s: ", seed_now, step_now, #cond);   \
      fprintf(stderr, __VA_ARGS__);                                           \
      fprintf(stderr, "\n");                                                  \
      exit(1);                                                                \
    }                                                                         \
  } while (0)

static uint64_t rng;
static uint64_t rnd(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}
static int64_t rr(int64_t lo, int64_t hi) { return lo + (int64_t)(rnd() % (uint64_t)(hi - lo + 1)); }
static pt_bytes S(const char *s) { return (pt_bytes){(const uint8_t *)s, strlen(s)}; }

/* Each engine's effects, flattened to text so two streams compare exactly. */
typedef struct trace {
  char *buf;
  size_t len, cap;
} trace;

static void tprintf(trace *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void tprintf(trace *t, const char *fmt, ...) {
  va_list ap;
  for (;;) {
    va_start(ap, fmt);
    int n = vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
    va_end(ap);
    if ((size_t)n < t->cap - t->len) {
      t->len += (size_t)n;
      return;
    }
    t->cap = t->cap ? t->cap * 2 : 1 << 16;
    t->buf = realloc(t->buf, t->cap);
  }
}

static void on_event(void *ctx, const pt_event *ev) {
  trace *t = ctx;
  tprintf(t, "ev %" PRIu64 " t%d @%" PRId64 " %.*s %.*s r%" PRIu64 " q%u x%" PRId64 " g%" PRIu64 " s%d [",
          ev->seq, ev->type, ev->at_ms, (int)ev->campaign_id.len, ev->campaign_id.p,
          (int)ev->user_id.len, ev->user_id.p, ev->reservation_id, ev->quantity, ev->expires_ms,
          ev->group_id, ev->simulated);
  for (size_t i = 0; i < ev->n_members; i++)
    tprintf(t, "%.*s ", (int)ev->members[i].len, ev->members[i].p);
  tprintf(t, "]\n");
}

static void on_mutation(void *ctx, const pt_mutation *m) {
  trace *t = ctx;
  tprintf(t, "mut %d %d %.*s %" PRIu64 "\n", m->kind, m->deleted, (int)m->key.len, m->key.p,
          m->reservation_id);
}

static void result_line(trace *t, const char *op, const pt_result *r) {
  tprintf(t, "%s %s rp%d r%" PRIu64 " x%" PRId64 " q%u p%u s%d g%" PRIu64 " gs%d o%d\n", op,
          pt_status_name(r->status), r->replay, r->reservation_id, r->expires_ms, r->quantity,
          r->position, r->state, r->group_id, r->group_state, r->opened);
}

typedef struct side {
  pt_engine *e;
  trace t;
} side;

/* gc: a crowded group buy where u0 comes to sit in many open groups (the
 * matching index changes shape past a few groups per user) */
static const char *CAMPS[] = {"fs", "fw", "gb", "gc"};
#define NCAMPS 4
static uint64_t ids[MAXK]; /* reservation and group ids seen, for later ops */
static int nids;
static int64_t now;

static void setup(side *s) {
  pt_campaign_spec specs[NCAMPS] = {
      {.id = S("fs"), .kind = PT_FLASH_SALE, .stock = rr(0, 30), .per_user_limit = (uint32_t)rr(0, 4),
       .hold_ms = rr(50, 2000)},
      {.id = S("fw"), .kind = PT_FLASH_SALE, .stock = rr(0, 10), .hold_ms = rr(50, 2000),
       .waitlist = true, .end_ms = T0 + rr(5000, 40000)},
      {.id = S("gb"), .kind = PT_GROUP_BUY, .stock = rr(0, 60), .per_user_limit = (uint32_t)rr(0, 5),
       .hold_ms = rr(100, 3000), .group_size = (uint32_t)rr(2, 5), .group_ttl_ms = rr(500, 5000),
       .simulate_min_paid = 1, .match_margin_ms = rr(0, 200)},
      {.id = S("gc"), .kind = PT_GROUP_BUY, .stock = rr(200, 1000), .hold_ms = rr(3000, 20000),
       .group_size = (uint32_t)rr(2, 5), .group_ttl_ms = rr(5000, 30000), .match_margin_ms = rr(0, 200)},
  };
  for (int i = 0; i < NCAMPS; i++) {
    pt_result r;
    char key[8];
    snprintf(key, sizeof key, "mk%d", i);
    pt_campaign_create(s->e, now, S(key), &specs[i], &r);
    CHECK(r.status == PT_OK, "create %d", i);
  }
}

/* One random input. */
static pt_input draw(pt_engine *e, char *key, char *user) {
  pt_input in = {.now = now};
  int64_t roll = rr(0, 99);
  snprintf(key, 24, "k%" PRId64, rr(0, step_now + 5)); /* reuse: retries */
  snprintf(user, 8, "u%" PRId64, rr(0, NU - 1));
  const char *c = CAMPS[rr(0, NCAMPS - 1)];
  uint64_t id = nids && rnd() % 6 ? ids[rr(0, nids - 1)] : rnd() % 100;
  in.request_id = S(key), in.campaign_id = S(c), in.user_id = S(user);
  if (roll < 35) {
    in.kind = PT_IN_RESERVE, in.quantity = rr(1, 3);
  } else if (roll < 55) {
    in.kind = PT_IN_JOIN, in.campaign_id = S(rnd() % 2 ? "gb" : "gc"), in.mode = (pt_join_mode)rr(1, 3);
    if (in.campaign_id.p[1] == 'c' && rnd() % 2) snprintf(user, 8, "u0");
    in.group_id = id, in.new_user = rnd() % 2;
  } else if (roll < 68) {
    in.kind = PT_IN_CONFIRM, in.reservation_id = id;
  } else if (roll < 78) {
    in.kind = PT_IN_CANCEL, in.reservation_id = id;
  } else if (roll < 80) { /* SIGHUP: a new window (records keep their order) */
    in.kind = PT_IN_WINDOW, in.value = rr(300, 8000);
  } else if (roll < 81 && rnd() % 8 == 0) { /* a new era of ids (ids.c): a few a run, as in life
                                                * few incarnations; the ids before it stay valid */
    in.kind = PT_IN_ID_KEY, in.id_tag = rnd() | 1;
    for (int i = 0; i < 16; i++) in.id_key[i] = (uint8_t)rnd();
  } else if (roll < 81) {
    in.kind = PT_IN_WINDOW, in.value = rr(300, 8000);
  } else if (roll < 83) {
    in.kind = PT_IN_UPDATE;
    in.changes = (pt_campaign_changes){.fields = PT_UPD_STOCK, .stock = rr(0, 40)};
  } else {
    int64_t d = pt_engine_next_deadline(e);
    in.kind = PT_IN_ADVANCE;
    in.now = rnd() % 3 == 0 && d != PT_NEVER && d > now ? d : now + rr(0, 700);
  }
  return in;
}

/* The journal of inputs that changed something, as the daemon keeps it. */
static msgpack_sbuffer journal;
static msgpack_packer jpk;
static long journaled_requests; /* requests in the journal */

/* Applies one random input to every given engine; the same input for all.
 * The original's inputs that changed state are journaled. */
static void step(side *sides, int n) {
  char key[24], user[8];
  pt_input in = draw(sides[0].e, key, user);
  for (int k = 0; k < n; k++) {
    side *s = &sides[k];
    pt_result r;
    uint64_t before = pt_engine_changes(s->e);
    pt_input_apply(s->e, &in, &r);
    if (in.kind == PT_IN_ADVANCE || pt_input_is_setting(in.kind))
      tprintf(&s->t, "input %d %" PRId64 " %" PRId64 "\n", in.kind, in.now, in.value);
    else
      result_line(&s->t, "request", &r);
    if (k == 0 && (pt_engine_changes(s->e) != before || pt_input_is_setting(in.kind))) {
      pt_input_pack(&jpk, &in, &r);
      if (in.kind >= PT_IN_CREATE && in.kind <= PT_IN_JOIN) journaled_requests++;
    }
    if (k == 0) {
      if (r.reservation_id && nids < MAXK) ids[nids++] = r.reservation_id;
      if (r.group_id && nids < MAXK) ids[nids++] = r.group_id;
    }
  }
  if (in.kind == PT_IN_ADVANCE) now = in.now;
}

/* Replays the journal onto e with the replayer recovery uses: every answer
 * as the digest says. */
static void replay(pt_engine *e) {
  uint64_t n = 0;
  char err[256];
  /* the allocation-free reader decodes every input as msgpack's own does */
  msgpack_unpacked u;
  msgpack_unpacked_init(&u);
  for (size_t a = 0, b = 0; a < journal.size;) {
    CHECK(msgpack_unpack_next(&u, journal.data, journal.size, &a) == MSGPACK_UNPACK_SUCCESS, "unpack");
    msgpack_object o, items[PT_INPUT_FLAT_MAX];
    CHECK(pt_input_read_flat(journal.data, journal.size, &b, &o, items) && a == b, "read_flat at %zu", b);
    pt_input ia, ib;
    pt_input_digest da, db;
    CHECK(pt_input_unpack(&u.data, &ia, &da, err, sizeof err) == 0, "unpack: %s", err);
    CHECK(pt_input_unpack(&o, &ib, &db, err, sizeof err) == 0, "read_flat: %s", err);
    CHECK(!memcmp(&ia, &ib, sizeof ia) && !memcmp(&da, &db, sizeof da), "decoded differently at %zu", b);
  }
  msgpack_unpacked_destroy(&u);
  CHECK(pt_replay_inputs(e, journal.data, journal.size, 0, &n, err, sizeof err) == 0, "journal: %s",
        err);
}

/* The replayer refuses what it cannot vouch for: a journal cut short, and
 * answers that differ from the recorded ones (here: the journal replayed
 * onto an empty engine, where its campaigns do not exist). */
static void replay_refusals(const trace *jsnap) {
  pt_engine_config rc = {.hash_seed = 5};
  uint64_t n = 0;
  char err[256];
  pt_engine *e = pt_engine_new(&rc);
  int r = pt_replay_inputs(e, journal.data, journal.size, 0, &n, err, sizeof err);
  CHECK(r == -1 && strstr(err, "recorded as"), "a journal replayed onto nothing: %d %s", r, err);
  pt_engine_free(e);
  e = pt_engine_restore(&rc, jsnap->buf, jsnap->len, err, sizeof err);
  CHECK(e, "restore: %s", err);
  n = 0;
  r = pt_replay_inputs(e, journal.data, journal.size - 1, 0, &n, err, sizeof err);
  CHECK(r == -1 && strstr(err, "undecodable input at byte"), "a journal cut short: %d %s", r, err);
  pt_engine_free(e);
}

/* Everything a client can ask, for every id seen: equal on both sides. */
static void compare_queries(side *a, side *b) {
  pt_engine_stats sa, sb;
  pt_engine_stats_get(a->e, &sa);
  pt_engine_stats_get(b->e, &sb);
  CHECK(sa.live_holds == sb.live_holds && sa.waiting == sb.waiting &&
            sa.idem_records == sb.idem_records && sa.events == sb.events &&
            sa.open_groups == sb.open_groups,
        "stats differ");
  CHECK(pt_engine_next_deadline(a->e) == pt_engine_next_deadline(b->e), "next deadline differs");
  for (int c = 0; c < NCAMPS; c++) {
    pt_campaign_info ia, ib;
    pt_campaign_info_get(a->e, pt_campaign_find(a->e, S(CAMPS[c])), now, &ia);
    pt_campaign_info_get(b->e, pt_campaign_find(b->e, S(CAMPS[c])), now, &ib);
    CHECK(ia.stock == ib.stock && ia.available == ib.available && ia.held == ib.held &&
              ia.sold == ib.sold && ia.waitlist_length == ib.waitlist_length &&
              ia.open_groups == ib.open_groups && ia.end_ms == ib.end_ms,
          "campaign %s differs", CAMPS[c]);
    for (int u = 0; u < NU; u++) {
      char user[8];
      snprintf(user, sizeof user, "u%d", u);
      pt_holdings_info ha, hb;
      pt_holdings_get(a->e, S(CAMPS[c]), S(user), &ha);
      pt_holdings_get(b->e, S(CAMPS[c]), S(user), &hb);
      CHECK(!memcmp(&ha, &hb, sizeof ha), "holdings of %s in %s differ", user, CAMPS[c]);
    }
    for (int i = 0; i < nids; i++) {
      pt_reservation_info ra, rb;
      pt_status s1 = pt_reservation_get(a->e, S(CAMPS[c]), ids[i], (pt_bytes){0}, &ra);
      pt_status s2 = pt_reservation_get(b->e, S(CAMPS[c]), ids[i], (pt_bytes){0}, &rb);
      CHECK(s1 == s2, "reservation lookup differs");
      if (s1 == PT_OK)
        CHECK(ra.state == rb.state && ra.expires_ms == rb.expires_ms && ra.quantity == rb.quantity &&
                  ra.group_id == rb.group_id && ra.group_state == rb.group_state &&
                  ra.user_id.len == rb.user_id.len &&
                  !memcmp(ra.user_id.p, rb.user_id.p, ra.user_id.len),
              "reservation %" PRIu64 " differs", ids[i]);
      static pt_group_info ga, gb;
      s1 = pt_group_get(a->e, S(CAMPS[c]), ids[i], &ga);
      s2 = pt_group_get(b->e, S(CAMPS[c]), ids[i], &gb);
      CHECK(s1 == s2, "group lookup differs");
      if (s1 == PT_OK) {
        CHECK(ga.state == gb.state && ga.members == gb.members && ga.paid == gb.paid &&
                  ga.deadline_ms == gb.deadline_ms && ga.simulated == gb.simulated,
              "group %" PRIu64 " differs", ids[i]);
        for (uint32_t m = 0; m < ga.members; m++)
          CHECK(ga.member[m].seat_id == gb.member[m].seat_id &&
                    ga.member[m].state == gb.member[m].state,
                "member %u of group %" PRIu64 " differs", m, ids[i]);
      }
    }
  }
}

static int to_buf(void *ctx, const void *p, size_t n) {
  trace *t = ctx; /* a byte buffer: the same growth */
  if (t->len + n > t->cap) {
    while (t->len + n > t->cap) t->cap = t->cap ? t->cap * 2 : 1 << 16;
    t->buf = realloc(t->buf, t->cap);
  }
  memcpy(t->buf + t->len, p, n);
  t->len += n;
  return 0;
}

static pt_engine *clone(side *src, trace *into, trace *snap) {
  snap->len = 0;
  CHECK(pt_engine_snapshot(src->e, to_buf, snap) == 0, "snapshot failed");
  pt_engine_config cfg = {.idem_window_ms = 1, .hash_seed = 12345,
                          .sink = {.event = on_event, .mutation = on_mutation, .ctx = into}};
  char err[128];
  pt_engine *e = pt_engine_restore(&cfg, snap->buf, snap->len, err, sizeof err);
  CHECK(e, "restore: %s", err);
  return e;
}

/* Truncations and foreign bytes are refused with a reason. */
static void bad_snapshots(const trace *snap) {
  pt_engine_config cfg = {0};
  char err[128];
  size_t stride = snap->len / 97 + 1;
  for (size_t cut = 0; cut < snap->len; cut += stride) {
    pt_engine *e = pt_engine_restore(&cfg, snap->buf, cut, err, sizeof err);
    CHECK(!e, "a snapshot cut at %zu of %zu was accepted", cut, snap->len);
    CHECK(strstr(err, "snapshot:"), "no reason given");
  }
  char *copy = malloc(snap->len + 1);
  memcpy(copy, snap->buf, snap->len);
  copy[snap->len] = 0;
  CHECK(!pt_engine_restore(&cfg, copy, snap->len + 1, err, sizeof err), "trailing byte accepted");
  copy[1] ^= 0x20; /* the magic */
  CHECK(!pt_engine_restore(&cfg, copy, snap->len, err, sizeof err), "foreign magic accepted");
  copy[1] ^= 0x20;
  copy[15] = (char)(PT_SNAPSHOT_FORMAT + 1); /* the format version: a fixint after the 15-byte magic */
  CHECK(!pt_engine_restore(&cfg, copy, snap->len, err, sizeof err), "other format accepted");
  CHECK(strstr(err, "format"), "reason: %s", err);
  free(copy);
}

static void run(unsigned seed, long steps) {
  seed_now = seed;
  rng = 0x9e3779b97f4a7c15ULL ^ ((uint64_t)seed * 0x2545F4914F6CDD1DULL);
  nids = 0;
  now = T0;
  side sides[2] = {{0}, {0}};
  pt_engine_config cfg = {.idem_window_ms = rr(500, 8000), .hash_seed = seed,
                          .max_remembered = rnd() % 3 ? 0 : (uint64_t)rr(5, 200),
                          .sink = {.event = on_event, .mutation = on_mutation, .ctx = &sides[0].t}};
  sides[0].e = pt_engine_new(&cfg);
  setup(&sides[0]);
  trace snap = {0}, jsnap = {0};
  int n = 1;
  msgpack_sbuffer_clear(&journal);
  long next_clone = rr(0, steps / 2);
  for (step_now = 0; step_now < steps; step_now++) {
    if (step_now == next_clone) {
      /* restore a fresh twin from the original; compare from here on */
      if (n == 2) pt_engine_free(sides[1].e);
      sides[1].t.len = 0;
      sides[0].t.len = 0;
      sides[1].e = clone(&sides[0], &sides[1].t, &snap);
      msgpack_sbuffer_clear(&journal); /* the journal starts at the snapshot */
      journaled_requests = 0;
      jsnap.buf = realloc(jsnap.buf, snap.len); /* keep this snapshot for the replay */
      memcpy(jsnap.buf, snap.buf, snap.len);
      jsnap.len = snap.len;
      if (step_now < 3 * steps / 4) bad_snapshots(&snap);
      n = 2;
      compare_queries(&sides[0], &sides[1]);
      next_clone = step_now + rr(1, steps / 3);
    }
    step(sides, n);
    if (n == 2) {
      CHECK(sides[0].t.len == sides[1].t.len &&
                !memcmp(sides[0].t.buf, sides[1].t.buf, sides[0].t.len),
            "effects diverge:\n--- original\n%.*s--- restored\n%.*s", (int)sides[0].t.len,
            sides[0].t.buf, (int)sides[1].t.len, sides[1].t.buf);
      sides[0].t.len = sides[1].t.len = 0;
      if (step_now % 50 == 0) compare_queries(&sides[0], &sides[1]);
    } else {
      sides[0].t.len = 0;
    }
  }
  if (n == 2) {
    compare_queries(&sides[0], &sides[1]);
    pt_engine_free(sides[1].e);
    /* a third engine: the last snapshot plus the journal of effects only
     * (no rejected request was journaled) ends equal to the original */
    pt_engine_config rc = {.hash_seed = 99};
    char err[128];
    sides[1].e = pt_engine_restore(&rc, jsnap.buf, jsnap.len, err, sizeof err);
    CHECK(sides[1].e, "restore: %s", err);
    replay(sides[1].e);
    compare_queries(&sides[0], &sides[1]);
    pt_engine_free(sides[1].e);
    if (journaled_requests > 0) replay_refusals(&jsnap);
  }
  pt_engine_free(sides[0].e);
  free(sides[0].t.buf);
  free(sides[1].t.buf);
  free(snap.buf);
  free(jsnap.buf);
}

int main(int argc, char **argv) {
  msgpack_sbuffer_init(&journal);
  msgpack_packer_init(&jpk, &journal, msgpack_sbuffer_write);
  long seeds = argc > 1 ? atol(argv[1]) : 60;
  long steps = argc > 2 ? atol(argv[2]) : 3000;
  for (long s = 1; s <= seeds; s++) run((unsigned)s, steps);
  printf("snapshot test: %ld seeds x %ld steps, restored engines decide as the originals\n", seeds,
         steps);
  return 0;
}
