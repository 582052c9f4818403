/* Rebuilding from Redis: the last snapshot (its chunks), then every journal
 * record after it, each input replayed through pt_input_apply and its
 * answer checked against the digest recorded with it.
 *
 * Two purposes, one path:
 * - a takeover, by a daemon that has just gained the lease: it then serves
 *   the engine it built. Holds and groups whose deadline passed while no
 *   primary ran are settled by the first turn after (its advance), exactly
 *   as the timer would have, and their events are journaled then, once. A
 *   standby that followed the journal starts from its follower's engine
 *   and reads only what came after it (from the snapshot when the journal
 *   was trimmed past it);
 * - following, by a standby: the same rebuild into the follower's engine
 *   (stale reads are answered from it, mirror.h), then, every lease tick,
 *   the records appended since, applied to it in place.
 *
 * One command at a time on the mirror's connection; a doubt (lost
 * connection, lost lease) aborts it, and whatever reply is still coming
 * frees what was built. */
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "mirror_int.h"
#include "record.h"
#include "xalloc.h"

#include <zstd.h>

/* Journal records per XRANGE: at most BATCH_MAX, and about BATCH_BYTES
 * (a record may be up to 256 KiB: a thousand of those would be one
 * 256 MB reply, built by Redis and held by hiredis at once). The count
 * follows the size of the records read so far, from a first batch small
 * enough whatever they are (64 records in parts were a 16 MB first batch).
 * And a batch is applied for at most BATCH_SLICE_NS in one go: the loop
 * must get back to the lease's renewals (a lease of 600 ms was lost, over
 * and over, to batches of a million inputs applied in one callback); what
 * is left of the batch is read again with the next XRANGE. */
#define BATCH_MAX 1000
#define BATCH_FIRST 4
#define BATCH_BYTES (1u << 20)
#define BATCH_SLICE_NS (50 * 1000 * 1000)

/* A standby's reading costs Redis what the primary's writing does: it reads
 * at most this much of the journal a tick (the rest at the next ones; a
 * takeover reads what is left), and reads a whole snapshot at most once per
 * FOLLOW_REBUILD_LEASES leases (a snapshot every few seconds, as a tiny
 * snapshot_after_bytes makes, would have it read them back to back and
 * hold up the primary's lease renewals behind them). */
#define FOLLOW_PASS_BYTES (8u << 20)
#define FOLLOW_REBUILD_LEASES 10

/* What one compressed chunk may expand to (snapshot_chunk's own maximum):
 * a damaged frame header cannot make recovery allocate more. */
#define CHUNK_RAW_MAX (256u << 20)

struct recovery {
  pt_mirror *m; /* NULL once aborted */
  bool follow;        /* for the follower (else a takeover) */
  bool borrowed;      /* e is the follower's engine, caught up in place: never freed here */
  bool from_follower; /* a takeover that began from the follower's engine */
  uint64_t last_epoch; /* the epoch of the last record applied */
  bool got_any, retried; /* follow: this pass read records; an empty read was tried again */
  uint64_t snap_seq;
  unsigned chunks, next_chunk;
  char prefix[KEY_MAX];
  bool checked;            /* the description has bytes and sum (written since 2026-12-03) */
  uint64_t bytes, sum, got_sum;
  uint64_t stored; /* the chunks' bytes as Redis holds them */
  bool zstd;       /* chunk 0 began with zstd's magic: each chunk is one frame */
  uint8_t *buf;    /* the engine's bytes */
  size_t len, cap;
  pt_engine *e;
  uint64_t last_seq; /* the last record applied */
  uint64_t inputs;
  int64_t started_ms;
  unsigned count; /* records the XRANGE in flight asked for */
  uint64_t journal_bytes; /* of the records after the snapshot */
  /* the snapshot's restore, on a worker thread */
  uv_work_t work;
  pt_engine_config cfg;
  char err[200];
};

static void rec_free(recovery *r) {
  if (!r->borrowed) pt_engine_free(r->e);
  free(r->buf);
  free(r);
}

static recovery **slot_of(pt_mirror *m, const recovery *r) { return r->follow ? &m->follow_rec : &m->rec_state; }

/* The reply belongs to a recovery still wanted; else it is cleaned up. */
static pt_mirror *alive(recovery *r, redisReply *reply) {
  if (!r->m) {
    rec_free(r);
    return NULL;
  }
  if (!reply) { /* the connection went (its callback comes next and decides) */
    *slot_of(r->m, r) = NULL;
    rec_free(r);
    return NULL;
  }
  return r->m;
}

static void begin(recovery *r);
static void read_journal(recovery *r);
static void follow_pause(recovery *r);

