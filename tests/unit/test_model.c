/* Randomized model test: long random sequences of reserve / confirm / cancel
 * / retry / stock update / end / bad input / clock jumps against the engine
 * and against a deliberately naive reference model (arrays and linear
 * scans). Every answer is compared, and after every step every invariant:
 * stock conserved, counters equal to the model's, no user over the limit,
 * events counted and sequenced.
 *
 * Usage: test_model [SEEDS [STEPS [FIRST_SEED]]]; a failure prints the seed. */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"

#define NC 3
#define NU 6
#define MAXR 4096
#define MAXQ 8192
#define WINDOW 5000
#define T0 1700000000000LL

typedef struct {
  char id[8];
  int64_t start, end; /* end PT_NEVER: none */
  int64_t stock, available, held, sold;
  uint32_t limit;
  int64_t hold_ms;
  bool waitlist;
} mcamp;

typedef struct {
  uint64_t rid;
  int c, u, qty;
  pt_hold_state state;
  int64_t expires;   /* HELD */
  int64_t retire_at; /* terminal: forgotten from then on */
  long wait_seq;     /* WAITING: arrival order */
} mres;

typedef struct {
  char key[24];
  int c, op, u;
  int64_t qty;
  uint64_t res;
  pt_result r;
  int64_t forget_at;
  bool kept; /* an effect: remembered; other answers are decided afresh */
} mreq;

static mcamp C[NC];
static mres R[MAXR];
static int nres;
static mreq Q[MAXQ];
static int nreq;
static long wait_counter;
static uint64_t rng;
static int64_t now;
static long ev_expired, ev_granted, ev_dropped, m_expired, m_granted, m_dropped;
static uint64_t last_seq;
static unsigned seed_now;
static long step_now;

static uint64_t rnd(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}
static int64_t rr(int64_t lo, int64_t hi) { return lo + (int64_t)(rnd() % (uint64_t)(hi - lo + 1)); }

