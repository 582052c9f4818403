/* libFuzzer target: journal records from any bytes (a journal damaged in
 * Redis, or written by another version), applied as recovery applies them
 * (daemon/mirror/record.c) onto a small engine (record_base.h). The input
 * is cut into records at RB_SEP, each expected to follow the last one
 * applied, as XRANGE hands them over. Each record is applied, or is a gap
 * that changed nothing, or is refused with a reason (and the rest dropped:
 * recovery gives up there). Whatever was applied leaves an engine whose
 * stock adds up, that snapshots, restores into an engine that snapshots to
 * the same bytes from then on (a standby taking over from it decides
 * alike), and runs its due work.
 *
 * Build: meson setup build-fuzz -Dfuzz=true (clang); run: tests/fuzz/run.sh */
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "mirror/record.h"
#include "record_base.h"

typedef struct buf {
  uint8_t *p;
  size_t len, cap;
} buf;

static int to_buf(void *ctx, const void *p, size_t n) {
  buf *b = ctx;
  if (b->len + n > b->cap) {
    b->cap = (b->len + n) * 2;
    b->p = realloc(b->p, b->cap);
    if (!b->p) abort();
  }
  memcpy(b->p + b->len, p, n);
  b->len += n;
  return 0;
}

/* The next separator in p[0, n), or NULL (memmem is a GNU extension). */
static const uint8_t *find_sep(const uint8_t *p, size_t n) {
  for (size_t i = 0; i + RB_SEP_LEN <= n; i++)
    if (!memcmp(p + i, RB_SEP, RB_SEP_LEN)) return p + i;
  return NULL;
}

static void check_stock(pt_engine *e) {
  for (size_t i = 0; i < pt_campaign_count(e); i++) {
    pt_campaign_info ci;
    pt_campaign_info_get(e, pt_campaign_at(e, i), RB_T0, &ci);
    if (ci.available + ci.held + ci.sold != ci.stock || ci.available < 0 || ci.held < 0) abort();
  }
}

/* The engine as a standby would get it from a snapshot: restored without
 * complaint, into the same state. Byte for byte from the first restore
 * on: AUTO matching's trees are not written but built anew on restore
 * (snapshot.c), so the node a group buy's user record names as its tree's
 * root may differ from the live engine's (same tree, other slots); the
 * size may not. */
static pt_engine *restored(const buf *from) {
  pt_engine_config cfg = {0};
  char err[128] = "";
  pt_engine *r = pt_engine_restore(&cfg, from->p, from->len, err, sizeof err);
  if (!r) fprintf(stderr, "restore: %s\n", err);
  if (!r) abort(); /* a snapshot refused: its state broke a restore check (err) */
  return r;
}

static void check_round_trip(pt_engine *e) {
  static buf a, b, c;
  a.len = b.len = c.len = 0;
  if (pt_engine_snapshot(e, to_buf, &a) != 0) abort();
  pt_engine *r = restored(&a);
  if (pt_engine_snapshot(r, to_buf, &b) != 0) abort();
  if (a.len != b.len) abort();
  pt_engine *r2 = restored(&b);
  if (pt_engine_snapshot(r2, to_buf, &c) != 0) abort();
  if (b.len != c.len || memcmp(b.p, c.p, b.len)) abort();
  pt_engine_free(r2);
  pt_engine_free(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  pt_engine *e = rb_engine();
  uint64_t prev = 0, inputs = 0;
  const uint8_t *p = data, *end = data + size;
  while (p <= end) {
    const uint8_t *sep = find_sep(p, (size_t)(end - p));
    size_t n = sep ? (size_t)(sep - p) : (size_t)(end - p);
    /* a copy of its own size: ASan then sees a read past the record */
    uint8_t *rec = malloc(n ? n : 1);
    if (!rec) abort();
    memcpy(rec, p, n);
    pt_record_head_info h;
    char err[256] = "";
    uint64_t changes = pt_engine_changes(e), before = inputs;
    pt_record_rc rc = pt_record_apply(e, rec, n, prev, &h, &inputs, err, sizeof err);
    free(rec);
    if (rc == PT_RECORD_APPLIED) {
      if (h.seq != prev + 1) abort();
      prev = h.seq;
    } else if (rc == PT_RECORD_GAP) {
      if (!err[0] || h.seq == prev + 1 || inputs != before || pt_engine_changes(e) != changes) abort();
    } else if (rc == PT_RECORD_BAD) {
      if (!err[0]) abort();
      break;
    } else {
      abort();
    }
    check_stock(e);
    if (!sep) break;
    p = sep + RB_SEP_LEN;
  }
  check_round_trip(e);
  /* what a daemon taking over does next: the timers run, deadline by deadline */
  for (int i = 0; i < 64; i++) {
    int64_t d = pt_engine_next_deadline(e);
    if (d == PT_NEVER || d > INT64_C(1) << 50) break;
    pt_engine_advance(e, d);
    check_stock(e);
  }
  check_round_trip(e);
  pt_engine_free(e);
  return 0;
}