/* The follower's engine is not (or no longer) a prefix of the journal as
 * Redis holds it: a snapshot trimmed the journal past it. Start again
 * from the snapshot: a follow into a new engine (the old one answers
 * stale reads meanwhile), a takeover into its own. */
static void from_snapshot(recovery *r) {
  pt_mirror *m = r->m;
  if (r->follow) { /* when its pace allows (follow_start) */
    *slot_of(m, r) = NULL;
    rec_free(r);
    follow_start(m, true);
    return;
  }
  pt_info("mirror %s: the journal was trimmed past record %" PRIu64 ": reading the snapshot",
          r->follow ? "follow" : "recovery", r->last_seq);
  pt_engine_free(r->e);
  r->e = NULL;
  r->from_follower = false;
  r->inputs = r->journal_bytes = r->stored = r->got_sum = 0;
  r->last_seq = r->snap_seq = 0;
  r->chunks = r->next_chunk = 0;
  r->checked = r->zstd = false;
  r->len = 0;
  begin(r);
}

static void fail(recovery *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(recovery *r, const char *fmt, ...) {
  pt_mirror *m = r->m;
  char why[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why, sizeof why, fmt, ap);
  va_end(ap);
  /* A standby reads while the primary snapshots: the journal it reads may
   * be trimmed, the snapshot it reads replaced (its chunks unlinked). That
   * is no damage: it starts over from the newer snapshot, at its pace. */
  if (r->follow && (strstr(why, "a gap") || strstr(why, "is missing") || strstr(why, "damaged"))) {
    pt_info("mirror follow: %s (read while the primary replaced it): starting over from the snapshot", why);
    from_snapshot(r);
    return;
  }
  if (r->follow) { /* a standby's: it tries again later, from the snapshot */
    pt_warn("mirror follow failed: %s; stale reads are refused until it is rebuilt", why);
    *slot_of(m, r) = NULL;
    rec_free(r);
    follow_drop(m);
    return;
  }
  pt_error("mirror recovery failed: %s. This daemon will not serve this shard until an operator "
           "looks (is another version writing the journal?)", why);
  m->rec_state = NULL;
  rec_free(r);
  m->role = PT_ROLE_FAILED;
  if (m->ac && m->ready)
    redisAsyncCommand(m->ac, NULL, NULL, "FCALL pintuan_release 1 %s %s %s", m->key_lease,
                      m->cfg.node_id, m->epoch_s);
}

static void finish(recovery *r);

/* Applies one journal record (record.h) to the engine being built: 0, 1
 * when it starts past the follower's engine (the journal was trimmed past
 * it: from the snapshot), -1 when it failed (the recovery is gone). */
static int apply_record(recovery *r, const char *p, size_t n) {
  pt_record_head_info h;
  char err[256];
  pt_record_rc rc = pt_record_apply(r->e, p, n, r->last_seq, &h, &r->inputs, err, sizeof err);
  if (rc == PT_RECORD_GAP && h.seq > r->last_seq + 1 && (r->borrowed || r->from_follower))
    return 1;
  if (rc != PT_RECORD_APPLIED) {
    fail(r, "%s", err);
    return -1;
  }
  r->last_seq = h.seq;
  if (h.has_epoch) r->last_epoch = h.epoch;
  if (r->borrowed) { /* in place: the follower's engine is at this record now */
    r->m->follower.seq = h.seq;
    r->m->follower.epoch = r->last_epoch;
  }
  return 0;
}

static void on_last_seq(redisAsyncContext *ac, void *reply, void *priv) {
  (void)ac;
  recovery *r = priv;
  redisReply *rep = reply;
  if (!alive(r, rep)) return;
  uint64_t want = rep->type == REDIS_REPLY_STRING ? strtoull(rep->str, NULL, 10) : 0;
  if (want > r->last_seq && r->follow) { /* the primary appended meanwhile, or trimmed past us */
    if (r->got_any || !r->retried) { /* an empty read may have raced an append: once more */
      r->retried = !r->got_any;
      r->got_any = false;
      read_journal(r);
    } else {
      from_snapshot(r);
    }
    return;
  }
  if (want > r->last_seq && r->from_follower) { /* trimmed past the follower's engine */
    from_snapshot(r);
    return;
  }
  if (want > r->last_seq) {
    fail(r, "the journal ends at record %" PRIu64 " but %" PRIu64 " was appended", r->last_seq, want);
    return;
  }
  finish(r);
}

static void on_journal(redisAsyncContext *ac, void *reply, void *priv) {
  recovery *r = priv;
  redisReply *rep = reply;
  if (!alive(r, rep)) return;
  if (rep->type != REDIS_REPLY_ARRAY) {
    fail(r, "XRANGE of the journal: %.*s", rep->type == REDIS_REPLY_ERROR ? (int)rep->len : 0,
         rep->type == REDIS_REPLY_ERROR ? rep->str : "");
    return;
  }
  size_t bytes = 0, applied = 0;
  int64_t t0 = pt_mono_ns();
  for (size_t i = 0; i < rep->elements; i++, applied++) {
    if (i && pt_mono_ns() - t0 > BATCH_SLICE_NS) break; /* the rest is read again */
    redisReply *entry = rep->element[i];
    if (entry->type != REDIS_REPLY_ARRAY || entry->elements != 2 ||
        entry->element[1]->type != REDIS_REPLY_ARRAY) {
      fail(r, "a journal entry of an unknown shape");
      return;
    }
    redisReply *fields = entry->element[1];
    const redisReply *record = NULL;
    for (size_t f = 0; f + 1 < fields->elements; f += 2)
      if (fields->element[f]->len == 1 && fields->element[f]->str[0] == 'r')
        record = fields->element[f + 1];
    if (!record) {
      fail(r, "a journal entry without its record");
      return;
    }
    int rc = apply_record(r, record->str, record->len);
    if (rc > 0) from_snapshot(r);
    if (rc) return;
    bytes += record->len;
  }
  r->journal_bytes += bytes;
  r->got_any |= rep->elements > 0;
  if (applied < rep->elements) { /* out of time: the loop first, then from the next record */
    r->count = (unsigned)applied;
    read_journal(r);
    return;
  }
  if (r->follow && r->borrowed && r->journal_bytes >= FOLLOW_PASS_BYTES) { /* enough for this tick */
    follow_pause(r);
    return;
  }
  if (rep->elements == r->count) { /* a full batch: there may be more */
    size_t each = bytes / rep->elements + 1, n = BATCH_BYTES / each;
    r->count = n < 1 ? 1 : n > BATCH_MAX ? BATCH_MAX : (unsigned)n;
    read_journal(r);
    return;
  }
  redisAsyncCommand(ac, on_last_seq, r, "GET %s", r->m->key_seq);
}

static void read_journal(recovery *r) {
  pt_mirror *m = r->m;
  redisAsyncCommand(m->ac, on_journal, r, "XRANGE %s %" PRIu64 "-0 + COUNT %u", m->key_journal,
                    r->last_seq + 1, r->count);
}

/* On a worker thread: the restore is one step of up to seconds (~1 s per
 * 130 MB of state), and on the loop it kept the lease's renewals waiting:
 * past the lease, the daemon stepped down and began again, for ever once
 * the state was big enough. The engine it builds is its own until done. */
static void restore_work(uv_work_t *w) {
  recovery *r = w->data;
  r->e = pt_engine_restore(&r->cfg, r->buf, r->len, r->err, sizeof r->err);
}

static void restore_done(uv_work_t *w, int status) {
  recovery *r = w->data;
  (void)status; /* never cancelled: nothing else cancels work */
  free(r->buf);
  r->buf = NULL;
  pt_mirror *m = r->m;
  if (!m) { /* aborted meanwhile: what it built goes */
    rec_free(r);
    return;
  }
  if (!r->e) {
    fail(r, "the snapshot of record %" PRIu64 ": %s", r->snap_seq, r->err);
    return;
  }
  pt_info("mirror snapshot restored seq=%" PRIu64 " state=%zu stored=%" PRIu64 " ms=%" PRId64, r->snap_seq,
          r->len, r->stored, mirror_now(m) - r->started_ms);
  r->last_seq = r->snap_seq;
  read_journal(r);
}

static void start_engine(recovery *r) {
  pt_mirror *m = r->m;
  r->cfg = m->cfg.engine;
  r->cfg.sink = (pt_sink){0}; /* replayed events were published when first decided */
  if (r->chunks && r->checked && (r->stored != r->bytes || r->got_sum != r->sum)) {
    fail(r, "the snapshot of record %" PRIu64 " under %s is damaged: %" PRIu64 " bytes with checksum %" PRIu64
            ", its description says %" PRIu64 " bytes with checksum %" PRIu64,
         r->snap_seq, r->prefix, r->stored, r->got_sum, r->bytes, r->sum);
    return;
  }
  if (r->chunks) {
    r->work.data = r;
    uv_queue_work(m->loop, &r->work, restore_work, restore_done);
    return;
  }
  r->e = pt_engine_new(&r->cfg);
  r->last_seq = r->snap_seq;
  read_journal(r);
}

static bool is_zstd_frame(const char *p, size_t n) {
  const uint8_t *b = (const uint8_t *)p;
  return n >= 4 && ((uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24) ==
                       ZSTD_MAGICNUMBER;
}

static void on_chunk(redisAsyncContext *ac, void *reply, void *priv) {
  recovery *r = priv;
  redisReply *rep = reply;
  if (!alive(r, rep)) return;
  if (rep->type != REDIS_REPLY_STRING) {
    fail(r, "snapshot chunk %s:%u is missing", r->prefix, r->next_chunk);
    return;
  }
  r->stored += rep->len;
  r->got_sum = snap_sum_add(r->got_sum, rep->str, rep->len);
  if (r->next_chunk == 0)
    r->zstd = is_zstd_frame(rep->str, rep->len); /* the engine's bytes begin otherwise */
  const void *in = rep->str;
  size_t n = rep->len;
  if (r->zstd) {
    unsigned long long raw = ZSTD_getFrameContentSize(rep->str, rep->len);
    if (raw == ZSTD_CONTENTSIZE_ERROR || raw == ZSTD_CONTENTSIZE_UNKNOWN || raw > CHUNK_RAW_MAX) {
      fail(r, "the snapshot of record %" PRIu64 " under %s is damaged: chunk %u is not one zstd frame of at most %u bytes",
           r->snap_seq, r->prefix, r->next_chunk, CHUNK_RAW_MAX);
      return;
    }
    n = (size_t)raw;
    in = NULL;
  }
  if (r->len + n > r->cap) {
    r->cap = (r->len + n) * 2;
    r->buf = pt_xrealloc(r->buf, r->cap);
  }
  if (in) {
    memcpy(r->buf + r->len, in, n);
  } else if (ZSTD_decompress(r->buf + r->len, n, rep->str, rep->len) != n) {
    fail(r, "the snapshot of record %" PRIu64 " under %s is damaged: chunk %u does not decompress",
         r->snap_seq, r->prefix, r->next_chunk);
    return;
  }
  r->len += n;
  if (++r->next_chunk < r->chunks) {
    redisAsyncCommand(ac, on_chunk, r, "GET %s:%u", r->prefix, r->next_chunk);
    return;
  }
  start_engine(r);
}

static void on_meta(redisAsyncContext *ac, void *reply, void *priv) {
  recovery *r = priv;
  redisReply *rep = reply;
  if (!alive(r, rep)) return;
  if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 5) {
    fail(r, "reading the snapshot's description");
    return;
  }
  if (rep->element[0]->type == REDIS_REPLY_STRING) {
    r->snap_seq = strtoull(rep->element[0]->str, NULL, 10);
    r->chunks = (unsigned)strtoul(rep->element[1]->type == REDIS_REPLY_STRING ? rep->element[1]->str : "0",
                                  NULL, 10);
    if (rep->element[2]->type == REDIS_REPLY_STRING)
      snprintf(r->prefix, sizeof r->prefix, "%.*s", (int)rep->element[2]->len, rep->element[2]->str);
    /* an older daemon's description has no sum: restored as before, unchecked */
    if (rep->element[3]->type == REDIS_REPLY_STRING && rep->element[4]->type == REDIS_REPLY_STRING &&
        rep->element[4]->len > 0) {
      r->checked = true;
      r->bytes = strtoull(rep->element[3]->str, NULL, 10);
      r->sum = strtoull(rep->element[4]->str, NULL, 10);
    }
  }
  if (r->chunks) {
    redisAsyncCommand(ac, on_chunk, r, "GET %s:0", r->prefix);
    return;
  }
  start_engine(r);
}

/* From the snapshot's description on. */
static void begin(recovery *r) {
  redisAsyncCommand(r->m->ac, on_meta, r, "HMGET %s seq chunks prefix bytes sum", r->m->key_snapshot);
}

static recovery *rec_new(pt_mirror *m, bool follow) {
  recovery *r = pt_xcalloc(1, sizeof(*r));
  r->m = m;
  r->follow = follow;
  r->started_ms = mirror_now(m);
  r->count = BATCH_FIRST;
  *slot_of(m, r) = r;
  return r;
}

void recovery_start(pt_mirror *m) {
  follow_abort(m);
  recovery *r = rec_new(m, false);
  pt_follower *f = &m->follower;
  if (f->engine && !strcmp(f->incarnation, m->known.id)) { /* only what came after it */
    r->e = f->engine;
    r->from_follower = true;
    r->snap_seq = r->last_seq = f->seq;
    r->last_epoch = f->epoch;
    r->len = f->snap_bytes;
    r->journal_bytes = f->journal_bytes;
    f->engine = NULL;
    pt_info("mirror recovery starts from the followed state at record %" PRIu64, f->seq);
    read_journal(r);
    return;
  }
  follow_drop(m);
  begin(r);
}

void recovery_abort(pt_mirror *m) {
  if (!m->rec_state) return;
  m->rec_state->m = NULL; /* the reply still coming frees it */
  m->rec_state = NULL;
}

/* ---- the follower ---- */

void follow_start(pt_mirror *m, bool rebuild) {
  if (m->follow_rec || !m->ac || !m->ready || !m->known.id[0]) return;
  pt_follower *f = &m->follower;
  if (f->engine && strcmp(f->incarnation, m->known.id)) follow_drop(m); /* another incarnation's */
  if ((rebuild || !f->engine) && f->rebuilt_ms &&
      mirror_now(m) - f->rebuilt_ms < FOLLOW_REBUILD_LEASES * m->cfg.lease_ms)
    return; /* a whole snapshot read not long ago: not again yet */
  if (rebuild || !f->engine) f->rebuilt_ms = mirror_now(m);
  recovery *r = rec_new(m, true);
  if (f->engine && !rebuild) { /* what was appended since, in place */
    r->e = f->engine;
    r->borrowed = true;
    r->snap_seq = r->last_seq = f->seq;
    r->last_epoch = f->epoch;
    read_journal(r);
    return;
  }
  begin(r);
}

void follow_abort(pt_mirror *m) {
  if (!m->follow_rec) return;
  m->follow_rec->m = NULL; /* the reply still coming frees it */
  m->follow_rec = NULL;
}

void follow_drop(pt_mirror *m) {
  follow_abort(m);
  pt_engine_free(m->follower.engine);
  int64_t rebuilt = m->follower.rebuilt_ms; /* the pace holds across a drop */
  m->follower = (pt_follower){.rebuilt_ms = rebuilt};
}

/* A catch-up that read its share of the journal for this tick: the
 * follower is at the last record applied, not caught up. */
static void follow_pause(recovery *r) {
  pt_mirror *m = r->m;
  m->follower.journal_bytes += r->journal_bytes;
  m->follow_rec = NULL;
  rec_free(r); /* borrowed: the engine stays the follower's */
}

static void follow_finish(recovery *r) {
  pt_mirror *m = r->m;
  pt_follower *f = &m->follower;
  if (!r->borrowed) { /* a new engine: it replaces the one stale reads had */
    pt_engine_free(f->engine);
    f->engine = r->e;
    r->e = NULL;
    f->snap_bytes = r->chunks ? r->len : 0;
    f->journal_bytes = 0;
    snprintf(f->incarnation, sizeof f->incarnation, "%s", m->known.id);
    pt_info("mirror following the primary from record %" PRIu64 " (restored in %" PRId64 " ms)",
            r->last_seq, mirror_now(m) - r->started_ms);
  }
  f->seq = r->last_seq;
  f->epoch = r->last_epoch;
  f->journal_bytes += r->journal_bytes;
  f->caught_up_ms = mirror_now(m);
  if (r->last_seq > m->known.seq) m->known.seq = r->last_seq;
  m->follow_rec = NULL;
  rec_free(r);
}

static void finish(recovery *r) {
  if (r->follow) {
    follow_finish(r);
    return;
  }
  pt_mirror *m = r->m;
  pt_engine *e = r->e;
  r->e = NULL;
  pt_engine_set_sink(e, &m->cfg.engine.sink);
  m->last_seq = m->acked_seq = r->last_seq;
  if (r->last_seq > m->known.seq) m->known.seq = r->last_seq;
  /* the next snapshot is due as if this daemon had written what it read */
  m->snap_bytes = r->chunks || r->from_follower ? r->len : 0;
  m->since_snapshot = r->journal_bytes;
  m->st.recoveries++;
  m->st.recovered_inputs += r->inputs;
  m->st.last_recovery_ms = mirror_now(m) - r->started_ms;
  pt_info("mirror recovered records=%" PRIu64 "..%" PRIu64 " inputs=%" PRIu64 " ms=%" PRId64
          " epoch=%" PRIu64,
          r->snap_seq, r->last_seq, r->inputs, m->st.last_recovery_ms, m->epoch);
  m->rec_state = NULL;
  rec_free(r);
  m->role = PT_ROLE_PRIMARY;
  pt_info("mirror role=primary epoch=%" PRIu64 " node=%s", m->epoch, m->cfg.node_id);
  if (m->hooks.became_primary) m->hooks.became_primary(m->hooks.ctx, e);
}