#define CHECK(cond, ...)                                                            \
  do {                                                                              \
    if (!(cond)) {                                                                  \
      fprintf(stderr, "seed %u step %ld: %s: ", seed_now, step_now, #cond);         \
      fprintf(stderr, __VA_ARGS__);                                                 \
      fprintf(stderr, "\n");                                                        \
      exit(1);                                                                      \
    }                                                                               \
  } while (0)

static void on_event(void *ctx, const pt_event *ev) {
  (void)ctx;
  CHECK(ev->seq == last_seq + 1, "event seq %" PRIu64 " after %" PRIu64, ev->seq, last_seq);
  last_seq = ev->seq;
  if (ev->type == PT_EV_HOLD_EXPIRED) ev_expired++;
  if (ev->type == PT_EV_WAITLIST_GRANTED) ev_granted++;
  if (ev->type == PT_EV_WAITLIST_DROPPED) ev_dropped++;
}

static pt_bytes S(const char *s) { return (pt_bytes){(const uint8_t *)s, strlen(s)}; }
static char UID[NU][8];

/* ---- the model ---- */

static bool ended(const mcamp *c) { return now >= c->end; }

static void m_units(int c, int u, int64_t *held, int64_t *sold, int64_t *waiting) {
  *held = *sold = *waiting = 0;
  for (int i = 0; i < nres; i++) { /* forgotten reservations keep their units */
    if (R[i].c != c || R[i].u != u) continue;
    if (R[i].state == PT_HELD) *held += R[i].qty;
    if (R[i].state == PT_SOLD) *sold += R[i].qty;
    if (R[i].state == PT_WAITING) *waiting += R[i].qty;
  }
}

static mres *waitlist_head(int c) {
  mres *h = NULL;
  for (int i = 0; i < nres; i++)
    if (R[i].c == c && R[i].state == PT_WAITING && (!h || R[i].wait_seq < h->wait_seq)) h = &R[i];
  return h;
}

static int waitlist_len(int c) {
  int n = 0;
  for (int i = 0; i < nres; i++) n += R[i].c == c && R[i].state == PT_WAITING;
  return n;
}

static void m_grant(int c) {
  mcamp *k = &C[c];
  mres *h;
  while (!ended(k) && (h = waitlist_head(c)) && h->qty <= k->available) {
    h->state = PT_HELD;
    h->expires = now + k->hold_ms;
    k->available -= h->qty;
    k->held += h->qty;
    m_granted++;
  }
}

static void m_run_due(int c) {
  mcamp *k = &C[c];
  bool released = false;
  for (int i = 0; i < nres; i++)
    if (R[i].c == c && R[i].state == PT_HELD && R[i].expires <= now) {
      R[i].state = PT_EXPIRED_HOLD;
      R[i].retire_at = now + WINDOW;
      k->held -= R[i].qty;
      k->available += R[i].qty;
      m_expired++;
      released = true;
    }
  if (released) m_grant(c);
  if (ended(k))
    for (int i = 0; i < nres; i++)
      if (R[i].c == c && R[i].state == PT_WAITING) {
        R[i].state = PT_EXPIRED_HOLD;
        R[i].retire_at = now + WINDOW;
        m_dropped++;
      }
}

static mreq *m_find_req(int c, const char *key) {
  for (int i = nreq - 1; i >= 0; i--)
    if (Q[i].kept && Q[i].c == c && !strcmp(Q[i].key, key) && Q[i].forget_at > now) return &Q[i];
  return NULL;
}

static mres *m_find_res(int c, uint64_t rid) {
  for (int i = 0; i < nres; i++)
    if (R[i].rid == rid && R[i].c == c && R[i].retire_at > now) return &R[i];
  return NULL;
}

/* Every decided request is noted (retries are picked from all of them);
 * only effects are kept for replay. */
static void remember(int c, const char *key, int op, int u, int64_t qty, uint64_t res,
                     const pt_result *r) {
  CHECK(nreq < MAXQ, "model request table full");
  mreq *q = &Q[nreq++];
  snprintf(q->key, sizeof q->key, "%s", key);
  q->c = c, q->op = op, q->u = u, q->qty = qty, q->res = res, q->r = *r;
  q->forget_at = now + WINDOW;
  q->kept = r->status == PT_OK || (op == 4 && r->status == PT_WAITLISTED);
}

/* Compares a replay: same status and reservation, marked as a replay. */
static void check_replay(const pt_result *got, const mreq *q, int op, int u, int64_t qty, uint64_t res) {
  CHECK(got->replay, "retry not marked replay");
  if (q->op != op || q->u != u || q->qty != qty || q->res != res) {
    CHECK(got->status == PT_CONFLICT, "reuse with other params gave %s", pt_status_name(got->status));
    return;
  }
  CHECK(got->status == q->r.status, "replay %s != original %s", pt_status_name(got->status),
        pt_status_name(q->r.status));
  CHECK(got->reservation_id == q->r.reservation_id, "replay reservation id differs");
  CHECK(got->expires_ms == q->r.expires_ms, "replay expiry differs");
}

/* ---- operations on both ---- */

static pt_engine *E;

static void do_reserve(int c, int u, int64_t qty, const char *key) {
  mcamp *k = &C[c];
  pt_result got;
  pt_reserve(E, now, S(key), S(k->id), S(UID[u]), qty, &got);
  m_run_due(c);
  mreq *q = m_find_req(c, key);
  if (q) return check_replay(&got, q, 4, u, qty, 0);
  CHECK(!got.replay, "fresh request marked replay");
  pt_status want;
  if (qty < 1 || qty > 1000000) {
    CHECK(got.status == PT_INVALID_ARGUMENT, "bad qty gave %s", pt_status_name(got.status));
    return;
  }
  if (now < k->start) {
    CHECK(got.status == PT_NOT_STARTED, "want NOT_STARTED got %s", pt_status_name(got.status));
    return;
  }
  int64_t h, s, w;
  m_units(c, u, &h, &s, &w);
  bool fits = waitlist_len(c) == 0 && k->available >= qty;
  if (ended(k)) want = PT_ENDED;
  else if (k->limit && h + s + w + qty > k->limit) want = PT_LIMIT_EXCEEDED;
  else if (fits) want = PT_OK;
  else if (k->waitlist) want = PT_WAITLISTED;
  else want = PT_SOLD_OUT;
  CHECK(got.status == want, "reserve c%d u%d q%" PRId64 ": want %s got %s", c, u, qty,
        pt_status_name(want), pt_status_name(got.status));
  if (want == PT_OK || want == PT_WAITLISTED) {
    CHECK(nres < MAXR, "model reservation table full");
    for (int i = 0; i < nres; i++) CHECK(R[i].rid != got.reservation_id || R[i].retire_at <= now,
                                         "reservation id reused while still known");
    mres *m = &R[nres++];
    *m = (mres){.rid = got.reservation_id, .c = c, .u = u, .qty = (int)qty,
                .retire_at = PT_NEVER};
    if (want == PT_OK) {
      m->state = PT_HELD;
      m->expires = now + k->hold_ms;
      CHECK(got.expires_ms == m->expires, "expiry %" PRId64 " != %" PRId64, got.expires_ms, m->expires);
      k->available -= qty;
      k->held += qty;
    } else {
      m->state = PT_WAITING;
      m->wait_seq = wait_counter++;
      CHECK((int)got.position == waitlist_len(c), "waitlist position %u", got.position);
    }
  }
  remember(c, key, 4, u, qty, 0, &got);
}

/* by user u: another user's reservation is no reservation of u's */
static void do_confirm_cancel(int c, int u, uint64_t res, const char *key, bool confirm) {
  mcamp *k = &C[c];
  pt_result got;
  if (confirm)
    pt_confirm(E, now, S(key), S(k->id), res, S(UID[u]), &got);
  else
    pt_cancel(E, now, S(key), S(k->id), res, S(UID[u]), &got);
  m_run_due(c);
  int op = confirm ? 5 : 6;
  mreq *q = m_find_req(c, key);
  if (q) return check_replay(&got, q, op, u, 0, res);
  mres *m = m_find_res(c, res);
  pt_status want;
  if (!m || m->u != u) want = PT_NOT_FOUND;
  else if (m->state == PT_EXPIRED_HOLD) want = PT_EXPIRED;
  else if (m->state == PT_HELD) want = PT_OK;
  else if (m->state == PT_WAITING) want = confirm ? PT_CONFLICT : PT_OK;
  else want = PT_CONFLICT;
  CHECK(got.status == want, "%s c%d: want %s got %s", confirm ? "confirm" : "cancel", c,
        pt_status_name(want), pt_status_name(got.status));
  if (want == PT_OK) {
    if (confirm) {
      m->state = PT_SOLD;
      k->held -= m->qty;
      k->sold += m->qty;
    } else if (m->state == PT_HELD) {
      m->state = PT_RELEASED;
      k->held -= m->qty;
      k->available += m->qty;
    } else {
      m->state = PT_RELEASED;
    }
    m->retire_at = now + WINDOW;
    if (!confirm) m_grant(c);
  }
  remember(c, key, op, u, 0, res, &got);
}

static void do_update_stock(int c, int64_t stock, const char *key) {
  mcamp *k = &C[c];
  pt_campaign_changes u = {.fields = PT_UPD_STOCK, .stock = stock};
  pt_result got;
  pt_campaign_update(E, now, S(key), S(k->id), &u, &got);
  m_run_due(c);
  if (m_find_req(c, key)) {
    CHECK(got.replay, "update retry not a replay");
    return;
  }
  pt_status want = stock < k->held + k->sold ? PT_CONFLICT : PT_OK;
  CHECK(got.status == want, "update: want %s got %s", pt_status_name(want), pt_status_name(got.status));
  if (want == PT_OK) {
    k->available += stock - k->stock;
    k->stock = stock;
    m_grant(c);
  }
  remember(c, key, 2, -2, stock, 0, &got);
  m_run_due(c);
}

static void do_end(int c, const char *key) {
  mcamp *k = &C[c];
  pt_result got;
  pt_campaign_end(E, now, S(key), S(k->id), &got);
  m_run_due(c);
  if (m_find_req(c, key)) return;
  CHECK(got.status == PT_OK, "end gave %s", pt_status_name(got.status));
  if (!ended(k)) k->end = now;
  remember(c, key, 3, -3, 0, 0, &got);
  m_run_due(c);
}

static void check_all(void) {
  for (int c = 0; c < NC; c++) {
    mcamp *k = &C[c];
    pt_campaign *ec = pt_campaign_find(E, S(k->id));
    pt_campaign_info i;
    pt_campaign_info_get(E, ec, now, &i);
    CHECK(i.available + i.held + i.sold == i.stock, "stock not conserved");
    CHECK(i.available >= 0 && i.held >= 0 && i.sold >= 0, "negative counter");
    CHECK(i.stock == k->stock && i.available == k->available && i.held == k->held &&
              i.sold == k->sold,
          "c%d engine %" PRId64 "/%" PRId64 "/%" PRId64 "/%" PRId64 " model %" PRId64 "/%" PRId64
          "/%" PRId64 "/%" PRId64,
          c, i.stock, i.available, i.held, i.sold, k->stock, k->available, k->held, k->sold);
    CHECK((int)i.waitlist_length == waitlist_len(c), "waitlist length %u vs %d", i.waitlist_length,
          waitlist_len(c));
    for (int u = 0; u < NU; u++) {
      pt_holdings_info h;
      CHECK(pt_holdings_get(E, S(k->id), S(UID[u]), &h) == PT_OK, "holdings");
      int64_t mh, ms, mw;
      m_units(c, u, &mh, &ms, &mw);
      CHECK(h.held == mh && h.sold == ms && h.waiting == mw,
            "user %d in c%d: engine %u/%u/%u model %" PRId64 "/%" PRId64 "/%" PRId64, u, c, h.held,
            h.sold, h.waiting, mh, ms, mw);
      if (k->limit) CHECK(h.held + h.sold + h.waiting <= k->limit, "user over the limit");
    }
  }
  CHECK(ev_expired == m_expired, "expired events %ld vs model %ld", ev_expired, m_expired);
  CHECK(ev_granted == m_granted, "granted events %ld vs model %ld", ev_granted, m_granted);
  CHECK(ev_dropped == m_dropped, "dropped events %ld vs model %ld", ev_dropped, m_dropped);
}

/* A run's start: its seed, a random stream of its own (salt), the clock at
 * T0, and a fresh engine whose events go to ev. */
static void begin(unsigned seed, uint64_t salt, void (*ev)(void *ctx, const pt_event *ev)) {
  seed_now = seed;
  rng = salt ^ ((uint64_t)seed * 0x2545F4914F6CDD1DULL);
  if (!rng) rng = 1;
  last_seq = 0;
  now = T0;
  pt_engine_config cfg = {.idem_window_ms = WINDOW, .hash_seed = seed, .sink = {.event = ev}};
  E = pt_engine_new(&cfg);
  if (seed % 2) { /* half the runs with sealed ids (ids.c), half with the unkeyed ones */
    uint8_t key[16];
    for (int i = 0; i < 16; i++) key[i] = (uint8_t)(rng >> (i % 8 * 8)) ^ (uint8_t)i;
    pt_engine_set_id_key(E, key, seed);
  }
}

static void run(unsigned seed, long steps) {
  begin(seed, 0x9e3779b97f4a7c15ULL, on_event);
  nres = nreq = 0;
  wait_counter = 0;
  ev_expired = ev_granted = ev_dropped = m_expired = m_granted = m_dropped = 0;
  for (int c = 0; c < NC; c++) {
    mcamp *k = &C[c];
    snprintf(k->id, sizeof k->id, "c%d", c);
    k->start = T0 + rr(0, 1500);
    k->end = rnd() % 3 ? k->start + rr(4000, 30000) : PT_NEVER;
    k->stock = k->available = rr(0, 12);
    k->held = k->sold = 0;
    k->limit = (uint32_t)rr(0, 3);
    k->hold_ms = rr(50, 800);
    k->waitlist = rnd() % 2;
    pt_campaign_spec s = {.id = S(k->id), .kind = PT_FLASH_SALE, .start_ms = k->start,
                          .end_ms = k->end == PT_NEVER ? 0 : k->end, .stock = k->stock,
                          .per_user_limit = k->limit, .hold_ms = k->hold_ms, .waitlist = k->waitlist};
    pt_result r;
    char key[16];
    snprintf(key, sizeof key, "mk%d", c);
    pt_campaign_create(E, now, S(key), &s, &r);
    CHECK(r.status == PT_OK, "create");
    mreq *q = &Q[nreq++]; /* the create's request id is remembered too */
    snprintf(q->key, sizeof q->key, "%s", key);
    q->c = c, q->op = 1, q->forget_at = now + WINDOW, q->kept = true;
  }
  long keyno = 0;
  for (step_now = 0; step_now < steps; step_now++) {
    if (nres > MAXR - 8 || nreq > MAXQ - 8) break;
    int c = (int)rr(0, NC - 1);
    char key[24];
    snprintf(key, sizeof key, "k%ld", keyno++);
    int64_t roll = rr(0, 99);
    if (roll < 35) {
      int64_t qty = rnd() % 20 ? rr(1, 3) : rr(-2, 0);
      do_reserve(c, (int)rr(0, NU - 1), qty, key);
    } else if (roll < 65) {
      uint64_t res;
      int u = (int)rr(0, NU - 1);
      if (nres && rnd() % 8) {
        const mres *m = &R[rr(0, nres - 1)];
        res = m->rid;
        if (rnd() % 8) u = m->u; /* mostly its owner; else whoever */
      } else {
        res = rnd();
      }
      do_confirm_cancel(c, u, res, key, roll < 50);
    } else if (roll < 80) {
      /* land on boundaries too: a deadline, the instant before it, a start */
      int64_t next = pt_engine_next_deadline(E), pick = rr(0, 9);
      /* the model lives minutes: a campaign's retirement, days after its
       * end, is not modelled (test_engine's test_campaign_retirement) */
      if (next != PT_NEVER && next - now > 24 * 3600 * 1000LL) next = PT_NEVER;
      int64_t st = C[rr(0, NC - 1)].start;
      if (pick < 2 && next != PT_NEVER && next - 1 > now) now = next - 1;
      else if (pick < 4 && next != PT_NEVER && next > now) now = next;
      else if (pick == 4 && st - 1 > now) now = st - 1;
      else if (pick == 5 && st > now) now = st;
      else now += rnd() % 5 ? rr(0, 300) : rr(300, 6000);
      pt_engine_advance(E, now);
      for (int k2 = 0; k2 < NC; k2++) m_run_due(k2);
      /* a clock that steps back is clamped by the engine: changes nothing */
      if (rnd() % 4 == 0) pt_engine_advance(E, now - rr(1, 5000));
    } else if (roll < 92 && nreq) {
      /* a retry: the same request id, usually the same parameters */
      mreq q = Q[rr(0, nreq - 1)];
      if (q.op == 4) do_reserve(q.c, rnd() % 10 ? q.u : (q.u + 1) % NU, q.qty, q.key);
      else if (q.op == 5 || q.op == 6)
        do_confirm_cancel(q.c, rnd() % 10 ? q.u : (q.u + 1) % NU, q.res, q.key, q.op == 5);
    } else if (roll < 97) {
      do_update_stock(c, rr(0, 15), key);
    } else if (roll < 98) {
      do_end(c, key);
    } else {
      pt_result r; /* bad ids change nothing */
      pt_reserve(E, now, S(""), S(C[c].id), S(UID[0]), 1, &r);
      CHECK(r.status == PT_INVALID_ARGUMENT, "empty request id accepted");
      pt_reserve(E, now, S(key), S("no-such"), S(UID[0]), 1, &r);
      CHECK(r.status == PT_NOT_FOUND, "unknown campaign gave %s", pt_status_name(r.status));
    }
    check_all();
  }
  pt_engine_free(E);
}

/* ---- group buys: random joins / pays / leaves / clock jumps, invariants ----
 * seats <= N, no duplicate member, stock conserved, units held == seats of
 * open groups, sold == seats of completed groups, every group ends exactly
 * once (one COMPLETED/FAILED event, or closed empty), users within limit. */

#define MAXG 4096
static uint64_t G_id[MAXG];
static int G_ends[MAXG];
static int nG;
static long g_sold_units;
static uint64_t S_seat[MAXR];
static int S_user[MAXR];
static int nS;

static int g_index(uint64_t id) {
  for (int i = 0; i < nG; i++)
    if (G_id[i] == id) return i;
  return -1;
}

static void on_group_event(void *ctx, const pt_event *ev) {
  (void)ctx;
  CHECK(ev->seq == last_seq + 1, "event seq");
  last_seq = ev->seq;
  if (ev->type == PT_EV_GROUP_COMPLETED || ev->type == PT_EV_GROUP_FAILED) {
    int i = g_index(ev->group_id);
    CHECK(i >= 0, "event for an unknown group");
    G_ends[i]++;
    CHECK(G_ends[i] == 1, "group %" PRIu64 " ended twice", ev->group_id);
    if (ev->type == PT_EV_GROUP_COMPLETED) g_sold_units += (long)ev->n_members;
    for (size_t a = 0; a < ev->n_members; a++)
      for (size_t b = a + 1; b < ev->n_members; b++)
        CHECK(ev->members[a].len != ev->members[b].len ||
                  memcmp(ev->members[a].p, ev->members[b].p, ev->members[a].len),
              "duplicate member in an event");
  }
}

static void g_check(uint32_t size, uint32_t limit, bool final) {
  pt_campaign *ec = pt_campaign_find(E, S("gb"));
  pt_campaign_info ci;
  pt_campaign_info_get(E, ec, now, &ci);
  CHECK(ci.available + ci.held + ci.sold == ci.stock, "stock not conserved");
  CHECK(ci.available >= 0 && ci.held >= 0, "negative counter");
  CHECK(ci.sold == g_sold_units, "sold %" PRId64 " vs completed seats %ld", ci.sold, g_sold_units);
  int64_t seats_open = 0;
  for (int i = 0; i < nG; i++) {
    pt_group_info gi;
    if (pt_group_get(E, S("gb"), G_id[i], &gi) != PT_OK) {
      CHECK(G_ends[i] <= 1, "forgotten group ended twice");
      continue;
    }
    CHECK(gi.members <= size, "group over its size");
    CHECK(gi.paid <= gi.members || gi.state != PT_GS_OPEN, "more paid than members");
    for (uint32_t a = 0; a < gi.members; a++)
      for (uint32_t b = a + 1; b < gi.members; b++)
        CHECK(gi.member[a].user_id.len != gi.member[b].user_id.len ||
                  memcmp(gi.member[a].user_id.p, gi.member[b].user_id.p, gi.member[a].user_id.len),
              "a user sits twice in one group");
    if (gi.state == PT_GS_OPEN) {
      seats_open += gi.members;
      CHECK(gi.members > 0, "an open group without members");
      CHECK(G_ends[i] == 0, "an open group has ended");
      CHECK(!final, "group still open after every deadline");
    } else if (gi.state == PT_GS_CLOSED) {
      CHECK(G_ends[i] == 0, "a closed group also completed or failed");
    } else {
      CHECK(G_ends[i] == 1, "group ended without its event");
    }
  }
  CHECK(ci.held == seats_open, "held %" PRId64 " vs seats in open groups %" PRId64, ci.held, seats_open);
  for (int u = 0; u < NU; u++) {
    pt_holdings_info h;
    pt_holdings_get(E, S("gb"), S(UID[u]), &h);
    if (limit) CHECK(h.held + h.sold <= limit, "user over the group limit");
  }
}

/* The AUTO rule, naively: over every open group, the fullest the user is not
 * in, not closer to its deadline than the margin; ties to the earliest
 * deadline, then the earliest opened. 0: none fits (a new group). */
static uint64_t naive_auto(const pt_campaign_spec *sp, const char *user) {
  uint64_t best = 0;
  uint32_t best_m = 0;
  int64_t best_d = 0;
  for (int i = 0; i < nG; i++) { /* G_id is in opening order */
    static pt_group_info gi;
    if (pt_group_get(E, S("gb"), G_id[i], &gi) != PT_OK || gi.state != PT_GS_OPEN) continue;
    if (gi.members >= sp->group_size || gi.deadline_ms < now + sp->match_margin_ms) continue;
    bool mine = false;
    for (uint32_t k = 0; k < gi.members; k++)
      mine |= gi.member[k].user_id.len == strlen(user) &&
              !memcmp(gi.member[k].user_id.p, user, gi.member[k].user_id.len);
    if (mine) continue;
    if (!best || gi.members > best_m || (gi.members == best_m && gi.deadline_ms < best_d))
      best = G_id[i], best_m = gi.members, best_d = gi.deadline_ms;
  }
  return best;
}

/* crowd: plenty of stock, long deadlines, no per-user limit and one user in
 * half the joins, who comes to sit in many open groups at once (the
 * matching keeps a different index past a few groups per user). */
/* A random budget for a bounded advance (pt_engine_advance_some): none,
 * a few items, or all. */
static uint64_t slice(void) {
  int64_t k = rr(0, 5);
  return k == 0 ? 0 : k == 5 ? PT_DUE_ALL : (uint64_t)rr(1, 3);
}

static void run_groups(unsigned seed, long steps, bool crowd, bool slices) {
  begin(seed, 0x51ed270b8a3f9c11ULL, on_group_event);
  nG = nS = 0;
  g_sold_units = 0;
  uint32_t size = (uint32_t)rr(2, 5), limit = crowd ? 0 : (uint32_t)rr(0, 3);
  pt_campaign_spec sp = {.id = S("gb"), .kind = PT_GROUP_BUY, .start_ms = T0,
                         .stock = rr(0, 30), .per_user_limit = limit, .hold_ms = rr(100, 2000),
                         .group_size = size, .group_ttl_ms = rr(500, 4000),
                         .new_users_only = rnd() % 4 == 0,
                         .simulate_min_paid = rnd() % 2 ? (uint32_t)rr(1, size - 1) : 0};
  if (crowd) sp.stock = rr(200, 2000), sp.hold_ms = rr(2000, 20000), sp.group_ttl_ms = rr(5000, 30000);
  sp.match_margin_ms = rnd() % 2 ? rr(0, sp.group_ttl_ms / 2) : 0;
  pt_result r;
  pt_campaign_create(E, now, S("mk"), &sp, &r);
  CHECK(r.status == PT_OK, "create group campaign");
  long keyno = 0;
  for (step_now = 0; step_now < steps && nG < MAXG - 1 && nS < MAXR - 1; step_now++) {
    char key[24];
    snprintf(key, sizeof key, "g%ld", keyno++);
    int64_t roll = rr(0, 99);
    if (roll < 40) {
      pt_join_mode m = (pt_join_mode)rr(1, 3);
      uint64_t gid = nG && rnd() % 8 ? G_id[rr(0, nG - 1)] : rnd();
      int u = crowd && rnd() % 2 ? 0 : (int)rr(0, NU - 1);
      bool newu = rnd() % 3 != 0;
      uint64_t want = m == PT_JOIN_AUTO && (!sp.new_users_only || newu) ? naive_auto(&sp, UID[u]) : 0;
      pt_join(E, now, S(key), S("gb"), S(UID[u]), m, gid, newu, &r);
      if (m == PT_JOIN_AUTO && r.status == PT_OK && !r.replay) {
        CHECK(r.opened == (want == 0), "AUTO opened=%d but the naive rule found %" PRIu64, r.opened, want);
        CHECK(want == 0 || r.group_id == want, "AUTO chose %" PRIu64 ", the rule says %" PRIu64,
              r.group_id, want);
      }
      CHECK(r.status == PT_OK || r.status == PT_SOLD_OUT || r.status == PT_LIMIT_EXCEEDED ||
                r.status == PT_GROUP_FULL || r.status == PT_GROUP_CLOSED ||
                r.status == PT_ALREADY_MEMBER || r.status == PT_NOT_FOUND ||
                r.status == PT_NOT_NEW_USER,
            "join gave %s", pt_status_name(r.status));
      if (r.status == PT_OK) {
        if (g_index(r.group_id) < 0) {
          CHECK(r.opened || m != PT_JOIN_GROUP, "joined an unknown group");
          G_id[nG] = r.group_id, G_ends[nG++] = 0;
        }
        S_user[nS] = u, S_seat[nS++] = r.reservation_id;
        pt_result again; /* a retry changes nothing */
        pt_join(E, now, S(key), S("gb"), S(UID[u]), m, gid, true, &again);
        CHECK(again.replay, "join retry not a replay");
      }
    } else if (roll < 75 && nS) {
      int i = (int)rr(0, nS - 1), u = rnd() % 8 ? S_user[i] : (int)rr(0, NU - 1);
      if (roll < 60) pt_confirm(E, now, S(key), S("gb"), S_seat[i], S(UID[u]), &r);
      else pt_cancel(E, now, S(key), S("gb"), S_seat[i], S(UID[u]), &r);
      CHECK(r.status != PT_INTERNAL && r.status != PT_INVALID_ARGUMENT, "seat op gave %s",
            pt_status_name(r.status));
      CHECK(u == S_user[i] || r.status == PT_NOT_FOUND || r.replay, "another user's seat op gave %s",
            pt_status_name(r.status));
    } else {
      if (crowd && rnd() % 4) continue; /* time moves less: groups pile up */
      now += rnd() % 4 ? rr(0, 300) : rr(300, 3000);
      if (rnd() % 3 == 0 && pt_engine_next_deadline(E) > now && pt_engine_next_deadline(E) != PT_NEVER)
        now = pt_engine_next_deadline(E);
      if (slices) pt_engine_advance_some(E, now, slice());
      else pt_engine_advance(E, now);
    }
    g_check(size, limit, false);
  }
  now += sp.group_ttl_ms; /* past every deadline, within the window */
  pt_engine_advance(E, now);
  g_check(size, limit, true);
  pt_engine_free(E);
}

/* ---- flash sales advanced in slices: invariants ----
 * With due work left pending by bounded advances, answers may differ from
 * the model's (a reserve sees units still held), so this pass checks what
 * must hold whatever the slices: stock conserved, users within the limit,
 * no hold expired twice or sold after its deadline, and after a last full
 * advance past every deadline nothing held. */

#define MAXH 4096
static uint64_t H_rid[MAXH];
static int H_user[MAXH];
static int64_t H_deadline[MAXH];
static int H_expired[MAXH];
static int nH;

static int h_index(uint64_t rid) {
  for (int i = 0; i < nH; i++)
    if (H_rid[i] == rid) return i;
  return -1;
}

static void on_slice_event(void *ctx, const pt_event *ev) {
  (void)ctx;
  CHECK(ev->seq == last_seq + 1, "event seq");
  last_seq = ev->seq;
  int i = h_index(ev->reservation_id);
  if (ev->type == PT_EV_WAITLIST_GRANTED && i >= 0) H_deadline[i] = ev->expires_ms;
  if (ev->type != PT_EV_HOLD_EXPIRED) return;
  CHECK(i >= 0, "expiry of an unknown hold");
  CHECK(++H_expired[i] == 1, "hold %" PRIu64 " expired twice", ev->reservation_id);
  CHECK(ev->at_ms >= H_deadline[i], "expired before its deadline");
}

static void f_check(uint32_t limit) {
  pt_campaign_info ci;
  pt_campaign_info_get(E, pt_campaign_find(E, S("fs")), now, &ci);
  CHECK(ci.available + ci.held + ci.sold == ci.stock, "stock not conserved");
  CHECK(ci.available >= 0 && ci.held >= 0, "negative counter");
  for (int u = 0; u < NU; u++) {
    pt_holdings_info h;
    pt_holdings_get(E, S("fs"), S(UID[u]), &h);
    if (limit) CHECK(h.held + h.sold + h.waiting <= limit, "user over the limit");
  }
}

static void run_flash_slices(unsigned seed, long steps) {
  begin(seed, 0x2f1c6a9b5e3d7081ULL, on_slice_event);
  nH = 0;
  uint32_t limit = (uint32_t)rr(0, 3);
  int64_t hold_ms = rr(50, 800);
  pt_campaign_spec sp = {.id = S("fs"), .kind = PT_FLASH_SALE, .start_ms = T0, .stock = rr(0, 20),
                         .per_user_limit = limit, .hold_ms = hold_ms, .waitlist = rnd() % 2};
  pt_result r;
  pt_campaign_create(E, now, S("mk"), &sp, &r);
  CHECK(r.status == PT_OK, "create");
  long keyno = 0;
  for (step_now = 0; step_now < steps && nH < MAXH - 1; step_now++) {
    char key[24];
    snprintf(key, sizeof key, "f%ld", keyno++);
    int64_t roll = rr(0, 99);
    if (roll < 40) {
      int u = (int)rr(0, NU - 1);
      pt_reserve(E, now, S(key), S("fs"), S(UID[u]), rr(1, 3), &r);
      if ((r.status == PT_OK || r.status == PT_WAITLISTED) && !r.replay && h_index(r.reservation_id) < 0) {
        H_rid[nH] = r.reservation_id, H_user[nH] = u, H_expired[nH] = 0;
        H_deadline[nH++] = r.status == PT_OK ? r.expires_ms : PT_NEVER; /* a grant sets it later */
      }
    } else if (roll < 70 && nH) {
      int i = (int)rr(0, nH - 1);
      bool confirm = roll < 58;
      pt_bytes owner = S(UID[H_user[i]]);
      if (confirm) pt_confirm(E, now, S(key), S("fs"), H_rid[i], owner, &r);
      else pt_cancel(E, now, S(key), S("fs"), H_rid[i], owner, &r);
      CHECK(r.status != PT_INTERNAL && r.status != PT_INVALID_ARGUMENT, "gave %s", pt_status_name(r.status));
      if (confirm && r.status == PT_OK && !r.replay)
        CHECK(H_deadline[i] == PT_NEVER || now < H_deadline[i], "sold at %" PRId64 ", its deadline %" PRId64,
              now, H_deadline[i]);
    } else {
      now += rnd() % 4 ? rr(0, 300) : rr(300, 3000);
      pt_engine_advance_some(E, now, slice());
    }
    f_check(limit);
  }
  /* past every deadline, the ones waitlist grants set on the way too */
  for (int k = 0; k < MAXH && pt_engine_next_deadline(E) != PT_NEVER; k++) {
    int64_t next = pt_engine_next_deadline(E);
    now = next > now ? next : now;
    pt_engine_advance(E, now);
    f_check(limit);
  }
  pt_campaign_info ci;
  pt_campaign_info_get(E, pt_campaign_find(E, S("fs")), now, &ci);
  CHECK(ci.held == 0, "%" PRId64 " units still held after every deadline", ci.held);
  pt_engine_free(E);
}

int main(int argc, char **argv) {
  long seeds = argc > 1 ? atol(argv[1]) : 600;
  long steps = argc > 2 ? atol(argv[2]) : 3000;
  unsigned first = argc > 3 ? (unsigned)atol(argv[3]) : 1;
  for (int u = 0; u < NU; u++) snprintf(UID[u], sizeof UID[u], "u%d", u);
  for (long s = 0; s < seeds; s++) run(first + (unsigned)s, steps);
  printf("model test: %ld seeds x %ld steps agree with the engine\n", seeds, steps);
  for (long s = 0; s < seeds / 2; s++) run_groups(first + (unsigned)s, steps / 2, false, false);
  printf("group invariants: %ld seeds x %ld steps hold\n", seeds / 2, steps / 2);
  for (long s = 0; s < seeds / 8; s++) run_groups(first + (unsigned)s, steps, true, false);
  printf("group invariants, crowded: %ld seeds x %ld steps hold\n", seeds / 8, steps);
  for (long s = 0; s < seeds / 4; s++) run_flash_slices(first + (unsigned)s, steps / 2);
  printf("flash invariants, advanced in slices: %ld seeds x %ld steps hold\n", seeds / 4, steps / 2);
  for (long s = 0; s < seeds / 4; s++) run_groups(first + (unsigned)s, steps / 2, false, true);
  printf("group invariants, advanced in slices: %ld seeds x %ld steps hold\n", seeds / 4, steps / 2);
  return 0;
}
